//! `berth stack ps`, `ls`, `port` and `images`.

use super::super::GlobalArgs;
use super::super::container_format as format;
use super::super::project::ProjectArgs;
use crate::api::paths;
use crate::api::stack::{StackContainer, StackSummary};

/// `berth stack ps`.
#[derive(Debug, clap::Args)]
pub struct PsArgs {
    /// Show stopped containers too.
    #[arg(short = 'a', long)]
    all: bool,
    /// Print ids only.
    #[arg(short = 'q', long)]
    quiet: bool,
    /// Print service names only.
    #[arg(long)]
    services: bool,
    /// Only containers in this state (running, exited, paused, created), repeatable.
    #[arg(long, value_name = "STATUS")]
    status: Vec<String>,
    /// `table` (default) or `json` (an array).
    #[arg(long, default_value = "table")]
    format: String,
    /// Services (default: all).
    #[arg(value_name = "SERVICE")]
    names: Vec<String>,
}

/// `berth ls`.
#[derive(Debug, clap::Args)]
pub struct LsArgs {
    /// Show stopped stacks too (berth lists every stack it knows).
    #[arg(short = 'a', long)]
    all: bool,
    /// Print names only.
    #[arg(short = 'q', long)]
    quiet: bool,
    /// `table` (default) or `json`.
    #[arg(long, default_value = "table")]
    format: String,
}

/// `berth stack port`.
#[derive(Debug, clap::Args)]
pub struct PortArgs {
    /// Which replica.
    #[arg(long, default_value_t = 1)]
    index: u64,
    /// tcp or udp.
    #[arg(long, default_value = "tcp")]
    protocol: String,
    /// The service.
    service: String,
    /// Its port in the container.
    private_port: u16,
}

/// `berth stack images`.
#[derive(Debug, clap::Args)]
pub struct ImagesArgs {
    /// Services (default: all).
    services: Vec<String>,
}

fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            widths[i] = widths[i].max(c.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: Vec<&str>| {
        let n = cells.len();
        for (i, c) in cells.into_iter().enumerate() {
            out.push_str(c);
            if i + 1 < n {
                out.push_str(&" ".repeat(widths[i] - c.chars().count() + 3));
            }
        }
        out.push('\n');
    };
    line(header.to_vec());
    for r in rows {
        line(r.iter().map(String::as_str).collect());
    }
    out
}

fn status(c: &StackContainer) -> String {
    format::status(&c.container)
}

/// Runs `berth stack ps`.
pub fn ps(global: &GlobalArgs, project: &ProjectArgs, args: &PsArgs) -> anyhow::Result<()> {
    let name = super::project_name(project)?;
    // `-a` shows the one-off containers of `stack run` too, as Compose does.
    let list = super::super::block_on(super::containers_with(global, &name, args.all))?;
    let list: Vec<StackContainer> = list
        .into_iter()
        .filter(|c| args.names.is_empty() || args.names.contains(&c.service))
        .filter(|c| {
            let state = c.container.state.status.as_str();
            if !args.status.is_empty() {
                return args.status.iter().any(|s| s == state);
            }
            args.all || state == "running" || state == "paused"
        })
        .collect();
    if args.quiet {
        for c in &list {
            println!("{}", c.container.id);
        }
        return Ok(());
    }
    if args.services {
        let mut names: Vec<&str> = list.iter().map(|c| c.service.as_str()).collect();
        names.dedup();
        for n in names {
            println!("{n}");
        }
        return Ok(());
    }
    if args.format == "json" {
        let items: Vec<serde_json::Value> = list
            .iter()
            .map(|c| {
                let k = &c.container;
                serde_json::json!({
                    "ID": k.id,
                    "Name": k.name,
                    "Service": c.service,
                    "Number": c.number,
                    "Project": name,
                    "Image": k.image,
                    "Command": k.command.join(" "),
                    "State": k.state.status,
                    "Status": status(c),
                    "Health": c.health.clone().unwrap_or_default(),
                    "ExitCode": k.state.exit_code.unwrap_or(0),
                    "Publishers": k.ports.iter().map(|p| serde_json::json!({
                        "URL": p.host_ip.clone().unwrap_or_else(|| "0.0.0.0".to_owned()),
                        "TargetPort": p.container_port,
                        "PublishedPort": p.host_port,
                        "Protocol": p.protocol,
                    })).collect::<Vec<_>>(),
                    "Labels": k.labels,
                    "CreatedAt": k.created,
                })
            })
            .collect();
        println!("{}", serde_json::to_string(&items)?);
        return Ok(());
    }
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|c| {
            let k = &c.container;
            let cmd = k.command.join(" ");
            let cmd = if cmd.chars().count() > 20 {
                std::format!("\"{}…\"", cmd.chars().take(19).collect::<String>())
            } else {
                std::format!("\"{cmd}\"")
            };
            vec![
                k.name.clone(),
                k.image.clone(),
                cmd,
                c.service.clone(),
                format::ago(&k.created),
                status(c),
                format::ports(&k.ports),
            ]
        })
        .collect();
    print!(
        "{}",
        table(
            &[
                "NAME", "IMAGE", "COMMAND", "SERVICE", "CREATED", "STATUS", "PORTS"
            ],
            &rows
        )
    );
    Ok(())
}

/// Runs `berth ls`.
pub fn ls(global: &GlobalArgs, args: &LsArgs) -> anyhow::Result<()> {
    let _ = args.all;
    let list: Vec<StackSummary> =
        super::super::block_on(async { Ok(global.endpoint()?.get(paths::STACKS).await?) })?;
    if args.quiet {
        for s in &list {
            println!("{}", s.name);
        }
        return Ok(());
    }
    if args.format == "json" {
        let items: Vec<serde_json::Value> = list
            .iter()
            .map(|s| {
                serde_json::json!({
                    "Name": s.name,
                    "Status": s.status,
                    "ConfigFiles": s.config_files,
                    "WorkingDir": s.working_dir,
                })
            })
            .collect();
        println!("{}", serde_json::to_string(&items)?);
        return Ok(());
    }
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|s| {
            vec![
                s.name.clone(),
                s.status.clone(),
                s.config_files.clone(),
                s.working_dir.clone(),
            ]
        })
        .collect();
    print!(
        "{}",
        table(&["NAME", "STATUS", "CONFIG FILES", "DIRECTORY"], &rows)
    );
    Ok(())
}

/// Runs `berth stack port`.
pub fn port(global: &GlobalArgs, project: &ProjectArgs, args: &PortArgs) -> anyhow::Result<()> {
    let name = super::project_name(project)?;
    let list = super::super::block_on(super::containers(global, &name))?;
    let c = list
        .iter()
        .find(|c| c.service == args.service && c.number == args.index)
        .ok_or_else(|| {
            anyhow::anyhow!(
                "service {:?} has no container #{}",
                args.service,
                args.index
            )
        })?;
    let p = c
        .container
        .ports
        .iter()
        .find(|p| p.container_port == args.private_port && p.protocol == args.protocol)
        .ok_or_else(|| {
            anyhow::anyhow!(
                "no port {}/{} published for {}",
                args.private_port,
                args.protocol,
                c.container.name
            )
        })?;
    let ip = p.host_ip.clone().unwrap_or_else(|| "0.0.0.0".to_owned());
    println!("{ip}:{}", p.host_port);
    Ok(())
}

/// Runs `berth stack images`.
pub fn images(global: &GlobalArgs, project: &ProjectArgs, args: &ImagesArgs) -> anyhow::Result<()> {
    let name = super::project_name(project)?;
    let list = super::super::block_on(super::containers(global, &name))?;
    let rows: Vec<Vec<String>> = list
        .iter()
        .filter(|c| args.services.is_empty() || args.services.contains(&c.service))
        .map(|c| {
            let (repo, tag) = match c.container.image.rsplit_once(':') {
                Some((r, t)) if !t.contains('/') => (r.to_owned(), t.to_owned()),
                _ => (c.container.image.clone(), "latest".to_owned()),
            };
            let id = c.container.image_id.trim_start_matches("sha256:");
            vec![
                c.container.name.clone(),
                repo,
                tag,
                id.chars().take(12).collect(),
            ]
        })
        .collect();
    print!(
        "{}",
        table(&["CONTAINER", "REPOSITORY", "TAG", "IMAGE ID"], &rows)
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align_columns() {
        let t = table(
            &["NAME", "STATUS"],
            &[vec!["demo".into(), "running(3)".into()]],
        );
        assert_eq!(t, "NAME   STATUS\ndemo   running(3)\n");
    }
}
