//! berth's container runtime core: namespaces, rootfs, cgroups, security and the
//! per-container monitor. Input is an OCI runtime spec and a rootfs.
//!
//! A [`Runtime`] creates containers; each gets a detached monitor process (the caller never
//! forks a container itself) that clones the container's init into its namespaces, holds
//! its stdio and records its state, so containers outlive the process that created them.
//! [`Container`] handles start, signal, wait, exec, pause, inspect and delete them.

pub mod cgroups;
pub mod clock;
pub mod console;
pub mod container;
pub mod diff;
pub mod helper;
pub mod logs;
pub mod monitor;
pub mod namespaces;
pub mod process;
pub mod request;
pub mod rootfs;
pub mod runtime;
pub mod security;
pub mod spec;
pub mod state;
pub mod sys;
pub mod top;
pub mod user;

pub use container::{Container, ExecHandle, ExecRequest, ExecStdio, ExitStatus};
pub use process::message::SetupError;
pub use request::{ContainerRequest, LogConfig, Rootfs, Stdio};
pub use runtime::{HELPER_SUBCOMMAND, Runtime, RuntimeConfig, RuntimeError};
pub use state::{State, Status};

/// Signals, as [`Container::kill`] takes them.
pub use nix::sys::signal::Signal;
/// The OCI types of the API (`oci_spec::runtime::Spec`…), re-exported so callers use the
/// same version.
pub use oci_spec;
