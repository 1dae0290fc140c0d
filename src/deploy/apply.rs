//! The first half of a deploy: decide (compare local with live, read-only) and apply
//! (register when needed, then ONE Create/UpdateService call).
//!
//! Receives a validated [`Local`] and connected clients; emits events; hands on a
//! [`Decision`] (with its plan) and the handles of the deployment it started. The engine
//! follows that deployment from there.

use serde_json::Value;

use super::core::state::DeploymentStatus;
use super::core::verdict::Ours;
use super::event::{Emitter, Event};
use super::local::Local;
use super::observe::deployment_views;
use crate::aws::types::ecs::{Service, TaskDefinitionStatus};
use crate::aws::{Clients, ServiceUpdate};
use crate::error::{Diagnostic, Error, ErrorKind, Result};
use crate::plan::ServicePlan;

/// Flags of `cortado deploy`.
#[derive(Debug, Clone, Default)]
pub struct DeployFlags {
    pub dry_run: bool,
    pub no_wait: bool,
    pub skip_task_definition: bool,
    pub latest_task_definition: bool,
    pub revision: Option<i32>,
    pub force_register: bool,
    pub force_new_deployment: bool,
    pub tasks: Option<i32>,
    pub no_update_service: bool,
    pub no_rollback: bool,
    /// Where following the deployment stops (`--until`, `--wait-until`).
    pub until: super::gate::Until,
}

/// Which task definition the deploy rolls out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TaskChoice {
    /// Register the rendered definition as a new revision.
    Register,
    /// Use an existing revision (unchanged, `--skip-task-definition`, `--revision`, ...).
    Existing(String),
}

/// What the deploy will do, decided from local and live state.
#[derive(Debug, Clone)]
pub struct Decision {
    pub plan: ServicePlan,
    pub choice: TaskChoice,
    /// The live service, when it exists.
    pub live: Option<Service>,
    /// The task definition the service runs before the deploy.
    pub previous_task_definition: Option<String>,
    /// Service attributes to send with the update (None: none changed).
    pub update_attributes: bool,
    pub desired_count: Option<i32>,
}

impl Decision {
    /// Whether an UpdateService/CreateService call is needed at all.
    pub fn needs_service_call(&self, flags: &DeployFlags) -> bool {
        self.live.is_none()
            || self.choice == TaskChoice::Register
            || matches!(&self.choice, TaskChoice::Existing(a) if Some(a) != self.previous_task_definition.as_ref())
            || self.update_attributes
            || flags.force_new_deployment
            || (self.desired_count.is_some()
                && self.desired_count != self.live.as_ref().map(|s| s.desired_count()))
    }
}

/// Compares the rendered definitions with what runs and decides what to do. Read-only.
pub async fn decide(clients: &Clients, local: &Local, flags: &DeployFlags) -> Result<Decision> {
    if local.express.is_some() {
        return super::express::decide(clients, local, flags).await;
    }
    let cluster = &local.config.cluster;
    let service = local.service_name()?;
    let live = clients.describe_service(cluster, service).await?;
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
    let family = local.task.family().unwrap_or_default().to_string();
    let choice = if flags.skip_task_definition {
        match &previous {
            Some(p) => TaskChoice::Existing(p.clone()),
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
            previous.as_deref().zip(live_task_json.as_ref()),
        )
        .await?
    };
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
        crate::plan::rollout_settings(local.service_json.as_ref(), live_service_json.as_ref());
    let update_attributes =
        live.is_some() && service_after.is_some() && service_after != service_before;
    let desired_count = flags
        .tasks
        .or_else(|| local.service.as_ref().and_then(|s| s.desired_count()));
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
        strategy: crate::plan::strategy_name(&rollout),
        rollout: crate::plan::strategy_in_words(&rollout, local.rollout.verify.len()),
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

/// The register-if-changed rule (deploy and run share it): the rendered `task_json` is
/// compared with `live` (the service's task definition ARN and JSON) when the service runs
/// one, else with the family's newest ACTIVE revision; a new revision only when it differs.
/// Read-only.
pub async fn registration_choice(
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
pub fn revision_number(arn: &str) -> Option<u64> {
    arn.rsplit(':').next()?.parse().ok()
}

/// The family's ACTIVE revisions, newest first, with their numbers.
pub async fn active_revisions(clients: &Clients, family: &str) -> Result<Vec<(u64, String)>> {
    let mut revs: Vec<(u64, String)> = clients
        .list_task_definitions(family, TaskDefinitionStatus::Active)
        .await?
        .into_iter()
        .filter_map(|a| Some((revision_number(&a)?, a)))
        .collect();
    revs.sort_by_key(|r| std::cmp::Reverse(r.0));
    Ok(revs)
}

/// What apply started.
#[derive(Debug, Clone)]
pub struct Started {
    pub ours: Ours,
    pub created: bool,
}

/// Registers (when needed) and makes the ONE Create/UpdateService call. Returns the task
/// definition ARN rolled out and the deployment started (None when no call was needed).
pub async fn apply(
    clients: &Clients,
    local: &Local,
    decision: &Decision,
    flags: &DeployFlags,
    emitter: &Emitter,
) -> Result<(String, Option<Started>)> {
    if local.express.is_some() {
        return super::express::apply(clients, local, decision, flags, emitter).await;
    }
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
    Ok((td_arn, Some(Started { ours, created })))
}

/// Our deployment's handles from a Create/UpdateService answer: its PRIMARY deployment and
/// `currentServiceDeployment`.
pub fn ours_from(svc: &Service, td_arn: &str) -> Result<Ours> {
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
