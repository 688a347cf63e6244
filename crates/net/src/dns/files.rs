//! Content of a container's `/etc/resolv.conf` and `/etc/hosts`.
//!
//! The engine writes these files into the container's rootfs (or bind-mounts them); this module
//! only decides what they say.

use std::fmt::Write as _;
use std::net::IpAddr;

/// `/etc/resolv.conf`: `nameservers` (the network gateways where berth's DNS server listens, or
/// the user's `dns:` servers), `search` domains (`dns_search`) and `options` (`dns_opt`).
pub fn resolv_conf(nameservers: &[IpAddr], search: &[String], options: &[String]) -> String {
    let mut s = String::new();
    for ns in nameservers {
        let _ = writeln!(s, "nameserver {ns}");
    }
    if !search.is_empty() {
        let _ = writeln!(s, "search {}", search.join(" "));
    }
    if !options.is_empty() {
        let _ = writeln!(s, "options {}", options.join(" "));
    }
    s
}

/// `/etc/hosts`: loopback entries, the container's own addresses under its `hostname` (and
/// `hostname.domainname` when a domain is set), then `extra_hosts` in the order given.
pub fn hosts(
    hostname: &str,
    domainname: Option<&str>,
    addresses: &[IpAddr],
    extra_hosts: &[(String, IpAddr)],
) -> String {
    let mut s = String::from(
        "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n\
         fe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n",
    );
    let names = match domainname.filter(|d| !d.is_empty()) {
        Some(domain) => format!("{hostname}.{domain} {hostname}"),
        None => hostname.to_string(),
    };
    for ip in addresses {
        let _ = writeln!(s, "{ip}\t{names}");
    }
    for (name, ip) in extra_hosts {
        let _ = writeln!(s, "{ip}\t{name}");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolv_conf_lists_servers_search_and_options() {
        let text = resolv_conf(
            &["10.89.0.1".parse().unwrap(), "fd00::1".parse().unwrap()],
            &["example.test".into(), "corp.test".into()],
            &["ndots:2".into()],
        );
        assert_eq!(
            text,
            "nameserver 10.89.0.1\nnameserver fd00::1\nsearch example.test corp.test\noptions ndots:2\n"
        );
    }

    #[test]
    fn hosts_has_own_name_and_extra_hosts() {
        let text = hosts(
            "web",
            Some("example.test"),
            &["10.89.0.2".parse().unwrap()],
            &[("db.local".into(), "192.0.2.10".parse().unwrap())],
        );
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "127.0.0.1\tlocalhost");
        assert_eq!(lines[6], "10.89.0.2\tweb.example.test web");
        assert_eq!(lines[7], "192.0.2.10\tdb.local");
        assert_eq!(
            hosts("a", None, &["10.0.0.2".parse().unwrap()], &[])
                .lines()
                .nth(6),
            Some("10.0.0.2\ta")
        );
    }
}
