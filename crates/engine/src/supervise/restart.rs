//! Whether and when an exited container is started again: the restart policy's decision and
//! Docker's back-off (100 ms, doubling at every restart, at most one minute; back to 100 ms
//! once a run lasted 10 seconds). Pure functions; the watcher acts on them.

use std::time::Duration;

use crate::containers::RestartPolicy;

/// The first delay before a restart.
pub const INITIAL_DELAY: Duration = Duration::from_millis(100);
/// The longest delay between restarts.
pub const MAX_DELAY: Duration = Duration::from_secs(60);
/// A run at least this long resets the back-off.
pub const RESET_AFTER: Duration = Duration::from_secs(10);

/// Why the supervisor is looking at an exited container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Occasion {
    /// The process just exited while the supervisor watched it (or while no daemon ran,
    /// noticed on re-adoption).
    Exit,
    /// The daemon (re)started and found the container exited; Docker's `always` brings a
    /// container back then even if the user had stopped it.
    DaemonStart,
}

/// What the supervisor knows about an exit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExitFacts {
    /// The exit code.
    pub code: i32,
    /// Restarts already made by the policy.
    pub restarts: u32,
    /// Whether `stop` or `kill` ended it.
    pub stopped_by_user: bool,
}

/// Whether `policy` starts the container again.
pub fn should_restart(policy: RestartPolicy, facts: ExitFacts, occasion: Occasion) -> bool {
    match policy {
        RestartPolicy::No => false,
        RestartPolicy::Always => occasion == Occasion::DaemonStart || !facts.stopped_by_user,
        RestartPolicy::UnlessStopped => !facts.stopped_by_user,
        RestartPolicy::OnFailure { .. } => {
            !facts.stopped_by_user && policy.should_restart(facts.code, facts.restarts)
        }
    }
}

/// The back-off of one container: the delay before its next restart.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Backoff {
    last: Option<Duration>,
}

impl Backoff {
    /// The delay before restarting a container whose last run lasted `ran`.
    pub fn next(&mut self, ran: Duration) -> Duration {
        let delay = match self.last {
            Some(last) if ran < RESET_AFTER => (last * 2).min(MAX_DELAY),
            _ => INITIAL_DELAY,
        };
        self.last = Some(delay);
        delay
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(code: i32, restarts: u32, stopped_by_user: bool) -> ExitFacts {
        ExitFacts {
            code,
            restarts,
            stopped_by_user,
        }
    }

    #[test]
    fn the_back_off_doubles_caps_at_a_minute_and_resets_after_ten_seconds() {
        let mut b = Backoff::default();
        let short = Duration::from_millis(50);
        let delays: Vec<u128> = (0..12).map(|_| b.next(short).as_millis()).collect();
        assert_eq!(
            delays,
            [
                100, 200, 400, 800, 1600, 3200, 6400, 12800, 25600, 51200, 60000, 60000
            ]
        );
        assert_eq!(b.next(Duration::from_secs(10)), INITIAL_DELAY);
        assert_eq!(b.next(short), Duration::from_millis(200));
    }

    #[test]
    fn a_user_stop_prevents_restarts_except_always_on_daemon_start() {
        let stopped = facts(137, 0, true);
        for p in [
            RestartPolicy::Always,
            RestartPolicy::UnlessStopped,
            RestartPolicy::OnFailure { max_retries: None },
        ] {
            assert!(!should_restart(p, stopped, Occasion::Exit), "{p:?}");
        }
        assert!(should_restart(
            RestartPolicy::Always,
            stopped,
            Occasion::DaemonStart
        ));
        assert!(!should_restart(
            RestartPolicy::UnlessStopped,
            stopped,
            Occasion::DaemonStart
        ));
    }

    #[test]
    fn policies_decide_on_exit_codes_and_counts() {
        let on_failure_2 = RestartPolicy::OnFailure {
            max_retries: Some(2),
        };
        assert!(should_restart(
            on_failure_2,
            facts(1, 1, false),
            Occasion::Exit
        ));
        assert!(!should_restart(
            on_failure_2,
            facts(1, 2, false),
            Occasion::Exit
        ));
        assert!(!should_restart(
            on_failure_2,
            facts(0, 0, false),
            Occasion::Exit
        ));
        assert!(should_restart(
            RestartPolicy::Always,
            facts(0, 99, false),
            Occasion::Exit
        ));
        assert!(!should_restart(
            RestartPolicy::No,
            facts(1, 0, false),
            Occasion::DaemonStart
        ));
    }
}
