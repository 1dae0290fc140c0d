//! `cortado tasks`: the service's tasks (running, and with `--stopped` the recently stopped
//! ones with their reasons); `--stop ID` stops one of them (StopTask), after checking that
//! it belongs to the service.

use crate::untrusted::Untrusted;
use serde_json::json;

use super::session;
use crate::aws::TaskFilter;
use crate::aws::types::ecs::{DesiredStatus, Task};
use crate::deploy::core::verdict::short_arn;
use crate::error::{Diagnostic, Error, ExitCode, Result};
use crate::report::{Format, Printer};
use crate::settings::Settings;

/// Flags of `cortado tasks`.
#[derive(Debug, Clone, clap::Args)]
pub struct TasksArgs {
    /// Also list recently stopped tasks.
    #[arg(long)]
    pub stopped: bool,
    /// Stop this task (its id or ARN); ECS starts a replacement.
    #[arg(long, value_name = "ID")]
    pub stop: Option<String>,
}

pub async fn run(settings: &Settings, printer: &mut Printer, args: &TasksArgs) -> Result<ExitCode> {
    let (stopped, stop) = (args.stopped, args.stop.as_deref());
    let (locals, s) = session::open(settings, printer).await?;
    let mut listed = Vec::new();
    for local in &locals {
        let service = local.service_name()?;
        let cluster = &local.config.cluster;
        let mut arns = s
            .clients
            .list_tasks(
                cluster,
                &TaskFilter::Service(service.to_string()),
                DesiredStatus::Running,
            )
            .await?;
        if stopped || stop.is_some() {
            arns.extend(
                s.clients
                    .list_tasks(
                        cluster,
                        &TaskFilter::Service(service.to_string()),
                        DesiredStatus::Stopped,
                    )
                    .await?,
            );
        }
        let tasks = s.clients.describe_tasks(cluster, &arns).await?;
        if let Some(id) = stop {
            let Some(task) = tasks.iter().find(|t| {
                t.task_arn()
                    .is_some_and(|a| a == id || a.rsplit('/').next() == Some(id))
            }) else {
                continue;
            };
            let arn = task.task_arn().unwrap_or_default();
            if task.last_status() == Some("STOPPED") {
                return Err(Error::input(Diagnostic::error(format!(
                    "task {id} of {service} has already stopped"
                ))));
            }
            s.clients
                .stop_task(cluster, arn, "stopped by cortado tasks --stop")
                .await?;
            printer.info(&format!(
                "stopped task {id} of {service} (ECS starts a replacement to keep the desired count)"
            ));
            return Ok(ExitCode::Success);
        }
        listed.push((service.to_string(), cluster.clone(), tasks));
    }
    if let Some(id) = stop {
        return Err(Error::input(
            Diagnostic::error(format!("no task {id} in the services of this run"))
                .hint("`cortado tasks` lists them; give the task id (the last part of its ARN) or its ARN"),
        ));
    }
    match printer.format {
        Format::Json => printer.out_json(&json!({
            "services": listed.iter().map(|(svc, cluster, tasks)| json!({
                "service": svc,
                "cluster": cluster,
                "tasks": tasks.iter().map(task_json).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
        })),
        Format::Text => {
            let mut out = String::new();
            for (svc, cluster, tasks) in &listed {
                out.push_str(&format!(
                    "{svc} (cluster {cluster}): {} tasks\n",
                    tasks.len()
                ));
                for t in tasks {
                    let v = task_json(t);
                    out.push_str(&format!(
                        "  {}  {:<14} {:<9} {:<20} {}{}\n",
                        v["id"].as_str().unwrap_or(""),
                        v["last_status"].as_str().unwrap_or(""),
                        v["health"].as_str().unwrap_or(""),
                        v["task_definition"].as_str().unwrap_or(""),
                        v["started_by"].as_str().unwrap_or(""),
                        // ECS's stop reason: anyone allowed ecs:StopTask writes it.
                        v["stopped_reason"]
                            .as_str()
                            .map(|r| format!("  stopped: {}", Untrusted::from(r)))
                            .unwrap_or_default()
                    ));
                }
            }
            printer.out(out.trim_end());
        }
    }
    Ok(ExitCode::Success)
}

fn task_json(t: &Task) -> serde_json::Value {
    json!({
        "id": t.task_arn().and_then(|a| a.rsplit('/').next()).unwrap_or_default(),
        "arn": t.task_arn(),
        "last_status": t.last_status(),
        "health": t.health_status().map(|h| h.as_str()),
        "task_definition": t.task_definition_arn().map(short_arn),
        "started_by": t.started_by(),
        "stopped_reason": t.stopped_reason(),
    })
}
