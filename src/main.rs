//! cortado's entry point: parse the command line, build settings once, dispatch, and turn the
//! outcome into an exit code. No logic of its own.

use std::process::ExitCode as ProcessExit;

use cortado::cli::{Cli, Command, SandboxCommand};
use cortado::commands;
use cortado::error::{Error, ExitCode};
use cortado::report::{Format, Printer};
use cortado::settings::Settings;

fn main() -> ProcessExit {
    let cli = match cortado::cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            match cortado::cli::from_environment(&e, std::env::args_os().skip(1)) {
                Some(message) => usage_error(&message),
                // Help and version are cortado's own text; a usage error quotes the arguments.
                None if e.use_stderr() => usage_error(&e.render().to_string()),
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

/// A usage error on stderr. It quotes arguments and environment values, which a branch name
/// can reach: inside GitHub Actions no line of it may run as a workflow command.
fn usage_error(message: &str) {
    let text = if cortado::report::github::is_actions() {
        cortado::report::escape::actions_stderr(message)
    } else {
        format!("{}\n", message.trim_end_matches('\n'))
    };
    let _ = std::io::Write::write_all(&mut std::io::stderr(), text.as_bytes());
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
            let mut cmd = cortado::cli::command();
            let mut buf = Vec::new();
            clap_complete::generate(shell, &mut cmd, "cortado", &mut buf);
            printer.out(&String::from_utf8_lossy(&buf));
            Ok(ExitCode::Success)
        }
        Command::Sandbox { command } => {
            let (name, not_here) = match &command {
                SandboxCommand::Serve(a) => ("serve", &a.not_here),
                SandboxCommand::Push(a) => ("push", &a.not_here),
            };
            if let Some(flag) = not_here.given() {
                return Err(Error::bad_input(format!(
                    "{flag} means nothing to `cortado sandbox {name}`"
                ))
                .with_hint("leave it out: `sandbox serve` is the sandbox (its own --speed sets its time compression), and `sandbox push` only puts images into it"));
            }
            sandbox(&settings, printer, command)
        }

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

/// `cortado sandbox serve` and `cortado sandbox push`.
fn sandbox(
    settings: &Settings,
    printer: &mut Printer,
    command: SandboxCommand,
) -> Result<ExitCode, Error> {
    match command {
        SandboxCommand::Serve(args) => block_on(sandbox_serve(settings, args)),
        SandboxCommand::Push(args) => block_on(commands::sandbox::push(
            settings,
            printer,
            &commands::sandbox::PushOptions {
                images: args.images,
                endpoint: args.endpoint,
            },
        )),
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
        return Err(Error::bad_input(format!(
            "--speed must be a positive number, got {}",
            args.speed
        )));
    }
    let seed = match &args.seed {
        Some(p) => Some(cortado_sandbox::Seed::load(p)?),
        None => None,
    };
    let throttle = if args.throttle == cortado::cli::ThrottleMode::Aws || settings.sandbox_throttle
    {
        cortado_sandbox::Throttle::Aws
    } else {
        cortado_sandbox::Throttle::Off
    };
    // The configs' lookups (ssm, secretsmanager_arn, cfn_*, s3:// tfstate) read a sandbox
    // seeded as this one will be, never AWS; that first sandbox only answers lookups, so the
    // configs' region and account are known before the one that serves starts.
    let mut locals = Vec::new();
    if !args.prepare.is_empty() {
        let probe = cortado_sandbox::start(cortado_sandbox::Options {
            port: 0,
            seed: seed.clone(),
            ..cortado_sandbox::Options::default()
        })
        .await?;
        let ctx = settings.render_context()?;
        let printer = Printer::new(Format::Text, settings.no_color);
        let lookups = commands::session::sandbox_lookups(settings, &probe.endpoint());
        // The one config-loading path: every finding of every --prepare config at once.
        let loaded = cortado::deploy::local::load_all(&ctx, &args.prepare, &lookups);
        if loaded.errors() == 0 {
            for w in &loaded.findings {
                printer.diagnostic(w);
            }
        }
        locals = loaded.into_locals()?;
        probe.shutdown().await?;
    }
    // The region and account of the prepared configs (`--region` wins), as ECS's ARNs and the
    // ECR registry of that account would carry them.
    let region = settings
        .region
        .clone()
        .or_else(|| locals.iter().find_map(|l| l.config.region.clone()))
        .unwrap_or_else(|| "us-east-1".into());
    let opts = cortado_sandbox::Options {
        port: args.port,
        speed: args.speed,
        throttle,
        state_file: args.state.clone(),
        seed,
        region: region.clone(),
        account: commands::session::sandbox_account(&locals),
        ..cortado_sandbox::Options::default()
    };
    let sandbox = cortado_sandbox::start(opts).await?;
    for local in &locals {
        for line in commands::session::prepare_for(local).apply(&sandbox)? {
            eprintln!("sandbox: created {line}");
        }
    }
    cortado_sandbox::serve_started(sandbox, &region).await?;
    Ok(ExitCode::Success)
}
