//! What a build is given besides its context: secrets for `RUN --mount=type=secret` and SSH
//! agent sockets for `RUN --mount=type=ssh` (`berth build --secret`/`--ssh`, Compose's
//! `build.secrets`/`build.ssh`). Neither enters a layer, the history or a cache key.

use std::fmt;
use std::path::PathBuf;

/// Where a secret's bytes come from.
#[derive(Clone, PartialEq, Eq)]
pub enum SecretSource {
    /// A file, read when a `RUN` step mounts it (`--secret id=x,src=path`).
    File(PathBuf),
    /// The bytes themselves (`--secret id=x,env=VAR` read from the environment).
    Value(Vec<u8>),
}

impl fmt::Debug for SecretSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::File(p) => f.debug_tuple("File").field(p).finish(),
            // Never print a secret's value (logs, panics, error reports).
            Self::Value(v) => write!(f, "Value(<{} bytes>)", v.len()),
        }
    }
}

/// Why a `--secret` or `--ssh` value is not usable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretSpecError {
    /// Not `id=...,src=...` / `id=...,env=...`.
    #[error("invalid --secret {0:?}: expected id=ID[,src=PATH|,env=VAR]")]
    Secret(String),
    /// `env=VAR` names a variable that is not set.
    #[error("--secret {id}: the environment variable {var} is not set")]
    MissingEnv {
        /// The secret's id.
        id: String,
        /// The variable.
        var: String,
    },
    /// `--ssh default` without `SSH_AUTH_SOCK`.
    #[error(
        "--ssh {0}: no agent socket given and SSH_AUTH_SOCK is not set (start ssh-agent or pass --ssh {0}=/path/to/agent.sock)"
    )]
    NoAgent(String),
}

/// Parses `berth build --secret`: `id=ID[,src|source=PATH][,env=VAR][,type=file|env]`, as
/// `docker build` does (a bare `id=x` reads the variable `x`, then the file `x`).
pub fn parse_secret(
    spec: &str,
    env: impl Fn(&str) -> Option<String>,
) -> Result<(String, SecretSource), SecretSpecError> {
    let bad = || SecretSpecError::Secret(spec.to_string());
    let (mut id, mut src, mut var, mut typ) = (None, None, None, None);
    for field in spec.split(',').filter(|f| !f.is_empty()) {
        let (k, v) = field.split_once('=').ok_or_else(bad)?;
        match k.trim().to_ascii_lowercase().as_str() {
            "id" => id = Some(v.to_string()),
            "src" | "source" => src = Some(v.to_string()),
            "env" => var = Some(v.to_string()),
            "type" => typ = Some(v.to_string()),
            _ => return Err(bad()),
        }
    }
    let id = id.filter(|i| !i.is_empty()).ok_or_else(bad)?;
    let from_env = |var: String| match env(&var) {
        Some(v) => Ok((id.clone(), SecretSource::Value(v.into_bytes()))),
        None => Err(SecretSpecError::MissingEnv {
            id: id.clone(),
            var,
        }),
    };
    match (typ.as_deref(), src, var) {
        (Some("env"), src, var) => from_env(var.or(src).unwrap_or_else(|| id.clone())),
        (None | Some("file"), Some(path), None) => {
            Ok((id.clone(), SecretSource::File(path.into())))
        }
        (None, None, Some(var)) => from_env(var),
        (None, None, None) => match env(&id) {
            Some(v) => Ok((id.clone(), SecretSource::Value(v.into_bytes()))),
            None => Ok((id.clone(), SecretSource::File(id.clone().into()))),
        },
        _ => Err(bad()),
    }
}

/// Parses `berth build --ssh`: `default` (or any id) uses `$SSH_AUTH_SOCK`; `id=PATH` names
/// the agent socket.
pub fn parse_ssh(
    spec: &str,
    env: impl Fn(&str) -> Option<String>,
) -> Result<(String, PathBuf), SecretSpecError> {
    match spec.split_once('=') {
        Some((id, path)) if !id.is_empty() && !path.is_empty() => {
            // Docker accepts several comma-separated paths (keys); the first socket is used.
            let first = path.split(',').next().unwrap_or(path);
            Ok((id.to_string(), PathBuf::from(first)))
        }
        Some(_) => Err(SecretSpecError::NoAgent(spec.to_string())),
        None => env("SSH_AUTH_SOCK")
            .filter(|s| !s.is_empty())
            .map(|s| (spec.to_string(), PathBuf::from(s)))
            .ok_or_else(|| SecretSpecError::NoAgent(spec.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(k: &str) -> Option<String> {
        match k {
            "TOKEN" => Some("t0k".into()),
            "SSH_AUTH_SOCK" => Some("/tmp/agent.sock".into()),
            _ => None,
        }
    }

    #[test]
    fn secrets_from_files_and_environment() {
        assert_eq!(
            parse_secret("id=aws,src=/home/u/.aws/credentials", env).unwrap(),
            (
                "aws".into(),
                SecretSource::File("/home/u/.aws/credentials".into())
            )
        );
        assert_eq!(
            parse_secret("id=tok,env=TOKEN", env).unwrap(),
            ("tok".into(), SecretSource::Value(b"t0k".to_vec()))
        );
        assert_eq!(
            parse_secret("id=TOKEN", env).unwrap().1,
            SecretSource::Value(b"t0k".to_vec())
        );
        assert_eq!(
            parse_secret("id=x,type=env,src=TOKEN", env).unwrap().1,
            SecretSource::Value(b"t0k".to_vec())
        );
        assert_eq!(
            parse_secret("id=x,env=NOPE", env),
            Err(SecretSpecError::MissingEnv {
                id: "x".into(),
                var: "NOPE".into()
            })
        );
        assert!(matches!(
            parse_secret("src=/a", env),
            Err(SecretSpecError::Secret(_))
        ));
        assert!(matches!(
            parse_secret("id=a,what=b", env),
            Err(SecretSpecError::Secret(_))
        ));
    }

    #[test]
    fn secret_values_are_not_printed() {
        let s = SecretSource::Value(b"hunter2".to_vec());
        assert_eq!(format!("{s:?}"), "Value(<7 bytes>)");
    }

    #[test]
    fn ssh_agent_from_environment_or_path() {
        assert_eq!(
            parse_ssh("default", env).unwrap(),
            ("default".into(), PathBuf::from("/tmp/agent.sock"))
        );
        assert_eq!(
            parse_ssh("gh=/run/a.sock", env).unwrap(),
            ("gh".into(), PathBuf::from("/run/a.sock"))
        );
        assert_eq!(
            parse_ssh("default", |_| None),
            Err(SecretSpecError::NoAgent("default".into()))
        );
    }
}
