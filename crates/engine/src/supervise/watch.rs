//! One container's watcher: waits for its exit (running its health check meanwhile), reports
//! and cleans up after the exit, and restarts it as its policy says.
//!
//! ```text
//!   ┌────────────► running: health checks ─┐
//!   │                                      │ exit (monitor answers Wait)
//!   │ start (after back-off)               ▼
//!   └──────────── policy says restart ◄─ die event, network released, --rm removed
//!                          │ no
//!                          ▼
//!                        done (unless started again meanwhile)
//! ```

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use berth_runtime::process::message::Request;
use berth_runtime::state::files;
use berth_runtime::{Container, RuntimeError, State, Status};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use super::record::{self, HandledExit, Record};
use super::restart::{self, Backoff, ExitFacts, Occasion};
use super::{Shared, SuperviseError, Why, health};
use crate::containers::{ContainerDoc, ContainersError, HealthCheck, runtime_id};
use crate::events::{Event, EventType};

/// How often the state file is read when the monitor's socket cannot be used.
const POLL: Duration = Duration::from_millis(200);
/// How long an exited `--rm` container stays before the supervisor removes it.
pub const AUTO_REMOVE_GRACE: Duration = Duration::from_secs(2);
/// Attempts at releasing a network that is busy (another command holds the net state).
const RELEASE_ATTEMPTS: u32 = 10;

/// How a wait ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Waited {
    /// The process exited; the state file has the details.
    Exited,
    /// The monitor died without recording an exit.
    MonitorGone,
}

/// Runs the watcher of container `id` until the container is removed, stays down, or the
/// supervisor stops.
pub(crate) async fn run(shared: Arc<Shared>, id: String, why: Why) {
    if let Err(e) = watch(&shared, &id, why).await {
        tracing::warn!(container = %id, "supervising container failed: {e}");
        shared.finish(&id, || false);
    }
}

fn monitor_alive(state: &State) -> bool {
    state
        .monitor_pid
        .is_some_and(|p| nix::sys::signal::kill(nix::unistd::Pid::from_raw(p), None).is_ok())
}

fn is_up(state: &State) -> bool {
    matches!(
        state.status,
        Status::Running | Status::Paused | Status::Created | Status::Creating
    ) && monitor_alive(state)
}

fn load(shared: &Shared, id: &str) -> Result<Option<(Container, State)>, SuperviseError> {
    match shared.containers.runtime().load(runtime_id(id)) {
        Ok(c) => match c.state() {
            Ok(s) => Ok(Some((c, s))),
            Err(RuntimeError::State(_)) if !c.dir().exists() => Ok(None),
            Err(e) => Err(e.into()),
        },
        Err(RuntimeError::NotFound { .. }) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

fn parse_time(t: Option<&str>) -> Option<SystemTime> {
    humantime::parse_rfc3339_weak(t?.trim_end_matches('Z')).ok()
}

/// How long the run that ended lasted.
fn ran(state: &State) -> Duration {
    match (
        parse_time(state.started_at.as_deref()),
        parse_time(state.finished_at.as_deref()),
    ) {
        (Some(s), Some(f)) => f.duration_since(s).unwrap_or_default(),
        _ => Duration::ZERO,
    }
}

async fn watch(shared: &Arc<Shared>, id: &str, why: Why) -> Result<(), SuperviseError> {
    let dir = shared.dir(id);
    let mut record = Record::load(&dir).unwrap_or_else(|e| {
        tracing::warn!(container = %id, "starting a new supervisor record: {e}");
        Record::default()
    });
    if why == Why::Started && record.restart_count != 0 {
        // Docker counts restarts since the user last started the container.
        record.restart_count = 0;
        record.save(&dir)?;
    }
    let mut backoff = Backoff::default();
    let mut stop = shared.stop.clone();
    let mut adopting = why == Why::Adopted;
    loop {
        let Some((container, state)) = load(shared, id)? else {
            shared.finish(id, || false);
            return Ok(());
        };
        let Some(doc) = shared.engine.store().get::<ContainerDoc>(id)? else {
            shared.finish(id, || false);
            return Ok(());
        };
        if adopting
            && state.status == Status::Created
            && (record.handled_exit.is_some() || record.restart_count > 0)
        {
            // A restart the previous daemon began but did not finish.
            adopting = false;
            let (c, key) = (shared.containers.clone(), id.to_owned());
            if let Err(e) = blocking(move |h| h.block_on(c.start(&key))).await? {
                tracing::warn!(container = %id, "finishing an interrupted restart failed: {e}");
                shared.finish(id, || false);
                return Ok(());
            }
            continue;
        }
        // Only an exit found on re-adoption happened while no daemon watched; once a
        // watcher has waited, exits are ordinary.
        let found_exited = adopting && state.status == Status::Stopped;
        adopting = false;
        let mut waited = Waited::Exited;
        if state.status != Status::Stopped {
            if let Some(check) = &doc.healthcheck
                && state.status == Status::Running
            {
                if record.health.is_none() || record.health_run != state.started_at {
                    record.health = Some(health::starting(record.health.take()));
                    record.health_run.clone_from(&state.started_at);
                    record.save(&dir)?;
                }
                let since = parse_time(state.started_at.as_deref())
                    .and_then(|t| SystemTime::now().duration_since(t).ok())
                    .unwrap_or_default();
                tokio::select! {
                    w = wait_exit(container.dir()) => waited = w,
                    never = health_loop(shared, &doc, &container, check, &mut record, since) => match never {},
                    _ = stop.wait_for(|s| *s) => return Ok(()),
                }
            } else {
                tokio::select! {
                    w = wait_exit(container.dir()) => waited = w,
                    _ = stop.wait_for(|s| *s) => return Ok(()),
                }
            }
        }
        let Some((_, state)) = load(shared, id)? else {
            shared.finish(id, || false);
            return Ok(());
        };
        let code = match waited {
            Waited::Exited => state.exit_code.unwrap_or(255),
            Waited::MonitorGone => 255,
        };
        let exit = HandledExit {
            started_at: state.started_at.clone(),
            finished_at: state.finished_at.clone(),
            exit_code: code,
        };
        if record::removing(&dir) {
            // `rm` is taking it away: the exit is its doing, and the directory is going.
            shared.finish(id, || false);
            return Ok(());
        }
        let new_exit = record.handled_exit.as_ref() != Some(&exit);
        if new_exit {
            handle_exit(shared, &doc, &state, code, found_exited, waited).await;
            record.handled_exit = Some(exit);
            record.save(&dir)?;
        }
        // Also an exited `--rm` container that an earlier daemon did not get to remove.
        if doc.auto_remove && (new_exit || found_exited) {
            // A client attached to a foreground `run --rm` reads the last output, waits and
            // removes the container itself within this grace; detached ones are ours.
            tokio::select! {
                _ = tokio::time::sleep(AUTO_REMOVE_GRACE) => {}
                _ = stop.wait_for(|s| *s) => return Ok(()),
            }
            let (c, key) = (shared.containers.clone(), id.to_owned());
            match blocking(move |h| h.block_on(c.remove(&key, true))).await? {
                Ok(_) | Err(ContainersError::NotFound(_)) => {}
                Err(e) => return Err(e.into()),
            }
            shared.finish(id, || false);
            return Ok(());
        }
        // On re-adoption the daemon-start rules apply; otherwise only a new exit may restart.
        let occasion = if found_exited {
            Some(Occasion::DaemonStart)
        } else {
            new_exit.then_some(Occasion::Exit)
        };
        let facts = ExitFacts {
            code,
            restarts: record.restart_count,
            stopped_by_user: record::stopped_by_user(&dir),
        };
        let Some(occasion) = occasion.filter(|o| restart::should_restart(doc.restart, facts, *o))
        else {
            let up = || {
                load(shared, id)
                    .ok()
                    .flatten()
                    .is_some_and(|(_, s)| is_up(&s))
            };
            if shared.finish(id, up) {
                // Started again by someone else while we decided: a new run to watch.
                record.restart_count = 0;
                backoff = Backoff::default();
                continue;
            }
            return Ok(());
        };
        let delay = match occasion {
            Occasion::DaemonStart => Duration::ZERO,
            Occasion::Exit => backoff.next(ran(&state)),
        };
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = stop.wait_for(|s| *s) => return Ok(()),
        }
        // The user may have removed, stopped or started it during the back-off.
        if shared.engine.store().get::<ContainerDoc>(id)?.is_none() {
            shared.finish(id, || false);
            return Ok(());
        }
        if occasion == Occasion::Exit && record::stopped_by_user(&dir) {
            continue;
        }
        if load(shared, id)?.is_some_and(|(_, s)| is_up(&s)) {
            continue;
        }
        // Counted before the start (as Docker does), so a daemon killed during the start
        // does not forget it.
        record.restart_count += 1;
        record.save(&dir)?;
        let (c, key) = (shared.containers.clone(), id.to_owned());
        match blocking(move |h| h.block_on(c.start(&key))).await? {
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(container = %id, "restart failed, giving up: {e}");
                shared.emit(
                    Event::now(EventType::Container, "restart-failed", id)
                        .with("name", &doc.name)
                        .with("error", e.to_string()),
                );
                shared.finish(id, || false);
                return Ok(());
            }
        }
    }
}

/// Runs `job` on the blocking pool with a handle on the current runtime (the container
/// operations make blocking runtime calls).
async fn blocking<T: Send + 'static>(
    job: impl FnOnce(&tokio::runtime::Handle) -> T + Send + 'static,
) -> Result<T, SuperviseError> {
    let handle = tokio::runtime::Handle::current();
    Ok(tokio::task::spawn_blocking(move || job(&handle)).await?)
}

/// The `die` event and the network's release.
async fn handle_exit(
    shared: &Shared,
    doc: &ContainerDoc,
    state: &State,
    code: i32,
    missed: bool,
    waited: Waited,
) {
    let mut event = Event::now(EventType::Container, "die", &doc.id)
        .with("name", &doc.name)
        .with("image", &doc.image)
        .with("exitCode", code.to_string());
    if let Some(t) = &state.finished_at {
        event = event.with("finishedAt", t);
    }
    if missed {
        // Exited while no daemon watched: noticed on re-adoption.
        event = event.with("missed", "true");
    }
    if waited == Waited::MonitorGone {
        event = event.with("error", "monitor died");
    }
    if state.oom_killed {
        shared.emit(Event::now(EventType::Container, "oom", &doc.id).with("name", &doc.name));
    }
    shared.emit(event);
    for attempt in 1..=RELEASE_ATTEMPTS {
        // A container started again meanwhile has its network back: leave it.
        if load(shared, &doc.id)
            .ok()
            .flatten()
            .is_some_and(|(_, s)| is_up(&s))
        {
            return;
        }
        match shared.containers.release_network(doc).await {
            Ok(()) => return,
            Err(e) if attempt == RELEASE_ATTEMPTS => {
                tracing::warn!(container = %doc.id, "cannot release the network: {e}");
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(50 * u64::from(attempt))).await,
        }
    }
}

/// Runs the health check forever (the caller drops it when the container exits), recording
/// every result and emitting `health_status: <status>` when the status changes.
async fn health_loop(
    shared: &Shared,
    doc: &ContainerDoc,
    container: &Container,
    check: &HealthCheck,
    record: &mut Record,
    since_start: Duration,
) -> std::convert::Infallible {
    let dir = shared.dir(&doc.id);
    let started = Instant::now()
        .checked_sub(since_start)
        .unwrap_or_else(Instant::now);
    loop {
        tokio::time::sleep(health::next_interval(check, started.elapsed())).await;
        if container.state().is_ok_and(|s| s.status == Status::Paused) {
            // A frozen container cannot run the check; it is not a failure either.
            continue;
        }
        let in_start_period = health::in_start_period(check, started.elapsed());
        let result = health::probe(container.clone(), check).await;
        if result.exit_code != 0
            && !container
                .state()
                .is_ok_and(|s| s.status == Status::Running || s.status == Status::Paused)
        {
            // It failed because the container is going away: not a health result.
            std::future::pending::<()>().await;
        }
        let health = record.health.get_or_insert_with(|| health::starting(None));
        let changed = health::apply(health, result, check, in_start_period);
        if let Err(e) = record.save(&dir) {
            tracing::warn!(container = %doc.id, "cannot record health: {e}");
        }
        if let Some(status) = changed {
            shared.emit(
                Event::now(
                    EventType::Container,
                    format!("health_status: {}", status.as_str()),
                    &doc.id,
                )
                .with("name", &doc.name)
                .with("image", &doc.image),
            );
        }
    }
}

/// Waits until the container's process has exited (the monitor answers `Wait` then), or its
/// monitor is found dead; `dir` is the runtime's directory of the container
/// ([`Container::dir`]). Falls back to reading the state file when the socket is gone.
pub async fn wait_exit(dir: &Path) -> Waited {
    let socket = dir.join(files::SOCKET);
    loop {
        if let Ok(stream) = tokio::net::UnixStream::connect(&socket).await {
            let (read, mut write) = stream.into_split();
            let mut line = serde_json::to_vec(&Request::Wait).unwrap_or_default();
            line.push(b'\n');
            if write.write_all(&line).await.is_ok() {
                let mut answer = String::new();
                // Whatever the answer (or a reset), the state file tells how it ended.
                let _ = BufReader::new(read).read_line(&mut answer).await;
            }
        }
        match State::load(dir) {
            Ok(s) if s.status == Status::Stopped => return Waited::Exited,
            Ok(s) if !monitor_alive(&s) => return Waited::MonitorGone,
            Err(_) if !dir.exists() => return Waited::MonitorGone,
            _ => tokio::time::sleep(POLL).await,
        }
    }
}
