//! The Dockerfile parser: directives, logical lines, here-documents, stages.
//!
//! The grammar is line based. Parser directives (`# escape=`, `# syntax=`) are only
//! recognised before the first comment, blank line or instruction. A line ending in the
//! escape character continues on the next line; comment and blank lines inside a
//! continuation are skipped. `RUN`, `COPY` and `ADD` may name here-documents (`<<EOF`,
//! `<<-EOF`, quoted delimiters disable expansion) whose bodies follow the instruction.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::arguments::{self, Args, heredoc_marker};
use crate::diagnostic::{Diagnostic, Location, ParseError};
use crate::instruction::{From, Heredoc, Instruction, KEYWORDS};
use crate::words::{byte_index, split_words};

/// One instruction of a stage, with where it was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// Position of the instruction's keyword.
    pub location: Location,
    /// The instruction as written, continuation lines joined (used for history and cache keys).
    pub text: String,
    /// The parsed instruction.
    pub instruction: Instruction,
}

/// A build stage: a `FROM` line and the instructions up to the next `FROM`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stage {
    /// Position of the stage among all stages, from 0.
    pub index: usize,
    /// The `AS` name, lower-cased.
    pub name: Option<String>,
    /// The `FROM` line's parts.
    pub from: From,
    /// Position of the `FROM` keyword.
    pub location: Location,
    /// The stage's instructions.
    pub steps: Vec<Step>,
}

/// A parsed Dockerfile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dockerfile {
    /// The path given to the parser (used in diagnostics).
    pub path: PathBuf,
    /// The `# syntax=` directive, noted and otherwise ignored.
    pub syntax: Option<String>,
    /// The escape character (`\` unless `# escape=` says otherwise).
    pub escape: char,
    /// `ARG` instructions before the first `FROM` (usable in `FROM` lines).
    pub global_args: Vec<Step>,
    /// The stages in file order.
    pub stages: Vec<Stage>,
}

/// Maps char offsets of a logical line back to physical positions.
struct Segments(Vec<(usize, Location)>);

impl Segments {
    fn locate(&self, offset: usize) -> Location {
        let (start, loc) = self
            .0
            .iter()
            .rev()
            .find(|(s, _)| *s <= offset)
            .copied()
            .unwrap_or((0, Location::new(1, 1)));
        Location::new(loc.line, loc.column + (offset - start))
    }
}

/// A logical line: an instruction with its continuation lines joined.
struct Logical {
    text: String,
    segments: Segments,
}

fn is_blank_or_comment(line: &str) -> bool {
    let t = line.trim_start();
    t.is_empty() || t.starts_with('#')
}

/// Parses `# key=value`; the key lower-cased.
fn directive(line: &str) -> Option<(String, String)> {
    let body = line.strip_prefix('#')?;
    let (k, v) = body.split_once('=')?;
    let k = k.trim();
    if k.is_empty() || !k.chars().all(|c| c.is_ascii_alphanumeric()) {
        return None;
    }
    Some((k.to_ascii_lowercase(), v.trim().to_string()))
}

struct Parser<'a> {
    path: &'a Path,
    lines: Vec<&'a str>,
    escape: char,
    pos: usize,
}

impl<'a> Parser<'a> {
    fn err(&self, location: Location, error: ParseError) -> Diagnostic {
        Diagnostic::new(self.path, location, error)
    }

    /// Reads the parser directives at the top of the file.
    fn directives(&mut self) -> Result<Option<String>, Diagnostic> {
        let mut syntax = None;
        let mut seen: Vec<String> = Vec::new();
        while let Some(line) = self.lines.get(self.pos) {
            let Some((key, value)) = directive(line) else {
                break;
            };
            if !matches!(key.as_str(), "syntax" | "escape" | "check") {
                break;
            }
            let loc = Location::new(self.pos + 1, 1);
            if seen.contains(&key) {
                return Err(self.err(loc, ParseError::DuplicateDirective { name: key }));
            }
            match key.as_str() {
                "escape" => {
                    self.escape = match value.as_str() {
                        "\\" => '\\',
                        "`" => '`',
                        _ => return Err(self.err(loc, ParseError::InvalidEscape { value })),
                    }
                }
                "syntax" => syntax = Some(value),
                _ => {}
            }
            seen.push(key);
            self.pos += 1;
        }
        Ok(syntax)
    }

    /// Strips a trailing escape char: the content and whether the line continues.
    fn continuation(&self, line: &'a str) -> (&'a str, bool) {
        let t = line.trim_end();
        match t.strip_suffix(self.escape) {
            Some(c) => (c, true),
            None => (line, false),
        }
    }

    /// Reads the next logical line, or `None` at the end of the file.
    fn next_logical(&mut self) -> Option<Logical> {
        while self.pos < self.lines.len() && is_blank_or_comment(self.lines[self.pos]) {
            self.pos += 1;
        }
        let first = *self.lines.get(self.pos)?;
        let indent = first.chars().take_while(|c| c.is_whitespace()).count();
        let mut text = String::new();
        let mut segments = Vec::new();
        let mut line = &first[byte_index(first, indent)..];
        let mut column = indent + 1;
        loop {
            segments.push((text.chars().count(), Location::new(self.pos + 1, column)));
            let (content, more) = self.continuation(line);
            text.push_str(content);
            self.pos += 1;
            if !more {
                break;
            }
            while self.pos < self.lines.len() && is_blank_or_comment(self.lines[self.pos]) {
                self.pos += 1;
            }
            match self.lines.get(self.pos) {
                Some(l) => {
                    line = l;
                    column = 1;
                }
                None => break,
            }
        }
        Some(Logical {
            text,
            segments: Segments(segments),
        })
    }

    /// Reads the bodies of the here-documents named in `args`, from the following lines.
    fn heredocs(&mut self, args: &str, at: Location) -> Result<Vec<Heredoc>, Diagnostic> {
        let Ok(words) = split_words(args, self.escape) else {
            return Ok(Vec::new());
        };
        let mut docs = Vec::new();
        for (name, expand, strip_tabs) in words.iter().filter_map(|w| heredoc_marker(&w.text)) {
            let mut content = String::new();
            loop {
                let Some(line) = self.lines.get(self.pos) else {
                    return Err(self.err(at, ParseError::UnterminatedHeredoc { word: name }));
                };
                self.pos += 1;
                let line = if strip_tabs {
                    line.trim_start_matches('\t')
                } else {
                    line
                };
                if line == name {
                    break;
                }
                content.push_str(line);
                content.push('\n');
            }
            docs.push(Heredoc {
                name,
                content,
                expand,
                strip_tabs,
            });
        }
        Ok(docs)
    }
}

impl Dockerfile {
    /// Parses a Dockerfile's text; `path` is only used in diagnostics.
    ///
    /// ```
    /// let df = berth_build::Dockerfile::parse("FROM scratch AS base\nCOPY a /a\n", "Dockerfile")
    ///     .unwrap();
    /// assert_eq!(df.stages[0].name.as_deref(), Some("base"));
    /// ```
    pub fn parse(text: &str, path: impl AsRef<Path>) -> Result<Self, Diagnostic> {
        let path = path.as_ref();
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let mut p = Parser {
            path,
            lines: text
                .split('\n')
                .map(|l| l.strip_suffix('\r').unwrap_or(l))
                .collect(),
            escape: '\\',
            pos: 0,
        };
        let syntax = p.directives()?;
        let mut df = Dockerfile {
            path: path.to_path_buf(),
            syntax,
            escape: p.escape,
            global_args: Vec::new(),
            stages: Vec::new(),
        };
        let mut names: HashMap<String, usize> = HashMap::new();
        let mut any = false;
        while let Some(logical) = p.next_logical() {
            any = true;
            let step = p.step(&logical)?;
            match step {
                Parsed::From(from, location) => {
                    if let Some(name) = &from.name {
                        if !valid_stage_name(name) {
                            return Err(p.err(
                                location,
                                ParseError::InvalidStageName { name: name.clone() },
                            ));
                        }
                        if let Some(first_line) = names.insert(name.clone(), location.line) {
                            return Err(p.err(
                                location,
                                ParseError::DuplicateStageName {
                                    name: name.clone(),
                                    first_line,
                                },
                            ));
                        }
                    }
                    df.stages.push(Stage {
                        index: df.stages.len(),
                        name: from.name.clone(),
                        from,
                        location,
                        steps: Vec::new(),
                    });
                }
                Parsed::Step(step) => match df.stages.last_mut() {
                    Some(stage) => stage.steps.push(step),
                    None if matches!(step.instruction, Instruction::Arg(_)) => {
                        df.global_args.push(step)
                    }
                    None => {
                        return Err(p.err(
                            step.location,
                            ParseError::BeforeFrom {
                                instruction: step.instruction.keyword().to_string(),
                            },
                        ));
                    }
                },
            }
        }
        if !any {
            return Err(p.err(Location::new(1, 1), ParseError::Empty));
        }
        if df.stages.is_empty() {
            return Err(p.err(Location::new(1, 1), ParseError::NoFrom));
        }
        Ok(df)
    }

    /// The stage called `name` (case-insensitive) or with index `name`.
    pub fn stage(&self, name: &str) -> Option<&Stage> {
        let lower = name.to_ascii_lowercase();
        self.stages
            .iter()
            .find(|s| s.name.as_deref() == Some(lower.as_str()))
            .or_else(|| name.parse::<usize>().ok().and_then(|i| self.stages.get(i)))
    }
}

/// `[a-z][a-z0-9-_.]*`.
fn valid_stage_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "-_.".contains(c))
}

enum Parsed {
    From(From, Location),
    Step(Step),
}

impl Parser<'_> {
    fn step(&mut self, logical: &Logical) -> Result<Parsed, Diagnostic> {
        let text = logical.text.as_str();
        let kw_len = text.chars().take_while(|c| !c.is_whitespace()).count();
        let keyword = text[..byte_index(text, kw_len)].to_ascii_uppercase();
        let location = logical.segments.locate(0);
        let args_start = kw_len
            + text[byte_index(text, kw_len)..]
                .chars()
                .take_while(|c| c.is_whitespace())
                .count();
        let args = &text[byte_index(text, args_start)..];
        let at = |offset: usize| logical.segments.locate(args_start + offset);
        if !KEYWORDS.contains(&keyword.as_str()) {
            let name = text[..byte_index(text, kw_len)].to_string();
            return Err(self.err(location, ParseError::UnknownInstruction { name }));
        }
        let heredocs = if matches!(keyword.as_str(), "RUN" | "COPY" | "ADD") {
            self.heredocs(args, location)?
        } else {
            Vec::new()
        };
        let a = Args {
            keyword: &keyword,
            text: args,
            escape: self.escape,
            heredocs,
        };
        if keyword == "FROM" {
            let from = arguments::parse_from(&a).map_err(|(o, e)| self.err(at(o), e))?;
            return Ok(Parsed::From(from, location));
        }
        let instruction = if keyword == "ONBUILD" {
            self.onbuild(args, args_start, logical)?
        } else {
            arguments::parse(a).map_err(|(o, e)| self.err(at(o), e))?
        };
        Ok(Parsed::Step(Step {
            location,
            text: text.trim_end().to_string(),
            instruction,
        }))
    }

    fn onbuild(
        &mut self,
        args: &str,
        args_start: usize,
        logical: &Logical,
    ) -> Result<Instruction, Diagnostic> {
        let at = |offset: usize| logical.segments.locate(args_start + offset);
        let inner_len = args.chars().take_while(|c| !c.is_whitespace()).count();
        if inner_len == 0 {
            return Err(self.err(
                at(0),
                ParseError::MissingArguments {
                    instruction: "ONBUILD",
                    min: 1,
                },
            ));
        }
        let inner_kw = args[..byte_index(args, inner_len)].to_ascii_uppercase();
        if matches!(inner_kw.as_str(), "ONBUILD" | "FROM" | "MAINTAINER") {
            return Err(self.err(
                at(0),
                ParseError::InvalidOnbuild {
                    instruction: inner_kw,
                },
            ));
        }
        if !KEYWORDS.contains(&inner_kw.as_str()) {
            let name = args[..byte_index(args, inner_len)].to_string();
            return Err(self.err(at(0), ParseError::UnknownInstruction { name }));
        }
        let inner_args_start = inner_len
            + args[byte_index(args, inner_len)..]
                .chars()
                .take_while(|c| c.is_whitespace())
                .count();
        let inner = Args {
            keyword: &inner_kw,
            text: &args[byte_index(args, inner_args_start)..],
            escape: self.escape,
            heredocs: Vec::new(),
        };
        let parsed =
            arguments::parse(inner).map_err(|(o, e)| self.err(at(inner_args_start + o), e))?;
        Ok(Instruction::Onbuild(
            Box::new(parsed),
            args.trim().to_string(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::instruction::{Command, Copy, Healthcheck, KeyValue, Run, Source};
    use crate::mount::{MountKind, NetworkMode};
    use std::time::Duration;

    fn parse(text: &str) -> Dockerfile {
        Dockerfile::parse(text, "Dockerfile").unwrap()
    }

    fn err(text: &str) -> (usize, usize, ParseError) {
        let d = Dockerfile::parse(text, "Dockerfile").unwrap_err();
        (d.location.line, d.location.column, d.error)
    }

    fn steps(text: &str) -> Vec<Instruction> {
        parse(text).stages[0]
            .steps
            .iter()
            .map(|s| s.instruction.clone())
            .collect()
    }

    fn one(text: &str) -> Instruction {
        steps(&format!("FROM x\n{text}\n")).remove(0)
    }

    #[test]
    fn stages_with_names_platforms_and_locations() {
        let df = parse(
            "FROM --platform=linux/amd64 golang:1.22 AS Build\nRUN make\n\nfrom scratch\nCOPY --from=build /out /\n",
        );
        assert_eq!(df.stages.len(), 2);
        let s0 = &df.stages[0];
        assert_eq!(s0.name.as_deref(), Some("build"));
        assert_eq!(s0.from.image, "golang:1.22");
        assert_eq!(s0.from.platform.as_deref(), Some("linux/amd64"));
        assert_eq!(s0.location, Location::new(1, 1));
        assert_eq!(s0.steps[0].location, Location::new(2, 1));
        assert_eq!(df.stages[1].from.image, "scratch");
        assert_eq!(df.stages[1].steps[0].location, Location::new(5, 1));
        assert_eq!(df.stage("BUILD").map(|s| s.index), Some(0));
        assert_eq!(df.stage("1").map(|s| s.index), Some(1));
        assert_eq!(df.stage("nope"), None);
    }

    #[test]
    fn shell_and_exec_forms() {
        assert_eq!(
            one("CMD [\"sh\", \"-c\", \"echo hi\"]"),
            Instruction::Cmd(Command::Exec(vec![
                "sh".into(),
                "-c".into(),
                "echo hi".into()
            ]))
        );
        assert_eq!(
            one("ENTRYPOINT exec top -b"),
            Instruction::Entrypoint(Command::Shell("exec top -b".into()))
        );
        // An invalid JSON array falls back to the shell form, as in Docker.
        assert_eq!(
            one("CMD [echo, hi]"),
            Instruction::Cmd(Command::Shell("[echo, hi]".into()))
        );
        assert_eq!(one("CMD []"), Instruction::Cmd(Command::Exec(vec![])));
    }

    #[test]
    fn continuation_lines_skip_comments_and_blank_lines() {
        let df = parse(
            "FROM x\nRUN echo a \\\n  # a comment\n\n    && echo b \\\n  && echo c\nUSER 1\n",
        );
        let s = &df.stages[0].steps;
        assert_eq!(
            s[0].instruction,
            Instruction::Run(Run {
                command: Command::Shell("echo a     && echo b   && echo c".into()),
                heredocs: vec![],
                mounts: vec![],
                network: None,
                insecure: false
            })
        );
        assert_eq!(s[1].location, Location::new(7, 1));
    }

    #[test]
    fn escape_directive_backtick() {
        let df = parse("# escape=`\nFROM x\nRUN dir c:\\ `\n  && echo ok\n");
        assert_eq!(df.escape, '`');
        assert_eq!(
            df.stages[0].steps[0].instruction,
            Instruction::Run(Run {
                command: Command::Shell("dir c:\\   && echo ok".into()),
                heredocs: vec![],
                mounts: vec![],
                network: None,
                insecure: false
            })
        );
    }

    #[test]
    fn directives_only_at_the_top() {
        let df = parse("# syntax=docker/dockerfile:1\n#Escape = \\\nFROM x\n");
        assert_eq!(df.syntax.as_deref(), Some("docker/dockerfile:1"));
        // After a comment, a directive is just a comment.
        let df = parse("# hello\n# escape=`\nFROM x\nRUN a \\\n b\n");
        assert_eq!(df.escape, '\\');
        // After an unknown directive too.
        assert_eq!(parse("# foo=bar\n# escape=`\nFROM x\n").escape, '\\');
        assert_eq!(
            err("# escape=\\\n# escape=`\nFROM x\n"),
            (
                2,
                1,
                ParseError::DuplicateDirective {
                    name: "escape".into()
                }
            )
        );
        assert_eq!(
            err("# escape=x\nFROM x\n"),
            (1, 1, ParseError::InvalidEscape { value: "x".into() })
        );
    }

    #[test]
    fn heredocs_several_per_run_with_tabs_and_quotes() {
        let text = "FROM x\nRUN <<EOF1 cat <<-'EOF2' > /out\necho $HOME\nEOF1\n\tline $X\n\tEOF2\nUSER 1\n";
        let df = parse(text);
        let Instruction::Run(run) = &df.stages[0].steps[0].instruction else {
            panic!("not RUN")
        };
        assert_eq!(
            run.command,
            Command::Shell("<<EOF1 cat <<-'EOF2' > /out".into())
        );
        assert_eq!(run.heredocs.len(), 2);
        assert_eq!(run.heredocs[0].name, "EOF1");
        assert_eq!(run.heredocs[0].content, "echo $HOME\n");
        assert!(run.heredocs[0].expand);
        assert_eq!(run.heredocs[1].name, "EOF2");
        assert_eq!(run.heredocs[1].content, "line $X\n");
        assert!(!run.heredocs[1].expand);
        assert!(run.heredocs[1].strip_tabs);
        assert_eq!(df.stages[0].steps[1].location, Location::new(7, 1));
    }

    #[test]
    fn heredoc_body_keeps_hash_lines_and_blank_lines() {
        let Instruction::Run(run) = one("RUN <<EOF\n#!/bin/sh\n\necho hi\nEOF") else {
            panic!("not RUN")
        };
        assert_eq!(run.heredocs[0].content, "#!/bin/sh\n\necho hi\n");
    }

    #[test]
    fn copy_heredoc_is_an_inline_file() {
        let Instruction::Copy(c) = one("COPY <<conf.txt /etc/app/\nkey=value\nconf.txt") else {
            panic!("not COPY")
        };
        assert!(matches!(&c.sources[0], Source::Heredoc(h) if h.name == "conf.txt"));
        let Instruction::Copy(c) = one("COPY <<CONF /etc/app.conf\nkey=value\nCONF") else {
            panic!("not COPY")
        };
        assert_eq!(c.dest, "/etc/app.conf");
        assert!(
            matches!(&c.sources[0], Source::Heredoc(h) if h.name == "CONF" && h.content == "key=value\n")
        );
    }

    #[test]
    fn unterminated_heredoc_points_at_the_instruction() {
        assert_eq!(
            err("FROM x\n  RUN <<EOF\necho\n"),
            (2, 3, ParseError::UnterminatedHeredoc { word: "EOF".into() })
        );
    }

    #[test]
    fn copy_and_add_flags() {
        assert_eq!(
            one("COPY --from=build --chown=app:app --chmod=0755 --link a b* /dst/"),
            Instruction::Copy(Copy {
                sources: vec![Source::Path("a".into()), Source::Path("b*".into())],
                dest: "/dst/".into(),
                from: Some("build".into()),
                chown: Some("app:app".into()),
                chmod: Some("0755".into()),
                link: true,
                parents: false,
                exclude: vec![],
                checksum: None
            })
        );
        let Instruction::Add(a) = one("ADD --exclude=*.md --exclude=.git [\"a b\", \"/c\"]") else {
            panic!("not ADD")
        };
        assert_eq!(a.exclude, vec!["*.md", ".git"]);
        assert_eq!(a.sources, vec![Source::Path("a b".into())]);
        assert_eq!(a.dest, "/c");
        assert_eq!(
            err("FROM x\nADD --from=x a b\n"),
            (
                2,
                5,
                ParseError::UnknownFlag {
                    instruction: "ADD",
                    flag: "from".into()
                }
            )
        );
        assert_eq!(
            err("FROM x\nCOPY a\n"),
            (
                2,
                6,
                ParseError::MissingArguments {
                    instruction: "COPY",
                    min: 2
                }
            )
        );
        assert_eq!(
            err("FROM x\nCOPY --from=a --from=b a b\n"),
            (
                2,
                15,
                ParseError::DuplicateFlag {
                    flag: "from".into()
                }
            )
        );
        assert!(matches!(
            err("FROM x\nCOPY --link=maybe a b\n"),
            (2, 6, ParseError::InvalidFlagValue { .. })
        ));
    }

    #[test]
    fn run_mount_network_security() {
        let Instruction::Run(r) = one(
            "RUN --mount=type=cache,target=/var/cache/apt --mount=type=secret,id=tok --network=none --security=insecure make",
        ) else {
            panic!("not RUN")
        };
        assert_eq!(r.mounts.len(), 2);
        assert!(matches!(r.mounts[0].kind, MountKind::Cache { .. }));
        assert!(matches!(r.mounts[1].kind, MountKind::Secret { .. }));
        assert_eq!(r.network, Some(NetworkMode::None));
        assert!(r.insecure);
        assert_eq!(r.command, Command::Shell("make".into()));
        let (line, col, e) = err("FROM x\nRUN --mount=type=bogus,target=/x make\n");
        assert_eq!((line, col), (2, 5));
        assert!(matches!(e, ParseError::InvalidFlagValue { flag, .. } if flag == "mount"));
        assert!(matches!(
            err("FROM x\nRUN --network=bridge make\n"),
            (2, 5, ParseError::InvalidFlagValue { .. })
        ));
        assert_eq!(
            err("FROM x\nRUN --foo make\n"),
            (
                2,
                5,
                ParseError::UnknownFlag {
                    instruction: "RUN",
                    flag: "foo".into()
                }
            )
        );
    }

    #[test]
    fn env_and_label_both_forms() {
        assert_eq!(
            one("ENV A=1 B=\"two words\" C=three\\ words"),
            Instruction::Env(vec![
                KeyValue {
                    key: "A".into(),
                    value: "1".into()
                },
                KeyValue {
                    key: "B".into(),
                    value: "\"two words\"".into()
                },
                KeyValue {
                    key: "C".into(),
                    value: "three\\ words".into()
                },
            ])
        );
        assert_eq!(
            one("ENV PATH /usr/local/bin:$PATH  and more"),
            Instruction::Env(vec![KeyValue {
                key: "PATH".into(),
                value: "/usr/local/bin:$PATH  and more".into()
            }])
        );
        assert_eq!(
            one("LABEL \"com.example.vendor\"=\"ACME\" version=1.0"),
            Instruction::Label(vec![
                KeyValue {
                    key: "\"com.example.vendor\"".into(),
                    value: "\"ACME\"".into()
                },
                KeyValue {
                    key: "version".into(),
                    value: "1.0".into()
                },
            ])
        );
        assert_eq!(
            err("FROM x\nENV A=1 B\n"),
            (
                2,
                9,
                ParseError::KeyValueExpected {
                    instruction: "ENV",
                    word: "B".into()
                }
            )
        );
        assert_eq!(
            err("FROM x\nENV A\n"),
            (
                2,
                5,
                ParseError::MissingArguments {
                    instruction: "ENV",
                    min: 2
                }
            )
        );
    }

    #[test]
    fn arg_expose_workdir_user_volume_stopsignal_shell_maintainer() {
        let i = steps(
            "FROM x\nARG A B=2\nEXPOSE 80 53/udp\nWORKDIR /app dir\nUSER app:app\nVOLUME [\"/data\", \"/logs\"]\nVOLUME /a /b\nSTOPSIGNAL SIGTERM\nSHELL [\"/bin/sh\", \"-ec\"]\nMAINTAINER Jane <j@x>\n",
        );
        assert!(
            matches!(&i[0], Instruction::Arg(d) if d.len() == 2 && d[1].default.as_deref() == Some("2"))
        );
        assert_eq!(
            i[1],
            Instruction::Expose(vec!["80".into(), "53/udp".into()])
        );
        assert_eq!(i[2], Instruction::Workdir("/app dir".into()));
        assert_eq!(i[3], Instruction::User("app:app".into()));
        assert_eq!(
            i[4],
            Instruction::Volume(vec!["/data".into(), "/logs".into()])
        );
        assert_eq!(i[5], Instruction::Volume(vec!["/a".into(), "/b".into()]));
        assert_eq!(i[6], Instruction::StopSignal("SIGTERM".into()));
        assert_eq!(
            i[7],
            Instruction::Shell(vec!["/bin/sh".into(), "-ec".into()])
        );
        assert_eq!(i[8], Instruction::Maintainer("Jane <j@x>".into()));
        assert_eq!(
            err("FROM x\nSHELL /bin/bash\n"),
            (
                2,
                7,
                ParseError::JsonArrayRequired {
                    instruction: "SHELL"
                }
            )
        );
        assert!(matches!(
            err("FROM x\nARG 1A\n"),
            (2, 5, ParseError::InvalidArguments { .. })
        ));
        assert_eq!(
            err("FROM x\nWORKDIR\n"),
            (
                2,
                8,
                ParseError::MissingArguments {
                    instruction: "WORKDIR",
                    min: 1
                }
            )
        );
    }

    #[test]
    fn healthcheck_forms() {
        assert_eq!(
            one(
                "HEALTHCHECK --interval=5s --timeout=2s --start-period=1m --retries=3 CMD wget -q localhost"
            ),
            Instruction::Healthcheck(Healthcheck::Check {
                command: Command::Shell("wget -q localhost".into()),
                interval: Some(Duration::from_secs(5)),
                timeout: Some(Duration::from_secs(2)),
                start_period: Some(Duration::from_secs(60)),
                start_interval: None,
                retries: Some(3)
            })
        );
        assert_eq!(
            one("HEALTHCHECK NONE"),
            Instruction::Healthcheck(Healthcheck::None)
        );
        assert!(matches!(
            one("HEALTHCHECK CMD [\"true\"]"),
            Instruction::Healthcheck(Healthcheck::Check {
                command: Command::Exec(_),
                ..
            })
        ));
        assert!(matches!(
            err("FROM x\nHEALTHCHECK --interval=5 CMD x\n"),
            (2, 13, ParseError::InvalidFlagValue { .. })
        ));
        assert!(matches!(
            err("FROM x\nHEALTHCHECK NONE x\n"),
            (2, 13, ParseError::InvalidArguments { .. })
        ));
        assert!(matches!(
            err("FROM x\nHEALTHCHECK echo\n"),
            (2, 13, ParseError::InvalidArguments { .. })
        ));
    }

    #[test]
    fn onbuild_wraps_an_instruction() {
        assert_eq!(
            one("ONBUILD RUN make"),
            Instruction::Onbuild(
                Box::new(Instruction::Run(Run {
                    command: Command::Shell("make".into()),
                    heredocs: vec![],
                    mounts: vec![],
                    network: None,
                    insecure: false
                })),
                "RUN make".into()
            )
        );
        assert_eq!(
            err("FROM x\nONBUILD FROM y\n"),
            (
                2,
                9,
                ParseError::InvalidOnbuild {
                    instruction: "FROM".into()
                }
            )
        );
        assert_eq!(
            err("FROM x\nONBUILD BOGUS y\n"),
            (
                2,
                9,
                ParseError::UnknownInstruction {
                    name: "BOGUS".into()
                }
            )
        );
        assert_eq!(
            err("FROM x\nONBUILD COPY a\n"),
            (
                2,
                14,
                ParseError::MissingArguments {
                    instruction: "COPY",
                    min: 2
                }
            )
        );
    }

    #[test]
    fn structural_errors_have_lines_and_columns() {
        assert_eq!(err(""), (1, 1, ParseError::Empty));
        assert_eq!(err("# just a comment\n\n"), (1, 1, ParseError::Empty));
        assert_eq!(err("ARG A=1\n"), (1, 1, ParseError::NoFrom));
        assert_eq!(
            err("ARG A\nRUN x\nFROM y\n"),
            (
                2,
                1,
                ParseError::BeforeFrom {
                    instruction: "RUN".into()
                }
            )
        );
        assert_eq!(
            err("FROM x\n\n   FORM y\n"),
            (
                3,
                4,
                ParseError::UnknownInstruction {
                    name: "FORM".into()
                }
            )
        );
        assert_eq!(
            err("FROM a AS one\nFROM b AS One\n"),
            (
                2,
                1,
                ParseError::DuplicateStageName {
                    name: "one".into(),
                    first_line: 1
                }
            )
        );
        assert_eq!(
            err("FROM a AS 1x\n"),
            (1, 1, ParseError::InvalidStageName { name: "1x".into() })
        );
        assert!(matches!(
            err("FROM a b\n"),
            (1, 6, ParseError::InvalidArguments { .. })
        ));
        assert_eq!(
            err("FROM\n"),
            (
                1,
                5,
                ParseError::MissingArguments {
                    instruction: "FROM",
                    min: 1
                }
            )
        );
        assert_eq!(
            err("FROM x\nLABEL a='b\n"),
            (2, 9, ParseError::UnterminatedQuote)
        );
    }

    #[test]
    fn error_columns_follow_continuation_lines() {
        assert_eq!(
            err("FROM x\nCOPY \\\n  --bogus=y a b\n"),
            (
                3,
                3,
                ParseError::UnknownFlag {
                    instruction: "COPY",
                    flag: "bogus".into()
                }
            )
        );
    }

    #[test]
    fn diagnostic_displays_path_line_column() {
        let d = Dockerfile::parse("FROM x\nBOGUS\n", "app/Dockerfile").unwrap_err();
        assert_eq!(
            d.to_string(),
            "app/Dockerfile:2:1: unknown instruction \"BOGUS\""
        );
    }

    #[test]
    fn crlf_and_bom_are_accepted() {
        let df = parse("\u{feff}FROM x\r\nRUN a \\\r\n b\r\n");
        assert!(
            matches!(&df.stages[0].steps[0].instruction, Instruction::Run(r) if r.command == Command::Shell("a  b".into()))
        );
    }

    #[test]
    fn global_args_before_from() {
        let df = parse("ARG BASE=alpine\nARG V\nFROM ${BASE}:$V\n");
        assert_eq!(df.global_args.len(), 2);
        assert_eq!(df.stages[0].from.image, "${BASE}:$V");
    }

    #[test]
    fn step_text_is_the_joined_line() {
        let df = parse("FROM x\nRUN a \\\n  b\n");
        assert_eq!(df.stages[0].steps[0].text, "RUN a   b");
    }
}
