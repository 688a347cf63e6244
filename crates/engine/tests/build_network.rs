//! The build network against the real kernel: a build process killed while a `RUN`
//! container is connected leaves its bridge, veth and nftables table; the next build's
//! network removes them (and leaves a live build's network alone).

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

use berth_build::RunNetwork;
use berth_engine::build_network::BuildNetwork;

const CHILD_ENV: &str = "BERTH_TEST_BUILD_NET_CHILD";

fn require_root() {
    if !nix::unistd::Uid::effective().is_root() {
        panic!("build network tests create bridges and nftables tables: run as root");
    }
}

fn link_exists(name: &str) -> bool {
    Command::new("ip")
        .args(["link", "show", name])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap()
        .success()
}

fn table_exists(table: &str) -> bool {
    Command::new("nft")
        .args(["list", "table", "inet", table])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap()
        .success()
}

/// Kills a process on drop (the child "build", the sleeper holding a network namespace).
struct Killed(std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The "build" that dies: connects the sleeper's namespace, says so, and waits to be killed.
fn child(dir: &Path, netns: &str) {
    let network = BuildNetwork::new(dir);
    network.connect("run-1", Path::new(netns)).unwrap();
    println!("ready {} {}", network.link_prefix(), network.nft_table());
    std::thread::sleep(std::time::Duration::from_secs(120));
}

#[test]
fn a_killed_builds_network_is_removed_by_the_next_build() {
    if let Ok(v) = std::env::var(CHILD_ENV) {
        let (dir, netns) = v.split_once('|').unwrap();
        child(Path::new(dir), netns);
        return;
    }
    require_root();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("build-net");
    let sleeper = Killed(
        Command::new("unshare")
            .args(["-n", "sleep", "120"])
            .spawn()
            .unwrap(),
    );
    // `unshare` execs sleep: its pid is the namespace holder once the namespace exists.
    std::thread::sleep(std::time::Duration::from_millis(200));
    let netns = format!("/proc/{}/ns/net", sleeper.0.id());
    let mut child = Killed(
        Command::new(std::env::current_exe().unwrap())
            .args([
                "a_killed_builds_network_is_removed_by_the_next_build",
                "--exact",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, format!("{}|{netns}", dir.display()))
            .stdout(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let stdout = child.0.stdout.take().unwrap();
    let line = BufReader::new(stdout)
        .lines()
        .map(|l| l.unwrap())
        .find_map(|l| l.split_once("ready ").map(|(_, r)| r.to_string()))
        .expect("the child build connected");
    let mut words = line.split_whitespace();
    let (prefix, table) = (words.next().unwrap(), words.next().unwrap());
    let (bridge, veth) = (format!("{prefix}b0"), format!("{prefix}v0"));
    assert!(link_exists(&bridge) && link_exists(&veth) && table_exists(table));

    // A live build's network is not an orphan.
    let rt = tokio::runtime::Runtime::new().unwrap();
    assert_eq!(rt.block_on(BuildNetwork::remove_orphans(&dir)).unwrap(), 0);
    assert!(link_exists(&bridge));

    drop(child); // SIGKILL: no Drop, no cleanup
    assert!(link_exists(&bridge), "killed builds leave their bridge");
    assert_eq!(rt.block_on(BuildNetwork::remove_orphans(&dir)).unwrap(), 1);
    assert!(!link_exists(&bridge), "bridge {bridge} left");
    assert!(!link_exists(&veth), "veth {veth} left");
    assert!(!table_exists(table), "nft table {table} left");
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0);
    drop(sleeper);
}
