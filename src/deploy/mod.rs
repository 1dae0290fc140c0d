//! The deploy engine: strategies, the watcher, fast-fail rules, verdict and rollback. It emits
//! events and never prints.

pub mod apply;
pub mod codedeploy;
pub mod core;
pub mod engine;
pub mod event;
pub mod express;
pub mod gate;
pub mod local;
pub mod observe;
pub mod result;
pub mod watch;

/// ECS's states, at the path the integration tests name.
pub use self::core::state;
