//! Blue/green, canary and linear deployments: the stage machine of a service deployment that
//! scales up a green revision beside the blue one, shifts test and production traffic through
//! listener-rule weights, bakes, and cleans up — with lifecycle hooks (PAUSE, AWS_LAMBDA) and
//! rollback onto the blue tasks.
//!
//! Production traffic moves in steps (blue/green: one step of 100%; canary: canaryPercent, then
//! 100; linear: stepPercent, 2 x stepPercent, ... 100). Each step runs the
//! PRE_PRODUCTION_TRAFFIC_SHIFT hooks, shifts, runs the PRODUCTION_TRAFFIC_SHIFT hooks, then
//! bakes for the step bake time unless it reached 100%. Every invocation of a stage's hooks is a
//! new run with its own hookId in `lifecycleHookDetails`.
//!
//! Receives calls from the scheduler (`World::reconcile`) and from ContinueServiceDeployment;
//! hands on task starts/stops, weight changes on the ELBv2 model, and service deployment state.

use serde_json::{Value, json};

use super::model::{BgState, Deployment, HookRun};
use super::{World, task_list};
use crate::api::ApiError;
use crate::faults::ImageFault;
use crate::util::ts;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Act {
    None,
    ScaleUp,
    TestShift,
    /// One production traffic shift step (blue/green: all of it at once).
    ProdShift,
    /// Canary/linear: wait the step bake time, then go back to `PRE_SHIFT_STEP` for the next
    /// step; at 100% go on.
    StepBake,
    Bake,
    CleanUp,
}

/// (lifecycle stage shown, hook stage run after the action, action)
///
/// The stage shown is always a value of the SDK's `ServiceDeploymentLifecycleStage` enum
/// (aws-sdk-ecs 1.157): PRE_PRODUCTION_TRAFFIC_SHIFT is a hook stage only, so the deployment
/// shows PRODUCTION_TRAFFIC_SHIFT while those hooks run.
const STEPS: [(&str, Option<&str>, Act); 12] = [
    ("RECONCILE_SERVICE", Some("RECONCILE_SERVICE"), Act::None),
    ("PRE_SCALE_UP", Some("PRE_SCALE_UP"), Act::None),
    ("SCALE_UP", None, Act::ScaleUp),
    ("POST_SCALE_UP", Some("POST_SCALE_UP"), Act::None),
    (
        "TEST_TRAFFIC_SHIFT",
        Some("TEST_TRAFFIC_SHIFT"),
        Act::TestShift,
    ),
    (
        "POST_TEST_TRAFFIC_SHIFT",
        Some("POST_TEST_TRAFFIC_SHIFT"),
        Act::None,
    ),
    (
        "PRODUCTION_TRAFFIC_SHIFT",
        Some("PRE_PRODUCTION_TRAFFIC_SHIFT"),
        Act::None,
    ),
    (
        "PRODUCTION_TRAFFIC_SHIFT",
        Some("PRODUCTION_TRAFFIC_SHIFT"),
        Act::ProdShift,
    ),
    ("PRODUCTION_TRAFFIC_SHIFT", None, Act::StepBake),
    (
        "POST_PRODUCTION_TRAFFIC_SHIFT",
        Some("POST_PRODUCTION_TRAFFIC_SHIFT"),
        Act::None,
    ),
    ("BAKE_TIME", None, Act::Bake),
    ("CLEAN_UP", None, Act::CleanUp),
];

/// The step each production traffic shift step starts at: "For linear and canary deployments,
/// [PRE_PRODUCTION_TRAFFIC_SHIFT] is invoked before every traffic shift step" and
/// PRODUCTION_TRAFFIC_SHIFT "at every traffic shift step" (DeploymentLifecycleHook, aws-sdk-ecs
/// 1.157).
const PRE_SHIFT_STEP: usize = 6;

/// How long an AWS_LAMBDA hook takes to answer (virtual seconds).
const LAMBDA_LATENCY: f64 = 3.0;
/// Default hook timeout when none is configured (minutes): "Default: 1440 (24 hours)"
/// (DeploymentLifecycleHookTimeoutConfiguration.timeoutInMinutes, aws-sdk-ecs 1.157).
const DEFAULT_HOOK_TIMEOUT_MIN: f64 = 1440.0;

/// Production traffic steps of a strategy: (first step, later steps, bake between steps in s).
/// Defaults from CanaryConfiguration / LinearConfiguration (aws-sdk-ecs 1.157): canary 5% and
/// 10 min, linear 10% and 6 min; the step bake is not applied after 100%.
fn shift_plan(strategy: &str, cfg: &Value) -> (i64, i64, f64) {
    let num = |path: &str, dflt: f64| cfg.pointer(path).and_then(Value::as_f64).unwrap_or(dflt);
    match strategy {
        "CANARY" => {
            let pct = num("/canaryConfiguration/canaryPercent", 5.0);
            (
                (pct.round() as i64).clamp(1, 100),
                100,
                num("/canaryConfiguration/canaryBakeTimeInMinutes", 10.0) * 60.0,
            )
        }
        "LINEAR" => {
            let pct = (num("/linearConfiguration/stepPercent", 10.0).round() as i64).clamp(1, 100);
            (
                pct,
                pct,
                num("/linearConfiguration/stepBakeTimeInMinutes", 6.0) * 60.0,
            )
        }
        _ => (100, 100, 0.0),
    }
}

/// What the action of a stage came to (`World::bg_action`).
enum ActOutcome {
    /// Done: on to the next step, or to the one given.
    Next(Option<usize>),
    /// Not yet: the stage waits for a later reconcile.
    Wait,
    /// The clean-up is over and the deployment completed.
    Completed,
}

enum HookVerdict {
    Done,
    Pending(Option<f64>),
    Failed(String),
}

impl World {
    /// Scheduler for a blue/green-like primary deployment in progress.
    pub(crate) fn reconcile_bg(&mut self, key: &str) {
        let now = self.now;
        let Some(s) = self.services.get(key) else {
            return;
        };
        let Some(p) = s.deployments.first().cloned() else {
            return;
        };
        let desired = s.desired;
        let next_launch_at = s.next_launch_at;
        let cluster = s.cluster.clone();
        let name = s.name.clone();
        let live = self
            .svc_tasks(key)
            .filter(|t| {
                t.live()
                    && t.deployment.as_deref() == Some(p.id.as_str())
                    && t.service.as_deref() == Some(key)
            })
            .count() as i64;
        if p.launching && live < desired {
            if now >= next_launch_at {
                let mut started = Vec::new();
                for _ in live..desired {
                    started.push(self.start_task(
                        &cluster,
                        Some(key),
                        &format!("service:{name}"),
                        Some(p.id.clone()),
                        Some(p.id.clone()),
                        &p.task_def,
                        &p.launch_type,
                        Vec::new(),
                    ));
                }
                let list = task_list(&started);
                self.new_event(
                    key,
                    format!(
                        "(service {name}) has started {} tasks: {list}.",
                        started.len()
                    ),
                );
            } else {
                self.schedule_reconcile(key, next_launch_at);
            }
        }
        self.advance_bg(key);
    }

    fn set_weights(&mut self, key: &str, green_pct: i64, prod: bool, test: bool) {
        let Some(p) = self.services.get(key).and_then(|s| s.deployments.first()) else {
            return;
        };
        for b in p.bindings.clone() {
            let Some(other) = &b.other else { continue };
            let w = vec![
                (b.tg.clone(), green_pct as i32),
                (other.clone(), (100 - green_pct) as i32),
            ];
            if prod && let Some(r) = &b.prod_rule {
                let _ = self.elbv2.set_forward_weights(r, &w);
            }
            if test && let Some(r) = &b.test_rule {
                let _ = self.elbv2.set_forward_weights(r, &w);
            }
        }
    }

    fn green_healthy(&self, key: &str, dep: &str) -> i64 {
        self.svc_tasks(key)
            .filter(|t| t.deployment.as_deref() == Some(dep))
            .filter(|t| {
                t.last_status == "RUNNING"
                    && t.live()
                    && (t.plan.health_check.is_none() || t.health == "HEALTHY")
                    && (t.targets.is_empty() || t.elb_healthy)
            })
            .count() as i64
    }

    /// Walk the stage machine as far as it can go now.
    fn advance_bg(&mut self, key: &str) {
        for _ in 0..512 {
            let now = self.now;
            let Some(s) = self.services.get(key) else {
                return;
            };
            let Some(p) = s.deployments.first().cloned() else {
                return;
            };
            let desired = s.desired;
            let Some(sd) = self.sds.get(&p.sd) else {
                return;
            };
            if sd.status != "IN_PROGRESS" {
                return;
            }
            let cfg = sd.config.clone();
            // RECONCILE_SERVICE "only happens when you start a new service deployment with more
            // than 1 service revision in an ACTIVE state" (DeploymentLifecycleHook).
            let reconciles = sd.source_revisions.len() > 1;
            let mut bg = sd.bg.clone().unwrap_or_default();
            let Some(&(stage, hook_stage, act)) = STEPS.get(bg.step) else {
                return;
            };
            if let Some(sd) = self.sds.get_mut(&p.sd) {
                sd.lifecycle_stage = Some(stage.to_string());
                sd.updated_at = now;
            }
            let mut next_step = bg.step + 1;
            if !bg.action_done {
                match self.bg_action(key, &p, act, &mut bg, &cfg, desired) {
                    ActOutcome::Next(n) => next_step = n.unwrap_or(next_step),
                    ActOutcome::Wait => {
                        self.save_bg(&p.sd, bg);
                        return;
                    }
                    ActOutcome::Completed => return,
                }
                bg.action_done = true;
                bg.wait_until = None;
            }
            let hook_stage = hook_stage.filter(|h| *h != "RECONCILE_SERVICE" || reconciles);
            if let Some(hs) = hook_stage {
                if !bg.hooks_started {
                    bg.hooks_started = true;
                    bg.step_hooks = self.start_hooks(&p.sd, hs, &p.task_def);
                }
                self.save_bg(&p.sd, bg.clone());
                match self.eval_hooks(&p.sd, &bg.step_hooks) {
                    HookVerdict::Done => {}
                    HookVerdict::Pending(at) => {
                        if let Some(at) = at {
                            self.schedule_reconcile(key, at);
                        }
                        return;
                    }
                    HookVerdict::Failed(reason) => {
                        self.rollback_bg(key, "lifecycle hook failed", &reason);
                        return;
                    }
                }
            }
            bg.step = next_step;
            bg.action_done = false;
            bg.hooks_started = false;
            bg.step_hooks.clear();
            bg.wait_until = None;
            self.save_bg(&p.sd, bg);
        }
        // Many steps with nothing to wait for: go on in a moment rather than stall.
        let now = self.now;
        self.schedule_reconcile(key, now);
    }

    /// The action of a stage: done (going on to the next step, or back to the next traffic
    /// shift step), not yet (wait for a later reconcile), or the deployment completed.
    fn bg_action(
        &mut self,
        key: &str,
        p: &Deployment,
        act: Act,
        bg: &mut BgState,
        cfg: &Value,
        desired: i64,
    ) -> ActOutcome {
        let now = self.now;
        let (first, step, step_bake) = shift_plan(&p.strategy, cfg);
        let mut next = None;
        let mut done = true;
        match act {
            Act::None => {}
            Act::ScaleUp => done = self.green_healthy(key, &p.id) >= desired,
            Act::TestShift => self.set_weights(key, 100, false, true),
            Act::ProdShift => {
                bg.weight = if bg.weight == 0 {
                    first
                } else {
                    bg.weight + step
                }
                .clamp(1, 100);
                self.set_weights(key, bg.weight, true, false);
                let name = self.svc_name(key);
                self.new_event(key, format!("(service {name}) (deployment {}) shifted {}% of production traffic to the new revision.", p.id, bg.weight));
            }
            Act::StepBake => {
                if bg.weight < 100 {
                    let until = *bg.wait_until.get_or_insert(now + step_bake);
                    if now < until {
                        done = false;
                        self.schedule_reconcile(key, until);
                    } else {
                        next = Some(PRE_SHIFT_STEP);
                    }
                }
            }
            Act::Bake => {
                let bake = cfg
                    .get("bakeTimeInMinutes")
                    .and_then(Value::as_f64)
                    .unwrap_or(0.0)
                    * 60.0;
                let until = *bg.wait_until.get_or_insert(now + bake);
                if now < until {
                    done = false;
                    self.schedule_reconcile(key, until);
                }
            }
            Act::CleanUp => {
                if self.clean_up_bg(key, &p.id) {
                    self.save_bg(&p.sd, bg.clone());
                    self.complete(key);
                    return ActOutcome::Completed;
                }
                done = false;
            }
        }
        if done {
            ActOutcome::Next(next)
        } else {
            ActOutcome::Wait
        }
    }

    /// CLEAN_UP: stops the tasks of other deployments; true once none is left.
    fn clean_up_bg(&mut self, key: &str, dep: &str) -> bool {
        let old: Vec<String> = self
            .svc_tasks(key)
            .filter(|t| t.service.as_deref() == Some(key) && t.deployment.as_deref() != Some(dep))
            .filter(|t| t.last_status != "STOPPED")
            .map(|t| t.id.clone())
            .collect();
        let mut stopped = Vec::new();
        for id in &old {
            if self.tasks.get(id).is_some_and(|t| t.live()) {
                self.stop_task(
                    id,
                    "ServiceSchedulerInitiated",
                    &format!("Scaling activity initiated by (deployment {dep})"),
                    false,
                );
                stopped.push(id.clone());
            }
        }
        if !stopped.is_empty() {
            let name = self.svc_name(key);
            let list = task_list(&stopped);
            self.new_event(
                key,
                format!(
                    "(service {name}) has stopped {} running tasks: {list}.",
                    stopped.len()
                ),
            );
        }
        old.is_empty()
    }

    fn svc_name(&self, key: &str) -> String {
        self.services
            .get(key)
            .map(|s| s.name.clone())
            .unwrap_or_default()
    }

    fn save_bg(&mut self, sd_arn: &str, bg: BgState) {
        if let Some(sd) = self.sds.get_mut(sd_arn) {
            sd.bg = Some(bg);
        }
    }

    /// Invoke the hooks configured at `stage`: one new run (and hook id) each, returned.
    fn start_hooks(&mut self, sd_arn: &str, stage: &str, task_def: &str) -> Vec<String> {
        let now = self.now;
        let Some(sd) = self.sds.get(sd_arn) else {
            return Vec::new();
        };
        let hooks = sd
            .config
            .get("lifecycleHooks")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let images: Vec<String> = self
            .find_taskdef(task_def)
            .and_then(|td| {
                td.get("containerDefinitions")
                    .and_then(Value::as_array)
                    .cloned()
            })
            .unwrap_or_default()
            .iter()
            .filter_map(|c| c.get("image").and_then(Value::as_str).map(str::to_string))
            .collect();
        let faults: Vec<ImageFault> = images
            .iter()
            .flat_map(|i| self.faults.for_image(i))
            .collect();
        let mut runs = Vec::new();
        for h in hooks {
            let stages: Vec<&str> = h
                .get("lifecycleStages")
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            if !stages.contains(&stage) {
                continue;
            }
            let target_type = h
                .get("targetType")
                .and_then(Value::as_str)
                .unwrap_or("AWS_LAMBDA")
                .to_string();
            let timeout = h
                .pointer("/timeoutConfiguration/timeoutInMinutes")
                .and_then(Value::as_f64)
                .unwrap_or(DEFAULT_HOOK_TIMEOUT_MIN)
                * 60.0;
            let action = h
                .pointer("/timeoutConfiguration/action")
                .and_then(Value::as_str)
                .unwrap_or("ROLLBACK")
                .to_string();
            let (status, resolve_at, outcome) = if target_type == "PAUSE" {
                ("AWAITING_ACTION", None, "")
            } else if faults.contains(&ImageFault::HookTimeout) {
                ("IN_PROGRESS", None, "")
            } else if faults.contains(&ImageFault::HookFail) {
                ("IN_PROGRESS", Some(now + LAMBDA_LATENCY), "FAILED")
            } else {
                ("IN_PROGRESS", Some(now + LAMBDA_LATENCY), "SUCCEEDED")
            };
            // Pause hook ids look like AWS's example ("ecs-pause-" and 43 URL-safe characters,
            // "Pause hooks for Amazon ECS service deployments"); Lambda hook ids are not
            // documented.
            let hook_id = if target_type == "PAUSE" {
                format!("ecs-pause-{}", self.rng.url_safe(43))
            } else {
                self.rng.hex(32)
            };
            runs.push(HookRun {
                hook_id,
                target_type,
                target_arn: h
                    .get("hookTargetArn")
                    .and_then(Value::as_str)
                    .map(str::to_string),
                stage: stage.to_string(),
                status: status.to_string(),
                expires_at: now + timeout,
                timeout_action: action,
                resolve_at,
                outcome: outcome.to_string(),
            });
        }
        let ids = runs.iter().map(|r| r.hook_id.clone()).collect();
        if let Some(sd) = self.sds.get_mut(sd_arn) {
            sd.hooks.extend(runs);
        }
        ids
    }

    /// Settle the hook runs `ids`: answered Lambdas, timeouts; the step's verdict.
    fn eval_hooks(&mut self, sd_arn: &str, ids: &[String]) -> HookVerdict {
        let now = self.now;
        let Some(sd) = self.sds.get_mut(sd_arn) else {
            return HookVerdict::Done;
        };
        let mut next: Option<f64> = None;
        let mut failed = None;
        let mut pending = false;
        for h in sd.hooks.iter_mut().filter(|h| ids.contains(&h.hook_id)) {
            if h.status == "IN_PROGRESS" && h.resolve_at.is_some_and(|at| now >= at) {
                h.status = h.outcome.clone();
            }
            if (h.status == "IN_PROGRESS" || h.status == "AWAITING_ACTION") && now >= h.expires_at {
                h.status = "TIMED_OUT".into();
            }
            let stage = &h.stage;
            match h.status.as_str() {
                "IN_PROGRESS" | "AWAITING_ACTION" => {
                    pending = true;
                    let at = h.resolve_at.unwrap_or(h.expires_at).min(h.expires_at);
                    next = Some(next.map_or(at, |n: f64| n.min(at)));
                }
                "FAILED" => {
                    failed.get_or_insert(format!(
                        "Lifecycle hook {} failed at stage {stage}.",
                        h.hook_id
                    ));
                }
                "TIMED_OUT" if h.timeout_action != "CONTINUE" => {
                    failed.get_or_insert(format!(
                        "Lifecycle hook {} timed out at stage {stage}.",
                        h.hook_id
                    ));
                }
                _ => {}
            }
        }
        if let Some(f) = failed {
            HookVerdict::Failed(f)
        } else if pending {
            HookVerdict::Pending(next)
        } else {
            HookVerdict::Done
        }
    }

    /// ContinueServiceDeployment: answer the PAUSE hook `hook_id` awaiting action. CONTINUE
    /// lets the deployment go on once every hook of the stage is done; ROLLBACK rolls the
    /// deployment back onto the source revision's tasks at once.
    pub fn continue_hook(
        &mut self,
        sd_arn: &str,
        hook_id: &str,
        action: &str,
    ) -> Result<(), ApiError> {
        let Some(sd) = self.sds.get_mut(sd_arn) else {
            return Err(ApiError::client(
                "ServiceDeploymentNotFoundException",
                "The service deployment does not exist.",
            ));
        };
        // "The deployment must be in the IN_PROGRESS state" and "The pause hook must be in
        // AWAITING_ACTION status" (Continuing service deployments, Amazon ECS developer guide).
        // Which error ECS returns is not documented: the operation lists ClientException and
        // InvalidParameterException; a hookId that cannot be acted on is an invalid parameter.
        if sd.status != "IN_PROGRESS" {
            return Err(ApiError::client(
                "InvalidParameterException",
                format!(
                    "The service deployment is {}: only an IN_PROGRESS service deployment can be continued or rolled back.",
                    sd.status
                ),
            ));
        }
        let Some(h) = sd.hooks.iter_mut().find(|h| h.hook_id == hook_id) else {
            return Err(ApiError::client(
                "InvalidParameterException",
                format!("Lifecycle hook {hook_id} does not exist in this service deployment."),
            ));
        };
        if h.status != "AWAITING_ACTION" {
            return Err(ApiError::client(
                "InvalidParameterException",
                format!(
                    "Lifecycle hook {hook_id} is {}, not AWAITING_ACTION.",
                    h.status
                ),
            ));
        }
        let stage = h.stage.clone();
        h.status = if action == "ROLLBACK" {
            "FAILED"
        } else {
            "SUCCEEDED"
        }
        .into();
        let key = sd.service_key.clone();
        if action == "ROLLBACK" {
            self.rollback_bg(
                &key,
                "rollback requested",
                &format!(
                    "Service deployment rolled back by a ContinueServiceDeployment request at lifecycle hook {hook_id} (stage {stage})."
                ),
            );
        } else {
            self.reconcile(&key);
        }
        Ok(())
    }

    /// Roll a blue/green-like deployment back: traffic to blue, blue PRIMARY again, green stopped.
    pub(crate) fn rollback_bg(&mut self, key: &str, short: &str, reason: &str) {
        let now = self.now;
        let name = self
            .services
            .get(key)
            .map(|s| s.name.clone())
            .unwrap_or_default();
        let Some(s) = self.services.get_mut(key) else {
            return;
        };
        if s.deployments.len() < 2 {
            return;
        }
        let mut green = s.deployments.remove(0);
        let sd_arn = green.sd.clone();
        green.rollout_state = "FAILED".into();
        green.rollout_reason = Some(reason.to_string());
        green.status = "ACTIVE".into();
        green.launching = false;
        green.updated_at = now;
        let green_id = green.id.clone();
        // As ECS rolls back: blue, the deployment in COMPLETED state, goes back to IN_PROGRESS
        // (same id) and carries the failed service deployment until it completes again.
        let desired = s.desired;
        let blue = &mut s.deployments[0];
        blue.status = "PRIMARY".into();
        blue.launching = true;
        blue.updated_at = now;
        blue.rollout_state = "IN_PROGRESS".into();
        blue.rollout_reason = Some(format!("ECS deployment {} in progress.", blue.id));
        blue.failed_tasks = 0;
        blue.desired = desired;
        blue.sd = sd_arn.clone();
        let blue_id = blue.id.clone();
        let blue_td = blue.task_def.clone();
        let blue_rev = blue.revision.clone();
        let blue_bindings = blue.bindings.clone();
        s.deployments.insert(1, green);
        s.task_def = blue_td;
        s.steady = false;
        for b in blue_bindings {
            let mut w = vec![(b.tg.clone(), 100)];
            if let Some(o) = &b.other {
                w.push((o.clone(), 0));
            }
            for r in [&b.prod_rule, &b.test_rule].into_iter().flatten() {
                let _ = self.elbv2.set_forward_weights(r, &w);
            }
        }
        if let Some(sd) = self.sds.get_mut(&sd_arn) {
            sd.status = "ROLLBACK_IN_PROGRESS".into();
            sd.rollback = Some(
                json!({"reason": reason, "startedAt": ts(now), "serviceRevisionArn": blue_rev}),
            );
            sd.lifecycle_stage = Some("PRODUCTION_TRAFFIC_SHIFT".into());
            sd.deployment_id = blue_id.clone();
            sd.updated_at = now;
        }
        self.new_event(
            key,
            format!("(service {name}) (deployment {green_id}) deployment failed: {short}."),
        );
        self.new_event(
            key,
            format!(
                "(service {name}) (deployment {green_id}) rolling back to deployment {blue_id}."
            ),
        );
        self.reconcile(key);
    }
}
