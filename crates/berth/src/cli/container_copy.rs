//! `berth cp SRC DEST`: copies between the host and a running container (`CONTAINER:PATH`
//! on one side), as tar archives over the daemon's archive route like Docker's.
//!
//! Like `docker cp`: when the destination is an existing directory the source goes into
//! it under its own name; otherwise the source is copied to the destination's name.

use std::path::{Component, Path, PathBuf};

use super::GlobalArgs;
use super::container::{CliError, block_on, client};
use crate::api::containers::ArchiveResult;
use crate::api::paths;

/// `berth cp`.
#[derive(Debug, clap::Args)]
pub struct CpArgs {
    /// `CONTAINER:PATH` or a host path.
    pub src: String,
    /// `CONTAINER:PATH` or a host path.
    pub dest: String,
}

/// `CONTAINER:PATH` split, or `None` for a host path (one with a `/` before any `:`).
fn container_path(arg: &str) -> Option<(&str, &str)> {
    let (c, p) = arg.split_once(':')?;
    (!c.is_empty() && !c.contains('/')).then_some((c, p))
}

fn io<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> CliError + 'a {
    move |source| CliError::Io {
        op,
        path: path.display().to_string(),
        source,
    }
}

fn route(container: &str, path: &str) -> String {
    format!(
        "{}?path={}",
        paths::fill(paths::CONTAINER_ARCHIVE, container),
        paths::encode(path)
    )
}

/// Runs `berth cp`.
pub fn cp(global: &GlobalArgs, args: &CpArgs) -> Result<(), CliError> {
    match (container_path(&args.src), container_path(&args.dest)) {
        (Some((c, p)), None) => copy_out(global, c, p, Path::new(&args.dest)),
        (None, Some((c, p))) => copy_in(global, Path::new(&args.src), c, p),
        _ => Err(CliError::Usage(
            "berth cp: exactly one of SRC and DEST must be CONTAINER:PATH".into(),
        )),
    }
}

fn copy_out(global: &GlobalArgs, container: &str, path: &str, dest: &Path) -> Result<(), CliError> {
    let tar = block_on(async {
        let c = client(global).await?;
        Ok(c.get_bytes(&route(container, path)).await?)
    })?;
    let into_dir = dest.is_dir();
    let mut archive = tar::Archive::new(tar.as_slice());
    let bad = |source| CliError::Io {
        op: "read the archive of",
        path: format!("{container}:{path}"),
        source,
    };
    for entry in archive.entries().map_err(bad)? {
        let mut entry = entry.map_err(bad)?;
        let rel = entry.path().map_err(bad)?.into_owned();
        if rel
            .components()
            .any(|c| !matches!(c, Component::Normal(_) | Component::CurDir))
        {
            return Err(CliError::Usage(format!(
                "the archive's entry {} climbs out of the destination",
                rel.display()
            )));
        }
        let target: PathBuf = if into_dir {
            dest.join(&rel)
        } else {
            let mut parts = rel.components();
            let _top = parts.next();
            match parts.as_path() {
                // The source itself (a file): to the destination's name, not `dest/`.
                p if p.as_os_str().is_empty() => dest.to_path_buf(),
                p => dest.join(p),
            }
        };
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent).map_err(io("create directory", parent))?;
        }
        entry.unpack(&target).map_err(io("write", &target))?;
    }
    Ok(())
}

fn copy_in(global: &GlobalArgs, src: &Path, container: &str, dest: &str) -> Result<(), CliError> {
    let name = src
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| ".".into());
    let mut b = tar::Builder::new(Vec::new());
    b.follow_symlinks(false);
    let meta = std::fs::symlink_metadata(src).map_err(io("stat", src))?;
    if meta.is_dir() {
        b.append_dir_all(&name, src).map_err(io("archive", src))?;
    } else {
        b.append_path_with_name(src, &name)
            .map_err(io("archive", src))?;
    }
    let tar = b.into_inner().map_err(io("archive", src))?;
    let _: ArchiveResult = block_on(async {
        let c = client(global).await?;
        Ok(c.put_bytes(&route(container, dest), tar).await?)
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn container_paths_are_told_from_host_paths() {
        assert_eq!(container_path("web:/app/a"), Some(("web", "/app/a")));
        assert_eq!(container_path("./a:b"), None);
        assert_eq!(container_path("/tmp/x"), None);
        assert_eq!(container_path(":x"), None);
    }
}
