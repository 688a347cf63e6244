//! `berth top` and `berth stats`: a container's processes and its resource usage, as the
//! daemon reads them from the container's cgroup.

use std::fmt::Write as _;
use std::io::{IsTerminal, Write};
use std::time::Duration;

use super::GlobalArgs;
use super::container::{CliError, block_on, client};
use crate::api::containers::{Container, ContainerProcess, ContainerStats};
use crate::api::paths;
use crate::client::Client;

/// How far apart the two readings of one CPU percentage are.
const SAMPLE: Duration = Duration::from_millis(500);

/// `berth stats`.
#[derive(Debug, clap::Args)]
pub struct StatsArgs {
    /// Print one reading and exit (default: a new table every second until interrupted).
    #[arg(long)]
    no_stream: bool,
    /// Container names or ids (default: every running container).
    containers: Vec<String>,
}

/// Runs `berth top`: `UID PID PPID CMD`, one line per process.
pub fn top(global: &GlobalArgs, container: &str) -> Result<(), CliError> {
    let list: Vec<ContainerProcess> = block_on(async {
        let c = client(global).await?;
        Ok(c.get(&paths::fill(paths::CONTAINER_TOP, container)).await?)
    })?;
    println!("{:<8}{:<10}{:<10}CMD", "UID", "PID", "PPID");
    for p in list {
        println!("{:<8}{:<10}{:<10}{}", p.uid, p.pid, p.ppid, p.command);
    }
    Ok(())
}

/// `1.5KiB`, `12MiB`, `2GiB` (Docker's binary units).
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n}B")
    } else {
        format!("{value:.2}{}", UNITS[unit])
    }
}

/// CPU use between two readings, in percent of one CPU.
pub fn cpu_percent(before: &ContainerStats, after: &ContainerStats) -> f64 {
    let t = |s: &ContainerStats| crate::api::time::parse_wire(&s.read).ok();
    let wall = match (t(before), t(after)) {
        (Some(a), Some(b)) => b.duration_since(a).unwrap_or_default().as_nanos() as f64,
        _ => 0.0,
    };
    if wall <= 0.0 {
        return 0.0;
    }
    after.cpu_usage_ns.saturating_sub(before.cpu_usage_ns) as f64 / wall * 100.0
}

/// The host's memory, the limit shown for containers without one (as Docker does).
fn host_memory() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let kib: u64 = text
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kib * 1024)
}

/// One table of readings: `(container, before, after)`.
pub fn table(rows: &[(Container, ContainerStats, ContainerStats)]) -> String {
    let host = host_memory();
    let mut out = format!(
        "{:<15}{:<20}{:<9}{:<24}{:<9}PIDS\n",
        "CONTAINER ID", "NAME", "CPU %", "MEM USAGE / LIMIT", "MEM %"
    );
    for (c, before, after) in rows {
        let limit = after.memory_limit.or(host);
        let mem_percent = limit
            .filter(|l| *l > 0)
            .map_or(0.0, |l| after.memory_usage as f64 / l as f64 * 100.0);
        let usage = format!(
            "{} / {}",
            bytes(after.memory_usage),
            limit.map_or("-".to_string(), bytes)
        );
        let _ = writeln!(
            out,
            "{:<15}{:<20}{:<9}{:<24}{:<9}{}",
            c.id.get(..12).unwrap_or(&c.id),
            c.name,
            format!("{:.2}%", cpu_percent(before, after)),
            usage,
            format!("{mem_percent:.2}%"),
            after.pids_current
        );
    }
    out
}

async fn reading(c: &Client, names: &[String]) -> Result<Vec<ContainerStats>, CliError> {
    let mut out = Vec::new();
    for name in names {
        out.push(c.get(&paths::fill(paths::CONTAINER_STATS, name)).await?);
    }
    Ok(out)
}

/// Runs `berth stats`.
pub fn stats(global: &GlobalArgs, args: &StatsArgs) -> Result<(), CliError> {
    block_on(async {
        let c = client(global).await?;
        let containers: Vec<Container> = if args.containers.is_empty() {
            c.get(paths::CONTAINERS).await?
        } else {
            let mut list = Vec::new();
            for name in &args.containers {
                list.push(super::container::inspect_one(&c, name).await?);
            }
            list
        };
        let ids: Vec<String> = containers.iter().map(|c| c.id.clone()).collect();
        let mut before = reading(&c, &ids).await?;
        let clear = !args.no_stream && std::io::stdout().is_terminal();
        loop {
            tokio::time::sleep(if args.no_stream {
                SAMPLE
            } else {
                Duration::from_secs(1)
            })
            .await;
            let after = reading(&c, &ids).await?;
            let rows: Vec<_> = containers
                .iter()
                .cloned()
                .zip(before.into_iter().zip(after.iter().cloned()))
                .map(|(c, (b, a))| (c, b, a))
                .collect();
            let mut out = std::io::stdout().lock();
            if clear {
                let _ = write!(out, "\x1b[2J\x1b[H");
            }
            let _ = write!(out, "{}", table(&rows));
            let _ = out.flush();
            if args.no_stream {
                return Ok(());
            }
            before = after;
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reading(read: &str, cpu: u64) -> ContainerStats {
        ContainerStats {
            read: read.into(),
            cpu_usage_ns: cpu,
            memory_usage: 3 << 20,
            memory_limit: Some(12 << 20),
            pids_current: 2,
            pids_limit: None,
            io_read_bytes: 0,
            io_write_bytes: 0,
        }
    }

    #[test]
    fn sizes_and_cpu_read_like_docker() {
        assert_eq!(bytes(512), "512B");
        assert_eq!(bytes(1536), "1.50KiB");
        assert_eq!(bytes(3 << 20), "3.00MiB");
        let a = reading("2026-01-01T00:00:00Z", 0);
        let b = reading("2026-01-01T00:00:01Z", 250_000_000);
        assert!((cpu_percent(&a, &b) - 25.0).abs() < 1e-9);
        assert_eq!(cpu_percent(&b, &a), 0.0);
    }
}
