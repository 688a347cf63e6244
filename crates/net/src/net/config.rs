//! What callers hand to [`Net`](super::Net): its configuration, network specs, endpoints; and
//! the validation of names.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;

use ipnet::{Ipv4Net, Ipv6Net};

/// Longest accepted link-name prefix: leaves a kind letter and four digits within 15 bytes.
pub(super) const MAX_PREFIX: usize = 10;
/// Linux's interface-name limit (IFNAMSIZ - 1).
pub(super) const IFNAMSIZ: usize = 15;

/// Where and how [`Net`](super::Net) keeps its networks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetConfig {
    /// Directory for network definitions (created if missing; must survive reboots).
    pub state_dir: PathBuf,
    /// Directory for runtime state: address leases and published ports (created if missing;
    /// best on tmpfs such as `/run/berth/net`, cleared at boot like the links it describes).
    pub run_dir: PathBuf,
    /// Default IPv4 address pool; subnets are cut from it in `/pool_prefix` pieces.
    pub pool: Ipv4Net,
    /// Prefix length of the subnets taken from `pool`.
    pub pool_prefix: u8,
    /// Default IPv6 pool; `/64`s are cut from it for networks with IPv6.
    pub pool6: Ipv6Net,
    /// Link-name prefix: every bridge and host veth name starts with it.
    pub prefix: String,
    /// Name of berth's nftables table (family `inet`); one per state dir.
    pub nft_table: String,
}

impl NetConfig {
    /// The defaults: run dir `<state_dir>/run`, pool 10.89.0.0/16 in /24s, IPv6 pool
    /// fd89:b347:7e00::/48, prefix `berth`, table `berth`.
    pub fn new(state_dir: impl Into<PathBuf>) -> NetConfig {
        let state_dir = state_dir.into();
        NetConfig {
            run_dir: state_dir.join("run"),
            state_dir,
            pool: Ipv4Net::new(Ipv4Addr::new(10, 89, 0, 0), 16)
                .expect("16 is a valid IPv4 prefix length"),
            pool_prefix: 24,
            pool6: Ipv6Net::new(Ipv6Addr::new(0xfd89, 0xb347, 0x7e00, 0, 0, 0, 0, 0), 48)
                .expect("48 is a valid IPv6 prefix length"),
            prefix: "berth".into(),
            nft_table: "berth".into(),
        }
    }
}

/// What a new network should look like (Compose's `networks:` entry, translated).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NetworkSpec {
    /// Name (unique per state dir).
    pub name: String,
    /// Subnet (`ipam.config[].subnet`); taken from the pool when `None`.
    pub subnet: Option<Ipv4Net>,
    /// Gateway (`ipam.config[].gateway`); the subnet's first address when `None`.
    pub gateway: Option<Ipv4Addr>,
    /// No way out: no masquerade, no default route in containers.
    pub internal: bool,
    /// Give the network an IPv6 subnet too.
    pub enable_ipv6: bool,
    /// IPv6 subnet; a `/64` of the IPv6 pool when `None`.
    pub subnet6: Option<Ipv6Net>,
    /// IPv6 gateway; the subnet's `::1` when `None`.
    pub gateway6: Option<Ipv6Addr>,
    /// MTU (1500 when `None`).
    pub mtu: Option<u32>,
    /// Labels.
    pub labels: BTreeMap<String, String>,
}

impl NetworkSpec {
    /// A spec with defaults for everything but the name.
    pub fn named(name: impl Into<String>) -> NetworkSpec {
        NetworkSpec {
            name: name.into(),
            ..NetworkSpec::default()
        }
    }
}

/// A container's network namespace to attach.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// The container's id (owner of the attachment).
    pub container_id: String,
    /// Path of its network namespace (`/proc/<pid>/ns/net`, `/run/netns/<name>`, a bind mount).
    pub netns_path: PathBuf,
    /// Interface name inside (`eth0`, `eth1`, ...).
    pub ifname: String,
    /// Static IPv4 address (`ipv4_address`).
    pub ip: Option<Ipv4Addr>,
    /// Static IPv6 address (`ipv6_address`).
    pub ip6: Option<Ipv6Addr>,
    /// MAC address; derived from the IPv4 address when `None`.
    pub mac: Option<[u8; 6]>,
    /// DNS names on this network (service name, container name, aliases).
    pub aliases: Vec<String>,
}

impl Endpoint {
    /// An endpoint with dynamic addresses and no aliases.
    pub fn new(
        container_id: impl Into<String>,
        netns_path: impl Into<PathBuf>,
        ifname: impl Into<String>,
    ) -> Endpoint {
        Endpoint {
            container_id: container_id.into(),
            netns_path: netns_path.into(),
            ifname: ifname.into(),
            ip: None,
            ip6: None,
            mac: None,
            aliases: Vec::new(),
        }
    }

    /// Adds a DNS name.
    pub fn alias(mut self, name: impl Into<String>) -> Endpoint {
        self.aliases.push(name.into());
        self
    }
}

pub(super) fn valid_prefix(prefix: &str) -> bool {
    prefix.starts_with("berth")
        && prefix.len() <= MAX_PREFIX
        && prefix.chars().all(|c| c.is_ascii_alphanumeric())
}

pub(super) fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        && name.len() <= 200
}

pub(super) fn valid_ifname(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= IFNAMSIZ
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

/// Parses `<prefix><kind><digits>` back into its number.
pub(super) fn owned_link_number(prefix: &str, kind: char, name: &str) -> Option<u32> {
    let rest = name.strip_prefix(prefix)?.strip_prefix(kind)?;
    if rest.is_empty() || !rest.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    rest.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_prefixes() {
        assert!(valid_prefix("berth"));
        assert!(valid_prefix("berthT3f2a"));
        assert!(!valid_prefix("berthT3f2ab"));
        assert!(!valid_prefix("docker"));
        assert!(!valid_prefix("berth-x"));
        assert_eq!(owned_link_number("berthT1", 'v', "berthT1v12"), Some(12));
        assert_eq!(owned_link_number("berthT1", 'v', "berthT1b2v0"), None);
        assert_eq!(owned_link_number("berthT1", 'b', "berthT1b"), None);
        assert!(valid_name("front_1.x"));
        assert!(!valid_name("../x"));
        assert!(!valid_name(""));
        assert!(valid_ifname("eth0"));
        assert!(!valid_ifname("a-very-long-interface"));
    }
}
