//! Typed Dockerfile instructions (their arguments are parsed in [`crate::arguments`]).
//!
//! Values are kept as written (quotes, `$VAR`): they are expanded at build time by
//! [`crate::substitute`] with the variables in scope at that step.

use std::time::Duration;

use crate::mount::{Mount, NetworkMode};

/// A command in exec form (`["a", "b"]`) or shell form (`a b`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// JSON array: run without a shell.
    Exec(Vec<String>),
    /// Text run with the stage's `SHELL` (default `/bin/sh -c`).
    Shell(String),
}

/// A here-document attached to RUN, COPY or ADD.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Heredoc {
    /// The delimiter word (`EOF` in `<<EOF`); for COPY/ADD also the file name.
    pub name: String,
    /// The body, each line ending with `\n`, tabs stripped for `<<-`.
    pub content: String,
    /// Variables in the body are expanded (the delimiter was not quoted).
    pub expand: bool,
    /// Written `<<-`: leading tabs were stripped.
    pub strip_tabs: bool,
}

/// A `key=value` pair of ENV or LABEL, both as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyValue {
    /// The key as written.
    pub key: String,
    /// The value as written (quotes kept, unexpanded).
    pub value: String,
}

/// One declaration of `ARG name[=default]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArgDecl {
    /// The argument's name.
    pub name: String,
    /// Its default as written, if any.
    pub default: Option<String>,
}

/// `RUN`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Run {
    /// The command.
    pub command: Command,
    /// Here-documents, in order, for the shell form.
    pub heredocs: Vec<Heredoc>,
    /// `--mount` flags.
    pub mounts: Vec<Mount>,
    /// `--network`.
    pub network: Option<NetworkMode>,
    /// `--security=insecure|sandbox`: true for insecure.
    pub insecure: bool,
}

/// A source of COPY or ADD.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A path (or glob, or URL for ADD) as written.
    Path(String),
    /// An inline file from a here-document.
    Heredoc(Heredoc),
}

/// `COPY` and `ADD` (they share their shape).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Copy {
    /// Sources, at least one.
    pub sources: Vec<Source>,
    /// Destination as written.
    pub dest: String,
    /// `--from=stage|image` (COPY only).
    pub from: Option<String>,
    /// `--chown=user[:group]`.
    pub chown: Option<String>,
    /// `--chmod=mode`.
    pub chmod: Option<String>,
    /// `--link`.
    pub link: bool,
    /// `--parents` (COPY only).
    pub parents: bool,
    /// `--exclude` patterns.
    pub exclude: Vec<String>,
    /// `--checksum` (ADD only).
    pub checksum: Option<String>,
}

/// `HEALTHCHECK`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Healthcheck {
    /// `HEALTHCHECK NONE`: disable the base image's check.
    None,
    /// `HEALTHCHECK [options] CMD command`.
    Check {
        /// The test command.
        command: Command,
        /// `--interval`.
        interval: Option<Duration>,
        /// `--timeout`.
        timeout: Option<Duration>,
        /// `--start-period`.
        start_period: Option<Duration>,
        /// `--start-interval`.
        start_interval: Option<Duration>,
        /// `--retries`.
        retries: Option<u32>,
    },
}

/// A Dockerfile instruction other than `FROM` (which starts a [`crate::Stage`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Instruction {
    /// `RUN`.
    Run(Run),
    /// `CMD`.
    Cmd(Command),
    /// `ENTRYPOINT`.
    Entrypoint(Command),
    /// `ENV`.
    Env(Vec<KeyValue>),
    /// `LABEL`.
    Label(Vec<KeyValue>),
    /// `ARG` (one or more declarations).
    Arg(Vec<ArgDecl>),
    /// `EXPOSE` ports as written (`80`, `53/udp`).
    Expose(Vec<String>),
    /// `COPY`.
    Copy(Copy),
    /// `ADD`.
    Add(Copy),
    /// `WORKDIR`.
    Workdir(String),
    /// `USER user[:group]`.
    User(String),
    /// `VOLUME` paths.
    Volume(Vec<String>),
    /// `STOPSIGNAL`.
    StopSignal(String),
    /// `HEALTHCHECK`.
    Healthcheck(Healthcheck),
    /// `SHELL` (JSON form only).
    Shell(Vec<String>),
    /// `ONBUILD` trigger: the instruction and its text, run when the image is used as a base.
    Onbuild(Box<Instruction>, String),
    /// `MAINTAINER` (deprecated; becomes the `author` field).
    Maintainer(String),
}

impl Instruction {
    /// The instruction's keyword in upper case.
    pub fn keyword(&self) -> &'static str {
        match self {
            Self::Run(_) => "RUN",
            Self::Cmd(_) => "CMD",
            Self::Entrypoint(_) => "ENTRYPOINT",
            Self::Env(_) => "ENV",
            Self::Label(_) => "LABEL",
            Self::Arg(_) => "ARG",
            Self::Expose(_) => "EXPOSE",
            Self::Copy(_) => "COPY",
            Self::Add(_) => "ADD",
            Self::Workdir(_) => "WORKDIR",
            Self::User(_) => "USER",
            Self::Volume(_) => "VOLUME",
            Self::StopSignal(_) => "STOPSIGNAL",
            Self::Healthcheck(_) => "HEALTHCHECK",
            Self::Shell(_) => "SHELL",
            Self::Onbuild(..) => "ONBUILD",
            Self::Maintainer(_) => "MAINTAINER",
        }
    }
}

/// Every keyword the parser knows, FROM included.
pub const KEYWORDS: &[&str] = &[
    "FROM",
    "RUN",
    "CMD",
    "ENTRYPOINT",
    "ENV",
    "LABEL",
    "ARG",
    "EXPOSE",
    "COPY",
    "ADD",
    "WORKDIR",
    "USER",
    "VOLUME",
    "STOPSIGNAL",
    "HEALTHCHECK",
    "SHELL",
    "ONBUILD",
    "MAINTAINER",
];

/// The `FROM` line's parts, as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct From {
    /// Image reference, stage name or `scratch`, unexpanded.
    pub image: String,
    /// `--platform`.
    pub platform: Option<String>,
    /// `AS name`, lower-cased.
    pub name: Option<String>,
}
