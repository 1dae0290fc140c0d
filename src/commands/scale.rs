//! `cortado scale --tasks N`: sets the desired count and follows the service to a verdict
//! (`--no-wait`: does not follow). `--suspend-auto-scaling` / `--resume-auto-scaling` set the
//! state of the service's scalable target first, as `deploy`'s do (both: suspended for the
//! scale, resumed once it succeeded); without `--tasks` they are all that happens, as in
//! ecspresso. `--dry-run` prints the plan of that change (a deploy with the service's own
//! task definition and attributes, as ecspresso's `scale` is) and calls nothing that writes.

use super::deploy::{self, DeployArgs};
use super::session;
use crate::deploy::autoscaling;
use crate::deploy::controller::seam::DeployFlags;
use crate::deploy::engine::Engine;
use crate::error::{Error, ExitCode, Result};
use crate::report::Printer;
use crate::settings::Settings;

/// Flags of `cortado scale`.
#[derive(Debug, Clone, clap::Args)]
pub struct ScaleArgs {
    /// The desired number of tasks (without it, only the auto scaling flags act).
    #[arg(long)]
    pub tasks: Option<i32>,
    /// Print the plan and call nothing that changes anything.
    #[arg(long)]
    pub dry_run: bool,
    /// Set the desired count and exit without following the service.
    #[arg(long)]
    pub no_wait: bool,
    #[command(flatten)]
    pub auto_scaling: super::deploy::AutoScalingArgs,
}

pub async fn run(settings: &Settings, printer: &mut Printer, args: &ScaleArgs) -> Result<ExitCode> {
    let tasks = args.tasks;
    // Checked before anything is loaded or called.
    if let Some(n) = tasks.filter(|n| *n < 0) {
        return Err(Error::bad_input(format!(
            "--tasks must be 0 or more, got {n}"
        )));
    }
    let capacity = args.auto_scaling.capacity()?;
    if tasks.is_none() && !args.auto_scaling.any() {
        return Err(Error::bad_input("cortado scale has nothing to do").with_hint(
            "pass --tasks N, or --suspend-auto-scaling / --resume-auto-scaling / --auto-scaling-min / --auto-scaling-max",
        ));
    }
    let follow = DeployFlags {
        no_wait: args.no_wait,
        ..DeployFlags::default()
    };
    let auto_scaling = args.auto_scaling.mode(&follow)?;
    if args.dry_run {
        let deploy = DeployArgs {
            dry_run: true,
            skip_task_definition: true,
            tasks,
            no_wait: args.no_wait,
            auto_scaling: args.auto_scaling.clone(),
            ..DeployArgs::default()
        };
        let flags = DeployFlags {
            keep_attributes: true,
            ..DeployFlags::from(&deploy)
        };
        return deploy::run_with(settings, printer, &deploy, flags).await;
    }
    let (locals, s) = session::open(settings, printer).await?;
    let services: Vec<(String, String)> = locals
        .iter()
        .filter_map(|l| Some((l.config.cluster.clone(), l.config.service.clone()?)))
        .collect();
    if let Some(c) = capacity {
        let say = |m: &str| printer.info(m);
        autoscaling::set_capacity(&s.clients, &say, &services, c, false).await?;
    }
    let suspended = match auto_scaling {
        Some(mode) => {
            let say = |m: &str| printer.info(m);
            mode.before(&s.clients, &say, &services, false).await?
        }
        None => Vec::new(),
    };
    let emitter = session::emitter_for(printer);
    let mut engine = Engine::new(&s.clients, &emitter, session::cancel_on_signals());
    engine.timeout = settings.timeout;
    let run = match engine.scale(&locals, tasks, args.no_wait).await {
        Ok(run) => run,
        Err(mut e) => {
            let why = "the scale stopped with an error";
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
    let code = crate::report::result::finish(printer, &run)?;
    Ok(match resume_failed {
        // The scale went well but the service's auto scaling stays off: an AWS error.
        Some(d) => {
            printer.diagnostic(&d);
            if code == ExitCode::Success {
                ExitCode::Aws
            } else {
                code
            }
        }
        None => code,
    })
}
