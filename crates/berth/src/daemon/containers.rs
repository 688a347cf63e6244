//! `/v1/containers`: `run`, `ps`, `inspect`, `start`, `stop`, `kill`, `wait`, `rm`, `logs`
//! and `port` on the daemon's one [`Containers`] service.
//!
//! The engine's container calls block (the runtime waits for its monitor's report, `wait`
//! for the process to exit), so every one of them runs on tokio's blocking pool through
//! [`blocking`]; the async workers stay free for other requests.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::future::Future;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::Response;
use berth_engine::containers::limits::Limits;
use berth_engine::containers::logs::{self, LogReader};
use berth_engine::containers::{
    ContainerInfo, Containers, ContainersError, ExtraHost, Network, NetworkAttachment, NetworkMode,
    RestartPolicy, RunOptions, parse_signal, runtime_id,
};
use berth_runtime::logs::{LogEntry, Stream};
use berth_runtime::{Signal, Status};
use tokio::sync::watch;

use super::AppState;
use super::error::ApiError;
use crate::api::containers::{
    Container, ContainerCreate, ContainerCreated, ContainerNetwork, ContainerRef, ContainerState,
    ExitCode, KillQuery, ListQuery, LogLine, LogsQuery, Port, RemoveQuery, StopQuery,
};
use crate::api::{self, NDJSON};

/// How often a followed log is read again.
const LOG_POLL: Duration = Duration::from_millis(50);

/// Runs a blocking container call on tokio's blocking pool.
pub(super) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ContainersError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::internal(format!("container task failed: {e}")))?
        .map_err(ApiError::from)
}

/// Runs one of the engine's async container calls (which block inside) on the blocking pool.
pub(super) async fn blocking_async<T, F>(
    containers: &Containers,
    f: impl FnOnce(Containers) -> F + Send + 'static,
) -> Result<T, ApiError>
where
    T: Send + 'static,
    F: Future<Output = Result<T, ContainersError>>,
{
    let c = containers.clone();
    let handle = tokio::runtime::Handle::current();
    blocking(move || handle.block_on(f(c))).await
}

fn query<T>(q: Result<Query<T>, QueryRejection>) -> Result<T, ApiError> {
    q.map(|Query(q)| q)
        .map_err(|e| ApiError::bad_request(e.body_text()))
}

/// The wire form of a container, with its attachments as the network layer has them.
pub(super) fn to_wire(info: &ContainerInfo, networks: &[Network]) -> Container {
    let doc = &info.doc;
    let state = info.state.as_ref();
    let status = match state.map(|s| s.status) {
        Some(Status::Running) => "running",
        Some(Status::Paused) => "paused",
        Some(Status::Created | Status::Creating) => "created",
        Some(Status::Stopped) => "exited",
        None => "dead",
    };
    let mut wanted = berth_engine::containers::network::attachments(doc);
    // Attachments the document does not list (a crash between attach and record) still show.
    for n in networks {
        if n.attachments.contains_key(&doc.id) && !wanted.iter().any(|w| w.network == n.name) {
            wanted.push(NetworkAttachment {
                network: n.name.clone(),
                ..NetworkAttachment::default()
            });
        }
    }
    let container_networks = wanted
        .into_iter()
        .map(|w| {
            let live = networks
                .iter()
                .find(|n| n.name == w.network)
                .and_then(|n| n.attachments.get(&doc.id));
            ContainerNetwork {
                aliases: w.aliases.clone(),
                ipv4_address: w.ipv4_address.map(|ip| ip.to_string()),
                ifname: live.map(|a| a.ifname.clone()),
                ip: live.map(|a| a.ip.to_string()),
                ip6: live.and_then(|a| a.ip6).map(|ip| ip.to_string()),
                mac: live.map(|a| a.mac.clone()),
                gateway: live.and_then(|a| a.gateway).map(|ip| ip.to_string()),
                network: w.network,
            }
        })
        .collect();
    Container {
        id: doc.id.clone(),
        name: doc.name.clone(),
        image: doc.image.clone(),
        image_id: doc.image_id.clone(),
        command: doc.command.clone(),
        created: doc.created.clone(),
        hostname: doc.hostname.clone(),
        network_mode: doc.network.name().to_owned(),
        ip: doc.ip.clone(),
        ports: doc
            .ports
            .iter()
            .map(|p| Port {
                protocol: p.protocol.to_string(),
                host_ip: p.host_ip.map(|ip| ip.to_string()),
                host_port: p.host_port,
                container_port: p.container_port,
            })
            .collect(),
        networks: container_networks,
        stop_signal: doc.stop_signal.clone(),
        auto_remove: doc.auto_remove,
        log_path: doc.log_path.display().to_string(),
        labels: doc.labels.clone(),
        restart: restart_name(&doc.restart),
        restart_count: info.restart_count,
        healthcheck: doc
            .healthcheck
            .as_ref()
            .map(super::supervise::check_to_wire),
        health: info.health.as_ref().map(super::supervise::health_to_wire),
        stop_timeout: doc.stop_timeout,
        dns: doc.dns.iter().map(ToString::to_string).collect(),
        dns_search: doc.dns_search.clone(),
        extra_hosts: doc
            .extra_hosts
            .iter()
            .map(|h| format!("{}:{}", h.name, h.ip))
            .collect(),
        state: ContainerState {
            status: status.to_owned(),
            running: info.is_running(),
            paused: state.is_some_and(|s| s.status == Status::Paused),
            pid: state.and_then(|s| s.pid).filter(|_| info.is_running()),
            exit_code: state.and_then(|s| s.exit_code),
            oom_killed: state.is_some_and(|s| s.oom_killed),
            started_at: state.and_then(|s| s.started_at.clone()),
            finished_at: state.and_then(|s| s.finished_at.clone()),
        },
    }
}

fn restart_name(p: &RestartPolicy) -> String {
    match p {
        RestartPolicy::No => "no".into(),
        RestartPolicy::Always => "always".into(),
        RestartPolicy::UnlessStopped => "unless-stopped".into(),
        RestartPolicy::OnFailure { max_retries: None } => "on-failure".into(),
        RestartPolicy::OnFailure {
            max_retries: Some(n),
        } => format!("on-failure:{n}"),
    }
}

/// Translates the wire request into the engine's options (validating what the engine takes
/// as typed values).
fn run_options(c: ContainerCreate) -> Result<RunOptions, ApiError> {
    let restart = match &c.restart {
        Some(r) => RestartPolicy::parse(r).map_err(|e| ApiError::bad_request(e.to_string()))?,
        None => RestartPolicy::No,
    };
    if c.auto_remove && restart != RestartPolicy::No {
        return Err(ApiError::bad_request(
            "conflicting options: --restart and --rm",
        ));
    }
    let extra_hosts = c
        .extra_hosts
        .iter()
        .map(|h| ExtraHost::parse(h))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    let network = NetworkMode::parse(&c.network);
    let has_settings = !c.network_aliases.is_empty() || c.ip.is_some() || c.ip6.is_some();
    if has_settings && !matches!(network, NetworkMode::Bridge(_)) {
        return Err(ApiError::bad_request(format!(
            "--network-alias and --ip need a bridge network, not {}",
            network.name()
        )));
    }
    if c.tty && c.console_socket.is_none() {
        return Err(ApiError::bad_request("tty needs a console_socket"));
    }
    Ok(RunOptions {
        image: c.image,
        command: c.command,
        entrypoint: c.entrypoint,
        env: c.env,
        workdir: c.workdir,
        user: c.user,
        hostname: c.hostname,
        name: c.name,
        volumes: c.volumes,
        publish: c.publish,
        network_settings: NetworkAttachment {
            network: network.name().to_owned(),
            aliases: c.network_aliases,
            ipv4_address: c.ip,
            ipv6_address: c.ip6,
        },
        network,
        auto_remove: c.auto_remove,
        init: c.init,
        limits: Limits {
            memory: c.memory,
            cpus: c.cpus,
            pids_limit: c.pids_limit,
            read_only: c.read_only,
            cap_add: c.cap_add,
            cap_drop: c.cap_drop,
            security_opt: c.security_opt,
            ulimits: c.ulimits,
            tmpfs: c.tmpfs,
        },
        labels: c.labels,
        restart,
        dns: c.dns,
        dns_search: c.dns_search,
        dns_options: c.dns_options,
        extra_hosts,
        console_socket: c.console_socket.filter(|_| c.tty).map(PathBuf::from),
        no_healthcheck: c.no_healthcheck
            || c.healthcheck
                .as_ref()
                .is_some_and(|h| h.test.first().is_some_and(|t| t == "NONE")),
        healthcheck: c.healthcheck.as_ref().and_then(super::supervise::to_engine),
        stop_signal: c.stop_signal,
        stop_timeout: c.stop_timeout,
        ..RunOptions::default()
    })
}

/// `GET /v1/containers?all=`: running containers (every one with `all`), oldest first.
pub async fn list(
    State(state): State<AppState>,
    q: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Json<Vec<Container>>, ApiError> {
    let q = query(q)?;
    let c = state.containers.clone();
    let infos = blocking(move || c.list()).await?;
    let networks = state.containers.networks().await?;
    Ok(Json(
        infos
            .iter()
            .filter(|i| q.all || i.is_running())
            .map(|i| to_wire(i, &networks))
            .collect(),
    ))
}

/// `POST /v1/containers`: creates and starts a container; answers once its process runs.
pub async fn create(
    State(state): State<AppState>,
    body: Result<Json<ContainerCreate>, JsonRejection>,
) -> Result<(StatusCode, Json<ContainerCreated>), ApiError> {
    let Json(body) = body.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let opts = run_options(body)?;
    let created = blocking_async(
        &state.containers,
        move |c| async move { c.run(&opts).await },
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(ContainerCreated {
            id: created.id,
            name: created.name,
            warnings: created.warnings,
        }),
    ))
}

async fn find(state: &AppState, key: String) -> Result<ContainerInfo, ApiError> {
    let c = state.containers.clone();
    blocking(move || c.find(&key)).await
}

/// `GET /v1/containers/{id}`.
pub async fn inspect(
    State(state): State<AppState>,
    Path(key): Path<String>,
) -> Result<Json<Container>, ApiError> {
    let info = find(&state, key).await?;
    let networks = state.containers.networks().await?;
    Ok(Json(to_wire(&info, &networks)))
}

/// `DELETE /v1/containers/{id}?force=`.
pub async fn remove(
    State(state): State<AppState>,
    Path(key): Path<String>,
    q: Result<Query<RemoveQuery>, QueryRejection>,
) -> Result<Json<ContainerRef>, ApiError> {
    let force = query(q)?.force;
    let name = find(&state, key.clone()).await?.doc.name;
    let id = blocking_async(&state.containers, move |c| async move {
        c.remove(&key, force).await
    })
    .await?;
    Ok(Json(ContainerRef { id, name }))
}

/// `POST /v1/containers/{id}/start`: runs a created or exited container again.
pub async fn start(
    State(state): State<AppState>,
    Path(key): Path<String>,
) -> Result<Json<ContainerRef>, ApiError> {
    let info = blocking_async(
        &state.containers,
        move |c| async move { c.start(&key).await },
    )
    .await?;
    Ok(Json(ContainerRef {
        id: info.doc.id,
        name: info.doc.name,
    }))
}

/// `POST /v1/containers/{id}/stop?t=`: the stop signal, `SIGKILL` after `t` seconds.
pub async fn stop(
    State(state): State<AppState>,
    Path(key): Path<String>,
    q: Result<Query<StopQuery>, QueryRejection>,
) -> Result<Json<ExitCode>, ApiError> {
    let t = query(q)?.t;
    let doc = find(&state, key).await?.doc;
    let grace = Duration::from_secs(t.or(doc.stop_timeout).unwrap_or(10));
    let status = blocking_async(&state.containers, move |c| async move {
        c.stop(&doc.id, grace).await
    })
    .await?;
    Ok(Json(ExitCode {
        exit_code: status.code,
    }))
}

/// `POST /v1/containers/{id}/kill?signal=` (default `KILL`).
pub async fn kill(
    State(state): State<AppState>,
    Path(key): Path<String>,
    q: Result<Query<KillQuery>, QueryRejection>,
) -> Result<Json<ContainerRef>, ApiError> {
    let name = query(q)?.signal.unwrap_or_else(|| "KILL".into());
    let signal: Signal = parse_signal(&name)
        .ok_or_else(|| ApiError::bad_request(format!("invalid signal {name:?}")))?;
    let c = state.containers.clone();
    let info = blocking(move || {
        let info = c.find(&key)?;
        c.kill(&info.doc.id, signal)?;
        Ok(info)
    })
    .await?;
    Ok(Json(ContainerRef {
        id: info.doc.id,
        name: info.doc.name,
    }))
}

/// `POST /v1/containers/{id}/wait`: answers once the process has exited, with its code; the
/// exited container's network is released (its namespace is gone).
pub async fn wait(
    State(state): State<AppState>,
    Path(key): Path<String>,
) -> Result<Json<ExitCode>, ApiError> {
    let status = blocking_async(&state.containers, move |c| async move {
        let status = c.wait(&key)?;
        // Someone may have removed it meanwhile (`run --rm`, `rm -f`): nothing to release.
        if let Ok(info) = c.find(&key)
            && !info.is_running()
        {
            c.release_network(&info.doc).await?;
        }
        Ok(status)
    })
    .await?;
    Ok(Json(ExitCode {
        exit_code: status.code,
    }))
}

/// `GET /v1/containers/{id}/port`.
pub async fn port(
    State(state): State<AppState>,
    Path(key): Path<String>,
) -> Result<Json<Vec<Port>>, ApiError> {
    let info = find(&state, key).await?;
    Ok(Json(to_wire(&info, &[]).ports))
}

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
    let mut reader = LogReader::new(&doc.log_path);
    let (first, reader) = tokio::task::spawn_blocking(move || {
        let entries = reader.read_new();
        (entries, reader)
    })
    .await
    .map_err(|e| ApiError::internal(format!("log task failed: {e}")))?;
    let first = first.map_err(|e| ApiError::internal(e.to_string()))?;
    let feed = LogFeed {
        pending: logs::tail(first, tail).into(),
        reader: Some(reader),
        follow: q.follow,
        since,
        containers: state.containers.clone(),
        id: doc.id,
        shutdown: state.shutdown.clone(),
    };
    Response::builder()
        .header(header::CONTENT_TYPE, NDJSON)
        .body(Body::from_stream(futures::stream::unfold(
            feed,
            LogFeed::next_line,
        )))
        .map_err(|e| ApiError::internal(e.to_string()))
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
}

impl LogFeed {
    async fn next_line(mut self) -> Option<(Result<Bytes, Infallible>, LogFeed)> {
        loop {
            while let Some(e) = self.pending.pop_front() {
                let recent = self
                    .since
                    .is_none_or(|since| api::time::parse_wire(&e.time).is_ok_and(|t| t >= since));
                if !recent {
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
                        _ = self.shutdown.wait_for(|stop| *stop) => self.follow = false,
                    }
                }
            } else {
                self.follow = false;
            }
        }
    }
}
