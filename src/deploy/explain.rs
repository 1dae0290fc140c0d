//! Why our deployment's tasks failed: the answer a person would otherwise dig out of the
//! console (the container that stopped the task, its exit code, ECS's stop code and reason,
//! the end of that container's log) and a diagnosis of the common causes.
//!
//! Receives the stopped tasks the watch saw, the service's local definitions and the last
//! unhealthy targets of ours; hands on one [`Failure`] per distinct failure (tasks grouped by
//! container, exit code, stop code and reason), which the [`super::result::ServiceResult`]
//! carries to every report. The data and the rules ([`group`], [`diagnose`]) are pure and live
//! in [`super::core::diagnosis`]; [`explain`] adds what only AWS knows (CloudWatch Logs, ECR, the target group's health check), each read bounded and never
//! an error: what could not be read is said, with why.

use std::time::Duration;

use super::controller::seam::Local;
use super::core::diagnosis::{
    ContainerFacts, Diagnosis, Evidence, Failure, HealthCheckFacts, Log, Place, Pointer,
    TargetFacts, diagnose, group, pointer_for,
};
use super::core::verdict::{StoppedTask, TargetView, short_arn};
use crate::aws::types::ecs::ContainerDefinition;
use crate::aws::{Clients, LogTail};
use crate::untrusted::Untrusted;

/// Log lines shown per failure when `--log-lines` is not given.
pub(crate) const DEFAULT_LOG_LINES: usize = 20;
/// Distinct failures explained per service (each costs a few reads).
const MAX_FAILURES: usize = 5;
/// Task ids named per failure.
const MAX_TASK_IDS: usize = 3;

/// The facts of container `name` in `local`'s task definition.
fn container_facts(c: &ContainerDefinition) -> ContainerFacts {
    ContainerFacts {
        name: c.name().unwrap_or_default().to_string(),
        image: c.image().unwrap_or_default().to_string(),
        memory: c.memory(),
        memory_reservation: c.memory_reservation(),
        health_check: c.health_check().map(|h| HealthCheckFacts {
            command: h.command().to_vec(),
            interval: h.interval().unwrap_or(30),
            retries: h.retries().unwrap_or(3),
            start_period: h.start_period().unwrap_or(0),
        }),
        secrets: c
            .secrets()
            .iter()
            .map(|s| s.value_from().to_string())
            .collect(),
    }
}

/// Explains the failures of our deployment (`deployment`): one [`Failure`] per distinct way
/// its tasks failed, each with its log tail (`log_lines`, 0: none) and diagnosis.
pub(crate) async fn explain(
    clients: &Clients,
    local: &Local,
    stopped: &[StoppedTask],
    deployment: &str,
    targets: &[TargetView],
    log_lines: usize,
) -> Vec<Failure> {
    let defs = local.task.container_definitions();
    let essential: Vec<String> = defs
        .iter()
        .filter(|c| c.essential().unwrap_or(true))
        .filter_map(|c| c.name().map(str::to_string))
        .collect();
    let mut out = Vec::new();
    for g in group(stopped, deployment, &essential)
        .into_iter()
        .take(MAX_FAILURES)
    {
        let def = defs
            .iter()
            .find(|c| c.name().is_some() && c.name().map(str::to_string) == g.container);
        let first = g.tasks[0];
        let task_id = short_arn(&first.task_arn).to_string();
        let mut ev = Evidence {
            stop_code: g.stop_code.clone(),
            stopped_reason: g.reason.clone(),
            container_reason: g.container_reason.clone(),
            exit_code: g.exit_code,
            container: def.map(container_facts),
            task_memory: local.task.memory().map(str::to_string),
            execution_role: local.task.execution_role_arn().map(str::to_string),
            lived: first
                .lived_ms
                .filter(|ms| *ms >= 0)
                .map(|ms| Duration::from_millis(ms as u64)),
            ..Evidence::default()
        };
        if g.reason.contains("CannotPullContainerError")
            || g.container_reason
                .as_deref()
                .is_some_and(|r| r.contains("CannotPullContainerError"))
        {
            ev.image_in_ecr = image_in_ecr(clients, def).await;
        }
        if g.reason.contains("ELB health checks") {
            ev.target = Some(target_facts(clients, local, &g.reason, targets).await);
        }
        let log = match def {
            _ if log_lines == 0 => Log {
                unavailable: Some("--log-lines 0".into()),
                ..Log::default()
            },
            Some(c) => {
                let started = g.stop_code.as_deref() != Some("TaskFailedToStart");
                tail(clients, local, c, &task_id, log_lines, started).await
            }
            None => Log {
                unavailable: Some("the container is not in the task definition".into()),
                ..Log::default()
            },
        };
        let mut diagnosis = diagnose(&ev);
        if let Some(d) = diagnosis.as_mut() {
            d.at = place(
                local,
                d,
                def.and_then(|c| defs.iter().position(|x| std::ptr::eq(x, c))),
                &ev,
            );
        }
        out.push(Failure {
            tasks: g.tasks.len(),
            task_ids: g
                .tasks
                .iter()
                .take(MAX_TASK_IDS)
                .map(|t| short_arn(&t.task_arn).to_string())
                .collect(),
            container: g.container.clone(),
            exit_code: g.exit_code,
            stop_code: g.stop_code.clone(),
            stopped_reason: Untrusted::new(g.reason.clone()),
            container_reason: g.container_reason.clone().map(Untrusted::new),
            diagnosis,
            log,
        });
    }
    out
}

/// The definition line diagnosis `d` is about, from the rendered files (`local`'s documents).
fn place(local: &Local, d: &Diagnosis, container: Option<usize>, ev: &Evidence) -> Option<Place> {
    let facts = ev.container.as_ref();
    let secret = facts.and_then(|c| {
        c.secrets
            .iter()
            .position(|v| d.summary.contains(v.as_str()))
    });
    let has_memory = facts.and_then(|c| c.memory).is_some();
    let (doc, pointer) = match pointer_for(d.cause, container, has_memory, secret)? {
        Pointer::Task(p) => (local.task_doc.as_ref()?, p),
        Pointer::Service(p) => (local.service_doc.as_ref()?, p),
    };
    let at = doc.locate(&pointer);
    Some(Place {
        file: at.path.display().to_string(),
        line: at.line,
        col: at.col,
    })
}

/// Whether ECR holds the container's image (None: not an ECR image, or the read failed).
async fn image_in_ecr(clients: &Clients, def: Option<&ContainerDefinition>) -> Option<bool> {
    let image = crate::aws::ecr::EcrImage::parse(def?.image()?)?;
    clients
        .image_manifest(&image)
        .await
        .ok()
        .map(|m| m.is_some())
}

/// The target group a reason "Task failed ELB health checks in (target-group ARN)" names, our
/// last unhealthy target there, and its health check.
async fn target_facts(
    clients: &Clients,
    local: &Local,
    reason: &str,
    targets: &[TargetView],
) -> TargetFacts {
    let named = reason
        .split_once("(target-group ")
        .and_then(|(_, r)| r.split_once(')'))
        .map(|(arn, _)| arn.trim().to_string());
    let seen = named
        .as_ref()
        .and_then(|arn| targets.iter().find(|t| &t.target_group_arn == arn))
        .or_else(|| targets.first());
    let tg = named.or_else(|| seen.map(|t| t.target_group_arn.clone()));
    let lbs = local
        .service
        .as_ref()
        .map(|s| s.load_balancers().to_vec())
        .unwrap_or_default();
    let container_port = lbs
        .iter()
        .find(|l| tg.is_some() && l.target_group_arn() == tg.as_deref())
        .or_else(|| lbs.first())
        .and_then(|l| l.container_port());
    let health_check = match &tg {
        Some(arn) => clients.target_group_health_check(arn).await.ok().flatten(),
        None => None,
    };
    let (mut reason, mut description) = (
        seen.and_then(|t| t.reason.clone()),
        seen.and_then(|t| t.description.clone()),
    );
    // The watch may not have caught one of ours unhealthy (the task stopped between two polls):
    // an unhealthy target of the group now (the failed deployment's replacements) tells.
    if let (None, Some(arn)) = (&reason, &tg) {
        let now = clients
            .describe_target_health(arn)
            .await
            .unwrap_or_default();
        if let Some(h) = now
            .iter()
            .filter_map(|d| d.target_health())
            .find(|h| h.state().map(|s| s.as_str()) == Some("unhealthy") && h.reason().is_some())
        {
            reason = h.reason().map(|r| r.as_str().to_string());
            description = h.description().map(crate::untrusted::one_line);
        }
    }
    // Else ECS's service event: "(task ID) (port P) is unhealthy in (target-group ARN) due
    // to (reason DESCRIPTION)".
    if reason.is_none() {
        let events = clients
            .describe_services(
                &local.config.cluster,
                &[local.service_name().unwrap_or_default().to_string()],
            )
            .await
            .ok()
            .and_then(|mut v| v.pop().flatten())
            .map(|s| s.events().to_vec())
            .unwrap_or_default();
        if let Some(d) = events
            .iter()
            .filter_map(|e| e.message())
            .filter(|m| m.contains("is unhealthy in"))
            .find_map(|m| m.split_once("due to (reason ").map(|(_, r)| r))
            .map(|r| r.trim_end_matches('.').trim_end_matches(')').to_string())
        {
            reason = Some(reason_code_of(&d).to_string());
            description = Some(crate::untrusted::one_line(&d));
        }
    }
    TargetFacts {
        reason,
        description,
        health_check,
        container_port,
    }
}

/// The target health reason code an ELB description stands for (the descriptions
/// DescribeTargetHealth gives, which ECS quotes in its service events).
fn reason_code_of(description: &str) -> &'static str {
    if description.contains("with these codes") {
        "Target.ResponseCodeMismatch"
    } else if description.contains("timed out") {
        "Target.Timeout"
    } else {
        "Target.FailedHealthChecks"
    }
}

/// The last `n` lines of container `c`'s awslogs stream in task `task_id`, secret values
/// masked; or why they cannot be read (a task that failed to start has no stream: said so).
async fn tail(
    clients: &Clients,
    local: &Local,
    c: &ContainerDefinition,
    task_id: &str,
    n: usize,
    started: bool,
) -> Log {
    let (group, prefix) = match super::task::awslogs_of(c, clients.region()) {
        Ok(gp) => gp,
        Err(why) => {
            return Log {
                unavailable: Some(format!("logs not reachable: {why}")),
                ..Log::default()
            };
        }
    };
    let stream = format!("{prefix}/{}/{task_id}", c.name().unwrap_or_default());
    let mut log = Log {
        group: Some(group.clone()),
        stream: Some(stream.clone()),
        ..Log::default()
    };
    match clients.tail_log_events(&group, &stream, n).await {
        LogTail::Lines(lines) => {
            log.lines = lines
                .into_iter()
                .map(|(_, m)| Untrusted::new(local.secrets.mask(m.trim_end_matches(['\n', '\r']))))
                .collect();
        }
        LogTail::Missing if !started => {
            log.unavailable = Some(format!(
                "no log: the task failed to start, so its container wrote nothing to {stream}"
            ));
        }
        LogTail::Missing => {
            // Which one is missing: the group (never created) or the stream (nothing shipped).
            log.unavailable = Some(match clients.log_group_exists(&group).await {
                Ok(false) => format!(
                    "logs not reachable: the log group {group} does not exist (create it, or set awslogs-create-group)"
                ),
                Ok(true) => format!(
                    "logs not reachable: no stream {stream} in {group} (the container shipped nothing)"
                ),
                Err(_) => format!(
                    "logs not reachable: CloudWatch Logs has no group {group} or no stream {stream}"
                ),
            });
        }
        LogTail::Denied => {
            log.unavailable = Some(format!(
                "logs not reachable: AccessDenied reading {group} (cortado's role needs logs:GetLogEvents on it)"
            ));
        }
        LogTail::Failed(why) => {
            log.unavailable = Some(format!("logs not reachable: GetLogEvents failed ({why})"));
        }
    }
    log
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn elb_descriptions_map_to_reason_codes() {
        assert_eq!(
            reason_code_of("Health checks failed with these codes: [404]"),
            "Target.ResponseCodeMismatch"
        );
        assert_eq!(reason_code_of("Request timed out"), "Target.Timeout");
        assert_eq!(
            reason_code_of("Health checks failed"),
            "Target.FailedHealthChecks"
        );
    }
}
