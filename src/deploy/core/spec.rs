//! The rollout spec, parsed once into typed values when a config is loaded: how ECS rolls
//! the service out ([`ServiceRollout`]: its controller, its strategy as the one [`Strategy`]
//! enum, bake, canary or linear steps, lifecycle hooks; from the service definition), and
//! cortado's own settings (`rollout:`): rollback on failure, what a cancel does, fast-fail
//! rules, when a rollback is done, and the verification gates. Read by validate, plan, the
//! engine, the watch and the gates.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value;

use super::rollback::WaitRollback;
use super::state::{LifecycleStage, Strategy};
use super::verdict::FastFail;

/// ECS's canary configuration when a CANARY service sets none: (percent, minutes).
pub(crate) const CANARY_DEFAULTS: (f64, i32) = (5.0, 10);
/// ECS's linear configuration when a LINEAR service sets none: (step percent, minutes between
/// steps).
pub(crate) const LINEAR_DEFAULTS: (f64, i32) = (10.0, 6);

/// How ECS rolls a service out, from its definition's `deploymentController` and
/// `deploymentConfiguration`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ServiceRollout {
    /// `deploymentController.type` when it is not ECS (CODE_DEPLOY, EXTERNAL).
    pub controller: Option<String>,
    pub strategy: Strategy,
    /// `bakeTimeInMinutes`.
    pub bake_minutes: Option<i64>,
    /// `canaryConfiguration` / `linearConfiguration`: (percent, minutes), each member as set.
    pub canary: Option<(Option<f64>, Option<i64>)>,
    pub linear: Option<(Option<f64>, Option<i64>)>,
    /// `lifecycleHooks`: (target type, stages).
    pub hooks: Vec<(String, Vec<LifecycleStage>)>,
}

impl ServiceRollout {
    /// Reads a service definition (camelCase JSON); what it does not set is absent.
    pub fn of(service: &Value) -> Self {
        let config = |key: &str| service.pointer(&format!("/deploymentConfiguration/{key}"));
        let pair = |key: &str, percent: &str, minutes: &str| {
            config(key).filter(|v| v.is_object()).map(|c| {
                (
                    c.get(percent).and_then(Value::as_f64),
                    c.get(minutes).and_then(Value::as_i64),
                )
            })
        };
        let hooks = config("lifecycleHooks")
            .and_then(Value::as_array)
            .map(|hooks| {
                hooks
                    .iter()
                    .map(|h| {
                        let stages = h
                            .get("lifecycleStages")
                            .and_then(Value::as_array)
                            .map(|a| {
                                a.iter()
                                    .filter_map(Value::as_str)
                                    .map(LifecycleStage::parse)
                                    .collect()
                            })
                            .unwrap_or_default();
                        let target = h
                            .get("targetType")
                            .and_then(Value::as_str)
                            .unwrap_or_default();
                        (target.to_string(), stages)
                    })
                    .collect()
            })
            .unwrap_or_default();
        ServiceRollout {
            controller: service
                .pointer("/deploymentController/type")
                .and_then(Value::as_str)
                .filter(|c| *c != "ECS")
                .map(str::to_string),
            strategy: Strategy::from(config("strategy").and_then(Value::as_str)),
            bake_minutes: config("bakeTimeInMinutes").and_then(Value::as_i64),
            canary: pair(
                "canaryConfiguration",
                "canaryPercent",
                "canaryBakeTimeInMinutes",
            ),
            linear: pair(
                "linearConfiguration",
                "stepPercent",
                "stepBakeTimeInMinutes",
            ),
            hooks,
        }
    }

    /// The rollout of an update ([`rollout_settings`]).
    pub fn of_update(file: Option<&Value>, live: Option<&Value>) -> Self {
        ServiceRollout::of(&rollout_settings(file, live))
    }

    /// Whether a PAUSE hook waits at `stage`.
    pub fn pauses_at(&self, stage: &LifecycleStage) -> bool {
        self.hooks
            .iter()
            .any(|(target, stages)| target == "PAUSE" && stages.contains(stage))
    }

    /// The rollout's name: the deployment controller when it is not ECS (CODE_DEPLOY,
    /// EXTERNAL), else the strategy (ROLLING when none is set).
    pub fn name(&self) -> String {
        match &self.controller {
            Some(c) => c.clone(),
            None => self.strategy.name().to_string(),
        }
    }

    /// The rollout in words: "rolling update", "blue/green with a 2-minute bake and 1 gate",
    /// "canary: 10% for 5 minutes, then 100%, 2-minute bake", "linear: 20% every 3 minutes (5
    /// steps), no bake". `gates` counts the config's `rollout.verify` gates. Members a canary
    /// or linear configuration leaves out take ECS's documented defaults.
    pub fn words(&self, gates: usize) -> String {
        let gate_count = match gates {
            0 => None,
            1 => Some("1 gate".to_string()),
            n => Some(format!("{n} gates")),
        };
        // The bake after the production shift, as an item of a list.
        let bake = match self.bake_minutes {
            Some(0) => "no bake".to_string(),
            Some(m) => format!("{} bake", duration(m, true)),
            None => "ECS's default bake".to_string(),
        };
        let list = |head: String| {
            let mut items = vec![head, bake.clone()];
            items.extend(gate_count.clone());
            items.join(", ")
        };
        match (self.controller.as_deref(), &self.strategy) {
            (Some("CODE_DEPLOY"), _) => {
                "blue/green by CodeDeploy (deploymentController CODE_DEPLOY)".to_string()
            }
            (Some("EXTERNAL"), _) => "an external deployment controller".to_string(),
            (Some(other), _) => format!("strategy {other}"),
            (None, Strategy::Rolling | Strategy::Absent) => "rolling update".to_string(),
            (None, Strategy::BlueGreen) => {
                let bake = match self.bake_minutes {
                    Some(m) if m != 0 => format!("{} {bake}", article(m)),
                    _ => bake.clone(),
                };
                match gate_count {
                    Some(g) => format!("blue/green with {bake} and {g}"),
                    None => format!("blue/green with {bake}"),
                }
            }
            (None, Strategy::Canary) => list(self.canary_words()),
            (None, Strategy::Linear) => list(self.linear_words()),
            (None, Strategy::Unknown(other)) => format!("strategy {other}"),
        }
    }

    /// "canary: 10% for 5 minutes, then 100%" (ECS's defaults for what is not set).
    fn canary_words(&self) -> String {
        let (percent, wait) = self.canary.unwrap_or_default();
        let percent = percent.unwrap_or(CANARY_DEFAULTS.0);
        let wait = wait.unwrap_or(i64::from(CANARY_DEFAULTS.1));
        if wait == 0 {
            format!("canary: {percent}%, then 100% at once")
        } else {
            format!(
                "canary: {percent}% for {}, then 100%",
                duration(wait, false)
            )
        }
    }

    /// "linear: 20% every 3 minutes (5 steps)" (ECS's defaults for what is not set).
    fn linear_words(&self) -> String {
        let (step, wait) = self.linear.unwrap_or_default();
        let step = step.unwrap_or(LINEAR_DEFAULTS.0);
        let wait = wait.unwrap_or(i64::from(LINEAR_DEFAULTS.1));
        let pace = if wait == 0 {
            "with no wait between steps".to_string()
        } else {
            format!("every {}", duration(wait, false))
        };
        // Shifts of `step` percent until 100%; the last may be smaller.
        let n = (100.0 / step - 1e-9).ceil();
        let steps = match n {
            1.0 => " (1 step)".to_string(),
            n if n.is_finite() && n > 1.0 => format!(" ({n} steps)"),
            _ => String::new(),
        };
        format!("linear: {step}% {pace}{steps}")
    }
}

/// The members of a service definition that decide its rollout (`deploymentController`,
/// `deploymentConfiguration`), each from the file when it sets it, else from the live service
/// (an update leaves members the file omits as they are).
pub(crate) fn rollout_settings(file: Option<&Value>, live: Option<&Value>) -> Value {
    let mut out = serde_json::Map::new();
    for key in ["deploymentController", "deploymentConfiguration"] {
        let value = file
            .and_then(|f| f.get(key))
            .or_else(|| live.and_then(|l| l.get(key)))
            .filter(|v| !v.is_null());
        if let Some(v) = value {
            out.insert(key.to_string(), v.clone());
        }
    }
    Value::Object(out)
}

/// "5 minutes", "1 hour"; as an adjective ("5-minute", "2-hour") when `adjective`.
fn duration(minutes: i64, adjective: bool) -> String {
    let (n, unit) = if minutes >= 60 && minutes % 60 == 0 {
        (minutes / 60, "hour")
    } else {
        (minutes, "minute")
    };
    match (adjective, n) {
        (true, _) => format!("{n}-{unit}"),
        (false, 1) => format!("1 {unit}"),
        (false, _) => format!("{n} {unit}s"),
    }
}

/// "a" or "an" before a number of minutes written as [`duration`] writes it ("an 8-minute",
/// "an 11-hour", "a 2-minute").
fn article(minutes: i64) -> &'static str {
    let n = if minutes >= 60 && minutes % 60 == 0 {
        minutes / 60
    } else {
        minutes
    };
    if n.to_string().starts_with('8') || n == 11 || n == 18 {
        "an"
    } else {
        "a"
    }
}

/// What to do when the run is cancelled (SIGINT/SIGTERM) during a rollout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnCancel {
    /// Roll the deployment back (default).
    Rollback,
    /// Leave the deployment running on its own.
    Leave,
}

/// cortado's own settings from the config's `rollout:` section.
#[derive(Debug, Clone, PartialEq)]
pub struct Rollout {
    /// Roll back on our own when the deployment fails (default true).
    pub rollback: bool,
    pub on_cancel: OnCancel,
    pub fast_fail: FastFail,
    /// When a followed rollback counts as done.
    pub wait_rollback: WaitRollback,
    /// Verification gates: commands that answer our deployment's PAUSE hooks.
    pub verify: Vec<Gate>,
    /// How ECS rolls the service out, from its service definition (default when it has none).
    pub service: ServiceRollout,
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
pub(crate) const DEFAULT_GATE_TIMEOUT: Duration = Duration::from_secs(600);

/// Hook stages a PAUSE hook (and so a gate) may sit at: ECS allows PAUSE hooks everywhere but
/// TEST_TRAFFIC_SHIFT and PRODUCTION_TRAFFIC_SHIFT (the shifts themselves).
pub(crate) const PAUSE_STAGES: &[LifecycleStage] = &[
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
            service: ServiceRollout::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn words(service: Value, gates: usize) -> String {
        ServiceRollout::of(&service).words(gates)
    }

    fn strategy_name(service: &Value) -> String {
        ServiceRollout::of(service).name()
    }

    #[test]
    fn rolling_and_other_controllers_in_words() {
        assert_eq!(words(json!({}), 0), "rolling update");
        assert_eq!(
            words(
                json!({"deploymentConfiguration": {"strategy": "ROLLING", "bakeTimeInMinutes": 3}}),
                0
            ),
            "rolling update"
        );
        let cd = json!({"deploymentController": {"type": "CODE_DEPLOY"},
                        "deploymentConfiguration": {"strategy": "BLUE_GREEN"}});
        assert_eq!(strategy_name(&cd), "CODE_DEPLOY");
        assert_eq!(
            words(cd, 0),
            "blue/green by CodeDeploy (deploymentController CODE_DEPLOY)"
        );
        assert_eq!(
            words(json!({"deploymentController": {"type": "EXTERNAL"}}), 0),
            "an external deployment controller"
        );
        let ecs = json!({"deploymentController": {"type": "ECS"},
                         "deploymentConfiguration": {"strategy": "LINEAR"}});
        assert_eq!(strategy_name(&ecs), "LINEAR");
    }

    #[test]
    fn blue_green_in_words() {
        let bg = |bake: Value, gates| {
            words(
                json!({"deploymentConfiguration": {"strategy": "BLUE_GREEN", "bakeTimeInMinutes": bake}}),
                gates,
            )
        };
        assert_eq!(
            bg(json!(2), 1),
            "blue/green with a 2-minute bake and 1 gate"
        );
        assert_eq!(bg(json!(8), 0), "blue/green with an 8-minute bake");
        assert_eq!(bg(json!(0), 2), "blue/green with no bake and 2 gates");
        assert_eq!(bg(json!(60), 0), "blue/green with a 1-hour bake");
        assert_eq!(bg(json!(660), 0), "blue/green with an 11-hour bake");
        assert_eq!(bg(json!(90), 0), "blue/green with a 90-minute bake");
        assert_eq!(bg(Value::Null, 0), "blue/green with ECS's default bake");
    }

    #[test]
    fn canary_in_words() {
        let s = json!({"deploymentConfiguration": {
            "strategy": "CANARY", "bakeTimeInMinutes": 2,
            "canaryConfiguration": {"canaryPercent": 10, "canaryBakeTimeInMinutes": 5}}});
        assert_eq!(
            words(s, 0),
            "canary: 10% for 5 minutes, then 100%, 2-minute bake"
        );
        let s = json!({"deploymentConfiguration": {
            "strategy": "CANARY", "bakeTimeInMinutes": 0,
            "canaryConfiguration": {"canaryPercent": 12.5, "canaryBakeTimeInMinutes": 1}}});
        assert_eq!(
            words(s, 1),
            "canary: 12.5% for 1 minute, then 100%, no bake, 1 gate"
        );
        let s = json!({"deploymentConfiguration": {
            "strategy": "CANARY", "canaryConfiguration": {"canaryBakeTimeInMinutes": 0}}});
        assert_eq!(
            words(s, 0),
            "canary: 5%, then 100% at once, ECS's default bake"
        );
        // No canaryConfiguration at all: ECS's defaults.
        let s =
            json!({"deploymentConfiguration": {"strategy": "CANARY", "bakeTimeInMinutes": 120}});
        assert_eq!(
            words(s, 2),
            "canary: 5% for 10 minutes, then 100%, 2-hour bake, 2 gates"
        );
    }

    #[test]
    fn linear_in_words() {
        let s = json!({"deploymentConfiguration": {
            "strategy": "LINEAR", "bakeTimeInMinutes": 2,
            "linearConfiguration": {"stepPercent": 20, "stepBakeTimeInMinutes": 3}}});
        assert_eq!(
            words(s, 1),
            "linear: 20% every 3 minutes (5 steps), 2-minute bake, 1 gate"
        );
        let s = json!({"deploymentConfiguration": {
            "strategy": "LINEAR", "bakeTimeInMinutes": 0,
            "linearConfiguration": {"stepPercent": 33.3, "stepBakeTimeInMinutes": 0}}});
        assert_eq!(
            words(s, 0),
            "linear: 33.3% with no wait between steps (4 steps), no bake"
        );
        let s = json!({"deploymentConfiguration": {
            "strategy": "LINEAR", "linearConfiguration": {"stepPercent": 100}}});
        assert_eq!(
            words(s, 0),
            "linear: 100% every 6 minutes (1 step), ECS's default bake"
        );
        let s = json!({"deploymentConfiguration": {"strategy": "LINEAR", "bakeTimeInMinutes": 1}});
        assert_eq!(
            words(s, 0),
            "linear: 10% every 6 minutes (10 steps), 1-minute bake"
        );
    }

    #[test]
    fn rollout_settings_take_each_member_from_the_file_else_the_live_service() {
        let file = json!({"desiredCount": 2,
            "deploymentConfiguration": {"strategy": "CANARY"}});
        let live = json!({"deploymentController": {"type": "ECS"},
            "deploymentConfiguration": {"strategy": "ROLLING"}});
        assert_eq!(
            rollout_settings(Some(&file), Some(&live)),
            json!({"deploymentController": {"type": "ECS"},
                   "deploymentConfiguration": {"strategy": "CANARY"}})
        );
        assert_eq!(rollout_settings(None, Some(&live)), live);
        assert_eq!(rollout_settings(None, None), json!({}));
    }
}
