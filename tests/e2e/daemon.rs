//! The daemon: auto-start, one daemon per root, crash recovery, the socket, the
//! event stream and the API's conformance to schemas/api.openapi.yaml.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::time::Duration;

use berth_tests::openapi::{self, OpenApi};
use berth_tests::process::{self, LineReader};
use berth_tests::{TestEnv, eventually};
use nix::sys::signal::Signal;
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(20);

fn daemon_events(env: &TestEnv) -> Vec<Value> {
    let mut events = env.events();
    events.retain(|e| e["type"] == "daemon");
    events
}

fn summary(events: &[Value]) -> Vec<(String, String)> {
    events
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap().to_string(),
                e["id"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn first_command_starts_a_daemon_and_the_next_one_reuses_it() {
    let env = TestEnv::new("daemon-autostart");
    assert_eq!(env.daemon_pid(), None);
    assert!(!env.socket.exists());

    let info = env.run_json(&["info"]);
    let pid = env
        .daemon_pid()
        .expect("the first command started a daemon");
    assert_eq!(info["pid"], pid);
    assert_eq!(info["root"], env.root.to_str().unwrap());
    assert_eq!(info["socket"], env.socket.to_str().unwrap());
    assert!(process::alive(pid));
    assert!(env.root.join("daemon.log").is_file());

    let version = env.run_json(&["version"]);
    assert_eq!(version["client"], version["server"]);
    assert_eq!(version["server"]["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(version["server"]["api_version"], "1");

    let again = env.run_json(&["info"]);
    assert_eq!(again["pid"], pid, "the second command reused the daemon");
    let human = env.run_ok(&["info"]);
    assert!(
        human
            .lines()
            .any(|l| l == format!("Pid:             {pid}")),
        "{human}"
    );
    assert!(human.lines().any(|l| l == "Containers:      0"), "{human}");
    assert_eq!(env.daemon_pid(), Some(pid));
    // One daemon started, so one `daemon start` event.
    assert_eq!(
        summary(&daemon_events(&env)),
        [("start".to_string(), pid.to_string())]
    );
}

#[test]
fn a_second_daemon_on_the_same_root_is_refused() {
    let env = TestEnv::new("daemon-second-refused");
    env.run_ok(&["version"]);
    let pid = env.daemon_pid().unwrap();

    // Same root and run dir: the pid file is locked.
    let out = env.run(&["daemon"]);
    assert_eq!(out.status.code(), Some(4));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("a berth daemon (pid {pid}) is already running")),
        "{stderr}"
    );
    assert!(stderr.contains("berth.pid"), "{stderr}");

    // Same root, another run dir and socket: the root's lock refuses it.
    let other_run = env.dir().join("other-run");
    let mut cmd = env.command_at(&env.root, &other_run);
    cmd.arg("daemon");
    let out = env.run_command(cmd, "--run-dir other-run daemon");
    assert_eq!(out.status.code(), Some(4));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("(pid {pid}) is already running")),
        "{stderr}"
    );
    assert!(stderr.contains("engine.lock"), "{stderr}");
    assert!(!other_run.join("berth.sock").exists());

    // Another root, but the first daemon's socket: never stolen.
    let mut cmd = env.command_at(&env.dir().join("other-root"), &other_run);
    cmd.arg("--host")
        .arg(format!("unix://{}", env.socket.display()))
        .arg("daemon");
    let out = env.run_command(cmd, "--root other-root --host <first socket> daemon");
    assert_eq!(out.status.code(), Some(4));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("is in use by another berth daemon"),
        "{stderr}"
    );

    // The first daemon is untouched and still answers.
    assert_eq!(env.run_json(&["info"])["pid"], pid);
}

#[test]
fn after_kill_9_the_next_command_starts_a_new_daemon_with_state_intact() {
    let env = TestEnv::new("daemon-kill-9");
    env.run_ok(&["info"]);
    let first = env.daemon_pid().unwrap();
    // A state document the engine manages (as the reconciler will write them).
    let volume = env.root.join("state/volumes/data.json");
    std::fs::write(&volume, r#"{"name": "data"}"#).unwrap();

    process::signal(first, Signal::SIGKILL);
    assert!(process::wait_dead(first, WAIT));
    assert!(env.socket.exists(), "kill -9 leaves a stale socket behind");

    let info = env.run_json(&["info"]);
    let second = env.daemon_pid().unwrap();
    assert_ne!(second, first);
    assert_eq!(info["pid"], second);
    assert_eq!(info["counts"]["volumes"], 1);
    assert_eq!(
        std::fs::read_to_string(&volume).unwrap(),
        r#"{"name": "data"}"#
    );
    // The first daemon's journal survived; the killed one never said `stop`.
    assert_eq!(
        summary(&daemon_events(&env)),
        [
            ("start".to_string(), first.to_string()),
            ("start".to_string(), second.to_string())
        ]
    );
}

#[test]
fn sigterm_and_sigint_stop_the_daemon_cleanly() {
    let env = TestEnv::new("daemon-sigterm");
    env.run_ok(&["version"]);
    let pid = env.daemon_pid().unwrap();
    process::signal(pid, Signal::SIGTERM);
    assert!(process::wait_dead(pid, WAIT));
    assert!(!env.socket.exists(), "socket removed");
    assert!(!env.run_dir.join("berth.pid").exists(), "pid file removed");

    env.run_ok(&["version"]);
    let next = env.daemon_pid().unwrap();
    let events = daemon_events(&env);
    assert_eq!(
        summary(&events),
        [
            ("start".to_string(), pid.to_string()),
            ("stop".to_string(), pid.to_string()),
            ("start".to_string(), next.to_string())
        ]
    );
    assert_eq!(events[1]["attributes"]["reason"], "SIGTERM");

    // Ctrl-C of a foreground daemon (SIGINT) is a clean stop too.
    process::signal(next, Signal::SIGINT);
    assert!(process::wait_dead(next, WAIT));
    assert!(!env.socket.exists(), "socket removed");
    let events = daemon_events(&env);
    let last_stop = events.iter().rev().find(|e| e["action"] == "stop").unwrap();
    assert_eq!(last_stop["id"], next.to_string());
    assert_eq!(last_stop["attributes"]["reason"], "SIGINT");
}

#[test]
fn daemon_stop_asks_the_daemon_to_exit_and_waits() {
    let env = TestEnv::new("daemon-stop");
    let out = env.run_ok(&["daemon", "stop"]);
    assert_eq!(out, "", "nothing to stop");
    assert_eq!(
        env.daemon_pid(),
        None,
        "`daemon stop` does not start a daemon"
    );

    env.run_ok(&["version"]);
    let pid = env.daemon_pid().unwrap();
    let out = env.run_ok(&["daemon", "stop"]);
    assert_eq!(out.trim(), format!("stopped berth daemon (pid {pid})"));
    assert!(!env.socket.exists());
    assert!(process::wait_dead(pid, WAIT));
}

#[test]
fn socket_has_mode_0660_and_group_root() {
    berth_tests::require_root("the daemon gives its socket to group root");
    let env = TestEnv::new("daemon-socket-mode");
    env.run_ok(&["version"]);
    let meta = std::fs::metadata(&env.socket).unwrap();
    assert_eq!(meta.permissions().mode() & 0o7777, 0o660);
    assert_eq!(meta.gid(), 0);
    use std::os::unix::fs::FileTypeExt;
    assert!(meta.file_type().is_socket());
}

#[test]
fn group_option_chooses_the_socket_group() {
    berth_tests::require_root("giving the socket to another group needs root");
    let env = TestEnv::new("daemon-socket-group");
    let (pid, _stdout) = env.spawn(&["daemon", "--group", "nogroup"]);
    eventually("the daemon's socket", WAIT, || {
        env.socket.exists().then_some(())
    });
    let meta = std::fs::metadata(&env.socket).unwrap();
    assert_eq!(meta.gid(), 65534, "Debian's nogroup");
    assert_eq!(meta.permissions().mode() & 0o7777, 0o660);
    env.run_ok(&["daemon", "stop"]);
    assert_eq!(
        env.wait_spawned(pid, WAIT),
        Some(0),
        "foreground daemon exits 0"
    );

    let out = env.run(&["daemon", "--group", "no-such-group-berth"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("unknown group \"no-such-group-berth\""),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn host_option_chooses_the_socket() {
    let env = TestEnv::new("daemon-host");
    let socket = env.dir().join("custom.sock");
    let host = format!("unix://{}", socket.display());
    let info = env.run_json(&["--host", &host, "info"]);
    assert_eq!(info["socket"], socket.to_str().unwrap());
    assert!(socket.exists());
    assert!(!env.socket.exists(), "the default socket is not used");
    // BERTH_HOST works the same way and reaches the same daemon.
    let mut cmd = env.command();
    cmd.env("BERTH_HOST", &host)
        .args(["info", "--format", "json"]);
    let out = env.run_command(cmd, "info (BERTH_HOST)");
    let again: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(again["pid"], info["pid"]);
}

#[test]
fn a_daemon_that_cannot_start_is_reported_with_its_log() {
    let env = TestEnv::new("daemon-start-fails");
    // The run dir is a file, so the daemon cannot create its pid file.
    std::fs::write(env.dir().join("run"), b"not a directory").unwrap();
    let mut cmd = env.command();
    cmd.arg("--host")
        .arg(format!("unix://{}", env.dir().join("s.sock").display()))
        .arg("version");
    let out = env.run_command(cmd, "version (run dir is a file)");
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let log = env.root.join("daemon.log");
    assert!(
        stderr.contains("the berth daemon exited while starting")
            && stderr.contains(log.to_str().unwrap()),
        "{stderr}"
    );
    assert!(
        env.daemon_log().contains("create directory"),
        "{}",
        env.daemon_log()
    );
    // The client's own version is still shown.
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        stdout,
        format!(
            "Client:\n Version:      {}\n API version:  1\n OS/Arch:      {}/{}\n",
            env!("CARGO_PKG_VERSION"),
            std::env::consts::OS,
            std::env::consts::ARCH
        )
    );
}

#[test]
fn events_since_0_replays_the_daemon_start_and_streams_live_events() {
    let env = TestEnv::new("daemon-events-stream");
    let (events_pid, stdout) = env.spawn(&["events", "--since", "0", "--format", "json"]);
    let lines = LineReader::new(stdout);
    // The subscriber started the daemon; its `daemon start` event is replayed.
    let first: Value = serde_json::from_str(&lines.next(WAIT).expect("an event")).unwrap();
    let pid = env.daemon_pid().unwrap();
    assert_eq!(first["type"], "daemon");
    assert_eq!(first["action"], "start");
    assert_eq!(first["id"], pid.to_string());
    assert_eq!(first["attributes"]["root"], env.root.to_str().unwrap());
    assert!(first["time"].as_str().unwrap().ends_with('Z'));

    // A live event: the daemon's own `stop`, after which the stream ends cleanly.
    env.run_ok(&["daemon", "stop"]);
    let stop: Value = serde_json::from_str(&lines.next(WAIT).expect("the stop event")).unwrap();
    assert_eq!(
        (&stop["action"], &stop["id"]),
        (&Value::from("stop"), &Value::from(pid.to_string()))
    );
    assert_eq!(stop["attributes"]["reason"], "shutdown request");
    assert_eq!(lines.next(WAIT), None);
    assert_eq!(env.wait_spawned(events_pid, WAIT), Some(0));
}

#[test]
fn events_human_format_is_one_line_per_event_like_docker() {
    let env = TestEnv::new("daemon-events-human");
    env.run_ok(&["version"]);
    let pid = env.daemon_pid().unwrap();
    let out = env.run_ok(&["events", "--since", "1h", "--until", "0s"]);
    let line = out.lines().next().expect("one event");
    let (time, rest) = line.split_once(' ').unwrap();
    assert!(
        time.len() == "2026-11-22T11:56:21.568282650Z".len() && time.ends_with('Z'),
        "{line}"
    );
    assert_eq!(
        rest,
        format!(
            "daemon start {pid} (root={}, socket={}, version={})",
            env.root.display(),
            env.socket.display(),
            env!("CARGO_PKG_VERSION")
        )
    );
    // A window in the past that holds no event.
    let out = env.run_ok(&["events", "--since", "0", "--until", "1000"]);
    assert_eq!(out, "");
    let out = env.run(&["events", "--since", "yesterday-ish"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid time \"yesterday-ish\""));
}

#[test]
fn api_responses_match_the_openapi_document() {
    let api = OpenApi::load(&openapi::default_path());
    let env = TestEnv::new("daemon-openapi");
    env.run_ok(&["version"]);
    let check = |method: &str, path: &str, status: u16| {
        let resp = env.http(method, path);
        assert_eq!(resp.status, status, "{method} {path}: {}", resp.body);
        api.check(method, path.split('?').next().unwrap(), &resp)
            .unwrap_or_else(|e| panic!("{e}\nbody: {}", resp.body));
        resp
    };
    check("GET", "/v1/version", 200);
    let info = check("GET", "/v1/info", 200);
    assert!(info.body.contains("\"counts\""));
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let events = check("GET", &format!("/v1/events?since=0&until={now}"), 200);
    assert!(events.body.lines().count() >= 1, "{}", events.body);
    let bad = check("GET", "/v1/events?since=soon", 400);
    assert!(bad.body.contains("invalid time"), "{}", bad.body);
    // Undocumented methods and routes get the documented Error body too.
    let error_schema = serde_json::json!({"$ref": "#/components/schemas/Error"});
    for (method, path, status, message) in [
        (
            "POST",
            "/v1/version",
            405,
            "POST is not allowed on /v1/version",
        ),
        ("GET", "/v1/nowhere", 404, "no such route: /v1/nowhere"),
    ] {
        let resp = env.http(method, path);
        assert_eq!(resp.status, status, "{method} {path}");
        assert_eq!(resp.content_type, "application/json");
        let body: Value = serde_json::from_str(&resp.body).unwrap();
        let mut errors = Vec::new();
        api.validate(&error_schema, &body, "$", &mut errors);
        assert_eq!(errors, Vec::<String>::new());
        assert_eq!(body["message"], message);
    }
    let pid = env.daemon_pid().unwrap();
    let ack = check("POST", "/v1/shutdown", 202);
    assert_eq!(
        serde_json::from_str::<Value>(&ack.body).unwrap()["pid"],
        pid
    );
    assert!(process::wait_dead(pid, WAIT));
    eventually("the socket to be removed", WAIT, || {
        (!env.socket.exists()).then_some(())
    });
}

#[test]
fn concurrent_first_commands_share_one_daemon() {
    let env = TestEnv::new("daemon-concurrent-start");
    let mut children: Vec<_> = (0..4)
        .map(|_| {
            env.command()
                .args(["info", "--format", "json"])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let pids: Vec<Value> = children
        .drain(..)
        .map(|c| {
            let out = c.wait_with_output().unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            serde_json::from_slice::<Value>(&out.stdout).unwrap()["pid"].clone()
        })
        .collect();
    let pid = env.daemon_pid().expect("a daemon runs");
    assert_eq!(pids, vec![Value::from(pid); 4]);
    // Only the winner of the race ever served: one `daemon start` event.
    assert_eq!(
        summary(&daemon_events(&env)),
        [("start".to_string(), pid.to_string())]
    );
}

#[test]
fn two_roots_run_two_independent_daemons_side_by_side() {
    let a = TestEnv::new("daemon-side-a");
    let b = TestEnv::new("daemon-side-b");
    let info_a = a.run_json(&["info"]);
    let info_b = b.run_json(&["info"]);
    assert_ne!(info_a["pid"], info_b["pid"]);
    assert_eq!(info_a["root"], a.root.to_str().unwrap());
    assert_eq!(info_b["root"], b.root.to_str().unwrap());
    // Each journal holds only its own daemon's events.
    let pid_a = a.daemon_pid().unwrap().to_string();
    let pid_b = b.daemon_pid().unwrap().to_string();
    assert_eq!(summary(&daemon_events(&a)), [("start".to_string(), pid_a)]);
    a.run_ok(&["daemon", "stop"]);
    assert_eq!(
        b.run_json(&["info"])["pid"],
        info_b["pid"],
        "b is unaffected"
    );
    assert_eq!(summary(&daemon_events(&b)), [("start".to_string(), pid_b)]);
}

#[test]
fn a_daemon_dying_without_answering_is_replaced_transparently() {
    let env = TestEnv::new("daemon-dying");
    std::fs::create_dir_all(&env.run_dir).unwrap();
    // Stands in for a daemon just killed with -9: its socket still accepts while
    // its threads exit, but no request gets an answer; then it is gone.
    let listener = std::os::unix::net::UnixListener::bind(&env.socket).unwrap();
    let socket = env.socket.clone();
    let dying = std::thread::spawn(move || {
        for _ in 0..4 {
            let (conn, _) = listener.accept().unwrap();
            drop(conn);
        }
        drop(listener);
        std::fs::remove_file(&socket).unwrap();
    });
    let info = env.run_json(&["info"]);
    dying.join().unwrap();
    assert_eq!(info["pid"], env.daemon_pid().expect("a new daemon"));
    assert_eq!(info["root"], env.root.to_str().unwrap());
}
