//! `exec run`: the user's terminal joined to the container's, until the command ends.
//!
//! Receives the picked container and the command; runs it through ECS ExecuteCommand and
//! joins stdin, stdout and the terminal size to the session. On a terminal, stdin is put in
//! raw mode (restored on every way out) and size changes (SIGWINCH) are sent as they happen;
//! otherwise stdin is sent as it comes, then end of input (^D), and SIGINT is passed on as
//! ^C, as the plugin's `handleControlSignals` does. Hands on the command's exit status, read
//! from the wrapper's mark ([`super::marker`]); `--raw` runs the command as given and exits 0
//! (or with the status of an ExitCode payload, should the agent send one).

use std::io::{IsTerminal, Write};
use std::os::fd::AsRawFd;

use cortado_ssm_session::payload::SizeData;
use cortado_ssm_session::{Event, Handle, PayloadType};
use tokio::io::AsyncReadExt;

use super::channel::{self, Channel};
use super::marker::{self, Mark, Scanner};
use super::target::Picked;
use crate::aws::Clients;
use crate::error::{Diagnostic, Error, ErrorKind, Result};
use crate::report::Printer;

/// The size the plugin sends when there is no terminal (`handleTerminalResize`).
const NO_TERMINAL: SizeData = SizeData {
    cols: 300,
    rows: 100,
};

/// The terminal in raw mode while this lives.
struct RawMode {
    fd: i32,
    saved: libc::termios,
}

impl RawMode {
    fn enable(fd: i32) -> Option<RawMode> {
        // SAFETY: tcgetattr/tcsetattr read and write a termios the caller owns; fd is stdin.
        unsafe {
            let mut t: libc::termios = std::mem::zeroed();
            if libc::tcgetattr(fd, &mut t) != 0 {
                return None;
            }
            let saved = t;
            libc::cfmakeraw(&mut t);
            if libc::tcsetattr(fd, libc::TCSANOW, &t) != 0 {
                return None;
            }
            Some(RawMode { fd, saved })
        }
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        // SAFETY: restores the termios read in `enable` on the same fd.
        unsafe {
            libc::tcsetattr(self.fd, libc::TCSANOW, &self.saved);
        }
    }
}

/// The terminal's size, when stdout (else stdin) is one.
fn window_size() -> Option<SizeData> {
    for fd in [std::io::stdout().as_raw_fd(), std::io::stdin().as_raw_fd()] {
        // SAFETY: TIOCGWINSZ fills the winsize given; a failure leaves it unused.
        let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
        if unsafe { libc::ioctl(fd, libc::TIOCGWINSZ, &mut ws) } == 0 && ws.ws_col > 0 {
            return Some(SizeData {
                cols: u32::from(ws.ws_col),
                rows: u32::from(ws.ws_row),
            });
        }
    }
    None
}

async fn send_size(h: &Handle, size: SizeData) {
    let payload = serde_json::to_vec(&size).unwrap_or_default();
    h.send(PayloadType::Size, payload).await;
}

/// Sends stdin to the session: as typed on a terminal, else until its end, then ^D (twice
/// when the last line had no newline: the first ends the line, the second the input).
async fn pump_stdin(h: Handle, tty: bool) {
    let mut stdin = tokio::io::stdin();
    let mut buf = vec![0u8; cortado_ssm_session::stream::CHUNK];
    let mut last = b'\n';
    loop {
        match stdin.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                last = buf[n - 1];
                if !h.send(PayloadType::Output, buf[..n].to_vec()).await {
                    return;
                }
            }
        }
    }
    if !tty {
        let eof: &[u8] = if last == b'\n' { b"\x04" } else { b"\x04\x04" };
        h.send(PayloadType::Output, eof.to_vec()).await;
    }
}

/// Runs `command` in the picked container; its exit status.
pub(super) async fn run(
    clients: &Clients,
    p: &Picked,
    command: &str,
    raw: bool,
    printer: &Printer,
) -> Result<u8> {
    let nonce = cortado_ssm_session::random_hex(8);
    let sent = if raw {
        command.to_string()
    } else {
        marker::wrap(command, &nonce)
    };
    let start = clients
        .execute_command(&p.cluster, p.task_arn(), &p.container, &sent)
        .await?;
    printer.info(&format!(
        "exec: session {} in container {} of task {}",
        start.session_id,
        p.container,
        p.task_id()
    ));
    let ch = channel::open(clients, start).await?;
    if !ch.customer_message.is_empty() {
        printer.info(&channel::plain(&ch.customer_message));
    }
    let tty = std::io::stdin().is_terminal();
    let _raw_mode = if tty {
        RawMode::enable(std::io::stdin().as_raw_fd())
    } else {
        None
    };
    let code = interact(ch, tty, (!raw).then_some(nonce.as_str()), printer).await?;
    Ok(code)
}

/// The session's loop: output to stdout, input and signals to the session.
async fn interact(
    mut ch: Channel,
    tty: bool,
    nonce: Option<&str>,
    printer: &Printer,
) -> Result<u8> {
    send_size(&ch.handle, window_size().unwrap_or(NO_TERMINAL)).await;
    tokio::spawn(pump_stdin(ch.handle.clone(), tty));
    let mut scanner = Scanner::new(nonce.unwrap_or("-"));
    let mut status: Option<i32> = None;
    let mut stdout = std::io::stdout();
    let mut winch = signal(tokio::signal::unix::SignalKind::window_change());
    let mut sigint = signal(tokio::signal::unix::SignalKind::interrupt());
    let mut interrupts = 0;
    loop {
        tokio::select! {
            e = ch.events.recv() => match e {
                Some(Event::Data { payload_type: PayloadType::Output | PayloadType::StdErr, payload }) => {
                    let (out, marks) = if nonce.is_some() { scanner.push(&payload) } else { (payload, Vec::new()) };
                    let _ = stdout.write_all(&out);
                    let _ = stdout.flush();
                    for m in marks {
                        if let Mark::Exit(c) = m {
                            status = Some(c);
                        }
                    }
                }
                Some(Event::Data { payload_type: PayloadType::ExitCode, payload }) => {
                    status = status.or(cortado_ssm_session::payload::parse_exit_code(&payload));
                }
                Some(Event::Reconnecting { reason }) => printer.info(&format!("exec: {}; reconnecting", channel::plain(&reason))),
                Some(Event::Reconnected) => printer.info("exec: reconnected"),
                Some(Event::Closed { reason }) => {
                    if !reason.is_empty() {
                        printer.info(&format!("exec: the session closed: {}", channel::plain(&reason)));
                    }
                    break;
                }
                Some(Event::Failed { error }) => {
                    return Err(Error::new(ErrorKind::Aws, Diagnostic::error(format!("the session failed: {}", channel::plain(&error)))));
                }
                None => break,
                Some(_) => {}
            },
            _ = recv(&mut winch) => {
                if let Some(size) = window_size() {
                    send_size(&ch.handle, size).await;
                }
            }
            _ = recv(&mut sigint) => {
                interrupts += 1;
                if interrupts > 1 {
                    return Ok(crate::error::ExitCode::Cancelled as u8);
                }
                ch.handle.send(PayloadType::Output, vec![0x03]).await;
            }
        }
    }
    let _ = stdout.write_all(&scanner.finish());
    let _ = stdout.flush();
    match (status, nonce) {
        (Some(c), _) => Ok((c & 0xff) as u8),
        (None, None) => Ok(0),
        (None, Some(_)) => Err(Error::new(
            ErrorKind::Aws,
            Diagnostic::error(format!(
                "session {} ended without the command's exit status",
                ch.session_id
            ))
            .hint("the container needs `sh` for cortado to read the exit status; pass --raw to run the command as given"),
        )),
    }
}

fn signal(kind: tokio::signal::unix::SignalKind) -> Option<tokio::signal::unix::Signal> {
    tokio::signal::unix::signal(kind).ok()
}

async fn recv(s: &mut Option<tokio::signal::unix::Signal>) {
    match s {
        Some(s) => {
            s.recv().await;
        }
        None => std::future::pending().await,
    }
}
