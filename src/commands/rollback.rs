//! `cortado rollback`: stops the deployment in flight (ECS returns to the last good
//! revision), or returns the service to the revision that last ran successfully before the
//! running one (from ECS's record of its deployments; `--revision N` to choose); follows it.

use super::session;
use crate::cli::RollbackArgs;
use crate::deploy::controller::seam::RollbackOptions;
use crate::deploy::engine::Engine;
use crate::error::{ExitCode, Result};
use crate::report::Printer;
use crate::settings::Settings;

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
            },
        )
        .await?;
    crate::report::result::finish(printer, &run)
}
