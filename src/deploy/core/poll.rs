//! What one poll of a service saw, and what the watch follows on it: plain data that an
//! observer fills in and the verdict rules, the watch and the reports read.

use super::rollback::WaitRollback;
use super::verdict::{Ours, Snapshot};

/// A service event as DescribeServices lists it.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceEvent {
    pub id: String,
    /// Seconds since the epoch, in the clock of the service (ECS's or the sandbox's).
    pub at: Option<f64>,
    pub message: crate::untrusted::Untrusted,
}

/// What one poll saw of one service: the verdict inputs plus what to report.
#[derive(Debug, Clone, Default)]
pub struct Observation {
    pub snapshot: Snapshot,
    /// Newest first, as ECS lists them.
    pub events: Vec<ServiceEvent>,
    /// The traffic split of a blue/green, canary or linear service (from its listener rules).
    pub traffic: Option<Traffic>,
    /// The service's load balancer entries (target groups, alternates, listener rules).
    pub pairs: Vec<LbPair>,
    /// When our deployment was created, in the same clock as the events.
    pub our_started_at: Option<f64>,
    /// The stage a controller without ECS lifecycle stages is at (CodeDeploy's lifecycle
    /// event in progress), for the reports.
    pub stage: Option<String>,
    /// The rollout in words when the controller names it ("CodeDeploy blue/green"); else the
    /// strategy's words.
    pub rollout: Option<&'static str>,
}

/// The traffic split of a service whose strategy shifts traffic: forward weights by target
/// group of its production and test listener rules.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Traffic {
    pub production: Vec<(String, i32)>,
    pub test: Vec<(String, i32)>,
    /// The target groups our (green) tasks are registered in.
    pub green: Vec<String>,
}

impl Traffic {
    /// The percentage of `weights` that goes to the green target groups (None when the
    /// rule is unknown or green is not known yet).
    pub fn green_percent(&self, weights: &[(String, i32)]) -> Option<i32> {
        let total: i32 = weights.iter().map(|w| w.1.max(0)).sum();
        if total == 0 || self.green.is_empty() {
            return None;
        }
        let green: i32 = weights
            .iter()
            .filter(|w| self.green.contains(&w.0))
            .map(|w| w.1.max(0))
            .sum();
        Some((green * 100 + total / 2) / total)
    }
}

/// One load balancer entry of a service: its target group and, for blue/green-style
/// strategies, the alternate group and the listener rules ECS shifts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LbPair {
    pub tg: String,
    pub alternate: Option<String>,
    pub production_rule: Option<String>,
    pub test_rule: Option<String>,
}

impl LbPair {
    /// The target group and, for a blue/green pair, the alternate one.
    pub fn target_groups(&self) -> impl Iterator<Item = &String> {
        std::iter::once(&self.tg).chain(self.alternate.iter())
    }

    /// The production and test listener rules, when the strategy shifts traffic.
    pub fn rules(&self) -> impl Iterator<Item = &String> {
        self.production_rule.iter().chain(self.test_rule.iter())
    }
}

/// What the watch waits for on a service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Goal {
    /// Our deployment succeeds ([`super::verdict::judge`]).
    Deployed,
    /// Our (failed) deployment is rolled back by ECS (its breaker, an alarm, a
    /// StopServiceDeployment, a hook answered ROLLBACK): another deployment serves
    /// ([`super::rollback::judge_rollback`]).
    RolledBack(WaitRollback),
    /// Our deployment is a rollback's own (an UpdateService back to the earlier revision): it
    /// serves ([`super::rollback::judge_restored`]).
    Restores(WaitRollback),
}

/// One service the watch follows: its name, our deployment, and what to wait for.
#[derive(Debug, Clone)]
pub struct Target {
    pub service: String,
    pub ours: Ours,
    pub goal: Goal,
    /// Ids of service events that were there before the operation began: never reported as
    /// its own (a rollback reports only its own events, not the deploy's it undoes).
    pub history: Vec<String>,
}

impl Target {
    pub fn deployed(service: &str, ours: Ours) -> Self {
        Target {
            service: service.to_string(),
            ours,
            goal: Goal::Deployed,
            history: Vec::new(),
        }
    }
}
