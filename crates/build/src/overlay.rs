//! A read-only view of an image's layers as one directory (for `COPY --from`): the
//! single layer itself, or a lower-only overlay mount removed on drop.

use std::path::{Path, PathBuf};

use nix::mount::{MntFlags, MsFlags, mount, umount2};

use crate::step::StepError;

/// A merged, read-only directory of layers.
pub struct ReadOnlyMount {
    path: PathBuf,
    mounted: bool,
}

impl ReadOnlyMount {
    /// Merges `layers` (top-most first) at `at` (created). One layer is used as it is;
    /// none gives an empty directory.
    pub fn new(layers: &[PathBuf], at: &Path) -> Result<Self, StepError> {
        let scratch = |source| StepError::Scratch {
            path: at.to_path_buf(),
            source,
        };
        match layers {
            [] => {
                std::fs::create_dir_all(at).map_err(scratch)?;
                Ok(Self {
                    path: at.to_path_buf(),
                    mounted: false,
                })
            }
            [one] => Ok(Self {
                path: one.clone(),
                mounted: false,
            }),
            many => {
                std::fs::create_dir_all(at).map_err(scratch)?;
                let lower = many
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(":");
                let data = format!("lowerdir={lower}");
                mount(
                    Some("overlay"),
                    at,
                    Some("overlay"),
                    MsFlags::MS_RDONLY,
                    Some(data.as_str()),
                )
                .map_err(|e| scratch(std::io::Error::from(e)))?;
                Ok(Self {
                    path: at.to_path_buf(),
                    mounted: true,
                })
            }
        }
    }

    /// Merges `layers` (top-most first) under a scratch upper directory next to `at`, so
    /// that writes succeed and are dropped with the mount (`RUN --mount=type=bind,rw`).
    pub fn writable(layers: &[PathBuf], at: &Path) -> Result<Self, StepError> {
        let scratch = |p: &Path| {
            let p = p.to_path_buf();
            move |source| StepError::Scratch { path: p, source }
        };
        let (merged, upper, work) = (at.join("merged"), at.join("upper"), at.join("work"));
        for d in [&merged, &upper, &work] {
            std::fs::create_dir_all(d).map_err(scratch(d))?;
        }
        let mut lower: Vec<String> = layers.iter().map(|p| p.display().to_string()).collect();
        if lower.is_empty() {
            let empty = at.join("empty");
            std::fs::create_dir_all(&empty).map_err(scratch(&empty))?;
            lower.push(empty.display().to_string());
        }
        let data = format!(
            "lowerdir={},upperdir={},workdir={}",
            lower.join(":"),
            upper.display(),
            work.display()
        );
        mount(
            Some("overlay"),
            &merged,
            Some("overlay"),
            MsFlags::empty(),
            Some(data.as_str()),
        )
        .map_err(|e| scratch(&merged)(std::io::Error::from(e)))?;
        Ok(Self {
            path: merged,
            mounted: true,
        })
    }

    /// The merged directory.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for ReadOnlyMount {
    fn drop(&mut self) {
        if self.mounted {
            let _ = umount2(&self.path, MntFlags::MNT_DETACH);
        }
    }
}
