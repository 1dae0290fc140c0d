//! `cortado revisions`: the family's ACTIVE revisions, newest first, the running one marked.

use serde_json::json;

use super::session;
use crate::deploy::controller::ecs::active_revisions;
use crate::error::{ExitCode, Result};
use crate::report::{Format, Printer};
use crate::settings::Settings;

/// `cortado revisions`: the family's ACTIVE revisions, the running one marked.
pub async fn run(settings: &Settings, printer: &mut Printer) -> Result<ExitCode> {
    let (locals, s) = session::open(settings, printer).await?;
    for local in &locals {
        let family = local.task.family().unwrap_or_default();
        let running = s
            .clients
            .describe_service(&local.config.cluster, local.service_name()?)
            .await?
            .and_then(|svc| svc.task_definition().map(str::to_string));
        let revs = active_revisions(&s.clients, family).await?;
        match printer.format {
            Format::Json => printer.out_json(&json!({
                "family": family,
                "revisions": revs.iter().map(|(n, a)| json!({
                    "revision": n, "arn": a, "running": Some(a) == running.as_ref(),
                })).collect::<Vec<_>>(),
            })),
            Format::Text => {
                let mut out = format!("{family}: {} ACTIVE revision(s)\n", revs.len());
                for (n, a) in &revs {
                    let mark = if Some(a) == running.as_ref() {
                        "  <- running"
                    } else {
                        ""
                    };
                    out.push_str(&format!("  {n:>5}  {a}{mark}\n"));
                }
                printer.out(&out);
            }
        }
    }
    Ok(ExitCode::Success)
}
