//! The project: the whole, resolved stack.

use std::path::PathBuf;

use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::resources::{FileObject, Model, Network, Volume};
use super::service::Service;

/// A loaded, canonical Compose project.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Project {
    /// Project name (normalized: lower case, `[a-z0-9_-]`).
    #[serde(default)]
    pub name: String,
    /// The project directory (relative paths in the files resolve against it). Not part
    /// of Compose's output; see [`Project::to_compose_json`].
    #[serde(default)]
    pub working_dir: PathBuf,
    /// Enabled services, sorted by name.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub services: IndexMap<String, Service>,
    /// Networks used by the enabled services.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub networks: IndexMap<String, Network>,
    /// Volumes used by the enabled services.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub volumes: IndexMap<String, Volume>,
    /// Secrets used by the enabled services.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub secrets: IndexMap<String, FileObject>,
    /// Configs used by the enabled services.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub configs: IndexMap<String, FileObject>,
    /// AI models.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub models: IndexMap<String, Model>,
    /// Services switched off by profiles (not serialized).
    #[serde(skip)]
    pub disabled_services: IndexMap<String, Service>,
    /// Top-level `x-*` extension fields.
    #[serde(flatten, default, skip_serializing_if = "IndexMap::is_empty")]
    pub extensions: IndexMap<String, serde_json::Value>,
}

impl Project {
    /// The project as `docker compose config --format json` shows it: no `working_dir`,
    /// and every `$` in a string value written `$$`, so the output loads back unchanged.
    pub fn to_compose_json(&self) -> serde_json::Value {
        let mut v = serde_json::to_value(self).unwrap_or_default();
        if let Some(m) = v.as_object_mut() {
            m.shift_remove("working_dir");
        }
        escape_dollars(&mut v);
        v
    }

    /// Names of every profile mentioned by any service (enabled or not), sorted.
    pub fn all_profiles(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .services
            .values()
            .chain(self.disabled_services.values())
            .flat_map(|s| s.profiles.iter().cloned())
            .collect();
        v.sort();
        v.dedup();
        v
    }
}

fn escape_dollars(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::String(s) if s.contains('$') => *s = s.replace('$', "$$"),
        serde_json::Value::Array(a) => a.iter_mut().for_each(escape_dollars),
        serde_json::Value::Object(m) => m.values_mut().for_each(escape_dollars),
        _ => {}
    }
}
