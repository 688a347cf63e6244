//! Harness for berth's end-to-end tests: the `berth` binary under test, a private
//! root dir per test, and helpers to run commands and check their output.
#![forbid(unsafe_code)]

use std::path::PathBuf;

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
