//! `berth runtime …`: berth's container runtime core behind runc's command line, so tools
//! that drive an OCI runtime (`create --bundle`, `start`, `state`, `kill`, `delete`) can
//! drive berth's instead; plus the hidden `runtime-helper` entry the core re-executes for
//! its per-container monitor and for `exec`.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use berth_runtime::oci_spec::runtime::Spec;
use berth_runtime::{
    Container, ContainerRequest, ExecRequest, ExecStdio, Rootfs, Runtime, RuntimeConfig,
    RuntimeError, Signal, Stdio,
};

use super::GlobalArgs;

/// Options of `berth runtime`.
#[derive(Debug, clap::Args)]
pub struct RuntimeArgs {
    /// runc's log file option: accepted for compatibility, berth's runtime logs nothing.
    #[arg(long, hide = true)]
    log: Option<PathBuf>,
    /// runc's log format option: accepted and ignored.
    #[arg(long, hide = true)]
    log_format: Option<String>,
    /// runc's systemd cgroup driver switch: accepted and ignored (cgroupfs is used).
    #[arg(long, hide = true)]
    systemd_cgroup: bool,
    /// runc's debug switch: accepted and ignored.
    #[arg(long, hide = true)]
    debug: bool,
    #[command(subcommand)]
    command: RuntimeCommand,
}

#[derive(Debug, clap::Subcommand)]
enum RuntimeCommand {
    /// Create a container from an OCI bundle; it waits for `start`.
    Create(CreateArgs),
    /// Start a created container.
    Start {
        /// Container id.
        id: String,
    },
    /// Print the state of a container (OCI runtime spec JSON).
    State {
        /// Container id.
        id: String,
    },
    /// Send a signal to a container (default SIGTERM).
    Kill {
        /// Send it to every process of the container.
        #[arg(short, long)]
        all: bool,
        /// Container id.
        id: String,
        /// Signal name (TERM, SIGKILL) or number.
        #[arg(default_value = "TERM")]
        signal: String,
    },
    /// Delete a stopped container (or any, with --force).
    Delete {
        /// Kill it first if it is still running.
        #[arg(short, long)]
        force: bool,
        /// Container id.
        id: String,
    },
    /// Create, start and wait for a container, then delete it; exits with its code.
    Run(RunArgs),
    /// Run a process in a running container.
    Exec(ExecArgs),
    /// Freeze a running container.
    Pause {
        /// Container id.
        id: String,
    },
    /// Thaw a paused container.
    Resume {
        /// Container id.
        id: String,
    },
    /// List containers.
    List,
    /// Write a default `config.json` (Docker's defaults) into a bundle directory.
    Spec {
        /// The bundle directory.
        #[arg(short, long, default_value = ".")]
        bundle: PathBuf,
    },
}

#[derive(Debug, clap::Args)]
struct CreateArgs {
    /// Bundle directory holding `config.json` and the root filesystem.
    #[arg(short, long, default_value = ".")]
    bundle: PathBuf,
    /// Write the container's pid to this file.
    #[arg(long)]
    pid_file: Option<PathBuf>,
    /// Unix socket that receives the terminal's master end (when `process.terminal`).
    #[arg(long)]
    console_socket: Option<PathBuf>,
    /// runc compatibility: accepted and ignored.
    #[arg(long, hide = true)]
    no_pivot: bool,
    /// runc compatibility: accepted and ignored.
    #[arg(long, hide = true)]
    no_new_keyring: bool,
    /// Container id.
    id: String,
}

#[derive(Debug, clap::Args)]
struct RunArgs {
    #[command(flatten)]
    create: CreateArgs,
    /// Start it and return at once instead of waiting.
    #[arg(short, long)]
    detach: bool,
}

#[derive(Debug, clap::Args)]
struct ExecArgs {
    /// A JSON file with the OCI `process` to run (instead of ARGS).
    #[arg(short, long)]
    process: Option<PathBuf>,
    /// Allocate a terminal.
    #[arg(short, long)]
    tty: bool,
    /// `user[:group]`, names or numbers.
    #[arg(short, long)]
    user: Option<String>,
    /// Working directory.
    #[arg(long)]
    cwd: Option<PathBuf>,
    /// Extra environment variables (`KEY=VALUE`).
    #[arg(short, long)]
    env: Vec<String>,
    /// Return once started instead of waiting.
    #[arg(short, long)]
    detach: bool,
    /// Write the process's pid to this file.
    #[arg(long)]
    pid_file: Option<PathBuf>,
    /// Container id.
    id: String,
    /// Command and arguments.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    args: Vec<String>,
}

/// Arguments of the hidden `runtime-helper` entry (the runtime's own re-execution).
#[derive(Debug, clap::Args)]
pub struct HelperArgs {
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    args: Vec<OsString>,
}

/// Errors of the OCI-runtime commands.
#[derive(Debug, thiserror::Error)]
enum CliError {
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    #[error("read {path}")]
    ReadConfig {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("parse {path}")]
    ParseConfig {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("write {path}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("unknown signal {0:?}")]
    Signal(String),
    #[error("process.terminal is set: pass --console-socket")]
    NeedConsoleSocket,
    #[error("exec needs a command or --process")]
    NoCommand,
}

impl CliError {
    /// Docker's convention: 125 for the runtime's own failure, 126/127 for a command that
    /// cannot be run.
    fn exit_code(&self) -> u8 {
        match self {
            Self::Runtime(RuntimeError::Setup(e)) => e.exit_code(),
            _ => 125,
        }
    }
}

/// Runs the hidden helper (monitor or exec).
pub fn helper(args: &HelperArgs) -> ExitCode {
    berth_runtime::helper::main(args.args.clone())
}

/// Runs `berth runtime …`.
pub fn run(global: &GlobalArgs, args: &RuntimeArgs) -> ExitCode {
    let rt = Runtime::new(RuntimeConfig::new(global.root.join("containers")));
    match dispatch(&rt, &args.command) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("berth runtime: {}", super::error_chain(&e));
            ExitCode::from(e.exit_code())
        }
    }
}

fn dispatch(rt: &Runtime, cmd: &RuntimeCommand) -> Result<ExitCode, CliError> {
    match cmd {
        RuntimeCommand::Create(a) => {
            create(rt, a)?;
            Ok(ExitCode::SUCCESS)
        }
        RuntimeCommand::Start { id } => {
            rt.load(id)?.start()?;
            Ok(ExitCode::SUCCESS)
        }
        RuntimeCommand::State { id } => {
            let s = rt.load(id)?.state()?;
            let json = serde_json::json!({
                "ociVersion": "1.2.0",
                "id": s.id,
                "status": s.status.as_str(),
                "pid": s.pid.unwrap_or(0),
                "bundle": s.bundle.unwrap_or_default(),
                "created": s.created_at,
                "annotations": {},
            });
            println!("{json:#}");
            Ok(ExitCode::SUCCESS)
        }
        RuntimeCommand::Kill { all, id, signal } => {
            let c = rt.load(id)?;
            let sig = parse_signal(signal)?;
            if *all {
                c.kill_all(sig)?;
            } else {
                c.kill(sig)?;
            }
            Ok(ExitCode::SUCCESS)
        }
        RuntimeCommand::Delete { force, id } => {
            rt.load(id)?.delete(*force)?;
            Ok(ExitCode::SUCCESS)
        }
        RuntimeCommand::Run(a) => {
            let c = create(rt, &a.create)?;
            c.start()?;
            if a.detach {
                return Ok(ExitCode::SUCCESS);
            }
            let status = c.wait()?;
            c.delete(false)?;
            Ok(ExitCode::from(status.code.clamp(0, 255) as u8))
        }
        RuntimeCommand::Exec(a) => exec(rt, a),
        RuntimeCommand::Pause { id } => {
            rt.load(id)?.pause()?;
            Ok(ExitCode::SUCCESS)
        }
        RuntimeCommand::Resume { id } => {
            rt.load(id)?.resume()?;
            Ok(ExitCode::SUCCESS)
        }
        RuntimeCommand::List => {
            println!("{:<24} {:<8} {:<8} CREATED", "ID", "PID", "STATUS");
            for s in rt.list()? {
                let pid = s.pid.map(|p| p.to_string()).unwrap_or_default();
                println!(
                    "{:<24} {pid:<8} {:<8} {}",
                    s.id,
                    s.status.as_str(),
                    s.created_at
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        RuntimeCommand::Spec { bundle } => {
            let path = bundle.join("config.json");
            let spec = berth_runtime::spec::default_spec(&["sh"]);
            let text = serde_json::to_string_pretty(&spec).map_err(|e| CliError::ParseConfig {
                path: path.clone(),
                source: e,
            })?;
            std::fs::write(&path, text).map_err(|source| CliError::Write { path, source })?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn load_spec(bundle: &Path) -> Result<Spec, CliError> {
    let path = bundle.join("config.json");
    let text = std::fs::read(&path).map_err(|source| CliError::ReadConfig {
        path: path.clone(),
        source,
    })?;
    serde_json::from_slice(&text).map_err(|source| CliError::ParseConfig { path, source })
}

fn create(rt: &Runtime, a: &CreateArgs) -> Result<Container, CliError> {
    let bundle = std::path::absolute(&a.bundle).map_err(|source| CliError::ReadConfig {
        path: a.bundle.clone(),
        source,
    })?;
    let spec = load_spec(&bundle)?;
    let root = spec
        .root()
        .as_ref()
        .map(|r| r.path().clone())
        .unwrap_or_else(|| "rootfs".into());
    let terminal = spec
        .process()
        .as_ref()
        .and_then(|p| p.terminal())
        .unwrap_or(false);
    let stdio = match (terminal, &a.console_socket) {
        (true, Some(sock)) => Stdio::Tty {
            console_socket: sock.clone(),
        },
        (true, None) => return Err(CliError::NeedConsoleSocket),
        (false, _) => Stdio::Inherit,
    };
    let req = ContainerRequest {
        id: a.id.clone(),
        spec,
        rootfs: Rootfs::Path(bundle.join(root)),
        stdio,
        netns: None,
        user: None,
        init: false,
    };
    let c = rt.create_with_bundle(req, Some(bundle))?;
    for w in c.warnings() {
        eprintln!("berth runtime: warning: {w}");
    }
    if let Some(pid_file) = &a.pid_file {
        let pid = c.state()?.pid.unwrap_or(0);
        write_pid(pid_file, pid)?;
    }
    Ok(c)
}

fn write_pid(path: &Path, pid: i32) -> Result<(), CliError> {
    std::fs::write(path, pid.to_string()).map_err(|source| CliError::Write {
        path: path.to_owned(),
        source,
    })
}

fn exec(rt: &Runtime, a: &ExecArgs) -> Result<ExitCode, CliError> {
    let c = rt.load(&a.id)?;
    let mut process = match &a.process {
        Some(path) => {
            let text = std::fs::read(path).map_err(|source| CliError::ReadConfig {
                path: path.clone(),
                source,
            })?;
            serde_json::from_slice(&text).map_err(|source| CliError::ParseConfig {
                path: path.clone(),
                source,
            })?
        }
        None if a.args.is_empty() => return Err(CliError::NoCommand),
        None => {
            let args: Vec<&str> = a.args.iter().map(String::as_str).collect();
            c.process(&args)?
        }
    };
    if let Some(cwd) = &a.cwd {
        process.set_cwd(cwd.clone());
    }
    if !a.env.is_empty() {
        let mut env = process.env().clone().unwrap_or_default();
        env.extend(a.env.iter().cloned());
        process.set_env(Some(env));
    }
    let req = ExecRequest {
        process,
        user: a.user.clone(),
        tty: a.tty,
    };
    let stdio = if a.detach {
        ExecStdio::Null
    } else {
        ExecStdio::Inherit
    };
    let handle = c.exec(&req, stdio)?;
    if let Some(pid_file) = &a.pid_file {
        write_pid(pid_file, handle.pid())?;
    }
    if a.detach {
        return Ok(ExitCode::SUCCESS);
    }
    let code = handle.wait()?;
    Ok(ExitCode::from(code.clamp(0, 255) as u8))
}

/// `TERM`, `SIGTERM`, `term` or `15`.
fn parse_signal(s: &str) -> Result<Signal, CliError> {
    if let Ok(n) = s.parse::<i32>() {
        return Signal::try_from(n).map_err(|_| CliError::Signal(s.to_owned()));
    }
    let upper = s.to_ascii_uppercase();
    let name = if upper.starts_with("SIG") {
        upper
    } else {
        format!("SIG{upper}")
    };
    name.parse().map_err(|_| CliError::Signal(s.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_parse_like_runc() {
        assert_eq!(parse_signal("TERM").unwrap(), Signal::SIGTERM);
        assert_eq!(parse_signal("sigkill").unwrap(), Signal::SIGKILL);
        assert_eq!(parse_signal("9").unwrap(), Signal::SIGKILL);
        assert!(matches!(parse_signal("NOPE"), Err(CliError::Signal(_))));
    }
}
