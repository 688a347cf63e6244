//! Watching host trees with `notify` (inotify): one non-recursive watch per directory, so
//! ignored directories are pruned *before* any watch is added and new directories are
//! watched as they appear. When the kernel's watch limit is exhausted the directory is
//! polled instead, and the caller is told so.
//!
//! The kernel's limit (`fs.inotify.max_user_watches`) is global, so tests cannot lower it
//! safely; [`MAX_WATCHES_ENV`] caps the watches one watcher adds instead, and reaching
//! the cap takes the same path as reaching the kernel's limit.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use notify::event::{AccessKind, AccessMode, CreateKind, ModifyKind};
use notify::{
    Config, ErrorKind, Event, EventKind, PollWatcher, RecommendedWatcher, RecursiveMode, Watcher,
};
use tokio::sync::mpsc::UnboundedSender;

/// What the watcher reports.
#[derive(Debug)]
pub enum Change {
    /// Something happened to these paths (state is read from the disk, not the event).
    Paths(Vec<PathBuf>),
    /// A problem worth telling the user about (watch limit, lost events).
    Notice(String),
}

/// Errors starting the watcher.
#[derive(Debug, thiserror::Error)]
pub enum NotifierError {
    /// The watcher could not be created or a path could not be watched.
    #[error("watch {path}: {source}")]
    Watch {
        /// The path.
        path: PathBuf,
        /// The error.
        #[source]
        source: notify::Error,
    },
}

/// Environment variable (read by the process running the watch, the daemon) capping the
/// number of inotify watches one watch adds; beyond it directories are polled, exactly as
/// when the kernel's limit is reached. Meant for tests of that fallback.
pub const MAX_WATCHES_ENV: &str = "BERTH_WATCH_MAX_INOTIFY";

/// Watches a set of directory trees.
pub struct Notifier {
    inotify: RecommendedWatcher,
    poll: Option<PollWatcher>,
    tx: UnboundedSender<Change>,
    watched: HashSet<PathBuf>,
    /// The directories of `watched` that are polled.
    polled: HashSet<PathBuf>,
    /// At most this many inotify watches ([`MAX_WATCHES_ENV`]).
    cap: Option<usize>,
}

impl std::fmt::Debug for Notifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Notifier")
            .field("watched", &self.watched.len())
            .field("polled", &self.polled.len())
            .finish()
    }
}

/// The callback of a watcher. With inotify (`closes`), a write is taken from the close
/// that ends it: the create and the data events before it would show a half-written file
/// (and a restart or rebuild would run twice). Polling sees no closes and takes all.
fn handler(
    tx: UnboundedSender<Change>,
    closes: bool,
) -> impl Fn(notify::Result<Event>) + Send + 'static {
    move |res| {
        let change = match res {
            Ok(e) if e.need_rescan() => Change::Notice(
                "the kernel dropped file events (queue overflow): rescanning".to_owned(),
            ),
            Ok(e) => {
                let skip = match e.kind {
                    EventKind::Access(AccessKind::Close(AccessMode::Write)) => false,
                    EventKind::Access(_) => true,
                    EventKind::Create(CreateKind::File)
                    | EventKind::Modify(ModifyKind::Data(_)) => closes,
                    _ => false,
                };
                if skip {
                    return;
                }
                Change::Paths(e.paths)
            }
            Err(e) => Change::Notice(format!("watch error: {e}")),
        };
        let _ = tx.send(change);
    }
}

impl Notifier {
    /// A watcher sending what it sees to `tx`.
    pub fn new(tx: UnboundedSender<Change>) -> Result<Notifier, NotifierError> {
        let inotify = notify::recommended_watcher(handler(tx.clone(), true)).map_err(|source| {
            NotifierError::Watch {
                path: PathBuf::from("inotify"),
                source,
            }
        })?;
        Ok(Notifier {
            inotify,
            poll: None,
            tx,
            watched: HashSet::new(),
            polled: HashSet::new(),
            cap: std::env::var(MAX_WATCHES_ENV)
                .ok()
                .and_then(|v| v.trim().parse().ok()),
        })
    }

    /// Directories watched with inotify and with polling.
    pub fn counts(&self) -> (usize, usize) {
        (self.watched.len() - self.polled.len(), self.polled.len())
    }

    /// Watches `dir` and every directory below it that `prune` does not reject. Returns
    /// the files found (so a directory that appeared can be synced whole).
    pub fn add_tree(&mut self, dir: &Path, prune: &dyn Fn(&Path) -> bool) -> Vec<PathBuf> {
        let mut files = Vec::new();
        let mut stack = vec![dir.to_path_buf()];
        while let Some(d) = stack.pop() {
            if prune(&d) || self.watched.contains(&d) {
                continue;
            }
            self.watch_one(&d);
            let Ok(entries) = std::fs::read_dir(&d) else {
                continue;
            };
            for e in entries.flatten() {
                let Ok(ft) = e.file_type() else { continue };
                if ft.is_dir() {
                    stack.push(e.path());
                } else {
                    files.push(e.path());
                }
            }
        }
        files
    }

    /// Watches the single file `path` (a rule naming a file).
    pub fn add_file(&mut self, path: &Path) {
        if self.watched.insert(path.to_path_buf())
            && let Err(e) = self.inotify.watch(path, RecursiveMode::NonRecursive)
        {
            let _ = self.tx.send(Change::Notice(format!(
                "cannot watch {}: {e}",
                path.display()
            )));
        }
    }

    fn watch_one(&mut self, dir: &Path) {
        let capped = self
            .cap
            .is_some_and(|cap| self.watched.len() - self.polled.len() >= cap);
        let res = if capped {
            Err(notify::Error::new(ErrorKind::MaxFilesWatch))
        } else {
            self.inotify.watch(dir, RecursiveMode::NonRecursive)
        };
        match res {
            Ok(()) => {
                self.watched.insert(dir.to_path_buf());
            }
            Err(e) if matches!(e.kind, ErrorKind::MaxFilesWatch) => {
                if self.polled.is_empty() {
                    let _ = self.tx.send(Change::Notice(format!(
                        "inotify watch limit reached (fs.inotify.max_user_watches): polling {} and \
                         any further directory every second instead",
                        dir.display()
                    )));
                }
                self.poll_one(dir);
            }
            Err(e) if matches!(&e.kind, ErrorKind::Io(io) if io.kind() == std::io::ErrorKind::NotFound) =>
                {}
            Err(e) => {
                let _ = self.tx.send(Change::Notice(format!(
                    "cannot watch {}: {e}",
                    dir.display()
                )));
            }
        }
    }

    fn poll_one(&mut self, dir: &Path) {
        if self.poll.is_none() {
            let config = Config::default().with_poll_interval(Duration::from_secs(1));
            match PollWatcher::new(handler(self.tx.clone(), false), config) {
                Ok(p) => self.poll = Some(p),
                Err(e) => {
                    let _ = self.tx.send(Change::Notice(format!(
                        "cannot poll {}: {e}",
                        dir.display()
                    )));
                    return;
                }
            }
        }
        if let Some(p) = self.poll.as_mut()
            && p.watch(dir, RecursiveMode::NonRecursive).is_ok()
        {
            self.watched.insert(dir.to_path_buf());
            self.polled.insert(dir.to_path_buf());
        }
    }

    /// Forgets directories at or below `dir` (it was deleted or moved away).
    pub fn forget(&mut self, dir: &Path) {
        let gone: Vec<PathBuf> = self
            .watched
            .iter()
            .filter(|w| w.starts_with(dir))
            .cloned()
            .collect();
        for w in gone {
            if self.polled.remove(&w) {
                if let Some(p) = self.poll.as_mut() {
                    let _ = p.unwatch(&w);
                }
            } else {
                let _ = self.inotify.unwatch(&w);
            }
            self.watched.remove(&w);
        }
    }

    /// Whether `dir` is watched.
    pub fn is_watched(&self, dir: &Path) -> bool {
        self.watched.contains(dir)
    }
}
