//! A minimal CloudWatch Logs: log groups, streams and their events, as a pure state machine.
//!
//! Receives awsJson1.1 operations (`X-Amz-Target: Logs_20140328.<Op>`: `GetLogEvents`,
//! `CreateLogGroup`, `DescribeLogGroups`) with the parsed JSON body and the virtual time,
//! and [`Logs::put`] calls from the simulation (the lines the awslogs driver of a task's
//! container would ship). Hands back the JSON response body, or an [`ApiError`] with Logs'
//! error code.
//!
//! Tokens follow the documented semantics of `GetLogEvents`: a forward token (`f/N`) reads
//! the events from position N on, a backward token (`b/N`) the events before N, and when
//! there is nothing new the same token comes back. `startFromHead` without a token reads from
//! the first event; without it, the newest `limit` events.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::api::ApiError;

/// GetLogEvents returns at most this many events (AWS: 10,000 or 1 MB).
pub const MAX_EVENTS: usize = 10_000;
/// Delay between an event's timestamp and its ingestion (milliseconds).
const INGESTION_DELAY_MS: i64 = 150;

/// One log event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogEvent {
    /// Epoch milliseconds.
    pub timestamp: i64,
    pub message: String,
    pub ingestion_time: i64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Group {
    created: f64,
    streams: BTreeMap<String, Vec<LogEvent>>,
}

/// The log groups of one sandbox.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Logs {
    groups: BTreeMap<String, Group>,
}

fn not_found(what: &str) -> ApiError {
    ApiError::client(
        "ResourceNotFoundException",
        format!("The specified {what} does not exist."),
    )
}

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::client("InvalidParameterException", message)
}

fn str_member<'a>(body: &'a Value, key: &str) -> Result<Option<&'a str>, ApiError> {
    match body.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(invalid(format!("{key} must be a string."))),
    }
}

fn required<'a>(body: &'a Value, key: &str) -> Result<&'a str, ApiError> {
    str_member(body, key)?
        .filter(|s| !s.is_empty())
        .ok_or_else(|| {
            invalid(format!(
                "1 validation error detected: {key} must not be null."
            ))
        })
}

/// A token: direction (`f` forward, `b` backward) and position.
fn parse_token(token: &str) -> Result<(bool, usize), ApiError> {
    let bad = || invalid("The specified nextToken is invalid.");
    let (dir, pos) = token.split_once('/').ok_or_else(bad)?;
    let pos: usize = pos.parse().map_err(|_| bad())?;
    match dir {
        "f" => Ok((true, pos)),
        "b" => Ok((false, pos)),
        _ => Err(bad()),
    }
}

fn token(forward: bool, pos: usize) -> String {
    format!("{}/{pos:056}", if forward { 'f' } else { 'b' })
}

impl Logs {
    /// Appends a line to a stream (group and stream are created as needed).
    pub fn put(&mut self, group: &str, stream: &str, now: f64, message: &str) {
        let g = self
            .groups
            .entry(group.to_string())
            .or_insert_with(|| Group {
                created: now,
                streams: BTreeMap::new(),
            });
        let timestamp = (now * 1000.0).round() as i64;
        g.streams
            .entry(stream.to_string())
            .or_default()
            .push(LogEvent {
                timestamp,
                message: message.to_string(),
                ingestion_time: timestamp + INGESTION_DELAY_MS,
            });
    }

    /// Creates a log group unless it exists (seeding); whether it was created.
    pub fn ensure_group(&mut self, group: &str, now: f64) -> bool {
        if self.groups.contains_key(group) {
            return false;
        }
        self.groups.insert(
            group.to_string(),
            Group {
                created: now,
                streams: BTreeMap::new(),
            },
        );
        true
    }

    /// The events of a stream (tests, state dumps).
    pub fn events(&self, group: &str, stream: &str) -> Option<&[LogEvent]> {
        self.groups
            .get(group)?
            .streams
            .get(stream)
            .map(Vec::as_slice)
    }

    pub fn handle(
        &mut self,
        op: &str,
        body: &Value,
        region: &str,
        account: &str,
        now: f64,
    ) -> Result<Value, ApiError> {
        match op {
            "GetLogEvents" => self.get_log_events(body),
            "CreateLogGroup" => {
                let name = required(body, "logGroupName")?;
                if self.groups.contains_key(name) {
                    return Err(ApiError::client(
                        "ResourceAlreadyExistsException",
                        "The specified log group already exists",
                    ));
                }
                self.groups.insert(
                    name.to_string(),
                    Group {
                        created: now,
                        streams: BTreeMap::new(),
                    },
                );
                Ok(json!({}))
            }
            "DescribeLogGroups" => {
                let prefix = str_member(body, "logGroupNamePrefix")?.unwrap_or("");
                let groups: Vec<Value> = self
                    .groups
                    .iter()
                    .filter(|(name, _)| name.starts_with(prefix))
                    .map(|(name, g)| {
                        let arn = format!("arn:aws:logs:{region}:{account}:log-group:{name}");
                        json!({
                            "logGroupName": name,
                            "creationTime": (g.created * 1000.0).round() as i64,
                            "arn": format!("{arn}:*"),
                            "logGroupArn": arn,
                            "storedBytes": 0,
                            "metricFilterCount": 0,
                            "logGroupClass": "STANDARD",
                        })
                    })
                    .collect();
                Ok(json!({"logGroups": groups}))
            }
            _ => Err(ApiError::client(
                "UnknownOperationException",
                format!("The sandbox does not implement Logs {op}."),
            )),
        }
    }

    fn get_log_events(&self, body: &Value) -> Result<Value, ApiError> {
        let group = str_member(body, "logGroupName")?;
        let group = match group {
            Some(g) if !g.is_empty() => g,
            _ => {
                // logGroupIdentifier (name or ARN) is the other way to name the group.
                let id = required(body, "logGroupIdentifier")?;
                id.rsplit_once(":log-group:")
                    .map(|(_, n)| n.trim_end_matches(":*"))
                    .unwrap_or(id)
            }
        };
        let stream = required(body, "logStreamName")?;
        let limit = match body.get("limit").and_then(Value::as_i64) {
            Some(n) if !(1..=MAX_EVENTS as i64).contains(&n) => {
                return Err(invalid("limit must be between 1 and 10000."));
            }
            Some(n) => n as usize,
            None => MAX_EVENTS,
        };
        let from_head = body
            .get("startFromHead")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let start = body.get("startTime").and_then(Value::as_i64);
        let end = body.get("endTime").and_then(Value::as_i64);
        let g = self
            .groups
            .get(group)
            .ok_or_else(|| not_found("log group"))?;
        let events = g
            .streams
            .get(stream)
            .ok_or_else(|| not_found("log stream"))?;
        // Positions of the events inside the time window (all of them without one).
        let window: Vec<usize> = (0..events.len())
            .filter(|&i| {
                let t = events[i].timestamp;
                start.is_none_or(|s| t >= s) && end.is_none_or(|e| t < e)
            })
            .collect();
        let n = events.len();
        let token = str_member(body, "nextToken")?;
        // The slice [lo, hi) of positions to return.
        let (lo, hi) = match token.map(parse_token).transpose()? {
            Some((true, pos)) => {
                let pos = pos.min(n);
                let hi = window
                    .iter()
                    .filter(|&&i| i >= pos)
                    .take(limit)
                    .last()
                    .map_or(pos, |&i| i + 1);
                (pos, hi)
            }
            Some((false, pos)) => {
                let pos = pos.min(n);
                let lo = window
                    .iter()
                    .rev()
                    .filter(|&&i| i < pos)
                    .take(limit)
                    .last()
                    .copied()
                    .unwrap_or(pos);
                (lo, pos)
            }
            None if from_head => {
                let lo = window.first().copied().unwrap_or(n);
                let hi = window.iter().take(limit).next_back().map_or(lo, |&i| i + 1);
                (lo, hi)
            }
            None => {
                let hi = window.last().map_or(n, |&i| i + 1);
                let lo = window
                    .iter()
                    .rev()
                    .take(limit)
                    .next_back()
                    .copied()
                    .unwrap_or(hi);
                (lo, hi)
            }
        };
        let out: Vec<Value> = window
            .iter()
            .filter(|&&i| i >= lo && i < hi)
            .map(|&i| {
                let e = &events[i];
                json!({"timestamp": e.timestamp, "message": e.message, "ingestionTime": e.ingestion_time})
            })
            .collect();
        Ok(json!({
            "events": out,
            "nextForwardToken": token_fwd(hi),
            "nextBackwardToken": token_back(lo),
        }))
    }
}

fn token_fwd(pos: usize) -> String {
    token(true, pos)
}

fn token_back(pos: usize) -> String {
    token(false, pos)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(logs: &Logs, extra: Value) -> Value {
        let mut body = json!({"logGroupName": "/ecs/web", "logStreamName": "app/web/t1"});
        if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
            b.extend(e.clone());
        }
        logs.get_log_events(&body).unwrap()
    }

    fn messages(v: &Value) -> Vec<String> {
        v["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["message"].as_str().unwrap().to_string())
            .collect()
    }

    #[test]
    fn forward_token_comes_back_unchanged_when_nothing_is_new() {
        let mut logs = Logs::default();
        logs.put("/ecs/web", "app/web/t1", 10.0, "one");
        logs.put("/ecs/web", "app/web/t1", 11.0, "two");
        let first = get(&logs, json!({"startFromHead": true}));
        assert_eq!(messages(&first), ["one", "two"]);
        assert_eq!(first["events"][0]["timestamp"], 10_000);
        assert_eq!(first["events"][0]["ingestionTime"], 10_150);
        let fwd = first["nextForwardToken"].as_str().unwrap().to_string();
        // Nothing new: no events and the same token.
        let again = get(&logs, json!({"nextToken": fwd, "startFromHead": true}));
        assert!(messages(&again).is_empty());
        assert_eq!(again["nextForwardToken"], json!(fwd));
        // A new line: only it, and a new token.
        logs.put("/ecs/web", "app/web/t1", 12.0, "three");
        let next = get(&logs, json!({"nextToken": fwd}));
        assert_eq!(messages(&next), ["three"]);
        assert_ne!(next["nextForwardToken"], json!(fwd));
        // Backward from the end: the earlier events, newest page first.
        let back = get(
            &logs,
            json!({"nextToken": next["nextBackwardToken"], "limit": 1}),
        );
        assert_eq!(messages(&back), ["two"]);
    }

    #[test]
    fn limit_pages_forward_and_the_tail_without_a_token() {
        let mut logs = Logs::default();
        for i in 0..5 {
            logs.put("/ecs/web", "app/web/t1", f64::from(i), &format!("l{i}"));
        }
        let p1 = get(&logs, json!({"startFromHead": true, "limit": 2}));
        assert_eq!(messages(&p1), ["l0", "l1"]);
        let p2 = get(
            &logs,
            json!({"nextToken": p1["nextForwardToken"], "limit": 2}),
        );
        assert_eq!(messages(&p2), ["l2", "l3"]);
        // Without startFromHead and token: the newest events.
        let tail = get(&logs, json!({"limit": 2}));
        assert_eq!(messages(&tail), ["l3", "l4"]);
        // A time window.
        let w = get(
            &logs,
            json!({"startFromHead": true, "startTime": 1000, "endTime": 3000}),
        );
        assert_eq!(messages(&w), ["l1", "l2"]);
    }

    #[test]
    fn missing_group_stream_and_bad_tokens_are_errors() {
        let mut logs = Logs::default();
        let body = json!({"logGroupName": "/ecs/none", "logStreamName": "s"});
        assert_eq!(
            logs.get_log_events(&body).unwrap_err().code,
            "ResourceNotFoundException"
        );
        logs.put("/ecs/web", "other", 1.0, "x");
        let body = json!({"logGroupName": "/ecs/web", "logStreamName": "s"});
        let e = logs.get_log_events(&body).unwrap_err();
        assert_eq!(e.code, "ResourceNotFoundException");
        assert!(e.message.contains("log stream"));
        let body = json!({"logGroupName": "/ecs/web", "logStreamName": "other", "nextToken": "zz"});
        assert_eq!(
            logs.get_log_events(&body).unwrap_err().code,
            "InvalidParameterException"
        );
        assert!(
            logs.handle(
                "CreateLogGroup",
                &json!({"logGroupName": "/ecs/web"}),
                "r",
                "1",
                0.0
            )
            .is_err()
        );
        let d = logs
            .handle(
                "DescribeLogGroups",
                &json!({"logGroupNamePrefix": "/ecs"}),
                "us-east-1",
                "1",
                0.0,
            )
            .unwrap();
        assert_eq!(d["logGroups"][0]["logGroupName"], "/ecs/web");
    }
}
