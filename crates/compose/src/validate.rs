//! Cross-reference checks on the merged project: every network, volume, secret, config
//! and service a service refers to must exist (and be enabled), every service needs an
//! image or a build, and `depends_on` must not form a cycle (reported in full, e.g.
//! `a -> b -> c -> a`, found with petgraph's strongly connected components).

use petgraph::graphmap::DiGraphMap;

use crate::diagnostic::{Diagnostic, FieldPath, Location};
use crate::model::{Project, VolumeType};

/// A broken reference or an impossible combination in the merged project.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValidateError {
    /// No `image`, `build` or `provider`.
    #[error("service `{0}` has neither an image nor a build context")]
    NoImage(String),
    /// `container_name` with several replicas.
    #[error("service `{service}` sets container_name, so it cannot run {replicas} replicas")]
    ContainerNameWithReplicas {
        /// The service.
        service: String,
        /// Its replica count.
        replicas: u64,
    },
    /// `network_mode` together with `networks`.
    #[error("service `{0}`: network_mode and networks cannot be combined")]
    NetworkModeWithNetworks(String),
    /// A reference to a resource that is not defined.
    #[error("service `{service}` refers to undefined {kind} `{name}`")]
    Undefined {
        /// The referring service.
        service: String,
        /// `network`, `volume`, `secret` or `config`.
        kind: &'static str,
        /// The missing resource.
        name: String,
    },
    /// A reference to a service that is not defined (`depends_on`, `links`, ...).
    #[error("service `{service}` {via} undefined service `{target}`")]
    UndefinedService {
        /// The referring service.
        service: String,
        /// How it refers: `depends on`, `links to`, ...
        via: &'static str,
        /// The missing service.
        target: String,
    },
    /// A required dependency switched off by profiles.
    #[error("service `{service}` depends on `{target}`, which is disabled by its profiles")]
    DisabledDependency {
        /// The dependent service.
        service: String,
        /// The disabled dependency.
        target: String,
    },
    /// `depends_on` loops (`a -> b -> a`).
    #[error("dependency cycle: {}", .0.join(" -> "))]
    Cycle(Vec<String>),
}

/// Checks `project`; `locate` maps a field path to its position in the files.
pub fn check(
    project: &Project,
    locate: &dyn Fn(&FieldPath) -> Option<Location>,
) -> Vec<Diagnostic> {
    let mut errs = Vec::new();
    let mut err = |path: FieldPath, e: ValidateError| {
        errs.push(Diagnostic::new(e).at(locate(&path)).with_path(path));
    };
    for (name, svc) in &project.services {
        let p = |k: &[&str]| {
            let mut v = vec!["services", name.as_str()];
            v.extend_from_slice(k);
            FieldPath::keys(&v)
        };
        let undefined = |kind: &'static str, what: &str| ValidateError::Undefined {
            service: name.clone(),
            kind,
            name: what.to_owned(),
        };
        let undefined_service = |via: &'static str, target: &str| ValidateError::UndefinedService {
            service: name.clone(),
            via,
            target: target.to_owned(),
        };
        if svc.image.is_none() && svc.build.is_none() && svc.provider.is_none() {
            err(p(&[]), ValidateError::NoImage(name.clone()));
        }
        if svc.container_name.is_some() && svc.replicas() > 1 {
            err(
                p(&["container_name"]),
                ValidateError::ContainerNameWithReplicas {
                    service: name.clone(),
                    replicas: svc.replicas(),
                },
            );
        }
        for net in svc.networks.keys() {
            if net != "default" && !project.networks.contains_key(net) {
                err(p(&["networks", net]), undefined("network", net));
            }
        }
        if svc.network_mode.is_some()
            && !svc.networks.is_empty()
            && !svc.networks.contains_key("default")
        {
            err(
                p(&["network_mode"]),
                ValidateError::NetworkModeWithNetworks(name.clone()),
            );
        }
        for (i, v) in svc.volumes.iter().enumerate() {
            if v.kind == VolumeType::Volume
                && let Some(src) = &v.source
                && !project.volumes.contains_key(src)
            {
                err(p(&["volumes"]).index(i), undefined("volume", src));
            }
        }
        for (i, s) in svc.secrets.iter().enumerate() {
            if !project.secrets.contains_key(&s.source) {
                err(p(&["secrets"]).index(i), undefined("secret", &s.source));
            }
        }
        for (i, c) in svc.configs.iter().enumerate() {
            if !project.configs.contains_key(&c.source) {
                err(p(&["configs"]).index(i), undefined("config", &c.source));
            }
        }
        for (dep, d) in &svc.depends_on {
            if project.services.contains_key(dep) {
                continue;
            }
            let disabled = project.disabled_services.contains_key(dep);
            if disabled && !d.required {
                // An optional dependency switched off by profiles is kept (as Compose
                // does); the engine skips it.
                continue;
            }
            let why = if disabled {
                ValidateError::DisabledDependency {
                    service: name.clone(),
                    target: dep.clone(),
                }
            } else {
                undefined_service("depends on", dep)
            };
            err(p(&["depends_on", dep]), why);
        }
        if let Some(target) = svc
            .network_mode
            .as_deref()
            .and_then(|m| m.strip_prefix("service:"))
            && !project.services.contains_key(target)
        {
            err(
                p(&["network_mode"]),
                undefined_service("uses the network of", target),
            );
        }
        for (i, vf) in svc.volumes_from.iter().enumerate() {
            if vf.starts_with("container:") {
                continue;
            }
            let target = vf.split(':').next().unwrap_or_default();
            if !project.services.contains_key(target) {
                err(
                    p(&["volumes_from"]).index(i),
                    undefined_service("takes volumes from", target),
                );
            }
        }
        for (i, l) in svc.links.iter().enumerate() {
            let target = l.split(':').next().unwrap_or_default();
            if !project.services.contains_key(target) {
                err(
                    p(&["links"]).index(i),
                    undefined_service("links to", target),
                );
            }
        }
    }
    if let Some(cycle) = dependency_cycle(project) {
        let first = cycle.first().cloned().unwrap_or_default();
        let second = cycle.get(1).cloned().unwrap_or_default();
        let path = FieldPath::keys(&["services", &first, "depends_on", &second]);
        errs.push(
            Diagnostic::new(ValidateError::Cycle(cycle))
                .at(locate(&path))
                .with_path(path),
        );
    }
    errs
}

/// A `depends_on` cycle as a closed walk (`a -> b -> a`), if there is one.
pub fn dependency_cycle(project: &Project) -> Option<Vec<String>> {
    let names: Vec<&str> = project.services.keys().map(String::as_str).collect();
    let mut g: DiGraphMap<usize, ()> = DiGraphMap::new();
    for i in 0..names.len() {
        g.add_node(i);
    }
    for (i, svc) in project.services.values().enumerate() {
        for dep in svc.depends_on.keys() {
            if let Some(j) = project.services.get_index_of(dep) {
                g.add_edge(i, j, ());
            }
        }
    }
    for scc in petgraph::algo::tarjan_scc(&g) {
        let start = *scc.iter().min()?;
        if scc.len() == 1 && !g.contains_edge(start, start) {
            continue;
        }
        // Shortest walk inside the component from its smallest node back to it.
        let mut parent: std::collections::HashMap<usize, usize> = std::collections::HashMap::new();
        let mut queue = std::collections::VecDeque::from([start]);
        let mut last = None;
        'search: while let Some(cur) = queue.pop_front() {
            for n in g.neighbors(cur) {
                if !scc.contains(&n) {
                    continue;
                }
                if n == start {
                    last = Some(cur);
                    break 'search;
                }
                if let std::collections::hash_map::Entry::Vacant(e) = parent.entry(n) {
                    e.insert(cur);
                    queue.push_back(n);
                }
            }
        }
        let mut c = last?;
        let mut walk = vec![c];
        while c != start {
            c = *parent.get(&c)?;
            walk.push(c);
        }
        walk.reverse();
        walk.push(start);
        return Some(walk.into_iter().map(|i| names[i].to_owned()).collect());
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{DependsOn, Service};

    fn dep() -> DependsOn {
        DependsOn {
            condition: "service_started".into(),
            restart: false,
            required: true,
        }
    }

    #[test]
    fn cycle_is_reported_in_full() {
        let mut p = Project::default();
        for (n, d) in [("a", "b"), ("b", "c"), ("c", "a"), ("d", "a")] {
            let mut s = Service {
                image: Some("x".into()),
                ..Service::default()
            };
            s.depends_on.insert(d.into(), dep());
            p.services.insert(n.into(), s);
        }
        assert_eq!(
            dependency_cycle(&p),
            Some(vec![
                "a".to_owned(),
                "b".to_owned(),
                "c".to_owned(),
                "a".to_owned()
            ])
        );
        let errs = check(&p, &|_| None);
        assert_eq!(errs.len(), 1);
        assert_eq!(errs[0].message, "dependency cycle: a -> b -> c -> a");
        assert_eq!(
            *errs[0].kind,
            crate::diagnostic::Kind::Validate(ValidateError::Cycle(
                ["a", "b", "c", "a"].map(String::from).to_vec()
            ))
        );
    }

    #[test]
    fn self_dependency_is_a_cycle() {
        let mut p = Project::default();
        let mut s = Service::default();
        s.depends_on.insert("a".into(), dep());
        p.services.insert("a".into(), s);
        assert_eq!(
            dependency_cycle(&p),
            Some(vec!["a".to_owned(), "a".to_owned()])
        );
    }
}
