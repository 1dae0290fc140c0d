//! `cortado deploy`: flags into [`DeployFlags`], the engine's `deploy` (with auto scaling
//! suspended and resumed around it by the core's [`autoscaling`]), the result out.

use super::session;
use crate::cli::DeployArgs;
use crate::deploy::autoscaling::{self, AutoScaling};
use crate::deploy::controller::seam::DeployFlags;
use crate::deploy::engine::{Engine, ReleaseRun};
use crate::deploy::gate::Until;
use crate::error::{ExitCode, Result};
use crate::release::DEFAULT_PARALLEL;
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
    let auto_scaling =
        AutoScaling::from_flags(args.suspend_auto_scaling, args.resume_auto_scaling, &flags)?;
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
    let suspended = match auto_scaling {
        Some(mode) => {
            let deployed = autoscaling::deployed_services(&release);
            let say = |m: &str| printer.info(m);
            mode.before(&s.clients, &say, &deployed, flags.dry_run)
                .await?
        }
        None => Vec::new(),
    };
    let run = match engine.deploy(&release, &flags).await {
        Ok(run) => run,
        Err(mut e) => {
            let why = "the deploy stopped with an error";
            e.diagnostics
                .extend(autoscaling::still_suspended(&suspended, why));
            return Err(e);
        }
    };
    let say = |m: &str| printer.info(m);
    let (warnings, resume_failed) =
        autoscaling::resume_after(&s.clients, &say, &suspended, &run).await;
    for w in &warnings {
        printer.diagnostic(w);
    }
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

fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}
