//! Variable interpolation: `$VAR`, `${VAR}`, `${VAR:-default}`, `${VAR-default}`,
//! `${VAR:?message}`, `${VAR?message}`, `${VAR:+alt}`, `${VAR+alt}`, nested templates in
//! defaults, and `$$` for a literal `$`. Applied to every scalar value (not keys) of a
//! located tree, so errors name the file, line, column and field.

use crate::diagnostic::{Diagnostic, FieldPath, Kind, Segment, Warning};
use crate::source::{Node, Value};

/// Why a template could not be expanded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InterpolateError {
    /// `${VAR:?msg}` / `${VAR?msg}` with the variable missing.
    #[error("required variable {name} is missing a value{}", if .message.is_empty() { String::new() } else { format!(": {}", .message) })]
    Required {
        /// The variable.
        name: String,
        /// The template's message.
        message: String,
    },
    /// An unclosed `${` or a `${...}` that is not a variable expression.
    #[error("invalid interpolation format in `{0}` (use `$$` for a literal `$`)")]
    Invalid(String),
}

/// Expands `template`, looking variables up with `lookup`. Names of variables that were
/// not set (and had no default) are pushed to `unset`.
pub fn substitute(
    template: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
    unset: &mut Vec<String>,
) -> Result<String, InterpolateError> {
    if !template.contains('$') {
        return Ok(template.to_owned());
    }
    let mut out = String::with_capacity(template.len());
    let bytes = template.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        if c != b'$' {
            let next = template[i..].find('$').map_or(template.len(), |n| i + n);
            out.push_str(&template[i..next]);
            i = next;
            continue;
        }
        match bytes.get(i + 1) {
            Some(b'$') => {
                out.push('$');
                i += 2;
            }
            Some(b'{') => {
                let start = i + 2;
                let end = matching_brace(template, start)
                    .ok_or_else(|| InterpolateError::Invalid(template.to_owned()))?;
                out.push_str(&braced(&template[start..end], template, lookup, unset)?);
                i = end + 1;
            }
            Some(b) if b.is_ascii_alphabetic() || *b == b'_' => {
                let name_end = template[i + 1..]
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .map_or(template.len(), |n| i + 1 + n);
                let name = &template[i + 1..name_end];
                match lookup(name) {
                    Some(v) => out.push_str(&v),
                    None => unset.push(name.to_owned()),
                }
                i = name_end;
            }
            // Like Compose: a `$` not starting a variable is kept as is.
            _ => {
                out.push('$');
                i += 1;
            }
        }
    }
    Ok(out)
}

/// Index of the `}` closing the `${` whose content starts at `start`.
fn matching_brace(s: &str, start: usize) -> Option<usize> {
    let mut depth = 1usize;
    let b = s.as_bytes();
    let mut i = start;
    while i < b.len() {
        match b[i] {
            b'$' if b.get(i + 1) == Some(&b'{') => {
                depth += 1;
                i += 2;
                continue;
            }
            b'}' => {
                depth -= 1;
                if depth == 0 {
                    return Some(i);
                }
            }
            _ => {}
        }
        i += 1;
    }
    None
}

fn braced(
    inner: &str,
    whole: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
    unset: &mut Vec<String>,
) -> Result<String, InterpolateError> {
    let name_end = inner
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(inner.len());
    let name = &inner[..name_end];
    if name.is_empty() || name.as_bytes()[0].is_ascii_digit() {
        return Err(InterpolateError::Invalid(whole.to_owned()));
    }
    let rest = &inner[name_end..];
    let value = lookup(name);
    let (op, arg) = if rest.is_empty() {
        ("", "")
    } else if let Some(op) = [":-", ":?", ":+"]
        .into_iter()
        .find(|op| rest.starts_with(op))
    {
        (op, &rest[2..])
    } else if let Some(op) = ["-", "?", "+"].into_iter().find(|op| rest.starts_with(op)) {
        (op, &rest[1..])
    } else {
        return Err(InterpolateError::Invalid(whole.to_owned()));
    };
    let set_nonempty = value.as_deref().is_some_and(|v| !v.is_empty());
    match op {
        "" => match value {
            Some(v) => Ok(v),
            None => {
                unset.push(name.to_owned());
                Ok(String::new())
            }
        },
        ":-" if !set_nonempty => substitute(arg, lookup, unset),
        "-" if value.is_none() => substitute(arg, lookup, unset),
        ":-" | "-" => Ok(value.unwrap_or_default()),
        ":?" if !set_nonempty => Err(required(name, arg, lookup, unset)),
        "?" if value.is_none() => Err(required(name, arg, lookup, unset)),
        ":?" | "?" => Ok(value.unwrap_or_default()),
        ":+" if set_nonempty => substitute(arg, lookup, unset),
        "+" if value.is_some() => substitute(arg, lookup, unset),
        _ => Ok(String::new()),
    }
}

fn required(
    name: &str,
    arg: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
    unset: &mut Vec<String>,
) -> InterpolateError {
    let message = substitute(arg, lookup, unset).unwrap_or_else(|_| arg.to_owned());
    InterpolateError::Required {
        name: name.to_owned(),
        message,
    }
}

/// Interpolates every scalar value under `node` (the document root) in place. Unset
/// variables (without defaults) become empty strings and are reported once each in
/// `warnings`.
pub fn interpolate_tree(
    node: &mut Node,
    lookup: &dyn Fn(&str) -> Option<String>,
    warnings: &mut Vec<Diagnostic>,
) -> Result<(), Diagnostic> {
    walk(node, &mut Vec::new(), lookup, warnings)
}

/// A borrowed path segment: the field path is only built when something is reported.
enum Seg<'a> {
    Key(&'a str),
    Index(usize),
}

fn field_path(path: &[Seg<'_>]) -> FieldPath {
    FieldPath(
        path.iter()
            .map(|s| match s {
                Seg::Key(k) => Segment::Key((*k).to_owned()),
                Seg::Index(i) => Segment::Index(*i),
            })
            .collect(),
    )
}

fn walk<'a>(
    node: &'a mut Node,
    path: &mut Vec<Seg<'a>>,
    lookup: &dyn Fn(&str) -> Option<String>,
    warnings: &mut Vec<Diagnostic>,
) -> Result<(), Diagnostic> {
    match &mut node.value {
        Value::Scalar { text, .. } => {
            if text.contains('$') {
                let mut unset = Vec::new();
                let v = substitute(text, lookup, &mut unset).map_err(|e| {
                    Diagnostic::new(e)
                        .at(Some(node.loc.clone()))
                        .with_path(field_path(path))
                })?;
                for name in unset {
                    let warning = Kind::Warning(Warning::UnsetVariable(name));
                    if !warnings.iter().any(|w| *w.kind == warning) {
                        warnings.push(
                            Diagnostic::new(warning)
                                .at(Some(node.loc.clone()))
                                .with_path(field_path(path)),
                        );
                    }
                }
                *text = v;
            }
        }
        Value::Seq(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                path.push(Seg::Index(i));
                walk(item, path, lookup, warnings)?;
                path.pop();
            }
        }
        Value::Map(m) => {
            for (k, e) in m.iter_mut() {
                path.push(Seg::Key(k.as_str()));
                walk(&mut e.value, path, lookup, warnings)?;
                path.pop();
            }
        }
        Value::Null => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn run(t: &str) -> Result<String, InterpolateError> {
        let env: HashMap<&str, &str> = [("A", "a"), ("EMPTY", ""), ("N", "5")]
            .into_iter()
            .collect();
        let lookup = move |k: &str| env.get(k).map(|v| (*v).to_owned());
        substitute(t, &lookup, &mut Vec::new())
    }

    #[test]
    fn all_forms() {
        assert_eq!(run("x$A-${A}").unwrap(), "xa-a");
        assert_eq!(
            run("${UNSET:-d}|${EMPTY:-d}|${EMPTY-d}|${UNSET-d}").unwrap(),
            "d|d||d"
        );
        assert_eq!(
            run("${A:+alt}|${EMPTY:+alt}|${EMPTY+alt}|${UNSET+alt}").unwrap(),
            "alt||alt|"
        );
        assert_eq!(run("${UNSET:-${A}-${UNSET2:-z}}").unwrap(), "a-z");
        assert_eq!(run("$$A costs $$5").unwrap(), "$A costs $5");
        assert_eq!(run("${A:?boom}").unwrap(), "a");
        assert_eq!(run("$UNSET").unwrap(), "");
    }

    #[test]
    fn errors() {
        assert_eq!(
            run("${UNSET:?please set it}").unwrap_err(),
            InterpolateError::Required {
                name: "UNSET".into(),
                message: "please set it".into()
            }
        );
        assert!(matches!(run("${EMPTY?x}"), Ok(s) if s.is_empty()));
        assert!(matches!(
            run("${EMPTY:?x}"),
            Err(InterpolateError::Required { .. })
        ));
        assert_eq!(run("cost $5 $ a$ $-x").unwrap(), "cost $5 $ a$ $-x");
        assert!(matches!(run("${A"), Err(InterpolateError::Invalid(_))));
        assert!(matches!(run("${A!}"), Err(InterpolateError::Invalid(_))));
    }

    #[test]
    fn unset_names_are_reported() {
        let lookup = |_: &str| None;
        let mut unset = Vec::new();
        substitute("$X ${Y} ${Z:-d}", &lookup, &mut unset).unwrap();
        assert_eq!(unset, vec!["X".to_owned(), "Y".to_owned()]);
    }
}
