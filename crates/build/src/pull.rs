//! Pulling a missing (or `--pull`) base image: the store's async pull on a small runtime.

use berth_image::registry::progress::silent;
use berth_image::{ClientOptions, Image, Platform, PullError, Reference, Store};

/// Why a pull could not run or failed.
#[derive(Debug, thiserror::Error)]
pub enum PullFailed {
    /// The async runtime could not start.
    #[error("starting the pull runtime")]
    Runtime(#[source] std::io::Error),
    /// The registry pull failed.
    #[error(transparent)]
    Pull(Box<PullError>),
}

/// Pulls `reference` for the host platform with anonymous credentials.
pub fn pull(store: &Store, reference: &Reference) -> Result<Image, PullFailed> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(PullFailed::Runtime)?;
    let platform = Platform::default();
    let options = ClientOptions::default();
    rt.block_on(store.pull(reference, &platform, &options, silent()))
        .map_err(|e| PullFailed::Pull(Box::new(e)))
}
