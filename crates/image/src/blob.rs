//! Content-addressed blobs under `blobs/sha256/<hex>`, verified while they stream in.
//!
//! A blob is written to `blobs/tmp/` while its digest is computed, fsynced, compared with the
//! expected digest, and only then renamed into place. A blob that does not match never enters
//! the store. Two writers of the same blob race harmlessly: the contents are identical and the
//! rename is atomic.

use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use crate::digest::{Digest, Hasher};
use crate::fsio::{PathError, WithPath, mkdir_all, path_error, sync_dir};

/// Errors of the blob store.
#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    /// A file operation failed.
    #[error(transparent)]
    Io(#[from] PathError),
    /// The content does not hash to what was expected.
    #[error("digest mismatch for blob {expected}: content hashes to {actual}")]
    DigestMismatch {
        /// The digest the content should have.
        expected: Digest,
        /// The digest it has.
        actual: Digest,
    },
    /// The content's size differs from its descriptor's.
    #[error("size mismatch for blob {digest}: expected {expected} bytes, got {actual}")]
    SizeMismatch {
        /// Blob digest.
        digest: Digest,
        /// Size the descriptor announced.
        expected: u64,
        /// Size received.
        actual: u64,
    },
    /// The blob is not in the store.
    #[error("blob {0} not found in the store")]
    NotFound(Digest),
}

/// The blob directory.
#[derive(Debug, Clone)]
pub struct BlobStore {
    dir: PathBuf,
    tmp: PathBuf,
}

impl BlobStore {
    /// Opens (creating) `root/blobs`.
    pub fn open(root: &Path) -> Result<Self, BlobError> {
        let dir = root.join("blobs").join("sha256");
        let tmp = root.join("blobs").join("tmp");
        mkdir_all(&dir)?;
        mkdir_all(&tmp)?;
        Ok(BlobStore { dir, tmp })
    }

    /// Where the blob lives (whether or not it exists).
    pub fn path(&self, digest: &Digest) -> PathBuf {
        self.dir.join(digest.hex())
    }

    /// The temp directory, for staging files.
    pub fn tmp_dir(&self) -> &Path {
        &self.tmp
    }

    /// Whether the blob is present.
    pub fn contains(&self, digest: &Digest) -> bool {
        self.path(digest).is_file()
    }

    /// Size of a present blob.
    pub fn size(&self, digest: &Digest) -> Result<u64, BlobError> {
        let p = self.path(digest);
        match std::fs::metadata(&p) {
            Ok(m) => Ok(m.len()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Err(BlobError::NotFound(digest.clone()))
            }
            Err(e) => Err(path_error("reading metadata of", &p, e).into()),
        }
    }

    /// Opens a present blob for reading.
    pub fn open_blob(&self, digest: &Digest) -> Result<File, BlobError> {
        let p = self.path(digest);
        File::open(&p).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                BlobError::NotFound(digest.clone())
            } else {
                BlobError::Io(PathError {
                    op: "opening",
                    path: p,
                    source: e,
                })
            }
        })
    }

    /// Reads a whole (small) blob and checks its digest.
    pub fn read(&self, digest: &Digest) -> Result<Vec<u8>, BlobError> {
        let mut data = Vec::new();
        self.open_blob(digest)?
            .read_to_end(&mut data)
            .with_path("reading", &self.path(digest))?;
        let actual = Digest::of(&data);
        if &actual != digest {
            return Err(BlobError::DigestMismatch {
                expected: digest.clone(),
                actual,
            });
        }
        Ok(data)
    }

    /// Stores `data`, returning its digest.
    pub fn write(&self, data: &[u8]) -> Result<Digest, BlobError> {
        let digest = Digest::of(data);
        if self.contains(&digest) {
            return Ok(digest);
        }
        let mut w = self.writer()?;
        w.write_all(data).with_path("writing", &w.path)?;
        w.commit(Some(&digest), None)
    }

    /// Starts writing a blob of unknown digest.
    pub fn writer(&self) -> Result<BlobWriter, BlobError> {
        let file = tempfile::Builder::new()
            .prefix("ingest-")
            .tempfile_in(&self.tmp)
            .with_path("creating a temp file in", &self.tmp)?;
        Ok(BlobWriter {
            path: file.path().to_owned(),
            file: std::io::BufWriter::with_capacity(1024 * 1024, file),
            since_writeback: 0,
            hasher: Hasher::new(),
            size: 0,
            dir: self.dir.clone(),
        })
    }

    /// Deletes a blob (no error if absent).
    pub fn remove(&self, digest: &Digest) -> Result<(), BlobError> {
        let p = self.path(digest);
        match std::fs::remove_file(&p) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(path_error("removing", &p, e).into())
            }
            _ => Ok(()),
        }
    }

    /// Every blob digest present.
    pub fn list(&self) -> Result<Vec<Digest>, BlobError> {
        let mut out = Vec::new();
        for e in std::fs::read_dir(&self.dir).with_path("listing", &self.dir)? {
            let e = e.with_path("listing", &self.dir)?;
            if let Some(d) = e.file_name().to_str().and_then(Digest::from_hex) {
                out.push(d);
            }
        }
        Ok(out)
    }
}

/// A blob being written; dropped without [`BlobWriter::commit`], it leaves nothing behind.
pub struct BlobWriter {
    file: std::io::BufWriter<tempfile::NamedTempFile>,
    /// Bytes written since writeback was last started.
    since_writeback: u64,
    path: PathBuf,
    hasher: Hasher,
    size: u64,
    dir: PathBuf,
}

impl BlobWriter {
    /// The temp file being written.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The digest of what was written so far.
    pub fn digest_so_far(&self) -> Digest {
        self.hasher.clone().finish()
    }

    /// Bytes written so far.
    pub fn written(&self) -> u64 {
        self.size
    }

    /// Checks the content against `expected` without storing it (the temp file is removed).
    pub fn verify(self, expected: &Digest, expected_size: Option<u64>) -> Result<(), BlobError> {
        let actual = self.hasher.clone().finish();
        if &actual != expected {
            return Err(BlobError::DigestMismatch {
                expected: expected.clone(),
                actual,
            });
        }
        match expected_size {
            Some(s) if s != self.size => Err(BlobError::SizeMismatch {
                digest: actual,
                expected: s,
                actual: self.size,
            }),
            _ => Ok(()),
        }
    }

    /// fsyncs, verifies against `expected` (digest and size, when given) and moves the blob
    /// into place. Returns the blob's digest.
    pub fn commit(
        self,
        expected: Option<&Digest>,
        expected_size: Option<u64>,
    ) -> Result<Digest, BlobError> {
        let actual = self.hasher.finish();
        if let Some(e) = expected
            && e != &actual
        {
            return Err(BlobError::DigestMismatch {
                expected: e.clone(),
                actual,
            });
        }
        if let Some(s) = expected_size
            && s != self.size
        {
            return Err(BlobError::SizeMismatch {
                digest: actual,
                expected: s,
                actual: self.size,
            });
        }
        let file = self
            .file
            .into_inner()
            .map_err(|e| e.into_error())
            .with_path("writing", &self.path)?;
        file.as_file().sync_all().with_path("syncing", &self.path)?;
        let dst = self.dir.join(actual.hex());
        file.persist(&dst)
            .map_err(|e| e.error)
            .with_path("renaming a temp file to", &dst)?;
        sync_dir(&self.dir)?;
        Ok(actual)
    }
}

/// Start writing back dirty pages every this many bytes, so the final fsync has little left
/// to wait for (the kernel would otherwise hold them for up to 30 s).
const WRITEBACK_EVERY: u64 = 8 * 1024 * 1024;

impl Write for BlobWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.file.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.size += n as u64;
        self.since_writeback += n as u64;
        if self.since_writeback >= WRITEBACK_EVERY {
            self.since_writeback = 0;
            // POSIX_FADV_DONTNEED starts asynchronous writeback of the dirty range on Linux;
            // it is only a hint, so its failure is of no consequence.
            let _ = nix::fcntl::posix_fadvise(
                self.file.get_ref().as_file(),
                0,
                0,
                nix::fcntl::PosixFadviseAdvice::POSIX_FADV_DONTNEED,
            );
        }
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mismatching_blob_never_enters_the_store() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path()).unwrap();
        let mut w = store.writer().unwrap();
        w.write_all(b"hello").unwrap();
        let wrong = Digest::of(b"other");
        let err = w.commit(Some(&wrong), None).unwrap_err();
        assert!(matches!(err, BlobError::DigestMismatch { .. }));
        assert_eq!(store.list().unwrap(), vec![]);
        assert_eq!(std::fs::read_dir(store.tmp_dir()).unwrap().count(), 0);
        let d = store.write(b"hello").unwrap();
        assert_eq!(store.read(&d).unwrap(), b"hello");
        assert_eq!(store.list().unwrap(), vec![d]);
    }
}
