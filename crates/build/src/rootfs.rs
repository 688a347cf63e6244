//! A read-only view of an image's file system through its layer directories (top-most
//! first), without mounting: enough to ask whether a path is a directory and to look
//! users and groups up in `/etc/passwd` and `/etc/group`.

use std::path::PathBuf;

/// Why a user or group could not be resolved.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UserError {
    /// A name not in the image's `/etc/passwd`.
    #[error("unknown user {0:?} (not in the image's /etc/passwd)")]
    UnknownUser(String),
    /// A name not in the image's `/etc/group`.
    #[error("unknown group {0:?} (not in the image's /etc/group)")]
    UnknownGroup(String),
}

/// An image's layers, top-most first.
#[derive(Debug, Clone, Default)]
pub struct RootfsView {
    layers: Vec<PathBuf>,
}

fn rel(path: &str) -> &str {
    path.trim_start_matches('/')
}

impl RootfsView {
    /// A view over `layers` (top-most first, as `Image::snapshots` returns them).
    pub fn new(layers: Vec<PathBuf>) -> Self {
        Self { layers }
    }

    /// The layer directories, top-most first.
    pub fn layers(&self) -> &[PathBuf] {
        &self.layers
    }

    /// The top-most layer file for `path`, `None` when absent or deleted by a whiteout.
    pub fn find(&self, path: &str) -> Option<PathBuf> {
        let r = rel(path);
        let (dir, base) = match r.rsplit_once('/') {
            Some((d, b)) => (d, b),
            None => ("", r),
        };
        for layer in &self.layers {
            if !base.is_empty() && layer.join(dir).join(format!(".wh.{base}")).exists() {
                return None;
            }
            let p = layer.join(r);
            if p.symlink_metadata().is_ok() {
                return Some(p);
            }
            if layer.join(dir).join(".wh..wh..opq").exists() {
                return None;
            }
        }
        None
    }

    /// Whether `path` exists and is a directory (following a final symlink inside the view
    /// is not attempted: a symlinked directory counts as not a directory).
    pub fn is_dir(&self, path: &str) -> bool {
        if rel(path).is_empty() {
            return true;
        }
        self.find(path)
            .and_then(|p| p.symlink_metadata().ok())
            .is_some_and(|m| m.is_dir())
    }

    fn read(&self, path: &str) -> String {
        self.find(path)
            .and_then(|p| std::fs::read_to_string(p).ok())
            .unwrap_or_default()
    }

    /// Resolves `user[:group]` (names or numbers) to a uid and gid. Without a group, the
    /// user's primary group from `/etc/passwd` (0 for a number not listed).
    pub fn user(&self, spec: &str) -> Result<(u32, u32), UserError> {
        let (user, group) = match spec.split_once(':') {
            Some((u, g)) => (u, Some(g)),
            None => (spec, None),
        };
        let passwd = self.read("/etc/passwd");
        let entry = passwd.lines().find_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.len() >= 4 && (f[0] == user || f[2] == user))
                .then(|| (f[2].parse::<u32>(), f[3].parse::<u32>()))
        });
        let (uid, primary) = match (user.parse::<u32>(), entry) {
            (Ok(n), Some((_, Ok(g)))) => (n, g),
            (Ok(n), _) => (n, 0),
            (Err(_), Some((Ok(u), Ok(g)))) => (u, g),
            (Err(_), _) => return Err(UserError::UnknownUser(user.to_string())),
        };
        let gid = match group {
            None => primary,
            Some(g) => match g.parse::<u32>() {
                Ok(n) => n,
                Err(_) => self
                    .read("/etc/group")
                    .lines()
                    .find_map(|l| {
                        let f: Vec<&str> = l.split(':').collect();
                        (f.len() >= 3 && f[0] == g).then(|| f[2].parse::<u32>().ok())?
                    })
                    .ok_or_else(|| UserError::UnknownGroup(g.to_string()))?,
            },
        };
        Ok((uid, gid))
    }
}

/// Joins `path` to `workdir` unless it is absolute, and cleans the result.
pub fn absolute(workdir: &str, path: &str) -> String {
    let joined = if path.starts_with('/') {
        path.to_string()
    } else {
        format!("{}/{path}", if workdir.is_empty() { "/" } else { workdir })
    };
    crate::dockerignore::clean(&joined)
}

/// Whether `path` names a directory by its spelling (`dir/`, `.`, `..`).
pub fn names_dir(path: &str) -> bool {
    path.ends_with('/') || path.ends_with("/.") || path == "." || path == ".."
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    #[test]
    fn find_honours_whiteouts_and_opaque_dirs() {
        let t = tempfile::tempdir().unwrap();
        let (top, bottom) = (t.path().join("top"), t.path().join("bottom"));
        fs::create_dir_all(bottom.join("etc/old")).unwrap();
        fs::write(bottom.join("etc/gone"), "x").unwrap();
        fs::write(bottom.join("etc/old/f"), "x").unwrap();
        fs::create_dir_all(top.join("etc/old")).unwrap();
        fs::write(top.join("etc/.wh.gone"), "").unwrap();
        fs::write(top.join("etc/old/.wh..wh..opq"), "").unwrap();
        let v = RootfsView::new(vec![top, bottom]);
        assert!(v.is_dir("/etc"));
        assert!(v.is_dir("/etc/old"));
        assert_eq!(v.find("/etc/gone"), None);
        assert_eq!(v.find("/etc/old/f"), None);
        assert!(v.is_dir("/"));
        assert!(!v.is_dir("/nope"));
    }

    #[test]
    fn users_and_groups_by_name_or_number() {
        let t = tempfile::tempdir().unwrap();
        fs::create_dir_all(t.path().join("etc")).unwrap();
        fs::write(
            t.path().join("etc/passwd"),
            "root:x:0:0::/root:/bin/sh\napp:x:1000:1001::/app:/bin/sh\n",
        )
        .unwrap();
        fs::write(
            t.path().join("etc/group"),
            "root:x:0:\nstaff:x:50:\napp:x:1001:\n",
        )
        .unwrap();
        let v = RootfsView::new(vec![t.path().to_path_buf()]);
        assert_eq!(v.user("app"), Ok((1000, 1001)));
        assert_eq!(v.user("app:staff"), Ok((1000, 50)));
        assert_eq!(v.user("1000"), Ok((1000, 1001)));
        assert_eq!(v.user("42:7"), Ok((42, 7)));
        assert_eq!(
            v.user("nobody"),
            Err(UserError::UnknownUser("nobody".into()))
        );
        assert_eq!(
            v.user("app:nogroup"),
            Err(UserError::UnknownGroup("nogroup".into()))
        );
    }

    #[test]
    fn absolute_paths_and_directory_spelling() {
        assert_eq!(absolute("/app", "src"), "/app/src");
        assert_eq!(absolute("", "src"), "/src");
        assert_eq!(absolute("/app", "/etc/../x"), "/x");
        assert!(names_dir("/app/"));
        assert!(names_dir("."));
        assert!(!names_dir("/app"));
    }
}
