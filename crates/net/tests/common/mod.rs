//! Test harness: a per-test root (state dir, link prefix, nft table, address pool) and network
//! namespaces standing in for containers. Every test passes its own id (registry below), so
//! tests run in parallel without sharing a name, a subnet or a table; leftovers of a crashed
//! earlier run with the same id are removed first, and everything is removed on drop.
//!
//! Ids in use: attach.rs 1-9, firewall.rs 10-19, ports.rs 20-29, dns.rs 30-39, coexist.rs 40-49.
#![allow(dead_code)]

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use berth_net::{Net, NetConfig};

/// Fails loudly when not root: these tests need netlink, namespaces and nftables.
pub fn require_root() {
    if !nix::unistd::Uid::effective().is_root() {
        panic!(
            "berth-net integration tests need root (netlink, network namespaces, nftables); run them as root"
        );
    }
}

/// Runs a command, returning its output (never panics on a non-zero status).
pub fn run(args: &[&str]) -> Output {
    Command::new(args[0])
        .args(&args[1..])
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("run {args:?}: {e}"))
}

/// Runs a command and returns its stdout; panics with its stderr on failure.
pub fn ok(args: &[&str]) -> String {
    let out = run(args);
    assert!(
        out.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Retries `check` until it returns `Some` or `timeout` passes.
pub fn eventually<T>(timeout: Duration, mut check: impl FnMut() -> Option<T>) -> Option<T> {
    let start = Instant::now();
    loop {
        if let Some(v) = check() {
            return Some(v);
        }
        if start.elapsed() > timeout {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// One test's resources.
pub struct TestEnv {
    pub id: u8,
    pub prefix: String,
    pub table: String,
    pub dir: tempfile::TempDir,
    namespaces: Vec<String>,
}

impl TestEnv {
    pub fn new(id: u8) -> TestEnv {
        require_root();
        let prefix = format!("berthT{id:02}");
        let env = TestEnv {
            id,
            table: prefix.clone(),
            prefix,
            dir: tempfile::tempdir().expect("temp dir"),
            namespaces: Vec::new(),
        };
        env.scrub();
        env
    }

    /// The config for this test: pool 10.200.<id>.0/24 in /26s, its own prefix and table.
    pub fn config(&self) -> NetConfig {
        let mut c = NetConfig::new(self.state_dir());
        c.pool = format!("10.200.{}.0/24", self.id).parse().unwrap();
        c.pool_prefix = 26;
        c.pool6 = format!("fd00:b:{:x}::/48", self.id).parse().unwrap();
        c.prefix = self.prefix.clone();
        c.nft_table = self.table.clone();
        c
    }

    pub fn state_dir(&self) -> PathBuf {
        self.dir.path().join("net")
    }

    pub async fn open(&self) -> Net {
        Net::open(self.config()).await.expect("open net")
    }

    /// A network namespace named `<prefix><suffix>` (a "container"); returns its path.
    pub fn netns(&mut self, suffix: &str) -> PathBuf {
        let name = format!("{}{suffix}", self.prefix);
        let _ = run(&["ip", "netns", "del", &name]);
        ok(&["ip", "netns", "add", &name]);
        self.namespaces.push(name.clone());
        PathBuf::from("/run/netns").join(name)
    }

    pub fn ns_name(&self, suffix: &str) -> String {
        format!("{}{suffix}", self.prefix)
    }

    /// Runs `args` inside namespace `<prefix><suffix>` (with `nsenter`: busybox-static's `wget`
    /// crashes under `ip netns exec`, which also remounts /sys).
    pub fn exec(&self, suffix: &str, args: &[&str]) -> Output {
        let net = format!("--net=/run/netns/{}", self.ns_name(suffix));
        let mut full = vec!["nsenter", net.as_str()];
        full.extend_from_slice(args);
        run(&full)
    }

    /// Starts `args` in the background inside the namespace; killed on drop of the guard.
    pub fn spawn(&self, suffix: &str, args: &[&str]) -> Bg {
        let net = format!("--net=/run/netns/{}", self.ns_name(suffix));
        let child = Command::new("nsenter")
            .arg(net)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn in netns");
        Bg(child)
    }

    /// Host links that carry this test's prefix.
    pub fn links(&self) -> Vec<String> {
        host_links()
            .into_iter()
            .filter(|l| l.starts_with(&self.prefix))
            .collect()
    }

    /// Whether this test's nft table exists.
    pub fn table_exists(&self) -> bool {
        ok(&["nft", "list", "tables"])
            .lines()
            .any(|l| l.trim() == format!("table inet {}", self.table))
    }

    /// The text of this test's nft table.
    pub fn ruleset(&self) -> String {
        String::from_utf8_lossy(&run(&["nft", "list", "table", "inet", &self.table]).stdout)
            .into_owned()
    }

    /// Removes everything that carries this test's names (leftovers of a crashed run, or this
    /// run's on drop).
    fn scrub(&self) {
        for link in self.links() {
            let _ = run(&["ip", "link", "del", &link]);
        }
        let _ = run(&["nft", "delete", "table", "inet", &self.table]);
        for ns in ok(&["ip", "netns", "list"]).lines() {
            let name = ns.split_whitespace().next().unwrap_or("");
            if name.starts_with(&self.prefix) {
                let pids = String::from_utf8_lossy(&run(&["ip", "netns", "pids", name]).stdout)
                    .into_owned();
                for pid in pids.split_whitespace() {
                    let _ = run(&["kill", "-9", pid]);
                }
                let _ = run(&["ip", "netns", "del", name]);
                let _ = std::fs::remove_dir_all(Path::new("/etc/netns").join(name));
            }
        }
    }
}

impl Drop for TestEnv {
    fn drop(&mut self) {
        self.scrub();
    }
}

/// A background process, killed and reaped on drop.
pub struct Bg(pub std::process::Child);

impl Drop for Bg {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Names of every link in the host namespace.
pub fn host_links() -> Vec<String> {
    ok(&["ip", "-o", "link", "show"])
        .lines()
        .filter_map(|l| l.split(": ").nth(1))
        .map(|n| n.split('@').next().unwrap_or(n).to_string())
        .collect()
}

/// The host's first global IPv4 address on a non-loopback interface ("the host's own address").
pub fn host_address() -> Ipv4Addr {
    let text = ok(&["ip", "-o", "-4", "addr", "show", "scope", "global"]);
    text.lines()
        .filter(|l| !l.contains(" berth"))
        .find_map(|l| {
            let cidr = l.split_whitespace().skip_while(|w| *w != "inet").nth(1)?;
            cidr.split('/').next()?.parse().ok()
        })
        .expect("the host needs a global IPv4 address for this test")
}

/// Plain HTTP GET over TCP from the host; returns the body.
pub fn http_get(ip: IpAddr, port: u16) -> std::io::Result<String> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect_timeout(&(ip, port).into(), Duration::from_secs(2))?;
    s.set_read_timeout(Some(Duration::from_secs(2)))?;
    write!(s, "GET /index.html HTTP/1.0\r\nHost: x\r\n\r\n")?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    Ok(out.split("\r\n\r\n").nth(1).unwrap_or("").to_string())
}

/// Writes a document root with `index.html` containing `body` and returns its path.
pub fn docroot(env: &TestEnv, name: &str, body: &str) -> PathBuf {
    let dir = env.dir.path().join(name);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("index.html"), body).unwrap();
    dir
}
