//! Splitting an instruction's argument text into words and flags, quotes kept.
//!
//! Words keep their quotes and escapes: removing them is the job of
//! [`crate::substitute`], which runs at build time once the variables in scope are known.

use crate::diagnostic::ParseError;

/// A word of an instruction's arguments, as written, with its offset (in chars) in the text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RawWord {
    /// The word with quotes and escapes as written.
    pub text: String,
    /// Offset of its first character in the argument text, in chars.
    pub offset: usize,
}

/// Splits `text` on whitespace outside quotes; an escape char protects the next char.
/// Returns the offset of the opening quote on an unterminated quote.
pub(crate) fn split_words(text: &str, escape: char) -> Result<Vec<RawWord>, (usize, ParseError)> {
    let chars: Vec<char> = text.chars().collect();
    let mut words = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        if chars[i].is_whitespace() {
            i += 1;
            continue;
        }
        let start = i;
        let end = word_end(&chars, i, escape)?;
        words.push(RawWord {
            text: chars[start..end].iter().collect(),
            offset: start,
        });
        i = end;
    }
    Ok(words)
}

/// The index just past the word starting at `start`.
fn word_end(chars: &[char], start: usize, escape: char) -> Result<usize, (usize, ParseError)> {
    let mut i = start;
    let mut quote: Option<(char, usize)> = None;
    while i < chars.len() {
        let c = chars[i];
        match quote {
            Some((q, _)) if c == q => quote = None,
            Some(('"', _)) if c == escape => i += 1,
            Some(_) => {}
            None if c == escape => i += 1,
            None if c == '\'' || c == '"' => quote = Some((c, i)),
            None if c.is_whitespace() => break,
            None => {}
        }
        i += 1;
    }
    if let Some((_, at)) = quote {
        return Err((at, ParseError::UnterminatedQuote));
    }
    Ok(i.min(chars.len()))
}

/// A `--name[=value]` flag written before an instruction's arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RawFlag {
    /// The name without the leading dashes.
    pub name: String,
    /// The value after `=` (quotes kept), `None` for a bare `--name`.
    pub value: Option<String>,
    /// Offset of the `--` in the argument text, in chars.
    pub offset: usize,
}

/// Takes the leading `--flag` words off `text`; returns them and the offset (in chars)
/// where the remaining arguments start. A bare `--` ends the flags.
pub(crate) fn take_flags(
    text: &str,
    escape: char,
) -> Result<(Vec<RawFlag>, usize), (usize, ParseError)> {
    let chars: Vec<char> = text.chars().collect();
    let mut flags = Vec::new();
    let mut i = 0;
    loop {
        while i < chars.len() && chars[i].is_whitespace() {
            i += 1;
        }
        if i + 1 >= chars.len() || chars[i] != '-' || chars[i + 1] != '-' {
            return Ok((flags, i));
        }
        let start = i;
        let end = word_end(&chars, i, escape)?;
        let word: String = chars[start + 2..end].iter().collect();
        i = end;
        if word.is_empty() {
            while i < chars.len() && chars[i].is_whitespace() {
                i += 1;
            }
            return Ok((flags, i));
        }
        let (name, value) = match word.split_once('=') {
            Some((n, v)) => (n.to_string(), Some(v.to_string())),
            None => (word, None),
        };
        flags.push(RawFlag {
            name,
            value,
            offset: start,
        });
    }
}

/// Parses `text` as a JSON array of strings (the exec form), if it is one.
pub(crate) fn json_array(text: &str) -> Option<Vec<String>> {
    let t = text.trim();
    if !t.starts_with('[') {
        return None;
    }
    serde_json::from_str::<Vec<String>>(t).ok()
}

/// Removes one level of matching outer quotes from a flag value (`"a b"` → `a b`).
pub(crate) fn unquote(value: &str) -> String {
    let v = value.trim();
    for q in ['"', '\''] {
        if v.len() >= 2 && v.starts_with(q) && v.ends_with(q) {
            return v[1..v.len() - 1].to_string();
        }
    }
    v.to_string()
}

/// The first `n` chars of `s` as a byte index, for slicing at a char offset.
pub(crate) fn byte_index(s: &str, char_offset: usize) -> usize {
    s.char_indices()
        .nth(char_offset)
        .map(|(b, _)| b)
        .unwrap_or(s.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(s: &str) -> Vec<String> {
        split_words(s, '\\')
            .unwrap()
            .into_iter()
            .map(|w| w.text)
            .collect()
    }

    #[test]
    fn words_split_on_whitespace_outside_quotes() {
        assert_eq!(texts("a  b\tc"), vec!["a", "b", "c"]);
        assert_eq!(texts(r#"a "b c" 'd e'f"#), vec!["a", "\"b c\"", "'d e'f"]);
        assert_eq!(texts(r"a\ b c"), vec![r"a\ b", "c"]);
        assert_eq!(texts(r#""a \" b" c"#), vec![r#""a \" b""#, "c"]);
        assert_eq!(texts(""), Vec::<String>::new());
    }

    #[test]
    fn word_offsets_are_char_offsets() {
        let w = split_words("é  b", '\\').unwrap();
        assert_eq!(w[1].offset, 3);
    }

    #[test]
    fn unterminated_quote_points_at_the_quote() {
        assert_eq!(
            split_words("a 'b c", '\\'),
            Err((2, ParseError::UnterminatedQuote))
        );
    }

    #[test]
    fn flags_are_taken_until_the_first_other_word() {
        let (flags, rest) = take_flags("--from=build --link  src dst", '\\').unwrap();
        assert_eq!(flags.len(), 2);
        assert_eq!(flags[0].name, "from");
        assert_eq!(flags[0].value.as_deref(), Some("build"));
        assert_eq!(flags[1].name, "link");
        assert_eq!(flags[1].value, None);
        assert_eq!(flags[1].offset, 13);
        assert_eq!(&"--from=build --link  src dst"[rest..], "src dst");
    }

    #[test]
    fn double_dash_ends_flags() {
        let (flags, rest) = take_flags("-- --x y", '\\').unwrap();
        assert!(flags.is_empty());
        assert_eq!(rest, 3);
    }

    #[test]
    fn json_array_only_for_arrays_of_strings() {
        assert_eq!(
            json_array(r#" ["a", "b"] "#),
            Some(vec!["a".into(), "b".into()])
        );
        assert_eq!(json_array(r#"[1]"#), None);
        assert_eq!(json_array(r#"[a]"#), None);
        assert_eq!(json_array(r#"echo [a]"#), None);
    }

    #[test]
    fn unquote_removes_one_level() {
        assert_eq!(unquote("\"a b\""), "a b");
        assert_eq!(unquote("'x'"), "x");
        assert_eq!(unquote("x"), "x");
        assert_eq!(unquote("\""), "\"");
    }
}
