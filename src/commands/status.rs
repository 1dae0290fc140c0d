//! `cortado status`: the service, its deployments, tasks, target health and recent events.

use crate::untrusted::Untrusted;
use serde_json::json;

use super::session;
use crate::deploy::controller::seam::service_not_found;
use crate::deploy::core::poll::LbPair;
use crate::deploy::core::verdict::short_arn;
use crate::deploy::observe::{deployment_views, lb_pairs, service_deployment_view, strategy_of};
use crate::error::{ExitCode, Result};
use crate::report::{Format, Printer};
use crate::settings::Settings;

/// Flags of `cortado status`.
#[derive(Debug, Clone, clap::Args)]
pub struct StatusArgs {
    /// How many recent service events to show.
    #[arg(long, default_value_t = 10)]
    pub events: usize,
}

/// `cortado status`: deployments, recent events, tasks and target health.
pub async fn run(
    settings: &Settings,
    printer: &mut Printer,
    args: &StatusArgs,
) -> Result<ExitCode> {
    let events = args.events;
    let (locals, s) = session::open(settings, printer).await?;
    for local in &locals {
        let service = local.service_name()?;
        let cluster = &local.config.cluster;
        let Some(svc) = s.clients.describe_service(cluster, service).await? else {
            return Err(service_not_found(service, cluster, s.clients.region()));
        };
        let deployments = deployment_views(&svc);
        let strategy = strategy_of(&svc);
        // The current service deployment: its lifecycle stage and a PAUSE hook it waits on.
        let current = match svc.current_service_deployment() {
            Some(arn) => s
                .clients
                .describe_service_deployments(&[arn.to_string()])
                .await?
                .iter()
                .map(service_deployment_view)
                .next(),
            None => None,
        };
        let mut targets = Vec::new();
        let pairs = lb_pairs(&svc, &strategy);
        for tg in pairs.iter().flat_map(LbPair::target_groups) {
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
        let recent: Vec<(String, Untrusted)> = svc
            .events()
            .iter()
            .take(events)
            .map(|e| {
                (
                    e.created_at().map(|t| t.to_string()).unwrap_or_default(),
                    e.message().unwrap_or_default().into(),
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
                "strategy": strategy.words(),
                "service_deployment": current.as_ref().map(|c| json!({
                    "arn": c.arn,
                    "status": c.status,
                    "lifecycle_stage": c.lifecycle_stage,
                    "waiting_hook": c.awaiting().map(|h| h.hook_id.clone()),
                })),
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
                if let Some(c) = &current {
                    out.push_str(&format!(
                        "service deployment ({}): {}{}{}\n",
                        strategy.words(),
                        c.status,
                        if c.lifecycle_stage.is_absent() {
                            String::new()
                        } else {
                            format!(" at {}", c.lifecycle_stage)
                        },
                        match c.awaiting() {
                            Some(_) => ", waiting on a PAUSE hook: `cortado continue` (or \
                                       `--rollback`) answers it"
                                .to_string(),
                            None => String::new(),
                        }
                    ));
                }
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
                        d.rollout_state
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
                    for (tg, id, st) in &targets {
                        let group = tg.rsplit('/').nth(1).unwrap_or(tg);
                        out.push_str(&format!("  {id:<16} {st:<10} {group}\n"));
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
