//! Dockerfile parser and image builder (runs `RUN` steps with the runtime core).
#![forbid(unsafe_code)]
