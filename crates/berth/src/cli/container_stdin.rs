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
use std::path::{Path, PathBuf};

use tokio::net::UnixListener;

use super::container::CliError;

/// A listening stdin socket, removed when dropped.
#[derive(Debug)]
pub struct StdinSocket {
    listener: UnixListener,
    path: PathBuf,
}

impl Drop for StdinSocket {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

fn io<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> CliError + 'a {
    move |source| CliError::Io {
        op,
        path: path.display().to_string(),
        source,
    }
}

impl StdinSocket {
    /// Listens on `<run_dir>/stdin-<pid>.sock`; call within the tokio runtime.
    pub fn listen(run_dir: &Path) -> Result<StdinSocket, CliError> {
        std::fs::create_dir_all(run_dir).map_err(io("create directory", run_dir))?;
        let path = run_dir.join(format!("stdin-{}.sock", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let listener = UnixListener::bind(&path).map_err(io("listen on", &path))?;
        Ok(StdinSocket { listener, path })
    }

    /// The socket's path, for the runtime.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Hands standard input to the first (only) connection, in the background, before the
    /// container is created; the socket goes when the task ends.
    pub fn serve(self) -> tokio::task::JoinHandle<Result<(), CliError>> {
        tokio::spawn(async move {
            let (conn, _) = self
                .listener
                .accept()
                .await
                .map_err(io("accept on", &self.path))?;
            let conn = conn
                .into_std()
                .and_then(|c| c.set_nonblocking(false).map(|()| c))
                .map_err(io("accept on", &self.path))?;
            let stdin = std::io::stdin();
            berth_runtime::console::send_on(&conn, stdin.as_fd()).map_err(|e| CliError::Io {
                op: "send standard input on",
                path: self.path.display().to_string(),
                source: std::io::Error::other(e.to_string()),
            })
        })
    }
}
