//! Which parsed fields berth does not act on yet. The loader keeps them (so `berth
//! config` shows them and the hash covers them); the CLI warns once per field.

use indexmap::IndexMap;

use crate::model::{Project, Service};

/// Tells whether a service sets a field.
pub type IsSet = fn(&Service) -> bool;

/// Service fields (dotted, below `services.*`) that are parsed and kept but not applied,
/// each with a test for "set in this service".
pub const NOT_APPLIED: &[(&str, IsSet)] = &[
    ("blkio_config", |s| s.blkio_config.is_some()),
    ("cgroup_parent", |s| s.cgroup_parent.is_some()),
    ("cpu_count", |s| s.cpu_count.is_some()),
    ("cpu_percent", |s| s.cpu_percent.is_some()),
    ("cpu_rt_period", |s| s.cpu_rt_period.is_some()),
    ("cpu_rt_runtime", |s| s.cpu_rt_runtime.is_some()),
    ("credential_spec", |s| s.credential_spec.is_some()),
    ("deploy.endpoint_mode", |s| {
        s.deploy.as_ref().is_some_and(|d| d.endpoint_mode.is_some())
    }),
    ("deploy.placement", |s| {
        s.deploy.as_ref().is_some_and(|d| d.placement.is_some())
    }),
    ("device_cgroup_rules", |s| !s.device_cgroup_rules.is_empty()),
    ("external_links", |s| !s.external_links.is_empty()),
    ("gpus", |s| !s.gpus.is_empty()),
    ("isolation", |s| s.isolation.is_some()),
    ("links", |s| !s.links.is_empty()),
    ("mac_address", |s| s.mac_address.is_some()),
    ("models", |s| !s.models.is_empty()),
    ("platform", |s| s.platform.is_some()),
    ("provider", |s| s.provider.is_some()),
    ("pull_refresh_after", |s| s.pull_refresh_after.is_some()),
    ("runtime", |s| s.runtime.is_some()),
    ("storage_opt", |s| !s.storage_opt.is_empty()),
    ("use_api_socket", |s| s.use_api_socket),
    ("userns_mode", |s| s.userns_mode.is_some()),
    ("volumes_from", |s| !s.volumes_from.is_empty()),
];

/// For each not-yet-applied field set by some service, the services that set it.
pub fn not_applied(project: &Project) -> IndexMap<&'static str, Vec<String>> {
    let mut out: IndexMap<&'static str, Vec<String>> = IndexMap::new();
    for (name, svc) in &project.services {
        for (field, is_set) in NOT_APPLIED {
            if is_set(svc) {
                out.entry(field).or_default().push(name.clone());
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_each_field_with_its_services() {
        let mut p = Project::default();
        for n in ["a", "b"] {
            p.services.insert(
                n.into(),
                Service {
                    runtime: Some("runc".into()),
                    links: if n == "b" { vec!["a".into()] } else { vec![] },
                    ..Service::default()
                },
            );
        }
        let r = not_applied(&p);
        assert_eq!(
            r.get("runtime"),
            Some(&vec!["a".to_owned(), "b".to_owned()])
        );
        assert_eq!(r.get("links"), Some(&vec!["b".to_owned()]));
        assert_eq!(r.len(), 2);
    }
}
