//! The console-socket protocol (runc's `--console-socket`): the runtime connects to a Unix
//! socket the caller listens on and sends the pseudo-terminal master with `SCM_RIGHTS`,
//! the terminal's name as payload. The same exchange, the other way round, hands the
//! caller's standard input to the runtime for `run -i` without a terminal
//! ([`send_on`], [`receive_from`]).

use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::path::Path;

use nix::sys::socket::{ControlMessage, ControlMessageOwned, MsgFlags, UnixAddr, recvmsg, sendmsg};

use crate::process::message::{Errnum, SetupError};

/// Connects to `path` and sends `master` with its terminal `name`.
pub fn send_fd(path: &Path, master: &OwnedFd, name: &str) -> Result<(), SetupError> {
    let err = |errno: Errnum| SetupError::Console {
        path: path.display().to_string(),
        errno,
    };
    let sock = UnixStream::connect(path).map_err(|e| err(Errnum::from(&e)))?;
    let fds = [master.as_raw_fd()];
    sendmsg::<UnixAddr>(
        sock.as_raw_fd(),
        &[IoSlice::new(name.as_bytes())],
        &[ControlMessage::ScmRights(&fds)],
        MsgFlags::empty(),
        None,
    )
    .map_err(|e| err(e.into()))?;
    Ok(())
}

/// Sends `fd` on an accepted connection (the caller's side of [`receive_from`]).
pub fn send_on(conn: &UnixStream, fd: std::os::fd::BorrowedFd<'_>) -> Result<(), SetupError> {
    let fds = [fd.as_raw_fd()];
    sendmsg::<UnixAddr>(
        conn.as_raw_fd(),
        &[IoSlice::new(b"stdin")],
        &[ControlMessage::ScmRights(&fds)],
        MsgFlags::empty(),
        None,
    )
    .map_err(|e| SetupError::Console {
        path: "accepted connection".into(),
        errno: e.into(),
    })?;
    Ok(())
}

/// Connects to the listening socket at `path` and receives the one descriptor its owner
/// sends (`run -i`: the client's standard input).
pub fn receive_from(path: &Path) -> Result<OwnedFd, SetupError> {
    let sock = UnixStream::connect(path).map_err(|e| SetupError::Console {
        path: path.display().to_string(),
        errno: Errnum::from(&e),
    })?;
    receive_fd(&sock)
}

/// Receives the terminal master sent by [`send_fd`] on an accepted connection.
pub fn receive_fd(conn: &UnixStream) -> Result<OwnedFd, SetupError> {
    let err = |errno: Errnum| SetupError::Console {
        path: "accepted connection".into(),
        errno,
    };
    let mut name = [0u8; 4096];
    let mut iov = [IoSliceMut::new(&mut name)];
    let mut space = nix::cmsg_space!([RawFd; 1]);
    let msg = recvmsg::<UnixAddr>(
        conn.as_raw_fd(),
        &mut iov,
        Some(&mut space),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )
    .map_err(|e| err(e.into()))?;
    for cmsg in msg.cmsgs().map_err(|e| err(e.into()))? {
        if let ControlMessageOwned::ScmRights(fds) = cmsg
            && let Some(&fd) = fds.first()
        {
            return Ok(crate::sys::adopt_received_fd(fd));
        }
    }
    Err(err(Errnum(libc::EBADMSG)))
}
