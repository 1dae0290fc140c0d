//! Application Auto Scaling around a deploy (`--suspend-auto-scaling`,
//! `--resume-auto-scaling`): each deployed service's scalable target (namespace ecs,
//! `service/CLUSTER/SERVICE`, `ecs:service:DesiredCount`) gets its `SuspendedState` set after
//! everything local has passed and before the first service update, and — with both flags —
//! back again once the service's deploy succeeded.
//!
//! Receives the run's clients, the deployed services and, afterwards, the run's result;
//! says what it did through the caller's `say` (the command shows it on stderr, whatever the
//! output format) and hands back the warnings (targets left suspended, and how to resume
//! them) for the command to print. Never prints.

use super::controller::seam::DeployFlags;
use super::engine::ReleaseRun;
use super::gate::Until;
use super::result::RunResult;
use crate::aws::Clients;
use crate::aws::autoscaling::service_resource_id;
use crate::error::{Diagnostic, Error, Result};
use crate::release::Action;

/// What `--suspend-auto-scaling` / `--resume-auto-scaling` ask of each deployed service's
/// scalable target (namespace ecs, `service/CLUSTER/SERVICE`, `ecs:service:DesiredCount`).
/// The single flags are ecspresso's: they set the state before the update and leave it so.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AutoScaling {
    /// Suspend before the update; it stays suspended.
    Suspend,
    /// Resume before the update.
    Resume,
    /// Both flags: suspend before the update; resume after the service's deploy succeeded
    /// (a failed, cancelled or timed-out deploy leaves it suspended, and says so).
    SuspendDuring,
}

impl AutoScaling {
    /// The mode the flags ask for; both flags need a deploy that is followed to its end.
    pub(crate) fn from_flags(
        suspend: bool,
        resume: bool,
        flags: &DeployFlags,
    ) -> Result<Option<Self>> {
        Ok(match (suspend, resume) {
            (false, false) => None,
            (true, false) => Some(AutoScaling::Suspend),
            (false, true) => Some(AutoScaling::Resume),
            (true, true) => {
                let unfollowed = if flags.no_wait {
                    Some("--no-wait")
                } else if flags.until != Until::Done {
                    Some("--until / --wait-until ecs:STAGE")
                } else if flags.no_update_service {
                    Some("--no-update-service")
                } else {
                    None
                };
                if let Some(flag) = unfollowed {
                    return Err(Error::input(
                        Diagnostic::error(format!(
                            "--suspend-auto-scaling with --resume-auto-scaling resumes auto scaling once the deploy has succeeded, and with {flag} this run never sees it succeed"
                        ))
                        .hint("pass --suspend-auto-scaling alone now, and resume later with `cortado deploy --resume-auto-scaling` (a deploy with nothing changed makes no other write)"),
                    ));
                }
                Some(AutoScaling::SuspendDuring)
            }
        })
    }

    fn suspends(self) -> bool {
        self != AutoScaling::Resume
    }

    /// Sets each service's state before the update; returns the services this run
    /// suspended and must resume afterwards (`SuspendDuring` only). A service without a
    /// scalable target (or not created yet) is noted and left alone. On an error nothing
    /// more is changed: the targets suspended so far are resumed again, and the error ends
    /// the run before any service update.
    pub(crate) async fn before(
        self,
        clients: &Clients,
        say: &(dyn Fn(&str) + Sync),
        services: &[(String, String)],
        dry_run: bool,
    ) -> Result<Vec<(String, String)>> {
        let (verb, done) = if self.suspends() {
            ("suspend", "suspended")
        } else {
            ("resume", "resumed")
        };
        let mut changed = Vec::new();
        for (cluster, service) in services {
            let id = service_resource_id(cluster, service);
            let step = async {
                let Some(target) = clients.scalable_target(cluster, service).await? else {
                    note(
                        say,
                        format!("auto scaling: {id} has no scalable target; nothing to {verb}"),
                    );
                    return Ok(false);
                };
                let already = if self.suspends() {
                    target.all_suspended()
                } else {
                    target.none_suspended()
                };
                if already {
                    let after = if self == AutoScaling::SuspendDuring {
                        " (it was so before this run, so it stays so afterwards)"
                    } else {
                        ""
                    };
                    note(say, format!("auto scaling: {id} is already {done}{after}"));
                    return Ok(false);
                }
                if dry_run {
                    note(
                        say,
                        format!(
                            "auto scaling: would {verb} {id} (min {}, max {}){}",
                            target.min,
                            target.max,
                            if self == AutoScaling::SuspendDuring {
                                ", and resume it after a successful deploy"
                            } else {
                                ""
                            }
                        ),
                    );
                    return Ok(false);
                }
                clients
                    .set_auto_scaling_suspended(cluster, service, self.suspends())
                    .await?;
                note(
                    say,
                    format!(
                        "auto scaling: {done} {id} (dynamic scale-in, scale-out and scheduled scaling)"
                    ),
                );
                Ok::<bool, Error>(true)
            };
            match step.await {
                Ok(true) if self == AutoScaling::SuspendDuring => {
                    changed.push((cluster.clone(), service.clone()));
                }
                Ok(_) => {}
                Err(e) => {
                    let mut e = e;
                    if self == AutoScaling::SuspendDuring {
                        for (c, s) in &changed {
                            e.diagnostics.extend(restore(clients, say, c, s).await);
                        }
                    }
                    return Err(e);
                }
            }
        }
        Ok(changed)
    }
}

/// Resumes a target suspended by this run before any service was updated (best effort);
/// the warning when it stays suspended.
async fn restore(
    clients: &Clients,
    say: &(dyn Fn(&str) + Sync),
    cluster: &str,
    service: &str,
) -> Vec<Diagnostic> {
    let id = service_resource_id(cluster, service);
    match clients
        .set_auto_scaling_suspended(cluster, service, false)
        .await
    {
        Ok(()) => {
            note(
                say,
                format!("auto scaling: resumed {id} again (nothing was deployed)"),
            );
            Vec::new()
        }
        Err(_) => still_suspended(
            &[(cluster.to_string(), service.to_string())],
            "resuming it again failed",
        ),
    }
}

/// After the engine: resumes each target this run suspended whose service's deploy
/// succeeded (or changed nothing, or was skipped: the service is as it was). A failed one
/// stays suspended, with a warning. Returns the warnings, and an error when a resume call
/// failed.
pub(crate) async fn resume_after(
    clients: &Clients,
    say: &(dyn Fn(&str) + Sync),
    suspended: &[(String, String)],
    run: &RunResult,
) -> (Vec<Diagnostic>, Option<Diagnostic>) {
    let mut warnings = Vec::new();
    let mut failed = Vec::new();
    for (cluster, service) in suspended {
        let outcome = run
            .services
            .iter()
            .find(|r| &r.cluster == cluster && &r.service == service)
            .map(|r| r.outcome);
        match outcome {
            Some(o) if o.is_success() => {}
            other => {
                let why = other.map_or_else(
                    || "the run has no result for it".to_string(),
                    |o| format!("its deploy did not succeed ({})", o.label()),
                );
                warnings.extend(still_suspended(&[(cluster.clone(), service.clone())], &why));
                continue;
            }
        }
        let id = service_resource_id(cluster, service);
        match clients
            .set_auto_scaling_suspended(cluster, service, false)
            .await
        {
            Ok(()) => note(say, format!("auto scaling: resumed {id}")),
            Err(e) => {
                let why = e
                    .diagnostics
                    .first()
                    .map_or_else(String::new, |d| d.message.clone());
                failed.push(format!("{id}: {why}"));
            }
        }
    }
    if failed.is_empty() {
        return (warnings, None);
    }
    let error = Diagnostic::error(format!(
        "the deploy is done, but auto scaling could not be resumed: {}",
        failed.join("; ")
    ))
    .hint(resume_hint());
    (warnings, Some(error))
}

fn resume_hint() -> String {
    "resume it with `cortado deploy --resume-auto-scaling` once the service is sound (with nothing changed it makes no other write), or `aws application-autoscaling register-scalable-target --service-namespace ecs --scalable-dimension ecs:service:DesiredCount --resource-id service/CLUSTER/SERVICE --suspended-state DynamicScalingInSuspended=false,DynamicScalingOutSuspended=false,ScheduledScalingSuspended=false`".to_string()
}

/// The warnings that targets this run suspended stay suspended, and how to resume them.
pub(crate) fn still_suspended(targets: &[(String, String)], why: &str) -> Vec<Diagnostic> {
    targets
        .iter()
        .map(|(cluster, service)| {
            Diagnostic::warning(format!(
                "auto scaling of {} stays suspended: {why}",
                service_resource_id(cluster, service)
            ))
            .hint(resume_hint())
        })
        .collect()
}

/// The (cluster, service) of each deploy step of a release: the targets whose scaling a
/// deploy suspends.
pub(crate) fn deployed_services(release: &ReleaseRun<'_>) -> Vec<(String, String)> {
    release
        .steps
        .iter()
        .filter(|step| step.action == Action::Deploy)
        .filter_map(|step| release.locals.iter().find(|l| l.config.path == step.config))
        .filter_map(|l| Some((l.config.cluster.clone(), l.config.service.clone()?)))
        .collect()
}

/// `--auto-scaling-min` / `--auto-scaling-max` (ecspresso's): the capacities asked for, checked
/// before any call (0 or more, min not above max).
pub(crate) fn capacity_of(
    min: Option<i32>,
    max: Option<i32>,
) -> Result<Option<(Option<i32>, Option<i32>)>> {
    if min.is_none() && max.is_none() {
        return Ok(None);
    }
    if min.is_some_and(|n| n < 0) || max.is_some_and(|n| n < 0) {
        return Err(Error::bad_input(
            "--auto-scaling-min and --auto-scaling-max must be 0 or more",
        ));
    }
    if let (Some(a), Some(b)) = (min, max)
        && a > b
    {
        return Err(Error::bad_input(format!(
            "--auto-scaling-min {a} is above --auto-scaling-max {b}"
        )));
    }
    Ok(Some((min, max)))
}

/// Sets the capacities of each service's scalable target before its update; a service
/// without one is noted and left alone (ecspresso registers none either).
pub(crate) async fn set_capacity(
    clients: &Clients,
    say: &(dyn Fn(&str) + Sync),
    services: &[(String, String)],
    (min, max): (Option<i32>, Option<i32>),
    dry_run: bool,
) -> Result<()> {
    let words = [
        min.map(|n| format!("min {n}")),
        max.map(|n| format!("max {n}")),
    ]
    .into_iter()
    .flatten()
    .collect::<Vec<_>>()
    .join(", ");
    for (cluster, service) in services {
        let id = service_resource_id(cluster, service);
        let Some(target) = clients.scalable_target(cluster, service).await? else {
            note(
                say,
                format!("auto scaling: {id} has no scalable target; {words} not set"),
            );
            continue;
        };
        let after = (min.unwrap_or(target.min), max.unwrap_or(target.max));
        if after.0 > after.1 {
            return Err(Error::bad_input(format!(
                "auto scaling of {id}: min {} would be above max {}",
                after.0, after.1
            )));
        }
        if dry_run {
            note(say, format!("auto scaling: would set {id} to {words}"));
            continue;
        }
        clients
            .set_auto_scaling_capacity(cluster, service, min, max)
            .await?;
        note(say, format!("auto scaling: set {id} to {words}"));
    }
    Ok(())
}

/// A line of what auto scaling did, for the command to show.
fn note(say: &(dyn Fn(&str) + Sync), message: String) {
    say(&message);
}
