//! The located YAML tree: every node keeps its file, line, column and tag.
//!
//! Built from `saphyr-parser` events. YAML features resolved here, once, so later
//! phases only see plain trees: anchors and aliases (bounded by a node budget against
//! "billion laughs" documents), merge keys `<<` (a mapping or a list of mappings; keys
//! written in the mapping win, then earlier merged mappings win), and duplicate keys
//! (an error naming both positions). Only the first document of a stream is read.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use indexmap::IndexMap;
use saphyr_parser::{Event, Parser, ScalarStyle, Span};

use crate::diagnostic::{Diagnostic, Location};

/// Alias expansions may create at most this many nodes per document.
const ALIAS_NODE_BUDGET: usize = 1_000_000;
/// Deeper nesting than this is rejected (protects the recursive phases).
const MAX_DEPTH: usize = 200;

/// Why a document is not acceptable YAML for the loader.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum YamlError {
    /// The parser's own syntax error.
    #[error("invalid YAML: {0}")]
    Syntax(String),
    /// The input stops in the middle of a document.
    #[error("invalid YAML: unexpected end of input")]
    UnexpectedEnd,
    /// Nesting beyond the depth limit.
    #[error("the document nests deeper than {0} levels")]
    TooDeep(usize),
    /// `*name` without `&name` before it.
    #[error("alias to an unknown anchor")]
    UnknownAnchor,
    /// Aliases that expand to too many nodes.
    #[error("aliases expand to more than {0} nodes (alias bomb?)")]
    AliasBudget(usize),
    /// A mapping or sequence used as a key.
    #[error("mapping keys must be scalars, found {0}")]
    NonScalarKey(&'static str),
    /// A key written twice in one mapping.
    #[error("duplicate key `{key}` (first defined at line {line}, column {column})")]
    DuplicateKey {
        /// The key.
        key: String,
        /// Line of the first occurrence.
        line: u32,
        /// Column of the first occurrence.
        column: u32,
    },
    /// `<<:` with something other than mappings.
    #[error("merge key `<<` takes a mapping or a list of mappings, found {0}")]
    BadMerge(&'static str),
}

/// A YAML tag the loader gives meaning to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tag {
    /// `!reset`: remove the value inherited from earlier files.
    Reset,
    /// `!override`: replace the inherited value instead of merging with it.
    Override,
    /// `!!str`: a plain scalar that must stay a string.
    Str,
    /// Any other tag (ignored).
    Other,
}

/// A mapping entry: the key's position and the value.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// Where the key is written.
    pub key_loc: Location,
    /// The value.
    pub value: Node,
}

/// A node's content.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `null`, `~` or nothing.
    Null,
    /// Any other scalar, as written; `plain` is false for quoted and block scalars.
    Scalar {
        /// The text.
        text: String,
        /// Unquoted: its type (number, bool) is resolved from the text.
        plain: bool,
    },
    /// A sequence.
    Seq(Vec<Node>),
    /// A mapping with string keys, in document order.
    Map(IndexMap<String, Entry>),
}

/// A located YAML node.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// The content.
    pub value: Value,
    /// Where the node starts.
    pub loc: Location,
    /// Its tag, if one the loader cares about.
    pub tag: Option<Tag>,
}

impl Node {
    /// A node with no tag.
    pub fn new(value: Value, loc: Location) -> Node {
        Node {
            value,
            loc,
            tag: None,
        }
    }

    /// The mapping entries, if this is a mapping.
    pub fn as_map(&self) -> Option<&IndexMap<String, Entry>> {
        match &self.value {
            Value::Map(m) => Some(m),
            _ => None,
        }
    }

    /// The mapping entries, mutably.
    pub fn as_map_mut(&mut self) -> Option<&mut IndexMap<String, Entry>> {
        match &mut self.value {
            Value::Map(m) => Some(m),
            _ => None,
        }
    }

    /// The text of a scalar.
    pub fn as_str(&self) -> Option<&str> {
        match &self.value {
            Value::Scalar { text, .. } => Some(text),
            _ => None,
        }
    }

    /// The value under `key` when this is a mapping.
    pub fn get(&self, key: &str) -> Option<&Node> {
        self.as_map().and_then(|m| m.get(key)).map(|e| &e.value)
    }

    /// A short word for the node's kind, for messages.
    pub fn kind(&self) -> &'static str {
        match &self.value {
            Value::Null => "null",
            Value::Scalar { .. } => "a scalar",
            Value::Seq(_) => "a sequence",
            Value::Map(_) => "a mapping",
        }
    }

    fn count(&self) -> usize {
        match &self.value {
            Value::Seq(items) => 1 + items.iter().map(Node::count).sum::<usize>(),
            Value::Map(m) => 1 + m.values().map(|e| e.value.count()).sum::<usize>(),
            _ => 1,
        }
    }
}

/// Parses the first document of `text` (the content of `file`) into a located tree; an
/// empty document is `Null`.
pub fn parse(text: &str, file: &Path) -> Result<Node, Diagnostic> {
    let mut docs = parse_documents(text, file, 1)?;
    Ok(docs.swap_remove(0))
}

/// Parses up to `max` documents of a stream (at least one: an empty stream is one `Null`
/// document). Compose reads every document of a file as if it were another file.
pub fn parse_documents(text: &str, file: &Path, max: usize) -> Result<Vec<Node>, Diagnostic> {
    let file: Arc<Path> = Arc::from(file);
    let mut b = Builder {
        parser: Parser::new_from_str(text),
        file: file.clone(),
        anchors: HashMap::new(),
        alias_nodes: 0,
    };
    let mut docs = Vec::new();
    let mut in_doc = false;
    loop {
        let (ev, span) = b.next()?;
        match ev {
            Event::StreamStart | Event::Nothing => {}
            Event::DocumentStart(_) => in_doc = true,
            Event::DocumentEnd => {
                if in_doc {
                    docs.push(Node::new(Value::Null, b.loc(&span)));
                }
                in_doc = false;
            }
            Event::StreamEnd => {
                if docs.is_empty() {
                    docs.push(Node::new(Value::Null, b.loc(&span)));
                }
                return Ok(docs);
            }
            ev => {
                docs.push(b.node(ev, span, 0)?);
                in_doc = false;
                if docs.len() >= max {
                    return Ok(docs);
                }
            }
        }
    }
}

struct Builder<'a> {
    parser: Parser<'a, saphyr_parser::StrInput<'a>>,
    file: Arc<Path>,
    anchors: HashMap<usize, (Node, usize)>,
    alias_nodes: usize,
}

impl<'a> Builder<'a> {
    fn loc(&self, span: &Span) -> Location {
        Location {
            file: self.file.clone(),
            line: u32::try_from(span.start.line()).unwrap_or(u32::MAX),
            column: u32::try_from(span.start.col() + 1).unwrap_or(u32::MAX),
        }
    }

    fn next(&mut self) -> Result<(Event<'a>, Span), Diagnostic> {
        match self.parser.next_event() {
            Some(Ok(x)) => Ok(x),
            Some(Err(e)) => {
                let m = e.marker();
                Err(
                    Diagnostic::new(YamlError::Syntax(e.info().to_owned())).at(Some(Location {
                        file: self.file.clone(),
                        line: u32::try_from(m.line()).unwrap_or(u32::MAX),
                        column: u32::try_from(m.col() + 1).unwrap_or(u32::MAX),
                    })),
                )
            }
            None => Err(Diagnostic::new(YamlError::UnexpectedEnd)
                .at(Some(Location::file_start(&self.file)))),
        }
    }

    fn node(&mut self, ev: Event<'a>, span: Span, depth: usize) -> Result<Node, Diagnostic> {
        let loc = self.loc(&span);
        if depth > MAX_DEPTH {
            return Err(Diagnostic::new(YamlError::TooDeep(MAX_DEPTH)).at(Some(loc)));
        }
        let (node, anchor) = match ev {
            Event::Scalar(text, style, anchor, tag) => {
                let tag = tag.map(|t| convert_tag(&t.handle, &t.suffix));
                let plain = style == ScalarStyle::Plain && tag != Some(Tag::Str);
                let value = if plain && matches!(text.as_ref(), "" | "~" | "null" | "Null" | "NULL")
                {
                    Value::Null
                } else {
                    Value::Scalar {
                        text: text.into_owned(),
                        plain,
                    }
                };
                (Node { value, loc, tag }, anchor)
            }
            Event::SequenceStart(anchor, tag) => {
                let tag = tag.map(|t| convert_tag(&t.handle, &t.suffix));
                let mut items = Vec::new();
                loop {
                    let (ev, span) = self.next()?;
                    if matches!(ev, Event::SequenceEnd) {
                        break;
                    }
                    items.push(self.node(ev, span, depth + 1)?);
                }
                (
                    Node {
                        value: Value::Seq(items),
                        loc,
                        tag,
                    },
                    anchor,
                )
            }
            Event::MappingStart(anchor, tag) => {
                let tag = tag.map(|t| convert_tag(&t.handle, &t.suffix));
                let map = self.mapping(depth)?;
                (
                    Node {
                        value: Value::Map(map),
                        loc,
                        tag,
                    },
                    anchor,
                )
            }
            Event::Alias(id) => {
                let Some((node, size)) = self.anchors.get(&id) else {
                    return Err(Diagnostic::new(YamlError::UnknownAnchor).at(Some(loc)));
                };
                self.alias_nodes += size;
                if self.alias_nodes > ALIAS_NODE_BUDGET {
                    return Err(
                        Diagnostic::new(YamlError::AliasBudget(ALIAS_NODE_BUDGET)).at(Some(loc))
                    );
                }
                return Ok(node.clone());
            }
            other => {
                return Err(
                    Diagnostic::new(YamlError::Syntax(format!("unexpected {other:?}")))
                        .at(Some(loc)),
                );
            }
        };
        if anchor > 0 {
            let size = node.count();
            self.anchors.insert(anchor, (node.clone(), size));
        }
        Ok(node)
    }

    fn mapping(&mut self, depth: usize) -> Result<IndexMap<String, Entry>, Diagnostic> {
        let mut map: IndexMap<String, Entry> = IndexMap::new();
        let mut merges: Vec<Node> = Vec::new();
        loop {
            let (ev, span) = self.next()?;
            if matches!(ev, Event::MappingEnd) {
                break;
            }
            let key = self.node(ev, span, depth + 1)?;
            let (kev, kspan) = self.next()?;
            let value = self.node(kev, kspan, depth + 1)?;
            let kind = key.kind();
            let name = match key.value {
                Value::Scalar { text, plain } => {
                    if plain && text == "<<" {
                        merges.push(value);
                        continue;
                    }
                    text
                }
                Value::Null => "null".to_owned(),
                _ => {
                    return Err(Diagnostic::new(YamlError::NonScalarKey(kind)).at(Some(key.loc)));
                }
            };
            match map.entry(name) {
                indexmap::map::Entry::Occupied(prev) => {
                    let prev_loc = &prev.get().key_loc;
                    return Err(Diagnostic::new(YamlError::DuplicateKey {
                        line: prev_loc.line,
                        column: prev_loc.column,
                        key: prev.key().clone(),
                    })
                    .at(Some(key.loc)));
                }
                indexmap::map::Entry::Vacant(slot) => {
                    slot.insert(Entry {
                        key_loc: key.loc,
                        value,
                    });
                }
            }
        }
        for merge in merges {
            match merge.value {
                Value::Map(m) => merge_into(&mut map, m),
                Value::Seq(items) => {
                    for item in items {
                        match item.value {
                            Value::Map(m) => merge_into(&mut map, m),
                            _ => {
                                return Err(Diagnostic::new(YamlError::BadMerge(item.kind()))
                                    .at(Some(item.loc)));
                            }
                        }
                    }
                }
                _ => {
                    return Err(
                        Diagnostic::new(YamlError::BadMerge(merge.kind())).at(Some(merge.loc))
                    );
                }
            }
        }
        Ok(map)
    }
}

fn merge_into(map: &mut IndexMap<String, Entry>, from: IndexMap<String, Entry>) {
    for (k, e) in from {
        map.entry(k).or_insert(e);
    }
}

fn convert_tag(handle: &str, suffix: &str) -> Tag {
    match (handle, suffix) {
        ("!", "reset") => Tag::Reset,
        ("!", "override") => Tag::Override,
        ("tag:yaml.org,2002:", "str") | ("!!", "str") => Tag::Str,
        _ => Tag::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Result<Node, Diagnostic> {
        parse(s, Path::new("t.yaml"))
    }

    #[test]
    fn positions_are_one_based() {
        let n = p("services:\n  web:\n    image: x\n").unwrap();
        let img = n
            .get("services")
            .unwrap()
            .get("web")
            .unwrap()
            .get("image")
            .unwrap();
        assert_eq!((img.loc.line, img.loc.column), (3, 12));
        assert_eq!(img.as_str(), Some("x"));
    }

    #[test]
    fn merge_keys_single_and_list() {
        let n =
            p("a: &a {x: 1, y: 2}\nb: &b {y: 3, z: 4}\nc:\n  <<: [*a, *b]\n  x: 9\nd:\n  <<: *b\n")
                .unwrap();
        let c = n.get("c").unwrap();
        assert_eq!(c.get("x").unwrap().as_str(), Some("9"));
        assert_eq!(c.get("y").unwrap().as_str(), Some("2"));
        assert_eq!(c.get("z").unwrap().as_str(), Some("4"));
        assert_eq!(n.get("d").unwrap().get("y").unwrap().as_str(), Some("3"));
    }

    #[test]
    fn duplicate_keys_are_errors() {
        let e = p("a: 1\nb: 2\na: 3\n").unwrap_err();
        assert_eq!(e.location.as_ref().map(|l| l.line), Some(3));
        assert!(e.message.contains("duplicate key `a`"), "{}", e.message);
    }

    #[test]
    fn alias_bomb_is_rejected() {
        let mut s = String::from("a: &a [x, x, x, x, x, x, x, x, x]\n");
        let names = ["b", "c", "d", "e", "f", "g", "h", "i"];
        let mut prev = "a";
        for n in names {
            s.push_str(&format!("{n}: &{n} [*{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}]\n"));
            prev = n;
        }
        let e = p(&s).unwrap_err();
        assert!(e.message.contains("alias bomb"), "{}", e.message);
    }

    #[test]
    fn tags_and_nulls() {
        let n = p("a: !reset []\nb: !override {x: 1}\nc: ~\nd: '~'\ne: !!str 1\n").unwrap();
        assert_eq!(n.get("a").unwrap().tag, Some(Tag::Reset));
        assert_eq!(n.get("b").unwrap().tag, Some(Tag::Override));
        assert_eq!(n.get("c").unwrap().value, Value::Null);
        assert_eq!(n.get("d").unwrap().as_str(), Some("~"));
        assert!(matches!(
            n.get("e").unwrap().value,
            Value::Scalar { plain: false, .. }
        ));
    }

    #[test]
    fn multiple_documents() {
        let docs =
            parse_documents("a: 1\n---\nb: 2\n---\n", Path::new("m.yaml"), usize::MAX).unwrap();
        assert_eq!(docs.len(), 3);
        assert_eq!(docs[1].get("b").unwrap().as_str(), Some("2"));
        assert_eq!(docs[2].value, Value::Null);
        assert_eq!(parse("", Path::new("e.yaml")).unwrap().value, Value::Null);
    }

    #[test]
    fn syntax_errors_have_positions() {
        let e = p("a: [1, 2\nb: 3\n").unwrap_err();
        assert!(e.location.is_some());
        assert!(e.message.starts_with("invalid YAML"), "{}", e.message);
    }
}
