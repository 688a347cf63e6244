//! End-to-end tests: the real `berth` binary against real files, containers and networks.

mod build;
mod cli;
mod coexist;
mod commit;
mod config;
mod daemon;
mod dns;
mod interactive;
mod layering;
mod remove_race;
mod run;
mod stack;
mod stack_commands;
mod stack_crash;
mod stack_update;
mod supervise;
mod watch;
mod watch_fallback;
