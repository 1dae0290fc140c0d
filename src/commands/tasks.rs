//! `cortado tasks`: the service's tasks (running, and with `--stopped` the recently stopped
//! ones with their reasons), as text, JSON or ecspresso's TSV; `--find` prints one task's
//! full description as JSON; `--stop` stops one (StopTask), after checking that it belongs to
//! the service. One task is picked by `--id`, by `--stop ID`, or, when the service has a
//! single task, that one (cortado does not prompt: with several, name one). A config without
//! `service:` works on its task definition family's tasks instead.

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
#[derive(Debug, Clone, Default, clap::Args)]
pub struct TasksArgs {
    /// Also list recently stopped tasks.
    #[arg(long)]
    pub stopped: bool,
    /// The task `--find` and `--stop` act on (its id or ARN).
    #[arg(long, value_name = "ID")]
    pub id: Option<String>,
    /// Print the task's full description (DescribeTasks) as JSON.
    #[arg(long, conflicts_with = "stop")]
    pub find: bool,
    /// Stop the task (`--stop ID`, or `--stop` with `--id`); ECS starts a replacement.
    #[arg(long, value_name = "ID", num_args = 0..=1, default_missing_value = "")]
    pub stop: Option<String>,
    /// Accepted for ecspresso's `tasks --stop --force`: cortado never asks before stopping.
    #[arg(long)]
    pub force: bool,
    /// ecspresso's subcommands (pre-v3): `list`, `find`, `stop`, `logs [-f]`.
    #[command(subcommand)]
    pub action: Option<TasksAction>,
}

/// `cortado tasks list|find|stop|logs`.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum TasksAction {
    /// List the tasks (as `cortado tasks`).
    List,
    /// Print one task's full description as JSON (as `--find`).
    Find,
    /// Stop one task (as `--stop`).
    Stop,
    /// The CloudWatch Logs of the service's running tasks; `-f` follows them.
    Logs(super::tasks_logs::LogsArgs),
}

/// The tasks of one service of the run.
struct Listed {
    service: String,
    cluster: String,
    tasks: Vec<Task>,
}

pub async fn run(settings: &Settings, printer: &mut Printer, args: &TasksArgs) -> Result<ExitCode> {
    let mut args = args.clone();
    match args.action.take() {
        Some(TasksAction::Logs(l)) => return super::tasks_logs::run(settings, printer, &l).await,
        Some(TasksAction::Find) => args.find = true,
        Some(TasksAction::Stop) if args.stop.is_none() => args.stop = Some(String::new()),
        Some(TasksAction::Stop | TasksAction::List) | None => {}
    }
    let args = &args;
    let stop = args.stop.as_deref().map(|s| match s {
        "" => args.id.as_deref().unwrap_or(""),
        id => id,
    });
    let (locals, s) = session::open(settings, printer).await?;
    let mut listed = Vec::new();
    for local in &locals {
        let cluster = local.config.cluster.clone();
        // A config without `service:` lists its task definition family's tasks, as
        // ecspresso's `tasks` does.
        let (service, filter) = match local.service_opt() {
            Some(service) => (
                service.to_string(),
                TaskFilter::Service(service.to_string()),
            ),
            None => {
                let family = local.task.family().unwrap_or_default().to_string();
                (family.clone(), TaskFilter::Family(family))
            }
        };
        let mut arns = s
            .clients
            .list_tasks(&cluster, &filter, DesiredStatus::Running)
            .await?;
        if args.stopped || stop.is_some() || args.find {
            let stopped = s
                .clients
                .list_tasks(&cluster, &filter, DesiredStatus::Stopped);
            arns.extend(stopped.await?);
        }
        let tasks = s.clients.describe_tasks(&cluster, &arns).await?;
        listed.push(Listed {
            service,
            cluster,
            tasks,
        });
    }
    if let Some(id) = stop {
        let (task, l) = pick(&listed, Some(id).filter(|i| !i.is_empty()))?;
        let arn = task.task_arn().unwrap_or_default();
        if task.last_status() == Some("STOPPED") {
            return Err(Error::input(Diagnostic::error(format!(
                "task {} of {} has already stopped",
                short_arn(arn),
                l.service
            ))));
        }
        s.clients
            .stop_task(&l.cluster, arn, "stopped by cortado tasks --stop")
            .await?;
        printer.info(&format!(
            "stopped task {} of {} (ECS starts a replacement to keep the desired count)",
            short_arn(arn),
            l.service
        ));
        return Ok(ExitCode::Success);
    }
    if args.find {
        let (task, _) = pick(&listed, args.id.as_deref())?;
        let v = crate::model::codec::encode(task).map_err(Error::internal)?;
        printer.out_json(&v);
        return Ok(ExitCode::Success);
    }
    print(printer, settings.tsv, &listed);
    Ok(ExitCode::Success)
}

/// The one task `id` names (its id or ARN), else the only task of the run.
fn pick<'a>(listed: &'a [Listed], id: Option<&str>) -> Result<(&'a Task, &'a Listed)> {
    let all = || {
        listed
            .iter()
            .flat_map(|l| l.tasks.iter().map(move |t| (t, l)))
    };
    match id {
        Some(id) => all()
            .find(|(t, _)| {
                t.task_arn()
                    .is_some_and(|a| a == id || a.rsplit('/').next() == Some(id))
            })
            .ok_or_else(|| {
                Error::input(
                    Diagnostic::error(format!("no task {id} in the services of this run"))
                        .hint("`cortado tasks` lists them; give the task id (the last part of its ARN) or its ARN"),
                )
            }),
        None => {
            let running: Vec<_> = all()
                .filter(|(t, _)| t.last_status() != Some("STOPPED"))
                .collect();
            match running.as_slice() {
                [one] => Ok(*one),
                [] => Err(Error::input(Diagnostic::error(
                    "the services of this run have no running task",
                ))),
                many => Err(Error::input(
                    Diagnostic::error(format!(
                        "the services of this run have {} running tasks: which one?",
                        many.len()
                    ))
                    .hint("name it with --id ID (`cortado tasks` lists them)"),
                )),
            }
        }
    }
}

/// The listing, as JSON, ecspresso's TSV (its columns, a header first) or text.
fn print(printer: &Printer, tsv: bool, listed: &[Listed]) {
    if printer.format == Format::Json {
        printer.out_json(&json!({
            "services": listed.iter().map(|l| json!({
                "service": l.service,
                "cluster": l.cluster,
                "tasks": l.tasks.iter().map(task_json).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
        }));
        return;
    }
    let mut out = String::new();
    if tsv {
        out.push_str(
            "ID\tTaskDefinition\tInstance\tLastStatus\tDesiredStatus\tCreatedAt\tGroup\tType\n",
        );
    }
    for l in listed {
        if !tsv {
            out.push_str(&format!(
                "{} (cluster {}): {} tasks\n",
                l.service,
                l.cluster,
                l.tasks.len()
            ));
        }
        for t in &l.tasks {
            out.push_str(&if tsv { tsv_row(t) } else { text_row(t) });
        }
    }
    printer.out(out.trim_end());
}

fn tsv_row(t: &Task) -> String {
    let cell = |s: Option<&str>| {
        // A tab or a newline in a value (ECS's strings are untrusted) would shift the columns.
        s.unwrap_or_default().replace(['\t', '\n', '\r'], " ")
    };
    let created = t.created_at().map(ToString::to_string);
    format!(
        "{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\n",
        cell(t.task_arn().and_then(|a| a.rsplit('/').next())),
        cell(t.task_definition_arn().map(short_arn)),
        cell(
            t.container_instance_arn()
                .and_then(|a| a.rsplit('/').next())
        ),
        cell(t.last_status()),
        cell(t.desired_status()),
        cell(created.as_deref()),
        cell(t.group()),
        cell(t.launch_type().map(|l| l.as_str())),
    )
}

fn text_row(t: &Task) -> String {
    let v = task_json(t);
    format!(
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
    )
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
