//! OCI content store, image references, registry client and layer snapshots.
//!
//! The entry point is [`Store`]: open it at a directory, pull or import images into it, and
//! hand [`Image::snapshots`] to the runtime as overlayfs lower directories.
//!
//! Local operations (open, resolve, list, tag, import, write_layer, create_image, gc, save,
//! load) are blocking; `pull` and `push` are async (tokio) and unpack on blocking threads.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use berth_image::registry::{AuthFile, ClientOptions, progress::silent};
//! use berth_image::{Platform, Reference, Store};
//!
//! let store = Store::open(std::path::Path::new("/var/lib/berth/image"))?;
//! let reference = Reference::parse("localhost:5000/app:1")?;
//! let options = ClientOptions {
//!     credentials: AuthFile::lookup(reference.registry()),
//!     ..Default::default()
//! };
//! let image = store.pull(&reference, &Platform::default(), &options, silent()).await?;
//! let lowerdir = image
//!     .snapshots()
//!     .iter()
//!     .map(|p| p.display().to_string())
//!     .collect::<Vec<_>>()
//!     .join(":");
//! # let _ = lowerdir; Ok(()) }
//! ```
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
pub mod small_files;
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
