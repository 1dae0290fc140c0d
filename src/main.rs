//! cortado's entry point: parse the command line, run its command, turn the outcome into an
//! exit code. No logic of its own.

use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = match cortado::cli::parse() {
        Ok(cli) => cli,
        Err(code) => return ExitCode::from(code),
    };
    let mut printer = cli.printer();
    let code = cortado::commands::exec(cli, &mut printer).unwrap_or_else(|e| {
        for d in &e.diagnostics {
            printer.diagnostic(d);
        }
        e.exit_code() as u8
    });
    ExitCode::from(code)
}
