//! Reaching the daemon a command names, starting one when none answers, so a
//! first-time user needs no extra step.

use std::fs::OpenOptions;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;

use super::{Client, ClientError, Lines};

/// How long the CLI waits for a daemon it started to answer.
const START_TIMEOUT: Duration = Duration::from_secs(15);

/// Size above which `daemon.log` is renamed to `daemon.log.1` before a new daemon starts.
const LOG_ROTATE_BYTES: u64 = 8 * 1024 * 1024;

/// How often, and how far apart, a read-only request is retried when a daemon
/// closed the connection without answering.
const NO_ANSWER_RETRIES: u32 = 20;
const NO_ANSWER_PAUSE: Duration = Duration::from_millis(25);

/// The daemon of one root, run dir and socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// The state root the daemon serves.
    pub root: PathBuf,
    /// Its run-time directory.
    pub run_dir: PathBuf,
    /// Its socket.
    pub socket: PathBuf,
}

impl Endpoint {
    /// The daemon for `--root`, `--run-dir` and `--host` (see [`super::socket_path`]).
    pub fn new(root: &Path, run_dir: &Path, host: Option<&str>) -> Result<Endpoint, ClientError> {
        Ok(Endpoint {
            root: root.to_path_buf(),
            run_dir: run_dir.to_path_buf(),
            socket: super::socket_path(host, run_dir)?,
        })
    }

    /// A client of the daemon, started first if none answers.
    pub async fn connect(&self) -> Result<Client, ClientError> {
        connect_or_start(&self.root, &self.run_dir, &self.socket).await
    }

    /// `GET path`, decoding JSON. A daemon killed a moment ago can still accept
    /// connections while its threads exit; a request it drops unanswered is
    /// retried (it only reads), reaching the next daemon.
    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        let mut retries = 0;
        loop {
            match self.connect().await?.get(path).await {
                Err(ClientError::NoAnswer { .. }) if retries < NO_ANSWER_RETRIES => {
                    retries += 1;
                    tokio::time::sleep(NO_ANSWER_PAUSE).await;
                }
                result => return result,
            }
        }
    }

    /// Like [`Endpoint::get`], for a streaming route read line by line.
    pub async fn lines(&self, path: &str) -> Result<Lines, ClientError> {
        let mut retries = 0;
        loop {
            match self.connect().await?.lines(path).await {
                Err(ClientError::NoAnswer { .. }) if retries < NO_ANSWER_RETRIES => {
                    retries += 1;
                    tokio::time::sleep(NO_ANSWER_PAUSE).await;
                }
                result => return result,
            }
        }
    }
}

/// Returns a client of the daemon on `socket`, first starting `berth daemon` in the
/// background (its own session, output to `<root>/daemon.log`, the same root, run
/// dir and socket) when nothing answers there.
async fn connect_or_start(
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
