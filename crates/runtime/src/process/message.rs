//! Messages exchanged by the caller, the monitor, the container init and the exec helper,
//! and the typed error that crosses those process boundaries ([`SetupError`]).

use std::fmt;

use serde::{Deserialize, Serialize};

/// An `errno` value that survives serialisation; displays like `std::io::Error`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Errnum(pub i32);

impl From<nix::errno::Errno> for Errnum {
    fn from(e: nix::errno::Errno) -> Self {
        Self(e as i32)
    }
}

impl From<&std::io::Error> for Errnum {
    fn from(e: &std::io::Error) -> Self {
        Self(e.raw_os_error().unwrap_or(libc::EIO))
    }
}

impl fmt::Display for Errnum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", std::io::Error::from_raw_os_error(self.0))
    }
}

impl std::error::Error for Errnum {}

/// Why a container (or an exec'd process) could not be set up. Produced in the monitor,
/// the container init or the exec helper and carried back to the caller as data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum SetupError {
    /// The container id is not usable as a directory and cgroup name.
    #[error("invalid container id {id:?}: use 1-64 characters of [A-Za-z0-9_.-]")]
    InvalidId {
        /// The id as given.
        id: String,
    },
    /// A container with this id already exists.
    #[error("container {id} already exists")]
    AlreadyExists {
        /// The id.
        id: String,
    },
    /// The process has no arguments.
    #[error("no command specified")]
    NoCommand,
    /// The command is not a path and is not found in `$PATH` (exit code 127).
    #[error("exec: {command:?}: executable file not found in $PATH")]
    CommandNotFound {
        /// The command as given.
        command: String,
    },
    /// The command exists but cannot be executed (exit code 126).
    #[error("exec: {path:?}: permission denied")]
    NotExecutable {
        /// The resolved path inside the container.
        path: String,
    },
    /// `execve` itself failed.
    #[error("exec {path:?}: {errno}")]
    Exec {
        /// The resolved path inside the container.
        path: String,
        /// The error.
        errno: Errnum,
    },
    /// A user name is not in the container's `/etc/passwd`.
    #[error("unable to find user {user}: no matching entries in passwd file")]
    UserNotFound {
        /// The user as given.
        user: String,
    },
    /// A group name is not in the container's `/etc/group`.
    #[error("unable to find group {group}: no matching entries in group file")]
    GroupNotFound {
        /// The group as given.
        group: String,
    },
    /// A user specification is malformed.
    #[error("invalid user specification {user:?}")]
    InvalidUser {
        /// The user as given.
        user: String,
    },
    /// Switching to the container's user failed.
    #[error("set user {uid}:{gid}: {errno}")]
    SetUser {
        /// Target uid.
        uid: u32,
        /// Target gid.
        gid: u32,
        /// The error.
        errno: Errnum,
    },
    /// The source of a bind mount does not exist on the host.
    #[error("bind mount source path does not exist: {source_path}")]
    BindSourceMissing {
        /// The missing host path.
        source_path: String,
    },
    /// A mount failed.
    #[error("mount {source_path} to {target} (type {fstype}): {errno}")]
    Mount {
        /// Mount source.
        source_path: String,
        /// Mount target (host view).
        target: String,
        /// Filesystem type.
        fstype: String,
        /// The error.
        errno: Errnum,
    },
    /// A mount destination escapes the root filesystem or is otherwise unusable.
    #[error("invalid mount destination {destination:?}")]
    InvalidDestination {
        /// The destination as given.
        destination: String,
    },
    /// A mount option is not understood.
    #[error("unknown mount option {option:?} for {destination}")]
    UnknownMountOption {
        /// The option.
        option: String,
        /// Where it was used.
        destination: String,
    },
    /// A file-system operation failed.
    #[error("{op} {path}: {errno}")]
    Fs {
        /// What was done (`mkdir`, `create`, `symlink`, `chdir`, `read`, `write`…).
        op: String,
        /// The path it was done to.
        path: String,
        /// The error.
        errno: Errnum,
    },
    /// `pivot_root` (or unmounting the old root) failed.
    #[error("pivot_root into {path}: {errno}")]
    PivotRoot {
        /// The new root.
        path: String,
        /// The error.
        errno: Errnum,
    },
    /// Creating or joining a namespace failed.
    #[error("{op} {kind} namespace {path}: {errno}")]
    Namespace {
        /// `join` or `create`.
        op: String,
        /// The namespace type.
        kind: String,
        /// Path of the namespace joined (empty when created).
        path: String,
        /// The error.
        errno: Errnum,
    },
    /// Joining an existing PID namespace at create time is not supported.
    #[error("joining an existing pid namespace is not supported")]
    PidNamespacePath,
    /// Writing the user-namespace id maps failed.
    #[error("write id map {path}: {errno}")]
    IdMap {
        /// The map file.
        path: String,
        /// The error.
        errno: Errnum,
    },
    /// Setting the host name failed.
    #[error("set hostname {hostname:?}: {errno}")]
    Hostname {
        /// The host name.
        hostname: String,
        /// The error.
        errno: Errnum,
    },
    /// Setting a resource limit failed.
    #[error("set rlimit {resource}: {errno}")]
    Rlimit {
        /// The limit's name (`RLIMIT_NOFILE`).
        resource: String,
        /// The error.
        errno: Errnum,
    },
    /// A capability name is unknown.
    #[error("unknown capability {name:?}")]
    UnknownCapability {
        /// The name as given.
        name: String,
    },
    /// Applying capabilities failed.
    #[error("apply {set} capabilities: {message}")]
    Capabilities {
        /// Which set (bounding, effective…).
        set: String,
        /// The error reported by the capability library.
        message: String,
    },
    /// Setting `no_new_privs` failed.
    #[error("set no_new_privileges: {errno}")]
    NoNewPrivileges {
        /// The error.
        errno: Errnum,
    },
    /// The seccomp profile cannot be compiled.
    #[error("seccomp profile: {reason}")]
    SeccompProfile {
        /// What is wrong with it.
        reason: String,
    },
    /// Loading the seccomp filter failed.
    #[error("load seccomp filter: {errno}")]
    SeccompLoad {
        /// The error.
        errno: Errnum,
    },
    /// A cgroup could not be created or configured.
    #[error("cgroup {path}: {reason}: {errno}")]
    Cgroup {
        /// The cgroup file or directory.
        path: String,
        /// What was done (`create`, `write "100" to`…).
        reason: String,
        /// The error.
        errno: Errnum,
    },
    /// A requested resource limit is not available on this host.
    #[error("cgroup controller unavailable: {what}")]
    CgroupUnsupported {
        /// The limit that could not be applied.
        what: String,
    },
    /// A system call of the set-up sequence failed (`clone`, `setsid`, `pipe`…).
    #[error("{call}: {errno}")]
    Syscall {
        /// The call.
        call: String,
        /// The error.
        errno: Errnum,
    },
    /// The terminal could not be handed to the console socket.
    #[error("console socket {path}: {errno}")]
    Console {
        /// The socket's path.
        path: String,
        /// The error.
        errno: Errnum,
    },
    /// The container's init died before it reported.
    #[error("container init exited during set-up")]
    InitDied,
    /// A channel between the processes broke.
    #[error("set-up channel broken: {reason}")]
    Channel {
        /// What happened.
        reason: String,
    },
}

impl SetupError {
    /// The exit code Docker uses for this failure: 127 for a missing command, 126 for one
    /// that cannot be executed, 125 for everything else (the runtime's own failure).
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::CommandNotFound { .. } => 127,
            Self::NotExecutable { .. } | Self::Exec { .. } => 126,
            _ => 125,
        }
    }

    /// Shorthand for [`SetupError::Fs`].
    pub fn fs(op: &str, path: impl AsRef<std::path::Path>, errno: impl Into<Errnum>) -> Self {
        Self::Fs {
            op: op.to_owned(),
            path: path.as_ref().display().to_string(),
            errno: errno.into(),
        }
    }

    /// Shorthand for [`SetupError::Syscall`].
    pub fn syscall(call: &str, errno: impl Into<Errnum>) -> Self {
        Self::Syscall {
            call: call.to_owned(),
            errno: errno.into(),
        }
    }
}

/// Monitor → container init.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ToInit {
    /// Id maps written: set up the container.
    Proceed,
    /// The init is in the container's cgroups (sent right after [`ToInit::Proceed`], once
    /// the cgroup writes are done: the init builds the root file system meanwhile).
    Joined,
    /// `start` was called: exec the process.
    Start,
}

/// Container init → monitor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum FromInit {
    /// Set-up done; waiting for [`ToInit::Start`]. Carries non-fatal warnings.
    Ready {
        /// Warnings such as clamped rlimits.
        warnings: Vec<String>,
    },
    /// Set-up (or the final `execve`) failed; the init exits after sending this.
    Failed(SetupError),
}

/// Monitor (or exec helper) → the caller that spawned it, over the inherited report pipe.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Report {
    /// The container is created (or the exec'd process started).
    Created {
        /// Host pid of the container's init (or of the exec'd process).
        pid: i32,
        /// Pid of the monitor.
        monitor_pid: i32,
        /// Non-fatal warnings.
        warnings: Vec<String>,
    },
    /// Set-up failed; nothing of the container remains except its state directory, which
    /// the caller removes.
    Failed(SetupError),
}

/// A request to a running monitor over its control socket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Request {
    /// Let the created container exec its process.
    Start,
    /// Send a signal to the container's init.
    Kill {
        /// Signal number.
        signal: i32,
        /// Send it to every process of the container, not only its init.
        all: bool,
    },
    /// Freeze every process of the container.
    Pause,
    /// Thaw them.
    Resume,
    /// Reply when the container has exited.
    Wait,
}

/// The monitor's answer to a [`Request`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Response {
    /// Done.
    Ok,
    /// The container exited (answer to `Wait`, or to anything once it is gone).
    Exited {
        /// Exit code, `128 + signal` when killed.
        exit_code: i32,
        /// Whether the kernel's OOM killer ended it.
        oom_killed: bool,
    },
    /// The request is not valid in the container's current status.
    Refused {
        /// The status it is in.
        status: String,
    },
    /// The request failed.
    Failed(SetupError),
}
