//! Resolves Docker-style `user[:group]` (names or numbers) against the container's own
//! `/etc/passwd` and `/etc/group`, including supplementary groups, as runc's `GetExecUser`.

use crate::process::message::SetupError;

/// The identity a container process runs as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// User id.
    pub uid: u32,
    /// Primary group id.
    pub gid: u32,
    /// Supplementary group ids.
    pub additional_gids: Vec<u32>,
    /// Home directory from the passwd entry (`/` when none).
    pub home: String,
}

struct PasswdEntry<'a> {
    name: &'a str,
    uid: u32,
    gid: u32,
    home: &'a str,
}

fn passwd_entries(text: &str) -> impl Iterator<Item = PasswdEntry<'_>> {
    text.lines().filter_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        if f.len() < 7 || l.starts_with('#') {
            return None;
        }
        Some(PasswdEntry {
            name: f[0],
            uid: f[2].parse().ok()?,
            gid: f[3].parse().ok()?,
            home: f[5],
        })
    })
}

fn group_entries(text: &str) -> impl Iterator<Item = (&str, u32, Vec<&str>)> {
    text.lines().filter_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        if f.len() < 4 || l.starts_with('#') {
            return None;
        }
        let members = f[3].split(',').filter(|m| !m.is_empty()).collect();
        Some((f[0], f[2].parse().ok()?, members))
    })
}

/// Resolves `spec` (`""`, `name`, `uid`, `name:group`, `uid:gid`…) with the given file
/// contents. A numeric user absent from passwd is accepted (gid 0), as Docker does.
pub fn resolve(spec: &str, passwd: &str, group: &str) -> Result<Identity, SetupError> {
    let (user, grp) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    if user.is_empty() && grp.is_some() || grp == Some("") {
        return Err(SetupError::InvalidUser { user: spec.into() });
    }
    let user = if user.is_empty() { "0" } else { user };
    let numeric = user.parse::<u32>().ok();
    let entry = passwd_entries(passwd).find(|e| match numeric {
        Some(uid) => e.uid == uid,
        None => e.name == user,
    });
    let (uid, mut gid, name, home) = match (entry, numeric) {
        (Some(e), _) => (e.uid, e.gid, Some(e.name), e.home.to_owned()),
        (None, Some(uid)) => (uid, 0, None, "/".to_owned()),
        (None, None) => return Err(SetupError::UserNotFound { user: user.into() }),
    };
    if let Some(g) = grp {
        gid = match g.parse::<u32>() {
            Ok(n) => n,
            Err(_) => group_entries(group)
                .find(|(n, _, _)| *n == g)
                .map(|(_, id, _)| id)
                .ok_or_else(|| SetupError::GroupNotFound { group: g.into() })?,
        };
    }
    let mut additional_gids = Vec::new();
    // With an explicit group Docker uses only that one, like `su -g`; otherwise the
    // primary group and every group listing the user, as initgroups(3) does.
    if let (Some(name), None) = (name, grp) {
        additional_gids.push(gid);
        for (_, id, members) in group_entries(group) {
            if members.contains(&name) && id != gid && !additional_gids.contains(&id) {
                additional_gids.push(id);
            }
        }
    }
    Ok(Identity {
        uid,
        gid,
        additional_gids,
        home: if home.is_empty() { "/".into() } else { home },
    })
}

/// Resolves `spec` against the calling process's root (the container, after `pivot_root`).
pub fn resolve_in_root(spec: &str) -> Result<Identity, SetupError> {
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    let group = std::fs::read_to_string("/etc/group").unwrap_or_default();
    resolve(spec, &passwd, &group)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\nalice:x:1000:1000::/home/alice:/bin/sh\n";
    const GROUP: &str = "root:x:0:\nalice:x:1000:\nwheel:x:10:alice,bob\naudio:x:29:alice\n";

    #[test]
    fn names_numbers_and_groups() {
        let a = resolve("alice", PASSWD, GROUP).unwrap();
        assert_eq!(
            (a.uid, a.gid, a.additional_gids.clone()),
            (1000, 1000, vec![1000, 10, 29])
        );
        assert_eq!(a.home, "/home/alice");
        let b = resolve("1000:wheel", PASSWD, GROUP).unwrap();
        assert_eq!((b.uid, b.gid, b.additional_gids), (1000, 10, vec![]));
        let c = resolve("4242:7", PASSWD, GROUP).unwrap();
        assert_eq!((c.uid, c.gid, c.home.as_str()), (4242, 7, "/"));
        let root = resolve("", PASSWD, GROUP).unwrap();
        assert_eq!((root.uid, root.gid), (0, 0));
    }

    #[test]
    fn unknown_names_are_errors() {
        assert_eq!(
            resolve("bob", PASSWD, GROUP),
            Err(SetupError::UserNotFound { user: "bob".into() })
        );
        assert_eq!(
            resolve("alice:nogroup", PASSWD, GROUP),
            Err(SetupError::GroupNotFound {
                group: "nogroup".into()
            })
        );
        assert!(matches!(
            resolve("alice:", PASSWD, GROUP),
            Err(SetupError::InvalidUser { .. })
        ));
    }
}
