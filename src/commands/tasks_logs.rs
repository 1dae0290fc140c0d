//! `cortado tasks logs [-f]`: the CloudWatch Logs of the service's running tasks (each
//! container that logs with awslogs and a stream prefix), one line per event prefixed with
//! the task id and container; `-f` follows them (new tasks too) until SIGINT/SIGTERM, as
//! ecspresso's `tasks logs`. A config without `service:` reads its task definition family's
//! tasks. Log lines are the containers' own text: untrusted, escaped.

use std::collections::BTreeMap;
use std::time::Duration;

use super::session;
use crate::aws::types::ecs::DesiredStatus;
use crate::aws::{Clients, TaskFilter};
use crate::deploy::task::awslogs_of;
use crate::error::{ExitCode, Result};
use crate::report::Printer;
use crate::settings::Settings;
use crate::untrusted::Untrusted;

/// Flags of `cortado tasks logs`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct LogsArgs {
    /// Keep reading: new lines, and the logs of tasks that start, until interrupted.
    #[arg(short, long)]
    pub follow: bool,
    /// Only this container's logs.
    #[arg(long, value_name = "NAME")]
    pub container: Option<String>,
}

/// How often `-f` reads again.
const POLL: Duration = Duration::from_secs(2);

/// One stream being read: where, and the token to read on from.
struct Stream {
    label: String,
    group: String,
    name: String,
    token: Option<String>,
}

/// `cortado tasks logs`.
pub async fn run(settings: &Settings, printer: &mut Printer, args: &LogsArgs) -> Result<ExitCode> {
    let (locals, s) = session::open(settings, printer).await?;
    let cancel = session::cancel_on_signals();
    let mut streams: BTreeMap<String, Stream> = BTreeMap::new();
    loop {
        for local in &locals {
            // A config without `service:`: its task definition family's tasks (as `tasks`).
            let filter = match local.service_opt() {
                Some(service) => TaskFilter::Service(service.to_string()),
                None => TaskFilter::Family(local.task.family().unwrap_or_default().to_string()),
            };
            add_streams(
                &s.clients,
                &local.config.cluster,
                &filter,
                args,
                &mut streams,
                printer,
            )
            .await?;
        }
        for st in streams.values_mut() {
            let page = s
                .clients
                .get_log_events(&st.group, &st.name, st.token.as_deref())
                .await?;
            for (_, line) in &page.lines {
                printer.out(&format!("{} {}", st.label, Untrusted::from(line.as_str())));
            }
            st.token = page.next;
        }
        if !args.follow || *cancel.borrow() {
            return Ok(ExitCode::Success);
        }
        tokio::time::sleep(POLL).await;
        if *cancel.borrow() {
            return Ok(ExitCode::Success);
        }
    }
}

/// Adds the streams of the running tasks `filter` names not read yet.
async fn add_streams(
    clients: &Clients,
    cluster: &str,
    filter: &TaskFilter,
    args: &LogsArgs,
    streams: &mut BTreeMap<String, Stream>,
    printer: &Printer,
) -> Result<()> {
    let arns = clients
        .list_tasks(cluster, filter, DesiredStatus::Running)
        .await?;
    let tasks = clients.describe_tasks(cluster, &arns).await?;
    let mut definitions = BTreeMap::new();
    for t in &tasks {
        let (Some(arn), Some(td)) = (t.task_arn(), t.task_definition_arn()) else {
            continue;
        };
        let id = arn.rsplit('/').next().unwrap_or(arn).to_string();
        if streams.keys().any(|k| k.starts_with(&format!("{id}/"))) {
            continue;
        }
        if !definitions.contains_key(td) {
            let (def, _) = clients.describe_task_definition(td).await?;
            definitions.insert(td.to_string(), def);
        }
        for c in definitions[td].container_definitions() {
            let name = c.name().unwrap_or_default();
            if args.container.as_deref().is_some_and(|w| w != name) {
                continue;
            }
            match awslogs_of(c, clients.region()) {
                Ok((group, prefix)) => {
                    streams.insert(
                        format!("{id}/{name}"),
                        Stream {
                            label: format!("{id} {name} |"),
                            name: format!("{prefix}/{name}/{id}"),
                            group,
                            token: None,
                        },
                    );
                }
                Err(why) => printer.info(&format!("{id} {name}: no logs to read: {why}")),
            }
        }
    }
    Ok(())
}
