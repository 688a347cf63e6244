//! IP address management: choosing subnets from the pool and addresses within a subnet.
//!
//! Pure functions over the recorded state (see `state`): the caller persists the result before
//! it creates anything, which is what makes allocation crash-safe.

use std::collections::BTreeSet;
use std::net::{Ipv4Addr, Ipv6Addr};

use ipnet::{Ipv4Net, Ipv6Net};

/// Errors of address management.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum IpamError {
    /// Every subnet of the pool overlaps a host route or another network.
    #[error("address pool {pool} is exhausted: every /{prefix} overlaps a host route or a network")]
    PoolExhausted {
        /// The pool.
        pool: String,
        /// The size of the subnets taken from it.
        prefix: u8,
    },
    /// Every address of the subnet is taken.
    #[error("no free address left in subnet {subnet} of network {network}")]
    SubnetExhausted {
        /// The network.
        network: String,
        /// Its subnet.
        subnet: String,
    },
    /// The requested subnet overlaps something the host or berth already uses.
    #[error("subnet {subnet} overlaps {other}")]
    Overlap {
        /// The requested subnet.
        subnet: String,
        /// What it overlaps (a host route or a berth network).
        other: String,
    },
    /// The subnet has no room for a gateway and one container.
    #[error("subnet {subnet} is too small (needs at least two usable addresses)")]
    SubnetTooSmall {
        /// The subnet.
        subnet: String,
    },
    /// A given address lies outside its subnet or is its network/broadcast address.
    #[error("address {ip} is not a usable address of subnet {subnet}")]
    OutOfSubnet {
        /// The address.
        ip: String,
        /// The subnet.
        subnet: String,
    },
    /// A static address is already given to another container (or is the gateway).
    #[error("address {ip} is already in use on network {network}")]
    AddressInUse {
        /// The address.
        ip: String,
        /// The network.
        network: String,
    },
}

/// Whether two IPv4 subnets share any address.
pub fn overlaps4(a: &Ipv4Net, b: &Ipv4Net) -> bool {
    a.contains(&b.network()) || b.contains(&a.network())
}

/// Whether two IPv6 subnets share any address.
pub fn overlaps6(a: &Ipv6Net, b: &Ipv6Net) -> bool {
    a.contains(&b.network()) || b.contains(&a.network())
}

/// The first `/prefix` subnet of `pool` that overlaps none of `taken` (host routes and networks).
pub fn choose_subnet4(pool: Ipv4Net, prefix: u8, taken: &[Ipv4Net]) -> Result<Ipv4Net, IpamError> {
    let exhausted = || IpamError::PoolExhausted {
        pool: pool.to_string(),
        prefix,
    };
    pool.subnets(prefix)
        .map_err(|_| exhausted())?
        .find(|candidate| !taken.iter().any(|t| overlaps4(candidate, t)))
        .ok_or_else(exhausted)
}

/// The first `/prefix` subnet of `pool` that overlaps none of `taken`.
pub fn choose_subnet6(pool: Ipv6Net, prefix: u8, taken: &[Ipv6Net]) -> Result<Ipv6Net, IpamError> {
    let exhausted = || IpamError::PoolExhausted {
        pool: pool.to_string(),
        prefix,
    };
    pool.subnets(prefix)
        .map_err(|_| exhausted())?
        .find(|candidate| !taken.iter().any(|t| overlaps6(candidate, t)))
        .ok_or_else(exhausted)
}

/// The default gateway of a subnet: its first usable address.
pub fn default_gateway4(subnet: Ipv4Net) -> Result<Ipv4Addr, IpamError> {
    if subnet.prefix_len() > 30 {
        return Err(IpamError::SubnetTooSmall {
            subnet: subnet.to_string(),
        });
    }
    Ok(Ipv4Addr::from(u32::from(subnet.network()) + 1))
}

/// The default IPv6 gateway: the subnet's `::1`.
pub fn default_gateway6(subnet: Ipv6Net) -> Result<Ipv6Addr, IpamError> {
    if subnet.prefix_len() > 126 {
        return Err(IpamError::SubnetTooSmall {
            subnet: subnet.to_string(),
        });
    }
    Ok(Ipv6Addr::from(u128::from(subnet.network()) + 1))
}

/// Checks that `ip` is a usable host address of `subnet` (not its network or broadcast address).
pub fn check_in_subnet4(subnet: Ipv4Net, ip: Ipv4Addr) -> Result<(), IpamError> {
    if !subnet.contains(&ip) || ip == subnet.network() || ip == subnet.broadcast() {
        return Err(IpamError::OutOfSubnet {
            ip: ip.to_string(),
            subnet: subnet.to_string(),
        });
    }
    Ok(())
}

/// Picks the lowest free IPv4 address of `subnet`, or checks a requested static one.
///
/// `used` holds every address already handed out on the network; the gateway is never given.
pub fn allocate4(
    network: &str,
    subnet: Ipv4Net,
    gateway: Ipv4Addr,
    used: &BTreeSet<Ipv4Addr>,
    requested: Option<Ipv4Addr>,
) -> Result<Ipv4Addr, IpamError> {
    if let Some(ip) = requested {
        check_in_subnet4(subnet, ip)?;
        if ip == gateway || used.contains(&ip) {
            return Err(IpamError::AddressInUse {
                ip: ip.to_string(),
                network: network.into(),
            });
        }
        return Ok(ip);
    }
    subnet
        .hosts()
        .find(|ip| *ip != gateway && !used.contains(ip))
        .ok_or_else(|| IpamError::SubnetExhausted {
            network: network.into(),
            subnet: subnet.to_string(),
        })
}

/// Picks the lowest free IPv6 address of `subnet` (from `::2` on), or checks a requested one.
pub fn allocate6(
    network: &str,
    subnet: Ipv6Net,
    gateway: Ipv6Addr,
    used: &BTreeSet<Ipv6Addr>,
    requested: Option<Ipv6Addr>,
) -> Result<Ipv6Addr, IpamError> {
    if let Some(ip) = requested {
        if !subnet.contains(&ip) || ip == subnet.network() {
            return Err(IpamError::OutOfSubnet {
                ip: ip.to_string(),
                subnet: subnet.to_string(),
            });
        }
        if ip == gateway || used.contains(&ip) {
            return Err(IpamError::AddressInUse {
                ip: ip.to_string(),
                network: network.into(),
            });
        }
        return Ok(ip);
    }
    let base = u128::from(subnet.network());
    let last = u128::from(subnet.broadcast());
    (base + 1..=last)
        .map(Ipv6Addr::from)
        .find(|ip| *ip != gateway && !used.contains(ip))
        .ok_or_else(|| IpamError::SubnetExhausted {
            network: network.into(),
            subnet: subnet.to_string(),
        })
}

/// A locally administered MAC derived from the IPv4 address (`02:42:` + the four bytes), as
/// Docker does: unique on the bridge because the address is.
pub fn mac_for(ip: Ipv4Addr) -> [u8; 6] {
    let o = ip.octets();
    [0x02, 0x42, o[0], o[1], o[2], o[3]]
}

/// Formats a MAC as `aa:bb:cc:dd:ee:ff`.
pub fn format_mac(mac: &[u8; 6]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// Parses `aa:bb:cc:dd:ee:ff`.
pub fn parse_mac(text: &str) -> Option<[u8; 6]> {
    let mut out = [0u8; 6];
    let mut parts = text.split(':');
    for byte in &mut out {
        *byte = u8::from_str_radix(parts.next()?, 16).ok()?;
    }
    parts.next().is_none().then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> Ipv4Net {
        s.parse().unwrap()
    }

    #[test]
    fn subnet_choice_skips_host_routes_and_networks() {
        let pool = net("10.89.0.0/16");
        let taken = [
            net("10.89.0.0/24"),
            net("10.89.1.128/25"),
            net("10.0.0.0/8").trunc(),
        ];
        // 10.0.0.0/8 overlaps the whole pool: exhausted.
        assert_eq!(
            choose_subnet4(pool, 24, &taken),
            Err(IpamError::PoolExhausted {
                pool: "10.89.0.0/16".into(),
                prefix: 24
            })
        );
        let taken = [net("10.89.0.0/24"), net("10.89.1.128/25")];
        assert_eq!(choose_subnet4(pool, 24, &taken), Ok(net("10.89.2.0/24")));
        // A host route wider than the candidate (a /12 covering the start) is respected too.
        assert_eq!(
            choose_subnet4(net("172.16.0.0/12"), 16, &[net("172.16.0.0/15")]).unwrap(),
            net("172.18.0.0/16")
        );
    }

    #[test]
    fn addresses_are_lowest_free_and_never_the_gateway() {
        let subnet = net("10.9.0.0/29");
        let gw = default_gateway4(subnet).unwrap();
        assert_eq!(gw, Ipv4Addr::new(10, 9, 0, 1));
        let mut used = BTreeSet::new();
        let mut got = Vec::new();
        while let Ok(ip) = allocate4("n", subnet, gw, &used, None) {
            used.insert(ip);
            got.push(ip.octets()[3]);
        }
        assert_eq!(got, vec![2, 3, 4, 5, 6]);
        assert_eq!(
            allocate4("n", subnet, gw, &used, None),
            Err(IpamError::SubnetExhausted {
                network: "n".into(),
                subnet: "10.9.0.0/29".into()
            })
        );
        used.remove(&Ipv4Addr::new(10, 9, 0, 4));
        assert_eq!(
            allocate4("n", subnet, gw, &used, None),
            Ok(Ipv4Addr::new(10, 9, 0, 4))
        );
    }

    #[test]
    fn static_addresses_are_checked() {
        let subnet = net("10.9.0.0/24");
        let gw = Ipv4Addr::new(10, 9, 0, 1);
        let used = BTreeSet::from([Ipv4Addr::new(10, 9, 0, 7)]);
        let alloc = |ip: [u8; 4]| allocate4("n", subnet, gw, &used, Some(ip.into()));
        assert_eq!(alloc([10, 9, 0, 9]), Ok(Ipv4Addr::new(10, 9, 0, 9)));
        assert!(matches!(
            alloc([10, 9, 0, 7]),
            Err(IpamError::AddressInUse { .. })
        ));
        assert!(matches!(
            alloc([10, 9, 0, 1]),
            Err(IpamError::AddressInUse { .. })
        ));
        assert!(matches!(
            alloc([10, 9, 1, 1]),
            Err(IpamError::OutOfSubnet { .. })
        ));
        assert!(matches!(
            alloc([10, 9, 0, 255]),
            Err(IpamError::OutOfSubnet { .. })
        ));
        assert!(matches!(
            alloc([10, 9, 0, 0]),
            Err(IpamError::OutOfSubnet { .. })
        ));
    }

    #[test]
    fn ipv6_allocation_and_tiny_subnets() {
        let subnet: Ipv6Net = "fd00:1::/64".parse().unwrap();
        let gw = default_gateway6(subnet).unwrap();
        assert_eq!(gw, "fd00:1::1".parse::<Ipv6Addr>().unwrap());
        let used = BTreeSet::from(["fd00:1::2".parse().unwrap()]);
        assert_eq!(
            allocate6("n", subnet, gw, &used, None).unwrap(),
            "fd00:1::3".parse::<Ipv6Addr>().unwrap()
        );
        assert_eq!(
            default_gateway4(net("10.0.0.0/31")),
            Err(IpamError::SubnetTooSmall {
                subnet: "10.0.0.0/31".into()
            })
        );
    }

    #[test]
    fn mac_round_trip() {
        let mac = mac_for(Ipv4Addr::new(10, 200, 3, 4));
        assert_eq!(format_mac(&mac), "02:42:0a:c8:03:04");
        assert_eq!(parse_mac("02:42:0a:c8:03:04"), Some(mac));
        assert_eq!(parse_mac("02:42:0a:c8:03"), None);
        assert_eq!(parse_mac("02:42:0a:c8:03:04:05"), None);
    }

    proptest::proptest! {
        /// Whatever the order of allocations (dynamic or static) and releases, no address is
        /// ever held twice, the gateway is never given, and every address stays in the subnet.
        #[test]
        fn never_hands_an_address_out_twice(ops in proptest::collection::vec((0u8..3, 0u8..16), 1..200)) {
            let subnet = net("10.7.0.0/28");
            let gw = default_gateway4(subnet).unwrap();
            let mut held: BTreeSet<Ipv4Addr> = BTreeSet::new();
            for (op, n) in ops {
                match op {
                    0 => {
                        if let Ok(ip) = allocate4("n", subnet, gw, &held, None) {
                            proptest::prop_assert!(held.insert(ip), "{} handed out twice", ip);
                        } else {
                            proptest::prop_assert_eq!(held.len(), 13);
                        }
                    }
                    1 => {
                        let want = Ipv4Addr::new(10, 7, 0, n);
                        if let Ok(ip) = allocate4("n", subnet, gw, &held, Some(want)) {
                            proptest::prop_assert!(held.insert(ip), "{} handed out twice", ip);
                        }
                    }
                    _ => {
                        let victim = held.iter().nth(usize::from(n) % held.len().max(1)).copied();
                        if let Some(ip) = victim {
                            held.remove(&ip);
                        }
                    }
                }
                proptest::prop_assert!(!held.contains(&gw));
                proptest::prop_assert!(held.iter().all(|ip| check_in_subnet4(subnet, *ip).is_ok()));
            }
        }
    }
}
