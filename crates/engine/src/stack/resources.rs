//! The stack's networks and named volumes: created before its containers, removed by
//! `down` (volumes only with `-v`), and the secret and config files of its containers.
//!
//! Volumes: `<root>/volumes/<name>/_data`, recorded as a [`VolumeDoc`] (store kind
//! `Volume`) labelled with the project. A new, empty volume gets the content of the image
//! at its mount point, as Docker does. `driver_opts` `type: none, o: bind, device: DIR`
//! binds a host directory; `type: tmpfs` gives each container its own tmpfs (Docker's
//! local driver shares one tmpfs between the containers of a host; berth does not keep
//! host mounts outside containers, so that nothing is left mounted after `down`).

use std::collections::BTreeMap;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use berth_compose::Project;
use berth_net::{Net, NetError, NetworkSpec};
use serde::{Deserialize, Serialize};

use super::desired::{VolumeSource, labels, network_name, volume_name};
use super::{Progress, ProgressSink, StackError, Status};
use crate::store::{Document, Kind, Store};

/// A named volume (`<root>/state/volumes/<name>.json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VolumeDoc {
    /// Name.
    pub name: String,
    /// `local`.
    pub driver: String,
    /// Driver options.
    #[serde(default)]
    pub driver_opts: BTreeMap<String, String>,
    /// Labels (the project and key of the stack that made it).
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Where its data lives.
    pub mountpoint: PathBuf,
    /// Creation time, RFC 3339.
    pub created: String,
}

impl Document for VolumeDoc {
    const KIND: Kind = Kind::Volume;
}

fn io<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> StackError + 'a {
    move |source| StackError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

/// Creates the project's networks that do not exist yet; external ones must exist.
pub async fn ensure_networks(
    net: &Net,
    project: &Project,
    progress: &ProgressSink,
) -> Result<(), StackError> {
    for (key, n) in &project.networks {
        let Some(name) = network_name(project, key) else {
            continue;
        };
        let exists = net.inspect(&name).await.is_ok();
        if n.external == Some(true) {
            if !exists {
                return Err(StackError::ExternalNetwork(name));
            }
            continue;
        }
        if exists {
            continue;
        }
        let pool = n.ipam.as_ref().and_then(|i| i.config.first());
        let subnet = match pool.and_then(|p| p.subnet.as_deref()) {
            Some(s) => Some(s.parse().map_err(|_| StackError::InvalidSubnet {
                network: name.clone(),
                value: s.to_owned(),
            })?),
            None => None,
        };
        let gateway = match pool.and_then(|p| p.gateway.as_deref()) {
            Some(s) => Some(s.parse().map_err(|_| StackError::InvalidSubnet {
                network: name.clone(),
                value: s.to_owned(),
            })?),
            None => None,
        };
        let mut label_map: BTreeMap<String, String> = n
            .labels
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        label_map.insert(labels::PROJECT.to_owned(), project.name.clone());
        label_map.insert(labels::NETWORK.to_owned(), key.clone());
        let spec = NetworkSpec {
            subnet,
            gateway,
            internal: n.internal == Some(true),
            enable_ipv6: n.enable_ipv6 == Some(true),
            mtu: n
                .driver_opts
                .get("com.docker.network.driver.mtu")
                .and_then(|m| m.parse().ok()),
            labels: label_map,
            ..NetworkSpec::named(&name)
        };
        progress.send(Progress::network(&name, Status::Creating));
        match net.create_network(spec).await {
            Ok(_) | Err(NetError::NetworkExists(_)) => {}
            Err(e) => return Err(e.into()),
        }
        progress.send(Progress::network(&name, Status::Created));
    }
    Ok(())
}

/// Removes the networks made for `project` (by label); one still in use (by an orphan
/// left running) is reported and kept.
pub async fn remove_networks(
    net: &Net,
    project: &str,
    progress: &ProgressSink,
) -> Result<(), StackError> {
    for n in net.list().await {
        if n.labels.get(labels::PROJECT).map(String::as_str) != Some(project) {
            continue;
        }
        progress.send(Progress::network(&n.name, Status::Removing));
        match net.remove_network(&n.name).await {
            Ok(()) | Err(NetError::NoSuchNetwork(_)) => {
                progress.send(Progress::network(&n.name, Status::Removed))
            }
            Err(e) => progress.send(
                Progress::network(&n.name, Status::Warning).detail(format!("not removed: {e}")),
            ),
        }
    }
    Ok(())
}

fn opt_value<'a>(opts: &'a BTreeMap<String, String>, key: &str) -> Option<&'a str> {
    opts.get(key).map(String::as_str)
}

/// `o: size=64m,uid=1000` → 64 MiB.
fn tmpfs_size(o: Option<&str>) -> Option<u64> {
    let o = o?;
    o.split(',')
        .find_map(|kv| kv.strip_prefix("size="))
        .and_then(|s| crate::containers::limits::parse_size(s).ok())
        .and_then(|n| u64::try_from(n).ok())
}

/// A volume of the stack, made ready: its key in `project.volumes` (or an anonymous
/// volume's key, which becomes its name). Returns where its data is, and whether the volume
/// is new (and so gets the image's content).
pub fn ensure_volume(
    store: &Store,
    root: &Path,
    project: &Project,
    key: &str,
    progress: &ProgressSink,
) -> Result<(VolumeSource, bool), StackError> {
    let (name, external, driver_opts, user_labels) = match project.volumes.get(key) {
        Some(v) => (
            volume_name(project, key).unwrap_or_else(|| key.to_owned()),
            v.external == Some(true),
            v.driver_opts
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect::<BTreeMap<_, _>>(),
            v.labels
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect::<BTreeMap<_, _>>(),
        ),
        None => (key.to_owned(), false, BTreeMap::new(), BTreeMap::new()),
    };
    let existing = store.get::<VolumeDoc>(&name)?;
    if external && existing.is_none() {
        return Err(StackError::ExternalVolume(name));
    }
    let doc = match existing {
        Some(doc) => doc,
        None => {
            let mut label_map = user_labels;
            label_map.insert(labels::PROJECT.to_owned(), project.name.clone());
            label_map.insert(labels::VOLUME.to_owned(), key.to_owned());
            let dir = root.join("volumes").join(&name);
            let data = dir.join("_data");
            progress.send(Progress::volume(&name, Status::Creating));
            std::fs::create_dir_all(&data).map_err(io("create volume directory", &data))?;
            let doc = VolumeDoc {
                name: name.clone(),
                driver: "local".to_owned(),
                driver_opts,
                labels: label_map,
                mountpoint: data,
                created: berth_runtime::clock::now_rfc3339(),
            };
            store.put(&name, &doc)?;
            progress.send(Progress::volume(&name, Status::Created));
            doc
        }
    };
    let opts = &doc.driver_opts;
    let source = match opt_value(opts, "type") {
        Some("tmpfs") => VolumeSource::Tmpfs {
            size: tmpfs_size(opt_value(opts, "o")),
        },
        Some("none") if opt_value(opts, "o").is_some_and(|o| o.split(',').any(|w| w == "bind")) => {
            let device = opt_value(opts, "device").unwrap_or_default();
            let path = PathBuf::from(device);
            if !path.is_dir() {
                return Err(StackError::VolumeDevice {
                    volume: name,
                    device: path,
                });
            }
            VolumeSource::Device(path)
        }
        _ => VolumeSource::Dir {
            name: doc.name.clone(),
            path: doc.mountpoint.clone(),
        },
    };
    let fresh = matches!(&source, VolumeSource::Dir { path, .. } if is_empty_dir(path));
    Ok((source, fresh))
}

fn is_empty_dir(path: &Path) -> bool {
    std::fs::read_dir(path).is_ok_and(|mut d| d.next().is_none())
}

/// Removes the volumes `project` made (not external ones, which it did not make).
pub fn remove_volumes(
    store: &Store,
    project: &str,
    progress: &ProgressSink,
) -> Result<(), StackError> {
    for (key, doc) in store.list::<VolumeDoc>()? {
        if doc.labels.get(labels::PROJECT).map(String::as_str) != Some(project) {
            continue;
        }
        progress.send(Progress::volume(&doc.name, Status::Removing));
        if let Some(dir) = doc.mountpoint.parent() {
            match std::fs::remove_dir_all(dir) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(io("remove volume", dir)(e)),
            }
        }
        store.delete::<VolumeDoc>(&key)?;
        progress.send(Progress::volume(&doc.name, Status::Removed));
    }
    Ok(())
}

/// Copies what the image has at `target` (its layers `top-most first`) into the empty
/// volume directory `dest`, as Docker fills a new volume. Whiteouts are skipped.
pub fn copy_image_content(layers: &[PathBuf], target: &str, dest: &Path) -> Result<(), StackError> {
    let rel = target.trim_start_matches('/');
    for layer in layers.iter().rev() {
        let src = layer.join(rel);
        if src.is_dir() {
            copy_tree(&src, dest)?;
        }
    }
    Ok(())
}

fn copy_tree(src: &Path, dest: &Path) -> Result<(), StackError> {
    let meta = std::fs::symlink_metadata(src).map_err(io("stat", src))?;
    std::fs::set_permissions(dest, std::fs::Permissions::from_mode(meta.mode() & 0o7777))
        .map_err(io("set mode of", dest))?;
    std::os::unix::fs::lchown(dest, Some(meta.uid()), Some(meta.gid()))
        .map_err(io("chown", dest))?;
    for entry in std::fs::read_dir(src).map_err(io("read directory", src))? {
        let entry = entry.map_err(io("read directory", src))?;
        let name = entry.file_name();
        if name.to_string_lossy().starts_with(".wh.") {
            continue;
        }
        let from = entry.path();
        let to = dest.join(&name);
        let meta = std::fs::symlink_metadata(&from).map_err(io("stat", &from))?;
        let ft = meta.file_type();
        if ft.is_dir() {
            std::fs::create_dir_all(&to).map_err(io("create directory", &to))?;
            copy_tree(&from, &to)?;
        } else if ft.is_symlink() {
            let link = std::fs::read_link(&from).map_err(io("read link", &from))?;
            let _ = std::fs::remove_file(&to);
            std::os::unix::fs::symlink(&link, &to).map_err(io("create symlink", &to))?;
        } else if ft.is_file() {
            std::fs::copy(&from, &to).map_err(io("copy to", &to))?;
            std::os::unix::fs::lchown(&to, Some(meta.uid()), Some(meta.gid()))
                .map_err(io("chown", &to))?;
        }
        // Device nodes (overlay whiteouts among them) are not copied.
    }
    Ok(())
}

/// Writes a secret or config file with its owner and mode.
pub fn write_file(f: &super::desired::FileToWrite) -> Result<(), StackError> {
    let path = &f.host_path;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io("create directory", dir))?;
    }
    std::fs::write(path, &f.content).map_err(io("write", path))?;
    std::os::unix::fs::chown(path, Some(f.uid), Some(f.gid)).map_err(io("chown", path))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(f.mode))
        .map_err(io("set mode of", path))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tmpfs_size_is_read_from_o() {
        assert_eq!(tmpfs_size(Some("size=1m,uid=3")), Some(1024 * 1024));
        assert_eq!(tmpfs_size(Some("uid=3")), None);
        assert_eq!(tmpfs_size(None), None);
    }

    #[test]
    fn image_content_is_copied_top_layer_last_without_whiteouts() {
        let dir = tempfile::tempdir().unwrap();
        let (low, high, dest) = (
            dir.path().join("low"),
            dir.path().join("high"),
            dir.path().join("dest"),
        );
        std::fs::create_dir_all(low.join("data/sub")).unwrap();
        std::fs::create_dir_all(high.join("data")).unwrap();
        std::fs::create_dir_all(&dest).unwrap();
        std::fs::write(low.join("data/a"), "low").unwrap();
        std::fs::write(low.join("data/sub/b"), "b").unwrap();
        std::fs::write(high.join("data/a"), "high").unwrap();
        std::fs::write(high.join("data/.wh.gone"), "").unwrap();
        copy_image_content(&[high, low], "/data", &dest).unwrap();
        assert_eq!(std::fs::read_to_string(dest.join("a")).unwrap(), "high");
        assert_eq!(std::fs::read_to_string(dest.join("sub/b")).unwrap(), "b");
        assert!(!dest.join(".wh.gone").exists());
    }
}
