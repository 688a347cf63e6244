//! The optional user namespace: root in the container is an unprivileged uid on the host.

mod common;

use std::os::unix::fs::PermissionsExt;

use common::Fixture;
use oci_spec::runtime::{LinuxIdMappingBuilder, LinuxNamespaceBuilder, LinuxNamespaceType};

const HOST_BASE: u32 = 200_000;

#[test]
fn root_in_a_user_namespace_is_unprivileged_on_the_host() {
    let f = Fixture::new("userns");
    // The mapped root must be able to reach the root filesystem (a plain directory here,
    // owned by the host's root; the overlay case is the next test).
    std::fs::set_permissions(f.tmp.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let scratch = f.tmp.path().join("scratch");
    std::fs::create_dir(&scratch).unwrap();
    std::fs::create_dir(f.lower.join("scratch")).unwrap();
    nix::unistd::chown(&scratch, Some(HOST_BASE.into()), Some(HOST_BASE.into())).unwrap();
    let mut req = f.sh(
        "id -u; cat /proc/self/uid_map; touch /etc/owned-by-host-root || echo refused; \
         touch /scratch/made-here && echo wrote",
    );
    req.rootfs = berth_runtime::Rootfs::Path(f.lower.clone());
    let mut mounts = req.spec.mounts().clone().unwrap();
    mounts.push(
        oci_spec::runtime::MountBuilder::default()
            .destination("/scratch")
            .typ("bind")
            .source(&scratch)
            .options(vec!["rbind".to_string()])
            .build()
            .unwrap(),
    );
    req.spec.set_mounts(Some(mounts));
    let linux = req.spec.linux_mut().as_mut().unwrap();
    let mut ns = linux.namespaces().clone().unwrap();
    ns.push(
        LinuxNamespaceBuilder::default()
            .typ(LinuxNamespaceType::User)
            .build()
            .unwrap(),
    );
    linux.set_namespaces(Some(ns));
    let map = LinuxIdMappingBuilder::default()
        .container_id(0u32)
        .host_id(HOST_BASE)
        .size(65_536u32)
        .build()
        .unwrap();
    linux.set_uid_mappings(Some(vec![map]));
    linux.set_gid_mappings(Some(vec![map]));
    let out = f.run(req);
    assert_eq!(out.status.code, 0, "stderr: {}", out.stderr);
    let lines: Vec<String> = out
        .stdout
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    // Root inside, but the host's root-owned files stay out of reach.
    assert_eq!(lines, vec!["0", "0 200000 65536", "refused", "wrote"]);
    assert!(out.stderr.contains("Permission denied"), "{}", out.stderr);
    // What the container's root makes belongs to the unprivileged host uid.
    let meta = std::fs::metadata(scratch.join("made-here")).unwrap();
    assert_eq!(std::os::unix::fs::MetadataExt::uid(&meta), HOST_BASE);
}

#[test]
fn overlay_root_in_a_user_namespace() {
    let f = Fixture::new("usernsovl");
    std::fs::set_permissions(f.tmp.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    for d in [&f.upper, &f.work] {
        nix::unistd::chown(d, Some(HOST_BASE.into()), Some(HOST_BASE.into())).unwrap();
    }
    let mut req = f.sh("touch /made-here && echo wrote; id -u");
    let linux = req.spec.linux_mut().as_mut().unwrap();
    let mut ns = linux.namespaces().clone().unwrap();
    ns.push(
        LinuxNamespaceBuilder::default()
            .typ(LinuxNamespaceType::User)
            .build()
            .unwrap(),
    );
    linux.set_namespaces(Some(ns));
    let map = LinuxIdMappingBuilder::default()
        .container_id(0u32)
        .host_id(HOST_BASE)
        .size(65_536u32)
        .build()
        .unwrap();
    linux.set_uid_mappings(Some(vec![map]));
    linux.set_gid_mappings(Some(vec![map]));
    let out = f.run(req);
    assert_eq!(out.stdout, "wrote\n0\n", "stderr: {}", out.stderr);
    let meta = std::fs::metadata(f.upper.join("made-here")).unwrap();
    assert_eq!(std::os::unix::fs::MetadataExt::uid(&meta), HOST_BASE);
}
