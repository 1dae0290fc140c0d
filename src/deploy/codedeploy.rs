//! CodeDeploy blue/green: the strategy of services with `deploymentController: CODE_DEPLOY`.
//!
//! Receives a validated [`Local`] whose live service CodeDeploy controls, and the engine's
//! [`Decision`]; finds the CodeDeploy application and deployment group (the config's
//! `codedeploy: {application_name, deployment_group_name}`, as ecspresso reads it, else the
//! one group whose ECS service is this service), registers the task definition when it
//! changed, builds the AppSpec (task definition, the load balancer's container and port,
//! platform version, network configuration, capacity provider strategy, the config's
//! `appspec:` hooks), and calls CreateDeployment with automatic rollback on
//! DEPLOYMENT_FAILURE, DEPLOYMENT_STOP_ON_ALARM and DEPLOYMENT_STOP_ON_REQUEST.
//!
//! It follows the deployment through the engine's one `watch` with [`CdObserver`]
//! (GetDeployment, the deployment target's lifecycle events and task sets, stopped tasks of
//! the replacement task set), judges it with the pure [`judge`] / [`judge_rollback`] (which
//! `verdict::judge` hands CodeDeploy snapshots to), and settles it like any deploy: a
//! deployment CodeDeploy rolled back is a failure (exit 3); on a fast-fail, a timeout or a
//! cancel (with `on_cancel: rollback`) it calls StopDeployment with autoRollbackEnabled and
//! follows CodeDeploy's rollback.
//!
//! When the deploy is done: by default once production traffic is fully on the replacement
//! task set, every lifecycle event through AfterAllowTraffic succeeded and the replacement
//! runs its desired count (CodeDeploy may keep the original task set for the group's
//! termination wait); with `--wait-until terminated`, once CodeDeploy reports Succeeded (the
//! original task set is gone).

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};
use tokio::sync::watch as channel;
use tokio::time::Instant;

use super::apply::{self, Decision, DeployFlags};
use super::core::outcome::{
    Cause, Remedy, RollbackEnd, RollbackPolicy, cause_of, conclude, conclude_rollback, end_text,
    remedy, rollback_end,
};
use super::core::outcome::{Outcome, RunOutcome};
use super::core::rollback::rollback_target;
use super::core::state::{DeploymentStatus, ServiceStatus, Strategy};
use super::core::verdict::{
    DeploymentView, Failure, FastFail, Ours, Snapshot, StoppedTask, TargetView, Verdict, short_arn,
};
use super::engine::{CANCEL_FOLLOW, Engine, MIN_ROLLBACK_TIME, RollbackOptions, stop_counts};
use super::event::Event;
use super::gate::{NoHooks, Until};
use super::local::{Local, OnCancel};
use super::result::{Operation, RollbackReport, ServiceResult};
use super::watch::{Goal, Observation, Observer, Rules, Target, Traffic, watch};
use crate::aws::codedeploy::{DeploymentFacts, GroupFacts, NewDeployment, TaskSetFacts};
use crate::aws::types::ecs::{DesiredStatus, Service};
use crate::aws::{CallCounter, Clients, TaskFilter, counted};
use crate::config::Config;
use crate::error::{Diagnostic, Error, Result};

/// The AppSpec hooks of an ECS deployment, in the order CodeDeploy runs them.
pub const HOOK_EVENTS: [&str; 5] = [
    "BeforeInstall",
    "AfterInstall",
    "AfterAllowTestTraffic",
    "BeforeAllowTraffic",
    "AfterAllowTraffic",
];

/// `autoRollbackConfiguration.events` of every deployment cortado creates (ecspresso's
/// `--rollback-events` set).
pub const ROLLBACK_EVENTS: [&str; 3] = [
    "DEPLOYMENT_FAILURE",
    "DEPLOYMENT_STOP_ON_ALARM",
    "DEPLOYMENT_STOP_ON_REQUEST",
];

/// Statuses of a deployment that is not over yet.
const IN_FLIGHT: [&str; 5] = ["Created", "Queued", "InProgress", "Baking", "Ready"];

/// Whether CodeDeploy deploys this service: its live deployment controller is CODE_DEPLOY.
/// (A service that does not exist yet is created by CreateService, as ECS requires; its
/// later revisions go through CodeDeploy.)
pub fn controls(decision: &Decision) -> bool {
    decision.live.as_ref().is_some_and(controlled)
}

/// Whether a live service has the CODE_DEPLOY deployment controller.
pub fn controlled(svc: &Service) -> bool {
    svc.deployment_controller()
        .is_some_and(|c| c.r#type().as_str() == "CODE_DEPLOY")
}

/// Whether the config's service definition names the CODE_DEPLOY controller.
pub fn configured_controller(local: &Local) -> bool {
    local
        .service_json
        .as_ref()
        .and_then(|s| s.pointer("/deploymentController/type"))
        .and_then(Value::as_str)
        == Some("CODE_DEPLOY")
}

/// The config's `codedeploy:` section: (application_name, deployment_group_name), each
/// optional (what is missing is discovered).
pub fn configured_names(config: &Config) -> Result<(Option<String>, Option<String>)> {
    let Some(v) = &config.codedeploy else {
        return Ok((None, None));
    };
    let bad = |what: &str| {
        Error::input(
            Diagnostic::error(format!("codedeploy: {what}"))
                .at(config.document.locate("/codedeploy"))
                .hint("write `codedeploy: {application_name: APP, deployment_group_name: GROUP}`"),
        )
    };
    let Some(map) = v.as_object() else {
        return Err(bad("must be a mapping"));
    };
    let get = |key: &str| -> Result<Option<String>> {
        match map.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(bad(&format!("{key} must be a string"))),
        }
    };
    Ok((get("application_name")?, get("deployment_group_name")?))
}

/// The config's `appspec:` hooks as (lifecycle event, Lambda function), in the config's
/// order. Accepts ecspresso's shape (`Hooks: [{BeforeInstall: fn}, ...]`, or `hooks`).
pub fn configured_hooks(config: &Config) -> Result<Vec<(String, String)>> {
    let Some(spec) = &config.appspec else {
        return Ok(Vec::new());
    };
    let bad = |what: String| {
        Error::input(
            Diagnostic::error(format!("appspec: {what}"))
                .at(config.document.locate("/appspec"))
                .hint(format!(
                    "write `appspec: {{Hooks: [{{BeforeInstall: FUNCTION}}, ...]}}`; the events are {}",
                    HOOK_EVENTS.join(", ")
                )),
        )
    };
    let Some(map) = spec.as_object() else {
        return Err(bad("must be a mapping".into()));
    };
    let hooks = match map.get("Hooks").or_else(|| map.get("hooks")) {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(a)) => a,
        Some(_) => return Err(bad("Hooks must be a list".into())),
    };
    let mut out = Vec::new();
    for h in hooks {
        let Some(entry) = h.as_object() else {
            return Err(bad("each hook must be a mapping `EVENT: FUNCTION`".into()));
        };
        for (event, f) in entry {
            if !HOOK_EVENTS.contains(&event.as_str()) {
                return Err(bad(format!(
                    "{event} is not a lifecycle event of an ECS deployment"
                )));
            }
            let Some(f) = f.as_str().filter(|f| !f.trim().is_empty()) else {
                return Err(bad(format!("{event} needs a Lambda function name or ARN")));
            };
            out.push((event.clone(), f.to_string()));
        }
    }
    Ok(out)
}

/// What `validate` (and every command, through the one loading path) checks of the
/// CodeDeploy settings before any call: the `codedeploy:` and `appspec:` sections, and that
/// a CODE_DEPLOY service definition names the container and port the AppSpec routes to.
pub fn check_config(config: &Config, service: Option<&Value>) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    for e in [
        configured_names(config).err(),
        configured_hooks(config).err(),
    ]
    .into_iter()
    .flatten()
    {
        out.extend(e.diagnostics);
    }
    let code_deploy = service
        .and_then(|s| s.pointer("/deploymentController/type"))
        .and_then(Value::as_str)
        == Some("CODE_DEPLOY");
    if let Some(svc) = service.filter(|_| code_deploy)
        && let Err(e) = appspec(svc, "", &[])
    {
        out.extend(
            e.diagnostics
                .into_iter()
                .map(|d| d.at(config.document.locate("/service_definition"))),
        );
    }
    out
}

/// The AppSpec of a deployment of `task_definition_arn`, from the service definition
/// (camelCase JSON: the config's, else the live one's) and the hooks.
pub fn appspec(
    service: &Value,
    task_definition_arn: &str,
    hooks: &[(String, String)],
) -> Result<Value> {
    let lb = service.pointer("/loadBalancers/0");
    let container = lb
        .and_then(|l| l.get("containerName"))
        .and_then(Value::as_str);
    let port = lb
        .and_then(|l| l.get("containerPort"))
        .and_then(Value::as_i64);
    let (Some(container), Some(port)) = (container, port) else {
        return Err(Error::bad_input(
            "a CodeDeploy deployment needs the service's load balancer container: \
             loadBalancers[0].containerName and containerPort are missing",
        )
        .with_hint(
            "name them in the service definition, as ECS requires for CODE_DEPLOY services",
        ));
    };
    let mut props = Map::new();
    props.insert("TaskDefinition".into(), json!(task_definition_arn));
    props.insert(
        "LoadBalancerInfo".into(),
        json!({"ContainerName": container, "ContainerPort": port}),
    );
    if let Some(pv) = service.get("platformVersion").and_then(Value::as_str) {
        props.insert("PlatformVersion".into(), json!(pv));
    }
    if let Some(vpc) = service.pointer("/networkConfiguration/awsvpcConfiguration") {
        let mut a = Map::new();
        for (from, to) in [
            ("subnets", "Subnets"),
            ("securityGroups", "SecurityGroups"),
            ("assignPublicIp", "AssignPublicIp"),
        ] {
            if let Some(v) = vpc.get(from).filter(|v| !v.is_null()) {
                a.insert(to.into(), v.clone());
            }
        }
        props.insert(
            "NetworkConfiguration".into(),
            json!({"AwsvpcConfiguration": a}),
        );
    }
    if let Some(cps) = service
        .get("capacityProviderStrategy")
        .and_then(Value::as_array)
        .filter(|a| !a.is_empty())
    {
        let items: Vec<Value> = cps
            .iter()
            .map(|c| {
                let mut m = Map::new();
                for (from, to) in [
                    ("base", "Base"),
                    ("capacityProvider", "CapacityProvider"),
                    ("weight", "Weight"),
                ] {
                    if let Some(v) = c.get(from).filter(|v| !v.is_null()) {
                        m.insert(to.into(), v.clone());
                    }
                }
                Value::Object(m)
            })
            .collect();
        props.insert("CapacityProviderStrategy".into(), Value::Array(items));
    }
    let mut spec = json!({
        "version": 0.0,
        "Resources": [{"TargetService": {"Type": "AWS::ECS::Service", "Properties": props}}],
    });
    if !hooks.is_empty() {
        spec["Hooks"] = Value::Array(hooks.iter().map(|(e, f)| json!({ e: f })).collect());
    }
    Ok(spec)
}

/// The AppSpec as the YAML text CreateDeployment sends (and `cortado appspec` prints).
pub fn appspec_yaml(spec: &Value) -> Result<String> {
    serde_saphyr::to_string(spec)
        .map_err(|e| Error::internal(format!("cannot write the AppSpec as YAML: {e}")))
}

/// The task definition an AppSpec (YAML or JSON) deploys.
pub fn appspec_task_definition(text: &str) -> Option<String> {
    let v: Value = serde_saphyr::from_str(text).ok()?;
    v.pointer("/Resources/0/TargetService/Properties/TaskDefinition")
        .and_then(Value::as_str)
        .map(str::to_string)
}

/// Finds the deployment group of the service: the config's names, else the one group (in
/// the named application, or in any) whose ECS service is this cluster's service.
pub async fn find_group(clients: &Clients, local: &Local) -> Result<GroupFacts> {
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
pub fn describe_group(g: &GroupFacts) -> String {
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
pub async fn plan_rollout(clients: &Clients, local: &Local, decision: &mut Decision) {
    if !controls(decision) {
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
        apply::TaskChoice::Existing(a) => short_arn(a).to_string(),
        apply::TaskChoice::Register => "the new revision".to_string(),
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

/// What the watch sees of a CodeDeploy deployment (part of [`Snapshot`]).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CodeDeployView {
    pub deployment: DeploymentFacts,
    /// The status of the rollback deployment, when CodeDeploy started one.
    pub rollback_status: Option<String>,
    /// Lifecycle events in order: (name, status).
    pub events: Vec<(String, String)>,
    /// The replacement (GREEN) and original (BLUE) task sets.
    pub green: Option<TaskSetFacts>,
    pub blue: Option<TaskSetFacts>,
    /// Success needs CodeDeploy's Succeeded (the original task set terminated), not only
    /// traffic on the replacement (`--wait-until terminated`).
    pub wait_terminated: bool,
}

impl CodeDeployView {
    /// The lifecycle event in progress (else the last one that ended).
    pub fn stage(&self) -> Option<String> {
        self.events
            .iter()
            .find(|e| e.1 == "InProgress")
            .or_else(|| {
                self.events
                    .iter()
                    .rev()
                    .find(|e| e.1 != "Pending" && e.1 != "Skipped")
            })
            .map(|e| e.0.clone())
    }

    fn event_status(&self, name: &str) -> Option<&str> {
        self.events
            .iter()
            .find(|e| e.0 == name)
            .map(|e| e.1.as_str())
    }

    /// Production traffic is fully on a replacement that runs its desired count.
    pub fn traffic_moved(&self) -> bool {
        let allowed = self.event_status("AllowTraffic") == Some("Succeeded")
            && self
                .event_status("AfterAllowTraffic")
                .is_none_or(|s| s == "Succeeded");
        allowed
            && self.green.as_ref().is_some_and(|g| {
                g.traffic_weight >= 100.0 && g.running >= g.desired && g.pending == 0
            })
    }

    fn failed_event(&self) -> Option<&str> {
        self.events
            .iter()
            .find(|e| e.1 == "Failed")
            .map(|e| e.0.as_str())
    }

    fn reason(&self) -> String {
        let d = &self.deployment;
        let mut r = match (&d.error_code, &d.error_message) {
            (Some(c), Some(m)) => format!("{c}: {m}"),
            (None, Some(m)) => m.clone(),
            (Some(c), None) => c.clone(),
            (None, None) => d
                .rollback_message
                .clone()
                .unwrap_or_else(|| "no reason given".into()),
        };
        if let Some(e) = self.failed_event() {
            r.push_str(&format!(" (lifecycle event {e} failed)"));
        }
        r
    }

    fn rolled_back(&self) -> bool {
        self.deployment.rollback_deployment_id.is_some()
    }
}

/// Judges our CodeDeploy deployment from one snapshot (pure). Rules: Succeeded is success;
/// Failed or Stopped is a failure (rolled back when CodeDeploy started a rollback
/// deployment); in flight, the fast-fail rules apply to the replacement task set's stopped
/// tasks, and traffic fully on a healthy replacement is success unless we wait for the
/// original to be terminated.
pub fn judge(
    ours: &Ours,
    snap: &Snapshot,
    cd: &CodeDeployView,
    rules: &FastFail,
    unhealthy_for: std::time::Duration,
) -> Verdict {
    let d = &cd.deployment;
    match d.status.as_str() {
        "Succeeded" => return Verdict::Succeeded,
        "Failed" | "Stopped" => {
            let reason = cd.reason();
            return Verdict::Failed(if cd.rolled_back() {
                Failure::RolledBack {
                    by: if d.status == "Stopped" {
                        "CodeDeploy after a StopDeployment request".into()
                    } else {
                        "CodeDeploy's automatic rollback".into()
                    },
                    reason,
                }
            } else {
                Failure::RolloutFailed {
                    reason: format!("CodeDeploy deployment {} {}: {reason}", d.id, d.status),
                }
            });
        }
        _ => {}
    }
    if rules.enabled
        && let Some(f) = super::core::verdict::fast_fail(ours, snap, rules, unhealthy_for)
    {
        return Verdict::Failed(f);
    }
    if !cd.wait_terminated && cd.traffic_moved() {
        match our_healthy(snap, cd) {
            Some((healthy, need)) if healthy < need => {
                return Verdict::Pending(format!(
                    "traffic is on the replacement; {healthy}/{need} of its targets healthy"
                ));
            }
            _ => return Verdict::Succeeded,
        }
    }
    let at = cd.stage().unwrap_or_else(|| "start".into());
    Verdict::Pending(match (d.status.as_str(), &cd.green) {
        ("Ready", _) => "CodeDeploy waits for ContinueDeployment before moving traffic".into(),
        (_, Some(g)) if cd.traffic_moved() => format!(
            "traffic is on the replacement ({} running); waiting for CodeDeploy to terminate \
             the original task set",
            g.running
        ),
        (s, Some(g)) => format!(
            "CodeDeploy {s} at {at}: replacement {}/{} running, {} pending, {:.0}% of traffic",
            g.running, g.desired, g.pending, g.traffic_weight
        ),
        (s, None) => format!("CodeDeploy {s} at {at}"),
    })
}

/// Healthy targets of the replacement's tasks and how many it needs (one per desired task),
/// when its target group's health is known.
fn our_healthy(snap: &Snapshot, cd: &CodeDeployView) -> Option<(usize, usize)> {
    let g = cd.green.as_ref()?;
    if !snap.has_load_balancer || g.desired <= 0 {
        return None;
    }
    let healthy = snap
        .targets
        .iter()
        .filter(|t| {
            snap.our_task_ips.contains(&t.id) && t.state == super::core::state::TargetState::Healthy
        })
        .count();
    Some((healthy, g.desired as usize))
}

/// Judges CodeDeploy's rollback of our deployment (pure): done when the rollback
/// deployment succeeded; failed when it failed or was stopped.
pub fn judge_rollback(cd: &CodeDeployView) -> Verdict {
    let fail = |reason: String| Verdict::Failed(Failure::RollbackFailed { reason });
    let d = &cd.deployment;
    if let Some(status) = &cd.rollback_status {
        let id = d.rollback_deployment_id.clone().unwrap_or_default();
        return match status.as_str() {
            "Succeeded" => Verdict::Succeeded,
            "Failed" | "Stopped" => fail(format!(
                "the CodeDeploy rollback deployment {id} is {status}"
            )),
            s => Verdict::Pending(format!("CodeDeploy rollback deployment {id}: {s}")),
        };
    }
    match d.status.as_str() {
        "Succeeded" => fail(format!(
            "deployment {} succeeded before the stop took effect: the new revision serves",
            d.id
        )),
        "Failed" | "Stopped" => {
            // No rollback deployment: the original task set must be serving on its own.
            match &cd.blue {
                Some(b) if b.traffic_weight >= 100.0 && b.running >= b.desired => {
                    Verdict::Succeeded
                }
                Some(_) => {
                    Verdict::Pending("the original task set is not serving alone yet".into())
                }
                None => fail(format!(
                    "CodeDeploy ended deployment {} ({}) without a rollback",
                    d.id, d.status
                )),
            }
        }
        s => Verdict::Pending(format!(
            "waiting for CodeDeploy to stop deployment {} ({s})",
            d.id
        )),
    }
}

/// What to do about a CodeDeploy deployment that did not succeed (pure).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CdPlan {
    /// CodeDeploy already rolls back: follow it.
    Follow,
    /// StopDeployment with autoRollbackEnabled, then follow the rollback.
    Stop,
    Leave(&'static str),
}

/// The outcome table's [`remedy`], with CodeDeploy's reason it cannot undo: a deployment
/// CodeDeploy ended without a rollback.
pub fn rollback_plan(cause: &Cause, rollback_enabled: bool, rollback_on_cancel: bool) -> CdPlan {
    let ended = matches!(
        cause,
        Cause::Failed(Failure::RolloutFailed { .. } | Failure::RollbackFailed { .. })
    )
    .then_some("CodeDeploy ended the deployment without a rollback");
    let policy = RollbackPolicy {
        enabled: rollback_enabled,
        on_cancel: rollback_on_cancel,
    };
    match remedy(cause, policy, ended) {
        Remedy::Follow => CdPlan::Follow,
        Remedy::Undo => CdPlan::Stop,
        Remedy::Leave(why) => CdPlan::Leave(why),
    }
}

/// Polls one CodeDeploy deployment: GetDeployment (and the rollback deployment's, once
/// there is one), the deployment target's lifecycle events and task sets, and the stopped
/// tasks of the replacement task set. Those tasks were started by the replacement task set
/// CodeDeploy created: they are reported as started by our CodeDeploy deployment, so the
/// fast-fail rules and the stop counts apply to them unchanged.
pub struct CdObserver<'a> {
    clients: &'a Clients,
    cluster: String,
    deployment_id: String,
    wait_terminated: bool,
    stopped: BTreeMap<String, StoppedTask>,
    /// The replacement's task counts last seen: stopped tasks are looked up when they move.
    counts: Option<(i64, i64, i64)>,
    /// Target group ARNs by name (task sets name their group).
    tg_arns: BTreeMap<String, Option<String>>,
    /// The replacement's running tasks' IPs, and the targets of its group.
    ips: Vec<String>,
    targets: Vec<TargetView>,
    health_at: Option<std::time::Instant>,
    /// The calls this observer's polls made.
    calls: CallCounter,
}

impl<'a> CdObserver<'a> {
    async fn running_ips(&self, task_set: &str) -> Result<Vec<String>> {
        let arns = self
            .clients
            .list_tasks(
                &self.cluster,
                &TaskFilter::StartedBy(task_set.to_string()),
                DesiredStatus::Running,
            )
            .await?;
        if arns.is_empty() {
            return Ok(Vec::new());
        }
        Ok(self
            .clients
            .describe_tasks(&self.cluster, &arns)
            .await?
            .iter()
            .filter(|t| t.last_status() == Some("RUNNING"))
            .flat_map(super::observe::task_ips)
            .collect())
    }

    async fn target_health(&self, arn: &str) -> Result<Vec<TargetView>> {
        Ok(self
            .clients
            .describe_target_health(arn)
            .await?
            .iter()
            .map(|d| {
                let health = d.target_health();
                TargetView {
                    target_group_arn: arn.to_string(),
                    id: d
                        .target()
                        .and_then(|t| t.id())
                        .unwrap_or_default()
                        .to_string(),
                    state: health.and_then(|h| h.state()).map(|s| s.as_str()).into(),
                    reason: health
                        .and_then(|h| h.reason())
                        .map(|r| r.as_str().to_string()),
                }
            })
            .collect())
    }

    pub fn new(
        clients: &'a Clients,
        cluster: &str,
        deployment_id: &str,
        wait_terminated: bool,
    ) -> Self {
        CdObserver {
            clients,
            cluster: cluster.to_string(),
            deployment_id: deployment_id.to_string(),
            wait_terminated,
            stopped: BTreeMap::new(),
            counts: None,
            tg_arns: BTreeMap::new(),
            ips: Vec::new(),
            targets: Vec::new(),
            health_at: None,
            calls: CallCounter::default(),
        }
    }

    async fn view(&mut self) -> Result<CodeDeployView> {
        let deployment = self
            .clients
            .codedeploy_deployment(&self.deployment_id)
            .await?;
        let rollback_status = match &deployment.rollback_deployment_id {
            Some(id) => Some(self.clients.codedeploy_deployment(id).await?.status),
            None => None,
        };
        let target = self.clients.codedeploy_target(&self.deployment_id).await?;
        let (events, sets) = target.map(|t| (t.events, t.task_sets)).unwrap_or_default();
        let label = |l: &str| {
            sets.iter()
                .find(|s| s.label.eq_ignore_ascii_case(l))
                .cloned()
        };
        let green = label("Green");
        let blue = label("Blue");
        if let Some(g) = &green {
            let counts = (g.desired, g.running, g.pending);
            let moved = self.counts != Some(counts);
            if moved && !g.id.is_empty() {
                self.counts = Some(counts);
                self.ips = self.running_ips(&g.id).await?;
                let arns = self
                    .clients
                    .list_tasks(
                        &self.cluster,
                        &TaskFilter::StartedBy(g.id.clone()),
                        DesiredStatus::Stopped,
                    )
                    .await?;
                let new: Vec<String> = arns
                    .into_iter()
                    .filter(|a| !self.stopped.contains_key(a))
                    .collect();
                if !new.is_empty() {
                    for t in self.clients.describe_tasks(&self.cluster, &new).await? {
                        if t.last_status() != Some("STOPPED") {
                            continue;
                        }
                        let mut st = super::observe::stopped_task(&t);
                        st.started_by = Some(self.deployment_id.clone());
                        self.stopped.insert(st.task_arn.clone(), st);
                    }
                }
            }
            // The replacement's target group: asked when its tasks move, else every 10 s.
            let due = moved
                || self
                    .health_at
                    .is_none_or(|t| t.elapsed() >= super::observe::TARGET_HEALTH_REFRESH);
            if let Some(name) = g.target_group.clone().filter(|_| due && g.running > 0) {
                if !self.tg_arns.contains_key(&name) {
                    let arn = self.clients.target_group_arn_by_name(&name).await?;
                    self.tg_arns.insert(name.clone(), arn);
                }
                if let Some(Some(arn)) = self.tg_arns.get(&name).cloned() {
                    self.targets = self.target_health(&arn).await?;
                    self.health_at = Some(std::time::Instant::now());
                }
            }
        }
        Ok(CodeDeployView {
            deployment,
            rollback_status,
            events,
            green,
            blue,
            wait_terminated: self.wait_terminated,
        })
    }
}

/// A task set as a deployment entry, for the live view's counts.
fn set_view(s: &TaskSetFacts, id: &str, status: DeploymentStatus, td: &str) -> DeploymentView {
    DeploymentView {
        id: id.to_string(),
        status,
        task_definition_arn: td.to_string(),
        desired: s.desired as i32,
        pending: s.pending as i32,
        running: s.running as i32,
        ..DeploymentView::default()
    }
}

/// One observation from a CodeDeploy view: the replacement as our PRIMARY deployment, the
/// original beside it, the traffic split by task set, the stopped tasks.
pub fn observation(
    ours: &Ours,
    cd: CodeDeployView,
    stopped: Vec<StoppedTask>,
    (targets, our_task_ips): (Vec<TargetView>, Vec<String>),
) -> Observation {
    let has_load_balancer = !targets.is_empty();
    let mut deployments = Vec::new();
    if let Some(g) = &cd.green {
        deployments.push(set_view(
            g,
            &ours.deployment_id,
            DeploymentStatus::Primary,
            &ours.task_definition_arn,
        ));
    }
    if let Some(b) = &cd.blue {
        deployments.push(set_view(b, &b.id, DeploymentStatus::Active, ""));
    }
    let tg = |s: &Option<TaskSetFacts>| {
        s.as_ref()
            .map(|s| s.target_group.clone().unwrap_or_else(|| s.id.clone()))
    };
    let traffic = match (tg(&cd.green), &cd.green) {
        (Some(green_tg), Some(g)) => {
            let mut production = vec![(green_tg.clone(), g.traffic_weight.round() as i32)];
            if let (Some(blue_tg), Some(b)) = (tg(&cd.blue), &cd.blue) {
                production.push((blue_tg, b.traffic_weight.round() as i32));
            }
            Some(Traffic {
                production,
                test: Vec::new(),
                green: vec![green_tg],
            })
        }
        _ => None,
    };
    Observation {
        snapshot: Snapshot {
            service_status: ServiceStatus::Active,
            deployments,
            stopped_tasks: stopped,
            targets,
            our_task_ips,
            has_load_balancer,
            load_balancers: usize::from(has_load_balancer),
            strategy: Strategy::BlueGreen,
            codedeploy: Some(cd),
            ..Snapshot::default()
        },
        traffic,
        ..Observation::default()
    }
}

impl Observer for CdObserver<'_> {
    async fn observe(&mut self, services: &[(String, Ours)]) -> Result<Vec<Observation>> {
        let calls = self.calls.clone();
        counted(&calls, async {
            let mut out = Vec::new();
            for (_, ours) in services {
                let cd = self.view().await?;
                let stopped = self.stopped.values().cloned().collect();
                out.push(observation(
                    ours,
                    cd,
                    stopped,
                    (self.targets.clone(), self.ips.clone()),
                ));
            }
            Ok(out)
        })
        .await
    }

    fn calls(&self) -> usize {
        self.calls.get()
    }
}

/// The facts a CodeDeploy deploy is settled from.
struct CdSettle<'a> {
    local: &'a Local,
    service: &'a str,
    ours: &'a Ours,
    previous: Option<&'a str>,
    rollback_enabled: bool,
    wait_terminated: bool,
}

impl Engine<'_> {
    /// `deploy` of one service CodeDeploy controls (the engine's dispatch for
    /// [`controls`]): register if changed, CreateDeployment, follow, settle.
    pub(super) async fn deploy_by_codedeploy(
        &self,
        local: &Local,
        decision: &Decision,
        flags: &DeployFlags,
        mut r: ServiceResult,
        started_at: Instant,
        deadline: Instant,
    ) -> Result<ServiceResult> {
        let service = r.service.clone();
        // Everything local first: no write before the hooks and the flags are known good.
        let hooks = configured_hooks(&local.config)?;
        let wait_terminated = match &flags.until {
            Until::Done => false,
            Until::Terminated => true,
            _ => {
                return Err(Error::bad_input(
                    "--until and --wait-until ecs:STAGE follow ECS lifecycle stages, which a \
                     CodeDeploy deployment does not have",
                )
                .with_hint("use --wait-until terminated, or no --until"));
            }
        };
        // The AppSpec's inputs are checked before the first write, too.
        let live_json = match &decision.live {
            Some(s) => Some(crate::aws::json::service_definition_json(s)?),
            None => None,
        };
        match local.service_json.as_ref().or(live_json.as_ref()) {
            Some(svc) => appspec(svc, "", &hooks).map(|_| ())?,
            None => {
                return Err(Error::bad_input(format!(
                    "{service}: no service definition to build the AppSpec from"
                )));
            }
        }
        let group = find_group(self.clients, local).await?;
        let register_only = DeployFlags {
            no_update_service: true,
            ..flags.clone()
        };
        let (td_arn, _) =
            apply::apply(self.clients, local, decision, &register_only, self.emitter).await?;
        r.registered = decision.choice == apply::TaskChoice::Register;
        r.task_definition_arn = Some(td_arn.clone());
        if flags.no_update_service {
            r.outcome = RunOutcome::NotFollowed;
            r.detail = "registered only (--no-update-service)".into();
            return Ok(r);
        }
        if decision.previous_task_definition.as_deref() == Some(td_arn.as_str())
            && !flags.force_new_deployment
        {
            r.outcome = RunOutcome::NoChange;
            r.detail = "the service runs this revision: no CodeDeploy deployment started".into();
            return Ok(r);
        }
        let id = self
            .create_deployment(local, decision.live.as_ref(), &group, &td_arn, &hooks)
            .await?;
        r.deployment_id = Some(id.clone());
        if flags.no_wait {
            r.outcome = RunOutcome::NotFollowed;
            r.detail = format!("CodeDeploy deployment {id} started (--no-wait)");
            r.duration = started_at.elapsed();
            return Ok(r);
        }
        let ours = Ours {
            deployment_id: id.clone(),
            service_deployment_arn: None,
            task_definition_arn: td_arn.clone(),
        };
        let mut observer =
            CdObserver::new(self.clients, &local.config.cluster, &id, wait_terminated);
        let mut watched = watch(
            &mut observer,
            &mut NoHooks,
            vec![Target::deployed(&service, ours.clone())],
            &Rules {
                default: local.rollout.fast_fail.clone(),
                per_service: BTreeMap::new(),
            },
            &self.cadence,
            deadline,
            self.cancel.clone(),
            self.emitter,
        )
        .await;
        let mut journey = watched.journeys.remove(&service).unwrap_or_default();
        journey.strategy = "CodeDeploy blue/green".into();
        r.journey = (!journey.is_empty()).then_some(journey);
        r.stopped_tasks = stop_counts(watched.stopped.get(&service).map_or(&[][..], |v| v), &id);
        let facts = CdSettle {
            local,
            service: &service,
            ours: &ours,
            previous: decision.previous_task_definition.as_deref(),
            rollback_enabled: local.rollout.rollback && !flags.no_rollback,
            wait_terminated,
        };
        let (o, detail, rollback) = self
            .settle_codedeploy(&facts, watched.outcome(&service), &group, deadline)
            .await;
        r.outcome = o;
        r.detail = detail;
        r.rollback = rollback;
        r.duration = started_at.elapsed();
        Ok(r)
    }

    /// CreateDeployment of `td_arn` with the AppSpec built from the service definition (the
    /// config's, else the live one's); emits `DeploymentStarted`; returns the id.
    async fn create_deployment(
        &self,
        local: &Local,
        live: Option<&Service>,
        group: &GroupFacts,
        td_arn: &str,
        hooks: &[(String, String)],
    ) -> Result<String> {
        let service = local.service_name()?;
        let live_json = match live {
            Some(s) => Some(crate::aws::json::service_definition_json(s)?),
            None => None,
        };
        let Some(svc_json) = local.service_json.as_ref().or(live_json.as_ref()) else {
            return Err(Error::bad_input(format!(
                "{service}: no service definition to build the AppSpec from"
            )));
        };
        let spec = appspec(svc_json, td_arn, hooks)?;
        let text = appspec_yaml(&spec)?;
        let events: Vec<String> = ROLLBACK_EVENTS.iter().map(|e| e.to_string()).collect();
        let id = self
            .clients
            .create_codedeploy_deployment(&NewDeployment {
                application: &group.application,
                group: &group.name,
                appspec: &text,
                description: Some(&format!("cortado deploy of {}", short_arn(td_arn))),
                rollback_events: &events,
            })
            .await?;
        self.emitter.emit(Event::DeploymentStarted {
            service: service.to_string(),
            deployment_id: id.clone(),
            service_deployment_arn: None,
            task_definition_arn: td_arn.to_string(),
            created: false,
        });
        Ok(id)
    }

    /// `rollback` of a service CodeDeploy controls: a deployment in flight is stopped with
    /// CodeDeploy's rollback; otherwise the revision that last ran successfully before the
    /// running one (`codedeploy_target`) is deployed through CodeDeploy. Followed
    /// unless `--no-wait`.
    pub(super) async fn rollback_by_codedeploy(
        &self,
        local: &Local,
        svc: &Service,
        opts: RollbackOptions,
        started_at: Instant,
        deadline: Instant,
    ) -> Result<ServiceResult> {
        let service = local.service_name()?.to_string();
        let cluster = local.config.cluster.clone();
        let hooks = configured_hooks(&local.config)?;
        let group = find_group(self.clients, local).await?;
        let current = svc.task_definition().unwrap_or_default().to_string();
        let in_flight = self
            .clients
            .codedeploy_deployments(&group.application, &group.name, &IN_FLIGHT)
            .await?
            .into_iter()
            .next();
        let mut r = ServiceResult::new(Operation::Rollback, &cluster, &service);
        r.previous_task_definition_arn = Some(current.clone());
        let end = if let Some(id) = in_flight {
            // The revision that deployment rolls out (its AppSpec's); the service may show
            // either that one or the one it replaces.
            let deploying = self
                .clients
                .codedeploy_deployment(&id)
                .await?
                .appspec
                .as_deref()
                .and_then(appspec_task_definition)
                .unwrap_or_else(|| current.clone());
            let back = (deploying != current).then(|| current.clone());
            r.deployment_id = Some(id.clone());
            r.previous_task_definition_arn = Some(deploying.clone());
            r.task_definition_arn = back.clone();
            let ours = Ours {
                deployment_id: id,
                service_deployment_arn: None,
                task_definition_arn: deploying,
            };
            let f = CdSettle {
                local,
                service: &service,
                ours: &ours,
                previous: back.as_deref(),
                rollback_enabled: true,
                wait_terminated: false,
            };
            let (end, report) = self
                .roll_back_codedeploy(&f, true, (!opts.no_wait).then_some(deadline), false)
                .await;
            r.rollback = report;
            end
        } else {
            let (previous, origin) = self
                .codedeploy_target(local, &group, &current, opts.revision)
                .await?;
            r.task_definition_arn = Some(previous.clone());
            let id = self
                .create_deployment(local, Some(svc), &group, &previous, &hooks)
                .await?;
            r.deployment_id = Some(id.clone());
            if opts.no_wait {
                RollbackEnd::Started
            } else {
                let ours = Ours {
                    deployment_id: id.clone(),
                    service_deployment_arn: None,
                    task_definition_arn: previous.clone(),
                };
                let mut observer = CdObserver::new(self.clients, &cluster, &id, false);
                let watched = watch(
                    &mut observer,
                    &mut NoHooks,
                    vec![Target::deployed(&service, ours)],
                    &Rules::from(FastFail::default()),
                    &self.cadence,
                    deadline,
                    self.cancel.clone(),
                    self.emitter,
                )
                .await;
                match watched.outcome(&service) {
                    Outcome::Succeeded => {
                        RollbackEnd::Done(format!("CodeDeploy deployment {id} put {origin} back"))
                    }
                    Outcome::Failed(fl) => RollbackEnd::Failed(fl.to_string()),
                    Outcome::TimedOut { last } | Outcome::Cancelled { last } => {
                        RollbackEnd::Unsettled(format!("deployment {id} did not finish ({last})"))
                    }
                    Outcome::Lost { error } => {
                        RollbackEnd::Failed(format!("cannot follow deployment {id}: {error}"))
                    }
                    Outcome::Paused { stage, .. } => {
                        RollbackEnd::Unsettled(format!("deployment {id} stopped at {stage}"))
                    }
                }
            }
        };
        let (outcome, detail) = conclude_rollback(&end);
        r.outcome = outcome;
        r.detail = format!("{}; {detail}", describe_group(&group));
        if opts.deregister && matches!(end, RollbackEnd::Done(_)) {
            self.clients.deregister_task_definition(&current).await?;
            self.emitter.emit(Event::Warning {
                message: format!(
                    "deregistered the rolled-back revision {}",
                    short_arn(&current)
                ),
            });
        }
        r.duration = started_at.elapsed();
        Ok(r)
    }

    /// Where `rollback` of a CodeDeploy service goes, and why: `--revision N`; else the task
    /// definition of the newest CodeDeploy deployment of the group that Succeeded with another
    /// task definition than `current`; else what ECS's record of the service says
    /// ([`rollback_target`]). Never a revision no deployment ever served.
    async fn codedeploy_target(
        &self,
        local: &Local,
        group: &GroupFacts,
        current: &str,
        revision: Option<i64>,
    ) -> Result<(String, String)> {
        let service = local.service_name()?;
        if let Some(n) = revision {
            let family = crate::aws::ecs::arn_family(current).unwrap_or_default();
            let (td, _) = self
                .clients
                .describe_task_definition(&format!("{family}:{n}"))
                .await?;
            let arn = td.task_definition_arn().unwrap_or_default().to_string();
            return Ok((arn, format!("{family}:{n}, asked for with --revision {n}")));
        }
        let ids = self
            .clients
            .codedeploy_deployments(&group.application, &group.name, &["Succeeded"])
            .await?;
        let mut succeeded = Vec::new();
        for id in ids.iter().take(super::observe::RECORD_DEPTH) {
            let d = self.clients.codedeploy_deployment(id).await?;
            if let Some(td) = d.appspec.as_deref().and_then(appspec_task_definition) {
                succeeded.push((d.created.unwrap_or(0), id.clone(), td));
            }
        }
        succeeded.sort_by_key(|d| std::cmp::Reverse(d.0));
        if let Some((_, id, td)) = succeeded
            .into_iter()
            .find(|(_, _, td)| short_arn(td) != short_arn(current))
        {
            let origin = format!(
                "{}, the revision of CodeDeploy deployment {id}, which succeeded",
                short_arn(&td)
            );
            return Ok((td, origin));
        }
        // ECS's record may not cover a CodeDeploy service: a refusal leaves it empty.
        let records =
            super::observe::deployment_record(self.clients, &local.config.cluster, service)
                .await
                .unwrap_or_else(|e| {
                    self.emitter.emit(Event::Warning {
                        message: format!(
                            "ECS's record of {service}'s deployments could not be read: {}",
                            e.diagnostics
                                .first()
                                .map(|d| d.message.clone())
                                .unwrap_or_default()
                        ),
                    });
                    Vec::new()
                });
        match rollback_target(&records, current) {
            Some(t) => {
                let origin = format!("{}, {}", short_arn(&t.task_definition_arn), t.origin());
                Ok((t.task_definition_arn, origin))
            }
            None => Err(Error::conflict(format!(
                "{service} runs {}, and neither CodeDeploy's nor ECS's record names an earlier \
                 revision that served",
                short_arn(current)
            ))
            .with_hint("`cortado rollback --revision N` returns to a revision you choose")),
        }
    }

    /// `wait` on a service CodeDeploy controls: follows the group's deployment in flight to
    /// its verdict (cortado changes nothing: a failure is reported, CodeDeploy's own
    /// rollback counts as rolled back); with none in flight, the service is as it is.
    pub(super) async fn wait_codedeploy(
        &self,
        local: &Local,
        svc: &Service,
        started_at: Instant,
        deadline: Instant,
    ) -> Result<ServiceResult> {
        let service = local.service_name()?.to_string();
        let cluster = local.config.cluster.clone();
        let group = find_group(self.clients, local).await?;
        let current = svc.task_definition().unwrap_or_default().to_string();
        let mut r = ServiceResult::new(Operation::Wait, &cluster, &service);
        let in_flight = self
            .clients
            .codedeploy_deployments(&group.application, &group.name, &IN_FLIGHT)
            .await?
            .into_iter()
            .next();
        let Some(id) = in_flight else {
            r.outcome = RunOutcome::Succeeded;
            r.detail = format!(
                "no CodeDeploy deployment in flight; the service runs {}",
                short_arn(&current)
            );
            r.task_definition_arn = Some(current);
            r.duration = started_at.elapsed();
            return Ok(r);
        };
        let td = self
            .clients
            .codedeploy_deployment(&id)
            .await?
            .appspec
            .as_deref()
            .and_then(appspec_task_definition)
            .unwrap_or(current);
        let ours = Ours {
            deployment_id: id.clone(),
            service_deployment_arn: None,
            task_definition_arn: td.clone(),
        };
        let mut observer = CdObserver::new(self.clients, &cluster, &id, false);
        let mut watched = watch(
            &mut observer,
            &mut NoHooks,
            vec![Target::deployed(&service, ours)],
            &Rules::from(FastFail {
                enabled: false,
                ..FastFail::default()
            }),
            &self.cadence,
            deadline,
            self.cancel.clone(),
            self.emitter,
        )
        .await;
        let mut journey = watched.journeys.remove(&service).unwrap_or_default();
        journey.strategy = "CodeDeploy blue/green".into();
        r.journey = (!journey.is_empty()).then_some(journey);
        let success = format!("CodeDeploy deployment {id}: traffic is on the new revision");
        let (outcome, detail) = conclude(&watched.outcome(&service), None, &success);
        r.outcome = outcome;
        r.detail = detail;
        r.stopped_tasks = stop_counts(watched.stopped.get(&service).map_or(&[][..], |v| v), &id);
        r.task_definition_arn = Some(td);
        r.deployment_id = Some(id);
        r.duration = started_at.elapsed();
        Ok(r)
    }

    async fn settle_codedeploy(
        &self,
        f: &CdSettle<'_>,
        outcome: Outcome,
        group: &GroupFacts,
        deadline: Instant,
    ) -> (RunOutcome, String, Option<RollbackReport>) {
        let cause = match outcome {
            Outcome::Succeeded => {
                let detail = match (f.wait_terminated, group.termination_wait_minutes) {
                    (true, _) => "CodeDeploy deployment succeeded: traffic is on the new revision \
                                  and the original task set is terminated"
                        .to_string(),
                    (false, Some(0)) => "traffic is fully on the new revision and healthy; \
                                         CodeDeploy terminates the original task set right away"
                        .to_string(),
                    (false, Some(m)) => format!(
                        "traffic is fully on the new revision and healthy; CodeDeploy terminates \
                         the original task set {m} min later (--wait-until terminated waits for it)"
                    ),
                    (false, None) => "traffic is fully on the new revision and healthy; the \
                                      group keeps the original task set"
                        .to_string(),
                };
                return (RunOutcome::Succeeded, detail, None);
            }
            other => other,
        };
        let ended = cause;
        let Some(cause) = cause_of(&ended) else {
            let (o, detail) = conclude(&ended, None, "deployment completed");
            return (o, detail, None);
        };
        let plan = rollback_plan(
            &cause,
            f.rollback_enabled,
            f.local.rollout.on_cancel == OnCancel::Rollback,
        );
        let (end, report) = match plan {
            CdPlan::Leave(leave) => (RollbackEnd::NotPossible(leave.to_string()), None),
            plan => {
                let cancelled = cause == Cause::Cancelled;
                let until = if cancelled {
                    Instant::now() + CANCEL_FOLLOW
                } else {
                    Instant::now()
                        + deadline
                            .saturating_duration_since(Instant::now())
                            .max(MIN_ROLLBACK_TIME)
                };
                self.roll_back_codedeploy(f, plan == CdPlan::Stop, Some(until), cancelled)
                    .await
            }
        };
        let (o, detail) = conclude(&ended, Some(&end), "deployment completed");
        (o, detail, report)
    }

    /// Stops our deployment with CodeDeploy's rollback (when `stop`), then follows the
    /// rollback until `until` (None: not followed).
    async fn roll_back_codedeploy(
        &self,
        f: &CdSettle<'_>,
        stop: bool,
        until: Option<Instant>,
        cancelled: bool,
    ) -> (RollbackEnd, Option<RollbackReport>) {
        let t0 = Instant::now();
        let id = &f.ours.deployment_id;
        let method = if stop {
            "CodeDeploy StopDeployment with autoRollbackEnabled"
        } else {
            "following CodeDeploy's rollback"
        };
        let to = f.previous.map(str::to_string);
        let report = |end: &RollbackEnd| RollbackReport {
            method: method.to_string(),
            to_task_definition_arn: to.clone(),
            source: None,
            done: matches!(end, RollbackEnd::Done(_)),
            detail: end_text(end),
            deployment_id: None,
            seconds: t0.elapsed().as_secs_f64(),
        };
        self.emitter.emit(Event::RollbackStarted {
            service: f.service.to_string(),
            method: method.to_string(),
            to_task_definition: to.clone(),
            source: None,
        });
        if stop && let Err(e) = self.clients.stop_codedeploy_deployment(id, true).await {
            // It may have ended meanwhile, rolled back by CodeDeploy itself: then follow that.
            let now = self.clients.codedeploy_deployment(id).await.ok();
            if now.is_none_or(|d| d.rollback_deployment_id.is_none()) {
                let end = RollbackEnd::Failed(format!(
                    "StopDeployment failed: {}",
                    e.diagnostics
                        .first()
                        .map(|d| d.message.clone())
                        .unwrap_or_default()
                ));
                self.finished(f.service, &end);
                let r = report(&end);
                return (end, Some(r));
            }
        }
        let Some(until) = until else {
            let end = RollbackEnd::Started;
            let r = report(&end);
            return (end, Some(r));
        };
        let (_quiet_tx, quiet_rx) = channel::channel(false);
        let cancel = if cancelled {
            quiet_rx
        } else {
            self.cancel.clone()
        };
        let mut observer =
            CdObserver::new(self.clients, &f.local.config.cluster, id, f.wait_terminated);
        let watched = watch(
            &mut observer,
            &mut NoHooks,
            vec![Target {
                service: f.service.to_string(),
                ours: f.ours.clone(),
                goal: Goal::RolledBack(self.wait_rollback.unwrap_or(f.local.rollout.wait_rollback)),
                history: Vec::new(),
            }],
            &FastFail::default().into(),
            &self.cadence,
            until,
            cancel,
            self.emitter,
        )
        .await;
        let end = match rollback_end(watched.outcome(f.service), None) {
            RollbackEnd::Done(_) => RollbackEnd::Done(match &to {
                Some(t) => format!("CodeDeploy returned traffic to {}", short_arn(t)),
                None => "CodeDeploy returned traffic to the original task set".into(),
            }),
            e => e,
        };
        self.finished(f.service, &end);
        let r = report(&end);
        (end, Some(r))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(label: &str, weight: f64, running: i64) -> TaskSetFacts {
        TaskSetFacts {
            id: format!("ecs-svc/{label}"),
            label: label.into(),
            status: "PRIMARY".into(),
            desired: 2,
            running,
            pending: 0,
            traffic_weight: weight,
            target_group: Some(format!("tg-{label}")),
        }
    }

    fn view(status: &str, events: &[(&str, &str)]) -> CodeDeployView {
        CodeDeployView {
            deployment: DeploymentFacts {
                id: "d-1".into(),
                status: status.into(),
                ..DeploymentFacts::default()
            },
            events: events
                .iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect(),
            green: Some(set("Green", 0.0, 2)),
            blue: Some(set("Blue", 100.0, 2)),
            ..CodeDeployView::default()
        }
    }

    fn ours() -> Ours {
        Ours {
            deployment_id: "d-1".into(),
            service_deployment_arn: None,
            task_definition_arn: "td:2".into(),
        }
    }

    fn judged(cd: &CodeDeployView, stopped: Vec<StoppedTask>) -> Verdict {
        let obs = observation(&ours(), cd.clone(), stopped, (vec![], vec![]));
        super::super::core::verdict::judge(
            &ours(),
            &obs.snapshot,
            &FastFail::default(),
            std::time::Duration::ZERO,
        )
    }

    const ALL_DONE: [(&str, &str); 8] = [
        ("BeforeInstall", "Succeeded"),
        ("Install", "Succeeded"),
        ("AfterInstall", "Succeeded"),
        ("AllowTestTraffic", "Succeeded"),
        ("AfterAllowTestTraffic", "Succeeded"),
        ("BeforeAllowTraffic", "Succeeded"),
        ("AllowTraffic", "Succeeded"),
        ("AfterAllowTraffic", "Succeeded"),
    ];

    #[test]
    fn success_is_traffic_on_a_full_replacement_or_codedeploy_succeeded() {
        let mut cd = view("InProgress", &ALL_DONE);
        // Events done but the weight still on blue: pending.
        assert!(matches!(judged(&cd, vec![]), Verdict::Pending(_)));
        cd.green = Some(set("Green", 100.0, 2));
        cd.blue = Some(set("Blue", 0.0, 2));
        assert_eq!(judged(&cd, vec![]), Verdict::Succeeded);
        // Waiting for termination: only CodeDeploy's Succeeded counts.
        cd.wait_terminated = true;
        assert!(matches!(judged(&cd, vec![]), Verdict::Pending(p) if p.contains("terminate")));
        cd.deployment.status = "Succeeded".into();
        assert_eq!(judged(&cd, vec![]), Verdict::Succeeded);
    }

    #[test]
    fn traffic_on_the_replacement_needs_its_targets_healthy_when_known() {
        let mut cd = view("InProgress", &ALL_DONE);
        cd.green = Some(set("Green", 100.0, 2));
        cd.blue = Some(set("Blue", 0.0, 2));
        let target = |id: &str, state: &str| TargetView {
            target_group_arn: "tg-Green".into(),
            id: id.into(),
            state: state.into(),
            reason: None,
        };
        let ips = vec!["10.0.0.1".to_string(), "10.0.0.2".to_string()];
        let judged_with = |targets: Vec<TargetView>| {
            let obs = observation(&ours(), cd.clone(), vec![], (targets, ips.clone()));
            super::super::core::verdict::judge(
                &ours(),
                &obs.snapshot,
                &FastFail::default(),
                std::time::Duration::ZERO,
            )
        };
        let v = judged_with(vec![
            target("10.0.0.1", "healthy"),
            target("10.0.0.2", "initial"),
        ]);
        assert!(
            matches!(&v, Verdict::Pending(p) if p.contains("1/2")),
            "{v:?}"
        );
        let v = judged_with(vec![
            target("10.0.0.1", "healthy"),
            target("10.0.0.2", "healthy"),
        ]);
        assert_eq!(v, Verdict::Succeeded);
        // Another task's healthy target does not count for ours.
        let v = judged_with(vec![
            target("10.0.0.1", "healthy"),
            target("10.9.9.9", "healthy"),
        ]);
        assert!(matches!(v, Verdict::Pending(_)), "{v:?}");
    }

    #[test]
    fn a_rolled_back_deployment_is_a_failure_never_a_success() {
        let mut cd = view("Failed", &[("AfterAllowTestTraffic", "Failed")]);
        cd.deployment.error_code = Some("HEALTH_CONSTRAINTS".into());
        cd.deployment.error_message = Some("hook said no".into());
        cd.deployment.rollback_deployment_id = Some("d-2".into());
        match judged(&cd, vec![]) {
            Verdict::Failed(Failure::RolledBack { by, reason }) => {
                assert!(by.contains("automatic rollback"), "{by}");
                assert!(reason.contains("AfterAllowTestTraffic"), "{reason}");
            }
            v => panic!("{v:?}"),
        }
        cd.deployment.rollback_deployment_id = None;
        assert!(matches!(
            judged(&cd, vec![]),
            Verdict::Failed(Failure::RolloutFailed { .. })
        ));
    }

    #[test]
    fn crash_looping_replacement_fails_fast() {
        let cd = view("InProgress", &[("Install", "InProgress")]);
        let t = |n: &str| StoppedTask {
            task_arn: n.into(),
            started_by: Some("d-1".into()),
            stopped_reason: Some("Essential container in task exited".into()),
            ..StoppedTask::default()
        };
        assert!(matches!(judged(&cd, vec![t("a")]), Verdict::Pending(_)));
        assert!(matches!(
            judged(&cd, vec![t("a"), t("b")]),
            Verdict::Failed(Failure::FastFail { .. })
        ));
    }

    #[test]
    fn rollback_judge_follows_the_rollback_deployment() {
        let mut cd = view("InProgress", &[]);
        assert!(matches!(judge_rollback(&cd), Verdict::Pending(_)));
        cd.deployment.status = "Stopped".into();
        cd.deployment.rollback_deployment_id = Some("d-2".into());
        cd.rollback_status = Some("InProgress".into());
        assert!(matches!(judge_rollback(&cd), Verdict::Pending(_)));
        cd.rollback_status = Some("Succeeded".into());
        assert_eq!(judge_rollback(&cd), Verdict::Succeeded);
        cd.rollback_status = Some("Failed".into());
        assert!(matches!(
            judge_rollback(&cd),
            Verdict::Failed(Failure::RollbackFailed { .. })
        ));
        cd.deployment.status = "Succeeded".into();
        cd.deployment.rollback_deployment_id = None;
        cd.rollback_status = None;
        assert!(matches!(judge_rollback(&cd), Verdict::Failed(_)));
    }

    #[test]
    fn plan_table() {
        let ff = Cause::Failed(Failure::FastFail {
            rule: "r".into(),
            detail: "d".into(),
        });
        let rb = Cause::Failed(Failure::RolledBack {
            by: "x".into(),
            reason: "y".into(),
        });
        assert_eq!(rollback_plan(&ff, true, false), CdPlan::Stop);
        assert_eq!(
            rollback_plan(&ff, false, false),
            CdPlan::Leave("rollback disabled")
        );
        assert_eq!(rollback_plan(&rb, false, false), CdPlan::Follow);
        assert_eq!(rollback_plan(&Cause::TimedOut, true, false), CdPlan::Stop);
        assert_eq!(rollback_plan(&Cause::Cancelled, true, true), CdPlan::Stop);
        assert_eq!(
            rollback_plan(&Cause::Cancelled, true, false),
            CdPlan::Leave("on_cancel is leave")
        );
    }

    #[test]
    fn appspec_from_a_service_definition() {
        let svc = json!({
            "loadBalancers": [{"targetGroupArn": "tg", "containerName": "web", "containerPort": 8080}],
            "platformVersion": "1.4.0",
            "networkConfiguration": {"awsvpcConfiguration": {"subnets": ["s-1"], "securityGroups": ["sg-1"], "assignPublicIp": "DISABLED"}},
            "capacityProviderStrategy": [{"capacityProvider": "FARGATE_SPOT", "weight": 2, "base": 1}],
        });
        let hooks = vec![("AfterAllowTestTraffic".to_string(), "smoke".to_string())];
        let spec = appspec(&svc, "arn:td:3", &hooks).unwrap();
        let p = &spec["Resources"][0]["TargetService"]["Properties"];
        assert_eq!(p["TaskDefinition"], "arn:td:3");
        assert_eq!(p["LoadBalancerInfo"]["ContainerName"], "web");
        assert_eq!(p["LoadBalancerInfo"]["ContainerPort"], 8080);
        assert_eq!(p["PlatformVersion"], "1.4.0");
        assert_eq!(
            p["NetworkConfiguration"]["AwsvpcConfiguration"]["Subnets"][0],
            "s-1"
        );
        assert_eq!(
            p["CapacityProviderStrategy"][0]["CapacityProvider"],
            "FARGATE_SPOT"
        );
        assert_eq!(spec["Hooks"][0]["AfterAllowTestTraffic"], "smoke");
        // The YAML reads back as the same document.
        let text = appspec_yaml(&spec).unwrap();
        let back: Value = serde_saphyr::from_str(&text).unwrap();
        assert_eq!(back, spec);
        assert_eq!(appspec_task_definition(&text).as_deref(), Some("arn:td:3"));
        // No container to route to: a clear error.
        assert!(appspec(&json!({}), "arn", &[]).is_err());
    }
}
