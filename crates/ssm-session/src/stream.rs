//! The reliable, ordered stream each side keeps over the data channel: sequence numbers,
//! acknowledgements, resends of what was not acknowledged, and the reordering of what arrives
//! early. A state machine with no I/O: time comes in as an argument, wire bytes go out as
//! return values, so tests drive it message by message.
//!
//! Follows aws/session-manager-plugin `src/datachannel/streaming.go` (`SendInputDataMessage`,
//! `ResendStreamDataMessageScheduler`, `ProcessAcknowledgedMessage`, `SendAcknowledgeMessage`,
//! `HandleOutputMessage`, `ProcessIncomingMessageBufferItems`, `CalculateRetransmissionTimeout`)
//! with the constants of `src/config/config.go`, and the agent's
//! `agent/session/datachannel/datachannel.go`, which mirrors it. Where this differs, on
//! purpose:
//! - a duplicate (already delivered) message is acknowledged again (the plugin and the agent
//!   drop it silently, so a lost acknowledgement makes the sender resend until it gives up);
//! - every message whose timer ran out is resent, oldest first, at most [`RESEND_BURST`] a
//!   tick (the plugin resends only the oldest one per 100 ms tick);
//! - the round trip is sampled only from messages sent once (Karn's rule), and the resend
//!   timeout never drops under [`MIN_RTO`] (the plugin's floor is the 10 ms clock granularity,
//!   which on a loaded loopback makes every in-flight message look lost);
//! - at most [`WINDOW`] messages are in flight; the sender waits for room instead of dropping
//!   the oldest unacknowledged message as the plugin's full buffer does.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use crate::message::{AgentMessage, FLAG_FIN, FLAG_SYN, PayloadType, types};
use crate::payload::AcknowledgeContent;

/// `DefaultRoundTripTime` (100 ms).
const INITIAL_RTT: f64 = 0.100;
/// `DefaultTransmissionTimeout` (200 ms).
const INITIAL_RTO: Duration = Duration::from_millis(200);
/// `RTTConstant` and `RTTVConstant`.
const ALPHA: f64 = 1.0 / 8.0;
const BETA: f64 = 1.0 / 4.0;
/// `ClockGranularity`.
const GRANULARITY: f64 = 0.010;
/// `MaxTransmissionTimeout`.
const MAX_RTO: Duration = Duration::from_secs(1);
/// The smallest resend timeout (see the module doc).
pub const MIN_RTO: Duration = Duration::from_millis(100);
/// `ResendMaxAttempt`: about five minutes of resends at 100 ms.
pub const MAX_ATTEMPTS: u32 = 3000;
/// `IncomingMessageBufferCapacity`.
pub const INCOMING_CAPACITY: usize = 10_000;
/// Messages in flight before the sender waits (1 MiB of 1 KiB payloads).
pub const WINDOW: usize = 1024;
/// Resends per tick at most.
pub const RESEND_BURST: usize = 64;
/// `StreamDataPayloadSize`: the payload size both sides cut their data into.
pub const CHUNK: usize = 1024;

/// Which end of the channel a stream is: it decides the message type it sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The user's side (the plugin, cortado): sends `input_stream_data`.
    Client,
    /// The target's side (the SSM agent, the sandbox): sends `output_stream_data`.
    Agent,
}

impl Role {
    pub fn outgoing_type(self) -> &'static str {
        match self {
            Role::Client => types::INPUT_STREAM_DATA,
            Role::Agent => types::OUTPUT_STREAM_DATA,
        }
    }

    pub fn incoming_type(self) -> &'static str {
        match self {
            Role::Client => types::OUTPUT_STREAM_DATA,
            Role::Agent => types::INPUT_STREAM_DATA,
        }
    }
}

struct Pending {
    seq: i64,
    wire: Vec<u8>,
    sent_at: Instant,
    attempts: u32,
}

/// A message that was resent too often without an acknowledgement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResendTimeout {
    pub sequence_number: i64,
}

/// One end's stream state.
pub struct Stream {
    role: Role,
    next_seq: i64,
    unacked: VecDeque<Pending>,
    expected: i64,
    early: BTreeMap<i64, AgentMessage>,
    rtt: f64,
    rttvar: f64,
    rto: Duration,
    /// Messages sent again after their timer ran out (a statistic for tests and benchmarks).
    pub resent: u64,
}

/// What an incoming stream message gives: the acknowledgement to send (none when it was
/// dropped for lack of buffer room) and the messages now deliverable, in order.
#[derive(Debug, Default)]
pub struct Received {
    pub ack: Option<Vec<u8>>,
    pub delivered: Vec<AgentMessage>,
}

impl Stream {
    pub fn new(role: Role) -> Stream {
        Stream {
            role,
            next_seq: 0,
            unacked: VecDeque::new(),
            expected: 0,
            early: BTreeMap::new(),
            rtt: INITIAL_RTT,
            rttvar: 0.0,
            rto: INITIAL_RTO,
            resent: 0,
        }
    }

    pub fn role(&self) -> Role {
        self.role
    }

    /// Room for another message in flight.
    pub fn has_room(&self) -> bool {
        self.unacked.len() < WINDOW
    }

    pub fn unacked(&self) -> usize {
        self.unacked.len()
    }

    pub fn rto(&self) -> Duration {
        self.rto
    }

    /// Sequences `payload` as the next message and keeps it until acknowledged; hands back its
    /// wire bytes. The agent marks its first message SYN, as `SendStreamDataMessage` does.
    pub fn push(&mut self, payload_type: PayloadType, payload: Vec<u8>, now: Instant) -> Vec<u8> {
        let flags = if self.role == Role::Agent && self.next_seq == 0 {
            FLAG_SYN
        } else {
            0
        };
        let msg = AgentMessage::new(self.role.outgoing_type(), self.next_seq, flags)
            .with_payload(payload_type, payload);
        let wire = msg.encode();
        self.unacked.push_back(Pending {
            seq: self.next_seq,
            wire: wire.clone(),
            sent_at: now,
            attempts: 0,
        });
        self.next_seq += 1;
        wire
    }

    /// An incoming stream message of the other side.
    pub fn receive(&mut self, msg: AgentMessage) -> Received {
        let seq = msg.sequence_number;
        if seq < self.expected {
            return Received {
                ack: Some(ack_wire(&msg)),
                delivered: Vec::new(),
            };
        }
        if seq > self.expected {
            if self.early.len() >= INCOMING_CAPACITY && !self.early.contains_key(&seq) {
                return Received::default();
            }
            let ack = ack_wire(&msg);
            self.early.insert(seq, msg);
            return Received {
                ack: Some(ack),
                delivered: Vec::new(),
            };
        }
        let ack = ack_wire(&msg);
        let mut delivered = vec![msg];
        self.expected += 1;
        while let Some(next) = self.early.remove(&self.expected) {
            delivered.push(next);
            self.expected += 1;
        }
        Received {
            ack: Some(ack),
            delivered,
        }
    }

    /// An acknowledgement of one of ours; false when it names nothing in flight.
    pub fn acknowledged(&mut self, ack: &AcknowledgeContent, now: Instant) -> bool {
        let Some(i) = self
            .unacked
            .iter()
            .position(|p| p.seq == ack.sequence_number)
        else {
            return false;
        };
        if let Some(p) = self.unacked.remove(i)
            && p.attempts == 0
        {
            self.sample(now.saturating_duration_since(p.sent_at));
        }
        true
    }

    fn sample(&mut self, rtt: Duration) {
        let r = rtt.as_secs_f64();
        self.rttvar = (1.0 - BETA) * self.rttvar + BETA * (self.rtt - r).abs();
        self.rtt = (1.0 - ALPHA) * self.rtt + ALPHA * r;
        let rto = self.rtt + GRANULARITY.max(4.0 * self.rttvar);
        self.rto = Duration::from_secs_f64(rto).clamp(MIN_RTO, MAX_RTO);
    }

    /// The messages whose resend timer ran out, oldest first (at most [`RESEND_BURST`]).
    pub fn due(&mut self, now: Instant) -> Result<Vec<Vec<u8>>, ResendTimeout> {
        let rto = self.rto;
        let mut out = Vec::new();
        for p in self.unacked.iter_mut() {
            if out.len() >= RESEND_BURST {
                break;
            }
            if now.saturating_duration_since(p.sent_at) > rto {
                if p.attempts >= MAX_ATTEMPTS {
                    return Err(ResendTimeout {
                        sequence_number: p.seq,
                    });
                }
                p.attempts += 1;
                p.sent_at = now;
                out.push(p.wire.clone());
            }
        }
        self.resent += out.len() as u64;
        Ok(out)
    }

    /// Everything in flight, for a new connection (nothing the old one carried is known to
    /// have arrived).
    pub fn all_unacked(&mut self, now: Instant) -> Vec<Vec<u8>> {
        for p in self.unacked.iter_mut() {
            p.sent_at = now;
        }
        self.unacked.iter().map(|p| p.wire.clone()).collect()
    }

    /// When the next resend falls due, if anything is in flight.
    pub fn next_due(&self) -> Option<Instant> {
        self.unacked.iter().map(|p| p.sent_at + self.rto).min()
    }
}

/// The `acknowledge` message for `msg` (sequence number 0, flags SYN|FIN, as
/// `SerializeClientMessageWithAcknowledgeContent` writes it).
pub fn ack_wire(msg: &AgentMessage) -> Vec<u8> {
    let content = AcknowledgeContent {
        message_type: msg.message_type.clone(),
        message_id: msg.message_id.to_string(),
        sequence_number: msg.sequence_number,
        is_sequential_message: true,
    };
    let payload = serde_json::to_vec(&content).unwrap_or_default();
    AgentMessage::new(types::ACKNOWLEDGE, 0, FLAG_SYN | FLAG_FIN)
        .with_payload(PayloadType::Other(0), payload)
        .encode()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ack_of(wire: &[u8]) -> AcknowledgeContent {
        let m = AgentMessage::decode(wire).unwrap();
        assert_eq!(m.message_type, types::ACKNOWLEDGE);
        serde_json::from_slice(&m.payload).unwrap()
    }

    #[test]
    fn in_order_delivery_with_acks() {
        let t = Instant::now();
        let mut agent = Stream::new(Role::Agent);
        let mut client = Stream::new(Role::Client);
        let w0 = agent.push(PayloadType::Output, b"a".to_vec(), t);
        let w1 = agent.push(PayloadType::Output, b"b".to_vec(), t);
        let m0 = AgentMessage::decode(&w0).unwrap();
        assert_eq!(m0.flags, FLAG_SYN, "the agent's first message is SYN");
        assert_eq!(m0.message_type, types::OUTPUT_STREAM_DATA);
        let r = client.receive(m0);
        assert_eq!(r.delivered.len(), 1);
        let ack = ack_of(&r.ack.unwrap());
        assert_eq!(ack.sequence_number, 0);
        assert!(agent.acknowledged(&ack, t + Duration::from_millis(5)));
        assert_eq!(agent.unacked(), 1);
        let r = client.receive(AgentMessage::decode(&w1).unwrap());
        assert_eq!(r.delivered[0].payload, b"b");
    }

    #[test]
    fn early_messages_wait_for_the_gap() {
        let t = Instant::now();
        let mut agent = Stream::new(Role::Agent);
        let mut client = Stream::new(Role::Client);
        let wires: Vec<_> = (0..4)
            .map(|i| agent.push(PayloadType::Output, vec![b'0' + i], t))
            .collect();
        // 0 is lost; 2, 3, 1 arrive: nothing until 0 comes again.
        for i in [2, 3, 1] {
            let r = client.receive(AgentMessage::decode(&wires[i]).unwrap());
            assert!(r.ack.is_some(), "early messages are acknowledged");
            assert!(r.delivered.is_empty());
        }
        let r = client.receive(AgentMessage::decode(&wires[0]).unwrap());
        let got: Vec<u8> = r.delivered.iter().map(|m| m.payload[0]).collect();
        assert_eq!(got, b"0123");
        // A duplicate is acknowledged again, never delivered twice.
        let r = client.receive(AgentMessage::decode(&wires[2]).unwrap());
        assert!(r.delivered.is_empty());
        assert_eq!(ack_of(&r.ack.unwrap()).sequence_number, 2);
    }

    #[test]
    fn unacknowledged_messages_are_resent_after_the_timeout() {
        let t = Instant::now();
        let mut s = Stream::new(Role::Client);
        s.push(PayloadType::Output, b"x".to_vec(), t);
        assert!(s.due(t + Duration::from_millis(50)).unwrap().is_empty());
        let again = s.due(t + INITIAL_RTO + Duration::from_millis(1)).unwrap();
        assert_eq!(again.len(), 1);
        assert_eq!(AgentMessage::decode(&again[0]).unwrap().payload, b"x");
        assert_eq!(s.resent, 1);
    }

    #[test]
    fn gives_up_after_max_attempts() {
        let mut t = Instant::now();
        let mut s = Stream::new(Role::Client);
        s.push(PayloadType::Output, b"x".to_vec(), t);
        let mut result = Ok(vec![]);
        for _ in 0..=MAX_ATTEMPTS {
            t += MAX_RTO + Duration::from_millis(1);
            result = s.due(t);
            if result.is_err() {
                break;
            }
        }
        assert_eq!(result, Err(ResendTimeout { sequence_number: 0 }));
    }

    #[test]
    fn rto_follows_the_measured_round_trip() {
        let t = Instant::now();
        let mut s = Stream::new(Role::Client);
        for i in 0..50 {
            let sent = t + Duration::from_millis(i * 10);
            let w = s.push(PayloadType::Output, vec![1], sent);
            let m = AgentMessage::decode(&w).unwrap();
            let ack = ack_of(&ack_wire(&m));
            s.acknowledged(&ack, sent + Duration::from_millis(400));
        }
        assert!(s.rto() > Duration::from_millis(390), "{:?}", s.rto());
        assert!(s.rto() <= MAX_RTO);
    }

    proptest! {
        /// Whatever the order, losses and duplicates on the way, resending what is not
        /// acknowledged delivers every message exactly once, in order.
        #[test]
        fn any_delivery_order_and_loss_ends_in_order(
            n in 1usize..60,
            schedule in proptest::collection::vec((any::<u16>(), any::<bool>(), any::<bool>()), 0..400),
        ) {
            let mut t = Instant::now();
            let mut tx = Stream::new(Role::Agent);
            let mut rx = Stream::new(Role::Client);
            let mut net: Vec<Vec<u8>> = (0..n)
                .map(|i| tx.push(PayloadType::Output, (i as u32).to_be_bytes().to_vec(), t))
                .collect();
            let mut got = Vec::new();
            let mut steps = schedule.into_iter();
            for _ in 0..100_000 {
                if tx.unacked() == 0 {
                    break;
                }
                t += Duration::from_millis(30);
                net.extend(tx.due(t).unwrap());
                if net.is_empty() {
                    continue;
                }
                let (pick, lose, dup) = steps.next().unwrap_or((0, false, false));
                let i = pick as usize % net.len();
                let wire = if dup { net[i].clone() } else { net.swap_remove(i) };
                if lose {
                    continue;
                }
                let r = rx.receive(AgentMessage::decode(&wire).unwrap());
                got.extend(r.delivered.into_iter().map(|m| m.payload));
                if let Some(a) = r.ack {
                    let ack: AcknowledgeContent =
                        serde_json::from_slice(&AgentMessage::decode(&a).unwrap().payload).unwrap();
                    tx.acknowledged(&ack, t);
                }
            }
            let want: Vec<Vec<u8>> = (0..n).map(|i| (i as u32).to_be_bytes().to_vec()).collect();
            prop_assert_eq!(got, want);
        }
    }
}
