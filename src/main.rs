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
            let _ = e.print();
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
            e.exit_code()
        }
    };
    ProcessExit::from(code as u8)
}

fn run(cli: Cli, printer: &mut Printer) -> Result<ExitCode, Error> {
    let settings = Settings::from_args(&cli.global)?;
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
            command: SandboxCommand::Serve(_args),
        } => Err(Error::internal("the sandbox is not part of this build yet")),
    }
}
