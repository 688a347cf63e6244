//! `berth daemon`: run the API server in the foreground; `berth daemon stop`.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use super::{GlobalArgs, exit};
use crate::api::{ShutdownAck, paths};
use crate::client::Client;
use crate::daemon::{self, DaemonOptions};

/// Arguments of `berth daemon`.
#[derive(Debug, clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct DaemonArgs {
    #[command(subcommand)]
    action: Option<DaemonAction>,
    /// Start a new session, detached from the terminal (used by the CLI when it
    /// starts a daemon by itself).
    #[arg(long, hide = true)]
    background: bool,
    /// Group (name or gid) given access to the socket [default: root, when possible].
    #[arg(long, value_name = "GROUP")]
    group: Option<String>,
}

#[derive(Debug, clap::Subcommand)]
enum DaemonAction {
    /// Stop the running daemon (as SIGTERM does) and wait until it is gone.
    Stop,
}

/// How long `berth daemon stop` waits for the daemon to go away.
const STOP_TIMEOUT: Duration = Duration::from_secs(15);

/// Runs the daemon until SIGTERM, SIGINT or `POST /v1/shutdown`, or stops it.
pub fn run(global: &GlobalArgs, args: &DaemonArgs) -> ExitCode {
    if let Some(DaemonAction::Stop) = args.action {
        return super::finish(stop(global));
    }
    let socket = match global.endpoint() {
        Ok(e) => e.socket,
        Err(e) => {
            eprintln!("berth daemon: {e}");
            return ExitCode::from(exit::USAGE);
        }
    };
    let opts = DaemonOptions {
        root: global.root.clone(),
        run_dir: global.run_dir.clone(),
        socket,
        background: args.background,
        group: args.group.clone(),
    };
    match daemon::run(opts) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("berth daemon: {}", super::error_chain(&e));
            if e.is_already_running() {
                ExitCode::from(exit::ALREADY_RUNNING)
            } else {
                ExitCode::from(exit::RUNTIME)
            }
        }
    }
}

fn stop(global: &GlobalArgs) -> anyhow::Result<()> {
    let client = Client::new(global.endpoint()?.socket);
    super::block_on(async move {
        match client.probe().await {
            Ok(()) => {}
            Err(e) if e.is_not_running() => {
                eprintln!("no berth daemon is running ({e})");
                return Ok(());
            }
            Err(e) => return Err(e.into()),
        }
        let ack: ShutdownAck = client.post(paths::SHUTDOWN).await?;
        let started = Instant::now();
        loop {
            match client.probe().await {
                Err(e) if e.is_not_running() => break,
                _ if started.elapsed() > STOP_TIMEOUT => {
                    anyhow::bail!(
                        "the berth daemon (pid {}) is still answering after {STOP_TIMEOUT:?}",
                        ack.pid
                    )
                }
                _ => tokio::time::sleep(Duration::from_millis(10)).await,
            }
        }
        println!("stopped berth daemon (pid {})", ack.pid);
        Ok(())
    })
}
