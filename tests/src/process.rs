//! Processes the tests look at from outside: liveness, signals, child output.

use std::io::{BufRead, BufReader, Read};
use std::sync::mpsc;
use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// Whether `pid` is a live process: any of its threads is not yet a zombie. (A
/// zombie counts as dead: PID 1 in a container may never reap an orphaned daemon.
/// Threads are checked because after SIGKILL the main thread can be a zombie while
/// the others still hold the process's files, such as its listening socket.)
pub fn alive(pid: u32) -> bool {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return false;
    };
    tasks.flatten().any(|task| {
        std::fs::read_to_string(task.path().join("stat"))
            .ok()
            .and_then(|stat| {
                stat.rsplit_once(')')
                    .map(|(_, rest)| !rest.trim_start().starts_with('Z'))
            })
            .unwrap_or(false)
    })
}

/// Sends `signal` to `pid`, ignoring a process that is already gone.
pub fn signal(pid: u32, signal: Signal) {
    let Ok(raw) = i32::try_from(pid) else { return };
    let _ = kill(Pid::from_raw(raw), signal);
}

/// Waits up to `timeout` for `pid` to die; returns whether it did.
pub fn wait_dead(pid: u32, timeout: Duration) -> bool {
    let start = std::time::Instant::now();
    while alive(pid) {
        if start.elapsed() > timeout {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    true
}

/// Lines of a child's output, read on a thread so the test can wait with a timeout.
pub struct LineReader {
    rx: mpsc::Receiver<String>,
}

impl LineReader {
    /// Starts reading `stream` line by line.
    pub fn new(stream: impl Read + Send + 'static) -> LineReader {
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stream).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        LineReader { rx }
    }

    /// The next line, or `None` at end of output; panics after `timeout`.
    pub fn next(&self, timeout: Duration) -> Option<String> {
        match self.rx.recv_timeout(timeout) {
            Ok(line) => Some(line),
            Err(mpsc::RecvTimeoutError::Disconnected) => None,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                panic!("no output line within {timeout:?}")
            }
        }
    }
}
