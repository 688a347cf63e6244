//! One stage of a build: its base, then each step from the cache or executed.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Mutex;

use berth_image::{Digest, Image, Reference, Store, StoreError};

use crate::builder::{BuildError, BuildRequest, Builder, Event, NamedContext, StepFailed};
use crate::cache::{CacheStore, StepInput, step_key};
use crate::context::Context;
use crate::instruction::{Copy, Instruction, Source};
use crate::parse::{Dockerfile, Stage, Step};
use crate::scope::Scope;
use crate::stage_graph::{Base, CopyFrom, StageGraph, stage_label};
use crate::step::{StepError, StepRun};

/// What a finished stage leaves: its image (none for an empty `FROM scratch` stage) and
/// the cache key chain's last link.
#[derive(Debug, Clone)]
pub struct StageResult {
    /// The stage's image.
    pub image: Option<Image>,
    /// Key of the last step (the parent of a stage built `FROM` this one).
    pub key: String,
}

/// Everything a stage's run needs.
pub(crate) struct StageRun<'a> {
    pub builder: &'a Builder<'a>,
    pub df: &'a Dockerfile,
    pub graph: &'a StageGraph,
    pub stage: &'a Stage,
    pub ctx: &'a Context,
    pub cache: &'a CacheStore,
    pub req: &'a BuildRequest,
    pub done: &'a Mutex<BTreeMap<usize, StageResult>>,
    pub scratch: PathBuf,
}

/// Finds an image by manifest digest.
pub(crate) fn resolve_manifest(store: &Store, manifest: &str) -> Result<Image, StoreError> {
    let digest = Digest::parse(manifest).map_err(|_| StoreError::NotFound(manifest.to_string()))?;
    let r = Reference::parse(&format!("berth-build-cache@{digest}"))?;
    store.resolve(&r)
}

/// Resolves (or pulls) a base or `--from` image by name.
pub(crate) fn image_by_name(store: &Store, name: &str, pull: bool) -> Result<Image, StepError> {
    let reference = Reference::parse(name).map_err(|e| StepError::BaseImage {
        name: name.to_string(),
        source: Box::new(e.into()),
    })?;
    if !pull && let Ok(image) = store.resolve(&reference) {
        return Ok(image);
    }
    crate::pull::pull(store, &reference).map_err(|source| StepError::Pull {
        name: name.to_string(),
        source: Box::new(source),
    })
}

/// Where a `FROM name`, `COPY --from=name` or `RUN --mount=from=name` that is not a stage
/// reads from: a named context's directory, or an image.
pub(crate) enum Origin {
    /// An image (a named context's `docker-image://`, else the name itself).
    Image(Box<Image>),
    /// A named context's local directory.
    Dir(PathBuf),
}

impl StageRun<'_> {
    /// Resolves a non-stage name through the named contexts, else as an image.
    pub(crate) fn origin(&self, name: &str, pull: bool) -> Result<Origin, StepError> {
        let reference = match self.req.contexts.get(name) {
            Some(NamedContext::Dir(d)) => return Ok(Origin::Dir(d.clone())),
            Some(NamedContext::Image(r)) => r.as_str(),
            None => name,
        };
        let image = image_by_name(self.builder.store, reference, pull)?;
        Ok(Origin::Image(Box::new(image)))
    }

    /// Where `ADD <url>` downloads go for the time of the build.
    pub(crate) fn downloads(&self) -> PathBuf {
        self.scratch
            .parent()
            .unwrap_or(&self.scratch)
            .join("downloads")
    }

    fn label(&self) -> String {
        stage_label(self.stage)
    }

    fn step_error(&self, n: usize, total: usize, step: &Step, source: StepError) -> BuildError {
        BuildError::Step(Box::new(StepFailed {
            path: self.df.path.clone(),
            stage: self.label(),
            step: format!("{n}/{total}"),
            instruction: step.text.clone(),
            location: step.location,
            source,
        }))
    }

    fn finished(&self, i: usize) -> Option<StageResult> {
        self.done.lock().ok()?.get(&i).cloned()
    }

    /// The base image and the key its steps chain from.
    fn base(&self) -> Result<(Option<Image>, String), BuildError> {
        let from_err = |source| {
            BuildError::Step(Box::new(StepFailed {
                path: self.df.path.clone(),
                stage: self.label(),
                step: format!("0/{}", self.stage.steps.len()),
                instruction: format!("FROM {}", self.stage.from.image),
                location: self.stage.location,
                source,
            }))
        };
        match &self.graph.bases[self.stage.index] {
            Base::Scratch => Ok((None, "scratch".to_string())),
            Base::Image(name) => {
                let image = match self.origin(name, self.req.pull).map_err(from_err)? {
                    Origin::Image(i) => *i,
                    Origin::Dir(_) => {
                        return Err(from_err(StepError::FromDirectory(name.clone())));
                    }
                };
                let key = image.id.to_string();
                Ok((Some(image), key))
            }
            Base::Stage(i) => {
                let r = self.finished(*i).ok_or(BuildError::Panicked)?;
                Ok((r.image, r.key))
            }
        }
    }

    /// The content digest that enters a COPY/ADD step's cache key.
    fn content_digest(&self, step: &Step, scope: &Scope) -> Result<Option<String>, StepError> {
        let (c, is_add) = match &step.instruction {
            Instruction::Copy(c) => (c, false),
            Instruction::Add(c) => (c, true),
            _ => return Ok(None),
        };
        let mut parts = Vec::new();
        let paths = self.source_paths(c, scope)?;
        match &c.from {
            None => {
                let (urls, local): (Vec<String>, Vec<String>) = paths
                    .iter()
                    .cloned()
                    .partition(|p| is_add && crate::copy::is_url(p));
                parts.push(self.ctx.digest(&local)?);
                // A remote file's content decides, as a local file's does.
                let checksum = c.checksum.as_deref().map(|x| scope.word(x)).transpose()?;
                for url in urls {
                    let d = crate::download::fetch(&url, &self.downloads(), checksum.as_deref())?;
                    parts.push(format!("url:{url}:{}:{}", d.sha256, d.mtime));
                }
            }
            Some(raw) => match self.graph.copy_from[self.stage.index].get(raw) {
                Some(CopyFrom::Stage(i)) => {
                    let r = self.finished(*i).ok_or(StepError::StageNotBuilt)?;
                    parts.push(r.key);
                }
                Some(CopyFrom::Image(name)) => match self.origin(name, false)? {
                    Origin::Image(i) => parts.push(i.id.to_string()),
                    Origin::Dir(d) => {
                        parts.push(format!("context:{}", d.display()));
                        parts.push(Context::open(&d)?.digest(&paths)?);
                    }
                },
                None => return Err(StepError::StageNotBuilt),
            },
        }
        for s in &c.sources {
            if let Source::Heredoc(h) = s {
                parts.push(format!("heredoc:{}:{}", h.name, h.content));
            }
        }
        Ok(Some(parts.join("\n")))
    }

    /// The expanded path sources of a COPY/ADD.
    pub(crate) fn source_paths(&self, c: &Copy, scope: &Scope) -> Result<Vec<String>, StepError> {
        c.sources
            .iter()
            .filter_map(|s| match s {
                Source::Path(p) => Some(scope.word(p).map_err(StepError::from)),
                Source::Heredoc(_) => None,
            })
            .collect()
    }

    /// The base image's ONBUILD triggers as steps (located at the stage's FROM line).
    fn triggers(&self, base: Option<&Image>) -> Result<Vec<Step>, BuildError> {
        let texts = base
            .and_then(|i| i.config.config.on_build.clone())
            .unwrap_or_default();
        let mut steps = Vec::new();
        for text in texts {
            let parsed =
                Dockerfile::parse(&format!("FROM scratch\n{text}\n"), "ONBUILD").map_err(|d| {
                    self.step_error(
                        0,
                        self.stage.steps.len(),
                        &self.base_line_step(),
                        StepError::Trigger(Box::new(d)),
                    )
                })?;
            for mut step in parsed.stages.into_iter().flat_map(|s| s.steps) {
                step.location = self.stage.location;
                steps.push(step);
            }
        }
        Ok(steps)
    }

    fn base_line_step(&self) -> Step {
        Step {
            location: self.stage.location,
            text: format!("FROM {}", self.stage.from.image),
            instruction: Instruction::Arg(Vec::new()),
        }
    }

    /// Runs the stage.
    pub(crate) fn run(&self) -> Result<StageResult, BuildError> {
        let (mut image, mut parent) = self.base()?;
        let label = self.label();
        let steps: Vec<Step> = self
            .triggers(image.as_ref())?
            .into_iter()
            .chain(self.stage.steps.iter().cloned())
            .collect();
        let total = steps.len();
        self.builder.emit(Event::Step {
            stage: label.clone(),
            number: 0,
            total,
            text: format!("FROM {}", self.stage.from.image),
            cached: false,
        });
        let base_env: Vec<(String, String)> = image
            .as_ref()
            .map(|i| {
                i.config
                    .config
                    .env
                    .iter()
                    .filter_map(|kv| kv.split_once('='))
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect()
            })
            .unwrap_or_default();
        let mut scope = Scope::new(
            self.df.escape,
            self.graph.global.clone(),
            self.req.args.clone(),
            &base_env,
        );
        let mut cmd_set = false;
        for (n, step) in steps.iter().enumerate() {
            let n = n + 1;
            let fail = |e| self.step_error(n, total, step, e);
            let content = self.content_digest(step, &scope).map_err(fail)?;
            let args = scope.args_in_scope();
            let key = step_key(StepInput {
                parent: &parent,
                instruction: &step.text,
                args: &args,
                content: content.as_deref(),
            });
            let mut next_scope = scope.clone();
            next_scope
                .apply(&step.instruction)
                .map_err(|e| fail(e.into()))?;
            let cached = if self.req.no_cache {
                None
            } else {
                self.cache
                    .get(&key)
                    .and_then(|m| resolve_manifest(self.builder.store, &m).ok())
            };
            self.builder.emit(Event::Step {
                stage: label.clone(),
                number: n,
                total,
                text: step.text.clone(),
                cached: cached.is_some(),
            });
            let next = match cached {
                Some(img) => img,
                None => {
                    let run = StepRun {
                        stage: self,
                        step,
                        scope: &scope,
                        next_scope: &next_scope,
                        image: image.as_ref(),
                        cmd_set,
                        first: n == 1,
                        scratch: self.scratch.join(format!("step-{n}")),
                    };
                    let (config, layers) = run.execute().map_err(fail)?;
                    let img = self
                        .builder
                        .store
                        .create_image(config, &layers, &[])
                        .map_err(|e| fail(e.into()))?;
                    self.cache
                        .put(&key, &img.manifest_digest.to_string())
                        .map_err(|e| fail(e.into()))?;
                    img
                }
            };
            if matches!(step.instruction, Instruction::Cmd(_)) {
                cmd_set = true;
            }
            image = Some(next);
            scope = next_scope;
            parent = key.to_string();
        }
        Ok(StageResult { image, key: parent })
    }
}
