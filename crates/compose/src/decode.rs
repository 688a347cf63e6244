//! A serde `Deserializer` over the located tree, so type errors carry file:line:column
//! and the field path (`services.web.ports[1]`).
//!
//! Scalars are typed on demand, as Compose does after interpolation: a field that wants
//! a number parses the scalar's text (quoted or not), a field that wants a string takes
//! any scalar's text, and untyped values (extensions, driver options) resolve plain
//! scalars to YAML 1.2 core types (null, bool, int, float, string).
//!
//! Unknown keys: structs without extension fields use `deny_unknown_fields`, and serde
//! hands us the list of fields, so the error can suggest the nearest one. Structs with
//! `x-*` extensions (project, services, networks, volumes, configs, secrets) are checked
//! here by path, against the keys their JSON schema declares.

use std::fmt;

use serde::de::{
    self, DeserializeSeed, Deserializer, IntoDeserializer, MapAccess, SeqAccess, Visitor,
};

use crate::diagnostic::{Diagnostic, FieldPath, Location, Segment, did_you_mean};
use crate::scalar::{parse_bool, parse_float, parse_int};
use crate::source::{Entry, Node, Value};

/// A value that does not fit the model.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// A key the model does not have, with the nearest known key.
    #[error("unknown key `{key}`{}", .suggestion.as_ref().map(|s| format!(" (did you mean `{s}`?)")).unwrap_or_default())]
    UnknownKey {
        /// The key as written.
        key: String,
        /// The closest known key, if one is close.
        suggestion: Option<String>,
    },
    /// A value of the wrong kind (a list where a string goes, ...).
    #[error("wrong type: found {0}")]
    WrongType(String),
    /// A value of the right kind but not acceptable.
    #[error("invalid value: {0}")]
    InvalidValue(String),
    /// Text that should be a number.
    #[error("`{0}` is not a valid number")]
    NotANumber(String),
    /// A number outside the field's range.
    #[error("{0} is out of range")]
    OutOfRange(i128),
    /// Text that should be a boolean.
    #[error("`{0}` is not a boolean")]
    NotABoolean(String),
    /// A value outside a fixed set.
    #[error("unknown value `{0}`")]
    UnknownValue(String),
    /// A required key that is absent.
    #[error("missing required key `{0}`")]
    MissingKey(&'static str),
    /// A notation the field's parser rejects (`invalid port ...`), as that parser says.
    #[error("{0}")]
    Syntax(String),
}

/// A deserialization error, located once it bubbles through the node that caused it.
#[derive(Debug)]
pub struct DeError {
    kind: Box<DecodeError>,
    expected: Option<String>,
    location: Option<Location>,
    path: Option<FieldPath>,
}

impl DeError {
    fn new(kind: DecodeError) -> DeError {
        DeError {
            kind: Box::new(kind),
            expected: None,
            location: None,
            path: None,
        }
    }

    /// Converts into a diagnostic.
    pub fn into_diagnostic(self) -> Diagnostic {
        let mut d = Diagnostic::new(*self.kind)
            .at(self.location)
            .with_path(self.path.unwrap_or_default());
        d.expected = self.expected;
        d
    }
}

impl fmt::Display for DeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.kind.fmt(f)
    }
}

impl std::error::Error for DeError {}

impl de::Error for DeError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        DeError::new(DecodeError::Syntax(msg.to_string()))
    }

    fn invalid_type(unexp: de::Unexpected<'_>, exp: &dyn de::Expected) -> Self {
        let mut e = DeError::new(DecodeError::WrongType(unexp.to_string()));
        e.expected = Some(exp.to_string());
        e
    }

    fn invalid_value(unexp: de::Unexpected<'_>, exp: &dyn de::Expected) -> Self {
        let mut e = DeError::new(DecodeError::InvalidValue(unexp.to_string()));
        e.expected = Some(exp.to_string());
        e
    }

    fn unknown_field(field: &str, expected: &'static [&'static str]) -> Self {
        unknown_key(field, expected.iter().copied())
    }

    fn unknown_variant(variant: &str, expected: &'static [&'static str]) -> Self {
        let mut e = DeError::new(DecodeError::UnknownValue(variant.to_owned()));
        e.expected = Some(format!("one of {}", expected.join(", ")));
        e
    }

    fn missing_field(field: &'static str) -> Self {
        DeError::new(DecodeError::MissingKey(field))
    }
}

fn unknown_key<'a>(key: &str, known: impl Iterator<Item = &'a str> + Clone) -> DeError {
    DeError::new(DecodeError::UnknownKey {
        key: key.to_owned(),
        suggestion: did_you_mean(key, known).map(str::to_owned),
    })
}

/// The path of the node being decoded, as a stack-allocated linked list.
#[derive(Clone, Copy)]
enum PathRef<'p> {
    Root(&'p FieldPath),
    Key(&'p PathRef<'p>, &'p str),
    Index(&'p PathRef<'p>, usize),
}

impl<'p> PathRef<'p> {
    fn to_path(self) -> FieldPath {
        fn walk(p: &PathRef<'_>, out: &mut Vec<Segment>) {
            match p {
                PathRef::Root(r) => out.extend(r.0.iter().cloned()),
                PathRef::Key(parent, k) => {
                    walk(parent, out);
                    out.push(Segment::Key((*k).to_owned()));
                }
                PathRef::Index(parent, i) => {
                    walk(parent, out);
                    out.push(Segment::Index(*i));
                }
            }
        }
        let mut v = Vec::new();
        walk(&self, &mut v);
        FieldPath(v)
    }

    /// The number of segments and the first key, without allocating.
    fn shape(self) -> (usize, Option<&'p str>) {
        match self {
            PathRef::Root(r) => (
                r.0.len(),
                match r.0.first() {
                    Some(Segment::Key(k)) => Some(k.as_str()),
                    _ => None,
                },
            ),
            PathRef::Key(parent, k) => {
                let (n, first) = parent.shape();
                (n + 1, if n == 0 { Some(k) } else { first })
            }
            PathRef::Index(parent, _) => {
                let (n, first) = parent.shape();
                (n + 1, first)
            }
        }
    }

    /// True when the innermost segment is a key.
    fn ends_with_key(self) -> bool {
        match self {
            PathRef::Root(r) => matches!(r.0.last(), Some(Segment::Key(_))),
            PathRef::Key(..) => true,
            PathRef::Index(..) => false,
        }
    }
}

/// Deserializes `T` from `node`, whose own path is `path`.
///
/// `T` is a model type: keys of structs with `x-*` extensions are checked by path
/// (`services.*` against [`Service`](crate::Service)'s keys, and so on).
pub fn from_node<'de, T: serde::Deserialize<'de>>(
    node: &'de Node,
    path: &FieldPath,
) -> Result<T, Diagnostic> {
    T::deserialize(NodeDe {
        node,
        path: PathRef::Root(path),
        model: true,
    })
    .map_err(DeError::into_diagnostic)
}

/// Like [`from_node`] for any type (no key checks by path).
pub fn from_node_plain<'de, T: serde::Deserialize<'de>>(
    node: &'de Node,
    path: &FieldPath,
) -> Result<T, Diagnostic> {
    T::deserialize(NodeDe {
        node,
        path: PathRef::Root(path),
        model: false,
    })
    .map_err(DeError::into_diagnostic)
}

struct NodeDe<'de, 'p> {
    node: &'de Node,
    path: PathRef<'p>,
    model: bool,
}

impl NodeDe<'_, '_> {
    fn locate(&self, mut e: DeError) -> DeError {
        if e.location.is_none() {
            e.location = Some(self.node.loc.clone());
        }
        if e.path.is_none() {
            e.path = Some(self.path.to_path());
        }
        e
    }

    fn text(&self, what: &str) -> Result<&str, DeError> {
        match &self.node.value {
            Value::Scalar { text, .. } => Ok(text),
            _ => {
                let mut e = DeError::new(DecodeError::WrongType(self.node.kind().to_owned()));
                e.expected = Some(what.to_owned());
                Err(self.locate(e))
            }
        }
    }

    fn parse_int(&self, what: &str) -> Result<i128, DeError> {
        let t = self.text(what)?;
        parse_int(t).ok_or_else(|| {
            let mut e = DeError::new(DecodeError::NotANumber(t.to_owned()));
            e.expected = Some(what.to_owned());
            self.locate(e)
        })
    }

    fn int<T: TryFrom<i128>>(&self, what: &str) -> Result<T, DeError> {
        let v = self.parse_int(what)?;
        T::try_from(v).map_err(|_| {
            let mut e = DeError::new(DecodeError::OutOfRange(v));
            e.expected = Some(what.to_owned());
            self.locate(e)
        })
    }

    fn float(&self) -> Result<f64, DeError> {
        let t = self.text("a number")?;
        parse_float(t).ok_or_else(|| {
            let mut e = DeError::new(DecodeError::NotANumber(t.to_owned()));
            e.expected = Some("a number".to_owned());
            self.locate(e)
        })
    }

    /// Checks keys of the structs that carry `x-*` extensions, by path.
    fn check_extension_struct_keys(&self) -> Result<(), DeError> {
        let Value::Map(map) = &self.node.value else {
            return Ok(());
        };
        if !self.model {
            return Ok(());
        }
        let known: &[String] = match self.path.shape() {
            (0, _) => crate::model::known_keys::project(),
            (2, Some(kind)) if self.path.ends_with_key() => match kind {
                "services" => crate::model::known_keys::service(),
                "networks" => crate::model::known_keys::network(),
                "volumes" => crate::model::known_keys::volume(),
                "configs" | "secrets" => crate::model::known_keys::file_object(),
                _ => return Ok(()),
            },
            _ => return Ok(()),
        };
        for (k, entry) in map {
            if k.starts_with("x-") || known.binary_search(k).is_ok() {
                continue;
            }
            let mut e = unknown_key(k, known.iter().map(String::as_str));
            e.location = Some(entry.key_loc.clone());
            e.path = Some(PathRef::Key(&self.path, k).to_path());
            return Err(e);
        }
        Ok(())
    }
}

macro_rules! int_method {
    ($name:ident, $visit:ident, $ty:ty, $what:expr) => {
        fn $name<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
            let n: $ty = self.int($what)?;
            v.$visit(n).map_err(|e| self.locate(e))
        }
    };
}

impl<'de> Deserializer<'de> for NodeDe<'de, '_> {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        let r = match &self.node.value {
            Value::Null => v.visit_unit(),
            Value::Scalar { text, plain: true } => {
                if let Some(b) = match text.as_str() {
                    "true" | "True" | "TRUE" => Some(true),
                    "false" | "False" | "FALSE" => Some(false),
                    _ => None,
                } {
                    v.visit_bool(b)
                } else if let Some(i) = parse_int(text) {
                    if let Ok(u) = u64::try_from(i) {
                        v.visit_u64(u)
                    } else if let Ok(s) = i64::try_from(i) {
                        v.visit_i64(s)
                    } else {
                        v.visit_borrowed_str(text)
                    }
                } else if let Some(f) = parse_float(text).filter(|f| f.is_finite()) {
                    v.visit_f64(f)
                } else {
                    v.visit_borrowed_str(text)
                }
            }
            Value::Scalar { text, plain: false } => v.visit_borrowed_str(text),
            Value::Seq(items) => v.visit_seq(Seq {
                items: items.iter(),
                index: 0,
                path: self.path,
                model: self.model,
            }),
            Value::Map(m) => {
                self.check_extension_struct_keys()?;
                v.visit_map(Map {
                    entries: m.iter(),
                    value: None,
                    path: self.path,
                    model: self.model,
                    skip_extensions: false,
                })
            }
        };
        r.map_err(|e| self.locate(e))
    }

    fn deserialize_bool<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        let t = self.text("a boolean")?;
        match parse_bool(t) {
            Some(b) => v.visit_bool(b).map_err(|e| self.locate(e)),
            None => {
                let mut e = DeError::new(DecodeError::NotABoolean(t.to_owned()));
                e.expected = Some("true or false".to_owned());
                Err(self.locate(e))
            }
        }
    }

    int_method!(deserialize_i8, visit_i8, i8, "an integer");
    int_method!(deserialize_i16, visit_i16, i16, "an integer");
    int_method!(deserialize_i32, visit_i32, i32, "an integer");
    int_method!(deserialize_i64, visit_i64, i64, "an integer");
    int_method!(deserialize_u8, visit_u8, u8, "an integer from 0 to 255");
    int_method!(
        deserialize_u16,
        visit_u16,
        u16,
        "an integer from 0 to 65535"
    );
    int_method!(deserialize_u32, visit_u32, u32, "a non-negative integer");
    int_method!(deserialize_u64, visit_u64, u64, "a non-negative integer");

    fn deserialize_f32<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        self.deserialize_f64(v)
    }

    fn deserialize_f64<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        let f = self.float()?;
        v.visit_f64(f).map_err(|e| self.locate(e))
    }

    fn deserialize_char<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        self.deserialize_str(v)
    }

    fn deserialize_str<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        match &self.node.value {
            Value::Scalar { text, .. } => v.visit_borrowed_str(text).map_err(|e| self.locate(e)),
            _ => self.deserialize_any(v),
        }
    }

    fn deserialize_string<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        self.deserialize_str(v)
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        self.deserialize_str(v)
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        self.deserialize_str(v)
    }

    fn deserialize_option<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        match &self.node.value {
            Value::Null => v.visit_none().map_err(|e| self.locate(e)),
            _ => {
                let loc = self.node.loc.clone();
                let path = self.path;
                v.visit_some(self).map_err(|mut e| {
                    if e.location.is_none() {
                        e.location = Some(loc);
                        e.path = Some(path.to_path());
                    }
                    e
                })
            }
        }
    }

    fn deserialize_unit<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        self.deserialize_any(v)
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        v: V,
    ) -> Result<V::Value, DeError> {
        self.deserialize_any(v)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        v: V,
    ) -> Result<V::Value, DeError> {
        let loc = self.node.loc.clone();
        let path = self.path;
        v.visit_newtype_struct(self).map_err(|mut e| {
            if e.location.is_none() {
                e.location = Some(loc);
                e.path = Some(path.to_path());
            }
            e
        })
    }

    fn deserialize_seq<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        match &self.node.value {
            Value::Seq(_) => self.deserialize_any(v),
            Value::Null => v
                .visit_seq(Seq {
                    items: [].iter(),
                    index: 0,
                    path: self.path,
                    model: self.model,
                })
                .map_err(|e| self.locate(e)),
            _ => {
                let mut e = DeError::new(DecodeError::WrongType(self.node.kind().to_owned()));
                e.expected = Some("a sequence".to_owned());
                Err(self.locate(e))
            }
        }
    }

    fn deserialize_tuple<V: Visitor<'de>>(self, _len: usize, v: V) -> Result<V::Value, DeError> {
        self.deserialize_seq(v)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _len: usize,
        v: V,
    ) -> Result<V::Value, DeError> {
        self.deserialize_seq(v)
    }

    fn deserialize_map<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        self.mapping(v, false)
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        v: V,
    ) -> Result<V::Value, DeError> {
        self.mapping(v, true)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        v: V,
    ) -> Result<V::Value, DeError> {
        match &self.node.value {
            Value::Scalar { text, .. } => {
                let d: de::value::StrDeserializer<'_, DeError> = text.as_str().into_deserializer();
                v.visit_enum(d).map_err(|e| self.locate(e))
            }
            _ => {
                let mut e = DeError::new(DecodeError::WrongType(self.node.kind().to_owned()));
                e.expected = Some("a string".to_owned());
                Err(self.locate(e))
            }
        }
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        self.deserialize_str(v)
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        v.visit_unit()
    }
}

impl<'de> NodeDe<'de, '_> {
    fn mapping<V: Visitor<'de>>(self, v: V, skip_extensions: bool) -> Result<V::Value, DeError> {
        match &self.node.value {
            Value::Map(m) => {
                self.check_extension_struct_keys()?;
                v.visit_map(Map {
                    entries: m.iter(),
                    value: None,
                    path: self.path,
                    model: self.model,
                    skip_extensions,
                })
                .map_err(|e| self.locate(e))
            }
            Value::Null => {
                static EMPTY: std::sync::OnceLock<indexmap::IndexMap<String, Entry>> =
                    std::sync::OnceLock::new();
                let empty = EMPTY.get_or_init(indexmap::IndexMap::new);
                v.visit_map(Map {
                    entries: empty.iter(),
                    value: None,
                    path: self.path,
                    model: self.model,
                    skip_extensions,
                })
                .map_err(|e| self.locate(e))
            }
            _ => {
                let mut e = DeError::new(DecodeError::WrongType(self.node.kind().to_owned()));
                e.expected = Some("a mapping".to_owned());
                Err(self.locate(e))
            }
        }
    }
}

struct Seq<'de, 'p> {
    items: std::slice::Iter<'de, Node>,
    index: usize,
    path: PathRef<'p>,
    model: bool,
}

impl<'de> SeqAccess<'de> for Seq<'de, '_> {
    type Error = DeError;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, DeError> {
        let Some(node) = self.items.next() else {
            return Ok(None);
        };
        let i = self.index;
        self.index += 1;
        let path = PathRef::Index(&self.path, i);
        seed.deserialize(NodeDe {
            node,
            path,
            model: self.model,
        })
        .map(Some)
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.items.len())
    }
}

struct Map<'de, 'p> {
    entries: indexmap::map::Iter<'de, String, Entry>,
    value: Option<(&'de str, &'de Entry)>,
    path: PathRef<'p>,
    model: bool,
    skip_extensions: bool,
}

impl<'de> MapAccess<'de> for Map<'de, '_> {
    type Error = DeError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, DeError> {
        loop {
            let Some((k, entry)) = self.entries.next() else {
                return Ok(None);
            };
            if self.skip_extensions && k.starts_with("x-") {
                continue;
            }
            self.value = Some((k, entry));
            let d: de::value::BorrowedStrDeserializer<'de, DeError> =
                de::value::BorrowedStrDeserializer::new(k);
            return seed.deserialize(d).map(Some).map_err(|mut e| {
                e.location = Some(entry.key_loc.clone());
                e.path = Some(PathRef::Key(&self.path, k).to_path());
                e
            });
        }
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, DeError> {
        let Some((k, entry)) = self.value.take() else {
            return Err(DeError::new(DecodeError::Syntax(
                "a value was requested before its key".to_owned(),
            )));
        };
        let path = PathRef::Key(&self.path, k);
        seed.deserialize(NodeDe {
            node: &entry.value,
            path,
            model: self.model,
        })
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.entries.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;
    use std::path::Path;

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Inner {
        port: u16,
        name: Option<String>,
        on: Option<bool>,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Outer {
        items: Vec<Inner>,
    }

    fn load(s: &str) -> Result<Outer, Diagnostic> {
        let node = crate::source::parse(s, Path::new("f.yaml")).unwrap();
        from_node_plain(&node, &FieldPath::root())
    }

    #[test]
    fn scalars_are_typed_on_demand() {
        let o = load("items:\n  - port: '80'\n    name: 123\n    on: yes\n").unwrap();
        assert_eq!(
            o.items,
            vec![Inner {
                port: 80,
                name: Some("123".into()),
                on: Some(true)
            }]
        );
    }

    #[test]
    fn type_errors_are_located_with_path() {
        let e = load("items:\n  - port: 80\n  - port: 99999\n").unwrap_err();
        assert_eq!(e.path.to_string(), "items[1].port");
        let loc = e.location.unwrap();
        assert_eq!((loc.line, loc.column), (3, 11));
        assert!(e.message.contains("99999 is out of range"), "{}", e.message);
    }

    #[test]
    fn unknown_keys_suggest() {
        let e = load("items:\n  - prot: 80\n").unwrap_err();
        assert_eq!(e.message, "unknown key `prot` (did you mean `port`?)");
        assert_eq!(
            *e.kind,
            crate::diagnostic::Kind::Decode(DecodeError::UnknownKey {
                key: "prot".into(),
                suggestion: Some("port".into())
            })
        );
        assert_eq!(e.path.to_string(), "items[0].prot");
        assert_eq!(e.location.map(|l| (l.line, l.column)), Some((2, 5)));
    }
}
