//! A service: every field of the Compose Specification's `services.*`, typed.

use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::build::Build;
use super::deploy::{Deploy, DeviceRequest};
use super::develop::Develop;
use super::forms::{command, env_map, label_map, string_or_list, text_list};
use super::mounts::{ServiceVolume, is_false, volumes};
use super::ports::{PortConfig, ports};
use super::service_refs::{
    DeviceMapping, EnvFile, Extends, ServiceFileRef, devices, env_files, extra_hosts, file_refs,
    gpus,
};
use super::service_types::{
    BlkioConfig, CredentialSpec, DependsOn, Healthcheck, Logging, Provider, ServiceHook,
    ServiceModel, ServiceNetwork, Ulimit, depends_on, networks, service_models,
};
use super::units::{ByteSize, Duration, SwapLimit};

/// One service of the stack. Absent fields are `None` / empty and not serialized.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Service {
    /// Metadata for the container runtime (OCI annotations).
    #[serde(
        default,
        skip_serializing_if = "IndexMap::is_empty",
        deserialize_with = "label_map"
    )]
    pub annotations: IndexMap<String, String>,
    /// Attach to the service's logs on `up` (default true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attach: Option<bool>,
    /// How to build the image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub build: Option<Build>,
    /// Block I/O limits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blkio_config: Option<BlkioConfig>,
    /// Capabilities to add.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cap_add: Vec<String>,
    /// Capabilities to drop.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cap_drop: Vec<String>,
    /// cgroup namespace: `host` or `private`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cgroup: Option<String>,
    /// Parent cgroup.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cgroup_parent: Option<String>,
    /// Command (overrides the image's `CMD`).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "command"
    )]
    pub command: Option<Vec<String>>,
    /// Configs mounted into the containers.
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "file_refs"
    )]
    pub configs: Vec<ServiceFileRef>,
    /// Fixed container name (only valid with one replica).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_name: Option<String>,
    /// Number of usable CPUs (Windows).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_count: Option<i64>,
    /// Usable percentage of CPUs (Windows).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_percent: Option<i64>,
    /// CPU shares (relative weight).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_shares: Option<i64>,
    /// CFS period in microseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_period: Option<i64>,
    /// CFS quota in microseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_quota: Option<i64>,
    /// Real-time period in microseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_rt_period: Option<i64>,
    /// Real-time runtime in microseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_rt_runtime: Option<i64>,
    /// CPUs (fractional).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpus: Option<f64>,
    /// CPUs allowed (`0-3`, `0,1`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpuset: Option<String>,
    /// Credential spec (Windows).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential_spec: Option<CredentialSpec>,
    /// Services to start first, with the condition to wait for.
    #[serde(
        default,
        skip_serializing_if = "IndexMap::is_empty",
        deserialize_with = "depends_on"
    )]
    pub depends_on: IndexMap<String, DependsOn>,
    /// Deployment settings (replicas, resources, restart policy, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deploy: Option<Deploy>,
    /// Development settings (`watch`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub develop: Option<Develop>,
    /// Device cgroup rules.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub device_cgroup_rules: Vec<String>,
    /// Host devices.
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "devices"
    )]
    pub devices: Vec<DeviceMapping>,
    /// DNS servers.
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "string_or_list"
    )]
    pub dns: Vec<String>,
    /// DNS resolver options.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dns_opt: Vec<String>,
    /// DNS search domains.
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "string_or_list"
    )]
    pub dns_search: Vec<String>,
    /// Domain name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domainname: Option<String>,
    /// Entrypoint (overrides the image's `ENTRYPOINT`).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "command"
    )]
    pub entrypoint: Option<Vec<String>>,
    /// Environment files; read into `environment` by the loader, then cleared.
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "env_files"
    )]
    pub env_file: Vec<EnvFile>,
    /// Environment variables; `None` means "unset" (a bare name not found in the environment).
    #[serde(
        default,
        skip_serializing_if = "IndexMap::is_empty",
        deserialize_with = "env_map"
    )]
    pub environment: IndexMap<String, Option<String>>,
    /// Ports exposed to linked services (not published).
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "text_list"
    )]
    pub expose: Vec<String>,
    /// The service this one extends; resolved by the loader, then cleared.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extends: Option<Extends>,
    /// Containers outside the project to link to.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub external_links: Vec<String>,
    /// Extra `/etc/hosts` entries, as `host=ip`.
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "extra_hosts"
    )]
    pub extra_hosts: Vec<String>,
    /// GPU requests.
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "gpus"
    )]
    pub gpus: Vec<DeviceRequest>,
    /// Supplementary groups.
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "text_list"
    )]
    pub group_add: Vec<String>,
    /// Health check.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healthcheck: Option<Healthcheck>,
    /// Host name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    /// Image reference.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// Run an init process as PID 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub init: Option<bool>,
    /// IPC mode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipc: Option<String>,
    /// Isolation technology.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub isolation: Option<String>,
    /// Label files.
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "string_or_list"
    )]
    pub label_file: Vec<String>,
    /// Container labels.
    #[serde(
        default,
        skip_serializing_if = "IndexMap::is_empty",
        deserialize_with = "label_map"
    )]
    pub labels: IndexMap<String, String>,
    /// Links to other services (`service[:alias]`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub links: Vec<String>,
    /// Logging driver and options.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logging: Option<Logging>,
    /// MAC address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mac_address: Option<String>,
    /// Memory limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mem_limit: Option<ByteSize>,
    /// Memory soft limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mem_reservation: Option<ByteSize>,
    /// Swappiness (0–100); printed as a string, as Compose does.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "super::forms::string_int"
    )]
    #[schemars(with = "Option<i64>")]
    pub mem_swappiness: Option<i64>,
    /// Memory plus swap limit (`-1` unlimited).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memswap_limit: Option<SwapLimit>,
    /// AI models used by the service.
    #[serde(
        default,
        skip_serializing_if = "IndexMap::is_empty",
        deserialize_with = "service_models"
    )]
    pub models: IndexMap<String, Option<ServiceModel>>,
    /// Network mode (`bridge`, `host`, `none`, `service:NAME`, `container:NAME`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network_mode: Option<String>,
    /// Networks to join, with per-network settings.
    #[serde(
        default,
        skip_serializing_if = "IndexMap::is_empty",
        deserialize_with = "networks"
    )]
    pub networks: IndexMap<String, Option<ServiceNetwork>>,
    /// Disable the OOM killer.
    #[serde(default, skip_serializing_if = "is_false")]
    pub oom_kill_disable: bool,
    /// OOM score adjustment (-1000 to 1000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oom_score_adj: Option<i64>,
    /// PID mode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<String>,
    /// PIDs limit (`-1` unlimited).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pids_limit: Option<i64>,
    /// Target platform (`linux/amd64`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<String>,
    /// Published ports.
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "ports"
    )]
    pub ports: Vec<PortConfig>,
    /// Commands run after the container starts.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub post_start: Vec<ServiceHook>,
    /// Commands run before the container stops.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pre_stop: Vec<ServiceHook>,
    /// Extended privileges.
    #[serde(default, skip_serializing_if = "is_false")]
    pub privileged: bool,
    /// Profiles this service belongs to (always enabled when empty).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub profiles: Vec<String>,
    /// Delegates the service to an external provider.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<Provider>,
    /// When to pull the image (`always`, `never`, `missing`, `build`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pull_policy: Option<String>,
    /// Refresh period for `pull_policy: refresh`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pull_refresh_after: Option<String>,
    /// Read-only root file system.
    #[serde(default, skip_serializing_if = "is_false")]
    pub read_only: bool,
    /// Restart policy (`no`, `always`, `on-failure[:N]`, `unless-stopped`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restart: Option<String>,
    /// OCI runtime.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime: Option<String>,
    /// Number of containers (superseded by `deploy.replicas`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale: Option<u64>,
    /// Secrets mounted into the containers.
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "file_refs"
    )]
    pub secrets: Vec<ServiceFileRef>,
    /// Security options (`no-new-privileges:true`, `seccomp=...`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub security_opt: Vec<String>,
    /// Size of `/dev/shm`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shm_size: Option<ByteSize>,
    /// Keep stdin open.
    #[serde(default, skip_serializing_if = "is_false")]
    pub stdin_open: bool,
    /// Time between the stop signal and SIGKILL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_grace_period: Option<Duration>,
    /// Stop signal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_signal: Option<String>,
    /// Storage driver options.
    #[serde(
        default,
        skip_serializing_if = "IndexMap::is_empty",
        deserialize_with = "label_map"
    )]
    pub storage_opt: IndexMap<String, String>,
    /// Kernel parameters.
    #[serde(
        default,
        skip_serializing_if = "IndexMap::is_empty",
        deserialize_with = "label_map"
    )]
    pub sysctls: IndexMap<String, String>,
    /// tmpfs mounts (`/run`, `/tmp:size=64m`).
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "string_or_list"
    )]
    pub tmpfs: Vec<String>,
    /// Allocate a TTY.
    #[serde(default, skip_serializing_if = "is_false")]
    pub tty: bool,
    /// Resource limits (`nofile`, `nproc`, ...).
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub ulimits: IndexMap<String, Ulimit>,
    /// Mount the Docker API socket.
    #[serde(default, skip_serializing_if = "is_false")]
    pub use_api_socket: bool,
    /// User (`name`, `uid`, `uid:gid`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// User namespace mode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub userns_mode: Option<String>,
    /// UTS namespace mode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uts: Option<String>,
    /// Mounts.
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "volumes"
    )]
    pub volumes: Vec<ServiceVolume>,
    /// Mount all volumes of another service or container.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub volumes_from: Vec<String>,
    /// Working directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub working_dir: Option<String>,
    /// `x-*` extension fields, kept as written.
    #[serde(flatten, default, skip_serializing_if = "IndexMap::is_empty")]
    pub extensions: IndexMap<String, serde_json::Value>,
}

impl Service {
    /// A stable SHA-256 (hex) over the service's canonical JSON. Equal services have equal
    /// hashes; any change of a field that is serialized changes it.
    pub fn config_hash(&self) -> String {
        // Serializing a plain data struct to JSON cannot fail: every map key is a string
        // and every number is finite or stored as a string.
        let json = serde_json::to_vec(self).unwrap_or_default();
        hex::encode(Sha256::digest(&json))
    }

    /// The replica count: `deploy.replicas`, else `scale`, else 1.
    pub fn replicas(&self) -> u64 {
        self.deploy
            .as_ref()
            .and_then(|d| d.replicas)
            .or(self.scale)
            .unwrap_or(1)
    }
}
