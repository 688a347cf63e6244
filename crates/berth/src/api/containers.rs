//! Wire types of `/v1/containers`: what `berth run` sends, what `ps`/`inspect` receive, the
//! log lines of `logs` and the answers of `stop`/`wait`.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use serde::{Deserialize, Serialize};

/// `POST /v1/containers`: create and start a container (`docker run`'s options).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ContainerCreate {
    /// Image reference.
    pub image: String,
    /// Arguments replacing the image's `Cmd`.
    pub command: Vec<String>,
    /// `--entrypoint` (`""` clears the image's).
    pub entrypoint: Option<String>,
    /// `NAME=VALUE` (a bare `NAME` is resolved by the client).
    pub env: Vec<String>,
    /// `-w`.
    pub workdir: Option<String>,
    /// `-u user[:group]`.
    pub user: Option<String>,
    /// `--hostname`.
    pub hostname: Option<String>,
    /// `--name`.
    pub name: Option<String>,
    /// `-v /host:/container[:ro]`.
    pub volumes: Vec<String>,
    /// `-p [HOST_IP:][HOST_PORT:]CONTAINER_PORT[/PROTO]`.
    pub publish: Vec<String>,
    /// `--network`: `bridge`, `none`, `host` or a network's name.
    pub network: String,
    /// `--network-alias`: further DNS names on the first network.
    pub network_aliases: Vec<String>,
    /// `--ip`: a fixed IPv4 address on the first network.
    pub ip: Option<Ipv4Addr>,
    /// `--ip6`: a fixed IPv6 address on the first network.
    pub ip6: Option<Ipv6Addr>,
    /// `--dns`.
    pub dns: Vec<IpAddr>,
    /// `--dns-search`.
    pub dns_search: Vec<String>,
    /// `--dns-option`.
    pub dns_options: Vec<String>,
    /// `--add-host NAME:IP`.
    pub extra_hosts: Vec<String>,
    /// `--rm`.
    pub auto_remove: bool,
    /// `--init`.
    pub init: bool,
    /// `--restart` (`no`, `always`, `on-failure[:N]`, `unless-stopped`).
    pub restart: Option<String>,
    /// `-m`.
    pub memory: Option<String>,
    /// `--cpus`.
    pub cpus: Option<f64>,
    /// `--pids-limit`.
    pub pids_limit: Option<i64>,
    /// `--read-only`.
    pub read_only: bool,
    /// `--cap-add`.
    pub cap_add: Vec<String>,
    /// `--cap-drop`.
    pub cap_drop: Vec<String>,
    /// `--security-opt`.
    pub security_opt: Vec<String>,
    /// `--ulimit NAME=SOFT[:HARD]`.
    pub ulimits: Vec<String>,
    /// `--tmpfs /path[:options]`.
    pub tmpfs: Vec<String>,
    /// `--label KEY=VALUE`.
    pub labels: BTreeMap<String, String>,
    /// `-t`: the process gets a pseudo-terminal, whose master end the runtime sends to
    /// `console_socket` (a Unix socket the client listens on); its output is not logged.
    pub tty: bool,
    /// With `tty`: the client's console socket.
    pub console_socket: Option<String>,
    /// `-i` without `tty`: a Unix socket the client listens on and sends its standard
    /// input over (`SCM_RIGHTS`), which becomes the container's; the output is logged.
    pub stdin_socket: Option<String>,
    /// `--health-*`: the health check (`None`: the image's, if any).
    pub healthcheck: Option<Healthcheck>,
    /// `--no-healthcheck`: none, not even the image's.
    pub no_healthcheck: bool,
    /// `--stop-signal` (default: the image's, else `SIGTERM`).
    pub stop_signal: Option<String>,
    /// `--stop-timeout` in seconds (default 10).
    pub stop_timeout: Option<u64>,
}

/// A health check; durations in nanoseconds, as Docker's API has them. In a request, absent
/// values take Docker's defaults and an empty `test` keeps the image's.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Healthcheck {
    /// `["CMD", prog, args…]`, `["CMD-SHELL", script]` or `["NONE"]`.
    pub test: Vec<String>,
    /// Time between checks.
    pub interval: Option<u64>,
    /// Time a check may take.
    pub timeout: Option<u64>,
    /// Consecutive failures that make the container unhealthy.
    pub retries: Option<u32>,
    /// Time after start during which failures do not count.
    pub start_period: Option<u64>,
    /// Time between checks during the start period.
    pub start_interval: Option<u64>,
}

/// A container's health, as the supervisor last found it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerHealth {
    /// `starting`, `healthy` or `unhealthy`.
    pub status: String,
    /// Failed checks in a row.
    pub failing_streak: u32,
    /// The last results, oldest first (at most 5).
    pub log: Vec<HealthLogEntry>,
}

/// One run of a health check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthLogEntry {
    /// When it started (RFC 3339).
    pub start: String,
    /// When it ended.
    pub end: String,
    /// Its exit code (`-1`: timed out or could not run).
    pub exit_code: i32,
    /// The end of its output (at most 4 KiB).
    pub output: String,
}

/// The answer to `POST /v1/containers`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerCreated {
    /// The id (64 hex digits).
    pub id: String,
    /// The name.
    pub name: String,
    /// Warnings of the runtime (clamped limits, ...).
    pub warnings: Vec<String>,
}

/// A container as `GET /v1/containers[/{id}]` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Container {
    /// The id (64 hex digits).
    pub id: String,
    /// The name.
    pub name: String,
    /// The image as the user named it.
    pub image: String,
    /// The image's id (`sha256:...`).
    pub image_id: String,
    /// The process arguments.
    pub command: Vec<String>,
    /// Creation time (RFC 3339).
    pub created: String,
    /// Host name.
    pub hostname: String,
    /// `bridge`, `host`, `none` or the first network's name.
    pub network_mode: String,
    /// Address on the first network while attached.
    pub ip: Option<String>,
    /// Published ports.
    pub ports: Vec<Port>,
    /// Every network the container is on or will join at its next start, first one first.
    pub networks: Vec<ContainerNetwork>,
    /// The signal `stop` sends first.
    pub stop_signal: String,
    /// `--rm`.
    pub auto_remove: bool,
    /// The JSON-lines log file.
    pub log_path: String,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// Restart policy (`no`, `always`, `on-failure:3`, `unless-stopped`).
    pub restart: String,
    /// Restarts made by the restart policy since the user last started it.
    pub restart_count: u32,
    /// The health check the daemon runs, if any.
    pub healthcheck: Option<Healthcheck>,
    /// Its health, for containers with a health check.
    pub health: Option<ContainerHealth>,
    /// Seconds `stop` waits before `SIGKILL` (`None`: 10).
    pub stop_timeout: Option<u64>,
    /// `--dns`.
    pub dns: Vec<String>,
    /// `--dns-search`.
    pub dns_search: Vec<String>,
    /// `--add-host`, as `NAME:IP`.
    pub extra_hosts: Vec<String>,
    /// What the runtime reports now.
    pub state: ContainerState,
}

/// A container's process state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerState {
    /// `created`, `running`, `paused`, `exited`, or `dead` (the runtime lost it).
    pub status: String,
    /// Its process runs (or is paused).
    pub running: bool,
    /// It is paused.
    pub paused: bool,
    /// Host pid of its init while running.
    pub pid: Option<i32>,
    /// Exit code once exited.
    pub exit_code: Option<i32>,
    /// The OOM killer ended it.
    pub oom_killed: bool,
    /// When its process started (RFC 3339).
    pub started_at: Option<String>,
    /// When its process exited.
    pub finished_at: Option<String>,
}

/// A published port.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Port {
    /// `tcp` or `udp`.
    pub protocol: String,
    /// The host address (`None`: every address).
    pub host_ip: Option<String>,
    /// The host port.
    pub host_port: u16,
    /// The container port.
    pub container_port: u16,
}

/// One network of a container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerNetwork {
    /// The network's name.
    pub network: String,
    /// DNS names asked for on this network (its name and short id always resolve).
    pub aliases: Vec<String>,
    /// The fixed IPv4 address asked for, if any.
    pub ipv4_address: Option<String>,
    /// The interface inside the container while attached (`eth0`, ...).
    pub ifname: Option<String>,
    /// Its IPv4 address while attached.
    pub ip: Option<String>,
    /// Its IPv6 address while attached.
    pub ip6: Option<String>,
    /// Its MAC address while attached.
    pub mac: Option<String>,
    /// The network's gateway (none on internal networks).
    pub gateway: Option<String>,
}

/// Query of `GET /v1/containers`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ListQuery {
    /// Also containers that do not run.
    pub all: bool,
}

/// Query of `GET /v1/containers/{id}/logs`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct LogsQuery {
    /// Keep streaming until the container stops.
    pub follow: bool,
    /// Only the last N lines recorded so far (`all`, the default, for every line).
    pub tail: Option<String>,
    /// Only lines from this time on (Unix seconds or RFC 3339).
    pub since: Option<String>,
}

/// One line of `GET /v1/containers/{id}/logs` (NDJSON).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogLine {
    /// `stdout` or `stderr`.
    pub stream: String,
    /// When it was written (RFC 3339, nanoseconds).
    pub time: String,
    /// The text, with its newline.
    pub log: String,
}

/// Query of `POST /v1/containers/{id}/stop`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct StopQuery {
    /// Seconds between the stop signal and `SIGKILL` (default: the container's, else 10).
    pub t: Option<u64>,
}

/// Query of `POST /v1/containers/{id}/kill`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct KillQuery {
    /// Signal name or number (default `KILL`).
    pub signal: Option<String>,
}

/// Query of `DELETE /v1/containers/{id}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RemoveQuery {
    /// Kill it first when it runs.
    pub force: bool,
}

/// How a container's process ended (`stop`, `wait`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExitCode {
    /// Exit code; `128 + n` when killed by signal `n`.
    pub exit_code: i32,
}

/// The answer of the container actions that only name it (`start`, `kill`, `rm`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerRef {
    /// The id.
    pub id: String,
    /// The name.
    pub name: String,
}

/// One process of `GET /v1/containers/{id}/top`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerProcess {
    /// Host pid.
    pub pid: i32,
    /// Host pid of its parent.
    pub ppid: i32,
    /// Real user id, as the host sees it.
    pub uid: u32,
    /// Command line.
    pub command: String,
}

/// `GET /v1/containers/{id}/stats`: the container's cgroup counters now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerStats {
    /// Reading time (RFC 3339), for rates between two readings.
    pub read: String,
    /// CPU time used, nanoseconds.
    pub cpu_usage_ns: u64,
    /// Memory in use, bytes.
    pub memory_usage: u64,
    /// Memory limit, bytes (`None`: unlimited).
    pub memory_limit: Option<u64>,
    /// Processes and threads.
    pub pids_current: u64,
    /// Pids limit (`None`: unlimited).
    pub pids_limit: Option<u64>,
    /// Bytes read from block devices.
    pub io_read_bytes: u64,
    /// Bytes written to block devices.
    pub io_write_bytes: u64,
}

/// Query of `GET`/`PUT /v1/containers/{id}/archive`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArchiveQuery {
    /// The path in the container.
    pub path: String,
}

/// Answer of `PUT /v1/containers/{id}/archive`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArchiveResult {
    /// Files and directories written.
    pub copied: usize,
}
