//! Unpacking a layer tar (plain, gzip or zstd) into a snapshot directory ready to be an
//! overlayfs lower layer.
//!
//! - Whiteouts become overlayfs whiteouts: `.wh.name` → a character device 0:0 named `name`;
//!   `.wh..wh..opq` → the `trusted.overlay.opaque=y` xattr on its directory
//!   (see the OCI image spec, layer.md, and the kernel's overlayfs documentation).
//! - Owners, modes (incl. setuid), xattrs (PAX `SCHILY.xattr.*`), mtimes, hardlinks, symlinks,
//!   device nodes and FIFOs are kept.
//! - Nothing is written outside the destination: absolute paths, `..` components, entries
//!   below a symlink and hardlinks to paths outside the layer are refused with an error naming
//!   the layer and the entry.
//!
//! The diff ID (digest of the uncompressed tar) is computed on the way through.

use std::collections::HashSet;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};
use std::time::{Duration, SystemTime};

use nix::sys::stat::{Mode, SFlag, makedev, mknod};

use crate::digest::{Digest, HashingReader};
use crate::fsio::{PathError, WithPath, path_error};
use crate::manifest::Compression;
use crate::small_files::{Job, Pool, SMALL_FILE};

const WHITEOUT_PREFIX: &str = ".wh.";
const OPAQUE_MARKER: &str = ".wh..wh..opq";
const OPAQUE_XATTR: &str = "trusted.overlay.opaque";

/// Errors unpacking a layer.
#[derive(Debug, thiserror::Error)]
pub enum UnpackError {
    /// A file operation in the destination failed.
    #[error("unpacking layer {layer}")]
    Io {
        /// Layer being unpacked.
        layer: String,
        /// What failed.
        #[source]
        source: PathError,
    },
    /// The compressed or tar stream could not be read.
    #[error("reading the tar stream of layer {layer}")]
    Read {
        /// Layer being unpacked.
        layer: String,
        /// What failed.
        #[source]
        source: std::io::Error,
    },
    /// An entry would be written outside the snapshot.
    #[error("layer {layer}: entry {entry:?} refused: {reason}")]
    Escape {
        /// Layer being unpacked.
        layer: String,
        /// The entry's path as written in the tar.
        entry: String,
        /// Why.
        reason: &'static str,
    },
    /// An entry type berth does not handle.
    #[error("layer {layer}: entry {entry:?} has unsupported type {kind}")]
    Unsupported {
        /// Layer being unpacked.
        layer: String,
        /// The entry's path.
        entry: String,
        /// The tar type byte, as Debug.
        kind: String,
    },
}

/// What unpacking produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unpacked {
    /// Digest of the uncompressed tar stream.
    pub diff_id: Digest,
    /// Size of the uncompressed tar stream.
    pub size: u64,
}

/// Unpacks a (possibly compressed) layer from `reader` into the existing, empty directory
/// `dst`. `layer` names the layer in errors. Compression is recognised from the first bytes.
pub fn unpack(reader: impl Read, dst: &Path, layer: &str) -> Result<Unpacked, UnpackError> {
    let mut buffered = BufReader::with_capacity(256 * 1024, reader);
    let head = buffered.fill_buf().map_err(|source| UnpackError::Read {
        layer: layer.to_owned(),
        source,
    })?;
    let decoded: Box<dyn Read> = match Compression::sniff(head) {
        Compression::None => Box::new(buffered),
        Compression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(buffered)),
        Compression::Zstd => Box::new(zstd::stream::read::Decoder::with_buffer(buffered).map_err(
            |source| UnpackError::Read {
                layer: layer.to_owned(),
                source,
            },
        )?),
    };
    let mut unpacker = Unpacker {
        dst,
        layer,
        safe_dirs: HashSet::new(),
        dir_times: Vec::new(),
        buf: vec![0; 256 * 1024],
        pool: Pool::new(3),
        pending: HashSet::new(),
    };
    let mut archive = tar::Archive::new(TrailerReader::new(HashingReader::new(decoded)));
    unpacker.run(&mut archive)?;
    unpacker.flush()?;
    let mut rest = archive.into_inner().inner;
    // Trailing zero blocks after the end-of-archive marker belong to the diff ID too.
    std::io::copy(&mut rest, &mut std::io::sink()).map_err(|source| UnpackError::Read {
        layer: layer.to_owned(),
        source,
    })?;
    let (diff_id, size) = rest.finish();
    unpacker.finish_dirs();
    Ok(Unpacked { diff_id, size })
}

/// Supplies a missing end of archive: some writers (umoci 0.4) stop right after the last
/// file's data, without block padding or the two zero blocks. Go's archive/tar (and so Docker
/// and containerd) accept that; so does berth, by padding with zeros after the real end. The
/// diff ID is computed below this reader, over the real bytes only.
struct TrailerReader<R> {
    inner: R,
    count: u64,
    /// Zero bytes still to supply after the inner reader ended.
    padding: Option<u64>,
}

impl<R: Read> TrailerReader<R> {
    fn new(inner: R) -> Self {
        TrailerReader {
            inner,
            count: 0,
            padding: None,
        }
    }
}

impl<R: Read> Read for TrailerReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.padding.is_none() {
            let n = self.inner.read(buf)?;
            if n > 0 || buf.is_empty() {
                self.count += n as u64;
                return Ok(n);
            }
            let partial = (512 - self.count % 512) % 512;
            self.padding = Some(partial + 1024);
        }
        let left = self.padding.unwrap_or(0);
        let n = (left as usize).min(buf.len());
        buf[..n].fill(0);
        self.padding = Some(left - n as u64);
        Ok(n)
    }
}

/// The `SCHILY.xattr.*` PAX records of an entry.
fn pax_xattrs<R: Read>(entry: &mut tar::Entry<'_, R>) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    if let Ok(Some(exts)) = entry.pax_extensions() {
        for ext in exts.flatten() {
            if let Ok(key) = ext.key()
                && let Some(name) = key.strip_prefix("SCHILY.xattr.")
            {
                out.push((name.to_owned(), ext.value_bytes().to_vec()));
            }
        }
    }
    out
}

/// Mode, uid and gid of an entry. Empty numeric fields read as 0, as Go's archive/tar (and so
/// Docker) reads them; the tar crate would refuse them.
fn numeric_fields(h: &tar::Header) -> (u32, u32, u32) {
    (
        h.mode().unwrap_or(0o644) & 0o7777,
        h.uid().unwrap_or(0) as u32,
        h.gid().unwrap_or(0) as u32,
    )
}

struct Unpacker<'a> {
    dst: &'a Path,
    layer: &'a str,
    /// Relative directories already checked to be real directories inside `dst`.
    safe_dirs: HashSet<PathBuf>,
    /// Directory mtimes, applied at the end (creating entries inside changes them).
    dir_times: Vec<(PathBuf, SystemTime)>,
    buf: Vec<u8>,
    /// Writers of small files, and the relative paths handed to them since the last flush.
    pool: Pool,
    pending: HashSet<PathBuf>,
}

impl Unpacker<'_> {
    fn read_err(&self, source: std::io::Error) -> UnpackError {
        UnpackError::Read {
            layer: self.layer.to_owned(),
            source,
        }
    }

    fn io_err(&self, source: PathError) -> UnpackError {
        UnpackError::Io {
            layer: self.layer.to_owned(),
            source,
        }
    }

    fn escape(&self, entry: &Path, reason: &'static str) -> UnpackError {
        UnpackError::Escape {
            layer: self.layer.to_owned(),
            entry: entry.display().to_string(),
            reason,
        }
    }

    fn run<R: Read>(&mut self, archive: &mut tar::Archive<R>) -> Result<(), UnpackError> {
        let entries = archive.entries().map_err(|e| self.read_err(e))?;
        for entry in entries {
            let mut entry = entry.map_err(|e| self.read_err(e))?;
            self.entry(&mut entry)?;
        }
        Ok(())
    }

    /// Turns a tar path into a clean relative path, refusing escapes.
    fn clean(&self, raw: &Path) -> Result<PathBuf, UnpackError> {
        let mut out = PathBuf::new();
        let mut absolute = false;
        for c in raw.components() {
            match c {
                Component::Normal(n) => out.push(n),
                Component::CurDir => {}
                Component::ParentDir => return Err(self.escape(raw, "path contains '..'")),
                Component::RootDir | Component::Prefix(_) => absolute = true,
            }
        }
        // A bare "/" names the layer root (umoci writes one); any other absolute path is refused.
        if absolute && !out.as_os_str().is_empty() {
            return Err(self.escape(raw, "absolute path"));
        }
        Ok(out)
    }

    /// Makes sure every parent of `rel` is a real directory inside `dst` (creating missing
    /// ones), so that writing `rel` cannot follow a symlink out of the snapshot.
    fn prepare_parents(&mut self, raw: &Path, rel: &Path) -> Result<(), UnpackError> {
        let Some(parent) = rel.parent() else {
            return Ok(());
        };
        if parent.as_os_str().is_empty() || self.safe_dirs.contains(parent) {
            return Ok(());
        }
        let mut cur = PathBuf::new();
        for c in parent.components() {
            cur.push(c);
            if self.safe_dirs.contains(&cur) {
                continue;
            }
            let abs = self.dst.join(&cur);
            match std::fs::symlink_metadata(&abs) {
                Ok(m) if m.file_type().is_symlink() => {
                    return Err(self.escape(raw, "a parent directory is a symlink"));
                }
                Ok(m) if m.is_dir() => {}
                Ok(_) => return Err(self.escape(raw, "a parent path is not a directory")),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    std::fs::create_dir(&abs)
                        .with_path("creating directory", &abs)
                        .map_err(|e| self.io_err(e))?;
                }
                Err(e) => return Err(self.io_err(path_error("inspecting", &abs, e))),
            }
            self.safe_dirs.insert(cur.clone());
        }
        Ok(())
    }

    /// Waits for the small-file writers.
    fn flush(&mut self) -> Result<(), UnpackError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        self.pending.clear();
        self.pool.flush().map_err(|e| self.io_err(e))
    }

    /// Removes whatever is at `abs` unless it is a directory and `keep_dir` is set.
    fn clear(&mut self, rel: &Path, abs: &Path, keep_dir: bool) -> Result<(), UnpackError> {
        match std::fs::symlink_metadata(abs) {
            // A directory about to go may hold files still being written.
            Ok(m) if m.is_dir() && !keep_dir => self.flush()?,
            _ => {}
        }
        match std::fs::symlink_metadata(abs) {
            Ok(m) if m.is_dir() => {
                if !keep_dir {
                    std::fs::remove_dir_all(abs)
                        .with_path("removing", abs)
                        .map_err(|e| self.io_err(e))?;
                    self.safe_dirs.retain(|d| !d.starts_with(rel));
                }
            }
            Ok(_) => std::fs::remove_file(abs)
                .with_path("removing", abs)
                .map_err(|e| self.io_err(e))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(self.io_err(path_error("inspecting", abs, e))),
        }
        Ok(())
    }

    fn entry<R: Read>(&mut self, entry: &mut tar::Entry<'_, R>) -> Result<(), UnpackError> {
        let kind = entry.header().entry_type();
        if matches!(
            kind,
            tar::EntryType::XGlobalHeader | tar::EntryType::XHeader | tar::EntryType::GNULongName
        ) {
            return Ok(());
        }
        let raw = entry.path().map_err(|e| self.read_err(e))?.into_owned();
        let rel = self.clean(&raw)?;
        if rel.as_os_str().is_empty() {
            // The layer root ("./" or "/"): only its owner and mode matter.
            if kind == tar::EntryType::Directory {
                let (mode, uid, gid) = numeric_fields(entry.header());
                let dst = self.dst.to_owned();
                self.owner_mode_xattrs(entry, &dst, uid, gid, Some(mode))?;
            }
            return Ok(());
        }
        let plain = matches!(
            kind,
            tar::EntryType::Regular
                | tar::EntryType::Continuous
                | tar::EntryType::Directory
                | tar::EntryType::Symlink
        );
        let is_whiteout = rel
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with(WHITEOUT_PREFIX));
        if !plain || is_whiteout || self.pending.contains(&rel) {
            self.flush()?;
        }
        self.prepare_parents(&raw, &rel)?;
        let abs = self.dst.join(&rel);
        let name = rel
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_owned();
        if name == OPAQUE_MARKER {
            let dir = abs.parent().unwrap_or(self.dst);
            return xattr::set(dir, OPAQUE_XATTR, b"y")
                .with_path("setting trusted.overlay.opaque on", dir)
                .map_err(|e| self.io_err(e));
        }
        if let Some(hidden) = name.strip_prefix(WHITEOUT_PREFIX) {
            if hidden.is_empty() || hidden == "." || hidden == ".." {
                return Err(self.escape(&raw, "malformed whiteout name"));
            }
            let target = abs.with_file_name(hidden);
            let target_rel = rel.with_file_name(hidden);
            self.clear(&target_rel, &target, false)?;
            return mknod(&target, SFlag::S_IFCHR, Mode::empty(), makedev(0, 0))
                .map_err(std::io::Error::from)
                .with_path("creating whiteout", &target)
                .map_err(|e| self.io_err(e));
        }
        let header = entry.header();
        let (mode, uid, gid) = numeric_fields(header);
        let mtime = header.mtime().unwrap_or(0);
        let mtime = SystemTime::UNIX_EPOCH + Duration::from_secs(mtime);
        match kind {
            tar::EntryType::Directory => {
                self.clear(&rel, &abs, true)?;
                if !abs.is_dir() {
                    std::fs::create_dir(&abs)
                        .with_path("creating directory", &abs)
                        .map_err(|e| self.io_err(e))?;
                }
                self.safe_dirs.insert(rel.clone());
                self.owner_mode_xattrs(entry, &abs, uid, gid, Some(mode))?;
                self.dir_times.push((abs, mtime));
            }
            tar::EntryType::Regular | tar::EntryType::Continuous
                if entry.size() <= SMALL_FILE
                    && matches!(std::fs::symlink_metadata(&abs), Err(ref e) if e.kind() == std::io::ErrorKind::NotFound) =>
            {
                let mut data = Vec::with_capacity(entry.size() as usize);
                entry.read_to_end(&mut data).map_err(|e| self.read_err(e))?;
                let xattrs = pax_xattrs(entry);
                self.pool
                    .submit(Job {
                        path: abs,
                        data,
                        uid,
                        gid,
                        mode,
                        mtime,
                        xattrs,
                    })
                    .map_err(|e| self.io_err(e))?;
                self.pending.insert(rel);
            }
            tar::EntryType::Regular | tar::EntryType::Continuous | tar::EntryType::GNUSparse => {
                self.clear(&rel, &abs, false)?;
                let mut file = OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(&abs)
                    .with_path("creating", &abs)
                    .map_err(|e| self.io_err(e))?;
                loop {
                    let n = entry.read(&mut self.buf).map_err(|e| self.read_err(e))?;
                    if n == 0 {
                        break;
                    }
                    file.write_all(&self.buf[..n])
                        .with_path("writing", &abs)
                        .map_err(|e| self.io_err(e))?;
                }
                self.owner_mode_xattrs(entry, &abs, uid, gid, Some(mode))?;
                file.set_modified(mtime)
                    .with_path("setting mtime of", &abs)
                    .map_err(|e| self.io_err(e))?;
            }
            tar::EntryType::Symlink => {
                let target = entry
                    .link_name()
                    .map_err(|e| self.read_err(e))?
                    .ok_or_else(|| self.escape(&raw, "symlink without a target"))?
                    .into_owned();
                self.clear(&rel, &abs, false)?;
                std::os::unix::fs::symlink(&target, &abs)
                    .with_path("creating symlink", &abs)
                    .map_err(|e| self.io_err(e))?;
                self.owner_mode_xattrs(entry, &abs, uid, gid, None)?;
            }
            tar::EntryType::Link => {
                let target_raw = entry
                    .link_name()
                    .map_err(|e| self.read_err(e))?
                    .ok_or_else(|| self.escape(&raw, "hardlink without a target"))?
                    .into_owned();
                let target_rel = self.clean(&target_raw)?;
                if target_rel.as_os_str().is_empty() {
                    return Err(self.escape(&raw, "hardlink to the layer root"));
                }
                self.prepare_parents(&target_raw, &target_rel)?;
                let target = self.dst.join(&target_rel);
                match std::fs::symlink_metadata(&target) {
                    Ok(m) if m.file_type().is_symlink() || m.is_dir() => {
                        return Err(self.escape(&raw, "hardlink to a symlink or directory"));
                    }
                    Ok(_) => {}
                    Err(_) => return Err(self.escape(&raw, "hardlink target not in this layer")),
                }
                self.clear(&rel, &abs, false)?;
                std::fs::hard_link(&target, &abs)
                    .with_path("creating hardlink", &abs)
                    .map_err(|e| self.io_err(e))?;
            }
            tar::EntryType::Char | tar::EntryType::Block | tar::EntryType::Fifo => {
                let major = header.device_major().ok().flatten().unwrap_or(0);
                let minor = header.device_minor().ok().flatten().unwrap_or(0);
                let flag = match kind {
                    tar::EntryType::Char => SFlag::S_IFCHR,
                    tar::EntryType::Block => SFlag::S_IFBLK,
                    _ => SFlag::S_IFIFO,
                };
                self.clear(&rel, &abs, false)?;
                mknod(
                    &abs,
                    flag,
                    Mode::from_bits_truncate(mode),
                    makedev(major.into(), minor.into()),
                )
                .map_err(std::io::Error::from)
                .with_path("creating device node", &abs)
                .map_err(|e| self.io_err(e))?;
                self.owner_mode_xattrs(entry, &abs, uid, gid, Some(mode))?;
            }
            other => {
                return Err(UnpackError::Unsupported {
                    layer: self.layer.to_owned(),
                    entry: raw.display().to_string(),
                    kind: format!("{other:?}"),
                });
            }
        }
        Ok(())
    }

    /// Applies owner, then mode (chown clears setuid bits), then PAX xattrs.
    fn owner_mode_xattrs<R: Read>(
        &self,
        entry: &mut tar::Entry<'_, R>,
        abs: &Path,
        uid: u32,
        gid: u32,
        mode: Option<u32>,
    ) -> Result<(), UnpackError> {
        std::os::unix::fs::lchown(abs, Some(uid), Some(gid))
            .with_path("changing owner of", abs)
            .map_err(|e| self.io_err(e))?;
        if let Some(mode) = mode {
            std::fs::set_permissions(abs, std::fs::Permissions::from_mode(mode))
                .with_path("changing mode of", abs)
                .map_err(|e| self.io_err(e))?;
        }
        if let Ok(Some(exts)) = entry.pax_extensions() {
            for ext in exts.flatten() {
                let Ok(key) = ext.key() else { continue };
                if let Some(name) = key.strip_prefix("SCHILY.xattr.") {
                    xattr::set(abs, name, ext.value_bytes())
                        .with_path("setting xattr on", abs)
                        .map_err(|e| self.io_err(e))?;
                }
            }
        }
        Ok(())
    }

    fn finish_dirs(&mut self) {
        // Innermost first; failures only lose an mtime, which nothing depends on.
        for (dir, time) in self.dir_times.drain(..).rev() {
            if let Ok(f) = File::open(&dir) {
                let _ = f.set_modified(time);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{FileTypeExt, MetadataExt};

    fn header(path: &str, kind: tar::EntryType, size: u64) -> tar::Header {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_size(size);
        h.set_mode(0o644);
        h.set_uid(1234);
        h.set_gid(5678);
        h.set_mtime(1_000_000);
        // set_path refuses "..", so write the raw name bytes.
        let name = &mut h.as_gnu_mut().unwrap().name;
        name[..path.len()].copy_from_slice(path.as_bytes());
        h.set_cksum();
        h
    }

    fn layer(entries: &[(&str, tar::EntryType, &[u8], Option<&str>)]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (path, kind, data, link) in entries {
            let mut h = header(path, *kind, data.len() as u64);
            if let Some(l) = link {
                h.set_link_name(l).unwrap();
                h.set_cksum();
            }
            b.append(&h, *data).unwrap();
        }
        b.into_inner().unwrap()
    }

    #[test]
    fn whiteouts_owners_links_are_converted() {
        use tar::EntryType as T;
        let data = layer(&[
            ("etc/", T::Directory, b"", None),
            ("etc/passwd", T::Regular, b"root:x:0:0\n", None),
            ("etc/hard", T::Link, b"", Some("etc/passwd")),
            ("etc/sym", T::Symlink, b"", Some("/etc/passwd")),
            ("etc/.wh.gone", T::Regular, b"", None),
            ("opaque/.wh..wh..opq", T::Regular, b"", None),
        ]);
        let dir = tempfile::tempdir().unwrap();
        let out = unpack(&data[..], dir.path(), "test").unwrap();
        assert_eq!(out.diff_id, Digest::of(&data));
        let d = dir.path();
        assert_eq!(
            std::fs::read_to_string(d.join("etc/passwd")).unwrap(),
            "root:x:0:0\n"
        );
        let m = std::fs::metadata(d.join("etc/passwd")).unwrap();
        assert_eq!((m.uid(), m.gid(), m.mode() & 0o7777), (1234, 5678, 0o644));
        assert_eq!(m.nlink(), 2);
        assert_eq!(
            std::fs::read_link(d.join("etc/sym")).unwrap(),
            Path::new("/etc/passwd")
        );
        let w = std::fs::symlink_metadata(d.join("etc/gone")).unwrap();
        assert!(w.file_type().is_char_device());
        assert_eq!(w.rdev(), 0);
        assert_eq!(
            xattr::get(d.join("opaque"), OPAQUE_XATTR).unwrap(),
            Some(b"y".to_vec())
        );
        assert!(!d.join("opaque/.wh..wh..opq").exists());
    }

    #[test]
    fn traversal_is_refused_with_layer_and_entry() {
        use tar::EntryType as T;
        for (entries, reason) in [
            (
                vec![("../evil", T::Regular, &b"x"[..], None)],
                "path contains '..'",
            ),
            (vec![("/abs", T::Regular, &b"x"[..], None)], "absolute path"),
            (
                vec![
                    ("link", T::Symlink, &b""[..], Some("/tmp")),
                    ("link/evil", T::Regular, &b"x"[..], None),
                ],
                "a parent directory is a symlink",
            ),
            (
                vec![("h", T::Link, &b""[..], Some("../../etc/passwd"))],
                "path contains '..'",
            ),
        ] {
            let dir = tempfile::tempdir().unwrap();
            let err = unpack(&layer(&entries)[..], dir.path(), "sha256:abc").unwrap_err();
            match err {
                UnpackError::Escape {
                    layer, reason: r, ..
                } => {
                    assert_eq!(layer, "sha256:abc");
                    assert_eq!(r, reason);
                }
                other => panic!("unexpected {other:?}"),
            }
        }
    }

    #[test]
    fn later_entries_win_over_small_files_still_being_written() {
        use tar::EntryType as T;
        let data = layer(&[
            ("d/", T::Directory, b"", None),
            ("d/a", T::Regular, b"first", None),
            ("d/a", T::Regular, b"second", None),
            ("d/b", T::Regular, b"bee", None),
            ("d/link", T::Link, b"", Some("d/b")),
            ("d/c", T::Regular, b"sea", None),
            ("d/.wh.c", T::Regular, b"", None),
            ("e/", T::Directory, b"", None),
            ("e/x", T::Regular, b"x", None),
            ("e", T::Regular, b"now a file", None),
        ]);
        let dir = tempfile::tempdir().unwrap();
        unpack(&data[..], dir.path(), "l").unwrap();
        let d = dir.path();
        assert_eq!(std::fs::read(d.join("d/a")).unwrap(), b"second");
        assert_eq!(std::fs::read(d.join("d/link")).unwrap(), b"bee");
        assert_eq!(std::fs::metadata(d.join("d/b")).unwrap().nlink(), 2);
        assert!(
            std::fs::symlink_metadata(d.join("d/c"))
                .unwrap()
                .file_type()
                .is_char_device()
        );
        assert_eq!(std::fs::read(d.join("e")).unwrap(), b"now a file");
        let m = std::fs::metadata(d.join("d/a")).unwrap();
        assert_eq!((m.uid(), m.gid(), m.mode() & 0o7777), (1234, 5678, 0o644));
    }

    #[test]
    fn gzip_and_zstd_layers_have_the_uncompressed_diff_id() {
        let data = layer(&[("a", tar::EntryType::Regular, b"hello", None)]);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&data).unwrap();
        let gz = gz.finish().unwrap();
        let zs = zstd::encode_all(&data[..], 1).unwrap();
        for blob in [gz, zs] {
            let dir = tempfile::tempdir().unwrap();
            let out = unpack(&blob[..], dir.path(), "l").unwrap();
            assert_eq!(out.diff_id, Digest::of(&data));
            assert_eq!(std::fs::read(dir.path().join("a")).unwrap(), b"hello");
        }
    }
}
