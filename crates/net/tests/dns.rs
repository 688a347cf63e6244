//! The embedded DNS server, queried from inside the "containers" with busybox and raw queries.

mod common;

use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::time::Duration;

use berth_net::dns::{self, Server, ServerConfig};
use berth_net::{Endpoint, NetworkSpec, netns};
use common::{TestEnv, eventually};
use hickory_proto::op::{Message, MessageType, Query};
use hickory_proto::rr::rdata::A;
use hickory_proto::rr::{Name, RData, Record, RecordType};

/// A stand-in for the host's resolver on 127.0.0.1: answers every A query with 192.0.2.99.
async fn upstream() -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = socket.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let mut buf = [0u8; 1500];
        while let Ok((n, peer)) = socket.recv_from(&mut buf).await {
            let Ok(req) = Message::from_vec(&buf[..n]) else {
                continue;
            };
            let mut reply = Message::response(req.metadata.id, req.metadata.op_code);
            reply.metadata.recursion_available = true;
            if let Some(q) = req.queries.first() {
                reply.add_query(q.clone());
                if q.query_type == RecordType::A {
                    reply.add_answer(Record::from_rdata(
                        q.name.clone(),
                        60,
                        RData::A(A(Ipv4Addr::new(192, 0, 2, 99))),
                    ));
                }
            }
            let _ = socket.send_to(&reply.to_vec().unwrap(), peer).await;
        }
    });
    (addr, task)
}

/// Sends one A query for `name` to `server` from inside the namespace; returns the answers in order.
async fn query_from(ns: &std::path::Path, server: Ipv4Addr, name: &str) -> Vec<Ipv4Addr> {
    let name = name.to_string();
    netns::run_in(ns, move || {
        let socket = UdpSocket::bind("0.0.0.0:0").unwrap();
        socket
            .set_read_timeout(Some(Duration::from_secs(2)))
            .unwrap();
        let mut msg = Message::query();
        msg.metadata.id = 4242;
        msg.metadata.message_type = MessageType::Query;
        msg.metadata.recursion_desired = true;
        msg.add_query(Query::query(
            Name::from_ascii(&name).unwrap(),
            RecordType::A,
        ));
        socket
            .send_to(&msg.to_vec().unwrap(), (server, 53))
            .unwrap();
        let mut buf = [0u8; 1500];
        let (n, _) = socket.recv_from(&mut buf).expect("dns answer");
        let reply = Message::from_vec(&buf[..n]).unwrap();
        assert_eq!(reply.metadata.id, 4242);
        reply
            .answers
            .iter()
            .filter_map(|r| match &r.data {
                RData::A(a) => Some(a.0),
                _ => None,
            })
            .collect()
    })
    .await
    .unwrap()
}

fn stdout(out: std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn names_resolve_per_network_round_robin_and_others_are_forwarded() {
    let mut env = TestEnv::new(30);
    let (w1, w2, c, d) = (
        env.netns("w1"),
        env.netns("w2"),
        env.netns("c"),
        env.netns("d"),
    );
    let net = env.open().await;
    let one = net.create_network(NetworkSpec::named("one")).await.unwrap();
    let two = net.create_network(NetworkSpec::named("two")).await.unwrap();
    let ip1 = net
        .attach("one", Endpoint::new("web-1", &w1, "eth0").alias("web"))
        .await
        .unwrap()
        .ip;
    let ip2 = net
        .attach("one", Endpoint::new("web-2", &w2, "eth0").alias("web"))
        .await
        .unwrap()
        .ip;
    net.attach("one", Endpoint::new("client-1", &c, "eth0").alias("client"))
        .await
        .unwrap();
    net.attach("two", Endpoint::new("other-1", &d, "eth0").alias("other"))
        .await
        .unwrap();

    let (up, up_task) = upstream().await;
    let server = Server::spawn(net.zone(), ServerConfig::new(vec![up]));
    let want: Vec<SocketAddr> = vec![(one.gateway, 53).into(), (two.gateway, 53).into()];
    let listening = eventually(Duration::from_secs(5), || {
        let mut l = server.listening();
        l.sort();
        (l == want).then_some(l)
    });
    assert_eq!(listening, Some(want));

    // busybox nslookup from the client: both replicas.
    let gw1 = one.gateway.to_string();
    let out = stdout(env.exec("c", &["timeout", "5", "busybox", "nslookup", "web", &gw1]));
    assert!(
        out.contains(&ip1.to_string()) && out.contains(&ip2.to_string()),
        "{out}"
    );

    // Round-robin: consecutive answers start with a different replica.
    let first = query_from(&c, one.gateway, "web").await;
    let second = query_from(&c, one.gateway, "web").await;
    assert_eq!(first.len(), 2);
    let mut sorted = first.clone();
    sorted.sort();
    assert_eq!(sorted, vec![ip1, ip2]);
    assert_ne!(
        first[0], second[0],
        "no rotation: {first:?} then {second:?}"
    );

    // The same over TCP (what a client does after a truncated UDP answer).
    let tcp = netns::run_in(&c, move || {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect((one.gateway, 53)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        let mut msg = Message::query();
        msg.metadata.id = 77;
        msg.add_query(Query::query(
            Name::from_ascii("web").unwrap(),
            RecordType::A,
        ));
        let bytes = msg.to_vec().unwrap();
        s.write_all(&[&(bytes.len() as u16).to_be_bytes()[..], &bytes].concat())
            .unwrap();
        let mut len = [0u8; 2];
        s.read_exact(&mut len).unwrap();
        let mut reply = vec![0u8; usize::from(u16::from_be_bytes(len))];
        s.read_exact(&mut reply).unwrap();
        let reply = Message::from_vec(&reply).unwrap();
        let mut ips: Vec<Ipv4Addr> = reply
            .answers
            .iter()
            .filter_map(|r| match &r.data {
                RData::A(a) => Some(a.0),
                _ => None,
            })
            .collect();
        ips.sort();
        ips
    })
    .await
    .unwrap();
    assert_eq!(tcp, vec![ip1, ip2]);

    // From the other network, "web" is not berth's: the query goes to the upstream.
    assert_eq!(
        query_from(&d, two.gateway, "web").await,
        vec![Ipv4Addr::new(192, 0, 2, 99)]
    );
    assert_eq!(
        query_from(&d, two.gateway, "other").await,
        vec![Ipv4Addr::new(10, 200, 30, 66)]
    );
    // Other names are forwarded for everybody.
    assert_eq!(
        query_from(&c, one.gateway, "example.test").await,
        vec![Ipv4Addr::new(192, 0, 2, 99)]
    );

    // By name from an application, with the resolv.conf berth writes for the container.
    let resolv = env.dir.path().join("resolv.conf");
    std::fs::write(
        &resolv,
        dns::files::resolv_conf(&[IpAddr::V4(one.gateway)], &[], &[]),
    )
    .unwrap();
    let root = common::docroot(&env, "www", "served by a web replica\n");
    let _h1 = env.spawn(
        "w1",
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
    let _h2 = env.spawn(
        "w2",
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
    let script = format!(
        "mount --bind {} /etc/resolv.conf && timeout 3 busybox wget -q -O - http://web/",
        resolv.display()
    );
    let body = eventually(Duration::from_secs(5), || {
        let out = env.exec("c", &["unshare", "-m", "sh", "-c", &script]);
        out.status.success().then(|| stdout(out))
    });
    assert_eq!(body.as_deref(), Some("served by a web replica\n"));

    // A detached replica disappears from the answers.
    net.detach("one", "web-2").await.unwrap();
    let after = eventually(Duration::from_secs(2), || {
        let out = env.exec("c", &["timeout", "5", "busybox", "nslookup", "web", &gw1]);
        let text = format!("{out:?}");
        (!text.contains(&ip2.to_string())).then_some(text)
    })
    .expect("detached replica still answered");
    assert!(after.contains(&ip1.to_string()), "{after}");

    drop(server);
    up_task.abort();
    for (n, c) in [("one", "web-1"), ("one", "client-1"), ("two", "other-1")] {
        net.detach(n, c).await.unwrap();
    }
    net.remove_network("one").await.unwrap();
    net.remove_network("two").await.unwrap();
    assert_eq!(env.links(), Vec::<String>::new());
}
