//! Bridges, veths and address management against the real kernel.

mod common;

use std::net::Ipv4Addr;
use std::time::Duration;

use berth_net::ipam::IpamError;
use berth_net::{Endpoint, NetError, NetworkSpec};
use common::{TestEnv, eventually, ok};

#[tokio::test]
async fn two_containers_talk_and_removal_leaves_nothing() {
    let mut env = TestEnv::new(1);
    let (a, b) = (env.netns("a"), env.netns("b"));
    let net = env.open().await;
    let network = net
        .create_network(NetworkSpec::named("front"))
        .await
        .unwrap();
    assert_eq!(network.subnet.to_string(), "10.200.1.0/26");
    assert_eq!(network.gateway, Ipv4Addr::new(10, 200, 1, 1));
    assert_eq!(network.bridge, "berthT01b0");

    let att_a = net
        .attach("front", Endpoint::new("ca", &a, "eth0"))
        .await
        .unwrap();
    let att_b = net
        .attach("front", Endpoint::new("cb", &b, "eth0"))
        .await
        .unwrap();
    assert_eq!(att_a.ip, Ipv4Addr::new(10, 200, 1, 2));
    assert_eq!(att_b.ip, Ipv4Addr::new(10, 200, 1, 3));
    assert_eq!(att_a.mac, "02:42:0a:c8:01:02");

    // Inside: eth0 with the address, MAC and a default route via the gateway; lo up.
    let addr = String::from_utf8_lossy(
        &env.exec("a", &["ip", "-o", "-4", "addr", "show", "eth0"])
            .stdout,
    )
    .into_owned();
    assert!(addr.contains("inet 10.200.1.2/26"), "{addr}");
    let link =
        String::from_utf8_lossy(&env.exec("a", &["ip", "-o", "link", "show", "eth0"]).stdout)
            .into_owned();
    assert!(link.contains("link/ether 02:42:0a:c8:01:02"), "{link}");
    assert!(
        link.contains("mtu 1500") && link.contains("state UP"),
        "{link}"
    );
    let route = String::from_utf8_lossy(&env.exec("a", &["ip", "route", "show", "default"]).stdout)
        .into_owned();
    assert!(
        route.starts_with("default via 10.200.1.1 dev eth0"),
        "{route}"
    );
    let lo = String::from_utf8_lossy(&env.exec("a", &["ip", "-o", "link", "show", "lo"]).stdout)
        .into_owned();
    assert!(lo.contains("UP"), "{lo}");

    // b serves HTTP, a fetches it by address.
    let root = common::docroot(&env, "www", "hello from b\n");
    let _httpd = env.spawn(
        "b",
        &[
            "busybox",
            "httpd",
            "-f",
            "-p",
            "80",
            "-h",
            root.to_str().unwrap(),
        ],
    );
    let body = eventually(Duration::from_secs(5), || {
        let out = env.exec(
            "a",
            &[
                "timeout",
                "3",
                "busybox",
                "wget",
                "-q",
                "-O",
                "-",
                "http://10.200.1.3/",
            ],
        );
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    });
    assert_eq!(body.as_deref(), Some("hello from b\n"));

    // The host side: a bridge and two veths, all carrying the prefix.
    let mut links = env.links();
    links.sort();
    assert_eq!(links, vec!["berthT01b0", "berthT01v0", "berthT01v1"]);
    assert!(env.table_exists());
    // The bridge keeps a fixed MAC, so removing a port never changes the gateway's MAC.
    let bridge = common::ok(&["ip", "-o", "link", "show", "berthT01b0"]);
    assert!(bridge.contains("link/ether 02:42:0a:c8:01:01"), "{bridge}");

    // Removal refuses while containers are attached.
    match net.remove_network("front").await {
        Err(NetError::NetworkInUse { containers, .. }) => assert_eq!(containers, vec!["ca", "cb"]),
        other => panic!("expected NetworkInUse, got {other:?}"),
    }
    net.detach("front", "ca").await.unwrap();
    net.detach("front", "cb").await.unwrap();
    let eth0 = env.exec("a", &["ip", "link", "show", "eth0"]);
    assert!(!eth0.status.success(), "eth0 survived detach");
    net.remove_network("front").await.unwrap();

    assert_eq!(env.links(), Vec::<String>::new());
    assert!(
        !env.table_exists(),
        "nft table left behind:\n{}",
        env.ruleset()
    );
    assert_eq!(
        std::fs::read_dir(env.state_dir().join("networks"))
            .unwrap()
            .count(),
        0
    );
    assert!(
        !ok(&["ip", "-4", "route"]).contains("10.200.1."),
        "route left behind"
    );
    assert_eq!(net.list().await, vec![]);
}

#[tokio::test]
async fn addresses_persist_across_reopen_and_static_addresses_are_checked() {
    let mut env = TestEnv::new(2);
    let (a, b, c) = (env.netns("a"), env.netns("b"), env.netns("c"));
    {
        let net = env.open().await;
        net.create_network(NetworkSpec::named("n")).await.unwrap();
        let att = net
            .attach("n", Endpoint::new("ca", &a, "eth0"))
            .await
            .unwrap();
        assert_eq!(att.ip, Ipv4Addr::new(10, 200, 2, 2));
    }
    // A new process (a reopened state dir) does not hand the address out again.
    let net = env.open().await;
    let mut ep = Endpoint::new("cb", &b, "eth0");
    ep.ip = Some(Ipv4Addr::new(10, 200, 2, 2));
    match net.attach("n", ep).await {
        Err(NetError::Ipam(IpamError::AddressInUse { ip, network })) => {
            assert_eq!((ip.as_str(), network.as_str()), ("10.200.2.2", "n"));
        }
        other => panic!("expected AddressInUse, got {other:?}"),
    }
    // The failed attach left nothing behind.
    let mut links = env.links();
    links.sort();
    assert_eq!(links, vec!["berthT02b0", "berthT02v0"]);

    let mut ep = Endpoint::new("cb", &b, "eth0");
    ep.ip = Some(Ipv4Addr::new(10, 200, 2, 40));
    ep.mac = Some([0x02, 0xbe, 0x00, 0x00, 0x00, 0x28]);
    assert_eq!(
        net.attach("n", ep).await.unwrap().ip,
        Ipv4Addr::new(10, 200, 2, 40)
    );
    assert_eq!(
        net.attach("n", Endpoint::new("cc", &c, "eth0"))
            .await
            .unwrap()
            .ip,
        Ipv4Addr::new(10, 200, 2, 3)
    );
    assert!(matches!(
        net.attach("n", Endpoint::new("cc", &c, "eth1")).await,
        Err(NetError::AlreadyAttached { .. })
    ));

    // Detach releases: the next container gets the freed address.
    net.detach("n", "ca").await.unwrap();
    net.detach("n", "cc").await.unwrap();
    assert_eq!(
        net.attach("n", Endpoint::new("cc", &c, "eth0"))
            .await
            .unwrap()
            .ip,
        Ipv4Addr::new(10, 200, 2, 2)
    );

    let link = common::ok(&[
        "nsenter",
        "--net=/run/netns/berthT02b",
        "ip",
        "-o",
        "link",
        "show",
        "eth0",
    ]);
    assert!(link.contains("link/ether 02:be:00:00:00:28"), "{link}");

    // A namespace that does not exist: a clear error naming it, and no lease kept.
    let err = net
        .attach(
            "n",
            Endpoint::new("ghost", "/run/netns/berthT02nope", "eth0"),
        )
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "open network namespace /run/netns/berthT02nope"
    );
    assert!(
        !net.inspect("n")
            .await
            .unwrap()
            .attachments
            .contains_key("ghost")
    );
    // The same interface name twice in one namespace: refused, nothing left behind.
    let err = net
        .attach("n", Endpoint::new("dup", &c, "eth0"))
        .await
        .unwrap_err();
    assert!(
        err.to_string().starts_with("create veth berthT02v"),
        "{err}"
    );
    assert!(
        !net.inspect("n")
            .await
            .unwrap()
            .attachments
            .contains_key("dup")
    );
    assert_eq!(env.links().len(), 3, "{:?}", env.links());

    // A second network on the same container becomes eth1, without a second default route.
    net.create_network(NetworkSpec::named("m")).await.unwrap();
    let att = net
        .attach("m", Endpoint::new("cc", &c, "eth1"))
        .await
        .unwrap();
    assert_eq!(att.ip, Ipv4Addr::new(10, 200, 2, 66));
    let routes = String::from_utf8_lossy(&env.exec("c", &["ip", "route"]).stdout).into_owned();
    assert!(
        routes.contains("default via 10.200.2.1 dev eth0"),
        "{routes}"
    );
    assert!(routes.contains("10.200.2.64/26 dev eth1"), "{routes}");

    for (n, c) in [("n", "cb"), ("n", "cc"), ("m", "cc")] {
        net.detach(n, c).await.unwrap();
    }
    net.remove_network("n").await.unwrap();
    net.remove_network("m").await.unwrap();
    assert_eq!(env.links(), Vec::<String>::new());
}

#[tokio::test]
async fn exhausted_subnet_and_overlaps_give_clear_errors() {
    let mut env = TestEnv::new(3);
    let (a, b) = (env.netns("a"), env.netns("b"));
    let net = env.open().await;
    let mut spec = NetworkSpec::named("tiny");
    spec.subnet = Some("10.200.3.0/30".parse().unwrap());
    net.create_network(spec).await.unwrap();
    net.attach("tiny", Endpoint::new("ca", &a, "eth0"))
        .await
        .unwrap();
    let err = net
        .attach("tiny", Endpoint::new("cb", &b, "eth0"))
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "no free address left in subnet 10.200.3.0/30 of network tiny"
    );
    assert_eq!(
        env.links().len(),
        2,
        "failed attach left links: {:?}",
        env.links()
    );

    // A configuration that cannot work is refused up front.
    let mut bad = env.config();
    bad.state_dir = env.dir.path().join("other");
    bad.run_dir = env.dir.path().join("other-run");
    bad.pool_prefix = 16;
    assert_eq!(
        berth_net::Net::open(bad.clone())
            .await
            .unwrap_err()
            .to_string(),
        "address pool 10.200.3.0/24 cannot be split into /16 subnets (need a prefix length between the pool's and 30)"
    );
    bad.pool_prefix = 26;
    bad.prefix = "docker".into();
    assert!(matches!(
        berth_net::Net::open(bad).await,
        Err(NetError::InvalidPrefix(_))
    ));

    // A subnet overlapping another network or a host route is refused.
    let mut spec = NetworkSpec::named("clash");
    spec.subnet = Some("10.200.3.0/24".parse().unwrap());
    let err = net.create_network(spec).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "subnet 10.200.3.0/24 overlaps network 10.200.3.0/30"
    );
    let host = common::host_address();
    let mut spec = NetworkSpec::named("clash");
    spec.subnet = Some(
        format!("{host}/32")
            .parse::<ipnet::Ipv4Net>()
            .unwrap()
            .supernet()
            .unwrap()
            .trunc(),
    );
    assert!(matches!(
        net.create_network(spec).await,
        Err(NetError::Ipam(IpamError::Overlap { .. }))
    ));

    // The pool skips the used /30 region: next /26 that is free.
    let n = net
        .create_network(NetworkSpec::named("auto"))
        .await
        .unwrap();
    assert_eq!(n.subnet.to_string(), "10.200.3.64/26");
    assert!(matches!(
        net.create_network(NetworkSpec::named("auto")).await,
        Err(NetError::NetworkExists(_))
    ));

    // Prune removes the unused network only.
    assert_eq!(net.prune().await.unwrap(), vec!["auto"]);
    assert_eq!(
        net.list()
            .await
            .iter()
            .map(|n| n.name.as_str())
            .collect::<Vec<_>>(),
        vec!["tiny"]
    );
    net.detach("tiny", "ca").await.unwrap();
    assert_eq!(net.prune().await.unwrap(), vec!["tiny"]);
    assert_eq!(env.links(), Vec::<String>::new());
    assert!(!env.table_exists());
}

#[tokio::test]
async fn cleanup_after_crash_removes_what_the_state_no_longer_owns() {
    let mut env = TestEnv::new(4);
    let (a, b) = (env.netns("a"), env.netns("b"));
    {
        let net = env.open().await;
        net.create_network(NetworkSpec::named("n")).await.unwrap();
        net.attach("n", Endpoint::new("keep", &a, "eth0"))
            .await
            .unwrap();
        net.attach("n", Endpoint::new("gone", &b, "eth0"))
            .await
            .unwrap();
    }
    // Debris of a crash in the middle of an attach: a veth berth never recorded.
    ok(&[
        "ip",
        "link",
        "add",
        "berthT04v77",
        "type",
        "veth",
        "peer",
        "name",
        "berthT04p77",
    ]);

    let net = env.open().await;
    let mut removed = net.cleanup_orphans(&|c| c == "keep").await.unwrap();
    removed.sort();
    // Deleting the host end of the stray pair removes its other end too.
    assert_eq!(removed, vec!["berthT04v1", "berthT04v77"]);
    let mut links = env.links();
    links.sort();
    assert_eq!(links, vec!["berthT04b0", "berthT04v0"]);
    let n = net.inspect("n").await.unwrap();
    assert_eq!(n.attachments.keys().collect::<Vec<_>>(), vec!["keep"]);
    // The released address is handed out again.
    let att = net
        .attach("n", Endpoint::new("new", &b, "eth0"))
        .await
        .unwrap();
    assert_eq!(att.ip, Ipv4Addr::new(10, 200, 4, 3));
    net.detach("n", "keep").await.unwrap();
    net.detach("n", "new").await.unwrap();
    net.remove_network("n").await.unwrap();
    assert_eq!(env.links(), Vec::<String>::new());
}

#[tokio::test]
async fn ipv6_network_gives_both_families() {
    let mut env = TestEnv::new(5);
    let (a, b) = (env.netns("a"), env.netns("b"));
    let net = env.open().await;
    let mut spec = NetworkSpec::named("dual");
    spec.enable_ipv6 = true;
    let network = net.create_network(spec).await.unwrap();
    let v6 = network.ipv6.clone().unwrap();
    assert_eq!(v6.subnet.to_string(), "fd00:b:5::/64");
    let att_a = net
        .attach("dual", Endpoint::new("ca", &a, "eth0"))
        .await
        .unwrap();
    net.attach("dual", Endpoint::new("cb", &b, "eth0"))
        .await
        .unwrap();
    assert_eq!(att_a.ip6, Some("fd00:b:5::2".parse().unwrap()));
    // The first packet after attach already gets through (attach waits for the link to be up).
    let out = env.exec(
        "b",
        &["busybox", "ping", "-6", "-c", "1", "-W", "2", "fd00:b:5::2"],
    );
    assert!(
        out.status.success(),
        "ping6: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    let out = env.exec(
        "b",
        &["busybox", "ping", "-c", "1", "-W", "2", "10.200.5.2"],
    );
    assert!(
        out.status.success(),
        "ping: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    net.detach("dual", "ca").await.unwrap();
    net.detach("dual", "cb").await.unwrap();
    net.remove_network("dual").await.unwrap();
    assert_eq!(env.links(), Vec::<String>::new());
}
