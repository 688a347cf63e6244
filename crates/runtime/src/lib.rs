//! berth's container runtime core: namespaces, rootfs, cgroups, security and the
//! per-container monitor. Input is an OCI runtime spec and a rootfs.
