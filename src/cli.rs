//! The command line (clap): the global options, and the commands assembled from their own
//! files under `src/commands/` (each holds its arguments and its `run`). The global options
//! become [`Settings`] once, here; the core never sees clap types.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::error::{Diagnostic, Error, Result};
use crate::report::Format;
use crate::settings::{self, DEFAULT_SANDBOX_SPEED, Settings, ThrottleMode};

#[derive(Debug, Parser)]
#[command(
    name = "cortado",
    version,
    about = "Deploy Amazon ECS services from files in a repository (reads ecspresso's configs)",
    propagate_version = true
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,

    #[command(subcommand)]
    pub command: Command,
}

/// The options every command takes; `--help` lists them apart from the command's own, under
/// "Global options".
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Global options")]
pub struct GlobalArgs {
    /// Config file (default: cortado.yml, else ecspresso.yml); repeat for several services.
    #[arg(
        short,
        long = "config",
        global = true,
        env = "CORTADO_CONFIG",
        value_delimiter = ','
    )]
    pub config: Vec<PathBuf>,

    /// Envfile of KEY=VALUE lines, loaded before rendering (repeatable; later files win).
    #[arg(
        long = "envfile",
        global = true,
        env = "CORTADO_ENVFILE",
        value_delimiter = ','
    )]
    pub envfile: Vec<PathBuf>,

    /// Jsonnet external string variable, KEY=VALUE (std.extVar). Repeatable.
    #[arg(
        long = "ext-str",
        global = true,
        env = "CORTADO_EXT_STR",
        value_name = "KEY=VALUE"
    )]
    pub ext_str: Vec<String>,

    /// Jsonnet external code variable, KEY=CODE (std.extVar). Repeatable.
    #[arg(
        long = "ext-code",
        global = true,
        env = "CORTADO_EXT_CODE",
        value_name = "KEY=CODE"
    )]
    pub ext_code: Vec<String>,

    /// AWS region; overrides the config file's `region`.
    #[arg(long, global = true, env = "CORTADO_REGION")]
    pub region: Option<String>,

    /// IAM role to make every AWS call as (STS AssumeRole with the credentials found
    /// otherwise), as ecspresso's --assume-role-arn.
    #[arg(
        long,
        global = true,
        env = "CORTADO_ASSUME_ROLE_ARN",
        value_name = "ARN"
    )]
    pub assume_role_arn: Option<String>,

    /// Deadline for waits, Go-style duration (10m, 1h30m); overrides the config's `timeout`.
    #[arg(long, global = true, env = "CORTADO_TIMEOUT")]
    pub timeout: Option<String>,

    /// Output format of results.
    #[arg(long, global = true, env = "CORTADO_OUTPUT", value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,

    /// No colour in output (also when NO_COLOR is set).
    #[arg(long, global = true, env = "CORTADO_NO_COLOR")]
    pub no_color: bool,

    /// More detail on stderr (repeat for more).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    /// Release file: the services of the run and their order; instead of `--config`.
    #[arg(long, global = true, env = "CORTADO_RELEASE", value_name = "FILE")]
    pub release: Option<PathBuf>,

    /// An environment of the release file (`environments:`): its region, role, envfiles, ext vars.
    #[arg(long, global = true, env = "CORTADO_ENVIRONMENT", value_name = "NAME")]
    pub environment: Option<String>,

    /// Run against an embedded sandbox (a local AWS emulator) instead of AWS.
    #[arg(long, global = true, env = "CORTADO_SANDBOX")]
    pub sandbox: bool,

    /// Time compression of the embedded sandbox (60: a minute of ECS time per second).
    #[arg(long, global = true, default_value_t = DEFAULT_SANDBOX_SPEED, value_name = "N")]
    pub sandbox_speed: f64,

    /// Request throttling of the embedded sandbox.
    #[arg(
        long,
        global = true,
        value_enum,
        default_value_t = ThrottleMode::Off,
        env = "CORTADO_SANDBOX_THROTTLE",
        value_name = "MODE"
    )]
    pub sandbox_throttle: ThrottleMode,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// Human-readable text (ecspresso's `table` is accepted for it).
    #[value(alias = "table")]
    Text,
    Json,
    /// Tab-separated rows (`tasks`, `revisions`); text from the other commands.
    Tsv,
}

/// The commands: each one's arguments and its `run` live in its own file of
/// [`crate::commands`]; this enum only assembles them (the doc comment of each variant is the
/// command's help).
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print the rendered config, task definition or service definition as JSON.
    Render(crate::commands::render::RenderArgs),
    /// Render and check the definitions: keys, types, what ECS would refuse.
    Validate,
    /// Register, update the service, follow it to a verdict, roll back on failure.
    Deploy(crate::commands::deploy::DeployArgs),
    /// Show what a deploy would change (with --exit-code: exit 2 when something differs).
    Diff(crate::commands::diff::DiffArgs),
    /// Deploy to one environment the images another runs now, by digest.
    Promote(crate::commands::promote::PromoteArgs),
    /// List the configs or release steps a git change touches (no AWS call).
    Affected(crate::commands::affected::AffectedArgs),
    /// Roll back to the revision that last served, or stop the deployment in flight.
    Rollback(crate::commands::rollback::RollbackArgs),
    /// Follow the service's current deployment to a verdict.
    Wait(crate::commands::wait::WaitArgs),
    /// Let a deployment paused by `deploy --until` go on (or roll it back).
    Continue(crate::commands::proceed::ContinueArgs),
    /// Delivery metrics from ECS's record of the service's deployments.
    History(crate::commands::history::HistoryArgs),
    /// Monthly Fargate cost of each service, and savings you could choose.
    Cost(crate::commands::cost::CostArgs),
    /// Write a config and definition files from a live service.
    Init(crate::commands::init::InitArgs),
    /// Check what would make a deploy fail (images, roles, secrets, ...) before trying it.
    Verify(crate::commands::verify::VerifyArgs),
    /// List the service's tasks, or stop one.
    Tasks(crate::commands::tasks::TasksArgs),
    /// Show the service: deployments, recent events, tasks, target health.
    Status(crate::commands::status::StatusArgs),
    /// List the family's task definition revisions; mark the running one.
    Revisions(crate::commands::revisions::RevisionsArgs),
    /// Print the AppSpec a CodeDeploy deployment of the service sends.
    Appspec(crate::commands::appspec::AppspecArgs),
    /// Register the rendered task definition as a new revision (--dry-run: print it).
    Register(crate::commands::register::RegisterArgs),
    /// Deregister task definition revisions (never the one the service runs).
    Deregister(crate::commands::deregister::DeregisterArgs),
    /// Run a one-off task (a migration) and exit with its container's exit code.
    Run(crate::commands::run::RunArgs),
    /// A shell or command in a running task, a forwarded port, or a file copy (ECS Exec).
    Exec(crate::commands::exec::ExecArgs),
    /// Set the service's desired count and follow it to a steady state.
    Scale(crate::commands::scale::ScaleArgs),
    /// Start fresh tasks of what runs now (same revision and count), followed to a verdict.
    Refresh(crate::commands::refresh::RefreshArgs),
    /// Delete the service (task definitions stay); --dry-run shows what would go.
    Delete(crate::commands::delete::DeleteArgs),
    /// Print cortado's version.
    Version,
    /// Print a shell completion script.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Run the local AWS emulator, or push images into it.
    Sandbox(crate::commands::sandbox::SandboxArgs),
}

impl GlobalArgs {
    /// The settings of the run: these flags (and their `CORTADO_*` variables), checked once.
    pub fn settings(&self) -> Result<Settings> {
        let args = self;
        let timeout = match &args.timeout {
            None => None,
            Some(t) => Some(crate::config::parse_duration(t).map_err(|e| {
                Error::input(
                    Diagnostic::error(format!(
                        "invalid {} {t:?}: {e}",
                        settings::flag_source("timeout", t)
                    ))
                    .hint("use a Go-style duration: 90s, 10m, 1h30m"),
                )
            })?),
        };
        let mut release_file = match &args.release {
            None => None,
            Some(path) => Some(crate::release::load(path)?),
        };
        // --release with --config: only the release's steps of those configs (a matrix job
        // of `cortado affected`), with the release's envfiles and environments.
        if let Some(release) = release_file.as_mut()
            && !args.config.is_empty()
        {
            let given = Settings {
                release_file: None,
                configs: args.config.clone(),
                ..Settings::bare()
            };
            *release = release.of_configs_given(&given.config_paths()?)?;
        }
        let (mut region, mut assume_role_arn) = (args.region.clone(), args.assume_role_arn.clone());
        if let Some(name) = &args.environment {
            let Some(release) = release_file.as_mut() else {
                return Err(Error::input(
                    Diagnostic::error(format!(
                        "{} needs --release: environments are declared in the release file",
                        settings::flag_source("environment", name)
                    ))
                    .hint("add `environments: {NAME: {region, assume_role_arn, envfiles}}` to the release file and pass it with --release"),
                ));
            };
            let env = release.choose_environment(name)?;
            // The flags win over the environment; the environment over the configs.
            region = region.or(env.region);
            assume_role_arn = assume_role_arn.or(env.assume_role_arn);
        }
        Ok(Settings {
            release_file,
            // Given with --release, the configs chose its steps above.
            configs: if args.release.is_some() {
                Vec::new()
            } else {
                args.config.clone()
            },
            envfiles: args.envfile.clone(),
            ext_str: settings::key_values("--ext-str", &args.ext_str)?,
            ext_code: settings::key_values("--ext-code", &args.ext_code)?,
            region,
            timeout,
            format: match args.output {
                OutputFormat::Text | OutputFormat::Tsv => Format::Text,
                OutputFormat::Json => Format::Json,
            },
            tsv: args.output == OutputFormat::Tsv,
            assume_role_arn,
            no_color: args.no_color,
            verbose: args.verbose,
            sandbox: if args.sandbox {
                if !(args.sandbox_speed.is_finite() && args.sandbox_speed > 0.0) {
                    return Err(Error::bad_input(format!(
                        "--sandbox-speed must be a positive number, got {}",
                        args.sandbox_speed
                    )));
                }
                Some(args.sandbox_speed)
            } else {
                None
            },
            sandbox_throttle: args.sandbox_throttle == ThrottleMode::Aws,
        })
    }
}

/// Parses the command line. A usage error (or help, or the version) is printed here, and its
/// exit status is the `Err`: 0 for help and the version, 1 for a usage error (bad input; exit 2
/// is `diff`'s).
pub fn parse() -> std::result::Result<Cli, u8> {
    let e = match try_parse() {
        Ok(cli) => return Ok(cli),
        Err(e) => e,
    };
    match from_environment(&e, std::env::args_os().skip(1)) {
        Some(message) => usage_error(&message),
        // Help and version are cortado's own text; a usage error quotes the arguments.
        None if e.use_stderr() => usage_error(&e.render().to_string()),
        None => {
            let _ = e.print();
        }
    }
    Err(match e.kind() {
        clap::error::ErrorKind::DisplayHelp
        | clap::error::ErrorKind::DisplayVersion
        | clap::error::ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => 0,
        _ => crate::error::ExitCode::BadInput as u8,
    })
}

/// A usage error on stderr. It quotes arguments and environment values, which a branch name
/// can reach: inside GitHub Actions no line of it may run as a workflow command.
fn usage_error(message: &str) {
    let text = if crate::report::github::is_actions() {
        crate::report::escape::actions_stderr(message)
    } else {
        format!("{}\n", message.trim_end_matches('\n'))
    };
    let _ = std::io::Write::write_all(&mut std::io::stderr(), text.as_bytes());
}

impl Cli {
    /// The one printer of the run, as the global options ask for it.
    pub fn printer(&self) -> crate::report::Printer {
        let format = match self.global.output {
            OutputFormat::Json => Format::Json,
            OutputFormat::Text | OutputFormat::Tsv => Format::Text,
        };
        crate::report::Printer::new(format, self.global.no_color)
    }
}

/// Parses the command line (with ecspresso's `ECSPRESSO_*` variables, see
/// [`with_ecspresso_environment`]).
pub fn try_parse() -> Result<Cli, clap::Error> {
    let argv =
        with_ecspresso_environment(std::env::args_os().collect(), |name| std::env::var_os(name));
    let mut matches = command().try_get_matches_from(argv)?;
    <Cli as clap::FromArgMatches>::from_arg_matches_mut(&mut matches)
        .map_err(|e| e.format(&mut command()))
}

/// ecspresso's environment variables beside cortado's: a global option whose `CORTADO_X`
/// variable is unset takes `ECSPRESSO_X` (ECSPRESSO_CONFIG, ECSPRESSO_ENVFILE,
/// ECSPRESSO_ASSUME_ROLE_ARN, ...), given to clap as the option itself, unless the command
/// line has the option. `CORTADO_X` wins when both are set. `env` reads a variable.
pub fn with_ecspresso_environment(
    mut argv: Vec<std::ffi::OsString>,
    env: impl Fn(&str) -> Option<std::ffi::OsString>,
) -> Vec<std::ffi::OsString> {
    let cmd = command();
    let mut extra = Vec::new();
    for arg in cmd.get_arguments().filter(|a| a.is_global_set()) {
        let (Some(long), Some(var)) = (arg.get_long(), arg.get_env()) else {
            continue;
        };
        let var = var.to_string_lossy();
        let Some(theirs) = var
            .strip_prefix("CORTADO_")
            .map(|x| format!("ECSPRESSO_{x}"))
        else {
            continue;
        };
        let flag = format!("--{long}");
        let given = argv.iter().skip(1).any(|a| {
            let a = a.to_string_lossy();
            a == flag || a.starts_with(&format!("{flag}="))
        });
        if given || env(&var).is_some() {
            continue;
        }
        let Some(value) = env(&theirs) else { continue };
        if matches!(arg.get_action(), clap::ArgAction::SetTrue) {
            let on = value.to_string_lossy().to_ascii_lowercase();
            if !matches!(on.as_str(), "" | "0" | "false" | "no" | "off") {
                extra.push(flag.into());
            }
        } else {
            let mut a = std::ffi::OsString::from(format!("{flag}="));
            a.push(&value);
            extra.push(a);
        }
    }
    let at = argv.len().min(1);
    argv.splice(at..at, extra);
    argv
}

/// The commands by task, as `cortado --help` lists them and the docs group them.
pub const COMMAND_GROUPS: &[(&str, &[&str])] = &[
    (
        "Deploy and roll out",
        &[
            "deploy", "diff", "affected", "promote", "rollback", "wait", "continue", "scale",
            "refresh", "delete",
        ],
    ),
    (
        "Inspect",
        &[
            "status",
            "tasks",
            "revisions",
            "history",
            "cost",
            "verify",
            "validate",
            "render",
            "appspec",
        ],
    ),
    ("One-off tasks and exec", &["run", "exec"]),
    (
        "Set up",
        &[
            "init",
            "register",
            "deregister",
            "sandbox",
            "version",
            "completions",
        ],
    ),
];

/// Where the pages named by [`COMMAND_DOCS`] are read online.
pub const DOCS_URL: &str = "https://github.com/cortado-dev/cortado/blob/main/";

/// The docs page each command's help ends with (a path from the repository's root).
const COMMAND_DOCS: &[(&str, &str)] = &[
    ("deploy", "docs/concepts/how-a-deploy-works.md"),
    ("diff", "docs/concepts/diff-and-plan.md"),
    ("affected", "docs/guides/monorepo.md"),
    ("promote", "docs/guides/monorepo.md#promotion"),
    ("rollback", "docs/concepts/how-a-deploy-works.md#rollback"),
    ("wait", "docs/guides/commands.md#deploy-and-roll-out"),
    ("continue", "docs/guides/blue-green-canary-linear.md"),
    ("scale", "docs/guides/commands.md#deploy-and-roll-out"),
    ("refresh", "docs/guides/commands.md#deploy-and-roll-out"),
    ("status", "docs/guides/commands.md#inspect"),
    ("tasks", "docs/guides/commands.md#inspect"),
    ("revisions", "docs/guides/commands.md#inspect"),
    ("history", "docs/guides/commands.md#history"),
    ("cost", "docs/concepts/diff-and-plan.md"),
    ("verify", "docs/guides/commands.md#inspect"),
    (
        "validate",
        "docs/guides/troubleshooting.md#errors-before-anything-is-sent",
    ),
    ("render", "docs/guides/commands.md#inspect"),
    ("appspec", "docs/guides/codedeploy.md"),
    (
        "run",
        "docs/guides/releases-and-one-off-tasks.md#running-a-one-off-task",
    ),
    ("exec", "docs/guides/exec.md"),
    ("init", "docs/guides/commands.md#set-up"),
    ("register", "docs/guides/commands.md#set-up"),
    ("deregister", "docs/guides/commands.md#set-up"),
    ("delete", "docs/guides/commands.md#deploy-and-roll-out"),
    ("sandbox", "docs/guides/sandbox.md"),
    ("version", "docs/guides/commands.md#set-up"),
    ("completions", "docs/guides/commands.md#set-up"),
];

/// The docs page of the top-level command `name`, a path from the repository's root.
pub fn docs_page(name: &str) -> Option<&'static str> {
    COMMAND_DOCS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, p)| *p)
}

/// The command line's definition (for parsing, completions and the generated reference):
/// `cortado --help` lists the commands in [`COMMAND_GROUPS`], and each command's help ends
/// with its docs page.
pub fn command() -> clap::Command {
    let mut cmd = <Cli as clap::CommandFactory>::command();
    let names: Vec<String> = cmd
        .get_subcommands()
        .map(|c| c.get_name().to_string())
        .collect();
    for name in &names {
        if let Some(page) = docs_page(name) {
            let docs = format!("Docs: {DOCS_URL}{page}");
            cmd = cmd.mut_subcommand(name, |c| with_after_help(c, &docs));
        }
    }
    let header = *cmd.get_styles().get_header();
    let groups = grouped_commands(&cmd, &header);
    cmd.help_template(format!(
        "{{about-with-newline}}\n{{usage-heading}} {{usage}}\n\n{groups}{header}Global options:{header:#}\n{{options}}{{after-help}}"
    ))
    .after_help(format!("Docs: {DOCS_URL}docs/README.md"))
}

/// `c` and its subcommands, their help ending with `docs`.
fn with_after_help(c: clap::Command, docs: &str) -> clap::Command {
    let subs: Vec<String> = c
        .get_subcommands()
        .map(|s| s.get_name().to_string())
        .collect();
    let mut c = c.after_help(docs.to_string());
    for s in &subs {
        c = c.mut_subcommand(s, |s| with_after_help(s, docs));
    }
    c
}

/// The visible commands of `cmd` by group: [`COMMAND_GROUPS`], then "Other commands" for
/// any that no group names (add them to [`COMMAND_GROUPS`] and [`COMMAND_DOCS`]).
pub fn groups_of(cmd: &clap::Command) -> Vec<(&'static str, Vec<String>)> {
    let shown: Vec<String> = cmd
        .get_subcommands()
        .filter(|c| !c.is_hide_set() && c.get_name() != "help")
        .map(|c| c.get_name().to_string())
        .collect();
    let mut groups: Vec<(&str, Vec<String>)> = COMMAND_GROUPS
        .iter()
        .map(|(g, names)| {
            let present = names.iter().filter(|n| shown.iter().any(|s| s == *n));
            (*g, present.map(|n| n.to_string()).collect())
        })
        .collect();
    let others: Vec<String> = shown
        .into_iter()
        .filter(|n| !COMMAND_GROUPS.iter().any(|(_, g)| g.contains(&n.as_str())))
        .collect();
    if !others.is_empty() {
        groups.push(("Other commands", others));
    }
    groups
}

/// The commands of `cmd` under the headings of [`COMMAND_GROUPS`], each with the first line
/// of its help; a command no group names is listed under "Other commands".
fn grouped_commands(cmd: &clap::Command, header: &clap::builder::styling::Style) -> String {
    let shown: Vec<&clap::Command> = cmd.get_subcommands().filter(|c| !c.is_hide_set()).collect();
    let width = shown.iter().map(|c| c.get_name().len()).max().unwrap_or(0);
    let groups = groups_of(cmd);
    let literal = cmd.get_styles().get_literal();
    let mut out = String::new();
    for (group, names) in groups {
        out.push_str(&format!("{header}{group}:{header:#}\n"));
        for c in names
            .iter()
            .filter_map(|n| shown.iter().find(|c| c.get_name() == *n))
        {
            let about = c.get_about().map(|a| a.to_string()).unwrap_or_default();
            let first = about.lines().next().unwrap_or("");
            out.push_str(&format!(
                "  {literal}{:width$}{literal:#}  {first}\n",
                c.get_name()
            ));
        }
        out.push('\n');
    }
    out
}

/// Rewrites a usage error about a value that came from an environment variable (clap blames
/// the flag, e.g. `--output`, when CORTADO_OUTPUT=xml was the culprit) so that it names the
/// variable. `argv` is the command line without the program name; `None` when the error is
/// not about such a value (the flag was on the command line, or the variable is not set).
pub fn from_environment(
    err: &clap::Error,
    argv: impl IntoIterator<Item = std::ffi::OsString>,
) -> Option<String> {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    if !matches!(
        err.kind(),
        ErrorKind::InvalidValue | ErrorKind::ValueValidation
    ) {
        return None;
    }
    let ContextValue::String(shown) = err.get(ContextKind::InvalidArg)? else {
        return None;
    };
    let long = shown.split_whitespace().next()?.strip_prefix("--")?;
    let var = env_of(&<Cli as clap::CommandFactory>::command(), long)?;
    let ContextValue::String(bad) = err.get(ContextKind::InvalidValue)? else {
        return None;
    };
    if std::env::var_os(&var)?.to_string_lossy() != bad.as_str() {
        return None;
    }
    // The same bad value on the command line is the command line's error. (clap also checks
    // a global option's variable when the option is given, so the flag alone proves nothing.)
    let flag = format!("--{long}");
    let mut args = argv.into_iter().map(|a| a.to_string_lossy().into_owned());
    let mut given = Vec::new();
    while let Some(a) = args.next() {
        if a == flag {
            given.extend(args.next());
        } else if let Some(v) = a.strip_prefix(&format!("{flag}=")) {
            given.push(v.to_string());
        }
    }
    if given.iter().any(|v| v == bad) {
        return None;
    }
    let text = err.render().to_string();
    Some(
        text.replacen(
            &format!("for '{shown}'"),
            &format!("in the environment variable {var} (read for {flag})"),
            1,
        )
        .trim_end()
        .replace(
            "For more information, try '--help'.",
            &format!("Set {var} to a valid value or unset it; see `cortado --help`."),
        ),
    )
}

/// The environment variable of the option `--long` anywhere in `cmd`'s tree.
fn env_of(cmd: &clap::Command, long: &str) -> Option<String> {
    cmd.get_arguments()
        .find(|a| a.get_long() == Some(long))
        .and_then(|a| a.get_env())
        .map(|v| v.to_string_lossy().into_owned())
        .or_else(|| cmd.get_subcommands().find_map(|s| env_of(s, long)))
}
