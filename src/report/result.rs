//! Views of a [`RunResult`]: the text summary, the JSON result line, and in GitHub Actions
//! the step outputs and the job summary. One function, [`finish`], writes them all and gives
//! the exit code, so every command that runs the engine reports the same way.

use serde_json::json;

use super::{Format, Printer};
use crate::deploy::core::diagnosis::Failure;
use crate::deploy::core::outcome::RunOutcome;
use crate::deploy::core::verdict::short_arn;
use crate::deploy::result::{RunResult, ServiceResult};
use crate::error::{ExitCode, Result};

/// The most characters one run adds to the job summary (GitHub takes 1 MiB a step).
const SUMMARY_MAX_CHARS: usize = 256 * 1024;

/// Prints the run's result (text or JSON), writes the Actions outputs and job summary when
/// inside Actions, and returns the exit code: the worst outcome of the run.
pub(crate) fn finish(printer: &Printer, run: &RunResult) -> Result<ExitCode> {
    finish_with(printer, run, &[])
}

/// [`finish`] with the run's rollout timelines: charts in the job summary, series in JSON.
pub(crate) fn finish_with(
    printer: &Printer,
    run: &RunResult,
    timelines: &[super::timeline::ServiceTimeline],
) -> Result<ExitCode> {
    match printer.format {
        // One service: its summary. Several: the summary of each that did not succeed, then
        // one table of all.
        Format::Text if run.services.len() == 1 => printer.out(&text(&run.services[0])),
        Format::Text => {
            for s in run
                .services
                .iter()
                .filter(|s| !s.outcome.is_success() && s.outcome != RunOutcome::Skipped)
            {
                printer.out(&text(s));
            }
            printer.out(&run_table(run));
        }
        Format::Json => printer.out_json_line(&json!({
            "event": "result",
            "operation": run.operation.name(),
            "exit_code": run.exit_code() as u8,
            "status": run.worst().map_or("no-change", |s| s.outcome.status()),
            "services": run.services.iter().map(ServiceResult::json).collect::<Vec<_>>(),
            "timeline": timelines.iter().map(|t| t.json()).collect::<Vec<_>>(),
        })),
    }
    if super::github::is_actions() {
        let mut outputs = super::github::DeployOutputs::from_result(run);
        if let Some(plan) = run.services.iter().find_map(|r| r.plan.as_ref()) {
            let diff = plan.diff_text(false);
            outputs.diff = (!diff.is_empty()).then_some(diff);
        }
        // Step outputs are not masked by the runner's log masking: mask them here.
        let secrets = printer.secrets();
        let pairs: Vec<(&str, String)> = outputs
            .pairs()
            .into_iter()
            .map(|(k, v)| (k, secrets.mask(&v)))
            .collect();
        super::github::write_outputs_from_env(&pairs)?;
        let mut md = super::github::summary_markdown(run, &printer.secrets());
        let charts = super::timeline::markdown(timelines, 3);
        if !charts.is_empty() {
            md.push('\n');
            md.push_str(&charts);
        }
        let plans: Vec<crate::plan::ServicePlan> =
            run.services.iter().filter_map(|r| r.plan.clone()).collect();
        for section in crate::plan::ServicePlan::release_markdown(&plans) {
            md.push('\n');
            md.push_str(&section);
            md.push('\n');
        }
        // GitHub takes up to 1 MiB of summary per step.
        let md = super::escape::md_truncate(
            &printer.secrets().mask(&md),
            SUMMARY_MAX_CHARS,
            "\n\n> **Note:** this summary was cut to stay within GitHub's size limit; the full report is in the job log.\n",
        );
        super::github::append_summary_from_env(&md)?;
    }
    // The services that ended in an error instead of a result, after the others' results.
    for e in &run.errors {
        for d in &e.diagnostics {
            printer.diagnostic(d);
        }
    }
    Ok(run.exit_code())
}

/// The closing table of a run of several services: revision before and after, outcome,
/// duration and why, then one line with the counts and the exit code.
pub(crate) fn run_table(run: &RunResult) -> String {
    let rows: Vec<[String; 5]> = run
        .services
        .iter()
        .map(|s| {
            let rev = |a: &str| short_arn(a).to_string();
            let revision = match (&s.previous_task_definition_arn, &s.task_definition_arn) {
                (Some(p), Some(t)) if p != t => format!("{} -> {}", rev(p), rev(t)),
                (None, Some(t)) if s.registered || s.deployment_id.is_some() => {
                    format!("new {}", rev(t))
                }
                (_, Some(t)) => rev(t),
                (Some(p), None) => rev(p),
                (None, None) => "-".into(),
            };
            let duration = if s.outcome == RunOutcome::Skipped {
                "-".into()
            } else {
                format!("{}s", s.duration.as_secs())
            };
            [
                s.service.clone(),
                revision,
                s.outcome.label().to_string(),
                duration,
                s.detail.clone(),
            ]
        })
        .collect();
    let mut out = crate::report::table(
        ["SERVICE", "REVISION", "OUTCOME", "DURATION", "DETAIL"],
        &rows,
    );
    let mut counts: Vec<(&str, usize)> = Vec::new();
    for s in &run.services {
        let label = s.outcome.label();
        match counts.iter_mut().find(|(l, _)| *l == label) {
            Some((_, n)) => *n += 1,
            None => counts.push((label, 1)),
        }
    }
    out.push_str(&format!(
        "{} of {}: {} (exit {})",
        run.operation.name(),
        run.services.len(),
        counts
            .iter()
            .map(|(l, n)| format!("{n} {l}"))
            .collect::<Vec<_>>()
            .join(", "),
        run.exit_code() as u8
    ));
    out
}

/// The text summary of one service's result.
pub(crate) fn text(r: &ServiceResult) -> String {
    let mut out = format!(
        "{}: {} — {}\n",
        r.service,
        r.outcome.label().to_uppercase(),
        r.detail
    );
    if let Some(td) = &r.task_definition_arn {
        out.push_str(&format!("  task definition: {td}\n"));
    }
    if let Some(prev) = &r.previous_task_definition_arn
        && r.task_definition_arn.as_ref() != Some(prev)
    {
        out.push_str(&format!("  previous:        {prev}\n"));
    }
    if let Some(d) = &r.deployment_id {
        out.push_str(&format!("  deployment:      {d}\n"));
    }
    if !r.duration.is_zero() {
        out.push_str(&format!("  duration:        {}s\n", r.duration.as_secs()));
    }
    if let Some(rb) = &r.rollback {
        out.push_str(&format!(
            "  rollback:        {} ({}, {:.0}s){}\n",
            rb.method,
            match (rb.done, r.outcome) {
                (true, _) => "done",
                (false, RunOutcome::NotFollowed) => "started, not followed",
                (false, _) => "not done",
            },
            rb.seconds,
            rb.to_task_definition_arn
                .as_deref()
                .map(|t| format!(" to {}", short_arn(t)))
                .unwrap_or_default()
        ));
        // What serves at the end, by identity, when it is not the deployment named above.
        if let Some(d) = rb
            .deployment_id
            .as_ref()
            .filter(|d| Some(*d) != r.deployment_id.as_ref())
        {
            out.push_str(&format!("  serving:         deployment {d}\n"));
        }
    }
    // A stop reason an explained failure names is said there, with its container and code.
    for c in r
        .stopped_tasks
        .iter()
        .filter(|c| !r.failures.iter().any(|f| f.stopped_reason == c.reason))
    {
        out.push_str(&format!("  stopped x{}: {}\n", c.count, c.reason));
    }
    for f in &r.failures {
        out.push_str(&failure_text(f));
    }
    if let Some(j) = &r.journey {
        for line in j.lines() {
            out.push_str(&format!("  {line}\n"));
        }
    }
    out
}

/// One failure in the text summary: heading, diagnosis and fix, tasks, the log tail (or why
/// there is none).
fn failure_text(f: &Failure) -> String {
    let mut out = format!("  failure: {}\n", f.heading());
    if let Some(d) = &f.diagnosis {
        out.push_str(&format!("    diagnosis: {}\n", d.summary));
        out.push_str(&format!("    fix:       {}\n", d.fix));
        if let Some(at) = &d.at {
            out.push_str(&format!("    at:        {at}\n"));
        }
    }
    if !f.task_ids.is_empty() {
        out.push_str(&format!("    tasks:     {}\n", f.task_ids.join(", ")));
    }
    match (&f.log.unavailable, &f.log.stream) {
        (Some(why), _) => out.push_str(&format!("    log:       {why}\n")),
        (None, Some(stream)) => {
            out.push_str(&format!(
                "    log:       last {} line{} of {} in {}\n",
                f.log.lines.len(),
                if f.log.lines.len() == 1 { "" } else { "s" },
                stream,
                f.log.group.as_deref().unwrap_or("?")
            ));
            for l in &f.log.lines {
                out.push_str(&format!("      | {l}\n"));
            }
        }
        (None, None) => {}
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deploy::result::{Operation, RollbackReport};

    fn crash() -> Failure {
        use crate::deploy::core::diagnosis::{Cause, Diagnosis, Log, Place};
        use crate::untrusted::Untrusted;
        Failure {
            tasks: 2,
            task_ids: vec!["t1".into(), "t2".into()],
            container: Some("app".into()),
            exit_code: Some(1),
            stop_code: Some("EssentialContainerExited".into()),
            stopped_reason: Untrusted::new("Essential container in task exited"),
            container_reason: None,
            diagnosis: Some(Diagnosis {
                cause: Cause::Crash,
                summary: "container app exited with code 1".into(),
                fix: "read the log".into(),
                at: Some(Place {
                    file: "td.json".into(),
                    line: 3,
                    col: 7,
                }),
            }),
            log: Log {
                group: Some("/ecs/app".into()),
                stream: Some("ecs/app/t1".into()),
                lines: vec![
                    Untrusted::new("boot"),
                    Untrusted::new("evil\n::error::forged\u{1b}[2J"),
                ],
                unavailable: None,
            },
        }
    }

    #[test]
    fn a_failure_shows_heading_diagnosis_place_and_log_lines_each_on_one_line() {
        let mut r = ServiceResult::new(Operation::Deploy, "c", "web");
        r.outcome = RunOutcome::FailedNotRolledBack;
        r.failures = vec![crash()];
        let t = text(&r);
        assert!(
            t.contains("  failure: 2 tasks failed: container app exit code 1 (EssentialContainerExited: Essential container in task exited)\n"),
            "{t}"
        );
        assert!(
            t.contains("    diagnosis: container app exited with code 1\n"),
            "{t}"
        );
        assert!(t.contains("    at:        td.json:3:7\n"), "{t}");
        assert!(
            t.contains("    log:       last 2 lines of ecs/app/t1 in /ecs/app\n"),
            "{t}"
        );
        // A container's line cannot start a line of its own or move the cursor.
        assert!(
            t.contains("      | evil\\n::error::forged\\u{1b}[2J\n"),
            "{t}"
        );
        assert!(!t.contains("\n::error::"), "{t}");
        assert!(!t.contains('\u{1b}'), "{t}");
    }

    #[test]
    fn a_rolled_back_deploy_names_the_deployment_that_serves() {
        let mut r = ServiceResult::new(Operation::Deploy, "c", "web");
        r.outcome = RunOutcome::FailedRolledBack;
        r.deployment_id = Some("ecs-svc/2".into());
        r.rollback = Some(RollbackReport {
            method: "following the rollback ECS started".into(),
            to_task_definition_arn: Some("arn:aws:ecs:r:1:task-definition/web:1".into()),
            source: None,
            done: true,
            detail: "rolled back".into(),
            deployment_id: Some("ecs-svc/1".into()),
            seconds: 2.0,
        });
        let t = text(&r);
        assert!(t.contains("  deployment:      ecs-svc/2\n"), "{t}");
        assert!(
            t.contains("  serving:         deployment ecs-svc/1\n"),
            "{t}"
        );
        // A rollback's own result already names what serves: no second line.
        r.deployment_id = Some("ecs-svc/1".into());
        assert!(!text(&r).contains("serving:"), "{}", text(&r));
    }
}
