//! What the stack commands report while they work: one [`Progress`] value per object and
//! step, sent on a channel ([`ProgressSink`]); the daemon streams them as NDJSON.

use serde::{Deserialize, Serialize};

/// What kind of object a [`Progress`] line is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ObjectKind {
    /// A container.
    Container,
    /// A network.
    Network,
    /// A volume.
    Volume,
    /// An image (pulled or built for a service, removed by `down --rmi`).
    Image,
    /// The stack as a whole.
    Stack,
}

/// Where a [`Progress`] object stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Being pulled.
    Pulling,
    /// Pulled.
    Pulled,
    /// Being built.
    Building,
    /// Built.
    Built,
    /// Being created.
    Creating,
    /// Created.
    Created,
    /// Being recreated (the detail says why).
    Recreating,
    /// Being started.
    Starting,
    /// Started.
    Started,
    /// Already running and up to date.
    Running,
    /// Waiting for a dependency.
    Waiting,
    /// Its health check passed.
    Healthy,
    /// It exited (a one-shot that completed).
    Exited,
    /// Being restarted (the detail says why).
    Restarting,
    /// Frozen (`pause`).
    Paused,
    /// Thawed (`unpause`).
    Unpaused,
    /// Being stopped.
    Stopping,
    /// Stopped.
    Stopped,
    /// Being removed.
    Removing,
    /// Removed.
    Removed,
    /// Something the user should know (orphans, a network kept).
    Warning,
    /// It failed (the detail says why).
    Error,
}

impl Status {
    /// `Creating`, `Started`, … as Compose prints them.
    pub fn as_str(&self) -> &'static str {
        match self {
            Status::Pulling => "Pulling",
            Status::Pulled => "Pulled",
            Status::Building => "Building",
            Status::Built => "Built",
            Status::Creating => "Creating",
            Status::Created => "Created",
            Status::Recreating => "Recreating",
            Status::Starting => "Starting",
            Status::Started => "Started",
            Status::Running => "Running",
            Status::Waiting => "Waiting",
            Status::Healthy => "Healthy",
            Status::Exited => "Exited",
            Status::Restarting => "Restarting",
            Status::Paused => "Paused",
            Status::Unpaused => "Unpaused",
            Status::Stopping => "Stopping",
            Status::Stopped => "Stopped",
            Status::Removing => "Removing",
            Status::Removed => "Removed",
            Status::Warning => "Warning",
            Status::Error => "Error",
        }
    }
}

/// One progress report of `up`, `down` and the lifecycle commands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Progress {
    /// What it is about.
    pub kind: ObjectKind,
    /// The object's name.
    pub name: String,
    /// The service, for containers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    /// Where it stands.
    pub status: Status,
    /// Why (recreate causes, errors, warnings).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

impl Progress {
    /// About container `name` of `service`.
    pub fn container(service: &str, name: &str, status: Status) -> Progress {
        Progress {
            kind: ObjectKind::Container,
            name: name.to_owned(),
            service: Some(service.to_owned()),
            status,
            detail: None,
        }
    }

    /// About network `name`.
    pub fn network(name: &str, status: Status) -> Progress {
        Progress {
            kind: ObjectKind::Network,
            name: name.to_owned(),
            service: None,
            status,
            detail: None,
        }
    }

    /// About volume `name`.
    pub fn volume(name: &str, status: Status) -> Progress {
        Progress {
            kind: ObjectKind::Volume,
            name: name.to_owned(),
            service: None,
            status,
            detail: None,
        }
    }

    /// About image `name`.
    pub fn image(name: &str, status: Status) -> Progress {
        Progress {
            kind: ObjectKind::Image,
            name: name.to_owned(),
            service: None,
            status,
            detail: None,
        }
    }

    /// About the stack `name`.
    pub fn stack(name: &str, status: Status) -> Progress {
        Progress {
            kind: ObjectKind::Stack,
            name: name.to_owned(),
            service: None,
            status,
            detail: None,
        }
    }

    /// With a detail.
    pub fn detail(mut self, detail: impl Into<String>) -> Progress {
        self.detail = Some(detail.into());
        self
    }
}

/// Where progress goes; a closed receiver is fine (the client went away).
#[derive(Debug, Clone)]
pub struct ProgressSink(Option<tokio::sync::mpsc::UnboundedSender<Progress>>);

impl ProgressSink {
    /// Progress sent to `tx`.
    pub fn new(tx: tokio::sync::mpsc::UnboundedSender<Progress>) -> ProgressSink {
        ProgressSink(Some(tx))
    }

    /// Progress dropped.
    pub fn none() -> ProgressSink {
        ProgressSink(None)
    }

    /// Reports `p`.
    pub fn send(&self, p: Progress) {
        if let Some(tx) = &self.0 {
            let _ = tx.send(p);
        }
    }
}
