//! I/O errors that name their path, and atomic file writes.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

/// An I/O error with the path (and operation) it happened on.
#[derive(Debug, thiserror::Error)]
#[error("{op} {path}")]
pub struct PathError {
    /// What was being done, e.g. `writing`.
    pub op: &'static str,
    /// The file or directory.
    pub path: PathBuf,
    /// The underlying error.
    #[source]
    pub source: std::io::Error,
}

/// Attaches a path to `std::io::Result`s so `?` stays short.
pub trait WithPath<T> {
    /// Wraps the error with `op` and `path`.
    fn with_path(self, op: &'static str, path: &Path) -> Result<T, PathError>;
}

impl<T> WithPath<T> for std::io::Result<T> {
    fn with_path(self, op: &'static str, path: &Path) -> Result<T, PathError> {
        self.map_err(|source| PathError {
            op,
            path: path.to_owned(),
            source,
        })
    }
}

/// Writes `data` to `path` atomically: temp file in the same directory, fsync, rename, fsync
/// the directory. Readers see the old or the new content, never a mix.
pub fn write_atomic(path: &Path, data: &[u8], mode: u32) -> Result<(), PathError> {
    use std::os::unix::fs::PermissionsExt;
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::Builder::new()
        .prefix(".tmp-")
        .tempfile_in(dir)
        .with_path("creating a temp file in", dir)?;
    tmp.as_file()
        .set_permissions(std::fs::Permissions::from_mode(mode))
        .with_path("setting the mode of", tmp.path())?;
    tmp.write_all(data).with_path("writing", tmp.path())?;
    tmp.as_file().sync_all().with_path("syncing", tmp.path())?;
    tmp.persist(path)
        .map_err(|e| e.error)
        .with_path("renaming a temp file to", path)?;
    sync_dir(dir)
}

/// fsyncs a directory so a rename in it is durable.
pub fn sync_dir(dir: &Path) -> Result<(), PathError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .with_path("syncing directory", dir)
}

/// Creates a directory and its parents.
pub fn mkdir_all(dir: &Path) -> Result<(), PathError> {
    std::fs::create_dir_all(dir).with_path("creating directory", dir)
}

/// Builds a [`PathError`] by hand, for errors not produced through `?`.
pub fn path_error(op: &'static str, path: &Path, source: std::io::Error) -> PathError {
    PathError {
        op,
        path: path.to_owned(),
        source,
    }
}
