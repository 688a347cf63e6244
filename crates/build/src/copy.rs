//! COPY and ADD: the files they place, as a layer tar.
//!
//! Docker's rules: a directory source copies its *contents*; a file goes to `dest/name`
//! when `dest` ends in `/` or is a directory in the image, else to `dest` itself;
//! several sources (or a wildcard) need a directory destination; missing parent
//! directories are created; files are owned by root unless `--chown`, and keep their
//! mode unless `--chmod`. `ADD` unpacks a local tar archive (plain or gzip) into `dest`.

use std::collections::HashSet;
use std::io::Read;
use std::path::{Path, PathBuf};

use berth_image::ImageConfig;

use crate::context::{Context, Entry, EntryKind};
use crate::dockerignore::{DockerIgnore, Pattern};
use crate::instruction::{Copy, Instruction, Source};
use crate::layer::{Ownership, TarWriter};
use crate::overlay::ReadOnlyMount;
use crate::rootfs::{absolute, names_dir};
use crate::step::{StepError, StepRun};
use crate::substitute::expand_heredoc;

/// Whether an ADD source is a URL.
pub fn is_url(s: &str) -> bool {
    s.starts_with("http://") || s.starts_with("https://")
}

struct Placer {
    tw: TarWriter,
    own: Ownership,
    chmod: Option<u32>,
    /// Directories already in the tar or in the image.
    dirs: HashSet<String>,
    view: crate::rootfs::RootfsView,
    exclude: DockerIgnore,
}

impl Placer {
    /// Emits entries for missing parent directories of `path` (an absolute, clean path).
    fn parents(&mut self, path: &str) -> Result<(), StepError> {
        let mut cur = String::new();
        let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
        for part in &parts[..parts.len().saturating_sub(1)] {
            cur = format!("{cur}/{part}");
            self.dir(&cur, 0o755)?;
        }
        Ok(())
    }

    fn dir(&mut self, path: &str, mode: u32) -> Result<(), StepError> {
        if path == "/" || self.dirs.contains(path) {
            return Ok(());
        }
        self.dirs.insert(path.to_string());
        if self.view.is_dir(path) {
            return Ok(());
        }
        self.tw.dir(
            path.trim_start_matches('/'),
            self.chmod.unwrap_or(mode),
            self.own.uid,
            self.own.gid,
            0,
        )?;
        Ok(())
    }

    /// Places one context (or stage) entry at `dest` (absolute path in the image).
    fn entry(&mut self, e: &Entry, dest: &str) -> Result<(), StepError> {
        self.parents(dest)?;
        let own = Ownership {
            mode: self.chmod,
            ..self.own
        };
        match e.kind {
            EntryKind::Dir => {
                if !self.dirs.contains(dest) {
                    self.dirs.insert(dest.to_string());
                    self.tw
                        .path(dest.trim_start_matches('/'), &e.path, Some(own))?;
                }
            }
            EntryKind::Other => {}
            _ => self
                .tw
                .path(dest.trim_start_matches('/'), &e.path, Some(own))?,
        }
        Ok(())
    }

    /// Places `top` (a resolved source) and, for a directory, its contents.
    fn tree(
        &mut self,
        ctx: &Context,
        top: Entry,
        dest: &str,
        dest_is_dir: bool,
    ) -> Result<(), StepError> {
        let is_dir = top.kind == EntryKind::Dir;
        let top_rel = top.rel.clone();
        if !is_dir {
            let name = top_rel.rsplit('/').next().unwrap_or(&top_rel).to_string();
            let target = if dest_is_dir {
                format!("{}/{name}", dest.trim_end_matches('/'))
            } else {
                dest.to_string()
            };
            return self.entry(&top, &crate::dockerignore::clean(&target));
        }
        let base = crate::dockerignore::clean(dest);
        self.parents(&format!("{base}/x"))?;
        self.dir(&base, 0o755)?;
        for e in ctx.walk_from(top).skip(1) {
            let e = e?;
            let inner = if top_rel.is_empty() {
                e.rel.clone()
            } else {
                e.rel[top_rel.len() + 1..].to_string()
            };
            if self.exclude.is_excluded(&inner) {
                continue;
            }
            self.entry(&e, &format!("{}/{inner}", base.trim_end_matches('/')))?;
        }
        Ok(())
    }

    /// `ADD` of a local archive: its entries under `dest`.
    fn archive(&mut self, path: &Path, dest: &str) -> Result<(), StepError> {
        let rerr = |source| StepError::Scratch {
            path: path.to_path_buf(),
            source,
        };
        let f = std::fs::File::open(path).map_err(rerr)?;
        let reader: Box<dyn Read> = if is_gzip(path) {
            Box::new(flate2::read::GzDecoder::new(f))
        } else {
            Box::new(f)
        };
        let base = crate::dockerignore::clean(dest);
        self.parents(&format!("{base}/x"))?;
        self.dir(&base, 0o755)?;
        let mut archive = tar::Archive::new(reader);
        for entry in archive.entries().map_err(rerr)? {
            let mut entry = entry.map_err(rerr)?;
            let name = entry.path().map_err(rerr)?.to_string_lossy().into_owned();
            let clean = crate::dockerignore::clean(&format!("/{name}"));
            let target = format!("{}{clean}", base.trim_end_matches('/'));
            let mut header = entry.header().clone();
            self.parents(&target)?;
            if header.entry_type().is_dir() {
                self.dirs.insert(target.clone());
            }
            self.tw
                .raw(&mut header, target.trim_start_matches('/'), &mut entry)?;
        }
        Ok(())
    }
}

fn is_gzip(path: &Path) -> bool {
    let mut b = [0u8; 2];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut b))
        .is_ok()
        && b == [0x1f, 0x8b]
}

/// Whether the file is a tar archive (plain or gzip) that ADD unpacks.
fn is_archive(path: &Path) -> bool {
    let Ok(f) = std::fs::File::open(path) else {
        return false;
    };
    let mut r: Box<dyn Read> = if is_gzip(path) {
        Box::new(flate2::read::GzDecoder::new(f))
    } else {
        Box::new(f)
    };
    let mut head = vec![0u8; 512];
    r.read_exact(&mut head).is_ok() && &head[257..262] == b"ustar"
}

fn parse_chmod(s: &str) -> Result<u32, StepError> {
    u32::from_str_radix(s, 8)
        .ok()
        .filter(|m| *m <= 0o7777)
        .ok_or_else(|| StepError::Chmod(s.to_string()))
}

/// Writes the layer of a COPY/ADD step; returns the tar's path.
pub(crate) fn copy(
    run: &StepRun<'_>,
    config: &ImageConfig,
    cp: &Copy,
) -> Result<PathBuf, StepError> {
    run.mkdir_scratch()?;
    let s = run.scope;
    let is_add = matches!(run.step.instruction, Instruction::Add(_));
    let view = run.view();
    let own = match &cp.chown {
        Some(spec) => {
            let (uid, gid) = view.user(&s.word(spec)?)?;
            Ownership {
                uid,
                gid,
                mode: None,
            }
        }
        None => Ownership::default(),
    };
    let chmod = cp
        .chmod
        .as_ref()
        .map(|m| {
            s.word(m)
                .map_err(StepError::from)
                .and_then(|m| parse_chmod(&m))
        })
        .transpose()?;
    let dest_raw = s.word(&cp.dest)?;
    let dest = absolute(&config.config.working_dir, &dest_raw);
    let paths = run.stage.source_paths(cp, s)?;
    let wildcard = paths.iter().any(|p| p.contains(['*', '?', '[']));
    let many = cp.sources.len() > 1 || wildcard;
    let dest_is_dir = names_dir(&dest_raw) || view.is_dir(&dest);
    if many && !dest_is_dir {
        return Err(StepError::DestNotDir(dest_raw));
    }
    let mut exclude = DockerIgnore::default();
    for pat in &cp.exclude {
        if let Ok(Some(p)) = Pattern::new(&s.word(pat)?) {
            exclude.patterns.push(p);
        }
    }
    let tar_path = run.scratch.join("layer.tar");
    let mut placer = Placer {
        tw: TarWriter::create(&tar_path)?,
        own,
        chmod,
        dirs: HashSet::new(),
        view: view.clone(),
        exclude,
    };
    // Where the sources come from: the context, or a stage's or image's file system.
    let mut _mount = None;
    let from_ctx;
    let src_ctx: &Context = match &cp.from {
        None => run.stage.ctx,
        Some(raw) => {
            let layers = run.layers_of(raw)?;
            let m = ReadOnlyMount::new(&layers, &run.scratch.join("from"))?;
            from_ctx = Context::with_ignore(m.path(), DockerIgnore::default())?;
            _mount = Some(m);
            &from_ctx
        }
    };
    for p in &paths {
        if is_add && is_url(p) {
            let checksum = cp.checksum.as_deref().map(|c| s.word(c)).transpose()?;
            let d = crate::download::fetch(p, &run.stage.downloads(), checksum.as_deref())?;
            let target = if dest_is_dir || many {
                format!(
                    "{}/{}",
                    dest.trim_end_matches('/'),
                    crate::download::file_name(p)
                )
            } else {
                dest.clone()
            };
            placer.parents(&target)?;
            let f = std::fs::File::open(&d.path).map_err(|source| StepError::Scratch {
                path: d.path.clone(),
                source,
            })?;
            placer.tw.file(
                target.trim_start_matches('/'),
                chmod.unwrap_or(0o600),
                own.uid,
                own.gid,
                d.mtime,
                d.size,
                f,
            )?;
            continue;
        }
        for top in src_ctx.resolve(p)? {
            if is_add && cp.from.is_none() && top.kind != EntryKind::Dir && is_archive(&top.path) {
                placer.archive(&top.path, &dest)?;
                continue;
            }
            placer.tree(src_ctx, top, &dest, dest_is_dir || many)?;
        }
    }
    for src in &cp.sources {
        if let Source::Heredoc(h) = src {
            let content = if h.expand {
                expand_heredoc(&h.content, run.scope)?
            } else {
                h.content.clone()
            };
            let target = if dest_is_dir || many {
                format!("{}/{}", dest.trim_end_matches('/'), h.name)
            } else {
                dest.clone()
            };
            placer.parents(&target)?;
            placer.tw.file(
                target.trim_start_matches('/'),
                chmod.unwrap_or(0o644),
                own.uid,
                own.gid,
                0,
                content.len() as u64,
                content.as_bytes(),
            )?;
        }
    }
    Ok(placer.tw.finish()?)
}

/// The layer of a `WORKDIR` whose directory does not exist yet.
pub(crate) fn mkdir_layer(run: &StepRun<'_>, dir: &str) -> Result<PathBuf, StepError> {
    let tar_path = run.scratch.join("layer.tar");
    let mut placer = Placer {
        tw: TarWriter::create(&tar_path)?,
        own: Ownership::default(),
        chmod: None,
        dirs: HashSet::new(),
        view: run.view(),
        exclude: DockerIgnore::default(),
    };
    placer.parents(&format!("{}/x", dir.trim_end_matches('/')))?;
    placer.dir(dir, 0o755)?;
    Ok(placer.tw.finish()?)
}
