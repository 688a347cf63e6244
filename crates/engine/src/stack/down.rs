//! `down`: a reverse graph walk over the stack's containers (from their `depends_on`
//! labels, so that it needs no stack file), then the networks, the volumes with `-v`, and
//! the stack's document.

use std::collections::{BTreeMap, BTreeSet};

use tokio::sync::{Semaphore, watch};

use super::desired::labels;
use super::execute::{DownOptions, blocking_halt, blocking_remove, grace};
use super::resources;
use super::{Progress, ProgressSink, StackContainer, StackDoc, StackError, Stacks, Status};

impl Stacks {
    /// `down`: removes the stack's containers (dependents first), its networks, its
    /// volumes with `-v`, and its document.
    pub async fn down(
        &self,
        project: &str,
        opts: &DownOptions,
        progress: &ProgressSink,
    ) -> Result<(), StackError> {
        // One-off containers (`stack run`) go too, as with Compose.
        let mut list = self.ps_all(project)?;
        let doc = self.engine.store().get::<StackDoc>(project)?;
        let mut kept = Vec::new();
        if let Some(services) = &opts.services {
            let (mine, orphans): (Vec<_>, Vec<_>) = list
                .into_iter()
                .partition(|c| services.contains(&c.service));
            list = mine;
            if opts.remove_orphans {
                list.extend(orphans);
            } else {
                kept = orphans;
            }
        }
        if !kept.is_empty() {
            let names: Vec<&str> = kept.iter().map(|c| c.info.doc.name.as_str()).collect();
            progress.send(Progress::stack(project, Status::Warning).detail(format!(
                "Found orphan containers ({}) for this project ({project}). If you removed or renamed this service in your compose file, you can run this command with the --remove-orphans flag to clean it up.",
                names.join(", ")
            )));
        }
        // A graph walk in reverse: a service is stopped once every service depending on it
        // is stopped; its containers are then removed without holding up the others.
        let services: BTreeSet<String> = list.iter().map(|c| c.service.clone()).collect();
        let mut stopped_tx = BTreeMap::new();
        let mut stopped_rx = BTreeMap::new();
        for s in &services {
            let (tx, rx) = watch::channel(false);
            stopped_tx.insert(s.clone(), tx);
            stopped_rx.insert(s.clone(), rx);
        }
        let dependents = |service: &str| -> Vec<String> {
            services
                .iter()
                .filter(|other| {
                    list.iter()
                        .filter(|c| &c.service == *other)
                        .any(|c| depends_on(c, service))
                })
                .cloned()
                .collect()
        };
        let pre_stop = super::hooks::recorded_pre_stop(&self.containers, project);
        let permits = Semaphore::new(8);
        let results = futures::future::join_all(services.iter().map(|service| {
            let mine: Vec<&StackContainer> =
                list.iter().filter(|c| &c.service == service).collect();
            let waits: Vec<watch::Receiver<bool>> = dependents(service)
                .iter()
                .filter(|d| *d != service)
                .map(|d| stopped_rx[d].clone())
                .collect();
            let tx = &stopped_tx[service];
            let permits = &permits;
            let hooks = pre_stop.get(service).map_or(&[][..], Vec::as_slice);
            async move {
                for mut rx in waits {
                    let _ = rx.wait_for(|s| *s).await;
                }
                let stops = futures::future::join_all(mine.iter().map(|c| async move {
                    if !c.info.is_running() {
                        return Ok(());
                    }
                    let _permit = permits.acquire().await;
                    let name = &c.info.doc.name;
                    progress.send(Progress::container(&c.service, name, Status::Stopping));
                    let grace = grace(opts.timeout, c.info.doc.stop_timeout);
                    blocking_halt(&self.containers, &c.info, hooks, grace).await?;
                    progress.send(Progress::container(&c.service, name, Status::Stopped));
                    Ok::<(), StackError>(())
                }))
                .await;
                let _ = tx.send(true);
                for r in stops {
                    r?;
                }
                let removes = futures::future::join_all(mine.iter().map(|c| async move {
                    let _permit = permits.acquire().await;
                    let name = &c.info.doc.name;
                    progress.send(Progress::container(&c.service, name, Status::Removing));
                    blocking_remove(&self.containers, &c.info.doc.id).await?;
                    let _ = std::fs::remove_dir_all(self.files_dir(project).join(name));
                    progress.send(Progress::container(&c.service, name, Status::Removed));
                    Ok::<(), StackError>(())
                }))
                .await;
                removes.into_iter().collect::<Result<Vec<()>, StackError>>()
            }
        }))
        .await;
        for r in results {
            r?;
        }
        let net = self.containers.net().await?;
        resources::remove_networks(&net, project, progress).await?;
        if let Some(which) = opts.rmi {
            let names = super::images::selected(which, project, doc.as_ref(), &list);
            self.remove_images(&names, progress)?;
        }
        if opts.volumes {
            resources::remove_volumes(self.engine.store(), project, progress)?;
        }
        if kept.is_empty() {
            self.engine.store().delete::<StackDoc>(project)?;
            let dir = self.engine.config().root.join("stacks").join(project);
            match std::fs::remove_dir_all(&dir) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(source) => {
                    return Err(StackError::Io {
                        op: "remove",
                        path: dir,
                        source,
                    });
                }
            }
        }
        Ok(())
    }
}

/// Whether `c`'s service depends on `service` (from its `depends_on` label).
fn depends_on(c: &StackContainer, service: &str) -> bool {
    c.info
        .doc
        .labels
        .get(labels::DEPENDS_ON)
        .is_some_and(|d| d.split(',').any(|e| e.split(':').next() == Some(service)))
}
