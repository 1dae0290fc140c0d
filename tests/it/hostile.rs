//! The hostile-strings corpus (issue 21): one test pushes secrets and foreign text through
//! every output channel of every command and checks that nothing crosses.
//!
//! Sources, against the sandbox: SSM SecureStrings with quotes, backslashes, line breaks,
//! `%0A`, HTML and workflow commands in them (one rotated between two runs); stop reasons
//! written through StopTask and by the simulation (CR, LF, `::` commands, `##[`, HTML,
//! Markdown links, @mentions, bidi and escape characters, 1 MB); ECS service events; AWS
//! error messages; a branch-like value and an image tag reaching the config from the
//! environment; a verification gate's output (all of the above, bytes that are not UTF-8, a
//! 1 MB line); a one-off task's log line. Channels: stdout and stderr (text and JSON),
//! annotations, `$GITHUB_OUTPUT`, `$GITHUB_STEP_SUMMARY` (with its Mermaid charts), the
//! pull-request comment, error messages. Checks, on everything written:
//! - no secret value in any form (as it is, JSON- or Debug-escaped, one-line, `%`-escaped,
//!   each line of a multi-line one), except on the runner's own `::add-mask::` lines;
//! - no line a GitHub Actions runner would execute other than cortado's own commands
//!   (simulated here from the runner's source: `::` after leading white space, `##[`
//!   anywhere, lines split at CR and LF, `::stop-commands::` honoured);
//! - no rendered HTML, link, image or mention in Markdown outside code, and no markup in the
//!   Mermaid charts.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::common::*;
use serde_json::Value;

/// A multi-line SecureString: quotes, backslashes, a workflow command, HTML, a mention, `%0A`.
const SECRET_ML: &str = "pa\"ss\\word42 ::add-mask::x <b>@admin</b>\n-----BEGIN KEY-----\nMIIBsecretline%0Amore\n-----END KEY-----";
/// Quoted by validation when it is not a Fargate CPU size.
const CPU_SECRET: &str = "pa\"ss\\word42cpu";
/// A token in a URL, rotated between two deploys: the old value is still a secret.
const TOKEN_OLD: &str = "0ld-t0ken-Value-1";
const TOKEN_NEW: &str = "n3w-t0ken-Value-2";

/// What ECS, a container or a gate may write.
const HOSTILE: &str = "OutOfMemory \"q\" \\b\\ \n::warning title=spoofed::lf\r::add-mask::SUCCESS\r\n  ::error title=spoofed::indented %0A::error::escaped ##[warning]old-style <img src=x onerror=alert(1)> <script>alert(1)</script> [click](https://evil.example) @admin ```end \u{202e}bidi \u{1b}[2J";

fn one_mb() -> String {
    format!("{}{HOSTILE}", "m".repeat(1 << 20))
}

// ---------------------------------------------------------------------------------------------
// What a run wrote

struct Seen {
    what: String,
    code: i32,
    stdout: String,
    stderr: String,
    outputs: String,
    summary: String,
    /// Markdown printed on stdout (`diff --format markdown`, `history --markdown`).
    markdown_stdout: bool,
}

struct Actions {
    dir: PathBuf,
    github: String,
    comments: Arc<Mutex<Vec<String>>>,
    n: Mutex<usize>,
}

impl Actions {
    async fn new(tag: &str) -> Actions {
        let dir =
            std::env::temp_dir().join(format!("cortado-hostile-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("event.json"), r#"{"pull_request": {"number": 7}}"#).unwrap();
        let comments = Arc::new(Mutex::new(Vec::new()));
        let github = fake_github(comments.clone()).await;
        Actions {
            dir,
            github,
            comments,
            n: Mutex::new(0),
        }
    }

    /// Runs `cmd` as a step of a workflow: GITHUB_ACTIONS, fresh output and summary files.
    async fn run(&self, what: &str, mut cmd: tokio::process::Command, text: bool) -> Seen {
        let n = {
            let mut n = self.n.lock().unwrap();
            *n += 1;
            *n
        };
        let outputs = self.dir.join(format!("output-{n}"));
        let summary = self.dir.join(format!("summary-{n}"));
        std::fs::write(&outputs, "").unwrap();
        std::fs::write(&summary, "").unwrap();
        if text {
            cmd.args(["--output", "text"]);
        }
        cmd.env("GITHUB_ACTIONS", "true")
            .env("GITHUB_OUTPUT", &outputs)
            .env("GITHUB_STEP_SUMMARY", &summary)
            .env("GITHUB_EVENT_PATH", self.dir.join("event.json"))
            .env("GITHUB_REPOSITORY", "o/r")
            .env("GITHUB_TOKEN", "ghs_fake_token")
            .env("GITHUB_API_URL", &self.github);
        let run = finish(cmd).await;
        Seen {
            what: format!("{what} ({})", if text { "text" } else { "json" }),
            code: run.code,
            stdout: run.stdout,
            stderr: run.stderr,
            outputs: std::fs::read_to_string(&outputs).unwrap(),
            summary: std::fs::read_to_string(&summary).unwrap(),
            markdown_stdout: what.contains("markdown"),
        }
    }
}

/// A GitHub API that answers the sticky comment's calls and keeps every body it was sent.
async fn fake_github(bodies: Arc<Mutex<Vec<String>>>) -> String {
    use axum::body::Bytes;
    use axum::extract::State;
    use axum::http::{Method, StatusCode, Uri};
    type Bodies = Arc<Mutex<Vec<String>>>;
    async fn route(
        State(bodies): State<Bodies>,
        method: Method,
        uri: Uri,
        body: Bytes,
    ) -> (StatusCode, [(&'static str, &'static str); 1], String) {
        let json = [("content-type", "application/json")];
        if method == Method::GET && uri.path() == "/user" {
            return (StatusCode::OK, json, r#"{"login": "bot"}"#.into());
        }
        if method == Method::GET {
            return (StatusCode::OK, json, "[]".into());
        }
        let sent: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        bodies
            .lock()
            .unwrap()
            .push(sent["body"].as_str().unwrap_or_default().to_string());
        let reply = serde_json::json!({"id": 4242, "body": sent["body"]});
        (StatusCode::CREATED, json, reply.to_string())
    }
    serve_http(axum::Router::new().fallback(route).with_state(bodies)).await
}

// ---------------------------------------------------------------------------------------------
// The checks

/// Every form a secret can take in text: as it is, JSON-escaped, Debug-escaped, on one line
/// (control characters as escapes), %-escaped as in a workflow command, and each line (of 4
/// characters or more) of a multi-line value in those forms.
fn forms(value: &str) -> Vec<String> {
    let quoted_inner = |s: String| s[1..s.len() - 1].to_string();
    let of = |v: &str| -> Vec<String> {
        let one_line: String = v
            .chars()
            .flat_map(|c| {
                if c.is_control() && c != '\t' {
                    c.escape_debug().collect::<Vec<_>>()
                } else {
                    vec![c]
                }
            })
            .collect();
        vec![
            v.to_string(),
            quoted_inner(serde_json::to_string(v).unwrap()),
            quoted_inner(format!("{v:?}")),
            one_line,
            v.replace('%', "%25")
                .replace('\r', "%0D")
                .replace('\n', "%0A"),
        ]
    };
    let mut out = of(value);
    if value.contains('\n') {
        for l in value
            .lines()
            .map(str::trim)
            .filter(|l| l.chars().count() >= 4)
        {
            out.extend(of(l));
        }
    }
    out.sort();
    out.dedup();
    out
}

/// The lines of a step's output as the runner reads them: split at CRLF, LF and a lone CR.
fn runner_lines(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find(['\r', '\n']) {
        out.push(&rest[..i]);
        rest = &rest[i + if rest[i..].starts_with("\r\n") { 2 } else { 1 }..];
    }
    if !rest.is_empty() {
        out.push(rest);
    }
    out
}

/// (name, properties, data) of a line the runner parses as a command: `::name props::data`
/// after leading white space (TryParseV2), else `##[name props]data` anywhere (TryParse).
fn command(line: &str) -> Option<(String, String, String)> {
    let t = line.trim_start();
    if let Some(rest) = t.strip_prefix("::")
        && let Some(end) = rest.find("::")
    {
        let info = &rest[..end];
        let (name, props) = info.split_once(' ').unwrap_or((info, ""));
        return Some((name.into(), props.into(), rest[end + 2..].into()));
    }
    let at = line.find("##[")?;
    let rest = &line[at + 3..];
    let end = rest.find(']')?;
    let info = &rest[..end];
    let (name, props) = info.split_once(' ').unwrap_or((info, ""));
    Some((name.into(), props.into(), rest[end + 1..].into()))
}

/// The commands the runner would run in a step's output (with `::stop-commands::` in force,
/// only the command named by its token resumes).
fn executed(text: &str) -> Vec<(String, String, String)> {
    let mut stopped: Option<String> = None;
    let mut ran = Vec::new();
    for l in runner_lines(text) {
        let Some((name, props, data)) = command(l) else {
            continue;
        };
        match &stopped {
            Some(token) if name.eq_ignore_ascii_case(token) => stopped = None,
            Some(_) => {}
            None if name.eq_ignore_ascii_case("stop-commands") => stopped = Some(data),
            None => ran.push((name, props, data)),
        }
    }
    ran
}

fn unescape_data(s: &str) -> String {
    s.replace("%0D", "\r")
        .replace("%0A", "\n")
        .replace("%25", "%")
}

/// Markdown outside fenced blocks and code spans (what renders as Markdown), and the bodies of
/// the Mermaid blocks.
fn outside_code(md: &str) -> (String, Vec<String>) {
    let mut prose = String::new();
    let mut mermaid = Vec::new();
    let mut fence: Option<(usize, bool, String)> = None;
    for line in md.lines() {
        let ticks = line.chars().take_while(|c| *c == '`').count();
        match &mut fence {
            Some((n, is_mermaid, body)) => {
                if ticks >= *n && line[ticks..].trim().is_empty() {
                    if *is_mermaid {
                        mermaid.push(std::mem::take(body));
                    }
                    fence = None;
                } else {
                    body.push_str(line);
                    body.push('\n');
                }
            }
            None if ticks >= 3 => {
                fence = Some((ticks, line[ticks..].trim() == "mermaid", String::new()));
            }
            None => {
                // Code spans: a run of N backticks up to the next run of exactly N.
                let b: Vec<char> = line.chars().collect();
                let mut i = 0;
                while i < b.len() {
                    if b[i] == '`' {
                        let n = b[i..].iter().take_while(|c| **c == '`').count();
                        let mut j = i + n;
                        let mut closed = None;
                        while j < b.len() {
                            if b[j] == '`' {
                                let m = b[j..].iter().take_while(|c| **c == '`').count();
                                if m == n {
                                    closed = Some(j + m);
                                    break;
                                }
                                j += m;
                            } else {
                                j += 1;
                            }
                        }
                        match closed {
                            Some(end) => i = end,
                            None => {
                                prose.extend(&b[i..i + n]);
                                i += n;
                            }
                        }
                    } else {
                        prose.push(b[i]);
                        i += 1;
                    }
                }
                prose.push('\n');
            }
        }
    }
    (prose, mermaid)
}

/// HTML tags cortado writes itself in Markdown.
const OWN_TAGS: &[&str] = &[
    "<details>",
    "</details>",
    "<summary>",
    "</summary>",
    "<sub>",
    "</sub>",
    "<!-- cortado",
];

fn check_markdown(where_: &str, md: &str, problems: &mut Vec<String>) {
    // Not Markdown: workflow commands in the log, and the comment's own footer link.
    let md: String = md
        .lines()
        .filter(|l| !l.starts_with("::") && !l.starts_with("<sub>Written by [cortado]"))
        .collect::<Vec<_>>()
        .join("\n");
    let (prose, mermaid) = outside_code(&md);
    for bad in [
        "<img",
        "<script",
        "](",
        "@admin",
        "https://evil",
        "\u{202e}",
        "\u{1b}",
    ] {
        if prose.contains(bad) {
            problems.push(format!("{where_}: Markdown renders {bad:?} outside code"));
        }
    }
    for (i, _) in prose.match_indices('<') {
        if !OWN_TAGS.iter().any(|t| prose[i..].starts_with(t)) {
            let around: String = prose[i..].chars().take(40).collect();
            problems.push(format!("{where_}: HTML outside code: {around:?}"));
        }
    }
    for chart in mermaid {
        let plain = chart.replace("-->", "");
        if plain.contains(['<', '>', '`']) || plain.contains("spoofed") {
            problems.push(format!("{where_}: markup in a Mermaid chart: {chart}"));
        }
    }
}

/// Every problem of a run: secrets in any channel, commands the runner would run that are not
/// cortado's own, Markdown that renders foreign markup.
/// Returns the values announced with `::add-mask::` (unescaped).
fn check(
    seen: &Seen,
    secrets: &[&str],
    comments: &[String],
    problems: &mut Vec<String>,
) -> Vec<String> {
    let all_forms: Vec<String> = secrets.iter().flat_map(|s| forms(s)).collect();
    let masks: Vec<String> = executed(&format!("{}\n{}", seen.stdout, seen.stderr))
        .into_iter()
        .filter(|(n, _, _)| n == "add-mask")
        .map(|(_, _, d)| unescape_data(&d))
        .collect();
    let channels = [
        ("stdout", &seen.stdout),
        ("stderr", &seen.stderr),
        ("GITHUB_OUTPUT", &seen.outputs),
        ("GITHUB_STEP_SUMMARY", &seen.summary),
    ];
    for (name, text) in channels {
        // The runner's own mask announcements are the one place a secret must be.
        let shown: String = text
            .lines()
            .filter(|l| !l.starts_with("::add-mask::"))
            .collect::<Vec<_>>()
            .join("\n");
        for f in &all_forms {
            if shown.contains(f.as_str()) {
                problems.push(format!("{}: {name} shows a secret form {f:?}", seen.what));
            }
        }
    }
    for (stream, text) in [("stdout", &seen.stdout), ("stderr", &seen.stderr)] {
        for (name, props, data) in executed(text) {
            let line = format!(
                "::{name} {props}::{}",
                data.chars().take(120).collect::<String>()
            );
            match name.as_str() {
                "add-mask" => {
                    // A form of a secret shares a word of it (escapes aside); "SUCCESS",
                    // planted by the hostile text, shares none.
                    let value = unescape_data(&data);
                    let words = |s: &str| -> Vec<String> {
                        s.split(|c: char| !c.is_alphanumeric())
                            .filter(|w| w.len() >= 6)
                            .map(str::to_string)
                            .collect()
                    };
                    let ours = all_forms.contains(&value)
                        || secrets.iter().any(|s| s.contains(value.as_str()))
                        || secrets
                            .iter()
                            .flat_map(|s| words(s))
                            .any(|w| value.contains(&w));
                    if !ours {
                        problems.push(format!(
                            "{}: {stream} ran {line:?}: a mask nobody asked for",
                            seen.what
                        ));
                    }
                }
                "group" | "endgroup" => {
                    if name == "group" && !data.starts_with("cortado") {
                        problems.push(format!("{}: {stream} ran {line:?}", seen.what));
                    }
                }
                "error" | "warning" | "notice" => {
                    if props.contains("spoofed") || !props.contains("title=") {
                        problems.push(format!(
                            "{}: {stream} ran a foreign annotation {line:?}",
                            seen.what
                        ));
                    }
                }
                _ => problems.push(format!("{}: {stream} ran {line:?}", seen.what)),
            }
        }
    }
    check_markdown(&format!("{} summary", seen.what), &seen.summary, problems);
    if seen.markdown_stdout {
        check_markdown(&format!("{} stdout", seen.what), &seen.stdout, problems);
    }
    for (i, c) in comments.iter().enumerate() {
        check_markdown(&format!("{} PR comment {i}", seen.what), c, problems);
        for f in &all_forms {
            if c.contains(f.as_str()) {
                problems.push(format!(
                    "{}: the PR comment shows a secret form {f:?}",
                    seen.what
                ));
            }
        }
    }
    masks
}

// ---------------------------------------------------------------------------------------------
// Sources of hostile text

/// Until `stop`: stops the tasks of revisions after `revision` as they run, with hostile reasons (the first
/// through StopTask, as anyone with ecs:StopTask can, the others as failed essential
/// containers), and writes hostile service events.
fn inject(s: &Scenario, revision: u32, stop: Arc<AtomicBool>) -> tokio::task::JoinHandle<()> {
    let ecs = s.ecs.clone();
    let control = s.sb.control();
    tokio::spawn(async move {
        let mut n = 0usize;
        let reasons = [
            HOSTILE.to_string(),
            one_mb(),
            format!("connect failed with {TOKEN_NEW}: {HOSTILE}"),
        ];
        while !stop.load(Ordering::Relaxed) {
            tokio::time::sleep(Duration::from_millis(100)).await;
            let Ok(list) = ecs
                .list_tasks()
                .cluster(CLUSTER)
                .service_name(SERVICE)
                .send()
                .await
            else {
                continue;
            };
            if list.task_arns().is_empty() {
                continue;
            }
            let Ok(tasks) = ecs
                .describe_tasks()
                .cluster(CLUSTER)
                .set_tasks(Some(list.task_arns().to_vec()))
                .send()
                .await
            else {
                continue;
            };
            for t in tasks.tasks() {
                let ours = t
                    .task_definition_arn()
                    .and_then(|a| a.rsplit(':').next())
                    .and_then(|r| r.parse::<u32>().ok())
                    .is_some_and(|r| r > revision);
                if !ours || t.last_status() != Some("RUNNING") {
                    continue;
                }
                let arn = t.task_arn().unwrap_or_default().to_string();
                let reason = reasons[n % reasons.len()].clone();
                if n == 0 {
                    let _ = ecs
                        .stop_task()
                        .cluster(CLUSTER)
                        .task(&arn)
                        .reason(&reason)
                        .send()
                        .await;
                } else {
                    let id = arn.rsplit('/').next().unwrap_or_default().to_string();
                    control.with_world(|w| {
                        w.stop_task(&id, "EssentialContainerExited", &reason, true)
                    });
                }
                control.with_world(|w| {
                    w.new_event(
                        "scenarios/web",
                        format!("(service web) event {n}: {HOSTILE}"),
                    )
                });
                n += 1;
            }
        }
    })
}

// ---------------------------------------------------------------------------------------------

/// The rolling service with secrets: render, validate, deploy, rotate, diff (every format and
/// the PR comment), a deploy whose tasks stop with hostile reasons (text and JSON), status
/// and history, and an AWS error carrying hostile text.
async fn rolling(gh: &Actions) -> (Vec<Seen>, Vec<&'static str>) {
    let s = Scenario::new("hostile", FAST, &["v1", "v2"]).await;
    s.put_secure_parameter("/hostile/db_password", SECRET_ML)
        .await;
    s.put_secure_parameter("/hostile/token", TOKEN_OLD).await;
    s.put_secure_parameter("/hostile/cpu", CPU_SECRET).await;
    let invalid = fixture("hostile").join("cortado-invalid.yml");
    let mut seen = Vec::new();
    let cmd = |tag: &str, args: &[&str]| s.command(tag, args);
    seen.push(gh.run("render", cmd("v1", &["render"]), true).await);
    for text in [true, false] {
        let c = s.command_with(&invalid, "v1", &["validate"]);
        seen.push(gh.run("validate", c, text).await);
    }
    seen.push(gh.run("deploy v1", cmd("v1", &["deploy"]), true).await);
    // The token rotates: the live task definition still holds the old value.
    s.put_secure_parameter("/hostile/token", TOKEN_NEW).await;
    let hostile_env = |mut c: tokio::process::Command| {
        c.env("NOTE", HOSTILE);
        c
    };
    seen.push(
        gh.run(
            "diff",
            hostile_env(cmd("v1", &["diff", "--exit-code"])),
            true,
        )
        .await,
    );
    let tag = "v2<img src=x>@admin";
    let md = hostile_env(cmd(tag, &["diff", "--exit-code", "--format", "markdown"]));
    seen.push(gh.run("diff markdown", md, true).await);
    seen.push(
        gh.run(
            "diff json",
            hostile_env(cmd("v1", &["diff", "--exit-code", "--format", "json"])),
            false,
        )
        .await,
    );
    seen.push(
        gh.run(
            "diff --comment",
            hostile_env(cmd(tag, &["diff", "--exit-code", "--comment"])),
            true,
        )
        .await,
    );
    for text in [true, false] {
        let stop = Arc::new(AtomicBool::new(false));
        let injector = inject(&s, 1, stop.clone());
        seen.push(gh.run("deploy v2", cmd("v2", &["deploy"]), text).await);
        stop.store(true, Ordering::Relaxed);
        let _ = injector.await;
    }
    for text in [true, false] {
        seen.push(gh.run("status", cmd("v2", &["status"]), text).await);
        seen.push(gh.run("history", cmd("v2", &["history"]), text).await);
    }
    seen.push(
        gh.run(
            "history markdown",
            cmd("v2", &["history", "--markdown"]),
            true,
        )
        .await,
    );
    // An AWS error whose message carries hostile text and a secret.
    s.sb.control().update_faults(FaultsPatch {
        fail_next: Some(vec![FailRule {
            operation: "DescribeServices".into(),
            code: "AccessDeniedException".into(),
            status: Some(400),
            message: Some(format!("denied {TOKEN_NEW} {HOSTILE}")),
            count: 20,
        }]),
        ..FaultsPatch::default()
    });
    for text in [true, false] {
        seen.push(
            gh.run("status (AWS error)", cmd("v2", &["status"]), text)
                .await,
        );
    }
    s.sb.control().update_faults(FaultsPatch {
        fail_next: Some(vec![]),
        ..FaultsPatch::default()
    });
    (seen, vec![SECRET_ML, CPU_SECRET, TOKEN_OLD, TOKEN_NEW])
}

/// A blue/green deploy whose gate prints hostile text and fails (text and JSON).
async fn gate(gh: &Actions) -> Vec<Seen> {
    let mut s = Scenario::blue_green("BLUE_GREEN", FAST, &["v1", "v2-hostile"]).await;
    s.config = fixture("hostile-bg").join("cortado.yml");
    let mut seen = vec![
        gh.run("deploy bg v1", s.command("v1", &["deploy"]), true)
            .await,
    ];
    for text in [true, false] {
        seen.push(
            gh.run("deploy bg gate", s.command("v2-hostile", &["deploy"]), text)
                .await,
        );
    }
    seen
}

/// A one-off task whose log line carries hostile text (through its command) and exits 3.
async fn one_off(gh: &Actions) -> Vec<Seen> {
    let s = Scenario::new("run", 30.0, &["v1--exit-3-after-5s"]).await;
    let command = format!("sh -c 'echo hi\n{}'", HOSTILE.replace('\'', ""));
    let mut seen = Vec::new();
    for text in [true, false] {
        let c = s.command("v1--exit-3-after-5s", &["run", "--command", &command]);
        seen.push(gh.run("run", c, text).await);
    }
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hostile_strings_cross_no_output() {
    let gh = Actions::new("corpus").await;
    let ((rolling_seen, secrets), gate_seen, run_seen) =
        tokio::join!(rolling(&gh), gate(&gh), one_off(&gh));
    let comments = gh.comments.lock().unwrap().clone();
    assert!(!comments.is_empty(), "diff --comment posted a comment");
    let mut problems = Vec::new();
    let all: Vec<&Seen> = rolling_seen
        .iter()
        .chain(&gate_seen)
        .chain(&run_seen)
        .collect();
    let mut masks = Vec::new();
    for (i, seen) in all.iter().enumerate() {
        // The PR comments are checked once.
        let c: &[String] = if i == 0 { &comments } else { &[] };
        masks.push(check(seen, &secrets, c, &mut problems));
    }
    // Every command that rendered a secret told the runner to mask it, each line too.
    for (seen, masks) in all.iter().zip(&masks) {
        let wants: &[&str] = match seen.what.split(" (").next().unwrap_or("") {
            "validate" => &[CPU_SECRET],
            w if w.starts_with("deploy bg") || w == "run" => &[],
            _ => &[SECRET_ML, "MIIBsecretline%0Amore"],
        };
        for want in wants {
            if !masks.iter().any(|m| m == want) {
                problems.push(format!(
                    "{}: never announced {want:?} with ::add-mask::",
                    seen.what
                ));
            }
        }
    }
    check_the_runs_saw_the_corpus(&all, &mut problems);
    if let Ok(path) = std::env::var("HOSTILE_DUMP") {
        dump(&path, &all, &comments);
    }
    let codes: Vec<(String, i32)> = all.iter().map(|s| (s.what.clone(), s.code)).collect();
    assert!(
        problems.is_empty(),
        "{} problems:\n{}\n\nexit codes: {codes:?}",
        problems.len(),
        problems
            .iter()
            .map(|p| p.chars().take(4000).collect::<String>())
            .collect::<Vec<_>>()
            .join("\n")
    );
    let _ = std::fs::remove_dir_all(&gh.dir);
}

fn by<'a>(all: &'a [&'a Seen], what: &'a str) -> impl Iterator<Item = &'a &'a Seen> + 'a {
    all.iter().filter(move |s| s.what.starts_with(what))
}

/// The runs did what the corpus needs (exit codes, and the hostile text reached their
/// outputs, escaped), so that the checks saw it.
fn check_the_runs_saw_the_corpus(all: &[&Seen], problems: &mut Vec<String>) {
    let expect = |what: &str, codes: &[i32], problems: &mut Vec<String>| {
        for s in by(all, what) {
            if !codes.contains(&s.code) {
                problems.push(format!(
                    "{}: exit {} (expected one of {codes:?})\n--- stdout\n{}\n--- stderr\n{}",
                    s.what,
                    s.code,
                    s.stdout.chars().take(3000).collect::<String>(),
                    s.stderr.chars().take(3000).collect::<String>()
                ));
            }
        }
    };
    expect("render", &[0], problems);
    expect("validate", &[1], problems);
    expect("deploy v1", &[0], problems);
    expect("diff", &[2], problems);
    // The second failed deploy may find nothing COMPLETED to roll back to (exit 5).
    expect("deploy v2", &[3, 5], problems);
    expect("deploy bg v1", &[0], problems);
    expect("deploy bg gate", &[3], problems);
    expect("run", &[3], problems);
    expect("status (AWS error)", &[7], problems);
    let text_of = |what: &str| -> String {
        by(all, what)
            .map(|s| format!("{}{}{}{}", s.stdout, s.stderr, s.summary, s.outputs))
            .collect()
    };
    for (what, needle) in [
        ("deploy v2", "spoofed"),
        ("deploy bg gate", "spoofed"),
        ("deploy bg gate", "not utf-8: \u{fffd}\u{fffd} end"),
        ("run", "SUCCESS"),
        ("status (AWS error)", "spoofed"),
        ("validate", "is not"),
    ] {
        if !text_of(what).contains(needle) {
            problems.push(format!("{what}: the outputs never show {needle:?}"));
        }
    }
    // The rotated token's old value was on the live side of the diff: hidden, and the diff
    // still says the value changed.
    if !text_of("diff").contains("***@api.example/v1 (changed)") {
        problems.push("diff: a rotated secret does not show as changed".into());
    }
}

/// Everything the runs wrote, to a file (`HOSTILE_DUMP=PATH`), for a look by eye.
fn dump(path: &str, all: &[&Seen], comments: &[String]) {
    let mut text = String::new();
    for s in all {
        text.push_str(&format!(
            "===== {} exit {}\n--- stdout\n{}\n--- stderr\n{}\n--- outputs\n{}\n--- summary\n{}\n",
            s.what, s.code, s.stdout, s.stderr, s.outputs, s.summary
        ));
    }
    for c in comments {
        text.push_str(&format!("===== comment\n{c}\n"));
    }
    std::fs::write(path, text).unwrap();
}

/// `cmd` with at most 4 GiB of address space, so a regression that reads or builds without
/// bound fails here instead of taking the machine's memory.
fn bounded(mut cmd: tokio::process::Command) -> tokio::process::Command {
    // SAFETY: setrlimit is async-signal-safe; nothing else runs between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            let limit = libc::rlimit {
                rlim_cur: 4 << 30,
                rlim_max: 4 << 30,
            };
            libc::setrlimit(libc::RLIMIT_AS, &limit);
            Ok(())
        });
    }
    cmd
}

/// Inputs without a size and programs without a bound: an envfile or a definition that is
/// /dev/zero (or a symlink to it), and a Jsonnet file asking for gigabytes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inputs_and_jsonnet_evaluation_are_bounded() {
    let s = Scenario::new("web", FAST, &["v1"]).await;
    let dir = std::env::temp_dir().join(format!("cortado-bounded-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();

    // --envfile /dev/zero: stops at the 10 MiB bound, exit 1, says so.
    let mut c = s.command("v1", &["validate", "--envfile", "/dev/zero"]);
    c.args(["--output", "text"]);
    let run = tokio::time::timeout(Duration::from_secs(60), finish(bounded(c)))
        .await
        .expect("the read ends");
    run.expect_code(1);
    assert!(
        run.stderr.contains("holds more than 10 MiB"),
        "{}",
        run.dump()
    );

    // A task definition that is a symlink to /dev/zero.
    std::fs::write(
        dir.join("cortado.yml"),
        "region: us-east-1\ncluster: scenarios\nservice: web\ntask_definition: td.json\n",
    )
    .unwrap();
    std::os::unix::fs::symlink("/dev/zero", dir.join("td.json")).unwrap();
    let c = s.command_with(&dir.join("cortado.yml"), "v1", &["render", "taskdef"]);
    let run = finish(bounded(c)).await;
    run.expect_code(1);
    assert!(
        run.stderr.contains("holds more than 10 MiB"),
        "{}",
        run.dump()
    );

    // Jsonnet asking for 2 GB at once, and a string doubled without end.
    for (i, body) in [
        r#"{family: std.repeat("a", 2e9)}"#,
        "local grow(s, n) = if n == 0 then s else grow(s + s, n - 1);\n{family: grow('a', 40)}",
    ]
    .iter()
    .enumerate()
    {
        let cfg = dir.join(format!("jsonnet-{i}.yml"));
        std::fs::write(
            &cfg,
            format!(
                "region: us-east-1\ncluster: scenarios\nservice: web\ntask_definition: big-{i}.jsonnet\n"
            ),
        )
        .unwrap();
        std::fs::write(dir.join(format!("big-{i}.jsonnet")), body).unwrap();
        let run = finish(bounded(s.command_with(&cfg, "v1", &["render", "taskdef"]))).await;
        run.expect_code(1);
        assert!(
            run.stderr.contains("needs more than 1024 MiB of memory"),
            "{}",
            run.dump()
        );
    }

    let _ = std::fs::remove_dir_all(&dir);
}

/// `cortado init` over a dangling symlink: refused, and nothing appears where the link points
/// (create-new); `--force` replaces the link itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn init_never_writes_through_a_link() {
    let s = Scenario::new("web", FAST, &["v1"]).await;
    let dir = std::env::temp_dir().join(format!("cortado-init-link-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    s.deploy("v1", &[]).await.expect_code(0);
    let out = dir.join("init");
    std::fs::create_dir_all(&out).unwrap();
    let target = dir.join("planted-target");
    std::os::unix::fs::symlink(&target, out.join("cortado.yml")).unwrap();
    let out_arg = out.to_string_lossy().to_string();
    let args = [
        "init",
        "--cluster",
        CLUSTER,
        "--service",
        SERVICE,
        "--dir",
        &out_arg,
    ];
    let run = s.cortado("v1", &args).await;
    run.expect_code(1);
    assert!(run.stderr.contains("exists"), "{}", run.dump());
    assert!(
        !target.exists(),
        "init wrote through the link\n{}",
        run.dump()
    );
    // --force replaces the link with a file of its own.
    let mut forced = args.to_vec();
    forced.push("--force");
    s.cortado("v1", &forced).await.expect_code(0);
    assert!(!target.exists(), "--force wrote through the link");
    let meta = out.join("cortado.yml").symlink_metadata().unwrap();
    assert!(meta.is_file(), "the link was replaced by a file");
    let _ = std::fs::remove_dir_all(&dir);
}
