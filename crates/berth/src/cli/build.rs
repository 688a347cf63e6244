//! `berth build` and `berth builder prune`: Dockerfile builds into the local image store.
//!
//! There is no engine yet, so these open the image store at `<--root>/image` and the
//! runtime at `<--root>/containers` directly, as the image commands do.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Mutex;

use berth_build::{BuildError, BuildRequest, Builder, DockerfileSource, Event};
use berth_engine::build_network::BuildNetwork;
use berth_image::{Reference, Store};
use berth_runtime::{Runtime, RuntimeConfig};

use super::{GlobalArgs, error_chain, exit};

/// How progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ProgressMode {
    /// Plain lines (a terminal gets the same for now).
    Auto,
    /// One line per step and per line of RUN output.
    Plain,
    /// Only the image ID at the end.
    Quiet,
}

/// Options of `berth build`.
#[derive(Debug, clap::Args)]
pub struct BuildArgs {
    /// Name (and optionally a tag, `name:tag`) for the image; may be repeated.
    #[arg(short = 't', long = "tag", value_name = "NAME[:TAG]")]
    tags: Vec<String>,
    /// The Dockerfile (default: `CONTEXT/Dockerfile`; `-` reads it from standard input).
    #[arg(short = 'f', long = "file", value_name = "PATH")]
    file: Option<PathBuf>,
    /// Build this stage instead of the last one.
    #[arg(long)]
    target: Option<String>,
    /// A build argument, `KEY=VALUE` (or `KEY` to take it from the environment).
    #[arg(long = "build-arg", value_name = "KEY[=VALUE]")]
    build_args: Vec<String>,
    /// A label for the image, `KEY=VALUE`.
    #[arg(long = "label", value_name = "KEY=VALUE")]
    labels: Vec<String>,
    /// Run every step instead of taking it from the cache.
    #[arg(long)]
    no_cache: bool,
    /// Pull base images even when they are in the store.
    #[arg(long)]
    pull: bool,
    /// How to show progress.
    #[arg(long, value_enum, default_value = "auto")]
    progress: ProgressMode,
    /// A secret for `RUN --mount=type=secret`: `id=ID,src=PATH` or `id=ID,env=VAR`.
    #[arg(long = "secret", value_name = "id=ID[,src=PATH|,env=VAR]")]
    secrets: Vec<String>,
    /// An SSH agent for `RUN --mount=type=ssh`: `default` (`$SSH_AUTH_SOCK`) or `ID=SOCKET`.
    #[arg(long = "ssh", value_name = "default|ID[=SOCKET]")]
    ssh: Vec<String>,
    /// Network of `RUN` steps: `default` (a bridge with outbound access made for the
    /// build), `none` (loopback only) or `host`.
    #[arg(long, value_name = "MODE")]
    network: Option<String>,
    /// A named context for `FROM`/`COPY --from`/`RUN --mount=from`: `NAME=DIR` or
    /// `NAME=docker-image://REF`.
    #[arg(long = "build-context", value_name = "NAME=DIR|docker-image://REF")]
    build_contexts: Vec<String>,
    /// Print only the image ID (same as `--progress=quiet`).
    #[arg(short, long)]
    quiet: bool,
    /// The build context directory.
    context: PathBuf,
}

/// Options of `berth builder`.
#[derive(Debug, clap::Args)]
pub struct BuilderArgs {
    #[command(subcommand)]
    command: BuilderCommand,
}

#[derive(Debug, clap::Subcommand)]
enum BuilderCommand {
    /// Remove the build cache (and the images only it kept).
    Prune,
}

/// `KEY=VALUE` pairs; a bare `KEY` takes its value from the environment when `from_env`.
fn pairs(items: &[String], from_env: bool, what: &str) -> anyhow::Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for item in items {
        match item.split_once('=') {
            Some((k, v)) if !k.is_empty() => {
                out.insert(k.to_string(), v.to_string());
            }
            None if from_env => {
                if let Ok(v) = std::env::var(item) {
                    out.insert(item.clone(), v);
                }
            }
            _ => anyhow::bail!("invalid {what} {item:?}: expected KEY=VALUE"),
        }
    }
    Ok(out)
}

fn open(global: &GlobalArgs) -> anyhow::Result<(Store, Runtime)> {
    let store = Store::open(&global.root.join("image"))?;
    let runtime = Runtime::new(RuntimeConfig::new(global.root.join("containers")));
    Ok((store, runtime))
}

fn request(args: &BuildArgs) -> anyhow::Result<BuildRequest> {
    let mut req = BuildRequest::new(&args.context);
    req.dockerfile = match &args.file {
        None => DockerfileSource::Default,
        Some(p) if p.as_os_str() == "-" => {
            let mut text = String::new();
            std::io::stdin().read_to_string(&mut text)?;
            DockerfileSource::Inline(text)
        }
        Some(p) => DockerfileSource::Path(p.clone()),
    };
    req.target = args.target.clone();
    req.args = pairs(&args.build_args, true, "--build-arg")?;
    req.labels = pairs(&args.labels, false, "--label")?;
    req.tags = args
        .tags
        .iter()
        .map(|t| Reference::parse(t))
        .collect::<Result<_, _>>()?;
    req.no_cache = args.no_cache;
    req.pull = args.pull;
    let env = |k: &str| std::env::var(k).ok();
    for s in &args.secrets {
        let (id, source) = berth_build::secrets::parse_secret(s, env)?;
        req.secrets.insert(id, source);
    }
    for s in &args.ssh {
        let (id, sock) = berth_build::secrets::parse_ssh(s, env)?;
        req.ssh.insert(id, sock);
    }
    for (name, value) in pairs(&args.build_contexts, false, "--build-context")? {
        let c = berth_build::NamedContext::parse(&value).map_err(anyhow::Error::msg)?;
        req.contexts.insert(name, c);
    }
    if let Some(n) = &args.network {
        req.network = Some(berth_build::mount::NetworkMode::parse(n).map_err(anyhow::Error::msg)?);
    }
    Ok(req)
}

/// Prints plain progress: `#n [stage k/total] INSTRUCTION`, `CACHED`, and RUN output.
struct Plain {
    steps: Mutex<usize>,
}

impl Plain {
    fn show(&self, e: &Event) {
        match e {
            Event::Step {
                stage,
                number,
                total,
                text,
                cached,
            } => {
                let mut n = self.steps.lock().unwrap_or_else(|p| p.into_inner());
                *n += 1;
                let cached = if *cached { " CACHED" } else { "" };
                eprintln!("#{n} [{stage} {number}/{total}] {text}{cached}");
            }
            Event::Output { stage, line } => eprintln!("  {stage} | {line}"),
        }
    }
}

/// `berth build`.
pub fn run(global: &GlobalArgs, args: &BuildArgs) -> ExitCode {
    let quiet = args.quiet || args.progress == ProgressMode::Quiet;
    let req = match request(args) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("berth: {}", error_chain(e.as_ref()));
            return ExitCode::from(exit::USAGE);
        }
    };
    let result = open(global).map(|(store, runtime)| {
        let plain = Plain {
            steps: Mutex::new(0),
        };
        let show = |e: &Event| plain.show(e);
        let network = BuildNetwork::new(&store.root().join("build-net"));
        let mut builder = Builder::new(&store, &runtime).network(&network);
        if !quiet {
            builder = builder.progress(&show);
        }
        let built = builder.build(req);
        if let Err(e) = network.close() {
            eprintln!("berth: removing the build network: {}", error_chain(&e));
        }
        built
    });
    match result {
        Ok(Ok(image)) => {
            if quiet {
                println!("{}", image.id);
            } else {
                eprintln!("Successfully built {}", image.id.short());
                for t in &args.tags {
                    eprintln!("Successfully tagged {t}");
                }
            }
            ExitCode::SUCCESS
        }
        Ok(Err(e)) => {
            eprintln!("berth: {}", error_chain(&e));
            match e {
                BuildError::Parse(_)
                | BuildError::Graph { .. }
                | BuildError::ReadDockerfile { .. } => ExitCode::from(exit::INVALID_INPUT),
                _ => ExitCode::from(exit::RUNTIME),
            }
        }
        Err(e) => {
            eprintln!("berth: {}", error_chain(e.as_ref()));
            ExitCode::from(exit::RUNTIME)
        }
    }
}

/// Options of `berth stack build`.
#[derive(Debug, clap::Args)]
pub struct StackBuildArgs {
    /// Run every step instead of taking it from the cache.
    #[arg(long)]
    no_cache: bool,
    /// Pull base images even when they are in the store.
    #[arg(long)]
    pull: bool,
    /// A build argument for every service, `KEY=VALUE` (or `KEY` from the environment).
    #[arg(long = "build-arg", value_name = "KEY[=VALUE]")]
    build_args: Vec<String>,
    /// Print only the image IDs.
    #[arg(short, long)]
    quiet: bool,
    /// Services to build (default: every service with a `build:` section).
    services: Vec<String>,
}

/// `berth stack build [SERVICE…]`: builds the services' images side by side (one thread
/// each, all `RUN --network=default` steps on one build bridge), each tagged with its
/// `image:` (default `<project>-<service>`) and its `build.tags`.
pub fn stack_build(
    global: &GlobalArgs,
    project: &super::project::ProjectArgs,
    args: &StackBuildArgs,
) -> anyhow::Result<()> {
    use berth_engine::stack::{build as stack_build, desired};
    let project = project.load()?;
    for s in &args.services {
        if !project.services.contains_key(s) {
            anyhow::bail!("no such service: {s}");
        }
    }
    let extra_args = pairs(&args.build_args, true, "--build-arg")?;
    let mut jobs = Vec::new();
    for (name, svc) in &project.services {
        let Some(b) = &svc.build else { continue };
        if !args.services.is_empty() && !args.services.contains(name) {
            continue;
        }
        let image = desired::image_name(&project.name, name, svc);
        let mut req = stack_build::request(&project, b, Reference::parse(&image)?);
        req.args.extend(extra_args.clone());
        req.no_cache |= args.no_cache;
        req.pull |= args.pull;
        jobs.push((name.clone(), image, req));
    }
    let (store, runtime) = open(global)?;
    let network = BuildNetwork::new(&store.root().join("build-net"));
    let show = |service: &str, e: &Event| match e {
        Event::Step {
            stage,
            number,
            total,
            text,
            cached,
        } => {
            let cached = if *cached { " CACHED" } else { "" };
            eprintln!("[{service}] [{stage} {number}/{total}] {text}{cached}");
        }
        Event::Output { stage, line } => eprintln!("[{service}] {stage} | {line}"),
    };
    let results: Vec<(String, String, Result<berth_image::Image, BuildError>)> =
        std::thread::scope(|s| {
            let handles: Vec<_> = jobs
                .into_iter()
                .map(|(name, image, req)| {
                    let (store, runtime, network, show) = (&store, &runtime, &network, &show);
                    let quiet = args.quiet;
                    s.spawn(move || {
                        let progress = |e: &Event| show(&name, e);
                        let mut b = Builder::new(store, runtime).network(network);
                        if !quiet {
                            b = b.progress(&progress);
                        }
                        let built = b.build(req);
                        (name, image, built)
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join().unwrap_or_else(|_| {
                        (String::new(), String::new(), Err(BuildError::Panicked))
                    })
                })
                .collect()
        });
    if let Err(e) = network.close() {
        eprintln!("berth: removing the build network: {}", error_chain(&e));
    }
    let mut failed = Vec::new();
    for (name, image, result) in results {
        match result {
            Ok(i) if args.quiet => println!("{}", i.id),
            Ok(i) => eprintln!("Built {image} for {name} ({})", i.id.short()),
            Err(e) => {
                eprintln!("berth: service {name}: {}", error_chain(&e));
                failed.push(name);
            }
        }
    }
    if !failed.is_empty() {
        anyhow::bail!("building {} failed", failed.join(", "));
    }
    Ok(())
}

/// `berth builder ...`.
pub fn builder(global: &GlobalArgs, args: &BuilderArgs) -> anyhow::Result<()> {
    match args.command {
        BuilderCommand::Prune => {
            let (store, runtime) = open(global)?;
            let n = Builder::new(&store, &runtime).prune()?;
            println!("Removed {n} build cache entries");
            Ok(())
        }
    }
}
