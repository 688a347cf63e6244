//! `berth stack exec` and `berth stack run`: a command in a service's running container,
//! or in a one-off container of the service, as `docker compose exec|run` do.
//!
//! `exec` picks the service's container (`--index`, default 1) from the daemon and runs
//! the process exactly as `berth exec` does (through the runtime's exec helper, with this
//! process's terminal and streams). `run` asks the daemon for a one-off container
//! (`POST /v1/stacks/{name}/run`, dependencies first) and then attaches to it as
//! `berth run` does: its terminal over a console socket with `-t` (the default on a
//! terminal), else its log; signals are forwarded, its exit code becomes ours, and
//! `--rm` removes it afterwards.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::process::ExitCode;

use anyhow::Context;

use super::super::GlobalArgs;
use super::super::container_run::{ExecProcess, exec_in};
use super::super::project::ProjectArgs;
use super::progress::{self, ProgressMode};
use crate::api::containers::ContainerRef;
use crate::api::paths;
use crate::api::stack::{RunRequest, StackContainer};

/// `berth stack exec`.
#[derive(Debug, clap::Args)]
pub struct ExecArgs {
    /// Run the command in the background.
    #[arg(short = 'd', long)]
    detach: bool,
    /// Do not allocate a pseudo-terminal (the default allocates one when standard input
    /// and output are terminals).
    #[arg(short = 'T', long = "no-tty")]
    no_tty: bool,
    /// Keep standard input open (it always is; accepted for Compose's spelling).
    #[arg(short = 'i', long, default_value_t = true)]
    interactive: bool,
    /// `user[:group]` to run as.
    #[arg(short = 'u', long)]
    user: Option<String>,
    /// Working directory inside the container.
    #[arg(short = 'w', long = "workdir")]
    workdir: Option<String>,
    /// Set an environment variable `NAME=VALUE` (`NAME`: this shell's value).
    #[arg(short = 'e', long = "env")]
    env: Vec<String>,
    /// Which replica of the service (from 1).
    #[arg(long, default_value_t = 1)]
    index: u64,
    /// The service.
    service: String,
    /// Command and arguments.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, required = true)]
    command: Vec<String>,
}

/// `NAME` alone takes this process's value (left out when unset), as Compose does.
fn env_values(env: &[String]) -> Vec<String> {
    env.iter()
        .filter_map(|e| {
            if e.contains('=') {
                Some(e.clone())
            } else {
                std::env::var(e).ok().map(|v| format!("{e}={v}"))
            }
        })
        .collect()
}

fn terminal() -> bool {
    std::io::stdin().is_terminal() && std::io::stdout().is_terminal()
}

/// The running container of replica `index` of `service`.
pub(super) fn replica(
    list: &[StackContainer],
    project: &str,
    service: &str,
    index: u64,
) -> anyhow::Result<String> {
    if !list.iter().any(|c| c.service == service) {
        anyhow::bail!("service {service:?} of project {project:?} has no container");
    }
    let c = list
        .iter()
        .find(|c| c.service == service && c.number == index)
        .ok_or_else(|| anyhow::anyhow!("service {service:?} has no container number {index}"))?;
    if !c.container.state.running {
        anyhow::bail!("service {service:?} is not running");
    }
    Ok(c.container.name.clone())
}

/// Runs `berth stack exec`.
pub fn exec(global: &GlobalArgs, project: &ProjectArgs, args: &ExecArgs) -> ExitCode {
    let _ = args.interactive;
    let target = (|| -> anyhow::Result<String> {
        let name = super::project_name(project)?;
        let list = super::super::block_on(super::containers(global, &name))?;
        replica(&list, &name, &args.service, args.index)
    })();
    let container = match target {
        Ok(c) => c,
        Err(e) => {
            eprintln!("berth: {}", super::super::error_chain(e.as_ref()));
            return ExitCode::from(super::super::exit::RUNTIME);
        }
    };
    let process = ExecProcess {
        tty: !args.no_tty && !args.detach && terminal(),
        detach: args.detach,
        user: args.user.clone(),
        workdir: args.workdir.clone(),
        env: env_values(&args.env),
        command: args.command.clone(),
    };
    exec_in(global, &container, &process)
}

/// `berth stack run`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// Run in the background and print the container's name.
    #[arg(short = 'd', long)]
    detach: bool,
    /// Remove the container when it exits.
    #[arg(long)]
    rm: bool,
    /// Do not start the services it depends on.
    #[arg(long)]
    no_deps: bool,
    /// Name of the container (default `<project>-<service>-run-<id>`).
    #[arg(long)]
    name: Option<String>,
    /// Set an environment variable `NAME=VALUE` (`NAME`: this shell's value).
    #[arg(short = 'e', long = "env")]
    env: Vec<String>,
    /// Add a label `KEY=VALUE`.
    #[arg(short = 'l', long = "label")]
    label: Vec<String>,
    /// `user[:group]` to run as.
    #[arg(short = 'u', long)]
    user: Option<String>,
    /// Working directory inside the container.
    #[arg(short = 'w', long = "workdir")]
    workdir: Option<String>,
    /// Replace the service's entrypoint (`""` clears it).
    #[arg(long)]
    entrypoint: Option<String>,
    /// Publish a port `[HOST_IP:][HOST_PORT:]CONTAINER_PORT[/PROTO]`.
    #[arg(short = 'p', long = "publish")]
    publish: Vec<String>,
    /// Publish the service's own ports too.
    #[arg(long)]
    service_ports: bool,
    /// Do not allocate a pseudo-terminal (the default allocates one on a terminal).
    #[arg(short = 'T', long = "no-tty")]
    no_tty: bool,
    /// Keep standard input open: it becomes the container's (through its terminal on a
    /// terminal); `-i=false` leaves it closed.
    #[arg(
        short = 'i',
        long,
        default_value_t = true,
        action = clap::ArgAction::Set,
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true"
    )]
    interactive: bool,
    /// How to show the dependencies' progress.
    #[arg(long, value_enum)]
    progress: Option<ProgressMode>,
    /// The service.
    service: String,
    /// Command and arguments (replace the service's command).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    command: Vec<String>,
}

/// 12 hex digits from the kernel's random pool, as Compose names one-off containers.
fn random_id() -> anyhow::Result<String> {
    use std::io::Read;
    let mut bytes = [0u8; 6];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .context("read /dev/urandom")?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// Runs `berth stack run`: exits with the container's code in the foreground.
pub fn run(global: &GlobalArgs, project: &ProjectArgs, args: &RunArgs) -> ExitCode {
    match run_inner(global, project, args) {
        Ok(code) => ExitCode::from(code.clamp(0, 255) as u8),
        Err(e) => {
            if let Some(d) = e.downcast_ref::<berth_compose::Diagnostics>() {
                crate::report::print_diagnostics(d);
                return ExitCode::from(super::super::exit::INVALID_INPUT);
            }
            eprintln!("berth: {}", super::super::error_chain(e.as_ref()));
            ExitCode::from(super::super::exit::RUNTIME)
        }
    }
}

fn run_inner(global: &GlobalArgs, project: &ProjectArgs, args: &RunArgs) -> anyhow::Result<i32> {
    let loaded = super::load_for_up(project, std::slice::from_ref(&args.service))?;
    let config_files = super::config_files(project, &loaded)?;
    let stack = loaded.name.clone();
    if !loaded.services.contains_key(&args.service) {
        anyhow::bail!("no such service: {}", args.service);
    }
    let name = match &args.name {
        Some(n) => n.clone(),
        None => format!("{stack}-{}-run-{}", args.service, random_id()?),
    };
    let tty = !args.no_tty && !args.detach && terminal();
    let labels: BTreeMap<String, String> = args
        .label
        .iter()
        .map(|l| match l.split_once('=') {
            Some((k, v)) => (k.to_owned(), v.to_owned()),
            None => (l.clone(), String::new()),
        })
        .collect();
    let mut req = RunRequest {
        project: loaded,
        config_files,
        service: args.service.clone(),
        name: name.clone(),
        command: (!args.command.is_empty()).then(|| args.command.clone()),
        entrypoint: args.entrypoint.clone(),
        env: env_values(&args.env),
        labels,
        user: args.user.clone(),
        workdir: args.workdir.clone(),
        publish: args.publish.clone(),
        service_ports: args.service_ports,
        no_deps: args.no_deps,
        auto_remove: args.rm && args.detach,
        console_socket: None,
        stdin_socket: None,
    };
    let mode = ProgressMode::detect(args.progress);
    let path = paths::stack(paths::STACK_RUN, &stack, "");
    super::super::block_on(async move {
        let client = global.endpoint()?.connect().await?;
        let console = if tty {
            let console = super::super::container_tty::Console::listen(&global.run_dir)?;
            req.console_socket = Some(console.path().display().to_string());
            Some(console.accept())
        } else {
            None
        };
        // Without a terminal, our standard input is the container's (Compose's `-i`, on
        // by default).
        let stdin = if !tty && !args.detach && args.interactive {
            let socket = super::super::container_stdin::StdinSocket::listen(&global.run_dir)?;
            req.stdin_socket = Some(socket.path().display().to_string());
            Some(socket.serve())
        } else {
            None
        };
        let lines = client.post_lines(&path, &req).await?;
        let followed = progress::follow(lines, mode).await;
        if let Some(task) = stdin {
            task.abort();
        }
        followed?;
        if args.detach {
            println!("{name}");
            return Ok(0);
        }
        let code = super::super::container_run::attach(&client, &name, console, true).await;
        if args.rm {
            let path = format!("{}?force=true", paths::fill(paths::CONTAINER, &name));
            if let Err(e) = client.delete::<ContainerRef>(&path).await {
                eprintln!("berth: {}", super::super::error_chain(&e));
            }
        }
        Ok(code?)
    })
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        run: super::RunArgs,
    }

    #[test]
    fn run_keeps_stdin_open_unless_told_and_i_takes_no_service_as_its_value() {
        let c = Cli::try_parse_from(["x", "-i", "web", "cat"]).unwrap();
        assert!(c.run.interactive);
        assert_eq!(c.run.service, "web");
        assert_eq!(c.run.command, ["cat"]);
        let c = Cli::try_parse_from(["x", "-i=false", "web"]).unwrap();
        assert!(!c.run.interactive);
        let c = Cli::try_parse_from(["x", "web", "sh", "-c", "exit 1"]).unwrap();
        assert!(c.run.interactive);
        assert_eq!(c.run.command, ["sh", "-c", "exit 1"]);
    }
}
