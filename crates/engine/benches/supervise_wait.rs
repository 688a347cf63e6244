//! What waiting for N idle containers costs the daemon, two ways: a thread per container
//! blocked in `Container::wait` (the runtime's blocking call), or one tokio task per container
//! awaiting the monitor's answer on an async Unix socket (`supervise::watch::wait_exit`, what
//! the supervisor does). Prints the process's RSS and thread count after each set of waiters
//! is in place, and the CPU used over a quiet window.
//!
//! Needs root (real containers). Run with
//! `cargo bench -p berth-engine --bench supervise_wait [-- N]` (default 100), or in the debug
//! profile with `cargo test -p berth-engine --bench supervise_wait -- N`.

use std::path::Path;
use std::time::Duration;

use berth_engine::containers::{Containers, NetworkMode, RunOptions, runtime_id};
use berth_engine::supervise::watch::wait_exit;
use berth_engine::{Engine, EngineConfig};
use berth_image::{ImportOptions, Reference};

fn status(field: &str) -> u64 {
    let text = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    text.lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// utime + stime of this process, in clock ticks.
fn cpu_ticks() -> u64 {
    let text = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = text.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let fields: Vec<&str> = after.split_whitespace().collect();
    let n = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    n(11) + n(12)
}

/// Prints memory and threads (and their growth since `before`) and the CPU used over 5 s.
fn report(label: &str, before: (u64, u64)) -> (u64, u64) {
    let t0 = cpu_ticks();
    std::thread::sleep(Duration::from_secs(5));
    let ticks = cpu_ticks() - t0;
    let (rss, threads) = (status("VmRSS:"), status("Threads:"));
    println!(
        "{label:<32} RSS {rss:>7} kB (+{:>6} kB)  threads {threads:>4} (+{:>4})  CPU over 5 s: {ticks} ticks",
        rss.saturating_sub(before.0),
        threads.saturating_sub(before.1),
    );
    (rss, threads)
}

fn busybox_rootfs(dir: &Path) {
    for d in ["bin", "etc", "proc", "sys", "dev", "tmp", "root"] {
        std::fs::create_dir_all(dir.join(d)).unwrap();
    }
    std::fs::copy("/bin/busybox", dir.join("bin/busybox")).unwrap();
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
}

fn main() {
    if !nix::unistd::Uid::effective().is_root() {
        panic!("this benchmark runs real containers: run it as root");
    }
    let n: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(100);
    let tmp = tempfile::Builder::new()
        .prefix("berth-bench-wait-")
        .tempdir()
        .unwrap();
    let root = tmp.path().join("root");
    let rootfs = tmp.path().join("busybox");
    busybox_rootfs(&rootfs);
    berth_image::Store::open(&root.join("image"))
        .unwrap()
        .import_rootfs(
            &rootfs,
            Some(&Reference::parse("busybox").unwrap()),
            &ImportOptions {
                changes: vec!["ENV PATH=/bin".into()],
                ..Default::default()
            },
        )
        .unwrap();
    let engine = Engine::open(EngineConfig {
        root,
        run_dir: tmp.path().join("run"),
    })
    .unwrap();
    let containers = Containers::open(
        &engine,
        Some(env!("CARGO_BIN_EXE_berth-engine-helper").into()),
    )
    .unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut ids = Vec::new();
    for _ in 0..n {
        let mut opts = RunOptions::new("busybox");
        opts.command = vec!["sleep".into(), "1000000".into()];
        opts.network = NetworkMode::None;
        ids.push(rt.block_on(containers.run(&opts)).unwrap().id);
    }
    println!("{n} idle containers");
    let base = (status("VmRSS:"), status("Threads:"));
    let base = report("no waiters", base);

    // One tokio task per container on the async socket.
    let dirs: Vec<_> = ids
        .iter()
        .map(|id| {
            containers
                .runtime()
                .load(runtime_id(id))
                .unwrap()
                .dir()
                .to_path_buf()
        })
        .collect();
    let tasks: Vec<_> = dirs
        .iter()
        .cloned()
        .map(|d| rt.spawn(async move { wait_exit(&d).await }))
        .collect();
    let with_tasks = report(&format!("{n} async socket waits"), base);

    // One thread per container in the blocking wait.
    let threads: Vec<_> = ids
        .iter()
        .map(|id| {
            let c = containers.runtime().load(runtime_id(id)).unwrap();
            std::thread::spawn(move || c.wait())
        })
        .collect();
    report(&format!("+ {n} blocking-thread waits"), with_tasks);

    for id in &ids {
        rt.block_on(containers.remove(id, true)).unwrap();
    }
    for t in threads {
        let _ = t.join();
    }
    for t in tasks {
        let _ = rt.block_on(t);
    }
}
