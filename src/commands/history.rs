//! `cortado history`: delivery metrics of each config's service from ECS's own record of its
//! deployments (ListServiceDeployments, all pages; DescribeServiceRevisions for the task
//! definitions of the newest ones). Read-only. The metrics are defined in [`crate::history`].

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::session;
use crate::aws::types::ecs::ServiceDeploymentBrief;
use crate::deploy::controller::seam::service_not_found;
use crate::error::{Diagnostic, Error, ExitCode, Result};
use crate::history::{Metrics, Record, Report, ServiceHistory, Window};
use crate::report::{Format, Printer};
use crate::settings::Settings;

/// Options of `cortado history`.
#[derive(Debug, Clone, clap::Args)]
pub struct HistoryArgs {
    /// How far back: a Go-style duration (`30d` is accepted too: days).
    #[arg(long, default_value = "30d", value_parser = parse_since)]
    pub since: Duration,
    /// How many of each service's newest deployments to list.
    #[arg(long, default_value_t = 5)]
    pub last: usize,
    /// Print Markdown (a table and a Mermaid chart) for a job summary or an issue.
    #[arg(long)]
    pub markdown: bool,
}

/// `--since`: `30d` (days), or a Go-style duration (`12h`, `90m`).
fn parse_since(s: &str) -> std::result::Result<Duration, String> {
    if let Some(days) = s.strip_suffix('d') {
        return match days.trim().parse::<u64>() {
            Ok(n) if n > 0 => Ok(Duration::from_secs(n * 86_400)),
            _ => Err(format!(
                "expected a whole number of days such as 30d, got {s:?}"
            )),
        };
    }
    match crate::config::parse_duration(s) {
        Ok(d) if !d.is_zero() => Ok(d),
        Ok(_) => Err("the window must be longer than 0".into()),
        Err(e) => Err(e),
    }
}

pub async fn run(
    settings: &Settings,
    printer: &mut Printer,
    opts: &HistoryArgs,
) -> Result<ExitCode> {
    let (locals, s) = session::open(settings, printer).await?;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_err(|e| Error::internal(format!("the clock is before 1970: {e}")))?
        .as_secs_f64();
    let window = Window {
        from: now - opts.since.as_secs_f64(),
        to: now,
    };
    let after = crate::aws::types::DateTime::from_secs(window.from as i64);
    let mut services = Vec::new();
    for local in &locals {
        let service = local.service_name()?;
        let cluster = &local.config.cluster;
        let Some(svc) = s.clients.describe_service(cluster, service).await? else {
            return Err(service_not_found(service, cluster, s.clients.region()));
        };
        if svc
            .deployment_controller()
            .is_some_and(|c| c.r#type().as_str() == "CODE_DEPLOY")
        {
            return Err(Error::input(
                Diagnostic::error(format!(
                    "{service} is deployed by CodeDeploy: its history is in CodeDeploy, which `cortado history` does not read yet"
                ))
                .hint("leave this config out of the run, or see the deployment group's history in the CodeDeploy console"),
            ));
        }
        let briefs = s
            .clients
            .list_service_deployments(cluster, service, Some(after))
            .await?;
        let mut records: Vec<Record> = briefs.iter().map(record).collect();
        records.sort_by(|a, b| b.created.total_cmp(&a.created));
        // The task definitions of the newest deployments (the ones listed).
        let revision_of = |sd: &str| {
            briefs
                .iter()
                .find(|b| b.service_deployment_arn() == Some(sd))
                .and_then(|b| b.target_service_revision_arn())
                .map(str::to_string)
        };
        let wanted: Vec<String> = records
            .iter()
            .take(opts.last)
            .filter_map(|r| revision_of(&r.arn))
            .collect();
        if !wanted.is_empty() {
            let tds = s.clients.revision_task_definitions(&wanted).await?;
            for r in records.iter_mut().take(opts.last) {
                let arn = revision_of(&r.arn);
                r.revision = tds
                    .iter()
                    .find(|(a, _)| Some(a) == arn.as_ref())
                    .map(|(_, td)| td.clone());
            }
        }
        services.push(ServiceHistory {
            service: service.to_string(),
            cluster: cluster.clone(),
            records,
            metrics: Metrics::default(),
        });
    }
    // ECS's clock and ours differ a little (and a sandbox's runs fast): the window ends at
    // the newest deployment when that is later than now.
    let newest = services
        .iter()
        .flat_map(|s| s.records.iter().map(|r| r.created))
        .fold(window.to, f64::max);
    let window = Window {
        to: newest,
        ..window
    };
    for s in &mut services {
        s.metrics = Metrics::of(&s.records, window);
    }
    let report = Report::new(window, services, opts.last);
    match printer.format {
        Format::Json => printer.out_json(&report.json()),
        Format::Text if opts.markdown => printer.out(&report.markdown()),
        Format::Text => printer.out(&report.text()),
    }
    Ok(ExitCode::Success)
}

fn secs(t: Option<&crate::aws::types::DateTime>) -> Option<f64> {
    t.map(|t| t.as_secs_f64())
}

fn record(b: &ServiceDeploymentBrief) -> Record {
    let created = secs(b.created_at()).or(secs(b.started_at())).unwrap_or(0.0);
    Record {
        arn: b.service_deployment_arn().unwrap_or_default().to_string(),
        created,
        started: secs(b.started_at()),
        finished: secs(b.finished_at()),
        status: b
            .status()
            .map(|s| s.as_str().to_string())
            .unwrap_or_default(),
        reason: b.status_reason().map(str::to_string),
        revision: None,
    }
}
