//! cgroup v2: one directory in the unified hierarchy mounted at `/sys/fs/cgroup`.

use std::path::{Path, PathBuf};

use oci_spec::runtime::LinuxResources;

use super::{CgroupError, MOUNT_ROOT, Stats, create_dirs, poll_until, read, read_u64, write};

const CONTROLLERS: &[&str] = &["cpu", "cpuset", "memory", "pids", "io"];

/// A container's v2 cgroup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CgroupV2 {
    /// The directory.
    pub dir: PathBuf,
}

impl CgroupV2 {
    /// Creates the directory, enabling the controllers in every ancestor on the way.
    pub fn create(rel: &Path) -> Result<Self, CgroupError> {
        let dir = Path::new(MOUNT_ROOT).join(rel);
        enable_controllers(Path::new(MOUNT_ROOT));
        create_dirs(&dir, |d| {
            if d != dir {
                enable_controllers(d);
            }
            Ok(())
        })?;
        Ok(Self { dir })
    }

    fn file(&self, name: &str, what: &str) -> Result<PathBuf, CgroupError> {
        let f = self.dir.join(name);
        if f.exists() {
            Ok(f)
        } else {
            Err(CgroupError::Unsupported { what: what.into() })
        }
    }

    /// Applies the OCI resources, converting v1-style values as runc and crun do.
    pub fn apply(&self, r: &LinuxResources) -> Result<(), CgroupError> {
        if let Some(m) = r.memory() {
            if let Some(limit) = m.limit() {
                write(&self.file("memory.max", "memory limit")?, &max_or(limit))?;
            }
            if let Some(swap) = m.swap() {
                let value = swap_max(m.limit(), swap);
                write(&self.file("memory.swap.max", "memory+swap limit")?, &value)?;
            }
            if let Some(res) = m.reservation() {
                write(
                    &self.file("memory.low", "memory reservation")?,
                    &max_or(res),
                )?;
            }
        }
        if let Some(c) = r.cpu() {
            if let Some(shares) = c.shares() {
                let w = shares_to_weight(shares).to_string();
                write(&self.file("cpu.weight", "cpu shares")?, &w)?;
            }
            if c.quota().is_some() || c.period().is_some() {
                let quota = c
                    .quota()
                    .filter(|&q| q > 0)
                    .map_or("max".into(), |q| q.to_string());
                let period = c.period().unwrap_or(100_000);
                write(
                    &self.file("cpu.max", "cpu quota")?,
                    &format!("{quota} {period}"),
                )?;
            }
            if let Some(cpus) = c.cpus() {
                write(&self.file("cpuset.cpus", "cpuset")?, cpus)?;
            }
            if let Some(mems) = c.mems() {
                write(&self.file("cpuset.mems", "cpuset")?, mems)?;
            }
        }
        if let Some(p) = r.pids() {
            write(&self.file("pids.max", "pids limit")?, &max_or(p.limit()))?;
        }
        if let Some(weight) = r.block_io().as_ref().and_then(|b| b.weight()) {
            if let Ok(f) = self.file("io.bfq.weight", "") {
                write(&f, &weight.to_string())?;
            } else {
                let w = blkio_to_io_weight(weight).to_string();
                write(&self.file("io.weight", "block-io weight")?, &w)?;
            }
        }
        // Device rules need an eBPF program on v2, which berth does not load yet: they are
        // skipped there (the container's /dev still only holds the default nodes).
        Ok(())
    }

    /// Freezes or thaws through `cgroup.freeze`.
    pub fn set_frozen(&self, frozen: bool) -> Result<(), CgroupError> {
        let value = if frozen { "1" } else { "0" };
        write(&self.file("cgroup.freeze", "pause")?, value)?;
        let events = self.dir.join("cgroup.events");
        let want = format!("frozen {value}");
        if poll_until(|| read(&events).is_ok_and(|t| t.lines().any(|l| l == want))) {
            Ok(())
        } else {
            Err(CgroupError::FreezeTimeout {
                path: self.dir.clone(),
                wanted: if frozen { "frozen" } else { "thawed" }.into(),
            })
        }
    }

    /// The `oom_kill` counter of `memory.events`.
    pub fn oom_kills(&self) -> u64 {
        read(&self.dir.join("memory.events"))
            .ok()
            .and_then(|t| super::stats::keyed(&t, "oom_kill"))
            .unwrap_or(0)
    }

    /// Counters.
    pub fn stats(&self) -> Stats {
        let d = &self.dir;
        let mut s = Stats {
            memory_usage: read_u64(&d.join("memory.current")).unwrap_or(0),
            memory_max_usage: read_u64(&d.join("memory.peak")).unwrap_or(0),
            memory_limit: read_u64(&d.join("memory.max")),
            pids_current: read_u64(&d.join("pids.current")).unwrap_or(0),
            pids_limit: read_u64(&d.join("pids.max")),
            ..Stats::default()
        };
        if let Ok(t) = read(&d.join("cpu.stat")) {
            s.cpu_usage_ns = super::stats::keyed(&t, "usage_usec").unwrap_or(0) * 1000;
            s.cpu_throttled_periods = super::stats::keyed(&t, "nr_throttled").unwrap_or(0);
        }
        if let Ok(t) = read(&d.join("io.stat")) {
            (s.io_read_bytes, s.io_write_bytes) = super::stats::io_stat_totals(&t);
        }
        s
    }
}

fn enable_controllers(dir: &Path) {
    // One write per controller: a controller the kernel lacks must not block the others.
    for c in CONTROLLERS {
        let _ = write(&dir.join("cgroup.subtree_control"), &format!("+{c}"));
    }
}

fn max_or(v: i64) -> String {
    if v > 0 { v.to_string() } else { "max".into() }
}

/// OCI `swap` is memory+swap (v1 semantics); v2's `memory.swap.max` is swap alone.
pub fn swap_max(limit: Option<i64>, swap: i64) -> String {
    match (limit, swap) {
        (_, s) if s < 0 => "max".into(),
        (Some(l), s) if l > 0 => (s - l).max(0).to_string(),
        (_, s) => s.to_string(),
    }
}

/// cpu.shares (2–262144) to cpu.weight (1–10000), the conversion runc and crun use.
pub fn shares_to_weight(shares: u64) -> u64 {
    if shares == 0 {
        return 100;
    }
    1 + ((shares.clamp(2, 262_144) - 2) * 9999) / 262_142
}

/// blkio.weight (10–1000) to io.weight (1–10000).
pub fn blkio_to_io_weight(w: u16) -> u64 {
    let w = u64::from(w.clamp(10, 1000));
    1 + (w - 10) * 9999 / 990
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversions_match_runc() {
        assert_eq!(shares_to_weight(1024), 39);
        assert_eq!(shares_to_weight(2), 1);
        assert_eq!(shares_to_weight(262_144), 10000);
        assert_eq!(blkio_to_io_weight(10), 1);
        assert_eq!(blkio_to_io_weight(1000), 10000);
        assert_eq!(swap_max(Some(100), 300), "200");
        assert_eq!(swap_max(Some(100), -1), "max");
        assert_eq!(swap_max(None, 50), "50");
    }
}
