//! Deploying: the pure core (states, verdict, rollback rules, the outcome table), the
//! controllers behind one seam (ECS, CodeDeploy, Express Mode), the engine that runs every
//! operation against them, the watch with its observers and gates, and the one result. It
//! emits events and never prints.

pub mod autoscaling;
pub mod controller;
pub mod core;
pub mod engine;
pub mod event;
pub mod gate;
pub mod local;
pub mod observe;
pub mod result;
pub mod task;
pub mod watch;

/// ECS's states, at the path the integration tests name.
pub use self::core::state;
/// The CodeDeploy controller, at the path the integration tests name (its AppSpec).
pub mod codedeploy {
    pub use super::controller::codedeploy::appspec::{
        ROLLBACK_EVENTS, appspec, appspec_task_definition, appspec_yaml,
    };
}
