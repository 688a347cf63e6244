//! The reconciler: desired state from a Compose project, observed state from the
//! store, a plan ordered as a graph, and the executor that carries it out.
//!
//! It holds the [`Engine`] handle the daemon serves, its crash-safe [`store`], its
//! [`events`] bus, [`containers`]: single containers as `berth run` makes them, the
//! [`supervise`]or: exits, restart policies, health checks and re-adoption after a daemon
//! restart, and [`stack`]: Compose projects brought up, converged and taken down over those
//! containers.
#![forbid(unsafe_code)]

pub mod build_network;
pub mod containers;
pub mod events;
pub mod stack;
pub mod store;
pub mod supervise;
pub mod watch;

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use nix::fcntl::{Flock, FlockArg};

use crate::events::{Event, EventFilter, Events, EventsError, Subscription, Timestamp};
use crate::store::{Kind, Store, StoreError};

/// Where an engine keeps its state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineConfig {
    /// Persistent state (images, containers, networks, volumes, the event journal).
    pub root: PathBuf,
    /// Run-time files (sockets, pid files), cleared by a reboot.
    pub run_dir: PathBuf,
}

/// Errors opening or querying the engine.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// A directory or lock file of the engine could not be created or used.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// The path concerned.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// Another engine (another daemon) already owns this root.
    #[error("root {root} is already in use by another berth daemon{} (lock {lock})",
        .holder.map(|p| format!(" (pid {p})")).unwrap_or_default())]
    RootInUse {
        /// The root directory.
        root: PathBuf,
        /// The lock file held by the other engine.
        lock: PathBuf,
        /// The other engine's pid, when it could be read from the lock file.
        holder: Option<u32>,
    },
    /// The state store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The event journal failed.
    #[error(transparent)]
    Events(#[from] EventsError),
}

fn io_err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> EngineError + 'a {
    move |source| EngineError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

/// How many objects of each kind the engine knows about.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Stacks (Compose projects) deployed.
    pub stacks: usize,
    /// Containers created.
    pub containers: usize,
    /// Networks created.
    pub networks: usize,
    /// Named volumes.
    pub volumes: usize,
}

/// A summary of the engine, for `berth info`.
#[derive(Debug, Clone, PartialEq)]
pub struct Info {
    /// The state root.
    pub root: PathBuf,
    /// The run-time directory.
    pub run_dir: PathBuf,
    /// The process serving this engine.
    pub pid: u32,
    /// When the engine was opened.
    pub started_at: Timestamp,
    /// How long ago that was.
    pub uptime: Duration,
    /// Objects by kind.
    pub counts: Counts,
}

/// The engine: cheap to clone, one per root (held by a lock on `<root>/engine.lock`).
#[derive(Debug, Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    config: EngineConfig,
    store: Store,
    events: Events,
    started: Instant,
    started_at: Timestamp,
    _lock: Flock<File>,
}

impl Engine {
    /// Opens the engine on `config.root`, creating its directories, and takes the
    /// root's lock so no other engine writes the same state. Fails with
    /// [`EngineError::RootInUse`] when another process holds it.
    pub fn open(config: EngineConfig) -> Result<Engine, EngineError> {
        for dir in [&config.root, &config.run_dir] {
            fs::create_dir_all(dir).map_err(io_err("create directory", dir))?;
        }
        let lock = lock_root(&config.root)?;
        let store = Store::open(config.root.join("state"))?;
        let events = Events::open(
            &config.root.join("events"),
            events::DEFAULT_JOURNAL_MAX_BYTES,
        )?;
        Ok(Engine {
            inner: Arc::new(Inner {
                config,
                store,
                events,
                started: Instant::now(),
                started_at: Timestamp::now(),
                _lock: lock,
            }),
        })
    }

    /// Where this engine keeps its state.
    pub fn config(&self) -> &EngineConfig {
        &self.inner.config
    }

    /// The state store.
    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    /// Records an event and sends it to subscribers.
    pub fn emit(&self, event: Event) -> Result<(), EngineError> {
        Ok(self.inner.events.emit(event)?)
    }

    /// Subscribes to events (journal replay from `since`, then live until `until`).
    pub fn events(&self, filter: EventFilter) -> Result<Subscription, EngineError> {
        Ok(self.inner.events.subscribe(filter)?)
    }

    /// A summary: paths, pid, uptime and object counts.
    pub fn info(&self) -> Result<Info, EngineError> {
        let store = &self.inner.store;
        Ok(Info {
            root: self.inner.config.root.clone(),
            run_dir: self.inner.config.run_dir.clone(),
            pid: std::process::id(),
            started_at: self.inner.started_at,
            uptime: self.inner.started.elapsed(),
            counts: Counts {
                stacks: store.count(Kind::Stack)?,
                containers: store.count(Kind::Container)?,
                networks: store.count(Kind::Network)?,
                volumes: store.count(Kind::Volume)?,
            },
        })
    }
}

/// Takes `<root>/engine.lock` (flock, non-blocking) and writes our pid into it.
fn lock_root(root: &Path) -> Result<Flock<File>, EngineError> {
    let path = root.join("engine.lock");
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(io_err("open lock file", &path))?;
    let mut lock = match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
        Ok(lock) => lock,
        Err((mut file, nix::errno::Errno::EWOULDBLOCK)) => {
            let mut text = String::new();
            let holder = file
                .read_to_string(&mut text)
                .ok()
                .and_then(|_| text.trim().parse().ok());
            return Err(EngineError::RootInUse {
                root: root.to_path_buf(),
                lock: path,
                holder,
            });
        }
        Err((_, errno)) => return Err(io_err("lock", &path)(io::Error::from(errno))),
    };
    lock.set_len(0)
        .and_then(|()| lock.rewind())
        .and_then(|()| writeln!(lock, "{}", std::process::id()))
        .map_err(io_err("write pid to", &path))?;
    Ok(lock)
}

/// An error and its causes on one line (`outer: inner: innermost`), each cause once: a cause
/// whose text the line already holds (errors that print their source) is not repeated.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let text = c.to_string();
        if !s.contains(&text) {
            s.push_str(": ");
            s.push_str(&text);
        }
        cause = c.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::EventType;

    fn config(dir: &Path) -> EngineConfig {
        EngineConfig {
            root: dir.join("root"),
            run_dir: dir.join("run"),
        }
    }

    #[test]
    fn second_engine_on_one_root_is_refused_until_the_first_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let first = Engine::open(config(dir.path())).unwrap();
        let err = Engine::open(config(dir.path())).unwrap_err();
        match &err {
            EngineError::RootInUse { root, holder, .. } => {
                assert_eq!(root, &dir.path().join("root"));
                assert_eq!(*holder, Some(std::process::id()));
            }
            other => panic!("expected RootInUse, got {other}"),
        }
        assert!(err.to_string().contains("already in use"), "{err}");
        drop(first);
        Engine::open(config(dir.path())).unwrap();
    }

    #[test]
    fn info_counts_stored_objects() {
        #[derive(serde::Serialize, serde::Deserialize)]
        struct V {
            name: String,
        }
        impl store::Document for V {
            const KIND: Kind = Kind::Volume;
        }
        let dir = tempfile::tempdir().unwrap();
        let engine = Engine::open(config(dir.path())).unwrap();
        engine
            .store()
            .put(
                "data",
                &V {
                    name: "data".into(),
                },
            )
            .unwrap();
        let info = engine.info().unwrap();
        assert_eq!(
            info.counts,
            Counts {
                volumes: 1,
                ..Counts::default()
            }
        );
        assert_eq!(info.pid, std::process::id());
        assert_eq!(info.root, dir.path().join("root"));
    }

    #[tokio::test]
    async fn events_survive_reopening_the_engine() {
        let dir = tempfile::tempdir().unwrap();
        let engine = Engine::open(config(dir.path())).unwrap();
        engine
            .emit(Event::now(EventType::Daemon, "start", "d1"))
            .unwrap();
        drop(engine);
        let engine = Engine::open(config(dir.path())).unwrap();
        let mut sub = engine
            .events(EventFilter {
                since: Some(Timestamp::EPOCH),
                until: Some(Timestamp::now()),
            })
            .unwrap();
        assert_eq!(sub.next().await.unwrap().id, "d1");
        assert_eq!(sub.next().await, None);
    }
}
