//! Masked paths (hidden behind `/dev/null` or an empty read-only tmpfs) and read-only paths
//! (bind-mounted onto themselves, then remounted read-only), applied after `pivot_root`.

use std::path::Path;

use nix::errno::Errno;
use nix::mount::{MsFlags, mount};
use nix::sys::statvfs::{FsFlags, statvfs};

use crate::process::message::SetupError;

fn mount_err(src: &str, target: &Path, fstype: &str, errno: Errno) -> SetupError {
    SetupError::Mount {
        source_path: src.to_owned(),
        target: target.display().to_string(),
        fstype: fstype.to_owned(),
        errno: errno.into(),
    }
}

/// Hides `path`: a directory gets an empty read-only tmpfs, anything else `/dev/null`.
/// A path that does not exist is skipped.
pub fn mask(path: &Path) -> Result<(), SetupError> {
    let Ok(meta) = std::fs::metadata(path) else {
        return Ok(());
    };
    if meta.is_dir() {
        mount(
            Some("tmpfs"),
            path,
            Some("tmpfs"),
            MsFlags::MS_RDONLY,
            None::<&str>,
        )
        .map_err(|e| mount_err("tmpfs", path, "tmpfs", e))
    } else {
        mount(
            Some("/dev/null"),
            path,
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .map_err(|e| mount_err("/dev/null", path, "bind", e))
    }
}

/// Makes `path` read-only, keeping its `nosuid`/`nodev`/`noexec` flags. Missing paths are
/// skipped.
pub fn make_readonly(path: &Path) -> Result<(), SetupError> {
    if std::fs::symlink_metadata(path).is_err() {
        return Ok(());
    }
    let src = path.display().to_string();
    mount(
        Some(path),
        path,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .map_err(|e| mount_err(&src, path, "bind", e))?;
    remount_readonly(path, MsFlags::MS_REC)
}

/// Remounts the bind mount at `path` read-only, preserving its locked flags.
pub fn remount_readonly(path: &Path, extra: MsFlags) -> Result<(), SetupError> {
    let mut flags = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | extra;
    if let Ok(st) = statvfs(path) {
        let f = st.flags();
        for (fs, ms) in [
            (FsFlags::ST_NOSUID, MsFlags::MS_NOSUID),
            (FsFlags::ST_NODEV, MsFlags::MS_NODEV),
            (FsFlags::ST_NOEXEC, MsFlags::MS_NOEXEC),
        ] {
            if f.contains(fs) {
                flags |= ms;
            }
        }
    }
    mount(None::<&str>, path, None::<&str>, flags, None::<&str>)
        .map_err(|e| mount_err("remount", path, "ro", e))
}
