//! `berth run -t`: the container's pseudo-terminal, received on a console socket and relayed
//! to this process's own terminal.
//!
//! Protocol (runc's `--console-socket`):
//!
//! ```text
//! berth run -t                 daemon                      container monitor
//!   bind <run-dir>/console-<pid>.sock
//!   POST /v1/containers {tty, console_socket} ──► create ──► openpty
//!                                                            connect(console socket)
//!   accept ◄──────────────────────── SCM_RIGHTS(master) ───── send, close its copy
//!   ◄── 201 (process started)
//!   stdin ──► master ──► process; process ──► master ──► stdout, until the slave closes
//!   POST /v1/containers/{id}/wait ──► exit code
//! ```
//!
//! The daemon never touches the terminal; when this process goes, the terminal's master end
//! closes and the container gets `SIGHUP`, as with `docker run -t` without `-d`.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};

use berth_runtime::console::receive_fd;
use nix::sys::termios::{SetArg, cfmakeraw, tcgetattr, tcsetattr};

use super::container::CliError;

/// A listening console socket, removed when dropped.
#[derive(Debug)]
pub struct Console {
    listener: UnixListener,
    path: PathBuf,
}

impl Drop for Console {
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

impl Console {
    /// Listens on `<run_dir>/console-<pid>.sock` (short enough for a socket path).
    pub fn listen(run_dir: &Path) -> Result<Console, CliError> {
        std::fs::create_dir_all(run_dir).map_err(io("create directory", run_dir))?;
        let path = run_dir.join(format!("console-{}.sock", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let listener = UnixListener::bind(&path).map_err(io("listen on", &path))?;
        Ok(Console { listener, path })
    }

    /// The socket's path, for the runtime.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Receives the terminal and relays it until the container's side closes: this process's
    /// standard input (in raw mode when it is a terminal) to the container, its output to
    /// standard output. `stdin` false: nothing is sent (Docker's `-t` without `-i`).
    pub async fn relay(self, stdin: bool) -> Result<(), CliError> {
        tokio::task::spawn_blocking(move || self.relay_blocking(stdin))
            .await
            .map_err(|e| CliError::Io {
                op: "relay",
                path: "terminal".into(),
                source: std::io::Error::other(e),
            })?
    }

    fn relay_blocking(self, forward_stdin: bool) -> Result<(), CliError> {
        let (conn, _) = self
            .listener
            .accept()
            .map_err(io("accept on", &self.path))?;
        let master: OwnedFd = receive_fd(&conn).map_err(|e| CliError::Io {
            op: "receive the terminal on",
            path: self.path.display().to_string(),
            source: std::io::Error::other(e.to_string()),
        })?;
        let stdin = std::io::stdin();
        let saved = tcgetattr(stdin.as_fd()).ok();
        if let Some(t) = &saved {
            let mut raw = t.clone();
            cfmakeraw(&mut raw);
            let _ = tcsetattr(stdin.as_fd(), SetArg::TCSANOW, &raw);
            let _ = berth_runtime::sys::copy_window_size(stdin.as_fd(), master.as_fd());
        }
        if forward_stdin {
            let mut to_container = File::from(
                master
                    .try_clone()
                    .map_err(io("duplicate the terminal of", &self.path))?,
            );
            // Blocks on our input until it ends; the process exits without waiting for it.
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut std::io::stdin().lock(), &mut to_container);
            });
        }
        let mut from_container = File::from(master);
        let mut buf = [0u8; 8192];
        let mut out = std::io::stdout();
        loop {
            match from_container.read(&mut buf) {
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                // EIO: every slave end is closed, the container has exited.
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if out.write_all(&buf[..n]).and_then(|()| out.flush()).is_err() {
                        break;
                    }
                }
            }
        }
        if let Some(t) = &saved {
            let _ = tcsetattr(stdin.as_fd(), SetArg::TCSANOW, t);
        }
        Ok(())
    }
}
