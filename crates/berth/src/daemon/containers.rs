//! `/v1/containers`: `run`, `ps`, `inspect`, `start`, `stop`, `restart`, `kill`, `wait`, `rm`,
//! `pause`, `unpause`, `top`, `stats` and `port` on the daemon's one [`Containers`] service
//! (`logs` is in `container_logs`).
//!
//! The engine's container calls block (the runtime waits for its monitor's report, `wait`
//! for the process to exit), so every one of them runs on tokio's blocking pool through
//! [`blocking`]; the async workers stay free for other requests.

use std::future::Future;
use std::path::PathBuf;
use std::time::Duration;

use axum::Json;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use berth_engine::containers::limits::Limits;
use berth_engine::containers::network::DEFAULT_NETWORK;
use berth_engine::containers::{
    ContainerInfo, Containers, ContainersError, ExtraHost, Network, NetworkAttachment, NetworkMode,
    RestartPolicy, RunOptions, parse_signal,
};
use berth_runtime::{Signal, Status};

use super::AppState;
use super::error::ApiError;
use crate::api::containers::{
    ArchiveQuery, ArchiveResult, Container, ContainerCreate, ContainerCreated, ContainerNetwork,
    ContainerProcess, ContainerRef, ContainerState, ContainerStats, ExitCode, KillQuery, ListQuery,
    Port, RemoveQuery, StopQuery,
};

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

pub(super) fn query<T>(q: Result<Query<T>, QueryRejection>) -> Result<T, ApiError> {
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
    let user_network = matches!(&network, NetworkMode::Bridge(n) if n != DEFAULT_NETWORK);
    if has_settings && !user_network {
        return Err(ApiError::bad_request(format!(
            "--network-alias and --ip need a user-defined network, not {}",
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
        stdin_socket: c.stdin_socket.filter(|_| !c.tty).map(PathBuf::from),
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

pub(super) async fn find(state: &AppState, key: String) -> Result<ContainerInfo, ApiError> {
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

/// `POST /v1/containers/{id}/pause`.
pub async fn pause(
    State(state): State<AppState>,
    Path(key): Path<String>,
) -> Result<Json<ContainerRef>, ApiError> {
    let c = state.containers.clone();
    let info = blocking(move || c.pause(&key)).await?;
    Ok(Json(ContainerRef {
        id: info.doc.id,
        name: info.doc.name,
    }))
}

/// `POST /v1/containers/{id}/unpause`.
pub async fn unpause(
    State(state): State<AppState>,
    Path(key): Path<String>,
) -> Result<Json<ContainerRef>, ApiError> {
    let c = state.containers.clone();
    let info = blocking(move || c.unpause(&key)).await?;
    Ok(Json(ContainerRef {
        id: info.doc.id,
        name: info.doc.name,
    }))
}

/// `POST /v1/containers/{id}/restart?t=`: stops it (when it runs), then starts it.
pub async fn restart(
    State(state): State<AppState>,
    Path(key): Path<String>,
    q: Result<Query<StopQuery>, QueryRejection>,
) -> Result<Json<ContainerRef>, ApiError> {
    let t = query(q)?.t;
    let doc = find(&state, key).await?.doc;
    let grace = Duration::from_secs(t.or(doc.stop_timeout).unwrap_or(10));
    let info = blocking_async(&state.containers, move |c| async move {
        c.restart(&doc.id, grace).await
    })
    .await?;
    Ok(Json(ContainerRef {
        id: info.doc.id,
        name: info.doc.name,
    }))
}

/// `GET /v1/containers/{id}/top`.
pub async fn top(
    State(state): State<AppState>,
    Path(key): Path<String>,
) -> Result<Json<Vec<ContainerProcess>>, ApiError> {
    let c = state.containers.clone();
    let list = blocking(move || c.top(&key)).await?;
    Ok(Json(
        list.into_iter()
            .map(|p| ContainerProcess {
                pid: p.pid,
                ppid: p.ppid,
                uid: p.uid,
                command: p.command,
            })
            .collect(),
    ))
}

/// `GET /v1/containers/{id}/stats`.
pub async fn stats(
    State(state): State<AppState>,
    Path(key): Path<String>,
) -> Result<Json<ContainerStats>, ApiError> {
    let c = state.containers.clone();
    let s = blocking(move || c.stats(&key)).await?;
    Ok(Json(ContainerStats {
        read: berth_runtime::clock::now_rfc3339(),
        cpu_usage_ns: s.cpu_usage_ns,
        memory_usage: s.memory_usage,
        memory_limit: s.memory_limit,
        pids_current: s.pids_current,
        pids_limit: s.pids_limit,
        io_read_bytes: s.io_read_bytes,
        io_write_bytes: s.io_write_bytes,
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

/// `GET /v1/containers/{id}/archive?path=`: a tar archive (`berth cp CONTAINER:PATH …`).
pub async fn archive_get(
    State(state): State<AppState>,
    Path(key): Path<String>,
    q: Result<Query<ArchiveQuery>, QueryRejection>,
) -> Result<axum::response::Response, ApiError> {
    let q = query(q)?;
    let c = state.containers.clone();
    let tar = blocking(move || c.archive(&key, &q.path)).await?;
    axum::response::Response::builder()
        .header(axum::http::header::CONTENT_TYPE, "application/x-tar")
        .body(axum::body::Body::from(tar))
        .map_err(|e| ApiError::internal(e.to_string()))
}

/// `PUT /v1/containers/{id}/archive?path=`: extracts the tar body (`berth cp … CONTAINER:PATH`).
pub async fn archive_put(
    State(state): State<AppState>,
    Path(key): Path<String>,
    q: Result<Query<ArchiveQuery>, QueryRejection>,
    body: axum::body::Bytes,
) -> Result<Json<ArchiveResult>, ApiError> {
    let q = query(q)?;
    let c = state.containers.clone();
    let copied = blocking(move || c.extract(&key, &q.path, &body)).await?;
    Ok(Json(ArchiveResult { copied }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn create(network: &str) -> ContainerCreate {
        ContainerCreate {
            image: "busybox".into(),
            network: network.into(),
            ..ContainerCreate::default()
        }
    }

    #[test]
    fn run_requests_become_typed_options() {
        let mut c = create("front");
        c.network_aliases = vec!["www".into()];
        c.ip = Some("10.1.0.9".parse().unwrap());
        c.extra_hosts = vec!["db:10.0.0.5".into()];
        c.restart = Some("on-failure:2".into());
        let o = run_options(c).unwrap();
        assert_eq!(o.network, NetworkMode::Bridge("front".into()));
        assert_eq!(o.network_settings.network, "front");
        assert_eq!(o.network_settings.aliases, vec!["www".to_string()]);
        assert_eq!(
            o.network_settings.ipv4_address,
            Some("10.1.0.9".parse().unwrap())
        );
        assert_eq!(
            o.extra_hosts,
            vec![ExtraHost::parse("db:10.0.0.5").unwrap()]
        );
        assert_eq!(
            o.restart,
            RestartPolicy::OnFailure {
                max_retries: Some(2)
            }
        );
        assert_eq!(o.console_socket, None);
    }

    #[test]
    fn run_requests_that_cannot_work_are_refused() {
        let message = |c: ContainerCreate| format!("{:?}", run_options(c).unwrap_err());
        let mut c = create("bridge");
        c.network_aliases = vec!["www".into()];
        assert!(message(c).contains("user-defined network"));
        let mut c = create("host");
        c.ip = Some("10.1.0.9".parse().unwrap());
        assert!(message(c).contains("not host"));
        let mut c = create("front");
        c.extra_hosts = vec!["nocolon".into()];
        assert!(message(c).contains("invalid --add-host"));
        let mut c = create("front");
        c.restart = Some("sometimes".into());
        assert!(message(c).contains("invalid restart policy"));
        let mut c = create("front");
        c.tty = true;
        assert!(message(c).contains("console_socket"));
    }

    #[test]
    fn restart_policies_are_named_as_docker_does() {
        assert_eq!(restart_name(&RestartPolicy::No), "no");
        assert_eq!(
            restart_name(&RestartPolicy::OnFailure {
                max_retries: Some(3)
            }),
            "on-failure:3"
        );
        assert_eq!(
            restart_name(&RestartPolicy::UnlessStopped),
            "unless-stopped"
        );
    }
}
