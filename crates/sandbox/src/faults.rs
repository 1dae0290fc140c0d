//! Fault injection: what can go wrong, and how a scenario says so.
//!
//! Receives image references (whose tag may carry faults), runtime settings from
//! `/_sandbox/faults`, and [`Faults`] from [`super::Options`]; hands on a [`TaskPlan`] for each
//! task the simulation starts and per-request API fault decisions.
//!
//! # Image faults
//!
//! A deploy carries its own scenario in the image tag: everything after the first `--` in the
//! tag is a list of faults separated by `--`. Segments that are not faults are ignored.
//!
//! | segment             | effect                                                                                 |
//! |---------------------|----------------------------------------------------------------------------------------|
//! | `crash-20s`         | the essential container exits with code 1 20 s after RUNNING: "Essential container in task exited" |
//! | `exit-20s`          | the essential container exits with code 0 after 20 s (one-off tasks)                   |
//! | `exit-3-after-5s`   | the essential container exits with code 3 (0..=255) 5 s after RUNNING (one-off tasks) |
//! | `pull-fail`         | `CannotPullContainerError`, stop code `TaskFailedToStart`                               |
//! | `unhealthy`         | the container health check never passes: "Task failed container health checks"        |
//! | `elb-unhealthy`     | the app never answers ELB health checks: "Task failed ELB health checks in (target-group …)" |
//! | `slow-start-120s`   | pulling and starting takes 120 s longer                                                |
//! | `hook-fail`         | AWS_LAMBDA lifecycle hooks of deployments of this image fail                            |
//! | `hook-timeout`      | AWS_LAMBDA lifecycle hooks never answer and hit their timeout                           |
//! | `oom`, `oom-20s`    | the essential container is killed for its memory use (after 20 s; default 5 s): exit code 137, container reason "OutOfMemoryError: Container killed due to memory usage", task "Essential container in task exited" |
//! | `secret-fail`       | the task cannot fetch its first secret: "ResourceInitializationError: unable to pull secrets or registry auth: ..." naming the `valueFrom`, stop code `TaskFailedToStart` |
//! | `health-404`        | the app answers ELB health checks with HTTP 404 (any code 100..=599): target reason `Target.ResponseCodeMismatch`, "Health checks failed with these codes: [404]" |
//! | `log-<words>`       | the container writes the line `<words>` (dashes become spaces) to its awslogs stream before it crashes or is killed; several `log-` segments write several lines |
//!
//! Durations are `20s`, `2m`, `1h` or a bare number of seconds. Example:
//! `123456789012.dkr.ecr.us-east-1.amazonaws.com/web:v2--crash-20s` crashes 20 s after start;
//! `nginx:1.27--slow-start-60s--unhealthy` starts late and then fails its health check.
//! An image in an ECR registry of the sandbox's account and region that the sandbox's ECR does
//! not hold fails to pull, like on AWS.
//!
//! The same faults can be set at runtime per image reference (exact match, tag included):
//! `POST /_sandbox/faults` with `{"images": {"nginx:1.27": "crash-20s--unhealthy"}}`; an empty
//! string clears them.
//!
//! # API faults
//!
//! `POST /_sandbox/faults` (or [`Faults`] in the options) with
//! `{"api": {"throttleRate": 0.2, "errorRate": 0.05, "latencyMs": 200, "dropRate": 0.01,
//! "operations": ["DescribeServices"]}}`: each AWS request (not `/_sandbox/`) draws from the
//! seeded PRNG; a throttled request gets `ThrottlingException` (400, "Rate exceeded"), an error
//! `ServerException` (500), a dropped one loses its connection without a response. `operations`
//! limits the rates to those operation names (empty: all). `failNext` scripts exact failures:
//! `{"failNext": [{"operation": "UpdateService", "code": "ServerException", "status": 500,
//! "count": 1}]}` fails the next matching call(s). `alarms` sets CloudWatch alarm states that
//! deployments with `deploymentConfiguration.alarms` watch: `{"alarms": {"web-5xx": "ALARM"}}`.
//! `exec` acts on ECS Exec and Session Manager sessions (see [`ExecFaults`]).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// One fault an image can carry.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum ImageFault {
    Crash(f64),
    Exit(f64),
    /// The essential container exits with this code (0..=255) after this many seconds.
    ExitCode(i32, f64),
    PullFail,
    Unhealthy,
    ElbUnhealthy,
    SlowStart(f64),
    HookFail,
    HookTimeout,
    /// Killed for its memory use this many seconds after RUNNING (exit code 137).
    Oom(f64),
    /// Its secrets cannot be fetched: ResourceInitializationError, TaskFailedToStart.
    SecretFail,
    /// The app answers ELB health checks with this HTTP code.
    HealthCode(u16),
}

/// How long after RUNNING a bare `oom` kills the container.
pub const OOM_AFTER: f64 = 5.0;

/// Parse a duration: `20s`, `2m`, `1h`, `90`.
pub fn parse_duration(s: &str) -> Option<f64> {
    let s = s.trim();
    let (num, mult) = if let Some(n) = s.strip_suffix("ms") {
        (n, 0.001)
    } else if let Some(n) = s.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = s.strip_suffix('m') {
        (n, 60.0)
    } else if let Some(n) = s.strip_suffix('h') {
        (n, 3600.0)
    } else {
        (s, 1.0)
    };
    let v: f64 = num.parse().ok()?;
    (v.is_finite() && v >= 0.0).then_some(v * mult)
}

/// Parse one segment such as `crash-20s`; `None` when it is not a fault.
pub fn parse_segment(seg: &str) -> Option<ImageFault> {
    let seg = seg.trim().to_ascii_lowercase();
    match seg.as_str() {
        "pull-fail" => return Some(ImageFault::PullFail),
        "unhealthy" => return Some(ImageFault::Unhealthy),
        "elb-unhealthy" => return Some(ImageFault::ElbUnhealthy),
        "hook-fail" => return Some(ImageFault::HookFail),
        "hook-timeout" => return Some(ImageFault::HookTimeout),
        "crash" => return Some(ImageFault::Crash(0.0)),
        "oom" => return Some(ImageFault::Oom(OOM_AFTER)),
        "secret-fail" => return Some(ImageFault::SecretFail),
        _ => {}
    }
    if let Some(d) = seg.strip_prefix("oom-") {
        return parse_duration(d).map(ImageFault::Oom);
    }
    if let Some(code) = seg.strip_prefix("health-") {
        let code: u16 = code.parse().ok().filter(|c| (100..=599).contains(c))?;
        return Some(ImageFault::HealthCode(code));
    }
    if let Some(d) = seg.strip_prefix("crash-") {
        return parse_duration(d).map(ImageFault::Crash);
    }
    if let Some(d) = seg.strip_prefix("exit-") {
        if let Some((code, after)) = d.split_once("-after-") {
            let code: i32 = code.parse().ok().filter(|c| (0..=255).contains(c))?;
            return parse_duration(after).map(|d| ImageFault::ExitCode(code, d));
        }
        return parse_duration(d).map(ImageFault::Exit);
    }
    if let Some(d) = seg.strip_prefix("slow-start-") {
        return parse_duration(d).map(ImageFault::SlowStart);
    }
    None
}

/// Parse a list of segments separated by `--` or `,`.
pub fn parse_list(spec: &str) -> Vec<ImageFault> {
    spec.split([',', ' '])
        .flat_map(|part| part.split("--"))
        .filter_map(parse_segment)
        .collect()
}

/// The tag of an image reference (`repo:tag`, `host:port/repo:tag`); `None` for digests or no tag.
pub fn image_tag(image: &str) -> Option<&str> {
    if image.contains('@') {
        return None;
    }
    let last = image.rsplit('/').next().unwrap_or(image);
    last.split_once(':').map(|(_, tag)| tag)
}

/// Faults an image's tag carries.
/// The image reference without the fault segments of its tag: `web:v2--crash-20s` is the
/// image `web:v2` run with a crash, so ECR looks up `web:v2`.
pub fn without_faults(image: &str) -> String {
    match image_tag(image).and_then(|t| t.split_once("--")) {
        // The tag ends the reference, so the fault list is its tail.
        Some((_, rest)) => image[..image.len() - rest.len() - 2].to_string(),
        None => image.to_string(),
    }
}

/// The log lines an image's tag asks its container to write before it stops: each
/// `log-<words>` segment, its dashes as spaces (`log-connect-ECONNREFUSED-10.0.3.7` writes
/// "connect ECONNREFUSED 10.0.3.7"). Case is kept.
pub fn tag_log_lines(image: &str) -> Vec<String> {
    match image_tag(image).and_then(|t| t.split_once("--")) {
        Some((_, rest)) => rest
            .split("--")
            .filter_map(|seg| seg.strip_prefix("log-"))
            .filter(|words| !words.is_empty())
            .map(|words| words.replace('-', " "))
            .collect(),
        None => Vec::new(),
    }
}

pub fn tag_faults(image: &str) -> Vec<ImageFault> {
    match image_tag(image).and_then(|t| t.split_once("--")) {
        Some((_, rest)) => rest.split("--").filter_map(parse_segment).collect(),
        None => Vec::new(),
    }
}

/// API-level faults.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ApiFaults {
    pub throttle_rate: f64,
    pub error_rate: f64,
    pub latency_ms: u64,
    pub drop_rate: f64,
    /// Operation names the rates apply to; empty means all.
    pub operations: Vec<String>,
}

/// A scripted failure of the next matching call(s).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FailRule {
    pub operation: String,
    #[serde(default = "default_code")]
    pub code: String,
    #[serde(default)]
    pub status: Option<u16>,
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default = "one")]
    pub count: u32,
}

fn default_code() -> String {
    "ServerException".to_string()
}

fn one() -> u32 {
    1
}

/// All faults, as options, seed entry, or `/_sandbox/faults` body (every member optional).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Faults {
    pub api: ApiFaults,
    /// Image reference -> fault list (`crash-20s--unhealthy`).
    pub images: BTreeMap<String, String>,
    /// Alarm name -> state (`OK`, `ALARM`, `INSUFFICIENT_DATA`).
    pub alarms: BTreeMap<String, String>,
    pub fail_next: Vec<FailRule>,
    /// ECS Exec and Session Manager sessions.
    pub exec: ExecFaults,
}

/// What goes wrong in ECS Exec / Session Manager sessions (`{"exec": {...}}`).
///
/// `agent` sets the `lastStatus` the ExecuteCommandAgent of running exec-enabled tasks reports
/// (e.g. `"STOPPED"`); ExecuteCommand then refuses as ECS does. The rest acts on the data
/// channel of every session: the agent's stream messages with the sequence numbers in `lose`
/// are lost on their first send (the agent resends them); those in `reorder` are held back
/// and delivered after the next message; `loseInput` loses the client's input messages with
/// those numbers once; `dropAfter: N` closes each session's first connection after N agent
/// stream messages (the client resumes with ResumeSession and reconnects).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ExecFaults {
    pub agent: Option<String>,
    pub lose: Vec<i64>,
    pub reorder: Vec<i64>,
    pub lose_input: Vec<i64>,
    pub drop_after: Option<u64>,
}

/// A partial update of [`Faults`] (the body of `POST /_sandbox/faults`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct FaultsPatch {
    pub api: Option<ApiFaults>,
    pub images: BTreeMap<String, String>,
    pub alarms: BTreeMap<String, String>,
    pub fail_next: Option<Vec<FailRule>>,
    pub exec: Option<ExecFaults>,
    /// Clear everything before applying the rest.
    pub clear: bool,
}

impl Faults {
    pub fn apply(&mut self, patch: FaultsPatch) {
        if patch.clear {
            *self = Faults::default();
        }
        if let Some(api) = patch.api {
            self.api = api;
        }
        for (image, spec) in patch.images {
            if spec.trim().is_empty() {
                self.images.remove(&image);
            } else {
                self.images.insert(image, spec);
            }
        }
        self.alarms.extend(patch.alarms);
        if let Some(rules) = patch.fail_next {
            self.fail_next = rules;
        }
        if let Some(exec) = patch.exec {
            self.exec = exec;
        }
    }

    /// Tag faults plus runtime faults of an image.
    pub fn for_image(&self, image: &str) -> Vec<ImageFault> {
        let mut out = tag_faults(image);
        if let Some(spec) = self.images.get(image) {
            out.extend(parse_list(spec));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn faults_are_not_part_of_the_image_identity() {
        use super::without_faults;
        assert_eq!(
            without_faults("h:5000/team/web:v2--crash-20s--unhealthy"),
            "h:5000/team/web:v2"
        );
        assert_eq!(without_faults("web:v2"), "web:v2");
        assert_eq!(without_faults("h:5000/web"), "h:5000/web");
        assert_eq!(without_faults("web@sha256:abcd"), "web@sha256:abcd");
    }

    use super::*;

    #[test]
    fn tag_conventions() {
        assert_eq!(
            tag_faults("web:v2--crash-20s"),
            vec![ImageFault::Crash(20.0)]
        );
        assert_eq!(
            tag_faults("1.dkr.ecr.us-east-1.amazonaws.com/a/b:v1--slow-start-2m--unhealthy"),
            vec![ImageFault::SlowStart(120.0), ImageFault::Unhealthy]
        );
        assert_eq!(
            tag_faults("localhost:5000/web:v1--pull-fail"),
            vec![ImageFault::PullFail]
        );
        assert!(tag_faults("localhost:5000/web").is_empty());
        assert!(tag_faults("web@sha256:abc--crash-1s").is_empty());
        assert!(tag_faults("web:v1--not-a-fault").is_empty());
        assert_eq!(
            parse_list("elb-unhealthy,hook-fail"),
            vec![ImageFault::ElbUnhealthy, ImageFault::HookFail]
        );
        assert_eq!(parse_duration("1h"), Some(3600.0));
        assert_eq!(parse_duration("x"), None);
    }

    #[test]
    fn exit_code_after_a_delay() {
        assert_eq!(
            tag_faults("web:v1--exit-3-after-5s"),
            vec![ImageFault::ExitCode(3, 5.0)]
        );
        assert_eq!(
            parse_segment("exit-0-after-2m"),
            Some(ImageFault::ExitCode(0, 120.0))
        );
        assert_eq!(
            parse_segment("EXIT-255-after-1"),
            Some(ImageFault::ExitCode(255, 1.0))
        );
        // The older form keeps its meaning: code 0 after the delay.
        assert_eq!(parse_segment("exit-20s"), Some(ImageFault::Exit(20.0)));
        // Out of range or malformed: not a fault (ignored like any other segment).
        assert_eq!(parse_segment("exit-256-after-5s"), None);
        assert_eq!(parse_segment("exit--1-after-5s"), None);
        assert_eq!(parse_segment("exit-3-after-"), None);
        assert_eq!(parse_segment("exit-x-after-5s"), None);
        assert_eq!(
            tag_faults("web:v1--exit-3-after-5s--slow-start-10s"),
            vec![ImageFault::ExitCode(3, 5.0), ImageFault::SlowStart(10.0)]
        );
    }

    #[test]
    fn failure_faults_and_log_lines() {
        assert_eq!(
            tag_faults("web:v1--oom--secret-fail--health-404"),
            vec![
                ImageFault::Oom(OOM_AFTER),
                ImageFault::SecretFail,
                ImageFault::HealthCode(404)
            ]
        );
        assert_eq!(parse_segment("oom-20s"), Some(ImageFault::Oom(20.0)));
        assert_eq!(parse_segment("health-99"), None);
        assert_eq!(parse_segment("health-x"), None);
        assert_eq!(
            tag_log_lines("web:v1--log-connect-ECONNREFUSED-10.0.3.7--crash-5s--log-bye"),
            vec![
                "connect ECONNREFUSED 10.0.3.7".to_string(),
                "bye".to_string()
            ]
        );
        assert!(tag_log_lines("web:v1--crash").is_empty());
        assert!(tag_log_lines("web:v1--log-").is_empty());
        // A log segment is not a fault of its own.
        assert!(tag_faults("web:v1--log-hello").is_empty());
    }

    #[test]
    fn patch_merges_and_clears() {
        let mut f = Faults::default();
        let mut p = FaultsPatch::default();
        p.images.insert("a:1".into(), "crash-1s".into());
        f.apply(p);
        assert_eq!(f.for_image("a:1"), vec![ImageFault::Crash(1.0)]);
        let mut p = FaultsPatch::default();
        p.images.insert("a:1".into(), String::new());
        f.apply(p);
        assert!(f.for_image("a:1").is_empty());
    }
}
