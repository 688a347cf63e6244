//! Reading a set of stack files into one merged model.
//!
//! Per file: read → parse (located) → interpolate → take `!reset`/`!override` tags →
//! take `include` → decode into the typed model (short syntaxes expanded, located type
//! errors) → make paths absolute → (when needed) to JSON → resolve `extends` → add
//! included projects. Files are then merged in order with the rules of [`crate::merge`],
//! on their JSON form; documents without `extends`, `include` or merge tags are merged in
//! the model instead ([`crate::merge_model`]), which applies the same rules without
//! turning whole files into JSON.
//! The interpolated trees are kept so later phases can point at file:line:column.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use indexmap::IndexMap;
use serde_json::Value;

use crate::diagnostic::{Diagnostic, FieldPath, Location, Segment, Warning};
use crate::discover::FileRef;
use crate::merge::{Tags, apply_resets, merge};
use crate::model::Project;
use crate::source::{Node, Value as NodeValue};

/// What is wrong with a stack file as a whole.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StackError {
    /// The document is a sequence or a scalar.
    #[error("a stack file must be a mapping, found {0}")]
    NotAMapping(&'static str),
    /// The model could not be converted to or from its JSON form (a bug in berth).
    #[error("internal: the model does not round-trip through JSON: {0}")]
    Encode(String),
}

/// The environment and base directory a set of files is read with.
pub(crate) struct Scope {
    /// Interpolation variables (process environment over `.env`).
    pub env: IndexMap<String, String>,
    /// Relative paths resolve against this directory.
    pub base_dir: PathBuf,
}

/// State shared by the whole load: warnings, kept trees, include stack, extends cache.
pub(crate) struct Loader<'a> {
    pub process_env: &'a IndexMap<String, String>,
    pub stdin: Option<&'a str>,
    pub warnings: Vec<Diagnostic>,
    pub trees: Vec<Node>,
    pub include_stack: Vec<PathBuf>,
    extends_cache: HashMap<PathBuf, Value>,
}

impl<'a> Loader<'a> {
    pub fn new(process_env: &'a IndexMap<String, String>, stdin: Option<&'a str>) -> Loader<'a> {
        Loader {
            process_env,
            stdin,
            warnings: Vec::new(),
            trees: Vec::new(),
            include_stack: Vec::new(),
            extends_cache: HashMap::new(),
        }
    }

    fn home(&self) -> Option<&str> {
        self.process_env.get("HOME").map(String::as_str)
    }

    /// Loads and merges `files` in order, as JSON (the form [`crate::include`] adds).
    pub fn load_set(&mut self, files: &[FileRef], scope: &Scope) -> Result<Value, Diagnostic> {
        let docs = self.load_docs(files, scope)?;
        merge_docs(docs)
    }

    /// Loads and merges `files` in order into the model. Documents without merge tags,
    /// `extends` or `include` are merged in the model ([`crate::merge_model`]); from the
    /// first other one on, the merge goes on in JSON.
    pub fn load_project(
        &mut self,
        files: &[FileRef],
        scope: &Scope,
    ) -> Result<Project, Diagnostic> {
        let mut typed: Option<Project> = None;
        let mut json: Option<Value> = None;
        for doc in self.load_docs(files, scope)? {
            match doc {
                Doc::Typed(project, tags) if json.is_none() && tags.is_empty() => {
                    match &mut typed {
                        Some(acc) => crate::merge_model::merge_projects(acc, *project)?,
                        None => typed = Some(*project),
                    }
                }
                doc => {
                    let acc = match json.take() {
                        Some(acc) => acc,
                        None => match typed.take() {
                            Some(p) => to_json(&p)?,
                            None => Value::Object(serde_json::Map::new()),
                        },
                    };
                    json = Some(merge_doc(acc, doc)?);
                }
            }
        }
        match json {
            Some(merged) => serde_json::from_value(merged)
                .map_err(|e| Diagnostic::new(StackError::Encode(e.to_string()))),
            None => Ok(typed.unwrap_or_default()),
        }
    }

    fn load_docs(&mut self, files: &[FileRef], scope: &Scope) -> Result<Vec<Doc>, Diagnostic> {
        let mut docs = Vec::new();
        for parsed in self.parse_all(files) {
            docs.extend(self.load_file(parsed?, scope)?);
        }
        Ok(docs)
    }

    /// Reads and parses `files`, each on its own thread when there are several (parsing is the
    /// largest part of a load, and a base file plus an override is the common case). Results
    /// come back in the order of `files`, so errors are reported as a sequential load would.
    fn parse_all(&self, files: &[FileRef]) -> Vec<Result<(PathBuf, Vec<Node>), Diagnostic>> {
        let parse = |f: &FileRef| {
            let (path, text) = self.read(f)?;
            let docs = crate::source::parse_documents(&text, &path, usize::MAX)?;
            Ok((path, docs))
        };
        if files.len() < 2 {
            return files.iter().map(parse).collect();
        }
        std::thread::scope(|s| {
            let handles: Vec<_> = files[1..]
                .iter()
                .map(|f| s.spawn(move || parse(f)))
                .collect();
            let mut out = vec![parse(&files[0])];
            for h in handles {
                // A panic in the parser is a bug; re-raise it on the caller's thread.
                out.push(h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)));
            }
            out
        })
    }

    fn read(&self, f: &FileRef) -> Result<(PathBuf, String), Diagnostic> {
        match f {
            FileRef::Stdin => Ok((
                PathBuf::from("-"),
                self.stdin.unwrap_or_default().to_owned(),
            )),
            FileRef::Path(p) => std::fs::read_to_string(p)
                .map(|t| (p.clone(), t))
                .map_err(|e| Diagnostic::io(p, &e)),
        }
    }

    /// Parses and interpolates one file; returns the tree (tags and `include`/`version`
    /// taken out), its tags and its `include` node.
    /// Interpolates one document and takes out its tags and its `include`/`version` keys.
    fn prepare(
        &mut self,
        mut node: Node,
        env: &IndexMap<String, String>,
    ) -> Result<(Node, Tags, Option<Node>), Diagnostic> {
        match &node.value {
            NodeValue::Map(_) => {}
            NodeValue::Null => {
                node.value = NodeValue::Map(IndexMap::new());
            }
            _ => {
                return Err(Diagnostic::new(StackError::NotAMapping(node.kind()))
                    .at(Some(node.loc.clone())));
            }
        }
        let lookup = |k: &str| env.get(k).cloned();
        crate::interpolate::interpolate_tree(&mut node, &lookup, &mut self.warnings)?;
        let tags = Tags::take(&mut node);
        let node_kind = node.kind();
        let map = node
            .as_map_mut()
            .ok_or_else(|| Diagnostic::new(StackError::NotAMapping(node_kind)))?;
        if let Some(v) = map.shift_remove("version") {
            self.warnings.push(
                Diagnostic::new(Warning::ObsoleteVersion)
                    .at(Some(v.key_loc))
                    .with_path(FieldPath::keys(&["version"])),
            );
        }
        let include = map.shift_remove("include").map(|e| e.value);
        Ok((node, tags, include))
    }

    /// Decodes a tree into the model and resolves its paths against `base`.
    fn decode(&self, node: &Node, base: &Path) -> Result<Project, Diagnostic> {
        let mut project: Project = crate::decode::from_node(node, &FieldPath::root())?;
        crate::canonical::resolve_paths(&mut project, base, self.home());
        Ok(project)
    }

    /// Interpolates, decodes and resolves the parsed documents of one file.
    fn load_file(
        &mut self,
        (path, docs): (PathBuf, Vec<Node>),
        scope: &Scope,
    ) -> Result<Vec<Doc>, Diagnostic> {
        let mut out = Vec::with_capacity(docs.len());
        for doc in docs {
            let (node, tags, include) = self.prepare(doc, &scope.env)?;
            let project = self.decode(&node, &scope.base_dir)?;
            let extends = project.services.values().any(|s| s.extends.is_some());
            if include.is_none() && !extends {
                self.trees.push(node);
                out.push(Doc::Typed(Box::new(project), tags));
                continue;
            }
            let mut value = to_json(&project)?;
            crate::extends::resolve(self, &mut value, &path, &scope.env, &tags, &node)?;
            if let Some(inc) = include {
                crate::include::apply(self, &inc, &mut value, scope)?;
            }
            self.trees.push(node);
            out.push(Doc::Json(value, tags));
        }
        Ok(out)
    }

    /// Loads `path` for `extends` (paths relative to its own directory), cached.
    pub fn load_for_extends(
        &mut self,
        path: &Path,
        env: &IndexMap<String, String>,
    ) -> Result<Value, Diagnostic> {
        if let Some(v) = self.extends_cache.get(path) {
            return Ok(v.clone());
        }
        let (path, text) = self.read(&FileRef::Path(path.to_path_buf()))?;
        let doc = crate::source::parse(&text, &path)?;
        let (node, _tags, _include) = self.prepare(doc, env)?;
        let base = path
            .parent()
            .map_or_else(|| PathBuf::from("/"), Path::to_path_buf);
        let v = to_json(&self.decode(&node, &base)?)?;
        self.trees.push(node);
        self.extends_cache.insert(path, v.clone());
        Ok(v)
    }

    /// Where `path` is written, searching the most recent file first.
    pub fn locate(&self, path: &FieldPath) -> Option<Location> {
        self.trees.iter().rev().find_map(|t| locate_in(t, path))
    }
}

/// One decoded document, kept in the model until it has to be merged or resolved as JSON.
enum Doc {
    /// As decoded (no `extends`, no `include`).
    Typed(Box<Project>, Tags),
    /// Converted to JSON, `extends` and `include` resolved.
    Json(Value, Tags),
}

/// The JSON form of one file's model, without the per-file noise (empty name, working
/// dir).
fn to_json(project: &Project) -> Result<Value, Diagnostic> {
    let mut v = serde_json::to_value(project)
        .map_err(|e| Diagnostic::new(StackError::Encode(e.to_string())))?;
    if let Some(m) = v.as_object_mut() {
        m.shift_remove("working_dir");
        if m.get("name").and_then(Value::as_str) == Some("") {
            m.shift_remove("name");
        }
    }
    Ok(v)
}

/// Merges documents in order with the rules of [`crate::merge`].
fn merge_docs(docs: Vec<Doc>) -> Result<Value, Diagnostic> {
    let mut acc = Value::Object(serde_json::Map::new());
    for doc in docs {
        acc = merge_doc(acc, doc)?;
    }
    Ok(acc)
}

/// Merges one document into `acc` with the rules of [`crate::merge`].
fn merge_doc(mut acc: Value, doc: Doc) -> Result<Value, Diagnostic> {
    let (value, tags) = match doc {
        Doc::Typed(project, tags) => (to_json(&project)?, tags),
        Doc::Json(value, tags) => (value, tags),
    };
    apply_resets(&mut acc, &tags);
    merge(&mut acc, value, &mut Vec::new(), &tags);
    Ok(acc)
}

/// Finds `path` in one tree: the key's position for mapping entries, the item's for
/// sequence items. A key step into a sequence matches an item equal to the key (so
/// `services.web.depends_on.db` finds `db` in the list form).
pub fn locate_in(tree: &Node, path: &FieldPath) -> Option<Location> {
    let mut cur = tree;
    let mut loc = cur.loc.clone();
    for seg in &path.0 {
        match (seg, &cur.value) {
            (Segment::Key(k), NodeValue::Map(m)) => {
                let e = m.get(k)?;
                loc = e.key_loc.clone();
                cur = &e.value;
            }
            (Segment::Key(k), NodeValue::Seq(items)) => {
                let item = items.iter().find(|i| {
                    i.as_str()
                        .is_some_and(|s| s == k || s.split([':', '=']).next() == Some(k.as_str()))
                })?;
                loc = item.loc.clone();
                cur = item;
            }
            (Segment::Index(i), NodeValue::Seq(items)) => {
                cur = items.get(*i)?;
                loc = cur.loc.clone();
            }
            _ => return None,
        }
    }
    Some(loc)
}
