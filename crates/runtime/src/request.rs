//! What a caller asks the runtime to create ([`ContainerRequest`]) and its validation, done
//! before any process is spawned so that bad input fails fast and leaves nothing behind.

use std::path::{Path, PathBuf};

use oci_spec::runtime::Spec;
use serde::{Deserialize, Serialize};

use crate::process::message::{Errnum as Errno, SetupError};
use crate::rootfs::options::MountOptions;

/// Everything needed to create one container.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ContainerRequest {
    /// Unique id: 1–64 characters of `[A-Za-z0-9_.-]`, not starting with `.` or `-`.
    pub id: String,
    /// The OCI runtime configuration (process, mounts, namespaces, resources, security).
    /// `root.path` is ignored: the root filesystem comes from [`ContainerRequest::rootfs`].
    pub spec: Spec,
    /// The root filesystem.
    pub rootfs: Rootfs,
    /// Where the container's standard streams go.
    pub stdio: Stdio,
    /// Join this network namespace instead of the spec's (e.g. one made by the net layer).
    pub netns: Option<PathBuf>,
    /// `user[:group]` by name or number, resolved in the container's `/etc/passwd` and
    /// `/etc/group` (Docker's `--user`). Overrides `spec.process.user` when set.
    pub user: Option<String>,
    /// Run a tiny init as PID 1 that reaps zombies and forwards signals (Docker's `--init`).
    pub init: bool,
}

/// The container's root filesystem.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Rootfs {
    /// An overlay of read-only layers (top-most first) under a writable upper directory.
    /// It is mounted inside the container's mount namespace only, so it disappears with the
    /// container; `upper` and `work` belong to the caller.
    Overlay {
        /// Layer directories, top-most first.
        lowerdirs: Vec<PathBuf>,
        /// Writable directory holding the container's changes.
        upper: PathBuf,
        /// Overlayfs work directory on the same file system as `upper`.
        work: PathBuf,
    },
    /// A plain directory used as it is (an OCI bundle's `rootfs`).
    Path(PathBuf),
}

/// Where the container's standard input, output and error go.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Stdio {
    /// `/dev/null` for all three.
    Null,
    /// The standard streams of the process that calls [`crate::Runtime::create`].
    Inherit,
    /// Output into a JSON-lines log file written by the monitor; stdin is `/dev/null`.
    Logs(LogConfig),
    /// As [`Stdio::Logs`], with standard input received as a file descriptor over the Unix
    /// socket at `stdin_socket` (the caller's own stdin, passed with `SCM_RIGHTS`: `run -i`
    /// without a terminal).
    LogsWithInput {
        /// Where the output goes.
        logs: LogConfig,
        /// Path of a listening Unix stream socket that sends one descriptor.
        stdin_socket: PathBuf,
    },
    /// A new pseudo-terminal; its master end is sent over the Unix socket at
    /// `console_socket` (runc's `--console-socket` protocol).
    Tty {
        /// Path of a listening Unix stream socket.
        console_socket: PathBuf,
    },
}

/// Docker `json-file`-style logging.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogConfig {
    /// The current log file; rotated files get `.1`, `.2`… suffixes.
    pub path: PathBuf,
    /// Rotate when the file would grow past this many bytes (`None`: never).
    pub max_size: Option<u64>,
    /// How many files to keep in total, current one included (at least 1).
    pub max_files: u32,
}

impl ContainerRequest {
    /// A request with Docker's defaults ([`crate::spec::default_spec`]) running `args`.
    pub fn new(id: impl Into<String>, args: &[&str], rootfs: Rootfs) -> Self {
        Self {
            id: id.into(),
            spec: crate::spec::default_spec(args),
            rootfs,
            stdio: Stdio::Null,
            netns: None,
            user: None,
            init: false,
        }
    }
}

/// Checks a request without touching the system beyond reading paths: id syntax, the
/// command, bind-mount sources, mount options and the seccomp profile.
pub fn validate(req: &ContainerRequest) -> Result<(), SetupError> {
    validate_id(&req.id)?;
    let process = req.spec.process().as_ref().ok_or(SetupError::NoCommand)?;
    match process.args() {
        Some(args) if !args.is_empty() && !args[0].is_empty() => {}
        _ => return Err(SetupError::NoCommand),
    }
    for m in req.spec.mounts().iter().flatten() {
        let dest = m.destination().display().to_string();
        let opts = MountOptions::parse(m.options().as_deref().unwrap_or_default(), &dest)?;
        if !dest.starts_with('/') || dest.split('/').any(|c| c == "..") {
            return Err(SetupError::InvalidDestination { destination: dest });
        }
        if opts.is_bind {
            let src = m.source().as_deref().unwrap_or(Path::new(""));
            if !src.exists() {
                return Err(SetupError::BindSourceMissing {
                    source_path: src.display().to_string(),
                });
            }
        }
    }
    match &req.rootfs {
        Rootfs::Overlay {
            lowerdirs,
            upper,
            work,
        } => {
            for dir in lowerdirs.iter().chain([upper, work]) {
                if !dir.is_dir() {
                    return Err(SetupError::fs(
                        "open rootfs layer",
                        dir,
                        Errno(libc::ENOENT),
                    ));
                }
            }
        }
        Rootfs::Path(dir) if !dir.is_dir() => {
            return Err(SetupError::fs("open rootfs", dir, Errno(libc::ENOENT)));
        }
        Rootfs::Path(_) => {}
    }
    if let Some(profile) = req.spec.linux().as_ref().and_then(|l| l.seccomp().as_ref()) {
        crate::security::seccomp::compile(profile)?;
    }
    Ok(())
}

/// Container ids become directory and cgroup names: keep them boring.
pub fn validate_id(id: &str) -> Result<(), SetupError> {
    let ok = !id.is_empty()
        && id.len() <= 64
        && !id.starts_with(['.', '-'])
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if ok {
        Ok(())
    } else {
        Err(SetupError::InvalidId { id: id.to_owned() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_checked() {
        assert_eq!(validate_id("web-1.a_b"), Ok(()));
        for bad in ["", "-x", ".x", "a/b", "a b", &"x".repeat(65)] {
            assert!(
                matches!(validate_id(bad), Err(SetupError::InvalidId { .. })),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn missing_bind_source_and_empty_command_are_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let mut req = ContainerRequest::new("t", &["true"], Rootfs::Path(dir.path().into()));
        assert_eq!(validate(&req), Ok(()));
        let mut mounts = req.spec.mounts().clone().unwrap_or_default();
        mounts.push(
            oci_spec::runtime::MountBuilder::default()
                .destination("/data")
                .source("/nonexistent/berth-src")
                .typ("bind")
                .options(vec!["rbind".to_owned(), "ro".to_owned()])
                .build()
                .unwrap(),
        );
        req.spec.set_mounts(Some(mounts));
        assert_eq!(
            validate(&req),
            Err(SetupError::BindSourceMissing {
                source_path: "/nonexistent/berth-src".into()
            })
        );
        let req = ContainerRequest::new("t", &[], Rootfs::Path(dir.path().into()));
        assert_eq!(validate(&req), Err(SetupError::NoCommand));
    }
}
