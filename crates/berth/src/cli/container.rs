//! The single-container commands: `run`, `ps`, `logs`, `stop`, `start`, `kill`, `wait`, `rm`,
//! `inspect`, `exec`, `port` and `network …`. They are clients of the daemon (started when
//! none answers): they translate arguments into `/v1/containers` and `/v1/networks` requests
//! and print the answers as Docker does.

use std::process::ExitCode;

use berth_engine::containers::parse_signal;
use clap::Subcommand;

use super::GlobalArgs;
use super::container_format as format;
use super::container_run::fail;
pub use super::container_run::{ExecArgs, LogsArgs, RunArgs};
use crate::api::containers::{Container, ContainerRef, ExitCode as Exited, Port};
use crate::api::paths;
use crate::client::{Client, ClientError};

/// Errors of the container commands.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// Talking to the daemon failed, or it refused.
    #[error(transparent)]
    Daemon(#[from] ClientError),
    /// The container runtime failed (`exec`, which runs the process itself).
    #[error(transparent)]
    Runtime(#[from] berth_runtime::RuntimeError),
    /// The async runtime could not be built.
    #[error("start the async runtime: {0}")]
    Tokio(#[source] std::io::Error),
    /// A terminal or console socket could not be used.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// The path concerned.
        path: String,
        /// The error.
        #[source]
        source: std::io::Error,
    },
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
    /// 125 for berth's own failures, 126/127 for a command that cannot run (Docker's codes,
    /// as the daemon reports them).
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Daemon(ClientError::Api {
                exit_code: Some(code),
                ..
            }) => *code,
            CliError::Runtime(berth_runtime::RuntimeError::Setup(e)) => e.exit_code(),
            _ => 125,
        }
    }
}

/// Runs a client future on a small single-threaded runtime.
pub fn block_on<T>(
    f: impl std::future::Future<Output = Result<T, CliError>>,
) -> Result<T, CliError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(CliError::Tokio)?
        .block_on(f)
}

/// A client of the daemon of the global options, started when none answers.
pub async fn client(global: &GlobalArgs) -> Result<Client, CliError> {
    Ok(global.endpoint()?.connect().await?)
}

/// The container named `key` (name, id or id prefix).
pub async fn inspect_one(c: &Client, key: &str) -> Result<Container, CliError> {
    Ok(c.get(&paths::fill(paths::CONTAINER, key)).await?)
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
    /// Copy files between a running container and the host (`CONTAINER:PATH` on one side).
    Cp(super::container_copy::CpArgs),
    /// Freeze every process of running containers.
    Pause(NamesArgs),
    /// Thaw paused containers.
    Unpause(NamesArgs),
    /// Stop (when running) and start containers again.
    Restart(StopArgs),
    /// Show a container's processes.
    Top(PortArgs),
    /// Show containers' CPU, memory and pids usage.
    Stats(super::container_stats::StatsArgs),
    /// List the changes of a container's file system against its image (A, C, D).
    Diff(super::container_commit::DiffArgs),
    /// Create a new image from a container's changes.
    Commit(super::container_commit::CommitArgs),
    /// Manage networks.
    Network(super::container_network::NetworkArgs),
}

/// `berth port`, `berth top`.
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

/// `berth stop`, `berth restart`.
#[derive(Debug, clap::Args)]
pub struct StopArgs {
    /// Seconds to wait before killing (default: the container's `--stop-timeout`, else 10).
    #[arg(short = 't', long = "time")]
    time: Option<u64>,
    /// Container names or ids.
    #[arg(required = true)]
    containers: Vec<String>,
}

impl StopArgs {
    /// `?t=N` when a time was given.
    fn query(&self) -> String {
        self.time.map(|t| format!("?t={t}")).unwrap_or_default()
    }
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
        Commands::Stop(a) => each(global, &a.containers, |name| {
            format!("{}{}", paths::fill(paths::CONTAINER_STOP, name), a.query())
        }),
        Commands::Start(a) => each(global, &a.containers, |name| {
            paths::fill(paths::CONTAINER_START, name)
        }),
        Commands::Rm(a) => rm(global, &a),
        Commands::Kill(a) => match parse_signal(&a.signal) {
            Some(_) => each(global, &a.containers, |name| {
                format!(
                    "{}?signal={}",
                    paths::fill(paths::CONTAINER_KILL, name),
                    paths::encode(&a.signal)
                )
            }),
            None => Err(CliError::Usage(format!("invalid signal {:?}", a.signal))),
        },
        Commands::Wait(a) => wait(global, &a),
        Commands::Network(a) => super::container_network::run(global, &a),
        Commands::Port(a) => port(global, &a),
        Commands::Cp(a) => super::container_copy::cp(global, &a),
        Commands::Pause(a) => each(global, &a.containers, |name| {
            paths::fill(paths::CONTAINER_PAUSE, name)
        }),
        Commands::Unpause(a) => each(global, &a.containers, |name| {
            paths::fill(paths::CONTAINER_UNPAUSE, name)
        }),
        Commands::Restart(a) => each(global, &a.containers, |name| {
            format!(
                "{}{}",
                paths::fill(paths::CONTAINER_RESTART, name),
                a.query()
            )
        }),
        Commands::Top(a) => super::container_stats::top(global, &a.container),
        Commands::Stats(a) => super::container_stats::stats(global, &a),
        Commands::Diff(a) => super::container_commit::diff(global, &a),
        Commands::Commit(a) => super::container_commit::commit(global, &a),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(&e),
    }
}

/// Prints each name whose request succeeded (as Docker does); every container is tried, the
/// first error is returned and the others printed.
fn report_each(
    names: &[String],
    mut results: impl FnMut(&str) -> Result<(), CliError>,
) -> Result<(), CliError> {
    let mut first = None;
    for name in names {
        match results(name) {
            Ok(()) => println!("{name}"),
            Err(e) if first.is_none() => first = Some(e),
            Err(e) => eprintln!("berth: {}", super::error_chain(&e)),
        }
    }
    first.map_or(Ok(()), Err)
}

/// `POST`s the path `path_of(name)` for each named container.
fn each(
    global: &GlobalArgs,
    names: &[String],
    path_of: impl Fn(&str) -> String,
) -> Result<(), CliError> {
    block_on(async {
        let c = client(global).await?;
        let mut outcomes = Vec::new();
        for name in names {
            let r: Result<serde_json::Value, _> = c.post(&path_of(name)).await;
            outcomes.push(r.map(drop).map_err(CliError::from));
        }
        let mut outcomes = outcomes.into_iter();
        report_each(names, |_| outcomes.next().unwrap_or(Ok(())))
    })
}

fn rm(global: &GlobalArgs, args: &RmArgs) -> Result<(), CliError> {
    block_on(async {
        let c = client(global).await?;
        let mut outcomes = Vec::new();
        for name in &args.containers {
            let path = format!(
                "{}?force={}",
                paths::fill(paths::CONTAINER, name),
                args.force
            );
            let r: Result<ContainerRef, _> = c.delete(&path).await;
            outcomes.push(r.map(drop).map_err(CliError::from));
        }
        let mut outcomes = outcomes.into_iter();
        report_each(&args.containers, |_| outcomes.next().unwrap_or(Ok(())))
    })
}

fn ps(global: &GlobalArgs, args: &PsArgs) -> Result<(), CliError> {
    let list: Vec<Container> = block_on(async {
        let c = client(global).await?;
        Ok(c.get(&format!("{}?all={}", paths::CONTAINERS, args.all))
            .await?)
    })?;
    if args.quiet {
        for c in &list {
            println!("{}", c.id.get(..12).unwrap_or(&c.id));
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
    let docs = block_on(async {
        let c = client(global).await?;
        let mut docs = Vec::new();
        for name in &args.containers {
            docs.push(format::inspect_json(&inspect_one(&c, name).await?));
        }
        Ok(docs)
    })?;
    println!("{}", serde_json::to_string_pretty(&docs)?);
    Ok(())
}

fn wait(global: &GlobalArgs, args: &NamesArgs) -> Result<(), CliError> {
    block_on(async {
        let c = client(global).await?;
        for name in &args.containers {
            let exited: Exited = c.post(&paths::fill(paths::CONTAINER_WAIT, name)).await?;
            println!("{}", exited.exit_code);
        }
        Ok(())
    })
}

fn port(global: &GlobalArgs, args: &PortArgs) -> Result<(), CliError> {
    let ports: Vec<Port> = block_on(async {
        let c = client(global).await?;
        Ok(c.get(&paths::fill(paths::CONTAINER_PORT, &args.container))
            .await?)
    })?;
    for p in &ports {
        let ip = p.host_ip.as_deref().unwrap_or("0.0.0.0");
        println!(
            "{}/{} -> {ip}:{}",
            p.container_port, p.protocol, p.host_port
        );
    }
    Ok(())
}
