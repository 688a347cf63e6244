//! Garbage collection: mark everything reachable from the images in the index (plus images the
//! caller says are in use by containers), sweep the rest.

use std::collections::HashSet;

use crate::digest::Digest;
use crate::store::{Store, StoreError};

/// What a collection removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GcReport {
    /// Blobs deleted.
    pub blobs_removed: Vec<Digest>,
    /// Snapshots deleted (by diff ID).
    pub snapshots_removed: Vec<Digest>,
    /// Bytes of blobs deleted.
    pub bytes_freed: u64,
}

/// What `image prune` removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PruneReport {
    /// Image IDs removed from the index.
    pub images_removed: Vec<Digest>,
    /// The collection that followed.
    pub gc: GcReport,
}

impl Store {
    /// Deletes every blob and snapshot that no image in the index references and that is not
    /// needed by `in_use`: IDs of images containers run from (their config and snapshots are
    /// kept even after the image was removed from the index). Holds the store's GC lock
    /// exclusively, so it waits for running pulls and imports.
    pub fn gc(&self, in_use: &[Digest]) -> Result<GcReport, StoreError> {
        let _lock = self.inner.metadata.gc_lock()?;
        let index = self.inner.metadata.read()?;
        let mut blobs = HashSet::new();
        let mut snaps = HashSet::new();
        for m in index.images.keys() {
            blobs.insert(m.clone());
            let manifest = self.read_manifest(m)?;
            blobs.insert(manifest.config.digest.clone());
            for l in &manifest.layers {
                blobs.insert(l.digest.clone());
            }
            let config = self.read_config(&manifest.config.digest)?;
            snaps.extend(config.rootfs.diff_ids);
        }
        for id in in_use {
            if let Ok(config) = self.read_config(id) {
                blobs.insert(id.clone());
                snaps.extend(config.rootfs.diff_ids);
            }
        }
        let mut report = GcReport::default();
        for d in self.inner.blobs.list()? {
            if !blobs.contains(&d) {
                report.bytes_freed += self.inner.blobs.size(&d).unwrap_or(0);
                self.inner.blobs.remove(&d)?;
                report.blobs_removed.push(d);
            }
        }
        for d in self.inner.snapshots.list()? {
            if !snaps.contains(&d) {
                self.inner.snapshots.remove(&d)?;
                report.snapshots_removed.push(d);
            }
        }
        // No writer runs while we hold the lock exclusively: leftovers are from crashes.
        self.inner.snapshots.remove_temps()?;
        self.inner.snapshots.flush()?;
        let tmp = self.inner.blobs.tmp_dir();
        if let Ok(entries) = std::fs::read_dir(tmp) {
            for e in entries.flatten() {
                let _ = std::fs::remove_file(e.path());
            }
        }
        Ok(report)
    }

    /// `image prune`: removes untagged images, or with `all` every image whose ID is not in
    /// `in_use` (images that containers use), then collects garbage.
    pub fn prune(&self, all: bool, in_use: &[Digest]) -> Result<PruneReport, StoreError> {
        let mut removed = Vec::new();
        self.inner.metadata.update(|index| {
            let manifests: Vec<Digest> = index.images.keys().cloned().collect();
            for m in manifests {
                let id = self.read_manifest(&m)?.config.digest;
                let untagged = index.refs_of(&m).is_empty();
                if (untagged || all) && !in_use.contains(&id) {
                    for r in index.refs_of(&m) {
                        index.refs.remove(&r);
                    }
                    index.images.remove(&m);
                    removed.push(id);
                }
            }
            Ok::<_, StoreError>(())
        })?;
        removed.sort();
        removed.dedup();
        let gc = self.gc(in_use)?;
        Ok(PruneReport {
            images_removed: removed,
            gc,
        })
    }
}
