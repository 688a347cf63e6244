//! Health checks as Docker runs them: the test is exec'd in the running container (`CMD`
//! directly, `CMD-SHELL` through `/bin/sh -c`) every `interval` (every `start_interval` during
//! the start period), a run longer than `timeout` is killed and fails; exit code 0 passes.
//! The status starts as `starting`, becomes `healthy` on the first pass and `unhealthy` after
//! `retries` failures in a row; failures inside the start period do not count while the
//! status is still `starting`. The last five results are kept, their output cut to 4 KiB.
//!
//! [`from_image`] turns an image's `HEALTHCHECK` into the engine's [`HealthCheck`];
//! [`apply`] is the state machine; [`probe`] runs one check.

use std::os::fd::OwnedFd;
use std::time::Duration;

use tokio::io::AsyncReadExt;

use berth_runtime::{Container, ExecRequest, ExecStdio, RuntimeError};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::containers::{Health, HealthCheck, HealthResult, HealthStatus};

/// Results kept per container.
pub const LOG_LEN: usize = 5;
/// Bytes of output kept per result.
pub const OUTPUT_MAX: usize = 4096;

/// The image's `HEALTHCHECK` (Docker's config) as a check to run: `None` when it has none,
/// an empty test (inherit: nothing to inherit here) or `NONE`. Zero or absent durations and
/// retries take Docker's defaults.
pub fn from_image(h: &berth_image::Healthcheck) -> Option<HealthCheck> {
    match h.test.first().map(String::as_str) {
        Some("CMD" | "CMD-SHELL") => {}
        _ => return None,
    }
    let mut check = HealthCheck::new(h.test.clone());
    let ns = |v: Option<i64>, default: Duration| match v {
        Some(n) if n > 0 => Duration::from_nanos(n as u64),
        _ => default,
    };
    check.interval = ns(h.interval, check.interval);
    check.timeout = ns(h.timeout, check.timeout);
    check.start_period = ns(h.start_period, check.start_period);
    check.start_interval = ns(h.start_interval, check.start_interval);
    if let Some(r) = h.retries.filter(|r| *r > 0) {
        check.retries = u32::try_from(r).unwrap_or(u32::MAX);
    }
    Some(check)
}

/// The arguments a test runs as, or `None` for `NONE` or an unknown form.
pub fn argv(test: &[String]) -> Option<Vec<String>> {
    match test.split_first() {
        Some((kind, rest)) if kind == "CMD" && !rest.is_empty() => Some(rest.to_vec()),
        Some((kind, rest)) if kind == "CMD-SHELL" && !rest.is_empty() => {
            Some(vec!["/bin/sh".into(), "-c".into(), rest.join(" ")])
        }
        _ => None,
    }
}

/// The state a container's health starts in (at every start): `starting`, no failures, the
/// log of earlier runs kept.
pub fn starting(previous: Option<Health>) -> Health {
    Health {
        status: HealthStatus::Starting,
        failing_streak: 0,
        log: previous.map(|h| h.log).unwrap_or_default(),
    }
}

/// Whether a container started `since` ago is in its start period.
pub fn in_start_period(check: &HealthCheck, since: Duration) -> bool {
    since < check.start_period
}

/// The time to wait before the next check.
pub fn next_interval(check: &HealthCheck, since_start: Duration) -> Duration {
    if in_start_period(check, since_start) && !check.start_interval.is_zero() {
        check.start_interval
    } else {
        check.interval
    }
}

/// Records `result` in `health`; returns the new status when it changed.
pub fn apply(
    health: &mut Health,
    result: HealthResult,
    check: &HealthCheck,
    in_start_period: bool,
) -> Option<HealthStatus> {
    let before = health.status;
    let passed = result.exit_code == 0;
    health.log.push(result);
    if health.log.len() > LOG_LEN {
        let extra = health.log.len() - LOG_LEN;
        health.log.drain(..extra);
    }
    if passed {
        health.failing_streak = 0;
        health.status = HealthStatus::Healthy;
    } else if !(in_start_period && health.status == HealthStatus::Starting) {
        health.failing_streak += 1;
        if health.failing_streak >= check.retries.max(1) {
            health.status = HealthStatus::Unhealthy;
        }
    }
    (health.status != before).then_some(health.status)
}

/// The last [`OUTPUT_MAX`] bytes of `out`, cut at a character boundary.
fn tail(out: &[u8]) -> String {
    let text = String::from_utf8_lossy(out);
    if text.len() <= OUTPUT_MAX {
        return text.into_owned();
    }
    let mut start = text.len() - OUTPUT_MAX;
    while !text.is_char_boundary(start) {
        start += 1;
    }
    text[start..].to_owned()
}

/// Runs the check once in `container` (which must be running) and reports the result; the
/// process is killed when it outlives `check.timeout`. Blocking work runs on tokio's blocking
/// pool.
pub async fn probe(container: Container, check: &HealthCheck) -> HealthResult {
    let start = berth_runtime::clock::now_rfc3339();
    let outcome = run_probe(container, check).await;
    let (exit_code, output) = match outcome {
        Ok((code, out)) => (code, tail(&out)),
        Err(ProbeFailure::TimedOut) => (
            -1,
            format!(
                "Health check exceeded timeout ({})",
                humantime::format_duration(check.timeout)
            ),
        ),
        Err(ProbeFailure::Runtime(e)) => (-1, tail(e.to_string().as_bytes())),
        Err(ProbeFailure::NoTest) => (-1, "health check has no command".to_owned()),
    };
    HealthResult {
        start,
        end: berth_runtime::clock::now_rfc3339(),
        exit_code,
        output,
    }
}

enum ProbeFailure {
    TimedOut,
    Runtime(RuntimeError),
    NoTest,
}

async fn run_probe(
    container: Container,
    check: &HealthCheck,
) -> Result<(i32, Vec<u8>), ProbeFailure> {
    let args = argv(&check.test).ok_or(ProbeFailure::NoTest)?;
    let started = tokio::task::spawn_blocking(move || {
        let argv: Vec<&str> = args.iter().map(String::as_str).collect();
        let process = container.process(&argv)?;
        let request = ExecRequest {
            process,
            user: None,
            tty: false,
        };
        container.exec(&request, ExecStdio::Piped)
    })
    .await;
    let handle = match started {
        Ok(Ok(h)) => h,
        Ok(Err(e)) => return Err(ProbeFailure::Runtime(e)),
        Err(join) => {
            return Err(ProbeFailure::Runtime(RuntimeError::Control {
                path: "health check exec".into(),
                source: std::io::Error::other(join.to_string()),
            }));
        }
    };
    let mut handle = handle;
    let pid = handle.pid();
    let (stdout, stderr) = (handle.child().stdout.take(), handle.child().stderr.take());
    // The output is read on the runtime (no thread per running check); only the final,
    // short wait for the exec helper goes to the blocking pool.
    let output = async {
        let (out, err) = tokio::join!(read_pipe(stdout), read_pipe(stderr));
        let mut out = out?;
        out.extend_from_slice(&err?);
        Ok::<_, std::io::Error>(out)
    };
    let output = match tokio::time::timeout(check.timeout, output).await {
        Ok(read) => read.map_err(|source| {
            ProbeFailure::Runtime(RuntimeError::Control {
                path: "health check output".into(),
                source,
            })
        }),
        Err(_) => {
            // Not ours to reap (the exec helper is its parent): a signal is all it takes;
            // the helper then exits and is waited for below.
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
            Err(ProbeFailure::TimedOut)
        }
    };
    let waited = tokio::task::spawn_blocking(move || handle.wait()).await;
    let out = output?;
    match waited {
        Ok(Ok(code)) => Ok((code, out)),
        Ok(Err(e)) => Err(ProbeFailure::Runtime(e)),
        Err(join) => Err(ProbeFailure::Runtime(RuntimeError::Control {
            path: "health check exec".into(),
            source: std::io::Error::other(join.to_string()),
        })),
    }
}

/// Reads a child's output pipe to its end on the runtime, keeping the last [`OUTPUT_MAX`]
/// bytes (and a little more, cut later at a character boundary).
async fn read_pipe(pipe: Option<impl Into<OwnedFd>>) -> std::io::Result<Vec<u8>> {
    let Some(pipe) = pipe else {
        return Ok(Vec::new());
    };
    let mut rx = tokio::net::unix::pipe::Receiver::from_owned_fd(pipe.into())?;
    let mut kept = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = rx.read(&mut buf).await?;
        if n == 0 {
            return Ok(kept);
        }
        kept.extend_from_slice(&buf[..n]);
        if kept.len() > 2 * OUTPUT_MAX {
            kept.drain(..kept.len() - OUTPUT_MAX - 8);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(code: i32) -> HealthResult {
        HealthResult {
            start: "s".into(),
            end: "e".into(),
            exit_code: code,
            output: String::new(),
        }
    }

    fn check(retries: u32) -> HealthCheck {
        let mut c = HealthCheck::new(vec!["CMD".into(), "true".into()]);
        c.retries = retries;
        c
    }

    #[test]
    fn status_goes_healthy_on_a_pass_and_unhealthy_after_retries_failures() {
        let c = check(2);
        let mut h = starting(None);
        assert_eq!(apply(&mut h, result(1), &c, false), None);
        assert_eq!(h.failing_streak, 1);
        assert_eq!(
            apply(&mut h, result(0), &c, false),
            Some(HealthStatus::Healthy)
        );
        assert_eq!(h.failing_streak, 0);
        assert_eq!(apply(&mut h, result(1), &c, false), None);
        assert_eq!(
            apply(&mut h, result(-1), &c, false),
            Some(HealthStatus::Unhealthy)
        );
        assert_eq!(h.failing_streak, 2);
        assert_eq!(apply(&mut h, result(1), &c, false), None);
        assert_eq!(h.failing_streak, 3);
    }

    #[test]
    fn failures_in_the_start_period_do_not_count_until_a_pass() {
        let c = check(1);
        let mut h = starting(None);
        assert_eq!(apply(&mut h, result(1), &c, true), None);
        assert_eq!((h.status, h.failing_streak), (HealthStatus::Starting, 0));
        assert_eq!(
            apply(&mut h, result(0), &c, true),
            Some(HealthStatus::Healthy)
        );
        assert_eq!(
            apply(&mut h, result(1), &c, true),
            Some(HealthStatus::Unhealthy)
        );
    }

    #[test]
    fn the_log_keeps_the_last_five_results() {
        let c = check(3);
        let mut h = starting(None);
        for code in 0..8 {
            apply(&mut h, result(code), &c, false);
        }
        let codes: Vec<i32> = h.log.iter().map(|r| r.exit_code).collect();
        assert_eq!(codes, [3, 4, 5, 6, 7]);
        let again = starting(Some(h));
        assert_eq!(again.log.len(), 5);
        assert_eq!(again.status, HealthStatus::Starting);
    }

    #[test]
    fn output_keeps_its_last_4_kib() {
        let mut out = vec![b'a'; 5000];
        out.extend_from_slice(b"END");
        let t = tail(&out);
        assert_eq!(t.len(), OUTPUT_MAX);
        assert!(t.ends_with("aEND"));
        assert_eq!(tail("é".repeat(3000).as_bytes()).len(), 4096);
    }

    #[test]
    fn tests_become_argument_lists() {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert_eq!(argv(&s(&["CMD", "cat", "/x"])), Some(s(&["cat", "/x"])));
        assert_eq!(
            argv(&s(&["CMD-SHELL", "test -f /x"])),
            Some(s(&["/bin/sh", "-c", "test -f /x"]))
        );
        assert_eq!(argv(&s(&["NONE"])), None);
        assert_eq!(argv(&s(&["CMD"])), None);
    }

    #[test]
    fn image_health_checks_take_docker_defaults() {
        let h = berth_image::Healthcheck {
            test: vec!["CMD-SHELL".into(), "true".into()],
            interval: Some(2_000_000_000),
            timeout: None,
            start_period: Some(0),
            start_interval: None,
            retries: Some(5),
        };
        let c = from_image(&h).unwrap();
        assert_eq!(c.interval, Duration::from_secs(2));
        assert_eq!(c.timeout, Duration::from_secs(30));
        assert_eq!(c.start_period, Duration::ZERO);
        assert_eq!(c.retries, 5);
        let none = berth_image::Healthcheck {
            test: vec!["NONE".into()],
            ..Default::default()
        };
        assert_eq!(from_image(&none), None);
        assert_eq!(from_image(&berth_image::Healthcheck::default()), None);
    }

    #[test]
    fn the_start_interval_applies_only_in_the_start_period() {
        let mut c = check(3);
        c.interval = Duration::from_secs(30);
        c.start_period = Duration::from_secs(10);
        c.start_interval = Duration::from_secs(1);
        assert_eq!(
            next_interval(&c, Duration::from_secs(2)),
            Duration::from_secs(1)
        );
        assert_eq!(
            next_interval(&c, Duration::from_secs(11)),
            Duration::from_secs(30)
        );
    }
}
