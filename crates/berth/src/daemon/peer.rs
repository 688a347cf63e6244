//! Who is calling: the peer credentials (`SO_PEERCRED`) of each connection, and a
//! middleware that logs every request with them.

use std::time::Instant;

use axum::extract::Request;
use axum::extract::connect_info::{ConnectInfo, Connected};
use axum::middleware::Next;
use axum::response::Response;
use axum::serve::IncomingStream;
use tokio::net::UnixListener;

/// The process at the other end of a connection, as the kernel reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Peer {
    /// Its user id, when known.
    pub uid: Option<u32>,
    /// Its process id, when known.
    pub pid: Option<i32>,
}

impl Connected<IncomingStream<'_, UnixListener>> for Peer {
    fn connect_info(stream: IncomingStream<'_, UnixListener>) -> Peer {
        match stream.io().peer_cred() {
            Ok(cred) => Peer {
                uid: Some(cred.uid()),
                pid: cred.pid(),
            },
            Err(e) => {
                tracing::debug!("no peer credentials: {e}");
                Peer {
                    uid: None,
                    pid: None,
                }
            }
        }
    }
}

/// Logs each request (method, path, status, duration, caller) at debug level.
pub async fn log_requests(
    ConnectInfo(peer): ConnectInfo<Peer>,
    request: Request,
    next: Next,
) -> Response {
    let method = request.method().clone();
    let uri = request.uri().clone();
    let start = Instant::now();
    let response = next.run(request).await;
    tracing::debug!(
        uid = peer.uid,
        pid = peer.pid,
        status = response.status().as_u16(),
        elapsed = ?start.elapsed(),
        "{method} {uri}"
    );
    response
}
