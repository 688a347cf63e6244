//! Isolation seen from inside the container: PID 1, no host processes, own hostname and
//! mounts, read-only /proc/sys, masked paths, Docker's default capabilities, seccomp.

mod common;

use common::Fixture;

#[test]
fn process_is_pid_1_and_host_processes_are_invisible() {
    let f = Fixture::new("pid1");
    // `echo` is a shell builtin: the shell, PID 1, is the only process there is.
    let out = f.run(f.sh("echo $$; echo /proc/[0-9]*"));
    assert_eq!(out.stdout, "1\n/proc/1\n", "stderr: {}", out.stderr);
}

#[test]
fn hostname_is_the_containers_own() {
    let f = Fixture::new("uts");
    let host = nix::unistd::gethostname().unwrap().into_string().unwrap();
    let out = f.run(f.sh("hostname"));
    assert_eq!(out.stdout.trim(), f.id);
    assert_ne!(out.stdout.trim(), host);
}

#[test]
fn mounts_are_the_containers_own() {
    let f = Fixture::new("mnt");
    let out = f.run(f.sh("cat /proc/mounts"));
    let first = out.stdout.lines().next().unwrap_or_default();
    assert!(first.starts_with("overlay / overlay"), "{}", out.stdout);
    assert!(
        !out.stdout.contains(" /work"),
        "host mounts leak: {}",
        out.stdout
    );
    for m in [
        "/proc proc",
        "/dev tmpfs",
        "/dev/pts devpts",
        "/sys sysfs",
        "/dev/shm tmpfs",
        "/dev/mqueue mqueue",
    ] {
        assert!(out.stdout.contains(m), "missing {m}: {}", out.stdout);
    }
    // Nothing of the container is mounted on the host.
    let host = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!host.contains(f.tmp.path().to_str().unwrap()));
}

#[test]
fn proc_sys_is_read_only_and_masked_paths_are_empty() {
    let f = Fixture::new("procsys");
    let out = f.run(f.sh("echo 1 > /proc/sys/vm/drop_caches && echo wrote; \
         wc -c < /proc/timer_list; wc -c < /proc/keys; \
         touch /sys/x 2>/dev/null && echo sys-rw || echo sys-ro"));
    assert_eq!(out.stdout, "0\n0\nsys-ro\n", "stderr: {}", out.stderr);
    assert!(
        out.stderr.contains("Read-only file system"),
        "{}",
        out.stderr
    );
}

#[test]
fn default_capabilities_only() {
    let f = Fixture::new("caps");
    let out = f.run(f.sh("grep -E '^Cap(Eff|Bnd|Inh|Amb)' /proc/self/status"));
    // Docker's default set: CHOWN DAC_OVERRIDE FOWNER FSETID KILL SETGID SETUID SETPCAP
    // NET_BIND_SERVICE NET_RAW SYS_CHROOT MKNOD AUDIT_WRITE SETFCAP.
    assert_eq!(
        out.stdout,
        "CapInh:\t0000000000000000\nCapEff:\t00000000a80425fb\nCapBnd:\t00000000a80425fb\nCapAmb:\t0000000000000000\n"
    );
}

#[test]
fn non_root_user_has_no_effective_capabilities() {
    let f = Fixture::new("capsuser");
    let mut req = f.sh("grep CapEff /proc/self/status");
    req.user = Some("alice".into());
    assert_eq!(f.run(req).stdout, "CapEff:\t0000000000000000\n");
}

#[test]
fn added_and_dropped_capabilities_apply() {
    let f = Fixture::new("capsadd");
    let mut req = f.sh("grep CapEff /proc/self/status");
    let caps =
        berth_runtime::security::caps::resolve(&["NET_ADMIN".into()], &["ALL".into()], false)
            .unwrap();
    berth_runtime::spec::set_capabilities(&mut req.spec, &caps);
    // CAP_NET_ADMIN is bit 12.
    assert_eq!(f.run(req).stdout, "CapEff:\t0000000000001000\n");
}

#[test]
fn seccomp_blocks_what_docker_blocks_with_eperm() {
    let f = Fixture::new("seccomp");
    // Creating a user namespace needs no capability, so only the filter can refuse it.
    let out = f.run(f.sh("unshare -U true && echo allowed"));
    assert_eq!(out.status.code, 1);
    assert!(
        out.stderr.contains("Operation not permitted"),
        "{}",
        out.stderr
    );
    assert_eq!(out.stdout, "");
}

#[test]
fn seccomp_unconfined_allows_it() {
    let f = Fixture::new("unconfined");
    let mut req = f.sh("unshare -U true && echo allowed");
    berth_runtime::spec::set_seccomp_unconfined(&mut req.spec);
    let out = f.run(req);
    assert_eq!(out.stdout, "allowed\n", "stderr: {}", out.stderr);
}

#[test]
fn devices_are_the_default_set() {
    let f = Fixture::new("devices");
    let out = f.run(f.sh(
        "ls /dev | tr '\\n' ' '; echo; head -c 4 /dev/urandom | wc -c; echo x > /dev/null && echo null-ok",
    ));
    let mut lines = out.stdout.lines();
    let devs = lines.next().unwrap();
    for d in [
        "null", "zero", "full", "random", "urandom", "tty", "pts", "shm", "mqueue", "ptmx", "fd",
        "stdin",
    ] {
        assert!(devs.split(' ').any(|x| x == d), "no /dev/{d} in {devs}");
    }
    assert!(
        !devs
            .split(' ')
            .any(|x| x == "sda" || x == "vda" || x == "mem"),
        "{devs}"
    );
    assert_eq!(lines.collect::<Vec<_>>(), vec!["4", "null-ok"]);
}

#[test]
fn read_only_root_refuses_writes_but_tmpfs_works() {
    let f = Fixture::new("readonly");
    let mut req = f.sh(
        "touch /x 2>/dev/null && echo root-rw || echo root-ro; touch /dev/shm/y && echo shm-rw",
    );
    req.spec
        .root_mut()
        .as_mut()
        .unwrap()
        .set_readonly(Some(true));
    assert_eq!(f.run(req).stdout, "root-ro\nshm-rw\n");
}
