//! The spec's `mounts[]`, performed in order under the new root before `pivot_root`:
//! kernel file systems (`proc`, `sysfs`, `tmpfs`, `devpts`, `mqueue`), bind mounts with
//! their flags and propagation, and `cgroup` (a per-hierarchy view of the container's own
//! cgroups on v1, `cgroup2` on v2).

use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::mount::{MsFlags, mount};
use oci_spec::runtime::Mount;

use super::options::MountOptions;
use super::secure_join;
use crate::process::message::SetupError;

fn mount_err(src: &Path, target: &Path, fstype: &str, errno: Errno) -> SetupError {
    SetupError::Mount {
        source_path: src.display().to_string(),
        target: target.display().to_string(),
        fstype: fstype.to_owned(),
        errno: errno.into(),
    }
}

fn mkdir_all(path: &Path) -> Result<(), SetupError> {
    std::fs::create_dir_all(path).map_err(|e| SetupError::fs("mkdir", path, &e))
}

/// Performs one mount entry under `root`.
pub fn mount_entry(
    root: &Path,
    m: &Mount,
    cgroups: &[(String, PathBuf)],
) -> Result<(), SetupError> {
    let dest_name = m.destination().display().to_string();
    let opts = MountOptions::parse(m.options().as_deref().unwrap_or_default(), &dest_name)?;
    let target = secure_join(root, m.destination());
    let fstype = m.typ().as_deref().unwrap_or("none");
    let source = m.source().clone().unwrap_or_else(|| PathBuf::from(fstype));
    if opts.is_bind || fstype == "bind" {
        bind(&source, &target, &opts)?;
    } else if fstype == "cgroup" || fstype == "cgroup2" {
        mount_cgroups(&target, &opts, cgroups)?;
    } else {
        mkdir_all(&target)?;
        let data = (!opts.data.is_empty()).then_some(opts.data.as_str());
        let res = mount(Some(&source), &target, Some(fstype), opts.flags, data);
        match res {
            // Without a network namespace of our own, a fresh sysfs is refused: show the
            // host's (read-only as asked), as Docker does for --network host.
            Err(Errno::EPERM) if fstype == "sysfs" => {
                let mut o = opts.clone();
                o.recursive = true;
                bind(Path::new("/sys"), &target, &o)?;
            }
            r => r.map_err(|e| mount_err(&source, &target, fstype, e))?,
        }
    }
    if let Some(p) = opts.propagation {
        mount(None::<&str>, &target, None::<&str>, p, None::<&str>)
            .map_err(|e| mount_err(Path::new("propagation"), &target, fstype, e))?;
    }
    Ok(())
}

fn bind(source: &Path, target: &Path, opts: &MountOptions) -> Result<(), SetupError> {
    let meta = std::fs::metadata(source).map_err(|_| SetupError::BindSourceMissing {
        source_path: source.display().to_string(),
    })?;
    if meta.is_dir() {
        mkdir_all(target)?;
    } else {
        if let Some(parent) = target.parent() {
            mkdir_all(parent)?;
        }
        if std::fs::symlink_metadata(target).is_err() {
            std::fs::File::create(target).map_err(|e| SetupError::fs("create", target, &e))?;
        }
    }
    let mut flags = MsFlags::MS_BIND;
    if opts.recursive {
        flags |= MsFlags::MS_REC;
    }
    mount(Some(source), target, None::<&str>, flags, None::<&str>)
        .map_err(|e| mount_err(source, target, "bind", e))?;
    // Flags other than MS_BIND are ignored by the first call: a remount applies them.
    if !opts.flags.is_empty() {
        mount(
            None::<&str>,
            target,
            None::<&str>,
            opts.flags | MsFlags::MS_BIND | MsFlags::MS_REMOUNT,
            None::<&str>,
        )
        .map_err(|e| mount_err(source, target, "bind remount", e))?;
    }
    Ok(())
}

/// cgroup v2: a `cgroup2` mount (the cgroup namespace makes the container's cgroup its
/// root). cgroup v1: a tmpfs with one read-only bind of the container's own cgroup per
/// hierarchy, as runc does.
fn mount_cgroups(
    target: &Path,
    opts: &MountOptions,
    cgroups: &[(String, PathBuf)],
) -> Result<(), SetupError> {
    mkdir_all(target)?;
    let flags = opts.flags | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    if crate::cgroups::is_unified() {
        return mount(
            Some("cgroup2"),
            target,
            Some("cgroup2"),
            flags,
            None::<&str>,
        )
        .map_err(|e| mount_err(Path::new("cgroup2"), target, "cgroup2", e));
    }
    mount(
        Some("tmpfs"),
        target,
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        Some("mode=755"),
    )
    .map_err(|e| mount_err(Path::new("tmpfs"), target, "tmpfs", e))?;
    for (name, host_dir) in cgroups {
        let at = target.join(name);
        mkdir_all(&at)?;
        mount(
            Some(host_dir.as_path()),
            &at,
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .map_err(|e| mount_err(host_dir, &at, "bind", e))?;
        mount(
            None::<&str>,
            &at,
            None::<&str>,
            flags | MsFlags::MS_BIND | MsFlags::MS_REMOUNT,
            None::<&str>,
        )
        .map_err(|e| mount_err(host_dir, &at, "bind remount", e))?;
    }
    if opts.flags.contains(MsFlags::MS_RDONLY) {
        mount(
            None::<&str>,
            target,
            None::<&str>,
            MsFlags::MS_REMOUNT
                | MsFlags::MS_RDONLY
                | MsFlags::MS_NOSUID
                | MsFlags::MS_NODEV
                | MsFlags::MS_NOEXEC,
            Some("mode=755"),
        )
        .map_err(|e| mount_err(Path::new("tmpfs"), target, "tmpfs remount", e))?;
    }
    Ok(())
}
