//! A Compose service → the [`RunOptions`] of each of its containers (pure: no I/O).
//!
//! Everything a container of the service needs from outside the model (the host paths of
//! named volumes, the directory of its secret and config files, the image id) is handed in,
//! so that the mapping can be tested without a kernel. The executor does the I/O: creating
//! volumes and bind sources, writing the secret files, then `Containers::run`.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use berth_compose::model::FileObject;
use berth_compose::{Project, Service};

use crate::containers::limits::Limits;
use crate::containers::{
    ExtraHost, HealthCheck, InvalidExtraHost, NetworkAttachment, NetworkMode, RestartPolicy,
    RunOptions,
};

/// Docker Compose's label keys.
pub mod labels {
    /// The project's name.
    pub const PROJECT: &str = "com.docker.compose.project";
    /// The service's name.
    pub const SERVICE: &str = "com.docker.compose.service";
    /// The replica number, from 1.
    pub const NUMBER: &str = "com.docker.compose.container-number";
    /// `False` for service containers (`True` for `run`).
    pub const ONEOFF: &str = "com.docker.compose.oneoff";
    /// The service's config hash.
    pub const CONFIG_HASH: &str = "com.docker.compose.config-hash";
    /// The project directory.
    pub const WORKING_DIR: &str = "com.docker.compose.project.working_dir";
    /// The stack files, comma-separated.
    pub const CONFIG_FILES: &str = "com.docker.compose.project.config_files";
    /// `service:condition:restart` of each dependency, comma-separated.
    pub const DEPENDS_ON: &str = "com.docker.compose.depends_on";
    /// The image id the container was created from.
    pub const IMAGE: &str = "com.docker.compose.image";
    /// The version of the tool that made the container.
    pub const VERSION: &str = "com.docker.compose.version";
    /// On networks and volumes: their key in the stack file.
    pub const NETWORK: &str = "com.docker.compose.network";
    /// On volumes: their key in the stack file.
    pub const VOLUME: &str = "com.docker.compose.volume";
    /// On the extra replica a start-first update runs while it replaces one (`True`).
    pub const SURGE: &str = "berth.stack.surge";
}

/// A service that cannot be turned into containers.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DesiredError {
    /// `network_mode` berth does not support.
    #[error("network_mode {0:?} is not supported (use host, none, bridge or networks:)")]
    NetworkMode(String),
    /// A network the service joins is not declared.
    #[error("network {0:?} is not declared in the stack")]
    UnknownNetwork(String),
    /// A volume the service mounts is not declared.
    #[error("volume {0:?} is not declared in the stack")]
    UnknownVolume(String),
    /// A secret or config the service mounts is not declared.
    #[error("{kind} {name:?} is not declared in the stack")]
    UnknownFile {
        /// `secret` or `config`.
        kind: &'static str,
        /// Its name.
        name: String,
    },
    /// A secret or config has no file, environment or content source.
    #[error("{kind} {name:?} has no file, environment or content")]
    NoSource {
        /// `secret` or `config`.
        kind: &'static str,
        /// Its name.
        name: String,
    },
    /// An `ipv4_address` that does not parse.
    #[error("invalid ipv4_address {0:?}")]
    InvalidAddress(String),
    /// An `extra_hosts` entry that is not `NAME:IP`.
    #[error(transparent)]
    ExtraHost(#[from] InvalidExtraHost),
    /// `restart` or `deploy.restart_policy` that berth does not know.
    #[error(transparent)]
    Restart(#[from] crate::containers::policy::InvalidRestartPolicy),
    /// A volume type berth does not mount.
    #[error("volume type {0:?} is not supported (bind, volume and tmpfs are)")]
    VolumeType(String),
    /// A bind mount without a source.
    #[error("bind mount at {0} has no source")]
    NoBindSource(String),
    /// `container_name` with more than one replica.
    #[error("container_name {name:?} cannot be used with {replicas} replicas")]
    ContainerNameWithReplicas {
        /// The name.
        name: String,
        /// The replicas asked for.
        replicas: u64,
    },
}

/// What the host side of the service's mounts turned out to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VolumeSource {
    /// A data directory (`<root>/volumes/<name>/_data`).
    Dir {
        /// The volume's name.
        name: String,
        /// Its data directory.
        path: PathBuf,
    },
    /// `driver_opts: {type: none, o: bind, device: …}`: a host directory.
    Device(PathBuf),
    /// `driver_opts: {type: tmpfs}`: a tmpfs per container.
    Tmpfs {
        /// `o: size=…` in bytes.
        size: Option<u64>,
    },
}

/// A file the executor writes before the container starts (a secret or a config).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileToWrite {
    /// Where on the host (under the stack's directory, off the container's layer).
    pub host_path: PathBuf,
    /// Where in the container (read-only bind mount).
    pub target: String,
    /// The bytes.
    pub content: Vec<u8>,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Permission bits.
    pub mode: u32,
}

/// One container of a service, ready to run.
#[derive(Debug, Clone, PartialEq)]
pub struct ContainerPlan {
    /// The run options (image, command, labels, mounts, networks…).
    pub options: RunOptions,
    /// Secret and config files to write first.
    pub files: Vec<FileToWrite>,
    /// Bind sources to create when missing (Compose's `create_host_path`).
    pub bind_dirs: Vec<PathBuf>,
}

/// The stack-wide inputs of the mapping.
#[derive(Debug, Clone)]
pub struct Context<'a> {
    /// The project.
    pub project: &'a Project,
    /// The stack files, for the `config_files` label.
    pub config_files: &'a [String],
    /// Volume key → its host side.
    pub volumes: &'a BTreeMap<String, VolumeSource>,
    /// Where secret and config files of containers are written: `<files>/<container>/…`.
    pub files_dir: &'a Path,
    /// `secret:<name>` / `config:<name>` → content.
    pub contents: &'a BTreeMap<String, Vec<u8>>,
}

/// The container name of replica `number` of `service`: `container_name`, else
/// `<project>-<service>-<number>`.
pub fn container_name(project: &str, service: &str, svc: &Service, number: u64) -> String {
    match &svc.container_name {
        Some(n) => n.clone(),
        None => format!("{project}-{service}-{number}"),
    }
}

/// The image a service runs: its `image`, else the name Compose gives a built image.
pub fn image_name(project: &str, service: &str, svc: &Service) -> String {
    svc.image
        .clone()
        .unwrap_or_else(|| format!("{project}-{service}"))
}

/// The source bytes of a secret or config: its `content`, or its `file`'s bytes (read by
/// `read`). `environment` sources are turned into `content` by the CLI, which has the
/// environment.
pub fn source_bytes(
    kind: &'static str,
    name: &str,
    obj: &FileObject,
    read: impl Fn(&Path) -> std::io::Result<Vec<u8>>,
) -> Result<Vec<u8>, SourceError> {
    if let Some(c) = &obj.content {
        return Ok(c.clone().into_bytes());
    }
    if let Some(f) = &obj.file {
        let path = PathBuf::from(f);
        return read(&path).map_err(|source| SourceError::Read { path, source });
    }
    Err(SourceError::Desired(DesiredError::NoSource {
        kind,
        name: name.to_owned(),
    }))
}

/// A secret or config source that cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The file could not be read.
    #[error("read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The model is wrong.
    #[error(transparent)]
    Desired(#[from] DesiredError),
}

/// Every secret and config source `svc` mounts, by `secret:<name>` / `config:<name>`.
pub fn contents_of(
    project: &Project,
    svc: &Service,
    read: impl Fn(&Path) -> std::io::Result<Vec<u8>> + Copy,
) -> Result<BTreeMap<String, Vec<u8>>, SourceError> {
    let mut out = BTreeMap::new();
    for (kind, refs, objs) in [
        ("secret", &svc.secrets, &project.secrets),
        ("config", &svc.configs, &project.configs),
    ] {
        for r in refs {
            let obj = objs
                .get(&r.source)
                .ok_or_else(|| DesiredError::UnknownFile {
                    kind,
                    name: r.source.clone(),
                })?;
            out.insert(
                format!("{kind}:{}", r.source),
                source_bytes(kind, &r.source, obj, read)?,
            );
        }
    }
    Ok(out)
}

fn restart_policy(svc: &Service) -> Result<RestartPolicy, DesiredError> {
    if let Some(r) = &svc.restart {
        return Ok(RestartPolicy::parse(r)?);
    }
    let Some(p) = svc.deploy.as_ref().and_then(|d| d.restart_policy.as_ref()) else {
        return Ok(RestartPolicy::No);
    };
    Ok(match p.condition.as_deref() {
        Some("none") => RestartPolicy::No,
        Some("on-failure") => RestartPolicy::OnFailure {
            max_retries: p.max_attempts.map(|n| n.min(u64::from(u32::MAX)) as u32),
        },
        // Swarm's default condition is `any`.
        _ => RestartPolicy::Always,
    })
}

fn healthcheck(svc: &Service) -> (Option<HealthCheck>, bool) {
    let Some(h) = &svc.healthcheck else {
        return (None, false);
    };
    if h.disable
        || h.test
            .as_ref()
            .is_some_and(|t| t.first().map(String::as_str) == Some("NONE"))
    {
        return (None, true);
    }
    let Some(test) = &h.test else {
        return (None, false);
    };
    let mut check = HealthCheck::new(test.clone());
    if let Some(d) = h.interval {
        check.interval = d.to_std();
    }
    if let Some(d) = h.timeout {
        check.timeout = d.to_std();
    }
    if let Some(r) = h.retries {
        check.retries = r.min(u64::from(u32::MAX)) as u32;
    }
    if let Some(d) = h.start_period {
        check.start_period = d.to_std();
    }
    if let Some(d) = h.start_interval {
        check.start_interval = d.to_std();
    }
    (Some(check), false)
}

fn limits(svc: &Service) -> Limits {
    let deploy_limits = svc
        .deploy
        .as_ref()
        .and_then(|d| d.resources.as_ref())
        .and_then(|r| r.limits.as_ref());
    let memory = svc
        .mem_limit
        .or_else(|| deploy_limits.and_then(|l| l.memory))
        .map(|b| b.0.to_string());
    let cpus = svc.cpus.or_else(|| deploy_limits.and_then(|l| l.cpus));
    let pids_limit = svc
        .pids_limit
        .or_else(|| deploy_limits.and_then(|l| l.pids));
    let ulimits = svc
        .ulimits
        .iter()
        .map(|(name, u)| match u {
            berth_compose::model::Ulimit::Single(v) => format!("{name}={v}:{v}"),
            berth_compose::model::Ulimit::Pair { soft, hard } => format!("{name}={soft}:{hard}"),
        })
        .collect();
    Limits {
        memory,
        cpus,
        pids_limit,
        read_only: svc.read_only,
        cap_add: svc.cap_add.clone(),
        cap_drop: svc.cap_drop.clone(),
        security_opt: svc.security_opt.clone(),
        ulimits,
        tmpfs: svc.tmpfs.clone(),
    }
}

fn publish(svc: &Service) -> Vec<String> {
    svc.ports
        .iter()
        .map(|p| {
            let mut s = String::new();
            if let Some(ip) = p.host_ip.as_deref().filter(|ip| !ip.is_empty()) {
                s.push_str(ip);
                s.push(':');
            }
            match p.published.as_deref().filter(|p| !p.is_empty()) {
                Some(published) => {
                    s.push_str(published);
                    s.push(':');
                }
                None if !s.is_empty() => s.push(':'),
                None => {}
            }
            s.push_str(&format!("{}/{}", p.target, p.protocol));
            s
        })
        .collect()
}

/// The name of network `key` of the project (its `name`, else `<project>_<key>`).
pub fn network_name(project: &Project, key: &str) -> Option<String> {
    let n = project.networks.get(key)?;
    Some(
        n.name
            .clone()
            .unwrap_or_else(|| format!("{}_{key}", project.name)),
    )
}

/// The name of volume `key` of the project (its `name`, else `<project>_<key>`).
pub fn volume_name(project: &Project, key: &str) -> Option<String> {
    let v = project.volumes.get(key)?;
    Some(
        v.name
            .clone()
            .unwrap_or_else(|| format!("{}_{key}", project.name)),
    )
}

fn networks(
    project: &Project,
    service: &str,
    svc: &Service,
) -> Result<(NetworkMode, NetworkAttachment, Vec<NetworkAttachment>), DesiredError> {
    match svc.network_mode.as_deref() {
        Some("host") => return Ok((NetworkMode::Host, Default::default(), Vec::new())),
        Some("none") => return Ok((NetworkMode::None, Default::default(), Vec::new())),
        Some("bridge") | None => {}
        Some(other) => return Err(DesiredError::NetworkMode(other.to_owned())),
    }
    if svc.network_mode.as_deref() == Some("bridge") || svc.networks.is_empty() {
        return Ok((NetworkMode::default(), Default::default(), Vec::new()));
    }
    let mut attachments = Vec::new();
    for (key, settings) in &svc.networks {
        let name =
            network_name(project, key).ok_or_else(|| DesiredError::UnknownNetwork(key.clone()))?;
        let mut aliases = vec![service.to_owned()];
        let mut ipv4_address = None;
        if let Some(s) = settings {
            for a in &s.aliases {
                if !aliases.contains(a) {
                    aliases.push(a.clone());
                }
            }
            if let Some(ip) = &s.ipv4_address {
                ipv4_address = Some(
                    ip.parse::<Ipv4Addr>()
                        .map_err(|_| DesiredError::InvalidAddress(ip.clone()))?,
                );
            }
        }
        attachments.push(NetworkAttachment {
            network: name,
            aliases,
            ipv4_address,
            ipv6_address: None,
        });
    }
    let first = attachments.remove(0);
    Ok((
        NetworkMode::Bridge(first.network.clone()),
        first,
        attachments,
    ))
}

/// The run options of replica `number` of `service`, with `image_id` and `hash` recorded in
/// its labels.
pub fn container_plan(
    ctx: &Context<'_>,
    service: &str,
    svc: &Service,
    number: u64,
    image_id: &str,
    hash: &str,
) -> Result<ContainerPlan, DesiredError> {
    let project = ctx.project;
    let replicas = svc.replicas();
    if let (Some(name), true) = (&svc.container_name, replicas > 1) {
        return Err(DesiredError::ContainerNameWithReplicas {
            name: name.clone(),
            replicas,
        });
    }
    let name = container_name(&project.name, service, svc, number);
    let mut label_map: BTreeMap<String, String> = svc
        .labels
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let depends: Vec<String> = svc
        .depends_on
        .iter()
        .map(|(d, o)| format!("{d}:{}:{}", o.condition, o.restart))
        .collect();
    for (k, v) in [
        (labels::PROJECT, project.name.clone()),
        (labels::SERVICE, service.to_owned()),
        (labels::NUMBER, number.to_string()),
        (labels::ONEOFF, "False".to_owned()),
        (labels::CONFIG_HASH, hash.to_owned()),
        (
            labels::WORKING_DIR,
            project.working_dir.display().to_string(),
        ),
        (labels::CONFIG_FILES, ctx.config_files.join(",")),
        (labels::DEPENDS_ON, depends.join(",")),
        (labels::IMAGE, image_id.to_owned()),
        (labels::VERSION, env!("CARGO_PKG_VERSION").to_owned()),
    ] {
        label_map.insert(k.to_owned(), v);
    }
    let (network, network_settings, more_networks) = networks(project, service, svc)?;
    let (mut mounts, bind_dirs) = super::mounts::volume_mounts(ctx, svc, &name)?;
    let (file_mounts, files) = super::mounts::file_mounts(ctx, svc, &name)?;
    mounts.extend(file_mounts);
    let (healthcheck, no_healthcheck) = healthcheck(svc);
    let (entrypoint, mut command) = match &svc.entrypoint {
        Some(ep) => match ep.split_first() {
            Some((first, rest)) => (Some(first.clone()), rest.to_vec()),
            None => (Some(String::new()), Vec::new()),
        },
        None => (None, Vec::new()),
    };
    command.extend(svc.command.clone().unwrap_or_default());
    let options = RunOptions {
        image: image_name(&project.name, service, svc),
        command,
        entrypoint,
        env: svc
            .environment
            .iter()
            .filter_map(|(k, v)| v.as_ref().map(|v| format!("{k}={v}")))
            .collect(),
        workdir: svc.working_dir.clone(),
        user: svc.user.clone(),
        hostname: svc.hostname.clone(),
        name: Some(name),
        volumes: Vec::new(),
        publish: publish(svc),
        network,
        auto_remove: false,
        init: svc.init.unwrap_or(false),
        limits: limits(svc),
        labels: label_map,
        restart: restart_policy(svc)?,
        healthcheck,
        no_healthcheck,
        stop_signal: svc.stop_signal.clone(),
        stop_timeout: svc
            .stop_grace_period
            .map(|d| d.to_std().as_secs_f64().ceil() as u64),
        network_settings,
        more_networks,
        mounts,
        dns: svc.dns.iter().filter_map(|d| d.parse().ok()).collect(),
        dns_search: svc.dns_search.clone(),
        dns_options: svc.dns_opt.clone(),
        extra_hosts: svc
            .extra_hosts
            .iter()
            .map(|h| ExtraHost::parse(h))
            .collect::<Result<_, _>>()?,
        console_socket: None,
        stdin_socket: None,
    };
    Ok(ContainerPlan {
        options,
        files,
        bind_dirs,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::containers::{Mount, MountKind};

    fn project(yaml: &str) -> Project {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("compose.yaml"), yaml).unwrap();
        let opts = berth_compose::LoadOptions {
            working_dir: dir.path().to_path_buf(),
            project_name: Some("p".into()),
            ..Default::default()
        };
        berth_compose::load(&opts).unwrap()
    }

    fn plan(p: &Project, service: &str, volumes: &BTreeMap<String, VolumeSource>) -> ContainerPlan {
        let contents = contents_of(p, &p.services[service], |path| std::fs::read(path)).unwrap();
        let ctx = Context {
            project: p,
            config_files: &["/x/compose.yaml".to_owned()],
            volumes,
            files_dir: Path::new("/files"),
            contents: &contents,
        };
        container_plan(&ctx, service, &p.services[service], 1, "sha256:abc", "h1").unwrap()
    }

    #[test]
    fn service_fields_map_to_run_options_and_labels() {
        let p = project(
            r#"
services:
  web:
    image: busybox
    entrypoint: ["sh", "-c"]
    command: ["echo hi"]
    environment: {A: "1"}
    working_dir: /srv
    user: "1000"
    init: true
    ports: ["127.0.0.1:8080:80", "9000/udp"]
    restart: on-failure:3
    stop_grace_period: 1500ms
    stop_signal: SIGINT
    cap_drop: [NET_RAW]
    read_only: true
    mem_limit: 64m
    healthcheck:
      test: ["CMD", "true"]
      interval: 2s
    networks:
      front:
        aliases: [www]
        ipv4_address: 10.5.0.9
      back: {}
    depends_on:
      db: {condition: service_healthy, restart: true}
  db:
    image: busybox
networks:
  front: {}
  back: {}
"#,
        );
        let o = plan(&p, "web", &BTreeMap::new()).options;
        assert_eq!(o.name.as_deref(), Some("p-web-1"));
        assert_eq!(o.entrypoint.as_deref(), Some("sh"));
        assert_eq!(o.command, ["-c", "echo hi"]);
        assert_eq!(o.env, ["A=1"]);
        assert_eq!(o.workdir.as_deref(), Some("/srv"));
        assert_eq!(o.user.as_deref(), Some("1000"));
        assert!(o.init);
        assert_eq!(o.publish, ["127.0.0.1:8080:80/tcp", "9000/udp"]);
        assert_eq!(
            o.restart,
            RestartPolicy::OnFailure {
                max_retries: Some(3)
            }
        );
        assert_eq!(o.stop_timeout, Some(2));
        assert_eq!(o.stop_signal.as_deref(), Some("SIGINT"));
        assert_eq!(o.limits.cap_drop, ["NET_RAW"]);
        assert!(o.limits.read_only);
        assert_eq!(o.limits.memory.as_deref(), Some("67108864"));
        let h = o.healthcheck.unwrap();
        assert_eq!(h.test, ["CMD", "true"]);
        assert_eq!(h.interval, std::time::Duration::from_secs(2));
        // Networks in the canonical (sorted) order, as Compose attaches them.
        assert_eq!(o.network, NetworkMode::Bridge("p_back".into()));
        assert_eq!(o.network_settings.aliases, ["web"]);
        assert_eq!(o.more_networks.len(), 1);
        assert_eq!(o.more_networks[0].network, "p_front");
        assert_eq!(o.more_networks[0].aliases, ["web", "www"]);
        assert_eq!(
            o.more_networks[0].ipv4_address,
            Some(Ipv4Addr::new(10, 5, 0, 9))
        );
        assert_eq!(o.labels[labels::PROJECT], "p");
        assert_eq!(o.labels[labels::SERVICE], "web");
        assert_eq!(o.labels[labels::NUMBER], "1");
        assert_eq!(o.labels[labels::ONEOFF], "False");
        assert_eq!(o.labels[labels::CONFIG_HASH], "h1");
        assert_eq!(o.labels[labels::IMAGE], "sha256:abc");
        assert_eq!(o.labels[labels::DEPENDS_ON], "db:service_healthy:true");
        assert_eq!(o.labels[labels::CONFIG_FILES], "/x/compose.yaml");
    }

    #[test]
    fn volumes_secrets_and_configs_become_mounts() {
        let p = project(
            r#"
services:
  app:
    image: busybox
    volumes:
      - data:/data
      - ./src:/src:ro
      - type: tmpfs
        target: /scratch
        tmpfs: {size: 1048576}
    secrets:
      - source: pw
        uid: "1000"
        mode: 0400
    configs:
      - source: conf
        target: /etc/app.conf
volumes:
  data: {}
secrets:
  pw:
    content: hunter2
configs:
  conf:
    content: "x=1"
"#,
        );
        let mut vols = BTreeMap::new();
        vols.insert(
            "data".to_owned(),
            VolumeSource::Dir {
                name: "p_data".into(),
                path: "/v/p_data/_data".into(),
            },
        );
        let plan = plan(&p, "app", &vols);
        let m = &plan.options.mounts;
        assert_eq!(
            m[0],
            Mount {
                kind: MountKind::Volume {
                    name: "p_data".into(),
                    source: "/v/p_data/_data".into()
                },
                target: "/data".into(),
                read_only: false
            }
        );
        assert!(matches!(&m[1].kind, MountKind::Bind { source, .. } if source.ends_with("src")));
        assert!(m[1].read_only);
        assert_eq!(
            m[2].kind,
            MountKind::Tmpfs {
                size: Some(1048576),
                mode: None
            }
        );
        assert_eq!(m[3].target, "/run/secrets/pw");
        assert!(m[3].read_only);
        assert_eq!(m[4].target, "/etc/app.conf");
        assert_eq!(plan.files.len(), 2);
        assert_eq!(plan.files[0].content, b"hunter2");
        assert_eq!(plan.files[0].uid, 1000);
        assert_eq!(plan.files[0].mode, 0o400);
        assert_eq!(
            plan.files[0].host_path,
            PathBuf::from("/files/p-app-1/secrets/pw")
        );
        assert_eq!(plan.files[1].mode, 0o444);
        assert_eq!(plan.bind_dirs.len(), 1);
    }
}
