//! The container's init: the process the monitor clones into the new namespaces. It builds
//! the container around itself, reports to the monitor, waits for `start` and execs the
//! user's process (or, with `init: true`, forks it and stays as a reaper; see [`reaper`]).
//!
//! ```text
//!  monitor                                         init (pid 1 in the new pid namespace)
//!     │ clone(NEWNS|NEWPID|NEWUTS|NEWIPC|NEWNET[|NEWUSER])──▶│
//!     │ write uid_map/gid_map (new user namespace only)      │ blocks on the channel
//!     │ ─────────────── ToInit::Proceed ───────────────────▶ │
//!     │ put pid into the container's cgroups                 │ setns(joined namespaces)
//!     │ ─────────────── ToInit::Joined ────────────────────▶ │ (v2: waits for Joined here)
//!     │                                                      │ setsid, stdio (ctty)
//!     │                                                      │ rootfs: mounts, devices,
//!     │                                                      │ pivot_root, masked/ro paths
//!     │                                                      │ hostname, sysctl
//!     │                                                      │ (v1: waits for Joined here)
//!     │                                                      │ unshare(NEWCGROUP), rlimits
//!     │                                                      │ user lookup, seccomp, caps,
//!     │                                                      │ setuid, cwd, command lookup
//!     │ ◀──── FromInit::Ready{warnings} | Failed(error) ──── │
//!     │ report Created to the caller; state = created        │ blocks on the channel
//!  (`start` on the control socket)                           │
//!     │ ─────────────── ToInit::Start ─────────────────────▶ │
//!     │                                                      │ execve (channel is CLOEXEC)
//!     │ ◀──── EOF (exec succeeded) | Failed(Exec…) ───────── │
//! ```
//!
//! The init never returns: it execs or exits.

pub mod reaper;

use std::ffi::CString;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::sched::{CloneFlags, setns, unshare};
use nix::sys::signal::{SigSet, SigmaskHow, Signal, sigprocmask};
use nix::unistd::{
    AccessFlags, Gid, Uid, access, chdir, dup2_stderr, dup2_stdin, dup2_stdout, sethostname, setsid,
};
use oci_spec::runtime::{Process, Spec};

use super::channel::Channel;
use super::message::{FromInit, SetupError, ToInit};
use crate::rootfs;
use crate::security;
use crate::user::Identity;

/// What the monitor hands to the init it cloned.
pub struct InitArgs<'a> {
    /// The container's spec.
    pub spec: &'a Spec,
    /// Its root filesystem.
    pub rootfs: &'a crate::Rootfs,
    /// `user[:group]` to resolve in the container, overriding the spec's numeric user.
    pub user: Option<&'a str>,
    /// Stay as a reaping init instead of exec'ing the process as PID 1.
    pub init: bool,
    /// Mount point for the root filesystem (host path, inside the new mount namespace).
    pub rootfs_dir: PathBuf,
    /// The channel to the monitor.
    pub channel: Channel<FromInit, ToInit>,
    /// stdin, stdout, stderr.
    pub stdio: [OwnedFd; 3],
    /// Whether stdio is a terminal (make it the controlling one).
    pub tty: bool,
    /// Host path of that terminal, for the container's `/dev/console`.
    pub console: Option<PathBuf>,
    /// The container's cgroup directories for its `/sys/fs/cgroup` view.
    pub cgroup_mounts: Vec<(String, PathBuf)>,
    /// Namespaces to join by path, in order.
    pub join: Vec<(CloneFlags, PathBuf)>,
    /// Unshare a cgroup namespace once in the cgroup.
    pub new_cgroupns: bool,
    /// The init was cloned into a new user namespace.
    pub new_userns: bool,
}

/// A process ready to be exec'd.
pub struct Prepared {
    /// Resolved executable path inside the container.
    pub path: CString,
    /// `argv`.
    pub args: Vec<CString>,
    /// `envp`.
    pub env: Vec<CString>,
}

/// Runs the init; never returns.
pub fn run(mut a: InitArgs<'_>) -> ! {
    let code = match setup(&mut a) {
        Ok((prepared, warnings)) => {
            if a.channel.send(&FromInit::Ready { warnings }).is_err() {
                crate::sys::exit_immediately(1);
            }
            match a.channel.recv() {
                Ok(Some(ToInit::Start)) => {}
                _ => crate::sys::exit_immediately(1),
            }
            let InitArgs {
                mut channel, init, ..
            } = a;
            let err = if init {
                reaper::fork_exec_and_reap(&prepared, move |e| {
                    let _ = channel.send(&FromInit::Failed(e));
                })
            } else {
                let err = exec(&prepared);
                let _ = channel.send(&FromInit::Failed(err.clone()));
                err
            };
            err.exit_code()
        }
        Err(e) => {
            let _ = a.channel.send(&FromInit::Failed(e));
            1
        }
    };
    crate::sys::exit_immediately(i32::from(code))
}

fn setup(a: &mut InitArgs<'_>) -> Result<(Prepared, Vec<String>), SetupError> {
    match a.channel.recv() {
        Ok(Some(ToInit::Proceed)) => {}
        _ => crate::sys::exit_immediately(1),
    }
    reset_signals()?;
    if a.new_userns {
        // Cloning into a user namespace keeps the host's ids, which the namespace does not
        // map: become its root so files we create get mapped owners.
        let root = (Uid::from_raw(0), Gid::from_raw(0));
        let err = |errno: nix::errno::Errno| SetupError::SetUser {
            uid: 0,
            gid: 0,
            errno: errno.into(),
        };
        nix::unistd::setresgid(root.1, root.1, root.1).map_err(err)?;
        nix::unistd::setresuid(root.0, root.0, root.0).map_err(err)?;
    }
    for (flag, path) in &a.join {
        join_namespace(*flag, path)?;
    }
    // cgroup v2 mounts `cgroup2` inside, which shows the cgroup namespace: it must exist
    // first. On v1 the cgroups are bind-mounted by host path, so the root file system is
    // built while the monitor moves this process into them.
    let early_join = crate::cgroups::is_unified();
    if early_join {
        joined(a)?;
    }
    setsid().map_err(|e| SetupError::syscall("setsid", e))?;
    let [i, o, e] = &a.stdio;
    dup2_stdin(i).map_err(|e| SetupError::syscall("dup2 stdin", e))?;
    dup2_stdout(o).map_err(|e| SetupError::syscall("dup2 stdout", e))?;
    dup2_stderr(e).map_err(|e| SetupError::syscall("dup2 stderr", e))?;
    if a.tty {
        crate::sys::set_controlling_tty(std::io::stdin().as_fd())
            .map_err(|e| SetupError::syscall("ioctl TIOCSCTTY", e))?;
    }
    let spec = a.spec;
    rootfs::prepare(
        spec,
        a.rootfs,
        &a.rootfs_dir,
        &a.cgroup_mounts,
        a.console.as_deref(),
    )?;
    rootfs::pivot::pivot(&a.rootfs_dir)?;
    if let Some(h) = spec.hostname() {
        sethostname(h).map_err(|errno| SetupError::Hostname {
            hostname: h.clone(),
            errno: errno.into(),
        })?;
    }
    if let Some(d) = spec.domainname() {
        std::fs::write("/proc/sys/kernel/domainname", d)
            .map_err(|e| SetupError::fs("write", "/proc/sys/kernel/domainname", &e))?;
    }
    if let Some(sysctl) = spec.linux().as_ref().and_then(|l| l.sysctl().as_ref()) {
        for (k, v) in sysctl {
            let path = Path::new("/proc/sys").join(k.replace('.', "/"));
            std::fs::write(&path, v).map_err(|e| SetupError::fs("write", &path, &e))?;
        }
    }
    rootfs::finish(spec)?;
    if !early_join {
        joined(a)?;
    }
    let process = spec.process().as_ref().ok_or(SetupError::NoCommand)?;
    let prepared = prepare_process(process, a.user, seccomp_of(spec))?;
    Ok(prepared)
}

/// Waits until the monitor has put this process into the container's cgroups, then
/// creates the cgroup namespace (rooted there) when asked to.
fn joined(a: &mut InitArgs<'_>) -> Result<(), SetupError> {
    match a.channel.recv() {
        Ok(Some(ToInit::Joined)) => {}
        _ => crate::sys::exit_immediately(1),
    }
    if a.new_cgroupns {
        unshare(CloneFlags::CLONE_NEWCGROUP).map_err(|errno| SetupError::Namespace {
            op: "create".into(),
            kind: "cgroup".into(),
            path: String::new(),
            errno: errno.into(),
        })?;
    }
    Ok(())
}

fn seccomp_of(spec: &Spec) -> Option<&oci_spec::runtime::LinuxSeccomp> {
    spec.linux().as_ref().and_then(|l| l.seccomp().as_ref())
}

/// Unblocks every signal and restores default dispositions: both survive `execve`, and
/// the monitor blocks `SIGCHLD` and ignores `SIGPIPE`.
pub fn reset_signals() -> Result<(), SetupError> {
    sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None)
        .map_err(|e| SetupError::syscall("sigprocmask", e))?;
    for sig in [
        Signal::SIGPIPE,
        Signal::SIGHUP,
        Signal::SIGINT,
        Signal::SIGTERM,
    ] {
        crate::sys::set_signal_disposition(sig, false)
            .map_err(|e| SetupError::syscall("sigaction", e))?;
    }
    Ok(())
}

/// Joins the namespace at `path`.
pub fn join_namespace(flag: CloneFlags, path: &Path) -> Result<(), SetupError> {
    let err = |errno: nix::errno::Errno| SetupError::Namespace {
        op: "join".into(),
        kind: format!("{flag:?}"),
        path: path.display().to_string(),
        errno: errno.into(),
    };
    let f = std::fs::File::open(path).map_err(|e| {
        err(nix::errno::Errno::from_raw(
            e.raw_os_error().unwrap_or(libc::EIO),
        ))
    })?;
    setns(f.as_fd(), flag).map_err(err)
}

/// Everything between a finished root filesystem and `execve`, shared with `exec`: rlimits,
/// user lookup, `oom_score_adj`, `no_new_privs`, seccomp, capabilities and the switch of
/// user, working directory and command lookup. Returns the exec'able process and warnings.
pub fn prepare_process(
    process: &Process,
    user: Option<&str>,
    seccomp: Option<&oci_spec::runtime::LinuxSeccomp>,
) -> Result<(Prepared, Vec<String>), SetupError> {
    let warnings = security::rlimits::apply(process.rlimits().as_deref().unwrap_or_default())?;
    let id = match user {
        Some(u) => crate::user::resolve_in_root(u)?,
        None => {
            let u = process.user();
            let home = crate::user::resolve_in_root(&u.uid().to_string())
                .map(|i| i.home)
                .unwrap_or_else(|_| "/".into());
            Identity {
                uid: u.uid(),
                gid: u.gid(),
                additional_gids: u.additional_gids().clone().unwrap_or_default(),
                home,
            }
        }
    };
    let mut env: Vec<String> = process.env().clone().unwrap_or_default();
    if !env.iter().any(|e| e.starts_with("HOME=")) {
        env.push(format!("HOME={}", id.home));
    }
    if let Some(adj) = process.oom_score_adj() {
        std::fs::write("/proc/self/oom_score_adj", adj.to_string())
            .map_err(|e| SetupError::fs("write", "/proc/self/oom_score_adj", &e))?;
    }
    let cwd = process.cwd().clone();
    if !cwd.as_os_str().is_empty() {
        std::fs::create_dir_all(&cwd).map_err(|e| SetupError::fs("mkdir", &cwd, &e))?;
    }
    if process.no_new_privileges() == Some(true) {
        nix::sys::prctl::set_no_new_privs().map_err(|errno| SetupError::NoNewPrivileges {
            errno: errno.into(),
        })?;
    }
    // Loaded while still privileged (no need for no_new_privs): every call that follows is
    // one the default profile allows.
    if let Some(profile) = seccomp {
        let program = security::seccomp::compile(profile)?;
        security::seccomp::load(&program)?;
    }
    let caps = process
        .capabilities()
        .clone()
        .unwrap_or_else(|| security::caps::to_linux_capabilities(&Default::default()));
    security::caps::drop_bounding(&caps)?;
    switch_user(&id, process.user().umask())?;
    security::caps::apply_sets(&caps)?;
    if !cwd.as_os_str().is_empty() {
        chdir(&cwd).map_err(|e| SetupError::fs("chdir", &cwd, e))?;
    }
    let args = process.args().clone().unwrap_or_default();
    let first = args.first().ok_or(SetupError::NoCommand)?;
    let path = find_executable(first, &env)?;
    let cstr = |s: &str| CString::new(s).map_err(|_| SetupError::InvalidUser { user: s.into() });
    crate::sys::cloexec_from(3).map_err(|e| SetupError::syscall("close_range", e))?;
    let prepared = Prepared {
        path: cstr(&path)?,
        args: args.iter().map(|s| cstr(s)).collect::<Result<_, _>>()?,
        env: env.iter().map(|s| cstr(s)).collect::<Result<_, _>>()?,
    };
    Ok((prepared, warnings))
}

fn switch_user(id: &Identity, umask: Option<u32>) -> Result<(), SetupError> {
    let err = |errno: nix::errno::Errno| SetupError::SetUser {
        uid: id.uid,
        gid: id.gid,
        errno: errno.into(),
    };
    nix::sys::prctl::set_keepcaps(true).map_err(err)?;
    let groups: Vec<Gid> = id
        .additional_gids
        .iter()
        .map(|&g| Gid::from_raw(g))
        .collect();
    nix::unistd::setgroups(&groups).map_err(err)?;
    let g = Gid::from_raw(id.gid);
    nix::unistd::setresgid(g, g, g).map_err(err)?;
    let u = Uid::from_raw(id.uid);
    nix::unistd::setresuid(u, u, u).map_err(err)?;
    nix::sys::prctl::set_keepcaps(false).map_err(err)?;
    if let Some(mask) = umask {
        nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(mask));
    }
    Ok(())
}

/// Finds `cmd` as `execvp` would, in the `PATH` of the container's environment.
pub fn find_executable(cmd: &str, env: &[String]) -> Result<String, SetupError> {
    let check = |p: &Path| -> Result<bool, SetupError> {
        match std::fs::metadata(p) {
            Ok(m) if m.is_file() => {
                if access(p, AccessFlags::X_OK).is_ok() {
                    Ok(true)
                } else {
                    Err(SetupError::NotExecutable {
                        path: p.display().to_string(),
                    })
                }
            }
            Ok(_) => Err(SetupError::NotExecutable {
                path: p.display().to_string(),
            }),
            Err(_) => Ok(false),
        }
    };
    if cmd.contains('/') {
        return match check(Path::new(cmd))? {
            true => Ok(cmd.to_owned()),
            false => Err(SetupError::CommandNotFound {
                command: cmd.to_owned(),
            }),
        };
    }
    let path_var = env
        .iter()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or(crate::spec::DEFAULT_PATH);
    let mut denied = None;
    for dir in path_var.split(':').filter(|d| !d.is_empty()) {
        let candidate = Path::new(dir).join(cmd);
        match check(&candidate) {
            Ok(true) => return Ok(candidate.display().to_string()),
            Ok(false) => {}
            Err(e) => denied = denied.or(Some(e)),
        }
    }
    Err(denied.unwrap_or(SetupError::CommandNotFound {
        command: cmd.to_owned(),
    }))
}

/// `execve`; returns only on failure.
pub fn exec(p: &Prepared) -> SetupError {
    let errno = match nix::unistd::execve(&p.path, &p.args, &p.env) {
        Err(e) => e,
        Ok(never) => match never {},
    };
    let path = p.path.to_string_lossy().into_owned();
    match errno {
        nix::errno::Errno::ENOENT => SetupError::CommandNotFound { command: path },
        nix::errno::Errno::EACCES => SetupError::NotExecutable { path },
        e => SetupError::Exec {
            path,
            errno: e.into(),
        },
    }
}
