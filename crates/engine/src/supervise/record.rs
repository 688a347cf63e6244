//! What the supervisor remembers about a container across daemon restarts, in files next to
//! the container (`<root>/containers/<id>/`):
//!
//! - `supervisor.json` ([`Record`]): the restart count, the exit last handled (so an exit is
//!   never reported or acted on twice, and one that happened while no daemon ran is noticed),
//!   and the health-check status with its last results. Only the supervisor writes it, one
//!   task per container, by an atomic rename.
//! - `stopped-by-user` (a marker): written by `stop` and `kill` *before* the signal is sent,
//!   removed by `start`. An exit while it exists is the user's doing, so `always` and
//!   `unless-stopped` do not restart the container (and `unless-stopped` not even after a
//!   daemon restart).
//! - `removing` (a marker): written by `rm` before it kills the container; the supervisor
//!   leaves such a container alone (no restart, no more writes into the directory being
//!   removed).

use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::containers::Health;

/// The record's file name inside the container's directory.
pub const RECORD_FILE: &str = "supervisor.json";
/// The marker's file name inside the container's directory.
pub const STOPPED_MARKER: &str = "stopped-by-user";

/// Errors reading or writing the supervisor's files.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    /// A file could not be read, written or renamed.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// The file.
        path: PathBuf,
        /// The error.
        #[source]
        source: io::Error,
    },
    /// The record is not valid JSON.
    #[error("{path} is not a valid supervisor record: {source}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What the parser said.
        #[source]
        source: serde_json::Error,
    },
}

/// An exit the supervisor has dealt with, identified by the runtime's timestamps of that run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HandledExit {
    /// When the process had started (RFC 3339), as the runtime recorded it.
    pub started_at: Option<String>,
    /// When it exited.
    pub finished_at: Option<String>,
    /// Its exit code.
    pub exit_code: i32,
}

/// The supervisor's persistent record of one container.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// Restarts made by the restart policy since the user last started the container
    /// (Docker's `RestartCount`).
    #[serde(default)]
    pub restart_count: u32,
    /// The last exit acted on.
    #[serde(default)]
    pub handled_exit: Option<HandledExit>,
    /// The health-check status and last results.
    #[serde(default)]
    pub health: Option<Health>,
    /// The start time (as the runtime recorded it) of the run `health` is about: a new run
    /// starts as `starting`, a run re-adopted by a new daemon keeps its status.
    #[serde(default)]
    pub health_run: Option<String>,
}

impl Record {
    /// Reads the record of the container whose directory is `dir`; a missing file is an empty
    /// record.
    pub fn load(dir: &Path) -> Result<Record, RecordError> {
        let path = dir.join(RECORD_FILE);
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map_err(|source| RecordError::Corrupt { path, source }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Record::default()),
            Err(source) => Err(RecordError::Io {
                op: "read",
                path,
                source,
            }),
        }
    }

    /// Writes the record atomically (temporary file, rename); nothing is written while `rm`
    /// removes the container. Not `fsync`ed: it must survive the daemon being killed, which
    /// the page cache does; health results are written at every probe and a power loss costs
    /// at most the last few.
    pub fn save(&self, dir: &Path) -> Result<(), RecordError> {
        if removing(dir) {
            // `rm` is emptying the directory: nothing more goes into it.
            return Ok(());
        }
        let path = dir.join(RECORD_FILE);
        let tmp = dir.join(format!(".{RECORD_FILE}.tmp"));
        let bytes = serde_json::to_vec_pretty(self).map_err(|source| RecordError::Corrupt {
            path: path.clone(),
            source,
        })?;
        std::fs::write(&tmp, bytes).map_err(|source| RecordError::Io {
            op: "write",
            path: tmp.clone(),
            source,
        })?;
        std::fs::rename(&tmp, &path).map_err(|source| RecordError::Io {
            op: "rename into place",
            path,
            source,
        })
    }
}

/// The marker `rm` leaves while it removes a container.
pub const REMOVING_MARKER: &str = "removing";

/// Records that the container in `dir` is being removed (call before killing it). A
/// container whose directory is already gone needs no mark.
pub fn mark_removing(dir: &Path) -> Result<(), RecordError> {
    let path = dir.join(REMOVING_MARKER);
    match std::fs::write(&path, b"") {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(RecordError::Io {
            op: "write",
            path,
            source,
        }),
    }
}

/// Whether the container in `dir` is being removed.
pub fn removing(dir: &Path) -> bool {
    dir.join(REMOVING_MARKER).exists()
}

/// Records that the user is stopping the container in `dir` (call before signalling it).
pub fn mark_stopped_by_user(dir: &Path) -> Result<(), RecordError> {
    let path = dir.join(STOPPED_MARKER);
    std::fs::write(&path, b"").map_err(|source| RecordError::Io {
        op: "write",
        path,
        source,
    })
}

/// Forgets the user's stop, and a removal that did not finish (call when the container is
/// started again).
pub fn clear_stopped_by_user(dir: &Path) -> Result<(), RecordError> {
    for marker in [STOPPED_MARKER, REMOVING_MARKER] {
        let path = dir.join(marker);
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(source) => {
                return Err(RecordError::Io {
                    op: "remove",
                    path,
                    source,
                });
            }
        }
    }
    Ok(())
}

/// Whether the user stopped the container in `dir` since it was last started.
pub fn stopped_by_user(dir: &Path) -> bool {
    dir.join(STOPPED_MARKER).exists()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::containers::{HealthResult, HealthStatus};

    #[test]
    fn a_missing_record_is_empty_and_a_saved_one_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(Record::load(dir.path()).unwrap(), Record::default());
        let r = Record {
            restart_count: 3,
            handled_exit: Some(HandledExit {
                started_at: Some("2026-11-22T10:00:00Z".into()),
                finished_at: Some("2026-11-22T10:00:01Z".into()),
                exit_code: 2,
            }),
            health: Some(Health {
                status: HealthStatus::Unhealthy,
                failing_streak: 3,
                log: vec![HealthResult {
                    start: "a".into(),
                    end: "b".into(),
                    exit_code: 1,
                    output: "no".into(),
                }],
            }),
            health_run: Some("2026-11-22T10:00:00Z".into()),
        };
        r.save(dir.path()).unwrap();
        assert_eq!(Record::load(dir.path()).unwrap(), r);
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names, vec![RECORD_FILE.to_string()]);
    }

    #[test]
    fn a_corrupt_record_names_its_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(RECORD_FILE), b"{\"restart_co").unwrap();
        let err = Record::load(dir.path()).unwrap_err();
        assert!(matches!(err, RecordError::Corrupt { .. }));
        assert!(err.to_string().contains(RECORD_FILE), "{err}");
    }

    #[test]
    fn the_stop_marker_is_set_and_cleared() {
        let dir = tempfile::tempdir().unwrap();
        assert!(!stopped_by_user(dir.path()));
        mark_stopped_by_user(dir.path()).unwrap();
        assert!(stopped_by_user(dir.path()));
        mark_removing(dir.path()).unwrap();
        assert!(removing(dir.path()));
        clear_stopped_by_user(dir.path()).unwrap();
        clear_stopped_by_user(dir.path()).unwrap();
        assert!(!stopped_by_user(dir.path()));
        assert!(!removing(dir.path()));
        mark_removing(&dir.path().join("gone")).unwrap();
    }
}
