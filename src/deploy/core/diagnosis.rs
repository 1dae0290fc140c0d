//! Why our deployment's tasks failed, as pure data and rules: one [`Failure`] per distinct
//! failure (tasks grouped by container, exit code, stop code and reason, [`group`]) and the
//! [`diagnose`] of the common causes from typed [`Evidence`]. No I/O: `deploy::explain` gathers
//! the evidence (the task definition, CloudWatch Logs, ECR, the target group's health check)
//! and hands it in; the [`Failure`] it builds travels in every service result and report.

use std::time::Duration;

use serde::Serialize;

use super::verdict::{StoppedTask, task_failed};
use crate::aws::elb::HealthCheckSetting;
use crate::untrusted::Untrusted;

/// One distinct failure of our deployment's tasks.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Failure {
    /// How many of our tasks failed this way.
    pub tasks: usize,
    /// The ids of the first of them.
    pub task_ids: Vec<String>,
    /// The container that stopped the task (the one with a reason or a failing exit code,
    /// else the first essential one).
    pub container: Option<String>,
    pub exit_code: Option<i32>,
    pub stop_code: Option<String>,
    pub stopped_reason: Untrusted,
    /// The container's own reason (an OOM kill is named there).
    pub container_reason: Option<Untrusted>,
    pub diagnosis: Option<Diagnosis>,
    pub log: Log,
}

impl Failure {
    /// The heading of a failure: how many tasks, the container, its exit code, ECS's stop code
    /// and reason.
    pub fn heading(&self) -> String {
        let f = self;
        let mut h = format!(
            "{} task{} failed",
            f.tasks,
            if f.tasks == 1 { "" } else { "s" }
        );
        if let Some(c) = &f.container {
            h.push_str(&format!(": container {c}"));
        }
        // A task ECS stopped exits however SIGTERM finds it: its code says nothing then.
        if let Some(x) = f
            .exit_code
            .filter(|x| *x != 0 || f.stop_code.as_deref() == Some("EssentialContainerExited"))
        {
            h.push_str(&format!(" exit code {x}"));
        }
        h.push_str(&format!(
            " ({}{})",
            f.stop_code
                .as_deref()
                .map(|c| format!("{c}: "))
                .unwrap_or_default(),
            f.stopped_reason
        ));
        if let Some(r) = f
            .container_reason
            .as_ref()
            .filter(|r| **r != f.stopped_reason)
        {
            h.push_str(&format!(", container reason: {r}"));
        }
        h
    }
}

/// The common causes cortado recognises.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Cause {
    OutOfMemory,
    ImagePull,
    Secrets,
    ElbHealthCheck,
    ContainerHealthCheck,
    NotPlaced,
    Crash,
}

/// A short sentence with the evidence, and what to do.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Diagnosis {
    pub cause: Cause,
    pub summary: String,
    pub fix: String,
    /// The definition line the fix is about (the container's `memory`, `image`, the secret's
    /// `valueFrom`, its `healthCheck`, the service's load balancer), when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub at: Option<Place>,
}

/// A place in an input file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Place {
    pub file: String,
    /// 0 when only the file is known.
    pub line: usize,
    pub col: usize,
}

impl std::fmt::Display for Place {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.line, self.col) {
            (0, _) => write!(f, "{}", self.file),
            (l, 0) => write!(f, "{}:{l}", self.file),
            (l, c) => write!(f, "{}:{l}:{c}", self.file),
        }
    }
}

/// Which file a diagnosis points into, and the JSON pointer there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Pointer {
    Task(String),
    Service(String),
}

/// Where in the definitions a diagnosis of `cause` points: `container` is the failing
/// container's index in `containerDefinitions`, `secret` the index of the secret it names.
pub(crate) fn pointer_for(
    cause: Cause,
    container: Option<usize>,
    has_memory: bool,
    secret: Option<usize>,
) -> Option<Pointer> {
    let c =
        |rest: &str| container.map(|i| Pointer::Task(format!("/containerDefinitions/{i}{rest}")));
    match cause {
        Cause::OutOfMemory if has_memory => c("/memory"),
        Cause::OutOfMemory => Some(Pointer::Task("/memory".into())),
        Cause::ImagePull => c("/image"),
        Cause::Secrets => match secret {
            Some(j) => c(&format!("/secrets/{j}/valueFrom")),
            None => c("/secrets"),
        },
        Cause::ContainerHealthCheck => c("/healthCheck"),
        Cause::ElbHealthCheck => Some(Pointer::Service("/loadBalancers".into())),
        Cause::NotPlaced => Some(Pointer::Service("/networkConfiguration".into())),
        Cause::Crash => None,
    }
}

/// The end of the failing container's log, or why there is none.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Log {
    pub group: Option<String>,
    pub stream: Option<String>,
    /// Oldest first, secret values masked.
    pub lines: Vec<Untrusted>,
    /// Why no lines could be read (None when they were, even if there were none).
    pub unavailable: Option<String>,
}

/// Tasks that failed the same way.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Group<'a> {
    pub container: Option<String>,
    pub container_reason: Option<String>,
    pub exit_code: Option<i32>,
    pub stop_code: Option<String>,
    pub reason: String,
    pub tasks: Vec<&'a StoppedTask>,
}

/// The container that stopped `t`: one with a reason, else one with a failing exit code, else
/// the first essential one (by `essential`'s names), else the first.
fn culprit<'t>(
    t: &'t StoppedTask,
    essential: &[String],
) -> Option<&'t (String, Option<String>, Option<i32>)> {
    t.containers
        .iter()
        .find(|c| c.1.as_deref().is_some_and(|r| !r.is_empty()))
        .or_else(|| t.containers.iter().find(|c| c.2.is_some_and(|x| x != 0)))
        .or_else(|| t.containers.iter().find(|c| essential.contains(&c.0)))
        .or_else(|| t.containers.first())
}

/// Our deployment's failed tasks ([`task_failed`]) grouped by container, exit code, stop code
/// and reason, most frequent first (first seen first among equals). The exit code tells tasks
/// apart only when the container's exit stopped the task (`EssentialContainerExited`); a task
/// ECS stopped (failed health checks) exits however SIGTERM finds it, and the group keeps the
/// first code seen.
pub(crate) fn group<'a>(
    stopped: &'a [StoppedTask],
    deployment: &str,
    essential: &[String],
) -> Vec<Group<'a>> {
    let mut groups: Vec<Group<'a>> = Vec::new();
    for t in stopped {
        if t.started_by.as_deref() != Some(deployment) || !task_failed(t) {
            continue;
        }
        let c = culprit(t, essential);
        let g = Group {
            container: c.map(|c| c.0.clone()),
            container_reason: c.and_then(|c| c.1.clone()),
            exit_code: c.and_then(|c| c.2),
            stop_code: t.stop_code.clone(),
            reason: t
                .stopped_reason
                .clone()
                .unwrap_or_else(|| "no reason given".into()),
            tasks: vec![t],
        };
        let by_exit = g.stop_code.as_deref() == Some("EssentialContainerExited");
        match groups.iter_mut().find(|x| {
            (&x.container, &x.stop_code, &x.reason) == (&g.container, &g.stop_code, &g.reason)
                && (!by_exit || x.exit_code == g.exit_code)
        }) {
            Some(x) => {
                x.exit_code = x.exit_code.or(g.exit_code);
                x.tasks.push(t);
            }
            None => groups.push(g),
        }
    }
    groups.sort_by_key(|g| std::cmp::Reverse(g.tasks.len()));
    groups
}

/// A container's health check as the diagnosis words it.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct HealthCheckFacts {
    pub command: Vec<String>,
    pub interval: i32,
    pub retries: i32,
    pub start_period: i32,
}

/// What the task definition says of the failing container.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct ContainerFacts {
    pub name: String,
    pub image: String,
    pub memory: Option<i32>,
    pub memory_reservation: Option<i32>,
    pub health_check: Option<HealthCheckFacts>,
    /// `valueFrom` of each secret.
    pub secrets: Vec<String>,
}

/// The load balancer's view of our targets, with the target group's health check.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct TargetFacts {
    pub reason: Option<String>,
    pub description: Option<String>,
    pub health_check: Option<HealthCheckSetting>,
    /// The container port the service registers in the target group.
    pub container_port: Option<i32>,
}

/// Everything a diagnosis may draw on (typed, no I/O).
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Evidence {
    pub stop_code: Option<String>,
    pub stopped_reason: String,
    pub container_reason: Option<String>,
    pub exit_code: Option<i32>,
    pub container: Option<ContainerFacts>,
    /// The task's `memory` (MiB, as written).
    pub task_memory: Option<String>,
    pub execution_role: Option<String>,
    /// How long the containers ran.
    pub lived: Option<Duration>,
    /// Whether ECR holds the image's tag (None: not an ECR image, or not known).
    pub image_in_ecr: Option<bool>,
    pub target: Option<TargetFacts>,
}

fn mib(v: Option<i32>) -> String {
    v.map_or_else(|| "not set".into(), |m| format!("{m} MiB"))
}

fn secs(d: Duration) -> String {
    format!("{}s", d.as_secs())
}

/// The `valueFrom` a ResourceInitializationError names (the agent's wording for Secrets
/// Manager and for Parameter Store).
fn named_value_from(reason: &str) -> Option<String> {
    if let Some((_, rest)) = reason.split_once("failed to fetch secret ") {
        return rest.split_whitespace().next().map(str::to_string);
    }
    if let Some((_, rest)) = reason.split_once("invalid parameters: ") {
        return rest
            .split([' ', ','])
            .next()
            .filter(|s| !s.is_empty())
            .map(str::to_string);
    }
    None
}

/// Words of a stop reason that mean the task never got a place to run.
const NOT_PLACED: &[&str] = &[
    "Timeout waiting for network interface",
    "no container instance met",
    "Capacity is unavailable",
    "insufficient",
    "Insufficient",
    "free IP",
    "ENI",
];

/// The diagnosis of one failure, when its cause is one cortado recognises: the first cause
/// whose words the stop reason (or the container's reason) carries, in this order.
pub(crate) fn diagnose(e: &Evidence) -> Option<Diagnosis> {
    let reason = e.stopped_reason.as_str();
    let creason = e.container_reason.as_deref().unwrap_or("");
    let name = e.container.as_ref().map_or_else(
        || "the container".to_string(),
        |c| format!("container {}", c.name),
    );
    let texts = [reason, creason];
    let has = |k: &str| texts.iter().any(|t| t.contains(k));
    if has("OutOfMemoryError") {
        return out_of_memory(e, &name);
    }
    if has("CannotPullContainerError") {
        return image_pull(e, &name);
    }
    if has("ResourceInitializationError") && (has("secret") || has("ssm")) {
        return secrets(e, reason, creason);
    }
    if has("ELB health checks") {
        return elb_health_check(e);
    }
    if has("failed container health checks") {
        return container_health_check(e, &name);
    }
    if e.stop_code.as_deref() == Some("TaskFailedToStart")
        && NOT_PLACED.iter().any(|k| reason.contains(k))
    {
        return found(
            Cause::NotPlaced,
            "the task never got a place to run (no capacity, no free IP address in the subnets, or no network interface)".into(),
            "use subnets with free IP addresses, add capacity (or another capacity provider), and check the account's ENI and Fargate quotas".into(),
        );
    }
    if has("Essential container in task exited") || e.exit_code.is_some_and(|x| x != 0) {
        return crash(e, &name);
    }
    None
}

/// A diagnosis of `cause`, its place in the definitions left for the caller to find.
fn found(cause: Cause, summary: String, fix: String) -> Option<Diagnosis> {
    Some(Diagnosis {
        cause,
        summary,
        fix,
        at: None,
    })
}

/// The container ran out of memory: its limits and which to raise.
fn out_of_memory(e: &Evidence, name: &str) -> Option<Diagnosis> {
    let c = e.container.as_ref();
    let limits = format!(
        "the container's memory is {}, its memoryReservation {}, the task's memory {}",
        mib(c.and_then(|c| c.memory)),
        mib(c.and_then(|c| c.memory_reservation)),
        e.task_memory
            .as_deref()
            .map_or_else(|| "not set".into(), |m| format!("{m} MiB"))
    );
    let fix = if c.and_then(|c| c.memory).is_some() {
        "raise the container's `memory` (and the task's `memory` with it) in the task definition, or find what grows in the app"
    } else {
        "raise the task's `memory` (the container has no hard limit of its own), or find what grows in the app"
    };
    found(
        Cause::OutOfMemory,
        format!(
            "{name} ran out of memory and was killed (exit code {}): {limits}",
            e.exit_code.map_or_else(|| "137".into(), |x| x.to_string())
        ),
        fix.into(),
    )
}

/// The image could not be pulled: whether ECR holds it says what to fix.
fn image_pull(e: &Evidence, name: &str) -> Option<Diagnosis> {
    let image = e
        .container
        .as_ref()
        .map_or_else(|| "its image".to_string(), |c| format!("image {}", c.image));
    let role = e.execution_role.as_deref().unwrap_or("(none)");
    match e.image_in_ecr {
        Some(false) => found(
            Cause::ImagePull,
            format!("{name} could not pull {image}: ECR has no image with that tag or digest"),
            "push the image (or correct the tag in the task definition) before deploying".into(),
        ),
        Some(true) => found(
            Cause::ImagePull,
            format!(
                "{name} could not pull {image}, which ECR holds: the execution role {role} may not pull it, or the task cannot reach ECR"
            ),
            "allow the execution role ecr:GetAuthorizationToken, ecr:BatchGetImage and ecr:GetDownloadUrlForLayer, and give the subnets a route to ECR (NAT gateway, VPC endpoints or a public IP)".into(),
        ),
        None => found(
            Cause::ImagePull,
            format!("{name} could not pull {image}"),
            "check that the image and tag exist, that the registry's credentials (repositoryCredentials) are right, and that the subnets can reach the registry".into(),
        ),
    }
}

/// A secret could not be fetched before the task started.
fn secrets(e: &Evidence, reason: &str, creason: &str) -> Option<Diagnosis> {
    let value_from = named_value_from(reason)
        .or_else(|| named_value_from(creason))
        .or_else(|| {
            e.container
                .as_ref()
                .and_then(|c| c.secrets.first().cloned())
        });
    let what = value_from.map_or_else(|| "a secret".to_string(), |v| format!("the secret {v}"));
    let role = e.execution_role.as_deref().unwrap_or("(none)");
    found(
        Cause::Secrets,
        format!("the task could not fetch {what} before starting (execution role {role})"),
        "check that it exists in this account and region, and that the execution role may read it (secretsmanager:GetSecretValue or ssm:GetParameters, and kms:Decrypt for a customer-managed key)".into(),
    )
}

/// The load balancer found the targets unhealthy: the reason code says how.
fn elb_health_check(e: &Evidence) -> Option<Diagnosis> {
    let t = e.target.clone().unwrap_or_default();
    let hc = t.health_check.clone().unwrap_or_default();
    let path = hc.path.as_deref().unwrap_or("/");
    let port = match (hc.port.as_deref(), t.container_port) {
        (Some("traffic-port") | None, Some(p)) => format!("port {p}"),
        (Some(p), _) => format!("port {p}"),
        (None, None) => "the traffic port".into(),
    };
    let matcher = hc.matcher.as_deref().unwrap_or("200");
    let codes = t
        .description
        .as_deref()
        .and_then(|s| s.split_once('[').and_then(|(_, r)| r.split_once(']')))
        .map(|(c, _)| c.to_string());
    match t.reason.as_deref() {
        Some("Target.ResponseCodeMismatch") => found(
            Cause::ElbHealthCheck,
            format!(
                "the app answers {} on {path} at {port}; the target group expects {matcher} (Target.ResponseCodeMismatch)",
                codes.unwrap_or_else(|| "another code".into())
            ),
            format!(
                "serve {matcher} at {path}, or set the target group's health check path or matcher to what the app answers"
            ),
        ),
        Some("Target.Timeout") => found(
            Cause::ElbHealthCheck,
            format!("health checks of {path} on {port} timed out (Target.Timeout)"),
            "make the app answer within the health check timeout, and let the load balancer's security group reach that port".into(),
        ),
        Some("Target.FailedHealthChecks") => found(
            Cause::ElbHealthCheck,
            format!(
                "the load balancer could not get an answer from {port} (Target.FailedHealthChecks: no connection or a malformed response)"
            ),
            "make the app listen on 0.0.0.0 at the container port the service registers, and let the load balancer's security group reach it".into(),
        ),
        other => found(
            Cause::ElbHealthCheck,
            format!(
                "the tasks failed the load balancer's health checks of {path} on {port}{}",
                other.map(|r| format!(" ({r})")).unwrap_or_default()
            ),
            format!(
                "make the app answer {matcher} at {path}, or raise the service's healthCheckGracePeriodSeconds if it starts slowly"
            ),
        ),
    }
}

/// The container's own health check failed: too early, or after a while.
fn container_health_check(e: &Evidence, name: &str) -> Option<Diagnosis> {
    let hc = e.container.as_ref().and_then(|c| c.health_check.clone());
    let lived = e.lived.map(secs);
    let Some(hc) = hc else {
        return found(
            Cause::ContainerHealthCheck,
            format!("{name} failed its container health check"),
            "check the container's healthCheck command".into(),
        );
    };
    let budget = hc.start_period + hc.interval * hc.retries;
    let short = e
        .lived
        .is_some_and(|l| l.as_secs() <= budget as u64 + hc.interval as u64);
    found(
        Cause::ContainerHealthCheck,
        format!(
            "{name} failed its health check `{}` {} times in a row (every {}s, startPeriod {}s){}",
            hc.command.join(" "),
            hc.retries,
            hc.interval,
            hc.start_period,
            lived
                .map(|l| format!("; the task lived {l}"))
                .unwrap_or_default()
        ),
        if short {
            "run the command in the image to see it pass (is its tool installed? does it check the right port?), or raise startPeriod (up to 300s) if the app starts slowly".into()
        } else {
            "the check passed at first and then failed: look at the log for what the app was doing"
                .into()
        },
    )
}

/// The essential container exited, with the meaning of its code (None when no code is known).
fn crash(e: &Evidence, name: &str) -> Option<Diagnosis> {
    let code = e.exit_code?;
    let after = e
        .lived
        .map(|l| format!(" {} after it started", secs(l)))
        .unwrap_or_default();
    let meaning = match code {
        0 => ": a service's essential container must keep running",
        137 => " (SIGKILL: killed, out of memory or not stopped within stopTimeout)",
        139 => " (SIGSEGV: a crash in native code)",
        143 => " (SIGTERM: it was asked to stop)",
        _ => "",
    };
    found(
        Cause::Crash,
        format!("{name} exited with code {code}{after}{meaning}"),
        "the log lines show why; run the image with the same environment to reproduce it".into(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task(
        id: &str,
        by: &str,
        code: &str,
        reason: &str,
        c: (&str, Option<&str>, Option<i32>),
    ) -> StoppedTask {
        StoppedTask {
            task_arn: format!("arn:aws:ecs:r:1:task/c/{id}"),
            started_by: Some(by.into()),
            stop_code: Some(code.into()),
            stopped_reason: Some(reason.into()),
            containers: vec![
                ("sidecar".into(), None, None),
                (c.0.into(), c.1.map(str::to_string), c.2),
            ],
            lived_ms: Some(12_000),
        }
    }

    #[test]
    fn tasks_group_by_container_exit_code_stop_code_and_reason() {
        let crash = |id| {
            task(
                id,
                "ecs-svc/2",
                "EssentialContainerExited",
                "Essential container in task exited",
                ("app", None, Some(1)),
            )
        };
        let tasks = vec![
            crash("a"),
            task(
                "b",
                "ecs-svc/2",
                "EssentialContainerExited",
                "Essential container in task exited",
                (
                    "app",
                    Some("OutOfMemoryError: Container killed due to memory usage"),
                    Some(137),
                ),
            ),
            crash("c"),
            crash("d"),
            // Not ours, and not a failure.
            task(
                "e",
                "ecs-svc/1",
                "EssentialContainerExited",
                "Essential container in task exited",
                ("app", None, Some(1)),
            ),
            task(
                "f",
                "ecs-svc/2",
                "ServiceSchedulerInitiated",
                "Scaling activity initiated by (deployment ecs-svc/2)",
                ("app", None, Some(0)),
            ),
            // Stopped by ECS for failed health checks: one failure, whatever each exited with.
            task(
                "g",
                "ecs-svc/2",
                "ServiceSchedulerInitiated",
                "Task failed ELB health checks in (target-group t)",
                ("app", None, None),
            ),
            task(
                "h",
                "ecs-svc/2",
                "ServiceSchedulerInitiated",
                "Task failed ELB health checks in (target-group t)",
                ("app", None, Some(0)),
            ),
        ];
        let g = group(&tasks, "ecs-svc/2", &["app".into()]);
        assert_eq!(g.len(), 3, "{g:?}");
        assert_eq!(g[0].tasks.len(), 3);
        assert_eq!(g[1].tasks.len(), 2);
        assert_eq!(g[1].exit_code, Some(0));
        assert_eq!(g[0].container.as_deref(), Some("app"));
        assert_eq!(g[0].exit_code, Some(1));
        assert_eq!(g[2].exit_code, Some(137));
        assert_eq!(
            g[2].container_reason.as_deref(),
            Some("OutOfMemoryError: Container killed due to memory usage")
        );
    }

    #[test]
    fn diagnoses_point_at_the_definition_line_they_are_about() {
        let t = |p: &str| Some(Pointer::Task(p.into()));
        let cases = [
            (
                Cause::OutOfMemory,
                true,
                None,
                t("/containerDefinitions/1/memory"),
            ),
            (Cause::OutOfMemory, false, None, t("/memory")),
            (
                Cause::ImagePull,
                false,
                None,
                t("/containerDefinitions/1/image"),
            ),
            (
                Cause::Secrets,
                false,
                Some(2),
                t("/containerDefinitions/1/secrets/2/valueFrom"),
            ),
            (
                Cause::Secrets,
                false,
                None,
                t("/containerDefinitions/1/secrets"),
            ),
            (
                Cause::ContainerHealthCheck,
                false,
                None,
                t("/containerDefinitions/1/healthCheck"),
            ),
            (
                Cause::ElbHealthCheck,
                false,
                None,
                Some(Pointer::Service("/loadBalancers".into())),
            ),
            (Cause::Crash, false, None, None),
        ];
        for (cause, has_memory, secret, want) in cases {
            assert_eq!(
                pointer_for(cause, Some(1), has_memory, secret),
                want,
                "{cause:?}"
            );
        }
        assert_eq!(pointer_for(Cause::ImagePull, None, false, None), None);
    }

    #[test]
    fn the_culprit_is_the_container_with_a_reason_or_a_failing_code() {
        let t = task(
            "a",
            "d",
            "EssentialContainerExited",
            "x",
            ("app", None, None),
        );
        // Nothing tells: the first essential container.
        assert_eq!(
            culprit(&t, &["app".into()]).map(|c| c.0.as_str()),
            Some("app")
        );
        assert_eq!(culprit(&t, &[]).map(|c| c.0.as_str()), Some("sidecar"));
    }

    fn app() -> ContainerFacts {
        ContainerFacts {
            name: "app".into(),
            image: "1.dkr.ecr.us-east-1.amazonaws.com/web:v2".into(),
            memory: Some(512),
            memory_reservation: Some(256),
            health_check: Some(HealthCheckFacts {
                command: vec![
                    "CMD-SHELL".into(),
                    "curl -f http://localhost:8080/health".into(),
                ],
                interval: 10,
                retries: 3,
                start_period: 5,
            }),
            secrets: vec!["arn:aws:ssm:us-east-1:1:parameter/app/db".into()],
        }
    }

    #[test]
    fn diagnoses_name_cause_evidence_and_fix() {
        let base = Evidence {
            container: Some(app()),
            task_memory: Some("1024".into()),
            execution_role: Some("arn:aws:iam::1:role/exec".into()),
            lived: Some(Duration::from_secs(40)),
            ..Evidence::default()
        };
        let hc = HealthCheckSetting {
            protocol: Some("HTTP".into()),
            path: Some("/health".into()),
            port: Some("traffic-port".into()),
            matcher: Some("200".into()),
        };
        // (evidence, cause, words the summary must contain, words the fix must contain)
        let cases: Vec<(Evidence, Option<Cause>, Vec<&str>, &str)> = vec![
            (
                Evidence {
                    stop_code: Some("EssentialContainerExited".into()),
                    stopped_reason: "Essential container in task exited".into(),
                    container_reason: Some("OutOfMemoryError: Container killed due to memory usage".into()),
                    exit_code: Some(137),
                    ..base.clone()
                },
                Some(Cause::OutOfMemory),
                vec!["container app", "exit code 137", "memory is 512 MiB", "memoryReservation 256 MiB", "task's memory 1024 MiB"],
                "raise the container's `memory`",
            ),
            (
                Evidence {
                    stop_code: Some("TaskFailedToStart".into()),
                    stopped_reason: "CannotPullContainerError: pull image manifest has been retried 7 time(s): failed to resolve ref x: not found".into(),
                    image_in_ecr: Some(false),
                    ..base.clone()
                },
                Some(Cause::ImagePull),
                vec!["web:v2", "ECR has no image with that tag"],
                "push the image",
            ),
            (
                Evidence {
                    stop_code: Some("TaskFailedToStart".into()),
                    stopped_reason: "CannotPullContainerError: access denied".into(),
                    image_in_ecr: Some(true),
                    ..base.clone()
                },
                Some(Cause::ImagePull),
                vec!["which ECR holds", "role/exec"],
                "ecr:BatchGetImage",
            ),
            (
                Evidence {
                    stop_code: Some("TaskFailedToStart".into()),
                    stopped_reason: "ResourceInitializationError: unable to pull secrets or registry auth: execution resource retrieval failed: unable to retrieve secret from asm: service call has been retried 1 time(s): failed to fetch secret arn:aws:secretsmanager:us-east-1:1:secret:db-AbC from secrets manager: ResourceNotFoundException".into(),
                    ..base.clone()
                },
                Some(Cause::Secrets),
                vec!["arn:aws:secretsmanager:us-east-1:1:secret:db-AbC", "role/exec"],
                "secretsmanager:GetSecretValue",
            ),
            (
                Evidence {
                    stop_code: Some("TaskFailedToStart".into()),
                    stopped_reason: "ResourceInitializationError: unable to pull secrets or registry auth: execution resource retrieval failed: unable to retrieve secrets from ssm: service call has been retried 1 time(s): invalid parameters: /app/db".into(),
                    ..base.clone()
                },
                Some(Cause::Secrets),
                vec!["the secret /app/db"],
                "ssm:GetParameters",
            ),
            (
                Evidence {
                    stop_code: Some("ServiceSchedulerInitiated".into()),
                    stopped_reason: "Task failed ELB health checks in (target-group arn:aws:elasticloadbalancing:r:1:targetgroup/web/1)".into(),
                    target: Some(TargetFacts {
                        reason: Some("Target.ResponseCodeMismatch".into()),
                        description: Some("Health checks failed with these codes: [404]".into()),
                        health_check: Some(hc.clone()),
                        container_port: Some(8080),
                    }),
                    ..base.clone()
                },
                Some(Cause::ElbHealthCheck),
                vec!["answers 404 on /health", "port 8080", "expects 200", "Target.ResponseCodeMismatch"],
                "serve 200 at /health",
            ),
            (
                Evidence {
                    stopped_reason: "Task failed ELB health checks in (target-group t)".into(),
                    target: Some(TargetFacts {
                        reason: Some("Target.Timeout".into()),
                        health_check: Some(hc.clone()),
                        container_port: Some(8080),
                        ..TargetFacts::default()
                    }),
                    ..base.clone()
                },
                Some(Cause::ElbHealthCheck),
                vec!["timed out", "/health"],
                "security group",
            ),
            (
                Evidence {
                    stopped_reason: "Task failed ELB health checks in (target-group t)".into(),
                    target: Some(TargetFacts {
                        reason: Some("Target.FailedHealthChecks".into()),
                        health_check: Some(hc),
                        container_port: Some(8080),
                        ..TargetFacts::default()
                    }),
                    ..base.clone()
                },
                Some(Cause::ElbHealthCheck),
                vec!["could not get an answer from port 8080"],
                "0.0.0.0",
            ),
            (
                Evidence {
                    stop_code: Some("ServiceSchedulerInitiated".into()),
                    stopped_reason: "Task failed container health checks".into(),
                    lived: Some(Duration::from_secs(36)),
                    ..base.clone()
                },
                Some(Cause::ContainerHealthCheck),
                vec!["curl -f http://localhost:8080/health", "3 times", "every 10s", "startPeriod 5s", "lived 36s"],
                "raise startPeriod",
            ),
            (
                Evidence {
                    stop_code: Some("TaskFailedToStart".into()),
                    stopped_reason: "Timeout waiting for network interface provisioning to complete.".into(),
                    ..base.clone()
                },
                Some(Cause::NotPlaced),
                vec!["never got a place to run"],
                "free IP addresses",
            ),
            (
                Evidence {
                    stop_code: Some("EssentialContainerExited".into()),
                    stopped_reason: "Essential container in task exited".into(),
                    exit_code: Some(1),
                    ..base.clone()
                },
                Some(Cause::Crash),
                vec!["container app exited with code 1 40s after it started"],
                "log lines",
            ),
            (
                Evidence {
                    stop_code: Some("UserInitiated".into()),
                    stopped_reason: "Task stopped by user".into(),
                    ..base.clone()
                },
                None,
                vec![],
                "",
            ),
        ];
        for (ev, cause, words, fix) in cases {
            let got = diagnose(&ev);
            assert_eq!(got.as_ref().map(|d| d.cause), cause, "{ev:?}: {got:?}");
            let Some(got) = got else { continue };
            for w in words {
                assert!(got.summary.contains(w), "{w:?} not in {:?}", got.summary);
            }
            assert!(got.fix.contains(fix), "{fix:?} not in {:?}", got.fix);
        }
    }
}
