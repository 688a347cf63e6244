//! The vocabulary of a container's file-system changes (Docker's `diff`): what changed and
//! how it prints. The engine computes them (`berth_engine::containers::changes`), because
//! telling a user's change from the mount points the runtime makes needs the container's
//! whole configuration.

use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Kind of change, printed as Docker prints it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ChangeKind {
    /// `A`: added.
    Added,
    /// `C`: changed.
    Changed,
    /// `D`: deleted.
    Deleted,
}

/// One changed path (absolute, in the container's view).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    /// What happened.
    pub kind: ChangeKind,
    /// Where.
    pub path: PathBuf,
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let k = match self.kind {
            ChangeKind::Added => 'A',
            ChangeKind::Changed => 'C',
            ChangeKind::Deleted => 'D',
        };
        write!(f, "{k} {}", self.path.display())
    }
}
