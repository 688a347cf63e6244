//! `berth diff` and `berth commit`: a container's changes are its overlay upper directory,
//! read against the image layers below it.
//!
//! - `diff` lists them as `docker diff` does: `A` (added), `C` (changed: present in a
//!   layer, or a directory holding changes) and `D` (deleted: a whiteout, or an entry of a
//!   layer hidden by an opaque directory), sorted by path.
//! - `commit` writes them as one OCI layer (whiteouts as `.wh.<name>`, opaque directories
//!   with `.wh..wh..opq`) on top of the container's image, with the image config updated
//!   from the container (its command, environment and working directory) and `--change`
//!   instructions, as `docker commit` does. The container is paused meanwhile unless told
//!   otherwise.
//!
//! Mount points the runtime creates in the upper directory (empty `/dev`, `/proc`, `/sys`,
//! the empty `/etc/hosts`, `/etc/hostname` and `/etc/resolv.conf` that bind mounts cover,
//! and empty targets of the container's own mounts) are not changes: Docker keeps them in
//! an init layer that neither `diff` nor `commit` sees.

use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use berth_build::layer::{LayerError, TarWriter};
use berth_image::config::History;
use berth_image::import::{ImportError, apply_changes};
use berth_image::reference::ReferenceError;
use berth_image::{Image, Layer, Reference, StoreError};
use berth_runtime::diff::{Change, ChangeKind};
use berth_runtime::oci_spec::runtime::Process;
use berth_runtime::{Rootfs, RuntimeError, Status};

use super::{Containers, ContainersError, runtime_id};
use crate::events::{Event, EventType};

/// Errors of `diff` and `commit`.
#[derive(Debug, thiserror::Error)]
pub enum ChangesError {
    /// Finding, pausing or resuming the container failed.
    #[error(transparent)]
    Container(Box<ContainersError>),
    /// The runtime's record of the container could not be read.
    #[error(transparent)]
    Runtime(Box<RuntimeError>),
    /// The container's root is a plain directory: there is no layer to compare with.
    #[error("container {0} has no overlay root file system to compare with its image")]
    NotOverlay(String),
    /// Reading the upper directory or a layer failed.
    #[error("read {path}")]
    Read {
        /// The path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// Writing the layer's tar failed.
    #[error(transparent)]
    Layer(#[from] LayerError),
    /// The image store failed (the base image gone, writing the layer or the image).
    #[error(transparent)]
    Image(Box<StoreError>),
    /// A `--change` instruction is malformed or not allowed.
    #[error(transparent)]
    Change(#[from] ImportError),
    /// `REPO[:TAG]` does not parse.
    #[error("invalid reference format {reference:?}")]
    Reference {
        /// What the user typed.
        reference: String,
        /// Why.
        #[source]
        source: ReferenceError,
    },
}

impl From<ContainersError> for ChangesError {
    fn from(e: ContainersError) -> Self {
        Self::Container(Box::new(e))
    }
}

impl From<RuntimeError> for ChangesError {
    fn from(e: RuntimeError) -> Self {
        Self::Runtime(Box::new(e))
    }
}

impl From<StoreError> for ChangesError {
    fn from(e: StoreError) -> Self {
        Self::Image(Box::new(e))
    }
}

impl ChangesError {
    /// Whether the caller is to blame (a bad reference or change, a missing container).
    pub fn is_bad_request(&self) -> bool {
        matches!(
            self,
            Self::Change(_) | Self::Reference { .. } | Self::NotOverlay(_)
        )
    }

    /// The container's error, when that is what failed.
    pub fn container(&self) -> Option<&ContainersError> {
        match self {
            Self::Container(e) => Some(e),
            _ => None,
        }
    }
}

/// Options of [`Containers::commit`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CommitOptions {
    /// `REPO[:TAG]` to tag the image with (`None`: untagged).
    pub reference: Option<String>,
    /// `-m`: the history comment.
    pub message: Option<String>,
    /// `-a`: the author.
    pub author: Option<String>,
    /// `-c`: Dockerfile instructions applied to the config (`CMD`, `ENV`, `EXPOSE`, …).
    pub changes: Vec<String>,
    /// Freeze the container while its changes are read (Docker's default).
    pub pause: bool,
}

/// One entry of the upper directory, parents before children.
#[derive(Debug)]
enum Entry {
    /// A whiteout: the path was deleted.
    Whiteout(String),
    /// A file, directory or link of the upper directory.
    Item {
        /// Path relative to the root, `/`-separated.
        rel: String,
        /// Where it is on the host.
        path: PathBuf,
        /// Whether a layer below has it (and no upper directory above it is opaque).
        in_lower: bool,
        /// An opaque directory: the layers' entries below it are hidden.
        opaque: bool,
        /// For opaque directories, the layers' entries it hides (relative paths).
        hidden: Vec<String>,
    },
}

fn read_err(path: &Path) -> impl FnOnce(std::io::Error) -> ChangesError + '_ {
    move |source| ChangesError::Read {
        path: path.to_path_buf(),
        source,
    }
}

fn is_whiteout(meta: &fs::Metadata) -> bool {
    meta.file_type().is_char_device() && meta.rdev() == 0
}

fn is_opaque(path: &Path) -> bool {
    ["trusted.overlay.opaque", "user.overlay.opaque"]
        .iter()
        .any(|k| matches!(xattr::get(path, k), Ok(Some(v)) if v == b"y"))
}

/// An overlay's upper directory over its layers.
struct Upper<'a> {
    lowerdirs: &'a [PathBuf],
    upper: &'a Path,
    /// Mount points the runtime may have created (relative paths).
    mount_points: Vec<String>,
}

impl Upper<'_> {
    /// Whether the layers show `rel`: the top-most layer that knows it decides (a whiteout
    /// there, or an opaque parent, hides what lies below).
    fn in_lower(&self, rel: &str) -> bool {
        for l in self.lowerdirs {
            match fs::symlink_metadata(l.join(rel)) {
                Ok(m) => return !is_whiteout(&m),
                Err(_) => {
                    if let Some(parent) = Path::new(rel).parent()
                        && !parent.as_os_str().is_empty()
                        && is_opaque(&l.join(parent))
                    {
                        return false;
                    }
                }
            }
        }
        false
    }

    /// The entries of directory `rel` that the layers show (for an opaque directory).
    fn lower_children(&self, rel: &str) -> Vec<String> {
        let mut names = std::collections::BTreeSet::new();
        for l in self.lowerdirs {
            if let Ok(entries) = fs::read_dir(l.join(rel)) {
                for e in entries.flatten() {
                    names.insert(e.file_name().to_string_lossy().into_owned());
                }
            }
        }
        names
            .into_iter()
            .map(|n| format!("{rel}/{n}"))
            .filter(|c| self.in_lower(c))
            .collect()
    }

    /// A mount point the runtime created, still empty.
    fn is_mount_point(&self, rel: &str, path: &Path, meta: &fs::Metadata) -> bool {
        if !self.mount_points.iter().any(|m| m == rel) {
            return false;
        }
        if meta.is_dir() {
            fs::read_dir(path).is_ok_and(|mut d| d.next().is_none())
        } else {
            meta.is_file() && meta.len() == 0
        }
    }

    fn entries(&self) -> Result<Vec<Entry>, ChangesError> {
        let mut out = Vec::new();
        self.walk(self.upper, "", false, &mut out)?;
        Ok(out)
    }

    /// Walks `dir` (`rel` from the root) in name order. Returns whether it had entries
    /// and whether any of them was kept (not a mount point).
    fn walk(
        &self,
        dir: &Path,
        rel: &str,
        opaque_above: bool,
        out: &mut Vec<Entry>,
    ) -> Result<(bool, bool), ChangesError> {
        let mut names: Vec<_> = fs::read_dir(dir)
            .map_err(read_err(dir))?
            .map(|e| e.map(|e| e.file_name()))
            .collect::<Result<_, _>>()
            .map_err(read_err(dir))?;
        names.sort();
        let (had, mut kept) = (!names.is_empty(), false);
        // `kept`: some entry of this directory stays in `out`.
        for name in names {
            let name = name.to_string_lossy().into_owned();
            let path = dir.join(&name);
            let rel_name = if rel.is_empty() {
                name
            } else {
                format!("{rel}/{name}")
            };
            let meta = fs::symlink_metadata(&path).map_err(read_err(&path))?;
            if is_whiteout(&meta) {
                out.push(Entry::Whiteout(rel_name));
                kept = true;
                continue;
            }
            if self.is_mount_point(&rel_name, &path, &meta) {
                continue;
            }
            let opaque = meta.is_dir() && is_opaque(&path);
            let in_lower = !opaque_above && self.in_lower(&rel_name);
            let hidden = if opaque && in_lower {
                self.lower_children(&rel_name)
                    .into_iter()
                    .filter(|c| fs::symlink_metadata(self.upper.join(c)).is_err())
                    .collect()
            } else {
                Vec::new()
            };
            let at = out.len();
            out.push(Entry::Item {
                rel: rel_name.clone(),
                path: path.clone(),
                in_lower,
                opaque,
                hidden,
            });
            if meta.is_dir() {
                let (child_had, child_kept) =
                    self.walk(&path, &rel_name, opaque_above || opaque, out)?;
                // A directory present only for the mount points in it is no change.
                if child_had && !child_kept && !opaque {
                    out.truncate(at);
                    continue;
                }
            }
            kept = true;
        }
        Ok((had, kept))
    }
}

/// The changes of `entries` as `docker diff` lists them, sorted by path.
fn changes(entries: &[Entry]) -> Vec<Change> {
    let mut out = Vec::new();
    let change = |kind, rel: &str| Change {
        kind,
        path: PathBuf::from(format!("/{rel}")),
    };
    for e in entries {
        match e {
            Entry::Whiteout(rel) => out.push(change(ChangeKind::Deleted, rel)),
            Entry::Item {
                rel,
                in_lower,
                hidden,
                ..
            } => {
                let kind = if *in_lower {
                    ChangeKind::Changed
                } else {
                    ChangeKind::Added
                };
                out.push(change(kind, rel));
                out.extend(hidden.iter().map(|h| change(ChangeKind::Deleted, h)));
            }
        }
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    out
}

/// Writes `entries` as an OCI layer tar at `out`.
fn write_layer(entries: &[Entry], out: &Path) -> Result<(), ChangesError> {
    let mut tw = TarWriter::create(out)?;
    for e in entries {
        match e {
            Entry::Whiteout(rel) => tw.whiteout(rel)?,
            Entry::Item {
                rel, path, opaque, ..
            } => {
                tw.path(rel, path, None)?;
                if *opaque {
                    // `<dir>/.wh..wh..opq`.
                    tw.whiteout(&format!("{rel}/.wh..opq"))?;
                }
            }
        }
    }
    tw.finish()?;
    Ok(())
}

/// Removes a file when dropped.
struct TempFile(PathBuf);

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.0);
    }
}

impl Containers {
    /// The overlay layers and upper directory of container `id`, and its process.
    fn overlay(
        &self,
        id: &str,
        name: &str,
    ) -> Result<(Vec<PathBuf>, PathBuf, Option<Process>), ChangesError> {
        let launch = self.runtime.load(runtime_id(id))?.launch_config()?;
        let process = launch.request.spec.process().clone();
        match launch.request.rootfs {
            Rootfs::Overlay {
                lowerdirs, upper, ..
            } => Ok((lowerdirs, upper, process)),
            Rootfs::Path(_) => Err(ChangesError::NotOverlay(name.to_owned())),
        }
    }

    fn upper_entries(&self, key: &str) -> Result<(Vec<Entry>, CommitSource), ChangesError> {
        let info = self.find(key)?;
        let (lowerdirs, upper, process) = self.overlay(&info.doc.id, &info.doc.name)?;
        let mut mount_points: Vec<String> = ["dev", "proc", "sys"]
            .into_iter()
            .map(str::to_owned)
            .chain(super::spec::ETC_FILES.iter().map(|f| format!("etc/{f}")))
            .collect();
        mount_points.extend(
            info.doc
                .mounts
                .iter()
                .map(|m| m.target.trim_matches('/').to_owned()),
        );
        let walker = Upper {
            lowerdirs: &lowerdirs,
            upper: &upper,
            mount_points,
        };
        let entries = walker.entries()?;
        Ok((
            entries,
            CommitSource {
                id: info.doc.id,
                name: info.doc.name,
                image_id: info.doc.image_id,
                command: info.doc.command,
                cwd: process.as_ref().map(|p| p.cwd().display().to_string()),
                env: process.and_then(|p| p.env().clone()),
            },
        ))
    }

    /// `docker diff`: the changes of container `key`'s file system against its image.
    pub fn diff(&self, key: &str) -> Result<Vec<Change>, ChangesError> {
        let (entries, _) = self.upper_entries(key)?;
        Ok(changes(&entries))
    }

    /// `docker commit`: a new image made of container `key`'s image and one more layer
    /// holding its changes, its config updated from the container and `opts.changes`.
    pub fn commit(&self, key: &str, opts: &CommitOptions) -> Result<Image, ChangesError> {
        let reference = opts
            .reference
            .as_deref()
            .map(|r| {
                Reference::parse(r).map_err(|source| ChangesError::Reference {
                    reference: r.to_owned(),
                    source,
                })
            })
            .transpose()?;
        // Bad instructions fail before anything is written.
        apply_changes(&mut berth_image::ImageConfig::default(), &opts.changes)?;
        let info = self.find(key)?;
        let pause = opts.pause && info.state.as_ref().map(|s| s.status) == Some(Status::Running);
        if pause {
            self.pause(&info.doc.id)?;
        }
        let written = self.commit_layer(&info.doc.id);
        if pause {
            self.unpause(&info.doc.id)?;
        }
        let (layer, source) = written?;
        let base = self.images.find(&source.image_id)?;
        let mut config = base.config.clone();
        if let Some(env) = source.env {
            config.config.env = env;
        }
        // `-w` (or the image's own): `/` only when asked for.
        if let Some(cwd) = source.cwd
            && (cwd != "/" || !config.config.working_dir.is_empty())
        {
            config.config.working_dir = cwd;
        }
        let entrypoint = config.config.entrypoint.clone().unwrap_or_default();
        if source.command.starts_with(&entrypoint) {
            config.config.cmd = Some(source.command[entrypoint.len()..].to_vec());
        } else {
            config.config.entrypoint = None;
            config.config.cmd = Some(source.command.clone());
        }
        apply_changes(&mut config, &opts.changes)?;
        let created = berth_runtime::clock::now_rfc3339();
        config.created = Some(created.clone());
        if opts.author.is_some() {
            config.author = opts.author.clone();
        }
        config.history.push(History {
            created: Some(created),
            created_by: Some(source.command.join(" ")),
            comment: opts.message.clone(),
            author: opts.author.clone(),
            ..Default::default()
        });
        let mut layers: Vec<Layer> = base
            .manifest
            .layers
            .iter()
            .zip(&base.config.rootfs.diff_ids)
            .map(|(d, diff)| Layer {
                digest: d.digest.clone(),
                diff_id: diff.clone(),
                size: d.size,
                media_type: d.media_type.clone(),
            })
            .collect();
        layers.push(layer);
        let tags: Vec<Reference> = reference.into_iter().collect();
        let image = self.images.create_image(config, &layers, &tags)?;
        let _ = self.engine.emit(
            Event::now(EventType::Container, "commit", &source.id)
                .with("name", &source.name)
                .with("image", image.id.to_string()),
        );
        Ok(image)
    }

    /// Writes the container's changes as a layer into the image store.
    fn commit_layer(&self, id: &str) -> Result<(Layer, CommitSource), ChangesError> {
        let (entries, source) = self.upper_entries(id)?;
        let tar = TempFile(
            self.dir(&source.id)
                .join(format!("commit-{}.tar", super::names::new_id()?)),
        );
        write_layer(&entries, &tar.0)?;
        let f = fs::File::open(&tar.0).map_err(read_err(&tar.0))?;
        let layer = self.images.write_layer(f)?;
        Ok((layer, source))
    }
}

/// What a commit takes from the container.
#[derive(Debug)]
struct CommitSource {
    id: String,
    name: String,
    image_id: String,
    command: Vec<String>,
    cwd: Option<String>,
    env: Option<Vec<String>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(lower: &Path, upper: &Path, mount_points: &[&str]) -> Vec<String> {
        let lowerdirs = vec![lower.to_path_buf()];
        let u = Upper {
            lowerdirs: &lowerdirs,
            upper,
            mount_points: mount_points.iter().map(|s| s.to_string()).collect(),
        };
        changes(&u.entries().unwrap())
            .iter()
            .map(|c| c.to_string())
            .collect()
    }

    #[test]
    fn classifies_like_docker_diff_and_leaves_runtime_mount_points_out() {
        let t = tempfile::tempdir().unwrap();
        let (lower, upper) = (t.path().join("l"), t.path().join("u"));
        for d in ["etc", "proc", "usr/share"] {
            fs::create_dir_all(lower.join(d)).unwrap();
        }
        fs::write(lower.join("etc/passwd"), "x").unwrap();
        fs::write(lower.join("usr/share/a"), "a").unwrap();
        fs::write(lower.join("usr/share/b"), "b").unwrap();
        for d in ["etc", "proc", "dev", "usr/share", "tmp/d"] {
            fs::create_dir_all(upper.join(d)).unwrap();
        }
        fs::write(upper.join("etc/passwd"), "y").unwrap();
        fs::write(upper.join("etc/hosts"), "").unwrap();
        fs::write(upper.join("usr/share/b"), "b2").unwrap();
        fs::write(upper.join("new.txt"), "n").unwrap();
        assert_eq!(
            lines(&lower, &upper, &["dev", "proc", "etc/hosts"]),
            [
                "C /etc",
                "C /etc/passwd",
                "A /new.txt",
                "A /tmp",
                "A /tmp/d",
                "C /usr",
                "C /usr/share",
                "C /usr/share/b"
            ]
        );
        // A directory holding nothing but mount points is no change.
        fs::remove_file(upper.join("etc/passwd")).unwrap();
        let l = lines(&lower, &upper, &["dev", "proc", "etc/hosts"]);
        assert!(!l.iter().any(|c| c.contains("/etc")), "{l:?}");
    }
}
