//! The API client: HTTP/1.1 over the daemon's unix socket (hyper 1), JSON bodies,
//! and newline-delimited streams. [`connect_or_start`] starts a daemon first when
//! none answers.

mod autostart;

use std::io;
use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Method, Request, Response, StatusCode, header};
use hyper_util::rt::TokioIo;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::net::UnixStream;

pub use autostart::Endpoint;

use crate::api::ErrorBody;

/// Errors talking to (or starting) the daemon.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// `--host` is not `unix:///path` or an absolute path.
    #[error("invalid --host {0:?}: expected unix:///path/to/berth.sock")]
    InvalidHost(String),
    /// The socket could not be connected to.
    #[error("cannot connect to the berth daemon at {}: {source}", .socket.display())]
    Connect {
        /// The daemon's socket.
        socket: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// The HTTP exchange failed (the daemon closed the connection, ...).
    #[error("talking to the berth daemon at {}: {source}", .socket.display())]
    Http {
        /// The daemon's socket.
        socket: PathBuf,
        /// Why.
        #[source]
        source: hyper::Error,
    },
    /// The connection was closed before any answer (a daemon that is dying).
    #[error("the berth daemon at {} closed the connection without answering: {source}", .socket.display())]
    NoAnswer {
        /// The daemon's socket.
        socket: PathBuf,
        /// Why.
        #[source]
        source: hyper::Error,
    },
    /// The daemon answered with an error (its message is what the user needs to read).
    #[error("{message}")]
    Api {
        /// HTTP status.
        status: StatusCode,
        /// The daemon's message.
        message: String,
        /// The exit code the daemon suggests for the command.
        exit_code: Option<u8>,
    },
    /// The daemon's answer is not what this client understands.
    #[error("unexpected answer from the daemon: {0}")]
    Decode(String),
    /// The daemon could not be launched.
    #[error("cannot start the berth daemon: {op} {}: {source}", .path.display())]
    Spawn {
        /// What was being done.
        op: &'static str,
        /// The path concerned (the executable or the log file).
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// The launched daemon exited before it answered.
    #[error("the berth daemon exited while starting ({status}); see its log {}", .log.display())]
    StartFailed {
        /// Its exit status.
        status: ExitStatus,
        /// Its log file.
        log: PathBuf,
    },
    /// The launched daemon did not answer in time.
    #[error("the berth daemon did not answer within {timeout:?}; see its log {}", .log.display())]
    StartTimeout {
        /// How long we waited.
        timeout: Duration,
        /// Its log file.
        log: PathBuf,
    },
}

impl ClientError {
    /// Whether this means "no daemon listens there" (no socket, or a stale one).
    pub fn is_not_running(&self) -> bool {
        matches!(self, ClientError::Connect { source, .. }
            if matches!(source.kind(), io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused))
    }
}

/// The daemon's socket: from `--host unix:///path` (or a bare absolute path), else
/// `<run_dir>/berth.sock`.
pub fn socket_path(host: Option<&str>, run_dir: &Path) -> Result<PathBuf, ClientError> {
    match host {
        None => Ok(run_dir.join("berth.sock")),
        Some(h) => {
            let path = h.strip_prefix("unix://").unwrap_or(h);
            if path.starts_with('/') {
                Ok(PathBuf::from(path))
            } else {
                Err(ClientError::InvalidHost(h.to_string()))
            }
        }
    }
}

/// A client of one daemon socket. Each request uses its own connection.
#[derive(Debug, Clone)]
pub struct Client {
    socket: PathBuf,
}

impl Client {
    /// A client of the daemon on `socket` (nothing is connected yet).
    pub fn new(socket: PathBuf) -> Client {
        Client { socket }
    }

    /// Whether something accepts connections on the socket.
    pub async fn probe(&self) -> Result<(), ClientError> {
        self.connect().await.map(drop)
    }

    async fn connect(&self) -> Result<UnixStream, ClientError> {
        UnixStream::connect(&self.socket)
            .await
            .map_err(|source| ClientError::Connect {
                socket: self.socket.clone(),
                source,
            })
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<Response<Incoming>, ClientError> {
        let http = |source| ClientError::Http {
            socket: self.socket.clone(),
            source,
        };
        let no_answer = |source| ClientError::NoAnswer {
            socket: self.socket.clone(),
            source,
        };
        let stream = self.connect().await?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(no_answer)?;
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!("daemon connection: {e}");
            }
        });
        let mut request = Request::builder()
            .method(method)
            .uri(path)
            .header(header::HOST, "berth");
        if body.is_some() {
            request = request.header(header::CONTENT_TYPE, "application/json");
        }
        let request = request
            .body(Full::new(Bytes::from(body.unwrap_or_default())))
            .map_err(|e| ClientError::Decode(format!("cannot build request for {path}: {e}")))?;
        let response = sender.send_request(request).await.map_err(no_answer)?;
        if response.status().is_success() {
            return Ok(response);
        }
        let status = response.status();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(http)?
            .to_bytes();
        let (message, exit_code) = match serde_json::from_slice::<ErrorBody>(&body) {
            Ok(b) => (b.message, b.exit_code),
            Err(_) => (String::from_utf8_lossy(&body).into_owned(), None),
        };
        Err(ClientError::Api {
            status,
            message,
            exit_code,
        })
    }

    async fn json<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<T, ClientError> {
        let body = self.bytes(method, path, body).await?;
        serde_json::from_slice(&body).map_err(|e| ClientError::Decode(format!("{path}: {e}")))
    }

    /// Sends a request and collects the whole answer.
    async fn bytes(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<Bytes, ClientError> {
        let response = self.send(method, path, body).await?;
        Ok(response
            .into_body()
            .collect()
            .await
            .map_err(|source| ClientError::Http {
                socket: self.socket.clone(),
                source,
            })?
            .to_bytes())
    }

    /// `GET path`, decoding a JSON answer.
    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        self.json(Method::GET, path, None).await
    }

    /// `POST path` with an empty body, decoding a JSON answer.
    pub async fn post<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        self.json(Method::POST, path, None).await
    }

    /// `POST path` with a JSON body, decoding a JSON answer.
    pub async fn post_json<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T, ClientError> {
        let body = serde_json::to_vec(body)
            .map_err(|e| ClientError::Decode(format!("cannot encode request for {path}: {e}")))?;
        self.json(Method::POST, path, Some(body)).await
    }

    /// `DELETE path`, decoding a JSON answer.
    pub async fn delete<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        self.json(Method::DELETE, path, None).await
    }

    /// `GET path`, the answer's raw bytes (a tar archive).
    pub async fn get_bytes(&self, path: &str) -> Result<Vec<u8>, ClientError> {
        Ok(self.bytes(Method::GET, path, None).await?.to_vec())
    }

    /// `PUT path` with a raw body (a tar archive), decoding a JSON answer.
    pub async fn put_bytes<T: DeserializeOwned>(
        &self,
        path: &str,
        body: Vec<u8>,
    ) -> Result<T, ClientError> {
        self.json(Method::PUT, path, Some(body)).await
    }

    /// `GET path` on a streaming route, read one line at a time.
    pub async fn lines(&self, path: &str) -> Result<Lines, ClientError> {
        let response = self.send(Method::GET, path, None).await?;
        Ok(Lines {
            socket: self.socket.clone(),
            body: response.into_body(),
            buf: Vec::new(),
            done: false,
        })
    }
}

impl Client {
    /// `POST path` with a JSON body, on a streaming route read one line at a time.
    pub async fn post_lines<B: serde::Serialize>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<Lines, ClientError> {
        let json = serde_json::to_vec(body)
            .map_err(|e| ClientError::Decode(format!("cannot encode request for {path}: {e}")))?;
        let response = self.send(Method::POST, path, Some(json)).await?;
        Ok(Lines {
            socket: self.socket.clone(),
            body: response.into_body(),
            buf: Vec::new(),
            done: false,
        })
    }
}

/// The lines of a streaming answer.
#[derive(Debug)]
pub struct Lines {
    socket: PathBuf,
    body: Incoming,
    buf: Vec<u8>,
    done: bool,
}

impl Lines {
    /// The next complete line (without its newline), or `None` at the end.
    pub async fn next_line(&mut self) -> Result<Option<String>, ClientError> {
        loop {
            if let Some(pos) = self.buf.iter().position(|&b| b == b'\n') {
                let rest = self.buf.split_off(pos + 1);
                let mut line = std::mem::replace(&mut self.buf, rest);
                line.pop();
                return String::from_utf8(line)
                    .map(Some)
                    .map_err(|e| ClientError::Decode(e.to_string()));
            }
            if self.done {
                return Ok(None);
            }
            match self.body.frame().await {
                None => self.done = true,
                Some(Err(source)) => {
                    return Err(ClientError::Http {
                        socket: self.socket.clone(),
                        source,
                    });
                }
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        self.buf.extend_from_slice(&data);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_forms() {
        let run = Path::new("/run/berth");
        assert_eq!(socket_path(None, run).unwrap(), run.join("berth.sock"));
        assert_eq!(
            socket_path(Some("unix:///tmp/x.sock"), run).unwrap(),
            PathBuf::from("/tmp/x.sock")
        );
        assert_eq!(
            socket_path(Some("/tmp/y.sock"), run).unwrap(),
            PathBuf::from("/tmp/y.sock")
        );
        for bad in ["tcp://127.0.0.1:2375", "unix://relative.sock", "x.sock"] {
            assert!(
                matches!(socket_path(Some(bad), run), Err(ClientError::InvalidHost(h)) if h == bad)
            );
        }
    }
}
