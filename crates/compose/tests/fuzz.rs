//! No input, however malformed, panics the loader: arbitrary bytes, and arbitrary YAML
//! trees built from Compose's own vocabulary (so they reach the deeper phases), go
//! through `berth_compose::load` (via stdin, `-f -`). Bounded: a few hundred cases each.

use berth_compose::LoadOptions;
use proptest::prelude::*;
use serde_json::{Map, Value};

fn load_text(text: String) {
    let dir = std::env::temp_dir();
    let opts = LoadOptions {
        files: vec!["-".into()],
        stdin: Some(text),
        working_dir: dir,
        project_name: Some("fuzz".into()),
        environment: [("X".to_owned(), "1".to_owned())].into_iter().collect(),
        ..LoadOptions::default()
    };
    // Either outcome is fine; a panic fails the test.
    let _ = berth_compose::load(&opts);
}

const KEYS: &[&str] = &[
    "services",
    "networks",
    "volumes",
    "secrets",
    "configs",
    "include",
    "name",
    "x-a",
    "<<",
    "web",
    "db",
    "image",
    "build",
    "ports",
    "volumes",
    "environment",
    "depends_on",
    "healthcheck",
    "test",
    "command",
    "entrypoint",
    "deploy",
    "resources",
    "limits",
    "memory",
    "cpus",
    "replicas",
    "extends",
    "service",
    "file",
    "profiles",
    "env_file",
    "labels",
    "ulimits",
    "nofile",
    "soft",
    "hard",
    "target",
    "published",
    "source",
    "type",
    "condition",
    "required",
    "aliases",
    "ipam",
    "config",
    "subnet",
    "external",
    "develop",
    "watch",
    "path",
    "action",
    "secrets",
    "mode",
    "gpus",
    "devices",
    "extra_hosts",
    "logging",
    "driver",
];

const SCALARS: &[&str] = &[
    "80",
    "8080:80",
    "127.0.0.1:9000-9001:9000-9001/udp",
    "a:b:c:d",
    "./src:/app:ro",
    "data:/x",
    "/tmp",
    "${X}",
    "${Y:?missing}",
    "${",
    "$",
    "$$",
    "1m30s",
    "500ms",
    "-1",
    "1.5gb",
    "0440",
    "true",
    "null",
    "~",
    "",
    "all",
    "service_healthy",
    "web",
    "db",
    "CMD-SHELL",
    "x=1",
    "[",
    "*a",
    "&a",
    "!reset",
    "99999999999999999999",
    "sync",
    "bind",
    "volume",
    "tmpfs",
    "nope.yaml",
    "-",
    "héllo",
    "a b 'c",
    "\"",
    ":",
    "- x",
];

fn tree() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        proptest::sample::select(SCALARS).prop_map(|s| Value::String(s.to_owned())),
        any::<i64>().prop_map(Value::from),
        any::<bool>().prop_map(Value::from),
        Just(Value::Null),
    ];
    leaf.prop_recursive(5, 64, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            proptest::collection::vec((proptest::sample::select(KEYS), inner), 0..6).prop_map(
                |kv| {
                    let mut m = Map::new();
                    for (k, v) in kv {
                        m.insert(k.to_owned(), v);
                    }
                    Value::Object(m)
                }
            ),
        ]
    })
}

/// A top level that is always `services: {...}` so most cases get past the first checks.
fn stack() -> impl Strategy<Value = Value> {
    proptest::collection::vec(
        (proptest::sample::select(&["web", "db", "api"][..]), tree()),
        1..4,
    )
    .prop_map(|svcs| {
        let mut services = Map::new();
        for (k, v) in svcs {
            services.insert(k.to_owned(), v);
        }
        let mut top = Map::new();
        top.insert("services".to_owned(), Value::Object(services));
        Value::Object(top)
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        load_text(String::from_utf8_lossy(&bytes).into_owned());
    }

    #[test]
    fn arbitrary_yaml_text_never_panics(parts in proptest::collection::vec(
        proptest::sample::select(&["services:", "\n", "  ", "- ", "web:", "&a ", "*a", "<<: ", "!reset ", "!override ",
            "[", "]", "{", "}", ", ", "image: x", "ports:", "\"8080:80\"", "'", "#", "${X}", ": ", "---\n", "? "][..]),
        0..60)) {
        load_text(parts.concat());
    }

    #[test]
    fn arbitrary_trees_never_panic(doc in tree()) {
        load_text(berth_compose::emit::to_yaml(&doc));
    }

    #[test]
    fn arbitrary_service_trees_never_panic(doc in stack()) {
        load_text(berth_compose::emit::to_yaml(&doc));
    }
}

fn nested(depth: usize) -> String {
    let opts = LoadOptions {
        files: vec!["-".into()],
        stdin: Some(format!(
            "services: {}{}",
            "[".repeat(depth),
            "]".repeat(depth)
        )),
        working_dir: std::env::temp_dir(),
        ..LoadOptions::default()
    };
    berth_compose::load(&opts).unwrap_err().0[0].message.clone()
}

#[test]
fn deep_nesting_is_an_error_not_a_stack_overflow() {
    assert_eq!(nested(230), "the document nests deeper than 200 levels");
    assert_eq!(nested(100_000), "invalid YAML: recursion limit exceeded");
}
