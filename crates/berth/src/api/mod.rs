//! Wire types of the daemon's HTTP/JSON API, shared by the server (`daemon/`) and
//! the client (`client/`). The API is documented in `schemas/api.openapi.yaml`.
//!
//! These types are the contract on the wire; they are converted from the engine's
//! own types at the edge so the engine can change without breaking clients.

pub mod commit;
pub mod containers;
pub mod networks;
pub mod paths;
pub mod stack;
pub mod time;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The API version, the first segment of every route (`/v1/...`).
pub const API_VERSION: &str = "1";

/// Media type of streaming endpoints: one JSON document per line.
pub const NDJSON: &str = "application/x-ndjson";

/// `GET /v1/version`: what the daemon is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Version {
    /// berth's version (`0.1.0`).
    pub version: String,
    /// The API version the daemon serves (`1`).
    pub api_version: String,
    /// Operating system (`linux`).
    pub os: String,
    /// CPU architecture (`x86_64`).
    pub arch: String,
}

impl Version {
    /// The version of this very binary.
    pub fn current() -> Version {
        Version {
            version: env!("CARGO_PKG_VERSION").to_string(),
            api_version: API_VERSION.to_string(),
            os: std::env::consts::OS.to_string(),
            arch: std::env::consts::ARCH.to_string(),
        }
    }
}

/// `GET /v1/info`: the daemon's paths, process and object counts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Info {
    /// berth's version.
    pub version: String,
    /// The state root directory.
    pub root: String,
    /// The run-time directory.
    pub run_dir: String,
    /// The socket the daemon listens on.
    pub socket: String,
    /// The daemon's process id.
    pub pid: u32,
    /// When the daemon started (RFC 3339, UTC, nanoseconds).
    pub started_at: String,
    /// Seconds since the daemon started.
    pub uptime_seconds: f64,
    /// Objects the daemon manages, by kind.
    pub counts: Counts,
}

/// Objects the daemon manages, by kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    /// Stacks (Compose projects).
    pub stacks: u64,
    /// Containers.
    pub containers: u64,
    /// Networks.
    pub networks: u64,
    /// Named volumes.
    pub volumes: u64,
}

/// One event on `GET /v1/events` (one JSON object per line).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// When it happened (RFC 3339, UTC, nanoseconds).
    pub time: String,
    /// What it concerns: `container`, `network`, `volume`, `image`, `stack`, `daemon`.
    #[serde(rename = "type")]
    pub kind: String,
    /// What happened: `create`, `start`, `die`, `health_status`, `destroy`, ...
    pub action: String,
    /// The object's id.
    pub id: String,
    /// Details (`name`, `image`, `exitCode`, ...).
    #[serde(default)]
    pub attributes: BTreeMap<String, String>,
}

impl From<berth_engine::events::Event> for Event {
    fn from(e: berth_engine::events::Event) -> Event {
        Event {
            time: e.time.to_string(),
            kind: e.kind.to_string(),
            action: e.action,
            id: e.id,
            attributes: e.attributes,
        }
    }
}

/// Query of `GET /v1/events`. Times are Unix seconds (`1700000000`,
/// `1700000000.5`) or RFC 3339 (`2026-11-22T11:00:00Z`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventsQuery {
    /// Replay recorded events from this time on; without it only new events are sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<String>,
    /// End the stream after this time; without it the stream follows forever.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<String>,
}

/// The body of every error response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// What went wrong, for a human.
    pub message: String,
    /// The exit code a CLI command should end with (Docker's `run` codes: 125 for berth's
    /// own failures, 126/127 when the container's command cannot run), when it matters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<u8>,
}

/// `POST /v1/shutdown`: acknowledgement that the daemon is stopping.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShutdownAck {
    /// The pid of the daemon that is stopping.
    pub pid: u32,
}
