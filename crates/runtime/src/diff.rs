//! Changes of a container's file system (Docker's `diff`): read from the overlay's upper
//! directory and compared with the image layers.

use std::fmt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Errors of the diff module.
#[derive(Debug, thiserror::Error)]
pub enum DiffError {
    /// The container's root is a plain directory: there is no layer to compare with.
    #[error("diff needs an overlay root filesystem")]
    NotOverlay,
    /// Reading the upper directory failed.
    #[error("read {path}")]
    Read {
        /// The path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

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

/// Walks `upper` and classifies each entry against `lowerdirs`: a whiteout (a 0:0
/// character device) is a deletion, a path present in a layer a change, anything else an
/// addition. Sorted by path.
pub fn diff(lowerdirs: &[PathBuf], upper: &Path) -> Result<Vec<Change>, DiffError> {
    let mut out = Vec::new();
    walk(lowerdirs, upper, Path::new("/"), &mut out)?;
    out.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(out)
}

fn walk(lower: &[PathBuf], dir: &Path, rel: &Path, out: &mut Vec<Change>) -> Result<(), DiffError> {
    let err = |source| DiffError::Read {
        path: dir.to_owned(),
        source,
    };
    for entry in std::fs::read_dir(dir).map_err(err)? {
        let entry = entry.map_err(err)?;
        let meta = entry.metadata().map_err(err)?;
        let path = rel.join(entry.file_name());
        let in_lower = lower.iter().any(|l| {
            std::fs::symlink_metadata(l.join(path.strip_prefix("/").unwrap_or(&path))).is_ok()
        });
        let kind = if meta.file_type().is_char_device() && meta.rdev() == 0 {
            ChangeKind::Deleted
        } else if in_lower {
            ChangeKind::Changed
        } else {
            ChangeKind::Added
        };
        out.push(Change {
            kind,
            path: path.clone(),
        });
        if meta.is_dir() {
            walk(lower, &entry.path(), &path, out)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_added_and_changed_and_prints_like_docker() {
        let t = tempfile::tempdir().unwrap();
        let (lower, upper) = (t.path().join("l"), t.path().join("u"));
        std::fs::create_dir_all(lower.join("etc")).unwrap();
        std::fs::write(lower.join("etc/hosts"), "x").unwrap();
        std::fs::create_dir_all(upper.join("etc")).unwrap();
        std::fs::write(upper.join("etc/hosts"), "y").unwrap();
        std::fs::write(upper.join("etc/new"), "z").unwrap();
        let lines: Vec<String> = diff(&[lower], &upper)
            .unwrap()
            .iter()
            .map(|c| c.to_string())
            .collect();
        assert_eq!(lines, vec!["C /etc", "C /etc/hosts", "A /etc/new"]);
    }
}
