//! Which parsed fields berth does not act on yet. The loader keeps them (so `berth
//! config` shows them and the hash covers them); the CLI warns once per field.

use indexmap::IndexMap;

use crate::model::Project;

/// Service fields (dotted, below `services.*`) that are parsed and kept but not applied.
pub const NOT_APPLIED: &[&str] = &[
    "blkio_config",
    "cgroup_parent",
    "cpu_count",
    "cpu_percent",
    "cpu_rt_period",
    "cpu_rt_runtime",
    "credential_spec",
    "deploy.endpoint_mode",
    "deploy.placement",
    "deploy.rollback_config",
    "deploy.update_config",
    "device_cgroup_rules",
    "external_links",
    "gpus",
    "isolation",
    "links",
    "mac_address",
    "models",
    "platform",
    "post_start",
    "pre_stop",
    "provider",
    "pull_refresh_after",
    "runtime",
    "storage_opt",
    "use_api_socket",
    "userns_mode",
    "volumes_from",
];

/// For each not-yet-applied field set by some service, the services that set it.
pub fn not_applied(project: &Project) -> IndexMap<&'static str, Vec<String>> {
    let mut out: IndexMap<&'static str, Vec<String>> = IndexMap::new();
    for (name, svc) in &project.services {
        let Ok(v) = serde_json::to_value(svc) else {
            continue;
        };
        for field in NOT_APPLIED {
            let mut cur = Some(&v);
            for seg in field.split('.') {
                cur = cur.and_then(|c| c.get(seg));
            }
            if cur.is_some() {
                out.entry(field).or_default().push(name.clone());
            }
        }
    }
    out
}
