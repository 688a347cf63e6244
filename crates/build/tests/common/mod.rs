//! Shared fixture of the builder's integration tests: a temp store holding a `busybox`
//! image imported from Debian's busybox-static, a runtime whose helper is this crate's
//! test helper binary, and a way to run a built image and read what it printed.
#![allow(dead_code)] // each test binary uses a different part

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use berth_build::{BuildError, BuildRequest, Builder, Event};
use berth_image::{Image, ImportOptions, Reference, Store};
use berth_runtime::logs::read_all;
use berth_runtime::{ContainerRequest, LogConfig, Rootfs, Runtime, RuntimeConfig, Stdio};

pub fn require_root() {
    if !nix::unistd::Uid::effective().is_root() {
        panic!("builder tests run RUN steps in real containers and must run as root");
    }
}

/// Writes a busybox root file system into `dir`.
pub fn busybox_rootfs(dir: &Path) {
    for d in ["bin", "etc", "proc", "sys", "dev", "tmp", "root", "home"] {
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
    std::fs::write(
        dir.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
    )
    .unwrap();
    std::fs::write(dir.join("etc/group"), "root:x:0:\nnogroup:x:65534:\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir.join("tmp"), std::fs::Permissions::from_mode(0o1777)).unwrap();
}

/// One test's world.
pub struct Fixture {
    pub tmp: tempfile::TempDir,
    pub store: Store,
    pub runtime: Runtime,
    pub events: Mutex<Vec<Event>>,
}

/// What a finished container printed.
#[derive(Debug)]
pub struct Ran {
    pub code: i32,
    pub stdout: String,
}

impl Fixture {
    pub fn new() -> Self {
        require_root();
        let tmp = tempfile::Builder::new()
            .prefix("berth-build-")
            .tempdir()
            .unwrap();
        let store = Store::open(&tmp.path().join("image")).unwrap();
        let rootfs = tmp.path().join("busybox-rootfs");
        busybox_rootfs(&rootfs);
        store
            .import_rootfs(
                &rootfs,
                Some(&Reference::parse("busybox").unwrap()),
                &ImportOptions {
                    changes: vec!["CMD [\"sh\"]".into()],
                    ..Default::default()
                },
            )
            .unwrap();
        let runtime = Runtime::new(RuntimeConfig {
            root: tmp.path().join("containers"),
            helper_exe: env!("CARGO_BIN_EXE_berth-build-helper").into(),
            helper_args: Vec::new(),
            cgroup_parent: "berth-test".into(),
        });
        Self {
            tmp,
            store,
            runtime,
            events: Mutex::new(Vec::new()),
        }
    }

    /// A fresh directory with `files` (`name` → content) to use as a build context.
    pub fn context(&self, name: &str, files: &[(&str, &str)]) -> PathBuf {
        let dir = self.tmp.path().join(name);
        for (rel, content) in files {
            let p = dir.join(rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, content).unwrap();
        }
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    pub fn request(&self, context: &Path) -> BuildRequest {
        BuildRequest::new(context)
    }

    /// Builds, recording the progress events (cleared first).
    pub fn build(&self, req: BuildRequest) -> Result<Image, BuildError> {
        self.events.lock().unwrap().clear();
        let record = |e: &Event| self.events.lock().unwrap().push(e.clone());
        Builder::new(&self.store, &self.runtime)
            .progress(&record)
            .build(req)
    }

    /// `(text, cached)` of every executed or cached step of the last build (FROM excluded).
    pub fn steps(&self) -> Vec<(String, bool)> {
        self.events
            .lock()
            .unwrap()
            .iter()
            .filter_map(|e| match e {
                Event::Step {
                    number,
                    text,
                    cached,
                    ..
                } if *number > 0 => Some((text.clone(), *cached)),
                _ => None,
            })
            .collect()
    }

    /// Output lines of RUN steps in the last build.
    pub fn output(&self) -> Vec<String> {
        self.events
            .lock()
            .unwrap()
            .iter()
            .filter_map(|e| match e {
                Event::Output { line, .. } => Some(line.clone()),
                _ => None,
            })
            .collect()
    }

    /// Runs `image` as `berth run` would (entrypoint + cmd, env, workdir, user), or with
    /// `args` replacing its CMD.
    pub fn run(&self, image: &Image, args: Option<&[&str]>) -> Ran {
        let c = &image.config.config;
        let mut argv: Vec<String> = c.entrypoint.clone().unwrap_or_default();
        match args {
            Some(a) => argv.extend(a.iter().map(|s| s.to_string())),
            None => argv.extend(c.cmd.clone().unwrap_or_default()),
        }
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let dir = self.tmp.path().join(format!(
            "run-{}-{}",
            image.id.short(),
            N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ));
        let (upper, work) = (dir.join("upper"), dir.join("work"));
        std::fs::create_dir_all(&upper).unwrap();
        std::fs::create_dir_all(&work).unwrap();
        let refs: Vec<&str> = argv.iter().map(String::as_str).collect();
        let id = format!(
            "bt-run-{}-{}",
            std::process::id(),
            dir.file_name().unwrap().to_string_lossy()
        );
        let mut req = ContainerRequest::new(
            id,
            &refs,
            Rootfs::Overlay {
                lowerdirs: image.snapshots(),
                upper,
                work,
            },
        );
        let process = req.spec.process_mut().as_mut().unwrap();
        let mut env = c.env.clone();
        if !env.iter().any(|e| e.starts_with("PATH=")) {
            env.push("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into());
        }
        process.set_env(Some(env));
        if !c.working_dir.is_empty() {
            process.set_cwd(c.working_dir.clone().into());
        }
        if !c.user.is_empty() {
            req.user = Some(c.user.clone());
        }
        let log = LogConfig {
            path: dir.join("log"),
            max_size: None,
            max_files: 1,
        };
        req.stdio = Stdio::Logs(log.clone());
        let container = self.runtime.create(req).unwrap();
        container.start().unwrap();
        let status = container.wait().unwrap();
        container.delete(true).unwrap();
        let stdout = read_all(&log)
            .unwrap()
            .into_iter()
            .map(|e| e.log)
            .collect::<String>();
        Ran {
            code: status.code,
            stdout,
        }
    }

    pub fn resolve(&self, name: &str) -> Option<Image> {
        self.store.resolve(&Reference::parse(name).unwrap()).ok()
    }
}

pub fn tag(name: &str) -> Reference {
    Reference::parse(name).unwrap()
}

pub fn args(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}
