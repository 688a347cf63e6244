//! Manifests, indexes and descriptors in both the OCI and the Docker v2 schema 2 media types.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::digest::Digest;
use crate::platform::Platform;

/// OCI image manifest.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// OCI image index.
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// OCI image config.
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
/// OCI uncompressed layer.
pub const OCI_LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";
/// OCI gzip layer.
pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
/// OCI zstd layer.
pub const OCI_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
/// Docker v2 schema 2 manifest.
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// Docker manifest list.
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// Docker image config.
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
/// Docker gzip layer.
pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
/// Docker v2 schema 1 (signed) manifest, which berth refuses.
pub const DOCKER_SCHEMA1: &str = "application/vnd.docker.distribution.manifest.v1+prettyjws";

/// Every manifest type berth asks registries for, as an `Accept` header value.
pub const ACCEPT_MANIFESTS: &str = "application/vnd.oci.image.index.v1+json, \
application/vnd.docker.distribution.manifest.list.v2+json, \
application/vnd.oci.image.manifest.v1+json, \
application/vnd.docker.distribution.manifest.v2+json";

/// Errors interpreting a manifest document.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// Not valid JSON for the expected shape.
    #[error("invalid manifest JSON")]
    Json(#[source] serde_json::Error),
    /// A media type berth does not handle.
    #[error("unsupported manifest media type {0:?}")]
    Unsupported(String),
    /// No index entry matches the wanted platform.
    #[error("no image for platform {wanted} (available: {available})")]
    NoPlatform {
        /// What was asked for.
        wanted: Platform,
        /// What the index offers, comma separated.
        available: String,
    },
}

/// A content descriptor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    /// Media type of the referenced content.
    pub media_type: String,
    /// Content digest.
    pub digest: Digest,
    /// Size in bytes.
    pub size: u64,
    /// Platform, in index entries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
    /// Annotations.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    /// Alternate download locations (foreign layers).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub urls: Vec<String>,
}

impl Descriptor {
    /// A descriptor with no platform, annotations or URLs.
    pub fn new(media_type: &str, digest: Digest, size: u64) -> Self {
        Descriptor {
            media_type: media_type.to_owned(),
            digest,
            size,
            platform: None,
            annotations: BTreeMap::new(),
            urls: Vec::new(),
        }
    }
}

/// An image manifest (OCI or Docker v2 schema 2: same shape).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    /// Always 2.
    pub schema_version: u32,
    /// The manifest's own media type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    /// The image config.
    pub config: Descriptor,
    /// Layers, bottom-most first.
    #[serde(default)]
    pub layers: Vec<Descriptor>,
    /// Annotations.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// An image index or Docker manifest list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Index {
    /// Always 2.
    pub schema_version: u32,
    /// The index's own media type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    /// One entry per platform-specific manifest.
    pub manifests: Vec<Descriptor>,
    /// Annotations.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// A parsed manifest-ish document.
#[derive(Debug, Clone)]
pub enum Document {
    /// A single-platform image manifest.
    Manifest(Manifest),
    /// A multi-platform index.
    Index(Index),
}

impl Document {
    /// Parses `bytes`, using `content_type` (the HTTP header or descriptor media type) when
    /// known and the document's `mediaType` field or shape otherwise.
    pub fn parse(bytes: &[u8], content_type: Option<&str>) -> Result<Self, ManifestError> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Probe {
            media_type: Option<String>,
            manifests: Option<serde_json::Value>,
            schema_version: Option<u32>,
        }
        let probe: Probe = serde_json::from_slice(bytes).map_err(ManifestError::Json)?;
        let ct = content_type
            .map(|c| c.split(';').next().unwrap_or(c).trim().to_owned())
            .filter(|c| !c.is_empty() && c != "application/json" && c != "text/plain");
        let kind = ct.or(probe.media_type).unwrap_or_else(|| {
            if probe.manifests.is_some() {
                OCI_INDEX.to_owned()
            } else {
                OCI_MANIFEST.to_owned()
            }
        });
        match kind.as_str() {
            OCI_INDEX | DOCKER_LIST => Ok(Document::Index(
                serde_json::from_slice(bytes).map_err(ManifestError::Json)?,
            )),
            OCI_MANIFEST | DOCKER_MANIFEST if probe.schema_version == Some(2) => Ok(
                Document::Manifest(serde_json::from_slice(bytes).map_err(ManifestError::Json)?),
            ),
            other => Err(ManifestError::Unsupported(other.to_owned())),
        }
    }
}

impl Index {
    /// The entry for `platform`, skipping attestation manifests (`unknown/unknown`). An index
    /// whose only entry names no platform (as some tools write) yields that entry.
    pub fn select(&self, platform: &Platform) -> Result<&Descriptor, ManifestError> {
        let found = self
            .manifests
            .iter()
            .find(|d| d.platform.as_ref().is_some_and(|p| platform.matches(p)));
        let lone = match self.manifests.as_slice() {
            [only] if only.platform.is_none() => Some(only),
            _ => None,
        };
        found.or(lone).ok_or_else(|| ManifestError::NoPlatform {
            wanted: platform.clone(),
            available: self
                .manifests
                .iter()
                .filter_map(|d| d.platform.as_ref().map(|p| p.to_string()))
                .collect::<Vec<_>>()
                .join(", "),
        })
    }
}

/// Layer compression, from the media type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// Plain tar.
    None,
    /// gzip.
    Gzip,
    /// zstd.
    Zstd,
}

impl Compression {
    /// Recognises the layer media types berth handles.
    pub fn from_media_type(media_type: &str) -> Option<Self> {
        match media_type {
            OCI_LAYER_TAR | "application/vnd.docker.image.rootfs.diff.tar" => Some(Self::None),
            OCI_LAYER_GZIP | DOCKER_LAYER_GZIP => Some(Self::Gzip),
            OCI_LAYER_ZSTD | "application/vnd.docker.image.rootfs.diff.tar.zstd" => {
                Some(Self::Zstd)
            }
            _ => None,
        }
    }

    /// Recognises compression from the first bytes of a blob.
    pub fn sniff(head: &[u8]) -> Self {
        if head.starts_with(&[0x1f, 0x8b]) {
            Self::Gzip
        } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            Self::Zstd
        } else {
            Self::None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_are_told_apart() {
        let d = format!("sha256:{}", "a".repeat(64));
        let idx = format!(
            r#"{{"schemaVersion":2,"manifests":[{{"mediaType":"{OCI_MANIFEST}","digest":"{d}","size":1,
            "platform":{{"os":"linux","architecture":"arm64"}}}}]}}"#
        );
        let Document::Index(i) = Document::parse(idx.as_bytes(), None).unwrap() else {
            panic!("expected an index")
        };
        assert!(i.select(&Platform::parse("linux/arm64").unwrap()).is_ok());
        let err = i.select(&Platform::default()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "no image for platform linux/amd64 (available: linux/arm64)"
        );
        let m = format!(
            r#"{{"schemaVersion":2,"mediaType":"{DOCKER_MANIFEST}","config":{{"mediaType":"{DOCKER_CONFIG}",
            "digest":"{d}","size":2}},"layers":[]}}"#
        );
        assert!(matches!(
            Document::parse(m.as_bytes(), Some("application/json")),
            Ok(Document::Manifest(_))
        ));
        assert!(matches!(
            Document::parse(b"{\"schemaVersion\":1}", Some(DOCKER_SCHEMA1)),
            Err(ManifestError::Unsupported(_))
        ));
        let lone = format!(
            r#"{{"schemaVersion":2,"manifests":[{{"mediaType":"{OCI_MANIFEST}","digest":"{d}","size":1}}]}}"#
        );
        let Document::Index(i) = Document::parse(lone.as_bytes(), None).unwrap() else {
            panic!("expected an index")
        };
        assert_eq!(
            i.select(&Platform::default()).unwrap().digest.to_string(),
            d
        );
    }
}
