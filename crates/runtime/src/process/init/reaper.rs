//! The tiny init (`init: true`, Docker's `--init`): PID 1 forks the user's process, then
//! forwards every signal it receives to it and reaps every zombie of the container (orphans
//! are re-parented to PID 1), exiting with the process's status when it exits.

use nix::sys::signal::{SigSet, SigmaskHow, Signal, kill, sigprocmask};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;

use super::{Prepared, exec};
use crate::process::message::SetupError;
use crate::sys::{Cloned, exit_immediately, fork_process};

/// Forks and execs `p`, then reaps until it exits; returns only if the fork fails.
pub fn fork_exec_and_reap(p: &Prepared, on_exec_error: impl FnOnce(SetupError)) -> SetupError {
    // Blocked before the fork so no signal for the child is lost in between.
    if let Err(e) = sigprocmask(SigmaskHow::SIG_BLOCK, Some(&SigSet::all()), None) {
        return SetupError::syscall("sigprocmask", e);
    }
    match fork_process() {
        Err(e) => SetupError::syscall("fork", e),
        Ok(Cloned::Child) => {
            let _ = sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None);
            let err = exec(p);
            let code = err.exit_code();
            on_exec_error(err);
            exit_immediately(i32::from(code))
        }
        Ok(Cloned::Parent(child)) => {
            // Closes the reaper's copy of the channel to the monitor.
            drop(on_exec_error);
            reap(child)
        }
    }
}

fn reap(child: Pid) -> ! {
    let all = SigSet::all();
    loop {
        let Ok(sig) = all.wait() else { continue };
        if sig != Signal::SIGCHLD {
            let _ = kill(child, sig);
            continue;
        }
        loop {
            match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::Exited(pid, code)) if pid == child => exit_immediately(code),
                Ok(WaitStatus::Signaled(pid, s, _)) if pid == child => {
                    exit_immediately(128 + s as i32)
                }
                Ok(WaitStatus::StillAlive) | Err(_) => break,
                Ok(_) => {}
            }
        }
    }
}
