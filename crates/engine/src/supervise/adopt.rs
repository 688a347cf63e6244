//! Re-adoption when the daemon starts: what the previous daemon left is made consistent before
//! any request is served.
//!
//! - A runtime container without a document (the daemon died between `create` and recording
//!   it) is killed and deleted, with its cgroups; a container directory without a document is
//!   removed.
//! - A document whose runtime container is gone, stuck in `creating` with its monitor dead, or
//!   `created` but never started (the `run` that made it was cut short; berth has no
//!   create-only command): its runtime container, directory and document are removed
//!   (`destroy`). A `created` container that ran before is an interrupted restart: its
//!   watcher finishes it.
//! - Network attachments, published ports and links of containers that no longer run are
//!   released ([`berth_net::Net::cleanup_orphans`] on the containers' shared network layer).
//! - Every remaining container gets a watcher ([`super::watch`]): running ones are waited for
//!   again; an exit that happened while no daemon ran is reported (`die` with `missed=true`)
//!   and the restart policy applied with the daemon-start rules.

use std::collections::HashSet;
use std::sync::Arc;

use berth_runtime::{Runtime, RuntimeError, Status};

use super::record::Record;
use super::{Shared, SuperviseError, Why};
use crate::containers::{ContainerDoc, runtime_id};
use crate::events::{Event, EventType};

/// What re-adoption found and did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Adoption {
    /// Containers with a watcher (running or exited).
    pub watched: Vec<String>,
    /// Runtime containers deleted because no document named them (short ids).
    pub orphaned_runtime: Vec<String>,
    /// Documents removed because their container never came to exist.
    pub half_created: Vec<String>,
    /// Container directories removed because no document named them.
    pub stray_dirs: Vec<String>,
    /// Network links removed.
    pub links: Vec<String>,
}

impl Adoption {
    /// Whether nothing was found.
    pub fn is_empty(&self) -> bool {
        *self == Adoption::default()
    }
}

fn remove_dir(path: &std::path::Path) -> Result<(), SuperviseError> {
    match std::fs::remove_dir_all(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(SuperviseError::Remove {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// Re-adopts the engine's containers; see the module documentation. A failing clean-up step
/// is logged and the next one still runs; every remaining container gets its watcher.
pub(crate) async fn adopt(shared: &Arc<Shared>) -> Result<Adoption, SuperviseError> {
    let mut report = Adoption::default();
    let store = shared.engine.store();
    let runtime = shared.containers.runtime().clone();
    let mut docs: Vec<ContainerDoc> = store
        .list::<ContainerDoc>()?
        .into_iter()
        .map(|(_, d)| d)
        .collect();
    if let Err(e) = runtime_orphans(&runtime, &docs, &mut report).await {
        tracing::warn!("removing runtime containers without a document: {e}");
    }
    match half_created(shared, &runtime, &docs, &mut report).await {
        Ok(()) => docs.retain(|d| !report.half_created.contains(&d.id)),
        Err(e) => tracing::warn!("removing half-created containers: {e}"),
    }
    if let Err(e) = stray_dirs(shared, &docs, &mut report) {
        tracing::warn!("removing container directories without a document: {e}");
    }
    if let Err(e) = network_orphans(shared, &runtime, &docs, &mut report).await {
        tracing::warn!("network clean-up skipped: {e}");
    }
    for doc in &docs {
        shared.watch(&doc.id, Why::Adopted);
        report.watched.push(doc.id.clone());
    }
    Ok(report)
}

/// Runtime containers nobody recorded: killed and deleted with their cgroups.
async fn runtime_orphans(
    runtime: &Runtime,
    docs: &[ContainerDoc],
    report: &mut Adoption,
) -> Result<(), SuperviseError> {
    let known: HashSet<String> = docs.iter().map(|d| runtime_id(&d.id).to_owned()).collect();
    let states = tokio::task::spawn_blocking({
        let runtime = runtime.clone();
        move || runtime.list()
    })
    .await??;
    for state in states.iter().filter(|s| !known.contains(&s.id)) {
        let rt = runtime.clone();
        let id = state.id.clone();
        tokio::task::spawn_blocking(move || match rt.load(&id) {
            Ok(c) => c.delete(true),
            Err(RuntimeError::NotFound { .. }) => Ok(()),
            Err(e) => Err(e),
        })
        .await??;
        report.orphaned_runtime.push(state.id.clone());
    }
    Ok(())
}

/// Documents whose container never came to exist (or is stuck in `creating` with its
/// monitor dead): directory and document removed.
async fn half_created(
    shared: &Shared,
    runtime: &Runtime,
    docs: &[ContainerDoc],
    report: &mut Adoption,
) -> Result<(), SuperviseError> {
    for doc in docs {
        let rt = runtime.clone();
        let short = runtime_id(&doc.id).to_owned();
        let record = Record::load(&shared.dir(&doc.id)).unwrap_or_default();
        let ran_before = record.handled_exit.is_some() || record.restart_count > 0;
        let gone = tokio::task::spawn_blocking(move || match rt.load(&short) {
            Err(RuntimeError::NotFound { .. }) => Ok(true),
            Err(e) => Err(e),
            Ok(c) => {
                let s = c.state()?;
                let monitor = s.monitor_pid.is_some_and(|p| {
                    nix::sys::signal::kill(nix::unistd::Pid::from_raw(p), None).is_ok()
                });
                let never_started =
                    s.status == Status::Created && s.started_at.is_none() && !ran_before;
                if (s.status == Status::Creating && !monitor) || never_started {
                    c.delete(true)?;
                    Ok(true)
                } else {
                    Ok(false)
                }
            }
        })
        .await??;
        if !gone {
            continue;
        }
        remove_dir(&shared.dir(&doc.id))?;
        shared.engine.store().delete::<ContainerDoc>(&doc.id)?;
        shared.emit(
            Event::now(EventType::Container, "destroy", &doc.id)
                .with("name", &doc.name)
                .with("reason", "half-created"),
        );
        report.half_created.push(doc.id.clone());
    }
    Ok(())
}

/// Container directories without a document (a crash between creating the directory and
/// recording the container).
fn stray_dirs(
    shared: &Shared,
    docs: &[ContainerDoc],
    report: &mut Adoption,
) -> Result<(), SuperviseError> {
    let containers_dir = shared.engine.config().root.join("containers");
    let Ok(entries) = std::fs::read_dir(&containers_dir) else {
        return Ok(());
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if entry.path().is_dir() && !docs.iter().any(|d| d.id == name) {
            remove_dir(&entry.path())?;
            report.stray_dirs.push(name);
        }
    }
    Ok(())
}

/// Network wiring (attachments, published ports, links) of containers that no longer run.
async fn network_orphans(
    shared: &Shared,
    runtime: &Runtime,
    docs: &[ContainerDoc],
    report: &mut Adoption,
) -> Result<(), SuperviseError> {
    if !shared.engine.config().root.join("net").exists() {
        return Ok(());
    }
    let running: HashSet<String> = docs
        .iter()
        .filter(|d| {
            runtime
                .load(runtime_id(&d.id))
                .and_then(|c| c.state())
                .is_ok_and(|s| {
                    matches!(
                        s.status,
                        Status::Running | Status::Paused | Status::Created | Status::Creating
                    )
                })
        })
        .map(|d| d.id.clone())
        .collect();
    let net = shared.containers.net().await?;
    if net.list().await.is_empty() {
        return Ok(());
    }
    // `cleanup_orphans` takes a non-`Sync` closure, so its future is not `Send`: it runs on
    // a blocking thread of its own.
    let handle = tokio::runtime::Handle::current();
    report.links = tokio::task::spawn_blocking(move || {
        handle.block_on(net.cleanup_orphans(&|id| running.contains(id)))
    })
    .await??;
    Ok(())
}
