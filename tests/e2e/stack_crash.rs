//! `kill -9` of the daemon in the middle of `up` of a multi-service stack: the next `up`
//! (which starts a new daemon) converges the stack, with one container per replica under
//! its `<project>-<service>-<n>` name, and what the cut-short `up` left half-made leaves no
//! mount, link or cgroup behind. Cut short in a start-first update, the extra `-next`
//! replicas are removed and the update completed.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use berth_tests::process;
use nix::sys::signal::Signal;

use crate::run::{Env, root_hash};

const STACK: &str = r#"
name: crashy
services:
  db:
    image: busybox:latest
    command: ["sh", "-c", "touch /tmp/ok; exec sleep 1000"]
    stop_grace_period: 1s
    healthcheck: {test: ["CMD", "test", "-f", "/tmp/ok"], interval: 100ms, start_interval: 100ms, start_period: 2s}
  api:
    image: busybox:latest
    command: ["sleep", "1000"]
    stop_grace_period: 1s
    deploy: {replicas: 3}
    volumes: [data:/data, /scratch]
    depends_on: {db: {condition: service_healthy}}
  web:
    image: busybox:latest
    command: ["sleep", "1000"]
    stop_grace_period: 1s
    deploy: {replicas: 2}
    ports: ["127.0.0.1::80"]
    depends_on: [api]
  a: {image: "busybox:latest", command: ["sleep", "1000"], stop_grace_period: 1s}
  b: {image: "busybox:latest", command: ["sleep", "1000"], stop_grace_period: 1s}
  c: {image: "busybox:latest", command: ["sleep", "1000"], stop_grace_period: 1s}
  d: {image: "busybox:latest", command: ["sleep", "1000"], stop_grace_period: 1s}
volumes:
  data: {}
"#;

const WANTED: [&str; 10] = [
    "crashy-a-1",
    "crashy-api-1",
    "crashy-api-2",
    "crashy-api-3",
    "crashy-b-1",
    "crashy-c-1",
    "crashy-d-1",
    "crashy-db-1",
    "crashy-web-1",
    "crashy-web-2",
];

/// Ids of the container documents in the root's store now.
fn stored_ids(root: &Path) -> BTreeSet<String> {
    std::fs::read_dir(root.join("state/containers"))
        .map(|d| {
            d.flatten()
                .filter_map(|e| {
                    let n = e.file_name().to_string_lossy().into_owned();
                    n.strip_suffix(".json").map(str::to_owned)
                })
                .filter(|n| n.len() == 64)
                .collect()
        })
        .unwrap_or_default()
}

fn links_with(prefix: &str) -> Vec<String> {
    let out = Command::new("ip").args(["-o", "link"]).output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split(": ").nth(1))
        .map(|n| n.split('@').next().unwrap_or(n).to_string())
        .filter(|n| n.starts_with(prefix))
        .collect()
}

fn mounts_under(dir: &Path) -> Vec<String> {
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter(|l| l.contains(dir.to_str().unwrap()))
        .map(str::to_owned)
        .collect()
}

fn cgroups_of(id: &str) -> Vec<PathBuf> {
    ["pids", "memory", "cpu", "freezer"]
        .iter()
        .map(|c| PathBuf::from(format!("/sys/fs/cgroup/{c}/berth/{}", &id[..12])))
        .filter(|p| p.exists())
        .collect()
}

/// (name, state) of every container of the stack.
fn containers(e: &Env, file: &str) -> Vec<(String, String)> {
    let out = e.ok(&["-f", file, "stack", "ps", "-a", "--format", "json"]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let mut list: Vec<(String, String)> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["Name"].as_str().unwrap().to_owned(),
                c["State"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    list.sort();
    list
}

#[test]
fn kill_9_of_the_daemon_during_up_then_up_converges_without_duplicates_or_leaks() {
    let e = Env::new("stack_crash_up");
    let dir = e.env.dir().join("crashy");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("compose.yaml");
    std::fs::write(&file, STACK).unwrap();
    let file = file.to_str().unwrap().to_owned();
    let root = e.env.root.clone();
    let mut seen: BTreeSet<String> = BTreeSet::new();

    // Cut `up` short at several points: after the first container document appears, and
    // once about half of them exist.
    for at in [1, 5] {
        let before = stored_ids(&root).len();
        let (pid, _out) = e
            .env
            .spawn(&["-f", &file, "up", "-d", "--progress", "quiet"]);
        let start = Instant::now();
        let daemon = loop {
            let ids = stored_ids(&root);
            seen.extend(ids.iter().cloned());
            if ids.len() >= before + at
                && let Some(d) = e.env.daemon_pid()
            {
                break d;
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "up made no container"
            );
            std::thread::sleep(Duration::from_millis(5));
        };
        process::signal(daemon, Signal::SIGKILL);
        assert!(process::wait_dead(daemon, Duration::from_secs(10)));
        seen.extend(stored_ids(&root));
        let code = e.env.wait_spawned(pid, Duration::from_secs(30));
        eprintln!("up cut short after {at} container(s): exit {code:?}");
    }

    // Any command brings a new daemon; `up` converges.
    let (code, _, err) = e.run(&["-f", &file, "up", "-d", "--wait"]);
    assert_eq!(code, Some(0), "{err}");
    let list = containers(&e, &file);
    let names: Vec<&str> = list.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, WANTED, "one container per replica");
    assert!(list.iter().all(|(_, s)| s == "running"), "{list:?}");
    let ids = stored_ids(&root);
    assert_eq!(ids.len(), WANTED.len(), "stored containers: {ids:?}");
    // A second `up` has nothing to do.
    let (code, _, err) = e.run(&["-f", &file, "up", "-d", "--progress", "plain"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(!err.contains("Recreat") && !err.contains("Creat"), "{err}");

    // What the crashes left half-made is gone: no cgroup of a container that is no more.
    for id in seen.difference(&ids) {
        assert_eq!(cgroups_of(id), Vec::<PathBuf>::new(), "half-made {id}");
        assert!(!root.join("containers").join(id).exists(), "dir of {id}");
    }
    let (code, _, err) = e.run(&["-f", &file, "down", "-v"]);
    assert_eq!(code, Some(0), "{err}");
    let prefix = format!("berth{:04x}", root_hash(&root) & 0xffff);
    assert_eq!(links_with(&prefix), Vec::<String>::new());
    assert_eq!(mounts_under(&root), Vec::<String>::new());
    for id in &seen {
        assert_eq!(cgroups_of(id), Vec::<PathBuf>::new(), "{id}");
    }
    assert_eq!(stored_ids(&root), BTreeSet::new());
}

#[test]
fn kill_9_of_the_daemon_during_a_start_first_update_then_up_removes_the_extra_replicas() {
    let e = Env::new("stack_crash_update");
    let dir = e.env.dir().join("surgy");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("compose.yaml");
    let yaml = |version: &str| {
        format!(
            r#"
name: surgy
services:
  web:
    image: busybox:latest
    command: ["sh", "-c", "sleep 0.5; touch /tmp/ok; exec sleep 1000"]
    environment: {{VERSION: "{version}"}}
    stop_grace_period: 1s
    healthcheck: {{test: ["CMD", "test", "-f", "/tmp/ok"], interval: 100ms, start_interval: 100ms, start_period: 2s}}
    deploy:
      replicas: 2
      update_config: {{parallelism: 2, order: start-first}}
"#
        )
    };
    std::fs::write(&file, yaml("1")).unwrap();
    let file = file.to_str().unwrap().to_owned();
    let (code, _, err) = e.run(&["-f", &file, "up", "-d", "--wait"]);
    assert_eq!(code, Some(0), "{err}");

    // The update starts `surgy-web-N-next` first; the daemon dies while they wait to be
    // healthy.
    std::fs::write(&file, yaml("2")).unwrap();
    let (pid, _out) = e
        .env
        .spawn(&["-f", &file, "up", "-d", "--progress", "quiet"]);
    let daemon = e.env.daemon_pid().expect("a daemon serves the first up");
    let start = Instant::now();
    while !containers(&e, &file)
        .iter()
        .any(|(n, _)| n.ends_with("-next"))
    {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "no extra replica"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    process::signal(daemon, Signal::SIGKILL);
    assert!(process::wait_dead(daemon, Duration::from_secs(10)));
    e.env.wait_spawned(pid, Duration::from_secs(30));

    let (code, _, err) = e.run(&["-f", &file, "up", "-d", "--wait"]);
    assert_eq!(code, Some(0), "{err}");
    let list = containers(&e, &file);
    assert_eq!(
        list,
        [
            ("surgy-web-1".to_owned(), "running".to_owned()),
            ("surgy-web-2".to_owned(), "running".to_owned()),
        ]
    );
    for name in ["surgy-web-1", "surgy-web-2"] {
        assert_eq!(
            e.ok(&["exec", name, "sh", "-c", "echo $VERSION"]).trim(),
            "2"
        );
    }
    assert_eq!(stored_ids(&e.env.root).len(), 2);
    let (code, _, err) = e.run(&["-f", &file, "down"]);
    assert_eq!(code, Some(0), "{err}");
}
