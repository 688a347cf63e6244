//! Printing the progress lines of `up`, `down` and the lifecycle commands: one line per
//! object and step (`✔ Container demo-web-1  Started`) on a terminal, plain lines
//! otherwise, nothing with `--progress quiet`. Progress goes to stderr, as Compose's.

use std::io::{IsTerminal, Write};

use berth_engine::stack::{ObjectKind, Progress, Status};

use crate::api::stack::StackLine;
use crate::client::Lines;

/// `--progress`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ProgressMode {
    /// Per-object lines with marks and colours.
    Tty,
    /// Plain lines.
    Plain,
    /// Nothing (errors only).
    Quiet,
}

impl ProgressMode {
    /// The mode asked for, else `tty` on a terminal and `plain` otherwise.
    pub fn detect(asked: Option<ProgressMode>) -> ProgressMode {
        asked.unwrap_or_else(|| {
            if std::io::stderr().is_terminal() {
                ProgressMode::Tty
            } else {
                ProgressMode::Plain
            }
        })
    }
}

/// The failure of a stack operation, with the failed services.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct StackFailed {
    /// The daemon's message.
    pub message: String,
}

fn kind(k: ObjectKind) -> &'static str {
    match k {
        ObjectKind::Container => "Container",
        ObjectKind::Network => "Network",
        ObjectKind::Volume => "Volume",
        ObjectKind::Image => "Image",
        ObjectKind::Stack => "Project",
    }
}

/// One progress line as printed.
pub fn render(p: &Progress, mode: ProgressMode) -> Option<String> {
    let detail = match (&p.detail, &p.service, p.status) {
        // Why a container is replaced: `web: environment changed`.
        (Some(d), Some(s), Status::Recreating | Status::Restarting | Status::Removing) => {
            format!("  {s}: {d}")
        }
        (Some(d), _, _) => format!("  {d}"),
        _ => String::new(),
    };
    match mode {
        ProgressMode::Quiet => None,
        ProgressMode::Plain => Some(format!(
            "{} {}  {}{detail}",
            kind(p.kind),
            p.name,
            p.status.as_str()
        )),
        ProgressMode::Tty => {
            let mark = match p.status {
                Status::Error => console::style("✘").red().to_string(),
                Status::Warning => console::style("!").yellow().to_string(),
                Status::Created
                | Status::Built
                | Status::Started
                | Status::Running
                | Status::Healthy
                | Status::Exited
                | Status::Stopped
                | Status::Paused
                | Status::Unpaused
                | Status::Removed => console::style("✔").green().to_string(),
                _ => console::style("⠿").blue().to_string(),
            };
            Some(format!(
                " {mark} {} {:<24} {}{}",
                kind(p.kind),
                p.name,
                p.status.as_str(),
                console::style(detail).dim()
            ))
        }
    }
}

/// Prints progress lines until the result line; an error result becomes the error.
pub async fn follow(mut lines: Lines, mode: ProgressMode) -> anyhow::Result<()> {
    let mut err = std::io::stderr().lock();
    while let Some(line) = lines.next_line().await? {
        let parsed: StackLine = serde_json::from_str(&line)
            .map_err(|e| anyhow::anyhow!("unexpected line from the daemon: {e}: {line}"))?;
        match parsed {
            StackLine::Progress(p) => {
                if p.status == Status::Warning {
                    let _ = writeln!(
                        err,
                        "WARN[0000] {}",
                        p.detail.as_deref().unwrap_or_default()
                    );
                } else if let Some(text) = render(&p, mode) {
                    let _ = writeln!(err, "{text}");
                }
            }
            StackLine::Result { error: None, .. } => return Ok(()),
            StackLine::Result {
                error: Some(message),
                ..
            } => return Err(StackFailed { message }.into()),
        }
    }
    Err(anyhow::anyhow!(
        "the daemon closed the stream before the result"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recreate_lines_say_why() {
        let p = Progress::container("web", "demo-web-1", Status::Recreating)
            .detail("environment changed");
        assert_eq!(
            render(&p, ProgressMode::Plain).unwrap(),
            "Container demo-web-1  Recreating  web: environment changed"
        );
        assert_eq!(render(&p, ProgressMode::Quiet), None);
        let n = Progress::network("demo_default", Status::Created);
        assert_eq!(
            render(&n, ProgressMode::Plain).unwrap(),
            "Network demo_default  Created"
        );
    }
}
