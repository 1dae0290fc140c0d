//! One file per command, each with its arguments (clap) and its `run`: settings in, an engine
//! call (or a read-only query), the result out as an exit code. Errors travel up as
//! [`crate::error::Error`] and `main` prints them. What they share (loading configs,
//! connecting, sinks, signals) is in `session`. [`exec`] is the one dispatch.

pub mod affected;
pub mod appspec;
pub mod cost;
pub mod delete;
pub mod deploy;
pub mod deregister;
pub mod diff;
pub mod exec;
pub mod history;
pub mod init;
pub mod proceed;
pub mod promote;
pub mod refresh;
pub mod register;
pub mod render;
pub mod revisions;
pub mod rollback;
pub mod run;
pub mod sandbox;
pub mod scale;
pub mod session;
pub mod status;
pub mod tasks;
pub mod tasks_logs;
pub mod validate;
pub mod verify;
pub mod wait;

use crate::cli::{Cli, Command};
use crate::error::{Error, ExitCode, Result};
use crate::report::Printer;

/// Runs the command of `cli`: its exit status (cortado's codes, except `run` and `exec`,
/// which pass their task's or command's on).
pub fn exec(cli: Cli, printer: &mut Printer) -> Result<u8> {
    let settings = cli.global.settings()?;
    if cli.global.verbose > 0 {
        printer.set_verbose(cli.global.verbose);
    }
    let s = &settings;
    let code = match &cli.command {
        Command::Run(a) => return block_on(run::run(s, printer, a)),
        Command::Exec(a) => return exec::block_on(exec::run(s, printer, a)),
        Command::Render(a) => render::run(s, printer, a),
        Command::Validate => validate::run(s, printer),
        Command::Deploy(a) => block_on(deploy::run(s, printer, a)),
        Command::Promote(a) => {
            let with_environment = |name: &str| {
                let mut g = cli.global.clone();
                g.environment = Some(name.to_string());
                g.settings()
            };
            let inv = promote::Invocation {
                settings: s,
                environment: cli.global.environment.as_deref(),
                with_environment: &with_environment,
            };
            block_on(promote::run(&inv, printer, a))
        }
        Command::Affected(a) => affected::run(s, printer, a),
        Command::Diff(a) => block_on(diff::run(s, printer, a)),
        Command::Rollback(a) => block_on(rollback::run(s, printer, a)),
        Command::Wait(a) => block_on(wait::run(s, printer, a)),
        Command::Continue(a) => block_on(proceed::run(s, printer, a)),
        Command::History(a) => block_on(history::run(s, printer, a)),
        Command::Cost(a) => block_on(cost::run(s, printer, a)),
        Command::Init(a) => block_on(init::run(s, printer, a)),
        Command::Verify(a) => block_on(verify::run(s, printer, a)),
        Command::Tasks(a) => block_on(tasks::run(s, printer, a)),
        Command::Status(a) => block_on(status::run(s, printer, a)),
        Command::Revisions(a) => block_on(revisions::run(s, printer, a)),
        Command::Appspec(a) => block_on(appspec::run(s, printer, a)),
        Command::Register(a) => block_on(register::run(s, printer, a)),
        Command::Deregister(a) => block_on(deregister::run(s, printer, a)),
        Command::Scale(a) => block_on(scale::run(s, printer, a)),
        Command::Refresh(a) => block_on(refresh::run(s, printer, a)),
        Command::Delete(a) => block_on(delete::run(s, printer, a)),
        Command::Sandbox(a) => block_on(sandbox::run(s, printer, a)),
        Command::Version => {
            printer.out(&format!("cortado {}", env!("CARGO_PKG_VERSION")));
            Ok(ExitCode::Success)
        }
        Command::Completions { shell } => {
            let mut buf = Vec::new();
            clap_complete::generate(*shell, &mut crate::cli::command(), "cortado", &mut buf);
            printer.out(&String::from_utf8_lossy(&buf));
            Ok(ExitCode::Success)
        }
    };
    code.map(|c| c as u8)
}

/// Runs an async command on a multi-threaded runtime.
fn block_on<T, F: std::future::Future<Output = Result<T>>>(f: F) -> Result<T> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| Error::internal(format!("cannot start the async runtime: {e}")))?
        .block_on(f)
}
