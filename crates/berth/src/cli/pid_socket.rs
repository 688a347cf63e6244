//! The unix socket on which `run -t` and `run -i` receive a descriptor from the container's
//! monitor (a terminal, or the other way round for standard input): `<run-dir>/<name>-<pid>.sock`,
//! listened on by this process and removed when it is dropped.

use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

use tokio::net::UnixListener;

use super::container::CliError;

/// A listening socket `<run-dir>/<name>-<pid>.sock`, removed when dropped.
#[derive(Debug)]
pub struct PidSocket {
    listener: UnixListener,
    path: PathBuf,
}

impl Drop for PidSocket {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

impl PidSocket {
    /// Listens on `<run_dir>/<name>-<pid>.sock` (short enough for a socket path); call within
    /// the tokio runtime.
    pub fn listen(run_dir: &Path, name: &str) -> Result<PidSocket, CliError> {
        std::fs::create_dir_all(run_dir).map_err(|e| io_error("create directory", run_dir, e))?;
        let path = run_dir.join(format!("{name}-{}.sock", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let listener = UnixListener::bind(&path).map_err(|e| io_error("listen on", &path, e))?;
        Ok(PidSocket { listener, path })
    }

    /// The socket's path, for the runtime.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Accepts the one connection the runtime makes, as a blocking stream.
    pub async fn accept_one(&self) -> Result<UnixStream, CliError> {
        let (conn, _) = self
            .listener
            .accept()
            .await
            .map_err(|e| self.error("accept on", e))?;
        conn.into_std()
            .and_then(|c| c.set_nonblocking(false).map(|()| c))
            .map_err(|e| self.error("accept on", e))
    }

    /// An error of `op` on this socket.
    pub fn error(&self, op: &'static str, e: impl std::fmt::Display) -> CliError {
        io_error(op, &self.path, std::io::Error::other(e.to_string()))
    }
}

fn io_error(op: &'static str, path: &Path, source: std::io::Error) -> CliError {
    CliError::Io {
        op,
        path: path.display().to_string(),
        source,
    }
}
