//! The stack commands, as `docker compose` has them: `up`, `down` and `ls` at the top level
//! (`berth -f stack.yaml up -d`), and all of them under `berth stack …` (alias
//! `berth compose …`), where `ps`, `logs`, `start`, `stop`, `restart`, `kill`, `rm`,
//! `pause`, `unpause`, `port` and `images` act on the stack's containers (the top-level
//! commands of the same names act on single containers, as `docker ps` does). `exec`,
//! `run` (one-off containers), `cp`, `top`, `wait`, `events`, `scale`, `pull` and `push`
//! act on one service's containers or images through the same routes as the
//! single-container commands ([`exec`], [`services`]).
//!
//! The CLI loads the stack files (with `-f -p --profile --env-file --project-directory`,
//! as `berth config` does) and sends the canonical project to the daemon; logs are read
//! from the containers' log files, which the daemon names in `ps`.

mod exec;
mod logs;
mod progress;
pub mod ps;
mod services;
pub mod up;
pub mod watch;

use std::path::PathBuf;

use anyhow::Context;
use berth_compose::Project;
use clap::Subcommand;

use super::GlobalArgs;
use super::project::ProjectArgs;
use crate::api::paths;
use crate::api::stack::{ActionRequest, StackContainer};
pub use logs::LogsArgs;
pub use progress::ProgressMode;
pub use ps::{ImagesArgs, LsArgs, PortArgs, PsArgs};
pub use up::{DownArgs, UpArgs};
pub use watch::WatchArgs;

/// `berth stack <command>`.
#[derive(Debug, clap::Args)]
pub struct StackArgs {
    #[command(subcommand)]
    command: StackCommand,
}

#[derive(Debug, Subcommand)]
enum StackCommand {
    /// Create and start the stack's containers (and its networks and volumes).
    Up(Box<UpArgs>),
    /// Stop and remove the stack's containers and networks (`-v`: volumes too).
    Down(DownArgs),
    /// List the stack's containers.
    Ps(PsArgs),
    /// List stacks.
    Ls(LsArgs),
    /// Show the output of the stack's containers.
    Logs(LogsArgs),
    /// Start the stack's stopped containers.
    Start(ServicesArgs),
    /// Stop the stack's containers.
    Stop(StopArgs),
    /// Restart the stack's containers.
    Restart(StopArgs),
    /// Send a signal to the stack's containers.
    Kill(KillArgs),
    /// Remove the stack's stopped containers.
    Rm(RmArgs),
    /// Pause the stack's containers.
    Pause(ServicesArgs),
    /// Unpause the stack's containers.
    Unpause(ServicesArgs),
    /// Print the host address of a service's published port.
    Port(PortArgs),
    /// List the images the stack's containers use.
    Images(ImagesArgs),
    /// Sync, restart or rebuild services as their develop.watch rules say, until Ctrl-C.
    Watch(WatchArgs),
    /// Run a command in a service's running container.
    Exec(exec::ExecArgs),
    /// Run a one-off container of a service (its dependencies first).
    Run(Box<exec::RunArgs>),
    /// Copy files between a service's container and the host (`SERVICE:PATH` on one side).
    Cp(services::CpArgs),
    /// Show the processes of the stack's containers.
    Top(services::TopArgs),
    /// Block until the first container of the services stops; print its exit code.
    Wait(services::WaitArgs),
    /// Stream the stack's container events.
    Events(services::EventsArgs),
    /// Set the number of replicas of services (`web=3`).
    Scale(services::ScaleArgs),
    /// Pull the images of the stack's services.
    Pull(services::ImagesArgs),
    /// Push the images of the stack's built services.
    Push(services::ImagesArgs),
    /// Build the images of services with a `build:` section, in parallel.
    Build(super::build::StackBuildArgs),
}

/// Commands taking service names.
#[derive(Debug, clap::Args)]
pub struct ServicesArgs {
    /// Services (default: all).
    services: Vec<String>,
}

/// `stop`, `restart`.
#[derive(Debug, clap::Args)]
pub struct StopArgs {
    /// Seconds to wait for each container to stop before killing it (default: its
    /// stop_grace_period, else 10).
    #[arg(short = 't', long = "timeout")]
    timeout: Option<u64>,
    /// Services (default: all).
    services: Vec<String>,
}

/// `kill`.
#[derive(Debug, clap::Args)]
pub struct KillArgs {
    /// Signal to send.
    #[arg(short = 's', long, default_value = "SIGKILL")]
    signal: String,
    /// Services (default: all).
    services: Vec<String>,
}

/// `rm`.
#[derive(Debug, clap::Args)]
pub struct RmArgs {
    /// Remove running containers too (they are killed first).
    #[arg(short = 'f', long)]
    force: bool,
    /// Stop the containers first.
    #[arg(short = 's', long)]
    stop: bool,
    /// Services (default: all).
    services: Vec<String>,
}

/// Runs `berth stack <command>`; `exec`, `run` and `wait` exit with their process's
/// code, the others with 0, or 1 (3 for an invalid stack file) after printing the error.
pub fn run(global: &GlobalArgs, project: &ProjectArgs, args: StackArgs) -> std::process::ExitCode {
    let result = match args.command {
        StackCommand::Exec(a) => return exec::exec(global, project, &a),
        StackCommand::Run(a) => return exec::run(global, project, &a),
        StackCommand::Wait(a) => return services::wait(global, project, &a),
        StackCommand::Cp(a) => services::cp(global, project, &a),
        StackCommand::Top(a) => services::top(global, project, &a),
        StackCommand::Events(a) => services::events(global, project, &a),
        StackCommand::Scale(a) => services::scale(global, project, &a),
        StackCommand::Pull(a) => services::pull_or_push(global, project, &a, false),
        StackCommand::Push(a) => services::pull_or_push(global, project, &a, true),
        StackCommand::Up(a) => up::up(global, project, &a),
        StackCommand::Down(a) => up::down(global, project, &a),
        StackCommand::Ps(a) => ps::ps(global, project, &a),
        StackCommand::Ls(a) => ps::ls(global, &a),
        StackCommand::Logs(a) => logs::logs(global, project, &a),
        StackCommand::Start(a) => action(global, project, "start", a.services, None, None),
        StackCommand::Stop(a) => action(global, project, "stop", a.services, a.timeout, None),
        StackCommand::Restart(a) => action(global, project, "restart", a.services, a.timeout, None),
        StackCommand::Kill(a) => action(global, project, "kill", a.services, None, Some(a.signal)),
        StackCommand::Rm(a) => rm(global, project, a),
        StackCommand::Pause(a) => action(global, project, "pause", a.services, None, None),
        StackCommand::Unpause(a) => action(global, project, "unpause", a.services, None, None),
        StackCommand::Port(a) => ps::port(global, project, &a),
        StackCommand::Images(a) => ps::images(global, project, &a),
        StackCommand::Watch(a) => watch::watch(global, project, &a),
        StackCommand::Build(a) => super::build::stack_build(global, project, &a),
    };
    super::finish(result)
}

fn rm(global: &GlobalArgs, project: &ProjectArgs, a: RmArgs) -> anyhow::Result<()> {
    if a.stop {
        action(global, project, "stop", a.services.clone(), None, None)?;
    }
    let name = project_name(project)?;
    let req = ActionRequest {
        services: a.services,
        force: a.force || a.stop,
        ..ActionRequest::default()
    };
    send_action(global, &name, "rm", &req)
}

fn action(
    global: &GlobalArgs,
    project: &ProjectArgs,
    action: &str,
    services: Vec<String>,
    timeout: Option<u64>,
    signal: Option<String>,
) -> anyhow::Result<()> {
    let name = project_name(project)?;
    let req = ActionRequest {
        services,
        timeout,
        signal,
        force: false,
    };
    send_action(global, &name, action, &req)
}

fn send_action(
    global: &GlobalArgs,
    name: &str,
    action: &str,
    req: &ActionRequest,
) -> anyhow::Result<()> {
    let path = paths::stack(paths::STACK_ACTION, name, action);
    super::block_on(async {
        let client = global.endpoint()?.connect().await?;
        let lines = client.post_lines(&path, req).await?;
        progress::follow(lines, ProgressMode::detect(None)).await
    })
}

/// The project's name: `-p`, else the loaded stack's (its file's `name:` or directory).
pub fn project_name(project: &ProjectArgs) -> anyhow::Result<String> {
    if let Some(n) = &project.project_name {
        return Ok(n.clone());
    }
    Ok(project.load()?.name)
}

/// The stack's service containers from the daemon.
pub async fn containers(global: &GlobalArgs, name: &str) -> anyhow::Result<Vec<StackContainer>> {
    containers_with(global, name, false).await
}

/// The stack's containers from the daemon, with its one-off containers when `oneoff`.
pub async fn containers_with(
    global: &GlobalArgs,
    name: &str,
    oneoff: bool,
) -> anyhow::Result<Vec<StackContainer>> {
    let path = format!(
        "{}?oneoff={oneoff}",
        paths::stack(paths::STACK_PS, name, "")
    );
    Ok(global.endpoint()?.get(&path).await?)
}

/// The stack files as `up` records them: `-f` values made absolute, else the default
/// files found in the project directory.
fn config_files(args: &ProjectArgs, project: &Project) -> anyhow::Result<Vec<String>> {
    let cwd = std::env::current_dir().context("cannot determine the current directory")?;
    if !args.files.is_empty() {
        return Ok(args
            .files
            .iter()
            .map(|f| {
                if f.as_os_str() == "-" {
                    "-".to_owned()
                } else {
                    cwd.join(f).display().to_string()
                }
            })
            .collect());
    }
    let mut out = Vec::new();
    for group in [
        [
            "compose.yaml",
            "compose.yml",
            "docker-compose.yaml",
            "docker-compose.yml",
        ],
        [
            "compose.override.yaml",
            "compose.override.yml",
            "docker-compose.override.yaml",
            "docker-compose.override.yml",
        ],
    ] {
        if let Some(f) = group
            .iter()
            .map(|f| project.working_dir.join(f))
            .find(|p: &PathBuf| p.is_file())
        {
            out.push(f.display().to_string());
        }
    }
    Ok(out)
}

/// Loads the project for `up`: named services enabled even when their profiles are not
/// active, secrets and configs with an `environment` source turned into content (the
/// daemon does not see this environment). A service needed by an enabled one but switched
/// off by its profiles is an error that names the profile to enable.
fn load_for_up(args: &ProjectArgs, services: &[String]) -> anyhow::Result<Project> {
    let mut project = match args.load() {
        Ok(p) => p,
        Err(e) => {
            if let Some(hint) = disabled_dependency(args) {
                return Err(anyhow::anyhow!(hint));
            }
            return Err(e);
        }
    };
    if !services.is_empty() {
        project
            .enable_services(services)
            .map_err(|d| berth_compose::Diagnostics(vec![d]))?;
    }
    for obj in project
        .secrets
        .values_mut()
        .chain(project.configs.values_mut())
    {
        if obj.content.is_none()
            && obj.file.is_none()
            && let Some(var) = &obj.environment
            && let Ok(value) = std::env::var(var)
        {
            obj.content = Some(value);
        }
    }
    Ok(project)
}

/// When the stack only fails to load because an enabled service needs one that its
/// profiles switch off: which, and the profile to enable.
fn disabled_dependency(args: &ProjectArgs) -> Option<String> {
    let mut all = args.clone();
    all.profiles = vec!["*".to_owned()];
    let opts = all.load_options().ok()?;
    let project = berth_compose::load(&opts).ok()?;
    let active: Vec<String> = if args.profiles.is_empty() {
        std::env::var("COMPOSE_PROFILES")
            .unwrap_or_default()
            .split(',')
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
            .collect()
    } else {
        args.profiles.clone()
    };
    let enabled = |s: &berth_compose::Service| {
        s.profiles.is_empty() || s.profiles.iter().any(|p| active.contains(p))
    };
    for (name, svc) in &project.services {
        if !enabled(svc) {
            continue;
        }
        for (dep, how) in &svc.depends_on {
            let Some(d) = project.services.get(dep) else {
                continue;
            };
            if how.required && !enabled(d) {
                return Some(format!(
                    "service {name:?} depends on {dep:?}, which is disabled by its profiles: enable it with --profile {}",
                    d.profiles.join(" or --profile ")
                ));
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn project_round_trips_through_json() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("compose.yaml"),
            r#"
name: rt
services:
  web:
    image: busybox
    command: httpd -f -p 80
    environment: [A=1, B=]
    ports: ["8080:80", "127.0.0.1::90/udp"]
    volumes: [data:/data, ./src:/src:ro, /anon]
    healthcheck: {test: wget -q http://127.0.0.1/, interval: 1s500ms, retries: 3}
    depends_on:
      db: {condition: service_healthy, restart: true}
    deploy: {replicas: 2, resources: {limits: {memory: 64m}}}
    secrets: [pw]
    stop_grace_period: 2s
    ulimits: {nofile: {soft: 10, hard: 20}}
  db:
    image: busybox
    networks: {back: {aliases: [database]}}
volumes: {data: {}}
networks: {back: {ipam: {config: [{subnet: 10.9.0.0/24}]}}}
secrets: {pw: {content: hunter2}}
"#,
        )
        .unwrap();
        let args = ProjectArgs {
            project_directory: Some(dir.path().to_path_buf()),
            files: vec![dir.path().join("compose.yaml")],
            ..ProjectArgs::default()
        };
        let project = args.load().unwrap();
        let json = serde_json::to_string(&project).unwrap();
        let back: Project = serde_json::from_str(&json).unwrap();
        assert_eq!(back, project);
    }

    #[test]
    fn a_dependency_switched_off_by_a_profile_names_the_profile() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("compose.yaml"),
            "services:\n  web:\n    image: busybox\n    depends_on: [db]\n  db:\n    image: busybox\n    profiles: [storage]\n",
        )
        .unwrap();
        let args = ProjectArgs {
            files: vec![dir.path().join("compose.yaml")],
            ..ProjectArgs::default()
        };
        let err = load_for_up(&args, &[]).unwrap_err().to_string();
        assert!(err.contains("--profile storage"), "{err}");
        assert!(err.contains("\"db\""), "{err}");
    }
}
