//! `/v1/networks`: `network create|ls|inspect|rm|prune|connect|disconnect` on the daemon's
//! one network layer (so that the DNS zone it publishes stays current).

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use berth_engine::containers::{ContainerDoc, Network, NetworkAttachment, NetworkSpec};

use super::AppState;
use super::containers::blocking_async;
use super::error::ApiError;
use crate::api::networks::{
    Endpoint, Network as WireNetwork, NetworkConnect, NetworkCreate, NetworkDisconnect, Pruned,
};

fn body<T>(b: Result<Json<T>, JsonRejection>) -> Result<T, ApiError> {
    b.map(|Json(b)| b)
        .map_err(|e| ApiError::bad_request(e.body_text()))
}

/// Container names by id, to show who is attached.
async fn names(state: &AppState) -> Result<BTreeMap<String, String>, ApiError> {
    let engine = state.engine.clone();
    let docs = tokio::task::spawn_blocking(move || engine.store().list::<ContainerDoc>())
        .await
        .map_err(|e| ApiError::internal(format!("store task failed: {e}")))?
        .map_err(|e| ApiError::internal(e.to_string()))?;
    Ok(docs.into_iter().map(|(_, d)| (d.id, d.name)).collect())
}

fn to_wire(n: Network, names: &BTreeMap<String, String>) -> WireNetwork {
    WireNetwork {
        id: n.id,
        name: n.name,
        bridge: n.bridge,
        subnet: n.subnet.to_string(),
        gateway: n.gateway.to_string(),
        subnet6: n.ipv6.map(|v| v.subnet.to_string()),
        internal: n.internal,
        mtu: n.mtu,
        labels: n.labels,
        containers: n
            .attachments
            .into_iter()
            .map(|(id, a)| {
                let endpoint = Endpoint {
                    name: names.get(&id).cloned().unwrap_or_default(),
                    ifname: a.ifname,
                    ip: a.ip.to_string(),
                    ip6: a.ip6.map(|ip| ip.to_string()),
                    mac: a.mac,
                    aliases: a.aliases,
                };
                (id, endpoint)
            })
            .collect(),
    }
}

/// `GET /v1/networks`.
pub async fn list(State(state): State<AppState>) -> Result<Json<Vec<WireNetwork>>, ApiError> {
    let names = names(&state).await?;
    let list = state.containers.networks().await?;
    Ok(Json(list.into_iter().map(|n| to_wire(n, &names)).collect()))
}

/// An optional value of the request, parsed.
fn parse<T: std::str::FromStr>(what: &str, v: Option<&str>) -> Result<Option<T>, ApiError> {
    v.map(|s| {
        s.parse()
            .map_err(|_| ApiError::bad_request(format!("invalid {what} {s:?}")))
    })
    .transpose()
}

/// `POST /v1/networks`.
pub async fn create(
    State(state): State<AppState>,
    b: Result<Json<NetworkCreate>, JsonRejection>,
) -> Result<(StatusCode, Json<WireNetwork>), ApiError> {
    let b = body(b)?;
    let spec = NetworkSpec {
        subnet: parse("subnet", b.subnet.as_deref())?,
        gateway: parse("gateway", b.gateway.as_deref())?,
        internal: b.internal,
        enable_ipv6: b.enable_ipv6 || b.subnet6.is_some(),
        subnet6: parse("IPv6 subnet", b.subnet6.as_deref())?,
        gateway6: None,
        mtu: b.mtu,
        labels: b.labels,
        ..NetworkSpec::named(b.name)
    };
    let network = state.containers.create_network(spec).await?;
    Ok((
        StatusCode::CREATED,
        Json(to_wire(network, &BTreeMap::new())),
    ))
}

/// `GET /v1/networks/{name}`.
pub async fn inspect(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<WireNetwork>, ApiError> {
    let network = state.containers.network(&name).await?;
    Ok(Json(to_wire(network, &names(&state).await?)))
}

/// `DELETE /v1/networks/{name}`: refused while containers are attached.
pub async fn remove(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<Pruned>, ApiError> {
    state.containers.remove_network(&name).await?;
    Ok(Json(Pruned {
        removed: vec![name],
    }))
}

/// `POST /v1/networks/prune`: removes every network no container is on or recorded on.
pub async fn prune(State(state): State<AppState>) -> Result<Json<Pruned>, ApiError> {
    let removed = state.containers.prune_networks().await?;
    Ok(Json(Pruned { removed }))
}

/// `POST /v1/networks/{name}/connect`: a running container joins at once (next `ethN`), a
/// stopped one at its next start.
pub async fn connect(
    State(state): State<AppState>,
    Path(name): Path<String>,
    b: Result<Json<NetworkConnect>, JsonRejection>,
) -> Result<Json<WireNetwork>, ApiError> {
    let b = body(b)?;
    let ip = parse("IPv4 address", b.ip.as_deref())?;
    let settings = NetworkAttachment {
        network: name.clone(),
        aliases: b.aliases,
        ipv4_address: ip,
        ipv6_address: None,
    };
    let container = b.container;
    blocking_async(&state.containers, move |c| async move {
        c.connect(&container, settings).await
    })
    .await?;
    let network = state.containers.network(&name).await?;
    Ok(Json(to_wire(network, &names(&state).await?)))
}

/// `POST /v1/networks/{name}/disconnect`.
pub async fn disconnect(
    State(state): State<AppState>,
    Path(name): Path<String>,
    b: Result<Json<NetworkDisconnect>, JsonRejection>,
) -> Result<Json<WireNetwork>, ApiError> {
    let container = body(b)?.container;
    let network = name.clone();
    blocking_async(&state.containers, move |c| async move {
        c.disconnect(&container, &network).await
    })
    .await?;
    let network = state.containers.network(&name).await?;
    Ok(Json(to_wire(network, &names(&state).await?)))
}
