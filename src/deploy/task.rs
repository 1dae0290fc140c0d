//! One-off tasks: a task run from a config's task definition (a migration, a script), placed
//! like the service (network configuration, launch type or capacity provider strategy,
//! platform version), followed to STOPPED with its CloudWatch Logs, and the essential
//! container's exit code as its end. `cortado run` runs one; a release runs its `run:` steps
//! through the same path beside its deploys.
//!
//! Which task definition, as ecspresso's `run` chooses it ([`TaskPick`]): by default the
//! config's rendered one, registered unless the family's newest ACTIVE revision is
//! identical; the revision the service runs; the family's newest; or revision N.
//!
//! Receives a validated [`Local`] and the checked input ([`RunInput`]); the only writes are
//! the registration of a changed revision, RunTask, and StopTask on a timeout or a cancel.
//! Reports through the run's events (`task_started`, `task_status`, `log`, ...), so the
//! sinks, the secret masking and the timeline see the task as they see a deploy; hands on a
//! [`TaskEnd`] (and, for a release step, a [`ServiceResult`]). Never prints.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::controller::ecs::{active_revisions, registration_choice};
use super::controller::seam::{Local, TaskChoice};
use super::core::outcome::{RunOutcome, TaskOutcome, task_outcome};
use super::core::verdict::short_arn;
use super::event::{Emitter, Event};
use super::result::{Operation, ServiceResult};
use crate::aws::types::ecs::{
    CapacityProviderStrategyItem, ContainerDefinition, LaunchType, LogDriver, NetworkConfiguration,
    Task, TaskDefinition, TaskOverride,
};
use crate::aws::{Clients, OneOffTask};
use crate::error::{Diagnostic, Error, ErrorKind, Result};
use crate::model::codec;
use crate::release::{RunStep, Step};
use crate::untrusted::Untrusted;

/// `startedBy` of the tasks cortado starts (ECS keeps it on the task; ListTasks filters by it).
pub(crate) const STARTED_BY: &str = "cortado-run";
/// Time between two polls of the task (and its log stream).
const POLL: Duration = Duration::from_secs(1);

/// The command-line input of a run, checked before anything else happens.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunInput {
    pub container: Option<String>,
    pub command: Option<Vec<String>>,
    pub env: Vec<(String, String)>,
    /// `--overrides` (or `--overrides-file`): a TaskOverride as JSON (ECS's camelCase),
    /// already checked.
    pub overrides: Option<Value>,
    /// RunTask's `clientToken` (`--client-token`): a retry with it starts nothing new.
    pub client_token: Option<String>,
    /// The task's tags (`--tags K=V,...`) and RunTask's `propagateTags`.
    pub tags: Vec<(String, String)>,
    pub propagate_tags: Option<String>,
    /// How many tasks to start (`--count`, 1 to 10; 0 is read as 1).
    pub count: i32,
    /// Keep the Amazon EBS volumes the tasks get at launch after they stop
    /// (`--no-ebs-delete-on-termination`).
    pub keep_ebs_volumes: bool,
}

/// The volumes a one-off task gets at launch (ecspresso's rule): each `managedEBSVolume` of
/// the service definition's `volumeConfigurations`, with `terminationPolicy.deleteOnTermination`
/// false when `keep` (`--no-ebs-delete-on-termination`), true otherwise.
pub(crate) fn launch_volumes(
    local: &Local,
    keep: bool,
) -> Result<Vec<crate::aws::types::ecs::TaskVolumeConfiguration>> {
    use crate::aws::types::ecs::{
        TaskManagedEbsVolumeConfiguration, TaskManagedEbsVolumeTerminationPolicy,
        TaskVolumeConfiguration,
    };
    let Some(service) = &local.service else {
        return Ok(Vec::new());
    };
    let invalid = |what: String| {
        bad(
            format!("the service definition's volumeConfigurations: {what}"),
            "each entry needs a name and a managedEBSVolume with a roleArn, as ECS requires",
        )
    };
    let mut out = Vec::new();
    for v in service.volume_configurations() {
        let name = v.name().to_string();
        let Some(ebs) = v.managed_ebs_volume() else {
            continue;
        };
        let policy = TaskManagedEbsVolumeTerminationPolicy::builder()
            .delete_on_termination(!keep)
            .build()
            .map_err(|e| invalid(e.to_string()))?;
        let managed = TaskManagedEbsVolumeConfiguration::builder()
            .set_encrypted(ebs.encrypted())
            .set_kms_key_id(ebs.kms_key_id().map(str::to_string))
            .set_volume_type(ebs.volume_type().map(str::to_string))
            .set_size_in_gib(ebs.size_in_gib())
            .set_snapshot_id(ebs.snapshot_id().map(str::to_string))
            .set_volume_initialization_rate(ebs.volume_initialization_rate())
            .set_iops(ebs.iops())
            .set_throughput(ebs.throughput())
            .set_tag_specifications(
                (!ebs.tag_specifications().is_empty()).then(|| ebs.tag_specifications().to_vec()),
            )
            .set_role_arn(Some(ebs.role_arn().to_string()))
            .termination_policy(policy)
            .set_filesystem_type(ebs.filesystem_type().cloned())
            .build()
            .map_err(|e| invalid(format!("{name}: {e}")))?;
        out.push(
            TaskVolumeConfiguration::builder()
                .name(name.clone())
                .managed_ebs_volume(managed)
                .build()
                .map_err(|e| invalid(format!("{name}: {e}")))?,
        );
    }
    Ok(out)
}

/// Until when a one-off task is followed (`--wait-until`, ecspresso's).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) enum WaitUntil {
    /// To its end: its exit code is passed on.
    #[default]
    Stopped,
    /// Until it is RUNNING; it is left running and the run exits 0.
    Running,
}

fn bad(message: impl Into<String>, hint: &str) -> Error {
    Error::input(Diagnostic::error(message).hint(hint))
}

/// A task the service's state does not allow (exit 1, like bad input).
fn conflict(message: impl Into<String>, hint: &str) -> Error {
    Error::new(ErrorKind::Conflict, Diagnostic::error(message).hint(hint))
}

/// Decodes a TaskOverride; unknown keys and wrong types are bad input.
pub(crate) fn decode_overrides(v: &Value, what: &str) -> Result<TaskOverride> {
    let decoded = codec::decode(v, TaskOverride::deserialize);
    let mut diags = Vec::new();
    for f in &decoded.findings {
        diags.push(match f {
            codec::Finding::UnknownKey {
                pointer,
                key,
                known,
            } => {
                let mut d = Diagnostic::error(format!(
                    "{what}: unknown key {key:?} at {}",
                    if pointer.is_empty() { "/" } else { pointer }
                ));
                d.hint = Some(
                    match crate::error::did_you_mean(key, known.iter().map(String::as_str)) {
                        Some(s) => format!("did you mean {s:?}?"),
                        None => format!("known keys: {}", known.join(", ")),
                    },
                );
                d
            }
            codec::Finding::WrongType {
                pointer, expected, ..
            } => Diagnostic::error(format!("{what}: {pointer} must be {expected}"))
                .hint("see ECS's RunTask `overrides` (TaskOverride) for the shape"),
            codec::Finding::Dropped { pointer } => {
                Diagnostic::error(format!("{what}: {pointer} could not be read"))
            }
            codec::Finding::Failed { pointer, message } => {
                Diagnostic::error(format!("{what}: cannot read {pointer}: {message}"))
            }
        });
    }
    match decoded.value {
        Some(o) if diags.is_empty() => Ok(o),
        _ => {
            if diags.is_empty() {
                diags.push(Diagnostic::error(format!("{what}: not a TaskOverride")));
            }
            Err(Error::findings(diags))
        }
    }
}

/// `--overrides` with `--command` and `--env` merged into `container`'s entry (the flags
/// win over the JSON for the same member; `--env` replaces a variable of the same name).
pub(crate) fn merge_overrides(input: &RunInput, container: &str) -> Value {
    let mut o = input.overrides.clone().unwrap_or_else(|| json!({}));
    if input.command.is_none() && input.env.is_empty() {
        return o;
    }
    if !o.get("containerOverrides").is_some_and(Value::is_array) {
        o["containerOverrides"] = json!([]);
    }
    let list = o["containerOverrides"]
        .as_array_mut()
        .expect("containerOverrides was just made an array");
    let pos = match list.iter().position(|c| c["name"] == container) {
        Some(p) => p,
        None => {
            list.push(json!({"name": container}));
            list.len() - 1
        }
    };
    let entry = &mut list[pos];
    if let Some(cmd) = &input.command {
        entry["command"] = json!(cmd);
    }
    if !input.env.is_empty() {
        let mut vars: Vec<Value> = entry
            .get("environment")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        for (k, v) in &input.env {
            vars.retain(|e| e["name"] != k.as_str());
            vars.push(json!({"name": k, "value": v}));
        }
        entry["environment"] = json!(vars);
    }
    o
}

/// The container the command, the environment and the logs are about: `--container`, else
/// the first essential one.
pub(crate) fn target_container<'a>(
    containers: &'a [ContainerDefinition],
    flag: Option<&str>,
) -> Result<&'a ContainerDefinition> {
    let names = || {
        containers
            .iter()
            .filter_map(|c| c.name())
            .collect::<Vec<_>>()
            .join(", ")
    };
    match flag {
        Some(n) => containers
            .iter()
            .find(|c| c.name() == Some(n))
            .ok_or_else(|| {
                bad(
                    format!("--container {n}: the task definition has no such container"),
                    &format!("its containers: {}", names()),
                )
            }),
        None => containers
            .iter()
            .find(|c| c.essential().unwrap_or(true))
            .or_else(|| containers.first())
            .ok_or_else(|| {
                bad(
                    "the task definition has no container",
                    "add containerDefinitions",
                )
            }),
    }
}

/// Where the awslogs driver ships a container's output: (group, stream prefix). Lines sent to
/// another region than the one cortado reads (`region`) are not available.
pub(crate) fn awslogs_of(
    c: &ContainerDefinition,
    region: &str,
) -> std::result::Result<(String, String), String> {
    let Some(lc) = c.log_configuration() else {
        return Err("the container has no logConfiguration".into());
    };
    if lc.log_driver() != &LogDriver::Awslogs {
        return Err(format!(
            "the container logs with the {} driver, not awslogs",
            lc.log_driver().as_str()
        ));
    }
    let opt = |k: &str| lc.options().and_then(|o| o.get(k)).cloned();
    if let Some(r) = opt("awslogs-region").filter(|r| r != region) {
        return Err(format!(
            "its awslogs-region is {r}, and cortado reads region {region}"
        ));
    }
    match (opt("awslogs-group"), opt("awslogs-stream-prefix")) {
        (Some(g), Some(p)) => Ok((g, p)),
        (None, _) => Err("its awslogs options name no awslogs-group".into()),
        (_, None) => Err(
            "its awslogs options have no awslogs-stream-prefix, so the stream name is not known"
                .into(),
        ),
    }
}

/// Placement of the task: the live service's, else its definition file's.
struct Placement {
    launch_type: Option<LaunchType>,
    strategy: Vec<CapacityProviderStrategyItem>,
    platform_version: Option<String>,
    network: Option<NetworkConfiguration>,
}

/// The service the config names, as it is live; None when it does not exist or the config
/// names none (a config for one-off tasks).
async fn live_service(
    clients: &Clients,
    local: &Local,
) -> Result<Option<crate::aws::types::ecs::Service>> {
    match local.service_opt() {
        Some(service) => {
            clients
                .describe_service(&local.config.cluster, service)
                .await
        }
        None => Ok(None),
    }
}

/// Where the task runs: the live service's placement, else its definition file's.
fn placement_of(
    live: Option<&crate::aws::types::ecs::Service>,
    local: &Local,
) -> Result<Placement> {
    Ok(match live {
        Some(svc) => Placement {
            launch_type: svc.launch_type().cloned(),
            strategy: svc.capacity_provider_strategy().to_vec(),
            platform_version: svc.platform_version().map(str::to_string),
            network: svc.network_configuration().cloned(),
        },
        None => match &local.service {
            Some(def) => Placement {
                launch_type: def.launch_type().cloned(),
                strategy: def.capacity_provider_strategy().to_vec(),
                platform_version: def.platform_version().map(str::to_string),
                network: def.network_configuration().cloned(),
            },
            None if local.service_opt().is_none() => {
                // No service and no service definition (a config for one-off tasks): ECS
                // places a task without a network configuration only outside awsvpc mode.
                // ecspresso reads the placement from the service definition; cortado does too,
                // and needs it only where RunTask does.
                if local.task.network_mode() == Some(&crate::aws::types::ecs::NetworkMode::Awsvpc) {
                    return Err(Error::input(
                        Diagnostic::error(
                            "the task definition's networkMode is awsvpc, and the config has no `service_definition:` to take the task's network configuration from",
                        )
                        .at(local.config.document.locate(""))
                        .hint(
                            "add `service_definition: FILE` with `networkConfiguration` (and `launchType` or `capacityProviderStrategy`), as ecspresso reads them for `run`",
                        ),
                    ));
                }
                Placement {
                    launch_type: None,
                    strategy: Vec::new(),
                    platform_version: None,
                    network: None,
                }
            }
            None => {
                return Err(conflict(
                    format!(
                        "service {} does not exist in cluster {} and the config has no service_definition",
                        local.config.service.as_deref().unwrap_or_default(),
                        local.config.cluster
                    ),
                    "the task's network configuration and launch type come from the service: deploy it first, or add `service_definition:`",
                ));
            }
        },
    })
}

fn task_id(arn: &str) -> &str {
    arn.rsplit('/').next().unwrap_or(arn)
}

/// Which task definition a one-off task runs (ecspresso's `taskDefinitionArnForRun`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskPick {
    /// The config's (or `--task-def`'s) rendered definition, registered unless the family's
    /// newest ACTIVE revision is identical (ecspresso registers every time).
    Register,
    /// `--skip-task-definition`: the revision the service runs now.
    Service,
    /// `--latest-task-definition`: the family's newest ACTIVE revision.
    Latest,
    /// `--revision N` of the family.
    Revision(i32),
}

/// Where the task definition of a run comes from.
enum Source {
    Existing(String),
    Register,
}

/// The task definition `pick` names. Read-only: a registration is decided here and made by
/// the caller once everything is checked.
async fn choose_task_definition(
    clients: &Clients,
    local: &Local,
    pick: TaskPick,
    live_td: Option<&str>,
) -> Result<Source> {
    let cluster = &local.config.cluster;
    let config_family = local.task.family().unwrap_or_default();
    // ecspresso takes the family of the service's task definition when the service exists.
    let family = live_td
        .and_then(crate::aws::ecs::arn_family)
        .unwrap_or(config_family);
    // An Express Mode service's task definitions are ECS's: run the one the service runs.
    let pick = match pick {
        TaskPick::Revision(n) => TaskPick::Revision(n),
        _ if local.express.is_some() => TaskPick::Service,
        // No service to take a revision from: ecspresso's --skip-task-definition then runs
        // the family's newest revision, as --latest-task-definition does.
        TaskPick::Service if local.service_opt().is_none() => TaskPick::Latest,
        other => other,
    };
    let service = local.service_opt().unwrap_or_default();
    match pick {
        TaskPick::Revision(n) => {
            let (td, _) = clients
                .describe_task_definition(&format!("{family}:{n}"))
                .await?;
            Ok(Source::Existing(
                td.task_definition_arn().unwrap_or_default().to_string(),
            ))
        }
        TaskPick::Service => live_td
            .map(|a| Source::Existing(a.to_string()))
            .ok_or_else(|| {
                conflict(
                    format!(
                        "service {service} does not exist in cluster {cluster}, so it runs no task definition to reuse (--skip-task-definition)"
                    ),
                    if local.express.is_some() {
                        "deploy it first: ECS registers an Express Mode service's task definition"
                    } else {
                        "drop --skip-task-definition to run the config's task definition, or use --latest-task-definition"
                    },
                )
            }),
        TaskPick::Latest => {
            match active_revisions(clients, family)
                .await?
                .into_iter()
                .next()
            {
                Some((_, arn)) => Ok(Source::Existing(arn)),
                None => Err(conflict(
                    format!("task definition family {family} has no ACTIVE revision"),
                    "drop --latest-task-definition to register and run the config's task definition",
                )),
            }
        }
        TaskPick::Register => {
            match registration_choice(clients, &local.task_json, config_family, None).await? {
                TaskChoice::Existing(a) => Ok(Source::Existing(a)),
                TaskChoice::Register => Ok(Source::Register),
            }
        }
    }
}

/// A one-off task to run: from which config, under which name its events go, with what
/// input, which task definition, and until when.
#[derive(Debug, Clone, Copy)]
pub(crate) struct OneOff<'a> {
    pub local: &'a Local,
    /// The name its events carry: the service's (`cortado run`) or the release step's.
    pub name: &'a str,
    pub input: &'a RunInput,
    pub pick: TaskPick,
    /// Start it and do not follow it (`--no-wait`).
    pub no_wait: bool,
    /// Follow it to STOPPED (default) or only to RUNNING.
    pub until: WaitUntil,
    /// Check and print what would run; register and start nothing (`--dry-run`).
    pub dry_run: bool,
    pub deadline: Instant,
}

/// A task RunTask started, and what following it needs.
#[derive(Clone)]
struct Launched {
    cluster: String,
    task_arn: String,
    task_definition_arn: String,
    container: String,
    /// Where its container's logs are: (group, stream prefix), or why they cannot be read.
    logs: std::result::Result<(String, String), String>,
}

/// How a one-off task ended: its outcome, what ECS said of it, and a sentence.
#[derive(Debug, Clone)]
pub(crate) struct TaskEnd {
    pub outcome: TaskOutcome,
    pub task_arn: String,
    pub task_definition_arn: String,
    pub last_status: String,
    pub stop_code: Option<String>,
    pub stopped_reason: Option<String>,
    /// The container whose exit code decides (the target's, else the first with one).
    pub container: String,
    pub container_exit_code: Option<i32>,
    /// One sentence: what happened.
    pub text: String,
}

impl TaskEnd {
    /// cortado's exit code for it ([`TaskOutcome::exit`]).
    pub(crate) fn exit(&self) -> u8 {
        self.outcome.exit()
    }

    /// The JSON `result` line of `cortado run` (`event: result`, `task_arn`, `outcome`,
    /// `exit_code`, ...).
    pub(crate) fn json(&self) -> Value {
        let time = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or_default();
        let mut v = json!({"time": time, "event": "result"});
        let fields = match self.outcome {
            // What would run, in the sentence the text output prints.
            TaskOutcome::DryRun => json!({
                "task_arn": self.task_arn,
                "task_definition_arn": self.task_definition_arn,
                "outcome": self.outcome.word(),
                "container": self.container,
                "detail": self.text,
                "exit_code": 0,
            }),
            TaskOutcome::Started => json!({
                "task_arn": self.task_arn,
                "task_definition_arn": self.task_definition_arn,
                "outcome": self.outcome.word(),
                "exit_code": 0,
            }),
            _ => json!({
                "task_arn": self.task_arn,
                "task_definition_arn": self.task_definition_arn,
                "outcome": self.outcome.word(),
                "last_status": self.last_status,
                "stop_code": self.stop_code,
                "stopped_reason": self.stopped_reason,
                "container": self.container,
                "container_exit_code": self.container_exit_code,
                "exit_code": self.exit(),
            }),
        };
        if let (Some(m), Value::Object(f)) = (v.as_object_mut(), fields) {
            m.extend(f);
        }
        v
    }
}

/// Runs one-off tasks: starts `input.count` of them (one RunTask) from `task.local` (placed
/// like its service) and, unless `no_wait`, follows each to STOPPED with its logs as events,
/// all at once. The writes: a changed definition's registration, RunTask, and StopTask on
/// the deadline or a cancel. The ends come in the order RunTask listed the tasks.
pub(crate) async fn run(
    clients: &Clients,
    emitter: &Emitter,
    task: &OneOff<'_>,
    cancel: tokio::sync::watch::Receiver<bool>,
) -> Result<Vec<TaskEnd>> {
    if task.dry_run {
        return Ok(vec![dry_run(clients, task).await?]);
    }
    let launched = launch(clients, emitter, task).await?;
    if task.no_wait {
        return Ok(launched
            .into_iter()
            .map(|launched| TaskEnd {
                outcome: TaskOutcome::Started,
                text: format!("started task {}", launched.task_arn),
                task_arn: launched.task_arn,
                task_definition_arn: launched.task_definition_arn,
                last_status: String::new(),
                stop_code: None,
                stopped_reason: None,
                container: launched.container,
                container_exit_code: None,
            })
            .collect());
    }
    let each = launched
        .into_iter()
        .map(|l| follow_one(clients, emitter, task, l, cancel.clone()));
    futures_util::future::join_all(each)
        .await
        .into_iter()
        .collect()
}

/// Follows one started task to its end (and stops it on the deadline or a cancel).
async fn follow_one(
    clients: &Clients,
    emitter: &Emitter,
    task: &OneOff<'_>,
    launched: Launched,
    cancel: tokio::sync::watch::Receiver<bool>,
) -> Result<TaskEnd> {
    emitter.emit(Event::TaskStarted {
        service: task.name.to_string(),
        task_arn: launched.task_arn.clone(),
        task_definition_arn: launched.task_definition_arn.clone(),
        container: launched.container.clone(),
    });
    let (outcome, last_status, last) = follow(clients, emitter, task, &launched, cancel).await?;
    if matches!(outcome, TaskOutcome::TimedOut | TaskOutcome::Cancelled) {
        let reason = match outcome {
            TaskOutcome::TimedOut => "cortado run: timed out",
            _ => "cortado run: cancelled",
        };
        clients
            .stop_task(&launched.cluster, &launched.task_arn, reason)
            .await?;
        emitter.emit(Event::TaskStopRequested {
            service: task.name.to_string(),
            task_arn: launched.task_arn.clone(),
            reason: reason.to_string(),
        });
    }
    let end = ended(launched, outcome, last_status, last.as_ref());
    emitter.emit(Event::TaskEnded {
        service: task.name.to_string(),
        task_arn: end.task_arn.clone(),
        outcome: end.outcome.word().to_string(),
        exit_code: end.exit(),
        detail: end.text.clone(),
    });
    Ok(end)
}

/// `--dry-run`: what `launch` reads and checks (the service, placement, the task definition
/// picked, the container and the overrides against it), and no write.
async fn dry_run(clients: &Clients, task: &OneOff<'_>) -> Result<TaskEnd> {
    let local = task.local;
    let cluster = local.config.cluster.clone();
    let live = live_service(clients, local).await?;
    let live_td = live.as_ref().and_then(|s| s.task_definition());
    placement_of(live.as_ref(), local)?;
    let source = choose_task_definition(clients, local, task.pick, live_td).await?;
    let (td_arn, what, td) = match source {
        Source::Existing(arn) => {
            let td = clients.describe_task_definition(&arn).await?.0;
            (arn, "the existing revision", td)
        }
        Source::Register => (
            String::new(),
            "a new revision of the rendered task definition (to be registered)",
            TaskDefinition::builder()
                .set_container_definitions(local.task.container_definitions.clone())
                .build(),
        ),
    };
    let container = target_container(td.container_definitions(), task.input.container.as_deref())?;
    let name = container.name().unwrap_or_default().to_string();
    let overrides = merge_overrides(task.input, &name);
    decode_overrides(&overrides, "--overrides")?;
    let volumes = launch_volumes(local, task.input.keep_ebs_volumes)?;
    let volumes = if volumes.is_empty() {
        String::new()
    } else {
        let shown: Vec<Value> = volumes
            .iter()
            .map(|v| {
                let ebs = v.managed_ebs_volume();
                json!({
                    "name": v.name(),
                    "managedEBSVolume": {
                        "roleArn": ebs.map(|e| e.role_arn()),
                        "terminationPolicy": {
                            "deleteOnTermination": ebs
                                .and_then(|e| e.termination_policy())
                                .map(|p| p.delete_on_termination()),
                        },
                    },
                })
            })
            .collect();
        format!(", volume configurations {}", Value::Array(shown))
    };
    let count = task.input.count.max(1);
    let shown = if td_arn.is_empty() {
        local.task.family().unwrap_or_default().to_string()
    } else {
        short_arn(&td_arn).to_string()
    };
    Ok(TaskEnd {
        outcome: TaskOutcome::DryRun,
        text: format!(
            "dry run: would run {count} task(s) of {shown} ({what}) in cluster {cluster}, container {name}, overrides {overrides}{volumes}"
        ),
        task_arn: String::new(),
        task_definition_arn: td_arn,
        last_status: String::new(),
        stop_code: None,
        stopped_reason: None,
        container: name,
        container_exit_code: None,
    })
}

/// Everything up to RunTask: the live service (for placement and its revision), the task
/// definition (registered when it changed, after the container check), the overrides.
async fn launch(clients: &Clients, emitter: &Emitter, task: &OneOff<'_>) -> Result<Vec<Launched>> {
    let local = task.local;
    let input = task.input;
    let cluster = local.config.cluster.clone();
    let live = live_service(clients, local).await?;
    let live_td = live
        .as_ref()
        .and_then(|s| s.task_definition())
        .map(str::to_string);
    if let (None, Some(service)) = (&live, local.service_opt()) {
        emitter.emit(Event::Note {
            message: format!(
                "service {service} does not exist in cluster {cluster}: the task is placed as the service definition file says"
            ),
        });
    }
    let placement = placement_of(live.as_ref(), local)?;
    let source = choose_task_definition(clients, local, task.pick, live_td.as_deref()).await?;
    let td: TaskDefinition = match &source {
        Source::Existing(arn) => clients.describe_task_definition(arn).await?.0,
        Source::Register => {
            // Registered here, after the container check on the local definition.
            target_container(
                local.task.container_definitions(),
                input.container.as_deref(),
            )?;
            let td = clients.register_task_definition(local.task.clone()).await?;
            emitter.emit(Event::Registered {
                task_definition_arn: td.task_definition_arn().unwrap_or_default().to_string(),
            });
            td
        }
    };
    let td_arn = td.task_definition_arn().unwrap_or_default().to_string();
    let container = target_container(td.container_definitions(), input.container.as_deref())?;
    let container_name = container.name().unwrap_or_default().to_string();
    let overrides = decode_overrides(&merge_overrides(input, &container_name), "--overrides")?;
    let logs = awslogs_of(container, clients.region());
    let volume_configurations = launch_volumes(local, input.keep_ebs_volumes)?;
    let (started, failures) = clients
        .run_task(&OneOffTask {
            cluster: cluster.clone(),
            task_definition: td_arn.clone(),
            launch_type: if placement.strategy.is_empty() {
                placement.launch_type
            } else {
                None
            },
            capacity_provider_strategy: placement.strategy,
            platform_version: placement.platform_version,
            network_configuration: placement.network,
            overrides: Some(overrides),
            started_by: Some(STARTED_BY.to_string()),
            group: None,
            client_token: input.client_token.clone(),
            tags: input.tags.clone(),
            propagate_tags: input.propagate_tags.clone(),
            count: input.count.max(1),
            volume_configurations,
        })
        .await?;
    if !failures.is_empty() {
        emitter.emit(Event::Note {
            message: format!(
                "RunTask started {} of {} task(s); the others: {failures}",
                started.len(),
                input.count.max(1)
            ),
        });
    }
    Ok(started
        .iter()
        .map(|t| Launched {
            cluster: cluster.clone(),
            task_arn: t.task_arn().unwrap_or_default().to_string(),
            task_definition_arn: td_arn.clone(),
            container: container_name.clone(),
            logs: logs.clone(),
        })
        .collect())
}

/// Follows a started task to STOPPED (its status changes and log lines as events), its
/// deadline, or a cancel: how it ended, its last status, and what ECS said of it last.
async fn follow(
    clients: &Clients,
    emitter: &Emitter,
    task: &OneOff<'_>,
    l: &Launched,
    mut cancel: tokio::sync::watch::Receiver<bool>,
) -> Result<(TaskOutcome, String, Option<Task>)> {
    let logs = Logs::open(emitter, task.name, l);
    let mut token: Option<String> = None;
    let mut last_status = String::new();
    let mut last: Option<Task> = None;
    let deadline = task.deadline;
    let outcome = loop {
        let now = clients
            .describe_tasks(&l.cluster, std::slice::from_ref(&l.task_arn))
            .await?;
        if let Some(t) = now.into_iter().next() {
            let st = t.last_status().unwrap_or_default().to_string();
            if st != last_status {
                emitter.emit(Event::TaskStatus {
                    service: task.name.to_string(),
                    task_arn: l.task_arn.clone(),
                    last_status: st.clone(),
                    desired_status: t.desired_status().map(str::to_string),
                });
                last_status = st;
            }
            last = Some(t);
        }
        token = logs.read(clients, token).await?;
        if task.until == WaitUntil::Running && last_status == "RUNNING" {
            break TaskOutcome::Running;
        }
        if last_status == "STOPPED" {
            // Lines shipped just before the stop: read on until nothing new comes.
            for _ in 0..3 {
                let before = token.clone();
                token = logs.read(clients, token).await?;
                if token == before {
                    break;
                }
            }
            break exit_outcome(last.as_ref(), &l.container);
        }
        if Instant::now() >= deadline {
            break TaskOutcome::TimedOut;
        }
        if *cancel.borrow() {
            break TaskOutcome::Cancelled;
        }
        tokio::select! {
            _ = tokio::time::sleep(POLL.min(deadline.saturating_duration_since(Instant::now()))) => {}
            _ = cancel.changed() => {}
        }
    };
    Ok((outcome, last_status, last))
}

/// How a followed task ended, in words and fields.
fn ended(l: Launched, outcome: TaskOutcome, last_status: String, t: Option<&Task>) -> TaskEnd {
    let exit_code = t.and_then(|t| essential_exit(t, &l.container));
    let reason = t.map(stop_reason).unwrap_or_default();
    let id = task_id(&l.task_arn);
    let text = match outcome {
        TaskOutcome::Exited(c) => format!(
            "task {id} stopped: container {} exited with code {c}",
            exit_code.map(|(n, _)| n).unwrap_or(l.container.as_str())
        ),
        TaskOutcome::FailedToStart => format!("task {id} failed to start: {reason}"),
        TaskOutcome::TimedOut => {
            format!("task {id} did not stop before the deadline; StopTask requested")
        }
        TaskOutcome::Cancelled => format!("task {id}: cancelled; StopTask requested"),
        TaskOutcome::Started => format!("started task {}", l.task_arn),
        TaskOutcome::Running => {
            format!("task {id} is RUNNING (--wait-until running): left running")
        }
        TaskOutcome::DryRun => String::new(),
    };
    TaskEnd {
        outcome,
        text,
        last_status,
        stop_code: t
            .and_then(|t| t.stop_code())
            .map(|c| c.as_str().to_string()),
        stopped_reason: t.and_then(|t| t.stopped_reason()).map(str::to_string),
        container: exit_code.map_or_else(|| l.container.clone(), |(n, _)| n.to_string()),
        container_exit_code: exit_code.map(|(_, c)| c),
        task_arn: l.task_arn,
        task_definition_arn: l.task_definition_arn,
    }
}

/// A release's one-off task step (`run:` in a release file): the config's task definition
/// (registered when it changed, so a migration runs the code about to be deployed), placed
/// like the service; its result, succeeded when the task exited 0.
pub(crate) async fn release_step(
    clients: &Clients,
    emitter: &Emitter,
    (step, run_step): (&Step, &RunStep),
    local: &Local,
    deadline: tokio::time::Instant,
    cancel: tokio::sync::watch::Receiver<bool>,
) -> ServiceResult {
    let input = RunInput {
        container: run_step.container.clone(),
        command: run_step.command.clone(),
        env: run_step.env.clone(),
        ..RunInput::default()
    };
    let task = OneOff {
        local,
        name: &step.name,
        input: &input,
        pick: TaskPick::Register,
        no_wait: false,
        until: WaitUntil::Stopped,
        dry_run: false,
        deadline: deadline.into_std(),
    };
    let started = Instant::now();
    let mut r = ServiceResult::new(Operation::Deploy, &local.config.cluster, &step.name);
    match run(clients, emitter, &task, cancel)
        .await
        .map(|ends| ends.into_iter().next())
    {
        Ok(None) => {
            r.outcome = RunOutcome::FailedNotRolledBack;
            r.detail = "one-off task: RunTask started no task".into();
        }
        Ok(Some(end)) => {
            r.outcome = task_outcome(end.outcome);
            r.detail = format!("one-off task: {}", end.text);
            r.task_definition_arn = Some(end.task_definition_arn);
        }
        Err(e) => {
            r.outcome = RunOutcome::FailedNotRolledBack;
            r.detail = format!(
                "one-off task: {}",
                e.diagnostics
                    .first()
                    .map_or_else(|| e.to_string(), |d| d.message.clone())
            );
        }
    }
    r.duration = started.elapsed();
    r
}

/// Where a task's logs are read, announced when opened.
struct Logs<'a> {
    emitter: &'a Emitter,
    name: &'a str,
    container: &'a str,
    /// (group, stream), when the logs can be read.
    at: Option<(String, String)>,
}

impl<'a> Logs<'a> {
    fn open(emitter: &'a Emitter, name: &'a str, l: &'a Launched) -> Self {
        let at = match &l.logs {
            Ok((group, prefix)) => {
                let stream = format!("{prefix}/{}/{}", l.container, task_id(&l.task_arn));
                emitter.emit(Event::TaskLogs {
                    service: name.to_string(),
                    log_group: Some(group.clone()),
                    log_stream: Some(stream.clone()),
                    message: None,
                });
                Some((group.clone(), stream))
            }
            Err(why) => {
                emitter.emit(Event::TaskLogs {
                    service: name.to_string(),
                    log_group: None,
                    log_stream: None,
                    message: Some(format!("logs are not available: {why}")),
                });
                None
            }
        };
        Logs {
            emitter,
            name,
            container: &l.container,
            at,
        }
    }

    /// Reads new lines of the stream as events; the token to read on from.
    async fn read(&self, clients: &Clients, token: Option<String>) -> Result<Option<String>> {
        let Some((group, stream)) = &self.at else {
            return Ok(token);
        };
        let page = match clients
            .get_log_events(group, stream, token.as_deref())
            .await
        {
            Ok(p) => p,
            // Logs are a view: a failed read is reported, the task is still followed.
            Err(e) if e.kind != ErrorKind::BadInput => {
                self.emitter.emit(Event::Warning {
                    message: format!("reading logs failed: {e}"),
                });
                return Ok(token);
            }
            Err(e) => return Err(e),
        };
        for (ts, line) in &page.lines {
            self.emitter.emit(Event::TaskLog {
                service: self.name.to_string(),
                container: self.container.to_string(),
                timestamp: *ts,
                message: Untrusted::from(line.as_str()),
            });
        }
        Ok(page.next.or(token))
    }
}

/// The essential container that decides the exit code: `target` when it is essential and has
/// an exit code, else the first essential container with one. (name, code)
fn essential_exit<'a>(t: &'a Task, target: &str) -> Option<(&'a str, i32)> {
    // DescribeTasks does not say which containers are essential; the target (the essential
    // container by default) first, then any container with an exit code.
    let cs = t.containers();
    cs.iter()
        .find(|c| c.name() == Some(target) && c.exit_code().is_some())
        .or_else(|| cs.iter().find(|c| c.exit_code().is_some()))
        .and_then(|c| Some((c.name().unwrap_or_default(), c.exit_code()?)))
}

/// Why the task stopped, in ECS's words (anyone allowed to call StopTask writes them).
fn stop_reason(t: &Task) -> Untrusted {
    let mut parts: Vec<String> = Vec::new();
    if let Some(code) = t.stop_code() {
        parts.push(code.as_str().to_string());
    }
    if let Some(r) = t.stopped_reason() {
        parts.push(r.to_string());
    }
    for c in t.containers() {
        if let Some(r) = c.reason()
            && !parts.iter().any(|p| p == r)
        {
            parts.push(format!("{}: {r}", c.name().unwrap_or_default()));
        }
    }
    parts.join(": ").into()
}

/// The outcome of a STOPPED task: its container's exit code, or a failure to start when it
/// never ran its command.
fn exit_outcome(t: Option<&Task>, target: &str) -> TaskOutcome {
    let Some(t) = t else {
        return TaskOutcome::FailedToStart;
    };
    let failed_to_start = t
        .stop_code()
        .is_some_and(|c| c.as_str() == "TaskFailedToStart");
    match essential_exit(t, target) {
        Some((_, code)) if !failed_to_start => TaskOutcome::Exited(code),
        _ => TaskOutcome::FailedToStart,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deploy::core::outcome::TaskOutcome as Outcome;

    #[test]
    fn flags_merge_into_the_containers_override() {
        let input = RunInput {
            container: None,
            command: Some(vec!["./migrate".into(), "up".into()]),
            env: vec![("A".into(), "2".into()), ("C".into(), "3".into())],
            overrides: Some(json!({"cpu": "512", "containerOverrides": [
                {"name": "side", "command": ["x"]},
                {"name": "web", "command": ["old"], "environment": [{"name": "A", "value": "1"}, {"name": "B", "value": "b"}]}
            ]})),
            ..RunInput::default()
        };
        let m = merge_overrides(&input, "web");
        assert_eq!(m["cpu"], "512");
        assert_eq!(m["containerOverrides"][0]["command"], json!(["x"]));
        assert_eq!(
            m["containerOverrides"][1]["command"],
            json!(["./migrate", "up"])
        );
        assert_eq!(
            m["containerOverrides"][1]["environment"],
            json!([{"name": "B", "value": "b"}, {"name": "A", "value": "2"}, {"name": "C", "value": "3"}])
        );
        // A container without an entry gets one.
        let m = merge_overrides(
            &RunInput {
                command: Some(vec!["true".into()]),
                ..RunInput::default()
            },
            "app",
        );
        assert_eq!(
            m,
            json!({"containerOverrides": [{"name": "app", "command": ["true"]}]})
        );
        assert!(decode_overrides(&m, "x").is_ok());
    }

    #[test]
    fn awslogs_needs_group_prefix_and_the_same_region() {
        use crate::aws::types::ecs::LogConfiguration;
        let c = |opts: &[(&str, &str)], driver: LogDriver| {
            let mut lc = LogConfiguration::builder().log_driver(driver);
            for (k, v) in opts {
                lc = lc.options(*k, *v);
            }
            ContainerDefinition::builder()
                .name("app")
                .log_configuration(lc.build().unwrap())
                .build()
        };
        let full = [
            ("awslogs-group", "/ecs/app"),
            ("awslogs-stream-prefix", "run"),
            ("awslogs-region", "us-east-1"),
        ];
        assert_eq!(
            awslogs_of(&c(&full, LogDriver::Awslogs), "us-east-1"),
            Ok(("/ecs/app".into(), "run".into()))
        );
        let e = awslogs_of(&c(&full, LogDriver::Awslogs), "eu-west-1").unwrap_err();
        assert!(e.contains("us-east-1") && e.contains("eu-west-1"), "{e}");
        assert!(
            awslogs_of(&c(&full[..1], LogDriver::Awslogs), "us-east-1")
                .unwrap_err()
                .contains("awslogs-stream-prefix")
        );
        assert!(
            awslogs_of(&c(&full, LogDriver::Fluentd), "us-east-1")
                .unwrap_err()
                .contains("fluentd")
        );
        let none = ContainerDefinition::builder().name("app").build();
        assert!(awslogs_of(&none, "us-east-1").is_err());
    }

    #[test]
    fn exit_outcomes() {
        use crate::aws::types::ecs::{Container, TaskStopCode};
        let task = |code: Option<i32>, stop: TaskStopCode| {
            Task::builder()
                .stop_code(stop)
                .containers(Container::builder().name("web").set_exit_code(code).build())
                .build()
        };
        assert_eq!(
            exit_outcome(
                Some(&task(Some(3), TaskStopCode::EssentialContainerExited)),
                "web"
            ),
            Outcome::Exited(3)
        );
        assert_eq!(Outcome::Exited(3).exit(), 3);
        assert_eq!(Outcome::Exited(0).exit(), 0);
        assert_eq!(
            exit_outcome(Some(&task(None, TaskStopCode::TaskFailedToStart)), "web"),
            Outcome::FailedToStart
        );
        assert_eq!(
            exit_outcome(Some(&task(None, TaskStopCode::UserInitiated)), "web"),
            Outcome::FailedToStart
        );
        assert_eq!(Outcome::FailedToStart.exit(), 3);
        assert_eq!(Outcome::TimedOut.exit(), 6);
        assert_eq!(Outcome::Cancelled.exit(), 130);
    }
}
