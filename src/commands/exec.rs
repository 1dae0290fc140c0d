//! `cortado exec`: a shell or a command in a running task of the config's service (ECS
//! Exec), a port of the task (or of a host it reaches) forwarded to this machine, or a file
//! copied to or from a container — with no session-manager-plugin: cortado speaks Session
//! Manager's data channel itself (`cortado-ssm-session`).
//!
//! Receives the run's settings and `exec`'s flags (ecspresso's: `--id`, `--container`,
//! `--command`, `--port-forward`, `--local-port`, `--port`, `--host`; and the `run`,
//! `portforward` and `cp` subcommands). Flags are checked before any AWS call; then the task
//! and container are picked ([`target`]), every refusal ECS Exec would end in is checked
//! before a session starts ([`target::preflight`]), and the session runs ([`term`], [`port`],
//! [`cp`]). Hands on an exit code: the command's own (read from a marker the command's
//! wrapper prints, since ECS Exec sessions carry no exit status), 0 for port forwarding and
//! copies that succeeded, cortado's codes otherwise.

mod channel;
mod cp;
mod marker;
mod port;
mod target;
mod term;

use std::future::Future;

use clap::{Args, Subcommand};

use super::session;
use crate::error::{Diagnostic, Error, Result};
use crate::report::Printer;
use crate::settings::Settings;

/// Which task and container.
#[derive(Debug, Args, Clone, Default)]
pub struct TargetArgs {
    /// The task (its id or ARN); default: the service's running task (a picker on a terminal
    /// when there are several).
    #[arg(long, value_name = "TASK")]
    pub id: Option<String>,
    /// The container; default: the task's only container, a picker on a terminal, else the
    /// first container of the task.
    #[arg(long, value_name = "NAME")]
    pub container: Option<String>,
}

/// `cortado exec [FLAGS]` (ecspresso's form) or `cortado exec run|portforward|cp`.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct ExecArgs {
    #[command(subcommand)]
    pub action: Option<ExecAction>,
    #[command(flatten)]
    pub target: TargetArgs,
    /// The command to run; default `sh` (an interactive shell).
    #[arg(long, value_name = "CMD", allow_hyphen_values = true)]
    pub command: Option<String>,
    /// Run the command without the `sh -c` wrapper (for containers without `sh`).
    ///
    /// The wrapper reports the command's exit status; without it, cortado exits 0 when the
    /// session ends.
    #[arg(long)]
    pub raw: bool,
    /// Forward a port instead of running a command (ecspresso's `--port-forward`).
    #[arg(long)]
    pub port_forward: bool,
    /// With --port-forward: the local port (0 picks a free one).
    #[arg(long, value_name = "L")]
    pub local_port: Option<u16>,
    /// With --port-forward: the port in the task (or on --host).
    #[arg(long, value_name = "P")]
    pub port: Option<u16>,
    /// With --port-forward: a host the task reaches (AWS-StartPortForwardingSessionToRemoteHost).
    #[arg(long, value_name = "H")]
    pub host: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum ExecAction {
    /// A shell (default `sh`) or a command in the container; exits with its exit code.
    Run {
        #[command(flatten)]
        target: TargetArgs,
        /// The command to run; default `sh` (an interactive shell).
        #[arg(long, value_name = "CMD", allow_hyphen_values = true)]
        command: Option<String>,
        /// Run the command without the `sh -c` wrapper that reports its exit status.
        #[arg(long)]
        raw: bool,
    },
    /// Forward a local port to a port in the task, or to a host the task reaches.
    ///
    /// 127.0.0.1:L on this machine goes to port P in the task (or on --host). One connection
    /// at a time; Ctrl-C ends the session.
    Portforward {
        #[command(flatten)]
        target: TargetArgs,
        /// The local port (0 picks a free one and prints it).
        #[arg(long, value_name = "L", default_value_t = 0)]
        local_port: u16,
        /// The port in the task (or on --host).
        #[arg(long, value_name = "P")]
        port: u16,
        /// A host the task reaches (a database, an internal service).
        #[arg(long, value_name = "H")]
        host: Option<String>,
    },
    /// Copy a file to or from a container (it needs `sh` and `base64`).
    ///
    /// `cortado exec cp FILE :/tmp/FILE` uploads, `cortado exec cp :/var/log/app.log .`
    /// downloads; `TASK:PATH` names a task, `-` is stdin or stdout.
    Cp {
        #[command(flatten)]
        target: TargetArgs,
        /// Source: a local path, or `:PATH` / `TASK:PATH` in the container.
        src: String,
        /// Destination: a local path, or `:PATH` / `TASK:PATH` in the container.
        dst: String,
        /// No progress bar.
        #[arg(long)]
        no_progress: bool,
    },
}

/// What the flags ask for, checked.
#[derive(Debug, Clone, PartialEq)]
enum Plan {
    Shell {
        target: TargetArgs,
        command: String,
        raw: bool,
    },
    Port {
        target: TargetArgs,
        local_port: u16,
        port: u16,
        host: Option<String>,
    },
    Copy {
        target: TargetArgs,
        copy: cp::Copy,
        progress: bool,
    },
}

impl PartialEq for TargetArgs {
    fn eq(&self, o: &Self) -> bool {
        self.id == o.id && self.container == o.container
    }
}

fn bad(message: impl Into<String>, hint: &str) -> Error {
    Error::input(Diagnostic::error(message).hint(hint))
}

/// Checks the flags; no I/O.
fn plan(args: &ExecArgs) -> Result<Plan> {
    let plan = match &args.action {
        Some(ExecAction::Run {
            target,
            command,
            raw,
        }) => Plan::Shell {
            target: target.clone(),
            command: command.clone().unwrap_or_else(|| "sh".into()),
            raw: *raw,
        },
        Some(ExecAction::Portforward {
            target,
            local_port,
            port,
            host,
        }) => Plan::Port {
            target: target.clone(),
            local_port: *local_port,
            port: *port,
            host: host.clone(),
        },
        Some(ExecAction::Cp {
            target,
            src,
            dst,
            no_progress,
        }) => {
            let (copy, id) = cp::Copy::parse(src, dst)?;
            let mut target = target.clone();
            if let Some(id) = id {
                if target.id.as_ref().is_some_and(|t| *t != id) {
                    return Err(bad(
                        format!(
                            "the copy names task {id} but --id names {}",
                            target.id.clone().unwrap_or_default()
                        ),
                        "name the task once: TASK:PATH or --id",
                    ));
                }
                target.id = Some(id);
            }
            Plan::Copy {
                target,
                copy,
                progress: !no_progress,
            }
        }
        None if args.port_forward => Plan::Port {
            target: args.target.clone(),
            local_port: args.local_port.unwrap_or(0),
            port: args.port.ok_or_else(|| {
                bad(
                    "--port-forward needs --port",
                    "--port P: the port in the task to forward",
                )
            })?,
            host: args.host.clone().filter(|h| !h.is_empty()),
        },
        None => {
            if args.port.is_some() || args.local_port.is_some() || args.host.is_some() {
                return Err(bad(
                    "--port, --local-port and --host go with --port-forward",
                    "add --port-forward, or use `cortado exec portforward`",
                ));
            }
            Plan::Shell {
                target: args.target.clone(),
                command: args.command.clone().unwrap_or_else(|| "sh".into()),
                raw: args.raw,
            }
        }
    };
    if let Plan::Shell { command, .. } = &plan
        && command.trim().is_empty()
    {
        return Err(bad(
            "--command is empty",
            "give a command, or leave --command out for a shell",
        ));
    }
    Ok(plan)
}

/// Runs `exec`; the exit code.
pub async fn run(settings: &Settings, printer: &mut Printer, args: &ExecArgs) -> Result<u8> {
    let plan = plan(args)?;
    let (locals, s) = session::open(settings, printer).await?;
    let local = match locals.as_slice() {
        [one] => one,
        [] => {
            return Err(bad(
                "no config to take the service from",
                "pass --config FILE",
            ));
        }
        _ => {
            return Err(bad(
                format!("exec works on one service; this run has {}", locals.len()),
                "pass one --config",
            ));
        }
    };
    let clients = &s.clients;
    match plan {
        Plan::Shell {
            target,
            command,
            raw,
        } => {
            let picked = target::pick(clients, local, &target, printer).await?;
            target::preflight(clients, &picked, printer).await?;
            term::run(clients, &picked, &command, raw, printer).await
        }
        Plan::Port {
            target,
            local_port,
            port,
            host,
        } => {
            let picked = target::pick(clients, local, &target, printer).await?;
            target::preflight(clients, &picked, printer).await?;
            port::forward(clients, &picked, local_port, port, host.as_deref(), printer).await
        }
        Plan::Copy {
            target,
            copy,
            progress,
        } => {
            let picked = target::pick(clients, local, &target, printer).await?;
            target::preflight(clients, &picked, printer).await?;
            cp::run(clients, &picked, &copy, progress, printer).await
        }
    }
}

/// Runs `exec` on a runtime that does not wait, when it ends, for a read of the terminal
/// still blocked in its thread.
pub fn block_on<F: Future<Output = Result<u8>>>(f: F) -> Result<u8> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| Error::internal(format!("cannot start the async runtime: {e}")))?;
    let out = rt.block_on(f);
    rt.shutdown_background();
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct T {
        #[command(flatten)]
        e: ExecArgs,
    }

    fn p(args: &[&str]) -> Result<Plan> {
        let mut v = vec!["x"];
        v.extend(args);
        plan(&T::try_parse_from(v).map_err(|e| bad(e.to_string(), ""))?.e)
    }

    #[test]
    fn ecspresso_flags_and_subcommands() {
        assert_eq!(
            p(&[]).unwrap(),
            Plan::Shell {
                target: TargetArgs::default(),
                command: "sh".into(),
                raw: false
            }
        );
        assert!(matches!(
            p(&["--port-forward", "--port", "80", "--local-port", "8080"]).unwrap(),
            Plan::Port {
                local_port: 8080,
                port: 80,
                host: None,
                ..
            }
        ));
        assert!(p(&["--port-forward"]).is_err());
        assert!(
            p(&["--port", "80"]).is_err(),
            "--port without --port-forward"
        );
        assert!(matches!(
            p(&["run", "--id", "abc", "--command", "ls -l"]).unwrap(),
            Plan::Shell { ref command, ref target, .. } if command == "ls -l" && target.id.as_deref() == Some("abc")
        ));
        assert!(matches!(
            p(&["portforward", "--port", "5432", "--host", "db.internal"]).unwrap(),
            Plan::Port { port: 5432, ref host, .. } if host.as_deref() == Some("db.internal")
        ));
        assert!(p(&["run", "--command", " "]).is_err());
        assert!(matches!(
            p(&["cp", "abc:/tmp/x", "./x"]).unwrap(),
            Plan::Copy { ref target, .. } if target.id.as_deref() == Some("abc")
        ));
        assert!(p(&["cp", "a", "b"]).is_err(), "neither side in a container");
        assert!(p(&["cp", "--id", "other", "abc:/x", "y"]).is_err());
    }
}
