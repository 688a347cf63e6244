//! `berth version` and `berth info`.

use std::io::Write;

use super::GlobalArgs;
use crate::api::{Info, Version, paths};

/// How a command prints its result.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// For people.
    #[default]
    Human,
    /// One JSON document (or, for streams, one per line).
    Json,
}

/// Arguments of `berth version`.
#[derive(Debug, clap::Args)]
pub struct VersionArgs {
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    format: Format,
}

/// Arguments of `berth info`.
#[derive(Debug, clap::Args)]
pub struct InfoArgs {
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    format: Format,
}

/// Prints the client's and the daemon's versions. In the human format the client's
/// part comes first, so it shows even when no daemon can be reached.
pub fn version(global: &GlobalArgs, args: &VersionArgs) -> anyhow::Result<()> {
    let client = Version::current();
    let fetch = || -> anyhow::Result<Version> {
        super::block_on(async { Ok(global.endpoint()?.get(paths::VERSION).await?) })
    };
    let mut out = std::io::stdout().lock();
    match args.format {
        Format::Json => {
            let server = fetch()?;
            let doc = serde_json::json!({ "client": client, "server": server });
            writeln!(out, "{doc}")?;
        }
        Format::Human => {
            write_version(&mut out, "Client", &client)?;
            out.flush()?;
            write_version(&mut out, "Server", &fetch()?)?;
        }
    }
    Ok(())
}

fn write_version(out: &mut impl Write, title: &str, v: &Version) -> std::io::Result<()> {
    writeln!(out, "{title}:")?;
    writeln!(out, " Version:      {}", v.version)?;
    writeln!(out, " API version:  {}", v.api_version)?;
    writeln!(out, " OS/Arch:      {}/{}", v.os, v.arch)
}

/// Prints the daemon's paths, pid, uptime and object counts.
pub fn info(global: &GlobalArgs, args: &InfoArgs) -> anyhow::Result<()> {
    let info: Info = super::block_on(async { Ok(global.endpoint()?.get(paths::INFO).await?) })?;
    let mut out = std::io::stdout().lock();
    match args.format {
        Format::Json => writeln!(out, "{}", serde_json::to_string(&info)?)?,
        Format::Human => {
            let uptime = std::time::Duration::from_secs(info.uptime_seconds as u64);
            writeln!(out, "Server version:  {}", info.version)?;
            writeln!(out, "Root:            {}", info.root)?;
            writeln!(out, "Run dir:         {}", info.run_dir)?;
            writeln!(out, "Socket:          {}", info.socket)?;
            writeln!(out, "Pid:             {}", info.pid)?;
            writeln!(out, "Started:         {}", info.started_at)?;
            writeln!(
                out,
                "Uptime:          {}",
                humantime::format_duration(uptime)
            )?;
            writeln!(out, "Stacks:          {}", info.counts.stacks)?;
            writeln!(out, "Containers:      {}", info.counts.containers)?;
            writeln!(out, "Networks:        {}", info.counts.networks)?;
            writeln!(out, "Volumes:         {}", info.counts.volumes)?;
        }
    }
    Ok(())
}
