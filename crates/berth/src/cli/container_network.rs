//! `berth network create|ls|inspect|rm|prune|connect|disconnect`: bridge networks of this
//! root, through the daemon.

use clap::Subcommand;

use super::GlobalArgs;
use super::container::{CliError, block_on, client};
use crate::api::networks::{Network, NetworkConnect, NetworkCreate, NetworkDisconnect, Pruned};
use crate::api::paths;

/// `berth network …`.
#[derive(Debug, clap::Args)]
pub struct NetworkArgs {
    #[command(subcommand)]
    command: NetworkCommand,
}

#[derive(Debug, Subcommand)]
enum NetworkCommand {
    /// Create a bridge network.
    Create {
        /// Subnet in CIDR form, IPv4 or IPv6 (default: the next free one of the root's pool).
        #[arg(long)]
        subnet: Vec<String>,
        /// IPv4 gateway (default: the subnet's first address).
        #[arg(long)]
        gateway: Option<String>,
        /// No way out: no masquerade and no default route in containers.
        #[arg(long)]
        internal: bool,
        /// Give the network an IPv6 subnet too.
        #[arg(long)]
        ipv6: bool,
        /// A label `KEY=VALUE`.
        #[arg(long)]
        label: Vec<String>,
        /// Driver option: `mtu=N` (also Docker's `com.docker.network.driver.mtu=N`).
        #[arg(short = 'o', long = "opt")]
        opt: Vec<String>,
        /// Network name.
        name: String,
    },
    /// List networks.
    #[command(alias = "list")]
    Ls {
        /// Print names only.
        #[arg(short = 'q', long)]
        quiet: bool,
    },
    /// Remove networks without containers.
    #[command(alias = "remove")]
    Rm {
        /// Network names.
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Show networks as JSON.
    Inspect {
        /// Network names.
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Remove every network no container is on (running or stopped).
    Prune {
        /// Do not ask (berth never asks; accepted for Docker's spelling).
        #[arg(short = 'f', long)]
        force: bool,
    },
    /// Connect a container to a network (a running one at once, as its next `ethN`).
    Connect {
        /// A further DNS name of the container on this network.
        #[arg(long)]
        alias: Vec<String>,
        /// A fixed IPv4 address.
        #[arg(long)]
        ip: Option<String>,
        /// Network name.
        network: String,
        /// Container name or id.
        container: String,
    },
    /// Disconnect a container from a network it joined with `connect`.
    Disconnect {
        /// Network name.
        network: String,
        /// Container name or id.
        container: String,
    },
}

/// The MTU among `-o` driver options; any other option is refused.
fn mtu_option(opts: &[String]) -> Result<Option<u32>, CliError> {
    let mut mtu = None;
    for o in opts {
        match o.split_once('=') {
            Some(("mtu" | "com.docker.network.driver.mtu", v)) => {
                mtu = Some(
                    v.parse()
                        .map_err(|_| CliError::Usage(format!("invalid MTU {v:?}")))?,
                );
            }
            _ => return Err(CliError::Usage(format!("unknown network option {o:?}"))),
        }
    }
    Ok(mtu)
}

/// Runs `berth network …`.
pub fn run(global: &GlobalArgs, args: &NetworkArgs) -> Result<(), CliError> {
    block_on(async {
        let c = client(global).await?;
        match &args.command {
            NetworkCommand::Create {
                subnet,
                gateway,
                internal,
                ipv6,
                label,
                opt,
                name,
            } => {
                let (subnet6, subnet4): (Vec<&String>, Vec<&String>) =
                    subnet.iter().partition(|s| s.contains(':'));
                let body = NetworkCreate {
                    name: name.clone(),
                    subnet: subnet4.first().map(|s| s.to_string()),
                    gateway: gateway.clone(),
                    internal: *internal,
                    enable_ipv6: *ipv6,
                    subnet6: subnet6.first().map(|s| s.to_string()),
                    mtu: mtu_option(opt)?,
                    labels: label
                        .iter()
                        .map(|l| match l.split_once('=') {
                            Some((k, v)) => (k.to_owned(), v.to_owned()),
                            None => (l.clone(), String::new()),
                        })
                        .collect(),
                };
                let n: Network = c.post_json(paths::NETWORKS, &body).await?;
                println!("{}", n.id);
            }
            NetworkCommand::Ls { quiet } => {
                let list: Vec<Network> = c.get(paths::NETWORKS).await?;
                if !quiet {
                    println!("{:<14}{:<20}{:<16}SUBNET", "NETWORK ID", "NAME", "BRIDGE");
                }
                for n in list {
                    if *quiet {
                        println!("{}", n.name);
                    } else {
                        let id: String = n.id.chars().take(12).collect();
                        println!("{id:<14}{:<20}{:<16}{}", n.name, n.bridge, n.subnet);
                    }
                }
            }
            NetworkCommand::Rm { names } => {
                for name in names {
                    let _: Pruned = c.delete(&paths::fill(paths::NETWORK, name)).await?;
                    println!("{name}");
                }
            }
            NetworkCommand::Inspect { names } => {
                let mut list = Vec::new();
                for name in names {
                    let n: Network = c.get(&paths::fill(paths::NETWORK, name)).await?;
                    list.push(n);
                }
                println!("{}", serde_json::to_string_pretty(&list)?);
            }
            NetworkCommand::Prune { force: _ } => {
                let pruned: Pruned = c.post(paths::NETWORKS_PRUNE).await?;
                if !pruned.removed.is_empty() {
                    println!("Deleted Networks:");
                    for name in pruned.removed {
                        println!("{name}");
                    }
                }
            }
            NetworkCommand::Connect {
                alias,
                ip,
                network,
                container,
            } => {
                let body = NetworkConnect {
                    container: container.clone(),
                    aliases: alias.clone(),
                    ip: ip.clone(),
                };
                let _: Network = c
                    .post_json(&paths::fill(paths::NETWORK_CONNECT, network), &body)
                    .await?;
            }
            NetworkCommand::Disconnect { network, container } => {
                let body = NetworkDisconnect {
                    container: container.clone(),
                };
                let _: Network = c
                    .post_json(&paths::fill(paths::NETWORK_DISCONNECT, network), &body)
                    .await?;
            }
        }
        Ok(())
    })
}
