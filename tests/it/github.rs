//! GitHub integration, black-box:
//! - the sticky PR comment client against a fake GitHub API (axum, in-process, recording
//!   every request);
//! - the action's install script against a fake release server, with committed checksums;
//! - schema-level rules for `action.yml` and every workflow (pinning, permissions, no
//!   expressions pasted into scripts).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use cortado::github::{CommentAction, GitHubApi, Token, comment_body, upsert_comment};

use crate::common::serve_http;

// ---------------------------------------------------------------------------------------------
// Fake GitHub API

const TOKEN: &str = "ghs_FAKE_token_1234567890";

#[derive(Debug, Clone)]
struct Recorded {
    method: String,
    path: String,
    query: String,
    headers: BTreeMap<String, String>,
    body: Value,
}

#[derive(Default)]
struct Fake {
    /// (id, body) in creation order.
    comments: Vec<(u64, String)>,
    /// Authors of comments that are not the token's own.
    authors: BTreeMap<u64, String>,
    /// The token is an app's installation token (the Actions GITHUB_TOKEN): `GET /user`
    /// answers 403 and GraphQL's viewer is `github-actions[bot]`.
    integration: bool,
    next_id: u64,
    requests: Vec<Recorded>,
}

impl Fake {
    /// The login the token acts as.
    fn login(&self) -> &'static str {
        if self.integration {
            "github-actions[bot]"
        } else {
            "bot"
        }
    }

    fn author(&self, id: u64) -> String {
        self.authors
            .get(&id)
            .cloned()
            .unwrap_or_else(|| self.login().to_string())
    }
}

type Shared = Arc<Mutex<Fake>>;

async fn start_fake(fake: Shared) -> String {
    serve_http(Router::new().fallback(route).with_state(fake)).await
}

fn reply(status: StatusCode, v: Value) -> Response {
    (
        status,
        [("content-type", "application/json")],
        v.to_string(),
    )
        .into_response()
}

fn query_param(query: &str, name: &str) -> Option<usize> {
    query
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == name)
        .and_then(|(_, v)| v.parse().ok())
}

async fn route(
    State(fake): State<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut f = fake.lock().unwrap();
    let rec = Recorded {
        method: method.to_string(),
        path: uri.path().to_string(),
        query: uri.query().unwrap_or("").to_string(),
        headers: headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_string()))
            .collect(),
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
    };
    f.requests.push(rec.clone());
    let auth = rec
        .headers
        .get("authorization")
        .cloned()
        .unwrap_or_default();
    if auth != format!("Bearer {TOKEN}") {
        // A server that echoes what it got: the client must still not print the token.
        return reply(
            StatusCode::UNAUTHORIZED,
            json!({"message": format!("Bad credentials ({auth})")}),
        );
    }
    let parts: Vec<&str> = rec.path.trim_matches('/').split('/').collect();
    match (rec.method.as_str(), parts.as_slice()) {
        ("GET", ["repos", "o", "r", "issues", "5", "comments"]) => {
            let per = query_param(&rec.query, "per_page").unwrap_or(30);
            let page = query_param(&rec.query, "page").unwrap_or(1).max(1);
            let items: Vec<Value> = f
                .comments
                .iter()
                .skip((page - 1) * per)
                .take(per)
                .map(|(id, b)| json!({"id": id, "body": b, "user": {"login": f.author(*id)}}))
                .collect();
            reply(StatusCode::OK, Value::Array(items))
        }
        ("POST", ["repos", "o", "r", "issues", "5", "comments"]) => {
            f.next_id += 1;
            let id = 1000 + f.next_id;
            let b = rec.body["body"].as_str().unwrap_or("").to_string();
            f.comments.push((id, b.clone()));
            reply(StatusCode::CREATED, json!({"id": id, "body": b}))
        }
        ("GET", ["user"]) if f.integration => reply(
            StatusCode::FORBIDDEN,
            json!({"message": "Resource not accessible by integration"}),
        ),
        ("GET", ["user"]) => reply(StatusCode::OK, json!({"login": f.login(), "id": 1})),
        ("POST", ["graphql"]) => reply(
            StatusCode::OK,
            json!({"data": {"viewer": {"login": f.login()}}}),
        ),
        ("PATCH", ["repos", "o", "r", "issues", "comments", id]) => {
            let id: u64 = id.parse().unwrap_or(0);
            let b = rec.body["body"].as_str().unwrap_or("").to_string();
            match f.comments.iter_mut().find(|(i, _)| *i == id) {
                Some(c) => {
                    c.1 = b.clone();
                    reply(StatusCode::OK, json!({"id": id, "body": b}))
                }
                None => reply(StatusCode::NOT_FOUND, json!({"message": "Not Found"})),
            }
        }
        _ => reply(StatusCode::NOT_FOUND, json!({"message": "Not Found"})),
    }
}

async fn fake_api(token: &str) -> (Shared, GitHubApi) {
    let fake: Shared = Arc::default();
    let base = start_fake(fake.clone()).await;
    let api = GitHubApi::new(&base, "o/r", 5, Token::new(token)).unwrap();
    (fake, api)
}

fn methods(fake: &Shared) -> Vec<String> {
    fake.lock()
        .unwrap()
        .requests
        .iter()
        .map(|r| format!("{} {}?{}", r.method, r.path, r.query))
        .collect()
}

#[tokio::test]
async fn first_call_creates_second_updates_the_same_comment() {
    let (fake, api) = fake_api(TOKEN).await;
    let body1 = comment_body("diff", "cortado diff", &["**web**: 1 change".into()]);
    let a1 = upsert_comment(&api, "diff", &body1).await.unwrap();
    let CommentAction::Created { id } = a1 else {
        panic!("expected Created, got {a1:?}")
    };
    assert_eq!(
        methods(&fake),
        vec![
            "GET /repos/o/r/issues/5/comments?per_page=100&page=1",
            "POST /repos/o/r/issues/5/comments?"
        ]
    );
    let body2 = comment_body("diff", "cortado diff", &["**web**: 2 changes".into()]);
    let a2 = upsert_comment(&api, "diff", &body2).await.unwrap();
    assert_eq!(a2, CommentAction::Updated { id });
    // The marker was found: whose comment it is was asked before editing it.
    assert_eq!(
        methods(&fake)[2..],
        [
            "GET /repos/o/r/issues/5/comments?per_page=100&page=1",
            "GET /user?",
            &format!("PATCH /repos/o/r/issues/comments/{id}?")
        ]
    );
    let f = fake.lock().unwrap();
    assert_eq!(f.comments.len(), 1, "no second comment");
    assert_eq!(f.comments[0].1, body2);
    let last = f.requests.last().unwrap();
    assert_eq!(
        (last.method.as_str(), last.path.clone()),
        ("PATCH", format!("/repos/o/r/issues/comments/{id}"))
    );
    assert_eq!(f.requests.len(), 5, "GET, POST, GET, GET /user, PATCH");
}

#[tokio::test]
async fn every_request_carries_auth_accept_version_and_agent() {
    let (fake, api) = fake_api(TOKEN).await;
    upsert_comment(&api, "diff", "hello").await.unwrap();
    let f = fake.lock().unwrap();
    assert!(!f.requests.is_empty());
    for r in &f.requests {
        assert_eq!(r.headers["authorization"], format!("Bearer {TOKEN}"));
        assert_eq!(r.headers["accept"], "application/vnd.github+json");
        assert_eq!(r.headers["x-github-api-version"], "2022-11-28");
        assert!(r.headers["user-agent"].starts_with("cortado/"), "{r:?}");
    }
    // The marker is added to a body that lacks it.
    assert_eq!(f.comments[0].1, "<!-- cortado:diff -->\nhello");
    assert_eq!(f.requests[1].headers["content-type"], "application/json");
}

#[tokio::test]
async fn marker_on_the_second_page_is_found() {
    let (fake, api) = fake_api(TOKEN).await;
    {
        let mut f = fake.lock().unwrap();
        for i in 0..150u64 {
            let body = if i == 120 {
                "<!-- cortado:diff -->\nold report".to_string()
            } else {
                format!("comment {i} mentions cortado:diff but not the tag")
            };
            f.comments.push((i + 1, body));
        }
        f.next_id = 500;
    }
    let a = upsert_comment(&api, "diff", "new report").await.unwrap();
    assert_eq!(a, CommentAction::Updated { id: 121 });
    assert_eq!(
        methods(&fake),
        vec![
            "GET /repos/o/r/issues/5/comments?per_page=100&page=1",
            "GET /repos/o/r/issues/5/comments?per_page=100&page=2",
            "GET /user?",
            "PATCH /repos/o/r/issues/comments/121?"
        ]
    );
    let f = fake.lock().unwrap();
    assert_eq!(f.comments.len(), 150);
    assert_eq!(f.comments[120].1, "<!-- cortado:diff -->\nnew report");
}

#[tokio::test]
async fn a_full_last_page_is_followed_by_one_more_request() {
    let (fake, api) = fake_api(TOKEN).await;
    {
        let mut f = fake.lock().unwrap();
        for i in 0..200u64 {
            f.comments.push((i + 1, format!("c{i}")));
        }
    }
    let a = upsert_comment(&api, "diff", "x").await.unwrap();
    assert!(matches!(a, CommentAction::Created { .. }));
    let m = methods(&fake);
    assert_eq!(m.len(), 4, "{m:?}");
    assert!(m[2].ends_with("page=3"), "{m:?}");
    assert!(m[3].starts_with("POST"), "{m:?}");
}

#[tokio::test]
async fn a_different_marker_makes_a_separate_comment() {
    let (fake, api) = fake_api(TOKEN).await;
    let a = upsert_comment(&api, "diff/prod", "prod").await.unwrap();
    let b = upsert_comment(&api, "diff/staging", "staging")
        .await
        .unwrap();
    let (CommentAction::Created { id: ia }, CommentAction::Created { id: ib }) = (&a, &b) else {
        panic!("{a:?} {b:?}")
    };
    assert_ne!(ia, ib);
    // A marker that is a prefix of another does not match it.
    let c = upsert_comment(&api, "diff", "plain").await.unwrap();
    assert!(matches!(c, CommentAction::Created { .. }), "{c:?}");
    let again = upsert_comment(&api, "diff/staging", "staging 2")
        .await
        .unwrap();
    assert_eq!(again, CommentAction::Updated { id: *ib });
    assert_eq!(fake.lock().unwrap().comments.len(), 3);
}

#[tokio::test]
async fn a_marker_in_someone_elses_comment_is_not_ours_to_edit() {
    let (fake, api) = fake_api(TOKEN).await;
    {
        let mut f = fake.lock().unwrap();
        f.comments
            .push((7, "<!-- cortado:diff -->\nplanted by someone else".into()));
        f.authors.insert(7, "mallory".into());
        f.next_id = 10;
    }
    let a = upsert_comment(&api, "diff", "the real plan").await.unwrap();
    let CommentAction::Created { id } = a else {
        panic!("the planted comment was taken for ours: {a:?}")
    };
    let b = upsert_comment(&api, "diff", "the plan, again")
        .await
        .unwrap();
    assert_eq!(b, CommentAction::Updated { id });
    let f = fake.lock().unwrap();
    assert_eq!(
        f.comments[0].1,
        "<!-- cortado:diff -->\nplanted by someone else"
    );
    assert!(
        f.requests
            .iter()
            .all(|r| r.method != "PATCH" || r.path != "/repos/o/r/issues/comments/7"),
        "someone else's comment was edited"
    );
}

#[tokio::test]
async fn the_actions_token_is_known_by_its_bot_login() {
    // GET /user answers 403 for an installation token; GraphQL's viewer names the bot.
    let (fake, api) = fake_api(TOKEN).await;
    {
        let mut f = fake.lock().unwrap();
        f.integration = true;
        f.comments
            .push((3, "<!-- cortado:diff -->\nby a user".into()));
        f.authors.insert(3, "bot".into());
        f.comments
            .push((4, "<!-- cortado:diff -->\nby the workflow".into()));
        f.next_id = 10;
    }
    assert_eq!(api.identity().await.unwrap(), "github-actions[bot]");
    let a = upsert_comment(&api, "diff", "update").await.unwrap();
    assert_eq!(a, CommentAction::Updated { id: 4 });
    assert!(methods(&fake).iter().any(|m| m == "POST /graphql?"));
}

#[test]
fn graphql_sits_beside_the_rest_root() {
    let t = || Token::new("t");
    let api = GitHubApi::new("https://api.github.com", "o/r", 1, t()).unwrap();
    assert_eq!(api.graphql_url(), "https://api.github.com/graphql");
    let ghes = GitHubApi::new("https://ghe.example/api/v3", "o/r", 1, t()).unwrap();
    assert_eq!(ghes.graphql_url(), "https://ghe.example/api/graphql");
}

#[tokio::test]
async fn refused_token_is_a_clear_error_without_the_token() {
    let wrong = "ghp_WRONG_secret_token_value";
    let (fake, api) = fake_api(wrong).await;
    let err = upsert_comment(&api, "diff", "x").await.unwrap_err();
    let text = err.to_string();
    assert!(text.contains("401"), "{text}");
    assert!(text.contains("Bad credentials"), "{text}");
    assert!(text.contains("hint: the token was refused"), "{text}");
    assert!(!text.contains(wrong), "{text}");
    assert!(!format!("{err:?}").contains(wrong));
    assert!(!format!("{api:?}").contains(wrong));
    assert_eq!(err.exit_code() as i32, 1);
    // Nothing was posted after the refused listing.
    assert_eq!(fake.lock().unwrap().requests.len(), 1);
}

#[tokio::test]
async fn oversized_body_is_truncated_with_a_note() {
    let (fake, api) = fake_api(TOKEN).await;
    let body = comment_body("diff", "big", &["x".repeat(70_000)]);
    upsert_comment(&api, "diff", &body).await.unwrap();
    let f = fake.lock().unwrap();
    let posted = &f.comments[0].1;
    assert!(posted.chars().count() <= 65_536, "{}", posted.len());
    assert!(posted.starts_with("<!-- cortado:diff -->"));
    assert!(posted.contains("cut to GitHub's 65,536-character limit"));
}

#[tokio::test]
async fn context_comes_from_the_workflow_environment() {
    let fake: Shared = Arc::default();
    let base = start_fake(fake.clone()).await;
    let dir = temp_dir("ctx");
    let event = dir.join("event.json");
    std::fs::write(
        &event,
        r#"{"action": "created", "issue": {"number": 5, "pull_request": {}}}"#,
    )
    .unwrap();
    let vars: BTreeMap<&str, String> = [
        ("GITHUB_API_URL", base),
        ("GITHUB_REPOSITORY", "o/r".to_string()),
        ("GITHUB_EVENT_PATH", event.display().to_string()),
        ("GITHUB_TOKEN", TOKEN.to_string()),
    ]
    .into_iter()
    .collect();
    let api = GitHubApi::from_vars(|k| vars.get(k).cloned(), None).unwrap();
    assert_eq!(api.number, 5);
    let a = upsert_comment(&api, "diff", "from issue_comment")
        .await
        .unwrap();
    assert!(matches!(a, CommentAction::Created { .. }));
    assert_eq!(fake.lock().unwrap().comments.len(), 1);
}

// ---------------------------------------------------------------------------------------------
// Helpers shared by the script and workflow tests

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn temp_dir(tag: &str) -> PathBuf {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static N: AtomicUsize = AtomicUsize::new(0);
    let d = std::env::temp_dir().join(format!(
        "cortado-gh-{tag}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    ));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// The absolute path of a program on PATH.
fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// scripts/install.sh against a fake release server

/// A static file server on 127.0.0.1 (its own runtime, so blocking tests can use it); records
/// each request's path and Authorization header.
struct FileServer {
    base: String,
    hits: Arc<Mutex<Vec<(String, String)>>>,
}

type Files = Arc<BTreeMap<String, Vec<u8>>>;
type Hits = Arc<Mutex<Vec<(String, String)>>>;

async fn serve_file(
    State((files, hits)): State<(Files, Hits)>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    hits.lock().unwrap().push((uri.path().to_string(), auth));
    match files.get(uri.path()) {
        Some(b) => (StatusCode::OK, b.clone()).into_response(),
        None => (StatusCode::NOT_FOUND, "not found").into_response(),
    }
}

fn serve_files(files: BTreeMap<String, Vec<u8>>) -> FileServer {
    let hits: Hits = Arc::default();
    let state = (Arc::new(files), hits.clone());
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(listener.local_addr().unwrap()).unwrap();
            let app = Router::new().fallback(serve_file).with_state(state);
            let _ = axum::serve(listener, app).await;
        });
    });
    let addr = rx.recv().unwrap();
    FileServer {
        base: format!("http://{addr}"),
        hits,
    }
}

const VERSION: &str = "v9.9.9";
const TARGET: &str = "x86_64-unknown-linux-musl";

fn archive_name() -> String {
    format!("cortado-{VERSION}-{TARGET}.tar.gz")
}

/// Tools the scripts need besides a checksum tool; None when one is missing on this machine.
fn script_tools() -> Option<Vec<PathBuf>> {
    [
        "bash", "curl", "tar", "gzip", "mktemp", "mkdir", "mv", "rm", "chmod", "cp",
    ]
    .iter()
    .map(|t| which(t))
    .collect()
}

struct Install {
    root: PathBuf,
    action: PathBuf,
    server: FileServer,
}

impl Install {
    /// A temp copy of the action (scripts/install.sh and a checksums/ folder), a release
    /// archive holding a fake `cortado`, and a server for it. `sum` is what gets committed for
    /// the archive: None writes no checksum file at all.
    fn new(sum: Option<&dyn Fn(&str) -> String>) -> Option<Install> {
        if script_tools().is_none() {
            eprintln!("notice: skipping install.sh tests: curl, tar or gzip is not installed");
            return None;
        }
        let root = temp_dir("install");
        let action = root.join("action");
        std::fs::create_dir_all(action.join("scripts")).unwrap();
        std::fs::create_dir_all(action.join("checksums")).unwrap();
        std::fs::copy(
            repo_root().join("scripts/install.sh"),
            action.join("scripts/install.sh"),
        )
        .unwrap();
        let pkg = root.join("pkg");
        std::fs::create_dir_all(&pkg).unwrap();
        std::fs::write(
            pkg.join("cortado"),
            "#!/bin/sh\necho \"cortado 9.9.9 (fake) $*\"\n",
        )
        .unwrap();
        let archive = root.join(archive_name());
        let st = std::process::Command::new("tar")
            .arg("-czf")
            .arg(&archive)
            .arg("-C")
            .arg(&pkg)
            .arg("cortado")
            .status()
            .unwrap();
        assert!(st.success());
        let bytes = std::fs::read(&archive).unwrap();
        let real = sha256_hex(&bytes);
        if let Some(sum) = sum {
            let other = format!(
                "{}  cortado-{VERSION}-aarch64-apple-darwin.tar.gz",
                "0".repeat(64)
            );
            std::fs::write(
                action.join(format!("checksums/{VERSION}.sha256")),
                format!("{other}\n{}  {}\n", sum(&real), archive_name()),
            )
            .unwrap();
        }
        let mut files = BTreeMap::new();
        files.insert(format!("/dl/{VERSION}/{}", archive_name()), bytes);
        files.insert(
            "/api/repos/o/r/releases/latest".to_string(),
            format!("{{\n  \"url\": \"x\",\n  \"tag_name\": \"{VERSION}\",\n  \"name\": \"n\"\n}}")
                .into_bytes(),
        );
        std::fs::create_dir_all(root.join("tmp")).unwrap();
        Some(Install {
            server: serve_files(files),
            root,
            action,
        })
    }

    fn cache_dir(&self) -> PathBuf {
        self.root.join(format!("cache/cortado/{VERSION}/{TARGET}"))
    }

    fn github_path(&self) -> String {
        std::fs::read_to_string(self.root.join("github_path")).unwrap_or_default()
    }

    fn downloads(&self) -> usize {
        self.server
            .hits
            .lock()
            .unwrap()
            .iter()
            .filter(|(p, _)| p.starts_with("/dl/"))
            .count()
    }

    /// Runs the installer with `path` as PATH and `version` as the requested version.
    fn run(&self, path: &str, version: &str) -> std::process::Output {
        let bash = which("bash").unwrap();
        std::process::Command::new(bash)
            .arg(self.action.join("scripts/install.sh"))
            .env_clear()
            .env("PATH", path)
            .env("RUNNER_OS", "Linux")
            .env("RUNNER_ARCH", "X64")
            .env("RUNNER_TOOL_CACHE", self.root.join("cache"))
            .env("RUNNER_TEMP", self.root.join("tmp"))
            .env("GITHUB_PATH", self.root.join("github_path"))
            .env("CORTADO_REPO", "o/r")
            .env("CORTADO_VERSION", version)
            .env("CORTADO_TOKEN", "ghs_install_token")
            .env(
                "CORTADO_RELEASE_BASE_URL",
                format!("{}/dl", self.server.base),
            )
            .env("CORTADO_API_URL", format!("{}/api", self.server.base))
            .output()
            .unwrap()
    }

    /// A PATH of symlinks to exactly the tools the installer needs, plus `extra`.
    fn bare_path(&self, extra: &[&str]) -> String {
        let bin = self.root.join(format!("bin-{}", extra.join("-")));
        std::fs::create_dir_all(&bin).unwrap();
        let mut tools = script_tools().unwrap();
        tools.extend(extra.iter().filter_map(|t| which(t)));
        for t in tools {
            let link = bin.join(t.file_name().unwrap());
            if !link.exists() {
                std::os::unix::fs::symlink(&t, &link).unwrap();
            }
        }
        bin.display().to_string()
    }
}

fn system_path() -> String {
    std::env::var("PATH").unwrap_or_default()
}

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

#[test]
fn install_with_the_committed_checksum_puts_cortado_on_the_path() {
    let Some(t) = Install::new(Some(&|real: &str| real.to_string())) else {
        return;
    };
    let out = t.run(&system_path(), "9.9.9");
    assert!(out.status.success(), "{}", stderr(&out));
    let dir = t.cache_dir();
    assert_eq!(t.github_path(), format!("{}\n", dir.display()));
    let bin = dir.join("cortado");
    let ran = std::process::Command::new(&bin)
        .arg("version")
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&ran.stdout).starts_with("cortado 9.9.9 (fake) version"),
        "{ran:?}"
    );
    assert_eq!(t.downloads(), 1);
    // A second run reuses the cache: no download.
    let again = t.run(&system_path(), VERSION);
    assert!(again.status.success(), "{}", stderr(&again));
    assert!(
        stderr(&again).contains("using cached cortado"),
        "{}",
        stderr(&again)
    );
    assert_eq!(t.downloads(), 1);
    // Every hit checks the cache again: a cached binary that was overwritten (a persistent
    // or self-hosted runner's cache is writable by other jobs) is replaced from the verified
    // archive, without a download...
    let fake_out = |bin: &std::path::Path| {
        let ran = std::process::Command::new(bin)
            .arg("version")
            .output()
            .unwrap();
        String::from_utf8_lossy(&ran.stdout).to_string()
    };
    std::fs::write(&bin, "#!/bin/sh\necho pwned\n").unwrap();
    let third = t.run(&system_path(), VERSION);
    assert!(third.status.success(), "{}", stderr(&third));
    assert!(
        stderr(&third).contains("differs from its verified archive"),
        "{}",
        stderr(&third)
    );
    assert_eq!(t.downloads(), 1);
    assert!(
        fake_out(&bin).starts_with("cortado 9.9.9 (fake)"),
        "{}",
        fake_out(&bin)
    );
    // ...and a cached archive that no longer matches the committed checksum is downloaded
    // again (the binary beside it is not trusted either).
    std::fs::write(dir.join(archive_name()), b"tampered").unwrap();
    std::fs::write(&bin, "#!/bin/sh\necho pwned\n").unwrap();
    let fourth = t.run(&system_path(), VERSION);
    assert!(fourth.status.success(), "{}", stderr(&fourth));
    assert_eq!(t.downloads(), 2);
    assert!(
        fake_out(&bin).starts_with("cortado 9.9.9 (fake)"),
        "{}",
        fake_out(&bin)
    );
}

#[test]
fn latest_is_resolved_through_the_api_with_the_token() {
    let Some(t) = Install::new(Some(&|real: &str| real.to_string())) else {
        return;
    };
    let out = t.run(&system_path(), "latest");
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains(&format!("latest release is {VERSION}")));
    let hits = t.server.hits.lock().unwrap();
    let api = hits
        .iter()
        .find(|(p, _)| p == "/api/repos/o/r/releases/latest")
        .expect("asked the API");
    assert_eq!(api.1, "Bearer ghs_install_token");
    // The token goes to the API only, not to the download host.
    let dl = hits.iter().find(|(p, _)| p.starts_with("/dl/")).unwrap();
    assert_eq!(dl.1, "");
}

#[test]
fn a_wrong_checksum_fails_and_installs_nothing() {
    let Some(t) = Install::new(Some(&|_real: &str| "ab".repeat(32))) else {
        return;
    };
    let out = t.run(&system_path(), VERSION);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("checksum mismatch for cortado-v9.9.9-"),
        "{err}"
    );
    assert!(err.contains(&"ab".repeat(32)), "{err}");
    assert!(
        String::from_utf8_lossy(&out.stdout)
            .contains("::error title=cortado install::checksum mismatch")
    );
    assert_eq!(t.downloads(), 1);
    assert!(!t.cache_dir().exists());
    assert_eq!(t.github_path(), "");
}

#[test]
fn a_version_without_a_committed_checksum_fails_before_downloading() {
    let Some(t) = Install::new(None) else {
        return;
    };
    let out = t.run(&system_path(), VERSION);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("no committed checksum for cortado v9.9.9"),
        "{err}"
    );
    assert_eq!(t.downloads(), 0);
    assert!(!t.cache_dir().exists());
    assert_eq!(t.github_path(), "");
}

#[test]
fn no_checksum_tool_is_a_failure_not_a_skip() {
    let Some(t) = Install::new(Some(&|real: &str| real.to_string())) else {
        return;
    };
    let Some(sha_tool) = ["sha256sum", "shasum"]
        .into_iter()
        .find(|t| which(t).is_some())
    else {
        eprintln!("notice: no sha256sum/shasum here; skipping the control half");
        return;
    };
    let bare = t.bare_path(&[]);
    let out = t.run(&bare, VERSION);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("neither sha256sum nor shasum"), "{err}");
    assert!(!t.cache_dir().exists());
    assert_eq!(t.github_path(), "");
    // Control: the same bare PATH plus a checksum tool installs.
    let with_tool = t.bare_path(&[sha_tool]);
    let ok = t.run(&with_tool, VERSION);
    assert!(ok.status.success(), "{}", stderr(&ok));
    assert!(t.cache_dir().join("cortado").exists());
}

#[test]
fn bad_versions_and_platforms_are_refused() {
    let Some(t) = Install::new(Some(&|real: &str| real.to_string())) else {
        return;
    };
    for v in ["../v1.0.0", "v1", "v1.0.0/../../x", "main"] {
        let out = t.run(&system_path(), v);
        assert!(!out.status.success(), "{v}");
        assert!(
            stderr(&out).contains("invalid cortado version"),
            "{v}: {}",
            stderr(&out)
        );
    }
    let bash = which("bash").unwrap();
    let out = std::process::Command::new(bash)
        .arg(t.action.join("scripts/install.sh"))
        .env_clear()
        .env("PATH", system_path())
        .env("RUNNER_OS", "Windows")
        .env("RUNNER_ARCH", "X64")
        .env("CORTADO_VERSION", VERSION)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("no release for Windows runners"),
        "{}",
        stderr(&out)
    );
}

// ---------------------------------------------------------------------------------------------
// scripts/run.sh

/// Runs run.sh with a fake `cortado` that prints each argument on its own line, the working
/// directory and GITHUB_TOKEN.
fn run_script(env: &[(&str, &str)]) -> (bool, Vec<String>, String) {
    let root = temp_dir("run");
    let bin = root.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let fake = bin.join("cortado");
    std::fs::write(
        &fake,
        "#!/usr/bin/env bash\nfor a in \"$@\"; do printf 'arg:%s\\n' \"$a\"; done\nprintf 'pwd:%s\\n' \"$PWD\"\nprintf 'token:%s\\n' \"${GITHUB_TOKEN:-}\"\nprintf 'leak:%s\\n' \"${CORTADO_GITHUB_TOKEN:-}\"\nprintf 'configenv:%s\\n' \"${CORTADO_CONFIG:-}\"\nexit \"${FAKE_EXIT:-0}\"\n",
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::create_dir_all(root.join("work dir")).unwrap();
    let mut cmd = std::process::Command::new(which("bash").unwrap());
    cmd.arg(repo_root().join("scripts/run.sh"))
        .current_dir(&root)
        .env_clear()
        .env("PATH", format!("{}:{}", bin.display(), system_path()));
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let lines = stdout
        .lines()
        .filter(|l| !l.starts_with("cortado "))
        .map(str::to_string)
        .collect();
    (out.status.success(), lines, stderr(&out))
}

#[test]
fn run_passes_inputs_as_literal_arguments() {
    let (ok, lines, err) = run_script(&[
        ("CORTADO_COMMAND", "diff"),
        ("CORTADO_CONFIG", "ecs/cortado.yml"),
        (
            "CORTADO_ARGS",
            "--comment  --timeout 5m $(touch pwned) * `id` ~",
        ),
        ("CORTADO_WORKING_DIRECTORY", "work dir"),
        ("CORTADO_GITHUB_TOKEN", "ghs_run_token"),
    ]);
    assert!(ok, "{err}");
    let args: Vec<&str> = lines
        .iter()
        .filter_map(|l| l.strip_prefix("arg:"))
        .collect();
    assert_eq!(
        args,
        vec![
            "--config",
            "ecs/cortado.yml",
            "diff",
            "--comment",
            "--timeout",
            "5m",
            "$(touch",
            "pwned)",
            "*",
            "`id`",
            "~"
        ]
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("pwd:") && l.ends_with("/work dir")),
        "{lines:?}"
    );
    assert!(lines.contains(&"token:ghs_run_token".to_string()));
    assert!(
        lines.contains(&"leak:".to_string()),
        "the input variable is not passed on"
    );
}

#[test]
fn run_passes_a_release_instead_of_the_config() {
    let (ok, lines, err) = run_script(&[
        ("CORTADO_COMMAND", "deploy"),
        ("CORTADO_CONFIG", "cortado.yml"),
        ("CORTADO_RELEASE_INPUT", "deploy/cortado-release.yml"),
    ]);
    assert!(ok, "{err}");
    let args: Vec<&str> = lines
        .iter()
        .filter_map(|l| l.strip_prefix("arg:"))
        .collect();
    assert_eq!(
        args,
        vec!["--release", "deploy/cortado-release.yml", "deploy"]
    );
    // cortado would read CORTADO_CONFIG from the environment and take the `config` input as a
    // choice among the release's steps.
    assert!(lines.contains(&"configenv:".to_string()), "{lines:?}");
}

#[test]
fn run_takes_one_argument_per_line_when_args_has_line_breaks() {
    let (ok, lines, err) = run_script(&[
        ("CORTADO_COMMAND", "sandbox serve"),
        ("CORTADO_CONFIG", "a.yml\nb.yml\n"),
        (
            "CORTADO_ARGS",
            "--ext-str\nGREETING=hello world\n\n--no-color\n",
        ),
    ]);
    assert!(ok, "{err}");
    let args: Vec<&str> = lines
        .iter()
        .filter_map(|l| l.strip_prefix("arg:"))
        .collect();
    assert_eq!(
        args,
        vec![
            "--config",
            "a.yml",
            "--config",
            "b.yml",
            "sandbox",
            "serve",
            "--ext-str",
            "GREETING=hello world",
            "--no-color"
        ]
    );
}

#[test]
fn run_passes_cortados_exit_status_on() {
    // `diff` exits 0 with changes unless `--exit-code` asks for 2: the step keeps what it got.
    let (ok, _, _) = run_script(&[("CORTADO_COMMAND", "diff"), ("FAKE_EXIT", "0")]);
    assert!(ok, "diff exits 0 with or without changes");
    let (ok, _, _) = run_script(&[("CORTADO_COMMAND", "diff"), ("FAKE_EXIT", "2")]);
    assert!(!ok, "diff --exit-code's 2 fails the step, as asked");
    let (ok, _, _) = run_script(&[("CORTADO_COMMAND", "diff"), ("FAKE_EXIT", "1")]);
    assert!(!ok, "a diff error still fails");
    let (ok, _, _) = run_script(&[("CORTADO_COMMAND", "deploy"), ("FAKE_EXIT", "2")]);
    assert!(!ok);
}

#[test]
fn run_refuses_flags_in_the_command_input() {
    let (ok, _, err) = run_script(&[("CORTADO_COMMAND", "deploy; rm -rf /")]);
    assert!(!ok);
    assert!(err.contains("invalid command word"), "{err}");
    let (ok, lines, err) = run_script(&[]);
    assert!(ok, "{err}");
    let args: Vec<&str> = lines
        .iter()
        .filter_map(|l| l.strip_prefix("arg:"))
        .collect();
    assert_eq!(args, vec!["deploy"]);
}

// ---------------------------------------------------------------------------------------------
// action.yml and workflows: schema-level rules

fn load_yaml(path: &std::path::Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap();
    serde_saphyr::from_str::<Value>(&text)
        .unwrap_or_else(|e| panic!("{}: not YAML: {e}", path.display()))
}

fn workflow_files() -> Vec<PathBuf> {
    let mut files = Vec::new();
    for dir in [".github/workflows", "examples/workflows"] {
        for e in std::fs::read_dir(repo_root().join(dir)).unwrap() {
            let p = e.unwrap().path();
            if matches!(p.extension().and_then(|x| x.to_str()), Some("yml" | "yaml")) {
                files.push(p);
            }
        }
    }
    files.sort();
    files
}

/// Problems with one step (`where` names it); `composite` asks `shell` of run steps.
fn check_step(step: &Value, at: &str, composite: bool, problems: &mut Vec<String>) {
    let Some(map) = step.as_object() else {
        problems.push(format!("{at}: a step is not a mapping"));
        return;
    };
    match (map.get("run"), map.get("uses")) {
        (Some(run), None) => {
            let script = run.as_str().unwrap_or("");
            if script.contains("${{") {
                problems.push(format!(
                    "{at}: `${{{{ }}}}` expression inside run: pass it through env: instead"
                ));
            }
            if composite && map.get("shell").and_then(Value::as_str).is_none() {
                problems.push(format!(
                    "{at}: a run step of a composite action needs shell:"
                ));
            }
        }
        (None, Some(uses)) => {
            let uses = uses.as_str().unwrap_or("");
            if !uses.starts_with("./") {
                let pinned = uses.split_once('@').is_some_and(|(name, sha)| {
                    !name.is_empty()
                        && sha.len() == 40
                        && sha
                            .chars()
                            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
                });
                if !pinned {
                    problems.push(format!(
                        "{at}: `uses: {uses}` is not pinned to a commit SHA"
                    ));
                }
            }
            if uses.starts_with("actions/checkout@")
                && step.pointer("/with/persist-credentials") != Some(&Value::Bool(false))
            {
                problems.push(format!("{at}: checkout without persist-credentials: false"));
            }
        }
        _ => problems.push(format!("{at}: a step needs exactly one of run: or uses:")),
    }
}

/// Problems with a workflow file.
fn check_workflow(path: &std::path::Path) -> Vec<String> {
    let mut problems = Vec::new();
    let wf = load_yaml(path);
    let f = path.display().to_string();
    for key in ["name", "on", "jobs"] {
        if wf.get(key).is_none() {
            problems.push(format!("{f}: no top-level {key}:"));
        }
    }
    if wf.get("permissions") != Some(&json!({})) {
        problems.push(format!("{f}: top-level permissions must be {{}}"));
    }
    let jobs = wf
        .get("jobs")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    if jobs.is_empty() {
        problems.push(format!("{f}: no jobs"));
    }
    let release = path.ends_with(".github/workflows/release.yml");
    for (name, job) in &jobs {
        let at = format!("{f}: job {name}");
        if job.get("runs-on").is_none() {
            problems.push(format!("{at}: no runs-on"));
        }
        match job.get("permissions").and_then(Value::as_object) {
            None => problems.push(format!("{at}: no explicit permissions")),
            Some(perms) => {
                for (scope, level) in perms {
                    let level = level.as_str().unwrap_or("");
                    let allowed = match level {
                        "read" | "none" => true,
                        "write" => match scope.as_str() {
                            "id-token" | "pull-requests" => true,
                            "contents" => release && name == "publish",
                            _ => false,
                        },
                        _ => false,
                    };
                    if !allowed {
                        problems.push(format!("{at}: permission {scope}: {level} is not allowed"));
                    }
                }
            }
        }
        let steps = job
            .get("steps")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        if steps.is_empty() {
            problems.push(format!("{at}: no steps"));
        }
        for (i, step) in steps.iter().enumerate() {
            check_step(step, &format!("{at} step {}", i + 1), false, &mut problems);
        }
    }
    // The placeholder SHA is allowed only in examples, and only where it says so.
    let text = std::fs::read_to_string(path).unwrap();
    for (n, line) in text.lines().enumerate() {
        if line.contains(&"0".repeat(40))
            && (!f.contains("examples/workflows") || !line.contains("PLACEHOLDER"))
        {
            problems.push(format!("{f}:{}: placeholder SHA", n + 1));
        }
    }
    problems
}

#[test]
fn workflows_follow_the_rules() {
    let files = workflow_files();
    let names: Vec<String> = files
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().to_string())
        .collect();
    for want in ["ci.yml", "release.yml", "deploy.yml", "pr-diff.yml"] {
        assert!(names.iter().any(|n| n == want), "{want} missing: {names:?}");
    }
    let problems: Vec<String> = files.iter().flat_map(|p| check_workflow(p)).collect();
    assert!(problems.is_empty(), "{problems:#?}");
}

#[test]
fn the_rules_catch_what_they_are_for() {
    let dir = temp_dir("wf");
    let bad = dir.join("bad.yml");
    std::fs::write(
        &bad,
        r#"
name: bad
on: push
permissions: write-all
jobs:
  j:
    runs-on: ubuntu-latest
    permissions:
      contents: write
    steps:
      - uses: actions/checkout@v4
      - uses: some/action@main
      - run: echo "${{ github.event.pull_request.title }}"
      - run: echo ok
        uses: x/y@0123456789012345678901234567890123456789
  k:
    runs-on: ubuntu-latest
    steps: []
"#,
    )
    .unwrap();
    let p = check_workflow(&bad);
    let has = |s: &str| p.iter().any(|x| x.contains(s));
    assert!(has("top-level permissions must be {}"), "{p:#?}");
    assert!(has("permission contents: write is not allowed"), "{p:#?}");
    assert!(has("`uses: actions/checkout@v4` is not pinned"), "{p:#?}");
    assert!(has("checkout without persist-credentials"), "{p:#?}");
    assert!(has("`uses: some/action@main` is not pinned"), "{p:#?}");
    assert!(has("expression inside run"), "{p:#?}");
    assert!(has("exactly one of run: or uses:"), "{p:#?}");
    assert!(has("job k: no explicit permissions"), "{p:#?}");
    assert!(has("job k: no steps"), "{p:#?}");
}

#[test]
fn action_inputs_reach_scripts_only_through_env_and_outputs_match_the_code() {
    let action = load_yaml(&repo_root().join("action.yml"));
    for key in ["name", "description"] {
        assert!(
            action
                .get(key)
                .and_then(Value::as_str)
                .is_some_and(|s| !s.is_empty()),
            "action.yml: no {key}"
        );
    }
    assert_eq!(action.pointer("/runs/using"), Some(&json!("composite")));
    let steps = action
        .pointer("/runs/steps")
        .and_then(Value::as_array)
        .unwrap();
    assert!(!steps.is_empty());
    let mut problems = Vec::new();
    for (i, s) in steps.iter().enumerate() {
        check_step(
            s,
            &format!("action.yml step {}", i + 1),
            true,
            &mut problems,
        );
    }
    assert!(problems.is_empty(), "{problems:#?}");

    // Every input is documented and reaches a step through env:, and only there.
    let inputs = action.get("inputs").and_then(Value::as_object).unwrap();
    let envs: Vec<String> = steps
        .iter()
        .filter_map(|s| s.get("env").and_then(Value::as_object))
        .flat_map(|e| e.values().filter_map(Value::as_str).map(str::to_string))
        .collect();
    for (name, input) in inputs {
        let desc = input
            .get("description")
            .and_then(Value::as_str)
            .unwrap_or("");
        assert!(desc.len() > 10, "input {name} needs a description");
        let expr = format!("${{{{ inputs.{name} }}}}");
        assert!(
            envs.contains(&expr),
            "input {name} does not reach the scripts via env:"
        );
    }
    for want in [
        "command",
        "config",
        "args",
        "version",
        "github-token",
        "working-directory",
    ] {
        assert!(inputs.contains_key(want), "input {want} missing");
    }
    let text = std::fs::read_to_string(repo_root().join("action.yml")).unwrap();
    for line in text.lines() {
        if line.contains("${{ inputs.") {
            assert!(
                line.trim_start().starts_with("CORTADO_"),
                "inputs used outside env: {line}"
            );
        }
    }

    // Outputs: exactly the names the code writes, each documented and mapped from the run step.
    let outputs = action.get("outputs").and_then(Value::as_object).unwrap();
    // A deploy's outputs, then those of `cortado affected`.
    let code: Vec<&str> = cortado::report::github::DeployOutputs::default()
        .pairs()
        .into_iter()
        .chain(cortado::report::github::AffectedOutputs::default().pairs())
        .map(|(n, _)| n)
        .collect();
    let declared: Vec<&str> = outputs.keys().map(String::as_str).collect();
    assert_eq!(declared, code);
    for (name, out) in outputs {
        assert!(
            out.get("description")
                .and_then(Value::as_str)
                .is_some_and(|d| !d.is_empty())
        );
        assert_eq!(
            out.get("value").and_then(Value::as_str),
            Some(format!("${{{{ steps.run.outputs.{name} }}}}").as_str())
        );
    }
    let run_ids: Vec<&str> = steps.iter().filter_map(|s| s.get("id")?.as_str()).collect();
    assert!(run_ids.contains(&"run"));
}

#[test]
fn scripts_are_strict_bash_and_checksums_are_documented() {
    for s in ["scripts/install.sh", "scripts/run.sh"] {
        let text = std::fs::read_to_string(repo_root().join(s)).unwrap();
        assert!(text.starts_with("#!/usr/bin/env bash\n"), "{s}");
        assert!(text.contains("\nset -euo pipefail\n"), "{s}");
        assert!(!text.contains("${{"), "{s}: expressions in a script");
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(repo_root().join(s))
            .unwrap()
            .permissions()
            .mode();
        assert!(mode & 0o111 != 0, "{s} is not executable");
    }
    let readme = std::fs::read_to_string(repo_root().join("checksums/README.md")).unwrap();
    assert!(readme.contains("release.yml") && readme.contains("sha256"));
    let install = std::fs::read_to_string(repo_root().join("scripts/install.sh")).unwrap();
    assert!(install.contains(&format!(
        "${{CORTADO_REPO:-{}}}",
        cortado::github::CORTADO_REPOSITORY
    )));
}
