//! Writes small regular files of a layer on a few worker threads.
//!
//! Creating a file costs a synchronous inode allocation that, while a pull saturates the disk
//! with layer data, waits behind that writeback; one thread creating files one after another
//! pays every wait in turn. The unpacker hands fresh small files (already read into memory)
//! to this pool and calls [`Pool::flush`] before anything that could touch a path still in
//! flight (the same path again, hardlinks, whiteouts, removals) and at the end.
//!
//! Files travel in batches (up to [`BATCH_FILES`] files or [`BATCH_BYTES`] bytes), so the
//! hand-over costs a few wake-ups per batch instead of per file; and a file is created with
//! its final mode when the umask allows, so most files take open, write, fchown, futimens
//! and close only.

use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::PathBuf;
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::SystemTime;

use crate::fsio::{PathError, WithPath};

/// Files up to this size go to the pool.
pub const SMALL_FILE: u64 = 128 * 1024;

/// A batch is handed over when it holds this many files...
pub const BATCH_FILES: usize = 64;
/// ...or this many bytes of content.
pub const BATCH_BYTES: usize = 512 * 1024;

/// One file to write.
pub struct Job {
    /// Absolute path (its parent exists and nothing is at the path).
    pub path: PathBuf,
    /// Content.
    pub data: Vec<u8>,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Permission bits.
    pub mode: u32,
    /// Modification time.
    pub mtime: SystemTime,
    /// Extended attributes.
    pub xattrs: Vec<(String, Vec<u8>)>,
}

#[derive(Default)]
struct State {
    in_flight: usize,
    error: Option<PathError>,
}

type Shared = Arc<(Mutex<State>, Condvar)>;

/// The worker pool; joined on drop.
pub struct Pool {
    tx: Option<Sender<Vec<Job>>>,
    shared: Shared,
    workers: Vec<JoinHandle<()>>,
    /// Files not handed over yet, and the size of their content.
    batch: Vec<Job>,
    batch_bytes: usize,
    /// The process umask: modes it does not strip can be given at creation.
    umask: Option<u32>,
}

/// The umask, from `/proc/self/status` (reading it with umask(2) would change it).
fn read_umask() -> Option<u32> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find_map(|l| l.strip_prefix("Umask:"))?;
    u32::from_str_radix(line.trim(), 8).ok()
}

fn write(job: &Job, umask: Option<u32>) -> Result<(), PathError> {
    let p = &job.path;
    // Created with its final mode when the umask keeps every bit and there is no
    // setuid/setgid/sticky bit (fchown would clear those, so they are set after it).
    let direct = umask.is_some_and(|m| job.mode & m == 0) && job.mode & 0o7000 == 0;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(if direct { job.mode } else { 0o600 })
        .open(p)
        .with_path("creating", p)?;
    std::io::Write::write_all(&mut f, &job.data).with_path("writing", p)?;
    std::os::unix::fs::fchown(&f, Some(job.uid), Some(job.gid))
        .with_path("changing owner of", p)?;
    if !direct {
        f.set_permissions(std::fs::Permissions::from_mode(job.mode))
            .with_path("changing mode of", p)?;
    }
    for (name, value) in &job.xattrs {
        xattr::set(p, name, value).with_path("setting xattr on", p)?;
    }
    f.set_modified(job.mtime).with_path("setting mtime of", p)
}

fn work(rx: Arc<Mutex<Receiver<Vec<Job>>>>, shared: Shared, umask: Option<u32>) {
    loop {
        // The lock only guards taking the next batch; a poisoned lock still hands them out.
        let batch = match rx.lock().unwrap_or_else(|p| p.into_inner()).recv() {
            Ok(batch) => batch,
            Err(_) => return,
        };
        let mut error = None;
        for job in &batch {
            if let Err(e) = write(job, umask) {
                error.get_or_insert(e);
            }
        }
        let (lock, cv) = &*shared;
        let mut st = lock.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(e) = error
            && st.error.is_none()
        {
            st.error = Some(e);
        }
        st.in_flight -= batch.len();
        if st.in_flight == 0 {
            cv.notify_all();
        }
    }
}

impl Pool {
    /// Starts `threads` workers.
    pub fn new(threads: usize) -> Pool {
        let (tx, rx) = channel::<Vec<Job>>();
        let rx = Arc::new(Mutex::new(rx));
        let shared: Shared = Arc::default();
        let umask = read_umask();
        let workers = (0..threads)
            .map(|_| {
                let (rx, shared) = (rx.clone(), shared.clone());
                std::thread::spawn(move || work(rx, shared, umask))
            })
            .collect();
        Pool {
            tx: Some(tx),
            shared,
            workers,
            batch: Vec::new(),
            batch_bytes: 0,
            umask,
        }
    }

    /// Queues a file; it is written some time before the next [`Pool::flush`] returns.
    pub fn submit(&mut self, job: Job) -> Result<(), PathError> {
        self.batch_bytes += job.data.len();
        self.batch.push(job);
        if self.batch.len() >= BATCH_FILES || self.batch_bytes >= BATCH_BYTES {
            self.hand_over()?;
        }
        Ok(())
    }

    /// Sends the current batch to the workers (writes it here if they are gone).
    fn hand_over(&mut self) -> Result<(), PathError> {
        self.batch_bytes = 0;
        let batch = std::mem::take(&mut self.batch);
        if batch.is_empty() {
            return Ok(());
        }
        let (lock, _) = &*self.shared;
        lock.lock().unwrap_or_else(|p| p.into_inner()).in_flight += batch.len();
        let unsent = match &self.tx {
            Some(tx) => match tx.send(batch) {
                Ok(()) => return Ok(()),
                Err(e) => e.0,
            },
            None => batch,
        };
        lock.lock().unwrap_or_else(|p| p.into_inner()).in_flight -= unsent.len();
        unsent.iter().try_for_each(|job| write(job, self.umask))
    }

    /// Waits until every queued file is written; returns the first failure.
    pub fn flush(&mut self) -> Result<(), PathError> {
        let handed = self.hand_over();
        let (lock, cv) = &*self.shared;
        let mut st = lock.lock().unwrap_or_else(|p| p.into_inner());
        while st.in_flight > 0 {
            st = cv.wait(st).unwrap_or_else(|p| p.into_inner());
        }
        handed?;
        match st.error.take() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        self.tx = None;
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
    }
}
