//! The supervisor's vocabulary on the wire: health checks asked for by `run` and the health
//! and check shown by `ps`/`inspect` (durations in nanoseconds, as Docker's API has them).

use std::time::Duration;

use berth_engine::containers::{Health, HealthCheck};

use crate::api::containers::{ContainerHealth, HealthLogEntry, Healthcheck};

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// The check a request asks for: `None` for `["NONE"]`; absent values take Docker's defaults,
/// an empty test stays empty (the engine takes the image's).
pub fn to_engine(h: &Healthcheck) -> Option<HealthCheck> {
    if h.test.first().is_some_and(|t| t == "NONE") {
        return None;
    }
    let mut check = HealthCheck::new(h.test.clone());
    let set = |target: &mut Duration, v: Option<u64>| {
        if let Some(ns) = v.filter(|n| *n > 0) {
            *target = Duration::from_nanos(ns);
        }
    };
    set(&mut check.interval, h.interval);
    set(&mut check.timeout, h.timeout);
    set(&mut check.start_period, h.start_period);
    set(&mut check.start_interval, h.start_interval);
    if let Some(r) = h.retries.filter(|r| *r > 0) {
        check.retries = r;
    }
    Some(check)
}

/// A container's check as `inspect` shows it.
pub fn check_to_wire(c: &HealthCheck) -> Healthcheck {
    Healthcheck {
        test: c.test.clone(),
        interval: Some(nanos(c.interval)),
        timeout: Some(nanos(c.timeout)),
        retries: Some(c.retries),
        start_period: Some(nanos(c.start_period)),
        start_interval: Some(nanos(c.start_interval)),
    }
}

/// A container's health as `ps` and `inspect` show it.
pub fn health_to_wire(h: &Health) -> ContainerHealth {
    ContainerHealth {
        status: h.status.as_str().to_owned(),
        failing_streak: h.failing_streak,
        log: h
            .log
            .iter()
            .map(|r| HealthLogEntry {
                start: r.start.clone(),
                end: r.end.clone(),
                exit_code: r.exit_code,
                output: r.output.clone(),
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_take_docker_defaults_and_none_disables() {
        let c = to_engine(&Healthcheck {
            test: vec!["CMD-SHELL".into(), "true".into()],
            interval: Some(200_000_000),
            retries: Some(2),
            ..Healthcheck::default()
        })
        .unwrap();
        assert_eq!(c.interval, Duration::from_millis(200));
        assert_eq!(c.timeout, Duration::from_secs(30));
        assert_eq!(c.retries, 2);
        assert_eq!(check_to_wire(&c).interval, Some(200_000_000));
        let none = Healthcheck {
            test: vec!["NONE".into()],
            ..Healthcheck::default()
        };
        assert_eq!(to_engine(&none), None);
    }
}
