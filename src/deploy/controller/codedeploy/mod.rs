//! The CodeDeploy controller: services with `deploymentController: CODE_DEPLOY` (blue/green
//! by CodeDeploy).
//!
//! Decide is ECS's, with the plan's rollout line naming the CodeDeploy application and group.
//! Apply finds the deployment group (the config's `codedeploy: {application_name,
//! deployment_group_name}`, as ecspresso reads it, else the one group whose ECS service is
//! this service), registers the task definition when it changed, builds the AppSpec (task
//! definition, the load balancer's container and port, platform version, network
//! configuration, capacity provider strategy, the config's `appspec:` hooks), and calls
//! CreateDeployment with automatic rollback on DEPLOYMENT_FAILURE, DEPLOYMENT_STOP_ON_ALARM
//! and DEPLOYMENT_STOP_ON_REQUEST. A service that does not exist yet is created by
//! CreateService, as ECS requires: that deploy is the ECS controller's.
//!
//! The deployment is followed by the run's watch through its own poller ([`CdObserver`]:
//! GetDeployment, the deployment target's lifecycle events and task sets, stopped tasks of the
//! replacement task set) and judged by the pure [`rules`]. A deployment CodeDeploy rolled
//! back is a failure (exit 3); on a fast-fail, a timeout or a cancel (with `on_cancel:
//! rollback`) cortado calls StopDeployment with autoRollbackEnabled and follows CodeDeploy's
//! rollback.
//!
//! When the deploy is done: by default once production traffic is fully on the replacement
//! task set, every lifecycle event through AfterAllowTraffic succeeded and the replacement
//! runs its desired count (CodeDeploy may keep the original task set for the group's
//! termination wait); with `--wait-until terminated`, once CodeDeploy reports Succeeded (the
//! original task set is gone).

pub(crate) mod appspec;
pub(crate) mod group;
pub(crate) mod observe;
pub(crate) mod rules;

use futures_util::future::BoxFuture;
use tokio::time::Instant;

use self::appspec::{
    ROLLBACK_EVENTS, appspec, appspec_task_definition, appspec_yaml, configured_hooks,
};
pub(crate) use self::group::controlled;
use self::group::{describe_group, find_group, plan_rollout};
use self::observe::CdObserver;
use self::rules::{CdPlan, rollback_plan};
use super::ecs::{self, Ecs};
use super::seam::{
    Controller, Current, Cx, Decision, DeployFlags, Follow, Local, RollbackOptions, TaskChoice,
    Undo, first_line, service_json_or_live,
};
use crate::aws::codedeploy::{GroupFacts, NewDeployment};
use crate::aws::types::ecs::Service;
use crate::deploy::core::outcome::{
    RollbackEnd, RunOutcome, conclude_rollback, end_text, redeploy_end, rollback_end,
};
use crate::deploy::core::poll::{Goal, Target};
use crate::deploy::core::rollback::rollback_target;
use crate::deploy::core::spec::OnCancel;
use crate::deploy::core::verdict::{FastFail, Ours, short_arn};
use crate::deploy::event::Event;
use crate::deploy::gate::{NoHooks, Until};
use crate::deploy::observe::{ClusterObservers, RECORD_DEPTH, deployment_record};
use crate::deploy::result::{Operation, RollbackReport, ServiceResult};
use crate::deploy::watch::{Watcher, watch};
use crate::error::{Diagnostic, Error, Result};

/// Statuses of a deployment that is not over yet.
const IN_FLIGHT: [&str; 5] = ["Created", "Queued", "InProgress", "Baking", "Ready"];

/// CodeDeploy deploys the service.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct CodeDeploy;

impl Controller for CodeDeploy {
    fn deployment_controller(&self) -> &'static str {
        "CODE_DEPLOY"
    }

    fn decide<'a>(
        &'a self,
        cx: &'a Cx<'a>,
        local: &'a Local,
        live: Option<Service>,
        flags: &'a DeployFlags,
    ) -> BoxFuture<'a, Result<Decision>> {
        Box::pin(async move {
            let mut decision = ecs::decide(cx.clients, local, live, flags).await?;
            plan_rollout(cx.clients, local, &mut decision).await;
            Ok(decision)
        })
    }

    fn apply<'a>(
        &'a self,
        cx: &'a Cx<'a>,
        local: &'a Local,
        decision: &'a Decision,
        flags: &'a DeployFlags,
        r: &'a mut ServiceResult,
    ) -> BoxFuture<'a, Result<Option<Follow>>> {
        // A service that does not exist yet is created by CreateService, as ECS requires.
        if !decision.live.as_ref().is_some_and(controlled) {
            return Ecs.apply(cx, local, decision, flags, r);
        }
        Box::pin(deploy(cx, local, decision, flags, r))
    }

    fn roll_back<'a>(
        &'a self,
        cx: &'a Cx<'a>,
        job: Undo<'a>,
    ) -> BoxFuture<'a, (RollbackEnd, Option<RollbackReport>)> {
        // The deploy that created the service was ECS's.
        if job.created {
            return Ecs.roll_back(cx, job);
        }
        Box::pin(async move {
            let plan = rollback_plan(
                job.cause,
                job.rollback_enabled,
                job.local.rollout.on_cancel == OnCancel::Rollback,
            );
            let stop = match plan {
                CdPlan::Leave(why) => return (RollbackEnd::NotPossible(why.to_string()), None),
                CdPlan::Stop => true,
                CdPlan::Follow => false,
            };
            let f = Rollback {
                local: job.local,
                ours: job.ours,
                previous: job.previous,
                wait_terminated: *job.deploy_until == Until::Terminated,
            };
            roll_back(cx, &f, stop, Some(job.until), job.cancelled).await
        })
    }

    fn current<'a>(
        &'a self,
        cx: &'a Cx<'a>,
        local: &'a Local,
        svc: &'a Service,
    ) -> BoxFuture<'a, Result<Current>> {
        Box::pin(current(cx, local, svc))
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

/// What a CodeDeploy rollback needs to know of the deployment it undoes.
struct Rollback<'a> {
    local: &'a Local,
    ours: &'a Ours,
    /// The revision it returns to, when known.
    previous: Option<&'a str>,
    wait_terminated: bool,
}

/// `deploy` of a service CodeDeploy controls: register if changed, CreateDeployment; the
/// deployment to follow.
async fn deploy(
    cx: &Cx<'_>,
    local: &Local,
    decision: &Decision,
    flags: &DeployFlags,
    r: &mut ServiceResult,
) -> Result<Option<Follow>> {
    let service = r.service.clone();
    // Everything local first: no write before the hooks and the flags are known good.
    let hooks = configured_hooks(&local.config)?;
    let wait_terminated = match &flags.until {
        Until::Done => false,
        Until::Terminated => true,
        _ => {
            return Err(Error::bad_input(
                "--until and --wait-until ecs:STAGE follow ECS lifecycle stages, which a \
                 CodeDeploy deployment does not have",
            )
            .with_hint("use --wait-until terminated, or no --until"));
        }
    };
    // The AppSpec's inputs are checked before the first write, too.
    match service_json_or_live(local, decision.live.as_ref())? {
        Some(svc) => appspec(&svc, "", &hooks).map(|_| ())?,
        None => {
            return Err(Error::bad_input(format!(
                "{service}: no service definition to build the AppSpec from"
            )));
        }
    }
    let group = find_group(cx.clients, local).await?;
    let register_only = DeployFlags {
        no_update_service: true,
        ..flags.clone()
    };
    let (td_arn, _) = ecs::write(cx.clients, local, decision, &register_only, cx.emitter).await?;
    r.registered = decision.choice == TaskChoice::Register;
    r.task_definition_arn = Some(td_arn.clone());
    if flags.no_update_service {
        r.outcome = RunOutcome::NotFollowed;
        r.detail = "registered only (--no-update-service)".into();
        return Ok(None);
    }
    if decision.previous_task_definition.as_deref() == Some(td_arn.as_str())
        && !flags.force_new_deployment
    {
        r.outcome = RunOutcome::NoChange;
        r.detail = "the service runs this revision: no CodeDeploy deployment started".into();
        return Ok(None);
    }
    let id = create_deployment(cx, local, decision.live.as_ref(), &group, &td_arn, &hooks).await?;
    r.deployment_id = Some(id.clone());
    if flags.no_wait {
        r.outcome = RunOutcome::NotFollowed;
        r.detail = format!("CodeDeploy deployment {id} started (--no-wait)");
        return Ok(None);
    }
    let observer = CdObserver::new(cx.clients, &local.config.cluster, &id, wait_terminated);
    Ok(Some(Follow {
        ours: Ours {
            deployment_id: id,
            service_deployment_arn: None,
            task_definition_arn: td_arn,
        },
        created: false,
        history: Vec::new(),
        watcher: Watcher::Own(Box::new(observer)),
        gates: false,
        success: success_words(wait_terminated, &group),
    }))
}

/// What a successful deploy says: where traffic is, and what becomes of the original task
/// set.
fn success_words(wait_terminated: bool, group: &GroupFacts) -> String {
    match (wait_terminated, group.termination_wait_minutes) {
        (true, _) => "CodeDeploy deployment succeeded: traffic is on the new revision and the \
                      original task set is terminated"
            .to_string(),
        (false, Some(0)) => "traffic is fully on the new revision and healthy; CodeDeploy \
                             terminates the original task set right away"
            .to_string(),
        (false, Some(m)) => format!(
            "traffic is fully on the new revision and healthy; CodeDeploy terminates the \
             original task set {m} min later (--wait-until terminated waits for it)"
        ),
        (false, None) => "traffic is fully on the new revision and healthy; the group keeps \
                          the original task set"
            .to_string(),
    }
}

/// CreateDeployment of `td_arn` with the AppSpec built from the service definition (the
/// config's, else the live one's); emits `DeploymentStarted`; returns the id.
async fn create_deployment(
    cx: &Cx<'_>,
    local: &Local,
    live: Option<&Service>,
    group: &GroupFacts,
    td_arn: &str,
    hooks: &[(String, String)],
) -> Result<String> {
    let service = local.service_name()?;
    let Some(svc_json) = service_json_or_live(local, live)? else {
        return Err(Error::bad_input(format!(
            "{service}: no service definition to build the AppSpec from"
        )));
    };
    let spec = appspec(&svc_json, td_arn, hooks)?;
    let text = appspec_yaml(&spec)?;
    let events: Vec<String> = ROLLBACK_EVENTS.iter().map(|e| e.to_string()).collect();
    let id = cx
        .clients
        .create_codedeploy_deployment(&NewDeployment {
            application: &group.application,
            group: &group.name,
            appspec: &text,
            description: Some(&format!("cortado deploy of {}", short_arn(td_arn))),
            rollback_events: &events,
        })
        .await?;
    cx.emitter.emit(Event::DeploymentStarted {
        service: service.to_string(),
        deployment_id: id.clone(),
        service_deployment_arn: None,
        task_definition_arn: td_arn.to_string(),
        created: false,
    });
    Ok(id)
}

/// The group's deployment in flight, if any.
async fn in_flight(cx: &Cx<'_>, group: &GroupFacts) -> Result<Option<String>> {
    Ok(cx
        .clients
        .codedeploy_deployments(&group.application, &group.name, &IN_FLIGHT)
        .await?
        .into_iter()
        .next())
}

/// The task definition a CodeDeploy deployment rolls out (its AppSpec's), else `otherwise`.
async fn deploying(cx: &Cx<'_>, id: &str, otherwise: &str) -> Result<String> {
    Ok(cx
        .clients
        .codedeploy_deployment(id)
        .await?
        .appspec
        .as_deref()
        .and_then(appspec_task_definition)
        .unwrap_or_else(|| otherwise.to_string()))
}

/// `wait` on a service CodeDeploy controls: the group's deployment in flight, followed to its
/// verdict (cortado changes nothing: a failure is reported, CodeDeploy's own rollback counts
/// as rolled back); with none in flight, the service is as it is.
async fn current(cx: &Cx<'_>, local: &Local, svc: &Service) -> Result<Current> {
    let group = find_group(cx.clients, local).await?;
    let current = svc.task_definition().unwrap_or_default().to_string();
    let Some(id) = in_flight(cx, &group).await? else {
        return Ok(Current::Settled {
            detail: format!(
                "no CodeDeploy deployment in flight; the service runs {}",
                short_arn(&current)
            ),
            task_definition_arn: current,
        });
    };
    let td = deploying(cx, &id, &current).await?;
    let observer = CdObserver::new(cx.clients, &local.config.cluster, &id, false);
    Ok(Current::Follow(Follow {
        success: format!("CodeDeploy deployment {id}: traffic is on the new revision"),
        ours: Ours {
            deployment_id: id,
            service_deployment_arn: None,
            task_definition_arn: td,
        },
        created: false,
        history: Vec::new(),
        watcher: Watcher::Own(Box::new(observer)),
        gates: false,
    }))
}

/// `rollback` of a service CodeDeploy controls: a deployment in flight is stopped with
/// CodeDeploy's rollback; otherwise the revision that last ran successfully before the
/// running one ([`target`]) is deployed through CodeDeploy. Followed unless `--no-wait`.
async fn rollback(
    cx: &Cx<'_>,
    local: &Local,
    svc: &Service,
    opts: RollbackOptions,
    deadline: Instant,
) -> Result<ServiceResult> {
    let service = local.service_name()?.to_string();
    if opts.with_previous {
        return Err(Error::input(
            Diagnostic::error(format!(
                "rollback --with-previous-task-definition is not available for {service}, a service CodeDeploy deploys"
            ))
            .hint("`cortado rollback --revision N` deploys revision N through CodeDeploy"),
        ));
    }
    let hooks = configured_hooks(&local.config)?;
    let group = find_group(cx.clients, local).await?;
    let current = svc.task_definition().unwrap_or_default().to_string();
    let mut r = ServiceResult::new(Operation::Rollback, &local.config.cluster, &service);
    r.previous_task_definition_arn = Some(current.clone());
    let until = (!opts.no_wait).then_some(deadline);
    let end = if let Some(id) = in_flight(cx, &group).await? {
        // The revision that deployment rolls out; the service may show either that one or
        // the one it replaces.
        let deploying = deploying(cx, &id, &current).await?;
        if opts.dry_run {
            return Ok(dry_run(
                r,
                format!("stop CodeDeploy deployment {id} with its rollback"),
            ));
        }
        let back = (deploying != current).then(|| current.clone());
        r.deployment_id = Some(id.clone());
        r.previous_task_definition_arn = Some(deploying.clone());
        r.task_definition_arn = back.clone();
        let ours = Ours {
            deployment_id: id,
            service_deployment_arn: None,
            task_definition_arn: deploying,
        };
        let f = Rollback {
            local,
            ours: &ours,
            previous: back.as_deref(),
            wait_terminated: false,
        };
        let (end, report) = roll_back(cx, &f, true, until, false).await;
        r.rollback = report;
        end
    } else {
        let (previous, origin) = target(cx, local, &group, &current, opts.revision).await?;
        r.task_definition_arn = Some(previous.clone());
        if opts.dry_run {
            let to = crate::deploy::core::verdict::short_arn(&previous).to_string();
            return Ok(dry_run(
                r,
                format!("deploy {to} through CodeDeploy ({origin})"),
            ));
        }
        let id = create_deployment(cx, local, Some(svc), &group, &previous, &hooks).await?;
        r.deployment_id = Some(id.clone());
        match until {
            None => RollbackEnd::Started,
            Some(until) => {
                let ours = Ours {
                    deployment_id: id.clone(),
                    service_deployment_arn: None,
                    task_definition_arn: previous,
                };
                let target = Target::deployed(&service, ours);
                let outcome = follow(cx, local, &id, target, false, until, cx.cancel.clone()).await;
                redeploy_end(outcome, &id, &origin)
            }
        }
    };
    let (outcome, detail) = conclude_rollback(&end);
    r.outcome = outcome;
    r.detail = format!("{}; {detail}", describe_group(&group));
    Ok(r)
}

/// A `rollback --dry-run` result: what it would do, nothing done.
fn dry_run(mut r: ServiceResult, what: String) -> ServiceResult {
    r.outcome = RunOutcome::DryRun;
    r.detail = format!("dry run: would {what}");
    r
}

/// Follows one CodeDeploy deployment toward `target`'s goal until `until`.
async fn follow(
    cx: &Cx<'_>,
    local: &Local,
    id: &str,
    target: Target,
    wait_terminated: bool,
    until: Instant,
    cancel: tokio::sync::watch::Receiver<bool>,
) -> crate::deploy::core::outcome::Outcome {
    let service = target.service.clone();
    let poller = CdObserver::new(cx.clients, &local.config.cluster, id, wait_terminated);
    let mut observer = ClusterObservers::of(cx.clients, &service, Watcher::Own(Box::new(poller)));
    watch(
        &mut observer,
        &mut NoHooks,
        vec![target],
        &FastFail::default().into(),
        cx.cadence,
        until,
        cancel,
        cx.emitter,
    )
    .await
    .outcome(&service)
}

/// Where `rollback` of a CodeDeploy service goes, and why: `--revision N`; else the task
/// definition of the newest CodeDeploy deployment of the group that Succeeded with another
/// task definition than `current`; else what ECS's record of the service says
/// ([`rollback_target`]). Never a revision no deployment ever served.
async fn target(
    cx: &Cx<'_>,
    local: &Local,
    group: &GroupFacts,
    current: &str,
    revision: Option<i64>,
) -> Result<(String, String)> {
    let service = local.service_name()?;
    if let Some(n) = revision {
        let family = crate::aws::ecs::arn_family(current).unwrap_or_default();
        let (td, _) = cx
            .clients
            .describe_task_definition(&format!("{family}:{n}"))
            .await?;
        let arn = td.task_definition_arn().unwrap_or_default().to_string();
        return Ok((arn, format!("{family}:{n}, asked for with --revision {n}")));
    }
    if let Some(found) = succeeded_before(cx, group, current).await? {
        return Ok(found);
    }
    // ECS's record may not cover a CodeDeploy service: a refusal leaves it empty.
    let records = deployment_record(cx.clients, &local.config.cluster, service)
        .await
        .unwrap_or_else(|e| {
            cx.emitter.emit(Event::Warning {
                message: format!(
                    "ECS's record of {service}'s deployments could not be read: {}",
                    first_line(&e)
                ),
            });
            Vec::new()
        });
    if let Some(t) = rollback_target(&records, current) {
        let origin = format!("{}, {}", short_arn(&t.task_definition_arn), t.origin());
        return Ok((t.task_definition_arn, origin));
    }
    // ecspresso's rule when neither record names one: the family's previous ACTIVE revision.
    match ecs::previous_in_family(cx.clients, current).await? {
        Some(arn) => {
            let origin = format!(
                "{}: neither CodeDeploy's nor ECS's record names an earlier revision that served; the family's ACTIVE revision before the running one (ecspresso's rule)",
                short_arn(&arn)
            );
            Ok((arn, origin))
        }
        None => Err(Error::conflict(format!(
            "{service} runs {}: neither CodeDeploy's nor ECS's record names an earlier \
             revision that served, and its family has no ACTIVE revision before it",
            short_arn(current)
        ))
        .with_hint("`cortado rollback --revision N` returns to a revision you choose")),
    }
}

/// The task definition of the group's newest deployment that Succeeded with another task
/// definition than `current`, and why that one.
async fn succeeded_before(
    cx: &Cx<'_>,
    group: &GroupFacts,
    current: &str,
) -> Result<Option<(String, String)>> {
    let ids = cx
        .clients
        .codedeploy_deployments(&group.application, &group.name, &["Succeeded"])
        .await?;
    let mut succeeded = Vec::new();
    for id in ids.iter().take(RECORD_DEPTH) {
        let d = cx.clients.codedeploy_deployment(id).await?;
        if let Some(td) = d.appspec.as_deref().and_then(appspec_task_definition) {
            succeeded.push((d.created.unwrap_or(0), id.clone(), td));
        }
    }
    succeeded.sort_by_key(|d| std::cmp::Reverse(d.0));
    Ok(succeeded
        .into_iter()
        .find(|(_, _, td)| short_arn(td) != short_arn(current))
        .map(|(_, id, td)| {
            let origin = format!(
                "{}, the revision of CodeDeploy deployment {id}, which succeeded",
                short_arn(&td)
            );
            (td, origin)
        }))
}

/// Stops our deployment with CodeDeploy's rollback (when `stop`), then follows the
/// rollback until `until` (None: not followed).
async fn roll_back(
    cx: &Cx<'_>,
    f: &Rollback<'_>,
    stop: bool,
    until: Option<Instant>,
    cancelled: bool,
) -> (RollbackEnd, Option<RollbackReport>) {
    let t0 = Instant::now();
    let service = f.local.config.service.as_deref().unwrap_or_default();
    let id = &f.ours.deployment_id;
    let method = if stop {
        "CodeDeploy StopDeployment with autoRollbackEnabled"
    } else {
        "following CodeDeploy's rollback"
    };
    let to = f.previous.map(str::to_string);
    let report = |end: &RollbackEnd| RollbackReport {
        method: method.to_string(),
        to_task_definition_arn: to.clone(),
        source: None,
        done: matches!(end, RollbackEnd::Done(_)),
        detail: end_text(end),
        deployment_id: None,
        seconds: t0.elapsed().as_secs_f64(),
    };
    cx.emitter.emit(Event::RollbackStarted {
        service: service.to_string(),
        method: method.to_string(),
        to_task_definition: to.clone(),
        source: None,
    });
    if stop && let Err(e) = cx.clients.stop_codedeploy_deployment(id, true).await {
        // It may have ended meanwhile, rolled back by CodeDeploy itself: then follow that.
        let now = cx.clients.codedeploy_deployment(id).await.ok();
        if now.is_none_or(|d| d.rollback_deployment_id.is_none()) {
            let end = RollbackEnd::Failed(format!("StopDeployment failed: {}", first_line(&e)));
            cx.rollback_finished(service, &end);
            let r = report(&end);
            return (end, Some(r));
        }
    }
    let Some(until) = until else {
        let end = RollbackEnd::Started;
        let r = report(&end);
        return (end, Some(r));
    };
    let (cancel, _quiet) = cx.cancel_for(cancelled);
    let target = Target {
        service: service.to_string(),
        ours: f.ours.clone(),
        goal: Goal::RolledBack(cx.wait_rollback_for(f.local)),
        history: Vec::new(),
    };
    let outcome = follow(cx, f.local, id, target, f.wait_terminated, until, cancel).await;
    let end = match rollback_end(outcome, None) {
        RollbackEnd::Done(_) => RollbackEnd::Done(match &to {
            Some(t) => format!("CodeDeploy returned traffic to {}", short_arn(t)),
            None => "CodeDeploy returned traffic to the original task set".into(),
        }),
        e => e,
    };
    cx.rollback_finished(service, &end);
    let r = report(&end);
    (end, Some(r))
}
