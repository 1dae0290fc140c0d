//! Event sinks for logs: plain timestamped lines (a terminal that is not a TTY, an Actions
//! log) and JSON lines (`--output json`).

use crate::deploy::event::{Event, Stamped};

/// `HH:MM:SS` (UTC) of a Unix time.
pub fn clock(time: f64) -> String {
    let secs = time.max(0.0) as u64 % 86_400;
    format!("{:02}:{:02}:{:02}", secs / 3600, secs / 60 % 60, secs % 60)
}

/// The plain-text line of an event.
pub fn plain(e: &Stamped) -> String {
    let body = match &e.event {
        Event::Plan {
            service, summary, ..
        } => format!("{service}: plan: {summary}"),
        Event::Registered {
            task_definition_arn,
        } => {
            format!("registered task definition {task_definition_arn}")
        }
        Event::RegistrationSkipped {
            task_definition_arn,
        } => format!("task definition unchanged: using {task_definition_arn} (no new revision)"),
        Event::DeploymentStarted {
            service,
            deployment_id,
            task_definition_arn,
            created,
            ..
        } => format!(
            "{service}: {} deployment {deployment_id} of {task_definition_arn}",
            if *created {
                "created the service with"
            } else {
                "started"
            }
        ),
        Event::Progress {
            service,
            desired,
            running,
            pending,
            failed,
            waiting_for,
            elapsed_secs,
            ..
        } => format!(
            "{service}: {running}/{desired} running, {pending} pending, {failed} failed [{}s] {waiting_for}",
            elapsed_secs
        ),
        Event::ServiceEvent {
            service, message, ..
        } => format!("{service}: ecs: {message}"),
        Event::TaskStopped {
            service,
            task_arn,
            reason,
            ..
        } => format!(
            "{service}: task {} stopped: {reason}",
            task_arn.rsplit('/').next().unwrap_or(task_arn)
        ),
        Event::TargetHealth {
            service,
            healthy,
            unhealthy,
            other,
        } => format!("{service}: targets {healthy} healthy, {unhealthy} unhealthy, {other} other"),
        Event::Stage { service, stage, .. } => format!("{service}: stage {stage}"),
        Event::Traffic {
            service,
            production_green,
            test_green,
            production,
            test,
        } => {
            let part = |name: &str, green: &Option<i32>, w: &[(String, i32)]| match green {
                Some(g) => format!("{name} {g}% new / {}% old", 100 - g),
                None if !w.is_empty() => format!(
                    "{name} {}",
                    w.iter()
                        .map(|(tg, w)| format!("{}={w}%", tg_name(tg)))
                        .collect::<Vec<_>>()
                        .join(" ")
                ),
                None => String::new(),
            };
            let parts: Vec<String> = [
                part("production", production_green, production),
                part("test", test_green, test),
            ]
            .into_iter()
            .filter(|p| !p.is_empty())
            .collect();
            format!("{service}: traffic {}", parts.join(", "))
        }
        Event::Hook {
            service,
            hook_id,
            stage,
            target_type,
            status,
        } => format!(
            "{service}: {target_type} hook {} at {stage}: {status}",
            short_id(hook_id)
        ),
        Event::HookWaiting {
            service,
            stage,
            continue_command,
            ..
        } => format!(
            "{service}: waiting at {stage} on a PAUSE hook; answer it with `{continue_command}` (or add --rollback)"
        ),
        Event::GateStarted {
            service,
            stage,
            command,
        } => format!("{service}: gate at {stage}: running {}", command.join(" ")),
        Event::GateOutput { service, line, .. } => format!("{service}: gate | {line}"),
        Event::GateFinished {
            service,
            stage,
            passed,
            detail,
            duration_secs,
            action,
            ..
        } => format!(
            "{service}: gate at {stage} {} ({detail}, {duration_secs:.1}s): {action}",
            if *passed { "passed" } else { "FAILED" }
        ),
        Event::Verdict {
            service,
            success,
            detail,
        } => format!(
            "{service}: {} {detail}",
            if *success { "SUCCESS" } else { "FAILED" }
        ),
        Event::RollbackStarted {
            service,
            method,
            to_task_definition,
            source,
        } => format!(
            "{service}: rolling back ({method}){}{}",
            to_task_definition
                .as_ref()
                .map(|t| format!(" to {t}"))
                .unwrap_or_default(),
            source
                .as_ref()
                .map(|s| format!(" ({s})"))
                .unwrap_or_default()
        ),
        Event::RollbackFinished {
            service,
            success,
            detail,
        } => format!(
            "{service}: rollback {}: {detail}",
            if *success { "succeeded" } else { "FAILED" }
        ),
        Event::Warning { message } => format!("warning: {message}"),
    };
    format!("{} {body}", clock(e.time))
}

/// The JSON line of an event.
pub fn json(e: &Stamped) -> String {
    serde_json::to_string(e).unwrap_or_default()
}

/// The JSON value of an event (what [`json`] writes).
pub fn json_value(e: &Stamped) -> serde_json::Value {
    serde_json::to_value(e).unwrap_or_default()
}

/// The name of a target group from its ARN (`.../targetgroup/NAME/ID`).
fn tg_name(arn: &str) -> &str {
    arn.rsplit('/').nth(1).unwrap_or(arn)
}

/// The last 8 characters of an id (hook ids share a prefix such as `ecs-pause-`).
fn short_id(id: &str) -> &str {
    id.char_indices().rev().nth(7).map_or(id, |(i, _)| &id[i..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_lines_carry_time_and_substance() {
        let e = Stamped {
            time: 3600.0 * 13.0 + 61.0,
            event: Event::TaskStopped {
                service: "web".into(),
                task_arn: "arn:aws:ecs:us-east-1:1:task/demo/abc123".into(),
                started_by: Some("ecs-svc/2".into()),
                reason: "CannotPullContainerError: not found".into(),
                failed: true,
            },
        };
        assert_eq!(
            plain(&e),
            "13:01:01 web: task abc123 stopped: CannotPullContainerError: not found"
        );
        let j: serde_json::Value = serde_json::from_str(&json(&e)).unwrap();
        assert_eq!(j["event"], "task_stopped");
        assert_eq!(j["started_by"], "ecs-svc/2");
    }
}
