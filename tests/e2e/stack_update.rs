//! Rolling updates as a user sees them: a start-first update of three replicas keeps a
//! healthy replica at every sample of a loop probing `stack ps`, names stay
//! `<project>-<service>-<n>`; a new configuration whose health check never passes is rolled
//! back (`failure_action: rollback`), `up` fails naming the service and the old replicas
//! keep serving.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::run::Env;

use crate::stack::{project, stack};

/// `stack ps -a --format json` as (name, state, health, id), sorted by name.
fn replicas(e: &Env, dir: &Path) -> Vec<(String, String, String, String)> {
    let (code, out, err) = stack(e, dir, &["stack", "ps", "-a", "--format", "json"]);
    assert_eq!(code, Some(0), "stack ps: {err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let mut list: Vec<_> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let s = |k: &str| c[k].as_str().unwrap_or_default().to_owned();
            (s("Name"), s("State"), s("Health"), s("ID"))
        })
        .collect();
    list.sort();
    list
}

fn yaml(version: &str, test: &str, order: &str) -> String {
    format!(
        r#"
name: rolling
services:
  web:
    image: busybox:latest
    command: ["sh", "-c", "sleep 0.3; touch /tmp/ok; exec sleep 1000"]
    environment: {{VERSION: "{version}"}}
    stop_grace_period: 1s
    healthcheck:
      test: {test}
      interval: 100ms
      start_period: 1s
      start_interval: 100ms
      retries: 2
    deploy:
      replicas: 3
      update_config: {{parallelism: 3, order: {order}, failure_action: rollback}}
"#
    )
}

const PASSES: &str = r#"["CMD", "test", "-f", "/tmp/ok"]"#;
const NEVER: &str = r#"["CMD", "false"]"#;

const NAMES: [&str; 3] = ["rolling-web-1", "rolling-web-2", "rolling-web-3"];

fn version(e: &Env, name: &str) -> String {
    e.ok(&["exec", name, "sh", "-c", "echo $VERSION"])
        .trim()
        .to_owned()
}

/// Runs `up -d` while another thread samples `stack ps` every ~50 ms; returns the result
/// of `up` and the samples in which no replica was running and healthy.
fn up_while_probing(e: &Env, dir: &Path) -> ((Option<i32>, String, String), usize, usize) {
    let done = AtomicBool::new(false);
    std::thread::scope(|s| {
        let probe = s.spawn(|| {
            let (mut samples, mut without) = (0, 0);
            while !done.load(Ordering::SeqCst) {
                let list = replicas(e, dir);
                samples += 1;
                if !list
                    .iter()
                    .any(|(_, state, health, _)| state == "running" && health == "healthy")
                {
                    without += 1;
                    eprintln!("no healthy replica: {list:?}");
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            (samples, without)
        });
        let result = stack(e, dir, &["up", "-d", "--progress", "plain"]);
        done.store(true, Ordering::SeqCst);
        let (samples, without) = probe.join().unwrap();
        (result, samples, without)
    })
}

#[test]
fn a_start_first_update_keeps_a_healthy_replica_and_a_failing_one_is_rolled_back() {
    let e = Env::new("stack_rolling_update");
    let dir = project(&e, "rolling", &yaml("1", PASSES, "start-first"));
    let (code, _, err) = stack(&e, &dir, &["up", "-d", "--wait"]);
    assert_eq!(code, Some(0), "{err}");
    // The stack document keeps secret bytes for rollbacks: only root reads its directory.
    let mode = std::fs::metadata(e.env.root.join("state/stacks"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o700);
    let before = replicas(&e, &dir);
    assert_eq!(
        before.iter().map(|r| r.0.as_str()).collect::<Vec<_>>(),
        NAMES
    );

    // All three at once (parallelism 3), start-first: the surge replicas serve meanwhile.
    std::fs::write(dir.join("compose.yaml"), yaml("2", PASSES, "start-first")).unwrap();
    let ((code, _, err), samples, without) = up_while_probing(&e, &dir);
    assert_eq!(code, Some(0), "{err}");
    assert!(samples >= 5, "only {samples} samples during the update");
    assert_eq!(
        without, 0,
        "{without} of {samples} samples had no healthy replica"
    );
    let after = replicas(&e, &dir);
    assert_eq!(
        after.iter().map(|r| r.0.as_str()).collect::<Vec<_>>(),
        NAMES
    );
    for ((name, state, health, id), (_, _, _, old)) in after.iter().zip(&before) {
        assert_eq!((state.as_str(), health.as_str()), ("running", "healthy"));
        assert_ne!(id, old, "{name} was not replaced");
        assert_eq!(version(&e, name), "2");
    }

    // A new configuration that never becomes healthy: rolled back, up fails naming web.
    std::fs::write(dir.join("compose.yaml"), yaml("3", NEVER, "start-first")).unwrap();
    let ((code, _, err), _, without) = up_while_probing(&e, &dir);
    assert_ne!(code, Some(0), "a failing update succeeded: {err}");
    assert!(err.contains("service \"web\""), "{err}");
    assert!(err.contains("rolled back"), "{err}");
    assert_eq!(without, 0);
    let kept = replicas(&e, &dir);
    assert_eq!(kept, after, "the old replicas were touched");
    for name in NAMES {
        assert_eq!(version(&e, name), "2");
    }

    // Stop-first: the old replicas are gone when the new ones fail; the rollback creates
    // them again from the configuration applied before.
    std::fs::write(dir.join("compose.yaml"), yaml("3", NEVER, "stop-first")).unwrap();
    let (code, _, err) = stack(&e, &dir, &["up", "-d"]);
    assert_ne!(code, Some(0), "a failing update succeeded: {err}");
    assert!(err.contains("service \"web\""), "{err}");
    let back = replicas(&e, &dir);
    assert_eq!(back.iter().map(|r| r.0.as_str()).collect::<Vec<_>>(), NAMES);
    for (name, state, health, _) in &back {
        assert_eq!(
            (state.as_str(), health.as_str()),
            ("running", "healthy"),
            "{name}"
        );
        assert_eq!(version(&e, name), "2");
    }
    let (code, _, err) = stack(&e, &dir, &["down"]);
    assert_eq!(code, Some(0), "{err}");
}
