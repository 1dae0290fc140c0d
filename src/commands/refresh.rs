//! `cortado refresh`: a new deployment of the service with the task definition, attributes and
//! desired count it has (fresh tasks, e.g. to pull a moved image tag or reread secrets), as
//! ecspresso's `refresh` (`deploy --skip-task-definition --force-new-deployment
//! --no-update-service`); followed to a verdict like a deploy.

use super::deploy::{self, DeployArgs};
use crate::deploy::controller::seam::DeployFlags;
use crate::error::{ExitCode, Result};
use crate::report::Printer;
use crate::settings::Settings;

/// Flags of `cortado refresh`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct RefreshArgs {
    /// Print the plan and call nothing that changes anything.
    #[arg(long)]
    pub dry_run: bool,
    /// Start the deployment and exit without following it.
    #[arg(long)]
    pub no_wait: bool,
}

/// `cortado refresh`.
pub async fn run(
    settings: &Settings,
    printer: &mut Printer,
    args: &RefreshArgs,
) -> Result<ExitCode> {
    let deploy = DeployArgs {
        dry_run: args.dry_run,
        no_wait: args.no_wait,
        skip_task_definition: true,
        force_new_deployment: true,
        ..DeployArgs::default()
    };
    let flags = DeployFlags {
        keep_attributes: true,
        ..DeployFlags::from(&deploy)
    };
    deploy::run_with(settings, printer, &deploy, flags).await
}
