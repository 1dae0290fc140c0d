//! `cortado revisions`: the family's ACTIVE revisions, newest first, the running one marked.

use serde_json::json;

use super::session;
use crate::aws::Clients;
use crate::aws::types::ecs::TaskDefinitionStatus;
use crate::error::{ExitCode, Result};
use crate::report::{Format, Printer};
use crate::settings::Settings;

/// The ACTIVE revisions of a family, newest first, with their numbers.
pub async fn revisions_of(clients: &Clients, family: &str) -> Result<Vec<(u64, String)>> {
    let arns = clients
        .list_task_definitions(family, TaskDefinitionStatus::Active)
        .await?;
    let mut revs: Vec<(u64, String)> = arns
        .into_iter()
        .filter_map(|a| Some((a.rsplit(':').next()?.parse().ok()?, a)))
        .collect();
    revs.sort_by_key(|r| std::cmp::Reverse(r.0));
    Ok(revs)
}

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
        let revs = revisions_of(&s.clients, family).await?;
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
