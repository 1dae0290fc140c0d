//! The pure core of a deploy: ECS's states as cortado's enums, what a poll saw, the rollout
//! settings, the verdict on a deployment, the rollback rules, the outcome table, and the diagnosis of failed tasks. No I/O, no clock, no controller: each rule is a
//! function of typed state, tested without AWS. Controllers and the engine hand their
//! observations in and carry out what comes back.

pub(crate) mod diagnosis;
pub(crate) mod outcome;
pub(crate) mod poll;
pub(crate) mod rollback;
pub(crate) mod spec;
pub mod state;
pub(crate) mod verdict;
