//! `build`: a context path or the long build mapping.

use std::fmt;

use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::{Deserialize, Serialize};

use super::forms::{Text, env_map, label_map};
use super::service_refs::{ServiceFileRef, extra_hosts, file_refs};
use super::service_types::Ulimit;
use super::units::ByteSize;

/// How to build a service's image.
#[derive(Debug, Clone, Default, PartialEq, Serialize, JsonSchema)]
pub struct Build {
    /// Context directory or URL (absolute after loading).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<String>,
    /// Dockerfile, relative to the context (default `Dockerfile`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dockerfile: Option<String>,
    /// Inline Dockerfile.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dockerfile_inline: Option<String>,
    /// Extra privileges the build may use.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub entitlements: Vec<String>,
    /// Build arguments; a bare name takes its value from the environment.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub args: IndexMap<String, Option<String>>,
    /// SSH agent sockets or keys (`default`, `id=path`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ssh: Vec<String>,
    /// Image labels.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub labels: IndexMap<String, String>,
    /// Cache sources.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cache_from: Vec<String>,
    /// Cache destinations.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cache_to: Vec<String>,
    /// Do not use the cache.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub no_cache: Option<bool>,
    /// Named extra contexts.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub additional_contexts: IndexMap<String, String>,
    /// Network for `RUN` steps.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<String>,
    /// Provenance attestation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provenance: Option<String>,
    /// SBOM attestation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sbom: Option<String>,
    /// Always pull base images.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pull: Option<bool>,
    /// Stage to build.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// `/dev/shm` size for `RUN`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shm_size: Option<ByteSize>,
    /// Extra hosts for `RUN`, as `host=ip`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extra_hosts: Vec<String>,
    /// Isolation technology.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub isolation: Option<String>,
    /// Privileged build.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub privileged: Option<bool>,
    /// Build secrets.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secrets: Vec<ServiceFileRef>,
    /// Extra tags.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// Ulimits for `RUN`.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub ulimits: IndexMap<String, Ulimit>,
    /// Target platforms.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub platforms: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LongBuild {
    context: Option<String>,
    dockerfile: Option<String>,
    dockerfile_inline: Option<String>,
    #[serde(default)]
    entitlements: Vec<String>,
    #[serde(default, deserialize_with = "env_map")]
    args: IndexMap<String, Option<String>>,
    #[serde(default, deserialize_with = "ssh")]
    ssh: Vec<String>,
    #[serde(default, deserialize_with = "label_map")]
    labels: IndexMap<String, String>,
    #[serde(default)]
    cache_from: Vec<String>,
    #[serde(default)]
    cache_to: Vec<String>,
    no_cache: Option<bool>,
    #[serde(default, deserialize_with = "label_map")]
    additional_contexts: IndexMap<String, String>,
    network: Option<String>,
    provenance: Option<Text>,
    sbom: Option<Text>,
    pull: Option<bool>,
    target: Option<String>,
    shm_size: Option<ByteSize>,
    #[serde(default, deserialize_with = "extra_hosts")]
    extra_hosts: Vec<String>,
    isolation: Option<String>,
    privileged: Option<bool>,
    #[serde(default, deserialize_with = "file_refs")]
    secrets: Vec<ServiceFileRef>,
    #[serde(default)]
    tags: Vec<String>,
    #[serde(default)]
    ulimits: IndexMap<String, Ulimit>,
    #[serde(default)]
    platforms: Vec<String>,
}

/// `ssh`: a list of `id[=path]` or a mapping of id to path.
fn ssh<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    let m = label_map(d)?;
    Ok(m.into_iter()
        .map(|(k, v)| if v.is_empty() { k } else { format!("{k}={v}") })
        .collect())
}

impl<'de> Deserialize<'de> for Build {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Build;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a context path or a build mapping")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Build, E> {
                Ok(Build {
                    context: Some(v.to_owned()),
                    ..Build::default()
                })
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Build, A::Error> {
                let l = LongBuild::deserialize(de::value::MapAccessDeserializer::new(map))?;
                Ok(Build {
                    context: l.context,
                    dockerfile: l.dockerfile,
                    dockerfile_inline: l.dockerfile_inline,
                    entitlements: l.entitlements,
                    args: l.args,
                    ssh: l.ssh,
                    labels: l.labels,
                    cache_from: l.cache_from,
                    cache_to: l.cache_to,
                    no_cache: l.no_cache,
                    additional_contexts: l.additional_contexts,
                    network: l.network,
                    provenance: l.provenance.map(|t| t.0),
                    sbom: l.sbom.map(|t| t.0),
                    pull: l.pull,
                    target: l.target,
                    shm_size: l.shm_size,
                    extra_hosts: l.extra_hosts,
                    isolation: l.isolation,
                    privileged: l.privileged,
                    secrets: l.secrets,
                    tags: l.tags,
                    ulimits: l.ulimits,
                    platforms: l.platforms,
                })
            }
        }
        d.deserialize_any(V)
    }
}
