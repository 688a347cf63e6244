//! berth's nftables table against real traffic: isolation, internal networks, masquerade.

mod common;

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use berth_net::{Endpoint, NetworkSpec, netns};
use common::{TestEnv, ok};

/// Accepts TCP connections on `addr` inside the namespace at `ns` until `stop` is set;
/// returns the peers it saw.
async fn peers_seen(
    ns: std::path::PathBuf,
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
) -> tokio::task::JoinHandle<Vec<SocketAddr>> {
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
    let task = tokio::spawn(async move {
        netns::run_in(&ns, move || {
            let listener = TcpListener::bind(addr).expect("bind in outside namespace");
            listener.set_nonblocking(true).unwrap();
            ready_tx.send(()).unwrap();
            let mut peers = Vec::new();
            while !stop.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((_, peer)) => peers.push(peer),
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
            peers
        })
        .await
        .unwrap()
    });
    tokio::time::timeout(Duration::from_secs(5), ready_rx)
        .await
        .expect("listener ready")
        .unwrap();
    task
}

fn succeeds(env: &TestEnv, ns: &str, args: &[&str]) -> bool {
    env.exec(ns, args).status.success()
}

#[tokio::test]
async fn networks_are_isolated_internal_has_no_way_out_and_outbound_is_masqueraded() {
    let mut env = TestEnv::new(10);
    let (a, b, i, j) = (
        env.netns("a"),
        env.netns("b"),
        env.netns("i"),
        env.netns("j"),
    );
    // "Outside": a namespace routed through the host (stands for the world; never leaves the box).
    let x = env.netns("x");
    ok(&[
        "ip",
        "link",
        "add",
        "berthT10x0",
        "type",
        "veth",
        "peer",
        "name",
        "berthT10x1",
    ]);
    ok(&[
        "ip",
        "link",
        "set",
        "berthT10x1",
        "netns",
        x.to_str().unwrap(),
    ]);
    ok(&["ip", "addr", "add", "10.201.10.1/30", "dev", "berthT10x0"]);
    ok(&["ip", "link", "set", "berthT10x0", "up"]);
    for cmd in [
        vec!["ip", "addr", "add", "10.201.10.2/30", "dev", "berthT10x1"],
        vec!["ip", "link", "set", "berthT10x1", "up"],
        vec!["ip", "route", "add", "default", "via", "10.201.10.1"],
    ] {
        let out = env.exec("x", &cmd);
        assert!(
            out.status.success(),
            "{cmd:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    let net = env.open().await;
    net.create_network(NetworkSpec::named("one")).await.unwrap();
    net.create_network(NetworkSpec::named("two")).await.unwrap();
    let mut internal = NetworkSpec::named("sealed");
    internal.internal = true;
    net.create_network(internal).await.unwrap();
    let ip_a = net
        .attach("one", Endpoint::new("a", &a, "eth0"))
        .await
        .unwrap()
        .ip;
    let ip_b = net
        .attach("two", Endpoint::new("b", &b, "eth0"))
        .await
        .unwrap()
        .ip;
    let att_i = net
        .attach("sealed", Endpoint::new("i", &i, "eth0"))
        .await
        .unwrap();
    let ip_j = net
        .attach("sealed", Endpoint::new("j", &j, "eth0"))
        .await
        .unwrap()
        .ip;
    assert_eq!(att_i.gateway, None);

    let stop = Arc::new(AtomicBool::new(false));
    let seen = peers_seen(x.clone(), "10.201.10.2:8000".parse().unwrap(), stop.clone()).await;

    // A normal network reaches the outside, masqueraded behind the host's address.
    assert!(succeeds(
        &env,
        "a",
        &["timeout", "3", "busybox", "nc", "10.201.10.2", "8000"]
    ));
    assert!(succeeds(
        &env,
        "b",
        &["timeout", "3", "busybox", "nc", "10.201.10.2", "8000"]
    ));

    // Two different networks cannot talk to each other; each reaches its own gateway.
    assert!(!succeeds(
        &env,
        "b",
        &["busybox", "ping", "-c", "1", "-W", "1", &ip_a.to_string()]
    ));
    assert!(!succeeds(
        &env,
        "a",
        &["busybox", "ping", "-c", "1", "-W", "1", &ip_b.to_string()]
    ));
    assert!(succeeds(
        &env,
        "a",
        &["busybox", "ping", "-c", "1", "-W", "3", "10.200.10.1"]
    ));

    // The internal network: no default route; containers on it talk to each other.
    let routes = String::from_utf8_lossy(&env.exec("i", &["ip", "route"]).stdout).into_owned();
    assert!(
        !routes.contains("default"),
        "internal container has a default route: {routes}"
    );
    assert!(!succeeds(
        &env,
        "i",
        &["timeout", "3", "busybox", "nc", "10.201.10.2", "8000"]
    ));
    assert!(succeeds(
        &env,
        "i",
        &["busybox", "ping", "-c", "1", "-W", "3", &ip_j.to_string()]
    ));
    // Even a container that adds a route itself gets nowhere: the firewall drops it.
    let gw = net.inspect("sealed").await.unwrap().gateway.to_string();
    assert!(succeeds(
        &env,
        "i",
        &["ip", "route", "add", "default", "via", &gw]
    ));
    assert!(!succeeds(
        &env,
        "i",
        &["timeout", "3", "busybox", "nc", "10.201.10.2", "8000"]
    ));
    assert!(!succeeds(
        &env,
        "i",
        &["busybox", "ping", "-c", "1", "-W", "1", &ip_a.to_string()]
    ));

    stop.store(true, Ordering::SeqCst);
    let peers: Vec<String> = seen
        .await
        .unwrap()
        .iter()
        .map(|p| p.ip().to_string())
        .collect();
    assert_eq!(
        peers,
        vec!["10.201.10.1", "10.201.10.1"],
        "outside saw: {peers:?}"
    );

    for (n, c) in [("one", "a"), ("two", "b"), ("sealed", "i"), ("sealed", "j")] {
        net.detach(n, c).await.unwrap();
    }
    for n in ["one", "two", "sealed"] {
        net.remove_network(n).await.unwrap();
    }
    assert!(!env.table_exists(), "table left behind:\n{}", env.ruleset());
    assert_eq!(env.links(), vec!["berthT10x0"]);
}
