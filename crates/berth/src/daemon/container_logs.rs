//! `GET /v1/containers/{id}/logs`: a container's recorded output as NDJSON, followed while
//! it runs.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::time::{Duration, SystemTime};

use axum::body::{Body, Bytes};
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::Response;
use berth_engine::containers::logs::{self, LogReader};
use berth_engine::containers::{Containers, runtime_id};
use berth_engine::events::{EventFilter, EventType, Subscription};
use berth_runtime::Status;
use berth_runtime::logs::{LogEntry, Stream};
use tokio::sync::watch;

use super::AppState;
use super::containers::{find, query};
use super::error::ApiError;
use crate::api::containers::{LogLine, LogsQuery};
use crate::api::{self, NDJSON};

/// How often a followed log is read again while the container runs (its exit is not waited
/// for: the `die` event ends the wait at once).
const LOG_POLL: Duration = Duration::from_millis(50);

/// `GET /v1/containers/{id}/logs?follow=&tail=&since=`: the recorded output as NDJSON
/// [`LogLine`]s; with `follow`, new lines until the container stops (or the daemon does).
pub async fn logs(
    State(state): State<AppState>,
    Path(key): Path<String>,
    q: Result<Query<LogsQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let q = query(q)?;
    let tail = match q.tail.as_deref() {
        None | Some("all") => None,
        Some(n) => Some(
            n.parse::<usize>()
                .map_err(|_| ApiError::bad_request(format!("invalid tail value {n:?}")))?,
        ),
    };
    let since = q
        .since
        .as_deref()
        .map(api::time::parse_wire)
        .transpose()
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    let doc = find(&state, key).await?.doc;
    // Subscribed before the first look at the container, so its `die` cannot be missed. Without
    // a subscription the feed still ends, one poll later.
    let exits = if q.follow {
        state
            .engine
            .events(EventFilter {
                since: None,
                until: None,
            })
            .ok()
    } else {
        None
    };
    let mut reader = LogReader::new(&doc.log_path);
    let (first, reader) = tokio::task::spawn_blocking(move || {
        let entries = reader.read_new();
        (entries, reader)
    })
    .await
    .map_err(|e| ApiError::internal(format!("log task failed: {e}")))?;
    let mut first = first.map_err(|e| ApiError::internal(e.to_string()))?;
    // As Docker: `since` first, then the last `tail` of what is left.
    first.retain(|e| recent(e, since));
    let feed = LogFeed {
        pending: logs::tail(first, tail).into(),
        reader: Some(reader),
        follow: q.follow,
        since,
        containers: state.containers.clone(),
        id: doc.id,
        shutdown: state.shutdown.clone(),
        exits,
    };
    Response::builder()
        .header(header::CONTENT_TYPE, NDJSON)
        .body(Body::from_stream(futures::stream::unfold(
            feed,
            LogFeed::next_line,
        )))
        .map_err(|e| ApiError::internal(e.to_string()))
}

/// Whether a log entry was written at or after `since`.
fn recent(e: &LogEntry, since: Option<SystemTime>) -> bool {
    since.is_none_or(|since| api::time::parse_wire(&e.time).is_ok_and(|t| t >= since))
}

/// The state of one log stream.
struct LogFeed {
    pending: VecDeque<LogEntry>,
    /// `None` once everything was read.
    reader: Option<LogReader>,
    follow: bool,
    since: Option<SystemTime>,
    containers: Containers,
    id: String,
    shutdown: watch::Receiver<bool>,
    /// Live events, to notice the container's exit without waiting for the next poll.
    exits: Option<Subscription>,
}

/// Resolves when the container `id` dies; never without a subscription.
async fn died(sub: &mut Option<Subscription>, id: &str) {
    if let Some(s) = sub.as_mut() {
        while let Some(ev) = s.next().await {
            if ev.kind == EventType::Container && ev.action == "die" && ev.id == id {
                return;
            }
        }
        // The bus is gone: polling alone decides from now on.
        *sub = None;
    }
    std::future::pending::<()>().await
}

impl LogFeed {
    async fn next_line(mut self) -> Option<(Result<Bytes, Infallible>, LogFeed)> {
        loop {
            while let Some(e) = self.pending.pop_front() {
                if !recent(&e, self.since) {
                    continue;
                }
                let line = LogLine {
                    stream: match e.stream {
                        Stream::Stdout => "stdout".into(),
                        Stream::Stderr => "stderr".into(),
                    },
                    time: e.time,
                    log: e.log,
                };
                let mut bytes = serde_json::to_vec(&line).ok()?;
                bytes.push(b'\n');
                return Some((Ok(Bytes::from(bytes)), self));
            }
            if !self.follow {
                return None;
            }
            let mut reader = self.reader.take()?;
            let (c, id) = (self.containers.clone(), self.id.clone());
            // Whether it has stopped is decided before reading: what it wrote before it
            // stopped is then in the file.
            let (finished, entries, reader) = tokio::task::spawn_blocking(move || {
                let finished = c
                    .runtime()
                    .load(runtime_id(&id))
                    .and_then(|r| r.state())
                    .map(|s| !matches!(s.status, Status::Running | Status::Paused))
                    .unwrap_or(true);
                let entries = reader.read_new();
                (finished, entries, reader)
            })
            .await
            .ok()?;
            let entries = match entries {
                Ok(e) => e,
                Err(e) => {
                    tracing::warn!("log of {}: {e}", self.id);
                    return None;
                }
            };
            self.pending.extend(entries);
            if !finished {
                self.reader = Some(reader);
                if self.pending.is_empty() {
                    tokio::select! {
                        _ = tokio::time::sleep(LOG_POLL) => {}
                        _ = died(&mut self.exits, &self.id) => {}
                        _ = self.shutdown.wait_for(|stop| *stop) => self.follow = false,
                    }
                }
            } else {
                self.follow = false;
            }
        }
    }
}
