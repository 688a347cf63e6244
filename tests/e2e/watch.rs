//! `berth watch` as a developer uses it: a stack is up, `berth watch` runs alongside, and
//! host edits reach the containers (files and directories created, edited, renamed and
//! deleted; ignored files never), bursts are batched, and `sync+restart`, `sync+exec` and
//! `rebuild` rules do what they say; `berth up -d --watch` does both in one command; and
//! `berth cp` copies both ways without a container symlink ever reaching the host. Watch
//! lines are read from `berth watch --json`.

use std::path::Path;
use std::time::Duration;

use berth_tests::eventually;
use berth_tests::process::LineReader;

use crate::run::Env;

pub(crate) const WAIT: Duration = Duration::from_secs(20);

pub(crate) use crate::stack::project;

/// `berth -f <dir>/compose.yaml <args>`, which must succeed: its output.
pub(crate) fn stack_ok(e: &Env, dir: &Path, args: &[&str]) -> String {
    let (code, out, err) = crate::stack::stack(e, dir, args);
    assert_eq!(code, Some(0), "berth {args:?} failed: {err}");
    out
}

/// `berth watch --json` in the background; returns its lines once every rule is watched.
pub(crate) fn start_watch(e: &Env, dir: &Path, rules: usize) -> LineReader {
    let file = dir.join("compose.yaml");
    let (_, stdout) = e
        .env
        .spawn(&["-f", file.to_str().unwrap(), "watch", "--json"]);
    let lines = LineReader::new(stdout);
    let mut watching = 0;
    while watching < rules {
        let line = lines.next(WAIT).expect("berth watch ended early");
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        match v["type"].as_str() {
            Some("watching") => watching += 1,
            Some("error") => panic!("watch failed: {line}"),
            _ => {}
        }
    }
    lines
}

/// The next `action` line (skipping others).
pub(crate) fn next_action(lines: &LineReader) -> serde_json::Value {
    loop {
        let line = lines.next(WAIT).expect("berth watch ended");
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        match v["type"].as_str() {
            Some("action") => return v,
            Some("error") => panic!("watch reported an error: {line}"),
            _ => {}
        }
    }
}

/// `berth exec <c> sh -c <script>`: stdout, or `None` when it fails.
pub(crate) fn exec(e: &Env, container: &str, script: &str) -> Option<String> {
    let (code, out, _) = e.run(&["exec", container, "sh", "-c", script]);
    (code == Some(0)).then_some(out)
}

/// Waits until `cat path` in the container prints `want`.
pub(crate) fn wait_content(e: &Env, container: &str, path: &str, want: &str) {
    eventually(&format!("{path} = {want:?}"), WAIT, || {
        (exec(e, container, &format!("cat {path}")).as_deref() == Some(want)).then_some(())
    });
}

/// Waits until `path` no longer exists in the container.
pub(crate) fn wait_gone(e: &Env, container: &str, path: &str) {
    eventually(&format!("{path} gone"), WAIT, || {
        exec(e, container, &format!("test ! -e {path}")).map(|_| ())
    });
}

const SYNC: &str = r#"
name: wsync
services:
  app:
    image: busybox:latest
    command: ["sleep", "1000"]
    user: "1000:1000"
    stop_grace_period: 1s
    develop:
      watch:
        - path: ./src
          target: /app
          action: sync
          initial_sync: true
          ignore: ["*.log", "node_modules/"]
"#;

#[test]
fn edits_creates_deletes_and_renames_reach_the_container_and_ignored_files_never_do() {
    let e = Env::new("watch_sync");
    let dir = project(&e, "wsync", SYNC);
    let src = dir.join("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("before.txt"), "there before\n").unwrap();
    // As Compose, the initial sync leaves Dockerfiles and stack files out.
    std::fs::write(src.join("Dockerfile"), "FROM busybox\n").unwrap();
    std::fs::write(src.join("compose.yaml"), "services: {}\n").unwrap();
    stack_ok(&e, &dir, &["up", "-d"]);
    let c = "wsync-app-1";
    let lines = start_watch(&e, &dir, 1);
    // initial_sync: what existed before the watch is in the container.
    let first = next_action(&lines);
    assert_eq!(first["action"], "initial_sync");
    assert_eq!(first["files"], serde_json::json!(["src/before.txt"]));
    wait_content(&e, c, "/app/before.txt", "there before\n");

    // Create, then edit a file; it belongs to the container's user.
    std::fs::write(src.join("a.txt"), "one\n").unwrap();
    wait_content(&e, c, "/app/a.txt", "one\n");
    assert_eq!(
        exec(&e, c, "stat -c %u:%g /app/a.txt").as_deref(),
        Some("1000:1000\n")
    );
    std::fs::write(src.join("a.txt"), "two\n").unwrap();
    wait_content(&e, c, "/app/a.txt", "two\n");

    // A new directory tree, then the new directory's own new file.
    std::fs::create_dir_all(src.join("dir/sub")).unwrap();
    std::fs::write(src.join("dir/sub/f.txt"), "deep\n").unwrap();
    wait_content(&e, c, "/app/dir/sub/f.txt", "deep\n");
    std::fs::write(src.join("dir/sub/g.txt"), "later\n").unwrap();
    wait_content(&e, c, "/app/dir/sub/g.txt", "later\n");

    // Renames of a file and of a directory.
    std::fs::rename(src.join("a.txt"), src.join("b.txt")).unwrap();
    wait_content(&e, c, "/app/b.txt", "two\n");
    wait_gone(&e, c, "/app/a.txt");
    std::fs::rename(src.join("dir"), src.join("moved")).unwrap();
    wait_content(&e, c, "/app/moved/sub/f.txt", "deep\n");
    wait_gone(&e, c, "/app/dir");

    // Deletes of a file and of a directory.
    std::fs::remove_file(src.join("b.txt")).unwrap();
    wait_gone(&e, c, "/app/b.txt");
    std::fs::remove_dir_all(src.join("moved")).unwrap();
    wait_gone(&e, c, "/app/moved");

    // Ignored: rule patterns and editor temp files; a file written after them arrives,
    // and by then none of them has.
    std::fs::create_dir_all(src.join("node_modules/m")).unwrap();
    std::fs::write(src.join("node_modules/m/i.js"), "x").unwrap();
    std::fs::write(src.join("debug.log"), "x").unwrap();
    std::fs::write(src.join(".b.txt.swp"), "x").unwrap();
    std::fs::write(src.join("b.txt~"), "x").unwrap();
    std::fs::write(src.join("4913"), "x").unwrap();
    std::fs::write(src.join("sentinel.txt"), "last\n").unwrap();
    wait_content(&e, c, "/app/sentinel.txt", "last\n");
    let listing = exec(&e, c, "ls -A /app").unwrap();
    assert_eq!(listing, "before.txt\nsentinel.txt\n");

    // A container recreated while watching gets the current files (initial_sync).
    let old_id = e.inspect(c)["Id"].clone();
    stack_ok(&e, &dir, &["up", "-d", "--force-recreate"]);
    assert_ne!(e.inspect(c)["Id"], old_id);
    wait_content(&e, c, "/app/sentinel.txt", "last\n");
    stack_ok(&e, &dir, &["down"]);
}

#[test]
fn a_burst_of_1000_files_is_one_batch_after_at_most_its_first_file() {
    let e = Env::new("watch_burst");
    let dir = project(&e, "wburst", &SYNC.replace("wsync", "wburst"));
    let src = dir.join("src");
    std::fs::create_dir_all(&src).unwrap();
    stack_ok(&e, &dir, &["up", "-d"]);
    let lines = start_watch(&e, &dir, 1);
    assert_eq!(next_action(&lines)["action"], "initial_sync");
    for i in 0..1000 {
        std::fs::write(src.join(format!("f{i:04}.txt")), format!("{i}\n")).unwrap();
    }
    // The first file goes out at once (or the whole burst, when more than it was already
    // waiting); everything after it arrived while that file was applied or just after, so
    // the rest of the burst is exactly one batch.
    let mut batches = Vec::new();
    while batches.iter().sum::<u64>() < 1000 {
        batches.push(next_action(&lines)["count"].as_u64().unwrap());
    }
    eprintln!("burst batches: {batches:?}");
    assert!(
        batches == [1000] || batches == [1, 999],
        "the burst is not one batch after its first file: {batches:?}"
    );
    assert_eq!(
        exec(&e, "wburst-app-1", "ls /app | wc -l").unwrap().trim(),
        "1000"
    );
    assert_eq!(
        exec(&e, "wburst-app-1", "cat /app/f0999.txt").as_deref(),
        Some("999\n")
    );
    stack_ok(&e, &dir, &["down"]);
}

const ACTIONS: &str = r#"
name: wact
services:
  restarted:
    image: busybox:latest
    command: ["sh", "-c", "cat /conf/c.txt > /tmp/seen 2>/dev/null; exec sleep 1000"]
    stop_grace_period: 1s
    develop:
      watch:
        - path: ./conf
          target: /conf
          action: sync+restart
  execd:
    image: busybox:latest
    command: ["sleep", "1000"]
    stop_grace_period: 1s
    develop:
      watch:
        - path: ./hook
          target: /hook
          action: sync+exec
          exec:
            command: ["sh", "-c", "cat /hook/h.txt >> /tmp/ran"]
"#;

#[test]
fn sync_restart_restarts_and_sync_exec_runs_its_command() {
    let e = Env::new("watch_actions");
    let dir = project(&e, "wact", ACTIONS);
    std::fs::create_dir_all(dir.join("conf")).unwrap();
    std::fs::create_dir_all(dir.join("hook")).unwrap();
    stack_ok(&e, &dir, &["up", "-d"]);
    let started = e.inspect("wact-restarted-1")["State"]["StartedAt"].clone();
    let lines = start_watch(&e, &dir, 2);

    std::fs::write(dir.join("conf/c.txt"), "v2\n").unwrap();
    let a = next_action(&lines);
    assert_eq!(
        (a["service"].as_str(), a["action"].as_str()),
        (Some("restarted"), Some("sync+restart"))
    );
    // Restarted: a new start time, and the process read the synced file when it started.
    assert_ne!(e.inspect("wact-restarted-1")["State"]["StartedAt"], started);
    wait_content(&e, "wact-restarted-1", "/tmp/seen", "v2\n");

    std::fs::write(dir.join("hook/h.txt"), "hooked\n").unwrap();
    let a = next_action(&lines);
    assert_eq!(
        (a["service"].as_str(), a["action"].as_str()),
        (Some("execd"), Some("sync+exec"))
    );
    // The command ran once, after the file was there.
    assert_eq!(
        exec(&e, "wact-execd-1", "cat /tmp/ran").as_deref(),
        Some("hooked\n")
    );
    stack_ok(&e, &dir, &["down"]);
}

const REBUILD: &str = r#"
name: wrebuild
services:
  built:
    build: ./ctx
    command: ["sleep", "1000"]
    stop_grace_period: 1s
    develop:
      watch:
        - path: ./ctx
          action: rebuild
  other:
    image: busybox:latest
    command: ["sleep", "1000"]
    stop_grace_period: 1s
"#;

#[test]
fn a_rebuild_rule_builds_a_new_image_and_recreates_only_that_service() {
    let e = Env::new("watch_rebuild");
    let dir = project(&e, "wrebuild", REBUILD);
    let ctx = dir.join("ctx");
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM busybox:latest\nCOPY app.txt /app.txt\n",
    )
    .unwrap();
    std::fs::write(ctx.join("app.txt"), "v1\n").unwrap();
    stack_ok(&e, &dir, &["up", "-d"]);
    let before = e.inspect("wrebuild-built-1");
    let other = e.inspect("wrebuild-other-1")["Id"].clone();
    assert_eq!(
        exec(&e, "wrebuild-built-1", "cat /app.txt").as_deref(),
        Some("v1\n")
    );
    let lines = start_watch(&e, &dir, 1);
    std::fs::write(ctx.join("app.txt"), "v2\n").unwrap();
    let a = next_action(&lines);
    assert_eq!(
        (a["service"].as_str(), a["action"].as_str()),
        (Some("built"), Some("rebuild"))
    );
    let after = e.inspect("wrebuild-built-1");
    assert_ne!(after["Id"], before["Id"], "the container was recreated");
    assert_ne!(after["Image"], before["Image"], "from a new image");
    assert_eq!(
        exec(&e, "wrebuild-built-1", "cat /app.txt").as_deref(),
        Some("v2\n")
    );
    assert_eq!(
        e.inspect("wrebuild-other-1")["Id"],
        other,
        "other untouched"
    );
    stack_ok(&e, &dir, &["down"]);
}

const OVERLAP: &str = r#"
name: wover
services:
  wide:
    image: busybox:latest
    command: ["sleep", "1000"]
    stop_grace_period: 1s
    develop:
      watch:
        - path: ./shared
          target: /wide
          action: sync
          ignore: ["docs/"]
  narrow:
    image: busybox:latest
    command: ["sleep", "1000"]
    stop_grace_period: 1s
    develop:
      watch:
        - path: ./shared/docs
          target: /narrow
          action: sync
          include: ["*.md"]
"#;

#[test]
fn two_services_watching_overlapping_paths_each_get_what_their_rules_say() {
    let e = Env::new("watch_overlap");
    let dir = project(&e, "wover", OVERLAP);
    std::fs::create_dir_all(dir.join("shared/docs")).unwrap();
    stack_ok(&e, &dir, &["up", "-d"]);
    let lines = start_watch(&e, &dir, 2);
    std::fs::write(dir.join("shared/docs/readme.md"), "doc\n").unwrap();
    std::fs::write(dir.join("shared/docs/notes.txt"), "txt\n").unwrap();
    std::fs::write(dir.join("shared/code.txt"), "code\n").unwrap();
    wait_content(&e, "wover-wide-1", "/wide/code.txt", "code\n");
    wait_content(&e, "wover-narrow-1", "/narrow/readme.md", "doc\n");
    // A later file to each, then neither has what its rules exclude.
    std::fs::write(dir.join("shared/docs/z.md"), "z\n").unwrap();
    wait_content(&e, "wover-narrow-1", "/narrow/z.md", "z\n");
    assert_eq!(
        exec(&e, "wover-wide-1", "ls -A /wide").as_deref(),
        Some("code.txt\n")
    );
    assert_eq!(
        exec(&e, "wover-narrow-1", "ls -A /narrow").as_deref(),
        Some("readme.md\nz.md\n")
    );
    drop(lines);
    stack_ok(&e, &dir, &["down"]);
}

#[test]
fn cp_copies_files_and_trees_both_ways_and_container_symlinks_stay_inside() {
    let e = Env::new("watch_cp");
    e.ok(&["run", "-d", "--name", "cpt", "busybox", "sleep", "1000"]);
    let host = e.env.dir().join("host");
    std::fs::create_dir_all(host.join("tree/sub")).unwrap();
    std::fs::write(host.join("tree/a.txt"), "a\n").unwrap();
    std::fs::write(host.join("tree/sub/b.txt"), "b\n").unwrap();
    std::fs::write(host.join("one.txt"), "one\n").unwrap();
    let h = |p: &str| host.join(p).to_str().unwrap().to_owned();

    // In: a tree into an existing directory, a file to a new name.
    e.ok(&["cp", &h("tree"), "cpt:/tmp"]);
    assert_eq!(
        exec(&e, "cpt", "cat /tmp/tree/a.txt /tmp/tree/sub/b.txt").as_deref(),
        Some("a\nb\n")
    );
    e.ok(&["cp", &h("one.txt"), "cpt:/renamed.txt"]);
    assert_eq!(
        exec(&e, "cpt", "cat /renamed.txt").as_deref(),
        Some("one\n")
    );

    // Out: a tree to a new name, a file into an existing directory.
    e.ok(&["cp", "cpt:/tmp/tree", &h("out")]);
    assert_eq!(
        std::fs::read_to_string(host.join("out/sub/b.txt")).unwrap(),
        "b\n"
    );
    e.ok(&["cp", "cpt:/renamed.txt", &h("tree")]);
    assert_eq!(
        std::fs::read_to_string(host.join("tree/renamed.txt")).unwrap(),
        "one\n"
    );

    // A symlink in the container pointing at `/` resolves to the container's root, never
    // the host's.
    exec(&e, "cpt", "ln -s / /tmp/escape").unwrap();
    let marker = format!("berth-cp-{}", std::process::id());
    e.ok(&["cp", &h("one.txt"), &format!("cpt:/tmp/escape/{marker}")]);
    assert_eq!(
        exec(&e, "cpt", &format!("cat /{marker}")).as_deref(),
        Some("one\n")
    );
    assert!(
        !Path::new("/").join(&marker).exists(),
        "written on the host"
    );

    // A stopped container cannot be copied from.
    e.ok(&["stop", "-t", "1", "cpt"]);
    let (code, _, err) = e.run(&["cp", "cpt:/renamed.txt", &h("x")]);
    assert_ne!(code, Some(0));
    assert!(err.contains("not running"), "{err}");
}

#[test]
fn up_watch_brings_the_stack_up_then_syncs() {
    let e = Env::new("watch_up");
    let dir = project(&e, "wup", &SYNC.replace("wsync", "wup"));
    std::fs::create_dir_all(dir.join("src")).unwrap();
    let file = dir.join("compose.yaml");
    let (_, stdout) = e
        .env
        .spawn(&["-f", file.to_str().unwrap(), "up", "-d", "--watch"]);
    let lines = LineReader::new(stdout);
    // The human lines: the rule watched, then one line per action.
    let watching = loop {
        let l = lines.next(WAIT).expect("up --watch ended early");
        if l.starts_with("watch app:") {
            break l;
        }
    };
    assert!(watching.contains("sync"), "{watching}");
    std::fs::write(dir.join("src/live.txt"), "live\n").unwrap();
    wait_content(&e, "wup-app-1", "/app/live.txt", "live\n");
    let action = loop {
        let l = lines.next(WAIT).expect("up --watch ended early");
        if l.starts_with("app: sync") {
            break l;
        }
    };
    assert!(action.contains("src/live.txt"), "{action}");
    assert!(action.contains("-> 1 container in"), "{action}");
    stack_ok(&e, &dir, &["down"]);
}
