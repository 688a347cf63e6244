//! [`Container`]: a handle on one container, talking to its monitor over the control
//! socket and reading its recorded state. Any process may hold one (the creator, the CLI
//! later, the daemon after a restart).

use std::ffi::OsString;
use std::io::{BufRead, BufReader, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::fcntl::OFlag;
use nix::sys::signal::Signal;
use nix::unistd::pipe2;
use oci_spec::runtime::Process;
use serde::{Deserialize, Serialize};

use crate::cgroups::{Cgroup, Stats};
use crate::monitor::LaunchConfig;
use crate::process::message::{Report, Request, Response, SetupError};
use crate::runtime::{Runtime, RuntimeConfig, RuntimeError};
use crate::state::{State, Status, files, read_json};

/// How a container's process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExitStatus {
    /// Exit code; `128 + n` when killed by signal `n`.
    pub code: i32,
    /// Whether the OOM killer ended it.
    pub oom_killed: bool,
}

/// A handle on one container.
#[derive(Debug, Clone)]
pub struct Container {
    config: RuntimeConfig,
    id: String,
    dir: PathBuf,
    warnings: Vec<String>,
}

/// What to run with [`Container::exec`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ExecRequest {
    /// The process (args, env, cwd, capabilities, rlimits…); see [`Container::process`].
    pub process: Process,
    /// `user[:group]` resolved in the container, overriding `process.user`.
    pub user: Option<String>,
    /// Run it on a new pseudo-terminal, relayed to the exec handle's stdio.
    pub tty: bool,
}

/// Where an exec'd process's standard streams go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExecStdio {
    /// The caller's.
    Inherit,
    /// Pipes readable/writable through [`ExecHandle::child`].
    Piped,
    /// `/dev/null`.
    Null,
}

/// A process running in a container through [`Container::exec`].
#[derive(Debug)]
pub struct ExecHandle {
    child: std::process::Child,
    pid: i32,
}

impl ExecHandle {
    /// Host pid of the exec'd process.
    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// The helper process relaying it (its stdin/stdout/stderr are the process's).
    pub fn child(&mut self) -> &mut std::process::Child {
        &mut self.child
    }

    /// Waits for the process; returns its exit code (`128 + signal` when killed).
    pub fn wait(mut self) -> Result<i32, RuntimeError> {
        let status = self.child.wait().map_err(|source| RuntimeError::Control {
            path: PathBuf::from("exec helper"),
            source,
        })?;
        Ok(status.code().unwrap_or(255))
    }

    /// Waits and collects stdout and stderr (with [`ExecStdio::Piped`]).
    pub fn wait_with_output(self) -> Result<(i32, Vec<u8>, Vec<u8>), RuntimeError> {
        let out = self
            .child
            .wait_with_output()
            .map_err(|source| RuntimeError::Control {
                path: PathBuf::from("exec helper"),
                source,
            })?;
        Ok((out.status.code().unwrap_or(255), out.stdout, out.stderr))
    }
}

impl Container {
    pub(crate) fn new(
        config: RuntimeConfig,
        id: String,
        dir: PathBuf,
        warnings: Vec<String>,
    ) -> Self {
        Self {
            config,
            id,
            dir,
            warnings,
        }
    }

    /// The id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The state directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Warnings from creation (clamped rlimits…).
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// The recorded state, read from disk now.
    pub fn state(&self) -> Result<State, RuntimeError> {
        Ok(State::load(&self.dir)?)
    }

    /// The request the container was created from.
    pub fn launch_config(&self) -> Result<LaunchConfig, RuntimeError> {
        Ok(read_json(&self.dir.join(files::REQUEST))?)
    }

    /// The container's own process with other arguments: the template for [`Self::exec`]
    /// (same env, cwd, user, capabilities and rlimits, as `docker exec` does).
    pub fn process(&self, args: &[&str]) -> Result<Process, RuntimeError> {
        let launch = self.launch_config()?;
        let mut p = launch.request.spec.process().clone().unwrap_or_default();
        p.set_args(Some(args.iter().map(|s| s.to_string()).collect()));
        p.set_terminal(None);
        Ok(p)
    }

    fn control(
        &self,
        req: &Request,
        timeout: Option<Duration>,
    ) -> Result<Option<Response>, RuntimeError> {
        let path = self.dir.join(files::SOCKET);
        let err = |source| RuntimeError::Control {
            path: path.clone(),
            source,
        };
        let mut stream = match UnixStream::connect(&path) {
            Ok(s) => s,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused
                ) =>
            {
                return Ok(None);
            }
            Err(e) => return Err(err(e)),
        };
        let mut line = serde_json::to_vec(req).map_err(|e| err(std::io::Error::other(e)))?;
        line.push(b'\n');
        // A monitor that exits while we connect resets the connection: it is gone.
        let gone = |e: &std::io::Error| {
            matches!(
                e.kind(),
                std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::BrokenPipe
            )
        };
        match stream.write_all(&line) {
            Ok(()) => {}
            Err(e) if gone(&e) => return Ok(None),
            Err(e) => return Err(err(e)),
        }
        stream.set_read_timeout(timeout).map_err(err)?;
        let mut answer = String::new();
        match BufReader::new(&stream).read_line(&mut answer) {
            Ok(_) => {}
            Err(e) if gone(&e) => return Ok(None),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return Err(err(e));
            }
            Err(e) => return Err(err(e)),
        }
        Ok(serde_json::from_str(answer.trim()).ok())
    }

    fn expect_ok(&self, req: Request) -> Result<(), RuntimeError> {
        match self.control(&req, None)? {
            Some(Response::Ok) => Ok(()),
            Some(Response::Refused { status }) => Err(RuntimeError::WrongStatus {
                id: self.id.clone(),
                status,
            }),
            Some(Response::Failed(e)) => Err(e.into()),
            Some(Response::Exited { .. }) => Err(RuntimeError::WrongStatus {
                id: self.id.clone(),
                status: Status::Stopped.as_str().into(),
            }),
            None => Err(self.gone()),
        }
    }

    fn gone(&self) -> RuntimeError {
        match self.state() {
            Ok(s) if s.status == Status::Stopped => RuntimeError::WrongStatus {
                id: self.id.clone(),
                status: "stopped".into(),
            },
            _ => RuntimeError::MonitorGone {
                id: self.id.clone(),
            },
        }
    }

    /// Lets the created container run its process.
    pub fn start(&self) -> Result<(), RuntimeError> {
        self.expect_ok(Request::Start)
    }

    /// Sends `signal` to the container's init.
    pub fn kill(&self, signal: Signal) -> Result<(), RuntimeError> {
        self.expect_ok(Request::Kill {
            signal: signal as i32,
            all: false,
        })
    }

    /// Sends `signal` to every process of the container.
    pub fn kill_all(&self, signal: Signal) -> Result<(), RuntimeError> {
        self.expect_ok(Request::Kill {
            signal: signal as i32,
            all: true,
        })
    }

    /// Freezes every process of the container.
    pub fn pause(&self) -> Result<(), RuntimeError> {
        self.expect_ok(Request::Pause)
    }

    /// Thaws the container.
    pub fn resume(&self) -> Result<(), RuntimeError> {
        self.expect_ok(Request::Resume)
    }

    /// Waits until the container's process exits.
    pub fn wait(&self) -> Result<ExitStatus, RuntimeError> {
        self.wait_timeout(None)?
            .ok_or_else(|| RuntimeError::MonitorGone {
                id: self.id.clone(),
            })
    }

    /// Waits at most `timeout` (`None`: forever); `Ok(None)` when it is still running.
    pub fn wait_timeout(
        &self,
        timeout: Option<Duration>,
    ) -> Result<Option<ExitStatus>, RuntimeError> {
        match self.control(&Request::Wait, timeout) {
            Ok(Some(Response::Exited {
                exit_code,
                oom_killed,
            })) => Ok(Some(ExitStatus {
                code: exit_code,
                oom_killed,
            })),
            Err(RuntimeError::Control { source, .. })
                if matches!(
                    source.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                Ok(None)
            }
            Err(e) => Err(e),
            // No monitor (or it closed without answering): the state file has the end.
            Ok(_) => {
                let s = self.state()?;
                match (s.status, s.exit_code) {
                    (Status::Stopped, Some(code)) => Ok(Some(ExitStatus {
                        code,
                        oom_killed: s.oom_killed,
                    })),
                    _ => Err(RuntimeError::MonitorGone {
                        id: self.id.clone(),
                    }),
                }
            }
        }
    }

    /// Docker's `stop`: `SIGTERM`, then `SIGKILL` if still running after `grace`.
    pub fn stop(&self, grace: Duration) -> Result<ExitStatus, RuntimeError> {
        let deadline = Instant::now() + grace;
        match self.kill(Signal::SIGTERM) {
            Ok(()) => {}
            Err(RuntimeError::WrongStatus { .. }) => return self.wait(),
            Err(e) => return Err(e),
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if let Some(status) = self.wait_timeout(Some(left.max(Duration::from_millis(1))))? {
            return Ok(status);
        }
        match self.kill(Signal::SIGKILL) {
            Ok(()) | Err(RuntimeError::WrongStatus { .. }) => self.wait(),
            Err(e) => Err(e),
        }
    }

    /// Removes the container (its state directory and cgroups). A container that has not
    /// stopped is refused unless `force`, which kills it first.
    pub fn delete(&self, force: bool) -> Result<(), RuntimeError> {
        let state = self.state()?;
        if state.status != Status::Stopped {
            let monitor_alive = state.monitor_pid.is_some_and(|p| {
                nix::sys::signal::kill(nix::unistd::Pid::from_raw(p), None).is_ok()
            });
            if monitor_alive {
                if !force {
                    return Err(RuntimeError::StillRunning {
                        id: self.id.clone(),
                    });
                }
                match self.kill(Signal::SIGKILL) {
                    Ok(()) | Err(RuntimeError::WrongStatus { .. }) => {}
                    Err(e) => return Err(e),
                }
                self.wait()?;
            }
        }
        Cgroup::open(&state.cgroup_paths).remove()?;
        std::fs::remove_dir_all(&self.dir).map_err(|source| RuntimeError::Remove {
            path: self.dir.clone(),
            source,
        })
    }

    fn cgroup(&self) -> Result<Cgroup, RuntimeError> {
        let s = self.state()?;
        match s.status {
            Status::Running | Status::Paused | Status::Created => Ok(Cgroup::open(&s.cgroup_paths)),
            other => Err(RuntimeError::WrongStatus {
                id: self.id.clone(),
                status: other.as_str().into(),
            }),
        }
    }

    /// Resource usage from the container's cgroup counters.
    pub fn stats(&self) -> Result<Stats, RuntimeError> {
        Ok(self.cgroup()?.stats())
    }

    /// The processes of the container.
    pub fn top(&self) -> Result<Vec<crate::top::ProcessInfo>, RuntimeError> {
        let pids = self.cgroup()?.pids()?;
        Ok(crate::top::processes(&pids))
    }

    /// Runs another process in the running container: all its namespaces and its cgroup.
    /// Returns once the process has started (or failed to, with the reason).
    pub fn exec(
        &self,
        request: &ExecRequest,
        stdio: ExecStdio,
    ) -> Result<ExecHandle, RuntimeError> {
        let status = self.state()?.status;
        if status != Status::Running {
            return Err(RuntimeError::WrongStatus {
                id: self.id.clone(),
                status: status.as_str().into(),
            });
        }
        let json = serde_json::to_string(request).map_err(|e| RuntimeError::Control {
            path: self.dir.clone(),
            source: std::io::Error::other(e),
        })?;
        let rt = Runtime::new(self.config.clone());
        let args: Vec<OsString> = vec![self.dir.as_os_str().to_owned(), json.into()];
        let mut cmd = rt.helper_command("exec", &args);
        let pipe_mode = || match stdio {
            ExecStdio::Inherit => std::process::Stdio::inherit(),
            ExecStdio::Piped => std::process::Stdio::piped(),
            ExecStdio::Null => std::process::Stdio::null(),
        };
        cmd.stdin(pipe_mode())
            .stdout(pipe_mode())
            .stderr(pipe_mode());
        let spawn_err = |source| RuntimeError::Spawn {
            helper: self.config.helper_exe.clone(),
            source,
        };
        let (r, w) = pipe2(OFlag::O_CLOEXEC).map_err(|e| spawn_err(e.into()))?;
        crate::sys::pass_fd(&mut cmd, w.as_raw_fd(), crate::helper::REPORT_FD);
        let mut child = cmd.spawn().map_err(spawn_err)?;
        drop(w);
        let report = crate::runtime::read_report(r).map_err(spawn_err)?;
        match report {
            Some(Report::Created { pid, .. }) => Ok(ExecHandle { child, pid }),
            Some(Report::Failed(e)) => {
                let _ = child.wait();
                Err(e.into())
            }
            None => {
                let _ = child.wait();
                Err(RuntimeError::Setup(SetupError::InitDied))
            }
        }
    }
}
