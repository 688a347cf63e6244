//! Entry point of the helper process (`berth runtime-helper …`): the hidden subcommands the
//! runtime spawns, `monitor DIR` and `exec DIR REQUEST`. The `berth` binary and the
//! `berth-runtime-helper` test binary both call [`main`].

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;

/// The descriptor number on which the helper reports to its spawner.
pub const REPORT_FD: i32 = 3;

/// Runs the helper subcommand named by `args[0]`.
pub fn main(args: Vec<OsString>) -> ExitCode {
    let mut it = args.into_iter();
    let sub = it.next();
    let dir = it.next().map(PathBuf::from);
    let report = match crate::sys::take_inherited_fd(REPORT_FD) {
        Ok(fd) => fd,
        Err(e) => {
            eprintln!("berth runtime-helper: no report descriptor ({e}); this command is internal");
            return ExitCode::from(125);
        }
    };
    match (sub.as_ref().and_then(|s| s.to_str()), dir) {
        (Some("monitor"), Some(dir)) => crate::monitor::main(&dir, report),
        (Some("exec"), Some(dir)) => {
            let request = it
                .next()
                .and_then(|r| r.into_string().ok())
                .unwrap_or_default();
            crate::process::exec::main(&dir, &request, report)
        }
        _ => {
            eprintln!("berth runtime-helper: usage: monitor DIR | exec DIR REQUEST");
            ExitCode::from(125)
        }
    }
}
