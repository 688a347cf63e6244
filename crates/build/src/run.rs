//! `RUN`: a container of berth's runtime core on an overlay of the stage's layers; the
//! overlay's upper directory, once the command exited 0, is the step's layer.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use berth_image::ImageConfig;
use berth_runtime::logs::read_all;
use berth_runtime::{ContainerRequest, LogConfig, Rootfs, Stdio};
use oci_spec::runtime::{LinuxNamespaceType, MountBuilder};

use crate::instruction::{Command, Run};
use crate::mount::NetworkMode;
use crate::network::RunNetwork;
use crate::step::{StepError, StepRun, shell_of};

/// How many output lines a failed RUN's error quotes.
const TAIL_LINES: usize = 20;

static RUN_SEQ: AtomicU64 = AtomicU64::new(0);

/// The argv of a RUN: exec form as is; shell form through the stage's shell, with its
/// here-documents appended (a RUN that is only `<<EOF` runs the body as the script).
pub(crate) fn argv(config: &ImageConfig, run: &Run) -> Vec<String> {
    match &run.command {
        Command::Exec(v) => v.clone(),
        Command::Shell(cmd) => {
            let mut script = cmd.clone();
            if let [only] = run.heredocs.as_slice()
                && crate::arguments::heredoc_marker(cmd.trim())
                    .is_some_and(|(name, _, _)| name == only.name)
            {
                script = only.content.clone();
            } else {
                for h in &run.heredocs {
                    script.push('\n');
                    script.push_str(&h.content);
                    script.push_str(&h.name);
                }
            }
            let mut v = shell_of(config);
            v.push(script);
            v
        }
    }
}

/// A fresh number for RUN container ids and secret directories.
pub(crate) fn next_seq() -> u64 {
    RUN_SEQ.fetch_add(1, Ordering::Relaxed)
}

/// The id of a RUN container of this process (`build-<pid>-<n>`).
fn run_container_id() -> String {
    format!("build-{}-{}", std::process::id(), next_seq())
}

/// Removes the RUN containers of builds that were killed: `build-<pid>-<n>` whose process is
/// gone (a SIGKILLed build runs no destructor, and the container's monitor outlives it). A
/// container of a live build, this one's included, is left alone. Returns how many went.
pub(crate) fn remove_orphans(runtime: &berth_runtime::Runtime) -> usize {
    let Ok(states) = runtime.list() else {
        return 0;
    };
    let mut removed = 0;
    for state in states {
        let Some(pid) = state
            .id
            .strip_prefix("build-")
            .and_then(|rest| rest.split('-').next())
            .and_then(|pid| pid.parse::<u32>().ok())
        else {
            continue;
        };
        if pid == std::process::id() || Path::new(&format!("/proc/{pid}")).exists() {
            continue;
        }
        // Best effort: a leftover that cannot be removed must not stop this build.
        if let Ok(c) = runtime.load(&state.id)
            && c.delete(true).is_ok()
        {
            removed += 1;
        }
    }
    removed
}

/// Disconnects a RUN container from the build network whatever happens.
struct Connected<'a> {
    network: &'a dyn RunNetwork,
    id: String,
}

impl Drop for Connected<'_> {
    fn drop(&mut self) {
        let _ = self.network.disconnect(&self.id);
    }
}

/// The host's resolver configuration, shared read-only with steps that have a network.
const RESOLV_CONF: &str = "/etc/resolv.conf";

/// Removes the RUN container even when the step fails half-way.
struct ContainerGuard(Option<berth_runtime::Container>);

impl Drop for ContainerGuard {
    fn drop(&mut self) {
        if let Some(c) = self.0.take() {
            let _ = c.delete(true);
        }
    }
}

/// Runs the step's command; returns the path of its layer tar.
pub(crate) fn run(
    step: &StepRun<'_>,
    config: &ImageConfig,
    run: &Run,
) -> Result<PathBuf, StepError> {
    step.mkdir_scratch()?;
    let scratch = &step.scratch;
    let mk = |name: &str| -> Result<PathBuf, StepError> {
        let p = scratch.join(name);
        std::fs::create_dir_all(&p).map_err(|source| StepError::Scratch {
            path: p.clone(),
            source,
        })?;
        Ok(p)
    };
    let (upper, work) = (mk("upper")?, mk("work")?);
    let mut lowerdirs = step.image.map(|i| i.snapshots()).unwrap_or_default();
    if lowerdirs.is_empty() {
        lowerdirs.push(mk("empty")?);
    }
    let args = argv(config, run);
    let arg_refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let id = run_container_id();
    let rootfs = Rootfs::Overlay {
        lowerdirs,
        upper: upper.clone(),
        work,
    };
    let mut req = ContainerRequest::new(id, &arg_refs, rootfs);
    let mut env: Vec<String> = step
        .scope
        .run_env()
        .into_iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    if !env.iter().any(|e| e.starts_with("PATH=")) {
        env.push("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".to_string());
    }
    let cwd = if config.config.working_dir.is_empty() {
        "/".to_string()
    } else {
        config.config.working_dir.clone()
    };
    if let Some(p) = req.spec.process_mut() {
        p.set_env(Some(env));
        p.set_cwd(PathBuf::from(cwd));
    }
    let prepared = step.prepare_mounts(run)?;
    let mut targets = prepared.targets.clone();
    let mut mounts = req.spec.mounts().clone().unwrap_or_default();
    mounts.extend(prepared.mounts.iter().cloned());
    let mode = run
        .network
        .or(step.stage.req.network)
        .unwrap_or(NetworkMode::Default);
    let network = step
        .stage
        .builder
        .network
        .filter(|_| mode == NetworkMode::Default);
    if (network.is_some() || mode == NetworkMode::Host) && Path::new(RESOLV_CONF).exists() {
        mounts.push(
            MountBuilder::default()
                .destination(RESOLV_CONF)
                .source(RESOLV_CONF)
                .typ("bind")
                .options(vec!["rbind".to_string(), "ro".to_string()])
                .build()
                .map_err(|_| StepError::UnsupportedMount("bind"))?,
        );
        targets.push(RESOLV_CONF.to_string());
    }
    req.spec.set_mounts(Some(mounts));
    if let Some(p) = req.spec.process_mut()
        && !prepared.env.is_empty()
    {
        let mut env = p.env().clone().unwrap_or_default();
        env.extend(prepared.env.iter().cloned());
        p.set_env(Some(env));
    }
    if !config.config.user.is_empty() {
        req.user = Some(config.config.user.clone());
    }
    // `none` and `default` without a build network: a namespace of its own, loopback only;
    // `host`: no network namespace of its own, so the builder's (the host's).
    if mode == NetworkMode::Host
        && let Some(linux) = req.spec.linux_mut()
        && let Some(ns) = linux.namespaces_mut()
    {
        ns.retain(|n| n.typ() != LinuxNamespaceType::Network);
    }
    let log = LogConfig {
        path: scratch.join("run.log"),
        max_size: None,
        max_files: 1,
    };
    req.stdio = Stdio::Logs(log.clone());
    let rt = step.stage.builder.runtime;
    let container = rt.create(req).map_err(StepError::from)?;
    let guard = ContainerGuard(Some(container));
    let c = guard.0.as_ref().ok_or(StepError::StageNotBuilt)?;
    let connected = match network {
        Some(network) => {
            let pid = c
                .state()
                .map_err(StepError::from)?
                .pid
                .ok_or_else(|| StepError::Network("the RUN container has no process".into()))?;
            let netns = PathBuf::from(format!("/proc/{pid}/ns/net"));
            network
                .connect(c.id(), &netns)
                .map_err(StepError::Network)?;
            Some(Connected {
                network,
                id: c.id().to_string(),
            })
        }
        None => None,
    };
    c.start().map_err(StepError::from)?;
    let status = c.wait().map_err(StepError::from)?;
    drop(connected);
    drop(guard);
    drop(prepared);
    crate::run_mounts::remove_mount_points(&upper, &step.view(), &targets);
    let lines: Vec<String> = read_all(&log)
        .map(|entries| {
            entries
                .into_iter()
                .map(|e| e.log.trim_end_matches('\n').to_string())
                .collect()
        })
        .unwrap_or_default();
    let label = crate::stage_graph::stage_label(step.stage.stage);
    for line in &lines {
        step.stage.builder.emit(crate::builder::Event::Output {
            stage: label.clone(),
            line: line.clone(),
        });
    }
    if status.code != 0 {
        let tail = lines[lines.len().saturating_sub(TAIL_LINES)..].join("\n");
        return Err(StepError::RunFailed {
            code: status.code,
            output: tail,
        });
    }
    let tar = scratch.join("layer.tar");
    crate::layer::diff_tar(&upper, &tar)?;
    Ok(tar)
}
