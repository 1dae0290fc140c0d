//! `cortado run`: the flags checked into a one-off task's input ([`RunInput`]), the one
//! config loaded (with `--task-def FILE` in place of its task definition), the task run by
//! the core ([`crate::deploy::task`]) with its events printed as they come, and its exit code
//! passed on: the container's (0..=255), 3 when the task never ran its command, 6 on
//! timeout, 130 on cancel, 0 after `--no-wait`.
//!
//! Everything local (flags, config, the task definition file, the container named) is
//! checked before the first AWS call.

use std::path::Path;
use std::time::Instant;

use serde_json::Value;

use super::session;
use crate::deploy::event::Emitter;
use crate::deploy::local::Local;
use crate::deploy::task::{
    self, OneOff, RunInput, TaskPick, WaitUntil, decode_overrides, target_container,
};
use crate::error::{Diagnostic, Error, Result};
use crate::report::{Format, Printer};
use crate::settings::Settings;
use std::path::PathBuf;

#[derive(Debug, clap::Args, Default)]
pub struct RunArgs {
    /// Task definition file to run instead of the config's.
    ///
    /// Rendered and validated like it; registered unless the family's newest revision is
    /// identical.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["revision", "skip_task_definition", "latest_task_definition"])]
    pub task_def: Option<PathBuf>,
    /// Run this revision of the family (the service's family, else the config's), registering
    /// nothing.
    #[arg(long, value_name = "N")]
    pub revision: Option<i32>,
    /// Run the revision the service runs now, registering nothing (ecspresso's meaning).
    #[arg(long)]
    pub skip_task_definition: bool,
    /// Run the family's newest ACTIVE revision, registering nothing.
    #[arg(long)]
    pub latest_task_definition: bool,
    /// Command for the container, split like a POSIX shell: --command 'sh -c "./migrate up"'.
    #[arg(long, value_name = "COMMAND", allow_hyphen_values = true)]
    pub command: Option<String>,
    /// Environment variable for the container, KEY=VALUE. Repeatable.
    #[arg(long = "env", value_name = "KEY=VALUE")]
    pub env: Vec<String>,
    /// The container --command and --env apply to and whose logs and exit code are followed
    /// (default: the first essential one).
    #[arg(long, visible_alias = "watch-container", value_name = "NAME")]
    pub container: Option<String>,
    /// RunTask `overrides` as JSON (ECS's TaskOverride, as ecspresso's --overrides);
    /// --command and --env are merged into it.
    #[arg(long, value_name = "JSON", conflicts_with = "overrides_file")]
    pub overrides: Option<String>,
    /// The same, read from a file (rendered like the definitions: templates, Jsonnet).
    #[arg(long, value_name = "FILE")]
    pub overrides_file: Option<PathBuf>,
    /// Start the task, print its ARN and exit 0 without waiting.
    #[arg(long, conflicts_with = "wait_until")]
    pub no_wait: bool,
    /// Follow the task until `stopped` (default; its exit code is passed on) or only until
    /// `running` (then exit 0).
    #[arg(long, value_enum, value_name = "STATUS")]
    pub wait_until: Option<WaitUntilArg>,
    /// Check and print what would run (the task definition picked, the container, the
    /// overrides); register and start nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// RunTask's idempotency token: a retry with the same token starts nothing new (up to
    /// 64 ASCII characters).
    #[arg(long, value_name = "TOKEN")]
    pub client_token: Option<String>,
    /// Tags of the task: KEY=VALUE,KEY=VALUE.
    #[arg(long, value_name = "K=V,...")]
    pub tags: Option<String>,
    /// Copy the task definition's tags to the task (TASK_DEFINITION); ECS refuses SERVICE for
    /// a task RunTask starts.
    #[arg(long, value_name = "FROM", value_parser = ["TASK_DEFINITION", "SERVICE", "NONE"])]
    pub propagate_tags: Option<String>,
    /// How many tasks to start (1 to 10); each is followed, and the exit code is the first
    /// non-zero one.
    #[arg(long, value_name = "N")]
    pub count: Option<i32>,
    /// Keep the Amazon EBS volumes the service definition's volumeConfigurations give the
    /// task after it stops.
    #[arg(long)]
    pub no_ebs_delete_on_termination: bool,
}

/// `--wait-until`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum WaitUntilArg {
    Stopped,
    Running,
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
    let count = args.count.unwrap_or(1);
    if !(1..=10).contains(&count) {
        return Err(bad(
            format!("--count {count}: RunTask starts 1 to 10 tasks"),
            "give --count from 1 to 10",
        ));
    }
    Ok(RunInput {
        count,
        keep_ebs_volumes: args.no_ebs_delete_on_termination,
        container: args.container.clone(),
        command,
        env,
        overrides,
        client_token: args.client_token.clone(),
        tags: parse_tags(args.tags.as_deref())?,
        propagate_tags: args.propagate_tags.clone(),
    })
}

/// `--tags K=V,K2=V2` (ecspresso's format).
fn parse_tags(tags: Option<&str>) -> Result<Vec<(String, String)>> {
    let Some(text) = tags else {
        return Ok(Vec::new());
    };
    text.split(',')
        .map(|kv| match kv.split_once('=') {
            Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_string(), v.to_string())),
            _ => Err(bad(
                format!("--tags: {kv:?} is not KEY=VALUE"),
                "write --tags KeyFoo=ValueFoo,KeyBar=ValueBar",
            )),
        })
        .collect()
}

/// `--overrides-file`: rendered (templates, Jsonnet) and checked like `--overrides`.
fn overrides_from_file(ctx: &crate::render::RenderContext, path: &Path) -> Result<Value> {
    crate::settings::flag_file("overrides-file", "task overrides", path)?;
    let v = crate::render::load(ctx, path)?.value;
    if !v.is_object() {
        return Err(bad(
            format!(
                "{}: overrides must be a JSON object (ECS's TaskOverride)",
                path.display()
            ),
            "e.g. {\"containerOverrides\":[{\"name\":\"app\",\"command\":[\"./migrate\"]}]}",
        ));
    }
    decode_overrides(&v, &path.display().to_string())?;
    Ok(v)
}

/// The pick the flags ask for, in ecspresso's order (`--revision`, then
/// `--latest-task-definition`, then `--skip-task-definition`), and a warning when two of them
/// were given.
pub fn pick_of(args: &RunArgs) -> (TaskPick, Option<String>) {
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

/// Loads the one config of the run with `--task-def FILE` (relative to the current folder)
/// in place of its task definition: rendered and validated like any task definition.
fn load_local(
    settings: &Settings,
    printer: &mut Printer,
    args: &RunArgs,
    input: &mut RunInput,
) -> Result<Local> {
    let task_def = args.task_def.as_deref();
    let ctx = settings.render_context()?;
    printer.set_secrets(ctx.secrets.clone());
    let paths = settings.config_paths()?;
    let [path] = paths.as_slice() else {
        return Err(bad(
            format!("cortado run takes one config, got {}", paths.len()),
            "pass the config of the service whose task to run with --config PATH",
        ));
    };
    let (mut config, ctx) =
        crate::render::plugins::load_with_plugins(&ctx, path, &session::lookups(settings))?;
    if let Some(f) = task_def {
        // Read from the current folder, as given; a file that cannot be read is the flag's
        // error, not the config's task_definition line.
        crate::settings::flag_file("task-def", "task definition", f)?;
        config.task_definition = Some(f.to_path_buf());
    }
    if let Some(f) = &args.overrides_file {
        input.overrides = Some(overrides_from_file(&ctx, f)?);
    }
    let local = crate::deploy::local::load(&ctx, config)?;
    for w in &local.warnings {
        printer.diagnostic(w);
    }
    Ok(local)
}

/// `cortado run`.
pub async fn run(settings: &Settings, printer: &mut Printer, args: &RunArgs) -> Result<u8> {
    let mut input = parse_input(args)?;
    let local = load_local(settings, printer, args, &mut input)?;
    // A container named on the command line must exist in the file's definition before a
    // changed revision of it is registered.
    if args.task_def.is_some() {
        target_container(
            local.task.container_definitions(),
            input.container.as_deref(),
        )?;
    }
    let s = session::connect(settings, std::slice::from_ref(&local), printer).await?;
    let (pick, warning) = pick_of(args);
    if let Some(w) = warning {
        printer.diagnostic(&Diagnostic::warning(w));
    }
    let emitter = Emitter::new();
    emitter.subscribe(crate::report::lines::task_sink(printer));
    let one_off = OneOff {
        local: &local,
        // A config without `service:` runs tasks under its task definition's family.
        name: local
            .service_opt()
            .or_else(|| local.task.family())
            .unwrap_or_default(),
        input: &input,
        pick,
        no_wait: args.no_wait,
        until: match args.wait_until {
            Some(WaitUntilArg::Running) => WaitUntil::Running,
            _ => WaitUntil::Stopped,
        },
        dry_run: args.dry_run,
        deadline: Instant::now() + crate::deploy::local::timeout(settings.timeout, &local.config),
    };
    let ends = task::run(&s.clients, &emitter, &one_off, session::cancel_on_signals()).await?;
    for end in &ends {
        if printer.format == Format::Json {
            printer.out_json_line(&end.json());
        } else if args.no_wait {
            printer.out(&end.task_arn);
        } else {
            printer.info(&end.text);
            // Inside GitHub Actions a task that did not succeed is an error annotation too.
            if end.exit() != 0 {
                use crate::report::github::{Annotation, Level};
                printer.annotate(
                    &Annotation::new(Level::Error, end.text.clone()).title("cortado run"),
                );
            }
        }
    }
    // The first task (in RunTask's order) that did not succeed decides.
    Ok(ends.iter().map(|e| e.exit()).find(|c| *c != 0).unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

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
}
