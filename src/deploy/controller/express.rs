//! The Express Mode controller (`express_definition:`): deciding and applying an ECS Express
//! Mode service, the one place where such a service differs from a standard one. ECS
//! registers its task definition and owns its service attributes, so the decision compares
//! the definition file with the live service's newest configuration, and the one write is
//! Create- or UpdateExpressGatewayService. ECS then starts a service deployment (a canary, for
//! Express Mode) that is followed, judged and rolled back as the ECS controller does.
//!
//! Receives a validated [`Local`] whose `express` is set; hands on the same [`Decision`] and
//! [`Follow`] as the ECS controller.

use futures_util::future::BoxFuture;
use serde_json::{Value, json};
use tokio::time::Instant;

use super::ecs::{Ecs, ours_from, started_to_follow};
use super::seam::{
    Controller, Current, Cx, Decision, DeployFlags, Follow, Local, RollbackOptions, TaskChoice,
    Undo,
};
use crate::aws::Clients;
use crate::aws::express::express_definition_json;
use crate::aws::types::ecs::Service;
use crate::deploy::core::outcome::RollbackEnd;
use crate::deploy::core::verdict::Ours;
use crate::deploy::event::{Emitter, Event};
use crate::deploy::result::{RollbackReport, ServiceResult};
use crate::error::{Error, Result};
use crate::plan::ServicePlan;

/// ECS deploys an Express Mode service from its definition; what follows a deploy is the ECS
/// controller's.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Express;

impl Controller for Express {
    fn deployment_controller(&self) -> &'static str {
        "ECS"
    }

    fn decide<'a>(
        &'a self,
        cx: &'a Cx<'a>,
        local: &'a Local,
        live: Option<Service>,
        flags: &'a DeployFlags,
    ) -> BoxFuture<'a, Result<Decision>> {
        Box::pin(decide(cx.clients, local, live, flags))
    }

    fn apply<'a>(
        &'a self,
        cx: &'a Cx<'a>,
        local: &'a Local,
        decision: &'a Decision,
        flags: &'a DeployFlags,
        r: &'a mut ServiceResult,
    ) -> BoxFuture<'a, Result<Option<Follow>>> {
        Box::pin(async move {
            let (td_arn, started) = apply(cx.clients, local, decision, flags, cx.emitter).await?;
            Ok(started_to_follow(
                local, decision, flags, r, td_arn, started,
            ))
        })
    }

    fn roll_back<'a>(
        &'a self,
        cx: &'a Cx<'a>,
        job: Undo<'a>,
    ) -> BoxFuture<'a, (RollbackEnd, Option<RollbackReport>)> {
        Ecs.roll_back(cx, job)
    }

    fn current<'a>(
        &'a self,
        cx: &'a Cx<'a>,
        local: &'a Local,
        svc: &'a Service,
    ) -> BoxFuture<'a, Result<Current>> {
        Ecs.current(cx, local, svc)
    }

    fn rollback<'a>(
        &'a self,
        cx: &'a Cx<'a>,
        local: &'a Local,
        svc: &'a Service,
        opts: RollbackOptions,
        deadline: Instant,
    ) -> BoxFuture<'a, Result<ServiceResult>> {
        Ecs.rollback(cx, local, svc, opts, deadline)
    }
}

/// The rollout of an Express Mode service in words (AWS's developer guide, "Updating an
/// Amazon ECS Express Mode service").
pub(crate) const ROLLOUT: &str =
    "Express Mode canary by ECS: 5% of production traffic for 3 min, then 100%, 3 min bake";

/// The flags that choose or register a task definition make no sense where ECS registers it.
fn refuse_flags(flags: &DeployFlags, service: &str) -> Result<()> {
    let given: Vec<&str> = [
        (flags.skip_task_definition, "--skip-task-definition"),
        (flags.latest_task_definition, "--latest-task-definition"),
        (flags.revision.is_some(), "--revision"),
        (flags.force_register, "--force-register"),
        (flags.no_update_service, "--no-update-service"),
        (flags.tasks.is_some(), "--tasks"),
    ]
    .into_iter()
    .filter_map(|(on, f)| on.then_some(f))
    .collect();
    if given.is_empty() {
        return Ok(());
    }
    Err(Error::input(
        crate::error::Diagnostic::error(format!(
            "{} cannot be used with {service}: it is an Express Mode service, whose task definition and task count ECS manages",
            given.join(", ")
        ))
        .hint("change the express definition (primaryContainer, cpu, memory, scalingTarget) and deploy"),
    ))
}

/// The definition with what ECS fills in when the file leaves it out, and lists in a stable
/// order, so that file and live compare equal when nothing changed. Members the file does
/// not set and ECS chooses (networkConfiguration, scalingTarget, the log configuration) are
/// left out of both sides.
pub(crate) fn for_compare(local: &Value, live: Option<&Value>) -> (Value, Option<Value>) {
    let fill = |v: &Value| {
        let mut v = v.clone();
        for (k, d) in [
            ("cpu", "1024"),
            ("memory", "2048"),
            ("healthCheckPath", "/"),
        ] {
            if v.get(k).is_none_or(Value::is_null) {
                v[k] = json!(d);
            }
        }
        if v.pointer("/primaryContainer/containerPort").is_none()
            && v.get("primaryContainer").is_some_and(Value::is_object)
        {
            v["primaryContainer"]["containerPort"] = json!(80);
        }
        for list in [
            "/networkConfiguration/subnets",
            "/networkConfiguration/securityGroups",
        ] {
            if let Some(Value::Array(a)) = v.pointer_mut(list) {
                a.sort_by_key(|x| x.as_str().unwrap_or_default().to_string());
            }
        }
        for list in ["/primaryContainer/environment", "/primaryContainer/secrets"] {
            if let Some(Value::Array(a)) = v.pointer_mut(list) {
                a.sort_by_key(|x| x["name"].as_str().unwrap_or_default().to_string());
            }
        }
        if let Some(Value::Array(t)) = v.get_mut("tags") {
            t.sort_by_key(|x| x["key"].as_str().unwrap_or_default().to_string());
        }
        v
    };
    let mut l = fill(local);
    let mut r = live.map(fill);
    let keep = |k: &str| local.pointer(k).is_some();
    for (pointer, parent, key) in [
        ("/networkConfiguration", "", "networkConfiguration"),
        ("/scalingTarget", "", "scalingTarget"),
        (
            "/primaryContainer/awsLogsConfiguration",
            "/primaryContainer",
            "awsLogsConfiguration",
        ),
        ("/tags", "", "tags"),
    ] {
        if !keep(pointer) {
            for v in std::iter::once(&mut l).chain(r.iter_mut()) {
                let target = if parent.is_empty() {
                    Some(&mut *v)
                } else {
                    v.pointer_mut(parent)
                };
                if let Some(Value::Object(m)) = target {
                    m.remove(key);
                }
            }
        }
    }
    for v in std::iter::once(&mut l).chain(r.iter_mut()) {
        if let Some(Value::Array(e)) = v.pointer_mut("/primaryContainer/environment")
            && e.is_empty()
            && let Some(Value::Object(pc)) = v.get_mut("primaryContainer")
        {
            pc.remove("environment");
        }
        if let Some(Value::Array(e)) = v.pointer_mut("/primaryContainer/secrets")
            && e.is_empty()
            && let Some(Value::Object(pc)) = v.get_mut("primaryContainer")
        {
            pc.remove("secrets");
        }
    }
    (l, r)
}

/// Compares the express definition with the live Express Mode service. Read-only.
async fn decide(
    clients: &Clients,
    local: &Local,
    live: Option<Service>,
    flags: &DeployFlags,
) -> Result<Decision> {
    let Some(definition) = &local.express else {
        return Err(Error::internal("express::decide on a standard service"));
    };
    let cluster = &local.config.cluster;
    let service = local.service_name()?;
    refuse_flags(flags, service)?;
    let live_definition = match &live {
        None => None,
        Some(s) if s.resource_management_type().map(|t| t.as_str()) != Some("ECS") => {
            return Err(Error::conflict(format!(
                "service {service} in cluster {cluster} exists and is not an Express Mode service"
            ))
            .with_hint("an express_definition can only create or update an Express Mode service; remove express_definition to deploy it as a standard service"));
        }
        Some(s) => {
            let ex = clients
                .describe_express_service(s.service_arn().unwrap_or_default())
                .await?;
            Some(express_definition_json(&ex)?)
        }
    };
    let (after, before) = for_compare(definition, live_definition.as_ref());
    let previous = live
        .as_ref()
        .and_then(|s| s.task_definition())
        .map(str::to_string);
    let changed = before.as_ref() != Some(&after);
    let plan = ServicePlan {
        cluster: cluster.clone(),
        service: service.to_string(),
        region: clients.region().to_string(),
        // ECS registers the task definition: the plan compares the express definitions.
        task_before: None,
        task_after: Value::Null,
        service_before: before,
        service_after: Some(after),
        new_revision: false,
        create_service: live.is_none(),
        desired_count: (live.as_ref().map(|s| s.desired_count()), None),
        strategy: "EXPRESS".into(),
        rollout: ROLLOUT.into(),
    }
    .redacted(&local.secrets);
    Ok(Decision {
        plan,
        choice: TaskChoice::Existing(previous.clone().unwrap_or_default()),
        live,
        previous_task_definition: previous,
        update_attributes: changed,
        desired_count: None,
    })
}

/// Creates or updates the Express Mode service (one call), then reads the service for the
/// deployment ECS started.
async fn apply(
    clients: &Clients,
    local: &Local,
    decision: &Decision,
    flags: &DeployFlags,
    emitter: &Emitter,
) -> Result<(String, Option<(Ours, bool)>)> {
    let (Some(definition), Ok(service)) = (&local.express, local.service_name()) else {
        return Err(Error::internal("express::apply on a standard service"));
    };
    let cluster = &local.config.cluster;
    let previous = decision
        .previous_task_definition
        .clone()
        .unwrap_or_default();
    let created = match &decision.live {
        None => {
            clients
                .create_express_service(cluster, service, definition)
                .await?;
            true
        }
        Some(_) if !decision.update_attributes && !flags.force_new_deployment => {
            return Ok((previous, None));
        }
        Some(live) => {
            clients
                .update_express_service(live.service_arn().unwrap_or_default(), definition)
                .await?;
            false
        }
    };
    let svc = clients
        .describe_service(cluster, service)
        .await?
        .ok_or_else(|| {
            Error::aws(format!(
                "service {service} is not in cluster {cluster} after it was created or updated"
            ))
        })?;
    // ECS registered this revision from the definition.
    let td_arn = svc.task_definition().unwrap_or_default().to_string();
    let ours = ours_from(&svc, &td_arn)?;
    emitter.emit(Event::DeploymentStarted {
        service: service.to_string(),
        deployment_id: ours.deployment_id.clone(),
        service_deployment_arn: ours.service_deployment_arn.clone(),
        task_definition_arn: td_arn.clone(),
        created,
    });
    Ok((td_arn, Some((ours, created))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_ecs_chosen_members_compare_equal() {
        let local = json!({
            "executionRoleArn": "e", "infrastructureRoleArn": "i",
            "primaryContainer": {"image": "web:1", "environment": [{"name": "B", "value": "2"}, {"name": "A", "value": "1"}]},
        });
        let live = json!({
            "executionRoleArn": "e", "infrastructureRoleArn": "i",
            "cpu": "1024", "memory": "2048", "healthCheckPath": "/",
            "networkConfiguration": {"subnets": ["subnet-1"]},
            "scalingTarget": {"minTaskCount": 1},
            "primaryContainer": {"image": "web:1", "containerPort": 80,
                "environment": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
                "awsLogsConfiguration": {"logGroup": "/aws/ecs/x", "logStreamPrefix": "ecs"}},
        });
        let (a, b) = for_compare(&local, Some(&live));
        assert_eq!(Some(a.clone()), b);
        // A changed image, or a member the file sets, is a difference.
        let mut changed = live.clone();
        changed["primaryContainer"]["image"] = json!("web:2");
        assert_ne!(Some(a), for_compare(&local, Some(&changed)).1);
        let mut scaled = local.clone();
        scaled["scalingTarget"] = json!({"minTaskCount": 2});
        let (a, b) = for_compare(&scaled, Some(&live));
        assert_ne!(Some(a), b);
    }

    #[test]
    fn task_definition_flags_are_refused() {
        let flags = DeployFlags {
            revision: Some(3),
            ..DeployFlags::default()
        };
        let e = refuse_flags(&flags, "api").unwrap_err();
        assert!(e.to_string().contains("--revision"), "{e}");
        assert!(refuse_flags(&DeployFlags::default(), "api").is_ok());
    }
}
