//! Coexistence with Docker's firewall.
//!
//! Docker sets the policy of iptables' `filter FORWARD` chain to DROP and loads `br_netfilter`,
//! so even traffic between two containers on one berth bridge passes that chain and would be
//! dropped. A packet must be accepted by *every* base chain on its hook, so berth's own nftables
//! table cannot overrule it. Docker reserves the `DOCKER-USER` chain (jumped to first from
//! `FORWARD`) for the administrator's rules and never flushes it; berth puts exactly two rules
//! per bridge there (`-i <bridge> -j ACCEPT`, `-o <bridge> -j ACCEPT`), each tagged with the
//! comment `berth:<nft_table>`, and touches no other rule or chain. What may really pass is
//! still decided by berth's own table (isolation, internal networks, established/DNAT only into
//! a bridge), which sees the same packets.
//!
//! Without a `DOCKER-USER` chain (no Docker) nothing is done. If Docker starts after berth
//! created networks, `Net::sync_firewall` puts the rules in place again.

use std::process::Stdio;

/// Errors adjusting Docker's `DOCKER-USER` chain.
#[derive(Debug, thiserror::Error)]
pub enum CoexistError {
    /// The tool could not be run.
    #[error("run {tool}")]
    Spawn {
        /// `iptables` or `ip6tables`.
        tool: &'static str,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// A rule change was refused.
    #[error("{tool} {args}: {stderr}")]
    Refused {
        /// `iptables` or `ip6tables`.
        tool: &'static str,
        /// The arguments.
        args: String,
        /// What it printed.
        stderr: String,
    },
}

const CHAIN: &str = "DOCKER-USER";

async fn run(tool: &'static str, args: &[&str]) -> Result<Option<String>, CoexistError> {
    let out = tokio::process::Command::new(tool)
        .arg("-w")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .await;
    match out {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(CoexistError::Spawn { tool, source }),
        Ok(out) if out.status.success() => Ok(Some(String::from_utf8_lossy(&out.stdout).into())),
        Ok(_) => Ok(None),
    }
}

async fn must(tool: &'static str, args: &[&str]) -> Result<(), CoexistError> {
    let out = tokio::process::Command::new(tool)
        .arg("-w")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .await
        .map_err(|source| CoexistError::Spawn { tool, source })?;
    if !out.status.success() {
        return Err(CoexistError::Refused {
            tool,
            args: args.join(" "),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(())
}

/// The `-D` argument lists that delete berth's rules tagged `comment` from `iptables -S` output.
pub fn rules_to_delete(listing: &str, comment: &str) -> Vec<Vec<String>> {
    let tagged = format!("\"{comment}\"");
    listing
        .lines()
        .filter(|l| l.starts_with(&format!("-A {CHAIN} ")))
        .filter(|l| l.split_whitespace().any(|w| w == tagged || w == comment))
        .map(|l| {
            let mut words: Vec<String> = l
                .split_whitespace()
                .map(|w| w.trim_matches('"').to_string())
                .collect();
            words[0] = "-D".into();
            words
        })
        .collect()
}

/// Makes `DOCKER-USER` (IPv4 and IPv6) accept traffic of exactly `bridges`, tagged `berth:<tag>`.
/// A no-op where the chain does not exist.
pub async fn sync(tag: &str, bridges: &[String]) -> Result<(), CoexistError> {
    let comment = format!("berth:{tag}");
    // The two tables are independent: both tools run at once (each start costs milliseconds).
    let (v4, v6) = futures::join!(
        sync_tool("iptables", &comment, bridges),
        sync_tool("ip6tables", &comment, bridges)
    );
    v4.and(v6)
}

/// [`sync`] for one of `iptables` and `ip6tables`.
async fn sync_tool(
    tool: &'static str,
    comment: &str,
    bridges: &[String],
) -> Result<(), CoexistError> {
    let Some(listing) = run(tool, &["-t", "filter", "-S", CHAIN]).await? else {
        return Ok(());
    };
    for rule in rules_to_delete(&listing, comment) {
        let args: Vec<&str> = rule.iter().map(String::as_str).collect();
        must(tool, &[&["-t", "filter"], args.as_slice()].concat()).await?;
    }
    for bridge in bridges {
        for dir in ["-i", "-o"] {
            let args = [
                "-t",
                "filter",
                "-I",
                CHAIN,
                dir,
                bridge,
                "-m",
                "comment",
                "--comment",
                comment,
                "-j",
                "ACCEPT",
            ];
            must(tool, &args).await?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_our_tagged_rules_are_deleted() {
        let listing = "-N DOCKER-USER\n\
            -A DOCKER-USER -i berthb0 -m comment --comment \"berth:berth\" -j ACCEPT\n\
            -A DOCKER-USER -o berthb0 -m comment --comment \"berth:berth\" -j ACCEPT\n\
            -A DOCKER-USER -i berthb1 -m comment --comment \"berth:berthT1\" -j ACCEPT\n\
            -A DOCKER-USER -s 10.0.0.0/8 -m comment --comment \"admin berth:berth\" -j DROP\n\
            -A DOCKER-USER -j RETURN\n";
        let rules = rules_to_delete(listing, "berth:berth");
        assert_eq!(
            rules,
            vec![
                "-D DOCKER-USER -i berthb0 -m comment --comment berth:berth -j ACCEPT"
                    .split(' ')
                    .map(String::from)
                    .collect::<Vec<_>>(),
                "-D DOCKER-USER -o berthb0 -m comment --comment berth:berth -j ACCEPT"
                    .split(' ')
                    .map(String::from)
                    .collect::<Vec<_>>(),
            ]
        );
    }
}
