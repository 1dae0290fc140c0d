//! A failed deploy explains itself: for each failure the sandbox produces as ECS does (a
//! crash with an error in its log, an OOM kill, a secret that cannot be fetched, a health path
//! that answers 404, an image tag ECR does not hold), the real binary names the container,
//! its exit code, the diagnosis and the log tail — in its text output, in `--output json` and
//! in the job summary (`GITHUB_STEP_SUMMARY`), with an `::error` annotation per failure.
//!
//! Fixture: `tests/fixtures/deploy/explain/` (the `web` service with awslogs, memory limits
//! and an SSM secret, created unless the case is the missing secret). Each case is a first deploy of a failing image (no rollback target),
//! run twice on two sandboxes at once, both inside Actions: once as JSON, once as text.

use crate::common::*;
use serde_json::Value;

/// What one failure must show.
struct Expect {
    tag: &'static str,
    container: &'static str,
    /// The exit code, when the container's exit stopped the task (else not checked: a task
    /// ECS stopped exits as SIGTERM finds it, or never ran).
    exit_code: Option<i64>,
    cause: &'static str,
    /// Words of the diagnosis.
    diagnosis: &'static [&'static str],
    /// A line the log tail holds (None: no log, with why).
    log: Option<&'static str>,
    /// The SSM parameter the container's secret names is not created.
    missing_secret: bool,
    /// The definition line the diagnosis points at (`file:line`).
    at: Option<&'static str>,
}

/// The SSM parameter the fixture's container reads as a secret.
const PARAMETER: &str = "/web/db-password";

/// The JSON run (inside Actions, with a job summary) and the text run of `tag`; the
/// container's secret exists unless `missing_secret`.
async fn both(tag: &str, extra: &[&str], missing_secret: bool) -> (Run, String, Run) {
    let (a, b) = tokio::join!(
        Scenario::new("explain", FAST, &["v1"]),
        Scenario::new("explain", FAST, &["v1"])
    );
    if !missing_secret {
        a.put_secure_parameter(PARAMETER, "db-pass").await;
        b.put_secure_parameter(PARAMETER, "db-pass").await;
    }
    let dir = std::env::temp_dir().join(format!(
        "cortado-explain-{}-{}",
        std::process::id(),
        tag.replace(|c: char| !c.is_ascii_alphanumeric(), "-")
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let summary = dir.join("summary.md");
    let output = dir.join("output");
    std::fs::write(&summary, "").unwrap();
    std::fs::write(&output, "").unwrap();
    let mut json = a.command(tag, &[&["deploy"], extra].concat());
    json.env("GITHUB_ACTIONS", "true")
        .env("GITHUB_STEP_SUMMARY", &summary)
        .env("GITHUB_OUTPUT", &output);
    // The text run is inside Actions too: its annotations go to stdout with the summary.
    let mut text = b.command(tag, &[&["deploy", "--output", "text"], extra].concat());
    text.env("GITHUB_ACTIONS", "true")
        .env("GITHUB_STEP_SUMMARY", dir.join("summary-text.md"))
        .env("GITHUB_OUTPUT", dir.join("output-text"));
    let (json, text) = tokio::join!(finish(json), finish(text));
    let md = std::fs::read_to_string(&summary).unwrap_or_default();
    (json, md, text)
}

/// The one failure of the result (there is one distinct failure in each case).
fn failure(run: &Run) -> Value {
    let f = run.result()["failures"].clone();
    let all = f.as_array().cloned().unwrap_or_default();
    assert_eq!(all.len(), 1, "one distinct failure: {f:#}\n{}", run.dump());
    all[0].clone()
}

async fn check(e: Expect) {
    let (json, md, text) = both(e.tag, &[], e.missing_secret).await;
    json.expect_code(4);
    text.expect_code(4);
    // JSON: the structured failure.
    let f = failure(&json);
    assert_eq!(f["container"], e.container, "{f:#}");
    if let Some(x) = e.exit_code {
        assert_eq!(f["exit_code"], x, "{f:#}");
    }
    assert!(f["tasks"].as_u64().unwrap_or(0) >= 1, "{f:#}");
    assert_eq!(f["diagnosis"]["cause"], e.cause, "{f:#}");
    let summary = f["diagnosis"]["summary"].as_str().unwrap_or_default();
    for w in e.diagnosis {
        assert!(
            summary.contains(w),
            "{w:?} not in the diagnosis {summary:?}"
        );
    }
    match e.at {
        Some(at) => {
            let got = format!(
                "{}:{}",
                f["diagnosis"]["at"]["file"].as_str().unwrap_or_default(),
                f["diagnosis"]["at"]["line"]
            );
            assert!(
                got.ends_with(at),
                "the diagnosis points at {got}, not {at}: {f:#}"
            );
            assert!(text.stdout.contains("    at:        "), "{}", text.dump());
            assert!(text.stdout.contains(at), "{}", text.dump());
        }
        None => assert!(f["diagnosis"]["at"].is_null(), "{f:#}"),
    }
    let lines: Vec<String> = f["log"]["lines"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|l| l.as_str().unwrap_or_default().to_string())
        .collect();
    match e.log {
        Some(line) => {
            assert!(
                lines.iter().any(|l| l.contains(line)),
                "{line:?} not in the log tail {f:#}"
            );
            assert!(f["log"]["unavailable"].is_null(), "{f:#}");
            assert_eq!(f["log"]["group"], "/ecs/web");
            assert!(
                f["log"]["stream"]
                    .as_str()
                    .unwrap_or_default()
                    .starts_with("ecs/web/"),
                "{f:#}"
            );
        }
        None => {
            assert!(lines.is_empty(), "{f:#}");
            assert!(
                f["log"]["unavailable"]
                    .as_str()
                    .unwrap_or_default()
                    .contains("no log: the task failed to start"),
                "{f:#}"
            );
        }
    }
    // Text: the same failure, as a person reads it.
    let out = &text.stdout;
    assert!(out.contains("  failure: "), "{}", text.dump());
    assert!(
        out.contains(&format!("container {}", e.container)),
        "{}",
        text.dump()
    );
    if let Some(x) = e.exit_code {
        assert!(out.contains(&format!("exit code {x}")), "{}", text.dump());
    }
    assert!(out.contains("    diagnosis: "), "{}", text.dump());
    for w in e.diagnosis {
        assert!(
            out.contains(w),
            "{w:?} not in the text output\n{}",
            text.dump()
        );
    }
    match e.log {
        Some(line) => assert!(
            out.contains("      | ") && out.contains(line),
            "{}",
            text.dump()
        ),
        None => assert!(
            out.contains("    log:       no log: the task failed to start"),
            "{}",
            text.dump()
        ),
    }
    // The annotation: one `::error` per distinct failure with its diagnosis.
    let notes: Vec<&str> = text
        .stdout
        .lines()
        .filter(|l| l.starts_with("::error") && l.contains("why it failed::"))
        .collect();
    assert_eq!(notes.len(), 1, "{}", text.dump());
    assert!(
        notes[0].contains(&format!("container {}", e.container)),
        "{}",
        notes[0]
    );
    for w in e.diagnosis {
        assert!(
            notes[0].contains(w),
            "{w:?} not in the annotation {}",
            notes[0]
        );
    }
    // Job summary: heading, diagnosis and log tail.
    assert!(md.contains("why it failed"), "{md}");
    assert!(md.contains(&format!("container {}", e.container)), "{md}");
    assert!(md.contains("diagnosis: "), "{md}");
    for w in e.diagnosis {
        assert!(md.contains(w), "{w:?} not in the summary\n{md}");
    }
    match e.log {
        Some(line) => assert!(md.contains("log lines of") && md.contains(line), "{md}"),
        None => assert!(md.contains("no log: the task failed to start"), "{md}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_with_an_error_in_its_log() {
    check(Expect {
        tag: "v1--log-FATAL-cannot-connect-to-database-at-10.0.3.7--crash-5s",
        container: "web",
        exit_code: Some(1),
        cause: "crash",
        diagnosis: &["container web exited with code 1"],
        log: Some("FATAL cannot connect to database at 10.0.3.7"),
        missing_secret: false,
        at: None,
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oom_kill_names_the_memory_limits() {
    check(Expect {
        tag: "v1--oom",
        container: "web",
        exit_code: Some(137),
        cause: "out-of-memory",
        diagnosis: &[
            "ran out of memory",
            "memory is 384 MiB",
            "memoryReservation 256 MiB",
            "task's memory 512 MiB",
        ],
        log: Some("allocating cache buffers"),
        missing_secret: false,
        at: Some("explain/ecs-task-def.json:13"),
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_secret_names_the_value_from() {
    check(Expect {
        tag: "v1",
        container: "web",
        exit_code: None,
        cause: "secrets",
        diagnosis: &[
            "arn:aws:ssm:us-east-1:123456789012:parameter/web/db-password",
            "role/web-execution",
        ],
        log: None,
        missing_secret: true,
        at: Some("explain/ecs-task-def.json:19"),
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_path_answering_404() {
    check(Expect {
        tag: "v1--health-404",
        container: "web",
        exit_code: None,
        cause: "elb-health-check",
        diagnosis: &["answers 404 on /", "Target.ResponseCodeMismatch"],
        log: Some("starting"),
        missing_secret: false,
        at: Some("explain/ecs-service-def.json:11"),
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_image_tag_is_not_in_ecr() {
    check(Expect {
        tag: "v9",
        container: "web",
        exit_code: None,
        cause: "image-pull",
        diagnosis: &["web:v9", "ECR has no image with that tag"],
        log: None,
        missing_secret: false,
        at: Some("explain/ecs-task-def.json:11"),
    })
    .await;
}

/// The sandbox's `secret-fail` fault (a secret that exists but cannot be fetched, as with a
/// role that may not read it) is explained the same way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secret_fail_fault_names_the_value_from() {
    let s = Scenario::new("explain", FAST, &["v1"]).await;
    s.put_secure_parameter(PARAMETER, "db-pass").await;
    let run = s.deploy("v1--secret-fail", &[]).await;
    run.expect_code(4);
    let f = failure(&run);
    assert_eq!(f["stop_code"], "TaskFailedToStart", "{f:#}");
    assert_eq!(f["diagnosis"]["cause"], "secrets", "{f:#}");
    assert!(
        f["diagnosis"]["summary"]
            .as_str()
            .unwrap_or_default()
            .contains("parameter/web/db-password"),
        "{f:#}"
    );
}

/// `--log-lines 0`: no GetLogEvents, and the result says why there is no log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_lines_zero_reads_no_log() {
    let s = Scenario::new("explain", FAST, &["v1"]).await;
    s.put_secure_parameter(PARAMETER, "db-pass").await;
    let run = s.deploy("v1--crash-5s", &["--log-lines", "0"]).await;
    run.expect_code(4);
    let f = failure(&run);
    assert_eq!(f["log"]["lines"], serde_json::json!([]), "{f:#}");
    assert!(
        f["log"]["unavailable"]
            .as_str()
            .unwrap_or_default()
            .contains("--log-lines 0")
    );
    assert!(
        !s.sb
            .control()
            .requests()
            .iter()
            .any(|r| r.operation == "GetLogEvents"),
        "no log read with --log-lines 0"
    );
}

/// A container that prints a secret of the run (an SSM SecureString rendered into its
/// environment) before it crashes: the log tail shows the line with the value masked, in the
/// JSON result, the text output and the job summary.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secret_values_are_masked_in_the_log_tail() {
    const SECRET: &str = "Pa55w0rdXyz9";
    let s = Scenario::new("explain-secret", FAST, &["v1"]).await;
    s.put_secure_parameter("/web/db_password", SECRET).await;
    let dir = std::env::temp_dir().join(format!("cortado-explain-secret-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let summary = dir.join("summary.md");
    std::fs::write(&summary, "").unwrap();
    let tag = format!("v1--log-connecting-with-password-{SECRET}--crash-5s");
    let mut cmd = s.command(&tag, &["deploy"]);
    cmd.env("GITHUB_ACTIONS", "true")
        .env("GITHUB_STEP_SUMMARY", &summary)
        .env("GITHUB_OUTPUT", dir.join("output"));
    let run = finish(cmd).await;
    run.expect_code(4);
    let f = failure(&run);
    let lines = f["log"]["lines"].to_string();
    assert!(
        lines.contains("connecting with password ***"),
        "the line is there, masked: {f:#}"
    );
    let md = std::fs::read_to_string(&summary).unwrap();
    assert!(md.contains("connecting with password ***"), "{md}");
    // The runner is told the value to mask (`::add-mask::`), and nothing else shows it.
    let stderr: String = run
        .stderr
        .lines()
        .filter(|l| !l.starts_with("::add-mask::"))
        .collect::<Vec<_>>()
        .join("\n");
    for (what, text) in [
        ("stdout", &run.stdout),
        ("stderr", &stderr),
        ("summary", &md),
    ] {
        assert!(!text.contains(SECRET), "the secret reached {what}: {text}");
    }
}

/// `cortado wait` on a deployment that fails explains it too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_explains_the_deployment_it_follows() {
    let s = Scenario::new("explain", FAST, &["v1"]).await;
    s.put_secure_parameter(PARAMETER, "db-pass").await;
    let tag = "v1--log-panic-at-startup--crash-5s";
    s.deploy(tag, &["--no-wait"]).await.expect_code(0);
    let run = s.cortado(tag, &["wait"]).await;
    assert_ne!(run.code, 0, "{}", run.dump());
    let f = failure(&run);
    assert_eq!(f["container"], "web", "{f:#}");
    assert_eq!(f["exit_code"], 1, "{f:#}");
    assert_eq!(f["diagnosis"]["cause"], "crash", "{f:#}");
    assert!(
        f["log"]["lines"].to_string().contains("panic at startup"),
        "{f:#}"
    );
}

/// CloudWatch Logs refuses the read (AccessDeniedException): the failure is still explained,
/// and its log says why there are no lines.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_log_read_says_access_denied() {
    let s = Scenario::new("explain", FAST, &["v1"]).await;
    s.put_secure_parameter(PARAMETER, "db-pass").await;
    s.sb.control().update_faults(FaultsPatch {
        fail_next: Some(vec![FailRule {
            operation: "GetLogEvents".into(),
            code: "AccessDeniedException".into(),
            status: Some(400),
            message: Some("User is not authorized to perform: logs:GetLogEvents".into()),
            count: 5,
        }]),
        ..FaultsPatch::default()
    });
    let run = s.deploy("v1--crash-5s", &[]).await;
    run.expect_code(4);
    let f = failure(&run);
    assert_eq!(f["diagnosis"]["cause"], "crash", "{f:#}");
    assert_eq!(f["log"]["lines"], serde_json::json!([]), "{f:#}");
    let why = f["log"]["unavailable"].as_str().unwrap_or_default();
    assert!(
        why.contains("AccessDenied") && why.contains("logs:GetLogEvents"),
        "{f:#}"
    );
}

/// CloudWatch Logs has no such stream (ResourceNotFoundException) while the group exists: the
/// log says the container shipped nothing, not that the group is missing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_stream_is_told_from_a_missing_group() {
    let s = Scenario::new("explain", FAST, &["v1"]).await;
    s.put_secure_parameter(PARAMETER, "db-pass").await;
    s.sb.control().update_faults(FaultsPatch {
        fail_next: Some(vec![FailRule {
            operation: "GetLogEvents".into(),
            code: "ResourceNotFoundException".into(),
            status: Some(400),
            message: Some("The specified log stream does not exist.".into()),
            count: 5,
        }]),
        ..FaultsPatch::default()
    });
    let run = s.deploy("v1--crash-5s", &[]).await;
    run.expect_code(4);
    let f = failure(&run);
    let why = f["log"]["unavailable"].as_str().unwrap_or_default();
    assert!(
        why.contains("no stream ecs/web/") && why.contains("shipped nothing"),
        "{f:#}"
    );
}

/// The container health check never passes (`unhealthy`): the diagnosis quotes the command,
/// its interval, retries and startPeriod against how long the task lived, at the definition's
/// `healthCheck`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn container_health_check_quotes_the_command() {
    let s = Scenario::new("explain-hc", FAST, &["v1"]).await;
    let run = s.deploy("v1--unhealthy", &[]).await;
    run.expect_code(4);
    let f = failure(&run);
    assert_eq!(f["diagnosis"]["cause"], "container-health-check", "{f:#}");
    let summary = f["diagnosis"]["summary"].as_str().unwrap_or_default();
    for w in [
        "curl -f http://localhost/health || exit 1",
        "3 times in a row",
        "every 10s",
        "startPeriod 5s",
        "the task lived",
    ] {
        assert!(summary.contains(w), "{w:?} not in {summary:?}");
    }
    let at = format!(
        "{}:{}",
        f["diagnosis"]["at"]["file"].as_str().unwrap_or_default(),
        f["diagnosis"]["at"]["line"]
    );
    assert!(at.ends_with("explain-hc/ecs-task-def.json:31"), "{at}");
}
