//! `berth run`, `berth logs` and `berth exec`: the commands that stream a container's output.
//!
//! `run` asks the daemon to create and start the container, then (unless `-d`) follows its log
//! through the daemon, forwards the signals it gets (Docker's `--sig-proxy`), waits for the
//! exit code and removes the container for `--rm`. With `-t`, the container's terminal comes
//! straight to this process: it listens on a console socket and the runtime's monitor sends
//! the pseudo-terminal's master end there (runc's `--console-socket` protocol); the daemon
//! only passes the socket's path on. `exec` asks the daemon which container a name means and
//! then runs the process through the runtime's exec helper itself, as `runc exec` does, so a
//! terminal (`-t`) and standard input reach it without a relay through the daemon.

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use berth_engine::containers::RestartPolicy;

use berth_runtime::{ExecRequest, ExecStdio, Runtime, RuntimeConfig};

use super::GlobalArgs;
use super::container::{CliError, block_on, client, inspect_one};
use crate::api::containers::{
    ContainerCreate, ContainerCreated, ContainerRef, ExitCode as Exited, Healthcheck, LogLine,
};
use crate::api::paths;
use crate::client::Client;

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
    #[arg(long, alias = "net", default_value = "bridge")]
    network: String,
    /// A further DNS name of the container on its network.
    #[arg(long = "network-alias", alias = "net-alias")]
    network_alias: Vec<String>,
    /// A fixed IPv4 address on the network.
    #[arg(long)]
    ip: Option<std::net::Ipv4Addr>,
    /// A fixed IPv6 address on the network.
    #[arg(long)]
    ip6: Option<std::net::Ipv6Addr>,
    /// A name server for the container (replaces berth's own and the host's).
    #[arg(long)]
    dns: Vec<std::net::IpAddr>,
    /// A DNS search domain.
    #[arg(long = "dns-search")]
    dns_search: Vec<String>,
    /// A resolver option (`ndots:2`).
    #[arg(long = "dns-option")]
    dns_option: Vec<String>,
    /// An `/etc/hosts` entry `NAME:IP`.
    #[arg(long = "add-host")]
    add_host: Vec<String>,
    /// Restart policy: `no`, `always`, `on-failure[:N]`, `unless-stopped` (applied by the
    /// daemon's supervisor).
    #[arg(long, value_parser = parse_restart)]
    restart: Option<String>,
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
    /// A label `KEY=VALUE`.
    #[arg(short = 'l', long = "label")]
    label: Vec<String>,
    /// Keep standard input open: it becomes the container's (with `-t`, through its
    /// terminal).
    #[arg(short = 'i', long)]
    interactive: bool,
    /// Run the process on a pseudo-terminal connected to this one.
    #[arg(short = 't', long)]
    tty: bool,
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
    /// Image to run.
    image: String,
    /// Command and arguments (replace the image's `Cmd`).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    command: Vec<String>,
}

/// `--restart` values as the engine parses them (checked here for an early, clear error).
fn parse_restart(s: &str) -> Result<String, String> {
    RestartPolicy::parse(s)
        .map(|_| s.to_owned())
        .map_err(|e| e.to_string())
}

/// Go-style durations as Docker takes them: `30s`, `500ms`, `1m30s`, `1h`.
fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s).map_err(|e| format!("invalid duration {s:?}: {e}"))
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

impl RunArgs {
    /// Docker's refusals of flag combinations.
    fn validate(&self) -> Result<(), CliError> {
        let restarts = self
            .restart
            .as_deref()
            .is_some_and(|r| !matches!(r, "no" | "none" | ""));
        if self.rm && restarts {
            return Err(CliError::Usage(
                "conflicting options: --restart and --rm".into(),
            ));
        }
        if self.no_healthcheck && self.healthcheck().is_some() {
            return Err(CliError::Usage(
                "--no-healthcheck conflicts with --health-* options".into(),
            ));
        }
        Ok(())
    }

    /// The health check the flags ask for (`None`: the image's applies). Timing flags without
    /// `--health-cmd` keep the image's test (sent as an empty test).
    fn healthcheck(&self) -> Option<Healthcheck> {
        let timing = self.health_interval.is_some()
            || self.health_timeout.is_some()
            || self.health_retries.is_some()
            || self.health_start_period.is_some()
            || self.health_start_interval.is_some();
        if self.health_cmd.is_none() && !timing {
            return None;
        }
        Some(Healthcheck {
            test: match &self.health_cmd {
                Some(cmd) => vec!["CMD-SHELL".to_owned(), cmd.clone()],
                None => Vec::new(),
            },
            interval: self.health_interval.map(nanos),
            timeout: self.health_timeout.map(nanos),
            retries: self.health_retries,
            start_period: self.health_start_period.map(nanos),
            start_interval: self.health_start_interval.map(nanos),
        })
    }

    /// The request for the daemon. `-e NAME` takes this process's value of `NAME` (and is
    /// left out when unset, as Docker does); the daemon's environment is not the user's.
    fn request(&self) -> ContainerCreate {
        let env = self
            .env
            .iter()
            .filter_map(|e| {
                if e.contains('=') {
                    Some(e.clone())
                } else {
                    std::env::var(e).ok().map(|v| format!("{e}={v}"))
                }
            })
            .collect();
        let labels = self
            .label
            .iter()
            .map(|l| match l.split_once('=') {
                Some((k, v)) => (k.to_owned(), v.to_owned()),
                None => (l.clone(), String::new()),
            })
            .collect();
        ContainerCreate {
            image: self.image.clone(),
            command: self.command.clone(),
            entrypoint: self.entrypoint.clone(),
            env,
            workdir: self.workdir.clone(),
            user: self.user.clone(),
            hostname: self.hostname.clone(),
            name: self.name.clone(),
            volumes: self.volume.clone(),
            publish: self.publish.clone(),
            network: self.network.clone(),
            network_aliases: self.network_alias.clone(),
            ip: self.ip,
            ip6: self.ip6,
            dns: self.dns.clone(),
            dns_search: self.dns_search.clone(),
            dns_options: self.dns_option.clone(),
            extra_hosts: self.add_host.clone(),
            auto_remove: self.rm,
            init: self.init,
            restart: self.restart.clone(),
            memory: self.memory.clone(),
            cpus: self.cpus,
            pids_limit: self.pids_limit,
            read_only: self.read_only,
            cap_add: self.cap_add.clone(),
            cap_drop: self.cap_drop.clone(),
            security_opt: self.security_opt.clone(),
            ulimits: self.ulimit.clone(),
            tmpfs: self.tmpfs.clone(),
            labels,
            tty: false,
            console_socket: None,
            stdin_socket: None,
            healthcheck: self.healthcheck(),
            no_healthcheck: self.no_healthcheck,
            stop_signal: self.stop_signal.clone(),
            stop_timeout: self.stop_timeout,
        }
    }
}

fn print_line(l: &LogLine, timestamps: bool) {
    let text = if timestamps {
        format!("{} {}", l.time, l.log)
    } else {
        l.log.clone()
    };
    // A closed pipe on our side must not stop the container; ignore write errors.
    let _ = if l.stream == "stderr" {
        std::io::stderr().write_all(text.as_bytes())
    } else {
        let mut out = std::io::stdout().lock();
        out.write_all(text.as_bytes()).and_then(|()| out.flush())
    };
}

/// Prints a container's log lines from the daemon (`path` is the logs route with its query)
/// until the stream ends.
async fn print_logs(c: &Client, path: &str, timestamps: bool) -> Result<(), CliError> {
    let mut lines = c.lines(path).await?;
    while let Some(line) = lines.next_line().await? {
        let l: LogLine = serde_json::from_str(&line)
            .map_err(|e| crate::client::ClientError::Decode(format!("log line: {e}")))?;
        print_line(&l, timestamps);
    }
    Ok(())
}

/// Runs `berth run`: exits with the container's code in the foreground; 125 when berth
/// failed, 126/127 when the command cannot be run.
pub fn run(global: &GlobalArgs, args: &RunArgs) -> ExitCode {
    if let Err(e) = args.validate() {
        return fail(&e);
    }
    let result = block_on(async {
        let c = client(global).await?;
        let mut request = args.request();
        if args.tty && args.detach {
            eprintln!(
                "berth: warning: -t with -d: the container gets no terminal, its output is logged"
            );
        }
        let console = if args.tty && !args.detach {
            let console = super::container_tty::Console::listen(&global.run_dir)?;
            request.tty = true;
            request.console_socket = Some(console.path().display().to_string());
            Some(console.accept())
        } else {
            None
        };
        // -i without -t: our standard input becomes the container's (not with -d: the
        // input of a command that returns at once is nobody's).
        let stdin = if args.interactive && !args.tty && !args.detach {
            let socket = super::container_stdin::StdinSocket::listen(&global.run_dir)?;
            request.stdin_socket = Some(socket.path().display().to_string());
            Some(socket.serve())
        } else {
            None
        };
        let created = c
            .post_json::<_, ContainerCreated>(paths::CONTAINERS, &request)
            .await;
        if let Some(task) = stdin {
            task.abort();
        }
        let created = created?;
        for w in &created.warnings {
            eprintln!("berth: warning: {w}");
        }
        if args.detach {
            println!("{}", created.id);
            return Ok(0);
        }
        let code = attach(&c, &created.id, console, args.interactive).await;
        if args.rm {
            let path = format!("{}?force=true", paths::fill(paths::CONTAINER, &created.id));
            if let Err(e) = c.delete::<ContainerRef>(&path).await {
                eprintln!("berth: {}", super::error_chain(&e));
            }
        }
        code
    });
    match result {
        Ok(code) => ExitCode::from(code.clamp(0, 255) as u8),
        Err(e) => fail(&e),
    }
}

/// Shows a started container's output (its log, or its terminal) until it exits, forwarding
/// signals; returns its exit code.
pub(super) async fn attach(
    c: &Client,
    id: &str,
    console: Option<super::container_tty::Accepting>,
    stdin: bool,
) -> Result<i32, CliError> {
    let proxy = proxy_signals(c.clone(), id.to_owned());
    match console {
        Some(accepting) => super::container_tty::Console::relay(accepting, stdin).await?,
        None => {
            let path = format!("{}?follow=true", paths::fill(paths::CONTAINER_LOGS, id));
            print_logs(c, &path, false).await?;
        }
    }
    let exited: Exited = c.post(&paths::fill(paths::CONTAINER_WAIT, id)).await?;
    proxy.abort();
    Ok(exited.exit_code)
}

/// Docker's `--sig-proxy`: signals sent to a foreground `berth run` (Ctrl-C, `kill`) go to the
/// container's process through the daemon, so it decides how to end.
fn proxy_signals(c: Client, id: String) -> tokio::task::JoinHandle<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let kinds = [
        (SignalKind::interrupt(), "INT"),
        (SignalKind::terminate(), "TERM"),
        (SignalKind::hangup(), "HUP"),
        (SignalKind::quit(), "QUIT"),
        (SignalKind::user_defined1(), "USR1"),
        (SignalKind::user_defined2(), "USR2"),
    ];
    // Registered before returning, so no signal that arrives later kills berth itself.
    let streams: Vec<_> = kinds
        .into_iter()
        .filter_map(|(kind, name)| signal(kind).ok().map(|s| (s, name)))
        .collect();
    tokio::spawn(async move {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        for (mut stream, name) in streams {
            let tx = tx.clone();
            tokio::spawn(async move {
                while stream.recv().await.is_some() {
                    if tx.send(name).is_err() {
                        break;
                    }
                }
            });
        }
        while let Some(name) = rx.recv().await {
            let path = format!("{}?signal={name}", paths::fill(paths::CONTAINER_KILL, &id));
            // The container may have exited meanwhile; nothing to forward to then.
            let _ = c.post::<ContainerRef>(&path).await;
        }
    })
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
    /// Only lines since this time (RFC 3339, Unix seconds, or a duration ago: `10m`).
    #[arg(long)]
    since: Option<String>,
    /// Container name or id.
    container: String,
}

/// Runs `berth logs`.
pub fn logs(global: &GlobalArgs, args: &LogsArgs) -> Result<(), CliError> {
    if args.tail != "all" && args.tail.parse::<usize>().is_err() {
        return Err(CliError::Usage(format!(
            "invalid --tail value {:?}",
            args.tail
        )));
    }
    let mut path = format!(
        "{}?follow={}&tail={}",
        paths::fill(paths::CONTAINER_LOGS, &args.container),
        args.follow,
        paths::encode(&args.tail)
    );
    if let Some(since) = &args.since {
        let t = crate::api::time::parse_cli(since, std::time::SystemTime::now())
            .map_err(|e| CliError::Usage(e.to_string()))?;
        let secs = t
            .duration_since(std::time::SystemTime::UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs_f64();
        path.push_str(&format!("&since={secs:.9}"));
    }
    block_on(async {
        let c = client(global).await?;
        print_logs(&c, &path, args.timestamps).await
    })
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

/// What to run with [`exec_in`]: `berth exec`'s and `berth stack exec`'s options.
#[derive(Debug, Clone, Default)]
pub struct ExecProcess {
    /// Allocate a pseudo-terminal.
    pub tty: bool,
    /// Do not wait: the process runs in the background with its streams on `/dev/null`.
    pub detach: bool,
    /// `user[:group]`.
    pub user: Option<String>,
    /// Working directory.
    pub workdir: Option<String>,
    /// `NAME=VALUE` added to the container's environment.
    pub env: Vec<String>,
    /// Command and arguments.
    pub command: Vec<String>,
}

/// Runs `berth exec` and exits with the process's code (126/127 when it cannot run).
pub fn exec(global: &GlobalArgs, args: &ExecArgs) -> ExitCode {
    // Standard input is always passed through; `-i` is accepted for Docker's spelling.
    let _ = args.interactive;
    let process = ExecProcess {
        tty: args.tty,
        detach: false,
        user: args.user.clone(),
        workdir: args.workdir.clone(),
        env: args.env.clone(),
        command: args.command.clone(),
    };
    exec_in(global, &args.container, &process)
}

/// Runs `process` in the running container `key` (name or id) through the runtime's exec
/// helper, with this process's standard streams, and exits with its code (0 once started
/// for `detach`).
pub fn exec_in(global: &GlobalArgs, key: &str, args: &ExecProcess) -> ExitCode {
    let result = (|| -> Result<i32, CliError> {
        let info = block_on(async {
            let c = client(global).await?;
            inspect_one(&c, key).await
        })?;
        if !info.state.running {
            return Err(CliError::NotRunning(info.name));
        }
        let runtime = Runtime::new(RuntimeConfig::new(global.root.join("runtime")));
        let container = runtime.load(berth_engine::containers::runtime_id(&info.id))?;
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
            tty: args.tty && !args.detach,
        };
        if args.detach {
            // The helper outlives us and reaps the process; nothing to wait for here.
            container.exec(&request, ExecStdio::Null)?;
            return Ok(0);
        }
        let handle = container.exec(&request, ExecStdio::Inherit)?;
        Ok(handle.wait()?)
    })();
    match result {
        Ok(code) => ExitCode::from(code.clamp(0, 255) as u8),
        Err(e) => fail(&e),
    }
}
