//! Wire types of the stack routes (`/v1/stacks/…`).
//!
//! `up`, `down` and the lifecycle actions answer with NDJSON: [`StackLine::Progress`]
//! lines while they work, then one [`StackLine::Result`] line. A client that goes away
//! does not stop the work.

use std::collections::BTreeMap;

use berth_engine::stack as engine;
use serde::{Deserialize, Serialize};

use super::containers::Container;

/// `POST /v1/stacks/{name}/up`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UpRequest {
    /// The canonical project the CLI loaded (`berth config --format json`, with
    /// `working_dir`).
    pub project: berth_compose::Project,
    /// Stack files it came from.
    #[serde(default)]
    pub config_files: Vec<String>,
    /// Services named on the command line.
    #[serde(default)]
    pub services: Vec<String>,
    /// `--force-recreate`.
    #[serde(default)]
    pub force_recreate: bool,
    /// `--no-recreate`.
    #[serde(default)]
    pub no_recreate: bool,
    /// `--no-deps`.
    #[serde(default)]
    pub no_deps: bool,
    /// `--remove-orphans`.
    #[serde(default)]
    pub remove_orphans: bool,
    /// `--scale svc=N`.
    #[serde(default)]
    pub scale: BTreeMap<String, u64>,
    /// `--build`.
    #[serde(default)]
    pub build: bool,
    /// `-t` in seconds.
    #[serde(default)]
    pub timeout: Option<u64>,
    /// `--wait`.
    #[serde(default)]
    pub wait: bool,
    /// `--wait-timeout` in seconds.
    #[serde(default)]
    pub wait_timeout: Option<u64>,
    /// `--pull always|missing|never|build` (default: each service's `pull_policy`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pull: Option<String>,
}

impl UpRequest {
    /// The engine's options, or what is wrong with the request.
    pub fn options(&self) -> Result<engine::UpOptions, String> {
        let pull = match &self.pull {
            None => None,
            Some(p) => Some(engine::PullPolicy::parse(p).ok_or_else(|| {
                format!("invalid pull policy {p:?}: use always, missing, never or build")
            })?),
        };
        Ok(engine::UpOptions {
            services: self.services.clone(),
            config_files: self.config_files.clone(),
            force_recreate: self.force_recreate,
            no_recreate: self.no_recreate,
            no_deps: self.no_deps,
            remove_orphans: self.remove_orphans,
            scale: self.scale.clone(),
            build: self.build,
            timeout: self.timeout.map(std::time::Duration::from_secs),
            wait: self.wait,
            wait_timeout: self.wait_timeout.map(std::time::Duration::from_secs),
            parallelism: None,
            pull,
        })
    }
}

/// `POST /v1/stacks/{name}/down`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct DownRequest {
    /// `-v`.
    #[serde(default)]
    pub volumes: bool,
    /// `--remove-orphans`.
    #[serde(default)]
    pub remove_orphans: bool,
    /// The services of the current stack file, when the CLI could load it.
    #[serde(default)]
    pub services: Option<Vec<String>>,
    /// `-t` in seconds.
    #[serde(default)]
    pub timeout: Option<u64>,
    /// `--rmi local|all`: remove the stack's images too.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rmi: Option<String>,
}

/// `POST /v1/stacks/{name}/run`: a one-off container of a service (`stack run`). The
/// answer streams like `up` (the dependencies' progress), then the result line; the
/// container is then known by the `name` sent.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunRequest {
    /// The canonical project the CLI loaded.
    pub project: berth_compose::Project,
    /// Stack files it came from.
    #[serde(default)]
    pub config_files: Vec<String>,
    /// The service.
    pub service: String,
    /// The container's name.
    pub name: String,
    /// Arguments replacing the service's command.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<Vec<String>>,
    /// `--entrypoint`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entrypoint: Option<String>,
    /// `-e NAME=VALUE`.
    #[serde(default)]
    pub env: Vec<String>,
    /// `-l KEY=VALUE`.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// `-u`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// `-w`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workdir: Option<String>,
    /// `-p`.
    #[serde(default)]
    pub publish: Vec<String>,
    /// `--service-ports`.
    #[serde(default)]
    pub service_ports: bool,
    /// `--no-deps`.
    #[serde(default)]
    pub no_deps: bool,
    /// Remove the container when it exits (`--rm -d`).
    #[serde(default)]
    pub auto_remove: bool,
    /// A terminal, sent on this console socket (as `POST /v1/containers`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub console_socket: Option<String>,
    /// Standard input without a terminal (as `POST /v1/containers`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stdin_socket: Option<String>,
}

/// `POST /v1/stacks/{name}/{start|stop|restart|kill|rm|pause|unpause}`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ActionRequest {
    /// Services (empty: all).
    #[serde(default)]
    pub services: Vec<String>,
    /// `-t` in seconds (stop, restart).
    #[serde(default)]
    pub timeout: Option<u64>,
    /// `-s` (kill).
    #[serde(default)]
    pub signal: Option<String>,
    /// `-f` (rm: running ones too).
    #[serde(default)]
    pub force: bool,
}

/// One line of a stack operation's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "line", rename_all = "lowercase")]
pub enum StackLine {
    /// Something happened to a container, network, volume or the stack.
    Progress(engine::Progress),
    /// The operation ended; `error` is set when it failed.
    Result {
        /// What went wrong.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<String>,
        /// Per failed service, why (empty on success).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        failures: Vec<Failure>,
    },
}

/// A failed service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failure {
    /// The service.
    pub service: String,
    /// Why.
    pub reason: String,
}

/// `GET /v1/stacks`: one stack.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StackSummary {
    /// Name.
    pub name: String,
    /// `running(2), exited(1)`.
    pub status: String,
    /// Stack files, comma-separated, as `docker compose ls` shows them.
    pub config_files: String,
    /// Project directory.
    pub working_dir: String,
}

impl From<engine::StackSummary> for StackSummary {
    fn from(s: engine::StackSummary) -> StackSummary {
        StackSummary {
            name: s.name,
            status: s.status,
            config_files: s.config_files.join(","),
            working_dir: s.working_dir.display().to_string(),
        }
    }
}

/// `GET /v1/stacks/{name}/ps`: one container of the stack.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StackContainer {
    /// Its service.
    pub service: String,
    /// Its replica number.
    pub number: u64,
    /// The container, as `GET /v1/containers/{id}` shows it.
    pub container: Container,
    /// `starting`, `healthy` or `unhealthy` for containers with a health check.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<String>,
}

/// `POST /v1/stacks/{name}/watch`: watch the project's `develop.watch` rules until the
/// client disconnects; the answer is NDJSON [`berth_engine::watch::WatchLine`]s.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WatchRequest {
    /// The canonical project the CLI loaded.
    pub project: berth_compose::Project,
    /// Services to watch (empty: every service with rules).
    #[serde(default)]
    pub services: Vec<String>,
}
