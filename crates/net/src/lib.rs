//! Bridge networks through netlink, IP address management, NAT and published ports, and the
//! embedded DNS server.
//!
//! The entry point is [`Net`]: one per berth root (state directory). It creates Linux bridges
//! with subnets from an address pool, attaches network namespaces to them with veth pairs,
//! publishes container ports through berth's own nftables table, and exposes the names of the
//! attached containers to [`dns::Server`].
//!
//! Lifecycle in a daemon: [`Net::open`] (changes nothing on the host), then
//! [`Net::cleanup_orphans`] with the set of containers still alive (removes what a crash left),
//! then [`Net::sync_firewall`] (rewrites berth's nftables table, and its rules in Docker's
//! `DOCKER-USER` chain if Docker runs), then [`dns::Server::spawn`] on [`Net::zone`].
//! Containers write [`dns::files::resolv_conf`] (nameserver: their network's gateway) and
//! [`dns::files::hosts`].
//!
//! Host-wide settings berth changes: `net.ipv4.ip_forward=1` when a non-internal network is
//! created (as Docker does), `net.ipv6.conf.all.forwarding=1` for networks with IPv6; per
//! bridge: `route_localnet=1` (published ports on 127.0.0.1). Everything else is in objects
//! named after the prefix (links) or the table name (nftables), or tagged with it (DOCKER-USER).
//!
//! ```no_run
//! # async fn demo() -> Result<(), berth_net::NetError> {
//! use berth_net::{Endpoint, Net, NetConfig, NetworkSpec};
//! let net = Net::open(NetConfig::new("/var/lib/berth/net")).await?;
//! let network = net.create_network(NetworkSpec::named("front")).await?;
//! let attachment = net
//!     .attach(&network.name, Endpoint::new("c1", "/proc/1234/ns/net", "eth0").alias("web"))
//!     .await?;
//! println!("c1 is {} on {}", attachment.ip, network.bridge);
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]

pub mod coexist;
pub mod dns;
pub mod ipam;
pub mod link;
pub mod nat;
mod net;
pub mod netns;
pub mod ports;
pub mod state;

pub use net::{Endpoint, Net, NetConfig, NetError, NetworkSpec};
pub use ports::{PortMapping, PortRange, Protocol};
pub use state::{Attachment, Network, Published};

#[cfg(test)]
mod tests {
    /// The daemon shares one `Net` and one DNS server between tasks (`Arc<Net>`): this fails to
    /// compile if either stops being `Send + Sync`.
    #[test]
    fn net_and_dns_server_can_be_shared_between_tasks() {
        fn shareable<T: Send + Sync>() {}
        shareable::<crate::Net>();
        shareable::<crate::dns::Server>();
    }
}
