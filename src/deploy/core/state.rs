//! ECS's states as cortado's own enums.
//!
//! The observer turns the strings of the SDK (deployment status, rollout state,
//! service-deployment status, lifecycle stage, hook status, circuit-breaker and alarm status,
//! target health) into these types once, where they are read; every decision after that
//! matches on variants, never on string literals. A value ECS adds later reads as `Unknown`
//! (keeping its text for reports) instead of failing the run.

use serde::{Serialize, Serializer};

macro_rules! ecs_enum {
    ($(#[$doc:meta])* $name:ident { $($variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
        pub enum $name {
            $($variant,)+
            /// A value this version of cortado does not know (kept verbatim for reports).
            Unknown(String),
            /// Not given by the API.
            #[default]
            Absent,
        }

        impl $name {
            /// Reads ECS's text; anything unknown is kept as `Unknown`.
            pub fn parse(s: &str) -> Self {
                match s {
                    $($text => $name::$variant,)+
                    "" => $name::Absent,
                    other => $name::Unknown(other.to_string()),
                }
            }

            /// ECS's text for the value ("" when absent).
            pub fn as_str(&self) -> &str {
                match self {
                    $($name::$variant => $text,)+
                    $name::Unknown(s) => s,
                    $name::Absent => "",
                }
            }

            pub fn is_absent(&self) -> bool {
                matches!(self, $name::Absent)
            }
        }

        impl From<&str> for $name {
            fn from(s: &str) -> Self {
                $name::parse(s)
            }
        }

        impl From<Option<&str>> for $name {
            fn from(s: Option<&str>) -> Self {
                s.map_or($name::Absent, $name::parse)
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }
    };
}

ecs_enum! {
    /// `service.status`, plus MISSING when DescribeServices did not find the service.
    ServiceStatus { Active => "ACTIVE", Draining => "DRAINING", Inactive => "INACTIVE", Missing => "MISSING" }
}

ecs_enum! {
    /// `deployments[].status`.
    DeploymentStatus { Primary => "PRIMARY", Active => "ACTIVE", Inactive => "INACTIVE" }
}

ecs_enum! {
    /// `deployments[].rolloutState` (absent on old controllers).
    RolloutState { Completed => "COMPLETED", Failed => "FAILED", InProgress => "IN_PROGRESS" }
}

ecs_enum! {
    /// `serviceDeployments[].status`.
    ServiceDeploymentStatus {
        Pending => "PENDING",
        InProgress => "IN_PROGRESS",
        Successful => "SUCCESSFUL",
        Stopped => "STOPPED",
        StopRequested => "STOP_REQUESTED",
        RollbackRequested => "ROLLBACK_REQUESTED",
        RollbackInProgress => "ROLLBACK_IN_PROGRESS",
        RollbackSuccessful => "ROLLBACK_SUCCESSFUL",
        RollbackFailed => "ROLLBACK_FAILED",
    }
}

impl ServiceDeploymentStatus {
    /// Any of the ROLLBACK_* states: the deployment is (being) undone.
    pub fn is_rollback(&self) -> bool {
        matches!(
            self,
            Self::RollbackRequested
                | Self::RollbackInProgress
                | Self::RollbackSuccessful
                | Self::RollbackFailed
        )
    }

    pub fn is_stopped(&self) -> bool {
        matches!(self, Self::Stopped | Self::StopRequested)
    }
}

ecs_enum! {
    /// `serviceDeployments[].lifecycleStage`, in the order a deployment passes them.
    LifecycleStage {
        ReconcileService => "RECONCILE_SERVICE",
        PreScaleUp => "PRE_SCALE_UP",
        ScaleUp => "SCALE_UP",
        PostScaleUp => "POST_SCALE_UP",
        TestTrafficShift => "TEST_TRAFFIC_SHIFT",
        PostTestTrafficShift => "POST_TEST_TRAFFIC_SHIFT",
        PreProductionTrafficShift => "PRE_PRODUCTION_TRAFFIC_SHIFT",
        ProductionTrafficShift => "PRODUCTION_TRAFFIC_SHIFT",
        PostProductionTrafficShift => "POST_PRODUCTION_TRAFFIC_SHIFT",
        BakeTime => "BAKE_TIME",
        CleanUp => "CLEAN_UP",
    }
}

ecs_enum! {
    /// `deploymentConfiguration.strategy` (absent means ROLLING).
    Strategy {
        Rolling => "ROLLING",
        BlueGreen => "BLUE_GREEN",
        Canary => "CANARY",
        Linear => "LINEAR",
    }
}

impl Strategy {
    /// Blue/green, canary and linear: two revisions side by side, traffic shifted by listener
    /// rules, lifecycle stages and hooks.
    pub fn shifts_traffic(&self) -> bool {
        matches!(self, Self::BlueGreen | Self::Canary | Self::Linear)
    }

    /// ECS's name of the strategy (ROLLING when none is set).
    pub fn name(&self) -> &str {
        match self {
            Self::Absent => "ROLLING",
            s => s.as_str(),
        }
    }

    /// Words for people.
    pub fn words(&self) -> &str {
        match self {
            Self::Rolling | Self::Absent => "rolling",
            Self::BlueGreen => "blue/green",
            Self::Canary => "canary",
            Self::Linear => "linear",
            Self::Unknown(s) => s,
        }
    }
}

ecs_enum! {
    /// Status of a lifecycle hook invocation.
    HookStatus {
        InProgress => "IN_PROGRESS",
        AwaitingAction => "AWAITING_ACTION",
        Succeeded => "SUCCEEDED",
        Failed => "FAILED",
        TimedOut => "TIMED_OUT",
    }
}

ecs_enum! {
    /// Circuit-breaker and alarm status of a service deployment.
    MonitorStatus {
        Triggered => "TRIGGERED",
        Monitoring => "MONITORING",
        MonitoringComplete => "MONITORING_COMPLETE",
        Disabled => "DISABLED",
    }
}

ecs_enum! {
    /// ELBv2 target health state.
    TargetState {
        Initial => "initial",
        Healthy => "healthy",
        Unhealthy => "unhealthy",
        Unused => "unused",
        Draining => "draining",
        Unavailable => "unavailable",
        UnhealthyDraining => "unhealthy.draining",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_values_round_trip_and_unknown_ones_are_kept() {
        for s in [
            "PENDING",
            "IN_PROGRESS",
            "SUCCESSFUL",
            "STOPPED",
            "STOP_REQUESTED",
            "ROLLBACK_REQUESTED",
            "ROLLBACK_IN_PROGRESS",
            "ROLLBACK_SUCCESSFUL",
            "ROLLBACK_FAILED",
        ] {
            let v = ServiceDeploymentStatus::parse(s);
            assert!(!matches!(v, ServiceDeploymentStatus::Unknown(_)), "{s}");
            assert_eq!(v.as_str(), s);
        }
        assert_eq!(
            ServiceDeploymentStatus::parse("PAUSED"),
            ServiceDeploymentStatus::Unknown("PAUSED".into())
        );
        assert_eq!(DeploymentStatus::from(None), DeploymentStatus::Absent);
        assert_eq!(
            LifecycleStage::parse("POST_TEST_TRAFFIC_SHIFT"),
            LifecycleStage::PostTestTrafficShift
        );
        assert!(LifecycleStage::BakeTime > LifecycleStage::ProductionTrafficShift);
        assert_eq!(
            serde_json::to_string(&RolloutState::InProgress).unwrap(),
            "\"IN_PROGRESS\""
        );
    }

    #[test]
    fn rollback_states_are_classified() {
        assert!(ServiceDeploymentStatus::RollbackFailed.is_rollback());
        assert!(!ServiceDeploymentStatus::Stopped.is_rollback());
        assert!(ServiceDeploymentStatus::StopRequested.is_stopped());
    }
}
