//! Errors of [`Net`](super::Net).

use crate::coexist::CoexistError;
use crate::ipam::IpamError;
use crate::link::LinkError;
use crate::nat::NatError;
use crate::netns::NetnsError;
use crate::ports::PortError;
use crate::state::StateError;

use super::config::MAX_PREFIX;

/// Errors of [`Net`](super::Net).
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    /// Reading or writing the state failed.
    #[error(transparent)]
    State(#[from] StateError),
    /// Address management refused.
    #[error(transparent)]
    Ipam(#[from] IpamError),
    /// A netlink operation failed.
    #[error(transparent)]
    Link(#[from] LinkError),
    /// Docker's DOCKER-USER chain could not be adjusted.
    #[error(transparent)]
    Coexist(#[from] CoexistError),
    /// Entering a container's namespace failed.
    #[error(transparent)]
    Netns(#[from] NetnsError),
    /// The firewall could not be updated.
    #[error(transparent)]
    Nat(#[from] NatError),
    /// A port mapping cannot be honoured.
    #[error(transparent)]
    Port(#[from] PortError),
    /// The link-name prefix is unusable.
    #[error(
        "link prefix {0:?} must start with \"berth\", be at most {MAX_PREFIX} characters and use only ASCII letters and digits"
    )]
    InvalidPrefix(String),
    /// The address pool cannot be cut into subnets of the configured size.
    #[error(
        "address pool {pool} cannot be split into /{prefix} subnets (need a prefix length between the pool's and 30)"
    )]
    InvalidPool {
        /// The pool.
        pool: String,
        /// The configured subnet prefix length.
        prefix: u8,
    },
    /// The network name is unusable.
    #[error(
        "invalid network name {0:?}: use letters, digits, '_', '-' and '.', starting with a letter or digit"
    )]
    InvalidName(String),
    /// A network of that name exists.
    #[error("network {0} already exists")]
    NetworkExists(String),
    /// No network of that name.
    #[error("network {0} not found")]
    NoSuchNetwork(String),
    /// The network still has containers.
    #[error("network {name} has containers attached: {}", .containers.join(", "))]
    NetworkInUse {
        /// The network.
        name: String,
        /// The attached containers.
        containers: Vec<String>,
    },
    /// The container is attached already.
    #[error("container {container} is already attached to network {network}")]
    AlreadyAttached {
        /// The container.
        container: String,
        /// The network.
        network: String,
    },
    /// The container is not attached.
    #[error("container {container} is not attached to network {network}")]
    NotAttached {
        /// The container.
        container: String,
        /// The network.
        network: String,
    },
    /// The interface name is unusable inside the container.
    #[error("invalid interface name {0:?}")]
    InvalidIfname(String),
    /// The gateway lies outside the subnet.
    #[error("gateway {gateway} is not in subnet {subnet}")]
    GatewayOutsideSubnet {
        /// The gateway.
        gateway: String,
        /// The subnet.
        subnet: String,
    },
    /// IPv6 settings were given without `enable_ipv6`, or an IPv6 address on an IPv4-only network.
    #[error("network {0} does not have IPv6 enabled")]
    NoIpv6(String),
    /// The container has no attachment on a network with a way out, so nothing can be published.
    #[error("container {0} is not attached to any non-internal network; cannot publish ports")]
    NothingToPublishOn(String),
    /// No free link name is left for the prefix.
    #[error("no free link name left for prefix {0}")]
    NamesExhausted(String),
    /// Reading random bytes for an id failed.
    #[error("read /dev/urandom")]
    Random(#[source] std::io::Error),
    /// An operation failed and undoing its partial work failed too.
    #[error("{cause} (and cleaning up failed: {cleanup})")]
    CleanupFailed {
        /// The original failure.
        #[source]
        cause: Box<NetError>,
        /// The failure of the undo.
        cleanup: Box<NetError>,
    },
}

/// Joins an operation's error with the error of its undo.
pub(super) fn with_cleanup(cause: NetError, cleanup: Result<(), NetError>) -> NetError {
    match cleanup {
        Ok(()) => cause,
        Err(c) => NetError::CleanupFailed {
            cause: Box::new(cause),
            cleanup: Box::new(c),
        },
    }
}
