//! Stand-alone entry of the runtime's helper (monitor and exec) for tests and benchmarks.
#![forbid(unsafe_code)]

fn main() -> std::process::ExitCode {
    berth_runtime::helper::main(std::env::args_os().skip(1).collect())
}
