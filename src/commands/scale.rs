//! `cortado scale --tasks N`: sets the desired count and follows the service to a verdict.
//! `--dry-run` prints the plan of that change (a deploy with the service's own task
//! definition and attributes, as ecspresso's `scale` is) and calls nothing that writes.

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
    /// The desired number of tasks.
    #[arg(long)]
    pub tasks: i32,
    /// Print the plan and call nothing that changes anything.
    #[arg(long)]
    pub dry_run: bool,
    /// Set the minimum capacity of the service's Application Auto Scaling target first.
    #[arg(long, value_name = "N")]
    pub auto_scaling_min: Option<i32>,
    /// Set the maximum capacity of the service's Application Auto Scaling target first.
    #[arg(long, value_name = "N")]
    pub auto_scaling_max: Option<i32>,
}

pub async fn run(settings: &Settings, printer: &mut Printer, args: &ScaleArgs) -> Result<ExitCode> {
    let tasks = args.tasks;
    // Checked before anything is loaded or called.
    if tasks < 0 {
        return Err(Error::bad_input(format!(
            "--tasks must be 0 or more, got {tasks}"
        )));
    }
    let capacity = autoscaling::capacity_of(args.auto_scaling_min, args.auto_scaling_max)?;
    if args.dry_run {
        let deploy = DeployArgs {
            dry_run: true,
            skip_task_definition: true,
            tasks: Some(tasks),
            auto_scaling_min: args.auto_scaling_min,
            auto_scaling_max: args.auto_scaling_max,
            ..DeployArgs::default()
        };
        let flags = DeployFlags {
            keep_attributes: true,
            ..DeployFlags::from(&deploy)
        };
        return deploy::run_with(settings, printer, &deploy, flags).await;
    }
    let (locals, s) = session::open(settings, printer).await?;
    if let Some(c) = capacity {
        let say = |m: &str| printer.info(m);
        let services: Vec<(String, String)> = locals
            .iter()
            .filter_map(|l| Some((l.config.cluster.clone(), l.config.service.clone()?)))
            .collect();
        autoscaling::set_capacity(&s.clients, &say, &services, c, false).await?;
    }
    let emitter = session::emitter_for(printer);
    let mut engine = Engine::new(&s.clients, &emitter, session::cancel_on_signals());
    engine.timeout = settings.timeout;
    let run = engine.scale(&locals, tasks).await?;
    crate::report::result::finish(printer, &run)
}
