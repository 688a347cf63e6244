//! The daemon's network start-up: the network layer is opened once, what a crash left behind
//! is removed (attachments and ports of containers that no longer run), the firewall table is
//! rewritten from the state, and berth's DNS server starts answering on every network's
//! gateway, following the zone the network layer publishes (so containers attached later,
//! `network connect` and new networks are served without a restart).

use std::collections::BTreeSet;
use std::path::Path;

use berth_engine::containers::Containers;
use berth_engine::containers::dns::{Server, ServerConfig, upstreams_from_resolv_conf};
use berth_runtime::Status;

use super::DaemonError;

/// Where names berth does not know are forwarded: the host's resolvers.
const HOST_RESOLV_CONF: &str = "/etc/resolv.conf";

/// Opens the network layer of `containers`, cleans it up and starts the DNS server.
pub async fn start(containers: &Containers) -> Result<Server, DaemonError> {
    let net = containers.net().await.map_err(DaemonError::Containers)?;
    let alive: BTreeSet<String> = containers
        .list()
        .map_err(DaemonError::Containers)?
        .into_iter()
        .filter(|c| {
            c.is_running()
                || c.state
                    .as_ref()
                    .is_some_and(|s| matches!(s.status, Status::Created | Status::Creating))
        })
        .map(|c| c.doc.id)
        .collect();
    let removed = net
        .cleanup_orphans(&|id| alive.contains(id))
        .await
        .map_err(|e| DaemonError::Containers(e.into()))?;
    if !removed.is_empty() {
        tracing::info!(
            ?removed,
            "removed network links of containers that are gone"
        );
    }
    net.sync_firewall()
        .await
        .map_err(|e| DaemonError::Containers(e.into()))?;
    let upstreams = match upstreams_from_resolv_conf(Path::new(HOST_RESOLV_CONF)) {
        Ok(u) => u,
        Err(e) => {
            tracing::warn!("dns: no upstream resolvers: {e}");
            Vec::new()
        }
    };
    Ok(Server::spawn(net.zone(), ServerConfig::new(upstreams)))
}
