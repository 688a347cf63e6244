//! Writing layer tars: the diff of a `RUN` (an overlay upper directory, whiteouts
//! converted to OCI `.wh.` entries) and the files a `COPY`/`ADD` places.
//!
//! Tars are written to a file (streamed, nothing held in memory) that the caller hands
//! to the image store.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

/// Why a layer could not be written.
#[derive(Debug, thiserror::Error)]
pub enum LayerError {
    /// Reading a file that goes into the layer failed.
    #[error("reading {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// Writing the tar failed.
    #[error("writing layer {path}")]
    Write {
        /// The tar file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

/// Owner and mode overrides for copied files (`--chown`, `--chmod`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Ownership {
    /// Owner uid (default 0).
    pub uid: u32,
    /// Owner gid (default 0).
    pub gid: u32,
    /// Mode for files and directories copied (default: the source's).
    pub mode: Option<u32>,
}

/// A tar being written to a file.
pub struct TarWriter {
    path: PathBuf,
    builder: tar::Builder<std::io::BufWriter<fs::File>>,
}

fn read_err(path: &Path) -> impl FnOnce(std::io::Error) -> LayerError + '_ {
    move |source| LayerError::Read {
        path: path.to_path_buf(),
        source,
    }
}

impl TarWriter {
    /// Creates the tar file at `path`.
    pub fn create(path: &Path) -> Result<Self, LayerError> {
        let f = fs::File::create(path).map_err(|source| LayerError::Write {
            path: path.to_path_buf(),
            source,
        })?;
        let mut builder = tar::Builder::new(std::io::BufWriter::new(f));
        builder.follow_symlinks(false);
        Ok(Self {
            path: path.to_path_buf(),
            builder,
        })
    }

    fn werr(&self) -> impl FnOnce(std::io::Error) -> LayerError + '_ {
        move |source| LayerError::Write {
            path: self.path.clone(),
            source,
        }
    }

    fn header(kind: tar::EntryType, mode: u32, uid: u32, gid: u32, mtime: u64) -> tar::Header {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_uid(uid.into());
        h.set_gid(gid.into());
        h.set_mtime(mtime);
        h.set_size(0);
        h
    }

    /// Adds a directory entry.
    pub fn dir(
        &mut self,
        name: &str,
        mode: u32,
        uid: u32,
        gid: u32,
        mtime: u64,
    ) -> Result<(), LayerError> {
        let mut h = Self::header(tar::EntryType::Directory, mode, uid, gid, mtime);
        let name = format!("{}/", name.trim_end_matches('/'));
        self.builder
            .append_data(&mut h, name, std::io::empty())
            .map_err(self.werr())
    }

    /// Adds a regular file with `content` of `size` bytes.
    #[allow(clippy::too_many_arguments)]
    pub fn file(
        &mut self,
        name: &str,
        mode: u32,
        uid: u32,
        gid: u32,
        mtime: u64,
        size: u64,
        content: impl std::io::Read,
    ) -> Result<(), LayerError> {
        let mut h = Self::header(tar::EntryType::Regular, mode, uid, gid, mtime);
        h.set_size(size);
        self.builder
            .append_data(&mut h, name, content)
            .map_err(self.werr())
    }

    /// Adds a symbolic link.
    pub fn symlink(
        &mut self,
        name: &str,
        target: &Path,
        uid: u32,
        gid: u32,
        mtime: u64,
    ) -> Result<(), LayerError> {
        let mut h = Self::header(tar::EntryType::Symlink, 0o777, uid, gid, mtime);
        self.builder
            .append_link(&mut h, name, target)
            .map_err(self.werr())
    }

    /// Adds an OCI whiteout for `name` (the path is deleted in this layer).
    pub fn whiteout(&mut self, name: &str) -> Result<(), LayerError> {
        let (dir, base) = match name.rsplit_once('/') {
            Some((d, b)) => (format!("{d}/"), b),
            None => (String::new(), name),
        };
        let mut h = Self::header(tar::EntryType::Regular, 0o644, 0, 0, 0);
        self.builder
            .append_data(&mut h, format!("{dir}.wh.{base}"), std::io::empty())
            .map_err(self.werr())
    }

    /// Adds the file, directory or symlink at `path` (not following it) as `name`.
    pub fn path(
        &mut self,
        name: &str,
        path: &Path,
        own: Option<Ownership>,
    ) -> Result<(), LayerError> {
        let meta = fs::symlink_metadata(path).map_err(read_err(path))?;
        let ft = meta.file_type();
        let (uid, gid) = match own {
            Some(o) => (o.uid, o.gid),
            None => (meta.uid(), meta.gid()),
        };
        let mode = own.and_then(|o| o.mode).unwrap_or(meta.mode() & 0o7777);
        let mtime = u64::try_from(meta.mtime()).unwrap_or(0);
        if ft.is_symlink() {
            let target = fs::read_link(path).map_err(read_err(path))?;
            self.symlink(name, &target, uid, gid, mtime)
        } else if ft.is_dir() {
            self.dir(name, mode, uid, gid, mtime)
        } else if ft.is_file() {
            let f = fs::File::open(path).map_err(read_err(path))?;
            self.file(name, mode, uid, gid, mtime, meta.len(), f)
        } else {
            // Devices, FIFOs and sockets: take the header from the file itself.
            let mut h = tar::Header::new_gnu();
            h.set_metadata(&meta);
            h.set_uid(uid.into());
            h.set_gid(gid.into());
            self.builder
                .append_data(&mut h, name, std::io::empty())
                .map_err(self.werr())
        }
    }

    /// Adds an entry with a header taken from another archive, under `name`.
    pub fn raw(
        &mut self,
        header: &mut tar::Header,
        name: &str,
        data: impl std::io::Read,
    ) -> Result<(), LayerError> {
        if header.entry_type().is_symlink() || header.entry_type().is_hard_link() {
            let target = header
                .link_name()
                .ok()
                .flatten()
                .map(|t| t.into_owned())
                .unwrap_or_default();
            return self
                .builder
                .append_link(header, name, target)
                .map_err(self.werr());
        }
        self.builder
            .append_data(header, name, data)
            .map_err(self.werr())
    }

    /// Finishes the tar and returns its path.
    pub fn finish(self) -> Result<PathBuf, LayerError> {
        let path = self.path.clone();
        let werr = |source| LayerError::Write {
            path: path.clone(),
            source,
        };
        let mut w = self.builder.into_inner().map_err(werr)?;
        w.flush().map_err(werr)?;
        Ok(path)
    }
}

/// Whether `meta` is an overlayfs whiteout (a 0:0 character device).
fn is_whiteout(meta: &fs::Metadata) -> bool {
    meta.file_type().is_char_device() && meta.rdev() == 0
}

/// Whether the directory is opaque (its lower contents hidden).
fn is_opaque(path: &Path) -> bool {
    matches!(xattr::get(path, "trusted.overlay.opaque"), Ok(Some(v)) if v == b"y")
        || matches!(xattr::get(path, "user.overlay.opaque"), Ok(Some(v)) if v == b"y")
}

/// Top-level directories the runtime creates as mount points; left out of a RUN's
/// layer when they are empty in the upper directory.
const MOUNT_POINTS: &[&str] = &["dev", "proc", "sys"];

/// Writes the tar of an overlay upper directory (the changes a `RUN` made) to `out`.
/// Returns how many entries it holds.
pub fn diff_tar(upper: &Path, out: &Path) -> Result<usize, LayerError> {
    let mut tw = TarWriter::create(out)?;
    let mut count = 0;
    let mut stack: Vec<(String, PathBuf)> = vec![(String::new(), upper.to_path_buf())];
    while let Some((rel, dir)) = stack.pop() {
        let mut names: Vec<_> = fs::read_dir(&dir)
            .map_err(read_err(&dir))?
            .map(|e| e.map(|e| e.file_name()))
            .collect::<Result<_, _>>()
            .map_err(read_err(&dir))?;
        names.sort();
        let mut subdirs = Vec::new();
        for name in names {
            let name = name.to_string_lossy().into_owned();
            let path = dir.join(&name);
            let rel_name = if rel.is_empty() {
                name.clone()
            } else {
                format!("{rel}/{name}")
            };
            let meta = fs::symlink_metadata(&path).map_err(read_err(&path))?;
            if is_whiteout(&meta) {
                tw.whiteout(&rel_name)?;
                count += 1;
                continue;
            }
            if rel.is_empty()
                && meta.is_dir()
                && MOUNT_POINTS.contains(&name.as_str())
                && fs::read_dir(&path)
                    .map_err(read_err(&path))?
                    .next()
                    .is_none()
            {
                continue;
            }
            tw.path(&rel_name, &path, None)?;
            count += 1;
            if meta.is_dir() {
                if is_opaque(&path) {
                    // `<dir>/.wh..wh..opq`: the OCI opaque-directory marker.
                    tw.whiteout(&format!("{rel_name}/.wh..opq"))?;
                    count += 1;
                }
                subdirs.push((rel_name, path));
            }
        }
        // Depth first in name order.
        stack.extend(subdirs.into_iter().rev());
    }
    tw.finish()?;
    Ok(count)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(tar_path: &Path) -> Vec<String> {
        let mut a = tar::Archive::new(fs::File::open(tar_path).unwrap());
        a.entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn overlay_upper_becomes_an_oci_layer() {
        if !nix::unistd::Uid::effective().is_root() {
            panic!("this test makes whiteout devices and trusted xattrs: run it as root");
        }
        let t = tempfile::tempdir().unwrap();
        let upper = t.path().join("upper");
        fs::create_dir_all(upper.join("d/sub")).unwrap();
        fs::create_dir_all(upper.join("proc")).unwrap();
        fs::write(upper.join("a"), "hello").unwrap();
        fs::write(upper.join("d/sub/f"), "x").unwrap();
        std::os::unix::fs::symlink("a", upper.join("link")).unwrap();
        nix::sys::stat::mknod(
            &upper.join("gone"),
            nix::sys::stat::SFlag::S_IFCHR,
            nix::sys::stat::Mode::empty(),
            0,
        )
        .unwrap();
        xattr::set(upper.join("d"), "trusted.overlay.opaque", b"y").unwrap();
        let out = t.path().join("layer.tar");
        assert_eq!(diff_tar(&upper, &out).unwrap(), 7);
        assert_eq!(
            names(&out),
            vec![
                "a",
                "d/",
                "d/.wh..wh..opq",
                ".wh.gone",
                "link",
                "d/sub/",
                "d/sub/f"
            ]
        );
        let mut a = tar::Archive::new(fs::File::open(&out).unwrap());
        let link = a
            .entries()
            .unwrap()
            .map(|e| e.unwrap())
            .find(|e| e.path().unwrap().to_string_lossy() == "link")
            .unwrap();
        assert_eq!(link.link_name().unwrap().unwrap().to_string_lossy(), "a");
    }

    #[test]
    fn copied_files_take_the_given_owner_and_mode() {
        let t = tempfile::tempdir().unwrap();
        let src = t.path().join("f");
        fs::write(&src, "data").unwrap();
        let out = t.path().join("l.tar");
        let mut tw = TarWriter::create(&out).unwrap();
        tw.path(
            "app/f",
            &src,
            Some(Ownership {
                uid: 1000,
                gid: 50,
                mode: Some(0o600),
            }),
        )
        .unwrap();
        tw.finish().unwrap();
        let mut a = tar::Archive::new(fs::File::open(&out).unwrap());
        let e = a.entries().unwrap().next().unwrap().unwrap();
        let h = e.header();
        assert_eq!(
            (
                h.uid().unwrap(),
                h.gid().unwrap(),
                h.mode().unwrap(),
                h.size().unwrap()
            ),
            (1000, 50, 0o600, 4)
        );
    }
}
