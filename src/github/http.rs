//! A small JSON-over-HTTP client for the GitHub API on hyper (already compiled for the AWS SDK):
//! https with the platform's root certificates in production, plain http for local fakes.
//! Receives a method, URL, token and optional JSON body; hands on the JSON of a 2xx answer or
//! an [`Error`] that names the request and what to do — and never the token.

use std::time::Duration;

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Bytes;
use hyper::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderValue, USER_AGENT};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

use super::{CORTADO_REPOSITORY, Token};
use crate::error::{Diagnostic, Error, Result};

/// How long one request may take.
const TIMEOUT: Duration = Duration::from_secs(30);
/// The largest answer read (a page of 100 comments of 64 KiB each fits).
const MAX_RESPONSE: usize = 16 * 1024 * 1024;

#[derive(Clone)]
pub(crate) struct Client {
    inner: HttpClient,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Client")
    }
}

fn user_agent() -> String {
    format!(
        "cortado/{} (+https://github.com/{CORTADO_REPOSITORY})",
        env!("CARGO_PKG_VERSION")
    )
}

/// The hyper client cortado's own HTTP requests use (GitHub's API, notifications, a
/// Terraform state over https): rustls with aws-lc; with `https` the platform's root
/// certificates, else plain http only.
pub(crate) type HttpClient = HyperClient<HttpsConnector<HttpConnector>, Full<Bytes>>;

/// Why [`hyper_client`] could not build a client.
pub(crate) enum SetupError {
    /// The platform's root certificates did not load.
    RootCertificates(std::io::Error),
    Tls(rustls::Error),
}

/// What to do when the root certificates do not load.
pub(crate) const ROOTS_HINT: &str =
    "install the CA certificates package (e.g. ca-certificates) or set SSL_CERT_FILE";

/// Builds an [`HttpClient`].
pub(crate) fn hyper_client(https: bool) -> std::result::Result<HttpClient, SetupError> {
    let provider = rustls::crypto::aws_lc_rs::default_provider();
    let builder = hyper_rustls::HttpsConnectorBuilder::new();
    let builder = if https {
        builder
            .with_provider_and_native_roots(provider)
            .map_err(SetupError::RootCertificates)?
    } else {
        let config = rustls::ClientConfig::builder_with_provider(provider.into())
            .with_safe_default_protocol_versions()
            .map_err(SetupError::Tls)?
            .with_root_certificates(rustls::RootCertStore::empty())
            .with_no_client_auth();
        builder.with_tls_config(config)
    };
    let connector = builder.https_or_http().enable_http1().build();
    Ok(HyperClient::builder(TokioExecutor::new()).build(connector))
}

impl Client {
    /// A client; with `https` the platform's root certificates must load.
    pub(crate) fn new(https: bool) -> Result<Self> {
        let inner = hyper_client(https).map_err(|e| match e {
            SetupError::RootCertificates(e) => Error::input(
                Diagnostic::error(format!(
                    "cannot load the system's root certificates for https: {e}"
                ))
                .hint(ROOTS_HINT),
            ),
            SetupError::Tls(e) => Error::internal(format!("TLS setup: {e}")),
        })?;
        Ok(Client { inner })
    }

    pub(crate) async fn call(
        &self,
        method: &str,
        url: &str,
        token: &Token,
        body: Option<&Value>,
    ) -> Result<Value> {
        let (status, json, empty) = self.exchange(method, url, token, body).await?;
        let what = format!("{method} {}", strip_query(url));
        let bad = |msg: String, hint: &str| {
            Error::input(Diagnostic::error(scrub_token(&msg, token)).hint(hint))
        };
        if !status.is_success() {
            let message = json
                .as_ref()
                .and_then(|j| j.get("message"))
                .and_then(Value::as_str)
                .map(|m| {
                    let m: String = m.chars().take(300).collect();
                    format!(": {}", crate::untrusted::Untrusted::from(m))
                })
                .unwrap_or_default();
            let hint = match status.as_u16() {
                401 => {
                    "the token was refused (missing, expired or malformed): pass `github-token` to the action or set GITHUB_TOKEN"
                }
                403 => {
                    "the token lacks permission: give the job `permissions: pull-requests: write` (forks get a read-only token on `pull_request`)"
                }
                404 => {
                    "the repository or pull request was not found, or the token cannot see it: check GITHUB_REPOSITORY and the token's repository access"
                }
                422 => "GitHub refused the content of the request",
                429 => "rate limited: wait and re-run the job",
                s if s >= 500 => "GitHub had an internal problem: re-run the job",
                _ => "see the message from GitHub",
            };
            return Err(bad(
                format!("GitHub API: {what} returned {status}{message}"),
                hint,
            ));
        }
        if empty {
            return Ok(Value::Null);
        }
        json.ok_or_else(|| {
            bad(
                format!("GitHub API: the answer to {what} is not JSON"),
                "check that GITHUB_API_URL names the REST API root (GitHub Enterprise: https://HOST/api/v3)",
            )
        })
    }

    /// Sends a request and returns the answer's status, its JSON (when it is JSON) and whether
    /// it was empty, whatever the status; an error only when no answer arrived.
    pub(crate) async fn exchange(
        &self,
        method: &str,
        url: &str,
        token: &Token,
        body: Option<&Value>,
    ) -> Result<(hyper::StatusCode, Option<Value>, bool)> {
        let what = format!("{method} {}", strip_query(url));
        let scrub = |s: &str| scrub_token(s, token);
        let bad = |msg: String, hint: &str| Error::input(Diagnostic::error(scrub(&msg)).hint(hint));

        let mut auth =
            HeaderValue::from_str(&format!("Bearer {}", token.secret())).map_err(|_| {
                bad(
                    "the GitHub token contains characters that cannot be sent in a header".into(),
                    "check the token's value (a stray newline or space?)",
                )
            })?;
        auth.set_sensitive(true);
        let payload = match body {
            Some(v) => Bytes::from(serde_json::to_vec(v).unwrap_or_default()),
            None => Bytes::new(),
        };
        let mut req = hyper::Request::builder()
            .method(method)
            .uri(url)
            .header(AUTHORIZATION, auth)
            .header(ACCEPT, "application/vnd.github+json")
            .header("X-GitHub-Api-Version", "2022-11-28")
            .header(USER_AGENT, user_agent());
        if body.is_some() {
            req = req.header(CONTENT_TYPE, "application/json");
        }
        let req = req.body(Full::new(payload)).map_err(|e| {
            bad(
                format!("cannot build the request {what}: {e}"),
                "check GITHUB_API_URL and GITHUB_REPOSITORY",
            )
        })?;

        let resp = match tokio::time::timeout(TIMEOUT, self.inner.request(req)).await {
            Err(_) => {
                return Err(bad(
                    format!(
                        "GitHub API: {what} did not answer within {}s",
                        TIMEOUT.as_secs()
                    ),
                    "GitHub may be slow or unreachable from the runner; re-run the job",
                ));
            }
            Ok(Err(e)) => {
                return Err(bad(
                    format!("GitHub API: {what} failed: {}", error_chain(&e)),
                    "check the network and GITHUB_API_URL",
                ));
            }
            Ok(Ok(r)) => r,
        };
        let status = resp.status();
        let bytes = match tokio::time::timeout(
            TIMEOUT,
            Limited::new(resp.into_body(), MAX_RESPONSE).collect(),
        )
        .await
        {
            Ok(Ok(c)) => c.to_bytes(),
            Ok(Err(e)) => {
                return Err(bad(
                    format!("GitHub API: reading the answer to {what} failed: {e}"),
                    "re-run the job",
                ));
            }
            Err(_) => {
                return Err(bad(
                    format!("GitHub API: the answer to {what} did not arrive in time"),
                    "re-run the job",
                ));
            }
        };
        let json: Option<Value> = serde_json::from_slice(&bytes).ok();
        Ok((status, json, bytes.is_empty()))
    }
}

/// Why a notification request got no usable answer: only the kind, never the URL (a webhook's
/// URL is a secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SendFailure {
    /// No answer within the time allowed.
    Timeout,
    /// No connection (refused, reset, DNS, TLS).
    Connection,
    /// The request could not be built (a header value with a newline, a URL that is not one).
    Request,
}

impl Client {
    /// Sends `body` as JSON with `headers`, bounded by `timeout` for the whole exchange, and
    /// returns the answer's status and body (at most 64 KiB). Nothing of the request (URL,
    /// headers) appears in a failure.
    pub(crate) async fn send_json(
        &self,
        method: &str,
        url: &str,
        headers: &[(String, String)],
        body: &Value,
        timeout: Duration,
    ) -> std::result::Result<(u16, Bytes), SendFailure> {
        let payload = Bytes::from(serde_json::to_vec(body).unwrap_or_default());
        let mut req = hyper::Request::builder()
            .method(method)
            .uri(url)
            .header(USER_AGENT, user_agent())
            .header(CONTENT_TYPE, "application/json");
        for (k, v) in headers {
            let mut v = HeaderValue::from_str(v).map_err(|_| SendFailure::Request)?;
            v.set_sensitive(true);
            req = req.header(k.as_str(), v);
        }
        let req = req
            .body(Full::new(payload))
            .map_err(|_| SendFailure::Request)?;
        let exchange = async {
            let resp = self
                .inner
                .request(req)
                .await
                .map_err(|_| SendFailure::Connection)?;
            let status = resp.status().as_u16();
            let bytes = Limited::new(resp.into_body(), 64 * 1024)
                .collect()
                .await
                .map(|c| c.to_bytes())
                .unwrap_or_default();
            Ok((status, bytes))
        };
        tokio::time::timeout(timeout, exchange)
            .await
            .unwrap_or(Err(SendFailure::Timeout))
    }
}

/// The URL without its query (the query may carry nothing secret today, but stay short).
fn strip_query(url: &str) -> &str {
    url.split('?').next().unwrap_or(url)
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(cause) = src {
        s.push_str(": ");
        s.push_str(&cause.to_string());
        src = cause.source();
    }
    s
}

/// Replaces the token, should any text ever echo it.
fn scrub_token(s: &str, token: &Token) -> String {
    let t = token.secret();
    if t.len() >= 4 {
        s.replace(t, "***")
    } else {
        s.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_is_scrubbed_and_queries_dropped() {
        let t = Token::new("ghp_abcdef");
        assert_eq!(scrub_token("bad ghp_abcdef here", &t), "bad *** here");
        assert_eq!(strip_query("http://x/a?page=2"), "http://x/a");
    }

    #[tokio::test]
    async fn unreachable_host_is_a_clear_error_without_the_token() {
        // A port that was free a moment ago: nothing listens there.
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let c = Client::new(false).unwrap();
        let t = Token::new("ghp_topsecret");
        let url = format!("http://127.0.0.1:{port}/repos/o/r?page=1");
        let err = c.call("GET", &url, &t, None).await.unwrap_err().to_string();
        assert!(
            err.contains(&format!("GET http://127.0.0.1:{port}/repos/o/r failed")),
            "{err}"
        );
        assert!(err.contains("hint: check the network"), "{err}");
        assert!(!err.contains("topsecret"), "{err}");
        let err = c
            .call("GET", &url, &Token::new("bad\ntoken"), None)
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("cannot be sent in a header") && !err.contains("bad\ntoken"));
    }
}
