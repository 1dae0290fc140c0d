//! `cortado continue`: answers the PAUSE hook the service's current deployment waits on with
//! CONTINUE, then follows it to a verdict (`--no-wait`: does not follow; `--wait-until
//! paused`: follows it to the next PAUSE hook no gate answers); with `--rollback`, answers
//! ROLLBACK and follows the rollback (as `cortado rollback`).

use super::session;
use super::wait::WaitUntil;
use crate::deploy::engine::Engine;
use crate::error::{Error, ExitCode, Result};
use crate::report::Printer;
use crate::settings::Settings;

/// Flags of `cortado continue`.
#[derive(Debug, Clone, clap::Args)]
pub struct ContinueArgs {
    /// Roll the deployment back instead of continuing it.
    #[arg(long)]
    pub rollback: bool,
    /// Answer the hook and exit without following the deployment.
    #[arg(long, conflicts_with = "wait_until")]
    pub no_wait: bool,
    /// Follow until done (`stable`, `deployed`) or the next unanswered PAUSE hook (`paused`).
    #[arg(long, value_enum, value_name = "WHEN")]
    pub wait_until: Option<WaitUntil>,
}

pub async fn run(
    settings: &Settings,
    printer: &mut Printer,
    args: &ContinueArgs,
) -> Result<ExitCode> {
    if args.rollback && args.wait_until == Some(WaitUntil::Paused) {
        return Err(Error::bad_input(
            "continue --rollback follows the rollback to its end; --wait-until paused is for continuing",
        )
        .with_hint("run `cortado continue --rollback --no-wait`, then `cortado wait --wait-until paused`"));
    }
    let (locals, s) = session::open(settings, printer).await?;
    let emitter = session::emitter_for(printer);
    let mut engine = Engine::new(&s.clients, &emitter, session::cancel_on_signals());
    engine.timeout = settings.timeout;
    engine.until = args.wait_until.unwrap_or_default().into();
    let run = if args.rollback {
        engine
            .rollback(
                &locals,
                crate::deploy::controller::seam::RollbackOptions {
                    no_wait: args.no_wait,
                    ..Default::default()
                },
            )
            .await?
    } else {
        engine.continue_deployment(&locals, args.no_wait).await?
    };
    crate::report::result::finish(printer, &run)
}
