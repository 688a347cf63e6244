//! `RUN --mount=...` made real: bind mounts of the context, a stage or an image; persistent
//! cache directories (with `sharing` and a `from` seed); tmpfs; secrets and SSH agent
//! sockets. What a mount leaves in the step's upper directory (its mount point, created
//! by the runtime) is removed before the layer is written, so nothing a mount carries,
//! nor its mount point, reaches the image.

use std::fs::{self, File};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};
use oci_spec::runtime::{Mount as OciMount, MountBuilder};
use sha2::Digest as _;

use crate::context::{Context, EntryKind};
use crate::dockerignore::DockerIgnore;
use crate::instruction::Run;
use crate::mount::{CacheSharing, MountKind};
use crate::overlay::ReadOnlyMount;
use crate::rootfs::RootfsView;
use crate::secrets::SecretSource;
use crate::stage_graph::CopyFrom;
use crate::step::{StepError, StepRun};

/// Where secrets are written for the time of one step: a tmpfs when the host has one.
const SHM: &str = "/dev/shm";

/// The mounts of one `RUN`, and what keeps them valid until the container is gone.
pub(crate) struct Prepared {
    /// OCI mounts for the container.
    pub mounts: Vec<OciMount>,
    /// Extra environment (`SSH_AUTH_SOCK`, secrets with `env=`), never recorded.
    pub env: Vec<String>,
    /// Mount points, to remove from the upper directory when the image lacked them.
    pub targets: Vec<String>,
    /// Overlay mounts, cache locks, secret directories: released on drop.
    _keep: Vec<Keep>,
}

enum Keep {
    Overlay(#[allow(dead_code)] ReadOnlyMount),
    Lock(#[allow(dead_code)] Flock<File>),
    Dir(PathBuf),
}

impl Drop for Keep {
    fn drop(&mut self) {
        if let Keep::Dir(d) = self {
            let _ = fs::remove_dir_all(d);
        }
    }
}

fn bind(target: &str, source: &Path, read_only: bool) -> Result<OciMount, StepError> {
    let opts = vec![
        "rbind".to_string(),
        if read_only { "ro" } else { "rw" }.to_string(),
    ];
    MountBuilder::default()
        .destination(target)
        .source(source)
        .typ("bind")
        .options(opts)
        .build()
        .map_err(|_| StepError::UnsupportedMount("bind"))
}

fn scratch_err(path: &Path) -> impl Fn(std::io::Error) -> StepError + '_ {
    move |source| StepError::Scratch {
        path: path.to_path_buf(),
        source,
    }
}

/// `source` inside `root` (a context, or a stage's or image's merged file system): the
/// path to bind, refusing what leads outside (`..`, symlinks out of the root).
fn inside(root: &Path, source: &str) -> Result<PathBuf, StepError> {
    let ctx = Context::with_ignore(root, DockerIgnore::default())?;
    inside_context(&ctx, source)
}

fn inside_context(ctx: &Context, source: &str) -> Result<PathBuf, StepError> {
    let entry = ctx
        .resolve(source)?
        .into_iter()
        .next()
        .ok_or(StepError::UnsupportedMount("bind"))?;
    if let EntryKind::Symlink { .. } = entry.kind {
        let real = entry
            .path
            .canonicalize()
            .map_err(scratch_err(&entry.path))?;
        let root = ctx.root().canonicalize().map_err(scratch_err(ctx.root()))?;
        if !real.starts_with(&root) {
            return Err(crate::context::ContextError::Escapes {
                source_path: source.to_string(),
            }
            .into());
        }
        return Ok(real);
    }
    Ok(entry.path)
}

/// Copies a tree keeping modes, owners and symlinks (the seed of a new cache directory).
fn copy_tree(from: &Path, to: &Path) -> Result<(), StepError> {
    let meta = fs::symlink_metadata(from).map_err(scratch_err(from))?;
    if meta.file_type().is_symlink() {
        let target = fs::read_link(from).map_err(scratch_err(from))?;
        std::os::unix::fs::symlink(target, to).map_err(scratch_err(to))?;
    } else if meta.is_dir() {
        fs::create_dir_all(to).map_err(scratch_err(to))?;
        for e in fs::read_dir(from).map_err(scratch_err(from))? {
            let e = e.map_err(scratch_err(from))?;
            copy_tree(&e.path(), &to.join(e.file_name()))?;
        }
        fs::set_permissions(to, fs::Permissions::from_mode(meta.mode() & 0o7777))
            .map_err(scratch_err(to))?;
    } else if meta.is_file() {
        fs::copy(from, to).map_err(scratch_err(to))?;
    } else {
        return Ok(()); // devices, sockets, fifos: not seeded
    }
    std::os::unix::fs::lchown(to, Some(meta.uid()), Some(meta.gid())).map_err(scratch_err(to))
}

impl StepRun<'_> {
    /// The layers of a `from=` stage or image (`RUN --mount from=`, `COPY --from`).
    pub(crate) fn layers_of(&self, raw: &str) -> Result<Vec<PathBuf>, StepError> {
        match self.stage.graph.copy_from[self.stage.stage.index].get(raw) {
            Some(CopyFrom::Stage(i)) => Ok(self
                .stage
                .done
                .lock()
                .ok()
                .and_then(|d| d.get(i).cloned())
                .ok_or(StepError::StageNotBuilt)?
                .image
                .map(|i| i.snapshots())
                .unwrap_or_default()),
            Some(CopyFrom::Image(name)) => Ok(match self.stage.origin(name, false)? {
                crate::stage::Origin::Image(i) => i.snapshots(),
                crate::stage::Origin::Dir(d) => vec![d],
            }),
            None => Err(StepError::StageNotBuilt),
        }
    }

    /// A cache directory: `id` (default the target) under the store root, created with
    /// `mode`/`uid`/`gid` and seeded from `from`; locked per `sharing`.
    #[allow(clippy::too_many_arguments)]
    fn cache_dir(
        &self,
        n: usize,
        id: &str,
        sharing: CacheSharing,
        from: Option<&str>,
        source: Option<&str>,
        owner: (Option<u32>, Option<u32>, Option<u32>),
        keep: &mut Vec<Keep>,
    ) -> Result<PathBuf, StepError> {
        let base = self.stage.builder.store.root().join("build-cache-mounts");
        fs::create_dir_all(&base).map_err(scratch_err(&base))?;
        let name = hex::encode(sha2::Sha256::digest(id.as_bytes()));
        let lock = |suffix: &str, arg: FlockArg| -> Result<Option<Flock<File>>, StepError> {
            let p = base.join(format!("{name}{suffix}.lock"));
            let f = File::create(&p).map_err(scratch_err(&p))?;
            match Flock::lock(f, arg) {
                Ok(l) => Ok(Some(l)),
                Err((_, nix::errno::Errno::EWOULDBLOCK)) => Ok(None),
                Err((_, e)) => Err(scratch_err(&p)(e.into())),
            }
        };
        let dir = match sharing {
            CacheSharing::Shared => base.join(&name),
            CacheSharing::Locked => {
                if let Some(l) = lock("", FlockArg::LockExclusive)? {
                    keep.push(Keep::Lock(l));
                }
                base.join(&name)
            }
            CacheSharing::Private => {
                // The first free instance: a concurrent writer gets a copy of its own.
                let mut k = 0usize;
                loop {
                    let suffix = if k == 0 {
                        String::new()
                    } else {
                        format!("-{k}")
                    };
                    if let Some(l) = lock(&suffix, FlockArg::LockExclusiveNonblock)? {
                        keep.push(Keep::Lock(l));
                        break base.join(format!("{name}{suffix}"));
                    }
                    k += 1;
                }
            }
        };
        if !dir.exists() {
            let tmp = self.scratch.join(format!("cache-{n}"));
            let _ = fs::remove_dir_all(&tmp);
            match from {
                Some(raw) => {
                    let layers = self.layers_of(raw)?;
                    let m = ReadOnlyMount::new(&layers, &self.scratch.join(format!("seed-{n}")))?;
                    let src = inside(m.path(), source.unwrap_or("/"))?;
                    copy_tree(&src, &tmp)?;
                }
                None => fs::create_dir_all(&tmp).map_err(scratch_err(&tmp))?,
            }
            let (mode, uid, gid) = owner;
            if from.is_none() {
                fs::set_permissions(&tmp, fs::Permissions::from_mode(mode.unwrap_or(0o755)))
                    .map_err(scratch_err(&tmp))?;
                std::os::unix::fs::chown(&tmp, Some(uid.unwrap_or(0)), Some(gid.unwrap_or(0)))
                    .map_err(scratch_err(&tmp))?;
            }
            // Another build may have made it meanwhile: theirs wins, ours goes.
            if fs::rename(&tmp, &dir).is_err() {
                let _ = fs::remove_dir_all(&tmp);
            }
        }
        Ok(dir)
    }

    /// A secret's file, written with its mode and owner into a private directory.
    fn secret_file(
        &self,
        n: usize,
        source: &SecretSource,
        owner: (Option<u32>, Option<u32>, Option<u32>),
        keep: &mut Vec<Keep>,
    ) -> Result<PathBuf, StepError> {
        let bytes = match source {
            SecretSource::Value(v) => v.clone(),
            SecretSource::File(p) => fs::read(p).map_err(|source| StepError::SecretFile {
                path: p.clone(),
                source,
            })?,
        };
        let parent = if Path::new(SHM).is_dir() {
            PathBuf::from(SHM)
        } else {
            self.scratch.clone()
        };
        let dir = parent.join(format!(
            "berth-secret-{}-{}",
            std::process::id(),
            crate::run::next_seq()
        ));
        fs::create_dir_all(&dir).map_err(scratch_err(&dir))?;
        keep.push(Keep::Dir(dir.clone()));
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o700)).map_err(scratch_err(&dir))?;
        let file = dir.join(format!("s{n}"));
        fs::write(&file, bytes).map_err(scratch_err(&file))?;
        let (mode, uid, gid) = owner;
        fs::set_permissions(&file, fs::Permissions::from_mode(mode.unwrap_or(0o400)))
            .map_err(scratch_err(&file))?;
        std::os::unix::fs::chown(&file, Some(uid.unwrap_or(0)), Some(gid.unwrap_or(0)))
            .map_err(scratch_err(&file))?;
        Ok(file)
    }

    /// The `--mount`s of `run` as OCI mounts, with the environment they add.
    pub(crate) fn prepare_mounts(&self, run: &Run) -> Result<Prepared, StepError> {
        let mut p = Prepared {
            mounts: Vec::new(),
            env: Vec::new(),
            targets: Vec::new(),
            _keep: Vec::new(),
        };
        let mut ssh_n = 0usize;
        for (n, m) in run.mounts.iter().enumerate() {
            let target = match &m.target {
                Some(t) => Some(crate::rootfs::absolute(
                    &self.workdir(),
                    &self.scope.word(t)?,
                )),
                None => None,
            };
            let tgt = || target.clone().unwrap_or_default();
            match &m.kind {
                MountKind::Cache {
                    id,
                    sharing,
                    read_only,
                    from,
                    source,
                    mode,
                    uid,
                    gid,
                } => {
                    let id = match id {
                        Some(i) => self.scope.word(i)?,
                        None => tgt(),
                    };
                    let dir = self.cache_dir(
                        n,
                        &id,
                        *sharing,
                        from.as_deref(),
                        source.as_deref(),
                        (*mode, *uid, *gid),
                        &mut p._keep,
                    )?;
                    p.mounts.push(bind(&tgt(), &dir, *read_only)?);
                    p.targets.push(tgt());
                }
                MountKind::Tmpfs { size } => {
                    let mut opts = vec!["nosuid".to_string(), "nodev".to_string()];
                    if let Some(s) = size {
                        opts.push(format!("size={s}"));
                    }
                    p.mounts.push(
                        MountBuilder::default()
                            .destination(tgt())
                            .source("tmpfs")
                            .typ("tmpfs")
                            .options(opts)
                            .build()
                            .map_err(|_| StepError::UnsupportedMount("tmpfs"))?,
                    );
                    p.targets.push(tgt());
                }
                MountKind::Bind {
                    source,
                    from,
                    read_write,
                } => {
                    let src = self.scope.word(source.as_deref().unwrap_or("."))?;
                    let path = match (from, read_write) {
                        (None, false) => inside_context(self.stage.ctx, &src)?,
                        (None, true) if !inside_context(self.stage.ctx, &src)?.is_dir() => {
                            // A single file: a scratch copy takes the writes.
                            let file = inside_context(self.stage.ctx, &src)?;
                            let copy = self.scratch.join(format!("bind-{n}.file"));
                            fs::copy(&file, &copy).map_err(scratch_err(&copy))?;
                            copy
                        }
                        (None, true) => {
                            // Writes go to a scratch overlay over the context and are dropped.
                            let ctx = inside_context(self.stage.ctx, &src)?;
                            let m = ReadOnlyMount::writable(
                                &[ctx],
                                &self.scratch.join(format!("bind-{n}")),
                            )?;
                            let path = m.path().to_path_buf();
                            p._keep.push(Keep::Overlay(m));
                            path
                        }
                        (Some(raw), rw) => {
                            let layers = self.layers_of(raw)?;
                            let at = self.scratch.join(format!("bind-{n}"));
                            let m = if *rw {
                                ReadOnlyMount::writable(&layers, &at)?
                            } else {
                                ReadOnlyMount::new(&layers, &at)?
                            };
                            let path = inside(m.path(), &src)?;
                            p._keep.push(Keep::Overlay(m));
                            path
                        }
                    };
                    p.mounts.push(bind(&tgt(), &path, !*read_write)?);
                    p.targets.push(tgt());
                }
                MountKind::Secret {
                    id,
                    required,
                    env,
                    mode,
                    uid,
                    gid,
                } => {
                    let id = match (id, &target) {
                        (Some(i), _) => i.clone(),
                        (None, Some(t)) => t.rsplit('/').next().unwrap_or_default().to_string(),
                        (None, None) => return Err(StepError::SecretId),
                    };
                    let Some(source) = self.stage.req.secrets.get(&id) else {
                        if *required {
                            return Err(StepError::MissingSecret(id));
                        }
                        continue;
                    };
                    if let Some(var) = env {
                        let bytes = match source {
                            SecretSource::Value(v) => v.clone(),
                            SecretSource::File(f) => {
                                fs::read(f).map_err(|source| StepError::SecretFile {
                                    path: f.clone(),
                                    source,
                                })?
                            }
                        };
                        p.env
                            .push(format!("{var}={}", String::from_utf8_lossy(&bytes)));
                    }
                    // With `env=` alone the secret is not a file (as BuildKit does).
                    if env.is_none() || target.is_some() {
                        let target = target.clone().unwrap_or(format!("/run/secrets/{id}"));
                        let file =
                            self.secret_file(n, source, (*mode, *uid, *gid), &mut p._keep)?;
                        p.mounts.push(bind(&target, &file, true)?);
                        p.targets.push(target);
                    }
                }
                MountKind::Ssh { id, required } => {
                    let id = id.clone().unwrap_or_else(|| "default".to_string());
                    let Some(sock) = self.stage.req.ssh.get(&id) else {
                        if *required {
                            return Err(StepError::MissingSsh(id));
                        }
                        continue;
                    };
                    if !sock.exists() {
                        return Err(StepError::SshSocket(sock.clone()));
                    }
                    let target = target
                        .clone()
                        .unwrap_or(format!("/run/buildkit/ssh_agent.{ssh_n}"));
                    ssh_n += 1;
                    p.mounts.push(bind(&target, sock, false)?);
                    if !p.env.iter().any(|e| e.starts_with("SSH_AUTH_SOCK=")) {
                        p.env.push(format!("SSH_AUTH_SOCK={target}"));
                    }
                    p.targets.push(target);
                }
            }
        }
        Ok(p)
    }

    fn workdir(&self) -> String {
        self.image
            .map(|i| i.config.config.working_dir.clone())
            .filter(|w| !w.is_empty())
            .unwrap_or_else(|| "/".to_string())
    }
}

/// Removes from `upper` the mount points the runtime created for `targets` that the image
/// (`lower`) did not have, and the parent directories made for them, when nothing else
/// was written there.
pub(crate) fn remove_mount_points(upper: &Path, lower: &RootfsView, targets: &[String]) {
    for t in targets {
        let rel = t.trim_start_matches('/').trim_end_matches('/');
        if rel.is_empty() {
            continue;
        }
        let mut path = PathBuf::from(rel);
        if lower.find(rel).is_none() {
            let p = upper.join(&path);
            match fs::symlink_metadata(&p) {
                Ok(m) if m.is_dir() => {
                    let _ = fs::remove_dir(&p); // only when empty
                }
                Ok(m) if m.len() == 0 => {
                    let _ = fs::remove_file(&p);
                }
                _ => continue,
            }
        }
        while path.pop() && !path.as_os_str().is_empty() {
            let p = upper.join(&path);
            let Ok(m) = fs::symlink_metadata(&p) else {
                break;
            };
            let rel = path.to_string_lossy();
            let copied_up_unchanged = lower
                .find(&rel)
                .and_then(|l| l.symlink_metadata().ok())
                .is_some_and(|l| {
                    l.is_dir() && l.mode() == m.mode() && l.uid() == m.uid() && l.gid() == m.gid()
                });
            let opaque = xattr::get(&p, "trusted.overlay.opaque")
                .ok()
                .flatten()
                .is_some();
            if !m.is_dir() || opaque || !(lower.find(&rel).is_none() || copied_up_unchanged) {
                break;
            }
            if fs::remove_dir(&p).is_err() {
                break; // not empty: the command wrote there
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mount_points_the_image_lacked_are_removed_with_their_empty_parents() {
        let t = tempfile::tempdir().unwrap();
        let (lower, upper) = (t.path().join("lower"), t.path().join("upper"));
        fs::create_dir_all(lower.join("run")).unwrap();
        fs::create_dir_all(upper.join("run/secrets")).unwrap();
        fs::write(upper.join("run/secrets/token"), "").unwrap();
        fs::create_dir_all(upper.join("root/.cache")).unwrap();
        fs::create_dir_all(upper.join("keep/mnt")).unwrap();
        fs::write(upper.join("keep/written.txt"), "x").unwrap();
        // The copied-up /run must match the lower one to count as unchanged.
        let m = fs::metadata(lower.join("run")).unwrap();
        fs::set_permissions(upper.join("run"), m.permissions()).unwrap();
        let view = RootfsView::new(vec![lower]);
        remove_mount_points(
            &upper,
            &view,
            &[
                "/run/secrets/token".into(),
                "/root/.cache".into(),
                "/keep/mnt".into(),
            ],
        );
        let mut left: Vec<String> = walk(&upper);
        left.sort();
        assert_eq!(left, vec!["keep", "keep/written.txt"]);
    }

    fn walk(dir: &Path) -> Vec<String> {
        let mut out = Vec::new();
        for e in fs::read_dir(dir).unwrap() {
            let e = e.unwrap();
            let name = e.file_name().to_string_lossy().into_owned();
            if e.file_type().unwrap().is_dir() {
                out.extend(walk(&e.path()).into_iter().map(|s| format!("{name}/{s}")));
            }
            out.push(name);
        }
        out
    }
}
