//! Application Auto Scaling, for `deploy --suspend-auto-scaling` / `--resume-auto-scaling`.
//!
//! Receives a service's cluster and name; reads its scalable target (namespace `ecs`, resource
//! id `service/CLUSTER/SERVICE`, dimension `ecs:service:DesiredCount`) and sets its
//! `SuspendedState` — all three activities (dynamic scale-in, dynamic scale-out, scheduled
//! scaling) together, as ecspresso does — through `RegisterScalableTarget`, which updates a
//! registered target in place and leaves its capacities alone when they are not given.

use aws_sdk_applicationautoscaling::types::{ScalableDimension, ServiceNamespace, SuspendedState};

use super::Clients;
use super::error::Call;
use crate::error::Result;

/// A service's scalable target as a deploy cares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScalableTargetFacts {
    pub resource_id: String,
    pub min: i32,
    pub max: i32,
    /// Scale-in, scale-out and scheduled scaling, in that order.
    pub suspended: [bool; 3],
}

impl ScalableTargetFacts {
    /// All three scaling activities suspended.
    pub fn all_suspended(&self) -> bool {
        self.suspended.iter().all(|s| *s)
    }

    /// None of them suspended.
    pub fn none_suspended(&self) -> bool {
        self.suspended.iter().all(|s| !*s)
    }
}

/// Application Auto Scaling's resource id of an ECS service.
pub(crate) fn service_resource_id(cluster: &str, service: &str) -> String {
    format!("service/{cluster}/{service}")
}

impl Clients {
    /// The service's scalable target, `None` when none is registered.
    pub async fn scalable_target(
        &self,
        cluster: &str,
        service: &str,
    ) -> Result<Option<ScalableTargetFacts>> {
        let id = service_resource_id(cluster, service);
        let call = Call::of(
            "application-autoscaling",
            "DescribeScalableTargets",
            format!("scalable target {id}"),
        );
        let out = self
            .autoscaling
            .describe_scalable_targets()
            .service_namespace(ServiceNamespace::Ecs)
            .scalable_dimension(ScalableDimension::EcsServiceDesiredCount)
            .resource_ids(&id)
            .send()
            .await
            .map_err(|e| self.fail(&call, e))?;
        Ok(out
            .scalable_targets()
            .iter()
            .find(|t| t.resource_id() == id)
            .map(|t| {
                let s = t.suspended_state();
                ScalableTargetFacts {
                    resource_id: id.clone(),
                    min: t.min_capacity(),
                    max: t.max_capacity(),
                    suspended: [
                        s.and_then(SuspendedState::dynamic_scaling_in_suspended)
                            .unwrap_or(false),
                        s.and_then(SuspendedState::dynamic_scaling_out_suspended)
                            .unwrap_or(false),
                        s.and_then(SuspendedState::scheduled_scaling_suspended)
                            .unwrap_or(false),
                    ],
                }
            }))
    }

    /// Sets the minimum and/or maximum capacity of the service's registered scalable target
    /// (RegisterScalableTarget updates the given ones in place).
    pub async fn set_auto_scaling_capacity(
        &self,
        cluster: &str,
        service: &str,
        min: Option<i32>,
        max: Option<i32>,
    ) -> Result<()> {
        let id = service_resource_id(cluster, service);
        let call = Call::of(
            "application-autoscaling",
            "RegisterScalableTarget",
            format!("scalable target {id}"),
        );
        self.autoscaling
            .register_scalable_target()
            .service_namespace(ServiceNamespace::Ecs)
            .scalable_dimension(ScalableDimension::EcsServiceDesiredCount)
            .resource_id(&id)
            .set_min_capacity(min)
            .set_max_capacity(max)
            .send()
            .await
            .map_err(|e| self.fail(&call, e))?;
        Ok(())
    }

    /// Suspends (`true`) or resumes (`false`) every scaling activity of the service's
    /// registered scalable target.
    pub async fn set_auto_scaling_suspended(
        &self,
        cluster: &str,
        service: &str,
        suspended: bool,
    ) -> Result<()> {
        let id = service_resource_id(cluster, service);
        let call = Call::of(
            "application-autoscaling",
            "RegisterScalableTarget",
            format!("scalable target {id}"),
        );
        self.autoscaling
            .register_scalable_target()
            .service_namespace(ServiceNamespace::Ecs)
            .scalable_dimension(ScalableDimension::EcsServiceDesiredCount)
            .resource_id(&id)
            .suspended_state(
                SuspendedState::builder()
                    .dynamic_scaling_in_suspended(suspended)
                    .dynamic_scaling_out_suspended(suspended)
                    .scheduled_scaling_suspended(suspended)
                    .build(),
            )
            .send()
            .await
            .map_err(|e| self.fail(&call, e))?;
        Ok(())
    }
}
