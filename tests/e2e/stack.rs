//! Stacks as a user runs them: `berth up -d` brings a Compose file up in dependency order and
//! its published port answers; a second `up` touches nothing; editing one service's
//! environment recreates that service alone and says why; a dependency that exits non-zero
//! fails `up` naming it while the rest keeps running; secrets, configs and replicas; `down`
//! leaves no container, mount, link, nft table or cgroup, and `down -v` removes volumes.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use berth_tests::eventually;

use crate::run::Env;

/// A project directory with `compose.yaml` in the env's temporary directory.
pub(crate) fn project(e: &Env, name: &str, yaml: &str) -> PathBuf {
    let dir = e.env.dir().join(name);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("compose.yaml"), yaml).unwrap();
    dir
}

/// `berth -f <dir>/compose.yaml <args>`: exit code, stdout, stderr.
pub(crate) fn stack(e: &Env, dir: &Path, args: &[&str]) -> (Option<i32>, String, String) {
    let file = dir.join("compose.yaml");
    let mut all = vec!["-f", file.to_str().unwrap()];
    all.extend_from_slice(args);
    e.run(&all)
}

fn stack_ok(e: &Env, dir: &Path, args: &[&str]) -> (String, String) {
    let (code, out, err) = stack(e, dir, args);
    assert_eq!(code, Some(0), "berth {args:?} failed: {err}");
    (out, err)
}

/// `stack ps -a --format json`, as (name, service, state, id).
fn ps(e: &Env, dir: &Path) -> Vec<(String, String, String, String)> {
    let (out, _) = stack_ok(e, dir, &["stack", "ps", "-a", "--format", "json"]);
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
                c["ID"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    list.sort();
    list
}

/// An HTTP GET of `/` on 127.0.0.1:`port`: the body.
fn http_get(port: &str) -> Option<String> {
    let mut s = TcpStream::connect(port).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    s.write_all(b"GET / HTTP/1.0\r\nHost: x\r\n\r\n").ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    text.split_once("\r\n\r\n").map(|(_, b)| b.to_owned())
}

/// The time of the first `start` event of container `name`.
fn started_at(e: &Env, name: &str) -> String {
    e.env
        .events()
        .iter()
        .find(|ev| {
            ev["type"] == "container" && ev["action"] == "start" && ev["attributes"]["name"] == name
        })
        .unwrap_or_else(|| panic!("no start event for {name}"))["time"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn mounts_under(dir: &Path) -> Vec<String> {
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter(|l| l.contains(dir.to_str().unwrap()))
        .map(str::to_owned)
        .collect()
}

/// berth's FNV-1a hash of a root path, from which it names the root's links and nft table.
fn root_hash(root: &Path) -> u32 {
    root.as_os_str()
        .as_encoded_bytes()
        .iter()
        .fold(0x811c_9dc5u32, |h, b| {
            (h ^ u32::from(*b)).wrapping_mul(0x0100_0193)
        })
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

fn nft_tables() -> String {
    let out = Command::new("nft")
        .args(["list", "tables"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

const ORDERED: &str = r#"
name: ordered
services:
  db:
    image: busybox:latest
    command: ["sh", "-c", "exec sleep 1000"]
    stop_grace_period: 1s
  init:
    image: busybox:latest
    command: ["sh", "-c", "sleep 0.5; echo hello from the stack > /www/index.html; echo initialised"]
    volumes: [site:/www]
  web:
    image: busybox:latest
    command: ["httpd", "-f", "-p", "80", "-h", "/www"]
    ports: ["127.0.0.1::80"]
    volumes: ["site:/www:ro"]
    stop_grace_period: 1s
    depends_on:
      db: {condition: service_started}
      init: {condition: service_completed_successfully}
volumes:
  site: {}
"#;

#[test]
fn up_starts_services_in_dependency_order_and_the_published_port_answers() {
    let e = Env::new("stack_up_order");
    let dir = project(&e, "ordered", ORDERED);
    stack_ok(&e, &dir, &["up", "-d"]);
    let states: Vec<(String, String)> = ps(&e, &dir)
        .into_iter()
        .map(|(n, _, s, _)| (n, s))
        .collect();
    assert_eq!(
        states,
        [
            ("ordered-db-1".to_owned(), "running".to_owned()),
            ("ordered-init-1".to_owned(), "exited".to_owned()),
            ("ordered-web-1".to_owned(), "running".to_owned()),
        ]
    );
    // web started after db started and after init had finished (RFC 3339 UTC sorts).
    let web = started_at(&e, "ordered-web-1");
    assert!(started_at(&e, "ordered-db-1") < web);
    let init = e.inspect("ordered-init-1");
    let finished = init["State"]["FinishedAt"].as_str().unwrap().to_owned();
    assert!(
        finished < web,
        "init finished {finished}, web started {web}"
    );
    assert_eq!(init["State"]["ExitCode"], 0);
    // The page init wrote into the volume, served by web on its published port.
    let (port, _) = stack_ok(&e, &dir, &["stack", "port", "web", "80"]);
    let port = port.trim().to_owned();
    let body = eventually("web to answer", Duration::from_secs(10), || http_get(&port));
    assert_eq!(body, "hello from the stack\n");
    let (logs, _) = stack_ok(&e, &dir, &["stack", "logs", "--no-log-prefix", "init"]);
    assert_eq!(logs, "initialised\n");
    let (logs, _) = stack_ok(&e, &dir, &["stack", "logs"]);
    assert!(logs.contains("ordered-init-1 | initialised"), "{logs}");
    let (ls, _) = stack_ok(&e, &dir, &["ls"]);
    assert!(ls.contains("ordered"), "{ls}");
    assert!(ls.contains(dir.to_str().unwrap()), "{ls}");
    // The stack routes answer as the OpenAPI document says.
    use berth_tests::openapi::{self, OpenApi};
    let api = OpenApi::load(&openapi::default_path());
    for path in ["/v1/stacks", "/v1/stacks/ordered/ps"] {
        let resp = e.env.http("GET", path);
        assert_eq!(resp.status, 200, "{path}: {}", resp.body);
        api.check("GET", path, &resp)
            .unwrap_or_else(|err| panic!("{err}\nbody: {}", resp.body));
    }
    let list: serde_json::Value =
        serde_json::from_str(&e.env.http("GET", "/v1/stacks").body).unwrap();
    assert_eq!(list[0]["name"], "ordered");
    assert_eq!(list[0]["status"], "exited(1), running(2)");
    stack_ok(&e, &dir, &["down", "-v"]);
}

#[test]
fn a_second_up_touches_nothing_and_an_edit_recreates_only_that_service() {
    let e = Env::new("stack_noop_edit");
    let yaml = r#"
name: edit
services:
  db:
    image: busybox:latest
    command: ["sleep", "1000"]
    stop_grace_period: 1s
  web:
    image: busybox:latest
    command: ["sleep", "1000"]
    environment: {GREETING: hello}
    stop_grace_period: 1s
    depends_on: [db]
"#;
    let dir = project(&e, "edit", yaml);
    stack_ok(&e, &dir, &["up", "-d"]);
    let before = ps(&e, &dir);
    let events_before = e.env.events().len();
    let (_, err) = stack_ok(&e, &dir, &["up", "-d", "--progress", "plain"]);
    assert_eq!(ps(&e, &dir), before);
    assert_eq!(e.env.events().len(), events_before, "no-op up made events");
    for word in ["Creating", "Recreating", "Starting", "Stopping", "Removing"] {
        assert!(!err.contains(word), "no-op up printed {word}: {err}");
    }
    std::fs::write(
        dir.join("compose.yaml"),
        yaml.replace("GREETING: hello", "GREETING: bonjour"),
    )
    .unwrap();
    let (_, err) = stack_ok(&e, &dir, &["up", "-d", "--progress", "plain"]);
    assert!(
        err.contains("Container edit-web-1  Recreating  web: environment changed"),
        "{err}"
    );
    assert!(!err.contains("edit-db-1  Recreating"), "{err}");
    let after = ps(&e, &dir);
    assert_eq!(after[0], before[0], "db was touched");
    assert_ne!(after[1].3, before[1].3, "web was not recreated");
    assert_eq!(after[1].2, "running");
    let (env, _) = stack_ok(&e, &dir, &["stack", "ps", "-q", "web"]);
    let out = e.ok(&["exec", env.trim(), "sh", "-c", "echo $GREETING"]);
    assert_eq!(out, "bonjour\n");
    // web leaves the file: its container is an orphan, reported, then removed on request.
    let db_only = yaml.split("  web:").next().unwrap();
    std::fs::write(dir.join("compose.yaml"), db_only).unwrap();
    let (_, err) = stack_ok(&e, &dir, &["up", "-d"]);
    assert!(
        err.contains("Found orphan containers (edit-web-1) for this project (edit)"),
        "{err}"
    );
    assert_eq!(ps(&e, &dir).len(), 2);
    stack_ok(&e, &dir, &["up", "-d", "--remove-orphans"]);
    let names: Vec<String> = ps(&e, &dir).into_iter().map(|(n, ..)| n).collect();
    assert_eq!(names, ["edit-db-1"]);
    stack_ok(&e, &dir, &["down"]);
}

#[test]
fn a_dependency_exiting_non_zero_fails_up_naming_it_and_keeps_the_rest() {
    let e = Env::new("stack_dep_fails");
    let dir = project(
        &e,
        "failing",
        r#"
name: failing
services:
  migrate:
    image: busybox:latest
    command: ["sh", "-c", "exit 3"]
  app:
    image: busybox:latest
    command: ["sleep", "1000"]
    depends_on:
      migrate: {condition: service_completed_successfully}
  other:
    image: busybox:latest
    command: ["sleep", "1000"]
    stop_grace_period: 1s
"#,
    );
    let (code, _, err) = stack(&e, &dir, &["up", "-d"]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("\"app\""), "{err}");
    assert!(
        err.contains("service \"migrate\" didn't complete successfully: exit 3"),
        "{err}"
    );
    let names: Vec<(String, String)> = ps(&e, &dir)
        .into_iter()
        .map(|(n, _, s, _)| (n, s))
        .collect();
    assert_eq!(
        names,
        [
            ("failing-migrate-1".to_owned(), "exited".to_owned()),
            ("failing-other-1".to_owned(), "running".to_owned()),
        ],
        "app must not exist, other must run"
    );
    stack_ok(&e, &dir, &["down"]);
}

#[test]
fn secrets_configs_and_replicas() {
    let e = Env::new("stack_secrets");
    let dir = project(
        &e,
        "files",
        r#"
name: files
services:
  app:
    image: busybox:latest
    command: ["sleep", "1000"]
    stop_grace_period: 1s
    deploy: {replicas: 2}
    secrets:
      - source: token
        uid: "1000"
        gid: "1000"
        mode: 0400
      - from_file
    configs:
      - source: settings
        target: /etc/app.conf
secrets:
  token: {content: s3cret}
  from_file: {file: ./password.txt}
configs:
  settings: {content: "level=debug"}
"#,
    );
    std::fs::write(dir.join("password.txt"), "hunter2").unwrap();
    stack_ok(&e, &dir, &["up", "-d"]);
    let names: Vec<String> = ps(&e, &dir).into_iter().map(|(n, ..)| n).collect();
    assert_eq!(names, ["files-app-1", "files-app-2"]);
    for name in &names {
        let out = e.ok(&[
            "exec",
            name,
            "sh",
            "-c",
            "stat -c '%u %g %a' /run/secrets/token; cat /run/secrets/token /run/secrets/from_file /etc/app.conf",
        ]);
        assert_eq!(out, "1000 1000 400\ns3crethunter2level=debug");
        // Read-only, and not part of the container's writable layer.
        let (code, _, _) = e.run(&["exec", name, "sh", "-c", "echo x > /run/secrets/token"]);
        assert_ne!(code, Some(0));
    }
    // A changed secret file recreates its users.
    std::fs::write(dir.join("password.txt"), "changed").unwrap();
    let (_, err) = stack_ok(&e, &dir, &["up", "-d", "--progress", "plain"]);
    assert!(err.contains("app: secret contents changed"), "{err}");
    let out = e.ok(&["exec", "files-app-2", "cat", "/run/secrets/from_file"]);
    assert_eq!(out, "changed");
    // --scale overrides the replicas; surplus ones go.
    stack_ok(&e, &dir, &["up", "-d", "--scale", "app=1"]);
    let names: Vec<String> = ps(&e, &dir).into_iter().map(|(n, ..)| n).collect();
    assert_eq!(names, ["files-app-1"]);
    stack_ok(&e, &dir, &["down"]);
}

#[test]
fn down_leaves_nothing_behind_and_only_down_v_removes_volumes() {
    let e = Env::new("stack_down");
    let dir = project(&e, "ordered", ORDERED);
    stack_ok(&e, &dir, &["up", "-d"]);
    let root = e.env.root.clone();
    let prefix = format!("berth{:04x}", root_hash(&root) & 0xffff);
    let table = format!("berth_{:08x}", root_hash(&root));
    let ids: Vec<String> = ps(&e, &dir).into_iter().map(|(.., id)| id).collect();
    assert_eq!(ids.len(), 3);
    assert!(!links_with(&prefix).is_empty());
    assert!(nft_tables().contains(&table));
    let volume = root.join("volumes/ordered_site/_data");
    assert!(volume.join("index.html").is_file());

    let (_, err) = stack_ok(&e, &dir, &["down", "--progress", "plain"]);
    assert!(err.contains("Network ordered_default  Removed"), "{err}");
    assert_eq!(ps(&e, &dir), Vec::new());
    assert_eq!(e.ok(&["ps", "-aq"]), "");
    assert_eq!(links_with(&prefix), Vec::<String>::new());
    assert!(!nft_tables().contains(&table), "{}", nft_tables());
    assert_eq!(mounts_under(&root), Vec::<String>::new());
    for id in &ids {
        let short = &id[..12];
        for ctrl in ["pids", "memory", "cpu"] {
            let cg = PathBuf::from(format!("/sys/fs/cgroup/{ctrl}/berth/{short}"));
            assert!(!cg.exists(), "{} left behind", cg.display());
        }
    }
    // The volume outlives `down`; the next `up` finds its content again.
    assert!(volume.join("index.html").is_file());
    let (ls, _) = stack_ok(&e, &dir, &["ls", "-q"]);
    assert_eq!(ls, "");
    stack_ok(&e, &dir, &["up", "-d"]);
    stack_ok(&e, &dir, &["down", "-v"]);
    assert!(!root.join("volumes/ordered_site").exists());
}

/// The repository's `examples/<name>`.
fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../examples")
        .join(name)
}

/// `berth -f examples/<name>/compose.yaml -f <override> <args>` with `env` set: the
/// override publishes `service`'s port 80 on an ephemeral localhost port instead of the
/// example's fixed one, so tests can run side by side.
fn example_cmd(
    e: &Env,
    name: &str,
    service: &str,
    env: &[(&str, &str)],
    args: &[&str],
) -> (Option<i32>, String, String) {
    let over = e.env.dir().join(format!("{name}-override.yaml"));
    std::fs::write(
        &over,
        format!("services:\n  {service}:\n    ports: !override [\"127.0.0.1::80\"]\n"),
    )
    .unwrap();
    let file = example(name).join("compose.yaml");
    let mut cmd = e.env.command();
    cmd.arg("-f").arg(&file).arg("-f").arg(&over).args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = e
        .env
        .run_command(cmd, &format!("{name} {}", args.join(" ")));
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Brings an example up, fetches `path` from `service`'s published port until the body
/// satisfies `check`, then takes the example down with its volumes.
fn example_answers(
    e: &Env,
    name: &str,
    service: &str,
    env: &[(&str, &str)],
    path: &str,
    check: impl Fn(&str) -> bool,
) -> String {
    let (code, _, err) = example_cmd(e, name, service, env, &["up", "-d"]);
    assert_eq!(code, Some(0), "{name} up: {err}");
    let (code, port, err) = example_cmd(e, name, service, env, &["stack", "port", service, "80"]);
    assert_eq!(code, Some(0), "{err}");
    let port = port.trim().to_owned();
    let body = eventually(
        &format!("{name} to answer"),
        Duration::from_secs(20),
        || {
            let mut s = TcpStream::connect(&port).ok()?;
            s.set_read_timeout(Some(Duration::from_secs(3))).ok()?;
            write!(s, "GET {path} HTTP/1.0\r\n\r\n").ok()?;
            let mut text = String::new();
            s.read_to_string(&mut text).ok()?;
            let body = text.split_once("\r\n\r\n")?.1.to_owned();
            check(&body).then_some(body)
        },
    );
    let (code, _, err) = example_cmd(e, name, service, env, &["down", "-v"]);
    assert_eq!(code, Some(0), "{name} down: {err}");
    body
}

#[test]
fn the_quotes_example_is_built_and_greets_by_name() {
    let e = Env::new("stack_example_quotes");
    let body = example_answers(&e, "quotes", "hello", &[], "/hello/Ada", |b| {
        b.starts_with("Hello, Ada! Your quote of the day: ")
    });
    let quote = body
        .trim_end()
        .strip_prefix("Hello, Ada! Your quote of the day: ")
        .unwrap();
    let quotes = std::fs::read_to_string(example("quotes").join("quotes.txt")).unwrap();
    assert!(
        quotes.lines().any(|q| q == quote),
        "{quote:?} is not a quote"
    );
}

#[test]
fn the_secrets_example_serves_three_replicas_with_their_secrets() {
    let e = Env::new("stack_example_secrets");
    let body = example_answers(
        &e,
        "secrets",
        "front",
        &[("API_TOKEN", "t0ken")],
        "/",
        |b| b.lines().count() == 3,
    );
    for line in body.lines() {
        assert!(
            line.ends_with(": hello from a config, password of 28 bytes"),
            "{line}"
        );
    }
}

#[test]
fn service_healthy_gates_dependents_and_up_wait_returns_once_all_are_ready() {
    let e = Env::new("stack_health_gate");
    let dir = project(
        &e,
        "gated",
        r#"
name: gated
services:
  api:
    image: busybox:latest
    command: ["sh", "-c", "sleep 1; touch /tmp/ready; exec sleep 1000"]
    stop_grace_period: 1s
    healthcheck:
      test: ["CMD", "test", "-f", "/tmp/ready"]
      interval: 200ms
      retries: 30
  web:
    image: busybox:latest
    command: ["sleep", "1000"]
    stop_grace_period: 1s
    depends_on:
      api: {condition: service_healthy}
  setup:
    image: busybox:latest
    command: ["true"]
"#,
    );
    let (_, err) = stack_ok(&e, &dir, &["up", "-d", "--wait", "--progress", "plain"]);
    assert!(err.contains("Container gated-api-1  Healthy"), "{err}");
    // --wait: a one-shot that exited 0 counts as done, the rest runs.
    let states: Vec<(String, String)> = ps(&e, &dir)
        .into_iter()
        .map(|(n, _, s, _)| (n, s))
        .collect();
    assert_eq!(
        states,
        [
            ("gated-api-1".to_owned(), "running".to_owned()),
            ("gated-setup-1".to_owned(), "exited".to_owned()),
            ("gated-web-1".to_owned(), "running".to_owned()),
        ]
    );
    // web started only after api was reported healthy.
    let events = e.env.events();
    let healthy = events
        .iter()
        .find(|ev| {
            ev["action"] == "health_status: healthy" && ev["attributes"]["name"] == "gated-api-1"
        })
        .unwrap_or_else(|| panic!("no healthy event: {events:?}"))["time"]
        .as_str()
        .unwrap()
        .to_owned();
    let web = started_at(&e, "gated-web-1");
    assert!(
        healthy < web,
        "api healthy at {healthy}, web started at {web}"
    );
    assert!(started_at(&e, "gated-api-1") < healthy);
    stack_ok(&e, &dir, &["down"]);
}

#[test]
fn the_demo_example_comes_up_behind_its_health_check_and_answers() {
    let e = Env::new("stack_example_demo");
    let body = example_answers(&e, "demo", "web", &[], "/", |b| {
        b.contains("hello from berth") && b.contains(r#"{"status":"ok"}"#)
    });
    assert!(body.starts_with("<h1>hello from berth</h1>"), "{body}");
}
