//! `-p [HOST_IP:][HOST_PORT:]CONTAINER_PORT[/PROTO]` → [`PortMapping`] (pure).

use std::net::IpAddr;

use berth_net::{PortMapping, PortRange, Protocol};

/// A `-p` value that cannot be understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid port specification {0:?}: use [HOST_IP:][HOST_PORT:]CONTAINER_PORT[/tcp|udp]")]
pub struct InvalidPort(pub String);

fn range(s: &str) -> Option<PortRange> {
    let (a, b) = s.split_once('-').unwrap_or((s, s));
    let (start, end) = (a.parse().ok()?, b.parse().ok()?);
    (end >= start).then_some(PortRange { start, end })
}

/// Parses one `-p` value. An empty host port (`127.0.0.1::80`, or just `80`) picks a free one.
pub fn parse(spec: &str) -> Result<PortMapping, InvalidPort> {
    let bad = || InvalidPort(spec.to_owned());
    let (rest, protocol) = match spec.rsplit_once('/') {
        Some((rest, "tcp")) => (rest, Protocol::Tcp),
        Some((rest, "udp")) => (rest, Protocol::Udp),
        Some(_) => return Err(bad()),
        None => (spec, Protocol::Tcp),
    };
    // IPv6 host addresses come in brackets: `[::1]:8080:80`.
    let (host_ip, rest) = match rest.strip_prefix('[') {
        Some(r) => {
            let (ip, after) = r.split_once("]:").ok_or_else(bad)?;
            (Some(ip.parse::<IpAddr>().map_err(|_| bad())?), after)
        }
        None => (None, rest),
    };
    let parts: Vec<&str> = rest.split(':').collect();
    let (ip, host, container) = match (host_ip, parts.as_slice()) {
        (None, [c]) => (None, "", *c),
        (None, [h, c]) => (None, *h, *c),
        (None, [ip, h, c]) => (Some(ip.parse::<IpAddr>().map_err(|_| bad())?), *h, *c),
        (Some(ip), [h, c]) => (Some(ip), *h, *c),
        _ => return Err(bad()),
    };
    let container_ports = range(container).filter(|r| r.start != 0).ok_or_else(bad)?;
    let host_ports = if host.is_empty() {
        PortRange::single(0)
    } else {
        let r = range(host).ok_or_else(bad)?;
        if r.len() != container_ports.len() {
            return Err(bad());
        }
        r
    };
    Ok(PortMapping {
        host_ip: ip,
        host_ports,
        container_ports,
        protocol,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(ip: Option<&str>, h: (u16, u16), c: (u16, u16), p: Protocol) -> PortMapping {
        PortMapping {
            host_ip: ip.map(|s| s.parse().unwrap()),
            host_ports: PortRange {
                start: h.0,
                end: h.1,
            },
            container_ports: PortRange {
                start: c.0,
                end: c.1,
            },
            protocol: p,
        }
    }

    #[test]
    fn docker_forms_parse() {
        use Protocol::*;
        assert_eq!(parse("80").unwrap(), m(None, (0, 0), (80, 80), Tcp));
        assert_eq!(
            parse("8080:80").unwrap(),
            m(None, (8080, 8080), (80, 80), Tcp)
        );
        assert_eq!(
            parse("127.0.0.1:8080:80/udp").unwrap(),
            m(Some("127.0.0.1"), (8080, 8080), (80, 80), Udp)
        );
        assert_eq!(
            parse("127.0.0.1::80").unwrap(),
            m(Some("127.0.0.1"), (0, 0), (80, 80), Tcp)
        );
        assert_eq!(
            parse("9000-9001:80-81").unwrap(),
            m(None, (9000, 9001), (80, 81), Tcp)
        );
        assert_eq!(
            parse("[::1]:8080:80").unwrap(),
            m(Some("::1"), (8080, 8080), (80, 80), Tcp)
        );
        for bad in [
            "",
            "x",
            "0",
            "80/sctp",
            "1:2:3:4",
            "9000-9002:80-81",
            "a.b:1:2",
        ] {
            assert_eq!(parse(bad), Err(InvalidPort(bad.into())), "{bad}");
        }
    }
}
