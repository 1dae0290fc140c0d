//! `cortado register`: registers the rendered task definition.

use serde_json::json;

use super::session;
use crate::error::{ExitCode, Result};
use crate::report::{Format, Printer};
use crate::settings::Settings;

/// `cortado register`: registers the rendered task definition.
pub async fn run(settings: &Settings, printer: &mut Printer) -> Result<ExitCode> {
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
