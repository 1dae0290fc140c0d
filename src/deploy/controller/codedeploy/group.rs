//! The deployment group of a service CodeDeploy deploys: the config's names, else the one
//! group whose ECS service is this service (as ecspresso finds it), and the plan's words for it.

use serde_json::Value;

use super::appspec::{configured_hooks, configured_names};
use crate::aws::Clients;
use crate::aws::codedeploy::GroupFacts;
use crate::aws::types::ecs::Service;
use crate::deploy::controller::seam::{Decision, Local, TaskChoice};
use crate::deploy::core::verdict::short_arn;
use crate::error::{Error, Result};

/// Whether a live service has the CODE_DEPLOY deployment controller.
pub(crate) fn controlled(svc: &Service) -> bool {
    svc.deployment_controller()
        .is_some_and(|c| c.r#type().as_str() == "CODE_DEPLOY")
}

/// Finds the deployment group of the service: the config's names, else the one group (in
/// the named application, or in any) whose ECS service is this cluster's service.
pub(crate) async fn find_group(clients: &Clients, local: &Local) -> Result<GroupFacts> {
    let service = local.service_name()?;
    let cluster = cluster_name(&local.config.cluster);
    let (app, group) = configured_names(&local.config)?;
    if let (Some(a), Some(g)) = (&app, &group) {
        return clients.codedeploy_group(a, g).await;
    }
    let apps = match &app {
        Some(a) => vec![a.clone()],
        None => clients.codedeploy_applications().await?,
    };
    let mut found = Vec::new();
    for a in apps {
        for g in clients.codedeploy_groups(&a).await? {
            let serves = g
                .services
                .iter()
                .any(|(c, s)| cluster_name(c) == cluster && s == service);
            if serves && group.as_ref().is_none_or(|n| *n == g.name) {
                found.push(g);
            }
        }
    }
    match found.len() {
        1 => Ok(found.remove(0)),
        0 => Err(Error::conflict(format!(
            "no CodeDeploy deployment group deploys service {service} of cluster {cluster}"
        ))
        .with_hint(
            "create the application and deployment group, or name them in the config: \
             `codedeploy: {application_name: APP, deployment_group_name: GROUP}`",
        )),
        _ => Err(Error::bad_input(format!(
            "several CodeDeploy deployment groups deploy service {service}: {}",
            found
                .iter()
                .map(|g| format!("{}/{}", g.application, g.name))
                .collect::<Vec<_>>()
                .join(", ")
        ))
        .with_hint(
            "name one in the config: `codedeploy: {application_name, deployment_group_name}`",
        )),
    }
}

/// The name of a cluster given by name or ARN.
fn cluster_name(c: &str) -> &str {
    c.rsplit_once(":cluster/").map_or(c, |(_, n)| n)
}

/// The group in words, for plans and results.
pub(crate) fn describe_group(g: &GroupFacts) -> String {
    let mut s = format!(
        "CodeDeploy blue/green via application {} / group {}",
        g.application, g.name
    );
    if let Some(c) = &g.config_name {
        s.push_str(&format!(" ({c})"));
    }
    match g.termination_wait_minutes {
        Some(m) => s.push_str(&format!(
            "; the original task set is terminated {m} min after traffic moved"
        )),
        None => s.push_str("; the original task set is kept after traffic moved"),
    }
    if g.ready_action.as_deref() == Some("STOP_DEPLOYMENT") {
        s.push_str(&format!(
            "; traffic waits up to {} min for a ContinueDeployment",
            g.ready_wait_minutes
        ));
    }
    s
}

/// The plan's rollout line for a service CodeDeploy controls: the application and group,
/// and what the AppSpec would name. A group that cannot be found is said, not an error:
/// `diff` still shows the definitions (the deploy itself refuses).
pub(crate) async fn plan_rollout(clients: &Clients, local: &Local, decision: &mut Decision) {
    if !decision.live.as_ref().is_some_and(controlled) {
        return;
    }
    let hooks = configured_hooks(&local.config).unwrap_or_default();
    let group = match find_group(clients, local).await {
        Ok(g) => describe_group(&g),
        Err(e) => format!(
            "CodeDeploy blue/green, but: {}",
            e.diagnostics
                .first()
                .map(|d| d.message.clone())
                .unwrap_or_default()
        ),
    };
    let td = match &decision.choice {
        TaskChoice::Existing(a) => short_arn(a).to_string(),
        TaskChoice::Register => "the new revision".to_string(),
    };
    let container = local
        .service_json
        .as_ref()
        .and_then(|s| s.pointer("/loadBalancers/0"))
        .map(|lb| {
            format!(
                "{}:{}",
                lb.get("containerName")
                    .and_then(Value::as_str)
                    .unwrap_or("?"),
                lb.get("containerPort").and_then(Value::as_i64).unwrap_or(0)
            )
        })
        .unwrap_or_else(|| "the live service's container".into());
    let mut line = format!("{group}; AppSpec: {td}, container {container}");
    if !hooks.is_empty() {
        line.push_str(&format!(
            ", hooks {}",
            hooks
                .iter()
                .map(|h| h.0.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    decision.plan.rollout = line;
}
