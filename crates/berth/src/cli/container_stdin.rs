//! `berth run -i` without `-t`: this process's standard input becomes the container's.
//!
//! Protocol (the console socket's, the other way round):
//!
//! ```text
//! berth run -i                 daemon                      container monitor
//!   bind <run-dir>/stdin-<pid>.sock
//!   POST /v1/containers {stdin_socket} ──► create ──► connect(stdin socket)
//!   accept ──────────────────────── SCM_RIGHTS(fd 0) ──────► container's stdin
//!   ◄── 201 (process started)
//!   follow the log until the exit; POST /v1/containers/{id}/wait ──► exit code
//! ```
//!
//! The descriptor itself is handed over, not copied through a relay: `echo hi | berth run
//! -i busybox cat` gives the container the pipe, which reaches end-of-file when `echo` is
//! done. The output still goes to the container's log, which `run` follows.

use std::os::fd::AsFd;
use std::path::Path;

use super::container::CliError;
use super::pid_socket::PidSocket;

/// A listening stdin socket, removed when dropped.
#[derive(Debug)]
pub struct StdinSocket(PidSocket);

impl StdinSocket {
    /// Listens on `<run_dir>/stdin-<pid>.sock`; call within the tokio runtime.
    pub fn listen(run_dir: &Path) -> Result<StdinSocket, CliError> {
        PidSocket::listen(run_dir, "stdin").map(StdinSocket)
    }

    /// The socket's path, for the runtime.
    pub fn path(&self) -> &Path {
        self.0.path()
    }

    /// Hands standard input to the first (only) connection, in the background, before the
    /// container is created; the socket goes when the task ends.
    pub fn serve(self) -> tokio::task::JoinHandle<Result<(), CliError>> {
        tokio::spawn(async move {
            let conn = self.0.accept_one().await?;
            let stdin = std::io::stdin();
            berth_runtime::console::send_on(&conn, stdin.as_fd())
                .map_err(|e| self.0.error("send standard input on", e))
        })
    }
}
