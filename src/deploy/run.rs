//! One deploy of one service, top to bottom:
//!
//!   decide (compare local with live) -> apply (register if needed, ONE Create/UpdateService)
//!   -> watch our deployment -> verdict -> roll back on failure -> [`Report`].
//!
//! Receives a validated [`Local`] and connected clients; emits events; hands on a report
//! whose outcome maps to the exit code. The same pieces serve `rollback` and `wait`.

use std::time::Duration;

use serde_json::Value;
use tokio::sync::watch as channel;
use tokio::time::Instant;

use super::event::{Emitter, Event};
use super::local::{Local, OnCancel};
use super::observe::{AwsObserver, deployment_views};
use super::verdict::{Failure, Ours, short_arn};
use super::watch::{Cadence, Outcome, watch};
use crate::aws::types::ecs::{Service, TaskDefinitionStatus};
use crate::aws::{Clients, ServiceDeploymentStop, ServiceUpdate};
use crate::error::{Diagnostic, Error, ErrorKind, ExitCode, Result};
use crate::plan::ServicePlan;

/// Flags of `cortado deploy`.
#[derive(Debug, Clone, Default)]
pub struct DeployFlags {
    pub dry_run: bool,
    pub no_wait: bool,
    pub skip_task_definition: bool,
    pub latest_task_definition: bool,
    pub revision: Option<i32>,
    pub force_register: bool,
    pub force_new_deployment: bool,
    pub tasks: Option<i32>,
    pub no_update_service: bool,
    pub no_rollback: bool,
}

/// Which task definition the deploy rolls out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TaskChoice {
    /// Register the rendered definition as a new revision.
    Register,
    /// Use an existing revision (unchanged, `--skip-task-definition`, `--revision`, ...).
    Existing(String),
}

/// What the deploy will do, decided from local and live state.
#[derive(Debug, Clone)]
pub struct Decision {
    pub plan: ServicePlan,
    pub choice: TaskChoice,
    /// The live service, when it exists.
    pub live: Option<Service>,
    /// The task definition the service runs before the deploy.
    pub previous_task_definition: Option<String>,
    /// Service attributes to send with the update (None: none changed).
    pub update_attributes: bool,
    pub desired_count: Option<i32>,
}

impl Decision {
    /// Whether an UpdateService/CreateService call is needed at all.
    pub fn needs_service_call(&self, flags: &DeployFlags) -> bool {
        self.live.is_none()
            || self.choice == TaskChoice::Register
            || matches!(&self.choice, TaskChoice::Existing(a) if Some(a) != self.previous_task_definition.as_ref())
            || self.update_attributes
            || flags.force_new_deployment
            || (self.desired_count.is_some()
                && self.desired_count != self.live.as_ref().map(|s| s.desired_count()))
    }
}

/// How a deploy (or a rollback) ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunOutcome {
    Succeeded,
    /// Nothing differed: no API write was made.
    NoChange,
    /// `--no-wait` or `--no-update-service`: started, not followed.
    NotFollowed,
    DryRun,
    FailedRolledBack,
    FailedNotRolledBack,
    RollbackFailed,
    TimedOut {
        rolled_back: bool,
    },
    Cancelled,
    /// The deployment could not be followed (the API kept failing); it goes on without us.
    Lost,
}

impl RunOutcome {
    pub fn exit_code(&self) -> ExitCode {
        match self {
            RunOutcome::Succeeded
            | RunOutcome::NoChange
            | RunOutcome::NotFollowed
            | RunOutcome::DryRun => ExitCode::Success,
            RunOutcome::FailedRolledBack => ExitCode::FailedRolledBack,
            RunOutcome::FailedNotRolledBack => ExitCode::FailedNotRolledBack,
            RunOutcome::RollbackFailed => ExitCode::RollbackFailed,
            RunOutcome::TimedOut { .. } => ExitCode::TimedOut,
            RunOutcome::Cancelled => ExitCode::Cancelled,
            RunOutcome::Lost => ExitCode::Aws,
        }
    }

    pub fn label(&self) -> &'static str {
        match self {
            RunOutcome::Succeeded => "succeeded",
            RunOutcome::NoChange => "no change",
            RunOutcome::NotFollowed => "started (not followed)",
            RunOutcome::DryRun => "dry run",
            RunOutcome::FailedRolledBack => "failed, rolled back",
            RunOutcome::FailedNotRolledBack => "failed, not rolled back",
            RunOutcome::RollbackFailed => "failed, and the rollback failed",
            RunOutcome::TimedOut { rolled_back: true } => "timed out, rolled back",
            RunOutcome::TimedOut { rolled_back: false } => "timed out",
            RunOutcome::Cancelled => "cancelled",
            RunOutcome::Lost => "not followed: the API kept failing",
        }
    }
}

/// The end of one service's deploy.
#[derive(Debug, Clone)]
pub struct Report {
    pub cluster: String,
    pub service: String,
    pub outcome: RunOutcome,
    pub detail: String,
    pub task_definition_arn: Option<String>,
    pub previous_task_definition: Option<String>,
    pub deployment_id: Option<String>,
    pub duration: Duration,
    /// Reasons our tasks stopped with, most frequent first.
    pub stopped_reasons: Vec<(String, usize)>,
    pub plan: Option<ServicePlan>,
}

/// Compares the rendered definitions with what runs and decides what to do. Read-only.
pub async fn decide(clients: &Clients, local: &Local, flags: &DeployFlags) -> Result<Decision> {
    let cluster = &local.config.cluster;
    let service = local.service_name()?;
    let live = clients.describe_service(cluster, service).await?;
    let previous = live
        .as_ref()
        .and_then(|s| s.task_definition())
        .map(str::to_string);
    let live_task = match &previous {
        Some(arn) => Some(clients.describe_task_definition(arn).await?),
        None => None,
    };
    let live_task_json = match &live_task {
        Some((td, tags)) => Some(crate::aws::json::task_definition_json(td, tags)?),
        None => None,
    };
    let family = local.task.family().unwrap_or_default().to_string();
    let choice = if flags.skip_task_definition {
        match &previous {
            Some(p) => TaskChoice::Existing(p.clone()),
            None => {
                return Err(Error::msg(format!(
                    "--skip-task-definition: service {service} does not exist, so there is no task definition to keep"
                ))
                .with_hint("deploy once without --skip-task-definition to create the service"));
            }
        }
    } else if let Some(rev) = flags.revision {
        let (td, _) = clients
            .describe_task_definition(&format!("{family}:{rev}"))
            .await?;
        TaskChoice::Existing(td.task_definition_arn().unwrap_or_default().to_string())
    } else if flags.latest_task_definition {
        let arns = clients
            .list_task_definitions(&family, TaskDefinitionStatus::Active)
            .await?;
        match latest_revision(&arns) {
            Some(a) => TaskChoice::Existing(a.to_string()),
            None => {
                return Err(Error::msg(format!(
                    "--latest-task-definition: family {family} has no ACTIVE revision"
                ))
                .with_hint("register one first (cortado register), or deploy without the flag"));
            }
        }
    } else if flags.force_register {
        TaskChoice::Register
    } else {
        match &live_task_json {
            Some(live)
                if !crate::diff::task_definition_needs_new_revision(&local.task_json, live) =>
            {
                TaskChoice::Existing(previous.clone().unwrap_or_default())
            }
            Some(_) => TaskChoice::Register,
            None => {
                // No service yet: reuse the family's newest revision when it is identical.
                let arns = clients
                    .list_task_definitions(&family, TaskDefinitionStatus::Active)
                    .await?;
                match latest_revision(&arns) {
                    Some(latest) => {
                        let (td, tags) = clients.describe_task_definition(latest).await?;
                        let json = crate::aws::json::task_definition_json(&td, &tags)?;
                        if crate::diff::task_definition_needs_new_revision(&local.task_json, &json)
                        {
                            TaskChoice::Register
                        } else {
                            TaskChoice::Existing(latest.to_string())
                        }
                    }
                    None => TaskChoice::Register,
                }
            }
        }
    };
    let live_service_json = match &live {
        Some(s) => Some(crate::aws::json::service_definition_json(s)?),
        None => None,
    };
    let (service_after, service_before) = match (&local.service_json, &live_service_json) {
        (Some(l), Some(r)) => {
            let (a, b) = crate::diff::service_for_compare(l, r, &local.config.ignore_tags);
            (Some(a), Some(b))
        }
        (Some(l), None) => (
            Some(crate::diff::service_for_compare(l, &Value::Null, &local.config.ignore_tags).0),
            None,
        ),
        (None, _) => (None, None),
    };
    let update_attributes =
        live.is_some() && service_after.is_some() && service_after != service_before;
    let desired_count = flags
        .tasks
        .or_else(|| local.service.as_ref().and_then(|s| s.desired_count()));
    let plan = ServicePlan {
        cluster: cluster.clone(),
        service: service.to_string(),
        region: clients.region().to_string(),
        task_before: live_task_json
            .as_ref()
            .map(crate::diff::task_definition_for_compare),
        task_after: crate::diff::task_definition_for_compare(&local.task_json),
        service_before,
        service_after,
        new_revision: choice == TaskChoice::Register,
        create_service: live.is_none(),
        desired_count: (live.as_ref().map(|s| s.desired_count()), desired_count),
        strategy: strategy_of(local, live.as_ref()),
    };
    Ok(Decision {
        plan,
        choice,
        live,
        previous_task_definition: previous,
        update_attributes,
        desired_count,
    })
}

/// The rollout the deploy will use: the file's deployment controller or strategy, else the
/// live service's, else ECS's default (ROLLING).
fn strategy_of(local: &Local, live: Option<&Service>) -> String {
    let file = local.service.as_ref();
    let controller = file
        .and_then(|s| s.deployment_controller())
        .or_else(|| live.and_then(|s| s.deployment_controller()))
        .map(|c| c.r#type().as_str().to_string());
    if let Some(c) = controller.filter(|c| c != "ECS") {
        return c;
    }
    file.and_then(|s| s.deployment_configuration())
        .or_else(|| live.and_then(|s| s.deployment_configuration()))
        .and_then(|d| d.strategy())
        .map(|s| s.as_str().to_string())
        .unwrap_or_else(|| "ROLLING".into())
}

/// The highest revision among task definition ARNs.
fn latest_revision(arns: &[String]) -> Option<&str> {
    arns.iter()
        .max_by_key(|a| {
            a.rsplit(':')
                .next()
                .and_then(|r| r.parse::<u64>().ok())
                .unwrap_or(0)
        })
        .map(String::as_str)
}

/// What apply started.
#[derive(Debug, Clone)]
pub struct Started {
    pub ours: Ours,
    pub created: bool,
}

/// Registers (when needed) and makes the ONE Create/UpdateService call. Returns the task
/// definition ARN rolled out and the deployment started (None when no call was needed).
pub async fn apply(
    clients: &Clients,
    local: &Local,
    decision: &Decision,
    flags: &DeployFlags,
    emitter: &Emitter,
) -> Result<(String, Option<Started>)> {
    let cluster = &local.config.cluster;
    let service = local.service_name()?;
    let td_arn = match &decision.choice {
        TaskChoice::Register => {
            let td = clients.register_task_definition(local.task.clone()).await?;
            let arn = td.task_definition_arn().unwrap_or_default().to_string();
            emitter.emit(Event::Registered {
                task_definition_arn: arn.clone(),
            });
            arn
        }
        TaskChoice::Existing(arn) => {
            emitter.emit(Event::RegistrationSkipped {
                task_definition_arn: arn.clone(),
            });
            arn.clone()
        }
    };
    if flags.no_update_service || !decision.needs_service_call(flags) {
        return Ok((td_arn, None));
    }
    let (svc, created) = match &decision.live {
        None => {
            let Some(input) = local.service.clone() else {
                return Err(Error::msg(format!(
                    "service {service} does not exist in cluster {cluster}, and the config has no service_definition to create it from"
                ))
                .with_hint("add `service_definition:` to the config, or create the service first"));
            };
            let mut input = input;
            if let Some(n) = flags.tasks {
                input.desired_count = Some(n);
            }
            (
                clients
                    .create_service(cluster, service, &td_arn, input)
                    .await?,
                true,
            )
        }
        Some(_) => {
            let update = ServiceUpdate {
                cluster: cluster.clone(),
                service: service.to_string(),
                task_definition: Some(td_arn.clone()),
                desired_count: decision.desired_count,
                force_new_deployment: flags.force_new_deployment,
                definition: if decision.update_attributes {
                    local.service.clone()
                } else {
                    None
                },
            };
            let (_, not_updatable) = update.to_input()?;
            if !not_updatable.is_empty() {
                emitter.emit(Event::Warning {
                    message: format!(
                        "UpdateService cannot change {}; recreate the service to change them",
                        not_updatable.join(", ")
                    ),
                });
            }
            (clients.update_service(&update).await?, false)
        }
    };
    let ours = ours_from(&svc, &td_arn)?;
    emitter.emit(Event::DeploymentStarted {
        service: service.to_string(),
        deployment_id: ours.deployment_id.clone(),
        service_deployment_arn: ours.service_deployment_arn.clone(),
        task_definition_arn: td_arn.clone(),
        created,
    });
    Ok((td_arn, Some(Started { ours, created })))
}

/// Our deployment's handles from a Create/UpdateService answer: its PRIMARY deployment and
/// `currentServiceDeployment`.
pub fn ours_from(svc: &Service, td_arn: &str) -> Result<Ours> {
    let primary = deployment_views(svc)
        .into_iter()
        .find(|d| d.status == "PRIMARY")
        .ok_or_else(|| {
            Error::new(
                ErrorKind::Aws,
                Diagnostic::error("the service answer names no PRIMARY deployment")
                    .hint("run `cortado status` to see the service; this is unexpected from ECS"),
            )
        })?;
    Ok(Ours {
        deployment_id: primary.id,
        service_deployment_arn: svc.current_service_deployment().map(str::to_string),
        task_definition_arn: td_arn.to_string(),
    })
}

/// Everything `follow` needs besides the deployment.
pub struct Follow<'a> {
    pub clients: &'a Clients,
    pub cluster: &'a str,
    pub service: &'a str,
    pub emitter: &'a Emitter,
    pub cadence: &'a Cadence,
    pub cancel: channel::Receiver<bool>,
}

/// Decides what a watch outcome means for one service and rolls back when it failed (if
/// allowed, and unless ECS already does or the deployment is no longer ours).
pub async fn settle(
    f: &Follow<'_>,
    local: &Local,
    started: &Started,
    previous: Option<&str>,
    rollback_allowed: bool,
    outcome: Outcome,
    deadline: Instant,
) -> (RunOutcome, String) {
    let (failure_text, failure) = match &outcome {
        Outcome::Succeeded => return (RunOutcome::Succeeded, "deployment completed".into()),
        Outcome::Failed(fl) => (fl.to_string(), Some(fl.clone())),
        Outcome::TimedOut { last } => (
            format!("no verdict before the deadline (last: {last})"),
            None,
        ),
        Outcome::Cancelled { last } => (format!("cancelled (last: {last})"), None),
        // Without observations there is nothing safe to do: report, do not act blindly.
        Outcome::Lost { error } => {
            return (
                RunOutcome::Lost,
                format!("cannot follow the deployment, it continues without cortado: {error}"),
            );
        }
    };
    let failure_text = failure_text.trim_end_matches('.').to_string();
    let cancelled = matches!(outcome, Outcome::Cancelled { .. });
    let wants_rollback = if cancelled {
        local.rollout.on_cancel == OnCancel::Rollback
    } else {
        rollback_allowed
    };
    // Failures ECS already rolled back are followed, not fought.
    let ecs_rolled_back = matches!(failure, Some(Failure::RolledBack { .. }));
    let not_ours_to_undo = matches!(
        failure,
        Some(Failure::Superseded { .. }) | Some(Failure::ServiceGone { .. })
    );
    // A service this deploy created has no earlier revision to return to, whatever ECS tries.
    let nothing_to_return_to = started.created && previous.is_none();
    if not_ours_to_undo || nothing_to_return_to || (!wants_rollback && !ecs_rolled_back) {
        let why = if not_ours_to_undo {
            "not rolled back: the service is no longer ours to change"
        } else if nothing_to_return_to {
            "not rolled back: this deploy created the service, so there is no previous revision to return to"
        } else {
            "rollback disabled"
        };
        let o = match outcome {
            Outcome::TimedOut { .. } => RunOutcome::TimedOut { rolled_back: false },
            Outcome::Cancelled { .. } => RunOutcome::Cancelled,
            _ => RunOutcome::FailedNotRolledBack,
        };
        return (o, format!("{failure_text}; {why}"));
    }
    // Cancelled runs must end promptly: request the rollback, follow it briefly. The
    // cancellation that brought us here must not also cut that short: the rollback is
    // followed with a receiver that stays quiet (the signal fires once; the follow is
    // bounded by its deadline).
    let (_quiet_tx, quiet_rx) = channel::channel(false);
    let rollback_follow = Follow {
        cancel: if cancelled {
            quiet_rx
        } else {
            f.cancel.clone()
        },
        ..*f
    };
    let rollback_deadline = if cancelled {
        Instant::now() + Duration::from_secs(8)
    } else {
        Instant::now()
            + deadline
                .saturating_duration_since(Instant::now())
                .max(Duration::from_secs(300))
    };
    let result = roll_back(
        &rollback_follow,
        &started.ours,
        previous,
        ecs_rolled_back,
        rollback_deadline,
    )
    .await;
    let o = match (&outcome, &result) {
        (Outcome::Cancelled { .. }, _) => RunOutcome::Cancelled,
        (_, RollbackResult::Done(_)) if matches!(outcome, Outcome::TimedOut { .. }) => {
            RunOutcome::TimedOut { rolled_back: true }
        }
        (_, RollbackResult::Done(_)) => RunOutcome::FailedRolledBack,
        (Outcome::TimedOut { .. }, RollbackResult::NotPossible(_)) => {
            RunOutcome::TimedOut { rolled_back: false }
        }
        (_, RollbackResult::NotPossible(_)) => RunOutcome::FailedNotRolledBack,
        (_, RollbackResult::Failed(_) | RollbackResult::Unsettled(_)) => RunOutcome::RollbackFailed,
    };
    let rollback_text = match &result {
        RollbackResult::Unsettled(s) if cancelled => {
            format!("rollback requested, still in progress when cortado stopped following it ({s})")
        }
        r => r.text(),
    };
    (o, format!("{failure_text}; {rollback_text}"))
}

/// How a rollback went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RollbackResult {
    Done(String),
    NotPossible(String),
    Failed(String),
    /// Requested, but not settled by the deadline: still in progress, or stuck.
    Unsettled(String),
}

impl RollbackResult {
    pub fn text(&self) -> String {
        match self {
            RollbackResult::Done(s) => format!("rolled back: {s}"),
            RollbackResult::NotPossible(s) => format!("not rolled back: {s}"),
            RollbackResult::Failed(s) | RollbackResult::Unsettled(s) => {
                format!("ROLLBACK FAILED: {s}")
            }
        }
    }
}

/// Rolls back a failed deployment of ours. Prefers StopServiceDeployment ROLLBACK while the
/// deployment is in flight; else updates the service to the previous task definition; when
/// ECS already rolls back, only follows it.
pub async fn roll_back(
    f: &Follow<'_>,
    ours: &Ours,
    previous: Option<&str>,
    ecs_already: bool,
    deadline: Instant,
) -> RollbackResult {
    let service = f.service.to_string();
    let method;
    if ecs_already {
        method = "following the rollback ECS started".to_string();
    } else if let Some(arn) = &ours.service_deployment_arn {
        method = "StopServiceDeployment ROLLBACK".to_string();
        if let Err(e) = f
            .clients
            .stop_service_deployment(arn, ServiceDeploymentStop::Rollback)
            .await
        {
            // The deployment may have ended meanwhile; fall back to the previous revision.
            f.emitter.emit(Event::Warning {
                message: format!(
                    "StopServiceDeployment failed ({}); updating to the previous revision instead",
                    first_line(&e)
                ),
            });
            return update_to_previous(f, ours, previous, deadline).await;
        }
    } else {
        return update_to_previous(f, ours, previous, deadline).await;
    }
    f.emitter.emit(Event::RollbackStarted {
        service: service.clone(),
        method: method.clone(),
        to_task_definition: previous.map(str::to_string),
    });
    let r = settle_on_other_revision(f, ours, deadline).await;
    emit_finished(f, &r);
    r
}

async fn update_to_previous(
    f: &Follow<'_>,
    ours: &Ours,
    previous: Option<&str>,
    deadline: Instant,
) -> RollbackResult {
    let Some(prev) = previous.filter(|p| *p != ours.task_definition_arn) else {
        let why = "there is no previous task definition (the service was created by this deploy)";
        f.emitter.emit(Event::Warning {
            message: format!("cannot roll back {}: {why}", f.service),
        });
        return RollbackResult::NotPossible(why.into());
    };
    f.emitter.emit(Event::RollbackStarted {
        service: f.service.to_string(),
        method: "UpdateService to the previous revision".into(),
        to_task_definition: Some(prev.to_string()),
    });
    let update = ServiceUpdate {
        cluster: f.cluster.to_string(),
        service: f.service.to_string(),
        task_definition: Some(prev.to_string()),
        ..ServiceUpdate::default()
    };
    let svc = match f.clients.update_service(&update).await {
        Ok(s) => s,
        Err(e) => {
            let r = RollbackResult::Failed(format!("UpdateService failed: {}", first_line(&e)));
            emit_finished(f, &r);
            return r;
        }
    };
    let rollback_ours = match ours_from(&svc, prev) {
        Ok(o) => o,
        Err(e) => {
            let r = RollbackResult::Failed(first_line(&e));
            emit_finished(f, &r);
            return r;
        }
    };
    let mut observer = AwsObserver::new(f.clients, f.cluster);
    let outcomes = watch(
        &mut observer,
        vec![(f.service.to_string(), rollback_ours)],
        &super::verdict::FastFail::default().into(),
        f.cadence,
        deadline,
        f.cancel.clone(),
        f.emitter,
    )
    .await;
    let r = match outcomes.get(f.service) {
        Some(Outcome::Succeeded) => {
            RollbackResult::Done(format!("the service runs {} again", short_arn(prev)))
        }
        Some(Outcome::Failed(fl)) => RollbackResult::Failed(fl.to_string()),
        Some(Outcome::TimedOut { last }) => {
            RollbackResult::Unsettled(format!("no verdict before the deadline ({last})"))
        }
        Some(Outcome::Cancelled { .. }) => {
            RollbackResult::Failed("cancelled while rolling back".into())
        }
        Some(Outcome::Lost { error }) => {
            RollbackResult::Failed(format!("cannot follow the rollback: {error}"))
        }
        None => RollbackResult::Failed("no verdict".into()),
    };
    emit_finished(f, &r);
    r
}

/// Waits until the service settles on a revision other than ours: one deployment left,
/// PRIMARY, COMPLETED, running = desired. Fails on a FAILED rollback deployment, a
/// ROLLBACK_FAILED service deployment, or the deadline.
async fn settle_on_other_revision(
    f: &Follow<'_>,
    ours: &Ours,
    deadline: Instant,
) -> RollbackResult {
    let mut cancel = f.cancel.clone();
    loop {
        let last = match f.clients.describe_service(f.cluster, f.service).await {
            Ok(Some(svc)) => {
                let ds = deployment_views(&svc);
                if let Some(arn) = &ours.service_deployment_arn
                    && let Ok(sds) = f
                        .clients
                        .describe_service_deployments(std::slice::from_ref(arn))
                        .await
                    && sds
                        .iter()
                        .any(|sd| sd.status().map(|s| s.as_str()) == Some("ROLLBACK_FAILED"))
                {
                    return RollbackResult::Failed("ECS reports ROLLBACK_FAILED".into());
                }
                match ds.as_slice() {
                    [d] if d.task_definition_arn != ours.task_definition_arn
                        && d.status == "PRIMARY"
                        && d.rollout_state.as_deref() != Some("FAILED")
                        && d.rollout_state.as_deref().is_none_or(|s| s == "COMPLETED")
                        && d.running == d.desired =>
                    {
                        return RollbackResult::Done(format!(
                            "the service runs {} again",
                            short_arn(&d.task_definition_arn)
                        ));
                    }
                    _ => {}
                }
                if let Some(p) = ds
                    .iter()
                    .find(|d| d.status == "PRIMARY" && d.id != ours.deployment_id)
                    && p.rollout_state.as_deref() == Some("FAILED")
                {
                    return RollbackResult::Failed(format!(
                        "the rollback deployment {} failed: {}",
                        p.id,
                        p.rollout_state_reason.clone().unwrap_or_default()
                    ));
                }
                ds.iter()
                    .map(|d| format!("{} {} {}/{}", d.id, d.status, d.running, d.desired))
                    .collect::<Vec<_>>()
                    .join(", ")
            }
            Ok(None) => return RollbackResult::Failed("the service disappeared".into()),
            Err(e) => first_line(&e),
        };
        if Instant::now() >= deadline {
            return RollbackResult::Unsettled(format!(
                "the rollback did not settle in time (last: {last})"
            ));
        }
        let wake = (Instant::now() + f.cadence.fast.max(Duration::from_millis(200))).min(deadline);
        tokio::select! {
            _ = tokio::time::sleep_until(wake) => {}
            _ = cancel.changed() => {
                if *cancel.borrow() {
                    return RollbackResult::Failed(format!("cancelled while the rollback was in progress (last: {last})"));
                }
            }
        }
    }
}

fn emit_finished(f: &Follow<'_>, r: &RollbackResult) {
    let (success, detail) = match r {
        RollbackResult::Done(s) => (true, s.clone()),
        RollbackResult::NotPossible(s)
        | RollbackResult::Failed(s)
        | RollbackResult::Unsettled(s) => (false, s.clone()),
    };
    f.emitter.emit(Event::RollbackFinished {
        service: f.service.to_string(),
        success,
        detail,
    });
}

fn first_line(e: &Error) -> String {
    e.diagnostics
        .first()
        .map(|d| d.message.clone())
        .unwrap_or_default()
}
