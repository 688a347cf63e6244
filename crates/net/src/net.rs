//! [`Net`]: networks, attachments and published ports of one berth root.
//!
//! Every operation decides first (pure `ipam` / `ports` functions over the recorded state),
//! records the decision (crash-safe `state`), then acts (netlink, nft). A failed action is
//! undone before the error is returned; when the undo fails too, both errors are reported.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use ipnet::{Ipv4Net, Ipv6Net};
use rtnetlink::Handle;
use tokio::sync::{Mutex, watch};

use crate::dns::Zone;
use crate::ipam::{self, IpamError};
use crate::link::{self, BridgeSpec, ContainerSide, LinkError};
use crate::nat::{self, NatError};
use crate::netns::{self, NetnsError};
use crate::ports::{self, BindProbe, PortError, PortMapping};
use crate::state::{Attachment, Ipv6Config, Network, Published, StateError, Store};

/// Longest accepted link-name prefix: leaves a kind letter and four digits within 15 bytes.
const MAX_PREFIX: usize = 10;
/// Linux's interface-name limit (IFNAMSIZ - 1).
const IFNAMSIZ: usize = 15;

/// Errors of [`Net`].
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    /// Reading or writing the state failed.
    #[error(transparent)]
    State(#[from] StateError),
    /// Address management refused.
    #[error(transparent)]
    Ipam(#[from] IpamError),
    /// A netlink operation failed.
    #[error(transparent)]
    Link(#[from] LinkError),
    /// Docker's DOCKER-USER chain could not be adjusted.
    #[error(transparent)]
    Coexist(#[from] crate::coexist::CoexistError),
    /// Entering a container's namespace failed.
    #[error(transparent)]
    Netns(#[from] NetnsError),
    /// The firewall could not be updated.
    #[error(transparent)]
    Nat(#[from] NatError),
    /// A port mapping cannot be honoured.
    #[error(transparent)]
    Port(#[from] PortError),
    /// The link-name prefix is unusable.
    #[error(
        "link prefix {0:?} must start with \"berth\", be at most {MAX_PREFIX} characters and use only ASCII letters and digits"
    )]
    InvalidPrefix(String),
    /// The network name is unusable.
    #[error(
        "invalid network name {0:?}: use letters, digits, '_', '-' and '.', starting with a letter or digit"
    )]
    InvalidName(String),
    /// A network of that name exists.
    #[error("network {0} already exists")]
    NetworkExists(String),
    /// No network of that name.
    #[error("network {0} not found")]
    NoSuchNetwork(String),
    /// The network still has containers.
    #[error("network {name} has containers attached: {}", .containers.join(", "))]
    NetworkInUse {
        /// The network.
        name: String,
        /// The attached containers.
        containers: Vec<String>,
    },
    /// The container is attached already.
    #[error("container {container} is already attached to network {network}")]
    AlreadyAttached {
        /// The container.
        container: String,
        /// The network.
        network: String,
    },
    /// The container is not attached.
    #[error("container {container} is not attached to network {network}")]
    NotAttached {
        /// The container.
        container: String,
        /// The network.
        network: String,
    },
    /// The interface name is unusable inside the container.
    #[error("invalid interface name {0:?}")]
    InvalidIfname(String),
    /// The gateway lies outside the subnet.
    #[error("gateway {gateway} is not in subnet {subnet}")]
    GatewayOutsideSubnet {
        /// The gateway.
        gateway: String,
        /// The subnet.
        subnet: String,
    },
    /// IPv6 settings were given without `enable_ipv6`, or an IPv6 address on an IPv4-only network.
    #[error("network {0} does not have IPv6 enabled")]
    NoIpv6(String),
    /// The container has no attachment on a network with a way out, so nothing can be published.
    #[error("container {0} is not attached to any non-internal network; cannot publish ports")]
    NothingToPublishOn(String),
    /// No free link name is left for the prefix.
    #[error("no free link name left for prefix {0}")]
    NamesExhausted(String),
    /// Reading random bytes for an id failed.
    #[error("read /dev/urandom")]
    Random(#[source] std::io::Error),
    /// An operation failed and undoing its partial work failed too.
    #[error("{cause} (and cleaning up failed: {cleanup})")]
    CleanupFailed {
        /// The original failure.
        #[source]
        cause: Box<NetError>,
        /// The failure of the undo.
        cleanup: Box<NetError>,
    },
}

/// Where and how [`Net`] keeps its networks.
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

fn valid_prefix(prefix: &str) -> bool {
    prefix.starts_with("berth")
        && prefix.len() <= MAX_PREFIX
        && prefix.chars().all(|c| c.is_ascii_alphanumeric())
}

fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        && name.len() <= 200
}

fn valid_ifname(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= IFNAMSIZ
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

/// Parses `<prefix><kind><digits>` back into its number.
fn owned_link_number(prefix: &str, kind: char, name: &str) -> Option<u32> {
    let rest = name.strip_prefix(prefix)?.strip_prefix(kind)?;
    if rest.is_empty() || !rest.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    rest.parse().ok()
}

fn random_id() -> Result<String, NetError> {
    let mut bytes = [0u8; 32];
    let mut f = std::fs::File::open("/dev/urandom").map_err(NetError::Random)?;
    std::io::Read::read_exact(&mut f, &mut bytes).map_err(NetError::Random)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// Joins an operation's error with the error of its undo.
fn with_cleanup(cause: NetError, cleanup: Result<(), NetError>) -> NetError {
    match cleanup {
        Ok(()) => cause,
        Err(c) => NetError::CleanupFailed {
            cause: Box::new(cause),
            cleanup: Box::new(c),
        },
    }
}

impl Net {
    /// Opens (creating) the state dir, takes its lock and loads the recorded networks. Nothing
    /// on the host is changed; call [`Net::cleanup_orphans`] after a crash.
    pub async fn open(config: NetConfig) -> Result<Net, NetError> {
        if !valid_prefix(&config.prefix) {
            return Err(NetError::InvalidPrefix(config.prefix));
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
            Ok(()) => match self.apply_firewall(&inner).await {
                Ok(()) => self.sync_docker_user(&inner).await,
                Err(e) => Err(e),
            },
            Err(e) => Err(e.into()),
        };
        if let Err(e) = result {
            inner.networks.remove(&network.name);
            let undo = async {
                self.store.delete_network(&network.name)?;
                link::delete(&self.handle, &network.bridge).await?;
                self.apply_firewall(&inner).await?;
                self.sync_docker_user(&inner).await
            }
            .await;
            return Err(with_cleanup(e, undo));
        }
        self.publish_zone(&inner);
        Ok(network)
    }

    async fn plan_network(&self, inner: &Inner, spec: &NetworkSpec) -> Result<Network, NetError> {
        let (routes4, routes6) = link::host_routes(&self.handle).await?;
        let mut taken4: Vec<Ipv4Net> = inner.networks.values().map(|n| n.subnet).collect();
        let mut taken6: Vec<Ipv6Net> = inner
            .networks
            .values()
            .filter_map(|n| n.ipv6.as_ref().map(|v| v.subnet))
            .collect();
        let subnet = match spec.subnet {
            Some(subnet) => {
                let subnet = subnet.trunc();
                let clash = taken4
                    .iter()
                    .map(|t| (t, "network"))
                    .chain(routes4.iter().map(|r| (r, "host route")));
                for (other, what) in clash {
                    if ipam::overlaps4(&subnet, other) {
                        return Err(IpamError::Overlap {
                            subnet: subnet.to_string(),
                            other: format!("{what} {other}"),
                        }
                        .into());
                    }
                }
                subnet
            }
            None => {
                taken4.extend(routes4);
                ipam::choose_subnet4(self.config.pool, self.config.pool_prefix, &taken4)?
            }
        };
        let gateway = match spec.gateway {
            Some(gw) => {
                ipam::check_in_subnet4(subnet, gw).map_err(|_| NetError::GatewayOutsideSubnet {
                    gateway: gw.to_string(),
                    subnet: subnet.to_string(),
                })?;
                gw
            }
            None => ipam::default_gateway4(subnet)?,
        };
        let ipv6 = if spec.enable_ipv6 {
            let subnet6 = match spec.subnet6 {
                Some(s) => s.trunc(),
                None => {
                    taken6.extend(routes6);
                    ipam::choose_subnet6(self.config.pool6, 64, &taken6)?
                }
            };
            let gateway6 = match spec.gateway6 {
                Some(gw) if subnet6.contains(&gw) => gw,
                Some(gw) => {
                    return Err(NetError::GatewayOutsideSubnet {
                        gateway: gw.to_string(),
                        subnet: subnet6.to_string(),
                    });
                }
                None => ipam::default_gateway6(subnet6)?,
            };
            Some(Ipv6Config {
                subnet: subnet6,
                gateway: gateway6,
            })
        } else if spec.subnet6.is_some() || spec.gateway6.is_some() {
            return Err(NetError::NoIpv6(spec.name.clone()));
        } else {
            None
        };
        let used: BTreeSet<u32> = inner
            .networks
            .values()
            .filter_map(|n| owned_link_number(&self.config.prefix, 'b', &n.bridge))
            .collect();
        let bridge = self.link_name('b', &used)?;
        Ok(Network {
            id: random_id()?,
            name: spec.name.clone(),
            bridge,
            subnet,
            gateway,
            ipv6,
            internal: spec.internal,
            mtu: spec.mtu.unwrap_or(1500),
            labels: spec.labels.clone(),
            attachments: BTreeMap::new(),
        })
    }

    /// `<prefix><kind><n>` with the lowest `n` not in `used`, within 15 bytes.
    fn link_name(&self, kind: char, used: &BTreeSet<u32>) -> Result<String, NetError> {
        let n = (0u32..).find(|n| !used.contains(n)).unwrap_or(u32::MAX);
        let name = format!("{}{kind}{n}", self.config.prefix);
        if name.len() > IFNAMSIZ {
            return Err(NetError::NamesExhausted(self.config.prefix.clone()));
        }
        Ok(name)
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
        self.apply_firewall(&inner).await?;
        self.sync_docker_user(&inner).await?;
        self.publish_zone(&inner);
        Ok(())
    }

    /// Attaches a container's network namespace to `network`: a veth pair on the bridge, the
    /// inner end renamed to `endpoint.ifname` with its address, MAC, MTU and default route.
    pub async fn attach(&self, network: &str, endpoint: Endpoint) -> Result<Attachment, NetError> {
        if !valid_ifname(&endpoint.ifname) {
            return Err(NetError::InvalidIfname(endpoint.ifname));
        }
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
        if let Err(e) = self
            .wire(&snapshot, &host_veth, mac, &endpoint.netns_path, side)
            .await
        {
            let undo = async {
                // Deleting the host end removes the container end too.
                link::delete(&self.handle, &host_veth).await?;
                if let Some(n) = inner.networks.get_mut(network) {
                    n.attachments.remove(&endpoint.container_id);
                    self.store.save_leases(n)?;
                }
                Ok(())
            }
            .await;
            return Err(with_cleanup(e, undo));
        }
        self.publish_zone(&inner);
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
        Ok(())
    }

    /// Detaches a container from a network: removes its veth pair, releases its addresses and
    /// unpublishes the ports that pointed at this attachment.
    pub async fn detach(&self, network: &str, container_id: &str) -> Result<(), NetError> {
        let mut inner = self.inner.lock().await;
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
        link::delete(&self.handle, &attachment.host_veth).await?;
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

    /// Publishes container ports on the host. The container's address on its first (by
    /// interface name) non-internal network receives the traffic. Conflicts are reported before
    /// anything changes.
    pub async fn publish(
        &self,
        container_id: &str,
        mappings: &[PortMapping],
    ) -> Result<Vec<Published>, NetError> {
        let mut inner = self.inner.lock().await;
        let target = inner
            .networks
            .values()
            .filter(|n| !n.internal)
            .filter_map(|n| n.attachments.get(container_id))
            .min_by(|a, b| a.ifname.cmp(&b.ifname))
            .map(|a| a.ip)
            .ok_or_else(|| NetError::NothingToPublishOn(container_id.into()))?;
        let resolved = ports::resolve(mappings, &inner.published, &BindProbe)?;
        let added: Vec<Published> = resolved
            .into_iter()
            .map(|r| Published {
                container_id: container_id.into(),
                protocol: r.protocol,
                host_ip: r.host_ip,
                host_port: r.host_port,
                container_ip: target,
                container_port: r.container_port,
            })
            .collect();
        let keep = inner.published.len();
        inner.published.extend(added.iter().cloned());
        let result = match self.store.save_ports(&inner.published) {
            Ok(()) => self.apply_firewall(&inner).await,
            Err(e) => Err(e.into()),
        };
        if let Err(e) = result {
            inner.published.truncate(keep);
            let undo = match self.store.save_ports(&inner.published) {
                Ok(()) => self.apply_firewall(&inner).await,
                Err(e) => Err(e.into()),
            };
            return Err(with_cleanup(e, undo));
        }
        Ok(added)
    }

    /// Removes every published port of a container.
    pub async fn unpublish(&self, container_id: &str) -> Result<(), NetError> {
        let mut inner = self.inner.lock().await;
        let before = inner.published.len();
        inner.published.retain(|p| p.container_id != container_id);
        if inner.published.len() != before {
            self.store.save_ports(&inner.published)?;
            self.apply_firewall(&inner).await?;
        }
        Ok(())
    }

    /// The published ports of a container (what `berth port` shows).
    pub async fn ports(&self, container_id: &str) -> Vec<Published> {
        self.inner
            .lock()
            .await
            .published
            .iter()
            .filter(|p| p.container_id == container_id)
            .cloned()
            .collect()
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
        self.apply_firewall(&inner).await?;
        self.sync_docker_user(&inner).await
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
