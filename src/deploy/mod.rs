//! The deploy engine: strategies, the watcher, fast-fail rules, verdict and rollback. It emits
//! events and never prints.

pub mod event;
pub mod local;
pub mod observe;
pub mod run;
pub mod verdict;
pub mod watch;
