//! Single containers, as `docker run` makes them: resolve the image, mount an overlay of its
//! snapshots under a per-container upper directory, build the OCI spec from the image
//! configuration and the [`RunOptions`], create the container through the runtime (its logs
//! in `<root>/containers/<id>/<id>-json.log`), attach its network namespace and publish its
//! ports, write its `/etc/hosts`, `/etc/resolv.conf` and `/etc/hostname`, start it, and record
//! a [`ContainerDoc`] in the engine's store. [`Containers::remove`] is the inverse.
//!
//! Layout: `<root>/containers/<id>/` holds `upper/`, `work/`, the log and the three `/etc`
//! files (bind-mounted into the container); the runtime keeps its own state (monitor socket,
//! `state.json`) in `<root>/runtime/<short id>/` (see [`runtime_id`]), so that a runtime
//! container can be deleted and created again (`start` after the process exited) without
//! losing the container's file-system changes.
//!
//! The runtime calls block (they wait for the monitor's report); callers on a multi-threaded
//! runtime that must not block should run these futures on a blocking-friendly task.

pub mod changes;
mod copy;
mod lifecycle;
pub mod limits;
pub mod logs;
mod names;
pub mod network;
pub mod policy;
pub mod ports;
pub mod spec;

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use berth_image::Reference;
use berth_net::Net;
use berth_runtime::{Runtime, RuntimeConfig, RuntimeError, State};
use serde::{Deserialize, Serialize};

use crate::Engine;
use crate::store::{Document, Kind, StoreError};

/// The net layer's published-port types, as container documents carry them.
/// berth's DNS server and the zone it answers from (the daemon runs it on the [`Net`] of its
/// [`Containers`]).
pub use berth_net::dns;
pub use berth_net::{Attachment, NetError, Network, NetworkSpec, Protocol, Published};
pub use lifecycle::{Created, parse_signal};
pub use network::{EtcFiles, EtcSources, NetworkMode};
pub use policy::{
    Health, HealthCheck, HealthResult, HealthStatus, NetworkAttachment, RestartPolicy,
};
pub use spec::{Mount, MountKind};

/// What `berth run` asks for (Docker's `docker run` options that berth supports).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RunOptions {
    /// Image reference (`busybox`, `busybox:latest`, `registry/x@sha256:…`).
    pub image: String,
    /// Arguments after the image: they replace the image's `Cmd`.
    pub command: Vec<String>,
    /// `--entrypoint` (`Some("")` clears the image's entrypoint).
    pub entrypoint: Option<String>,
    /// `-e NAME=VALUE` (or `NAME`, taken from the caller's environment).
    pub env: Vec<String>,
    /// `-w`.
    pub workdir: Option<String>,
    /// `-u user[:group]`.
    pub user: Option<String>,
    /// `--hostname` (default: the first 12 characters of the id).
    pub hostname: Option<String>,
    /// `--name` (default: a generated `adjective_noun`).
    pub name: Option<String>,
    /// `-v /host:/container[:ro]`.
    pub volumes: Vec<String>,
    /// `-p [HOST_IP:][HOST_PORT:]CONTAINER_PORT[/PROTO]`.
    pub publish: Vec<String>,
    /// `--network`.
    pub network: NetworkMode,
    /// `--rm`: remove the container once it exits (done by whoever waits for it).
    pub auto_remove: bool,
    /// `--init`.
    pub init: bool,
    /// Resource and security options.
    pub limits: limits::Limits,
    /// `--label KEY=VALUE` (stacks record their project, service and config hash here).
    pub labels: BTreeMap<String, String>,
    /// `--restart`.
    pub restart: RestartPolicy,
    /// `--health-*` or the stack's `healthcheck`; `None`: the image's `HEALTHCHECK`, if any.
    pub healthcheck: Option<HealthCheck>,
    /// `--no-healthcheck`: not even the image's.
    pub no_healthcheck: bool,
    /// `--stop-signal` (default: the image's, else `SIGTERM`).
    pub stop_signal: Option<String>,
    /// `--stop-timeout` in seconds (default 10).
    pub stop_timeout: Option<u64>,
    /// `--network-alias` and `--ip` for the first network (its `network` is ignored).
    pub network_settings: NetworkAttachment,
    /// Further networks joined after the first (`eth1`, `eth2`, …).
    pub more_networks: Vec<NetworkAttachment>,
    /// Typed mounts (bind, named volume, tmpfs) besides `volumes`.
    pub mounts: Vec<spec::Mount>,
    /// `--dns`: name servers written to `/etc/resolv.conf` instead of berth's own (user
    /// networks) or the host's (the default network).
    pub dns: Vec<IpAddr>,
    /// `--dns-search`: search domains.
    pub dns_search: Vec<String>,
    /// `--dns-option`: resolver options (`ndots:2`).
    pub dns_options: Vec<String>,
    /// `--add-host NAME:IP`: extra `/etc/hosts` lines.
    pub extra_hosts: Vec<ExtraHost>,
    /// `-t`: the process runs on a new pseudo-terminal whose master end the runtime sends to
    /// this listening Unix socket (runc's `--console-socket`); its output is then not logged.
    pub console_socket: Option<PathBuf>,
}

/// One `--add-host` entry (Compose `extra_hosts`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExtraHost {
    /// The host name.
    pub name: String,
    /// Its address.
    pub ip: IpAddr,
}

/// An `--add-host` value that is not `NAME:IP`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid --add-host {0:?}: expected NAME:IP")]
pub struct InvalidExtraHost(pub String);

impl ExtraHost {
    /// Parses Docker's `NAME:IP` (also `NAME=IP`; an IPv6 address may follow the first colon,
    /// bracketed or not).
    pub fn parse(s: &str) -> Result<ExtraHost, InvalidExtraHost> {
        let bad = || InvalidExtraHost(s.to_owned());
        let (name, ip) = s
            .split_once('=')
            .or_else(|| s.split_once(':'))
            .ok_or_else(bad)?;
        let ip = ip.trim_start_matches('[').trim_end_matches(']');
        if name.is_empty() || name.contains(char::is_whitespace) {
            return Err(bad());
        }
        Ok(ExtraHost {
            name: name.to_owned(),
            ip: ip.parse().map_err(|_| bad())?,
        })
    }
}

impl RunOptions {
    /// Options running `image` with its own command and Docker's defaults.
    pub fn new(image: impl Into<String>) -> RunOptions {
        RunOptions {
            image: image.into(),
            ..RunOptions::default()
        }
    }
}

/// A container as the engine records it (`<root>/state/containers/<id>.json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerDoc {
    /// 64 hex digits.
    pub id: String,
    /// Unique name.
    pub name: String,
    /// The image as the user named it.
    pub image: String,
    /// The image ID (`sha256:…` of its config).
    pub image_id: String,
    /// The process arguments.
    pub command: Vec<String>,
    /// Creation time, RFC 3339.
    pub created: String,
    /// Hostname.
    pub hostname: String,
    /// Network mode.
    pub network: NetworkMode,
    /// `-p` values as given (published again on `start`).
    pub publish: Vec<String>,
    /// Ports currently published.
    pub ports: Vec<Published>,
    /// Container address on its network, when attached.
    pub ip: Option<String>,
    /// The image's `StopSignal` (default `SIGTERM`).
    pub stop_signal: String,
    /// `--rm`.
    pub auto_remove: bool,
    /// The log file.
    pub log_path: PathBuf,
    /// Labels.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// What the supervisor does when the process exits.
    #[serde(default)]
    pub restart: RestartPolicy,
    /// The health check the supervisor runs (the image's unless overridden or disabled).
    #[serde(default)]
    pub healthcheck: Option<HealthCheck>,
    /// Seconds between the stop signal and `SIGKILL` on `stop`.
    #[serde(default)]
    pub stop_timeout: Option<u64>,
    /// Settings of the first network (aliases, fixed address).
    #[serde(default)]
    pub network_settings: NetworkAttachment,
    /// Further networks.
    #[serde(default)]
    pub more_networks: Vec<NetworkAttachment>,
    /// Typed mounts (bind, named volume, tmpfs).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mounts: Vec<spec::Mount>,
    /// `--dns`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dns: Vec<IpAddr>,
    /// `--dns-search`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dns_search: Vec<String>,
    /// `--dns-option`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dns_options: Vec<String>,
    /// `--add-host`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extra_hosts: Vec<ExtraHost>,
}

impl Document for ContainerDoc {
    const KIND: Kind = Kind::Container;
}

/// A container with its current runtime state (absent when the runtime lost it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ContainerInfo {
    /// What the engine recorded.
    #[serde(flatten)]
    pub doc: ContainerDoc,
    /// What the runtime reports now.
    pub state: Option<State>,
    /// What the supervisor last found, for containers with a health check.
    pub health: Option<Health>,
    /// Restarts made by the restart policy since the user last started it.
    pub restart_count: u32,
}

impl ContainerInfo {
    /// Whether its process runs (or is paused).
    pub fn is_running(&self) -> bool {
        use berth_runtime::Status;
        matches!(
            self.state.as_ref().map(|s| s.status),
            Some(Status::Running | Status::Paused)
        )
    }
}

/// Errors of the container commands.
#[derive(Debug, thiserror::Error)]
pub enum ContainersError {
    /// The image is not in the store.
    #[error("Unable to find image '{0}' locally")]
    ImageNotFound(String),
    /// The image reference does not parse.
    #[error("invalid reference format {reference:?}")]
    InvalidReference {
        /// What the user typed.
        reference: String,
        /// Why.
        #[source]
        source: berth_image::reference::ReferenceError,
    },
    /// The image store failed.
    #[error(transparent)]
    Image(#[from] berth_image::StoreError),
    /// The options do not make a spec.
    #[error(transparent)]
    Spec(#[from] spec::SpecError),
    /// A resource or security option is invalid.
    #[error(transparent)]
    Limits(#[from] limits::LimitsError),
    /// A `-p` value is invalid.
    #[error(transparent)]
    Port(#[from] ports::InvalidPort),
    /// The runtime failed.
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    /// The network layer failed.
    #[error(transparent)]
    Net(#[from] NetError),
    /// The engine's store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The supervisor's marks on the container (stopped by the user) could not be written.
    #[error(transparent)]
    Supervisor(#[from] crate::supervise::record::RecordError),
    /// A file or directory of the container could not be written or removed.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// The path.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// No container has this name, id or id prefix.
    #[error("No such container: {0}")]
    NotFound(String),
    /// Several containers have ids starting with this prefix.
    #[error("multiple containers match {0:?}: use more of the id")]
    Ambiguous(String),
    /// The name is taken.
    #[error("the container name \"/{name}\" is already in use by container {id}")]
    NameInUse {
        /// The name.
        name: String,
        /// Its owner.
        id: String,
    },
    /// The name has characters Docker does not allow.
    #[error("invalid container name {0:?}: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")]
    InvalidName(String),
    /// `rm` without `-f` on a running container.
    #[error(
        "cannot remove container {0}: container is running: stop the container before removing or force remove"
    )]
    Running(String),
    /// `start` on a running container does nothing in Docker; `exec` needs one running.
    #[error("container {0} is not running")]
    NotRunning(String),
    /// `network disconnect` from the network the container was created on.
    #[error(
        "container {container} cannot leave {network}, the network it was created on: remove it or run it again on another network"
    )]
    PrimaryNetwork {
        /// The container's name.
        container: String,
        /// The network.
        network: String,
    },
    /// `network connect` or `--network` with a mode that has no bridge (`host`, `none`).
    #[error("container {container} uses network mode {mode}: it cannot join other networks")]
    NoBridge {
        /// The container's name.
        container: String,
        /// Its network mode.
        mode: String,
    },
    /// `network connect` to a network it is already on.
    #[error("container {container} is already connected to network {network}")]
    AlreadyConnected {
        /// The container's name.
        container: String,
        /// The network.
        network: String,
    },
    /// `network disconnect` from a network it is not on.
    #[error("container {container} is not connected to network {network}")]
    NotConnected {
        /// The container's name.
        container: String,
        /// The network.
        network: String,
    },
    /// An operation failed and undoing it failed too.
    #[error("{cause} (cleaning up also failed: {cleanup})")]
    Cleanup {
        /// The first failure.
        #[source]
        cause: Box<ContainersError>,
        /// The undo's failure.
        cleanup: Box<ContainersError>,
    },
}

impl ContainersError {
    /// Docker's exit codes for `run`: 127 when the command is not found, 126 when it cannot
    /// be executed, 125 for every failure of berth itself.
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Runtime(RuntimeError::Setup(e)) => e.exit_code(),
            Self::Cleanup { cause, .. } => cause.exit_code(),
            _ => 125,
        }
    }

    fn io<'a>(
        op: &'static str,
        path: &'a Path,
    ) -> impl FnOnce(std::io::Error) -> ContainersError + 'a {
        move |source| ContainersError::Io {
            op,
            path: path.to_path_buf(),
            source,
        }
    }
}

/// The runtime's id of a container: the short (12-digit) id. The runtime puts its monitor's
/// Unix socket under `<root>/runtime/<id>/`, and socket paths are limited to 108 bytes, so
/// the full 64-digit id would not fit under a root deeper than a few directories.
pub fn runtime_id(id: &str) -> &str {
    id.get(..12).unwrap_or(id)
}

/// The single-container commands on one engine. Clones share one [`Net`] (opened on first
/// use and kept: it holds the network state's lock and publishes the DNS zone), so one
/// process — the daemon — holds one `Containers` for its lifetime.
#[derive(Debug, Clone)]
pub struct Containers {
    engine: Engine,
    images: berth_image::Store,
    runtime: Runtime,
    net: Arc<tokio::sync::OnceCell<Arc<Net>>>,
    /// Held while a container document is deleted, and while one is read and written back
    /// by a background task (the supervisor's release of an exited container's network),
    /// so that such a write never brings back the document of a container just removed.
    docs: Arc<std::sync::Mutex<()>>,
}

impl Containers {
    /// The container service of `engine`; its image store is `<root>/image` and the runtime's
    /// state `<root>/runtime`. `helper_exe` is the `berth` binary that runs monitors (`None`:
    /// the running executable).
    pub fn open(
        engine: &Engine,
        helper_exe: Option<PathBuf>,
    ) -> Result<Containers, ContainersError> {
        let root = &engine.config().root;
        let images = berth_image::Store::open(&root.join("image"))?;
        let mut config = RuntimeConfig::new(root.join("runtime"));
        if let Some(exe) = helper_exe {
            config.helper_exe = exe;
        }
        Ok(Containers {
            engine: engine.clone(),
            images,
            runtime: Runtime::new(config),
            net: Arc::new(tokio::sync::OnceCell::new()),
            docs: Arc::new(std::sync::Mutex::new(())),
        })
    }

    /// The engine this service records containers in.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The runtime containers are created with.
    pub fn runtime(&self) -> &Runtime {
        &self.runtime
    }

    fn dir(&self, id: &str) -> PathBuf {
        self.engine.config().root.join("containers").join(id)
    }

    /// The root's network layer, opened on first use (on the calling tokio runtime, which
    /// must outlive this value: the netlink connection runs there) and shared by every clone.
    pub async fn net(&self) -> Result<Arc<Net>, ContainersError> {
        let net = self
            .net
            .get_or_try_init(|| async {
                let c = self.engine.config();
                Net::open(network::net_config(&c.root, &c.run_dir))
                    .await
                    .map(Arc::new)
            })
            .await?;
        Ok(net.clone())
    }

    /// Every container, oldest first, with its runtime state.
    pub fn list(&self) -> Result<Vec<ContainerInfo>, ContainersError> {
        let mut out: Vec<ContainerInfo> = self
            .engine
            .store()
            .list::<ContainerDoc>()?
            .into_iter()
            .map(|(_, doc)| self.info(doc))
            .collect();
        out.sort_by(|a, b| a.doc.created.cmp(&b.doc.created));
        Ok(out)
    }

    fn info(&self, doc: ContainerDoc) -> ContainerInfo {
        let state = self
            .runtime
            .load(runtime_id(&doc.id))
            .and_then(|c| c.state())
            .ok();
        let record = crate::supervise::record::Record::load(&self.dir(&doc.id)).unwrap_or_default();
        ContainerInfo {
            health: doc.healthcheck.as_ref().and(record.health),
            restart_count: record.restart_count,
            doc,
            state,
        }
    }

    /// The container named `key`: its name, full id or an unambiguous id prefix.
    pub fn find(&self, key: &str) -> Result<ContainerInfo, ContainersError> {
        let docs = self.engine.store().list::<ContainerDoc>()?;
        let key = key.strip_prefix('/').unwrap_or(key);
        if let Some((_, d)) = docs.iter().find(|(_, d)| d.id == key || d.name == key) {
            return Ok(self.info(d.clone()));
        }
        let mut matches = docs.into_iter().filter(|(_, d)| d.id.starts_with(key));
        match (matches.next(), matches.next()) {
            (Some((_, d)), None) if !key.is_empty() => Ok(self.info(d)),
            (Some(_), Some(_)) => Err(ContainersError::Ambiguous(key.to_owned())),
            _ => Err(ContainersError::NotFound(key.to_owned())),
        }
    }

    fn resolve_image(&self, image: &str) -> Result<berth_image::Image, ContainersError> {
        let reference =
            Reference::parse(image).map_err(|source| ContainersError::InvalidReference {
                reference: image.to_owned(),
                source,
            })?;
        match self.images.resolve(&reference) {
            Ok(i) => Ok(i),
            Err(berth_image::StoreError::NotFound(_)) => {
                Err(ContainersError::ImageNotFound(reference.familiar()))
            }
            Err(e) => Err(e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extra_hosts_parse_as_docker_spells_them() {
        let h = ExtraHost::parse("db:10.0.0.5").unwrap();
        assert_eq!(
            (h.name.as_str(), h.ip.to_string()),
            ("db", "10.0.0.5".to_string())
        );
        let h = ExtraHost::parse("v6:[fd00::1]").unwrap();
        assert_eq!(h.ip.to_string(), "fd00::1");
        assert_eq!(ExtraHost::parse("v6=::1").unwrap().ip.to_string(), "::1");
        assert!(ExtraHost::parse("nocolon").is_err());
        assert!(ExtraHost::parse(":10.0.0.1").is_err());
        assert!(ExtraHost::parse("db:notanip").is_err());
    }
}
