//! A container's recorded state (`state.json` in its directory), written atomically by its
//! monitor (the single writer while it lives) and readable by anyone afterwards.
//! Writes are atomic renames, so a reader never sees a half-written file.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// File names inside a container's state directory.
pub mod files {
    /// The serialized [`crate::ContainerRequest`].
    pub const REQUEST: &str = "request.json";
    /// The serialized [`super::State`].
    pub const STATE: &str = "state.json";
    /// The monitor's control socket.
    pub const SOCKET: &str = "monitor.sock";
    /// Mount point of the root filesystem (inside the container's mount namespace only).
    pub const ROOTFS: &str = "rootfs";
}

/// Errors reading or writing state.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// Reading a state file failed.
    #[error("read {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// Writing a state file failed.
    #[error("write {path}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A state file does not parse.
    #[error("parse {path}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: serde_json::Error,
    },
}

/// Lifecycle status, as in the OCI runtime spec plus `paused`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// The monitor is setting the container up.
    Creating,
    /// Set up, waiting for `start`.
    Created,
    /// Its process runs.
    Running,
    /// Frozen by the cgroup freezer.
    Paused,
    /// Its process exited.
    Stopped,
}

impl Status {
    /// The lower-case name used in JSON and by `berth runtime state`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Creating => "creating",
            Self::Created => "created",
            Self::Running => "running",
            Self::Paused => "paused",
            Self::Stopped => "stopped",
        }
    }
}

/// The recorded state of one container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    /// Container id.
    pub id: String,
    /// Current status.
    pub status: Status,
    /// Host pid of the container's init, once created.
    pub pid: Option<i32>,
    /// Pid of the container's monitor.
    pub monitor_pid: Option<i32>,
    /// Exit code once stopped (`128 + signal` when killed by a signal).
    pub exit_code: Option<i32>,
    /// Whether the OOM killer ended it.
    pub oom_killed: bool,
    /// When it was created (RFC 3339).
    pub created_at: String,
    /// When its process was started.
    pub started_at: Option<String>,
    /// When its process exited.
    pub finished_at: Option<String>,
    /// Cgroup directories of the container, one per hierarchy.
    pub cgroup_paths: Vec<PathBuf>,
    /// The OCI bundle it was created from, if any.
    pub bundle: Option<PathBuf>,
}

impl State {
    /// A fresh state in status `creating`.
    pub fn new(id: &str, bundle: Option<PathBuf>) -> Self {
        Self {
            id: id.to_owned(),
            status: Status::Creating,
            pid: None,
            monitor_pid: None,
            exit_code: None,
            oom_killed: false,
            created_at: crate::clock::now_rfc3339(),
            started_at: None,
            finished_at: None,
            cgroup_paths: Vec::new(),
            bundle,
        }
    }

    /// Reads `state.json` from a container directory.
    pub fn load(dir: &Path) -> Result<Self, StateError> {
        read_json(&dir.join(files::STATE))
    }

    /// Writes `state.json` atomically (temporary file, fsync, rename).
    pub fn save(&self, dir: &Path) -> Result<(), StateError> {
        write_json_atomic(&dir.join(files::STATE), self)
    }
}

/// Reads and parses a JSON file.
pub fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, StateError> {
    let bytes = fs::read(path).map_err(|source| StateError::Read {
        path: path.to_owned(),
        source,
    })?;
    serde_json::from_slice(&bytes).map_err(|source| StateError::Parse {
        path: path.to_owned(),
        source,
    })
}

/// Writes `value` as JSON to `path` so that readers see the old or the new content, never a
/// mix: write a temporary sibling, rename it over `path`. No fsync: this is run-time state
/// (like runc's), it must survive a crash of the writer, not a power loss, and an fsync
/// costs milliseconds on every container start.
pub fn write_json_atomic<T: Serialize>(path: &Path, value: &T) -> Result<(), StateError> {
    let tmp = path.with_extension("json.tmp");
    let err = |source| StateError::Write {
        path: path.to_owned(),
        source,
    };
    let data = serde_json::to_vec_pretty(value)
        .map_err(|e| err(std::io::Error::new(std::io::ErrorKind::InvalidData, e)))?;
    let mut f = fs::File::create(&tmp).map_err(err)?;
    f.write_all(&data).map_err(err)?;
    fs::rename(&tmp, path).map_err(err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_round_trips_through_disk() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = State::new("c1", None);
        s.status = Status::Stopped;
        s.exit_code = Some(3);
        s.save(dir.path()).unwrap();
        assert_eq!(State::load(dir.path()).unwrap(), s);
        let text = fs::read_to_string(dir.path().join(files::STATE)).unwrap();
        assert!(text.contains("\"status\": \"stopped\""), "{text}");
        assert!(!dir.path().join("state.json.tmp").exists());
    }
}
