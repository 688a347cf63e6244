//! Stack commands over the existing container and image commands: `cp`, `top`, `wait`,
//! `events`, `scale`, `pull` and `push`. Each finds the service's containers (or images)
//! and then makes the same daemon request (or image-store call) as the single-container
//! command of the same name.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::process::ExitCode;

use super::super::GlobalArgs;
use super::super::project::ProjectArgs;
use super::progress::{self, ProgressMode};
use crate::api::containers::{ContainerProcess, ExitCode as Exited};
use crate::api::stack::{DownRequest, StackContainer, UpRequest};
use crate::api::{Event, paths};

/// `berth stack cp`.
#[derive(Debug, clap::Args)]
pub struct CpArgs {
    /// Which replica of the service (from 1).
    #[arg(long, default_value_t = 1)]
    index: u64,
    /// `SERVICE:PATH` or a host path.
    src: String,
    /// `SERVICE:PATH` or a host path.
    dest: String,
}

/// `SERVICE:PATH` split, or `None` for a host path (one with a `/` before any `:`).
fn service_path(arg: &str) -> Option<(&str, &str)> {
    let (s, p) = arg.split_once(':')?;
    (!s.is_empty() && !s.contains('/')).then_some((s, p))
}

/// Runs `berth stack cp`: `SERVICE:PATH` becomes `CONTAINER:PATH` for `berth cp`.
pub fn cp(global: &GlobalArgs, project: &ProjectArgs, args: &CpArgs) -> anyhow::Result<()> {
    let name = super::project_name(project)?;
    let list = super::super::block_on(super::containers(global, &name))?;
    let resolve = |arg: &str| -> anyhow::Result<String> {
        match service_path(arg) {
            Some((service, path)) => {
                let c = super::exec::replica(&list, &name, service, args.index)?;
                Ok(format!("{c}:{path}"))
            }
            None => Ok(arg.to_owned()),
        }
    };
    let copy = super::super::container_copy::CpArgs {
        src: resolve(&args.src)?,
        dest: resolve(&args.dest)?,
    };
    Ok(super::super::container_copy::cp(global, &copy)?)
}

/// `berth stack top`.
#[derive(Debug, clap::Args)]
pub struct TopArgs {
    /// Services (default: all).
    services: Vec<String>,
}

/// Runs `berth stack top`: each running container's name, then its processes.
pub fn top(global: &GlobalArgs, project: &ProjectArgs, args: &TopArgs) -> anyhow::Result<()> {
    let name = super::project_name(project)?;
    let out = super::super::block_on(async {
        let client = global.endpoint()?.connect().await?;
        let list = super::containers(global, &name).await?;
        check_services(&list, &args.services)?;
        let mut out = String::new();
        for c in selected(&list, &args.services).filter(|c| c.container.state.running) {
            let procs: Vec<ContainerProcess> = client
                .get(&paths::fill(paths::CONTAINER_TOP, &c.container.id))
                .await?;
            out.push_str(&top_table(&c.container.name, &procs));
        }
        Ok(out)
    })?;
    print!("{out}");
    Ok(())
}

/// One container's block of `stack top`, as Compose prints it.
fn top_table(name: &str, procs: &[ContainerProcess]) -> String {
    let mut s = format!("{name}\n{:<8}{:<10}{:<10}CMD\n", "UID", "PID", "PPID");
    for p in procs {
        s.push_str(&format!(
            "{:<8}{:<10}{:<10}{}\n",
            p.uid, p.pid, p.ppid, p.command
        ));
    }
    s.push('\n');
    s
}

fn check_services(list: &[StackContainer], services: &[String]) -> anyhow::Result<()> {
    for s in services {
        if !list.iter().any(|c| &c.service == s) {
            anyhow::bail!("no container of service {s:?}");
        }
    }
    Ok(())
}

fn selected<'a>(
    list: &'a [StackContainer],
    services: &'a [String],
) -> impl Iterator<Item = &'a StackContainer> + 'a {
    list.iter()
        .filter(move |c| services.is_empty() || services.contains(&c.service))
}

/// `berth stack wait`.
#[derive(Debug, clap::Args)]
pub struct WaitArgs {
    /// Take the stack down once the first container stops.
    #[arg(long)]
    down_project: bool,
    /// Services.
    #[arg(required = true)]
    services: Vec<String>,
}

/// Runs `berth stack wait`: blocks until the first container of the services stops,
/// prints its exit code and exits with it, as `docker compose wait` does.
pub fn wait(global: &GlobalArgs, project: &ProjectArgs, args: &WaitArgs) -> ExitCode {
    let result = (|| -> anyhow::Result<i32> {
        let name = super::project_name(project)?;
        super::super::block_on(async {
            let client = global.endpoint()?.connect().await?;
            let list = super::containers(global, &name).await?;
            check_services(&list, &args.services)?;
            let waits = selected(&list, &args.services).map(|c| {
                let client = client.clone();
                let path = paths::fill(paths::CONTAINER_WAIT, &c.container.id);
                Box::pin(async move { client.post::<Exited>(&path).await })
            });
            let (first, _, _) = futures::future::select_all(waits).await;
            let code = first?.exit_code;
            println!("{code}");
            if args.down_project {
                let path = paths::stack(paths::STACK_DOWN, &name, "");
                let lines = client.post_lines(&path, &DownRequest::default()).await?;
                progress::follow(lines, ProgressMode::detect(None)).await?;
            }
            Ok(code)
        })
    })();
    match result {
        Ok(code) => ExitCode::from(code.clamp(0, 255) as u8),
        Err(e) => {
            eprintln!("berth: {}", super::super::error_chain(e.as_ref()));
            ExitCode::from(super::super::exit::RUNTIME)
        }
    }
}

/// `berth stack events`.
#[derive(Debug, clap::Args)]
pub struct EventsArgs {
    /// One JSON object per line.
    #[arg(long)]
    json: bool,
    /// Services (default: all).
    services: Vec<String>,
}

/// An event of the stack as `docker compose events --json` prints it.
#[derive(Debug, serde::Serialize)]
struct StackEvent<'a> {
    time: &'a str,
    #[serde(rename = "type")]
    kind: &'a str,
    action: &'a str,
    id: &'a str,
    service: &'a str,
    attributes: &'a BTreeMap<String, String>,
}

/// Runs `berth stack events`: the daemon's container events that concern the stack's
/// containers (one-off ones included), until interrupted.
pub fn events(global: &GlobalArgs, project: &ProjectArgs, args: &EventsArgs) -> anyhow::Result<()> {
    let name = super::project_name(project)?;
    super::super::block_on(async {
        let client = global.endpoint()?.connect().await?;
        let mut lines = client.lines(paths::EVENTS).await?;
        // Container id → service, refreshed when an unknown container shows up.
        let mut known: BTreeMap<String, String> = BTreeMap::new();
        let mut stranger: BTreeSet<String> = BTreeSet::new();
        let mut out = std::io::stdout().lock();
        while let Some(line) = lines.next_line().await? {
            let event: Event = serde_json::from_str(&line)?;
            if event.kind != "container" || stranger.contains(&event.id) {
                continue;
            }
            if !known.contains_key(&event.id) {
                for c in super::containers_with(global, &name, true).await? {
                    known.insert(c.container.id, c.service);
                }
                if !known.contains_key(&event.id) {
                    stranger.insert(event.id.clone());
                    continue;
                }
            }
            let service = &known[&event.id];
            if !args.services.is_empty() && !args.services.contains(service) {
                continue;
            }
            let text = if args.json {
                serde_json::to_string(&StackEvent {
                    time: &event.time,
                    kind: &event.kind,
                    action: &event.action,
                    id: &event.id,
                    service,
                    attributes: &event.attributes,
                })?
            } else {
                human(&event)
            };
            if writeln!(out, "{text}").and_then(|()| out.flush()).is_err() {
                break; // stdout closed
            }
        }
        Ok(())
    })
}

/// `<time> container <action> <id> (k=v, …)`, as `docker compose events` prints it.
fn human(e: &Event) -> String {
    let attrs: Vec<String> = e
        .attributes
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    format!(
        "{} {} {} {} ({})",
        e.time,
        e.kind,
        e.action,
        e.id,
        attrs.join(", ")
    )
}

/// `berth stack scale`.
#[derive(Debug, clap::Args)]
pub struct ScaleArgs {
    /// Do not bring up the services the scaled ones depend on.
    #[arg(long)]
    no_deps: bool,
    /// `SERVICE=N`, one or more.
    #[arg(required = true, value_name = "SERVICE=N")]
    scale: Vec<String>,
}

/// Runs `berth stack scale`: an `up` of the named services with their new replica counts.
pub fn scale(global: &GlobalArgs, project: &ProjectArgs, args: &ScaleArgs) -> anyhow::Result<()> {
    let scale = super::up::parse_scale(&args.scale)?;
    let services: Vec<String> = scale.keys().cloned().collect();
    let loaded = super::load_for_up(project, &services)?;
    let config_files = super::config_files(project, &loaded)?;
    let name = loaded.name.clone();
    let req = UpRequest {
        project: loaded,
        config_files,
        services,
        force_recreate: false,
        no_recreate: true,
        no_deps: args.no_deps,
        remove_orphans: false,
        scale,
        build: false,
        timeout: None,
        wait: false,
        wait_timeout: None,
        pull: None,
    };
    let path = paths::stack(paths::STACK_UP, &name, "");
    super::super::block_on(async move {
        let client = global.endpoint()?.connect().await?;
        let lines = client.post_lines(&path, &req).await?;
        progress::follow(lines, ProgressMode::detect(None)).await
    })
}

/// `berth stack pull` and `berth stack push`.
#[derive(Debug, clap::Args)]
pub struct ImagesArgs {
    /// Print nothing but errors.
    #[arg(short = 'q', long)]
    quiet: bool,
    /// Go on with the other images when one fails.
    #[arg(long)]
    ignore_failures: bool,
    /// Services (default: all).
    services: Vec<String>,
}

/// The images of the services that `pull` (`push: false`: every service with `image:`)
/// or `push` (services with both `build:` and `image:`) handles.
fn service_images(
    project: &berth_compose::Project,
    services: &[String],
    push: bool,
) -> anyhow::Result<BTreeSet<String>> {
    for s in services {
        if !project.services.contains_key(s) {
            anyhow::bail!("no such service: {s}");
        }
    }
    Ok(project
        .services
        .iter()
        .filter(|(n, _)| services.is_empty() || services.contains(n))
        .filter(|(_, s)| !push || s.build.is_some())
        .filter_map(|(_, s)| s.image.clone())
        .collect())
}

/// Runs `berth stack pull` (`push: false`) or `berth stack push`, image by image, through
/// the same code as `berth pull`/`berth push`.
pub fn pull_or_push(
    global: &GlobalArgs,
    project: &ProjectArgs,
    args: &ImagesArgs,
    push: bool,
) -> anyhow::Result<()> {
    let loaded = project.load()?;
    let images = service_images(&loaded, &args.services, push)?;
    let store = berth_image::Store::open(&global.root.join("image"))?;
    for image in images {
        let registry = super::super::image::RegistryArgs {
            insecure: Vec::new(),
        };
        let result = if push {
            super::super::image_registry::push(
                &store,
                super::super::image::PushArgs {
                    image: image.clone(),
                    chunk_size: None,
                    quiet: args.quiet,
                    registry,
                },
            )
        } else {
            super::super::image_registry::pull(
                &store,
                super::super::image::PullArgs {
                    image: image.clone(),
                    platform: "linux/amd64".to_owned(),
                    quiet: args.quiet,
                    registry,
                },
            )
        };
        if let Err(e) = result {
            if !args.ignore_failures {
                anyhow::bail!("{image}: {e}");
            }
            eprintln!("berth: {image}: {e}");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_paths_split_like_container_paths() {
        assert_eq!(service_path("web:/etc/hosts"), Some(("web", "/etc/hosts")));
        assert_eq!(service_path("./a:b"), None);
        assert_eq!(service_path("/tmp/x"), None);
    }

    #[test]
    fn top_prints_the_container_name_above_its_processes() {
        let procs = vec![ContainerProcess {
            uid: 0,
            pid: 42,
            ppid: 1,
            command: "sleep 60".into(),
        }];
        assert_eq!(
            top_table("p-web-1", &procs),
            "p-web-1\nUID     PID       PPID      CMD\n0       42        1         sleep 60\n\n"
        );
    }
}
