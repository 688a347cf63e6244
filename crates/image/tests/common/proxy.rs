//! An HTTP proxy in front of a registry that misbehaves on purpose for one blob: flips a byte
//! of it, or drops the connection half-way through it (once).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::Response;
use bytes::Bytes;

/// What the proxy does to the target blob.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Fault {
    /// Flip one byte in the middle of the blob, every time.
    FlipByte,
    /// Send half of the blob then drop the connection, the first time only.
    DropOnce,
    /// Answer every manifest request with 429 Too Many Requests.
    RateLimit,
}

#[derive(Clone)]
struct Shared {
    upstream: String,
    target: String,
    fault: Fault,
    http: reqwest::Client,
    drops: Arc<AtomicUsize>,
    ranges: Arc<AtomicUsize>,
}

/// A running proxy.
pub struct Proxy {
    /// `127.0.0.1:<port>` to use as the registry host.
    pub host: String,
    /// How many connections were dropped (or requests refused with 429).
    pub drops: Arc<AtomicUsize>,
    /// How many blob requests carried a `Range` header.
    pub ranges: Arc<AtomicUsize>,
}

async fn forward(State(s): State<Shared>, req: Request) -> Response {
    let path = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_default();
    if s.fault == Fault::RateLimit && path.contains("/manifests/") {
        s.drops.fetch_add(1, Ordering::SeqCst);
        return Response::builder()
            .status(429)
            .header("retry-after", "1")
            .body(Body::from(
                r#"{"errors":[{"code":"TOOMANYREQUESTS","message":"slow down"}]}"#,
            ))
            .unwrap();
    }
    let is_target = req.method() == "GET" && path.ends_with(&format!("/blobs/{}", s.target));
    if is_target && req.headers().contains_key("range") {
        s.ranges.fetch_add(1, Ordering::SeqCst);
    }
    let mut up = s
        .http
        .request(req.method().clone(), format!("http://{}{path}", s.upstream));
    for (k, v) in req.headers() {
        if k != "host" {
            up = up.header(k, v);
        }
    }
    let body = axum::body::to_bytes(req.into_body(), usize::MAX)
        .await
        .unwrap();
    let resp = up.body(body).send().await.unwrap();
    let mut builder = Response::builder().status(resp.status());
    for (k, v) in resp.headers() {
        builder = builder.header(k, v);
    }
    let data = resp.bytes().await.unwrap();
    if !is_target || data.is_empty() {
        return builder.body(Body::from(data)).unwrap();
    }
    match s.fault {
        Fault::RateLimit => builder.body(Body::from(data)).unwrap(),
        Fault::FlipByte => {
            let mut v = data.to_vec();
            let mid = v.len() / 2;
            v[mid] ^= 0xff;
            builder.body(Body::from(v)).unwrap()
        }
        Fault::DropOnce => {
            if s.drops.fetch_add(1, Ordering::SeqCst) > 0 {
                return builder.body(Body::from(data)).unwrap();
            }
            let half = data.slice(..data.len() / 2);
            let chunks: Vec<Result<Bytes, std::io::Error>> = vec![
                Ok(half),
                Err(std::io::Error::other("connection dropped on purpose")),
            ];
            builder
                .body(Body::from_stream(futures::stream::iter(chunks)))
                .unwrap()
        }
    }
}

impl Proxy {
    /// Starts a proxy to `upstream` (host:port) that applies `fault` to blob `target`
    /// (`sha256:...`).
    pub fn start(
        rt: &tokio::runtime::Runtime,
        upstream: &str,
        target: &str,
        fault: Fault,
    ) -> Proxy {
        let drops = Arc::new(AtomicUsize::new(0));
        let ranges = Arc::new(AtomicUsize::new(0));
        let shared = Shared {
            upstream: upstream.to_owned(),
            target: target.to_owned(),
            fault,
            http: reqwest::Client::new(),
            drops: drops.clone(),
            ranges: ranges.clone(),
        };
        let listener = rt
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let host = listener.local_addr().unwrap().to_string();
        let app = axum::Router::new().fallback(forward).with_state(shared);
        rt.spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Proxy {
            host,
            drops,
            ranges,
        }
    }
}
