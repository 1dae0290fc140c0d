//! `cortado rollback`: stops the deployment in flight (ECS returns to the last good
//! revision), or returns the service to the revision that last ran successfully before the
//! running one (from ECS's record of its deployments, else the family's ACTIVE revision before
//! it, ecspresso's rule; `--revision N` to choose); follows it. `--dry-run` decides and prints.

use super::session;
use crate::deploy::controller::seam::RollbackOptions;
use crate::deploy::engine::Engine;
use crate::error::{ExitCode, Result};
use crate::report::Printer;
use crate::settings::Settings;

#[derive(Debug, clap::Args)]
pub struct RollbackArgs {
    /// Deregister the rolled-back revision once the rollback succeeded (kept by default,
    /// unlike ecspresso).
    #[arg(long, visible_alias = "deregister-task-definition")]
    pub deregister: bool,
    /// Keep the rolled-back revision (cortado's default; ecspresso's flag, accepted).
    #[arg(long, conflicts_with = "deregister")]
    pub no_deregister_task_definition: bool,
    /// Decide the rollback and print it; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Return to the family's ACTIVE revision before the running one, whatever ECS's record
    /// of deployments says (ecspresso's rule).
    #[arg(long, conflicts_with = "revision")]
    pub with_previous_task_definition: bool,
    /// Start the rollback and exit without following it.
    #[arg(long)]
    pub no_wait: bool,
    /// When the rollback counts as done: `serving` (default) or `complete`.
    #[arg(long, value_enum, value_name = "WHEN")]
    pub wait_rollback: Option<WaitRollbackArg>,
    /// Return to revision N of the family instead of the one that last served.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(i64).range(1..))]
    pub revision: Option<i64>,
}

/// `--wait-rollback`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum WaitRollbackArg {
    Serving,
    Complete,
}

impl From<WaitRollbackArg> for crate::deploy::core::rollback::WaitRollback {
    fn from(a: WaitRollbackArg) -> Self {
        match a {
            WaitRollbackArg::Serving => Self::Serving,
            WaitRollbackArg::Complete => Self::Complete,
        }
    }
}

pub async fn run(
    settings: &Settings,
    printer: &mut Printer,
    args: &RollbackArgs,
) -> Result<ExitCode> {
    let (locals, s) = session::open(settings, printer).await?;
    let emitter = session::emitter_for(printer);
    let mut engine = Engine::new(&s.clients, &emitter, session::cancel_on_signals());
    engine.timeout = settings.timeout;
    engine.wait_rollback = args.wait_rollback.map(Into::into);
    let run = engine
        .rollback(
            &locals,
            RollbackOptions {
                no_wait: args.no_wait,
                deregister: args.deregister,
                revision: args.revision,
                dry_run: args.dry_run,
                with_previous: args.with_previous_task_definition,
            },
        )
        .await?;
    crate::report::result::finish(printer, &run)
}
