//! Published ports: short syntax (`"8080:80"`, `"127.0.0.1:9000-9001:9000-9001/udp"`,
//! `80`) and long syntax, both to [`PortConfig`].

use std::fmt;

use schemars::JsonSchema;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};

use super::forms::Text;

/// One published (or exposed) container port, in Compose's long syntax.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PortConfig {
    /// A human-readable name for the port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// `ingress` (default) or `host`.
    #[serde(default = "default_mode")]
    pub mode: String,
    /// Host address to bind; all addresses when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_ip: Option<String>,
    /// The container port.
    pub target: u16,
    /// The host port or range (`"8080"`, `"9000-9002"`); a random port when absent.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "opt_text"
    )]
    pub published: Option<String>,
    /// `tcp` (default), `udp` or `sctp`.
    #[serde(default = "default_protocol")]
    pub protocol: String,
    /// Application protocol (`http`, `grpc`, ...), informational.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_protocol: Option<String>,
}

fn default_mode() -> String {
    "ingress".to_owned()
}

fn default_protocol() -> String {
    "tcp".to_owned()
}

fn opt_text<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(Option::<Text>::deserialize(d)?.map(|t| t.0))
}

/// Deserializes a `ports` list, expanding short-syntax ranges into one entry per port.
pub fn ports<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<PortConfig>, D::Error> {
    struct V;
    impl<'de> Visitor<'de> for V {
        type Value = Vec<PortConfig>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a list of ports")
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(Vec::new())
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let mut out = Vec::new();
            while let Some(PortItem(items)) = seq.next_element()? {
                out.extend(items);
            }
            Ok(out)
        }
    }
    d.deserialize_seq(V)
}

struct PortItem(Vec<PortConfig>);

impl<'de> Deserialize<'de> for PortItem {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = PortItem;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a port number, a `[HOST:]CONTAINER[/PROTOCOL]` string or a mapping")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<PortItem, E> {
                parse_short(&v.to_string()).map(PortItem).map_err(E::custom)
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<PortItem, E> {
                parse_short(v).map(PortItem).map_err(E::custom)
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<PortItem, A::Error> {
                PortConfig::deserialize(de::value::MapAccessDeserializer::new(map))
                    .map(|p| PortItem(vec![p]))
            }
        }
        d.deserialize_any(V)
    }
}

fn parse_range(s: &str) -> Result<(u16, u16), String> {
    let bad = || format!("invalid port `{s}`");
    let (a, b) = match s.split_once('-') {
        Some((a, b)) => (a, b),
        None => (s, s),
    };
    let a: u16 = a.trim().parse().map_err(|_| bad())?;
    let b: u16 = b.trim().parse().map_err(|_| bad())?;
    if b < a {
        return Err(format!("invalid port range `{s}`: end before start"));
    }
    Ok((a, b))
}

/// Parses `[[HOST_IP:]HOST_PORT[-END]:]CONTAINER_PORT[-END][/PROTOCOL]`.
pub fn parse_short(spec: &str) -> Result<Vec<PortConfig>, String> {
    let (rest, protocol) = match spec.rsplit_once('/') {
        Some((r, p)) if !p.is_empty() => (r, p.to_owned()),
        Some(_) => return Err(format!("invalid port `{spec}`: empty protocol")),
        None => (spec, default_protocol()),
    };
    let (host_ip, host, container) = if let Some(after) = rest.strip_prefix('[') {
        let (ip, after) = after
            .split_once(']')
            .ok_or_else(|| format!("invalid port `{spec}`: unclosed `[`"))?;
        let after = after
            .strip_prefix(':')
            .ok_or_else(|| format!("invalid port `{spec}`: expected `:` after the address"))?;
        let (h, c) = after
            .rsplit_once(':')
            .ok_or_else(|| format!("invalid port `{spec}`: missing container port"))?;
        (Some(ip.to_owned()), h, c)
    } else {
        let parts: Vec<&str> = rest.split(':').collect();
        match parts.as_slice() {
            [c] => (None, "", *c),
            [h, c] => (None, *h, *c),
            [ip, h, c] => (Some((*ip).to_owned()), *h, *c),
            _ => {
                let n = parts.len();
                (Some(parts[..n - 2].join(":")), parts[n - 2], parts[n - 1])
            }
        }
    };
    let host_ip = host_ip.filter(|ip| !ip.is_empty());
    let (c0, c1) = parse_range(container)?;
    let count = u32::from(c1 - c0) + 1;
    let mk = |target: u16, published: Option<String>| PortConfig {
        name: None,
        mode: default_mode(),
        host_ip: host_ip.clone(),
        target,
        published,
        protocol: protocol.clone(),
        app_protocol: None,
    };
    if host.is_empty() {
        return Ok((c0..=c1).map(|p| mk(p, None)).collect());
    }
    let (h0, h1) = parse_range(host)?;
    let hcount = u32::from(h1 - h0) + 1;
    if count == 1 {
        let published = if hcount == 1 {
            h0.to_string()
        } else {
            format!("{h0}-{h1}")
        };
        return Ok(vec![mk(c0, Some(published))]);
    }
    if hcount != count {
        return Err(format!(
            "invalid port `{spec}`: host range has {hcount} ports, container range has {count}"
        ));
    }
    Ok((c0..=c1)
        .zip(h0..=h1)
        .map(|(c, h)| mk(c, Some(h.to_string())))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn short(s: &str) -> Vec<(Option<String>, u16, Option<String>, String)> {
        parse_short(s)
            .unwrap()
            .into_iter()
            .map(|p| (p.host_ip, p.target, p.published, p.protocol))
            .collect()
    }

    #[test]
    fn short_syntax_forms() {
        assert_eq!(short("80"), vec![(None, 80, None, "tcp".into())]);
        assert_eq!(
            short("8080:80"),
            vec![(None, 80, Some("8080".into()), "tcp".into())]
        );
        assert_eq!(
            short("127.0.0.1:9000-9001:9000-9001/udp"),
            vec![
                (
                    Some("127.0.0.1".into()),
                    9000,
                    Some("9000".into()),
                    "udp".into()
                ),
                (
                    Some("127.0.0.1".into()),
                    9001,
                    Some("9001".into()),
                    "udp".into()
                )
            ]
        );
        assert_eq!(
            short("127.0.0.1::80"),
            vec![(Some("127.0.0.1".into()), 80, None, "tcp".into())]
        );
        assert_eq!(
            short("[::1]:80:80"),
            vec![(Some("::1".into()), 80, Some("80".into()), "tcp".into())]
        );
        assert_eq!(
            short("9000-9002:80"),
            vec![(None, 80, Some("9000-9002".into()), "tcp".into())]
        );
        assert_eq!(
            short("3000-3001"),
            vec![
                (None, 3000, None, "tcp".into()),
                (None, 3001, None, "tcp".into())
            ]
        );
    }

    #[test]
    fn short_syntax_errors() {
        assert!(parse_short("abc").is_err());
        assert!(parse_short("70000").is_err());
        assert!(parse_short("1-3:1-2").is_err());
        assert!(parse_short("80/").is_err());
    }
}
