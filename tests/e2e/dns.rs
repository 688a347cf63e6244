//! Service discovery and network attachments through the daemon: containers on a user network
//! find each other by name and alias through berth's DNS server, `network connect` and
//! `disconnect` change who reaches whom, `--add-host`/`--dns`/`--dns-search` land in the
//! container's files, and a restarted daemon keeps answering for running containers.

use std::time::Duration;

use berth_tests::eventually;

use crate::run::Env;

/// A busybox httpd serving `body` at `/`.
pub(crate) fn httpd(body: &str) -> String {
    format!("mkdir /www && echo {body} > /www/index.html && exec httpd -f -p 80 -h /www")
}

/// An HTTP GET of `/` on `host` port 80 from inside `container` (busybox `nc`: its `wget`
/// crashes in Debian's static build): the exit code and the body.
pub(crate) fn fetch(e: &Env, container: &str, host: &str) -> (Option<i32>, String) {
    let script = format!("printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 3 {host} 80");
    let (code, out, _) = e.run(&["exec", container, "sh", "-c", &script]);
    let body = out
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (code.filter(|_| !body.is_empty()), body)
}

fn nslookup_addresses(e: &Env, container: &str, name: &str) -> Option<Vec<String>> {
    let (code, out, _) = e.run(&["exec", container, "nslookup", name]);
    if code != Some(0) {
        return None;
    }
    // busybox prints the server first, then `Name:`/`Address:` lines of the answer.
    let answer = out.split_once("Name:")?.1;
    Some(
        answer
            .lines()
            .filter_map(|l| l.trim().strip_prefix("Address:"))
            .filter_map(|a| a.split_whitespace().last())
            .map(str::to_string)
            .collect(),
    )
}

fn network_ip(e: &Env, container: &str, network: &str) -> String {
    e.inspect(container)["NetworkSettings"]["Networks"][network]["IPAddress"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[test]
fn containers_on_a_user_network_reach_each_other_by_name_and_alias() {
    let e = Env::new("dns_by_name");
    e.ok(&["network", "create", "front"]);
    let net: serde_json::Value =
        serde_json::from_str(&e.ok(&["network", "inspect", "front"])).unwrap();
    let gateway = net[0]["gateway"].as_str().unwrap().to_string();
    let subnet = net[0]["subnet"].as_str().unwrap().to_string();
    let fixed = format!("{}.77", subnet.rsplit_once('.').unwrap().0);
    e.ok(&[
        "run",
        "-d",
        "--name",
        "web",
        "--network",
        "front",
        "--network-alias",
        "www",
        "--ip",
        &fixed,
        "busybox",
        "sh",
        "-c",
        &httpd("hello-from-web"),
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
        "1000",
    ]);
    assert_eq!(network_ip(&e, "web", "front"), fixed);
    let web = e.inspect("web");
    assert_eq!(
        web["NetworkSettings"]["Networks"]["front"]["Aliases"],
        serde_json::json!(["www"])
    );
    // berth's server is the container's resolver on a user network.
    assert_eq!(
        e.ok(&["exec", "client", "cat", "/etc/resolv.conf"]),
        format!("nameserver {gateway}\n")
    );
    for name in ["web", "www", "WEB"] {
        let body = eventually(
            &format!("web to answer as {name}"),
            Duration::from_secs(15),
            || {
                let (code, out) = fetch(&e, "client", name);
                (code == Some(0)).then_some(out)
            },
        );
        assert_eq!(body, "hello-from-web\n");
    }
    assert_eq!(
        nslookup_addresses(&e, "client", "www"),
        Some(vec![fixed.clone()])
    );
    // A one-off container on the network resolves too (run, not exec).
    let (code, out, err) = e.run(&[
        "run",
        "--rm",
        "--network",
        "front",
        "busybox",
        "sh",
        "-c",
        "printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 3 www 80",
    ]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.ends_with("\r\n\r\nhello-from-web\n"), "{out}");
    // The default network keeps the host's resolvers, as Docker's bridge does.
    let (_, resolv, _) = e.run(&["run", "--rm", "busybox", "cat", "/etc/resolv.conf"]);
    assert!(!resolv.contains(&gateway), "{resolv}");
    assert!(resolv.contains("nameserver "), "{resolv}");
}

#[test]
fn connect_and_disconnect_change_who_reaches_whom() {
    let e = Env::new("dns_connect");
    e.ok(&["network", "create", "front"]);
    e.ok(&["network", "create", "back"]);
    e.ok(&["network", "create", "spare"]);
    e.ok(&[
        "run",
        "-d",
        "--name",
        "db",
        "--network",
        "back",
        "busybox",
        "sh",
        "-c",
        &httpd("rows"),
    ]);
    e.ok(&[
        "run",
        "-d",
        "--name",
        "app",
        "--network",
        "front",
        "busybox",
        "sleep",
        "1000",
    ]);
    // Different networks: no name, no route.
    assert_eq!(nslookup_addresses(&e, "app", "db"), None);
    let db_ip = network_ip(&e, "db", "back");
    assert_ne!(fetch(&e, "app", &db_ip).0, Some(0));

    e.ok(&["network", "connect", "--alias", "frontend", "back", "app"]);
    let ifaces = e.ok(&["exec", "app", "ip", "-o", "link"]);
    assert!(ifaces.contains(" eth1@"), "{ifaces}");
    let app_back_ip = network_ip(&e, "app", "back");
    assert!(!app_back_ip.is_empty());
    let body = eventually("db by name after connect", Duration::from_secs(15), || {
        let (code, out) = fetch(&e, "app", "db");
        (code == Some(0)).then_some(out)
    });
    assert_eq!(body, "rows\n");
    // The alias given at connect resolves on that network, to the address there.
    assert_eq!(
        nslookup_addresses(&e, "db", "frontend"),
        Some(vec![app_back_ip])
    );
    let (code, _, err) = e.run(&["network", "connect", "back", "app"]);
    assert_eq!(code, Some(125));
    assert!(err.contains("already connected"), "{err}");
    let (code, _, err) = e.run(&["network", "disconnect", "front", "app"]);
    assert_eq!(code, Some(125));
    assert!(err.contains("the network it was created on"), "{err}");

    e.ok(&["network", "disconnect", "back", "app"]);
    let ifaces = e.ok(&["exec", "app", "ip", "-o", "link"]);
    assert!(!ifaces.contains("eth1"), "{ifaces}");
    assert_eq!(nslookup_addresses(&e, "app", "db"), None);
    assert!(e.inspect("app")["NetworkSettings"]["Networks"]["back"].is_null());

    // A stopped container joins at its next start, as its next interface.
    e.ok(&["stop", "-t", "1", "app"]);
    e.ok(&["network", "connect", "back", "app"]);
    assert!(e.inspect("app")["NetworkSettings"]["Networks"]["back"]["InterfaceName"].is_null());
    e.ok(&["start", "app"]);
    assert_eq!(
        e.inspect("app")["NetworkSettings"]["Networks"]["back"]["InterfaceName"],
        "eth1"
    );
    let body = eventually("db by name after a start", Duration::from_secs(15), || {
        let (code, out) = fetch(&e, "app", "db");
        (code == Some(0)).then_some(out)
    });
    assert_eq!(body, "rows\n");

    // Only the network nobody is on goes.
    assert_eq!(e.ok(&["network", "prune"]), "Deleted Networks:\nspare\n");
    assert_eq!(e.ok(&["network", "ls", "-q"]), "back\nfront\n");
}

#[test]
fn add_host_dns_and_dns_search_land_in_the_containers_files() {
    let e = Env::new("dns_files");
    let (code, out, err) = e.run(&[
        "run",
        "--rm",
        "--hostname",
        "box",
        "--add-host",
        "db.local:10.9.8.7",
        "--add-host",
        "v6.local:fd00::7",
        "--dns",
        "192.0.2.53",
        "--dns-search",
        "corp.test",
        "busybox",
        "sh",
        "-c",
        "cat /etc/hosts; echo ---; cat /etc/resolv.conf",
    ]);
    assert_eq!(code, Some(0), "{err}");
    let (hosts, resolv) = out.split_once("---\n").unwrap();
    assert!(hosts.contains("\tbox\n"), "{hosts}");
    assert!(
        hosts.ends_with("10.9.8.7\tdb.local\nfd00::7\tv6.local\n"),
        "{hosts}"
    );
    assert_eq!(resolv, "nameserver 192.0.2.53\nsearch corp.test\n");
    let (code, _, err) = e.run(&["run", "--rm", "--network-alias", "x", "busybox", "true"]);
    assert_eq!(code, Some(125));
    assert!(
        err.contains("need a user-defined network, not bridge"),
        "{err}"
    );
    let (code, _, err) = e.run(&["run", "--rm", "--add-host", "nocolon", "busybox", "true"]);
    assert_eq!(code, Some(125));
    assert!(err.contains("invalid --add-host"), "{err}");
}

#[test]
fn a_restarted_daemon_keeps_answering_for_running_containers() {
    let e = Env::new("dns_restart");
    e.ok(&["network", "create", "front"]);
    e.ok(&[
        "run",
        "-d",
        "--name",
        "web",
        "--network",
        "front",
        "busybox",
        "sh",
        "-c",
        &httpd("still-here"),
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
        "1000",
    ]);
    let web_ip = network_ip(&e, "web", "front");
    let pid = e.env.daemon_pid().expect("a daemon runs");
    assert_eq!(e.env.http("POST", "/v1/shutdown").status, 202);
    eventually("the daemon to exit", Duration::from_secs(10), || {
        (!std::path::Path::new(&format!("/proc/{pid}")).exists()).then_some(())
    });
    // The next command starts a new daemon; the containers kept running meanwhile.
    let ps = e.ok(&["ps", "--format", "json"]);
    assert_eq!(ps.lines().count(), 2, "{ps}");
    assert_ne!(e.env.daemon_pid(), Some(pid));
    let found = eventually(
        "web's name after the restart",
        Duration::from_secs(15),
        || nslookup_addresses(&e, "client", "web"),
    );
    assert_eq!(found, vec![web_ip]);
    let (code, out) = fetch(&e, "client", "web");
    assert_eq!((code, out.as_str()), (Some(0), "still-here\n"));
}

#[test]
fn concurrent_runs_get_distinct_addresses_and_a_waiting_client_blocks_nobody() {
    let e = Env::new("daemon_concurrent_runs");
    e.ok(&["network", "create", "front"]);
    e.ok(&["run", "-d", "--name", "sleeper", "busybox", "sleep", "1000"]);
    // A client waiting for a container's exit holds a request open in the daemon.
    let (waiter, _stdout) = e.env.spawn(&["wait", "sleeper"]);
    let children: Vec<_> = (0..6)
        .map(|i| {
            e.env
                .command()
                .args([
                    "run",
                    "-d",
                    "--name",
                    &format!("c{i}"),
                    "--network",
                    "front",
                ])
                .args(["--network-alias", "pool", "busybox", "sleep", "1000"])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let mut ips: Vec<String> = (0..6)
        .map(|i| network_ip(&e, &format!("c{i}"), "front"))
        .collect();
    ips.sort();
    ips.dedup();
    assert_eq!(ips.len(), 6, "{ips:?}");
    // The shared alias answers with every container that has it.
    let mut pool = nslookup_addresses(&e, "c0", "pool").unwrap();
    pool.sort();
    assert_eq!(pool, ips);
    assert_eq!(e.ok(&["ps", "-q"]).lines().count(), 7);
    e.ok(&["kill", "sleeper"]);
    assert_eq!(e.env.wait_spawned(waiter, Duration::from_secs(20)), Some(0));
}

#[test]
fn network_create_options_shape_the_network_and_its_containers() {
    let e = Env::new("network_options");
    // The last /24 of this root's own /20 (see `net_config`), so no other test has it.
    let h = crate::run::root_hash(&e.env.root);
    let (second, third) = (100 + (h >> 16) % 100, (((h >> 24) & 0x0f) << 4) + 15);
    let subnet = format!("10.{second}.{third}.0/24");
    let gateway = format!("10.{second}.{third}.254");
    e.ok(&[
        "network",
        "create",
        "--subnet",
        &subnet,
        "--gateway",
        &gateway,
        "--ipv6",
        "--label",
        "team=web",
        "-o",
        "com.docker.network.driver.mtu=1400",
        "front",
    ]);
    let net: serde_json::Value =
        serde_json::from_str(&e.ok(&["network", "inspect", "front"])).unwrap();
    assert_eq!(net[0]["subnet"], subnet.as_str());
    assert_eq!(net[0]["gateway"], gateway.as_str());
    assert_eq!(net[0]["mtu"], 1400);
    assert_eq!(net[0]["labels"]["team"], "web");
    let subnet6 = net[0]["subnet6"].as_str().unwrap().to_string();
    // `fd89:…::/64` -> `fd89:…::99`.
    let ip6 = format!(
        "{}::99",
        subnet6.trim_end_matches("/64").trim_end_matches(':')
    );
    let (code, out, err) = e.run(&[
        "run",
        "--rm",
        "--network",
        "front",
        "--ip6",
        &ip6,
        "busybox",
        "sh",
        "-c",
        "ip -o link show eth0; ip -o -6 addr show eth0 scope global; cat /etc/resolv.conf",
    ]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains(" mtu 1400 "), "{out}");
    assert!(out.contains(&format!("inet6 {ip6}/64")), "{out}");
    assert!(out.ends_with(&format!("nameserver {gateway}\n")), "{out}");
    let (code, _, err) = e.run(&["network", "create", "-o", "colour=blue", "x"]);
    assert_eq!(code, Some(125));
    assert!(err.contains("unknown network option"), "{err}");
}
