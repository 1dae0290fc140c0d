//! `cortado deregister --revision N | --keep-last N`: deregisters revisions, never the one
//! the service runs (`--dry-run`: names them and changes nothing). ecspresso's `--keeps` is
//! `--keep-last`; its `--force` is accepted (cortado never asks before deregistering).

use super::session;
use crate::aws::TaskFilter;
use crate::aws::types::ecs::DesiredStatus;
use crate::error::{Error, ExitCode, Result};
use crate::report::Printer;
use crate::settings::Settings;

#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("which").required(true).args(["revision", "keep_last"])))]
pub struct DeregisterArgs {
    /// Deregister this revision.
    #[arg(long, value_name = "N")]
    pub revision: Option<i32>,
    /// Keep the newest N revisions (and the running one); deregister the rest.
    #[arg(long, visible_alias = "keeps", value_name = "N")]
    pub keep_last: Option<usize>,
    /// Name what would be deregistered; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Accepted for ecspresso's `deregister --force`: cortado never asks first.
    #[arg(long)]
    pub force: bool,
    /// Also delete the revisions deregistered (DeleteTaskDefinitions: ECS removes them once
    /// no task or deployment uses them).
    #[arg(long)]
    pub delete: bool,
}

/// `cortado deregister --revision N | --keep-last N`: never the running revision.
pub async fn run(
    settings: &Settings,
    printer: &mut Printer,
    args: &DeregisterArgs,
) -> Result<ExitCode> {
    let (locals, s) = session::open(settings, printer).await?;
    for local in &locals {
        let family = local.task.family().unwrap_or_default().to_string();
        // What must stay: the revision the service runs or, for a config without `service:`
        // (one-off tasks), the revisions of the family's tasks still running in the cluster
        // (as ecspresso keeps revisions in use by tasks).
        let in_use: Vec<String> = match local.service_opt() {
            Some(service) => s
                .clients
                .describe_service(&local.config.cluster, service)
                .await?
                .and_then(|svc| svc.task_definition().map(str::to_string))
                .into_iter()
                .collect(),
            None => {
                let arns = s
                    .clients
                    .list_tasks(
                        &local.config.cluster,
                        &TaskFilter::Family(family.clone()),
                        DesiredStatus::Running,
                    )
                    .await?;
                let mut tds: Vec<String> = s
                    .clients
                    .describe_tasks(&local.config.cluster, &arns)
                    .await?
                    .iter()
                    .filter(|t| t.last_status() != Some("STOPPED"))
                    .filter_map(|t| t.task_definition_arn().map(str::to_string))
                    .collect();
                tds.sort();
                tds.dedup();
                tds
            }
        };
        let why_kept = if local.service_opt().is_some() {
            "the service runs it"
        } else {
            "a task of it runs in the cluster"
        };
        let revs = crate::deploy::controller::ecs::active_revisions(&s.clients, &family).await?;
        let doomed: Vec<&(u64, String)> = match (args.revision, args.keep_last) {
            (Some(n), _) => {
                let Some(r) = revs.iter().find(|(rev, _)| *rev == n as u64) else {
                    return Err(
                        Error::conflict(format!("{family}:{n} is not an ACTIVE revision"))
                            .with_hint("`cortado revisions` lists the ACTIVE ones"),
                    );
                };
                vec![r]
            }
            (None, Some(keep)) => revs.iter().skip(keep).collect(),
            (None, None) => Vec::new(),
        };
        let mut gone = Vec::new();
        for (n, arn) in doomed {
            if in_use.contains(arn) {
                if args.revision.is_some() {
                    return Err(
                        Error::conflict(format!("{family}:{n} is in use: {why_kept}")).with_hint(
                            if local.service_opt().is_some() {
                                "deploy or roll back to another revision first"
                            } else {
                                "wait for its tasks to stop, or stop them first"
                            },
                        ),
                    );
                }
                printer.info(&format!("keeping {family}:{n}: {why_kept}"));
                continue;
            }
            if args.dry_run {
                let and = if args.delete { " and delete" } else { "" };
                printer.out(&format!("would deregister{and} {arn}"));
                continue;
            }
            s.clients.deregister_task_definition(arn).await?;
            printer.out(&format!("deregistered {arn}"));
            gone.push(arn.clone());
        }
        if args.delete && !gone.is_empty() {
            let (deleted, refused) = s.clients.delete_task_definitions(&gone).await?;
            for arn in &deleted {
                printer.out(&format!("deleted {arn} (DELETE_IN_PROGRESS)"));
            }
            if let Some((arn, why)) = refused.first() {
                return Err(Error::aws(format!("ECS did not delete {arn}: {why}")));
            }
        }
    }
    Ok(ExitCode::Success)
}
