//! `cortado wait`: follows each service's current deployment to a verdict, or with
//! `--wait-until paused` to the first PAUSE hook no gate answers (ecspresso pre-v3's).

use super::session;
use crate::deploy::engine::Engine;
use crate::deploy::gate::Until;
use crate::error::{ExitCode, Result};
use crate::report::Printer;
use crate::settings::Settings;

/// Where `wait` and `continue` stop following (ecspresso's `--wait-until`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum WaitUntil {
    /// Until the deployment succeeds or fails.
    #[default]
    Stable,
    /// The same as `stable`.
    Deployed,
    /// Until it waits on a PAUSE hook no gate answers (exit 0, outcome paused).
    Paused,
}

impl From<WaitUntil> for Until {
    fn from(w: WaitUntil) -> Until {
        match w {
            WaitUntil::Stable | WaitUntil::Deployed => Until::Done,
            WaitUntil::Paused => Until::Pause,
        }
    }
}

/// Flags of `cortado wait`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct WaitArgs {
    /// Follow until done (`stable`, `deployed`) or the first unanswered PAUSE hook (`paused`).
    #[arg(long, value_enum, value_name = "WHEN")]
    pub wait_until: Option<WaitUntil>,
}

pub async fn run(settings: &Settings, printer: &mut Printer, args: &WaitArgs) -> Result<ExitCode> {
    let (locals, s) = session::open(settings, printer).await?;
    let emitter = session::emitter_for(printer);
    let mut engine = Engine::new(&s.clients, &emitter, session::cancel_on_signals());
    engine.timeout = settings.timeout;
    engine.until = args.wait_until.unwrap_or_default().into();
    let run = engine.wait(&locals).await?;
    crate::report::result::finish(printer, &run)
}
