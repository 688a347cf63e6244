//! The way out for `RUN --network=default`.
//!
//! The builder depends only on the image store and the runtime core, so it does not make
//! bridges itself: whoever runs a build (the CLI, the engine) may pass a [`RunNetwork`]
//! that connects a `RUN` container's network namespace to a network with outbound access
//! (the engine's `build_network` module does it with a build-only bridge, a veth
//! pair and masquerading) and disconnects it afterwards. Without one, `default` gets
//! loopback only, like `none`. `host` always joins the host's network namespace.

use std::path::Path;

/// An error of a [`RunNetwork`].
pub type RunNetworkError = Box<dyn std::error::Error + Send + Sync>;

/// Connects `RUN` containers to the build's network.
pub trait RunNetwork: Send + Sync {
    /// Connects the network namespace at `netns` (a `RUN` container's, created but not yet
    /// started) under the name `id`. Called from several threads when stages run in parallel.
    fn connect(&self, id: &str, netns: &Path) -> Result<(), RunNetworkError>;

    /// Undoes [`RunNetwork::connect`] once the command has ended (also when it failed).
    fn disconnect(&self, id: &str) -> Result<(), RunNetworkError>;
}
