//! ECS Express Mode services: CreateExpressGatewayService, UpdateExpressGatewayService,
//! DescribeExpressGatewayService and DeleteExpressGatewayService.
//!
//! An Express Mode service is an ECS service that ECS manages (`resourceManagementType: ECS`):
//! from one container configuration it registers the task definition, provisions an
//! Application Load Balancer with two target groups and a listener rule, and creates the
//! service with a canary deployment (AWS's developer guide, "Updating an Amazon ECS Express
//! Mode service": 5% of production traffic to the new tasks, 3 minutes of bake, then 100%, 3
//! minutes of bake before the old tasks go; alarm-based rollback). The sandbox builds exactly
//! that out of its own ECS and ELBv2 models, so an Express service deploys, shifts traffic,
//! fails and rolls back like any canary service here. Each update registers a new revision and
//! starts a new deployment; the configurations are kept per task definition revision.
//!
//! Chosen by the sandbox where AWS does not document it (listed in the README): the task
//! definition's family is the service name and its container is named `Main`; the load
//! balancer is `ecs-express-SERVICE`, its target groups `ecs-express-SERVICE-1` and `-2`; a
//! service without `networkConfiguration` gets the subnet `subnet-default`.

mod api;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::api::ApiError;

/// What ECS fills in when the request leaves it out (the defaults the console shows).
const DEFAULT_CPU: &str = "1024";
const DEFAULT_MEMORY: &str = "2048";
const DEFAULT_PORT: i64 = 80;
const DEFAULT_HEALTH_CHECK_PATH: &str = "/";
const CONTAINER: &str = "Main";

/// One Express Mode service: what ECS keeps beside the service itself.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ExpressService {
    pub service_key: String,
    pub infrastructure_role_arn: String,
    pub created_at: f64,
    pub updated_at: f64,
    /// The configuration of each revision this service was given (oldest first): the
    /// `ExpressGatewayServiceConfiguration` shape, with `taskDefinitionArn`.
    pub configurations: Vec<Value>,
    /// Listener rule and target groups ECS provisioned.
    pub rule_arn: String,
    pub target_groups: Vec<String>,
    pub endpoint: String,
}

fn not_found() -> ApiError {
    ApiError::client(
        "ServiceNotFoundException",
        "The specified Express service was not found.",
    )
}
