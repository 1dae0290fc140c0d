//! When a deployment fails: failed tasks counted by the circuit breaker, alarms, and the
//! rollback ECS does (back to the last COMPLETED deployment, or onto a revision when
//! StopServiceDeployment asks for a rollback).
//!
//! Receives task failures from the task lifecycle and alarm states from the faults; hands on
//! deployment and service deployment states, and the scheduler's next run.

use serde_json::{Value, json};

use super::World;
use super::model::Deployment;
use crate::util::ts;

impl World {
    /// A task of `dep` failed: count it, back off launches, trip the circuit breaker.
    pub(super) fn on_task_failed(&mut self, key: &str, dep: &str, _task: &str) {
        let now = self.now;
        let Some(s) = self.services.get_mut(key) else {
            return;
        };
        s.consecutive_failures = s.consecutive_failures.saturating_add(1);
        let backoff = (5.0 * 2f64.powi(s.consecutive_failures.min(6) as i32 - 1)).min(120.0);
        s.next_launch_at = now + backoff;
        let cb = s
            .deployment_configuration
            .get("deploymentCircuitBreaker")
            .cloned();
        let desired = s.desired;
        let Some(pos) = s.deployments.iter().position(|d| d.id == dep) else {
            return;
        };
        let d = &mut s.deployments[pos];
        d.failed_tasks += 1;
        d.updated_at = now;
        let enabled = cb
            .as_ref()
            .and_then(|c| c.get("enable"))
            .and_then(Value::as_bool)
            .unwrap_or(false);
        if pos != 0 || d.rollout_state != "IN_PROGRESS" || !enabled {
            return;
        }
        let threshold = cb_threshold(cb.as_ref(), desired);
        let failed = d.failed_tasks;
        let sd_arn = d.sd.clone();
        if let Some(sd) = self.sds.get_mut(&sd_arn) {
            sd.cb_threshold = threshold;
            sd.cb_failures = failed;
        }
        if failed >= threshold {
            let rollback = cb
                .as_ref()
                .and_then(|c| c.get("rollback"))
                .and_then(Value::as_bool)
                .unwrap_or(false);
            self.fail_deployment(
                key,
                "tasks failed to start",
                "ECS deployment circuit breaker: tasks failed to start.",
                rollback,
                true,
            );
        }
    }

    /// Mark the primary deployment FAILED; roll back when asked and possible.
    pub fn fail_deployment(
        &mut self,
        key: &str,
        short: &str,
        reason: &str,
        rollback: bool,
        breaker: bool,
    ) {
        let now = self.now;
        let name = self.svc_label(key);
        let bg = self
            .services
            .get(key)
            .and_then(|s| s.deployments.first())
            .is_some_and(|d| {
                d.strategy != "ROLLING"
                    && !d.strategy.is_empty()
                    && d.rollout_state == "IN_PROGRESS"
            });
        if bg && rollback {
            if let Some(sd) = self
                .services
                .get(key)
                .and_then(|s| s.deployments.first())
                .and_then(|d| self.sds.get_mut(&d.sd))
                && breaker
            {
                sd.cb_status = "TRIGGERED".into();
            }
            self.rollback_bg(key, short, reason);
            return;
        }
        let Some(s) = self.services.get_mut(key) else {
            return;
        };
        let Some(d) = s.deployments.first_mut() else {
            return;
        };
        if d.rollout_state != "IN_PROGRESS" {
            return;
        }
        d.rollout_state = "FAILED".into();
        d.rollout_reason = Some(reason.to_string());
        d.updated_at = now;
        let dep_id = d.id.clone();
        let sd_arn = d.sd.clone();
        let was_rollback = self
            .sds
            .get(&sd_arn)
            .is_some_and(|sd| sd.status == "ROLLBACK_IN_PROGRESS");
        self.new_event(
            key,
            format!("(service {name}) (deployment {dep_id}) deployment failed: {short}."),
        );
        if let Some(sd) = self.sds.get_mut(&sd_arn) {
            if breaker {
                sd.cb_status = "TRIGGERED".into();
            }
            sd.updated_at = now;
        }
        // ECS rolls back to the most recent deployment in COMPLETED state; without one, "the
        // circuit breaker does not launch new tasks and the deployment is stalled" (AWS, "How
        // the Amazon ECS deployment circuit breaker detects failures").
        let target = self.completed_deployment(key);
        match (rollback && !was_rollback, target) {
            (true, Some(prev)) => self.roll_back_to_deployment(key, &prev, reason),
            (true, None) | (false, _) => {
                if let Some(s) = self.services.get_mut(key)
                    && let Some(d) = s.deployments.first_mut()
                {
                    d.launching = false;
                }
                if let Some(sd) = self.sds.get_mut(&sd_arn) {
                    if was_rollback {
                        sd.status = "ROLLBACK_FAILED".into();
                    } else if rollback {
                        sd.status = "ROLLBACK_FAILED".into();
                        sd.status_reason = Some(format!(
                            "{reason} No deployment in COMPLETED state to roll back to."
                        ));
                    } else {
                        sd.status = "STOPPED".into();
                        sd.status_reason = Some(reason.to_string());
                    }
                    sd.stopped_at = Some(now);
                    sd.finished_at = Some(now);
                    sd.lifecycle_stage = None;
                }
            }
        }
    }

    /// The most recent deployment in COMPLETED state other than the primary: the one ECS rolls
    /// back to.
    pub fn completed_deployment(&self, key: &str) -> Option<String> {
        self.services
            .get(key)?
            .deployments
            .iter()
            .skip(1)
            .find(|d| d.rollout_state == "COMPLETED")
            .map(|d| d.id.clone())
    }

    /// Roll the (already FAILED) primary back as ECS does: the earlier deployment `prev` (same
    /// id) moves from COMPLETED back to IN_PROGRESS and becomes PRIMARY again, carrying the
    /// failed service deployment (ROLLBACK_IN_PROGRESS). Its tasks that still run are kept; the
    /// scheduler launches only the ones missing to reach the desired count, and stops the failed
    /// deployment's tasks. The failed deployment stays ACTIVE (FAILED) until its tasks are gone.
    pub fn roll_back_to_deployment(&mut self, key: &str, prev: &str, reason: &str) {
        let now = self.now;
        let name = self.svc_label(key);
        let Some(s) = self.services.get_mut(key) else {
            return;
        };
        let Some(pos) = s.deployments.iter().position(|d| d.id == prev) else {
            return;
        };
        if pos == 0 {
            return;
        }
        let failed = &mut s.deployments[0];
        failed.status = "ACTIVE".into();
        failed.launching = false;
        failed.updated_at = now;
        failed.rollout_reason = Some(format!("{reason} Rolling back to deployment {prev}."));
        let failed_id = failed.id.clone();
        let sd_arn = failed.sd.clone();
        let mut d = s.deployments.remove(pos);
        d.status = "PRIMARY".into();
        d.rollout_state = "IN_PROGRESS".into();
        d.rollout_reason = Some(format!("ECS deployment {prev} in progress."));
        d.launching = true;
        d.failed_tasks = 0;
        d.desired = s.desired;
        d.updated_at = now;
        d.sd = sd_arn.clone();
        let revision = d.revision.clone();
        s.task_def = d.task_def.clone();
        s.network = d.network.clone();
        s.launch_type = d.launch_type.clone();
        s.platform_version = d.platform_version.clone();
        s.deployments.insert(0, d);
        s.next_launch_at = now;
        s.consecutive_failures = 0;
        s.steady = false;
        if let Some(sd) = self.sds.get_mut(&sd_arn) {
            sd.status = "ROLLBACK_IN_PROGRESS".into();
            sd.rollback = Some(
                json!({"reason": reason, "startedAt": ts(now), "serviceRevisionArn": revision}),
            );
            sd.deployment_id = prev.to_string();
            sd.updated_at = now;
        }
        self.new_event(
            key,
            format!("(service {name}) (deployment {failed_id}) rolling back to deployment {prev}."),
        );
        self.reconcile(key);
    }

    /// Start a new PRIMARY deployment back on `revision`, carried by the same service deployment.
    /// Only for StopServiceDeployment ROLLBACK when the source revision's deployment is no
    /// longer in `deployments[]` (see `roll_back_to_deployment` for the usual path).
    pub fn start_rollback(&mut self, key: &str, revision: &str, reason: &str) {
        let now = self.now;
        let name = self.svc_label(key);
        let Some(rev) = self.revisions.get(revision).cloned() else {
            return;
        };
        let id = format!("ecs-svc/{}", self.rng.digits(19));
        let Some(s) = self.services.get_mut(key) else {
            return;
        };
        let Some(old) = s.deployments.first_mut() else {
            return;
        };
        old.status = "ACTIVE".into();
        old.launching = false;
        let old_id = old.id.clone();
        let sd_arn = old.sd.clone();
        let d = Deployment {
            id: id.clone(),
            status: "PRIMARY".into(),
            task_def: rev.task_def.clone(),
            revision: rev.arn.clone(),
            sd: sd_arn.clone(),
            desired: s.desired,
            failed_tasks: 0,
            created_at: now,
            updated_at: now,
            rollout_state: "IN_PROGRESS".into(),
            rollout_reason: Some(format!("ECS deployment {id} in progress.")),
            launch_type: rev.launch_type.clone(),
            platform_version: rev.platform_version.clone(),
            network: rev.network.clone(),
            launching: true,
            strategy: "ROLLING".into(),
            bindings: old.bindings.clone(),
        };
        s.deployments.insert(0, d);
        s.task_def = rev.task_def.clone();
        s.network = rev.network.clone();
        s.next_launch_at = now;
        s.consecutive_failures = 0;
        s.steady = false;
        if let Some(sd) = self.sds.get_mut(&sd_arn) {
            sd.status = "ROLLBACK_IN_PROGRESS".into();
            sd.rollback = Some(
                json!({"reason": reason, "startedAt": ts(now), "serviceRevisionArn": rev.arn}),
            );
            sd.deployment_id = id.clone();
            sd.updated_at = now;
        }
        if let Some(s) = self.services.get_mut(key)
            && let Some(old) = s.deployments.get_mut(1)
        {
            old.rollout_reason = Some(format!("{reason} Rolling back to deployment {id}."));
        }
        self.new_event(
            key,
            format!("(service {name}) (deployment {old_id}) rolling back to deployment {id}."),
        );
        self.reconcile(key);
    }

    /// Roll back in-progress deployments whose watched alarms are in ALARM.
    pub fn check_alarms(&mut self) {
        let firing: Vec<String> = self
            .faults
            .alarms
            .iter()
            .filter(|(_, st)| st.as_str() == "ALARM")
            .map(|(n, _)| n.clone())
            .collect();
        if firing.is_empty() {
            return;
        }
        let keys: Vec<String> = self.services.keys().cloned().collect();
        for key in keys {
            let Some(s) = self.services.get(&key) else {
                continue;
            };
            let Some(d) = s.deployments.first() else {
                continue;
            };
            if d.rollout_state != "IN_PROGRESS" {
                continue;
            }
            let alarms = s
                .deployment_configuration
                .get("alarms")
                .cloned()
                .unwrap_or(Value::Null);
            if !alarms
                .get("enable")
                .and_then(Value::as_bool)
                .unwrap_or(false)
            {
                continue;
            }
            let names: Vec<String> = alarms
                .get("alarmNames")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default();
            let hit: Vec<String> = names.into_iter().filter(|n| firing.contains(n)).collect();
            if hit.is_empty() {
                continue;
            }
            let rollback = alarms
                .get("rollback")
                .and_then(Value::as_bool)
                .unwrap_or(false);
            let sd_arn = d.sd.clone();
            if let Some(sd) = self.sds.get_mut(&sd_arn) {
                if sd.status == "ROLLBACK_IN_PROGRESS" {
                    continue;
                }
                sd.alarms_status = "TRIGGERED".into();
                sd.triggered_alarms = hit.clone();
            }
            let reason = format!("One or more alarms in ALARM state: {}.", hit.join(", "));
            self.fail_deployment(&key, "alarm detected", &reason, rollback, false);
        }
    }
}

/// The circuit breaker threshold for a desired count.
pub fn cb_threshold(cb: Option<&Value>, desired: i64) -> i64 {
    let tc = cb.and_then(|c| c.get("thresholdConfiguration"));
    let kind = tc
        .and_then(|t| t.get("type"))
        .and_then(Value::as_str)
        .unwrap_or("BOUNDED_PERCENT");
    let value = tc
        .and_then(|t| t.get("value"))
        .and_then(Value::as_i64)
        .unwrap_or(50);
    let pct = |v: i64| desired.saturating_mul(v).saturating_add(99).div_euclid(100);
    match kind {
        "COUNT" => value.max(1),
        "UNBOUNDED_PERCENT" => pct(value).max(1),
        _ => pct(value).clamp(3, 200),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn threshold_follows_aws_rule() {
        assert_eq!(cb_threshold(None, 1), 3);
        assert_eq!(cb_threshold(None, 10), 5);
        assert_eq!(cb_threshold(None, 11), 6);
        assert_eq!(cb_threshold(None, 1000), 200);
        let c = json!({"thresholdConfiguration": {"type": "COUNT", "value": 7}});
        assert_eq!(cb_threshold(Some(&c), 2), 7);
    }
}
