//! `berth cp`: a tar archive of a path in a running container, and a tar archive extracted
//! into one. Both go through the container's root (`/proc/<pid>/root`): the starting path
//! is resolved with `openat2(RESOLVE_IN_ROOT)` and everything below it with `O_NOFOLLOW`
//! one component at a time, so a symlink in the container never reaches the host's files.

use std::fs::File;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Component, Path, PathBuf};

use nix::dir::Dir;
use nix::fcntl::{AtFlags, OFlag, OpenHow, ResolveFlag, openat, openat2, readlinkat};
use nix::sys::stat::{Mode, SFlag, fstatat};

use super::{Containers, ContainersError};
use crate::watch::sync::{Root, SyncError};

fn copy_err(path: &str) -> impl FnOnce(SyncError) -> ContainersError + '_ {
    move |e| ContainersError::Io {
        op: "copy",
        path: PathBuf::from(path),
        source: io::Error::other(e),
    }
}

fn errno<'a>(
    op: &'static str,
    path: &'a str,
) -> impl FnOnce(nix::errno::Errno) -> ContainersError + 'a {
    move |e| ContainersError::Io {
        op,
        path: PathBuf::from(path),
        source: e.into(),
    }
}

impl Containers {
    fn root_of(&self, key: &str) -> Result<Root, ContainersError> {
        let info = self.find(key)?;
        let pid = info
            .state
            .as_ref()
            .filter(|_| info.is_running())
            .and_then(|s| s.pid)
            .ok_or_else(|| ContainersError::NotRunning(info.doc.name.clone()))?;
        Root::open(pid).map_err(copy_err("/"))
    }

    /// A tar archive of `path` (a file, symlink or directory tree) in the running
    /// container `key`, its entries named from the path's last component down.
    pub fn archive(&self, key: &str, path: &str) -> Result<Vec<u8>, ContainersError> {
        let root = self.root_of(key)?;
        let trimmed = path.trim_matches('/');
        let (parent, leaf) = match trimmed.rsplit_once('/') {
            Some((p, l)) => (p, l),
            None if trimmed.is_empty() => ("", "."),
            None => ("", trimmed),
        };
        let how = OpenHow::new()
            .flags(OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC)
            .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS);
        let parent = if parent.is_empty() { "." } else { parent };
        let dfd = openat2(root.fd(), parent, how).map_err(errno("open", path))?;
        let mut builder = tar::Builder::new(Vec::new());
        builder.follow_symlinks(false);
        let name = if leaf == "." { "." } else { leaf };
        add(&mut builder, &dfd, leaf, name, path)?;
        builder.into_inner().map_err(|source| ContainersError::Io {
            op: "archive",
            path: PathBuf::from(path),
            source,
        })
    }

    /// Extracts the tar archive `tar` at `dest` in the running container `key`, as
    /// `docker cp` does: into `dest` when it is a directory there, else the archive's top
    /// entry becomes `dest`. Files are owned by the container's user; entries that would
    /// climb out (`..`, absolute names) are refused. Returns the entries written.
    pub fn extract(&self, key: &str, dest: &str, tar: &[u8]) -> Result<usize, ContainersError> {
        let root = self.root_of(key)?;
        let how = OpenHow::new()
            .flags(OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC)
            .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS);
        let probe = match dest.trim_matches('/') {
            "" => ".",
            p => p,
        };
        let into_dir = openat2(root.fd(), probe, how).is_ok();
        let rename = (!into_dir)
            .then(|| dest.trim_end_matches('/').rsplit_once('/'))
            .flatten()
            .map(|(parent, leaf)| (parent.to_owned(), leaf.to_owned()));
        let dir = match &rename {
            Some((parent, _)) if parent.is_empty() => "/",
            Some((parent, _)) => parent.as_str(),
            None => dest,
        };
        let mut archive = tar::Archive::new(tar);
        let bad = |source: io::Error| ContainersError::Io {
            op: "read archive for",
            path: PathBuf::from(dir),
            source,
        };
        let mut count = 0;
        for entry in archive.entries().map_err(bad)? {
            let mut entry = entry.map_err(bad)?;
            let rel = entry.path().map_err(bad)?.into_owned();
            if rel
                .components()
                .any(|c| !matches!(c, Component::Normal(_) | Component::CurDir))
            {
                return Err(bad(io::Error::other(format!(
                    "entry {} climbs out of the destination",
                    rel.display()
                ))));
            }
            let rel = match &rename {
                Some((_, leaf)) => {
                    let rest: PathBuf = rel
                        .components()
                        .filter(|c| *c != Component::CurDir)
                        .skip(1)
                        .collect();
                    Path::new(leaf).join(rest)
                }
                None => rel,
            };
            let target = join(dir, &rel);
            let mode = entry.header().mode().unwrap_or(0o644) & 0o7777;
            match entry.header().entry_type() {
                tar::EntryType::Directory => root.mkdir(&target).map_err(copy_err(dir))?,
                tar::EntryType::Regular | tar::EntryType::Continuous => {
                    root.write_from(&mut entry, mode, &target)
                        .map_err(copy_err(dir))?;
                }
                // Links and devices are not copied in (no `-a` semantics).
                _ => continue,
            }
            count += 1;
        }
        Ok(count)
    }
}

fn join(dir: &str, rel: &Path) -> String {
    let rel = rel.to_string_lossy();
    let rel = rel.trim_start_matches("./").trim_end_matches('/');
    if rel.is_empty() || rel == "." {
        dir.to_owned()
    } else {
        format!("{}/{rel}", dir.trim_end_matches('/'))
    }
}

/// Adds `name` (below the directory `dfd`) as `tar_name`, recursing into directories.
fn add(
    b: &mut tar::Builder<Vec<u8>>,
    dfd: &OwnedFd,
    name: &str,
    tar_name: &str,
    shown: &str,
) -> Result<(), ContainersError> {
    let st =
        fstatat(dfd.as_fd(), name, AtFlags::AT_SYMLINK_NOFOLLOW).map_err(errno("stat", shown))?;
    let kind = SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT;
    let mut h = tar::Header::new_gnu();
    h.set_mode(st.st_mode & 0o7777);
    h.set_uid(u64::from(st.st_uid));
    h.set_gid(u64::from(st.st_gid));
    h.set_mtime(u64::try_from(st.st_mtime).unwrap_or(0));
    let io_err = |source| ContainersError::Io {
        op: "archive",
        path: PathBuf::from(shown),
        source,
    };
    if kind == SFlag::S_IFDIR {
        let fd = openat(
            dfd.as_fd(),
            name,
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(errno("open", shown))?;
        h.set_entry_type(tar::EntryType::Directory);
        h.set_size(0);
        b.append_data(&mut h, tar_name, io::empty())
            .map_err(io_err)?;
        let dup = nix::unistd::dup(&fd).map_err(errno("dup", shown))?;
        let mut names: Vec<String> = Dir::from_fd(dup)
            .map_err(errno("read directory", shown))?
            .iter()
            .filter_map(|e| e.ok())
            .filter_map(|e| e.file_name().to_str().ok().map(str::to_owned))
            .filter(|n| n != "." && n != "..")
            .collect();
        names.sort();
        for n in names {
            let child = format!("{}/{n}", tar_name.trim_end_matches('/'));
            add(b, &fd, &n, &child, shown)?;
        }
    } else if kind == SFlag::S_IFREG {
        let fd = openat(
            dfd.as_fd(),
            name,
            OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(errno("open", shown))?;
        h.set_entry_type(tar::EntryType::Regular);
        h.set_size(u64::try_from(st.st_size).unwrap_or(0));
        b.append_data(&mut h, tar_name, File::from(fd))
            .map_err(io_err)?;
    } else if kind == SFlag::S_IFLNK {
        let target = readlinkat(dfd.as_fd(), name).map_err(errno("readlink", shown))?;
        h.set_entry_type(tar::EntryType::Symlink);
        h.set_size(0);
        b.append_link(&mut h, tar_name, Path::new(&target))
            .map_err(io_err)?;
    }
    Ok(())
}
