//! `exec portforward`: 127.0.0.1:L on this machine to port P in the task (or on a host the
//! task reaches), through an SSM session of the AWS-StartPortForwardingSession (or
//! ...ToRemoteHost) document.
//!
//! Receives the picked container and the ports; runs until Ctrl-C (or the session ends).
//! Forwards one connection at a time, as the agent's basic port session does (see
//! [`super::channel::CLIENT_VERSION`]): when the local connection closes, cortado sends the
//! DisconnectToPort flag (aws/session-manager-plugin `basicportforwarding.go`) and takes the
//! next one; further connections wait in the listener's backlog meanwhile. Ctrl-C sends the
//! TerminateSession flag and ends the session through SSM. Hands on exit 0, or an error when
//! the session could not start or broke.

use cortado_ssm_session::payload::{Flag, session_type};
use cortado_ssm_session::{Event, PayloadType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::channel::{self, Channel};
use super::target::Picked;
use crate::aws::Clients;
use crate::error::{Diagnostic, Error, ErrorKind, Result};
use crate::report::Printer;

fn broke(message: String) -> Error {
    Error::new(ErrorKind::Aws, Diagnostic::error(message))
}

/// Forwards until interrupted or the session ends.
pub(super) async fn forward(
    clients: &Clients,
    p: &Picked,
    local_port: u16,
    port: u16,
    host: Option<&str>,
    printer: &Printer,
) -> Result<u8> {
    let listener = TcpListener::bind(("127.0.0.1", local_port))
        .await
        .map_err(|e| {
            Error::input(
                Diagnostic::error(format!("cannot listen on 127.0.0.1:{local_port}: {e}"))
                    .hint("pick another --local-port, or 0 for a free one"),
            )
        })?;
    let bound = listener
        .local_addr()
        .map(|a| a.port())
        .unwrap_or(local_port);
    let mut params = vec![
        ("portNumber", port.to_string()),
        ("localPortNumber", bound.to_string()),
    ];
    let document = match host {
        Some(h) => {
            params.push(("host", h.to_string()));
            "AWS-StartPortForwardingSessionToRemoteHost"
        }
        None => "AWS-StartPortForwardingSession",
    };
    let start = clients
        .start_session(&p.ssm_target(), document, &params)
        .await?;
    let session_id = start.session_id.clone();
    let mut ch = channel::open(clients, start).await?;
    if ch.session_type != session_type::PORT {
        return Err(broke(format!(
            "session {session_id} is a {} session, not port forwarding",
            ch.session_type
        )));
    }
    let dest = host.map_or_else(
        || format!("port {port} of task {}", p.task_id()),
        |h| format!("{h}:{port} through task {}", p.task_id()),
    );
    printer.info(&format!(
        "exec: forwarding 127.0.0.1:{bound} to {dest} (session {session_id}); Ctrl-C ends it"
    ));
    let mut sigint = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt()).ok();
    loop {
        let conn = tokio::select! {
            c = listener.accept() => match c {
                Ok((c, _)) => c,
                Err(_) => continue,
            },
            e = ch.events.recv() => match e {
                Some(Event::Closed { .. }) | None => return Ok(0),
                Some(Event::Failed { error }) => return Err(broke(format!("the session failed: {error}"))),
                _ => continue,
            },
            _ = interrupted(&mut sigint) => return stop(clients, &ch).await,
        };
        let _ = conn.set_nodelay(true);
        match relay(conn, &mut ch, &mut sigint, printer).await? {
            Relay::Next => {
                ch.handle
                    .send(PayloadType::Flag, Flag::DisconnectToPort.to_payload())
                    .await;
            }
            Relay::Ended => return Ok(0),
            Relay::Interrupted => return stop(clients, &ch).await,
        }
    }
}

async fn interrupted(s: &mut Option<tokio::signal::unix::Signal>) {
    match s {
        Some(s) => {
            s.recv().await;
        }
        None => std::future::pending().await,
    }
}

async fn stop(clients: &Clients, ch: &Channel) -> Result<u8> {
    ch.handle
        .send(PayloadType::Flag, Flag::TerminateSession.to_payload())
        .await;
    let _ = clients.terminate_session(&ch.session_id).await;
    Ok(0)
}

enum Relay {
    /// The local connection closed: take the next one.
    Next,
    /// The session ended.
    Ended,
    Interrupted,
}

/// Joins one local connection to the session until either side ends.
async fn relay(
    mut conn: TcpStream,
    ch: &mut Channel,
    sigint: &mut Option<tokio::signal::unix::Signal>,
    printer: &Printer,
) -> Result<Relay> {
    let mut buf = vec![0u8; cortado_ssm_session::stream::CHUNK];
    loop {
        tokio::select! {
            n = conn.read(&mut buf) => match n {
                Ok(n) if n > 0 => {
                    if !ch.handle.send(PayloadType::Output, buf[..n].to_vec()).await {
                        return Ok(Relay::Ended);
                    }
                }
                _ => return Ok(Relay::Next),
            },
            e = ch.events.recv() => match e {
                Some(Event::Data { payload_type: PayloadType::Output, payload }) => {
                    let written = conn.write_all(&payload).await;
                    if written.is_err() {
                        return Ok(Relay::Next);
                    }
                }
                Some(Event::Data { payload_type: PayloadType::Flag, payload })
                    if Flag::from_payload(&payload) == Some(Flag::ConnectToPortError) =>
                {
                    printer.info("exec: the agent could not connect to the destination port (is anything listening there?)");
                    return Ok(Relay::Next);
                }
                Some(Event::Reconnecting { reason }) => printer.info(&format!("exec: {reason}; reconnecting")),
                Some(Event::Closed { .. }) | None => return Ok(Relay::Ended),
                Some(Event::Failed { error }) => return Err(broke(format!("the session failed: {error}"))),
                _ => {}
            },
            _ = interrupted(sigint) => return Ok(Relay::Interrupted),
        }
    }
}
