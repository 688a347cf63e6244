//! Rolling updates: the changed replicas of a service are replaced in batches of
//! `deploy.update_config.parallelism` (default 1), `delay` apart, each batch watched until
//! it is ready (running, and healthy when the service has a health check) and then for
//! `monitor` more, before the next batch starts.
//!
//! - `order: stop-first` (default): the old replica is stopped and removed, the new one
//!   created under the same name.
//! - `order: start-first`: an extra replica `<name>-next` (label [`labels::SURGE`], no
//!   fixed host port) is started from the new configuration first; once it is ready the
//!   old replica is replaced by the new one under its own name, and once that is ready the
//!   extra one goes. So a service with a health check always has a healthy replica, and
//!   names stay `<project>-<service>-<n>`.
//! - `failure_action`: `pause` (default, as Swarm: the replicas not reached keep the old
//!   configuration), `continue`, or `rollback`: every replica touched by the update is
//!   replaced again from the configuration the previous `up` applied (kept in the stack
//!   document), following `deploy.rollback_config`. `up` then fails naming the service.
//! - `max_failure_ratio` (default 0): the failure action is taken only once the share of
//!   replicas that failed to update exceeds it (Swarm's rule); below it the update goes
//!   on, and `up` still fails at the end naming the replicas that failed.

use std::time::{Duration, Instant};

use berth_compose::model::{Service, UpdateConfig};

use super::desired::{self, labels};
use super::execute::{POLL, blocking_remove, blocking_stop, chain, grace};
use super::plan::{Cause, ObservedContainer};
use super::walk::{Config, Run};
use super::{Progress, Status};
use crate::containers::{ContainerInfo, HealthStatus};

/// What to do when a batch fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OnFailure {
    Pause,
    Continue,
    Rollback,
}

/// `update_config` or `rollback_config` with the defaults filled in.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Settings {
    parallelism: usize,
    delay: Duration,
    start_first: bool,
    on_failure: OnFailure,
    monitor: Duration,
    max_failure_ratio: f64,
}

/// Whether `failed` of `total` replicas exceed the tolerated ratio (Swarm:
/// `failed / total > max_failure_ratio`).
fn exceeds(failed: usize, total: usize, ratio: f64) -> bool {
    failed > 0 && (failed as f64) > ratio * (total.max(1) as f64)
}

impl Settings {
    fn from(cfg: Option<&UpdateConfig>) -> Settings {
        let cfg = cfg.cloned().unwrap_or_default();
        Settings {
            // 0 means "all at once" in Swarm.
            parallelism: match cfg.parallelism {
                Some(0) => usize::MAX,
                Some(n) => usize::try_from(n).unwrap_or(usize::MAX),
                None => 1,
            },
            delay: cfg.delay.map(|d| d.to_std()).unwrap_or_default(),
            start_first: cfg.order.as_deref() == Some("start-first"),
            on_failure: match cfg.failure_action.as_deref() {
                Some("rollback") => OnFailure::Rollback,
                Some("continue") => OnFailure::Continue,
                _ => OnFailure::Pause,
            },
            monitor: cfg.monitor.map(|d| d.to_std()).unwrap_or_default(),
            max_failure_ratio: cfg.max_failure_ratio.unwrap_or(0.0).clamp(0.0, 1.0),
        }
    }
}

/// Whether the recreations of `svc` go through the rolling procedure: it sets
/// `deploy.update_config`, or more than one of its replicas is replaced. (A lone replica
/// without settings is recreated as Compose does, without waiting for it.)
pub(super) fn rolls(svc: &Service, replaced: usize) -> bool {
    svc.deploy
        .as_ref()
        .is_some_and(|d| d.update_config.is_some())
        || replaced > 1
}

/// One replica to replace: its number, the container now, why.
pub(super) type Replacement = (u64, ObservedContainer, Cause);

fn observed_of(service: &str, number: u64, info: &ContainerInfo) -> ObservedContainer {
    ObservedContainer {
        id: info.doc.id.clone(),
        name: info.doc.name.clone(),
        service: service.to_owned(),
        number,
        hash: info
            .doc
            .labels
            .get(labels::CONFIG_HASH)
            .cloned()
            .unwrap_or_default(),
        image_id: info.doc.image_id.clone(),
        running: info.is_running(),
        completed: false,
        surge: false,
    }
}

impl Run<'_> {
    /// Replaces `replaced` following the service's `update_config`.
    pub(super) async fn roll(&self, service: &str, replaced: &[Replacement]) -> Result<(), String> {
        let svc = &self.project.services[service];
        let deploy = svc.deploy.as_ref();
        let settings = Settings::from(deploy.and_then(|d| d.update_config.as_ref()));
        let config = self.current(service);
        let mut done: Vec<u64> = Vec::new();
        let mut failed: Vec<(u64, String)> = Vec::new();
        for (i, batch) in replaced.chunks(settings.parallelism.max(1)).enumerate() {
            if i > 0 && !settings.delay.is_zero() {
                tokio::time::sleep(settings.delay).await;
            }
            let results =
                futures::future::join_all(batch.iter().map(|(n, old, cause)| {
                    self.replace(&config, service, *n, old, cause, settings)
                }))
                .await;
            for ((n, _, _), r) in batch.iter().zip(results) {
                match r {
                    Ok(()) => done.push(*n),
                    Err(e) => failed.push((*n, e)),
                }
            }
            if !exceeds(failed.len(), replaced.len(), settings.max_failure_ratio)
                || settings.on_failure == OnFailure::Continue
            {
                continue;
            }
            let why = failed
                .iter()
                .map(|(_, e)| e.as_str())
                .collect::<Vec<_>>()
                .join("; ");
            if settings.on_failure == OnFailure::Pause {
                return Err(format!(
                    "update paused after {} of {} replicas: {why}",
                    done.len(),
                    replaced.len()
                ));
            }
            let mut touched: Vec<u64> = done.clone();
            touched.extend(failed.iter().map(|(n, _)| *n));
            touched.sort_unstable();
            let back = match self.rollback(service, &touched).await {
                Ok(()) => "rolled back to the previous configuration".to_owned(),
                Err(e) => format!("rollback failed: {e}"),
            };
            return Err(format!("update failed: {why}; {back}"));
        }
        if failed.is_empty() {
            Ok(())
        } else {
            Err(failed
                .into_iter()
                .map(|(_, e)| e)
                .collect::<Vec<_>>()
                .join("; "))
        }
    }

    /// Replaces replica `number` (now `old`) by one made from `config`, and waits until
    /// the new one is ready.
    async fn replace(
        &self,
        config: &Config<'_>,
        service: &str,
        number: u64,
        old: &ObservedContainer,
        cause: &Cause,
        settings: Settings,
    ) -> Result<(), String> {
        if settings.start_first {
            let surge = format!("{}-next", old.name);
            let made = {
                let _permit = self.permits.acquire().await;
                self.create_from(config, service, number, cause, None, Some(&surge))
                    .await
            };
            if let Err(e) = made {
                return Err(chain(&e));
            }
            if let Err(e) = self.ready(&surge, settings.monitor).await {
                self.discard(service, &surge).await;
                return Err(e);
            }
        }
        let made = {
            let _permit = self.permits.acquire().await;
            self.create_from(config, service, number, cause, Some(old), None)
                .await
        };
        let result = match made {
            Ok(name) => self.ready(&name, settings.monitor).await,
            Err(e) => Err(chain(&e)),
        };
        if settings.start_first {
            self.discard(service, &format!("{}-next", old.name)).await;
        }
        result
    }

    /// Goes back to the configuration the previous `up` applied, for replicas `numbers`.
    async fn rollback(&self, service: &str, numbers: &[u64]) -> Result<(), String> {
        let Some(applied) = self
            .applied
            .get(service)
            .and_then(|r| r.applied.as_ref().map(|a| (r, a)))
        else {
            return Err("no earlier configuration is recorded".to_owned());
        };
        let (record, applied) = applied;
        let config = Config {
            svc: &applied.service,
            hash: record.hash.clone(),
            image_id: applied.image_id.clone(),
            contents: &applied.contents,
        };
        let svc = &self.project.services[service];
        let settings = Settings::from(svc.deploy.as_ref().and_then(|d| d.rollback_config.as_ref()));
        let mut todo = Vec::new();
        for &n in numbers {
            let name = desired::container_name(&self.project.name, service, svc, n);
            match self.stacks.containers.find(&name) {
                // Untouched (its start-first replacement never became ready).
                Ok(info)
                    if info.is_running()
                        && info.doc.labels.get(labels::CONFIG_HASH) == Some(&record.hash) => {}
                Ok(info) => todo.push(observed_of(service, n, &info)),
                Err(_) => {
                    // Gone (its replacement failed to be created): create it afresh.
                    let made = {
                        let _permit = self.permits.acquire().await;
                        self.create_from(&config, service, n, &Cause::Rollback, None, None)
                            .await
                    };
                    let name = made.map_err(|e| chain(&e))?;
                    self.ready(&name, settings.monitor).await?;
                }
            }
        }
        let mut errors = Vec::new();
        for batch in todo.chunks(settings.parallelism.max(1)) {
            let results = futures::future::join_all(batch.iter().map(|old| {
                self.replace(
                    &config,
                    service,
                    old.number,
                    old,
                    &Cause::Rollback,
                    settings,
                )
            }))
            .await;
            errors.extend(results.into_iter().filter_map(Result::err));
            if !settings.delay.is_zero() {
                tokio::time::sleep(settings.delay).await;
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors.join("; "))
        }
    }

    /// Stops and removes container `name` if it exists.
    async fn discard(&self, service: &str, name: &str) {
        let c = &self.stacks.containers;
        let Ok(info) = c.find(name) else { return };
        self.progress
            .send(Progress::container(service, name, Status::Removing));
        let g = grace(self.opts.timeout, info.doc.stop_timeout);
        let _permit = self.permits.acquire().await;
        let stopped = blocking_stop(c, &info.doc.id, g).await;
        let removed = blocking_remove(c, &info.doc.id).await;
        match stopped.and(removed) {
            Ok(()) => self
                .progress
                .send(Progress::container(service, name, Status::Removed)),
            Err(e) => self
                .progress
                .send(Progress::container(service, name, Status::Error).detail(chain(&e))),
        }
    }

    /// Waits until container `name` runs (and is healthy when it has a health check), then
    /// watches it for `monitor` more.
    async fn ready(&self, name: &str, monitor: Duration) -> Result<(), String> {
        let c = &self.stacks.containers;
        let info = c.find(name).map_err(|e| chain(&e))?;
        let patience = info.doc.healthcheck.as_ref().map_or(Duration::ZERO, |h| {
            h.start_period
                + (h.interval.max(h.start_interval) + h.timeout) * (h.retries.saturating_add(2))
        }) + Duration::from_secs(10);
        let start = Instant::now();
        let mut healthy_at = None;
        loop {
            let info = c.find(name).map_err(|e| chain(&e))?;
            if !info.is_running() {
                let code = info.state.as_ref().and_then(|s| s.exit_code).unwrap_or(-1);
                return Err(format!("container {name} exited with code {code}"));
            }
            let status = info.health.as_ref().map(|h| h.status);
            if status == Some(HealthStatus::Unhealthy) {
                let last = info
                    .health
                    .as_ref()
                    .and_then(|h| h.log.last())
                    .map(|r| format!(" (last check: exit {})", r.exit_code))
                    .unwrap_or_default();
                return Err(format!("container {name} is unhealthy{last}"));
            }
            let ok = info.doc.healthcheck.is_none() || status == Some(HealthStatus::Healthy);
            if ok && healthy_at.is_none() {
                healthy_at = Some(Instant::now());
            }
            match healthy_at {
                Some(t) if t.elapsed() >= monitor => return Ok(()),
                None if start.elapsed() > patience => {
                    return Err(format!(
                        "container {name} was not healthy after {:?}",
                        start.elapsed()
                    ));
                }
                _ => {}
            }
            tokio::time::sleep(POLL).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_default_as_swarm_and_read_the_stack_file() {
        assert_eq!(
            Settings::from(None),
            Settings {
                parallelism: 1,
                delay: Duration::ZERO,
                start_first: false,
                on_failure: OnFailure::Pause,
                monitor: Duration::ZERO,
                max_failure_ratio: 0.0,
            }
        );
        let cfg = UpdateConfig {
            parallelism: Some(2),
            delay: berth_compose::model::units::Duration::parse("1s"),
            order: Some("start-first".into()),
            failure_action: Some("rollback".into()),
            monitor: berth_compose::model::units::Duration::parse("500ms"),
            max_failure_ratio: Some(0.5),
        };
        assert_eq!(
            Settings::from(Some(&cfg)),
            Settings {
                parallelism: 2,
                delay: Duration::from_secs(1),
                start_first: true,
                on_failure: OnFailure::Rollback,
                monitor: Duration::from_millis(500),
                max_failure_ratio: 0.5,
            }
        );
    }

    #[test]
    fn the_failure_action_waits_until_the_ratio_is_exceeded() {
        assert!(!exceeds(0, 4, 0.0));
        assert!(exceeds(1, 4, 0.0));
        assert!(!exceeds(1, 4, 0.25));
        assert!(exceeds(2, 4, 0.25));
        assert!(!exceeds(3, 4, 1.0));
    }
}
