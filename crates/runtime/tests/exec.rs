//! `exec`: a new process in a running container's namespaces and cgroup.

mod common;

use std::io::Write;
use std::time::Duration;

use berth_runtime::{ExecRequest, ExecStdio, SetupError};
use common::{Fixture, eventually};

fn started(f: &Fixture) -> berth_runtime::Container {
    let c = f.create(f.sh("echo $$ > /tmp/pid1; echo ready; sleep 60"));
    c.start().unwrap();
    assert!(eventually(Duration::from_secs(5), || f.logs().0 == "ready\n"));
    c
}

#[test]
fn exec_sees_the_containers_namespaces_and_env() {
    let f = Fixture::new("execns");
    let c = started(&f);
    let req = ExecRequest {
        process: c
            .process(&["sh", "-c", "hostname; cat /tmp/pid1; echo $$; echo $PATH"])
            .unwrap(),
        user: None,
        tty: false,
    };
    let (code, out, err) = c
        .exec(&req, ExecStdio::Piped)
        .unwrap()
        .wait_with_output()
        .unwrap();
    assert_eq!(code, 0, "{}", String::from_utf8_lossy(&err));
    let out = String::from_utf8(out).unwrap();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], f.id);
    assert_eq!(lines[1], "1");
    // A pid of the container's namespace, not the host's.
    assert!(lines[2].parse::<u32>().unwrap() < 100, "{out}");
    assert_eq!(lines[3], berth_runtime::spec::DEFAULT_PATH);
    c.delete(true).unwrap();
}

#[test]
fn exec_runs_in_the_containers_cgroup_and_returns_its_exit_code() {
    let f = Fixture::new("execcg");
    let c = started(&f);
    let req = ExecRequest {
        process: c
            .process(&["sh", "-c", "cat /proc/self/cgroup | grep pids; exit 4"])
            .unwrap(),
        user: None,
        tty: false,
    };
    let (code, out, _) = c
        .exec(&req, ExecStdio::Piped)
        .unwrap()
        .wait_with_output()
        .unwrap();
    assert_eq!(code, 4);
    // The cgroup namespace makes the container's cgroup its root.
    assert_eq!(String::from_utf8(out).unwrap(), "8:pids:/\n");
    c.delete(true).unwrap();
}

#[test]
fn exec_as_another_user_with_stdin() {
    let f = Fixture::new("execuser");
    let c = started(&f);
    let req = ExecRequest {
        process: c.process(&["sh", "-c", "id -un; cat"]).unwrap(),
        user: Some("alice".into()),
        tty: false,
    };
    let mut h = c.exec(&req, ExecStdio::Piped).unwrap();
    assert!(h.pid() > 0);
    h.child()
        .stdin
        .take()
        .unwrap()
        .write_all(b"from stdin\n")
        .unwrap();
    let (code, out, _) = h.wait_with_output().unwrap();
    assert_eq!(
        (code, String::from_utf8(out).unwrap().as_str()),
        (0, "alice\nfrom stdin\n")
    );
    c.delete(true).unwrap();
}

#[test]
fn exec_with_a_tty_relays_the_terminal() {
    let f = Fixture::new("exectty");
    let c = started(&f);
    let req = ExecRequest {
        process: c
            .process(&["sh", "-c", "tty; test -t 0 && echo is-a-tty"])
            .unwrap(),
        user: None,
        tty: true,
    };
    let (code, out, _) = c
        .exec(&req, ExecStdio::Piped)
        .unwrap()
        .wait_with_output()
        .unwrap();
    let out = String::from_utf8(out).unwrap();
    assert_eq!(code, 0);
    assert_eq!(out.replace('\r', ""), "/dev/pts/0\nis-a-tty\n");
    c.delete(true).unwrap();
}

#[test]
fn exec_of_a_missing_command_fails_with_127() {
    let f = Fixture::new("execmissing");
    let c = started(&f);
    let req = ExecRequest {
        process: c.process(&["no-such-tool"]).unwrap(),
        user: None,
        tty: false,
    };
    let err = c.exec(&req, ExecStdio::Null).unwrap_err();
    match err {
        berth_runtime::RuntimeError::Setup(e) => {
            assert_eq!(
                e,
                SetupError::CommandNotFound {
                    command: "no-such-tool".into()
                }
            );
            assert_eq!(e.exit_code(), 127);
        }
        other => panic!("unexpected {other}"),
    }
    // The container is unaffected.
    assert_eq!(c.state().unwrap().status, berth_runtime::Status::Running);
    c.delete(true).unwrap();
}

#[test]
fn exec_into_a_stopped_container_is_refused() {
    let f = Fixture::new("execstopped");
    let c = f.create(f.sh("true"));
    c.start().unwrap();
    c.wait().unwrap();
    let req = ExecRequest {
        process: c.process(&["true"]).unwrap(),
        user: None,
        tty: false,
    };
    assert!(matches!(
        c.exec(&req, ExecStdio::Null),
        Err(berth_runtime::RuntimeError::WrongStatus { .. })
    ));
    c.delete(false).unwrap();
}
