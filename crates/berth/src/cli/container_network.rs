//! `berth network create|ls|rm|inspect`: bridge networks of this root, for `run --network`.

use berth_engine::containers::Containers;
use clap::Subcommand;

use super::GlobalArgs;
use super::container::{CliError, open};
use super::container_run::block_on_c;

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
        /// Subnet in CIDR form (default: the next free one of the root's pool).
        #[arg(long)]
        subnet: Option<String>,
        /// No way out: no masquerade and no default route in containers.
        #[arg(long)]
        internal: bool,
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
}

/// Runs `berth network …`.
pub fn run(global: &GlobalArgs, args: &NetworkArgs) -> Result<(), CliError> {
    let c: Containers = open(global)?;
    match &args.command {
        NetworkCommand::Create {
            subnet,
            internal,
            name,
        } => {
            let subnet = subnet
                .as_deref()
                .map(|s| {
                    s.parse()
                        .map_err(|_| CliError::Usage(format!("invalid subnet {s:?}")))
                })
                .transpose()?;
            let n = block_on_c(c.create_network(name, subnet, *internal))?;
            println!("{}", n.id);
        }
        NetworkCommand::Ls { quiet } => {
            let list = block_on_c(c.networks())?;
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
                block_on_c(c.remove_network(name))?;
                println!("{name}");
            }
        }
        NetworkCommand::Inspect { names } => {
            let list = names
                .iter()
                .map(|n| block_on_c(c.network(n)))
                .collect::<Result<Vec<_>, _>>()?;
            println!("{}", serde_json::to_string_pretty(&list)?);
        }
    }
    Ok(())
}
