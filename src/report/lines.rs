//! Event sinks for logs: plain timestamped lines (a terminal that is not a TTY, an Actions
//! log) and JSON lines (`--output json`).

use crate::deploy::event::{Event, Stamped};

/// `HH:MM:SS` (UTC) of a Unix time.
pub(crate) fn clock(time: f64) -> String {
    let secs = time.max(0.0) as u64 % 86_400;
    format!("{:02}:{:02}:{:02}", secs / 3600, secs / 60 % 60, secs % 60)
}

/// The plain-text line of an event.
pub(crate) fn plain(e: &Stamped) -> String {
    let body = match &e.event {
        Event::Plan { .. }
        | Event::Registered { .. }
        | Event::RegistrationSkipped { .. }
        | Event::DeploymentStarted { .. }
        | Event::Progress { .. }
        | Event::ServiceEvent { .. }
        | Event::TaskStopped { .. }
        | Event::TargetHealth { .. } => deploy_text(&e.event),
        Event::Stage { .. }
        | Event::Traffic { .. }
        | Event::Hook { .. }
        | Event::HookWaiting { .. }
        | Event::GateStarted { .. }
        | Event::GateOutput { .. }
        | Event::GateFinished { .. } => rollout_text(&e.event),
        Event::Verdict { .. }
        | Event::RollbackStarted { .. }
        | Event::RollbackFinished { .. }
        | Event::Warning { .. }
        | Event::Note { .. }
        | Event::Explained { .. }
        | Event::TaskLog { .. }
        | Event::TaskStarted { .. }
        | Event::TaskLogs { .. }
        | Event::TaskStatus { .. }
        | Event::TaskStopRequested { .. }
        | Event::TaskEnded { .. } => end_text(&e.event),
    };
    format!("{} {body}", clock(e.time))
}

/// Planning, registering and following a rollout: plan, registration, deployment, progress,
/// ECS events, stopped tasks, target health.
fn deploy_text(event: &Event) -> String {
    match event {
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
        _ => String::new(),
    }
}

/// The steps of a blue/green, canary or linear rollout: stages, traffic, hooks, gates.
fn rollout_text(event: &Event) -> String {
    match event {
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
        _ => String::new(),
    }
}

/// Verdicts, rollbacks, warnings, notes and one-off tasks.
fn end_text(event: &Event) -> String {
    match event {
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
        Event::Note { message } => message.clone(),
        Event::Explained {
            service,
            failure,
            diagnosis,
            ..
        } => format!(
            "{service}: {failure}{}",
            diagnosis
                .as_ref()
                .map(|d| format!(": {d}"))
                .unwrap_or_default()
        ),
        Event::TaskLog {
            service,
            container,
            message,
            ..
        } => format!("{service}: {container} | {message}"),
        Event::TaskStarted { service, .. }
        | Event::TaskLogs { service, .. }
        | Event::TaskStatus { service, .. }
        | Event::TaskStopRequested { service, .. }
        | Event::TaskEnded { service, .. } => {
            format!("{service}: {}", task_text(event).unwrap_or_default())
        }
        _ => String::new(),
    }
}

/// The words of a one-off task's event, without the service it belongs to (as `cortado run`
/// prints them, one task being the whole run); None for other events.
pub(crate) fn task_text(e: &Event) -> Option<String> {
    let id = |arn: &str| arn.rsplit('/').next().unwrap_or(arn).to_string();
    Some(match e {
        Event::TaskStarted {
            task_arn,
            task_definition_arn,
            container,
            ..
        } => format!(
            "started task {} ({}), container {container}",
            id(task_arn),
            crate::deploy::core::verdict::short_arn(task_definition_arn)
        ),
        Event::TaskLogs {
            log_group: Some(group),
            log_stream: Some(stream),
            ..
        } => format!("logs: {group} {stream}"),
        Event::TaskLogs { message, .. } => message.clone().unwrap_or_default(),
        Event::TaskStatus {
            task_arn,
            last_status,
            ..
        } => format!("task {}: {last_status}", id(task_arn)),
        Event::TaskStopRequested {
            task_arn, reason, ..
        } => format!("stopping task {}: {reason}", id(task_arn)),
        Event::TaskEnded { detail, .. } => detail.clone(),
        _ => return None,
    })
}

/// The sink of `cortado run`, one task being the whole run: JSON lines on stdout
/// (`--output json`); else the task's words as timestamped lines on stderr and its
/// container's lines as they are on stdout (how it ended is the command's to say).
pub(crate) fn task_sink(printer: &super::Printer) -> impl FnMut(&Stamped) + Send + 'static {
    let p = printer.clone();
    move |e: &Stamped| {
        if p.format == super::Format::Json {
            p.out_json_line(&json_value(e));
            return;
        }
        match &e.event {
            // The container's line as it came, on one line without control characters.
            Event::TaskLog { message, .. } => p.out(&message.to_string()),
            Event::TaskEnded { .. } => {}
            other => match task_text(other) {
                Some(text) => p.info(&format!("{} {text}", clock(e.time))),
                None => p.info(&plain(e)),
            },
        }
    }
}

/// The JSON value of an event (a line of `--output json`).
pub(crate) fn json_value(e: &Stamped) -> serde_json::Value {
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

    /// A release's one-off task speaks through the run's sinks: its lines name the step, and
    /// `cortado run`'s own words stay as they were.
    #[test]
    fn task_events_have_lines_of_their_own() {
        let e = Stamped {
            time: 3600.0 * 13.0 + 61.0,
            event: Event::TaskLog {
                service: "migrate".into(),
                container: "app".into(),
                timestamp: 1,
                message: "applied 3 migrations\u{1b}[2J".into(),
            },
        };
        assert_eq!(
            plain(&e),
            "13:01:01 migrate: app | applied 3 migrations\\u{1b}[2J"
        );
        let j: serde_json::Value = json_value(&e);
        assert_eq!(j["event"], "log");
        assert_eq!(j["message"], "applied 3 migrations\u{1b}[2J");
        let status = Event::TaskStatus {
            service: "migrate".into(),
            task_arn: "arn:aws:ecs:us-east-1:1:task/c/abc".into(),
            last_status: "RUNNING".into(),
            desired_status: None,
        };
        assert_eq!(task_text(&status).as_deref(), Some("task abc: RUNNING"));
        let s = Stamped {
            time: 0.0,
            event: status,
        };
        assert_eq!(plain(&s), "00:00:00 migrate: task abc: RUNNING");
    }

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
        let j: serde_json::Value = json_value(&e);
        assert_eq!(j["event"], "task_stopped");
        assert_eq!(j["started_by"], "ecs-svc/2");
    }
}
