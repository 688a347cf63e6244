//! Device nodes in the container's `/dev` (a tmpfs): bind mounts of the host's nodes, which
//! works in user namespaces too, plus the standard symlinks.

use std::path::{Path, PathBuf};

use nix::mount::{MsFlags, mount};
use oci_spec::runtime::LinuxDevice;

use crate::process::message::SetupError;

/// The devices every container gets (as Docker and the OCI spec's default list).
pub const DEFAULT_DEVICES: &[&str] = &[
    "/dev/null",
    "/dev/zero",
    "/dev/full",
    "/dev/random",
    "/dev/urandom",
    "/dev/tty",
];

const SYMLINKS: &[(&str, &str)] = &[
    ("/proc/self/fd", "/dev/fd"),
    ("/proc/self/fd/0", "/dev/stdin"),
    ("/proc/self/fd/1", "/dev/stdout"),
    ("/proc/self/fd/2", "/dev/stderr"),
    ("/proc/kcore", "/dev/core"),
];

/// Creates the default devices, the spec's extra devices and the `/dev` symlinks under
/// `root` (before `pivot_root`). The caller only does this when the spec mounts a fresh
/// `/dev`, so nothing is written into the image's own `/dev`.
pub fn populate(root: &Path, extra: &[LinuxDevice]) -> Result<(), SetupError> {
    let dev = root.join("dev");
    let mut nodes: Vec<PathBuf> = DEFAULT_DEVICES.iter().map(PathBuf::from).collect();
    nodes.extend(extra.iter().map(|d| d.path().clone()));
    for node in nodes {
        bind_device(root, &node)?;
    }
    for (target, link) in SYMLINKS {
        let at = root.join(link.trim_start_matches('/'));
        if std::fs::symlink_metadata(&at).is_err() {
            std::os::unix::fs::symlink(target, &at)
                .map_err(|e| SetupError::fs("symlink", &at, &e))?;
        }
    }
    // /dev/ptmx must be the devpts instance's own multiplexer.
    let ptmx = dev.join("ptmx");
    if dev.join("pts/ptmx").exists() {
        let _ = std::fs::remove_file(&ptmx);
        std::os::unix::fs::symlink("pts/ptmx", &ptmx)
            .map_err(|e| SetupError::fs("symlink", &ptmx, &e))?;
    }
    Ok(())
}

fn bind_device(root: &Path, node: &Path) -> Result<(), SetupError> {
    if !node.exists() {
        return Err(SetupError::fs(
            "open device",
            node,
            nix::errno::Errno::ENOENT,
        ));
    }
    let target = crate::rootfs::secure_join(root, node);
    if let Some(parent) = target.parent() {
        std::fs::create_dir_all(parent).map_err(|e| SetupError::fs("mkdir", parent, &e))?;
    }
    if std::fs::symlink_metadata(&target).is_err() {
        std::fs::File::create(&target).map_err(|e| SetupError::fs("create", &target, &e))?;
    }
    mount(
        Some(node),
        &target,
        None::<&str>,
        MsFlags::MS_BIND,
        None::<&str>,
    )
    .map_err(|errno| SetupError::Mount {
        source_path: node.display().to_string(),
        target: target.display().to_string(),
        fstype: "bind".into(),
        errno: errno.into(),
    })
}

/// Bind-mounts the container's terminal on `/dev/console`, as runc does.
pub fn bind_console(root: &Path, tty: &Path) -> Result<(), SetupError> {
    let target = root.join("dev/console");
    if std::fs::symlink_metadata(&target).is_err() {
        std::fs::File::create(&target).map_err(|e| SetupError::fs("create", &target, &e))?;
    }
    mount(
        Some(tty),
        &target,
        None::<&str>,
        MsFlags::MS_BIND,
        None::<&str>,
    )
    .map_err(|errno| SetupError::Mount {
        source_path: tty.display().to_string(),
        target: target.display().to_string(),
        fstype: "bind".into(),
        errno: errno.into(),
    })
}
