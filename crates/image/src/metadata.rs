//! The image index: which images (by manifest digest) the store holds and which references
//! point at them. One JSON file, replaced atomically under an exclusive `flock`, so concurrent
//! processes never lose each other's updates and a crash leaves the old or the new index.
//!
//! Also the store-wide `gc.lock`: writers (pull, import, load) hold it shared while they add
//! blobs that no image references yet; `gc` holds it exclusive.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::digest::Digest;
use crate::fsio::{PathError, WithPath, write_atomic};

/// Errors reading or writing the index.
#[derive(Debug, thiserror::Error)]
pub enum MetadataError {
    /// A file operation failed.
    #[error(transparent)]
    Io(#[from] PathError),
    /// The index file is not valid JSON.
    #[error("corrupt image index {path}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// Parse error.
        #[source]
        source: serde_json::Error,
    },
}

/// What the store records about one image.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageRecord {
    /// Unix time the image entered the store.
    pub added: u64,
    /// `registry/repository` it was pulled from, for cross-repository mounts on push.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

/// The whole index.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Index {
    /// Images by manifest digest.
    pub images: BTreeMap<Digest, ImageRecord>,
    /// Normalised reference → manifest digest.
    pub refs: BTreeMap<String, Digest>,
}

impl Index {
    /// References pointing at `manifest`.
    pub fn refs_of(&self, manifest: &Digest) -> Vec<String> {
        self.refs
            .iter()
            .filter(|(_, d)| *d == manifest)
            .map(|(r, _)| r.clone())
            .collect()
    }
}

/// Access to the index file and the locks.
#[derive(Debug, Clone)]
pub struct Metadata {
    file: PathBuf,
    lock: PathBuf,
    gc_lock: PathBuf,
}

/// A held lock; released on drop.
pub struct Lock {
    _flock: nix::fcntl::Flock<File>,
}

fn lock_file(path: &Path, exclusive: bool) -> Result<Lock, PathError> {
    let f = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .with_path("opening lock file", path)?;
    let arg = if exclusive {
        nix::fcntl::FlockArg::LockExclusive
    } else {
        nix::fcntl::FlockArg::LockShared
    };
    let flock = nix::fcntl::Flock::lock(f, arg)
        .map_err(|(_, errno)| crate::fsio::path_error("locking", path, errno.into()))?;
    Ok(Lock { _flock: flock })
}

impl Metadata {
    /// Uses `root/images.json` and its lock files.
    pub fn new(root: &Path) -> Self {
        Metadata {
            file: root.join("images.json"),
            lock: root.join("images.lock"),
            gc_lock: root.join("gc.lock"),
        }
    }

    /// Reads the current index (no lock needed: the file is replaced atomically).
    pub fn read(&self) -> Result<Index, MetadataError> {
        match std::fs::read(&self.file) {
            Ok(data) => serde_json::from_slice(&data).map_err(|source| MetadataError::Corrupt {
                path: self.file.clone(),
                source,
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Index::default()),
            Err(e) => Err(crate::fsio::path_error("reading", &self.file, e).into()),
        }
    }

    /// Read-modify-write under the exclusive lock. `f`'s result is returned; the index is
    /// written only if `f` succeeds.
    pub fn update<T, E: From<MetadataError>>(
        &self,
        f: impl FnOnce(&mut Index) -> Result<T, E>,
    ) -> Result<T, E> {
        let _guard = lock_file(&self.lock, true).map_err(MetadataError::from)?;
        let mut index = self.read()?;
        let before = index.clone();
        let out = f(&mut index)?;
        if index != before {
            let data =
                serde_json::to_vec_pretty(&index).map_err(|source| MetadataError::Corrupt {
                    path: self.file.clone(),
                    source,
                })?;
            write_atomic(&self.file, &data, 0o644).map_err(MetadataError::from)?;
        }
        Ok(out)
    }

    /// Shared hold on the GC lock for writers adding unreferenced content.
    pub fn writer_lock(&self) -> Result<Lock, MetadataError> {
        Ok(lock_file(&self.gc_lock, false)?)
    }

    /// Exclusive hold on the GC lock.
    pub fn gc_lock(&self) -> Result<Lock, MetadataError> {
        Ok(lock_file(&self.gc_lock, true)?)
    }
}
