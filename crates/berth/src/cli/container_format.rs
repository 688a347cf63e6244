//! How `berth ps` and `berth inspect` show containers (Docker's columns and field names).

use std::fmt::Write as _;
use std::time::{Duration, SystemTime};

use serde_json::{Value, json};

use crate::api::containers::{Container, ContainerHealth, Healthcheck, Port};

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

/// `5 seconds ago` for a creation time in RFC 3339, as `ps` shows it.
pub fn ago(rfc3339: &str) -> String {
    format!("{} ago", human_duration(since(Some(rfc3339))))
}

fn since(rfc3339: Option<&str>) -> Duration {
    rfc3339
        .and_then(|t| humantime::parse_rfc3339_weak(t.trim_end_matches('Z')).ok())
        .and_then(|t| SystemTime::now().duration_since(t).ok())
        .unwrap_or_default()
}

/// `Up 3 seconds`, `Up 5 minutes (healthy)`, `Exited (0) 2 minutes ago`, `Created`.
pub fn status(c: &Container) -> String {
    let s = &c.state;
    let health = match c.health.as_ref().map(|h| h.status.as_str()) {
        Some("starting") => " (health: starting)".to_owned(),
        Some(other) => format!(" ({other})"),
        None => String::new(),
    };
    match s.status.as_str() {
        "running" => format!(
            "Up {}{health}",
            human_duration(since(s.started_at.as_deref()))
        ),
        "paused" => format!(
            "Up {} (Paused)",
            human_duration(since(s.started_at.as_deref()))
        ),
        "created" => "Created".into(),
        "exited" => format!(
            "Exited ({}) {} ago",
            s.exit_code.unwrap_or(0),
            human_duration(since(s.finished_at.as_deref()))
        ),
        _ => "Dead".into(),
    }
}

/// `0.0.0.0:8080->80/tcp, 127.0.0.1:9000->90/udp`.
pub fn ports(ports: &[Port]) -> String {
    ports
        .iter()
        .map(|p| {
            let ip = p.host_ip.as_deref().unwrap_or("0.0.0.0");
            format!("{ip}:{}->{}/{}", p.host_port, p.container_port, p.protocol)
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn command(c: &Container) -> String {
    let cmd = c.command.join(" ");
    if cmd.chars().count() > 20 {
        format!("\"{}…\"", cmd.chars().take(19).collect::<String>())
    } else {
        format!("\"{cmd}\"")
    }
}

fn short(id: &str) -> &str {
    id.get(..12).unwrap_or(id)
}

/// The `ps` table.
pub fn ps_table(list: &[Container]) -> String {
    let rows: Vec<[String; 7]> = list
        .iter()
        .map(|c| {
            [
                short(&c.id).to_string(),
                c.image.clone(),
                command(c),
                ago(&c.created),
                status(c),
                ports(&c.ports),
                c.name.clone(),
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
pub fn ps_json(c: &Container) -> Value {
    let networks: Vec<&str> = c.networks.iter().map(|n| n.network.as_str()).collect();
    json!({
        "ID": short(&c.id),
        "Image": c.image,
        "Command": command(c),
        "CreatedAt": c.created,
        "State": c.state.status,
        "Status": status(c),
        "Ports": ports(&c.ports),
        "Names": c.name,
        "Networks": if networks.is_empty() { c.network_mode.clone() } else { networks.join(",") },
    })
}

/// `State.Health` as Docker shows it.
fn health_json(h: &ContainerHealth) -> Value {
    json!({
        "Status": h.status,
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
fn healthcheck_json(h: &Healthcheck) -> Value {
    json!({
        "Test": h.test,
        "Interval": h.interval,
        "Timeout": h.timeout,
        "StartPeriod": h.start_period,
        "StartInterval": h.start_interval,
        "Retries": h.retries,
    })
}

/// `HostConfig.RestartPolicy` as Docker shows it (`on-failure:3` → name and count).
fn restart_json(policy: &str) -> Value {
    let (name, max) = match policy.split_once(':') {
        Some((name, n)) => (name, n.parse::<u32>().unwrap_or(0)),
        None => (policy, 0),
    };
    json!({ "Name": name, "MaximumRetryCount": max })
}

/// One `inspect` object (a subset of Docker's shape).
pub fn inspect_json(c: &Container) -> Value {
    let s = &c.state;
    let port_map: serde_json::Map<String, Value> = c
        .ports
        .iter()
        .map(|p| {
            (
                format!("{}/{}", p.container_port, p.protocol),
                json!([{
                    "HostIp": p.host_ip.as_deref().unwrap_or("0.0.0.0"),
                    "HostPort": p.host_port.to_string(),
                }]),
            )
        })
        .collect();
    let networks: serde_json::Map<String, Value> = c
        .networks
        .iter()
        .map(|n| {
            (
                n.network.clone(),
                json!({
                    "Aliases": n.aliases,
                    "IPAMConfig": n.ipv4_address.as_ref().map(|ip| json!({ "IPv4Address": ip })),
                    "IPAddress": n.ip.clone().unwrap_or_default(),
                    "GlobalIPv6Address": n.ip6.clone().unwrap_or_default(),
                    "Gateway": n.gateway.clone().unwrap_or_default(),
                    "MacAddress": n.mac.clone().unwrap_or_default(),
                    "InterfaceName": n.ifname,
                }),
            )
        })
        .collect();
    json!({
        "Id": c.id,
        "Name": format!("/{}", c.name),
        "Created": c.created,
        "Image": c.image_id,
        "Path": c.command.first(),
        "Args": c.command.get(1..).unwrap_or_default(),
        "State": {
            "Status": s.status,
            "Running": s.running,
            "Paused": s.paused,
            "OOMKilled": s.oom_killed,
            "Pid": s.pid.unwrap_or(0),
            "ExitCode": s.exit_code.unwrap_or(0),
            "StartedAt": s.started_at,
            "FinishedAt": s.finished_at,
            "Health": c.health.as_ref().map(health_json),
        },
        "RestartCount": c.restart_count,
        "LogPath": c.log_path,
        "Config": {
            "Hostname": c.hostname,
            "Image": c.image,
            "Cmd": c.command,
            "StopSignal": c.stop_signal,
            "StopTimeout": c.stop_timeout,
            "Healthcheck": c.healthcheck.as_ref().map(healthcheck_json),
            "Labels": c.labels,
        },
        "HostConfig": {
            "NetworkMode": c.network_mode,
            "AutoRemove": c.auto_remove,
            "RestartPolicy": restart_json(&c.restart),
            "Dns": c.dns,
            "DnsSearch": c.dns_search,
            "ExtraHosts": c.extra_hosts,
        },
        "NetworkSettings": {
            "IPAddress": c.ip.clone().unwrap_or_default(),
            "Ports": port_map,
            "Networks": networks,
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
        let p = Port {
            protocol: "tcp".into(),
            host_ip: Some("127.0.0.1".into()),
            host_port: 8080,
            container_port: 80,
        };
        let all = Port {
            protocol: "udp".into(),
            host_ip: None,
            host_port: 53,
            container_port: 5353,
        };
        assert_eq!(
            ports(&[p, all]),
            "127.0.0.1:8080->80/tcp, 0.0.0.0:53->5353/udp"
        );
    }
}
