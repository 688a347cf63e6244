//! The per-container monitor: a fresh, single-threaded `berth` process that creates the
//! container, holds its stdio, writes its logs, reaps it and records how it ended.
//!
//! ```text
//!  caller (CLI / daemon)          helper process              monitor (own session)
//!   │ write request.json, state.json
//!   │ spawn `<helper> runtime-helper monitor DIR` (report pipe as fd 3)
//!   │ ───────────────────────────▶ │ setsid, fork ───────────▶ │
//!   │ waitpid(helper) ◀──────────── │ exit(0)                   │ cgroup: create + limits
//!   │                                                           │ stdio: pipes / pty / null
//!   │                                                           │ bind DIR/monitor.sock
//!   │                                                           │ clone → init (see process::init)
//!   │ ◀──── Report::Created{pid} | Report::Failed(error) ────── │ (report pipe closed)
//!   │                                                           │ state.json = created
//!   │ ── connect monitor.sock: Request::Start ───────────────▶  │ ToInit::Start → init execs
//!   │ ◀──────────────────────── Response::Ok ─────────────────  │ state.json = running
//!   │ ── Request::Kill / Pause / Resume ─────────────────────▶  │ kill(2), freezer
//!   │ ── Request::Wait ──────────────────────────────────────▶  │ …
//!   │                                                           │ SIGCHLD: init exited
//!   │                                                           │ drain output, check OOM,
//!   │                                                           │ state.json = stopped,
//!   │                                                           │ remove cgroup and socket
//!   │ ◀──────── Response::Exited{exit_code, oom_killed} ─────── │ exit
//! ```
//!
//! The monitor is the only writer of `state.json` while it lives. It uses no threads and no
//! async runtime: one `poll(2)` loop over a signalfd, the control socket and the output
//! pipes, with small buffers, to keep its memory small.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::{SigSet, SigmaskHow, Signal, kill, sigprocmask};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::{Pid, setsid};
use serde::{Deserialize, Serialize};

use crate::cgroups::Cgroup;
use crate::logs::{LineSplitter, LogWriter, Stream};
use crate::process::channel::{self, Channel};
use crate::process::init::{self, InitArgs};
use crate::process::message::{Errnum, FromInit, Report, Request, Response, SetupError, ToInit};
use crate::state::{State, Status, files, read_json};
use crate::sys::{self, Cloned};
use crate::{ContainerRequest, Stdio};

mod memory;
mod stdio;

use memory::{clean_file_mappings, release_memory};
use stdio::{devnull, prepare_stdio};

/// What the caller leaves in `request.json` for the monitor.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LaunchConfig {
    /// The request.
    pub request: ContainerRequest,
    /// Cgroup parent (`berth`): the container's cgroup is `<parent>/<id>`.
    pub cgroup_parent: String,
}

/// How long the monitor waits for output pipes to close after the init exited.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(2);
/// How long the monitor waits without events before releasing memory.
const IDLE_AFTER: Duration = Duration::from_millis(200);
/// How long a control client may take to send its request.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(1);

/// Entry of the hidden `monitor` subcommand: detaches, creates the container, reports on
/// `report` and supervises the container until it exits.
pub fn main(dir: &Path, report: OwnedFd) -> ExitCode {
    let mut report = File::from(report);
    let send = |report: &mut File, r: &Report| {
        if let Ok(mut line) = serde_json::to_vec(r) {
            line.push(b'\n');
            let _ = report.write_all(&line);
        }
    };
    // Own session, then fork so the monitor is not a session leader (it never gets a
    // controlling terminal) and is re-parented away from the caller.
    if let Err(e) = setsid() {
        send(
            &mut report,
            &Report::Failed(SetupError::syscall("setsid", e)),
        );
        return ExitCode::from(125);
    }
    match sys::fork_process() {
        Err(e) => {
            send(&mut report, &Report::Failed(SetupError::syscall("fork", e)));
            return ExitCode::from(125);
        }
        Ok(Cloned::Parent(_)) => sys::exit_immediately(0),
        Ok(Cloned::Child) => {}
    }
    let mut report = Some(report);
    let created = Monitor::create(dir, &mut report);
    let Some(mut report) = report else {
        return ExitCode::from(125);
    };
    match created {
        Ok((mut monitor, warnings)) => {
            send(
                &mut report,
                &Report::Created {
                    pid: monitor.pid.as_raw(),
                    monitor_pid: std::process::id() as i32,
                    warnings,
                },
            );
            drop(report);
            monitor.run();
            ExitCode::SUCCESS
        }
        Err(e) => {
            send(&mut report, &Report::Failed(e));
            ExitCode::from(125)
        }
    }
}

struct LogSource {
    fd: File,
    stream: Stream,
    splitter: LineSplitter,
}

struct Monitor {
    dir: PathBuf,
    state: State,
    pid: Pid,
    cgroup: Cgroup,
    channel: Option<Channel<ToInit, FromInit>>,
    listener: UnixListener,
    sigfd: SignalFd,
    sources: Vec<LogSource>,
    writer: Option<LogWriter>,
    waiters: Vec<UnixStream>,
    exit_code: Option<i32>,
}

/// `linux.cgroupsPath` when it is a plain path (`/parent/name`), else `<cgroup_parent>/<id>`
/// (systemd's `slice:prefix:name` form is not supported and falls back to the default).
fn cgroup_location(launch: &LaunchConfig) -> (String, String) {
    let req = &launch.request;
    let path = req
        .spec
        .linux()
        .as_ref()
        .and_then(|l| l.cgroups_path().clone());
    if let Some(p) = path
        && !p.to_string_lossy().contains(':')
        && let Some(name) = p.file_name()
    {
        let parent = p
            .parent()
            .map(|x| x.to_string_lossy().into_owned())
            .unwrap_or_default();
        return (parent, name.to_string_lossy().into_owned());
    }
    (launch.cgroup_parent.clone(), req.id.clone())
}

fn write_id_maps(pid: Pid, spec: &oci_spec::runtime::Spec) -> Result<(), SetupError> {
    let Some(linux) = spec.linux() else {
        return Ok(());
    };
    for (file, maps) in [
        ("uid_map", linux.uid_mappings()),
        ("gid_map", linux.gid_mappings()),
    ] {
        let text: String = maps
            .iter()
            .flatten()
            .map(|m| format!("{} {} {}\n", m.container_id(), m.host_id(), m.size()))
            .collect();
        let path = PathBuf::from(format!("/proc/{pid}/{file}"));
        std::fs::write(&path, text).map_err(|e| SetupError::IdMap {
            path: path.display().to_string(),
            errno: Errnum::from(&e),
        })?;
    }
    Ok(())
}

impl Monitor {
    /// Creates the container. `report` is taken (closed) in the cloned init, which must not
    /// keep the caller's report pipe open.
    fn create(dir: &Path, report: &mut Option<File>) -> Result<(Self, Vec<String>), SetupError> {
        let launch: LaunchConfig = read_json(&dir.join(files::REQUEST))
            .map_err(|_| SetupError::fs("read", dir.join(files::REQUEST), Errnum(libc::EINVAL)))?;
        let mut state = State::load(dir)
            .map_err(|_| SetupError::fs("read", dir.join(files::STATE), Errnum(libc::EINVAL)))?;
        let req = &launch.request;
        sys::set_signal_disposition(Signal::SIGPIPE, true)
            .map_err(|e| SetupError::syscall("sigaction", e))?;
        let mut mask = SigSet::empty();
        mask.add(Signal::SIGCHLD);
        sigprocmask(SigmaskHow::SIG_BLOCK, Some(&mask), None)
            .map_err(|e| SetupError::syscall("sigprocmask", e))?;
        let sigfd = SignalFd::with_flags(&mask, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC)
            .map_err(|e| SetupError::syscall("signalfd", e))?;

        let plan = crate::namespaces::plan(&req.spec, req.netns.as_ref())?;
        let (cg_parent, cg_name) = cgroup_location(&launch);
        let cgroup = Cgroup::create(&cg_parent, &cg_name)?;
        let undo_cgroup = |e: SetupError| {
            let _ = cgroup.remove();
            e
        };
        if let Some(res) = req
            .spec
            .linux()
            .as_ref()
            .and_then(|l| l.resources().as_ref())
        {
            cgroup.apply(res).map_err(|e| undo_cgroup(e.into()))?;
        }
        let stdio = prepare_stdio(&req.stdio).map_err(undo_cgroup)?;
        let writer = match &req.stdio {
            Stdio::Logs(cfg) | Stdio::LogsWithInput { logs: cfg, .. } => {
                Some(LogWriter::open(cfg.clone()).map_err(|e| {
                    let errno = match &e {
                        crate::logs::LogError::Write { source, .. } => Errnum::from(source),
                        _ => Errnum(libc::EIO),
                    };
                    undo_cgroup(SetupError::fs("open log", &cfg.path, errno))
                })?)
            }
            _ => None,
        };
        let (mon_ch, init_ch) = channel::pair::<ToInit, FromInit>().map_err(|e| {
            undo_cgroup(SetupError::Channel {
                reason: e.to_string(),
            })
        })?;
        let rootfs_dir = dir.join(files::ROOTFS);
        std::fs::create_dir_all(&rootfs_dir)
            .map_err(|e| undo_cgroup(SetupError::fs("mkdir", &rootfs_dir, &e)))?;
        let sock_path = dir.join(files::SOCKET);
        let listener = UnixListener::bind(&sock_path)
            .map_err(|e| undo_cgroup(SetupError::fs("bind", &sock_path, &e)))?;
        listener
            .set_nonblocking(true)
            .map_err(|e| undo_cgroup(SetupError::fs("bind", &sock_path, &e)))?;

        let pid = match sys::clone_process(plan.clone_flags) {
            Err(e) => {
                let _ = std::fs::remove_file(&sock_path);
                return Err(undo_cgroup(SetupError::syscall("clone", e)));
            }
            Ok(Cloned::Child) => {
                drop(report.take());
                drop(listener);
                drop(mon_ch);
                drop(sigfd);
                init::run(InitArgs {
                    spec: &req.spec,
                    rootfs: &req.rootfs,
                    user: req.user.as_deref(),
                    init: req.init,
                    rootfs_dir,
                    channel: init_ch,
                    stdio: stdio.child,
                    tty: stdio.tty,
                    console: stdio.console.clone(),
                    cgroup_mounts: cgroup.mounts(),
                    join: plan.join,
                    new_cgroupns: plan.new_cgroupns,
                    new_userns: plan.new_userns,
                })
            }
            Ok(Cloned::Parent(pid)) => pid,
        };
        drop(init_ch);
        drop(stdio.child);
        let mut mon_ch = mon_ch;
        let handshake = (|| {
            if plan.new_userns {
                write_id_maps(pid, &req.spec)?;
            }
            let send = |ch: &mut Channel<ToInit, FromInit>, m: &ToInit| {
                ch.send(m).map_err(|e| SetupError::Channel {
                    reason: e.to_string(),
                })
            };
            // The init sets its root file system up while its pid goes into the cgroups
            // (the first write to a v1 `cgroup.procs` waits for an RCU grace period,
            // around ten milliseconds); it waits for `Joined` before it needs them.
            send(&mut mon_ch, &ToInit::Proceed)?;
            cgroup.add_process(pid.as_raw())?;
            // An init that failed meanwhile no longer reads: its report below says why.
            let _ = send(&mut mon_ch, &ToInit::Joined);
            match mon_ch.recv() {
                Ok(Some(FromInit::Ready { warnings })) => Ok(warnings),
                Ok(Some(FromInit::Failed(e))) => Err(e),
                Ok(None) | Err(_) => Err(SetupError::InitDied),
            }
        })();
        let warnings = match handshake {
            Ok(w) => w,
            Err(e) => {
                let _ = kill(pid, Signal::SIGKILL);
                let _ = waitpid(pid, None);
                let _ = std::fs::remove_file(&sock_path);
                return Err(undo_cgroup(e));
            }
        };
        state.status = Status::Created;
        state.pid = Some(pid.as_raw());
        state.monitor_pid = Some(std::process::id() as i32);
        state.cgroup_paths = cgroup.paths();
        let _ = state.save(dir);
        // The monitor keeps nothing of the caller: its own stdio goes to /dev/null.
        if let Ok(null) = devnull() {
            let _ = nix::unistd::dup2_stdin(&null);
            let _ = nix::unistd::dup2_stdout(&null);
            let _ = nix::unistd::dup2_stderr(&null);
        }
        let sources = stdio
            .outputs
            .into_iter()
            .map(|(fd, stream)| LogSource {
                fd: File::from(fd),
                stream,
                splitter: LineSplitter::default(),
            })
            .collect();
        Ok((
            Self {
                dir: dir.to_owned(),
                state,
                pid,
                cgroup,
                channel: Some(mon_ch),
                listener,
                sigfd,
                sources,
                writer,
                waiters: Vec::new(),
                exit_code: None,
            },
            warnings,
        ))
    }

    fn run(&mut self) {
        let mut drain_deadline = None;
        // Scanned at the first idle moment, not before: reading `smaps` takes milliseconds,
        // and a `start` request is usually already waiting.
        let mut mappings = None;
        // After IDLE_AFTER without events the monitor sheds its memory and sleeps.
        let mut released = false;
        loop {
            if self.exit_code.is_some() {
                let deadline =
                    *drain_deadline.get_or_insert_with(|| Instant::now() + DRAIN_TIMEOUT);
                if self.sources.is_empty() || Instant::now() >= deadline {
                    break;
                }
            }
            let timeout = match drain_deadline {
                Some(d) => PollTimeout::try_from(d.saturating_duration_since(Instant::now()))
                    .unwrap_or(PollTimeout::ZERO),
                None if released => PollTimeout::NONE,
                None => PollTimeout::try_from(IDLE_AFTER).unwrap_or(PollTimeout::NONE),
            };
            let ready = {
                let mut fds = vec![
                    PollFd::new(self.sigfd.as_fd(), PollFlags::POLLIN),
                    PollFd::new(self.listener.as_fd(), PollFlags::POLLIN),
                ];
                fds.extend(
                    self.sources
                        .iter()
                        .map(|s| PollFd::new(s.fd.as_fd(), PollFlags::POLLIN)),
                );
                if let Some(ch) = &self.channel {
                    fds.push(PollFd::new(ch.as_fd(), PollFlags::POLLIN));
                }
                match poll(&mut fds, timeout) {
                    Ok(0) if drain_deadline.is_none() => {
                        drop(fds);
                        release_memory(mappings.get_or_insert_with(clean_file_mappings));
                        released = true;
                        continue;
                    }
                    Ok(_) => released = false,
                    Err(nix::errno::Errno::EINTR) => continue,
                    Err(_) => break,
                }
                fds.iter()
                    .map(|f| f.revents().is_some_and(|r| !r.is_empty()))
                    .collect::<Vec<bool>>()
            };
            let n_sources = self.sources.len();
            if ready[0] {
                self.reap();
            }
            if ready[1] {
                self.accept_clients();
            }
            for i in (0..n_sources).rev() {
                if ready[2 + i] {
                    self.read_output(i);
                }
            }
            if self.channel.is_some() && ready.get(2 + n_sources) == Some(&true) {
                self.read_channel();
            }
        }
        self.finish();
    }

    fn reap(&mut self) {
        while let Ok(Some(_)) = self.sigfd.read_signal() {}
        loop {
            match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::Exited(pid, code)) if pid == self.pid => self.exit_code = Some(code),
                Ok(WaitStatus::Signaled(pid, sig, _)) if pid == self.pid => {
                    self.exit_code = Some(128 + sig as i32)
                }
                Ok(WaitStatus::StillAlive) | Err(_) => break,
                Ok(_) => {}
            }
        }
    }

    fn read_channel(&mut self) {
        if let Some(ch) = &mut self.channel {
            // Either EOF (the init exec'd) or the reason the exec failed (the exit code,
            // 126 or 127, tells the caller).
            if !matches!(ch.recv(), Ok(Some(FromInit::Ready { .. }))) {
                self.channel = None;
            }
        }
    }

    fn read_output(&mut self, i: usize) {
        let mut buf = [0u8; 8192];
        let src = &mut self.sources[i];
        let n = match src.fd.read(&mut buf) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => return,
            Err(_) => 0,
        };
        let stream = src.stream;
        let writer = &mut self.writer;
        let mut emit = |line: &[u8]| -> Result<(), ()> {
            if let Some(w) = writer {
                // A full disk must not stop the container: the line is dropped.
                let _ = w.write(stream, line);
            }
            Ok(())
        };
        if n == 0 {
            let _ = src.splitter.finish(&mut emit);
            self.sources.remove(i);
        } else {
            let _ = src.splitter.feed(&buf[..n], &mut emit);
        }
    }

    fn accept_clients(&mut self) {
        while let Ok((stream, _)) = self.listener.accept() {
            let _ = stream.set_nonblocking(false);
            let _ = stream.set_read_timeout(Some(CLIENT_TIMEOUT));
            let mut line = String::new();
            if BufReader::new(&stream).read_line(&mut line).is_err() {
                continue;
            }
            let Ok(request) = serde_json::from_str::<Request>(line.trim()) else {
                continue;
            };
            match self.handle(request) {
                Some(response) => reply(&stream, &response),
                None => self.waiters.push(stream),
            }
        }
    }

    /// Answers a request, or `None` to answer when the container exits.
    fn handle(&mut self, request: Request) -> Option<Response> {
        if let Some(code) = self.exit_code
            && request != Request::Wait
        {
            return Some(Response::Exited {
                exit_code: code,
                oom_killed: self.cgroup.oom_killed(),
            });
        }
        let refused = |s: Status| Response::Refused {
            status: s.as_str().to_owned(),
        };
        let status = self.state.status;
        let response = match request {
            Request::Wait => return None,
            Request::Start if status != Status::Created => refused(status),
            Request::Start => match self.channel.as_mut().map(|c| c.send(&ToInit::Start)) {
                Some(Ok(())) => {
                    self.state.status = Status::Running;
                    self.state.started_at = Some(crate::clock::now_rfc3339());
                    let _ = self.state.save(&self.dir);
                    Response::Ok
                }
                _ => Response::Failed(SetupError::InitDied),
            },
            Request::Kill { signal, all } => self.kill(signal, all),
            Request::Pause if status != Status::Running => refused(status),
            Request::Resume if status != Status::Paused => refused(status),
            Request::Pause | Request::Resume => {
                let pause = request == Request::Pause;
                match self.cgroup.set_frozen(pause) {
                    Ok(()) => {
                        self.state.status = if pause {
                            Status::Paused
                        } else {
                            Status::Running
                        };
                        let _ = self.state.save(&self.dir);
                        Response::Ok
                    }
                    Err(e) => Response::Failed(e.into()),
                }
            }
        };
        Some(response)
    }

    fn kill(&mut self, signal: i32, all: bool) -> Response {
        let sig = match Signal::try_from(signal) {
            Ok(s) => s,
            Err(e) => return Response::Failed(SetupError::syscall("kill", e)),
        };
        let pids = if all {
            self.cgroup.pids().unwrap_or_default()
        } else {
            vec![self.pid.as_raw()]
        };
        let mut result = Response::Ok;
        for p in pids {
            if let Err(e) = kill(Pid::from_raw(p), sig)
                && p == self.pid.as_raw()
            {
                result = Response::Failed(SetupError::syscall("kill", e));
            }
        }
        // A frozen process only dies once thawed.
        if self.state.status == Status::Paused && sig == Signal::SIGKILL {
            let _ = self.cgroup.set_frozen(false);
        }
        result
    }

    fn finish(&mut self) {
        let code = self.exit_code.unwrap_or(255);
        let oom = self.cgroup.oom_killed();
        self.state.status = Status::Stopped;
        self.state.exit_code = Some(code);
        self.state.oom_killed = oom;
        self.state.finished_at = Some(crate::clock::now_rfc3339());
        let _ = self.state.save(&self.dir);
        let _ = self.cgroup.remove();
        let _ = std::fs::remove_file(self.dir.join(files::SOCKET));
        let response = Response::Exited {
            exit_code: code,
            oom_killed: oom,
        };
        for w in self.waiters.drain(..) {
            reply(&w, &response);
        }
        // Clients that connected meanwhile get the same answer instead of a reset.
        while let Ok((stream, _)) = self.listener.accept() {
            let _ = stream.set_nonblocking(false);
            let _ = stream.set_read_timeout(Some(CLIENT_TIMEOUT));
            let mut line = String::new();
            let _ = BufReader::new(&stream).read_line(&mut line);
            reply(&stream, &response);
        }
    }
}

fn reply(mut stream: &UnixStream, response: &Response) {
    if let Ok(mut line) = serde_json::to_vec(response) {
        line.push(b'\n');
        let _ = stream.write_all(&line);
    }
}
