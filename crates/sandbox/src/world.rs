//! The simulated world: clusters, task definitions, services, deployments, tasks, and the
//! event queue that moves them through time.
//!
//! Receives calls from the API handlers (`ecs.rs`) and virtual timestamps from the clock; hands
//! on state that the handlers render as AWS JSON. Time only moves in [`World::advance`], which
//! pops due events from a binary heap in time order: the work of one advance is proportional to
//! the events due, and nothing runs between requests.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BinaryHeap, VecDeque};

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::ecr::Ecr;
use super::elbv2::{Elbv2, TargetState};
use super::faults::{Faults, ImageFault};
use super::util::{Rng, ts};

pub const ACCOUNT: &str = "123456789012";
pub const MAX_EVENTS: usize = 100;
/// Stopped tasks stay describable this long (virtual seconds), like ECS's hour.
pub const STOPPED_TASK_TTL: f64 = 3600.0;

/// What happens at a scheduled time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Ev {
    Provisioned,
    PullFailed,
    Started,
    Healthy,
    HealthStable,
    HealthFail,
    ElbCheck,
    Exit(i32),
    /// DEACTIVATING is over (load-balancer deregistration done): the task is STOPPING.
    Deactivated,
    /// The task's containers have stopped: DEPROVISIONING (the ENI is detached).
    ContainersStopped,
    StopDone,
    /// Re-run the scheduler of a service (launch backoff, bake time, hook timeouts).
    Reconcile,
    Purge,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Sched {
    pub at: f64,
    pub seq: u64,
    pub ev: Ev,
    /// Task id, or service key for `Reconcile`.
    pub target: String,
}

impl PartialEq for Sched {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Sched {}
impl PartialOrd for Sched {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Sched {
    // Reversed: BinaryHeap is a max-heap and we want the earliest first.
    fn cmp(&self, other: &Self) -> Ordering {
        other
            .at
            .total_cmp(&self.at)
            .then_with(|| other.seq.cmp(&self.seq))
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Plan {
    pub pull_fail: Option<String>,
    pub crash: Option<(f64, i32)>,
    pub unhealthy: bool,
    pub elb_unhealthy: bool,
    pub slow: f64,
    pub hook_fail: bool,
    pub hook_timeout: bool,
    /// Container health check: (interval, retries, start period), when any container has one.
    pub health_check: Option<(f64, f64, f64)>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Container {
    pub name: String,
    pub image: String,
    pub essential: bool,
    pub last_status: String,
    pub exit_code: Option<i32>,
    pub reason: Option<String>,
    pub health: Option<String>,
    pub runtime_id: String,
    pub port_mappings: Vec<(i64, String)>,
    /// The awslogs driver's log group and stream prefix, when the container ships its
    /// output to CloudWatch Logs with a stream prefix.
    #[serde(default)]
    pub awslogs: Option<(String, String)>,
    /// The command it runs (the task definition's, or RunTask's override).
    #[serde(default)]
    pub command: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Task {
    pub id: String,
    pub arn: String,
    pub cluster: String,
    pub service: Option<String>,
    pub group: String,
    pub started_by: Option<String>,
    pub deployment: Option<String>,
    pub task_def_arn: String,
    pub launch_type: String,
    pub last_status: String,
    pub desired_status: String,
    pub health: String,
    pub created_at: f64,
    pub pull_started_at: Option<f64>,
    pub pull_stopped_at: Option<f64>,
    pub started_at: Option<f64>,
    pub healthy_at: Option<f64>,
    pub stopping_at: Option<f64>,
    pub stopped_at: Option<f64>,
    /// When the task's containers stopped (`executionStoppedAt`).
    #[serde(default)]
    pub execution_stopped_at: Option<f64>,
    pub stop_code: Option<String>,
    pub stopped_reason: Option<String>,
    pub containers: Vec<Container>,
    pub ip: String,
    pub eni: String,
    pub az: String,
    pub cpu: Option<String>,
    pub memory: Option<String>,
    pub plan: Plan,
    pub failed: bool,
    /// Target groups the task is registered in: (target group ARN, port).
    pub targets: Vec<(String, i64)>,
    pub elb_healthy: bool,
    pub tags: Vec<Value>,
    /// RunTask's `overrides`, as given (`containerOverrides` and the rest).
    #[serde(default)]
    pub overrides: Value,
    /// The capacity provider a RunTask with a capacity provider strategy placed it on.
    #[serde(default)]
    pub capacity_provider: Option<String>,
    /// `enableExecuteCommand` (the service's, or RunTask's).
    #[serde(default)]
    pub exec_enabled: bool,
}

impl Task {
    pub fn live(&self) -> bool {
        self.desired_status == "RUNNING"
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Deployment {
    pub id: String,
    pub status: String,
    pub task_def: String,
    pub revision: String,
    pub sd: String,
    pub desired: i64,
    pub failed_tasks: i64,
    pub created_at: f64,
    pub updated_at: f64,
    pub rollout_state: String,
    pub rollout_reason: Option<String>,
    pub launch_type: String,
    pub platform_version: Option<String>,
    pub network: Value,
    /// False once the deployment failed without rollback or was aborted: no more launches.
    pub launching: bool,
    /// ROLLING, BLUE_GREEN, CANARY or LINEAR (the first deployment of a service always rolls).
    #[serde(default)]
    pub strategy: String,
    /// Where this deployment's tasks receive traffic.
    #[serde(default)]
    pub bindings: Vec<Binding>,
}

/// A deployment's place behind a load balancer.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Binding {
    /// Target group this deployment's tasks register in.
    pub tg: String,
    /// The other target group of a blue/green pair (the one serving before).
    pub other: Option<String>,
    pub container: String,
    pub port: i64,
    pub prod_rule: Option<String>,
    pub test_rule: Option<String>,
}

/// Progress of a blue/green, canary or linear service deployment.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct BgState {
    pub step: usize,
    pub action_done: bool,
    pub hooks_started: bool,
    pub wait_until: Option<f64>,
    /// Production traffic on the new revision, percent.
    pub weight: i64,
    /// Hook runs started for the current step (each invocation of a stage has its own ids).
    #[serde(default)]
    pub step_hooks: Vec<String>,
}

/// One run of a lifecycle hook.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HookRun {
    pub hook_id: String,
    pub target_type: String,
    pub target_arn: Option<String>,
    pub stage: String,
    pub status: String,
    pub expires_at: f64,
    pub timeout_action: String,
    /// For AWS_LAMBDA hooks: when the invocation answers, and with what.
    pub resolve_at: Option<f64>,
    pub outcome: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Service {
    pub key: String,
    pub name: String,
    pub arn: String,
    pub cluster: String,
    pub status: String,
    pub desired: i64,
    pub task_def: String,
    pub launch_type: String,
    pub platform_version: Option<String>,
    pub deployment_configuration: Value,
    pub network: Value,
    pub load_balancers: Value,
    pub grace: i64,
    pub scheduling: String,
    pub controller: Value,
    pub created_at: f64,
    pub events: VecDeque<Value>,
    pub deployments: Vec<Deployment>,
    pub current_sd: Option<String>,
    pub stable_revision: Option<String>,
    /// Members echoed back as given (tags handled apart).
    pub extra: serde_json::Map<String, Value>,
    pub next_launch_at: f64,
    pub consecutive_failures: u32,
    pub steady: bool,
    pub reconcile_at: Option<f64>,
    /// A blue/green service deployment being rolled back onto the blue tasks.
    #[serde(default)]
    pub rollback_sd: Option<String>,
    /// Ids of this service's tasks (index: keeps scheduler work per service, not per world).
    #[serde(default)]
    pub task_ids: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ServiceDeployment {
    pub arn: String,
    pub service_key: String,
    pub service_arn: String,
    pub cluster_arn: String,
    pub created_at: f64,
    pub started_at: Option<f64>,
    pub finished_at: Option<f64>,
    pub stopped_at: Option<f64>,
    pub updated_at: f64,
    pub target_revision: String,
    pub source_revisions: Vec<String>,
    pub status: String,
    pub status_reason: Option<String>,
    pub lifecycle_stage: Option<String>,
    pub hooks: Vec<HookRun>,
    pub config: Value,
    pub rollback: Option<Value>,
    pub cb_status: String,
    pub cb_threshold: i64,
    pub cb_failures: i64,
    pub alarms_status: String,
    pub triggered_alarms: Vec<String>,
    /// ECS deployment id currently carrying this service deployment.
    pub deployment_id: String,
    #[serde(default)]
    pub bg: Option<BgState>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Revision {
    pub arn: String,
    pub service_arn: String,
    pub cluster_arn: String,
    pub task_def: String,
    pub launch_type: String,
    pub platform_version: Option<String>,
    pub network: Value,
    pub load_balancers: Value,
    pub images: Vec<Value>,
    pub created_at: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Cluster {
    pub name: String,
    pub arn: String,
    pub status: String,
    pub settings: Value,
    pub tags: Vec<Value>,
    /// CreateCluster's `configuration` (`executeCommandConfiguration`), as given.
    #[serde(default)]
    pub configuration: Value,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct World {
    pub region: String,
    pub account: String,
    pub now: f64,
    pub rng: Rng,
    pub seq: u64,
    pub clusters: BTreeMap<String, Cluster>,
    /// Family -> revisions (index = revision - 1), each the described task definition.
    pub taskdefs: BTreeMap<String, Vec<Value>>,
    pub services: BTreeMap<String, Service>,
    pub tasks: BTreeMap<String, Task>,
    pub sds: BTreeMap<String, ServiceDeployment>,
    pub revisions: BTreeMap<String, Revision>,
    pub tags: BTreeMap<String, Vec<Value>>,
    pub queue: BinaryHeap<Sched>,
    pub faults: Faults,
    pub events_processed: u64,
    #[serde(default)]
    pub elbv2: Elbv2,
    #[serde(default)]
    pub ecr: Ecr,
    #[serde(default)]
    pub codedeploy: super::codedeploy::CodeDeploy,
    #[serde(default)]
    pub ssm: super::ssm::Ssm,
    #[serde(default)]
    pub logs: super::logs::Logs,
    /// Express Mode services, by service key.
    #[serde(default)]
    pub express: BTreeMap<String, super::express::ExpressService>,
    #[serde(default)]
    pub autoscaling: super::autoscaling::AutoScaling,
    #[serde(default)]
    pub iam: super::iam::Iam,
    #[serde(default)]
    pub secrets: super::secretsmanager::Secrets,
    #[serde(default)]
    pub cloudformation: super::cloudformation::CloudFormation,
    #[serde(default)]
    pub s3: super::s3::S3,
}

/// Default timings (virtual seconds).
const PROVISION: (f64, f64) = (6.0, 12.0);
const PULL_START: (f64, f64) = (12.0, 24.0);
const PULL_FAIL: (f64, f64) = (4.0, 8.0);
/// How long the containers take to stop after SIGTERM.
const STOP_DRAIN: (f64, f64) = (4.0, 10.0);
/// DEPROVISIONING: detaching and deleting the task's network interface.
const DEPROVISION: f64 = 2.0;
const HEALTH_STABLE: f64 = 30.0;

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

/// Task ids as ECS lists them in service events: `(task a) (task b)`.
pub fn task_list(ids: &[String]) -> String {
    ids.iter()
        .map(|t| format!("(task {t})"))
        .collect::<Vec<_>>()
        .join(" ")
}

pub fn service_key(cluster: &str, name: &str) -> String {
    format!("{cluster}/{name}")
}

impl World {
    pub fn new(region: &str, seed: u64, now: f64) -> Self {
        World {
            region: region.to_string(),
            account: ACCOUNT.to_string(),
            now,
            rng: Rng::new(seed),
            seq: 0,
            clusters: BTreeMap::new(),
            taskdefs: BTreeMap::new(),
            services: BTreeMap::new(),
            tasks: BTreeMap::new(),
            sds: BTreeMap::new(),
            revisions: BTreeMap::new(),
            tags: BTreeMap::new(),
            queue: BinaryHeap::new(),
            faults: Faults::default(),
            events_processed: 0,
            elbv2: Elbv2::new(region, ACCOUNT),
            ecr: Ecr::new(region, ACCOUNT),
            codedeploy: Default::default(),
            ssm: Default::default(),
            logs: Default::default(),
            express: Default::default(),
            autoscaling: Default::default(),
            iam: Default::default(),
            secrets: Default::default(),
            cloudformation: Default::default(),
            s3: Default::default(),
        }
    }

    /// The same (empty) world standing in for `account`: its ARNs and its ECR registry.
    pub fn in_account(mut self, account: &str) -> Self {
        self.account = account.to_string();
        self.elbv2 = Elbv2::new(&self.region, account);
        self.ecr = Ecr::new(&self.region, account);
        self
    }

    /// The tasks of a service (through its index).
    pub fn svc_tasks<'a>(&'a self, key: &str) -> impl Iterator<Item = &'a Task> + 'a {
        let ids: &'a [String] = self
            .services
            .get(key)
            .map(|s| s.task_ids.as_slice())
            .unwrap_or(&[]);
        ids.iter().filter_map(|id| self.tasks.get(id))
    }

    pub fn arn(&self, resource: &str) -> String {
        format!("arn:aws:ecs:{}:{}:{resource}", self.region, self.account)
    }

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

    pub fn new_event(&mut self, key: &str, message: String) {
        let id = format!(
            "{}-{}-{}-{}-{}",
            self.rng.hex(8),
            self.rng.hex(4),
            self.rng.hex(4),
            self.rng.hex(4),
            self.rng.hex(12)
        );
        let now = self.now;
        if let Some(s) = self.services.get_mut(key) {
            s.events
                .push_front(json!({"id": id, "createdAt": ts(now), "message": message}));
            s.events.truncate(MAX_EVENTS);
        }
    }

    fn svc_label(&self, key: &str) -> String {
        self.services
            .get(key)
            .map(|s| s.name.clone())
            .unwrap_or_default()
    }

    // ---------------------------------------------------------------- tasks

    /// Build the plan of a task from its task definition and the faults of its images.
    fn plan_for(&self, taskdef: &Value) -> (Plan, Vec<Container>) {
        let mut plan = Plan::default();
        let mut containers = Vec::new();
        let defs = taskdef
            .get("containerDefinitions")
            .and_then(Value::as_array);
        for c in defs.into_iter().flatten() {
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
            let faults = self.faults.for_image(&image);
            for f in &faults {
                match *f {
                    ImageFault::PullFail => {
                        plan.pull_fail = Some(format!(
                            "CannotPullContainerError: pull image manifest has been retried 7 time(s): failed to resolve ref {image}: not found"
                        ))
                    }
                    ImageFault::Crash(d) if essential => plan.crash = Some((d, 1)),
                    ImageFault::Exit(d) if essential => plan.crash = Some((d, 0)),
                    ImageFault::ExitCode(code, d) if essential => plan.crash = Some((d, code)),
                    ImageFault::Unhealthy => plan.unhealthy = true,
                    ImageFault::ElbUnhealthy => plan.elb_unhealthy = true,
                    ImageFault::SlowStart(d) => plan.slow += d,
                    ImageFault::HookFail => plan.hook_fail = true,
                    ImageFault::HookTimeout => plan.hook_timeout = true,
                    _ => {}
                }
            }
            if plan.pull_fail.is_none() && self.image_missing(&image) {
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
            containers.push(Container {
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
                port_mappings: ports,
            });
        }
        (plan, containers)
    }

    /// Hook for the ECR model: whether an image reference points at a missing ECR image.
    /// Fault segments in the tag are scenario notes, not part of the image's name.
    pub fn image_missing(&self, image: &str) -> bool {
        self.ecr.resolve(&super::faults::without_faults(image)) == Some(false)
    }

    pub fn find_taskdef(&self, arn: &str) -> Option<&Value> {
        let rest = arn
            .rsplit_once(":task-definition/")
            .map(|(_, r)| r)
            .unwrap_or(arn);
        let (family, rev) = rest.rsplit_once(':')?;
        let rev: usize = rev.parse().ok()?;
        self.taskdefs.get(family)?.get(rev.checked_sub(1)?)
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
        let arn = self.arn(&format!("task/{cluster}/{id}"));
        let td = self
            .find_taskdef(task_def_arn)
            .cloned()
            .unwrap_or(Value::Null);
        let (plan, containers) = self.plan_for(&td);
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
    fn register_targets(&mut self, id: &str) {
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
    fn elb_check(&mut self, id: &str) {
        let now = self.now;
        let Some(t) = self.tasks.get(id) else { return };
        if t.last_status != "RUNNING" || !t.live() || t.elb_healthy || t.targets.is_empty() {
            return;
        }
        let ip = t.ip.clone();
        let targets = t.targets.clone();
        let key = t.service.clone();
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
                    self.new_event(k, format!("(service {name}) (task {id}) (port {port}) is unhealthy in (target-group {tg}) due to (reason Health checks failed)."));
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

    fn handle(&mut self, ev: Ev, target: &str) {
        let now = self.now;
        match ev {
            Ev::Reconcile => {
                if let Some(s) = self.services.get_mut(target)
                    && s.reconcile_at.is_some_and(|t| t <= now)
                {
                    s.reconcile_at = None;
                }
                self.reconcile(target);
                return;
            }
            Ev::Purge => {
                if let Some(t) = self.tasks.remove(target)
                    && let Some(s) = t.service.and_then(|k| self.services.get_mut(&k))
                {
                    s.task_ids.retain(|x| x != target);
                }
                return;
            }
            _ => {}
        }
        let Some(t) = self.tasks.get_mut(target) else {
            return;
        };
        let id = t.id.clone();
        let service = t.service.clone();
        match ev {
            Ev::Provisioned => {
                if t.last_status != "PROVISIONING" || !t.live() {
                    return;
                }
                t.last_status = "PENDING".into();
                t.pull_started_at = Some(now);
                if t.plan.pull_fail.is_some() {
                    let at = now + self.rng.range(PULL_FAIL.0, PULL_FAIL.1);
                    self.schedule(at, Ev::PullFailed, &id);
                } else {
                    let slow = t.plan.slow;
                    let at = now + self.rng.range(PULL_START.0, PULL_START.1) + slow;
                    self.schedule(at, Ev::Started, &id);
                }
            }
            Ev::PullFailed => {
                if !t.live() {
                    return;
                }
                let reason = t.plan.pull_fail.clone().unwrap_or_default();
                t.pull_stopped_at = Some(now);
                for c in &mut t.containers {
                    c.last_status = "STOPPED".into();
                    c.reason = Some(reason.clone());
                }
                self.stop_task(&id, "TaskFailedToStart", &reason, true);
            }
            Ev::Started => {
                if t.last_status != "PENDING" || !t.live() {
                    return;
                }
                t.last_status = "RUNNING".into();
                t.pull_stopped_at = Some(now - 1.0);
                t.started_at = Some(now);
                let mut rids = Vec::new();
                for _ in 0..t.containers.len() {
                    rids.push(self.rng.hex(32));
                }
                let Some(t) = self.tasks.get_mut(&id) else {
                    return;
                };
                for (c, rid) in t.containers.iter_mut().zip(rids) {
                    c.last_status = "RUNNING".into();
                    c.runtime_id = format!("{id}-{rid}")[..43.min(id.len() + 11)].to_string();
                }
                let lines: Vec<(String, String, String)> = t
                    .containers
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
                    .collect();
                for (group, stream, line) in lines {
                    self.logs.put(&group, &stream, now, &line);
                }
                let Some(t) = self.tasks.get_mut(&id) else {
                    return;
                };
                let plan = t.plan.clone();
                match plan.health_check {
                    Some((interval, retries, start)) => {
                        if plan.unhealthy {
                            self.schedule(now + start + interval * retries, Ev::HealthFail, &id);
                        } else {
                            self.schedule(now + interval.min(30.0), Ev::Healthy, &id);
                        }
                    }
                    None => {
                        t.healthy_at = Some(now);
                        self.schedule(now + HEALTH_STABLE, Ev::HealthStable, &id);
                    }
                }
                if let Some((after, code)) = plan.crash {
                    self.schedule(now + after, Ev::Exit(code), &id);
                }
                self.register_targets(&id);
                if let Some(key) = &service {
                    let name = self.svc_label(key);
                    let _ = name;
                }
            }
            Ev::Healthy => {
                if t.last_status != "RUNNING" || !t.live() {
                    return;
                }
                t.health = "HEALTHY".into();
                t.healthy_at = Some(now);
                for c in &mut t.containers {
                    if c.health.is_some() {
                        c.health = Some("HEALTHY".into());
                    }
                }
                self.schedule(now + HEALTH_STABLE, Ev::HealthStable, &id);
            }
            Ev::HealthStable => {
                if t.last_status != "RUNNING" || !t.live() {
                    return;
                }
                if let Some(key) = &service
                    && let Some(s) = self.services.get_mut(key)
                {
                    s.consecutive_failures = 0;
                    let reset = s
                        .deployment_configuration
                        .pointer("/deploymentCircuitBreaker/resetOnHealthyTask")
                        .and_then(Value::as_bool)
                        .unwrap_or(true);
                    let dep = self.tasks.get(&id).and_then(|t| t.deployment.clone());
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
            }
            Ev::HealthFail => {
                if t.last_status != "RUNNING" || !t.live() {
                    return;
                }
                t.health = "UNHEALTHY".into();
                for c in &mut t.containers {
                    if c.health.is_some() {
                        c.health = Some("UNHEALTHY".into());
                    }
                }
                let grace_end = t.started_at.unwrap_or(now)
                    + service
                        .as_ref()
                        .and_then(|k| self.services.get(k))
                        .map(|s| s.grace as f64)
                        .unwrap_or(0.0);
                if grace_end > now {
                    self.schedule(grace_end, Ev::HealthFail, &id);
                    return;
                }
                if let Some(key) = &service {
                    let name = self.svc_label(key);
                    self.new_event(
                        key,
                        format!("(service {name}) (task {id}) failed container health checks."),
                    );
                }
                self.stop_task(
                    &id,
                    "ServiceSchedulerInitiated",
                    "Task failed container health checks",
                    true,
                );
            }
            Ev::ElbCheck => self.elb_check(&id),
            Ev::Exit(code) => {
                if t.last_status != "RUNNING" || !t.live() {
                    return;
                }
                let mut line = None;
                for c in &mut t.containers {
                    if c.essential {
                        c.exit_code = Some(code);
                        c.last_status = "STOPPED".into();
                        line = c
                            .awslogs
                            .clone()
                            .map(|(group, prefix)| (group, format!("{prefix}/{}/{id}", c.name)));
                        break;
                    }
                }
                if let Some((group, stream)) = line {
                    self.logs
                        .put(&group, &stream, now, &format!("exiting with code {code}"));
                }
                self.stop_task(
                    &id,
                    "EssentialContainerExited",
                    "Essential container in task exited",
                    code != 0,
                );
            }
            Ev::Deactivated => {
                if t.last_status != "DEACTIVATING" {
                    return;
                }
                t.last_status = "STOPPING".into();
            }
            Ev::ContainersStopped => {
                if !matches!(t.last_status.as_str(), "DEACTIVATING" | "STOPPING") {
                    return;
                }
                t.last_status = "DEPROVISIONING".into();
                stop_containers(t, now);
            }
            Ev::StopDone => {
                if t.last_status == "STOPPED" {
                    return;
                }
                t.last_status = "STOPPED".into();
                t.stopped_at = Some(now);
                stop_containers(t, now);
                t.health = "UNKNOWN".into();
                self.schedule(now + STOPPED_TASK_TTL, Ev::Purge, &id);
            }
            Ev::Reconcile | Ev::Purge => {}
        }
        if let Some(key) = service {
            self.reconcile(&key);
        }
    }

    // ------------------------------------------------------------ services

    /// A task of `dep` failed: count it, back off launches, trip the circuit breaker.
    fn on_task_failed(&mut self, key: &str, dep: &str, _task: &str) {
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

    pub(crate) fn complete_pub(&mut self, key: &str) {
        self.complete(key);
    }

    fn complete(&mut self, key: &str) {
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

fn s_cluster(w: &World, key: &str) -> String {
    w.services
        .get(key)
        .map(|s| s.cluster.clone())
        .unwrap_or_default()
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
