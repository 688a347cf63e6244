//! The runtime's helper entry (monitor and exec) for the engine's integration tests; the
//! `berth` binary runs the same entry behind its hidden `runtime-helper` subcommand, which
//! `Containers::open` passes first, so it is skipped here too.
#![forbid(unsafe_code)]

fn main() -> std::process::ExitCode {
    let mut args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    if args
        .first()
        .is_some_and(|a| a == berth_runtime::HELPER_SUBCOMMAND)
    {
        args.remove(0);
    }
    berth_runtime::helper::main(args)
}
