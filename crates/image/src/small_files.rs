//! Writes small regular files of a layer on a few worker threads.
//!
//! Creating a file costs a synchronous inode allocation that, while a pull saturates the disk
//! with layer data, waits behind that writeback; one thread creating files one after another
//! pays every wait in turn. The unpacker hands fresh small files (already read into memory)
//! to this pool and calls [`Pool::flush`] before anything that could touch a path still in
//! flight (the same path again, hardlinks, whiteouts, removals) and at the end.

use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::PathBuf;
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::SystemTime;

use crate::fsio::{PathError, WithPath};

/// Files up to this size go to the pool.
pub const SMALL_FILE: u64 = 128 * 1024;

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
    tx: Option<Sender<Job>>,
    shared: Shared,
    workers: Vec<JoinHandle<()>>,
}

fn write(job: &Job) -> Result<(), PathError> {
    let p = &job.path;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(p)
        .with_path("creating", p)?;
    std::io::Write::write_all(&mut f, &job.data).with_path("writing", p)?;
    std::os::unix::fs::fchown(&f, Some(job.uid), Some(job.gid))
        .with_path("changing owner of", p)?;
    f.set_permissions(std::fs::Permissions::from_mode(job.mode))
        .with_path("changing mode of", p)?;
    for (name, value) in &job.xattrs {
        xattr::set(p, name, value).with_path("setting xattr on", p)?;
    }
    f.set_modified(job.mtime).with_path("setting mtime of", p)
}

fn work(rx: Arc<Mutex<Receiver<Job>>>, shared: Shared) {
    loop {
        // The lock only guards taking the next job; a poisoned lock still hands out jobs.
        let job = match rx.lock().unwrap_or_else(|p| p.into_inner()).recv() {
            Ok(job) => job,
            Err(_) => return,
        };
        let result = write(&job);
        let (lock, cv) = &*shared;
        let mut st = lock.lock().unwrap_or_else(|p| p.into_inner());
        if let Err(e) = result
            && st.error.is_none()
        {
            st.error = Some(e);
        }
        st.in_flight -= 1;
        cv.notify_all();
    }
}

impl Pool {
    /// Starts `threads` workers.
    pub fn new(threads: usize) -> Pool {
        let (tx, rx) = channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        let shared: Shared = Arc::default();
        let workers = (0..threads)
            .map(|_| {
                let (rx, shared) = (rx.clone(), shared.clone());
                std::thread::spawn(move || work(rx, shared))
            })
            .collect();
        Pool {
            tx: Some(tx),
            shared,
            workers,
        }
    }

    /// Queues a file; writes it directly if the workers are gone.
    pub fn submit(&self, job: Job) -> Result<(), PathError> {
        let (lock, _) = &*self.shared;
        lock.lock().unwrap_or_else(|p| p.into_inner()).in_flight += 1;
        let Some(tx) = &self.tx else {
            return write(&job);
        };
        if let Err(e) = tx.send(job) {
            lock.lock().unwrap_or_else(|p| p.into_inner()).in_flight -= 1;
            return write(&e.0);
        }
        Ok(())
    }

    /// Waits until every queued file is written; returns the first failure.
    pub fn flush(&self) -> Result<(), PathError> {
        let (lock, cv) = &*self.shared;
        let mut st = lock.lock().unwrap_or_else(|p| p.into_inner());
        while st.in_flight > 0 {
            st = cv.wait(st).unwrap_or_else(|p| p.into_inner());
        }
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
