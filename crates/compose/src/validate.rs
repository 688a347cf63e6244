//! Cross-reference checks on the merged project: every network, volume, secret, config
//! and service a service refers to must exist (and be enabled), every service needs an
//! image or a build, and `depends_on` must not form a cycle (reported in full, e.g.
//! `a -> b -> c -> a`, found with petgraph's strongly connected components).

use petgraph::graphmap::DiGraphMap;

use crate::diagnostic::{Diagnostic, FieldPath, Location};
use crate::model::{Project, VolumeType};

/// Checks `project`; `locate` maps a field path to its position in the files.
pub fn check(
    project: &Project,
    locate: &dyn Fn(&FieldPath) -> Option<Location>,
) -> Vec<Diagnostic> {
    let mut errs = Vec::new();
    let mut err = |path: FieldPath, msg: String| {
        errs.push(Diagnostic::new(msg).at(locate(&path)).with_path(path));
    };
    for (name, svc) in &project.services {
        let p = |k: &[&str]| {
            let mut v = vec!["services", name.as_str()];
            v.extend_from_slice(k);
            FieldPath::keys(&v)
        };
        if svc.image.is_none() && svc.build.is_none() && svc.provider.is_none() {
            err(
                p(&[]),
                format!("service `{name}` has neither an image nor a build context"),
            );
        }
        if svc.container_name.is_some() && svc.replicas() > 1 {
            err(
                p(&["container_name"]),
                format!(
                    "service `{name}` sets container_name, so it cannot run {} replicas",
                    svc.replicas()
                ),
            );
        }
        for net in svc.networks.keys() {
            if net != "default" && !project.networks.contains_key(net) {
                err(
                    p(&["networks", net]),
                    format!("service `{name}` refers to undefined network `{net}`"),
                );
            }
        }
        if svc.network_mode.is_some()
            && !svc.networks.is_empty()
            && !svc.networks.contains_key("default")
        {
            err(
                p(&["network_mode"]),
                format!("service `{name}`: network_mode and networks cannot be combined"),
            );
        }
        for (i, v) in svc.volumes.iter().enumerate() {
            if v.kind == VolumeType::Volume
                && let Some(src) = &v.source
                && !project.volumes.contains_key(src)
            {
                err(
                    p(&["volumes"]).index(i),
                    format!("service `{name}` refers to undefined volume `{src}`"),
                );
            }
        }
        for (i, s) in svc.secrets.iter().enumerate() {
            if !project.secrets.contains_key(&s.source) {
                err(
                    p(&["secrets"]).index(i),
                    format!("service `{name}` refers to undefined secret `{}`", s.source),
                );
            }
        }
        for (i, c) in svc.configs.iter().enumerate() {
            if !project.configs.contains_key(&c.source) {
                err(
                    p(&["configs"]).index(i),
                    format!("service `{name}` refers to undefined config `{}`", c.source),
                );
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
                format!("service `{name}` depends on `{dep}`, which is disabled by its profiles")
            } else {
                format!("service `{name}` depends on undefined service `{dep}`")
            };
            err(p(&["depends_on", dep]), why);
        }
        let service_ref = |s: &str| s.strip_prefix("service:").map(str::to_owned);
        if let Some(target) = svc.network_mode.as_deref().and_then(service_ref)
            && !project.services.contains_key(&target)
        {
            err(
                p(&["network_mode"]),
                format!("service `{name}` uses the network of undefined service `{target}`"),
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
                    format!("service `{name}` takes volumes from undefined service `{target}`"),
                );
            }
        }
        for (i, l) in svc.links.iter().enumerate() {
            let target = l.split(':').next().unwrap_or_default();
            if !project.services.contains_key(target) {
                err(
                    p(&["links"]).index(i),
                    format!("service `{name}` links to undefined service `{target}`"),
                );
            }
        }
    }
    if let Some(cycle) = dependency_cycle(project) {
        let first = cycle.first().cloned().unwrap_or_default();
        let second = cycle.get(1).cloned().unwrap_or_default();
        let path = FieldPath::keys(&["services", &first, "depends_on", &second]);
        errs.push(
            Diagnostic::new(format!("dependency cycle: {}", cycle.join(" -> ")))
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
