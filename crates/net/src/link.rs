//! Links on the host and in containers through rtnetlink: bridges, veth pairs, addresses, routes.
//!
//! Host-side functions take a [`rtnetlink::Handle`] opened in the host namespace.
//! [`configure_container_side`] runs inside the container's namespace (see [`crate::netns`]) with a
//! netlink connection of its own.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::AsRawFd;
use std::path::PathBuf;

use futures::TryStreamExt;
use ipnet::{Ipv4Net, Ipv6Net};
use netlink_packet_route::link::{InfoData, InfoKind, InfoVeth};
use netlink_packet_route::link::{LinkAttribute, LinkMessage, State};
use netlink_packet_route::route::{RouteAddress, RouteAttribute, RouteHeader, RouteType};
use rtnetlink::{
    Handle, LinkBridge, LinkMessageBuilder, LinkUnspec, LinkVeth, RouteMessageBuilder,
};

/// Errors of link operations.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    /// The netlink socket could not be opened.
    #[error("open a netlink socket")]
    Connect(#[source] std::io::Error),
    /// A netlink request failed.
    #[error("{op} {name}")]
    Netlink {
        /// What was attempted.
        op: &'static str,
        /// The link (or address/route) concerned.
        name: String,
        /// The kernel's answer.
        #[source]
        source: rtnetlink::Error,
    },
    /// A link expected to exist does not.
    #[error("link {0} not found")]
    NotFound(String),
    /// A sysctl file could not be written.
    #[error("write {value} to {path}")]
    Sysctl {
        /// The `/proc/sys` file.
        path: PathBuf,
        /// The value.
        value: String,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// A tokio runtime for the namespace thread could not be built.
    #[error("build a runtime for the namespace thread")]
    Runtime(#[source] std::io::Error),
}

fn nl(op: &'static str, name: &str) -> impl FnOnce(rtnetlink::Error) -> LinkError {
    let name = name.to_string();
    move |source| LinkError::Netlink { op, name, source }
}

/// The errno of a netlink error, if it is one.
fn errno(e: &rtnetlink::Error) -> Option<i32> {
    match e {
        rtnetlink::Error::NetlinkError(m) => Some(m.raw_code().abs()),
        _ => None,
    }
}

/// Opens a netlink connection in the calling thread's namespace and drives it on the current
/// tokio runtime.
pub fn connect() -> Result<Handle, LinkError> {
    let (conn, handle, _) = rtnetlink::new_connection().map_err(LinkError::Connect)?;
    tokio::spawn(conn);
    Ok(handle)
}

/// Writes a `/proc/sys` value (for the calling thread's network namespace).
pub fn sysctl(path: &str, value: &str) -> Result<(), LinkError> {
    std::fs::write(path, value).map_err(|source| LinkError::Sysctl {
        path: PathBuf::from(path),
        value: value.to_string(),
        source,
    })
}

/// The index of the link called `name`, or `None` if there is none.
pub async fn index(handle: &Handle, name: &str) -> Result<Option<u32>, LinkError> {
    let mut links = handle.link().get().match_name(name.to_string()).execute();
    match links.try_next().await {
        Ok(Some(msg)) => Ok(Some(msg.header.index)),
        Ok(None) => Ok(None),
        Err(e) if errno(&e) == Some(libc_enodev()) => Ok(None),
        Err(e) => Err(nl("look up link", name)(e)),
    }
}

const fn libc_enodev() -> i32 {
    19 // ENODEV
}

const fn libc_eexist() -> i32 {
    17 // EEXIST
}

/// Names of every link in the namespace.
pub async fn names(handle: &Handle) -> Result<Vec<String>, LinkError> {
    let msgs: Vec<LinkMessage> = handle
        .link()
        .get()
        .execute()
        .try_collect()
        .await
        .map_err(nl("list links", ""))?;
    Ok(msgs
        .iter()
        .filter_map(|m| {
            m.attributes.iter().find_map(|a| match a {
                LinkAttribute::IfName(n) => Some(n.clone()),
                _ => None,
            })
        })
        .collect())
}

/// Deletes the link `name`; `Ok(false)` when it did not exist.
pub async fn delete(handle: &Handle, name: &str) -> Result<bool, LinkError> {
    let Some(idx) = index(handle, name).await? else {
        return Ok(false);
    };
    match handle.link().del(idx).execute().await {
        Ok(()) => Ok(true),
        Err(e) if errno(&e) == Some(libc_enodev()) => Ok(false),
        Err(e) => Err(nl("delete link", name)(e)),
    }
}

/// What a bridge gets.
#[derive(Debug, Clone)]
pub struct BridgeSpec {
    /// Link name.
    pub name: String,
    /// MTU.
    pub mtu: u32,
    /// Gateway address and prefix length.
    pub gateway: (Ipv4Addr, u8),
    /// IPv6 gateway address and prefix length.
    pub gateway6: Option<(Ipv6Addr, u8)>,
}

/// Creates a bridge with its gateway address(es), up. Sets `route_localnet` on it so that
/// connections to published ports on 127.0.0.1 can be forwarded (and masqueraded) to it.
pub async fn create_bridge(handle: &Handle, spec: &BridgeSpec) -> Result<u32, LinkError> {
    // A fixed MAC: otherwise the bridge takes the lowest MAC of its ports and changes it when
    // that port goes, leaving every container with a stale ARP entry for the gateway.
    let mac = crate::ipam::mac_for(spec.gateway.0);
    let msg = LinkBridge::new(&spec.name)
        .mtu(spec.mtu)
        .address(mac.to_vec())
        .build();
    handle
        .link()
        .add(msg)
        .execute()
        .await
        .map_err(nl("create bridge", &spec.name))?;
    let idx = index(handle, &spec.name)
        .await?
        .ok_or_else(|| LinkError::NotFound(spec.name.clone()))?;
    sysctl(
        &format!("/proc/sys/net/ipv4/conf/{}/route_localnet", spec.name),
        "1",
    )?;
    address_and_up(handle, idx, &spec.name, spec.gateway, spec.gateway6).await?;
    Ok(idx)
}

/// Gives link `idx` its IPv4 address (and IPv6 one, if any) and sets it up.
///
/// IPv6 duplicate address detection is turned off: IPAM guarantees uniqueness, and DAD
/// would leave the address unusable for about a second.
async fn address_and_up(
    handle: &Handle,
    idx: u32,
    ifname: &str,
    (ip, len): (Ipv4Addr, u8),
    ip6: Option<(Ipv6Addr, u8)>,
) -> Result<(), LinkError> {
    handle
        .address()
        .add(idx, IpAddr::V4(ip), len)
        .execute()
        .await
        .map_err(nl("add address to", ifname))?;
    if let Some((ip6, len6)) = ip6 {
        sysctl(&format!("/proc/sys/net/ipv6/conf/{ifname}/accept_dad"), "0")?;
        handle
            .address()
            .add(idx, IpAddr::V6(ip6), len6)
            .execute()
            .await
            .map_err(nl("add IPv6 address to", ifname))?;
    }
    let up = LinkUnspec::new_with_index(idx).up().build();
    handle
        .link()
        .set(up)
        .execute()
        .await
        .map_err(nl("set up", ifname))
}

/// Creates a veth pair whose host end `host` is enslaved to the bridge and up, and whose other
/// end is created directly inside the namespace open as `netns`, already named `peer` (`eth0`)
/// with its MAC and MTU. Creating it in place instead of moving it there afterwards saves the
/// RCU grace periods a namespace move costs (15-25 ms on the benchmark machine).
pub async fn create_veth(
    handle: &Handle,
    host: &str,
    peer: &str,
    mac: [u8; 6],
    mtu: u32,
    bridge_index: u32,
    netns: &std::fs::File,
) -> Result<(), LinkError> {
    let peer_msg = LinkMessageBuilder::<LinkUnspec>::new()
        .name(peer.to_string())
        .mtu(mtu)
        .address(mac.to_vec())
        .setns_by_fd(netns.as_raw_fd())
        .build();
    let msg = LinkMessageBuilder::<LinkVeth>::new_with_info_kind(InfoKind::Veth)
        .name(host.to_string())
        .mtu(mtu)
        .controller(bridge_index)
        .up()
        .set_info_data(InfoData::Veth(InfoVeth::Peer(peer_msg)))
        .build();
    handle
        .link()
        .add(msg)
        .execute()
        .await
        .map_err(nl("create veth", host))
}

/// Destination prefixes of the host's unicast routes in the main table.
pub async fn host_routes(handle: &Handle) -> Result<(Vec<Ipv4Net>, Vec<Ipv6Net>), LinkError> {
    let mut v4 = Vec::new();
    let mut v6 = Vec::new();
    for request in [
        RouteMessageBuilder::<Ipv4Addr>::new().build(),
        RouteMessageBuilder::<Ipv6Addr>::new().build(),
    ] {
        let routes: Vec<_> = handle
            .route()
            .get(request)
            .execute()
            .try_collect()
            .await
            .map_err(nl("list routes", ""))?;
        for r in routes {
            if r.header.table != RouteHeader::RT_TABLE_MAIN || r.header.kind != RouteType::Unicast {
                continue;
            }
            let len = r.header.destination_prefix_length;
            let dst = r.attributes.iter().find_map(|a| match a {
                RouteAttribute::Destination(d) => Some(d.clone()),
                _ => None,
            });
            match dst {
                Some(RouteAddress::Inet(a)) => v4.extend(Ipv4Net::new(a, len).ok()),
                Some(RouteAddress::Inet6(a)) => v6.extend(Ipv6Net::new(a, len).ok()),
                // No destination: a default route. Overlapping with it is what routing is for.
                _ => {}
            }
        }
    }
    Ok((v4, v6))
}

/// Everything the container side of an attachment needs.
#[derive(Debug, Clone)]
pub struct ContainerSide {
    /// The interface name (`eth0`, ...), as created by [`create_veth`].
    pub ifname: String,
    /// IPv4 address and prefix length.
    pub ip: (Ipv4Addr, u8),
    /// IPv6 address and prefix length.
    pub ip6: Option<(Ipv6Addr, u8)>,
    /// Default IPv4 gateway (none for internal networks).
    pub gateway: Option<Ipv4Addr>,
    /// Default IPv6 gateway.
    pub gateway6: Option<Ipv6Addr>,
}

/// Configures the peer inside the container namespace. Must run on a thread that has entered
/// that namespace (see [`crate::netns::run_in`]); builds its own single-threaded runtime.
pub fn configure_container_side(side: ContainerSide) -> Result<(), LinkError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()
        .map_err(LinkError::Runtime)?;
    rt.block_on(configure_async(side))
}

/// Waits (at most a second) until the kernel reports the link operationally up: until then
/// (carrier on, processed by the kernel's link watcher) it drops what is sent through it, so a
/// container's first packets after attach would be lost.
pub async fn wait_oper_up(handle: &Handle, idx: u32) -> Result<(), LinkError> {
    for _ in 0..1000 {
        let mut links = handle.link().get().match_index(idx).execute();
        let msg = links
            .try_next()
            .await
            .map_err(nl("look up link", &idx.to_string()))?;
        let up = msg.is_some_and(|m| {
            m.attributes
                .iter()
                .any(|a| matches!(a, LinkAttribute::OperState(State::Up)))
        });
        if up {
            return Ok(());
        }
        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
    }
    // Not up yet: the link works as soon as the kernel catches up; do not fail the attach.
    Ok(())
}

async fn configure_async(side: ContainerSide) -> Result<(), LinkError> {
    let handle = connect()?;
    let idx = index(&handle, &side.ifname)
        .await?
        .ok_or_else(|| LinkError::NotFound(side.ifname.clone()))?;
    address_and_up(&handle, idx, &side.ifname, side.ip, side.ip6).await?;
    wait_oper_up(&handle, idx).await?;
    if let Some(lo) = index(&handle, "lo").await? {
        let up = LinkUnspec::new_with_index(lo).up().build();
        handle
            .link()
            .set(up)
            .execute()
            .await
            .map_err(nl("set up", "lo"))?;
    }
    if let Some(gw) = side.gateway {
        let route = RouteMessageBuilder::<Ipv4Addr>::new()
            .gateway(gw)
            .output_interface(idx)
            .build();
        match handle.route().add(route).execute().await {
            // A default route from an earlier network stays (the first network is the way out).
            Err(e) if errno(&e) == Some(libc_eexist()) => {}
            other => other.map_err(nl("add default route via", &gw.to_string()))?,
        }
    }
    if let Some(gw6) = side.gateway6 {
        let route = RouteMessageBuilder::<Ipv6Addr>::new()
            .gateway(gw6)
            .output_interface(idx)
            .build();
        match handle.route().add(route).execute().await {
            Err(e) if errno(&e) == Some(libc_eexist()) => {}
            other => other.map_err(nl("add IPv6 default route via", &gw6.to_string()))?,
        }
    }
    Ok(())
}
