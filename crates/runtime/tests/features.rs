//! Pause/resume, diff, bind and tmpfs mounts, rlimits, log rotation, a terminal through the
//! console socket, stats and top.

mod common;

use std::os::unix::net::UnixListener;
use std::time::Duration;

use berth_runtime::{LogConfig, Status, Stdio};
use common::{Fixture, eventually};
use oci_spec::runtime::{MountBuilder, PosixRlimitBuilder, PosixRlimitType};

fn add_mount(req: &mut berth_runtime::ContainerRequest, m: oci_spec::runtime::Mount) {
    let mut mounts = req.spec.mounts().clone().unwrap();
    mounts.push(m);
    req.spec.set_mounts(Some(mounts));
}

#[test]
fn pause_freezes_and_resume_thaws() {
    let f = Fixture::new("pause");
    let c = f.create(f.sh("i=0; while :; do i=$((i+1)); echo $i > /tmp/n; sleep 0.02; done"));
    c.start().unwrap();
    let count = || {
        let out = c
            .exec(
                &berth_runtime::ExecRequest {
                    process: c.process(&["cat", "/tmp/n"]).unwrap(),
                    user: None,
                    tty: false,
                },
                berth_runtime::ExecStdio::Piped,
            )
            .unwrap()
            .wait_with_output()
            .unwrap();
        String::from_utf8(out.1)
            .unwrap()
            .trim()
            .parse::<u32>()
            .unwrap_or(0)
    };
    assert!(eventually(Duration::from_secs(5), || count() > 2));
    c.pause().unwrap();
    assert_eq!(c.state().unwrap().status, Status::Paused);
    let freezer = std::path::Path::new("/sys/fs/cgroup/freezer")
        .join(common::CGROUP_PARENT)
        .join(&f.id)
        .join("freezer.state");
    assert_eq!(std::fs::read_to_string(&freezer).unwrap().trim(), "FROZEN");
    let during = std::fs::read_to_string(f.upper.join("tmp/n")).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        std::fs::read_to_string(f.upper.join("tmp/n")).unwrap(),
        during
    );
    assert!(matches!(
        c.pause(),
        Err(berth_runtime::RuntimeError::WrongStatus { .. })
    ));
    c.resume().unwrap();
    assert_eq!(c.state().unwrap().status, Status::Running);
    let before: u32 = during.trim().parse().unwrap();
    assert!(eventually(Duration::from_secs(5), || count() > before));
    c.delete(true).unwrap();
}

#[test]
fn bind_mounts_read_only_and_read_write() {
    let f = Fixture::new("binds");
    let (ro, rw) = (f.tmp.path().join("ro"), f.tmp.path().join("rw"));
    std::fs::create_dir_all(&ro).unwrap();
    std::fs::create_dir_all(&rw).unwrap();
    std::fs::write(ro.join("config"), "from-host\n").unwrap();
    let mut req = f.sh(
        "cat /etc/app/config; touch /etc/app/x 2>/dev/null || echo ro-refused; echo out > /out/result",
    );
    let bind = |src: &std::path::Path, dst: &str, opts: &[&str]| {
        MountBuilder::default()
            .destination(dst)
            .typ("bind")
            .source(src)
            .options(opts.iter().map(|s| s.to_string()).collect::<Vec<_>>())
            .build()
            .unwrap()
    };
    add_mount(&mut req, bind(&ro, "/etc/app", &["rbind", "ro"]));
    add_mount(&mut req, bind(&rw, "/out", &["rbind", "rw"]));
    let out = f.run(req);
    assert_eq!(out.stdout, "from-host\nro-refused\n", "{}", out.stderr);
    assert_eq!(std::fs::read_to_string(rw.join("result")).unwrap(), "out\n");
    assert!(!ro.join("x").exists());
}

#[test]
fn tmpfs_mount_has_its_size_and_mode() {
    let f = Fixture::new("tmpfs");
    let mut req = f.sh("stat -c %a /scratch; df -k /scratch | tail -1 | awk '{print $2}'");
    add_mount(
        &mut req,
        MountBuilder::default()
            .destination("/scratch")
            .typ("tmpfs")
            .source("tmpfs")
            .options(vec!["size=2m".to_string(), "mode=1770".to_string()])
            .build()
            .unwrap(),
    );
    assert_eq!(f.run(req).stdout, "1770\n2048\n");
}

#[test]
fn rlimits_apply_and_too_high_ones_are_clamped_with_a_warning() {
    let f = Fixture::new("rlimits");
    let mut req = f.sh("ulimit -n; ulimit -Hn; ulimit -u");
    let (_, hard_nofile) =
        nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE).unwrap();
    let limits = vec![
        PosixRlimitBuilder::default()
            .typ(PosixRlimitType::RlimitNofile)
            .soft(hard_nofile * 4)
            .hard(hard_nofile * 4)
            .build()
            .unwrap(),
        PosixRlimitBuilder::default()
            .typ(PosixRlimitType::RlimitNproc)
            .soft(321u64)
            .hard(321u64)
            .build()
            .unwrap(),
    ];
    req.spec
        .process_mut()
        .as_mut()
        .unwrap()
        .set_rlimits(Some(limits));
    let c = f.create(req);
    assert_eq!(c.warnings().len(), 1, "{:?}", c.warnings());
    assert!(
        c.warnings()[0].starts_with("RLIMIT_NOFILE"),
        "{:?}",
        c.warnings()
    );
    c.start().unwrap();
    c.wait().unwrap();
    assert_eq!(f.logs().0, format!("{hard_nofile}\n{hard_nofile}\n321\n"));
    c.delete(false).unwrap();
}

#[test]
fn logs_rotate_at_max_size() {
    let f = Fixture::new("logrotate");
    let mut req = f.sh("for i in $(seq 200); do echo line-$i; done");
    let config = LogConfig {
        path: f.log.clone(),
        max_size: Some(2000),
        max_files: 3,
    };
    req.stdio = Stdio::Logs(config.clone());
    f.run(req);
    let entries = berth_runtime::logs::read_all(&config).unwrap();
    assert_eq!(entries.last().unwrap().log, "line-200\n");
    assert!(entries.len() < 200, "nothing was rotated away");
    assert!(berth_runtime::logs::rotated(&f.log, 2).exists());
    assert!(!berth_runtime::logs::rotated(&f.log, 3).exists());
}

#[test]
fn terminal_is_sent_over_the_console_socket() {
    let f = Fixture::new("console");
    let sock = f.tmp.path().join("console.sock");
    let listener = UnixListener::bind(&sock).unwrap();
    let mut req = f.sh("tty; test -t 1 && echo stdout-is-a-tty");
    req.stdio = Stdio::Tty {
        console_socket: sock.clone(),
    };
    let c = f.create(req);
    let (conn, _) = listener.accept().unwrap();
    let master = berth_runtime::console::receive_fd(&conn).unwrap();
    c.start().unwrap();
    assert_eq!(c.wait().unwrap().code, 0);
    let mut out = String::new();
    let mut file = std::fs::File::from(master);
    let mut buf = [0u8; 1024];
    use std::io::Read;
    while let Ok(n) = file.read(&mut buf) {
        if n == 0 {
            break;
        }
        out.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    let out = out.replace('\r', "");
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].starts_with("/dev/"), "{out:?}");
    assert_eq!(lines[1..], ["stdout-is-a-tty"]);
    c.delete(false).unwrap();
}

#[test]
fn stats_report_memory_and_cpu() {
    let f = Fixture::new("stats");
    let c = f.create(f.sh("x=$(head -c 3000000 /dev/zero | tr '\\0' a); echo ready; sleep 60"));
    c.start().unwrap();
    assert!(eventually(Duration::from_secs(10), || f.logs().0 == "ready\n"));
    let s = c.stats().unwrap();
    // The shell held 3 MB and then exec'd `sleep`: the peak shows it.
    assert!(s.memory_max_usage > 3_000_000, "{s:?}");
    assert!(
        s.memory_usage > 0 && s.memory_usage < s.memory_max_usage,
        "{s:?}"
    );
    assert!(s.cpu_usage_ns > 0, "{s:?}");
    let top = c.top().unwrap();
    assert!(top.iter().any(|p| p.command == "sleep 60"), "{top:?}");
    c.delete(true).unwrap();
}
