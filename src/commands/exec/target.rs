//! Which task and container an `exec` session goes to, and whether ECS Exec can work there.
//!
//! Receives the config's service (or `--id`) and `--container`; hands on a [`Picked`] task
//! and container, or a refusal that says what is wrong and how to fix it — before any
//! session starts: the task was started without `enableExecuteCommand`; the container does
//! not exist; its ExecuteCommandAgent is not RUNNING (the task's `managedAgents`); the
//! cluster encrypts sessions with KMS (not supported); the task role lacks the `ssmmessages`
//! permissions (asked of IAM's policy simulator; when cortado may not simulate, it says so
//! and goes on).

use std::io::{BufRead, IsTerminal, Write};

use super::TargetArgs;
use crate::aws::Clients;
use crate::aws::TaskFilter;
use crate::aws::exec::{EXEC_ACTIONS, RoleCheck};
use crate::aws::types::ecs::{DesiredStatus, Task};
use crate::deploy::local::Local;
use crate::error::{Diagnostic, Error, Result};
use crate::report::Printer;

/// The task and container of a session.
#[derive(Debug, Clone)]
pub(super) struct Picked {
    pub cluster: String,
    pub task: Task,
    pub container: String,
}

impl Picked {
    pub(super) fn task_arn(&self) -> &str {
        self.task.task_arn().unwrap_or_default()
    }

    pub(super) fn task_id(&self) -> &str {
        self.task_arn().rsplit('/').next().unwrap_or_default()
    }

    /// Session Manager's target for the container: `ecs:CLUSTER_TASKID_RUNTIMEID`.
    pub(super) fn ssm_target(&self) -> String {
        let runtime = self
            .task
            .containers()
            .iter()
            .find(|c| c.name() == Some(&self.container))
            .and_then(|c| c.runtime_id())
            .unwrap_or_default();
        format!("ecs:{}_{}_{runtime}", self.cluster, self.task_id())
    }
}

fn refuse(message: impl Into<String>, hint: impl Into<String>) -> Error {
    Error::input(Diagnostic::error(message).hint(hint))
}

fn short(arn: &str) -> &str {
    arn.rsplit('/').next().unwrap_or(arn)
}

fn interactive() -> bool {
    std::io::stdin().is_terminal() && std::io::stderr().is_terminal()
}

/// Asks on the terminal which of `items` (shown with `labels`); the index.
fn pick_on_terminal(what: &str, labels: &[String]) -> Result<usize> {
    let mut err = std::io::stderr();
    for (i, l) in labels.iter().enumerate() {
        let _ = writeln!(err, "  {}) {l}", i + 1);
    }
    loop {
        let _ = write!(err, "{what} [1-{}]: ", labels.len());
        let _ = err.flush();
        let mut line = String::new();
        if std::io::stdin().lock().read_line(&mut line).unwrap_or(0) == 0 {
            return Err(refuse(
                format!("no {what} picked"),
                "pass --id / --container",
            ));
        }
        let t = line.trim();
        if let Ok(n) = t.parse::<usize>()
            && (1..=labels.len()).contains(&n)
        {
            return Ok(n - 1);
        }
        if let Some(i) = labels
            .iter()
            .position(|l| l.starts_with(t))
            .filter(|_| !t.is_empty())
        {
            return Ok(i);
        }
    }
}

/// The running task: `--id`, else the service's only one (or the one picked).
pub(super) async fn pick(
    clients: &Clients,
    local: &Local,
    args: &TargetArgs,
    printer: &Printer,
) -> Result<Picked> {
    let cluster = local.config.cluster.clone();
    let tasks = match &args.id {
        Some(id) => {
            clients
                .describe_tasks(&cluster, std::slice::from_ref(id))
                .await?
        }
        None => {
            let service = local.service_name()?;
            let arns = clients
                .list_tasks(
                    &cluster,
                    &TaskFilter::Service(service.to_string()),
                    DesiredStatus::Running,
                )
                .await?;
            clients.describe_tasks(&cluster, &arns).await?
        }
    };
    let running: Vec<Task> = tasks
        .into_iter()
        .filter(|t| t.last_status() == Some("RUNNING"))
        .collect();
    let task = match (running.len(), &args.id) {
        (0, Some(id)) => {
            return Err(refuse(
                format!("task {id} is not running in cluster {cluster}"),
                "`cortado tasks` lists the service's tasks; give a running one's id",
            ));
        }
        (0, None) => {
            return Err(refuse(
                format!("the service has no running task in cluster {cluster}"),
                "deploy or scale it up first (`cortado scale --tasks 1`)",
            ));
        }
        (1, _) => running[0].clone(),
        _ if interactive() => {
            let labels: Vec<String> = running.iter().map(task_label).collect();
            running[pick_on_terminal("task", &labels)?].clone()
        }
        _ => {
            let ids: Vec<&str> = running
                .iter()
                .filter_map(|t| t.task_arn())
                .map(short)
                .collect();
            return Err(refuse(
                format!("{} tasks are running: {}", ids.len(), ids.join(", ")),
                "pick one with --id TASK (on a terminal cortado asks)",
            ));
        }
    };
    let container = pick_container(&task, args.container.as_deref(), printer)?;
    Ok(Picked {
        cluster,
        task,
        container,
    })
}

fn task_label(t: &Task) -> String {
    format!(
        "{}  {}  started {}",
        short(t.task_arn().unwrap_or_default()),
        short(t.task_definition_arn().unwrap_or_default()),
        t.started_at().map(|d| d.to_string()).unwrap_or_default()
    )
}

fn pick_container(task: &Task, wanted: Option<&str>, printer: &Printer) -> Result<String> {
    let names: Vec<String> = task
        .containers()
        .iter()
        .filter_map(|c| c.name())
        .map(str::to_string)
        .collect();
    match wanted {
        Some(w) if names.iter().any(|n| n == w) => Ok(w.to_string()),
        Some(w) => Err(refuse(
            format!(
                "task {} has no container {w:?}; its containers: {}",
                short(task.task_arn().unwrap_or_default()),
                names.join(", ")
            ),
            "pass one of them with --container",
        )),
        None if names.len() == 1 => Ok(names[0].clone()),
        None if names.is_empty() => Err(refuse("the task has no containers", "check the task")),
        None if interactive() => Ok(names[pick_on_terminal("container", &names)?].clone()),
        None => {
            printer.info(&format!(
                "exec: container {} (the task has {}; --container picks another)",
                names[0],
                names.join(", ")
            ));
            Ok(names[0].clone())
        }
    }
}

/// What in the task itself stops ECS Exec, with the fix. No I/O.
pub(super) fn refusal(task: &Task, container: &str) -> Option<Error> {
    let id = short(task.task_arn().unwrap_or_default());
    if !task.enable_execute_command() {
        return Some(refuse(
            format!(
                "task {id} was started without enableExecuteCommand, so ECS Exec cannot reach it"
            ),
            "set \"enableExecuteCommand\": true in the service definition and deploy (`cortado deploy`, or `--force-new-deployment` when nothing else changed): only tasks started after that can be reached",
        ));
    }
    let Some(c) = task
        .containers()
        .iter()
        .find(|c| c.name() == Some(container))
    else {
        return Some(refuse(
            format!("task {id} has no container {container:?}"),
            "pass an existing one with --container",
        ));
    };
    let agent = c
        .managed_agents()
        .iter()
        .find(|a| a.name().map(|n| n.as_str()) == Some("ExecuteCommandAgent"));
    let status = agent.and_then(|a| a.last_status()).unwrap_or("absent");
    if status != "RUNNING" {
        let reason = agent
            .and_then(|a| a.reason())
            .map(|r| format!(" ({r})"))
            .unwrap_or_default();
        return Some(refuse(
            format!(
                "the ExecuteCommandAgent of container {container} in task {id} is {status}{reason}, not RUNNING"
            ),
            "wait a few seconds after the task starts and try again; if it stays so, check the task role's ssmmessages permissions, the platform version (Fargate 1.4.0 or later) and that the container image has no read-only root file system blocking the agent",
        ));
    }
    None
}

/// The checks before a session: the task's own ([`refusal`]), the cluster's KMS
/// encryption, the task role's permissions.
pub(super) async fn preflight(clients: &Clients, p: &Picked, printer: &Printer) -> Result<()> {
    if let Some(e) = refusal(&p.task, &p.container) {
        return Err(e);
    }
    if let Some(key) = clients.exec_kms_key(&p.cluster).await? {
        return Err(refuse(
            format!(
                "cluster {} encrypts ECS Exec sessions with KMS key {key}; cortado does not support KMS-encrypted sessions",
                p.cluster
            ),
            "use `aws ecs execute-command` with the session-manager-plugin for this cluster, or remove executeCommandConfiguration.kmsKeyId from the cluster",
        ));
    }
    let td = p.task.task_definition_arn().unwrap_or_default();
    let (def, _) = clients.describe_task_definition(td).await?;
    let Some(role) = def.task_role_arn().filter(|r| !r.is_empty()) else {
        return Err(refuse(
            format!(
                "task definition {} has no taskRoleArn: ECS Exec's agent needs a task role",
                short(td)
            ),
            format!(
                "add a taskRoleArn whose role allows {}",
                EXEC_ACTIONS.join(", ")
            ),
        ));
    };
    match clients.check_exec_role(role).await {
        RoleCheck::Allowed => Ok(()),
        RoleCheck::Denied(denied) => {
            let names: Vec<String> = denied.iter().map(|(a, d)| format!("{a} ({d})")).collect();
            Err(refuse(
                format!(
                    "task role {role} may not use ECS Exec: {}",
                    names.join(", ")
                ),
                format!(
                    "allow them on the task role, e.g. an inline policy {{\"Version\":\"2012-10-17\",\"Statement\":[{{\"Effect\":\"Allow\",\"Action\":[{}],\"Resource\":\"*\"}}]}}",
                    EXEC_ACTIONS
                        .iter()
                        .map(|a| format!("\"{a}\""))
                        .collect::<Vec<_>>()
                        .join(",")
                ),
            ))
        }
        RoleCheck::Unknown(why) => {
            printer.info(&format!(
                "exec: could not check task role {role}'s ssmmessages permissions ({why}); going on"
            ));
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_ecs::types::{Container, ManagedAgent, ManagedAgentName};

    fn task(exec: bool, agent: Option<&str>) -> Task {
        let mut c = Container::builder().name("web").runtime_id("abc-1");
        if let Some(s) = agent {
            c = c.managed_agents(
                ManagedAgent::builder()
                    .name(ManagedAgentName::ExecuteCommandAgent)
                    .last_status(s)
                    .build(),
            );
        }
        Task::builder()
            .task_arn("arn:aws:ecs:us-east-1:1:task/c/0123")
            .enable_execute_command(exec)
            .containers(c.build())
            .build()
    }

    fn message(e: Option<Error>) -> String {
        e.map(|e| e.diagnostics[0].message.clone())
            .unwrap_or_default()
    }

    #[test]
    fn refusals_name_the_cause() {
        assert!(refusal(&task(true, Some("RUNNING")), "web").is_none());
        assert!(
            message(refusal(&task(false, None), "web")).contains("without enableExecuteCommand")
        );
        assert!(
            message(refusal(&task(true, Some("RUNNING")), "db")).contains("no container \"db\"")
        );
        assert!(
            message(refusal(&task(true, Some("STOPPED")), "web"))
                .contains("is STOPPED, not RUNNING")
        );
        assert!(message(refusal(&task(true, None), "web")).contains("is absent"));
        let p = Picked {
            cluster: "c".into(),
            task: task(true, Some("RUNNING")),
            container: "web".into(),
        };
        assert_eq!(p.ssm_target(), "ecs:c_0123_abc-1");
    }
}
