//! The reconciler: desired state from a Compose project, observed state from the
//! store, a plan ordered as a graph, and the executor that carries it out.
#![forbid(unsafe_code)]
