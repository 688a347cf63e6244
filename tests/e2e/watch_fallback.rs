//! `berth watch` at its edges: which ignore files a build context contributes (as Compose:
//! `<Dockerfile>.dockerignore` over `.dockerignore`; berth also honours `.gitignore`), and the
//! fallback to polling when inotify watches run out (forced with the test-only cap
//! `BERTH_WATCH_MAX_INOTIFY`, since the kernel's limit is global), and a `rebuild` of a
//! replicated service rolled through the stack's rolling update (a healthy replica at
//! every sample).

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::run::Env;
use crate::watch::{WAIT, exec, next_action, project, stack_ok, start_watch, wait_content};
use berth_tests::process::LineReader;

const IGNORE: &str = r#"
name: wignore
services:
  app:
    build: ./ctx
    command: ["sleep", "1000"]
    stop_grace_period: 1s
    develop:
      watch:
        - path: ./ctx
          target: /app
          action: sync
"#;

#[test]
fn the_dockerfile_specific_ignore_file_wins_and_gitignored_files_stay_out() {
    let e = Env::new("watch_ignore");
    let dir = project(&e, "wignore", IGNORE);
    let ctx = dir.join("ctx");
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::write(ctx.join("Dockerfile"), "FROM busybox:latest\n").unwrap();
    std::fs::write(ctx.join(".dockerignore"), "*.md\n").unwrap();
    std::fs::write(ctx.join("Dockerfile.dockerignore"), "secret.txt\ntmp/\n").unwrap();
    std::fs::write(ctx.join(".gitignore"), "*.env\n").unwrap();
    stack_ok(&e, &dir, &["up", "-d"]);
    let lines = start_watch(&e, &dir, 1);
    std::fs::create_dir_all(ctx.join("tmp")).unwrap();
    std::fs::write(ctx.join("tmp/scratch.txt"), "x").unwrap();
    std::fs::write(ctx.join("secret.txt"), "x").unwrap();
    std::fs::write(ctx.join("readme.md"), "read me\n").unwrap();
    std::fs::write(ctx.join("local.env"), "A=1\n").unwrap();
    std::fs::write(ctx.join("sentinel.txt"), "last\n").unwrap();
    wait_content(&e, "wignore-app-1", "/app/sentinel.txt", "last\n");
    // Dockerfile.dockerignore replaced .dockerignore (so readme.md came), and .gitignore
    // kept local.env out.
    assert_eq!(
        exec(&e, "wignore-app-1", "ls -A /app").as_deref(),
        Some("readme.md\nsentinel.txt\n")
    );
    drop(lines);
    stack_ok(&e, &dir, &["down"]);
}

const POLL: &str = r#"
name: wpoll
services:
  app:
    image: busybox:latest
    command: ["sleep", "1000"]
    stop_grace_period: 1s
    develop:
      watch:
        - path: ./src
          target: /app
          action: sync
"#;

#[test]
fn when_inotify_watches_run_out_berth_says_so_and_polls_those_directories() {
    let e = Env::new("watch_poll");
    let dir = project(&e, "wpoll", POLL);
    std::fs::create_dir_all(dir.join("src/sub")).unwrap();
    // The daemon runs the watch: restart it with one inotify watch allowed per watch.
    e.ok(&["daemon", "stop"]);
    let file = dir.join("compose.yaml");
    let mut up = e.env.command();
    up.env("BERTH_WATCH_MAX_INOTIFY", "1")
        .args(["-f", file.to_str().unwrap(), "up", "-d"]);
    let out = e.env.run_command(up, "up -d (BERTH_WATCH_MAX_INOTIFY=1)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let (_, stdout) = e
        .env
        .spawn(&["-f", file.to_str().unwrap(), "watch", "--json"]);
    let lines = LineReader::new(stdout);
    let mut watching = None;
    let mut notice = None;
    while watching.is_none() || notice.is_none() {
        let line = lines.next(WAIT).expect("berth watch ended early");
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        match v["type"].as_str() {
            Some("watching") => watching = Some(v),
            Some("notice") => notice = Some(v["message"].as_str().unwrap().to_owned()),
            Some("error") => panic!("watch failed: {line}"),
            _ => {}
        }
    }
    let watching = watching.unwrap();
    assert_eq!(
        (
            watching["directories"].as_u64(),
            watching["polled"].as_u64()
        ),
        (Some(1), Some(1)),
        "{watching}"
    );
    let notice = notice.unwrap();
    assert!(
        notice.contains("inotify watch limit reached") && notice.contains("src/sub"),
        "{notice}"
    );

    // The polled directory still reaches the container (within the poll interval), and
    // so does the inotify-watched one.
    std::fs::write(dir.join("src/sub/polled.txt"), "polled\n").unwrap();
    wait_content(&e, "wpoll-app-1", "/app/sub/polled.txt", "polled\n");
    std::fs::write(dir.join("src/top.txt"), "top\n").unwrap();
    wait_content(&e, "wpoll-app-1", "/app/top.txt", "top\n");
    // A directory created later is polled too (no inotify watch is left).
    std::fs::create_dir_all(dir.join("src/later")).unwrap();
    std::fs::write(dir.join("src/later/l.txt"), "later\n").unwrap();
    wait_content(&e, "wpoll-app-1", "/app/later/l.txt", "later\n");
    std::fs::write(dir.join("src/later/m.txt"), "more\n").unwrap();
    wait_content(&e, "wpoll-app-1", "/app/later/m.txt", "more\n");
    drop(lines);
    stack_ok(&e, &dir, &["down"]);
}

const ROLL: &str = r#"
name: wroll
services:
  web:
    build: ./ctx
    command: ["sh", "-c", "sleep 0.3; touch /tmp/ok; exec sleep 1000"]
    stop_grace_period: 1s
    healthcheck:
      test: ["CMD", "test", "-f", "/tmp/ok"]
      interval: 100ms
      start_period: 1s
      start_interval: 100ms
      retries: 2
    deploy:
      replicas: 2
    develop:
      watch:
        - path: ./ctx
          action: rebuild
"#;

/// `stack ps -a --format json` as (name, state, health, id), sorted by name.
fn replicas(e: &Env, dir: &Path) -> Vec<(String, String, String, String)> {
    let out = stack_ok(e, dir, &["stack", "ps", "-a", "--format", "json"]);
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

#[test]
fn a_rebuild_of_a_replicated_service_rolls_with_a_healthy_replica_throughout() {
    let e = Env::new("watch_roll");
    let dir = project(&e, "wroll", ROLL);
    let ctx = dir.join("ctx");
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM busybox:latest\nCOPY app.txt /app.txt\n",
    )
    .unwrap();
    std::fs::write(ctx.join("app.txt"), "v1\n").unwrap();
    stack_ok(&e, &dir, &["up", "-d", "--wait"]);
    let before = replicas(&e, &dir);
    assert_eq!(
        before.iter().map(|r| r.0.as_str()).collect::<Vec<_>>(),
        ["wroll-web-1", "wroll-web-2"]
    );
    let lines = start_watch(&e, &dir, 1);

    // Probe `stack ps` every ~50 ms while the rebuild runs.
    let done = AtomicBool::new(false);
    let (action, samples, without) = std::thread::scope(|s| {
        let probe = s.spawn(|| {
            let (mut samples, mut without) = (0, 0);
            while !done.load(Ordering::SeqCst) {
                let list = replicas(&e, &dir);
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
        std::fs::write(ctx.join("app.txt"), "v2\n").unwrap();
        let action = next_action(&lines);
        done.store(true, Ordering::SeqCst);
        let (samples, without) = probe.join().unwrap();
        (action, samples, without)
    });
    assert_eq!(
        (action["service"].as_str(), action["action"].as_str()),
        (Some("web"), Some("rebuild"))
    );
    assert_eq!(action["containers"].as_u64(), Some(2));
    assert!(samples >= 5, "only {samples} samples during the rebuild");
    assert_eq!(
        without, 0,
        "{without} of {samples} samples had no healthy replica"
    );
    let after = replicas(&e, &dir);
    for ((name, state, _, id), (_, _, _, old)) in after.iter().zip(&before) {
        assert_eq!(state, "running", "{name}");
        assert_ne!(id, old, "{name} was not replaced");
        assert_eq!(exec(&e, name, "cat /app.txt").as_deref(), Some("v2\n"));
    }
    stack_ok(&e, &dir, &["down"]);
}
