//! `--memory`, `--cpus`, `--pids-limit`, `--read-only`, `--cap-add`/`--cap-drop`,
//! `--security-opt`, `--ulimit` and `--tmpfs` applied to an OCI spec (pure: no I/O).

use berth_runtime::oci_spec::runtime::{
    LinuxCpuBuilder, LinuxMemoryBuilder, LinuxPidsBuilder, MountBuilder, PosixRlimitBuilder,
    PosixRlimitType, Spec,
};

/// The resource and security options of `run`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Limits {
    /// `--memory` (`64m`, `1g`, bytes).
    pub memory: Option<String>,
    /// `--cpus` (`0.5`).
    pub cpus: Option<f64>,
    /// `--pids-limit`.
    pub pids_limit: Option<i64>,
    /// `--read-only`.
    pub read_only: bool,
    /// `--cap-add`.
    pub cap_add: Vec<String>,
    /// `--cap-drop`.
    pub cap_drop: Vec<String>,
    /// `--security-opt` (`no-new-privileges[:true]`, `seccomp=unconfined`).
    pub security_opt: Vec<String>,
    /// `--ulimit NAME=SOFT[:HARD]`.
    pub ulimits: Vec<String>,
    /// `--tmpfs /path[:options]`.
    pub tmpfs: Vec<String>,
}

/// An option value berth cannot apply.
#[derive(Debug, thiserror::Error)]
pub enum LimitsError {
    /// `--memory` is not a size.
    #[error("invalid memory size {0:?}: use a number with an optional b, k, m or g suffix")]
    Memory(String),
    /// `--cpus` is not positive.
    #[error("invalid --cpus {0}: must be greater than 0")]
    Cpus(f64),
    /// `--ulimit` is not `name=soft[:hard]` with a known name.
    #[error("invalid ulimit {0:?}: use NAME=SOFT[:HARD] (e.g. nofile=1024:2048)")]
    Ulimit(String),
    /// `--tmpfs` needs an absolute path.
    #[error("invalid tmpfs {0:?}: use /path[:options]")]
    Tmpfs(String),
    /// `--security-opt` berth does not know.
    #[error("unsupported --security-opt {0:?}: use no-new-privileges or seccomp=unconfined")]
    SecurityOpt(String),
    /// A capability name is unknown.
    #[error(transparent)]
    Capability(#[from] berth_runtime::SetupError),
}

/// `64m` → 67108864 (Docker's binary units).
pub fn parse_size(s: &str) -> Result<i64, LimitsError> {
    let bad = || LimitsError::Memory(s.to_owned());
    let lower = s.trim().to_ascii_lowercase();
    let (num, mult) = match lower.chars().last() {
        Some('b') => (&lower[..lower.len() - 1], 1),
        Some('k') => (&lower[..lower.len() - 1], 1 << 10),
        Some('m') => (&lower[..lower.len() - 1], 1 << 20),
        Some('g') => (&lower[..lower.len() - 1], 1 << 30),
        _ => (lower.as_str(), 1),
    };
    let n: f64 = num.parse().map_err(|_| bad())?;
    if n.is_nan() || n <= 0.0 {
        return Err(bad());
    }
    Ok((n * f64::from(mult)) as i64)
}

fn rlimit_type(name: &str) -> Option<PosixRlimitType> {
    use PosixRlimitType::*;
    Some(match name {
        "core" => RlimitCore,
        "cpu" => RlimitCpu,
        "data" => RlimitData,
        "fsize" => RlimitFsize,
        "locks" => RlimitLocks,
        "memlock" => RlimitMemlock,
        "msgqueue" => RlimitMsgqueue,
        "nice" => RlimitNice,
        "nofile" => RlimitNofile,
        "nproc" => RlimitNproc,
        "rss" => RlimitRss,
        "rtprio" => RlimitRtprio,
        "sigpending" => RlimitSigpending,
        "stack" => RlimitStack,
        _ => return None,
    })
}

/// Applies the options to `spec`.
pub fn apply(spec: &mut Spec, l: &Limits) -> Result<(), LimitsError> {
    let memory = l.memory.as_deref().map(parse_size).transpose()?;
    if let Some(c) = l.cpus
        && (c.is_nan() || c <= 0.0)
    {
        return Err(LimitsError::Cpus(c));
    }
    let mut rlimits = Vec::new();
    for u in &l.ulimits {
        let bad = || LimitsError::Ulimit(u.clone());
        let (name, values) = u.split_once('=').ok_or_else(bad)?;
        let (soft, hard) = values.split_once(':').unwrap_or((values, values));
        let (soft, hard): (u64, u64) = (
            soft.parse().map_err(|_| bad())?,
            hard.parse().map_err(|_| bad())?,
        );
        rlimits.push(
            PosixRlimitBuilder::default()
                .typ(rlimit_type(name).ok_or_else(bad)?)
                .soft(soft)
                .hard(hard)
                .build()
                .expect("type, soft and hard are set"),
        );
    }
    let mut no_new_privileges = false;
    let mut unconfined = false;
    for opt in &l.security_opt {
        match opt.as_str() {
            "no-new-privileges" | "no-new-privileges:true" | "no-new-privileges=true" => {
                no_new_privileges = true
            }
            "no-new-privileges:false" | "no-new-privileges=false" => {}
            "seccomp=unconfined" | "seccomp:unconfined" => unconfined = true,
            other => return Err(LimitsError::SecurityOpt(other.to_owned())),
        }
    }
    let mut tmpfs = Vec::new();
    for t in &l.tmpfs {
        let (path, opts) = t.split_once(':').unwrap_or((t, ""));
        if !path.starts_with('/') || path.split('/').any(|c| c == "..") {
            return Err(LimitsError::Tmpfs(t.clone()));
        }
        let mut options: Vec<String> = ["nosuid", "nodev", "noexec"]
            .into_iter()
            .map(str::to_owned)
            .collect();
        options.extend(opts.split(',').filter(|o| !o.is_empty()).map(str::to_owned));
        tmpfs.push(
            MountBuilder::default()
                .destination(path)
                .source("tmpfs")
                .typ("tmpfs")
                .options(options)
                .build()
                .expect("destination, source, type and options are set"),
        );
    }
    if !l.cap_add.is_empty() || !l.cap_drop.is_empty() {
        let caps = berth_runtime::security::caps::resolve(&l.cap_add, &l.cap_drop, false)?;
        berth_runtime::spec::set_capabilities(spec, &caps);
    }
    if unconfined {
        berth_runtime::spec::set_seccomp_unconfined(spec);
    }
    if let Some(p) = spec.process_mut() {
        if no_new_privileges {
            p.set_no_new_privileges(Some(true));
        }
        if !rlimits.is_empty() {
            p.set_rlimits(Some(rlimits));
        }
    }
    if l.read_only
        && let Some(root) = spec.root_mut()
    {
        root.set_readonly(Some(true));
    }
    if !tmpfs.is_empty() {
        let mut mounts = spec.mounts().clone().unwrap_or_default();
        mounts.extend(tmpfs);
        spec.set_mounts(Some(mounts));
    }
    if let Some(linux) = spec.linux_mut() {
        let mut resources = linux.resources().clone().unwrap_or_default();
        if let Some(limit) = memory {
            resources.set_memory(Some(
                LinuxMemoryBuilder::default()
                    .limit(limit)
                    .build()
                    .expect("limit is set"),
            ));
        }
        if let Some(cpus) = l.cpus {
            let period = 100_000u64;
            resources.set_cpu(Some(
                LinuxCpuBuilder::default()
                    .period(period)
                    .quota((cpus * period as f64) as i64)
                    .build()
                    .expect("period and quota are set"),
            ));
        }
        if let Some(pids) = l.pids_limit {
            resources.set_pids(Some(
                LinuxPidsBuilder::default()
                    .limit(pids)
                    .build()
                    .expect("limit is set"),
            ));
        }
        linux.set_resources(Some(resources));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_use_binary_units() {
        assert_eq!(parse_size("64m").unwrap(), 64 << 20);
        assert_eq!(parse_size("1G").unwrap(), 1 << 30);
        assert_eq!(parse_size("512").unwrap(), 512);
        assert!(matches!(parse_size("lots"), Err(LimitsError::Memory(_))));
        assert!(matches!(parse_size("-1m"), Err(LimitsError::Memory(_))));
    }

    #[test]
    fn options_land_in_the_spec() {
        let mut spec = berth_runtime::spec::default_spec(&["sh"]);
        let l = Limits {
            memory: Some("32m".into()),
            cpus: Some(0.5),
            pids_limit: Some(20),
            read_only: true,
            cap_drop: vec!["ALL".into()],
            security_opt: vec!["no-new-privileges".into()],
            ulimits: vec!["nofile=100:200".into()],
            tmpfs: vec!["/scratch:size=1m".into()],
            ..Limits::default()
        };
        apply(&mut spec, &l).unwrap();
        let r = spec.linux().as_ref().unwrap().resources().as_ref().unwrap();
        assert_eq!(r.memory().as_ref().unwrap().limit(), Some(32 << 20));
        assert_eq!(r.cpu().as_ref().unwrap().quota(), Some(50_000));
        assert_eq!(r.pids().as_ref().unwrap().limit(), 20);
        assert_eq!(spec.root().as_ref().unwrap().readonly(), Some(true));
        let p = spec.process().as_ref().unwrap();
        assert_eq!(p.no_new_privileges(), Some(true));
        let rl = &p.rlimits().as_ref().unwrap()[0];
        assert_eq!((rl.soft(), rl.hard()), (100, 200));
        let caps = p.capabilities().as_ref().unwrap();
        assert!(caps.bounding().as_ref().is_none_or(|b| b.is_empty()));
        let m = spec.mounts().as_ref().unwrap().last().unwrap().clone();
        assert_eq!(m.typ().as_deref(), Some("tmpfs"));
        assert!(
            m.options()
                .as_ref()
                .unwrap()
                .contains(&"size=1m".to_owned())
        );
    }

    #[test]
    fn bad_values_are_refused() {
        let mut spec = berth_runtime::spec::default_spec(&["sh"]);
        for l in [
            Limits {
                ulimits: vec!["nofiles=1".into()],
                ..Limits::default()
            },
            Limits {
                tmpfs: vec!["rel".into()],
                ..Limits::default()
            },
            Limits {
                security_opt: vec!["apparmor=x".into()],
                ..Limits::default()
            },
            Limits {
                cpus: Some(0.0),
                ..Limits::default()
            },
            Limits {
                cap_add: vec!["NOPE".into()],
                ..Limits::default()
            },
        ] {
            assert!(apply(&mut spec, &l).is_err(), "{l:?}");
        }
    }
}
