//! The ECS state the world keeps: clusters, services, their deployments (ECS deployments,
//! service deployments and revisions), tasks and their containers, and the scheduled events.
//!
//! Plain data, saved and loaded with the sandbox's state file; the API handlers render it as
//! AWS JSON, the event loop and the scheduler change it.

use std::cmp::Ordering;
use std::collections::VecDeque;

use serde::{Deserialize, Serialize};
use serde_json::Value;

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
    /// The essential container is killed for its memory use when it exits (`oom`).
    #[serde(default)]
    pub oom: bool,
    /// Lines the essential container writes to its log before it stops (`log-<words>`).
    #[serde(default)]
    pub log_lines: Vec<String>,
    /// The HTTP code the app answers ELB health checks with (`health-404`).
    #[serde(default)]
    pub elb_answer: Option<u16>,
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
    /// The digest the image resolved to when the task was placed (an image of the sandbox's
    /// ECR); DescribeTasks reports it once the container started.
    #[serde(default)]
    pub digest: Option<String>,
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
