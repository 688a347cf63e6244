//! Service discovery: the names of attached containers per network ([`Zone`]), the embedded
//! DNS [`Server`], and the content of a container's `/etc/resolv.conf` and `/etc/hosts`
//! ([`files`]).
//!
//! Scoping: a query is answered from the networks the *asking* container is attached to,
//! identified by the query's source address. A name that is not found there is forwarded to the
//! host's resolvers, so containers on two different networks do not see each other's names.

pub mod files;
mod server;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::{Ipv4Net, Ipv6Net};

pub use server::{Server, ServerConfig, ServerError, upstreams_from_resolv_conf};

use crate::state::Network;

/// One container's names on one network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZoneEntry {
    /// The container.
    pub container_id: String,
    /// Lower-case names it answers to (aliases and its id).
    pub names: Vec<String>,
    /// Its IPv4 address on the network.
    pub ip: Ipv4Addr,
    /// Its IPv6 address, if any.
    pub ip6: Option<Ipv6Addr>,
}

/// The names of one network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZoneNetwork {
    /// The network's name.
    pub name: String,
    /// Its IPv4 gateway (where the server listens for this network).
    pub gateway: Ipv4Addr,
    /// Its IPv6 gateway.
    pub gateway6: Option<Ipv6Addr>,
    /// The IPv4 subnet (queries are only served to clients inside berth's subnets).
    pub subnet: Ipv4Net,
    /// The IPv6 subnet.
    pub subnet6: Option<Ipv6Net>,
    /// The attached containers.
    pub entries: Vec<ZoneEntry>,
}

/// A snapshot of every network's names, as published by `Net::zone`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Zone {
    /// The networks.
    pub networks: Vec<ZoneNetwork>,
}

/// Addresses found for a name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Answer {
    /// IPv4 addresses, one per container.
    pub v4: Vec<Ipv4Addr>,
    /// IPv6 addresses.
    pub v6: Vec<Ipv6Addr>,
}

fn normalise(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

impl Zone {
    /// Builds the zone from recorded networks.
    pub fn from_networks<'a>(networks: impl IntoIterator<Item = &'a Network>) -> Zone {
        let networks = networks
            .into_iter()
            .map(|n| ZoneNetwork {
                name: n.name.clone(),
                gateway: n.gateway,
                gateway6: n.ipv6.as_ref().map(|v| v.gateway),
                subnet: n.subnet,
                subnet6: n.ipv6.as_ref().map(|v| v.subnet),
                entries: n
                    .attachments
                    .values()
                    .map(|a| ZoneEntry {
                        container_id: a.container_id.clone(),
                        names: a
                            .aliases
                            .iter()
                            .chain(std::iter::once(&a.container_id))
                            .map(|s| normalise(s))
                            .collect(),
                        ip: a.ip,
                        ip6: a.ip6,
                    })
                    .collect(),
            })
            .collect();
        Zone { networks }
    }

    /// Whether `client` is inside one of berth's subnets. The server answers nobody else, so it
    /// is never an open resolver for hosts that manage to route to a gateway address.
    pub fn serves(&self, client: IpAddr) -> bool {
        self.networks.iter().any(|n| match client {
            IpAddr::V4(ip) => n.subnet.contains(&ip),
            IpAddr::V6(ip) => n.subnet6.is_some_and(|s| s.contains(&ip)),
        })
    }

    /// Every address the server should listen on (the gateways).
    pub fn listen_addresses(&self) -> Vec<IpAddr> {
        self.networks
            .iter()
            .flat_map(|n| std::iter::once(IpAddr::V4(n.gateway)).chain(n.gateway6.map(IpAddr::V6)))
            .collect()
    }

    /// The addresses `name` has on the networks that the container at `client` shares, or
    /// `None` when the name is unknown there (the query should then be forwarded). The
    /// container is found by its address on any network; a query it sends through one network
    /// sees the names of every network it is on (its resolver is one gateway).
    pub fn lookup(&self, client: IpAddr, name: &str) -> Option<Answer> {
        let name = normalise(name);
        let mut answer = Answer::default();
        let mut found = false;
        let asking: Vec<&str> = self
            .networks
            .iter()
            .flat_map(|n| &n.entries)
            .filter(|e| IpAddr::V4(e.ip) == client || e.ip6.map(IpAddr::V6) == Some(client))
            .map(|e| e.container_id.as_str())
            .collect();
        let client_on = |n: &ZoneNetwork| {
            n.entries
                .iter()
                .any(|e| asking.contains(&e.container_id.as_str()))
        };
        for network in self.networks.iter().filter(|n| client_on(n)) {
            for entry in network.entries.iter().filter(|e| e.names.contains(&name)) {
                found = true;
                if !answer.v4.contains(&entry.ip) {
                    answer.v4.push(entry.ip);
                }
                if let Some(ip6) = entry.ip6.filter(|ip| !answer.v6.contains(ip)) {
                    answer.v6.push(ip6);
                }
            }
        }
        found.then_some(answer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(id: &str, names: &[&str], ip: [u8; 4]) -> ZoneEntry {
        ZoneEntry {
            container_id: id.into(),
            names: names.iter().map(|s| s.to_string()).collect(),
            ip: ip.into(),
            ip6: None,
        }
    }

    fn zone() -> Zone {
        Zone {
            networks: vec![
                ZoneNetwork {
                    name: "front".into(),
                    gateway: [10, 0, 0, 1].into(),
                    gateway6: None,
                    subnet: "10.0.0.0/24".parse().unwrap(),
                    subnet6: None,
                    entries: vec![
                        entry("w1", &["web", "w1"], [10, 0, 0, 2]),
                        entry("w2", &["web", "w2"], [10, 0, 0, 3]),
                        entry("p", &["proxy"], [10, 0, 0, 4]),
                    ],
                },
                ZoneNetwork {
                    name: "back".into(),
                    gateway: [10, 0, 1, 1].into(),
                    gateway6: None,
                    subnet: "10.0.1.0/24".parse().unwrap(),
                    subnet6: None,
                    entries: vec![
                        entry("db", &["db"], [10, 0, 1, 2]),
                        entry("p", &["proxy"], [10, 0, 1, 3]),
                    ],
                },
            ],
        }
    }

    #[test]
    fn names_resolve_only_on_shared_networks() {
        let z = zone();
        let web = z.lookup([10, 0, 0, 4].into(), "WEB.").unwrap();
        assert_eq!(
            web.v4,
            vec![Ipv4Addr::new(10, 0, 0, 2), Ipv4Addr::new(10, 0, 0, 3)]
        );
        // The proxy is on both networks: it sees the db.
        assert_eq!(
            z.lookup([10, 0, 1, 3].into(), "db").unwrap().v4,
            vec![Ipv4Addr::new(10, 0, 1, 2)]
        );
        // A web container does not.
        assert_eq!(z.lookup([10, 0, 0, 2].into(), "db"), None);
        assert!(z.serves([10, 0, 1, 200].into()));
        assert!(!z.serves([192, 0, 2, 1].into()));
        assert!(!z.serves("fd00::1".parse().unwrap()));
        // The proxy asking through front sees back's names too (one resolver per container).
        assert_eq!(
            z.lookup([10, 0, 0, 4].into(), "db").unwrap().v4,
            vec![Ipv4Addr::new(10, 0, 1, 2)]
        );
        // An unknown client sees nothing.
        assert_eq!(z.lookup([192, 0, 2, 1].into(), "web"), None);
        // The proxy, asked from back, resolves to its back address only.
        assert_eq!(
            z.lookup([10, 0, 1, 2].into(), "proxy").unwrap().v4,
            vec![Ipv4Addr::new(10, 0, 1, 3)]
        );
        assert_eq!(
            z.listen_addresses(),
            vec![
                IpAddr::V4([10, 0, 0, 1].into()),
                IpAddr::V4([10, 0, 1, 1].into())
            ]
        );
    }
}
