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

/// What reading the end of a log stream gave.
#[derive(Debug, Clone, PartialEq)]
pub enum LogTail {
    /// The newest lines, oldest first: (epoch milliseconds, message).
    Lines(Vec<(i64, String)>),
    /// CloudWatch Logs has no such group or stream (`ResourceNotFoundException`).
    Missing,
    /// The caller may not read it (`AccessDeniedException`).
    Denied,
    /// Any other failure, in a few words.
    Failed(String),
}

impl Clients {
    /// The newest `n` lines of a stream (GetLogEvents without `startFromHead`). Never an
    /// error: a failure to read is a [`LogTail`] the report explains.
    pub async fn tail_log_events(&self, group: &str, stream: &str, n: usize) -> LogTail {
        use aws_sdk_cloudwatchlogs::error::ProvideErrorMetadata;
        let out = self
            .logs
            .get_log_events()
            .log_group_name(group)
            .log_stream_name(stream)
            .start_from_head(false)
            .limit(n.clamp(1, 10_000) as i32)
            .send()
            .await;
        match out {
            Ok(o) => {
                let mut lines: Vec<(i64, String)> = o
                    .events
                    .unwrap_or_default()
                    .into_iter()
                    .map(|e| {
                        (
                            e.timestamp.unwrap_or_default(),
                            e.message.unwrap_or_default(),
                        )
                    })
                    .collect();
                lines.sort_by_key(|l| l.0);
                let keep = lines.len().saturating_sub(n);
                LogTail::Lines(lines.split_off(keep))
            }
            Err(e) => match e.as_service_error() {
                Some(GetLogEventsError::ResourceNotFoundException(_)) => LogTail::Missing,
                Some(s) if s.code() == Some("AccessDeniedException") => LogTail::Denied,
                Some(s) => LogTail::Failed(s.code().unwrap_or("an error").to_string()),
                None => LogTail::Failed("no answer from CloudWatch Logs".into()),
            },
        }
    }
}
