//! The `develop.watch` rules of a project, compiled: absolute host paths, container
//! targets and the ignore/include filters (rule patterns, the build context's
//! `.dockerignore` or `<Dockerfile>.dockerignore`, editor temp files and `.git`, as
//! Compose composes them, and the `.gitignore` files of the project, the build context and
//! the watched directory, which Compose does not read: what git ignores, such as build
//! output and dependency trees, should not be synced over the container's own).

use std::path::{Path, PathBuf};

use berth_build::dockerignore::{DockerIgnore, DockerIgnoreError};
use berth_compose::Project;
use berth_compose::model::develop::{WatchAction, WatchRule};
use ignore::Match;
use ignore::gitignore::{Gitignore, GitignoreBuilder};

/// Why the rules of a project could not be compiled.
#[derive(Debug, thiserror::Error)]
pub enum RulesError {
    /// An `ignore`/`include` pattern or the build context's `.dockerignore` is malformed.
    #[error("service {service}: {source}")]
    Ignore {
        /// The service.
        service: String,
        /// The pattern problem.
        #[source]
        source: DockerIgnoreError,
    },
    /// A sync rule has no `target`.
    #[error("service {service}: watch rule for {path} with action {action} needs a target")]
    NoTarget {
        /// The service.
        service: String,
        /// The rule's path.
        path: PathBuf,
        /// The action.
        action: &'static str,
    },
    /// `sync+exec` without `exec.command`.
    #[error("service {service}: sync+exec rule for {path} needs exec.command")]
    NoCommand {
        /// The service.
        service: String,
        /// The rule's path.
        path: PathBuf,
    },
    /// A `.gitignore` file could not be read or has a bad pattern.
    #[error("service {service}: {path}: {message}")]
    GitIgnore {
        /// The service.
        service: String,
        /// The `.gitignore` file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A named service has no watch rules.
    #[error("service {0} has no develop.watch rules")]
    NoRules(String),
}

/// One compiled rule of one service.
#[derive(Debug, Clone)]
pub struct Rule {
    /// The service.
    pub service: String,
    /// What to do.
    pub action: WatchAction,
    /// Absolute host path (file or directory).
    pub path: PathBuf,
    /// Absolute path in the container (sync actions).
    pub target: Option<String>,
    /// Command of `sync+exec`.
    pub exec: Option<Vec<String>>,
    /// Sync differing files before the loop starts.
    pub initial_sync: bool,
    ignore: DockerIgnore,
    include: DockerIgnore,
    context: Option<(PathBuf, DockerIgnore)>,
    /// `.gitignore` files that apply, each matched under its own directory, shallowest first.
    git: Vec<Gitignore>,
}

/// The name of an action as Compose spells it.
pub fn action_name(a: WatchAction) -> &'static str {
    match a {
        WatchAction::Sync => "sync",
        WatchAction::Rebuild => "rebuild",
        WatchAction::Restart => "restart",
        WatchAction::SyncRestart => "sync+restart",
        WatchAction::SyncExec => "sync+exec",
    }
}

/// Whether an action copies files into the container.
pub fn syncs(a: WatchAction) -> bool {
    matches!(
        a,
        WatchAction::Sync | WatchAction::SyncRestart | WatchAction::SyncExec
    )
}

/// Editor temp files and VCS metadata that never trigger anything.
pub fn is_editor_noise(path: &Path) -> bool {
    let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
        return false;
    };
    name.ends_with(".swp")
        || name.ends_with(".swx")
        || name.ends_with(".swpx")
        || name.ends_with('~')
        || name.starts_with(".#")
        || name == "4913"
        || name.starts_with(".berth-sync-")
        || path.components().any(|c| c.as_os_str() == ".git")
}

fn rel(path: &Path, base: &Path) -> Option<String> {
    let r = path.strip_prefix(base).ok()?;
    let s = r.to_str()?;
    Some(if s.is_empty() {
        ".".to_owned()
    } else {
        s.to_owned()
    })
}

impl Rule {
    /// Whether `path` (absolute, on the host) is under this rule and not ignored.
    pub fn wants(&self, path: &Path) -> bool {
        let Some(r) = rel(path, &self.path) else {
            return false;
        };
        if is_editor_noise(path) || (r != "." && self.ignore.is_excluded(&r)) {
            return false;
        }
        if let Some((ctx, di)) = &self.context
            && let Some(c) = rel(path, ctx)
            && c != "."
            && di.is_excluded(&c)
        {
            return false;
        }
        if self.git_ignored(path, path.is_dir()) {
            return false;
        }
        if !self.include.patterns.is_empty() && r != "." && !self.include.is_excluded(&r) {
            // `include` lists what counts; a directory may hold included files.
            return path.is_dir();
        }
        true
    }

    /// Whether the directory `dir` can be skipped entirely (never descended into).
    pub fn prunes(&self, dir: &Path) -> bool {
        let Some(r) = rel(dir, &self.path) else {
            return true;
        };
        if r == "." {
            return false;
        }
        if dir.components().any(|c| c.as_os_str() == ".git") {
            return true;
        }
        if !self.ignore.has_exceptions() && self.ignore.is_excluded(&r) {
            return true;
        }
        if let Some((ctx, di)) = &self.context
            && !di.has_exceptions()
            && let Some(c) = rel(dir, ctx)
            && c != "."
            && di.is_excluded(&c)
        {
            return true;
        }
        self.git.iter().all(|g| g.num_whitelists() == 0) && self.git_ignored(dir, true)
    }

    /// Whether git would ignore `path`: the deepest `.gitignore` with a say decides, as in git.
    fn git_ignored(&self, path: &Path, is_dir: bool) -> bool {
        for g in self.git.iter().rev() {
            let root = g.path();
            if path == root || !path.starts_with(root) {
                continue;
            }
            match g.matched_path_or_any_parents(path, is_dir) {
                Match::Ignore(_) => return true,
                Match::Whitelist(_) => return false,
                Match::None => {}
            }
        }
        false
    }

    /// Where `path` (under [`Rule::path`]) lands in the container.
    pub fn target_of(&self, path: &Path) -> Option<String> {
        let target = self.target.as_ref()?;
        let r = rel(path, &self.path)?;
        Some(if r == "." {
            target.clone()
        } else {
            format!("{}/{r}", target.trim_end_matches('/'))
        })
    }
}

/// Compiles the watch rules of `services` (empty: every service with rules).
pub fn compile(project: &Project, services: &[String]) -> Result<Vec<Rule>, RulesError> {
    let mut out = Vec::new();
    for name in services {
        let has = project
            .services
            .get(name)
            .and_then(|s| s.develop.as_ref())
            .is_some_and(|d| !d.watch.is_empty());
        if !has {
            return Err(RulesError::NoRules(name.clone()));
        }
    }
    for (name, svc) in &project.services {
        if !services.is_empty() && !services.contains(name) {
            continue;
        }
        let Some(develop) = &svc.develop else {
            continue;
        };
        let context = match svc.build.as_ref() {
            Some(b) => match b.context.as_deref() {
                Some(c) => {
                    let dir = project.working_dir.join(c);
                    let di = context_ignore(&dir, b.dockerfile.as_deref()).map_err(|source| {
                        RulesError::Ignore {
                            service: name.clone(),
                            source,
                        }
                    })?;
                    Some((dir, di))
                }
                None => None,
            },
            None => None,
        };
        for r in &develop.watch {
            out.push(rule(project, name, r, context.clone())?);
        }
    }
    Ok(out)
}

/// The ignore file of a build context, found as Compose's watch finds it:
/// `<dockerfile>.dockerignore` next to the context's Dockerfile when there is one (the
/// Dockerfile-specific file replaces the other), else `<context>/.dockerignore`.
/// `.gitignore` files are not part of it (see [`Rule`]'s own `.gitignore` handling).
pub fn context_ignore(
    context: &Path,
    dockerfile: Option<&str>,
) -> Result<DockerIgnore, DockerIgnoreError> {
    let specific = context.join(format!(
        "{}.dockerignore",
        dockerfile.unwrap_or("Dockerfile")
    ));
    match std::fs::read_to_string(&specific) {
        Ok(text) => DockerIgnore::parse(&text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => DockerIgnore::read(context),
        Err(source) => Err(DockerIgnoreError::Read {
            path: specific,
            source,
        }),
    }
}

fn rule(
    project: &Project,
    service: &str,
    r: &WatchRule,
    context: Option<(PathBuf, DockerIgnore)>,
) -> Result<Rule, RulesError> {
    let path = project.working_dir.join(&r.path);
    let patterns = |list: &[String]| {
        DockerIgnore::parse(&list.join("\n")).map_err(|source| RulesError::Ignore {
            service: service.to_owned(),
            source,
        })
    };
    if syncs(r.action) && r.target.is_none() {
        return Err(RulesError::NoTarget {
            service: service.to_owned(),
            path,
            action: action_name(r.action),
        });
    }
    let exec = r.exec.as_ref().and_then(|h| h.command.clone());
    let mut dirs: Vec<PathBuf> = vec![project.working_dir.clone()];
    if let Ok(below) = path.strip_prefix(&project.working_dir) {
        let mut d = project.working_dir.clone();
        for c in below.components() {
            d.push(c);
            dirs.push(d.clone());
        }
    }
    dirs.extend(context.as_ref().map(|(c, _)| c.clone()));
    let git = gitignores(service, dirs)?;
    if r.action == WatchAction::SyncExec && exec.as_ref().is_none_or(|c| c.is_empty()) {
        return Err(RulesError::NoCommand {
            service: service.to_owned(),
            path,
        });
    }
    Ok(Rule {
        service: service.to_owned(),
        action: r.action,
        target: r.target.clone(),
        exec,
        initial_sync: r.initial_sync.unwrap_or(false),
        ignore: patterns(&r.ignore)?,
        include: patterns(&r.include)?,
        context,
        git,
        path,
    })
}

/// The `.gitignore` files in `dirs` (those that exist), shallowest first.
fn gitignores(service: &str, mut dirs: Vec<PathBuf>) -> Result<Vec<Gitignore>, RulesError> {
    dirs.sort_by(|a, b| (a.components().count(), a).cmp(&(b.components().count(), b)));
    dirs.dedup();
    let mut out = Vec::new();
    for dir in dirs {
        let file = dir.join(".gitignore");
        if !file.is_file() {
            continue;
        }
        let bad = |message: String| RulesError::GitIgnore {
            service: service.to_owned(),
            path: file.clone(),
            message,
        };
        let mut b = GitignoreBuilder::new(&dir);
        if let Some(e) = b.add(&file) {
            return Err(bad(e.to_string()));
        }
        out.push(b.build().map_err(|e| bad(e.to_string()))?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule_at(path: &str, ignore: &[&str], include: &[&str]) -> Rule {
        Rule {
            service: "web".into(),
            action: WatchAction::Sync,
            path: PathBuf::from(path),
            target: Some("/app".into()),
            exec: None,
            initial_sync: false,
            ignore: DockerIgnore::parse(&ignore.join("\n")).unwrap(),
            include: DockerIgnore::parse(&include.join("\n")).unwrap(),
            context: None,
            git: Vec::new(),
        }
    }

    #[test]
    fn ignore_patterns_are_relative_to_the_rule_path_and_prune_directories() {
        let r = rule_at("/p/src", &["node_modules", "*.log"], &[]);
        assert!(r.wants(Path::new("/p/src/a.js")));
        assert!(!r.wants(Path::new("/p/src/x.log")));
        assert!(!r.wants(Path::new("/p/src/node_modules/m/i.js")));
        assert!(!r.wants(Path::new("/p/other/a.js")));
        assert!(r.prunes(Path::new("/p/src/node_modules")));
        assert!(!r.prunes(Path::new("/p/src/lib")));
        assert_eq!(
            r.target_of(Path::new("/p/src/lib/a.js")).as_deref(),
            Some("/app/lib/a.js")
        );
    }

    #[test]
    fn editor_temp_files_and_git_never_count() {
        let r = rule_at("/p", &[], &[]);
        for noisy in [
            "/p/a.swp",
            "/p/a.rs~",
            "/p/.#a.rs",
            "/p/4913",
            "/p/.git/HEAD",
        ] {
            assert!(!r.wants(Path::new(noisy)), "{noisy}");
        }
        assert!(r.prunes(Path::new("/p/.git")));
    }

    #[test]
    fn a_dockerfile_specific_ignore_file_replaces_dockerignore() {
        let t = tempfile::tempdir().unwrap();
        std::fs::write(t.path().join(".dockerignore"), "*.md\n").unwrap();
        std::fs::write(t.path().join(".gitignore"), "*.env\n").unwrap();
        let plain = context_ignore(t.path(), None).unwrap();
        assert!(plain.is_excluded("a.md"));
        assert!(!plain.is_excluded("a.env"));
        std::fs::write(t.path().join("Dockerfile.dockerignore"), "secret.txt\n").unwrap();
        let specific = context_ignore(t.path(), None).unwrap();
        assert!(specific.is_excluded("secret.txt"));
        assert!(!specific.is_excluded("a.md"));
        std::fs::write(t.path().join("dev.Dockerfile.dockerignore"), "*.txt\n").unwrap();
        let named = context_ignore(t.path(), Some("dev.Dockerfile")).unwrap();
        assert!(named.is_excluded("notes.txt"));
        assert!(!named.is_excluded("a.md"));
    }

    #[test]
    fn gitignore_files_ignore_and_prune_and_the_deepest_decides() {
        let t = tempfile::tempdir().unwrap();
        let src = t.path().join("src");
        std::fs::create_dir_all(src.join("dist")).unwrap();
        std::fs::write(t.path().join(".gitignore"), "*.env\n/src/dist/\n").unwrap();
        std::fs::write(src.join(".gitignore"), "!keep.env\n").unwrap();
        let mut r = rule_at(src.to_str().unwrap(), &[], &[]);
        r.git = gitignores("web", vec![src.clone(), t.path().to_path_buf()]).unwrap();
        assert!(r.wants(&src.join("app.js")));
        assert!(!r.wants(&src.join("local.env")));
        assert!(!r.wants(&src.join("sub/deep.env")));
        assert!(r.wants(&src.join("keep.env")), "the deeper file's ! wins");
        assert!(!r.wants(&src.join("dist/bundle.js")));
        // A whitelist anywhere means an ignored directory may still hold wanted files.
        assert!(!r.prunes(&src.join("dist")));
        std::fs::write(src.join(".gitignore"), "").unwrap();
        r.git = gitignores("web", vec![src.clone(), t.path().to_path_buf()]).unwrap();
        assert!(r.prunes(&src.join("dist")));
        assert!(!r.prunes(&src.join("lib")));
    }

    #[test]
    fn include_limits_files() {
        let r = rule_at("/p", &[], &["*.py"]);
        assert!(r.wants(Path::new("/p/a.py")));
        assert!(!r.wants(Path::new("/p/a.txt")));
    }
}
