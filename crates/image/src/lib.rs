//! OCI content store, image references, registry client and layer snapshots.
#![forbid(unsafe_code)]
