//! Privileges of the container's processes: capabilities, seccomp, resource limits and
//! `no_new_privs`, applied by the container init (and the exec helper) just before `execve`.

pub mod caps;
pub mod rlimits;
pub mod seccomp;
pub mod seccomp_default;
pub mod syscalls;
