//! Resource limits through cgroups: memory (OOM kill reported), pids (fork bomb), CPU
//! quota measured from the cgroup's own counters, and the limits visible in the cgroup.

mod common;

use std::time::{Duration, Instant};

use berth_runtime::ExitStatus;
use common::{Fixture, eventually};
use oci_spec::runtime::{LinuxCpuBuilder, LinuxMemoryBuilder, LinuxPidsBuilder, LinuxResources};

fn resources(spec: &mut oci_spec::runtime::Spec) -> &mut LinuxResources {
    spec.linux_mut()
        .as_mut()
        .unwrap()
        .resources_mut()
        .get_or_insert_with(Default::default)
}

#[test]
fn memory_hog_is_oom_killed_and_reported() {
    let f = Fixture::new("oom");
    // The shell doubles a string until the 32 MiB limit stops it.
    let mut req = f.sh("x=aaaaaaaaaaaaaaaa; while :; do x=$x$x; done");
    resources(&mut req.spec).set_memory(Some(
        LinuxMemoryBuilder::default()
            .limit(32 * 1024 * 1024i64)
            .swap(32 * 1024 * 1024i64)
            .build()
            .unwrap(),
    ));
    let out = f.run(req);
    assert_eq!(
        out.status,
        ExitStatus {
            code: 137,
            oom_killed: true
        }
    );
}

#[test]
fn fork_bomb_stops_at_the_pids_limit() {
    let f = Fixture::new("pids");
    // Each round announces itself, then forks; the shell (PID 1) dies when fork fails.
    let mut req = f.sh("for i in $(seq 40); do echo $i; sleep 60 & done; echo never");
    resources(&mut req.spec).set_pids(Some(
        LinuxPidsBuilder::default().limit(12i64).build().unwrap(),
    ));
    let out = f.run(req);
    // PID 1 plus 11 sleeps make 12: the 12th fork is refused.
    assert_eq!(out.stdout.lines().last(), Some("12"));
    assert_eq!(
        out.stderr,
        "sh: can't fork: Resource temporarily unavailable\n"
    );
    assert_eq!(out.status.code, 2);
}

#[test]
fn pids_are_counted_while_running() {
    let f = Fixture::new("pidsstat");
    let mut req = f.sh("sleep 60 & sleep 60 & echo ready; wait");
    resources(&mut req.spec).set_pids(Some(
        LinuxPidsBuilder::default().limit(20i64).build().unwrap(),
    ));
    let c = f.create(req);
    c.start().unwrap();
    assert!(eventually(Duration::from_secs(10), || f.logs().0 == "ready\n"));
    let stats = c.stats().unwrap();
    assert_eq!((stats.pids_current, stats.pids_limit), (3, Some(20)));
    assert_eq!(c.top().unwrap().len(), 3);
    c.delete(true).unwrap();
}

#[test]
fn cpu_quota_holds_within_tolerance() {
    let f = Fixture::new("cpuquota");
    let mut req = f.sh("while :; do :; done");
    resources(&mut req.spec).set_cpu(Some(
        LinuxCpuBuilder::default()
            .quota(25_000i64)
            .period(100_000u64)
            .build()
            .unwrap(),
    ));
    let c = f.create(req);
    c.start().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let (t0, u0) = (Instant::now(), c.stats().unwrap().cpu_usage_ns);
    std::thread::sleep(Duration::from_millis(2000));
    let (t1, s1) = (Instant::now(), c.stats().unwrap());
    let share = (s1.cpu_usage_ns - u0) as f64 / (t1 - t0).as_nanos() as f64;
    // 0.25 CPU allowed; the upper bound is the quota's promise, the lower one only checks
    // that the loop ran (other tests compete for the 2 cores).
    assert!(share <= 0.30, "used {share:.3} CPU with a 0.25 quota");
    assert!(share >= 0.05, "used only {share:.3} CPU");
    assert!(s1.cpu_throttled_periods > 0);
    c.delete(true).unwrap();
}

#[test]
fn limits_are_written_to_the_cgroup() {
    let f = Fixture::new("cglimits");
    let mut req = f.sh("sleep 60");
    let r = resources(&mut req.spec);
    r.set_memory(Some(
        LinuxMemoryBuilder::default()
            .limit(64 * 1024 * 1024i64)
            .reservation(16 * 1024 * 1024i64)
            .build()
            .unwrap(),
    ));
    r.set_cpu(Some(
        LinuxCpuBuilder::default()
            .shares(512u64)
            .cpus("0")
            .mems("0")
            .build()
            .unwrap(),
    ));
    let c = f.create(req);
    let cg = |ctl: &str, file: &str| {
        std::fs::read_to_string(
            std::path::Path::new("/sys/fs/cgroup")
                .join(ctl)
                .join(common::CGROUP_PARENT)
                .join(&f.id)
                .join(file),
        )
        .unwrap()
        .trim()
        .to_owned()
    };
    assert_eq!(cg("memory", "memory.limit_in_bytes"), "67108864");
    assert_eq!(cg("memory", "memory.soft_limit_in_bytes"), "16777216");
    assert_eq!(cg("cpu", "cpu.shares"), "512");
    assert_eq!(cg("cpuset", "cpuset.cpus"), "0");
    let pid = c.state().unwrap().pid.unwrap();
    assert!(
        cg("pids", "cgroup.procs")
            .lines()
            .any(|l| l == pid.to_string())
    );
    assert_eq!(c.stats().unwrap().memory_limit, Some(64 * 1024 * 1024));
    c.delete(true).unwrap();
}
