//! Mount option strings of an OCI `mounts[]` entry (`["rbind", "ro", "nosuid"]`) parsed
//! into `mount(2)` flags, propagation and file-system data. Pure; tested below.

use nix::mount::MsFlags;

use crate::process::message::SetupError;

/// The parsed form of a mount's options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountOptions {
    /// Flags for the mount itself (`MS_RDONLY`, `MS_NOSUID`…), without bind/propagation.
    pub flags: MsFlags,
    /// Propagation to apply after mounting (`MS_PRIVATE`, `MS_REC | MS_SLAVE`…).
    pub propagation: Option<MsFlags>,
    /// File-system specific data (`size=64m,mode=1777`).
    pub data: String,
    /// `bind` or `rbind` was given.
    pub is_bind: bool,
    /// `rbind` (recursive bind) was given.
    pub recursive: bool,
}

impl MountOptions {
    /// Parses OCI mount options; `destination` only names the mount in errors.
    pub fn parse(options: &[String], destination: &str) -> Result<Self, SetupError> {
        let mut flags = MsFlags::empty();
        let mut propagation = None;
        let mut data = Vec::new();
        let (mut is_bind, mut recursive) = (false, false);
        for opt in options {
            let (set, clear) = match opt.as_str() {
                "bind" => {
                    is_bind = true;
                    continue;
                }
                "rbind" => {
                    is_bind = true;
                    recursive = true;
                    continue;
                }
                "private" | "rprivate" | "shared" | "rshared" | "slave" | "rslave"
                | "unbindable" | "runbindable" => {
                    propagation = Some(propagation_flags(opt));
                    continue;
                }
                "ro" => (MsFlags::MS_RDONLY, MsFlags::empty()),
                "rw" => (MsFlags::empty(), MsFlags::MS_RDONLY),
                "nosuid" => (MsFlags::MS_NOSUID, MsFlags::empty()),
                "suid" => (MsFlags::empty(), MsFlags::MS_NOSUID),
                "nodev" => (MsFlags::MS_NODEV, MsFlags::empty()),
                "dev" => (MsFlags::empty(), MsFlags::MS_NODEV),
                "noexec" => (MsFlags::MS_NOEXEC, MsFlags::empty()),
                "exec" => (MsFlags::empty(), MsFlags::MS_NOEXEC),
                "sync" => (MsFlags::MS_SYNCHRONOUS, MsFlags::empty()),
                "async" => (MsFlags::empty(), MsFlags::MS_SYNCHRONOUS),
                "noatime" => (MsFlags::MS_NOATIME, MsFlags::empty()),
                "atime" => (MsFlags::empty(), MsFlags::MS_NOATIME),
                "nodiratime" => (MsFlags::MS_NODIRATIME, MsFlags::empty()),
                "relatime" => (MsFlags::MS_RELATIME, MsFlags::empty()),
                "strictatime" => (MsFlags::MS_STRICTATIME, MsFlags::empty()),
                "mand" => (MsFlags::MS_MANDLOCK, MsFlags::empty()),
                "nomand" => (MsFlags::empty(), MsFlags::MS_MANDLOCK),
                "defaults" => (MsFlags::empty(), MsFlags::empty()),
                // Options with a value (size=, mode=, uid=, gid=, newinstance, ptmxmode=…)
                // belong to the file system.
                other if other.contains('=') || FS_FLAGS.contains(&other) => {
                    data.push(other.to_owned());
                    continue;
                }
                other => {
                    return Err(SetupError::UnknownMountOption {
                        option: other.to_owned(),
                        destination: destination.to_owned(),
                    });
                }
            };
            flags.insert(set);
            flags.remove(clear);
        }
        Ok(Self {
            flags,
            propagation,
            data: data.join(","),
            is_bind,
            recursive,
        })
    }
}

/// Value-less options that file systems (not the VFS) understand.
const FS_FLAGS: &[&str] = &["newinstance", "tmpcopyup", "userxattr", "xino", "nr_inodes"];

fn propagation_flags(name: &str) -> MsFlags {
    let rec = if name.starts_with('r') {
        MsFlags::MS_REC
    } else {
        MsFlags::empty()
    };
    let kind = match name.trim_start_matches('r') {
        "shared" => MsFlags::MS_SHARED,
        "slave" => MsFlags::MS_SLAVE,
        "unbindable" => MsFlags::MS_UNBINDABLE,
        _ => MsFlags::MS_PRIVATE,
    };
    rec | kind
}

/// Propagation of the container's root mount tree from `linux.rootfsPropagation`
/// (default `rslave`, as runc: host unmounts reach the container, nothing leaks back).
pub fn root_propagation(name: Option<&str>) -> MsFlags {
    match name {
        Some(n) if !n.is_empty() => propagation_flags(n),
        _ => MsFlags::MS_REC | MsFlags::MS_SLAVE,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(list: &[&str]) -> Result<MountOptions, SetupError> {
        let v: Vec<String> = list.iter().map(|s| s.to_string()).collect();
        MountOptions::parse(&v, "/x")
    }

    #[test]
    fn bind_read_only_with_propagation() {
        let o = opts(&["rbind", "ro", "nosuid", "rprivate"]).unwrap();
        assert!(o.is_bind && o.recursive);
        assert_eq!(o.flags, MsFlags::MS_RDONLY | MsFlags::MS_NOSUID);
        assert_eq!(o.propagation, Some(MsFlags::MS_REC | MsFlags::MS_PRIVATE));
        assert_eq!(o.data, "");
    }

    #[test]
    fn later_options_override_earlier_and_data_is_kept() {
        let o = opts(&["ro", "rw", "size=65536k", "mode=1777", "newinstance"]).unwrap();
        assert_eq!(o.flags, MsFlags::empty());
        assert_eq!(o.data, "size=65536k,mode=1777,newinstance");
        assert!(!o.is_bind);
    }

    #[test]
    fn unknown_option_is_an_error() {
        assert_eq!(
            opts(&["bogus"]),
            Err(SetupError::UnknownMountOption {
                option: "bogus".into(),
                destination: "/x".into()
            })
        );
    }

    #[test]
    fn root_propagation_defaults_to_rslave() {
        assert_eq!(root_propagation(None), MsFlags::MS_REC | MsFlags::MS_SLAVE);
        assert_eq!(root_propagation(Some("private")), MsFlags::MS_PRIVATE);
    }
}
