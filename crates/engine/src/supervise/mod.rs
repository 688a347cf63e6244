//! The supervisor: what the daemon does about containers while they run and when they end.
//!
//! [`Supervisor::spawn`] starts a tokio task that first re-adopts what an earlier daemon left
//! ([`adopt`]: half-created leftovers removed, exits missed while no daemon ran recorded), then
//! follows the engine's events: every container that starts gets a watcher ([`watch`]), one
//! tokio task per container that
//!
//! - waits for the process's exit over the monitor's control socket (an async Unix socket:
//!   no thread per container; the monitor answers `Wait` when the process exits). Measured
//!   with `benches/supervise_wait.rs` for 100 idle containers: +1.0 MB RSS and no thread as
//!   tokio tasks, against +2.1 MB RSS and 100 threads (plus their kernel stacks) with one
//!   thread blocked in `Container::wait` per container; both use no CPU while idle,
//! - runs the container's health check meanwhile ([`health`]),
//! - on exit emits `die` (with `exitCode`), releases the network (unpublishes its ports and
//!   detaches it), removes `--rm` containers (after [`watch::AUTO_REMOVE_GRACE`], so that a
//!   client attached to a foreground run reads the last output and removes it itself), and
//!   applies the restart policy with Docker's
//!   back-off ([`restart`]), counting restarts in the container's [`record`].
//!
//! A user's `stop` or `kill` marks the container first ([`record::mark_stopped_by_user`]), so
//! the exit it causes is never followed by a restart; after a daemon restart `always`
//! containers come back regardless, `unless-stopped` ones only if the user had not stopped
//! them, as Docker does. Containers keep running when the supervisor stops: their monitors
//! hold them, and the next supervisor re-adopts them.

pub mod adopt;
pub mod health;
pub mod record;
pub mod restart;
pub mod watch;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use tokio::sync::watch as signal;
use tokio::task::JoinHandle;

use crate::Engine;
use crate::containers::{Containers, ContainersError};
use crate::events::{Event, EventFilter, EventType};
use crate::store::StoreError;

/// Errors of the supervisor's work on one container or on re-adoption (logged, never fatal
/// for the daemon).
#[derive(Debug, thiserror::Error)]
pub enum SuperviseError {
    /// The state store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The runtime failed.
    #[error(transparent)]
    Runtime(#[from] berth_runtime::RuntimeError),
    /// A container operation (start, remove, network release) failed.
    #[error(transparent)]
    Containers(#[from] ContainersError),
    /// The supervisor's record of a container could not be read or written.
    #[error(transparent)]
    Record(#[from] record::RecordError),
    /// The network layer failed.
    #[error(transparent)]
    Net(#[from] berth_net::NetError),
    /// A leftover directory could not be removed.
    #[error("remove {path}: {source}")]
    Remove {
        /// The directory.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// A blocking job panicked or was cancelled.
    #[error("supervisor job failed: {0}")]
    Join(#[from] tokio::task::JoinError),
}

/// Why a watcher is started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Why {
    /// The daemon started and found the container (running or not).
    Adopted,
    /// The container was started (by the user or a stack) while the supervisor ran.
    Started,
}

/// What watchers share.
pub(crate) struct Shared {
    pub(crate) containers: Containers,
    pub(crate) engine: Engine,
    pub(crate) stop: signal::Receiver<bool>,
    watchers: Mutex<HashMap<String, JoinHandle<()>>>,
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, JoinHandle<()>>> {
        // Only the map's consistency matters, and every critical section leaves it whole.
        self.watchers.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Starts a watcher for container `id` unless one runs.
    pub(crate) fn watch(self: &Arc<Self>, id: &str, why: Why) {
        let mut map = self.lock();
        map.retain(|_, h| !h.is_finished());
        if map.contains_key(id) || *self.stop.borrow() {
            return;
        }
        let task = tokio::spawn(watch::run(self.clone(), id.to_owned(), why));
        map.insert(id.to_owned(), task);
    }

    /// Called by a watcher that is done: unless `started_meanwhile` says the container runs
    /// again (someone started it after the watcher looked), the watcher is deregistered and
    /// `false` returned. Under the map's lock, so that a `start` event handled concurrently
    /// either finds the watcher still registered (and the watcher then sees the container
    /// running) or finds none and starts a new one.
    pub(crate) fn finish(&self, id: &str, started_meanwhile: impl FnOnce() -> bool) -> bool {
        let mut map = self.lock();
        if started_meanwhile() {
            return true;
        }
        map.remove(id);
        false
    }

    /// The directory of container `id`.
    pub(crate) fn dir(&self, id: &str) -> PathBuf {
        self.engine.config().root.join("containers").join(id)
    }

    /// Records and broadcasts an event; a journal failure is logged.
    pub(crate) fn emit(&self, event: Event) {
        if let Err(e) = self.engine.emit(event) {
            tracing::warn!("cannot record event: {e}");
        }
    }
}

/// The running supervisor of one engine; see the module documentation.
pub struct Supervisor {
    shared: Arc<Shared>,
    stop: signal::Sender<bool>,
    main: JoinHandle<()>,
    adopted: signal::Receiver<bool>,
}

impl std::fmt::Debug for Supervisor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Supervisor")
            .field("watched", &self.watched())
            .finish_non_exhaustive()
    }
}

impl Supervisor {
    /// Starts supervising the containers of `containers`' engine: re-adoption first, then
    /// every container that starts. Must be called inside a tokio runtime.
    ///
    /// ```no_run
    /// # async fn f(containers: berth_engine::containers::Containers) {
    /// use berth_engine::supervise::Supervisor;
    /// let supervisor = Supervisor::spawn(containers);
    /// supervisor.adopted().await;
    /// // … serve requests …
    /// supervisor.shutdown().await;
    /// # }
    /// ```
    pub fn spawn(containers: Containers) -> Supervisor {
        let (stop_tx, stop_rx) = signal::channel(false);
        let (adopted_tx, adopted_rx) = signal::channel(false);
        let shared = Arc::new(Shared {
            engine: containers.engine().clone(),
            containers,
            stop: stop_rx,
            watchers: Mutex::new(HashMap::new()),
        });
        let main = tokio::spawn(main_loop(shared.clone(), adopted_tx));
        Supervisor {
            shared,
            stop: stop_tx,
            main,
            adopted: adopted_rx,
        }
    }

    /// Returns once re-adoption is over: leftovers removed, missed exits handled, a watcher on
    /// every container. The daemon waits for this before it serves requests.
    pub async fn adopted(&self) {
        let mut rx = self.adopted.clone();
        // An error means the main task ended, which also ends adoption.
        let _ = rx.wait_for(|done| *done).await;
    }

    /// How many containers have a watcher now.
    pub fn watched(&self) -> usize {
        let mut map = self.shared.lock();
        map.retain(|_, h| !h.is_finished());
        map.len()
    }

    /// Stops every watcher and health check (containers keep running) and waits for them.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        if let Err(e) = self.main.await {
            tracing::warn!("supervisor task failed: {e}");
        }
        let tasks: Vec<JoinHandle<()>> = self.shared.lock().drain().map(|(_, h)| h).collect();
        for t in tasks {
            if let Err(e) = t.await {
                tracing::warn!("container watcher failed: {e}");
            }
        }
    }
}

async fn main_loop(shared: Arc<Shared>, adopted: signal::Sender<bool>) {
    // Subscribe before adopting, so a container started meanwhile is not missed.
    let mut events = match shared.engine.events(EventFilter::default()) {
        Ok(s) => Some(s),
        Err(e) => {
            tracing::error!("supervisor cannot follow engine events: {e}");
            None
        }
    };
    match adopt::adopt(&shared).await {
        Ok(report) => {
            if !report.is_empty() {
                tracing::info!(?report, "re-adopted containers");
            }
        }
        Err(e) => tracing::error!("re-adoption failed: {e}"),
    }
    let _ = adopted.send(true);
    let Some(events) = events.as_mut() else {
        return;
    };
    let mut stop = shared.stop.clone();
    loop {
        tokio::select! {
            _ = stop.wait_for(|s| *s) => break,
            event = events.next() => match event {
                None => break,
                Some(e) if e.kind == EventType::Container && e.action == "start" => {
                    shared.watch(&e.id, Why::Started);
                }
                Some(_) => {}
            },
        }
    }
}
