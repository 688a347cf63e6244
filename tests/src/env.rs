//! `TestEnv`: one test's private berth installation (root dir, run dir, socket) and
//! the daemon it ends up running, which is stopped when the env is dropped.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

use crate::http::{self, HttpResponse};
use crate::process;

/// How long one berth command may take before the test fails.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);

/// A private berth root, run dir and socket for one test.
///
/// Every command runs the berth binary under test with `--root` and `--run-dir`
/// pointing here. On drop, processes started with [`TestEnv::spawn`] are killed
/// and the daemon is stopped (SIGTERM, then SIGKILL). When the test is failing,
/// the directory is kept and the steps, the daemon log and the event journal are
/// copied to `tests/artifacts/<name>/`.
pub struct TestEnv {
    name: String,
    dir: Option<tempfile::TempDir>,
    /// `--root`.
    pub root: PathBuf,
    /// `--run-dir`.
    pub run_dir: PathBuf,
    /// The daemon's socket (the default one in the run dir).
    pub socket: PathBuf,
    steps: Mutex<String>,
    children: Mutex<Vec<Child>>,
    /// Pids of daemons seen, with the root each one serves.
    daemons: Mutex<Vec<(u32, PathBuf)>>,
    /// Every (root, run dir) a command of this env used.
    places: Mutex<Vec<(PathBuf, PathBuf)>>,
}

impl TestEnv {
    /// A fresh environment; `name` (the test's name) labels its directory and artifacts.
    pub fn new(name: &str) -> TestEnv {
        let dir = tempfile::Builder::new()
            .prefix(&format!("berth-{name}-"))
            .tempdir()
            .expect("create a temporary directory");
        let root = dir.path().join("root");
        let run_dir = dir.path().join("run");
        let socket = run_dir.join("berth.sock");
        TestEnv {
            name: name.to_string(),
            dir: Some(dir),
            root,
            run_dir,
            socket,
            steps: Mutex::new(String::new()),
            children: Mutex::new(Vec::new()),
            daemons: Mutex::new(Vec::new()),
            places: Mutex::new(Vec::new()),
        }
    }

    /// The temporary directory holding root and run dir.
    pub fn dir(&self) -> &Path {
        self.dir.as_ref().expect("present until drop").path()
    }

    /// A `berth` command with this env's `--root` and `--run-dir`, and no berth
    /// settings inherited from the environment.
    pub fn command(&self) -> Command {
        self.command_at(&self.root, &self.run_dir)
    }

    /// A `berth` command with another `--root` and `--run-dir` (for tests of several
    /// daemons); daemons it starts are stopped on drop like this env's own.
    pub fn command_at(&self, root: &Path, run_dir: &Path) -> Command {
        let mut places = self.places.lock().unwrap_or_else(|p| p.into_inner());
        let place = (root.to_path_buf(), run_dir.to_path_buf());
        if !places.contains(&place) {
            places.push(place);
        }
        drop(places);
        let mut cmd = Command::new(crate::berth_bin());
        cmd.arg("--root")
            .arg(root)
            .arg("--run-dir")
            .arg(run_dir)
            .env_remove("BERTH_HOST")
            .env_remove("BERTH_ROOT")
            .env_remove("BERTH_RUN_DIR");
        cmd
    }

    /// Runs `berth <args>` to completion (bounded), recording it as a step.
    pub fn run(&self, args: &[&str]) -> Output {
        let mut cmd = self.command();
        cmd.args(args);
        self.run_command(cmd, &args.join(" "))
    }

    /// Runs a prepared command to completion (bounded), recording it as a step.
    pub fn run_command(&self, mut cmd: Command, label: &str) -> Output {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("run berth {label}: {e}"));
        let start = Instant::now();
        while child.try_wait().expect("wait for berth").is_none() {
            if start.elapsed() > COMMAND_TIMEOUT {
                let _ = child.kill();
                let _ = child.wait();
                panic!("berth {label} did not finish within {COMMAND_TIMEOUT:?}");
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        let out = child.wait_with_output().expect("collect berth output");
        let mut steps = self.steps.lock().unwrap_or_else(|p| p.into_inner());
        let _ = writeln!(
            steps,
            "$ berth {label}\n[exit {:?} after {:?}]\n--- stdout\n{}--- stderr\n{}",
            out.status.code(),
            start.elapsed(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        drop(steps);
        self.note_daemon();
        out
    }

    /// Runs `berth <args>`, panics unless it succeeds, and returns its stdout.
    pub fn run_ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "berth {} failed ({:?}): {}",
            args.join(" "),
            out.status.code(),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("UTF-8 output")
    }

    /// Runs `berth <args> --format json` (the args must accept it) and parses stdout.
    pub fn run_json(&self, args: &[&str]) -> serde_json::Value {
        let mut all = args.to_vec();
        all.extend(["--format", "json"]);
        let out = self.run_ok(&all);
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("berth {all:?}: {e}: {out}"))
    }

    /// Starts `berth <args>` in the background with stdout piped; it is killed on drop.
    pub fn spawn(&self, args: &[&str]) -> (u32, std::process::ChildStdout) {
        let mut child = self
            .command()
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn berth {args:?}: {e}"));
        let stdout = child.stdout.take().expect("stdout is piped");
        let pid = child.id();
        self.children
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(child);
        (pid, stdout)
    }

    /// Waits for a process started by [`TestEnv::spawn`] and returns its exit code.
    pub fn wait_spawned(&self, pid: u32, timeout: Duration) -> Option<i32> {
        let start = Instant::now();
        loop {
            {
                let mut children = self.children.lock().unwrap_or_else(|p| p.into_inner());
                let child = children
                    .iter_mut()
                    .find(|c| c.id() == pid)
                    .expect("a child spawned by this env");
                if let Some(status) = child.try_wait().expect("wait for child") {
                    return status.code();
                }
            }
            if start.elapsed() > timeout {
                panic!("berth (pid {pid}) did not exit within {timeout:?}");
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// The pid in this env's daemon pid file, if there is one.
    pub fn daemon_pid(&self) -> Option<u32> {
        let pid = read_pid(&self.run_dir)?;
        self.remember(pid, &self.root);
        Some(pid)
    }

    fn remember(&self, pid: u32, root: &Path) {
        let mut daemons = self.daemons.lock().unwrap_or_else(|p| p.into_inner());
        if !daemons.iter().any(|(p, _)| *p == pid) {
            daemons.push((pid, root.to_path_buf()));
        }
    }

    /// Notes the daemons now running in every place this env's commands used.
    fn note_daemon(&self) {
        let places = self
            .places
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        for (root, run_dir) in places {
            if let Some(pid) = read_pid(&run_dir) {
                self.remember(pid, &root);
            }
        }
    }

    /// Every recorded event up to now (`berth events --since 0 --until 0s`), oldest first.
    pub fn events(&self) -> Vec<serde_json::Value> {
        let out = self.run_ok(&[
            "events", "--since", "0", "--until", "0s", "--format", "json",
        ]);
        out.lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("event {l:?}: {e}")))
            .collect()
    }

    /// The daemon's log (`<root>/daemon.log`), empty when there is none.
    pub fn daemon_log(&self) -> String {
        std::fs::read_to_string(self.root.join("daemon.log")).unwrap_or_default()
    }

    /// A raw HTTP/1.0 request to the daemon's socket.
    pub fn http(&self, method: &str, path: &str) -> HttpResponse {
        http::request(&self.socket, method, path)
    }

    fn keep_artifacts(&mut self) {
        let dir = self.dir.take().expect("present until drop").keep();
        let artifacts = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("artifacts")
            .join(&self.name);
        let _ = std::fs::create_dir_all(&artifacts);
        let steps = self.steps.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let _ = std::fs::write(artifacts.join("steps.log"), steps);
        for (from, to) in [
            ("daemon.log", "daemon.log"),
            ("events/journal.1.jsonl", "events.1.jsonl"),
            ("events/journal.jsonl", "events.jsonl"),
        ] {
            let _ = std::fs::copy(self.root.join(from), artifacts.join(to));
        }
        eprintln!(
            "test {} failed: artifacts in {}, its berth root kept in {}",
            self.name,
            artifacts.display(),
            dir.display()
        );
    }
}

impl Drop for TestEnv {
    fn drop(&mut self) {
        for mut child in self
            .children
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .drain(..)
        {
            let _ = child.kill();
            let _ = child.wait();
        }
        self.note_daemon();
        let daemons = self
            .daemons
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        for (pid, root) in daemons {
            if !process::alive(pid) {
                continue;
            }
            // Only a berth daemon of this env: its command line names its root
            // (a foreground daemon started by `spawn` is killed with the children).
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let root = root.as_os_str().as_encoded_bytes();
            if !cmdline.windows(root.len()).any(|w| w == root) {
                continue;
            }
            process::signal(pid, Signal::SIGTERM);
            if !process::wait_dead(pid, Duration::from_secs(5)) {
                process::signal(pid, Signal::SIGKILL);
                process::wait_dead(pid, Duration::from_secs(5));
            }
        }
        if std::thread::panicking() {
            self.keep_artifacts();
        }
        let places = self
            .places
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        for (root, run_dir) in places {
            crate::leftovers::remove_network_objects(&root, &run_dir);
        }
    }
}

fn read_pid(run_dir: &Path) -> Option<u32> {
    std::fs::read_to_string(run_dir.join("berth.pid"))
        .ok()?
        .trim()
        .parse()
        .ok()
}
