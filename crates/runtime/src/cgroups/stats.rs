//! Resource-usage counters of a container and parsers for the cgroup files they come from.

use serde::{Deserialize, Serialize};

/// A snapshot of a container's resource usage.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    /// CPU time used, nanoseconds.
    pub cpu_usage_ns: u64,
    /// Periods in which the CPU quota throttled the container.
    pub cpu_throttled_periods: u64,
    /// Memory in use, bytes.
    pub memory_usage: u64,
    /// Peak memory use, bytes (0 when the kernel does not track it).
    pub memory_max_usage: u64,
    /// Memory limit, bytes (`None`: unlimited).
    pub memory_limit: Option<u64>,
    /// Processes and threads in the container.
    pub pids_current: u64,
    /// Pids limit (`None`: unlimited).
    pub pids_limit: Option<u64>,
    /// Bytes read from block devices.
    pub io_read_bytes: u64,
    /// Bytes written to block devices.
    pub io_write_bytes: u64,
}

/// The value of `key` in a `key value` per line file (`memory.oom_control`, `cpu.stat`).
pub fn keyed(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(' ')?;
        (k == key).then(|| v.trim().parse().ok()).flatten()
    })
}

/// Read and write totals of v1 `blkio.throttle.io_service_bytes_recursive`.
pub fn blkio_totals(text: &str) -> (u64, u64) {
    let (mut r, mut w) = (0, 0);
    for line in text.lines() {
        let parts: Vec<&str> = line.split_whitespace().collect();
        if let [_, op, v] = parts[..] {
            let v: u64 = v.parse().unwrap_or(0);
            match op {
                "Read" => r += v,
                "Write" => w += v,
                _ => {}
            }
        }
    }
    (r, w)
}

/// Read and write totals of v2 `io.stat`.
pub fn io_stat_totals(text: &str) -> (u64, u64) {
    let (mut r, mut w) = (0, 0);
    for field in text.split_whitespace() {
        if let Some(v) = field.strip_prefix("rbytes=") {
            r += v.parse().unwrap_or(0);
        } else if let Some(v) = field.strip_prefix("wbytes=") {
            w += v.parse().unwrap_or(0);
        }
    }
    (r, w)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_counter_files() {
        let oom = "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n";
        assert_eq!(keyed(oom, "oom_kill"), Some(2));
        assert_eq!(keyed(oom, "missing"), None);
        let blk = "8:0 Read 4096\n8:0 Write 100\n8:16 Read 4\nTotal 4200\n";
        assert_eq!(blkio_totals(blk), (4100, 100));
        let io = "8:0 rbytes=10 wbytes=20 rios=1 wios=2\n8:16 rbytes=1 wbytes=2\n";
        assert_eq!(io_stat_totals(io), (11, 22));
    }
}
