//! The stack commands that act on one service, as a Compose user runs them: `stack exec`
//! and `stack run` (one-off containers, dependencies first, left out of `ps`, removed by
//! `down`), `post_start`/`pre_stop` hooks, `cp`, `top`, `wait`, `events`, `scale`,
//! `up --pull` with `pull_policy` against a real registry, and `down --rmi`.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use berth_tests::eventually;

use crate::run::Env;

use crate::stack::{project, stack};
use crate::watch::stack_ok;

/// `stack ps [-a] --format json` as sorted (name, service, state).
fn ps(e: &Env, dir: &Path, all: bool) -> Vec<(String, String, String)> {
    let mut args = vec!["stack", "ps", "--format", "json"];
    if all {
        args.push("-a");
    }
    let out = stack_ok(e, dir, &args);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let mut list: Vec<_> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["Name"].as_str().unwrap().to_owned(),
                c["Service"].as_str().unwrap().to_owned(),
                c["State"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    list.sort();
    list
}

#[test]
fn stack_exec_and_run_reach_the_services_and_one_offs_are_kept_apart() {
    let e = Env::new("stack_exec_run");
    let dir = project(
        &e,
        "app",
        "name: exr\nservices:\n  db:\n    image: busybox\n    command: sleep 600\n  web:\n    image: busybox\n    command: sleep 600\n    depends_on: [db]\n    environment: [GREETING=hello]\n    working_dir: /tmp\n",
    );
    // `run` before any `up`: its dependency is brought up first.
    let (code, out, err) = stack(
        &e,
        &dir,
        &[
            "stack",
            "run",
            "--rm",
            "web",
            "sh",
            "-c",
            "echo $GREETING from $(pwd); exit 4",
        ],
    );
    assert_eq!(code, Some(4), "{err}");
    assert_eq!(out, "hello from /tmp\n");
    assert_eq!(
        ps(&e, &dir, true),
        [("exr-db-1".to_owned(), "db".to_owned(), "running".to_owned())],
        "db was started for the one-off, and --rm removed the one-off"
    );

    // --no-deps, -e, -u, -w and --entrypoint override the service.
    let (code, out, _) = stack(
        &e,
        &dir,
        &[
            "stack",
            "run",
            "--rm",
            "--no-deps",
            "-e",
            "GREETING=hi",
            "-u",
            "1000",
            "-w",
            "/",
            "--entrypoint",
            "sh",
            "web",
            "-c",
            "echo $GREETING $(id -u) $(pwd)",
        ],
    );
    assert_eq!((code, out.as_str()), (Some(0), "hi 1000 /\n"));

    stack_ok(&e, &dir, &["up", "-d"]);
    let out = stack_ok(
        &e,
        &dir,
        &["stack", "exec", "-T", "web", "sh", "-c", "echo $GREETING"],
    );
    assert_eq!(out, "hello\n");
    let out = stack_ok(
        &e,
        &dir,
        &[
            "stack",
            "exec",
            "-T",
            "-e",
            "X=1",
            "-w",
            "/etc",
            "web",
            "sh",
            "-c",
            "echo $X $(pwd)",
        ],
    );
    assert_eq!(out, "1 /etc\n");
    let (code, _, _) = stack(
        &e,
        &dir,
        &["stack", "exec", "-T", "web", "sh", "-c", "exit 7"],
    );
    assert_eq!(code, Some(7), "exec exits with the process's code");
    let (code, _, err) = stack(
        &e,
        &dir,
        &["stack", "exec", "-T", "--index", "2", "web", "true"],
    );
    assert_eq!(code, Some(1));
    assert!(err.contains("no container number 2"), "{err}");
    // exec -d returns at once; the process runs on.
    stack_ok(
        &e,
        &dir,
        &[
            "stack",
            "exec",
            "-d",
            "web",
            "sh",
            "-c",
            "sleep 1; touch /tmp/bg",
        ],
    );
    eventually(
        "the background exec to finish",
        Duration::from_secs(10),
        || {
            let (code, _, _) = stack(
                &e,
                &dir,
                &["stack", "exec", "-T", "web", "test", "-f", "/tmp/bg"],
            );
            (code == Some(0)).then_some(())
        },
    );

    // A detached one-off: named as Compose names it, shown by `ps -a` only, kept by
    // `up`, removed by `down`.
    let name = stack_ok(&e, &dir, &["stack", "run", "-d", "web", "sleep", "600"]);
    let name = name.trim();
    assert!(name.starts_with("exr-web-run-"), "{name}");
    assert_eq!(name.len(), "exr-web-run-".len() + 12, "{name}");
    let services: Vec<String> = ps(&e, &dir, false).into_iter().map(|c| c.0).collect();
    assert_eq!(services, ["exr-db-1", "exr-web-1"]);
    assert!(
        ps(&e, &dir, true)
            .iter()
            .any(|c| c.0 == name && c.2 == "running")
    );
    stack_ok(&e, &dir, &["up", "-d"]);
    assert!(
        ps(&e, &dir, true)
            .iter()
            .any(|c| c.0 == name && c.2 == "running"),
        "up leaves the one-off alone"
    );
    let out = e.ok(&["inspect", name]);
    assert!(
        out.contains("\"com.docker.compose.oneoff\": \"True\""),
        "{out}"
    );
    stack_ok(&e, &dir, &["down", "-t", "1"]);
    assert_eq!(e.ok(&["ps", "-aq"]), "", "down removed the one-off too");
}

#[test]
fn post_start_and_pre_stop_hooks_run_in_the_container() {
    let e = Env::new("stack_hooks");
    let shared = e.env.dir().join("shared");
    std::fs::create_dir_all(&shared).unwrap();
    // The post_start hook runs as uid 1000.
    std::fs::set_permissions(&shared, std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
    let yaml = format!(
        "name: hooks\nservices:\n  web:\n    image: busybox\n    command: sleep 600\n    volumes: [\"{}:/shared\"]\n    environment: [WHO=web]\n    post_start:\n      - command: sh -c 'echo started $$WHO $$EXTRA $$(id -u) > /shared/post'\n        environment: {{EXTRA: yes}}\n        user: \"1000\"\n      - command: ip link set lo mtu 1280\n        privileged: true\n    pre_stop:\n      - command: sh -c 'echo stopping $$WHO >> /shared/pre'\n",
        shared.display()
    );
    let dir = project(&e, "app", &yaml);
    stack_ok(&e, &dir, &["up", "-d"]);
    assert_eq!(
        std::fs::read_to_string(shared.join("post")).unwrap(),
        "started web yes 1000\n"
    );
    // The privileged hook could do what the container's own processes may not.
    assert_eq!(
        stack_ok(
            &e,
            &dir,
            &["stack", "exec", "-T", "web", "cat", "/sys/class/net/lo/mtu"]
        ),
        "1280\n"
    );
    let (code, _, err) = stack(
        &e,
        &dir,
        &[
            "stack", "exec", "-T", "web", "ip", "link", "set", "lo", "mtu", "1300",
        ],
    );
    assert_eq!(code, Some(2), "without privileges: {err}");
    // stop and start: pre_stop, then post_start again.
    std::fs::remove_file(shared.join("post")).unwrap();
    stack_ok(&e, &dir, &["stack", "stop", "-t", "1"]);
    assert_eq!(
        std::fs::read_to_string(shared.join("pre")).unwrap(),
        "stopping web\n"
    );
    stack_ok(&e, &dir, &["stack", "start"]);
    assert_eq!(
        std::fs::read_to_string(shared.join("post")).unwrap(),
        "started web yes 1000\n"
    );
    stack_ok(&e, &dir, &["down", "-t", "1"]);
    assert_eq!(
        std::fs::read_to_string(shared.join("pre")).unwrap(),
        "stopping web\nstopping web\n",
        "down ran pre_stop before stopping"
    );

    // A failing post_start hook fails `up`, naming the service, the hook and its output.
    let bad = project(
        &e,
        "bad",
        "name: badhook\nservices:\n  api:\n    image: busybox\n    command: sleep 600\n    post_start:\n      - command: sh -c 'echo no database >&2; exit 5'\n    pre_stop:\n      - command: sleep 600\n",
    );
    let (code, _, err) = stack(&e, &bad, &["up", "-d"]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("api"), "{err}");
    assert!(err.contains("post_start hook"), "{err}");
    assert!(err.contains("exited with code 5: no database"), "{err}");
    // A pre_stop hook that does not end holds the stop up for the grace period only.
    let t0 = Instant::now();
    stack_ok(&e, &bad, &["down", "-t", "1"]);
    assert!(t0.elapsed() < Duration::from_secs(15), "{:?}", t0.elapsed());
}

#[test]
fn stack_cp_top_wait_and_events_act_on_the_service_containers() {
    let e = Env::new("stack_cp_top_wait");
    let dir = project(
        &e,
        "app",
        "name: ctw\nservices:\n  web:\n    image: busybox\n    command: sleep 600\n  job:\n    image: busybox\n    command: sh -c 'sleep 600; exit 3'\n",
    );
    stack_ok(&e, &dir, &["up", "-d"]);

    let host = e.env.dir().join("note.txt");
    std::fs::write(&host, "copied in\n").unwrap();
    stack_ok(
        &e,
        &dir,
        &["stack", "cp", host.to_str().unwrap(), "web:/tmp/note.txt"],
    );
    assert_eq!(
        stack_ok(
            &e,
            &dir,
            &["stack", "exec", "-T", "web", "cat", "/tmp/note.txt"]
        ),
        "copied in\n"
    );
    let back = e.env.dir().join("back.txt");
    stack_ok(
        &e,
        &dir,
        &["stack", "cp", "web:/tmp/note.txt", back.to_str().unwrap()],
    );
    assert_eq!(std::fs::read_to_string(&back).unwrap(), "copied in\n");

    let top = stack_ok(&e, &dir, &["stack", "top", "web"]);
    let lines: Vec<&str> = top.lines().collect();
    assert_eq!(lines[0], "ctw-web-1", "{top}");
    assert!(lines[1].starts_with("UID"), "{top}");
    assert!(lines.iter().any(|l| l.ends_with("sleep 600")), "{top}");
    assert!(!top.contains("ctw-job-1"), "only the named service: {top}");

    // events --json: the stack's container events, with their service.
    let mut events = e
        .env
        .command()
        .args([
            "-f",
            dir.join("compose.yaml").to_str().unwrap(),
            "stack",
            "events",
            "--json",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = events.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    // Let the events stream subscribe before anything happens.
    std::thread::sleep(Duration::from_millis(500));

    // wait: blocks until the first container of the service stops, exits with its code.
    let mut wait = e
        .env
        .command()
        .args([
            "-f",
            dir.join("compose.yaml").to_str().unwrap(),
            "stack",
            "wait",
            "job",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        wait.try_wait().unwrap(),
        None,
        "wait returns only once job stops"
    );
    stack_ok(&e, &dir, &["stack", "kill", "job"]);
    let start = Instant::now();
    let status = loop {
        if let Some(s) = wait.try_wait().unwrap() {
            break s;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "stack wait did not return"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    let out = wait.wait_with_output().unwrap();
    assert_eq!(status.code(), Some(137));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "137\n");

    let die = loop {
        let line = rx
            .recv_timeout(Duration::from_secs(20))
            .expect("a die event from stack events");
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        if v["action"] == "die" {
            break v;
        }
    };
    let _ = events.kill();
    let _ = events.wait();
    assert_eq!(die["service"], "job");
    assert_eq!(die["type"], "container");
    assert_eq!(die["attributes"]["name"], "ctw-job-1");
    assert_eq!(die["attributes"]["exitCode"], "137");
    stack_ok(&e, &dir, &["down", "-t", "1"]);
}

#[test]
fn stack_scale_sets_the_number_of_replicas() {
    let e = Env::new("stack_scale");
    let dir = project(
        &e,
        "app",
        "name: scl\nservices:\n  web:\n    image: busybox\n    command: sleep 600\n    stop_grace_period: 1s\n  db:\n    image: busybox\n    command: sleep 600\n",
    );
    stack_ok(&e, &dir, &["up", "-d"]);
    stack_ok(&e, &dir, &["stack", "scale", "web=3"]);
    let names: Vec<String> = ps(&e, &dir, false).into_iter().map(|c| c.0).collect();
    assert_eq!(names, ["scl-db-1", "scl-web-1", "scl-web-2", "scl-web-3"]);
    stack_ok(&e, &dir, &["stack", "scale", "web=1"]);
    let names: Vec<String> = ps(&e, &dir, true).into_iter().map(|c| c.0).collect();
    assert_eq!(names, ["scl-db-1", "scl-web-1"]);
    stack_ok(&e, &dir, &["down", "-t", "1"]);
}

/// A `docker-registry` on a free port, killed on drop.
struct Registry {
    child: std::process::Child,
    host: String,
    _dir: tempfile::TempDir,
}

impl Registry {
    fn start() -> Registry {
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let host = format!("127.0.0.1:{port}");
        let config = format!(
            "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: {host}\n",
            dir.path().join("data").display()
        );
        let path = dir.path().join("config.yml");
        std::fs::write(&path, config).unwrap();
        let child = Command::new("/usr/bin/docker-registry")
            .arg("serve")
            .arg(&path)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start /usr/bin/docker-registry (Debian package docker-registry)");
        let r = Registry {
            child,
            host,
            _dir: dir,
        };
        eventually("the registry to listen", Duration::from_secs(20), || {
            std::net::TcpStream::connect(&r.host).ok()
        });
        r
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn image_listed(e: &Env, name: &str) -> bool {
    e.ok(&["images"])
        .lines()
        .any(|l| l.split_whitespace().next() == Some(name))
}

#[test]
fn up_pull_follows_the_pull_policy_and_down_rmi_removes_the_images() {
    let e = Env::new("stack_pull_rmi");
    let registry = Registry::start();
    let remote = format!("{}/tools/busybox", registry.host);
    e.ok(&["tag", "busybox", &remote]);
    e.ok(&["push", &remote]);
    e.ok(&["rmi", &remote]);
    assert!(!image_listed(&e, &remote));

    let dir = project(
        &e,
        "app",
        &format!(
            "name: pul\nservices:\n  web:\n    image: {remote}\n    command: sleep 600\n    pull_policy: never\n  built:\n    build: .\n    command: sleep 600\n"
        ),
    );
    std::fs::write(
        dir.join("Dockerfile"),
        "FROM busybox\nRUN echo built > /built\n",
    )
    .unwrap();
    // pull_policy: never and the image is missing: up says so and starts nothing of web.
    let (code, _, err) = stack(&e, &dir, &["up", "-d"]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("pull policy is never"), "{err}");
    assert!(err.contains("web"), "{err}");
    // --pull missing overrides it: the image is pulled from the registry.
    let (code, _, err) = stack(&e, &dir, &["up", "-d", "--pull", "missing"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(err.contains(&format!("Image {remote}  Pulled")), "{err}");
    assert!(image_listed(&e, &remote));
    assert!(image_listed(&e, "pul-built"));
    assert_eq!(
        stack_ok(&e, &dir, &["stack", "exec", "-T", "built", "cat", "/built"]),
        "built\n"
    );
    // --rmi local: only the image built for the stack goes.
    stack_ok(&e, &dir, &["down", "-t", "1", "--rmi", "local"]);
    assert!(!image_listed(&e, "pul-built"));
    assert!(image_listed(&e, &remote));
    assert!(image_listed(&e, "busybox"));
    // --rmi all: every image the stack used.
    stack_ok(&e, &dir, &["up", "-d", "--pull", "missing"]);
    stack_ok(&e, &dir, &["down", "-t", "1", "--rmi", "all"]);
    assert!(!image_listed(&e, &remote));
    assert!(!image_listed(&e, "pul-built"));
    // `stack pull` fetches it again (the CLI's own image store, as `berth pull`).
    stack_ok(&e, &dir, &["stack", "pull", "-q", "web"]);
    assert!(image_listed(&e, &remote));

    // `stack push` sends the images of built services that name one; `stack pull` of the
    // service brings it back after it was removed here.
    let pushed = format!("{}/tools/pushed", registry.host);
    let dir = project(
        &e,
        "push",
        &format!(
            "name: psh\nservices:\n  app:\n    build: .\n    image: {pushed}\n    command: sleep 600\n"
        ),
    );
    std::fs::write(
        dir.join("Dockerfile"),
        "FROM busybox\nRUN echo pushed > /pushed\n",
    )
    .unwrap();
    stack_ok(&e, &dir, &["up", "-d", "--progress", "quiet"]);
    stack_ok(&e, &dir, &["stack", "push", "-q"]);
    stack_ok(&e, &dir, &["down", "-t", "1", "--rmi", "all"]);
    assert!(!image_listed(&e, &pushed));
    stack_ok(&e, &dir, &["stack", "pull", "-q"]);
    assert!(image_listed(&e, &pushed));
    let (code, out, _) = e.run(&["run", "--rm", &pushed, "cat", "/pushed"]);
    assert_eq!((code, out.as_str()), (Some(0), "pushed\n"));
}

#[test]
fn attached_up_streams_the_logs_and_ctrl_c_stops_the_stack() {
    use berth_tests::process::{LineReader, signal};
    let e = Env::new("stack_attached_up");
    let dir = project(
        &e,
        "app",
        "name: att\nservices:\n  web:\n    image: busybox\n    command: sh -c 'echo hello from web; trap \"exit 0\" TERM; while true; do sleep 0.1; done'\n",
    );
    let file = dir.join("compose.yaml");
    let (pid, stdout) = e.env.spawn(&["-f", file.to_str().unwrap(), "up"]);
    let lines = LineReader::new(stdout);
    let line = loop {
        let line = lines
            .next(Duration::from_secs(30))
            .expect("up prints the container's output");
        if line.contains("hello from web") {
            break line;
        }
    };
    assert!(
        line.starts_with("att-web-1 "),
        "prefixed with the container: {line:?}"
    );
    assert_eq!(
        ps(&e, &dir, false),
        [(
            "att-web-1".to_owned(),
            "web".to_owned(),
            "running".to_owned()
        )]
    );
    // Ctrl-C: the stack is stopped (not removed) and `up` returns.
    signal(pid, nix::sys::signal::Signal::SIGINT);
    e.env.wait_spawned(pid, Duration::from_secs(30));
    assert_eq!(
        ps(&e, &dir, true),
        [(
            "att-web-1".to_owned(),
            "web".to_owned(),
            "exited".to_owned()
        )]
    );
    stack_ok(&e, &dir, &["down"]);
}

/// `up` of the stack `max_failure_ratio` test at `version`, whose new replicas fail once
/// (the first to start after `failed` is removed from the shared directory).
fn ratio_stack(e: &Env, shared: &Path, version: u32, ratio: &str) -> PathBuf {
    let yaml = format!(
        "name: ratio\nservices:\n  web:\n    image: busybox\n    command: sh -c 'if mkdir /shared/failed 2>/dev/null; then sleep 0.2; exit 1; fi; exec sleep 600'\n    environment: [VERSION={version}]\n    volumes: [\"{}:/shared\"]\n    stop_grace_period: 1s\n    deploy:\n      replicas: 4\n      update_config: {{parallelism: 1, monitor: 1s, max_failure_ratio: {ratio}}}\n",
        shared.display()
    );
    project(e, "app", &yaml)
}

/// VERSION of each running replica, by number.
fn versions(e: &Env, dir: &Path) -> Vec<String> {
    (1..=4)
        .map(|n| {
            let (code, out, _) = stack(
                e,
                dir,
                &[
                    "stack",
                    "exec",
                    "-T",
                    "--index",
                    &n.to_string(),
                    "web",
                    "sh",
                    "-c",
                    "echo $VERSION",
                ],
            );
            if code == Some(0) {
                out.trim().to_owned()
            } else {
                "down".to_owned()
            }
        })
        .collect()
}

#[test]
fn max_failure_ratio_lets_a_rolling_update_go_on_past_tolerated_failures() {
    let e = Env::new("stack_failure_ratio");
    let shared = e.env.dir().join("shared");
    std::fs::create_dir_all(&shared).unwrap();
    // Version 1 comes up (its first replica fails once: mark that as done first).
    std::fs::create_dir(shared.join("failed")).unwrap();
    let dir = ratio_stack(&e, &shared, 1, "0");
    stack_ok(&e, &dir, &["up", "-d"]);
    assert_eq!(versions(&e, &dir), ["1", "1", "1", "1"]);

    // Ratio 0: the first failure pauses the update; the rest keep version 1.
    std::fs::remove_dir(shared.join("failed")).unwrap();
    let dir = ratio_stack(&e, &shared, 2, "0");
    let (code, _, err) = stack(&e, &dir, &["up", "-d"]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("update paused after 0 of 4 replicas"), "{err}");
    assert_eq!(versions(&e, &dir), ["down", "1", "1", "1"]);

    // Ratio 0.25: one failure in four is tolerated, every other replica is updated, and
    // `up` still names the replica that failed.
    std::fs::remove_dir(shared.join("failed")).unwrap();
    let dir = ratio_stack(&e, &shared, 3, "0.25");
    let (code, _, err) = stack(&e, &dir, &["up", "-d"]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("exited with code 1"), "{err}");
    assert!(!err.contains("paused"), "{err}");
    let v = versions(&e, &dir);
    assert_eq!(v.iter().filter(|v| *v == "3").count(), 3, "{v:?}");
    assert_eq!(v.iter().filter(|v| *v == "down").count(), 1, "{v:?}");
    stack_ok(&e, &dir, &["down", "-t", "1"]);
}
