//! Lifecycle hooks (Compose spec `post_start` and `pre_stop`): commands exec'd in a
//! service's container, each with its own `user`, `privileged`, `working_dir` and
//! `environment` (added to the container's).
//!
//! - `post_start` runs once the container has started (`up`, `start`, `restart`); a hook
//!   that fails (non-zero exit, or it cannot run) fails the service's start with the
//!   hook's command, exit code and output in the error. The container is left running,
//!   as Compose does.
//! - `pre_stop` runs before the stop signal whenever berth stops a stack container
//!   (`stop`, `down`, a recreation). Its hooks come from the configuration the last `up`
//!   applied (the stack document), so `down` needs no stack file. A failing `pre_stop`
//!   hook does not keep the container from stopping: it is logged and the stop goes on
//!   (a `down` always cleans up); nor does a slow one: the hooks get the container's grace
//!   period, after which the stop signal is sent anyway.

use berth_compose::Service;
use berth_compose::model::ServiceHook;
use berth_runtime::{ExecRequest, ExecStdio};

use super::desired::labels;
use super::{StackDoc, StackError};
use crate::containers::{ContainerInfo, Containers, runtime_id};

/// How much of a failing hook's output the error keeps.
const OUTPUT_MAX: usize = 2048;

/// Runs the `post_start` hooks of `service` in container `id`, in order; the first that
/// fails ends it.
pub(super) async fn post_start(
    c: &Containers,
    service: &str,
    id: &str,
    hooks: &[ServiceHook],
) -> Result<(), StackError> {
    for hook in hooks {
        run(c, service, id, "post_start", hook).await?;
    }
    Ok(())
}

/// Runs the `pre_stop` hooks recorded for the service of the running stack container `id`
/// (none for a container of no stack, or one that is not running), for at most `grace`:
/// a hook still running then is ended by the stop that follows.
pub(super) async fn pre_stop(c: &Containers, id: &str, grace: std::time::Duration) {
    let Ok(info) = c.find(id) else { return };
    let hooks = applied(c, &info).map(|s| s.pre_stop).unwrap_or_default();
    pre_stop_with(c, &info, &hooks, grace).await;
}

/// The `pre_stop` hooks the last `up` applied, by service of `project`: read once for an
/// operation on many containers (`down`), instead of once per container.
pub(super) fn recorded_pre_stop(
    c: &Containers,
    project: &str,
) -> std::collections::BTreeMap<String, Vec<ServiceHook>> {
    c.engine()
        .store()
        .get::<StackDoc>(project)
        .ok()
        .flatten()
        .map(|doc| {
            doc.services
                .into_iter()
                .filter_map(|(name, r)| Some((name, r.applied?.service.pre_stop)))
                .filter(|(_, hooks)| !hooks.is_empty())
                .collect()
        })
        .unwrap_or_default()
}

/// Runs `hooks` as the `pre_stop` hooks of the container `info` if it runs, for at most
/// `grace`.
pub(super) async fn pre_stop_with(
    c: &Containers,
    info: &ContainerInfo,
    hooks: &[ServiceHook],
    grace: std::time::Duration,
) {
    if hooks.is_empty() || !info.is_running() {
        return;
    }
    let service = info
        .doc
        .labels
        .get(labels::SERVICE)
        .cloned()
        .unwrap_or_default();
    let run_all = async {
        for hook in hooks {
            if let Err(e) = run(c, &service, &info.doc.id, "pre_stop", hook).await {
                tracing::warn!("{}", crate::error_chain(&e));
            }
        }
    };
    if tokio::time::timeout(grace, run_all).await.is_err() {
        let id = &info.doc.id;
        tracing::warn!("pre_stop hooks of {id} still running after {grace:?}: stopping it");
    }
}

/// Runs the `post_start` hooks the last `up` applied to the service of stack container
/// `id` (`start`, `restart` without a stack file).
pub(super) async fn post_start_recorded(
    c: &Containers,
    service: &str,
    id: &str,
) -> Result<(), StackError> {
    let hooks = c
        .find(id)
        .ok()
        .and_then(|info| applied(c, &info))
        .map(|s| s.post_start)
        .unwrap_or_default();
    post_start(c, service, id, &hooks).await
}

/// The service of `info` as the last `up` applied it.
fn applied(c: &Containers, info: &ContainerInfo) -> Option<Service> {
    let project = info.doc.labels.get(labels::PROJECT)?;
    let service = info.doc.labels.get(labels::SERVICE)?;
    c.engine()
        .store()
        .get::<StackDoc>(project)
        .ok()
        .flatten()
        .and_then(|mut doc| doc.services.remove(service))
        .and_then(|r| r.applied)
        .map(|a| a.service)
}

/// Execs one hook in container `id` and waits for it.
async fn run(
    c: &Containers,
    service: &str,
    id: &str,
    hook_name: &'static str,
    hook: &ServiceHook,
) -> Result<(), StackError> {
    let command = hook.command.clone().unwrap_or_default();
    let info = c.find(id)?;
    let fail = |failure: String| StackError::Hook {
        service: service.to_owned(),
        container: info.doc.name.clone(),
        hook: hook_name,
        command: command.clone(),
        failure,
    };
    if command.is_empty() {
        return Err(fail("has no command".to_owned()));
    }
    let container = c
        .runtime()
        .load(runtime_id(&info.doc.id))
        .map_err(|e| fail(format!("could not run: {e}")))?;
    let hook = hook.clone();
    let argv = command.clone();
    let outcome = tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = argv.iter().map(String::as_str).collect();
        let mut process = container.process(&args)?;
        if let Some(dir) = &hook.working_dir {
            process.set_cwd(dir.into());
        }
        if !hook.environment.is_empty() {
            let mut env = process.env().clone().unwrap_or_default();
            for (k, v) in &hook.environment {
                env.retain(|e| e.split_once('=').map_or(e.as_str(), |(n, _)| n) != k);
                if let Some(v) = v {
                    env.push(format!("{k}={v}"));
                }
            }
            process.set_env(Some(env));
        }
        if hook.privileged == Some(true) {
            let all = berth_runtime::security::caps::resolve(&[], &[], true)?;
            process.set_capabilities(Some(berth_runtime::security::caps::to_linux_capabilities(
                &all,
            )));
        }
        let request = ExecRequest {
            process,
            user: hook.user.clone(),
            tty: false,
        };
        container
            .exec(&request, ExecStdio::Piped)?
            .wait_with_output()
    })
    .await
    .map_err(StackError::Task)?;
    match outcome {
        Ok((0, _, _)) => Ok(()),
        Ok((code, out, err)) => {
            let mut text = String::from_utf8_lossy(&out).into_owned();
            text.push_str(&String::from_utf8_lossy(&err));
            Err(fail(format!(
                "exited with code {code}: {}",
                tail(text.trim(), OUTPUT_MAX)
            )))
        }
        Err(e) => Err(fail(format!("could not run: {}", crate::error_chain(&e)))),
    }
}

/// The last `max` bytes of `s` (at a character boundary).
fn tail(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut at = s.len() - max;
    while !s.is_char_boundary(at) {
        at += 1;
    }
    &s[at..]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_keeps_the_end_at_a_character_boundary() {
        assert_eq!(tail("abc", 10), "abc");
        assert_eq!(tail("abcdef", 3), "def");
        assert_eq!(tail("aé", 1), "");
        assert_eq!(tail("aéb", 2), "b");
    }
}
