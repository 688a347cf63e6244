//! A container's networking: which [`berth_net::Net`] a root uses (link prefix, nftables table
//! and address pool derived from the root so that several roots coexist on one host), the
//! network modes of `--network`, attaching a created container to its networks (`eth0` for
//! the first, `eth1`, … for the others; `network connect`/`disconnect` later), and what its
//! `/etc/hosts`, `/etc/resolv.conf` and `/etc/hostname` say.

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};

use berth_net::{Attachment, Endpoint, Net, NetConfig, NetError, NetworkSpec};
use serde::{Deserialize, Serialize};

use super::{ContainersError, NetworkAttachment};
use crate::events::{Event, EventType};

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
        config.pool = ipnet::Ipv4Net::new(Ipv4Addr::new(10, second, third, 0), 20)
            .expect("20 is a valid IPv4 prefix length");
        config.pool_prefix = 24;
    }
    config
}

/// Attaches the namespace of the container's init (`pid`) to `settings.network` as `ifname`,
/// with the fixed addresses and aliases asked for, creating the default network on first use.
/// The container answers on that network to its name, its short id and its aliases.
pub async fn attach(
    net: &Net,
    settings: &NetworkAttachment,
    id: &str,
    name: &str,
    ifname: &str,
    pid: i32,
) -> Result<Attachment, NetError> {
    let network = settings.network.as_str();
    if network == DEFAULT_NETWORK && net.inspect(network).await.is_err() {
        match net.create_network(NetworkSpec::named(network)).await {
            Ok(_) | Err(NetError::NetworkExists(_)) => {}
            Err(e) => return Err(e),
        }
    }
    let mut endpoint = Endpoint::new(id, PathBuf::from(format!("/proc/{pid}/ns/net")), ifname)
        .alias(name)
        .alias(super::runtime_id(id));
    for alias in &settings.aliases {
        if !endpoint.aliases.contains(alias) {
            endpoint = endpoint.alias(alias.clone());
        }
    }
    endpoint.ip = settings.ipv4_address;
    endpoint.ip6 = settings.ipv6_address;
    net.attach(network, endpoint).await
}

/// Undoes [`attach`] on every network the container is on, and unpublishes its ports; a
/// container that is not attached is fine.
pub async fn release(net: &Net, id: &str) -> Result<(), NetError> {
    net.unpublish(id).await?;
    for network in net.list().await {
        if !network.attachments.contains_key(id) {
            continue;
        }
        match net.detach(&network.name, id).await {
            Ok(()) | Err(NetError::NotAttached { .. } | NetError::NoSuchNetwork(_)) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// The first free `ethN` (N >= 1) of a container, given the interface names it already has.
pub fn next_ifname<'a>(taken: impl IntoIterator<Item = &'a str>) -> String {
    let taken: Vec<&str> = taken.into_iter().collect();
    (1..)
        .map(|n| format!("eth{n}"))
        .find(|name| !taken.contains(&name.as_str()))
        .expect("an unbounded range always has a free name")
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

/// Replaces the `search` and `options` lines of a resolver configuration when the user gave
/// their own.
fn with_search_and_options(resolv: String, search: &[String], options: &[String]) -> String {
    if search.is_empty() && options.is_empty() {
        return resolv;
    }
    let mut out: String = resolv
        .lines()
        .filter(|l| {
            let first = l.split_whitespace().next();
            let replaced = match first {
                Some("search") => !search.is_empty(),
                Some("options") => !options.is_empty(),
                _ => false,
            };
            !replaced
        })
        .flat_map(|l| [l, "\n"])
        .collect();
    out.push_str(&berth_net::dns::files::resolv_conf(&[], search, options));
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

/// Where a container's host files come from, besides its own settings.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EtcSources {
    /// The container's addresses (listed under its hostname in `/etc/hosts`).
    pub addresses: Vec<IpAddr>,
    /// berth's DNS server for the container (the gateway of its first user-defined network);
    /// `None` on the default network, as Docker's default bridge has no name resolution.
    pub embedded_dns: Option<IpAddr>,
    /// The host's `/etc/resolv.conf`.
    pub host_resolv: String,
    /// The host's `/etc/hosts` (used with `--network host`).
    pub host_hosts: String,
}

impl EtcFiles {
    /// What the container of `doc` sees. Name servers: `--dns` when given, else berth's
    /// embedded server on user networks, else the host's (without loopback ones).
    pub fn new(doc: &super::ContainerDoc, from: &EtcSources) -> EtcFiles {
        let extra: Vec<(String, IpAddr)> = doc
            .extra_hosts
            .iter()
            .map(|h| (h.name.clone(), h.ip))
            .collect();
        let host_mode = doc.network == NetworkMode::Host;
        let hosts = if host_mode {
            let mut hosts = from.host_hosts.clone();
            if !hosts.is_empty() && !hosts.ends_with('\n') {
                hosts.push('\n');
            }
            for (name, ip) in &extra {
                hosts.push_str(&format!("{ip}\t{name}\n"));
            }
            hosts
        } else {
            berth_net::dns::files::hosts(&doc.hostname, None, &from.addresses, &extra)
        };
        let files = berth_net::dns::files::resolv_conf;
        let resolv_conf = match (&doc.dns[..], from.embedded_dns) {
            ([], Some(server)) => files(&[server], &doc.dns_search, &doc.dns_options),
            ([], None) => {
                let host = if host_mode {
                    from.host_resolv.clone()
                } else {
                    resolv_conf_from_host(&from.host_resolv)
                };
                with_search_and_options(host, &doc.dns_search, &doc.dns_options)
            }
            (servers, _) => files(servers, &doc.dns_search, &doc.dns_options),
        };
        EtcFiles {
            hosts,
            resolv_conf,
            hostname: format!("{}\n", doc.hostname),
        }
    }
}

/// The networks a container of `doc` is on, first one first, with its settings.
pub fn attachments(doc: &super::ContainerDoc) -> Vec<NetworkAttachment> {
    let NetworkMode::Bridge(first) = &doc.network else {
        return Vec::new();
    };
    std::iter::once(NetworkAttachment {
        network: first.clone(),
        ..doc.network_settings.clone()
    })
    .chain(doc.more_networks.iter().cloned())
    .collect()
}

impl super::Containers {
    /// `berth network create`: a bridge network as `spec` asks (subnets from the root's pool
    /// unless given).
    pub async fn create_network(
        &self,
        spec: NetworkSpec,
    ) -> Result<berth_net::Network, ContainersError> {
        let network = self.net().await?.create_network(spec).await?;
        let _ = self.engine.emit(
            Event::now(EventType::Network, "create", &network.id).with("name", &network.name),
        );
        Ok(network)
    }

    /// `berth network ls`: every network of this root, by name.
    pub async fn networks(&self) -> Result<Vec<berth_net::Network>, ContainersError> {
        Ok(self.net().await?.list().await)
    }

    /// `berth network inspect`.
    pub async fn network(&self, name: &str) -> Result<berth_net::Network, ContainersError> {
        Ok(self.net().await?.inspect(name).await?)
    }

    /// `berth network rm`: refused while containers are attached. Removing the last network
    /// also removes the root's nftables table.
    pub async fn remove_network(&self, name: &str) -> Result<(), ContainersError> {
        let net = self.net().await?;
        let id = net.inspect(name).await?.id;
        net.remove_network(name).await?;
        let _ = self
            .engine
            .emit(Event::now(EventType::Network, "destroy", id).with("name", name));
        Ok(())
    }

    /// `berth network prune`: removes every network no container is attached to, nor
    /// recorded on (a stopped container's networks stay); returns their names.
    pub async fn prune_networks(&self) -> Result<Vec<String>, ContainersError> {
        let docs = self.engine.store().list::<super::ContainerDoc>()?;
        let wanted: Vec<String> = docs
            .iter()
            .flat_map(|(_, d)| attachments(d))
            .map(|a| a.network)
            .collect();
        let net = self.net().await?;
        let mut removed = Vec::new();
        for network in net.list().await {
            if !network.attachments.is_empty() || wanted.contains(&network.name) {
                continue;
            }
            match net.remove_network(&network.name).await {
                Ok(()) => {}
                // Attached to or removed in the meantime: not unused any more.
                Err(NetError::NetworkInUse { .. } | NetError::NoSuchNetwork(_)) => continue,
                Err(e) => return Err(e.into()),
            }
            let _ = self.engine.emit(
                Event::now(EventType::Network, "destroy", &network.id).with("name", &network.name),
            );
            removed.push(network.name);
        }
        Ok(removed)
    }

    /// `berth network connect`: joins a further network, at once when the container runs
    /// (as the next free `ethN`; its attachment is returned), else at its next start;
    /// recorded in its document.
    pub async fn connect(
        &self,
        key: &str,
        settings: NetworkAttachment,
    ) -> Result<Option<Attachment>, ContainersError> {
        let info = self.find(key)?;
        let running = info.is_running();
        let pid = info.state.as_ref().and_then(|s| s.pid);
        let mut doc = info.doc;
        if !matches!(doc.network, NetworkMode::Bridge(_)) {
            return Err(ContainersError::NoBridge {
                container: doc.name,
                mode: doc.network.name().to_owned(),
            });
        }
        if attachments(&doc)
            .iter()
            .any(|a| a.network == settings.network)
        {
            return Err(ContainersError::AlreadyConnected {
                container: doc.name,
                network: settings.network,
            });
        }
        let net = self.net().await?;
        let network = net.inspect(&settings.network).await?;
        let attachment = match (running, pid) {
            (true, Some(pid)) => {
                let all = net.list().await;
                let taken = all
                    .iter()
                    .filter_map(|n| n.attachments.get(&doc.id))
                    .map(|a| a.ifname.as_str());
                let ifname = next_ifname(taken);
                Some(attach(&net, &settings, &doc.id, &doc.name, &ifname, pid).await?)
            }
            _ => None,
        };
        doc.more_networks.push(settings);
        if let Err(e) = self.engine.store().put(&doc.id, &doc) {
            if running {
                let undo = net.detach(&network.name, &doc.id).await;
                if let Err(cleanup) = undo {
                    return Err(ContainersError::Cleanup {
                        cause: Box::new(e.into()),
                        cleanup: Box::new(cleanup.into()),
                    });
                }
            }
            return Err(e.into());
        }
        let _ = self.engine.emit(
            Event::now(EventType::Network, "connect", &network.id)
                .with("name", &network.name)
                .with("container", &doc.id),
        );
        Ok(attachment)
    }

    /// `berth network disconnect`: leaves a network joined with `connect` (or a further
    /// network of its creation); the first network cannot be left.
    pub async fn disconnect(&self, key: &str, network: &str) -> Result<(), ContainersError> {
        let mut doc = self.find(key)?.doc;
        if doc.network == NetworkMode::Bridge(network.to_owned()) {
            return Err(ContainersError::PrimaryNetwork {
                container: doc.name,
                network: network.to_owned(),
            });
        }
        let Some(at) = doc.more_networks.iter().position(|a| a.network == network) else {
            return Err(ContainersError::NotConnected {
                container: doc.name,
                network: network.to_owned(),
            });
        };
        let net = self.net().await?;
        let id = net.inspect(network).await.map(|n| n.id).ok();
        match net.detach(network, &doc.id).await {
            Ok(()) | Err(NetError::NotAttached { .. } | NetError::NoSuchNetwork(_)) => {}
            Err(e) => return Err(e.into()),
        }
        doc.more_networks.remove(at);
        self.engine.store().put(&doc.id, &doc)?;
        let _ = self.engine.emit(
            Event::now(EventType::Network, "disconnect", id.unwrap_or_default())
                .with("name", network)
                .with("container", &doc.id),
        );
        Ok(())
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

    fn doc(network: NetworkMode) -> crate::containers::ContainerDoc {
        crate::containers::ContainerDoc {
            id: "0123456789ab".repeat(5) + "0123",
            name: "web".into(),
            image: "busybox".into(),
            image_id: "sha256:00".into(),
            command: vec!["sh".into()],
            created: "2026-01-01T00:00:00Z".into(),
            hostname: "box".into(),
            network,
            publish: Vec::new(),
            ports: Vec::new(),
            ip: None,
            stop_signal: "SIGTERM".into(),
            auto_remove: false,
            log_path: PathBuf::from("/x.log"),
            labels: Default::default(),
            restart: Default::default(),
            healthcheck: None,
            stop_timeout: None,
            network_settings: NetworkAttachment {
                aliases: vec!["www".into()],
                ..NetworkAttachment::default()
            },
            more_networks: vec![NetworkAttachment {
                network: "back".into(),
                ..NetworkAttachment::default()
            }],
            mounts: Vec::new(),
            dns: Vec::new(),
            dns_search: Vec::new(),
            dns_options: Vec::new(),
            extra_hosts: vec![crate::containers::ExtraHost::parse("db.local:10.9.8.7").unwrap()],
        }
    }

    #[test]
    fn etc_files_use_berths_server_on_user_networks_and_the_hosts_otherwise() {
        let mut d = doc(NetworkMode::Bridge("front".into()));
        let sources = EtcSources {
            addresses: vec!["10.1.0.2".parse().unwrap()],
            embedded_dns: Some("10.1.0.1".parse().unwrap()),
            host_resolv: "nameserver 192.168.1.1\nsearch lan\n".into(),
            host_hosts: String::new(),
        };
        let files = EtcFiles::new(&d, &sources);
        assert_eq!(files.resolv_conf, "nameserver 10.1.0.1\n");
        assert!(
            files.hosts.ends_with("10.1.0.2\tbox\n10.9.8.7\tdb.local\n"),
            "{}",
            files.hosts
        );
        d.dns_search = vec!["corp.test".into()];
        let on_bridge = EtcSources {
            embedded_dns: None,
            ..sources.clone()
        };
        assert_eq!(
            EtcFiles::new(&d, &on_bridge).resolv_conf,
            "nameserver 192.168.1.1\nsearch corp.test\n"
        );
        d.dns = vec!["9.9.9.9".parse().unwrap()];
        assert_eq!(
            EtcFiles::new(&d, &sources).resolv_conf,
            "nameserver 9.9.9.9\nsearch corp.test\n"
        );
        assert_eq!(
            attachments(&d)
                .iter()
                .map(|a| (a.network.as_str(), a.aliases.len()))
                .collect::<Vec<_>>(),
            vec![("front", 1), ("back", 0)]
        );
        assert_eq!(attachments(&doc(NetworkMode::Host)), vec![]);
    }

    #[test]
    fn further_interfaces_take_the_first_free_number() {
        assert_eq!(next_ifname(["eth0"]), "eth1");
        assert_eq!(next_ifname(["eth0", "eth1", "eth3"]), "eth2");
        assert_eq!(next_ifname([]), "eth1");
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
