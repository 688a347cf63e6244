//! Harness for berth's end-to-end tests: the `berth` binary under test, a private
//! root dir per test, and helpers to run commands and check their output.
#![forbid(unsafe_code)]

pub mod env;
pub mod http;
pub mod leftovers;
pub mod openapi;
pub mod process;

use std::path::PathBuf;
use std::time::{Duration, Instant};

pub use env::TestEnv;

/// The `berth` binary under test: `BERTH_BIN`, else the one cargo built next to
/// this test binary.
pub fn berth_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("BERTH_BIN") {
        return PathBuf::from(p);
    }
    let mut dir = std::env::current_exe().expect("the test binary knows its own path");
    dir.pop(); // deps/
    if dir.ends_with("deps") {
        dir.pop();
    }
    dir.join("berth")
}

/// Panics with a clear message unless the test runs as root.
pub fn require_root(why: &str) {
    if !nix::unistd::Uid::effective().is_root() {
        panic!("this test must run as root: {why}");
    }
}

/// Polls `check` until it returns `Some`, or panics naming `what` after `timeout`.
pub fn eventually<T>(what: &str, timeout: Duration, mut check: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = check() {
            return v;
        }
        if start.elapsed() > timeout {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}
