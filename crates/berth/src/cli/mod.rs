//! Command-line parsing and dispatch. One file per command (or group of commands).

mod build;
mod container;
mod container_commit;
mod container_copy;
mod container_format;
mod container_network;
mod container_run;
mod container_stats;
mod container_stdin;
mod container_tty;
mod daemon;
mod events;
mod runtime;
mod stack;
mod system;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

pub mod config;
mod image;
mod image_format;
mod image_progress;
mod image_registry;
mod pid_socket;
pub mod project;

/// Exit codes shared by every command, documented in the README.
#[allow(dead_code)] // used as commands land
pub mod exit {
    /// The command line itself was wrong (unknown flag, missing argument).
    pub const USAGE: u8 = 2;
    /// A stack file (or other input file) is invalid.
    pub const INVALID_INPUT: u8 = 3;
    /// The command was valid but failed while doing its work.
    pub const RUNTIME: u8 = 1;
    /// `berth daemon`: another daemon already serves this root, run dir or socket.
    pub const ALREADY_RUNNING: u8 = 4;
}

/// berth: a declarative multi-container orchestrator.
#[derive(Debug, Parser)]
#[command(name = "berth", version, about, propagate_version = true)]
pub struct Cli {
    #[command(flatten)]
    global: GlobalArgs,
    #[command(flatten)]
    project: project::ProjectArgs,
    #[command(subcommand)]
    command: Command,
}

/// Options every command accepts, before or after its name.
#[derive(Debug, Clone, clap::Args)]
pub struct GlobalArgs {
    /// Directory where berth keeps its state (images, containers, networks, volumes).
    #[arg(
        long,
        global = true,
        env = "BERTH_ROOT",
        default_value = "/var/lib/berth"
    )]
    pub root: std::path::PathBuf,
    /// Directory for run-time files (daemon socket, pid files); cleared by a reboot.
    #[arg(
        long,
        global = true,
        env = "BERTH_RUN_DIR",
        default_value = "/run/berth"
    )]
    pub run_dir: std::path::PathBuf,
    /// The daemon's socket, `unix:///path` [default: <run-dir>/berth.sock].
    #[arg(long, global = true, env = "BERTH_HOST")]
    pub host: Option<String>,
}

impl GlobalArgs {
    /// The daemon these options name (started on first use if none answers).
    pub fn endpoint(&self) -> Result<crate::client::Endpoint, crate::client::ClientError> {
        crate::client::Endpoint::new(&self.root, &self.run_dir, self.host.as_deref())
    }
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Build an image from a Dockerfile.
    Build(build::BuildArgs),
    /// Manage the build cache.
    Builder(build::BuilderArgs),
    /// Run the berth daemon (the CLI starts one by itself when needed).
    Daemon(daemon::DaemonArgs),
    /// Stream events (container, network, volume, image, stack, daemon).
    Events(events::EventsArgs),
    /// Show the client's and the daemon's versions.
    Version(system::VersionArgs),
    /// Show the daemon's paths, pid, uptime and object counts.
    Info(system::InfoArgs),
    /// Validate the stack files and print the canonical model.
    Config(config::ConfigArgs),
    /// The container runtime core behind runc's command line (create, start, state, kill,
    /// delete, run, exec).
    Runtime(runtime::RuntimeArgs),
    /// Internal: the runtime's per-container monitor and exec helper.
    #[command(name = "runtime-helper", hide = true)]
    RuntimeHelper(runtime::HelperArgs),
    /// Create and start the stack's containers, networks and volumes (`berth stack up`).
    Up(Box<stack::UpArgs>),
    /// Stop and remove the stack's containers and networks (`berth stack down`).
    Down(stack::DownArgs),
    /// List stacks (`berth stack ls`).
    Ls(stack::LsArgs),
    /// Watch the stack's develop.watch rules (`berth stack watch`).
    Watch(stack::WatchArgs),
    /// Stack commands: up, down, ps, ls, logs, start, stop, restart, kill, rm, pause,
    /// unpause, port, images, watch, exec, run, cp, top, wait, events, scale, pull, push.
    #[command(alias = "compose")]
    Stack(stack::StackArgs),
    #[command(flatten)]
    Image(image::Commands),
    #[command(flatten)]
    Container(container::Commands),
}

/// Runs a client command's future on a small single-threaded runtime.
fn block_on<T>(f: impl std::future::Future<Output = anyhow::Result<T>>) -> anyhow::Result<T> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(f)
}

use berth_engine::error_chain;

/// Maps a command's outcome to an exit code, printing a failure: stack-file diagnostics
/// with a source snippet (exit 3), anything else as an error chain (exit 1).
fn finish(result: anyhow::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            if let Some(d) = e.downcast_ref::<berth_compose::Diagnostics>() {
                crate::report::print_diagnostics(d);
                return ExitCode::from(exit::INVALID_INPUT);
            }
            eprintln!("berth: {}", error_chain(e.as_ref()));
            ExitCode::from(exit::RUNTIME)
        }
    }
}

/// Parses the command line, runs the command and maps its outcome to an exit code.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(exit::USAGE)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    let Cli {
        global,
        project,
        command,
    } = cli;
    let global = &global;
    match command {
        Command::Build(args) => build::run(global, &args),
        Command::Builder(args) => finish(build::builder(global, &args)),
        Command::Daemon(args) => daemon::run(global, &args),
        Command::Events(args) => finish(events::run(global, &args)),
        Command::Version(args) => finish(system::version(global, &args)),
        Command::Info(args) => finish(system::info(global, &args)),
        Command::Config(args) => finish(config::run(&project, &args)),
        Command::Runtime(args) => runtime::run(global, &args),
        Command::RuntimeHelper(args) => runtime::helper(&args),
        Command::Up(args) => finish(stack::up::up(global, &project, &args)),
        Command::Down(args) => finish(stack::up::down(global, &project, &args)),
        Command::Ls(args) => finish(stack::ps::ls(global, &args)),
        Command::Watch(args) => finish(stack::watch::watch(global, &project, &args)),
        Command::Stack(args) => stack::run(global, &project, args),
        Command::Image(c) => image::run(global, c),
        Command::Container(c) => container::run(global, c),
    }
}
