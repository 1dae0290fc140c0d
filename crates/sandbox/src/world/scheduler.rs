//! The service scheduler of a rolling deployment: starts and stops tasks within
//! `minimumHealthyPercent` and `maximumPercent`, drains a deleted service, keeps deployment
//! counts and lifecycle stages current and completes the primary deployment.
//!
//! Receives a service key whenever something about the service may have changed; blue/green,
//! canary and linear deployments go to [`super::strategy`].

use std::collections::BTreeMap;

use serde_json::Value;

use super::model::Task;
use super::{World, task_list};

impl World {
    fn task_healthy(&self, t: &Task) -> bool {
        t.last_status == "RUNNING"
            && t.live()
            && (t.plan.health_check.is_none() || t.health == "HEALTHY")
            && (t.targets.is_empty() || t.elb_healthy)
    }

    /// Tasks of a service by deployment: (live ids, healthy count).
    fn census(&self, key: &str) -> BTreeMap<String, (Vec<String>, i64, i64, i64)> {
        // deployment -> (live task ids, healthy, running, pending)
        let mut out: BTreeMap<String, (Vec<String>, i64, i64, i64)> = BTreeMap::new();
        let Some(s) = self.services.get(key) else {
            return out;
        };
        for d in &s.deployments {
            out.entry(d.id.clone()).or_default();
        }
        for t in self.svc_tasks(key) {
            let Some(dep) = &t.deployment else { continue };
            let e = out.entry(dep.clone()).or_default();
            if t.live() {
                e.0.push(t.id.clone());
                if self.task_healthy(t) {
                    e.1 += 1;
                }
            }
            if t.last_status == "RUNNING" {
                e.2 += 1;
            } else if t.last_status == "PROVISIONING" || t.last_status == "PENDING" {
                e.3 += 1;
            }
        }
        out
    }

    /// The service scheduler: start, stop and complete, honouring the deployment configuration.
    pub fn reconcile(&mut self, key: &str) {
        let now = self.now;
        let Some(s) = self.services.get(key) else {
            return;
        };
        if s.status == "INACTIVE" {
            return;
        }
        let name = s.name.clone();
        let census = self.census(key);
        if s.status == "DRAINING" {
            let live: Vec<String> = census.values().flat_map(|c| c.0.clone()).collect();
            let any_left = self.svc_tasks(key).any(|t| t.last_status != "STOPPED");
            for id in live {
                self.stop_task(
                    &id,
                    "ServiceSchedulerInitiated",
                    "Service is being deleted",
                    false,
                );
            }
            if !any_left && let Some(s) = self.services.get_mut(key) {
                s.status = "INACTIVE".into();
                s.deployments.clear();
            }
            return;
        }
        let Some(primary) = s.deployments.first().cloned() else {
            return;
        };
        let bg_running = primary.strategy != "ROLLING"
            && !primary.strategy.is_empty()
            && primary.rollout_state == "IN_PROGRESS"
            && self
                .sds
                .get(&primary.sd)
                .is_some_and(|sd| sd.status == "IN_PROGRESS");
        if bg_running {
            self.reconcile_bg(key);
            return;
        }
        let desired = s.desired;
        let cfg = &s.deployment_configuration;
        let max_pct = cfg
            .get("maximumPercent")
            .and_then(Value::as_i64)
            .unwrap_or(200);
        let min_pct = cfg
            .get("minimumHealthyPercent")
            .and_then(Value::as_i64)
            .unwrap_or(100);
        let max_total = desired.saturating_mul(max_pct).div_euclid(100).max(1);
        let min_healthy = desired
            .saturating_mul(min_pct)
            .saturating_add(99)
            .div_euclid(100);
        let next_launch_at = s.next_launch_at;
        let old_ids: Vec<String> = s.deployments.iter().skip(1).map(|d| d.id.clone()).collect();

        let empty = (Vec::new(), 0, 0, 0);
        let p = census.get(&primary.id).unwrap_or(&empty);
        let mut healthy_total: i64 = census.values().map(|c| c.1).sum();
        let mut live_total: i64 = census.values().map(|c| c.0.len() as i64).sum();
        let mut stops: Vec<String> = Vec::new();
        let mut started: Vec<String> = Vec::new();

        if primary.launching || !old_ids.is_empty() {
            // Old deployments' tasks: unhealthy ones go at once, healthy ones while the floor holds.
            let mut old: Vec<&Task> = old_ids
                .iter()
                .filter_map(|d| census.get(d))
                .flat_map(|c| c.0.iter())
                .filter_map(|id| self.tasks.get(id))
                .collect();
            old.sort_by(|a, b| {
                self.task_healthy(a)
                    .cmp(&self.task_healthy(b))
                    .then(a.created_at.total_cmp(&b.created_at))
            });
            for t in old {
                let healthy = self.task_healthy(t);
                if !primary.launching && healthy {
                    // Failed deployment without rollback: keep the old tasks serving.
                    continue;
                }
                if !healthy {
                    stops.push(t.id.clone());
                    live_total -= 1;
                } else if healthy_total > min_healthy {
                    stops.push(t.id.clone());
                    healthy_total -= 1;
                    live_total -= 1;
                }
            }
        }
        if primary.launching {
            let plive = p.0.len() as i64;
            if plive > desired {
                // Scale in: stop the newest extras, unhealthy first.
                let mut extra: Vec<&Task> =
                    p.0.iter().filter_map(|id| self.tasks.get(id)).collect();
                extra.sort_by(|a, b| {
                    self.task_healthy(a)
                        .cmp(&self.task_healthy(b))
                        .then(b.created_at.total_cmp(&a.created_at))
                });
                for t in extra.into_iter().take((plive - desired) as usize) {
                    stops.push(t.id.clone());
                }
            } else if plive < desired {
                // Headroom under maximumPercent; with maximumPercent 100 the old tasks make room.
                let room = (max_total - live_total).max(0);
                let n = (desired - plive).min(room);
                if n > 0 {
                    if now >= next_launch_at {
                        for _ in 0..n {
                            started.push(self.start_task(
                                &s_cluster(self, key),
                                Some(key),
                                &format!("service:{name}"),
                                Some(primary.id.clone()),
                                Some(primary.id.clone()),
                                &primary.task_def,
                                &primary.launch_type,
                                Vec::new(),
                            ));
                        }
                    } else {
                        self.schedule_reconcile(key, next_launch_at);
                    }
                }
            }
        }
        for id in &stops {
            let dep = self
                .tasks
                .get(id)
                .and_then(|t| t.deployment.clone())
                .unwrap_or_default();
            self.stop_task(
                id,
                "ServiceSchedulerInitiated",
                &format!("Scaling activity initiated by (deployment {dep})"),
                false,
            );
        }
        let stopped_ids = stops;
        if !started.is_empty() {
            let list = task_list(&started);
            self.new_event(
                key,
                format!(
                    "(service {name}) has started {} tasks: {list}.",
                    started.len()
                ),
            );
        }
        if !stopped_ids.is_empty() {
            let list = task_list(&stopped_ids);
            self.new_event(
                key,
                format!(
                    "(service {name}) has stopped {} running tasks: {list}.",
                    stopped_ids.len()
                ),
            );
        }
        self.update_progress(key);
    }

    /// Refresh deployment counts, lifecycle stages, and complete the primary when it is done.
    fn update_progress(&mut self, key: &str) {
        let now = self.now;
        let census = self.census(key);
        let others_left = {
            let Some(s) = self.services.get(key) else {
                return;
            };
            let primary_id = s
                .deployments
                .first()
                .map(|d| d.id.clone())
                .unwrap_or_default();
            self.svc_tasks(key).any(|t| {
                t.last_status != "STOPPED"
                    && (!t.live() || t.deployment.as_deref() != Some(primary_id.as_str()))
            })
        };
        let name = self.svc_label(key);
        let with_tasks: std::collections::BTreeSet<String> = self
            .svc_tasks(key)
            .filter(|t| t.last_status != "STOPPED")
            .filter_map(|t| t.deployment.clone())
            .collect();
        let Some(s) = self.services.get_mut(key) else {
            return;
        };
        // A failed deployment that is no longer PRIMARY leaves `deployments[]` once none of its
        // tasks is left, as in ECS.
        let mut i = 0;
        s.deployments.retain(|d| {
            i += 1;
            i == 1 || d.rollout_state != "FAILED" || with_tasks.contains(&d.id)
        });
        let desired = s.desired;
        for (i, d) in s.deployments.iter_mut().enumerate() {
            if i > 0 {
                d.desired = census.get(&d.id).map(|c| c.0.len() as i64).unwrap_or(0);
            } else {
                d.desired = desired;
            }
        }
        let Some(p) = s.deployments.first().cloned() else {
            return;
        };
        let (plive, phealthy) = census
            .get(&p.id)
            .map(|c| (c.0.len() as i64, c.1))
            .unwrap_or((0, 0));
        let sd_arn = p.sd.clone();
        let done = plive == desired && phealthy == desired && !others_left;
        // earlySuccessCriteria (rolling only): the deployment completes once healthyPercent of
        // the desired count is healthy on the target revision, with the source revision's
        // tasks gone first (BLOCKING) or removed in the background afterwards (DEFERRED).
        let early = p.strategy.is_empty() || p.strategy == "ROLLING";
        let early = self
            .services
            .get(key)
            .and_then(|s| s.deployment_configuration.get("earlySuccessCriteria"))
            .filter(|e| early && e.get("enable").and_then(Value::as_bool) == Some(true))
            .map(|e| {
                let pct = e
                    .get("healthyPercent")
                    .and_then(Value::as_i64)
                    .unwrap_or(100);
                let need = desired
                    .saturating_mul(pct)
                    .saturating_add(99)
                    .div_euclid(100);
                let blocking = e
                    .get("sourceServiceRevisionCleanup")
                    .and_then(Value::as_str)
                    != Some("DEFERRED");
                phealthy >= need && (!blocking || !others_left)
            })
            .unwrap_or(false);
        if p.rollout_state == "IN_PROGRESS" {
            if let Some(sd) = self.sds.get_mut(&sd_arn) {
                sd.lifecycle_stage = Some(
                    if phealthy < desired {
                        "SCALE_UP"
                    } else {
                        "CLEAN_UP"
                    }
                    .into(),
                );
                sd.updated_at = now;
            }
            if done || early {
                self.complete(key);
            }
        } else if done {
            let Some(s) = self.services.get_mut(key) else {
                return;
            };
            if !s.steady {
                s.steady = true;
                s.deployments.truncate(1);
                if let Some(rb) = s.rollback_sd.take()
                    && let Some(sd) = self.sds.get_mut(&rb)
                {
                    sd.status = "ROLLBACK_SUCCESSFUL".into();
                    sd.finished_at = Some(now);
                    sd.updated_at = now;
                    sd.lifecycle_stage = None;
                }
                self.new_event(key, format!("(service {name}) has reached a steady state."));
            }
        } else if let Some(s) = self.services.get_mut(key) {
            s.steady = false;
        }
    }

    pub(super) fn complete(&mut self, key: &str) {
        let now = self.now;
        let name = self.svc_label(key);
        // Deployments whose tasks have not all stopped stay listed (ACTIVE) until they have
        // (earlySuccessCriteria can complete a deployment before the old tasks are gone).
        let with_tasks: std::collections::BTreeSet<String> = self
            .svc_tasks(key)
            .filter(|t| t.last_status != "STOPPED")
            .filter_map(|t| t.deployment.clone())
            .collect();
        let Some(s) = self.services.get_mut(key) else {
            return;
        };
        let desired = s.desired;
        let Some(d) = s.deployments.first_mut() else {
            return;
        };
        d.rollout_state = "COMPLETED".into();
        d.rollout_reason = Some(format!("ECS deployment {} completed.", d.id));
        d.updated_at = now;
        let id = d.id.clone();
        let rev = d.revision.clone();
        let sd_arn = d.sd.clone();
        let td = d.task_def.clone();
        let mut i = 0;
        s.deployments.retain(|d| {
            i += 1;
            i == 1 || with_tasks.contains(&d.id)
        });
        // Steady only with the target revision alone at the desired count.
        let live = self
            .svc_tasks(key)
            .filter(|t| t.live() && t.deployment.as_deref() == Some(id.as_str()))
            .count() as i64;
        let others = self
            .svc_tasks(key)
            .any(|t| t.last_status != "STOPPED" && t.deployment.as_deref() != Some(id.as_str()));
        let steady = live == desired && !others;
        let Some(s) = self.services.get_mut(key) else {
            return;
        };
        s.stable_revision = Some(rev);
        s.task_def = td;
        s.steady = steady;
        if let Some(sd) = self.sds.get_mut(&sd_arn) {
            sd.status = match sd.status.as_str() {
                "ROLLBACK_IN_PROGRESS" | "ROLLBACK_REQUESTED" => "ROLLBACK_SUCCESSFUL".into(),
                _ => "SUCCESSFUL".into(),
            };
            sd.finished_at = Some(now);
            sd.updated_at = now;
            sd.lifecycle_stage = None;
            if sd.cb_status == "MONITORING" {
                sd.cb_status = "MONITORING_COMPLETE".into();
            }
            if sd.alarms_status == "MONITORING" {
                sd.alarms_status = "MONITORING_COMPLETE".into();
            }
        }
        self.new_event(
            key,
            format!("(service {name}) (deployment {id}) deployment completed."),
        );
        if steady {
            self.new_event(key, format!("(service {name}) has reached a steady state."));
        }
    }
}

fn s_cluster(w: &World, key: &str) -> String {
    w.services
        .get(key)
        .map(|s| s.cluster.clone())
        .unwrap_or_default()
}
