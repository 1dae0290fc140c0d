//! CodeDeploy's typed state and its verdicts, pure: what a poll saw of a deployment
//! ([`CodeDeployView`]), when our deployment succeeded or failed ([`judge`]), when
//! CodeDeploy's rollback of it is done ([`judge_rollback`]), and what to do about one that did
//! not succeed ([`rollback_plan`], after the outcome table's remedy). No I/O: the observer
//! hands in the view and the watch's snapshot.

use crate::aws::codedeploy::{DeploymentFacts, TaskSetFacts};
use crate::deploy::core::outcome::{Cause, Remedy, RollbackPolicy, remedy};
use crate::deploy::core::state::TargetState;
use crate::deploy::core::verdict::{Failure, FastFail, Ours, Snapshot, Verdict, fast_fail};

/// What the watch sees of a CodeDeploy deployment (beside the [`Snapshot`] the watch judges).
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct CodeDeployView {
    pub deployment: DeploymentFacts,
    /// The status of the rollback deployment, when CodeDeploy started one.
    pub rollback_status: Option<String>,
    /// Lifecycle events in order: (name, status).
    pub events: Vec<(String, String)>,
    /// The replacement (GREEN) and original (BLUE) task sets.
    pub green: Option<TaskSetFacts>,
    pub blue: Option<TaskSetFacts>,
    /// Success needs CodeDeploy's Succeeded (the original task set terminated), not only
    /// traffic on the replacement (`--wait-until terminated`).
    pub wait_terminated: bool,
}

impl CodeDeployView {
    /// The lifecycle event in progress (else the last one that ended).
    pub(crate) fn stage(&self) -> Option<String> {
        self.events
            .iter()
            .find(|e| e.1 == "InProgress")
            .or_else(|| {
                self.events
                    .iter()
                    .rev()
                    .find(|e| e.1 != "Pending" && e.1 != "Skipped")
            })
            .map(|e| e.0.clone())
    }

    fn event_status(&self, name: &str) -> Option<&str> {
        self.events
            .iter()
            .find(|e| e.0 == name)
            .map(|e| e.1.as_str())
    }

    /// Production traffic is fully on a replacement that runs its desired count.
    pub(crate) fn traffic_moved(&self) -> bool {
        let allowed = self.event_status("AllowTraffic") == Some("Succeeded")
            && self
                .event_status("AfterAllowTraffic")
                .is_none_or(|s| s == "Succeeded");
        allowed
            && self.green.as_ref().is_some_and(|g| {
                g.traffic_weight >= 100.0 && g.running >= g.desired && g.pending == 0
            })
    }

    fn failed_event(&self) -> Option<&str> {
        self.events
            .iter()
            .find(|e| e.1 == "Failed")
            .map(|e| e.0.as_str())
    }

    pub(crate) fn reason(&self) -> String {
        let d = &self.deployment;
        let mut r = match (&d.error_code, &d.error_message) {
            (Some(c), Some(m)) => format!("{c}: {m}"),
            (None, Some(m)) => m.clone(),
            (Some(c), None) => c.clone(),
            (None, None) => d
                .rollback_message
                .clone()
                .unwrap_or_else(|| "no reason given".into()),
        };
        if let Some(e) = self.failed_event() {
            r.push_str(&format!(" (lifecycle event {e} failed)"));
        }
        r
    }

    pub(crate) fn rolled_back(&self) -> bool {
        self.deployment.rollback_deployment_id.is_some()
    }
}

/// Judges our CodeDeploy deployment from one snapshot (pure). Rules: Succeeded is success;
/// Failed or Stopped is a failure (rolled back when CodeDeploy started a rollback
/// deployment); in flight, the fast-fail rules apply to the replacement task set's stopped
/// tasks, and traffic fully on a healthy replacement is success unless we wait for the
/// original to be terminated.
pub(crate) fn judge(
    ours: &Ours,
    snap: &Snapshot,
    cd: &CodeDeployView,
    rules: &FastFail,
    unhealthy_for: std::time::Duration,
) -> Verdict {
    let d = &cd.deployment;
    match d.status.as_str() {
        "Succeeded" => return Verdict::Succeeded,
        "Failed" | "Stopped" => {
            let reason = cd.reason();
            return Verdict::Failed(if cd.rolled_back() {
                Failure::RolledBack {
                    by: if d.status == "Stopped" {
                        "CodeDeploy after a StopDeployment request".into()
                    } else {
                        "CodeDeploy's automatic rollback".into()
                    },
                    reason,
                }
            } else {
                Failure::RolloutFailed {
                    reason: format!("CodeDeploy deployment {} {}: {reason}", d.id, d.status),
                }
            });
        }
        _ => {}
    }
    if rules.enabled
        && let Some(f) = fast_fail(ours, snap, rules, unhealthy_for)
    {
        return Verdict::Failed(f);
    }
    if !cd.wait_terminated && cd.traffic_moved() {
        match our_healthy(snap, cd) {
            Some((healthy, need)) if healthy < need => {
                return Verdict::Pending(format!(
                    "traffic is on the replacement; {healthy}/{need} of its targets healthy"
                ));
            }
            _ => return Verdict::Succeeded,
        }
    }
    let at = cd.stage().unwrap_or_else(|| "start".into());
    Verdict::Pending(match (d.status.as_str(), &cd.green) {
        ("Ready", _) => "CodeDeploy waits for ContinueDeployment before moving traffic".into(),
        (_, Some(g)) if cd.traffic_moved() => format!(
            "traffic is on the replacement ({} running); waiting for CodeDeploy to terminate \
             the original task set",
            g.running
        ),
        (s, Some(g)) => format!(
            "CodeDeploy {s} at {at}: replacement {}/{} running, {} pending, {:.0}% of traffic",
            g.running, g.desired, g.pending, g.traffic_weight
        ),
        (s, None) => format!("CodeDeploy {s} at {at}"),
    })
}

/// Healthy targets of the replacement's tasks and how many it needs (one per desired task),
/// when its target group's health is known.
fn our_healthy(snap: &Snapshot, cd: &CodeDeployView) -> Option<(usize, usize)> {
    let g = cd.green.as_ref()?;
    if !snap.has_load_balancer || g.desired <= 0 {
        return None;
    }
    let healthy = snap
        .targets
        .iter()
        .filter(|t| snap.our_task_ips.contains(&t.id) && t.state == TargetState::Healthy)
        .count();
    Some((healthy, g.desired as usize))
}

/// Judges CodeDeploy's rollback of our deployment (pure): done when the rollback
/// deployment succeeded; failed when it failed or was stopped.
pub(crate) fn judge_rollback(cd: &CodeDeployView) -> Verdict {
    let fail = |reason: String| Verdict::Failed(Failure::RollbackFailed { reason });
    let d = &cd.deployment;
    if let Some(status) = &cd.rollback_status {
        let id = d.rollback_deployment_id.clone().unwrap_or_default();
        return match status.as_str() {
            "Succeeded" => Verdict::Succeeded,
            "Failed" | "Stopped" => fail(format!(
                "the CodeDeploy rollback deployment {id} is {status}"
            )),
            s => Verdict::Pending(format!("CodeDeploy rollback deployment {id}: {s}")),
        };
    }
    match d.status.as_str() {
        "Succeeded" => fail(format!(
            "deployment {} succeeded before the stop took effect: the new revision serves",
            d.id
        )),
        "Failed" | "Stopped" => {
            // No rollback deployment: the original task set must be serving on its own.
            match &cd.blue {
                Some(b) if b.traffic_weight >= 100.0 && b.running >= b.desired => {
                    Verdict::Succeeded
                }
                Some(_) => {
                    Verdict::Pending("the original task set is not serving alone yet".into())
                }
                None => fail(format!(
                    "CodeDeploy ended deployment {} ({}) without a rollback",
                    d.id, d.status
                )),
            }
        }
        s => Verdict::Pending(format!(
            "waiting for CodeDeploy to stop deployment {} ({s})",
            d.id
        )),
    }
}

/// What to do about a CodeDeploy deployment that did not succeed (pure).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum CdPlan {
    /// CodeDeploy already rolls back: follow it.
    Follow,
    /// StopDeployment with autoRollbackEnabled, then follow the rollback.
    Stop,
    Leave(&'static str),
}

/// The outcome table's [`remedy`], with CodeDeploy's reason it cannot undo: a deployment
/// CodeDeploy ended without a rollback.
pub(crate) fn rollback_plan(
    cause: &Cause,
    rollback_enabled: bool,
    rollback_on_cancel: bool,
) -> CdPlan {
    let ended = matches!(
        cause,
        Cause::Failed(Failure::RolloutFailed { .. } | Failure::RollbackFailed { .. })
    )
    .then_some("CodeDeploy ended the deployment without a rollback");
    let policy = RollbackPolicy {
        enabled: rollback_enabled,
        on_cancel: rollback_on_cancel,
    };
    match remedy(cause, policy, ended) {
        Remedy::Follow => CdPlan::Follow,
        Remedy::Undo => CdPlan::Stop,
        Remedy::Leave(why) => CdPlan::Leave(why),
    }
}

#[cfg(test)]
mod tests {
    use super::super::observe::observation;
    use super::*;
    use crate::deploy::core::verdict::{StoppedTask, TargetView};
    fn set(label: &str, weight: f64, running: i64) -> TaskSetFacts {
        TaskSetFacts {
            id: format!("ecs-svc/{label}"),
            label: label.into(),
            status: "PRIMARY".into(),
            desired: 2,
            running,
            pending: 0,
            traffic_weight: weight,
            target_group: Some(format!("tg-{label}")),
        }
    }

    fn view(status: &str, events: &[(&str, &str)]) -> CodeDeployView {
        CodeDeployView {
            deployment: DeploymentFacts {
                id: "d-1".into(),
                status: status.into(),
                ..DeploymentFacts::default()
            },
            events: events
                .iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect(),
            green: Some(set("Green", 0.0, 2)),
            blue: Some(set("Blue", 100.0, 2)),
            ..CodeDeployView::default()
        }
    }

    fn ours() -> Ours {
        Ours {
            deployment_id: "d-1".into(),
            service_deployment_arn: None,
            task_definition_arn: "td:2".into(),
        }
    }

    fn judged(cd: &CodeDeployView, stopped: Vec<StoppedTask>) -> Verdict {
        let obs = observation(&ours(), cd.clone(), stopped, (vec![], vec![]));
        judge(
            &ours(),
            &obs.snapshot,
            cd,
            &FastFail::default(),
            std::time::Duration::ZERO,
        )
    }

    const ALL_DONE: [(&str, &str); 8] = [
        ("BeforeInstall", "Succeeded"),
        ("Install", "Succeeded"),
        ("AfterInstall", "Succeeded"),
        ("AllowTestTraffic", "Succeeded"),
        ("AfterAllowTestTraffic", "Succeeded"),
        ("BeforeAllowTraffic", "Succeeded"),
        ("AllowTraffic", "Succeeded"),
        ("AfterAllowTraffic", "Succeeded"),
    ];

    #[test]
    fn success_is_traffic_on_a_full_replacement_or_codedeploy_succeeded() {
        let mut cd = view("InProgress", &ALL_DONE);
        // Events done but the weight still on blue: pending.
        assert!(matches!(judged(&cd, vec![]), Verdict::Pending(_)));
        cd.green = Some(set("Green", 100.0, 2));
        cd.blue = Some(set("Blue", 0.0, 2));
        assert_eq!(judged(&cd, vec![]), Verdict::Succeeded);
        // Waiting for termination: only CodeDeploy's Succeeded counts.
        cd.wait_terminated = true;
        assert!(matches!(judged(&cd, vec![]), Verdict::Pending(p) if p.contains("terminate")));
        cd.deployment.status = "Succeeded".into();
        assert_eq!(judged(&cd, vec![]), Verdict::Succeeded);
    }

    #[test]
    fn traffic_on_the_replacement_needs_its_targets_healthy_when_known() {
        let mut cd = view("InProgress", &ALL_DONE);
        cd.green = Some(set("Green", 100.0, 2));
        cd.blue = Some(set("Blue", 0.0, 2));
        let target = |id: &str, state: &str| TargetView {
            target_group_arn: "tg-Green".into(),
            id: id.into(),
            state: state.into(),
            reason: None,
            description: None,
        };
        let ips = vec!["10.0.0.1".to_string(), "10.0.0.2".to_string()];
        let judged_with = |targets: Vec<TargetView>| {
            let obs = observation(&ours(), cd.clone(), vec![], (targets, ips.clone()));
            judge(
                &ours(),
                &obs.snapshot,
                &cd,
                &FastFail::default(),
                std::time::Duration::ZERO,
            )
        };
        let v = judged_with(vec![
            target("10.0.0.1", "healthy"),
            target("10.0.0.2", "initial"),
        ]);
        assert!(
            matches!(&v, Verdict::Pending(p) if p.contains("1/2")),
            "{v:?}"
        );
        let v = judged_with(vec![
            target("10.0.0.1", "healthy"),
            target("10.0.0.2", "healthy"),
        ]);
        assert_eq!(v, Verdict::Succeeded);
        // Another task's healthy target does not count for ours.
        let v = judged_with(vec![
            target("10.0.0.1", "healthy"),
            target("10.9.9.9", "healthy"),
        ]);
        assert!(matches!(v, Verdict::Pending(_)), "{v:?}");
    }

    #[test]
    fn a_rolled_back_deployment_is_a_failure_never_a_success() {
        let mut cd = view("Failed", &[("AfterAllowTestTraffic", "Failed")]);
        cd.deployment.error_code = Some("HEALTH_CONSTRAINTS".into());
        cd.deployment.error_message = Some("hook said no".into());
        cd.deployment.rollback_deployment_id = Some("d-2".into());
        match judged(&cd, vec![]) {
            Verdict::Failed(Failure::RolledBack { by, reason }) => {
                assert!(by.contains("automatic rollback"), "{by}");
                assert!(reason.contains("AfterAllowTestTraffic"), "{reason}");
            }
            v => panic!("{v:?}"),
        }
        cd.deployment.rollback_deployment_id = None;
        assert!(matches!(
            judged(&cd, vec![]),
            Verdict::Failed(Failure::RolloutFailed { .. })
        ));
    }

    #[test]
    fn crash_looping_replacement_fails_fast() {
        let cd = view("InProgress", &[("Install", "InProgress")]);
        let t = |n: &str| StoppedTask {
            task_arn: n.into(),
            started_by: Some("d-1".into()),
            stopped_reason: Some("Essential container in task exited".into()),
            ..StoppedTask::default()
        };
        assert!(matches!(judged(&cd, vec![t("a")]), Verdict::Pending(_)));
        assert!(matches!(
            judged(&cd, vec![t("a"), t("b")]),
            Verdict::Failed(Failure::FastFail { .. })
        ));
    }

    #[test]
    fn rollback_judge_follows_the_rollback_deployment() {
        let mut cd = view("InProgress", &[]);
        assert!(matches!(judge_rollback(&cd), Verdict::Pending(_)));
        cd.deployment.status = "Stopped".into();
        cd.deployment.rollback_deployment_id = Some("d-2".into());
        cd.rollback_status = Some("InProgress".into());
        assert!(matches!(judge_rollback(&cd), Verdict::Pending(_)));
        cd.rollback_status = Some("Succeeded".into());
        assert_eq!(judge_rollback(&cd), Verdict::Succeeded);
        cd.rollback_status = Some("Failed".into());
        assert!(matches!(
            judge_rollback(&cd),
            Verdict::Failed(Failure::RollbackFailed { .. })
        ));
        cd.deployment.status = "Succeeded".into();
        cd.deployment.rollback_deployment_id = None;
        cd.rollback_status = None;
        assert!(matches!(judge_rollback(&cd), Verdict::Failed(_)));
    }

    #[test]
    fn plan_table() {
        let ff = Cause::Failed(Failure::FastFail {
            rule: "r".into(),
            detail: "d".into(),
        });
        let rb = Cause::Failed(Failure::RolledBack {
            by: "x".into(),
            reason: "y".into(),
        });
        assert_eq!(rollback_plan(&ff, true, false), CdPlan::Stop);
        assert_eq!(
            rollback_plan(&ff, false, false),
            CdPlan::Leave("rollback disabled")
        );
        assert_eq!(rollback_plan(&rb, false, false), CdPlan::Follow);
        assert_eq!(rollback_plan(&Cause::TimedOut, true, false), CdPlan::Stop);
        assert_eq!(rollback_plan(&Cause::Cancelled, true, true), CdPlan::Stop);
        assert_eq!(
            rollback_plan(&Cause::Cancelled, true, false),
            CdPlan::Leave("on_cancel is leave")
        );
    }
}
