//! Canonical form: relative paths made absolute (per file, against the directory that
//! file's paths are relative to), then, on the merged project, `env_file`s read into
//! `environment`, defaults filled in (default network, build Dockerfile, resource
//! names), unused resources dropped and maps sorted, as `docker compose config` shows.

use std::path::{Path, PathBuf};

use indexmap::IndexMap;

use crate::diagnostic::{Diagnostic, FieldPath, Location};
use crate::discover::absolute;
use crate::model::{Network, Project, Service, VolumeType};

/// Makes every relative path of `project` (one file's content) absolute against `base`.
pub fn resolve_paths(project: &mut Project, base: &Path, home: Option<&str>) {
    let abs = |s: &str| -> String {
        if let Some(rest) = s.strip_prefix('~')
            && let Some(h) = home
            && (rest.is_empty() || rest.starts_with('/'))
        {
            return format!("{h}{rest}");
        }
        absolute(base, Path::new(s)).to_string_lossy().into_owned()
    };
    for svc in project.services.values_mut() {
        if let Some(b) = &mut svc.build {
            let ctx = b.context.get_or_insert_with(|| ".".to_owned());
            if !is_remote(ctx) {
                *ctx = abs(ctx);
            }
            for v in b.additional_contexts.values_mut() {
                if !is_remote(v) && !v.starts_with("docker-image://") && !v.starts_with("target:") {
                    *v = abs(v);
                }
            }
        }
        for f in &mut svc.env_file {
            f.path = abs(&f.path);
        }
        for f in &mut svc.label_file {
            *f = abs(f);
        }
        for v in &mut svc.volumes {
            if v.kind == VolumeType::Bind
                && let Some(s) = &mut v.source
            {
                *s = abs(s);
            }
        }
        if let Some(e) = &mut svc.extends
            && let Some(f) = &mut e.file
        {
            *f = abs(f);
        }
        if let Some(d) = &mut svc.develop {
            for w in &mut d.watch {
                w.path = abs(&w.path);
            }
        }
    }
    for o in project
        .secrets
        .values_mut()
        .chain(project.configs.values_mut())
    {
        if let Some(f) = &mut o.file {
            *f = abs(f);
        }
    }
}

fn is_remote(s: &str) -> bool {
    s.contains("://") || s.starts_with("git@") || s.starts_with("github.com/")
}

/// Fills in environment from `env_file`s and the process environment, and per-service
/// defaults. `env` is the interpolation environment (process environment over `.env`).
pub fn service_defaults(
    name: &str,
    svc: &mut Service,
    env: &IndexMap<String, String>,
    locate: &dyn Fn(&FieldPath) -> Option<Location>,
) -> Result<(), Diagnostic> {
    if !svc.env_file.is_empty() {
        let mut from_files: IndexMap<String, Option<String>> = IndexMap::new();
        for (i, f) in svc.env_file.iter().enumerate() {
            let path = PathBuf::from(&f.path);
            if !path.exists() {
                if f.required {
                    let p = FieldPath::keys(&["services", name, "env_file"]);
                    return Err(
                        Diagnostic::new(crate::discover::DiscoverError::EnvFileNotFound(path))
                            .at(locate(&p.index(i)).or_else(|| locate(&p)))
                            .with_path(p),
                    );
                }
                continue;
            }
            let vars = if f.format.as_deref() == Some("raw") {
                read_raw(&path)?
            } else {
                // Values may refer to the environment, then to earlier env files.
                let mut lookup: IndexMap<String, String> = from_files
                    .iter()
                    .filter_map(|(k, v)| v.clone().map(|v| (k.clone(), v)))
                    .collect();
                lookup.extend(env.iter().map(|(k, v)| (k.clone(), v.clone())));
                crate::env::read(&path, &lookup)?
            };
            for (k, v) in vars {
                from_files.insert(k, Some(v));
            }
        }
        for (k, v) in std::mem::take(&mut svc.environment) {
            from_files.insert(k, v);
        }
        svc.environment = from_files;
        svc.env_file.clear();
    }
    if !svc.label_file.is_empty() {
        let mut labels: IndexMap<String, String> = IndexMap::new();
        for f in &svc.label_file {
            labels.extend(read_raw(Path::new(f))?);
        }
        labels.extend(std::mem::take(&mut svc.labels));
        svc.labels = labels;
        svc.label_file.clear();
    }
    if svc.pull_policy.as_deref() == Some("if_not_present") {
        svc.pull_policy = Some("missing".to_owned());
    }
    let keys: Vec<String> = svc
        .environment
        .iter()
        .filter(|(_, v)| v.is_none())
        .map(|(k, _)| k.clone())
        .collect();
    for k in keys {
        if let Some(v) = env.get(&k) {
            svc.environment.insert(k, Some(v.clone()));
        }
    }
    svc.environment.sort_keys();
    svc.labels.sort_keys();
    svc.annotations.sort_keys();
    svc.sysctls.sort_keys();
    svc.storage_opt.sort_keys();
    // Compose prints every mapping sorted by key; sorting also makes the config hash
    // independent of how the file orders them.
    svc.depends_on.sort_keys();
    svc.networks.sort_keys();
    svc.ulimits.sort_keys();
    svc.extensions.sort_keys();
    if let Some(d) = &mut svc.deploy {
        d.labels.sort_keys();
    }
    if let Some(l) = &mut svc.logging {
        l.options.sort_keys();
    }
    if let Some(b) = &mut svc.build {
        let args = std::mem::take(&mut b.args);
        b.args = args
            .into_iter()
            .filter_map(|(k, v)| match v {
                Some(v) => Some((k, Some(v))),
                None => env.get(&k).map(|v| (k, Some(v.clone()))),
            })
            .collect();
        b.args.sort_keys();
        b.labels.sort_keys();
        b.additional_contexts.sort_keys();
        if b.dockerfile.is_none() && b.dockerfile_inline.is_none() {
            b.dockerfile = Some("Dockerfile".to_owned());
        }
    }
    implicit_dependencies(svc);
    if svc.networks.is_empty() && svc.network_mode.is_none() && svc.provider.is_none() {
        svc.networks.insert("default".to_owned(), None);
    }
    for s in &mut svc.secrets {
        if s.target.is_none() {
            s.target = Some(format!("/run/secrets/{}", s.source));
        }
    }
    Ok(())
}

/// Services used through `links`, `network_mode`/`ipc`/`pid: service:NAME` (restarted
/// with it) and `volumes_from` become `depends_on` entries, as Compose does.
fn implicit_dependencies(svc: &mut Service) {
    let mut add = |name: &str, restart: bool| {
        if !name.is_empty() && !svc.depends_on.contains_key(name) {
            svc.depends_on.insert(
                name.to_owned(),
                crate::model::DependsOn {
                    condition: "service_started".to_owned(),
                    restart,
                    required: true,
                },
            );
        }
    };
    for l in &svc.links {
        add(l.split(':').next().unwrap_or_default(), true);
    }
    for mode in [&svc.network_mode, &svc.ipc, &svc.pid]
        .into_iter()
        .flatten()
    {
        if let Some(name) = mode.strip_prefix("service:") {
            add(name, true);
        }
    }
    for v in &svc.volumes_from {
        if !v.starts_with("container:") {
            add(v.split(':').next().unwrap_or_default(), false);
        }
    }
}

fn read_raw(path: &Path) -> Result<IndexMap<String, String>, Diagnostic> {
    let text = std::fs::read_to_string(path).map_err(|e| Diagnostic::io(path, &e))?;
    Ok(text
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
        .filter_map(|l| {
            l.split_once('=')
                .map(|(k, v)| (k.trim().to_owned(), v.to_owned()))
        })
        .collect())
}

/// Project-level defaults: the default network (when a service uses it), resource
/// names (`<project>_<key>`, or the key for external resources), unused resources
/// removed, everything sorted by name.
pub fn project_defaults(p: &mut Project) {
    let uses_default = p
        .services
        .values()
        .any(|s| s.networks.contains_key("default"));
    if uses_default && !p.networks.contains_key("default") {
        p.networks.insert("default".to_owned(), Network::default());
    }
    // Unused resources are not part of the model Compose shows (or creates).
    let used_networks: Vec<&String> = p
        .services
        .values()
        .flat_map(|s| s.networks.keys())
        .collect();
    p.networks.retain(|k, _| used_networks.contains(&k));
    let used_volumes: Vec<&str> = p
        .services
        .values()
        .flat_map(|s| s.volumes.iter())
        .filter(|v| v.kind == VolumeType::Volume)
        .filter_map(|v| v.source.as_deref())
        .collect();
    p.volumes.retain(|k, _| used_volumes.contains(&k.as_str()));
    let used_secrets: Vec<&str> = p
        .services
        .values()
        .flat_map(|s| {
            s.secrets
                .iter()
                .chain(s.build.iter().flat_map(|b| b.secrets.iter()))
        })
        .map(|r| r.source.as_str())
        .collect();
    p.secrets.retain(|k, _| used_secrets.contains(&k.as_str()));
    let used_configs: Vec<&str> = p
        .services
        .values()
        .flat_map(|s| s.configs.iter())
        .map(|r| r.source.as_str())
        .collect();
    p.configs.retain(|k, _| used_configs.contains(&k.as_str()));

    let project = p.name.clone();
    let name_of = |key: &str, external: Option<bool>| {
        if external == Some(true) {
            key.to_owned()
        } else {
            format!("{project}_{key}")
        }
    };
    for (k, n) in &mut p.networks {
        if n.name.is_none() {
            n.name = Some(name_of(k, n.external));
        }
    }
    for (k, v) in &mut p.volumes {
        if v.name.is_none() {
            v.name = Some(name_of(k, v.external));
        }
    }
    for (k, o) in p.secrets.iter_mut().chain(p.configs.iter_mut()) {
        if o.name.is_none() {
            o.name = Some(name_of(k, o.external));
        }
    }
    p.services.sort_keys();
    p.networks.sort_keys();
    p.volumes.sort_keys();
    p.secrets.sort_keys();
    p.configs.sort_keys();
    p.models.sort_keys();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Build, ServiceVolume, VolumeOptions};

    #[test]
    fn defaults_and_names() {
        let mut p = Project {
            name: "demo".into(),
            ..Project::default()
        };
        let mut web = Service {
            build: Some(Build {
                context: Some("/src".into()),
                ..Build::default()
            }),
            volumes: vec![ServiceVolume {
                kind: VolumeType::Volume,
                source: Some("data".into()),
                target: "/d".into(),
                read_only: false,
                consistency: None,
                bind: None,
                volume: Some(VolumeOptions::default()),
                tmpfs: None,
                image: None,
            }],
            ..Service::default()
        };
        web.environment.insert("Z".into(), Some("1".into()));
        web.environment.insert("HOME".into(), None);
        web.environment.insert("NOPE".into(), None);
        let env: IndexMap<String, String> = [("HOME".to_owned(), "/root".to_owned())]
            .into_iter()
            .collect();
        service_defaults("web", &mut web, &env, &|_| None).unwrap();
        assert_eq!(
            web.environment
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_deref()))
                .collect::<Vec<_>>(),
            vec![("HOME", Some("/root")), ("NOPE", None), ("Z", Some("1"))]
        );
        assert_eq!(
            web.build.as_ref().unwrap().dockerfile.as_deref(),
            Some("Dockerfile")
        );
        assert!(web.networks.contains_key("default"));
        p.services.insert("web".into(), web);
        p.volumes.insert("data".into(), Default::default());
        p.volumes.insert("unused".into(), Default::default());
        project_defaults(&mut p);
        assert_eq!(p.networks["default"].name.as_deref(), Some("demo_default"));
        assert_eq!(p.volumes.keys().collect::<Vec<_>>(), vec!["data"]);
        assert_eq!(p.volumes["data"].name.as_deref(), Some("demo_data"));
    }
}
