//! `.dockerignore` patterns with Docker's rules (moby's `patternmatcher`).
//!
//! * One pattern per line; lines starting with `#` are comments; blank lines are skipped.
//! * Patterns are cleaned like Go's `filepath.Clean` (`./a//b/` → `a/b`), and a leading
//!   `/` is dropped: every pattern is anchored at the context root.
//! * Matching is Go's `filepath.Match` (`*` and `?` never cross `/`, `[a-z]`, `[^a]`,
//!   `\` escapes) plus `**`, which matches any number of directories (including none).
//! * A pattern that matches a directory excludes everything below it.
//! * `!pattern` re-includes; the last pattern that matches a path decides.

use std::path::Path;

/// Why a `.dockerignore` could not be used.
#[derive(Debug, thiserror::Error)]
pub enum DockerIgnoreError {
    /// The file exists but could not be read.
    #[error("reading {path}")]
    Read {
        /// The file.
        path: std::path::PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A pattern with an unclosed `[` or a trailing `\`.
    #[error(".dockerignore line {line}: bad pattern {pattern:?}")]
    BadPattern {
        /// 1-based line in the file.
        line: usize,
        /// The pattern as written.
        pattern: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Char(char),
    /// `?`: one char other than `/`.
    One,
    /// `*`: any run of chars without `/`.
    Star,
    /// `**` at the end: anything.
    All,
    /// `**` elsewhere (`**/` included): nothing, or anything ending with `/`.
    Dirs,
    /// `[...]`: ranges, negated when written `[^...]`.
    Class(Vec<(char, char)>, bool),
}

/// One compiled pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern {
    /// The cleaned pattern text (without `!`).
    pub text: String,
    /// Written with `!`: re-includes what it matches.
    pub exception: bool,
    tokens: Vec<Token>,
}

/// Go's `filepath.Clean` for slash paths.
pub fn clean(path: &str) -> String {
    let rooted = path.starts_with('/');
    let mut out: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if out.last().is_some_and(|p| *p != "..") {
                    out.pop();
                } else if !rooted {
                    out.push("..");
                }
            }
            p => out.push(p),
        }
    }
    let joined = out.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".to_string(),
        (false, false) => joined,
    }
}

fn compile(pattern: &str) -> Option<Vec<Token>> {
    let chars: Vec<char> = pattern.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        i += 1;
        match c {
            '*' if chars.get(i) == Some(&'*') => {
                i += 1;
                if chars.get(i) == Some(&'/') {
                    i += 1;
                }
                tokens.push(if i >= chars.len() {
                    Token::All
                } else {
                    Token::Dirs
                });
            }
            '*' => tokens.push(Token::Star),
            '?' => tokens.push(Token::One),
            '\\' => {
                tokens.push(Token::Char(*chars.get(i)?));
                i += 1;
            }
            '[' => {
                let negated = chars.get(i) == Some(&'^');
                if negated {
                    i += 1;
                }
                let mut ranges = Vec::new();
                loop {
                    let mut lo = *chars.get(i)?;
                    i += 1;
                    if lo == ']' && !ranges.is_empty() {
                        break;
                    }
                    if lo == '\\' {
                        lo = *chars.get(i)?;
                        i += 1;
                    }
                    let mut hi = lo;
                    if chars.get(i) == Some(&'-') && chars.get(i + 1).is_some_and(|c| *c != ']') {
                        hi = chars[i + 1];
                        i += 2;
                        if hi == '\\' {
                            hi = *chars.get(i)?;
                            i += 1;
                        }
                    }
                    ranges.push((lo, hi));
                }
                tokens.push(Token::Class(ranges, negated));
            }
            c => tokens.push(Token::Char(c)),
        }
    }
    Some(tokens)
}

fn matches(tokens: &[Token], s: &[char]) -> bool {
    let Some((first, rest)) = tokens.split_first() else {
        return s.is_empty();
    };
    match first {
        Token::Char(c) => s.first() == Some(c) && matches(rest, &s[1..]),
        Token::One => s.first().is_some_and(|c| *c != '/') && matches(rest, &s[1..]),
        Token::Class(ranges, negated) => {
            s.first().is_some_and(|c| {
                *c != '/' && ranges.iter().any(|(lo, hi)| lo <= c && c <= hi) != *negated
            }) && matches(rest, &s[1..])
        }
        Token::Star => {
            let run = s.iter().take_while(|c| **c != '/').count();
            (0..=run).any(|n| matches(rest, &s[n..]))
        }
        Token::All => true,
        Token::Dirs => {
            matches(rest, s)
                || s.iter()
                    .enumerate()
                    .filter(|(_, c)| **c == '/')
                    .any(|(i, _)| matches(rest, &s[i + 1..]))
        }
    }
}

impl Pattern {
    /// Compiles one line of a `.dockerignore` (already trimmed, `#` lines removed).
    /// `None` for a blank line; `Err(())` for a malformed pattern.
    #[allow(clippy::result_unit_err)]
    pub fn new(line: &str) -> Result<Option<Self>, ()> {
        let mut p = line.trim();
        let exception = p.starts_with('!');
        if exception {
            p = p[1..].trim();
        }
        if p.is_empty() {
            return Ok(None);
        }
        let mut text = clean(p);
        if text.len() > 1 && text.starts_with('/') {
            text.remove(0);
        }
        let tokens = compile(&text).ok_or(())?;
        Ok(Some(Self {
            text,
            exception,
            tokens,
        }))
    }

    /// Whether the pattern matches `path` itself (a cleaned, relative slash path).
    pub fn matches(&self, path: &str) -> bool {
        let chars: Vec<char> = path.chars().collect();
        matches(&self.tokens, &chars)
    }

    /// Whether the pattern matches `path` or one of its parent directories.
    pub fn matches_or_parent(&self, path: &str) -> bool {
        if self.matches(path) {
            return true;
        }
        let mut end = 0;
        while let Some(i) = path[end..].find('/') {
            end += i;
            if self.matches(&path[..end]) {
                return true;
            }
            end += 1;
        }
        false
    }
}

/// The patterns of a `.dockerignore`, in file order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DockerIgnore {
    /// The patterns.
    pub patterns: Vec<Pattern>,
}

impl DockerIgnore {
    /// Parses the text of a `.dockerignore`.
    pub fn parse(text: &str) -> Result<Self, DockerIgnoreError> {
        let mut patterns = Vec::new();
        for (n, line) in text.lines().enumerate() {
            if line.starts_with('#') {
                continue;
            }
            match Pattern::new(line) {
                Ok(Some(p)) => patterns.push(p),
                Ok(None) => {}
                Err(()) => {
                    return Err(DockerIgnoreError::BadPattern {
                        line: n + 1,
                        pattern: line.to_string(),
                    });
                }
            }
        }
        Ok(Self { patterns })
    }

    /// Reads `<context>/.dockerignore`; no file means no patterns.
    pub fn read(context: &Path) -> Result<Self, DockerIgnoreError> {
        let path = context.join(".dockerignore");
        match std::fs::read_to_string(&path) {
            Ok(text) => Self::parse(&text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(source) => Err(DockerIgnoreError::Read { path, source }),
        }
    }

    /// Whether `path` (relative to the context root, slash separated) is excluded.
    pub fn is_excluded(&self, path: &str) -> bool {
        let path = clean(path);
        let mut excluded = false;
        for p in &self.patterns {
            // Only a pattern that could flip the current answer needs evaluating.
            if p.exception != excluded {
                continue;
            }
            if p.matches_or_parent(&path) {
                excluded = !p.exception;
            }
        }
        excluded
    }

    /// Whether any `!` pattern exists (then excluded directories must still be walked).
    pub fn has_exceptions(&self) -> bool {
        self.patterns.iter().any(|p| p.exception)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ignore(text: &str) -> DockerIgnore {
        DockerIgnore::parse(text).unwrap()
    }

    #[test]
    fn clean_like_go() {
        assert_eq!(clean("./a//b/"), "a/b");
        assert_eq!(clean("a/../b"), "b");
        assert_eq!(clean("../a"), "../a");
        assert_eq!(clean("/../a"), "/a");
        assert_eq!(clean(""), ".");
        assert_eq!(clean("/"), "/");
    }

    #[test]
    fn star_and_question_mark_stay_within_a_directory() {
        let i = ignore("*.md\nsrc/?.rs\n");
        assert!(i.is_excluded("README.md"));
        assert!(!i.is_excluded("docs/README.md"));
        assert!(i.is_excluded("src/a.rs"));
        assert!(!i.is_excluded("src/ab.rs"));
        assert!(!i.is_excluded("src/x/a.rs"));
    }

    #[test]
    fn double_star_crosses_directories() {
        let i = ignore("**/*.go\n");
        assert!(i.is_excluded("a.go"));
        assert!(i.is_excluded("x/y/z.go"));
        assert!(!i.is_excluded("x/y/z.rs"));
        let all = ignore("docs/**\n");
        assert!(all.is_excluded("docs/a/b"));
        // As in moby: `docs/**` needs something below docs.
        assert!(!all.is_excluded("docs"));
        let mid = ignore("a/**/b\n");
        assert!(mid.is_excluded("a/b"));
        assert!(mid.is_excluded("a/x/y/b"));
        assert!(!mid.is_excluded("a/xb"));
    }

    #[test]
    fn directories_exclude_their_contents() {
        let i = ignore("node_modules\n/build/\n./tmp\n");
        assert!(i.is_excluded("node_modules/x/y.js"));
        assert!(i.is_excluded("build/out.o"));
        assert!(i.is_excluded("tmp"));
        // Anchored at the root: a nested node_modules is not excluded.
        assert!(!i.is_excluded("web/node_modules/x.js"));
    }

    #[test]
    fn exceptions_and_last_match_wins() {
        let i = ignore("*.md\n!README.md\n");
        assert!(i.is_excluded("CHANGES.md"));
        assert!(!i.is_excluded("README.md"));
        let j = ignore("!README.md\n*.md\n");
        assert!(j.is_excluded("README.md"));
        let k = ignore("docs\n!docs/keep.md\n");
        assert!(k.is_excluded("docs/drop.md"));
        assert!(!k.is_excluded("docs/keep.md"));
        assert!(k.has_exceptions());
    }

    #[test]
    fn classes_escapes_comments_and_blanks() {
        let i = ignore("# comment\n\n  \nfile[0-9].txt\nx[^a].c\nlit\\*\n");
        assert_eq!(i.patterns.len(), 3);
        assert!(i.is_excluded("file7.txt"));
        assert!(!i.is_excluded("filex.txt"));
        assert!(i.is_excluded("xb.c"));
        assert!(!i.is_excluded("xa.c"));
        assert!(i.is_excluded("lit*"));
        assert!(!i.is_excluded("litx"));
    }

    #[test]
    fn bad_patterns_name_their_line() {
        assert!(matches!(
            DockerIgnore::parse("ok\n[abc\n"),
            Err(DockerIgnoreError::BadPattern { line: 2, .. })
        ));
        assert!(matches!(
            DockerIgnore::parse("trail\\\n"),
            Err(DockerIgnoreError::BadPattern { line: 1, .. })
        ));
    }

    #[test]
    fn missing_file_means_nothing_ignored() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(
            DockerIgnore::read(dir.path()).unwrap(),
            DockerIgnore::default()
        );
        std::fs::write(dir.path().join(".dockerignore"), "*.log\n").unwrap();
        assert!(DockerIgnore::read(dir.path()).unwrap().is_excluded("a.log"));
    }
}
