//! `cortado revisions`: the family's ACTIVE revisions, newest first, the running one marked
//! (text, JSON or ecspresso's TSV); `--revision N|current|latest` prints that revision's task
//! definition as JSON (as DescribeTaskDefinition returns it), as ecspresso does.

use serde_json::json;

use super::session;
use crate::deploy::controller::ecs::active_revisions;
use crate::deploy::core::verdict::short_arn;
use crate::error::{Diagnostic, Error, ExitCode, Result};
use crate::report::{Format, Printer};
use crate::settings::Settings;

/// Flags of `cortado revisions`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct RevisionsArgs {
    /// Print this revision's task definition as JSON: a number, `current` (running) or
    /// `latest` (newest ACTIVE).
    #[arg(long, value_name = "N|current|latest", value_parser = parse_revision)]
    pub revision: Option<Which>,
}

/// Which revision `--revision` names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Which {
    Number(u64),
    Current,
    Latest,
}

fn parse_revision(s: &str) -> std::result::Result<Which, String> {
    match s {
        "current" => Ok(Which::Current),
        "latest" => Ok(Which::Latest),
        n => match n.parse::<u64>() {
            Ok(n) if n > 0 => Ok(Which::Number(n)),
            _ => Err(format!(
                "{s:?}: expected a revision number (1 or more), `current` or `latest`"
            )),
        },
    }
}

/// `cortado revisions`.
pub async fn run(
    settings: &Settings,
    printer: &mut Printer,
    args: &RevisionsArgs,
) -> Result<ExitCode> {
    let (locals, s) = session::open(settings, printer).await?;
    for local in &locals {
        let family = local.task.family().unwrap_or_default();
        // A config without `service:` (one-off tasks) has no running revision to mark.
        let running = match local.service_opt() {
            Some(service) => s
                .clients
                .describe_service(&local.config.cluster, service)
                .await?
                .and_then(|svc| svc.task_definition().map(str::to_string)),
            None => None,
        };
        let revs = active_revisions(&s.clients, family).await?;
        if let Some(which) = args.revision {
            let arn = match which {
                Which::Number(n) => format!("{family}:{n}"),
                Which::Current => running.clone().ok_or_else(|| {
                    Error::input(Diagnostic::error(match local.service_opt() {
                        Some(service) => format!(
                            "--revision current: service {service} does not exist in cluster {}",
                            local.config.cluster
                        ),
                        None => "--revision current names the revision the service runs, and the config has no `service:` key".to_string(),
                    }))
                })?,
                Which::Latest => revs.first().map(|(_, a)| a.clone()).ok_or_else(|| {
                    Error::input(Diagnostic::error(format!(
                        "--revision latest: family {family} has no ACTIVE revision"
                    )))
                })?,
            };
            let (td, _) = s.clients.describe_task_definition(&arn).await?;
            let v = crate::model::codec::encode(&td).map_err(Error::internal)?;
            printer.out_json(&v);
            continue;
        }
        print(printer, settings.tsv, family, &revs, running.as_deref());
    }
    Ok(ExitCode::Success)
}

fn print(
    printer: &Printer,
    tsv: bool,
    family: &str,
    revs: &[(u64, String)],
    running: Option<&str>,
) {
    let is_running = |a: &str| Some(a) == running;
    if printer.format == Format::Json {
        printer.out_json(&json!({
            "family": family,
            "revisions": revs.iter().map(|(n, a)| json!({
                "revision": n, "arn": a, "running": is_running(a),
            })).collect::<Vec<_>>(),
        }));
        return;
    }
    let mut out = if tsv {
        "Revision\tTaskDefinition\tRunning\n".to_string()
    } else {
        format!("{family}: {} ACTIVE revision(s)\n", revs.len())
    };
    for (n, a) in revs {
        if tsv {
            out.push_str(&format!("{n}\t{}\t{}\n", short_arn(a), is_running(a)));
        } else {
            let mark = if is_running(a) { "  <- running" } else { "" };
            out.push_str(&format!("  {n:>5}  {a}{mark}\n"));
        }
    }
    printer.out(&out);
}
