//! Short and long forms: deserializers that accept every notation Compose allows for a
//! field (list or mapping, string or list, scalar of any type) and produce the one
//! canonical shape the model stores.

use std::fmt;

use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};

/// Any scalar (string, number, bool) read as its text.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, JsonSchema)]
#[serde(transparent)]
pub struct Text(pub String);

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(TextVisitor).map(Text)
    }
}

struct TextVisitor;

impl Visitor<'_> for TextVisitor {
    type Value = String;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string or number")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<String, E> {
        Ok(v.to_owned())
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<String, E> {
        Ok(v)
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<String, E> {
        Ok(v.to_string())
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<String, E> {
        Ok(v.to_string())
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<String, E> {
        Ok(v.to_string())
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<String, E> {
        Ok(v.to_string())
    }
}

/// `environment`-style values: a list of `KEY=VALUE` / `KEY`, or a mapping whose values
/// are scalars or null. A bare `KEY` (or a null value) is `None`.
pub fn env_map<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<IndexMap<String, Option<String>>, D::Error> {
    d.deserialize_any(ListOrDict {
        bare_is_empty: false,
    })
}

/// `labels`-style values: like [`env_map`], but a bare `KEY` means an empty string.
pub fn label_map<'de, D: Deserializer<'de>>(d: D) -> Result<IndexMap<String, String>, D::Error> {
    let m = d.deserialize_any(ListOrDict {
        bare_is_empty: true,
    })?;
    Ok(m.into_iter()
        .map(|(k, v)| (k, v.unwrap_or_default()))
        .collect())
}

struct ListOrDict {
    bare_is_empty: bool,
}

impl<'de> Visitor<'de> for ListOrDict {
    type Value = IndexMap<String, Option<String>>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a list of KEY=VALUE strings or a mapping")
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(IndexMap::new())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut m = IndexMap::new();
        while let Some(Text(item)) = seq.next_element::<Text>()? {
            match item.split_once('=') {
                Some((k, v)) => m.insert(k.to_owned(), Some(v.to_owned())),
                None if self.bare_is_empty => m.insert(item, Some(String::new())),
                None => m.insert(item, None),
            };
        }
        Ok(m)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut m = IndexMap::new();
        while let Some((k, v)) = map.next_entry::<String, Option<Text>>()? {
            m.insert(k, v.map(|t| t.0));
        }
        Ok(m)
    }
}

/// A single string or a list of strings, as a list.
pub fn string_or_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    struct V;
    impl<'de> Visitor<'de> for V {
        type Value = Vec<String>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a string or a list of strings")
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(Vec::new())
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
            Ok(vec![v.to_owned()])
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
            Ok(vec![v.to_string()])
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
            Ok(vec![v.to_string()])
        }
        fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
            Ok(vec![v.to_string()])
        }
        fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
            Ok(vec![v.to_string()])
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let mut out = Vec::new();
            while let Some(Text(s)) = seq.next_element::<Text>()? {
                out.push(s);
            }
            Ok(out)
        }
    }
    d.deserialize_any(V)
}

/// A list of scalars (strings or numbers), as strings.
pub fn text_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    let v: Vec<Text> = Vec::deserialize(d)?;
    Ok(v.into_iter().map(|t| t.0).collect())
}

/// `command` / `entrypoint`: a string (split as a POSIX shell would) or a list.
pub fn command<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<String>>, D::Error> {
    struct V;
    impl<'de> Visitor<'de> for V {
        type Value = Option<Vec<String>>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a command string or a list of arguments")
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_any(V)
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
            shell_split(v).map(Some).map_err(E::custom)
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let mut out = Vec::new();
            while let Some(Text(s)) = seq.next_element::<Text>()? {
                out.push(s);
            }
            Ok(Some(out))
        }
    }
    d.deserialize_option(V)
}

/// Splits a command line into words as a POSIX shell would (quotes and backslashes;
/// no expansion).
pub fn shell_split(s: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => cur.push(c),
                        None => return Err(format!("unterminated single quote in `{s}`")),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(c @ ('"' | '\\' | '$' | '`')) => cur.push(c),
                            Some('\n') => {}
                            Some(c) => {
                                cur.push('\\');
                                cur.push(c);
                            }
                            None => return Err(format!("unterminated double quote in `{s}`")),
                        },
                        Some(c) => cur.push(c),
                        None => return Err(format!("unterminated double quote in `{s}`")),
                    }
                }
            }
            '\\' => {
                in_word = true;
                match chars.next() {
                    Some('\n') | None => {}
                    Some(c) => cur.push(c),
                }
            }
            c if c.is_whitespace() => {
                if in_word {
                    out.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            c => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if in_word {
        out.push(cur);
    }
    Ok(out)
}

/// Serializes an optional file mode as Compose does: an octal string (`"0440"`).
pub mod octal_mode {
    use serde::{Deserialize, Deserializer, Serializer, de};

    /// Writes `Some(0o440)` as `"0440"`.
    pub fn serialize<S: Serializer>(v: &Option<u32>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(m) => s.serialize_str(&format!("0{m:o}")),
            None => s.serialize_none(),
        }
    }

    /// Reads a number (YAML octal `0440` or decimal `288`) or an octal string.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
        let t: Option<super::Text> = Option::deserialize(d)?;
        let Some(super::Text(t)) = t else {
            return Ok(None);
        };
        let parsed = if let Some(o) = t.strip_prefix("0o") {
            u32::from_str_radix(o, 8).ok()
        } else if t.len() > 1 && t.starts_with('0') {
            u32::from_str_radix(&t[1..], 8).ok()
        } else {
            t.parse().ok()
        };
        parsed.map(Some).ok_or_else(|| {
            de::Error::custom(format!(
                "`{t}` is not a file mode (expected octal such as 0440)"
            ))
        })
    }
}

/// An optional integer printed as a string (`"10"`) and read from either form.
pub mod string_int {
    use serde::{Deserialize, Deserializer, Serializer, de};

    /// Writes `Some(10)` as `"10"`.
    pub fn serialize<S: Serializer>(v: &Option<i64>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(n) => s.collect_str(n),
            None => s.serialize_none(),
        }
    }

    /// Reads a number or a numeric string.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
        let t: Option<super::Text> = Option::deserialize(d)?;
        t.map(|super::Text(t)| {
            t.parse()
                .map_err(|_| de::Error::custom(format!("`{t}` is not an integer")))
        })
        .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shell_split_handles_quotes() {
        assert_eq!(
            shell_split(r#"/bin/sh -c "echo 'a b'""#).unwrap(),
            vec!["/bin/sh", "-c", "echo 'a b'"]
        );
        assert_eq!(
            shell_split(r"a\ b 'c d' e").unwrap(),
            vec!["a b", "c d", "e"]
        );
        assert_eq!(shell_split("  ").unwrap(), Vec::<String>::new());
        assert!(shell_split("'open").is_err());
    }
}
