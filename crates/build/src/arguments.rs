//! Parsing each instruction's arguments: flags, exec/shell form, key=value pairs,
//! COPY/ADD sources, HEALTHCHECK options. Errors carry the char offset in the text.

use std::time::Duration;

use crate::diagnostic::ParseError;
use crate::instruction::{
    ArgDecl, Command, Copy, From, Healthcheck, Heredoc, Instruction, KeyValue, Run, Source,
};
use crate::mount::{Mount, NetworkMode};
use crate::words::{RawFlag, RawWord, byte_index, json_array, split_words, take_flags, unquote};

/// An error at a char offset of the argument text.
pub(crate) type ArgError = (usize, ParseError);

/// Checks flags against those `instruction` accepts; `multi` ones may repeat.
fn check_flags(
    instruction: &'static str,
    flags: &[RawFlag],
    allowed: &[&str],
    multi: &[&str],
) -> Result<(), ArgError> {
    for (i, f) in flags.iter().enumerate() {
        if !allowed.contains(&f.name.as_str()) {
            return Err((
                f.offset,
                ParseError::UnknownFlag {
                    instruction,
                    flag: f.name.clone(),
                },
            ));
        }
        if !multi.contains(&f.name.as_str()) && flags[..i].iter().any(|p| p.name == f.name) {
            return Err((
                f.offset,
                ParseError::DuplicateFlag {
                    flag: f.name.clone(),
                },
            ));
        }
    }
    Ok(())
}

fn flag_value(f: &RawFlag) -> Result<String, ArgError> {
    match &f.value {
        Some(v) if !v.is_empty() => Ok(unquote(v)),
        _ => Err((
            f.offset,
            ParseError::InvalidFlagValue {
                flag: f.name.clone(),
                reason: "needs a value".into(),
            },
        )),
    }
}

fn flag_bool(f: &RawFlag) -> Result<bool, ArgError> {
    match f.value.as_deref() {
        None | Some("true") => Ok(true),
        Some("false") => Ok(false),
        Some(v) => Err((
            f.offset,
            ParseError::InvalidFlagValue {
                flag: f.name.clone(),
                reason: format!("{v:?} is not true or false"),
            },
        )),
    }
}

fn find<'a>(flags: &'a [RawFlag], name: &str) -> Option<&'a RawFlag> {
    flags.iter().find(|f| f.name == name)
}

fn opt_value(flags: &[RawFlag], name: &str) -> Result<Option<String>, ArgError> {
    find(flags, name).map(flag_value).transpose()
}

/// The argument text of one instruction, ready to be parsed.
pub(crate) struct Args<'a> {
    /// Upper-case keyword.
    pub keyword: &'a str,
    /// Everything after the keyword, continuation lines joined.
    pub text: &'a str,
    /// The escape character.
    pub escape: char,
    /// Here-documents found on the line, in order.
    pub heredocs: Vec<Heredoc>,
}

/// Parses a `FROM` line's arguments.
pub(crate) fn parse_from(a: &Args<'_>) -> Result<From, ArgError> {
    let (flags, rest) = take_flags(a.text, a.escape)?;
    check_flags("FROM", &flags, &["platform"], &[])?;
    let platform = opt_value(&flags, "platform")?;
    let words = rest_words(a, rest)?;
    let name = match words.as_slice() {
        [_] => None,
        [_, as_kw, name] if as_kw.text.eq_ignore_ascii_case("as") => {
            Some(name.text.to_ascii_lowercase())
        }
        [] => return Err(missing(rest, "FROM", 1)),
        _ => {
            return Err((
                rest,
                ParseError::InvalidArguments {
                    instruction: "FROM",
                    reason: "expected `FROM [--platform=...] image [AS name]`",
                },
            ));
        }
    };
    Ok(From {
        image: words[0].text.clone(),
        platform,
        name,
    })
}

fn missing(at: usize, instruction: &'static str, min: usize) -> ArgError {
    (at, ParseError::MissingArguments { instruction, min })
}

/// The words after the flags, offsets relative to the whole argument text.
fn rest_words(a: &Args<'_>, rest: usize) -> Result<Vec<RawWord>, ArgError> {
    let tail = &a.text[byte_index(a.text, rest)..];
    split_words(tail, a.escape)
        .map(|ws| {
            ws.into_iter()
                .map(|w| RawWord {
                    offset: w.offset + rest,
                    ..w
                })
                .collect()
        })
        .map_err(|(o, e)| (o + rest, e))
}

fn command(a: &Args<'_>, rest: usize, instruction: &'static str) -> Result<Command, ArgError> {
    let tail = a.text[byte_index(a.text, rest)..].trim();
    if let Some(list) = json_array(tail) {
        return Ok(Command::Exec(list));
    }
    if tail.is_empty() {
        return Err(missing(rest, instruction, 1));
    }
    Ok(Command::Shell(tail.to_string()))
}

/// Parses the arguments of every instruction but `FROM`.
pub(crate) fn parse(a: Args<'_>) -> Result<Instruction, ArgError> {
    let (flags, rest) = take_flags(a.text, a.escape)?;
    let no_flags = |kw: &'static str| check_flags(kw, &flags, &[], &[]);
    let tail = a.text[byte_index(a.text, rest)..].trim();
    Ok(match a.keyword {
        "RUN" => {
            check_flags("RUN", &flags, &["mount", "network", "security"], &["mount"])?;
            let mut mounts = Vec::new();
            for f in flags.iter().filter(|f| f.name == "mount") {
                let v = flag_value(f)?;
                mounts.push(Mount::parse(&v).map_err(|reason| {
                    (
                        f.offset,
                        ParseError::InvalidFlagValue {
                            flag: "mount".into(),
                            reason,
                        },
                    )
                })?);
            }
            let network = match find(&flags, "network") {
                Some(f) => Some(NetworkMode::parse(&flag_value(f)?).map_err(|reason| {
                    (
                        f.offset,
                        ParseError::InvalidFlagValue {
                            flag: "network".into(),
                            reason,
                        },
                    )
                })?),
                None => None,
            };
            let insecure = match find(&flags, "security") {
                Some(f) => match flag_value(f)?.as_str() {
                    "insecure" => true,
                    "sandbox" => false,
                    other => {
                        return Err((
                            f.offset,
                            ParseError::InvalidFlagValue {
                                flag: "security".into(),
                                reason: format!("{other:?} is not insecure or sandbox"),
                            },
                        ));
                    }
                },
                None => false,
            };
            let command = command(&a, rest, "RUN")?;
            let heredocs = if matches!(command, Command::Shell(_)) {
                a.heredocs
            } else {
                Vec::new()
            };
            Instruction::Run(Run {
                command,
                heredocs,
                mounts,
                network,
                insecure,
            })
        }
        "CMD" => {
            no_flags("CMD")?;
            Instruction::Cmd(command(&a, rest, "CMD")?)
        }
        "ENTRYPOINT" => {
            no_flags("ENTRYPOINT")?;
            Instruction::Entrypoint(command(&a, rest, "ENTRYPOINT")?)
        }
        "ENV" => {
            no_flags("ENV")?;
            Instruction::Env(key_values(&a, rest, "ENV")?)
        }
        "LABEL" => {
            no_flags("LABEL")?;
            Instruction::Label(key_values(&a, rest, "LABEL")?)
        }
        "ARG" => {
            no_flags("ARG")?;
            let words = rest_words(&a, rest)?;
            if words.is_empty() {
                return Err(missing(rest, "ARG", 1));
            }
            let mut decls = Vec::new();
            for w in words {
                let (name, default) = match w.text.split_once('=') {
                    Some((n, d)) => (n.to_string(), Some(d.to_string())),
                    None => (w.text.clone(), None),
                };
                if !is_name(&name) {
                    return Err((
                        w.offset,
                        ParseError::InvalidArguments {
                            instruction: "ARG",
                            reason: "an argument name is letters, digits and '_', not starting with a digit",
                        },
                    ));
                }
                decls.push(ArgDecl { name, default });
            }
            Instruction::Arg(decls)
        }
        "EXPOSE" => {
            no_flags("EXPOSE")?;
            let words = rest_words(&a, rest)?;
            if words.is_empty() {
                return Err(missing(rest, "EXPOSE", 1));
            }
            Instruction::Expose(words.into_iter().map(|w| w.text).collect())
        }
        "COPY" | "ADD" => copy(&a, &flags, rest)?,
        "WORKDIR" | "USER" | "STOPSIGNAL" | "MAINTAINER" => {
            let kw: &'static str = match a.keyword {
                "WORKDIR" => "WORKDIR",
                "USER" => "USER",
                "STOPSIGNAL" => "STOPSIGNAL",
                _ => "MAINTAINER",
            };
            no_flags(kw)?;
            if tail.is_empty() {
                return Err(missing(rest, kw, 1));
            }
            let value = tail.to_string();
            match kw {
                "WORKDIR" => Instruction::Workdir(value),
                "USER" => Instruction::User(value),
                "STOPSIGNAL" => Instruction::StopSignal(value),
                _ => Instruction::Maintainer(value),
            }
        }
        "VOLUME" => {
            no_flags("VOLUME")?;
            let vols = match json_array(tail) {
                Some(list) => list,
                None => rest_words(&a, rest)?.into_iter().map(|w| w.text).collect(),
            };
            if vols.is_empty() || vols.iter().any(|v| v.trim().is_empty()) {
                return Err(missing(rest, "VOLUME", 1));
            }
            Instruction::Volume(vols)
        }
        "SHELL" => {
            no_flags("SHELL")?;
            match json_array(tail) {
                Some(list) if !list.is_empty() => Instruction::Shell(list),
                _ => {
                    return Err((
                        rest,
                        ParseError::JsonArrayRequired {
                            instruction: "SHELL",
                        },
                    ));
                }
            }
        }
        "HEALTHCHECK" => healthcheck(&a, &flags, rest)?,
        other => {
            return Err((
                0,
                ParseError::UnknownInstruction {
                    name: other.to_string(),
                },
            ));
        }
    })
}

/// Whether `s` is a valid variable name.
pub(crate) fn is_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn key_values(
    a: &Args<'_>,
    rest: usize,
    instruction: &'static str,
) -> Result<Vec<KeyValue>, ArgError> {
    let words = rest_words(a, rest)?;
    let Some(first) = words.first() else {
        return Err(missing(rest, instruction, 1));
    };
    if !first.text.contains('=') {
        // Legacy `ENV key value with spaces`.
        if words.len() < 2 {
            return Err(missing(rest, instruction, 2));
        }
        let start = byte_index(a.text, words[1].offset);
        return Ok(vec![KeyValue {
            key: first.text.clone(),
            value: a.text[start..].trim().to_string(),
        }]);
    }
    words
        .iter()
        .map(|w| match w.text.split_once('=') {
            Some((k, v)) if !k.is_empty() => Ok(KeyValue {
                key: k.to_string(),
                value: v.to_string(),
            }),
            _ => Err((
                w.offset,
                ParseError::KeyValueExpected {
                    instruction,
                    word: w.text.clone(),
                },
            )),
        })
        .collect()
}

fn copy(a: &Args<'_>, flags: &[RawFlag], rest: usize) -> Result<Instruction, ArgError> {
    let is_copy = a.keyword == "COPY";
    let kw: &'static str = if is_copy { "COPY" } else { "ADD" };
    if is_copy {
        check_flags(
            kw,
            flags,
            &["from", "chown", "chmod", "link", "parents", "exclude"],
            &["exclude"],
        )?;
    } else {
        check_flags(
            kw,
            flags,
            &[
                "chown",
                "chmod",
                "link",
                "checksum",
                "keep-git-dir",
                "exclude",
            ],
            &["exclude"],
        )?;
    }
    let tail = a.text[byte_index(a.text, rest)..].trim();
    let mut heredocs = a.heredocs.clone().into_iter();
    let mut words: Vec<Source> = match json_array(tail) {
        Some(list) => list.into_iter().map(Source::Path).collect(),
        None => rest_words(a, rest)?
            .into_iter()
            .map(|w| match heredoc_marker(&w.text) {
                Some(_) => heredocs
                    .next()
                    .map(Source::Heredoc)
                    .unwrap_or(Source::Path(w.text)),
                None => Source::Path(w.text),
            })
            .collect(),
    };
    if words.len() < 2 {
        return Err(missing(rest, kw, 2));
    }
    let dest = match words.pop() {
        Some(Source::Path(p)) => p,
        _ => {
            return Err((
                rest,
                ParseError::InvalidArguments {
                    instruction: kw,
                    reason: "the destination cannot be a here-document",
                },
            ));
        }
    };
    let link = find(flags, "link")
        .map(flag_bool)
        .transpose()?
        .unwrap_or(false);
    let parents = find(flags, "parents")
        .map(flag_bool)
        .transpose()?
        .unwrap_or(false);
    let exclude = flags
        .iter()
        .filter(|f| f.name == "exclude")
        .map(flag_value)
        .collect::<Result<_, _>>()?;
    let c = Copy {
        sources: words,
        dest,
        from: opt_value(flags, "from")?,
        chown: opt_value(flags, "chown")?,
        chmod: opt_value(flags, "chmod")?,
        link,
        parents,
        exclude,
        checksum: opt_value(flags, "checksum")?,
    };
    Ok(if is_copy {
        Instruction::Copy(c)
    } else {
        Instruction::Add(c)
    })
}

fn healthcheck(a: &Args<'_>, flags: &[RawFlag], rest: usize) -> Result<Instruction, ArgError> {
    check_flags(
        "HEALTHCHECK",
        flags,
        &[
            "interval",
            "timeout",
            "start-period",
            "start-interval",
            "retries",
        ],
        &[],
    )?;
    let tail = a.text[byte_index(a.text, rest)..].trim();
    let (word, after) = match tail.split_once(char::is_whitespace) {
        Some((w, r)) => (w, r.trim()),
        None => (tail, ""),
    };
    if word.eq_ignore_ascii_case("NONE") {
        if !after.is_empty() || !flags.is_empty() {
            return Err((
                rest,
                ParseError::InvalidArguments {
                    instruction: "HEALTHCHECK",
                    reason: "NONE takes no arguments or flags",
                },
            ));
        }
        return Ok(Instruction::Healthcheck(Healthcheck::None));
    }
    if !word.eq_ignore_ascii_case("CMD") {
        return Err((
            rest,
            ParseError::InvalidArguments {
                instruction: "HEALTHCHECK",
                reason: "expected NONE or CMD",
            },
        ));
    }
    let command = match json_array(after) {
        Some(list) => Command::Exec(list),
        None if after.is_empty() => return Err(missing(rest, "HEALTHCHECK", 2)),
        None => Command::Shell(after.to_string()),
    };
    let duration = |name: &str| -> Result<Option<Duration>, ArgError> {
        match find(flags, name) {
            None => Ok(None),
            Some(f) => {
                let v = flag_value(f)?;
                parse_duration(&v).map(Some).ok_or_else(|| {
                    (
                        f.offset,
                        ParseError::InvalidFlagValue {
                            flag: f.name.clone(),
                            reason: format!("{v:?} is not a duration such as 30s or 1m30s"),
                        },
                    )
                })
            }
        }
    };
    let retries = match find(flags, "retries") {
        None => None,
        Some(f) => {
            let v = flag_value(f)?;
            Some(v.parse::<u32>().map_err(|_| {
                (
                    f.offset,
                    ParseError::InvalidFlagValue {
                        flag: "retries".into(),
                        reason: format!("{v:?} is not a whole number"),
                    },
                )
            })?)
        }
    };
    Ok(Instruction::Healthcheck(Healthcheck::Check {
        command,
        interval: duration("interval")?,
        timeout: duration("timeout")?,
        start_period: duration("start-period")?,
        start_interval: duration("start-interval")?,
        retries,
    }))
}

/// Parses a Go-style duration (`1h2m3s`, `500ms`, `1.5s`, `0`).
pub fn parse_duration(s: &str) -> Option<Duration> {
    if s == "0" {
        return Some(Duration::ZERO);
    }
    let mut total = 0f64;
    let mut rest = s;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let n: f64 = rest[..num_len].parse().ok()?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit = match &rest[..unit_len] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        rest = &rest[unit_len..];
        total += n * unit;
    }
    Duration::try_from_secs_f64(total).ok()
}

/// If `word` is a here-document marker (`<<EOF`, `<<-"EOF"`), its delimiter, quoting and `-`.
pub(crate) fn heredoc_marker(word: &str) -> Option<(String, bool, bool)> {
    let rest = word.strip_prefix("<<")?;
    let (strip_tabs, rest) = match rest.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, rest),
    };
    let (name, quoted) = match rest.chars().next() {
        Some(q @ ('"' | '\'')) => (rest.strip_prefix(q)?.strip_suffix(q)?, true),
        _ => (rest, false),
    };
    let shell_meta = |c: char| "<>|&;()$`\\\"'".contains(c) || c.is_whitespace();
    if name.is_empty() || name.chars().any(shell_meta) {
        return None;
    }
    Some((name.to_string(), !quoted, strip_tabs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_like_go() {
        assert_eq!(parse_duration("30s"), Some(Duration::from_secs(30)));
        assert_eq!(parse_duration("1m30s"), Some(Duration::from_secs(90)));
        assert_eq!(parse_duration("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse_duration("1h"), Some(Duration::from_secs(3600)));
        assert_eq!(parse_duration("1.5s"), Some(Duration::from_millis(1500)));
        assert_eq!(parse_duration("0"), Some(Duration::ZERO));
        assert_eq!(parse_duration("10"), None);
        assert_eq!(parse_duration("5x"), None);
        assert_eq!(parse_duration(""), None);
    }

    #[test]
    fn heredoc_markers() {
        assert_eq!(heredoc_marker("<<EOF"), Some(("EOF".into(), true, false)));
        assert_eq!(heredoc_marker("<<-EOT"), Some(("EOT".into(), true, true)));
        assert_eq!(
            heredoc_marker("<<'EOF'"),
            Some(("EOF".into(), false, false))
        );
        assert_eq!(
            heredoc_marker("<<\"A_1\""),
            Some(("A_1".into(), false, false))
        );
        assert_eq!(heredoc_marker("<<<EOF"), None);
        assert_eq!(heredoc_marker("<<"), None);
        assert_eq!(heredoc_marker("<<'EOF"), None);
        assert_eq!(heredoc_marker("EOF"), None);
        assert_eq!(
            heredoc_marker("<<app.conf"),
            Some(("app.conf".into(), true, false))
        );
        assert_eq!(heredoc_marker("<<EOF>out"), None);
    }

    #[test]
    fn names() {
        assert!(is_name("A_1"));
        assert!(is_name("_x"));
        assert!(!is_name("1a"));
        assert!(!is_name("a-b"));
        assert!(!is_name(""));
    }
}
