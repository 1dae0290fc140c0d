//! ECS API operations: request validation, state changes on the [`World`], AWS-shaped JSON out.
//!
//! Receives an operation name (from `X-Amz-Target`) and its JSON body, already past API faults;
//! hands on the response body or an [`ApiError`] with ECS's exact error code. Member names follow
//! the aws-sdk-ecs 1.157 model; timestamps are epoch seconds.
//!
//! The dispatch, the helpers every resource uses and tagging are here; one module per
//! resource: [`clusters`], [`task_definitions`] (with [`taskdef`]'s checks), [`services`],
//! [`deployments`] (service deployments and revisions), [`tasks`].

mod clusters;
mod deployments;
mod services;
mod task_definitions;
mod taskdef;
mod tasks;

use serde_json::{Value, json};

use crate::api::ApiError;
use crate::util::{Get, invalid};
use crate::world::World;

pub(super) fn not_found_cluster() -> ApiError {
    ApiError::client("ClusterNotFoundException", "Cluster not found.")
}

pub(super) fn not_found_service() -> ApiError {
    ApiError::client("ServiceNotFoundException", "Service not found.")
}

pub(super) fn not_active() -> ApiError {
    ApiError::client("ServiceNotActiveException", "Service was not ACTIVE.")
}

/// Last path segment of an ARN-or-name.
pub(super) fn short(s: &str) -> &str {
    s.rsplit('/').next().unwrap_or(s)
}

pub(super) fn tags_of(v: &Value) -> Vec<Value> {
    v.get("tags")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

pub(super) fn paginate(
    items: Vec<String>,
    body: &Value,
    max_cap: i64,
) -> Result<(Vec<String>, Option<String>), ApiError> {
    let max = body.int_opt("maxResults")?.unwrap_or(max_cap);
    if !(1..=max_cap).contains(&max) {
        return Err(invalid(format!(
            "maxResults must be between 1 and {max_cap}."
        )));
    }
    let start = match body.str_opt("nextToken")? {
        Some(t) => t
            .parse::<usize>()
            .map_err(|_| invalid("Invalid nextToken."))?,
        None => 0,
    };
    let end = start.saturating_add(max as usize).min(items.len());
    let page = items
        .get(start.min(items.len())..end)
        .map(<[String]>::to_vec)
        .unwrap_or_default();
    let next = (end < items.len()).then(|| end.to_string());
    Ok((page, next))
}

pub(super) fn with_next(mut v: Value, next: Option<String>) -> Value {
    if let (Some(n), Some(obj)) = (next, v.as_object_mut()) {
        obj.insert("nextToken".into(), Value::String(n));
    }
    v
}

impl World {
    /// Dispatch one ECS operation.
    pub fn ecs(&mut self, op: &str, body: &Value) -> Result<Value, ApiError> {
        if !body.is_object() {
            return Err(ApiError::client(
                "SerializationException",
                "The request body must be a JSON object.",
            ));
        }
        match op {
            "CreateCluster" => self.create_cluster(body),
            "DescribeClusters" => self.describe_clusters(body),
            "ListClusters" => {
                let arns = self.clusters.values().map(|c| c.arn.clone()).collect();
                let (page, next) = paginate(arns, body, 100)?;
                Ok(with_next(json!({"clusterArns": page}), next))
            }
            "RegisterTaskDefinition" => self.register_task_definition(body),
            "DescribeTaskDefinition" => self.describe_task_definition(body),
            "ListTaskDefinitions" => self.list_task_definitions(body),
            "ListTaskDefinitionFamilies" => self.list_task_definition_families(body),
            "DeregisterTaskDefinition" => self.deregister_task_definition(body),
            "DeleteTaskDefinitions" => self.delete_task_definitions(body),
            "CreateService" => self.create_service(body),
            "UpdateService" => self.update_service(body),
            "DeleteService" => self.delete_service(body),
            "DescribeServices" => self.describe_services(body),
            "ListServices" => self.list_services(body),
            "ListTasks" => self.list_tasks(body),
            "DescribeTasks" => self.describe_tasks(body),
            "RunTask" => self.run_task(body),
            "StopTask" => self.stop_task_op(body),
            "ListServiceDeployments" => self.list_service_deployments(body),
            "DescribeServiceDeployments" => self.describe_service_deployments(body),
            "StopServiceDeployment" => self.stop_service_deployment(body),
            "ContinueServiceDeployment" => self.continue_service_deployment(body),
            "DescribeServiceRevisions" => self.describe_service_revisions(body),
            "CreateExpressGatewayService"
            | "UpdateExpressGatewayService"
            | "DescribeExpressGatewayService"
            | "DeleteExpressGatewayService" => self.express_op(op, body),
            "TagResource" => self.tag_resource(body),
            "UntagResource" => self.untag_resource(body),
            "ListTagsForResource" => {
                let arn = body.str_req("resourceArn")?;
                self.check_resource(&arn)?;
                Ok(json!({"tags": self.tags.get(&arn).cloned().unwrap_or_default()}))
            }
            _ => Err(ApiError::client(
                "UnknownOperationException",
                format!("The sandbox does not implement ECS operation {op}."),
            )),
        }
    }

    // ------------------------------------------------------------------ tags

    fn check_resource(&self, arn: &str) -> Result<(), ApiError> {
        let known = self.clusters.values().any(|c| c.arn == arn)
            || self.services.values().any(|s| s.arn == arn)
            || self.tasks.values().any(|t| t.arn == arn)
            || self.find_taskdef(arn).is_some()
            || self.tags.contains_key(arn);
        if known {
            Ok(())
        } else {
            Err(invalid("The specified resource could not be found."))
        }
    }

    fn tag_resource(&mut self, body: &Value) -> Result<Value, ApiError> {
        let arn = body.str_req("resourceArn")?;
        self.check_resource(&arn)?;
        let new = tags_of(body);
        let list = self.tags.entry(arn).or_default();
        for t in new {
            let key = t.get("key").cloned();
            list.retain(|x| x.get("key") != key.as_ref());
            list.push(t);
        }
        Ok(json!({}))
    }

    fn untag_resource(&mut self, body: &Value) -> Result<Value, ApiError> {
        let arn = body.str_req("resourceArn")?;
        self.check_resource(&arn)?;
        let keys = body.str_list("tagKeys")?;
        if let Some(list) = self.tags.get_mut(&arn) {
            list.retain(|x| {
                !x.get("key")
                    .and_then(Value::as_str)
                    .is_some_and(|k| keys.iter().any(|y| y == k))
            });
        }
        Ok(json!({}))
    }
}

/// A stable fake digest for an image reference (FNV-1a, widened).
pub(super) fn simple_hash(s: &str) -> String {
    let mut out = String::new();
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for round in 0..4u8 {
        for b in s.bytes().chain([round]) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        out.push_str(&format!("{h:016x}"));
    }
    out
}
