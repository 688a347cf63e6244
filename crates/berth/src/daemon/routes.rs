//! The route table. Handlers live in one file per resource and only translate
//! requests into [`Engine`](berth_engine::Engine) calls; the full layout, including
//! the routes still to come, is in [`crate::api::paths`].

use axum::Router;
use axum::routing::{get, post};

use super::{AppState, error, events, system};
use crate::api::paths;

/// Every route of the API.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route(paths::VERSION, get(system::version))
        .route(paths::INFO, get(system::info))
        .route(paths::EVENTS, get(events::events))
        .route(paths::SHUTDOWN, post(system::shutdown))
        .fallback(error::not_found)
        .with_state(state)
}
