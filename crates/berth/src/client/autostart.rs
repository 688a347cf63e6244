//! Starting a daemon when none answers, so a first-time user needs no extra step.

use std::fs::OpenOptions;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::{Client, ClientError};

/// How long the CLI waits for a daemon it started to answer.
const START_TIMEOUT: Duration = Duration::from_secs(15);

/// Size above which `daemon.log` is renamed to `daemon.log.1` before a new daemon starts.
const LOG_ROTATE_BYTES: u64 = 8 * 1024 * 1024;

/// Returns a client of the daemon on `socket`, first starting `berth daemon` in the
/// background (its own session, output to `<root>/daemon.log`, the same root, run
/// dir and socket) when nothing answers there.
pub async fn connect_or_start(
    root: &Path,
    run_dir: &Path,
    socket: &Path,
) -> Result<Client, ClientError> {
    let client = Client::new(socket.to_path_buf());
    match client.probe().await {
        Ok(()) => return Ok(client),
        Err(e) if e.is_not_running() => {}
        Err(e) => return Err(e),
    }
    let log = root.join("daemon.log");
    let mut child = spawn_daemon(root, run_dir, socket, &log)?;
    tracing::debug!(pid = child.id(), "started berth daemon");
    let started = Instant::now();
    let mut child_exited = false;
    loop {
        match client.probe().await {
            Ok(()) => return Ok(client),
            Err(e) if e.is_not_running() => {}
            Err(e) => return Err(e),
        }
        if !child_exited {
            let status = child.try_wait().map_err(|source| ClientError::Spawn {
                op: "wait for",
                path: log.clone(),
                source,
            })?;
            if let Some(status) = status {
                // Another CLI started a daemon at the same moment: ours lost the
                // race for the lock and the other one is about to answer.
                if status.code() != Some(i32::from(crate::cli::exit::ALREADY_RUNNING)) {
                    return Err(ClientError::StartFailed { status, log });
                }
                child_exited = true;
            }
        }
        if started.elapsed() > START_TIMEOUT {
            return Err(ClientError::StartTimeout {
                timeout: START_TIMEOUT,
                log,
            });
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn spawn_daemon(
    root: &Path,
    run_dir: &Path,
    socket: &Path,
    log: &PathBuf,
) -> Result<std::process::Child, ClientError> {
    let spawn_err = |op, path: &Path| {
        let path = path.to_path_buf();
        move |source| ClientError::Spawn { op, path, source }
    };
    std::fs::create_dir_all(root).map_err(spawn_err("create directory", root))?;
    // Keep the log bounded: each new daemon starts a fresh file once it is big.
    if std::fs::metadata(log).is_ok_and(|m| m.len() > LOG_ROTATE_BYTES) {
        let old = log.with_extension("log.1");
        std::fs::rename(log, &old).map_err(spawn_err("rotate log to", &old))?;
    }
    let out = OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .map_err(spawn_err("open log", log))?;
    let err = out.try_clone().map_err(spawn_err("open log", log))?;
    let exe =
        std::env::current_exe().map_err(spawn_err("find own executable", Path::new("berth")))?;
    Command::new(&exe)
        .arg("--root")
        .arg(root)
        .arg("--run-dir")
        .arg(run_dir)
        .arg("--host")
        .arg(format!("unix://{}", socket.display()))
        .args(["daemon", "--background"])
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .map_err(spawn_err("run", &exe))
}
