//! Published ports of containers (DNAT rules in berth's table).

use super::{Net, NetError, with_cleanup};
use crate::nat;
use crate::ports::{self, BindProbe, PortMapping};
use crate::state::Published;

impl Net {
    /// Publishes container ports on the host. The container's address on its first (by
    /// interface name) non-internal network receives the traffic. Conflicts are reported before
    /// anything changes.
    pub async fn publish(
        &self,
        container_id: &str,
        mappings: &[PortMapping],
    ) -> Result<Vec<Published>, NetError> {
        let mut inner = self.inner.lock().await;
        let target = inner
            .networks
            .values()
            .filter(|n| !n.internal)
            .filter_map(|n| n.attachments.get(container_id))
            .min_by(|a, b| a.ifname.cmp(&b.ifname))
            .map(|a| a.ip)
            .ok_or_else(|| NetError::NothingToPublishOn(container_id.into()))?;
        let resolved = ports::resolve(mappings, &inner.published, &BindProbe)?;
        let added: Vec<Published> = resolved
            .into_iter()
            .map(|r| Published {
                container_id: container_id.into(),
                protocol: r.protocol,
                host_ip: r.host_ip,
                host_port: r.host_port,
                container_ip: target,
                container_port: r.container_port,
            })
            .collect();
        let keep = inner.published.len();
        inner.published.extend(added.iter().cloned());
        let result = match self.store.save_ports(&inner.published) {
            // Append to the table; if that fails (the table was removed behind berth's back),
            // rebuild it from the state.
            Ok(()) => {
                let table = &self.config.nft_table;
                match nat::apply(table, &nat::render_additions(table, &added)).await {
                    Ok(()) => Ok(()),
                    Err(_) => self.apply_firewall(&inner).await,
                }
            }
            Err(e) => Err(e.into()),
        };
        if let Err(e) = result {
            inner.published.truncate(keep);
            let undo = match self.store.save_ports(&inner.published) {
                Ok(()) => self.apply_firewall(&inner).await,
                Err(e) => Err(e.into()),
            };
            return Err(with_cleanup(e, undo));
        }
        Ok(added)
    }

    /// Removes every published port of a container.
    pub async fn unpublish(&self, container_id: &str) -> Result<(), NetError> {
        let mut inner = self.inner.lock().await;
        let before = inner.published.len();
        inner.published.retain(|p| p.container_id != container_id);
        if inner.published.len() != before {
            self.store.save_ports(&inner.published)?;
            self.apply_firewall(&inner).await?;
        }
        Ok(())
    }

    /// The published ports of a container (what `berth port` shows).
    pub async fn ports(&self, container_id: &str) -> Vec<Published> {
        self.inner
            .lock()
            .await
            .published
            .iter()
            .filter(|p| p.container_id == container_id)
            .cloned()
            .collect()
    }
}
