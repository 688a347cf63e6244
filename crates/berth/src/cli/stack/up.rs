//! `berth up` and `berth down`.

use std::collections::BTreeMap;

use super::super::GlobalArgs;
use super::super::project::ProjectArgs;
use super::progress::{self, ProgressMode};
use crate::api::paths;
use crate::api::stack::{ActionRequest, DownRequest, UpRequest, WatchRequest};

/// `berth up`.
#[derive(Debug, clap::Args)]
pub struct UpArgs {
    /// Detached: return once the containers run (without it, follow their logs; Ctrl-C
    /// stops the stack).
    #[arg(short = 'd', long)]
    detach: bool,
    /// Wait until every service is running and healthy (or, for one-shot services,
    /// exited 0). Implies --detach.
    #[arg(long)]
    wait: bool,
    /// Seconds --wait waits at most.
    #[arg(long, value_name = "SECONDS")]
    wait_timeout: Option<u64>,
    /// Recreate containers even if nothing changed.
    #[arg(long, conflicts_with = "no_recreate")]
    force_recreate: bool,
    /// Do not recreate containers that exist (start them if stopped).
    #[arg(long)]
    no_recreate: bool,
    /// Do not bring up the services the named ones depend on.
    #[arg(long)]
    no_deps: bool,
    /// Remove containers of services the stack file no longer has.
    #[arg(long)]
    remove_orphans: bool,
    /// Run N replicas of a service (`--scale web=3`), repeatable.
    #[arg(long, value_name = "SERVICE=N")]
    scale: Vec<String>,
    /// Build the images of `build:` services first (else only missing ones are built).
    #[arg(long)]
    build: bool,
    /// Seconds to wait for containers being replaced to stop.
    #[arg(short = 't', long = "timeout")]
    timeout: Option<u64>,
    /// How to show progress.
    #[arg(long, value_enum)]
    progress: Option<ProgressMode>,
    /// Then watch the develop.watch rules (watch lines and logs in one stream).
    #[arg(long)]
    watch: bool,
    /// Pull images before starting: `always`, `missing` or `never` (default: each
    /// service's pull_policy, else missing).
    #[arg(long, value_parser = ["always", "missing", "never", "build"])]
    pull: Option<String>,
    /// Services (default: all enabled ones).
    services: Vec<String>,
}

/// `berth down`.
#[derive(Debug, clap::Args)]
pub struct DownArgs {
    /// Remove the stack's named volumes (and anonymous ones) too.
    #[arg(short = 'v', long)]
    volumes: bool,
    /// Remove containers of services the stack file no longer has.
    #[arg(long)]
    remove_orphans: bool,
    /// Seconds to wait for each container to stop before killing it.
    #[arg(short = 't', long = "timeout")]
    timeout: Option<u64>,
    /// How to show progress.
    #[arg(long, value_enum)]
    progress: Option<ProgressMode>,
    /// Remove images too: `local` (built for the stack, without a custom tag) or `all`
    /// (every image its services use).
    #[arg(long, value_parser = ["local", "all"])]
    rmi: Option<String>,
}

pub(super) fn parse_scale(values: &[String]) -> anyhow::Result<BTreeMap<String, u64>> {
    values
        .iter()
        .map(|v| {
            let (svc, n) = v
                .split_once('=')
                .ok_or_else(|| anyhow::anyhow!("invalid --scale {v:?}: use SERVICE=N"))?;
            let n = n
                .parse()
                .map_err(|_| anyhow::anyhow!("invalid --scale {v:?}: N must be a number"))?;
            Ok((svc.to_owned(), n))
        })
        .collect()
}

/// Runs `berth up`.
pub fn up(global: &GlobalArgs, args: &ProjectArgs, up: &UpArgs) -> anyhow::Result<()> {
    let project = super::load_for_up(args, &up.services)?;
    let config_files = super::config_files(args, &project)?;
    let name = project.name.clone();
    let req = UpRequest {
        project,
        config_files,
        services: up.services.clone(),
        force_recreate: up.force_recreate,
        no_recreate: up.no_recreate,
        no_deps: up.no_deps,
        remove_orphans: up.remove_orphans,
        scale: parse_scale(&up.scale)?,
        build: up.build,
        timeout: up.timeout,
        wait: up.wait,
        wait_timeout: up.wait_timeout,
        pull: up.pull.clone(),
    };
    let mode = ProgressMode::detect(up.progress);
    let path = paths::stack(paths::STACK_UP, &name, "");
    let services = up.services.clone();
    let watch_req = up.watch.then(|| WatchRequest {
        project: req.project.clone(),
        services: Vec::new(),
    });
    super::super::block_on(async move {
        let client = global.endpoint()?.connect().await?;
        let lines = client.post_lines(&path, &req).await?;
        progress::follow(lines, mode).await?;
        if let Some(w) = watch_req {
            let lines = super::watch::start(global, w).await?;
            if up.detach || up.wait {
                tokio::select! {
                    r = super::watch::follow(lines, false) => return r,
                    _ = tokio::signal::ctrl_c() => return Ok(()),
                }
            }
            tokio::spawn(async move {
                if let Err(e) = super::watch::follow(lines, false).await {
                    eprintln!("watch: {e:#}");
                }
            });
        }
        if up.detach || up.wait {
            return Ok(());
        }
        // Attached: stream the logs until the containers exit or Ctrl-C, then stop.
        let interrupted = super::logs::attach(global, &name, &services).await?;
        if interrupted {
            eprintln!("Gracefully stopping... (press Ctrl+C again to force)");
            let stop = paths::stack(paths::STACK_ACTION, &name, "stop");
            let req = ActionRequest {
                services,
                ..ActionRequest::default()
            };
            let lines = client.post_lines(&stop, &req).await?;
            tokio::select! {
                r = progress::follow(lines, mode) => r?,
                _ = tokio::signal::ctrl_c() => {
                    let kill = paths::stack(paths::STACK_ACTION, &name, "kill");
                    let lines = client.post_lines(&kill, &ActionRequest::default()).await?;
                    progress::follow(lines, mode).await?;
                }
            }
        }
        Ok(())
    })
}

/// Runs `berth down`.
pub fn down(global: &GlobalArgs, args: &ProjectArgs, down: &DownArgs) -> anyhow::Result<()> {
    // The stack file tells which services are current (the others are orphans); with
    // only `-p` and no file, every container of the project goes.
    let (name, services) = match args.load() {
        Ok(p) => (p.name.clone(), Some(p.services.keys().cloned().collect())),
        Err(e) => match &args.project_name {
            Some(n) => (n.clone(), None),
            None => return Err(e),
        },
    };
    let req = DownRequest {
        volumes: down.volumes,
        remove_orphans: down.remove_orphans,
        services,
        timeout: down.timeout,
        rmi: down.rmi.clone(),
    };
    let mode = ProgressMode::detect(down.progress);
    let path = paths::stack(paths::STACK_DOWN, &name, "");
    super::super::block_on(async move {
        let client = global.endpoint()?.connect().await?;
        let lines = client.post_lines(&path, &req).await?;
        progress::follow(lines, mode).await
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scale_values_parse() {
        let m = parse_scale(&["web=3".into(), "db=0".into()]).unwrap();
        assert_eq!(m["web"], 3);
        assert_eq!(m["db"], 0);
        assert!(parse_scale(&["web".into()]).is_err());
        assert!(parse_scale(&["web=x".into()]).is_err());
    }
}
