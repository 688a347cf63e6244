//! `rm -f` of a container that just died (killed from the host, or `stop -t 0`) while the
//! daemon's supervisor writes into its directory (exit handled, restart under `always`,
//! health results every 20 ms): the removal succeeds every time and leaves no directory
//! behind. Without the rename-then-empty removal this failed within 30 rounds with
//! "Directory not empty".

use berth_tests::process;
use nix::sys::signal::Signal;

use crate::run::Env;

#[test]
fn rm_f_of_a_container_that_just_died_under_a_busy_supervisor_always_succeeds() {
    let e = Env::new("remove_race");
    for i in 0..30 {
        let name = format!("race{i}");
        let id = e
            .ok(&[
                "run",
                "-d",
                "--name",
                &name,
                "--restart",
                "always",
                "--health-cmd",
                "true",
                "--health-interval",
                "20ms",
                "busybox",
                "sleep",
                "1000",
            ])
            .trim()
            .to_owned();
        let pid = e.inspect(&name)["State"]["Pid"].as_u64().unwrap();
        // Crash it (from the host) or stop it, and remove it at once, while the supervisor
        // records the exit, restarts it, writes health results.
        if i % 2 == 0 {
            process::signal(pid as u32, Signal::SIGKILL);
        } else {
            let (code, _, err) = e.run(&["stop", "-t", "0", &name]);
            assert_eq!(code, Some(0), "stop {name}: {err}");
        }
        let (code, _, err) = e.run(&["rm", "-f", &name]);
        assert_eq!(code, Some(0), "rm -f {name}: {err}");
        assert!(!e.env.root.join("containers").join(&id).exists());
    }
    assert_eq!(e.ok(&["ps", "-aq"]), "");
    let left: Vec<String> = std::fs::read_dir(e.env.root.join("containers"))
        .unwrap()
        .flatten()
        .map(|d| d.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(left, Vec::<String>::new());
}
