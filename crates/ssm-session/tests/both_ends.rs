//! The client and the agent of this crate against each other, in memory and over a real
//! WebSocket on loopback, with a relay in the middle that loses, reorders and cuts.

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cortado_ssm_session::message::{AgentMessage, PayloadType, types};
use cortado_ssm_session::payload::{SessionTypeRequest, SizeData, session_type};
use cortado_ssm_session::{
    AgentOptions, ClientOptions, Command, Event, Frame, Reconnect, Transport, start_agent,
    start_client,
};
use serde_json::json;
use tokio::sync::mpsc;

fn agent_options(kms: Option<&str>) -> AgentOptions {
    AgentOptions {
        agent_version: "3.3.0.0".into(),
        session_id: "s-1".into(),
        target_id: "ecs:c_t_r".into(),
        session: SessionTypeRequest {
            session_type: session_type::INTERACTIVE_COMMANDS.into(),
            properties: json!({"commands": "sh"}),
        },
        kms_key_id: kms.map(str::to_string),
    }
}

fn client_options(reconnect: Option<Reconnect>) -> ClientOptions {
    ClientOptions {
        token: "token-1".into(),
        client_id: "client-1".into(),
        client_version: "1.0.0.0".into(),
        reconnect,
    }
}

/// What a relay does to the agent's stream messages, by sequence number.
#[derive(Default, Clone)]
struct Faults {
    /// Lost on their first send.
    lose: HashSet<i64>,
    /// Held back and sent after the next frame.
    reorder: HashSet<i64>,
    /// Cut the connection after this many agent frames (once).
    cut_after: Option<usize>,
}

#[derive(Default)]
struct Seen {
    /// Agent stream messages by sequence number, counting resends.
    sends: Vec<i64>,
    texts: Vec<String>,
}

/// Joins `client_end` and `agent_end` through a relay applying `faults` to agent frames.
fn relay(
    client_end: Transport,
    agent_end: Transport,
    faults: Arc<Mutex<Faults>>,
    seen: Arc<Mutex<Seen>>,
) {
    let Transport {
        tx: to_client,
        rx: mut from_client,
    } = client_end;
    let Transport {
        tx: to_agent,
        rx: mut from_agent,
    } = agent_end;
    let seen_out = seen.clone();
    tokio::spawn(async move {
        while let Some(f) = from_client.recv().await {
            if let Frame::Text(t) = &f {
                seen.lock().unwrap().texts.push(t.clone());
                continue;
            }
            if to_agent.send(f).await.is_err() {
                break;
            }
        }
    });
    let seen2 = Arc::new(AtomicUsize::new(0));
    tokio::spawn(async move {
        let mut held: Option<Frame> = None;
        let mut lost = HashSet::new();
        while let Some(f) = from_agent.recv().await {
            let Frame::Binary(b) = &f else { continue };
            let m = AgentMessage::decode(b).unwrap();
            if m.message_type == types::OUTPUT_STREAM_DATA {
                let seq = m.sequence_number;
                seen_out.lock().unwrap().sends.push(seq);
                let mut fl = faults.lock().unwrap();
                if fl.lose.contains(&seq) && lost.insert(seq) {
                    continue;
                }
                if fl.reorder.remove(&seq) {
                    held = Some(f);
                    continue;
                }
                let n = seen2.fetch_add(1, Ordering::SeqCst) + 1;
                if fl.cut_after == Some(n) {
                    fl.cut_after = None;
                    return; // both directions of this connection end
                }
            }
            if to_client.send(f).await.is_err() {
                break;
            }
            if let Some(h) = held.take() {
                let _ = to_client.send(h).await;
            }
        }
    });
}

async fn next_event(rx: &mut mpsc::Receiver<Event>) -> Event {
    tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .expect("an event within 10 s")
        .expect("the channel is still running")
}

/// Collects the client's Output data until `want` bytes arrived (or the channel closed).
async fn output_until(rx: &mut mpsc::Receiver<Event>, want: usize) -> Vec<u8> {
    let mut out = Vec::new();
    while out.len() < want {
        match next_event(rx).await {
            Event::Data {
                payload_type: PayloadType::Output,
                payload,
            } => out.extend(payload),
            Event::Closed { .. } | Event::Failed { .. } => break,
            _ => {}
        }
    }
    out
}

async fn handshake(client: &mut mpsc::Receiver<Event>, agent: &mut mpsc::Receiver<Event>) {
    match next_event(client).await {
        Event::Handshake {
            agent_version,
            session_type,
            properties,
        } => {
            assert_eq!(agent_version, "3.3.0.0");
            assert_eq!(session_type, "InteractiveCommands");
            assert_eq!(properties["commands"], "sh");
        }
        e => panic!("expected the handshake, got {e:?}"),
    }
    assert_eq!(
        next_event(agent).await,
        Event::ClientReady {
            client_version: "1.0.0.0".into()
        }
    );
    assert!(matches!(next_event(client).await, Event::Ready { .. }));
}

#[tokio::test]
async fn handshake_data_both_ways_resize_and_close() {
    let (agent, mut agent_events, attach) = start_agent(agent_options(None));
    let (c_end, a_end) = Transport::pair(64);
    let (r_client, r_agent) = (Transport::pair(64), Transport::pair(64));
    attach.send(r_agent.1).await.unwrap();
    let seen = Arc::new(Mutex::new(Seen::default()));
    relay(r_client.1, r_agent.0, Arc::default(), seen.clone());
    let (client, mut client_events) = start_client(r_client.0, client_options(None));
    drop((c_end, a_end));
    handshake(&mut client_events, &mut agent_events).await;
    // The open frame carried the token.
    let open: serde_json::Value = serde_json::from_str(&seen.lock().unwrap().texts[0]).unwrap();
    assert_eq!(open["TokenValue"], "token-1");
    assert_eq!(open["MessageSchemaVersion"], "1.0");

    let size = serde_json::to_vec(&SizeData {
        cols: 120,
        rows: 40,
    })
    .unwrap();
    client.send(PayloadType::Size, size).await;
    client
        .send(PayloadType::Output, b"echo hi\r".to_vec())
        .await;
    let mut got = Vec::new();
    while got.len() < 2 {
        if let Event::Data {
            payload_type,
            payload,
        } = next_event(&mut agent_events).await
        {
            got.push((payload_type, payload));
        }
    }
    assert_eq!(got[0].0, PayloadType::Size);
    let s: SizeData = serde_json::from_slice(&got[0].1).unwrap();
    assert_eq!((s.cols, s.rows), (120, 40));
    assert_eq!(got[1], (PayloadType::Output, b"echo hi\r".to_vec()));

    agent.send(PayloadType::Output, b"hi\r\n".to_vec()).await;
    assert_eq!(output_until(&mut client_events, 4).await, b"hi\r\n");
    agent
        .command(Command::CloseWhenDrained(String::new()))
        .await;
    assert_eq!(
        next_event(&mut client_events).await,
        Event::Closed {
            reason: String::new()
        }
    );
}

/// A megabyte through a relay that loses and reorders messages arrives whole and in order.
#[tokio::test]
async fn lost_and_reordered_messages_are_resent_and_reordered() {
    let (agent, mut agent_events, attach) = start_agent(agent_options(None));
    let (r_client, r_agent) = (Transport::pair(64), Transport::pair(64));
    attach.send(r_agent.1).await.unwrap();
    let faults = Faults {
        lose: [3, 4, 50, 51, 52, 700].into_iter().collect(),
        reorder: [10, 11, 500].into_iter().collect(),
        cut_after: None,
    };
    let seen = Arc::new(Mutex::new(Seen::default()));
    relay(
        r_client.1,
        r_agent.0,
        Arc::new(Mutex::new(faults)),
        seen.clone(),
    );
    let (_client, mut client_events) = start_client(r_client.0, client_options(None));
    handshake(&mut client_events, &mut agent_events).await;
    let data: Vec<u8> = (0..1_000_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let sender = agent.clone();
    let d = data.clone();
    tokio::spawn(async move { sender.send_chunked(PayloadType::Output, &d).await });
    let got = output_until(&mut client_events, data.len()).await;
    assert!(got == data, "the data arrived whole and in order");
    let sends = seen.lock().unwrap().sends.clone();
    for lost in [3, 4, 50, 51, 52, 700] {
        let n = sends.iter().filter(|&&s| s == lost).count();
        assert!(
            n >= 2,
            "message {lost} was lost once and resent ({n} sends)"
        );
    }
}

/// The connection drops mid-stream; the client gets a new token, reconnects, and the agent
/// resends what was in flight.
#[tokio::test]
async fn a_dropped_connection_is_resumed() {
    let (agent, mut agent_events, attach) = start_agent(agent_options(None));
    let faults = Arc::new(Mutex::new(Faults {
        cut_after: Some(40),
        ..Faults::default()
    }));
    let seen = Arc::new(Mutex::new(Seen::default()));
    let resumes = Arc::new(AtomicUsize::new(0));
    let (r_client, r_agent) = (Transport::pair(64), Transport::pair(64));
    attach.send(r_agent.1).await.unwrap();
    relay(r_client.1, r_agent.0, faults.clone(), seen.clone());
    let reconnect = {
        let resumes = resumes.clone();
        let (faults, seen, attach) = (faults.clone(), seen.clone(), attach.clone());
        Reconnect {
            resume: Arc::new(move || {
                let n = resumes.fetch_add(1, Ordering::SeqCst);
                Box::pin(async move { Ok(Some(format!("token-{}", n + 2))) })
            }),
            connect: Arc::new(move || {
                let (faults, seen, attach) = (faults.clone(), seen.clone(), attach.clone());
                Box::pin(async move {
                    let (r_client, r_agent) = (Transport::pair(64), Transport::pair(64));
                    attach.send(r_agent.1).await.map_err(|e| e.to_string())?;
                    relay(r_client.1, r_agent.0, faults, seen);
                    Ok(r_client.0)
                })
            }),
            attempts: 3,
        }
    };
    let (_client, mut client_events) = start_client(r_client.0, client_options(Some(reconnect)));
    handshake(&mut client_events, &mut agent_events).await;
    let data: Vec<u8> = (0..200_000u32).map(|i| (i % 253) as u8).collect();
    let sender = agent.clone();
    let d = data.clone();
    tokio::spawn(async move { sender.send_chunked(PayloadType::Output, &d).await });
    let mut got = Vec::new();
    let mut reconnected = false;
    while got.len() < data.len() {
        match next_event(&mut client_events).await {
            Event::Data { payload, .. } => got.extend(payload),
            Event::Reconnected => reconnected = true,
            Event::Failed { error } => panic!("{error}"),
            _ => {}
        }
    }
    assert!(reconnected);
    assert_eq!(resumes.load(Ordering::SeqCst), 1);
    assert!(got == data);
    let texts = seen.lock().unwrap().texts.clone();
    let tokens: Vec<String> = texts
        .iter()
        .map(|t| serde_json::from_str::<serde_json::Value>(t).unwrap()["TokenValue"].to_string())
        .collect();
    assert_eq!(
        tokens,
        ["\"token-1\"", "\"token-2\""],
        "reopened with the resumed token"
    );
}

/// An agent asking for KMS encryption gets a failed action and ends the session saying why.
#[tokio::test]
async fn kms_encryption_is_refused_and_the_session_ends() {
    let (_agent, mut agent_events, attach) = start_agent(agent_options(Some("alias/exec")));
    let (r_client, r_agent) = (Transport::pair(64), Transport::pair(64));
    attach.send(r_agent.1).await.unwrap();
    relay(r_client.1, r_agent.0, Arc::default(), Arc::default());
    let (_client, mut client_events) = start_client(r_client.0, client_options(None));
    assert!(matches!(
        next_event(&mut client_events).await,
        Event::Handshake { .. }
    ));
    match next_event(&mut client_events).await {
        Event::Closed { reason } => {
            assert!(
                reason.contains("KMSEncryption failed on client"),
                "{reason}"
            );
            assert!(reason.contains("not supported"), "{reason}");
        }
        e => panic!("expected the channel to close, got {e:?}"),
    }
    assert!(matches!(
        next_event(&mut agent_events).await,
        Event::Closed { .. }
    ));
}

/// The same exchange over a real WebSocket on loopback (tungstenite on both sides).
#[tokio::test]
async fn over_a_real_websocket() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (agent, mut agent_events, attach) = start_agent(agent_options(None));
    tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let ws = tokio_tungstenite::accept_async(tcp).await.unwrap();
        let mut t = cortado_ssm_session::ws::pump(ws);
        // The first frame is the open frame.
        assert!(matches!(t.rx.recv().await, Some(Frame::Text(_))));
        attach.send(t).await.unwrap();
    });
    let url = format!("ws://{addr}/v1/data-channel/s-1?role=publish_subscribe");
    let transport = cortado_ssm_session::ws::connect(&url).await.unwrap();
    let (client, mut client_events) = start_client(transport, client_options(None));
    handshake(&mut client_events, &mut agent_events).await;
    client.send(PayloadType::Output, b"x".to_vec()).await;
    loop {
        if let Event::Data { payload, .. } = next_event(&mut agent_events).await {
            assert_eq!(payload, b"x");
            break;
        }
    }
    let data = vec![b'z'; 300_000];
    let sender = agent.clone();
    let d = data.clone();
    tokio::spawn(async move { sender.send_chunked(PayloadType::Output, &d).await });
    assert_eq!(output_until(&mut client_events, data.len()).await, data);
}
