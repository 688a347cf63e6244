//! A raw HTTP/1.0 exchange with the daemon's socket, independent of berth's own
//! client, so tests see exactly what goes over the wire.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

/// A response as received.
#[derive(Debug, Clone)]
pub struct HttpResponse {
    /// Status code.
    pub status: u16,
    /// The `content-type` header (empty when absent).
    pub content_type: String,
    /// The body as text.
    pub body: String,
}

/// Sends `method path` with an empty body and reads the whole answer. HTTP/1.0 makes
/// the server close the connection after the body, with no chunked encoding.
pub fn request(socket: &Path, method: &str, path: &str) -> HttpResponse {
    let mut stream =
        UnixStream::connect(socket).unwrap_or_else(|e| panic!("connect {}: {e}", socket.display()));
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("set a timeout on a connected socket");
    write!(
        stream,
        "{method} {path} HTTP/1.0\r\nHost: berth\r\nContent-Length: 0\r\n\r\n"
    )
    .expect("send request");
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).expect("read response");
    let text = String::from_utf8(raw).expect("UTF-8 response");
    let (head, body) = text
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no end of headers in {text:?}"));
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
    let content_type = lines
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.eq_ignore_ascii_case("content-type"))
        .map(|(_, v)| v.trim().to_string())
        .unwrap_or_default();
    HttpResponse {
        status,
        content_type,
        body: body.to_string(),
    }
}
