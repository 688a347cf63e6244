//! A small bearer-token server (Docker token spec): `GET /token?service=..&scope=..` answers
//! `{"token": <JWT>}` signed RS256 with a key whose self-signed certificate the registry trusts
//! (`rootcertbundle`). Keys, certificate and signatures come from the `openssl` command.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};

use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};

use super::run;

/// The `service` the registry is configured with.
pub const SERVICE: &str = "berth-test-registry";
/// The token issuer the registry expects.
pub const ISSUER: &str = "berth-test-issuer";

#[derive(Clone)]
struct Shared {
    key: PathBuf,
    cert_der_b64: String,
    basic: Option<String>,
    scopes: Arc<Mutex<Vec<String>>>,
}

/// A running token server.
pub struct TokenServer {
    /// Realm URL for the registry config.
    pub realm: String,
    /// Certificate bundle for the registry config.
    pub cert: PathBuf,
    /// Every scope requested so far, in order.
    pub scopes: Arc<Mutex<Vec<String>>>,
    _dir: tempfile::TempDir,
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' if i + 2 < b.len() => {
                let hex = std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("00");
                out.push(u8::from_str_radix(hex, 16).unwrap_or(b'?'));
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

async fn token(State(s): State<Shared>, headers: HeaderMap, RawQuery(q): RawQuery) -> Response {
    if let Some(expected) = &s.basic {
        let given = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        if given != expected {
            return (StatusCode::UNAUTHORIZED, "bad credentials").into_response();
        }
    }
    let mut access = Vec::new();
    for pair in q.unwrap_or_default().split('&') {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        if k == "scope" {
            let scope = percent_decode(v);
            s.scopes.lock().unwrap().push(scope.clone());
            let parts: Vec<&str> = scope.splitn(3, ':').collect();
            if parts.len() == 3 {
                access.push(serde_json::json!({
                    "type": parts[0], "name": parts[1],
                    "actions": parts[2].split(',').collect::<Vec<_>>(),
                }));
            }
        }
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let header = serde_json::json!({"typ": "JWT", "alg": "RS256", "x5c": [s.cert_der_b64]});
    let claims = serde_json::json!({
        "iss": ISSUER, "sub": "berth", "aud": SERVICE, "exp": now + 300, "nbf": now - 10,
        "iat": now, "jti": format!("{now}-{}", access.len()), "access": access,
    });
    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let key = s.key.clone();
    let sig = tokio::task::spawn_blocking(move || {
        use std::io::Write;
        let mut child = Command::new("openssl")
            .args(["dgst", "-sha256", "-sign"])
            .arg(&key)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(signing_input.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        (signing_input, out.stdout)
    })
    .await
    .unwrap();
    let jwt = format!("{}.{}", sig.0, URL_SAFE_NO_PAD.encode(sig.1));
    axum::Json(serde_json::json!({"token": jwt, "expires_in": 300})).into_response()
}

impl TokenServer {
    /// Starts the server on `rt`; with `basic`, token requests must carry those credentials.
    pub fn start(rt: &tokio::runtime::Runtime, basic: Option<(&str, &str)>) -> TokenServer {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("key.pem");
        let cert = dir.path().join("cert.pem");
        let der = dir.path().join("cert.der");
        run(Command::new("openssl")
            .args([
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj",
            ])
            .arg("/CN=berth-test-token")
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&cert));
        run(Command::new("openssl")
            .args(["x509", "-outform", "DER", "-in"])
            .arg(&cert)
            .arg("-out")
            .arg(&der));
        let scopes = Arc::new(Mutex::new(Vec::new()));
        let shared = Shared {
            key,
            cert_der_b64: STANDARD.encode(std::fs::read(&der).unwrap()),
            basic: basic.map(|(u, p)| format!("Basic {}", STANDARD.encode(format!("{u}:{p}")))),
            scopes: scopes.clone(),
        };
        let listener = rt
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let addr = listener.local_addr().unwrap();
        let app = axum::Router::new()
            .route("/token", axum::routing::get(token))
            .with_state(shared);
        rt.spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        TokenServer {
            realm: format!("http://{addr}/token"),
            cert,
            scopes,
            _dir: dir,
        }
    }
}
