//! End-to-end tests: the real `berth` binary against real files, containers and networks.

mod cli;
mod config;
mod daemon;
mod dns;
mod layering;
mod run;
mod stack;
mod supervise;
mod watch;
