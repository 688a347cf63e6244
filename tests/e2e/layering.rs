//! The crates depend on each other in one direction only (architecture.md §2): a
//! berth-to-berth edge that is not in the allowed list fails this test.

use std::collections::BTreeSet;
use std::process::Command;

/// Every allowed edge between berth crates, `from -> to`.
///
/// `berth -> image`, `berth -> build` and `berth -> runtime` are allowed beyond the original plan: the
/// binary hosts the runtime's per-container monitor (the runtime re-executes `berth`),
/// and the image and build commands call their crates directly until the daemon serves them.
const ALLOWED: &[(&str, &str)] = &[
    ("berth", "engine"),
    ("berth", "compose"),
    ("berth", "image"),
    ("berth", "runtime"),
    ("berth", "build"),
    ("engine", "compose"),
    ("engine", "build"),
    ("engine", "image"),
    ("engine", "runtime"),
    ("engine", "net"),
    ("build", "image"),
    ("build", "runtime"),
];

fn short(name: &str) -> &str {
    name.strip_prefix("berth-").unwrap_or(name)
}

#[test]
fn berth_crates_depend_on_each_other_only_in_the_allowed_direction() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run cargo metadata");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).expect("metadata is JSON");
    let packages = meta["packages"].as_array().expect("packages");
    let ours: BTreeSet<String> = packages
        .iter()
        .filter_map(|p| p["name"].as_str())
        .filter(|n| *n != "berth-tests")
        .map(String::from)
        .collect();
    let mut bad = Vec::new();
    for p in packages {
        let from = p["name"].as_str().unwrap_or_default();
        if from == "berth-tests" {
            continue;
        }
        for d in p["dependencies"].as_array().into_iter().flatten() {
            let to = d["name"].as_str().unwrap_or_default();
            let normal = d["kind"].is_null();
            if normal && ours.contains(to) && !ALLOWED.contains(&(short(from), short(to))) {
                bad.push(format!("{from} -> {to}"));
            }
        }
    }
    assert_eq!(
        bad,
        Vec::<String>::new(),
        "edges outside architecture.md §2"
    );
}
