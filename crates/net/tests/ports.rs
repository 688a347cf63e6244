//! Published ports against real traffic from the host (127.0.0.1 and the host's own address).

mod common;

use std::net::{IpAddr, Ipv4Addr, TcpListener, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use berth_net::ports::PortError;
use berth_net::{Endpoint, NetError, NetworkSpec, PortMapping, PortRange, Protocol, netns};
use common::{TestEnv, eventually, http_get};

fn mapping(
    host_ip: Option<IpAddr>,
    host: u16,
    container: (u16, u16),
    protocol: Protocol,
) -> PortMapping {
    PortMapping {
        host_ip,
        host_ports: PortRange::single(host),
        container_ports: PortRange {
            start: container.0,
            end: container.1,
        },
        protocol,
    }
}

/// A UDP echo server on port 5353 inside the namespace, until `stop` is set.
async fn udp_echo(ns: std::path::PathBuf, stop: Arc<AtomicBool>) -> tokio::task::JoinHandle<()> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let task = tokio::spawn(async move {
        netns::run_in(&ns, move || {
            let socket = UdpSocket::bind("0.0.0.0:5353").expect("bind udp in container");
            socket
                .set_read_timeout(Some(Duration::from_millis(50)))
                .unwrap();
            tx.send(()).unwrap();
            let mut buf = [0u8; 512];
            while !stop.load(Ordering::SeqCst) {
                if let Ok((n, peer)) = socket.recv_from(&mut buf) {
                    let reply = [b"echo:", &buf[..n]].concat();
                    let _ = socket.send_to(&reply, peer);
                }
            }
        })
        .await
        .unwrap()
    });
    rx.await.unwrap();
    task
}

fn udp_ask(ip: IpAddr, port: u16, text: &str) -> Option<String> {
    let socket = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0)).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    socket.send_to(text.as_bytes(), (ip, port)).ok()?;
    let mut buf = [0u8; 512];
    let (n, _) = socket.recv_from(&mut buf).ok()?;
    Some(String::from_utf8_lossy(&buf[..n]).into_owned())
}

#[tokio::test]
async fn published_tcp_and_udp_ports_answer_on_loopback_and_the_host_address() {
    let mut env = TestEnv::new(20);
    let (a, b, o) = (env.netns("a"), env.netns("b"), env.netns("o"));
    let net = env.open().await;
    net.create_network(NetworkSpec::named("web")).await.unwrap();
    net.create_network(NetworkSpec::named("other"))
        .await
        .unwrap();
    net.attach("web", Endpoint::new("a", &a, "eth0"))
        .await
        .unwrap();
    net.attach("web", Endpoint::new("b", &b, "eth0"))
        .await
        .unwrap();
    net.attach("other", Endpoint::new("o", &o, "eth0"))
        .await
        .unwrap();
    let root80 = common::docroot(&env, "www80", "port eighty\n");
    let root81 = common::docroot(&env, "www81", "port eighty-one\n");
    let _h80 = env.spawn(
        "a",
        &[
            "busybox",
            "httpd",
            "-f",
            "-p",
            "80",
            "-h",
            root80.to_str().unwrap(),
        ],
    );
    let _h81 = env.spawn(
        "a",
        &[
            "busybox",
            "httpd",
            "-f",
            "-p",
            "81",
            "-h",
            root81.to_str().unwrap(),
        ],
    );
    let stop = Arc::new(AtomicBool::new(false));
    let echo = udp_echo(a.clone(), stop.clone()).await;

    let published = net
        .publish(
            "a",
            &[
                mapping(None, 0, (80, 81), Protocol::Tcp),
                mapping(None, 0, (5353, 5353), Protocol::Udp),
            ],
        )
        .await
        .unwrap();
    assert_eq!(published.len(), 3);
    assert_eq!(net.ports("a").await, published);
    let (p80, p81, pudp) = (
        published[0].host_port,
        published[1].host_port,
        published[2].host_port,
    );
    assert!(p80 != 0 && p81 != 0 && pudp != 0);
    assert_eq!(published[2].protocol, Protocol::Udp);
    assert_eq!(published[0].container_ip, Ipv4Addr::new(10, 200, 20, 2));

    let localhost = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let host = IpAddr::V4(common::host_address());
    let body = eventually(Duration::from_secs(5), || http_get(localhost, p80).ok());
    assert_eq!(body.as_deref(), Some("port eighty\n"));
    assert_eq!(http_get(localhost, p81).unwrap(), "port eighty-one\n");
    assert_eq!(http_get(host, p80).unwrap(), "port eighty\n");
    assert_eq!(udp_ask(localhost, pudp, "hi").as_deref(), Some("echo:hi"));
    assert_eq!(udp_ask(host, pudp, "there").as_deref(), Some("echo:there"));

    // Hairpin: a container on the same network reaches the published port via the host address.
    let url = format!("http://{host}:{p80}/");
    let out = env.exec(
        "b",
        &["timeout", "3", "busybox", "wget", "-q", "-O", "-", &url],
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "port eighty\n");

    // A container of another network reaches the published port through the host address
    // (like any client outside), but not the container itself.
    let out = env.exec(
        "o",
        &["timeout", "3", "busybox", "wget", "-q", "-O", "-", &url],
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "port eighty\n");
    let direct = env.exec(
        "o",
        &[
            "timeout",
            "2",
            "busybox",
            "wget",
            "-q",
            "-O",
            "-",
            "http://10.200.20.2/",
        ],
    );
    assert!(
        !direct.status.success(),
        "other network reached the container directly"
    );

    // Unpublished: the port stops answering, the rules are gone.
    net.unpublish("a").await.unwrap();
    assert!(http_get(localhost, p80).is_err());
    assert_eq!(udp_ask(localhost, pudp, "x"), None);
    assert!(!env.ruleset().contains("dnat ip to"), "{}", env.ruleset());
    assert_eq!(net.ports("a").await, vec![]);

    stop.store(true, Ordering::SeqCst);
    echo.await.unwrap();
    net.detach("web", "a").await.unwrap();
    net.detach("web", "b").await.unwrap();
    net.detach("other", "o").await.unwrap();
    net.remove_network("web").await.unwrap();
    net.remove_network("other").await.unwrap();
    assert!(!env.table_exists());
    assert_eq!(env.links(), Vec::<String>::new());
}

#[tokio::test]
async fn port_conflicts_are_reported_before_anything_is_created() {
    let mut env = TestEnv::new(21);
    let (a, b, s) = (env.netns("a"), env.netns("b"), env.netns("s"));
    let net = env.open().await;
    net.create_network(NetworkSpec::named("web")).await.unwrap();
    let mut sealed = NetworkSpec::named("sealed");
    sealed.internal = true;
    net.create_network(sealed).await.unwrap();
    net.attach("web", Endpoint::new("a", &a, "eth0"))
        .await
        .unwrap();
    net.attach("web", Endpoint::new("b", &b, "eth0"))
        .await
        .unwrap();
    net.attach("sealed", Endpoint::new("s", &s, "eth0"))
        .await
        .unwrap();

    // A host process holds a port.
    let held = TcpListener::bind((Ipv4Addr::UNSPECIFIED, 0)).unwrap();
    let taken = held.local_addr().unwrap().port();
    let before = env.ruleset();
    let err = net
        .publish("a", &[mapping(None, taken, (80, 80), Protocol::Tcp)])
        .await
        .unwrap_err();
    assert!(matches!(err, NetError::Port(PortError::InUseByHost { port, .. }) if port == taken));
    assert_eq!(
        err.to_string(),
        format!("host port {taken}/tcp on all addresses is already in use by another process")
    );
    assert_eq!(env.ruleset(), before);
    assert_eq!(net.ports("a").await, vec![]);

    // A port berth already publishes for another container.
    let got = net
        .publish("a", &[mapping(None, 0, (80, 80), Protocol::Tcp)])
        .await
        .unwrap();
    let port = got[0].host_port;
    let err = net
        .publish(
            "b",
            &[mapping(
                Some(IpAddr::V4(Ipv4Addr::LOCALHOST)),
                port,
                (80, 80),
                Protocol::Tcp,
            )],
        )
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("host port {port}/tcp on 127.0.0.1 is already published by container a")
    );
    // In a batch, one conflict refuses the whole batch.
    let err = net
        .publish(
            "b",
            &[
                mapping(None, 0, (81, 81), Protocol::Tcp),
                mapping(None, port, (80, 80), Protocol::Tcp),
            ],
        )
        .await;
    assert!(matches!(
        err,
        Err(NetError::Port(PortError::InUseByBerth { .. }))
    ));
    assert_eq!(net.ports("b").await, vec![]);
    // The same number over UDP is a different port.
    let udp = net
        .publish("b", &[mapping(None, port, (53, 53), Protocol::Udp)])
        .await
        .unwrap();
    assert_eq!(udp[0].host_port, port);

    // If the table was deleted behind berth's back, the next publish rebuilds it whole.
    common::ok(&["nft", "delete", "table", "inet", "berthT21"]);
    let again = net
        .publish("a", &[mapping(None, 0, (81, 81), Protocol::Tcp)])
        .await
        .unwrap();
    let rules = env.ruleset();
    for p in [port, again[0].host_port] {
        assert!(
            rules.contains(&format!("tcp dport {p} dnat ip to")),
            "{rules}"
        );
    }

    // Nothing can be published for a container that has no way out.
    assert!(matches!(
        net.publish("s", &[mapping(None, 0, (80, 80), Protocol::Tcp)])
            .await,
        Err(NetError::NothingToPublishOn(_))
    ));

    // Detach drops the container's published ports.
    net.detach("web", "a").await.unwrap();
    assert_eq!(net.ports("a").await, vec![]);
    net.detach("web", "b").await.unwrap();
    net.detach("sealed", "s").await.unwrap();
    assert!(!env.ruleset().contains("dnat ip to"));
    net.remove_network("web").await.unwrap();
    net.remove_network("sealed").await.unwrap();
    assert!(!env.table_exists());
    drop(held);
}
