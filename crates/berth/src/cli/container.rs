//! The single-container commands: `run`, `ps`, `logs`, `stop`, `start`, `kill`, `wait`, `rm`,
//! `inspect`, `exec`. They only translate arguments into calls on
//! [`berth_engine::containers::Containers`] (in-process for now; the daemon can take them over
//! behind the same seam) and print the results.

use std::process::ExitCode;
use std::time::Duration;

use berth_engine::containers::{Containers, ContainersError, parse_signal, runtime_id};
use berth_engine::{Engine, EngineConfig, EngineError};
use clap::Subcommand;

use super::GlobalArgs;
use super::container_format as format;
pub use super::container_run::{ExecArgs, LogsArgs, RunArgs};
use super::container_run::{block_on_c, fail};

/// Errors of the container commands.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The engine could not be opened.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// The container operation failed.
    #[error(transparent)]
    Containers(#[from] ContainersError),
    /// Reading logs failed.
    #[error(transparent)]
    Logs(#[from] berth_engine::containers::logs::LogsError),
    /// The async runtime could not be built.
    #[error("start the async runtime: {0}")]
    Tokio(#[source] std::io::Error),
    /// A value on the command line is wrong.
    #[error("{0}")]
    Usage(String),
    /// `exec` on a stopped container.
    #[error("container {0} is not running")]
    NotRunning(String),
    /// JSON output failed.
    #[error("write JSON: {0}")]
    Json(#[from] serde_json::Error),
}

impl CliError {
    /// 125 for berth's own failures, 126/127 for a command that cannot run (Docker's codes).
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Containers(e) => e.exit_code(),
            _ => 125,
        }
    }
}

/// Opens the engine on the global `--root` and its container service.
pub fn open(global: &GlobalArgs) -> Result<Containers, CliError> {
    let engine = Engine::open(EngineConfig {
        root: global.root.clone(),
        run_dir: global.run_dir.clone(),
    })?;
    Ok(Containers::open(&engine, None)?)
}

/// The container commands, flattened into the top level.
#[derive(Debug, Subcommand)]
pub enum Commands {
    /// Create and start a container from an image.
    Run(Box<RunArgs>),
    /// List containers.
    Ps(PsArgs),
    /// Show a container's output.
    Logs(LogsArgs),
    /// Stop running containers (stop signal, then SIGKILL after the grace period).
    Stop(StopArgs),
    /// Start stopped containers.
    Start(NamesArgs),
    /// Send a signal to running containers.
    Kill(KillArgs),
    /// Wait for containers to exit and print their exit codes.
    Wait(NamesArgs),
    /// Remove containers.
    Rm(RmArgs),
    /// Show containers' configuration and state as JSON.
    Inspect(NamesArgs),
    /// Run a command in a running container.
    Exec(ExecArgs),
    /// List a container's published ports.
    Port(PortArgs),
    /// Manage networks.
    Network(super::container_network::NetworkArgs),
}

/// `berth port`.
#[derive(Debug, clap::Args)]
pub struct PortArgs {
    /// Container name or id.
    container: String,
}

/// `berth ps`.
#[derive(Debug, clap::Args)]
pub struct PsArgs {
    /// Show all containers (default: running ones).
    #[arg(short = 'a', long)]
    all: bool,
    /// Print ids only.
    #[arg(short = 'q', long)]
    quiet: bool,
    /// `table` (default) or `json` (one object per line).
    #[arg(long, default_value = "table")]
    format: String,
}

/// Commands taking container names or ids.
#[derive(Debug, clap::Args)]
pub struct NamesArgs {
    /// Container names or ids.
    #[arg(required = true)]
    containers: Vec<String>,
}

/// `berth stop`.
#[derive(Debug, clap::Args)]
pub struct StopArgs {
    /// Seconds to wait before killing (default: the container's `--stop-timeout`, else 10).
    #[arg(short = 't', long = "time")]
    time: Option<u64>,
    /// Container names or ids.
    #[arg(required = true)]
    containers: Vec<String>,
}

/// `berth kill`.
#[derive(Debug, clap::Args)]
pub struct KillArgs {
    /// Signal to send.
    #[arg(short = 's', long, default_value = "KILL")]
    signal: String,
    /// Container names or ids.
    #[arg(required = true)]
    containers: Vec<String>,
}

/// `berth rm`.
#[derive(Debug, clap::Args)]
pub struct RmArgs {
    /// Kill running containers first.
    #[arg(short = 'f', long)]
    force: bool,
    /// Container names or ids.
    #[arg(required = true)]
    containers: Vec<String>,
}

/// Runs a container command.
pub fn run(global: &GlobalArgs, command: Commands) -> ExitCode {
    let result = match command {
        Commands::Run(a) => return super::container_run::run(global, &a),
        Commands::Exec(a) => return super::container_run::exec(global, &a),
        Commands::Logs(a) => super::container_run::logs(global, &a),
        Commands::Ps(a) => ps(global, &a),
        Commands::Inspect(a) => inspect(global, &a),
        Commands::Stop(a) => each(global, &a.containers, |c, name| {
            let grace = match a.time {
                Some(t) => t,
                None => c.find(name)?.doc.stop_timeout.unwrap_or(10),
            };
            block_on_c(c.stop(name, Duration::from_secs(grace))).map(|_| ())
        }),
        Commands::Start(a) => each(global, &a.containers, |c, name| {
            block_on_c(c.start(name)).map(|_| ())
        }),
        Commands::Rm(a) => each(global, &a.containers, |c, name| {
            block_on_c(c.remove(name, a.force)).map(|_| ())
        }),
        Commands::Kill(a) => match parse_signal(&a.signal) {
            Some(sig) => each(global, &a.containers, |c, name| {
                c.kill(name, sig).map(|_| ()).map_err(CliError::from)
            }),
            None => Err(CliError::Usage(format!("invalid signal {:?}", a.signal))),
        },
        Commands::Wait(a) => wait(global, &a),
        Commands::Network(a) => super::container_network::run(global, &a),
        Commands::Port(a) => port(global, &a),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(&e),
    }
}

/// Applies `op` to each named container, printing the name on success (as Docker does);
/// every container is tried, the first error is returned.
fn each(
    global: &GlobalArgs,
    names: &[String],
    op: impl Fn(&Containers, &str) -> Result<(), CliError>,
) -> Result<(), CliError> {
    let c = open(global)?;
    let mut first = None;
    for name in names {
        match op(&c, name) {
            Ok(()) => println!("{name}"),
            Err(e) if first.is_none() => first = Some(e),
            Err(e) => eprintln!("berth: {}", super::error_chain(&e)),
        }
    }
    first.map_or(Ok(()), Err)
}

fn ps(global: &GlobalArgs, args: &PsArgs) -> Result<(), CliError> {
    let list: Vec<_> = open(global)?
        .list()?
        .into_iter()
        .filter(|c| args.all || c.is_running())
        .collect();
    if args.quiet {
        for c in &list {
            println!("{}", &c.doc.id[..12]);
        }
        return Ok(());
    }
    match args.format.as_str() {
        "json" => {
            for c in &list {
                println!("{}", serde_json::to_string(&format::ps_json(c))?);
            }
        }
        "table" => print!("{}", format::ps_table(&list)),
        other => return Err(CliError::Usage(format!("unknown --format {other:?}"))),
    }
    Ok(())
}

fn inspect(global: &GlobalArgs, args: &NamesArgs) -> Result<(), CliError> {
    let c = open(global)?;
    let docs = args
        .containers
        .iter()
        .map(|n| c.find(n).map(|i| format::inspect_json(&i)))
        .collect::<Result<Vec<_>, _>>()?;
    println!("{}", serde_json::to_string_pretty(&docs)?);
    Ok(())
}

fn wait(global: &GlobalArgs, args: &NamesArgs) -> Result<(), CliError> {
    // Resolve every name first, then let the engine go: waiting must not hold the root.
    let (runtime, ids) = {
        let c = open(global)?;
        let ids = args
            .containers
            .iter()
            .map(|n| c.find(n).map(|i| i.doc.id))
            .collect::<Result<Vec<_>, _>>()?;
        (c.runtime().clone(), ids)
    };
    for id in ids {
        println!("{}", runtime.load(runtime_id(&id))?.wait()?.code);
    }
    Ok(())
}

fn port(global: &GlobalArgs, args: &PortArgs) -> Result<(), CliError> {
    let info = open(global)?.find(&args.container)?;
    for p in &info.doc.ports {
        let ip = p.host_ip.map_or("0.0.0.0".to_string(), |ip| ip.to_string());
        println!(
            "{}/{} -> {ip}:{}",
            p.container_port, p.protocol, p.host_port
        );
    }
    Ok(())
}
