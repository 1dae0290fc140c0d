//! Tasks: what a task definition (and the image faults) make of a new task, starting and
//! stopping one, and its load balancer targets (registration, health, deregistration).
//!
//! Receives calls from the scheduler, RunTask/StopTask and the event loop; hands on events
//! scheduled on the queue and service events.

use serde_json::Value;

use super::World;
use super::model::{Container, Ev, Plan, Task};
use crate::elbv2::TargetState;
use crate::faults::ImageFault;

/// Default timings (virtual seconds).
const PROVISION: (f64, f64) = (6.0, 12.0);

/// How long the containers take to stop after SIGTERM.
const STOP_DRAIN: (f64, f64) = (4.0, 10.0);

/// DEPROVISIONING: detaching and deleting the task's network interface.
const DEPROVISION: f64 = 2.0;

/// The `valueFrom` of each of container `c`'s secrets.
fn value_froms(c: &Value) -> Vec<String> {
    c.get("secrets")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|s| s.get("valueFrom").and_then(Value::as_str))
        .map(str::to_string)
        .collect()
}

/// ECS's stop reason when a task cannot fetch the secrets of container `c` (its first
/// `secrets` entry; a Secrets Manager ARN of its own when it has none).
fn secret_fail_reason(c: &Value, region: &str) -> String {
    let value_from = value_froms(c).into_iter().next().unwrap_or_else(|| {
        format!(
            "arn:aws:secretsmanager:{region}:{}:secret:app/missing-AbCdEf",
            super::ACCOUNT
        )
    });
    fetch_fail_reason(&value_from)
}

/// ECS's stop reason when `value_from` cannot be fetched, as the agent words it for Secrets
/// Manager and for SSM Parameter Store.
fn fetch_fail_reason(value_from: &str) -> String {
    if value_from.contains(":secretsmanager:") {
        format!(
            "ResourceInitializationError: unable to pull secrets or registry auth: execution resource retrieval failed: unable to retrieve secret from asm: service call has been retried 1 time(s): failed to fetch secret {value_from} from secrets manager: ResourceNotFoundException: Secrets Manager can't find the specified secret."
        )
    } else {
        format!(
            "ResourceInitializationError: unable to pull secrets or registry auth: execution resource retrieval failed: unable to retrieve secrets from ssm: service call has been retried 1 time(s): invalid parameters: {value_from}"
        )
    }
}

impl World {
    /// Whether a container secret's `valueFrom` names a Secrets Manager secret or an SSM
    /// parameter this sandbox holds (a Secrets Manager ARN may end with a JSON key, version
    /// stage and version id; a parameter ARN's name is the part after `parameter`).
    fn secret_exists(&self, value_from: &str) -> bool {
        if value_from.contains(":secretsmanager:") {
            let arn: Vec<&str> = value_from.split(':').take(7).collect();
            return self.secrets.exists(&arn.join(":"));
        }
        let name = match value_from.split_once(":parameter") {
            Some((_, n)) => n,
            None => value_from,
        };
        self.ssm.contains(name) || self.ssm.contains(name.trim_start_matches('/'))
    }

    /// Build the plan of a task from its task definition and the faults of its images.
    fn plan_for(&self, taskdef: &Value) -> (Plan, Vec<Container>) {
        let mut plan = Plan::default();
        let mut containers = Vec::new();
        let defs = taskdef
            .get("containerDefinitions")
            .and_then(Value::as_array);
        for c in defs.into_iter().flatten() {
            let container = self.container_of(c);
            self.plan_container(&mut plan, c, &container.image, container.essential);
            containers.push(container);
        }
        (plan, containers)
    }

    /// What one container definition adds to the task's plan: its image's faults, the log
    /// lines its tag asks for, a secret or an image that cannot be fetched, its health check.
    fn plan_container(&self, plan: &mut Plan, c: &Value, image: &str, essential: bool) {
        for f in &self.faults.for_image(image) {
            match *f {
                ImageFault::PullFail => {
                    plan.pull_fail = Some(format!(
                        "CannotPullContainerError: pull image manifest has been retried 7 time(s): failed to resolve ref {image}: not found"
                    ))
                }
                ImageFault::Crash(d) if essential => plan.crash = Some((d, 1)),
                ImageFault::Exit(d) if essential => plan.crash = Some((d, 0)),
                ImageFault::ExitCode(code, d) if essential => plan.crash = Some((d, code)),
                ImageFault::Oom(d) if essential => {
                    plan.crash = Some((d, 137));
                    plan.oom = true;
                }
                ImageFault::SecretFail => {
                    plan.pull_fail = Some(secret_fail_reason(c, &self.region))
                }
                ImageFault::HealthCode(code) => {
                    plan.elb_unhealthy = true;
                    plan.elb_answer = Some(code);
                }
                ImageFault::Unhealthy => plan.unhealthy = true,
                ImageFault::ElbUnhealthy => plan.elb_unhealthy = true,
                ImageFault::SlowStart(d) => plan.slow += d,
                ImageFault::HookFail => plan.hook_fail = true,
                ImageFault::HookTimeout => plan.hook_timeout = true,
                _ => {}
            }
        }
        if essential {
            plan.log_lines.extend(crate::faults::tag_log_lines(image));
        }
        // A secret that does not exist fails the task before it starts, as on ECS.
        if plan.pull_fail.is_none()
            && let Some(missing) = value_froms(c).into_iter().find(|v| !self.secret_exists(v))
        {
            plan.pull_fail = Some(fetch_fail_reason(&missing));
        }
        if plan.pull_fail.is_none() && self.image_missing(image) {
            plan.pull_fail = Some(format!(
                "CannotPullContainerError: pull image manifest has been retried 7 time(s): failed to resolve ref {image}: {image}: not found"
            ));
        }
        if let Some(hc) = c.get("healthCheck").filter(|v| v.is_object()) {
            let interval = hc.get("interval").and_then(Value::as_f64).unwrap_or(30.0);
            let retries = hc.get("retries").and_then(Value::as_f64).unwrap_or(3.0);
            let start = hc.get("startPeriod").and_then(Value::as_f64).unwrap_or(0.0);
            plan.health_check = Some((interval.max(1.0), retries.max(1.0), start.max(0.0)));
        }
    }

    /// A task's container as its definition `c` describes it, PENDING.
    fn container_of(&self, c: &Value) -> Container {
        let name = c
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or("app")
            .to_string();
        let image = c
            .get("image")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let essential = c.get("essential").and_then(Value::as_bool).unwrap_or(true);
        let ports = c
            .get("portMappings")
            .and_then(Value::as_array)
            .map(|pm| {
                pm.iter()
                    .filter_map(|p| {
                        let port = p.get("containerPort").and_then(Value::as_i64)?;
                        let proto = p.get("protocol").and_then(Value::as_str).unwrap_or("tcp");
                        Some((port, proto.to_string()))
                    })
                    .collect()
            })
            .unwrap_or_default();
        let has_hc = c.get("healthCheck").is_some_and(Value::is_object);
        let awslogs = c
            .get("logConfiguration")
            .filter(|l| l.get("logDriver").and_then(Value::as_str) == Some("awslogs"))
            .and_then(|l| {
                let opt = |k: &str| l.pointer(&format!("/options/{k}")).and_then(Value::as_str);
                Some((
                    opt("awslogs-group")?.to_string(),
                    opt("awslogs-stream-prefix")?.to_string(),
                ))
            });
        let command = c
            .get("command")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        let digest = self
            .ecr
            .digest_of(&crate::faults::without_faults(&image))
            .flatten();
        Container {
            awslogs,
            command,
            name,
            image,
            essential,
            last_status: "PENDING".into(),
            exit_code: None,
            reason: None,
            health: has_hc.then(|| "UNKNOWN".to_string()),
            runtime_id: String::new(),
            digest,
            port_mappings: ports,
        }
    }

    /// Start a task; returns its id.
    #[allow(clippy::too_many_arguments)]
    pub fn start_task(
        &mut self,
        cluster: &str,
        service: Option<&str>,
        group: &str,
        started_by: Option<String>,
        deployment: Option<String>,
        task_def_arn: &str,
        launch_type: &str,
        tags: Vec<Value>,
    ) -> String {
        let id = self.rng.hex(32);
        // A service's task belongs to the service's account (its scheduler may start it
        // outside any request).
        let owner = service
            .and_then(|k| self.services.get(k))
            .and_then(|s| s.arn.split(':').nth(4))
            .filter(|a| !a.is_empty())
            .map_or_else(|| self.account.clone(), str::to_string);
        let arn = format!("arn:aws:ecs:{}:{owner}:task/{cluster}/{id}", self.region);
        let td = self
            .find_taskdef(task_def_arn)
            .cloned()
            .unwrap_or(Value::Null);
        let (plan, mut containers) = self.plan_for(&td);
        // A service's tasks run the digests its deployment's revision resolved, whatever the
        // tags point at by now (ECS's container image resolution).
        let resolved = service
            .zip(deployment.as_deref())
            .and_then(|(key, id)| {
                let s = self.services.get(key)?;
                let d = s.deployments.iter().find(|d| d.id == id)?;
                self.revisions.get(&d.revision)
            })
            .map(|r| r.images.clone())
            .unwrap_or_default();
        for c in &mut containers {
            if let Some(d) = resolved
                .iter()
                .find(|i| i.get("containerName").and_then(Value::as_str) == Some(c.name.as_str()))
                .and_then(|i| i.get("imageDigest").and_then(Value::as_str))
            {
                c.digest = Some(d.to_string());
            }
        }
        let ip = format!(
            "10.0.{}.{}",
            self.rng.next_u64() % 256,
            2 + self.rng.next_u64() % 250
        );
        let eni = format!("eni-{}", self.rng.hex(17));
        let az = format!(
            "{}{}",
            self.region,
            ["a", "b", "c"][(self.rng.next_u64() % 3) as usize]
        );
        let task = Task {
            id: id.clone(),
            arn,
            cluster: cluster.to_string(),
            service: service.map(str::to_string),
            group: group.to_string(),
            started_by,
            deployment,
            task_def_arn: task_def_arn.to_string(),
            launch_type: launch_type.to_string(),
            last_status: "PROVISIONING".into(),
            desired_status: "RUNNING".into(),
            health: "UNKNOWN".into(),
            created_at: self.now,
            pull_started_at: None,
            pull_stopped_at: None,
            started_at: None,
            healthy_at: None,
            stopping_at: None,
            stopped_at: None,
            execution_stopped_at: None,
            stop_code: None,
            stopped_reason: None,
            containers,
            ip,
            eni,
            az,
            cpu: td.get("cpu").and_then(Value::as_str).map(str::to_string),
            memory: td.get("memory").and_then(Value::as_str).map(str::to_string),
            plan,
            failed: false,
            targets: Vec::new(),
            elb_healthy: false,
            tags,
            overrides: Value::Null,
            capacity_provider: None,
            exec_enabled: service
                .and_then(|k| self.services.get(k))
                .and_then(|s| s.extra.get("enableExecuteCommand"))
                .and_then(Value::as_bool)
                .unwrap_or(false),
        };
        let at = self.now + self.rng.range(PROVISION.0, PROVISION.1);
        if let Some(s) = service.and_then(|k| self.services.get_mut(k)) {
            s.task_ids.push(id.clone());
        }
        self.tasks.insert(id.clone(), task);
        self.schedule(at, Ev::Provisioned, &id);
        id
    }

    /// Ask a task to stop. `failed` counts it against its deployment.
    ///
    /// The task walks ECS's documented lifecycle ("Amazon ECS task lifecycle"): DEACTIVATING
    /// while its load-balancer targets are deregistered, STOPPING while the containers get
    /// SIGTERM, DEPROVISIONING while the network interface is detached, then STOPPED.
    /// `executionStoppedAt` is when the containers stopped. A task whose containers still run
    /// stays DEACTIVATING for the deregistration delay (its in-flight requests drain); a task
    /// whose essential container already exited has no connection left, so ELB completes the
    /// deregistration at once ("Deregistration delay": the target still shows `draining` until
    /// the delay expires) and the task stops within seconds.
    pub fn stop_task(&mut self, id: &str, code: &str, reason: &str, failed: bool) {
        let now = self.now;
        let drain = self.rng.range(STOP_DRAIN.0, STOP_DRAIN.1);
        let Some(t) = self.tasks.get_mut(id) else {
            return;
        };
        if t.desired_status == "STOPPED" {
            return;
        }
        t.desired_status = "STOPPED".into();
        t.stop_code = Some(code.to_string());
        t.stopped_reason = Some(reason.to_string());
        t.stopping_at = Some(now);
        t.failed = failed;
        if t.last_status == "STOPPED" {
            return;
        }
        let was_running = t.last_status == "RUNNING";
        // An essential container exited (or never started): the task's work is over.
        let exited = t
            .containers
            .iter()
            .any(|c| c.essential && c.last_status == "STOPPED");
        let all_down = t.containers.iter().all(|c| c.last_status == "STOPPED");
        if all_down {
            t.execution_stopped_at.get_or_insert(now);
        }
        let targets = std::mem::take(&mut t.targets);
        let has_targets = was_running && !targets.is_empty();
        t.last_status = if has_targets {
            "DEACTIVATING"
        } else {
            "STOPPING"
        }
        .into();
        let service = t.service.clone();
        let deployment = t.deployment.clone();
        // A task of a deployment that failed and was rolled back stops at once; its targets
        // still drain in their target groups for the deregistration delay.
        let of_failed = match (&service, &deployment) {
            (Some(key), Some(dep)) => self.services.get(key).is_some_and(|s| {
                s.deployments
                    .iter()
                    .skip(1)
                    .any(|d| &d.id == dep && d.rollout_state == "FAILED")
            }),
            _ => false,
        };
        let draining = if has_targets {
            self.deregister_targets(id, &targets)
        } else {
            0.0
        };
        let deactivated = if exited || of_failed {
            now + draining.min(1.0)
        } else {
            now + draining
        };
        let containers_stopped = if all_down {
            deactivated
        } else if exited || !was_running {
            // The agent stops the remaining containers (or the task never started any).
            deactivated + 1.0
        } else {
            deactivated + drain
        };
        if has_targets {
            self.schedule(deactivated, Ev::Deactivated, id);
        }
        self.schedule(containers_stopped, Ev::ContainersStopped, id);
        self.schedule(containers_stopped + DEPROVISION, Ev::StopDone, id);
        if failed && let (Some(key), Some(dep)) = (service, deployment) {
            self.on_task_failed(&key, &dep, id);
        }
    }

    /// Deregister a task's targets; returns how long the draining takes.
    fn deregister_targets(&mut self, id: &str, targets: &[(String, i64)]) -> f64 {
        let now = self.now;
        let Some(ip) = self.tasks.get(id).map(|t| t.ip.clone()) else {
            return 0.0;
        };
        let mut delay: f64 = 0.0;
        if let Some(key) = self.tasks.get(id).and_then(|t| t.service.clone())
            && !targets.is_empty()
        {
            let name = self.svc_label(&key);
            self.new_event(
                &key,
                format!("(service {name}) has begun draining connections on 1 tasks."),
            );
            for (tg, _) in targets {
                self.new_event(
                    &key,
                    format!("(service {name}) deregistered 1 targets in (target-group {tg})"),
                );
            }
        }
        for (tg, _) in targets {
            let in_use = self
                .elbv2
                .target_state(tg, &ip, now)
                .is_some_and(|s| s != TargetState::Unused);
            self.elbv2.deregister_target(tg, &ip, now);
            if in_use {
                delay = delay.max(self.elbv2.deregistration_delay(tg).unwrap_or(0.0));
            }
        }
        delay
    }

    /// Register a RUNNING task in its deployment's target groups and start watching its health.
    pub(super) fn register_targets(&mut self, id: &str) {
        let now = self.now;
        let Some(t) = self.tasks.get(id) else { return };
        let (Some(key), Some(dep)) = (t.service.clone(), t.deployment.clone()) else {
            return;
        };
        let bindings = self
            .services
            .get(&key)
            .and_then(|s| s.deployments.iter().find(|d| d.id == dep))
            .map(|d| d.bindings.clone())
            .unwrap_or_default();
        if bindings.is_empty() {
            return;
        }
        let ip = t.ip.clone();
        // The app answers health checks a couple of seconds after start, unless it never does.
        let app_from = (!t.plan.elb_unhealthy).then_some(now + 2.0);
        let crash_at = t.plan.crash.map(|(after, _)| now + after);
        let mut targets = Vec::new();
        let mut next = f64::INFINITY;
        for b in &bindings {
            self.elbv2
                .register_target(&b.tg, &ip, b.port as i32, now, app_from);
            if crash_at.is_some() {
                self.elbv2.set_app_health(&b.tg, &ip, app_from, crash_at);
            }
            if let Some(code) = t.plan.elb_answer {
                self.elbv2.set_app_answer(&b.tg, &ip, code);
            }
            targets.push((b.tg.clone(), b.port));
            if let Some(at) = self.elbv2.next_change_time(&b.tg, &ip, now) {
                next = next.min(at);
            }
        }
        let name = self.svc_label(&key);
        for (tg, _) in &targets {
            self.new_event(
                &key,
                format!("(service {name}) registered 1 targets in (target-group {tg})"),
            );
        }
        if let Some(t) = self.tasks.get_mut(id) {
            t.targets = targets;
        }
        let at = if next.is_finite() { next } else { now + 5.0 };
        self.schedule(at.max(now), Ev::ElbCheck, id);
    }

    /// Look at a task's target health: healthy, failed (stop it), or look again later.
    pub(super) fn elb_check(&mut self, id: &str) {
        let now = self.now;
        let Some(t) = self.tasks.get(id) else { return };
        if t.last_status != "RUNNING" || !t.live() || t.elb_healthy || t.targets.is_empty() {
            return;
        }
        let ip = t.ip.clone();
        let targets = t.targets.clone();
        let key = t.service.clone();
        // ELB's description of the failure, as ECS quotes it in the service event.
        let why = match t.plan.elb_answer {
            Some(code) => format!("Health checks failed with these codes: [{code}]"),
            None => "Health checks failed".to_string(),
        };
        let started = t.started_at.unwrap_or(now);
        let grace = key
            .as_ref()
            .and_then(|k| self.services.get(k))
            .map(|s| s.grace as f64)
            .unwrap_or(0.0);
        let mut all_ok = true;
        let mut failed_tg = None;
        let mut next = f64::INFINITY;
        for (tg, _) in &targets {
            match self.elbv2.target_state(tg, &ip, now) {
                Some(TargetState::Healthy | TargetState::Unused | TargetState::Unavailable)
                | None => {}
                Some(TargetState::Unhealthy) => {
                    all_ok = false;
                    failed_tg.get_or_insert_with(|| tg.clone());
                }
                Some(_) => all_ok = false,
            }
            if let Some(at) = self.elbv2.next_change_time(tg, &ip, now) {
                next = next.min(at);
            }
        }
        if all_ok {
            if let Some(t) = self.tasks.get_mut(id) {
                t.elb_healthy = true;
            }
            return;
        }
        if let Some(tg) = failed_tg {
            if now >= started + grace {
                if let Some(k) = &key {
                    let name = self.svc_label(k);
                    let port = targets.first().map(|x| x.1).unwrap_or(0);
                    self.new_event(k, format!("(service {name}) (task {id}) (port {port}) is unhealthy in (target-group {tg}) due to (reason {why})."));
                }
                self.stop_task(
                    id,
                    "ServiceSchedulerInitiated",
                    &format!("Task failed ELB health checks in (target-group {tg})"),
                    true,
                );
                return;
            }
            next = next.min(started + grace);
        }
        let at = if next.is_finite() && next > now {
            next
        } else {
            now + 5.0
        };
        self.schedule(at, Ev::ElbCheck, id);
    }
}
