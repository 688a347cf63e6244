//! Linux capabilities: Docker's default set, `cap_add`/`cap_drop` resolution, and applying
//! an OCI `process.capabilities` to the calling process around the switch of user.

use std::collections::HashSet;

use caps::CapSet;
use oci_spec::runtime::{Capabilities, Capability, LinuxCapabilities, LinuxCapabilitiesBuilder};

use crate::process::message::SetupError;

/// The capabilities Docker grants a container by default.
pub const DOCKER_DEFAULT: &[Capability] = &[
    Capability::Chown,
    Capability::DacOverride,
    Capability::Fsetid,
    Capability::Fowner,
    Capability::Mknod,
    Capability::NetRaw,
    Capability::Setgid,
    Capability::Setuid,
    Capability::Setfcap,
    Capability::Setpcap,
    Capability::NetBindService,
    Capability::SysChroot,
    Capability::Kill,
    Capability::AuditWrite,
];

/// Docker's default set.
pub fn docker_default() -> Capabilities {
    DOCKER_DEFAULT.iter().copied().collect()
}

/// Every capability this host's kernel knows that this process holds (`ALL`,
/// `privileged`): a root without some capability (as on a host that withholds
/// `CAP_SYS_RESOURCE`) cannot grant it, and asking for it would fail `capset` with `EPERM`.
pub fn all() -> Capabilities {
    let known = caps::runtime::procfs_all_supported(None).unwrap_or_else(|_| caps::all());
    let held = caps::read(None, CapSet::Permitted).unwrap_or_else(|_| known.clone());
    known
        .intersection(&held)
        .copied()
        .collect::<Vec<_>>()
        .into_iter()
        .filter_map(|c| to_oci(c).ok())
        .collect()
}

/// Parses a capability name as Docker accepts it: any case, with or without `CAP_`.
pub fn parse(name: &str) -> Result<Capability, SetupError> {
    let upper = name.trim().to_ascii_uppercase();
    let bare = upper.strip_prefix("CAP_").unwrap_or(&upper);
    bare.parse().map_err(|_| SetupError::UnknownCapability {
        name: name.to_owned(),
    })
}

/// Docker's `--privileged`, `--cap-add` and `--cap-drop` applied to the default set:
/// `ALL` in `drop` empties the set before adding, `ALL` in `add` grants every capability.
pub fn resolve(
    add: &[String],
    drop: &[String],
    privileged: bool,
) -> Result<Capabilities, SetupError> {
    let is_all = |s: &String| s.eq_ignore_ascii_case("ALL");
    let adds: Vec<Capability> = add
        .iter()
        .filter(|s| !is_all(s))
        .map(|s| parse(s))
        .collect::<Result<_, _>>()?;
    let drops: Vec<Capability> = drop
        .iter()
        .filter(|s| !is_all(s))
        .map(|s| parse(s))
        .collect::<Result<_, _>>()?;
    if privileged || add.iter().any(is_all) {
        let mut set = all();
        if !privileged {
            for c in &drops {
                set.remove(c);
            }
        }
        return Ok(set);
    }
    let mut set = if drop.iter().any(is_all) {
        HashSet::new()
    } else {
        docker_default()
    };
    for c in &drops {
        set.remove(c);
    }
    set.extend(adds);
    Ok(set)
}

/// The OCI form: bounding, effective and permitted hold `set`; inheritable and ambient stay
/// empty (as Docker does since CVE-2022-24769).
pub fn to_linux_capabilities(set: &Capabilities) -> LinuxCapabilities {
    LinuxCapabilitiesBuilder::default()
        .bounding(set.clone())
        .effective(set.clone())
        .permitted(set.clone())
        .inheritable(Capabilities::new())
        .ambient(Capabilities::new())
        .build()
        .expect("every capability set is given")
}

fn to_host(c: &Capability) -> Result<caps::Capability, SetupError> {
    format!("CAP_{c}")
        .parse()
        .map_err(|_| SetupError::UnknownCapability {
            name: c.to_string(),
        })
}

fn to_oci(c: caps::Capability) -> Result<Capability, SetupError> {
    parse(&c.to_string())
}

fn host_set(set: &Option<Capabilities>) -> Result<caps::CapsHashSet, SetupError> {
    set.iter().flatten().map(to_host).collect()
}

fn caps_err(set: &str, e: caps::errors::CapsError) -> SetupError {
    SetupError::Capabilities {
        set: set.to_owned(),
        message: e.to_string(),
    }
}

/// Step 1, while still root with every capability: shrink the bounding set.
pub fn drop_bounding(c: &LinuxCapabilities) -> Result<(), SetupError> {
    let keep = host_set(c.bounding())?;
    let current = caps::read(None, CapSet::Bounding).map_err(|e| caps_err("bounding", e))?;
    for cap in current.difference(&keep) {
        caps::drop(None, CapSet::Bounding, *cap).map_err(|e| caps_err("bounding", e))?;
    }
    Ok(())
}

/// Step 2, after the switch of user (made with `PR_SET_KEEPCAPS`): set the other sets.
pub fn apply_sets(c: &LinuxCapabilities) -> Result<(), SetupError> {
    caps::clear(None, CapSet::Effective).map_err(|e| caps_err("effective", e))?;
    caps::set(None, CapSet::Permitted, &host_set(c.permitted())?)
        .map_err(|e| caps_err("permitted", e))?;
    caps::set(None, CapSet::Inheritable, &host_set(c.inheritable())?)
        .map_err(|e| caps_err("inheritable", e))?;
    caps::set(None, CapSet::Effective, &host_set(c.effective())?)
        .map_err(|e| caps_err("effective", e))?;
    for cap in host_set(c.ambient())? {
        // Ambient capabilities must be permitted and inheritable; skip others as runc does.
        let _ = caps::raise(None, CapSet::Ambient, cap);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn add_and_drop_follow_docker() {
        let set = resolve(&s(&["net_admin"]), &s(&["CAP_CHOWN"]), false).unwrap();
        assert!(set.contains(&Capability::NetAdmin));
        assert!(!set.contains(&Capability::Chown));
        assert_eq!(set.len(), DOCKER_DEFAULT.len());
        let only = resolve(&s(&["KILL"]), &s(&["ALL"]), false).unwrap();
        assert_eq!(only, [Capability::Kill].into_iter().collect());
        let everything = resolve(&s(&["ALL"]), &s(&["SYS_ADMIN"]), false).unwrap();
        assert!(everything.contains(&Capability::SysModule));
        assert!(!everything.contains(&Capability::SysAdmin));
    }

    #[test]
    fn unknown_capability_is_named() {
        assert_eq!(
            resolve(&s(&["CAP_FLY"]), &[], false),
            Err(SetupError::UnknownCapability {
                name: "CAP_FLY".into()
            })
        );
    }
}
