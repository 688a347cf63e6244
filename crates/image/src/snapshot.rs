//! Unpacked layers under `snapshots/<diff-id hex>/`, one directory per distinct layer content
//! and shared by every image using it. A snapshot is unpacked into a temp directory beside its
//! final place and renamed in only when complete and verified, so a process crash leaves
//! either nothing or a whole snapshot (plus a temp directory that `gc` removes).
//!
//! Power loss: flushing every unpacked file before the rename would double the disk writes a
//! pull waits for (the compressed blob is already fsynced). Instead, before the rename, a
//! marker `<hex>.unsynced` holding the boot ID is written durably. A snapshot whose marker
//! names another boot may have lost data in a crash, so it counts as absent and is unpacked
//! again from its blob; `gc` flushes the file system and drops the markers of this boot.

use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::digest::Digest;
use crate::fsio::{PathError, WithPath, mkdir_all, path_error, sync_dir, write_atomic};
use crate::unpack::{UnpackError, Unpacked, unpack};

/// Errors of the snapshot directory.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// A file operation failed.
    #[error(transparent)]
    Io(#[from] PathError),
    /// Unpacking failed.
    #[error(transparent)]
    Unpack(#[from] UnpackError),
    /// The unpacked content does not match the diff ID the image config lists.
    #[error(
        "layer {layer}: uncompressed content hashes to {actual}, the image config says {expected}"
    )]
    DiffIdMismatch {
        /// The layer (blob digest).
        layer: String,
        /// From the image config.
        expected: Digest,
        /// Computed while unpacking.
        actual: Digest,
    },
}

/// The snapshot directory.
#[derive(Debug, Clone)]
pub struct Snapshots {
    dir: PathBuf,
}

/// A snapshot being unpacked; removed on drop unless committed.
pub struct PendingSnapshot {
    tmp: tempfile::TempDir,
}

impl PendingSnapshot {
    /// The temp directory being filled.
    pub fn path(&self) -> &Path {
        self.tmp.path()
    }
}

/// The kernel's boot ID (changes at every boot); empty if unreadable, which makes every
/// marked snapshot count as suspect, the safe side.
fn boot_id() -> String {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .map(|s| s.trim().to_owned())
        .unwrap_or_default()
}

impl Snapshots {
    /// Opens (creating) `root/snapshots`.
    pub fn open(root: &Path) -> Result<Self, SnapshotError> {
        let dir = root.join("snapshots");
        mkdir_all(&dir)?;
        Ok(Snapshots { dir })
    }

    /// Where the snapshot of `diff_id` lives.
    pub fn path(&self, diff_id: &Digest) -> PathBuf {
        self.dir.join(diff_id.hex())
    }

    fn marker(&self, diff_id: &Digest) -> PathBuf {
        self.dir.join(format!("{}.unsynced", diff_id.hex()))
    }

    /// Whether the snapshot exists and is trustworthy (not left unflushed by an earlier boot).
    pub fn contains(&self, diff_id: &Digest) -> bool {
        if !self.path(diff_id).is_dir() {
            return false;
        }
        match std::fs::read_to_string(self.marker(diff_id)) {
            Ok(boot) => boot.trim() == boot_id(),
            Err(_) => true,
        }
    }

    /// A fresh temp directory to unpack into.
    pub fn pending(&self) -> Result<PendingSnapshot, SnapshotError> {
        let tmp = tempfile::Builder::new()
            .prefix(".tmp-")
            .tempdir_in(&self.dir)
            .with_path("creating a temp directory in", &self.dir)?;
        // The snapshot root becomes the container's "/" unless the layer says otherwise.
        std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o755))
            .with_path("changing mode of", tmp.path())?;
        Ok(PendingSnapshot { tmp })
    }

    /// Unpacks `reader` into a pending snapshot (not yet committed).
    pub fn unpack(
        &self,
        reader: impl Read,
        layer: &str,
    ) -> Result<(PendingSnapshot, Unpacked), SnapshotError> {
        let pending = self.pending()?;
        let out = unpack(reader, pending.path(), layer)?;
        Ok((pending, out))
    }

    /// Checks the diff ID, flushes the file system and renames the snapshot into place. If
    /// another writer got there first, its identical snapshot is kept.
    pub fn commit(
        &self,
        pending: PendingSnapshot,
        layer: &str,
        unpacked: &Unpacked,
        expected: Option<&Digest>,
    ) -> Result<PathBuf, SnapshotError> {
        if let Some(e) = expected
            && e != &unpacked.diff_id
        {
            return Err(SnapshotError::DiffIdMismatch {
                layer: layer.to_owned(),
                expected: e.clone(),
                actual: unpacked.diff_id.clone(),
            });
        }
        let dst = self.path(&unpacked.diff_id);
        if self.contains(&unpacked.diff_id) {
            return Ok(dst);
        }
        if dst.is_dir() {
            // Left unflushed by an earlier boot: replace it with the fresh copy.
            self.remove(&unpacked.diff_id)?;
        }
        write_atomic(&self.marker(&unpacked.diff_id), boot_id().as_bytes(), 0o644)?;
        let tmp = pending.tmp.keep();
        match std::fs::rename(&tmp, &dst) {
            Ok(()) => {}
            Err(_) if dst.is_dir() => {
                let _ = std::fs::remove_dir_all(&tmp);
            }
            Err(e) => {
                let _ = std::fs::remove_dir_all(&tmp);
                return Err(path_error("renaming a snapshot to", &dst, e).into());
            }
        }
        sync_dir(&self.dir)?;
        Ok(dst)
    }

    /// Removes a snapshot: renamed aside first so it disappears atomically.
    pub fn remove(&self, diff_id: &Digest) -> Result<(), SnapshotError> {
        let p = self.path(diff_id);
        if p.exists() {
            let aside = self.dir.join(format!(".tmp-rm-{}", diff_id.hex()));
            std::fs::rename(&p, &aside).with_path("renaming aside", &p)?;
            std::fs::remove_dir_all(&aside).with_path("removing", &aside)?;
        }
        let marker = self.marker(diff_id);
        match std::fs::remove_file(&marker) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(path_error("removing", &marker, e).into())
            }
            _ => Ok(()),
        }
    }

    /// Flushes the file system, then drops the markers of snapshots made during this boot
    /// (they are now durable). Returns how many were dropped.
    pub fn flush(&self) -> Result<usize, SnapshotError> {
        let d = std::fs::File::open(&self.dir).with_path("opening", &self.dir)?;
        nix::unistd::syncfs(&d)
            .map_err(|e| path_error("syncing file system of", &self.dir, e.into()))?;
        let boot = boot_id();
        let mut n = 0;
        for e in std::fs::read_dir(&self.dir).with_path("listing", &self.dir)? {
            let e = e.with_path("listing", &self.dir)?;
            let name = e.file_name().to_string_lossy().into_owned();
            let Some(hex) = name.strip_suffix(".unsynced") else {
                continue;
            };
            let orphan = !self.dir.join(hex).exists();
            if orphan || std::fs::read_to_string(e.path()).is_ok_and(|b| b.trim() == boot) {
                std::fs::remove_file(e.path()).with_path("removing", &e.path())?;
                n += 1;
            }
        }
        if n > 0 {
            sync_dir(&self.dir)?;
        }
        Ok(n)
    }

    /// Every committed snapshot's diff ID.
    pub fn list(&self) -> Result<Vec<Digest>, SnapshotError> {
        let mut out = Vec::new();
        for e in std::fs::read_dir(&self.dir).with_path("listing", &self.dir)? {
            let e = e.with_path("listing", &self.dir)?;
            if let Some(d) = e.file_name().to_str().and_then(Digest::from_hex) {
                out.push(d);
            }
        }
        Ok(out)
    }

    /// Removes leftover temp directories (only call with no writer running).
    pub fn remove_temps(&self) -> Result<usize, SnapshotError> {
        let mut n = 0;
        for e in std::fs::read_dir(&self.dir).with_path("listing", &self.dir)? {
            let e = e.with_path("listing", &self.dir)?;
            if e.file_name().to_string_lossy().starts_with(".tmp-") {
                std::fs::remove_dir_all(e.path()).with_path("removing", &e.path())?;
                n += 1;
            }
        }
        Ok(n)
    }
}
