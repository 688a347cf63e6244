//! Wire types of `berth diff` and `berth commit`: `GET /v1/containers/{id}/changes` and
//! `POST /v1/containers/{id}/commit`, shaped as Docker's `/containers/{id}/changes` and
//! `/commit`.

use serde::{Deserialize, Serialize};

/// One changed path of a container, as Docker's `/containers/{id}/changes` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerChange {
    /// Absolute path in the container.
    pub path: String,
    /// 0: changed, 1: added, 2: deleted (Docker's numbers).
    pub kind: u8,
}

impl ContainerChange {
    /// The letter `docker diff` prints: `C`, `A` or `D`.
    pub fn letter(&self) -> char {
        match self.kind {
            1 => 'A',
            2 => 'D',
            _ => 'C',
        }
    }
}

/// Body of `POST /v1/containers/{id}/commit`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommitRequest {
    /// `REPO[:TAG]` for the new image (absent: untagged).
    #[serde(default)]
    pub reference: Option<String>,
    /// History comment (`-m`).
    #[serde(default)]
    pub message: Option<String>,
    /// Author (`-a`).
    #[serde(default)]
    pub author: Option<String>,
    /// Dockerfile instructions applied to the config (`-c`).
    #[serde(default)]
    pub changes: Vec<String>,
    /// Freeze the container while its changes are read (default true).
    #[serde(default = "yes")]
    pub pause: bool,
}

fn yes() -> bool {
    true
}

/// Answer of `POST /v1/containers/{id}/commit`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommitResponse {
    /// The new image's ID (`sha256:…`).
    #[serde(rename = "Id")]
    pub id: String,
}
