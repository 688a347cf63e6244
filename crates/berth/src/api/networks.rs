//! Wire types of `/v1/networks`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// `POST /v1/networks`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct NetworkCreate {
    /// The name.
    pub name: String,
    /// IPv4 subnet in CIDR form (default: the next free one of the root's pool).
    pub subnet: Option<String>,
    /// IPv4 gateway (default: the subnet's first address).
    pub gateway: Option<String>,
    /// No way out: no masquerade and no default route in containers.
    pub internal: bool,
    /// Give the network an IPv6 subnet too.
    pub enable_ipv6: bool,
    /// IPv6 subnet (default: a /64 of the root's IPv6 pool).
    pub subnet6: Option<String>,
    /// MTU of the bridge and its veths (default 1500).
    pub mtu: Option<u32>,
    /// Labels.
    pub labels: BTreeMap<String, String>,
}

/// A network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Network {
    /// Its id (64 hex digits).
    pub id: String,
    /// Its name.
    pub name: String,
    /// The Linux bridge.
    pub bridge: String,
    /// IPv4 subnet (CIDR).
    pub subnet: String,
    /// IPv4 gateway, on the bridge (also where berth's DNS server answers).
    pub gateway: String,
    /// IPv6 subnet, when enabled.
    pub subnet6: Option<String>,
    /// No way out.
    pub internal: bool,
    /// MTU.
    pub mtu: u32,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// Attached containers, by id.
    pub containers: BTreeMap<String, Endpoint>,
}

/// A container on a network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Endpoint {
    /// The container's name (empty when berth no longer knows it).
    pub name: String,
    /// Interface inside the container.
    pub ifname: String,
    /// IPv4 address.
    pub ip: String,
    /// IPv6 address.
    pub ip6: Option<String>,
    /// MAC address.
    pub mac: String,
    /// DNS names on this network.
    pub aliases: Vec<String>,
}

/// `POST /v1/networks/{name}/connect`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct NetworkConnect {
    /// Container name or id.
    pub container: String,
    /// Further DNS names on this network.
    pub aliases: Vec<String>,
    /// A fixed IPv4 address.
    pub ip: Option<String>,
}

/// `POST /v1/networks/{name}/disconnect`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct NetworkDisconnect {
    /// Container name or id.
    pub container: String,
}

/// The answer of `POST /v1/networks/prune`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pruned {
    /// Names of the removed networks.
    pub removed: Vec<String>,
}
