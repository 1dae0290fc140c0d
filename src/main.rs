//! cortado's entry point: parse the command line, build settings once, dispatch, and turn the
//! outcome into an exit code. No logic of its own.

use std::process::ExitCode as ProcessExit;

use clap::{CommandFactory, Parser};

use cortado::cli::{Cli, Command, SandboxCommand};
use cortado::commands;
use cortado::error::{Error, ExitCode};
use cortado::report::{Format, Printer};
use cortado::settings::Settings;

fn main() -> ProcessExit {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            match cortado::cli::from_environment(&e, std::env::args_os().skip(1)) {
                Some(message) => eprintln!("{message}"),
                None => {
                    let _ = e.print();
                }
            }
            return match e.kind() {
                clap::error::ErrorKind::DisplayHelp
                | clap::error::ErrorKind::DisplayVersion
                | clap::error::ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
                    ProcessExit::SUCCESS
                }
                // Usage errors are bad input (exit 1); exit 2 is reserved for `diff`.
                _ => ProcessExit::from(ExitCode::BadInput as u8),
            };
        }
    };
    let format = match cli.global.output {
        cortado::cli::OutputFormat::Json => Format::Json,
        cortado::cli::OutputFormat::Text => Format::Text,
    };
    let mut printer = Printer::new(format, cli.global.no_color);
    let code = match run(cli, &mut printer) {
        Ok(code) => code,
        Err(e) => {
            for d in &e.diagnostics {
                printer.diagnostic(d);
            }
            e.exit_code() as u8
        }
    };
    ProcessExit::from(code)
}

/// The exit status of a command: cortado's codes, except `run`, which passes its task's on.
fn run(cli: Cli, printer: &mut Printer) -> Result<u8, Error> {
    let settings = Settings::from_args(&cli.global)?;
    if let Command::Run(args) = &cli.command {
        return block_on(commands::run::run(&settings, printer, args));
    }
    if let Command::Exec(args) = &cli.command {
        return commands::exec::block_on(commands::exec::run(&settings, printer, args));
    }
    dispatch(cli, &settings, printer).map(|c| c as u8)
}

fn dispatch(cli: Cli, settings: &Settings, printer: &mut Printer) -> Result<ExitCode, Error> {
    let settings = settings.clone();
    match cli.command {
        Command::Render { targets } => commands::render::run(&settings, printer, &targets),
        Command::Validate => commands::validate::run(&settings, printer),
        Command::Version => {
            printer.out(&format!("cortado {}", env!("CARGO_PKG_VERSION")));
            Ok(ExitCode::Success)
        }
        Command::Completions { shell } => {
            let mut cmd = Cli::command();
            let mut buf = Vec::new();
            clap_complete::generate(shell, &mut cmd, "cortado", &mut buf);
            printer.out(&String::from_utf8_lossy(&buf));
            Ok(ExitCode::Success)
        }
        Command::Sandbox {
            command: SandboxCommand::Serve(args),
        } => block_on(sandbox_serve(&settings, args)),
        Command::Deploy(args) => block_on(commands::deploy::run(&settings, printer, &args)),
        Command::Diff(args) => block_on(commands::diff::run(&settings, printer, &args)),
        Command::Rollback(args) => block_on(commands::rollback::run(&settings, printer, &args)),
        Command::Wait => block_on(commands::wait::run(&settings, printer)),
        Command::Continue { rollback } => {
            block_on(commands::wait::continue_run(&settings, printer, rollback))
        }
        Command::History {
            since,
            last,
            markdown,
        } => block_on(commands::history::run(
            &settings,
            printer,
            &commands::history::HistoryOptions {
                since,
                last,
                markdown,
            },
        )),
        Command::Cost {
            currency,
            rate,
            offline,
        } => block_on(commands::cost::run(
            &settings,
            printer,
            &commands::cost::CostOptions {
                currency: currency.zip(rate),
                offline,
            },
        )),
        Command::Init {
            cluster,
            service,
            dir,
            jsonnet,
            image_tag_env,
            force,
        } => block_on(commands::init::run(
            &settings,
            printer,
            &commands::init::InitOptions {
                cluster,
                service,
                dir,
                jsonnet,
                image_tag_env,
                force,
            },
        )),
        Command::Tasks { stopped, stop } => block_on(commands::tasks::run(
            &settings,
            printer,
            stopped,
            stop.as_deref(),
        )),
        Command::Verify => block_on(commands::verify::run(&settings, printer)),
        Command::Status { events } => block_on(commands::status::run(&settings, printer, events)),
        Command::Revisions => block_on(commands::revisions::run(&settings, printer)),
        Command::Appspec { task_definition } => {
            block_on(commands::appspec::run(&settings, printer, &task_definition))
        }
        Command::Register => block_on(commands::register::run(&settings, printer)),
        Command::Deregister(args) => block_on(commands::deregister::run(&settings, printer, &args)),
        Command::Scale { tasks } => block_on(commands::scale::run(&settings, printer, tasks)),
        Command::Run(_) | Command::Exec(_) => {
            Err(Error::internal("`run` and `exec` are dispatched apart"))
        }
    }
}

/// Runs an async command on a multi-threaded runtime.
fn block_on<T, F: std::future::Future<Output = Result<T, Error>>>(f: F) -> Result<T, Error> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| Error::internal(format!("cannot start the async runtime: {e}")))?
        .block_on(f)
}

/// `cortado sandbox serve`: the emulator in the foreground, prepared from `--prepare` configs.
/// The sandbox starts (seeded) first, so the configs' template lookups (`ssm`,
/// `secretsmanager_arn`, `cfn_output`, `tfstate` from `s3://`) read the sandbox itself.
async fn sandbox_serve(
    settings: &Settings,
    args: cortado::cli::SandboxServeArgs,
) -> Result<ExitCode, Error> {
    if !(args.speed.is_finite() && args.speed > 0.0) {
        return Err(Error::msg(format!(
            "--speed must be a positive number, got {}",
            args.speed
        )));
    }
    let seed = match &args.seed {
        Some(p) => Some(cortado_sandbox::Seed::load(p)?),
        None => None,
    };
    let region = settings
        .region
        .clone()
        .unwrap_or_else(|| "us-east-1".into());
    let opts = cortado_sandbox::Options {
        port: args.port,
        speed: args.speed,
        // `--throttle aws`, or the global `--sandbox-throttle aws` / CORTADO_SANDBOX_THROTTLE.
        throttle: if args.throttle == cortado::cli::ThrottleMode::Aws || settings.sandbox_throttle {
            cortado_sandbox::Throttle::Aws
        } else {
            cortado_sandbox::Throttle::Off
        },
        state_file: args.state.clone(),
        seed,
        region: region.clone(),
        ..cortado_sandbox::Options::default()
    };
    let sandbox = cortado_sandbox::start(opts).await?;
    if !args.prepare.is_empty() {
        let ctx = settings.render_context()?;
        let printer = Printer::new(Format::Text, settings.no_color);
        let lookups = commands::session::sandbox_lookups(settings, &sandbox.endpoint());
        // The one config-loading path: every finding of every --prepare config at once.
        let loaded = cortado::deploy::local::load_all(&ctx, &args.prepare, &lookups);
        if loaded.errors() == 0 {
            for w in &loaded.findings {
                printer.diagnostic(w);
            }
        }
        for local in &loaded.into_locals()? {
            for line in commands::session::prepare_for(local).apply(&sandbox)? {
                eprintln!("sandbox: created {line}");
            }
        }
    }
    cortado_sandbox::serve_started(sandbox, &region).await?;
    Ok(ExitCode::Success)
}
