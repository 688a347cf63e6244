//! Top-level resources: networks, volumes, configs, secrets and models.

use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::forms::label_map;

/// A network of the project.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Network {
    /// Actual name (default `<project>_<key>`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Driver (`bridge`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub driver: Option<String>,
    /// Driver options.
    #[serde(
        default,
        skip_serializing_if = "IndexMap::is_empty",
        deserialize_with = "label_map"
    )]
    pub driver_opts: IndexMap<String, String>,
    /// Address management.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipam: Option<Ipam>,
    /// Created outside the project; never created or removed by berth.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external: Option<bool>,
    /// No external connectivity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub internal: Option<bool>,
    /// IPv4 enabled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enable_ipv4: Option<bool>,
    /// IPv6 enabled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enable_ipv6: Option<bool>,
    /// Standalone containers may attach.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attachable: Option<bool>,
    /// Labels.
    #[serde(
        default,
        skip_serializing_if = "IndexMap::is_empty",
        deserialize_with = "label_map"
    )]
    pub labels: IndexMap<String, String>,
    /// `x-*` extension fields.
    #[serde(flatten, default, skip_serializing_if = "IndexMap::is_empty")]
    pub extensions: IndexMap<String, serde_json::Value>,
}

/// IP address management of a network.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Ipam {
    /// IPAM driver.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub driver: Option<String>,
    /// Address pools.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub config: Vec<IpamPool>,
    /// Driver options.
    #[serde(
        default,
        skip_serializing_if = "IndexMap::is_empty",
        deserialize_with = "label_map"
    )]
    pub options: IndexMap<String, String>,
}

/// One address pool.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct IpamPool {
    /// Subnet in CIDR notation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subnet: Option<String>,
    /// Range to allocate from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_range: Option<String>,
    /// Gateway address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<String>,
    /// Reserved addresses.
    #[serde(
        default,
        skip_serializing_if = "IndexMap::is_empty",
        deserialize_with = "label_map"
    )]
    pub aux_addresses: IndexMap<String, String>,
}

/// A named volume of the project.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Volume {
    /// Actual name (default `<project>_<key>`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Driver (`local`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub driver: Option<String>,
    /// Driver options.
    #[serde(
        default,
        skip_serializing_if = "IndexMap::is_empty",
        deserialize_with = "label_map"
    )]
    pub driver_opts: IndexMap<String, String>,
    /// Created outside the project.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external: Option<bool>,
    /// Labels.
    #[serde(
        default,
        skip_serializing_if = "IndexMap::is_empty",
        deserialize_with = "label_map"
    )]
    pub labels: IndexMap<String, String>,
    /// `x-*` extension fields.
    #[serde(flatten, default, skip_serializing_if = "IndexMap::is_empty")]
    pub extensions: IndexMap<String, serde_json::Value>,
}

/// A config or a secret: content from a file, the environment or inline.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct FileObject {
    /// Actual name (default `<project>_<key>`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Inline content (configs only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    /// Content from this environment variable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
    /// Content from this file (absolute after loading).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// Created outside the project.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external: Option<bool>,
    /// Labels.
    #[serde(
        default,
        skip_serializing_if = "IndexMap::is_empty",
        deserialize_with = "label_map"
    )]
    pub labels: IndexMap<String, String>,
    /// Secret driver.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub driver: Option<String>,
    /// Secret driver options.
    #[serde(
        default,
        skip_serializing_if = "IndexMap::is_empty",
        deserialize_with = "label_map"
    )]
    pub driver_opts: IndexMap<String, String>,
    /// Template driver.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template_driver: Option<String>,
    /// `x-*` extension fields.
    #[serde(flatten, default, skip_serializing_if = "IndexMap::is_empty")]
    pub extensions: IndexMap<String, serde_json::Value>,
}

/// An AI model definition (top-level `models`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Model {
    /// Custom name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Model reference.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Context window size.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context_size: Option<u64>,
    /// Runtime flags.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub runtime_flags: Vec<String>,
}
