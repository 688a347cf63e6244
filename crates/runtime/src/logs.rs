//! Container logs as JSON lines, one object per line of output, like Docker's `json-file`
//! driver: `{"stream":"stdout","time":"2026-…Z","log":"hello\n"}`. The monitor writes them
//! (splitting output into lines and rotating by size); readers list them oldest first.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::LogConfig;

/// Errors of the log module.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// Opening or writing a log file failed.
    #[error("write log {path}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// Reading a log file failed.
    #[error("read log {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// A line of a log file is not a log entry.
    #[error("malformed log entry in {path}: {line:?}")]
    Malformed {
        /// The file.
        path: PathBuf,
        /// The line.
        line: String,
    },
}

/// Which output stream a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Stream {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
}

/// One logged line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogEntry {
    /// The stream.
    pub stream: Stream,
    /// When the monitor read it (RFC 3339, UTC).
    pub time: String,
    /// The text, including its trailing newline (absent on a final partial line).
    pub log: String,
}

/// Lines longer than this are split, as Docker does at 16 KiB.
const MAX_LINE: usize = 16 * 1024;

/// Writes entries to the current file and rotates it.
#[derive(Debug)]
pub struct LogWriter {
    config: LogConfig,
    file: File,
    size: u64,
}

impl LogWriter {
    /// Opens (appends to) the log file.
    pub fn open(config: LogConfig) -> Result<Self, LogError> {
        let file = open_append(&config.path)?;
        let size = file.metadata().map(|m| m.len()).unwrap_or(0);
        Ok(Self { config, file, size })
    }

    /// Appends one entry, rotating first if it would exceed the size limit.
    pub fn write(&mut self, stream: Stream, text: &[u8]) -> Result<(), LogError> {
        let entry = LogEntry {
            stream,
            time: crate::clock::now_rfc3339(),
            log: String::from_utf8_lossy(text).into_owned(),
        };
        let mut line = serde_json::to_vec(&entry).map_err(|e| LogError::Write {
            path: self.config.path.clone(),
            source: io::Error::new(io::ErrorKind::InvalidData, e),
        })?;
        line.push(b'\n');
        if let Some(max) = self.config.max_size
            && self.size > 0
            && self.size + line.len() as u64 > max
        {
            self.rotate()?;
        }
        self.file
            .write_all(&line)
            .map_err(|source| LogError::Write {
                path: self.config.path.clone(),
                source,
            })?;
        self.size += line.len() as u64;
        Ok(())
    }

    fn rotate(&mut self) -> Result<(), LogError> {
        let keep = self.config.max_files.max(1);
        let path = &self.config.path;
        let err = |source| LogError::Write {
            path: path.clone(),
            source,
        };
        if keep == 1 {
            self.file.set_len(0).map_err(err)?;
        } else {
            for i in (1..keep - 1).rev() {
                let from = rotated(path, i);
                if from.exists() {
                    fs::rename(&from, rotated(path, i + 1)).map_err(err)?;
                }
            }
            fs::rename(path, rotated(path, 1)).map_err(err)?;
            self.file = open_append(path)?;
        }
        self.size = 0;
        Ok(())
    }
}

fn open_append(path: &Path) -> Result<File, LogError> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|source| LogError::Write {
            path: path.to_owned(),
            source,
        })
}

/// `<path>.<n>`.
pub fn rotated(path: &Path, n: u32) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(format!(".{n}"));
    PathBuf::from(s)
}

/// Splits a byte stream into lines (kept with their `\n`), buffering a partial line.
#[derive(Debug, Default)]
pub struct LineSplitter {
    partial: Vec<u8>,
}

impl LineSplitter {
    /// Feeds bytes; calls `emit` for every complete line (or 16 KiB chunk).
    pub fn feed<E>(
        &mut self,
        mut data: &[u8],
        mut emit: impl FnMut(&[u8]) -> Result<(), E>,
    ) -> Result<(), E> {
        while let Some(pos) = data.iter().position(|&b| b == b'\n') {
            let (line, rest) = data.split_at(pos + 1);
            if self.partial.is_empty() {
                emit(line)?;
            } else {
                self.partial.extend_from_slice(line);
                emit(&self.partial)?;
                self.partial.clear();
            }
            data = rest;
        }
        self.partial.extend_from_slice(data);
        while self.partial.len() >= MAX_LINE {
            let rest = self.partial.split_off(MAX_LINE);
            emit(&self.partial)?;
            self.partial = rest;
        }
        Ok(())
    }

    /// Emits what remains at end of stream.
    pub fn finish<E>(&mut self, mut emit: impl FnMut(&[u8]) -> Result<(), E>) -> Result<(), E> {
        if !self.partial.is_empty() {
            emit(&self.partial)?;
            self.partial.clear();
        }
        Ok(())
    }
}

/// Every entry of a container's logs, oldest first (rotated files included).
pub fn read_all(config: &LogConfig) -> Result<Vec<LogEntry>, LogError> {
    let mut files: Vec<PathBuf> = (1..config.max_files.max(1))
        .rev()
        .map(|i| rotated(&config.path, i))
        .filter(|p| p.exists())
        .collect();
    files.push(config.path.clone());
    let mut out = Vec::new();
    for path in files {
        let f = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(source) => return Err(LogError::Read { path, source }),
        };
        for line in BufReader::new(f).lines() {
            let line = line.map_err(|source| LogError::Read {
                path: path.clone(),
                source,
            })?;
            let entry = serde_json::from_str(&line).map_err(|_| LogError::Malformed {
                path: path.clone(),
                line: line.clone(),
            })?;
            out.push(entry);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitter_joins_partial_lines() {
        let mut s = LineSplitter::default();
        let mut got: Vec<String> = Vec::new();
        let mut push = |l: &[u8]| -> Result<(), ()> {
            got.push(String::from_utf8_lossy(l).into_owned());
            Ok(())
        };
        s.feed(b"a\nb", &mut push).unwrap();
        s.feed(b"c\nd", &mut push).unwrap();
        s.finish(&mut push).unwrap();
        assert_eq!(got, vec!["a\n", "bc\n", "d"]);
    }

    #[test]
    fn rotation_keeps_max_files_and_reads_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let config = LogConfig {
            path: dir.path().join("c.log"),
            max_size: Some(200),
            max_files: 3,
        };
        let mut w = LogWriter::open(config.clone()).unwrap();
        for i in 0..20 {
            w.write(Stream::Stdout, format!("line {i}\n").as_bytes())
                .unwrap();
        }
        w.write(Stream::Stderr, b"oops\n").unwrap();
        assert!(rotated(&config.path, 2).exists());
        assert!(!rotated(&config.path, 3).exists());
        let all = read_all(&config).unwrap();
        let last = all.last().unwrap();
        assert_eq!((last.stream, last.log.as_str()), (Stream::Stderr, "oops\n"));
        let nums: Vec<u32> = all
            .iter()
            .filter_map(|e| e.log.strip_prefix("line ")?.trim().parse().ok())
            .collect();
        assert!(nums.windows(2).all(|w| w[1] == w[0] + 1), "{nums:?}");
        assert_eq!(*nums.last().unwrap(), 19);
        for f in [config.path.clone(), rotated(&config.path, 1)] {
            assert!(fs::metadata(&f).unwrap().len() <= 200);
        }
    }
}
