//! `save` output read by skopeo, and `load` of archives made by berth and layouts made by
//! umoci.

mod common;

use std::process::Command;

use berth_image::{ImportOptions, Reference, SaveFormat, Store};
use common::{busybox_rootfs, run};

fn imported(dir: &std::path::Path, reference: &Reference) -> Store {
    let rootfs = dir.join("rootfs");
    busybox_rootfs(&rootfs);
    let store = Store::open(&dir.join("store")).unwrap();
    store
        .import_rootfs(
            &rootfs,
            Some(reference),
            &ImportOptions {
                changes: vec!["CMD [\"sh\"]".into()],
                ..Default::default()
            },
        )
        .unwrap();
    store
}

#[test]
fn docker_archive_is_read_by_skopeo_and_loads_back() {
    common::require_root();
    let dir = tempfile::tempdir().unwrap();
    let r = Reference::parse("localhost/saved:v1").unwrap();
    let store = imported(dir.path(), &r);
    let image = store.resolve(&r).unwrap();
    let out = dir.path().join("saved.tar");
    store
        .save(std::slice::from_ref(&r), SaveFormat::DockerArchive, &out)
        .unwrap();

    let config = run(Command::new("skopeo")
        .args(["inspect", "--config"])
        .arg(format!("docker-archive:{}", out.display())));
    let config: serde_json::Value = serde_json::from_str(&config).unwrap();
    assert_eq!(
        config["rootfs"]["diff_ids"][0],
        image.config.rootfs.diff_ids[0].to_string()
    );
    assert_eq!(config["config"]["Cmd"][0], "sh");
    let copy = dir.path().join("copy");
    common::skopeo_copy(
        &format!("docker-archive:{}", out.display()),
        &format!("oci:{}:copy", copy.display()),
        &[],
    );
    assert!(copy.join("index.json").is_file());

    let store2 = Store::open(&dir.path().join("store2")).unwrap();
    let loaded = store2.load(&out).unwrap();
    assert_eq!(loaded.len(), 1);
    assert_eq!(loaded[0].id, image.id, "config bytes kept: same image ID");
    assert_eq!(store2.resolve(&r).unwrap().id, image.id);
    assert_eq!(
        std::fs::read(loaded[0].snapshots()[0].join("bin/busybox")).unwrap(),
        std::fs::read("/bin/busybox").unwrap()
    );
}

#[test]
fn oci_layout_is_read_by_skopeo_and_loads_back() {
    common::require_root();
    let dir = tempfile::tempdir().unwrap();
    let r = Reference::parse("localhost/oci:v2").unwrap();
    let store = imported(dir.path(), &r);
    let image = store.resolve(&r).unwrap();
    let out = dir.path().join("layout");
    store
        .save(std::slice::from_ref(&r), SaveFormat::OciLayout, &out)
        .unwrap();
    let info = run(Command::new("skopeo")
        .arg("inspect")
        .arg(format!("oci:{}:v2", out.display())));
    let info: serde_json::Value = serde_json::from_str(&info).unwrap();
    assert_eq!(info["Digest"], image.manifest_digest.to_string());
    let copy = dir.path().join("copy.tar");
    common::skopeo_copy(
        &format!("oci:{}:v2", out.display()),
        &format!("docker-archive:{}:localhost/oci:v2", copy.display()),
        &[],
    );
    let store2 = Store::open(&dir.path().join("store2")).unwrap();
    let loaded = store2.load(&out).unwrap();
    assert_eq!(loaded.len(), 1);
    assert_eq!(loaded[0].manifest_digest, image.manifest_digest);
    assert_eq!(loaded[0].references, vec![r]);
    // skopeo's docker-archive loads too.
    let store3 = Store::open(&dir.path().join("store3")).unwrap();
    let from_skopeo = store3.load(&copy).unwrap();
    assert_eq!(
        from_skopeo[0].config.rootfs.diff_ids,
        image.config.rootfs.diff_ids
    );
    assert_eq!(
        from_skopeo[0].references,
        vec![Reference::parse("localhost/oci:v2").unwrap()]
    );
}

#[test]
fn umoci_layout_loads() {
    common::require_root();
    let dir = tempfile::tempdir().unwrap();
    let rootfs = dir.path().join("rootfs");
    busybox_rootfs(&rootfs);
    let layout = dir.path().join("layout");
    common::umoci_image(&layout, "latest", &rootfs, "amd64");
    let store = Store::open(&dir.path().join("store")).unwrap();
    let loaded = store.load(&layout).unwrap();
    assert_eq!(loaded.len(), 1);
    assert_eq!(
        std::fs::read_to_string(loaded[0].snapshots()[0].join("etc/marker")).unwrap(),
        "berth-test\n"
    );
    assert_eq!(
        loaded[0].config.config.cmd.as_deref(),
        Some(&["sh".to_owned()][..])
    );
}
