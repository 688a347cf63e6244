//! The build context: a directory walked lazily, filtered by `.dockerignore`.
//!
//! The walk is streaming: it holds the names of the directories on the current path,
//! never file contents, so a context of tens of thousands of files costs little memory.
//! Entries come in a stable order (names sorted per directory), symlinks are reported as
//! symlinks and never followed. COPY/ADD sources are resolved here: relative to the
//! context root (a leading `/` means the root too), never outside it, with Go
//! `filepath.Match` wildcards.

use std::fs;
use std::io::Read;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};

use crate::dockerignore::{DockerIgnore, DockerIgnoreError, Pattern, clean};

/// Why the context could not be read or a source not resolved.
#[derive(Debug, thiserror::Error)]
pub enum ContextError {
    /// The context directory itself is unusable.
    #[error("build context {path}")]
    Open {
        /// The directory.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// `.dockerignore` is unreadable or malformed.
    #[error(transparent)]
    Ignore(#[from] DockerIgnoreError),
    /// A file or directory of the context could not be read.
    #[error("reading {path}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A source that does not exist (or is excluded by `.dockerignore`).
    #[error("{source_path:?} not found in the build context (or excluded by .dockerignore)")]
    NotFound {
        /// The source as written.
        source_path: String,
    },
    /// A source outside the context (`../x`, or through a symlink).
    #[error("{source_path:?} is outside the build context")]
    Escapes {
        /// The source as written.
        source_path: String,
    },
    /// A wildcard that matches nothing.
    #[error("no file in the build context matches {pattern:?}")]
    NoMatch {
        /// The pattern as written.
        pattern: String,
    },
}

/// What kind of file an entry is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryKind {
    /// A regular file of `size` bytes.
    File {
        /// Size in bytes.
        size: u64,
    },
    /// A directory.
    Dir,
    /// A symbolic link (kept as a link).
    Symlink {
        /// The link's target as stored.
        target: PathBuf,
    },
    /// A FIFO, socket or device: skipped by COPY, as Docker does.
    Other,
}

/// One file of the context.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Path relative to the context root, `/`-separated; empty for the root itself.
    pub rel: String,
    /// Absolute path on disk.
    pub path: PathBuf,
    /// Kind.
    pub kind: EntryKind,
    /// Permission bits (`0o7777`).
    pub mode: u32,
    /// Modification time (seconds since the epoch).
    pub mtime: i64,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> ContextError + '_ {
    move |source| ContextError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn entry(rel: String, path: PathBuf) -> Result<Entry, ContextError> {
    let meta = fs::symlink_metadata(&path).map_err(io(&path))?;
    let ft = meta.file_type();
    let kind = if ft.is_symlink() {
        EntryKind::Symlink {
            target: fs::read_link(&path).map_err(io(&path))?,
        }
    } else if ft.is_dir() {
        EntryKind::Dir
    } else if ft.is_file() {
        EntryKind::File { size: meta.len() }
    } else {
        EntryKind::Other
    };
    Ok(Entry {
        rel,
        path,
        kind,
        mode: meta.permissions().mode() & 0o7777,
        mtime: meta.mtime(),
    })
}

/// A build context directory and its `.dockerignore`.
#[derive(Debug, Clone)]
pub struct Context {
    root: PathBuf,
    ignore: DockerIgnore,
}

/// A streaming, depth-first walk of part of the context.
pub struct Walk<'a> {
    ctx: &'a Context,
    first: Option<Result<Entry, ContextError>>,
    stack: Vec<(String, std::vec::IntoIter<String>)>,
    max_depth: usize,
}

fn join(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_string()
    } else {
        format!("{dir}/{name}")
    }
}

impl Walk<'_> {
    fn push_dir(&mut self, rel: &str) -> Result<(), ContextError> {
        if rel.matches('/').count() + usize::from(!rel.is_empty()) >= self.max_depth {
            return Ok(());
        }
        let path = self.ctx.root.join(rel);
        let mut names = Vec::new();
        for e in fs::read_dir(&path).map_err(io(&path))? {
            let e = e.map_err(io(&path))?;
            names.push(e.file_name().to_string_lossy().into_owned());
        }
        names.sort();
        self.stack.push((rel.to_string(), names.into_iter()));
        Ok(())
    }
}

impl Iterator for Walk<'_> {
    type Item = Result<Entry, ContextError>;

    fn next(&mut self) -> Option<Self::Item> {
        if let Some(first) = self.first.take() {
            if let Ok(e) = &first
                && e.kind == EntryKind::Dir
                && let Err(err) = self.push_dir(&e.rel.clone())
            {
                return Some(Err(err));
            }
            return Some(first);
        }
        loop {
            let (dir, names) = self.stack.last_mut()?;
            let Some(name) = names.next() else {
                self.stack.pop();
                continue;
            };
            let rel = join(dir, &name);
            let e = match entry(rel.clone(), self.ctx.root.join(&rel)) {
                Ok(e) => e,
                Err(err) => return Some(Err(err)),
            };
            let excluded = self.ctx.ignore.is_excluded(&rel);
            if e.kind == EntryKind::Dir
                && (!excluded || self.ctx.ignore.has_exceptions())
                && let Err(err) = self.push_dir(&rel)
            {
                return Some(Err(err));
            }
            if !excluded {
                return Some(Ok(e));
            }
        }
    }
}

fn has_wildcard(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

impl Context {
    /// Opens the context at `root`, reading its `.dockerignore`.
    pub fn open(root: &Path) -> Result<Self, ContextError> {
        let ignore = DockerIgnore::read(root)?;
        Self::with_ignore(root, ignore)
    }

    /// Opens the context at `root` with the given ignore rules.
    pub fn with_ignore(root: &Path, ignore: DockerIgnore) -> Result<Self, ContextError> {
        let root = root.canonicalize().map_err(|source| ContextError::Open {
            path: root.to_path_buf(),
            source,
        })?;
        if !root.is_dir() {
            return Err(ContextError::Open {
                path: root,
                source: std::io::Error::from(std::io::ErrorKind::NotADirectory),
            });
        }
        Ok(Self { root, ignore })
    }

    /// The context's root directory (canonical).
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The ignore rules.
    pub fn ignore(&self) -> &DockerIgnore {
        &self.ignore
    }

    /// Every entry of the context that `.dockerignore` keeps (the root excluded).
    pub fn walk(&self) -> Walk<'_> {
        let mut w = Walk {
            ctx: self,
            first: None,
            stack: Vec::new(),
            max_depth: usize::MAX,
        };
        if let Err(e) = w.push_dir("") {
            w.first = Some(Err(e));
        }
        w
    }

    /// `entry` itself, then (for a directory) everything below it that is kept.
    pub fn walk_from(&self, entry: Entry) -> Walk<'_> {
        Walk {
            ctx: self,
            first: Some(Ok(entry)),
            stack: Vec::new(),
            max_depth: usize::MAX,
        }
    }

    /// The entries a COPY/ADD source names: one for a path, any number for a wildcard.
    pub fn resolve(&self, source: &str) -> Result<Vec<Entry>, ContextError> {
        let cleaned = clean(source.trim_start_matches('/'));
        if cleaned == ".." || cleaned.starts_with("../") {
            return Err(ContextError::Escapes {
                source_path: source.to_string(),
            });
        }
        let rel = if cleaned == "." {
            String::new()
        } else {
            cleaned
        };
        if has_wildcard(&rel) {
            return self.glob(source, &rel);
        }
        let path = self.root.join(&rel);
        // Intermediate symlinks must not lead outside the context.
        if !rel.is_empty()
            && let Some(parent) = path.parent()
            && let Ok(real) = parent.canonicalize()
            && !real.starts_with(&self.root)
        {
            return Err(ContextError::Escapes {
                source_path: source.to_string(),
            });
        }
        let not_found = || ContextError::NotFound {
            source_path: source.to_string(),
        };
        match fs::symlink_metadata(&path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(not_found()),
            Err(e) if e.kind() == std::io::ErrorKind::NotADirectory => return Err(not_found()),
            Err(e) => return Err(io(&path)(e)),
            Ok(m) => {
                let excluded = !rel.is_empty() && self.ignore.is_excluded(&rel);
                if excluded && !(m.is_dir() && self.ignore.has_exceptions()) {
                    return Err(not_found());
                }
            }
        }
        Ok(vec![entry(rel, path)?])
    }

    fn glob(&self, source: &str, rel: &str) -> Result<Vec<Entry>, ContextError> {
        let pattern = Pattern::new(rel)
            .ok()
            .flatten()
            .ok_or_else(|| ContextError::NoMatch {
                pattern: source.to_string(),
            })?;
        let depth = rel.split('/').count();
        let mut w = self.walk();
        w.max_depth = depth;
        let mut out = Vec::new();
        for e in w {
            let e = e?;
            if e.rel.split('/').count() == depth && pattern.matches(&e.rel) {
                out.push(e);
            }
        }
        if out.is_empty() {
            return Err(ContextError::NoMatch {
                pattern: source.to_string(),
            });
        }
        Ok(out)
    }

    /// A digest of everything `sources` name: paths, kinds, modes, link targets and file
    /// contents (not times or owners), streamed. Equal digests mean COPY would produce
    /// the same files.
    pub fn digest(&self, sources: &[String]) -> Result<String, ContextError> {
        let mut h = Sha256::new();
        let mut buf = vec![0u8; 64 * 1024];
        for source in sources {
            h.update(b"source\0");
            h.update(source.as_bytes());
            h.update(b"\0");
            for top in self.resolve(source)? {
                for e in self.walk_from(top) {
                    let e = e?;
                    h.update(e.rel.as_bytes());
                    h.update(format!("\0{:o}\0", e.mode).as_bytes());
                    match &e.kind {
                        EntryKind::Dir => h.update(b"dir"),
                        EntryKind::Other => h.update(b"other"),
                        EntryKind::Symlink { target } => {
                            h.update(b"link\0");
                            h.update(target.as_os_str().as_encoded_bytes());
                        }
                        EntryKind::File { size } => {
                            h.update(format!("file\0{size}\0").as_bytes());
                            let mut f = fs::File::open(&e.path).map_err(io(&e.path))?;
                            loop {
                                let n = f.read(&mut buf).map_err(io(&e.path))?;
                                if n == 0 {
                                    break;
                                }
                                h.update(&buf[..n]);
                            }
                        }
                    }
                    h.update(b"\n");
                }
            }
        }
        Ok(format!("sha256:{}", hex::encode(h.finalize())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn tree(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (rel, content) in files {
            let p = dir.path().join(rel);
            fs::create_dir_all(p.parent().unwrap()).unwrap();
            if rel.ends_with('/') {
                fs::create_dir_all(&p).unwrap();
            } else {
                fs::write(&p, content).unwrap();
            }
        }
        dir
    }

    fn rels(ctx: &Context) -> Vec<String> {
        ctx.walk().map(|e| e.unwrap().rel).collect()
    }

    #[test]
    fn walk_is_sorted_and_honours_dockerignore() {
        let dir = tree(&[
            (
                ".dockerignore",
                "*.log\nnode_modules\ndocs\n!docs/keep.md\n",
            ),
            ("b.txt", "b"),
            ("a.log", "x"),
            ("src/main.sh", "echo"),
            ("node_modules/m/index.js", "x"),
            ("docs/drop.md", "x"),
            ("docs/keep.md", "x"),
        ]);
        let ctx = Context::open(dir.path()).unwrap();
        assert_eq!(
            rels(&ctx),
            vec![
                ".dockerignore",
                "b.txt",
                "docs/keep.md",
                "src",
                "src/main.sh"
            ]
        );
    }

    #[test]
    fn symlinks_are_kept_as_symlinks() {
        let dir = tree(&[("real.txt", "r")]);
        symlink("real.txt", dir.path().join("link")).unwrap();
        symlink("/etc", dir.path().join("etc-link")).unwrap();
        let ctx = Context::open(dir.path()).unwrap();
        let entries: Vec<Entry> = ctx.walk().map(|e| e.unwrap()).collect();
        assert_eq!(
            entries[0].kind,
            EntryKind::Symlink {
                target: PathBuf::from("/etc")
            }
        );
        assert_eq!(
            entries[1].kind,
            EntryKind::Symlink {
                target: PathBuf::from("real.txt")
            }
        );
        assert_eq!(entries[2].kind, EntryKind::File { size: 1 });
        assert_eq!(entries.len(), 3, "the /etc symlink is not followed");
    }

    #[test]
    fn resolve_paths_globs_and_errors() {
        let dir = tree(&[
            ("package.json", "{}"),
            ("package-lock.json", "{}"),
            ("src/a.js", "a"),
            ("secret.key", "k"),
            (".dockerignore", "secret.key\n"),
        ]);
        let ctx = Context::open(dir.path()).unwrap();
        let names = |s: &str| -> Vec<String> {
            ctx.resolve(s).unwrap().into_iter().map(|e| e.rel).collect()
        };
        assert_eq!(
            names("package*.json"),
            vec!["package-lock.json", "package.json"]
        );
        assert_eq!(names("./src/"), vec!["src"]);
        assert_eq!(names("/src/a.js"), vec!["src/a.js"]);
        assert_eq!(names("."), vec![""]);
        assert!(matches!(
            ctx.resolve("missing"),
            Err(ContextError::NotFound { .. })
        ));
        assert!(matches!(
            ctx.resolve("secret.key"),
            Err(ContextError::NotFound { .. })
        ));
        assert!(matches!(
            ctx.resolve("../etc/passwd"),
            Err(ContextError::Escapes { .. })
        ));
        assert!(matches!(
            ctx.resolve("src/../../x"),
            Err(ContextError::Escapes { .. })
        ));
        assert!(matches!(
            ctx.resolve("*.py"),
            Err(ContextError::NoMatch { .. })
        ));
        assert_eq!(
            ctx.resolve("missing").unwrap_err().to_string(),
            "\"missing\" not found in the build context (or excluded by .dockerignore)"
        );
    }

    #[test]
    fn symlinked_directory_cannot_lead_outside() {
        let outside = tree(&[("passwd", "root")]);
        let dir = tree(&[("x", "")]);
        symlink(outside.path(), dir.path().join("out")).unwrap();
        let ctx = Context::open(dir.path()).unwrap();
        assert!(matches!(
            ctx.resolve("out/passwd"),
            Err(ContextError::Escapes { .. })
        ));
    }

    #[test]
    fn digest_follows_content_not_times() {
        let dir = tree(&[("app/a.txt", "one"), ("app/b.txt", "two"), ("other", "x")]);
        let ctx = Context::open(dir.path()).unwrap();
        let srcs = vec!["app".to_string()];
        let d1 = ctx.digest(&srcs).unwrap();
        let f = fs::File::options()
            .write(true)
            .open(dir.path().join("app/a.txt"))
            .unwrap();
        f.set_modified(std::time::SystemTime::UNIX_EPOCH).unwrap();
        assert_eq!(ctx.digest(&srcs).unwrap(), d1, "mtime does not count");
        fs::write(dir.path().join("other"), "changed").unwrap();
        assert_eq!(
            ctx.digest(&srcs).unwrap(),
            d1,
            "unrelated file does not count"
        );
        fs::write(dir.path().join("app/a.txt"), "ONE").unwrap();
        let d2 = ctx.digest(&srcs).unwrap();
        assert_ne!(d2, d1);
        fs::set_permissions(
            dir.path().join("app/a.txt"),
            fs::Permissions::from_mode(0o755),
        )
        .unwrap();
        assert_ne!(ctx.digest(&srcs).unwrap(), d2, "mode counts");
    }

    #[test]
    fn ten_thousand_files_stream() {
        let dir = tempfile::tempdir().unwrap();
        for d in 0..100 {
            let sub = dir.path().join(format!("d{d:03}"));
            fs::create_dir(&sub).unwrap();
            for f in 0..100 {
                fs::write(sub.join(format!("f{f:03}")), format!("{d}-{f}")).unwrap();
            }
        }
        let ctx = Context::open(dir.path()).unwrap();
        let mut files = 0;
        let mut last = String::new();
        for e in ctx.walk() {
            let e = e.unwrap();
            assert!(e.rel > last, "sorted order");
            last = e.rel.clone();
            if matches!(e.kind, EntryKind::File { .. }) {
                files += 1;
            }
        }
        assert_eq!(files, 10_000);
        assert!(
            ctx.digest(&[".".to_string()])
                .unwrap()
                .starts_with("sha256:")
        );
    }

    #[test]
    fn context_must_be_a_directory() {
        let dir = tree(&[("f", "x")]);
        assert!(matches!(
            Context::open(&dir.path().join("f")),
            Err(ContextError::Open { .. }) | Err(ContextError::Ignore(_))
        ));
        assert!(matches!(
            Context::open(&dir.path().join("nope")),
            Err(ContextError::Open { .. })
        ));
    }
}
