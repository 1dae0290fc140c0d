//! AWS Session Manager's data channel, natively: the protocol ECS Exec (`ExecuteCommand`) and
//! SSM sessions (`StartSession`, e.g. port forwarding) speak over the WebSocket of their
//! session's stream URL, which AWS's session-manager-plugin speaks for the AWS CLI.
//!
//! Both ends are here, so one codec is tested from both sides: the client (what cortado runs)
//! and the agent (what cortado's sandbox runs in place of the SSM agent and the service).
//!
//! - [`message`]: the binary frame (header, SHA-256 digest, payload types);
//! - [`payload`]: the JSON payloads (acknowledgements, handshake, terminal size, flags,
//!   channel closed) and the open frame;
//! - [`stream`]: sequence numbers, acknowledgements, resends and reordering (no I/O);
//! - [`session`]: a running end of the channel (handshake, data, reconnection);
//! - [`ws`]: the client's WebSocket (`ws://` or `wss://`, rustls with aws-lc-rs and the
//!   system's roots).
//!
//! Each module cites the files of aws/session-manager-plugin and aws/amazon-ssm-agent it
//! follows.

pub mod message;
pub mod payload;
pub mod session;
pub mod stream;
pub mod ws;

pub use message::{AgentMessage, DecodeError, MessageId, PayloadType};
pub use session::{
    AgentOptions, ClientOptions, Command, Event, Frame, Handle, Reconnect, Transport, start_agent,
    start_client,
};

/// Epoch milliseconds now.
pub(crate) fn now_millis() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(1)
}

/// Fills `buf` from the system's random source (a clock-seeded mix if that ever fails: ids
/// need to be unique, not secret).
pub(crate) fn random_bytes(buf: &mut [u8]) {
    if getrandom::fill(buf).is_err() {
        let mut x = now_millis() ^ 0x9E37_79B9_7F4A_7C15;
        for b in buf.iter_mut() {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            *b = x as u8;
        }
    }
}

/// A random lowercase hex string of `n` bytes (nonces, ids).
pub fn random_hex(n: usize) -> String {
    let mut b = vec![0u8; n];
    random_bytes(&mut b);
    b.iter().map(|x| format!("{x:02x}")).collect()
}
