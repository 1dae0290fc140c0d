//! The JSON payloads carried inside [`crate::message::AgentMessage`]s, and the text frame
//! that opens a data channel.
//!
//! Field names and values follow aws/session-manager-plugin: `src/message/clientmessage.go`
//! (`AcknowledgeContent`, `ChannelClosed`, `SizeData`, `PayloadTypeFlag`), the handshake types
//! of its message package (`HandshakeRequestPayload`, `RequestedClientAction`,
//! `SessionTypeRequest`, `HandshakeResponsePayload`, `ProcessedClientAction`,
//! `HandshakeCompletePayload`, `ActionType`, `ActionStatus`), `src/service/service.go`
//! (`OpenDataChannelInput`) and `src/config/config.go` (session type names). The agent's
//! `agent/session/contracts/model.go` has the same shapes.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Session types (`config.go`: `ShellPluginName`, `PortPluginName`, ...).
pub mod session_type {
    pub const STANDARD_STREAM: &str = "Standard_Stream";
    pub const PORT: &str = "Port";
    pub const INTERACTIVE_COMMANDS: &str = "InteractiveCommands";
    pub const NON_INTERACTIVE_COMMANDS: &str = "NonInteractiveCommands";
}

/// The first frame a client sends on a new (or resumed) connection, as a text message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OpenDataChannelInput {
    #[serde(rename = "MessageSchemaVersion")]
    pub message_schema_version: String,
    #[serde(rename = "RequestId")]
    pub request_id: String,
    #[serde(rename = "TokenValue")]
    pub token_value: String,
    #[serde(rename = "ClientId")]
    pub client_id: String,
    #[serde(rename = "ClientVersion", default)]
    pub client_version: String,
}

/// The payload of an `acknowledge` message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AcknowledgeContent {
    #[serde(rename = "AcknowledgedMessageType")]
    pub message_type: String,
    #[serde(rename = "AcknowledgedMessageId")]
    pub message_id: String,
    #[serde(rename = "AcknowledgedMessageSequenceNumber")]
    pub sequence_number: i64,
    #[serde(rename = "IsSequentialMessage")]
    pub is_sequential_message: bool,
}

/// The payload of a `channel_closed` message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChannelClosed {
    #[serde(rename = "MessageId", default)]
    pub message_id: String,
    #[serde(rename = "CreatedDate", default)]
    pub created_date: String,
    #[serde(rename = "DestinationId", default)]
    pub destination_id: String,
    #[serde(rename = "SessionId", default)]
    pub session_id: String,
    #[serde(rename = "MessageType", default)]
    pub message_type: String,
    #[serde(rename = "SchemaVersion", default)]
    pub schema_version: i64,
    /// Why the channel closed; empty when the session simply ended.
    #[serde(rename = "Output", default)]
    pub output: String,
}

/// A terminal size (payload type Size).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SizeData {
    pub cols: u32,
    pub rows: u32,
}

/// The 4-byte big-endian value of a Flag payload (`PayloadTypeFlag`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flag {
    /// Client to agent: the local TCP connection closed (basic port forwarding).
    DisconnectToPort,
    /// Client to agent: end the session.
    TerminateSession,
    /// Agent to client: the agent could not connect to the destination port.
    ConnectToPortError,
    Other(u32),
}

impl Flag {
    pub fn code(self) -> u32 {
        match self {
            Flag::DisconnectToPort => 1,
            Flag::TerminateSession => 2,
            Flag::ConnectToPortError => 3,
            Flag::Other(n) => n,
        }
    }

    pub fn from_code(n: u32) -> Flag {
        match n {
            1 => Flag::DisconnectToPort,
            2 => Flag::TerminateSession,
            3 => Flag::ConnectToPortError,
            n => Flag::Other(n),
        }
    }

    pub fn to_payload(self) -> Vec<u8> {
        self.code().to_be_bytes().to_vec()
    }

    pub fn from_payload(p: &[u8]) -> Option<Flag> {
        let b: [u8; 4] = p.get(..4)?.try_into().ok()?;
        Some(Flag::from_code(u32::from_be_bytes(b)))
    }
}

/// Handshake action types (`ActionType`).
pub mod action {
    pub const SESSION_TYPE: &str = "SessionType";
    pub const KMS_ENCRYPTION: &str = "KMSEncryption";
}

/// `ActionStatus`: 1 success, 2 failed, 3 unsupported.
pub mod action_status {
    pub const SUCCESS: i64 = 1;
    pub const FAILED: i64 = 2;
    pub const UNSUPPORTED: i64 = 3;
}

/// Agent to client (payload type HandshakeRequest).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HandshakeRequest {
    #[serde(rename = "AgentVersion", default)]
    pub agent_version: String,
    #[serde(rename = "RequestedClientActions", default)]
    pub requested_client_actions: Vec<RequestedClientAction>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RequestedClientAction {
    #[serde(rename = "ActionType")]
    pub action_type: String,
    #[serde(rename = "ActionParameters", default)]
    pub action_parameters: Value,
}

/// The parameters of a SessionType action.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionTypeRequest {
    #[serde(rename = "SessionType")]
    pub session_type: String,
    #[serde(rename = "Properties", default)]
    pub properties: Value,
}

/// Client to agent (payload type HandshakeResponse): one entry per requested action.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HandshakeResponse {
    #[serde(rename = "ClientVersion")]
    pub client_version: String,
    #[serde(rename = "ProcessedClientActions")]
    pub processed_client_actions: Vec<ProcessedClientAction>,
    #[serde(rename = "Errors", default)]
    pub errors: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProcessedClientAction {
    #[serde(rename = "ActionType")]
    pub action_type: String,
    #[serde(rename = "ActionStatus")]
    pub action_status: i64,
    #[serde(rename = "ActionResult", default)]
    pub action_result: Value,
    #[serde(rename = "Error", default)]
    pub error: String,
}

/// Agent to client (payload type HandshakeComplete).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HandshakeComplete {
    /// A Go `time.Duration`: nanoseconds.
    #[serde(rename = "HandshakeTimeToComplete", default)]
    pub handshake_time_to_complete: i64,
    #[serde(rename = "CustomerMessage", default)]
    pub customer_message: String,
}

/// The exit status in an ExitCode payload: `EXIT_CODE: N` (the agent's `sendExitCode`).
pub fn parse_exit_code(payload: &[u8]) -> Option<i32> {
    std::str::from_utf8(payload)
        .ok()?
        .trim()
        .strip_prefix("EXIT_CODE:")?
        .trim()
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn json_names_match_the_plugin() {
        let ack = AcknowledgeContent {
            message_type: "output_stream_data".into(),
            message_id: "id".into(),
            sequence_number: 3,
            is_sequential_message: true,
        };
        assert_eq!(
            serde_json::to_value(&ack).unwrap(),
            json!({"AcknowledgedMessageType": "output_stream_data", "AcknowledgedMessageId": "id",
                   "AcknowledgedMessageSequenceNumber": 3, "IsSequentialMessage": true})
        );
        let req: HandshakeRequest = serde_json::from_value(json!({
            "AgentVersion": "3.3.0.0",
            "RequestedClientActions": [{"ActionType": "SessionType",
                "ActionParameters": {"SessionType": "Port", "Properties": {"portNumber": "80"}}}]
        }))
        .unwrap();
        let st: SessionTypeRequest =
            serde_json::from_value(req.requested_client_actions[0].action_parameters.clone())
                .unwrap();
        assert_eq!(st.session_type, "Port");
        assert_eq!(st.properties["portNumber"], "80");
        assert_eq!(
            serde_json::to_value(SizeData { cols: 80, rows: 24 }).unwrap(),
            json!({"cols": 80, "rows": 24})
        );
    }

    #[test]
    fn flags_and_exit_codes() {
        assert_eq!(Flag::TerminateSession.to_payload(), vec![0, 0, 0, 2]);
        assert_eq!(
            Flag::from_payload(&[0, 0, 0, 3]),
            Some(Flag::ConnectToPortError)
        );
        assert_eq!(Flag::from_payload(&[0, 0]), None);
        assert_eq!(parse_exit_code(b"EXIT_CODE: 42"), Some(42));
        assert_eq!(parse_exit_code(b"exit 42"), None);
    }
}
