//! Notifications, black-box: the real binary deploys to the in-process sandbox with a
//! `notify:` section whose targets are local HTTP servers recording what they receive (a fake
//! GitHub API, a Slack webhook, Datadog's events endpoint, a generic webhook). Checked: each
//! target hears the start and the end in its documented shape; a failure carries its cause;
//! a dead target (a port that accepts and never answers, one that refuses) costs seconds and
//! a warning, never the exit code; no URL or key reaches stdout or stderr.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::common::{FAST, Run, Scenario, finish, fixture, serve_http};

/// Secret parts of the targets' settings: none may appear in any output.
const SLACK_SECRET: &str = "T000/B000/slacksecretXYZ";
const DD_KEY: &str = "ddkey-0123456789abcdef";
const HOOK_SECRET: &str = "hooksecret-42";
const HOOK_AUTH: &str = "Bearer hookauth-77";
const GH_TOKEN: &str = "ghs_notifytoken_123";

#[derive(Debug, Clone)]
struct Rec {
    path: String,
    headers: Vec<(String, String)>,
    body: Value,
}

impl Rec {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

type Log = Arc<Mutex<Vec<Rec>>>;

async fn record(
    State(log): State<Log>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().to_string();
    let rec = Rec {
        path: format!("{method} {path}"),
        headers: headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_string()))
            .collect(),
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
    };
    let mut log = log.lock().unwrap();
    log.push(rec);
    if path.ends_with("/deployments") {
        let id = 100 + log.len();
        return (StatusCode::CREATED, json_reply(json!({"id": id}))).into_response();
    }
    if path.ends_with("/statuses") {
        return (StatusCode::CREATED, json_reply(json!({"id": 1}))).into_response();
    }
    if path.starts_with("/slack/") {
        return (StatusCode::OK, "ok").into_response();
    }
    (StatusCode::ACCEPTED, json_reply(json!({"status": "ok"}))).into_response()
}

fn json_reply(v: Value) -> impl IntoResponse {
    ([("content-type", "application/json")], v.to_string())
}

/// A recording server; returns its base URL and its log.
async fn recorder() -> (String, Log) {
    let log: Log = Default::default();
    let base = serve_http(Router::new().fallback(record).with_state(log.clone())).await;
    (base, log)
}

const NOTIFY_ALL: &str = "
notify:
  github_deployments:
    environment: production
    environment_url: https://web.example.com
  slack:
    webhook_url: '{{ must_env `SLACK_URL` }}'
  datadog:
    api_key: '{{ must_env `DD_KEY` }}'
    url: '{{ must_env `DD_URL` }}'
    env: production
    tags: [team:web]
  webhook:
    url: '{{ must_env `HOOK_URL` }}'
    headers:
      Authorization: '{{ must_env `HOOK_AUTH` }}'
";

/// The `web` fixture copied to a folder of its own with `extra` appended to its config.
fn config_with(label: &str, extra: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("cortado-notify-{label}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let from = fixture("web");
    for f in ["cortado.yml", "ecs-service-def.json", "ecs-task-def.json"] {
        std::fs::copy(from.join(f), dir.join(f)).unwrap();
    }
    let path = dir.join("cortado.yml");
    let mut text = std::fs::read_to_string(&path).unwrap();
    text.push_str(extra);
    std::fs::write(&path, text).unwrap();
    path
}

/// The environment of a run whose targets live at `base` (and of a GitHub Actions run).
fn env_for(base: &str) -> Vec<(String, String)> {
    [
        ("SLACK_URL", format!("{base}/slack/{SLACK_SECRET}")),
        ("DD_KEY", DD_KEY.to_string()),
        ("DD_URL", format!("{base}/dd/api/v1/events")),
        ("HOOK_URL", format!("{base}/hook/{HOOK_SECRET}")),
        ("HOOK_AUTH", HOOK_AUTH.to_string()),
        ("GITHUB_TOKEN", GH_TOKEN.to_string()),
        ("GITHUB_API_URL", format!("{base}/gh")),
        ("GITHUB_REPOSITORY", "o/r".to_string()),
        ("GITHUB_SHA", "0123abcd".to_string()),
        ("GITHUB_SERVER_URL", "https://github.com".to_string()),
        ("GITHUB_RUN_ID", "4242".to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

fn of<'a>(log: &'a [Rec], prefix: &str) -> Vec<&'a Rec> {
    log.iter().filter(|r| r.path.contains(prefix)).collect()
}

#[track_caller]
fn assert_no_secret(run: &Run) {
    for s in [SLACK_SECRET, DD_KEY, HOOK_SECRET, "hookauth-77", GH_TOKEN] {
        assert!(
            !run.stdout.contains(s) && !run.stderr.contains(s),
            "{s} leaked\n{}",
            run.dump()
        );
    }
}

/// A deploy that succeeds: every target hears the start and the end, in its shape.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_target_hears_the_start_and_the_end_of_a_deploy() {
    let (base, recorded) = recorder().await;
    let mut s = Scenario::new("web", FAST, &["v1", "v2"]).await;
    s.config = config_with("all", NOTIFY_ALL);
    s.env = env_for(&base);
    let run = s.deploy("v1", &[]).await;
    run.expect_code(0);
    assert_no_secret(&run);
    let log = recorded.lock().unwrap().clone();

    // GitHub: a deployment for the commit, then in_progress, then success, in that order.
    let gh = of(&log, "/gh/");
    let paths: Vec<&str> = gh.iter().map(|r| r.path.as_str()).collect();
    assert_eq!(paths.len(), 3, "{log:#?}");
    assert_eq!(paths[0], "POST /gh/repos/o/r/deployments");
    assert!(paths[1].ends_with("/statuses") && paths[2].ends_with("/statuses"));
    let d = &gh[0].body;
    assert_eq!(d["ref"], "0123abcd");
    assert_eq!(d["environment"], "production");
    assert_eq!(d["auto_merge"], false);
    assert_eq!(d["required_contexts"], json!([]));
    assert_eq!(d["payload"]["service"], "web");
    assert_eq!(
        gh[0].header("authorization"),
        Some(&*format!("Bearer {GH_TOKEN}"))
    );
    let id = paths[1]
        .trim_start_matches("POST /gh/repos/o/r/deployments/")
        .trim_end_matches("/statuses");
    assert!(id.parse::<u64>().is_ok(), "{}", paths[1]);
    assert_eq!(gh[1].body["state"], "in_progress");
    assert_eq!(gh[2].body["state"], "success");
    assert_eq!(
        gh[2].body["log_url"],
        "https://github.com/o/r/actions/runs/4242"
    );
    assert_eq!(gh[2].body["environment_url"], "https://web.example.com");

    // Slack: two messages, text only.
    let slack = of(&log, "/slack/");
    assert_eq!(slack.len(), 2, "{log:#?}");
    assert!(
        slack[0].body["text"]
            .as_str()
            .unwrap()
            .contains("deploy started")
    );
    let end = slack[1].body["text"].as_str().unwrap();
    assert!(
        end.contains("deploy succeeded") && end.contains("`web`"),
        "{end}"
    );

    // Datadog: an event per phase, the key in DD-API-KEY, the documented fields.
    let dd = of(&log, "/dd/api/v1/events");
    assert_eq!(dd.len(), 2, "{log:#?}");
    assert_eq!(dd[0].header("dd-api-key"), Some(DD_KEY));
    assert_eq!(dd[0].body["alert_type"], "info");
    assert_eq!(dd[1].body["alert_type"], "success");
    let tags = dd[1].body["tags"].to_string();
    for t in ["service:web", "env:production", "version:v1", "team:web"] {
        assert!(tags.contains(t), "{t}: {tags}");
    }
    assert!(dd[1].body["title"].as_str().is_some_and(|t| !t.is_empty()));
    assert!(dd[1].body["text"].as_str().is_some_and(|t| !t.is_empty()));

    // The webhook: payload version 1, with its header.
    let hook = of(&log, "/hook/");
    assert_eq!(hook.len(), 2, "{log:#?}");
    assert_eq!(hook[0].header("authorization"), Some(HOOK_AUTH));
    let (a, b) = (&hook[0].body, &hook[1].body);
    assert_eq!(
        (a["version"].as_u64(), a["event"].as_str()),
        (Some(1), Some("deploy_started"))
    );
    assert_eq!(a["service"], "web");
    assert_eq!(a["cluster"], "scenarios");
    assert_eq!(a["outcome"], Value::Null);
    assert_eq!(b["event"], "deploy_finished");
    assert_eq!(b["outcome"], "succeeded");
    assert_eq!(b["exit_code"], 0);
    assert_eq!(b["run_url"], "https://github.com/o/r/actions/runs/4242");
    assert!(
        b["revision"]
            .as_str()
            .unwrap()
            .ends_with("task-definition/web:1"),
        "{b}"
    );

    // Dry runs and --no-notify tell nobody.
    s.deploy("v2", &["--dry-run"]).await.expect_code(0);
    s.deploy("v2", &["--no-notify"]).await.expect_code(0);
    s.cortado("v2", &["diff"]).await;
    assert_eq!(recorded.lock().unwrap().len(), log.len());
}

/// A deploy that fails: the end says so, with the cause, and GitHub's status is failure.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_deploy_sends_failure_with_its_cause() {
    let (base, log) = recorder().await;
    let mut s = Scenario::new("web", FAST, &["v1", "v2", "v3--crash-20s"]).await;
    s.on_v2().await;
    s.config = config_with("fail", NOTIFY_ALL);
    s.env = env_for(&base);
    let run = s.deploy("v3--crash-20s", &[]).await;
    run.expect_code(3);
    assert_no_secret(&run);
    let log = log.lock().unwrap().clone();
    let hook = of(&log, "/hook/");
    let end = &hook.last().unwrap().body;
    assert_eq!(end["outcome"], "rolled-back", "{end}");
    assert_eq!(end["exit_code"], 3);
    let detail = end["detail"].as_str().unwrap();
    assert_eq!(
        detail,
        run.result()["detail"].as_str().unwrap(),
        "the result's own words"
    );
    assert!(!detail.is_empty());
    assert!(
        end["rolled_back_to"]
            .as_str()
            .is_some_and(|r| r.ends_with("web:2")),
        "{end}"
    );
    let reasons = end["stopped_reasons"].to_string();
    assert!(
        reasons.contains("Essential container in task exited"),
        "the tasks' stop reason: {end}"
    );
    // The explanation of the failure travels with it: the crash, its container and code.
    let diagnosis = &end["diagnoses"][0];
    assert_eq!(diagnosis["cause"], "crash", "{end}");
    assert!(
        diagnosis["failure"]
            .as_str()
            .is_some_and(|f| f.contains("container web exit code 1")),
        "{end}"
    );
    assert!(
        diagnosis["summary"]
            .as_str()
            .is_some_and(|s| s.contains("exited with code 1")),
        "{end}"
    );
    assert!(
        diagnosis["fix"].as_str().is_some_and(|f| !f.is_empty()),
        "{end}"
    );
    let slack = of(&log, "/slack/");
    let text = slack.last().unwrap().body["text"].as_str().unwrap();
    assert!(
        text.contains("\n> tasks stopped (") && text.contains("Essential container in task exited"),
        "{text}"
    );
    assert!(
        text.contains("\n> diagnosis: container web exited with code 1"),
        "{text}"
    );
    assert!(
        text.contains("deploy failed") && text.contains("rolled back"),
        "{text}"
    );
    let dd = of(&log, "/dd/");
    assert_eq!(dd.last().unwrap().body["alert_type"], "error");
    let gh = of(&log, "/gh/");
    assert_eq!(gh.last().unwrap().body["state"], "failure");
    assert!(
        gh.last().unwrap().body["description"]
            .as_str()
            .unwrap()
            .chars()
            .count()
            <= 140,
        "GitHub's limit"
    );
}

/// A port that accepts connections and never answers.
async fn black_hole() -> (String, tokio::task::JoinHandle<()>) {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((sock, _)) = l.accept().await {
            held.push(sock);
        }
    });
    (format!("http://{addr}"), task)
}

/// A port nothing listens on.
fn refused() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    drop(l);
    format!("http://{addr}")
}

/// Dead targets cost seconds and a warning each; the deploy's exit code is unchanged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_target_costs_seconds_and_a_warning_never_the_outcome() {
    let (hole, _task) = black_hole().await;
    let dead = refused();
    let mut s = Scenario::new("web", FAST, &["v1", "v2"]).await;
    s.deploy("v1", &[]).await.expect_code(0);

    // The same deploy without notifications, for comparison.
    let t0 = Instant::now();
    s.deploy("v2", &["--force-new-deployment"])
        .await
        .expect_code(0);
    let baseline = t0.elapsed();

    s.config = config_with(
        "dead",
        "notify:\n  webhook: {url: '{{ must_env `HOOK_URL` }}'}\n  slack: {webhook_url: '{{ must_env `SLACK_URL` }}'}\n",
    );
    s.env = vec![
        ("HOOK_URL".into(), format!("{hole}/hook/{HOOK_SECRET}")),
        ("SLACK_URL".into(), format!("{dead}/slack/{SLACK_SECRET}")),
    ];
    let run = s.deploy("v2", &["--force-new-deployment"]).await;
    run.expect_code(0);
    assert_no_secret(&run);
    let extra = run.took.saturating_sub(baseline);
    println!(
        "dead targets: deploy {:.1}s with them, {:.1}s without: {:.1}s more",
        run.took.as_secs_f64(),
        baseline.as_secs_f64(),
        extra.as_secs_f64()
    );
    assert!(
        run.stderr
            .contains("notification to `webhook` failed: no answer within 3s"),
        "{}",
        run.dump()
    );
    assert!(
        run.stderr
            .contains("notification to `slack` failed: no connection"),
        "{}",
        run.dump()
    );
    // The hung webhook costs one request timeout (3 s), then is not tried again; the refused
    // one costs its two retries' pauses (1.5 s), at the start and at the end: ~4.5 s expected.
    // The design's bound is 8 s a phase; the margin is for a loaded machine, whose deploys
    // vary by seconds.
    assert!(
        extra < Duration::from_secs(12),
        "{:?} more\n{}",
        extra,
        run.dump()
    );
    assert_eq!(run.result()["outcome"], "succeeded");
}

/// A release file's `notify:` hears the whole run: release_started and release_finished
/// with every service.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_release_notifies_its_start_and_end_with_every_service() {
    let (base, log) = recorder().await;
    let s = Scenario::new("web", FAST, &["v1", "v2"]).await;
    // The config's own section speaks for its service beside the release's.
    let config = config_with(
        "release",
        "notify:\n  webhook: {url: '{{ must_env `SVC_HOOK_URL` }}'}\n",
    );
    let dir = config.parent().unwrap();
    let release = dir.join("release.yml");
    std::fs::write(
        &release,
        "steps:\n  - config: cortado.yml\nnotify:\n  webhook: {url: '{{ must_env `HOOK_URL` }}'}\n  slack: {webhook_url: '{{ must_env `SLACK_URL` }}'}\n",
    )
    .unwrap();
    let mut cmd = release_command(&s, &release, &base);
    cmd.arg("deploy")
        .env("SVC_HOOK_URL", format!("{base}/svchook/{HOOK_SECRET}"));
    let run = finish(cmd).await;
    run.expect_code(0);
    assert_no_secret(&run);
    let log = log.lock().unwrap().clone();
    let hook = of(&log, "/hook/");
    assert_eq!(hook.len(), 2, "{log:#?}");
    assert_eq!(hook[0].body["event"], "release_started");
    assert_eq!(hook[0].body["services"][0]["service"], "web");
    assert_eq!(hook[1].body["event"], "release_finished");
    assert_eq!(hook[1].body["outcome"], "succeeded");
    assert_eq!(hook[1].body["exit_code"], 0);
    assert_eq!(hook[1].body["services"][0]["outcome"], "succeeded");
    let svc = of(&log, "/svchook/");
    let events: Vec<&str> = svc
        .iter()
        .filter_map(|r| r.body["event"].as_str())
        .collect();
    assert_eq!(events, ["deploy_started", "deploy_finished"], "{log:#?}");
    assert_eq!(svc[1].body["service"], "web");
    let slack = of(&log, "/slack/");
    assert!(
        slack[0].body["text"]
            .as_str()
            .unwrap()
            .contains("release of 1 services started")
    );
    assert!(
        slack[1].body["text"]
            .as_str()
            .unwrap()
            .contains("release succeeded")
    );
}

fn release_command(s: &Scenario, release: &Path, base: &str) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(crate::common::cortado_bin());
    cmd.env_clear()
        .arg("--release")
        .arg(release)
        .args(["--output", "json"])
        .envs(crate::common::sandbox_env(&s.sb.endpoint()))
        .env("TAG", "v1")
        .envs(env_for(base))
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    cmd
}

/// `validate` reads the section (unknown keys are errors, located) and never notifies.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validate_refuses_an_unknown_notify_key_without_naming_the_url() {
    let (base, log) = recorder().await;
    let mut s = Scenario::new("web", FAST, &["v1"]).await;
    s.config = config_with(
        "bad",
        "notify:\n  slack: {webhok_url: '{{ must_env `SLACK_URL` }}'}\n",
    );
    s.env = env_for(&base);
    let run = s.cortado("v1", &["validate"]).await;
    assert_eq!(run.code, 1, "{}", run.dump());
    let all = format!("{}{}", run.stdout, run.stderr);
    assert!(
        all.contains("webhok_url") && all.contains("webhook_url"),
        "{}",
        run.dump()
    );
    assert!(all.contains("\"line\": 10"), "located\n{}", run.dump());
    assert_no_secret(&run);
    assert!(log.lock().unwrap().is_empty());
}

/// Inside GitHub Actions a failed notification is also a `::warning` annotation; the secret
/// reaches the runner only in its `::add-mask::` line.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inside_actions_a_failed_notification_is_a_warning_annotation() {
    let dead = refused();
    let s = Scenario::new("web", FAST, &["v1"]).await;
    let config = config_with(
        "actions",
        "notify:\n  slack: {webhook_url: '{{ must_env `SLACK_URL` }}'}\n",
    );
    let dir = config.parent().unwrap().to_path_buf();
    let (summary, outputs) = (dir.join("summary.md"), dir.join("outputs.txt"));
    let mut cmd = tokio::process::Command::new(crate::common::cortado_bin());
    cmd.env_clear()
        .args(["--config"])
        .arg(&config)
        .args(["--output", "text", "deploy"])
        .envs(crate::common::sandbox_env(&s.sb.endpoint()))
        .env("TAG", "v1")
        .env("GITHUB_ACTIONS", "true")
        .env("GITHUB_STEP_SUMMARY", &summary)
        .env("GITHUB_OUTPUT", &outputs)
        .env("SLACK_URL", format!("{dead}/slack/{SLACK_SECRET}"))
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    let run = finish(cmd).await;
    run.expect_code(0);
    let warnings: Vec<&str> = run
        .stdout
        .lines()
        .filter(|l| l.starts_with("::warning") && l.contains("notification to `slack` failed"))
        .collect();
    assert_eq!(warnings.len(), 2, "start and end\n{}", run.dump());
    assert!(!run.stdout.contains(SLACK_SECRET), "{}", run.dump());
    let masked_elsewhere = run
        .stderr
        .lines()
        .filter(|l| !l.starts_with("::add-mask::"))
        .all(|l| !l.contains(SLACK_SECRET));
    assert!(masked_elsewhere, "{}", run.dump());
    for f in [&summary, &outputs] {
        let text = std::fs::read_to_string(f).unwrap();
        assert!(!text.is_empty(), "{} written", f.display());
        assert!(!text.contains(SLACK_SECRET), "{}: {text}", f.display());
    }
    assert!(
        run.stderr
            .contains(&format!("::add-mask::{dead}/slack/{SLACK_SECRET}")),
        "the runner is told to mask it\n{}",
        run.dump()
    );
}
