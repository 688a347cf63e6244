//! The processes of a container (Docker's `top`), read from `/proc` for the pids its cgroup
//! lists.

use serde::{Deserialize, Serialize};

/// One process of a container, as seen from the host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessInfo {
    /// Host pid.
    pub pid: i32,
    /// Host pid of its parent.
    pub ppid: i32,
    /// Real user id (host view).
    pub uid: u32,
    /// Command line (arguments joined by spaces; `[name]` when it has none).
    pub command: String,
}

/// Reads the processes with these pids; vanished ones are skipped.
pub fn processes(pids: &[i32]) -> Vec<ProcessInfo> {
    let mut out: Vec<ProcessInfo> = pids.iter().filter_map(|&p| read(p)).collect();
    out.sort_by_key(|p| p.pid);
    out
}

fn read(pid: i32) -> Option<ProcessInfo> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .map(str::to_owned)
    };
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let args: Vec<String> = cmdline
        .split(|&b| b == 0)
        .filter(|a| !a.is_empty())
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    let command = if args.is_empty() {
        format!("[{}]", field("Name:").unwrap_or_default())
    } else {
        args.join(" ")
    };
    Some(ProcessInfo {
        pid,
        ppid: field("PPid:")?.parse().ok()?,
        uid: field("Uid:")?.parse().ok()?,
        command,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_current_process() {
        let me = std::process::id() as i32;
        let list = processes(&[me, i32::MAX]);
        assert_eq!(list.len(), 1);
        assert_eq!(list[0].pid, me);
        assert_eq!(list[0].uid, nix::unistd::getuid().as_raw());
        assert!(!list[0].command.is_empty());
    }
}
