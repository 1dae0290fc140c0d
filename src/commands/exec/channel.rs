//! Opening a session's data channel: the WebSocket to its stream URL, the handshake, and
//! reconnection through SSM ResumeSession when the connection drops.
//!
//! Receives a started session ([`SessionStart`]); hands on a [`Channel`] whose handshake is
//! complete (the session type the agent named, the events that follow).

use std::sync::Arc;
use std::time::Duration;

use cortado_ssm_session::{ClientOptions, Event, Handle, Reconnect, start_client, ws};
use tokio::sync::mpsc;

use crate::aws::Clients;
use crate::aws::exec::SessionStart;
use crate::error::{Diagnostic, Error, ErrorKind, Result};

/// The version cortado declares in the handshake. Agents multiplex port-forwarding
/// connections (smux) for clients from 1.1.70 on (amazon-ssm-agent
/// `agent/session/plugins/port/port.go`, `muxSupportedClientVersion`); below it they forward
/// one connection at a time (`port_basic.go`), which is what cortado implements.
pub(super) const CLIENT_VERSION: &str = "1.0.0.0";

/// How long the WebSocket and the handshake may take.
const HANDSHAKE: Duration = Duration::from_secs(30);

/// A session whose handshake is complete.
pub(super) struct Channel {
    pub handle: Handle,
    pub events: mpsc::Receiver<Event>,
    pub session_id: String,
    pub session_type: String,
    /// The agent's message at the end of the handshake, if any.
    pub customer_message: String,
}

/// Text from the service or the agent, with control characters blanked (it is untrusted and
/// goes to the user's terminal).
pub(super) fn plain(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

fn failed(what: &str, why: impl std::fmt::Display) -> Error {
    Error::new(
        ErrorKind::Aws,
        Diagnostic::error(format!("{what}: {}", plain(&why.to_string())))
            .hint("check that this machine reaches the session's stream URL (ssmmessages.REGION.amazonaws.com on 443); behind a proxy or a VPC endpoint, the endpoint for Session Manager must exist too"),
    )
}

/// Connects to a session and completes the handshake.
pub(super) async fn open(clients: &Clients, start: SessionStart) -> Result<Channel> {
    let url = start.stream_url.clone();
    let transport = tokio::time::timeout(HANDSHAKE, ws::connect(&url))
        .await
        .map_err(|_| failed("connecting to the session", "timed out"))?
        .map_err(|e| failed("connecting to the session", e))?;
    let resume_clients = clients.clone();
    let session_id = start.session_id.clone();
    let reconnect = Reconnect {
        resume: Arc::new(move || {
            let (c, id) = (resume_clients.clone(), session_id.clone());
            Box::pin(async move {
                c.resume_session(&id).await.map_err(|e| {
                    e.diagnostics
                        .first()
                        .map(|d| d.message.clone())
                        .unwrap_or_default()
                })
            })
        }),
        connect: Arc::new(move || {
            let url = url.clone();
            Box::pin(async move { ws::connect(&url).await })
        }),
        attempts: 5,
    };
    let (handle, mut events) = start_client(
        transport,
        ClientOptions {
            token: start.token,
            client_id: cortado_ssm_session::MessageId::random().to_string(),
            client_version: CLIENT_VERSION.into(),
            reconnect: Some(reconnect),
        },
    );
    let mut session_type = String::new();
    let deadline = tokio::time::Instant::now() + HANDSHAKE;
    loop {
        let e = tokio::time::timeout_at(deadline, events.recv())
            .await
            .map_err(|_| failed("the session's handshake", "timed out"))?;
        match e {
            Some(Event::Handshake {
                session_type: t, ..
            }) => session_type = t,
            Some(Event::Ready { customer_message }) => {
                return Ok(Channel {
                    handle,
                    events,
                    session_id: start.session_id,
                    session_type,
                    customer_message,
                });
            }
            Some(Event::Closed { reason }) => {
                return Err(failed("the session closed during the handshake", reason));
            }
            Some(Event::Failed { error }) => return Err(failed("the session failed", error)),
            None => return Err(failed("the session", "ended during the handshake")),
            Some(_) => {}
        }
    }
}
