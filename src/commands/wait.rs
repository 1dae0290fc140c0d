//! `cortado wait`: follows each service's current deployment to a verdict. `cortado continue`:
//! answers its waiting PAUSE hook first (or rolls it back with `--rollback`).

use super::session;
use crate::deploy::engine::Engine;
use crate::error::{ExitCode, Result};
use crate::report::Printer;
use crate::settings::Settings;

pub async fn run(settings: &Settings, printer: &mut Printer) -> Result<ExitCode> {
    let (locals, s) = session::open(settings, printer).await?;
    let emitter = session::emitter_for(printer);
    let mut engine = Engine::new(&s.clients, &emitter, session::cancel_on_signals());
    engine.timeout = settings.timeout;
    let run = engine.wait(&locals).await?;
    crate::report::result::finish(printer, &run)
}

pub async fn continue_run(
    settings: &Settings,
    printer: &mut Printer,
    rollback: bool,
) -> Result<ExitCode> {
    let (locals, s) = session::open(settings, printer).await?;
    let emitter = session::emitter_for(printer);
    let mut engine = Engine::new(&s.clients, &emitter, session::cancel_on_signals());
    engine.timeout = settings.timeout;
    let run = if rollback {
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
