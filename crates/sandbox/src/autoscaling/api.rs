//! Application Auto Scaling's operations on the world: a scalable target of namespace `ecs`
//! names an ACTIVE service of the world.

use serde_json::{Value, json};

use super::{AutoScaling, ECS_DIMENSION, ScalableTarget, capacity, key, required, validation};
use crate::api::ApiError;
use crate::world::{World, service_key};

impl World {
    /// Handles one Application Auto Scaling operation.
    pub fn autoscaling(&mut self, op: &str, body: &Value) -> Result<Value, ApiError> {
        match op {
            "RegisterScalableTarget" => self.register_scalable_target(body),
            "DescribeScalableTargets" => {
                let namespace = required(body, "ServiceNamespace", op)?;
                let ids: Option<Vec<&str>> = body
                    .get("ResourceIds")
                    .and_then(Value::as_array)
                    .map(|a| a.iter().filter_map(Value::as_str).collect());
                let dimension = body.get("ScalableDimension").and_then(Value::as_str);
                let found: Vec<Value> = self
                    .autoscaling
                    .targets
                    .values()
                    .filter(|t| t.namespace == namespace)
                    .filter(|t| {
                        ids.as_ref()
                            .is_none_or(|ids| ids.contains(&t.resource_id.as_str()))
                    })
                    .filter(|t| dimension.is_none_or(|d| d == t.dimension))
                    .map(AutoScaling::describe)
                    .collect();
                Ok(json!({"ScalableTargets": found}))
            }
            "DeregisterScalableTarget" => {
                let namespace = required(body, "ServiceNamespace", op)?;
                let resource_id = required(body, "ResourceId", op)?;
                let dimension = required(body, "ScalableDimension", op)?;
                match self
                    .autoscaling
                    .targets
                    .remove(&key(namespace, resource_id, dimension))
                {
                    Some(_) => Ok(json!({})),
                    None => Err(ApiError::client(
                        "ObjectNotFoundException",
                        format!(
                            "No scalable target registered for service namespace: {namespace}, resource ID: {resource_id}, scalable dimension: {dimension}"
                        ),
                    )),
                }
            }
            other => Err(ApiError::client(
                "UnknownOperationException",
                format!("The sandbox does not implement Application Auto Scaling {other}."),
            )),
        }
    }

    fn register_scalable_target(&mut self, body: &Value) -> Result<Value, ApiError> {
        let op = "RegisterScalableTarget";
        let namespace = required(body, "ServiceNamespace", op)?;
        let resource_id = required(body, "ResourceId", op)?;
        let dimension = required(body, "ScalableDimension", op)?;
        if namespace != "ecs" {
            return Err(validation(format!(
                "The sandbox models scalable targets of namespace ecs only, not {namespace}."
            )));
        }
        if dimension != ECS_DIMENSION {
            return Err(validation(format!(
                "Unsupported scalable dimension {dimension} for service namespace ecs (use {ECS_DIMENSION})."
            )));
        }
        let service = resource_id
            .strip_prefix("service/")
            .and_then(|r| r.split_once('/'))
            .filter(|(c, s)| !c.is_empty() && !s.is_empty() && !s.contains('/'));
        let Some((cluster, service)) = service else {
            return Err(validation(format!(
                "Unsupported resource ID {resource_id}: an ECS service is service/CLUSTER/SERVICE."
            )));
        };
        let active = self
            .services
            .get(&service_key(cluster, service))
            .is_some_and(|s| s.status == "ACTIVE");
        if !active {
            return Err(validation(format!(
                "ECS service doesn't exist: {resource_id}"
            )));
        }
        let min = capacity(body, "MinCapacity")?;
        let max = capacity(body, "MaxCapacity")?;
        let suspended = body.get("SuspendedState");
        let flag = |member: &str| {
            suspended
                .and_then(|s| s.get(member))
                .and_then(Value::as_bool)
        };
        let k = key(namespace, resource_id, dimension);
        let (region, account, now) = (self.region.clone(), self.account.clone(), self.now);
        let state = &mut self.autoscaling;
        let target = match state.targets.get(&k) {
            Some(t) => {
                let mut t = t.clone();
                t.min = min.unwrap_or(t.min);
                t.max = max.unwrap_or(t.max);
                t
            }
            None => {
                let (Some(min), Some(max)) = (min, max) else {
                    return Err(validation(
                        "MinCapacity and MaxCapacity are required to register a new scalable target.",
                    ));
                };
                state.seq += 1;
                ScalableTarget {
                    namespace: namespace.to_string(),
                    resource_id: resource_id.to_string(),
                    dimension: dimension.to_string(),
                    min,
                    max,
                    role_arn: format!(
                        "arn:aws:iam::{account}:role/aws-service-role/ecs.application-autoscaling.amazonaws.com/AWSServiceRoleForApplicationAutoScaling_ECSService"
                    ),
                    arn: format!(
                        "arn:aws:application-autoscaling:{region}:{account}:scalable-target/0ec5{:028x}",
                        state.seq
                    ),
                    created: now,
                    scaling_in_suspended: false,
                    scaling_out_suspended: false,
                    scheduled_suspended: false,
                }
            }
        };
        if target.min > target.max {
            return Err(validation(format!(
                "Minimum capacity {} cannot be greater than maximum capacity {}.",
                target.min, target.max
            )));
        }
        let mut target = target;
        // A member left out of SuspendedState keeps its value.
        if let Some(v) = flag("DynamicScalingInSuspended") {
            target.scaling_in_suspended = v;
        }
        if let Some(v) = flag("DynamicScalingOutSuspended") {
            target.scaling_out_suspended = v;
        }
        if let Some(v) = flag("ScheduledScalingSuspended") {
            target.scheduled_suspended = v;
        }
        let arn = target.arn.clone();
        state.targets.insert(k, target);
        Ok(json!({"ScalableTargetARN": arn}))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn world_with_service() -> World {
        let mut w = World::new("us-east-1", 7, 1_700_000_000.0);
        w.ecs("CreateCluster", &json!({"clusterName": "c"}))
            .unwrap();
        w.ecs(
            "RegisterTaskDefinition",
            &json!({"family": "f", "containerDefinitions": [{"name": "app", "image": "app:1"}]}),
        )
        .unwrap();
        w.ecs(
            "CreateService",
            &json!({"cluster": "c", "serviceName": "s", "taskDefinition": "f:1", "desiredCount": 1}),
        )
        .unwrap();
        w
    }

    fn target(id: &str) -> Value {
        json!({"ServiceNamespace": "ecs", "ResourceId": id, "ScalableDimension": ECS_DIMENSION})
    }

    fn with(mut v: Value, extra: Value) -> Value {
        if let (Some(o), Value::Object(e)) = (v.as_object_mut(), extra) {
            o.extend(e);
        }
        v
    }

    #[test]
    fn a_target_needs_an_active_service_and_capacities_when_new() {
        let mut w = world_with_service();
        let err = w
            .autoscaling(
                "RegisterScalableTarget",
                &with(
                    target("service/c/nope"),
                    json!({"MinCapacity": 1, "MaxCapacity": 2}),
                ),
            )
            .unwrap_err();
        assert_eq!(err.code, "ValidationException");
        assert!(err.message.contains("service/c/nope"), "{}", err.message);
        let err = w
            .autoscaling("RegisterScalableTarget", &target("service/c/s"))
            .unwrap_err();
        assert!(
            err.message.contains("MinCapacity and MaxCapacity"),
            "{}",
            err.message
        );
        let err = w
            .autoscaling(
                "RegisterScalableTarget",
                &with(
                    target("service/c/s"),
                    json!({"MinCapacity": 3, "MaxCapacity": 2}),
                ),
            )
            .unwrap_err();
        assert!(err.message.contains("cannot be greater"), "{}", err.message);
        assert!(
            w.autoscaling
                .target("ecs", "service/c/s", ECS_DIMENSION)
                .is_none()
        );
    }

    #[test]
    fn suspended_state_members_change_one_by_one_and_capacities_stay() {
        let mut w = world_with_service();
        let out = w
            .autoscaling(
                "RegisterScalableTarget",
                &with(
                    target("service/c/s"),
                    json!({"MinCapacity": 1, "MaxCapacity": 4}),
                ),
            )
            .unwrap();
        assert!(
            out["ScalableTargetARN"]
                .as_str()
                .unwrap()
                .contains(":scalable-target/")
        );
        w.autoscaling(
            "RegisterScalableTarget",
            &with(
                target("service/c/s"),
                json!({"SuspendedState": {"DynamicScalingInSuspended": true, "ScheduledScalingSuspended": true}}),
            ),
        )
        .unwrap();
        let t = w
            .autoscaling
            .target("ecs", "service/c/s", ECS_DIMENSION)
            .unwrap();
        assert_eq!((t.min, t.max), (1, 4));
        assert_eq!(
            (
                t.scaling_in_suspended,
                t.scaling_out_suspended,
                t.scheduled_suspended
            ),
            (true, false, true)
        );
        let all = w
            .autoscaling(
                "DescribeScalableTargets",
                &json!({"ServiceNamespace": "ecs", "ResourceIds": ["service/c/s"]}),
            )
            .unwrap();
        assert_eq!(
            all["ScalableTargets"][0]["SuspendedState"]["DynamicScalingOutSuspended"],
            false
        );
        let other = w
            .autoscaling(
                "DescribeScalableTargets",
                &json!({"ServiceNamespace": "ecs", "ResourceIds": ["service/c/other"]}),
            )
            .unwrap();
        assert_eq!(other["ScalableTargets"], json!([]));
        w.autoscaling("DeregisterScalableTarget", &target("service/c/s"))
            .unwrap();
        let err = w
            .autoscaling("DeregisterScalableTarget", &target("service/c/s"))
            .unwrap_err();
        assert_eq!(err.code, "ObjectNotFoundException");
    }
}
