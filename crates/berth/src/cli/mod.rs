//! Command-line parsing and dispatch. One file per command (or group of commands).

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Exit codes shared by every command, documented in the README.
#[allow(dead_code)] // used as commands land
pub mod exit {
    /// The command line itself was wrong (unknown flag, missing argument).
    pub const USAGE: u8 = 2;
    /// A stack file (or other input file) is invalid.
    pub const INVALID_INPUT: u8 = 3;
    /// The command was valid but failed while doing its work.
    pub const RUNTIME: u8 = 1;
}

/// berth: a declarative multi-container orchestrator.
#[derive(Debug, Parser)]
#[command(name = "berth", version, about, propagate_version = true)]
pub struct Cli {
    #[command(flatten)]
    global: GlobalArgs,
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
}

#[derive(Debug, Subcommand)]
enum Command {}

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
    match cli.command {}
}
