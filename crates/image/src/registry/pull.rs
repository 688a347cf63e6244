//! `Store::pull`: manifest (or index → platform manifest), config, then the layers in
//! parallel (bounded). Each layer streams from the registry into its blob file and, at the
//! same time, through the decompressor into a pending snapshot; the blob digest is checked
//! at the end and only then do blob and snapshot enter the store. A dropped connection is
//! resumed with a `Range` request (or restarted when the registry ignores ranges).

use std::io::{Read, Write};

use bytes::{Buf, Bytes};
use futures::{StreamExt, TryStreamExt};
use reqwest::header::{ACCEPT, CONTENT_TYPE, RANGE};
use reqwest::{Method, StatusCode};

use crate::blob::BlobWriter;
use crate::config::ImageConfig;
use crate::digest::Digest;
use crate::manifest::{
    ACCEPT_MANIFESTS, Compression, Descriptor, Document, Manifest, ManifestError,
};
use crate::platform::Platform;
use crate::reference::Reference;
use crate::registry::client::{Client, ClientOptions, RETRIES, RegistryError, backoff, check};
use crate::registry::progress::{Progress, ProgressFn};
use crate::store::{Image, Store, StoreError};

/// How many layers download at once.
pub const MAX_CONCURRENT_LAYERS: usize = 6;

/// Errors of a pull.
#[derive(Debug, thiserror::Error)]
pub enum PullError {
    /// Talking to the registry failed.
    #[error(transparent)]
    Registry(#[from] RegistryError),
    /// Writing into the store failed (including digest mismatches).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The manifest is not usable.
    #[error("manifest of {reference}")]
    Manifest {
        /// Reference being pulled.
        reference: String,
        /// Why.
        #[source]
        source: ManifestError,
    },
    /// A manifest fetched by digest has other content.
    #[error("manifest {expected} of {reference}: content hashes to {actual}")]
    ManifestDigest {
        /// Reference being pulled.
        reference: String,
        /// Digest asked for.
        expected: Digest,
        /// Digest received.
        actual: Digest,
    },
    /// The config blob is not a valid image config.
    #[error("image config {digest} is invalid")]
    Config {
        /// Config digest.
        digest: Digest,
        /// Why.
        #[source]
        source: serde_json::Error,
    },
    /// Config and manifest disagree on the number of layers.
    #[error("image {0}: the config lists a different number of layers than the manifest")]
    LayerCount(Digest),
    /// A layer media type berth cannot unpack.
    #[error("layer {digest} has unsupported media type {media_type}")]
    UnsupportedLayer {
        /// Blob digest.
        digest: Digest,
        /// Media type.
        media_type: String,
    },
    /// The unpacking thread panicked or was cancelled.
    #[error("unpacking layer {digest} was interrupted")]
    Worker {
        /// Blob digest.
        digest: Digest,
        /// Why.
        #[source]
        source: tokio::task::JoinError,
    },
}

impl From<crate::blob::BlobError> for PullError {
    fn from(e: crate::blob::BlobError) -> Self {
        PullError::Store(e.into())
    }
}

impl From<crate::snapshot::SnapshotError> for PullError {
    fn from(e: crate::snapshot::SnapshotError) -> Self {
        PullError::Store(e.into())
    }
}

impl From<crate::metadata::MetadataError> for PullError {
    fn from(e: crate::metadata::MetadataError) -> Self {
        PullError::Store(e.into())
    }
}

async fn get_manifest(
    client: &Client,
    scope: &str,
    reference: &Reference,
    what: &str,
) -> Result<(Bytes, Option<String>), PullError> {
    let url_tail = format!("/v2/{}/manifests/{what}", reference.repository());
    let resp = client
        .send_ok(
            scope,
            &format!("manifest {}", reference.familiar()),
            Method::GET,
            |h, base| {
                h.get(format!("{base}{url_tail}"))
                    .header(ACCEPT, ACCEPT_MANIFESTS)
            },
        )
        .await?;
    let ctype = resp
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let url = resp.url().to_string();
    let bytes = resp
        .bytes()
        .await
        .map_err(|source| RegistryError::Http { url, source })?;
    Ok((bytes, ctype))
}

impl Store {
    /// Pulls `reference` for `platform` from its registry. Blobs already present are not
    /// downloaded again; layers are unpacked into snapshots on the way.
    ///
    /// Async (tokio); unpacking runs on blocking threads.
    pub async fn pull(
        &self,
        reference: &Reference,
        platform: &Platform,
        options: &ClientOptions,
        progress: ProgressFn,
    ) -> Result<Image, PullError> {
        let client = Client::new(reference.registry(), options.clone())?;
        self.pull_with(&client, reference, platform, progress).await
    }

    /// [`Store::pull`] with an existing client (keeps its tokens and connections).
    pub async fn pull_with(
        &self,
        client: &Client,
        reference: &Reference,
        platform: &Platform,
        progress: ProgressFn,
    ) -> Result<Image, PullError> {
        let _lock = self.inner.metadata.writer_lock()?;
        let shown = reference.familiar();
        let scope = format!("repository:{}:pull", reference.repository());
        let (mut bytes, ctype) =
            get_manifest(client, &scope, reference, &reference.manifest_reference()).await?;
        let mut digest = Digest::of(&bytes);
        if let Some(want) = reference.digest()
            && want != &digest
        {
            return Err(PullError::ManifestDigest {
                reference: shown,
                expected: want.clone(),
                actual: digest,
            });
        }
        let manifest_err = |source| PullError::Manifest {
            reference: reference.familiar(),
            source,
        };
        let manifest: Manifest =
            match Document::parse(&bytes, ctype.as_deref()).map_err(manifest_err)? {
                Document::Manifest(m) => m,
                Document::Index(index) => {
                    let desc = index.select(platform).map_err(manifest_err)?.clone();
                    let (b, ct) =
                        get_manifest(client, &scope, reference, &desc.digest.to_string()).await?;
                    let actual = Digest::of(&b);
                    if actual != desc.digest {
                        return Err(PullError::ManifestDigest {
                            reference: shown,
                            expected: desc.digest,
                            actual,
                        });
                    }
                    bytes = b;
                    digest = actual;
                    match Document::parse(&bytes, ct.as_deref().or(Some(&desc.media_type)))
                        .map_err(manifest_err)?
                    {
                        Document::Manifest(m) => m,
                        Document::Index(_) => {
                            return Err(manifest_err(ManifestError::Unsupported(
                                "nested image index".into(),
                            )));
                        }
                    }
                }
            };
        progress(Progress::Resolved {
            reference: shown,
            digest: digest.clone(),
        });

        let config_bytes = self
            .fetch_small_blob(client, &scope, reference, &manifest.config)
            .await?;
        let config: ImageConfig =
            serde_json::from_slice(&config_bytes).map_err(|source| PullError::Config {
                digest: manifest.config.digest.clone(),
                source,
            })?;
        if config.rootfs.diff_ids.len() != manifest.layers.len() {
            return Err(PullError::LayerCount(digest));
        }
        for l in &manifest.layers {
            if Compression::from_media_type(&l.media_type).is_none() {
                return Err(PullError::UnsupportedLayer {
                    digest: l.digest.clone(),
                    media_type: l.media_type.clone(),
                });
            }
        }

        let jobs = manifest
            .layers
            .iter()
            .zip(&config.rootfs.diff_ids)
            .map(|(layer, diff_id)| {
                self.fetch_layer(client, &scope, reference, layer, diff_id, progress.clone())
            });
        futures::stream::iter(jobs)
            .buffer_unordered(MAX_CONCURRENT_LAYERS)
            .try_collect::<Vec<()>>()
            .await?;

        // Config and manifest go in last: a failed pull leaves the store as it was.
        self.inner.blobs.write(&config_bytes)?;
        self.inner.blobs.write(&bytes)?;
        let mut tags = vec![reference.clone()];
        if let Some(tag) = reference.tag()
            && reference.digest().is_some()
        {
            // `name:tag@digest` also answers to `name:tag`.
            tags.push(reference.with_tag(tag).map_err(StoreError::from)?);
        }
        self.add_image(&digest, Some(reference.name()), &tags)?;
        let index = self.inner.metadata.read()?;
        Ok(self.load_image(&index, &digest)?)
    }

    async fn fetch_small_blob(
        &self,
        client: &Client,
        scope: &str,
        reference: &Reference,
        desc: &Descriptor,
    ) -> Result<Vec<u8>, PullError> {
        if self.inner.blobs.contains(&desc.digest) {
            return Ok(self.inner.blobs.read(&desc.digest)?);
        }
        let tail = format!("/v2/{}/blobs/{}", reference.repository(), desc.digest);
        let resp = client
            .send_ok(
                scope,
                &format!("blob {}", desc.digest),
                Method::GET,
                |h, base| h.get(format!("{base}{tail}")),
            )
            .await?;
        let url = resp.url().to_string();
        let data = resp
            .bytes()
            .await
            .map_err(|source| RegistryError::Http { url, source })?;
        let actual = Digest::of(&data);
        if actual != desc.digest {
            return Err(StoreError::from(crate::blob::BlobError::DigestMismatch {
                expected: desc.digest.clone(),
                actual,
            })
            .into());
        }
        Ok(data.to_vec())
    }

    async fn fetch_layer(
        &self,
        client: &Client,
        scope: &str,
        reference: &Reference,
        layer: &Descriptor,
        diff_id: &Digest,
        progress: ProgressFn,
    ) -> Result<(), PullError> {
        let digest = layer.digest.clone();
        let have_blob = self.inner.blobs.contains(&digest);
        if have_blob && self.inner.snapshots.contains(diff_id) {
            progress(Progress::LayerExists { digest });
            return Ok(());
        }
        if have_blob {
            let store = self.clone();
            let (d, diff) = (digest.clone(), diff_id.clone());
            tokio::task::spawn_blocking(move || -> Result<(), PullError> {
                let file = store.inner.blobs.open_blob(&d)?;
                let name = d.to_string();
                let (pending, out) = store.inner.snapshots.unpack(file, &name)?;
                store
                    .inner
                    .snapshots
                    .commit(pending, &name, &out, Some(&diff))?;
                Ok(())
            })
            .await
            .map_err(|source| PullError::Worker {
                digest: digest.clone(),
                source,
            })??;
            progress(Progress::LayerExists { digest });
            return Ok(());
        }

        progress(Progress::LayerStarted {
            digest: digest.clone(),
            size: layer.size,
        });
        let (tx, rx) = tokio::sync::mpsc::channel::<std::io::Result<Bytes>>(256);
        let writer = self.inner.blobs.writer()?;
        let snapshots = self.inner.snapshots.clone();
        let (d, diff, size) = (digest.clone(), diff_id.clone(), layer.size);
        let worker = tokio::task::spawn_blocking(move || -> Result<(), PullError> {
            let name = d.to_string();
            let mut reader = ChannelReader {
                rx,
                cur: Bytes::new(),
                writer: Some(writer),
                write_error: None,
            };
            let unpacked = snapshots.unpack(&mut reader, &name);
            // Whatever the unpacker left (trailing padding, or everything after an error)
            // still has to be hashed: a digest mismatch is the more fundamental error.
            let _ = std::io::copy(&mut reader, &mut std::io::sink());
            if let Some(e) = reader.write_error.take() {
                return Err(crate::blob::BlobError::from(e).into());
            }
            let writer = reader.writer.take();
            let (pending, out) = match unpacked {
                Ok(u) => u,
                Err(e) => {
                    // A corrupt download explains an unpack failure: report the digest.
                    if let Some(w) = writer {
                        w.verify(&d, Some(size))?;
                    }
                    return Err(e.into());
                }
            };
            if let Some(w) = writer {
                w.commit(Some(&d), Some(size))?;
            }
            snapshots.commit(pending, &name, &out, Some(&diff))?;
            Ok(())
        });
        let downloaded = self
            .download(client, scope, reference, layer, &tx, &progress)
            .await;
        drop(tx);
        let worked = worker.await.map_err(|source| PullError::Worker {
            digest: digest.clone(),
            source,
        });
        downloaded?;
        worked??;
        progress(Progress::LayerDone { digest });
        Ok(())
    }

    /// Streams a blob into `tx`, resuming after connection failures.
    async fn download(
        &self,
        client: &Client,
        scope: &str,
        reference: &Reference,
        layer: &Descriptor,
        tx: &tokio::sync::mpsc::Sender<std::io::Result<Bytes>>,
        progress: &ProgressFn,
    ) -> Result<(), PullError> {
        let tail = format!("/v2/{}/blobs/{}", reference.repository(), layer.digest);
        let what = format!("blob {}", layer.digest);
        let mut offset = 0u64;
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let from = offset;
            let sent = client
                .send(scope, |h, base| {
                    let r = h.get(format!("{base}{tail}"));
                    if from > 0 {
                        r.header(RANGE, format!("bytes={from}-"))
                    } else {
                        r
                    }
                })
                .await;
            let resp = match sent {
                Ok(r) => check(r, &what, &Method::GET).await,
                Err(e) => Err(e),
            };
            let failure = match resp {
                Err(e) if !e.is_transient() => return Err(e.into()),
                Err(e) => e,
                Ok(mut resp) => {
                    let mut skip = if offset > 0 && resp.status() != StatusCode::PARTIAL_CONTENT {
                        offset
                    } else {
                        0
                    };
                    let url = resp.url().to_string();
                    loop {
                        match resp.chunk().await {
                            Ok(Some(mut b)) => {
                                if skip > 0 {
                                    let n = (skip as usize).min(b.len());
                                    b.advance(n);
                                    skip -= n as u64;
                                    if b.is_empty() {
                                        continue;
                                    }
                                }
                                offset += b.len() as u64;
                                if tx.send(Ok(b)).await.is_err() {
                                    // The unpacker stopped; its error is the one to report.
                                    return Ok(());
                                }
                                progress(Progress::LayerBytes {
                                    digest: layer.digest.clone(),
                                    done: offset,
                                    total: layer.size,
                                });
                            }
                            Ok(None) => return Ok(()),
                            Err(source) => {
                                break RegistryError::Http {
                                    url: url.clone(),
                                    source,
                                };
                            }
                        }
                    }
                }
            };
            if attempt >= RETRIES {
                return Err(failure.into());
            }
            progress(Progress::LayerRetry {
                digest: layer.digest.clone(),
                attempt: attempt + 1,
                error: failure.to_string(),
            });
            tokio::time::sleep(backoff(attempt)).await;
        }
    }
}

/// Reads the chunks a download task sends, writing each to the blob file as it arrives.
struct ChannelReader {
    rx: tokio::sync::mpsc::Receiver<std::io::Result<Bytes>>,
    cur: Bytes,
    writer: Option<BlobWriter>,
    write_error: Option<crate::fsio::PathError>,
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.cur.is_empty() {
            match self.rx.blocking_recv() {
                Some(Ok(b)) => {
                    if let Some(w) = self.writer.as_mut()
                        && let Err(e) = w.write_all(&b)
                    {
                        let err = crate::fsio::path_error("writing", w.path(), e);
                        self.writer = None;
                        self.write_error = Some(err);
                        return Err(std::io::Error::other("writing the blob failed"));
                    }
                    self.cur = b;
                }
                Some(Err(e)) => return Err(e),
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.cur.len());
        buf[..n].copy_from_slice(&self.cur[..n]);
        self.cur.advance(n);
        Ok(n)
    }
}
