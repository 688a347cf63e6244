//! The container's root filesystem, built inside its fresh mount namespace by the init:
//!
//! 1. make `/` `rslave` (nothing mounted here propagates to the host);
//! 2. mount the root ([`overlay`]): an overlay of the layers, or a bind of a directory;
//! 3. the spec's mounts in order ([`mounts`]): `/proc`, `/dev`, `/sys`, binds, tmpfs…;
//! 4. device nodes and `/dev` symlinks ([`devices`]);
//! 5. `pivot_root` and detach the old root ([`pivot`]);
//! 6. masked and read-only paths, read-only root ([`paths`]).
//!
//! Every mount lives in the container's mount namespace only, so nothing remains on the
//! host once the container's last process exits.

pub mod devices;
pub mod mounts;
pub mod options;
pub mod overlay;
pub mod paths;
pub mod pivot;

use std::path::{Component, Path, PathBuf};

use nix::mount::{MsFlags, mount};

use crate::process::message::SetupError;

/// Resolves `unsafe_path` (an absolute path inside the container) under `root`, following
/// symlinks as if `root` were `/`, so a symlink in an image cannot point a mount at the
/// host. Components that do not exist yet are appended as they are.
pub fn secure_join(root: &Path, unsafe_path: &Path) -> PathBuf {
    let mut resolved = PathBuf::new();
    let mut pending: Vec<PathBuf> = vec![unsafe_path.to_owned()];
    let mut links = 0;
    while let Some(path) = pending.pop() {
        let mut comps: Vec<Component<'_>> = path.components().collect();
        comps.reverse();
        while let Some(c) = comps.pop() {
            match c {
                Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
                Component::ParentDir => {
                    resolved.pop();
                }
                Component::Normal(name) => {
                    let candidate = resolved.join(name);
                    let host = root.join(&candidate);
                    match std::fs::read_link(&host) {
                        Ok(target) if links < 255 => {
                            links += 1;
                            let rest: PathBuf = comps.iter().rev().collect();
                            if target.is_absolute() {
                                resolved = PathBuf::new();
                            }
                            pending.push(target.join(rest));
                            comps.clear();
                        }
                        _ => resolved = candidate,
                    }
                }
            }
        }
    }
    root.join(resolved)
}

/// Steps 1–4: everything before `pivot_root`. `rootfs_dir` is the mount point in the
/// container's state directory; `cgroups` lists `(hierarchy name, host directory)` of the
/// container's cgroups for a `cgroup` mount; `console` the terminal for `/dev/console`.
pub fn prepare(
    spec: &oci_spec::runtime::Spec,
    rootfs: &crate::Rootfs,
    rootfs_dir: &Path,
    cgroups: &[(String, PathBuf)],
    console: Option<&Path>,
) -> Result<(), SetupError> {
    let linux = spec.linux().as_ref();
    let propagation =
        options::root_propagation(linux.and_then(|l| l.rootfs_propagation().as_deref()));
    mount(None::<&str>, "/", None::<&str>, propagation, None::<&str>).map_err(|errno| {
        SetupError::Mount {
            source_path: String::new(),
            target: "/".into(),
            fstype: "propagation".into(),
            errno: errno.into(),
        }
    })?;
    let in_userns = linux
        .and_then(|l| l.namespaces().as_ref())
        .is_some_and(|ns| {
            ns.iter()
                .any(|n| n.typ() == oci_spec::runtime::LinuxNamespaceType::User)
        });
    overlay::mount_root(rootfs, rootfs_dir, in_userns)?;
    for m in spec.mounts().iter().flatten() {
        mounts::mount_entry(rootfs_dir, m, cgroups)?;
    }
    let mounts_dev = spec
        .mounts()
        .iter()
        .flatten()
        .any(|m| m.destination() == Path::new("/dev"));
    if mounts_dev {
        let extra = linux.and_then(|l| l.devices().clone()).unwrap_or_default();
        devices::populate(rootfs_dir, &extra)?;
        if let Some(tty) = console {
            devices::bind_console(rootfs_dir, tty)?;
        }
    }
    Ok(())
}

/// Step 6: after `pivot_root`, with `/` being the container's root.
pub fn finish(spec: &oci_spec::runtime::Spec) -> Result<(), SetupError> {
    if let Some(linux) = spec.linux() {
        for p in linux.masked_paths().iter().flatten() {
            paths::mask(Path::new(p))?;
        }
        for p in linux.readonly_paths().iter().flatten() {
            paths::make_readonly(Path::new(p))?;
        }
    }
    if spec.root().as_ref().and_then(|r| r.readonly()) == Some(true) {
        paths::remount_readonly(Path::new("/"), MsFlags::empty())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secure_join_keeps_symlinks_inside_the_root() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("real/sub")).unwrap();
        std::os::unix::fs::symlink("/real", root.join("abs")).unwrap();
        std::os::unix::fs::symlink("../../../../etc", root.join("real/escape")).unwrap();
        assert_eq!(
            secure_join(root, Path::new("/abs/sub")),
            root.join("real/sub")
        );
        assert_eq!(
            secure_join(root, Path::new("/real/escape/x")),
            root.join("etc/x")
        );
        assert_eq!(secure_join(root, Path::new("/../../new")), root.join("new"));
    }
}
