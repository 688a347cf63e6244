//! Variable substitution and quote removal in instruction arguments.
//!
//! Follows the Dockerfile reference's "Environment replacement": `$V`, `${V}`,
//! `${V:-word}` (word if V is unset or empty), `${V-word}` (if unset), `${V:+word}`
//! (word if V is set and non-empty), `${V+word}` (if set), `${V:?msg}` / `${V?msg}`
//! (error). Single quotes keep text literal, double quotes allow substitution, the escape
//! character makes the next character literal (`\$V` is `$V`).

/// Why an argument could not be expanded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SubstituteError {
    /// A `${` without its `}`.
    #[error("missing '}}' in {text:?}")]
    UnclosedBrace {
        /// The whole word.
        text: String,
    },
    /// `${}` or `${1x}`.
    #[error("bad substitution in {text:?}")]
    BadSubstitution {
        /// The whole word.
        text: String,
    },
    /// A modifier other than `-`, `+`, `?` (optionally after `:`).
    #[error("unsupported modifier {modifier:?} in ${{{name}...}}")]
    UnsupportedModifier {
        /// The variable.
        name: String,
        /// The modifier text.
        modifier: String,
    },
    /// `${V:?message}` with V unset (or empty).
    #[error("{name}: {message}")]
    Required {
        /// The variable.
        name: String,
        /// The message after `?`.
        message: String,
    },
    /// A quote without its closing quote.
    #[error("unterminated quote in {text:?}")]
    UnterminatedQuote {
        /// The whole word.
        text: String,
    },
}

/// Where variables are looked up.
pub trait Lookup {
    /// The value of `name`, `None` when unset.
    fn get(&self, name: &str) -> Option<&str>;
}

impl Lookup for std::collections::BTreeMap<String, String> {
    fn get(&self, name: &str) -> Option<&str> {
        std::collections::BTreeMap::get(self, name).map(String::as_str)
    }
}

/// A simple ordered set of variables (later entries win).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Vars(pub Vec<(String, String)>);

impl Vars {
    /// Sets `name` to `value`, replacing an earlier value.
    pub fn set(&mut self, name: &str, value: &str) {
        match self.0.iter_mut().find(|(n, _)| n == name) {
            Some(entry) => entry.1 = value.to_string(),
            None => self.0.push((name.to_string(), value.to_string())),
        }
    }
}

impl Lookup for Vars {
    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

struct Lexer<'a, L: Lookup + ?Sized> {
    chars: Vec<char>,
    pos: usize,
    escape: char,
    vars: &'a L,
    text: &'a str,
}

impl<L: Lookup + ?Sized> Lexer<'_, L> {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    /// Reads one word; stops at unquoted whitespace when `split`, or at `stop` (for `${..}`).
    fn word(&mut self, split: bool, stop: Option<char>) -> Result<String, SubstituteError> {
        let mut out = String::new();
        while let Some(c) = self.peek() {
            if split && c.is_whitespace() {
                break;
            }
            if Some(c) == stop {
                break;
            }
            self.pos += 1;
            if c == self.escape {
                match self.peek() {
                    Some(n) => {
                        out.push(n);
                        self.pos += 1;
                    }
                    None => out.push(c),
                }
            } else if c == '\'' {
                self.single_quoted(&mut out)?;
            } else if c == '"' {
                self.double_quoted(&mut out)?;
            } else if c == '$' {
                self.dollar(&mut out)?;
            } else {
                out.push(c);
            }
        }
        Ok(out)
    }

    fn single_quoted(&mut self, out: &mut String) -> Result<(), SubstituteError> {
        loop {
            match self.peek() {
                None => {
                    return Err(SubstituteError::UnterminatedQuote {
                        text: self.text.to_string(),
                    });
                }
                Some('\'') => {
                    self.pos += 1;
                    return Ok(());
                }
                Some(c) => {
                    out.push(c);
                    self.pos += 1;
                }
            }
        }
    }

    fn double_quoted(&mut self, out: &mut String) -> Result<(), SubstituteError> {
        loop {
            match self.peek() {
                None => {
                    return Err(SubstituteError::UnterminatedQuote {
                        text: self.text.to_string(),
                    });
                }
                Some('"') => {
                    self.pos += 1;
                    return Ok(());
                }
                Some('$') => {
                    self.pos += 1;
                    self.dollar(out)?;
                }
                Some(c) if c == self.escape => {
                    self.pos += 1;
                    match self.peek() {
                        Some(n @ ('"' | '$')) => {
                            out.push(n);
                            self.pos += 1;
                        }
                        Some(n) if n == self.escape => {
                            out.push(n);
                            self.pos += 1;
                        }
                        _ => out.push(c),
                    }
                }
                Some(c) => {
                    out.push(c);
                    self.pos += 1;
                }
            }
        }
    }

    fn name(&mut self) -> String {
        let mut name = String::new();
        while let Some(c) = self.peek() {
            let ok = if name.is_empty() {
                c.is_ascii_alphabetic() || c == '_'
            } else {
                c.is_ascii_alphanumeric() || c == '_'
            };
            if !ok {
                break;
            }
            name.push(c);
            self.pos += 1;
        }
        name
    }

    /// After a `$`: a variable, `${...}`, or a literal `$`.
    fn dollar(&mut self, out: &mut String) -> Result<(), SubstituteError> {
        if self.peek() != Some('{') {
            let name = self.name();
            if name.is_empty() {
                out.push('$');
            } else if let Some(v) = self.vars.get(&name) {
                out.push_str(v);
            }
            return Ok(());
        }
        self.pos += 1;
        let name = self.name();
        if name.is_empty() {
            return Err(SubstituteError::BadSubstitution {
                text: self.text.to_string(),
            });
        }
        let value = self.vars.get(&name).map(str::to_string);
        match self.peek() {
            Some('}') => {
                self.pos += 1;
                out.push_str(value.as_deref().unwrap_or(""));
                return Ok(());
            }
            None => {
                return Err(SubstituteError::UnclosedBrace {
                    text: self.text.to_string(),
                });
            }
            _ => {}
        }
        let colon = self.peek() == Some(':');
        if colon {
            self.pos += 1;
        }
        let modifier = self.peek();
        self.pos += 1;
        let word = self.word(false, Some('}'))?;
        if self.peek() != Some('}') {
            return Err(SubstituteError::UnclosedBrace {
                text: self.text.to_string(),
            });
        }
        self.pos += 1;
        let set = value.is_some();
        let non_empty = value.as_deref().is_some_and(|v| !v.is_empty());
        let present = if colon { non_empty } else { set };
        match modifier {
            Some('-') => out.push_str(if present {
                value.as_deref().unwrap_or("")
            } else {
                &word
            }),
            Some('+') => {
                if present {
                    out.push_str(&word)
                }
            }
            Some('?') => {
                if !present {
                    return Err(SubstituteError::Required {
                        name,
                        message: if word.is_empty() {
                            "is not set".into()
                        } else {
                            word
                        },
                    });
                }
                out.push_str(value.as_deref().unwrap_or(""));
            }
            other => {
                return Err(SubstituteError::UnsupportedModifier {
                    name,
                    modifier: format!("{}{}", if colon { ":" } else { "" }, other.unwrap_or(' ')),
                });
            }
        }
        Ok(())
    }
}

/// Expands variables and removes quotes in one word (whitespace is kept).
pub fn expand_word<L: Lookup + ?Sized>(
    text: &str,
    escape: char,
    vars: &L,
) -> Result<String, SubstituteError> {
    let mut lx = Lexer {
        chars: text.chars().collect(),
        pos: 0,
        escape,
        vars,
        text,
    };
    lx.word(false, None)
}

/// Expands variables and removes quotes, splitting on whitespace outside quotes.
/// Whitespace produced by a variable's value does not split (as in Docker).
pub fn expand_words<L: Lookup + ?Sized>(
    text: &str,
    escape: char,
    vars: &L,
) -> Result<Vec<String>, SubstituteError> {
    let mut lx = Lexer {
        chars: text.chars().collect(),
        pos: 0,
        escape,
        vars,
        text,
    };
    let mut words = Vec::new();
    loop {
        while lx.peek().is_some_and(char::is_whitespace) {
            lx.pos += 1;
        }
        if lx.peek().is_none() {
            return Ok(words);
        }
        words.push(lx.word(true, None)?);
    }
}

/// Expands `$V` and `${V...}` in a here-document body; quotes are kept as written and
/// only `\$` and `\\` are escapes (as a shell does for an unquoted here-document).
pub fn expand_heredoc<L: Lookup + ?Sized>(text: &str, vars: &L) -> Result<String, SubstituteError> {
    let mut lx = Lexer {
        chars: text.chars().collect(),
        pos: 0,
        escape: '\\',
        vars,
        text,
    };
    let mut out = String::new();
    while let Some(c) = lx.peek() {
        lx.pos += 1;
        match c {
            '\\' => match lx.peek() {
                Some(n @ ('$' | '\\')) => {
                    out.push(n);
                    lx.pos += 1;
                }
                _ => out.push(c),
            },
            '$' => lx.dollar(&mut out)?,
            c => out.push(c),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars() -> Vars {
        Vars(vec![
            ("A".into(), "alpha".into()),
            ("E".into(), "".into()),
            ("SP".into(), "a b".into()),
        ])
    }

    fn x(s: &str) -> String {
        expand_word(s, '\\', &vars()).unwrap()
    }

    #[test]
    fn plain_and_braced_variables() {
        assert_eq!(x("$A"), "alpha");
        assert_eq!(x("${A}"), "alpha");
        assert_eq!(x("x${A}y"), "xalphay");
        assert_eq!(x("$A-1"), "alpha-1");
        assert_eq!(x("$NOPE."), ".");
        assert_eq!(x("$"), "$");
        assert_eq!(x("$1"), "$1");
        assert_eq!(x("a$"), "a$");
    }

    #[test]
    fn default_and_alternative_modifiers() {
        assert_eq!(x("${A:-d}"), "alpha");
        assert_eq!(x("${E:-d}"), "d");
        assert_eq!(x("${U:-d}"), "d");
        assert_eq!(x("${E-d}"), "");
        assert_eq!(x("${U-d}"), "d");
        assert_eq!(x("${A:+w}"), "w");
        assert_eq!(x("${E:+w}"), "");
        assert_eq!(x("${E+w}"), "w");
        assert_eq!(x("${U+w}"), "");
        assert_eq!(x("${U:-$A}"), "alpha");
        assert_eq!(x("${U:-${E:-deep}}"), "deep");
        assert_eq!(x("${U:-a b}"), "a b");
    }

    #[test]
    fn required_modifier_errors() {
        assert_eq!(
            expand_word("${U:?need it}", '\\', &vars()),
            Err(SubstituteError::Required {
                name: "U".into(),
                message: "need it".into()
            })
        );
        assert_eq!(x("${E?m}"), "");
        assert!(expand_word("${E:?}", '\\', &vars()).is_err());
    }

    #[test]
    fn quotes_and_escapes() {
        assert_eq!(x("'$A'"), "$A");
        assert_eq!(x("\"$A\""), "alpha");
        assert_eq!(x("\"a \\\" b\""), "a \" b");
        assert_eq!(x("\\$A"), "$A");
        assert_eq!(x("a\\ b"), "a b");
        assert_eq!(x("\"\\n\""), "\\n");
        assert_eq!(expand_word("`$A", '`', &vars()).unwrap(), "$A");
    }

    #[test]
    fn malformed_substitutions() {
        let v = vars();
        assert!(matches!(
            expand_word("${A", '\\', &v),
            Err(SubstituteError::UnclosedBrace { .. })
        ));
        assert!(matches!(
            expand_word("${}", '\\', &v),
            Err(SubstituteError::BadSubstitution { .. })
        ));
        assert!(matches!(
            expand_word("${A%x}", '\\', &v),
            Err(SubstituteError::UnsupportedModifier { .. })
        ));
        assert!(matches!(
            expand_word("'a", '\\', &v),
            Err(SubstituteError::UnterminatedQuote { .. })
        ));
    }

    #[test]
    fn heredoc_bodies_keep_quotes() {
        let v = vars();
        assert_eq!(
            expand_heredoc("echo \"$A\" '${U:-d}' \\$A\n", &v).unwrap(),
            "echo \"alpha\" 'd' $A\n"
        );
    }

    #[test]
    fn words_split_outside_quotes_only() {
        let v = vars();
        assert_eq!(
            expand_words("a \"b c\" $SP 'd'", '\\', &v).unwrap(),
            vec!["a", "b c", "a b", "d"]
        );
        assert_eq!(expand_words("  ", '\\', &v).unwrap(), Vec::<String>::new());
    }
}
