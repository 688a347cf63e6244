//! `up`: prepare (images, secret contents, hashes), observe, plan, create networks and
//! volumes, then walk the service graph ([`super::walk`]): a service starts the moment its
//! own dependencies are satisfied (a DAG, not levels). A failed service fails its required
//! dependents; the others go on, and `up` reports every failure at the end. The runtime
//! calls block, so each runs on a blocking thread.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use berth_compose::Project;
use tokio::sync::Semaphore;

use super::desired::{self, VolumeSource, labels};
use super::plan::{self, Action, DesiredService, ObservedContainer, PlanOptions};
use super::resources;
use super::{
    Progress, ProgressSink, ServiceFailure, ServiceRecord, StackContainer, StackDoc, StackError,
    Stacks, Status,
};
use crate::containers::{Containers, RestartPolicy, RunOptions};

/// How often dependency conditions and `--wait` are polled.
pub(super) const POLL: Duration = Duration::from_millis(50);

/// Options of `up`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UpOptions {
    /// Services named on the command line (empty: all).
    pub services: Vec<String>,
    /// The stack files (recorded in labels and the stack document).
    pub config_files: Vec<String>,
    /// `--force-recreate`.
    pub force_recreate: bool,
    /// `--no-recreate`.
    pub no_recreate: bool,
    /// `--no-deps`: not the dependencies of the named services.
    pub no_deps: bool,
    /// `--remove-orphans`.
    pub remove_orphans: bool,
    /// `--scale svc=N`.
    pub scale: BTreeMap<String, u64>,
    /// `--build`: build the images of `build:` services even when they exist.
    pub build: bool,
    /// `-t`: grace period when stopping containers being replaced.
    pub timeout: Option<Duration>,
    /// `--wait`: return once everything is running and healthy (or completed).
    pub wait: bool,
    /// `--wait-timeout`.
    pub wait_timeout: Option<Duration>,
    /// Container operations at once (default 8).
    pub parallelism: Option<usize>,
    /// `--pull` (`None`: each service's `pull_policy`).
    pub pull: Option<super::PullPolicy>,
}

/// Options of `down`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DownOptions {
    /// `-v`: remove the stack's named and anonymous volumes.
    pub volumes: bool,
    /// `--remove-orphans`.
    pub remove_orphans: bool,
    /// The services of the current stack file (`None`: every container of the project
    /// goes); containers of other services are orphans, kept unless `remove_orphans`.
    pub services: Option<Vec<String>>,
    /// `-t`.
    pub timeout: Option<Duration>,
    /// `--rmi`: remove the stack's images too.
    pub rmi: Option<super::RemoveImages>,
}

/// What each service needs, computed before anything is touched.
pub(super) struct Prepared {
    pub(super) project: Project,
    pub(super) desired: Vec<DesiredService>,
    pub(super) hashes: BTreeMap<String, super::hash::ServiceHash>,
    pub(super) contents: BTreeMap<String, BTreeMap<String, Vec<u8>>>,
    pub(super) snapshots: BTreeMap<String, Vec<PathBuf>>,
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, StackError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(StackError::Task)
}

pub(super) async fn blocking_run(
    c: &Containers,
    opts: RunOptions,
) -> Result<crate::containers::Created, StackError> {
    let (c, h) = (c.clone(), tokio::runtime::Handle::current());
    Ok(blocking(move || h.block_on(c.run(&opts))).await??)
}

/// [`blocking_run`] without the start: the container waits, set up, for [`blocking_start`].
pub(super) async fn blocking_create(
    c: &Containers,
    opts: RunOptions,
) -> Result<crate::containers::Created, StackError> {
    let (c, h) = (c.clone(), tokio::runtime::Handle::current());
    Ok(blocking(move || h.block_on(c.create(&opts))).await??)
}

/// [`blocking_stop`] for a container removed next (its network goes with the removal);
/// `pre_stop` (its service's hooks, resolved by the caller) run first, as for a stop.
pub(super) async fn blocking_halt(
    c: &Containers,
    info: &crate::containers::ContainerInfo,
    pre_stop: &[berth_compose::model::ServiceHook],
    grace: Duration,
) -> Result<(), StackError> {
    super::hooks::pre_stop_with(c, info, pre_stop, grace).await;
    let (c, id) = (c.clone(), info.doc.id.clone());
    blocking(move || c.halt(&id, grace)).await??;
    Ok(())
}

pub(super) async fn blocking_stop(
    c: &Containers,
    id: &str,
    grace: Duration,
) -> Result<(), StackError> {
    super::hooks::pre_stop(c, id, grace).await;
    let (c, h, id) = (c.clone(), tokio::runtime::Handle::current(), id.to_owned());
    blocking(move || h.block_on(c.stop(&id, grace))).await??;
    Ok(())
}

pub(super) async fn blocking_start(c: &Containers, id: &str) -> Result<(), StackError> {
    let (c, h, id) = (c.clone(), tokio::runtime::Handle::current(), id.to_owned());
    blocking(move || h.block_on(c.start(&id))).await??;
    Ok(())
}

pub(super) async fn blocking_remove(c: &Containers, id: &str) -> Result<(), StackError> {
    let (c, h, key) = (c.clone(), tokio::runtime::Handle::current(), id.to_owned());
    blocking(move || h.block_on(c.remove(&key, true))).await??;
    Ok(())
}

/// The depth of each service of `list` in the dependency graph its `depends_on` labels
/// describe (0: depends on nothing).
fn depths(list: &[StackContainer]) -> BTreeMap<String, usize> {
    let deps: BTreeMap<String, Vec<String>> = list
        .iter()
        .map(|c| {
            let d = c
                .info
                .doc
                .labels
                .get(labels::DEPENDS_ON)
                .map(|s| {
                    s.split(',')
                        .filter_map(|e| e.split(':').next())
                        .filter(|e| !e.is_empty())
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default();
            (c.service.clone(), d)
        })
        .collect();
    fn depth(s: &str, deps: &BTreeMap<String, Vec<String>>, seen: &mut Vec<String>) -> usize {
        if seen.iter().any(|x| x == s) {
            return 0;
        }
        seen.push(s.to_owned());
        let d = deps
            .get(s)
            .and_then(|ds| ds.iter().map(|d| 1 + depth(d, deps, seen)).max())
            .unwrap_or(0);
        seen.pop();
        d
    }
    deps.keys()
        .map(|s| (s.clone(), depth(s, &deps, &mut Vec::new())))
        .collect()
}

/// Sorts containers so that dependencies come first (`reverse`: dependents first), from
/// their `depends_on` labels.
pub(super) fn order_by_dependencies(list: &mut [StackContainer], reverse: bool) {
    let d = depths(list);
    list.sort_by_key(|c| {
        let depth = d.get(&c.service).copied().unwrap_or(0);
        (
            if reverse { usize::MAX - depth } else { depth },
            c.service.clone(),
            c.number,
        )
    });
}

fn observed(list: &[StackContainer]) -> Vec<ObservedContainer> {
    list.iter()
        .map(|c| ObservedContainer {
            id: c.info.doc.id.clone(),
            name: c.info.doc.name.clone(),
            service: c.service.clone(),
            number: c.number,
            hash: c
                .info
                .doc
                .labels
                .get(labels::CONFIG_HASH)
                .cloned()
                .unwrap_or_default(),
            image_id: c.info.doc.image_id.clone(),
            running: c.info.is_running(),
            completed: !c.info.is_running()
                && c.info.state.as_ref().and_then(|s| s.exit_code) == Some(0)
                && matches!(
                    c.info.doc.restart,
                    RestartPolicy::No | RestartPolicy::OnFailure { .. }
                ),
            surge: c.info.doc.labels.contains_key(labels::SURGE),
        })
        .collect()
}

/// The grace period for stopping `c`.
pub(super) fn grace(timeout: Option<Duration>, stop_timeout: Option<u64>) -> Duration {
    timeout
        .or(stop_timeout.map(Duration::from_secs))
        .unwrap_or(Duration::from_secs(10))
}

impl Stacks {
    /// Resolves images, secret contents and hashes of the selected services.
    pub(super) fn prepare(
        &self,
        mut project: Project,
        opts: &UpOptions,
        selected: &Option<BTreeSet<String>>,
        progress: &ProgressSink,
    ) -> Result<Prepared, StackError> {
        for (svc, n) in &opts.scale {
            let s = project
                .services
                .get_mut(svc)
                .ok_or_else(|| StackError::NoSuchService(svc.clone()))?;
            s.scale = Some(*n);
            if let Some(d) = &mut s.deploy {
                d.replicas = Some(*n);
            }
        }
        let mut desired = Vec::new();
        let mut hashes = BTreeMap::new();
        let mut contents = BTreeMap::new();
        let mut snapshots = BTreeMap::new();
        for (name, svc) in &project.services {
            let wanted = selected.as_ref().is_none_or(|s| s.contains(name));
            let mut image_id = String::new();
            if wanted {
                let c = desired::contents_of(&project, svc, |p| std::fs::read(p)).map_err(
                    |source| StackError::Source {
                        service: name.clone(),
                        source,
                    },
                )?;
                let found = self.service_image(&project, name, svc, opts, progress)?;
                image_id = found.id.to_string();
                snapshots.insert(name.clone(), found.snapshots());
                hashes.insert(name.clone(), super::hash::service_hash(svc, &c));
                contents.insert(name.clone(), c);
            }
            let h = hashes.get(name).cloned().unwrap_or_default();
            desired.push(DesiredService {
                name: name.clone(),
                replicas: svc.replicas(),
                hash: h.hash,
                fields: h.fields,
                image_id,
                depends_on: svc
                    .depends_on
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
            });
        }
        Ok(Prepared {
            project,
            desired,
            hashes,
            contents,
            snapshots,
        })
    }

    /// `up`: converges the stack to `project`. Healthy services are left running when
    /// others fail; the error names each failed service and why.
    pub async fn up(
        &self,
        project: Project,
        opts: &UpOptions,
        progress: &ProgressSink,
    ) -> Result<(), StackError> {
        let selected = super::selected_services(&project, &opts.services, opts.no_deps)?;
        // Reading secret files and building images block: off the async workers.
        let prep = {
            let (this, o, sel, p) = (
                self.clone(),
                opts.clone(),
                selected.clone(),
                progress.clone(),
            );
            blocking(move || this.prepare(project, &o, &sel, &p)).await??
        };
        let project = &prep.project;
        let store = self.engine.store();
        let list = self.ps(&project.name)?;
        let previous = store.get::<StackDoc>(&project.name)?;
        let prev_fields: BTreeMap<String, BTreeMap<String, String>> = previous
            .as_ref()
            .map(|d| {
                d.services
                    .iter()
                    .map(|(k, v)| (k.clone(), v.fields.clone()))
                    .collect()
            })
            .unwrap_or_default();
        let plan = plan::plan(
            &prep.desired,
            &observed(&list),
            &prev_fields,
            &PlanOptions {
                force_recreate: opts.force_recreate,
                no_recreate: opts.no_recreate,
                selected: selected.clone(),
            },
        )?;
        tracing::debug!("plan for {}:\n{plan}", project.name);

        // Orphans: reported, or removed with --remove-orphans.
        if !plan.orphans.is_empty() {
            if opts.remove_orphans {
                for o in &plan.orphans {
                    progress.send(Progress::container(&o.service, &o.name, Status::Removing));
                    blocking_stop(&self.containers, &o.id, grace(opts.timeout, None)).await?;
                    blocking_remove(&self.containers, &o.id).await?;
                    let _ = std::fs::remove_dir_all(self.files_dir(&project.name).join(&o.name));
                    progress.send(Progress::container(&o.service, &o.name, Status::Removed));
                }
            } else {
                let names: Vec<&str> = plan.orphans.iter().map(|o| o.name.as_str()).collect();
                progress.send(Progress::stack(&project.name, Status::Warning).detail(format!(
                    "Found orphan containers ({}) for this project ({}). If you removed or renamed this service in your compose file, you can run this command with the --remove-orphans flag to clean it up.",
                    names.join(", "),
                    project.name
                )));
            }
        }

        // Record the stack before touching anything, so `ls` and `down` know it.
        let now = berth_runtime::clock::now_rfc3339();
        let mut doc = previous.unwrap_or_else(|| StackDoc {
            name: project.name.clone(),
            working_dir: project.working_dir.clone(),
            config_files: opts.config_files.clone(),
            services: BTreeMap::new(),
            created: now.clone(),
            updated: now.clone(),
        });
        doc.working_dir = project.working_dir.clone();
        doc.config_files = opts.config_files.clone();
        doc.updated = now;
        if plan.is_noop() {
            // Nothing to do: keep the document as it is (no write, no container touched).
            for (service, actions) in &plan.actions {
                for a in actions {
                    if let Action::Keep(c) = a {
                        progress.send(Progress::container(service, &c.name, Status::Running));
                    }
                }
            }
            if previous_is_missing(&doc, &prep) {
                self.record(&mut doc, &prep, plan.actions.keys())?;
            }
            return self.maybe_wait(project, opts, &plan, progress).await;
        }
        // The document is flushed (two fsyncs) on a blocking thread while the networks are
        // made.
        let (engine, stored) = (self.engine.clone(), doc.clone());
        let put = tokio::task::spawn_blocking(move || engine.store().put(&stored.name, &stored));
        let networks = async {
            if plan.actions.values().flatten().any(|a| {
                matches!(
                    a,
                    Action::Create { .. } | Action::Recreate { .. } | Action::Start(_)
                )
            }) {
                let net = self.containers.net().await?;
                resources::ensure_networks(&net, project, progress).await?;
            }
            Ok::<(), StackError>(())
        };
        let (put, networks) = tokio::join!(put, networks);
        put.map_err(StackError::Task)??;
        networks?;
        // Named volumes of the services being converged, then anonymous ones per container.
        let mut volumes: BTreeMap<String, VolumeSource> = BTreeMap::new();
        let mut fresh: BTreeSet<String> = BTreeSet::new();
        let root = &self.engine.config().root;
        for (service, actions) in &plan.actions {
            let svc = &project.services[service];
            for v in svc
                .volumes
                .iter()
                .filter(|v| v.kind == berth_compose::model::VolumeType::Volume)
            {
                let mut keys = Vec::new();
                match &v.source {
                    Some(k) => keys.push(k.clone()),
                    None => {
                        for a in actions {
                            if let Action::Create { number, .. } | Action::Recreate { number, .. } =
                                a
                            {
                                let name =
                                    desired::container_name(&project.name, service, svc, *number);
                                keys.push(super::mounts::anonymous_volume_key(&name, &v.target));
                            }
                        }
                    }
                }
                for key in keys {
                    if volumes.contains_key(&key) {
                        continue;
                    }
                    let (source, is_new) =
                        resources::ensure_volume(store, root, project, &key, progress)?;
                    if let (true, VolumeSource::Dir { name, .. }) = (is_new, &source) {
                        fresh.insert(name.clone());
                    }
                    volumes.insert(key, source);
                }
            }
        }
        let files_dir = self.files_dir(&project.name);
        let empty = BTreeMap::new();
        let applied = doc.services.clone();
        let run = super::walk::Run {
            applied: &applied,
            stacks: self,
            project,
            prep: &prep,
            opts,
            volumes: &volumes,
            fresh: Mutex::new(fresh),
            files_dir: &files_dir,
            progress,
            permits: Semaphore::new(opts.parallelism.unwrap_or(8).max(1)),
            empty: &empty,
            announced: Mutex::new(BTreeSet::new()),
        };
        let failures = run.walk(&plan).await;
        let ok: Vec<&String> = plan
            .actions
            .keys()
            .filter(|s| !failures.iter().any(|f| &&f.service == s))
            .collect();
        self.record(&mut doc, &prep, ok.into_iter())?;
        if !failures.is_empty() {
            return Err(StackError::Failed { failures });
        }
        self.maybe_wait(project, opts, &plan, progress).await
    }

    fn record<'a>(
        &self,
        doc: &mut StackDoc,
        prep: &Prepared,
        services: impl Iterator<Item = &'a String>,
    ) -> Result<(), StackError> {
        // Stack documents keep the bytes of secrets (what a rollback recreates them from):
        // their directory is root's alone.
        let dir = self
            .engine
            .store()
            .dir()
            .join(crate::store::Kind::Stack.dir_name());
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).map_err(
                |source| StackError::Io {
                    op: "restrict",
                    path: dir.clone(),
                    source,
                },
            )?;
        }
        for s in services {
            if let Some(h) = prep.hashes.get(s) {
                doc.services.insert(
                    s.clone(),
                    ServiceRecord {
                        hash: h.hash.clone(),
                        fields: h.fields.clone(),
                        applied: prep
                            .project
                            .services
                            .get(s)
                            .map(|svc| super::AppliedService {
                                service: svc.clone(),
                                image_id: prep
                                    .desired
                                    .iter()
                                    .find(|d| &d.name == s)
                                    .map(|d| d.image_id.clone())
                                    .unwrap_or_default(),
                                contents: prep.contents.get(s).cloned().unwrap_or_default(),
                            }),
                    },
                );
            }
        }
        self.engine.store().put(&doc.name, doc)?;
        Ok(())
    }

    async fn maybe_wait(
        &self,
        project: &Project,
        opts: &UpOptions,
        plan: &plan::Plan,
        progress: &ProgressSink,
    ) -> Result<(), StackError> {
        if !opts.wait {
            return Ok(());
        }
        let timeout = opts.wait_timeout.unwrap_or(Duration::from_secs(3600));
        let start = Instant::now();
        let services: BTreeSet<&String> = plan.actions.keys().collect();
        let mut reported: BTreeSet<String> = BTreeSet::new();
        loop {
            let mut waiting = Vec::new();
            for c in self.ps(&project.name)? {
                if !services.contains(&c.service) {
                    continue;
                }
                let name = c.info.doc.name.clone();
                match readiness(&c) {
                    Ready::Yes(status) => {
                        if reported.insert(name.clone()) {
                            progress.send(Progress::container(&c.service, &name, status));
                        }
                    }
                    Ready::No => waiting.push(name),
                    Ready::Never(reason) => {
                        return Err(StackError::Failed {
                            failures: vec![ServiceFailure {
                                service: c.service.clone(),
                                reason: format!("container {name} {reason}"),
                            }],
                        });
                    }
                }
            }
            if waiting.is_empty() {
                return Ok(());
            }
            if start.elapsed() > timeout {
                return Err(StackError::WaitTimeout {
                    timeout,
                    waiting: waiting.join(", "),
                });
            }
            tokio::time::sleep(POLL).await;
        }
    }
}

fn previous_is_missing(doc: &StackDoc, prep: &Prepared) -> bool {
    prep.hashes
        .keys()
        .any(|s| doc.services.get(s).is_none_or(|r| r.applied.is_none()))
}

enum Ready {
    Yes(Status),
    No,
    Never(String),
}

/// Whether a container counts as up for `--wait`: running (and healthy when it has a
/// health check), or a one-shot (`restart: no`) that exited 0.
fn readiness(c: &StackContainer) -> Ready {
    use crate::containers::HealthStatus;
    let info = &c.info;
    if info.is_running() {
        if info.doc.healthcheck.is_none() {
            return Ready::Yes(Status::Running);
        }
        return match info.health.as_ref().map(|h| h.status) {
            Some(HealthStatus::Healthy) => Ready::Yes(Status::Healthy),
            Some(HealthStatus::Unhealthy) => Ready::Never("is unhealthy".to_owned()),
            _ => Ready::No,
        };
    }
    let code = info.state.as_ref().and_then(|s| s.exit_code);
    match (code, info.doc.restart) {
        (Some(0), RestartPolicy::No | RestartPolicy::OnFailure { .. }) => {
            Ready::Yes(Status::Exited)
        }
        (Some(code), RestartPolicy::No) => Ready::Never(format!("exited with code {code}")),
        _ => Ready::No,
    }
}

/// An error and its causes on one line.
pub(super) use crate::error_chain as chain;
