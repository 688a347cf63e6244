//! `.env` files (the dotenv format Compose reads): `KEY=VALUE` lines, optional `export `,
//! `#` comments, single quotes (literal, may span lines), double quotes (escapes, may
//! span lines, interpolated), unquoted values (trimmed, inline ` #` comments,
//! interpolated). A bare `KEY` takes its value from the environment when it is set.

use std::path::Path;

use indexmap::IndexMap;

use crate::diagnostic::{Diagnostic, Location};
use crate::interpolate::substitute;

/// What is wrong in an env file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvError {
    /// A key with characters a variable name cannot have.
    #[error("invalid variable name `{0}` in env file")]
    InvalidName(String),
    /// A quoted value that never closes.
    #[error("unterminated quote for `{0}`")]
    UnterminatedQuote(String),
    /// A value whose `${...}` cannot be expanded.
    #[error(transparent)]
    Interpolate(crate::interpolate::InterpolateError),
}

/// Parses dotenv `text` from `file`. Interpolation inside values sees `env` first, then
/// the variables defined earlier in the file.
pub fn parse(
    text: &str,
    file: &Path,
    env: &IndexMap<String, String>,
) -> Result<IndexMap<String, String>, Diagnostic> {
    let mut out: IndexMap<String, String> = IndexMap::new();
    let mut lines = text.lines().enumerate().peekable();
    while let Some((n, raw)) = lines.next() {
        let err = |e: EnvError| {
            Diagnostic::new(e).at(Some(Location {
                file: std::sync::Arc::from(file),
                line: u32::try_from(n + 1).unwrap_or(u32::MAX),
                column: 1,
            }))
        };
        let line = raw.trim_start();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").map_or(line, str::trim_start);
        let (key, rest) = match line.find(['=', ':']) {
            Some(i) => (line[..i].trim(), Some(&line[i + 1..])),
            None => (line.trim(), None),
        };
        if key.is_empty()
            || !key
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_.-[]".contains(c))
        {
            return Err(err(EnvError::InvalidName(key.to_owned())));
        }
        let Some(rest) = rest else {
            if let Some(v) = env.get(key) {
                out.insert(key.to_owned(), v.clone());
            }
            continue;
        };
        let rest = rest.trim_start();
        let lookup = |k: &str| env.get(k).or_else(|| out.get(k)).cloned();
        let value = if let Some(body) = rest.strip_prefix('\'') {
            let mut acc = body.to_owned();
            loop {
                if let Some(end) = acc.find('\'') {
                    acc.truncate(end);
                    break acc;
                }
                match lines.next() {
                    Some((_, l)) => {
                        acc.push('\n');
                        acc.push_str(l);
                    }
                    None => return Err(err(EnvError::UnterminatedQuote(key.to_owned()))),
                }
            }
        } else if let Some(body) = rest.strip_prefix('"') {
            let mut acc = String::new();
            let mut cur = body.to_owned();
            let closed = loop {
                let mut chars = cur.chars();
                let mut done = false;
                while let Some(c) = chars.next() {
                    match c {
                        '"' => {
                            done = true;
                            break;
                        }
                        '\\' => match chars.next() {
                            Some('n') => acc.push('\n'),
                            Some('t') => acc.push('\t'),
                            Some('r') => acc.push('\r'),
                            Some('"') => acc.push('"'),
                            Some('\\') => acc.push('\\'),
                            Some('$') => acc.push_str("$$"),
                            Some(o) => {
                                acc.push('\\');
                                acc.push(o);
                            }
                            None => acc.push('\\'),
                        },
                        '$' if chars.as_str().starts_with('$') => {
                            acc.push_str("$$");
                            chars.next();
                        }
                        c => acc.push(c),
                    }
                }
                if done {
                    break true;
                }
                match lines.next() {
                    Some((_, l)) => {
                        acc.push('\n');
                        cur = l.to_owned();
                    }
                    None => break false,
                }
            };
            if !closed {
                return Err(err(EnvError::UnterminatedQuote(key.to_owned())));
            }
            substitute(&acc, &lookup, &mut Vec::new()).map_err(|e| err(EnvError::Interpolate(e)))?
        } else {
            let v = match rest.find(" #") {
                Some(i) => &rest[..i],
                None => rest,
            };
            substitute(v.trim(), &lookup, &mut Vec::new())
                .map_err(|e| err(EnvError::Interpolate(e)))?
        };
        out.insert(key.to_owned(), value);
    }
    Ok(out)
}

/// Reads and parses a dotenv file.
pub fn read(
    file: &Path,
    env: &IndexMap<String, String>,
) -> Result<IndexMap<String, String>, Diagnostic> {
    let text = std::fs::read_to_string(file).map_err(|e| Diagnostic::io(file, &e))?;
    parse(&text, file, env)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> IndexMap<String, String> {
        let env: IndexMap<String, String> = [("HOME".to_owned(), "/root".to_owned())]
            .into_iter()
            .collect();
        parse(s, Path::new(".env"), &env).unwrap()
    }

    #[test]
    fn forms() {
        let m = p(
            "# c\nA=1\nexport B = two words # note\nC='lit $A'\nD=\"x\\ny $A\"\nE=\nF=${A}-${HOME}\nHOME\nMISSING\nG='multi\nline'\n",
        );
        assert_eq!(m["A"], "1");
        assert_eq!(m["B"], "two words");
        assert_eq!(m["C"], "lit $A");
        assert_eq!(m["D"], "x\ny 1");
        assert_eq!(m["E"], "");
        assert_eq!(m["F"], "1-/root");
        assert_eq!(m["HOME"], "/root");
        assert!(!m.contains_key("MISSING"));
        assert_eq!(m["G"], "multi\nline");
    }

    #[test]
    fn errors_have_lines() {
        let e = parse("A=1\nB=\"open\n", Path::new(".env"), &IndexMap::new()).unwrap_err();
        assert_eq!(e.location.map(|l| l.line), Some(2));
        let e = parse("A=1\nbad key=2\n", Path::new(".env"), &IndexMap::new()).unwrap_err();
        assert!(e.message.contains("invalid variable name"), "{}", e.message);
    }
}
