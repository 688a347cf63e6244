//! Coexistence with Docker's firewall: FORWARD policy DROP, `DOCKER-USER` chain, br_netfilter.
//!
//! The scenario runs in a private network namespace standing in for the host (created with
//! unshare(2) on a dedicated thread; every netlink socket, `nft` and `iptables` run from that
//! thread lives there), so setting a DROP policy never disturbs tests running in parallel. The
//! rules are the ones Docker installs, put there with the real `iptables`.

mod common;

use std::path::PathBuf;

use berth_net::{Endpoint, NetworkSpec};
use common::{TestEnv, ok, run};
use nix::sched::{CloneFlags, unshare};

/// One ping, answered within 3 s (generous: the machine may be loaded).
fn pings(env: &TestEnv, from: &str, to: &str) -> bool {
    env.exec(from, &["busybox", "ping", "-c", "1", "-W", "3", to])
        .status
        .success()
}

async fn scenario(env: &TestEnv, a: PathBuf, b: PathBuf) {
    ok(&["ip", "link", "set", "lo", "up"]);
    // What Docker does to a host's firewall.
    ok(&["iptables", "-w", "-P", "FORWARD", "DROP"]);
    ok(&["iptables", "-w", "-N", "DOCKER-USER"]);
    ok(&["iptables", "-w", "-A", "DOCKER-USER", "-j", "RETURN"]);
    ok(&["iptables", "-w", "-A", "FORWARD", "-j", "DOCKER-USER"]);
    let nf = "/proc/sys/net/bridge/bridge-nf-call-iptables";
    std::fs::write(nf, "1").expect("br_netfilter must be loaded (Docker loads it)");

    let net = env.open().await;
    net.create_network(NetworkSpec::named("n")).await.unwrap();
    let ip_a = net
        .attach("n", Endpoint::new("a", &a, "eth0"))
        .await
        .unwrap()
        .ip
        .to_string();
    net.attach("n", Endpoint::new("b", &b, "eth0"))
        .await
        .unwrap();
    assert!(
        pings(env, "b", &ip_a),
        "no traffic on a berth bridge under Docker's rules"
    );

    // berth added its two tagged rules and changed nothing of Docker's.
    let user = ok(&["iptables", "-w", "-S", "DOCKER-USER"]);
    assert_eq!(
        user,
        "-N DOCKER-USER\n\
         -A DOCKER-USER -o berthT40b0 -m comment --comment \"berth:berthT40\" -j ACCEPT\n\
         -A DOCKER-USER -i berthT40b0 -m comment --comment \"berth:berthT40\" -j ACCEPT\n\
         -A DOCKER-USER -j RETURN\n"
    );
    let forward = ok(&["iptables", "-w", "-S", "FORWARD"]);
    assert_eq!(forward, "-P FORWARD DROP\n-A FORWARD -j DOCKER-USER\n");

    // Those rules are what lets the traffic through: without them it is dropped...
    for dir in ["-i", "-o"] {
        ok(&[
            "iptables",
            "-w",
            "-D",
            "DOCKER-USER",
            dir,
            "berthT40b0",
            "-m",
            "comment",
            "--comment",
            "berth:berthT40",
            "-j",
            "ACCEPT",
        ]);
    }
    assert!(
        !pings(env, "b", &ip_a),
        "traffic passed Docker's DROP policy without berth's rules"
    );
    // ...and a resync (daemon start, Docker restarted) puts them back.
    net.sync_firewall().await.unwrap();
    assert!(pings(env, "b", &ip_a));

    net.detach("n", "a").await.unwrap();
    net.detach("n", "b").await.unwrap();
    net.remove_network("n").await.unwrap();
    assert_eq!(
        ok(&["iptables", "-w", "-S", "DOCKER-USER"]),
        "-N DOCKER-USER\n-A DOCKER-USER -j RETURN\n"
    );
    assert!(
        !run(&["nft", "list", "table", "inet", "berthT40"])
            .status
            .success()
    );
}

#[test]
fn berth_traffic_flows_under_dockers_forward_drop_policy_and_docker_rules_stay() {
    let mut env = TestEnv::new(40);
    let (a, b) = (env.netns("a"), env.netns("b"));
    let env = std::thread::spawn(move || {
        unshare(CloneFlags::CLONE_NEWNET).expect("unshare a private host namespace");
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(scenario(&env, a, b));
        env
    })
    .join()
    .expect("scenario thread");
    drop(env);
}
