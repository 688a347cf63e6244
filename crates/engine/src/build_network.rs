//! The network of `RUN --network=default` steps, as Docker's builder gives them: outbound
//! access through a bridge made for this one build, a veth pair per `RUN` container and
//! masquerading, all torn down when the build ends (also when a step failed).
//!
//! Each build gets its own [`berth_net::Net`] with its own state directory, link prefix
//! (`berthz` + 4 hex digits: never a prefix the daemon's roots use) and nftables table, so it
//! never touches the daemon's networks or firewall rules. The bridge is made on the first
//! `RUN` that needs it; its /24 comes from 10.234.0.0/16, starting at one derived from the
//! build's hash and skipping any a host route already covers, chosen under a host-wide lock
//! so parallel builds never pick the same one.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use berth_build::{RunNetwork, RunNetworkError};
use berth_net::ipam::IpamError;
use berth_net::{Endpoint, Net, NetConfig, NetError, NetworkSpec};
use nix::fcntl::{Flock, FlockArg};

/// The host-wide lock held while a build network picks its subnet.
const SUBNET_LOCK: &str = "/run/berth-build-net.lock";
/// The name of the one network of a build.
const NETWORK: &str = "build";

static SEQ: AtomicU64 = AtomicU64::new(0);

/// Why the build network could not be set up or taken down.
#[derive(Debug, thiserror::Error)]
pub enum BuildNetworkError {
    /// The async runtime for netlink and nft could not start.
    #[error("starting the build network's runtime")]
    Runtime(#[source] std::io::Error),
    /// A file of the build network could not be used.
    #[error("build network file {path}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// Creating, attaching or removing failed.
    #[error(transparent)]
    Net(#[from] NetError),
}

struct Live {
    rt: tokio::runtime::Runtime,
    net: Net,
}

/// A build's network: made on first use, removed by [`BuildNetwork::close`] or on drop.
pub struct BuildNetwork {
    config: NetConfig,
    hash: u32,
    live: Mutex<Option<Live>>,
}

impl std::fmt::Debug for BuildNetwork {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BuildNetwork")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

fn fnv1a(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0x811c_9dc5u32, |h, b| {
        (h ^ u32::from(*b)).wrapping_mul(0x0100_0193)
    })
}

/// The network configuration of the build whose hash is `h`: state in `<dir>/<h>`.
fn config_for(dir: &Path, h: u32) -> NetConfig {
    let mut config = NetConfig::new(dir.join(format!("{h:08x}")));
    config.prefix = format!("berthz{:04x}", h & 0xffff);
    config.nft_table = format!("berthbuild_{h:08x}");
    config
}

impl BuildNetwork {
    /// A network for one build whose state lives under `dir` (e.g. `<image store>/build-net`).
    /// Nothing on the host changes until a `RUN` step connects.
    pub fn new(dir: &Path) -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        let unique = format!(
            "{}-{}-{nanos}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed),
            dir.display()
        );
        let h = fnv1a(unique.as_bytes());
        Self {
            hash: h,
            config: config_for(dir, h),
            live: Mutex::new(None),
        }
    }

    /// Removes what builds that died without cleaning up (killed, crashed) left under `dir`:
    /// their bridges, veths, nftables tables and state directories. A build still running
    /// holds its state directory's lock and is left alone. Returns how many were removed.
    pub async fn remove_orphans(dir: &Path) -> Result<usize, BuildNetworkError> {
        let entries = match std::fs::read_dir(dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
            Err(source) => {
                return Err(BuildNetworkError::Io {
                    path: dir.to_path_buf(),
                    source,
                });
            }
        };
        let mut removed = 0;
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let Ok(h) = u32::from_str_radix(&name, 16) else {
                continue;
            };
            // Locked: its build is alive.
            let Ok(net) = Net::open(config_for(dir, h)).await else {
                continue;
            };
            if let Ok(n) = net.inspect(NETWORK).await {
                for id in n.attachments.keys() {
                    let _ = net.detach(NETWORK, id).await;
                }
                net.remove_network(NETWORK).await?;
            }
            drop(net);
            let _ = std::fs::remove_dir_all(e.path());
            removed += 1;
        }
        Ok(removed)
    }

    /// The link-name prefix of this build's bridge and veths (tests check nothing is left).
    pub fn link_prefix(&self) -> &str {
        &self.config.prefix
    }

    /// The nftables table of this build (tests check nothing is left).
    pub fn nft_table(&self) -> &str {
        &self.config.nft_table
    }

    fn start(&self) -> Result<Live, BuildNetworkError> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .map_err(BuildNetworkError::Runtime)?;
        let lock_path = PathBuf::from(SUBNET_LOCK);
        let io = |source| BuildNetworkError::Io {
            path: lock_path.clone(),
            source,
        };
        let file = File::create(&lock_path).map_err(io)?;
        let lock = Flock::lock(file, FlockArg::LockExclusive)
            .map_err(|(_, e)| io(std::io::Error::from(e)))?;
        let made = rt.block_on(async {
            if let Some(parent) = self.config.state_dir.parent() {
                // Best effort: a leftover that cannot be removed must not stop this build.
                let _ = Self::remove_orphans(parent).await;
            }
            let net = Net::open(self.config.clone()).await?;
            // Start at a /24 of this build's own (parallel builds rarely share a subnet, even
            // one after the other), skipping what host routes already cover.
            let mut last = None;
            for k in 0..=255u32 {
                let third = ((self.hash >> 16).wrapping_add(k) & 0xff) as u8;
                let subnet = ipnet::Ipv4Net::new(std::net::Ipv4Addr::new(10, 234, third, 0), 24)
                    .expect("24 is a valid IPv4 prefix length");
                let spec = NetworkSpec {
                    subnet: Some(subnet),
                    ..NetworkSpec::named(NETWORK)
                };
                match net.create_network(spec).await {
                    Ok(_) => return Ok(net),
                    Err(e @ NetError::Ipam(IpamError::Overlap { .. })) => last = Some(e),
                    Err(e) => return Err(e),
                }
            }
            Err(last.unwrap_or(NetError::Ipam(IpamError::PoolExhausted {
                pool: "10.234.0.0/16".into(),
                prefix: 24,
            })))
        });
        drop(lock);
        match made {
            Ok(net) => Ok(Live { rt, net }),
            Err(e) => {
                let _ = std::fs::remove_dir_all(&self.config.state_dir);
                rt.shutdown_background();
                Err(e.into())
            }
        }
    }

    /// Removes the bridge, its firewall table and the state directory. Idempotent.
    pub fn close(&self) -> Result<(), BuildNetworkError> {
        let live = self.live.lock().unwrap_or_else(|p| p.into_inner()).take();
        let Some(Live { rt, net }) = live else {
            return Ok(());
        };
        let result = rt.block_on(async {
            // Attachments still recorded (a step that could not disconnect): their veths go.
            if let Ok(n) = net.inspect(NETWORK).await {
                for id in n.attachments.keys() {
                    let _ = net.detach(NETWORK, id).await;
                }
            }
            net.remove_network(NETWORK).await
        });
        drop(net);
        rt.shutdown_background();
        let _ = std::fs::remove_dir_all(&self.config.state_dir);
        result.map_err(Into::into)
    }
}

impl RunNetwork for BuildNetwork {
    fn connect(&self, id: &str, netns: &Path) -> Result<(), RunNetworkError> {
        let mut live = self.live.lock().unwrap_or_else(|p| p.into_inner());
        if live.is_none() {
            *live = Some(self.start()?);
        }
        let l = live.as_ref().ok_or("the build network is gone")?;
        l.rt.block_on(l.net.attach(NETWORK, Endpoint::new(id, netns, "eth0")))?;
        Ok(())
    }

    fn disconnect(&self, id: &str) -> Result<(), RunNetworkError> {
        let live = self.live.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(l) = live.as_ref() {
            l.rt.block_on(l.net.detach(NETWORK, id))?;
        }
        Ok(())
    }
}

impl Drop for BuildNetwork {
    fn drop(&mut self) {
        let _ = self.close();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_fit_and_never_clash_with_root_prefixes() {
        let a = BuildNetwork::new(Path::new("/var/lib/berth/image/build-net"));
        let b = BuildNetwork::new(Path::new("/var/lib/berth/image/build-net"));
        assert!(a.link_prefix().starts_with("berthz"));
        // prefix + kind letter + up to 4 digits within IFNAMSIZ - 1.
        assert_eq!(a.link_prefix().len(), 10);
        assert_ne!(a.nft_table(), b.nft_table());
    }
}
