//! A service's `volumes:`, `secrets:` and `configs:` → typed mounts of one of its
//! containers (pure), with the files to write and the bind sources to create.

use std::path::PathBuf;

use berth_compose::Service;
use berth_compose::model::{ServiceFileRef, VolumeType};

use super::desired::{Context, DesiredError, FileToWrite, VolumeSource};
use crate::containers::{Mount, MountKind};

pub(super) fn file_mounts(
    ctx: &Context<'_>,
    svc: &Service,
    container: &str,
) -> Result<(Vec<Mount>, Vec<FileToWrite>), DesiredError> {
    let mut mounts = Vec::new();
    let mut files = Vec::new();
    let dir = ctx.files_dir.join(container);
    let groups: [(&'static str, &Vec<ServiceFileRef>); 2] =
        [("secret", &svc.secrets), ("config", &svc.configs)];
    for (kind, refs) in groups {
        for r in refs {
            let content = ctx
                .contents
                .get(&format!("{kind}:{}", r.source))
                .cloned()
                .ok_or_else(|| DesiredError::UnknownFile {
                    kind,
                    name: r.source.clone(),
                })?;
            let target = match (&r.target, kind) {
                (Some(t), _) if t.starts_with('/') => t.clone(),
                (Some(t), "secret") => format!("/run/secrets/{t}"),
                (Some(t), _) => format!("/{t}"),
                (None, "secret") => format!("/run/secrets/{}", r.source),
                (None, _) => format!("/{}", r.source),
            };
            let host_path = dir.join(format!("{kind}s")).join(&r.source);
            let id = |s: &Option<String>| s.as_deref().and_then(|v| v.parse().ok()).unwrap_or(0);
            files.push(FileToWrite {
                host_path: host_path.clone(),
                target: target.clone(),
                content,
                uid: id(&r.uid),
                gid: id(&r.gid),
                mode: r.mode.unwrap_or(0o444),
            });
            mounts.push(Mount {
                kind: MountKind::Bind {
                    source: host_path,
                    propagation: None,
                },
                target,
                read_only: true,
            });
        }
    }
    Ok((mounts, files))
}

pub(super) fn volume_mounts(
    ctx: &Context<'_>,
    svc: &Service,
    container: &str,
) -> Result<(Vec<Mount>, Vec<PathBuf>), DesiredError> {
    let mut mounts = Vec::new();
    let mut dirs = Vec::new();
    for v in &svc.volumes {
        let kind = match v.kind {
            VolumeType::Bind => {
                let source = v
                    .source
                    .as_ref()
                    .ok_or_else(|| DesiredError::NoBindSource(v.target.clone()))?;
                let create = v
                    .bind
                    .as_ref()
                    .and_then(|b| b.create_host_path)
                    .unwrap_or(true);
                if create {
                    dirs.push(PathBuf::from(source));
                }
                MountKind::Bind {
                    source: PathBuf::from(source),
                    propagation: v.bind.as_ref().and_then(|b| b.propagation.clone()),
                }
            }
            VolumeType::Volume => {
                // An anonymous volume gets a name of its own per container and target.
                let key = v
                    .source
                    .clone()
                    .unwrap_or_else(|| anonymous_volume_key(container, &v.target));
                match ctx.volumes.get(&key) {
                    Some(VolumeSource::Dir { name, path }) => MountKind::Volume {
                        name: name.clone(),
                        source: path.clone(),
                    },
                    Some(VolumeSource::Device(path)) => MountKind::Bind {
                        source: path.clone(),
                        propagation: None,
                    },
                    Some(VolumeSource::Tmpfs { size }) => MountKind::Tmpfs {
                        size: *size,
                        mode: None,
                    },
                    None => return Err(DesiredError::UnknownVolume(key)),
                }
            }
            VolumeType::Tmpfs => MountKind::Tmpfs {
                size: v.tmpfs.as_ref().and_then(|t| t.size).map(|s| s.0),
                mode: v.tmpfs.as_ref().and_then(|t| t.mode),
            },
            other => {
                let name = serde_json::to_value(other)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default();
                return Err(DesiredError::VolumeType(name));
            }
        };
        mounts.push(Mount {
            kind,
            target: v.target.clone(),
            read_only: v.read_only,
        });
    }
    Ok((mounts, dirs))
}

/// The volume key of an anonymous volume (`volumes: [/data]`) of `container`.
pub fn anonymous_volume_key(container: &str, target: &str) -> String {
    let h = crate::stack::hash_short(target.as_bytes());
    format!("{container}_anon_{h}")
}
