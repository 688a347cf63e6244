//! [`Runtime`]: creates containers (through a detached monitor process per container),
//! loads and lists them from its state directory.

use std::ffi::OsString;
use std::fs;
use std::io::Read;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::Command;

use nix::fcntl::OFlag;
use nix::unistd::pipe2;

use crate::cgroups::CgroupError;
use crate::container::Container;
use crate::monitor::LaunchConfig;
use crate::process::message::{Report, SetupError};
use crate::state::{State, StateError, files, write_json_atomic};
use crate::{ContainerRequest, Stdio};

/// The hidden subcommand of the `berth` binary that runs [`crate::helper::main`].
pub const HELPER_SUBCOMMAND: &str = "runtime-helper";

/// Errors of the runtime API.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// Setting the container (or exec'd process) up failed; the message is the cause.
    #[error(transparent)]
    Setup(#[from] SetupError),
    /// The state directory could not be written.
    #[error("write container state {path}")]
    StateDir {
        /// The path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// Reading or writing a state file failed.
    #[error(transparent)]
    State(#[from] StateError),
    /// The helper binary could not be started.
    #[error("start helper {helper}")]
    Spawn {
        /// The helper executable.
        helper: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The helper ended without reporting.
    #[error("monitor of container {id} exited without reporting")]
    MonitorDied {
        /// Container id.
        id: String,
    },
    /// No container with this id.
    #[error("no such container: {id}")]
    NotFound {
        /// Container id.
        id: String,
    },
    /// The container's monitor is gone although the container did not stop.
    #[error("monitor of container {id} is gone")]
    MonitorGone {
        /// Container id.
        id: String,
    },
    /// Talking to the monitor failed.
    #[error("control socket {path}")]
    Control {
        /// The socket.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The container is not in a status that allows the operation.
    #[error("container {id} is {status}")]
    WrongStatus {
        /// Container id.
        id: String,
        /// Its status.
        status: String,
    },
    /// A running container cannot be deleted without force.
    #[error("container {id} is running: stop it first or force the removal")]
    StillRunning {
        /// Container id.
        id: String,
    },
    /// Removing the state directory failed.
    #[error("remove {path}")]
    Remove {
        /// The path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A cgroup operation failed.
    #[error(transparent)]
    Cgroup(#[from] CgroupError),
}

/// Configuration of a [`Runtime`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuntimeConfig {
    /// State directory: one sub-directory per container (e.g. `<berth-root>/containers`).
    pub root: PathBuf,
    /// The executable that runs [`crate::helper::main`] (default: the running binary).
    pub helper_exe: PathBuf,
    /// Arguments that select the helper entry in `helper_exe` (default: `runtime-helper`).
    pub helper_args: Vec<OsString>,
    /// Cgroup parent: containers get `<cgroup_parent>/<id>` (default `berth`).
    pub cgroup_parent: String,
}

impl RuntimeConfig {
    /// Defaults for the `berth` binary, with state under `root`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self {
            root: root.into(),
            helper_exe: std::env::current_exe().unwrap_or_else(|_| "/proc/self/exe".into()),
            helper_args: vec![HELPER_SUBCOMMAND.into()],
            cgroup_parent: "berth".into(),
        }
    }
}

/// The container runtime: a state directory and the helper that runs monitors.
///
/// ```no_run
/// use berth_runtime::{ContainerRequest, Rootfs, Runtime, RuntimeConfig};
///
/// let rt = Runtime::new(RuntimeConfig::new("/var/lib/berth/containers"));
/// let rootfs = Rootfs::Path("/tmp/bundle/rootfs".into());
/// let c = rt.create(ContainerRequest::new("demo", &["echo", "hi"], rootfs))?;
/// c.start()?;
/// let status = c.wait()?;
/// c.delete(false)?;
/// assert_eq!(status.code, 0);
/// # Ok::<(), berth_runtime::RuntimeError>(())
/// ```
#[derive(Debug, Clone)]
pub struct Runtime {
    config: RuntimeConfig,
}

impl Runtime {
    /// A runtime with this configuration (nothing is touched until used).
    pub fn new(config: RuntimeConfig) -> Self {
        Self { config }
    }

    /// Its configuration.
    pub fn config(&self) -> &RuntimeConfig {
        &self.config
    }

    fn dir_of(&self, id: &str) -> PathBuf {
        self.config.root.join(id)
    }

    /// Creates a container: validates the request, starts its monitor and returns once the
    /// container is set up and waiting for [`Container::start`]. On failure nothing of it
    /// remains.
    pub fn create(&self, req: ContainerRequest) -> Result<Container, RuntimeError> {
        self.create_with_bundle(req, None)
    }

    /// [`Runtime::create`], recording the OCI bundle it came from.
    pub fn create_with_bundle(
        &self,
        req: ContainerRequest,
        bundle: Option<PathBuf>,
    ) -> Result<Container, RuntimeError> {
        crate::request::validate(&req)?;
        let id = req.id.clone();
        let dir = self.dir_of(&id);
        let dir_err = |source| RuntimeError::StateDir {
            path: dir.clone(),
            source,
        };
        fs::create_dir_all(&self.config.root).map_err(dir_err)?;
        match fs::create_dir(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                return Err(SetupError::AlreadyExists { id }.into());
            }
            Err(e) => return Err(dir_err(e)),
        }
        let result = self.launch(&dir, req, bundle);
        if result.is_err() {
            let _ = fs::remove_dir_all(&dir);
        }
        result
    }

    fn launch(
        &self,
        dir: &Path,
        req: ContainerRequest,
        bundle: Option<PathBuf>,
    ) -> Result<Container, RuntimeError> {
        let id = req.id.clone();
        let inherit = req.stdio == Stdio::Inherit;
        State::new(&id, bundle).save(dir)?;
        let launch = LaunchConfig {
            request: req,
            cgroup_parent: self.config.cgroup_parent.clone(),
        };
        write_json_atomic(&dir.join(files::REQUEST), &launch)?;
        let report = self.run_helper("monitor", &[dir.as_os_str().to_owned()], inherit)?;
        match report {
            Some(Report::Created { warnings, .. }) => Ok(Container::new(
                self.config.clone(),
                id,
                dir.to_owned(),
                warnings,
            )),
            Some(Report::Failed(e)) => Err(e.into()),
            None => Err(RuntimeError::MonitorDied { id }),
        }
    }

    /// Spawns the helper with `args`, waits for it (the monitor detaches itself) and returns
    /// the report it wrote on fd 3.
    fn run_helper(
        &self,
        sub: &str,
        args: &[OsString],
        inherit: bool,
    ) -> Result<Option<Report>, RuntimeError> {
        let helper = &self.config.helper_exe;
        let spawn_err = |source| RuntimeError::Spawn {
            helper: helper.clone(),
            source,
        };
        let (r, w) = pipe2(OFlag::O_CLOEXEC).map_err(|e| spawn_err(e.into()))?;
        let mut cmd = Command::new(helper);
        cmd.args(&self.config.helper_args).arg(sub).args(args);
        if !inherit {
            cmd.stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null());
        }
        crate::sys::pass_fd(&mut cmd, w.as_raw_fd(), crate::helper::REPORT_FD);
        let mut child = cmd.spawn().map_err(spawn_err)?;
        drop(w);
        let report = read_report(r);
        let _ = child.wait();
        report.map_err(spawn_err)
    }

    /// The container with this id.
    pub fn load(&self, id: &str) -> Result<Container, RuntimeError> {
        crate::request::validate_id(id)?;
        let dir = self.dir_of(id);
        if !dir.join(files::STATE).exists() {
            return Err(RuntimeError::NotFound { id: id.to_owned() });
        }
        Ok(Container::new(
            self.config.clone(),
            id.to_owned(),
            dir,
            Vec::new(),
        ))
    }

    /// The state of every container, sorted by id.
    pub fn list(&self) -> Result<Vec<State>, RuntimeError> {
        let entries = match fs::read_dir(&self.config.root) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => {
                return Err(RuntimeError::StateDir {
                    path: self.config.root.clone(),
                    source,
                });
            }
        };
        let mut out = Vec::new();
        for entry in entries.flatten() {
            let dir = entry.path();
            if dir.join(files::STATE).exists() {
                out.push(State::load(&dir)?);
            }
        }
        out.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(out)
    }

    /// Spawns the exec helper (used by [`Container::exec`]).
    pub(crate) fn helper_command(&self, sub: &str, args: &[OsString]) -> Command {
        let mut cmd = Command::new(&self.config.helper_exe);
        cmd.args(&self.config.helper_args).arg(sub).args(args);
        cmd
    }
}

/// How long a helper may take to report (a stuck set-up must not hang the caller forever).
const REPORT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// Reads the one-line report a helper writes on its report pipe. Only the first line counts:
/// the pipe may stay open in processes that outlive the report.
pub(crate) fn read_report(r: std::os::fd::OwnedFd) -> std::io::Result<Option<Report>> {
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    use std::os::fd::AsFd;
    let deadline = std::time::Instant::now() + REPORT_TIMEOUT;
    let mut file = fs::File::from(r);
    let mut line = Vec::new();
    let mut byte = [0u8; 512];
    while !line.contains(&b'\n') {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let timeout = PollTimeout::try_from(left).unwrap_or(PollTimeout::ZERO);
        let mut fds = [PollFd::new(file.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, timeout) {
            Ok(0) => return Err(std::io::Error::from(std::io::ErrorKind::TimedOut)),
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(e.into()),
        }
        match file.read(&mut byte)? {
            0 => break,
            n => line.extend_from_slice(&byte[..n]),
        }
    }
    let first = line.split(|&b| b == b'\n').next().unwrap_or_default();
    Ok(serde_json::from_slice(first).ok())
}
