//! The command line itself: help, version, usage errors.

use std::process::Command;

#[test]
fn unknown_flag_is_a_usage_error_with_exit_code_2() {
    let out = Command::new(berth_tests::berth_bin())
        .arg("--no-such-flag")
        .output()
        .expect("run berth");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--no-such-flag"), "stderr: {stderr}");
}
