//! `berth watch` at its edges: which ignore files a build context contributes (as Compose:
//! `<Dockerfile>.dockerignore` over `.dockerignore`, and never `.gitignore`), and the
//! fallback to polling when inotify watches run out (forced with the test-only cap
//! `BERTH_WATCH_MAX_INOTIFY`, since the kernel's limit is global).

use crate::run::Env;
use crate::watch::{WAIT, exec, project, stack_ok, start_watch, wait_content};
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
fn the_dockerfile_specific_ignore_file_wins_and_gitignored_files_are_synced_as_compose_does() {
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
    // did not count (so local.env came).
    assert_eq!(
        exec(&e, "wignore-app-1", "ls -A /app").as_deref(),
        Some("local.env\nreadme.md\nsentinel.txt\n")
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
