//! `cortado register`: registers the rendered task definition (`--dry-run`: prints what would
//! be registered and calls nothing).

use serde_json::json;

use super::session;
use crate::error::{ExitCode, Result};
use crate::report::{Format, Printer};
use crate::settings::Settings;

/// Flags of `cortado register`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct RegisterArgs {
    /// Print the task definition that would be registered; register nothing.
    #[arg(long)]
    pub dry_run: bool,
}

/// `cortado register`: registers the rendered task definition.
pub async fn run(
    settings: &Settings,
    printer: &mut Printer,
    args: &RegisterArgs,
) -> Result<ExitCode> {
    let (locals, s) = session::open_all(settings, printer).await?;
    if let Some(l) = locals.iter().find(|l| l.express.is_some()) {
        return Err(crate::error::Error::input(
            crate::error::Diagnostic::error(format!(
                "{} is an Express Mode service (express_definition): ECS registers its task definitions",
                l.config.path.display()
            ))
            .hint("deploy it: UpdateExpressGatewayService registers the new revision"),
        ));
    }
    for local in &locals {
        if args.dry_run {
            let family = local.task.family().unwrap_or_default();
            match printer.format {
                Format::Json => printer.out_json(&json!({
                    "dry_run": true, "family": family, "task_definition": local.task_json,
                })),
                Format::Text => {
                    printer.info(&format!(
                        "dry run: would register a new revision of {family}"
                    ));
                    printer.out_json(&local.task_json);
                }
            }
            continue;
        }
        let td = s
            .clients
            .register_task_definition(local.task.clone())
            .await?;
        let arn = td.task_definition_arn().unwrap_or_default();
        match printer.format {
            Format::Json => printer.out_json(&json!({"task_definition_arn": arn})),
            Format::Text => printer.out(&format!("registered {arn}")),
        }
    }
    Ok(ExitCode::Success)
}
