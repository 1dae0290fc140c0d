//! CodeDeploy's operations, dispatched by name: applications, listings and the operations on
//! a running deployment here; deployment groups in [`super::groups`], deployments in
//! [`super::deployments`].

use serde_json::{Value, json};

use super::{CdDeployment, cd_err};
use crate::api::ApiError;
use crate::util::{Get, ts};
use crate::world::World;

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
            "CreateApplication" => self.create_application(body),
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
            "ListDeploymentGroups" => self.list_deployment_groups(body),
            "CreateDeployment" => self.create_cd_deployment(body),
            "GetDeployment" => {
                let id = body.str_req("deploymentId")?;
                let info = self.deployment_info(&id)?;
                Ok(json!({"deploymentInfo": info}))
            }
            "ListDeployments" => self.list_cd_deployments(body),
            "ListDeploymentTargets" => {
                let id = body.str_req("deploymentId")?;
                let d = self.cd(&id)?;
                let target = d.service_key.replace('/', ":");
                Ok(json!({"targetIds": [target]}))
            }
            "GetDeploymentTarget" => self.get_deployment_target(body),
            "StopDeployment" => self.stop_cd_deployment(body),
            "ContinueDeployment" => self.continue_cd_deployment(body),
            _ => Err(ApiError::client(
                "UnknownOperationException",
                format!("The sandbox does not implement CodeDeploy operation {op}."),
            )),
        }
    }

    fn create_application(&mut self, body: &Value) -> Result<Value, ApiError> {
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

    fn list_deployment_groups(&self, body: &Value) -> Result<Value, ApiError> {
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

    fn list_cd_deployments(&self, body: &Value) -> Result<Value, ApiError> {
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
            .filter(|d| statuses.is_empty() || statuses.contains(&self.cd_status(d).to_string()))
            .collect();
        ds.sort_by(|a, b| b.created_at.total_cmp(&a.created_at));
        Ok(json!({"deployments": ds.iter().map(|d| &d.id).collect::<Vec<_>>()}))
    }

    fn get_deployment_target(&self, body: &Value) -> Result<Value, ApiError> {
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

    /// StopDeployment: with `autoRollbackEnabled` the ECS side rolls back; without, the
    /// service deployment stops where it is.
    fn stop_cd_deployment(&mut self, body: &Value) -> Result<Value, ApiError> {
        let id = body.str_req("deploymentId")?;
        let rollback = body.bool_opt("autoRollbackEnabled")?.unwrap_or(false);
        let d = self.cd(&id)?.clone();
        if !matches!(self.cd_status(&d), "InProgress" | "Ready") || d.rollback_of.is_some() {
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
            sd.status_reason = Some("Deployment stopped by a StopDeployment request.".into());
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

    /// ContinueDeployment: a Ready deployment's traffic shift goes on.
    fn continue_cd_deployment(&mut self, body: &Value) -> Result<Value, ApiError> {
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
}
