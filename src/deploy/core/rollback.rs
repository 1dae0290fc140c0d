//! Rollback decisions, pure: what a rollback does ([`rollback_plan`]) and when it is done
//! ([`judge_rollback`]).
//!
//! Receives typed facts (why the deploy ended, the config's rollback settings, the handles of
//! our deployment, the revision that ran before) or one [`Snapshot`]; hands on a
//! [`RollbackPlan`] or a [`Verdict`]. No I/O, no clock: the engine executes the plan and the
//! watcher applies the judge, so every rule here is tested without AWS.
//!
//! How ECS rolls back (its developer guide on the deployment circuit breaker): it takes the
//! most recent COMPLETED deployment and makes it PRIMARY and IN_PROGRESS again (same id, its
//! tasks usually still running), and stops the failed deployment's tasks. So a rollback is
//! done, for a CI job, when the earlier revision serves alone: its deployment PRIMARY with
//! every task running (and healthy in its target groups), the failed deployment's tasks gone
//! or draining. ECS then finishes cleaning up on its own (`--wait-rollback complete` waits for
//! that too: one deployment left, COMPLETED).

use serde::Serialize;

use super::state::{
    DeploymentStatus, RolloutState, ServiceDeploymentStatus, ServiceStatus, TargetState,
};
use std::time::Duration;

use super::outcome::{Cause, Remedy, RollbackPolicy, remedy};
use super::verdict::{
    DeploymentView, Failure, FastFail, Ours, Snapshot, TargetView, Verdict, judge, short_arn,
};

/// When a followed rollback counts as done.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum WaitRollback {
    /// The earlier revision serves alone (ECS may still be draining the failed tasks).
    #[default]
    Serving,
    /// One deployment left, COMPLETED: ECS has finished cleaning up.
    Complete,
}

/// Everything [`rollback_plan`] decides from.
#[derive(Debug, Clone)]
pub(crate) struct RollbackFacts<'a> {
    pub cause: &'a Cause,
    /// `rollout.rollback` and not `--no-rollback`.
    pub rollback_enabled: bool,
    /// `rollout.on_cancel: rollback`.
    pub rollback_on_cancel: bool,
    /// This deploy created the service.
    pub created_service: bool,
    /// The task definition the service ran before the deploy.
    pub previous: Option<&'a str>,
    pub ours: &'a Ours,
    /// The PAUSE hook our deployment was left waiting on, when it was.
    pub waiting_hook: Option<&'a str>,
}

/// What to do about a deployment that did not succeed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RollbackPlan {
    /// ECS already rolls back: follow it, do not fight it.
    FollowEcs,
    /// Our deployment is in flight and has a service-deployment ARN: StopServiceDeployment
    /// ROLLBACK (ECS returns to the source revision), then follow.
    StopDeployment { service_deployment_arn: String },
    /// Our deployment waits on a PAUSE hook: answer it with ROLLBACK
    /// (ContinueServiceDeployment), then follow.
    AnswerHook {
        service_deployment_arn: String,
        hook_id: String,
    },
    /// UpdateService to the revision that ran before, then follow.
    UpdateToPrevious { task_definition_arn: String },
    /// Leave it, and say why.
    Leave { why: &'static str },
}

/// Decides what a rollback does. Rules, in order:
/// 1. a deployment replaced by someone else's, or a service that is gone, is not ours to undo;
/// 2. a rollback ECS already started is followed (even with rollback disabled: it happens);
/// 3. a service this deploy created has no earlier revision to return to;
/// 4. cancelled runs roll back only with `on_cancel: rollback`; others only when enabled;
/// 5. in flight with a service-deployment ARN: answer a waiting PAUSE hook with ROLLBACK
///    (ContinueServiceDeployment), else StopServiceDeployment ROLLBACK;
/// 6. else UpdateService to the previous revision, when there is one (and it differs).
pub(crate) fn rollback_plan(f: &RollbackFacts<'_>) -> RollbackPlan {
    // Rules 1 to 4 are the outcome table's ([`remedy`]); rule 3 is ECS's reason it cannot undo.
    let created = (f.created_service && f.previous.is_none()).then_some(
        "this deploy created the service, so there is no previous revision to return to",
    );
    let policy = RollbackPolicy {
        enabled: f.rollback_enabled,
        on_cancel: f.rollback_on_cancel,
    };
    match remedy(f.cause, policy, created) {
        // ECS rolls back to a deployment it completed: follow it, whatever cortado would do.
        Remedy::Follow => return RollbackPlan::FollowEcs,
        Remedy::Leave(why) => return RollbackPlan::Leave { why },
        Remedy::Undo => {}
    }
    // A deployment ECS marked FAILED is over: stopping it does nothing; update instead.
    let over = matches!(f.cause, Cause::Failed(Failure::RolloutFailed { .. }));
    if let Some(arn) = &f.ours.service_deployment_arn
        && !over
    {
        if let Some(hook) = f.waiting_hook {
            return RollbackPlan::AnswerHook {
                service_deployment_arn: arn.clone(),
                hook_id: hook.to_string(),
            };
        }
        return RollbackPlan::StopDeployment {
            service_deployment_arn: arn.clone(),
        };
    }
    match f.previous.filter(|p| *p != f.ours.task_definition_arn) {
        Some(p) => RollbackPlan::UpdateToPrevious {
            task_definition_arn: p.to_string(),
        },
        None => RollbackPlan::Leave {
            why: "there is no previous task definition to return to",
        },
    }
}

/// One service deployment as ECS recorded it (ListServiceDeployments,
/// DescribeServiceDeployments, DescribeServiceRevisions): what [`rollback_target`] chooses
/// from.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct DeploymentRecord {
    pub arn: String,
    pub status: ServiceDeploymentStatus,
    /// Seconds since the epoch, in ECS's clock.
    pub created_at: f64,
    /// The task definition of its target revision, when known.
    pub target: Option<String>,
    /// The task definitions of its source revisions: what ran when it started.
    pub sources: Vec<String>,
}

/// Where a rollback goes, and which deployment of ECS's record says it served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RollbackTarget {
    pub task_definition_arn: String,
    /// The service deployment that vouches for it.
    pub deployment_arn: String,
    /// How: it is that deployment's target (it ended SUCCESSFUL), or one of its sources.
    pub as_source: bool,
}

impl RollbackTarget {
    /// Where the target comes from, in words.
    pub(crate) fn origin(&self) -> String {
        if self.as_source {
            format!(
                "what ran before service deployment {}",
                short_arn(&self.deployment_arn)
            )
        } else {
            format!(
                "the target of service deployment {}, which succeeded",
                short_arn(&self.deployment_arn)
            )
        }
    }
}

/// The revision a rollback returns to: the task definition that last ran successfully before
/// `current`, from ECS's own record — the target of the newest SUCCESSFUL deployment whose task
/// definition differs from `current` (`records` in any order); failing that, a source revision
/// of the deployment that rolled out `current`. A revision no deployment ever served
/// (registered by `cortado register` or `cortado run --task-def`) is never chosen, nor one a
/// failed deployment tried; revision numbers play no part. None when the record names none.
pub(crate) fn rollback_target(
    records: &[DeploymentRecord],
    current: &str,
) -> Option<RollbackTarget> {
    let mut newest_first: Vec<&DeploymentRecord> = records.iter().collect();
    newest_first.sort_by(|a, b| b.created_at.total_cmp(&a.created_at));
    let succeeded = || {
        newest_first
            .iter()
            .filter(|r| r.status == ServiceDeploymentStatus::Successful)
    };
    let differs = |td: &str| short_arn(td) != short_arn(current);
    if let Some(r) = succeeded().find(|r| r.target.as_deref().is_some_and(differs)) {
        return Some(RollbackTarget {
            task_definition_arn: r.target.clone().unwrap_or_default(),
            deployment_arn: r.arn.clone(),
            as_source: false,
        });
    }
    let rolled_out = succeeded().find(|r| r.target.as_deref().is_some_and(|t| !differs(t)))?;
    let source = rolled_out.sources.iter().find(|s| differs(s))?;
    Some(RollbackTarget {
        task_definition_arn: source.clone(),
        deployment_arn: rolled_out.arn.clone(),
        as_source: true,
    })
}

/// Where ECS returns when the deployment `current` (a service-deployment ARN) is stopped with
/// ROLLBACK: the target of the newest SUCCESSFUL deployment before it, whatever its task
/// definition (a same-revision redeploy returns to the same one).
pub(crate) fn ecs_returns_to(
    records: &[DeploymentRecord],
    current: &str,
) -> Option<RollbackTarget> {
    records
        .iter()
        .filter(|r| r.arn != current && r.status == ServiceDeploymentStatus::Successful)
        .max_by(|a, b| a.created_at.total_cmp(&b.created_at))
        .and_then(|r| {
            Some(RollbackTarget {
                task_definition_arn: r.target.clone()?,
                deployment_arn: r.arn.clone(),
                as_source: false,
            })
        })
}

/// Judges a rollback of our (failed) deployment `failed` from one snapshot: `Succeeded` when
/// the earlier revision serves as `mode` asks, `Failed` when the rollback itself failed.
///
/// "Switched back" is a matter of identity, never of revision numbers: another deployment
/// than `failed` is PRIMARY (ECS makes the earlier one PRIMARY again with its old id, and a
/// same-revision redeploy returns to the same revision), and our service deployment, when
/// there is one, has not ended in anything but a rollback.
pub(crate) fn judge_rollback(failed: &Ours, snap: &Snapshot, mode: WaitRollback) -> Verdict {
    let fail = |reason: String| Verdict::Failed(Failure::RollbackFailed { reason });
    if snap.service_status != ServiceStatus::Active {
        return fail(format!("the service is {}", snap.service_status));
    }
    let primary = snap
        .deployments
        .iter()
        .find(|d| d.status == DeploymentStatus::Primary);
    match snap.service_deployment.as_ref().map(|sd| &sd.status) {
        Some(ServiceDeploymentStatus::RollbackFailed) => {
            return fail("ECS reports ROLLBACK_FAILED".into());
        }
        // Another deployment replaced ours before the rollback took it back.
        Some(ServiceDeploymentStatus::Stopped) => {
            return fail(format!(
                "deployment {} replaced the one being rolled back{}",
                primary.map_or("(none)", |p| p.id.as_str()),
                primary
                    .map(|p| format!(" ({})", short_arn(&p.task_definition_arn)))
                    .unwrap_or_default()
            ));
        }
        _ => {}
    }
    let Some(primary) = primary else {
        return Verdict::Pending("no PRIMARY deployment yet".into());
    };
    if primary.id == failed.deployment_id {
        return Verdict::Pending(format!(
            "ECS has not switched back yet (deployment {} is still PRIMARY)",
            primary.id
        ));
    }
    if primary.rollout_state == RolloutState::Failed {
        return fail(format!(
            "the rollback deployment {} failed: {}",
            primary.id,
            primary.rollout_state_reason.clone().unwrap_or_default()
        ));
    }
    // `our_task_ips` are the failed deployment's tasks here.
    if let Err(waiting) = serves_alone(primary, snap, false) {
        return Verdict::Pending(waiting);
    }
    complete(primary, snap, mode)
}

/// Judges a rollback's own deployment `ours` (an UpdateService back to the earlier revision):
/// `Succeeded` once it serves as `mode` asks; `Failed` when it fails by [`judge`]'s rules (ECS
/// may roll it back in turn: the target is broken too).
pub(crate) fn judge_restored(
    ours: &Ours,
    snap: &Snapshot,
    rules: &FastFail,
    unhealthy_for: Duration,
    mode: WaitRollback,
) -> Verdict {
    let waiting = match judge(ours, snap, rules, unhealthy_for) {
        Verdict::Failed(f) => {
            return Verdict::Failed(Failure::RollbackFailed {
                reason: format!(
                    "the rollback's deployment {} to {} failed: {f}",
                    ours.deployment_id,
                    short_arn(&ours.task_definition_arn)
                ),
            });
        }
        Verdict::Succeeded => return Verdict::Succeeded,
        Verdict::Pending(waiting) => waiting,
    };
    let primary = snap
        .deployments
        .iter()
        .find(|d| d.status == DeploymentStatus::Primary && d.id == ours.deployment_id);
    match (mode, primary) {
        (WaitRollback::Serving, Some(p)) => match serves_alone(p, snap, true) {
            Ok(()) => Verdict::Succeeded,
            Err(w) => Verdict::Pending(w),
        },
        _ => Verdict::Pending(waiting),
    }
}

/// Whether `primary` serves alone: all its tasks running, no other deployment's task still
/// serving (behind a load balancer a task ECS is stopping drains and counts as stopped;
/// without one, only a stopped task has stopped working), and behind a load balancer its own
/// targets healthy. `snap.our_task_ips` are `primary`'s tasks when `ips_of_primary`, else the
/// tasks of the deployment it replaces.
fn serves_alone(
    primary: &DeploymentView,
    snap: &Snapshot,
    ips_of_primary: bool,
) -> std::result::Result<(), String> {
    let back = short_arn(&primary.task_definition_arn).to_string();
    if primary.running < primary.desired || primary.pending > 0 {
        return Err(format!(
            "{back}: {}/{} running, {} pending",
            primary.running, primary.desired, primary.pending
        ));
    }
    let of_primary = |t: &TargetView| snap.our_task_ips.contains(&t.id) == ips_of_primary;
    let others_running: i32 = snap
        .deployments
        .iter()
        .filter(|d| d.id != primary.id && (d.desired > 0 || !snap.has_load_balancer))
        .map(|d| d.running)
        .sum();
    let others_serving = snap
        .targets
        .iter()
        .any(|t| !of_primary(t) && matches!(t.state, TargetState::Healthy | TargetState::Initial));
    if others_running > 0 || others_serving {
        return Err(format!(
            "{back} runs; waiting for the failed deployment's tasks to stop"
        ));
    }
    if snap.has_load_balancer && primary.desired > 0 {
        let healthy = snap
            .targets
            .iter()
            .filter(|t| t.state == TargetState::Healthy && of_primary(t))
            .count();
        let need = primary.desired as usize * snap.target_groups();
        if healthy < need {
            return Err(format!("{back}: {healthy}/{need} targets healthy"));
        }
    }
    Ok(())
}

/// `--wait-rollback complete`: also one deployment left, COMPLETED.
fn complete(primary: &DeploymentView, snap: &Snapshot, mode: WaitRollback) -> Verdict {
    let back = short_arn(&primary.task_definition_arn);
    if mode == WaitRollback::Complete {
        if snap.deployments.len() > 1 {
            return Verdict::Pending(format!(
                "{back} serves; waiting for {} other deployment(s) to drain",
                snap.deployments.len() - 1
            ));
        }
        if !matches!(
            primary.rollout_state,
            RolloutState::Completed | RolloutState::Absent
        ) {
            return Verdict::Pending(format!("{back} serves; waiting for COMPLETED"));
        }
    }
    Verdict::Succeeded
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deploy::core::verdict::ServiceDeploymentView;

    const NEW: &str = "arn:aws:ecs:us-east-1:1:task-definition/web:8";
    const OLD: &str = "arn:aws:ecs:us-east-1:1:task-definition/web:7";

    fn ours(sd: bool) -> Ours {
        Ours {
            deployment_id: "ecs-svc/2".into(),
            service_deployment_arn: sd.then(|| "arn:sd/2".to_string()),
            task_definition_arn: NEW.into(),
        }
    }

    fn facts<'a>(cause: &'a Cause, ours: &'a Ours) -> RollbackFacts<'a> {
        RollbackFacts {
            cause,
            rollback_enabled: true,
            rollback_on_cancel: true,
            created_service: false,
            previous: Some(OLD),
            ours,
            waiting_hook: None,
        }
    }

    fn fast_fail() -> Cause {
        Cause::Failed(Failure::FastFail {
            rule: "2 tasks stopped".into(),
            detail: "CannotPullContainerError".into(),
        })
    }

    #[test]
    fn plan_table() {
        let with_sd = ours(true);
        let without_sd = ours(false);
        let ff = fast_fail();
        // In flight with an ARN: stop the service deployment.
        assert_eq!(
            rollback_plan(&facts(&ff, &with_sd)),
            RollbackPlan::StopDeployment {
                service_deployment_arn: "arn:sd/2".into()
            }
        );
        // Without one: update to the previous revision.
        assert_eq!(
            rollback_plan(&facts(&ff, &without_sd)),
            RollbackPlan::UpdateToPrevious {
                task_definition_arn: OLD.into()
            }
        );
        // ECS already rolls back: follow, even when our own rollback is disabled.
        let rolled = Cause::Failed(Failure::RolledBack {
            by: "the deployment circuit breaker".into(),
            reason: "x".into(),
        });
        let mut f = facts(&rolled, &with_sd);
        f.rollback_enabled = false;
        assert_eq!(rollback_plan(&f), RollbackPlan::FollowEcs);
        // ... and when this deploy created the service: ECS returns where it returns.
        f.created_service = true;
        f.previous = None;
        assert_eq!(rollback_plan(&f), RollbackPlan::FollowEcs);
        // Someone else's deployment is not ours to undo.
        let sup = Cause::Failed(Failure::Superseded {
            by_deployment: "ecs-svc/9".into(),
        });
        assert!(matches!(
            rollback_plan(&facts(&sup, &with_sd)),
            RollbackPlan::Leave { .. }
        ));
        // Disabled.
        let mut f = facts(&ff, &with_sd);
        f.rollback_enabled = false;
        assert_eq!(
            rollback_plan(&f),
            RollbackPlan::Leave {
                why: "rollback disabled"
            }
        );
        // Cancelled: on_cancel decides, not `rollback`.
        let cancelled = Cause::Cancelled;
        let mut f = facts(&cancelled, &with_sd);
        f.rollback_enabled = false;
        assert!(matches!(
            rollback_plan(&f),
            RollbackPlan::StopDeployment { .. }
        ));
        f.rollback_on_cancel = false;
        assert_eq!(
            rollback_plan(&f),
            RollbackPlan::Leave {
                why: "on_cancel is leave"
            }
        );
        // A created service has nothing to return to.
        let mut f = facts(&ff, &with_sd);
        f.created_service = true;
        f.previous = None;
        assert!(matches!(rollback_plan(&f), RollbackPlan::Leave { .. }));
        // A FAILED rollout (breaker without rollback) is over: update, do not stop.
        let failed = Cause::Failed(Failure::RolloutFailed { reason: "x".into() });
        assert_eq!(
            rollback_plan(&facts(&failed, &with_sd)),
            RollbackPlan::UpdateToPrevious {
                task_definition_arn: OLD.into()
            }
        );
        // Timed out with no previous revision different from ours: leave.
        let timed = Cause::TimedOut;
        let mut f = facts(&timed, &without_sd);
        f.previous = Some(NEW);
        assert!(matches!(rollback_plan(&f), RollbackPlan::Leave { .. }));
    }

    fn dep(
        id: &str,
        status: &str,
        td: &str,
        desired: i32,
        running: i32,
        state: &str,
    ) -> DeploymentView {
        DeploymentView {
            id: id.into(),
            status: status.into(),
            task_definition_arn: td.into(),
            desired,
            running,
            rollout_state: state.into(),
            created_at: id.rsplit('/').next().and_then(|n| n.parse().ok()),
            ..DeploymentView::default()
        }
    }

    fn snap(deployments: Vec<DeploymentView>) -> Snapshot {
        Snapshot {
            service_status: ServiceStatus::Active,
            deployments,
            ..Snapshot::default()
        }
    }

    fn target(id: &str, state: &str) -> TargetView {
        TargetView {
            target_group_arn: "tg".into(),
            id: id.into(),
            state: state.into(),
            reason: None,
            description: None,
        }
    }

    #[test]
    fn ecs_style_rollback_is_done_when_the_earlier_deployment_serves_alone() {
        let failed = ours(true);
        // ECS reactivated the earlier deployment (older id), ours still has running tasks.
        let mut s = snap(vec![
            dep("ecs-svc/1", "PRIMARY", OLD, 2, 2, "IN_PROGRESS"),
            dep("ecs-svc/2", "ACTIVE", NEW, 0, 1, "FAILED"),
        ]);
        assert!(matches!(
            judge_rollback(&failed, &s, WaitRollback::Serving),
            Verdict::Pending(m) if m.contains("failed deployment")
        ));
        // Our task stopped (its target drains): the earlier revision serves alone.
        s.deployments[1].running = 0;
        assert_eq!(
            judge_rollback(&failed, &s, WaitRollback::Serving),
            Verdict::Succeeded
        );
        // Complete mode waits for ECS to finish.
        assert!(matches!(
            judge_rollback(&failed, &s, WaitRollback::Complete),
            Verdict::Pending(_)
        ));
        s.deployments.truncate(1);
        s.deployments[0].rollout_state = RolloutState::Completed;
        assert_eq!(
            judge_rollback(&failed, &s, WaitRollback::Complete),
            Verdict::Succeeded
        );
    }

    #[test]
    fn rollback_needs_healthy_targets_of_the_earlier_tasks_only() {
        let failed = ours(true);
        let mut s = snap(vec![
            dep("ecs-svc/1", "PRIMARY", OLD, 2, 2, "IN_PROGRESS"),
            dep("ecs-svc/2", "ACTIVE", NEW, 0, 0, "FAILED"),
        ]);
        s.has_load_balancer = true;
        s.our_task_ips = vec!["10.0.0.9".into()];
        s.targets = vec![
            target("10.0.0.1", "healthy"),
            target("10.0.0.2", "initial"),
            target("10.0.0.9", "healthy"),
        ];
        // A task of the failed deployment still serves.
        assert!(matches!(
            judge_rollback(&failed, &s, WaitRollback::Serving),
            Verdict::Pending(_)
        ));
        s.targets[2].state = TargetState::Draining;
        assert!(matches!(
            judge_rollback(&failed, &s, WaitRollback::Serving),
            Verdict::Pending(m) if m.contains("1/2 targets healthy")
        ));
        s.targets[1].state = TargetState::Healthy;
        assert_eq!(
            judge_rollback(&failed, &s, WaitRollback::Serving),
            Verdict::Succeeded
        );
    }

    #[test]
    fn rollback_not_started_or_failed() {
        let failed = ours(true);
        // Still our deployment PRIMARY: not switched back yet.
        let s = snap(vec![dep("ecs-svc/2", "PRIMARY", NEW, 2, 0, "IN_PROGRESS")]);
        assert!(matches!(
            judge_rollback(&failed, &s, WaitRollback::Serving),
            Verdict::Pending(m) if m.contains("not switched back")
        ));
        // The rollback deployment itself failed.
        let s = snap(vec![dep("ecs-svc/3", "PRIMARY", OLD, 2, 0, "FAILED")]);
        assert!(matches!(
            judge_rollback(&failed, &s, WaitRollback::Serving),
            Verdict::Failed(Failure::RollbackFailed { .. })
        ));
        // ECS says ROLLBACK_FAILED.
        let mut s = snap(vec![dep("ecs-svc/2", "PRIMARY", NEW, 2, 0, "FAILED")]);
        s.service_deployment = Some(ServiceDeploymentView {
            status: ServiceDeploymentStatus::RollbackFailed,
            ..ServiceDeploymentView::default()
        });
        assert!(matches!(
            judge_rollback(&failed, &s, WaitRollback::Serving),
            Verdict::Failed(Failure::RollbackFailed { .. })
        ));
        // A new deployment of the old revision (UpdateService rollback) counts the same.
        let s = snap(vec![
            dep("ecs-svc/3", "PRIMARY", OLD, 2, 2, "IN_PROGRESS"),
            dep("ecs-svc/2", "ACTIVE", NEW, 0, 0, "FAILED"),
        ]);
        assert_eq!(
            judge_rollback(&failed, &s, WaitRollback::Serving),
            Verdict::Succeeded
        );
    }

    #[test]
    fn a_deployment_waiting_on_a_pause_hook_is_rolled_back_by_answering_it() {
        let ours = Ours {
            deployment_id: "ecs-svc/2".into(),
            service_deployment_arn: Some("arn:sd/2".into()),
            task_definition_arn: NEW.into(),
        };
        let cause = Cause::Cancelled;
        let mut f = facts(&cause, &ours);
        f.waiting_hook = Some("ecs-pause-1");
        assert_eq!(
            rollback_plan(&f),
            RollbackPlan::AnswerHook {
                service_deployment_arn: "arn:sd/2".into(),
                hook_id: "ecs-pause-1".into()
            }
        );
        f.waiting_hook = None;
        assert!(matches!(
            rollback_plan(&f),
            RollbackPlan::StopDeployment { .. }
        ));
    }

    fn rec(n: u32, status: &str, target: &str, sources: &[&str]) -> DeploymentRecord {
        let td = |r: &str| format!("arn:aws:ecs:us-east-1:1:task-definition/{r}");
        DeploymentRecord {
            arn: format!("arn:aws:ecs:us-east-1:1:service-deployment/c/web/sd{n}"),
            status: status.into(),
            created_at: f64::from(n),
            target: Some(td(target)),
            sources: sources.iter().map(|s| td(s)).collect(),
        }
    }

    fn target_of(records: &[DeploymentRecord], current: &str) -> Option<String> {
        rollback_target(
            records,
            &format!("arn:aws:ecs:us-east-1:1:task-definition/{current}"),
        )
        .map(|t| short_arn(&t.task_definition_arn).to_string())
    }

    #[test]
    fn the_rollback_target_is_what_last_ran_successfully_before_the_current_one() {
        // A good deploy after a good one: the one before.
        let plain = [
            rec(1, "SUCCESSFUL", "hello:1", &[]),
            rec(2, "SUCCESSFUL", "hello:2", &["hello:1"]),
        ];
        assert_eq!(target_of(&plain, "hello:2").as_deref(), Some("hello:1"));
        // hello:2 failed (rolled back), hello:3 fixed it: hello:2 never served.
        let fixed = [
            rec(1, "SUCCESSFUL", "hello:1", &[]),
            rec(2, "ROLLBACK_SUCCESSFUL", "hello:2", &["hello:1"]),
            rec(3, "SUCCESSFUL", "hello:3", &["hello:1", "hello:2"]),
        ];
        assert_eq!(target_of(&fixed, "hello:3").as_deref(), Some("hello:1"));
        // Revisions registered by `register` or `run --task-def` (hello:4, hello:5) are in no
        // deployment: never a target, whatever their numbers.
        let registered = [
            rec(1, "SUCCESSFUL", "hello:3", &[]),
            rec(2, "SUCCESSFUL", "hello:6", &["hello:3"]),
        ];
        assert_eq!(
            target_of(&registered, "hello:6").as_deref(),
            Some("hello:3")
        );
        // ECS rolled the newest back: the service runs hello:2 again, and a rollback goes to
        // what ran before hello:2.
        let undone = [
            rec(1, "SUCCESSFUL", "hello:1", &[]),
            rec(2, "SUCCESSFUL", "hello:2", &["hello:1"]),
            rec(3, "ROLLBACK_SUCCESSFUL", "hello:3", &["hello:2"]),
        ];
        assert_eq!(target_of(&undone, "hello:2").as_deref(), Some("hello:1"));
        // A same-revision redeploy (forceNewDeployment) is not a revision to return to.
        let same = [
            rec(1, "SUCCESSFUL", "hello:1", &[]),
            rec(2, "SUCCESSFUL", "hello:2", &["hello:1"]),
            rec(3, "SUCCESSFUL", "hello:2", &["hello:2"]),
        ];
        assert_eq!(target_of(&same, "hello:2").as_deref(), Some("hello:1"));
        // Back and forth: after an UpdateService back to hello:1, hello:2 ran before it.
        let again = [
            rec(1, "SUCCESSFUL", "hello:1", &[]),
            rec(2, "SUCCESSFUL", "hello:2", &["hello:1"]),
            rec(3, "SUCCESSFUL", "hello:1", &["hello:2"]),
        ];
        assert_eq!(target_of(&again, "hello:1").as_deref(), Some("hello:2"));
        // Only the current deployment is in the record (older ones predate it): its source.
        let alone = [rec(7, "SUCCESSFUL", "hello:9", &["hello:8"])];
        let t = rollback_target(&alone, "arn:aws:ecs:us-east-1:1:task-definition/hello:9").unwrap();
        assert_eq!(short_arn(&t.task_definition_arn), "hello:8");
        assert!(t.as_source && t.origin().contains("ran before service deployment sd7"));
        // Nothing served before: no target (the first deployment, or only failures).
        let first = [
            rec(1, "SUCCESSFUL", "hello:1", &[]),
            rec(2, "ROLLBACK_SUCCESSFUL", "hello:2", &["hello:1"]),
        ];
        assert_eq!(target_of(&first, "hello:1"), None);
        assert_eq!(target_of(&[], "hello:1"), None);
        // Where ECS returns when the in-flight sd3 is stopped: sd2's target, same revision or not.
        let flight = [
            rec(1, "SUCCESSFUL", "hello:1", &[]),
            rec(2, "SUCCESSFUL", "hello:2", &["hello:1"]),
            rec(3, "IN_PROGRESS", "hello:2", &["hello:2"]),
        ];
        let back = ecs_returns_to(&flight, &flight[2].arn).unwrap();
        assert_eq!(short_arn(&back.task_definition_arn), "hello:2");
    }

    #[test]
    fn a_same_revision_rollback_is_judged_by_deployment_identity() {
        // A blue/green redeploy of the same revision (forceNewDeployment) whose gate failed:
        // ECS made the earlier deployment PRIMARY again and our (failed) one has already left
        // `deployments[]`. Both run NEW; only the ids tell them apart.
        let failed = ours(true);
        let mut s = snap(vec![dep("ecs-svc/1", "PRIMARY", NEW, 2, 2, "COMPLETED")]);
        s.service_deployment = Some(ServiceDeploymentView {
            status: ServiceDeploymentStatus::RollbackSuccessful,
            ..ServiceDeploymentView::default()
        });
        assert_eq!(
            judge_rollback(&failed, &s, WaitRollback::Serving),
            Verdict::Succeeded
        );
        // While ours is still PRIMARY, ECS has not switched back, whatever revisions say.
        let s = snap(vec![
            dep("ecs-svc/2", "PRIMARY", NEW, 2, 2, "IN_PROGRESS"),
            dep("ecs-svc/1", "ACTIVE", NEW, 2, 2, "COMPLETED"),
        ]);
        assert!(matches!(
            judge_rollback(&failed, &s, WaitRollback::Serving),
            Verdict::Pending(m) if m.contains("ecs-svc/2 is still PRIMARY")
        ));
    }

    #[test]
    fn a_rollback_deployment_that_ecs_rolls_back_in_turn_is_a_failed_rollback() {
        // `cortado rollback` updated the service to web:7 (deployment ecs-svc/3); web:7 is
        // broken too, and the circuit breaker returned to web:8 (ecs-svc/2). The rollback
        // failed at once: no waiting for a switch that will never come.
        let restoring = Ours {
            deployment_id: "ecs-svc/3".into(),
            service_deployment_arn: Some("arn:sd/3".into()),
            task_definition_arn: OLD.into(),
        };
        let mut s = snap(vec![
            dep("ecs-svc/2", "PRIMARY", NEW, 2, 2, "IN_PROGRESS"),
            dep("ecs-svc/3", "ACTIVE", OLD, 0, 0, "FAILED"),
        ]);
        s.service_deployment = Some(ServiceDeploymentView {
            status: ServiceDeploymentStatus::RollbackInProgress,
            circuit_breaker: Some(("TRIGGERED".into(), 3, 3)),
            ..ServiceDeploymentView::default()
        });
        let v = judge_restored(
            &restoring,
            &s,
            &FastFail::default(),
            Duration::ZERO,
            WaitRollback::Serving,
        );
        match v {
            Verdict::Failed(Failure::RollbackFailed { reason }) => {
                assert!(reason.contains("ecs-svc/3 to web:7 failed"), "{reason}");
                assert!(reason.contains("circuit breaker"), "{reason}");
            }
            v => panic!("{v:?}"),
        }
        // The rollback's deployment serving alone is done, before ECS calls it COMPLETED.
        let mut s = snap(vec![
            dep("ecs-svc/3", "PRIMARY", OLD, 2, 2, "IN_PROGRESS"),
            dep("ecs-svc/2", "ACTIVE", NEW, 0, 0, "FAILED"),
        ]);
        s.service_deployment = Some(ServiceDeploymentView {
            status: ServiceDeploymentStatus::InProgress,
            ..ServiceDeploymentView::default()
        });
        let judged = |s: &Snapshot, mode| {
            judge_restored(&restoring, s, &FastFail::default(), Duration::ZERO, mode)
        };
        assert_eq!(judged(&s, WaitRollback::Serving), Verdict::Succeeded);
        assert!(matches!(
            judged(&s, WaitRollback::Complete),
            Verdict::Pending(_)
        ));
    }
}
