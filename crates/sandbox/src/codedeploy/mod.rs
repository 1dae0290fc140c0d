//! CodeDeploy for ECS services with the CODE_DEPLOY deployment controller: applications,
//! deployment groups, deployments driven by an AppSpec, and their ECS target view.
//!
//! Receives awsJson1.1 operations (`CodeDeploy_20141006.*`); hands a deployment to the ECS
//! world's blue/green machine (the group's target group pair and listeners become the
//! deployment's bindings, the deployment config its strategy, AppSpec hooks its Lambda hooks)
//! and reads its progress back as CodeDeploy statuses, lifecycle events and task sets.

//!
//! This module holds CodeDeploy's state (plain data the world keeps); [`api`] dispatches the
//! operations, [`groups`] handles applications and deployment groups, [`deployments`]
//! creates deployments and reads their status, [`target`] draws the ECS target view.

mod api;
mod deployments;
mod groups;
mod target;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::api::ApiError;

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
