//! Applying a batch of changed host paths to a stack's services: sync into every running
//! replica, then the strongest follow-up of the rules that matched (rebuild > restart >
//! exec).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Instant;

use berth_compose::Project;
use berth_compose::model::develop::WatchAction;
use berth_runtime::{ExecRequest, ExecStdio};

use super::WatchLine;
use super::rules::{self, Rule};
use super::sync::{Root, SyncError};
use crate::containers::runtime_id;
use crate::stack::{ProgressSink, Stacks, UpOptions};

/// What a watch applies changes with.
#[derive(Debug, Clone)]
pub struct Context {
    /// The stack service.
    pub stacks: Stacks,
    /// The project as the client loaded it.
    pub project: Project,
    /// The compiled rules.
    pub rules: Vec<Rule>,
}

/// One sync operation: the host path, its target, whether it still exists.
type Op = (PathBuf, String, bool);

#[derive(Default)]
struct ServiceWork {
    ops: Vec<Op>,
    files: BTreeSet<PathBuf>,
    rebuild: bool,
    restart: bool,
    exec: Vec<Vec<String>>,
    action: Option<WatchAction>,
}

fn strength(a: WatchAction) -> u8 {
    match a {
        WatchAction::Sync => 0,
        WatchAction::SyncExec => 1,
        WatchAction::Restart | WatchAction::SyncRestart => 2,
        WatchAction::Rebuild => 3,
    }
}

fn ms(started: Instant) -> f64 {
    (started.elapsed().as_secs_f64() * 1e5).round() / 100.0
}

impl Context {
    fn rel(&self, p: &Path) -> String {
        p.strip_prefix(&self.project.working_dir)
            .unwrap_or(p)
            .display()
            .to_string()
    }

    /// The main-process pids of the running containers of `service`.
    fn pids(&self, service: &str) -> Result<Vec<(String, i32)>, String> {
        let list = self
            .stacks
            .ps(&self.project.name)
            .map_err(|e| e.to_string())?;
        Ok(list
            .into_iter()
            .filter(|c| c.service == service && c.info.is_running())
            .filter_map(|c| {
                let pid = c.info.state.as_ref().and_then(|s| s.pid)?;
                Some((c.info.doc.id.clone(), pid))
            })
            .collect())
    }

    /// The service of the stack's container `id`, when it has one.
    pub fn service_of(&self, id: &str) -> Option<String> {
        let list = self.stacks.ps(&self.project.name).ok()?;
        list.into_iter()
            .find(|c| c.info.doc.id == id)
            .map(|c| c.service)
    }

    /// Syncs the files of `initial_sync` rules that differ from the containers' copies
    /// (`only`: just that container, one that (re)started while watching).
    pub async fn initial_sync(&self, only: Option<&str>) -> Vec<WatchLine> {
        let mut lines = Vec::new();
        let mut by_service: BTreeMap<String, Vec<Op>> = BTreeMap::new();
        for r in self
            .rules
            .iter()
            .filter(|r| r.initial_sync && rules::syncs(r.action))
        {
            let files = walk(r);
            let ops = by_service.entry(r.service.clone()).or_default();
            for f in files {
                if let Some(t) = r.target_of(&f) {
                    ops.push((f, t, true));
                }
            }
        }
        for (service, ops) in by_service {
            let started = Instant::now();
            let pids = match self.pids(&service) {
                Ok(p) => p
                    .into_iter()
                    .filter(|(id, _)| only.is_none_or(|o| o == id))
                    .collect::<Vec<_>>(),
                Err(message) => {
                    lines.push(WatchLine::Error { service, message });
                    continue;
                }
            };
            let count = ops.len();
            let n = pids.len();
            let done = tokio::task::spawn_blocking(move || {
                let mut synced = BTreeSet::new();
                for (_, pid) in pids {
                    let root = Root::open(pid)?;
                    for (src, target, _) in &ops {
                        if !root.same_content(src, target) {
                            root.write_file(src, target)?;
                            synced.insert(src.clone());
                        }
                    }
                }
                Ok::<_, SyncError>(synced)
            })
            .await;
            match done {
                Ok(Ok(synced)) => lines.push(WatchLine::Action {
                    service,
                    action: "initial_sync".into(),
                    files: synced.iter().take(20).map(|p| self.rel(p)).collect(),
                    count: synced.len(),
                    containers: n,
                    millis: ms(started),
                }),
                Ok(Err(e)) => lines.push(WatchLine::Error {
                    service,
                    message: format!("initial sync of {count} files: {e}"),
                }),
                Err(e) => lines.push(WatchLine::Error {
                    service,
                    message: e.to_string(),
                }),
            }
        }
        lines
    }

    /// Applies one batch of changed paths; one line per service it concerned.
    pub async fn apply(&self, paths: &BTreeSet<PathBuf>, started: Instant) -> Vec<WatchLine> {
        let mut work: BTreeMap<String, ServiceWork> = BTreeMap::new();
        for r in &self.rules {
            for p in paths.iter().filter(|p| r.wants(p)) {
                let w = work.entry(r.service.clone()).or_default();
                w.files.insert(p.clone());
                if w.action.is_none_or(|a| strength(r.action) > strength(a)) {
                    w.action = Some(r.action);
                }
                match r.action {
                    WatchAction::Rebuild => w.rebuild = true,
                    WatchAction::Restart => w.restart = true,
                    _ => {}
                }
                if rules::syncs(r.action)
                    && let Some(t) = r.target_of(p)
                {
                    w.ops.push((p.clone(), t, p.exists()));
                    match r.action {
                        WatchAction::SyncRestart => w.restart = true,
                        WatchAction::SyncExec => {
                            if let Some(cmd) = &r.exec
                                && !w.exec.contains(cmd)
                            {
                                w.exec.push(cmd.clone());
                            }
                        }
                        _ => {}
                    }
                }
            }
        }
        let mut lines = Vec::new();
        for (service, w) in work {
            let action = w.action.map_or("sync", rules::action_name).to_owned();
            let files: Vec<String> = w.files.iter().take(20).map(|p| self.rel(p)).collect();
            let count = w.files.len();
            match self.apply_service(&service, w).await {
                Ok(containers) => lines.push(WatchLine::Action {
                    service,
                    action,
                    files,
                    count,
                    containers,
                    millis: ms(started),
                }),
                Err(message) => lines.push(WatchLine::Error { service, message }),
            }
        }
        lines
    }

    async fn apply_service(&self, service: &str, w: ServiceWork) -> Result<usize, String> {
        if w.rebuild {
            let opts = UpOptions {
                services: vec![service.to_owned()],
                build: true,
                no_deps: true,
                ..UpOptions::default()
            };
            self.stacks
                .up(self.project.clone(), &opts, &ProgressSink::none())
                .await
                .map_err(|e| format!("rebuild: {e}"))?;
            return Ok(self.pids(service)?.len());
        }
        let pids = self.pids(service)?;
        let n = pids.len();
        if !w.ops.is_empty() {
            let ops = w.ops;
            let targets = pids.clone();
            tokio::task::spawn_blocking(move || {
                for (_, pid) in targets {
                    let root = Root::open(pid)?;
                    for (src, target, exists) in &ops {
                        if !exists {
                            root.remove(target)?;
                        } else if src.is_dir() {
                            root.mkdir(target)?;
                        } else {
                            root.write_file(src, target)?;
                        }
                    }
                }
                Ok::<_, SyncError>(())
            })
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())?;
        }
        if w.restart {
            self.stacks
                .restart(
                    &self.project.name,
                    &[service.to_owned()],
                    None,
                    &ProgressSink::none(),
                )
                .await
                .map_err(|e| format!("restart: {e}"))?;
        } else {
            for cmd in &w.exec {
                for (id, _) in &pids {
                    self.exec(id, cmd).await?;
                }
            }
        }
        Ok(n)
    }

    async fn exec(&self, id: &str, cmd: &[String]) -> Result<(), String> {
        let container = self
            .stacks
            .containers()
            .runtime()
            .load(runtime_id(id))
            .map_err(|e| e.to_string())?;
        let cmd = cmd.to_vec();
        let shown = cmd.join(" ");
        let (code, _, err) = tokio::task::spawn_blocking(move || {
            let argv: Vec<&str> = cmd.iter().map(String::as_str).collect();
            let process = container.process(&argv)?;
            let request = ExecRequest {
                process,
                user: None,
                tty: false,
            };
            container
                .exec(&request, ExecStdio::Piped)?
                .wait_with_output()
        })
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| format!("exec {shown}: {e}"))?;
        if code != 0 {
            return Err(format!(
                "exec {shown}: exit code {code}: {}",
                String::from_utf8_lossy(&err).trim()
            ));
        }
        Ok(())
    }
}

/// A Dockerfile or a stack file (`*compose*.y*ml`): as Compose, the initial sync leaves
/// them out (the watch loop does not).
fn is_build_file(path: &Path) -> bool {
    let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
        return false;
    };
    name == "Dockerfile"
        || (name.contains("compose") && (name.ends_with(".yml") || name.ends_with(".yaml")))
}

/// Every file under `r.path` it wants for the initial sync, pruned directories skipped.
fn walk(r: &Rule) -> Vec<PathBuf> {
    if r.path.is_file() {
        return vec![r.path.clone()];
    }
    let mut out = Vec::new();
    let mut stack = vec![r.path.clone()];
    while let Some(d) = stack.pop() {
        if r.prunes(&d) {
            continue;
        }
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            match e.file_type() {
                Ok(t) if t.is_dir() => stack.push(p),
                Ok(t) if t.is_file() && r.wants(&p) && !is_build_file(&p) => out.push(p),
                _ => {}
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dockerfiles_and_stack_files_are_build_files() {
        for name in [
            "Dockerfile",
            "compose.yaml",
            "docker-compose.yml",
            "compose.override.yaml",
        ] {
            assert!(is_build_file(&Path::new("/p").join(name)), "{name}");
        }
        for name in ["app.py", "Dockerfile.dev", "compose.json", "values.yaml"] {
            assert!(!is_build_file(&Path::new("/p").join(name)), "{name}");
        }
    }
}
