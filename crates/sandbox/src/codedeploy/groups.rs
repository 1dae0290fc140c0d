//! CodeDeploy applications and deployment groups: created through the API (checked against
//! the ECS service and the target groups they name) or by `--prepare`.

use serde_json::{Value, json};

use super::{cd_err, ecs_config};
use crate::api::ApiError;
use crate::util::Get;
use crate::world::{World, service_key};

impl World {
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

    pub(super) fn app(&self, name: &str) -> Result<Value, ApiError> {
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

    pub(super) fn group(&self, app: &str, group: &str) -> Result<Value, ApiError> {
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
    pub(super) fn batch_get_deployment_groups(&self, body: &Value) -> Result<Value, ApiError> {
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

    pub(super) fn create_deployment_group(&mut self, body: &Value) -> Result<Value, ApiError> {
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
}
