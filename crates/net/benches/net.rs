//! Network benchmarks (root): attach latency, TCP throughput over a berth bridge and through a
//! published port, each against host loopback. Run with `benches/net.sh` or
//! `cargo bench -p berth-net --bench net`. Prints medians and ratios; asserts nothing.

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use berth_net::{Endpoint, Net, NetConfig, NetworkSpec, PortMapping, PortRange, Protocol, netns};

const PREFIX: &str = "berthBench";
const ATTACHES: usize = 40;
const BYTES: u64 = 2 << 30;
const ROUNDS: usize = 5;

fn sh(args: &[&str]) {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn scrub() {
    let _ = Command::new("nft")
        .args(["delete", "table", "inet", PREFIX])
        .output();
    let links = Command::new("ip")
        .args(["-o", "link", "show"])
        .output()
        .expect("ip link");
    for line in String::from_utf8_lossy(&links.stdout).lines() {
        if let Some(name) = line
            .split(": ")
            .nth(1)
            .map(|n| n.split('@').next().unwrap_or(n))
            && name.starts_with(PREFIX)
        {
            let _ = Command::new("ip").args(["link", "del", name]).output();
        }
    }
    let list = Command::new("ip")
        .args(["netns", "list"])
        .output()
        .expect("ip netns");
    for line in String::from_utf8_lossy(&list.stdout).lines() {
        let name = line.split_whitespace().next().unwrap_or("");
        if name.starts_with(PREFIX) {
            let _ = Command::new("ip").args(["netns", "del", name]).output();
        }
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn percentile(mut v: Vec<f64>, p: f64) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[((v.len() - 1) as f64 * p).round() as usize]
}

/// A sink that accepts one connection per round and reads each to EOF (the listener was bound
/// in whatever namespace it should serve from).
fn sink(listener: TcpListener) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        for _ in 0..ROUNDS {
            let (mut s, _) = listener.accept().expect("accept");
            let mut buf = vec![0u8; 1 << 20];
            while s.read(&mut buf).map(|n| n > 0).unwrap_or(false) {}
        }
    })
}

fn send(to: SocketAddr) -> f64 {
    let mut s = TcpStream::connect(to).expect("connect");
    let buf = vec![0x5au8; 1 << 20];
    let start = Instant::now();
    let mut left = BYTES;
    while left > 0 {
        let n = left.min(buf.len() as u64) as usize;
        s.write_all(&buf[..n]).expect("write");
        left -= n as u64;
    }
    s.shutdown(std::net::Shutdown::Write).ok();
    let mut rest = Vec::new();
    let _ = s.read_to_end(&mut rest);
    (BYTES as f64 * 8.0) / start.elapsed().as_secs_f64() / 1e9
}

async fn in_ns<T: Send + 'static>(ns: &Path, f: impl FnOnce() -> T + Send + 'static) -> T {
    netns::run_in(ns, f).await.expect("enter namespace")
}

fn throughput(label: &str, samples: Vec<f64>) -> f64 {
    let m = median(samples.clone());
    println!(
        "{label:<44} median {m:7.2} Gbit/s  (runs: {})",
        samples
            .iter()
            .map(|s| format!("{s:.2}"))
            .collect::<Vec<_>>()
            .join(" ")
    );
    m
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    if !nix::unistd::Uid::effective().is_root() {
        panic!("the net benchmark needs root (netlink, namespaces, nftables)");
    }
    scrub();
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = NetConfig::new(dir.path().join("net"));
    config.pool = "10.200.250.0/24".parse().unwrap();
    config.prefix = PREFIX.into();
    config.nft_table = PREFIX.into();
    let net = Net::open(config).await.expect("open");
    // NET_BENCH_MTU sets the bridge MTU (default 1500, as Docker's).
    let mut spec = NetworkSpec::named("bench");
    spec.mtu = std::env::var("NET_BENCH_MTU")
        .ok()
        .and_then(|m| m.parse().ok());
    net.create_network(spec).await.expect("network");

    // 1. Attach latency.
    let namespaces: Vec<PathBuf> = (0..ATTACHES)
        .map(|i| {
            let name = format!("{PREFIX}{i}");
            sh(&["ip", "netns", "add", &name]);
            PathBuf::from("/run/netns").join(name)
        })
        .collect();
    let mut attach_ms = Vec::new();
    for (i, ns) in namespaces.iter().enumerate() {
        let start = Instant::now();
        net.attach("bench", Endpoint::new(format!("c{i}"), ns, "eth0"))
            .await
            .expect("attach");
        attach_ms.push(start.elapsed().as_secs_f64() * 1e3);
    }
    let mut detach_ms = Vec::new();
    for i in 2..ATTACHES {
        let start = Instant::now();
        net.detach("bench", &format!("c{i}")).await.expect("detach");
        detach_ms.push(start.elapsed().as_secs_f64() * 1e3);
    }
    println!(
        "attach ({ATTACHES} namespaces)                      median {:6.2} ms  p90 {:6.2} ms",
        median(attach_ms.clone()),
        percentile(attach_ms, 0.9)
    );
    println!(
        "detach                                       median {:6.2} ms",
        median(detach_ms)
    );

    // 2. Throughput: loopback, bridge, published port.
    let server_ns = namespaces[0].clone();
    let client_ns = namespaces[1].clone();
    let server_ip = net.inspect("bench").await.unwrap().attachments["c0"].ip;

    let published = net
        .publish(
            "c0",
            &[PortMapping {
                host_ip: None,
                host_ports: PortRange::single(0),
                container_ports: PortRange::single(5002),
                protocol: Protocol::Tcp,
            }],
        )
        .await
        .expect("publish");
    let lo = TcpListener::bind("127.0.0.1:0").unwrap();
    let lo_addr = lo.local_addr().unwrap();
    let bridge_listener = in_ns(&server_ns, || {
        TcpListener::bind("0.0.0.0:5001").expect("bind")
    })
    .await;
    let pub_listener = in_ns(&server_ns, || {
        TcpListener::bind("0.0.0.0:5002").expect("bind")
    })
    .await;
    let sinks = [sink(lo), sink(bridge_listener), sink(pub_listener)];
    let bridge_to = SocketAddr::new(IpAddr::V4(server_ip), 5001);
    let pub_to = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), published[0].host_port);
    // Interleaved rounds, so that load from elsewhere on the machine hits all three alike.
    let (mut lo_runs, mut bridge_runs, mut pub_runs) = (Vec::new(), Vec::new(), Vec::new());
    let (mut bridge_ratio, mut pub_ratio) = (Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        let lo = send(lo_addr);
        let bridge = in_ns(&client_ns, move || send(bridge_to)).await;
        let publ = send(pub_to);
        bridge_ratio.push(bridge / lo * 100.0);
        pub_ratio.push(publ / lo * 100.0);
        lo_runs.push(lo);
        bridge_runs.push(bridge);
        pub_runs.push(publ);
    }
    for t in sinks {
        t.join().unwrap();
    }
    throughput("host loopback (127.0.0.1)", lo_runs);
    throughput("container -> container on one bridge", bridge_runs);
    throughput("host -> published port on 127.0.0.1", pub_runs);
    println!(
        "ratio bridge / loopback (median of rounds)    {:6.1} %",
        median(bridge_ratio)
    );
    println!(
        "ratio published / loopback (median of rounds) {:6.1} %",
        median(pub_ratio)
    );

    // 3. A server already listening in a fresh namespace: attach + publish + first HTTP answer
    //    on 127.0.0.1 (the network part of `run -d -p 0:80` until the first answer).
    let docroot = dir.path().join("www");
    std::fs::create_dir_all(&docroot).unwrap();
    std::fs::write(docroot.join("index.html"), "ok\n").unwrap();
    let mut first_answer_ms = Vec::new();
    for (i, ns) in namespaces.iter().enumerate().take(12).skip(2) {
        let mut httpd = Command::new("nsenter")
            .arg(format!("--net={}", ns.display()))
            .args(["busybox", "httpd", "-f", "-p", "80", "-h"])
            .arg(&docroot)
            .spawn()
            .expect("httpd");
        // Wait until it listens (inside the namespace, before any network is attached).
        let probe = ns.clone();
        in_ns(&probe, || {
            while TcpStream::connect("127.0.0.1:80").is_err() {
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
        })
        .await;
        let id = format!("c{i}");
        let start = Instant::now();
        net.attach("bench", Endpoint::new(id.clone(), ns, "eth0"))
            .await
            .expect("attach");
        let published = net
            .publish(
                &id,
                &[PortMapping {
                    host_ip: None,
                    host_ports: PortRange::single(0),
                    container_ports: PortRange::single(80),
                    protocol: Protocol::Tcp,
                }],
            )
            .await
            .expect("publish");
        let mut s =
            TcpStream::connect((Ipv4Addr::LOCALHOST, published[0].host_port)).expect("connect");
        s.write_all(b"GET / HTTP/1.0\r\n\r\n").unwrap();
        let mut answer = String::new();
        s.read_to_string(&mut answer).unwrap();
        first_answer_ms.push(start.elapsed().as_secs_f64() * 1e3);
        assert!(answer.ends_with("ok\n"), "{answer}");
        let _ = httpd.kill();
        let _ = httpd.wait();
        net.unpublish(&id).await.unwrap();
        net.detach("bench", &id).await.unwrap();
    }
    println!(
        "attach + publish + first HTTP answer         median {:6.2} ms  p90 {:6.2} ms",
        median(first_answer_ms.clone()),
        percentile(first_answer_ms, 0.9)
    );

    net.unpublish("c0").await.unwrap();
    net.detach("bench", "c0").await.unwrap();
    net.detach("bench", "c1").await.unwrap();
    net.remove_network("bench").await.unwrap();
    drop(net);
    scrub();
}
