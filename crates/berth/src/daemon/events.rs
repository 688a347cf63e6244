//! `GET /v1/events?since=&until=`: newline-delimited JSON events.

use std::convert::Infallible;

use axum::body::{Body, Bytes};
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::header;
use axum::response::Response;
use berth_engine::events::{EventFilter, Subscription, Timestamp};
use tokio::sync::watch;

use super::AppState;
use super::error::ApiError;
use crate::api::{self, EventsQuery, NDJSON};

/// `GET /v1/events`: replays journalled events from `since`, then streams new ones
/// until `until` (or forever). The stream also ends, after the daemon's own `stop`
/// event, when the daemon shuts down.
pub async fn events(
    State(state): State<AppState>,
    query: Result<Query<EventsQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let parse = |s: Option<String>| -> Result<Option<Timestamp>, ApiError> {
        s.map(|s| api::time::parse_wire(&s).map(Timestamp))
            .transpose()
            .map_err(|e| ApiError::bad_request(e.to_string()))
    };
    let filter = EventFilter {
        since: parse(query.since)?,
        until: parse(query.until)?,
    };
    // Replaying the journal reads files: keep it off the async workers.
    let engine = state.engine.clone();
    let sub = tokio::task::spawn_blocking(move || engine.events(filter))
        .await
        .map_err(|e| ApiError::internal(format!("events task failed: {e}")))??;
    let stream = futures::stream::unfold(
        Feed {
            sub,
            shutdown: state.shutdown.clone(),
            draining: false,
        },
        Feed::next_line,
    );
    Response::builder()
        .header(header::CONTENT_TYPE, NDJSON)
        .body(Body::from_stream(stream))
        .map_err(|e| ApiError::internal(e.to_string()))
}

/// The state of one event stream.
struct Feed {
    sub: Subscription,
    shutdown: watch::Receiver<bool>,
    draining: bool,
}

impl Feed {
    async fn next_line(mut self) -> Option<(Result<Bytes, Infallible>, Feed)> {
        let event = if self.draining {
            self.sub.try_next()?
        } else {
            tokio::select! {
                biased;
                event = self.sub.next() => event?,
                _ = self.shutdown.wait_for(|stop| *stop) => {
                    self.draining = true;
                    self.sub.try_next()?
                }
            }
        };
        let mut line = match serde_json::to_vec(&api::Event::from(event)) {
            Ok(line) => line,
            Err(e) => {
                tracing::error!("cannot serialise event: {e}");
                return None;
            }
        };
        line.push(b'\n');
        Some((Ok(Bytes::from(line)), self))
    }
}
