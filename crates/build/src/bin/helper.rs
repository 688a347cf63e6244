//! The runtime's helper entry (monitor and exec) for the builder's integration tests and
//! benchmarks; the `berth` binary runs the same entry behind its hidden subcommand.
#![forbid(unsafe_code)]

fn main() -> std::process::ExitCode {
    berth_runtime::helper::main(std::env::args_os().skip(1).collect())
}
