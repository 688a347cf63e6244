//! The daemon's pid file, locked (flock) for as long as the daemon runs, so two
//! daemons never share one run directory.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};

use super::DaemonError;

/// A held pid file; removed when dropped.
#[derive(Debug)]
pub struct PidFile {
    path: PathBuf,
    _lock: Flock<File>,
}

impl PidFile {
    /// Creates or opens `path`, locks it without waiting and writes our pid into it.
    /// Fails with [`DaemonError::AlreadyRunning`] when another process holds it.
    pub fn acquire(path: &Path) -> Result<PidFile, DaemonError> {
        let io = |op| {
            move |source| DaemonError::Io {
                op,
                path: path.to_path_buf(),
                source,
            }
        };
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(io("open pid file"))?;
        let mut lock = match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(lock) => lock,
            Err((mut file, nix::errno::Errno::EWOULDBLOCK)) => {
                let mut text = String::new();
                let pid = file
                    .read_to_string(&mut text)
                    .ok()
                    .and_then(|_| text.trim().parse().ok());
                return Err(DaemonError::AlreadyRunning {
                    pid,
                    what: path.to_path_buf(),
                });
            }
            Err((_, errno)) => return Err(io("lock pid file")(std::io::Error::from(errno))),
        };
        lock.set_len(0)
            .and_then(|()| lock.rewind())
            .and_then(|()| writeln!(lock, "{}", std::process::id()))
            .and_then(|()| lock.sync_all())
            .map_err(io("write pid file"))?;
        Ok(PidFile {
            path: path.to_path_buf(),
            _lock: lock,
        })
    }
}

impl Drop for PidFile {
    fn drop(&mut self) {
        // Removed while still locked, so a new daemon never sees our pid in it.
        if let Err(e) = std::fs::remove_file(&self.path) {
            tracing::warn!("cannot remove pid file {}: {e}", self.path.display());
        }
    }
}
