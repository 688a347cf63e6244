//! Planning a network: its subnet(s), gateway(s) and bridge name, from the spec, the pool,
//! the host's routes and the existing networks (pure decisions, before anything is created).

use std::collections::{BTreeMap, BTreeSet};

use ipnet::{Ipv4Net, Ipv6Net};

use super::config::IFNAMSIZ;
use super::{Inner, Net, NetError, NetworkSpec, owned_link_number};
use crate::ipam::{self, IpamError};
use crate::link;
use crate::state::{Ipv6Config, Network};

fn random_id() -> Result<String, NetError> {
    let mut bytes = [0u8; 32];
    let mut f = std::fs::File::open("/dev/urandom").map_err(NetError::Random)?;
    std::io::Read::read_exact(&mut f, &mut bytes).map_err(NetError::Random)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

impl Net {
    pub(super) async fn plan_network(
        &self,
        inner: &Inner,
        spec: &NetworkSpec,
    ) -> Result<Network, NetError> {
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
    pub(super) fn link_name(&self, kind: char, used: &BTreeSet<u32>) -> Result<String, NetError> {
        let n = (0u32..).find(|n| !used.contains(n)).unwrap_or(u32::MAX);
        let name = format!("{}{kind}{n}", self.config.prefix);
        if name.len() > IFNAMSIZ {
            return Err(NetError::NamesExhausted(self.config.prefix.clone()));
        }
        Ok(name)
    }
}
