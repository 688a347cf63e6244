//! A client for the OCI Distribution API (and Docker Registry v2), with anonymous, basic and
//! bearer-token authentication, plus pull and push into/from the [`crate::Store`].

pub mod auth;
pub mod client;
pub mod credential_helper;
pub mod credentials;
pub mod progress;
pub mod pull;
pub mod push;

pub use auth::Credentials;
pub use client::{Client, ClientOptions, RegistryError};
pub use credentials::AuthFile;
pub use progress::{Progress, ProgressFn};
pub use pull::PullError;
pub use push::{PushError, PushOptions};
