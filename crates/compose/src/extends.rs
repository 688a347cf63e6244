//! `extends`: a service starts from another service (same file, or another file whose
//! relative paths resolve against its own directory), then its own fields are merged on
//! top with the usual merge rules. Chains are followed; cycles are errors.

use std::path::{Path, PathBuf};

use indexmap::IndexMap;
use serde_json::Value;

use crate::assemble::{Loader, locate_in};
use crate::diagnostic::{Diagnostic, FieldPath};
use crate::merge::{Tags, merge};
use crate::source::Node;

/// What is wrong with an `extends`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExtendsError {
    /// The extended service does not exist in that file.
    #[error("cannot extend service `{service}`: no such service in {}", file.display())]
    NoSuchService {
        /// The service named by `extends`.
        service: String,
        /// The file searched.
        file: PathBuf,
    },
    /// Services extending each other in a loop (`a -> b -> a`).
    #[error("extends cycle: {0}")]
    Cycle(String),
}

/// Resolves every `extends` of the services in `value` (one file's content).
pub(crate) fn resolve(
    loader: &mut Loader<'_>,
    value: &mut Value,
    file: &Path,
    env: &IndexMap<String, String>,
    tags: &Tags,
    tree: &Node,
) -> Result<(), Diagnostic> {
    let Some(services) = value.get("services").and_then(Value::as_object) else {
        return Ok(());
    };
    let names: Vec<String> = services
        .iter()
        .filter(|(_, s)| s.get("extends").is_some())
        .map(|(k, _)| k.clone())
        .collect();
    if names.is_empty() {
        return Ok(());
    }
    let snapshot = value.clone();
    for name in names {
        let mut stack = Vec::new();
        let resolved = resolve_service(
            loader,
            &snapshot,
            file,
            &name,
            env,
            Some((tags, tree)),
            &mut stack,
        )?;
        if let Some(s) = value.get_mut("services").and_then(Value::as_object_mut) {
            s.insert(name, resolved);
        }
    }
    Ok(())
}

fn resolve_service(
    loader: &mut Loader<'_>,
    file_value: &Value,
    file: &Path,
    name: &str,
    env: &IndexMap<String, String>,
    local: Option<(&Tags, &Node)>,
    stack: &mut Vec<(PathBuf, String)>,
) -> Result<Value, Diagnostic> {
    let Some(svc) = file_value.get("services").and_then(|s| s.get(name)) else {
        let (from_file, from_svc) = stack.last().cloned().unwrap_or_default();
        let path = FieldPath::keys(&["services", &from_svc, "extends"]);
        let loc = local.and_then(|(_, t)| locate_in(t, &path));
        return Err(Diagnostic::new(ExtendsError::NoSuchService {
            service: name.to_owned(),
            file: file.to_path_buf(),
        })
        .at(loc.or_else(|| loader.locate(&path)))
        .with_path(if from_file.as_os_str().is_empty() {
            FieldPath::root()
        } else {
            path
        }));
    };
    let Some(ext) = svc.get("extends") else {
        return Ok(svc.clone());
    };
    let key = (file.to_path_buf(), name.to_owned());
    let ext_path = FieldPath::keys(&["services", name, "extends"]);
    if stack.contains(&key) {
        let mut chain: Vec<&str> = stack.iter().map(|(_, s)| s.as_str()).collect();
        chain.push(name);
        return Err(Diagnostic::new(ExtendsError::Cycle(chain.join(" -> ")))
            .at(local.and_then(|(_, t)| locate_in(t, &ext_path)))
            .with_path(ext_path));
    }
    stack.push(key);
    let target = ext
        .get("service")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let base = match ext.get("file").and_then(Value::as_str) {
        Some(f) => {
            let f = PathBuf::from(f);
            let other = loader.load_for_extends(&f, env).map_err(|e| {
                if e.location.is_none() {
                    e.at(local.and_then(|(_, t)| locate_in(t, &ext_path)))
                        .with_path(ext_path.clone())
                } else {
                    e
                }
            })?;
            resolve_service(loader, &other, &f, &target, env, None, stack)?
        }
        None => resolve_service(loader, file_value, file, &target, env, local, stack)?,
    };
    stack.pop();
    let mut merged = base;
    let mut own = svc.clone();
    if let Some(m) = own.as_object_mut() {
        m.shift_remove("extends");
    }
    let empty = Tags::default();
    let tags = local.map_or(&empty, |(t, _)| t);
    // `!reset` in the extending service removes what it would inherit.
    let prefix = format!("services.{name}.");
    for reset in tags.resets.iter().filter_map(|r| r.strip_prefix(&prefix)) {
        let segs: Vec<&str> = reset.split('.').collect();
        if let Some((last, parents)) = segs.split_last() {
            let mut cur = Some(&mut merged);
            for seg in parents {
                cur = cur.and_then(|c| c.get_mut(*seg));
            }
            if let Some(m) = cur.and_then(Value::as_object_mut) {
                m.shift_remove(*last);
            }
        }
    }
    merge(
        &mut merged,
        own,
        &mut vec!["services".to_owned(), name.to_owned()],
        tags,
    );
    if let Some(m) = merged.as_object_mut() {
        m.shift_remove("extends");
    }
    Ok(merged)
}
