//! berth beside a live Docker (issue 5): Docker sets iptables' FORWARD policy to DROP and loads
//! `br_netfilter`, so every bridged or routed packet of berth's also passes Docker's chains.
//! berth's containers must still reach each other by name, reach a Docker container, and answer
//! on their published ports, while Docker's own container keeps answering on its port, and
//! berth must leave Docker's rules as it found them.
//!
//! Needs a running Docker, so it is `#[ignore]`d in the main run; `scripts/coexist.sh` starts
//! Docker with `../shared/bench/anchors-setup.sh`, runs this test alone and stops Docker again.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::Duration;

use berth_tests::eventually;

use crate::dns::httpd;
use crate::run::Env;

const DOCKER: &str = "/usr/bin/docker";

fn sh(program: &str, args: &[&str]) -> (bool, String) {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("run {program}: {e}"));
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).trim().to_string(),
    )
}

/// `iptables -S` of the filter table without berth's tagged rules: what Docker owns.
fn docker_rules(tag: &str) -> Vec<String> {
    let (_, all) = sh("iptables", &["-w", "-S"]);
    all.lines()
        .filter(|l| !l.contains(tag))
        .map(str::to_string)
        .collect()
}

fn berth_rules(tag: &str) -> Vec<String> {
    let (_, all) = sh("iptables", &["-w", "-S", "DOCKER-USER"]);
    all.lines()
        .filter(|l| l.contains(tag))
        .map(str::to_string)
        .collect()
}

/// An HTTP GET of `/` from the host: the body of a 200 answer.
fn get(host: &str, port: u16) -> Option<String> {
    let mut s = TcpStream::connect((host, port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    s.write_all(b"GET / HTTP/1.0\r\n\r\n").ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    text.contains(" 200 ")
        .then(|| text.split_once("\r\n\r\n").map(|(_, b)| b.to_string()))
        .flatten()
}

/// An HTTP GET of `/` on `host` port 80 from inside a berth container: the body.
fn fetch_inside(e: &Env, container: &str, host: &str) -> Option<String> {
    let (code, body) = crate::dns::fetch(e, container, host);
    code.map(|_| body)
}

/// A global IPv4 address of this host that is not on a bridge of berth's or Docker's.
fn host_address() -> String {
    let (_, out) = sh("ip", &["-4", "-o", "addr", "show", "scope", "global"]);
    out.lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let dev = f.nth(1)?;
            let addr = f.nth(1)?;
            (!dev.starts_with("berth") && !dev.starts_with("docker") && !dev.starts_with("br-"))
                .then(|| addr.split('/').next().unwrap_or(addr).to_string())
        })
        .next()
        .expect("this host has a global IPv4 address")
}

/// Removes the Docker container even when the test fails.
struct DockerContainer(String);

impl Drop for DockerContainer {
    fn drop(&mut self) {
        let _ = Command::new(DOCKER).args(["rm", "-f", &self.0]).output();
    }
}

/// The FORWARD policy set to DROP for the test, and put back as it was afterwards.
struct ForwardDrop(String);

impl ForwardDrop {
    fn set() -> ForwardDrop {
        let (_, forward) = sh("iptables", &["-w", "-S", "FORWARD"]);
        let was = forward
            .lines()
            .find_map(|l| l.strip_prefix("-P FORWARD "))
            .unwrap_or("ACCEPT")
            .to_string();
        let (ok, _) = sh("iptables", &["-w", "-P", "FORWARD", "DROP"]);
        assert!(ok, "iptables -P FORWARD DROP failed");
        ForwardDrop(was)
    }
}

impl Drop for ForwardDrop {
    fn drop(&mut self) {
        let _ = Command::new("iptables")
            .args(["-w", "-P", "FORWARD", &self.0])
            .output();
    }
}

#[test]
#[ignore = "needs a live Docker: scripts/coexist.sh starts one and runs this test"]
fn berth_networks_work_beside_a_live_docker_and_leave_its_rules_alone() {
    let (up, _) = sh(DOCKER, &["version"]);
    assert!(
        up,
        "Docker is not running: run scripts/coexist.sh, which starts it"
    );
    // Docker sets the policy to DROP when it turns IP forwarding on itself; on a host where
    // forwarding was already on (berth turns it on) it leaves it, so set what a fresh host gets.
    let _policy = ForwardDrop::set();
    assert!(
        std::path::Path::new("/proc/sys/net/bridge/bridge-nf-call-iptables").exists(),
        "Docker should have loaded br_netfilter"
    );

    let docker_name = format!("berth-coexist-{}", std::process::id());
    let (ok, _) = sh(
        DOCKER,
        &[
            "run",
            "-d",
            "--name",
            &docker_name,
            "-p",
            "127.0.0.1::80",
            "bb",
            "sh",
            "-c",
            &httpd("hello-from-docker"),
        ],
    );
    assert!(ok, "docker run of the anchors' bb image failed");
    let _guard = DockerContainer(docker_name.clone());
    let (_, docker_ip) = sh(
        DOCKER,
        &[
            "inspect",
            "-f",
            "{{.NetworkSettings.IPAddress}}",
            &docker_name,
        ],
    );
    let (_, docker_port) = sh(DOCKER, &["port", &docker_name, "80/tcp"]);
    let docker_port: u16 = docker_port
        .lines()
        .next()
        .and_then(|l| l.rsplit(':').next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("docker port: {docker_port}"));

    let e = Env::new("coexist");
    let config = berth_engine::containers::network::net_config(&e.env.root, &e.env.run_dir);
    let tag = format!("berth:{}", config.nft_table);
    let before = docker_rules(&tag);

    e.ok(&["network", "create", "front"]);
    let net: serde_json::Value =
        serde_json::from_str(&e.ok(&["network", "inspect", "front"])).unwrap();
    let bridge = net[0]["bridge"].as_str().unwrap().to_string();
    e.ok(&[
        "run",
        "-d",
        "--name",
        "web",
        "--network",
        "front",
        "-p",
        "0.0.0.0::80",
        "busybox",
        "sh",
        "-c",
        &httpd("hello-from-berth"),
    ]);
    e.ok(&[
        "run",
        "-d",
        "--name",
        "client",
        "--network",
        "front",
        "busybox",
        "sleep",
        "300",
    ]);
    let for_bridge = |b: &str| {
        berth_rules(&tag)
            .into_iter()
            .filter(|r| r.split_whitespace().any(|w| w == b))
            .count()
    };
    assert_eq!(for_bridge(&bridge), 2, "{:?}", berth_rules(&tag));

    // Bridged: container to container by name, through Docker's FORWARD chain (br_netfilter).
    let body = eventually("web by name from client", Duration::from_secs(10), || {
        fetch_inside(&e, "client", "web")
    });
    assert_eq!(body, "hello-from-berth\n");
    // Routed: a berth container reaches Docker's container on docker0.
    let body = eventually(
        "Docker's container from client",
        Duration::from_secs(10),
        || fetch_inside(&e, "client", &docker_ip),
    );
    assert_eq!(body, "hello-from-docker\n");
    // berth's published port answers on 127.0.0.1 and on the host's own address.
    let info = e.inspect("web");
    let port: u16 = info["NetworkSettings"]["Ports"]["80/tcp"][0]["HostPort"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    for host in ["127.0.0.1".to_string(), host_address()] {
        let body = eventually("berth's published port", Duration::from_secs(10), || {
            get(&host, port)
        });
        assert_eq!(body, "hello-from-berth\n", "via {host}:{port}");
    }
    // Docker's own container still answers on its published port.
    assert_eq!(
        get("127.0.0.1", docker_port).as_deref(),
        Some("hello-from-docker\n")
    );

    e.ok(&["rm", "-f", "web", "client"]);
    e.ok(&["network", "rm", "front"]);
    assert_eq!(for_bridge(&bridge), 0, "{:?}", berth_rules(&tag));
    // Dropping the env removes the rest (the default bridge, if the daemon made one).
    drop(e);
    assert_eq!(berth_rules(&tag), Vec::<String>::new());
    assert_eq!(docker_rules(&tag), before, "berth changed Docker's rules");
    assert_eq!(
        get("127.0.0.1", docker_port).as_deref(),
        Some("hello-from-docker\n")
    );
}
