//! Diagnostics: what went wrong, where (file:line:column) and at which field path.
//!
//! Every phase of the loader reports problems as [`Diagnostic`]s; [`load`](crate::load)
//! returns all of them as [`Diagnostics`]. The CLI renders them with a source snippet.

use std::fmt;
use std::path::Path;
use std::sync::Arc;

/// A position in a stack file (1-based line and column).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Location {
    /// The file, as given or discovered (absolute when discovered).
    pub file: Arc<Path>,
    /// 1-based line.
    pub line: u32,
    /// 1-based column.
    pub column: u32,
}

impl Location {
    /// A location for problems that concern a whole file (line 1, column 1).
    pub fn file_start(file: &Path) -> Location {
        Location {
            file: Arc::from(file),
            line: 1,
            column: 1,
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file.display(), self.line, self.column)
    }
}

/// One step of a [`FieldPath`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Segment {
    /// A mapping key.
    Key(String),
    /// A sequence index (0-based).
    Index(usize),
}

/// Where a value sits in the document, e.g. `services.web.ports[1]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct FieldPath(pub Vec<Segment>);

impl FieldPath {
    /// The empty path (the document root).
    pub fn root() -> FieldPath {
        FieldPath(Vec::new())
    }

    /// Builds a path from dotted keys, e.g. `FieldPath::keys(&["services", "web"])`.
    pub fn keys(keys: &[&str]) -> FieldPath {
        FieldPath(keys.iter().map(|k| Segment::Key((*k).to_owned())).collect())
    }

    /// This path extended by a key.
    pub fn key(&self, key: &str) -> FieldPath {
        let mut p = self.clone();
        p.0.push(Segment::Key(key.to_owned()));
        p
    }

    /// This path extended by an index.
    pub fn index(&self, i: usize) -> FieldPath {
        let mut p = self.clone();
        p.0.push(Segment::Index(i));
        p
    }

    /// True for the document root.
    pub fn is_root(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for seg in &self.0 {
            match seg {
                Segment::Key(k) => {
                    if !first {
                        f.write_str(".")?;
                    }
                    f.write_str(k)?;
                }
                Segment::Index(i) => write!(f, "[{i}]")?,
            }
            first = false;
        }
        Ok(())
    }
}

/// What went wrong, by phase: each loader module has its own error enum.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Kind {
    /// The YAML itself (syntax, anchors, keys).
    #[error(transparent)]
    Yaml(#[from] crate::source::YamlError),
    /// A `.env` / env file.
    #[error(transparent)]
    Env(#[from] crate::env::EnvError),
    /// Variable interpolation.
    #[error(transparent)]
    Interpolate(#[from] crate::interpolate::InterpolateError),
    /// A value that does not fit the model (wrong type, unknown key, bad syntax).
    #[error(transparent)]
    Decode(#[from] crate::decode::DecodeError),
    /// Finding files or naming the project.
    #[error(transparent)]
    Discover(#[from] crate::discover::DiscoverError),
    /// The shape of a stack file.
    #[error(transparent)]
    Stack(#[from] crate::assemble::StackError),
    /// `extends`.
    #[error(transparent)]
    Extends(#[from] crate::extends::ExtendsError),
    /// `include`.
    #[error(transparent)]
    Include(#[from] crate::include::IncludeError),
    /// Selecting services.
    #[error(transparent)]
    Profile(#[from] crate::profiles::ProfileError),
    /// Cross-references between services and resources.
    #[error(transparent)]
    Validate(#[from] crate::validate::ValidateError),
    /// Reading a file.
    #[error("cannot read {path}: {message}")]
    Io {
        /// The file.
        path: std::path::PathBuf,
        /// The operating system's message.
        message: String,
    },
    /// Something worth knowing that does not stop the load.
    #[error(transparent)]
    Warning(#[from] Warning),
}

/// Warnings (the load goes on).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Warning {
    /// A variable used without default is not set.
    #[error("variable `{0}` is not set, using an empty string")]
    UnsetVariable(String),
    /// The top-level `version` key.
    #[error("the top-level `version` is obsolete and ignored")]
    ObsoleteVersion,
}

/// One problem found while loading a stack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// What is wrong, typed (boxed: diagnostics travel in `Result`s).
    pub kind: Box<Kind>,
    /// Where the problem is, when it can be traced to a file position.
    pub location: Option<Location>,
    /// The field concerned (empty for file-level problems).
    pub path: FieldPath,
    /// `kind` as text: lower case, no trailing period.
    pub message: String,
    /// What would have been accepted, if that can be said briefly.
    pub expected: Option<String>,
}

impl Diagnostic {
    /// A diagnostic of the given kind, without position.
    pub fn new(kind: impl Into<Kind>) -> Diagnostic {
        let kind = kind.into();
        Diagnostic {
            message: kind.to_string(),
            kind: Box::new(kind),
            location: None,
            path: FieldPath::root(),
            expected: None,
        }
    }

    /// Sets the location.
    pub fn at(mut self, location: Option<Location>) -> Diagnostic {
        self.location = location;
        self
    }

    /// Sets the field path.
    pub fn with_path(mut self, path: FieldPath) -> Diagnostic {
        self.path = path;
        self
    }

    /// Sets what was expected.
    pub fn expected(mut self, expected: impl Into<String>) -> Diagnostic {
        self.expected = Some(expected.into());
        self
    }

    /// A diagnostic about an I/O failure on `path`.
    pub fn io(path: &Path, err: &std::io::Error) -> Diagnostic {
        Diagnostic::new(Kind::Io {
            path: path.to_path_buf(),
            message: err.to_string(),
        })
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(loc) = &self.location {
            write!(f, "{loc}: ")?;
        }
        if !self.path.is_root() {
            write!(f, "{}: ", self.path)?;
        }
        f.write_str(&self.message)?;
        if let Some(e) = &self.expected {
            write!(f, " (expected {e})")?;
        }
        Ok(())
    }
}

/// Every problem found by one [`load`](crate::load); never empty when returned as an error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl Diagnostics {
    /// Wraps a single diagnostic.
    pub fn one(d: Diagnostic) -> Diagnostics {
        Diagnostics(vec![d])
    }

    /// The diagnostics, in the order found.
    pub fn iter(&self) -> impl Iterator<Item = &Diagnostic> {
        self.0.iter()
    }
}

impl From<Diagnostic> for Diagnostics {
    fn from(d: Diagnostic) -> Self {
        Diagnostics::one(d)
    }
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{d}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Diagnostics {}

/// The closest candidate to `word` (edit distance at most a third of its length, min 2).
pub fn did_you_mean<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let limit = (word.chars().count() / 3).max(2);
    candidates
        .into_iter()
        .map(|c| (levenshtein(word, c), c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, ca) in a.chars().enumerate() {
        cur[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_path_renders_keys_and_indices() {
        let p = FieldPath::keys(&["services", "web", "ports"]).index(1);
        assert_eq!(p.to_string(), "services.web.ports[1]");
    }

    #[test]
    fn suggestion_finds_near_miss_only() {
        let c = ["image", "ports", "volumes"];
        assert_eq!(did_you_mean("imgae", c), Some("image"));
        assert_eq!(did_you_mean("prots", c), Some("ports"));
        assert_eq!(did_you_mean("zzzzzzzz", c), None);
    }
}
