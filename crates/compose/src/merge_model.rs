//! Merging decoded files in the model, converting to JSON only what both sides set.
//!
//! The rules live in one place, [`crate::merge`], on the JSON form. Turning a whole
//! project into JSON and back to merge it costs more than parsing it, so this module
//! applies those same rules field by field: a field the later file does not set is kept,
//! a field only the later file sets is moved over, and only the fields both set go
//! through JSON (both values, [`merge`] at their path, and back through the model's own
//! deserializer). "Sets" means "appears in the JSON form": every field's
//! `skip_serializing_if` is mirrored by [`Present`] (the four kinds the model uses).
//!
//! Files with `!reset`/`!override` tags take the JSON path, which handles them.

use indexmap::IndexMap;
use serde::Serialize;
use serde_json::{Map, Value};

use crate::assemble::StackError;
use crate::diagnostic::Diagnostic;
use crate::merge::{Tags, merge};
use crate::model::{Project, Service};

/// Whether a field appears in the JSON form of the model (the negation of its
/// `skip_serializing_if`).
trait Present {
    fn present(&self) -> bool;
}

impl<T> Present for Option<T> {
    fn present(&self) -> bool {
        self.is_some()
    }
}

impl<T> Present for Vec<T> {
    fn present(&self) -> bool {
        !self.is_empty()
    }
}

impl<K, V, S> Present for IndexMap<K, V, S> {
    fn present(&self) -> bool {
        !self.is_empty()
    }
}

impl Present for bool {
    fn present(&self) -> bool {
        *self
    }
}

fn encode(e: serde_json::Error) -> Diagnostic {
    Diagnostic::new(StackError::Encode(e.to_string()))
}

fn json<T: Serialize>(v: &T) -> Result<Value, Diagnostic> {
    serde_json::to_value(v).map_err(encode)
}

/// The fields both sides set, in JSON, to be merged by the JSON rules.
#[derive(Default)]
struct Both {
    base: Map<String, Value>,
    over: Map<String, Value>,
}

impl Both {
    /// Merges the collected fields at `path` and decodes them into a `T` whose other
    /// fields are defaults; `None` when there were none.
    fn merged<T: serde::de::DeserializeOwned>(
        self,
        path: &mut Vec<String>,
    ) -> Result<Option<(T, Vec<String>)>, Diagnostic> {
        if self.over.is_empty() {
            return Ok(None);
        }
        let keys: Vec<String> = self.over.keys().cloned().collect();
        let mut base = Value::Object(self.base);
        merge(&mut base, Value::Object(self.over), path, &Tags::default());
        let partial = serde_json::from_value(base).map_err(encode)?;
        Ok(Some((partial, keys)))
    }
}

/// For each listed field of the later value: absent → keep; only later → move; both →
/// collect both JSON forms in `both`.
macro_rules! split_fields {
    ($base:expr, $over:ident, $both:ident, [$($f:ident),* $(,)?]) => {
        $(
            if $over.$f.present() {
                if $base.$f.present() {
                    $both.base.insert(stringify!($f).to_owned(), json(&$base.$f)?);
                    $both.over.insert(stringify!($f).to_owned(), json(&$over.$f)?);
                } else {
                    $base.$f = $over.$f;
                }
            }
        )*
    };
}

/// Moves the merged fields (named in `keys`) from `partial` into `base`.
macro_rules! take_fields {
    ($base:expr, $partial:ident, $keys:ident, [$($f:ident),* $(,)?]) => {
        for key in &$keys {
            match key.as_str() {
                $(stringify!($f) => $base.$f = std::mem::take(&mut $partial.$f),)*
                _ => {}
            }
        }
    };
}

/// Every field of [`Service`] but `extensions`, for the macros above.
macro_rules! with_service_fields {
    ($m:ident ! ($($args:tt)*)) => {
        $m!($($args)* [
            annotations, attach, build, blkio_config, cap_add, cap_drop, cgroup, cgroup_parent,
            command, configs, container_name, cpu_count, cpu_percent, cpu_shares, cpu_period,
            cpu_quota, cpu_rt_period, cpu_rt_runtime, cpus, cpuset, credential_spec,
            depends_on, deploy, develop, device_cgroup_rules, devices, dns, dns_opt,
            dns_search, domainname, entrypoint, env_file, environment, expose, extends,
            external_links, extra_hosts, gpus, group_add, healthcheck, hostname, image, init,
            ipc, isolation, label_file, labels, links, logging, mac_address, mem_limit,
            mem_reservation, mem_swappiness, memswap_limit, models, network_mode, networks,
            oom_kill_disable, oom_score_adj, pid, pids_limit, platform, ports, post_start,
            pre_stop, privileged, profiles, provider, pull_policy, pull_refresh_after,
            read_only, restart, runtime, scale, secrets, security_opt, shm_size, stdin_open,
            stop_grace_period, stop_signal, storage_opt, sysctls, tmpfs, tty, ulimits,
            use_api_socket, user, userns_mode, uts, volumes, volumes_from, working_dir,
        ])
    };
}

/// Merges `over`, a later file without merge tags, into `base`, as
/// [`merge`](crate::merge::merge) would on their JSON forms.
pub(crate) fn merge_projects(base: &mut Project, over: Project) -> Result<(), Diagnostic> {
    // Every field named, so a new field cannot be forgotten here.
    let Project {
        name,
        working_dir: _,
        services,
        networks,
        volumes,
        secrets,
        configs,
        models,
        disabled_services: _,
        extensions,
    } = over;
    let mut path = Vec::new();
    if !name.is_empty() {
        base.name = name;
    }
    for (name, svc) in services {
        match base.services.get_mut(&name) {
            Some(b) => {
                path.extend(["services".to_owned(), name]);
                merge_service(b, svc, &mut path)?;
                path.clear();
            }
            None => {
                base.services.insert(name, svc);
            }
        }
    }
    let mut both = Both::default();
    let over = Resources {
        networks,
        volumes,
        secrets,
        configs,
        models,
    };
    let mut resources = Resources {
        networks: std::mem::take(&mut base.networks),
        volumes: std::mem::take(&mut base.volumes),
        secrets: std::mem::take(&mut base.secrets),
        configs: std::mem::take(&mut base.configs),
        models: std::mem::take(&mut base.models),
    };
    split_fields!(
        resources,
        over,
        both,
        [networks, volumes, secrets, configs, models]
    );
    if let Some((mut partial, keys)) = both.merged::<Project>(&mut path)? {
        take_fields!(
            resources,
            partial,
            keys,
            [networks, volumes, secrets, configs, models]
        );
    }
    base.networks = resources.networks;
    base.volumes = resources.volumes;
    base.secrets = resources.secrets;
    base.configs = resources.configs;
    base.models = resources.models;
    merge_extensions(&mut base.extensions, extensions, &mut path);
    Ok(())
}

/// The top-level resource maps, moved out of a project while they are merged.
struct Resources {
    networks: IndexMap<String, crate::model::Network>,
    volumes: IndexMap<String, crate::model::Volume>,
    secrets: IndexMap<String, crate::model::FileObject>,
    configs: IndexMap<String, crate::model::FileObject>,
    models: IndexMap<String, crate::model::Model>,
}

/// Merges one service of a later file into the earlier one; `path` is
/// `services.<name>`.
fn merge_service(
    base: &mut Service,
    mut over: Service,
    path: &mut Vec<String>,
) -> Result<(), Diagnostic> {
    let mut both = Both::default();
    with_service_fields!(split_fields!(base, over, both,));
    let extensions = std::mem::take(&mut over.extensions);
    // Every field must be listed above: this fails to compile when one is added to the
    // model and not to the list.
    macro_rules! exhaustive {
        ([$($f:ident),* $(,)?]) => {
            let Service { $($f: _,)* extensions: _ } = over;
        };
    }
    with_service_fields!(exhaustive!());
    if let Some((mut partial, keys)) = both.merged::<Service>(path)? {
        with_service_fields!(take_fields!(base, partial, keys,));
    }
    merge_extensions(&mut base.extensions, extensions, path);
    Ok(())
}

/// `x-*` fields: already JSON, merged key by key.
fn merge_extensions(
    base: &mut IndexMap<String, Value>,
    over: IndexMap<String, Value>,
    path: &mut Vec<String>,
) {
    for (k, v) in over {
        match base.get_mut(&k) {
            Some(b) => {
                path.push(k);
                merge(b, v, path, &Tags::default());
                path.pop();
            }
            None => {
                base.insert(k, v);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::parse;

    fn project(yaml: &str) -> Project {
        let node = parse(yaml, std::path::Path::new("t.yaml")).unwrap();
        crate::decode::from_node(&node, &crate::diagnostic::FieldPath::root()).unwrap()
    }

    /// The JSON path: both files to JSON, merged, back to the model.
    fn by_json(a: &Project, b: &Project) -> Project {
        let mut acc = serde_json::to_value(a).unwrap();
        merge(
            &mut acc,
            serde_json::to_value(b).unwrap(),
            &mut Vec::new(),
            &Tags::default(),
        );
        serde_json::from_value(acc).unwrap()
    }

    #[test]
    fn field_by_field_equals_the_json_rules() {
        let a = project(
            r#"
name: one
services:
  web:
    image: web:1
    command: [a, b]
    entrypoint: sh
    environment: [A=1, B=2]
    labels: {x: "1"}
    ports: ["8080:80", "127.0.0.1:9000:90/udp"]
    volumes: [data:/data, ./src:/src:ro]
    dns: [1.1.1.1]
    cap_add: [NET_ADMIN]
    read_only: true
    healthcheck: {test: [CMD, a], interval: 10s, retries: 3}
    logging: {driver: json-file, options: {max-size: 10m}}
    ulimits: {nofile: {soft: 10, hard: 20}, nproc: 5}
    depends_on: {db: {condition: service_healthy}}
    networks: {front: {aliases: [w]}}
    deploy: {resources: {limits: {memory: 64m}}}
    build: {context: ., args: {A: "1"}}
    x-a: {k: 1, l: [1]}
  db:
    image: db
networks:
  front: {driver: bridge}
volumes:
  data: {}
x-top: {a: 1}
"#,
        );
        let b = project(
            r#"
name: two
services:
  web:
    command: c
    environment: {B: "3", C: "4"}
    ports: ["8080:80", "81"]
    volumes: [other:/data]
    dns: [1.1.1.1, 8.8.8.8]
    cap_add: [SYS_ADMIN]
    healthcheck: {test: [CMD, b], timeout: 1s}
    logging: {driver: local, options: {max-file: "2"}}
    ulimits: {nofile: 30}
    depends_on: {cache: {condition: service_started}}
    networks: {back: {}}
    deploy: {resources: {limits: {cpus: "0.5"}}}
    build: {args: {B: "2"}, target: prod}
    x-a: {m: 2, l: [2]}
    privileged: true
  cache:
    image: redis
networks:
  front: {driver_opts: {a: b}}
  back: {}
volumes:
  other: {}
x-top: {b: 2}
x-new: 1
"#,
        );
        let expected = by_json(&a, &b);
        let mut got = a.clone();
        merge_projects(&mut got, b.clone()).unwrap();
        assert_eq!(got, expected);
        assert_eq!(got.name, "two");
        let web = &got.services["web"];
        assert_eq!(web.command.as_deref(), Some(&["c".to_owned()][..]));
        assert_eq!(web.ports.len(), 3);
        assert_eq!(web.cap_add, vec!["NET_ADMIN", "SYS_ADMIN"]);
        assert!(web.read_only && web.privileged);

        // And the other way round.
        let expected = by_json(&b, &a);
        let mut got = b;
        merge_projects(&mut got, a).unwrap();
        assert_eq!(got, expected);
    }
}
