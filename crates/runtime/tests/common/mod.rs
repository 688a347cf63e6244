//! Shared fixture of the runtime's integration tests: a busybox root filesystem made at test
//! time (from Debian's busybox-static) used as the lower layer of an overlay, a private state
//! directory, a unique container id and cgroup parent, and a guard that removes whatever a
//! failing test leaves.
#![allow(dead_code)] // each test binary uses a different part

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use berth_runtime::logs::{self, Stream};
use berth_runtime::{
    Container, ContainerRequest, ExitStatus, LogConfig, Rootfs, Runtime, RuntimeConfig, Stdio,
};

/// Cgroup parent of every test container (never the production `berth`).
pub const CGROUP_PARENT: &str = "berth-test";

pub const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\n\
alice:x:1000:1000:Alice:/home/alice:/bin/sh\n\
nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n";
pub const GROUP: &str =
    "root:x:0:\nwheel:x:10:alice\nalice:x:1000:\naudio:x:29:alice\nnogroup:x:65534:\n";

pub fn require_root() {
    if !nix::unistd::Uid::effective().is_root() {
        panic!("this test creates real containers and must run as root (try: sudo -E cargo test)");
    }
}

/// Builds a busybox root filesystem in `dir`.
pub fn make_busybox_rootfs(dir: &Path) {
    for d in [
        "bin",
        "etc",
        "proc",
        "sys",
        "dev",
        "tmp",
        "root",
        "home/alice",
        "usr/bin",
        "sbin",
    ] {
        std::fs::create_dir_all(dir.join(d)).unwrap();
    }
    std::fs::copy("/bin/busybox", dir.join("bin/busybox"))
        .expect("copy /bin/busybox (install busybox-static: scripts/setup.sh)");
    let list = std::process::Command::new("/bin/busybox")
        .arg("--list")
        .output()
        .unwrap();
    for applet in String::from_utf8_lossy(&list.stdout).lines() {
        let link = dir.join("bin").join(applet);
        if !link.exists() {
            std::os::unix::fs::symlink("busybox", link).unwrap();
        }
    }
    std::fs::write(dir.join("etc/passwd"), PASSWD).unwrap();
    std::fs::write(dir.join("etc/group"), GROUP).unwrap();
    std::fs::write(dir.join("etc/hostname"), "image\n").unwrap();
    std::fs::write(dir.join("etc/not-executable"), "#!/bin/sh\necho no\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir.join("tmp"), std::fs::Permissions::from_mode(0o1777)).unwrap();
    let alice = dir.join("home/alice");
    nix::unistd::chown(&alice, Some(1000.into()), Some(1000.into())).unwrap();
}

/// One test's world: temp dir, runtime, rootfs layers, id.
pub struct Fixture {
    pub tmp: tempfile::TempDir,
    pub runtime: Runtime,
    pub id: String,
    pub lower: PathBuf,
    pub upper: PathBuf,
    pub work: PathBuf,
    pub log: PathBuf,
}

/// What a finished container produced.
#[derive(Debug)]
pub struct Outcome {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Fixture {
    /// `name` must be unique per test; the id adds the test process's pid.
    pub fn new(name: &str) -> Self {
        require_root();
        let tmp = tempfile::Builder::new()
            .prefix("berth-rt-")
            .tempdir()
            .unwrap();
        let lower = tmp.path().join("lower");
        make_busybox_rootfs(&lower);
        let (upper, work) = (tmp.path().join("upper"), tmp.path().join("work"));
        std::fs::create_dir_all(&upper).unwrap();
        std::fs::create_dir_all(&work).unwrap();
        let config = RuntimeConfig {
            root: tmp.path().join("state"),
            helper_exe: env!("CARGO_BIN_EXE_berth-runtime-helper").into(),
            helper_args: Vec::new(),
            cgroup_parent: CGROUP_PARENT.into(),
        };
        Self {
            runtime: Runtime::new(config),
            id: format!("{name}-{}", std::process::id()),
            log: tmp.path().join("container.log"),
            tmp,
            lower,
            upper,
            work,
        }
    }

    pub fn rootfs(&self) -> Rootfs {
        Rootfs::Overlay {
            lowerdirs: vec![self.lower.clone()],
            upper: self.upper.clone(),
            work: self.work.clone(),
        }
    }

    pub fn log_config(&self) -> LogConfig {
        LogConfig {
            path: self.log.clone(),
            max_size: None,
            max_files: 1,
        }
    }

    /// A request running `sh -c script` with output logged.
    pub fn sh(&self, script: &str) -> ContainerRequest {
        let mut req = ContainerRequest::new(self.id.clone(), &["sh", "-c", script], self.rootfs());
        req.stdio = Stdio::Logs(self.log_config());
        req.spec.set_hostname(Some(self.id.clone()));
        req
    }

    pub fn create(&self, req: ContainerRequest) -> Container {
        self.runtime.create(req).expect("create container")
    }

    /// Create, start, wait, read the logs, delete.
    pub fn run(&self, req: ContainerRequest) -> Outcome {
        let c = self.create(req);
        c.start().unwrap();
        let status = c.wait().unwrap();
        let (stdout, stderr) = self.logs();
        c.delete(false).unwrap();
        Outcome {
            status,
            stdout,
            stderr,
        }
    }

    /// The logged stdout and stderr so far.
    pub fn logs(&self) -> (String, String) {
        let mut out = (String::new(), String::new());
        for e in logs::read_all(&self.log_config()).unwrap_or_default() {
            match e.stream {
                Stream::Stdout => out.0.push_str(&e.log),
                Stream::Stderr => out.1.push_str(&e.log),
            }
        }
        out
    }

    /// The container's cgroup directories (whether or not they exist).
    pub fn cgroup_dirs(&self) -> Vec<PathBuf> {
        berth_runtime::cgroups::v1::CONTROLLERS
            .iter()
            .map(|c| {
                Path::new("/sys/fs/cgroup")
                    .join(c)
                    .join(CGROUP_PARENT)
                    .join(&self.id)
            })
            .collect()
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        if let Ok(c) = self.runtime.load(&self.id) {
            let _ = c.delete(true);
        }
        for d in self.cgroup_dirs() {
            let _ = std::fs::remove_dir(d);
        }
    }
}

/// Polls `check` until it holds or `timeout` passes.
pub fn eventually(timeout: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if check() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    check()
}
