//! `GET /v1/version`, `GET /v1/info`, `POST /v1/shutdown`.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;

use super::AppState;
use super::error::ApiError;
use crate::api::{Counts, Info, ShutdownAck, Version};

/// `GET /v1/version`.
pub async fn version() -> Json<Version> {
    Json(Version::current())
}

/// `GET /v1/info`.
pub async fn info(State(state): State<AppState>) -> Result<Json<Info>, ApiError> {
    let engine = state.engine.clone();
    let info = tokio::task::spawn_blocking(move || engine.info())
        .await
        .map_err(|e| ApiError::internal(format!("info task failed: {e}")))??;
    let count = |n: usize| n as u64;
    Ok(Json(Info {
        version: Version::current().version,
        root: info.root.display().to_string(),
        run_dir: info.run_dir.display().to_string(),
        socket: state.socket.display().to_string(),
        pid: info.pid,
        started_at: info.started_at.to_string(),
        uptime_seconds: info.uptime.as_secs_f64(),
        counts: Counts {
            stacks: count(info.counts.stacks),
            containers: count(info.counts.containers),
            networks: count(info.counts.networks),
            volumes: count(info.counts.volumes),
        },
    }))
}

/// `POST /v1/shutdown`: asks the daemon to stop, as SIGTERM does.
pub async fn shutdown(State(state): State<AppState>) -> (StatusCode, Json<ShutdownAck>) {
    tracing::info!("shutdown requested over the API");
    state.stop_requested.notify_one();
    (
        StatusCode::ACCEPTED,
        Json(ShutdownAck {
            pid: std::process::id(),
        }),
    )
}
