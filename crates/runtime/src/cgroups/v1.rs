//! cgroup v1: one directory per controller hierarchy under `/sys/fs/cgroup/<controller>`.

use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxDeviceCgroup, LinuxResources};

use super::{CgroupError, MOUNT_ROOT, Stats, create_dirs, poll_until, read, read_u64, write};

/// The v1 controllers berth uses (each mounted at `/sys/fs/cgroup/<name>`).
pub const CONTROLLERS: &[&str] = &[
    "memory", "cpu", "cpuacct", "cpuset", "pids", "blkio", "freezer", "devices",
];

/// A container's v1 cgroups.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CgroupV1 {
    /// `(controller, directory)` for every mounted controller.
    pub dirs: Vec<(String, PathBuf)>,
}

impl CgroupV1 {
    /// Creates `<mount>/<controller>/<rel>` for every mounted controller.
    pub fn create(rel: &Path) -> Result<Self, CgroupError> {
        let mut dirs = Vec::new();
        for name in CONTROLLERS {
            let mount = Path::new(MOUNT_ROOT).join(name);
            if !mount.join("cgroup.procs").exists() {
                continue;
            }
            let dir = mount.join(rel);
            create_dirs(&dir, |d| {
                if *name == "cpuset" {
                    inherit_cpuset(d)
                } else {
                    Ok(())
                }
            })?;
            dirs.push((name.to_string(), dir));
        }
        Ok(Self { dirs })
    }

    /// Rebuilds the handle from recorded directories.
    pub fn from_paths(paths: &[PathBuf]) -> Self {
        let dirs = paths
            .iter()
            .filter_map(|p| {
                let rel = p.strip_prefix(MOUNT_ROOT).ok()?;
                let name = rel.components().next()?.as_os_str().to_str()?.to_owned();
                Some((name, p.clone()))
            })
            .collect();
        Self { dirs }
    }

    /// The directory of one controller, if mounted.
    pub fn dir_of(&self, controller: &str) -> Option<PathBuf> {
        self.dirs
            .iter()
            .find(|(n, _)| n == controller)
            .map(|(_, d)| d.clone())
    }

    fn need(&self, controller: &str, what: &str) -> Result<PathBuf, CgroupError> {
        self.dir_of(controller)
            .ok_or_else(|| CgroupError::Unsupported {
                what: what.to_owned(),
            })
    }

    /// Applies the OCI resources.
    pub fn apply(&self, r: &LinuxResources) -> Result<(), CgroupError> {
        if let Some(m) = r.memory() {
            let dir = || self.need("memory", "memory limit");
            if let Some(limit) = m.limit() {
                write(&dir()?.join("memory.limit_in_bytes"), &limit.to_string())?;
            }
            if let Some(swap) = m.swap() {
                let file = dir()?.join("memory.memsw.limit_in_bytes");
                if !file.exists() {
                    return Err(CgroupError::Unsupported {
                        what: "memory+swap limit (swap accounting is off)".into(),
                    });
                }
                write(&file, &swap.to_string())?;
            }
            if let Some(res) = m.reservation() {
                write(&dir()?.join("memory.soft_limit_in_bytes"), &res.to_string())?;
            }
            if m.disable_oom_killer() == Some(true) {
                write(&dir()?.join("memory.oom_control"), "1")?;
            }
        }
        if let Some(c) = r.cpu() {
            if let Some(shares) = c.shares() {
                write(
                    &self.need("cpu", "cpu shares")?.join("cpu.shares"),
                    &shares.to_string(),
                )?;
            }
            if let Some(period) = c.period() {
                let f = self.need("cpu", "cpu period")?.join("cpu.cfs_period_us");
                write(&f, &period.to_string())?;
            }
            if let Some(quota) = c.quota() {
                let f = self.need("cpu", "cpu quota")?.join("cpu.cfs_quota_us");
                write(&f, &quota.max(-1).to_string())?;
            }
            if let Some(cpus) = c.cpus() {
                write(&self.need("cpuset", "cpuset")?.join("cpuset.cpus"), cpus)?;
            }
            if let Some(mems) = c.mems() {
                write(&self.need("cpuset", "cpuset")?.join("cpuset.mems"), mems)?;
            }
        }
        if let Some(p) = r.pids() {
            let value = if p.limit() > 0 {
                p.limit().to_string()
            } else {
                "max".to_owned()
            };
            write(&self.need("pids", "pids limit")?.join("pids.max"), &value)?;
        }
        if let Some(weight) = r.block_io().as_ref().and_then(|b| b.weight()) {
            let dir = self.need("blkio", "block-io weight")?;
            let file = ["blkio.weight", "blkio.bfq.weight"]
                .iter()
                .map(|f| dir.join(f))
                .find(|f| f.exists())
                .ok_or_else(|| CgroupError::Unsupported {
                    what: "block-io weight (no CFQ/BFQ scheduler)".into(),
                })?;
            write(&file, &weight.to_string())?;
        }
        if let Some(rules) = r.devices() {
            let dir = self.need("devices", "device rules")?;
            for rule in rules {
                let file = if rule.allow() {
                    "devices.allow"
                } else {
                    "devices.deny"
                };
                write(&dir.join(file), &device_rule(rule))?;
            }
        }
        Ok(())
    }

    /// Freezes or thaws through `freezer.state`.
    pub fn set_frozen(&self, frozen: bool) -> Result<(), CgroupError> {
        let file = self.need("freezer", "pause")?.join("freezer.state");
        let wanted = if frozen { "FROZEN" } else { "THAWED" };
        write(&file, wanted)?;
        if poll_until(|| read(&file).is_ok_and(|s| s.trim() == wanted)) {
            Ok(())
        } else {
            Err(CgroupError::FreezeTimeout {
                path: file,
                wanted: wanted.into(),
            })
        }
    }

    /// The `oom_kill` counter of `memory.oom_control`.
    pub fn oom_kills(&self) -> u64 {
        self.dir_of("memory")
            .and_then(|d| read(&d.join("memory.oom_control")).ok())
            .map(|t| super::stats::keyed(&t, "oom_kill").unwrap_or(0))
            .unwrap_or(0)
    }

    /// Counters.
    pub fn stats(&self) -> Stats {
        let mut s = Stats::default();
        if let Some(d) = self.dir_of("memory") {
            s.memory_usage = read_u64(&d.join("memory.usage_in_bytes")).unwrap_or(0);
            s.memory_max_usage = read_u64(&d.join("memory.max_usage_in_bytes")).unwrap_or(0);
            s.memory_limit = read_u64(&d.join("memory.limit_in_bytes")).filter(|&l| l < (1 << 62));
        }
        if let Some(d) = self.dir_of("cpuacct") {
            s.cpu_usage_ns = read_u64(&d.join("cpuacct.usage")).unwrap_or(0);
        }
        if let Some(d) = self.dir_of("cpu")
            && let Ok(t) = read(&d.join("cpu.stat"))
        {
            s.cpu_throttled_periods = super::stats::keyed(&t, "nr_throttled").unwrap_or(0);
        }
        if let Some(d) = self.dir_of("pids") {
            s.pids_current = read_u64(&d.join("pids.current")).unwrap_or(0);
            s.pids_limit = read_u64(&d.join("pids.max"));
        }
        if let Some(d) = self.dir_of("blkio")
            && let Ok(t) = read(&d.join("blkio.throttle.io_service_bytes_recursive"))
        {
            (s.io_read_bytes, s.io_write_bytes) = super::stats::blkio_totals(&t);
        }
        s
    }
}

/// A new cpuset cgroup starts with empty `cpus`/`mems` and accepts no task until they are
/// set: copy them from the parent.
fn inherit_cpuset(dir: &Path) -> Result<(), CgroupError> {
    let Some(parent) = dir.parent() else {
        return Ok(());
    };
    for file in ["cpuset.cpus", "cpuset.mems"] {
        let own = read(&dir.join(file))?;
        if own.trim().is_empty() {
            write(&dir.join(file), read(&parent.join(file))?.trim())?;
        }
    }
    Ok(())
}

/// `c 1:3 rwm` from an OCI device rule.
pub fn device_rule(rule: &LinuxDeviceCgroup) -> String {
    let typ = match rule.typ().map(|t| t.as_str().to_owned()).as_deref() {
        Some("c") | Some("u") => "c",
        Some("b") => "b",
        _ => "a",
    };
    let num = |n: Option<i64>| n.map_or("*".to_owned(), |n| n.to_string());
    let access = rule.access().clone().unwrap_or_else(|| "rwm".into());
    if typ == "a" {
        return "a".to_owned();
    }
    format!("{typ} {}:{} {access}", num(rule.major()), num(rule.minor()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::{LinuxDeviceCgroupBuilder, LinuxDeviceType};

    #[test]
    fn device_rules_render_like_the_kernel_wants() {
        let r = LinuxDeviceCgroupBuilder::default()
            .allow(true)
            .typ(LinuxDeviceType::C)
            .major(1)
            .minor(3)
            .access("rwm")
            .build()
            .unwrap();
        assert_eq!(device_rule(&r), "c 1:3 rwm");
        let all = LinuxDeviceCgroupBuilder::default()
            .allow(false)
            .build()
            .unwrap();
        assert_eq!(device_rule(&all), "a");
        let wild = LinuxDeviceCgroupBuilder::default()
            .allow(true)
            .typ(LinuxDeviceType::B)
            .access("m")
            .build()
            .unwrap();
        assert_eq!(device_rule(&wild), "b *:* m");
    }
}
