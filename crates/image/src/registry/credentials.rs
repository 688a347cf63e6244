//! Credentials files in the `auths` format of Docker's `config.json`:
//! `{"auths": {"registry": {"auth": base64("user:password")}}}`.
//!
//! berth writes its own file (mode 0600) on `login`/`logout` and also reads Docker's
//! `config.json` when present, including its credential helpers (`credHelpers`, `credsStore`;
//! see [`crate::registry::credential_helper`]). Other keys of the file are kept as they were.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use crate::fsio::{PathError, path_error, write_atomic};
use crate::registry::auth::Credentials;

/// Docker Hub's key in `auths`.
const DOCKER_HUB_KEY: &str = "https://index.docker.io/v1/";

/// Errors reading or writing a credentials file.
#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    /// A file operation failed.
    #[error(transparent)]
    Io(#[from] PathError),
    /// The file is not the expected JSON.
    #[error("invalid credentials file {path}")]
    Json {
        /// The file.
        path: PathBuf,
        /// Parse error.
        #[source]
        source: serde_json::Error,
    },
    /// A credential helper named by the file failed.
    #[error(transparent)]
    Helper(#[from] crate::registry::credential_helper::HelperError),
}

/// One credentials file.
#[derive(Debug, Clone)]
pub struct AuthFile {
    path: PathBuf,
    doc: serde_json::Map<String, serde_json::Value>,
}

fn key_for(registry: &str) -> String {
    if registry == crate::reference::DEFAULT_REGISTRY {
        DOCKER_HUB_KEY.to_owned()
    } else {
        registry.to_owned()
    }
}

fn strip_scheme(k: &str) -> &str {
    let k = k
        .strip_prefix("https://")
        .or_else(|| k.strip_prefix("http://"))
        .unwrap_or(k);
    k.split('/').next().unwrap_or(k)
}

impl AuthFile {
    /// Reads `path` (an absent file is an empty one).
    pub fn load(path: &Path) -> Result<AuthFile, CredentialsError> {
        let doc = match std::fs::read(path) {
            Ok(data) => serde_json::from_slice(&data).map_err(|source| CredentialsError::Json {
                path: path.to_owned(),
                source,
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Default::default(),
            Err(e) => return Err(path_error("reading", path, e).into()),
        };
        Ok(AuthFile {
            path: path.to_owned(),
            doc,
        })
    }

    /// berth's own file: `$BERTH_AUTH_FILE`, else `$XDG_CONFIG_HOME/berth/auth.json`, else
    /// `~/.config/berth/auth.json`.
    pub fn default_path() -> PathBuf {
        if let Some(p) = std::env::var_os("BERTH_AUTH_FILE") {
            return p.into();
        }
        let config = std::env::var_os("XDG_CONFIG_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))
            .unwrap_or_else(|| PathBuf::from("/root/.config"));
        config.join("berth").join("auth.json")
    }

    /// Docker's file: `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`.
    pub fn docker_path() -> Option<PathBuf> {
        if let Some(d) = std::env::var_os("DOCKER_CONFIG") {
            return Some(PathBuf::from(d).join("config.json"));
        }
        std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".docker").join("config.json"))
    }

    /// Credentials for `registry` from berth's file, then Docker's (its credential helper
    /// for that registry, else its `credsStore`, else its `auths`); anonymous if none has
    /// any. Unreadable files and failing helpers are skipped with a logged warning (a
    /// broken Docker config must not break berth).
    pub fn lookup(registry: &str) -> Credentials {
        let own = Self::default_path();
        let docker = Self::docker_path();
        let search_path = std::env::var_os("PATH");
        match Self::try_lookup(registry, &own, docker.as_deref(), search_path.as_deref()) {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!("no credentials for {registry}: {e}");
                Credentials::Anonymous
            }
        }
    }

    /// [`AuthFile::lookup`] with explicit files and helper search path (`PATH`-style), and
    /// errors reported. An absent file counts as empty; an unreadable one is an error.
    pub fn try_lookup(
        registry: &str,
        own: &Path,
        docker: Option<&Path>,
        search_path: Option<&OsStr>,
    ) -> Result<Credentials, CredentialsError> {
        if let Some(c) = AuthFile::load(own)?.get(registry) {
            return Ok(c);
        }
        let Some(docker) = docker else {
            return Ok(Credentials::Anonymous);
        };
        let f = AuthFile::load(docker)?;
        if let Some(helper) = f.helper(registry) {
            let found =
                crate::registry::credential_helper::get(helper, &key_for(registry), search_path)?;
            if let Some(c) = found {
                return Ok(c);
            }
        }
        Ok(f.get(registry).unwrap_or(Credentials::Anonymous))
    }

    /// The credential helper Docker's file names for `registry`: its `credHelpers` entry,
    /// else `credsStore`.
    pub fn helper(&self, registry: &str) -> Option<&str> {
        let want = key_for(registry);
        let per_registry = self
            .doc
            .get("credHelpers")
            .and_then(|h| h.as_object())
            .and_then(|h| {
                h.iter()
                    .find(|(k, _)| strip_scheme(k) == strip_scheme(&want))
                    .and_then(|(_, v)| v.as_str())
            });
        per_registry
            .or_else(|| self.doc.get("credsStore").and_then(|s| s.as_str()))
            .filter(|s| !s.is_empty())
    }

    fn auths(&self) -> Option<&serde_json::Map<String, serde_json::Value>> {
        self.doc.get("auths")?.as_object()
    }

    /// Credentials stored for `registry`.
    pub fn get(&self, registry: &str) -> Option<Credentials> {
        let want = key_for(registry);
        let auths = self.auths()?;
        let entry = auths.get(&want).or_else(|| {
            auths
                .iter()
                .find(|(k, _)| strip_scheme(k) == strip_scheme(&want))
                .map(|(_, v)| v)
        })?;
        if let (Some(u), Some(p)) = (
            entry.get("username").and_then(|v| v.as_str()),
            entry.get("password").and_then(|v| v.as_str()),
        ) {
            return Some(Credentials::Basic {
                username: u.to_owned(),
                password: p.to_owned(),
            });
        }
        let decoded = STANDARD.decode(entry.get("auth")?.as_str()?).ok()?;
        let text = String::from_utf8(decoded).ok()?;
        let (u, p) = text.split_once(':')?;
        Some(Credentials::Basic {
            username: u.to_owned(),
            password: p.to_owned(),
        })
    }

    /// Stores credentials for `registry`.
    pub fn set(&mut self, registry: &str, username: &str, password: &str) {
        let auths = self
            .doc
            .entry("auths")
            .or_insert_with(|| serde_json::Value::Object(Default::default()));
        if !auths.is_object() {
            *auths = serde_json::Value::Object(Default::default());
        }
        if let Some(map) = auths.as_object_mut() {
            map.insert(
                key_for(registry),
                serde_json::json!({ "auth": STANDARD.encode(format!("{username}:{password}")) }),
            );
        }
    }

    /// Forgets `registry`; returns whether it was there.
    pub fn remove(&mut self, registry: &str) -> bool {
        let want = key_for(registry);
        let Some(map) = self.doc.get_mut("auths").and_then(|a| a.as_object_mut()) else {
            return false;
        };
        let keys: Vec<String> = map
            .keys()
            .filter(|k| **k == want || strip_scheme(k) == strip_scheme(&want))
            .cloned()
            .collect();
        for k in &keys {
            map.remove(k);
        }
        !keys.is_empty()
    }

    /// Writes the file atomically with mode 0600, creating its directory.
    pub fn save(&self) -> Result<(), CredentialsError> {
        if let Some(dir) = self.path.parent() {
            crate::fsio::mkdir_all(dir)?;
        }
        let data =
            serde_json::to_vec_pretty(&self.doc).map_err(|source| CredentialsError::Json {
                path: self.path.clone(),
                source,
            })?;
        write_atomic(&self.path, &data, 0o600)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn login_logout_round_trip_keeps_other_keys_and_mode() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/auth.json");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(
            &path,
            r#"{"credsStore":"x","auths":{"https://index.docker.io/v1/":{"auth":"dTpw"}}}"#,
        )
        .unwrap();
        let mut f = AuthFile::load(&path).unwrap();
        assert_eq!(
            f.get("docker.io"),
            Some(Credentials::Basic {
                username: "u".into(),
                password: "p".into()
            })
        );
        f.set("127.0.0.1:5000", "alice", "s:cret");
        f.save().unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let f = AuthFile::load(&path).unwrap();
        assert_eq!(
            f.get("127.0.0.1:5000"),
            Some(Credentials::Basic {
                username: "alice".into(),
                password: "s:cret".into()
            })
        );
        assert_eq!(f.doc["credsStore"], "x");
        let mut f = f;
        assert!(f.remove("127.0.0.1:5000"));
        assert!(!f.remove("127.0.0.1:5000"));
        assert_eq!(f.get("127.0.0.1:5000"), None);
    }

    fn script(dir: &Path, name: &str, body: &str) {
        let p = dir.join(name);
        std::fs::write(&p, format!("#!/bin/sh\n{body}")).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    fn basic(u: &str, p: &str) -> Credentials {
        Credentials::Basic {
            username: u.into(),
            password: p.into(),
        }
    }

    #[test]
    fn docker_credential_helpers_are_asked() {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("bin");
        std::fs::create_dir(&bin).unwrap();
        // The store knows one server and logs what it was asked.
        script(
            &bin,
            "docker-credential-teststore",
            &format!(
                r#"[ "$1" = get ] || exit 3
read -r server
echo "$server" >> {log}
case "$server" in
  127.0.0.1:5000) echo '{{"ServerURL":"127.0.0.1:5000","Username":"alice","Secret":"s3cret"}}' ;;
  https://index.docker.io/v1/) echo '{{"ServerURL":"x","Username":"hub","Secret":"h"}}' ;;
  *) echo "credentials not found in native keychain"; exit 1 ;;
esac
"#,
                log = dir.path().join("asked").display()
            ),
        );
        script(
            &bin,
            "docker-credential-perregistry",
            r#"echo '{"ServerURL":"registry.example:8443","Username":"bob","Secret":"b0b"}'"#,
        );
        script(
            &bin,
            "docker-credential-broken",
            "echo 'keychain locked' >&2; exit 1",
        );
        let docker = dir.path().join("config.json");
        std::fs::write(
            &docker,
            r#"{"credsStore":"teststore",
                "credHelpers":{"registry.example:8443":"perregistry","broken.example":"broken",
                               "missing.example":"nosuchhelper"},
                "auths":{"other.example":{"auth":"b3RoZXI6cHc="}}}"#,
        )
        .unwrap();
        let own = dir.path().join("berth-auth.json");
        let path = bin.as_os_str();
        let lookup = |r: &str| AuthFile::try_lookup(r, &own, Some(&docker), Some(path));

        assert_eq!(lookup("127.0.0.1:5000").unwrap(), basic("alice", "s3cret"));
        assert_eq!(lookup("docker.io").unwrap(), basic("hub", "h"));
        assert_eq!(
            lookup("registry.example:8443").unwrap(),
            basic("bob", "b0b")
        );
        // The store has nothing for it: `auths` answers.
        assert_eq!(lookup("other.example").unwrap(), basic("other", "pw"));
        assert_eq!(lookup("nobody.example").unwrap(), Credentials::Anonymous);
        assert_eq!(
            std::fs::read_to_string(dir.path().join("asked")).unwrap(),
            "127.0.0.1:5000\nhttps://index.docker.io/v1/\nother.example\nnobody.example\n"
        );
        let err = lookup("broken.example").unwrap_err().to_string();
        assert!(
            err.ends_with("docker-credential-broken failed: keychain locked"),
            "{err}"
        );
        assert_eq!(
            lookup("missing.example").unwrap_err().to_string(),
            "credential helper docker-credential-nosuchhelper not found in PATH"
        );

        // berth's own file wins over Docker's helpers.
        let mut f = AuthFile::load(&own).unwrap();
        f.set("127.0.0.1:5000", "carol", "c");
        f.save().unwrap();
        assert_eq!(lookup("127.0.0.1:5000").unwrap(), basic("carol", "c"));
    }
}
