//! `Store::push`: every blob the registry lacks (checked with `HEAD`) is mounted from the
//! repository the image came from when that is on the same registry, else uploaded
//! (monolithic `PUT`, or `PATCH` chunks then `PUT` for blobs larger than the chunk size);
//! the manifest goes last.

use reqwest::header::{CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE, LOCATION};
use reqwest::{Method, Response, StatusCode};
use tokio::io::AsyncReadExt;

use crate::digest::Digest;
use crate::manifest::{Descriptor, OCI_MANIFEST};
use crate::reference::Reference;
use crate::registry::client::{Client, ClientOptions, RETRIES, RegistryError, backoff, check};
use crate::registry::progress::{Progress, ProgressFn};
use crate::store::{Store, StoreError};

/// Push settings.
#[derive(Debug, Clone, Default)]
pub struct PushOptions {
    /// Registry client settings (credentials, insecure registries).
    pub client: ClientOptions,
    /// Blobs larger than this go up in `PATCH` chunks of this size; `None` = always monolithic.
    pub chunk_size: Option<u64>,
}

/// Errors of a push.
#[derive(Debug, thiserror::Error)]
pub enum PushError {
    /// Talking to the registry failed.
    #[error(transparent)]
    Registry(#[from] RegistryError),
    /// Reading from the store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The registry's upload answer lacks a `Location`.
    #[error("registry gave no upload location for {0}")]
    NoLocation(String),
    /// Reading a blob file failed.
    #[error(transparent)]
    Io(#[from] crate::fsio::PathError),
}

impl From<crate::blob::BlobError> for PushError {
    fn from(e: crate::blob::BlobError) -> Self {
        PushError::Store(e.into())
    }
}

fn location(resp: &Response, base: &str, what: &str) -> Result<String, PushError> {
    let loc = resp
        .headers()
        .get(LOCATION)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| PushError::NoLocation(what.to_owned()))?;
    Ok(
        if loc.starts_with("http://") || loc.starts_with("https://") {
            loc.to_owned()
        } else {
            format!("{base}{loc}")
        },
    )
}

fn with_query(url: &str, key: &str, value: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}{key}={value}")
}

impl Store {
    /// Pushes the local image `reference` to its registry and repository. Returns the
    /// manifest digest.
    pub async fn push(
        &self,
        reference: &Reference,
        options: &PushOptions,
        progress: ProgressFn,
    ) -> Result<Digest, PushError> {
        let image = self.resolve(reference)?;
        let client = Client::new(reference.registry(), options.client.clone())?;
        let repo = reference.repository();
        let index = self.inner.metadata.read().map_err(StoreError::from)?;
        // Mount source: the repository the image was pulled from, if on the same registry.
        let mount_from = index
            .images
            .get(&image.manifest_digest)
            .and_then(|r| r.source.clone())
            .and_then(|s| {
                let src = Reference::parse(&s).ok()?;
                (src.registry() == reference.registry() && src.repository() != repo)
                    .then(|| src.repository().to_owned())
            });
        let mut scope = format!("repository:{repo}:pull,push");
        if let Some(from) = &mount_from {
            scope.push_str(&format!(" repository:{from}:pull"));
        }
        let mut blobs: Vec<Descriptor> = image.manifest.layers.clone();
        blobs.push(image.manifest.config.clone());
        for desc in &blobs {
            self.push_blob(
                &client,
                &scope,
                repo,
                desc,
                mount_from.as_deref(),
                options,
                &progress,
            )
            .await?;
        }
        let bytes = self.inner.blobs.read(&image.manifest_digest)?;
        let media_type = image
            .manifest
            .media_type
            .clone()
            .unwrap_or_else(|| OCI_MANIFEST.to_owned());
        let tag = reference.manifest_reference();
        let tail = format!("/v2/{repo}/manifests/{tag}");
        client
            .send_ok(
                &scope,
                &format!("manifest {tag}"),
                Method::PUT,
                |h, base| {
                    h.put(format!("{base}{tail}"))
                        .header(CONTENT_TYPE, &media_type)
                        .body(bytes.clone())
                },
            )
            .await?;
        progress(Progress::ManifestPushed {
            digest: image.manifest_digest.clone(),
        });
        Ok(image.manifest_digest)
    }

    #[allow(clippy::too_many_arguments)]
    async fn push_blob(
        &self,
        client: &Client,
        scope: &str,
        repo: &str,
        desc: &Descriptor,
        mount_from: Option<&str>,
        options: &PushOptions,
        progress: &ProgressFn,
    ) -> Result<(), PushError> {
        let digest = &desc.digest;
        let head_tail = format!("/v2/{repo}/blobs/{digest}");
        let head = client
            .send(scope, |h, base| h.head(format!("{base}{head_tail}")))
            .await?;
        if head.status().is_success() {
            progress(Progress::LayerExists {
                digest: digest.clone(),
            });
            return Ok(());
        }
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self
                .upload_blob(client, scope, repo, desc, mount_from, options, progress)
                .await
            {
                Err(PushError::Registry(e)) if e.is_transient() && attempt < RETRIES => {
                    progress(Progress::LayerRetry {
                        digest: digest.clone(),
                        attempt: attempt + 1,
                        error: e.to_string(),
                    });
                    tokio::time::sleep(backoff(attempt)).await;
                }
                other => return other,
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn upload_blob(
        &self,
        client: &Client,
        scope: &str,
        repo: &str,
        desc: &Descriptor,
        mount_from: Option<&str>,
        options: &PushOptions,
        progress: &ProgressFn,
    ) -> Result<(), PushError> {
        let digest = &desc.digest;
        let what = format!("upload of {digest}");
        let start_tail = match mount_from {
            Some(from) => format!("/v2/{repo}/blobs/uploads/?mount={digest}&from={from}"),
            None => format!("/v2/{repo}/blobs/uploads/"),
        };
        let base_seen = client.base().await?;
        let started = client
            .send_ok(scope, &what, Method::POST, |h, base| {
                h.post(format!("{base}{start_tail}"))
                    .header(CONTENT_LENGTH, 0)
            })
            .await?;
        if started.status() == StatusCode::CREATED
            && let Some(from) = mount_from
        {
            progress(Progress::LayerMounted {
                digest: digest.clone(),
                from: from.to_owned(),
            });
            return Ok(());
        }
        let mut loc = location(&started, &base_seen, &what)?;
        progress(Progress::LayerStarted {
            digest: digest.clone(),
            size: desc.size,
        });
        let path = self.inner.blobs.path(digest);
        let size = self.inner.blobs.size(digest)?;
        match options.chunk_size {
            Some(chunk) if chunk > 0 && size > chunk => {
                let mut file = tokio::fs::File::open(&path)
                    .await
                    .map_err(|e| crate::fsio::path_error("opening", &path, e))?;
                let mut done = 0u64;
                while done < size {
                    let n = chunk.min(size - done) as usize;
                    let mut buf = vec![0u8; n];
                    file.read_exact(&mut buf)
                        .await
                        .map_err(|e| crate::fsio::path_error("reading", &path, e))?;
                    let range = format!("{}-{}", done, done + n as u64 - 1);
                    let target = loc.clone();
                    let resp = client
                        .send(scope, |h, _| {
                            h.patch(&target)
                                .header(CONTENT_TYPE, "application/octet-stream")
                                .header(CONTENT_RANGE, &range)
                                .header(CONTENT_LENGTH, n)
                                .body(buf.clone())
                        })
                        .await?;
                    let resp = check(resp, &what, &Method::PATCH).await?;
                    loc = location(&resp, &base_seen, &what)?;
                    done += n as u64;
                    progress(Progress::LayerBytes {
                        digest: digest.clone(),
                        done,
                        total: size,
                    });
                }
                let target = with_query(&loc, "digest", &digest.to_string());
                let resp = client
                    .send(scope, |h, _| h.put(&target).header(CONTENT_LENGTH, 0))
                    .await?;
                check(resp, &what, &Method::PUT).await?;
            }
            _ => {
                let target = with_query(&loc, "digest", &digest.to_string());
                let resp = client
                    .send(scope, |h, _| {
                        // A fresh file handle per attempt: a body stream can be sent once.
                        let body = match std::fs::File::open(&path) {
                            Ok(f) => reqwest::Body::from(tokio::fs::File::from_std(f)),
                            Err(_) => reqwest::Body::from(Vec::new()),
                        };
                        h.put(&target)
                            .header(CONTENT_TYPE, "application/octet-stream")
                            .header(CONTENT_LENGTH, size)
                            .body(body)
                    })
                    .await?;
                check(resp, &what, &Method::PUT).await?;
                progress(Progress::LayerBytes {
                    digest: digest.clone(),
                    done: size,
                    total: size,
                });
            }
        }
        progress(Progress::LayerDone {
            digest: digest.clone(),
        });
        Ok(())
    }
}
