//! Merging stack files (and `extends`) with the Compose Specification's rules, applied to
//! the canonical JSON form of each file (short syntaxes already expanded).
//!
//! - mappings merge deeply; a null in the overriding file keeps the earlier value;
//! - sequences are appended; the ones listed in [`UNIQUE`] are de-duplicated by a key
//!   (a later entry with the same key replaces the earlier one in place);
//! - the fields in [`REPLACE`] are replaced as a whole;
//! - `!override` replaces whatever was there, `!reset` removes it.

use std::collections::HashMap;

use serde_json::{Map, Value};

use crate::source::{Node, Tag};

/// Tags found in one file, by dotted path (`services.web.ports`).
#[derive(Debug, Default, Clone)]
pub struct Tags {
    /// Paths whose value must replace the earlier one.
    pub overrides: Vec<String>,
    /// Paths whose earlier value must be removed.
    pub resets: Vec<String>,
}

impl Tags {
    /// Collects `!override` and `!reset` tags from `node`, removing `!reset` values from
    /// the tree (they only act on earlier files).
    pub fn take(node: &mut Node) -> Tags {
        let mut t = Tags::default();
        // Most files have no such tag: find out without building a path per node.
        if has_merge_tag(node) {
            collect(node, &mut String::new(), &mut t);
        }
        t
    }

    /// Whether the file has no `!override` and no `!reset`.
    pub fn is_empty(&self) -> bool {
        self.overrides.is_empty() && self.resets.is_empty()
    }

    fn is_override(&self, path: &str) -> bool {
        self.overrides.iter().any(|p| p == path)
    }

    /// The tags under `prefix` (e.g. `services.web`), re-rooted at `new_prefix`.
    pub fn rebase(&self, prefix: &str, new_prefix: &str) -> Tags {
        let f = |v: &Vec<String>| {
            v.iter()
                .filter_map(|p| {
                    p.strip_prefix(prefix)
                        .filter(|r| r.is_empty() || r.starts_with('.'))
                        .map(|r| format!("{new_prefix}{r}"))
                })
                .collect()
        };
        Tags {
            overrides: f(&self.overrides),
            resets: f(&self.resets),
        }
    }
}

fn has_merge_tag(node: &Node) -> bool {
    match &node.value {
        crate::source::Value::Map(m) => m.values().any(|e| {
            matches!(e.value.tag, Some(Tag::Reset | Tag::Override)) || has_merge_tag(&e.value)
        }),
        _ => false,
    }
}

fn collect(node: &mut Node, path: &mut String, t: &mut Tags) {
    if let crate::source::Value::Map(m) = &mut node.value {
        let mut reset_keys = Vec::new();
        for (k, e) in m.iter_mut() {
            let len = path.len();
            if !path.is_empty() {
                path.push('.');
            }
            path.push_str(k);
            match e.value.tag {
                Some(Tag::Reset) => {
                    t.resets.push(path.clone());
                    reset_keys.push(k.clone());
                }
                Some(Tag::Override) => t.overrides.push(path.clone()),
                _ => {}
            }
            collect(&mut e.value, path, t);
            path.truncate(len);
        }
        for k in reset_keys {
            m.shift_remove(&k);
        }
    }
}

/// Sequence fields whose items are unique by a key.
const UNIQUE: &[(&[&str], Indexer)] = &[
    (&["services", "*", "ports"], Indexer::Port),
    (&["services", "*", "volumes"], Indexer::Target),
    (&["services", "*", "devices"], Indexer::Target),
    (&["services", "*", "secrets"], Indexer::SecretTarget),
    (&["services", "*", "configs"], Indexer::ConfigTarget),
    (&["services", "*", "env_file"], Indexer::Path),
    (&["services", "*", "cap_add"], Indexer::Scalar),
    (&["services", "*", "cap_drop"], Indexer::Scalar),
    (&["services", "*", "dns"], Indexer::Scalar),
    (&["services", "*", "dns_opt"], Indexer::Scalar),
    (&["services", "*", "dns_search"], Indexer::Scalar),
    (&["services", "*", "expose"], Indexer::Scalar),
    (&["services", "*", "extra_hosts"], Indexer::Scalar),
    (&["services", "*", "links"], Indexer::Scalar),
    (&["services", "*", "profiles"], Indexer::Scalar),
    (&["services", "*", "tmpfs"], Indexer::Scalar),
    (&["services", "*", "security_opt"], Indexer::Scalar),
    (
        &["services", "*", "networks", "*", "aliases"],
        Indexer::Scalar,
    ),
    (
        &["services", "*", "networks", "*", "link_local_ips"],
        Indexer::Scalar,
    ),
    (&["services", "*", "build", "tags"], Indexer::Scalar),
    (&["services", "*", "build", "platforms"], Indexer::Scalar),
    (&["services", "*", "build", "extra_hosts"], Indexer::Scalar),
];

/// Fields replaced as a whole by a later file.
const REPLACE: &[&[&str]] = &[
    &["services", "*", "command"],
    &["services", "*", "entrypoint"],
    &["services", "*", "healthcheck", "test"],
    &["services", "*", "ulimits", "*"],
    &["services", "*", "build", "ulimits", "*"],
    &["services", "*", "extends"],
    &["networks", "*", "ipam", "config"],
];

#[derive(Debug, Clone, Copy)]
enum Indexer {
    Port,
    Target,
    SecretTarget,
    ConfigTarget,
    Path,
    Scalar,
}

impl Indexer {
    fn key(self, v: &Value) -> String {
        let s = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
        match self {
            Indexer::Port => format!(
                "{}:{}:{}/{}",
                s("host_ip"),
                s("published"),
                v.get("target").map(Value::to_string).unwrap_or_default(),
                s("protocol")
            ),
            Indexer::Target => s("target"),
            Indexer::SecretTarget => {
                let t = s("target");
                if t.is_empty() {
                    format!("/run/secrets/{}", s("source"))
                } else {
                    t
                }
            }
            Indexer::ConfigTarget => {
                let t = s("target");
                if t.is_empty() {
                    format!("/{}", s("source"))
                } else {
                    t
                }
            }
            Indexer::Path => s("path"),
            Indexer::Scalar => match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            },
        }
    }
}

/// Whether `path` matches `pattern` segment by segment (`*` matches any key).
fn matches(pattern: &[&str], path: &[String]) -> bool {
    pattern.len() == path.len()
        && pattern
            .iter()
            .zip(path)
            .all(|(p, seg)| *p == "*" || *p == seg.as_str())
}

/// Merges `over` into `base` at the document root (`path` empty) or at the given path.
pub fn merge(base: &mut Value, over: Value, path: &mut Vec<String>, tags: &Tags) {
    let refs: &[String] = path;
    if !tags.overrides.is_empty() && !refs.is_empty() && tags.is_override(&refs.join(".")) {
        *base = over;
        return;
    }
    // Every rule is at least three segments deep (`services.*.field`).
    let ruled = refs.len() >= 3;
    if ruled && REPLACE.iter().any(|p| matches(p, refs)) {
        if !over.is_null() {
            *base = over;
        }
        return;
    }
    let unique = if ruled {
        UNIQUE
            .iter()
            .find(|(p, _)| matches(p, refs))
            .map(|(_, i)| *i)
    } else {
        None
    };
    if refs.len() == 3 && refs[0] == "services" && refs[2] == "logging" {
        let driver = |v: &Value| v.get("driver").and_then(Value::as_str).map(str::to_owned);
        if let (Some(a), Some(b)) = (driver(base), driver(&over))
            && a != b
        {
            *base = over;
            return;
        }
    }
    match (base, over) {
        (_, Value::Null) => {}
        (Value::Object(b), Value::Object(o)) => merge_maps(b, o, path, tags),
        (Value::Array(b), Value::Array(o)) => match unique {
            Some(ix) => {
                let mut index: HashMap<String, usize> =
                    b.iter().enumerate().map(|(i, v)| (ix.key(v), i)).collect();
                for item in o {
                    let k = ix.key(&item);
                    match index.get(&k) {
                        Some(&i) => {
                            if let (Value::Object(bm), Value::Object(om)) = (&mut b[i], &item) {
                                let mut merged = bm.clone();
                                for (k2, v2) in om {
                                    merged.insert(k2.clone(), v2.clone());
                                }
                                b[i] = Value::Object(merged);
                            } else {
                                b[i] = item;
                            }
                        }
                        None => {
                            index.insert(k, b.len());
                            b.push(item);
                        }
                    }
                }
            }
            None => b.extend(o),
        },
        (b, o) => *b = o,
    }
}

fn merge_maps(
    base: &mut Map<String, Value>,
    over: Map<String, Value>,
    path: &mut Vec<String>,
    tags: &Tags,
) {
    for (k, v) in over {
        match base.get_mut(&k) {
            Some(b) => {
                path.push(k);
                merge(b, v, path, tags);
                path.pop();
            }
            None => {
                base.insert(k, v);
            }
        }
    }
}

/// Applies `!reset` paths of a later file to the merged result so far.
pub fn apply_resets(base: &mut Value, tags: &Tags) {
    for p in &tags.resets {
        let segs: Vec<&str> = p.split('.').collect();
        let Some((last, parents)) = segs.split_last() else {
            continue;
        };
        let mut cur = Some(&mut *base);
        for s in parents {
            cur = cur.and_then(|c| c.get_mut(*s));
        }
        if let Some(m) = cur.and_then(Value::as_object_mut) {
            m.shift_remove(*last);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn m(mut a: Value, b: Value) -> Value {
        merge(&mut a, b, &mut Vec::new(), &Tags::default());
        a
    }

    #[test]
    fn rules() {
        let a = json!({"services": {"web": {
            "command": ["a", "b"], "environment": {"A": "1", "B": "2"},
            "ports": [{"target": 80, "published": "8080", "protocol": "tcp"}],
            "volumes": [{"type": "bind", "source": "/a", "target": "/data"}],
            "dns": ["1.1.1.1"], "cap_add": ["NET_ADMIN"]}}});
        let b = json!({"services": {"web": {
            "command": ["c"], "environment": {"B": "3"},
            "ports": [{"target": 80, "published": "8080", "protocol": "tcp"}, {"target": 81, "protocol": "tcp"}],
            "volumes": [{"type": "bind", "source": "/b", "target": "/data"}],
            "dns": ["1.1.1.1", "8.8.8.8"], "cap_add": ["SYS_ADMIN"]}}});
        let r = m(a, b);
        let web = &r["services"]["web"];
        assert_eq!(web["command"], json!(["c"]));
        assert_eq!(web["environment"], json!({"A": "1", "B": "3"}));
        assert_eq!(web["ports"].as_array().unwrap().len(), 2);
        assert_eq!(
            web["volumes"],
            json!([{"type": "bind", "source": "/b", "target": "/data"}])
        );
        assert_eq!(web["dns"], json!(["1.1.1.1", "8.8.8.8"]));
        assert_eq!(web["cap_add"], json!(["NET_ADMIN", "SYS_ADMIN"]));
    }

    #[test]
    fn override_and_reset_tags() {
        let mut node = crate::source::parse(
            "services:\n  web:\n    ports: !override\n      - 1\n    dns: !reset []\n",
            std::path::Path::new("o.yaml"),
        )
        .unwrap();
        let tags = Tags::take(&mut node);
        assert_eq!(tags.overrides, vec!["services.web.ports".to_owned()]);
        assert_eq!(tags.resets, vec!["services.web.dns".to_owned()]);
        assert!(
            node.get("services")
                .unwrap()
                .get("web")
                .unwrap()
                .get("dns")
                .is_none()
        );
        let mut a =
            json!({"services": {"web": {"ports": [{"target": 1}, {"target": 2}], "dns": ["x"]}}});
        apply_resets(&mut a, &tags);
        merge(
            &mut a,
            json!({"services": {"web": {"ports": [{"target": 3}]}}}),
            &mut Vec::new(),
            &tags,
        );
        assert_eq!(a, json!({"services": {"web": {"ports": [{"target": 3}]}}}));
    }

    #[test]
    fn logging_driver_change_replaces_options() {
        let r = m(
            json!({"services": {"a": {"logging": {"driver": "json-file", "options": {"x": "1"}}}}}),
            json!({"services": {"a": {"logging": {"driver": "local", "options": {"y": "2"}}}}}),
        );
        assert_eq!(
            r["services"]["a"]["logging"],
            json!({"driver": "local", "options": {"y": "2"}})
        );
    }
}
