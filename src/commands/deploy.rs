//! `cortado deploy`: for each config, decide, apply, follow, roll back; then summarize.
//! Every config is rendered and validated before the first AWS call.

use std::time::Duration;

use serde_json::json;
use tokio::time::Instant;

use super::session::{self, Session};
use crate::cli::DeployArgs;
use crate::deploy::event::{Emitter, Event, Stamped};
use crate::deploy::local::Local;
use crate::deploy::local::timeout;
use crate::deploy::observe::ClusterObservers;
use crate::deploy::run::{self, DeployFlags, Follow, Report, RunOutcome};
use crate::deploy::verdict::FastFail;
use crate::deploy::watch::{Cadence, Outcome, Rules, watch};
use crate::error::{ExitCode, Result};
use crate::report::{Format, Printer};
use crate::settings::Settings;

impl From<&DeployArgs> for DeployFlags {
    fn from(a: &DeployArgs) -> Self {
        DeployFlags {
            dry_run: a.dry_run,
            no_wait: a.no_wait,
            skip_task_definition: a.skip_task_definition,
            latest_task_definition: a.latest_task_definition,
            revision: a.revision,
            force_register: a.force_register,
            force_new_deployment: a.force_new_deployment,
            tasks: a.tasks,
            no_update_service: a.no_update_service,
            no_rollback: a.no_rollback,
        }
    }
}

pub async fn run(
    settings: &Settings,
    printer: &mut Printer,
    args: &DeployArgs,
) -> Result<ExitCode> {
    let flags = DeployFlags::from(args);
    let ctx = settings.render_context()?;
    printer.set_secrets(ctx.secrets.clone());
    let locals = session::load_locals(settings, &ctx, printer)?;
    unique_services(&locals)?;
    let Session { clients, .. } = &session::connect(settings, &locals, printer).await?;
    let emitter = Emitter::new();
    let log = session::wire_sinks(&emitter, printer);
    let cancel = session::cancel_on_signals();
    let cadence = Cadence::default();
    let started_at = Instant::now();
    // The run's deadline: the longest of its configs' timeouts.
    let deadline = locals
        .iter()
        .map(|l| started_at + timeout(settings.timeout, &l.config))
        .max()
        .unwrap_or(started_at);

    // 1. Decide and apply every service; those that started a deployment are followed.
    let mut reports = Vec::new();
    let mut followed: Vec<(usize, &Local, run::Started, Option<String>)> = Vec::new();
    for local in &locals {
        let service = local.service_name()?.to_string();
        let decision = run::decide(clients, local, &flags).await?;
        emitter.emit(Event::Plan {
            service: service.clone(),
            cluster: local.config.cluster.clone(),
            register: decision.plan.new_revision,
            create_service: decision.plan.create_service,
            summary: decision.plan.summary(),
        });
        let mut report = Report {
            cluster: local.config.cluster.clone(),
            service: service.clone(),
            outcome: RunOutcome::DryRun,
            detail: String::new(),
            task_definition_arn: None,
            previous_task_definition: decision.previous_task_definition.clone(),
            deployment_id: None,
            duration: Duration::ZERO,
            stopped_reasons: Vec::new(),
            plan: Some(decision.plan.clone()),
        };
        if flags.dry_run {
            if printer.format == Format::Text {
                printer.out(&decision.plan.text(printer.color()));
            }
            report.detail = "dry run: nothing was changed".into();
            reports.push(report);
            continue;
        }
        let (td_arn, started) = run::apply(clients, local, &decision, &flags, &emitter).await?;
        report.task_definition_arn = Some(td_arn);
        match started {
            None => {
                (report.outcome, report.detail) = if flags.no_update_service {
                    (
                        RunOutcome::NotFollowed,
                        "registered only (--no-update-service)".into(),
                    )
                } else {
                    (
                        RunOutcome::NoChange,
                        "nothing differs from what runs: no deployment started".into(),
                    )
                };
            }
            Some(started) => {
                report.deployment_id = Some(started.ours.deployment_id.clone());
                if flags.no_wait {
                    report.outcome = RunOutcome::NotFollowed;
                    report.detail = "deployment started (--no-wait)".into();
                } else {
                    followed.push((
                        reports.len(),
                        local,
                        started,
                        decision.previous_task_definition.clone(),
                    ));
                }
            }
        }
        reports.push(report);
    }

    // 2. Follow every started deployment in one watch (one poll per cluster, batched).
    if !followed.is_empty() {
        let services: Vec<(String, String)> = followed
            .iter()
            .map(|(_, l, _, _)| {
                (
                    l.config.service.clone().unwrap_or_default(),
                    l.config.cluster.clone(),
                )
            })
            .collect();
        let targets: Vec<(String, crate::deploy::verdict::Ours)> = followed
            .iter()
            .map(|(_, l, s, _)| (l.config.service.clone().unwrap_or_default(), s.ours.clone()))
            .collect();
        let mut observer = ClusterObservers::new(clients, &services);
        // Each service is judged by its own config's fast-fail rules.
        let rules = Rules {
            default: FastFail::default(),
            per_service: followed
                .iter()
                .map(|(_, l, _, _)| {
                    (
                        l.config.service.clone().unwrap_or_default(),
                        l.rollout.fast_fail.clone(),
                    )
                })
                .collect(),
        };
        let outcomes = watch(
            &mut observer,
            targets,
            &rules,
            &cadence,
            deadline,
            cancel.clone(),
            &emitter,
        )
        .await;

        // 3. Settle each: success, or roll back (unless disabled, or ECS already does).
        for (i, local, started, previous) in &followed {
            let service = local.config.service.clone().unwrap_or_default();
            let outcome = outcomes
                .get(&service)
                .cloned()
                .unwrap_or(Outcome::TimedOut {
                    last: String::new(),
                });
            let follow = Follow {
                clients,
                cluster: &local.config.cluster,
                service: &service,
                emitter: &emitter,
                cadence: &cadence,
                cancel: cancel.clone(),
            };
            let rollback_allowed = local.rollout.rollback && !flags.no_rollback;
            let (o, detail) = run::settle(
                &follow,
                local,
                started,
                previous.as_deref(),
                rollback_allowed,
                outcome,
                deadline,
            )
            .await;
            let r = &mut reports[*i];
            r.outcome = o;
            r.detail = detail;
            r.duration = started_at.elapsed();
            r.stopped_reasons = stopped_reasons(
                &log.lock().unwrap_or_else(|e| e.into_inner()),
                &service,
                &started.ours.deployment_id,
            );
        }
    }
    let events = log.lock().unwrap_or_else(|e| e.into_inner()).clone();
    finish(printer, &reports, &events)
}

/// One run follows services by name: two configs naming the same service (in different
/// clusters) must deploy in separate runs.
fn unique_services(locals: &[Local]) -> Result<()> {
    let mut seen = std::collections::BTreeMap::new();
    for l in locals {
        let name = l.service_name()?;
        if let Some(other) = seen.insert(name.to_string(), l.config.path.clone()) {
            return Err(crate::error::Error::msg(format!(
                "service {name} is named by both {} and {}",
                other.display(),
                l.config.path.display()
            ))
            .with_hint("deploy services with the same name in separate runs"));
        }
    }
    Ok(())
}

/// The stop reasons of our deployment's tasks, most frequent first.
fn stopped_reasons(events: &[Stamped], service: &str, deployment: &str) -> Vec<(String, usize)> {
    let mut counts: Vec<(String, usize)> = Vec::new();
    for e in events {
        if let Event::TaskStopped {
            service: s,
            started_by,
            reason,
            ..
        } = &e.event
            && s == service
            && started_by.as_deref() == Some(deployment)
            // ECS stopping surplus tasks is not a failure reason.
            && !reason.starts_with("Scaling activity initiated by")
        {
            match counts.iter_mut().find(|(r, _)| r == reason) {
                Some(c) => c.1 += 1,
                None => counts.push((reason.clone(), 1)),
            }
        }
    }
    counts.sort_by_key(|c| std::cmp::Reverse(c.1));
    counts
}

/// Prints the summary (text or JSON), writes the Actions outputs and job summary, and gives
/// the exit code: the worst outcome of the run.
pub fn finish(printer: &Printer, reports: &[Report], events: &[Stamped]) -> Result<ExitCode> {
    match printer.format {
        Format::Text => {
            for r in reports {
                printer.out(&summary_text(r));
            }
        }
        Format::Json => printer.out(
            &serde_json::to_string(&json!({
                "event": "result",
                "services": reports.iter().map(summary_json).collect::<Vec<_>>(),
            }))
            .unwrap_or_default(),
        ),
    }
    if crate::report::github::is_actions() {
        let mut outputs = crate::report::github::DeployOutputs::from_events(events);
        if let Some(plan) = reports.iter().find_map(|r| r.plan.as_ref()) {
            // Step outputs are not masked by the runner's log masking: mask them here.
            let diff = printer.secrets().mask(&plan.diff_text(false));
            outputs.diff = (!diff.is_empty()).then_some(diff);
        }
        crate::report::github::write_outputs_from_env(&outputs.pairs())?;
        let mut md = crate::report::github::summary_markdown(events, &printer.secrets());
        for r in reports {
            if let Some(p) = &r.plan {
                md.push('\n');
                md.push_str(&p.markdown());
            }
        }
        crate::report::github::append_summary_from_env(&printer.secrets().mask(&md))?;
    }
    Ok(reports
        .iter()
        .map(|r| r.outcome.exit_code())
        .max_by_key(|c| severity(*c))
        .unwrap_or(ExitCode::Success))
}

/// Which exit code wins when services end differently: the worst.
fn severity(c: ExitCode) -> u8 {
    match c {
        ExitCode::Success => 0,
        ExitCode::Changes => 1,
        ExitCode::FailedRolledBack => 2,
        ExitCode::TimedOut => 3,
        ExitCode::FailedNotRolledBack => 4,
        ExitCode::Cancelled => 5,
        ExitCode::BadInput | ExitCode::Aws | ExitCode::Internal => 6,
        ExitCode::RollbackFailed => 7,
    }
}

fn summary_text(r: &Report) -> String {
    let mut out = format!(
        "{}: {} — {}\n",
        r.service,
        r.outcome.label().to_uppercase(),
        r.detail
    );
    if let Some(td) = &r.task_definition_arn {
        out.push_str(&format!("  task definition: {td}\n"));
    }
    if let Some(prev) = &r.previous_task_definition
        && r.task_definition_arn.as_ref() != Some(prev)
    {
        out.push_str(&format!("  previous:        {prev}\n"));
    }
    if let Some(d) = &r.deployment_id {
        out.push_str(&format!("  deployment:      {d}\n"));
    }
    if !r.duration.is_zero() {
        out.push_str(&format!("  duration:        {}s\n", r.duration.as_secs()));
    }
    for (reason, n) in &r.stopped_reasons {
        out.push_str(&format!("  stopped x{n}: {reason}\n"));
    }
    out
}

fn summary_json(r: &Report) -> serde_json::Value {
    json!({
        "cluster": r.cluster,
        "service": r.service,
        "outcome": r.outcome.label(),
        "exit_code": r.outcome.exit_code() as u8,
        "detail": r.detail,
        "task_definition_arn": r.task_definition_arn,
        "previous_task_definition_arn": r.previous_task_definition,
        "deployment_id": r.deployment_id,
        "duration_seconds": r.duration.as_secs_f64(),
        "stopped_reasons": r.stopped_reasons.iter().map(|(r, n)| json!({"reason": r, "count": n})).collect::<Vec<_>>(),
        "plan": r.plan.as_ref().map(|p| p.json()),
    })
}
