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
use super::verdict::{Failure, Ours, Snapshot, Verdict, is_older, short_arn};

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

/// Why the deploy is ending without success.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cause {
    Failed(Failure),
    TimedOut,
    Cancelled,
}

/// Everything [`rollback_plan`] decides from.
#[derive(Debug, Clone)]
pub struct RollbackFacts<'a> {
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
pub enum RollbackPlan {
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
/// 2. a service this deploy created has no earlier revision to return to;
/// 3. a rollback ECS already started is followed (even with rollback disabled: it happens);
/// 4. cancelled runs roll back only with `on_cancel: rollback`; others only when enabled;
/// 5. in flight with a service-deployment ARN: answer a waiting PAUSE hook with ROLLBACK
///    (ContinueServiceDeployment), else StopServiceDeployment ROLLBACK;
/// 6. else UpdateService to the previous revision, when there is one (and it differs).
pub fn rollback_plan(f: &RollbackFacts<'_>) -> RollbackPlan {
    if let Cause::Failed(Failure::Superseded { .. } | Failure::ServiceGone { .. }) = f.cause {
        return RollbackPlan::Leave {
            why: "the service is no longer ours to change",
        };
    }
    // Whatever ECS tries, a service this deploy created has no earlier revision to serve.
    if f.created_service && f.previous.is_none() {
        return RollbackPlan::Leave {
            why: "this deploy created the service, so there is no previous revision to return to",
        };
    }
    if let Cause::Failed(Failure::RolledBack { .. }) = f.cause {
        return RollbackPlan::FollowEcs;
    }
    let wanted = match f.cause {
        Cause::Cancelled => f.rollback_on_cancel,
        _ => f.rollback_enabled,
    };
    if !wanted {
        return RollbackPlan::Leave {
            why: if matches!(f.cause, Cause::Cancelled) {
                "on_cancel is leave"
            } else {
                "rollback disabled"
            },
        };
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

/// Judges a rollback of our (failed) deployment `failed` from one snapshot: `Succeeded` when
/// the earlier revision serves as `mode` asks, `Failed` when the rollback itself failed.
pub fn judge_rollback(failed: &Ours, snap: &Snapshot, mode: WaitRollback) -> Verdict {
    if let Some(cd) = &snap.codedeploy {
        return super::codedeploy::judge_rollback(cd);
    }
    let fail = |reason: String| Verdict::Failed(Failure::RollbackFailed { reason });
    if snap.service_status != ServiceStatus::Active {
        return fail(format!("the service is {}", snap.service_status));
    }
    if snap
        .service_deployment
        .as_ref()
        .is_some_and(|sd| sd.status == ServiceDeploymentStatus::RollbackFailed)
    {
        return fail("ECS reports ROLLBACK_FAILED".into());
    }
    let primary = snap
        .deployments
        .iter()
        .find(|d| d.status == DeploymentStatus::Primary);
    let Some(primary) = primary else {
        return Verdict::Pending("no PRIMARY deployment yet".into());
    };
    let mine = snap
        .deployments
        .iter()
        .find(|d| d.id == failed.deployment_id);
    if primary.id == failed.deployment_id
        || (primary.task_definition_arn == failed.task_definition_arn && !is_older(primary, mine))
    {
        return Verdict::Pending(format!(
            "ECS has not switched back yet ({} is PRIMARY)",
            short_arn(&primary.task_definition_arn)
        ));
    }
    if primary.rollout_state == RolloutState::Failed {
        return fail(format!(
            "the rollback deployment {} failed: {}",
            primary.id,
            primary.rollout_state_reason.clone().unwrap_or_default()
        ));
    }
    let back = short_arn(&primary.task_definition_arn).to_string();
    if primary.running < primary.desired || primary.pending > 0 {
        return Verdict::Pending(format!(
            "{back}: {}/{} running, {} pending",
            primary.running, primary.desired, primary.pending
        ));
    }
    // Everything but the earlier revision must have stopped serving. Behind a load balancer
    // a task ECS is stopping drains (no new requests) and counts as stopped; without one,
    // only a stopped task has stopped working.
    let others_running: i32 = snap
        .deployments
        .iter()
        .filter(|d| d.id != primary.id && (d.desired > 0 || !snap.has_load_balancer))
        .map(|d| d.running)
        .sum();
    let failed_still_serving = snap.targets.iter().any(|t| {
        snap.our_task_ips.contains(&t.id)
            && matches!(t.state, TargetState::Healthy | TargetState::Initial)
    });
    if others_running > 0 || failed_still_serving {
        return Verdict::Pending(format!(
            "{back} runs; waiting for the failed deployment's tasks to stop"
        ));
    }
    if snap.has_load_balancer && primary.desired > 0 {
        let healthy = snap
            .targets
            .iter()
            .filter(|t| t.state == TargetState::Healthy && !snap.our_task_ips.contains(&t.id))
            .count();
        let need = primary.desired as usize * snap.target_groups();
        if healthy < need {
            return Verdict::Pending(format!("{back}: {healthy}/{need} targets healthy"));
        }
    }
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
    use crate::deploy::verdict::{DeploymentView, ServiceDeploymentView, TargetView};

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
}
