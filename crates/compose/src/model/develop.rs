//! `develop`: file watch rules for `berth watch`.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::service_types::ServiceHook;

/// Development settings.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Develop {
    /// Watch rules.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub watch: Vec<WatchRule>,
}

/// What to do when files under a watched path change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum WatchAction {
    /// Copy changed files into the container.
    #[serde(rename = "sync")]
    Sync,
    /// Rebuild the image and recreate the container.
    #[serde(rename = "rebuild")]
    Rebuild,
    /// Restart the container.
    #[serde(rename = "restart")]
    Restart,
    /// Sync, then restart.
    #[serde(rename = "sync+restart")]
    SyncRestart,
    /// Sync, then run a command.
    #[serde(rename = "sync+exec")]
    SyncExec,
}

/// One watch rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WatchRule {
    /// Host path to watch (absolute after loading).
    pub path: String,
    /// What to do.
    pub action: WatchAction,
    /// Path in the container (sync actions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// Patterns to ignore.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ignore: Vec<String>,
    /// Patterns to include.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub include: Vec<String>,
    /// Command for `sync+exec`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exec: Option<ServiceHook>,
    /// Sync everything once when watching starts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initial_sync: Option<bool>,
}
