//! Image configuration + run options → the OCI spec of a container (pure: no I/O).
//!
//! Docker's rules: `--entrypoint` replaces the image's `Entrypoint` and drops its `Cmd`;
//! arguments after the image replace `Cmd`; `-e` overrides image `Env` by key; `-w` and `-u`
//! override `WorkingDir` and `User`.

use std::path::{Path, PathBuf};

use berth_image::config::ContainerConfig;
use berth_runtime::oci_spec::runtime::{LinuxNamespaceType, Mount as OciMount, MountBuilder, Spec};
use serde::{Deserialize, Serialize};

use super::RunOptions;

/// The files of `/etc` berth provides, bind-mounted from the container's directory.
pub const ETC_FILES: [&str; 3] = ["hosts", "resolv.conf", "hostname"];

/// Errors turning options into a spec.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpecError {
    /// Neither the options nor the image name a command.
    #[error("no command specified")]
    NoCommand,
    /// A `-v` value is not `SRC:DST[:ro|rw]` with absolute paths.
    #[error("invalid volume {0:?}: use /host/path:/container/path[:ro]")]
    InvalidVolume(String),
    /// A `-e` value has an empty name.
    #[error("invalid environment variable {0:?}")]
    InvalidEnv(String),
    /// A mount's target is not an absolute path (or has `..`).
    #[error("invalid mount target {0:?}: use an absolute path without '..'")]
    InvalidMountTarget(String),
}

/// A bind mount from `-v SRC:DST[:ro]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BindMount {
    /// Host path.
    pub source: PathBuf,
    /// Path in the container.
    pub destination: String,
    /// Mounted read-only.
    pub readonly: bool,
}

/// A typed mount of a container besides its image (Compose's `volumes:` entries, secrets and
/// configs): what is mounted at `target`, read-only or not.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mount {
    /// What is mounted.
    #[serde(flatten)]
    pub kind: MountKind,
    /// Absolute path in the container.
    pub target: String,
    /// Mounted read-only.
    #[serde(default)]
    pub read_only: bool,
}

/// The source of a [`Mount`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum MountKind {
    /// A host file or directory.
    Bind {
        /// Host path (absolute).
        source: PathBuf,
        /// Mount propagation (`rprivate` when `None`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        propagation: Option<String>,
    },
    /// A named volume whose data lives on the host at `source` (the engine resolved it).
    Volume {
        /// The volume's name.
        name: String,
        /// Its data directory.
        source: PathBuf,
    },
    /// A fresh tmpfs.
    Tmpfs {
        /// Size limit in bytes.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        size: Option<u64>,
        /// Mode of its root (octal permission bits).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        mode: Option<u32>,
    },
}

impl Mount {
    /// The OCI mount; an error when the target is not an absolute path without `..`.
    pub fn to_oci(&self) -> Result<OciMount, SpecError> {
        if !self.target.starts_with('/') || self.target.split('/').any(|c| c == "..") {
            return Err(SpecError::InvalidMountTarget(self.target.clone()));
        }
        match &self.kind {
            MountKind::Bind {
                source,
                propagation,
            } => {
                let mut m = bind_mount(&BindMount {
                    source: source.clone(),
                    destination: self.target.clone(),
                    readonly: self.read_only,
                });
                if let Some(p) = propagation {
                    let options = m
                        .options()
                        .clone()
                        .unwrap_or_default()
                        .into_iter()
                        .map(|o| if o == "rprivate" { p.clone() } else { o })
                        .collect();
                    m.set_options(Some(options));
                }
                Ok(m)
            }
            MountKind::Volume { source, .. } => Ok(bind_mount(&BindMount {
                source: source.clone(),
                destination: self.target.clone(),
                readonly: self.read_only,
            })),
            MountKind::Tmpfs { size, mode } => {
                let mut options: Vec<String> =
                    ["nosuid", "nodev"].into_iter().map(str::to_owned).collect();
                if let Some(size) = size {
                    options.push(format!("size={size}"));
                }
                if let Some(mode) = mode {
                    options.push(format!("mode={mode:o}"));
                }
                if self.read_only {
                    options.push("ro".to_owned());
                }
                Ok(MountBuilder::default()
                    .destination(self.target.clone())
                    .source("tmpfs")
                    .typ("tmpfs")
                    .options(options)
                    .build()
                    .expect("destination, source, type and options are set"))
            }
        }
    }
}

/// Parses `-v SRC:DST[:ro|rw]` (host paths only; named volumes are not supported yet).
pub fn parse_volume(s: &str) -> Result<BindMount, SpecError> {
    let bad = || SpecError::InvalidVolume(s.to_owned());
    let parts: Vec<&str> = s.split(':').collect();
    let (src, dst, readonly) = match parts.as_slice() {
        [src, dst] => (*src, *dst, false),
        [src, dst, "ro"] => (*src, *dst, true),
        [src, dst, "rw"] => (*src, *dst, false),
        _ => return Err(bad()),
    };
    if !src.starts_with('/') || !dst.starts_with('/') || dst.split('/').any(|c| c == "..") {
        return Err(bad());
    }
    Ok(BindMount {
        source: PathBuf::from(src),
        destination: dst.to_owned(),
        readonly,
    })
}

/// The process arguments: entrypoint + command, with Docker's override rules.
pub fn command(image: &ContainerConfig, opts: &RunOptions) -> Result<Vec<String>, SpecError> {
    let (entrypoint, cmd) = match &opts.entrypoint {
        // `--entrypoint ""` clears the image's entrypoint.
        Some(ep) if ep.is_empty() => (Vec::new(), opts.command.clone()),
        Some(ep) => (vec![ep.clone()], opts.command.clone()),
        None => {
            let cmd = if opts.command.is_empty() {
                image.cmd.clone().unwrap_or_default()
            } else {
                opts.command.clone()
            };
            (image.entrypoint.clone().unwrap_or_default(), cmd)
        }
    };
    let args: Vec<String> = entrypoint.into_iter().chain(cmd).collect();
    if args.first().is_none_or(|a| a.is_empty()) {
        return Err(SpecError::NoCommand);
    }
    Ok(args)
}

/// Image `Env` overridden by `-e` values (by name, keeping the image's order). `-e NAME`
/// without `=` takes the value from `host_env` and is dropped when unset there, as in Docker.
pub fn environment(
    image: &[String],
    overrides: &[String],
    host_env: impl Fn(&str) -> Option<String>,
) -> Result<Vec<String>, SpecError> {
    let mut env: Vec<(String, String)> = image
        .iter()
        .map(|kv| match kv.split_once('=') {
            Some((k, v)) => (k.to_owned(), v.to_owned()),
            None => (kv.clone(), String::new()),
        })
        .collect();
    for kv in overrides {
        let (k, v) = match kv.split_once('=') {
            Some((k, v)) => (k.to_owned(), v.to_owned()),
            None => match host_env(kv) {
                Some(v) => (kv.clone(), v),
                None => continue,
            },
        };
        if k.is_empty() {
            return Err(SpecError::InvalidEnv(kv.clone()));
        }
        match env.iter_mut().find(|(name, _)| *name == k) {
            Some(slot) => slot.1 = v,
            None => env.push((k, v)),
        }
    }
    if !env.iter().any(|(k, _)| k == "PATH") {
        env.insert(
            0,
            (
                "PATH".to_owned(),
                "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".to_owned(),
            ),
        );
    }
    Ok(env.into_iter().map(|(k, v)| format!("{k}={v}")).collect())
}

/// The OCI spec of the container: Docker's defaults, the image's process settings merged
/// with the options, the hostname, bind mounts, and no network namespace for `host`
/// (whose caller passes the host's hostname, as Docker does).
pub fn build(
    image: &ContainerConfig,
    opts: &RunOptions,
    hostname: &str,
    host_network: bool,
    etc_dir: &Path,
) -> Result<Spec, SpecError> {
    let args = command(image, opts)?;
    let env = environment(&image.env, &opts.env, |k| std::env::var(k).ok())?;
    let binds = opts
        .volumes
        .iter()
        .map(|v| parse_volume(v))
        .collect::<Result<Vec<_>, _>>()?;
    let arg_refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut spec = berth_runtime::spec::default_spec(&arg_refs);
    if let Some(process) = spec.process_mut() {
        process.set_env(Some(env));
        let cwd = opts
            .workdir
            .clone()
            .filter(|w| !w.is_empty())
            .unwrap_or_else(|| image.working_dir.clone());
        process.set_cwd(if cwd.is_empty() {
            "/".into()
        } else {
            cwd.into()
        });
    }
    spec.set_hostname(Some(hostname.to_owned()));
    if let (true, Some(linux)) = (host_network, spec.linux_mut()) {
        let namespaces = linux.namespaces().clone().map(|ns| {
            ns.into_iter()
                .filter(|n| n.typ() != LinuxNamespaceType::Network)
                .collect()
        });
        linux.set_namespaces(namespaces);
    }
    let mut mounts = spec.mounts().clone().unwrap_or_default();
    // berth writes these three files after attaching the network; the bind mounts make them
    // visible (and updatable) even on a read-only root file system, as in Docker.
    for file in ETC_FILES {
        mounts.push(bind_mount(&BindMount {
            source: etc_dir.join(file),
            destination: format!("/etc/{file}"),
            readonly: false,
        }));
    }
    mounts.extend(binds.iter().map(bind_mount));
    for m in &opts.mounts {
        mounts.push(m.to_oci()?);
    }
    spec.set_mounts(Some(mounts));
    Ok(spec)
}

fn bind_mount(b: &BindMount) -> OciMount {
    let mut options = vec!["rbind".to_owned(), "rprivate".to_owned()];
    if b.readonly {
        options.push("ro".to_owned());
    }
    MountBuilder::default()
        .destination(b.destination.clone())
        .source(b.source.clone())
        .typ("bind")
        .options(options)
        .build()
        .expect("destination, source, type and options are set")
}

/// The user the container runs as: `-u`, else the image's `User` (`None`: root).
pub fn user(image: &ContainerConfig, opts: &RunOptions) -> Option<String> {
    opts.user
        .clone()
        .or_else(|| Some(image.user.clone()))
        .filter(|u| !u.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(entrypoint: Option<&[&str]>, cmd: Option<&[&str]>) -> ContainerConfig {
        let v = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        ContainerConfig {
            entrypoint: entrypoint.map(v),
            cmd: cmd.map(v),
            env: vec!["PATH=/bin".into(), "A=1".into()],
            working_dir: "/srv".into(),
            ..ContainerConfig::default()
        }
    }

    fn opts(command: &[&str], entrypoint: Option<&str>) -> RunOptions {
        RunOptions {
            command: command.iter().map(|s| s.to_string()).collect(),
            entrypoint: entrypoint.map(str::to_owned),
            ..RunOptions::new("busybox")
        }
    }

    #[test]
    fn command_follows_docker_override_rules() {
        let img = image(Some(&["/init"]), Some(&["serve"]));
        assert_eq!(command(&img, &opts(&[], None)).unwrap(), ["/init", "serve"]);
        assert_eq!(
            command(&img, &opts(&["run", "x"], None)).unwrap(),
            ["/init", "run", "x"]
        );
        assert_eq!(command(&img, &opts(&[], Some("sh"))).unwrap(), ["sh"]);
        assert_eq!(
            command(&img, &opts(&["-c", "id"], Some("sh"))).unwrap(),
            ["sh", "-c", "id"]
        );
        assert_eq!(command(&img, &opts(&["ls"], Some(""))).unwrap(), ["ls"]);
        let bare = image(None, None);
        assert_eq!(command(&bare, &opts(&[], None)), Err(SpecError::NoCommand));
    }

    #[test]
    fn env_overrides_by_name_and_takes_bare_names_from_the_host() {
        let env = environment(
            &["PATH=/bin".into(), "A=1".into()],
            &[
                "A=2".into(),
                "B=x=y".into(),
                "HOSTVAR".into(),
                "UNSET".into(),
            ],
            |k| (k == "HOSTVAR").then(|| "h".to_owned()),
        )
        .unwrap();
        assert_eq!(env, ["PATH=/bin", "A=2", "B=x=y", "HOSTVAR=h"]);
        assert_eq!(
            environment(&[], &["=v".into()], |_| None),
            Err(SpecError::InvalidEnv("=v".into()))
        );
        assert!(environment(&[], &[], |_| None).unwrap()[0].starts_with("PATH="));
    }

    #[test]
    fn volumes_need_absolute_paths() {
        assert_eq!(
            parse_volume("/a:/b:ro").unwrap(),
            BindMount {
                source: "/a".into(),
                destination: "/b".into(),
                readonly: true
            }
        );
        assert!(!parse_volume("/a:/b").unwrap().readonly);
        for bad in ["data:/b", "/a", "/a:b", "/a:/b:zz", "/a:/../b"] {
            assert_eq!(
                parse_volume(bad),
                Err(SpecError::InvalidVolume(bad.into())),
                "{bad}"
            );
        }
    }

    #[test]
    fn spec_has_workdir_hostname_and_no_netns_for_host_network() {
        let img = image(None, Some(&["sh"]));
        let mut o = opts(&[], None);
        o.volumes = vec!["/tmp:/data:ro".into()];
        let spec = build(&img, &o, "abc", false, Path::new("/c")).unwrap();
        let p = spec.process().as_ref().unwrap();
        assert_eq!(p.cwd(), &PathBuf::from("/srv"));
        assert_eq!(spec.hostname().as_deref(), Some("abc"));
        let mounts = spec.mounts().as_ref().unwrap();
        let hosts = mounts
            .iter()
            .find(|m| m.destination() == Path::new("/etc/hosts"))
            .unwrap();
        assert_eq!(hosts.source().as_deref(), Some(Path::new("/c/hosts")));
        let m = mounts.last().unwrap().clone();
        assert_eq!(m.destination(), &PathBuf::from("/data"));
        assert!(m.options().as_ref().unwrap().contains(&"ro".to_owned()));
        let has_netns = |s: &Spec| {
            s.linux()
                .as_ref()
                .unwrap()
                .namespaces()
                .as_ref()
                .unwrap()
                .iter()
                .any(|n| n.typ() == LinuxNamespaceType::Network)
        };
        assert!(has_netns(&spec));
        assert!(!has_netns(
            &build(&img, &o, "abc", true, Path::new("/c")).unwrap()
        ));
    }
}
