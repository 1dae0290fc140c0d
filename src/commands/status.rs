//! `cortado status`: the service, its deployments, tasks, target health and recent events.

use crate::untrusted::Untrusted;
use serde_json::json;

use super::session;
use crate::aws::Clients;
use crate::aws::types::ecs::Service;
use crate::deploy::controller::seam::service_not_found;
use crate::deploy::core::poll::LbPair;
use crate::deploy::core::state::Strategy;
use crate::deploy::core::verdict::{DeploymentView, ServiceDeploymentView, short_arn};
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
    let (locals, s) = session::open(settings, printer).await?;
    for local in &locals {
        let service = local.service_name()?;
        let cluster = &local.config.cluster;
        let Some(svc) = s.clients.describe_service(cluster, service).await? else {
            return Err(service_not_found(service, cluster, s.clients.region()));
        };
        let v = read(&s.clients, cluster, service, svc, args.events).await?;
        match printer.format {
            Format::Json => printer.out_json(&json_of(&v)),
            Format::Text => printer.out(&text_of(&v)),
        }
    }
    Ok(ExitCode::Success)
}

/// What `status` shows of one service.
struct View<'a> {
    cluster: &'a str,
    service: &'a str,
    svc: Service,
    strategy: Strategy,
    deployments: Vec<DeploymentView>,
    /// The current service deployment: its lifecycle stage and a PAUSE hook it waits on.
    current: Option<ServiceDeploymentView>,
    /// (target group, target id, state).
    targets: Vec<(String, String, String)>,
    /// (task id, last status, health, task definition, started by).
    tasks: Vec<(String, String, String, String, String)>,
    /// (time, message) of the most recent service events.
    recent: Vec<(String, Untrusted)>,
}

/// Reads what `status` shows of `svc`: its service deployment, target health, running tasks
/// and its `events` most recent events.
async fn read<'a>(
    clients: &Clients,
    cluster: &'a str,
    service: &'a str,
    svc: Service,
    events: usize,
) -> Result<View<'a>> {
    let deployments = deployment_views(&svc);
    let strategy = strategy_of(&svc);
    // The current service deployment: its lifecycle stage and a PAUSE hook it waits on.
    let current = match svc.current_service_deployment() {
        Some(arn) => clients
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
        for t in clients.describe_target_health(tg).await? {
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
    let task_arns = clients
        .list_tasks(
            cluster,
            &crate::aws::TaskFilter::Service(service.to_string()),
            crate::aws::types::ecs::DesiredStatus::Running,
        )
        .await?;
    let tasks: Vec<(String, String, String, String, String)> = clients
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
    Ok(View {
        cluster,
        service,
        svc,
        strategy,
        deployments,
        current,
        targets,
        tasks,
        recent,
    })
}

/// The JSON of `status --output json`.
fn json_of(v: &View) -> serde_json::Value {
    json!({
        "cluster": v.cluster,
        "service": v.service,
        "status": v.svc.status(),
        "task_definition": v.svc.task_definition(),
        "desired": v.svc.desired_count(),
        "running": v.svc.running_count(),
        "pending": v.svc.pending_count(),
        "strategy": v.strategy.words(),
        "service_deployment": v.current.as_ref().map(|c| json!({
            "arn": c.arn,
            "status": c.status,
            "lifecycle_stage": c.lifecycle_stage,
            "waiting_hook": c.awaiting().map(|h| h.hook_id.clone()),
        })),
        "deployments": v.deployments.iter().map(|d| json!({
            "id": d.id, "status": d.status, "task_definition": d.task_definition_arn,
            "desired": d.desired, "running": d.running, "pending": d.pending, "failed": d.failed,
            "rollout_state": d.rollout_state, "rollout_state_reason": d.rollout_state_reason,
        })).collect::<Vec<_>>(),
        "events": v.recent.iter().map(|(t, m)| json!({"at": t, "message": m})).collect::<Vec<_>>(),
        "targets": v.targets.iter().map(|(tg, id, st)| json!({"target_group": tg, "id": id, "state": st})).collect::<Vec<_>>(),
        "tasks": v.tasks.iter().map(|(id, st, h, td, by)| json!({"task": id, "last_status": st, "health": h, "task_definition": td, "started_by": by})).collect::<Vec<_>>(),
    })
}

/// The text of `status`.
fn text_of(v: &View) -> String {
    let mut out = format!(
        "{} (cluster {}): {}, {} running / {} desired / {} pending, on {}\n",
        v.service,
        v.cluster,
        v.svc.status().unwrap_or("?"),
        v.svc.running_count(),
        v.svc.desired_count(),
        v.svc.pending_count(),
        v.svc.task_definition().map(short_arn).unwrap_or("?"),
    );
    if let Some(c) = &v.current {
        out.push_str(&format!(
            "service deployment ({}): {}{}{}\n",
            v.strategy.words(),
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
    for d in &v.deployments {
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
    if !v.tasks.is_empty() {
        out.push_str("tasks:\n");
        for (id, st, h, td, by) in &v.tasks {
            out.push_str(&format!("  {id}  {st:<9} {h:<9} {td:<20} {by}\n"));
        }
    }
    if !v.targets.is_empty() {
        out.push_str("targets:\n");
        for (tg, id, st) in &v.targets {
            let group = tg.rsplit('/').nth(1).unwrap_or(tg);
            out.push_str(&format!("  {id:<16} {st:<10} {group}\n"));
        }
    }
    out.push_str("recent events:\n");
    for (t, m) in &v.recent {
        out.push_str(&format!("  {t}  {m}\n"));
    }
    out
}
