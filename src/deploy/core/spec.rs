//! cortado's own rollout settings (`rollout:`), parsed once into typed values when a config
//! is loaded: rollback on failure, what a cancel does, fast-fail rules, when a rollback is
//! done, and the verification gates. Read by validate, the engine, the watch and the gates.

use std::path::PathBuf;
use std::time::Duration;

use super::rollback::WaitRollback;
use super::state::LifecycleStage;
use super::verdict::FastFail;

/// What to do when the run is cancelled (SIGINT/SIGTERM) during a rollout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnCancel {
    /// Roll the deployment back (default).
    Rollback,
    /// Leave the deployment running on its own.
    Leave,
}

/// cortado's own settings from the config's `rollout:` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rollout {
    /// Roll back on our own when the deployment fails (default true).
    pub rollback: bool,
    pub on_cancel: OnCancel,
    pub fast_fail: FastFail,
    /// When a followed rollback counts as done.
    pub wait_rollback: WaitRollback,
    /// Verification gates: commands that answer our deployment's PAUSE hooks.
    pub verify: Vec<Gate>,
}

/// A verification gate (`rollout.verify[]`): when our deployment waits on a PAUSE hook at
/// `stage`, cortado runs `argv` (no shell) in the config's directory; exit 0 continues the
/// deployment, anything else (or `timeout`) rolls it back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gate {
    pub stage: LifecycleStage,
    /// The command and its arguments. A string in the config is split like a shell would
    /// split words (quotes honoured), but nothing is expanded and no shell runs.
    pub argv: Vec<String>,
    pub timeout: Duration,
    /// The directory the command runs in (the config file's).
    pub dir: PathBuf,
}

/// How long a gate may run when the config says nothing.
pub const DEFAULT_GATE_TIMEOUT: Duration = Duration::from_secs(600);

/// Hook stages a PAUSE hook (and so a gate) may sit at: ECS allows PAUSE hooks everywhere but
/// TEST_TRAFFIC_SHIFT and PRODUCTION_TRAFFIC_SHIFT (the shifts themselves).
pub const PAUSE_STAGES: &[LifecycleStage] = &[
    LifecycleStage::ReconcileService,
    LifecycleStage::PreScaleUp,
    LifecycleStage::PostScaleUp,
    LifecycleStage::PostTestTrafficShift,
    LifecycleStage::PreProductionTrafficShift,
    LifecycleStage::PostProductionTrafficShift,
];

impl Default for Rollout {
    fn default() -> Self {
        Rollout {
            rollback: true,
            on_cancel: OnCancel::Rollback,
            fast_fail: FastFail::default(),
            wait_rollback: WaitRollback::default(),
            verify: Vec::new(),
        }
    }
}
