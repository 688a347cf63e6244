//! Dockerfile parser and image builder (runs `RUN` steps with the runtime core).
//!
//! [`Dockerfile::parse`] turns a Dockerfile into stages of typed instructions, every
//! error located by line and column; [`StageGraph`] orders the stages a target needs;
//! [`context`] walks a build context honouring `.dockerignore`; [`cache`] derives the
//! cache key of each step. `RUN --mount` (cache, bind, tmpfs, [`secrets`], ssh) is made real
//! per step and leaves nothing in the layer; `RUN --network=default` reaches out through a
//! [`RunNetwork`] the caller passes in (the engine's build bridge); `ADD <url>` is fetched
//! by [`download`].
#![forbid(unsafe_code)]

pub mod arguments;
pub mod builder;
pub mod cache;
pub mod context;
mod copy;
pub mod diagnostic;
pub mod dockerignore;
pub mod download;
pub mod instruction;
pub mod layer;
pub mod mount;
pub mod network;
pub mod overlay;
mod parse;
pub mod pull;
pub mod rootfs;
mod run;
mod run_mounts;
pub mod scope;
pub mod secrets;
mod stage;
pub mod stage_graph;
pub mod step;
pub mod substitute;
mod words;

pub use builder::{
    BuildError, BuildRequest, Builder, DockerfileSource, Event, NamedContext, StepFailed,
};
pub use diagnostic::{Diagnostic, Location, ParseError};
pub use instruction::{Command, Instruction};
pub use network::{RunNetwork, RunNetworkError};
pub use parse::{Dockerfile, Stage, Step};
pub use secrets::SecretSource;
pub use stage_graph::StageGraph;
