//! Service fields that refer to files, devices, hosts and other services: configs and
//! secrets, env files, `extends`, devices, extra hosts, GPUs; each with its short forms.

use std::fmt;

use schemars::JsonSchema;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};

use super::deploy::DeviceRequest;
use super::forms::{Text, octal_mode};
use super::service_types::{StringOrListSeed, yes};

/// A config or secret granted to a service.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ServiceFileRef {
    /// Name of the top-level config or secret.
    pub source: String,
    /// Path in the container (secrets default to `/run/secrets/<source>`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// Owner uid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<String>,
    /// Owner gid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gid: Option<String>,
    /// File mode, printed in octal.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "octal_mode")]
    #[schemars(with = "Option<String>")]
    pub mode: Option<u32>,
}

/// `configs` / `secrets` of a service: names or long mappings.
pub fn file_refs<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<ServiceFileRef>, D::Error> {
    struct Item(ServiceFileRef);
    impl<'de> Deserialize<'de> for Item {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct V;
            impl<'de> Visitor<'de> for V {
                type Value = Item;
                fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                    f.write_str("a name or a mapping with source")
                }
                fn visit_str<E: de::Error>(self, v: &str) -> Result<Item, E> {
                    Ok(Item(ServiceFileRef {
                        source: v.to_owned(),
                        ..ServiceFileRef::default()
                    }))
                }
                fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Item, A::Error> {
                    ServiceFileRef::deserialize(de::value::MapAccessDeserializer::new(map))
                        .map(Item)
                }
            }
            d.deserialize_any(V)
        }
    }
    let v: Vec<Item> = Vec::deserialize(d)?;
    Ok(v.into_iter().map(|i| i.0).collect())
}

/// A host device mapped into the container.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DeviceMapping {
    /// Host path.
    pub source: String,
    /// Container path.
    #[serde(default)]
    pub target: String,
    /// cgroup permissions (`rwm`).
    #[serde(default)]
    pub permissions: String,
}

/// `devices`: `HOST[:CONTAINER[:PERMS]]` strings or mappings.
pub fn devices<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<DeviceMapping>, D::Error> {
    struct Item(DeviceMapping);
    impl<'de> Deserialize<'de> for Item {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct V;
            impl<'de> Visitor<'de> for V {
                type Value = Item;
                fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                    f.write_str("`HOST[:CONTAINER[:PERMISSIONS]]` or a mapping")
                }
                fn visit_str<E: de::Error>(self, v: &str) -> Result<Item, E> {
                    let parts: Vec<&str> = v.split(':').collect();
                    let (s, t, p) = match parts.as_slice() {
                        [s] => (*s, *s, "rwm"),
                        [s, t] => (*s, *t, "rwm"),
                        [s, t, p] => (*s, *t, *p),
                        _ => return Err(E::custom(format!("invalid device `{v}`"))),
                    };
                    Ok(Item(DeviceMapping {
                        source: s.to_owned(),
                        target: t.to_owned(),
                        permissions: p.to_owned(),
                    }))
                }
                fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Item, A::Error> {
                    let mut m =
                        DeviceMapping::deserialize(de::value::MapAccessDeserializer::new(map))?;
                    if m.target.is_empty() {
                        m.target = m.source.clone();
                    }
                    if m.permissions.is_empty() {
                        m.permissions = "rwm".to_owned();
                    }
                    Ok(Item(m))
                }
            }
            d.deserialize_any(V)
        }
    }
    let v: Vec<Item> = Vec::deserialize(d)?;
    Ok(v.into_iter().map(|i| i.0).collect())
}

/// `extra_hosts`: `host=ip`, `host:ip` or a mapping (one or several addresses), as a
/// sorted list of `host=ip`.
pub fn extra_hosts<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    struct V;
    impl<'de> Visitor<'de> for V {
        type Value = Vec<String>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a list of host=ip or a mapping")
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(Vec::new())
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let mut out = Vec::new();
            while let Some(Text(s)) = seq.next_element::<Text>()? {
                let (h, ips) = match s.split_once('=') {
                    Some(x) => x,
                    None => s.split_once(':').ok_or_else(|| {
                        de::Error::custom(format!("invalid extra host `{s}` (expected host=ip)"))
                    })?,
                };
                for ip in ips.split(',') {
                    out.push(format!("{h}={ip}"));
                }
            }
            out.sort();
            out.dedup();
            Ok(out)
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut out = Vec::new();
            while let Some(k) = map.next_key::<String>()? {
                let v: Vec<String> = map.next_value_seed(StringOrListSeed)?;
                for ip in v {
                    out.push(format!("{k}={ip}"));
                }
            }
            out.sort();
            out.dedup();
            Ok(out)
        }
    }
    d.deserialize_any(V)
}

/// `gpus`: `all` or a list of device requests.
pub fn gpus<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<DeviceRequest>, D::Error> {
    struct V;
    impl<'de> Visitor<'de> for V {
        type Value = Vec<DeviceRequest>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("`all` or a list of device requests")
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
            if v == "all" {
                Ok(vec![DeviceRequest {
                    count: Some(-1),
                    ..DeviceRequest::default()
                }])
            } else {
                Err(E::invalid_value(de::Unexpected::Str(v), &self))
            }
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let mut out = Vec::new();
            while let Some(r) = seq.next_element::<DeviceRequest>()? {
                out.push(r);
            }
            Ok(out)
        }
    }
    d.deserialize_any(V)
}

/// An environment file of a service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EnvFile {
    /// Path (relative to the project directory).
    pub path: String,
    /// Fail when the file is missing (default true).
    #[serde(default = "yes")]
    pub required: bool,
    /// File format (`raw` for no interpolation).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<String>,
}

/// `env_file`: a path, a list of paths, or long mappings.
pub fn env_files<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<EnvFile>, D::Error> {
    struct Item(EnvFile);
    impl<'de> Deserialize<'de> for Item {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct V;
            impl<'de> Visitor<'de> for V {
                type Value = Item;
                fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                    f.write_str("a path or a mapping with path")
                }
                fn visit_str<E: de::Error>(self, v: &str) -> Result<Item, E> {
                    Ok(Item(EnvFile {
                        path: v.to_owned(),
                        required: true,
                        format: None,
                    }))
                }
                fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Item, A::Error> {
                    EnvFile::deserialize(de::value::MapAccessDeserializer::new(map)).map(Item)
                }
            }
            d.deserialize_any(V)
        }
    }
    struct V;
    impl<'de> Visitor<'de> for V {
        type Value = Vec<EnvFile>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a path or a list of paths")
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
            Ok(vec![EnvFile {
                path: v.to_owned(),
                required: true,
                format: None,
            }])
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let mut out = Vec::new();
            while let Some(Item(e)) = seq.next_element::<Item>()? {
                out.push(e);
            }
            Ok(out)
        }
    }
    d.deserialize_any(V)
}

/// `extends`: a service name (same file) or `{service, file}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct Extends {
    /// The service to extend.
    pub service: String,
    /// The file it is in (default: the current file).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
}

impl<'de> Deserialize<'de> for Extends {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Long {
            service: String,
            file: Option<String>,
        }
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Extends;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a service name or a mapping with service and file")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Extends, E> {
                Ok(Extends {
                    service: v.to_owned(),
                    file: None,
                })
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Extends, A::Error> {
                let l = Long::deserialize(de::value::MapAccessDeserializer::new(map))?;
                Ok(Extends {
                    service: l.service,
                    file: l.file,
                })
            }
        }
        d.deserialize_any(V)
    }
}
