//! Command-line definitions (clap). Parsing only: `main.rs` turns these into settings once and
//! dispatches; the core never sees clap types.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

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

/// The time compression of a sandbox unless told otherwise (`--sandbox-speed`, `serve --speed`).
pub const DEFAULT_SANDBOX_SPEED: f64 = 60.0;

/// Request throttling of a sandbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ThrottleMode {
    /// No bucket model (the random `throttleRate` fault still applies).
    Off,
    /// ECS's documented token buckets ("Request throttling for the Amazon ECS API").
    Aws,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print the rendered JSON of the config, task definition and/or service definition.
    Render {
        /// What to render (default: all).
        #[arg(value_enum)]
        targets: Vec<RenderTarget>,
    },
    /// Render and check the definitions: unknown keys, types, Fargate rules, cross-references.
    Validate,
    /// Register the task definition if it changed, update (or create) the service, follow the
    /// rollout to a verdict, and roll back on failure.
    Deploy(DeployArgs),
    /// Show what a deploy would change: a normalized diff of the rendered definitions against
    /// what runs. Exit 0 with no changes, 2 with changes, 1 on error.
    Diff(DiffArgs),
    /// Roll the service back: stop the deployment in flight, or return to the previous revision.
    Rollback(RollbackArgs),
    /// Follow the service's current deployment to a verdict.
    Wait,
    /// Answer the PAUSE hook the service's current blue/green, canary or linear deployment
    /// waits on (after `deploy --until test-traffic`): CONTINUE, then follow it to a verdict.
    /// With --rollback, answer ROLLBACK and follow the rollback (as `cortado rollback`).
    Continue {
        /// Roll the deployment back instead of continuing it.
        #[arg(long)]
        rollback: bool,
    },
    /// Delivery metrics from ECS's record of each service's deployments: deployments per
    /// week, change failure rate, time to restore, duration (median, p90), the newest ones.
    History {
        /// How far back: a Go-style duration (`30d` is accepted too: days).
        #[arg(long, default_value = "30d", value_parser = parse_since)]
        since: std::time::Duration,
        /// How many of each service's newest deployments to list.
        #[arg(long, default_value_t = 5)]
        last: usize,
        /// Print Markdown (a table and a Mermaid chart) for a job summary or an issue.
        #[arg(long)]
        markdown: bool,
    },
    /// The monthly Fargate cost of what each config runs, a total, and savings you could
    /// choose (ARM64, FARGATE_SPOT for services tagged cortado:interruptible=true,
    /// right-sizing to what the containers declare).
    Cost {
        /// Show another currency next to USD (with --rate): a 3-letter code such as EUR.
        #[arg(long, value_name = "CODE", requires = "rate")]
        currency: Option<String>,
        /// Units of --currency per US dollar, e.g. 0.92.
        #[arg(long, value_name = "N", requires = "currency")]
        rate: Option<f64>,
        /// Do not read ECR to see whether the images are multi-arch.
        #[arg(long)]
        offline: bool,
    },
    /// Write cortado.yml, ecs-service-def.json and ecs-task-def.json from a live service, so
    /// that `cortado diff` then shows nothing. Overwrites nothing without --force.
    Init {
        /// The cluster of the service.
        #[arg(long)]
        cluster: String,
        /// The service to start from.
        #[arg(long)]
        service: String,
        /// Folder to write into.
        #[arg(long, default_value = ".")]
        dir: PathBuf,
        /// Write the definitions as .jsonnet files.
        #[arg(long)]
        jsonnet: bool,
        /// Turn each image tag into {{ must_env `NAME` }}.
        #[arg(long, value_name = "NAME")]
        image_tag_env: Option<String>,
        /// Overwrite existing files.
        #[arg(long)]
        force: bool,
    },
    /// Check what would make a deploy fail, before trying it: cluster, images in ECR (and
    /// their architecture), log groups, secrets, target groups. Exit 1 on any NG.
    Verify,
    /// List the service's tasks (--stopped: also recently stopped ones, with reasons), or
    /// stop one with --stop ID.
    Tasks {
        /// Also list recently stopped tasks.
        #[arg(long)]
        stopped: bool,
        /// Stop this task (its id or ARN); ECS starts a replacement.
        #[arg(long, value_name = "ID")]
        stop: Option<String>,
    },
    /// Show the service: deployments, recent events, tasks, target health.
    Status {
        /// How many recent service events to show.
        #[arg(long, default_value_t = 10)]
        events: usize,
    },
    /// List the task definition revisions of the family; mark the one the service runs.
    Revisions,
    /// Print the AppSpec a CodeDeploy deployment of this service sends (the task definition,
    /// the load balancer's container and port, network configuration, the config's
    /// `appspec:` hooks). Read-only.
    Appspec {
        /// The task definition it names: `latest` (the family's newest ACTIVE revision),
        /// `current` (the one the service runs) or an ARN.
        #[arg(long, value_name = "WHICH", default_value = "latest")]
        task_definition: String,
    },
    /// Register the rendered task definition as a new revision.
    Register,
    /// Deregister task definition revisions (never the one the service runs).
    Deregister(DeregisterArgs),
    /// Run a one-off task (a migration, a script) from the config's task definition, registered
    /// unless identical to the family's newest revision (or --task-def FILE; --revision N,
    /// --latest-task-definition, --skip-task-definition for the service's live revision),
    /// placed like the service; wait for it to stop while streaming its CloudWatch Logs, and
    /// exit with its essential container's exit code.
    Run(RunArgs),
    /// A shell or a command in a running task of the service (ECS Exec), a port forwarded to
    /// it, or a file copied to or from it: cortado speaks Session Manager's protocol itself, no
    /// session-manager-plugin needed. Without a subcommand, as ecspresso's `exec`: `--command`
    /// (default `sh`), or `--port-forward --port P [--local-port L] [--host H]`.
    Exec(crate::commands::exec::ExecArgs),
    /// Set the service's desired count and follow it to a steady state.
    Scale {
        /// The desired number of tasks.
        #[arg(long)]
        tasks: i32,
    },
    /// Print cortado's version.
    Version,
    /// Print a shell completion script.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// The local ECS/ECR/ELBv2/CodeDeploy emulator.
    Sandbox {
        #[command(subcommand)]
        command: SandboxCommand,
    },
}

#[derive(Debug, Args, Default)]
pub struct DeployArgs {
    /// Print the plan and call nothing that changes anything.
    #[arg(long)]
    pub dry_run: bool,
    /// Run `cortado verify` first; any NG stops the deploy before its first write.
    #[arg(long)]
    pub verify: bool,
    /// Start the deployment and exit without following it.
    #[arg(long)]
    pub no_wait: bool,
    /// At most this many services in flight at once (default: the release file's `parallel`,
    /// else 16); a service starts as soon as a slot is free and what it waits for succeeded.
    #[arg(long, value_name = "N", env = "CORTADO_PARALLEL", value_parser = clap::value_parser!(u32).range(1..))]
    pub parallel: Option<u32>,
    /// What a failed service means for the others: rollback-failed (default: it alone rolls
    /// back, services that do not depend on it go on), rollback-all (all or nothing: every
    /// service the run changed returns to its previous revision), stop (nothing new starts).
    #[arg(long, value_enum, value_name = "POLICY", env = "CORTADO_ON_FAILURE")]
    pub on_failure: Option<OnFailureArg>,
    /// Keep the task definition the service runs; update only the service.
    #[arg(long, conflicts_with_all = ["latest_task_definition", "revision", "force_register"])]
    pub skip_task_definition: bool,
    /// Deploy the newest ACTIVE revision of the family instead of the rendered one.
    #[arg(long, conflicts_with_all = ["revision", "force_register"])]
    pub latest_task_definition: bool,
    /// Deploy this revision of the family.
    #[arg(long, value_name = "N", conflicts_with = "force_register")]
    pub revision: Option<i32>,
    /// Register a new revision even when the rendered definition equals the running one.
    #[arg(long)]
    pub force_register: bool,
    /// Start a new deployment even when nothing changed (fresh tasks, same definition).
    #[arg(long)]
    pub force_new_deployment: bool,
    /// Set the desired count.
    #[arg(long, value_name = "N")]
    pub tasks: Option<i32>,
    /// Register the task definition only; leave the service alone.
    #[arg(long)]
    pub no_update_service: bool,
    /// Do not roll back when the deployment fails.
    #[arg(long)]
    pub no_rollback: bool,
    /// When a rollback counts as done: `serving` (default: the earlier revision serves alone;
    /// ECS finishes draining on its own) or `complete` (ECS has finished: one deployment
    /// left, COMPLETED). Overrides the config's `rollout.wait_rollback`.
    #[arg(long, value_enum, value_name = "WHEN")]
    pub wait_rollback: Option<WaitRollbackArg>,
    /// Follow a blue/green, canary or linear deployment only until it waits on a PAUSE hook
    /// that no `rollout.verify` gate answers, then exit 0 with the deployment in the outputs;
    /// answer it later with `cortado continue` (or `cortado rollback`).
    #[arg(long, value_enum, value_name = "POINT", conflicts_with_all = ["no_wait", "wait_until"])]
    pub until: Option<UntilArg>,
    /// ecspresso's spelling: `stable` / `deployed` (follow to the end, the default),
    /// `terminated` (a CodeDeploy deployment: also wait until the original task set is
    /// terminated, not only until traffic is on the new one) or `ecs:STAGE` (stop following
    /// once our deployment reaches that lifecycle stage).
    #[arg(long, value_name = "WHEN", value_parser = parse_wait_until, conflicts_with = "no_wait")]
    pub wait_until: Option<crate::deploy::gate::Until>,
    /// Suspend the service's Application Auto Scaling (dynamic scale-in, scale-out and
    /// scheduled scaling) before the service update, and leave it suspended, as ecspresso does.
    /// With --resume-auto-scaling too: suspended for the deploy, resumed once it succeeded (a
    /// failed deploy leaves it suspended). A service without a scalable target is noted.
    #[arg(long)]
    pub suspend_auto_scaling: bool,
    /// Resume the service's Application Auto Scaling before the service update, as ecspresso
    /// does (or, with --suspend-auto-scaling, after the deploy succeeded).
    #[arg(long)]
    pub resume_auto_scaling: bool,
}

/// Where `deploy --until` stops following.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum UntilArg {
    /// The first PAUSE hook no gate answers (typically after test traffic moved to green).
    #[value(name = "test-traffic", alias = "pause")]
    TestTraffic,
}

/// `--wait-until stable|deployed|terminated|ecs:STAGE`.
fn parse_wait_until(s: &str) -> Result<crate::deploy::gate::Until, String> {
    use crate::deploy::core::state::LifecycleStage;
    use crate::deploy::gate::Until;
    match s {
        "stable" | "deployed" => Ok(Until::Done),
        "terminated" => Ok(Until::Terminated),
        _ => match s.strip_prefix("ecs:").map(LifecycleStage::parse) {
            Some(LifecycleStage::Unknown(x)) => Err(format!(
                "unknown ECS lifecycle stage {x:?}: use one of RECONCILE_SERVICE, PRE_SCALE_UP, \
                 SCALE_UP, POST_SCALE_UP, TEST_TRAFFIC_SHIFT, POST_TEST_TRAFFIC_SHIFT, \
                 PRODUCTION_TRAFFIC_SHIFT, POST_PRODUCTION_TRAFFIC_SHIFT, BAKE_TIME, CLEAN_UP"
            )),
            Some(LifecycleStage::Absent) | None => Err(format!(
                "{s:?}: expected stable, deployed, terminated or ecs:STAGE (e.g. ecs:POST_TEST_TRAFFIC_SHIFT)"
            )),
            Some(stage) => Ok(Until::Stage(stage)),
        },
    }
}

/// `--on-failure`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OnFailureArg {
    RollbackFailed,
    RollbackAll,
    Stop,
}

impl From<OnFailureArg> for crate::release::OnFailure {
    fn from(a: OnFailureArg) -> Self {
        match a {
            OnFailureArg::RollbackFailed => Self::RollbackFailed,
            OnFailureArg::RollbackAll => Self::RollbackAll,
            OnFailureArg::Stop => Self::Stop,
        }
    }
}

/// `--wait-rollback`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum WaitRollbackArg {
    Serving,
    Complete,
}

impl From<WaitRollbackArg> for crate::deploy::core::rollback::WaitRollback {
    fn from(a: WaitRollbackArg) -> Self {
        match a {
            WaitRollbackArg::Serving => Self::Serving,
            WaitRollbackArg::Complete => Self::Complete,
        }
    }
}

#[derive(Debug, Args, Default)]
pub struct RunArgs {
    /// Task definition file to run instead of the config's (rendered and validated like it;
    /// registered unless the family's newest revision is identical).
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
    /// The container --command and --env apply to (and whose logs are streamed); default:
    /// the first essential container.
    #[arg(long, value_name = "NAME")]
    pub container: Option<String>,
    /// RunTask `overrides` as JSON (ECS's TaskOverride, as ecspresso's --overrides);
    /// --command and --env are merged into it.
    #[arg(long, value_name = "JSON")]
    pub overrides: Option<String>,
    /// Start the task, print its ARN and exit 0 without waiting.
    #[arg(long)]
    pub no_wait: bool,
}

#[derive(Debug, Args)]
pub struct DiffArgs {
    /// Output format (default: a unified diff, coloured on a terminal).
    #[arg(long, value_enum, default_value_t = DiffFormat::Text)]
    pub format: DiffFormat,
    /// Create or update the sticky comment on the pull request (GITHUB_EVENT_PATH,
    /// GITHUB_REPOSITORY, GITHUB_TOKEN, GITHUB_API_URL).
    #[arg(long)]
    pub comment: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DiffFormat {
    Text,
    Markdown,
    Json,
}

#[derive(Debug, Args)]
pub struct RollbackArgs {
    /// Deregister the bad revision once the rollback succeeded.
    #[arg(long)]
    pub deregister: bool,
    /// Start the rollback and exit without following it.
    #[arg(long)]
    pub no_wait: bool,
    /// When the rollback counts as done: `serving` (default) or `complete`.
    #[arg(long, value_enum, value_name = "WHEN")]
    pub wait_rollback: Option<WaitRollbackArg>,
    /// Return to revision N of the service's task definition family instead of the one ECS's
    /// record of deployments names (the revision that last ran successfully before the
    /// running one).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(i64).range(1..))]
    pub revision: Option<i64>,
}

#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
pub struct DeregisterArgs {
    /// Deregister this revision.
    #[arg(long, value_name = "N")]
    pub revision: Option<i32>,
    /// Keep the newest N revisions (and the running one); deregister the rest.
    #[arg(long, value_name = "N")]
    pub keep_last: Option<usize>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RenderTarget {
    Config,
    Taskdef,
    Servicedef,
    /// An Express Mode service's definition (`express_definition:`).
    Expressdef,
}

#[derive(Debug, Subcommand)]
pub enum SandboxCommand {
    /// Run the emulator in the foreground until interrupted.
    Serve(SandboxServeArgs),
    /// Put image tags into a running sandbox's ECR (CreateRepository, PutImage), as a
    /// `docker push` would: then `IMAGE_TAG=v2 cortado deploy` pulls them. Without IMAGE, the
    /// ECR images the configs render to now.
    Push(SandboxPushArgs),
}

/// Global options that mean nothing to the `sandbox` commands (they run no embedded sandbox,
/// deploy nothing and wait for nothing). Declared here under the global options' names, clap
/// does not hand the global ones down (it skips a name the subcommand has): so they stay out
/// of the commands' `--help`, and `main` refuses them when given.
#[derive(Debug, Args, Default)]
pub struct NotForSandboxCommands {
    #[arg(long, hide = true)]
    pub sandbox: bool,
    #[arg(long = "sandbox-speed", hide = true, value_name = "N")]
    pub sandbox_speed: Option<f64>,
    #[arg(long, hide = true, value_name = "FILE")]
    pub release: Option<PathBuf>,
    #[arg(long, hide = true)]
    pub timeout: Option<String>,
}

impl NotForSandboxCommands {
    /// The flag given on the command line, if any. (clap also hands down the global
    /// options' defaults and environment variables, e.g. a CI job's CORTADO_TIMEOUT: those are
    /// not the user asking for something here.)
    pub fn given(&self) -> Option<&'static str> {
        let on_command_line =
            |flag: &str| std::env::args().any(|a| a == flag || a.starts_with(&format!("{flag}=")));
        [
            ("--sandbox", self.sandbox),
            ("--sandbox-speed", self.sandbox_speed.is_some()),
            ("--release", self.release.is_some()),
            ("--timeout", self.timeout.is_some()),
        ]
        .into_iter()
        .find(|(flag, set)| *set && on_command_line(flag))
        .map(|(flag, _)| flag)
    }
}

#[derive(Debug, Args)]
pub struct SandboxPushArgs {
    /// Image to push: ACCOUNT.dkr.ecr.REGION.amazonaws.com/REPOSITORY:TAG (fault segments
    /// of the tag, `--crash-20s`, are left out). Repeatable.
    #[arg(value_name = "IMAGE")]
    pub images: Vec<String>,
    /// The sandbox: plain HTTP on this machine only. Default: AWS_ENDPOINT_URL, else
    /// http://127.0.0.1:4566 (CORTADO_SANDBOX_PORT).
    #[arg(long, value_name = "URL")]
    pub endpoint: Option<String>,
    #[command(flatten)]
    pub not_here: NotForSandboxCommands,
}

#[derive(Debug, Args)]
pub struct SandboxServeArgs {
    /// Port on 127.0.0.1 (0 picks a free one).
    #[arg(long, default_value_t = 4566, env = "CORTADO_SANDBOX_PORT")]
    pub port: u16,
    /// Persist state to this file across restarts.
    #[arg(long)]
    pub state: Option<PathBuf>,
    /// YAML file of clusters, services, target groups, listeners, rules and images to create.
    #[arg(long)]
    pub seed: Option<PathBuf>,
    /// Create what these cortado configs reference. Repeatable.
    #[arg(long)]
    pub prepare: Vec<PathBuf>,
    /// Time compression: 60 (the embedded sandbox's default too) runs a minute of ECS time
    /// per second, so a 60 s task start takes 1 s; 1 runs in real time.
    #[arg(long, default_value_t = DEFAULT_SANDBOX_SPEED)]
    pub speed: f64,
    /// `aws`: enforce ECS's documented token buckets per action category (refilled in wall
    /// time, whatever the speed); requests over a bucket get ThrottlingException.
    #[arg(long, value_enum, default_value_t = ThrottleMode::Off, value_name = "MODE")]
    pub throttle: ThrottleMode,
    #[command(flatten)]
    pub not_here: NotForSandboxCommands,
}

/// Parses the command line.
pub fn try_parse() -> Result<Cli, clap::Error> {
    <Cli as clap::Parser>::try_parse()
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

/// `--since`: `30d` (days), or a Go-style duration (`12h`, `90m`).
fn parse_since(s: &str) -> Result<std::time::Duration, String> {
    if let Some(days) = s.strip_suffix('d') {
        return match days.trim().parse::<u64>() {
            Ok(n) if n > 0 => Ok(std::time::Duration::from_secs(n * 86_400)),
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
