//! A small YAML writer for the canonical model (block style, 2-space indent, strings
//! quoted only when a YAML reader would otherwise see another type or syntax), in the
//! layout `docker compose config` prints.

use std::fmt::Write;

use serde_json::Value;

/// Renders `v` as a YAML document.
pub fn to_yaml(v: &Value) -> String {
    let mut out = String::new();
    match v {
        Value::Object(m) if !m.is_empty() => write_map(&mut out, m, 0),
        Value::Array(a) if !a.is_empty() => write_seq(&mut out, a, 0),
        other => {
            out.push_str(&scalar(other));
            out.push('\n');
        }
    }
    out
}

fn pad(out: &mut String, n: usize) {
    for _ in 0..n {
        out.push(' ');
    }
}

fn write_map(out: &mut String, m: &serde_json::Map<String, Value>, indent: usize) {
    let mut first = true;
    for (k, v) in m {
        if !first {
            pad(out, indent);
        }
        first = false;
        out.push_str(&quote(k));
        out.push(':');
        write_value_after_key(out, v, indent);
    }
}

fn write_value_after_key(out: &mut String, v: &Value, indent: usize) {
    match v {
        Value::Object(m) if !m.is_empty() => {
            out.push('\n');
            pad(out, indent + 2);
            write_map(out, m, indent + 2);
        }
        Value::Array(a) if !a.is_empty() => {
            out.push('\n');
            pad(out, indent + 2);
            write_seq(out, a, indent + 2);
        }
        other => {
            out.push(' ');
            out.push_str(&scalar_at(other, indent + 2));
            out.push('\n');
        }
    }
}

fn write_seq(out: &mut String, a: &[Value], indent: usize) {
    let mut first = true;
    for item in a {
        if !first {
            pad(out, indent);
        }
        first = false;
        out.push_str("- ");
        match item {
            Value::Object(m) if !m.is_empty() => write_map(out, m, indent + 2),
            Value::Array(inner) if !inner.is_empty() => write_seq(out, inner, indent + 2),
            other => {
                out.push_str(&scalar_at(other, indent + 2));
                out.push('\n');
            }
        }
    }
}

/// A scalar whose continuation lines (block strings) are indented by `indent`.
fn scalar_at(v: &Value, indent: usize) -> String {
    if let Value::String(s) = v
        && let Some(block) = literal_block(s, indent)
    {
        return block;
    }
    scalar(v)
}

/// Multi-line strings as YAML literal blocks (`|`, `|-`, `|+`), when that is exact.
fn literal_block(s: &str, indent: usize) -> Option<String> {
    if !s.contains('\n')
        || s.starts_with([' ', '\n'])
        || s.chars().any(|c| c.is_control() && c != '\n')
    {
        return None;
    }
    if s.lines().any(|l| l.ends_with(' ')) {
        return None;
    }
    let body = s.trim_end_matches('\n');
    let trailing = s.len() - body.len();
    let chomp = match trailing {
        0 => "-",
        1 => "",
        _ => "+",
    };
    let mut out = format!("|{chomp}");
    for line in body.split('\n') {
        out.push('\n');
        if !line.is_empty() {
            out.push_str(&" ".repeat(indent));
            out.push_str(line);
        }
    }
    for _ in 1..trailing {
        out.push('\n');
    }
    Some(out)
}

fn scalar(v: &Value) -> String {
    match v {
        Value::Null => "null".to_owned(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => quote(s),
        Value::Array(_) => "[]".to_owned(),
        Value::Object(_) => "{}".to_owned(),
    }
}

/// True when a plain (unquoted) `s` would be read back as something other than this string.
fn needs_quotes(s: &str) -> bool {
    if s.is_empty() || s.trim() != s {
        return true;
    }
    let lower = s.to_ascii_lowercase();
    if matches!(
        lower.as_str(),
        "null"
            | "~"
            | "true"
            | "false"
            | "yes"
            | "no"
            | "on"
            | "off"
            | "y"
            | "n"
            | ".inf"
            | "-.inf"
            | "+.inf"
            | ".nan"
    ) {
        return true;
    }
    let first = s.chars().next().unwrap_or(' ');
    if "?:,[]{}#&*!|>'\"%@`".contains(first) {
        return true;
    }
    if let Some(rest) = s.strip_prefix('-') {
        // `-` alone or before a space starts a sequence item; `-1`, `-.5` are numbers;
        // `---` starts a document. `-c` is a plain string.
        if rest.is_empty()
            || rest.starts_with([' ', '-', '.'])
            || rest.starts_with(|c: char| c.is_ascii_digit())
        {
            return true;
        }
    }
    if first.is_ascii_digit() || first == '+' || first == '.' {
        // Anything number-like (ints, floats, octal, hex, sexagesimal, dates) gets quotes.
        if s.chars()
            .all(|c| c.is_ascii_hexdigit() || "+-._:xXoO".contains(c))
        {
            return true;
        }
    }
    s.contains(": ") || s.contains(" #") || s.ends_with(':') || s.chars().any(|c| c.is_control())
}

fn quote(s: &str) -> String {
    if !needs_quotes(s) {
        return s.to_owned();
    }
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn layout_matches_compose() {
        let v = json!({"name": "p", "services": {"web": {
            "command": ["echo", "hi"], "environment": {"A": "1", "B": null},
            "ports": [{"mode": "ingress", "target": 80, "published": "8080"}],
            "volume": {}, "x": [], "t": "a: b", "e": ""}}});
        let y = to_yaml(&v);
        assert_eq!(
            y,
            "name: p\nservices:\n  web:\n    command:\n      - echo\n      - hi\n    environment:\n      A: \"1\"\n      B: null\n    ports:\n      - mode: ingress\n        target: 80\n        published: \"8080\"\n    volume: {}\n    x: []\n    t: \"a: b\"\n    e: \"\"\n"
        );
    }

    #[test]
    fn round_trips_through_our_parser() {
        let v = json!({"a": ["-x", "yes", "1.5", "0440", "line\nbreak", "#c", "ok text", "x: y", "tab\there", "é",
            "two\nlines\n", "keep\n\n", " lead\n", "x\n\n  y\n"], "b": [[1, 2], {"c": [true], "d": "a\nb"}]});
        let y = to_yaml(&v);
        let node = crate::source::parse(&y, std::path::Path::new("x")).unwrap();
        let back: Value = crate::decode::from_node_plain(&node, &crate::FieldPath::root()).unwrap();
        assert_eq!(back, v);
    }
}
