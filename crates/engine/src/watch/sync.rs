//! Writing into a running container's file system from the host, through
//! `/proc/<pid>/root`. Every path is resolved with `openat2(RESOLVE_IN_ROOT)`, so a
//! symlink inside the container (`/app -> /etc`, `x -> ../../..`) stays inside it and can
//! never make a write land on the host. Files are replaced atomically (temp file +
//! `renameat`) and owned by the uid/gid of the container's main process.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag, OpenHow, ResolveFlag, openat, openat2, renameat};
use nix::sys::stat::{Mode, fchmod, mkdirat};
use nix::unistd::{Gid, Uid, UnlinkatFlags, fchown, fchownat, unlinkat};

/// Errors writing into a container.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// A host file could not be read.
    #[error("{op} {path}: {source}")]
    Host {
        /// What was being done.
        op: &'static str,
        /// The host path.
        path: PathBuf,
        /// The error.
        #[source]
        source: io::Error,
    },
    /// A path in the container could not be written.
    #[error("{op} {path} in the container (pid {pid}): {source}")]
    Container {
        /// What was being done.
        op: &'static str,
        /// The path inside the container.
        path: String,
        /// The container's main process.
        pid: i32,
        /// The error.
        #[source]
        source: io::Error,
    },
}

/// The root of a running container, opened from the host.
#[derive(Debug)]
pub struct Root {
    fd: OwnedFd,
    pid: i32,
    uid: u32,
    gid: u32,
}

fn in_root() -> ResolveFlag {
    ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS
}

/// Splits `/a/b/c` into (`a/b`, `c`); the root itself has no name.
fn split(path: &str) -> Option<(&str, &str)> {
    let p = path.trim_matches('/');
    if p.is_empty() {
        return None;
    }
    Some(match p.rsplit_once('/') {
        Some((dir, name)) => (dir, name),
        None => (".", p),
    })
}

impl Root {
    /// Opens the root of the process `pid` and reads the ids it runs as.
    pub fn open(pid: i32) -> Result<Root, SyncError> {
        let root = PathBuf::from(format!("/proc/{pid}/root"));
        let err = |op, source| SyncError::Host {
            op,
            path: root.clone(),
            source,
        };
        let fd = nix::fcntl::open(
            &root,
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| err("open", e.into()))?;
        let status_path = format!("/proc/{pid}/status");
        let status = std::fs::read_to_string(&status_path).map_err(|e| SyncError::Host {
            op: "read",
            path: status_path.into(),
            source: e,
        })?;
        let id = |field: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(field))
                .and_then(|rest| rest.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
                .unwrap_or(0)
        };
        Ok(Root {
            fd,
            pid,
            uid: id("Uid:"),
            gid: id("Gid:"),
        })
    }

    fn err<'a>(&self, op: &'static str, path: &'a str) -> impl FnOnce(Errno) -> SyncError + 'a {
        let pid = self.pid;
        move |e| SyncError::Container {
            op,
            path: path.to_owned(),
            pid,
            source: e.into(),
        }
    }

    /// The directory `dir` (relative to the root), created with its parents when missing.
    fn dir(&self, dir: &str) -> Result<OwnedFd, SyncError> {
        let how = || {
            OpenHow::new()
                .flags(OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC)
                .resolve(in_root())
        };
        match openat2(self.fd.as_fd(), dir, how()) {
            Ok(fd) => return Ok(fd),
            Err(Errno::ENOENT) => {}
            Err(e) => return Err(self.err("open directory", dir)(e)),
        }
        let (parent, name) = match dir.rsplit_once('/') {
            Some((p, n)) => (p, n),
            None => (".", dir),
        };
        let pfd = self.dir(parent)?;
        match mkdirat(pfd.as_fd(), name, Mode::from_bits_truncate(0o755)) {
            Ok(()) => fchownat(
                pfd.as_fd(),
                name,
                Some(Uid::from_raw(self.uid)),
                Some(Gid::from_raw(self.gid)),
                AtFlags::AT_SYMLINK_NOFOLLOW,
            )
            .map_err(self.err("chown", dir))?,
            Err(Errno::EEXIST) => {}
            Err(e) => return Err(self.err("create directory", dir)(e)),
        }
        let fd = openat2(self.fd.as_fd(), dir, how()).map_err(self.err("open directory", dir))?;
        Ok(fd)
    }

    /// Creates the directory `target` (and its parents).
    pub fn mkdir(&self, target: &str) -> Result<(), SyncError> {
        let t = target.trim_matches('/');
        if !t.is_empty() {
            self.dir(t)?;
        }
        Ok(())
    }

    /// The root directory (an `O_PATH` descriptor) for callers walking it themselves.
    pub fn fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// Replaces `target` with the content and permission bits of the host file `src`.
    pub fn write_file(&self, src: &Path, target: &str) -> Result<(), SyncError> {
        let host = |op| {
            move |source| SyncError::Host {
                op,
                path: src.to_path_buf(),
                source,
            }
        };
        let mut input = File::open(src).map_err(host("open"))?;
        let mode = input.metadata().map_err(host("stat"))?.permissions().mode() & 0o7777;
        self.write_from(&mut input, mode, target)
    }

    /// Replaces `target` with what `input` yields, with permission bits `mode`.
    pub fn write_from(
        &self,
        input: &mut dyn Read,
        mode: u32,
        target: &str,
    ) -> Result<(), SyncError> {
        let (dir, name) = split(target).ok_or_else(|| SyncError::Container {
            op: "write",
            path: target.to_owned(),
            pid: self.pid,
            source: io::Error::from(io::ErrorKind::IsADirectory),
        })?;
        let dfd = self.dir(dir)?;
        let tmp = format!(".berth-sync-{name}");
        let out = openat(
            dfd.as_fd(),
            tmp.as_str(),
            OFlag::O_WRONLY
                | OFlag::O_CREAT
                | OFlag::O_TRUNC
                | OFlag::O_NOFOLLOW
                | OFlag::O_CLOEXEC,
            Mode::from_bits_truncate(0o600),
        )
        .map_err(self.err("create", target))?;
        let mut out = File::from(out);
        let io_err = |op| {
            let pid = self.pid;
            move |source| SyncError::Container {
                op,
                path: target.to_owned(),
                pid,
                source,
            }
        };
        io::copy(input, &mut out).map_err(io_err("write"))?;
        fchown(
            out.as_fd(),
            Some(Uid::from_raw(self.uid)),
            Some(Gid::from_raw(self.gid)),
        )
        .map_err(self.err("chown", target))?;
        fchmod(out.as_fd(), Mode::from_bits_truncate(mode)).map_err(self.err("chmod", target))?;
        out.flush().map_err(io_err("write"))?;
        drop(out);
        renameat(dfd.as_fd(), tmp.as_str(), dfd.as_fd(), name).map_err(self.err("rename", target))
    }

    /// Removes `target` (a directory with everything below it); a missing one is fine.
    pub fn remove(&self, target: &str) -> Result<(), SyncError> {
        let Some((dir, name)) = split(target) else {
            return Ok(());
        };
        let how = OpenHow::new()
            .flags(OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC)
            .resolve(in_root());
        let dfd = match openat2(self.fd.as_fd(), dir, how) {
            Ok(fd) => fd,
            Err(Errno::ENOENT | Errno::ENOTDIR) => return Ok(()),
            Err(e) => return Err(self.err("open directory", dir)(e)),
        };
        match unlinkat(dfd.as_fd(), name, UnlinkatFlags::NoRemoveDir) {
            Ok(()) | Err(Errno::ENOENT) => return Ok(()),
            Err(Errno::EISDIR | Errno::EPERM) => {}
            Err(e) => return Err(self.err("remove", target)(e)),
        }
        // A directory: `remove_dir_all` below an already-resolved directory fd never
        // follows symlinks (it unlinks them), so it stays inside the container too.
        let below = PathBuf::from(format!("/proc/self/fd/{}/{name}", dfd.as_raw_fd()));
        match std::fs::remove_dir_all(&below) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(source) => Err(SyncError::Container {
                op: "remove",
                path: target.to_owned(),
                pid: self.pid,
                source,
            }),
        }
    }

    /// Whether `target` holds exactly the bytes of the host file `src`.
    pub fn same_content(&self, src: &Path, target: &str) -> bool {
        let how = OpenHow::new()
            .flags(OFlag::O_RDONLY | OFlag::O_CLOEXEC)
            .resolve(in_root());
        let Ok(fd) = openat2(self.fd.as_fd(), target.trim_start_matches('/'), how) else {
            return false;
        };
        let mut theirs = Vec::new();
        if File::from(fd).read_to_end(&mut theirs).is_err() {
            return false;
        }
        std::fs::read(src).is_ok_and(|ours| ours == theirs)
    }

    /// Reads `target` (tests and `cp` use it).
    pub fn read(&self, target: &str) -> Result<Vec<u8>, SyncError> {
        let how = OpenHow::new()
            .flags(OFlag::O_RDONLY | OFlag::O_CLOEXEC)
            .resolve(in_root());
        let t = target.trim_start_matches('/');
        let fd = openat2(self.fd.as_fd(), t, how).map_err(self.err("open", target))?;
        let mut out = Vec::new();
        File::from(fd)
            .read_to_end(&mut out)
            .map_err(|source| SyncError::Container {
                op: "read",
                path: target.to_owned(),
                pid: self.pid,
                source,
            })?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_names_parent_and_leaf() {
        assert_eq!(split("/app/a/b.txt"), Some(("app/a", "b.txt")));
        assert_eq!(split("/x"), Some((".", "x")));
        assert_eq!(split("/"), None);
    }

    /// Our own process's root is `/`: a symlink pointing at `/` inside a temp dir used as
    /// the root must resolve inside that dir. Exercised through a chroot-less check:
    /// `RESOLVE_IN_ROOT` on a temp directory fd.
    #[test]
    fn symlinks_cannot_escape_the_root() {
        let dir = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(outside.path(), dir.path().join("app")).unwrap();
        let fd = nix::fcntl::open(
            dir.path(),
            OFlag::O_PATH | OFlag::O_DIRECTORY,
            Mode::empty(),
        )
        .unwrap();
        let root = Root {
            fd,
            pid: std::process::id() as i32,
            uid: nix::unistd::getuid().as_raw(),
            gid: nix::unistd::getgid().as_raw(),
        };
        let src = dir.path().join("src.txt");
        std::fs::write(&src, "hello").unwrap();
        // `/app` -> an absolute host path: inside the root it names `<root>/<that path>`,
        // which does not exist yet: an error, and nothing lands on the host.
        assert!(root.write_file(&src, "/app/x.txt").is_err());
        assert!(!outside.path().join("x.txt").exists());
        let inside_dir = dir.path().join(outside.path().strip_prefix("/").unwrap());
        std::fs::create_dir_all(&inside_dir).unwrap();
        root.write_file(&src, "/app/x.txt").unwrap();
        let inside = inside_dir.join("x.txt");
        assert_eq!(std::fs::read_to_string(&inside).unwrap(), "hello");
        assert!(!outside.path().join("x.txt").exists());
        assert_eq!(root.read("/app/x.txt").unwrap(), b"hello");
        root.remove("/app").unwrap();
        assert!(!dir.path().join("app").exists());
        assert!(outside.path().exists());
    }
}
