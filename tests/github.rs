//! GitHub integration, black-box:
//! - the sticky PR comment client against a fake GitHub API (axum, in-process, recording
//!   every request);
//! - the action's install script against a fake release server, with committed checksums;
//! - schema-level rules for `action.yml` and every workflow (pinning, permissions, no
//!   expressions pasted into scripts).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use cortado::github::{CommentAction, GitHubApi, Token, comment_body, upsert_comment};

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
    next_id: u64,
    requests: Vec<Recorded>,
}

type Shared = Arc<Mutex<Fake>>;

async fn start_fake(fake: Shared) -> String {
    let app = Router::new().fallback(route).with_state(fake);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    format!("http://{addr}")
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
                .map(|(id, b)| json!({"id": id, "body": b, "user": {"login": "bot"}}))
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
    let f = fake.lock().unwrap();
    assert_eq!(f.comments.len(), 1, "no second comment");
    assert_eq!(f.comments[0].1, body2);
    let last = f.requests.last().unwrap();
    assert_eq!(
        (last.method.as_str(), last.path.clone()),
        ("PATCH", format!("/repos/o/r/issues/comments/{id}"))
    );
    assert_eq!(f.requests.len(), 4, "GET, POST, GET, PATCH");
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

#[allow(dead_code)]
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

#[allow(dead_code)]
fn exists(p: &Path) -> bool {
    p.exists()
}
