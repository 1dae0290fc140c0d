//! The event loop: the queue of scheduled events, [`World::advance`] that pops them in time
//! order, and what each event does to a task as it walks ECS's lifecycle (PROVISIONING,
//! PENDING, RUNNING, health, exit, DEACTIVATING, STOPPING, DEPROVISIONING, STOPPED).
//!
//! Receives the virtual time to advance to; hands on task state changes, and wakes the
//! service scheduler ([`World::reconcile`]) of a task whose state moved.

use serde_json::Value;

use super::model::{Ev, Sched, Task};
use super::{STOPPED_TASK_TTL, World};

/// Default timings (virtual seconds).
const PULL_START: (f64, f64) = (12.0, 24.0);
const PULL_FAIL: (f64, f64) = (4.0, 8.0);
const HEALTH_STABLE: f64 = 30.0;
/// The container reason of an OOM kill, as ECS words it (its page on OutOfMemoryError).
pub const OOM_REASON: &str = "OutOfMemoryError: Container killed due to memory usage";

/// The containers of a stopping task have stopped (those still running were sent SIGTERM).
fn stop_containers(t: &mut Task, now: f64) {
    let was_started = t.started_at.is_some();
    for c in &mut t.containers {
        if c.last_status == "RUNNING" {
            c.exit_code.get_or_insert(if was_started { 0 } else { 1 });
        }
        c.last_status = "STOPPED".into();
        if c.health.is_some() {
            c.health = Some("UNKNOWN".into());
        }
    }
    t.execution_stopped_at.get_or_insert(now);
}

impl World {
    pub fn schedule(&mut self, at: f64, ev: Ev, target: &str) {
        self.seq += 1;
        self.queue.push(Sched {
            at,
            seq: self.seq,
            ev,
            target: target.to_string(),
        });
    }

    pub fn schedule_reconcile(&mut self, key: &str, at: f64) {
        if let Some(s) = self.services.get_mut(key) {
            if s.reconcile_at.is_some_and(|t| t <= at && t >= self.now) {
                return;
            }
            s.reconcile_at = Some(at);
        }
        self.schedule(at, Ev::Reconcile, key);
    }

    /// Process every event due at or before `to`, in time order.
    pub fn advance(&mut self, to: f64) -> usize {
        let mut n = 0;
        while self.queue.peek().is_some_and(|s| s.at <= to) {
            let Some(s) = self.queue.pop() else { break };
            if s.at > self.now {
                self.now = s.at;
            }
            self.handle(s.ev, &s.target);
            n += 1;
        }
        if to > self.now {
            self.now = to;
        }
        self.events_processed += n as u64;
        n
    }

    /// One event. A task event that finds its task moved on (or stopped meanwhile) does
    /// nothing; one that changes the task runs its service's scheduler afterwards.
    fn handle(&mut self, ev: Ev, target: &str) {
        let (id, service) = match ev {
            Ev::Reconcile => return self.due_reconcile(target),
            Ev::Purge => return self.purge(target),
            _ => match self.tasks.get(target) {
                Some(t) => (t.id.clone(), t.service.clone()),
                None => return,
            },
        };
        let changed = match ev {
            Ev::Provisioned => self.provisioned(&id),
            Ev::PullFailed => self.pull_failed(&id),
            Ev::Started => self.started(&id),
            Ev::Healthy => self.healthy(&id),
            Ev::HealthStable => self.health_stable(&id),
            Ev::HealthFail => self.health_failed(&id),
            Ev::ElbCheck => {
                self.elb_check(&id);
                true
            }
            Ev::Exit(code) => self.exited(&id, code),
            Ev::Deactivated => self.deactivated(&id),
            Ev::ContainersStopped => self.containers_stopped(&id),
            Ev::StopDone => self.stop_done(&id),
            Ev::Reconcile | Ev::Purge => false,
        };
        if changed && let Some(key) = service {
            self.reconcile(&key);
        }
    }

    /// A reconcile the scheduler asked for (launch backoff, bake time, hook timeouts).
    fn due_reconcile(&mut self, key: &str) {
        let now = self.now;
        if let Some(s) = self.services.get_mut(key)
            && s.reconcile_at.is_some_and(|t| t <= now)
        {
            s.reconcile_at = None;
        }
        self.reconcile(key);
    }

    /// A task stopped an hour ago is forgotten.
    fn purge(&mut self, id: &str) {
        if let Some(t) = self.tasks.remove(id)
            && let Some(s) = t.service.and_then(|k| self.services.get_mut(&k))
        {
            s.task_ids.retain(|x| x != id);
        }
    }

    /// Task `id` when it is live and its last status is `status`.
    fn live_task(&mut self, id: &str, status: &str) -> Option<&mut Task> {
        self.tasks
            .get_mut(id)
            .filter(|t| t.last_status == status && t.live())
    }

    /// PROVISIONING -> PENDING: the image pull starts (and fails, or the task starts later).
    fn provisioned(&mut self, id: &str) -> bool {
        let now = self.now;
        let Some(t) = self.live_task(id, "PROVISIONING") else {
            return false;
        };
        t.last_status = "PENDING".into();
        t.pull_started_at = Some(now);
        if t.plan.pull_fail.is_some() {
            let at = now + self.rng.range(PULL_FAIL.0, PULL_FAIL.1);
            self.schedule(at, Ev::PullFailed, id);
        } else {
            let slow = t.plan.slow;
            let at = now + self.rng.range(PULL_START.0, PULL_START.1) + slow;
            self.schedule(at, Ev::Started, id);
        }
        true
    }

    /// The pull failed: the containers never ran, the task stops as TaskFailedToStart.
    fn pull_failed(&mut self, id: &str) -> bool {
        let now = self.now;
        let Some(t) = self.tasks.get_mut(id).filter(|t| t.live()) else {
            return false;
        };
        let reason = t.plan.pull_fail.clone().unwrap_or_default();
        t.pull_stopped_at = Some(now);
        for c in &mut t.containers {
            c.last_status = "STOPPED".into();
            c.reason = Some(reason.clone());
        }
        self.stop_task(id, "TaskFailedToStart", &reason, true);
        true
    }

    /// PENDING -> RUNNING: containers get runtime ids and log their start; health checks,
    /// a planned crash and the load balancer registration are scheduled.
    fn started(&mut self, id: &str) -> bool {
        let now = self.now;
        let Some(t) = self.live_task(id, "PENDING") else {
            return false;
        };
        t.last_status = "RUNNING".into();
        t.pull_stopped_at = Some(now - 1.0);
        t.started_at = Some(now);
        let n = t.containers.len();
        let rids: Vec<String> = (0..n).map(|_| self.rng.hex(32)).collect();
        let Some(t) = self.tasks.get_mut(id) else {
            return false;
        };
        for (c, rid) in t.containers.iter_mut().zip(rids) {
            c.last_status = "RUNNING".into();
            c.runtime_id = format!("{id}-{rid}")[..43.min(id.len() + 11)].to_string();
        }
        for (group, stream, line) in start_lines(t) {
            self.logs.put(&group, &stream, now, &line);
        }
        let Some(t) = self.tasks.get_mut(id) else {
            return false;
        };
        let plan = t.plan.clone();
        match plan.health_check {
            Some((interval, retries, start)) => {
                if plan.unhealthy {
                    self.schedule(now + start + interval * retries, Ev::HealthFail, id);
                } else {
                    self.schedule(now + interval.min(30.0), Ev::Healthy, id);
                }
            }
            None => {
                t.healthy_at = Some(now);
                self.schedule(now + HEALTH_STABLE, Ev::HealthStable, id);
            }
        }
        if let Some((after, code)) = plan.crash {
            self.schedule(now + after, Ev::Exit(code), id);
        }
        self.register_targets(id);
        true
    }

    /// The container health checks pass.
    fn healthy(&mut self, id: &str) -> bool {
        let now = self.now;
        let Some(t) = self.live_task(id, "RUNNING") else {
            return false;
        };
        t.health = "HEALTHY".into();
        t.healthy_at = Some(now);
        for c in &mut t.containers {
            if c.health.is_some() {
                c.health = Some("HEALTHY".into());
            }
        }
        self.schedule(now + HEALTH_STABLE, Ev::HealthStable, id);
        true
    }

    /// The task stayed healthy: launch backoff and (unless configured otherwise) the circuit
    /// breaker's failure count of its deployment start over.
    fn health_stable(&mut self, id: &str) -> bool {
        let Some(t) = self.live_task(id, "RUNNING") else {
            return false;
        };
        let (service, dep) = (t.service.clone(), t.deployment.clone());
        if let Some(key) = &service
            && let Some(s) = self.services.get_mut(key)
        {
            s.consecutive_failures = 0;
            let reset = s
                .deployment_configuration
                .pointer("/deploymentCircuitBreaker/resetOnHealthyTask")
                .and_then(Value::as_bool)
                .unwrap_or(true);
            if reset
                && let Some(d) = s
                    .deployments
                    .iter_mut()
                    .find(|d| Some(&d.id) == dep.as_ref())
                && d.rollout_state == "IN_PROGRESS"
            {
                d.failed_tasks = 0;
            }
        }
        true
    }

    /// The container health checks fail: after the grace period the scheduler stops the task.
    fn health_failed(&mut self, id: &str) -> bool {
        let now = self.now;
        let Some(t) = self.live_task(id, "RUNNING") else {
            return false;
        };
        t.health = "UNHEALTHY".into();
        for c in &mut t.containers {
            if c.health.is_some() {
                c.health = Some("UNHEALTHY".into());
            }
        }
        let (started, service) = (t.started_at, t.service.clone());
        let grace_end = started.unwrap_or(now)
            + service
                .as_ref()
                .and_then(|k| self.services.get(k))
                .map(|s| s.grace as f64)
                .unwrap_or(0.0);
        if grace_end > now {
            self.schedule(grace_end, Ev::HealthFail, id);
            return false;
        }
        if let Some(key) = &service {
            let name = self.svc_label(key);
            self.new_event(
                key,
                format!("(service {name}) (task {id}) failed container health checks."),
            );
        }
        self.stop_task(
            id,
            "ServiceSchedulerInitiated",
            "Task failed container health checks",
            true,
        );
        true
    }

    /// The essential container exits with `code` (137 and the OOM reason when it was killed
    /// for its memory use).
    fn exited(&mut self, id: &str, code: i32) -> bool {
        let now = self.now;
        let Some(t) = self.live_task(id, "RUNNING") else {
            return false;
        };
        let mut line = None;
        let oom = t.plan.oom;
        let mut lines = t.plan.log_lines.clone();
        for c in &mut t.containers {
            if c.essential {
                c.exit_code = Some(code);
                c.last_status = "STOPPED".into();
                if oom {
                    // The kernel kills the process: ECS names the cause on the container.
                    c.reason = Some(OOM_REASON.into());
                }
                line = c
                    .awslogs
                    .clone()
                    .map(|(group, prefix)| (group, format!("{prefix}/{}/{id}", c.name)));
                break;
            }
        }
        if let Some((group, stream)) = line {
            // What the app printed last. A killed process writes nothing more; one that exits
            // on its own says so.
            if oom && lines.is_empty() {
                lines.push("allocating cache buffers".into());
            }
            if !oom {
                lines.push(format!("exiting with code {code}"));
            }
            for l in &lines {
                self.logs.put(&group, &stream, now, l);
            }
        }
        self.stop_task(
            id,
            "EssentialContainerExited",
            "Essential container in task exited",
            code != 0,
        );
        true
    }

    /// DEACTIVATING -> STOPPING: the load balancer deregistration is over.
    fn deactivated(&mut self, id: &str) -> bool {
        let Some(t) = self.tasks.get_mut(id) else {
            return false;
        };
        if t.last_status != "DEACTIVATING" {
            return false;
        }
        t.last_status = "STOPPING".into();
        true
    }

    /// STOPPING -> DEPROVISIONING: the containers have stopped.
    fn containers_stopped(&mut self, id: &str) -> bool {
        let now = self.now;
        let Some(t) = self.tasks.get_mut(id) else {
            return false;
        };
        if !matches!(t.last_status.as_str(), "DEACTIVATING" | "STOPPING") {
            return false;
        }
        t.last_status = "DEPROVISIONING".into();
        stop_containers(t, now);
        true
    }

    /// STOPPED; the task stays describable for an hour.
    fn stop_done(&mut self, id: &str) -> bool {
        let now = self.now;
        let Some(t) = self.tasks.get_mut(id) else {
            return false;
        };
        if t.last_status == "STOPPED" {
            return false;
        }
        t.last_status = "STOPPED".into();
        t.stopped_at = Some(now);
        stop_containers(t, now);
        t.health = "UNKNOWN".into();
        self.schedule(now + STOPPED_TASK_TTL, Ev::Purge, id);
        true
    }
}

/// The log lines of a starting task's containers that ship to CloudWatch Logs:
/// (group, stream, line).
fn start_lines(t: &Task) -> Vec<(String, String, String)> {
    let id = &t.id;
    t.containers
        .iter()
        .filter_map(|c| {
            let (group, prefix) = c.awslogs.clone()?;
            let stream = format!("{prefix}/{}/{id}", c.name);
            let mut out = vec![format!("starting {}", c.image)];
            if !c.command.is_empty() {
                out.push(format!("command: {}", c.command.join(" ")));
            }
            Some(
                out.into_iter()
                    .map(move |l| (group.clone(), stream.clone(), l)),
            )
        })
        .flatten()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_pops_earliest_first() {
        let mut w = World::new("us-east-1", 1, 0.0);
        w.schedule(5.0, Ev::Purge, "b");
        w.schedule(1.0, Ev::Purge, "a");
        w.schedule(1.0, Ev::Purge, "c");
        let order: Vec<String> = std::iter::from_fn(|| w.queue.pop())
            .map(|s| s.target)
            .collect();
        assert_eq!(order, vec!["a", "c", "b"]);
    }
}
