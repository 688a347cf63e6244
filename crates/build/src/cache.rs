//! Cache keys of build steps.
//!
//! A step's key is a SHA-256 over, in order: a format version, the parent (the key of the
//! previous step, or the base image's ID for the first step), the instruction as written,
//! the build args in scope (name and value, sorted), and for COPY/ADD the digest of the
//! content the sources name ([`crate::context::Context::digest`]) or of the stage/image
//! copied from. Editing one source file therefore changes the key of the first COPY that
//! includes it, and through the parent chain every later step, and nothing before it.

use std::collections::BTreeMap;
use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};

/// The cache key of one step: `sha256:<hex>`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CacheKey(String);

impl CacheKey {
    /// The key as text (`sha256:<hex>`).
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The hex part, usable as a file name.
    pub fn hex(&self) -> &str {
        self.0.trim_start_matches("sha256:")
    }
}

impl fmt::Display for CacheKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What determines whether a step can be taken from the cache.
#[derive(Debug, Clone, Copy)]
pub struct StepInput<'a> {
    /// Key of the previous step, or the base image's ID (`scratch` for none).
    pub parent: &'a str,
    /// The instruction as written (continuations joined).
    pub instruction: &'a str,
    /// Build args in scope at this step.
    pub args: &'a BTreeMap<String, String>,
    /// For COPY/ADD: digest of the copied content (and of its origin).
    pub content: Option<&'a str>,
}

fn field(h: &mut Sha256, tag: &str, value: &[u8]) {
    h.update(tag.as_bytes());
    h.update((value.len() as u64).to_le_bytes());
    h.update(value);
}

/// Computes a step's cache key.
pub fn step_key(input: StepInput<'_>) -> CacheKey {
    let mut h = Sha256::new();
    field(&mut h, "version", b"berth-build-cache-1");
    field(&mut h, "parent", input.parent.as_bytes());
    field(&mut h, "instruction", input.instruction.as_bytes());
    for (k, v) in input.args {
        field(&mut h, "arg-name", k.as_bytes());
        field(&mut h, "arg-value", v.as_bytes());
    }
    if let Some(c) = input.content {
        field(&mut h, "content", c.as_bytes());
    }
    CacheKey(format!("sha256:{}", hex::encode(h.finalize())))
}

/// Why the cache directory could not be used.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    /// Reading or writing a cache record failed.
    #[error("build cache {path}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

/// The persistent step cache: one small file per key, holding the image (manifest digest)
/// that the step produced. Lives under the image store's root, so it survives restarts.
#[derive(Debug, Clone)]
pub struct CacheStore {
    dir: PathBuf,
}

impl CacheStore {
    /// Opens (creating) `<store_root>/build-cache`.
    pub fn open(store_root: &Path) -> Result<Self, CacheError> {
        let dir = store_root.join("build-cache");
        fs::create_dir_all(&dir).map_err(|source| CacheError::Io {
            path: dir.clone(),
            source,
        })?;
        Ok(Self { dir })
    }

    /// The directory holding the records.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The value recorded for `key`, if any.
    pub fn get(&self, key: &CacheKey) -> Option<String> {
        fs::read_to_string(self.dir.join(key.hex()))
            .ok()
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
    }

    /// Records `value` for `key` (written to a temporary file, then renamed).
    pub fn put(&self, key: &CacheKey, value: &str) -> Result<(), CacheError> {
        let path = self.dir.join(key.hex());
        let tmp = self
            .dir
            .join(format!(".{}.{}.tmp", key.hex(), std::process::id()));
        let io = |source| CacheError::Io {
            path: path.clone(),
            source,
        };
        fs::write(&tmp, value).map_err(io)?;
        fs::rename(&tmp, &path).map_err(io)
    }

    /// Every record: key hex and value.
    pub fn entries(&self) -> Result<Vec<(String, String)>, CacheError> {
        let io = |source| CacheError::Io {
            path: self.dir.clone(),
            source,
        };
        let mut out = Vec::new();
        for e in fs::read_dir(&self.dir).map_err(io)? {
            let e = e.map_err(io)?;
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') {
                continue;
            }
            if let Ok(v) = fs::read_to_string(e.path()) {
                out.push((name, v.trim().to_string()));
            }
        }
        out.sort();
        Ok(out)
    }

    /// The manifest digests the records point at that are intermediate step images (not
    /// the result of a build): listings hide those without a tag, as Docker hides
    /// intermediate images, while an untagged build result shows as `<none>`.
    pub fn manifests(&self) -> Result<std::collections::BTreeSet<String>, CacheError> {
        let results = self.results();
        Ok(self
            .entries()?
            .into_iter()
            .map(|(_, v)| v)
            .filter(|v| !results.contains(v))
            .collect())
    }

    fn results_dir(&self) -> PathBuf {
        self.dir.join(".results")
    }

    fn results(&self) -> std::collections::BTreeSet<String> {
        fs::read_dir(self.results_dir())
            .map(|d| {
                d.flatten()
                    .map(|e| e.file_name().to_string_lossy().replace('_', ":"))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Notes that `manifest` was the result of a build (shown by listings even untagged).
    pub fn mark_result(&self, manifest: &str) -> Result<(), CacheError> {
        let dir = self.results_dir();
        let path = dir.join(manifest.replace(':', "_"));
        let io = |source| CacheError::Io {
            path: path.clone(),
            source,
        };
        fs::create_dir_all(&dir).map_err(io)?;
        fs::write(&path, b"").map_err(io)
    }

    /// Deletes every record; returns how many there were.
    pub fn clear(&self) -> Result<usize, CacheError> {
        let entries = self.entries()?;
        for (name, _) in &entries {
            let path = self.dir.join(name);
            fs::remove_file(&path).map_err(|source| CacheError::Io { path, source })?;
        }
        let _ = fs::remove_dir_all(self.results_dir());
        Ok(entries.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(parent: &str, ins: &str, args: &[(&str, &str)], content: Option<&str>) -> CacheKey {
        let args: BTreeMap<String, String> = args
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        step_key(StepInput {
            parent,
            instruction: ins,
            args: &args,
            content,
        })
    }

    #[test]
    fn same_inputs_same_key() {
        assert_eq!(
            key("p", "RUN make", &[("A", "1")], None),
            key("p", "RUN make", &[("A", "1")], None)
        );
        assert!(
            key("p", "RUN make", &[], None)
                .as_str()
                .starts_with("sha256:")
        );
        assert_eq!(key("p", "RUN make", &[], None).hex().len(), 64);
    }

    #[test]
    fn every_input_counts() {
        let base = key("p", "RUN make", &[("A", "1")], Some("c"));
        assert_ne!(base, key("q", "RUN make", &[("A", "1")], Some("c")));
        assert_ne!(base, key("p", "RUN make all", &[("A", "1")], Some("c")));
        assert_ne!(base, key("p", "RUN make", &[("A", "2")], Some("c")));
        assert_ne!(base, key("p", "RUN make", &[("B", "1")], Some("c")));
        assert_ne!(base, key("p", "RUN make", &[("A", "1")], Some("d")));
        assert_ne!(base, key("p", "RUN make", &[("A", "1")], None));
    }

    #[test]
    fn fields_cannot_run_into_each_other() {
        assert_ne!(key("ab", "c", &[], None), key("a", "bc", &[], None));
        assert_ne!(
            key("p", "i", &[("A", "1B")], None),
            key("p", "i", &[("A1", "B")], None)
        );
    }

    #[test]
    fn records_persist_across_opens_and_clear() {
        let root = tempfile::tempdir().unwrap();
        let k = key("p", "RUN x", &[], None);
        let c = CacheStore::open(root.path()).unwrap();
        assert_eq!(c.get(&k), None);
        c.put(&k, "sha256:abc").unwrap();
        let again = CacheStore::open(root.path()).unwrap();
        assert_eq!(again.get(&k).as_deref(), Some("sha256:abc"));
        assert_eq!(again.entries().unwrap().len(), 1);
        assert_eq!(again.clear().unwrap(), 1);
        assert_eq!(c.get(&k), None);
    }
}
