//! CloudWatch Logs reads, for `cortado run` to stream a task's container output.
//!
//! Receives a log group and stream (the awslogs driver's names) and the forward token of the
//! previous read; hands on the new lines and the token to read on from. A stream that does
//! not exist yet (the task has not started, nothing was shipped) is no lines, not an error.

use aws_sdk_cloudwatchlogs::operation::get_log_events::GetLogEventsError;

use super::Clients;
use super::error::Call;
use crate::error::Result;

/// One read of a log stream.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LogPage {
    /// (epoch milliseconds, message), oldest first.
    pub lines: Vec<(i64, String)>,
    /// The token to read on from; `None` while the stream does not exist. CloudWatch Logs
    /// hands back the same token when there is nothing new.
    pub next: Option<String>,
}

impl Clients {
    /// The lines of a stream after `token` (from the first line without one).
    pub async fn get_log_events(
        &self,
        group: &str,
        stream: &str,
        token: Option<&str>,
    ) -> Result<LogPage> {
        let call = Call::logs(
            "GetLogEvents",
            format!("log stream {stream} in group {group}"),
        );
        let out = self
            .logs
            .get_log_events()
            .log_group_name(group)
            .log_stream_name(stream)
            .start_from_head(true)
            .set_next_token(token.map(str::to_string))
            .send()
            .await;
        let out = match out {
            Ok(o) => o,
            Err(e)
                if matches!(
                    e.as_service_error(),
                    Some(GetLogEventsError::ResourceNotFoundException(_))
                ) =>
            {
                return Ok(LogPage {
                    lines: Vec::new(),
                    next: token.map(str::to_string),
                });
            }
            Err(e) => return Err(self.fail(&call, e)),
        };
        Ok(LogPage {
            lines: out
                .events
                .unwrap_or_default()
                .into_iter()
                .map(|e| {
                    (
                        e.timestamp.unwrap_or_default(),
                        e.message.unwrap_or_default(),
                    )
                })
                .collect(),
            next: out.next_forward_token.or_else(|| token.map(str::to_string)),
        })
    }
}
