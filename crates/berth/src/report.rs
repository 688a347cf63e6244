//! Printing stack-file diagnostics at the edge, with a source snippet.
//!
//! ```text
//! error: unknown key `prots` (did you mean `ports`?)
//!   --> compose.yaml:4:5
//!    |
//!  4 |     prots: ["80"]
//!    |     ^^^^^ at services.web.prots
//! ```

use std::fmt::Write;

use berth_compose::{Diagnostic, Diagnostics};

/// Renders one diagnostic with a snippet of its file (when it can be read).
pub fn render(kind: &str, d: &Diagnostic) -> String {
    let mut out = format!("{kind}: {}\n", d.message);
    let Some(loc) = &d.location else {
        if !d.path.is_root() {
            let _ = writeln!(out, "   = at {}", d.path);
        }
        if let Some(e) = &d.expected {
            let _ = writeln!(out, "   = expected {e}");
        }
        return out;
    };
    let _ = writeln!(out, "  --> {loc}");
    let line_text = std::fs::read_to_string(&*loc.file).ok().and_then(|t| {
        t.lines()
            .nth(loc.line.saturating_sub(1) as usize)
            .map(str::to_owned)
    });
    let number = loc.line.to_string();
    let gutter = " ".repeat(number.len());
    match line_text {
        Some(text) => {
            let _ = writeln!(out, " {gutter} |");
            let _ = writeln!(out, " {number} | {text}");
            let col = loc.column.saturating_sub(1) as usize;
            let rest: String = text.chars().skip(col).collect();
            let width = token_width(&rest).max(1);
            let mut note = String::new();
            if let Some(e) = &d.expected {
                let _ = write!(note, " expected {e}");
                if !d.path.is_root() {
                    let _ = write!(note, " at {}", d.path);
                }
            } else if !d.path.is_root() {
                let _ = write!(note, " at {}", d.path);
            }
            let _ = writeln!(
                out,
                " {gutter} | {}{}{note}",
                " ".repeat(col),
                "^".repeat(width)
            );
        }
        None => {
            if !d.path.is_root() {
                let _ = writeln!(out, "   = at {}", d.path);
            }
            if let Some(e) = &d.expected {
                let _ = writeln!(out, "   = expected {e}");
            }
        }
    }
    out
}

/// Width of the token starting a line remainder: a quoted string, or up to the next
/// space, `:`, `,` or bracket.
fn token_width(rest: &str) -> usize {
    let mut chars = rest.chars();
    match chars.next() {
        Some(q @ ('"' | '\'')) => chars
            .position(|c| c == q)
            .map_or(rest.chars().count(), |p| p + 2),
        Some(open @ ('[' | '{')) => {
            let close = if open == '[' { ']' } else { '}' };
            let mut depth = 0usize;
            for (i, c) in rest.chars().enumerate() {
                if c == open {
                    depth += 1;
                } else if c == close {
                    depth = depth.saturating_sub(1);
                    if depth == 0 {
                        return i + 1;
                    }
                }
            }
            rest.chars().count()
        }
        Some(_) => rest
            .chars()
            .position(|c| c.is_whitespace() || matches!(c, ':' | ',' | ']' | '}' | '#'))
            .unwrap_or(rest.chars().count()),
        None => 1,
    }
}

/// Prints every diagnostic to stderr.
pub fn print_diagnostics(ds: &Diagnostics) {
    for d in ds.iter() {
        eprint!("{}", render("error", d));
    }
}

/// Prints a warning to stderr.
pub fn print_warning(d: &Diagnostic) {
    eprint!("{}", render("warning", d));
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_compose::{FieldPath, Location};

    #[test]
    fn token_widths() {
        assert_eq!(token_width("[1, [2]] # c"), 8);
        assert_eq!(token_width("{a: 1}"), 6);
        assert_eq!(token_width("\"x y\": 1"), 5);
        assert_eq!(token_width("ports:"), 5);
    }

    #[test]
    fn snippet_points_at_the_token() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("compose.yaml");
        std::fs::write(&f, "services:\n  web:\n    prots: [\"80\"]\n").unwrap();
        let d = Diagnostic::new(berth_compose::decode::DecodeError::UnknownKey {
            key: "prots".into(),
            suggestion: Some("ports".into()),
        })
        .at(Some(Location {
            file: std::sync::Arc::from(f.as_path()),
            line: 3,
            column: 5,
        }))
        .with_path(FieldPath::keys(&["services", "web", "prots"]));
        let out = render("error", &d);
        let expected = format!(
            "error: unknown key `prots` (did you mean `ports`?)\n  --> {}:3:5\n   |\n 3 |     prots: [\"80\"]\n   |     ^^^^^ at services.web.prots\n",
            f.display()
        );
        assert_eq!(out, expected);
    }
}
