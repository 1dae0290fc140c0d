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
    about = "Deploy Amazon ECS services from files in a repository",
    long_about = "Deploy Amazon ECS services from files in a repository.\n\nReads ecspresso's config files unchanged (cortado.yml or ecspresso.yml), renders task and service definitions from Go-style templates and Jsonnet, and validates them.",
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
#[derive(Debug, Args)]
#[command(next_help_heading = "Global options")]
pub struct GlobalArgs {
    /// Config file (YAML, JSON or Jsonnet). Default: cortado.yml, else ecspresso.yml, in the
    /// current folder. Repeat for several services.
    #[arg(
        short,
        long = "config",
        global = true,
        env = "CORTADO_CONFIG",
        value_delimiter = ','
    )]
    pub config: Vec<PathBuf>,

    /// Envfile of KEY=VALUE lines loaded before rendering; later files win, and envfile values
    /// override the process environment. Repeatable.
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

    /// Release file: the services of the run, their order (`after:`), one-off task steps,
    /// shared envfiles and ext vars (see the README's "Releases"). Instead of `--config`.
    #[arg(long, global = true, env = "CORTADO_RELEASE", value_name = "FILE")]
    pub release: Option<PathBuf>,

    /// Run against an embedded sandbox (a local ECS/ECR/ELBv2 emulator) instead of AWS; what
    /// the config references (cluster, target groups, images) is created first.
    #[arg(long, global = true, env = "CORTADO_SANDBOX")]
    pub sandbox: bool,

    /// Time compression of the embedded sandbox (60: a minute of ECS time per second).
    #[arg(long, global = true, default_value_t = DEFAULT_SANDBOX_SPEED, value_name = "N")]
    pub sandbox_speed: f64,

    /// Request throttling of the embedded sandbox: `aws` enforces ECS's documented token
    /// buckets per action category (refilled in wall time); requests over a bucket get
    /// ThrottlingException, as from ECS.
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
    /// Print the rendered JSON of the config, task definition and/or service definition.
    Render(crate::commands::render::RenderArgs),
    /// Render and check the definitions: unknown keys, types, Fargate rules, cross-references.
    Validate,
    /// Register the task definition if it changed, update (or create) the service, follow the
    /// rollout to a verdict, and roll back on failure.
    Deploy(crate::commands::deploy::DeployArgs),
    /// Show what a deploy would change: a normalized diff of the rendered definitions against
    /// what runs. Exit 0 (with --exit-code: 2 when something differs), 1 on error.
    Diff(crate::commands::diff::DiffArgs),
    /// Roll the service back: stop the deployment in flight, or return to the previous revision.
    Rollback(crate::commands::rollback::RollbackArgs),
    /// Follow the service's current deployment to a verdict.
    Wait,
    /// Answer the PAUSE hook the service's current blue/green, canary or linear deployment
    /// waits on (after `deploy --until test-traffic`): CONTINUE, then follow it to a verdict.
    /// With --rollback, answer ROLLBACK and follow the rollback (as `cortado rollback`).
    Continue(crate::commands::proceed::ContinueArgs),
    /// Delivery metrics from ECS's record of each service's deployments: deployments per
    /// week, change failure rate, time to restore, duration (median, p90), the newest ones.
    History(crate::commands::history::HistoryArgs),
    /// The monthly Fargate cost of what each config runs, a total, and savings you could
    /// choose (ARM64, FARGATE_SPOT for services tagged cortado:interruptible=true,
    /// right-sizing to what the containers declare).
    Cost(crate::commands::cost::CostArgs),
    /// Write cortado.yml, ecs-service-def.json and ecs-task-def.json from a live service, so
    /// that `cortado diff` then shows nothing. Overwrites nothing without --force.
    Init(crate::commands::init::InitArgs),
    /// Check what would make a deploy fail, before trying it: cluster, images in ECR (and
    /// their architecture), log groups, secrets, target groups. Exit 1 on any NG.
    Verify,
    /// List the service's tasks (--stopped: also recently stopped ones, with reasons), or
    /// stop one with --stop ID.
    Tasks(crate::commands::tasks::TasksArgs),
    /// Show the service: deployments, recent events, tasks, target health.
    Status(crate::commands::status::StatusArgs),
    /// List the task definition revisions of the family; mark the one the service runs
    /// (--revision N|current|latest: print that revision's task definition as JSON).
    Revisions(crate::commands::revisions::RevisionsArgs),
    /// Print the AppSpec a CodeDeploy deployment of this service sends (the task definition,
    /// the load balancer's container and port, network configuration, the config's
    /// `appspec:` hooks). Read-only.
    Appspec(crate::commands::appspec::AppspecArgs),
    /// Register the rendered task definition as a new revision (--dry-run: print it).
    Register(crate::commands::register::RegisterArgs),
    /// Deregister task definition revisions (never the one the service runs).
    Deregister(crate::commands::deregister::DeregisterArgs),
    /// Run a one-off task (a migration, a script) from the config's task definition, registered
    /// unless identical to the family's newest revision (or --task-def FILE; --revision N,
    /// --latest-task-definition, --skip-task-definition for the service's live revision),
    /// placed like the service; wait for it to stop while streaming its CloudWatch Logs, and
    /// exit with its essential container's exit code.
    Run(crate::commands::run::RunArgs),
    /// A shell or a command in a running task of the service (ECS Exec), a port forwarded to
    /// it, or a file copied to or from it: cortado speaks Session Manager's protocol itself, no
    /// session-manager-plugin needed. Without a subcommand, as ecspresso's `exec`: `--command`
    /// (default `sh`), or `--port-forward --port P [--local-port L] [--host H]`.
    Exec(crate::commands::exec::ExecArgs),
    /// Set the service's desired count and follow it to a steady state.
    Scale(crate::commands::scale::ScaleArgs),
    /// A new deployment with the task definition, attributes and desired count the service
    /// has (fresh tasks), followed to a verdict, as ecspresso's `refresh`.
    Refresh(crate::commands::refresh::RefreshArgs),
    /// Delete the service (--dry-run first; --force: without asking for its name;
    /// --terminate: also when it runs tasks). Task definitions stay.
    Delete(crate::commands::delete::DeleteArgs),
    /// Print cortado's version.
    Version,
    /// Print a shell completion script.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// The local ECS/ECR/ELBv2/CodeDeploy emulator.
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
        let release_file = match &args.release {
            None => None,
            Some(_) if !args.config.is_empty() => {
                return Err(Error::input(
                    Diagnostic::error("give either --release or --config, not both")
                        .hint("a release file lists its configs in `steps:`"),
                ));
            }
            Some(path) => Some(crate::release::load(path)?),
        };
        Ok(Settings {
            release_file,
            configs: args.config.clone(),
            envfiles: args.envfile.clone(),
            ext_str: settings::key_values("--ext-str", &args.ext_str)?,
            ext_code: settings::key_values("--ext-code", &args.ext_code)?,
            region: args.region.clone(),
            timeout,
            format: match args.output {
                OutputFormat::Text | OutputFormat::Tsv => Format::Text,
                OutputFormat::Json => Format::Json,
            },
            tsv: args.output == OutputFormat::Tsv,
            assume_role_arn: args.assume_role_arn.clone(),
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
    <Cli as clap::Parser>::try_parse_from(argv)
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

/// The command line's definition, for completions.
pub fn command() -> clap::Command {
    <Cli as clap::CommandFactory>::command()
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
