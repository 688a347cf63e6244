//! How `berth ps` and `berth inspect` show containers (Docker's columns and field names).

use std::fmt::Write as _;
use std::time::{Duration, SystemTime};

use berth_engine::containers::{
    ContainerInfo, Health, HealthCheck, HealthStatus, Published, RestartPolicy,
};
use berth_runtime::Status;
use serde_json::{Value, json};

/// Docker's rough durations: `3 seconds`, `About a minute`, `5 minutes`, `2 hours`, `3 days`.
pub fn human_duration(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0 => "Less than a second".into(),
        1 => "1 second".into(),
        2..=59 => format!("{s} seconds"),
        60..=119 => "About a minute".into(),
        120..=3599 => format!("{} minutes", s / 60),
        3600..=7199 => "About an hour".into(),
        7200..=172_799 => format!("{} hours", s / 3600),
        _ => format!("{} days", s / 86_400),
    }
}

fn since(rfc3339: Option<&str>) -> Duration {
    rfc3339
        .and_then(|t| humantime::parse_rfc3339_weak(t.trim_end_matches('Z')).ok())
        .and_then(|t| SystemTime::now().duration_since(t).ok())
        .unwrap_or_default()
}

/// `running`, `exited`, `created`, `paused` or `dead` (runtime state lost).
pub fn state_name(c: &ContainerInfo) -> &'static str {
    match c.state.as_ref().map(|s| s.status) {
        Some(Status::Running) => "running",
        Some(Status::Paused) => "paused",
        Some(Status::Created | Status::Creating) => "created",
        Some(Status::Stopped) => "exited",
        None => "dead",
    }
}

/// `Up 3 seconds`, `Exited (0) 2 minutes ago`, `Created`.
pub fn status(c: &ContainerInfo) -> String {
    let Some(s) = &c.state else {
        return "Dead".into();
    };
    let health = match c.health.as_ref().map(|h| h.status) {
        Some(HealthStatus::Starting) => " (health: starting)",
        Some(HealthStatus::Healthy) => " (healthy)",
        Some(HealthStatus::Unhealthy) => " (unhealthy)",
        None => "",
    };
    match s.status {
        Status::Running => format!(
            "Up {}{health}",
            human_duration(since(s.started_at.as_deref()))
        ),
        Status::Paused => format!(
            "Up {} (Paused)",
            human_duration(since(s.started_at.as_deref()))
        ),
        Status::Created | Status::Creating => "Created".into(),
        Status::Stopped => format!(
            "Exited ({}) {} ago",
            s.exit_code.unwrap_or(0),
            human_duration(since(s.finished_at.as_deref()))
        ),
    }
}

/// `0.0.0.0:8080->80/tcp, 127.0.0.1:9000->90/udp`.
pub fn ports(ports: &[Published]) -> String {
    ports
        .iter()
        .map(|p| {
            let ip = p.host_ip.map_or("0.0.0.0".to_string(), |ip| ip.to_string());
            format!("{ip}:{}->{}/{}", p.host_port, p.container_port, p.protocol)
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn command(c: &ContainerInfo) -> String {
    let cmd = c.doc.command.join(" ");
    if cmd.chars().count() > 20 {
        format!("\"{}…\"", cmd.chars().take(19).collect::<String>())
    } else {
        format!("\"{cmd}\"")
    }
}

/// The `ps` table.
pub fn ps_table(list: &[ContainerInfo]) -> String {
    let rows: Vec<[String; 7]> = list
        .iter()
        .map(|c| {
            [
                c.doc.id[..12].to_string(),
                c.doc.image.clone(),
                command(c),
                format!(
                    "{} ago",
                    human_duration(since(Some(c.doc.created.as_str())))
                ),
                status(c),
                ports(&c.doc.ports),
                c.doc.name.clone(),
            ]
        })
        .collect();
    let header = [
        "CONTAINER ID",
        "IMAGE",
        "COMMAND",
        "CREATED",
        "STATUS",
        "PORTS",
        "NAMES",
    ];
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for r in &rows {
        for (w, cell) in widths.iter_mut().zip(r) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: Vec<&str>| {
        let last = cells.len() - 1;
        for (i, cell) in cells.iter().enumerate() {
            if i == last {
                let _ = writeln!(out, "{cell}");
            } else {
                let pad = widths[i] + 3 - cell.chars().count();
                let _ = write!(out, "{cell}{}", " ".repeat(pad));
            }
        }
    };
    line(header.to_vec());
    for r in &rows {
        line(r.iter().map(String::as_str).collect());
    }
    out
}

/// One `ps --format json` line (Docker's keys).
pub fn ps_json(c: &ContainerInfo) -> Value {
    json!({
        "ID": &c.doc.id[..12],
        "Image": c.doc.image,
        "Command": command(c),
        "CreatedAt": c.doc.created,
        "State": state_name(c),
        "Status": status(c),
        "Ports": ports(&c.doc.ports),
        "Names": c.doc.name,
        "Networks": c.doc.network.name(),
    })
}

/// `State.Health` as Docker shows it.
fn health_json(h: &Health) -> Value {
    json!({
        "Status": h.status.as_str(),
        "FailingStreak": h.failing_streak,
        "Log": h.log.iter().map(|r| json!({
            "Start": r.start,
            "End": r.end,
            "ExitCode": r.exit_code,
            "Output": r.output,
        })).collect::<Vec<_>>(),
    })
}

/// `Config.Healthcheck` as Docker shows it (durations in nanoseconds).
fn healthcheck_json(h: &HealthCheck) -> Value {
    let ns = |d: Duration| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
    json!({
        "Test": h.test,
        "Interval": ns(h.interval),
        "Timeout": ns(h.timeout),
        "StartPeriod": ns(h.start_period),
        "StartInterval": ns(h.start_interval),
        "Retries": h.retries,
    })
}

/// `HostConfig.RestartPolicy` as Docker shows it.
fn restart_json(p: RestartPolicy) -> Value {
    let (name, max) = match p {
        RestartPolicy::No => ("no", 0),
        RestartPolicy::Always => ("always", 0),
        RestartPolicy::UnlessStopped => ("unless-stopped", 0),
        RestartPolicy::OnFailure { max_retries } => ("on-failure", max_retries.unwrap_or(0)),
    };
    json!({ "Name": name, "MaximumRetryCount": max })
}

/// One `inspect` object (a subset of Docker's shape).
pub fn inspect_json(c: &ContainerInfo) -> Value {
    let s = c.state.as_ref();
    let port_map: serde_json::Map<String, Value> = c
        .doc
        .ports
        .iter()
        .map(|p| {
            (
                format!("{}/{}", p.container_port, p.protocol),
                json!([{
                    "HostIp": p.host_ip.map_or("0.0.0.0".to_string(), |ip| ip.to_string()),
                    "HostPort": p.host_port.to_string(),
                }]),
            )
        })
        .collect();
    json!({
        "Id": c.doc.id,
        "Name": format!("/{}", c.doc.name),
        "Created": c.doc.created,
        "Image": c.doc.image_id,
        "Path": c.doc.command.first(),
        "Args": c.doc.command.get(1..).unwrap_or_default(),
        "State": {
            "Status": state_name(c),
            "Running": c.is_running(),
            "Paused": s.is_some_and(|s| s.status == Status::Paused),
            "OOMKilled": s.is_some_and(|s| s.oom_killed),
            "Pid": s.and_then(|s| s.pid).unwrap_or(0),
            "ExitCode": s.and_then(|s| s.exit_code).unwrap_or(0),
            "StartedAt": s.and_then(|s| s.started_at.clone()),
            "FinishedAt": s.and_then(|s| s.finished_at.clone()),
            "Health": c.health.as_ref().map(health_json),
        },
        "RestartCount": c.restart_count,
        "LogPath": c.doc.log_path,
        "Config": {
            "Hostname": c.doc.hostname,
            "Image": c.doc.image,
            "Cmd": c.doc.command,
            "StopSignal": c.doc.stop_signal,
            "StopTimeout": c.doc.stop_timeout,
            "Healthcheck": c.doc.healthcheck.as_ref().map(healthcheck_json),
        },
        "HostConfig": {
            "NetworkMode": c.doc.network.name(),
            "AutoRemove": c.doc.auto_remove,
            "RestartPolicy": restart_json(c.doc.restart),
        },
        "NetworkSettings": {
            "IPAddress": c.doc.ip.clone().unwrap_or_default(),
            "Ports": port_map,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_like_docker() {
        assert_eq!(human_duration(Duration::from_secs(0)), "Less than a second");
        assert_eq!(human_duration(Duration::from_secs(5)), "5 seconds");
        assert_eq!(human_duration(Duration::from_secs(90)), "About a minute");
        assert_eq!(human_duration(Duration::from_secs(600)), "10 minutes");
        assert_eq!(human_duration(Duration::from_secs(7300)), "2 hours");
        assert_eq!(human_duration(Duration::from_secs(3 * 86_400)), "3 days");
    }

    #[test]
    fn ports_render_host_and_container_sides() {
        let p = Published {
            container_id: "c".into(),
            protocol: berth_engine::containers::Protocol::Tcp,
            host_ip: Some("127.0.0.1".parse().unwrap()),
            host_port: 8080,
            container_ip: "10.1.0.2".parse().unwrap(),
            container_port: 80,
        };
        assert_eq!(ports(&[p]), "127.0.0.1:8080->80/tcp");
    }
}
