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
use std::path::Path;

use berth_runtime::console::receive_fd;
use nix::sys::termios::{SetArg, cfmakeraw, tcgetattr, tcsetattr};

use super::container::CliError;
use super::pid_socket::PidSocket;

/// Copies our terminal's size to the container's on every `SIGWINCH`, until aborted.
fn follow_window_size(master: OwnedFd) -> tokio::task::JoinHandle<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let winch = signal(SignalKind::window_change());
    tokio::spawn(async move {
        let Ok(mut winch) = winch else { return };
        while winch.recv().await.is_some() {
            let _ = berth_runtime::sys::copy_window_size(std::io::stdin().as_fd(), master.as_fd());
        }
    })
}

/// The wait for the terminal started by [`Console::accept`].
pub type Accepting = tokio::task::JoinHandle<Result<(Console, OwnedFd), CliError>>;

/// A listening console socket, removed when dropped.
#[derive(Debug)]
pub struct Console(PidSocket);

impl Console {
    /// Listens on `<run_dir>/console-<pid>.sock`; call within the tokio runtime.
    pub fn listen(run_dir: &Path) -> Result<Console, CliError> {
        PidSocket::listen(run_dir, "console").map(Console)
    }

    /// The socket's path, for the runtime.
    pub fn path(&self) -> &Path {
        self.0.path()
    }

    /// Starts waiting for the terminal, before the container is created: the moment the
    /// runtime sends it, its window size is set to ours, before the daemon starts the process
    /// (which would otherwise see a 0x0 terminal).
    pub fn accept(self) -> Accepting {
        tokio::spawn(async move {
            let conn = self.0.accept_one().await?;
            // The runtime connects only to send the terminal: it is already there.
            let master =
                receive_fd(&conn).map_err(|e| self.0.error("receive the terminal on", e))?;
            let _ = berth_runtime::sys::copy_window_size(std::io::stdin().as_fd(), master.as_fd());
            Ok((self, master))
        })
    }

    /// Relays the terminal `accepted` brings until the container's side closes: this
    /// process's standard input (in raw mode when it is a terminal) to the container, its
    /// output to standard output; the window size follows ours (`SIGWINCH`). `stdin` false:
    /// nothing is sent (Docker's `-t` without `-i`).
    pub async fn relay(accepted: Accepting, stdin: bool) -> Result<(), CliError> {
        let join = |e: tokio::task::JoinError| CliError::Io {
            op: "relay",
            path: "terminal".into(),
            source: std::io::Error::other(e),
        };
        let (console, master) = accepted.await.map_err(join)??;
        let resize = match master.try_clone() {
            Ok(fd) => Some(follow_window_size(fd)),
            Err(_) => None,
        };
        let relayed = tokio::task::spawn_blocking(move || console.relay_blocking(master, stdin))
            .await
            .map_err(join);
        if let Some(task) = resize {
            task.abort();
        }
        relayed?
    }

    fn relay_blocking(self, master: OwnedFd, forward_stdin: bool) -> Result<(), CliError> {
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
                    .map_err(|e| self.0.error("duplicate the terminal of", e))?,
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
