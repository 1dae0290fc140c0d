//! What each target is sent, as pure functions of a [`Message`]: the versioned webhook payload
//! (docs/reference/webhook.md), Slack's `{text}`, Datadog's events, GitHub's deployment and
//! deployment-status bodies. No I/O here; the sender ([`super::send`]) posts them.

use serde_json::{Value, json};

use crate::deploy::core::outcome::RunOutcome;

/// The version of the webhook payload. A field's meaning never changes within a version;
/// fields may be added.
pub(crate) const WEBHOOK_VERSION: u32 = 1;

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Event {
    DeployStarted,
    DeployFinished,
    ReleaseStarted,
    ReleaseFinished,
}

impl Event {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Event::DeployStarted => "deploy_started",
            Event::DeployFinished => "deploy_finished",
            Event::ReleaseStarted => "release_started",
            Event::ReleaseFinished => "release_finished",
        }
    }

    pub(crate) fn is_start(self) -> bool {
        matches!(self, Event::DeployStarted | Event::ReleaseStarted)
    }

    fn is_release(self) -> bool {
        matches!(self, Event::ReleaseStarted | Event::ReleaseFinished)
    }
}

/// How a service's deploy ended, from its result.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct End {
    /// The result's status word (`succeeded`, `rolled-back`, ...), or `error` when the deploy
    /// stopped with an error instead of a result.
    pub status: &'static str,
    /// The result's words for people (`failed, rolled back`).
    pub label: &'static str,
    pub exit_code: u8,
    /// Whatever was asked happened.
    pub success: bool,
    /// The task definition it rolled back to, when it did.
    pub rolled_back_to: Option<String>,
    /// The result's sentence: what happened and why (the cause of a failure).
    pub detail: String,
    /// Why our deployment's tasks stopped, most frequent first, with how often.
    pub stopped_reasons: Vec<(String, usize)>,
    /// What cortado made of each distinct failure (`deploy`'s explanation): the failure's
    /// heading, the diagnosis and its fix.
    pub diagnoses: Vec<Diagnosed>,
}

/// One explained failure, as a notification carries it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Diagnosed {
    /// The cause's name (`out-of-memory`, `elb-health-check`, ...).
    pub cause: String,
    /// How many tasks, the container, its exit code, ECS's stop code and reason.
    pub failure: String,
    pub summary: String,
    pub fix: String,
}

impl End {
    pub(crate) fn of(outcome: RunOutcome, detail: &str, rolled_back_to: Option<String>) -> End {
        End {
            status: outcome.status(),
            label: outcome.label(),
            exit_code: outcome.exit_code() as u8,
            success: outcome.is_success(),
            rolled_back_to,
            detail: detail.to_string(),
            stopped_reasons: Vec::new(),
            diagnoses: Vec::new(),
        }
    }

    /// A deploy that stopped with an error (no result of its own).
    pub(crate) fn error(detail: &str, exit_code: u8) -> End {
        End {
            status: "error",
            label: "stopped with an error",
            exit_code,
            success: false,
            rolled_back_to: None,
            detail: detail.to_string(),
            stopped_reasons: Vec::new(),
            diagnoses: Vec::new(),
        }
    }
}

/// One service of a message.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Subject {
    pub service: String,
    pub cluster: String,
    /// The task definition: its family at the start, the revision rolled out at the end.
    pub revision: Option<String>,
    /// The image tag (or digest) of the task's first container: Datadog's `version:` tag.
    pub image_tag: Option<String>,
    /// How it ended (finished events only).
    pub end: Option<End>,
}

/// Where the message comes from: the workflow run, when inside GitHub Actions.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Origin {
    /// `GITHUB_SERVER_URL/GITHUB_REPOSITORY/actions/runs/GITHUB_RUN_ID`.
    pub run_url: Option<String>,
    pub repository: Option<String>,
    pub sha: Option<String>,
}

/// One notification: an event about one service (deploy_*) or every service of a release.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Message {
    pub event: Event,
    pub subjects: Vec<Subject>,
    pub origin: Origin,
    /// The run's exit code (release_finished).
    pub exit_code: Option<u8>,
}

impl Message {
    /// Whether every service ended well (finished events; `true` at the start).
    fn success(&self) -> bool {
        self.subjects
            .iter()
            .all(|s| s.end.as_ref().is_none_or(|e| e.success))
            && self.exit_code.is_none_or(|c| c == 0)
    }
}

fn subject_json(s: &Subject) -> Value {
    let e = s.end.as_ref();
    json!({
        "service": s.service,
        "cluster": s.cluster,
        "revision": s.revision,
        "image_tag": s.image_tag,
        "outcome": e.map(|e| e.status),
        "exit_code": e.map(|e| e.exit_code),
        "detail": e.map(|e| e.detail.as_str()),
        "rolled_back_to": e.and_then(|e| e.rolled_back_to.as_deref()),
        "stopped_reasons": e.map(|e| e.stopped_reasons.iter()
            .map(|(reason, count)| json!({"reason": reason, "count": count}))
            .collect::<Vec<_>>()),
        "diagnoses": e.map(|e| e.diagnoses.iter()
            .map(|d| json!({"cause": d.cause, "failure": d.failure, "summary": d.summary, "fix": d.fix}))
            .collect::<Vec<_>>()),
    })
}

/// The generic webhook's payload, version 1 (docs/reference/webhook.md).
pub(crate) fn webhook(m: &Message) -> Value {
    let mut v = json!({
        "version": WEBHOOK_VERSION,
        "event": m.event.name(),
        "run_url": m.origin.run_url,
        "repository": m.origin.repository,
        "sha": m.origin.sha,
    });
    let obj = v.as_object_mut().expect("an object");
    if m.event.is_release() {
        let finished = !m.event.is_start();
        obj.insert(
            "outcome".into(),
            json!(finished.then(|| if m.success() { "succeeded" } else { "failed" })),
        );
        obj.insert("exit_code".into(), json!(m.exit_code.filter(|_| finished)));
        obj.insert(
            "services".into(),
            Value::Array(m.subjects.iter().map(subject_json).collect()),
        );
    } else if let Some(Value::Object(fields)) = m.subjects.first().map(subject_json) {
        obj.extend(fields);
    }
    v
}

/// Slack's mrkdwn escaping: `&`, `<` and `>` (so no text can mention `<!channel>` or link).
fn slack_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn short_revision(r: &str) -> &str {
    r.rsplit('/').next().unwrap_or(r)
}

/// One line about one service; `esc` escapes for the channel every text cortado did not
/// write itself (names, tags, a failure's words from the result and ECS).
fn line(s: &Subject, start: bool, esc: fn(&str) -> String) -> String {
    let name = format!("`{}` (cluster `{}`)", esc(&s.service), esc(&s.cluster));
    match (&s.end, start) {
        (_, true) | (None, _) => {
            let what = s
                .revision
                .as_deref()
                .map(|r| format!(" with {}", esc(short_revision(r))))
                .unwrap_or_default();
            let tag = s
                .image_tag
                .as_deref()
                .map(|t| format!(" (image tag {})", esc(t)))
                .unwrap_or_default();
            format!("{name}: deploy started{what}{tag}")
        }
        (Some(e), false) => {
            let runs = match (e.success, s.revision.as_deref()) {
                (true, Some(r)) => format!(": runs {}", esc(short_revision(r))),
                _ => String::new(),
            };
            let back = e
                .rolled_back_to
                .as_deref()
                .map(|r| format!("; rolled back to {}", esc(short_revision(r))))
                .unwrap_or_default();
            let mut detail = String::new();
            if !e.success {
                let quoted = |t: &str| format!("\n> {}", esc(t).replace('\n', "\n> "));
                if !e.detail.is_empty() {
                    detail.push_str(&quoted(&e.detail));
                }
                if let Some((reason, count)) = e.stopped_reasons.first() {
                    detail.push_str(&quoted(&format!("tasks stopped ({count}x): {reason}")));
                }
                for d in &e.diagnoses {
                    detail.push_str(&quoted(&format!("diagnosis: {} Fix: {}", d.summary, d.fix)));
                }
            }
            format!("{name}: {}{runs}{back}{detail}", e.label)
        }
    }
}

/// Slack's incoming-webhook body: `{"text": ...}` (mrkdwn), one line per service.
pub(crate) fn slack(m: &Message) -> Value {
    let start = m.event.is_start();
    let icon = match (start, m.success()) {
        (true, _) => ":rocket:",
        (false, true) => ":white_check_mark:",
        (false, false) => ":x:",
    };
    let head = match m.event {
        Event::DeployStarted => "cortado: deploy started".to_string(),
        Event::DeployFinished if m.success() => "cortado: deploy succeeded".to_string(),
        Event::DeployFinished => "cortado: deploy failed".to_string(),
        Event::ReleaseStarted => {
            format!("cortado: release of {} services started", m.subjects.len())
        }
        Event::ReleaseFinished => format!(
            "cortado: release {} (exit {})",
            if m.success() { "succeeded" } else { "failed" },
            m.exit_code.unwrap_or(0)
        ),
    };
    let mut text = format!("{icon} *{head}*");
    for s in &m.subjects {
        text.push('\n');
        text.push_str(&line(s, start, slack_escape));
    }
    if let Some(u) = &m.origin.run_url {
        // Built by cortado from the runner's variables: a link of Slack's syntax.
        text.push_str(&format!("\n<{}|the run's log>", slack_escape(u)));
    }
    json!({ "text": text })
}

/// Datadog's events (Events API v1): one per service.
pub(crate) fn datadog(m: &Message, env: Option<&str>, extra_tags: &[String]) -> Vec<Value> {
    let start = m.event.is_start();
    m.subjects
        .iter()
        .map(|s| {
            let alert_type = match (&s.end, start) {
                (_, true) | (None, _) => "info",
                (Some(e), false) if e.success => "success",
                (Some(e), false) if e.status == "started" || e.status == "paused" => "info",
                (Some(_), false) => "error",
            };
            let title = match (&s.end, start) {
                (Some(e), false) => format!("Deploy of {} {}", s.service, e.label),
                _ => format!("Deploy of {} started", s.service),
            };
            let mut text = line(s, start, str::to_string);
            if let Some(u) = &m.origin.run_url {
                text.push_str(&format!("\nRun: {u}"));
            }
            let mut tags = vec![
                format!("service:{}", s.service),
                format!("cluster:{}", s.cluster),
                "source:cortado".to_string(),
            ];
            if let Some(e) = env {
                tags.push(format!("env:{e}"));
            }
            if let Some(v) = s.image_tag.as_deref().or(s.revision.as_deref()) {
                tags.push(format!("version:{}", short_revision(v)));
            }
            tags.extend(extra_tags.iter().cloned());
            let mut key = format!("cortado:{}:{}", s.cluster, s.service);
            key.truncate(100);
            json!({
                "title": truncate(&title, 100),
                "text": truncate(&text, 4000),
                "alert_type": alert_type,
                "tags": tags,
                "aggregation_key": key,
            })
        })
        .collect()
}

fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(max.saturating_sub(1)).collect();
        t.push('…');
        t
    }
}

/// GitHub's `environment` for a service: `{service}` stands for its name.
pub(crate) fn github_environment(environment: &str, s: &Subject) -> String {
    environment.replace("{service}", &s.service)
}

/// The body of `POST /repos/{owner}/{repo}/deployments`.
pub(crate) fn github_deployment(environment: &str, sha: &str, s: &Subject) -> Value {
    json!({
        "ref": sha,
        "task": "deploy",
        "environment": github_environment(environment, s),
        "auto_merge": false,
        "required_contexts": [],
        "description": truncate(&format!("cortado: {} on {}", s.service, s.cluster), 140),
        "payload": {
            "service": s.service,
            "cluster": s.cluster,
            "revision": s.revision,
            "image_tag": s.image_tag,
        },
    })
}

/// A deployment status's state for how a deploy ended: `None` when it is still in progress
/// (not followed, paused).
pub(crate) fn github_state(e: &End) -> Option<&'static str> {
    match e.status {
        "started" | "paused" => None,
        _ if e.success => Some("success"),
        "skipped" => Some("error"),
        "error" | "lost" => Some("error"),
        _ => Some("failure"),
    }
}

/// The body of `POST .../deployments/{id}/statuses`.
pub(crate) fn github_status(
    state: &str,
    s: &Subject,
    environment_url: Option<&str>,
    origin: &Origin,
) -> Value {
    let description = match &s.end {
        Some(e) if !e.success && !e.detail.is_empty() => format!("{}: {}", e.label, e.detail),
        Some(e) => e.label.to_string(),
        None => "deploying".to_string(),
    };
    let mut v = json!({
        "state": state,
        "description": truncate(&description, 140),
        "auto_inactive": true,
    });
    let obj = v.as_object_mut().expect("an object");
    if let Some(u) = &origin.run_url {
        obj.insert("log_url".into(), json!(u));
    }
    if let Some(u) = environment_url {
        obj.insert("environment_url".into(), json!(u));
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subject(end: Option<End>) -> Subject {
        Subject {
            service: "web".into(),
            cluster: "prod".into(),
            revision: Some("arn:aws:ecs:us-east-1:1:task-definition/web:3".into()),
            image_tag: Some("v3".into()),
            end,
        }
    }

    fn msg(event: Event, subjects: Vec<Subject>) -> Message {
        Message {
            event,
            subjects,
            origin: Origin {
                run_url: Some("https://github.com/o/r/actions/runs/9".into()),
                repository: Some("o/r".into()),
                sha: Some("abc".into()),
            },
            exit_code: None,
        }
    }

    #[test]
    fn webhook_payload_version_1() {
        let failed = End::of(
            RunOutcome::FailedRolledBack,
            "2 tasks stopped: <!channel> & exit 1",
            Some("arn:aws:ecs:us-east-1:1:task-definition/web:2".into()),
        );
        let v = webhook(&msg(
            Event::DeployFinished,
            vec![subject(Some(failed.clone()))],
        ));
        assert_eq!(v["version"], 1);
        assert_eq!(v["event"], "deploy_finished");
        assert_eq!(v["service"], "web");
        assert_eq!(v["outcome"], "rolled-back");
        assert_eq!(v["exit_code"], 3);
        assert_eq!(v["detail"], "2 tasks stopped: <!channel> & exit 1");
        assert_eq!(v["run_url"], "https://github.com/o/r/actions/runs/9");
        let start = webhook(&msg(Event::DeployStarted, vec![subject(None)]));
        assert_eq!(start["outcome"], Value::Null);
        assert_eq!(start["exit_code"], Value::Null);
        let mut rel = msg(Event::ReleaseFinished, vec![subject(Some(failed))]);
        rel.exit_code = Some(3);
        let r = webhook(&rel);
        assert_eq!(
            (r["outcome"].as_str(), r["exit_code"].as_u64()),
            (Some("failed"), Some(3))
        );
        assert_eq!(r["services"][0]["outcome"], "rolled-back");
        assert!(r.get("service").is_none());
    }

    #[test]
    fn slack_text_escapes_what_it_did_not_write() {
        let failed = End::of(RunOutcome::FailedRolledBack, "boom <!channel> & co", None);
        let v = slack(&msg(Event::DeployFinished, vec![subject(Some(failed))]));
        let t = v["text"].as_str().unwrap();
        assert!(t.starts_with(":x: *cortado: deploy failed*"), "{t}");
        assert!(t.contains("failed, rolled back"), "{t}");
        assert!(
            t.contains("\n> boom &lt;!channel&gt; &amp; co"),
            "a quote: {t}"
        );
        assert!(
            t.ends_with("<https://github.com/o/r/actions/runs/9|the run's log>"),
            "{t}"
        );
        let ok = End::of(RunOutcome::Succeeded, "", None);
        let v = slack(&msg(Event::DeployFinished, vec![subject(Some(ok))]));
        assert!(
            v["text"]
                .as_str()
                .unwrap()
                .contains("succeeded: runs web:3"),
            "{v}"
        );
    }

    #[test]
    fn datadog_events_carry_the_documented_fields() {
        let failed = End::of(RunOutcome::FailedNotRolledBack, "crash", None);
        let evs = datadog(
            &msg(Event::DeployFinished, vec![subject(Some(failed))]),
            Some("production"),
            &["team:web".to_string()],
        );
        assert_eq!(evs.len(), 1);
        let e = &evs[0];
        assert_eq!(e["alert_type"], "error");
        let tags: Vec<&str> = e["tags"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(Value::as_str)
            .collect();
        for t in ["service:web", "env:production", "version:v3", "team:web"] {
            assert!(tags.contains(&t), "{t}: {tags:?}");
        }
        assert!(e["title"].as_str().unwrap().contains("failed"));
        let s = datadog(&msg(Event::DeployStarted, vec![subject(None)]), None, &[]);
        assert_eq!(s[0]["alert_type"], "info");
    }

    #[test]
    fn github_states_follow_the_outcome() {
        let st = |o| github_state(&End::of(o, "", None));
        assert_eq!(st(RunOutcome::Succeeded), Some("success"));
        assert_eq!(st(RunOutcome::NoChange), Some("success"));
        assert_eq!(st(RunOutcome::FailedRolledBack), Some("failure"));
        assert_eq!(
            st(RunOutcome::TimedOut { rolled_back: false }),
            Some("failure")
        );
        assert_eq!(st(RunOutcome::NotFollowed), None);
        assert_eq!(github_state(&End::error("x", 5)), Some("error"));
        let d = github_deployment("prod/{service}", "abc", &subject(None));
        assert_eq!(d["environment"], "prod/web");
        assert_eq!(d["ref"], "abc");
        assert_eq!(d["auto_merge"], false);
        assert_eq!(d["required_contexts"], json!([]));
        let o = Origin {
            run_url: Some("https://x/run".into()),
            ..Origin::default()
        };
        let s = github_status("in_progress", &subject(None), Some("https://app"), &o);
        assert_eq!(s["log_url"], "https://x/run");
        assert_eq!(s["environment_url"], "https://app");
    }
}
