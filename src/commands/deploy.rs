//! `cortado deploy`: flags into [`DeployFlags`], the engine's `deploy`, the result out.
//!
//! Around the engine call, `--suspend-auto-scaling` / `--resume-auto-scaling` set each
//! deployed service's Application Auto Scaling `SuspendedState` ([`AutoScaling`]): after
//! everything local has passed and before the first service update, and — with both flags —
//! back again once the service's deploy succeeded.

use super::session;
use crate::aws::Clients;
use crate::aws::autoscaling::service_resource_id;
use crate::cli::DeployArgs;
use crate::deploy::controller::seam::DeployFlags;
use crate::deploy::engine::{Engine, ReleaseRun};
use crate::deploy::gate::Until;
use crate::deploy::result::RunResult;
use crate::error::{Diagnostic, Error, ExitCode, Result};
use crate::release::{Action, DEFAULT_PARALLEL};
use crate::report::timeline::Recorder;
use crate::report::{Format, Printer};
use crate::settings::Settings;

impl From<&DeployArgs> for DeployFlags {
    fn from(a: &DeployArgs) -> Self {
        DeployFlags {
            dry_run: a.dry_run,
            no_wait: a.no_wait,
            skip_task_definition: a.skip_task_definition,
            latest_task_definition: a.latest_task_definition,
            revision: a.revision,
            force_register: a.force_register,
            force_new_deployment: a.force_new_deployment,
            tasks: a.tasks,
            no_update_service: a.no_update_service,
            no_rollback: a.no_rollback,
            until: match (a.until, &a.wait_until) {
                (Some(crate::cli::UntilArg::TestTraffic), _) => Until::Pause,
                (None, Some(u)) => u.clone(),
                (None, None) => Until::Done,
            },
        }
    }
}

pub async fn run(
    settings: &Settings,
    printer: &mut Printer,
    args: &DeployArgs,
) -> Result<ExitCode> {
    let flags = DeployFlags::from(args);
    let auto_scaling = AutoScaling::from_flags(args, &flags)?;
    let started = now();
    let (locals, s) = session::open_all(settings, printer).await?;
    if args.verify {
        let mut all = Vec::new();
        for local in &locals {
            all.push((local, super::verify::checks(&s.clients, local).await?));
        }
        let ng = all
            .iter()
            .flat_map(|(_, c)| c)
            .filter(|c| c.status == super::verify::Status::Ng)
            .count();
        if ng > 0 {
            super::verify::report(printer, &all);
            return Err(crate::error::Error::input(
                crate::error::Diagnostic::error(format!(
                    "verify found {ng} problem(s): nothing was deployed"
                ))
                .hint("fix what the NG lines say, or run `cortado verify` to see them again"),
            ));
        }
    }
    let emitter = session::emitter_for(printer);
    let recorder = Recorder::subscribe(&emitter, started);
    let mut engine = Engine::new(&s.clients, &emitter, session::cancel_on_signals());
    engine.timeout = settings.timeout;
    engine.wait_rollback = args.wait_rollback.map(Into::into);
    let release = settings.release()?;
    let release = ReleaseRun {
        steps: &release.steps,
        locals: &locals,
        parallel: args
            .parallel
            .map(|n| n as usize)
            .or(release.parallel)
            .unwrap_or(DEFAULT_PARALLEL),
        on_failure: args
            .on_failure
            .map(Into::into)
            .or(release.on_failure)
            .unwrap_or_default(),
    };
    let deployed: Vec<(String, String)> = release
        .steps
        .iter()
        .filter(|step| step.action == Action::Deploy)
        .filter_map(|step| locals.iter().find(|l| l.config.path == step.config))
        .filter_map(|l| Some((l.config.cluster.clone(), l.config.service.clone()?)))
        .collect();
    let suspended = match auto_scaling {
        Some(mode) => {
            mode.before(&s.clients, printer, &deployed, flags.dry_run)
                .await?
        }
        None => Vec::new(),
    };
    let run = match engine.deploy(&release, &flags).await {
        Ok(run) => run,
        Err(e) => {
            still_suspended(printer, &suspended, "the deploy stopped with an error");
            return Err(e);
        }
    };
    let resume_failed = resume_after(&s.clients, printer, &suspended, &run).await;
    if flags.dry_run && printer.format == Format::Text {
        for p in run.services.iter().filter_map(|r| r.plan.as_ref()) {
            printer.out(&p.text(printer.color()));
        }
    }
    let code = crate::report::result::finish_with(printer, &run, &recorder.timelines(now()))?;
    Ok(match resume_failed {
        // The deploy went well but its service's scaling stays off: an AWS error of its own.
        Some(d) if code == ExitCode::Success => {
            printer.diagnostic(&d);
            ExitCode::Aws
        }
        Some(d) => {
            printer.diagnostic(&d);
            code
        }
        None => code,
    })
}

/// What `--suspend-auto-scaling` / `--resume-auto-scaling` ask of each deployed service's
/// scalable target (namespace ecs, `service/CLUSTER/SERVICE`, `ecs:service:DesiredCount`).
/// The single flags are ecspresso's: they set the state before the update and leave it so.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AutoScaling {
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
    fn from_flags(args: &DeployArgs, flags: &DeployFlags) -> Result<Option<Self>> {
        Ok(
            match (args.suspend_auto_scaling, args.resume_auto_scaling) {
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
            },
        )
    }

    fn suspends(self) -> bool {
        self != AutoScaling::Resume
    }

    /// Sets each service's state before the update; returns the services this run
    /// suspended and must resume afterwards (`SuspendDuring` only). A service without a
    /// scalable target (or not created yet) is noted and left alone. On an error nothing
    /// more is changed: the targets suspended so far are resumed again, and the error ends
    /// the run before any service update.
    async fn before(
        self,
        clients: &Clients,
        printer: &Printer,
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
                    printer.info(&format!(
                        "auto scaling: {id} has no scalable target; nothing to {verb}"
                    ));
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
                    printer.info(&format!("auto scaling: {id} is already {done}{after}"));
                    return Ok(false);
                }
                if dry_run {
                    printer.info(&format!(
                        "auto scaling: would {verb} {id} (min {}, max {}){}",
                        target.min,
                        target.max,
                        if self == AutoScaling::SuspendDuring {
                            ", and resume it after a successful deploy"
                        } else {
                            ""
                        }
                    ));
                    return Ok(false);
                }
                clients
                    .set_auto_scaling_suspended(cluster, service, self.suspends())
                    .await?;
                printer.info(&format!(
                    "auto scaling: {done} {id} (dynamic scale-in, scale-out and scheduled scaling)"
                ));
                Ok::<bool, Error>(true)
            };
            match step.await {
                Ok(true) if self == AutoScaling::SuspendDuring => {
                    changed.push((cluster.clone(), service.clone()));
                }
                Ok(_) => {}
                Err(e) => {
                    if self == AutoScaling::SuspendDuring {
                        for (c, s) in &changed {
                            restore(clients, printer, c, s).await;
                        }
                    }
                    return Err(e);
                }
            }
        }
        Ok(changed)
    }
}

/// Resumes a target suspended by this run before any service was updated (best effort).
async fn restore(clients: &Clients, printer: &Printer, cluster: &str, service: &str) {
    let id = service_resource_id(cluster, service);
    match clients
        .set_auto_scaling_suspended(cluster, service, false)
        .await
    {
        Ok(()) => printer.info(&format!(
            "auto scaling: resumed {id} again (nothing was deployed)"
        )),
        Err(_) => still_suspended(
            printer,
            &[(cluster.to_string(), service.to_string())],
            "resuming it again failed",
        ),
    }
}

/// After the engine: resumes each target this run suspended whose service's deploy
/// succeeded (or changed nothing, or was skipped: the service is as it was). A failed one
/// stays suspended, with a warning. Returns a diagnostic when a resume call failed.
async fn resume_after(
    clients: &Clients,
    printer: &Printer,
    suspended: &[(String, String)],
    run: &RunResult,
) -> Option<Diagnostic> {
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
                still_suspended(printer, &[(cluster.clone(), service.clone())], &why);
                continue;
            }
        }
        let id = service_resource_id(cluster, service);
        match clients
            .set_auto_scaling_suspended(cluster, service, false)
            .await
        {
            Ok(()) => printer.info(&format!("auto scaling: resumed {id}")),
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
        return None;
    }
    Some(
        Diagnostic::error(format!(
            "the deploy is done, but auto scaling could not be resumed: {}",
            failed.join("; ")
        ))
        .hint(resume_hint()),
    )
}

fn resume_hint() -> String {
    "resume it with `cortado deploy --resume-auto-scaling` once the service is sound (with nothing changed it makes no other write), or `aws application-autoscaling register-scalable-target --service-namespace ecs --scalable-dimension ecs:service:DesiredCount --resource-id service/CLUSTER/SERVICE --suspended-state DynamicScalingInSuspended=false,DynamicScalingOutSuspended=false,ScheduledScalingSuspended=false`".to_string()
}

/// Warns that targets this run suspended stay suspended, and how to resume them.
fn still_suspended(printer: &Printer, targets: &[(String, String)], why: &str) {
    for (cluster, service) in targets {
        printer.diagnostic(
            &Diagnostic::warning(format!(
                "auto scaling of {} stays suspended: {why}",
                service_resource_id(cluster, service)
            ))
            .hint(resume_hint()),
        );
    }
}

fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}
