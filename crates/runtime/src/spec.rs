//! Docker's defaults as an OCI spec: the namespaces, mounts, masked and read-only paths,
//! capabilities, seccomp profile and device rules a `docker run` container gets. Callers
//! (the CLI, the engine, the builder) start from [`default_spec`] and change what the user
//! asked for; [`set_capabilities`] keeps the seccomp profile in step with the capabilities.

use oci_spec::runtime::{
    Capabilities, LinuxBuilder, LinuxDeviceCgroup, LinuxDeviceCgroupBuilder, LinuxDeviceType,
    LinuxNamespaceBuilder, LinuxNamespaceType, LinuxResourcesBuilder, Mount, MountBuilder,
    ProcessBuilder, RootBuilder, Spec, SpecBuilder, UserBuilder,
};

/// `PATH` of a container whose image sets none.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Paths hidden from containers.
pub const MASKED_PATHS: &[&str] = &[
    "/proc/asound",
    "/proc/acpi",
    "/proc/interrupts",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

/// Paths containers may read but not write.
pub const READONLY_PATHS: &[&str] = &[
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

fn mount(dest: &str, typ: &str, source: &str, options: &[&str]) -> Mount {
    MountBuilder::default()
        .destination(dest)
        .typ(typ)
        .source(source)
        .options(options.iter().map(|s| s.to_string()).collect::<Vec<_>>())
        .build()
        .expect("every field of a mount is set")
}

/// The mounts of a Docker container.
pub fn default_mounts() -> Vec<Mount> {
    vec![
        mount("/proc", "proc", "proc", &["nosuid", "noexec", "nodev"]),
        mount(
            "/dev",
            "tmpfs",
            "tmpfs",
            &["nosuid", "strictatime", "mode=755", "size=65536k"],
        ),
        mount(
            "/dev/pts",
            "devpts",
            "devpts",
            &[
                "nosuid",
                "noexec",
                "newinstance",
                "ptmxmode=0666",
                "mode=0620",
                "gid=5",
            ],
        ),
        mount(
            "/sys",
            "sysfs",
            "sysfs",
            &["nosuid", "noexec", "nodev", "ro"],
        ),
        mount(
            "/sys/fs/cgroup",
            "cgroup",
            "cgroup",
            &["ro", "nosuid", "noexec", "nodev"],
        ),
        mount(
            "/dev/mqueue",
            "mqueue",
            "mqueue",
            &["nosuid", "noexec", "nodev"],
        ),
        mount(
            "/dev/shm",
            "tmpfs",
            "shm",
            &["nosuid", "noexec", "nodev", "mode=1777", "size=67108864"],
        ),
    ]
}

fn device(
    allow: bool,
    typ: LinuxDeviceType,
    major: Option<i64>,
    minor: Option<i64>,
    access: &str,
) -> LinuxDeviceCgroup {
    let mut b = LinuxDeviceCgroupBuilder::default()
        .allow(allow)
        .access(access);
    if typ != LinuxDeviceType::A {
        b = b.typ(typ);
    }
    if let Some(m) = major {
        b = b.major(m);
    }
    if let Some(m) = minor {
        b = b.minor(m);
    }
    b.build().expect("every field of a device rule is set")
}

/// Device-cgroup rules: deny everything, then allow the standard devices and `mknod`.
pub fn default_device_rules() -> Vec<LinuxDeviceCgroup> {
    use LinuxDeviceType::{A, B, C};
    vec![
        device(false, A, None, None, "rwm"),
        device(true, C, None, None, "m"),
        device(true, B, None, None, "m"),
        device(true, C, Some(1), Some(3), "rwm"),    // null
        device(true, C, Some(1), Some(5), "rwm"),    // zero
        device(true, C, Some(1), Some(7), "rwm"),    // full
        device(true, C, Some(1), Some(8), "rwm"),    // random
        device(true, C, Some(1), Some(9), "rwm"),    // urandom
        device(true, C, Some(5), Some(0), "rwm"),    // tty
        device(true, C, Some(5), Some(1), "rwm"),    // console
        device(true, C, Some(5), Some(2), "rwm"),    // ptmx
        device(true, C, Some(136), None, "rwm"),     // pts/*
        device(true, C, Some(10), Some(200), "rwm"), // net/tun
    ]
}

/// A spec with Docker's defaults running `args` as root in `/`.
pub fn default_spec(args: &[&str]) -> Spec {
    let caps = crate::security::caps::docker_default();
    let process = ProcessBuilder::default()
        .args(args.iter().map(|s| s.to_string()).collect::<Vec<_>>())
        .env(vec![format!("PATH={DEFAULT_PATH}")])
        .cwd("/")
        .user(
            UserBuilder::default()
                .uid(0u32)
                .gid(0u32)
                .build()
                .expect("uid and gid are set"),
        )
        .capabilities(crate::security::caps::to_linux_capabilities(&caps))
        .no_new_privileges(false)
        .build()
        .expect("every field of the process is set");
    let namespaces = [
        LinuxNamespaceType::Pid,
        LinuxNamespaceType::Network,
        LinuxNamespaceType::Ipc,
        LinuxNamespaceType::Uts,
        LinuxNamespaceType::Mount,
        LinuxNamespaceType::Cgroup,
    ]
    .into_iter()
    .map(|t| {
        LinuxNamespaceBuilder::default()
            .typ(t)
            .build()
            .expect("type is set")
    })
    .collect::<Vec<_>>();
    let linux = LinuxBuilder::default()
        .namespaces(namespaces)
        .masked_paths(
            MASKED_PATHS
                .iter()
                .map(|s| s.to_string())
                .collect::<Vec<_>>(),
        )
        .readonly_paths(
            READONLY_PATHS
                .iter()
                .map(|s| s.to_string())
                .collect::<Vec<_>>(),
        )
        .seccomp(crate::security::seccomp_default::docker_default(&caps))
        .resources(
            LinuxResourcesBuilder::default()
                .devices(default_device_rules())
                .build()
                .expect("device rules are set"),
        )
        .build()
        .expect("every field of linux is set");
    SpecBuilder::default()
        .version("1.0.2")
        .root(
            RootBuilder::default()
                .path("rootfs")
                .readonly(false)
                .build()
                .expect("path is set"),
        )
        .process(process)
        .mounts(default_mounts())
        .linux(linux)
        .build()
        .expect("every field of the spec is set")
}

/// Sets the process's capabilities and, when the spec has a seccomp profile, regenerates
/// the default profile for them (Docker allows some system calls per capability).
pub fn set_capabilities(spec: &mut Spec, caps: &Capabilities) {
    if let Some(p) = spec.process_mut() {
        p.set_capabilities(Some(crate::security::caps::to_linux_capabilities(caps)));
    }
    if let Some(linux) = spec.linux_mut()
        && linux.seccomp().is_some()
    {
        linux.set_seccomp(Some(crate::security::seccomp_default::docker_default(caps)));
    }
}

/// Turns the seccomp filter off (`--security-opt seccomp=unconfined`).
pub fn set_seccomp_unconfined(spec: &mut Spec) {
    if let Some(linux) = spec.linux_mut() {
        linux.set_seccomp(None);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_spec_round_trips_as_json() {
        let spec = default_spec(&["sh", "-c", "echo hi"]);
        let json = serde_json::to_string(&spec).unwrap();
        let back: Spec = serde_json::from_str(&json).unwrap();
        assert_eq!(back, spec);
        let p = back.process().as_ref().unwrap();
        assert_eq!(p.args().as_ref().unwrap()[2], "echo hi");
        assert_eq!(back.mounts().as_ref().unwrap().len(), 7);
    }
}
