//! `cortado delete`: deletes each service of the run (DeleteService), as ecspresso's `delete`:
//! `--dry-run` shows what would go and calls nothing that writes; without `--force` it asks
//! for the service's name on a terminal (and refuses where there is none); `--terminate`
//! also deletes a service that runs tasks (ECS stops them). Task definitions stay.

use std::io::{BufRead, IsTerminal, Write};

use serde_json::json;

use super::session;
use crate::error::{Diagnostic, Error, ExitCode, Result};
use crate::report::{Format, Printer};
use crate::settings::Settings;

/// Flags of `cortado delete`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct DeleteArgs {
    /// Show what would be deleted; delete nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Delete without asking for the service's name.
    #[arg(long)]
    pub force: bool,
    /// Also when the service runs tasks: ECS scales it to 0 and stops them (DeleteService
    /// `force`).
    #[arg(long)]
    pub terminate: bool,
}

/// `cortado delete`.
pub async fn run(
    settings: &Settings,
    printer: &mut Printer,
    args: &DeleteArgs,
) -> Result<ExitCode> {
    let (locals, s) = session::open(settings, printer).await?;
    // Every service is found (and confirmed) before the first one is deleted.
    let mut targets = Vec::new();
    for local in &locals {
        let service = local.service_name()?.to_string();
        let cluster = local.config.cluster.clone();
        let Some(svc) = s.clients.describe_service(&cluster, &service).await? else {
            return Err(Error::conflict(format!(
                "service {service} does not exist in cluster {cluster}: nothing to delete"
            )));
        };
        if svc.status() != Some("ACTIVE") {
            return Err(Error::conflict(format!(
                "service {service} in cluster {cluster} is {} already",
                svc.status().unwrap_or("not active")
            )));
        }
        let (desired, running) = (svc.desired_count(), svc.running_count());
        let note = format!(
            "service {service} in cluster {cluster} (desired {desired}, running {running})"
        );
        if args.dry_run {
            report(printer, "would delete", &service, &cluster, &note);
            continue;
        }
        if !args.force {
            confirm(&service)?;
        }
        targets.push((service, cluster, note));
    }
    for (service, cluster, note) in &targets {
        s.clients
            .delete_service(cluster, service, args.terminate)
            .await?;
        report(printer, "deleted", service, cluster, note);
    }
    Ok(ExitCode::Success)
}

fn report(printer: &Printer, what: &str, service: &str, cluster: &str, note: &str) {
    match printer.format {
        Format::Json => printer.out_json(&json!({
            "service": service, "cluster": cluster, "action": what,
        })),
        Format::Text => printer.info(&format!("{what} {note}")),
    }
}

/// Asks for the service's name on the terminal, as ecspresso does.
fn confirm(service: &str) -> Result<()> {
    if !std::io::stdin().is_terminal() {
        return Err(Error::input(
            Diagnostic::error(format!(
                "cortado delete asks for the service's name ({service}) to confirm, and there is no terminal to ask on"
            ))
            .hint("add --force to delete without asking (--dry-run first shows what would go)"),
        ));
    }
    eprint!("Enter the service name to DELETE ({service}): ");
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| Error::bad_input(format!("cannot read the confirmation: {e}")))?;
    if line.trim() != service {
        return Err(Error::bad_input(format!(
            "confirmation failed: {:?} is not {service}; nothing was deleted",
            line.trim()
        )));
    }
    Ok(())
}
