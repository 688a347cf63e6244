//! Finding the stack files and naming the project, as Compose does.
//!
//! Files: the `-f` list (`-` is stdin), else `COMPOSE_FILE` (split on
//! `COMPOSE_PATH_SEPARATOR`, default `:`), else the first of `compose.yaml`,
//! `compose.yml`, `docker-compose.yaml`, `docker-compose.yml` found in the working
//! directory or its parents, plus its override file (`compose.override.yaml`, ...) when
//! present. Project name: `-p`, `COMPOSE_PROJECT_NAME`, top-level `name:`, else the
//! project directory's name, normalized.

use std::path::{Path, PathBuf};

use indexmap::IndexMap;

use crate::diagnostic::Diagnostic;

/// Default file names, in Compose's order of preference.
pub const DEFAULT_FILES: [&str; 4] = [
    "compose.yaml",
    "compose.yml",
    "docker-compose.yaml",
    "docker-compose.yml",
];

/// Override file names, matched to the default file found.
const OVERRIDE_FILES: [&str; 4] = [
    "compose.override.yaml",
    "compose.override.yml",
    "docker-compose.override.yaml",
    "docker-compose.override.yml",
];

/// Problems finding the files or naming the project.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DiscoverError {
    /// No `-f`, no `COMPOSE_FILE`, and no default file up the directory tree.
    #[error("no configuration file provided: none of compose.yaml, compose.yml, docker-compose.yaml, docker-compose.yml found in {} or its parents", .0.display())]
    NoConfigFile(PathBuf),
    /// An explicit project name that is not normalized.
    #[error(
        "invalid project name `{0}`: must be non-empty, contain only lowercase letters, digits, dashes and underscores, and start with a letter or digit"
    )]
    InvalidProjectName(String),
    /// A directory name with nothing usable as a project name.
    #[error("cannot derive a project name from {}; set `name:` or use -p", .0.display())]
    NoProjectName(PathBuf),
    /// An `env_file` marked required that does not exist.
    #[error("env file {} not found", .0.display())]
    EnvFileNotFound(PathBuf),
}

/// One stack file to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileRef {
    /// A file on disk (absolute).
    Path(PathBuf),
    /// Standard input (`-f -`).
    Stdin,
}

impl FileRef {
    /// The name shown in diagnostics.
    pub fn display_path(&self) -> PathBuf {
        match self {
            FileRef::Path(p) => p.clone(),
            FileRef::Stdin => PathBuf::from("-"),
        }
    }
}

/// Makes `p` absolute against `base`, without touching the file system.
pub fn absolute(base: &Path, p: &Path) -> PathBuf {
    let joined = if p.is_absolute() {
        p.to_path_buf()
    } else {
        base.join(p)
    };
    normalize(&joined)
}

/// Removes `.` and resolves `..` lexically.
pub fn normalize(p: &Path) -> PathBuf {
    use std::path::Component;
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    out.push("..");
                }
            }
            other => out.push(other.as_os_str()),
        }
    }
    if out.as_os_str().is_empty() {
        out.push(".");
    }
    out
}

/// Decides which files to load.
pub fn files(
    given: &[PathBuf],
    working_dir: &Path,
    env: &IndexMap<String, String>,
) -> Result<Vec<FileRef>, Diagnostic> {
    if !given.is_empty() {
        return Ok(given
            .iter()
            .map(|f| {
                if f.as_os_str() == "-" {
                    FileRef::Stdin
                } else {
                    FileRef::Path(absolute(working_dir, f))
                }
            })
            .collect());
    }
    if let Some(list) = env.get("COMPOSE_FILE").filter(|s| !s.is_empty()) {
        let sep = env
            .get("COMPOSE_PATH_SEPARATOR")
            .map_or(":", String::as_str);
        return Ok(list
            .split(sep)
            .filter(|s| !s.is_empty())
            .map(|f| FileRef::Path(absolute(working_dir, Path::new(f))))
            .collect());
    }
    let mut dir = Some(working_dir);
    while let Some(d) = dir {
        for (i, name) in DEFAULT_FILES.iter().enumerate() {
            let candidate = d.join(name);
            if candidate.is_file() {
                let mut out = vec![FileRef::Path(candidate)];
                let family = if i < 2 {
                    &OVERRIDE_FILES[..2]
                } else {
                    &OVERRIDE_FILES[2..]
                };
                if let Some(o) = family.iter().map(|o| d.join(o)).find(|o| o.is_file()) {
                    out.push(FileRef::Path(o));
                }
                return Ok(out);
            }
        }
        dir = d.parent();
    }
    Err(Diagnostic::new(DiscoverError::NoConfigFile(
        working_dir.to_path_buf(),
    )))
}

/// Normalizes a directory name into a project name: lower case, only `[a-z0-9_-]`,
/// starting with a letter or digit.
pub fn normalize_project_name(s: &str) -> String {
    let lowered: String = s
        .to_lowercase()
        .chars()
        .filter(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_' || *c == '-')
        .collect();
    lowered.trim_start_matches(['_', '-']).to_owned()
}

/// Checks an explicitly given project name.
pub fn check_project_name(s: &str) -> Result<(), DiscoverError> {
    if s.is_empty() || normalize_project_name(s) != s {
        return Err(DiscoverError::InvalidProjectName(s.to_owned()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_normalized() {
        assert_eq!(normalize_project_name("My App.v2"), "myappv2");
        assert_eq!(normalize_project_name("_x-Y"), "x-y");
        assert!(check_project_name("Bad").is_err());
        assert!(check_project_name("good_1").is_ok());
        assert!(check_project_name("").is_err());
    }

    #[test]
    fn discovery_walks_up_and_adds_override() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("a/b");
        std::fs::create_dir_all(&sub).unwrap();
        std::fs::write(dir.path().join("compose.yaml"), "services: {}\n").unwrap();
        std::fs::write(dir.path().join("compose.override.yaml"), "services: {}\n").unwrap();
        let f = files(&[], &sub, &IndexMap::new()).unwrap();
        assert_eq!(
            f,
            vec![
                FileRef::Path(dir.path().join("compose.yaml")),
                FileRef::Path(dir.path().join("compose.override.yaml"))
            ]
        );
        let env: IndexMap<String, String> =
            [("COMPOSE_FILE".to_owned(), "x.yaml:y.yaml".to_owned())]
                .into_iter()
                .collect();
        assert_eq!(
            files(&[], &sub, &env).unwrap(),
            vec![
                FileRef::Path(sub.join("x.yaml")),
                FileRef::Path(sub.join("y.yaml"))
            ]
        );
        let empty = tempfile::tempdir().unwrap();
        assert!(files(&[], empty.path(), &IndexMap::new()).is_err());
    }

    #[test]
    fn paths_normalize_lexically() {
        assert_eq!(
            absolute(Path::new("/a/b"), Path::new("../c/./d")),
            PathBuf::from("/a/c/d")
        );
        assert_eq!(
            absolute(Path::new("/a"), Path::new("/x/..")),
            PathBuf::from("/")
        );
    }
}
