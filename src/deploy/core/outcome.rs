//! The outcome table: how an operation ended — the watch of its own deployment, and what its
//! rollback did — mapped to the run's outcome (exit code, status, label) and ONE sentence for
//! people. Pure, and the only place where an ending is worded, so that no sentence can
//! contradict the outcome printed beside it (no "FAILED, NOT ROLLED BACK — rolled back by
//! ..."). Every operation (deploy, wait, scale, continue, rollback; ECS and CodeDeploy
//! controllers) concludes through [`conclude`] or [`conclude_rollback`].
//!
//! Receives a watch [`Outcome`], a [`RollbackEnd`] and, for success, the operation's own words;
//! hands on a [`RunOutcome`] and the detail sentence of the result.

use super::verdict::{Failure, short_arn};
use crate::error::ExitCode;

/// How a watch ended for one service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Outcome {
    Succeeded,
    Failed(Failure),
    TimedOut {
        last: String,
    },
    Cancelled {
        last: String,
    },
    /// The deployment could not be observed: polls kept failing.
    Lost {
        error: String,
    },
    /// The run stopped following at a lifecycle stage, as asked (`--until`); the deployment
    /// goes on (or waits on its hook).
    Paused {
        stage: String,
        hook_id: Option<String>,
    },
}

/// The PRIMARY deployment of a service, as a poll saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Serving {
    pub deployment_id: String,
    pub task_definition_arn: String,
}

/// How an operation ended for one service. Written once; the exit code, the human label and
/// the Actions `status` output are functions of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunOutcome {
    Succeeded,
    /// Nothing differed: no API write was made.
    NoChange,
    /// `--no-wait`, `--no-update-service`: started (or registered), not followed.
    NotFollowed,
    /// `--until`: followed to a lifecycle stage (or a waiting PAUSE hook), then left there.
    Paused,
    DryRun,
    FailedRolledBack,
    FailedNotRolledBack,
    RollbackFailed,
    TimedOut {
        rolled_back: bool,
    },
    Cancelled,
    /// The deployment could not be followed (the API kept failing); it goes on without us.
    Lost,
    /// A release step that never started (a step it waits for failed, or the release
    /// stopped): nothing was changed. Never the cause of a failed run, so exit 0 of itself.
    Skipped,
}

impl RunOutcome {
    pub fn exit_code(&self) -> ExitCode {
        match self {
            RunOutcome::Succeeded
            | RunOutcome::NoChange
            | RunOutcome::NotFollowed
            | RunOutcome::Paused
            | RunOutcome::DryRun
            | RunOutcome::Skipped => ExitCode::Success,
            RunOutcome::FailedRolledBack => ExitCode::FailedRolledBack,
            RunOutcome::FailedNotRolledBack => ExitCode::FailedNotRolledBack,
            RunOutcome::RollbackFailed => ExitCode::RollbackFailed,
            RunOutcome::TimedOut { .. } => ExitCode::TimedOut,
            RunOutcome::Cancelled => ExitCode::Cancelled,
            RunOutcome::Lost => ExitCode::Aws,
        }
    }

    /// Words for people (and the `outcome` field of the JSON result).
    pub fn label(&self) -> &'static str {
        match self {
            RunOutcome::Succeeded => "succeeded",
            RunOutcome::NoChange => "no change",
            RunOutcome::NotFollowed => "started (not followed)",
            RunOutcome::Paused => "paused, as asked",
            RunOutcome::DryRun => "dry run",
            RunOutcome::FailedRolledBack => "failed, rolled back",
            RunOutcome::FailedNotRolledBack => "failed, not rolled back",
            RunOutcome::RollbackFailed => "failed, and the rollback failed",
            RunOutcome::TimedOut { rolled_back: true } => "timed out, rolled back",
            RunOutcome::TimedOut { rolled_back: false } => "timed out",
            RunOutcome::Cancelled => "cancelled",
            RunOutcome::Lost => "not followed: the API kept failing",
            RunOutcome::Skipped => "not started",
        }
    }

    /// One word for machines: the Actions `status` output and the JSON `status` field.
    pub fn status(&self) -> &'static str {
        match self {
            RunOutcome::Succeeded => "succeeded",
            RunOutcome::NoChange => "no-change",
            RunOutcome::NotFollowed => "started",
            RunOutcome::Paused => "paused",
            RunOutcome::DryRun => "dry-run",
            RunOutcome::FailedRolledBack => "rolled-back",
            RunOutcome::FailedNotRolledBack => "failed",
            RunOutcome::RollbackFailed => "rollback-failed",
            RunOutcome::TimedOut { .. } => "timed-out",
            RunOutcome::Cancelled => "cancelled",
            RunOutcome::Lost => "lost",
            RunOutcome::Skipped => "skipped",
        }
    }

    /// Whatever was asked happened (or there was nothing to do): a release step after this
    /// one may start.
    pub fn is_success(&self) -> bool {
        matches!(
            self,
            RunOutcome::Succeeded
                | RunOutcome::NoChange
                | RunOutcome::NotFollowed
                | RunOutcome::Paused
                | RunOutcome::DryRun
        )
    }

    /// Which outcome wins when services end differently: the worst.
    pub fn severity(&self) -> u8 {
        severity(self.exit_code())
    }
}

/// Rank of exit codes, worst highest.
pub(crate) fn severity(c: ExitCode) -> u8 {
    match c {
        ExitCode::Success => 0,
        ExitCode::Changes => 1,
        ExitCode::FailedRolledBack => 2,
        ExitCode::TimedOut => 3,
        ExitCode::FailedNotRolledBack => 4,
        ExitCode::Cancelled => 5,
        ExitCode::BadInput | ExitCode::Aws | ExitCode::Internal => 6,
        ExitCode::RollbackFailed => 7,
    }
}

/// Why a deploy is ending without success.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cause {
    Failed(Failure),
    TimedOut,
    Cancelled,
}

/// The rollback to take about a deployment that ended without success.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Remedy {
    /// Its controller (ECS's breaker or an alarm, CodeDeploy) already undoes it: follow that,
    /// do not fight it.
    Follow,
    /// Undo it; the controller says how.
    Undo,
    /// Leave it, and say why.
    Leave(&'static str),
}

/// When cortado undoes a deployment itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RollbackPolicy {
    /// `rollout.rollback` and not `--no-rollback`.
    pub enabled: bool,
    /// `rollout.on_cancel: rollback`.
    pub on_cancel: bool,
}

/// The rollback column of the table: what to do after `cause`. In order: a deployment
/// replaced by someone else's, or a service that is gone, is not ours to undo; a rollback
/// the controller already carries out is followed (even with rollback disabled: it happens);
/// `cannot_undo` is the controller's reason it cannot undo this one (no earlier revision, a
/// deployment it ended without a rollback); a cancelled run undoes only with `on_cancel:
/// rollback`, any other only when rollback is enabled.
pub(crate) fn remedy(
    cause: &Cause,
    policy: RollbackPolicy,
    cannot_undo: Option<&'static str>,
) -> Remedy {
    match cause {
        Cause::Failed(Failure::Superseded { .. } | Failure::ServiceGone { .. }) => {
            return Remedy::Leave("the service is no longer ours to change");
        }
        Cause::Failed(Failure::RolledBack { .. }) => return Remedy::Follow,
        _ => {}
    }
    if let Some(why) = cannot_undo {
        return Remedy::Leave(why);
    }
    match (cause, policy) {
        (
            Cause::Cancelled,
            RollbackPolicy {
                on_cancel: true, ..
            },
        ) => Remedy::Undo,
        (Cause::Cancelled, _) => Remedy::Leave("on_cancel is leave"),
        (_, RollbackPolicy { enabled: true, .. }) => Remedy::Undo,
        (_, _) => Remedy::Leave("rollback disabled"),
    }
}

/// How a rollback went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RollbackEnd {
    /// The earlier revision serves (as `--wait-rollback` asks); what serves, in words.
    Done(String),
    /// Not attempted, and why.
    NotPossible(String),
    Failed(String),
    /// Requested, but not settled by its deadline.
    Unsettled(String),
    /// Requested, and not followed (`rollback --no-wait`).
    Started,
}

/// Why a deploy ended without success, as the rollback decision reads it; None for a
/// success, a lost deployment or a pause (nothing to undo).
pub(crate) fn cause_of(outcome: &Outcome) -> Option<Cause> {
    match outcome {
        Outcome::Failed(fl) => Some(Cause::Failed(fl.clone())),
        Outcome::TimedOut { .. } => Some(Cause::TimedOut),
        Outcome::Cancelled { .. } => Some(Cause::Cancelled),
        _ => None,
    }
}

/// Why a watch ended without success, in words (no final period).
fn cause_words(outcome: &Outcome) -> String {
    let words = match outcome {
        Outcome::Failed(fl) => fl.to_string(),
        Outcome::TimedOut { last } => format!("no verdict before the deadline (last: {last})"),
        Outcome::Cancelled { last } => format!("cancelled (last: {last})"),
        Outcome::Lost { error } => {
            format!("cannot follow the deployment, it continues without cortado: {error}")
        }
        Outcome::Paused { stage, hook_id } => match hook_id {
            Some(_) => format!(
                "waiting at {stage} on a PAUSE hook: answer it with `cortado continue` \
                 (or `cortado continue --rollback`, `cortado rollback`)"
            ),
            None => format!("reached {stage}; the deployment goes on without cortado"),
        },
        Outcome::Succeeded => String::new(),
    };
    words.trim_end_matches('.').to_string()
}

/// The outcome of an operation whose own deployment ended as `ended`, after `rollback` (None:
/// none was considered, as for `wait`), with `success` as the words for a success. The only
/// mapping from endings to outcomes and sentences.
pub(crate) fn conclude(
    ended: &Outcome,
    rollback: Option<&RollbackEnd>,
    success: &str,
) -> (RunOutcome, String) {
    let why = cause_words(ended);
    let cause = match ended {
        Outcome::Succeeded => return (RunOutcome::Succeeded, success.to_string()),
        Outcome::Lost { .. } => return (RunOutcome::Lost, why),
        Outcome::Paused { .. } => return (RunOutcome::Paused, why),
        Outcome::Failed(fl) => Cause::Failed(fl.clone()),
        Outcome::TimedOut { .. } => Cause::TimedOut,
        Outcome::Cancelled { .. } => Cause::Cancelled,
    };
    let outcome = outcome_of(&cause, rollback);
    // ECS undid the deployment itself: said once, in its own words.
    let by_ecs = matches!(cause, Cause::Failed(Failure::RolledBack { .. }));
    let then = match rollback {
        None if outcome == RunOutcome::FailedNotRolledBack => "not rolled back".to_string(),
        None => String::new(),
        Some(RollbackEnd::Done(s)) if by_ecs => s.clone(),
        Some(RollbackEnd::Done(s)) => format!("rolled back: {s}"),
        // ECS already undid it; what cortado would not do adds nothing.
        Some(RollbackEnd::NotPossible(_)) if by_ecs => String::new(),
        Some(RollbackEnd::NotPossible(s)) => format!("not rolled back: {s}"),
        Some(RollbackEnd::Unsettled(s)) if outcome == RunOutcome::Cancelled => {
            format!("rollback requested, still in progress when cortado stopped following it ({s})")
        }
        Some(RollbackEnd::Failed(s) | RollbackEnd::Unsettled(s)) => {
            format!("ROLLBACK FAILED: {s}")
        }
        Some(RollbackEnd::Started) => "rollback started (not followed)".to_string(),
    };
    let why = match (&cause, rollback) {
        // "rolled back by X" beside a failed rollback would say both.
        (
            Cause::Failed(Failure::RolledBack { by, reason }),
            Some(RollbackEnd::Failed(_) | RollbackEnd::Unsettled(_)),
        ) => format!("{by} began a rollback ({})", reason.trim_end_matches('.')),
        _ => why,
    };
    let detail = if then.is_empty() {
        why
    } else {
        format!("{why}; {then}")
    };
    (outcome, detail)
}

/// The outcome of `cortado rollback`, whose operation is the rollback itself.
pub(crate) fn conclude_rollback(end: &RollbackEnd) -> (RunOutcome, String) {
    let outcome = match end {
        RollbackEnd::Started => RunOutcome::NotFollowed,
        RollbackEnd::Done(_) => RunOutcome::Succeeded,
        RollbackEnd::NotPossible(_) => RunOutcome::FailedNotRolledBack,
        RollbackEnd::Failed(_) | RollbackEnd::Unsettled(_) => RunOutcome::RollbackFailed,
    };
    (outcome, end_text(end))
}

/// The outcome of a service that succeeded and was then undone because `failed` failed
/// (`--on-failure rollback-all`).
pub(crate) fn conclude_undone(failed: &str, end: &RollbackEnd) -> (RunOutcome, String) {
    let policy = "(--on-failure rollback-all)";
    match end {
        RollbackEnd::Done(s) => (
            RunOutcome::FailedRolledBack,
            format!("deployment completed, then undone because {failed} failed {policy}: {s}"),
        ),
        RollbackEnd::NotPossible(s) => (
            RunOutcome::FailedNotRolledBack,
            format!("deployment completed; {failed} failed {policy}, but it was not undone: {s}"),
        ),
        RollbackEnd::Failed(s) | RollbackEnd::Unsettled(s) => (
            RunOutcome::RollbackFailed,
            format!(
                "deployment completed; undoing it because {failed} failed {policy}: \
                 ROLLBACK FAILED: {s}"
            ),
        ),
        RollbackEnd::Started => (
            RunOutcome::NotFollowed,
            format!("deployment completed; {failed} failed {policy}: rollback started"),
        ),
    }
}

/// What a deploy's end means, given why it ended and how its rollback went (None: no
/// rollback was attempted; a deployment ECS rolled back counts as rolled back).
pub(crate) fn outcome_of(cause: &Cause, rollback: Option<&RollbackEnd>) -> RunOutcome {
    match (cause, rollback) {
        (Cause::Cancelled, _) => RunOutcome::Cancelled,
        (_, Some(RollbackEnd::Started)) => RunOutcome::NotFollowed,
        (Cause::TimedOut, Some(RollbackEnd::Done(_))) => RunOutcome::TimedOut { rolled_back: true },
        (Cause::TimedOut, None | Some(RollbackEnd::NotPossible(_))) => {
            RunOutcome::TimedOut { rolled_back: false }
        }
        (_, Some(RollbackEnd::Failed(_) | RollbackEnd::Unsettled(_))) => RunOutcome::RollbackFailed,
        (Cause::Failed(_), Some(RollbackEnd::Done(_))) => RunOutcome::FailedRolledBack,
        // ECS undid it itself (its breaker, an alarm): rolled back, whoever did it.
        (Cause::Failed(Failure::RolledBack { .. }), None | Some(RollbackEnd::NotPossible(_))) => {
            RunOutcome::FailedRolledBack
        }
        (Cause::Failed(_), None | Some(RollbackEnd::NotPossible(_))) => {
            RunOutcome::FailedNotRolledBack
        }
    }
}

/// A rollback's end in words, as the rollback report and `cortado rollback` say it.
pub(crate) fn end_text(end: &RollbackEnd) -> String {
    match end {
        RollbackEnd::Done(s) => format!("rolled back: {s}"),
        RollbackEnd::NotPossible(s) => format!("not rolled back: {s}"),
        RollbackEnd::Failed(s) | RollbackEnd::Unsettled(s) => format!("ROLLBACK FAILED: {s}"),
        RollbackEnd::Started => "rollback started (not followed)".into(),
    }
}

/// How a followed rollback ended, from its watch outcome, with what served at its last poll.
pub(crate) fn rollback_end(outcome: Outcome, serving: Option<&Serving>) -> RollbackEnd {
    let serves = |verb: &str| {
        serving.map(|s| {
            format!(
                "{} {verb} (deployment {})",
                short_arn(&s.task_definition_arn),
                s.deployment_id
            )
        })
    };
    let with_serving = |s: String| match serves("serves") {
        Some(x) => format!("{}; {x}", s.trim_end_matches('.')),
        None => s,
    };
    match outcome {
        Outcome::Succeeded => RollbackEnd::Done(match serving {
            Some(s) => format!(
                "the service runs {} again (deployment {})",
                short_arn(&s.task_definition_arn),
                s.deployment_id
            ),
            None => "the earlier revision serves again".into(),
        }),
        Outcome::Failed(fl) => RollbackEnd::Failed(with_serving(fl.to_string())),
        Outcome::TimedOut { last } => RollbackEnd::Unsettled(with_serving(format!(
            "the rollback did not settle in time (last: {last})"
        ))),
        Outcome::Cancelled { last } => RollbackEnd::Failed(with_serving(format!(
            "cancelled while rolling back (last: {last})"
        ))),
        Outcome::Lost { error } => {
            RollbackEnd::Failed(format!("cannot follow the rollback: {error}"))
        }
        Outcome::Paused { stage, .. } => {
            RollbackEnd::Unsettled(with_serving(format!("the rollback stopped at {stage}")))
        }
    }
}

/// How a one-off task ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TaskOutcome {
    /// Started and not followed (`--no-wait`).
    Started,
    /// Followed until it was RUNNING (`--wait-until running`), then left running.
    Running,
    /// Nothing started: what would run was printed (`--dry-run`).
    DryRun,
    /// Its essential container exited with this code.
    Exited(i32),
    /// It never ran its command.
    FailedToStart,
    TimedOut,
    Cancelled,
}

/// The exit code of a task that never ran its command (failed to start, no exit code).
pub(crate) const FAILED_TO_START: u8 = 3;

impl TaskOutcome {
    /// One word for machines (the `outcome` of `cortado run`'s result).
    pub(crate) fn word(self) -> &'static str {
        match self {
            TaskOutcome::Started => "started",
            TaskOutcome::Running => "running",
            TaskOutcome::DryRun => "dry_run",
            TaskOutcome::Exited(_) => "exited",
            TaskOutcome::FailedToStart => "failed_to_start",
            TaskOutcome::TimedOut => "timed_out",
            TaskOutcome::Cancelled => "cancelled",
        }
    }

    /// `cortado run`'s exit code: the container's (0..=255), 3 when the task never ran its
    /// command, 6 on a timeout, 130 on a cancel, 0 when only started (or running, or a dry run).
    pub(crate) fn exit(self) -> u8 {
        match self {
            TaskOutcome::Started | TaskOutcome::Running | TaskOutcome::DryRun => 0,
            TaskOutcome::Exited(c) => u8::try_from(c.clamp(0, 255)).unwrap_or(255),
            TaskOutcome::FailedToStart => FAILED_TO_START,
            TaskOutcome::TimedOut => ExitCode::TimedOut as u8,
            TaskOutcome::Cancelled => ExitCode::Cancelled as u8,
        }
    }
}

/// A one-off task's end as a step of a release: succeeded only when it exited 0.
pub(crate) fn task_outcome(outcome: TaskOutcome) -> RunOutcome {
    match outcome {
        TaskOutcome::Exited(0)
        | TaskOutcome::Started
        | TaskOutcome::Running
        | TaskOutcome::DryRun => RunOutcome::Succeeded,
        TaskOutcome::TimedOut => RunOutcome::TimedOut { rolled_back: false },
        TaskOutcome::Cancelled => RunOutcome::Cancelled,
        TaskOutcome::Exited(_) | TaskOutcome::FailedToStart => RunOutcome::FailedNotRolledBack,
    }
}

/// How a rollback by a new deployment of the earlier revision (CodeDeploy's, deployment
/// `id`, putting `origin` back) ended, from its watch outcome.
pub(crate) fn redeploy_end(outcome: Outcome, id: &str, origin: &str) -> RollbackEnd {
    match outcome {
        Outcome::Succeeded => {
            RollbackEnd::Done(format!("CodeDeploy deployment {id} put {origin} back"))
        }
        Outcome::Failed(fl) => RollbackEnd::Failed(fl.to_string()),
        Outcome::TimedOut { last } | Outcome::Cancelled { last } => {
            RollbackEnd::Unsettled(format!("deployment {id} did not finish ({last})"))
        }
        Outcome::Lost { error } => {
            RollbackEnd::Failed(format!("cannot follow deployment {id}: {error}"))
        }
        Outcome::Paused { stage, .. } => {
            RollbackEnd::Unsettled(format!("deployment {id} stopped at {stage}"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failures() -> Vec<Failure> {
        vec![
            Failure::RolloutFailed {
                reason: "ECS deployment circuit breaker: tasks failed to start.".into(),
            },
            Failure::RolledBack {
                by: "the deployment circuit breaker".into(),
                reason: "tasks failed to start.".into(),
            },
            Failure::Superseded {
                by_deployment: "ecs-svc/9".into(),
            },
            Failure::FastFail {
                rule: "2 tasks stopped with CannotPullContainerError".into(),
                detail: "CannotPullContainerError: pull failed".into(),
            },
            Failure::ServiceGone {
                status: "DRAINING".into(),
            },
        ]
    }

    fn endings() -> Vec<Outcome> {
        let mut v: Vec<Outcome> = failures().into_iter().map(Outcome::Failed).collect();
        v.push(Outcome::TimedOut {
            last: "1/2 running".into(),
        });
        v.push(Outcome::Cancelled {
            last: "1/2 running".into(),
        });
        v
    }

    fn rollbacks() -> Vec<Option<RollbackEnd>> {
        vec![
            None,
            Some(RollbackEnd::Done(
                "the service runs web:1 again (deployment ecs-svc/1)".into(),
            )),
            Some(RollbackEnd::NotPossible("rollback disabled".into())),
            Some(RollbackEnd::Failed("UpdateService failed: denied".into())),
            Some(RollbackEnd::Unsettled(
                "the rollback did not settle in time (last: x)".into(),
            )),
            Some(RollbackEnd::Started),
        ]
    }

    /// Every ending × every rollback: the sentence agrees with the outcome beside it.
    #[test]
    fn no_sentence_contradicts_its_outcome() {
        for ended in endings() {
            for rb in rollbacks() {
                let (outcome, detail) = conclude(&ended, rb.as_ref(), "deployment completed");
                let label = outcome.label();
                let says_not = detail.contains("not rolled back");
                let says_failed = detail.contains("ROLLBACK FAILED");
                let says_back = detail.contains("rolled back by")
                    || detail.matches("rolled back:").count()
                        > detail.matches("not rolled back:").count();
                let case = format!("{ended:?} / {rb:?} -> {label}: {detail}");
                match outcome {
                    RunOutcome::FailedRolledBack | RunOutcome::TimedOut { rolled_back: true } => {
                        assert!(!says_not && !says_failed && says_back, "{case}")
                    }
                    RunOutcome::FailedNotRolledBack => {
                        assert!(says_not && !says_failed && !says_back, "{case}")
                    }
                    RunOutcome::RollbackFailed => {
                        assert!(says_failed && !says_not && !says_back, "{case}")
                    }
                    RunOutcome::TimedOut { rolled_back: false } => {
                        assert!(!says_failed && !says_back, "{case}")
                    }
                    RunOutcome::Cancelled | RunOutcome::NotFollowed => {
                        assert!(!says_not || !says_back, "{case}")
                    }
                    o => panic!("unexpected outcome {o:?} for {case}"),
                }
            }
        }
    }

    #[test]
    fn the_table() {
        let cb = Outcome::Failed(Failure::RolledBack {
            by: "the deployment circuit breaker".into(),
            reason: "tasks failed to start.".into(),
        });
        let done = RollbackEnd::Done("the service runs web:1 again (deployment ecs-svc/1)".into());
        assert_eq!(
            conclude(&cb, Some(&done), ""),
            (
                RunOutcome::FailedRolledBack,
                "rolled back by the deployment circuit breaker: tasks failed to start; \
                 the service runs web:1 again (deployment ecs-svc/1)"
                    .into()
            )
        );
        // `wait` on a deployment ECS rolled back: rolled back, cortado did nothing.
        assert_eq!(conclude(&cb, None, "").0, RunOutcome::FailedRolledBack);
        let late = RollbackEnd::Unsettled("the rollback did not settle in time".into());
        assert_eq!(
            conclude(&cb, Some(&late), ""),
            (
                RunOutcome::RollbackFailed,
                "the deployment circuit breaker began a rollback (tasks failed to start); \
                 ROLLBACK FAILED: the rollback did not settle in time"
                    .into()
            )
        );
        let ff = Outcome::Failed(Failure::FastFail {
            rule: "2 tasks stopped with X".into(),
            detail: "X".into(),
        });
        let off = RollbackEnd::NotPossible("rollback disabled".into());
        assert_eq!(
            conclude(&ff, Some(&off), ""),
            (
                RunOutcome::FailedNotRolledBack,
                "failed fast (2 tasks stopped with X): X; not rolled back: rollback disabled"
                    .into()
            )
        );
        assert_eq!(
            conclude(&Outcome::Succeeded, None, "deployment completed"),
            (RunOutcome::Succeeded, "deployment completed".into())
        );
        let cancelled = Outcome::Cancelled { last: "x".into() };
        assert_eq!(
            conclude(&cancelled, Some(&late), ""),
            (
                RunOutcome::Cancelled,
                "cancelled (last: x); rollback requested, still in progress when cortado \
                 stopped following it (the rollback did not settle in time)"
                    .into()
            )
        );
        assert_eq!(
            conclude_rollback(&RollbackEnd::Failed("y".into())),
            (RunOutcome::RollbackFailed, "ROLLBACK FAILED: y".into())
        );
    }

    #[test]
    fn outcome_mapping_table() {
        let failed = Cause::Failed(Failure::FastFail {
            rule: "r".into(),
            detail: "d".into(),
        });
        let done = RollbackEnd::Done("x".into());
        let no = RollbackEnd::NotPossible("x".into());
        let bad = RollbackEnd::Failed("x".into());
        let late = RollbackEnd::Unsettled("x".into());
        assert_eq!(
            outcome_of(&failed, Some(&done)),
            RunOutcome::FailedRolledBack
        );
        assert_eq!(
            outcome_of(&failed, Some(&no)),
            RunOutcome::FailedNotRolledBack
        );
        assert_eq!(outcome_of(&failed, None), RunOutcome::FailedNotRolledBack);
        assert_eq!(outcome_of(&failed, Some(&bad)), RunOutcome::RollbackFailed);
        assert_eq!(outcome_of(&failed, Some(&late)), RunOutcome::RollbackFailed);
        assert_eq!(
            outcome_of(&Cause::TimedOut, Some(&done)),
            RunOutcome::TimedOut { rolled_back: true }
        );
        assert_eq!(
            outcome_of(&Cause::TimedOut, None),
            RunOutcome::TimedOut { rolled_back: false }
        );
        assert_eq!(
            outcome_of(&Cause::TimedOut, Some(&bad)),
            RunOutcome::RollbackFailed
        );
        // A cancelled run exits 130 whatever its rollback did.
        assert_eq!(
            outcome_of(&Cause::Cancelled, Some(&bad)),
            RunOutcome::Cancelled
        );
    }

    /// The rollback column: every cause × policy × controller reason.
    #[test]
    fn the_rollback_to_take() {
        let on = RollbackPolicy {
            enabled: true,
            on_cancel: true,
        };
        let off = RollbackPolicy {
            enabled: false,
            on_cancel: false,
        };
        let ff = Cause::Failed(Failure::FastFail {
            rule: "r".into(),
            detail: "d".into(),
        });
        let by_ecs = Cause::Failed(Failure::RolledBack {
            by: "the deployment circuit breaker".into(),
            reason: "x".into(),
        });
        let gone = Cause::Failed(Failure::ServiceGone {
            status: "DRAINING".into(),
        });
        let cannot = Some("no earlier revision");
        let rows: [(&Cause, RollbackPolicy, Option<&'static str>, Remedy); 10] = [
            (&ff, on, None, Remedy::Undo),
            (&ff, off, None, Remedy::Leave("rollback disabled")),
            (&ff, on, cannot, Remedy::Leave("no earlier revision")),
            (&by_ecs, off, cannot, Remedy::Follow),
            (
                &gone,
                on,
                None,
                Remedy::Leave("the service is no longer ours to change"),
            ),
            (&Cause::TimedOut, on, None, Remedy::Undo),
            (
                &Cause::TimedOut,
                off,
                None,
                Remedy::Leave("rollback disabled"),
            ),
            (&Cause::Cancelled, on, None, Remedy::Undo),
            (
                &Cause::Cancelled,
                RollbackPolicy {
                    enabled: true,
                    on_cancel: false,
                },
                None,
                Remedy::Leave("on_cancel is leave"),
            ),
            (
                &Cause::Cancelled,
                on,
                cannot,
                Remedy::Leave("no earlier revision"),
            ),
        ];
        for (cause, policy, reason, want) in rows {
            assert_eq!(
                remedy(cause, policy, reason),
                want,
                "{cause:?} {policy:?} {reason:?}"
            );
        }
    }

    #[test]
    fn a_rollback_end_names_what_serves() {
        let serving = Serving {
            deployment_id: "ecs-svc/8".into(),
            task_definition_arn: "arn:aws:ecs:us-east-1:1:task-definition/hello:8".into(),
        };
        let failed = Outcome::Failed(Failure::RollbackFailed {
            reason: "the rollback's deployment ecs-svc/9 to hello:7 failed: rolled back by the \
                     deployment circuit breaker: tasks failed to start."
                .into(),
        });
        match rollback_end(failed, Some(&serving)) {
            RollbackEnd::Failed(s) => assert!(
                s.ends_with("tasks failed to start; hello:8 serves (deployment ecs-svc/8)"),
                "{s}"
            ),
            e => panic!("{e:?}"),
        }
        assert_eq!(
            rollback_end(Outcome::Succeeded, Some(&serving)),
            RollbackEnd::Done("the service runs hello:8 again (deployment ecs-svc/8)".into())
        );
    }
}
