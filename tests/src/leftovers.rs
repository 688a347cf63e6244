//! Removing what a test's berth root left in the kernel's network configuration.
//!
//! A test's daemon is killed at the end of the test, and networks outlive daemons by design
//! (so containers keep their addresses across a daemon restart). Without this, every test
//! that created a network would leave a bridge and an nftables table on the machine. The
//! names come from the same derivation the engine uses, so only this root's objects go. Where
//! Docker runs, the root's accept rules in Docker's `DOCKER-USER` chain go too.

use std::path::Path;
use std::process::{Command, Stdio};

use berth_engine::containers::network::net_config;

/// Deletes every link whose name starts with the root's link prefix, and the root's
/// nftables table. Best effort: what is already gone is fine.
pub fn remove_network_objects(root: &Path, run_dir: &Path) {
    let config = net_config(root, run_dir);
    if let Ok(out) = Command::new("ip").args(["-o", "link", "show"]).output() {
        let text = String::from_utf8_lossy(&out.stdout);
        for name in link_names(&text).filter(|n| n.starts_with(&config.prefix)) {
            let _ = Command::new("ip")
                .args(["link", "del", name])
                .stderr(Stdio::null())
                .status();
        }
    }
    let _ = Command::new("nft")
        .args(["delete", "table", "inet", &config.nft_table])
        .stderr(Stdio::null())
        .status();
    remove_docker_user_rules(&format!("berth:{}", config.nft_table));
}

/// Deletes the accept rules berth put into Docker's `DOCKER-USER` chain for this root (only
/// where Docker runs; elsewhere the chain does not exist and nothing happens).
fn remove_docker_user_rules(comment: &str) {
    for tool in ["iptables", "ip6tables"] {
        let Ok(out) = Command::new(tool)
            .args(["-w", "-t", "filter", "-S", "DOCKER-USER"])
            .stderr(Stdio::null())
            .output()
        else {
            continue;
        };
        let listing = String::from_utf8_lossy(&out.stdout);
        for rule in berth_net::coexist::rules_to_delete(&listing, comment) {
            let _ = Command::new(tool)
                .args(["-w", "-t", "filter"])
                .args(&rule)
                .stderr(Stdio::null())
                .status();
        }
    }
}

/// Link names from `ip -o link show` (`3: berth1b0@if2: <…>` → `berth1b0`).
fn link_names(text: &str) -> impl Iterator<Item = &str> {
    text.lines().filter_map(|line| {
        let name = line.split(": ").nth(1)?;
        Some(name.split('@').next().unwrap_or(name))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_names_drop_the_peer_suffix() {
        let text = "1: lo: <LOOPBACK,UP> mtu 65536\n7: berth1b0v1@if6: <BROADCAST> mtu 1500\n";
        assert_eq!(link_names(text).collect::<Vec<_>>(), ["lo", "berth1b0v1"]);
    }
}
