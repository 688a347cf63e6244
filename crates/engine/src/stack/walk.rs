//! One walk of the service graph for `up`: each service is a future that waits for its own
//! dependencies (their actions done, then their `depends_on` condition), then carries out
//! its actions, each holding a permit of a semaphore that bounds how many container
//! operations run at once.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;

use berth_compose::Project;
use petgraph::Direction;
use tokio::sync::{Semaphore, watch};

use super::desired::{self, Context, VolumeSource};
use super::execute::{
    POLL, Prepared, UpOptions, blocking_create, blocking_remove, blocking_run, blocking_start,
    blocking_stop, chain, grace,
};
use super::plan::{self, Action, Cause, ObservedContainer};
use super::resources;
use super::{Progress, ProgressSink, ServiceFailure, StackError, Stacks, Status};

/// Where a service's future stands, for its dependents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum NodeState {
    Pending,
    Done,
    Failed,
}

/// One walk of the graph.
pub(super) struct Run<'a> {
    pub(super) stacks: &'a Stacks,
    pub(super) project: &'a Project,
    pub(super) prep: &'a Prepared,
    pub(super) opts: &'a UpOptions,
    pub(super) volumes: &'a BTreeMap<String, VolumeSource>,
    pub(super) fresh: Mutex<BTreeSet<String>>,
    pub(super) files_dir: &'a std::path::Path,
    pub(super) progress: &'a ProgressSink,
    pub(super) permits: Semaphore,
    pub(super) empty: &'a BTreeMap<String, Vec<u8>>,
    /// Dependency states already reported (several dependents wait for one dependency).
    pub(super) announced: Mutex<BTreeSet<(String, Status)>>,
    /// What the last `up` applied, per service (what a rollback goes back to).
    pub(super) applied: &'a BTreeMap<String, super::ServiceRecord>,
}

/// The configuration a container is created from: the service's new one, or for a
/// rollback the one applied before.
pub(super) struct Config<'a> {
    pub(super) svc: &'a berth_compose::model::Service,
    pub(super) hash: String,
    pub(super) image_id: String,
    pub(super) contents: &'a BTreeMap<String, Vec<u8>>,
}

impl Run<'_> {
    pub(super) async fn walk(&self, plan: &plan::Plan) -> Vec<ServiceFailure> {
        let mut senders = BTreeMap::new();
        let mut receivers = BTreeMap::new();
        for name in plan.nodes.keys() {
            let (tx, rx) = watch::channel(NodeState::Pending);
            senders.insert(name.clone(), tx);
            receivers.insert(name.clone(), rx);
        }
        let futures = plan.nodes.iter().map(|(name, &node)| {
            let tx = &senders[name];
            let receivers = &receivers;
            async move {
                let Some(actions) = plan.actions.get(name) else {
                    let _ = tx.send(NodeState::Done);
                    return None;
                };
                let mut deps = Vec::new();
                for e in plan.graph.edges_directed(node, Direction::Incoming) {
                    use petgraph::visit::EdgeRef;
                    deps.push((plan.graph[e.source()].clone(), e.weight().clone()));
                }
                let result = self.service(name, actions, &deps, plan, receivers).await;
                let _ = tx.send(if result.is_ok() {
                    NodeState::Done
                } else {
                    NodeState::Failed
                });
                result.err().map(|reason| ServiceFailure {
                    service: name.clone(),
                    reason,
                })
            }
        });
        futures::future::join_all(futures)
            .await
            .into_iter()
            .flatten()
            .collect()
    }

    async fn service(
        &self,
        name: &str,
        actions: &[Action],
        deps: &[(String, berth_compose::model::DependsOn)],
        plan: &plan::Plan,
        receivers: &BTreeMap<String, watch::Receiver<NodeState>>,
    ) -> Result<(), String> {
        // New replicas of a service that waits for dependencies are created meanwhile and
        // only started once the dependencies are satisfied (Compose's order too: create,
        // then start in dependency order), so that a chain of services starts one `start`
        // after another instead of one whole creation after another.
        let waiting = deps.iter().any(|(dep, _)| plan.actions.contains_key(dep));
        let early: Vec<u64> = actions
            .iter()
            .filter_map(|a| match a {
                Action::Create { number, .. } if waiting => Some(*number),
                _ => None,
            })
            .collect();
        let (ready, created) = futures::join!(
            self.dependencies(name, deps, plan, receivers),
            futures::future::join_all(early.iter().map(|n| self.create_early(name, *n)))
        );
        let mut created: BTreeMap<u64, Result<Option<String>, StackError>> =
            early.into_iter().zip(created).collect();
        if let Err(reason) = ready {
            for name in created.into_values().flatten().flatten() {
                self.discard_early(&name).await;
            }
            return Err(reason);
        }
        let replaced: Vec<super::rolling::Replacement> = actions
            .iter()
            .filter_map(|a| match a {
                Action::Recreate { number, old, cause } => {
                    Some((*number, old.clone(), cause.clone()))
                }
                _ => None,
            })
            .collect();
        let rolling = super::rolling::rolls(&self.project.services[name], replaced.len());
        for action in actions {
            if rolling && matches!(action, Action::Recreate { .. }) {
                continue;
            }
            let result = match action {
                Action::Create { number, .. } => match created.remove(number) {
                    Some(Ok(Some(early))) => self.start_early(name, &early).await,
                    Some(Err(e)) => Err(self.creation_failed(name, *number, e)),
                    Some(Ok(None)) | None => self.act(name, action).await,
                },
                _ => self.act(name, action).await,
            };
            result.map_err(|e| chain(&e))?;
        }
        if rolling && !replaced.is_empty() {
            self.roll(name, &replaced).await?;
        }
        Ok(())
    }

    /// Waits for `name`'s dependencies: their actions done, then their `depends_on`
    /// condition; a failed required one is an error.
    async fn dependencies(
        &self,
        name: &str,
        deps: &[(String, berth_compose::model::DependsOn)],
        plan: &plan::Plan,
        receivers: &BTreeMap<String, watch::Receiver<NodeState>>,
    ) -> Result<(), String> {
        for (dep, how) in deps {
            if !plan.actions.contains_key(dep) {
                continue; // not converged now (--no-deps or not selected)
            }
            let mut rx = receivers[dep].clone();
            let state = *rx
                .wait_for(|s| *s != NodeState::Pending)
                .await
                .map_err(|e| e.to_string())?;
            if state == NodeState::Failed {
                if how.required {
                    return Err(format!("dependency {dep} failed to start"));
                }
                continue;
            }
            if let Err(reason) = self.condition(dep, &how.condition).await {
                if how.required {
                    return Err(reason);
                }
                self.progress.send(
                    Progress::stack(&self.project.name, Status::Warning)
                        .detail(format!("optional dependency of {name}: {reason}")),
                );
            }
        }
        Ok(())
    }

    /// Creates replica `number` of `service` without starting it, silently (its progress is
    /// reported when it starts); `None` when it must be created the usual way, later: it
    /// fills a new volume, which the first container in dependency order does.
    async fn create_early(&self, service: &str, number: u64) -> Result<Option<String>, StackError> {
        let config = self.current(service);
        let plan = self.container_plan(&config, service, number)?;
        let fills_volume = plan.options.mounts.iter().any(|m| match &m.kind {
            crate::containers::MountKind::Volume { name, .. } => {
                self.fresh.lock().map(|f| f.contains(name)).unwrap_or(true)
            }
            _ => false,
        });
        if fills_volume {
            return Ok(None);
        }
        let _permit = self.permits.acquire().await;
        let name = plan.options.name.clone().unwrap_or_default();
        let result = match self.prepare_mounts(service, &plan) {
            Ok(()) => blocking_create(&self.stacks.containers, plan.options)
                .await
                .map(drop),
            Err(e) => Err(e),
        };
        match result {
            Ok(()) => Ok(Some(name)),
            Err(e) => {
                let _ = std::fs::remove_dir_all(self.files_dir.join(&name));
                Err(e)
            }
        }
    }

    /// Starts a replica [`Self::create_early`] made, with the progress a creation shows.
    /// Without a permit: a start is one request to the monitor, and queueing it behind the
    /// creations still under way would hold up the whole chain of dependents.
    async fn start_early(&self, service: &str, name: &str) -> Result<(), StackError> {
        let p = self.progress;
        p.send(Progress::container(service, name, Status::Creating));
        if let Err(e) = blocking_start(&self.stacks.containers, name).await {
            self.discard_early(name).await;
            p.send(Progress::container(service, name, Status::Error).detail(chain(&e)));
            return Err(e);
        }
        p.send(Progress::container(service, name, Status::Started));
        Ok(())
    }

    /// Reports an early creation's failure when the replica's turn comes, as a creation
    /// in turn reports it; returns the error.
    fn creation_failed(&self, service: &str, number: u64, e: StackError) -> StackError {
        let svc = &self.project.services[service];
        let name = desired::container_name(&self.project.name, service, svc, number);
        let p = self.progress;
        p.send(Progress::container(service, &name, Status::Creating));
        p.send(Progress::container(service, &name, Status::Error).detail(chain(&e)));
        e
    }

    /// Removes a container [`Self::create_early`] made that is not to run after all.
    async fn discard_early(&self, name: &str) {
        let _ = blocking_remove(&self.stacks.containers, name).await;
        let _ = std::fs::remove_dir_all(self.files_dir.join(name));
    }

    /// Waits until `dep`'s containers meet `condition`.
    async fn condition(&self, dep: &str, condition: &str) -> Result<(), String> {
        let svc = &self.project.services[dep];
        let names: Vec<String> = (1..=svc.replicas())
            .map(|n| desired::container_name(&self.project.name, dep, svc, n))
            .collect();
        let containers = &self.stacks.containers;
        let mut announced = false;
        loop {
            let mut pending = false;
            for n in &names {
                let info = containers.find(n).map_err(|e| e.to_string())?;
                let running = info.is_running();
                let code = info.state.as_ref().and_then(|s| s.exit_code);
                match condition {
                    "service_healthy" => {
                        use crate::containers::HealthStatus;
                        if info.doc.healthcheck.is_none() {
                            return Err(format!(
                                "dependency {dep} has no healthcheck configured (container {n})"
                            ));
                        }
                        match info.health.as_ref().map(|h| h.status) {
                            Some(HealthStatus::Healthy) => {}
                            Some(HealthStatus::Unhealthy) => {
                                return Err(format!(
                                    "dependency {dep} failed to start: container {n} is unhealthy"
                                ));
                            }
                            _ if !running => {
                                return Err(format!(
                                    "dependency {dep} exited (code {}) before it was healthy",
                                    code.unwrap_or(-1)
                                ));
                            }
                            _ => pending = true,
                        }
                    }
                    "service_completed_successfully" => {
                        if running {
                            pending = true;
                        } else if code != Some(0) {
                            return Err(format!(
                                "service {dep:?} didn't complete successfully: exit {}",
                                code.unwrap_or(-1)
                            ));
                        }
                    }
                    _ => {}
                }
            }
            if !pending {
                if announced {
                    let status = if condition == "service_healthy" {
                        Status::Healthy
                    } else {
                        Status::Exited
                    };
                    for n in &names {
                        self.announce(dep, n, status);
                    }
                }
                return Ok(());
            }
            if !announced {
                announced = true;
                for n in &names {
                    self.announce(dep, n, Status::Waiting);
                }
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Reports a dependency's state once, however many dependents wait for it.
    fn announce(&self, service: &str, name: &str, status: Status) {
        let first = self
            .announced
            .lock()
            .map(|mut a| a.insert((name.to_owned(), status)))
            .unwrap_or(true);
        if first {
            self.progress
                .send(Progress::container(service, name, status));
        }
    }

    async fn act(&self, service: &str, action: &Action) -> Result<(), StackError> {
        let _permit = self.permits.acquire().await;
        let c = &self.stacks.containers;
        let p = self.progress;
        match action {
            Action::Keep(o) => {
                p.send(Progress::container(service, &o.name, Status::Running));
            }
            Action::Start(o) => {
                p.send(Progress::container(service, &o.name, Status::Starting));
                blocking_start(c, &o.id).await?;
                let hooks = &self.project.services[service].post_start;
                super::hooks::post_start(c, service, &o.id, hooks).await?;
                p.send(Progress::container(service, &o.name, Status::Started));
            }
            Action::Restart { container, cause } => {
                p.send(
                    Progress::container(service, &container.name, Status::Restarting)
                        .detail(cause.to_string()),
                );
                let stop_timeout = c.find(&container.id).ok().and_then(|i| i.doc.stop_timeout);
                blocking_stop(c, &container.id, grace(self.opts.timeout, stop_timeout)).await?;
                blocking_start(c, &container.id).await?;
                let hooks = &self.project.services[service].post_start;
                super::hooks::post_start(c, service, &container.id, hooks).await?;
                p.send(Progress::container(
                    service,
                    &container.name,
                    Status::Started,
                ));
            }
            Action::Remove { container, cause } => {
                p.send(
                    Progress::container(service, &container.name, Status::Removing)
                        .detail(cause.to_string()),
                );
                let stop_timeout = c.find(&container.id).ok().and_then(|i| i.doc.stop_timeout);
                blocking_stop(c, &container.id, grace(self.opts.timeout, stop_timeout)).await?;
                blocking_remove(c, &container.id).await?;
                let _ = std::fs::remove_dir_all(self.files_dir.join(&container.name));
                p.send(Progress::container(
                    service,
                    &container.name,
                    Status::Removed,
                ));
            }
            Action::Create { number, cause } => {
                self.create(service, *number, cause, None).await?;
            }
            Action::Recreate { number, old, cause } => {
                self.create(service, *number, cause, Some(old)).await?;
            }
        }
        Ok(())
    }

    /// The service's configuration in the stack file being applied.
    pub(super) fn current(&self, service: &str) -> Config<'_> {
        Config {
            svc: &self.project.services[service],
            hash: self
                .prep
                .hashes
                .get(service)
                .map(|h| h.hash.clone())
                .unwrap_or_default(),
            image_id: self
                .prep
                .desired
                .iter()
                .find(|d| d.name == service)
                .map(|d| d.image_id.clone())
                .unwrap_or_default(),
            contents: self.prep.contents.get(service).unwrap_or(self.empty),
        }
    }

    async fn create(
        &self,
        service: &str,
        number: u64,
        cause: &Cause,
        old: Option<&ObservedContainer>,
    ) -> Result<(), StackError> {
        self.create_from(&self.current(service), service, number, cause, old, None)
            .await
            .map(drop)
    }

    /// Creates and starts replica `number` of `service` from `config`, after stopping and
    /// removing `old`; `surge`: under that temporary name instead (a start-first update's
    /// extra replica, published on no fixed host port). Returns the container's name.
    pub(super) async fn create_from(
        &self,
        config: &Config<'_>,
        service: &str,
        number: u64,
        cause: &Cause,
        old: Option<&ObservedContainer>,
        surge: Option<&str>,
    ) -> Result<String, StackError> {
        let mut plan = self.container_plan(config, service, number)?;
        if let Some(surge) = surge {
            plan.options.name = Some(surge.to_owned());
            plan.options
                .labels
                .insert(desired::labels::SURGE.to_owned(), "True".to_owned());
            plan.options.publish.retain(|p| {
                crate::containers::ports::parse(p).is_ok_and(|m| m.host_ports.start == 0)
            });
        }
        let name = plan
            .options
            .name
            .clone()
            .expect("container_plan always names the container");
        let c = &self.stacks.containers;
        if let Some(old) = old {
            self.progress.send(
                Progress::container(service, &old.name, Status::Recreating)
                    .detail(cause.to_string()),
            );
            let stop_timeout = c.find(&old.id).ok().and_then(|i| i.doc.stop_timeout);
            blocking_stop(c, &old.id, grace(self.opts.timeout, stop_timeout)).await?;
            blocking_remove(c, &old.id).await?;
            let _ = std::fs::remove_dir_all(self.files_dir.join(&old.name));
        } else {
            self.progress
                .send(Progress::container(service, &name, Status::Creating));
        }
        let result = self.prepare_mounts(service, &plan);
        let result = match result {
            Ok(()) => blocking_run(c, plan.options).await,
            Err(e) => Err(e),
        };
        let created = match result {
            Ok(created) => created,
            Err(e) => {
                // Nothing of a failed container remains: `run` undid itself; its files go too.
                let _ = std::fs::remove_dir_all(self.files_dir.join(&name));
                self.progress
                    .send(Progress::container(service, &name, Status::Error).detail(chain(&e)));
                return Err(e);
            }
        };
        // A failing hook fails the service; its container stays (as with Compose).
        if let Err(e) =
            super::hooks::post_start(c, service, &created.id, &config.svc.post_start).await
        {
            self.progress
                .send(Progress::container(service, &name, Status::Error).detail(chain(&e)));
            return Err(e);
        }
        self.progress
            .send(Progress::container(service, &name, Status::Started));
        Ok(name)
    }

    /// What replica `number` of `service` is created from, with `config`.
    fn container_plan(
        &self,
        config: &Config<'_>,
        service: &str,
        number: u64,
    ) -> Result<desired::ContainerPlan, StackError> {
        let ctx = Context {
            project: self.project,
            config_files: &self.opts.config_files,
            volumes: self.volumes,
            files_dir: self.files_dir,
            contents: config.contents,
        };
        desired::container_plan(
            &ctx,
            service,
            config.svc,
            number,
            &config.image_id,
            &config.hash,
        )
        .map_err(|source| StackError::Desired {
            service: service.to_owned(),
            source,
        })
    }

    /// Creates bind sources, writes secret and config files, fills new volumes.
    pub(super) fn prepare_mounts(
        &self,
        service: &str,
        plan: &desired::ContainerPlan,
    ) -> Result<(), StackError> {
        for dir in &plan.bind_dirs {
            if !dir.exists() {
                std::fs::create_dir_all(dir).map_err(|source| StackError::Io {
                    op: "create bind source",
                    path: dir.clone(),
                    source,
                })?;
            }
        }
        for f in &plan.files {
            resources::write_file(f)?;
        }
        for m in &plan.options.mounts {
            if let crate::containers::MountKind::Volume { name, source } = &m.kind {
                let take = self
                    .fresh
                    .lock()
                    .map(|mut f| f.remove(name))
                    .unwrap_or(false);
                if take && let Some(layers) = self.prep.snapshots.get(service) {
                    resources::copy_image_content(layers, &m.target, source)?;
                }
            }
        }
        Ok(())
    }
}
