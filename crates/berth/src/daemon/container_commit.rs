//! `GET /v1/containers/{id}/changes` (`berth diff`) and `POST /v1/containers/{id}/commit`
//! (`berth commit`).

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use berth_engine::containers::changes::{ChangesError, CommitOptions};
use berth_runtime::diff::ChangeKind;

use super::AppState;
use super::error::ApiError;
use crate::api::commit::{CommitRequest, CommitResponse, ContainerChange};

fn api_error(e: ChangesError) -> ApiError {
    match e {
        ChangesError::Container(c) => ApiError::from(*c),
        e if e.is_bad_request() => ApiError::bad_request(berth_engine::error_chain(&e)),
        e => ApiError::internal(berth_engine::error_chain(&e)),
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ChangesError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::internal(format!("container task failed: {e}")))?
        .map_err(api_error)
}

/// `GET /v1/containers/{id}/changes`.
pub async fn changes(
    State(state): State<AppState>,
    Path(key): Path<String>,
) -> Result<Json<Vec<ContainerChange>>, ApiError> {
    let c = state.containers.clone();
    let list = blocking(move || c.diff(&key)).await?;
    Ok(Json(
        list.into_iter()
            .map(|c| ContainerChange {
                path: c.path.display().to_string(),
                kind: match c.kind {
                    ChangeKind::Changed => 0,
                    ChangeKind::Added => 1,
                    ChangeKind::Deleted => 2,
                },
            })
            .collect(),
    ))
}

/// `POST /v1/containers/{id}/commit`.
pub async fn commit(
    State(state): State<AppState>,
    Path(key): Path<String>,
    body: Result<Json<CommitRequest>, JsonRejection>,
) -> Result<Json<CommitResponse>, ApiError> {
    let Json(req) = body.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let opts = CommitOptions {
        reference: req.reference,
        message: req.message,
        author: req.author,
        changes: req.changes,
        pause: req.pause,
    };
    let c = state.containers.clone();
    let image = blocking(move || c.commit(&key, &opts)).await?;
    Ok(Json(CommitResponse {
        id: image.id.to_string(),
    }))
}
