//! Terraform states the tfstate plugin reads over HTTP, as ecspresso's tfstate-lookup does:
//! `url: https://HOST/PATH` (a GET; `http://` only for a loopback host such as a local server
//! or the sandbox), and `url: remote://HOST/ORGANIZATION/WORKSPACE` (Terraform Cloud or
//! Enterprise: the workspace, then its current state version, then that version's state).
//!
//! Receives the URL from the plugin's config (checked when the config loads, by
//! [`HttpSource::parse`]); hands on the state's text or a [`FuncError`] that names the URL
//! (never its credentials) and what to do. Credentials: `TFE_TOKEN`, when set, goes as a
//! Bearer token (tfstate-lookup sends it on every http(s) read too), and `user:password@` in
//! an http(s) URL as Basic authentication. Every read is bounded: 30 s a request, 5
//! redirects, [`MAX_STATE_BYTES`] of answer.

use std::time::Duration;

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Bytes;
use hyper::header::{ACCEPT, AUTHORIZATION, HeaderValue, LOCATION, USER_AGENT};

use super::template::FuncError;
use super::tfstate::MAX_STATE_BYTES;
use crate::github::http::{HttpClient as Client, SetupError, hyper_client};

/// How long one request may take, answer included.
const TIMEOUT: Duration = Duration::from_secs(30);
/// How many redirects a read follows.
const MAX_REDIRECTS: usize = 5;
/// The largest JSON answer of the Terraform Cloud API read (a workspace, a state version).
const MAX_API_BYTES: usize = 4 * 1024 * 1024;

/// Where a state is read over HTTP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum HttpSource {
    /// A GET of this URL (credentials taken out into `basic`).
    Get {
        url: String,
        basic: Option<(String, String)>,
    },
    /// Terraform Cloud / Enterprise: the current state of a workspace.
    Remote {
        host: String,
        organization: String,
        workspace: String,
    },
}

impl HttpSource {
    /// The source a `url:` names (`http(s)://` or `remote://`); None for another scheme, an
    /// error that says what is wrong with a URL of these schemes.
    pub(crate) fn parse(u: &str) -> Option<Result<HttpSource, String>> {
        if let Some(rest) = u.strip_prefix("remote://") {
            return Some(Self::parse_remote(rest));
        }
        let (scheme, rest) = u.split_once("://")?;
        let scheme = scheme.to_ascii_lowercase();
        if scheme != "http" && scheme != "https" {
            return None;
        }
        let (authority, path) = match rest.find(['/', '?', '#']) {
            Some(i) => rest.split_at(i),
            None => (rest, "/"),
        };
        let (userinfo, host_port) = match authority.rsplit_once('@') {
            Some((u, h)) => (Some(u), h),
            None => (None, authority),
        };
        let host = host_of(host_port);
        if host.is_empty() {
            return Some(Err(format!("tfstate url {} names no host", shown(u))));
        }
        if scheme == "http" && !is_loopback(host) {
            return Some(Err(format!(
                "tfstate url {} is plain http to {host}: cortado reads a state over http only from this machine (localhost, 127.0.0.1, [::1])",
                shown(u)
            )));
        }
        let basic = userinfo.map(|ui| match ui.split_once(':') {
            Some((user, pass)) => (percent_decode(user), percent_decode(pass)),
            None => (percent_decode(ui), String::new()),
        });
        Some(Ok(HttpSource::Get {
            url: format!("{scheme}://{host_port}{path}"),
            basic,
        }))
    }

    fn parse_remote(rest: &str) -> Result<HttpSource, String> {
        let parts: Vec<&str> = rest.trim_end_matches('/').split('/').collect();
        match parts.as_slice() {
            [host, organization, workspace]
                if !host.is_empty() && !organization.is_empty() && !workspace.is_empty() =>
            {
                Ok(HttpSource::Remote {
                    host: host.to_string(),
                    organization: organization.to_string(),
                    workspace: workspace.to_string(),
                })
            }
            _ => Err(format!(
                "tfstate url remote://{rest} is not remote://HOST/ORGANIZATION/WORKSPACE"
            )),
        }
    }

    /// Whether it is read from this machine (a loopback host): what a sandbox run may read.
    pub(crate) fn is_local(&self) -> bool {
        match self {
            HttpSource::Get { url, .. } => is_loopback(host_of(authority_of(url))),
            HttpSource::Remote { host, .. } => is_loopback(host_of(host)),
        }
    }

    /// The source for messages: no credentials, no query.
    pub(crate) fn show(&self) -> String {
        match self {
            HttpSource::Get { url, .. } => shown(url),
            HttpSource::Remote {
                host,
                organization,
                workspace,
            } => format!("remote://{host}/{organization}/{workspace}"),
        }
    }

    /// Reads the state's text; blocks the calling thread (the template engine is
    /// synchronous), on a thread of its own with its own runtime.
    pub(crate) fn read(&self) -> Result<String, FuncError> {
        let source = self.clone();
        let token = std::env::var("TFE_TOKEN")
            .ok()
            .filter(|t| !t.trim().is_empty());
        let spawned = std::thread::Builder::new()
            .name("cortado-tfstate-http".into())
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(|e| {
                        FuncError::input(format!("cannot start a runtime to read a state: {e}"))
                    })?;
                rt.block_on(source.read_async(token.as_deref()))
            })
            .map_err(|e| FuncError::input(format!("cannot start a thread to read a state: {e}")))?;
        let join = || {
            spawned.join().unwrap_or_else(|_| {
                Err(FuncError::input(
                    "the thread reading a Terraform state failed",
                ))
            })
        };
        match tokio::runtime::Handle::try_current() {
            Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
                tokio::task::block_in_place(join)
            }
            _ => join(),
        }
    }

    async fn read_async(&self, token: Option<&str>) -> Result<String, FuncError> {
        let bytes = match self {
            HttpSource::Get { url, basic } => {
                let auth = match basic {
                    Some((user, pass)) => Some(format!(
                        "Basic {}",
                        aws_smithy_types::base64::encode(format!("{user}:{pass}"))
                    )),
                    None => token.map(|t| format!("Bearer {t}")),
                };
                get(url, auth.as_deref(), "*/*", MAX_STATE_BYTES as usize).await?
            }
            HttpSource::Remote {
                host,
                organization,
                workspace,
            } => {
                let Some(token) = token else {
                    return Err(FuncError::input(format!(
                        "tfstate: reading {} needs a Terraform Cloud / Enterprise API token, and TFE_TOKEN is not set",
                        self.show()
                    ))
                    .hint("set TFE_TOKEN to a user or team token that can read the workspace's state"));
                };
                let auth = format!("Bearer {token}");
                let base = api_base(host);
                let ws_url = format!(
                    "{base}/api/v2/organizations/{}/workspaces/{}",
                    path_segment(organization),
                    path_segment(workspace)
                );
                let ws = api_json(&ws_url, &auth).await?;
                let id = ws
                    .pointer("/data/id")
                    .and_then(serde_json::Value::as_str)
                    .ok_or_else(|| {
                        FuncError::input(format!(
                            "tfstate: the answer for workspace {workspace} of {organization} on {host} has no data.id"
                        ))
                    })?;
                let sv_url = format!(
                    "{base}/api/v2/workspaces/{}/current-state-version",
                    path_segment(id)
                );
                let sv = api_json(&sv_url, &auth).await?;
                let download = sv
                    .pointer("/data/attributes/hosted-state-download-url")
                    .and_then(serde_json::Value::as_str)
                    .filter(|u| !u.is_empty())
                    .ok_or_else(|| {
                        FuncError::input(format!(
                            "tfstate: the current state version of {} has no hosted-state-download-url",
                            self.show()
                        ))
                        .hint("the workspace may have no state yet: run Terraform in it first")
                    })?;
                get(download, Some(&auth), "*/*", MAX_STATE_BYTES as usize).await?
            }
        };
        String::from_utf8(bytes.to_vec()).map_err(|_| {
            FuncError::input(format!(
                "tfstate: the answer from {} is not UTF-8 text, so not a Terraform state",
                self.show()
            ))
            .hint("point the plugin's `url` at the state itself (terraform.tfstate)")
        })
    }
}

/// The API root of a Terraform Cloud / Enterprise host: https, or http for a loopback host
/// (a local stand-in).
fn api_base(host: &str) -> String {
    if is_loopback(host_of(host)) {
        format!("http://{host}")
    } else {
        format!("https://{host}")
    }
}

async fn api_json(url: &str, auth: &str) -> Result<serde_json::Value, FuncError> {
    let bytes = get(url, Some(auth), "application/vnd.api+json", MAX_API_BYTES).await?;
    serde_json::from_slice(&bytes).map_err(|e| {
        FuncError::input(format!(
            "tfstate: the answer of {} is not JSON: {e}",
            shown(url)
        ))
        .hint(
            "check the host in the plugin's remote:// url (the Terraform Cloud or Enterprise host)",
        )
    })
}

/// A GET that follows redirects (credentials only to the host first asked), bounded in time
/// and size; the answer's body when it is 2xx.
async fn get(
    url: &str,
    auth: Option<&str>,
    accept: &str,
    limit: usize,
) -> Result<Bytes, FuncError> {
    let first_host = authority_of(url).to_string();
    let mut url = url.to_string();
    for _ in 0..=MAX_REDIRECTS {
        let client = client(url.starts_with("https://"))?;
        // Credentials go only to the host first asked, never where a redirect leads.
        let auth = auth.filter(|_| authority_of(&url) == first_host);
        let req = request(&url, auth, accept)?;
        let (status, location, body) = fetch(&client, req, &url, limit).await?;
        if status.is_redirection() {
            url = redirect_target(&url, status, location)?;
            continue;
        }
        if !status.is_success() {
            return Err(status_error(&url, status));
        }
        return Ok(body);
    }
    Err(FuncError::input(format!(
        "tfstate: more than {MAX_REDIRECTS} redirects reading {}",
        shown(&url)
    )))
}

/// The GET request for `url`, with `auth` (when given) as a sensitive Authorization header.
fn request(
    url: &str,
    auth: Option<&str>,
    accept: &str,
) -> Result<hyper::Request<Full<Bytes>>, FuncError> {
    let mut req = hyper::Request::builder()
        .method("GET")
        .uri(url)
        .header(ACCEPT, accept)
        .header(USER_AGENT, format!("cortado/{}", env!("CARGO_PKG_VERSION")));
    if let Some(a) = auth {
        let mut v = HeaderValue::from_str(a).map_err(|_| {
            FuncError::input(
                "tfstate: the credentials (TFE_TOKEN or the url's user:password) hold characters that cannot be sent in a header",
            )
            .hint("check the value for a stray newline or space")
        })?;
        v.set_sensitive(true);
        req = req.header(AUTHORIZATION, v);
    }
    req.body(Full::new(Bytes::new()))
        .map_err(|e| FuncError::input(format!("tfstate: {} is not a usable URL: {e}", shown(url))))
}

/// Sends `req` (to `url`) and reads the answer within [`TIMEOUT`]: its status, its Location
/// and at most `limit` bytes of its body.
async fn fetch(
    client: &Client,
    req: hyper::Request<Full<Bytes>>,
    url: &str,
    limit: usize,
) -> Result<(hyper::StatusCode, Option<String>, Bytes), FuncError> {
    tokio::time::timeout(TIMEOUT, async {
        let resp = client.request(req).await.map_err(|e| {
            FuncError::aws(format!(
                "tfstate: GET {} failed: {}",
                shown(url),
                error_chain(&e)
            ))
            .hint("check the url and the network")
        })?;
        let status = resp.status();
        let location = resp
            .headers()
            .get(LOCATION)
            .and_then(|l| l.to_str().ok())
            .map(str::to_string);
        let body = Limited::new(resp.into_body(), limit)
            .collect()
            .await
            .map_err(|e| {
                FuncError::aws(format!(
                    "tfstate: reading the answer of {} failed: {e} (at most {} MiB are read)",
                    shown(url),
                    limit >> 20
                ))
            })?
            .to_bytes();
        Ok::<_, FuncError>((status, location, body))
    })
    .await
    .map_err(|_| {
        FuncError::aws(format!(
            "tfstate: GET {} did not answer within {} s",
            shown(url),
            TIMEOUT.as_secs()
        ))
        .hint("the host may be slow or unreachable from here")
    })?
}

/// Where a redirect from `url` leads: an absolute `Location`, or a path on the same host;
/// plain http only to a loopback host.
fn redirect_target(
    url: &str,
    status: hyper::StatusCode,
    location: Option<String>,
) -> Result<String, FuncError> {
    let Some(next) = location else {
        return Err(FuncError::input(format!(
            "tfstate: GET {} answered {status} with no Location",
            shown(url)
        )));
    };
    let next = if next.starts_with("http://") || next.starts_with("https://") {
        next
    } else if next.starts_with('/') {
        let scheme = url.split("://").next().unwrap_or("https");
        format!("{scheme}://{}{next}", authority_of(url))
    } else {
        return Err(FuncError::input(format!(
            "tfstate: GET {} redirects to a relative Location cortado does not follow",
            shown(url)
        )));
    };
    if next.starts_with("http://") && !is_loopback(host_of(authority_of(&next))) {
        return Err(FuncError::input(format!(
            "tfstate: a redirect leads to plain http at {}: cortado reads states over http only from this machine",
            shown(&next)
        )));
    }
    Ok(next)
}

/// The error for an answer that is neither 2xx nor a redirect, with a hint by status.
fn status_error(url: &str, status: hyper::StatusCode) -> FuncError {
    let hint = match status.as_u16() {
        401 | 403 => {
            "the host refused the credentials: set TFE_TOKEN (sent as a Bearer token) or put user:password@ in an https url"
        }
        404 => "check the url (a missing state, or credentials that cannot see it)",
        s if s >= 500 => "the host had an internal problem: try again",
        _ => "check the url",
    };
    FuncError::input(format!("tfstate: GET {} answered {status}", shown(url))).hint(hint)
}

/// A client; for https the system's root certificates must load.
fn client(https: bool) -> Result<Client, FuncError> {
    hyper_client(https).map_err(|e| match e {
        SetupError::RootCertificates(e) => FuncError::input(format!(
            "tfstate: cannot load the system's root certificates for https: {e}"
        ))
        .hint(crate::github::http::ROOTS_HINT),
        SetupError::Tls(e) => FuncError::input(format!("TLS setup: {e}")),
    })
}

/// `host[:port]` of an URL (after any `user:pass@`).
fn authority_of(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or(rest);
    authority.rsplit_once('@').map_or(authority, |(_, h)| h)
}

/// The host of `host[:port]` (an IPv6 literal keeps its brackets).
fn host_of(host_port: &str) -> &str {
    if host_port.starts_with('[') {
        return host_port.find(']').map_or(host_port, |i| &host_port[..=i]);
    }
    host_port.split(':').next().unwrap_or(host_port)
}

fn is_loopback(host: &str) -> bool {
    let host = host.to_ascii_lowercase();
    host == "localhost"
        || host == "[::1]"
        || host
            .parse::<std::net::Ipv4Addr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// An URL for messages: no `user:password@`, no query or fragment.
fn shown(url: &str) -> String {
    let url = url.split(['?', '#']).next().unwrap_or(url);
    match url.split_once("://") {
        Some((scheme, rest)) => {
            let (authority, path) = match rest.find('/') {
                Some(i) => rest.split_at(i),
                None => (rest, ""),
            };
            let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
            format!("{scheme}://{host}{path}")
        }
        None => url.to_string(),
    }
}

/// One path segment, percent-encoded where an URL needs it.
fn path_segment(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Some(b) = std::str::from_utf8(&bytes[i + 1..i + 3])
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse_with_their_credentials_kept_out_of_sight() {
        let Some(Ok(HttpSource::Get { url, basic })) =
            HttpSource::parse("https://ci:p%40ss@states.example.com/web/terraform.tfstate?v=1")
        else {
            panic!("an https url parses")
        };
        assert_eq!(url, "https://states.example.com/web/terraform.tfstate?v=1");
        assert_eq!(basic, Some(("ci".into(), "p@ss".into())));
        let shown = HttpSource::parse("https://ci:secret@h.example/s.tfstate?sig=x")
            .unwrap()
            .unwrap()
            .show();
        assert_eq!(shown, "https://h.example/s.tfstate");
        assert!(
            HttpSource::parse("http://127.0.0.1:8080/s")
                .unwrap()
                .is_ok()
        );
        assert!(HttpSource::parse("http://localhost/s").unwrap().is_ok());
        let plain = HttpSource::parse("http://states.example.com/s")
            .unwrap()
            .unwrap_err();
        assert!(plain.contains("plain http"), "{plain}");
        assert!(HttpSource::parse("gs://b/k").is_none());
        assert_eq!(
            HttpSource::parse("remote://app.terraform.io/acme/web-prod").unwrap(),
            Ok(HttpSource::Remote {
                host: "app.terraform.io".into(),
                organization: "acme".into(),
                workspace: "web-prod".into(),
            })
        );
        assert!(
            HttpSource::parse("remote://app.terraform.io/acme")
                .unwrap()
                .is_err()
        );
    }

    /// Answers every request on 127.0.0.1 with `response` (a raw HTTP/1.1 answer); its URL.
    async fn serve_raw(response: String) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut sock, _)) = listener.accept().await {
                let response = response.clone();
                tokio::spawn(async move {
                    let mut buf = [0u8; 4096];
                    let _ = sock.read(&mut buf).await;
                    let _ = sock.write_all(response.as_bytes()).await;
                });
            }
        });
        format!("http://{addr}")
    }

    #[tokio::test]
    async fn reads_are_bounded_in_size_and_redirects() {
        let body = "a".repeat(4096);
        let big = serve_raw(format!(
            "HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        ))
        .await;
        let err = get(&format!("{big}/s"), None, "*/*", 1024)
            .await
            .unwrap_err();
        assert!(err.message.contains("at most"), "{err}");
        assert_eq!(
            get(&format!("{big}/s"), None, "*/*", 8192)
                .await
                .unwrap()
                .len(),
            4096
        );
        let looping =
            serve_raw("HTTP/1.1 302 Found\r\nlocation: /again\r\ncontent-length: 0\r\n\r\n".into())
                .await;
        let err = get(&format!("{looping}/s"), None, "*/*", 1024)
            .await
            .unwrap_err();
        assert!(err.message.contains("more than 5 redirects"), "{err}");
        let away = serve_raw(
            "HTTP/1.1 302 Found\r\nlocation: http://states.example.com/s\r\ncontent-length: 0\r\n\r\n"
                .into(),
        )
        .await;
        let err = get(&format!("{away}/s"), None, "*/*", 1024)
            .await
            .unwrap_err();
        assert!(err.message.contains("plain http"), "{err}");
    }

    #[test]
    fn redirects_resolve_on_the_same_host_and_statuses_get_hints() {
        let found = hyper::StatusCode::FOUND;
        let to = |loc: &str| redirect_target("https://h:9/a/b", found, Some(loc.to_string()));
        assert_eq!(to("/c?d").unwrap(), "https://h:9/c?d");
        assert_eq!(to("https://other/x").unwrap(), "https://other/x");
        assert_eq!(to("http://127.0.0.1:8/x").unwrap(), "http://127.0.0.1:8/x");
        assert!(to("c").unwrap_err().message.contains("relative Location"));
        assert!(
            to("http://other/x")
                .unwrap_err()
                .message
                .contains("plain http")
        );
        let none = redirect_target("https://h/a", found, None).unwrap_err();
        assert!(
            none.message.contains("302 Found with no Location"),
            "{none}"
        );
        let denied = status_error("https://h/a", hyper::StatusCode::FORBIDDEN);
        assert!(denied.message.contains("answered 403"), "{denied}");
        assert!(denied.to_string().contains("TFE_TOKEN"), "{denied}");
    }

    #[test]
    fn hosts_and_segments() {
        assert_eq!(host_of("[::1]:80"), "[::1]");
        assert!(is_loopback("127.0.0.2") && is_loopback("LOCALHOST") && !is_loopback("10.0.0.1"));
        assert_eq!(authority_of("https://u:p@h:9/x?y"), "h:9");
        assert_eq!(path_segment("a b/c"), "a%20b%2Fc");
        assert_eq!(percent_decode("a%2Fb%"), "a/b%");
    }
}
