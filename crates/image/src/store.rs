//! The image store: blobs, snapshots and the image index under one root directory.
//!
//! Layout of `<root>` (berth uses `<--root>/image`):
//!
//! ```text
//! blobs/sha256/<hex>     verified content (manifests, configs, compressed layers)
//! blobs/tmp/             blobs being written
//! snapshots/<hex>/       unpacked layers, named by diff ID (overlayfs lower dirs)
//! images.json            image index (images by manifest digest, references)
//! images.lock, gc.lock   flock(2) files
//! ```

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::blob::{BlobError, BlobStore};
use crate::config::ImageConfig;
use crate::digest::Digest;
use crate::manifest::{Document, Manifest, ManifestError};
use crate::metadata::{Index, Metadata, MetadataError};
use crate::reference::{Reference, ReferenceError};
use crate::snapshot::{SnapshotError, Snapshots};

/// Errors of store operations.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Blob store failure.
    #[error(transparent)]
    Blob(#[from] BlobError),
    /// Snapshot failure.
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
    /// Index failure.
    #[error(transparent)]
    Metadata(#[from] MetadataError),
    /// A stored manifest cannot be read.
    #[error("stored manifest {digest} is invalid")]
    Manifest {
        /// Manifest digest.
        digest: Digest,
        /// Why.
        #[source]
        source: ManifestError,
    },
    /// A stored config cannot be read.
    #[error("stored image config {digest} is invalid")]
    Config {
        /// Config digest.
        digest: Digest,
        /// Why.
        #[source]
        source: serde_json::Error,
    },
    /// No image matches.
    #[error("no such image: {0}")]
    NotFound(String),
    /// An ID prefix matches several images.
    #[error("image ID prefix {0} is ambiguous")]
    Ambiguous(String),
    /// The image is referenced by several tags and `force` was not given.
    #[error("image {id} is referenced by several tags ({refs}); remove them one by one or force")]
    MultipleReferences {
        /// Short image ID.
        id: String,
        /// The tags.
        refs: String,
    },
    /// Bad reference text.
    #[error(transparent)]
    Reference(#[from] ReferenceError),
    /// The config names more or fewer diff IDs than the manifest has layers.
    #[error("image {0}: config lists a different number of layers than the manifest")]
    LayerCount(Digest),
}

/// An image in the store.
#[derive(Debug, Clone)]
pub struct Image {
    /// Image ID: the config digest (as `docker images` shows).
    pub id: Digest,
    /// Digest of the platform-specific manifest.
    pub manifest_digest: Digest,
    /// References pointing at this image.
    pub references: Vec<Reference>,
    /// The manifest.
    pub manifest: Manifest,
    /// The configuration.
    pub config: ImageConfig,
    /// Unix time the image entered the store.
    pub added: u64,
    snapshot_paths: Vec<PathBuf>,
}

impl Image {
    /// The configuration.
    pub fn config(&self) -> &ImageConfig {
        &self.config
    }

    /// Unpacked layer directories, **top-most first**, ready for
    /// `lowerdir=a:b:c` of an overlay mount.
    pub fn snapshots(&self) -> Vec<PathBuf> {
        self.snapshot_paths.iter().rev().cloned().collect()
    }

    /// Sum of the (compressed) layer sizes.
    pub fn size(&self) -> u64 {
        self.manifest.layers.iter().map(|l| l.size).sum()
    }
}

pub(crate) struct Inner {
    pub(crate) root: PathBuf,
    pub(crate) blobs: BlobStore,
    pub(crate) snapshots: Snapshots,
    pub(crate) metadata: Metadata,
}

/// The image store. Cheap to clone, `Send + Sync`, and safe to use from several processes
/// at once (index updates and GC are serialised with file locks).
///
/// ```no_run
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use berth_image::{Reference, Store};
/// let store = Store::open(std::path::Path::new("/var/lib/berth/image"))?;
/// let image = store.resolve(&Reference::parse("busybox")?)?;
/// let lowerdirs = image.snapshots();
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Store {
    pub(crate) inner: Arc<Inner>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("root", &self.inner.root)
            .finish()
    }
}

impl Store {
    /// Opens (creating when missing) the store at `root`.
    pub fn open(root: &Path) -> Result<Store, StoreError> {
        crate::fsio::mkdir_all(root).map_err(|e| StoreError::Blob(BlobError::Io(e)))?;
        Ok(Store {
            inner: Arc::new(Inner {
                root: root.to_owned(),
                blobs: BlobStore::open(root)?,
                snapshots: Snapshots::open(root)?,
                metadata: Metadata::new(root),
            }),
        })
    }

    /// The store's root directory.
    pub fn root(&self) -> &Path {
        &self.inner.root
    }

    /// The blob store (for tools that read blobs directly).
    pub fn blobs(&self) -> &BlobStore {
        &self.inner.blobs
    }

    pub(crate) fn read_manifest(&self, digest: &Digest) -> Result<Manifest, StoreError> {
        let data = self.inner.blobs.read(digest)?;
        match Document::parse(&data, None) {
            Ok(Document::Manifest(m)) => Ok(m),
            Ok(Document::Index(_)) => Err(StoreError::Manifest {
                digest: digest.clone(),
                source: ManifestError::Unsupported(
                    "image index where a manifest was expected".into(),
                ),
            }),
            Err(source) => Err(StoreError::Manifest {
                digest: digest.clone(),
                source,
            }),
        }
    }

    pub(crate) fn read_config(&self, digest: &Digest) -> Result<ImageConfig, StoreError> {
        let data = self.inner.blobs.read(digest)?;
        serde_json::from_slice(&data).map_err(|source| StoreError::Config {
            digest: digest.clone(),
            source,
        })
    }

    /// Builds the [`Image`] for a manifest digest from the index snapshot `index`.
    pub(crate) fn load_image(
        &self,
        index: &Index,
        manifest_digest: &Digest,
    ) -> Result<Image, StoreError> {
        let record = index
            .images
            .get(manifest_digest)
            .ok_or_else(|| StoreError::NotFound(manifest_digest.to_string()))?;
        let manifest = self.read_manifest(manifest_digest)?;
        let config = self.read_config(&manifest.config.digest)?;
        if config.rootfs.diff_ids.len() != manifest.layers.len() {
            return Err(StoreError::LayerCount(manifest_digest.clone()));
        }
        let mut references: Vec<Reference> = index
            .refs_of(manifest_digest)
            .iter()
            .filter_map(|r| Reference::parse(r).ok())
            .collect();
        references.sort();
        let snapshot_paths = config
            .rootfs
            .diff_ids
            .iter()
            .map(|d| self.inner.snapshots.path(d))
            .collect();
        Ok(Image {
            id: manifest.config.digest.clone(),
            manifest_digest: manifest_digest.clone(),
            references,
            manifest,
            config,
            added: record.added,
            snapshot_paths,
        })
    }

    /// Re-creates missing snapshots of `image` from its layer blobs.
    pub fn ensure_snapshots(&self, image: &Image) -> Result<(), StoreError> {
        for (layer, diff_id) in image
            .manifest
            .layers
            .iter()
            .zip(&image.config.rootfs.diff_ids)
        {
            if self.inner.snapshots.contains(diff_id) {
                continue;
            }
            let file = self.inner.blobs.open_blob(&layer.digest)?;
            let name = layer.digest.to_string();
            let (pending, out) = self.inner.snapshots.unpack(file, &name)?;
            self.inner
                .snapshots
                .commit(pending, &name, &out, Some(diff_id))?;
        }
        Ok(())
    }

    /// The image a reference points at, with every snapshot present.
    pub fn resolve(&self, reference: &Reference) -> Result<Image, StoreError> {
        let index = self.inner.metadata.read()?;
        let digest = match index.refs.get(&reference.to_string()) {
            Some(d) => d.clone(),
            None => match reference.digest() {
                // `name@digest` also finds an image stored under that manifest digest.
                Some(d) if index.images.contains_key(d) => d.clone(),
                _ => return Err(StoreError::NotFound(reference.familiar())),
            },
        };
        let image = self.load_image(&index, &digest)?;
        self.ensure_snapshots(&image)?;
        Ok(image)
    }

    /// Finds an image by reference, full ID, or ID prefix (as the CLI accepts).
    pub fn find(&self, name: &str) -> Result<Image, StoreError> {
        let index = self.inner.metadata.read()?;
        let hex = name.strip_prefix("sha256:").unwrap_or(name);
        let looks_like_id = hex.len() >= 4 && hex.bytes().all(|b| b.is_ascii_hexdigit());
        if looks_like_id {
            let mut found = Vec::new();
            for m in index.images.keys() {
                let image = self.load_image(&index, m)?;
                if image.id.hex().starts_with(hex) || m.hex().starts_with(hex) {
                    found.push(image);
                }
            }
            if found.len() > 1 {
                // The same config can sit behind two manifests; that is still one image ID.
                found.dedup_by(|a, b| a.id == b.id);
            }
            match found.len() {
                0 => {}
                1 => {
                    let image = found.remove(0);
                    self.ensure_snapshots(&image)?;
                    return Ok(image);
                }
                _ => return Err(StoreError::Ambiguous(name.to_owned())),
            }
        }
        match Reference::parse(name) {
            Ok(r) => self.resolve(&r),
            Err(_) if looks_like_id => Err(StoreError::NotFound(name.to_owned())),
            Err(e) => Err(e.into()),
        }
    }

    /// Every image, newest first.
    pub fn list(&self) -> Result<Vec<Image>, StoreError> {
        let index = self.inner.metadata.read()?;
        let mut out = Vec::new();
        for m in index.images.keys() {
            out.push(self.load_image(&index, m)?);
        }
        out.sort_by(|a, b| b.added.cmp(&a.added).then(a.id.cmp(&b.id)));
        Ok(out)
    }

    /// Points `target` at `image` (moving it if it pointed elsewhere).
    pub fn tag(&self, image: &Image, target: &Reference) -> Result<(), StoreError> {
        let key = target.to_string();
        self.inner.metadata.update(|index| {
            if !index.images.contains_key(&image.manifest_digest) {
                return Err(StoreError::NotFound(image.id.to_string()));
            }
            index.refs.insert(key, image.manifest_digest.clone());
            Ok(())
        })
    }

    /// Removes a reference. When it was the image's last one, the image leaves the index too
    /// (its content goes at the next [`Store::gc`]). Returns the image's ID if it was removed.
    pub fn untag(&self, reference: &Reference) -> Result<Option<Digest>, StoreError> {
        let key = reference.to_string();
        let removed = self.inner.metadata.update(|index| {
            let Some(digest) = index.refs.remove(&key) else {
                return Err(StoreError::NotFound(reference.familiar()));
            };
            if index.refs_of(&digest).is_empty() {
                index.images.remove(&digest);
                Ok(Some(digest))
            } else {
                Ok(None)
            }
        })?;
        match removed {
            Some(m) => Ok(Some(self.read_manifest(&m)?.config.digest)),
            None => Ok(None),
        }
    }

    /// Removes an image and every reference to it. Without `force`, an image with more than
    /// one reference is refused (as `docker rmi <id>` does).
    pub fn remove(&self, image: &Image, force: bool) -> Result<Vec<Reference>, StoreError> {
        let refs = self.inner.metadata.update(|index| {
            let mut removed = Vec::new();
            // Every manifest whose config is this image ID.
            let manifests: Vec<Digest> = index.images.keys().cloned().collect();
            let mut targets = Vec::new();
            for m in manifests {
                if m == image.manifest_digest
                    || self
                        .read_manifest(&m)
                        .is_ok_and(|mf| mf.config.digest == image.id)
                {
                    targets.push(m);
                }
            }
            let refs: Vec<String> = targets.iter().flat_map(|m| index.refs_of(m)).collect();
            if refs.len() > 1 && !force {
                return Err(StoreError::MultipleReferences {
                    id: image.id.short().to_owned(),
                    refs: refs.join(", "),
                });
            }
            for r in refs {
                index.refs.remove(&r);
                if let Ok(r) = Reference::parse(&r) {
                    removed.push(r);
                }
            }
            for m in targets {
                index.images.remove(&m);
            }
            Ok(removed)
        })?;
        Ok(refs)
    }
}

/// Seconds since the Unix epoch.
pub(crate) fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_and_image_can_be_shared_between_threads() {
        fn shared<T: Send + Sync + Clone>() {}
        shared::<Store>();
        shared::<Image>();
    }
}
