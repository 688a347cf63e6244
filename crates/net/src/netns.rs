//! Running work inside a container's network namespace.
//!
//! Netlink sockets and `/proc/sys/net` belong to the network namespace of the thread that opens
//! them. To configure a container's side of a veth (rename, address, routes, `lo` up) berth starts
//! a short-lived OS thread, moves that one thread into the target namespace with `setns(2)`, and
//! runs the job there; the thread then exits, so no thread of the process is ever left in a
//! foreign namespace and the async runtime's worker threads never change namespace.
//!
//! `setns(CLONE_NEWNET)` is allowed for one thread of a multi-threaded process (unlike mount or
//! user namespaces), see setns(2). nix's wrapper is safe, so this crate needs no `unsafe`.

use std::fs::File;
use std::path::{Path, PathBuf};

use nix::sched::{CloneFlags, setns};

/// Errors entering a network namespace.
#[derive(Debug, thiserror::Error)]
pub enum NetnsError {
    /// The namespace file could not be opened.
    #[error("open network namespace {path}")]
    Open {
        /// The namespace path (e.g. `/proc/<pid>/ns/net` or `/run/netns/<name>`).
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// `setns(2)` failed.
    #[error("enter network namespace {path}")]
    Enter {
        /// The namespace path.
        path: PathBuf,
        /// The error.
        #[source]
        source: nix::Error,
    },
    /// The helper thread could not be started.
    #[error("start a thread for network namespace {path}")]
    Spawn {
        /// The namespace path.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// The helper thread panicked.
    #[error("thread working in network namespace {path} panicked")]
    Panicked {
        /// The namespace path.
        path: PathBuf,
    },
}

/// Opens a network namespace file (to pass its fd to netlink, e.g. `IFLA_NET_NS_FD`).
pub fn open(path: &Path) -> Result<File, NetnsError> {
    File::open(path).map_err(|source| NetnsError::Open {
        path: path.to_path_buf(),
        source,
    })
}

/// Runs `job` on a fresh OS thread that has entered the network namespace at `path`, and
/// returns its result once the thread has finished.
pub async fn run_in<T, F>(path: &Path, job: F) -> Result<T, NetnsError>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    let ns = open(path)?;
    let owned = path.to_path_buf();
    let (tx, rx) = tokio::sync::oneshot::channel();
    let thread_path = owned.clone();
    std::thread::Builder::new()
        .name("berth-netns".into())
        .spawn(move || {
            let result = setns(&ns, CloneFlags::CLONE_NEWNET)
                .map_err(|source| NetnsError::Enter {
                    path: thread_path,
                    source,
                })
                .map(|()| job());
            // The receiver only disappears if the caller's future was dropped; nothing to do then.
            let _ = tx.send(result);
        })
        .map_err(|source| NetnsError::Spawn {
            path: owned.clone(),
            source,
        })?;
    rx.await.map_err(|_| NetnsError::Panicked { path: owned })?
}
