//! The data channel (`GET /v1/data-channel/{id}`): a WebSocket per connection, the faults that
//! lose, reorder and cut its messages, and the agent side that runs the session's app (the
//! built-in shell over an emulated terminal, or a loopback port forward).
//!
//! Receives upgraded connections with the session id; hands on frames between the client and
//! the agent end of `cortado-ssm-session`.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, State};
use axum::response::Response;
use cortado_ssm_session::message::{AgentMessage, types};
use cortado_ssm_session::payload::{Flag, OpenDataChannelInput, SizeData};
use cortado_ssm_session::{Command, Event, Frame, Handle, PayloadType, Transport};
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

use super::sessions::App;
use crate::faults::ExecFaults;
use crate::minishell::{Fs, Input, Shell, Term};
use crate::shared::Shared;

/// `GET /v1/data-channel/{id}`: the WebSocket of a session.
pub async fn data_channel(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    ws: WebSocketUpgrade,
) -> Response {
    ws.on_upgrade(move |socket| serve(shared, id, socket))
}

/// What a new connection joins.
struct Joined {
    attach: mpsc::Sender<Transport>,
    start: Option<(App, Handle, mpsc::Receiver<Event>)>,
    faults: ExecFaults,
    cut: Option<u64>,
}

fn join(shared: &Shared, id: &str, token: &str) -> Result<Joined, String> {
    let mut inner = shared.lock();
    let faults = inner.world.faults.exec.clone();
    let e = inner
        .exec
        .entries
        .get_mut(id)
        .filter(|e| !e.ended)
        .ok_or_else(|| format!("session {id} does not exist or has ended"))?;
    if e.token != token {
        return Err("the token is not this session's".into());
    }
    let cut = faults.drop_after.filter(|_| !e.dropped);
    e.dropped |= cut.is_some();
    let mut start = None;
    if e.attach.is_none() {
        let (handle, events, attach) = cortado_ssm_session::start_agent(e.agent.clone());
        e.attach = Some(attach);
        e.handle = Some(handle.clone());
        start = Some((e.app.clone(), handle, events));
    }
    let attach = e.attach.clone().ok_or("no agent")?;
    Ok(Joined {
        attach,
        start,
        faults,
        cut,
    })
}

async fn serve(shared: Arc<Shared>, id: String, mut socket: WebSocket) {
    let open = match tokio::time::timeout(Duration::from_secs(30), socket.recv()).await {
        Ok(Some(Ok(Message::Text(t)))) => serde_json::from_str::<OpenDataChannelInput>(&t).ok(),
        _ => None,
    };
    let Some(open) = open else {
        let _ = socket.send(Message::Close(None)).await;
        return;
    };
    let joined = match join(&shared, &id, &open.token_value) {
        Ok(j) => j,
        Err(why) => {
            let frame = axum::extract::ws::CloseFrame {
                code: 1008,
                reason: why.into(),
            };
            let _ = socket.send(Message::Close(Some(frame))).await;
            return;
        }
    };
    let transport = pump(socket, joined.faults, joined.cut);
    if let Some((app, handle, events)) = joined.start {
        tokio::spawn(run_app(app, handle, events));
    }
    let _ = joined.attach.send(transport).await;
}

/// The socket as a transport, with the data channel faults applied.
fn pump(socket: WebSocket, faults: ExecFaults, cut: Option<u64>) -> Transport {
    let (mut sink, mut source) = socket.split();
    let (out_tx, mut out_rx) = mpsc::channel::<Frame>(512);
    let (in_tx, in_rx) = mpsc::channel::<Frame>(512);
    let lose_input: HashSet<i64> = faults.lose_input.iter().copied().collect();
    let reader = tokio::spawn(async move {
        let mut lost = HashSet::new();
        while let Some(Ok(m)) = source.next().await {
            let f = match m {
                Message::Binary(b) => Frame::Binary(b.to_vec()),
                Message::Text(t) => Frame::Text(t.to_string()),
                Message::Close(_) => break,
                _ => continue,
            };
            if let Frame::Binary(b) = &f
                && let Ok(m) = AgentMessage::decode(b)
                && m.message_type == types::INPUT_STREAM_DATA
                && lose_input.contains(&m.sequence_number)
                && lost.insert(m.sequence_number)
            {
                continue;
            }
            if in_tx.send(f).await.is_err() {
                break;
            }
        }
    });
    tokio::spawn(async move {
        let (mut lost, mut reordered) = (HashSet::new(), HashSet::new());
        let mut held: Option<Message> = None;
        let mut sent = 0u64;
        while let Some(f) = out_rx.recv().await {
            let msg = match f {
                Frame::Binary(b) => {
                    if let Ok(m) = AgentMessage::decode(&b)
                        && m.message_type == types::OUTPUT_STREAM_DATA
                    {
                        let seq = m.sequence_number;
                        if faults.lose.contains(&seq) && lost.insert(seq) {
                            continue;
                        }
                        sent += 1;
                        if cut == Some(sent) {
                            reader.abort();
                            let _ = sink.send(Message::Close(None)).await;
                            return;
                        }
                        if faults.reorder.contains(&seq) && reordered.insert(seq) {
                            held = Some(Message::Binary(b.into()));
                            continue;
                        }
                    }
                    Message::Binary(b.into())
                }
                Frame::Text(t) => Message::Text(t.into()),
            };
            if sink.send(msg).await.is_err() {
                break;
            }
            if let Some(h) = held.take()
                && sink.send(h).await.is_err()
            {
                break;
            }
        }
        reader.abort();
        let _ = sink.send(Message::Close(None)).await;
    });
    Transport {
        tx: out_tx,
        rx: in_rx,
    }
}

/// Waits for the client's handshake; false when the session ended first.
async fn client_ready(events: &mut mpsc::Receiver<Event>) -> bool {
    loop {
        match events.recv().await {
            Some(Event::ClientReady { .. }) => return true,
            Some(Event::Closed { .. } | Event::Failed { .. }) | None => return false,
            _ => {}
        }
    }
}

async fn run_app(app: App, handle: Handle, mut events: mpsc::Receiver<Event>) {
    if !client_ready(&mut events).await {
        return;
    }
    match app {
        App::Shell {
            command,
            env,
            hostname,
            fs,
        } => {
            // The client sends its terminal size right after the handshake; the command starts
            // with it when it comes within a moment (else with the pty's default, 80x24).
            let first = tokio::time::timeout(Duration::from_millis(200), events.recv())
                .await
                .ok()
                .flatten();
            run_shell(&command, env, hostname, fs, handle, events, first).await
        }
        App::Port { host, port } => run_port(&host, port, handle, events).await,
    }
}

async fn run_shell(
    command: &str,
    env: Vec<(String, String)>,
    hostname: String,
    fs: Arc<Mutex<Fs>>,
    handle: Handle,
    mut events: mpsc::Receiver<Event>,
    first: Option<Event>,
) {
    let (in_tx, in_rx) = mpsc::channel(256);
    if let Some(Event::Data {
        payload_type: PayloadType::Size,
        payload,
    }) = &first
        && let Ok(size) = serde_json::from_slice::<SizeData>(payload)
    {
        let _ = in_tx
            .send(Input::Size {
                cols: size.cols,
                rows: size.rows,
            })
            .await;
    } else if let Some(Event::Data {
        payload_type: PayloadType::Output,
        payload,
    }) = first
    {
        let _ = in_tx.send(Input::Bytes(payload)).await;
    }
    let (out_tx, mut out_rx) = mpsc::channel::<Vec<u8>>(256);
    let h = handle.clone();
    let output = tokio::spawn(async move {
        while let Some(b) = out_rx.recv().await {
            if !h.send_chunked(PayloadType::Output, &b).await {
                break;
            }
        }
    });
    let input = tokio::spawn(async move {
        while let Some(e) = events.recv().await {
            let i = match e {
                Event::Data {
                    payload_type: PayloadType::Output,
                    payload,
                } => Input::Bytes(payload),
                Event::Data {
                    payload_type: PayloadType::Size,
                    payload,
                } => match serde_json::from_slice::<SizeData>(&payload) {
                    Ok(s) => Input::Size {
                        cols: s.cols,
                        rows: s.rows,
                    },
                    Err(_) => continue,
                },
                Event::Data {
                    payload_type: PayloadType::Flag,
                    payload,
                } if Flag::from_payload(&payload) == Some(Flag::TerminateSession) => break,
                Event::Closed { .. } | Event::Failed { .. } => break,
                _ => continue,
            };
            if in_tx.send(i).await.is_err() {
                break;
            }
        }
    });
    let mut shell = Shell::new(Term::new(in_rx, out_tx), fs, env, hostname);
    let _status = shell.run_command(command).await;
    drop(shell);
    let _ = output.await;
    input.abort();
    handle
        .command(Command::CloseWhenDrained(String::new()))
        .await;
}

/// The agent's basic port session, to loopback only.
async fn run_port(host: &str, port: u16, handle: Handle, mut events: mpsc::Receiver<Event>) {
    let loopback = matches!(host, "localhost" | "127.0.0.1" | "::1" | "[::1]");
    let dial = || async move {
        if !loopback {
            return None;
        }
        tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .ok()
    };
    let mut conn = dial().await;
    if conn.is_none() {
        handle
            .send(PayloadType::Flag, Flag::ConnectToPortError.to_payload())
            .await;
    }
    let mut buf = vec![0u8; cortado_ssm_session::stream::CHUNK];
    loop {
        tokio::select! {
            e = events.recv() => match e {
                Some(Event::Data { payload_type: PayloadType::Output, payload }) => {
                    if conn.is_none() {
                        conn = dial().await;
                    }
                    match conn.as_mut() {
                        Some(c) => if c.write_all(&payload).await.is_err() { conn = None },
                        None => {
                            handle.send(PayloadType::Flag, Flag::ConnectToPortError.to_payload()).await;
                        }
                    }
                }
                Some(Event::Data { payload_type: PayloadType::Flag, payload }) => {
                    match Flag::from_payload(&payload) {
                        Some(Flag::DisconnectToPort) => conn = None,
                        Some(Flag::TerminateSession) => break,
                        _ => {}
                    }
                }
                Some(Event::Closed { .. } | Event::Failed { .. }) | None => return,
                _ => {}
            },
            n = read_some(conn.as_mut(), &mut buf), if conn.is_some() => {
                match n {
                    Ok(n) if n > 0 => {
                        if !handle.send(PayloadType::Output, buf[..n].to_vec()).await {
                            return;
                        }
                    }
                    // The destination closed: redial on the client's next data.
                    _ => conn = None,
                }
            }
        }
    }
    handle
        .command(Command::CloseWhenDrained(String::new()))
        .await;
}

/// Reads from the destination; never ready without one (the branch is disabled then).
async fn read_some(
    c: Option<&mut tokio::net::TcpStream>,
    buf: &mut [u8],
) -> std::io::Result<usize> {
    match c {
        Some(c) => c.read(buf).await,
        None => std::future::pending().await,
    }
}
