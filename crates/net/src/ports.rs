//! Published ports: which host ports a container's port mappings resolve to.
//!
//! Resolution is a pure function of the request, what berth already publishes, and a
//! [`HostPorts`] probe of the host's sockets. berth forwards published ports with DNAT rules
//! (see `nat`), so nothing listens on the host port; the probe therefore binds the port once to
//! learn whether another process holds it, and a taken port is reported before anything is
//! created.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, UdpSocket};

use serde::{Deserialize, Serialize};

use crate::state::Published;

/// Transport protocol of a published port.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
}

impl std::fmt::Display for Protocol {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
        })
    }
}

/// An inclusive range of ports; a single port has `start == end`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortRange {
    /// First port (for host ports, 0 means "any free port").
    pub start: u16,
    /// Last port, inclusive.
    pub end: u16,
}

impl PortRange {
    /// One port.
    pub fn single(port: u16) -> PortRange {
        PortRange {
            start: port,
            end: port,
        }
    }

    /// How many ports the range holds.
    pub fn len(&self) -> usize {
        usize::from(self.end.saturating_sub(self.start)) + 1
    }

    /// Never empty (a range holds at least one port); present for clippy's `len` convention.
    pub fn is_empty(&self) -> bool {
        false
    }
}

/// One `ports:` entry (`[host_ip:][host_ports:]container_ports[/protocol]`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortMapping {
    /// Host address to answer on; `None` answers on every host address, including 127.0.0.1.
    pub host_ip: Option<IpAddr>,
    /// Host port(s); `start == 0` picks free ports at random.
    pub host_ports: PortRange,
    /// Container port(s).
    pub container_ports: PortRange,
    /// Protocol.
    pub protocol: Protocol,
}

/// Errors resolving port mappings.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PortError {
    /// The host port is held by a host process.
    #[error("host port {port}/{protocol} on {} is already in use by another process", show_ip(.host_ip))]
    InUseByHost {
        /// The host address.
        host_ip: Option<IpAddr>,
        /// The port.
        port: u16,
        /// The protocol.
        protocol: Protocol,
    },
    /// The host port is already published by berth.
    #[error("host port {port}/{protocol} on {} is already published by container {container}", show_ip(.host_ip))]
    InUseByBerth {
        /// The host address.
        host_ip: Option<IpAddr>,
        /// The port.
        port: u16,
        /// The protocol.
        protocol: Protocol,
        /// The container that publishes it.
        container: String,
    },
    /// The host and container ranges cannot be paired.
    #[error("host ports {host} and container ports {container} differ in length")]
    RangeMismatch {
        /// The host range as written.
        host: String,
        /// The container range as written.
        container: String,
    },
    /// No port of a host range is free.
    #[error("no free host port in {start}-{end}/{protocol}")]
    NoFreePort {
        /// First port.
        start: u16,
        /// Last port.
        end: u16,
        /// Protocol.
        protocol: Protocol,
    },
    /// A container port of 0 or a reversed range.
    #[error("invalid port range {start}-{end}")]
    InvalidRange {
        /// First port.
        start: u16,
        /// Last port.
        end: u16,
    },
    /// Published ports are forwarded to the container's IPv4 address; an IPv6 host address
    /// cannot be forwarded there.
    #[error("cannot publish on IPv6 host address {0}: published ports are IPv4 only")]
    Ipv6HostIp(IpAddr),
    /// The probe could not get a random port from the kernel.
    #[error("pick a random {protocol} port: {message}")]
    Random {
        /// Protocol.
        protocol: Protocol,
        /// The OS error text.
        message: String,
    },
}

fn show_ip(ip: &Option<IpAddr>) -> String {
    ip.map_or_else(|| "all addresses".to_string(), |ip| ip.to_string())
}

/// Probes the host's sockets.
pub trait HostPorts {
    /// Whether a socket could bind `port` on `ip` (all addresses when `None`) right now.
    fn is_free(&self, ip: Option<IpAddr>, protocol: Protocol, port: u16) -> bool;
    /// A port the kernel considers free (bind to port 0).
    fn random(&self, ip: Option<IpAddr>, protocol: Protocol) -> std::io::Result<u16>;
}

/// The real probe: binds a socket and closes it again.
#[derive(Debug, Clone, Copy, Default)]
pub struct BindProbe;

fn bind_addr(ip: Option<IpAddr>, port: u16) -> SocketAddr {
    SocketAddr::new(ip.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED)), port)
}

impl HostPorts for BindProbe {
    fn is_free(&self, ip: Option<IpAddr>, protocol: Protocol, port: u16) -> bool {
        let addr = bind_addr(ip, port);
        match protocol {
            Protocol::Tcp => TcpListener::bind(addr).is_ok(),
            Protocol::Udp => UdpSocket::bind(addr).is_ok(),
        }
    }

    fn random(&self, ip: Option<IpAddr>, protocol: Protocol) -> std::io::Result<u16> {
        let addr = bind_addr(ip, 0);
        match protocol {
            Protocol::Tcp => TcpListener::bind(addr)?.local_addr().map(|a| a.port()),
            Protocol::Udp => UdpSocket::bind(addr)?.local_addr().map(|a| a.port()),
        }
    }
}

/// One resolved mapping (host side chosen).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resolved {
    /// Host address (`None`: all).
    pub host_ip: Option<IpAddr>,
    /// Host port.
    pub host_port: u16,
    /// Container port.
    pub container_port: u16,
    /// Protocol.
    pub protocol: Protocol,
}

fn ips_overlap(a: Option<IpAddr>, b: Option<IpAddr>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => a == b,
        _ => true,
    }
}

/// Resolves `mappings` against what is already published (`taken`) and the host's sockets.
pub fn resolve(
    mappings: &[PortMapping],
    taken: &[Published],
    probe: &dyn HostPorts,
) -> Result<Vec<Resolved>, PortError> {
    let mut out: Vec<Resolved> = Vec::new();
    let berth_owner = |out: &[Resolved], ip: Option<IpAddr>, proto: Protocol, port: u16| {
        taken
            .iter()
            .find(|p| p.protocol == proto && p.host_port == port && ips_overlap(p.host_ip, ip))
            .map(|p| p.container_id.clone())
            .or_else(|| {
                out.iter()
                    .any(|r| {
                        r.protocol == proto && r.host_port == port && ips_overlap(r.host_ip, ip)
                    })
                    .then(|| "(this request)".to_string())
            })
    };
    for m in mappings {
        // `0.0.0.0` (or `::`) means every address, as no host IP does: the DNAT rule must then
        // not match on a destination address.
        let ip = m.host_ip.filter(|ip| !ip.is_unspecified());
        let (c, h, proto) = (m.container_ports, m.host_ports, m.protocol);
        if let Some(v6 @ IpAddr::V6(_)) = ip {
            return Err(PortError::Ipv6HostIp(v6));
        }
        if c.start == 0 || c.end < c.start {
            return Err(PortError::InvalidRange {
                start: c.start,
                end: c.end,
            });
        }
        if h.start != 0 && h.end < h.start {
            return Err(PortError::InvalidRange {
                start: h.start,
                end: h.end,
            });
        }
        let cports = c.start..=c.end;
        if h.start == 0 {
            for cport in cports {
                let mut port = None;
                for _ in 0..64 {
                    let p = probe.random(ip, proto).map_err(|e| PortError::Random {
                        protocol: proto,
                        message: e.to_string(),
                    })?;
                    if berth_owner(&out, ip, proto, p).is_none() {
                        port = Some(p);
                        break;
                    }
                }
                let host_port = port.ok_or(PortError::NoFreePort {
                    start: 0,
                    end: 0,
                    protocol: proto,
                })?;
                out.push(Resolved {
                    host_ip: ip,
                    host_port,
                    container_port: cport,
                    protocol: proto,
                });
            }
        } else if h.len() == c.len() {
            for (host_port, cport) in (h.start..=h.end).zip(cports) {
                if let Some(container) = berth_owner(&out, ip, proto, host_port) {
                    return Err(PortError::InUseByBerth {
                        host_ip: ip,
                        port: host_port,
                        protocol: proto,
                        container,
                    });
                }
                if !probe.is_free(ip, proto, host_port) {
                    return Err(PortError::InUseByHost {
                        host_ip: ip,
                        port: host_port,
                        protocol: proto,
                    });
                }
                out.push(Resolved {
                    host_ip: ip,
                    host_port,
                    container_port: cport,
                    protocol: proto,
                });
            }
        } else if c.len() == 1 {
            let host_port = (h.start..=h.end)
                .find(|p| {
                    berth_owner(&out, ip, proto, *p).is_none() && probe.is_free(ip, proto, *p)
                })
                .ok_or(PortError::NoFreePort {
                    start: h.start,
                    end: h.end,
                    protocol: proto,
                })?;
            out.push(Resolved {
                host_ip: ip,
                host_port,
                container_port: c.start,
                protocol: proto,
            });
        } else {
            return Err(PortError::RangeMismatch {
                host: format!("{}-{}", h.start, h.end),
                container: format!("{}-{}", c.start, c.end),
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A host where the listed ports are held by other processes; random ports count up.
    struct Host {
        busy: Vec<u16>,
        next: std::cell::Cell<u16>,
    }

    impl HostPorts for Host {
        fn is_free(&self, _: Option<IpAddr>, _: Protocol, port: u16) -> bool {
            !self.busy.contains(&port)
        }
        fn random(&self, _: Option<IpAddr>, _: Protocol) -> std::io::Result<u16> {
            let p = self.next.get();
            self.next.set(p + 1);
            Ok(p)
        }
    }

    fn host(busy: &[u16]) -> Host {
        Host {
            busy: busy.to_vec(),
            next: std::cell::Cell::new(40000),
        }
    }

    fn map(h: (u16, u16), c: (u16, u16), protocol: Protocol) -> PortMapping {
        PortMapping {
            host_ip: None,
            host_ports: PortRange {
                start: h.0,
                end: h.1,
            },
            container_ports: PortRange {
                start: c.0,
                end: c.1,
            },
            protocol,
        }
    }

    fn ports(r: &[Resolved]) -> Vec<(u16, u16)> {
        r.iter().map(|r| (r.host_port, r.container_port)).collect()
    }

    #[test]
    fn ranges_map_one_to_one_and_random_ports_are_picked() {
        let got = resolve(
            &[
                map((8000, 8002), (80, 82), Protocol::Tcp),
                map((0, 0), (53, 53), Protocol::Udp),
            ],
            &[],
            &host(&[]),
        )
        .unwrap();
        assert_eq!(
            ports(&got),
            vec![(8000, 80), (8001, 81), (8002, 82), (40000, 53)]
        );
        assert_eq!(got[3].protocol, Protocol::Udp);
    }

    #[test]
    fn an_unspecified_host_ip_publishes_on_every_address() {
        for any in ["0.0.0.0", "::"] {
            let mut m = map((8080, 8080), (80, 80), Protocol::Tcp);
            m.host_ip = Some(any.parse().unwrap());
            let got = resolve(&[m], &[], &host(&[])).unwrap();
            assert_eq!(got[0].host_ip, None, "{any}");
        }
    }

    #[test]
    fn host_range_for_one_container_port_takes_first_free() {
        let got = resolve(
            &[map((9000, 9005), (80, 80), Protocol::Tcp)],
            &[],
            &host(&[9000, 9001]),
        )
        .unwrap();
        assert_eq!(ports(&got), vec![(9002, 80)]);
        let err = resolve(
            &[map((9000, 9001), (80, 80), Protocol::Tcp)],
            &[],
            &host(&[9000, 9001]),
        );
        assert_eq!(
            err,
            Err(PortError::NoFreePort {
                start: 9000,
                end: 9001,
                protocol: Protocol::Tcp
            })
        );
    }

    #[test]
    fn conflicts_are_named() {
        let err = resolve(
            &[map((8080, 8080), (80, 80), Protocol::Tcp)],
            &[],
            &host(&[8080]),
        );
        assert_eq!(
            err,
            Err(PortError::InUseByHost {
                host_ip: None,
                port: 8080,
                protocol: Protocol::Tcp
            })
        );
        let taken = vec![Published {
            container_id: "web1".into(),
            protocol: Protocol::Tcp,
            host_ip: Some(IpAddr::V4(Ipv4Addr::LOCALHOST)),
            host_port: 8080,
            container_ip: Ipv4Addr::new(10, 0, 0, 2),
            container_port: 80,
        }];
        let err = resolve(
            &[map((8080, 8080), (80, 80), Protocol::Tcp)],
            &taken,
            &host(&[]),
        );
        assert!(
            matches!(err, Err(PortError::InUseByBerth { ref container, .. }) if container == "web1")
        );
        // Same port, other protocol: fine.
        assert!(
            resolve(
                &[map((8080, 8080), (80, 80), Protocol::Udp)],
                &taken,
                &host(&[])
            )
            .is_ok()
        );
        let mut v6 = map((8080, 8080), (80, 80), Protocol::Tcp);
        v6.host_ip = Some("::1".parse().unwrap());
        assert_eq!(
            resolve(&[v6], &[], &host(&[])),
            Err(PortError::Ipv6HostIp("::1".parse().unwrap()))
        );
        let err = resolve(&[map((1, 2), (1, 3), Protocol::Udp)], &[], &host(&[]));
        assert!(matches!(err, Err(PortError::RangeMismatch { .. })));
        let msg = PortError::InUseByHost {
            host_ip: None,
            port: 80,
            protocol: Protocol::Tcp,
        }
        .to_string();
        assert_eq!(
            msg,
            "host port 80/tcp on all addresses is already in use by another process"
        );
    }
}
