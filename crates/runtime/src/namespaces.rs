//! Which namespaces a container gets: created by `clone(2)`, joined by path with
//! `setns(2)`, or the cgroup namespace, unshared by the init only after the monitor has put
//! it in its cgroup (so that cgroup becomes its root).

use std::path::PathBuf;

use nix::sched::CloneFlags;
use oci_spec::runtime::{LinuxNamespaceType, Spec};

use crate::process::message::SetupError;

/// The namespace plan of a container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamespacePlan {
    /// Flags for `clone(2)`.
    pub clone_flags: CloneFlags,
    /// Namespaces to join, in order (user first).
    pub join: Vec<(CloneFlags, PathBuf)>,
    /// Unshare a cgroup namespace after joining the cgroup.
    pub new_cgroupns: bool,
    /// A new user namespace: the monitor writes the id maps.
    pub new_userns: bool,
}

fn flag(t: LinuxNamespaceType) -> CloneFlags {
    match t {
        LinuxNamespaceType::Mount => CloneFlags::CLONE_NEWNS,
        LinuxNamespaceType::Cgroup => CloneFlags::CLONE_NEWCGROUP,
        LinuxNamespaceType::Uts => CloneFlags::CLONE_NEWUTS,
        LinuxNamespaceType::Ipc => CloneFlags::CLONE_NEWIPC,
        LinuxNamespaceType::User => CloneFlags::CLONE_NEWUSER,
        LinuxNamespaceType::Pid => CloneFlags::CLONE_NEWPID,
        LinuxNamespaceType::Network => CloneFlags::CLONE_NEWNET,
        LinuxNamespaceType::Time => CloneFlags::from_bits_retain(0x80),
    }
}

/// Plans namespaces from `linux.namespaces`; `netns` overrides the network entry.
pub fn plan(spec: &Spec, netns: Option<&PathBuf>) -> Result<NamespacePlan, SetupError> {
    let mut p = NamespacePlan {
        clone_flags: CloneFlags::empty(),
        join: Vec::new(),
        new_cgroupns: false,
        new_userns: false,
    };
    let list = spec
        .linux()
        .as_ref()
        .and_then(|l| l.namespaces().clone())
        .unwrap_or_default();
    let mut has_net = false;
    for ns in &list {
        let typ = ns.typ();
        let f = flag(typ);
        let path = if typ == LinuxNamespaceType::Network {
            has_net = true;
            netns.cloned().or_else(|| ns.path().clone())
        } else {
            ns.path().clone()
        };
        match (typ, path) {
            (LinuxNamespaceType::Pid, Some(_)) => return Err(SetupError::PidNamespacePath),
            (LinuxNamespaceType::User, Some(path)) => p.join.insert(0, (f, path)),
            (_, Some(path)) => p.join.push((f, path)),
            (LinuxNamespaceType::Cgroup, None) => p.new_cgroupns = true,
            (LinuxNamespaceType::User, None) => {
                p.new_userns = true;
                p.clone_flags |= f;
            }
            (_, None) => p.clone_flags |= f,
        }
    }
    if let (false, Some(path)) = (has_net, netns) {
        p.join.push((CloneFlags::CLONE_NEWNET, path.clone()));
    }
    if !p.clone_flags.contains(CloneFlags::CLONE_NEWNS) {
        // The root filesystem is built by mounting: never in the host's mount namespace.
        return Err(SetupError::Namespace {
            op: "require".into(),
            kind: "mount".into(),
            path: String::new(),
            errno: nix::errno::Errno::EINVAL.into(),
        });
    }
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_spec_creates_all_but_cgroup_which_is_unshared_later() {
        let spec = crate::spec::default_spec(&["true"]);
        let p = plan(&spec, None).unwrap();
        assert_eq!(
            p.clone_flags,
            CloneFlags::CLONE_NEWNS
                | CloneFlags::CLONE_NEWUTS
                | CloneFlags::CLONE_NEWIPC
                | CloneFlags::CLONE_NEWPID
                | CloneFlags::CLONE_NEWNET
        );
        assert!(p.new_cgroupns && !p.new_userns && p.join.is_empty());
    }

    #[test]
    fn netns_override_is_joined_instead_of_created() {
        let spec = crate::spec::default_spec(&["true"]);
        let path = PathBuf::from("/run/netns/x");
        let p = plan(&spec, Some(&path)).unwrap();
        assert!(!p.clone_flags.contains(CloneFlags::CLONE_NEWNET));
        assert_eq!(p.join, vec![(CloneFlags::CLONE_NEWNET, path)]);
    }
}
