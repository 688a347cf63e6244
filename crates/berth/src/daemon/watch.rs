//! `POST /v1/stacks/{name}/watch`: the file-watch dev loop runs in the daemon (it holds
//! the engine that syncs, restarts and rebuilds); the answer streams one NDJSON
//! [`WatchLine`] per action until the client disconnects, which ends the watch.

use std::convert::Infallible;

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::Response;
use berth_engine::stack::Stacks;
use berth_engine::watch::{self, WatchLine};
use tokio::sync::mpsc;

use super::AppState;
use super::error::ApiError;
use crate::api::NDJSON;
use crate::api::stack::WatchRequest;

/// `POST /v1/stacks/{name}/watch`.
pub async fn watch(
    State(state): State<AppState>,
    Path(name): Path<String>,
    body: Result<Json<WatchRequest>, JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(req) = body.map_err(|e| ApiError::bad_request(e.body_text()))?;
    super::stacks::same_project(&req.project, &name)?;
    // Rule problems are the request's fault: answer them before streaming.
    let rules = watch::rules::compile(&req.project, &req.services)
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    if rules.is_empty() {
        return Err(ApiError::bad_request(format!(
            "no service of project {name} has develop.watch rules"
        )));
    }
    let stacks = Stacks::new(&state.containers).map_err(|e| ApiError::internal(e.to_string()))?;
    let (tx, rx) = mpsc::unbounded_channel::<WatchLine>();
    tokio::spawn(async move {
        let errors = tx.clone();
        if let Err(e) = watch::watch(stacks, req.project, req.services, tx).await {
            tracing::warn!("watch {name}: {e}");
            let _ = errors.send(WatchLine::Error {
                service: String::new(),
                message: e.to_string(),
            });
        }
    });
    let body = futures::stream::unfold(rx, |mut rx| async move {
        let line = rx.recv().await?;
        let mut bytes = serde_json::to_vec(&line).unwrap_or_default();
        bytes.push(b'\n');
        Some((Ok::<_, Infallible>(Bytes::from(bytes)), rx))
    });
    Response::builder()
        .header(header::CONTENT_TYPE, NDJSON)
        .body(Body::from_stream(body))
        .map_err(|e| ApiError::internal(e.to_string()))
}
