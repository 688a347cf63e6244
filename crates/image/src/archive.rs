//! `save` and `load`: images to and from a docker-archive tar (`docker save` format:
//! `manifest.json`, `<id>.json` configs, `<diff-id>/layer.tar` uncompressed layers) or an OCI
//! image layout directory (`oci-layout`, `index.json`, `blobs/sha256/…`). `load` also accepts
//! either of them packed in a tar file.

use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::blob::BlobError;
use crate::config::ImageConfig;
use crate::digest::Digest;
use crate::fsio::{PathError, WithPath, mkdir_all, write_atomic};
use crate::manifest::{self, Descriptor, Document, Index, ManifestError};
use crate::platform::Platform;
use crate::reference::Reference;
use crate::store::{Image, Store, StoreError};

/// OCI annotation holding the tag.
const REF_NAME: &str = "org.opencontainers.image.ref.name";
/// containerd's annotation holding the full reference (Docker writes it too).
const IMAGE_NAME: &str = "io.containerd.image.name";

/// Errors of save and load.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    /// Store failure.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A file operation failed.
    #[error(transparent)]
    Io(#[from] PathError),
    /// A JSON document in the archive is invalid.
    #[error("invalid {what} in {path}")]
    Json {
        /// Which document.
        what: &'static str,
        /// The archive.
        path: PathBuf,
        /// Why.
        #[source]
        source: serde_json::Error,
    },
    /// A manifest in the archive is not usable.
    #[error("invalid manifest in {path}")]
    Manifest {
        /// The archive.
        path: PathBuf,
        /// Why.
        #[source]
        source: ManifestError,
    },
    /// The input is neither format.
    #[error("{0} is neither a docker-archive nor an OCI layout")]
    UnknownFormat(PathBuf),
    /// An entry of the archive tries to leave the extraction directory.
    #[error("{path}: archive entry {entry:?} refused")]
    BadEntry {
        /// The archive.
        path: PathBuf,
        /// The entry.
        entry: String,
    },
    /// A layer's content does not match the config's diff ID.
    #[error("{path}: layer {layer} has diff ID {actual}, the config says {expected}")]
    DiffId {
        /// The archive.
        path: PathBuf,
        /// Layer file.
        layer: String,
        /// From the config.
        expected: Digest,
        /// Computed.
        actual: Digest,
    },
}

impl From<BlobError> for ArchiveError {
    fn from(e: BlobError) -> Self {
        ArchiveError::Store(e.into())
    }
}

/// Output formats of [`Store::save`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SaveFormat {
    /// A `docker save` tar file.
    DockerArchive,
    /// An OCI image layout directory.
    OciLayout,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ArchiveEntry {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    layers: Vec<String>,
}

impl Store {
    /// Writes `images` to `out` in `format`.
    pub fn save(
        &self,
        images: &[Reference],
        format: SaveFormat,
        out: &Path,
    ) -> Result<(), ArchiveError> {
        let mut resolved: Vec<(Image, Vec<Reference>)> = Vec::new();
        for r in images {
            let image = self.resolve(r)?;
            match resolved.iter_mut().find(|(i, _)| i.id == image.id) {
                Some((_, refs)) => refs.push(r.clone()),
                None => resolved.push((image, vec![r.clone()])),
            }
        }
        match format {
            SaveFormat::DockerArchive => self.save_docker(&resolved, out),
            SaveFormat::OciLayout => self.save_oci(&resolved, out),
        }
    }

    fn save_docker(
        &self,
        images: &[(Image, Vec<Reference>)],
        out: &Path,
    ) -> Result<(), ArchiveError> {
        let dir = out
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let tmp = tempfile::Builder::new()
            .prefix(".berth-save-")
            .tempfile_in(dir)
            .with_path("creating a temp file in", dir)?;
        let mut tar = tar::Builder::new(std::io::BufWriter::new(tmp.as_file()));
        let mut entries = Vec::new();
        let mut written = std::collections::HashSet::new();
        for (image, refs) in images {
            let config_name = format!("{}.json", image.id.hex());
            let config = self.inner.blobs.read(&image.id)?;
            append_bytes(&mut tar, &config_name, &config, out)?;
            let mut layers = Vec::new();
            for (layer, diff_id) in image
                .manifest
                .layers
                .iter()
                .zip(&image.config.rootfs.diff_ids)
            {
                let name = format!("{}/layer.tar", diff_id.hex());
                if written.insert(name.clone()) {
                    self.append_uncompressed(&mut tar, &name, &layer.digest, out)?;
                }
                layers.push(name);
            }
            entries.push(ArchiveEntry {
                config: config_name,
                repo_tags: Some(
                    refs.iter()
                        .filter(|r| r.tag().is_some())
                        .map(|r| r.familiar())
                        .collect(),
                ),
                layers,
            });
        }
        let manifest = serde_json::to_vec(&entries).map_err(|source| ArchiveError::Json {
            what: "manifest.json",
            path: out.to_owned(),
            source,
        })?;
        append_bytes(&mut tar, "manifest.json", &manifest, out)?;
        let mut w = tar.into_inner().with_path("writing", out)?;
        w.flush().with_path("writing", out)?;
        drop(w);
        tmp.as_file().sync_all().with_path("syncing", out)?;
        tmp.persist(out)
            .map_err(|e| e.error)
            .with_path("renaming a temp file to", out)?;
        Ok(())
    }

    /// Decompresses a layer blob into a temp file and appends it (tar needs the size first).
    fn append_uncompressed<W: Write>(
        &self,
        tar: &mut tar::Builder<W>,
        name: &str,
        digest: &Digest,
        out: &Path,
    ) -> Result<(), ArchiveError> {
        let blob = self.inner.blobs.open_blob(digest)?;
        let path = self.inner.blobs.path(digest);
        let mut buffered = std::io::BufReader::new(blob);
        let head = std::io::BufRead::fill_buf(&mut buffered).with_path("reading", &path)?;
        let mut reader: Box<dyn Read> = match manifest::Compression::sniff(head) {
            manifest::Compression::None => Box::new(buffered),
            manifest::Compression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(buffered)),
            manifest::Compression::Zstd => Box::new(
                zstd::stream::read::Decoder::with_buffer(buffered).with_path("reading", &path)?,
            ),
        };
        let mut tmp = tempfile::tempfile_in(self.inner.blobs.tmp_dir())
            .with_path("creating a temp file in", self.inner.blobs.tmp_dir())?;
        let size = std::io::copy(&mut reader, &mut tmp).with_path("decompressing", &path)?;
        std::io::Seek::rewind(&mut tmp).with_path("reading", &path)?;
        let mut h = tar::Header::new_gnu();
        h.set_size(size);
        h.set_mode(0o644);
        h.set_entry_type(tar::EntryType::Regular);
        tar.append_data(&mut h, name, tmp)
            .with_path("writing", out)?;
        Ok(())
    }

    fn save_oci(&self, images: &[(Image, Vec<Reference>)], out: &Path) -> Result<(), ArchiveError> {
        let blobs = out.join("blobs").join("sha256");
        mkdir_all(&blobs)?;
        let mut manifests = Vec::new();
        for (image, refs) in images {
            let mut digests = vec![image.manifest_digest.clone(), image.id.clone()];
            digests.extend(image.manifest.layers.iter().map(|l| l.digest.clone()));
            for d in digests {
                let dst = blobs.join(d.hex());
                if !dst.exists() {
                    let src = self.inner.blobs.path(&d);
                    std::fs::copy(&src, &dst).with_path("copying", &src)?;
                }
            }
            let size = self.inner.blobs.size(&image.manifest_digest)?;
            let media = image
                .manifest
                .media_type
                .clone()
                .unwrap_or_else(|| manifest::OCI_MANIFEST.into());
            let tagged: Vec<&Reference> = refs.iter().filter(|r| r.tag().is_some()).collect();
            if tagged.is_empty() {
                manifests.push(Descriptor::new(&media, image.manifest_digest.clone(), size));
            }
            for r in tagged {
                let mut d = Descriptor::new(&media, image.manifest_digest.clone(), size);
                d.annotations
                    .insert(REF_NAME.into(), r.tag().unwrap_or("latest").to_owned());
                d.annotations.insert(IMAGE_NAME.into(), r.to_string());
                manifests.push(d);
            }
        }
        let index = Index {
            schema_version: 2,
            media_type: Some(manifest::OCI_INDEX.into()),
            manifests,
            annotations: Default::default(),
        };
        let json = |what, source| ArchiveError::Json {
            what,
            path: out.to_owned(),
            source,
        };
        let index = serde_json::to_vec(&index).map_err(|e| json("index.json", e))?;
        write_atomic(
            &out.join("oci-layout"),
            br#"{"imageLayoutVersion":"1.0.0"}"#,
            0o644,
        )?;
        write_atomic(&out.join("index.json"), &index, 0o644)?;
        Ok(())
    }

    /// Loads every image of a docker-archive or OCI layout (directory, or tar of either).
    pub fn load(&self, input: &Path) -> Result<Vec<Image>, ArchiveError> {
        let _lock = self
            .inner
            .metadata
            .writer_lock()
            .map_err(StoreError::from)?;
        if input.is_dir() {
            return self.load_dir(input, input);
        }
        let tmp = tempfile::Builder::new()
            .prefix("load-")
            .tempdir_in(self.inner.blobs.tmp_dir())
            .with_path("creating a temp directory in", self.inner.blobs.tmp_dir())?;
        extract_plain(input, tmp.path())?;
        self.load_dir(tmp.path(), input)
    }

    fn load_dir(&self, dir: &Path, shown: &Path) -> Result<Vec<Image>, ArchiveError> {
        if dir.join("manifest.json").is_file() {
            self.load_docker(dir, shown)
        } else if dir.join("oci-layout").is_file() {
            self.load_oci(dir, shown)
        } else {
            Err(ArchiveError::UnknownFormat(shown.to_owned()))
        }
    }

    fn load_docker(&self, dir: &Path, shown: &Path) -> Result<Vec<Image>, ArchiveError> {
        let path = dir.join("manifest.json");
        let data = std::fs::read(&path).with_path("reading", &path)?;
        let entries: Vec<ArchiveEntry> =
            serde_json::from_slice(&data).map_err(|source| ArchiveError::Json {
                what: "manifest.json",
                path: shown.to_owned(),
                source,
            })?;
        let mut images = Vec::new();
        for entry in entries {
            let cpath = safe_join(dir, &entry.config, shown)?;
            let config_bytes = std::fs::read(&cpath).with_path("reading", &cpath)?;
            let config: ImageConfig =
                serde_json::from_slice(&config_bytes).map_err(|source| ArchiveError::Json {
                    what: "image config",
                    path: shown.to_owned(),
                    source,
                })?;
            let mut layers = Vec::new();
            for (i, name) in entry.layers.iter().enumerate() {
                let lpath = safe_join(dir, name, shown)?;
                let f = File::open(&lpath).with_path("opening", &lpath)?;
                let layer = self.write_layer(f)?;
                if let Some(expected) = config.rootfs.diff_ids.get(i)
                    && expected != &layer.diff_id
                {
                    return Err(ArchiveError::DiffId {
                        path: shown.to_owned(),
                        layer: name.clone(),
                        expected: expected.clone(),
                        actual: layer.diff_id,
                    });
                }
                layers.push(layer);
            }
            let tags: Vec<Reference> = entry
                .repo_tags
                .unwrap_or_default()
                .iter()
                .filter_map(|t| Reference::parse(t).ok())
                .collect();
            images.push(self.assemble(
                &config_bytes,
                manifest::DOCKER_CONFIG,
                &layers,
                &tags,
                None,
            )?);
        }
        Ok(images)
    }

    fn load_oci(&self, dir: &Path, shown: &Path) -> Result<Vec<Image>, ArchiveError> {
        let read_blob = |d: &Digest| -> Result<Vec<u8>, ArchiveError> {
            let p = dir.join("blobs/sha256").join(d.hex());
            let data = std::fs::read(&p).with_path("reading", &p)?;
            let actual = Digest::of(&data);
            if &actual != d {
                return Err(BlobError::DigestMismatch {
                    expected: d.clone(),
                    actual,
                }
                .into());
            }
            Ok(data)
        };
        let ipath = dir.join("index.json");
        let data = std::fs::read(&ipath).with_path("reading", &ipath)?;
        let manifest_err = |source| ArchiveError::Manifest {
            path: shown.to_owned(),
            source,
        };
        let Document::Index(index) =
            Document::parse(&data, Some(manifest::OCI_INDEX)).map_err(manifest_err)?
        else {
            return Err(ArchiveError::UnknownFormat(shown.to_owned()));
        };
        let mut images = Vec::new();
        for desc in &index.manifests {
            let mut digest = desc.digest.clone();
            let mut bytes = read_blob(&digest)?;
            let mut doc = Document::parse(&bytes, Some(&desc.media_type)).map_err(manifest_err)?;
            if let Document::Index(nested) = &doc {
                let d = nested
                    .select(&Platform::default())
                    .map_err(manifest_err)?
                    .clone();
                digest = d.digest.clone();
                bytes = read_blob(&digest)?;
                doc = Document::parse(&bytes, Some(&d.media_type)).map_err(manifest_err)?;
            }
            let Document::Manifest(m) = doc else {
                return Err(manifest_err(ManifestError::Unsupported(
                    "nested image index".into(),
                )));
            };
            let config = read_blob(&m.config.digest)?;
            self.inner.blobs.write(&config)?;
            for l in &m.layers {
                if !self.inner.blobs.contains(&l.digest) {
                    let p = dir.join("blobs/sha256").join(l.digest.hex());
                    let mut f = File::open(&p).with_path("opening", &p)?;
                    let mut w = self.inner.blobs.writer()?;
                    std::io::copy(&mut f, &mut w).with_path("copying", &p)?;
                    w.commit(Some(&l.digest), Some(l.size))?;
                }
            }
            self.inner.blobs.write(&bytes)?;
            let tag = desc
                .annotations
                .get(IMAGE_NAME)
                .and_then(|n| Reference::parse(n).ok());
            self.add_image(&digest, None, tag.as_slice())?;
            let index = self.inner.metadata.read().map_err(StoreError::from)?;
            let image = self.load_image(&index, &digest)?;
            self.ensure_snapshots(&image)?;
            images.push(image);
        }
        Ok(images)
    }
}

fn append_bytes<W: Write>(
    tar: &mut tar::Builder<W>,
    name: &str,
    data: &[u8],
    out: &Path,
) -> Result<(), ArchiveError> {
    let mut h = tar::Header::new_gnu();
    h.set_size(data.len() as u64);
    h.set_mode(0o644);
    h.set_entry_type(tar::EntryType::Regular);
    tar.append_data(&mut h, name, data)
        .with_path("writing", out)?;
    Ok(())
}

/// Joins an archive-relative name, refusing escapes.
fn safe_join(dir: &Path, name: &str, shown: &Path) -> Result<PathBuf, ArchiveError> {
    let rel = Path::new(name);
    if rel.components().any(|c| {
        !matches!(
            c,
            std::path::Component::Normal(_) | std::path::Component::CurDir
        )
    }) {
        return Err(ArchiveError::BadEntry {
            path: shown.to_owned(),
            entry: name.to_owned(),
        });
    }
    Ok(dir.join(rel))
}

/// Extracts regular files and directories of a tar (nothing else is needed for archives).
fn extract_plain(input: &Path, dst: &Path) -> Result<(), ArchiveError> {
    let f = File::open(input).with_path("opening", input)?;
    let mut archive = tar::Archive::new(std::io::BufReader::new(f));
    for entry in archive.entries().with_path("reading", input)? {
        let mut entry = entry.with_path("reading", input)?;
        let name = entry
            .path()
            .with_path("reading", input)?
            .to_string_lossy()
            .into_owned();
        let target = safe_join(dst, &name, input)?;
        match entry.header().entry_type() {
            tar::EntryType::Directory => mkdir_all(&target)?,
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                if let Some(parent) = target.parent() {
                    mkdir_all(parent)?;
                }
                let mut out = File::create(&target).with_path("creating", &target)?;
                std::io::copy(&mut entry, &mut out).with_path("writing", &target)?;
            }
            _ => {}
        }
    }
    Ok(())
}
