//! The service scheduler of a rolling deployment: starts and stops tasks within
//! `minimumHealthyPercent` and `maximumPercent`, drains a deleted service, keeps deployment
//! counts and lifecycle stages current and completes the primary deployment.
//!
//! Receives a service key whenever something about the service may have changed; blue/green,
//! canary and linear deployments go to [`super::strategy`].

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use super::model::{Deployment, Service, Task};
use super::{World, task_list};

/// A service's tasks by deployment: (live task ids, healthy, running, pending).
type Census = BTreeMap<String, (Vec<String>, i64, i64, i64)>;

/// What a rolling deployment may do right now, in tasks.
struct Room {
    desired: i64,
    /// maximumPercent of the desired count (at least 1).
    max_total: i64,
    /// minimumHealthyPercent of the desired count, rounded up.
    min_healthy: i64,
    healthy_total: i64,
    live_total: i64,
}

impl Room {
    fn of(s: &Service, census: &Census) -> Room {
        let desired = s.desired;
        let cfg: &Value = &s.deployment_configuration;
        let pct = |k: &str, default: i64| cfg.get(k).and_then(Value::as_i64).unwrap_or(default);
        let (max_pct, min_pct) = (
            pct("maximumPercent", 200),
            pct("minimumHealthyPercent", 100),
        );
        Room {
            desired,
            max_total: desired.saturating_mul(max_pct).div_euclid(100).max(1),
            min_healthy: desired
                .saturating_mul(min_pct)
                .saturating_add(99)
                .div_euclid(100),
            healthy_total: census.values().map(|c| c.1).sum(),
            live_total: census.values().map(|c| c.0.len() as i64).sum(),
        }
    }
}

impl World {
    fn task_healthy(&self, t: &Task) -> bool {
        t.last_status == "RUNNING"
            && t.live()
            && (t.plan.health_check.is_none() || t.health == "HEALTHY")
            && (t.targets.is_empty() || t.elb_healthy)
    }

    /// The tasks of a service by deployment (every deployment listed, tasks or not).
    fn census(&self, key: &str) -> Census {
        let mut out = Census::new();
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
        let Some(s) = self.services.get(key) else {
            return;
        };
        if s.status == "INACTIVE" {
            return;
        }
        let name = s.name.clone();
        let census = self.census(key);
        if s.status == "DRAINING" {
            return self.drain(key, &census);
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
        let mut room = Room::of(s, &census);
        let next_launch_at = s.next_launch_at;
        let old_ids: Vec<String> = s.deployments.iter().skip(1).map(|d| d.id.clone()).collect();
        let mut stops: Vec<String> = Vec::new();
        let mut started: Vec<String> = Vec::new();
        if primary.launching || !old_ids.is_empty() {
            stops = self.old_tasks_to_stop(&old_ids, &census, primary.launching, &mut room);
        }
        if primary.launching {
            let empty = Vec::new();
            let plive = census.get(&primary.id).map_or(&empty, |c| &c.0);
            if plive.len() as i64 > room.desired {
                stops.extend(self.extra_tasks(plive, room.desired));
            } else if (plive.len() as i64) < room.desired {
                // Headroom under maximumPercent; with maximumPercent 100 the old tasks make room.
                let headroom = (room.max_total - room.live_total).max(0);
                let n = (room.desired - plive.len() as i64).min(headroom);
                if n > 0 && self.now >= next_launch_at {
                    started = self.launch(key, &name, &primary, n);
                } else if n > 0 {
                    self.schedule_reconcile(key, next_launch_at);
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
        self.scaling_events(key, &name, &started, &stops);
        self.update_progress(key);
    }

    /// A deleted service (DRAINING) stops its tasks, then becomes INACTIVE.
    fn drain(&mut self, key: &str, census: &Census) {
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
    }

    /// Old deployments' tasks to stop: unhealthy ones at once, healthy ones while the
    /// minimum healthy floor holds (none while the primary does not launch: a failed
    /// deployment without rollback keeps the old tasks serving).
    fn old_tasks_to_stop(
        &self,
        old_ids: &[String],
        census: &Census,
        launching: bool,
        room: &mut Room,
    ) -> Vec<String> {
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
        let mut stops = Vec::new();
        for t in old {
            let healthy = self.task_healthy(t);
            if !launching && healthy {
                continue;
            }
            if !healthy {
                stops.push(t.id.clone());
                room.live_total -= 1;
            } else if room.healthy_total > room.min_healthy {
                stops.push(t.id.clone());
                room.healthy_total -= 1;
                room.live_total -= 1;
            }
        }
        stops
    }

    /// Scale in: the newest of the primary's live tasks beyond `desired`, unhealthy first.
    fn extra_tasks(&self, live: &[String], desired: i64) -> Vec<String> {
        let mut extra: Vec<&Task> = live.iter().filter_map(|id| self.tasks.get(id)).collect();
        extra.sort_by(|a, b| {
            self.task_healthy(a)
                .cmp(&self.task_healthy(b))
                .then(b.created_at.total_cmp(&a.created_at))
        });
        let n = (live.len() as i64 - desired) as usize;
        extra.into_iter().take(n).map(|t| t.id.clone()).collect()
    }

    /// Starts `n` tasks of the primary deployment; returns their ids.
    fn launch(&mut self, key: &str, name: &str, primary: &Deployment, n: i64) -> Vec<String> {
        (0..n)
            .map(|_| {
                self.start_task(
                    &s_cluster(self, key),
                    Some(key),
                    &format!("service:{name}"),
                    Some(primary.id.clone()),
                    Some(primary.id.clone()),
                    &primary.task_def,
                    &primary.launch_type,
                    Vec::new(),
                )
            })
            .collect()
    }

    /// The service events ECS writes for a scheduler run that started or stopped tasks.
    fn scaling_events(&mut self, key: &str, name: &str, started: &[String], stopped: &[String]) {
        if !started.is_empty() {
            let list = task_list(started);
            self.new_event(
                key,
                format!(
                    "(service {name}) has started {} tasks: {list}.",
                    started.len()
                ),
            );
        }
        if !stopped.is_empty() {
            let list = task_list(stopped);
            self.new_event(
                key,
                format!(
                    "(service {name}) has stopped {} running tasks: {list}.",
                    stopped.len()
                ),
            );
        }
    }

    /// Refresh deployment counts, lifecycle stages, and complete the primary when it is done.
    fn update_progress(&mut self, key: &str) {
        let now = self.now;
        let census = self.census(key);
        let Some(others_left) = self.others_left(key) else {
            return;
        };
        let name = self.svc_label(key);
        let Some((p, desired)) = self.prune_and_count(key, &census) else {
            return;
        };
        let (plive, phealthy) = census
            .get(&p.id)
            .map(|c| (c.0.len() as i64, c.1))
            .unwrap_or((0, 0));
        let sd_arn = p.sd.clone();
        let done = plive == desired && phealthy == desired && !others_left;
        let early = self.early_success(key, &p, phealthy, others_left);
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
            self.settle(key, &name);
        } else if let Some(s) = self.services.get_mut(key) {
            s.steady = false;
        }
    }

    /// Whether tasks other than the primary deployment's live ones are still around (None
    /// when there is no such service).
    fn others_left(&self, key: &str) -> Option<bool> {
        let s = self.services.get(key)?;
        let primary_id = s
            .deployments
            .first()
            .map(|d| d.id.clone())
            .unwrap_or_default();
        Some(self.svc_tasks(key).any(|t| {
            t.last_status != "STOPPED"
                && (!t.live() || t.deployment.as_deref() != Some(primary_id.as_str()))
        }))
    }

    /// Drops failed deployments with no task left from `deployments[]` (as ECS does once
    /// they are no longer PRIMARY) and refreshes each one's desired count; returns the
    /// primary and the service's desired count.
    fn prune_and_count(&mut self, key: &str, census: &Census) -> Option<(Deployment, i64)> {
        let with_tasks: BTreeSet<String> = self
            .svc_tasks(key)
            .filter(|t| t.last_status != "STOPPED")
            .filter_map(|t| t.deployment.clone())
            .collect();
        let s = self.services.get_mut(key)?;
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
        Some((s.deployments.first().cloned()?, desired))
    }

    /// earlySuccessCriteria (rolling only): the deployment completes once healthyPercent of
    /// the desired count is healthy on the target revision, with the source revision's
    /// tasks gone first (BLOCKING) or removed in the background afterwards (DEFERRED).
    fn early_success(&self, key: &str, p: &Deployment, phealthy: i64, others_left: bool) -> bool {
        let rolling = p.strategy.is_empty() || p.strategy == "ROLLING";
        let Some(s) = self.services.get(key) else {
            return false;
        };
        let desired = s.desired;
        s.deployment_configuration
            .get("earlySuccessCriteria")
            .filter(|e| rolling && e.get("enable").and_then(Value::as_bool) == Some(true))
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
            .unwrap_or(false)
    }

    /// A finished deployment whose tasks are all in place: the service is steady (a
    /// blue/green rollback it carried is over).
    fn settle(&mut self, key: &str, name: &str) {
        let now = self.now;
        let Some(s) = self.services.get_mut(key) else {
            return;
        };
        if s.steady {
            return;
        }
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

    pub(super) fn complete(&mut self, key: &str) {
        let now = self.now;
        let name = self.svc_label(key);
        // Deployments whose tasks have not all stopped stay listed (ACTIVE) until they have
        // (earlySuccessCriteria can complete a deployment before the old tasks are gone).
        let with_tasks: BTreeSet<String> = self
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
