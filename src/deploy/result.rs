//! The one result of an engine operation: a [`ServiceResult`] per service, gathered in a
//! [`RunResult`]. Text, JSON, GitHub step outputs, the job summary and the exit code are all
//! views of it (`report::result`); the event stream is for live progress only.
//!
//! Receives what the engine decided and observed; hands on plain, serializable data.

use std::time::Duration;

use serde::Serialize;
use serde_json::{Value, json};

use super::core::diagnosis::Failure;
use super::core::outcome::{RunOutcome, severity};
use super::core::verdict::{StoppedTask, task_failed};
use super::watch::Journey;
use crate::error::{Error, ExitCode, Result};
use crate::plan::ServicePlan;
use crate::untrusted::Untrusted;

/// The engine operation a result comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Operation {
    Deploy,
    Wait,
    Rollback,
    Scale,
    Continue,
}

impl Operation {
    pub fn name(self) -> &'static str {
        match self {
            Operation::Deploy => "deploy",
            Operation::Wait => "wait",
            Operation::Rollback => "rollback",
            Operation::Scale => "scale",
            Operation::Continue => "continue",
        }
    }
}

/// A stop reason of our deployment's tasks and how often it occurred.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StopCount {
    pub reason: Untrusted,
    pub count: usize,
}

/// What a rollback did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RollbackReport {
    /// How: "StopServiceDeployment ROLLBACK", "UpdateService to the previous revision",
    /// "following the rollback ECS started".
    pub method: String,
    /// The revision it returns to, when known.
    pub to_task_definition_arn: Option<String>,
    /// Why that revision: which deployment of ECS's record vouches for it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// Whether the earlier revision serves (as `--wait-rollback` asks).
    pub done: bool,
    pub detail: String,
    /// The deployment that served when cortado stopped following the rollback.
    pub deployment_id: Option<String>,
    /// From the rollback's start to its end (or to giving up on it).
    pub seconds: f64,
}

/// The result of one operation on one service.
#[derive(Debug, Clone, Serialize)]
pub struct ServiceResult {
    pub operation: Operation,
    pub cluster: String,
    pub service: String,
    #[serde(skip)]
    pub outcome: RunOutcome,
    /// One sentence: what happened and why.
    pub detail: String,
    /// The task definition this operation rolled out (deploy, scale, wait) or returned to
    /// (rollback).
    pub task_definition_arn: Option<String>,
    /// Whether this run registered `task_definition_arn`.
    pub registered: bool,
    /// The task definition the service ran before.
    pub previous_task_definition_arn: Option<String>,
    /// The deployment this operation started or followed.
    pub deployment_id: Option<String>,
    pub service_deployment_arn: Option<String>,
    /// Whole operation, from its first call to the verdict (and rollback).
    #[serde(rename = "duration_seconds", serialize_with = "secs")]
    pub duration: Duration,
    /// Reasons our deployment's tasks stopped with, most frequent first (not scale-in).
    #[serde(rename = "stopped_reasons")]
    pub stopped_tasks: Vec<StopCount>,
    pub rollback: Option<RollbackReport>,
    /// Why our deployment's tasks failed: one entry per distinct failure, with the container,
    /// exit code, stop code and reason, the log tail and a diagnosis.
    pub failures: Vec<Failure>,
    /// Stages, traffic steps and gates of a blue/green, canary or linear deployment.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub journey: Option<Journey>,
    #[serde(skip)]
    pub plan: Option<ServicePlan>,
}

fn secs<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64((d.as_secs_f64() * 1000.0).round() / 1000.0)
}

impl ServiceResult {
    /// A result with nothing decided yet.
    pub fn new(operation: Operation, cluster: &str, service: &str) -> Self {
        ServiceResult {
            operation,
            cluster: cluster.to_string(),
            service: service.to_string(),
            outcome: RunOutcome::NotFollowed,
            detail: String::new(),
            task_definition_arn: None,
            registered: false,
            previous_task_definition_arn: None,
            deployment_id: None,
            service_deployment_arn: None,
            duration: Duration::ZERO,
            stopped_tasks: Vec::new(),
            rollback: None,
            failures: Vec::new(),
            journey: None,
            plan: None,
        }
    }

    /// The task definition the service runs now, as far as this operation knows.
    pub fn serving_task_definition_arn(&self) -> Option<&str> {
        match (&self.outcome, &self.rollback) {
            (_, Some(r)) if r.done => r
                .to_task_definition_arn
                .as_deref()
                .or(self.previous_task_definition_arn.as_deref()),
            (RunOutcome::Succeeded | RunOutcome::NoChange, _) => {
                self.task_definition_arn.as_deref()
            }
            (RunOutcome::DryRun, _) => self.previous_task_definition_arn.as_deref(),
            _ => None,
        }
    }

    /// The JSON form (the `services[]` entries of `{"event": "result"}`).
    pub fn json(&self) -> Value {
        let mut v = serde_json::to_value(self).unwrap_or(Value::Null);
        if let Value::Object(m) = &mut v {
            m.insert("outcome".into(), json!(self.outcome.label()));
            m.insert("status".into(), json!(self.outcome.status()));
            m.insert("exit_code".into(), json!(self.outcome.exit_code() as u8));
            m.insert(
                "serving_task_definition_arn".into(),
                json!(self.serving_task_definition_arn()),
            );
            m.insert(
                "plan".into(),
                self.plan.as_ref().map_or(Value::Null, ServicePlan::json),
            );
        }
        v
    }
}

/// The results of one run of an operation, in the order of the configs.
#[derive(Debug, Clone)]
pub struct RunResult {
    pub operation: Operation,
    pub services: Vec<ServiceResult>,
    /// The services whose operation failed with an error instead of a result (an AWS error,
    /// a request their state does not allow): reported beside the others' results.
    pub errors: Vec<Error>,
}

impl RunResult {
    /// A run whose every service has a result.
    pub fn new(operation: Operation, services: Vec<ServiceResult>) -> Self {
        RunResult {
            operation,
            services,
            errors: Vec::new(),
        }
    }

    /// The run of `operation` from each service's result or error, in the order of the
    /// configs. An error for every service is the run's error (all their findings in one).
    pub fn gather(operation: Operation, each: Vec<Result<ServiceResult>>) -> Result<Self> {
        let (oks, errs): (Vec<_>, Vec<_>) = each.into_iter().partition(|r| r.is_ok());
        let services: Vec<ServiceResult> = oks.into_iter().filter_map(|r| r.ok()).collect();
        let mut errors: Vec<Error> = errs.into_iter().filter_map(|r| r.err()).collect();
        if services.is_empty() && !errors.is_empty() {
            let mut first = errors.remove(0);
            for e in errors {
                first.diagnostics.extend(e.diagnostics);
            }
            return Err(first);
        }
        Ok(RunResult {
            operation,
            services,
            errors,
        })
    }

    /// The worst outcome's exit code, the errors' included (success when there are no
    /// services).
    pub fn exit_code(&self) -> ExitCode {
        self.services
            .iter()
            .map(|s| s.outcome.exit_code())
            .chain(self.errors.iter().map(Error::exit_code))
            .max_by_key(|c| severity(*c))
            .unwrap_or(ExitCode::Success)
    }

    /// The worst outcome of the run.
    pub fn worst(&self) -> Option<&ServiceResult> {
        self.services.iter().max_by_key(|s| s.outcome.severity())
    }
}

/// The stop reasons of our deployment's failed tasks ([`super::core::verdict::task_failed`]), most
/// frequent first. Tasks ECS stopped as surplus ("Scaling activity initiated by ...") or
/// replaced did not fail and are not counted.
pub(crate) fn stop_counts(stopped: &[StoppedTask], deployment: &str) -> Vec<StopCount> {
    let mut counts: Vec<StopCount> = Vec::new();
    for t in stopped {
        if t.started_by.as_deref() != Some(deployment) || !task_failed(t) {
            continue;
        }
        let reason = t
            .stopped_reason
            .clone()
            .or_else(|| t.containers.iter().find_map(|c| c.1.clone()))
            .unwrap_or_else(|| "no reason given".into());
        match counts.iter_mut().find(|c| c.reason == reason) {
            Some(c) => c.count += 1,
            None => counts.push(StopCount {
                reason: reason.into(),
                count: 1,
            }),
        }
    }
    counts.sort_by_key(|c| std::cmp::Reverse(c.count));
    counts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_code_is_the_worst_outcome() {
        let mut a = ServiceResult::new(Operation::Deploy, "c", "a");
        a.outcome = RunOutcome::Succeeded;
        let mut b = ServiceResult::new(Operation::Deploy, "c", "b");
        b.outcome = RunOutcome::FailedRolledBack;
        let mut c = ServiceResult::new(Operation::Deploy, "c", "c");
        c.outcome = RunOutcome::TimedOut { rolled_back: false };
        let run = RunResult {
            operation: Operation::Deploy,
            services: vec![a.clone(), b.clone()],
            errors: Vec::new(),
        };
        assert_eq!(run.exit_code(), ExitCode::FailedRolledBack);
        let run = RunResult {
            operation: Operation::Deploy,
            services: vec![a, b, c],
            errors: Vec::new(),
        };
        assert_eq!(run.exit_code(), ExitCode::TimedOut);
        assert_eq!(run.worst().map(|s| s.service.as_str()), Some("c"));
    }

    #[test]
    fn json_carries_outcome_status_and_exit_code() {
        let mut r = ServiceResult::new(Operation::Deploy, "c", "web");
        r.outcome = RunOutcome::TimedOut { rolled_back: true };
        r.task_definition_arn = Some("td:2".into());
        r.previous_task_definition_arn = Some("td:1".into());
        r.rollback = Some(RollbackReport {
            method: "StopServiceDeployment ROLLBACK".into(),
            to_task_definition_arn: None,
            source: None,
            done: true,
            detail: "the service runs td:1 again".into(),
            deployment_id: None,
            seconds: 4.0,
        });
        r.duration = Duration::from_millis(1500);
        let j = r.json();
        assert_eq!(j["outcome"], "timed out, rolled back");
        assert_eq!(j["status"], "timed-out");
        assert_eq!(j["exit_code"], 6);
        assert_eq!(j["duration_seconds"], 1.5);
        assert_eq!(j["serving_task_definition_arn"], "td:1");
        assert_eq!(j["operation"], "deploy");
    }

    #[test]
    fn stop_counts_skip_other_deployments_and_scale_in() {
        let t = |by: &str, reason: &str| StoppedTask {
            task_arn: format!("{by}{reason}"),
            started_by: Some(by.into()),
            stopped_reason: Some(reason.into()),
            ..StoppedTask::default()
        };
        let tasks = vec![
            t("ecs-svc/2", "Essential container in task exited"),
            StoppedTask {
                task_arn: "b".into(),
                ..t("ecs-svc/2", "Essential container in task exited")
            },
            t(
                "ecs-svc/2",
                "Scaling activity initiated by (deployment ecs-svc/2)",
            ),
            StoppedTask {
                stop_code: Some("ServiceSchedulerInitiated".into()),
                ..t("ecs-svc/2", "Task replaced by deployment ecs-svc/3")
            },
            StoppedTask {
                stop_code: Some("TaskFailedToStart".into()),
                ..t("ecs-svc/2", "Timeout waiting for network interface")
            },
            t("ecs-svc/1", "CannotPullContainerError"),
            t("ecs-svc/2", "CannotPullContainerError"),
        ];
        let c = stop_counts(&tasks, "ecs-svc/2");
        assert_eq!(
            c,
            vec![
                StopCount {
                    reason: "Essential container in task exited".into(),
                    count: 2
                },
                StopCount {
                    reason: "Timeout waiting for network interface".into(),
                    count: 1
                },
                StopCount {
                    reason: "CannotPullContainerError".into(),
                    count: 1
                },
            ]
        );
    }
}
