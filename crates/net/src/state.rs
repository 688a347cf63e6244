//! Crash-safe persistence of berth's network state.
//!
//! Two kinds of state, kept apart because they live as long as different things:
//!
//! ```text
//! <state_dir>/lock                 held (flock, exclusive) by the one `Net` that owns the dir
//! <state_dir>/networks/<name>.json a network's definition (survives reboots; fsynced)
//! <run_dir>/leases/<name>.json     its attachments, i.e. the address leases (runtime state)
//! <run_dir>/ports.json             published ports of every container (runtime state)
//! ```
//!
//! Every file is replaced atomically (written to a temporary file in the same directory, then
//! renamed over the old one), so a crashed process leaves either the old or the new content,
//! never a torn file. Definitions are also fsynced (file and directory): a network created
//! must still exist after a power loss. Leases and ports describe veths, namespaces and DNAT
//! rules, which do not survive a reboot either; they skip the fsync, which keeps attach and
//! detach in the low milliseconds (an fsync costs ~12 ms on a virtual disk). `run_dir` is meant
//! to be on tmpfs (`/run/berth/net`), where a reboot clears them together with the kernel state.
//!
//! Leases are written *before* the kernel objects they describe are created, so an address can
//! never be handed out twice, even across a crash; what a crash leaves behind is removed by
//! `Net::cleanup_orphans`.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};

use ipnet::{Ipv4Net, Ipv6Net};
use nix::fcntl::{Flock, FlockArg};
use serde::{Deserialize, Serialize};

use crate::ports::Protocol;

/// Errors of the state store.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// An I/O operation on a state file failed.
    #[error("{op} {path}")]
    Io {
        /// What was attempted.
        op: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A state file does not hold valid JSON of the expected shape.
    #[error("corrupt state file {path}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// The parse error.
        #[source]
        source: serde_json::Error,
    },
    /// Another process holds the state directory.
    #[error("state directory {path} is in use by another berth process")]
    Locked {
        /// The lock file.
        path: PathBuf,
        /// The flock error.
        #[source]
        source: nix::Error,
    },
}

trait IoContext<T> {
    fn at(self, op: &'static str, path: &Path) -> Result<T, StateError>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn at(self, op: &'static str, path: &Path) -> Result<T, StateError> {
        self.map_err(|source| StateError::Io {
            op,
            path: path.to_path_buf(),
            source,
        })
    }
}

/// The IPv6 side of a dual-stack network.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ipv6Config {
    /// The IPv6 subnet.
    pub subnet: Ipv6Net,
    /// The gateway address, on the bridge.
    pub gateway: Ipv6Addr,
}

/// A network as berth records it (also what `Net::list` and `Net::create_network` return).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Network {
    /// Random identifier (64 hex digits).
    pub id: String,
    /// The user-facing name, unique per state dir.
    pub name: String,
    /// The Linux bridge's name (starts with the configured prefix).
    pub bridge: String,
    /// The IPv4 subnet.
    pub subnet: Ipv4Net,
    /// The gateway address, on the bridge.
    pub gateway: Ipv4Addr,
    /// The IPv6 subnet and gateway when IPv6 is enabled.
    pub ipv6: Option<Ipv6Config>,
    /// No route out: no masquerade, traffic may only stay on the bridge.
    pub internal: bool,
    /// MTU of the bridge and every veth on it.
    pub mtu: u32,
    /// User labels.
    pub labels: BTreeMap<String, String>,
    /// Containers attached to this network, keyed by container id.
    pub attachments: BTreeMap<String, Attachment>,
}

/// One container's interface on one network.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attachment {
    /// The container.
    pub container_id: String,
    /// The network's name.
    pub network: String,
    /// The interface name inside the container (`eth0`, ...).
    pub ifname: String,
    /// The host end of the veth pair (on the bridge).
    pub host_veth: String,
    /// The container's IPv4 address.
    pub ip: Ipv4Addr,
    /// The prefix length of the subnet.
    pub prefix_len: u8,
    /// The container's IPv6 address, when the network has IPv6.
    pub ip6: Option<Ipv6Addr>,
    /// The MAC address of the container's interface (`02:42:..`).
    pub mac: String,
    /// The network's IPv4 gateway (absent for internal networks: no default route).
    pub gateway: Option<Ipv4Addr>,
    /// The network's IPv6 gateway, when IPv6 is enabled and the network is not internal.
    pub gateway6: Option<Ipv6Addr>,
    /// Names this container answers to on this network (DNS).
    pub aliases: Vec<String>,
    /// Path of the container's network namespace at attach time.
    pub netns_path: PathBuf,
}

/// A published port as chosen (the host port is resolved when 0 or a range was asked for).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Published {
    /// The container that owns the mapping.
    pub container_id: String,
    /// The protocol.
    pub protocol: Protocol,
    /// The host address it answers on (`None`: every host address, including 127.0.0.1).
    pub host_ip: Option<IpAddr>,
    /// The host port.
    pub host_port: u16,
    /// The container address traffic is forwarded to.
    pub container_ip: Ipv4Addr,
    /// The container port.
    pub container_port: u16,
}

/// The on-disk store. Holds the directory lock for as long as it lives.
#[derive(Debug)]
pub(crate) struct Store {
    root: PathBuf,
    run: PathBuf,
    _lock: Flock<File>,
}

/// Whether a write must survive a power loss.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Durability {
    Fsync,
    Atomic,
}

impl Store {
    /// Opens (creating) the state and run directories and takes the lock.
    pub(crate) fn open(root: &Path, run: &Path) -> Result<Store, StateError> {
        let networks = root.join("networks");
        fs::create_dir_all(&networks).at("create directory", &networks)?;
        let leases = run.join("leases");
        fs::create_dir_all(&leases).at("create directory", &leases)?;
        let lock_path = root.join("lock");
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .at("open", &lock_path)?;
        let lock = Flock::lock(file, FlockArg::LockExclusiveNonblock).map_err(|(_, source)| {
            StateError::Locked {
                path: lock_path.clone(),
                source,
            }
        })?;
        Ok(Store {
            root: root.to_path_buf(),
            run: run.to_path_buf(),
            _lock: lock,
        })
    }

    fn network_path(&self, name: &str) -> PathBuf {
        self.root.join("networks").join(format!("{name}.json"))
    }

    fn leases_path(&self, name: &str) -> PathBuf {
        self.run.join("leases").join(format!("{name}.json"))
    }

    /// Loads every network file.
    pub(crate) fn load_networks(&self) -> Result<BTreeMap<String, Network>, StateError> {
        let dir = self.root.join("networks");
        let mut out = BTreeMap::new();
        for entry in fs::read_dir(&dir).at("read directory", &dir)? {
            let path = entry.at("read directory", &dir)?.path();
            if path.extension().and_then(|e| e.to_str()) != Some("json") {
                continue;
            }
            let mut network: Network = read_json(&path)?;
            let leases = self.leases_path(&network.name);
            if leases.exists() {
                network.attachments = read_json(&leases)?;
            }
            out.insert(network.name.clone(), network);
        }
        Ok(out)
    }

    /// Writes a network's definition (durably) and its leases.
    pub(crate) fn save_network(&self, network: &Network) -> Result<(), StateError> {
        let definition = Network {
            attachments: BTreeMap::new(),
            ..network.clone()
        };
        write_json(
            &self.network_path(&network.name),
            &definition,
            Durability::Fsync,
        )?;
        self.save_leases(network)
    }

    /// Writes a network's leases (its attachments) atomically.
    pub(crate) fn save_leases(&self, network: &Network) -> Result<(), StateError> {
        write_json(
            &self.leases_path(&network.name),
            &network.attachments,
            Durability::Atomic,
        )
    }

    /// Removes a network's definition and leases.
    pub(crate) fn delete_network(&self, name: &str) -> Result<(), StateError> {
        for path in [self.leases_path(name), self.network_path(name)] {
            match fs::remove_file(&path) {
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                other => other.at("remove", &path),
            }?;
        }
        sync_dir(&self.root.join("networks"))
    }

    /// Loads the published ports.
    pub(crate) fn load_ports(&self) -> Result<Vec<Published>, StateError> {
        let path = self.run.join("ports.json");
        if !path.exists() {
            return Ok(Vec::new());
        }
        read_json(&path)
    }

    /// Writes the published ports atomically.
    pub(crate) fn save_ports(&self, ports: &[Published]) -> Result<(), StateError> {
        write_json(&self.run.join("ports.json"), &ports, Durability::Atomic)
    }
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, StateError> {
    let bytes = fs::read(path).at("read", path)?;
    serde_json::from_slice(&bytes).map_err(|source| StateError::Corrupt {
        path: path.to_path_buf(),
        source,
    })
}

/// Writes `value` as JSON to `path` atomically (temp file, rename); with `Fsync`, also durably
/// (fsync the file before the rename and the directory after it).
fn write_json<T: Serialize>(
    path: &Path,
    value: &T,
    durability: Durability,
) -> Result<(), StateError> {
    let bytes = serde_json::to_vec_pretty(value).map_err(|source| StateError::Corrupt {
        path: path.to_path_buf(),
        source,
    })?;
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = path.with_extension("json.tmp");
    let mut file = File::create(&tmp).at("create", &tmp)?;
    file.write_all(&bytes).at("write", &tmp)?;
    if durability == Durability::Fsync {
        file.sync_all().at("fsync", &tmp)?;
    }
    fs::rename(&tmp, path).at("rename into place", path)?;
    if durability == Durability::Fsync {
        sync_dir(dir)?;
    }
    Ok(())
}

fn sync_dir(dir: &Path) -> Result<(), StateError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .at("fsync directory", dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(name: &str) -> Network {
        Network {
            id: "ab".repeat(32),
            name: name.to_string(),
            bridge: "berthb0".into(),
            subnet: "10.1.2.0/24".parse().unwrap(),
            gateway: "10.1.2.1".parse().unwrap(),
            ipv6: None,
            internal: false,
            mtu: 1500,
            labels: BTreeMap::new(),
            attachments: BTreeMap::new(),
        }
    }

    fn attachment(id: &str) -> Attachment {
        Attachment {
            container_id: id.into(),
            network: "front".into(),
            ifname: "eth0".into(),
            host_veth: "berthv0".into(),
            ip: "10.1.2.2".parse().unwrap(),
            prefix_len: 24,
            ip6: None,
            mac: "02:42:0a:01:02:02".into(),
            gateway: Some("10.1.2.1".parse().unwrap()),
            gateway6: None,
            aliases: vec!["web".into()],
            netns_path: "/run/netns/x".into(),
        }
    }

    #[test]
    fn networks_round_trip_and_delete() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), &dir.path().join("run")).unwrap();
        let mut front = sample("front");
        front.attachments.insert("c1".into(), attachment("c1"));
        store.save_network(&front).unwrap();
        store.save_network(&sample("back")).unwrap();
        let loaded = store.load_networks().unwrap();
        assert_eq!(loaded.keys().collect::<Vec<_>>(), vec!["back", "front"]);
        assert_eq!(loaded["front"], front);
        // The definition file holds no leases; they live in the run dir.
        let def = fs::read_to_string(dir.path().join("networks/front.json")).unwrap();
        assert!(!def.contains("\"c1\""), "{def}");
        assert!(dir.path().join("run/leases/front.json").exists());
        // Without its leases file (after a reboot cleared the run dir) a network has no attachments.
        fs::remove_file(dir.path().join("run/leases/front.json")).unwrap();
        assert_eq!(store.load_networks().unwrap()["front"].attachments.len(), 0);
        store.delete_network("front").unwrap();
        assert_eq!(store.load_networks().unwrap().len(), 1);
        assert!(!dir.path().join("networks/front.json.tmp").exists());
    }

    #[test]
    fn second_store_on_same_dir_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let run = dir.path().join("run");
        let _first = Store::open(dir.path(), &run).unwrap();
        let second = Store::open(dir.path(), &run);
        assert!(matches!(second, Err(StateError::Locked { .. })));
    }

    #[test]
    fn corrupt_file_names_its_path() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), &dir.path().join("run")).unwrap();
        let path = dir.path().join("networks/bad.json");
        fs::write(&path, b"{").unwrap();
        match store.load_networks() {
            Err(StateError::Corrupt { path: p, .. }) => assert_eq!(p, path),
            other => panic!("expected Corrupt, got {other:?}"),
        }
    }
}
