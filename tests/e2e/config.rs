//! `berth config`: the canonical model of real stack files, the partial views, the hash,
//! stack-file errors with a source snippet and exit code 3.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn berth(dir: &Path, args: &[&str]) -> Output {
    Command::new(berth_tests::berth_bin())
        .args(args)
        .current_dir(dir)
        .env_remove("COMPOSE_FILE")
        .env_remove("COMPOSE_PROJECT_NAME")
        .env_remove("COMPOSE_PROFILES")
        .output()
        .expect("run berth")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn demo_stack_prints_canonical_json() {
    let out = berth(
        &repo(),
        &[
            "-f",
            "examples/demo/compose.yaml",
            "config",
            "--format",
            "json",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON output");
    assert_eq!(v["name"], "demo");
    let services: Vec<&String> = v["services"].as_object().unwrap().keys().collect();
    assert_eq!(services, vec!["api", "web", "worker"]);
    assert_eq!(
        v["services"]["web"]["ports"][0],
        serde_json::json!({"mode": "ingress", "target": 80, "published": "8080", "protocol": "tcp"})
    );
    assert_eq!(
        v["services"]["web"]["depends_on"]["api"]["condition"],
        "service_healthy"
    );
    assert_eq!(v["services"]["web"]["image"], "busybox:latest");
    assert_eq!(v["volumes"]["site"]["name"], "demo_site");
    assert_eq!(v["networks"]["default"]["name"], "demo_default");
}

#[test]
fn yaml_output_loads_back_to_the_same_model() {
    let first = berth(&repo(), &["-f", "examples/demo/compose.yaml", "config"]);
    assert_eq!(first.status.code(), Some(0), "stderr: {}", stderr(&first));
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("compose.yaml"), &first.stdout).unwrap();
    let second = berth(dir.path(), &["config"]);
    assert_eq!(second.status.code(), Some(0), "stderr: {}", stderr(&second));
    assert_eq!(stdout(&second), stdout(&first));
}

#[test]
fn views_list_services_volumes_networks_profiles_images() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("compose.yaml"),
        "name: views\nservices:\n  b:\n    image: busybox\n    volumes: [data:/d]\n  a:\n    build: .\n  dbg:\n    image: busybox\n    profiles: [debug]\nvolumes:\n  data:\n",
    )
    .unwrap();
    assert_eq!(
        stdout(&berth(dir.path(), &["config", "--services"])),
        "a\nb\n"
    );
    assert_eq!(
        stdout(&berth(dir.path(), &["config", "--volumes"])),
        "data\n"
    );
    assert_eq!(
        stdout(&berth(dir.path(), &["config", "--networks"])),
        "default\n"
    );
    assert_eq!(
        stdout(&berth(dir.path(), &["config", "--profiles"])),
        "debug\n"
    );
    assert_eq!(
        stdout(&berth(dir.path(), &["config", "--images"])),
        "views-a\nbusybox\n"
    );
    assert_eq!(
        stdout(&berth(
            dir.path(),
            &["--profile", "debug", "config", "--services"]
        )),
        "a\nb\ndbg\n"
    );
    let quiet = berth(dir.path(), &["config", "-q"]);
    assert_eq!(
        (quiet.status.code(), stdout(&quiet)),
        (Some(0), String::new())
    );
}

#[test]
fn hash_is_stable_and_follows_changes() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("compose.yaml");
    std::fs::write(
        &file,
        "services:\n  web:\n    image: busybox\n    environment: [A=1]\n",
    )
    .unwrap();
    let h1 = stdout(&berth(dir.path(), &["config", "--hash", "web"]));
    let h2 = stdout(&berth(dir.path(), &["config", "--hash", "*"]));
    assert_eq!(h1, h2);
    let (name, hash) = h1.trim().split_once(' ').unwrap();
    assert_eq!((name, hash.len()), ("web", 64));
    // Same model written differently: same hash.
    std::fs::write(
        &file,
        "services:\n  web:\n    environment:\n      A: '1'\n    image: busybox\n",
    )
    .unwrap();
    assert_eq!(stdout(&berth(dir.path(), &["config", "--hash", "web"])), h1);
    std::fs::write(
        &file,
        "services:\n  web:\n    image: busybox\n    environment: [A=2]\n",
    )
    .unwrap();
    assert_ne!(stdout(&berth(dir.path(), &["config", "--hash", "web"])), h1);
}

#[test]
fn stack_file_errors_exit_3_with_a_snippet() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("compose.yaml"),
        "services:\n  web:\n    image: busybox\n    prots:\n      - \"80\"\n",
    )
    .unwrap();
    let out = berth(dir.path(), &["config"]);
    assert_eq!(out.status.code(), Some(3));
    let file = dir.path().join("compose.yaml");
    assert_eq!(
        stderr(&out),
        format!(
            "error: unknown key `prots` (did you mean `ports`?)\n  --> {}:4:5\n   |\n 4 |     prots:\n   |     ^^^^^ at services.web.prots\n",
            file.display()
        )
    );
}

#[test]
fn missing_required_variable_names_variable_file_and_position() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("compose.yaml"),
        "services:\n  web:\n    image: \"busybox:${TAG:?set TAG}\"\n",
    )
    .unwrap();
    let out = Command::new(berth_tests::berth_bin())
        .arg("config")
        .current_dir(dir.path())
        .env_remove("TAG")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    let err = stderr(&out);
    assert!(
        err.starts_with("error: required variable TAG is missing a value: set TAG\n"),
        "{err}"
    );
    assert!(
        err.contains(&format!(
            "{}:3:12",
            dir.path().join("compose.yaml").display()
        )),
        "{err}"
    );
    let ok = Command::new(berth_tests::berth_bin())
        .args(["config", "--images"])
        .current_dir(dir.path())
        .env("TAG", "1.36")
        .output()
        .unwrap();
    assert_eq!(stdout(&ok), "busybox:1.36\n");
}

#[test]
fn stdin_and_project_name_options() {
    let mut child = Command::new(berth_tests::berth_bin())
        .args(["-f", "-", "-p", "fromflag", "config", "--format", "json"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        stdin
            .write_all(b"services:\n  one:\n    image: busybox\n")
            .unwrap();
    }
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["name"], "fromflag");
    assert_eq!(v["networks"]["default"]["name"], "fromflag_default");
}

#[test]
fn bad_format_is_a_usage_error() {
    let out = berth(
        &repo(),
        &[
            "-f",
            "examples/demo/compose.yaml",
            "config",
            "--format",
            "xml",
        ],
    );
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn compose_environment_variables_select_files_name_and_profiles() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("base.yaml"),
        "services:\n  app:\n    image: busybox\n  dbg:\n    image: busybox\n    profiles: [debug]\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("extra.yaml"),
        "services:\n  app:\n    environment: [FROM_EXTRA=1]\n",
    )
    .unwrap();
    let out = Command::new(berth_tests::berth_bin())
        .args(["config", "--format", "json"])
        .current_dir(dir.path())
        .env("COMPOSE_FILE", "base.yaml:extra.yaml")
        .env("COMPOSE_PROJECT_NAME", "fromenv")
        .env("COMPOSE_PROFILES", "debug")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["name"], "fromenv");
    assert_eq!(v["services"]["app"]["environment"]["FROM_EXTRA"], "1");
    assert!(v["services"]["dbg"].is_object(), "{v}");
}

#[test]
fn fields_berth_does_not_apply_yet_are_warned_once() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("compose.yaml"),
        "services:\n  a:\n    image: busybox\n    runtime: runc\n  b:\n    image: busybox\n    runtime: runc\n",
    )
    .unwrap();
    let out = berth(dir.path(), &["config", "-q"]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        stderr(&out),
        "warning: `runtime` is parsed but not applied by berth yet (services a, b)\n"
    );
}

#[test]
fn warnings_are_printed_before_the_errors_of_a_failed_load() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("compose.yaml"),
        "version: \"3\"\nservices:\n  web:\n    image: busybox\n    prots: [\"80\"]\n",
    )
    .unwrap();
    let out = berth(dir.path(), &["config", "-q"]);
    assert_eq!(out.status.code(), Some(3));
    let err = stderr(&out);
    let warning = err.find("warning: the top-level `version` is obsolete and ignored");
    let error = err.find("error: unknown key `prots`");
    assert!(
        matches!((warning, error), (Some(w), Some(e)) if w < e),
        "{err}"
    );
}
