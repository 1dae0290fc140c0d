//! `cortado run`: a one-off task (a migration, a script), placed like the service (network
//! configuration, launch type or capacity provider strategy, platform version), followed to
//! STOPPED with its CloudWatch Logs streamed, and the essential container's exit code as
//! cortado's own.
//!
//! Which task definition, as ecspresso's `run` chooses it ([`TaskPick`]): by default the
//! config's rendered one (or `--task-def FILE`), registered unless the family's newest ACTIVE
//! revision is identical, so `IMAGE_TAG=$SHA cortado run` runs the new image;
//! `--skip-task-definition` the revision the service runs now; `--latest-task-definition` the
//! family's newest revision; `--revision N` that revision.
//!
//! Receives the run's settings and flags. Everything local (flags, config, the task
//! definition file, the container named) is checked before the first AWS call; the only
//! writes are the registration of a changed revision, RunTask, and StopTask on a timeout or a
//! signal. Hands on an exit code: the container's (0..=255), 3 when the task never ran its
//! command, 6 on timeout, 130 on cancel, 0 after `--no-wait`.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::session;
use crate::aws::types::ecs::{
    CapacityProviderStrategyItem, ContainerDefinition, LaunchType, LogDriver, NetworkConfiguration,
    Task, TaskDefinition, TaskOverride,
};
use crate::aws::{Clients, OneOffTask};
use crate::cli::RunArgs;
use crate::deploy::controller::ecs::registration_choice;
use crate::deploy::controller::seam::TaskChoice;
use crate::deploy::core::outcome::RunOutcome;
use crate::deploy::local::Local;
use crate::deploy::result::{Operation, ServiceResult};
use crate::error::{Diagnostic, Error, ErrorKind, Result};
use crate::model::codec;
use crate::report::{Format, Printer};
use crate::settings::Settings;
use crate::untrusted::Untrusted;

/// The exit code of a task that never ran its command (failed to start, no exit code).
pub const FAILED_TO_START: u8 = 3;
/// `startedBy` of the tasks cortado starts (ECS keeps it on the task; ListTasks filters by it).
pub const STARTED_BY: &str = "cortado-run";
/// Time between two polls of the task (and its log stream).
const POLL: Duration = Duration::from_secs(1);

/// The command-line input of a run, checked before anything else happens.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunInput {
    pub container: Option<String>,
    pub command: Option<Vec<String>>,
    pub env: Vec<(String, String)>,
    /// `--overrides`: a TaskOverride as JSON (ECS's camelCase), already checked.
    pub overrides: Option<Value>,
}

fn bad(message: impl Into<String>, hint: &str) -> Error {
    Error::input(Diagnostic::error(message).hint(hint))
}

/// Checks `--command`, `--env`, `--overrides` and `--container`. No I/O.
pub fn parse_input(args: &RunArgs) -> Result<RunInput> {
    let command = match &args.command {
        None => None,
        Some(c) => match shlex::split(c) {
            Some(words) if !words.is_empty() => Some(words),
            Some(_) => {
                return Err(bad(
                    "--command is empty",
                    "give the command to run, e.g. --command 'sh -c \"./migrate up\"'",
                ));
            }
            None => {
                return Err(bad(
                    format!("--command {c:?} cannot be split into words: a quote is not closed"),
                    "quote as in a POSIX shell: --command 'sh -c \"echo hi\"'",
                ));
            }
        },
    };
    let mut env = Vec::new();
    for e in &args.env {
        match e.split_once('=') {
            Some((k, v)) if !k.trim().is_empty() && k.trim() == k => {
                env.push((k.to_string(), v.to_string()));
            }
            _ => {
                return Err(bad(
                    format!("--env {e:?} is not KEY=VALUE"),
                    "write --env NAME=value (the value may be empty: --env NAME=)",
                ));
            }
        }
    }
    let overrides = match &args.overrides {
        None => None,
        Some(text) => {
            let v: Value = serde_json::from_str(text).map_err(|e| {
                bad(
                    format!("--overrides is not valid JSON: {e}"),
                    "give a TaskOverride object, e.g. --overrides '{\"containerOverrides\":[{\"name\":\"app\",\"command\":[\"./migrate\"]}]}'",
                )
            })?;
            if !v.is_object() {
                return Err(bad(
                    "--overrides must be a JSON object (ECS's TaskOverride)",
                    "e.g. --overrides '{\"cpu\":\"512\",\"containerOverrides\":[{\"name\":\"app\",\"environment\":[{\"name\":\"X\",\"value\":\"1\"}]}]}'",
                ));
            }
            decode_overrides(&v, "--overrides")?;
            Some(v)
        }
    };
    if let Some(n) = args.revision
        && n < 1
    {
        return Err(bad(
            format!("--revision {n}: revisions start at 1"),
            "give a revision of the family (`cortado revisions` lists them)",
        ));
    }
    if let Some(c) = &args.container
        && c.trim().is_empty()
    {
        return Err(bad(
            "--container is empty",
            "name a container of the task definition",
        ));
    }
    Ok(RunInput {
        container: args.container.clone(),
        command,
        env,
        overrides,
    })
}

/// Decodes a TaskOverride; unknown keys and wrong types are bad input.
fn decode_overrides(v: &Value, what: &str) -> Result<TaskOverride> {
    let decoded = codec::decode(v, TaskOverride::deserialize);
    let mut diags = Vec::new();
    for f in &decoded.findings {
        diags.push(match f {
            codec::Finding::UnknownKey {
                pointer,
                key,
                known,
            } => {
                let mut d = Diagnostic::error(format!(
                    "{what}: unknown key {key:?} at {}",
                    if pointer.is_empty() { "/" } else { pointer }
                ));
                d.hint = Some(
                    match crate::error::did_you_mean(key, known.iter().map(String::as_str)) {
                        Some(s) => format!("did you mean {s:?}?"),
                        None => format!("known keys: {}", known.join(", ")),
                    },
                );
                d
            }
            codec::Finding::WrongType {
                pointer, expected, ..
            } => Diagnostic::error(format!("{what}: {pointer} must be {expected}"))
                .hint("see ECS's RunTask `overrides` (TaskOverride) for the shape"),
            codec::Finding::Dropped { pointer } => {
                Diagnostic::error(format!("{what}: {pointer} could not be read"))
            }
            codec::Finding::Failed { pointer, message } => {
                Diagnostic::error(format!("{what}: cannot read {pointer}: {message}"))
            }
        });
    }
    match decoded.value {
        Some(o) if diags.is_empty() => Ok(o),
        _ => {
            if diags.is_empty() {
                diags.push(Diagnostic::error(format!("{what}: not a TaskOverride")));
            }
            Err(Error::findings(diags))
        }
    }
}

/// `--overrides` with `--command` and `--env` merged into `container`'s entry (the flags
/// win over the JSON for the same member; `--env` replaces a variable of the same name).
pub fn merge_overrides(input: &RunInput, container: &str) -> Value {
    let mut o = input.overrides.clone().unwrap_or_else(|| json!({}));
    if input.command.is_none() && input.env.is_empty() {
        return o;
    }
    if !o.get("containerOverrides").is_some_and(Value::is_array) {
        o["containerOverrides"] = json!([]);
    }
    let list = o["containerOverrides"]
        .as_array_mut()
        .expect("containerOverrides was just made an array");
    let pos = match list.iter().position(|c| c["name"] == container) {
        Some(p) => p,
        None => {
            list.push(json!({"name": container}));
            list.len() - 1
        }
    };
    let entry = &mut list[pos];
    if let Some(cmd) = &input.command {
        entry["command"] = json!(cmd);
    }
    if !input.env.is_empty() {
        let mut vars: Vec<Value> = entry
            .get("environment")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        for (k, v) in &input.env {
            vars.retain(|e| e["name"] != k.as_str());
            vars.push(json!({"name": k, "value": v}));
        }
        entry["environment"] = json!(vars);
    }
    o
}

/// The container the command, the environment and the logs are about: `--container`, else
/// the first essential one.
pub fn target_container<'a>(
    containers: &'a [ContainerDefinition],
    flag: Option<&str>,
) -> Result<&'a ContainerDefinition> {
    let names = || {
        containers
            .iter()
            .filter_map(|c| c.name())
            .collect::<Vec<_>>()
            .join(", ")
    };
    match flag {
        Some(n) => containers
            .iter()
            .find(|c| c.name() == Some(n))
            .ok_or_else(|| {
                bad(
                    format!("--container {n}: the task definition has no such container"),
                    &format!("its containers: {}", names()),
                )
            }),
        None => containers
            .iter()
            .find(|c| c.essential().unwrap_or(true))
            .or_else(|| containers.first())
            .ok_or_else(|| {
                bad(
                    "the task definition has no container",
                    "add containerDefinitions",
                )
            }),
    }
}

/// Where the awslogs driver ships a container's output: (group, stream prefix). Lines sent to
/// another region than the one cortado reads (`region`) are not available.
pub fn awslogs_of(
    c: &ContainerDefinition,
    region: &str,
) -> std::result::Result<(String, String), String> {
    let Some(lc) = c.log_configuration() else {
        return Err("the container has no logConfiguration".into());
    };
    if lc.log_driver() != &LogDriver::Awslogs {
        return Err(format!(
            "the container logs with the {} driver, not awslogs",
            lc.log_driver().as_str()
        ));
    }
    let opt = |k: &str| lc.options().and_then(|o| o.get(k)).cloned();
    if let Some(r) = opt("awslogs-region").filter(|r| r != region) {
        return Err(format!(
            "its awslogs-region is {r}, and cortado reads region {region}"
        ));
    }
    match (opt("awslogs-group"), opt("awslogs-stream-prefix")) {
        (Some(g), Some(p)) => Ok((g, p)),
        (None, _) => Err("its awslogs options name no awslogs-group".into()),
        (_, None) => Err(
            "its awslogs options have no awslogs-stream-prefix, so the stream name is not known"
                .into(),
        ),
    }
}

/// Placement of the task: the live service's, else its definition file's.
struct Placement {
    launch_type: Option<LaunchType>,
    strategy: Vec<CapacityProviderStrategyItem>,
    platform_version: Option<String>,
    network: Option<NetworkConfiguration>,
}

/// Where the task runs: the live service's placement, else its definition file's.
fn placement_of(
    live: Option<&crate::aws::types::ecs::Service>,
    local: &Local,
) -> Result<Placement> {
    Ok(match live {
        Some(svc) => Placement {
            launch_type: svc.launch_type().cloned(),
            strategy: svc.capacity_provider_strategy().to_vec(),
            platform_version: svc.platform_version().map(str::to_string),
            network: svc.network_configuration().cloned(),
        },
        None => match &local.service {
            Some(def) => Placement {
                launch_type: def.launch_type().cloned(),
                strategy: def.capacity_provider_strategy().to_vec(),
                platform_version: def.platform_version().map(str::to_string),
                network: def.network_configuration().cloned(),
            },
            None => {
                return Err(bad(
                    format!(
                        "service {} does not exist in cluster {} and the config has no service_definition",
                        local.config.service.as_deref().unwrap_or_default(),
                        local.config.cluster
                    ),
                    "the task's network configuration and launch type come from the service: deploy it first, or add `service_definition:`",
                ));
            }
        },
    })
}

/// How the run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Exited(i32),
    FailedToStart,
    TimedOut,
    Cancelled,
}

impl Outcome {
    fn word(self) -> &'static str {
        match self {
            Outcome::Exited(_) => "exited",
            Outcome::FailedToStart => "failed_to_start",
            Outcome::TimedOut => "timed_out",
            Outcome::Cancelled => "cancelled",
        }
    }

    fn exit(self) -> u8 {
        match self {
            Outcome::Exited(c) => u8::try_from(c.clamp(0, 255)).unwrap_or(255),
            Outcome::FailedToStart => FAILED_TO_START,
            Outcome::TimedOut => crate::error::ExitCode::TimedOut as u8,
            Outcome::Cancelled => crate::error::ExitCode::Cancelled as u8,
        }
    }
}

fn now_secs() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or_default()
}

/// Progress and log lines: JSON lines on stdout (`--output json`); on a terminal or in a log,
/// timestamped status lines on stderr and the container's lines as they are on stdout.
struct Report<'a> {
    printer: &'a Printer,
}

impl Report<'_> {
    fn json(&self) -> bool {
        self.printer.format == Format::Json
    }

    fn event(&self, kind: &str, fields: Value, text: &str) {
        if self.json() {
            let mut v = json!({"time": now_secs(), "event": kind});
            if let (Some(m), Value::Object(f)) = (v.as_object_mut(), fields) {
                m.extend(f);
            }
            self.printer.out_json_line(&v);
        } else {
            self.printer.info(&format!(
                "{} {text}",
                crate::report::lines::clock(now_secs())
            ));
        }
    }

    fn log(&self, container: &str, timestamp: i64, message: &str) {
        if self.json() {
            self.event(
                "log",
                json!({"container": container, "timestamp": timestamp, "message": message}),
                "",
            );
        } else {
            // The container's line as it came, on one line without control characters.
            self.printer.out(&Untrusted::from(message).to_string());
        }
    }
}

fn task_id(arn: &str) -> &str {
    arn.rsplit('/').next().unwrap_or(arn)
}

/// Loads the one config of the run with `--task-def FILE` (relative to the current folder)
/// in place of its task definition: rendered and validated like any task definition.
fn load_local(
    settings: &Settings,
    printer: &mut Printer,
    task_def: Option<&Path>,
) -> Result<Local> {
    let ctx = settings.render_context()?;
    printer.set_secrets(ctx.secrets.clone());
    let paths = settings.config_paths()?;
    let [path] = paths.as_slice() else {
        return Err(bad(
            format!("cortado run takes one config, got {}", paths.len()),
            "pass the config of the service whose task to run with --config PATH",
        ));
    };
    let mut config = crate::config::load(&ctx, path)?;
    if let Some(f) = task_def {
        // Read from the current folder, as given; a file that cannot be read is the flag's
        // error, not the config's task_definition line.
        crate::settings::flag_file("task-def", "task definition", f)?;
        config.task_definition = Some(f.to_path_buf());
    }
    let ctx = crate::render::plugins::with_plugins(&ctx, &config, &session::lookups(settings))?;
    let local = crate::deploy::local::load(&ctx, config)?;
    for w in &local.warnings {
        printer.diagnostic(w);
    }
    Ok(local)
}

/// `cortado run`.
pub async fn run(settings: &Settings, printer: &mut Printer, args: &RunArgs) -> Result<u8> {
    let input = parse_input(args)?;
    let local = load_local(settings, printer, args.task_def.as_deref())?;
    // A container named on the command line must exist in the file's definition before a
    // changed revision of it is registered.
    if args.task_def.is_some() {
        target_container(
            local.task.container_definitions(),
            input.container.as_deref(),
        )?;
    }
    let s = session::connect(settings, std::slice::from_ref(&local), printer).await?;
    let (pick, warning) = TaskPick::from_args(args);
    if let Some(w) = warning {
        printer.diagnostic(&Diagnostic::warning(w));
    }
    let opts = OneOffOptions {
        pick,
        no_wait: args.no_wait,
        deadline: Instant::now() + crate::deploy::local::timeout(settings.timeout, &local.config),
    };
    let end = one_off(
        &s.clients,
        printer,
        &local,
        &input,
        &opts,
        session::cancel_on_signals(),
    )
    .await?;
    if opts.no_wait {
        if printer.format == Format::Json {
            printer.out_json_line(&end.result);
        } else {
            printer.out(end.result["task_arn"].as_str().unwrap_or_default());
        }
        return Ok(end.exit);
    }
    if printer.format == Format::Json {
        printer.out_json_line(&end.result);
    } else {
        printer.info(&end.text);
        // Inside GitHub Actions a task that did not succeed is an error annotation too.
        if end.exit != 0 {
            use crate::report::github::{Annotation, Level};
            printer.annotate(&Annotation::new(Level::Error, end.text.clone()).title("cortado run"));
        }
    }
    Ok(end.exit)
}

/// Which task definition a one-off task runs (ecspresso's `taskDefinitionArnForRun`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskPick {
    /// The config's (or `--task-def`'s) rendered definition, registered unless the family's
    /// newest ACTIVE revision is identical (ecspresso registers every time).
    Register,
    /// `--skip-task-definition`: the revision the service runs now.
    Service,
    /// `--latest-task-definition`: the family's newest ACTIVE revision.
    Latest,
    /// `--revision N` of the family.
    Revision(i32),
}

impl TaskPick {
    /// The pick the flags ask for, in ecspresso's order (`--revision`, then
    /// `--latest-task-definition`, then `--skip-task-definition`), and a warning when two
    /// of them were given.
    pub fn from_args(args: &RunArgs) -> (TaskPick, Option<String>) {
        let pick = match (args.revision, args.latest_task_definition) {
            (Some(n), _) => TaskPick::Revision(n),
            (None, true) => TaskPick::Latest,
            (None, false) if args.skip_task_definition => TaskPick::Service,
            (None, false) => TaskPick::Register,
        };
        let given = [
            args.revision.map(|_| "--revision"),
            args.latest_task_definition
                .then_some("--latest-task-definition"),
            args.skip_task_definition
                .then_some("--skip-task-definition"),
        ];
        let given: Vec<&str> = given.into_iter().flatten().collect();
        let warning = (given.len() > 1).then(|| {
            format!(
                "{} pick the task definition each: {} wins, as in ecspresso",
                given.join(" and "),
                given[0]
            )
        });
        (pick, warning)
    }
}

/// How a one-off task is chosen and followed.
#[derive(Debug, Clone)]
pub struct OneOffOptions {
    pub pick: TaskPick,
    pub no_wait: bool,
    pub deadline: Instant,
}

/// Where the task definition of a run comes from.
enum Source {
    Existing(String),
    Register,
}

/// The task definition `pick` names. Read-only: a registration is decided here and made by
/// the caller once everything is checked.
async fn choose_task_definition(
    clients: &Clients,
    local: &Local,
    pick: TaskPick,
    live_td: Option<&str>,
) -> Result<Source> {
    let cluster = &local.config.cluster;
    let service = local.service_name()?;
    let config_family = local.task.family().unwrap_or_default();
    // ecspresso takes the family of the service's task definition when the service exists.
    let family = live_td
        .and_then(crate::aws::ecs::arn_family)
        .unwrap_or(config_family);
    // An Express Mode service's task definitions are ECS's: run the one the service runs.
    let pick = match pick {
        TaskPick::Revision(n) => TaskPick::Revision(n),
        _ if local.express.is_some() => TaskPick::Service,
        other => other,
    };
    match pick {
        TaskPick::Revision(n) => {
            let (td, _) = clients
                .describe_task_definition(&format!("{family}:{n}"))
                .await?;
            Ok(Source::Existing(
                td.task_definition_arn().unwrap_or_default().to_string(),
            ))
        }
        TaskPick::Service => live_td
            .map(|a| Source::Existing(a.to_string()))
            .ok_or_else(|| {
                bad(
                    format!(
                        "service {service} does not exist in cluster {cluster}, so it runs no task definition to reuse (--skip-task-definition)"
                    ),
                    if local.express.is_some() {
                        "deploy it first: ECS registers an Express Mode service's task definition"
                    } else {
                        "drop --skip-task-definition to run the config's task definition, or use --latest-task-definition"
                    },
                )
            }),
        TaskPick::Latest => {
            match crate::deploy::controller::ecs::active_revisions(clients, family)
                .await?
                .into_iter()
                .next()
            {
                Some((_, arn)) => Ok(Source::Existing(arn)),
                None => Err(bad(
                    format!("task definition family {family} has no ACTIVE revision"),
                    "drop --latest-task-definition to register and run the config's task definition",
                )),
            }
        }
        TaskPick::Register => {
            match registration_choice(clients, &local.task_json, config_family, None).await? {
                TaskChoice::Existing(a) => Ok(Source::Existing(a)),
                TaskChoice::Register => Ok(Source::Register),
            }
        }
    }
}

/// How a one-off task ended: cortado's exit code for it, a sentence, and the JSON `result`
/// line (`event: result`, `task_arn`, `outcome`, `exit_code`, ...).
#[derive(Debug, Clone)]
pub struct OneOffEnd {
    pub exit: u8,
    pub text: String,
    pub result: Value,
}

/// Starts a one-off task from `local` (placed like its service) and, unless `no_wait`,
/// follows it to STOPPED with its logs printed as they come. The writes: a changed
/// definition's registration, RunTask, and StopTask on the deadline or a cancel.
pub async fn one_off(
    clients: &Clients,
    printer: &Printer,
    local: &Local,
    input: &RunInput,
    opts: &OneOffOptions,
    mut cancel: tokio::sync::watch::Receiver<bool>,
) -> Result<OneOffEnd> {
    let report = Report { printer };
    let cluster = local.config.cluster.clone();
    let service = local.service_name()?.to_string();
    let live = clients.describe_service(&cluster, &service).await?;
    let live_td = live
        .as_ref()
        .and_then(|s| s.task_definition())
        .map(str::to_string);
    if live.is_none() {
        let note = format!(
            "service {service} does not exist in cluster {cluster}: the task is placed as the service definition file says"
        );
        report.event("note", json!({ "message": note }), &note);
    }
    let placement = placement_of(live.as_ref(), local)?;
    let source = choose_task_definition(clients, local, opts.pick, live_td.as_deref()).await?;
    let td: TaskDefinition = match &source {
        Source::Existing(arn) => clients.describe_task_definition(arn).await?.0,
        Source::Register => {
            // Registered below, after the container check on the local definition.
            target_container(
                local.task.container_definitions(),
                input.container.as_deref(),
            )?;
            let td = clients.register_task_definition(local.task.clone()).await?;
            report.event(
                "registered",
                json!({"task_definition_arn": td.task_definition_arn()}),
                &format!(
                    "registered task definition {}",
                    td.task_definition_arn().unwrap_or_default()
                ),
            );
            td
        }
    };
    let td_arn = td.task_definition_arn().unwrap_or_default().to_string();
    let container = target_container(td.container_definitions(), input.container.as_deref())?;
    let container_name = container.name().unwrap_or_default().to_string();
    let overrides_json = merge_overrides(input, &container_name);
    let overrides = decode_overrides(&overrides_json, "--overrides")?;
    let logs = awslogs_of(container, clients.region());
    let task = clients
        .run_task(&OneOffTask {
            cluster: cluster.clone(),
            task_definition: td_arn.clone(),
            launch_type: if placement.strategy.is_empty() {
                placement.launch_type
            } else {
                None
            },
            capacity_provider_strategy: placement.strategy,
            platform_version: placement.platform_version,
            network_configuration: placement.network,
            overrides: Some(overrides),
            started_by: Some(STARTED_BY.to_string()),
            group: None,
        })
        .await?;
    let task_arn = task.task_arn().unwrap_or_default().to_string();
    if opts.no_wait {
        return Ok(OneOffEnd {
            exit: 0,
            text: format!("started task {task_arn}"),
            result: json!({"time": now_secs(), "event": "result", "task_arn": task_arn, "task_definition_arn": td_arn, "outcome": "started", "exit_code": 0}),
        });
    }
    report.event(
        "task_started",
        json!({"task_arn": task_arn, "task_definition_arn": td_arn, "container": container_name}),
        &format!(
            "started task {} ({}), container {container_name}",
            task_id(&task_arn),
            crate::deploy::core::verdict::short_arn(&td_arn)
        ),
    );
    let stream = match &logs {
        Ok((group, prefix)) => {
            let stream = format!("{prefix}/{container_name}/{}", task_id(&task_arn));
            report.event(
                "logs",
                json!({"log_group": group, "log_stream": stream}),
                &format!("logs: {group} {stream}"),
            );
            Some((group.clone(), stream))
        }
        Err(why) => {
            report.event(
                "logs",
                json!({"log_group": null, "log_stream": null, "message": format!("logs are not available: {why}")}),
                &format!("logs are not available: {why}"),
            );
            None
        }
    };
    let deadline = opts.deadline;
    let mut token: Option<String> = None;
    let mut last_status = String::new();
    let mut final_task: Option<Task> = None;
    let outcome = loop {
        let now = clients
            .describe_tasks(&cluster, std::slice::from_ref(&task_arn))
            .await?;
        if let Some(t) = now.into_iter().next() {
            let st = t.last_status().unwrap_or_default().to_string();
            if st != last_status {
                report.event(
                    "task_status",
                    json!({"task_arn": task_arn, "last_status": st, "desired_status": t.desired_status()}),
                    &format!("task {}: {st}", task_id(&task_arn)),
                );
                last_status = st.clone();
            }
            final_task = Some(t);
        }
        if let Some((group, stream)) = &stream {
            token = read_logs(clients, &report, &container_name, group, stream, token).await?;
        }
        if last_status == "STOPPED" {
            // Lines shipped just before the stop: read on until nothing new comes.
            if let Some((group, stream)) = &stream {
                for _ in 0..3 {
                    let before = token.clone();
                    token =
                        read_logs(clients, &report, &container_name, group, stream, token).await?;
                    if token == before {
                        break;
                    }
                }
            }
            break exit_outcome(final_task.as_ref(), &container_name);
        }
        if Instant::now() >= deadline {
            break Outcome::TimedOut;
        }
        if *cancel.borrow() {
            break Outcome::Cancelled;
        }
        tokio::select! {
            _ = tokio::time::sleep(POLL.min(deadline.saturating_duration_since(Instant::now()))) => {}
            _ = cancel.changed() => {}
        }
    };
    if matches!(outcome, Outcome::TimedOut | Outcome::Cancelled) {
        let reason = match outcome {
            Outcome::TimedOut => "cortado run: timed out",
            _ => "cortado run: cancelled",
        };
        clients.stop_task(&cluster, &task_arn, reason).await?;
        report.event(
            "task_stop_requested",
            json!({"task_arn": task_arn, "reason": reason}),
            &format!("stopping task {}: {reason}", task_id(&task_arn)),
        );
    }
    let t = final_task.as_ref();
    let exit_code = t.and_then(|t| essential_exit(t, &container_name));
    let reason = t.map(stop_reason).unwrap_or_default();
    let text = match outcome {
        Outcome::Exited(c) => format!(
            "task {} stopped: container {} exited with code {c}",
            task_id(&task_arn),
            exit_code.map(|(n, _)| n).unwrap_or(container_name.as_str())
        ),
        Outcome::FailedToStart => {
            format!("task {} failed to start: {reason}", task_id(&task_arn))
        }
        Outcome::TimedOut => format!(
            "task {} did not stop before the deadline; StopTask requested",
            task_id(&task_arn)
        ),
        Outcome::Cancelled => format!("task {}: cancelled; StopTask requested", task_id(&task_arn)),
    };
    let result = json!({
        "task_arn": task_arn,
        "task_definition_arn": td_arn,
        "outcome": outcome.word(),
        "last_status": last_status,
        "stop_code": t.and_then(|t| t.stop_code()).map(|c| c.as_str().to_string()),
        "stopped_reason": t.and_then(|t| t.stopped_reason()),
        "container": exit_code.map_or_else(|| container_name.clone(), |(n, _)| n.to_string()),
        "container_exit_code": exit_code.map(|(_, c)| c),
        "exit_code": outcome.exit(),
    });
    let mut v = json!({"time": now_secs(), "event": "result"});
    if let (Some(m), Value::Object(r)) = (v.as_object_mut(), result) {
        m.extend(r);
    }
    Ok(OneOffEnd {
        exit: outcome.exit(),
        text,
        result: v,
    })
}

/// The one-off task steps of a release (`run:` in a release file), run with this command's
/// machinery: the config's task definition (registered when it changed, so a migration runs
/// the code about to be deployed), placed like the service, logs printed as they come.
pub struct ReleaseTasks<'a> {
    pub clients: &'a Clients,
    pub printer: &'a Printer,
}

impl crate::deploy::engine::OneOffTasks for ReleaseTasks<'_> {
    async fn run(
        &self,
        step: &crate::release::Step,
        run: &crate::release::RunStep,
        local: &Local,
        deadline: tokio::time::Instant,
        cancel: tokio::sync::watch::Receiver<bool>,
    ) -> ServiceResult {
        let input = RunInput {
            container: run.container.clone(),
            command: run.command.clone(),
            env: run.env.clone(),
            overrides: None,
        };
        let opts = OneOffOptions {
            pick: TaskPick::Register,
            no_wait: false,
            deadline: deadline.into_std(),
        };
        let started = Instant::now();
        let mut r = ServiceResult::new(Operation::Deploy, &local.config.cluster, &step.name);
        match one_off(self.clients, self.printer, local, &input, &opts, cancel).await {
            Ok(end) => {
                r.outcome = match (end.result["outcome"].as_str(), end.exit) {
                    (Some("exited"), 0) => RunOutcome::Succeeded,
                    (Some("timed_out"), _) => RunOutcome::TimedOut { rolled_back: false },
                    (Some("cancelled"), _) => RunOutcome::Cancelled,
                    _ => RunOutcome::FailedNotRolledBack,
                };
                r.detail = format!("one-off task: {}", end.text);
                r.task_definition_arn = end.result["task_definition_arn"]
                    .as_str()
                    .map(str::to_string);
            }
            Err(e) => {
                r.outcome = RunOutcome::FailedNotRolledBack;
                r.detail = format!(
                    "one-off task: {}",
                    e.diagnostics
                        .first()
                        .map_or_else(|| e.to_string(), |d| d.message.clone())
                );
            }
        }
        r.duration = started.elapsed();
        r
    }
}

/// Reads new lines of the stream, prints them, and returns the token to read on from.
async fn read_logs(
    clients: &Clients,
    report: &Report<'_>,
    container: &str,
    group: &str,
    stream: &str,
    token: Option<String>,
) -> Result<Option<String>> {
    let page = match clients
        .get_log_events(group, stream, token.as_deref())
        .await
    {
        Ok(p) => p,
        // Logs are a view: a failed read is reported, the task is still followed.
        Err(e) if e.kind != ErrorKind::BadInput => {
            report.event(
                "warning",
                json!({"message": format!("reading logs failed: {e}")}),
                &format!("warning: reading logs failed: {e}"),
            );
            return Ok(token);
        }
        Err(e) => return Err(e),
    };
    for (ts, line) in &page.lines {
        report.log(container, *ts, line);
    }
    Ok(page.next.or(token))
}

/// The essential container that decides the exit code: `target` when it is essential and has
/// an exit code, else the first essential container with one. (name, code)
fn essential_exit<'a>(t: &'a Task, target: &str) -> Option<(&'a str, i32)> {
    // DescribeTasks does not say which containers are essential; the target (the essential
    // container by default) first, then any container with an exit code.
    let cs = t.containers();
    cs.iter()
        .find(|c| c.name() == Some(target) && c.exit_code().is_some())
        .or_else(|| cs.iter().find(|c| c.exit_code().is_some()))
        .and_then(|c| Some((c.name().unwrap_or_default(), c.exit_code()?)))
}

/// Why the task stopped, in ECS's words (anyone allowed to call StopTask writes them).
fn stop_reason(t: &Task) -> Untrusted {
    let mut parts: Vec<String> = Vec::new();
    if let Some(code) = t.stop_code() {
        parts.push(code.as_str().to_string());
    }
    if let Some(r) = t.stopped_reason() {
        parts.push(r.to_string());
    }
    for c in t.containers() {
        if let Some(r) = c.reason()
            && !parts.iter().any(|p| p == r)
        {
            parts.push(format!("{}: {r}", c.name().unwrap_or_default()));
        }
    }
    parts.join(": ").into()
}

/// The outcome of a STOPPED task: its container's exit code, or a failure to start when it
/// never ran its command.
fn exit_outcome(t: Option<&Task>, target: &str) -> Outcome {
    let Some(t) = t else {
        return Outcome::FailedToStart;
    };
    let failed_to_start = t
        .stop_code()
        .is_some_and(|c| c.as_str() == "TaskFailedToStart");
    match essential_exit(t, target) {
        Some((_, code)) if !failed_to_start => Outcome::Exited(code),
        _ => Outcome::FailedToStart,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(f: impl FnOnce(&mut RunArgs)) -> RunArgs {
        let mut a = RunArgs::default();
        f(&mut a);
        a
    }

    #[test]
    fn command_is_split_like_a_shell() {
        let i = parse_input(&args(|a| {
            a.command = Some("sh -c \"echo 'hi there'\"".into())
        }))
        .unwrap();
        assert_eq!(
            i.command,
            Some(vec!["sh".into(), "-c".into(), "echo 'hi there'".into()])
        );
        let e = parse_input(&args(|a| a.command = Some("sh -c \"echo".into()))).unwrap_err();
        assert_eq!(e.kind, ErrorKind::BadInput);
        assert!(parse_input(&args(|a| a.command = Some("  ".into()))).is_err());
    }

    #[test]
    fn env_must_be_key_equals_value() {
        let i = parse_input(&args(|a| {
            a.env = vec!["A=1".into(), "B=".into(), "C=x=y".into()]
        }))
        .unwrap();
        assert_eq!(
            i.env,
            vec![
                ("A".into(), "1".into()),
                ("B".into(), String::new()),
                ("C".into(), "x=y".into())
            ]
        );
        for bad in ["A", "=1", " A=1", ""] {
            let e = parse_input(&args(|a| a.env = vec![bad.into()])).unwrap_err();
            assert_eq!(e.kind, ErrorKind::BadInput, "{bad:?}");
        }
    }

    #[test]
    fn overrides_are_checked_against_the_schema() {
        let ok = parse_input(&args(|a| {
            a.overrides = Some(
                r#"{"cpu":"512","containerOverrides":[{"name":"web","command":["a"]}]}"#.into(),
            )
        }))
        .unwrap();
        assert!(ok.overrides.is_some());
        for bad in [
            "{",
            "[]",
            r#"{"containerOverride":[]}"#,
            r#"{"containerOverrides":[{"name":"web","comand":["x"]}]}"#,
            r#"{"containerOverrides":"web"}"#,
        ] {
            let e = parse_input(&args(|a| a.overrides = Some(bad.into()))).unwrap_err();
            assert_eq!(e.kind, ErrorKind::BadInput, "{bad}");
        }
        let e = parse_input(&args(|a| {
            a.overrides = Some(r#"{"containerOverride":[]}"#.into())
        }))
        .unwrap_err();
        assert!(
            e.diagnostics[0]
                .hint
                .as_deref()
                .unwrap_or_default()
                .contains("containerOverrides"),
            "{e}"
        );
    }

    #[test]
    fn flags_merge_into_the_containers_override() {
        let input = RunInput {
            container: None,
            command: Some(vec!["./migrate".into(), "up".into()]),
            env: vec![("A".into(), "2".into()), ("C".into(), "3".into())],
            overrides: Some(json!({"cpu": "512", "containerOverrides": [
                {"name": "side", "command": ["x"]},
                {"name": "web", "command": ["old"], "environment": [{"name": "A", "value": "1"}, {"name": "B", "value": "b"}]}
            ]})),
        };
        let m = merge_overrides(&input, "web");
        assert_eq!(m["cpu"], "512");
        assert_eq!(m["containerOverrides"][0]["command"], json!(["x"]));
        assert_eq!(
            m["containerOverrides"][1]["command"],
            json!(["./migrate", "up"])
        );
        assert_eq!(
            m["containerOverrides"][1]["environment"],
            json!([{"name": "B", "value": "b"}, {"name": "A", "value": "2"}, {"name": "C", "value": "3"}])
        );
        // A container without an entry gets one.
        let m = merge_overrides(
            &RunInput {
                command: Some(vec!["true".into()]),
                ..RunInput::default()
            },
            "app",
        );
        assert_eq!(
            m,
            json!({"containerOverrides": [{"name": "app", "command": ["true"]}]})
        );
        assert!(decode_overrides(&m, "x").is_ok());
    }

    #[test]
    fn awslogs_needs_group_prefix_and_the_same_region() {
        use crate::aws::types::ecs::LogConfiguration;
        let c = |opts: &[(&str, &str)], driver: LogDriver| {
            let mut lc = LogConfiguration::builder().log_driver(driver);
            for (k, v) in opts {
                lc = lc.options(*k, *v);
            }
            ContainerDefinition::builder()
                .name("app")
                .log_configuration(lc.build().unwrap())
                .build()
        };
        let full = [
            ("awslogs-group", "/ecs/app"),
            ("awslogs-stream-prefix", "run"),
            ("awslogs-region", "us-east-1"),
        ];
        assert_eq!(
            awslogs_of(&c(&full, LogDriver::Awslogs), "us-east-1"),
            Ok(("/ecs/app".into(), "run".into()))
        );
        let e = awslogs_of(&c(&full, LogDriver::Awslogs), "eu-west-1").unwrap_err();
        assert!(e.contains("us-east-1") && e.contains("eu-west-1"), "{e}");
        assert!(
            awslogs_of(&c(&full[..1], LogDriver::Awslogs), "us-east-1")
                .unwrap_err()
                .contains("awslogs-stream-prefix")
        );
        assert!(
            awslogs_of(&c(&full, LogDriver::Fluentd), "us-east-1")
                .unwrap_err()
                .contains("fluentd")
        );
        let none = ContainerDefinition::builder().name("app").build();
        assert!(awslogs_of(&none, "us-east-1").is_err());
    }

    #[test]
    fn exit_outcomes() {
        use crate::aws::types::ecs::{Container, TaskStopCode};
        let task = |code: Option<i32>, stop: TaskStopCode| {
            Task::builder()
                .stop_code(stop)
                .containers(Container::builder().name("web").set_exit_code(code).build())
                .build()
        };
        assert_eq!(
            exit_outcome(
                Some(&task(Some(3), TaskStopCode::EssentialContainerExited)),
                "web"
            ),
            Outcome::Exited(3)
        );
        assert_eq!(Outcome::Exited(3).exit(), 3);
        assert_eq!(Outcome::Exited(0).exit(), 0);
        assert_eq!(
            exit_outcome(Some(&task(None, TaskStopCode::TaskFailedToStart)), "web"),
            Outcome::FailedToStart
        );
        assert_eq!(
            exit_outcome(Some(&task(None, TaskStopCode::UserInitiated)), "web"),
            Outcome::FailedToStart
        );
        assert_eq!(Outcome::FailedToStart.exit(), 3);
        assert_eq!(Outcome::TimedOut.exit(), 6);
        assert_eq!(Outcome::Cancelled.exit(), 130);
    }
}
