//! The service commands besides deploy: `diff`, `rollback`, `wait`, `status`, `revisions`,
//! `register`, `deregister`, `scale`. Each loads and validates its configs before its first
//! AWS call, like deploy.

use serde_json::json;
use tokio::time::Instant;

use super::deploy::finish;
use super::session::{self, Session};
use crate::aws::types::ecs::TaskDefinitionStatus;
use crate::aws::{Clients, ServiceUpdate};
use crate::cli::{DeregisterArgs, DiffArgs, DiffFormat, RollbackArgs};
use crate::deploy::event::{Emitter, Event};
use crate::deploy::local::{Local, timeout};
use crate::deploy::observe::{AwsObserver, deployment_views};
use crate::deploy::run::{self, DeployFlags, Follow, Report, RollbackResult, RunOutcome};
use crate::deploy::verdict::{Failure, FastFail, Ours, short_arn};
use crate::deploy::watch::{Cadence, Outcome, watch};
use crate::error::{Error, ExitCode, Result};
use crate::report::{Format, Printer};
use crate::settings::Settings;

/// The service a command needs does not exist: an AWS-side condition (exit 7), like a
/// missing cluster.
fn service_not_found(service: &str, cluster: &str, region: &str) -> Error {
    Error::new(
        crate::error::ErrorKind::Aws,
        crate::error::Diagnostic::error(format!(
            "service {service} not found in cluster {cluster} (region {region})"
        ))
        .hint(
            "deploy it first (cortado deploy), or check cluster, service and region in the config",
        ),
    )
}

/// Loads and validates the configs of the run, then connects (or starts the sandbox).
async fn with_session(settings: &Settings, printer: &mut Printer) -> Result<(Vec<Local>, Session)> {
    let ctx = settings.render_context()?;
    printer.set_secrets(ctx.secrets.clone());
    let locals = session::load_locals(settings, &ctx, printer)?;
    let s = session::connect(settings, &locals, printer).await?;
    Ok((locals, s))
}

/// `cortado diff`: exit 0 without changes, 2 with changes.
pub async fn diff(settings: &Settings, printer: &mut Printer, args: &DiffArgs) -> Result<ExitCode> {
    let (locals, s) = with_session(settings, printer).await?;
    let mut plans = Vec::new();
    for local in &locals {
        plans.push(
            run::decide(&s.clients, local, &DeployFlags::default())
                .await?
                .plan,
        );
    }
    let changed = plans.iter().any(|p| p.changed());
    match args.format {
        DiffFormat::Text => {
            for p in &plans {
                printer.out(&p.text(printer.color()));
            }
        }
        DiffFormat::Markdown => {
            printer.out(
                &plans
                    .iter()
                    .map(|p| p.markdown())
                    .collect::<Vec<_>>()
                    .join("\n"),
            );
        }
        DiffFormat::Json => printer.out_json(&json!({
            "changed": changed,
            "services": plans.iter().map(|p| p.json()).collect::<Vec<_>>(),
        })),
    }
    if args.comment {
        let api = crate::github::GitHubApi::from_env(None)?;
        let sections: Vec<String> = plans
            .iter()
            .map(|p| printer.secrets().mask(&p.markdown()))
            .collect();
        let body = crate::github::comment_body("diff", "cortado: deploy plan", &sections);
        let action = crate::github::upsert_comment(&api, "diff", &body).await?;
        printer.info(&format!("pull request comment: {action:?}"));
    }
    if crate::report::github::is_actions() {
        // Step outputs are not masked by the runner's log masking: mask them here.
        let diff: String = plans
            .iter()
            .map(|p| printer.secrets().mask(&p.diff_text(false)))
            .collect();
        crate::report::github::write_outputs_from_env(&[
            ("changed", changed.to_string()),
            ("diff", diff),
        ])?;
    }
    Ok(if changed {
        ExitCode::Changes
    } else {
        ExitCode::Success
    })
}

/// `cortado register`: registers the rendered task definition.
pub async fn register(settings: &Settings, printer: &mut Printer) -> Result<ExitCode> {
    let (locals, s) = with_session(settings, printer).await?;
    for local in &locals {
        let td = s
            .clients
            .register_task_definition(local.task.clone())
            .await?;
        let arn = td.task_definition_arn().unwrap_or_default();
        match printer.format {
            Format::Json => printer.out_json(&json!({"task_definition_arn": arn})),
            Format::Text => printer.out(&format!("registered {arn}")),
        }
    }
    Ok(ExitCode::Success)
}

/// The ACTIVE revisions of a family, newest first, with their numbers.
async fn revisions_of(clients: &Clients, family: &str) -> Result<Vec<(u64, String)>> {
    let arns = clients
        .list_task_definitions(family, TaskDefinitionStatus::Active)
        .await?;
    let mut revs: Vec<(u64, String)> = arns
        .into_iter()
        .filter_map(|a| Some((a.rsplit(':').next()?.parse().ok()?, a)))
        .collect();
    revs.sort_by_key(|r| std::cmp::Reverse(r.0));
    Ok(revs)
}

/// `cortado revisions`: the family's ACTIVE revisions, the running one marked.
pub async fn revisions(settings: &Settings, printer: &mut Printer) -> Result<ExitCode> {
    let (locals, s) = with_session(settings, printer).await?;
    for local in &locals {
        let family = local.task.family().unwrap_or_default();
        let running = s
            .clients
            .describe_service(&local.config.cluster, local.service_name()?)
            .await?
            .and_then(|svc| svc.task_definition().map(str::to_string));
        let revs = revisions_of(&s.clients, family).await?;
        match printer.format {
            Format::Json => printer.out_json(&json!({
                "family": family,
                "revisions": revs.iter().map(|(n, a)| json!({
                    "revision": n, "arn": a, "running": Some(a) == running.as_ref(),
                })).collect::<Vec<_>>(),
            })),
            Format::Text => {
                let mut out = format!("{family}: {} ACTIVE revision(s)\n", revs.len());
                for (n, a) in &revs {
                    let mark = if Some(a) == running.as_ref() {
                        "  <- running"
                    } else {
                        ""
                    };
                    out.push_str(&format!("  {n:>5}  {a}{mark}\n"));
                }
                printer.out(&out);
            }
        }
    }
    Ok(ExitCode::Success)
}

/// `cortado deregister --revision N | --keep-last N`: never the running revision.
pub async fn deregister(
    settings: &Settings,
    printer: &mut Printer,
    args: &DeregisterArgs,
) -> Result<ExitCode> {
    let (locals, s) = with_session(settings, printer).await?;
    for local in &locals {
        let family = local.task.family().unwrap_or_default().to_string();
        let running = s
            .clients
            .describe_service(&local.config.cluster, local.service_name()?)
            .await?
            .and_then(|svc| svc.task_definition().map(str::to_string));
        let revs = revisions_of(&s.clients, &family).await?;
        let doomed: Vec<&(u64, String)> = match (args.revision, args.keep_last) {
            (Some(n), _) => {
                let Some(r) = revs.iter().find(|(rev, _)| *rev == n as u64) else {
                    return Err(
                        Error::msg(format!("{family}:{n} is not an ACTIVE revision"))
                            .with_hint("`cortado revisions` lists the ACTIVE ones"),
                    );
                };
                vec![r]
            }
            (None, Some(keep)) => revs.iter().skip(keep).collect(),
            (None, None) => Vec::new(),
        };
        for (n, arn) in doomed {
            if Some(arn) == running.as_ref() {
                if args.revision.is_some() {
                    return Err(Error::msg(format!(
                        "{family}:{n} is the revision the service runs"
                    ))
                    .with_hint("deploy or roll back to another revision first"));
                }
                printer.info(&format!("keeping {family}:{n}: the service runs it"));
                continue;
            }
            s.clients.deregister_task_definition(arn).await?;
            printer.out(&format!("deregistered {arn}"));
        }
    }
    Ok(ExitCode::Success)
}

/// `cortado status`: deployments, recent events, tasks and target health.
pub async fn status(settings: &Settings, printer: &mut Printer, events: usize) -> Result<ExitCode> {
    let (locals, s) = with_session(settings, printer).await?;
    for local in &locals {
        let service = local.service_name()?;
        let cluster = &local.config.cluster;
        let Some(svc) = s.clients.describe_service(cluster, service).await? else {
            return Err(service_not_found(service, cluster, s.clients.region()));
        };
        let deployments = deployment_views(&svc);
        let mut targets = Vec::new();
        for lb in svc.load_balancers() {
            if let Some(tg) = lb.target_group_arn() {
                for t in s.clients.describe_target_health(tg).await? {
                    targets.push((
                        tg.to_string(),
                        t.target()
                            .and_then(|x| x.id())
                            .unwrap_or_default()
                            .to_string(),
                        t.target_health()
                            .and_then(|h| h.state())
                            .map(|x| x.as_str().to_string())
                            .unwrap_or_default(),
                    ));
                }
            }
        }
        let task_arns = s
            .clients
            .list_tasks(
                cluster,
                &crate::aws::TaskFilter::Service(service.to_string()),
                crate::aws::types::ecs::DesiredStatus::Running,
            )
            .await?;
        let tasks: Vec<(String, String, String, String, String)> = s
            .clients
            .describe_tasks(cluster, &task_arns)
            .await?
            .iter()
            .map(|t| {
                (
                    t.task_arn()
                        .and_then(|a| a.rsplit('/').next())
                        .unwrap_or_default()
                        .to_string(),
                    t.last_status().unwrap_or_default().to_string(),
                    t.health_status()
                        .map(|h| h.as_str().to_string())
                        .unwrap_or_default(),
                    t.task_definition_arn()
                        .map(short_arn)
                        .unwrap_or_default()
                        .to_string(),
                    t.started_by().unwrap_or_default().to_string(),
                )
            })
            .collect();
        let recent: Vec<(String, String)> = svc
            .events()
            .iter()
            .take(events)
            .map(|e| {
                (
                    e.created_at().map(|t| t.to_string()).unwrap_or_default(),
                    e.message().unwrap_or_default().to_string(),
                )
            })
            .collect();
        match printer.format {
            Format::Json => printer.out_json(&json!({
                "cluster": cluster,
                "service": service,
                "status": svc.status(),
                "task_definition": svc.task_definition(),
                "desired": svc.desired_count(),
                "running": svc.running_count(),
                "pending": svc.pending_count(),
                "deployments": deployments.iter().map(|d| json!({
                    "id": d.id, "status": d.status, "task_definition": d.task_definition_arn,
                    "desired": d.desired, "running": d.running, "pending": d.pending, "failed": d.failed,
                    "rollout_state": d.rollout_state, "rollout_state_reason": d.rollout_state_reason,
                })).collect::<Vec<_>>(),
                "events": recent.iter().map(|(t, m)| json!({"at": t, "message": m})).collect::<Vec<_>>(),
                "targets": targets.iter().map(|(tg, id, st)| json!({"target_group": tg, "id": id, "state": st})).collect::<Vec<_>>(),
                "tasks": tasks.iter().map(|(id, st, h, td, by)| json!({"task": id, "last_status": st, "health": h, "task_definition": td, "started_by": by})).collect::<Vec<_>>(),
            })),
            Format::Text => {
                let mut out = format!(
                    "{service} (cluster {cluster}): {}, {} running / {} desired / {} pending, on {}\n",
                    svc.status().unwrap_or("?"),
                    svc.running_count(),
                    svc.desired_count(),
                    svc.pending_count(),
                    svc.task_definition().map(short_arn).unwrap_or("?"),
                );
                out.push_str("deployments:\n");
                for d in &deployments {
                    out.push_str(&format!(
                        "  {} {:<8} {:<20} {}/{} running, {} pending, {} failed, {}\n",
                        d.id,
                        d.status,
                        short_arn(&d.task_definition_arn),
                        d.running,
                        d.desired,
                        d.pending,
                        d.failed,
                        d.rollout_state.clone().unwrap_or_default()
                    ));
                }
                if !tasks.is_empty() {
                    out.push_str("tasks:\n");
                    for (id, st, h, td, by) in &tasks {
                        out.push_str(&format!("  {id}  {st:<9} {h:<9} {td:<20} {by}\n"));
                    }
                }
                if !targets.is_empty() {
                    out.push_str("targets:\n");
                    for (_, id, st) in &targets {
                        out.push_str(&format!("  {id:<16} {st}\n"));
                    }
                }
                out.push_str("recent events:\n");
                for (t, m) in &recent {
                    out.push_str(&format!("  {t}  {m}\n"));
                }
                printer.out(&out);
            }
        }
    }
    Ok(ExitCode::Success)
}

/// Follows the service's current PRIMARY deployment (`wait`, `scale`) to a verdict.
async fn follow_current(
    settings: &Settings,
    printer: &Printer,
    clients: &Clients,
    local: &Local,
    scale_to: Option<i32>,
) -> Result<Report> {
    let service = local.service_name()?.to_string();
    let cluster = local.config.cluster.clone();
    let started_at = Instant::now();
    let deadline = started_at + timeout(settings.timeout, &local.config);
    let svc = match scale_to {
        Some(n) => {
            clients
                .update_service(&ServiceUpdate {
                    cluster: cluster.clone(),
                    service: service.clone(),
                    desired_count: Some(n),
                    ..ServiceUpdate::default()
                })
                .await?
        }
        None => clients
            .describe_service(&cluster, &service)
            .await?
            .ok_or_else(|| service_not_found(&service, &cluster, clients.region()))?,
    };
    let td = svc.task_definition().unwrap_or_default().to_string();
    let ours = run::ours_from(&svc, &td)?;
    let emitter = Emitter::new();
    let _log = session::wire_sinks(&emitter, printer);
    let mut observer = AwsObserver::new(clients, &cluster);
    let outcomes = watch(
        &mut observer,
        vec![(service.clone(), ours.clone())],
        &FastFail {
            enabled: false,
            ..FastFail::default()
        }
        .into(),
        &Cadence::default(),
        deadline,
        session::cancel_on_signals(),
        &emitter,
    )
    .await;
    let (outcome, detail) = match outcomes.get(&service) {
        Some(Outcome::Succeeded) => (
            RunOutcome::Succeeded,
            "steady on the current deployment".to_string(),
        ),
        Some(Outcome::Failed(f @ Failure::RolledBack { .. })) => {
            (RunOutcome::FailedRolledBack, f.to_string())
        }
        Some(Outcome::Failed(f)) => (RunOutcome::FailedNotRolledBack, f.to_string()),
        Some(Outcome::TimedOut { last }) => (
            RunOutcome::TimedOut { rolled_back: false },
            format!("no verdict before the deadline ({last})"),
        ),
        Some(Outcome::Cancelled { last }) => (RunOutcome::Cancelled, format!("cancelled ({last})")),
        Some(Outcome::Lost { error }) => (
            RunOutcome::Lost,
            format!("cannot follow the deployment: {error}"),
        ),
        None => (
            RunOutcome::TimedOut { rolled_back: false },
            "no verdict".into(),
        ),
    };
    Ok(Report {
        cluster,
        service,
        outcome,
        detail,
        task_definition_arn: Some(td),
        previous_task_definition: None,
        deployment_id: Some(ours.deployment_id),
        duration: started_at.elapsed(),
        stopped_reasons: Vec::new(),
        plan: None,
    })
}

/// `cortado wait`.
pub async fn wait(settings: &Settings, printer: &mut Printer) -> Result<ExitCode> {
    let (locals, s) = with_session(settings, printer).await?;
    let mut reports = Vec::new();
    for local in &locals {
        reports.push(follow_current(settings, printer, &s.clients, local, None).await?);
    }
    finish(printer, &reports, &[])
}

/// `cortado scale --tasks N`.
pub async fn scale(settings: &Settings, printer: &mut Printer, tasks: i32) -> Result<ExitCode> {
    if tasks < 0 {
        return Err(Error::msg(format!(
            "--tasks must be 0 or more, got {tasks}"
        )));
    }
    let (locals, s) = with_session(settings, printer).await?;
    let mut reports = Vec::new();
    for local in &locals {
        reports.push(follow_current(settings, printer, &s.clients, local, Some(tasks)).await?);
    }
    finish(printer, &reports, &[])
}

/// `cortado rollback`: stop the deployment in flight (ECS returns to the last good
/// revision), or update to the revision before the running one (skipping INACTIVE ones).
pub async fn rollback(
    settings: &Settings,
    printer: &mut Printer,
    args: &RollbackArgs,
) -> Result<ExitCode> {
    let (locals, s) = with_session(settings, printer).await?;
    let emitter = Emitter::new();
    let log = session::wire_sinks(&emitter, printer);
    let cancel = session::cancel_on_signals();
    let cadence = Cadence::default();
    let mut reports = Vec::new();
    for local in &locals {
        let service = local.service_name()?.to_string();
        let cluster = local.config.cluster.clone();
        let started_at = Instant::now();
        let deadline = started_at + timeout(settings.timeout, &local.config);
        let svc = s
            .clients
            .describe_service(&cluster, &service)
            .await?
            .ok_or_else(|| service_not_found(&service, &cluster, s.clients.region()))?;
        let current = svc.task_definition().unwrap_or_default().to_string();
        let deployments = deployment_views(&svc);
        let in_flight = deployments.len() > 1
            || deployments.iter().any(|d| {
                d.status == "PRIMARY" && d.rollout_state.as_deref() == Some("IN_PROGRESS")
            });
        let ours = run::ours_from(&svc, &current)?;
        let follow = Follow {
            clients: &s.clients,
            cluster: &cluster,
            service: &service,
            emitter: &emitter,
            cadence: &cadence,
            cancel: cancel.clone(),
        };
        let family = current
            .rsplit('/')
            .next()
            .and_then(|fr| fr.rsplit_once(':'))
            .map(|(f, _)| f.to_string())
            .unwrap_or_default();
        let revision = |a: &str| {
            a.rsplit(':')
                .next()
                .and_then(|r| r.parse::<u64>().ok())
                .unwrap_or(0)
        };
        let previous = revisions_of(&s.clients, &family)
            .await?
            .into_iter()
            .find(|(n, _)| *n < revision(&current))
            .map(|(_, a)| a);
        if !in_flight && previous.is_none() {
            return Err(Error::msg(format!(
                "{service} runs {} and the family has no earlier ACTIVE revision to return to",
                short_arn(&current)
            ))
            .with_hint("`cortado revisions` lists the ACTIVE revisions"));
        }
        let result = if args.no_wait {
            // Start it and leave: one mutating call, no following.
            if in_flight && let Some(arn) = &ours.service_deployment_arn {
                s.clients
                    .stop_service_deployment(arn, crate::aws::ServiceDeploymentStop::Rollback)
                    .await?;
            } else if let Some(prev) = &previous {
                s.clients
                    .update_service(&ServiceUpdate {
                        cluster: cluster.clone(),
                        service: service.clone(),
                        task_definition: Some(prev.clone()),
                        ..ServiceUpdate::default()
                    })
                    .await?;
            }
            RollbackResult::Done("started (--no-wait)".into())
        } else if in_flight && ours.service_deployment_arn.is_some() {
            run::roll_back(&follow, &ours, previous.as_deref(), false, deadline).await
        } else {
            let as_ours = Ours {
                service_deployment_arn: None,
                ..ours.clone()
            };
            run::roll_back(&follow, &as_ours, previous.as_deref(), false, deadline).await
        };
        let outcome = match &result {
            RollbackResult::Done(_) => RunOutcome::Succeeded,
            RollbackResult::NotPossible(_) => RunOutcome::FailedNotRolledBack,
            RollbackResult::Failed(_) | RollbackResult::Unsettled(_) => RunOutcome::RollbackFailed,
        };
        if args.deregister && matches!(result, RollbackResult::Done(_)) && !args.no_wait {
            s.clients.deregister_task_definition(&current).await?;
            emitter.emit(Event::Warning {
                message: format!(
                    "deregistered the rolled-back revision {}",
                    short_arn(&current)
                ),
            });
        }
        reports.push(Report {
            cluster,
            service,
            outcome,
            detail: result.text(),
            task_definition_arn: previous,
            previous_task_definition: Some(current),
            deployment_id: None,
            duration: started_at.elapsed(),
            stopped_reasons: Vec::new(),
            plan: None,
        });
    }
    let events = log.lock().unwrap_or_else(|e| e.into_inner()).clone();
    finish(printer, &reports, &events)
}
