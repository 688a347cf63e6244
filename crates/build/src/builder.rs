//! The builder: runs the stages a target needs (independent stages in parallel), each
//! step from the cache when its key is known, and tags the result only when every step
//! succeeded (a failed build tags nothing).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use berth_image::{Image, Reference, Store, StoreError};
use berth_runtime::Runtime;

use crate::cache::{CacheError, CacheStore};
use crate::context::{Context, ContextError};
use crate::diagnostic::{Diagnostic, Location};
use crate::parse::Dockerfile;
use crate::stage::{StageResult, StageRun};
use crate::stage_graph::{StageGraph, StageGraphError};
use crate::step::StepError;

/// Where the Dockerfile comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DockerfileSource {
    /// `<context>/Dockerfile`.
    Default,
    /// A file (`-f`), relative to the current directory.
    Path(PathBuf),
    /// The text itself (`dockerfile_inline`, `-f -`).
    Inline(String),
}

/// A named build context (`--build-context name=value`, Compose `additional_contexts`),
/// usable in `FROM name`, `COPY --from=name` and `RUN --mount=from=name` where no stage of
/// that name exists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NamedContext {
    /// A local directory.
    Dir(PathBuf),
    /// An image (`docker-image://ref`).
    Image(String),
}

impl NamedContext {
    /// Parses a value: `docker-image://ref`, or a local path; other schemes (`https://`,
    /// `git@`, `service:`, `target:`) are refused with a message naming them.
    pub fn parse(value: &str) -> Result<Self, String> {
        if let Some(r) = value.strip_prefix("docker-image://") {
            return Ok(Self::Image(r.to_string()));
        }
        if value.contains("://")
            || value.starts_with("git@")
            || value.starts_with("service:")
            || value.starts_with("target:")
        {
            return Err(format!(
                "build context {value:?}: only local directories and docker-image:// are supported"
            ));
        }
        Ok(Self::Dir(PathBuf::from(value)))
    }
}

/// What to build.
#[derive(Debug, Clone)]
pub struct BuildRequest {
    /// The build context directory.
    pub context: PathBuf,
    /// The Dockerfile.
    pub dockerfile: DockerfileSource,
    /// `--target`: the stage to build (default: the last).
    pub target: Option<String>,
    /// `--build-arg`s.
    pub args: BTreeMap<String, String>,
    /// `-t`: references to point at the result.
    pub tags: Vec<Reference>,
    /// `--label`s added to the final image.
    pub labels: BTreeMap<String, String>,
    /// `--no-cache`: run every step.
    pub no_cache: bool,
    /// `--pull`: fetch base images even when present.
    pub pull: bool,
    /// `--secret`s by id, for `RUN --mount=type=secret`.
    pub secrets: BTreeMap<String, crate::secrets::SecretSource>,
    /// `--ssh` agent sockets by id, for `RUN --mount=type=ssh`.
    pub ssh: BTreeMap<String, PathBuf>,
    /// `--network`: the network of `RUN` steps without `--network` (default `default`).
    pub network: Option<crate::mount::NetworkMode>,
    /// Named contexts (`--build-context`, Compose `additional_contexts`).
    pub contexts: BTreeMap<String, NamedContext>,
}

impl BuildRequest {
    /// A request for `context` with `<context>/Dockerfile` and nothing else set.
    pub fn new(context: impl Into<PathBuf>) -> Self {
        Self {
            context: context.into(),
            dockerfile: DockerfileSource::Default,
            target: None,
            args: BTreeMap::new(),
            tags: Vec::new(),
            labels: BTreeMap::new(),
            no_cache: false,
            pull: false,
            secrets: BTreeMap::new(),
            ssh: BTreeMap::new(),
            network: None,
            contexts: BTreeMap::new(),
        }
    }
}

/// Why a build failed.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The Dockerfile could not be read.
    #[error("reading Dockerfile {path}")]
    ReadDockerfile {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The Dockerfile is invalid.
    #[error(transparent)]
    Parse(#[from] Diagnostic),
    /// The stages cannot be ordered (cycle, unknown target, bad FROM variable).
    #[error("{}: {source}", path.display())]
    Graph {
        /// The Dockerfile.
        path: PathBuf,
        /// What is wrong.
        #[source]
        source: StageGraphError,
    },
    /// The build context is unusable.
    #[error(transparent)]
    Context(#[from] ContextError),
    /// The build cache is unusable.
    #[error(transparent)]
    Cache(#[from] CacheError),
    /// A step failed.
    #[error(transparent)]
    Step(Box<StepFailed>),
    /// Writing the final image or its tags failed.
    #[error("creating the final image")]
    Finish(#[source] StoreError),
    /// A build thread panicked (a bug).
    #[error("a build thread panicked")]
    Panicked,
}

/// A failed step with where it is.
#[derive(Debug, thiserror::Error)]
#[error("{}:{}: step {step} ({instruction}) of stage {stage} failed", path.display(), location.line)]
pub struct StepFailed {
    /// The Dockerfile.
    pub path: PathBuf,
    /// The stage's name or index.
    pub stage: String,
    /// `n/total` within the stage.
    pub step: String,
    /// The instruction as written.
    pub instruction: String,
    /// Where it is.
    pub location: Location,
    /// What went wrong.
    #[source]
    pub source: StepError,
}

/// What the builder reports while it works.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A step starts (or is taken from the cache).
    Step {
        /// Stage name or index.
        stage: String,
        /// 1-based step number within the stage (0 for FROM).
        number: usize,
        /// Steps in the stage (FROM included).
        total: usize,
        /// The instruction as written.
        text: String,
        /// Taken from the cache.
        cached: bool,
    },
    /// A line of a `RUN` step's output.
    Output {
        /// Stage name or index.
        stage: String,
        /// The line, without its newline.
        line: String,
    },
}

/// Receives [`Event`]s (from several threads when stages run in parallel).
pub type ProgressFn<'a> = &'a (dyn Fn(&Event) + Sync);

/// Builds images from Dockerfiles into a [`Store`], running `RUN` steps with a [`Runtime`].
///
/// ```no_run
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use berth_build::{BuildRequest, Builder};
/// let store = berth_image::Store::open(std::path::Path::new("/var/lib/berth/image"))?;
/// let runtime = berth_runtime::Runtime::new(berth_runtime::RuntimeConfig::new("/var/lib/berth/containers"));
/// let mut req = BuildRequest::new("./app");
/// req.tags.push(berth_image::Reference::parse("app:dev")?);
/// let image = Builder::new(&store, &runtime).build(req)?;
/// println!("{}", image.id);
/// # Ok(()) }
/// ```
pub struct Builder<'a> {
    pub(crate) store: &'a Store,
    pub(crate) runtime: &'a Runtime,
    pub(crate) progress: Option<ProgressFn<'a>>,
    pub(crate) network: Option<&'a dyn crate::network::RunNetwork>,
}

static BUILD_SEQ: AtomicU64 = AtomicU64::new(0);

/// Removes the build's scratch directory whatever happens.
struct ScratchDir(PathBuf);

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl<'a> Builder<'a> {
    /// A builder over `store` and `runtime`.
    pub fn new(store: &'a Store, runtime: &'a Runtime) -> Self {
        Self {
            store,
            runtime,
            progress: None,
            network: None,
        }
    }

    /// Gives `RUN --network=default` steps `network` (without one they get loopback only).
    pub fn network(mut self, network: &'a dyn crate::network::RunNetwork) -> Self {
        self.network = Some(network);
        self
    }

    /// Reports progress to `f`.
    pub fn progress(mut self, f: ProgressFn<'a>) -> Self {
        self.progress = Some(f);
        self
    }

    pub(crate) fn emit(&self, e: Event) {
        if let Some(f) = self.progress {
            f(&e);
        }
    }

    /// The step cache of this store.
    pub fn cache(&self) -> Result<CacheStore, CacheError> {
        CacheStore::open(self.store.root())
    }

    fn dockerfile(req: &BuildRequest) -> Result<Dockerfile, BuildError> {
        let (text, path) = match &req.dockerfile {
            DockerfileSource::Inline(t) => (t.clone(), PathBuf::from("<inline>")),
            DockerfileSource::Default | DockerfileSource::Path(_) => {
                let path = match &req.dockerfile {
                    DockerfileSource::Path(p) => p.clone(),
                    _ => req.context.join("Dockerfile"),
                };
                let text = std::fs::read_to_string(&path).map_err(|source| {
                    BuildError::ReadDockerfile {
                        path: path.clone(),
                        source,
                    }
                })?;
                (text, path)
            }
        };
        Ok(Dockerfile::parse(&text, &path)?)
    }

    /// Builds the image `req` describes; tags it only if every step succeeded.
    pub fn build(&self, req: BuildRequest) -> Result<Image, BuildError> {
        crate::run::remove_orphans(self.runtime);
        let df = Self::dockerfile(&req)?;
        let graph_err = |source| BuildError::Graph {
            path: df.path.clone(),
            source,
        };
        let graph = StageGraph::new(&df, &req.args).map_err(graph_err)?;
        let target = graph
            .target(&df, req.target.as_deref())
            .map_err(graph_err)?;
        let ctx = Context::open(&req.context)?;
        let cache = self.cache()?;
        let scratch = self.store.root().join("build-tmp").join(format!(
            "{}-{}",
            std::process::id(),
            BUILD_SEQ.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&scratch).map_err(|source| {
            BuildError::Cache(CacheError::Io {
                path: scratch.clone(),
                source,
            })
        })?;
        let _guard = ScratchDir(scratch.clone());
        let results: Mutex<BTreeMap<usize, StageResult>> = Mutex::new(BTreeMap::new());
        for wave in graph.waves(target) {
            let outcomes: Vec<Result<(usize, StageResult), BuildError>> = std::thread::scope(|s| {
                let handles: Vec<_> = wave
                    .iter()
                    .map(|&i| {
                        let run = StageRun {
                            builder: self,
                            df: &df,
                            graph: &graph,
                            stage: &df.stages[i],
                            ctx: &ctx,
                            cache: &cache,
                            req: &req,
                            done: &results,
                            scratch: scratch.join(format!("stage-{i}")),
                        };
                        s.spawn(move || run.run().map(|r| (i, r)))
                    })
                    .collect();
                handles
                    .into_iter()
                    .map(|h| h.join().unwrap_or(Err(BuildError::Panicked)))
                    .collect()
            });
            for o in outcomes {
                let (i, r) = o?;
                results
                    .lock()
                    .map_err(|_| BuildError::Panicked)?
                    .insert(i, r);
            }
        }
        let result = results
            .lock()
            .map_err(|_| BuildError::Panicked)?
            .remove(&target)
            .ok_or(BuildError::Panicked)?;
        let image = self.finish(result, &req)?;
        cache.mark_result(&image.manifest_digest.to_string())?;
        Ok(image)
    }

    /// Adds the request's labels and points its tags at the result.
    fn finish(&self, result: StageResult, req: &BuildRequest) -> Result<Image, BuildError> {
        let (mut config, layers) = crate::step::config_and_layers(result.image.as_ref());
        if result.image.is_none() || !req.labels.is_empty() {
            config
                .config
                .labels
                .extend(req.labels.iter().map(|(k, v)| (k.clone(), v.clone())));
            return self
                .store
                .create_image(config, &layers, &req.tags)
                .map_err(BuildError::Finish);
        }
        let image = result.image.ok_or(BuildError::Panicked)?;
        for t in &req.tags {
            self.store.tag(&image, t).map_err(BuildError::Finish)?;
        }
        Ok(image)
    }

    /// `builder prune`: forgets every cached step, removes the images only the cache kept
    /// and the `RUN --mount=type=cache` directories. Returns how many cache records were
    /// removed.
    pub fn prune(&self) -> Result<usize, BuildError> {
        let cache = self.cache()?;
        for (_, manifest) in cache.entries()? {
            if let Ok(image) = crate::stage::resolve_manifest(self.store, &manifest)
                && image.references.is_empty()
            {
                let _ = self.store.remove(&image, true);
            }
        }
        let n = cache.clear()?;
        self.store.gc(&[]).map_err(BuildError::Finish)?;
        // `RUN --mount=type=cache` directories go too, as with `docker builder prune`.
        let mounts = self.store.root().join("build-cache-mounts");
        match std::fs::remove_dir_all(&mounts) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(BuildError::Cache(CacheError::Io {
                    path: mounts,
                    source: e,
                }));
            }
            _ => {}
        }
        Ok(n)
    }
}

/// The scratch directory of a build (exposed for tests that check nothing is left).
pub fn scratch_root(store_root: &Path) -> PathBuf {
    store_root.join("build-tmp")
}
