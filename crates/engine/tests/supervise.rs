//! The supervisor against real containers: each test has its own engine root with a busybox
//! image imported from /bin/busybox, runs containers through `Containers`, and a `Supervisor`
//! in-process. Crashes are simulated by killing a container's process from the host (not
//! through `Containers::kill`, which counts as the user's stop).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use berth_engine::containers::{
    ContainerDoc, ContainerInfo, Containers, ContainersError, HealthCheck, HealthStatus,
    NetworkMode, RestartPolicy, RunOptions, network,
};
use berth_engine::events::{Event, EventFilter, EventType};
use berth_engine::supervise::Supervisor;
use berth_engine::{Engine, EngineConfig};
use berth_image::{ImportOptions, Reference};
use berth_runtime::{ContainerRequest, Rootfs, Status};

const TIMEOUT: Duration = Duration::from_secs(20);

fn require_root() {
    if !nix::unistd::Uid::effective().is_root() {
        panic!("supervisor tests run real containers (namespaces, cgroups, netlink): run as root");
    }
}

fn busybox_rootfs(dir: &Path) {
    for d in ["bin", "etc", "proc", "sys", "dev", "tmp", "root"] {
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
    std::fs::write(dir.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n").unwrap();
    std::fs::write(dir.join("etc/group"), "root:x:0:\n").unwrap();
}

/// One test's engine, containers and recorded events. On drop every container is removed
/// and every network too, so nothing stays behind even when the test fails.
struct World {
    tmp: tempfile::TempDir,
    engine: Engine,
    containers: Containers,
    events: Arc<Mutex<Vec<Event>>>,
    _recorder: tokio::task::JoinHandle<()>,
}

impl World {
    fn new() -> World {
        require_root();
        let tmp = tempfile::Builder::new()
            .prefix("berth-sup-")
            .tempdir()
            .unwrap();
        let root = tmp.path().join("root");
        let engine = Engine::open(EngineConfig {
            root: root.clone(),
            run_dir: tmp.path().join("run"),
        })
        .unwrap();
        let rootfs = tmp.path().join("busybox-rootfs");
        busybox_rootfs(&rootfs);
        berth_image::Store::open(&root.join("image"))
            .unwrap()
            .import_rootfs(
                &rootfs,
                Some(&Reference::parse("busybox").unwrap()),
                &ImportOptions {
                    changes: vec!["CMD [\"sh\"]".into(), "ENV PATH=/bin".into()],
                    ..Default::default()
                },
            )
            .unwrap();
        let containers = Containers::open(
            &engine,
            Some(env!("CARGO_BIN_EXE_berth-engine-helper").into()),
        )
        .unwrap();
        let events = Arc::new(Mutex::new(Vec::new()));
        let mut sub = engine.events(EventFilter::default()).unwrap();
        let sink = events.clone();
        let recorder = tokio::spawn(async move {
            while let Some(e) = sub.next().await {
                sink.lock().unwrap().push(e);
            }
        });
        World {
            tmp,
            engine,
            containers,
            events,
            _recorder: recorder,
        }
    }

    fn root(&self) -> PathBuf {
        self.engine.config().root.clone()
    }

    async fn run(&self, command: &[&str], restart: RestartPolicy) -> String {
        let mut opts = RunOptions::new("busybox");
        opts.command = command.iter().map(|s| s.to_string()).collect();
        opts.network = NetworkMode::None;
        opts.restart = restart;
        self.containers.run(&opts).await.unwrap().id
    }

    fn info(&self, id: &str) -> ContainerInfo {
        self.containers.find(id).unwrap()
    }

    fn status(&self, id: &str) -> Option<Status> {
        self.info(id).state.map(|s| s.status)
    }

    fn pid(&self, id: &str) -> i32 {
        self.info(id).state.unwrap().pid.unwrap()
    }

    /// Kills the container's process from the host, as a crash would.
    fn crash(&self, id: &str) {
        let pid = self.pid(id);
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::SIGKILL).unwrap();
    }

    /// `(action, exitCode)` of this container's events, in order.
    fn actions(&self, id: &str) -> Vec<String> {
        self.events
            .lock()
            .unwrap()
            .iter()
            .filter(|e| e.kind == EventType::Container && e.id == id)
            .map(|e| match e.attributes.get("exitCode") {
                Some(code) => format!("{} {code}", e.action),
                None => e.action.clone(),
            })
            .collect()
    }

    fn event(&self, id: &str, action: &str) -> Option<Event> {
        self.events
            .lock()
            .unwrap()
            .iter()
            .find(|e| e.id == id && e.action == action)
            .cloned()
    }
}

impl Drop for World {
    fn drop(&mut self) {
        let containers = self.containers.clone();
        // Drop runs inside the test's runtime: clean up on a thread with a runtime of its own.
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                for c in containers.list().unwrap_or_default() {
                    let _ = containers.remove(&c.doc.id, true).await;
                }
                for n in containers.networks().await.unwrap_or_default() {
                    let _ = containers.remove_network(&n.name).await;
                }
            });
        })
        .join()
        .unwrap();
        let _ = &self.tmp;
    }
}

/// Polls `check` until it gives a value or [`TIMEOUT`] passes.
async fn eventually<T>(what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = check() {
            return v;
        }
        if start.elapsed() > TIMEOUT {
            panic!("timed out after {TIMEOUT:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Longer than any back-off a test's container could be waiting out, to show nothing happens.
async fn quiet_period() {
    tokio::time::sleep(Duration::from_millis(1500)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn always_brings_back_a_killed_process_but_not_a_user_stop() {
    let w = World::new();
    let sup = Supervisor::spawn(w.containers.clone());
    sup.adopted().await;
    let id = w.run(&["sleep", "1000"], RestartPolicy::Always).await;
    let first = w.pid(&id);
    w.crash(&id);
    let second = eventually("the container to run again", || {
        let info = w.info(&id);
        let s = info.state?;
        (s.status == Status::Running && s.pid != Some(first) && info.restart_count == 1)
            .then_some(s.pid)
    })
    .await;
    assert_ne!(second, Some(first));
    // The event follows the start's return, a moment after the state shows it running.
    eventually("the second start event", || {
        (w.actions(&id).len() == 3).then_some(())
    })
    .await;
    assert_eq!(w.actions(&id), ["start", "die 137", "start"]);

    // `sleep` as PID 1 ignores SIGTERM: the stop ends with SIGKILL after the grace period.
    w.containers
        .stop(&id, Duration::from_secs(1))
        .await
        .unwrap();
    quiet_period().await;
    assert_eq!(w.status(&id), Some(Status::Stopped));
    assert_eq!(w.info(&id).restart_count, 1);
    let mut actions = w.actions(&id);
    // `die` (the supervisor's) and `stop` (the command's) may come in either order.
    actions[3..].sort();
    assert_eq!(actions, ["start", "die 137", "start", "die 137", "stop"]);
    sup.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_policy_leaves_an_exited_container_down() {
    let w = World::new();
    let sup = Supervisor::spawn(w.containers.clone());
    sup.adopted().await;
    let id = w
        .run(&["sh", "-c", "sleep 0.2; exit 3"], RestartPolicy::No)
        .await;
    eventually("the die event", || w.event(&id, "die")).await;
    quiet_period().await;
    assert_eq!(w.status(&id), Some(Status::Stopped));
    assert_eq!(w.info(&id).state.unwrap().exit_code, Some(3));
    assert_eq!(w.info(&id).restart_count, 0);
    assert_eq!(w.actions(&id), ["start", "die 3"]);
    assert_eq!(
        sup.watched(),
        0,
        "a container that stays down is not watched"
    );
    sup.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_failure_2_gives_up_after_two_restarts() {
    let w = World::new();
    let sup = Supervisor::spawn(w.containers.clone());
    sup.adopted().await;
    let policy = RestartPolicy::OnFailure {
        max_retries: Some(2),
    };
    let id = w.run(&["sh", "-c", "sleep 0.1; exit 1"], policy).await;
    eventually("three exits", || {
        (w.actions(&id).iter().filter(|a| *a == "die 1").count() == 3).then_some(())
    })
    .await;
    quiet_period().await;
    assert_eq!(
        w.actions(&id),
        ["start", "die 1", "start", "die 1", "start", "die 1"]
    );
    assert_eq!(w.info(&id).restart_count, 2);
    assert_eq!(w.status(&id), Some(Status::Stopped));

    // A successful exit is never retried by on-failure.
    let ok = w.run(&["true"], policy).await;
    eventually("the die event", || w.event(&ok, "die")).await;
    quiet_period().await;
    assert_eq!(w.actions(&ok), ["start", "die 0"]);
    sup.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rm_containers_are_removed_when_they_exit() {
    let w = World::new();
    let sup = Supervisor::spawn(w.containers.clone());
    sup.adopted().await;
    let mut opts = RunOptions::new("busybox");
    opts.command = vec!["sh".into(), "-c".into(), "sleep 0.2".into()];
    opts.network = NetworkMode::None;
    opts.auto_remove = true;
    let id = w.containers.run(&opts).await.unwrap().id;
    eventually("the container to be removed", || {
        matches!(w.containers.find(&id), Err(ContainersError::NotFound(_))).then_some(())
    })
    .await;
    eventually("the destroy event", || w.event(&id, "destroy")).await;
    assert_eq!(w.actions(&id), ["start", "die 0", "destroy"]);
    assert!(!w.root().join("containers").join(&id).exists());
    assert!(w.engine.store().get::<ContainerDoc>(&id).unwrap().is_none());
    sup.shutdown().await;
}

fn links_with(prefix: &str) -> Vec<String> {
    let out = std::process::Command::new("ip")
        .args(["-o", "link"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split(": ").nth(1))
        .map(|n| n.split('@').next().unwrap_or(n).to_string())
        .filter(|n| n.starts_with(prefix))
        .collect()
}

fn nft_table(table: &str) -> String {
    let out = std::process::Command::new("nft")
        .args(["list", "table", "inet", table])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_network_is_released_when_a_container_exits() {
    let w = World::new();
    let sup = Supervisor::spawn(w.containers.clone());
    sup.adopted().await;
    let mut opts = RunOptions::new("busybox");
    opts.command = vec!["sleep".into(), "1000".into()];
    opts.publish = vec!["127.0.0.1::80".into()];
    let id = w.containers.run(&opts).await.unwrap().id;
    let config = network::net_config(&w.root(), &w.engine.config().run_dir);
    let veths = format!("{}v", config.prefix);
    let info = w.info(&id);
    let port = info.doc.ports[0].host_port;
    assert!(info.doc.ip.is_some());
    assert_eq!(links_with(&veths).len(), 1, "one veth while it runs");
    assert!(nft_table(&config.nft_table).contains(&format!("dport {port}")));

    w.crash(&id);
    eventually("the network to be released", || {
        let doc = w.info(&id).doc;
        (doc.ip.is_none() && doc.ports.is_empty()).then_some(())
    })
    .await;
    assert_eq!(links_with(&veths), Vec::<String>::new());
    assert!(!nft_table(&config.nft_table).contains(&format!("dport {port}")));
    assert_eq!(w.status(&id), Some(Status::Stopped));
    sup.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_health_check_goes_starting_healthy_unhealthy_with_events_in_order() {
    let w = World::new();
    let sup = Supervisor::spawn(w.containers.clone());
    sup.adopted().await;
    let mut opts = RunOptions::new("busybox");
    opts.command = vec![
        "sh".into(),
        "-c".into(),
        "sleep 1; echo ok > /tmp/ok; sleep 1000".into(),
    ];
    opts.network = NetworkMode::None;
    let mut check = HealthCheck::new(vec!["CMD-SHELL".into(), "cat /tmp/ok".into()]);
    check.interval = Duration::from_millis(200);
    check.timeout = Duration::from_secs(5);
    check.retries = 2;
    check.start_period = Duration::from_secs(30);
    check.start_interval = Duration::from_millis(200);
    opts.healthcheck = Some(check);
    let id = w.containers.run(&opts).await.unwrap().id;

    // Failures in the start period leave it starting.
    let starting = eventually("a failed check while starting", || {
        w.info(&id).health.filter(|h| !h.log.is_empty())
    })
    .await;
    assert_eq!(starting.status, HealthStatus::Starting);
    assert_eq!(starting.failing_streak, 0);
    assert_ne!(starting.log[0].exit_code, 0);

    let healthy = eventually("healthy", || {
        w.info(&id)
            .health
            .filter(|h| h.status == HealthStatus::Healthy)
    })
    .await;
    assert_eq!(healthy.log.last().unwrap().exit_code, 0);
    assert_eq!(healthy.log.last().unwrap().output, "ok\n");

    let container = w
        .containers
        .runtime()
        .load(berth_engine::containers::runtime_id(&id))
        .unwrap();
    let rm = container.process(&["rm", "/tmp/ok"]).unwrap();
    let req = berth_runtime::ExecRequest {
        process: rm,
        user: None,
        tty: false,
    };
    let code = container
        .exec(&req, berth_runtime::ExecStdio::Null)
        .unwrap()
        .wait()
        .unwrap();
    assert_eq!(code, 0);

    let unhealthy = eventually("unhealthy", || {
        w.info(&id)
            .health
            .filter(|h| h.status == HealthStatus::Unhealthy)
    })
    .await;
    assert_eq!(unhealthy.failing_streak, 2);
    assert!(unhealthy.log.len() <= 5);
    assert_eq!(unhealthy.log.last().unwrap().exit_code, 1);
    let health_events = eventually("the unhealthy event", || {
        let seen: Vec<String> = w
            .actions(&id)
            .into_iter()
            .filter(|a| a.starts_with("health_status"))
            .collect();
        seen.iter()
            .any(|a| a.ends_with("unhealthy"))
            .then_some(seen)
    })
    .await;
    assert_eq!(
        health_events,
        ["health_status: healthy", "health_status: unhealthy"]
    );
    sup.shutdown().await;

    // The status survives the supervisor (it is a file next to the container).
    assert_eq!(w.info(&id).health.unwrap().status, HealthStatus::Unhealthy);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_supervisor_records_missed_exits_restarts_per_policy_and_removes_leftovers() {
    let w = World::new();
    let always = w.run(&["sleep", "1000"], RestartPolicy::Always).await;
    let no = w.run(&["sleep", "1000"], RestartPolicy::No).await;
    let running = w.run(&["sleep", "1000"], RestartPolicy::No).await;
    let unless = w
        .run(&["sleep", "1000"], RestartPolicy::UnlessStopped)
        .await;
    // The user stopped this one while a daemon ran: it stays down after a daemon restart.
    w.containers
        .stop(&unless, Duration::from_secs(1))
        .await
        .unwrap();
    let first_pid = w.pid(&always);
    // No supervisor runs: these exits are missed.
    w.crash(&always);
    w.crash(&no);
    eventually("both to exit", || {
        (w.status(&always) == Some(Status::Stopped) && w.status(&no) == Some(Status::Stopped))
            .then_some(())
    })
    .await;

    // A document whose runtime container never came to exist.
    let ghost = "f".repeat(64);
    let mut doc = w.info(&no).doc;
    doc.id = ghost.clone();
    doc.name = "ghost".into();
    w.engine.store().put(&ghost, &doc).unwrap();
    std::fs::create_dir_all(w.root().join("containers").join(&ghost).join("upper")).unwrap();
    // A runtime container nobody recorded (the daemon died between create and record).
    let orphan_id = "0rphan0rphan";
    let rootfs = w.tmp.path().join("busybox-rootfs");
    let orphan = w
        .containers
        .runtime()
        .create(ContainerRequest::new(
            orphan_id,
            &["sleep", "1000"],
            Rootfs::Path(rootfs),
        ))
        .unwrap();
    let orphan_cgroups = orphan.state().unwrap().cgroup_paths;
    assert!(orphan_cgroups.iter().all(|p| p.exists()));
    // A `run` cut short between recording the container and starting it: created, never
    // started.
    let unstarted = "e".repeat(64);
    let mut doc = w.info(&no).doc;
    doc.id = unstarted.clone();
    doc.name = "unstarted".into();
    w.engine.store().put(&unstarted, &doc).unwrap();
    std::fs::create_dir_all(w.root().join("containers").join(&unstarted)).unwrap();
    w.containers
        .runtime()
        .create(ContainerRequest::new(
            &unstarted[..12],
            &["sleep", "1000"],
            Rootfs::Path(w.tmp.path().join("busybox-rootfs")),
        ))
        .unwrap();
    // A restart cut short: created again after it had run (the supervisor counted it).
    let restarting = "d".repeat(64);
    let mut doc = w.info(&always).doc;
    doc.id = restarting.clone();
    doc.name = "restarting".into();
    w.engine.store().put(&restarting, &doc).unwrap();
    let dir = w.root().join("containers").join(&restarting);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("supervisor.json"), r#"{"restart_count": 1}"#).unwrap();
    w.containers
        .runtime()
        .create(ContainerRequest::new(
            &restarting[..12],
            &["sleep", "1000"],
            Rootfs::Path(w.tmp.path().join("busybox-rootfs")),
        ))
        .unwrap();

    let sup = Supervisor::spawn(w.containers.clone());
    sup.adopted().await;

    // The exits were recorded, marked as missed.
    for id in [&always, &no] {
        let die = eventually("the missed die event", || w.event(id, "die")).await;
        assert_eq!(
            die.attributes.get("exitCode").map(String::as_str),
            Some("137")
        );
        assert_eq!(
            die.attributes.get("missed").map(String::as_str),
            Some("true")
        );
    }
    // `always` is back, `no` stays down, the running one is watched and untouched.
    eventually("the always container to run again", || {
        let info = w.info(&always);
        (info.is_running() && info.state?.pid != Some(first_pid) && info.restart_count == 1)
            .then_some(())
    })
    .await;
    assert_eq!(w.status(&no), Some(Status::Stopped));
    assert_eq!(w.status(&running), Some(Status::Running));
    assert_eq!(w.actions(&running), ["start"]);
    assert_eq!(w.status(&unless), Some(Status::Stopped));
    // The leftovers are gone, cgroups included.
    assert!(matches!(
        w.containers.find(&ghost),
        Err(ContainersError::NotFound(_))
    ));
    assert!(!w.root().join("containers").join(&ghost).exists());
    assert!(w.containers.runtime().load(orphan_id).is_err());
    assert!(orphan_cgroups.iter().all(|p| !p.exists()));
    assert!(matches!(
        w.containers.find(&unstarted),
        Err(ContainersError::NotFound(_))
    ));
    assert!(w.containers.runtime().load(&unstarted[..12]).is_err());
    eventually("the interrupted restart to be finished", || {
        (w.status(&restarting) == Some(Status::Running)).then_some(())
    })
    .await;

    // The re-adopted running container is really watched: its exit is seen.
    w.crash(&running);
    eventually("the die event of the adopted container", || {
        w.event(&running, "die")
    })
    .await;
    sup.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_daemon_restart_always_comes_back_and_unless_stopped_stays_stopped() {
    let w = World::new();
    let first = Supervisor::spawn(w.containers.clone());
    first.adopted().await;
    let always = w.run(&["sleep", "1000"], RestartPolicy::Always).await;
    let unless = w
        .run(&["sleep", "1000"], RestartPolicy::UnlessStopped)
        .await;
    for id in [&always, &unless] {
        w.containers.stop(id, Duration::from_secs(1)).await.unwrap();
    }
    quiet_period().await;
    assert_eq!(w.status(&always), Some(Status::Stopped));
    assert_eq!(w.status(&unless), Some(Status::Stopped));
    first.shutdown().await;

    let second = Supervisor::spawn(w.containers.clone());
    second.adopted().await;
    eventually("the always container to come back", || {
        w.info(&always).is_running().then_some(())
    })
    .await;
    quiet_period().await;
    assert_eq!(w.status(&unless), Some(Status::Stopped));
    // No exit is reported twice.
    assert_eq!(
        w.actions(&unless)
            .iter()
            .filter(|a| a.starts_with("die"))
            .count(),
        1
    );
    second.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rm_f_of_an_always_container_does_not_bring_it_back() {
    let w = World::new();
    let sup = Supervisor::spawn(w.containers.clone());
    sup.adopted().await;
    let id = w.run(&["sleep", "1000"], RestartPolicy::Always).await;
    w.containers.remove(&id, true).await.unwrap();
    quiet_period().await;
    assert_eq!(w.containers.list().unwrap(), vec![]);
    assert_eq!(w.containers.runtime().list().unwrap(), vec![]);
    assert!(!w.root().join("containers").join(&id).exists());
    let actions = w.actions(&id);
    assert_eq!(actions.first().map(String::as_str), Some("start"));
    assert_eq!(actions.last().map(String::as_str), Some("destroy"));
    assert_eq!(actions.iter().filter(|a| *a == "start").count(), 1);
    sup.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_images_healthcheck_applies_unless_overridden_or_disabled() {
    let w = World::new();
    let ctx = w.tmp.path().join("ctx");
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM busybox\nHEALTHCHECK --interval=200ms --retries=4 CMD [\"cat\", \"/etc/passwd\"]\n",
    )
    .unwrap();
    let store = berth_image::Store::open(&w.root().join("image")).unwrap();
    let mut req = berth_build::BuildRequest::new(&ctx);
    req.tags = vec![Reference::parse("checked").unwrap()];
    berth_build::Builder::new(&store, w.containers.runtime())
        .build(req)
        .unwrap();
    let sup = Supervisor::spawn(w.containers.clone());
    sup.adopted().await;
    let run = |healthcheck: Option<HealthCheck>, no_healthcheck: bool| {
        let mut opts = RunOptions::new("checked");
        opts.command = vec!["sleep".into(), "1000".into()];
        opts.network = NetworkMode::None;
        opts.healthcheck = healthcheck;
        opts.no_healthcheck = no_healthcheck;
        opts
    };
    let image = w.containers.run(&run(None, false)).await.unwrap().id;
    let check = w.info(&image).doc.healthcheck.unwrap();
    assert_eq!(check.test, ["CMD", "cat", "/etc/passwd"]);
    assert_eq!(check.interval, Duration::from_millis(200));
    assert_eq!(check.retries, 4);
    assert_eq!(check.timeout, Duration::from_secs(30));
    eventually("the image's check to pass", || {
        w.info(&image)
            .health
            .filter(|h| h.status == HealthStatus::Healthy)
    })
    .await;

    // Timings without a test keep the image's test.
    let mut timing = HealthCheck::new(Vec::new());
    timing.interval = Duration::from_secs(7);
    let retimed = w
        .containers
        .run(&run(Some(timing), false))
        .await
        .unwrap()
        .id;
    let check = w.info(&retimed).doc.healthcheck.unwrap();
    assert_eq!(check.test, ["CMD", "cat", "/etc/passwd"]);
    assert_eq!(check.interval, Duration::from_secs(7));

    let disabled = w.containers.run(&run(None, true)).await.unwrap().id;
    assert_eq!(w.info(&disabled).doc.healthcheck, None);
    quiet_period().await;
    assert_eq!(w.info(&disabled).health, None);
    sup.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_check_that_outlives_its_timeout_is_killed_and_fails() {
    let w = World::new();
    let sup = Supervisor::spawn(w.containers.clone());
    sup.adopted().await;
    let mut opts = RunOptions::new("busybox");
    opts.command = vec!["sleep".into(), "1000".into()];
    opts.network = NetworkMode::None;
    let mut check = HealthCheck::new(vec!["CMD".into(), "sleep".into(), "30".into()]);
    check.interval = Duration::from_millis(200);
    check.timeout = Duration::from_millis(300);
    check.retries = 1;
    opts.healthcheck = Some(check);
    let id = w.containers.run(&opts).await.unwrap().id;
    let health = eventually("unhealthy", || {
        w.info(&id)
            .health
            .filter(|h| h.status == HealthStatus::Unhealthy)
    })
    .await;
    let last = health.log.last().unwrap();
    assert_eq!(last.exit_code, -1);
    assert_eq!(last.output, "Health check exceeded timeout (300ms)");
    // The timed-out check was killed: only the container's own sleep runs in it.
    let container = w
        .containers
        .runtime()
        .load(berth_engine::containers::runtime_id(&id))
        .unwrap();
    eventually("the check's process to be gone", || {
        (container.top().ok()?.len() == 1).then_some(())
    })
    .await;
    sup.shutdown().await;
}
