//! Mounts the container's root: an overlay of image layers or a bind of a directory.

use std::path::Path;

use nix::mount::{MsFlags, mount};

use crate::Rootfs;
use crate::process::message::SetupError;

/// Mounts `rootfs` on `target` (a directory in the container's state dir, made by the
/// monitor). In a user namespace overlayfs keeps its metadata in `user.` extended
/// attributes (`userxattr`), as the kernel requires there.
pub fn mount_root(rootfs: &Rootfs, target: &Path, in_userns: bool) -> Result<(), SetupError> {
    match rootfs {
        Rootfs::Overlay {
            lowerdirs,
            upper,
            work,
        } => {
            let mut data = overlay_data(lowerdirs, upper, work);
            if in_userns {
                data.push_str(",userxattr");
            }
            mount(
                Some("overlay"),
                target,
                Some("overlay"),
                MsFlags::empty(),
                Some(data.as_str()),
            )
            .map_err(|errno| SetupError::Mount {
                source_path: "overlay".into(),
                target: target.display().to_string(),
                fstype: "overlay".into(),
                errno: errno.into(),
            })
        }
        Rootfs::Path(dir) => mount(
            Some(dir.as_path()),
            target,
            None::<&str>,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            None::<&str>,
        )
        .map_err(|errno| SetupError::Mount {
            source_path: dir.display().to_string(),
            target: target.display().to_string(),
            fstype: "bind".into(),
            errno: errno.into(),
        }),
    }
}

/// The overlayfs option string. Commas and colons in paths are escaped as overlayfs wants.
pub fn overlay_data(lowerdirs: &[std::path::PathBuf], upper: &Path, work: &Path) -> String {
    let esc = |p: &Path| {
        p.display()
            .to_string()
            .replace('\\', "\\\\")
            .replace(',', "\\,")
            .replace(':', "\\:")
    };
    let lower: Vec<String> = lowerdirs.iter().map(|p| esc(p)).collect();
    format!(
        "lowerdir={},upperdir={},workdir={}",
        lower.join(":"),
        esc(upper),
        esc(work)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlay_data_lists_layers_top_first_and_escapes() {
        let d = overlay_data(
            &["/l/top".into(), "/l/base:1".into()],
            Path::new("/u"),
            Path::new("/w,x"),
        );
        assert_eq!(d, "lowerdir=/l/top:/l/base\\:1,upperdir=/u,workdir=/w\\,x");
    }
}
