//! Application Auto Scaling emulation, as far as ECS services need it: scalable targets with
//! their `SuspendedState`.
//!
//! Receives awsJson1.1 operations (`X-Amz-Target: AnyScaleFrontendService.<Op>`):
//! `RegisterScalableTarget`, `DescribeScalableTargets` and `DeregisterScalableTarget`, with the
//! parsed body. Hands back the JSON response body, or an [`ApiError`] with the service's error
//! code. A target of namespace `ecs` must name an ACTIVE service (`service/CLUSTER/SERVICE`,
//! dimension `ecs:service:DesiredCount`); scaling policies and scheduled actions are not
//! modelled, so nothing ever changes a service's desired count from here.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::api::ApiError;

mod api;

/// The one dimension an ECS service has.
pub const ECS_DIMENSION: &str = "ecs:service:DesiredCount";

/// One registered scalable target.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScalableTarget {
    pub namespace: String,
    pub resource_id: String,
    pub dimension: String,
    pub min: i64,
    pub max: i64,
    pub role_arn: String,
    pub arn: String,
    pub created: f64,
    pub scaling_in_suspended: bool,
    pub scaling_out_suspended: bool,
    pub scheduled_suspended: bool,
}

/// The scalable targets of one sandbox, keyed by namespace, resource id and dimension.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct AutoScaling {
    targets: BTreeMap<String, ScalableTarget>,
    #[serde(default)]
    seq: u64,
}

fn validation(message: impl Into<String>) -> ApiError {
    ApiError::client("ValidationException", message)
}

fn key(namespace: &str, resource_id: &str, dimension: &str) -> String {
    format!("{namespace}|{resource_id}|{dimension}")
}

fn required<'a>(body: &'a Value, member: &str, op: &str) -> Result<&'a str, ApiError> {
    body.get(member)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| validation(format!("{op} needs {member}.")))
}

fn capacity(body: &Value, member: &str) -> Result<Option<i64>, ApiError> {
    match body.get(member) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => match v.as_i64() {
            Some(n) if n >= 0 => Ok(Some(n)),
            _ => Err(validation(format!(
                "{member} must be a whole number of 0 or more."
            ))),
        },
    }
}

impl AutoScaling {
    /// A registered target, if any.
    pub fn target(
        &self,
        namespace: &str,
        resource_id: &str,
        dimension: &str,
    ) -> Option<&ScalableTarget> {
        self.targets.get(&key(namespace, resource_id, dimension))
    }

    fn describe(t: &ScalableTarget) -> Value {
        json!({
            "ServiceNamespace": t.namespace,
            "ResourceId": t.resource_id,
            "ScalableDimension": t.dimension,
            "MinCapacity": t.min,
            "MaxCapacity": t.max,
            "RoleARN": t.role_arn,
            "CreationTime": t.created,
            "SuspendedState": {
                "DynamicScalingInSuspended": t.scaling_in_suspended,
                "DynamicScalingOutSuspended": t.scaling_out_suspended,
                "ScheduledScalingSuspended": t.scheduled_suspended,
            },
            "ScalableTargetARN": t.arn,
        })
    }
}
