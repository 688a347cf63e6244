//! Creating images locally: writing layers, assembling images from a config and layers (the
//! builder and `commit` use these), and `import` of a root file system (tar or directory).

use std::io::{Read, Write};
use std::path::Path;

use crate::config::{Empty, History, ImageConfig};
use crate::digest::Digest;
use crate::fsio::{PathError, WithPath};
use crate::manifest::{self, Compression, Descriptor, Manifest};
use crate::metadata::ImageRecord;
use crate::platform::Platform;
use crate::reference::Reference;
use crate::store::{Image, Store, StoreError, now};

/// Errors creating images locally.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// Store failure.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Reading the input failed.
    #[error(transparent)]
    Io(#[from] PathError),
    /// A `--change` instruction is malformed or not allowed.
    #[error("invalid change {0:?}: {1}")]
    Change(String, &'static str),
}

/// A layer written into the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layer {
    /// Blob digest (what the manifest lists).
    pub digest: Digest,
    /// Digest of the uncompressed tar (what the config lists).
    pub diff_id: Digest,
    /// Blob size.
    pub size: u64,
    /// Blob media type.
    pub media_type: String,
}

/// Options of [`Store::import_rootfs`].
#[derive(Debug, Clone, Default)]
pub struct ImportOptions {
    /// Dockerfile-style config changes: `CMD`, `ENTRYPOINT`, `ENV`, `EXPOSE`, `LABEL`, `USER`,
    /// `WORKDIR`, `VOLUME`, `STOPSIGNAL`.
    pub changes: Vec<String>,
    /// History comment (`docker import --message`).
    pub message: Option<String>,
    /// Platform recorded in the config (default linux/amd64).
    pub platform: Option<Platform>,
}

impl Store {
    /// Writes a layer from a tar stream (plain, gzip or zstd; recognised from its first bytes)
    /// and unpacks its snapshot. The blob is stored as given.
    pub fn write_layer(&self, mut tar: impl Read) -> Result<Layer, StoreError> {
        let _lock = self.inner.metadata.writer_lock()?;
        let mut w = self.inner.blobs.writer()?;
        let tmp = self.inner.blobs.tmp_dir().to_owned();
        let mut buf = vec![0u8; 256 * 1024];
        let mut head = Vec::new();
        loop {
            let n = tar
                .read(&mut buf)
                .with_path("reading layer input for", &tmp)
                .map_err(|e| StoreError::Blob(e.into()))?;
            if n == 0 {
                break;
            }
            if head.len() < 4 {
                head.extend_from_slice(&buf[..n.min(4)]);
            }
            w.write_all(&buf[..n])
                .with_path("writing a blob in", &tmp)
                .map_err(|e| StoreError::Blob(e.into()))?;
        }
        let size = w.written();
        w.flush()
            .with_path("writing", &tmp)
            .map_err(|e| StoreError::Blob(e.into()))?;
        let media_type = match Compression::sniff(&head) {
            Compression::None => manifest::OCI_LAYER_TAR,
            Compression::Gzip => manifest::OCI_LAYER_GZIP,
            Compression::Zstd => manifest::OCI_LAYER_ZSTD,
        };
        // Unpack from the temp file first: a layer that fails to unpack never enters the store.
        let file = std::fs::File::open(w.path())
            .with_path("opening", w.path())
            .map_err(|e| StoreError::Blob(e.into()))?;
        let name = w.digest_so_far().to_string();
        let (pending, out) = self.inner.snapshots.unpack(file, &name)?;
        let digest = w.commit(None, None)?;
        self.inner.snapshots.commit(pending, &name, &out, None)?;
        Ok(Layer {
            digest,
            diff_id: out.diff_id,
            size,
            media_type: media_type.to_owned(),
        })
    }

    /// Assembles an image from `config` (its `rootfs.diff_ids` are replaced by the layers')
    /// and layers already written with [`Store::write_layer`], and points `tags` at it.
    pub fn create_image(
        &self,
        mut config: ImageConfig,
        layers: &[Layer],
        tags: &[Reference],
    ) -> Result<Image, StoreError> {
        let _lock = self.inner.metadata.writer_lock()?;
        config.rootfs.kind = "layers".into();
        config.rootfs.diff_ids = layers.iter().map(|l| l.diff_id.clone()).collect();
        if config.os.is_empty() {
            config.os = "linux".into();
        }
        if config.architecture.is_empty() {
            config.architecture = "amd64".into();
        }
        if config.created.is_none() {
            config.created = Some(rfc3339(now()));
        }
        let config_bytes = serde_json::to_vec(&config).map_err(|source| StoreError::Config {
            digest: Digest::of(b""),
            source,
        })?;
        self.assemble(&config_bytes, manifest::OCI_CONFIG, layers, tags, None)
    }

    /// Writes `config_bytes` as they are (so the image ID is their digest) and a manifest
    /// over `layers`, records the image and points `tags` at it.
    pub(crate) fn assemble(
        &self,
        config_bytes: &[u8],
        config_media_type: &str,
        layers: &[Layer],
        tags: &[Reference],
        source: Option<String>,
    ) -> Result<Image, StoreError> {
        let config_digest = self.inner.blobs.write(config_bytes)?;
        let manifest = Manifest {
            schema_version: 2,
            media_type: Some(manifest::OCI_MANIFEST.into()),
            config: Descriptor::new(config_media_type, config_digest, config_bytes.len() as u64),
            layers: layers
                .iter()
                .map(|l| Descriptor::new(&l.media_type, l.digest.clone(), l.size))
                .collect(),
            annotations: Default::default(),
        };
        let manifest_bytes =
            serde_json::to_vec(&manifest).map_err(|source| StoreError::Config {
                digest: Digest::of(b""),
                source,
            })?;
        let manifest_digest = self.inner.blobs.write(&manifest_bytes)?;
        self.add_image(&manifest_digest, source, tags)?;
        let index = self.inner.metadata.read()?;
        self.load_image(&index, &manifest_digest)
    }

    /// Records an image whose blobs are all present and points `tags` at it.
    pub(crate) fn add_image(
        &self,
        manifest_digest: &Digest,
        source: Option<String>,
        tags: &[Reference],
    ) -> Result<(), StoreError> {
        self.inner.metadata.update(|index| {
            let record = index
                .images
                .entry(manifest_digest.clone())
                .or_insert(ImageRecord {
                    added: now(),
                    source: None,
                });
            if source.is_some() {
                record.source = source;
            }
            for t in tags {
                index.refs.insert(t.to_string(), manifest_digest.clone());
            }
            Ok::<_, StoreError>(())
        })
    }

    /// `docker import`: a root file system (a tar, possibly compressed, or a directory) becomes
    /// a one-layer image, tagged `reference` when given.
    pub fn import_rootfs(
        &self,
        path: &Path,
        reference: Option<&Reference>,
        options: &ImportOptions,
    ) -> Result<Image, ImportError> {
        // Held across layer and image creation so a concurrent gc cannot take the layer.
        let _lock = self
            .inner
            .metadata
            .writer_lock()
            .map_err(StoreError::from)?;
        let layer = if path.is_dir() {
            let (reader, mut writer) = std::io::pipe().with_path("creating a pipe for", path)?;
            let dir = path.to_owned();
            let producer = std::thread::spawn(move || -> Result<(), PathError> {
                let mut b = tar::Builder::new(&mut writer);
                b.follow_symlinks(false);
                b.mode(tar::HeaderMode::Complete);
                b.append_dir_all(".", &dir).with_path("archiving", &dir)?;
                b.finish().with_path("archiving", &dir)?;
                Ok(())
            });
            let layer = self.write_layer(reader);
            let produced = producer.join().unwrap_or_else(|_| {
                Err(crate::fsio::path_error(
                    "archiving (thread panicked)",
                    path,
                    std::io::Error::other("panic"),
                ))
            });
            produced?;
            layer?
        } else {
            let f = std::fs::File::open(path).with_path("opening", path)?;
            self.write_layer(f)?
        };
        let platform = options.platform.clone().unwrap_or_default();
        let mut config = ImageConfig {
            architecture: platform.architecture,
            os: platform.os,
            variant: platform.variant,
            ..Default::default()
        };
        apply_changes(&mut config, &options.changes)?;
        config.history.push(History {
            created: Some(rfc3339(now())),
            created_by: Some(format!("berth import {}", path.display())),
            comment: options.message.clone(),
            ..Default::default()
        });
        let tags: Vec<Reference> = reference.into_iter().cloned().collect();
        Ok(self.create_image(config, &[layer], &tags)?)
    }
}

/// Applies Dockerfile-style instructions to a config, as `docker import --change` does.
pub fn apply_changes(config: &mut ImageConfig, changes: &[String]) -> Result<(), ImportError> {
    for change in changes {
        let bad = |why| ImportError::Change(change.clone(), why);
        let (word, rest) = change
            .trim()
            .split_once(char::is_whitespace)
            .ok_or_else(|| bad("expected an instruction and its arguments"))?;
        let rest = rest.trim();
        let c = &mut config.config;
        match word.to_ascii_uppercase().as_str() {
            "CMD" => c.cmd = Some(command(rest)),
            "ENTRYPOINT" => c.entrypoint = Some(command(rest)),
            "ENV" => {
                for (k, v) in key_values(rest).ok_or_else(|| bad("expected KEY=value"))? {
                    c.env.retain(|e| e.split('=').next() != Some(k.as_str()));
                    c.env.push(format!("{k}={v}"));
                }
            }
            "LABEL" => {
                for (k, v) in key_values(rest).ok_or_else(|| bad("expected key=value"))? {
                    c.labels.insert(k, v);
                }
            }
            "EXPOSE" => {
                for p in rest.split_whitespace() {
                    let p = if p.contains('/') {
                        p.to_owned()
                    } else {
                        format!("{p}/tcp")
                    };
                    c.exposed_ports.insert(p, Empty {});
                }
            }
            "VOLUME" => {
                let vols = serde_json::from_str::<Vec<String>>(rest)
                    .unwrap_or_else(|_| rest.split_whitespace().map(str::to_owned).collect());
                for v in vols {
                    c.volumes.insert(v, Empty {});
                }
            }
            "USER" => c.user = rest.to_owned(),
            "WORKDIR" => c.working_dir = rest.to_owned(),
            "STOPSIGNAL" => c.stop_signal = Some(rest.to_owned()),
            _ => {
                return Err(bad(
                    "only CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, USER, WORKDIR, VOLUME and STOPSIGNAL are allowed",
                ));
            }
        }
    }
    Ok(())
}

/// JSON-array form, or shell form wrapped in `/bin/sh -c`.
fn command(s: &str) -> Vec<String> {
    serde_json::from_str::<Vec<String>>(s)
        .unwrap_or_else(|_| vec!["/bin/sh".into(), "-c".into(), s.to_owned()])
}

/// `K=v K2="v 2"` or the legacy `K v` form.
fn key_values(s: &str) -> Option<Vec<(String, String)>> {
    if !s.contains('=') {
        let (k, v) = s.split_once(char::is_whitespace)?;
        return Some(vec![(k.to_owned(), v.trim().to_owned())]);
    }
    let mut out = Vec::new();
    let mut chars = s.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        if chars.peek().is_none() {
            return Some(out);
        }
        let key: String = chars.by_ref().take_while(|&c| c != '=').collect();
        if key.is_empty() || key.contains(char::is_whitespace) {
            return None;
        }
        let mut val = String::new();
        let mut quote = None;
        while let Some(&c) = chars.peek() {
            match (c, quote) {
                ('"' | '\'', None) => quote = Some(c),
                (c, Some(q)) if c == q => quote = None,
                (c, None) if c.is_whitespace() => break,
                (c, _) => val.push(c),
            }
            chars.next();
        }
        out.push((key, val));
    }
}

/// Formats Unix seconds as RFC 3339 UTC (`1970-01-01T00:00:00Z`).
pub(crate) fn rfc3339(secs: u64) -> String {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs);
    humantime::format_rfc3339_seconds(t).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_set_config_fields() {
        let mut c = ImageConfig::default();
        apply_changes(
            &mut c,
            &[
                "CMD [\"sh\", \"-c\", \"echo hi\"]".into(),
                "ENTRYPOINT /bin/init".into(),
                "ENV A=1 B=\"two words\"".into(),
                "ENV A=3".into(),
                "EXPOSE 80 53/udp".into(),
                "LABEL org.x=y".into(),
                "WORKDIR /srv".into(),
                "USER 1000:1000".into(),
            ],
        )
        .unwrap();
        assert_eq!(c.config.cmd.as_deref().unwrap(), ["sh", "-c", "echo hi"]);
        assert_eq!(
            c.config.entrypoint.as_deref().unwrap(),
            ["/bin/sh", "-c", "/bin/init"]
        );
        assert_eq!(c.config.env, ["B=two words", "A=3"]);
        assert_eq!(
            c.config.exposed_ports.keys().collect::<Vec<_>>(),
            ["53/udp", "80/tcp"]
        );
        assert_eq!(c.config.labels["org.x"], "y");
        assert_eq!(c.config.working_dir, "/srv");
        assert_eq!(c.config.user, "1000:1000");
        assert!(matches!(
            apply_changes(&mut c, &["RUN x".into()]),
            Err(ImportError::Change(..))
        ));
    }

    #[test]
    fn rfc3339_formats_known_dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
    }
}
