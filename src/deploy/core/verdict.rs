//! The verdict: did the deployment WE started succeed, fail, or is it still going?
//!
//! Receives what one poll saw of a service ([`Snapshot`], plain data the watcher extracts from
//! DescribeServices, DescribeServiceDeployments, DescribeTasks and DescribeTargetHealth) and
//! the handles of our deployment ([`Ours`]). Hands on a [`Verdict`]. Pure: no I/O, no clock.
//!
//! Rules of the house: the verdict belongs to our deployment (its id and service-deployment
//! ARN), never to "the service looks stable". A deployment that was rolled back is a failure,
//! whoever rolled it back. Success needs our deployment COMPLETED, PRIMARY, alone, with
//! running = desired on our task definition, and healthy targets where there is a load
//! balancer. A conclusive signal (the same non-transient stop reason N times) fails fast,
//! before the circuit breaker trips.

use std::collections::BTreeMap;
use std::time::Duration;

use super::state::{
    DeploymentStatus, HookStatus, LifecycleStage, MonitorStatus, RolloutState,
    ServiceDeploymentStatus, ServiceStatus, Strategy, TargetState,
};

/// The handles of the deployment we started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ours {
    /// The deployment id from the UpdateService/CreateService answer (`ecs-svc/...`).
    pub deployment_id: String,
    /// `service.currentServiceDeployment` from the same answer, when the API gave one.
    pub service_deployment_arn: Option<String>,
    pub task_definition_arn: String,
}

/// One entry of `service.deployments[]`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DeploymentView {
    pub id: String,
    pub status: DeploymentStatus,
    pub task_definition_arn: String,
    pub desired: i32,
    pub pending: i32,
    pub running: i32,
    pub failed: i32,
    /// Absent on old controllers.
    pub rollout_state: RolloutState,
    pub rollout_state_reason: Option<String>,
    /// When ECS created the deployment (seconds since the epoch, in ECS's clock).
    pub created_at: Option<f64>,
}

/// What DescribeServiceDeployments says about our service deployment.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ServiceDeploymentView {
    pub arn: String,
    pub status: ServiceDeploymentStatus,
    pub status_reason: Option<String>,
    pub lifecycle_stage: LifecycleStage,
    /// Why ECS rolled back, when it did (`rollback.reason`).
    pub rollback_reason: Option<String>,
    /// Circuit breaker status (TRIGGERED | MONITORING | ...), failure count and threshold.
    pub circuit_breaker: Option<(MonitorStatus, i32, i32)>,
    /// Alarm status (TRIGGERED | MONITORING | ...) and the alarms that fired.
    pub alarms: Option<(MonitorStatus, Vec<String>)>,
    /// Lifecycle hook invocations (`lifecycleHookDetails`), in the order ECS lists them.
    pub hooks: Vec<HookView>,
}

impl ServiceDeploymentView {
    /// The PAUSE hook waiting for an answer, when there is one.
    pub fn awaiting(&self) -> Option<&HookView> {
        self.hooks
            .iter()
            .find(|h| h.status == HookStatus::AwaitingAction)
    }
}

/// One lifecycle hook invocation of a service deployment.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HookView {
    pub hook_id: String,
    /// AWS_LAMBDA or PAUSE.
    pub target_type: String,
    pub status: HookStatus,
    /// When ECS stops waiting (seconds since the epoch, ECS's clock).
    pub expires_at: Option<i64>,
    /// What ECS does then: CONTINUE or ROLLBACK.
    pub timeout_action: Option<String>,
}

/// A stopped task started by some deployment.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StoppedTask {
    pub task_arn: String,
    /// The deployment id that started it.
    pub started_by: Option<String>,
    pub stop_code: Option<String>,
    pub stopped_reason: Option<String>,
    /// Reasons and exit codes of the task's containers: (name, reason, exit code).
    pub containers: Vec<(String, Option<String>, Option<i32>)>,
    /// How long its containers ran (startedAt to stoppedAt, in ms), when they started.
    pub lived_ms: Option<i64>,
}

/// The health of one registered target.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TargetView {
    pub target_group_arn: String,
    pub id: String,
    pub state: TargetState,
    pub reason: Option<String>,
    /// ELB's description of the state ("Health checks failed with these codes: [404]").
    pub description: Option<String>,
}

/// Everything one poll saw of a service.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Snapshot {
    pub service_status: ServiceStatus,
    pub deployments: Vec<DeploymentView>,
    pub service_deployment: Option<ServiceDeploymentView>,
    /// Tasks of this service that stopped, newest first (those we have seen so far).
    pub stopped_tasks: Vec<StoppedTask>,
    /// Targets of the service's target groups. Empty when there is no load balancer.
    pub targets: Vec<TargetView>,
    /// IPs of our deployment's running tasks, to pick our targets out of `targets`.
    pub our_task_ips: Vec<String>,
    /// Whether the service has a load balancer (then healthy targets are required).
    pub has_load_balancer: bool,
    /// How many load balancer entries the service has (each task must be healthy behind each
    /// one; blue/green pairs of target groups count once). 0 when unknown.
    pub load_balancers: usize,
    /// The service's deployment strategy.
    pub strategy: Strategy,
    /// `earlySuccessCriteria` is on (rolling): ECS declares success at a healthy percentage
    /// and finishes scaling and cleaning up in the background.
    pub early_success: bool,
}

impl Snapshot {
    /// How many target groups each task must be healthy in (at least 1): one per load
    /// balancer entry of the service (a blue/green pair counts once: a task registers in one of
    /// the two), else the distinct groups of the targets seen.
    pub fn target_groups(&self) -> usize {
        if self.load_balancers > 0 {
            return self.load_balancers;
        }
        self.targets
            .iter()
            .map(|t| t.target_group_arn.as_str())
            .collect::<std::collections::BTreeSet<_>>()
            .len()
            .max(1)
    }
}

/// Fast-fail rules: conclusive signals that end a deployment before ECS gives up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FastFail {
    pub enabled: bool,
    /// Fail after this many of our tasks stopped with the same non-transient reason.
    pub same_reason_stops: usize,
    /// Fail when one of our targets has been unhealthy this long (counted by the watcher and
    /// passed in as `unhealthy_for`).
    pub unhealthy_target_for: Duration,
}

impl Default for FastFail {
    fn default() -> Self {
        FastFail {
            enabled: true,
            // The circuit breaker trips at 3 failed tasks at the least (50% of desired,
            // bounded to 3..200): to fail before it, the rule must fire on fewer.
            same_reason_stops: 2,
            unhealthy_target_for: Duration::from_secs(300),
        }
    }
}

/// Why a deployment failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// ECS marked our deployment FAILED (circuit breaker without rollback, for example).
    RolloutFailed { reason: String },
    /// Our deployment was rolled back: by the circuit breaker, an alarm, or someone else.
    RolledBack { by: String, reason: String },
    /// A deployment we did not start replaced ours.
    Superseded { by_deployment: String },
    /// A conclusive signal before ECS gave up.
    FastFail { rule: String, detail: String },
    /// The service was deleted or is draining.
    ServiceGone { status: String },
    /// (Following a rollback) the service did not get back to the earlier revision.
    RollbackFailed { reason: String },
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::RolloutFailed { reason } => write!(f, "the rollout failed: {reason}"),
            Failure::RolledBack { by, reason } => write!(f, "rolled back by {by}: {reason}"),
            Failure::Superseded { by_deployment } => {
                write!(
                    f,
                    "superseded by deployment {by_deployment}, which cortado did not start"
                )
            }
            Failure::FastFail { rule, detail } => write!(f, "failed fast ({rule}): {detail}"),
            Failure::ServiceGone { status } => write!(f, "the service is {status}"),
            Failure::RollbackFailed { reason } => write!(f, "{reason}"),
        }
    }
}

/// The verdict of one poll.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Still going; the string says what we are waiting for.
    Pending(String),
    Succeeded,
    Failed(Failure),
}

/// Stop reasons that are conclusive: retrying the same task definition will not help.
const NON_TRANSIENT: &[&str] = &[
    "CannotPullContainerError",
    "Essential container in task exited",
    "Task failed container health checks",
    "Task failed ELB health checks",
    "ResourceInitializationError",
    "CannotStartContainerError",
    "CannotCreateContainerError",
    "OutOfMemoryError",
];

/// The conclusive reason a task stopped, when it has one.
pub(crate) fn non_transient_reason(task: &StoppedTask) -> Option<String> {
    let texts = task
        .stopped_reason
        .iter()
        .chain(task.containers.iter().filter_map(|c| c.1.as_ref()));
    for text in texts {
        if let Some(k) = NON_TRANSIENT.iter().find(|k| text.contains(**k)) {
            return Some((*k).to_string());
        }
    }
    None
}

/// Stop codes of tasks that failed, whatever their reason text says.
const FAILED_STOP_CODES: &[&str] = &["TaskFailedToStart", "EssentialContainerExited"];

/// Whether a stopped task failed (the notion the verdict uses): a conclusive reason
/// ([`non_transient_reason`]) or a stop code of failure. Tasks ECS stopped as surplus
/// ("Scaling activity initiated by ...", stop code `ServiceSchedulerInitiated`) or replaced by a
/// deployment did not fail.
pub(crate) fn task_failed(task: &StoppedTask) -> bool {
    task.stop_code
        .as_deref()
        .is_some_and(|c| FAILED_STOP_CODES.contains(&c))
        || non_transient_reason(task).is_some()
}

/// Judges our deployment from one snapshot. `unhealthy_for` is how long the longest-unhealthy
/// target of ours has been unhealthy (the watcher keeps that clock).
///
/// In order: the service-deployment API (authoritative when we have it), our entry in
/// `deployments[]`, the fast-fail rules on conclusive signals, then what success waits for.
pub(crate) fn judge(
    ours: &Ours,
    snap: &Snapshot,
    rules: &FastFail,
    unhealthy_for: Duration,
) -> Verdict {
    if snap.service_status != ServiceStatus::Active {
        return Verdict::Failed(Failure::ServiceGone {
            status: snap.service_status.to_string(),
        });
    }
    if let Some(sd) = &snap.service_deployment
        && let Some(failure) = service_deployment_failure(ours, snap, sd)
    {
        return Verdict::Failed(failure);
    }
    let mine = match our_entry(ours, snap) {
        Ok(mine) => mine,
        Err(failure) => return Verdict::Failed(failure),
    };
    if rules.enabled
        && let Some(f) = fast_fail(ours, snap, rules, unhealthy_for)
    {
        return Verdict::Failed(f);
    }
    progress(snap, mine)
}

/// Step 1: the failure the service-deployment API reports for our deployment, if any.
fn service_deployment_failure(
    ours: &Ours,
    snap: &Snapshot,
    sd: &ServiceDeploymentView,
) -> Option<Failure> {
    match &sd.status {
        // ECS failed our deployment and found nothing to return to (no deployment it
        // completed before, as for a service's first deployment): failed, and nothing
        // was rolled back.
        ServiceDeploymentStatus::RollbackFailed => Some(Failure::RolloutFailed {
            reason: format!(
                "{}; ECS could not roll it back",
                sd.status_reason
                    .clone()
                    .or_else(|| sd.rollback_reason.clone())
                    .unwrap_or_else(|| "ECS reports ROLLBACK_FAILED".into())
                    .trim_end_matches('.')
            ),
        }),
        status if status.is_rollback() => Some(Failure::RolledBack {
            by: rollback_actor(sd),
            reason: sd
                .rollback_reason
                .clone()
                .or_else(|| sd.status_reason.clone())
                .unwrap_or_else(|| "no reason given".into()),
        }),
        status if status.is_stopped() => {
            // ECS stops a service deployment when a newer one starts: when that newer
            // PRIMARY is not ours, someone else superseded us; nothing was rolled back.
            if let Some(p) = snap
                .deployments
                .iter()
                .find(|d| d.status == DeploymentStatus::Primary && d.id != ours.deployment_id)
                && sd.rollback_reason.is_none()
                && !is_older(
                    p,
                    snap.deployments.iter().find(|d| d.id == ours.deployment_id),
                )
            {
                return Some(Failure::Superseded {
                    by_deployment: p.id.clone(),
                });
            }
            Some(Failure::RolledBack {
                by: "a StopServiceDeployment call".into(),
                reason: sd.status_reason.clone().unwrap_or_else(|| "stopped".into()),
            })
        }
        _ => None,
    }
}

/// Step 2: our entry in `deployments[]`, while it is PRIMARY and not FAILED; otherwise what
/// became of it (gone, rolled back, superseded, failed).
fn our_entry<'a>(ours: &Ours, snap: &'a Snapshot) -> Result<&'a DeploymentView, Failure> {
    let mine = snap.deployments.iter().find(|d| d.id == ours.deployment_id);
    let primary = snap
        .deployments
        .iter()
        .find(|d| d.status == DeploymentStatus::Primary);
    let Some(mine) = mine else {
        return Err(match primary {
            Some(p) if p.task_definition_arn != ours.task_definition_arn => Failure::RolledBack {
                by: "ECS or another actor".into(),
                reason: format!(
                    "our deployment is gone and the service runs {} again",
                    short_arn(&p.task_definition_arn)
                ),
            },
            Some(p) => Failure::Superseded {
                by_deployment: p.id.clone(),
            },
            None => Failure::RolloutFailed {
                reason: "our deployment disappeared from the service".into(),
            },
        });
    };
    if mine.rollout_state == RolloutState::Failed {
        let reason = mine
            .rollout_state_reason
            .clone()
            .unwrap_or_else(|| "ECS marked the deployment FAILED".into());
        // With rollback on, ECS makes the last COMPLETED deployment PRIMARY again (its old
        // id) or, when that one is gone, starts a new one on the old revision.
        return Err(match primary {
            Some(p) if p.id != mine.id => Failure::RolledBack {
                by: "the deployment circuit breaker".into(),
                reason,
            },
            _ => Failure::RolloutFailed { reason },
        });
    }
    if mine.status != DeploymentStatus::Primary {
        return Err(not_primary(ours, mine, primary));
    }
    Ok(mine)
}

/// What it means that our deployment is no longer PRIMARY, given who is.
fn not_primary(ours: &Ours, mine: &DeploymentView, primary: Option<&DeploymentView>) -> Failure {
    match primary {
        // An older deployment PRIMARY again is a rollback, whatever revision it runs.
        Some(p) if is_older(p, Some(mine)) => Failure::RolledBack {
            by: "ECS or another actor".into(),
            reason: format!(
                "the earlier deployment {} ({}) is PRIMARY again",
                p.id,
                short_arn(&p.task_definition_arn)
            ),
        },
        Some(p) if p.task_definition_arn != ours.task_definition_arn => Failure::RolledBack {
            by: "ECS or another actor".into(),
            reason: format!(
                "deployment {} runs {}",
                p.id,
                short_arn(&p.task_definition_arn)
            ),
        },
        Some(p) => Failure::Superseded {
            by_deployment: p.id.clone(),
        },
        None => Failure::RolloutFailed {
            reason: format!("our deployment is {}", mine.status),
        },
    }
}

/// Step 4: success needs every condition; otherwise say what we wait for.
fn progress(snap: &Snapshot, mine: &DeploymentView) -> Verdict {
    let completed = match (&snap.service_deployment, &mine.rollout_state) {
        (Some(sd), _) => sd.status == ServiceDeploymentStatus::Successful,
        // Old controllers without rolloutState: steady counts are the only signal.
        (None, RolloutState::Absent) => mine.running == mine.desired && mine.pending == 0,
        (None, state) => *state == RolloutState::Completed,
    };
    if !completed {
        return Verdict::Pending(format!(
            "rollout in progress: {}/{} running, {} pending",
            mine.running, mine.desired, mine.pending
        ));
    }
    // With early success criteria ECS's SUCCESSFUL is the verdict: it already counted the
    // healthy share, and scales and cleans up in the background, as the user asked.
    if snap.early_success
        && snap
            .service_deployment
            .as_ref()
            .is_some_and(|sd| sd.status == ServiceDeploymentStatus::Successful)
    {
        return Verdict::Succeeded;
    }
    if snap.deployments.len() > 1 {
        return Verdict::Pending(format!(
            "waiting for {} older deployment(s) to drain",
            snap.deployments.len() - 1
        ));
    }
    if mine.running != mine.desired {
        return Verdict::Pending(format!("{}/{} tasks running", mine.running, mine.desired));
    }
    if snap.has_load_balancer && mine.desired > 0 {
        let our: Vec<&TargetView> = snap
            .targets
            .iter()
            .filter(|t| snap.our_task_ips.contains(&t.id))
            .collect();
        let healthy = our
            .iter()
            .filter(|t| t.state == TargetState::Healthy)
            .count();
        let need = mine.desired as usize * snap.target_groups();
        if healthy < need {
            return Verdict::Pending(format!("{healthy}/{need} targets healthy"));
        }
    }
    Verdict::Succeeded
}

pub(crate) fn fast_fail(
    ours: &Ours,
    snap: &Snapshot,
    rules: &FastFail,
    unhealthy_for: Duration,
) -> Option<Failure> {
    let mut counts: BTreeMap<String, (usize, String)> = BTreeMap::new();
    for t in &snap.stopped_tasks {
        if t.started_by.as_deref() != Some(ours.deployment_id.as_str()) {
            continue;
        }
        if let Some(reason) = non_transient_reason(t) {
            let detail = t
                .stopped_reason
                .clone()
                .or_else(|| t.containers.iter().find_map(|c| c.1.clone()))
                .unwrap_or_default();
            let e = counts.entry(reason).or_insert((0, detail));
            e.0 += 1;
        }
    }
    if let Some((reason, (n, detail))) = counts
        .into_iter()
        .filter(|(_, (n, _))| *n >= rules.same_reason_stops.max(1))
        .max_by_key(|(_, (n, _))| *n)
    {
        return Some(Failure::FastFail {
            rule: format!("{n} tasks stopped with {reason}"),
            detail,
        });
    }
    if !rules.unhealthy_target_for.is_zero() && unhealthy_for >= rules.unhealthy_target_for {
        let t = snap
            .targets
            .iter()
            .find(|t| t.state == TargetState::Unhealthy && snap.our_task_ips.contains(&t.id));
        return Some(Failure::FastFail {
            rule: format!("a target unhealthy for {}s", unhealthy_for.as_secs()),
            detail: t
                .and_then(|t| t.reason.clone())
                .unwrap_or_else(|| "target failed health checks".into()),
        });
    }
    None
}

fn rollback_actor(sd: &ServiceDeploymentView) -> String {
    if sd
        .circuit_breaker
        .as_ref()
        .is_some_and(|c| c.0 == MonitorStatus::Triggered)
    {
        "the deployment circuit breaker".into()
    } else if sd
        .alarms
        .as_ref()
        .is_some_and(|a| a.0 == MonitorStatus::Triggered)
    {
        let names = sd
            .alarms
            .as_ref()
            .map(|a| a.1.join(", "))
            .unwrap_or_default();
        if names.is_empty() {
            "a CloudWatch alarm".into()
        } else {
            format!("CloudWatch alarm {names}")
        }
    } else {
        "a rollback request".into()
    }
}

/// Whether deployment `a` was created before `b` (both timestamps known).
pub(crate) fn is_older(a: &DeploymentView, b: Option<&DeploymentView>) -> bool {
    match (a.created_at, b.and_then(|b| b.created_at)) {
        (Some(a), Some(b)) => a < b,
        _ => false,
    }
}

/// `family:revision` of a task definition ARN (the whole string when it is not an ARN).
pub(crate) fn short_arn(arn: &str) -> &str {
    arn.rsplit('/').next().unwrap_or(arn)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NEW: &str = "arn:aws:ecs:us-east-1:1:task-definition/web:8";
    const OLD: &str = "arn:aws:ecs:us-east-1:1:task-definition/web:7";

    fn ours() -> Ours {
        Ours {
            deployment_id: "ecs-svc/2".into(),
            service_deployment_arn: None,
            task_definition_arn: NEW.into(),
        }
    }

    fn dep(id: &str, status: &str, td: &str, running: i32, state: &str) -> DeploymentView {
        DeploymentView {
            id: id.into(),
            status: status.into(),
            task_definition_arn: td.into(),
            desired: 2,
            pending: 0,
            running,
            failed: 0,
            rollout_state: state.into(),
            rollout_state_reason: None,
            // Higher ids are newer, as in the scenarios below.
            created_at: id.rsplit('/').next().and_then(|n| n.parse().ok()),
        }
    }

    fn snap(deployments: Vec<DeploymentView>) -> Snapshot {
        Snapshot {
            service_status: "ACTIVE".into(),
            deployments,
            ..Snapshot::default()
        }
    }

    fn judge0(s: &Snapshot) -> Verdict {
        judge(&ours(), s, &FastFail::default(), Duration::ZERO)
    }

    #[test]
    fn completed_alone_and_full_is_success() {
        let s = snap(vec![dep("ecs-svc/2", "PRIMARY", NEW, 2, "COMPLETED")]);
        assert_eq!(judge0(&s), Verdict::Succeeded);
    }

    #[test]
    fn completed_but_old_deployment_still_draining_is_pending() {
        let s = snap(vec![
            dep("ecs-svc/2", "PRIMARY", NEW, 2, "COMPLETED"),
            dep("ecs-svc/1", "ACTIVE", OLD, 1, "COMPLETED"),
        ]);
        assert!(matches!(judge0(&s), Verdict::Pending(m) if m.contains("drain")));
    }

    #[test]
    fn circuit_breaker_rollback_is_a_failure_even_when_the_service_is_stable() {
        // The classic false success: ECS rolled back and the service is steady on the OLD
        // revision. Our deployment is FAILED; a new PRIMARY runs the old task definition.
        let mut mine = dep("ecs-svc/2", "ACTIVE", NEW, 0, "FAILED");
        mine.rollout_state_reason = Some("circuit breaker: tasks failed to start".into());
        let s = snap(vec![dep("ecs-svc/3", "PRIMARY", OLD, 2, "COMPLETED"), mine]);
        match judge0(&s) {
            Verdict::Failed(Failure::RolledBack { by, reason }) => {
                assert!(by.contains("circuit breaker"), "{by}");
                assert!(reason.contains("tasks failed to start"), "{reason}");
            }
            v => panic!("wrong verdict {v:?}"),
        }
        // And once our deployment is gone entirely, it is still a rollback, not a success.
        let s = snap(vec![dep("ecs-svc/3", "PRIMARY", OLD, 2, "COMPLETED")]);
        assert!(matches!(
            judge0(&s),
            Verdict::Failed(Failure::RolledBack { .. })
        ));
    }

    #[test]
    fn service_deployment_status_is_authoritative() {
        let mut s = snap(vec![dep("ecs-svc/2", "PRIMARY", NEW, 2, "COMPLETED")]);
        s.service_deployment = Some(ServiceDeploymentView {
            arn: "arn:sd".into(),
            status: "ROLLBACK_IN_PROGRESS".into(),
            alarms: Some(("TRIGGERED".into(), vec!["p99-latency".into()])),
            ..ServiceDeploymentView::default()
        });
        match judge0(&s) {
            Verdict::Failed(Failure::RolledBack { by, .. }) => assert!(by.contains("p99-latency")),
            v => panic!("wrong verdict {v:?}"),
        }
        s.service_deployment.as_mut().unwrap().status = "IN_PROGRESS".into();
        assert!(matches!(judge0(&s), Verdict::Pending(_)));
        s.service_deployment.as_mut().unwrap().status = "SUCCESSFUL".into();
        assert_eq!(judge0(&s), Verdict::Succeeded);
    }

    #[test]
    fn someone_elses_deployment_supersedes_ours() {
        let s = snap(vec![
            dep("ecs-svc/9", "PRIMARY", NEW, 0, "IN_PROGRESS"),
            dep("ecs-svc/2", "ACTIVE", NEW, 2, "IN_PROGRESS"),
        ]);
        assert_eq!(
            judge0(&s),
            Verdict::Failed(Failure::Superseded {
                by_deployment: "ecs-svc/9".into()
            })
        );
    }

    #[test]
    fn a_newer_deployment_stopping_ours_is_a_supersession_not_a_rollback() {
        // Someone else's UpdateService: ECS stops our service deployment and starts theirs,
        // here on the same task definition (forceNewDeployment).
        let mut s = snap(vec![
            dep("ecs-svc/9", "PRIMARY", NEW, 0, "IN_PROGRESS"),
            dep("ecs-svc/2", "ACTIVE", NEW, 0, "IN_PROGRESS"),
        ]);
        s.service_deployment = Some(ServiceDeploymentView {
            arn: "arn:sd".into(),
            status: "STOPPED".into(),
            status_reason: Some("Stopped because a newer service deployment started.".into()),
            ..ServiceDeploymentView::default()
        });
        assert_eq!(
            judge0(&s),
            Verdict::Failed(Failure::Superseded {
                by_deployment: "ecs-svc/9".into()
            })
        );
        // A StopServiceDeployment that leaves ours PRIMARY is still a stop of ours.
        let mut s = snap(vec![dep("ecs-svc/2", "PRIMARY", NEW, 0, "IN_PROGRESS")]);
        s.service_deployment = Some(ServiceDeploymentView {
            arn: "arn:sd".into(),
            status: "STOPPED".into(),
            ..ServiceDeploymentView::default()
        });
        assert!(matches!(
            judge0(&s),
            Verdict::Failed(Failure::RolledBack { .. })
        ));
    }

    #[test]
    fn repeated_pull_errors_fail_fast_but_other_deployments_do_not_count() {
        let stopped = |by: &str| StoppedTask {
            task_arn: "t".into(),
            started_by: Some(by.into()),
            stopped_reason: Some(
                "CannotPullContainerError: pull image manifest has been retried 5 times".into(),
            ),
            ..StoppedTask::default()
        };
        let mut s = snap(vec![
            dep("ecs-svc/2", "PRIMARY", NEW, 0, "IN_PROGRESS"),
            dep("ecs-svc/1", "ACTIVE", OLD, 2, "COMPLETED"),
        ]);
        s.stopped_tasks = vec![
            stopped("ecs-svc/2"),
            stopped("ecs-svc/1"),
            stopped("ecs-svc/1"),
        ];
        assert!(
            matches!(judge0(&s), Verdict::Pending(_)),
            "1 of ours is below the threshold; the others' do not count"
        );
        s.stopped_tasks.push(stopped("ecs-svc/2"));
        match judge0(&s) {
            Verdict::Failed(Failure::FastFail { rule, detail }) => {
                assert!(
                    rule.contains("2 tasks stopped with CannotPullContainerError"),
                    "{rule}"
                );
                assert!(detail.contains("retried 5 times"), "{detail}");
            }
            v => panic!("wrong verdict {v:?}"),
        }
        let off = FastFail {
            enabled: false,
            ..FastFail::default()
        };
        assert!(matches!(
            judge(&ours(), &s, &off, Duration::ZERO),
            Verdict::Pending(_)
        ));
    }

    #[test]
    fn container_reason_counts_and_transient_stops_do_not() {
        let t = StoppedTask {
            started_by: Some("ecs-svc/2".into()),
            stopped_reason: Some("Scaling activity initiated by (deployment ecs-svc/2)".into()),
            containers: vec![("web".into(), None, Some(0))],
            ..StoppedTask::default()
        };
        assert_eq!(non_transient_reason(&t), None);
        let t = StoppedTask {
            containers: vec![(
                "web".into(),
                Some("OutOfMemoryError: Container killed".into()),
                Some(137),
            )],
            ..t
        };
        assert_eq!(
            non_transient_reason(&t).as_deref(),
            Some("OutOfMemoryError")
        );
    }

    #[test]
    fn load_balanced_service_needs_healthy_targets_of_our_tasks() {
        let mut s = snap(vec![dep("ecs-svc/2", "PRIMARY", NEW, 2, "COMPLETED")]);
        s.has_load_balancer = true;
        s.our_task_ips = vec!["10.0.0.1".into(), "10.0.0.2".into()];
        let target = |id: &str, state: &str| TargetView {
            target_group_arn: "tg".into(),
            id: id.into(),
            state: state.into(),
            reason: Some("Target.FailedHealthChecks".into()),
            description: None,
        };
        s.targets = vec![
            target("10.0.0.1", "healthy"),
            target("10.0.0.2", "initial"),
            target("10.0.0.9", "healthy"),
        ];
        assert!(matches!(judge0(&s), Verdict::Pending(m) if m.contains("1/2 targets healthy")));
        s.targets[1].state = "healthy".into();
        assert_eq!(judge0(&s), Verdict::Succeeded);
        s.targets[1].state = "unhealthy".into();
        let v = judge(&ours(), &s, &FastFail::default(), Duration::from_secs(301));
        assert!(
            matches!(v, Verdict::Failed(Failure::FastFail { .. })),
            "{v:?}"
        );
    }

    #[test]
    fn deleted_service_fails() {
        let mut s = snap(vec![]);
        s.service_status = "MISSING".into();
        assert!(matches!(
            judge0(&s),
            Verdict::Failed(Failure::ServiceGone { .. })
        ));
    }

    #[test]
    fn earlier_deployment_primary_again_is_a_rollback_even_on_the_same_revision() {
        // ECS's circuit-breaker rollback makes the last COMPLETED deployment (its old id)
        // PRIMARY again. With --force-new-deployment both run the same revision: it must
        // still read as a rollback, not as someone else's deployment.
        let s = snap(vec![
            dep("ecs-svc/1", "PRIMARY", NEW, 2, "IN_PROGRESS"),
            dep("ecs-svc/2", "ACTIVE", NEW, 0, "IN_PROGRESS"),
        ]);
        assert!(
            matches!(judge0(&s), Verdict::Failed(Failure::RolledBack { .. })),
            "{:?}",
            judge0(&s)
        );
        // A newer PRIMARY on the same revision is someone else's deployment.
        let s = snap(vec![
            dep("ecs-svc/3", "PRIMARY", NEW, 2, "IN_PROGRESS"),
            dep("ecs-svc/2", "ACTIVE", NEW, 0, "IN_PROGRESS"),
        ]);
        assert!(matches!(
            judge0(&s),
            Verdict::Failed(Failure::Superseded { .. })
        ));
    }

    #[test]
    fn scale_to_zero_succeeds_without_targets() {
        let mut d = dep("ecs-svc/2", "PRIMARY", NEW, 0, "COMPLETED");
        d.desired = 0;
        let mut s = snap(vec![d]);
        s.has_load_balancer = true;
        assert_eq!(judge0(&s), Verdict::Succeeded);
    }

    #[test]
    fn early_success_criteria_succeed_at_ecs_verdict_with_old_tasks_still_there() {
        let mut s = snap(vec![
            dep("ecs-svc/2", "PRIMARY", NEW, 1, "COMPLETED"),
            dep("ecs-svc/1", "ACTIVE", OLD, 2, "COMPLETED"),
        ]);
        s.service_deployment = Some(ServiceDeploymentView {
            status: ServiceDeploymentStatus::Successful,
            ..ServiceDeploymentView::default()
        });
        assert!(matches!(
            judge(&ours(), &s, &FastFail::default(), Duration::ZERO),
            Verdict::Pending(_)
        ));
        s.early_success = true;
        assert_eq!(
            judge(&ours(), &s, &FastFail::default(), Duration::ZERO),
            Verdict::Succeeded
        );
    }

    #[test]
    fn scale_in_and_replacement_are_not_failures() {
        let t = |code: &str, reason: &str| StoppedTask {
            task_arn: "t".into(),
            stop_code: Some(code.into()),
            stopped_reason: Some(reason.into()),
            ..StoppedTask::default()
        };
        assert!(!task_failed(&t(
            "ServiceSchedulerInitiated",
            "Scaling activity initiated by (deployment ecs-svc/2)"
        )));
        assert!(!task_failed(&t(
            "ServiceSchedulerInitiated",
            "Task replaced"
        )));
        assert!(task_failed(&t("EssentialContainerExited", "anything")));
        assert!(task_failed(&t("TaskFailedToStart", "Timeout")));
        assert!(task_failed(&t(
            "ServiceSchedulerInitiated",
            "Task failed ELB health checks in (target-group x)"
        )));
    }

    #[test]
    fn a_failed_first_deployment_is_not_called_rolled_back() {
        // A service's first deployment trips the circuit breaker: ECS has no deployment it
        // completed to return to and says ROLLBACK_FAILED. Nothing was rolled back: saying
        // "rolled back by the deployment circuit breaker" beside "not rolled back" would
        // contradict itself.
        let mut s = snap(vec![dep("ecs-svc/2", "PRIMARY", NEW, 0, "FAILED")]);
        s.service_deployment = Some(ServiceDeploymentView {
            status: ServiceDeploymentStatus::RollbackFailed,
            status_reason: Some(
                "ECS deployment circuit breaker: tasks failed to start. No deployment in \
                 COMPLETED state to roll back to."
                    .into(),
            ),
            circuit_breaker: Some(("TRIGGERED".into(), 3, 3)),
            ..ServiceDeploymentView::default()
        });
        match judge0(&s) {
            Verdict::Failed(Failure::RolloutFailed { reason }) => {
                assert!(
                    reason.contains("No deployment in COMPLETED state"),
                    "{reason}"
                );
                assert!(reason.ends_with("ECS could not roll it back"), "{reason}");
            }
            v => panic!("{v:?}"),
        }
    }
}
