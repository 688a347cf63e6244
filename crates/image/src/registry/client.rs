//! HTTP client for one registry: endpoint discovery (`GET /v2/`), authentication, retries.
//!
//! Flow: the first request pings `/v2/` over HTTPS (or plain HTTP for `localhost`,
//! 127.0.0.0/8 and registries listed as insecure; HTTPS is tried first for those too). A 401
//! answer's `WWW-Authenticate` header decides the scheme: `Basic` sends the credentials on
//! every request; `Bearer` fetches a token from the realm for each scope
//! (`repository:<name>:pull[,push]`) and fetches a fresh one when a request gets 401.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use reqwest::header::{HeaderMap, WWW_AUTHENTICATE};
use reqwest::{Method, RequestBuilder, Response, StatusCode};

use crate::registry::auth::{Challenge, Credentials};

/// Errors talking to a registry.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The request could not be sent or the answer not read.
    #[error("request to {url} failed")]
    Http {
        /// URL.
        url: String,
        /// Cause.
        #[source]
        source: reqwest::Error,
    },
    /// 404.
    #[error("not found: {what} ({detail})")]
    NotFound {
        /// What was asked for.
        what: String,
        /// The registry's error text.
        detail: String,
    },
    /// 401/403 after authenticating.
    #[error("unauthorized at {registry}: {detail} (run `berth login {registry}`?)")]
    Unauthorized {
        /// Registry host.
        registry: String,
        /// The registry's error text.
        detail: String,
    },
    /// 429 after retries.
    #[error(
        "too many requests to {url}: the registry is rate limiting (retry after {retry_after:?} s)"
    )]
    TooManyRequests {
        /// URL.
        url: String,
        /// The `Retry-After` header, when given.
        retry_after: Option<u64>,
    },
    /// Any other unexpected status.
    #[error("{method} {url}: unexpected status {status}: {detail}")]
    Status {
        /// Method.
        method: String,
        /// URL.
        url: String,
        /// Status code.
        status: u16,
        /// The registry's error text.
        detail: String,
    },
    /// The token endpoint refused or answered nonsense.
    #[error("getting a token from {realm} failed: {detail}")]
    Token {
        /// Token endpoint.
        realm: String,
        /// What went wrong.
        detail: String,
    },
    /// Building the HTTP client failed.
    #[error("creating the HTTP client")]
    Client(#[source] reqwest::Error),
}

impl RegistryError {
    /// Whether retrying might help (connection trouble, 5xx, 429).
    pub fn is_transient(&self) -> bool {
        match self {
            RegistryError::Http { .. } | RegistryError::TooManyRequests { .. } => true,
            RegistryError::Status { status, .. } => *status >= 500,
            _ => false,
        }
    }
}

/// Client settings.
#[derive(Debug, Clone, Default)]
pub struct ClientOptions {
    /// Credentials to present.
    pub credentials: Credentials,
    /// Registries (host[:port]) where plain HTTP is allowed besides localhost/127.0.0.0/8.
    pub insecure: Vec<String>,
}

#[derive(Debug, Clone)]
enum AuthScheme {
    None,
    Basic,
    Bearer {
        realm: String,
        service: Option<String>,
    },
}

struct State {
    base: Option<String>,
    scheme: AuthScheme,
    tokens: HashMap<String, String>,
}

/// A client for one registry host.
pub struct Client {
    http: reqwest::Client,
    registry: String,
    host: String,
    options: ClientOptions,
    state: Mutex<State>,
    ping_lock: tokio::sync::Mutex<()>,
}

/// Whether plain HTTP is allowed for `registry` without being listed.
pub fn is_local(registry: &str) -> bool {
    let host = match registry.rsplit_once(':') {
        Some((h, p)) if p.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => registry,
    };
    host == "localhost"
        || host
            .parse::<std::net::Ipv4Addr>()
            .is_ok_and(|ip| ip.octets()[0] == 127)
        || host == "[::1]"
}

/// The text of an OCI error body (`{"errors":[{"code":..,"message":..}]}`), or the raw body.
pub(crate) async fn error_detail(resp: Response) -> String {
    let text = resp.text().await.unwrap_or_default();
    #[derive(serde::Deserialize)]
    struct E {
        code: Option<String>,
        message: Option<String>,
    }
    #[derive(serde::Deserialize)]
    struct Es {
        errors: Vec<E>,
    }
    match serde_json::from_str::<Es>(&text) {
        Ok(es) if !es.errors.is_empty() => es
            .errors
            .iter()
            .map(|e| {
                format!(
                    "{}: {}",
                    e.code.as_deref().unwrap_or("ERROR"),
                    e.message.as_deref().unwrap_or("")
                )
            })
            .collect::<Vec<_>>()
            .join("; "),
        _ => text.chars().take(200).collect::<String>().trim().to_owned(),
    }
}

impl Client {
    /// A client for `registry` (as in a [`crate::Reference`], e.g. `docker.io`).
    pub fn new(registry: &str, options: ClientOptions) -> Result<Client, RegistryError> {
        let http = reqwest::Client::builder()
            .user_agent(concat!("berth/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(15))
            .read_timeout(Duration::from_secs(60))
            .pool_max_idle_per_host(16)
            .build()
            .map_err(RegistryError::Client)?;
        let host = if registry == crate::reference::DEFAULT_REGISTRY {
            "registry-1.docker.io".to_owned()
        } else {
            registry.to_owned()
        };
        Ok(Client {
            http,
            registry: registry.to_owned(),
            host,
            options,
            state: Mutex::new(State {
                base: None,
                scheme: AuthScheme::None,
                tokens: HashMap::new(),
            }),
            ping_lock: tokio::sync::Mutex::new(()),
        })
    }

    /// `scheme://host[:port]` of the registry, discovering it on first use.
    pub async fn base(&self) -> Result<String, RegistryError> {
        self.ping().await
    }

    /// Checks the credentials as `docker login` does: a token without scope from the realm
    /// for bearer auth, an authenticated `GET /v2/` for basic auth.
    pub async fn login(&self) -> Result<(), RegistryError> {
        self.ping().await?;
        let scheme = self.state().scheme.clone();
        match scheme {
            AuthScheme::None => Ok(()),
            AuthScheme::Basic => {
                let resp = self.send("", |h, b| h.get(format!("{b}/v2/"))).await?;
                check(resp, "registry API", &Method::GET).await.map(|_| ())
            }
            AuthScheme::Bearer { realm, service } => self
                .fetch_token(&realm, service.as_deref(), "")
                .await
                .map(|_| ()),
        }
    }

    /// The registry name this client talks to.
    pub fn registry(&self) -> &str {
        &self.registry
    }

    fn plain_http_allowed(&self) -> bool {
        is_local(&self.registry) || self.options.insecure.iter().any(|r| r == &self.registry)
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding this lock cannot leave the state half-updated (single
        // assignments), so a poisoned lock is still usable.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Discovers the scheme (https/http) and the authentication method.
    async fn ping(&self) -> Result<String, RegistryError> {
        let _g = self.ping_lock.lock().await;
        if let Some(b) = self.state().base.clone() {
            return Ok(b);
        }
        let https = format!("https://{}", self.host);
        let (base, resp) = match self.http.get(format!("{https}/v2/")).send().await {
            Ok(r) => (https, r),
            Err(e) if self.plain_http_allowed() => {
                tracing::debug!("https to {} failed ({e}), trying http", self.host);
                let http = format!("http://{}", self.host);
                let url = format!("{http}/v2/");
                let r = self
                    .http
                    .get(&url)
                    .send()
                    .await
                    .map_err(|source| RegistryError::Http { url, source })?;
                (http, r)
            }
            Err(source) => {
                return Err(RegistryError::Http {
                    url: format!("https://{}/v2/", self.host),
                    source,
                });
            }
        };
        let scheme = if resp.status() == StatusCode::UNAUTHORIZED {
            self.scheme_from(resp.headers())
        } else {
            AuthScheme::None
        };
        let mut st = self.state();
        st.base = Some(base.clone());
        st.scheme = scheme;
        Ok(base)
    }

    fn scheme_from(&self, headers: &HeaderMap) -> AuthScheme {
        let challenge = headers
            .get_all(WWW_AUTHENTICATE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .filter_map(Challenge::parse)
            .next();
        match challenge {
            Some(Challenge::Basic) => AuthScheme::Basic,
            Some(Challenge::Bearer { realm, service, .. }) => AuthScheme::Bearer { realm, service },
            None => AuthScheme::None,
        }
    }

    /// Gets a bearer token for `scope` (space-separated scopes) from the realm.
    async fn fetch_token(
        &self,
        realm: &str,
        service: Option<&str>,
        scope: &str,
    ) -> Result<String, RegistryError> {
        let mut query: Vec<(&str, &str)> = Vec::new();
        if let Some(s) = service {
            query.push(("service", s));
        }
        for s in scope.split(' ').filter(|s| !s.is_empty()) {
            query.push(("scope", s));
        }
        let token_err = |detail: String| RegistryError::Token {
            realm: realm.to_owned(),
            detail,
        };
        let url = reqwest::Url::parse_with_params(realm, &query)
            .map_err(|e| token_err(format!("bad realm URL: {e}")))?;
        let mut req = self.http.get(url);
        if let Credentials::Basic { username, password } = &self.options.credentials {
            req = req.basic_auth(username, Some(password));
        }
        let resp = req.send().await.map_err(|e| token_err(e.to_string()))?;
        if !resp.status().is_success() {
            let status = resp.status();
            let detail = error_detail(resp).await;
            if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
                return Err(RegistryError::Unauthorized {
                    registry: self.registry.clone(),
                    detail: format!("token server said {status}: {detail}"),
                });
            }
            return Err(token_err(format!("status {status}: {detail}")));
        }
        #[derive(serde::Deserialize)]
        struct T {
            token: Option<String>,
            access_token: Option<String>,
        }
        let t: T = resp.json().await.map_err(|e| token_err(e.to_string()))?;
        t.token
            .or(t.access_token)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| token_err("answer has no token".into()))
    }

    async fn authorize(
        &self,
        req: RequestBuilder,
        scope: &str,
        refresh: bool,
    ) -> Result<RequestBuilder, RegistryError> {
        let scheme = self.state().scheme.clone();
        Ok(match scheme {
            AuthScheme::None => req,
            AuthScheme::Basic => match &self.options.credentials {
                Credentials::Basic { username, password } => {
                    req.basic_auth(username, Some(password))
                }
                Credentials::Anonymous => req,
            },
            AuthScheme::Bearer { realm, service } => {
                let cached = if refresh {
                    None
                } else {
                    self.state().tokens.get(scope).cloned()
                };
                let token = match cached {
                    Some(t) => t,
                    None => {
                        let t = self.fetch_token(&realm, service.as_deref(), scope).await?;
                        self.state().tokens.insert(scope.to_owned(), t.clone());
                        t
                    }
                };
                req.bearer_auth(token)
            }
        })
    }

    /// Sends a request built by `build(http, base_url)` with authentication for `scope`.
    /// A 401 refreshes the token (or learns the scheme) and tries once more. The response is
    /// returned whatever its status, except that 401/403 become [`RegistryError::Unauthorized`].
    pub async fn send(
        &self,
        scope: &str,
        build: impl Fn(&reqwest::Client, &str) -> RequestBuilder,
    ) -> Result<Response, RegistryError> {
        let base = self.ping().await?;
        let mut refreshed = false;
        loop {
            let req = self
                .authorize(build(&self.http, &base), scope, refreshed)
                .await?;
            let req = req.build().map_err(|source| RegistryError::Http {
                url: base.clone(),
                source,
            })?;
            let url = req.url().to_string();
            let resp = self
                .http
                .execute(req)
                .await
                .map_err(|source| RegistryError::Http {
                    url: url.clone(),
                    source,
                })?;
            let status = resp.status();
            if status == StatusCode::UNAUTHORIZED && !refreshed {
                let scheme = self.scheme_from(resp.headers());
                if !matches!(scheme, AuthScheme::None) {
                    self.state().scheme = scheme;
                }
                refreshed = true;
                continue;
            }
            if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
                let mut detail = error_detail(resp).await;
                if detail.is_empty() {
                    detail = format!("{status}, authentication required");
                }
                return Err(RegistryError::Unauthorized {
                    registry: self.registry.clone(),
                    detail,
                });
            }
            return Ok(resp);
        }
    }

    /// Like [`Client::send`], retrying transient failures (connection errors, 5xx, 429) with
    /// exponential backoff, and turning non-success statuses into errors.
    pub async fn send_ok(
        &self,
        scope: &str,
        what: &str,
        method: Method,
        build: impl Fn(&reqwest::Client, &str) -> RequestBuilder,
    ) -> Result<Response, RegistryError> {
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let result = match self.send(scope, &build).await {
                Ok(resp) => check(resp, what, &method).await,
                Err(e) => Err(e),
            };
            match result {
                Err(e) if e.is_transient() && attempt < RETRIES => {
                    tracing::debug!("{what}: {e}; retrying");
                    let mut wait = backoff(attempt);
                    if let RegistryError::TooManyRequests {
                        retry_after: Some(s),
                        ..
                    } = &e
                    {
                        // Honour Retry-After, within reason.
                        wait = wait.max(Duration::from_secs((*s).min(10)));
                    }
                    tokio::time::sleep(wait).await;
                }
                other => return other,
            }
        }
    }
}

/// How many attempts a request gets.
pub(crate) const RETRIES: u32 = 5;

/// 200 ms, 400 ms, 800 ms, ... capped at 5 s.
pub(crate) fn backoff(attempt: u32) -> Duration {
    Duration::from_millis((200u64 << attempt.min(5)).min(5000))
}

/// Maps a non-success response to an error.
pub(crate) async fn check(
    resp: Response,
    what: &str,
    method: &Method,
) -> Result<Response, RegistryError> {
    let status = resp.status();
    if status.is_success() {
        return Ok(resp);
    }
    let url = resp.url().to_string();
    match status {
        StatusCode::NOT_FOUND => Err(RegistryError::NotFound {
            what: what.to_owned(),
            detail: error_detail(resp).await,
        }),
        StatusCode::TOO_MANY_REQUESTS => Err(RegistryError::TooManyRequests {
            url,
            retry_after: resp
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse().ok()),
        }),
        _ => Err(RegistryError::Status {
            method: method.to_string(),
            url,
            status: status.as_u16(),
            detail: error_detail(resp).await,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_registries_may_use_plain_http() {
        assert!(is_local("localhost:5000"));
        assert!(is_local("127.0.0.1:5000"));
        assert!(is_local("127.1.2.3"));
        assert!(!is_local("128.0.0.1:5000"));
        assert!(!is_local("docker.io"));
        assert!(!is_local("localhost.example.com"));
    }
}
