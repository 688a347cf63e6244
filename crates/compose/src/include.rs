//! `include`: other Compose applications loaded as sub-projects, each with its own
//! project directory (relative paths resolve against it) and its own env files, then
//! added to the including file. A resource defined both here and in an include is an
//! error unless both definitions are identical.

use std::path::{Path, PathBuf};

use indexmap::IndexMap;
use serde::Deserialize;
use serde_json::Value;

use crate::assemble::{Loader, Scope, locate_in};
use crate::diagnostic::{Diagnostic, FieldPath};
use crate::discover::{FileRef, absolute};
use crate::model::forms::string_or_list;
use crate::source::Node;

/// One `include` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncludeSpec {
    /// Files of the included application.
    pub path: Vec<String>,
    /// Its project directory (default: the first file's directory).
    pub project_directory: Option<String>,
    /// Its env files (default: `.env` in its project directory).
    pub env_file: Vec<String>,
}

impl<'de> Deserialize<'de> for IncludeSpec {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Long {
            #[serde(deserialize_with = "string_or_list")]
            path: Vec<String>,
            project_directory: Option<String>,
            #[serde(default, deserialize_with = "string_or_list")]
            env_file: Vec<String>,
        }
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = IncludeSpec;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a path or a mapping with path")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<IncludeSpec, E> {
                Ok(IncludeSpec {
                    path: vec![v.to_owned()],
                    project_directory: None,
                    env_file: Vec::new(),
                })
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> Result<IncludeSpec, A::Error> {
                let l = Long::deserialize(serde::de::value::MapAccessDeserializer::new(map))?;
                Ok(IncludeSpec {
                    path: l.path,
                    project_directory: l.project_directory,
                    env_file: l.env_file,
                })
            }
        }
        d.deserialize_any(V)
    }
}

/// What is wrong with an `include`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IncludeError {
    /// An entry without `path`.
    #[error("include entry has no path")]
    NoPath,
    /// A file that (indirectly) includes itself.
    #[error("include cycle: {} includes itself", .0.display())]
    Cycle(PathBuf),
    /// A missing file.
    #[error("included file {} not found", .0.display())]
    NotFound(PathBuf),
    /// The same resource defined differently here and in the included project.
    #[error("{kind}.{name} is defined both here and in the included project")]
    Conflict {
        /// `services`, `networks`, ...
        kind: String,
        /// The resource's name.
        name: String,
    },
}

const RESOURCES: [&str; 6] = [
    "services", "networks", "volumes", "configs", "secrets", "models",
];

/// Loads every entry of the `include` node and adds it to `value`.
pub(crate) fn apply(
    loader: &mut Loader<'_>,
    include: &Node,
    value: &mut Value,
    scope: &Scope,
) -> Result<(), Diagnostic> {
    let root = FieldPath::keys(&["include"]);
    let specs: Vec<IncludeSpec> = crate::decode::from_node_plain(include, &root)?;
    for (i, spec) in specs.iter().enumerate() {
        let here = root.index(i);
        let loc = locate_in(
            include,
            &FieldPath(vec![crate::diagnostic::Segment::Index(i)]),
        );
        let err = |e: IncludeError| Diagnostic::new(e).at(loc.clone()).with_path(here.clone());
        let paths: Vec<PathBuf> = spec
            .path
            .iter()
            .map(|p| absolute(&scope.base_dir, Path::new(p)))
            .collect();
        let Some(first) = paths.first() else {
            return Err(err(IncludeError::NoPath));
        };
        for p in &paths {
            if loader.include_stack.contains(p) {
                return Err(err(IncludeError::Cycle(p.clone())));
            }
            if !p.is_file() {
                return Err(err(IncludeError::NotFound(p.clone())));
            }
        }
        let project_dir = match &spec.project_directory {
            Some(d) => absolute(&scope.base_dir, Path::new(d)),
            None => first
                .parent()
                .map_or_else(|| PathBuf::from("/"), Path::to_path_buf),
        };
        let env_files: Vec<PathBuf> = if spec.env_file.is_empty() {
            let d = project_dir.join(".env");
            if d.is_file() { vec![d] } else { Vec::new() }
        } else {
            spec.env_file
                .iter()
                .map(|f| absolute(&scope.base_dir, Path::new(f)))
                .collect()
        };
        let mut env: IndexMap<String, String> = IndexMap::new();
        for f in &env_files {
            env.extend(crate::env::read(f, loader.process_env)?);
        }
        env.extend(
            loader
                .process_env
                .iter()
                .map(|(k, v)| (k.clone(), v.clone())),
        );
        let sub = Scope {
            env,
            base_dir: project_dir,
        };
        let depth = loader.include_stack.len();
        loader.include_stack.extend(paths.iter().cloned());
        let files: Vec<FileRef> = paths.into_iter().map(FileRef::Path).collect();
        let included = loader.load_set(&files, &sub);
        loader.include_stack.truncate(depth);
        add(value, included?, &err)?;
    }
    Ok(())
}

fn add(
    value: &mut Value,
    included: Value,
    err: &dyn Fn(IncludeError) -> Diagnostic,
) -> Result<(), Diagnostic> {
    let Value::Object(inc) = included else {
        return Ok(());
    };
    let Some(target) = value.as_object_mut() else {
        return Ok(());
    };
    for (kind, items) in inc {
        if !RESOURCES.contains(&kind.as_str()) {
            continue;
        }
        let Value::Object(items) = items else {
            continue;
        };
        let slot = target
            .entry(kind.clone())
            .or_insert_with(|| Value::Object(serde_json::Map::new()));
        let Some(slot) = slot.as_object_mut() else {
            continue;
        };
        for (name, def) in items {
            match slot.get(&name) {
                Some(existing) if *existing != def => {
                    return Err(err(IncludeError::Conflict {
                        kind: kind.clone(),
                        name,
                    }));
                }
                Some(_) => {}
                None => {
                    slot.insert(name, def);
                }
            }
        }
    }
    Ok(())
}
