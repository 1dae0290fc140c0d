//! The deploy engine: strategies, the watcher, fast-fail rules, verdict and rollback. It emits
//! events and never prints.

pub mod apply;
pub mod codedeploy;
pub mod engine;
pub mod event;
pub mod express;
pub mod gate;
pub mod local;
pub mod observe;
pub mod outcome;
pub mod result;
pub mod rollback;
pub mod state;
pub mod verdict;
pub mod watch;
