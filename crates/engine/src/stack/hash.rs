//! The config hash of a service: what decides whether its containers are recreated.
//!
//! Docker Compose's rules: the fully resolved service minus what does not change a
//! container (`build`, `pull_policy`, `scale`, `deploy.replicas`, `depends_on`,
//! `profiles`). `env_file`s are already read into `environment` by the loader (their
//! paths are gone, their contents count), and the *contents* of the secrets and configs the
//! service mounts are added, so that editing a secret file recreates its users.
//!
//! Besides the whole hash, each top-level field has its own hash, kept in the stack
//! document, so that `up` can say which fields changed (`web: environment changed`).

use std::collections::BTreeMap;

use berth_compose::Service;
use sha2::{Digest, Sha256};

/// A service's config hash and the hash of each of its fields.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ServiceHash {
    /// Hex SHA-256 of everything that counts.
    pub hash: String,
    /// Field name → hex SHA-256 of its value (only fields that are set).
    pub fields: BTreeMap<String, String>,
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Hashes `service`; `contents` are the secret and config sources it mounts, by
/// `secret:<name>` / `config:<name>`, with their bytes.
pub fn service_hash(service: &Service, contents: &BTreeMap<String, Vec<u8>>) -> ServiceHash {
    let mut s = service.clone();
    s.build = None;
    s.pull_policy = None;
    s.scale = None;
    s.depends_on.clear();
    s.profiles.clear();
    if let Some(d) = &mut s.deploy {
        d.replicas = None;
    }
    // Serialising the model cannot fail: it has only string keys and plain values.
    let value = serde_json::to_value(&s).unwrap_or_default();
    let mut fields = BTreeMap::new();
    if let serde_json::Value::Object(map) = &value {
        for (k, v) in map {
            if k == "deploy" && v.as_object().is_some_and(|o| o.is_empty()) {
                continue;
            }
            fields.insert(k.clone(), sha256_hex(v.to_string().as_bytes()));
        }
    }
    let mut secret_h = Sha256::new();
    let mut config_h = Sha256::new();
    let (mut any_secret, mut any_config) = (false, false);
    for (key, bytes) in contents {
        let h = if key.starts_with("secret:") {
            any_secret = true;
            &mut secret_h
        } else {
            any_config = true;
            &mut config_h
        };
        h.update(key.as_bytes());
        h.update((bytes.len() as u64).to_le_bytes());
        h.update(bytes);
    }
    if any_secret {
        fields.insert(
            "secret contents".to_owned(),
            hex::encode(secret_h.finalize()),
        );
    }
    if any_config {
        fields.insert(
            "config contents".to_owned(),
            hex::encode(config_h.finalize()),
        );
    }
    let mut all = Sha256::new();
    for (k, v) in &fields {
        all.update(k.as_bytes());
        all.update(b"=");
        all.update(v.as_bytes());
        all.update(b"\n");
    }
    ServiceHash {
        hash: hex::encode(all.finalize()),
        fields,
    }
}

/// The fields whose hashes differ between `old` and `new` (set in one only counts).
pub fn changed_fields(
    old: &BTreeMap<String, String>,
    new: &BTreeMap<String, String>,
) -> Vec<String> {
    let mut out: Vec<String> = new
        .iter()
        .filter(|(k, v)| old.get(*k) != Some(v))
        .map(|(k, _)| k.clone())
        .chain(old.keys().filter(|k| !new.contains_key(*k)).cloned())
        .collect();
    out.sort();
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn svc(env: &[(&str, &str)]) -> Service {
        Service {
            image: Some("busybox".into()),
            environment: env
                .iter()
                .map(|(k, v)| (k.to_string(), Some(v.to_string())))
                .collect(),
            ..Service::default()
        }
    }

    #[test]
    fn incidental_fields_do_not_change_the_hash() {
        let a = svc(&[("A", "1")]);
        let mut b = a.clone();
        b.scale = Some(3);
        b.profiles = vec!["debug".into()];
        b.pull_policy = Some("always".into());
        b.depends_on.insert(
            "db".into(),
            berth_compose::model::DependsOn {
                condition: "service_started".into(),
                restart: false,
                required: true,
            },
        );
        let none = BTreeMap::new();
        assert_eq!(service_hash(&a, &none), service_hash(&b, &none));
    }

    #[test]
    fn changed_environment_is_named() {
        let none = BTreeMap::new();
        let a = service_hash(&svc(&[("A", "1")]), &none);
        let b = service_hash(&svc(&[("A", "2")]), &none);
        assert_ne!(a.hash, b.hash);
        assert_eq!(changed_fields(&a.fields, &b.fields), ["environment"]);
        let mut c = svc(&[("A", "1")]);
        c.command = Some(vec!["true".into()]);
        let c = service_hash(&c, &none);
        assert_eq!(changed_fields(&a.fields, &c.fields), ["command"]);
        assert_eq!(changed_fields(&c.fields, &a.fields), ["command"]);
    }

    #[test]
    fn secret_contents_count() {
        let s = svc(&[]);
        let mut one = BTreeMap::new();
        one.insert("secret:pw".to_owned(), b"a".to_vec());
        let mut two = BTreeMap::new();
        two.insert("secret:pw".to_owned(), b"b".to_vec());
        let (a, b) = (service_hash(&s, &one), service_hash(&s, &two));
        assert_ne!(a.hash, b.hash);
        assert_eq!(changed_fields(&a.fields, &b.fields), ["secret contents"]);
    }
}
