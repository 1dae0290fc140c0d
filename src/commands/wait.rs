//! `cortado wait`: follows each service's current deployment to a verdict.

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
