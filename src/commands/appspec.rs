//! `cortado appspec`: the AppSpec a CodeDeploy deployment of the service sends, as YAML (or
//! JSON with `--output json`). Read-only: it looks up the task definition to name and, when
//! the config has no service definition (or `--no-update-service`), the live service.

use serde_json::json;

use super::session;
use crate::deploy::controller::codedeploy::appspec as codedeploy;
use crate::deploy::controller::ecs::active_revisions;
use crate::error::{Error, ExitCode, Result};
use crate::report::{Format, Printer};
use crate::settings::Settings;

/// `cortado appspec [--task-definition latest|current|ARN]`.
/// Flags of `cortado appspec`.
#[derive(Debug, Clone, clap::Args)]
pub struct AppspecArgs {
    /// The task definition it names: `latest` (the family's newest ACTIVE revision),
    /// `current` (the one the service runs) or an ARN.
    #[arg(long, value_name = "WHICH", default_value = "latest")]
    pub task_definition: String,
    /// Build it from the config's service definition (the default, ecspresso's).
    #[arg(long, conflicts_with = "no_update_service")]
    pub update_service: bool,
    /// Build it from the live service instead of the config's service definition.
    #[arg(long)]
    pub no_update_service: bool,
}

pub async fn run(
    settings: &Settings,
    printer: &mut Printer,
    args: &AppspecArgs,
) -> Result<ExitCode> {
    let which = args.task_definition.as_str();
    let (locals, s) = session::open(settings, printer).await?;
    for local in &locals {
        let hooks = codedeploy::configured_hooks(&local.config)?;
        let service = local.service_name()?;
        let live = s
            .clients
            .describe_service(&local.config.cluster, service)
            .await?;
        let family = local.task.family().unwrap_or_default();
        let td = match which {
            "current" => live
                .as_ref()
                .and_then(|l| l.task_definition())
                .map(str::to_string)
                .ok_or_else(|| {
                    Error::conflict(format!(
                        "--task-definition current: service {service} does not exist"
                    ))
                })?,
            "latest" => active_revisions(&s.clients, family)
                .await?
                .into_iter()
                .next()
                .map(|(_, a)| a)
                .ok_or_else(|| {
                    Error::conflict(format!("family {family} has no ACTIVE revision"))
                        .with_hint("register one first (cortado register)")
                })?,
            arn => arn.to_string(),
        };
        let live_json = match &live {
            Some(l) => Some(crate::aws::json::service_definition_json(l)?),
            None => None,
        };
        // ecspresso's --update-service (on by default): the file's definition, else the live
        // service; --no-update-service: the live service only.
        let file = local
            .service_json
            .as_ref()
            .filter(|_| !args.no_update_service);
        let Some(svc) = file.or(live_json.as_ref()) else {
            return Err(Error::bad_input(if args.no_update_service {
                format!(
                    "{service}: --no-update-service builds the AppSpec from the live service, and it does not exist"
                )
            } else {
                format!(
                    "{service}: no service definition in the config and no live service to build the AppSpec from"
                )
            }));
        };
        let spec = codedeploy::appspec(svc, &td, &hooks)?;
        match printer.format {
            Format::Json => printer.out_json(&json!({"service": service, "appspec": spec})),
            Format::Text => printer.out(&codedeploy::appspec_yaml(&spec)?),
        }
    }
    Ok(ExitCode::Success)
}
