//! Live SDK values as the camelCase JSON of the inputs that would create them.
//!
//! Receives what Describe* returned; hands on JSON in the shape of the local definition
//! files (RegisterTaskDefinition / CreateService input), through the SDK's schema codec, so
//! `diff` compares like with like. Members the input does not have are read-only and left
//! out; which members those are comes from the schemas, not from a hand-kept list.

use aws_sdk_ecs::operation::create_service::CreateServiceInput;
use aws_sdk_ecs::operation::register_task_definition::RegisterTaskDefinitionInput;
use aws_sdk_ecs::types::{Service, Tag, TaskDefinition};
use aws_smithy_schema::Schema;
use aws_smithy_schema::serde::SerializableStruct;
use serde_json::{Map, Value};

use crate::error::{Error, Result};
use crate::model::codec;

fn encode(what: &str, v: &dyn SerializableStruct) -> Result<Value> {
    codec::encode(v).map_err(|e| Error::internal(format!("cannot encode the live {what}: {e}")))
}

fn keep_members(value: Value, schema: &Schema<'_>) -> Map<String, Value> {
    match value {
        Value::Object(m) => m
            .into_iter()
            .filter(|(k, _)| schema.member_schema(k).is_some())
            .collect(),
        _ => Map::new(),
    }
}

/// The live task definition as RegisterTaskDefinition input JSON: read-only members
/// (`taskDefinitionArn`, `revision`, `status`, `compatibilities`, `registeredAt`, ...)
/// stripped, the tags DescribeTaskDefinition returns beside it put back in.
pub fn task_definition_json(td: &TaskDefinition, tags: &[Tag]) -> Result<Value> {
    let mut m = keep_members(
        encode("task definition", td)?,
        RegisterTaskDefinitionInput::SCHEMA,
    );
    m.remove("tags");
    if !tags.is_empty() {
        let tags = tags
            .iter()
            .map(|t| encode("tag", t))
            .collect::<Result<Vec<_>>>()?;
        m.insert("tags".into(), Value::Array(tags));
    }
    m.sort_keys();
    Ok(Value::Object(m))
}

/// The whole live service as JSON (every member DescribeServices returned).
pub fn service_json(service: &Service) -> Result<Value> {
    encode("service", service)
}

/// The live service as CreateService input JSON: members CreateService does not take are
/// left out, `roleArn` is given as `role`, and the members ECS keeps only on deployments
/// (`serviceConnectConfiguration`, `volumeConfigurations`, `vpcLatticeConfigurations`) are
/// taken from the PRIMARY deployment.
pub fn service_definition_json(service: &Service) -> Result<Value> {
    let full = service_json(service)?;
    let primary = full
        .get("deployments")
        .and_then(Value::as_array)
        .and_then(|ds| {
            ds.iter()
                .find(|d| d.get("status").and_then(Value::as_str) == Some("PRIMARY"))
        })
        .cloned();
    let role = full.get("roleArn").cloned();
    let mut m = keep_members(full, CreateServiceInput::SCHEMA);
    if let Some(role) = role {
        m.insert("role".into(), role);
    }
    if let Some(Value::Object(d)) = primary {
        for (k, v) in d {
            if CreateServiceInput::SCHEMA.member_schema(&k).is_some()
                && Service::SCHEMA.member_schema(&k).is_none()
            {
                m.entry(k).or_insert(v);
            }
        }
    }
    m.sort_keys();
    Ok(Value::Object(m))
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_ecs::types::{Deployment, DeploymentConfiguration, ServiceConnectConfiguration};

    #[test]
    fn live_task_definition_loses_read_only_members_and_gains_tags() {
        let td = TaskDefinition::builder()
            .family("web")
            .revision(7)
            .task_definition_arn("arn:aws:ecs:us-east-1:1:task-definition/web:7")
            .status(aws_sdk_ecs::types::TaskDefinitionStatus::Active)
            .compatibilities(aws_sdk_ecs::types::Compatibility::Fargate)
            .requires_compatibilities(aws_sdk_ecs::types::Compatibility::Fargate)
            .cpu("256")
            .build();
        let tag = Tag::builder().key("team").value("a").build();
        let v = task_definition_json(&td, &[tag]).unwrap();
        assert_eq!(
            v,
            serde_json::json!({
                "cpu": "256", "family": "web", "requiresCompatibilities": ["FARGATE"],
                "tags": [{"key": "team", "value": "a"}]
            })
        );
    }

    #[test]
    fn live_service_is_projected_onto_the_create_input() {
        let s = Service::builder()
            .service_name("web")
            .service_arn("arn:aws:ecs:us-east-1:1:service/c/web")
            .cluster_arn("arn:aws:ecs:us-east-1:1:cluster/c")
            .role_arn("arn:aws:iam::1:role/ecs")
            .running_count(2)
            .platform_version("LATEST")
            .deployment_configuration(
                DeploymentConfiguration::builder()
                    .maximum_percent(200)
                    .build(),
            )
            .deployments(
                Deployment::builder()
                    .status("ACTIVE")
                    .service_connect_configuration(
                        ServiceConnectConfiguration::builder()
                            .enabled(false)
                            .build(),
                    )
                    .build(),
            )
            .deployments(
                Deployment::builder()
                    .status("PRIMARY")
                    .service_connect_configuration(
                        ServiceConnectConfiguration::builder()
                            .enabled(true)
                            .namespace("ns")
                            .build(),
                    )
                    .build(),
            )
            .build();
        let v = service_definition_json(&s).unwrap();
        let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        assert!(keys.contains(&"serviceName"), "{v}");
        assert!(!keys.contains(&"runningCount"), "{v}");
        assert!(!keys.contains(&"deployments"), "{v}");
        assert!(!keys.contains(&"clusterArn"), "{v}");
        assert_eq!(v["role"], "arn:aws:iam::1:role/ecs");
        assert_eq!(v["serviceConnectConfiguration"]["enabled"], true);
        assert_eq!(v["serviceConnectConfiguration"]["namespace"], "ns");
        assert_eq!(v["deploymentConfiguration"]["maximumPercent"], 200);
    }
}
