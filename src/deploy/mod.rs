//! Deploying: the pure core (states, verdict, rollback rules, the outcome table), the
//! controllers behind one seam (ECS, CodeDeploy, Express Mode), the engine that runs every
//! operation against them, the watch with its observers and gates, and the one result. It
//! emits events and never prints.

pub(crate) mod autoscaling;
pub(crate) mod controller;
pub(crate) mod core;
pub(crate) mod engine;
pub mod event;
pub(crate) mod explain;
pub(crate) mod gate;
pub(crate) mod local;
pub(crate) mod observe;
pub(crate) mod result;
pub(crate) mod task;
pub(crate) mod watch;

/// ECS's states, at the path the integration tests name.
pub use self::core::state;
/// The CodeDeploy controller, at the path the integration tests name (its AppSpec).
pub mod codedeploy {
    pub use super::controller::codedeploy::appspec::{
        ROLLBACK_EVENTS, appspec, appspec_task_definition, appspec_yaml,
    };
}
