//! Docker credential helpers: `credHelpers` (per registry) and `credsStore` (the default) in
//! Docker's `config.json` name a program `docker-credential-<name>` found in `PATH`.
//!
//! Protocol (docker/docker-credential-helpers): `docker-credential-<name> get` reads the
//! server URL on stdin and prints `{"ServerURL": …, "Username": …, "Secret": …}`; when it
//! has nothing for that server it exits non-zero with `credentials not found in native
//! keychain` on stdout. A `Username` of `<token>` marks an identity token (an OAuth refresh
//! token), which berth cannot use yet: such an answer counts as no credentials.

use std::ffi::OsStr;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::registry::auth::Credentials;

/// What the helpers print when they hold nothing for the server.
const NOT_FOUND: &str = "credentials not found in native keychain";

/// Errors running a credential helper.
#[derive(Debug, thiserror::Error)]
pub enum HelperError {
    /// No `docker-credential-<name>` in the search path.
    #[error("credential helper {program} not found in PATH")]
    NotFound {
        /// The program name.
        program: String,
    },
    /// The program could not be run.
    #[error("running credential helper {}", .program.display())]
    Run {
        /// The program.
        program: PathBuf,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// The helper exited with an error of its own.
    #[error("credential helper {} failed: {message}", .program.display())]
    Failed {
        /// The program.
        program: PathBuf,
        /// What it printed.
        message: String,
    },
    /// The helper's answer is not the expected JSON.
    #[error("credential helper {} printed an invalid answer", .program.display())]
    Json {
        /// The program.
        program: PathBuf,
        /// Parse error.
        #[source]
        source: serde_json::Error,
    },
}

#[derive(serde::Deserialize)]
struct Answer {
    #[serde(rename = "Username", default)]
    username: String,
    #[serde(rename = "Secret", default)]
    secret: String,
}

/// Finds `program` in the directories of `search_path` (a `PATH`-style list).
fn find(program: &str, search_path: Option<&OsStr>) -> Option<PathBuf> {
    let dirs = search_path?;
    std::env::split_paths(dirs)
        .map(|d| d.join(program))
        .find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Asks helper `name` for the credentials of `server` (the `auths` key form: a host, or
/// `https://index.docker.io/v1/` for Docker Hub). `search_path` is where to look for the
/// program (normally `$PATH`). `Ok(None)` when the helper has nothing for that server.
pub fn get(
    name: &str,
    server: &str,
    search_path: Option<&OsStr>,
) -> Result<Option<Credentials>, HelperError> {
    let program_name = format!("docker-credential-{name}");
    let program = find(&program_name, search_path).ok_or(HelperError::NotFound {
        program: program_name,
    })?;
    let run_err = |source| HelperError::Run {
        program: program.clone(),
        source,
    };
    let mut child = Command::new(&program)
        .arg("get")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(run_err)?;
    if let Some(mut stdin) = child.stdin.take() {
        // A helper that exits without reading its input is judged by its exit status.
        let _ = stdin.write_all(server.as_bytes());
    }
    let out = child.wait_with_output().map_err(run_err)?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        if stdout.trim() == NOT_FOUND {
            return Ok(None);
        }
        let stderr = String::from_utf8_lossy(&out.stderr);
        let message = [stdout.trim(), stderr.trim()]
            .into_iter()
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
            .join(": ");
        return Err(HelperError::Failed {
            program,
            message: if message.is_empty() {
                out.status.to_string()
            } else {
                message
            },
        });
    }
    let answer: Answer =
        serde_json::from_slice(&out.stdout).map_err(|source| HelperError::Json {
            program: program.clone(),
            source,
        })?;
    if answer.username == "<token>" || (answer.username.is_empty() && answer.secret.is_empty()) {
        return Ok(None);
    }
    Ok(Some(Credentials::Basic {
        username: answer.username,
        password: answer.secret,
    }))
}
