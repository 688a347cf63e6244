//! Service volumes: short syntax (`./src:/app:ro`, `data:/var/lib/x`, `/tmp`) and long
//! syntax, both to [`ServiceVolume`].

use std::fmt;

use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::{Deserialize, Serialize};

use super::forms::label_map;
use super::units::ByteSize;

/// What a service volume mounts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum VolumeType {
    /// A host path.
    Bind,
    /// A named or anonymous volume.
    Volume,
    /// A memory-backed file system.
    Tmpfs,
    /// A Windows named pipe.
    Npipe,
    /// A cluster volume.
    Cluster,
    /// The content of an image.
    Image,
}

/// A mount into a service's containers, in Compose's long syntax.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ServiceVolume {
    /// What is mounted.
    #[serde(rename = "type")]
    pub kind: VolumeType,
    /// Host path (bind), volume name (volume) or image reference (image).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// Path in the container.
    #[serde(default)]
    pub target: String,
    /// Mount read-only.
    #[serde(default, skip_serializing_if = "is_false")]
    pub read_only: bool,
    /// Consistency requirements (macOS only; kept).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consistency: Option<String>,
    /// Bind options.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bind: Option<BindOptions>,
    /// Volume options.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volume: Option<VolumeOptions>,
    /// Tmpfs options.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tmpfs: Option<TmpfsOptions>,
    /// Image options.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<ImageOptions>,
}

pub(crate) fn is_false(b: &bool) -> bool {
    !*b
}

/// Options of a bind mount.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BindOptions {
    /// Mount propagation (`rprivate`, `shared`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub propagation: Option<String>,
    /// Create the host path if it is missing (short syntax does).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub create_host_path: Option<bool>,
    /// Recursive read-only behaviour (`enabled`, `disabled`, `writable`, `readonly`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recursive: Option<String>,
    /// SELinux relabelling: `z` (shared) or `Z` (private).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selinux: Option<String>,
}

/// Options of a volume mount.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct VolumeOptions {
    /// Do not copy the image's content into a new volume.
    #[serde(default, skip_serializing_if = "is_false")]
    pub nocopy: bool,
    /// Mount only this sub-path of the volume.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subpath: Option<String>,
    /// Labels for an anonymous volume.
    #[serde(
        default,
        skip_serializing_if = "IndexMap::is_empty",
        deserialize_with = "label_map"
    )]
    pub labels: IndexMap<String, String>,
}

/// Options of a tmpfs mount.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TmpfsOptions {
    /// Size limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<ByteSize>,
    /// File mode of the mount point.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<u32>,
}

/// Options of an image mount.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ImageOptions {
    /// Mount only this sub-path of the image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subpath: Option<String>,
}

/// One `volumes:` item: short string or long mapping.
pub(crate) struct VolumeItem(pub ServiceVolume);

impl<'de> Deserialize<'de> for VolumeItem {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = VolumeItem;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a `[SOURCE:]TARGET[:MODE]` string or a mapping")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<VolumeItem, E> {
                parse_short(v).map(VolumeItem).map_err(E::custom)
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<VolumeItem, A::Error> {
                ServiceVolume::deserialize(de::value::MapAccessDeserializer::new(map))
                    .map(VolumeItem)
            }
        }
        d.deserialize_any(V)
    }
}

/// Deserializes a service's `volumes` list.
pub fn volumes<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<ServiceVolume>, D::Error> {
    let v: Vec<VolumeItem> = Vec::deserialize(d)?;
    Ok(v.into_iter().map(|i| i.0).collect())
}

fn is_path(source: &str) -> bool {
    source.starts_with('.')
        || source.starts_with('/')
        || source.starts_with('~')
        || source.contains('/')
}

/// Parses `[SOURCE:]TARGET[:MODE]`.
pub fn parse_short(spec: &str) -> Result<ServiceVolume, String> {
    let parts: Vec<&str> = spec.split(':').collect();
    let (source, target, mode) = match parts.as_slice() {
        [t] => (None, *t, None),
        [s, t] => (Some(*s), *t, None),
        [s, t, m] => (Some(*s), *t, Some(*m)),
        _ => return Err(format!("invalid volume `{spec}`: too many `:`")),
    };
    if target.is_empty() {
        return Err(format!("invalid volume `{spec}`: empty target path"));
    }
    let source = source.filter(|s| !s.is_empty());
    let mut v = ServiceVolume {
        kind: VolumeType::Volume,
        source: source.map(str::to_owned),
        target: target.to_owned(),
        read_only: false,
        consistency: None,
        bind: None,
        volume: None,
        tmpfs: None,
        image: None,
    };
    let bind = source.is_some_and(is_path);
    let mut bind_opts = BindOptions {
        create_host_path: Some(true),
        ..BindOptions::default()
    };
    let mut vol_opts = VolumeOptions::default();
    for opt in mode.unwrap_or("").split(',').filter(|o| !o.is_empty()) {
        match opt {
            "ro" => v.read_only = true,
            "rw" => v.read_only = false,
            "z" | "Z" => bind_opts.selinux = Some(opt.to_owned()),
            "nocopy" => vol_opts.nocopy = true,
            "shared" | "rshared" | "slave" | "rslave" | "private" | "rprivate" => {
                bind_opts.propagation = Some(opt.to_owned());
            }
            "cached" | "delegated" | "consistent" => v.consistency = Some(opt.to_owned()),
            _ => return Err(format!("invalid volume `{spec}`: unknown option `{opt}`")),
        }
    }
    if bind {
        v.kind = VolumeType::Bind;
        v.bind = Some(bind_opts);
    } else {
        v.volume = Some(vol_opts);
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_forms() {
        let b = parse_short("./src:/app:ro").unwrap();
        assert_eq!(
            (b.kind, b.source.as_deref(), b.target.as_str(), b.read_only),
            (VolumeType::Bind, Some("./src"), "/app", true)
        );
        assert_eq!(b.bind.unwrap().create_host_path, Some(true));
        let n = parse_short("data:/var/lib/x").unwrap();
        assert_eq!(
            (n.kind, n.source.as_deref()),
            (VolumeType::Volume, Some("data"))
        );
        assert_eq!(n.volume, Some(VolumeOptions::default()));
        let a = parse_short("/tmp").unwrap();
        assert_eq!(
            (a.kind, a.source, a.target.as_str()),
            (VolumeType::Volume, None, "/tmp")
        );
        assert!(parse_short("a:b:c:d").is_err());
        assert!(parse_short("a:/b:bogus").is_err());
    }
}
