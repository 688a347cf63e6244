//! berth's container runtime core: namespaces, rootfs, cgroups, security and the
//! per-container monitor. Input is an OCI runtime spec and a rootfs.
//!
//! A [`Runtime`] creates containers; each gets a detached monitor process (the caller never
//! forks a container itself) that clones the container's init into its namespaces, holds
//! its stdio and records its state, so containers outlive the process that created them.
//! [`Container`] handles start, signal, wait, exec, pause, inspect and delete them.
//!
//! Docker's options map onto a request like this (start from [`spec::default_spec`]):
//!
//! | Docker | berth-runtime |
//! | --- | --- |
//! | image layers | [`Rootfs::Overlay`] (top-most first), upper/work owned by the caller |
//! | `-d` / logs | [`Stdio::Logs`], read back with [`logs::read_all`] |
//! | `-t` | [`Stdio::Tty`] (master end over a console socket, [`console::receive_fd`]) |
//! | `-u` | [`ContainerRequest::user`] (names resolved in the image) |
//! | `--init` | [`ContainerRequest::init`] |
//! | `--network` | [`ContainerRequest::netns`] (a namespace the net layer made) |
//! | `--cap-add/--cap-drop/--privileged` | [`security::caps::resolve`] + [`spec::set_capabilities`] |
//! | `--security-opt seccomp=unconfined` | [`spec::set_seccomp_unconfined`] |
//! | `--read-only`, `-v`, `--tmpfs`, `-e`, `-w`, `--hostname` | the OCI spec's fields |
//! | `--memory`, `--cpus`, `--pids-limit`… | `linux.resources` (cgroup v1 or v2) |
//! | `--ulimit` | `process.rlimits`; too-high limits are clamped: [`Container::warnings`] |
//! | `stop -t` / `kill` / `wait` | [`Container::stop`], [`Container::kill`], [`Container::wait`] |
//! | `exec` | [`Container::exec`] with [`Container::process`] as the template |
//! | `top` / `stats` / `pause` | [`Container::top`], [`Container::stats`], [`Container::pause`] |
//! | `restart` | [`Container::launch_config`], delete, create again |

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
