//! `RUN`: a container of berth's runtime core on an overlay of the stage's layers; the
//! overlay's upper directory, once the command exited 0, is the step's layer.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

use berth_image::ImageConfig;
use berth_runtime::logs::read_all;
use berth_runtime::{ContainerRequest, LogConfig, Rootfs, Stdio};
use oci_spec::runtime::{Mount as OciMount, MountBuilder};
use sha2::Digest as _;

use crate::instruction::{Command, Run};
use crate::mount::{MountKind, NetworkMode};
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

fn bind(target: &str, source: PathBuf, read_only: bool) -> Result<OciMount, StepError> {
    let opts = vec![
        "rbind".to_string(),
        if read_only { "ro" } else { "rw" }.to_string(),
    ];
    MountBuilder::default()
        .destination(target)
        .source(source)
        .typ("bind")
        .options(opts)
        .build()
        .map_err(|_| StepError::UnsupportedMount("bind"))
}

impl StepRun<'_> {
    /// The `--mount`s as OCI mounts (cache dirs live under the store root).
    fn mounts(&self, run: &Run) -> Result<Vec<OciMount>, StepError> {
        let mut out = Vec::new();
        for m in &run.mounts {
            let target = m.target.clone().unwrap_or_default();
            let target = self.scope.word(&target)?;
            match &m.kind {
                MountKind::Cache { id, .. } => {
                    let id = id.clone().unwrap_or_else(|| target.clone());
                    let name = hex::encode(sha2::Sha256::digest(id.as_bytes()));
                    let dir = self
                        .stage
                        .builder
                        .store
                        .root()
                        .join("build-cache-mounts")
                        .join(name);
                    std::fs::create_dir_all(&dir).map_err(|source| StepError::Scratch {
                        path: dir.clone(),
                        source,
                    })?;
                    out.push(bind(&target, dir, false)?);
                }
                MountKind::Tmpfs { size } => {
                    let mut opts = vec!["nosuid".to_string(), "nodev".to_string()];
                    if let Some(s) = size {
                        opts.push(format!("size={s}"));
                    }
                    out.push(
                        MountBuilder::default()
                            .destination(&target)
                            .source("tmpfs")
                            .typ("tmpfs")
                            .options(opts)
                            .build()
                            .map_err(|_| StepError::UnsupportedMount("tmpfs"))?,
                    );
                }
                MountKind::Bind {
                    source,
                    from: None,
                    read_write: false,
                } => {
                    let src = self.scope.word(source.as_deref().unwrap_or("."))?;
                    let entry = self
                        .stage
                        .ctx
                        .resolve(&src)?
                        .into_iter()
                        .next()
                        .ok_or(StepError::UnsupportedMount("bind"))?;
                    out.push(bind(&target, entry.path, true)?);
                }
                MountKind::Bind { .. } => {
                    return Err(StepError::UnsupportedMount("bind (from= or rw)"));
                }
                MountKind::Secret {
                    required: false, ..
                }
                | MountKind::Ssh {
                    required: false, ..
                } => {}
                MountKind::Secret { .. } => return Err(StepError::UnsupportedMount("secret")),
                MountKind::Ssh { .. } => return Err(StepError::UnsupportedMount("ssh")),
            }
        }
        Ok(out)
    }
}

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
    let id = format!(
        "build-{}-{}",
        std::process::id(),
        RUN_SEQ.fetch_add(1, Ordering::Relaxed)
    );
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
    let mut mounts = req.spec.mounts().clone().unwrap_or_default();
    mounts.extend(step.mounts(run)?);
    req.spec.set_mounts(Some(mounts));
    if !config.config.user.is_empty() {
        req.user = Some(config.config.user.clone());
    }
    req.netns = match run.network {
        Some(NetworkMode::None) => None,
        Some(NetworkMode::Host) => Some(PathBuf::from("/proc/1/ns/net")),
        Some(NetworkMode::Default) | None => step.stage.req.network.clone(),
    };
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
    c.start().map_err(StepError::from)?;
    let status = c.wait().map_err(StepError::from)?;
    drop(guard);
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
