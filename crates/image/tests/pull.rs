//! Pulls from a real `docker-registry` of images that skopeo and umoci put there.

mod common;

use std::os::unix::fs::MetadataExt;
use std::sync::{Arc, Mutex};

use berth_image::registry::progress::silent;
use berth_image::registry::{
    ClientOptions, Credentials, Progress, ProgressFn, PullError, RegistryError,
};
use berth_image::{Platform, Reference, Store, StoreError};
use common::{Registry, RegistryAuth, busybox_rootfs, skopeo_copy, store_listing, umoci_image};

fn recorder() -> (ProgressFn, Arc<Mutex<Vec<Progress>>>) {
    let events = Arc::new(Mutex::new(Vec::new()));
    let e = events.clone();
    (Arc::new(move |p| e.lock().unwrap().push(p)), events)
}

/// Builds a busybox image with umoci and copies it into `registry` as `repo:tag`.
fn seed(registry: &Registry, repo: &str, tag: &str, extra: &[&str]) -> tempfile::TempDir {
    let work = tempfile::tempdir().unwrap();
    let rootfs = work.path().join("rootfs");
    busybox_rootfs(&rootfs);
    let layout = work.path().join("layout");
    umoci_image(&layout, "base", &rootfs, "amd64");
    skopeo_copy(
        &format!("oci:{}:base", layout.display()),
        &format!("docker://{}/{repo}:{tag}", registry.host),
        extra,
    );
    work
}

fn assert_busybox_snapshot(image: &berth_image::Image) {
    let snaps = image.snapshots();
    assert_eq!(snaps.len(), 1);
    let top = &snaps[0];
    let original = std::fs::read("/bin/busybox").unwrap();
    assert_eq!(std::fs::read(top.join("bin/busybox")).unwrap(), original);
    assert_eq!(
        std::fs::read_link(top.join("bin/sh")).unwrap(),
        std::path::Path::new("busybox")
    );
    assert_eq!(
        std::fs::read_to_string(top.join("etc/marker")).unwrap(),
        "berth-test\n"
    );
    let mode = std::fs::metadata(top.join("bin/busybox")).unwrap().mode();
    assert_eq!(mode & 0o111, 0o111, "busybox stays executable");
}

#[test]
fn pull_oci_image_copied_by_skopeo_unpacks_busybox() {
    common::require_root();
    let registry = Registry::start(RegistryAuth::None);
    let _seed = seed(&registry, "test/oci", "v1", &[]);
    let root = tempfile::tempdir().unwrap();
    let store = Store::open(root.path()).unwrap();
    let r = Reference::parse(&format!("{}/test/oci:v1", registry.host)).unwrap();
    let rt = common::rt();
    let (progress, events) = recorder();
    let image = rt
        .block_on(store.pull(
            &r,
            &Platform::default(),
            &ClientOptions::default(),
            progress,
        ))
        .unwrap();
    assert_busybox_snapshot(&image);
    assert_eq!(
        image.config.config.cmd.as_deref(),
        Some(&["sh".to_owned()][..])
    );
    assert!(image.config.config.env.contains(&"BERTH_TEST=1".to_owned()));
    assert_eq!(
        image.manifest.layers[0].media_type,
        "application/vnd.oci.image.layer.v1.tar+gzip"
    );
    assert!(
        events
            .lock()
            .unwrap()
            .iter()
            .any(|e| matches!(e, Progress::LayerDone { .. }))
    );
    let resolved = store.resolve(&r).unwrap();
    assert_eq!(resolved.id, image.id);
    assert_eq!(resolved.references, vec![r.clone()]);

    // A second pull downloads nothing.
    let (progress, events) = recorder();
    rt.block_on(store.pull(
        &r,
        &Platform::default(),
        &ClientOptions::default(),
        progress,
    ))
    .unwrap();
    let events = events.lock().unwrap();
    assert!(
        events
            .iter()
            .any(|e| matches!(e, Progress::LayerExists { .. }))
    );
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, Progress::LayerStarted { .. }))
    );
}

#[test]
fn pull_docker_v2s2_image() {
    common::require_root();
    let registry = Registry::start(RegistryAuth::None);
    let _seed = seed(&registry, "test/docker", "latest", &["--format", "v2s2"]);
    let root = tempfile::tempdir().unwrap();
    let store = Store::open(root.path()).unwrap();
    let r = Reference::parse(&format!("{}/test/docker", registry.host)).unwrap();
    let image = common::rt()
        .block_on(store.pull(
            &r,
            &Platform::default(),
            &ClientOptions::default(),
            silent(),
        ))
        .unwrap();
    assert_eq!(
        image.manifest.media_type.as_deref(),
        Some("application/vnd.docker.distribution.manifest.v2+json")
    );
    assert_busybox_snapshot(&image);
}

#[test]
fn pull_zstd_compressed_layers() {
    common::require_root();
    let registry = Registry::start(RegistryAuth::None);
    let _seed = seed(
        &registry,
        "test/zstd",
        "v1",
        &["--dest-compress-format", "zstd", "--dest-compress"],
    );
    let root = tempfile::tempdir().unwrap();
    let store = Store::open(root.path()).unwrap();
    let r = Reference::parse(&format!("{}/test/zstd:v1", registry.host)).unwrap();
    let image = common::rt()
        .block_on(store.pull(
            &r,
            &Platform::default(),
            &ClientOptions::default(),
            silent(),
        ))
        .unwrap();
    assert_eq!(
        image.manifest.layers[0].media_type,
        "application/vnd.oci.image.layer.v1.tar+zstd"
    );
    assert_busybox_snapshot(&image);
}

#[test]
fn pull_selects_the_platform_from_a_multi_platform_index() {
    common::require_root();
    let registry = Registry::start(RegistryAuth::None);
    let work = tempfile::tempdir().unwrap();
    let layout = work.path().join("layout");
    for arch in ["amd64", "arm64"] {
        let rootfs = work.path().join(arch);
        busybox_rootfs(&rootfs);
        std::fs::write(rootfs.join("etc/arch"), arch).unwrap();
        umoci_image(&layout, arch, &rootfs, arch);
    }
    let index_digest = common::add_index(&layout, "multi", &["amd64", "arm64"]);
    skopeo_copy(
        &format!("oci:{}:multi", layout.display()),
        &format!("docker://{}/test/multi:latest", registry.host),
        &["--all"],
    );
    let rt = common::rt();
    let root = tempfile::tempdir().unwrap();
    let store = Store::open(root.path()).unwrap();
    let r = Reference::parse(&format!("{}/test/multi", registry.host)).unwrap();
    let amd = rt
        .block_on(store.pull(
            &r,
            &Platform::default(),
            &ClientOptions::default(),
            silent(),
        ))
        .unwrap();
    assert_eq!(
        std::fs::read_to_string(amd.snapshots()[0].join("etc/arch")).unwrap(),
        "amd64"
    );
    assert_eq!(amd.config.architecture, "amd64");

    let pinned = Reference::parse(&format!("{}/test/multi@{index_digest}", registry.host)).unwrap();
    let arm = rt
        .block_on(store.pull(
            &pinned,
            &Platform::parse("linux/arm64").unwrap(),
            &ClientOptions::default(),
            silent(),
        ))
        .unwrap();
    assert_eq!(
        std::fs::read_to_string(arm.snapshots()[0].join("etc/arch")).unwrap(),
        "arm64"
    );
    assert_eq!(store.resolve(&pinned).unwrap().id, arm.id);

    let err = rt
        .block_on(store.pull(
            &r,
            &Platform::parse("linux/s390x").unwrap(),
            &ClientOptions::default(),
            silent(),
        ))
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("manifest of {}/test/multi:latest", registry.host)
    );
    let source = std::error::Error::source(&err).unwrap().to_string();
    assert_eq!(
        source,
        "no image for platform linux/s390x (available: linux/amd64, linux/arm64)"
    );
}

#[test]
fn pull_with_basic_auth_needs_the_credentials() {
    common::require_root();
    let registry = Registry::start(RegistryAuth::Basic {
        user: "alice".into(),
        password: "wonderland".into(),
    });
    // skopeo pushes with the same credentials.
    let work = tempfile::tempdir().unwrap();
    let rootfs = work.path().join("rootfs");
    busybox_rootfs(&rootfs);
    let layout = work.path().join("layout");
    umoci_image(&layout, "base", &rootfs, "amd64");
    skopeo_copy(
        &format!("oci:{}:base", layout.display()),
        &format!("docker://{}/private/app:v1", registry.host),
        &["--dest-creds", "alice:wonderland"],
    );
    let rt = common::rt();
    let root = tempfile::tempdir().unwrap();
    let store = Store::open(root.path()).unwrap();
    let r = Reference::parse(&format!("{}/private/app:v1", registry.host)).unwrap();
    let err = rt
        .block_on(store.pull(
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
    let wrong = ClientOptions {
        credentials: Credentials::Basic {
            username: "alice".into(),
            password: "nope".into(),
        },
        ..Default::default()
    };
    let err = rt
        .block_on(store.pull(&r, &Platform::default(), &wrong, silent()))
        .unwrap_err();
    assert!(matches!(
        err,
        PullError::Registry(RegistryError::Unauthorized { .. })
    ));
    let good = ClientOptions {
        credentials: Credentials::Basic {
            username: "alice".into(),
            password: "wonderland".into(),
        },
        ..Default::default()
    };
    let image = rt
        .block_on(store.pull(&r, &Platform::default(), &good, silent()))
        .unwrap();
    assert_busybox_snapshot(&image);
}

#[test]
fn missing_image_is_a_clear_not_found() {
    let registry = Registry::start(RegistryAuth::None);
    let root = tempfile::tempdir().unwrap();
    let store = Store::open(root.path()).unwrap();
    let r = Reference::parse(&format!("{}/nothing/here:v1", registry.host)).unwrap();
    let err = common::rt()
        .block_on(store.pull(
            &r,
            &Platform::default(),
            &ClientOptions::default(),
            silent(),
        ))
        .unwrap_err();
    match err {
        PullError::Registry(RegistryError::NotFound { what, detail }) => {
            assert_eq!(what, format!("manifest {}/nothing/here:v1", registry.host));
            assert!(
                detail.starts_with("NAME_UNKNOWN") || detail.starts_with("MANIFEST_UNKNOWN"),
                "{detail}"
            );
        }
        other => panic!("expected not found, got {other:?}"),
    }
    assert!(matches!(store.resolve(&r), Err(StoreError::NotFound(_))));
}

/// The layer digest of the image `repo:tag` in `registry`, read with skopeo.
fn layer_digest(registry: &Registry, repo: &str) -> String {
    let out = common::run(std::process::Command::new("skopeo").args([
        "inspect",
        "--tls-verify=false",
        &format!("docker://{}/{repo}", registry.host),
    ]));
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    v["Layers"][0].as_str().unwrap().to_owned()
}

#[test]
fn corrupted_blob_fails_with_digest_error_and_leaves_store_unchanged() {
    common::require_root();
    let registry = Registry::start(RegistryAuth::None);
    let _seed = seed(&registry, "test/corrupt", "latest", &[]);
    let layer = layer_digest(&registry, "test/corrupt:latest");
    let rt = common::rt();
    let proxy =
        common::proxy::Proxy::start(&rt, &registry.host, &layer, common::proxy::Fault::FlipByte);
    let root = tempfile::tempdir().unwrap();
    let store = Store::open(root.path()).unwrap();
    let before = store_listing(root.path());
    let r = Reference::parse(&format!("{}/test/corrupt", proxy.host)).unwrap();
    let err = rt
        .block_on(store.pull(
            &r,
            &Platform::default(),
            &ClientOptions::default(),
            silent(),
        ))
        .unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.starts_with(&format!(
            "digest mismatch for blob {layer}: content hashes to sha256:"
        )),
        "{msg}"
    );
    assert_eq!(store_listing(root.path()), before);
    assert_eq!(store.list().unwrap().len(), 0);
}

#[test]
fn dropped_connection_mid_blob_is_resumed() {
    common::require_root();
    let registry = Registry::start(RegistryAuth::None);
    let _seed = seed(&registry, "test/drop", "latest", &[]);
    let layer = layer_digest(&registry, "test/drop:latest");
    let rt = common::rt();
    let proxy =
        common::proxy::Proxy::start(&rt, &registry.host, &layer, common::proxy::Fault::DropOnce);
    let root = tempfile::tempdir().unwrap();
    let store = Store::open(root.path()).unwrap();
    let r = Reference::parse(&format!("{}/test/drop", proxy.host)).unwrap();
    let (progress, events) = recorder();
    let image = rt
        .block_on(store.pull(
            &r,
            &Platform::default(),
            &ClientOptions::default(),
            progress,
        ))
        .unwrap();
    assert_busybox_snapshot(&image);
    assert_eq!(proxy.drops.load(std::sync::atomic::Ordering::SeqCst), 2);
    assert_eq!(
        proxy.ranges.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "resumed with Range"
    );
    assert!(
        events
            .lock()
            .unwrap()
            .iter()
            .any(|e| matches!(e, Progress::LayerRetry { attempt: 2, .. }))
    );
}

#[test]
fn path_traversal_layer_from_a_registry_is_refused() {
    common::require_root();
    let registry = Registry::start(RegistryAuth::None);
    // An OCI layout written by hand whose only layer has a `../escape` entry.
    let work = tempfile::tempdir().unwrap();
    let layout = work.path().join("layout");
    std::fs::create_dir_all(layout.join("blobs/sha256")).unwrap();
    let mut tar = Vec::new();
    {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Regular);
        h.set_size(4);
        h.set_mode(0o644);
        let name = b"../escape";
        h.as_gnu_mut().unwrap().name[..name.len()].copy_from_slice(name);
        h.set_cksum();
        let mut b = tar::Builder::new(&mut tar);
        b.append(&h, &b"evil"[..]).unwrap();
        b.finish().unwrap();
    }
    let put = |data: &[u8]| {
        let d = berth_image::Digest::of(data);
        std::fs::write(layout.join("blobs/sha256").join(d.hex()), data).unwrap();
        (d.to_string(), data.len())
    };
    let layer = put(&tar);
    let config = serde_json::json!({"architecture":"amd64","os":"linux",
        "rootfs":{"type":"layers","diff_ids":[layer.0]}});
    let config = put(config.to_string().as_bytes());
    let manifest = serde_json::json!({"schemaVersion":2,
        "mediaType":"application/vnd.oci.image.manifest.v1+json",
        "config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":config.0,"size":config.1},
        "layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":layer.0,"size":layer.1}]});
    let manifest = put(manifest.to_string().as_bytes());
    std::fs::write(
        layout.join("oci-layout"),
        r#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .unwrap();
    std::fs::write(
        layout.join("index.json"),
        serde_json::json!({"schemaVersion":2,"manifests":[{
            "mediaType":"application/vnd.oci.image.manifest.v1+json","digest":manifest.0,
            "size":manifest.1,"annotations":{"org.opencontainers.image.ref.name":"evil"}}]})
        .to_string(),
    )
    .unwrap();
    skopeo_copy(
        &format!("oci:{}:evil", layout.display()),
        &format!("docker://{}/test/evil:latest", registry.host),
        &[],
    );
    // skopeo may recompress the layer on the way: ask the registry for its digest.
    let pushed_layer = layer_digest(&registry, "test/evil:latest");
    let root = tempfile::tempdir().unwrap();
    let store = Store::open(root.path()).unwrap();
    let r = Reference::parse(&format!("{}/test/evil", registry.host)).unwrap();
    let err = common::rt()
        .block_on(store.pull(
            &r,
            &Platform::default(),
            &ClientOptions::default(),
            silent(),
        ))
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("layer {pushed_layer}: entry \"../escape\" refused: path contains '..'")
    );
    assert!(!root.path().join("escape").exists());
    assert_eq!(store_listing(root.path()), Vec::<String>::new());
    assert!(!root.path().join("snapshots/escape").exists());
    assert_eq!(
        std::fs::read_dir(root.path().join("snapshots"))
            .unwrap()
            .count(),
        0
    );
    assert_eq!(store.list().unwrap().len(), 0);
}

#[test]
fn concurrent_pulls_into_one_store_share_blobs_and_snapshots() {
    common::require_root();
    let registry = Registry::start(RegistryAuth::None);
    let _seed = seed(&registry, "test/race", "latest", &[]);
    let root = tempfile::tempdir().unwrap();
    let r = Reference::parse(&format!("{}/test/race", registry.host)).unwrap();
    let threads: Vec<_> = (0..3)
        .map(|_| {
            // Separate handles and runtimes, as separate processes would have.
            let store = Store::open(root.path()).unwrap();
            let r = r.clone();
            std::thread::spawn(move || {
                common::rt()
                    .block_on(store.pull(
                        &r,
                        &Platform::default(),
                        &ClientOptions::default(),
                        silent(),
                    ))
                    .unwrap()
            })
        })
        .collect();
    let images: Vec<_> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    assert!(images.iter().all(|i| i.id == images[0].id));
    let store = Store::open(root.path()).unwrap();
    assert_eq!(store.list().unwrap().len(), 1);
    assert_busybox_snapshot(&store.resolve(&r).unwrap());
    let count = || {
        std::fs::read_dir(root.path().join("snapshots"))
            .unwrap()
            .count()
    };
    assert_eq!(
        count(),
        2,
        "one snapshot and its not-yet-flushed marker, no leftovers"
    );
    store.gc(&[]).unwrap();
    assert_eq!(count(), 1, "gc flushed and dropped the marker");
    assert_eq!(
        std::fs::read_dir(root.path().join("blobs/tmp"))
            .unwrap()
            .count(),
        0
    );
}

#[test]
fn login_checks_credentials_against_basic_auth() {
    let registry = Registry::start(RegistryAuth::Basic {
        user: "carol".into(),
        password: "secret".into(),
    });
    let rt = common::rt();
    let login = |password: &str| {
        let client = berth_image::registry::Client::new(
            &registry.host,
            ClientOptions {
                credentials: Credentials::Basic {
                    username: "carol".into(),
                    password: password.into(),
                },
                ..Default::default()
            },
        )
        .unwrap();
        rt.block_on(client.login())
    };
    assert!(matches!(
        login("wrong"),
        Err(RegistryError::Unauthorized { .. })
    ));
    assert!(matches!(login("secret"), Ok(())));
}

#[test]
fn rate_limited_registry_gives_a_clear_error_after_retries() {
    let registry = Registry::start(RegistryAuth::None);
    let rt = common::rt();
    let proxy =
        common::proxy::Proxy::start(&rt, &registry.host, "none", common::proxy::Fault::RateLimit);
    let root = tempfile::tempdir().unwrap();
    let store = Store::open(root.path()).unwrap();
    let r = Reference::parse(&format!("{}/test/limited", proxy.host)).unwrap();
    let err = rt
        .block_on(store.pull(
            &r,
            &Platform::default(),
            &ClientOptions::default(),
            silent(),
        ))
        .unwrap_err();
    assert!(
        matches!(
            err,
            PullError::Registry(RegistryError::TooManyRequests {
                retry_after: Some(1),
                ..
            })
        ),
        "{err:?}"
    );
    assert_eq!(
        proxy.drops.load(std::sync::atomic::Ordering::SeqCst),
        5,
        "5 attempts"
    );
}
