//! `cortado continue`: answers the PAUSE hook the service's current deployment waits on with
//! CONTINUE, then follows it to a verdict; with `--rollback`, answers ROLLBACK and follows the
//! rollback (as `cortado rollback`).

use super::session;
use crate::deploy::engine::Engine;
use crate::error::{ExitCode, Result};
use crate::report::Printer;
use crate::settings::Settings;

/// Flags of `cortado continue`.
#[derive(Debug, Clone, clap::Args)]
pub struct ContinueArgs {
    /// Roll the deployment back instead of continuing it.
    #[arg(long)]
    pub rollback: bool,
}

pub async fn run(
    settings: &Settings,
    printer: &mut Printer,
    args: &ContinueArgs,
) -> Result<ExitCode> {
    let (locals, s) = session::open(settings, printer).await?;
    let emitter = session::emitter_for(printer);
    let mut engine = Engine::new(&s.clients, &emitter, session::cancel_on_signals());
    engine.timeout = settings.timeout;
    let run = if args.rollback {
        engine
            .rollback(
                &locals,
                crate::deploy::controller::seam::RollbackOptions::default(),
            )
            .await?
    } else {
        engine.continue_deployment(&locals).await?
    };
    crate::report::result::finish(printer, &run)
}
