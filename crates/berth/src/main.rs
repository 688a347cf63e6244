//! The `berth` command line: one binary for the CLI, the daemon and the
//! per-container monitor.
#![forbid(unsafe_code)]

mod api;
mod cli;
mod client;
mod daemon;
mod report;

use std::process::ExitCode;

fn main() -> ExitCode {
    cli::main()
}
