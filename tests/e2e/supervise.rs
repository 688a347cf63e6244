//! The daemon's supervisor as a user meets it: a `--restart always` container comes back
//! after a crash, and after a `kill -9` of the daemon the next daemon re-adopts the container
//! (records the exit it missed, restarts it) without duplicating it.
//!
//! The container's pid is read from the runtime's state file so that the test does not
//! depend on whether container commands run in the CLI or behind the daemon.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use berth_tests::process;
use berth_tests::{TestEnv, eventually, require_root};
use nix::sys::signal::Signal;
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(30);

/// A test env with `busybox:latest`; on drop the daemon is stopped first (so that container
/// commands can open the root), then every container is removed.
struct Env {
    env: TestEnv,
}

impl Env {
    fn new(name: &str) -> Env {
        require_root("containers need namespaces, mounts, cgroups and netlink");
        let env = TestEnv::new(name);
        let rootfs = env.dir().join("busybox-rootfs");
        for d in ["bin", "etc", "tmp", "proc", "sys", "dev", "root"] {
            std::fs::create_dir_all(rootfs.join(d)).unwrap();
        }
        std::fs::copy("/bin/busybox", rootfs.join("bin/busybox")).unwrap();
        let list = Command::new("/bin/busybox").arg("--list").output().unwrap();
        for applet in String::from_utf8(list.stdout).unwrap().lines() {
            if applet != "busybox" {
                std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(applet)).unwrap();
            }
        }
        std::fs::write(rootfs.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n").unwrap();
        env.run_ok(&[
            "import",
            rootfs.to_str().unwrap(),
            "busybox:latest",
            "--change",
            "CMD [\"sh\"]",
            "--change",
            "ENV PATH=/bin",
        ]);
        Env { env }
    }

    fn stop_daemon(&self) {
        if let Some(pid) = self.env.daemon_pid()
            && process::alive(pid)
        {
            process::signal(pid, Signal::SIGTERM);
            assert!(process::wait_dead(pid, WAIT), "daemon {pid} did not stop");
        }
    }

    /// The runtime's state of container `id` (`<root>/runtime/<short id>/state.json`).
    fn state(&self, id: &str) -> Option<Value> {
        let text = std::fs::read_to_string(state_path(&self.env.root, id)).ok()?;
        serde_json::from_str(&text).ok()
    }

    fn running_pid(&self, id: &str) -> Option<i64> {
        let s = self.state(id)?;
        (s["status"] == "running")
            .then(|| s["pid"].as_i64())
            .flatten()
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        self.stop_daemon();
        let out = self.env.run(&["ps", "-aq"]);
        for id in String::from_utf8_lossy(&out.stdout).split_whitespace() {
            let _ = self.env.run(&["rm", "-f", id]);
        }
        self.stop_daemon();
    }
}

fn state_path(root: &Path, id: &str) -> PathBuf {
    root.join("runtime").join(&id[..12]).join("state.json")
}

fn entries(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
                .count()
        })
        .unwrap_or(0)
}

#[test]
fn a_killed_daemon_is_replaced_by_one_that_re_adopts_its_container() {
    let e = Env::new("supervise-kill-9");
    let id = e
        .env
        .run_ok(&[
            "run",
            "-d",
            "--restart",
            "always",
            "--name",
            "web",
            "busybox",
            "sleep",
            "1000",
        ])
        .trim()
        .to_string();
    assert_eq!(id.len(), 64, "run -d prints the id: {id:?}");
    let first = eventually("the container to run", WAIT, || e.running_pid(&id));

    // A daemon supervises it: a crash is followed by a restart.
    let daemon = e.env.run_json(&["info"])["pid"].as_u64().unwrap() as u32;
    process::signal(first as u32, Signal::SIGKILL);
    let second = eventually("the supervisor to restart it", WAIT, || {
        e.running_pid(&id).filter(|p| *p != first)
    });

    // kill -9 of the daemon; the container lives on under its monitor, then crashes while
    // no daemon watches.
    process::signal(daemon, Signal::SIGKILL);
    assert!(process::wait_dead(daemon, WAIT));
    assert!(
        process::alive(second as u32),
        "the container outlives the daemon"
    );
    process::signal(second as u32, Signal::SIGKILL);
    eventually("the crash to be recorded by its monitor", WAIT, || {
        (e.state(&id)?["status"] == "stopped").then_some(())
    });

    // The next daemon records the missed exit and restarts the container, once.
    let next = e.env.run_json(&["info"])["pid"].as_u64().unwrap() as u32;
    assert_ne!(next, daemon);
    let third = eventually("the new daemon to restart it", WAIT, || e.running_pid(&id));
    assert!(third != first && third != second);
    let dies: Vec<Value> = e
        .env
        .events()
        .into_iter()
        .filter(|ev| ev["id"] == id.as_str() && ev["action"] == "die")
        .collect();
    assert_eq!(dies.len(), 2, "{dies:?}");
    assert_eq!(dies[0]["attributes"]["exitCode"], "137");
    assert_eq!(dies[0]["attributes"].get("missed"), None);
    assert_eq!(dies[1]["attributes"]["exitCode"], "137");
    assert_eq!(dies[1]["attributes"]["missed"], "true");

    // Not duplicated: one runtime container, one document, one container directory.
    assert_eq!(entries(&e.env.root.join("runtime")), 1);
    assert_eq!(entries(&e.env.root.join("state/containers")), 1);
    assert_eq!(entries(&e.env.root.join("containers")), 1);

    // After the daemon stops, `inspect` and `ps` show one running container restarted twice.
    e.stop_daemon();
    let inspect: Value = serde_json::from_str(&e.env.run_ok(&["inspect", "web"])).unwrap();
    assert_eq!(inspect[0]["State"]["Status"], "running");
    assert_eq!(inspect[0]["RestartCount"], 2);
    assert_eq!(inspect[0]["HostConfig"]["RestartPolicy"]["Name"], "always");
    let ps = e.env.run_ok(&["ps", "-q"]);
    assert_eq!(ps.split_whitespace().collect::<Vec<_>>(), [&id[..12]]);
}

#[test]
fn health_check_flags_show_in_ps_and_inspect() {
    let e = Env::new("supervise-health");
    let id = e
        .env
        .run_ok(&[
            "run",
            "-d",
            "--name",
            "hc",
            "--health-cmd",
            "cat /tmp/ok",
            "--health-interval",
            "200ms",
            "--health-retries",
            "2",
            "busybox",
            "sh",
            "-c",
            "echo ok > /tmp/ok; sleep 1000",
        ])
        .trim()
        .to_string();
    // The daemon runs the checks.
    e.env.run_json(&["info"]);
    eventually("the healthy event", WAIT, || {
        e.env
            .events()
            .into_iter()
            .any(|ev| ev["id"] == id.as_str() && ev["action"] == "health_status: healthy")
            .then_some(())
    });
    e.stop_daemon();

    let ps = e.env.run_ok(&["ps"]);
    let row = ps.lines().find(|l| l.ends_with("hc")).expect("hc in ps");
    assert!(row.contains(" (healthy)"), "{ps}");
    let inspect: Value = serde_json::from_str(&e.env.run_ok(&["inspect", "hc"])).unwrap();
    let health = &inspect[0]["State"]["Health"];
    assert_eq!(health["Status"], "healthy");
    assert_eq!(health["FailingStreak"], 0);
    let last = health["Log"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["ExitCode"], 0);
    assert_eq!(last["Output"], "ok\n");
    let check = &inspect[0]["Config"]["Healthcheck"];
    assert_eq!(
        check["Test"],
        serde_json::json!(["CMD-SHELL", "cat /tmp/ok"])
    );
    assert_eq!(check["Interval"], 200_000_000);
    assert_eq!(check["Retries"], 2);
}

#[test]
fn conflicting_supervision_flags_are_refused() {
    let e = Env::new("supervise-flags");
    for args in [
        &[
            "run",
            "-d",
            "--rm",
            "--restart",
            "always",
            "busybox",
            "true",
        ][..],
        &[
            "run",
            "-d",
            "--no-healthcheck",
            "--health-cmd",
            "true",
            "busybox",
            "true",
        ],
        &["run", "-d", "--restart", "sometimes", "busybox", "true"],
        &["run", "-d", "--health-interval", "soon", "busybox", "true"],
    ] {
        let out = e.env.run(args);
        assert_ne!(out.status.code(), Some(0), "{args:?} was accepted");
        assert!(!String::from_utf8_lossy(&out.stderr).is_empty(), "{args:?}");
    }
    let ps = e.env.run_ok(&["ps", "-aq"]);
    assert_eq!(ps.trim(), "", "no container was created");
}

#[test]
fn a_detached_rm_container_is_removed_by_the_daemon_when_it_exits() {
    let e = Env::new("supervise-rm");
    let id = e
        .env
        .run_ok(&["run", "-d", "--rm", "busybox", "sh", "-c", "sleep 0.3"])
        .trim()
        .to_string();
    eventually("the container to be removed", WAIT, || {
        e.env.run_ok(&["ps", "-aq"]).trim().is_empty().then_some(())
    });
    assert!(!e.env.root.join("containers").join(&id).exists());
    assert!(!state_path(&e.env.root, &id).exists());
    let actions: Vec<String> = e
        .env
        .events()
        .into_iter()
        .filter(|ev| ev["id"] == id.as_str())
        .map(|ev| ev["action"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(actions, ["start", "die", "destroy"]);
}
