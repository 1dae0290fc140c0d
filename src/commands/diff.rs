//! `cortado diff`: the normalized diff of the rendered definitions against what runs, as
//! text, Markdown or JSON; `--comment` keeps the sticky pull-request comment. Exit 0 whether
//! or not something differs, as ecspresso's `diff`; with `--exit-code`, 2 when something does.

use serde_json::json;

use super::session;
use crate::deploy::controller::seam::DeployFlags;
use crate::deploy::engine::Engine;
use crate::error::{ExitCode, Result};
use crate::plan::ServicePlan;
use crate::report::Printer;
use crate::settings::Settings;

#[derive(Debug, clap::Args)]
pub struct DiffArgs {
    /// Output format (default: a unified diff, coloured on a terminal).
    #[arg(long, value_enum, default_value_t = DiffFormat::Text)]
    pub format: DiffFormat,
    /// Create or update the sticky comment on the pull request (GITHUB_EVENT_PATH,
    /// GITHUB_REPOSITORY, GITHUB_TOKEN, GITHUB_API_URL).
    #[arg(long)]
    pub comment: bool,
    /// Exit 2 when something differs (default: 0 either way, as ecspresso's `diff`; the
    /// `changed` output and the JSON's `changed` say it too).
    #[arg(long)]
    pub exit_code: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DiffFormat {
    Text,
    Markdown,
    Json,
}

/// `cortado diff`: exit 0, or 2 with changes when `--exit-code` asks.
pub async fn run(settings: &Settings, printer: &mut Printer, args: &DiffArgs) -> Result<ExitCode> {
    let (locals, s) = session::open(settings, printer).await?;
    let emitter = crate::deploy::event::Emitter::new();
    let engine = Engine::new(&s.clients, &emitter, session::cancel_on_signals());
    let mut plans = Vec::new();
    for local in &locals {
        plans.push(engine.plan(local, &DeployFlags::default()).await?.plan);
    }
    let changed = plans.iter().any(|p| p.changed());
    match args.format {
        DiffFormat::Text => {
            for p in &plans {
                printer.out(&p.text(printer.color()));
            }
        }
        DiffFormat::Markdown => {
            printer.out(&ServicePlan::release_markdown(&plans).join("\n\n"));
        }
        DiffFormat::Json => printer.out_json(&json!({
            "changed": changed,
            "services": plans.iter().map(|p| p.json()).collect::<Vec<_>>(),
        })),
    }
    if args.comment {
        let api = crate::github::GitHubApi::from_env(None)?;
        let sections: Vec<String> = ServicePlan::release_markdown(&plans)
            .iter()
            .map(|s| printer.secrets().mask(s))
            .collect();
        let body = crate::github::comment_body("diff", "cortado: deploy plan", &sections);
        let action = crate::github::upsert_comment(&api, "diff", &body).await?;
        printer.info(&format!("pull request comment: {action:?}"));
    }
    if crate::report::github::is_actions() {
        // Step outputs are not masked by the runner's log masking: mask them here.
        let diff: String = plans
            .iter()
            .map(|p| printer.secrets().mask(&p.diff_text(false)))
            .collect();
        crate::report::github::write_outputs_from_env(&[
            ("changed", changed.to_string()),
            ("diff", diff),
        ])?;
    }
    Ok(if changed && args.exit_code {
        ExitCode::Changes
    } else {
        ExitCode::Success
    })
}
