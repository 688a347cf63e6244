//! Resource limits (`process.rlimits`, Docker's `--ulimit`). A limit above the current hard
//! limit needs `CAP_SYS_RESOURCE`; without it the limit is clamped and a warning returned
//! instead of failing the container.

use nix::errno::Errno;
use nix::sys::resource::{Resource, getrlimit, setrlimit};
use oci_spec::runtime::{PosixRlimit, PosixRlimitType};

use crate::process::message::SetupError;

fn resource(t: PosixRlimitType) -> Resource {
    use PosixRlimitType as T;
    match t {
        T::RlimitCpu => Resource::RLIMIT_CPU,
        T::RlimitFsize => Resource::RLIMIT_FSIZE,
        T::RlimitData => Resource::RLIMIT_DATA,
        T::RlimitStack => Resource::RLIMIT_STACK,
        T::RlimitCore => Resource::RLIMIT_CORE,
        T::RlimitRss => Resource::RLIMIT_RSS,
        T::RlimitNproc => Resource::RLIMIT_NPROC,
        T::RlimitNofile => Resource::RLIMIT_NOFILE,
        T::RlimitMemlock => Resource::RLIMIT_MEMLOCK,
        T::RlimitAs => Resource::RLIMIT_AS,
        T::RlimitLocks => Resource::RLIMIT_LOCKS,
        T::RlimitSigpending => Resource::RLIMIT_SIGPENDING,
        T::RlimitMsgqueue => Resource::RLIMIT_MSGQUEUE,
        T::RlimitNice => Resource::RLIMIT_NICE,
        T::RlimitRtprio => Resource::RLIMIT_RTPRIO,
        T::RlimitRttime => Resource::RLIMIT_RTTIME,
    }
}

/// What to set when `(soft, hard)` is wanted and the current hard limit is `cur_hard`:
/// unchanged when allowed, else both clamped to `cur_hard`.
pub fn clamp(soft: u64, hard: u64, cur_hard: u64) -> (u64, u64) {
    if hard <= cur_hard {
        (soft.min(hard), hard)
    } else {
        (soft.min(cur_hard), cur_hard)
    }
}

/// Applies the limits; returns warnings for the ones that had to be clamped.
pub fn apply(limits: &[PosixRlimit]) -> Result<Vec<String>, SetupError> {
    let mut warnings = Vec::new();
    for l in limits {
        let res = resource(l.typ());
        let name = format!("{:?}", l.typ())
            .to_uppercase()
            .replace("RLIMIT", "RLIMIT_");
        let err = |errno: Errno| SetupError::Rlimit {
            resource: name.clone(),
            errno: errno.into(),
        };
        match setrlimit(res, l.soft(), l.hard()) {
            Ok(()) => {}
            Err(Errno::EPERM) => {
                let (_, cur_hard) = getrlimit(res).map_err(err)?;
                let (soft, hard) = clamp(l.soft(), l.hard(), cur_hard);
                setrlimit(res, soft, hard).map_err(err)?;
                warnings.push(format!(
                    "{name} {}:{} exceeds the hard limit {cur_hard} and needs CAP_SYS_RESOURCE; clamped to {soft}:{hard}",
                    l.soft(),
                    l.hard()
                ));
            }
            Err(e) => return Err(err(e)),
        }
    }
    Ok(warnings)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clamping_keeps_soft_below_hard() {
        assert_eq!(clamp(100, 200, 1000), (100, 200));
        assert_eq!(clamp(5000, 9000, 1000), (1000, 1000));
        assert_eq!(clamp(10, 9000, 1000), (10, 1000));
    }
}
