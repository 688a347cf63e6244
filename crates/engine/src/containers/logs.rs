//! Reading a container's JSON-lines log: all of it, its last lines, or following it until the
//! container has exited (what `berth logs [-f] [--tail N]` and a foreground `berth run` show).

use std::fs::File;
use std::io::{BufRead, BufReader, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::Duration;

use berth_runtime::logs::LogEntry;

/// Errors reading a log.
#[derive(Debug, thiserror::Error)]
pub enum LogsError {
    /// The file could not be read.
    #[error("read log {path}: {source}")]
    Read {
        /// The log file.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// A line is not a log entry.
    #[error("log {path} has a malformed line: {line:?}")]
    Malformed {
        /// The log file.
        path: PathBuf,
        /// The line.
        line: String,
    },
}

/// How often a followed log is polled for new lines.
const POLL: Duration = Duration::from_millis(50);

/// A reader positioned in a log file that hands out complete entries.
#[derive(Debug)]
pub struct LogReader {
    path: PathBuf,
    offset: u64,
}

impl LogReader {
    /// A reader at the start of `path` (which may not exist yet).
    pub fn new(path: &Path) -> LogReader {
        LogReader {
            path: path.to_path_buf(),
            offset: 0,
        }
    }

    /// The complete entries written since the last call.
    pub fn read_new(&mut self) -> Result<Vec<LogEntry>, LogsError> {
        let err = |source| LogsError::Read {
            path: self.path.clone(),
            source,
        };
        let mut file = match File::open(&self.path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(err(e)),
        };
        file.seek(SeekFrom::Start(self.offset)).map_err(err)?;
        let mut reader = BufReader::new(file);
        let mut out = Vec::new();
        let mut line = String::new();
        loop {
            line.clear();
            let n = reader.read_line(&mut line).map_err(err)?;
            // A line without its newline is still being written: read it next time.
            if n == 0 || !line.ends_with('\n') {
                break;
            }
            self.offset += n as u64;
            let entry =
                serde_json::from_str(line.trim_end()).map_err(|_| LogsError::Malformed {
                    path: self.path.clone(),
                    line: line.clone(),
                })?;
            out.push(entry);
        }
        Ok(out)
    }

    /// Hands every entry to `emit` until `done()` says the writer has finished, then drains
    /// what is left.
    pub fn follow(
        &mut self,
        mut done: impl FnMut() -> bool,
        mut emit: impl FnMut(&LogEntry),
    ) -> Result<(), LogsError> {
        loop {
            let finished = done();
            for e in self.read_new()? {
                emit(&e);
            }
            if finished {
                return Ok(());
            }
            std::thread::sleep(POLL);
        }
    }
}

/// The last `n` entries (all when `None`).
pub fn tail(entries: Vec<LogEntry>, n: Option<usize>) -> Vec<LogEntry> {
    match n {
        Some(n) if n < entries.len() => entries[entries.len() - n..].to_vec(),
        _ => entries,
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    #[test]
    fn reader_returns_complete_lines_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c-json.log");
        let mut r = LogReader::new(&path);
        assert_eq!(r.read_new().unwrap(), vec![]);
        let mut f = File::create(&path).unwrap();
        write!(
            f,
            "{{\"stream\":\"stdout\",\"time\":\"t1\",\"log\":\"a\\n\"}}\n{{\"stream\":\"stderr\""
        )
        .unwrap();
        let got = r.read_new().unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].log, "a\n");
        writeln!(f, ",\"time\":\"t2\",\"log\":\"b\\n\"}}").unwrap();
        let got = r.read_new().unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].log, "b\n");
        assert_eq!(tail(got.clone(), Some(0)), vec![]);
        assert_eq!(tail(got.clone(), Some(5)), got);
        writeln!(f, "not json").unwrap();
        assert!(matches!(r.read_new(), Err(LogsError::Malformed { .. })));
    }
}
