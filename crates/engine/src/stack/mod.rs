//! Stacks (Compose projects): `up`, `down`, `ps`, `ls` and the per-stack lifecycle
//! commands, over the single-container service [`Containers`] of the same engine.
//!
//! `up` takes the canonical [`Project`] the CLI loaded. Per service: a config hash
//! ([`hash`]), the run options of each replica ([`desired`]); observed: the containers
//! labelled with the project; a pure [`plan`] of actions per service; then [`execute`]
//! walks the service graph (a container starts the moment its own dependencies are
//! satisfied; bounded parallelism) after the networks and volumes ([`resources`]) exist.
//! The stack document ([`StackDoc`], store kind `Stack`) keeps the project's directory,
//! files and the per-field hashes of each service, so the next `up` names what changed.
//!
//! Around that: the image of each service used, pulled or built as its pull policy says
//! (`pull.rs`); `post_start`/`pre_stop` hooks (`hooks.rs`); one-off containers of
//! `stack run` (`oneoff.rs`, left out of [`Stacks::ps`]); `down --rmi` (`images.rs`).
//!
//! Progress is reported as [`Progress`] values on a channel (the daemon streams them as
//! NDJSON).

pub mod build;
pub mod desired;
mod down;
mod execute;
pub mod hash;
mod hooks;
mod images;
mod lifecycle;
mod mounts;
mod oneoff;
pub mod plan;
mod progress;
mod pull;
pub mod resources;
mod rolling;
mod walk;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::Duration;

use berth_compose::Project;
use berth_net::NetError;
use serde::{Deserialize, Serialize};
use sha2::Digest;

use crate::Engine;
use crate::containers::{ContainerInfo, Containers, ContainersError};
use crate::store::{Document, Kind, StoreError};
pub use desired::labels;
pub use execute::{DownOptions, UpOptions};
pub use images::RemoveImages;
pub use mounts::anonymous_volume_key;
pub use oneoff::OneOffOptions;
pub use progress::{ObjectKind, Progress, ProgressSink, Status};
pub use pull::PullPolicy;
pub use resources::VolumeDoc;

/// Short stable hash (8 hex digits) for generated names.
pub(crate) fn hash_short(bytes: &[u8]) -> String {
    hex::encode(&sha2::Sha256::digest(bytes)[..4])
}

/// A deployed stack (`<root>/state/stacks/<name>.json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StackDoc {
    /// Project name.
    pub name: String,
    /// Project directory.
    pub working_dir: PathBuf,
    /// Stack files it was loaded from.
    #[serde(default)]
    pub config_files: Vec<String>,
    /// What was last applied, per service.
    #[serde(default)]
    pub services: BTreeMap<String, ServiceRecord>,
    /// When the stack was first brought up, RFC 3339.
    pub created: String,
    /// When `up` last ran.
    pub updated: String,
}

impl Document for StackDoc {
    const KIND: Kind = Kind::Stack;
}

/// The configuration of a service that `up` last applied.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ServiceRecord {
    /// Config hash.
    pub hash: String,
    /// Per-field hashes (to name what changed next time).
    pub fields: BTreeMap<String, String>,
    /// What was applied, in full: what a rollback recreates the service from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub applied: Option<AppliedService>,
}

/// A service's configuration as `up` last applied it, kept to roll an update back.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct AppliedService {
    /// The resolved service.
    pub service: berth_compose::model::Service,
    /// The image id its containers were created from.
    pub image_id: String,
    /// The bytes of its secrets and configs, by name.
    #[serde(default)]
    pub contents: BTreeMap<String, Vec<u8>>,
}

// `Service` holds floats (cpus…), so no `Eq` derive; the document compares equal as JSON.
impl Eq for AppliedService {}

/// Why a service failed during `up`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceFailure {
    /// The service.
    pub service: String,
    /// What went wrong (an error chain, as the user reads it).
    pub reason: String,
}

/// Errors of the stack commands.
#[derive(Debug, thiserror::Error)]
pub enum StackError {
    /// A container operation failed.
    #[error(transparent)]
    Containers(Box<ContainersError>),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The network layer failed.
    #[error(transparent)]
    Net(Box<NetError>),
    /// The image store failed.
    #[error(transparent)]
    Image(Box<berth_image::StoreError>),
    /// A service cannot be mapped to containers.
    #[error("service {service}: {source}")]
    Desired {
        /// The service.
        service: String,
        /// Why.
        #[source]
        source: desired::DesiredError,
    },
    /// A secret or config source cannot be read.
    #[error("service {service}: {source}")]
    Source {
        /// The service.
        service: String,
        /// Why.
        #[source]
        source: desired::SourceError,
    },
    /// The dependency graph is wrong.
    #[error(transparent)]
    Plan(#[from] plan::PlanError),
    /// A file or directory could not be used.
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
    /// An external network does not exist.
    #[error("network {0} declared as external, but could not be found")]
    ExternalNetwork(String),
    /// An external volume does not exist.
    #[error("external volume \"{0}\" not found")]
    ExternalVolume(String),
    /// A `driver_opts` device directory does not exist.
    #[error("volume {volume}: device {device} is not a directory")]
    VolumeDevice {
        /// The volume.
        volume: String,
        /// Its device.
        device: PathBuf,
    },
    /// An ipam subnet or gateway that does not parse.
    #[error("network {network}: invalid address {value:?}")]
    InvalidSubnet {
        /// The network.
        network: String,
        /// The value.
        value: String,
    },
    /// No stack has this name.
    #[error("no such project: {0}")]
    NoSuchStack(String),
    /// A service name given on the command line is not in the stack.
    #[error("no such service: {0}")]
    NoSuchService(String),
    /// Services failed; the others were left running.
    #[error("{}", failures.iter().map(|f| format!("service {:?}: {}", f.service, f.reason)).collect::<Vec<_>>().join("; "))]
    Failed {
        /// What failed, per service.
        failures: Vec<ServiceFailure>,
    },
    /// `--wait` gave up.
    #[error("timed out after {timeout:?} waiting for {waiting}")]
    WaitTimeout {
        /// The limit.
        timeout: Duration,
        /// The containers still not ready.
        waiting: String,
    },
    /// A `post_start` or `pre_stop` hook failed.
    #[error("{hook} hook {command:?} in {container} {failure}")]
    Hook {
        /// The service.
        service: String,
        /// The container.
        container: String,
        /// `post_start` or `pre_stop`.
        hook: &'static str,
        /// The hook's command.
        command: Vec<String>,
        /// `exited with code N: <output>`, or why it could not run.
        failure: String,
    },
    /// An image could not be pulled.
    #[error("pull {image}: {source}")]
    Pull {
        /// The image.
        image: String,
        /// Why.
        #[source]
        source: Box<berth_image::PullError>,
    },
    /// A background task of the executor died.
    #[error("internal task failed: {0}")]
    Task(#[source] tokio::task::JoinError),
}

impl From<ContainersError> for StackError {
    fn from(e: ContainersError) -> StackError {
        StackError::Containers(Box::new(e))
    }
}

impl From<NetError> for StackError {
    fn from(e: NetError) -> StackError {
        StackError::Net(Box::new(e))
    }
}

impl From<berth_image::StoreError> for StackError {
    fn from(e: berth_image::StoreError) -> StackError {
        StackError::Image(Box::new(e))
    }
}

/// A container of a stack.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StackContainer {
    /// Its service.
    pub service: String,
    /// Its replica number.
    pub number: u64,
    /// The container.
    #[serde(flatten)]
    pub info: ContainerInfo,
}

impl StackContainer {
    /// Whether `stack run` made it (label `com.docker.compose.oneoff=True`).
    pub fn is_oneoff(&self) -> bool {
        self.info.doc.labels.get(labels::ONEOFF).map(String::as_str) == Some("True")
    }
}

/// A stack as `ls` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StackSummary {
    /// Name.
    pub name: String,
    /// Project directory.
    pub working_dir: PathBuf,
    /// Stack files.
    pub config_files: Vec<String>,
    /// `running(2), exited(1)`, as Compose prints it.
    pub status: String,
}

/// The stack service of one engine.
#[derive(Debug, Clone)]
pub struct Stacks {
    engine: Engine,
    containers: Containers,
    images: berth_image::Store,
}

impl Stacks {
    /// The stack service over `containers` (the daemon's one container service, whose
    /// network layer it shares).
    pub fn new(containers: &Containers) -> Result<Stacks, StackError> {
        let engine = containers.engine().clone();
        let images = berth_image::Store::open(&engine.config().root.join("image"))?;
        Ok(Stacks {
            engine,
            containers: containers.clone(),
            images,
        })
    }

    /// The container service underneath.
    pub fn containers(&self) -> &Containers {
        &self.containers
    }

    /// Where the secret and config files of a project's containers are written.
    fn files_dir(&self, project: &str) -> PathBuf {
        self.engine
            .config()
            .root
            .join("stacks")
            .join(project)
            .join("files")
    }

    /// The service containers of `project` (all of them, running or not), by service and
    /// number; one-off containers (`stack run`) are left out, as `docker compose ps` does.
    pub fn ps(&self, project: &str) -> Result<Vec<StackContainer>, StackError> {
        let mut list = self.ps_all(project)?;
        list.retain(|c| !c.is_oneoff());
        Ok(list)
    }

    /// Every container of `project`, one-off containers included.
    pub fn ps_all(&self, project: &str) -> Result<Vec<StackContainer>, StackError> {
        let mut out: Vec<StackContainer> = self
            .containers
            .list()?
            .into_iter()
            .filter(|c| c.doc.labels.get(labels::PROJECT).map(String::as_str) == Some(project))
            .map(|info| StackContainer {
                service: info
                    .doc
                    .labels
                    .get(labels::SERVICE)
                    .cloned()
                    .unwrap_or_default(),
                number: info
                    .doc
                    .labels
                    .get(labels::NUMBER)
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(0),
                info,
            })
            .collect();
        out.sort_by(|a, b| {
            (&a.service, a.number, &a.info.doc.name).cmp(&(&b.service, b.number, &b.info.doc.name))
        });
        Ok(out)
    }

    /// The stack document of `project`, if it was brought up.
    pub fn get(&self, project: &str) -> Result<Option<StackDoc>, StackError> {
        Ok(self.engine.store().get::<StackDoc>(project)?)
    }

    /// Every stack with its container states.
    pub fn list(&self) -> Result<Vec<StackSummary>, StackError> {
        let containers = self.containers.list()?;
        let mut out = Vec::new();
        for (_, doc) in self.engine.store().list::<StackDoc>()? {
            let mut counts: BTreeMap<&'static str, usize> = BTreeMap::new();
            for c in containers
                .iter()
                .filter(|c| c.doc.labels.get(labels::PROJECT) == Some(&doc.name))
            {
                *counts.entry(state_word(c)).or_default() += 1;
            }
            let status = if counts.is_empty() {
                "exited(0)".to_owned()
            } else {
                counts
                    .iter()
                    .map(|(k, n)| format!("{k}({n})"))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            out.push(StackSummary {
                name: doc.name,
                working_dir: doc.working_dir,
                config_files: doc.config_files,
                status,
            });
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }
}

/// `running`, `paused`, `exited`, `created` for `ls`.
fn state_word(c: &ContainerInfo) -> &'static str {
    use berth_runtime::Status as S;
    match c.state.as_ref().map(|s| s.status) {
        Some(S::Running) => "running",
        Some(S::Paused) => "paused",
        Some(S::Created | S::Creating) => "created",
        _ => "exited",
    }
}

/// The services of a project that `up SERVICE…` converges: the named ones and (unless
/// `no_deps`) what they depend on, transitively.
pub fn selected_services(
    project: &Project,
    names: &[String],
    no_deps: bool,
) -> Result<Option<BTreeSet<String>>, StackError> {
    if names.is_empty() {
        return Ok(None);
    }
    let mut out = BTreeSet::new();
    let mut todo: Vec<String> = names.to_vec();
    while let Some(n) = todo.pop() {
        let svc = project
            .services
            .get(&n)
            .ok_or_else(|| StackError::NoSuchService(n.clone()))?;
        if out.insert(n.clone()) && !no_deps {
            todo.extend(svc.depends_on.keys().cloned());
        }
    }
    Ok(Some(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn named_services_bring_their_dependencies_unless_no_deps() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("compose.yaml"),
            "services:\n  db: {image: busybox}\n  api: {image: busybox, depends_on: [db]}\n  web: {image: busybox, depends_on: [api]}\n  other: {image: busybox}\n",
        )
        .unwrap();
        let p = berth_compose::load(&berth_compose::LoadOptions {
            working_dir: dir.path().to_path_buf(),
            ..Default::default()
        })
        .unwrap();
        let set = |v: &[&str]| Some(v.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>());
        assert_eq!(selected_services(&p, &[], false).unwrap(), None);
        assert_eq!(
            selected_services(&p, &["web".into()], false).unwrap(),
            set(&["api", "db", "web"])
        );
        assert_eq!(
            selected_services(&p, &["web".into()], true).unwrap(),
            set(&["web"])
        );
        assert!(matches!(
            selected_services(&p, &["nope".into()], false),
            Err(StackError::NoSuchService(n)) if n == "nope"
        ));
    }
}
