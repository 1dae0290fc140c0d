//! The ECS controller: services whose `deploymentController` is ECS, with its rolling,
//! blue/green, canary and linear strategies. Decide compares the rendered definitions with
//! what runs (read-only); apply registers when needed and makes the ONE Create/UpdateService
//! call; the run's watch polls the service through DescribeServices batches and judges by
//! ECS's rules (`core::verdict`); a rollback is planned by `core::rollback` and carried out
//! here (StopServiceDeployment or ContinueServiceDeployment with ROLLBACK, else UpdateService
//! to the revision before), and followed to its own verdict.
//!
//! Receives a validated [`Local`] and the run's [`Cx`]; hands on decisions, deployments to
//! follow and rollback ends. The helpers other controllers and commands share (the
//! register-if-changed rule, the revisions of a family, our deployment's handles) live here.

use futures_util::future::BoxFuture;
use serde_json::Value;
use tokio::time::Instant;

use super::seam::{
    Controller, Current, Cx, Decision, DeployFlags, Follow, Local, RollbackOptions, TaskChoice,
    Undo, first_line,
};
use crate::aws::types::ecs::{Service, TaskDefinitionStatus};
use crate::aws::{Clients, ServiceDeploymentStop, ServiceUpdate};
use crate::deploy::core::outcome::{
    RollbackEnd, RunOutcome, Serving, conclude_rollback, end_text, rollback_end,
};
use crate::deploy::core::poll::{Goal, Target};
use crate::deploy::core::rollback::{
    DeploymentRecord, RollbackFacts, RollbackPlan, WaitRollback, ecs_returns_to, rollback_plan,
    rollback_target,
};
use crate::deploy::core::spec::{OnCancel, ServiceRollout};
use crate::deploy::core::state::{DeploymentStatus, RolloutState, ServiceDeploymentStatus};
use crate::deploy::core::verdict::{
    DeploymentView, FastFail, Ours, ServiceDeploymentView, short_arn,
};
use crate::deploy::event::{Emitter, Event};
use crate::deploy::gate::{NoHooks, hook_stage};
use crate::deploy::observe::{
    AwsObserver, deployment_record, deployment_views, service_deployment_view,
};
use crate::deploy::result::{Operation, RollbackReport, ServiceResult};
use crate::deploy::watch::{Watcher, watch};
use crate::error::{Diagnostic, Error, ErrorKind, Result};
use crate::plan::ServicePlan;

/// ECS deploys the service.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Ecs;

impl Controller for Ecs {
    fn deployment_controller(&self) -> &'static str {
        "ECS"
    }

    fn decide<'a>(
        &'a self,
        cx: &'a Cx<'a>,
        local: &'a Local,
        live: Option<Service>,
        flags: &'a DeployFlags,
    ) -> BoxFuture<'a, Result<Decision>> {
        Box::pin(decide(cx.clients, local, live, flags))
    }

    fn apply<'a>(
        &'a self,
        cx: &'a Cx<'a>,
        local: &'a Local,
        decision: &'a Decision,
        flags: &'a DeployFlags,
        r: &'a mut ServiceResult,
    ) -> BoxFuture<'a, Result<Option<Follow>>> {
        Box::pin(async move {
            let (td_arn, started) = write(cx.clients, local, decision, flags, cx.emitter).await?;
            Ok(started_to_follow(
                local, decision, flags, r, td_arn, started,
            ))
        })
    }

    fn roll_back<'a>(
        &'a self,
        cx: &'a Cx<'a>,
        job: Undo<'a>,
    ) -> BoxFuture<'a, (RollbackEnd, Option<RollbackReport>)> {
        Box::pin(undo(cx, job))
    }

    fn current<'a>(
        &'a self,
        _cx: &'a Cx<'a>,
        local: &'a Local,
        svc: &'a Service,
    ) -> BoxFuture<'a, Result<Current>> {
        Box::pin(async move {
            let td = svc.task_definition().unwrap_or_default().to_string();
            Ok(Current::Follow(Follow {
                ours: ours_from(svc, &td)?,
                created: false,
                history: Vec::new(),
                watcher: Watcher::Cluster(local.config.cluster.clone()),
                gates: true,
                success: "steady on the current deployment".to_string(),
            }))
        })
    }

    fn rollback<'a>(
        &'a self,
        cx: &'a Cx<'a>,
        local: &'a Local,
        svc: &'a Service,
        opts: RollbackOptions,
        deadline: Instant,
    ) -> BoxFuture<'a, Result<ServiceResult>> {
        Box::pin(rollback(cx, local, svc, opts, deadline))
    }
}

/// After the one write: the result's registration and deployment, and the deployment to
/// follow (None, with the result's outcome and detail, when there is nothing to follow).
pub(crate) fn started_to_follow(
    local: &Local,
    decision: &Decision,
    flags: &DeployFlags,
    r: &mut ServiceResult,
    td_arn: String,
    started: Option<(Ours, bool)>,
) -> Option<Follow> {
    r.registered = decision.choice == TaskChoice::Register;
    r.task_definition_arn = Some(td_arn);
    match started {
        None if flags.no_update_service => {
            r.outcome = RunOutcome::NotFollowed;
            r.detail = "registered only (--no-update-service)".into();
        }
        None => {
            r.outcome = RunOutcome::NoChange;
            r.detail = "nothing differs from what runs: no deployment started".into();
        }
        Some((ours, created)) => {
            r.deployment_id = Some(ours.deployment_id.clone());
            r.service_deployment_arn = ours.service_deployment_arn.clone();
            if !flags.no_wait {
                return Some(Follow {
                    ours,
                    created,
                    history: Vec::new(),
                    watcher: Watcher::Cluster(local.config.cluster.clone()),
                    gates: true,
                    success: "deployment completed".to_string(),
                });
            }
            r.outcome = RunOutcome::NotFollowed;
            r.detail = "deployment started (--no-wait)".into();
        }
    }
    None
}

/// The rollback of a failed deploy: planned by `core::rollback`, carried out by
/// [`carry_out`].
async fn undo(cx: &Cx<'_>, job: Undo<'_>) -> (RollbackEnd, Option<RollbackReport>) {
    let plan = rollback_plan(&RollbackFacts {
        cause: job.cause,
        rollback_enabled: job.rollback_enabled,
        rollback_on_cancel: job.local.rollout.on_cancel == OnCancel::Rollback,
        created_service: job.created,
        previous: job.previous,
        ours: job.ours,
        waiting_hook: job.waiting_hook,
    });
    if let RollbackPlan::Leave { why } = plan {
        return (RollbackEnd::NotPossible(why.to_string()), None);
    }
    carry_out(
        cx,
        RollbackJob {
            cluster: &job.local.config.cluster,
            service: job.local.config.service.as_deref().unwrap_or_default(),
            failed: job.ours,
            previous: job.previous,
            origin: None,
            plan,
            mode: cx.wait_rollback_for(job.local),
            until: Some(job.until),
            cancelled: job.cancelled,
            history: Vec::new(),
        },
    )
    .await
}

/// A rollback to carry out and follow ([`carry_out`]).
pub(crate) struct RollbackJob<'a> {
    pub cluster: &'a str,
    pub service: &'a str,
    /// The deployment being undone.
    pub failed: &'a Ours,
    /// Where an UpdateService goes when the plan falls back to one.
    pub previous: Option<&'a str>,
    /// Why the target is what it is (which deployment of ECS's record vouches for it).
    pub origin: Option<String>,
    pub plan: RollbackPlan,
    pub mode: WaitRollback,
    /// None: the call is made and not followed (`rollback --no-wait`).
    pub until: Option<Instant>,
    /// A cancelled run's rollback: not cut short by the same cancellation.
    pub cancelled: bool,
    /// Service events known before the rollback began: not reported as its own.
    pub history: Vec<String>,
}

/// `cortado rollback` of an ECS service: what [`decide_rollback`] decides, carried out and
/// followed.
async fn rollback(
    cx: &Cx<'_>,
    local: &Local,
    svc: &Service,
    opts: RollbackOptions,
    deadline: Instant,
) -> Result<ServiceResult> {
    let service = local.service_name()?.to_string();
    let cluster = local.config.cluster.clone();
    let current = svc.task_definition().unwrap_or_default().to_string();
    let ours = ours_from(svc, &current)?;
    let decided = decide_rollback(
        cx.clients,
        &cluster,
        &service,
        svc,
        &ours,
        (opts.revision, opts.with_previous),
    )
    .await?;
    let mut r = ServiceResult::new(Operation::Rollback, &cluster, &service);
    r.previous_task_definition_arn = Some(current.clone());
    r.task_definition_arn = decided.previous.clone();
    r.deployment_id = Some(ours.deployment_id.clone());
    r.service_deployment_arn = ours.service_deployment_arn.clone();
    if opts.dry_run {
        r.outcome = RunOutcome::DryRun;
        r.detail = format!(
            "dry run: would {}{}",
            plan_words(&decided.plan),
            decided
                .origin
                .as_deref()
                .map(|o| format!(" ({o})"))
                .unwrap_or_default()
        );
        return Ok(r);
    }
    let (end, report) = carry_out(
        cx,
        RollbackJob {
            cluster: &cluster,
            service: &service,
            failed: &decided.failed,
            previous: decided.previous.as_deref(),
            origin: decided.origin,
            plan: decided.plan,
            mode: cx.wait_rollback_for(local),
            until: (!opts.no_wait).then_some(deadline),
            cancelled: false,
            history: event_ids(svc),
        },
    )
    .await;
    // The summary names the deployment that serves at the end, whichever it is.
    if let Some(id) = report.as_ref().and_then(|r| r.deployment_id.clone()) {
        r.deployment_id = Some(id);
    }
    r.rollback = report;
    (r.outcome, r.detail) = conclude_rollback(&end);
    Ok(r)
}

/// What `cortado rollback` does, by the identity of the service's current deployment:
/// `--revision N` goes there; a rollback ECS is carrying out is followed; a deployment in
/// flight is stopped with ROLLBACK (its waiting PAUSE hook answered ROLLBACK), ECS then
/// returning to what last succeeded; otherwise an UpdateService to the revision that last
/// ran successfully before the current one, from ECS's record ([`rollback_target`]).
async fn decide_rollback(
    clients: &Clients,
    cluster: &str,
    service: &str,
    svc: &Service,
    ours: &Ours,
    (revision, with_previous): (Option<i64>, bool),
) -> Result<Decided> {
    let current = &ours.task_definition_arn;
    if with_previous {
        return with_previous_revision(clients, ours).await;
    }
    if let Some(n) = revision {
        let family = crate::aws::ecs::arn_family(current).unwrap_or_default();
        let (td, _) = clients
            .describe_task_definition(&format!("{family}:{n}"))
            .await?;
        let arn = td.task_definition_arn().unwrap_or_default().to_string();
        if short_arn(&arn) == short_arn(current) {
            return Err(Error::conflict(format!(
                "{service} already runs {}",
                short_arn(current)
            )));
        }
        return Ok(Decided::update(
            ours,
            arn,
            format!("asked for with --revision {n}"),
        ));
    }
    let sd = match &ours.service_deployment_arn {
        Some(arn) => service_deployment(clients, arn).await?,
        None => None,
    };
    let records = deployment_record(clients, cluster, service).await?;
    let deployments = deployment_views(svc);
    match sd.as_ref() {
        Some(v)
            if matches!(
                v.status,
                ServiceDeploymentStatus::RollbackRequested
                    | ServiceDeploymentStatus::RollbackInProgress
            ) =>
        {
            if let Some(d) = follow_ecs(&deployments, ours) {
                return Ok(d);
            }
        }
        Some(v) if in_flight(&v.status) => return Ok(stop_in_flight(ours, v, &records)),
        _ => {}
    }
    // No service-deployment API: a PRIMARY in progress beside another is in flight.
    if sd.is_none()
        && let Some(other) = deployments
            .iter()
            .find(|d| d.status != DeploymentStatus::Primary && d.task_definition_arn != *current)
        && deployments.iter().any(|d| {
            d.status == DeploymentStatus::Primary && d.rollout_state == RolloutState::InProgress
        })
    {
        let to = other.task_definition_arn.clone();
        return Ok(Decided::update(
            ours,
            to,
            format!("deployment {} ran it", other.id),
        ));
    }
    if let Some(t) = rollback_target(&records, current) {
        return Ok(Decided::update(
            ours,
            t.task_definition_arn.clone(),
            t.origin(),
        ));
    }
    // ecspresso's rule when ECS's record names none (a service created since, say): the
    // family's ACTIVE revision just before the running one.
    let family = crate::aws::ecs::arn_family(current).unwrap_or_default();
    match previous_in_family(clients, current).await? {
        Some(arn) => Ok(Decided::update(
            ours,
            arn,
            "ECS's record of the service's deployments names no earlier revision that served; \
             the family's ACTIVE revision before the running one (ecspresso's rule)"
                .into(),
        )),
        None => Err(Error::conflict(format!(
            "{service} runs {}: ECS's record of its deployments names no earlier revision that \
             served, and family {family} has no ACTIVE revision before it",
            short_arn(current)
        ))
        .with_hint(
            "`cortado rollback --revision N` returns to a revision you choose; `cortado history` lists the deployments",
        )),
    }
}

/// `rollback --with-previous-task-definition`: the family's ACTIVE revision before the running
/// one, whatever is in flight and whatever ECS's record says.
async fn with_previous_revision(clients: &Clients, ours: &Ours) -> Result<Decided> {
    let current = &ours.task_definition_arn;
    let Some(arn) = previous_in_family(clients, current).await? else {
        return Err(Error::conflict(format!(
            "--with-previous-task-definition: the family of {} has no ACTIVE revision before it",
            short_arn(current)
        )));
    };
    Ok(Decided::update(
        ours,
        arn,
        "the family's ACTIVE revision before the running one (--with-previous-task-definition)"
            .into(),
    ))
}

/// The family's newest ACTIVE revision before `current` (ecspresso's rollback target).
pub(crate) async fn previous_in_family(clients: &Clients, current: &str) -> Result<Option<String>> {
    let family = crate::aws::ecs::arn_family(current).unwrap_or_default();
    let running = revision_number(current).unwrap_or(0);
    Ok(active_revisions(clients, family)
        .await?
        .into_iter()
        .find(|(n, _)| *n < running)
        .map(|(_, arn)| arn))
}

/// What a rollback plan does, in words (`rollback --dry-run`).
fn plan_words(plan: &RollbackPlan) -> String {
    match plan {
        RollbackPlan::FollowEcs => "follow the rollback ECS is carrying out".into(),
        RollbackPlan::StopDeployment {
            service_deployment_arn,
        } => format!("stop service deployment {service_deployment_arn} with ROLLBACK"),
        RollbackPlan::AnswerHook { hook_id, .. } => {
            format!("answer the waiting PAUSE hook {hook_id} with ROLLBACK")
        }
        RollbackPlan::UpdateToPrevious {
            task_definition_arn,
        } => format!("update the service to {}", short_arn(task_definition_arn)),
        RollbackPlan::Leave { why } => format!("leave the service: {why}"),
    }
}

/// ECS is rolling back already: follow it. What it undoes is the newest FAILED deployment
/// beside the PRIMARY (ECS made the earlier one PRIMARY again); None when that one has left.
fn follow_ecs(deployments: &[DeploymentView], ours: &Ours) -> Option<Decided> {
    let f = deployments
        .iter()
        .filter(|d| {
            d.status != DeploymentStatus::Primary && d.rollout_state == RolloutState::Failed
        })
        .max_by(|a, b| {
            a.created_at
                .unwrap_or(0.0)
                .total_cmp(&b.created_at.unwrap_or(0.0))
        })?;
    Some(Decided {
        plan: RollbackPlan::FollowEcs,
        failed: Ours {
            deployment_id: f.id.clone(),
            service_deployment_arn: ours.service_deployment_arn.clone(),
            task_definition_arn: f.task_definition_arn.clone(),
        },
        previous: Some(ours.task_definition_arn.clone()),
        origin: Some(format!("ECS is rolling back deployment {} already", f.id)),
    })
}

/// A deployment in flight: its waiting PAUSE hook answered ROLLBACK, else the deployment
/// stopped with ROLLBACK; ECS then returns to what last succeeded before it.
fn stop_in_flight(
    ours: &Ours,
    sd: &ServiceDeploymentView,
    records: &[DeploymentRecord],
) -> Decided {
    let arn = sd.arn.clone();
    let back = ecs_returns_to(records, &arn);
    let plan = match sd.awaiting() {
        Some(h) => RollbackPlan::AnswerHook {
            service_deployment_arn: arn,
            hook_id: h.hook_id.clone(),
        },
        None => RollbackPlan::StopDeployment {
            service_deployment_arn: arn,
        },
    };
    Decided {
        plan,
        failed: ours.clone(),
        previous: back.as_ref().map(|t| t.task_definition_arn.clone()),
        origin: back.map(|t| {
            format!(
                "ECS returns to {}, {}",
                short_arn(&t.task_definition_arn),
                t.origin()
            )
        }),
    }
}

/// A rollback `cortado rollback` decided on.
struct Decided {
    plan: RollbackPlan,
    /// The deployment being undone.
    failed: Ours,
    /// The task definition it returns to, when known.
    previous: Option<String>,
    /// Why that one (which deployment of ECS's record vouches for it).
    origin: Option<String>,
}

impl Decided {
    /// An UpdateService to `to`, because of `origin`.
    fn update(ours: &Ours, to: String, origin: String) -> Self {
        Decided {
            plan: RollbackPlan::UpdateToPrevious {
                task_definition_arn: to.clone(),
            },
            failed: ours.clone(),
            origin: Some(format!("{}: {origin}", short_arn(&to))),
            previous: Some(to),
        }
    }
}

/// Whether a service deployment is still going (it may yet succeed or fail).
pub(crate) fn in_flight(status: &ServiceDeploymentStatus) -> bool {
    matches!(
        status,
        ServiceDeploymentStatus::Pending | ServiceDeploymentStatus::InProgress
    )
}

/// The ids of the service's events: history for an operation that begins now.
pub(crate) fn event_ids(svc: &Service) -> Vec<String> {
    svc.events()
        .iter()
        .filter_map(|e| e.id().map(str::to_string))
        .collect()
}

/// Makes a plan's request: a waiting hook is answered ROLLBACK, an in-flight deployment
/// stopped with ROLLBACK. When that fails (the deployment may have moved on meanwhile) the
/// plan falls back to an UpdateService to `job.previous`, or to leaving it. Returns the plan
/// that stands.
async fn request_rollback(cx: &Cx<'_>, job: &RollbackJob<'_>) -> RollbackPlan {
    let mut plan = job.plan.clone();
    if let RollbackPlan::AnswerHook {
        service_deployment_arn,
        hook_id,
    } = &plan
        && let Err(e) = cx
            .clients
            .continue_service_deployment(service_deployment_arn, Some(hook_id), true)
            .await
    {
        cx.emitter.emit(Event::Warning {
            message: format!(
                "ContinueServiceDeployment ROLLBACK failed ({}); stopping the deployment \
                 with ROLLBACK instead",
                first_line(&e)
            ),
        });
        plan = RollbackPlan::StopDeployment {
            service_deployment_arn: service_deployment_arn.clone(),
        };
    }
    let RollbackPlan::StopDeployment {
        service_deployment_arn,
    } = &plan
    else {
        return plan;
    };
    let Err(e) = cx
        .clients
        .stop_service_deployment(service_deployment_arn, ServiceDeploymentStop::Rollback)
        .await
    else {
        return plan;
    };
    cx.emitter.emit(Event::Warning {
        message: format!(
            "StopServiceDeployment failed ({}); updating to the previous revision instead",
            first_line(&e)
        ),
    });
    match job
        .previous
        .filter(|p| *p != job.failed.task_definition_arn)
    {
        Some(p) => RollbackPlan::UpdateToPrevious {
            task_definition_arn: p.to_string(),
        },
        None => RollbackPlan::Leave {
            why: "the rollback request failed and there is no previous revision",
        },
    }
}

/// Carries out a rollback plan and follows it (through the same budgeted watch) until the
/// earlier revision serves as `job.mode` asks, it fails, or `job.until`. What it follows is
/// a matter of identity: the deployment ECS undoes (judged by [`judge_rollback`]), or the
/// deployment an UpdateService back to the earlier revision starts (judged like any
/// deployment, so a broken target ends as soon as ECS rolls it back in turn).
pub(crate) async fn carry_out(
    cx: &Cx<'_>,
    job: RollbackJob<'_>,
) -> (RollbackEnd, Option<RollbackReport>) {
    let t0 = Instant::now();
    let service = job.service;
    let plan = request_rollback(cx, &job).await;
    let method = match &plan {
        RollbackPlan::FollowEcs => "following the rollback ECS started",
        RollbackPlan::StopDeployment { .. } => "StopServiceDeployment ROLLBACK",
        RollbackPlan::AnswerHook { .. } => "ContinueServiceDeployment ROLLBACK",
        RollbackPlan::UpdateToPrevious { .. } => "UpdateService to the previous revision",
        RollbackPlan::Leave { why } => {
            cx.emitter.emit(Event::Warning {
                message: format!("cannot roll back {service}: {why}"),
            });
            return (RollbackEnd::NotPossible((*why).to_string()), None);
        }
    };
    let to = match &plan {
        RollbackPlan::UpdateToPrevious {
            task_definition_arn,
        } => Some(task_definition_arn.clone()),
        _ => job.previous.map(str::to_string),
    };
    cx.emitter.emit(Event::RollbackStarted {
        service: service.to_string(),
        method: method.to_string(),
        to_task_definition: to.clone(),
        source: job.origin.clone(),
    });
    let report = |end: &RollbackEnd, serving: Option<&Serving>| RollbackReport {
        method: method.to_string(),
        to_task_definition_arn: to.clone(),
        source: job.origin.clone(),
        done: matches!(end, RollbackEnd::Done(_)),
        detail: end_text(end),
        deployment_id: serving.map(|s| s.deployment_id.clone()),
        seconds: t0.elapsed().as_secs_f64(),
    };
    let target = match &plan {
        RollbackPlan::UpdateToPrevious {
            task_definition_arn,
        } => match update_to(cx.clients, job.cluster, service, task_definition_arn).await {
            Ok(ours) => Target {
                service: service.to_string(),
                ours,
                goal: Goal::Restores(job.mode),
                history: job.history.clone(),
            },
            Err(e) => {
                let end = RollbackEnd::Failed(format!("UpdateService failed: {}", first_line(&e)));
                cx.rollback_finished(service, &end);
                return (end.clone(), Some(report(&end, None)));
            }
        },
        _ => Target {
            service: service.to_string(),
            ours: job.failed.clone(),
            goal: Goal::RolledBack(job.mode),
            history: job.history.clone(),
        },
    };
    let Some(until) = job.until else {
        let end = RollbackEnd::Started;
        return (end.clone(), Some(report(&end, None)));
    };
    let (cancel, _quiet) = cx.cancel_for(job.cancelled);
    let mut observer = AwsObserver::new(cx.clients, job.cluster);
    let watched = watch(
        &mut observer,
        &mut NoHooks,
        vec![target],
        &FastFail::default().into(),
        cx.cadence,
        until,
        cancel,
        cx.emitter,
    )
    .await;
    let serving = watched.serving.get(service);
    let end = match rollback_end(watched.outcome(service), serving) {
        RollbackEnd::Done(s) => RollbackEnd::Done(match &job.origin {
            Some(o) => format!("{s}; {o}"),
            None => s,
        }),
        e => e,
    };
    cx.rollback_finished(service, &end);
    let r = report(&end, serving);
    (end, Some(r))
}

/// The UpdateService of a rollback to `task_definition_arn`: the handles of the deployment
/// it starts.
async fn update_to(
    clients: &Clients,
    cluster: &str,
    service: &str,
    task_definition_arn: &str,
) -> Result<Ours> {
    let svc = clients
        .update_service(&ServiceUpdate {
            cluster: cluster.to_string(),
            service: service.to_string(),
            task_definition: Some(task_definition_arn.to_string()),
            ..ServiceUpdate::default()
        })
        .await?;
    ours_from(&svc, task_definition_arn)
}

/// What a scale follows: the PRIMARY deployment (ECS scales it; no deployment starts), and
/// the current service deployment only while it is in flight — one that ended before the
/// scale (say, one ECS rolled back) never decides its verdict, and neither do the events
/// before it (returned as history).
pub(crate) async fn scaled(
    clients: &Clients,
    svc: &Service,
    td: &str,
) -> Result<(Ours, Vec<String>)> {
    let mut ours = ours_from(svc, td)?;
    if let Some(arn) = ours.service_deployment_arn.clone()
        && !service_deployment(clients, &arn)
            .await?
            .is_some_and(|v| in_flight(&v.status))
    {
        ours.service_deployment_arn = None;
    }
    Ok((ours, event_ids(svc)))
}

/// A service deployment as DescribeServiceDeployments shows it (None when ECS does not
/// know it).
pub(crate) async fn service_deployment(
    clients: &Clients,
    arn: &str,
) -> Result<Option<ServiceDeploymentView>> {
    Ok(clients
        .describe_service_deployments(&[arn.to_string()])
        .await?
        .iter()
        .map(service_deployment_view)
        .next())
}

/// The PAUSE hook a service deployment waits on, and the hook stage it waits at.
pub(crate) async fn awaiting_hook_at(
    clients: &Clients,
    service_deployment_arn: &str,
) -> Result<Option<(String, String)>> {
    Ok(service_deployment(clients, service_deployment_arn)
        .await?
        .and_then(|v| {
            v.awaiting().map(|h| {
                (
                    h.hook_id.clone(),
                    hook_stage(&v.lifecycle_stage).to_string(),
                )
            })
        }))
}

/// Compares the rendered definitions with what runs and decides what to do. Read-only.
pub(crate) async fn decide(
    clients: &Clients,
    local: &Local,
    live: Option<Service>,
    flags: &DeployFlags,
) -> Result<Decision> {
    let cluster = &local.config.cluster;
    let service = local.service_name()?;
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
    let choice = task_choice(
        clients,
        local,
        flags,
        previous.as_deref(),
        live_task_json.as_ref(),
    )
    .await?;
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
    let rollout =
        ServiceRollout::of_update(local.service_json.as_ref(), live_service_json.as_ref());
    let update_attributes = !flags.keep_attributes
        && live.is_some()
        && service_after.is_some()
        && service_after != service_before;
    // `refresh`, `scale`: the attributes stay as they are, and the plan says so.
    let service_after = if flags.keep_attributes && service_before.is_some() {
        service_before.clone()
    } else {
        service_after
    };
    let desired_count = flags.tasks.or_else(|| {
        (!flags.keep_attributes || live.is_none())
            .then(|| local.service.as_ref().and_then(|s| s.desired_count()))
            .flatten()
    });
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
        strategy: rollout.name(),
        rollout: rollout.words(local.rollout.verify.len()),
    }
    .redacted(&local.secrets);
    Ok(Decision {
        plan,
        choice,
        live,
        previous_task_definition: previous,
        update_attributes,
        desired_count,
    })
}

/// `cortado diff` of a config that names no service (one-off tasks only): the rendered task
/// definition against the family's newest ACTIVE revision, as ecspresso's `diff` compares
/// it when no service is configured. No service sides; read-only.
pub(crate) async fn task_only_plan(clients: &Clients, local: &Local) -> Result<ServicePlan> {
    let family = local.task.family().unwrap_or_default().to_string();
    let latest = active_revisions(clients, &family).await?.into_iter().next();
    let before = match &latest {
        Some((_, arn)) => {
            let (td, tags) = clients.describe_task_definition(arn).await?;
            Some(crate::aws::json::task_definition_json(&td, &tags)?)
        }
        None => None,
    };
    let new_revision = before
        .as_ref()
        .is_none_or(|live| crate::diff::task_definition_needs_new_revision(&local.task_json, live));
    let rollout = match &latest {
        Some((n, _)) => format!(
            "no service in the config: the task definition against {family}:{n}, the newest ACTIVE revision"
        ),
        None => format!("no service in the config: family {family} has no ACTIVE revision yet"),
    };
    Ok(ServicePlan {
        cluster: local.config.cluster.clone(),
        service: family,
        region: clients.region().to_string(),
        task_before: before
            .as_ref()
            .map(crate::diff::task_definition_for_compare),
        task_after: crate::diff::task_definition_for_compare(&local.task_json),
        service_before: None,
        service_after: None,
        new_revision,
        create_service: false,
        desired_count: (None, None),
        strategy: String::new(),
        rollout,
    }
    .redacted(&local.secrets))
}

/// Which task definition the deploy runs: kept (`--skip-task-definition`), a given or the
/// latest revision, a forced registration, or the register-if-changed rule.
async fn task_choice(
    clients: &Clients,
    local: &Local,
    flags: &DeployFlags,
    previous: Option<&str>,
    live_task_json: Option<&Value>,
) -> Result<TaskChoice> {
    let service = local.service_name()?;
    let family = local.task.family().unwrap_or_default().to_string();
    Ok(if flags.skip_task_definition {
        match previous {
            Some(p) => TaskChoice::Existing(p.to_string()),
            None => {
                return Err(Error::conflict(format!(
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
        match active_revisions(clients, &family).await?.into_iter().next() {
            Some((_, a)) => TaskChoice::Existing(a),
            None => {
                return Err(Error::conflict(format!(
                    "--latest-task-definition: family {family} has no ACTIVE revision"
                ))
                .with_hint("register one first (cortado register), or deploy without the flag"));
            }
        }
    } else if flags.force_register {
        TaskChoice::Register
    } else {
        registration_choice(
            clients,
            &local.task_json,
            &family,
            previous.zip(live_task_json),
        )
        .await?
    })
}

/// The register-if-changed rule (deploy and run share it): the rendered `task_json` is
/// compared with `live` (the service's task definition ARN and JSON) when the service runs
/// one, else with the family's newest ACTIVE revision; a new revision only when it differs.
/// Read-only.
pub(crate) async fn registration_choice(
    clients: &Clients,
    task_json: &Value,
    family: &str,
    live: Option<(&str, &Value)>,
) -> Result<TaskChoice> {
    match live {
        Some((arn, live)) if !crate::diff::task_definition_needs_new_revision(task_json, live) => {
            Ok(TaskChoice::Existing(arn.to_string()))
        }
        Some(_) => Ok(TaskChoice::Register),
        None => {
            // No service yet: reuse the family's newest revision when it is identical.
            match active_revisions(clients, family).await?.into_iter().next() {
                Some((_, latest)) => {
                    let (td, tags) = clients.describe_task_definition(&latest).await?;
                    let json = crate::aws::json::task_definition_json(&td, &tags)?;
                    if crate::diff::task_definition_needs_new_revision(task_json, &json) {
                        Ok(TaskChoice::Register)
                    } else {
                        Ok(TaskChoice::Existing(latest))
                    }
                }
                None => Ok(TaskChoice::Register),
            }
        }
    }
}

/// The revision number of a task definition ARN (`...:task-definition/web:7` -> 7).
pub(crate) fn revision_number(arn: &str) -> Option<u64> {
    arn.rsplit(':').next()?.parse().ok()
}

/// The family's ACTIVE revisions, newest first, with their numbers.
pub(crate) async fn active_revisions(
    clients: &Clients,
    family: &str,
) -> Result<Vec<(u64, String)>> {
    let mut revs: Vec<(u64, String)> = clients
        .list_task_definitions(family, TaskDefinitionStatus::Active)
        .await?
        .into_iter()
        .filter_map(|a| Some((revision_number(&a)?, a)))
        .collect();
    revs.sort_by_key(|r| std::cmp::Reverse(r.0));
    Ok(revs)
}

/// Registers (when needed) and makes the ONE Create/UpdateService call. Returns the task
pub(crate) async fn write(
    clients: &Clients,
    local: &Local,
    decision: &Decision,
    flags: &DeployFlags,
    emitter: &Emitter,
) -> Result<(String, Option<(Ours, bool)>)> {
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
                return Err(Error::conflict(format!(
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
    Ok((td_arn, Some((ours, created))))
}

/// Our deployment's handles from a Create/UpdateService answer: its PRIMARY deployment and
/// `currentServiceDeployment`.
pub(crate) fn ours_from(svc: &Service, td_arn: &str) -> Result<Ours> {
    let primary = deployment_views(svc)
        .into_iter()
        .find(|d| d.status == DeploymentStatus::Primary)
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
