//! Errors found in a Dockerfile, located by line and column.

use std::fmt;
use std::path::PathBuf;

/// A position in a Dockerfile: 1-based line and 1-based column (in characters).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Location {
    /// Line number, starting at 1.
    pub line: usize,
    /// Column number in characters, starting at 1.
    pub column: usize,
}

impl Location {
    /// A location at `line`, `column`.
    pub fn new(line: usize, column: usize) -> Self {
        Self { line, column }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.column)
    }
}

/// What is wrong with a Dockerfile.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// The file holds no instruction at all.
    #[error("the Dockerfile has no instructions")]
    Empty,
    /// The file has instructions but no `FROM`.
    #[error("the Dockerfile has no FROM instruction")]
    NoFrom,
    /// Only `ARG` may come before the first `FROM`.
    #[error("{instruction} must come after FROM (only ARG may come before the first FROM)")]
    BeforeFrom {
        /// The misplaced instruction.
        instruction: String,
    },
    /// A keyword that is not a Dockerfile instruction.
    #[error("unknown instruction {name:?}")]
    UnknownInstruction {
        /// The keyword as written.
        name: String,
    },
    /// A parser directive appears twice.
    #[error("parser directive {name:?} given more than once")]
    DuplicateDirective {
        /// The directive's name.
        name: String,
    },
    /// `# escape=` with something other than a backslash or a backtick.
    #[error("invalid escape character {value:?}: must be \\ or `")]
    InvalidEscape {
        /// The value given.
        value: String,
    },
    /// An instruction that needs arguments has none.
    #[error("{instruction} requires at least {min} argument(s)")]
    MissingArguments {
        /// The instruction.
        instruction: &'static str,
        /// How many it needs at least.
        min: usize,
    },
    /// An instruction has arguments it does not accept.
    #[error("{instruction}: {reason}")]
    InvalidArguments {
        /// The instruction.
        instruction: &'static str,
        /// What is wrong with them.
        reason: &'static str,
    },
    /// A flag the instruction does not know.
    #[error("unknown flag --{flag} for {instruction}")]
    UnknownFlag {
        /// The instruction.
        instruction: &'static str,
        /// The flag's name without dashes.
        flag: String,
    },
    /// A flag given twice where only one is allowed.
    #[error("flag --{flag} given more than once")]
    DuplicateFlag {
        /// The flag's name without dashes.
        flag: String,
    },
    /// A flag that needs a value was given none (or a boolean flag a bad one).
    #[error("flag --{flag}: {reason}")]
    InvalidFlagValue {
        /// The flag's name.
        flag: String,
        /// What is wrong.
        reason: String,
    },
    /// The JSON-array form is required (SHELL) or started but not valid.
    #[error("{instruction} requires a JSON array of strings")]
    JsonArrayRequired {
        /// The instruction.
        instruction: &'static str,
    },
    /// `ENV`/`LABEL` word without `=` in the key=value form.
    #[error("{instruction}: {word:?} must be of the form key=value")]
    KeyValueExpected {
        /// The instruction.
        instruction: &'static str,
        /// The offending word.
        word: String,
    },
    /// A stage name that is not `[a-z][a-z0-9-_.]*`.
    #[error(
        "invalid stage name {name:?}: must start with a letter and contain only letters, digits, '-', '_' and '.'"
    )]
    InvalidStageName {
        /// The name as written.
        name: String,
    },
    /// Two stages share a name.
    #[error("stage name {name:?} is already used by the stage at line {first_line}")]
    DuplicateStageName {
        /// The name.
        name: String,
        /// Line of the first stage with that name.
        first_line: usize,
    },
    /// A here-document that never ends.
    #[error("here-document <<{word} has no terminating line {word:?}")]
    UnterminatedHeredoc {
        /// The delimiter word.
        word: String,
    },
    /// A quote that is not closed.
    #[error("unterminated quote")]
    UnterminatedQuote,
    /// `ONBUILD` with an instruction it may not trigger.
    #[error("ONBUILD may not trigger {instruction}")]
    InvalidOnbuild {
        /// The forbidden instruction.
        instruction: String,
    },
}

/// A [`ParseError`] with the file and position where it was found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}:{}:{}: {error}", path.display(), location.line, location.column)]
pub struct Diagnostic {
    /// The Dockerfile's path as given to the parser.
    pub path: PathBuf,
    /// Where the problem is.
    pub location: Location,
    /// What the problem is.
    #[source]
    pub error: ParseError,
}

impl Diagnostic {
    /// A diagnostic for `error` at `location` in `path`.
    pub fn new(path: impl Into<PathBuf>, location: Location, error: ParseError) -> Self {
        Self {
            path: path.into(),
            location,
            error,
        }
    }
}
