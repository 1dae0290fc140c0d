//! The GitHub REST API, for the sticky pull-request comment.
//!
//! Receives the workflow context (`GITHUB_EVENT_PATH`, `GITHUB_REPOSITORY`, `GITHUB_API_URL`,
//! `GITHUB_TOKEN` or an explicit token) and Markdown to post; hands on a [`GitHubApi`] handle
//! and, through [`comment::upsert_comment`], one comment per marker that is edited on every
//! run instead of piling up. The token is kept out of every error and debug output.

pub mod comment;
pub(crate) mod http;

use std::path::Path;

use serde_json::Value;

use crate::error::{Diagnostic, Error, Result};

pub use comment::{CommentAction, comment_body, upsert_comment};

/// The repository cortado is developed and released from.
pub const CORTADO_REPOSITORY: &str = "cortado-dev/cortado";

/// The public API, used when `GITHUB_API_URL` is not set.
pub const DEFAULT_API_URL: &str = "https://api.github.com";

/// A token that never shows itself in `Debug` output.
#[derive(Clone)]
pub struct Token(String);

impl Token {
    pub fn new(token: impl Into<String>) -> Self {
        Token(token.into())
    }

    pub(crate) fn secret(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(***)")
    }
}

/// A handle on one pull request of one repository.
#[derive(Debug, Clone)]
pub struct GitHubApi {
    /// The API base without a trailing slash, e.g. `https://api.github.com`.
    pub base: String,
    pub owner: String,
    pub repo: String,
    /// The pull request (an issue number, as far as comments go).
    pub number: u64,
    token: Token,
    /// Built on first use, so a handle can be made (and checked) without loading certificates.
    client: std::sync::Arc<std::sync::OnceLock<http::Client>>,
}

fn missing(what: &str, hint: &str) -> Error {
    Error::input(
        Diagnostic::error(format!("cannot post the pull-request comment: {what}")).hint(hint),
    )
}

impl GitHubApi {
    /// A handle from explicit values. `repository` is `owner/name`.
    pub fn new(base: &str, repository: &str, number: u64, token: Token) -> Result<Self> {
        let (owner, repo) = split_repository(repository)?;
        let base = base.trim().trim_end_matches('/').to_string();
        if !(base.starts_with("https://") || base.starts_with("http://")) {
            return Err(missing(
                &format!("the API URL {base:?} is not an http(s) URL"),
                "set GITHUB_API_URL to the REST API root, e.g. https://api.github.com or https://HOST/api/v3",
            ));
        }
        if token.secret().trim().is_empty() {
            return Err(missing(
                "the token is empty",
                "pass a token with `pull-requests: write`, e.g. `GITHUB_TOKEN: ${{ github.token }}` in the step's env",
            ));
        }
        Ok(GitHubApi {
            client: Default::default(),
            base,
            owner,
            repo,
            number,
            token,
        })
    }

    /// A handle from the process environment; `token` overrides `GITHUB_TOKEN`.
    pub fn from_env(token: Option<String>) -> Result<Self> {
        Self::from_vars(|k| std::env::var(k).ok(), token)
    }

    /// A handle from variables looked up by `var` (the environment, in production).
    pub fn from_vars(var: impl Fn(&str) -> Option<String>, token: Option<String>) -> Result<Self> {
        let get = |k: &str| var(k).filter(|v| !v.trim().is_empty());
        let token = token
            .filter(|t| !t.trim().is_empty())
            .or_else(|| get("GITHUB_TOKEN"))
            .ok_or_else(|| {
                missing(
                    "no GitHub token (GITHUB_TOKEN is not set)",
                    "in the workflow step set `env: GITHUB_TOKEN: ${{ github.token }}` (the cortado action does this) and give the job `permissions: pull-requests: write`",
                )
            })?;
        let repository = get("GITHUB_REPOSITORY").ok_or_else(|| {
            missing(
                "GITHUB_REPOSITORY is not set",
                "run inside GitHub Actions, or set GITHUB_REPOSITORY=owner/name",
            )
        })?;
        let event_path = get("GITHUB_EVENT_PATH").ok_or_else(|| {
            missing(
                "GITHUB_EVENT_PATH is not set, so the pull request is unknown",
                "run inside a GitHub Actions workflow triggered by pull_request (or issue_comment)",
            )
        })?;
        let number = pr_number_from_event_file(Path::new(&event_path), get("GITHUB_EVENT_NAME"))?;
        let base = get("GITHUB_API_URL").unwrap_or_else(|| DEFAULT_API_URL.to_string());
        GitHubApi::new(&base, &repository, number, Token::new(token))
    }

    /// `{base}/repos/{owner}/{repo}{rest}`.
    fn repo_url(&self, rest: &str) -> String {
        format!("{}/repos/{}/{}{rest}", self.base, self.owner, self.repo)
    }

    /// Sends a request and returns the JSON of a 2xx answer; anything else is an error naming
    /// the request and what to do, never the token.
    pub(crate) async fn call(
        &self,
        method: &str,
        url: &str,
        body: Option<&Value>,
    ) -> Result<Value> {
        self.client()?.call(method, url, &self.token, body).await
    }

    fn client(&self) -> Result<&http::Client> {
        Ok(match self.client.get() {
            Some(c) => c,
            None => {
                let c = http::Client::new(self.base.starts_with("https://"))?;
                self.client.get_or_init(|| c)
            }
        })
    }

    /// The GraphQL endpoint beside the REST root: `https://api.github.com/graphql`, or
    /// `https://HOST/api/graphql` for GitHub Enterprise's `https://HOST/api/v3`.
    pub fn graphql_url(&self) -> String {
        match self.base.strip_suffix("/api/v3") {
            Some(host) => format!("{host}/api/graphql"),
            None => format!("{}/graphql", self.base),
        }
    }

    /// The login the token acts as. A user's token (a PAT) answers `GET /user`; an app's
    /// installation token (the Actions GITHUB_TOKEN is one) may not (403 "Resource not
    /// accessible by integration") but answers GraphQL's `viewer { login }` with its bot
    /// login. When neither answers, the Actions token's login, `github-actions[bot]`.
    pub async fn identity(&self) -> Result<String> {
        let login = |v: &Value, p: &str| v.pointer(p).and_then(Value::as_str).map(str::to_string);
        let user = format!("{}/user", self.base);
        let (status, json, _) = self
            .client()?
            .exchange("GET", &user, &self.token, None)
            .await?;
        if status.is_success()
            && let Some(l) = json.as_ref().and_then(|j| login(j, "/login"))
        {
            return Ok(l);
        }
        if status.as_u16() == 401 {
            // A refused token: the error that says so.
            return self.call("GET", &user, None).await.map(|_| String::new());
        }
        let query = serde_json::json!({"query": "query { viewer { login } }"});
        let (status, json, _) = self
            .client()?
            .exchange("POST", &self.graphql_url(), &self.token, Some(&query))
            .await?;
        if status.is_success()
            && let Some(l) = json.as_ref().and_then(|j| login(j, "/data/viewer/login"))
        {
            return Ok(l);
        }
        Ok(ACTIONS_BOT.to_string())
    }
}

/// The login of the GitHub Actions app, which the workflow's GITHUB_TOKEN acts as.
pub const ACTIONS_BOT: &str = "github-actions[bot]";

/// Splits `owner/name`, refusing anything that would not be a plain path segment.
fn split_repository(repository: &str) -> Result<(String, String)> {
    let ok = |s: &str| {
        !s.is_empty()
            && s != "."
            && s != ".."
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    };
    match repository.trim().split_once('/') {
        Some((o, r)) if ok(o) && ok(r) => Ok((o.to_string(), r.to_string())),
        _ => Err(missing(
            &format!("the repository {repository:?} is not of the form owner/name"),
            "set GITHUB_REPOSITORY=owner/name",
        )),
    }
}

/// The pull request of a workflow event: `pull_request.number`, else `issue.number`
/// (issue_comment events), else the top-level `number`.
pub fn pr_number_from_event(json: &str, event_name: Option<&str>) -> Result<u64> {
    let v: Value = serde_json::from_str(json).map_err(|e| {
        missing(
            &format!("the workflow event file is not JSON: {e}"),
            "GITHUB_EVENT_PATH must name the event payload the runner wrote",
        )
    })?;
    let n = v
        .pointer("/pull_request/number")
        .or_else(|| v.pointer("/issue/number"))
        .or_else(|| v.get("number"))
        .and_then(Value::as_u64);
    n.filter(|n| *n > 0).ok_or_else(|| {
        let event = event_name.map_or(String::new(), |e| format!(" ({e} event)"));
        missing(
            &format!("this workflow run is not for a pull request{event}: the event has no pull_request.number, issue.number or number"),
            "post comments from a workflow triggered by `pull_request` (or `issue_comment` on a pull request); drop --comment elsewhere",
        )
    })
}

fn pr_number_from_event_file(path: &Path, event_name: Option<String>) -> Result<u64> {
    // GitHub's webhook payloads are capped at 25 MB; read no more than 64 MiB of any file.
    let doing = "read the workflow event file (GITHUB_EVENT_PATH)";
    let bytes = crate::error::read_bounded(path, 64 << 20)
        .map_err(|e| Error::io(path, &e, doing))?
        .ok_or_else(|| {
            missing(
                "the workflow event file holds more than 64 MiB",
                "GITHUB_EVENT_PATH must name the event payload the runner wrote",
            )
        })?;
    let text = String::from_utf8_lossy(&bytes);
    pr_number_from_event(&text, event_name.as_deref())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: std::collections::BTreeMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn pr_number_from_each_event_shape() {
        let pr = r#"{"number": 7, "pull_request": {"number": 7}}"#;
        assert_eq!(pr_number_from_event(pr, None).unwrap(), 7);
        let ic = r#"{"issue": {"number": 12, "pull_request": {}}, "comment": {"id": 1}}"#;
        assert_eq!(pr_number_from_event(ic, None).unwrap(), 12);
        assert_eq!(pr_number_from_event(r#"{"number": 3}"#, None).unwrap(), 3);
        let push = r#"{"ref": "refs/heads/main"}"#;
        let err = pr_number_from_event(push, Some("push"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("not for a pull request (push event)"), "{err}");
        assert!(err.contains("hint:"), "{err}");
        assert!(pr_number_from_event("{", None).is_err());
    }

    #[test]
    fn every_missing_variable_is_named() {
        let dir = std::env::temp_dir().join(format!("cortado-gh-ctx-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let ev = dir.join("event.json");
        std::fs::write(&ev, r#"{"pull_request": {"number": 5}}"#).unwrap();
        let ev = ev.to_str().unwrap();
        let full = [
            ("GITHUB_TOKEN", "ghs_secretvalue"),
            ("GITHUB_REPOSITORY", "o/r"),
            ("GITHUB_EVENT_PATH", ev),
        ];
        let api = GitHubApi::from_vars(vars(&full), None).unwrap();
        assert_eq!(
            (
                api.base.as_str(),
                api.owner.as_str(),
                api.repo.as_str(),
                api.number
            ),
            ("https://api.github.com", "o", "r", 5)
        );
        assert!(!format!("{api:?}").contains("ghs_secretvalue"));
        for (i, name) in ["GITHUB_TOKEN", "GITHUB_REPOSITORY", "GITHUB_EVENT_PATH"]
            .iter()
            .enumerate()
        {
            let mut some = full.to_vec();
            some.remove(i);
            let err = GitHubApi::from_vars(vars(&some), None)
                .unwrap_err()
                .to_string();
            assert!(err.contains(name), "{name}: {err}");
        }
        // An explicit token stands in for GITHUB_TOKEN.
        let api = GitHubApi::from_vars(vars(&full[1..]), Some("tok".into())).unwrap();
        assert_eq!(api.token.secret(), "tok");
        let mut with_base = full.to_vec();
        with_base.push(("GITHUB_API_URL", "http://127.0.0.1:9/api/v3/"));
        let api = GitHubApi::from_vars(vars(&with_base), None).unwrap();
        assert_eq!(api.repo_url("/x"), "http://127.0.0.1:9/api/v3/repos/o/r/x");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn repository_and_base_are_checked() {
        let t = || Token::new("t");
        assert!(GitHubApi::new("https://api.github.com", "noslash", 1, t()).is_err());
        assert!(GitHubApi::new("https://api.github.com", "o/../x", 1, t()).is_err());
        assert!(GitHubApi::new("https://api.github.com", "../r", 1, t()).is_err());
        assert!(GitHubApi::new("ftp://x", "o/r", 1, t()).is_err());
        assert!(GitHubApi::new("https://api.github.com", "o/r", 1, Token::new(" ")).is_err());
        assert!(GitHubApi::new("https://api.github.com", "my-org/my.repo_1", 1, t()).is_ok());
    }
}
