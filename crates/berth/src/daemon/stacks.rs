//! `/v1/stacks…`: Compose projects, translated into [`berth_engine::stack::Stacks`] calls.
//!
//! The mutating routes stream NDJSON ([`StackLine`]): progress lines while the engine
//! works, then one result line. The work runs in its own task, so a client that hangs
//! up (Ctrl-C on `berth up`) does not leave a stack half-converged. Operations on one
//! project are serialised; different projects proceed in parallel.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex, OnceLock};

use axum::Json;
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::Response;
use axum::routing::{get, post};
use berth_engine::error_chain;
use berth_engine::stack::{
    OneOffOptions, Progress, ProgressSink, RemoveImages, StackError, Stacks,
};
use tokio::sync::{mpsc, oneshot};

use super::AppState;
use super::error::ApiError;
use crate::api::stack::{
    ActionRequest, DownRequest, Failure, RunRequest, StackContainer, StackLine, StackSummary,
    UpRequest,
};
use crate::api::{NDJSON, paths};

/// The stack routes, merged into the daemon's router.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route(paths::STACKS, get(list))
        .route(paths::STACK_PS, get(ps))
        .route(paths::STACK_UP, post(up))
        .route(paths::STACK_DOWN, post(down))
        .route(paths::STACK_RUN, post(run))
        .route(paths::STACK_ACTION, post(action))
}

/// Refuses a stack file sent to another stack's route.
pub(super) fn same_project(project: &berth_compose::Project, name: &str) -> Result<(), ApiError> {
    if project.name != name {
        return Err(ApiError::bad_request(format!(
            "project {:?} sent to the route of {name:?}",
            project.name
        )));
    }
    Ok(())
}

fn open(state: &AppState) -> Result<Stacks, ApiError> {
    Stacks::new(&state.containers).map_err(|e| ApiError::internal(e.to_string()))
}

fn project_lock(name: &str) -> Arc<tokio::sync::Mutex<()>> {
    static LOCKS: OnceLock<Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>> = OnceLock::new();
    let mut map = LOCKS
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    map.entry(name.to_owned()).or_default().clone()
}

fn failures(e: &StackError) -> Vec<Failure> {
    match e {
        StackError::Failed { failures } => failures
            .iter()
            .map(|f| Failure {
                service: f.service.clone(),
                reason: f.reason.clone(),
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// Runs `work` in its own task and streams its progress, then its result.
fn stream<F, Fut>(name: String, work: F) -> Result<Response, ApiError>
where
    F: FnOnce(ProgressSink) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = Result<(), StackError>> + Send + 'static,
{
    let (tx, rx) = mpsc::unbounded_channel::<Progress>();
    let (done_tx, done_rx) = oneshot::channel::<StackLine>();
    tokio::spawn(async move {
        let lock = project_lock(&name);
        let _guard = lock.lock().await;
        let result = work(ProgressSink::new(tx)).await;
        let line = match result {
            Ok(()) => StackLine::Result {
                error: None,
                failures: Vec::new(),
            },
            Err(e) => {
                tracing::warn!("stack {name}: {e}");
                StackLine::Result {
                    error: Some(error_chain(&e)),
                    failures: failures(&e),
                }
            }
        };
        let _ = done_tx.send(line);
    });
    struct Feed {
        rx: mpsc::UnboundedReceiver<Progress>,
        done: Option<oneshot::Receiver<StackLine>>,
    }
    let body = futures::stream::unfold(
        Feed {
            rx,
            done: Some(done_rx),
        },
        |mut feed| async move {
            let line = match feed.rx.recv().await {
                Some(p) => StackLine::Progress(p),
                None => {
                    let done = feed.done.take()?;
                    done.await.unwrap_or(StackLine::Result {
                        error: Some("the operation's task ended without a result".to_owned()),
                        failures: Vec::new(),
                    })
                }
            };
            let mut bytes = serde_json::to_vec(&line).unwrap_or_default();
            bytes.push(b'\n');
            Some((Ok::<_, Infallible>(Bytes::from(bytes)), feed))
        },
    );
    Response::builder()
        .header(header::CONTENT_TYPE, NDJSON)
        .body(Body::from_stream(body))
        .map_err(|e| ApiError::internal(e.to_string()))
}

/// `GET /v1/stacks`.
async fn list(State(state): State<AppState>) -> Result<Json<Vec<StackSummary>>, ApiError> {
    let stacks = open(&state)?;
    let list = tokio::task::spawn_blocking(move || stacks.list())
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?
        .map_err(|e| ApiError::internal(e.to_string()))?;
    Ok(Json(list.into_iter().map(StackSummary::from).collect()))
}

/// `?oneoff=` of `GET /v1/stacks/{name}/ps`.
#[derive(Debug, Default, serde::Deserialize)]
struct PsQuery {
    /// Include one-off containers (`stack run`).
    #[serde(default)]
    oneoff: bool,
}

/// `GET /v1/stacks/{name}/ps?oneoff=`.
async fn ps(
    State(state): State<AppState>,
    Path(name): Path<String>,
    query: Result<Query<PsQuery>, QueryRejection>,
) -> Result<Json<Vec<StackContainer>>, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let stacks = open(&state)?;
    let list = tokio::task::spawn_blocking(move || {
        if query.oneoff {
            stacks.ps_all(&name)
        } else {
            stacks.ps(&name)
        }
    })
    .await
    .map_err(|e| ApiError::internal(e.to_string()))?
    .map_err(|e| ApiError::internal(e.to_string()))?;
    let networks = state.containers.networks().await?;
    Ok(Json(
        list.into_iter()
            .map(|c| StackContainer {
                container: super::containers::to_wire(&c.info, &networks),
                health: c.info.health.as_ref().map(|h| h.status.as_str().to_owned()),
                service: c.service,
                number: c.number,
            })
            .collect(),
    ))
}

/// `POST /v1/stacks/{name}/up`.
async fn up(
    State(state): State<AppState>,
    Path(name): Path<String>,
    body: Result<Json<UpRequest>, JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(req) = body.map_err(|e| ApiError::bad_request(e.body_text()))?;
    same_project(&req.project, &name)?;
    let opts = req.options().map_err(ApiError::bad_request)?;
    let stacks = open(&state)?;
    stream(name, move |progress| async move {
        stacks.up(req.project, &opts, &progress).await
    })
}

/// `POST /v1/stacks/{name}/down`.
async fn down(
    State(state): State<AppState>,
    Path(name): Path<String>,
    body: Result<Json<DownRequest>, JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(req) = body.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let rmi = match &req.rmi {
        None => None,
        Some(r) => Some(RemoveImages::parse(r).ok_or_else(|| {
            ApiError::bad_request(format!("invalid --rmi {r:?}: use local or all"))
        })?),
    };
    let stacks = open(&state)?;
    stream(name.clone(), move |progress| async move {
        let opts = berth_engine::stack::DownOptions {
            volumes: req.volumes,
            remove_orphans: req.remove_orphans,
            services: req.services,
            timeout: req.timeout.map(std::time::Duration::from_secs),
            rmi,
        };
        stacks.down(&name, &opts, &progress).await
    })
}

/// `POST /v1/stacks/{name}/run`: a one-off container (`stack run`).
async fn run(
    State(state): State<AppState>,
    Path(name): Path<String>,
    body: Result<Json<RunRequest>, JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(req) = body.map_err(|e| ApiError::bad_request(e.body_text()))?;
    same_project(&req.project, &name)?;
    let stacks = open(&state)?;
    stream(name, move |progress| async move {
        let opts = OneOffOptions {
            service: req.service,
            name: req.name,
            command: req.command,
            entrypoint: req.entrypoint,
            env: req.env,
            labels: req.labels,
            user: req.user,
            workdir: req.workdir,
            publish: req.publish,
            service_ports: req.service_ports,
            no_deps: req.no_deps,
            auto_remove: req.auto_remove,
            console_socket: req.console_socket.map(std::path::PathBuf::from),
            stdin_socket: req.stdin_socket.map(std::path::PathBuf::from),
            config_files: req.config_files,
        };
        stacks
            .run_oneoff(req.project, &opts, &progress)
            .await
            .map(drop)
    })
}

/// `POST /v1/stacks/{name}/{action}`: start, stop, restart, kill, rm, pause, unpause.
async fn action(
    State(state): State<AppState>,
    Path((name, action)): Path<(String, String)>,
    body: Result<Json<ActionRequest>, JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(req) = body.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let signal = match (&*action, &req.signal) {
        ("kill", Some(s)) => Some(
            berth_engine::containers::parse_signal(s)
                .ok_or_else(|| ApiError::bad_request(format!("invalid signal {s:?}")))?,
        ),
        ("kill", None) => Some(berth_runtime::Signal::SIGKILL),
        ("start" | "stop" | "restart" | "rm" | "pause" | "unpause", _) => None,
        _ => return Err(ApiError::bad_request(format!("unknown action {action:?}"))),
    };
    let stacks = open(&state)?;
    stream(name.clone(), move |progress| async move {
        let timeout = req.timeout.map(std::time::Duration::from_secs);
        let services = &req.services;
        match &*action {
            "start" => stacks.start(&name, services, &progress).await,
            "stop" => stacks.stop(&name, services, timeout, &progress).await,
            "restart" => stacks.restart(&name, services, timeout, &progress).await,
            "kill" => stacks.kill(
                &name,
                services,
                signal.unwrap_or(berth_runtime::Signal::SIGKILL),
                &progress,
            ),
            "rm" => stacks
                .remove(&name, services, req.force, &progress)
                .await
                .map(drop),
            _ => stacks.pause(&name, services, action == "unpause", &progress),
        }
    })
}
