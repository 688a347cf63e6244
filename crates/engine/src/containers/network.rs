//! A container's networking: which [`berth_net::Net`] a root uses (link prefix, nftables table
//! and address pool derived from the root so that several roots coexist on one host), the
//! network modes of `--network`, attaching a created container and writing its `/etc/hosts`,
//! `/etc/resolv.conf` and `/etc/hostname`.

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};

use berth_net::{Attachment, Endpoint, Net, NetConfig, NetError, NetworkSpec};
use ipnet::Ipv4Net;
use serde::{Deserialize, Serialize};

/// The root whose network objects keep the plain `berth` names.
pub const DEFAULT_ROOT: &str = "/var/lib/berth";
/// Name of the network containers join when no `--network` is given (Docker's `bridge`).
pub const DEFAULT_NETWORK: &str = "bridge";

/// `--network`: where the container's network namespace comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", tag = "mode", content = "name")]
pub enum NetworkMode {
    /// Its own namespace attached to the named bridge network.
    Bridge(String),
    /// Its own namespace with only `lo`.
    None,
    /// The host's namespace.
    Host,
}

impl NetworkMode {
    /// Parses a `--network` value: `none`, `host`, `bridge` (the default network) or a name.
    pub fn parse(s: &str) -> NetworkMode {
        match s {
            "none" => NetworkMode::None,
            "host" => NetworkMode::Host,
            "" | "default" => NetworkMode::Bridge(DEFAULT_NETWORK.to_owned()),
            name => NetworkMode::Bridge(name.to_owned()),
        }
    }

    /// The name `ps`/`inspect` show.
    pub fn name(&self) -> &str {
        match self {
            NetworkMode::Bridge(n) => n,
            NetworkMode::None => "none",
            NetworkMode::Host => "host",
        }
    }
}

impl Default for NetworkMode {
    fn default() -> Self {
        NetworkMode::Bridge(DEFAULT_NETWORK.to_owned())
    }
}

/// FNV-1a: a stable hash (std's `DefaultHasher` is not guaranteed stable across releases).
fn fnv1a(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0x811c_9dc5u32, |h, b| {
        (h ^ u32::from(*b)).wrapping_mul(0x0100_0193)
    })
}

/// The network configuration of a root. `/var/lib/berth` keeps the plain names (prefix and
/// table `berth`, pool 10.89.0.0/16); any other root gets prefix `berth` + 4 hex digits and
/// table `berth_<8 hex>` of a hash of its path, and a /20 of 10.100.0.0–10.199.255.255 chosen
/// by the same hash, so that parallel roots (tests) neither share links nor subnets.
pub fn net_config(root: &Path, run_dir: &Path) -> NetConfig {
    let mut config = NetConfig::new(root.join("net"));
    config.run_dir = run_dir.join("net");
    if root != Path::new(DEFAULT_ROOT) {
        let h = fnv1a(root.as_os_str().as_encoded_bytes());
        config.prefix = format!("berth{:04x}", h & 0xffff);
        config.nft_table = format!("berth_{h:08x}");
        let second = 100 + ((h >> 16) % 100) as u8;
        let third = (((h >> 24) & 0x0f) as u8) << 4;
        config.pool = Ipv4Net::new(Ipv4Addr::new(10, second, third, 0), 20)
            .expect("20 is a valid IPv4 prefix length");
        config.pool_prefix = 24;
    }
    config
}

/// Attaches the namespace of the container's init (`pid`) to `network` as `eth0`, creating
/// the default network on first use.
pub async fn attach(
    net: &Net,
    network: &str,
    id: &str,
    name: &str,
    pid: i32,
) -> Result<Attachment, NetError> {
    if network == DEFAULT_NETWORK && net.inspect(network).await.is_err() {
        match net.create_network(NetworkSpec::named(network)).await {
            Ok(_) | Err(NetError::NetworkExists(_)) => {}
            Err(e) => return Err(e),
        }
    }
    let endpoint =
        Endpoint::new(id, PathBuf::from(format!("/proc/{pid}/ns/net")), "eth0").alias(name);
    net.attach(network, endpoint).await
}

/// Undoes [`attach`] and every published port; a container that is not attached is fine.
pub async fn release(net: &Net, network: &NetworkMode, id: &str) -> Result<(), NetError> {
    net.unpublish(id).await?;
    if let NetworkMode::Bridge(name) = network {
        match net.detach(name, id).await {
            Ok(()) | Err(NetError::NotAttached { .. } | NetError::NoSuchNetwork(_)) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// The host's resolver configuration without loopback name servers (unreachable from a
/// container's own namespace); Google's servers when nothing is left, as Docker does.
pub fn resolv_conf_from_host(host: &str) -> String {
    let mut out = String::new();
    let mut servers = 0;
    for line in host.lines() {
        let mut words = line.split_whitespace();
        if words.next() == Some("nameserver") {
            match words.next().and_then(|w| w.parse::<IpAddr>().ok()) {
                Some(ip) if !ip.is_loopback() => servers += 1,
                _ => continue,
            }
        }
        out.push_str(line);
        out.push('\n');
    }
    if servers == 0 {
        out.push_str("nameserver 8.8.8.8\nnameserver 8.8.4.4\n");
    }
    out
}

/// The three files berth writes into a container's `/etc`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EtcFiles {
    /// `/etc/hosts`.
    pub hosts: String,
    /// `/etc/resolv.conf`.
    pub resolv_conf: String,
    /// `/etc/hostname`.
    pub hostname: String,
}

impl EtcFiles {
    /// What a container with `hostname` and `addresses` sees; `host_resolv` is the host's
    /// `/etc/resolv.conf`.
    pub fn new(hostname: &str, addresses: &[IpAddr], host_resolv: &str) -> EtcFiles {
        EtcFiles {
            hosts: berth_net::dns::files::hosts(hostname, None, addresses, &[]),
            resolv_conf: resolv_conf_from_host(host_resolv),
            hostname: format!("{hostname}\n"),
        }
    }
}

impl super::Containers {
    /// `berth network create`: a bridge network with a subnet from the root's pool (or the
    /// one given).
    pub async fn create_network(
        &self,
        name: &str,
        subnet: Option<Ipv4Net>,
        internal: bool,
    ) -> Result<berth_net::Network, super::ContainersError> {
        let spec = NetworkSpec {
            subnet,
            internal,
            ..NetworkSpec::named(name)
        };
        Ok(self.net().await?.create_network(spec).await?)
    }

    /// `berth network ls`: every network of this root, by name.
    pub async fn networks(&self) -> Result<Vec<berth_net::Network>, super::ContainersError> {
        Ok(self.net().await?.list().await)
    }

    /// `berth network inspect`.
    pub async fn network(&self, name: &str) -> Result<berth_net::Network, super::ContainersError> {
        Ok(self.net().await?.inspect(name).await?)
    }

    /// `berth network rm`: refused while containers are attached. Removing the last network
    /// also removes the root's nftables table.
    pub async fn remove_network(&self, name: &str) -> Result<(), super::ContainersError> {
        Ok(self.net().await?.remove_network(name).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_root_keeps_plain_names_and_others_get_hashed_ones() {
        let plain = net_config(Path::new(DEFAULT_ROOT), Path::new("/run/berth"));
        assert_eq!(plain.prefix, "berth");
        assert_eq!(plain.nft_table, "berth");
        assert_eq!(plain.run_dir, PathBuf::from("/run/berth/net"));
        let a = net_config(Path::new("/tmp/a/root"), Path::new("/tmp/a/run"));
        let b = net_config(Path::new("/tmp/b/root"), Path::new("/tmp/b/run"));
        assert_eq!(a.prefix.len(), 9);
        assert!(a.prefix.starts_with("berth"));
        assert_ne!(a.prefix, b.prefix);
        assert_ne!(a.nft_table, b.nft_table);
        assert_eq!(a.pool.prefix_len(), 20);
        assert!(a.pool.addr().octets()[1] >= 100 && a.pool.addr().octets()[1] < 200);
        assert_eq!(
            a,
            net_config(Path::new("/tmp/a/root"), Path::new("/tmp/a/run"))
        );
    }

    #[test]
    fn network_modes_parse() {
        assert_eq!(NetworkMode::parse("none"), NetworkMode::None);
        assert_eq!(NetworkMode::parse("host"), NetworkMode::Host);
        assert_eq!(NetworkMode::parse("bridge"), NetworkMode::default());
        assert_eq!(
            NetworkMode::parse("front"),
            NetworkMode::Bridge("front".into())
        );
    }

    #[test]
    fn resolv_conf_drops_loopback_servers() {
        assert_eq!(
            resolv_conf_from_host("nameserver 127.0.0.53\nsearch lan\n"),
            "search lan\nnameserver 8.8.8.8\nnameserver 8.8.4.4\n"
        );
        assert_eq!(
            resolv_conf_from_host("nameserver 192.168.1.1\n"),
            "nameserver 192.168.1.1\n"
        );
    }
}
