//! Executing one step: the image config it changes, the layer it adds, its history entry.

use std::path::PathBuf;

use berth_image::config::{Empty, History};
use berth_image::{Image, ImageConfig, StoreError};

use crate::context::ContextError;
use crate::instruction::{Command, Healthcheck, Instruction};
use crate::layer::LayerError;
use crate::parse::Step;
use crate::rootfs::{RootfsView, UserError, absolute};
use crate::scope::Scope;
use crate::stage::StageRun;
use crate::substitute::SubstituteError;

/// Why a step failed.
#[derive(Debug, thiserror::Error)]
pub enum StepError {
    /// A variable could not be expanded.
    #[error(transparent)]
    Substitute(#[from] SubstituteError),
    /// A COPY/ADD source is missing, excluded or outside the context.
    #[error(transparent)]
    Context(#[from] ContextError),
    /// Writing the layer failed.
    #[error(transparent)]
    Layer(#[from] LayerError),
    /// The image store failed.
    #[error(transparent)]
    Store(Box<StoreError>),
    /// Recording the step in the cache failed.
    #[error(transparent)]
    Cache(#[from] crate::cache::CacheError),
    /// A base or `--from` image name is invalid.
    #[error("image {name:?}")]
    BaseImage {
        /// The name.
        name: String,
        /// Why.
        #[source]
        source: Box<StoreError>,
    },
    /// A base or `--from` image is missing and could not be pulled.
    #[error("image {name:?} is not in the store and could not be pulled")]
    Pull {
        /// The name.
        name: String,
        /// Why.
        #[source]
        source: Box<crate::pull::PullFailed>,
    },
    /// `--chown` or `USER` names an unknown user or group.
    #[error(transparent)]
    User(#[from] UserError),
    /// `--chmod` is not an octal mode.
    #[error("--chmod={0:?} is not an octal mode")]
    Chmod(String),
    /// Several sources need a directory destination.
    #[error("with several sources the destination {0:?} must be a directory ending in /")]
    DestNotDir(String),
    /// `ADD <url>` could not download its file.
    #[error(transparent)]
    Download(#[from] crate::download::DownloadError),
    /// An `EXPOSE` value that is not `port[/tcp|udp|sctp]`.
    #[error("invalid port {0:?} (expected PORT or PORT/PROTOCOL)")]
    Port(String),
    /// A `RUN` step exited with a non-zero code.
    #[error("RUN exited with code {code}{}", if output.is_empty() { String::new() } else { format!("; its output ended with:\n{output}") })]
    RunFailed {
        /// The exit code.
        code: i32,
        /// The last lines of its output.
        output: String,
    },
    /// The runtime could not run the `RUN` container.
    #[error("running the RUN container")]
    Runtime(#[source] Box<berth_runtime::RuntimeError>),
    /// A `RUN --mount` type berth's builder does not provide.
    #[error("RUN --mount=type={0} is not supported yet")]
    UnsupportedMount(&'static str),
    /// `FROM` a named context that is a local directory.
    #[error(
        "FROM {0}: the named context {0:?} is a directory; only docker-image:// contexts can be a base"
    )]
    FromDirectory(String),
    /// `RUN --mount=type=secret` without `id` or `target`.
    #[error("RUN --mount=type=secret needs id= or target=")]
    SecretId,
    /// A required secret was not given (`--secret id=...`, Compose `build.secrets`).
    #[error(
        "secret {0:?} is required by RUN --mount=type=secret but was not given (berth build --secret id={0},src=PATH)"
    )]
    MissingSecret(String),
    /// A secret's source file could not be read.
    #[error("reading secret file {path}")]
    SecretFile {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A required SSH agent was not given.
    #[error(
        "SSH agent {0:?} is required by RUN --mount=type=ssh but was not given (berth build --ssh {0} with SSH_AUTH_SOCK set, or --ssh {0}=/path/to/agent.sock)"
    )]
    MissingSsh(String),
    /// The SSH agent socket does not exist.
    #[error("SSH agent socket {0} does not exist")]
    SshSocket(PathBuf),
    /// Connecting a RUN step to the build's network failed.
    #[error("connecting the RUN container to the build network")]
    Network(#[source] crate::network::RunNetworkError),
    /// A scratch file of the step could not be written.
    #[error("build scratch directory {path}")]
    Scratch {
        /// The path.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// An ONBUILD trigger of the base image does not parse.
    #[error("ONBUILD trigger of the base image")]
    Trigger(#[source] Box<crate::diagnostic::Diagnostic>),
    /// A stage this step copies from has not been built (a bug in ordering).
    #[error("the stage copied from was not built")]
    StageNotBuilt,
}

impl From<StoreError> for StepError {
    fn from(e: StoreError) -> Self {
        Self::Store(Box::new(e))
    }
}

impl From<berth_runtime::RuntimeError> for StepError {
    fn from(e: berth_runtime::RuntimeError) -> Self {
        Self::Runtime(Box::new(e))
    }
}

/// The config and layers of an image (empty for `scratch`).
pub fn config_and_layers(image: Option<&Image>) -> (ImageConfig, Vec<berth_image::Layer>) {
    match image {
        None => {
            let p = berth_image::Platform::default();
            (
                ImageConfig {
                    architecture: p.architecture,
                    os: p.os,
                    variant: p.variant,
                    ..Default::default()
                },
                Vec::new(),
            )
        }
        Some(i) => {
            let layers = i
                .manifest
                .layers
                .iter()
                .zip(&i.config.rootfs.diff_ids)
                .map(|(d, diff)| berth_image::Layer {
                    digest: d.digest.clone(),
                    diff_id: diff.clone(),
                    size: d.size,
                    media_type: d.media_type.clone(),
                })
                .collect();
            (i.config.clone(), layers)
        }
    }
}

/// RFC 3339 UTC timestamp of now, to the second.
pub(crate) fn now_rfc3339() -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string()
}

/// One step being executed.
pub(crate) struct StepRun<'a> {
    pub stage: &'a StageRun<'a>,
    pub step: &'a Step,
    /// Variables before the step.
    pub scope: &'a Scope,
    /// Variables after it (ENV/ARG applied).
    pub next_scope: &'a Scope,
    pub image: Option<&'a Image>,
    /// A CMD was set earlier in this stage (ENTRYPOINT then keeps it).
    pub cmd_set: bool,
    /// The stage's first step: the base's ONBUILD triggers are not inherited.
    pub first: bool,
    pub scratch: PathBuf,
}

/// The shell of a stage (`SHELL`, default `/bin/sh -c`).
pub(crate) fn shell_of(config: &ImageConfig) -> Vec<String> {
    config
        .config
        .shell
        .clone()
        .unwrap_or_else(|| vec!["/bin/sh".into(), "-c".into()])
}

fn command_list(config: &ImageConfig, c: &Command) -> Vec<String> {
    match c {
        Command::Exec(v) => v.clone(),
        Command::Shell(s) => {
            let mut v = shell_of(config);
            v.push(s.clone());
            v
        }
    }
}

impl StepRun<'_> {
    pub(crate) fn view(&self) -> RootfsView {
        RootfsView::new(self.image.map(|i| i.snapshots()).unwrap_or_default())
    }

    pub(crate) fn mkdir_scratch(&self) -> Result<(), StepError> {
        std::fs::create_dir_all(&self.scratch).map_err(|source| StepError::Scratch {
            path: self.scratch.clone(),
            source,
        })
    }

    /// Runs the step: the new config (with its history entry) and layers.
    pub(crate) fn execute(&self) -> Result<(ImageConfig, Vec<berth_image::Layer>), StepError> {
        let (mut config, mut layers) = config_and_layers(self.image);
        if self.first {
            config.config.on_build = None;
        }
        let base = config.clone();
        let store = self.stage.builder.store;
        let s = self.scope;
        let c = &mut config.config;
        let mut created_by = self.step.text.clone();
        let mut new_layer: Option<PathBuf> = None;
        match &self.step.instruction {
            Instruction::Run(run) => {
                let args = match &run.command {
                    Command::Exec(v) => format!("{v:?}"),
                    Command::Shell(sh) => format!("{} {sh}", shell_of(&config).join(" ")),
                };
                created_by = format!("RUN {args}");
                new_layer = Some(crate::run::run(self, &config, run)?);
            }
            Instruction::Copy(cp) | Instruction::Add(cp) => {
                new_layer = Some(crate::copy::copy(self, &config, cp)?);
            }
            Instruction::Cmd(cmd) => c.cmd = Some(command_list(&base, cmd)),
            Instruction::Entrypoint(cmd) => {
                let list = command_list(&config, cmd);
                let c = &mut config.config;
                c.entrypoint = Some(list);
                if !self.cmd_set {
                    // A CMD inherited from the base image does not survive a new ENTRYPOINT.
                    c.cmd = None;
                }
            }
            Instruction::Env(_) => {
                c.env = self
                    .next_scope
                    .env()
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect();
            }
            Instruction::Label(kvs) => {
                for (k, v) in s.key_values(kvs)? {
                    c.labels.insert(k, v);
                }
            }
            Instruction::Arg(_) => {}
            Instruction::Expose(ports) => {
                for p in ports {
                    for port in s.words(p)? {
                        c.exposed_ports.insert(normalize_port(&port)?, Empty {});
                    }
                }
            }
            Instruction::Workdir(w) => {
                let dir = absolute(&c.working_dir, &s.word(w)?);
                c.working_dir = dir.clone();
                if !self.view().is_dir(&dir) {
                    self.mkdir_scratch()?;
                    new_layer = Some(crate::copy::mkdir_layer(self, &dir)?);
                }
            }
            Instruction::User(u) => c.user = s.word(u)?,
            Instruction::Volume(vols) => {
                for v in vols {
                    for vol in s.words(v)? {
                        c.volumes.insert(vol, Empty {});
                    }
                }
            }
            Instruction::StopSignal(sig) => c.stop_signal = Some(s.word(sig)?),
            Instruction::Healthcheck(h) => c.healthcheck = Some(healthcheck(&base, h)),
            Instruction::Shell(sh) => c.shell = Some(sh.clone()),
            Instruction::Onbuild(_, text) => {
                c.on_build.get_or_insert_with(Vec::new).push(text.clone())
            }
            Instruction::Maintainer(m) => config.author = Some(m.clone()),
        }
        let created = now_rfc3339();
        if let Some(tar) = new_layer {
            let f = std::fs::File::open(&tar).map_err(|source| StepError::Scratch {
                path: tar.clone(),
                source,
            })?;
            layers.push(store.write_layer(f)?);
            let _ = std::fs::remove_dir_all(&self.scratch);
        }
        let empty_layer = !matches!(
            self.step.instruction,
            Instruction::Run(_) | Instruction::Copy(_) | Instruction::Add(_)
        ) && layers.len() == config_and_layers(self.image).1.len();
        config.history.push(History {
            created: Some(created.clone()),
            created_by: Some(created_by),
            comment: Some("berth.build.v0".into()),
            empty_layer,
            ..Default::default()
        });
        config.created = Some(created);
        Ok((config, layers))
    }
}

/// `80` → `80/tcp`; checks the number and the protocol.
fn normalize_port(p: &str) -> Result<String, StepError> {
    let (port, proto) = p.split_once('/').unwrap_or((p, "tcp"));
    let proto = proto.to_ascii_lowercase();
    let valid_port = |s: &str| s.parse::<u16>().is_ok();
    let ok_range = match port.split_once('-') {
        Some((a, b)) => valid_port(a) && valid_port(b),
        None => valid_port(port),
    };
    if !ok_range || !matches!(proto.as_str(), "tcp" | "udp" | "sctp") {
        return Err(StepError::Port(p.to_string()));
    }
    Ok(format!("{port}/{proto}"))
}

fn nanos(d: Option<std::time::Duration>) -> Option<i64> {
    d.map(|d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}

fn healthcheck(config: &ImageConfig, h: &Healthcheck) -> berth_image::Healthcheck {
    match h {
        Healthcheck::None => berth_image::Healthcheck {
            test: vec!["NONE".into()],
            ..Default::default()
        },
        Healthcheck::Check {
            command,
            interval,
            timeout,
            start_period,
            start_interval,
            retries,
        } => {
            let _ = config;
            let test = match command {
                Command::Exec(v) => std::iter::once("CMD".to_string())
                    .chain(v.iter().cloned())
                    .collect(),
                Command::Shell(s) => vec!["CMD-SHELL".into(), s.clone()],
            };
            berth_image::Healthcheck {
                test,
                interval: nanos(*interval),
                timeout: nanos(*timeout),
                start_period: nanos(*start_period),
                start_interval: nanos(*start_interval),
                retries: retries.map(i64::from),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_normalised() {
        assert_eq!(normalize_port("80").unwrap(), "80/tcp");
        assert_eq!(normalize_port("53/UDP").unwrap(), "53/udp");
        assert_eq!(normalize_port("8000-8010").unwrap(), "8000-8010/tcp");
        assert!(matches!(normalize_port("http"), Err(StepError::Port(_))));
        assert!(matches!(normalize_port("80/xyz"), Err(StepError::Port(_))));
        assert!(matches!(normalize_port("70000"), Err(StepError::Port(_))));
    }

    #[test]
    fn timestamps_are_rfc3339() {
        let t = now_rfc3339();
        assert_eq!(t.len(), 20);
        assert!(t.ends_with('Z'));
        assert!(t.starts_with("20"));
    }
}
