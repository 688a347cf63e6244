//! [`Net`]: networks, attachments and published ports of one berth root.
//!
//! Every operation decides first (pure `ipam` / `ports` functions over the recorded state),
//! records the decision (crash-safe `state`), then acts (netlink, nft). A failed action is
//! undone before the error is returned; when the undo fails too, both errors are reported.
//!
//! Files: `config` (what callers pass in), `error`, `plan` (choosing subnets and link names),
//! `publish` (published ports); networks, attachments and recovery are here.

mod config;
mod error;
mod plan;
mod publish;

use std::collections::{BTreeMap, BTreeSet};
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::Path;
use std::sync::Arc;

use rtnetlink::Handle;
use tokio::sync::{Mutex, watch};

pub use config::{Endpoint, NetConfig, NetworkSpec};
pub use error::NetError;

use crate::dns::Zone;
use crate::ipam;
use crate::link::{self, BridgeSpec, ContainerSide, LinkError};
use crate::nat;
use crate::netns;
use crate::state::{Attachment, Network, Published, Store};
use config::{owned_link_number, valid_ifname, valid_name, valid_prefix};
use error::with_cleanup;

struct Inner {
    networks: BTreeMap<String, Network>,
    published: Vec<Published>,
}

/// The network layer of one berth root. Cheap operations are serialised by an internal lock;
/// the state directory is locked against other processes for the lifetime of the value.
pub struct Net {
    config: NetConfig,
    handle: Handle,
    store: Store,
    inner: Mutex<Inner>,
    zone: watch::Sender<Arc<Zone>>,
}

impl std::fmt::Debug for Net {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Net")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Net {
    /// Opens (creating) the state dir, takes its lock and loads the recorded networks. Nothing
    /// on the host is changed; call [`Net::cleanup_orphans`] after a crash.
    pub async fn open(config: NetConfig) -> Result<Net, NetError> {
        if !valid_prefix(&config.prefix) {
            return Err(NetError::InvalidPrefix(config.prefix));
        }
        if config.pool_prefix < config.pool.prefix_len() || config.pool_prefix > 30 {
            return Err(NetError::InvalidPool {
                pool: config.pool.to_string(),
                prefix: config.pool_prefix,
            });
        }
        let store = Store::open(&config.state_dir, &config.run_dir)?;
        let networks = store.load_networks()?;
        let published = store.load_ports()?;
        let handle = link::connect()?;
        let zone = watch::Sender::new(Arc::new(Zone::from_networks(networks.values())));
        Ok(Net {
            config,
            handle,
            store,
            inner: Mutex::new(Inner {
                networks,
                published,
            }),
            zone,
        })
    }

    /// The configuration this `Net` was opened with.
    pub fn config(&self) -> &NetConfig {
        &self.config
    }

    /// A receiver of the current DNS zone, updated on every change (feed it to [`crate::dns::Server`]).
    pub fn zone(&self) -> watch::Receiver<Arc<Zone>> {
        self.zone.subscribe()
    }

    /// Every network, by name.
    pub async fn list(&self) -> Vec<Network> {
        self.inner.lock().await.networks.values().cloned().collect()
    }

    /// One network.
    pub async fn inspect(&self, name: &str) -> Result<Network, NetError> {
        self.inner
            .lock()
            .await
            .networks
            .get(name)
            .cloned()
            .ok_or_else(|| NetError::NoSuchNetwork(name.into()))
    }

    /// Creates a network: a bridge with the gateway address, its firewall rules, its state file.
    pub async fn create_network(&self, spec: NetworkSpec) -> Result<Network, NetError> {
        if !valid_name(&spec.name) {
            return Err(NetError::InvalidName(spec.name));
        }
        let mut inner = self.inner.lock().await;
        if inner.networks.contains_key(&spec.name) {
            return Err(NetError::NetworkExists(spec.name));
        }
        let network = self.plan_network(&inner, &spec).await?;
        if !network.internal {
            link::sysctl("/proc/sys/net/ipv4/ip_forward", "1")?;
            if network.ipv6.is_some() {
                link::sysctl("/proc/sys/net/ipv6/conf/all/forwarding", "1")?;
            }
        }
        let bridge = BridgeSpec {
            name: network.bridge.clone(),
            mtu: network.mtu,
            gateway: (network.gateway, network.subnet.prefix_len()),
            gateway6: network
                .ipv6
                .as_ref()
                .map(|v6| (v6.gateway, v6.subnet.prefix_len())),
        };
        if let Err(e) = link::create_bridge(&self.handle, &bridge).await {
            let undo = link::delete(&self.handle, &bridge.name)
                .await
                .map(drop)
                .map_err(NetError::from);
            return Err(with_cleanup(e.into(), undo));
        }
        inner.networks.insert(network.name.clone(), network.clone());
        let result = match self.store.save_network(&network) {
            Ok(()) => self.sync_firewalls(&inner).await,
            Err(e) => Err(e.into()),
        };
        if let Err(e) = result {
            inner.networks.remove(&network.name);
            let undo = async {
                self.store.delete_network(&network.name)?;
                link::delete(&self.handle, &network.bridge).await?;
                self.sync_firewalls(&inner).await
            }
            .await;
            return Err(with_cleanup(e, undo));
        }
        self.publish_zone(&inner);
        Ok(network)
    }

    /// Removes every network without containers (`network prune`); returns their names.
    pub async fn prune(&self) -> Result<Vec<String>, NetError> {
        let unused: Vec<String> = {
            let inner = self.inner.lock().await;
            inner
                .networks
                .values()
                .filter(|n| n.attachments.is_empty())
                .map(|n| n.name.clone())
                .collect()
        };
        let mut removed = Vec::new();
        for name in unused {
            match self.remove_network(&name).await {
                Ok(()) => removed.push(name),
                // Attached to or removed in the meantime: not unused any more.
                Err(NetError::NetworkInUse { .. } | NetError::NoSuchNetwork(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(removed)
    }

    /// Removes a network with no containers: its bridge, firewall rules and state file.
    pub async fn remove_network(&self, name: &str) -> Result<(), NetError> {
        let mut inner = self.inner.lock().await;
        let network = inner
            .networks
            .get(name)
            .ok_or_else(|| NetError::NoSuchNetwork(name.into()))?;
        if !network.attachments.is_empty() {
            return Err(NetError::NetworkInUse {
                name: name.into(),
                containers: network.attachments.keys().cloned().collect(),
            });
        }
        let bridge = network.bridge.clone();
        link::delete(&self.handle, &bridge).await?;
        inner.networks.remove(name);
        self.store.delete_network(name)?;
        self.sync_firewalls(&inner).await?;
        self.publish_zone(&inner);
        Ok(())
    }

    /// Attaches a container's network namespace to `network`: a veth pair on the bridge, the
    /// inner end renamed to `endpoint.ifname` with its address, MAC, MTU and default route.
    pub async fn attach(&self, network: &str, endpoint: Endpoint) -> Result<Attachment, NetError> {
        if !valid_ifname(&endpoint.ifname) {
            return Err(NetError::InvalidIfname(endpoint.ifname));
        }
        // The lock is held to choose names and addresses and record them, not while the
        // links are made (milliseconds of netlink): attachments of several containers are
        // wired at once. The recorded lease keeps the names and addresses taken meanwhile.
        let mut inner = self.inner.lock().await;
        let used_veths: BTreeSet<u32> = inner
            .networks
            .values()
            .flat_map(|n| n.attachments.values())
            .filter_map(|a| owned_link_number(&self.config.prefix, 'v', &a.host_veth))
            .collect();
        let host_veth = self.link_name('v', &used_veths)?;
        let net = inner
            .networks
            .get_mut(network)
            .ok_or_else(|| NetError::NoSuchNetwork(network.into()))?;
        if net.attachments.contains_key(&endpoint.container_id) {
            return Err(NetError::AlreadyAttached {
                container: endpoint.container_id,
                network: network.into(),
            });
        }
        let used4: BTreeSet<Ipv4Addr> = net.attachments.values().map(|a| a.ip).collect();
        let ip = ipam::allocate4(&net.name, net.subnet, net.gateway, &used4, endpoint.ip)?;
        let ip6 = match (&net.ipv6, endpoint.ip6) {
            (Some(v6), requested) => {
                let used6: BTreeSet<Ipv6Addr> =
                    net.attachments.values().filter_map(|a| a.ip6).collect();
                Some(ipam::allocate6(
                    &net.name, v6.subnet, v6.gateway, &used6, requested,
                )?)
            }
            (None, Some(_)) => return Err(NetError::NoIpv6(net.name.clone())),
            (None, None) => None,
        };
        let mac = endpoint.mac.unwrap_or_else(|| ipam::mac_for(ip));
        let attachment = Attachment {
            container_id: endpoint.container_id.clone(),
            network: net.name.clone(),
            ifname: endpoint.ifname.clone(),
            host_veth: host_veth.clone(),
            ip,
            prefix_len: net.subnet.prefix_len(),
            ip6,
            mac: ipam::format_mac(&mac),
            gateway: (!net.internal).then_some(net.gateway),
            gateway6: net
                .ipv6
                .as_ref()
                .filter(|_| !net.internal)
                .map(|v| v.gateway),
            aliases: endpoint.aliases.clone(),
            netns_path: endpoint.netns_path.clone(),
        };
        // Reserve first: a crash from here on leaves a recorded lease, never a double one.
        net.attachments
            .insert(attachment.container_id.clone(), attachment.clone());
        let snapshot = net.clone();
        self.store.save_leases(&snapshot)?;
        let side = ContainerSide {
            ifname: endpoint.ifname.clone(),
            ip: (ip, snapshot.subnet.prefix_len()),
            ip6: ip6.zip(snapshot.ipv6.as_ref().map(|v| v.subnet.prefix_len())),
            gateway: attachment.gateway,
            gateway6: attachment.gateway6,
        };
        drop(inner);
        if let Err(e) = self
            .wire(&snapshot, &host_veth, mac, &endpoint.netns_path, side)
            .await
        {
            let undo = async {
                // Deleting the host end removes the container end too.
                link::delete(&self.handle, &host_veth).await?;
                let mut inner = self.inner.lock().await;
                if let Some(n) = inner.networks.get_mut(network) {
                    n.attachments.remove(&endpoint.container_id);
                    self.store.save_leases(n)?;
                }
                Ok(())
            }
            .await;
            return Err(with_cleanup(e, undo));
        }
        self.publish_zone(&*self.inner.lock().await);
        Ok(attachment)
    }

    async fn wire(
        &self,
        network: &Network,
        host_veth: &str,
        mac: [u8; 6],
        netns_path: &Path,
        side: ContainerSide,
    ) -> Result<(), NetError> {
        let ns = netns::open(netns_path)?;
        let bridge_index = link::index(&self.handle, &network.bridge)
            .await?
            .ok_or_else(|| LinkError::NotFound(network.bridge.clone()))?;
        link::create_veth(
            &self.handle,
            host_veth,
            &side.ifname,
            mac,
            network.mtu,
            bridge_index,
            &ns,
        )
        .await?;
        netns::run_in(netns_path, move || link::configure_container_side(side)).await??;
        // The bridge forwards through the port once the kernel has seen its carrier come up.
        if let Some(idx) = link::index(&self.handle, host_veth).await? {
            link::wait_oper_up(&self.handle, idx).await?;
        }
        Ok(())
    }

    /// Detaches a container from a network: removes its veth pair, releases its addresses and
    /// unpublishes the ports that pointed at this attachment.
    pub async fn detach(&self, network: &str, container_id: &str) -> Result<(), NetError> {
        let inner = self.inner.lock().await;
        let net = inner
            .networks
            .get(network)
            .ok_or_else(|| NetError::NoSuchNetwork(network.into()))?;
        let attachment =
            net.attachments
                .get(container_id)
                .cloned()
                .ok_or_else(|| NetError::NotAttached {
                    container: container_id.into(),
                    network: network.into(),
                })?;
        // Deleting a veth waits for the kernel (milliseconds): without the lock, so that
        // several containers are detached at once. The recorded attachment keeps its names
        // and addresses taken until it is removed below.
        drop(inner);
        link::delete(&self.handle, &attachment.host_veth).await?;
        let mut inner = self.inner.lock().await;
        let before = inner.published.len();
        inner
            .published
            .retain(|p| !(p.container_id == container_id && p.container_ip == attachment.ip));
        if inner.published.len() != before {
            self.store.save_ports(&inner.published)?;
            self.apply_firewall(&inner).await?;
        }
        if let Some(net) = inner.networks.get_mut(network) {
            net.attachments.remove(container_id);
            self.store.save_leases(net)?;
        }
        self.publish_zone(&inner);
        Ok(())
    }

    /// After a crash: removes attachments and published ports of containers for which `owned`
    /// answers false, and every link carrying this root's prefix that the state does not know;
    /// then rewrites the firewall table. Returns the removed link names.
    pub async fn cleanup_orphans(
        &self,
        owned: &dyn Fn(&str) -> bool,
    ) -> Result<Vec<String>, NetError> {
        let mut inner = self.inner.lock().await;
        let mut removed = Vec::new();
        inner.published.retain(|p| owned(&p.container_id));
        self.store.save_ports(&inner.published)?;
        for net in inner.networks.values_mut() {
            let gone: Vec<String> = net
                .attachments
                .keys()
                .filter(|c| !owned(c))
                .cloned()
                .collect();
            if gone.is_empty() {
                continue;
            }
            for c in &gone {
                if let Some(a) = net.attachments.remove(c)
                    && link::delete(&self.handle, &a.host_veth).await?
                {
                    removed.push(a.host_veth);
                }
            }
            self.store.save_leases(net)?;
        }
        let known: BTreeSet<&str> = inner
            .networks
            .values()
            .flat_map(|n| {
                std::iter::once(n.bridge.as_str())
                    .chain(n.attachments.values().map(|a| a.host_veth.as_str()))
            })
            .collect();
        let prefix = &self.config.prefix;
        for name in link::names(&self.handle).await? {
            let ours = ['b', 'v']
                .iter()
                .any(|k| owned_link_number(prefix, *k, &name).is_some());
            if ours && !known.contains(name.as_str()) && link::delete(&self.handle, &name).await? {
                removed.push(name);
            }
        }
        self.apply_firewall(&inner).await?;
        self.sync_docker_user(&inner).await?;
        self.publish_zone(&inner);
        Ok(removed)
    }

    /// Rewrites berth's nftables table and its rules in Docker's `DOCKER-USER` chain from the
    /// state (call at daemon start, and when Docker was started after berth).
    pub async fn sync_firewall(&self) -> Result<(), NetError> {
        let inner = self.inner.lock().await;
        self.sync_firewalls(&inner).await
    }

    /// Berth's own table and Docker's `DOCKER-USER` rules, both at once: they are separate
    /// tables, and each update starts a program (`nft`, `iptables`), which costs milliseconds.
    async fn sync_firewalls(&self, inner: &Inner) -> Result<(), NetError> {
        let (table, docker) =
            futures::join!(self.apply_firewall(inner), self.sync_docker_user(inner));
        table.and(docker)
    }

    async fn sync_docker_user(&self, inner: &Inner) -> Result<(), NetError> {
        let bridges: Vec<String> = inner.networks.values().map(|n| n.bridge.clone()).collect();
        crate::coexist::sync(&self.config.nft_table, &bridges).await?;
        Ok(())
    }

    async fn apply_firewall(&self, inner: &Inner) -> Result<(), NetError> {
        let networks: Vec<&Network> = inner.networks.values().collect();
        let script = nat::render(&self.config.nft_table, &networks, &inner.published);
        nat::apply(&self.config.nft_table, &script).await?;
        Ok(())
    }

    fn publish_zone(&self, inner: &Inner) {
        self.zone
            .send_replace(Arc::new(Zone::from_networks(inner.networks.values())));
    }
}
