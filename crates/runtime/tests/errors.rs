//! Bad input: each failure is one clear line, carries Docker's exit code, and leaves no
//! state directory, cgroup, mount or process behind.

mod common;

use berth_runtime::{RuntimeError, SetupError};
use common::Fixture;

/// Asserts that nothing of the fixture's container remains.
fn assert_nothing_left(f: &Fixture) {
    assert!(
        !f.tmp.path().join("state").join(&f.id).exists(),
        "state dir left"
    );
    for d in f.cgroup_dirs() {
        assert!(!d.exists(), "cgroup {} left", d.display());
    }
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !mounts.contains(f.tmp.path().to_str().unwrap()),
        "mount left"
    );
    let procs = std::fs::read_dir("/proc").unwrap();
    for p in procs.flatten() {
        if let Ok(cmd) = std::fs::read_to_string(p.path().join("cmdline")) {
            assert!(!cmd.contains(&f.id), "process left: {cmd:?}");
        }
    }
}

fn setup_error(r: Result<berth_runtime::Container, RuntimeError>) -> SetupError {
    match r {
        Err(RuntimeError::Setup(e)) => e,
        Err(other) => panic!("unexpected error {other}"),
        Ok(_) => panic!("creation succeeded"),
    }
}

#[test]
fn missing_command_is_127() {
    let f = Fixture::new("nocmd");
    let req = berth_runtime::ContainerRequest::new(f.id.clone(), &["no-such-command"], f.rootfs());
    let e = setup_error(f.runtime.create(req));
    assert_eq!(
        e.to_string(),
        "exec: \"no-such-command\": executable file not found in $PATH"
    );
    assert_eq!(e.exit_code(), 127);
    assert_nothing_left(&f);
}

#[test]
fn missing_absolute_command_is_127() {
    let f = Fixture::new("noabs");
    let req = berth_runtime::ContainerRequest::new(f.id.clone(), &["/bin/nope"], f.rootfs());
    let e = setup_error(f.runtime.create(req));
    assert_eq!(e.exit_code(), 127);
    assert_nothing_left(&f);
}

#[test]
fn not_executable_is_126() {
    let f = Fixture::new("noexec");
    let req =
        berth_runtime::ContainerRequest::new(f.id.clone(), &["/etc/not-executable"], f.rootfs());
    let e = setup_error(f.runtime.create(req));
    assert_eq!(
        e.to_string(),
        "exec: \"/etc/not-executable\": permission denied"
    );
    assert_eq!(e.exit_code(), 126);
    assert_nothing_left(&f);
}

#[test]
fn unknown_user_is_named() {
    let f = Fixture::new("baduser");
    let mut req = f.sh("true");
    req.user = Some("mallory".into());
    let e = setup_error(f.runtime.create(req));
    assert_eq!(
        e.to_string(),
        "unable to find user mallory: no matching entries in passwd file"
    );
    assert_eq!(e.exit_code(), 125);
    assert_nothing_left(&f);
}

#[test]
fn unknown_capability_is_named() {
    let e =
        berth_runtime::security::caps::resolve(&["CAP_TELEPORT".into()], &[], false).unwrap_err();
    assert_eq!(e.to_string(), "unknown capability \"CAP_TELEPORT\"");
    // In an OCI config, the spec itself does not parse.
    let mut spec = serde_json::to_value(berth_runtime::spec::default_spec(&["true"])).unwrap();
    spec["process"]["capabilities"]["bounding"] = serde_json::json!(["CAP_TELEPORT"]);
    assert!(serde_json::from_value::<oci_spec::runtime::Spec>(spec).is_err());
}

#[test]
fn missing_bind_source_is_named() {
    let f = Fixture::new("nobind");
    let mut req = f.sh("true");
    let missing = f.tmp.path().join("does-not-exist");
    let mut mounts = req.spec.mounts().clone().unwrap();
    mounts.push(
        oci_spec::runtime::MountBuilder::default()
            .destination("/data")
            .typ("bind")
            .source(&missing)
            .options(vec!["rbind".to_string()])
            .build()
            .unwrap(),
    );
    req.spec.set_mounts(Some(mounts));
    let e = setup_error(f.runtime.create(req));
    assert_eq!(
        e.to_string(),
        format!(
            "bind mount source path does not exist: {}",
            missing.display()
        )
    );
    assert_nothing_left(&f);
}

#[test]
fn duplicate_id_is_refused_and_the_first_survives() {
    let f = Fixture::new("dupid");
    let c = f.create(f.sh("sleep 60"));
    let e = setup_error(f.runtime.create(f.sh("true")));
    assert_eq!(e, SetupError::AlreadyExists { id: f.id.clone() });
    assert_eq!(c.state().unwrap().status, berth_runtime::Status::Created);
    c.delete(true).unwrap();
    assert_nothing_left(&f);
}

#[test]
fn deleted_container_leaves_nothing() {
    let f = Fixture::new("cleanup");
    let c = f.create(f.sh("sleep 60 & echo $! > /tmp/bg; sleep 60"));
    c.start().unwrap();
    let state = c.state().unwrap();
    let (pid, monitor) = (state.pid.unwrap(), state.monitor_pid.unwrap());
    assert!(f.cgroup_dirs().iter().all(|d| d.exists()));
    c.delete(true).unwrap();
    assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists());
    assert!(common::eventually(
        std::time::Duration::from_secs(2),
        || { !std::path::Path::new(&format!("/proc/{monitor}")).exists() }
    ));
    assert_nothing_left(&f);
    assert!(matches!(
        f.runtime.load(&f.id),
        Err(RuntimeError::NotFound { .. })
    ));
}
