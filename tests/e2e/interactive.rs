//! Standard input without a terminal, as scripts use it: `echo hi | berth run -i busybox
//! cat` prints hi (the client's stdin handed to the container through the daemon and its
//! monitor), without `-i` the container's input is empty, and `exec -i` and `stack run`
//! read the caller's input too.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::run::Env;

/// Runs `berth <args>` with `input` on its standard input: exit code and stdout.
fn with_input(e: &Env, args: &[&str], input: &[u8]) -> (Option<i32>, String, String) {
    let mut cmd: Command = e.env.command();
    let mut child = cmd
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(input).unwrap();
    drop(stdin);
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            panic!("berth {args:?} did not finish");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let out = child.wait_with_output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn run_i_without_a_terminal_feeds_the_callers_input_to_the_container() {
    let e = Env::new("run_i_stdin");
    let (code, out, err) = with_input(&e, &["run", "--rm", "-i", "busybox", "cat"], b"hi\n");
    assert_eq!((code, out.as_str()), (Some(0), "hi\n"), "{err}");
    // The input ends when the caller's does: the container sees end-of-file.
    let (code, out, _) = with_input(
        &e,
        &["run", "--rm", "-i", "busybox", "sh", "-c", "wc -l; exit 3"],
        b"a\nb\nc\n",
    );
    assert_eq!((code, out.trim()), (Some(3), "3"));
    // Without -i the container's input is empty.
    let (code, out, _) = with_input(&e, &["run", "--rm", "busybox", "cat"], b"ignored\n");
    assert_eq!((code, out.as_str()), (Some(0), ""));
    // A container started again later has no input (its client is gone): it still runs.
    let (code, out, _) = with_input(
        &e,
        &[
            "run",
            "-i",
            "--name",
            "again",
            "busybox",
            "sh",
            "-c",
            "cat; echo done",
        ],
        b"first\n",
    );
    assert_eq!((code, out.as_str()), (Some(0), "first\ndone\n"));
    e.ok(&["start", "again"]);
    assert_eq!(e.ok(&["wait", "again"]), "0\n");
    assert_eq!(e.ok(&["logs", "again"]), "first\ndone\ndone\n");
}

#[test]
fn exec_i_and_stack_run_read_the_callers_input() {
    let e = Env::new("exec_i_stdin");
    e.ok(&["run", "-d", "--name", "box", "busybox", "sleep", "600"]);
    let (code, out, err) = with_input(&e, &["exec", "-i", "box", "cat"], b"to exec\n");
    assert_eq!((code, out.as_str()), (Some(0), "to exec\n"), "{err}");

    let dir = e.env.dir().join("app");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("compose.yaml");
    std::fs::write(
        &file,
        "name: sin\nservices:\n  tool:\n    image: busybox\n    command: sleep 600\n",
    )
    .unwrap();
    let f = file.to_str().unwrap();
    let (code, out, err) = with_input(
        &e,
        &[
            "-f", f, "stack", "run", "--rm", "-T", "tool", "tr", "a-z", "A-Z",
        ],
        b"shout\n",
    );
    assert_eq!((code, out.as_str()), (Some(0), "SHOUT\n"), "{err}");
    e.ok(&["-f", f, "up", "-d"]);
    let (code, out, err) = with_input(
        &e,
        &[
            "-f",
            f,
            "stack",
            "exec",
            "-T",
            "tool",
            "sh",
            "-c",
            "read x; echo got $x",
        ],
        b"line\n",
    );
    assert_eq!((code, out.as_str()), (Some(0), "got line\n"), "{err}");
    e.ok(&["-f", f, "down", "-t", "1"]);
}
