//! The local store: import, layers and snapshot order, tags, removal and garbage collection.

mod common;

use std::io::Write;
use std::os::unix::fs::FileTypeExt;

use berth_image::{ImageConfig, ImportOptions, Reference, Store, StoreError};
use common::busybox_rootfs;

fn store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("image")).unwrap();
    (dir, store)
}

/// A one-file layer tar.
fn tar_with(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (path, data) in entries {
        let mut h = tar::Header::new_ustar();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_entry_type(tar::EntryType::Regular);
        b.append_data(&mut h, path, *data).unwrap();
    }
    b.into_inner().unwrap()
}

#[test]
fn import_directory_with_changes() {
    common::require_root();
    let (dir, store) = store();
    let rootfs = dir.path().join("rootfs");
    busybox_rootfs(&rootfs);
    let r = Reference::parse("busybox:imported").unwrap();
    let image = store
        .import_rootfs(
            &rootfs,
            Some(&r),
            &ImportOptions {
                changes: vec!["CMD [\"sh\"]".into(), "WORKDIR /srv".into()],
                message: Some("from a directory".into()),
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(
        image.config.config.cmd.as_deref(),
        Some(&["sh".to_owned()][..])
    );
    assert_eq!(image.config.config.working_dir, "/srv");
    assert_eq!(
        image.config.history[0].comment.as_deref(),
        Some("from a directory")
    );
    let snaps = image.snapshots();
    assert_eq!(snaps.len(), 1);
    assert_eq!(
        std::fs::read(snaps[0].join("bin/busybox")).unwrap(),
        std::fs::read("/bin/busybox").unwrap()
    );
    assert_eq!(
        std::fs::read_link(snaps[0].join("bin/sh")).unwrap(),
        std::path::Path::new("busybox")
    );
    let listed = store.list().unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].references, vec![r.clone()]);
    // Another handle on the same root (another process, say) sees the same image.
    let again = Store::open(store.root()).unwrap();
    assert_eq!(again.resolve(&r).unwrap().id, image.id);
    assert_eq!(again.find(&image.id.hex()[..12]).unwrap().id, image.id);
}

#[test]
fn snapshots_are_ordered_top_most_first_with_whiteouts() {
    common::require_root();
    let (_dir, store) = store();
    let base = store
        .write_layer(&tar_with(&[("etc/a", b"a"), ("etc/b", b"b")])[..])
        .unwrap();
    // The upper layer deletes etc/a (a whiteout) and adds etc/c, gzip-compressed.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&tar_with(&[("etc/.wh.a", b""), ("etc/c", b"c")]))
        .unwrap();
    let upper = store.write_layer(&gz.finish().unwrap()[..]).unwrap();
    assert_eq!(
        upper.media_type,
        "application/vnd.oci.image.layer.v1.tar+gzip"
    );
    assert_ne!(upper.digest, upper.diff_id);
    let r = Reference::parse("localhost/layers:1").unwrap();
    let image = store
        .create_image(
            ImageConfig::default(),
            &[base.clone(), upper.clone()],
            std::slice::from_ref(&r),
        )
        .unwrap();
    assert_eq!(
        image.config.rootfs.diff_ids,
        vec![base.diff_id.clone(), upper.diff_id.clone()]
    );
    let snaps = image.snapshots();
    assert_eq!(snaps.len(), 2);
    assert!(snaps[0].ends_with(upper.diff_id.hex()));
    assert!(snaps[1].ends_with(base.diff_id.hex()));
    let wh = std::fs::symlink_metadata(snaps[0].join("etc/a")).unwrap();
    assert!(wh.file_type().is_char_device());
    assert_eq!(std::fs::read(snaps[1].join("etc/a")).unwrap(), b"a");
    assert_eq!(std::fs::read(snaps[0].join("etc/c")).unwrap(), b"c");
}

#[test]
fn tags_untag_and_remove() {
    common::require_root();
    let (_dir, store) = store();
    let layer = store.write_layer(&tar_with(&[("x", b"x")])[..]).unwrap();
    let one = Reference::parse("app:1").unwrap();
    let two = Reference::parse("app:2").unwrap();
    let image = store
        .create_image(ImageConfig::default(), &[layer], std::slice::from_ref(&one))
        .unwrap();
    store.tag(&image, &two).unwrap();
    assert_eq!(
        store.resolve(&two).unwrap().references,
        vec![one.clone(), two.clone()]
    );
    let err = store.remove(&image, false).unwrap_err();
    assert!(
        matches!(err, StoreError::MultipleReferences { .. }),
        "{err:?}"
    );
    // Untagging one of two keeps the image; the last one removes it.
    assert_eq!(store.untag(&one).unwrap(), None);
    assert_eq!(store.untag(&two).unwrap(), Some(image.id.clone()));
    assert!(matches!(store.resolve(&two), Err(StoreError::NotFound(_))));
    assert!(matches!(store.untag(&two), Err(StoreError::NotFound(_))));
}

#[test]
fn gc_keeps_what_is_referenced_and_nothing_else() {
    common::require_root();
    let (_dir, store) = store();
    let shared = store
        .write_layer(&tar_with(&[("shared", b"s")])[..])
        .unwrap();
    let only_a = store.write_layer(&tar_with(&[("a", b"a")])[..]).unwrap();
    let only_b = store.write_layer(&tar_with(&[("b", b"b")])[..]).unwrap();
    let a_ref = Reference::parse("gc/a").unwrap();
    let b_ref = Reference::parse("gc/b").unwrap();
    let a = store
        .create_image(
            ImageConfig::default(),
            &[shared.clone(), only_a.clone()],
            std::slice::from_ref(&a_ref),
        )
        .unwrap();
    let mut cfg = ImageConfig::default();
    cfg.config.cmd = Some(vec!["b".into()]);
    let b = store
        .create_image(
            cfg,
            &[shared.clone(), only_b.clone()],
            std::slice::from_ref(&b_ref),
        )
        .unwrap();
    // Nothing unreferenced yet.
    assert_eq!(store.gc(&[]).unwrap().blobs_removed, vec![]);

    store.untag(&b_ref).unwrap();
    // A container still runs from b: its config and snapshots stay.
    let report = store.gc(std::slice::from_ref(&b.id)).unwrap();
    let mut expected = vec![b.manifest_digest.clone(), only_b.digest.clone()];
    expected.sort();
    let mut removed = report.blobs_removed.clone();
    removed.sort();
    assert_eq!(removed, expected);
    assert_eq!(report.snapshots_removed, vec![]);
    assert!(b.snapshots().iter().all(|p| p.is_dir()));

    // Once nothing uses it, the rest of b goes; a is untouched.
    let report = store.gc(&[]).unwrap();
    assert_eq!(report.blobs_removed, vec![b.id.clone()]);
    assert_eq!(report.snapshots_removed, vec![only_b.diff_id.clone()]);
    let a2 = store.resolve(&a_ref).unwrap();
    assert_eq!(a2.id, a.id);
    assert!(a2.snapshots().iter().all(|p| p.is_dir()));
    assert!(store.blobs().contains(&shared.digest));
    assert!(store.blobs().contains(&only_a.digest));
}

#[test]
fn prune_removes_untagged_images_and_with_all_unused_ones() {
    common::require_root();
    let (_dir, store) = store();
    let l1 = store.write_layer(&tar_with(&[("1", b"1")])[..]).unwrap();
    let l2 = store.write_layer(&tar_with(&[("2", b"2")])[..]).unwrap();
    let kept = store
        .create_image(
            ImageConfig::default(),
            &[l1],
            &[Reference::parse("p/kept").unwrap()],
        )
        .unwrap();
    let dangling = store
        .create_image(ImageConfig::default(), std::slice::from_ref(&l2), &[])
        .unwrap();
    let report = store.prune(false, &[]).unwrap();
    assert_eq!(report.images_removed, vec![dangling.id.clone()]);
    assert!(report.gc.snapshots_removed.contains(&l2.diff_id));
    let report = store.prune(true, std::slice::from_ref(&kept.id)).unwrap();
    assert_eq!(report.images_removed, vec![]);
    let report = store.prune(true, &[]).unwrap();
    assert_eq!(report.images_removed, vec![kept.id]);
    assert_eq!(store.list().unwrap().len(), 0);
}

#[test]
fn concurrent_imports_of_the_same_content_share_one_snapshot() {
    common::require_root();
    let (dir, store) = store();
    let rootfs = dir.path().join("rootfs");
    busybox_rootfs(&rootfs);
    let handles: Vec<_> = (0..4)
        .map(|i| {
            // Separate handles, as separate processes would have.
            let s = Store::open(store.root()).unwrap();
            let rootfs = rootfs.clone();
            std::thread::spawn(move || {
                let r = Reference::parse(&format!("race:{i}")).unwrap();
                s.import_rootfs(&rootfs, Some(&r), &ImportOptions::default())
                    .unwrap()
            })
        })
        .collect();
    let images: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    let diff = &images[0].config.rootfs.diff_ids[0];
    assert!(images.iter().all(|i| &i.config.rootfs.diff_ids[0] == diff));
    assert_eq!(
        store
            .list()
            .unwrap()
            .iter()
            .map(|i| i.references.len())
            .sum::<usize>(),
        4
    );
    let list = || {
        let mut v: Vec<_> = std::fs::read_dir(store.root().join("snapshots"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        v.sort();
        v
    };
    assert_eq!(
        list(),
        vec![diff.hex().to_owned(), format!("{}.unsynced", diff.hex())]
    );
    store.gc(&[]).unwrap();
    assert_eq!(list(), vec![diff.hex().to_owned()]);
}

#[test]
fn importing_a_tar_with_a_traversal_entry_is_refused() {
    common::require_root();
    let (dir, store) = store();
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Symlink);
    h.set_size(0);
    h.set_mode(0o777);
    h.set_path("etc").unwrap();
    h.set_link_name("/").unwrap();
    h.set_cksum();
    let mut b = tar::Builder::new(Vec::new());
    b.append(&h, &b""[..]).unwrap();
    let mut f = tar::Header::new_gnu();
    f.set_entry_type(tar::EntryType::Regular);
    f.set_size(1);
    f.set_mode(0o644);
    f.set_path("etc/shadow").unwrap();
    f.set_cksum();
    b.append(&f, &b"x"[..]).unwrap();
    let data = b.into_inner().unwrap();
    let tar_path = dir.path().join("evil.tar");
    std::fs::write(&tar_path, &data).unwrap();
    let err = store
        .import_rootfs(&tar_path, None, &ImportOptions::default())
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "layer {}: entry \"etc/shadow\" refused: a parent directory is a symlink",
            berth_image::Digest::of(&data)
        )
    );
    assert_eq!(store.list().unwrap().len(), 0);
    assert_eq!(common::store_listing(store.root()), Vec::<String>::new());
}

#[test]
fn snapshot_left_unflushed_by_an_earlier_boot_is_unpacked_again() {
    common::require_root();
    let (dir, store) = store();
    let rootfs = dir.path().join("rootfs");
    busybox_rootfs(&rootfs);
    let r = Reference::parse("crash:1").unwrap();
    let image = store
        .import_rootfs(&rootfs, Some(&r), &ImportOptions::default())
        .unwrap();
    let snap = image.snapshots()[0].clone();
    let marker = snap.with_extension("unsynced");
    // Simulate a power loss: the marker names another boot and a file lost its data.
    std::fs::write(&marker, "another-boot").unwrap();
    std::fs::write(snap.join("etc/marker"), "").unwrap();
    let again = store.resolve(&r).unwrap();
    assert_eq!(again.snapshots()[0], snap);
    assert_eq!(
        std::fs::read_to_string(snap.join("etc/marker")).unwrap(),
        "berth-test\n"
    );
    let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").unwrap();
    assert_eq!(std::fs::read_to_string(&marker).unwrap(), boot.trim());
    // A snapshot flushed by gc has no marker and is trusted as it is.
    store.gc(&[]).unwrap();
    assert!(!marker.exists());
}
