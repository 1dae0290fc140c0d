//! CodeDeploy for ECS services with the CODE_DEPLOY deployment controller: applications,
//! deployment groups, deployments driven by an AppSpec, and their ECS target view.
//!
//! Receives awsJson1.1 operations (`CodeDeploy_20141006.*`); hands a deployment to the ECS
//! world's blue/green machine (the group's target group pair and listeners become the
//! deployment's bindings, the deployment config its strategy, AppSpec hooks its Lambda hooks)
//! and reads its progress back as CodeDeploy statuses, lifecycle events and task sets.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::api::ApiError;
use super::util::{Get, ts};
use super::world::{World, service_key};

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct CodeDeploy {
    pub applications: BTreeMap<String, Value>,
    /// "app/group" -> deploymentGroupInfo.
    pub groups: BTreeMap<String, Value>,
    pub deployments: BTreeMap<String, CdDeployment>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CdDeployment {
    pub id: String,
    pub application: String,
    pub group: String,
    pub config_name: String,
    pub service_key: String,
    pub sd_arn: String,
    pub created_at: f64,
    pub revision: Value,
    pub description: Option<String>,
    pub stopped: bool,
    pub auto_rollback: Value,
    /// The ECS deployment (task set) this deployment created: the replacement (GREEN).
    #[serde(default)]
    pub green_id: String,
    /// The rollback deployment CodeDeploy started for this one (`rollbackInfo`).
    #[serde(default)]
    pub rollback_id: Option<String>,
    /// On a rollback deployment: the deployment it rolls back.
    #[serde(default)]
    pub rollback_of: Option<String>,
}

fn cd_err(code: &str, msg: impl Into<String>) -> ApiError {
    ApiError::client(code, msg)
}

/// Deployment configs of ECS: (strategy, percent, minutes).
fn ecs_config(name: &str) -> Option<(&'static str, f64, f64)> {
    Some(match name {
        "CodeDeployDefault.ECSAllAtOnce" => ("BLUE_GREEN", 100.0, 0.0),
        "CodeDeployDefault.ECSCanary10Percent5Minutes" => ("CANARY", 10.0, 5.0),
        "CodeDeployDefault.ECSCanary10Percent15Minutes" => ("CANARY", 10.0, 15.0),
        "CodeDeployDefault.ECSLinear10PercentEvery1Minutes" => ("LINEAR", 10.0, 1.0),
        "CodeDeployDefault.ECSLinear10PercentEvery3Minutes" => ("LINEAR", 10.0, 3.0),
        _ => return None,
    })
}

/// AppSpec hook -> (ECS lifecycle stage, CodeDeploy lifecycle event index).
const HOOKS: [(&str, &str); 5] = [
    ("BeforeInstall", "PRE_SCALE_UP"),
    ("AfterInstall", "POST_SCALE_UP"),
    ("AfterAllowTestTraffic", "POST_TEST_TRAFFIC_SHIFT"),
    ("BeforeAllowTraffic", "PRE_PRODUCTION_TRAFFIC_SHIFT"),
    ("AfterAllowTraffic", "POST_PRODUCTION_TRAFFIC_SHIFT"),
];

/// CodeDeploy lifecycle events of an ECS deployment and the blue/green steps (first, last)
/// each one spans (AllowTraffic is the shift and its step bake; AfterAllowTraffic runs the
/// POST_PRODUCTION_TRAFFIC_SHIFT hooks; the termination wait is the bake after it).
const EVENTS: [(&str, usize, usize); 8] = [
    ("BeforeInstall", 1, 1),
    ("Install", 2, 2),
    ("AfterInstall", 3, 3),
    ("AllowTestTraffic", 4, 4),
    ("AfterAllowTestTraffic", 5, 5),
    ("BeforeAllowTraffic", 6, 6),
    ("AllowTraffic", 7, 8),
    ("AfterAllowTraffic", 9, 9),
];

impl World {
    pub fn codedeploy(&mut self, op: &str, body: &Value) -> Result<Value, ApiError> {
        if !body.is_object() {
            return Err(ApiError::client(
                "SerializationException",
                "The request body must be a JSON object.",
            ));
        }
        self.sync_cd_rollbacks();
        match op {
            "CreateApplication" => {
                let name = body.str_req("applicationName")?;
                if self.codedeploy.applications.contains_key(&name) {
                    return Err(cd_err(
                        "ApplicationAlreadyExistsException",
                        format!("The application {name} already exists."),
                    ));
                }
                let id = format!(
                    "{}-{}-{}-{}-{}",
                    self.rng.hex(8),
                    self.rng.hex(4),
                    self.rng.hex(4),
                    self.rng.hex(4),
                    self.rng.hex(12)
                );
                let platform = body
                    .str_opt("computePlatform")?
                    .unwrap_or_else(|| "Server".into());
                let app = json!({"applicationId": id, "applicationName": name, "createTime": ts(self.now),
                    "linkedToGitHub": false, "computePlatform": platform});
                self.codedeploy.applications.insert(name, app);
                Ok(json!({"applicationId": id}))
            }
            "GetApplication" => {
                let name = body.str_req("applicationName")?;
                let app = self.app(&name)?;
                Ok(json!({"application": app}))
            }
            "ListApplications" => {
                Ok(json!({"applications": self.codedeploy.applications.keys().collect::<Vec<_>>()}))
            }
            "CreateDeploymentGroup" => self.create_deployment_group(body),
            "GetDeploymentGroup" => {
                let app = body.str_req("applicationName")?;
                let group = body.str_req("deploymentGroupName")?;
                self.app(&app)?;
                let info = self.group(&app, &group)?;
                Ok(json!({"deploymentGroupInfo": info}))
            }
            "BatchGetDeploymentGroups" => self.batch_get_deployment_groups(body),
            "ListDeploymentGroups" => {
                let app = body.str_req("applicationName")?;
                self.app(&app)?;
                let prefix = format!("{app}/");
                let groups: Vec<&str> = self
                    .codedeploy
                    .groups
                    .keys()
                    .filter_map(|k| k.strip_prefix(&prefix))
                    .collect();
                Ok(json!({"applicationName": app, "deploymentGroups": groups}))
            }
            "CreateDeployment" => self.create_cd_deployment(body),
            "GetDeployment" => {
                let id = body.str_req("deploymentId")?;
                let info = self.deployment_info(&id)?;
                Ok(json!({"deploymentInfo": info}))
            }
            "ListDeployments" => {
                let app = body.str_opt("applicationName")?;
                let group = body.str_opt("deploymentGroupName")?;
                let statuses = body.str_list("includeOnlyStatuses")?;
                let mut ds: Vec<&CdDeployment> = self
                    .codedeploy
                    .deployments
                    .values()
                    .filter(|d| {
                        app.as_ref().is_none_or(|a| *a == d.application)
                            && group.as_ref().is_none_or(|g| *g == d.group)
                    })
                    .filter(|d| {
                        statuses.is_empty() || statuses.contains(&self.cd_status(d).to_string())
                    })
                    .collect();
                ds.sort_by(|a, b| b.created_at.total_cmp(&a.created_at));
                Ok(json!({"deployments": ds.iter().map(|d| &d.id).collect::<Vec<_>>()}))
            }
            "ListDeploymentTargets" => {
                let id = body.str_req("deploymentId")?;
                let d = self.cd(&id)?;
                let target = d.service_key.replace('/', ":");
                Ok(json!({"targetIds": [target]}))
            }
            "GetDeploymentTarget" => {
                let id = body.str_req("deploymentId")?;
                let target_id = body.str_req("targetId")?;
                let d = self.cd(&id)?.clone();
                if target_id != d.service_key.replace('/', ":") {
                    return Err(cd_err(
                        "DeploymentTargetDoesNotExistException",
                        format!("The target {target_id} is not part of deployment {id}."),
                    ));
                }
                Ok(
                    json!({"deploymentTarget": {"deploymentTargetType": "ECSTarget", "ecsTarget": self.ecs_target(&d)}}),
                )
            }
            "StopDeployment" => {
                let id = body.str_req("deploymentId")?;
                let rollback = body.bool_opt("autoRollbackEnabled")?.unwrap_or(false);
                let d = self.cd(&id)?.clone();
                if !matches!(self.cd_status(&d), "InProgress" | "Ready") || d.rollback_of.is_some()
                {
                    return Err(cd_err(
                        "DeploymentAlreadyCompletedException",
                        format!("The deployment {id} has already completed."),
                    ));
                }
                if let Some(x) = self.codedeploy.deployments.get_mut(&id) {
                    x.stopped = true;
                }
                if rollback {
                    self.rollback_bg(
                        &d.service_key,
                        "stopped",
                        "Deployment stopped by a StopDeployment request with automatic rollback.",
                    );
                    self.sync_cd_rollbacks();
                } else if let Some(sd) = self.sds.get_mut(&d.sd_arn) {
                    sd.status = "STOPPED".into();
                    sd.stopped_at = Some(self.now);
                    sd.status_reason =
                        Some("Deployment stopped by a StopDeployment request.".into());
                    if let Some(dep) = self
                        .services
                        .get_mut(&d.service_key)
                        .and_then(|s| s.deployments.first_mut())
                    {
                        dep.launching = false;
                        dep.rollout_state = "FAILED".into();
                    }
                }
                Ok(json!({"status": "Succeeded", "statusMessage": "Deployment stopped."}))
            }
            "ContinueDeployment" => {
                let id = body.str_req("deploymentId")?;
                let d = self.cd(&id)?.clone();
                let waiting = (self.cd_status(&d) == "Ready")
                    .then(|| self.ready_hook(&d))
                    .flatten();
                let Some(hook) = waiting else {
                    return Err(cd_err(
                        "DeploymentIsNotInReadyStateException",
                        format!("The deployment {id} is not in a ready state."),
                    ));
                };
                self.continue_hook(&d.sd_arn, &hook, "CONTINUE")?;
                Ok(json!({}))
            }
            _ => Err(ApiError::client(
                "UnknownOperationException",
                format!("The sandbox does not implement CodeDeploy operation {op}."),
            )),
        }
    }

    /// Creates what is missing of an application and its deployment group for a CODE_DEPLOY
    /// service (which need not exist yet); returns a line per thing created.
    pub(crate) fn prepare_codedeploy(
        &mut self,
        application: &str,
        group: &str,
        (cluster, service): (&str, &str),
        (tg_blue, tg_green): (&str, &str),
        (prod, test): (&str, &str),
        (termination_wait_minutes, ready_wait_minutes): (i32, Option<i32>),
    ) -> Vec<String> {
        let mut created = Vec::new();
        if !self.codedeploy.applications.contains_key(application) {
            let body = json!({"applicationName": application, "computePlatform": "ECS"});
            if self.codedeploy("CreateApplication", &body).is_ok() {
                created.push(format!("CodeDeploy application {application}"));
            }
        }
        let key = format!("{application}/{group}");
        if !self.codedeploy.groups.contains_key(&key) {
            let id = format!(
                "{}-{}-{}-{}-{}",
                self.rng.hex(8),
                self.rng.hex(4),
                self.rng.hex(4),
                self.rng.hex(4),
                self.rng.hex(12)
            );
            let info = json!({
                "applicationName": application, "deploymentGroupName": group, "deploymentGroupId": id,
                "deploymentConfigName": "CodeDeployDefault.ECSAllAtOnce", "computePlatform": "ECS",
                "serviceRoleArn": format!("arn:aws:iam::{}:role/ecsCodeDeployRole", self.account),
                "ecsServices": [{"clusterName": cluster, "serviceName": service}],
                "deploymentStyle": {"deploymentType": "BLUE_GREEN", "deploymentOption": "WITH_TRAFFIC_CONTROL"},
                "blueGreenDeploymentConfiguration": {
                    "terminateBlueInstancesOnDeploymentSuccess": {"action": "TERMINATE", "terminationWaitTimeInMinutes": termination_wait_minutes},
                    "deploymentReadyOption": match ready_wait_minutes {
                        Some(m) => json!({"actionOnTimeout": "STOP_DEPLOYMENT", "waitTimeInMinutes": m}),
                        None => json!({"actionOnTimeout": "CONTINUE_DEPLOYMENT", "waitTimeInMinutes": 0}),
                    }},
                "loadBalancerInfo": {"targetGroupPairInfoList": [{
                    "targetGroups": [{"name": tg_blue}, {"name": tg_green}],
                    "prodTrafficRoute": {"listenerArns": [prod]},
                    "testTrafficRoute": {"listenerArns": [test]}}]},
                "autoRollbackConfiguration": {"enabled": true, "events": ["DEPLOYMENT_FAILURE"]},
            });
            self.codedeploy.groups.insert(key, info);
            created.push(format!(
                "CodeDeploy deployment group {group} ({tg_blue} / {tg_green}, listeners 80 and 8080, original task set terminated after {termination_wait_minutes} min)"
            ));
        }
        created
    }

    fn app(&self, name: &str) -> Result<Value, ApiError> {
        self.codedeploy
            .applications
            .get(name)
            .cloned()
            .ok_or_else(|| {
                cd_err(
                    "ApplicationDoesNotExistException",
                    format!("No application found for name: {name}"),
                )
            })
    }

    fn group(&self, app: &str, group: &str) -> Result<Value, ApiError> {
        self.codedeploy
            .groups
            .get(&format!("{app}/{group}"))
            .cloned()
            .ok_or_else(|| {
                cd_err(
                    "DeploymentGroupDoesNotExistException",
                    format!("No Deployment Group found for name: {group}"),
                )
            })
    }

    /// BatchGetDeploymentGroups: the groups of one application by name (1 to 100 names, as
    /// AWS's API reference bounds the list). Names that are no group of the application are
    /// left out of `deploymentGroupsInfo` and named in `errorMessage` (AWS documents the
    /// member, not its wording).
    fn batch_get_deployment_groups(&self, body: &Value) -> Result<Value, ApiError> {
        let app = match body.get("applicationName").and_then(Value::as_str) {
            Some(a) if !a.is_empty() => a.to_string(),
            _ => {
                return Err(cd_err(
                    "ApplicationNameRequiredException",
                    "The minimum number of required application names was not specified.",
                ));
            }
        };
        let names = body.str_list("deploymentGroupNames")?;
        if names.is_empty() {
            return Err(cd_err(
                "DeploymentGroupNameRequiredException",
                "The deployment group name was not specified.",
            ));
        }
        if names.len() > 100 {
            return Err(cd_err(
                "BatchLimitExceededException",
                "The maximum number of names or IDs allowed for this request (100) was exceeded.",
            ));
        }
        self.app(&app)?;
        let mut found = Vec::new();
        let mut missing = Vec::new();
        for name in &names {
            match self.group(&app, name) {
                Ok(info) => found.push(info),
                Err(_) => missing.push(name.as_str()),
            }
        }
        let mut out = json!({"deploymentGroupsInfo": found});
        if !missing.is_empty() {
            out["errorMessage"] = json!(format!(
                "Deployment groups not found in application {app}: {}",
                missing.join(", ")
            ));
        }
        Ok(out)
    }

    fn cd(&self, id: &str) -> Result<&CdDeployment, ApiError> {
        self.codedeploy.deployments.get(id).ok_or_else(|| {
            cd_err(
                "DeploymentDoesNotExistException",
                format!("The deployment {id} could not be found."),
            )
        })
    }

    fn create_deployment_group(&mut self, body: &Value) -> Result<Value, ApiError> {
        let app = body.str_req("applicationName")?;
        let name = body.str_req("deploymentGroupName")?;
        self.app(&app)?;
        body.str_req("serviceRoleArn")?;
        let key = format!("{app}/{name}");
        if self.codedeploy.groups.contains_key(&key) {
            return Err(cd_err(
                "DeploymentGroupAlreadyExistsException",
                format!("The deployment group {name} already exists."),
            ));
        }
        let config = body
            .str_opt("deploymentConfigName")?
            .unwrap_or_else(|| "CodeDeployDefault.ECSAllAtOnce".into());
        if ecs_config(&config).is_none() {
            return Err(cd_err(
                "DeploymentConfigDoesNotExistException",
                format!("No deployment configuration found for name: {config}"),
            ));
        }
        let svc = body
            .pointer("/ecsServices/0")
            .cloned()
            .unwrap_or(Value::Null);
        let cluster = svc
            .get("clusterName")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let service = svc
            .get("serviceName")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let skey = service_key(cluster, service);
        match self.services.get(&skey) {
            Some(s) if s.controller.get("type").and_then(Value::as_str) == Some("CODE_DEPLOY") => {}
            Some(_) => {
                return Err(cd_err(
                    "InvalidECSServiceException",
                    format!(
                        "The ECS service {service} does not use the CODE_DEPLOY deployment controller."
                    ),
                ));
            }
            None => {
                return Err(cd_err(
                    "InvalidECSServiceException",
                    format!("The ECS service {service} in cluster {cluster} does not exist."),
                ));
            }
        }
        let pair = body
            .pointer("/loadBalancerInfo/targetGroupPairInfoList/0")
            .cloned()
            .unwrap_or(Value::Null);
        let tgs: Vec<String> = pair
            .get("targetGroups")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|t| t.get("name").and_then(Value::as_str).map(str::to_string))
            .collect();
        if tgs.len() != 2
            || tgs
                .iter()
                .any(|t| self.elbv2.find_target_group(t).is_none())
        {
            return Err(cd_err(
                "InvalidTargetGroupPairException",
                "loadBalancerInfo.targetGroupPairInfoList needs two existing target groups.",
            ));
        }
        if pair
            .pointer("/prodTrafficRoute/listenerArns/0")
            .and_then(Value::as_str)
            .is_none()
        {
            return Err(cd_err(
                "InvalidTargetGroupPairException",
                "loadBalancerInfo.targetGroupPairInfoList needs prodTrafficRoute.listenerArns.",
            ));
        }
        let id = format!(
            "{}-{}-{}-{}-{}",
            self.rng.hex(8),
            self.rng.hex(4),
            self.rng.hex(4),
            self.rng.hex(4),
            self.rng.hex(12)
        );
        let mut info = body.as_object().cloned().unwrap_or_default();
        info.insert("deploymentGroupId".into(), json!(id));
        info.insert("deploymentConfigName".into(), json!(config));
        info.insert("computePlatform".into(), json!("ECS"));
        info.entry("deploymentStyle").or_insert(
            json!({"deploymentType": "BLUE_GREEN", "deploymentOption": "WITH_TRAFFIC_CONTROL"}),
        );
        self.codedeploy.groups.insert(key, Value::Object(info));
        Ok(json!({"deploymentGroupId": id}))
    }

    fn create_cd_deployment(&mut self, body: &Value) -> Result<Value, ApiError> {
        let app = body.str_req("applicationName")?;
        let gname = body.str_req("deploymentGroupName")?;
        self.app(&app)?;
        let group = self.group(&app, &gname)?;
        let config_name = body
            .str_opt("deploymentConfigName")?
            .or_else(|| {
                group
                    .get("deploymentConfigName")
                    .and_then(Value::as_str)
                    .map(str::to_string)
            })
            .unwrap_or_else(|| "CodeDeployDefault.ECSAllAtOnce".into());
        let (strategy, pct, minutes) = ecs_config(&config_name).ok_or_else(|| {
            cd_err(
                "DeploymentConfigDoesNotExistException",
                format!("No deployment configuration found for name: {config_name}"),
            )
        })?;
        let revision = body.get("revision").cloned().unwrap_or(Value::Null);
        let content = revision
            .pointer("/appSpecContent/content")
            .and_then(Value::as_str)
            .ok_or_else(|| {
                cd_err(
                    "RevisionRequiredException",
                    "The revision must be an AppSpecContent with content.",
                )
            })?;
        let appspec: Value = serde_saphyr::from_str(content).map_err(|e| {
            cd_err(
                "InvalidRevisionException",
                format!("The AppSpec content is not valid YAML/JSON: {e}"),
            )
        })?;
        let props = appspec
            .pointer("/Resources/0/TargetService/Properties")
            .cloned()
            .ok_or_else(|| {
                cd_err(
                    "InvalidRevisionException",
                    "The AppSpec needs Resources[0].TargetService.Properties.",
                )
            })?;
        let td_id = props
            .get("TaskDefinition")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let td = self.resolve_taskdef(td_id).map_err(|_| {
            cd_err(
                "InvalidRevisionException",
                format!("The AppSpec TaskDefinition {td_id} does not exist."),
            )
        })?;
        let svc = group
            .pointer("/ecsServices/0")
            .cloned()
            .unwrap_or(Value::Null);
        let key = service_key(
            svc.get("clusterName")
                .and_then(Value::as_str)
                .unwrap_or_default(),
            svc.get("serviceName")
                .and_then(Value::as_str)
                .unwrap_or_default(),
        );
        let busy = self.codedeploy.deployments.values().any(|d| {
            d.application == app
                && d.group == gname
                && matches!(self.cd_status(d), "InProgress" | "Ready")
        });
        if busy {
            return Err(cd_err(
                "DeploymentLimitExceededException",
                format!("The Deployment Group '{gname}' already has an active Deployment."),
            ));
        }
        let pair = group
            .pointer("/loadBalancerInfo/targetGroupPairInfoList/0")
            .cloned()
            .unwrap_or(Value::Null);
        let tg = |i: usize| {
            pair.pointer(&format!("/targetGroups/{i}/name"))
                .and_then(Value::as_str)
                .and_then(|n| self.elbv2.find_target_group(n))
        };
        let (Some(tg_a), Some(tg_b)) = (tg(0), tg(1)) else {
            return Err(cd_err(
                "InvalidTargetGroupPairException",
                "The deployment group's target groups no longer exist.",
            ));
        };
        let prod = pair
            .pointer("/prodTrafficRoute/listenerArns/0")
            .cloned()
            .unwrap_or(Value::Null);
        let test = pair
            .pointer("/testTrafficRoute/listenerArns/0")
            .cloned()
            .unwrap_or(Value::Null);
        let container = props
            .pointer("/LoadBalancerInfo/ContainerName")
            .cloned()
            .unwrap_or(Value::Null);
        let port = props
            .pointer("/LoadBalancerInfo/ContainerPort")
            .cloned()
            .unwrap_or(Value::Null);
        let mut hooks = Vec::new();
        for h in appspec
            .get("Hooks")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            for (event, stage) in HOOKS {
                if let Some(f) = h.get(event).and_then(Value::as_str) {
                    let arn = if f.starts_with("arn:") {
                        f.to_string()
                    } else {
                        format!(
                            "arn:aws:lambda:{}:{}:function:{f}",
                            self.region, self.account
                        )
                    };
                    hooks.push(json!({"targetType": "AWS_LAMBDA", "hookTargetArn": arn, "lifecycleStages": [stage]}));
                }
            }
        }
        // deploymentReadyOption STOP_DEPLOYMENT: traffic waits for ContinueDeployment (the
        // deployment is Ready meanwhile); past the wait time the deployment ends.
        if group
            .pointer("/blueGreenDeploymentConfiguration/deploymentReadyOption/actionOnTimeout")
            .and_then(Value::as_str)
            == Some("STOP_DEPLOYMENT")
        {
            let minutes = group
                .pointer(
                    "/blueGreenDeploymentConfiguration/deploymentReadyOption/waitTimeInMinutes",
                )
                .and_then(Value::as_f64)
                .unwrap_or(0.0)
                .max(1.0);
            // The ECS API's minute counts are Integers (DescribeServiceDeployments answers
            // them so; the SDKs refuse a floating-point number there).
            hooks.push(
                json!({"targetType": "PAUSE", "lifecycleStages": ["PRE_PRODUCTION_TRAFFIC_SHIFT"],
                "timeoutConfiguration": {"timeoutInMinutes": minutes.ceil() as i64, "action": "ROLLBACK"}}),
            );
        }
        let wait = group
            .pointer("/blueGreenDeploymentConfiguration/terminateBlueInstancesOnDeploymentSuccess/terminationWaitTimeInMinutes")
            .and_then(Value::as_f64)
            .unwrap_or(0.0);
        let mut cfg = json!({"strategy": strategy, "bakeTimeInMinutes": wait.round() as i64, "maximumPercent": 200, "minimumHealthyPercent": 100,
            "deploymentCircuitBreaker": {"enable": false, "rollback": false}, "lifecycleHooks": hooks});
        match strategy {
            "CANARY" => {
                cfg["canaryConfiguration"] =
                    json!({"canaryPercent": pct, "canaryBakeTimeInMinutes": minutes.round() as i64})
            }
            "LINEAR" => {
                cfg["linearConfiguration"] =
                    json!({"stepPercent": pct, "stepBakeTimeInMinutes": minutes.round() as i64})
            }
            _ => {}
        }
        let lbs = json!([{"targetGroupArn": tg_a, "containerName": container, "containerPort": port,
            "advancedConfiguration": {"alternateTargetGroupArn": tg_b, "productionListenerRule": prod, "testListenerRule": test}}]);
        let Some(s) = self.services.get_mut(&key) else {
            return Err(cd_err(
                "InvalidECSServiceException",
                "The deployment group's ECS service no longer exists.",
            ));
        };
        if s.status != "ACTIVE" {
            return Err(cd_err(
                "InvalidECSServiceException",
                "The deployment group's ECS service is not ACTIVE.",
            ));
        }
        // The deployment sees the group's settings; the service keeps showing its own.
        let saved = (s.load_balancers.clone(), s.deployment_configuration.clone());
        s.load_balancers = lbs;
        s.deployment_configuration = cfg;
        s.task_def = td;
        self.new_deployment(&key);
        let sd_arn = self
            .services
            .get(&key)
            .and_then(|s| s.current_sd.clone())
            .unwrap_or_default();
        if let Some(s) = self.services.get_mut(&key) {
            (s.load_balancers, s.deployment_configuration) = saved;
        }
        let green_id = self
            .sds
            .get(&sd_arn)
            .map(|sd| sd.deployment_id.clone())
            .unwrap_or_default();
        let id = format!("d-{}", self.rng.hex(9).to_ascii_uppercase());
        self.codedeploy.deployments.insert(
            id.clone(),
            CdDeployment {
                id: id.clone(),
                application: app,
                group: gname,
                config_name,
                service_key: key.clone(),
                sd_arn,
                created_at: self.now,
                revision,
                description: body.str_opt("description")?,
                stopped: false,
                auto_rollback: body
                    .get("autoRollbackConfiguration")
                    .cloned()
                    .or_else(|| group.get("autoRollbackConfiguration").cloned())
                    .unwrap_or(Value::Null),
                green_id,
                rollback_id: None,
                rollback_of: None,
            },
        );
        self.reconcile(&key);
        Ok(json!({"deploymentId": id}))
    }

    /// A deployment whose ECS side is rolling back gets its rollback deployment, as
    /// CodeDeploy starts one (`rollbackInfo.rollbackDeploymentId` on the failed deployment,
    /// `rollbackTriggeringDeploymentId` on the rollback).
    fn sync_cd_rollbacks(&mut self) {
        let due: Vec<String> = self
            .codedeploy
            .deployments
            .values()
            .filter(|d| d.rollback_of.is_none() && d.rollback_id.is_none())
            .filter(|d| {
                self.sds
                    .get(&d.sd_arn)
                    .is_some_and(|sd| sd.status.starts_with("ROLLBACK"))
            })
            .map(|d| d.id.clone())
            .collect();
        for id in due {
            let rid = format!("d-{}", self.rng.hex(9).to_ascii_uppercase());
            let Some(orig) = self.codedeploy.deployments.get_mut(&id) else {
                continue;
            };
            orig.rollback_id = Some(rid.clone());
            let rollback = CdDeployment {
                id: rid.clone(),
                created_at: self.now,
                description: Some(format!("Rollback of deployment {id}")),
                stopped: false,
                rollback_id: None,
                rollback_of: Some(id.clone()),
                ..orig.clone()
            };
            self.codedeploy.deployments.insert(rid, rollback);
        }
    }

    /// The PAUSE hook a Ready deployment waits on (its deploymentReadyOption).
    fn ready_hook(&self, d: &CdDeployment) -> Option<String> {
        self.sds.get(&d.sd_arn)?.hooks.iter().find_map(|h| {
            (h.target_type == "PAUSE" && h.status == "AWAITING_ACTION").then(|| h.hook_id.clone())
        })
    }

    fn cd_status(&self, d: &CdDeployment) -> &'static str {
        let sd = self.sds.get(&d.sd_arn).map(|sd| sd.status.as_str());
        if d.rollback_of.is_none()
            && matches!(sd, Some("IN_PROGRESS" | "PENDING"))
            && self.ready_hook(d).is_some()
        {
            return "Ready";
        }
        if d.rollback_of.is_some() {
            return match sd {
                Some("ROLLBACK_SUCCESSFUL") => "Succeeded",
                Some("ROLLBACK_REQUESTED" | "ROLLBACK_IN_PROGRESS") => "InProgress",
                _ => "Failed",
            };
        }
        match sd {
            Some("SUCCESSFUL") => "Succeeded",
            Some("IN_PROGRESS" | "PENDING") => "InProgress",
            Some(_) if d.stopped => "Stopped",
            Some("STOPPED") => "Stopped",
            Some(_) => "Failed",
            None => "Failed",
        }
    }

    fn deployment_info(&self, id: &str) -> Result<Value, ApiError> {
        let d = self.cd(id)?;
        let status = self.cd_status(d);
        let sd = self.sds.get(&d.sd_arn);
        let mut v = json!({
            "applicationName": d.application, "deploymentGroupName": d.group, "deploymentConfigName": d.config_name,
            "deploymentId": d.id, "revision": d.revision, "status": status, "createTime": ts(d.created_at),
            "startTime": ts(d.created_at), "creator": "user", "computePlatform": "ECS",
            "deploymentStyle": {"deploymentType": "BLUE_GREEN", "deploymentOption": "WITH_TRAFFIC_CONTROL"},
            "autoRollbackConfiguration": d.auto_rollback,
            "deploymentOverview": {"Pending": 0, "InProgress": i64::from(status == "InProgress"), "Succeeded": i64::from(status == "Succeeded"),
                "Failed": i64::from(status == "Failed"), "Skipped": 0, "Ready": 0},
        });
        if let Some(desc) = &d.description {
            v["description"] = json!(desc);
        }
        if let Some(sd) = sd {
            if let Some(t) = sd.finished_at.or(sd.stopped_at) {
                v["completeTime"] = ts(t);
            }
            if status == "Failed" || status == "Stopped" {
                let reason = sd
                    .rollback
                    .as_ref()
                    .and_then(|r| r.get("reason").and_then(Value::as_str).map(str::to_string))
                    .or_else(|| sd.status_reason.clone())
                    .unwrap_or_else(|| "The deployment failed.".into());
                let code = if status == "Stopped" {
                    "MANUAL_STOP"
                } else {
                    "ECS_UPDATE_ERROR"
                };
                if d.rollback_of.is_none() {
                    v["errorInformation"] = json!({"code": code, "message": reason});
                }
            }
        }
        if let Some(rid) = &d.rollback_id {
            v["rollbackInfo"] = json!({"rollbackDeploymentId": rid,
                "rollbackMessage": format!("Deployment {} was rolled back by deployment {rid}.", d.id)});
        }
        if let Some(of) = &d.rollback_of {
            v["rollbackInfo"] = json!({"rollbackTriggeringDeploymentId": of});
            v["creator"] = json!("autoRollback");
        }
        Ok(v)
    }

    fn ecs_target(&self, d: &CdDeployment) -> Value {
        let status = self.cd_status(d);
        let sd = self.sds.get(&d.sd_arn);
        let step = sd
            .and_then(|sd| sd.bg.as_ref())
            .map(|b| b.step)
            .unwrap_or(0);
        let weight = sd
            .and_then(|sd| sd.bg.as_ref())
            .map(|b| b.weight)
            .unwrap_or(0);
        let events: Vec<Value> = EVENTS
            .iter()
            .map(|(name, first, last)| {
                let st = match status {
                    "Succeeded" => "Succeeded",
                    _ if step > *last => "Succeeded",
                    "InProgress" | "Ready" if step >= *first => "InProgress",
                    "InProgress" | "Ready" => "Pending",
                    _ if step >= *first => "Failed",
                    _ => "Skipped",
                };
                json!({"lifecycleEventName": name, "status": st})
            })
            .collect();
        let mut sets = Vec::new();
        if let Some(s) = self.services.get(&d.service_key) {
            let green_id = if d.green_id.is_empty() {
                sd.map(|sd| sd.deployment_id.clone()).unwrap_or_default()
            } else {
                d.green_id.clone()
            };
            for dep in &s.deployments {
                let is_green = dep.id == green_id;
                let (mut running, mut pending) = (0, 0);
                for t in self
                    .svc_tasks(&d.service_key)
                    .filter(|t| t.deployment.as_deref() == Some(dep.id.as_str()))
                {
                    match t.last_status.as_str() {
                        "RUNNING" => running += 1,
                        "PROVISIONING" | "PENDING" => pending += 1,
                        _ => {}
                    }
                }
                let traffic = match (is_green, status) {
                    (true, "Succeeded") => 100,
                    (true, "InProgress" | "Ready") => weight,
                    (true, _) => 0,
                    (false, "Succeeded") => 0,
                    (false, "InProgress" | "Ready") => 100 - weight,
                    (false, _) => 100,
                };
                let tg_name = dep
                    .bindings
                    .first()
                    .and_then(|b| {
                        b.tg.split_once(":targetgroup/")
                            .map(|(_, r)| r.split('/').next().unwrap_or(r).to_string())
                    })
                    .unwrap_or_default();
                sets.push(json!({"identifer": dep.id, "desiredCount": dep.desired, "pendingCount": pending, "runningCount": running,
                    "status": dep.status, "trafficWeight": traffic as f64, "targetGroup": {"name": tg_name},
                    "taskSetLabel": if is_green { "Green" } else { "Blue" }}));
            }
        }
        let target_arn = self
            .services
            .get(&d.service_key)
            .map(|s| s.arn.clone())
            .unwrap_or_default();
        json!({"deploymentId": d.id, "targetId": d.service_key.replace('/', ":"), "targetArn": target_arn,
            "lastUpdatedAt": ts(self.now), "lifecycleEvents": events, "status": status, "taskSetsInfo": sets})
    }
}
