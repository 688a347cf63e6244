//! The container's standard streams as the monitor prepares them: `/dev/null`, the
//! caller's own, pipes the monitor reads for the logs (with an input received over a
//! socket for `run -i`), or a pseudo-terminal handed over the console socket.

use std::os::fd::{AsFd, OwnedFd};
use std::path::PathBuf;

use nix::fcntl::OFlag;
use nix::unistd::pipe2;

use crate::Stdio;
use crate::logs::Stream;
use crate::process::message::SetupError;

/// The container's end of stdio plus the monitor's ends of the output pipes.
pub(super) struct StdioSetup {
    pub child: [OwnedFd; 3],
    pub tty: bool,
    pub outputs: Vec<(OwnedFd, Stream)>,
    /// Host path of the terminal, bind-mounted on the container's `/dev/console`.
    pub console: Option<PathBuf>,
}

pub(super) fn devnull() -> Result<OwnedFd, SetupError> {
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
        .map(OwnedFd::from)
        .map_err(|e| SetupError::fs("open", "/dev/null", &e))
}

fn dup(fd: impl AsFd) -> Result<OwnedFd, SetupError> {
    fd.as_fd()
        .try_clone_to_owned()
        .map_err(|e| SetupError::syscall("dup", &e))
}

pub(super) fn prepare_stdio(stdio: &Stdio) -> Result<StdioSetup, SetupError> {
    let pipe = || pipe2(OFlag::O_CLOEXEC).map_err(|e| SetupError::syscall("pipe2", e));
    match stdio {
        Stdio::Null => {
            let n = devnull()?;
            Ok(StdioSetup {
                child: [dup(&n)?, dup(&n)?, n],
                tty: false,
                outputs: Vec::new(),
                console: None,
            })
        }
        Stdio::Inherit => Ok(StdioSetup {
            child: [
                dup(std::io::stdin())?,
                dup(std::io::stdout())?,
                dup(std::io::stderr())?,
            ],
            tty: false,
            outputs: Vec::new(),
            console: None,
        }),
        Stdio::Logs(_) | Stdio::LogsWithInput { .. } => {
            let stdin = match stdio {
                Stdio::LogsWithInput { stdin_socket, .. } => {
                    crate::console::receive_from(stdin_socket)?
                }
                _ => devnull()?,
            };
            let (out_r, out_w) = pipe()?;
            let (err_r, err_w) = pipe()?;
            Ok(StdioSetup {
                child: [stdin, out_w, err_w],
                tty: false,
                outputs: vec![(out_r, Stream::Stdout), (err_r, Stream::Stderr)],
                console: None,
            })
        }
        Stdio::Tty { console_socket } => {
            let pty =
                nix::pty::openpty(None, None).map_err(|e| SetupError::syscall("openpty", e))?;
            let name = nix::unistd::ttyname(&pty.slave)
                .map(|p| p.display().to_string())
                .unwrap_or_default();
            crate::console::send_fd(console_socket, &pty.master, &name)?;
            drop(pty.master);
            Ok(StdioSetup {
                child: [dup(&pty.slave)?, dup(&pty.slave)?, pty.slave],
                tty: true,
                outputs: Vec::new(),
                console: Some(PathBuf::from(name)),
            })
        }
    }
}
