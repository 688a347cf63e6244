//! Joining an existing network namespace (the one the net layer prepared) instead of
//! creating one.

mod common;

use std::process::Command;

use common::Fixture;

/// A named network namespace holding a veth pair (this kernel has no dummy links),
/// removed on drop.
struct NetNs {
    name: String,
}

impl NetNs {
    fn new(name: &str, link: &str, peer: &str) -> Self {
        let run = |args: &[&str]| {
            let st = Command::new("ip")
                .args(args)
                .status()
                .expect("run ip (iproute2)");
            assert!(st.success(), "ip {args:?} failed");
        };
        run(&["netns", "add", name]);
        let ns = Self {
            name: name.to_owned(),
        };
        run(&[
            "-n", name, "link", "add", link, "type", "veth", "peer", "name", peer,
        ]);
        ns
    }

    fn path(&self) -> std::path::PathBuf {
        std::path::Path::new("/run/netns").join(&self.name)
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

#[test]
fn container_joins_the_given_network_namespace() {
    let f = Fixture::new("netns");
    let tag = std::process::id() % 100_000;
    let ns = NetNs::new(
        &format!("berthrt{tag}"),
        &format!("berthd{tag}"),
        &format!("berthe{tag}"),
    );
    let mut req = f.sh("ls /sys/class/net | sort | tr '\\n' ' '");
    req.netns = Some(ns.path());
    let out = f.run(req);
    assert_eq!(
        out.stdout,
        format!("berthd{tag} berthe{tag} lo "),
        "stderr: {}",
        out.stderr
    );
}

#[test]
fn without_a_path_the_container_gets_an_empty_network_namespace() {
    let f = Fixture::new("netnsnew");
    let out = f.run(f.sh("ls /sys/class/net | tr '\\n' ' '"));
    assert_eq!(out.stdout, "lo ");
}
