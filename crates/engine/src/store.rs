//! Crash-safe on-disk state: one JSON document per object, grouped by kind.
//!
//! Layout: `<dir>/<kind>/<key>.json`, for example `state/containers/web-1.json`.
//! A document is replaced atomically: it is written to a temporary file in the same
//! directory, flushed to disk (`fsync`), renamed over the old one, and the directory is
//! flushed so the rename itself is durable. A reader (or a daemon restarted after
//! `kill -9`) therefore sees either the old or the new document, never a torn one.
//! Temporary files left behind by a crash start with a dot, are ignored by [`Store::list`]
//! and are removed by [`Store::open`].
//!
//! The store has one writer, the daemon; the engine's root lock guarantees that.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;
use serde::de::DeserializeOwned;

/// The kinds of object the engine keeps state for; each has its own directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// A deployed stack (Compose project).
    Stack,
    /// A container created by the engine.
    Container,
    /// A network created by the engine.
    Network,
    /// A named volume.
    Volume,
    /// An IP address lease on a network.
    Lease,
}

impl Kind {
    /// Every kind, in a fixed order.
    pub const ALL: [Kind; 5] = [
        Kind::Stack,
        Kind::Container,
        Kind::Network,
        Kind::Volume,
        Kind::Lease,
    ];

    /// The directory name of this kind under the store's root.
    pub fn dir_name(self) -> &'static str {
        match self {
            Kind::Stack => "stacks",
            Kind::Container => "containers",
            Kind::Network => "networks",
            Kind::Volume => "volumes",
            Kind::Lease => "leases",
        }
    }
}

/// A type the store keeps: a serde document of one [`Kind`].
pub trait Document: Serialize + DeserializeOwned {
    /// The kind (and so the directory) documents of this type belong to.
    const KIND: Kind;
}

/// Errors of the state store; every I/O error names the path it concerns.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A file or directory of the store could not be read or written.
    #[error("state store: {op} {path}: {source}")]
    Io {
        /// What was being done ("create directory", "write", "rename", ...).
        op: &'static str,
        /// The path concerned.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// A document on disk is not valid JSON of the expected type.
    #[error("state store: {path} is not a valid document: {source}")]
    Corrupt {
        /// The document's path.
        path: PathBuf,
        /// What the JSON parser said.
        #[source]
        source: serde_json::Error,
    },
    /// A document could not be turned into JSON.
    #[error("state store: cannot serialise {kind} document {key:?}: {source}")]
    Serialize {
        /// The kind's directory name.
        kind: &'static str,
        /// The document's key.
        key: String,
        /// What serde said.
        #[source]
        source: serde_json::Error,
    },
    /// A key is empty, too long, or has characters other than `[A-Za-z0-9_.-]`, or
    /// starts with a dot.
    #[error(
        "state store: invalid key {0:?} (use 1-200 characters of A-Z a-z 0-9 _ . -, not starting with '.')"
    )]
    InvalidKey(String),
}

fn io_err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> StoreError + 'a {
    move |source| StoreError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

/// Typed, crash-safe document storage under one directory.
#[derive(Debug)]
pub struct Store {
    dir: PathBuf,
    tmp_counter: AtomicU64,
}

impl Store {
    /// Opens (creating if needed) the store under `dir`, with one directory per kind,
    /// and removes temporary files a crash may have left behind.
    pub fn open(dir: impl Into<PathBuf>) -> Result<Store, StoreError> {
        let dir = dir.into();
        for kind in Kind::ALL {
            let kdir = dir.join(kind.dir_name());
            fs::create_dir_all(&kdir).map_err(io_err("create directory", &kdir))?;
            for entry in fs::read_dir(&kdir).map_err(io_err("read directory", &kdir))? {
                let entry = entry.map_err(io_err("read directory", &kdir))?;
                let name = entry.file_name();
                if name.to_string_lossy().starts_with('.') {
                    let path = entry.path();
                    fs::remove_file(&path).map_err(io_err("remove stale temporary file", &path))?;
                }
            }
        }
        // Make the kind directories themselves durable before documents go in them.
        sync_dir(&dir)?;
        Ok(Store {
            dir,
            tmp_counter: AtomicU64::new(0),
        })
    }

    /// The directory the store lives in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn kind_dir(&self, kind: Kind) -> PathBuf {
        self.dir.join(kind.dir_name())
    }

    fn doc_path(&self, kind: Kind, key: &str) -> Result<PathBuf, StoreError> {
        validate_key(key)?;
        Ok(self.kind_dir(kind).join(format!("{key}.json")))
    }

    /// Writes `doc` under `key`, replacing any previous version atomically and durably.
    pub fn put<D: Document>(&self, key: &str, doc: &D) -> Result<(), StoreError> {
        let path = self.doc_path(D::KIND, key)?;
        let mut bytes = serde_json::to_vec_pretty(doc).map_err(|source| StoreError::Serialize {
            kind: D::KIND.dir_name(),
            key: key.to_string(),
            source,
        })?;
        bytes.push(b'\n');
        let dir = self.kind_dir(D::KIND);
        let n = self.tmp_counter.fetch_add(1, Ordering::Relaxed);
        let tmp = dir.join(format!(".{key}.json.{}.{n}.tmp", std::process::id()));
        let result = write_durably(&tmp, &bytes)
            .and_then(|()| fs::rename(&tmp, &path).map_err(io_err("rename into place", &path)));
        if let Err(e) = result {
            let _ = fs::remove_file(&tmp);
            return Err(e);
        }
        sync_dir(&dir)
    }

    /// Reads the document stored under `key`, or `None` when there is none.
    pub fn get<D: Document>(&self, key: &str) -> Result<Option<D>, StoreError> {
        let path = self.doc_path(D::KIND, key)?;
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_err("read", &path)(e)),
        };
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|source| StoreError::Corrupt { path, source })
    }

    /// Removes the document under `key`; returns whether there was one.
    pub fn delete<D: Document>(&self, key: &str) -> Result<bool, StoreError> {
        let path = self.doc_path(D::KIND, key)?;
        match fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(io_err("remove", &path)(e)),
        }
        sync_dir(&self.kind_dir(D::KIND))?;
        Ok(true)
    }

    /// Every document of type `D` with its key, sorted by key.
    pub fn list<D: Document>(&self) -> Result<Vec<(String, D)>, StoreError> {
        let mut out = Vec::new();
        for key in self.keys(D::KIND)? {
            // A document deleted between listing and reading is simply skipped.
            if let Some(doc) = self.get::<D>(&key)? {
                out.push((key, doc));
            }
        }
        Ok(out)
    }

    /// The number of documents of one kind (without parsing them).
    pub fn count(&self, kind: Kind) -> Result<usize, StoreError> {
        Ok(self.keys(kind)?.len())
    }

    fn keys(&self, kind: Kind) -> Result<Vec<String>, StoreError> {
        let dir = self.kind_dir(kind);
        let mut keys = Vec::new();
        for entry in fs::read_dir(&dir).map_err(io_err("read directory", &dir))? {
            let entry = entry.map_err(io_err("read directory", &dir))?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            if name.starts_with('.') {
                continue;
            }
            if let Some(key) = name.strip_suffix(".json") {
                keys.push(key.to_string());
            }
        }
        keys.sort();
        Ok(keys)
    }
}

fn validate_key(key: &str) -> Result<(), StoreError> {
    let ok = !key.is_empty()
        && key.len() <= 200
        && !key.starts_with('.')
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(StoreError::InvalidKey(key.to_string()))
    }
}

fn write_durably(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(io_err("create", path))?;
    f.write_all(bytes).map_err(io_err("write", path))?;
    f.sync_all().map_err(io_err("fsync", path))
}

fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err("fsync directory", dir))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    struct Net {
        name: String,
        subnet: String,
        labels: Vec<String>,
    }
    impl Document for Net {
        const KIND: Kind = Kind::Network;
    }

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    struct Lease {
        ip: String,
        generation: u64,
        padding: String,
    }
    impl Document for Lease {
        const KIND: Kind = Kind::Lease;
    }

    fn net(name: &str) -> Net {
        Net {
            name: name.into(),
            subnet: "10.1.0.0/24".into(),
            labels: vec!["a".into()],
        }
    }

    #[test]
    fn put_get_list_delete_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.get::<Net>("front").unwrap(), None);
        store.put("front", &net("front")).unwrap();
        store.put("back", &net("back")).unwrap();
        assert_eq!(store.get::<Net>("front").unwrap(), Some(net("front")));
        let listed = store.list::<Net>().unwrap();
        assert_eq!(
            listed,
            vec![
                ("back".to_string(), net("back")),
                ("front".to_string(), net("front"))
            ]
        );
        assert_eq!(store.count(Kind::Network).unwrap(), 2);
        assert_eq!(store.count(Kind::Lease).unwrap(), 0);
        assert!(store.delete::<Net>("front").unwrap());
        assert!(!store.delete::<Net>("front").unwrap());
        assert_eq!(store.list::<Net>().unwrap().len(), 1);
        assert!(dir.path().join("networks/back.json").is_file());
    }

    #[test]
    fn put_replaces_and_reopen_sees_the_new_version() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store.put("front", &net("one")).unwrap();
        store.put("front", &net("two")).unwrap();
        drop(store);
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.get::<Net>("front").unwrap().unwrap().name, "two");
    }

    #[test]
    fn kinds_are_separate_namespaces() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store.put("x", &net("x")).unwrap();
        assert_eq!(store.get::<Lease>("x").unwrap(), None);
        assert_eq!(store.list::<Lease>().unwrap(), vec![]);
    }

    #[test]
    fn bad_keys_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        for key in ["", ".hidden", "a/b", "../x", "sp ace", &"k".repeat(201)] {
            let err = store.put(key, &net("n")).unwrap_err();
            assert!(
                matches!(err, StoreError::InvalidKey(ref k) if k == key),
                "{key}: {err}"
            );
        }
    }

    #[test]
    fn corrupt_document_error_names_its_path() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let path = dir.path().join("networks/bad.json");
        fs::write(&path, b"{\"name\": ").unwrap();
        let err = store.get::<Net>("bad").unwrap_err();
        assert!(matches!(err, StoreError::Corrupt { path: ref p, .. } if *p == path));
        assert!(err.to_string().contains(&path.display().to_string()));
    }

    #[test]
    fn open_removes_stale_temporary_files_and_list_ignores_them() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store.put("a", &net("a")).unwrap();
        let stale = dir.path().join("networks/.a.json.999.0.tmp");
        fs::write(&stale, b"{\"na").unwrap();
        assert_eq!(store.list::<Net>().unwrap().len(), 1);
        drop(store);
        let store = Store::open(dir.path()).unwrap();
        assert!(!stale.exists());
        assert_eq!(
            store.list::<Net>().unwrap(),
            vec![("a".to_string(), net("a"))]
        );
    }

    #[test]
    fn io_errors_name_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("not-a-dir");
        fs::write(&file, b"x").unwrap();
        let err = Store::open(&file).unwrap_err();
        assert!(matches!(err, StoreError::Io { .. }));
        assert!(err.to_string().contains("not-a-dir"), "{err}");
    }

    const CHILD_ENV: &str = "BERTH_STORE_CRASH_CHILD_DIR";

    /// Not a test on its own: the writer process of
    /// `documents_survive_kill_9_during_write_loops`, which runs it with `CHILD_ENV` set.
    #[test]
    #[ignore = "helper process for documents_survive_kill_9_during_write_loops"]
    fn crash_writer_child() {
        let dir = std::env::var_os(CHILD_ENV).expect("run by the kill -9 test with its dir");
        let store = Store::open(PathBuf::from(dir)).unwrap();
        for generation in 0u64.. {
            for i in 0..8 {
                let lease = Lease {
                    ip: format!("10.0.0.{i}"),
                    generation,
                    // Large enough that a write takes several syscalls.
                    padding: "x".repeat(64 * 1024 + (generation as usize % 4096)),
                };
                store.put(&format!("lease-{i}"), &lease).unwrap();
                if generation % 3 == 0 {
                    store.delete::<Lease>(&format!("lease-{i}")).unwrap();
                    store.put(&format!("lease-{i}"), &lease).unwrap();
                }
            }
        }
    }

    #[test]
    fn documents_survive_kill_9_during_write_loops() {
        let dir = tempfile::tempdir().unwrap();
        let exe = std::env::current_exe().unwrap();
        for round in 0..5u64 {
            let mut child = std::process::Command::new(&exe)
                .args([
                    "store::tests::crash_writer_child",
                    "--exact",
                    "--ignored",
                    "--nocapture",
                ])
                .env(CHILD_ENV, dir.path())
                .stdout(std::process::Stdio::null())
                .spawn()
                .unwrap();
            // Let the writer get going, then kill it at an arbitrary point.
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
            let path = dir.path().join("leases/lease-7.json");
            while !path.exists() {
                assert!(std::time::Instant::now() < deadline, "writer never wrote");
                assert!(child.try_wait().unwrap().is_none(), "writer exited early");
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            std::thread::sleep(std::time::Duration::from_millis(30 + 17 * round));
            child.kill().unwrap(); // SIGKILL
            child.wait().unwrap();

            // Every document parses, whatever moment the writer died at.
            let store = Store::open(dir.path()).unwrap();
            let leases = store.list::<Lease>().unwrap();
            assert!(leases.len() >= 7, "round {round}: {} leases", leases.len());
            for (key, lease) in &leases {
                assert_eq!(key, &format!("lease-{}", &lease.ip["10.0.0.".len()..]));
            }
            let stray = fs::read_dir(dir.path().join("leases"))
                .unwrap()
                .filter(|e| {
                    e.as_ref()
                        .unwrap()
                        .file_name()
                        .to_string_lossy()
                        .starts_with('.')
                })
                .count();
            assert_eq!(stray, 0, "open() cleans temporary files");
        }
    }
}
