//! The file-watch dev loop (`berth watch`, `berth up --watch`): host changes under a
//! service's `develop.watch` rules are synced into its running containers (every replica),
//! then the rule's follow-up runs (restart, exec, or a rebuild that recreates only that
//! service). One [`WatchLine`] is reported per action.
//!
//! Coalescing has no fixed quiet period before a lone edit. A change that comes after a
//! quiet spell (nothing wanted for [`BURST_GAP`] since the previous batch was applied)
//! goes out at once, with whatever was already queued. A change that arrives while a
//! batch is applied or within [`BURST_GAP`] of it, or a first read that already holds
//! several wanted paths, is part of a burst: the batch takes the whole burst, until the
//! events pause for [`BURST_GAP`] (at most [`BURST_MAX`]). A `git checkout` of 1,000
//! files is therefore one batch, or two when its first file went out alone: that file,
//! then all the rest.

pub mod apply;
pub mod notifier;
pub mod rules;
pub mod sync;

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use berth_compose::Project;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc::{UnboundedSender, unbounded_channel};

use crate::events::{Event, EventType, Subscription};
use crate::stack::{StackError, Stacks};
use notifier::{Change, Notifier, NotifierError};
use rules::{Rule, RulesError};

/// One line of a watch's report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum WatchLine {
    /// A rule is being watched.
    Watching {
        /// The service.
        service: String,
        /// The action its rule takes.
        action: String,
        /// The watched host path.
        path: String,
        /// Directories watched with inotify.
        directories: usize,
        /// Directories polled (the inotify limit was reached).
        polled: usize,
    },
    /// An action was applied.
    Action {
        /// The service.
        service: String,
        /// `sync`, `sync+restart`, `sync+exec`, `rebuild`, `restart` or `initial_sync`.
        action: String,
        /// Changed paths relative to the project directory (at most 20).
        files: Vec<String>,
        /// How many paths changed.
        count: usize,
        /// Containers it was applied to.
        containers: usize,
        /// How long it took, in milliseconds.
        millis: f64,
    },
    /// Something the user should know (watch limit, dropped events).
    Notice {
        /// The message.
        message: String,
    },
    /// An action failed; watching goes on.
    Error {
        /// The service.
        service: String,
        /// What failed.
        message: String,
    },
}

/// Errors starting a watch.
#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    /// The rules do not compile.
    #[error(transparent)]
    Rules(#[from] RulesError),
    /// The watcher could not start.
    #[error(transparent)]
    Notifier(#[from] NotifierError),
    /// The stack could not be read.
    #[error(transparent)]
    Stack(#[from] StackError),
    /// The project has no watch rules at all.
    #[error("no service of project {0} has develop.watch rules")]
    NothingToWatch(String),
}

/// The pause in events that ends a burst; a change within it of the previous batch
/// continues that burst.
pub const BURST_GAP: Duration = Duration::from_millis(200);
/// The longest a burst's batch collects before it is applied.
pub const BURST_MAX: Duration = Duration::from_secs(2);

/// The next event of the subscription (never, without one).
async fn next_event(sub: &mut Option<Subscription>) -> Option<Event> {
    match sub {
        Some(s) => s.next().await,
        None => std::future::pending().await,
    }
}

/// What identifies a version of a path: modification time, size, whether a directory.
type Stamp = (std::time::SystemTime, u64, bool);

fn stamp(p: &Path) -> Option<Stamp> {
    let m = std::fs::symlink_metadata(p).ok()?;
    Some((m.modified().ok()?, m.len(), m.is_dir()))
}

fn prunes(rules: &[Rule], dir: &Path) -> bool {
    let covering: Vec<&Rule> = rules.iter().filter(|r| dir.starts_with(&r.path)).collect();
    covering.is_empty() || covering.iter().all(|r| r.prunes(dir))
}

/// Watches `project`'s `services` (empty: all with rules) until `out` is closed (the
/// client went away). Start-up problems are returned; action failures are reported as
/// [`WatchLine::Error`] and watching goes on.
pub async fn watch(
    stacks: Stacks,
    project: Project,
    services: Vec<String>,
    out: UnboundedSender<WatchLine>,
) -> Result<(), WatchError> {
    let rules = rules::compile(&project, &services)?;
    if rules.is_empty() {
        return Err(WatchError::NothingToWatch(project.name.clone()));
    }
    let (tx, mut rx) = unbounded_channel::<Change>();
    let mut notifier = Notifier::new(tx)?;
    for r in &rules {
        let before = notifier.counts();
        if r.path.is_dir() {
            notifier.add_tree(&r.path, &|d| prunes(&rules, d));
        } else if let Some(parent) = r.path.parent() {
            notifier.add_file(parent);
        }
        let after = notifier.counts();
        let _ = out.send(WatchLine::Watching {
            service: r.service.clone(),
            action: rules::action_name(r.action).to_owned(),
            path: r.path.display().to_string(),
            directories: after.0 - before.0,
            polled: after.1 - before.1,
        });
    }
    let ctx = apply::Context {
        stacks,
        project,
        rules: rules.clone(),
    };
    // Containers (re)created or started while watching get the current files too.
    let mut starts = ctx
        .stacks
        .containers()
        .engine()
        .events(crate::events::EventFilter::default())
        .ok();
    for line in ctx.initial_sync(None).await {
        let _ = out.send(line);
    }
    let mut seen: HashMap<PathBuf, Option<Stamp>> = HashMap::new();
    // When the last batch with wanted paths was applied.
    let mut last_applied: Option<Instant> = None;
    loop {
        // A change already waiting arrived while the previous batch was applied.
        let (first, pending) = match rx.try_recv() {
            Ok(c) => (Some(c), true),
            Err(_) => (None, false),
        };
        let first = if first.is_some() {
            first
        } else {
            tokio::select! {
                c = rx.recv() => c,
                () = out.closed() => None,
                Some(ev) = next_event(&mut starts) => {
                    if ev.kind == EventType::Container
                        && ev.action == "start"
                        && ctx.service_of(&ev.id).is_some()
                    {
                        for line in ctx.initial_sync(Some(&ev.id)).await {
                            if matches!(&line, WatchLine::Action { count, .. } if *count > 0)
                                || matches!(line, WatchLine::Error { .. })
                            {
                                let _ = out.send(line);
                            }
                        }
                    }
                    continue;
                }
            }
        };
        let Some(first) = first else { break };
        let started = Instant::now();
        let mut paths = BTreeSet::new();
        let take = |c: Change, paths: &mut BTreeSet<PathBuf>| match c {
            Change::Paths(p) => paths.extend(p),
            Change::Notice(message) => {
                let _ = out.send(WatchLine::Notice { message });
            }
        };
        take(first, &mut paths);
        while let Ok(c) = rx.try_recv() {
            take(c, &mut paths);
        }
        // A burst under way (a checkout, a build writing files) is taken whole: changes
        // that arrived while the previous batch was applied or just after it, or several
        // wanted paths at once. A lone edit after a quiet spell never waits here, and
        // editor temp files (vim's `4913`, `x~`) do not count.
        let wanted = paths
            .iter()
            .filter(|p| rules.iter().any(|r| r.wants(p)))
            .take(2)
            .count();
        let recent = last_applied.is_some_and(|t| started.duration_since(t) < BURST_GAP);
        if wanted > 1 || (wanted > 0 && (pending || recent)) {
            let until = started + BURST_MAX;
            while let Ok(Some(c)) =
                tokio::time::timeout_at(until.min(Instant::now() + BURST_GAP).into(), rx.recv())
                    .await
            {
                take(c, &mut paths);
            }
        }
        // New directories get watches (and their files count as changed); vanished ones
        // lose theirs.
        for p in paths.clone() {
            if p.is_dir() {
                if !notifier.is_watched(&p) && !prunes(&rules, &p) {
                    paths.extend(notifier.add_tree(&p, &|d| prunes(&rules, d)));
                }
            } else if !p.exists() {
                notifier.forget(&p);
            }
        }
        // One write makes several events (create, modify, close) that can straddle two
        // batches: a path whose state has not changed since it was last applied is done.
        paths.retain(|p| {
            let now = stamp(p);
            seen.insert(p.clone(), now) != Some(now)
        });
        if paths.is_empty() {
            continue;
        }
        let applies = paths.iter().any(|p| rules.iter().any(|r| r.wants(p)));
        for line in ctx.apply(&paths, started).await {
            let _ = out.send(line);
        }
        if applies {
            last_applied = Some(Instant::now());
        }
    }
    Ok(())
}
