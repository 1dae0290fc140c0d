//! ECS Express Mode services: Create/Update/DescribeExpressGatewayService.
//!
//! An Express Mode service is an ECS service ECS manages (`resourceManagementType: ECS`): its
//! task definition, load balancer and scaling come from one configuration. cortado creates
//! and updates it from the config's `express_definition` (the CreateExpressGatewayService
//! input, as ecspresso reads it) and then follows the service deployment ECS starts like any
//! other; these calls are the only ones that differ.

use aws_sdk_ecs::operation::create_express_gateway_service::CreateExpressGatewayServiceInput;
use aws_sdk_ecs::operation::update_express_gateway_service::UpdateExpressGatewayServiceInput;
use aws_sdk_ecs::types::EcsExpressGatewayService;
use aws_smithy_schema::serde::ShapeDeserializer;
use serde_json::{Map, Value};

use super::Clients;
use super::error::Call;
use crate::error::{Error, Result};
use crate::model::codec;

/// The members of a configuration the definition file sets (the rest are read-only).
const CONFIG_MEMBERS: &[&str] = &[
    "executionRoleArn",
    "taskRoleArn",
    "cpu",
    "memory",
    "healthCheckPath",
    "networkConfiguration",
    "primaryContainer",
    "scalingTarget",
];

fn decode<T>(
    what: &str,
    v: &Value,
    read: fn(
        &mut dyn ShapeDeserializer,
    ) -> std::result::Result<T, aws_smithy_schema::serde::SerdeError>,
) -> Result<T> {
    codec::decode(v, read)
        .value
        .ok_or_else(|| Error::internal(format!("the express definition does not decode as {what}")))
}

impl Clients {
    /// The Express Mode service with this ARN, as ECS describes it.
    pub async fn describe_express_service(
        &self,
        service_arn: &str,
    ) -> Result<EcsExpressGatewayService> {
        let call = Call::ecs(
            "DescribeExpressGatewayService",
            format!("Express Mode service \"{service_arn}\""),
        );
        let out = self
            .ecs
            .describe_express_gateway_service()
            .service_arn(service_arn)
            .send()
            .await
            .map_err(|e| self.fail(&call, e))?;
        out.service.ok_or_else(|| {
            Error::internal("DescribeExpressGatewayService answered without a service")
        })
    }

    /// CreateExpressGatewayService from the definition (`definition`: the file's JSON).
    pub async fn create_express_service(
        &self,
        cluster: &str,
        service: &str,
        definition: &Value,
    ) -> Result<()> {
        let mut v = definition.clone();
        v["serviceName"] = Value::String(service.to_string());
        v["cluster"] = Value::String(cluster.to_string());
        let input = decode(
            "CreateExpressGatewayService input",
            &v,
            CreateExpressGatewayServiceInput::deserialize,
        )?;
        let call = Call::ecs(
            "CreateExpressGatewayService",
            format!("service \"{service}\" in cluster \"{cluster}\""),
        )
        .in_cluster(cluster);
        self.ecs
            .create_express_gateway_service()
            .set_cluster(input.cluster)
            .set_service_name(input.service_name)
            .set_execution_role_arn(input.execution_role_arn)
            .set_infrastructure_role_arn(input.infrastructure_role_arn)
            .set_health_check_path(input.health_check_path)
            .set_primary_container(input.primary_container)
            .set_task_role_arn(input.task_role_arn)
            .set_network_configuration(input.network_configuration)
            .set_cpu(input.cpu)
            .set_memory(input.memory)
            .set_scaling_target(input.scaling_target)
            .set_tags(input.tags)
            .send()
            .await
            .map_err(|e| self.fail(&call, e))?;
        Ok(())
    }

    /// UpdateExpressGatewayService to the definition: every configuration member it sets;
    /// empty `environment` and `secrets` are sent as empty lists, so that removing the last
    /// variable from the file removes it from the service.
    pub async fn update_express_service(
        &self,
        service_arn: &str,
        definition: &Value,
    ) -> Result<()> {
        let mut v = Value::Object(
            CONFIG_MEMBERS
                .iter()
                .filter_map(|k| definition.get(*k).map(|x| ((*k).to_string(), x.clone())))
                .collect::<Map<String, Value>>(),
        );
        v["serviceArn"] = Value::String(service_arn.to_string());
        if let Some(pc) = v.get_mut("primaryContainer").and_then(Value::as_object_mut) {
            for k in ["environment", "secrets"] {
                pc.entry(k).or_insert_with(|| Value::Array(Vec::new()));
            }
        }
        let input = decode(
            "UpdateExpressGatewayService input",
            &v,
            UpdateExpressGatewayServiceInput::deserialize,
        )?;
        let call = Call::ecs(
            "UpdateExpressGatewayService",
            format!("Express Mode service \"{service_arn}\""),
        );
        self.ecs
            .update_express_gateway_service()
            .service_arn(service_arn)
            .set_execution_role_arn(input.execution_role_arn)
            .set_health_check_path(input.health_check_path)
            .set_primary_container(input.primary_container)
            .set_task_role_arn(input.task_role_arn)
            .set_network_configuration(input.network_configuration)
            .set_cpu(input.cpu)
            .set_memory(input.memory)
            .set_scaling_target(input.scaling_target)
            .send()
            .await
            .map_err(|e| self.fail(&call, e))?;
        Ok(())
    }
}

/// The live Express Mode service as the definition file would write it: the newest active
/// configuration's members the file sets, plus `infrastructureRoleArn` and `tags`.
pub(crate) fn express_definition_json(svc: &EcsExpressGatewayService) -> Result<Value> {
    let encoded = codec::encode(svc).map_err(|e| {
        Error::internal(format!("cannot encode the live Express Mode service: {e}"))
    })?;
    let mut out = Map::new();
    if let Some(active) = encoded
        .pointer("/activeConfigurations/0")
        .and_then(Value::as_object)
    {
        for k in CONFIG_MEMBERS {
            if let Some(v) = active.get(*k).filter(|v| !v.is_null()) {
                out.insert((*k).to_string(), v.clone());
            }
        }
    }
    for k in ["infrastructureRoleArn", "tags"] {
        if let Some(v) = encoded
            .get(k)
            .filter(|v| !v.is_null() && *v != &Value::Array(Vec::new()))
        {
            out.insert(k.to_string(), v.clone());
        }
    }
    out.sort_keys();
    Ok(Value::Object(out))
}
