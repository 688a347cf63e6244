//! Pushes to a real `docker-registry`, read back with skopeo.

mod common;

use std::process::Command;
use std::sync::{Arc, Mutex};

use berth_image::registry::progress::silent;
use berth_image::registry::{
    ClientOptions, Credentials, Progress, ProgressFn, PullError, PushOptions, RegistryError,
};
use berth_image::{ImportOptions, Platform, Reference, Store};
use common::{Registry, RegistryAuth, busybox_rootfs, run};

fn recorder() -> (ProgressFn, Arc<Mutex<Vec<Progress>>>) {
    let events = Arc::new(Mutex::new(Vec::new()));
    let e = events.clone();
    (Arc::new(move |p| e.lock().unwrap().push(p)), events)
}

/// A store holding a busybox image imported from a directory as `reference`.
fn imported(reference: &Reference) -> (tempfile::TempDir, Store) {
    let root = tempfile::tempdir().unwrap();
    let rootfs = root.path().join("rootfs");
    busybox_rootfs(&rootfs);
    let store = Store::open(&root.path().join("store")).unwrap();
    store
        .import_rootfs(
            &rootfs,
            Some(reference),
            &ImportOptions {
                changes: vec!["CMD [\"sh\"]".into(), "ENV PUSHED=yes".into()],
                ..Default::default()
            },
        )
        .unwrap();
    (root, store)
}

fn skopeo_inspect(image: &str, creds: &[&str]) -> serde_json::Value {
    let out = run(Command::new("skopeo")
        .args(["inspect", "--tls-verify=false"])
        .args(creds)
        .arg(format!("docker://{image}")));
    serde_json::from_str(&out).unwrap()
}

#[test]
fn pushed_image_is_read_back_by_skopeo() {
    common::require_root();
    let registry = Registry::start(RegistryAuth::None);
    let r = Reference::parse(&format!("{}/berth/pushed:v1", registry.host)).unwrap();
    let (_root, store) = imported(&r);
    let rt = common::rt();
    let digest = rt
        .block_on(store.push(&r, &PushOptions::default(), silent()))
        .unwrap();
    let info = skopeo_inspect(&format!("{}/berth/pushed:v1", registry.host), &[]);
    assert_eq!(info["Digest"], digest.to_string());
    assert!(
        info["Env"]
            .as_array()
            .unwrap()
            .contains(&serde_json::json!("PUSHED=yes"))
    );
    assert_eq!(info["Architecture"], "amd64");

    // skopeo copies it out again, verifying every blob on the way.
    let out = tempfile::tempdir().unwrap();
    common::skopeo_copy(
        &format!("docker://{}/berth/pushed:v1", registry.host),
        &format!("oci:{}:copy", out.path().display()),
        &[],
    );
    let image = store.resolve(&r).unwrap();
    let read = |p: std::path::PathBuf| -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap()
    };
    let index = read(out.path().join("index.json"));
    let hex = index["manifests"][0]["digest"]
        .as_str()
        .unwrap()
        .trim_start_matches("sha256:")
        .to_owned();
    let manifest = read(out.path().join("blobs/sha256").join(hex));
    assert_eq!(
        manifest["config"]["digest"],
        image.id.to_string(),
        "same image config"
    );
    assert_eq!(manifest["layers"].as_array().unwrap().len(), 1);

    // A second push finds every blob there.
    let (progress, events) = recorder();
    let again = rt
        .block_on(store.push(&r, &PushOptions::default(), progress))
        .unwrap();
    assert_eq!(again, digest);
    let events = events.lock().unwrap();
    let exists = events
        .iter()
        .filter(|e| matches!(e, Progress::LayerExists { .. }))
        .count();
    assert_eq!(exists, 2, "layer and config already there: {events:?}");
}

#[test]
fn chunked_upload_is_accepted() {
    common::require_root();
    let registry = Registry::start(RegistryAuth::None);
    let r = Reference::parse(&format!("{}/berth/chunked:v1", registry.host)).unwrap();
    let (_root, store) = imported(&r);
    let rt = common::rt();
    let (progress, events) = recorder();
    let options = PushOptions {
        chunk_size: Some(256 * 1024),
        ..Default::default()
    };
    let digest = rt.block_on(store.push(&r, &options, progress)).unwrap();
    let image = store.resolve(&r).unwrap();
    let layer = &image.manifest.layers[0];
    let chunks = events
        .lock()
        .unwrap()
        .iter()
        .filter(|e| matches!(e, Progress::LayerBytes { digest, .. } if digest == &layer.digest))
        .count() as u64;
    assert_eq!(chunks, layer.size.div_ceil(256 * 1024));
    let info = skopeo_inspect(&format!("{}/berth/chunked:v1", registry.host), &[]);
    assert_eq!(info["Digest"], digest.to_string());
    assert_eq!(info["Layers"][0], layer.digest.to_string());
    let out = tempfile::tempdir().unwrap();
    common::skopeo_copy(
        &format!("docker://{}/berth/chunked:v1", registry.host),
        &format!("oci:{}:copy", out.path().display()),
        &[],
    );
}

#[test]
fn push_mounts_blobs_from_the_repository_the_image_came_from() {
    common::require_root();
    let registry = Registry::start(RegistryAuth::None);
    let a = Reference::parse(&format!("{}/team/a:v1", registry.host)).unwrap();
    let (_root, store) = imported(&a);
    let rt = common::rt();
    rt.block_on(store.push(&a, &PushOptions::default(), silent()))
        .unwrap();
    // A fresh store pulls it (and remembers where from), then pushes it under another name.
    let root2 = tempfile::tempdir().unwrap();
    let store2 = Store::open(root2.path()).unwrap();
    let image = rt
        .block_on(store2.pull(
            &a,
            &Platform::default(),
            &ClientOptions::default(),
            silent(),
        ))
        .unwrap();
    let b = Reference::parse(&format!("{}/team/b:v1", registry.host)).unwrap();
    store2.tag(&image, &b).unwrap();
    let (progress, events) = recorder();
    let digest = rt
        .block_on(store2.push(&b, &PushOptions::default(), progress))
        .unwrap();
    assert_eq!(digest, image.manifest_digest);
    let mounted: Vec<String> = events
        .lock()
        .unwrap()
        .iter()
        .filter_map(|e| match e {
            Progress::LayerMounted { from, .. } => Some(from.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(
        mounted,
        ["team/a", "team/a"],
        "layer and config mounted from team/a"
    );
    let info = skopeo_inspect(&format!("{}/team/b:v1", registry.host), &[]);
    assert_eq!(info["Digest"], digest.to_string());
}

#[test]
fn bearer_token_auth_for_push_and_pull() {
    common::require_root();
    let rt = common::rt();
    let tokens = common::token::TokenServer::start(&rt, Some(("bob", "builder")));
    let registry = Registry::start(RegistryAuth::Token {
        realm: tokens.realm.clone(),
        cert: tokens.cert.clone(),
    });
    let r = Reference::parse(&format!("{}/tok/app:v1", registry.host)).unwrap();
    let (_root, store) = imported(&r);
    let creds = ClientOptions {
        credentials: Credentials::Basic {
            username: "bob".into(),
            password: "builder".into(),
        },
        ..Default::default()
    };
    let options = PushOptions {
        client: creds.clone(),
        ..Default::default()
    };
    let digest = rt.block_on(store.push(&r, &options, silent())).unwrap();
    assert!(
        tokens
            .scopes
            .lock()
            .unwrap()
            .contains(&"repository:tok/app:pull,push".to_owned())
    );

    let root2 = tempfile::tempdir().unwrap();
    let store2 = Store::open(root2.path()).unwrap();
    let err = rt
        .block_on(store2.pull(
            &r,
            &Platform::default(),
            &ClientOptions::default(),
            silent(),
        ))
        .unwrap_err();
    assert!(
        matches!(err, PullError::Registry(RegistryError::Unauthorized { .. })),
        "{err:?}"
    );
    let image = rt
        .block_on(store2.pull(&r, &Platform::default(), &creds, silent()))
        .unwrap();
    assert_eq!(image.manifest_digest, digest);
    assert_eq!(
        std::fs::read_to_string(image.snapshots()[0].join("etc/marker")).unwrap(),
        "berth-test\n"
    );
    assert!(
        tokens
            .scopes
            .lock()
            .unwrap()
            .contains(&"repository:tok/app:pull".to_owned())
    );
    let info = skopeo_inspect(
        &format!("{}/tok/app:v1", registry.host),
        &["--creds", "bob:builder"],
    );
    assert_eq!(info["Digest"], digest.to_string());
}
