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

#[derive(Debug, Args)]
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

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RenderTarget {
    Config,
    Taskdef,
    Servicedef,
}

#[derive(Debug, Subcommand)]
pub enum SandboxCommand {
    /// Run the emulator in the foreground until interrupted.
    Serve(SandboxServeArgs),
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
    /// Time compression: 60 makes a 60 s task start take 1 s.
    #[arg(long, default_value_t = 1.0)]
    pub speed: f64,
}
