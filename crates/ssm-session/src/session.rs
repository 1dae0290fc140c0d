//! One end of a data channel, running: the [`Stream`] of its role, the handshake, and the
//! connection under it, which can be replaced (a client reconnects with a token from
//! ResumeSession; the agent side is handed the new connection).
//!
//! Receives a [`Transport`] (frames in and out, whatever carries them: a WebSocket here, an
//! in-memory pair in tests) and [`Command`]s through a [`Handle`]; hands on [`Event`]s.
//!
//! The handshake follows aws/session-manager-plugin `src/datachannel/streaming.go`
//! (`handleHandshakeRequest`, `handleHandshakeComplete`, `HandleChannelClosedMessage`) and the
//! agent's `agent/session/datachannel/datachannel.go` (`PerformHandshake`,
//! `buildHandshakeRequestPayload`, `handleHandshakeResponse`, `sendHandshakeComplete`): the
//! agent sends a HandshakeRequest naming the session type (and, for a KMS-encrypted session,
//! a KMSEncryption action); the client answers with a HandshakeResponse (one processed action
//! each, and its version); the agent sends HandshakeComplete; then data flows. An agent that
//! sends no handshake (older agents) is taken to run a shell, as `ProcessFirstMessage` does.
//! This crate does not do KMS encryption: a KMSEncryption action is answered as failed, and
//! the agent ends the session.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::sync::mpsc;

use crate::message::{AgentMessage, FLAG_SYN, PayloadType, types};
use crate::payload::{
    AcknowledgeContent, ChannelClosed, HandshakeComplete, HandshakeRequest, HandshakeResponse,
    OpenDataChannelInput, ProcessedClientAction, RequestedClientAction, SessionTypeRequest, action,
    action_status, session_type,
};
use crate::stream::{Role, Stream};

/// One frame of the connection under the channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    Binary(Vec<u8>),
    Text(String),
}

/// A connection: frames to send and frames received. The connection is gone when `rx` ends.
pub struct Transport {
    pub tx: mpsc::Sender<Frame>,
    pub rx: mpsc::Receiver<Frame>,
}

impl Transport {
    /// Two ends joined in memory.
    pub fn pair(capacity: usize) -> (Transport, Transport) {
        let (a_tx, b_rx) = mpsc::channel(capacity);
        let (b_tx, a_rx) = mpsc::channel(capacity);
        (
            Transport { tx: a_tx, rx: a_rx },
            Transport { tx: b_tx, rx: b_rx },
        )
    }
}

/// What a running channel tells its owner.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// Client: the agent's handshake request (its version, the session type and properties).
    Handshake {
        agent_version: String,
        session_type: String,
        properties: Value,
    },
    /// Client: the handshake is complete; data may flow. The agent's message, if any.
    Ready {
        customer_message: String,
    },
    /// Agent: the client answered the handshake; data may flow.
    ClientReady {
        client_version: String,
    },
    /// Stream data of the other side, in order.
    Data {
        payload_type: PayloadType,
        payload: Vec<u8>,
    },
    /// The connection dropped; a new one is being made (client) or awaited (agent).
    Reconnecting {
        reason: String,
    },
    Reconnected,
    /// Client: the service closed the channel; `reason` is its `Output` (empty when the
    /// session simply ended). Agent: the channel was closed from this side.
    Closed {
        reason: String,
    },
    /// The channel broke and will not recover.
    Failed {
        error: String,
    },
}

/// What the owner asks of a running channel.
#[derive(Debug)]
pub enum Command {
    Data(PayloadType, Vec<u8>),
    /// Agent: once everything sent is acknowledged, send `channel_closed` with this output and
    /// end (what the service does after the agent reports the session terminating).
    CloseWhenDrained(String),
    /// End now, without closing anything remotely.
    Stop,
}

/// The owner's side of a running channel. Sending waits while the window is full.
#[derive(Clone)]
pub struct Handle {
    tx: mpsc::Sender<Command>,
}

impl Handle {
    /// Sends stream data; false once the channel has ended.
    pub async fn send(&self, payload_type: PayloadType, payload: Vec<u8>) -> bool {
        self.tx
            .send(Command::Data(payload_type, payload))
            .await
            .is_ok()
    }

    /// Sends `data` cut into payloads of [`crate::stream::CHUNK`] bytes.
    pub async fn send_chunked(&self, payload_type: PayloadType, data: &[u8]) -> bool {
        for c in data.chunks(crate::stream::CHUNK) {
            if !self.send(payload_type, c.to_vec()).await {
                return false;
            }
        }
        true
    }

    pub async fn command(&self, c: Command) -> bool {
        self.tx.send(c).await.is_ok()
    }

    /// [`Handle::command`] from synchronous code; false when the queue is full or closed.
    pub fn try_command(&self, c: Command) -> bool {
        self.tx.try_send(c).is_ok()
    }
}

/// A boxed future, for the client's reconnect hooks.
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// How a client makes a new connection after one dropped.
#[derive(Clone)]
pub struct Reconnect {
    /// A fresh token (SSM ResumeSession); `Ok(None)` when the session is over.
    pub resume: Arc<dyn Fn() -> BoxFuture<Result<Option<String>, String>> + Send + Sync>,
    /// A new connection to the stream URL.
    pub connect: Arc<dyn Fn() -> BoxFuture<Result<Transport, String>> + Send + Sync>,
    /// Attempts before giving up (`DataChannelNumMaxRetries`: 5).
    pub attempts: u32,
}

/// Client-side settings.
#[derive(Clone)]
pub struct ClientOptions {
    pub token: String,
    pub client_id: String,
    /// The version this client declares in its handshake response and open frame.
    pub client_version: String,
    pub reconnect: Option<Reconnect>,
}

/// Agent-side settings.
#[derive(Debug, Clone)]
pub struct AgentOptions {
    pub agent_version: String,
    pub session_id: String,
    pub target_id: String,
    pub session: SessionTypeRequest,
    /// Request KMS encryption with this key (the client must take part).
    pub kms_key_id: Option<String>,
}

/// Starts the client end over a connected transport: sends the open frame, then runs.
pub fn start_client(
    transport: Transport,
    options: ClientOptions,
) -> (Handle, mpsc::Receiver<Event>) {
    let (cmd_tx, cmd_rx) = mpsc::channel(64);
    let (ev_tx, ev_rx) = mpsc::channel(256);
    let engine = Engine::new(Role::Client, ev_tx, Side::Client(options));
    tokio::spawn(engine.run(Some(transport), cmd_rx, None));
    (Handle { tx: cmd_tx }, ev_rx)
}

/// Starts the agent end. Connections come through the returned sender (the first one, and a
/// new one whenever the client reconnects); the agent starts its handshake on the first.
pub fn start_agent(
    options: AgentOptions,
) -> (Handle, mpsc::Receiver<Event>, mpsc::Sender<Transport>) {
    let (cmd_tx, cmd_rx) = mpsc::channel(64);
    let (ev_tx, ev_rx) = mpsc::channel(256);
    let (attach_tx, attach_rx) = mpsc::channel(4);
    let engine = Engine::new(Role::Agent, ev_tx, Side::Agent(options));
    tokio::spawn(engine.run(None, cmd_rx, Some(attach_rx)));
    (Handle { tx: cmd_tx }, ev_rx, attach_tx)
}

enum Side {
    Client(ClientOptions),
    Agent(AgentOptions),
}

/// Where the handshake stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Handshaking,
    Open,
}

struct Engine {
    stream: Stream,
    events: mpsc::Sender<Event>,
    side: Side,
    phase: Phase,
    paused: bool,
    closing: Option<String>,
    done: bool,
    /// Data the owner sent before the handshake completed, sent once it has.
    held: Vec<(PayloadType, Vec<u8>)>,
}

/// How often the resend timer looks (`ResendSleepInterval` is 100 ms; finer here so a loss
/// on a fast link costs little).
const TICK: Duration = Duration::from_millis(20);

impl Engine {
    fn new(role: Role, events: mpsc::Sender<Event>, side: Side) -> Engine {
        Engine {
            stream: Stream::new(role),
            events,
            side,
            phase: Phase::Handshaking,
            paused: false,
            closing: None,
            done: false,
            held: Vec::new(),
        }
    }

    async fn emit(&self, e: Event) {
        let _ = self.events.send(e).await;
    }

    async fn run(
        mut self,
        first: Option<Transport>,
        mut commands: mpsc::Receiver<Command>,
        mut attach: Option<mpsc::Receiver<Transport>>,
    ) {
        let mut transport = match first {
            Some(t) => Some(t),
            None => match attach.as_mut() {
                Some(a) => a.recv().await,
                None => None,
            },
        };
        let Some(t) = transport.as_ref() else {
            return;
        };
        if !self.on_connected(t, true).await {
            return;
        }
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        while !self.done {
            let Some(t) = transport.as_mut() else { break };
            let accept = !self.paused && self.closing.is_none() && self.stream.has_room();
            tokio::select! {
                frame = t.rx.recv() => match frame {
                    Some(Frame::Binary(b)) => self.on_frame(&t.tx, &b).await,
                    Some(Frame::Text(_)) => {}
                    None => {
                        transport = self.replace(attach.as_mut(), "the connection closed").await;
                    }
                },
                cmd = commands.recv(), if accept => self.on_command(&t.tx, cmd).await,
                new = recv_opt(&mut attach) => {
                    if let Some(new) = new {
                        transport = Some(new);
                        if let Some(t) = transport.as_ref() && !self.on_connected(t, false).await {
                            break;
                        }
                        self.emit(Event::Reconnected).await;
                    }
                }
                _ = tick.tick() => {
                    if !self.on_tick(&t.tx).await {
                        break;
                    }
                }
            }
        }
    }

    /// A new connection: the client sends its open frame (and, when it reconnects, all it
    /// has in flight); the agent starts the handshake on its first connection.
    async fn on_connected(&mut self, t: &Transport, first: bool) -> bool {
        if let Side::Client(o) = &self.side {
            let open = OpenDataChannelInput {
                message_schema_version: "1.0".into(),
                request_id: crate::message::MessageId::random().to_string(),
                token_value: o.token.clone(),
                client_id: o.client_id.clone(),
                client_version: o.client_version.clone(),
            };
            let text = serde_json::to_string(&open).unwrap_or_default();
            if t.tx.send(Frame::Text(text)).await.is_err() {
                return false;
            }
        }
        if !first {
            for w in self.stream.all_unacked(Instant::now()) {
                let _ = t.tx.send(Frame::Binary(w)).await;
            }
            return true;
        }
        if let Side::Agent(o) = &self.side {
            let mut actions = vec![RequestedClientAction {
                action_type: action::SESSION_TYPE.into(),
                action_parameters: serde_json::to_value(&o.session).unwrap_or_default(),
            }];
            if let Some(key) = &o.kms_key_id {
                actions.push(RequestedClientAction {
                    action_type: action::KMS_ENCRYPTION.into(),
                    action_parameters: serde_json::json!({"KMSKeyId": key}),
                });
            }
            let req = HandshakeRequest {
                agent_version: o.agent_version.clone(),
                requested_client_actions: actions,
            };
            let payload = serde_json::to_vec(&req).unwrap_or_default();
            let w = self
                .stream
                .push(PayloadType::HandshakeRequest, payload, Instant::now());
            let _ = t.tx.send(Frame::Binary(w)).await;
        }
        true
    }

    /// The connection is gone: a client makes a new one; an agent waits to be handed one.
    async fn replace(
        &mut self,
        attach: Option<&mut mpsc::Receiver<Transport>>,
        why: &str,
    ) -> Option<Transport> {
        if self.done {
            return None;
        }
        self.emit(Event::Reconnecting {
            reason: why.to_string(),
        })
        .await;
        if let Some(a) = attach {
            let t = a.recv().await?;
            if !self.on_connected(&t, false).await {
                return None;
            }
            self.emit(Event::Reconnected).await;
            return Some(t);
        }
        let Side::Client(o) = &self.side else {
            return None;
        };
        let Some(rc) = o.reconnect.clone() else {
            self.fail(format!("{why} and no reconnect is set")).await;
            return None;
        };
        let mut delay = Duration::from_millis(100);
        let mut last = String::new();
        for _ in 0..rc.attempts.max(1) {
            match (rc.resume)().await {
                Ok(None) => {
                    self.emit(Event::Closed {
                        reason: "the session timed out".into(),
                    })
                    .await;
                    self.done = true;
                    return None;
                }
                Ok(Some(token)) => {
                    if let Side::Client(o) = &mut self.side {
                        o.token = token;
                    }
                    match (rc.connect)().await {
                        Ok(t) => {
                            if self.on_connected(&t, false).await {
                                self.emit(Event::Reconnected).await;
                                return Some(t);
                            }
                            last = "the new connection closed at once".into();
                        }
                        Err(e) => last = e,
                    }
                }
                Err(e) => last = e,
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_secs(5));
        }
        self.fail(format!("{why}; reconnecting failed: {last}"))
            .await;
        None
    }

    async fn fail(&mut self, error: String) {
        self.done = true;
        self.emit(Event::Failed { error }).await;
    }

    async fn on_command(&mut self, tx: &mpsc::Sender<Frame>, cmd: Option<Command>) {
        match cmd {
            Some(Command::Data(pt, payload)) if self.phase != Phase::Open => {
                self.held.push((pt, payload));
            }
            Some(Command::Data(pt, payload)) => {
                let w = self.stream.push(pt, payload, Instant::now());
                let _ = tx.send(Frame::Binary(w)).await;
            }
            Some(Command::CloseWhenDrained(output)) => {
                self.closing = Some(output);
                self.close_if_drained(tx).await;
            }
            Some(Command::Stop) | None => self.done = true,
        }
    }

    async fn close_if_drained(&mut self, tx: &mpsc::Sender<Frame>) {
        let Some(output) = self.closing.clone() else {
            return;
        };
        if self.stream.unacked() > 0 {
            return;
        }
        if let Side::Agent(o) = &self.side {
            let m = AgentMessage::new(
                types::CHANNEL_CLOSED,
                0,
                FLAG_SYN | crate::message::FLAG_FIN,
            );
            let content = ChannelClosed {
                message_id: m.message_id.to_string(),
                created_date: crate::now_millis().to_string(),
                destination_id: o.target_id.clone(),
                session_id: o.session_id.clone(),
                message_type: types::CHANNEL_CLOSED.into(),
                schema_version: 1,
                output: output.clone(),
            };
            let payload = serde_json::to_vec(&content).unwrap_or_default();
            let _ = tx
                .send(Frame::Binary(
                    m.with_payload(PayloadType::Other(0), payload).encode(),
                ))
                .await;
        }
        self.done = true;
        self.emit(Event::Closed { reason: output }).await;
    }

    async fn on_tick(&mut self, tx: &mpsc::Sender<Frame>) -> bool {
        match self.stream.due(Instant::now()) {
            Ok(wires) => {
                for w in wires {
                    let _ = tx.send(Frame::Binary(w)).await;
                }
                true
            }
            Err(e) => {
                self.fail(format!(
                    "message {} was resent {} times without an acknowledgement",
                    e.sequence_number,
                    crate::stream::MAX_ATTEMPTS
                ))
                .await;
                false
            }
        }
    }

    async fn on_frame(&mut self, tx: &mpsc::Sender<Frame>, bytes: &[u8]) {
        let msg = match AgentMessage::decode(bytes) {
            Ok(m) => m,
            // A corrupt frame is dropped; the sender resends it.
            Err(_) => return,
        };
        let incoming = self.stream.role().incoming_type();
        match msg.message_type.as_str() {
            t if t == incoming => {
                let r = self.stream.receive(msg);
                if let Some(a) = r.ack {
                    let _ = tx.send(Frame::Binary(a)).await;
                }
                for m in r.delivered {
                    self.deliver(tx, m).await;
                }
            }
            types::ACKNOWLEDGE => {
                if let Ok(ack) = serde_json::from_slice::<AcknowledgeContent>(&msg.payload) {
                    self.stream.acknowledged(&ack, Instant::now());
                    self.close_if_drained(tx).await;
                }
            }
            types::CHANNEL_CLOSED => {
                let c: Option<ChannelClosed> = serde_json::from_slice(&msg.payload).ok();
                self.done = true;
                self.emit(Event::Closed {
                    reason: c.map(|c| c.output).unwrap_or_default(),
                })
                .await;
            }
            types::PAUSE_PUBLICATION => self.paused = true,
            types::START_PUBLICATION => self.paused = false,
            _ => {}
        }
    }

    /// An in-order message of the other side.
    async fn deliver(&mut self, tx: &mpsc::Sender<Frame>, m: AgentMessage) {
        match (&self.side, m.payload_type) {
            (Side::Client(_), PayloadType::HandshakeRequest) => self.answer_handshake(tx, &m).await,
            (Side::Client(_), PayloadType::HandshakeComplete) => {
                let c: Option<HandshakeComplete> = serde_json::from_slice(&m.payload).ok();
                self.open(tx).await;
                self.emit(Event::Ready {
                    customer_message: c.map(|c| c.customer_message).unwrap_or_default(),
                })
                .await;
            }
            (Side::Client(_), PayloadType::EncChallengeRequest) => {
                self.fail("the agent asked for an encryption challenge (KMS-encrypted sessions are not supported)".into()).await;
            }
            (Side::Agent(_), PayloadType::HandshakeResponse) => {
                self.handshake_answered(tx, &m).await
            }
            (Side::Client(_), _) if self.phase == Phase::Handshaking => {
                // An agent without handshake: its first output means a shell session.
                self.open(tx).await;
                self.emit(Event::Handshake {
                    agent_version: String::new(),
                    session_type: session_type::STANDARD_STREAM.into(),
                    properties: Value::Null,
                })
                .await;
                self.emit(Event::Ready {
                    customer_message: String::new(),
                })
                .await;
                self.data(m).await;
            }
            // The agent ignores stream data until the handshake is complete.
            (Side::Agent(_), _) if self.phase == Phase::Handshaking => {}
            _ => self.data(m).await,
        }
    }

    /// The handshake is done: data may flow, held data first.
    async fn open(&mut self, tx: &mpsc::Sender<Frame>) {
        self.phase = Phase::Open;
        for (pt, payload) in std::mem::take(&mut self.held) {
            let w = self.stream.push(pt, payload, Instant::now());
            let _ = tx.send(Frame::Binary(w)).await;
        }
    }

    async fn data(&self, m: AgentMessage) {
        self.emit(Event::Data {
            payload_type: m.payload_type,
            payload: m.payload,
        })
        .await;
    }

    /// Client: one processed action per requested one (`handleHandshakeRequest`).
    async fn answer_handshake(&mut self, tx: &mpsc::Sender<Frame>, m: &AgentMessage) {
        let Side::Client(o) = &self.side else { return };
        let client_version = o.client_version.clone();
        let req: HandshakeRequest = match serde_json::from_slice(&m.payload) {
            Ok(r) => r,
            Err(e) => {
                self.fail(format!(
                    "the agent's handshake request is not valid JSON: {e}"
                ))
                .await;
                return;
            }
        };
        let mut processed = Vec::new();
        let mut errors = Vec::new();
        let mut session: Option<SessionTypeRequest> = None;
        for a in &req.requested_client_actions {
            let (status, error) = match a.action_type.as_str() {
                action::SESSION_TYPE => {
                    match serde_json::from_value::<SessionTypeRequest>(a.action_parameters.clone())
                    {
                        Ok(s) => {
                            session = Some(s);
                            (action_status::SUCCESS, String::new())
                        }
                        Err(e) => (
                            action_status::FAILED,
                            format!("bad SessionType parameters: {e}"),
                        ),
                    }
                }
                action::KMS_ENCRYPTION => (
                    action_status::FAILED,
                    "KMS-encrypted sessions are not supported by this client (cortado)".to_string(),
                ),
                other => (
                    action_status::UNSUPPORTED,
                    format!("Unsupported action {other}"),
                ),
            };
            if !error.is_empty() {
                errors.push(error.clone());
            }
            processed.push(ProcessedClientAction {
                action_type: a.action_type.clone(),
                action_status: status,
                action_result: Value::Null,
                error,
            });
        }
        let resp = HandshakeResponse {
            client_version,
            processed_client_actions: processed,
            errors,
        };
        let payload = serde_json::to_vec(&resp).unwrap_or_default();
        let w = self
            .stream
            .push(PayloadType::HandshakeResponse, payload, Instant::now());
        let _ = tx.send(Frame::Binary(w)).await;
        let s = session.unwrap_or(SessionTypeRequest {
            session_type: session_type::STANDARD_STREAM.into(),
            properties: Value::Null,
        });
        self.emit(Event::Handshake {
            agent_version: req.agent_version,
            session_type: s.session_type,
            properties: s.properties,
        })
        .await;
    }

    /// Agent: the client's answer (`handleHandshakeResponse`); any failed action ends the
    /// session, as on the agent.
    async fn handshake_answered(&mut self, tx: &mpsc::Sender<Frame>, m: &AgentMessage) {
        let resp: HandshakeResponse = match serde_json::from_slice(&m.payload) {
            Ok(r) => r,
            Err(e) => {
                self.fail(format!(
                    "the client's handshake response is not valid JSON: {e}"
                ))
                .await;
                return;
            }
        };
        if let Some(bad) = resp
            .processed_client_actions
            .iter()
            .find(|a| a.action_status != action_status::SUCCESS)
        {
            let why = format!(
                "{} failed on client with status {} error: {}",
                bad.action_type, bad.action_status, bad.error
            );
            // The agent ends the session; the service tells the client why.
            self.closing = Some(why);
            self.close_if_drained(tx).await;
            return;
        }
        let complete = HandshakeComplete {
            handshake_time_to_complete: 0,
            customer_message: String::new(),
        };
        let payload = serde_json::to_vec(&complete).unwrap_or_default();
        let w = self
            .stream
            .push(PayloadType::HandshakeComplete, payload, Instant::now());
        let _ = tx.send(Frame::Binary(w)).await;
        self.open(tx).await;
        self.emit(Event::ClientReady {
            client_version: resp.client_version,
        })
        .await;
    }
}

async fn recv_opt(a: &mut Option<mpsc::Receiver<Transport>>) -> Option<Transport> {
    match a {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}
