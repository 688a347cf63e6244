//! `ADD <url>`: the builder fetches the file itself (over the host's network, as Docker's
//! builder does), once per build, into the build's scratch directory. Its SHA-256 enters
//! the step's cache key, so a changed remote file rebuilds the step; `--checksum` is
//! verified; the `Last-Modified` header becomes the file's mtime.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use sha2::{Digest as _, Sha256};

/// How long a download may take before ADD fails.
const TIMEOUT: Duration = Duration::from_secs(300);

/// Why an `ADD <url>` failed.
#[derive(Debug, thiserror::Error)]
pub enum DownloadError {
    /// The request could not be made or the server could not be reached.
    #[error("ADD {url}: cannot download it (is the network up and the address right?)")]
    Fetch {
        /// The URL.
        url: String,
        /// Why.
        #[source]
        source: reqwest::Error,
    },
    /// The server answered with an error status.
    #[error("ADD {url}: the server answered {status}")]
    Status {
        /// The URL.
        url: String,
        /// The HTTP status.
        status: reqwest::StatusCode,
    },
    /// `--checksum` does not match.
    #[error("ADD {url}: checksum mismatch: expected {expected}, got sha256:{actual}")]
    Checksum {
        /// The URL.
        url: String,
        /// As written.
        expected: String,
        /// What the body hashes to.
        actual: String,
    },
    /// Writing the file failed.
    #[error("ADD {url}: writing {path}")]
    Io {
        /// The URL.
        url: String,
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The async runtime for the download could not start.
    #[error("ADD {url}: starting the download")]
    Runtime {
        /// The URL.
        url: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

/// A downloaded file.
#[derive(Debug, Clone)]
pub struct Downloaded {
    /// Where its bytes are.
    pub path: PathBuf,
    /// `sha256` hex of its bytes.
    pub sha256: String,
    /// Its size.
    pub size: u64,
    /// `Last-Modified` as seconds since the epoch (0 when absent).
    pub mtime: u64,
}

/// The file name a URL gives a download (its path's last segment, else `index.html`).
pub fn file_name(url: &str) -> String {
    let no_query = url.split(['?', '#']).next().unwrap_or(url);
    let path = no_query.split_once("://").map_or(no_query, |(_, r)| r);
    match path.split_once('/') {
        Some((_, p)) => p
            .rsplit('/')
            .next()
            .filter(|s| !s.is_empty())
            .unwrap_or("index.html")
            .to_string(),
        None => "index.html".to_string(),
    }
}

/// Downloads `url` into `dir` (once: a second call for the same URL reuses the file).
pub fn fetch(url: &str, dir: &Path, checksum: Option<&str>) -> Result<Downloaded, DownloadError> {
    let name = hex::encode(Sha256::digest(url.as_bytes()));
    let path = dir.join(&name);
    let meta_path = dir.join(format!("{name}.meta"));
    let io = |path: &Path| {
        let (url, path) = (url.to_string(), path.to_path_buf());
        move |source| DownloadError::Io { url, path, source }
    };
    if let (Ok(meta), Ok(m)) = (
        std::fs::read_to_string(&meta_path),
        std::fs::metadata(&path),
    ) && let Some((sum, mtime)) = meta.trim().split_once(' ')
    {
        let d = Downloaded {
            path,
            sha256: sum.to_string(),
            size: m.len(),
            mtime: mtime.parse().unwrap_or(0),
        };
        verify(url, &d, checksum)?;
        return Ok(d);
    }
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|source| DownloadError::Runtime {
            url: url.to_string(),
            source,
        })?;
    let fetch_err = |source| DownloadError::Fetch {
        url: url.to_string(),
        source,
    };
    let tmp = dir.join(format!("{name}.part"));
    let (sha256, size, mtime) = rt.block_on(async {
        let client = reqwest::Client::builder()
            .timeout(TIMEOUT)
            .build()
            .map_err(fetch_err)?;
        let mut resp = client.get(url).send().await.map_err(fetch_err)?;
        if !resp.status().is_success() {
            return Err(DownloadError::Status {
                url: url.to_string(),
                status: resp.status(),
            });
        }
        let mtime = resp
            .headers()
            .get(reqwest::header::LAST_MODIFIED)
            .and_then(|v| v.to_str().ok())
            .and_then(httpdate)
            .unwrap_or(0);
        let mut f = std::fs::File::create(&tmp).map_err(io(&tmp))?;
        let mut h = Sha256::new();
        let mut size = 0u64;
        while let Some(chunk) = resp.chunk().await.map_err(fetch_err)? {
            h.update(&chunk);
            size += chunk.len() as u64;
            f.write_all(&chunk).map_err(io(&tmp))?;
        }
        Ok((hex::encode(h.finalize()), size, mtime))
    })?;
    std::fs::rename(&tmp, &path).map_err(io(&path))?;
    std::fs::write(&meta_path, format!("{sha256} {mtime}")).map_err(io(&meta_path))?;
    let d = Downloaded {
        path,
        sha256,
        size,
        mtime,
    };
    verify(url, &d, checksum)?;
    Ok(d)
}

fn verify(url: &str, d: &Downloaded, checksum: Option<&str>) -> Result<(), DownloadError> {
    match checksum {
        Some(c) if c.strip_prefix("sha256:").unwrap_or(c) != d.sha256 => {
            Err(DownloadError::Checksum {
                url: url.to_string(),
                expected: c.to_string(),
                actual: d.sha256.clone(),
            })
        }
        _ => Ok(()),
    }
}

/// Parses an RFC 7231 date (`Sun, 06 Nov 1994 08:49:37 GMT`).
fn httpdate(s: &str) -> Option<u64> {
    humantime::parse_rfc3339(&rfc3339_of(s)?)
        .ok()?
        .duration_since(std::time::UNIX_EPOCH)
        .ok()
        .map(|d| d.as_secs())
}

fn rfc3339_of(s: &str) -> Option<String> {
    let parts: Vec<&str> = s.split_whitespace().collect();
    let [_, day, month, year, time, "GMT"] = parts.as_slice() else {
        return None;
    };
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let m = MONTHS.iter().position(|x| x == month)? + 1;
    Some(format!("{year}-{m:02}-{day:0>2}T{time}Z"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_dates() {
        assert_eq!(
            file_name("https://example.com/a/b/tool.tar.gz?x=1"),
            "tool.tar.gz"
        );
        assert_eq!(file_name("http://example.com"), "index.html");
        assert_eq!(file_name("http://example.com/dir/"), "index.html");
        assert_eq!(httpdate("Sun, 06 Nov 1994 08:49:37 GMT"), Some(784_111_777));
        assert_eq!(httpdate("yesterday"), None);
    }
}
