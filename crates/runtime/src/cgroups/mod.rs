//! Control groups of a container, on cgroup v1 (one directory per hierarchy, including the
//! hybrid layout where a controller-less cgroup2 sits at `/sys/fs/cgroup/unified`) and on
//! the unified v2 hierarchy. [`Cgroup`] creates the directories, applies the OCI
//! `linux.resources`, moves processes in, freezes, reads counters and removes them.

pub mod stats;
pub mod v1;
pub mod v2;

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use oci_spec::runtime::LinuxResources;

pub use stats::Stats;

use crate::process::message::{Errnum, SetupError};

/// Where cgroup file systems are mounted.
pub const MOUNT_ROOT: &str = "/sys/fs/cgroup";

/// Errors of the cgroup module.
#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    /// A cgroup directory could not be created.
    #[error("create cgroup {path}")]
    Create {
        /// The directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// Writing a control file failed.
    #[error("write {value:?} to {path}")]
    Write {
        /// The control file.
        path: PathBuf,
        /// What was written.
        value: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// Reading a control file failed.
    #[error("read {path}")]
    Read {
        /// The control file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A cgroup directory could not be removed (still has processes?).
    #[error("remove cgroup {path}")]
    Remove {
        /// The directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A requested limit has no controller on this host.
    #[error("{what} is not supported by this host's cgroups")]
    Unsupported {
        /// The limit.
        what: String,
    },
    /// The freezer did not reach the wanted state in time.
    #[error("cgroup {path} did not become {wanted}")]
    FreezeTimeout {
        /// The cgroup.
        path: PathBuf,
        /// `FROZEN` or `THAWED`.
        wanted: String,
    },
}

impl From<CgroupError> for SetupError {
    fn from(e: CgroupError) -> Self {
        let io = |path: &Path, reason: String, source: &std::io::Error| SetupError::Cgroup {
            path: path.display().to_string(),
            reason,
            errno: Errnum::from(source),
        };
        match &e {
            CgroupError::Create { path, source } => io(path, "create".into(), source),
            CgroupError::Write {
                path,
                value,
                source,
            } => io(path, format!("write {value:?} to"), source),
            CgroupError::Read { path, source } => io(path, "read".into(), source),
            CgroupError::Remove { path, source } => io(path, "remove".into(), source),
            CgroupError::Unsupported { what } => {
                SetupError::CgroupUnsupported { what: what.clone() }
            }
            CgroupError::FreezeTimeout { path, .. } => SetupError::Cgroup {
                path: path.display().to_string(),
                reason: e.to_string(),
                errno: Errnum(libc::ETIMEDOUT),
            },
        }
    }
}

/// Whether the host uses the unified (v2-only) hierarchy.
pub fn is_unified() -> bool {
    Path::new(MOUNT_ROOT).join("cgroup.controllers").exists()
}

/// A container's cgroup(s).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cgroup {
    /// One directory per v1 hierarchy.
    V1(v1::CgroupV1),
    /// One directory in the unified hierarchy.
    V2(v2::CgroupV2),
}

impl Cgroup {
    /// Creates the container's cgroup at `<parent>/<name>` in every hierarchy.
    pub fn create(parent: &str, name: &str) -> Result<Self, CgroupError> {
        let rel = Path::new(parent.trim_start_matches('/')).join(name);
        if is_unified() {
            v2::CgroupV2::create(&rel).map(Self::V2)
        } else {
            v1::CgroupV1::create(&rel).map(Self::V1)
        }
    }

    /// Re-opens existing cgroup directories recorded in the container's state.
    pub fn open(paths: &[PathBuf]) -> Self {
        if is_unified() {
            Self::V2(v2::CgroupV2 {
                dir: paths.first().cloned().unwrap_or_default(),
            })
        } else {
            Self::V1(v1::CgroupV1::from_paths(paths))
        }
    }

    /// The directories, for the state file.
    pub fn paths(&self) -> Vec<PathBuf> {
        match self {
            Self::V1(c) => c.dirs.iter().map(|(_, d)| d.clone()).collect(),
            Self::V2(c) => vec![c.dir.clone()],
        }
    }

    /// `(hierarchy name, directory)` pairs for the container's `/sys/fs/cgroup` view.
    pub fn mounts(&self) -> Vec<(String, PathBuf)> {
        match self {
            Self::V1(c) => c.dirs.clone(),
            Self::V2(c) => vec![(String::new(), c.dir.clone())],
        }
    }

    /// Applies the OCI resource limits.
    pub fn apply(&self, r: &LinuxResources) -> Result<(), CgroupError> {
        match self {
            Self::V1(c) => c.apply(r),
            Self::V2(c) => c.apply(r),
        }
    }

    /// Moves a process (and its future children) into the cgroup.
    pub fn add_process(&self, pid: i32) -> Result<(), CgroupError> {
        for dir in self.paths() {
            write(&dir.join("cgroup.procs"), &pid.to_string())?;
        }
        Ok(())
    }

    /// Pids of every process in the cgroup.
    pub fn pids(&self) -> Result<Vec<i32>, CgroupError> {
        let dir = match self {
            Self::V1(c) => c.dir_of("pids").or_else(|| c.dir_of("memory")),
            Self::V2(c) => Some(c.dir.clone()),
        };
        let Some(dir) = dir else {
            return Ok(Vec::new());
        };
        let text = read(&dir.join("cgroup.procs"))?;
        Ok(text.lines().filter_map(|l| l.trim().parse().ok()).collect())
    }

    /// Freezes (or thaws) every process, waiting until the kernel reports it done.
    pub fn set_frozen(&self, frozen: bool) -> Result<(), CgroupError> {
        match self {
            Self::V1(c) => c.set_frozen(frozen),
            Self::V2(c) => c.set_frozen(frozen),
        }
    }

    /// Whether the OOM killer killed a process of this cgroup.
    pub fn oom_killed(&self) -> bool {
        match self {
            Self::V1(c) => c.oom_kills() > 0,
            Self::V2(c) => c.oom_kills() > 0,
        }
    }

    /// Resource-usage counters.
    pub fn stats(&self) -> Stats {
        match self {
            Self::V1(c) => c.stats(),
            Self::V2(c) => c.stats(),
        }
    }

    /// Removes the directories, retrying briefly while exiting processes leave.
    pub fn remove(&self) -> Result<(), CgroupError> {
        for dir in self.paths() {
            remove_dir(&dir)?;
        }
        Ok(())
    }
}

/// Writes a control file.
pub(crate) fn write(path: &Path, value: &str) -> Result<(), CgroupError> {
    fs::write(path, value).map_err(|source| CgroupError::Write {
        path: path.to_owned(),
        value: value.to_owned(),
        source,
    })
}

/// Reads a control file.
pub(crate) fn read(path: &Path) -> Result<String, CgroupError> {
    fs::read_to_string(path).map_err(|source| CgroupError::Read {
        path: path.to_owned(),
        source,
    })
}

/// Reads a control file holding one number (`max` reads as `None`).
pub(crate) fn read_u64(path: &Path) -> Option<u64> {
    fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// Creates a directory and its missing parents, calling `init` on each one created.
pub(crate) fn create_dirs(
    path: &Path,
    mut init: impl FnMut(&Path) -> Result<(), CgroupError>,
) -> Result<(), CgroupError> {
    let mut missing = Vec::new();
    let mut p = path;
    while !p.exists() {
        missing.push(p.to_owned());
        match p.parent() {
            Some(parent) => p = parent,
            None => break,
        }
    }
    for dir in missing.iter().rev() {
        match fs::create_dir(dir) {
            Ok(()) => init(dir)?,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(source) => {
                return Err(CgroupError::Create {
                    path: dir.clone(),
                    source,
                });
            }
        }
    }
    Ok(())
}

fn remove_dir(dir: &Path) -> Result<(), CgroupError> {
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        match fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(source) => {
                return Err(CgroupError::Remove {
                    path: dir.to_owned(),
                    source,
                });
            }
        }
    }
}

/// Polls `check` every few milliseconds for up to a second.
pub(crate) fn poll_until(mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(1);
    while Instant::now() < deadline {
        if check() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    check()
}
