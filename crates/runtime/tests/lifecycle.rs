//! Exit codes, signals, stop with a grace period, recorded state, env, workdir, users and
//! the logs of both streams.

mod common;

use std::time::{Duration, Instant};

use berth_runtime::{ExitStatus, Status};
use common::Fixture;

#[test]
fn exit_code_propagates() {
    let f = Fixture::new("exit3");
    let out = f.run(f.sh("exit 3"));
    assert_eq!(
        out.status,
        ExitStatus {
            code: 3,
            oom_killed: false
        }
    );
}

#[test]
fn stdout_and_stderr_are_logged_apart() {
    let f = Fixture::new("streams");
    let out = f.run(f.sh("echo to-out; echo to-err >&2; echo again"));
    assert_eq!(out.stdout, "to-out\nagain\n");
    assert_eq!(out.stderr, "to-err\n");
    let entries = berth_runtime::logs::read_all(&f.log_config()).unwrap();
    assert_eq!(entries.len(), 3);
    assert!(
        entries
            .iter()
            .all(|e| e.time.ends_with('Z') && e.time.len() == 30),
        "{entries:?}"
    );
}

#[test]
fn env_and_workdir_reach_the_process() {
    let f = Fixture::new("envcwd");
    let mut req = f.sh("echo \"$GREETING $HOME\"; pwd");
    let p = req.spec.process_mut().as_mut().unwrap();
    let mut env = p.env().clone().unwrap();
    env.push("GREETING=hello".into());
    p.set_env(Some(env));
    p.set_cwd("/srv/app".into());
    let out = f.run(req);
    assert_eq!(out.stdout, "hello /root\n/srv/app\n");
}

#[test]
fn user_by_name_gets_its_groups_and_home() {
    let f = Fixture::new("username");
    let mut req = f.sh("id; echo $HOME");
    req.user = Some("alice".into());
    let out = f.run(req);
    assert_eq!(
        out.stdout,
        "uid=1000(alice) gid=1000(alice) groups=10(wheel),29(audio),1000(alice)\n/home/alice\n"
    );
}

#[test]
fn user_and_group_by_number_and_name() {
    let f = Fixture::new("usergroup");
    let mut req = f.sh("id -u; id -g; id -G");
    req.user = Some("4242:wheel".into());
    let out = f.run(req);
    assert_eq!(out.stdout, "4242\n10\n10\n");
}

#[test]
fn state_is_recorded_through_the_lifecycle() {
    let f = Fixture::new("states");
    let c = f.create(f.sh("read x; exit 0"));
    let s = c.state().unwrap();
    assert_eq!(s.status, Status::Created);
    let pid = s.pid.unwrap();
    assert!(std::path::Path::new(&format!("/proc/{pid}")).exists());
    c.start().unwrap();
    assert_eq!(c.state().unwrap().status, Status::Running);
    assert!(c.state().unwrap().started_at.is_some());
    // stdin is /dev/null: `read` ends at once and the shell exits.
    assert_eq!(c.wait().unwrap().code, 0);
    // A fresh handle (as another process would make) reads the same record.
    let again = f.runtime.load(&f.id).unwrap().state().unwrap();
    assert_eq!(again.status, Status::Stopped);
    assert_eq!(again.exit_code, Some(0));
    assert!(again.finished_at.is_some());
    assert_eq!(f.runtime.list().unwrap().len(), 1);
    c.delete(false).unwrap();
    assert!(f.runtime.list().unwrap().is_empty());
}

#[test]
fn stop_honours_the_grace_period_then_kills() {
    let f = Fixture::new("stopkill");
    // PID 1 without a handler ignores SIGTERM: only SIGKILL ends it.
    let c = f.create(f.sh("echo up; sleep 60"));
    c.start().unwrap();
    assert!(common::eventually(Duration::from_secs(5), || f.logs().0 == "up\n"));
    let t0 = Instant::now();
    let status = c.stop(Duration::from_millis(800)).unwrap();
    let took = t0.elapsed();
    assert_eq!(
        status,
        ExitStatus {
            code: 137,
            oom_killed: false
        }
    );
    assert!(
        took >= Duration::from_millis(800),
        "stopped after {took:?}, before the grace period"
    );
    assert!(took < Duration::from_secs(5), "stop took {took:?}");
    c.delete(false).unwrap();
}

#[test]
fn stop_lets_a_process_that_handles_sigterm_exit_cleanly() {
    let f = Fixture::new("stopterm");
    let c = f.create(f.sh("trap 'echo bye; exit 7' TERM; echo up; while :; do sleep 0.05; done"));
    c.start().unwrap();
    assert!(common::eventually(Duration::from_secs(5), || f.logs().0 == "up\n"));
    let t0 = Instant::now();
    let status = c.stop(Duration::from_secs(10)).unwrap();
    assert_eq!(status.code, 7);
    assert!(t0.elapsed() < Duration::from_secs(5));
    assert_eq!(f.logs().0, "up\nbye\n");
    c.delete(false).unwrap();
}

#[test]
fn kill_with_a_signal_is_reported_as_128_plus_signal() {
    let f = Fixture::new("killsig");
    let c = f.create(f.sh("trap - INT; echo up; sleep 60 & wait"));
    c.start().unwrap();
    assert!(common::eventually(Duration::from_secs(5), || f.logs().0 == "up\n"));
    c.kill(nix::sys::signal::Signal::SIGKILL).unwrap();
    assert_eq!(c.wait().unwrap().code, 137);
    c.delete(false).unwrap();
}

#[test]
fn delete_refuses_a_running_container_unless_forced() {
    let f = Fixture::new("delforce");
    let c = f.create(f.sh("sleep 60"));
    c.start().unwrap();
    assert!(matches!(
        c.delete(false),
        Err(berth_runtime::RuntimeError::StillRunning { .. })
    ));
    c.delete(true).unwrap();
    assert!(!c.dir().exists());
}

#[test]
fn init_reaps_zombies_and_forwards_signals() {
    let f = Fixture::new("tinyinit");
    let mut req = f.sh("trap 'echo got-term; exit 5' TERM; (sleep 0.1 &) ; echo pid=$$; while :; do sleep 0.05; done");
    req.init = true;
    let c = f.create(req);
    c.start().unwrap();
    // The shell is not PID 1: the tiny init is.
    assert!(common::eventually(Duration::from_secs(5), || f
        .logs()
        .0
        .starts_with("pid=")));
    assert_ne!(f.logs().0, "pid=1\n");
    // The orphaned sleep is reaped by the init: no zombie stays in the container.
    assert!(common::eventually(Duration::from_secs(5), || {
        c.top()
            .unwrap()
            .iter()
            .all(|p| !p.command.is_empty() && !p.command.starts_with('['))
    }));
    c.kill(nix::sys::signal::Signal::SIGTERM).unwrap();
    assert_eq!(c.wait().unwrap().code, 5);
    assert!(f.logs().0.ends_with("got-term\n"));
    c.delete(false).unwrap();
}
