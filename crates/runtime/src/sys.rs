//! The only module of the crate with `unsafe` code: thin wrappers over system calls that
//! neither `std` nor `nix` offer safely. Every block states the invariants it relies on.

use std::os::fd::{AsRawFd, BorrowedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::process::Command;

use nix::errno::Errno;
use nix::sched::CloneFlags;
use nix::sys::signal::{SigHandler, Signal};
use nix::unistd::Pid;

/// Outcome of [`clone_process`], seen from each side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cloned {
    /// In the parent: the child's pid (as seen from the parent's pid namespace).
    Parent(Pid),
    /// In the child.
    Child,
}

/// `clone(2)` with fork semantics (no new stack: the child continues on a copy of the
/// caller's stack) and the given namespace flags; the child sends `SIGCHLD` on exit.
///
/// Must only be called from a single-threaded process (the monitor or the exec helper),
/// like `fork(2)`: the child gets a copy of the calling thread only.
pub fn clone_process(flags: CloneFlags) -> Result<Cloned, Errno> {
    let raw = flags.bits() as libc::c_ulong | libc::SIGCHLD as libc::c_ulong;
    // SAFETY: with a NULL stack pointer the raw clone system call behaves like fork(2):
    // the child resumes here on a copy-on-write copy of this stack. No pointers are passed
    // (parent_tid, child_tid and tls are NULL and unused without the matching flags). Our
    // callers are single-threaded, so no lock can be held by a thread that is missing in
    // the child.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_clone,
            raw,
            std::ptr::null_mut::<libc::c_void>(),
            std::ptr::null_mut::<libc::c_int>(),
            std::ptr::null_mut::<libc::c_int>(),
            0 as libc::c_ulong,
        )
    };
    match ret {
        -1 => Err(Errno::last()),
        0 => Ok(Cloned::Child),
        pid => Ok(Cloned::Parent(Pid::from_raw(pid as libc::pid_t))),
    }
}

/// `fork(2)` for the single-threaded helper processes.
pub fn fork_process() -> Result<Cloned, Errno> {
    clone_process(CloneFlags::empty())
}

/// Makes `fd` (opened with `O_CLOEXEC`, as std does) appear as `target` in the program that
/// `cmd` runs, without the close-on-exec flag.
pub fn pass_fd(cmd: &mut Command, fd: RawFd, target: RawFd) {
    // SAFETY: the closure runs in the forked child before exec and only calls dup2(2) and
    // fcntl(2), both async-signal-safe; it touches no memory shared with other threads.
    unsafe {
        cmd.pre_exec(move || {
            if fd == target {
                if libc::fcntl(fd, libc::F_SETFD, 0) == -1 {
                    return Err(std::io::Error::last_os_error());
                }
            } else if libc::dup2(fd, target) == -1 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// Installs a classic BPF seccomp filter on the calling thread (`SECCOMP_SET_MODE_FILTER`).
/// The caller sets `no_new_privs` first or holds `CAP_SYS_ADMIN`.
pub fn install_seccomp(program: &[libc::sock_filter]) -> Result<(), Errno> {
    let len = u16::try_from(program.len()).map_err(|_| Errno::E2BIG)?;
    let prog = libc::sock_fprog {
        len,
        filter: program.as_ptr().cast_mut(),
    };
    // SAFETY: `prog` points at `program`, which outlives the call; the kernel copies the
    // filter before returning and never writes through the pointer.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER as libc::c_ulong,
            0 as libc::c_ulong,
            &prog as *const libc::sock_fprog,
        )
    };
    if ret == -1 {
        Err(Errno::last())
    } else {
        Ok(())
    }
}

/// Makes the terminal `fd` the controlling terminal of the calling session leader.
pub fn set_controlling_tty(fd: BorrowedFd<'_>) -> Result<(), Errno> {
    // SAFETY: TIOCSCTTY takes an integer argument (0: do not steal), no pointer.
    let ret = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCSCTTY, 0) };
    if ret == -1 {
        Err(Errno::last())
    } else {
        Ok(())
    }
}

/// Sets the disposition of `signal` to default or ignore (never to a handler function).
pub fn set_signal_disposition(signal: Signal, ignore: bool) -> Result<(), Errno> {
    let handler = if ignore {
        SigHandler::SigIgn
    } else {
        SigHandler::SigDfl
    };
    // SAFETY: SIG_IGN and SIG_DFL are not functions, so no handler can run concurrently
    // with the rest of the program.
    unsafe { nix::sys::signal::signal(signal, handler) }.map(|_| ())
}

/// Ends the process at once, without running destructors or atexit handlers, for a forked
/// child whose parent-owned state must not be flushed twice.
pub fn exit_immediately(code: i32) -> ! {
    // SAFETY: _exit(2) is always safe to call; it does not return.
    unsafe { libc::_exit(code) }
}

/// Takes ownership of an inherited descriptor (the report pipe at a fixed number) and marks
/// it close-on-exec so the container's processes never inherit it.
pub fn take_inherited_fd(fd: RawFd) -> Result<std::os::fd::OwnedFd, Errno> {
    // SAFETY: F_GETFD on any integer is harmless: it only tells whether the fd is open.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFD) };
    if flags == -1 {
        return Err(Errno::last());
    }
    // SAFETY: F_SETFD with FD_CLOEXEC only changes the flag of this open descriptor.
    if unsafe { libc::fcntl(fd, libc::F_SETFD, flags | libc::FD_CLOEXEC) } == -1 {
        return Err(Errno::last());
    }
    // SAFETY: the descriptor is open (checked above) and was handed to this process by its
    // parent for exactly this purpose; nothing else in the process owns or closes it.
    Ok(unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) })
}

/// Marks every descriptor from `first` up close-on-exec (`close_range(2)` with
/// `CLOSE_RANGE_CLOEXEC`), so nothing the runtime or its caller opened leaks into the
/// container's process.
pub fn cloexec_from(first: u32) -> Result<(), Errno> {
    const CLOSE_RANGE_CLOEXEC: libc::c_uint = 1 << 2;
    // SAFETY: close_range only changes descriptor flags; no memory is passed.
    let ret = unsafe { libc::syscall(libc::SYS_close_range, first, u32::MAX, CLOSE_RANGE_CLOEXEC) };
    if ret == -1 {
        Err(Errno::last())
    } else {
        Ok(())
    }
}

/// Takes ownership of a descriptor the kernel just delivered with `SCM_RIGHTS`.
pub fn adopt_received_fd(fd: RawFd) -> std::os::fd::OwnedFd {
    // SAFETY: the kernel installed this descriptor in our table for this message; nothing
    // else in the process knows or owns it.
    unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) }
}

/// Drops the pages of `[start, end)` from this process's memory (`MADV_DONTNEED`). Only
/// for private file mappings without copied-on-write pages: they read back unchanged
/// from the file when next touched.
pub fn drop_clean_file_pages(start: usize, end: usize) -> Result<(), Errno> {
    // SAFETY: the caller passes a whole mapping of this process that holds no private
    // (anonymous) pages, so discarding it loses no data: the kernel re-reads the file on
    // the next access. No Rust reference points into it with mutable state.
    let ret =
        unsafe { libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_DONTNEED) };
    if ret == -1 {
        return Err(Errno::last());
    }
    // SAFETY: an access-pattern hint on the same mapping; it changes no contents. Random
    // access turns off fault-around, so touching one page later maps one page, not 16.
    let ret = unsafe { libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_RANDOM) };
    if ret == -1 {
        Err(Errno::last())
    } else {
        Ok(())
    }
}

/// Returns freed heap memory to the kernel (`malloc_trim(3)`).
pub fn trim_heap() {
    // SAFETY: malloc_trim only releases free memory of the allocator; the monitor is
    // single-threaded, so no allocation races with it.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Copies the window size of terminal `from` to terminal `to` (`TIOCGWINSZ`/`TIOCSWINSZ`);
/// the kernel then signals `SIGWINCH` to the foreground process group of `to`.
pub fn copy_window_size(from: BorrowedFd<'_>, to: BorrowedFd<'_>) -> Result<(), Errno> {
    let mut ws = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes one `winsize` into the struct we pass, which lives on our
    // stack for the duration of the call.
    if unsafe { libc::ioctl(from.as_raw_fd(), libc::TIOCGWINSZ, &mut ws) } == -1 {
        return Err(Errno::last());
    }
    // SAFETY: TIOCSWINSZ only reads the `winsize` we pass.
    if unsafe { libc::ioctl(to.as_raw_fd(), libc::TIOCSWINSZ, &ws) } == -1 {
        return Err(Errno::last());
    }
    Ok(())
}
