//! The binary frame of Session Manager's data channel: one `AgentMessage` (the plugin calls it
//! `ClientMessage`) per WebSocket binary message.
//!
//! Receives bytes off the wire or a message to send; hands on a decoded [`AgentMessage`] or
//! its bytes. No I/O, no state.
//!
//! The layout follows aws/session-manager-plugin `src/message/clientmessage.go` (the
//! `ClientMessage_*Length` / `*Offset` constants) and `messageparser.go`
//! (`SerializeClientMessage`, `DeserializeClientMessage`, `Validate`), which match the agent's
//! aws/amazon-ssm-agent `agent/session/contracts/agentmessage.go`. All integers big-endian:
//!
//! | offset | length | field |
//! | --- | --- | --- |
//! | 0 | 4 | header length: 116, the offset of the payload length field |
//! | 4 | 32 | message type, UTF-8, padded with spaces (NULs and spaces trimmed on read) |
//! | 36 | 4 | schema version (1) |
//! | 40 | 8 | created date, epoch milliseconds |
//! | 48 | 8 | sequence number (signed) |
//! | 56 | 8 | flags: bit 0 SYN (first message of a stream), bit 1 FIN |
//! | 64 | 16 | message id: a UUID written as its least significant 8 bytes, then its most significant 8 (`putUuid`) |
//! | 80 | 32 | SHA-256 of the payload |
//! | 112 | 4 | payload type ([`PayloadType`]) |
//! | 116 | 4 | payload length |
//! | 120 | n | payload |
//!
//! The payload starts at header length + 4, as `DeserializeClientMessage` reads it. `Validate`
//! skips its checks for `start_publication` / `pause_publication` and checks the digest only
//! when the payload length is not zero; [`AgentMessage::decode`] does the same and also
//! refuses a payload length that disagrees with the bytes received.

use sha2::{Digest, Sha256};

/// The header length field's value: the offset of the payload length field.
pub const HEADER_LENGTH: u32 = 116;
/// Where the payload starts in a message this crate writes.
pub const PAYLOAD_OFFSET: usize = HEADER_LENGTH as usize + 4;
const TYPE_LEN: usize = 32;

/// Message types (`clientmessage.go` constants; the agent's `AgentSessionState` too).
pub mod types {
    /// Client to agent stream data (keystrokes, terminal size, handshake response, port data).
    pub const INPUT_STREAM_DATA: &str = "input_stream_data";
    /// Agent to client stream data (terminal output, handshake request, port data).
    pub const OUTPUT_STREAM_DATA: &str = "output_stream_data";
    pub const ACKNOWLEDGE: &str = "acknowledge";
    /// Sent by the service when the session ends; its payload's `Output` says why.
    pub const CHANNEL_CLOSED: &str = "channel_closed";
    pub const START_PUBLICATION: &str = "start_publication";
    pub const PAUSE_PUBLICATION: &str = "pause_publication";
    /// Agent to service: the session's state (`Terminating` when the shell exited).
    pub const AGENT_SESSION_STATE: &str = "agent_session_state";
}

/// Flag bit 0: the recipient should take this message's sequence number as the first.
pub const FLAG_SYN: u64 = 1;
/// Flag bit 1: the last message of the sequence.
pub const FLAG_FIN: u64 = 2;

/// What a stream message's payload is (`PayloadType` in `clientmessage.go`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PayloadType {
    /// Terminal or port data (both directions; the client's keystrokes too).
    Output,
    Error,
    /// Terminal size, JSON `{"cols":N,"rows":N}`.
    Size,
    Parameter,
    HandshakeRequest,
    HandshakeResponse,
    HandshakeComplete,
    EncChallengeRequest,
    EncChallengeResponse,
    /// A 4-byte big-endian [`crate::payload::Flag`].
    Flag,
    StdErr,
    /// `EXIT_CODE: N` (non-interactive command sessions).
    ExitCode,
    /// A value this crate does not know (kept as is).
    Other(u32),
}

impl PayloadType {
    pub fn code(self) -> u32 {
        match self {
            PayloadType::Output => 1,
            PayloadType::Error => 2,
            PayloadType::Size => 3,
            PayloadType::Parameter => 4,
            PayloadType::HandshakeRequest => 5,
            PayloadType::HandshakeResponse => 6,
            PayloadType::HandshakeComplete => 7,
            PayloadType::EncChallengeRequest => 8,
            PayloadType::EncChallengeResponse => 9,
            PayloadType::Flag => 10,
            PayloadType::StdErr => 11,
            PayloadType::ExitCode => 12,
            PayloadType::Other(n) => n,
        }
    }

    pub fn from_code(n: u32) -> PayloadType {
        match n {
            1 => PayloadType::Output,
            2 => PayloadType::Error,
            3 => PayloadType::Size,
            4 => PayloadType::Parameter,
            5 => PayloadType::HandshakeRequest,
            6 => PayloadType::HandshakeResponse,
            7 => PayloadType::HandshakeComplete,
            8 => PayloadType::EncChallengeRequest,
            9 => PayloadType::EncChallengeResponse,
            10 => PayloadType::Flag,
            11 => PayloadType::StdErr,
            12 => PayloadType::ExitCode,
            n => PayloadType::Other(n),
        }
    }
}

/// A message id: a UUID in its canonical byte order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MessageId(pub [u8; 16]);

impl MessageId {
    /// A random (version 4) UUID.
    pub fn random() -> MessageId {
        let mut b = [0u8; 16];
        crate::random_bytes(&mut b);
        b[6] = (b[6] & 0x0f) | 0x40;
        b[8] = (b[8] & 0x3f) | 0x80;
        MessageId(b)
    }

    /// The wire form: least significant half first (`putUuid`).
    fn to_wire(self) -> [u8; 16] {
        let mut w = [0u8; 16];
        w[..8].copy_from_slice(&self.0[8..]);
        w[8..].copy_from_slice(&self.0[..8]);
        w
    }

    fn from_wire(w: &[u8]) -> MessageId {
        let mut b = [0u8; 16];
        b[..8].copy_from_slice(&w[8..16]);
        b[8..].copy_from_slice(&w[..8]);
        MessageId(b)
    }
}

impl std::fmt::Display for MessageId {
    /// `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`, lowercase (the form acknowledgements carry).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, byte) in self.0.iter().enumerate() {
            if matches!(i, 4 | 6 | 8 | 10) {
                f.write_str("-")?;
            }
            write!(f, "{byte:02x}")?;
        }
        Ok(())
    }
}

/// One data channel message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentMessage {
    pub message_type: String,
    pub schema_version: u32,
    /// Epoch milliseconds.
    pub created_date: u64,
    pub sequence_number: i64,
    pub flags: u64,
    pub message_id: MessageId,
    pub payload_type: PayloadType,
    pub payload: Vec<u8>,
}

/// Why bytes are not a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeError {
    /// Fewer bytes than the fixed header.
    TooShort(usize),
    /// The header length field points outside the message or inside the fixed fields.
    BadHeaderLength(u32),
    /// The payload length field disagrees with the bytes after the header.
    BadPayloadLength {
        declared: u32,
        actual: usize,
    },
    MissingType,
    MissingCreatedDate,
    /// The SHA-256 in the header is not the payload's.
    DigestMismatch,
    /// The message type is not UTF-8.
    BadType,
}

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DecodeError::TooShort(n) => {
                write!(f, "message of {n} bytes is shorter than its header")
            }
            DecodeError::BadHeaderLength(n) => write!(f, "header length {n} is out of range"),
            DecodeError::BadPayloadLength { declared, actual } => write!(
                f,
                "payload length {declared} disagrees with the {actual} bytes received"
            ),
            DecodeError::MissingType => f.write_str("message type is missing"),
            DecodeError::MissingCreatedDate => f.write_str("created date is missing"),
            DecodeError::DigestMismatch => {
                f.write_str("payload digest is not the payload's SHA-256")
            }
            DecodeError::BadType => f.write_str("message type is not UTF-8"),
        }
    }
}

impl std::error::Error for DecodeError {}

fn be_u32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn be_u64(b: &[u8], at: usize) -> u64 {
    let mut x = [0u8; 8];
    x.copy_from_slice(&b[at..at + 8]);
    u64::from_be_bytes(x)
}

impl AgentMessage {
    /// A message of `message_type` created now, with a fresh id.
    pub fn new(message_type: &str, sequence_number: i64, flags: u64) -> AgentMessage {
        AgentMessage {
            message_type: message_type.to_string(),
            schema_version: 1,
            created_date: crate::now_millis(),
            sequence_number,
            flags,
            message_id: MessageId::random(),
            payload_type: PayloadType::Other(0),
            payload: Vec::new(),
        }
    }

    pub fn with_payload(mut self, payload_type: PayloadType, payload: Vec<u8>) -> AgentMessage {
        self.payload_type = payload_type;
        self.payload = payload;
        self
    }

    /// The wire bytes. A message type longer than 32 bytes is cut (the types are constants).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(PAYLOAD_OFFSET + self.payload.len());
        out.extend_from_slice(&HEADER_LENGTH.to_be_bytes());
        let mut ty = [b' '; TYPE_LEN];
        let t = self.message_type.as_bytes();
        let n = t.len().min(TYPE_LEN);
        ty[..n].copy_from_slice(&t[..n]);
        out.extend_from_slice(&ty);
        out.extend_from_slice(&self.schema_version.to_be_bytes());
        out.extend_from_slice(&self.created_date.to_be_bytes());
        out.extend_from_slice(&self.sequence_number.to_be_bytes());
        out.extend_from_slice(&self.flags.to_be_bytes());
        out.extend_from_slice(&self.message_id.to_wire());
        out.extend_from_slice(&Sha256::digest(&self.payload));
        out.extend_from_slice(&self.payload_type.code().to_be_bytes());
        out.extend_from_slice(&(self.payload.len() as u32).to_be_bytes());
        out.extend_from_slice(&self.payload);
        out
    }

    /// Decodes and validates one message.
    pub fn decode(b: &[u8]) -> Result<AgentMessage, DecodeError> {
        if b.len() < PAYLOAD_OFFSET {
            return Err(DecodeError::TooShort(b.len()));
        }
        let header_length = be_u32(b, 0);
        let start = (header_length as usize).checked_add(4);
        let start = match start {
            Some(s) if header_length >= HEADER_LENGTH && s <= b.len() => s,
            _ => return Err(DecodeError::BadHeaderLength(header_length)),
        };
        let raw_type = &b[4..4 + TYPE_LEN];
        let message_type = std::str::from_utf8(raw_type)
            .map_err(|_| DecodeError::BadType)?
            .trim_matches(|c: char| c == '\0' || c.is_whitespace())
            .to_string();
        let declared = be_u32(b, 116);
        let payload = &b[start..];
        if declared as usize != payload.len() {
            return Err(DecodeError::BadPayloadLength {
                declared,
                actual: payload.len(),
            });
        }
        let msg = AgentMessage {
            message_type,
            schema_version: be_u32(b, 36),
            created_date: be_u64(b, 40),
            sequence_number: be_u64(b, 48) as i64,
            flags: be_u64(b, 56),
            message_id: MessageId::from_wire(&b[64..80]),
            payload_type: PayloadType::from_code(be_u32(b, 112)),
            payload: payload.to_vec(),
        };
        let publication = msg.message_type == types::START_PUBLICATION
            || msg.message_type == types::PAUSE_PUBLICATION;
        if !publication {
            if msg.message_type.is_empty() {
                return Err(DecodeError::MissingType);
            }
            if msg.created_date == 0 {
                return Err(DecodeError::MissingCreatedDate);
            }
            if !payload.is_empty() && Sha256::digest(payload).as_slice() != &b[80..112] {
                return Err(DecodeError::DigestMismatch);
            }
        }
        Ok(msg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sample() -> AgentMessage {
        AgentMessage {
            message_type: types::OUTPUT_STREAM_DATA.into(),
            schema_version: 1,
            created_date: 1_700_000_000_123,
            sequence_number: 7,
            flags: FLAG_SYN,
            message_id: MessageId([
                0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef, 0xfe, 0xdc, 0xba, 0x98, 0x76, 0x54,
                0x32, 0x10,
            ]),
            payload_type: PayloadType::Output,
            payload: b"hi\r\n".to_vec(),
        }
    }

    #[test]
    fn layout_matches_the_plugin() {
        let b = sample().encode();
        assert_eq!(b.len(), 120 + 4);
        assert_eq!(&b[0..4], &[0, 0, 0, 116]);
        assert_eq!(&b[4..22], b"output_stream_data");
        assert!(
            b[22..36].iter().all(|&c| c == b' '),
            "type padded with spaces"
        );
        assert_eq!(&b[36..40], &[0, 0, 0, 1]);
        assert_eq!(be_u64(&b, 40), 1_700_000_000_123);
        assert_eq!(be_u64(&b, 48), 7);
        assert_eq!(be_u64(&b, 56), 1);
        // putUuid: the least significant 8 bytes first.
        assert_eq!(
            &b[64..72],
            &[0xfe, 0xdc, 0xba, 0x98, 0x76, 0x54, 0x32, 0x10]
        );
        assert_eq!(
            &b[72..80],
            &[0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef]
        );
        assert_eq!(&b[80..112], Sha256::digest(b"hi\r\n").as_slice());
        assert_eq!(&b[112..116], &[0, 0, 0, 1]);
        assert_eq!(&b[116..120], &[0, 0, 0, 4]);
        assert_eq!(&b[120..], b"hi\r\n");
        assert_eq!(
            sample().message_id.to_string(),
            "01234567-89ab-cdef-fedc-ba9876543210"
        );
    }

    #[test]
    fn refuses_what_validate_refuses() {
        let good = sample().encode();
        let mut bad = good.clone();
        bad[121] ^= 1;
        assert_eq!(AgentMessage::decode(&bad), Err(DecodeError::DigestMismatch));
        let mut bad = good.clone();
        bad[40..48].copy_from_slice(&[0; 8]);
        assert_eq!(
            AgentMessage::decode(&bad),
            Err(DecodeError::MissingCreatedDate)
        );
        assert_eq!(
            AgentMessage::decode(&good[..100]),
            Err(DecodeError::TooShort(100))
        );
        let mut bad = good.clone();
        bad[0..4].copy_from_slice(&9999u32.to_be_bytes());
        assert_eq!(
            AgentMessage::decode(&bad),
            Err(DecodeError::BadHeaderLength(9999))
        );
        let mut bad = good.clone();
        bad.push(0);
        assert!(matches!(
            AgentMessage::decode(&bad),
            Err(DecodeError::BadPayloadLength { .. })
        ));
        // Publication messages are not validated (`Validate`).
        let mut pause = AgentMessage::new(types::PAUSE_PUBLICATION, 0, 0);
        pause.created_date = 0;
        assert!(AgentMessage::decode(&pause.encode()).is_ok());
    }

    fn any_message() -> impl Strategy<Value = AgentMessage> {
        (
            "[a-z_]{1,32}",
            any::<u32>(),
            1u64..,
            any::<i64>(),
            any::<u64>(),
            any::<[u8; 16]>(),
            any::<u32>(),
            proptest::collection::vec(any::<u8>(), 0..2048),
        )
            .prop_map(|(t, v, cd, seq, flags, id, pt, payload)| AgentMessage {
                message_type: t,
                schema_version: v,
                created_date: cd,
                sequence_number: seq,
                flags,
                message_id: MessageId(id),
                payload_type: PayloadType::from_code(pt),
                payload,
            })
    }

    proptest! {
        #[test]
        fn encode_then_decode_is_identity(m in any_message()) {
            let wire = m.encode();
            prop_assert_eq!(AgentMessage::decode(&wire), Ok(m));
        }

        #[test]
        fn payload_type_codes_round_trip(n in any::<u32>()) {
            prop_assert_eq!(PayloadType::from_code(n).code(), n);
        }

        #[test]
        fn decoding_arbitrary_bytes_never_panics(b in proptest::collection::vec(any::<u8>(), 0..400)) {
            let _ = AgentMessage::decode(&b);
        }

        #[test]
        fn a_flipped_payload_bit_is_caught(m in any_message(), at in any::<usize>(), bit in 0u8..8) {
            prop_assume!(!m.payload.is_empty());
            let mut wire = m.encode();
            let i = PAYLOAD_OFFSET + at % m.payload.len();
            wire[i] ^= 1 << bit;
            prop_assert_eq!(AgentMessage::decode(&wire), Err(DecodeError::DigestMismatch));
        }
    }
}
