//! OCI content store, image references, registry client and layer snapshots.
//!
//! The entry point is [`Store`]: open it at a directory, pull or import images into it, and
//! hand [`Image::snapshots`] to the runtime as overlayfs lower directories.
#![forbid(unsafe_code)]

pub mod archive;
pub mod blob;
pub mod config;
pub mod digest;
pub mod fsio;
pub mod gc;
pub mod import;
pub mod manifest;
pub mod metadata;
pub mod platform;
pub mod reference;
pub mod registry;
pub mod snapshot;
pub mod store;
pub mod unpack;

pub use archive::{ArchiveError, SaveFormat};
pub use config::{ContainerConfig, Healthcheck, ImageConfig};
pub use digest::Digest;
pub use gc::{GcReport, PruneReport};
pub use import::{ImportError, ImportOptions, Layer};
pub use platform::Platform;
pub use reference::Reference;
pub use registry::{
    ClientOptions, Credentials, Progress, ProgressFn, PullError, PushError, PushOptions,
};
pub use store::{Image, Store, StoreError};
