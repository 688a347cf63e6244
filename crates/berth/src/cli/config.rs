//! `berth config`: validate the stack and print its canonical model (YAML by default,
//! or JSON shaped like `docker compose config --format json`), or parts of it.

use std::io::Write;

use anyhow::Context;
use berth_compose::Project;

use super::project::ProjectArgs;

/// Output format of `berth config`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// YAML, as `docker compose config`.
    Yaml,
    /// JSON, as `docker compose config --format json`.
    Json,
}

/// Arguments of `berth config`.
#[derive(Debug, Clone, clap::Args)]
pub struct ConfigArgs {
    /// Output format.
    #[arg(long, value_enum, default_value = "yaml")]
    pub format: Format,
    /// Print the service names, one per line.
    #[arg(long)]
    pub services: bool,
    /// Print the volume names, one per line.
    #[arg(long)]
    pub volumes: bool,
    /// Print the network names, one per line.
    #[arg(long)]
    pub networks: bool,
    /// Print the profile names, one per line.
    #[arg(long)]
    pub profiles: bool,
    /// Print the image of each service, one per line.
    #[arg(long)]
    pub images: bool,
    /// Print `SERVICE HASH` for the named service (`*` for all).
    #[arg(long, value_name = "SERVICE")]
    pub hash: Option<String>,
    /// Only validate; print nothing.
    #[arg(short, long)]
    pub quiet: bool,
    /// Only these services (and what they depend on); enables their profiles.
    #[arg(value_name = "SERVICE")]
    pub only: Vec<String>,
}

/// Runs `berth config`.
pub fn run(project_args: &ProjectArgs, args: &ConfigArgs) -> anyhow::Result<()> {
    let mut project = project_args.load()?;
    if !args.only.is_empty() {
        select(&mut project, &args.only)?;
    }
    if args.quiet {
        return Ok(());
    }
    let out = render(&project, args)?;
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(out.as_bytes())
        .context("cannot write to stdout")?;
    Ok(())
}

fn select(project: &mut Project, names: &[String]) -> anyhow::Result<()> {
    project
        .enable_services(names)
        .map_err(berth_compose::Diagnostics::one)?;
    let mut keep: Vec<String> = Vec::new();
    let mut todo: Vec<String> = names.to_vec();
    while let Some(n) = todo.pop() {
        if keep.contains(&n) {
            continue;
        }
        if let Some(s) = project.services.get(&n) {
            todo.extend(s.depends_on.keys().cloned());
        }
        keep.push(n);
    }
    project.services.retain(|k, _| keep.contains(k));
    Ok(())
}

fn lines(items: impl IntoIterator<Item = String>) -> String {
    items.into_iter().map(|s| s + "\n").collect()
}

/// Renders the requested view of `project`.
pub fn render(project: &Project, args: &ConfigArgs) -> anyhow::Result<String> {
    if args.services {
        return Ok(lines(project.services.keys().cloned()));
    }
    if args.volumes {
        return Ok(lines(project.volumes.keys().cloned()));
    }
    if args.networks {
        return Ok(lines(project.networks.keys().cloned()));
    }
    if args.profiles {
        return Ok(lines(project.all_profiles()));
    }
    if args.images {
        return Ok(lines(project.services.iter().map(|(name, s)| {
            s.image
                .clone()
                .unwrap_or_else(|| format!("{}-{name}", project.name))
        })));
    }
    if let Some(h) = &args.hash {
        let mut out = Vec::new();
        for (name, s) in &project.services {
            if h == "*" || h.split(',').any(|x| x == name) {
                out.push(format!("{name} {}", s.config_hash()));
            }
        }
        if out.is_empty() {
            anyhow::bail!("no such service: {h}");
        }
        return Ok(lines(out));
    }
    let value = project.to_compose_json();
    Ok(match args.format {
        Format::Yaml => berth_compose::emit::to_yaml(&value),
        Format::Json => {
            let mut s = serde_json::to_string_pretty(&value)
                .context("cannot encode the project as JSON")?;
            s.push('\n');
            s
        }
    })
}
