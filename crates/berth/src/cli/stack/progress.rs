//! Printing the progress lines of `up`, `down` and the lifecycle commands: on a terminal
//! (`--progress tty`) one line per object (`✔ Container demo-web-1  Started`) redrawn in
//! place as it moves on, under a `[+] Running n/m` header; plain lines otherwise, nothing
//! with `--progress quiet`. Progress goes to stderr, as Compose's.

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

/// The `tty` display: one line per object, redrawn in place as its status changes, under
/// a `[+] Running done/total` header, as Compose draws it on a terminal.
#[derive(Debug, Default)]
struct Board {
    /// Object key (kind and name) and its current line, in order of first appearance.
    rows: Vec<(String, String, bool)>,
    /// How many lines the last drawing took (to move back over them).
    drawn: usize,
}

impl Board {
    /// The escape sequence that goes back to the top of the last drawing.
    fn rewind(&self) -> String {
        if self.drawn == 0 {
            String::new()
        } else {
            format!("\x1b[{}A", self.drawn)
        }
    }

    /// The whole board, each line cleared before it is written.
    fn draw(&mut self) -> String {
        let done = self.rows.iter().filter(|r| r.2).count();
        let mut out = format!("\r\x1b[2K[+] Running {done}/{}\n", self.rows.len());
        for (_, line, _) in &self.rows {
            out.push_str(&format!("\r\x1b[2K{line}\n"));
        }
        self.drawn = self.rows.len() + 1;
        out
    }

    /// Records `p` (rendered as `line`) and returns what redraws the board.
    fn update(&mut self, p: &Progress, line: String) -> String {
        let key = format!("{}/{}", kind(p.kind), p.name);
        let finished = finished(p.status);
        match self.rows.iter_mut().find(|r| r.0 == key) {
            Some(row) => {
                row.1 = line;
                row.2 = finished;
            }
            None => self.rows.push((key, line, finished)),
        }
        let mut out = self.rewind();
        out.push_str(&self.draw());
        out
    }

    /// A line printed above the board (a warning), the board drawn again below it.
    fn interject(&mut self, text: &str) -> String {
        let mut out = self.rewind();
        out.push_str(&format!("\r\x1b[2K{text}\n"));
        self.drawn = 0;
        if !self.rows.is_empty() {
            out.push_str(&self.draw());
        }
        out
    }
}

/// Whether a status ends an object's step (a green mark).
fn finished(s: Status) -> bool {
    matches!(
        s,
        Status::Pulled
            | Status::Created
            | Status::Built
            | Status::Started
            | Status::Running
            | Status::Healthy
            | Status::Exited
            | Status::Stopped
            | Status::Paused
            | Status::Unpaused
            | Status::Removed
            | Status::Error
    )
}

/// Prints progress lines until the result line; an error result becomes the error.
/// `tty`: the lines are redrawn in place ([`Board`]); `plain`: one line per report.
pub async fn follow(mut lines: Lines, mode: ProgressMode) -> anyhow::Result<()> {
    let mut err = std::io::stderr().lock();
    let mut board = Board::default();
    while let Some(line) = lines.next_line().await? {
        let parsed: StackLine = serde_json::from_str(&line)
            .map_err(|e| anyhow::anyhow!("unexpected line from the daemon: {e}: {line}"))?;
        match parsed {
            StackLine::Progress(p) => {
                if p.status == Status::Warning {
                    let text = format!("WARN[0000] {}", p.detail.as_deref().unwrap_or_default());
                    let _ = if mode == ProgressMode::Tty {
                        write!(err, "{}", board.interject(&text))
                    } else {
                        writeln!(err, "{text}")
                    };
                } else if let Some(text) = render(&p, mode) {
                    let _ = if mode == ProgressMode::Tty {
                        write!(err, "{}", board.update(&p, text))
                    } else {
                        writeln!(err, "{text}")
                    };
                }
                let _ = err.flush();
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

    #[test]
    fn the_tty_board_redraws_each_object_in_place() {
        let mut b = Board::default();
        let creating = Progress::container("web", "p-web-1", Status::Creating);
        assert_eq!(
            b.update(&creating, "web creating".into()),
            "\r\x1b[2K[+] Running 0/1\n\r\x1b[2Kweb creating\n"
        );
        let net = Progress::network("p_default", Status::Created);
        assert_eq!(
            b.update(&net, "net created".into()),
            "\x1b[2A\r\x1b[2K[+] Running 1/2\n\r\x1b[2Kweb creating\n\r\x1b[2Knet created\n"
        );
        // The same container again: its line changes, no line is added.
        let started = Progress::container("web", "p-web-1", Status::Started);
        assert_eq!(
            b.update(&started, "web started".into()),
            "\x1b[3A\r\x1b[2K[+] Running 2/2\n\r\x1b[2Kweb started\n\r\x1b[2Knet created\n"
        );
        // A warning goes above, the board below it.
        assert_eq!(
            b.interject("WARN x"),
            "\x1b[3A\r\x1b[2KWARN x\n\r\x1b[2K[+] Running 2/2\n\r\x1b[2Kweb started\n\r\x1b[2Knet created\n"
        );
    }
}
