//! CodeDeploy deployments: CreateDeployment hands the AppSpec to the ECS world's blue/green
//! machine; their status, rollback deployments and `deploymentInfo` are read back from the
//! service deployment that carries them.

use serde_json::{Value, json};

use super::{CdDeployment, cd_err, ecs_config};
use crate::api::ApiError;
use crate::util::{Get, ts};
use crate::world::{World, service_key};

/// AppSpec hook -> (ECS lifecycle stage, CodeDeploy lifecycle event index).
const HOOKS: [(&str, &str); 5] = [
    ("BeforeInstall", "PRE_SCALE_UP"),
    ("AfterInstall", "POST_SCALE_UP"),
    ("AfterAllowTestTraffic", "POST_TEST_TRAFFIC_SHIFT"),
    ("BeforeAllowTraffic", "PRE_PRODUCTION_TRAFFIC_SHIFT"),
    ("AfterAllowTraffic", "POST_PRODUCTION_TRAFFIC_SHIFT"),
];

impl World {
    pub(super) fn cd(&self, id: &str) -> Result<&CdDeployment, ApiError> {
        self.codedeploy.deployments.get(id).ok_or_else(|| {
            cd_err(
                "DeploymentDoesNotExistException",
                format!("The deployment {id} could not be found."),
            )
        })
    }

    /// CreateDeployment: the AppSpec's task definition, container and hooks, with the group's
    /// target group pair, listeners and deployment config, become a blue/green (canary,
    /// linear) ECS service deployment of the group's service.
    pub(super) fn create_cd_deployment(&mut self, body: &Value) -> Result<Value, ApiError> {
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
        let spec = self.read_appspec(&revision)?;
        let svc = group
            .pointer("/ecsServices/0")
            .cloned()
            .unwrap_or(Value::Null);
        let name = |k: &str| svc.get(k).and_then(Value::as_str).unwrap_or_default();
        let key = service_key(name("clusterName"), name("serviceName"));
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
        let lbs = self.group_load_balancers(&group, &spec)?;
        let cfg = deployment_config(&group, (strategy, pct, minutes), spec.hooks);
        let sd_arn = self.deploy_with(&key, lbs, cfg, spec.task_definition)?;
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

    /// What a revision's AppSpec asks for: the task definition (it must exist), the
    /// container and port behind the load balancer, and its hooks as ECS Lambda hooks.
    fn read_appspec(&self, revision: &Value) -> Result<AppSpec, ApiError> {
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
        let task_definition = self.resolve_taskdef(td_id).map_err(|_| {
            cd_err(
                "InvalidRevisionException",
                format!("The AppSpec TaskDefinition {td_id} does not exist."),
            )
        })?;
        let at = |p: &str| props.pointer(p).cloned().unwrap_or(Value::Null);
        Ok(AppSpec {
            task_definition,
            container: at("/LoadBalancerInfo/ContainerName"),
            port: at("/LoadBalancerInfo/ContainerPort"),
            hooks: self.lambda_hooks(&appspec),
        })
    }

    /// The AppSpec's `Hooks` as ECS lifecycle hooks (AWS_LAMBDA) at the matching stages.
    fn lambda_hooks(&self, appspec: &Value) -> Vec<Value> {
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
        hooks
    }

    /// The service's `loadBalancers` for the deployment: the group's target group pair (both
    /// must still exist) and listeners, with the AppSpec's container and port.
    fn group_load_balancers(&self, group: &Value, spec: &AppSpec) -> Result<Value, ApiError> {
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
        let route = |p: &str| pair.pointer(p).cloned().unwrap_or(Value::Null);
        let (prod, test) = (
            route("/prodTrafficRoute/listenerArns/0"),
            route("/testTrafficRoute/listenerArns/0"),
        );
        Ok(
            json!([{"targetGroupArn": tg_a, "containerName": spec.container, "containerPort": spec.port,
            "advancedConfiguration": {"alternateTargetGroupArn": tg_b, "productionListenerRule": prod, "testListenerRule": test}}]),
        )
    }

    /// Starts the ECS service deployment with the group's settings (the service keeps
    /// showing its own); returns its ARN.
    fn deploy_with(
        &mut self,
        key: &str,
        lbs: Value,
        cfg: Value,
        task_definition: String,
    ) -> Result<String, ApiError> {
        let Some(s) = self.services.get_mut(key) else {
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
        let saved = (s.load_balancers.clone(), s.deployment_configuration.clone());
        s.load_balancers = lbs;
        s.deployment_configuration = cfg;
        s.task_def = task_definition;
        self.new_deployment(key);
        let sd_arn = self
            .services
            .get(key)
            .and_then(|s| s.current_sd.clone())
            .unwrap_or_default();
        if let Some(s) = self.services.get_mut(key) {
            (s.load_balancers, s.deployment_configuration) = saved;
        }
        Ok(sd_arn)
    }

    /// A deployment whose ECS side is rolling back gets its rollback deployment, as
    /// CodeDeploy starts one (`rollbackInfo.rollbackDeploymentId` on the failed deployment,
    /// `rollbackTriggeringDeploymentId` on the rollback).
    pub(super) fn sync_cd_rollbacks(&mut self) {
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
    pub(super) fn ready_hook(&self, d: &CdDeployment) -> Option<String> {
        self.sds.get(&d.sd_arn)?.hooks.iter().find_map(|h| {
            (h.target_type == "PAUSE" && h.status == "AWAITING_ACTION").then(|| h.hook_id.clone())
        })
    }

    pub(super) fn cd_status(&self, d: &CdDeployment) -> &'static str {
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

    pub(super) fn deployment_info(&self, id: &str) -> Result<Value, ApiError> {
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
}

/// What CreateDeployment takes from the revision's AppSpec.
struct AppSpec {
    task_definition: String,
    container: Value,
    port: Value,
    hooks: Vec<Value>,
}

/// The deployment configuration of the ECS service deployment: the CodeDeploy config's
/// strategy (percent and minutes for canary and linear), the termination wait as bake time,
/// the hooks, and a PAUSE hook before production traffic when the group waits for
/// ContinueDeployment (deploymentReadyOption STOP_DEPLOYMENT; past the wait time the
/// deployment ends).
fn deployment_config(
    group: &Value,
    (strategy, pct, minutes): (&str, f64, f64),
    mut hooks: Vec<Value>,
) -> Value {
    let bg = |p: &str| group.pointer(&format!("/blueGreenDeploymentConfiguration/{p}"));
    if bg("deploymentReadyOption/actionOnTimeout").and_then(Value::as_str)
        == Some("STOP_DEPLOYMENT")
    {
        let minutes = bg("deploymentReadyOption/waitTimeInMinutes")
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
    let wait = bg("terminateBlueInstancesOnDeploymentSuccess/terminationWaitTimeInMinutes")
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
    cfg
}
