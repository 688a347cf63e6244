//! The exec helper: runs a new process inside a running container.
//!
//! ```text
//!  caller                      exec helper (fresh process)            child
//!   │ spawn `<helper> runtime-helper exec DIR REQUEST` (report pipe = fd 3)
//!   │ ───────────────────────────▶ │ join the container's cgroups
//!   │                              │ setns(user, ipc, uts, net, pid, cgroup, mnt)
//!   │                              │ [openpty]
//!   │                              │ fork ─────────────────────────────▶ │ (in the pid namespace)
//!   │                              │                                     │ setsid, stdio / ctty
//!   │                              │                                     │ rlimits, user, seccomp,
//!   │                              │                                     │ caps, cwd, lookup
//!   │                              │ ◀── FromInit::Ready | Failed ────── │
//!   │                              │                                     │ execve (channel CLOEXEC)
//!   │                              │ ◀── EOF | Failed(Exec…) ─────────── │
//!   │ ◀── Report::Created{pid} | Report::Failed(error) ── │ (fd 3 closed)
//!   │                              │ relay signals [and the pty] until the child exits
//!   │ ◀────────── exit status = the process's ──────────── │
//! ```

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::ExitCode;

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sched::CloneFlags;
use nix::sys::signal::{SigSet, SigmaskHow, Signal, kill, sigprocmask};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::{Pid, dup2_stderr, dup2_stdin, dup2_stdout, setsid};

use super::channel::{self, Channel};
use super::init::{exec, prepare_process, reset_signals};
use super::message::{Errnum, FromInit, Report, SetupError, ToInit};
use crate::cgroups::Cgroup;
use crate::container::ExecRequest;
use crate::monitor::LaunchConfig;
use crate::state::{State, Status, files, read_json};
use crate::sys::{Cloned, exit_immediately, fork_process};

/// Namespaces joined, in order: the user namespace first (it grants the rights to join the
/// others), the mount namespace last (it changes the root we resolve paths in).
const NAMESPACES: &[(&str, CloneFlags)] = &[
    ("user", CloneFlags::CLONE_NEWUSER),
    ("ipc", CloneFlags::CLONE_NEWIPC),
    ("uts", CloneFlags::CLONE_NEWUTS),
    ("net", CloneFlags::CLONE_NEWNET),
    ("pid", CloneFlags::CLONE_NEWPID),
    ("cgroup", CloneFlags::CLONE_NEWCGROUP),
    ("mnt", CloneFlags::CLONE_NEWNS),
];

/// Forwarded to the exec'd process.
const FORWARDED: &[Signal] = &[
    Signal::SIGHUP,
    Signal::SIGINT,
    Signal::SIGQUIT,
    Signal::SIGTERM,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
    Signal::SIGWINCH,
];

fn send_report(report: &mut File, r: &Report) {
    if let Ok(mut line) = serde_json::to_vec(r) {
        line.push(b'\n');
        let _ = report.write_all(&line);
    }
}

/// Entry of the hidden `exec` subcommand.
pub fn main(dir: &Path, request: &str, report: OwnedFd) -> ExitCode {
    let mut report = File::from(report);
    match start(dir, request) {
        Ok(mut running) => {
            send_report(
                &mut report,
                &Report::Created {
                    pid: running.child.as_raw(),
                    monitor_pid: std::process::id() as i32,
                    warnings: running.warnings.clone(),
                },
            );
            drop(report);
            ExitCode::from(running.relay())
        }
        Err(e) => {
            let code = e.exit_code();
            send_report(&mut report, &Report::Failed(e));
            ExitCode::from(code)
        }
    }
}

struct Running {
    child: Pid,
    warnings: Vec<String>,
    sigfd: SignalFd,
    pty_master: Option<OwnedFd>,
}

fn start(dir: &Path, request: &str) -> Result<Running, SetupError> {
    let req: ExecRequest = serde_json::from_str(request).map_err(|_| SetupError::Channel {
        reason: "malformed exec request".into(),
    })?;
    let state = State::load(dir)
        .map_err(|_| SetupError::fs("read", dir.join(files::STATE), Errnum(libc::ENOENT)))?;
    let launch: LaunchConfig = read_json(&dir.join(files::REQUEST))
        .map_err(|_| SetupError::fs("read", dir.join(files::REQUEST), Errnum(libc::ENOENT)))?;
    let pid = match (state.status, state.pid) {
        (Status::Running, Some(pid)) => pid,
        _ => {
            return Err(SetupError::Syscall {
                call: format!("exec in {} container", state.status.as_str()),
                errno: Errnum(libc::ESRCH),
            });
        }
    };
    // Namespace handles first: once in the mount namespace, /proc is the container's.
    let mut joins = Vec::new();
    for (name, flag) in NAMESPACES {
        let theirs = format!("/proc/{pid}/ns/{name}");
        let ours = format!("/proc/self/ns/{name}");
        let same = match (std::fs::metadata(&theirs), std::fs::metadata(&ours)) {
            (Ok(a), Ok(b)) => a.ino() == b.ino() && a.dev() == b.dev(),
            (Err(e), _) => return Err(SetupError::fs("open", &theirs, &e)),
            _ => false,
        };
        if !same {
            let f = File::open(&theirs).map_err(|e| SetupError::fs("open", &theirs, &e))?;
            joins.push((*flag, f, theirs));
        }
    }
    Cgroup::open(&state.cgroup_paths).add_process(std::process::id() as i32)?;
    for (flag, f, path) in &joins {
        nix::sched::setns(f.as_fd(), *flag).map_err(|errno| SetupError::Namespace {
            op: "join".into(),
            kind: format!("{flag:?}"),
            path: path.clone(),
            errno: errno.into(),
        })?;
    }
    drop(joins);
    let pty = if req.tty {
        Some(nix::pty::openpty(None, None).map_err(|e| SetupError::syscall("openpty", e))?)
    } else {
        None
    };
    let mut mask = SigSet::empty();
    mask.add(Signal::SIGCHLD);
    for s in FORWARDED {
        mask.add(*s);
    }
    sigprocmask(SigmaskHow::SIG_BLOCK, Some(&mask), None)
        .map_err(|e| SetupError::syscall("sigprocmask", e))?;
    let sigfd = SignalFd::with_flags(&mask, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC)
        .map_err(|e| SetupError::syscall("signalfd", e))?;
    let (mut parent_ch, child_ch) =
        channel::pair::<ToInit, FromInit>().map_err(|e| SetupError::Channel {
            reason: e.to_string(),
        })?;
    let seccomp = launch
        .request
        .spec
        .linux()
        .as_ref()
        .and_then(|l| l.seccomp().clone());
    match fork_process().map_err(|e| SetupError::syscall("fork", e))? {
        Cloned::Child => {
            drop(parent_ch);
            drop(sigfd);
            let slave = pty.map(|p| {
                drop(p.master);
                p.slave
            });
            child_main(child_ch, &req, slave, seccomp.as_ref())
        }
        Cloned::Parent(child) => {
            drop(child_ch);
            let fail = |e: SetupError| {
                let _ = waitpid(child, None);
                e
            };
            match parent_ch.recv() {
                Ok(Some(FromInit::Ready { warnings })) => match parent_ch.recv() {
                    Ok(None) => Ok(Running {
                        child,
                        warnings,
                        sigfd,
                        pty_master: pty.map(|p| p.master),
                    }),
                    Ok(Some(FromInit::Failed(e))) => Err(fail(e)),
                    _ => Err(fail(SetupError::InitDied)),
                },
                Ok(Some(FromInit::Failed(e))) => Err(fail(e)),
                _ => Err(fail(SetupError::InitDied)),
            }
        }
    }
}

fn child_main(
    mut ch: Channel<FromInit, ToInit>,
    req: &ExecRequest,
    slave: Option<OwnedFd>,
    seccomp: Option<&oci_spec::runtime::LinuxSeccomp>,
) -> ! {
    let result = (|| {
        reset_signals()?;
        setsid().map_err(|e| SetupError::syscall("setsid", e))?;
        if let Some(s) = &slave {
            dup2_stdin(s).map_err(|e| SetupError::syscall("dup2", e))?;
            dup2_stdout(s).map_err(|e| SetupError::syscall("dup2", e))?;
            dup2_stderr(s).map_err(|e| SetupError::syscall("dup2", e))?;
            crate::sys::set_controlling_tty(s.as_fd())
                .map_err(|e| SetupError::syscall("ioctl TIOCSCTTY", e))?;
        }
        prepare_process(&req.process, req.user.as_deref(), seccomp)
    })();
    drop(slave);
    match result {
        Ok((prepared, warnings)) => {
            if ch.send(&FromInit::Ready { warnings }).is_err() {
                exit_immediately(1);
            }
            let err = exec(&prepared);
            let code = err.exit_code();
            let _ = ch.send(&FromInit::Failed(err));
            exit_immediately(i32::from(code))
        }
        Err(e) => {
            let code = e.exit_code();
            let _ = ch.send(&FromInit::Failed(e));
            exit_immediately(i32::from(code))
        }
    }
}

impl Running {
    /// Relays signals (and the terminal) until the child exits; returns its exit code.
    /// With a terminal on both sides, ours is put in raw mode meanwhile (as `docker exec
    /// -t` does) and its size follows ours.
    fn relay(&mut self) -> u8 {
        use nix::sys::termios::{SetArg, cfmakeraw, tcgetattr, tcsetattr};
        let stdin = std::io::stdin();
        let saved = match &self.pty_master {
            Some(m) if nix::unistd::isatty(&stdin).unwrap_or(false) => {
                let _ = crate::sys::copy_window_size(stdin.as_fd(), m.as_fd());
                tcgetattr(&stdin).ok().inspect(|t| {
                    let mut raw = t.clone();
                    cfmakeraw(&mut raw);
                    let _ = tcsetattr(&stdin, SetArg::TCSANOW, &raw);
                })
            }
            _ => None,
        };
        let code = self.relay_loop();
        if let Some(t) = saved {
            let _ = tcsetattr(&stdin, SetArg::TCSANOW, &t);
        }
        code
    }

    fn relay_loop(&mut self) -> u8 {
        let mut stdin_open = self.pty_master.is_some();
        let mut buf = [0u8; 4096];
        let stdin = std::io::stdin();
        loop {
            let (sig_ready, master_ready, stdin_ready) = {
                let mut fds = vec![PollFd::new(self.sigfd.as_fd(), PollFlags::POLLIN)];
                if let Some(m) = &self.pty_master {
                    fds.push(PollFd::new(m.as_fd(), PollFlags::POLLIN));
                    if stdin_open {
                        fds.push(PollFd::new(stdin.as_fd(), PollFlags::POLLIN));
                    }
                }
                match poll(&mut fds, PollTimeout::NONE) {
                    Ok(_) => {}
                    Err(nix::errno::Errno::EINTR) => continue,
                    Err(_) => return 255,
                }
                let r = |i: usize| {
                    fds.get(i)
                        .and_then(|f| f.revents())
                        .is_some_and(|r| !r.is_empty())
                };
                (r(0), r(1), r(2))
            };
            if master_ready && let Some(m) = &self.pty_master {
                let mut f = File::from(m.try_clone().unwrap_or_else(|_| std::process::exit(255)));
                match f.read(&mut buf) {
                    Ok(n) if n > 0 => {
                        let _ = std::io::stdout().write_all(&buf[..n]);
                        let _ = std::io::stdout().flush();
                    }
                    // EIO: the slave side closed (the process exited).
                    _ => self.pty_master = None,
                }
            }
            if stdin_ready && let Some(m) = &self.pty_master {
                match std::io::stdin().read(&mut buf) {
                    Ok(n) if n > 0 => {
                        let mut f =
                            File::from(m.try_clone().unwrap_or_else(|_| std::process::exit(255)));
                        let _ = f.write_all(&buf[..n]);
                    }
                    _ => stdin_open = false,
                }
            }
            if sig_ready {
                while let Ok(Some(info)) = self.sigfd.read_signal() {
                    let Ok(sig) = Signal::try_from(info.ssi_signo as i32) else {
                        continue;
                    };
                    if sig == Signal::SIGWINCH
                        && let Some(m) = &self.pty_master
                    {
                        let _ = crate::sys::copy_window_size(std::io::stdin().as_fd(), m.as_fd());
                        continue;
                    }
                    if sig != Signal::SIGCHLD {
                        let _ = kill(self.child, sig);
                        continue;
                    }
                    let code = match waitpid(self.child, Some(WaitPidFlag::WNOHANG)) {
                        Ok(WaitStatus::Exited(_, code)) => code,
                        Ok(WaitStatus::Signaled(_, s, _)) => 128 + s as i32,
                        _ => continue,
                    };
                    self.drain_pty(&mut buf);
                    return code as u8;
                }
            }
        }
    }

    /// Copies what the process wrote before exiting and is still in the terminal.
    fn drain_pty(&mut self, buf: &mut [u8]) {
        let Some(m) = self.pty_master.take() else {
            return;
        };
        let _ = nix::fcntl::fcntl(
            &m,
            nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
        );
        let mut f = File::from(m);
        while let Ok(n) = f.read(buf) {
            if n == 0 {
                break;
            }
            let _ = std::io::stdout().write_all(&buf[..n]);
        }
        let _ = std::io::stdout().flush();
    }
}
