//! ECS Exec and Session Manager sessions: ECS `ExecuteCommand`, SSM `StartSession`,
//! `ResumeSession` and `TerminateSession`, and the data channel their stream URL points at
//! (`ws://HOST/v1/data-channel/SESSION_ID`), where the sandbox plays both the Session Manager
//! service and the SSM agent, speaking the agent-message protocol of `cortado-ssm-session`.
//!
//! Receives the API calls (checked as ECS and SSM check them: the task exists and runs,
//! `enableExecuteCommand` was set when it started, the container exists, the
//! ExecuteCommandAgent is RUNNING, the task role may use `ssmmessages`) and WebSocket
//! connections (the open frame's token must be the session's current one). Hands on a
//! session whose agent side is safe on a laptop:
//! - a shell session runs [`crate::minishell`]: built-in commands over an in-memory file tree
//!   per task, never a host program or file;
//! - a port-forwarding session (AWS-StartPortForwardingSession, or ...ToRemoteHost with a
//!   loopback host) connects to `127.0.0.1:PORT` only, as the agent's basic port session does
//!   (`agent/session/plugins/port/port_basic.go`: one connection; closed on DisconnectToPort,
//!   redialled on the next data; TerminateSession ends the session). Any other host gets the
//!   ConnectToPortError flag.
//!
//! As on AWS, an interactive session's exit status is not sent: the channel closes when the
//! command ends. Faults (`{"exec": ...}`, see [`crate::faults::ExecFaults`]) lose, reorder and
//! cut the data channel's messages, and set the agent's reported status.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, State};
use axum::response::Response;
use cortado_ssm_session::message::{AgentMessage, types};
use cortado_ssm_session::payload::{
    Flag, OpenDataChannelInput, SessionTypeRequest, SizeData, session_type,
};
use cortado_ssm_session::{AgentOptions, Command, Event, Frame, Handle, PayloadType, Transport};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

use super::api::ApiError;
use super::faults::ExecFaults;
use super::iam::EXEC_ACTIONS;
use super::minishell::{Fs, Input, Shell, Term};
use super::server::{Inner, Shared};
use super::world::{Task, World};

/// The agent version the sandbox's agent declares.
const AGENT_VERSION: &str = "3.3.0.0";
/// ECS's message when exec is off or its agent is not running (InvalidParameterException).
const NOT_ENABLED: &str = "The execute command failed because execute command was not enabled when the task was run or the execute command agent isn't running. Wait and try the command again or run a new task with execute command enabled and try again.";

/// What runs behind a session.
#[derive(Clone)]
enum App {
    Shell {
        command: String,
        env: Vec<(String, String)>,
        hostname: String,
        fs: Arc<Mutex<Fs>>,
    },
    Port {
        host: String,
        port: u16,
    },
}

struct Entry {
    token: String,
    agent: AgentOptions,
    app: App,
    attach: Option<mpsc::Sender<Transport>>,
    handle: Option<Handle>,
    ended: bool,
    /// The `dropAfter` fault has cut a connection of this session already.
    dropped: bool,
}

/// The sessions of one sandbox, and each task's in-memory files.
pub struct Sessions {
    base: String,
    entries: HashMap<String, Entry>,
    files: HashMap<String, Arc<Mutex<Fs>>>,
}

impl Sessions {
    /// `base` is the WebSocket origin of the sandbox (`ws://127.0.0.1:PORT`).
    pub fn new(base: String) -> Sessions {
        Sessions {
            base,
            entries: HashMap::new(),
            files: HashMap::new(),
        }
    }

    fn create(&mut self, id: String, agent: AgentOptions, app: App) -> Value {
        let token = cortado_ssm_session::random_hex(32);
        let url = self.url(&id);
        self.entries.insert(
            id.clone(),
            Entry {
                token: token.clone(),
                agent,
                app,
                attach: None,
                handle: None,
                ended: false,
                dropped: false,
            },
        );
        json!({"sessionId": id, "streamUrl": url, "tokenValue": token})
    }

    fn url(&self, id: &str) -> String {
        format!("{}/v1/data-channel/{id}?role=publish_subscribe", self.base)
    }

    fn fs_of(&mut self, task: &Task, container: &str) -> Arc<Mutex<Fs>> {
        self.files
            .entry(task.id.clone())
            .or_insert_with(|| Arc::new(Mutex::new(Fs::for_task(&task.id, container))))
            .clone()
    }
}

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::client("InvalidParameterException", message)
}

fn short(s: &str) -> &str {
    s.rsplit('/').next().unwrap_or(s)
}

/// A running task of `cluster` and the container a session targets, checked as ECS checks
/// ExecuteCommand. Errors carry ECS's error codes.
fn exec_target<'a>(
    world: &'a World,
    cluster: &str,
    task: &str,
    container: Option<&str>,
) -> Result<(&'a Task, String), ApiError> {
    if world
        .clusters
        .get(cluster)
        .is_none_or(|c| c.status != "ACTIVE")
    {
        return Err(ApiError::client(
            "ClusterNotFoundException",
            "Cluster not found.",
        ));
    }
    let t = world
        .tasks
        .get(short(task))
        .filter(|t| t.cluster == cluster)
        .ok_or_else(|| invalid(format!("The specified task {task} was not found.")))?;
    let name = match container {
        Some(c) => t
            .containers
            .iter()
            .find(|x| x.name == c)
            .map(|x| x.name.clone())
            .ok_or_else(|| invalid(format!("The container {c} does not exist in the task.")))?,
        None if t.containers.len() == 1 => t.containers[0].name.clone(),
        None => {
            return Err(invalid(
                "A container name must be specified when the task has more than one container.",
            ));
        }
    };
    let agent_running = world
        .exec_agent(t)
        .is_some_and(|a| a["lastStatus"] == "RUNNING");
    if t.last_status != "RUNNING" || !agent_running {
        return Err(invalid(NOT_ENABLED));
    }
    // Without the ssmmessages permissions the agent never reaches Session Manager.
    let td = world.find_taskdef(&t.task_def_arn);
    let role = td
        .and_then(|d| d.get("taskRoleArn"))
        .and_then(Value::as_str)
        .unwrap_or("");
    let permitted = !role.is_empty()
        && EXEC_ACTIONS
            .iter()
            .all(|a| world.iam.decide(role, a) == Some("allowed"));
    if !permitted {
        return Err(ApiError::client(
            "TargetNotConnectedException",
            "The execute command failed due to an internal error. Try again later.",
        ));
    }
    Ok((t, name))
}

/// The plain `environment` of a container of the task's definition (never its secrets).
fn container_env(world: &World, t: &Task, container: &str) -> Vec<(String, String)> {
    world
        .find_taskdef(&t.task_def_arn)
        .and_then(|d| d.get("containerDefinitions"))
        .and_then(Value::as_array)
        .and_then(|cs| cs.iter().find(|c| c["name"] == container))
        .and_then(|c| c.get("environment"))
        .and_then(Value::as_array)
        .map(|env| {
            env.iter()
                .filter_map(|e| {
                    Some((
                        e.get("name")?.as_str()?.to_string(),
                        e.get("value")?.as_str()?.to_string(),
                    ))
                })
                .collect()
        })
        .unwrap_or_default()
}

fn kms_key(world: &World, cluster: &str) -> Option<String> {
    world
        .clusters
        .get(cluster)?
        .configuration
        .pointer("/executeCommandConfiguration/kmsKeyId")?
        .as_str()
        .map(str::to_string)
}

/// ECS `ExecuteCommand`.
pub fn execute_command(inner: &mut Inner, body: &Value) -> Result<Value, ApiError> {
    let s = |k: &str| body.get(k).and_then(Value::as_str);
    let cluster = short(s("cluster").unwrap_or("default")).to_string();
    let command = s("command").ok_or_else(|| invalid("command is required."))?;
    let task_id = s("task").ok_or_else(|| invalid("task is required."))?;
    if body.get("interactive").and_then(Value::as_bool) != Some(true) {
        return Err(invalid("Interactive is the only mode supported currently."));
    }
    let world = &inner.world;
    let (t, container) = exec_target(world, &cluster, task_id, s("container"))?;
    let c = t.containers.iter().find(|c| c.name == container);
    let runtime = c.map(|c| c.runtime_id.clone()).unwrap_or_default();
    let container_arn = world.arn(&format!("container/{cluster}/{}/{container}", t.id));
    let (task_arn, env) = (t.arn.clone(), container_env(world, t, &container));
    let hostname = format!("ip-{}.ec2.internal", t.ip.replace('.', "-"));
    let agent = AgentOptions {
        agent_version: AGENT_VERSION.into(),
        session_id: String::new(),
        target_id: format!("ecs:{cluster}_{}_{runtime}", t.id),
        session: SessionTypeRequest {
            session_type: session_type::INTERACTIVE_COMMANDS.into(),
            properties: json!({"commands": command}),
        },
        kms_key_id: kms_key(world, &cluster),
    };
    let cluster_arn = world.arn(&format!("cluster/{cluster}"));
    let t = t.clone();
    let fs = inner.exec.fs_of(&t, &container);
    let id = format!("ecs-execute-command-{}", cortado_ssm_session::random_hex(9));
    let app = App::Shell {
        command: command.to_string(),
        env,
        hostname,
        fs,
    };
    let mut agent = agent;
    agent.session_id = id.clone();
    let session = inner.exec.create(id, agent, app);
    Ok(json!({
        "clusterArn": cluster_arn, "containerArn": container_arn, "containerName": container,
        "interactive": true, "session": session, "taskArn": task_arn,
    }))
}

/// SSM's session operations; None for other SSM operations.
pub fn ssm(inner: &mut Inner, op: &str, body: &Value) -> Option<Result<Value, ApiError>> {
    match op {
        "StartSession" => Some(start_session(inner, body)),
        "ResumeSession" | "TerminateSession" => {
            let id = body.get("SessionId").and_then(Value::as_str).unwrap_or("");
            let base = inner.exec.url(id);
            let Some(e) = inner.exec.entries.get_mut(id).filter(|e| !e.ended) else {
                return Some(if op == "TerminateSession" {
                    Ok(json!({"SessionId": id}))
                } else {
                    Err(ApiError::client(
                        "DoesNotExistException",
                        format!("Session {id} does not exist or has ended."),
                    ))
                });
            };
            if op == "TerminateSession" {
                e.ended = true;
                if let Some(h) = &e.handle {
                    h.try_command(Command::CloseWhenDrained(String::new()));
                }
                return Some(Ok(json!({"SessionId": id})));
            }
            e.token = cortado_ssm_session::random_hex(32);
            Some(Ok(
                json!({"SessionId": id, "TokenValue": e.token, "StreamUrl": base}),
            ))
        }
        _ => None,
    }
}

fn param(body: &Value, name: &str) -> Option<String> {
    let v = body.get("Parameters")?.get(name)?;
    v.as_array()
        .and_then(|a| a.first())
        .and_then(Value::as_str)
        .or_else(|| v.as_str())
        .map(str::to_string)
}

fn start_session(inner: &mut Inner, body: &Value) -> Result<Value, ApiError> {
    let target = body.get("Target").and_then(Value::as_str).unwrap_or("");
    let not_connected =
        || ApiError::client("TargetNotConnected", format!("{target} is not connected."));
    let rest = target.strip_prefix("ecs:").ok_or_else(not_connected)?;
    let mut parts = rest.rsplitn(3, '_');
    let (runtime, task, cluster) = match (parts.next(), parts.next(), parts.next()) {
        (Some(r), Some(t), Some(c)) => (r, t, c),
        _ => return Err(not_connected()),
    };
    let world = &inner.world;
    let t = world
        .tasks
        .get(task)
        .filter(|t| t.cluster == cluster)
        .ok_or_else(not_connected)?;
    let container = t
        .containers
        .iter()
        .find(|c| c.runtime_id == runtime)
        .map(|c| c.name.clone())
        .ok_or_else(not_connected)?;
    exec_target(world, cluster, task, Some(&container)).map_err(|_| not_connected())?;
    let document = body.get("DocumentName").and_then(Value::as_str);
    let bad = |m: String| ApiError::client("InvalidParameters", m);
    let (properties, app, kind) = match document {
        Some(
            d @ ("AWS-StartPortForwardingSession" | "AWS-StartPortForwardingSessionToRemoteHost"),
        ) => {
            let port = param(body, "portNumber")
                .ok_or_else(|| bad(format!("{d} requires the parameter portNumber.")))?;
            let host = if d.ends_with("ToRemoteHost") {
                param(body, "host")
                    .ok_or_else(|| bad(format!("{d} requires the parameter host.")))?
            } else {
                "localhost".into()
            };
            let port_n: u16 = port
                .parse()
                .map_err(|_| bad(format!("portNumber {port:?} is not a port number.")))?;
            let mut props = json!({"portNumber": port, "type": "LocalPortForwarding"});
            if let Some(l) = param(body, "localPortNumber") {
                props["localPortNumber"] = json!(l);
            }
            if d.ends_with("ToRemoteHost") {
                props["host"] = json!(host);
            }
            (props, App::Port { host, port: port_n }, session_type::PORT)
        }
        None | Some("SSM-SessionManagerRunShell") => (
            Value::Null,
            shell_app(inner, task, &container, "sh"),
            session_type::STANDARD_STREAM,
        ),
        Some(d) => {
            return Err(ApiError::client(
                "InvalidDocument",
                format!(
                    "Document {d} is not supported by the sandbox (port forwarding and the shell are)."
                ),
            ));
        }
    };
    let id = format!("sandbox-{}", cortado_ssm_session::random_hex(9));
    let agent = AgentOptions {
        agent_version: AGENT_VERSION.into(),
        session_id: id.clone(),
        target_id: target.to_string(),
        session: SessionTypeRequest {
            session_type: kind.into(),
            properties,
        },
        kms_key_id: kms_key(&inner.world, cluster),
    };
    let s = inner.exec.create(id, agent, app);
    Ok(
        json!({"SessionId": s["sessionId"], "StreamUrl": s["streamUrl"], "TokenValue": s["tokenValue"]}),
    )
}

fn shell_app(inner: &mut Inner, task: &str, container: &str, command: &str) -> App {
    let t = inner.world.tasks.get(task).cloned();
    match t {
        Some(t) => App::Shell {
            command: command.into(),
            env: container_env(&inner.world, &t, container),
            hostname: format!("ip-{}.ec2.internal", t.ip.replace('.', "-")),
            fs: inner.exec.fs_of(&t, container),
        },
        None => App::Port {
            host: "invalid".into(),
            port: 0,
        },
    }
}

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
