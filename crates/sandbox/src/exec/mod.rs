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
//!
//! [`api`] answers the API calls, [`sessions`] keeps what they create, [`channel`] serves the
//! WebSocket each session's stream URL points at.

mod api;
mod channel;
mod sessions;

pub use api::{execute_command, ssm};
pub use channel::data_channel;
pub use sessions::Sessions;
