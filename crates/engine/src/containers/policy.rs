//! What a container asks of its supervisor and its networks: the restart policy, the health
//! check and its last results, and the extra network attachments (aliases, fixed addresses).
//!
//! These are the shared vocabulary of `berth run` (Docker's flags), the stack reconciler
//! (Compose's fields) and the daemon's supervisor, which acts on them.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// When the supervisor starts an exited container again (`--restart`, Compose `restart`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "name")]
pub enum RestartPolicy {
    /// Never (the default).
    #[default]
    No,
    /// Always, whatever the exit code; also after a daemon restart, unless the user stopped it.
    Always,
    /// When the exit code is not 0, at most `max_retries` times when given.
    OnFailure {
        /// Restarts allowed (`on-failure:N`); `None`: no limit.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        max_retries: Option<u32>,
    },
    /// Like `always`, except after the user stopped it (also across daemon restarts).
    UnlessStopped,
}

/// A restart policy that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid restart policy {0:?}: expected no, always, unless-stopped, on-failure or on-failure:N"
)]
pub struct InvalidRestartPolicy(pub String);

impl RestartPolicy {
    /// Parses Docker's and Compose's syntax: `no`, `always`, `unless-stopped`, `on-failure`,
    /// `on-failure:N`.
    pub fn parse(s: &str) -> Result<RestartPolicy, InvalidRestartPolicy> {
        let bad = || InvalidRestartPolicy(s.to_owned());
        match s.split_once(':') {
            None => match s {
                "" | "no" | "none" => Ok(RestartPolicy::No),
                "always" => Ok(RestartPolicy::Always),
                "unless-stopped" => Ok(RestartPolicy::UnlessStopped),
                "on-failure" => Ok(RestartPolicy::OnFailure { max_retries: None }),
                _ => Err(bad()),
            },
            Some(("on-failure", n)) => Ok(RestartPolicy::OnFailure {
                max_retries: Some(n.parse().map_err(|_| bad())?),
            }),
            Some(_) => Err(bad()),
        }
    }

    /// Whether a container that exited with `code` (not stopped by the user) is restarted,
    /// after `restarts` restarts already made.
    pub fn should_restart(&self, code: i32, restarts: u32) -> bool {
        match self {
            RestartPolicy::No => false,
            RestartPolicy::Always | RestartPolicy::UnlessStopped => true,
            RestartPolicy::OnFailure { max_retries } => {
                code != 0 && max_retries.is_none_or(|max| restarts < max)
            }
        }
    }
}

/// A health check as the supervisor runs it (`--health-*`, Compose `healthcheck`, the
/// image's `HEALTHCHECK`), with Docker's defaults filled in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthCheck {
    /// `["CMD", prog, args…]` (exec'd directly) or `["CMD-SHELL", script]` (`/bin/sh -c`).
    pub test: Vec<String>,
    /// Time between checks (default 30 s).
    #[serde(with = "secs_f64")]
    pub interval: Duration,
    /// Time one check may take before it counts as failed (default 30 s).
    #[serde(with = "secs_f64")]
    pub timeout: Duration,
    /// Consecutive failures that make the container unhealthy (default 3).
    pub retries: u32,
    /// Failures during this time after start do not count (default 0).
    #[serde(with = "secs_f64")]
    pub start_period: Duration,
    /// Time between checks during the start period (default 5 s).
    #[serde(with = "secs_f64")]
    pub start_interval: Duration,
}

impl HealthCheck {
    /// Docker's defaults for everything but the test.
    pub fn new(test: Vec<String>) -> HealthCheck {
        HealthCheck {
            test,
            interval: Duration::from_secs(30),
            timeout: Duration::from_secs(30),
            retries: 3,
            start_period: Duration::ZERO,
            start_interval: Duration::from_secs(5),
        }
    }
}

/// Durations as fractional seconds in documents (`1.5`), readable and exact to the nanosecond.
mod secs_f64 {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(d.as_secs_f64())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let secs = f64::deserialize(d)?;
        Duration::try_from_secs_f64(secs).map_err(serde::de::Error::custom)
    }
}

/// A container's health as `ps` and `inspect` show it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HealthStatus {
    /// Checks run, none has passed yet (still within the start period or the retries).
    Starting,
    /// The last check passed.
    Healthy,
    /// `retries` checks in a row failed.
    Unhealthy,
}

impl HealthStatus {
    /// `starting`, `healthy`, `unhealthy`.
    pub fn as_str(&self) -> &'static str {
        match self {
            HealthStatus::Starting => "starting",
            HealthStatus::Healthy => "healthy",
            HealthStatus::Unhealthy => "unhealthy",
        }
    }
}

/// One run of a health check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthResult {
    /// When it started, RFC 3339.
    pub start: String,
    /// When it ended, RFC 3339.
    pub end: String,
    /// Its exit code (`-1` when it timed out or could not run).
    pub exit_code: i32,
    /// The end of its output (at most 4 KiB, as Docker keeps).
    pub output: String,
}

/// A container's health: its status, the current run of failures and the last results.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Health {
    /// The status.
    pub status: HealthStatus,
    /// Failed checks in a row.
    pub failing_streak: u32,
    /// The last results, oldest first (at most 5, as Docker keeps).
    pub log: Vec<HealthResult>,
}

/// One more network a container joins besides its first (`docker network connect`, a
/// Compose service's further `networks:`), or the settings of its first.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct NetworkAttachment {
    /// The network's name.
    pub network: String,
    /// Further names the container answers to on that network (its name always does).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
    /// A fixed IPv4 address within the network's subnet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipv4_address: Option<Ipv4Addr>,
    /// A fixed IPv6 address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipv6_address: Option<Ipv6Addr>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restart_policies_parse_as_docker_spells_them() {
        assert_eq!(RestartPolicy::parse("no"), Ok(RestartPolicy::No));
        assert_eq!(RestartPolicy::parse("always"), Ok(RestartPolicy::Always));
        assert_eq!(
            RestartPolicy::parse("on-failure:3"),
            Ok(RestartPolicy::OnFailure {
                max_retries: Some(3)
            })
        );
        assert!(RestartPolicy::parse("on-failure:x").is_err());
        assert!(RestartPolicy::parse("sometimes").is_err());
    }

    #[test]
    fn on_failure_stops_after_its_retries_and_ignores_success() {
        let p = RestartPolicy::OnFailure {
            max_retries: Some(2),
        };
        assert!(p.should_restart(1, 1));
        assert!(!p.should_restart(1, 2));
        assert!(!p.should_restart(0, 0));
        assert!(RestartPolicy::Always.should_restart(0, 100));
        assert!(!RestartPolicy::No.should_restart(1, 0));
    }

    #[test]
    fn health_checks_round_trip_through_json() {
        let mut h = HealthCheck::new(vec!["CMD-SHELL".into(), "true".into()]);
        h.interval = Duration::from_millis(1500);
        let json = serde_json::to_string(&h).unwrap();
        assert!(json.contains("\"interval\":1.5"), "{json}");
        assert_eq!(serde_json::from_str::<HealthCheck>(&json).unwrap(), h);
    }
}
