//! The typed, canonical Compose model. Every type is `Serialize + Deserialize +
//! JsonSchema`: the CLI ships a [`Project`] to the daemon as JSON, and
//! `schemas/compose.schema.json` is generated from these types.

pub mod build;
pub mod deploy;
pub mod develop;
pub mod forms;
pub mod mounts;
pub mod ports;
pub mod project;
pub mod resources;
pub mod service;
pub mod service_refs;
pub mod service_types;
pub mod units;

pub use build::Build;
pub use deploy::{
    Deploy, DeviceRequest, Placement, Resource, Resources, RestartPolicy, UpdateConfig,
};
pub use develop::{Develop, WatchAction, WatchRule};
pub use mounts::{
    BindOptions, ImageOptions, ServiceVolume, TmpfsOptions, VolumeOptions, VolumeType,
};
pub use ports::PortConfig;
pub use project::Project;
pub use resources::{FileObject, Ipam, IpamPool, Model, Network, Volume};
pub use service::Service;
pub use service_refs::{DeviceMapping, EnvFile, Extends, ServiceFileRef};
pub use service_types::{
    BlkioConfig, CredentialSpec, DependsOn, Healthcheck, Logging, Provider, ServiceHook,
    ServiceModel, ServiceNetwork, Ulimit,
};
pub use units::{ByteSize, Duration, SwapLimit};

/// Keys accepted by the structs that also carry `x-*` extensions, read from their
/// JSON schema so they cannot drift from the types.
pub(crate) mod known_keys {
    use std::sync::OnceLock;

    use schemars::JsonSchema;

    /// The property names of `T`'s schema, sorted (callers binary-search them).
    fn keys<T: JsonSchema>() -> Vec<String> {
        let schema = schemars::schema_for!(T);
        let mut keys: Vec<String> = schema
            .get("properties")
            .and_then(|p| p.as_object())
            .map(|o| o.keys().cloned().collect())
            .unwrap_or_default();
        keys.sort();
        keys
    }

    /// Top-level keys (plus `include` and the obsolete `version`, handled before decoding).
    pub fn project() -> &'static [String] {
        static K: OnceLock<Vec<String>> = OnceLock::new();
        K.get_or_init(|| {
            let mut k = keys::<super::Project>();
            k.retain(|k| k != "working_dir");
            k.push("include".to_owned());
            k.push("version".to_owned());
            k.sort();
            k
        })
    }

    /// Service keys.
    pub fn service() -> &'static [String] {
        static K: OnceLock<Vec<String>> = OnceLock::new();
        K.get_or_init(keys::<super::Service>)
    }

    /// Network keys.
    pub fn network() -> &'static [String] {
        static K: OnceLock<Vec<String>> = OnceLock::new();
        K.get_or_init(keys::<super::Network>)
    }

    /// Volume keys.
    pub fn volume() -> &'static [String] {
        static K: OnceLock<Vec<String>> = OnceLock::new();
        K.get_or_init(keys::<super::Volume>)
    }

    /// Config and secret keys.
    pub fn file_object() -> &'static [String] {
        static K: OnceLock<Vec<String>> = OnceLock::new();
        K.get_or_init(keys::<super::FileObject>)
    }
}
