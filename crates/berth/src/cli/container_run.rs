//! `berth run`, `berth logs` and `berth exec`: the commands that stream a container's output.
//! The engine is released (its root lock dropped) before waiting, so other commands on the
//! same root work meanwhile.

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use berth_engine::containers::limits::Limits;
use berth_engine::containers::logs::{self, LogReader};
use berth_engine::containers::{
    Containers, HealthCheck, NetworkMode, RestartPolicy, RunOptions, runtime_id,
};
use berth_runtime::logs::{LogEntry, Stream};
use berth_runtime::{ExecRequest, ExecStdio, RuntimeError, Status};

use super::GlobalArgs;
use super::container::{CliError, open};

/// `berth run`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// Run in the background and print the container's id.
    #[arg(short = 'd', long)]
    detach: bool,
    /// Remove the container when it exits.
    #[arg(long)]
    rm: bool,
    /// Name of the container.
    #[arg(long)]
    name: Option<String>,
    /// Set an environment variable (`NAME=VALUE`, or `NAME` to pass the caller's value).
    #[arg(short = 'e', long = "env")]
    env: Vec<String>,
    /// Working directory inside the container.
    #[arg(short = 'w', long = "workdir")]
    workdir: Option<String>,
    /// `user[:group]` (name or number) to run as.
    #[arg(short = 'u', long)]
    user: Option<String>,
    /// Replace the image's entrypoint (`""` clears it).
    #[arg(long)]
    entrypoint: Option<String>,
    /// Host name of the container.
    #[arg(long)]
    hostname: Option<String>,
    /// Bind mount `/host/path:/container/path[:ro]`.
    #[arg(short = 'v', long = "volume")]
    volume: Vec<String>,
    /// Publish `[HOST_IP:][HOST_PORT:]CONTAINER_PORT[/PROTO]`.
    #[arg(short = 'p', long = "publish")]
    publish: Vec<String>,
    /// Network: `bridge` (default), `none`, `host` or a network's name.
    #[arg(long, default_value = "bridge")]
    network: String,
    /// Run a tiny init as PID 1 that reaps zombies and forwards signals.
    #[arg(long)]
    init: bool,
    /// Memory limit (`64m`, `1g`).
    #[arg(short = 'm', long)]
    memory: Option<String>,
    /// CPU limit in CPUs (`0.5`).
    #[arg(long)]
    cpus: Option<f64>,
    /// Maximum number of processes.
    #[arg(long)]
    pids_limit: Option<i64>,
    /// Mount the root file system read-only.
    #[arg(long)]
    read_only: bool,
    /// Add a capability (`NET_ADMIN`, `ALL`).
    #[arg(long)]
    cap_add: Vec<String>,
    /// Drop a capability (`CHOWN`, `ALL`).
    #[arg(long)]
    cap_drop: Vec<String>,
    /// `no-new-privileges` or `seccomp=unconfined`.
    #[arg(long)]
    security_opt: Vec<String>,
    /// Resource limit `NAME=SOFT[:HARD]` (e.g. `nofile=1024:2048`).
    #[arg(long)]
    ulimit: Vec<String>,
    /// Mount a tmpfs at `/path[:options]`.
    #[arg(long)]
    tmpfs: Vec<String>,
    /// Restart policy: `no`, `always`, `unless-stopped`, `on-failure[:N]` (applied by the
    /// daemon's supervisor).
    #[arg(long, default_value = "no", value_parser = parse_restart)]
    restart: RestartPolicy,
    /// Command to run to check health (through `/bin/sh -c`).
    #[arg(long)]
    health_cmd: Option<String>,
    /// Time between health checks (`30s`, `500ms`, `1m30s`).
    #[arg(long, value_parser = parse_duration)]
    health_interval: Option<Duration>,
    /// Time a health check may take.
    #[arg(long, value_parser = parse_duration)]
    health_timeout: Option<Duration>,
    /// Consecutive failures that make the container unhealthy.
    #[arg(long)]
    health_retries: Option<u32>,
    /// Time after start during which failures do not count.
    #[arg(long, value_parser = parse_duration)]
    health_start_period: Option<Duration>,
    /// Time between health checks during the start period.
    #[arg(long, value_parser = parse_duration)]
    health_start_interval: Option<Duration>,
    /// Disable any health check, the image's included.
    #[arg(long)]
    no_healthcheck: bool,
    /// Signal that stops the container (default: the image's, else `SIGTERM`).
    #[arg(long)]
    stop_signal: Option<String>,
    /// Seconds `stop` waits before killing the container (default 10).
    #[arg(long)]
    stop_timeout: Option<u64>,
    /// Image to run.
    image: String,
    /// Command and arguments (replace the image's `Cmd`).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    command: Vec<String>,
}

fn parse_restart(s: &str) -> Result<RestartPolicy, String> {
    RestartPolicy::parse(s).map_err(|e| e.to_string())
}

/// Go-style durations as Docker takes them: `30s`, `500ms`, `1m30s`, `1h`.
fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s).map_err(|e| format!("invalid duration {s:?}: {e}"))
}

impl RunArgs {
    /// The health check the flags ask for: `None` when they ask for none (the image's then
    /// applies). Timing flags without `--health-cmd` keep the image's test (an empty test
    /// here, filled in from the image by the engine).
    fn healthcheck(&self) -> Result<Option<HealthCheck>, CliError> {
        let timing = self.health_interval.is_some()
            || self.health_timeout.is_some()
            || self.health_retries.is_some()
            || self.health_start_period.is_some()
            || self.health_start_interval.is_some();
        if self.no_healthcheck {
            if timing || self.health_cmd.is_some() {
                return Err(CliError::Usage(
                    "--no-healthcheck conflicts with --health-* options".into(),
                ));
            }
            return Ok(None);
        }
        if self.health_cmd.is_none() && !timing {
            return Ok(None);
        }
        let test = match &self.health_cmd {
            Some(cmd) => vec!["CMD-SHELL".to_owned(), cmd.clone()],
            None => Vec::new(),
        };
        let mut check = HealthCheck::new(test);
        if let Some(d) = self.health_interval {
            check.interval = d;
        }
        if let Some(d) = self.health_timeout {
            check.timeout = d;
        }
        if let Some(n) = self.health_retries {
            check.retries = n;
        }
        if let Some(d) = self.health_start_period {
            check.start_period = d;
        }
        if let Some(d) = self.health_start_interval {
            check.start_interval = d;
        }
        Ok(Some(check))
    }

    fn options(&self) -> Result<RunOptions, CliError> {
        if self.rm && self.restart != RestartPolicy::No {
            return Err(CliError::Usage(
                "conflicting options: --restart and --rm".into(),
            ));
        }
        Ok(RunOptions {
            image: self.image.clone(),
            command: self.command.clone(),
            entrypoint: self.entrypoint.clone(),
            env: self.env.clone(),
            workdir: self.workdir.clone(),
            user: self.user.clone(),
            hostname: self.hostname.clone(),
            name: self.name.clone(),
            volumes: self.volume.clone(),
            publish: self.publish.clone(),
            network: NetworkMode::parse(&self.network),
            auto_remove: self.rm,
            init: self.init,
            limits: Limits {
                memory: self.memory.clone(),
                cpus: self.cpus,
                pids_limit: self.pids_limit,
                read_only: self.read_only,
                cap_add: self.cap_add.clone(),
                cap_drop: self.cap_drop.clone(),
                security_opt: self.security_opt.clone(),
                ulimits: self.ulimit.clone(),
                tmpfs: self.tmpfs.clone(),
            },
            restart: self.restart,
            healthcheck: self.healthcheck()?,
            no_healthcheck: self.no_healthcheck,
            stop_signal: self.stop_signal.clone(),
            stop_timeout: self.stop_timeout,
            ..RunOptions::default()
        })
    }
}

fn print_entry(e: &LogEntry, timestamps: bool) {
    let text = if timestamps {
        format!("{} {}", e.time, e.log)
    } else {
        e.log.clone()
    };
    // A closed pipe on our side must not stop the container; ignore write errors.
    let _ = match e.stream {
        Stream::Stdout => {
            let mut out = std::io::stdout().lock();
            out.write_all(text.as_bytes()).and_then(|()| out.flush())
        }
        Stream::Stderr => std::io::stderr().write_all(text.as_bytes()),
    };
}

/// Runs `berth run`: exits with the container's code in the foreground; 125 when berth
/// failed, 126/127 when the command cannot be run.
pub fn run(global: &GlobalArgs, args: &RunArgs) -> ExitCode {
    let opts = match args.options() {
        Ok(o) => o,
        Err(e) => return fail(&e),
    };
    let started = open(global).and_then(|c| {
        let created = block_on_c(c.run(&opts))?;
        Ok((c.runtime().clone(), created))
    });
    let (runtime, created) = match started {
        Ok(x) => x,
        Err(e) => return fail(&e),
    };
    for w in &created.warnings {
        eprintln!("berth: warning: {w}");
    }
    if args.detach {
        println!("{}", created.id);
        return ExitCode::SUCCESS;
    }
    let result = (|| -> Result<i32, CliError> {
        let container = runtime.load(runtime_id(&created.id))?;
        proxy_signals(container.clone());
        let log = open(global)?.find(&created.id)?.doc.log_path;
        let mut reader = LogReader::new(&log);
        reader.follow(
            || {
                container
                    .state()
                    .map(|s| s.status == Status::Stopped)
                    .unwrap_or(true)
            },
            |e| print_entry(e, false),
        )?;
        Ok(container.wait()?.code)
    })();
    let code = match result {
        Ok(code) => code,
        Err(e) => return fail(&e),
    };
    let cleanup = open(global).and_then(|c| {
        if args.rm {
            block_on_c(c.remove(&created.id, true)).map(|_| ())
        } else {
            let doc = c.find(&created.id)?.doc;
            block_on_c(c.release_network(&doc))
        }
    });
    if let Err(e) = cleanup {
        eprintln!("berth: {}", super::error_chain(&e));
    }
    ExitCode::from(code.clamp(0, 255) as u8)
}

/// Docker's `--sig-proxy`: signals sent to a foreground `berth run` (Ctrl-C, `kill`) go to the
/// container's process, so it decides how to end. Runs on its own thread until berth exits.
fn proxy_signals(container: berth_runtime::Container) {
    use tokio::signal::unix::{SignalKind, signal};
    let kinds = [
        (SignalKind::interrupt(), berth_runtime::Signal::SIGINT),
        (SignalKind::terminate(), berth_runtime::Signal::SIGTERM),
        (SignalKind::hangup(), berth_runtime::Signal::SIGHUP),
        (SignalKind::quit(), berth_runtime::Signal::SIGQUIT),
        (SignalKind::user_defined1(), berth_runtime::Signal::SIGUSR1),
        (SignalKind::user_defined2(), berth_runtime::Signal::SIGUSR2),
    ];
    let Ok(rt) = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    else {
        return;
    };
    // Register before returning, so no signal that arrives later kills berth itself.
    let streams: Vec<_> = rt.block_on(async {
        kinds
            .into_iter()
            .filter_map(|(kind, sig)| signal(kind).ok().map(|s| (s, sig)))
            .collect()
    });
    std::thread::spawn(move || {
        rt.block_on(async move {
            let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
            for (mut stream, sig) in streams {
                let tx = tx.clone();
                tokio::spawn(async move {
                    while stream.recv().await.is_some() {
                        if tx.send(sig).is_err() {
                            break;
                        }
                    }
                });
            }
            while let Some(sig) = rx.recv().await {
                // The container may have exited meanwhile; nothing to forward to then.
                let _ = container.kill(sig);
            }
        })
    });
}

/// Runs an engine future on a small single-threaded runtime.
pub(super) fn block_on_c<T>(
    f: impl std::future::Future<Output = Result<T, berth_engine::containers::ContainersError>>,
) -> Result<T, CliError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(CliError::Tokio)?;
    Ok(rt.block_on(f)?)
}

pub(super) fn fail(e: &CliError) -> ExitCode {
    eprintln!("berth: {}", super::error_chain(e));
    ExitCode::from(e.exit_code())
}

/// `berth logs`.
#[derive(Debug, clap::Args)]
pub struct LogsArgs {
    /// Keep printing new output until the container exits.
    #[arg(short = 'f', long)]
    follow: bool,
    /// Show only the last N lines (`all` for everything).
    #[arg(short = 'n', long, default_value = "all")]
    tail: String,
    /// Prefix each line with its time (RFC 3339).
    #[arg(short = 't', long)]
    timestamps: bool,
    /// Container name or id.
    container: String,
}

/// Runs `berth logs`.
pub fn logs(global: &GlobalArgs, args: &LogsArgs) -> Result<(), CliError> {
    let tail = match args.tail.as_str() {
        "all" => None,
        n => Some(
            n.parse::<usize>()
                .map_err(|_| CliError::Usage(format!("invalid --tail value {n:?}")))?,
        ),
    };
    let (runtime, doc) = {
        let c: Containers = open(global)?;
        (c.runtime().clone(), c.find(&args.container)?.doc)
    };
    let mut reader = LogReader::new(&doc.log_path);
    for e in logs::tail(reader.read_new()?, tail) {
        print_entry(&e, args.timestamps);
    }
    if args.follow {
        let container = runtime.load(runtime_id(&doc.id))?;
        reader.follow(
            || {
                container
                    .state()
                    .map(|s| s.status != Status::Running && s.status != Status::Paused)
                    .unwrap_or(true)
            },
            |e| print_entry(e, args.timestamps),
        )?;
    }
    Ok(())
}

/// `berth exec`.
#[derive(Debug, clap::Args)]
pub struct ExecArgs {
    /// Keep standard input open (it is always passed through).
    #[arg(short = 'i', long)]
    interactive: bool,
    /// Allocate a pseudo-terminal.
    #[arg(short = 't', long)]
    tty: bool,
    /// `user[:group]` to run as.
    #[arg(short = 'u', long)]
    user: Option<String>,
    /// Working directory inside the container.
    #[arg(short = 'w', long = "workdir")]
    workdir: Option<String>,
    /// Set an environment variable `NAME=VALUE`.
    #[arg(short = 'e', long = "env")]
    env: Vec<String>,
    /// Container name or id.
    container: String,
    /// Command and arguments.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, required = true)]
    command: Vec<String>,
}

/// Runs `berth exec` and exits with the process's code (126/127 when it cannot run).
pub fn exec(global: &GlobalArgs, args: &ExecArgs) -> ExitCode {
    let result = (|| -> Result<i32, CliError> {
        let (runtime, info) = {
            let c = open(global)?;
            (c.runtime().clone(), c.find(&args.container)?)
        };
        if !info.is_running() {
            return Err(CliError::NotRunning(info.doc.name));
        }
        let container = runtime.load(runtime_id(&info.doc.id))?;
        let argv: Vec<&str> = args.command.iter().map(String::as_str).collect();
        let mut process = container.process(&argv)?;
        if let Some(w) = &args.workdir {
            process.set_cwd(w.into());
        }
        if !args.env.is_empty() {
            let mut env = process.env().clone().unwrap_or_default();
            for kv in &args.env {
                let key = kv.split_once('=').map_or(kv.as_str(), |(k, _)| k);
                env.retain(|e| e.split_once('=').map_or(e.as_str(), |(k, _)| k) != key);
                env.push(kv.clone());
            }
            process.set_env(Some(env));
        }
        let request = ExecRequest {
            process,
            user: args.user.clone(),
            tty: args.tty,
        };
        let _ = args.interactive;
        let handle = container.exec(&request, ExecStdio::Inherit)?;
        Ok(handle.wait()?)
    })();
    match result {
        Ok(code) => ExitCode::from(code.clamp(0, 255) as u8),
        Err(e) => fail(&e),
    }
}

impl From<RuntimeError> for CliError {
    fn from(e: RuntimeError) -> Self {
        CliError::Containers(e.into())
    }
}
