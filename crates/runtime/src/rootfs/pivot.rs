//! Switches the process's root to the new root filesystem with `pivot_root(2)` and detaches
//! the old root, so the host's file systems are unreachable from the container.

use std::path::Path;

use nix::mount::{MntFlags, MsFlags, mount, umount2};
use nix::unistd::{chdir, pivot_root};

use crate::process::message::SetupError;

/// Pivots into `new_root` (a mount point) and unmounts the old root.
///
/// Uses the `pivot_root(".", ".")` idiom (as runc does): the old root ends up stacked under
/// the new one at `/`, where it is made a slave and lazily unmounted, which needs no
/// temporary directory in the image.
pub fn pivot(new_root: &Path) -> Result<(), SetupError> {
    let err = |errno: nix::errno::Errno| SetupError::PivotRoot {
        path: new_root.display().to_string(),
        errno: errno.into(),
    };
    chdir(new_root).map_err(err)?;
    pivot_root(".", ".").map_err(err)?;
    mount(
        None::<&str>,
        ".",
        None::<&str>,
        MsFlags::MS_SLAVE | MsFlags::MS_REC,
        None::<&str>,
    )
    .map_err(err)?;
    umount2(".", MntFlags::MNT_DETACH).map_err(err)?;
    chdir("/").map_err(err)
}
