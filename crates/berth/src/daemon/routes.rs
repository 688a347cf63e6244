//! The route table. Handlers live in one file per resource and only translate
//! requests into [`Engine`](berth_engine::Engine) calls; the full layout, including
//! the routes still to come, is in [`crate::api::paths`]. A new route is added there
//! (with its test's list of routes) and documented in `schemas/api.openapi.yaml`.

use axum::Router;
use axum::middleware;
use axum::routing::{get, post};

use super::{
    AppState, container_commit, container_logs, containers, error, events, file_watch, networks,
    peer, stacks, system,
};
use crate::api::paths;

/// Every route of the API. Serve it with `into_make_service_with_connect_info::<Peer>()`
/// (the request log needs the caller's credentials).
pub fn router(state: AppState) -> Router {
    Router::new()
        .route(paths::VERSION, get(system::version))
        .route(paths::INFO, get(system::info))
        .route(paths::EVENTS, get(events::events))
        .route(paths::SHUTDOWN, post(system::shutdown))
        .route(
            paths::CONTAINERS,
            get(containers::list).post(containers::create),
        )
        .route(
            paths::CONTAINER,
            get(containers::inspect).delete(containers::remove),
        )
        .route(paths::CONTAINER_START, post(containers::start))
        .route(paths::CONTAINER_STOP, post(containers::stop))
        .route(paths::CONTAINER_KILL, post(containers::kill))
        .route(paths::CONTAINER_WAIT, post(containers::wait))
        .route(paths::CONTAINER_LOGS, get(container_logs::logs))
        .route(paths::CONTAINER_PORT, get(containers::port))
        .route(
            paths::CONTAINER_ARCHIVE,
            get(containers::archive_get)
                .put(containers::archive_put)
                .layer(axum::extract::DefaultBodyLimit::max(1 << 30)),
        )
        .route(paths::CONTAINER_PAUSE, post(containers::pause))
        .route(paths::CONTAINER_UNPAUSE, post(containers::unpause))
        .route(paths::CONTAINER_RESTART, post(containers::restart))
        .route(paths::CONTAINER_TOP, get(containers::top))
        .route(paths::CONTAINER_CHANGES, get(container_commit::changes))
        .route(paths::CONTAINER_COMMIT, post(container_commit::commit))
        .route(paths::CONTAINER_STATS, get(containers::stats))
        .route(paths::NETWORKS, get(networks::list).post(networks::create))
        .route(paths::NETWORKS_PRUNE, post(networks::prune))
        .route(
            paths::NETWORK,
            get(networks::inspect).delete(networks::remove),
        )
        .route(paths::NETWORK_CONNECT, post(networks::connect))
        .route(paths::NETWORK_DISCONNECT, post(networks::disconnect))
        .route(paths::STACK_WATCH, post(file_watch::watch))
        .merge(stacks::routes())
        .fallback(error::not_found)
        .method_not_allowed_fallback(error::method_not_allowed)
        .layer(middleware::from_fn(peer::log_requests))
        .with_state(state)
}
