//! GitHub Actions output, used when `GITHUB_ACTIONS=true`.
//!
//! Receives diagnostics, the deploy [`Event`] stream and a run's results; hands on
//! - workflow commands on stdout (`::group::`, `::error file=…::`, …) with the runner's
//!   escaping (the printer writes `::add-mask::` on stderr), log text that would run as a
//!   command inside `::stop-commands::` ([`escape`]),
//! - step outputs appended to the file named by `$GITHUB_OUTPUT` (multi-line values in the
//!   `name<<DELIMITER` form with a delimiter checked not to occur in the value),
//! - Markdown appended to the job summary (`$GITHUB_STEP_SUMMARY`).
//!
//! Output names of a deploy (see [`DeployOutputs`]): `task-definition-arn`, `revision`,
//! `deployment-id`, `status`, `rolled-back`, `duration-seconds`, `diff`, `changed`.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use sha2::{Digest, Sha256};

use crate::deploy::core::outcome::RunOutcome;
use crate::deploy::event::{Event, Stamped};
use crate::deploy::result::{Operation, RunResult};
use crate::error::{Diagnostic, Error, Result, Severity};
use crate::render::Secrets;
use crate::report::{escape, lines};

/// True when running inside GitHub Actions (`GITHUB_ACTIONS=true`).
pub fn is_actions() -> bool {
    std::env::var("GITHUB_ACTIONS").is_ok_and(|v| v == "true")
}

/// Escapes the data part of a workflow command (after `::`).
pub fn escape_data(s: &str) -> String {
    s.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// Escapes a property value of a workflow command (`file=…,title=…`).
pub fn escape_property(s: &str) -> String {
    escape_data(s).replace(':', "%3A").replace(',', "%2C")
}

/// `::group::title`
pub fn group(title: &str) -> String {
    format!("::group::{}", escape_data(title))
}

/// `::endgroup::`
pub fn endgroup() -> String {
    "::endgroup::".to_string()
}

/// `::add-mask::value`
pub fn add_mask(value: &str) -> String {
    format!("::add-mask::{}", escape_data(value))
}

/// One `::add-mask::` line per value (blank values are skipped: the runner refuses them).
pub fn add_masks(values: &[String]) -> String {
    values
        .iter()
        .filter(|v| !v.trim().is_empty())
        .map(|v| add_mask(v) + "\n")
        .collect()
}

/// The level of an annotation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Error,
    Warning,
    Notice,
}

impl Level {
    fn command(self) -> &'static str {
        match self {
            Level::Error => "error",
            Level::Warning => "warning",
            Level::Notice => "notice",
        }
    }
}

/// An annotation (`::error …::`, `::warning …::`, `::notice …::`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Annotation {
    pub level: Level,
    pub file: Option<String>,
    pub line: Option<usize>,
    pub col: Option<usize>,
    pub title: Option<String>,
    pub message: String,
}

impl Annotation {
    pub fn new(level: Level, message: impl Into<String>) -> Self {
        Annotation {
            level,
            file: None,
            line: None,
            col: None,
            title: None,
            message: message.into(),
        }
    }

    pub fn title(mut self, title: impl Into<String>) -> Self {
        self.title = Some(title.into());
        self
    }

    /// The workflow command, one line.
    pub fn command(&self) -> String {
        let mut props = Vec::new();
        if let Some(f) = &self.file {
            props.push(format!("file={}", escape_property(f)));
        }
        if let Some(l) = self.line {
            props.push(format!("line={l}"));
        }
        if let Some(c) = self.col {
            props.push(format!("col={c}"));
        }
        if let Some(t) = &self.title {
            props.push(format!("title={}", escape_property(t)));
        }
        let sep = if props.is_empty() { "" } else { " " };
        format!(
            "::{}{sep}{}::{}",
            self.level.command(),
            props.join(","),
            escape_data(&self.message)
        )
    }
}

/// The annotation of a diagnostic: file/line/col from its location (line and column only when
/// known), the hint appended to the message.
pub fn annotation(d: &Diagnostic) -> Annotation {
    let level = match d.severity {
        Severity::Error => Level::Error,
        Severity::Warning => Level::Warning,
        Severity::Note => Level::Notice,
    };
    let mut message = d.message.clone();
    if let Some(h) = &d.hint {
        message.push_str("\nhint: ");
        message.push_str(h);
    }
    let loc = d.location.as_ref();
    let line = loc.map(|l| l.line).filter(|l| *l > 0);
    Annotation {
        level,
        file: loc.map(|l| l.path.display().to_string()),
        line,
        col: loc.map(|l| l.col).filter(|c| *c > 0 && line.is_some()),
        title: Some(format!("cortado: {}", d.severity)),
        message,
    }
}

/// An output's name must be usable as a key in `$GITHUB_OUTPUT`.
fn check_output_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if ok {
        Ok(())
    } else {
        Err(Error::internal(format!(
            "invalid GitHub Actions output name {name:?}: use letters, digits, '-' and '_'"
        )))
    }
}

/// A delimiter for a multi-line output that does not occur in `value`: `ghadelimiter_` and the
/// hex of a hash of the time, the process id and a round number, the next round while the
/// candidate occurs in the value.
fn delimiter_for(value: &str) -> String {
    let time = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let mut seed = time.to_le_bytes().to_vec();
    seed.extend_from_slice(&std::process::id().to_le_bytes());
    seeded_delimiter(&seed, value)
}

fn seeded_delimiter(seed: &[u8], value: &str) -> String {
    let mut round: u64 = 0;
    loop {
        let mut h = Sha256::new();
        h.update(seed);
        h.update(round.to_le_bytes());
        let hex: String = h.finalize()[..16]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let delim = format!("ghadelimiter_{hex}");
        if !value.contains(&delim) {
            return delim;
        }
        round += 1;
    }
}

/// The text appended to `$GITHUB_OUTPUT` for one output: `name=value\n`, or for a value with a
/// line break `name<<DELIM\nvalue\nDELIM\n`.
pub fn output_entry(name: &str, value: &str) -> Result<String> {
    output_entry_with(name, value, delimiter_for)
}

fn output_entry_with(
    name: &str,
    value: &str,
    delimiter: impl Fn(&str) -> String,
) -> Result<String> {
    check_output_name(name)?;
    if value.contains('\n') || value.contains('\r') {
        let delim = delimiter(value);
        if value.contains(&delim) {
            return Err(Error::internal(format!(
                "the delimiter for output {name} occurs in its value"
            )));
        }
        Ok(format!("{name}<<{delim}\n{value}\n{delim}\n"))
    } else {
        Ok(format!("{name}={value}\n"))
    }
}

fn append(path: &Path, text: &str, what: &str) -> Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| Error::io(path, &e, &format!("open the {what} file")))?;
    f.write_all(text.as_bytes())
        .map_err(|e| Error::io(path, &e, &format!("write the {what} file")))
}

/// Appends outputs to the file at `path`.
pub fn write_outputs(path: &Path, outputs: &[(&str, String)]) -> Result<()> {
    let mut text = String::new();
    for (name, value) in outputs {
        text.push_str(&output_entry(name, value)?);
    }
    append(path, &text, "GitHub Actions output")
}

/// Appends outputs to `$GITHUB_OUTPUT`; does nothing when it is not set.
pub fn write_outputs_from_env(outputs: &[(&str, String)]) -> Result<()> {
    match std::env::var_os("GITHUB_OUTPUT").filter(|v| !v.is_empty()) {
        Some(p) => write_outputs(Path::new(&p), outputs),
        None => Ok(()),
    }
}

/// Appends Markdown to the job summary file at `path`.
pub fn append_summary(path: &Path, markdown: &str) -> Result<()> {
    let mut text = markdown.to_string();
    if !text.ends_with('\n') {
        text.push('\n');
    }
    append(path, &text, "GitHub Actions job summary")
}

/// Appends Markdown to `$GITHUB_STEP_SUMMARY`; does nothing when it is not set.
pub fn append_summary_from_env(markdown: &str) -> Result<()> {
    match std::env::var_os("GITHUB_STEP_SUMMARY").filter(|v| !v.is_empty()) {
        Some(p) => append_summary(Path::new(&p), markdown),
        None => Ok(()),
    }
}

/// The step outputs of a deploy.
///
/// | output | value |
/// |---|---|
/// | `task-definition-arn` | the task definition the service now runs (of the last service, when several) |
/// | `revision` | its revision number |
/// | `deployment-id` | the ECS deployment id (`ecs-svc/…`) we started |
/// | `status` | `succeeded`, `failed`, `rolled-back`, `rollback-failed` or `unknown` (no verdict) |
/// | `rolled-back` | `true` when a rollback finished successfully |
/// | `duration-seconds` | whole seconds from the first to the last event |
/// | `diff` | the rendered diff (multi-line), when the command computed one |
/// | `changed` | `true` when a revision was registered or a deployment started |
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeployOutputs {
    pub task_definition_arn: Option<String>,
    pub revision: Option<u64>,
    pub deployment_id: Option<String>,
    pub service_deployment_arn: Option<String>,
    pub status: String,
    pub rolled_back: bool,
    pub duration_seconds: u64,
    pub diff: Option<String>,
    pub changed: bool,
    /// One entry per service, as JSON.
    pub services: String,
}

impl DeployOutputs {
    /// Outputs of a run, read off its result (the worst service's status; the task
    /// definition, revision and deployment of the last service that has them).
    pub fn from_result(run: &RunResult) -> Self {
        let mut o = DeployOutputs {
            status: run
                .worst()
                .map_or("no-change", |s| s.outcome.status())
                .to_string(),
            ..Default::default()
        };
        for s in &run.services {
            if let Some(td) = s
                .serving_task_definition_arn()
                .or(s.task_definition_arn.as_deref())
            {
                o.task_definition_arn = Some(td.to_string());
            }
            if s.deployment_id.is_some() {
                o.deployment_id = s.deployment_id.clone();
            }
            if s.service_deployment_arn.is_some() {
                o.service_deployment_arn = s.service_deployment_arn.clone();
            }
            o.rolled_back |= s.rollback.as_ref().is_some_and(|r| r.done);
            o.changed |=
                s.registered || (s.operation == Operation::Deploy && s.deployment_id.is_some());
            o.duration_seconds = o
                .duration_seconds
                .max(s.duration.as_secs_f64().round() as u64);
        }
        o.services = serde_json::Value::Array(
            run.services
                .iter()
                .map(|s| {
                    serde_json::json!({
                        "service": s.service,
                        "cluster": s.cluster,
                        "status": s.outcome.status(),
                        "task_definition_arn": s.serving_task_definition_arn().or(s.task_definition_arn.as_deref()),
                        "previous_task_definition_arn": s.previous_task_definition_arn,
                        "duration_seconds": s.duration.as_secs(),
                        "detail": s.detail,
                    })
                })
                .collect(),
        )
        .to_string();
        o.revision = o
            .task_definition_arn
            .as_deref()
            .and_then(|a| a.rsplit(':').next())
            .and_then(|r| r.parse().ok());
        o
    }

    /// `(name, value)` pairs in the documented order; absent values are empty strings.
    pub fn pairs(&self) -> Vec<(&'static str, String)> {
        vec![
            (
                "task-definition-arn",
                self.task_definition_arn.clone().unwrap_or_default(),
            ),
            (
                "revision",
                self.revision.map(|r| r.to_string()).unwrap_or_default(),
            ),
            (
                "deployment-id",
                self.deployment_id.clone().unwrap_or_default(),
            ),
            (
                "service-deployment-arn",
                self.service_deployment_arn.clone().unwrap_or_default(),
            ),
            ("status", self.status.clone()),
            ("rolled-back", self.rolled_back.to_string()),
            ("duration-seconds", self.duration_seconds.to_string()),
            ("diff", self.diff.clone().unwrap_or_default()),
            ("changed", self.changed.to_string()),
            ("services", self.services.clone()),
        ]
    }
}

/// The step outputs `cortado affected` writes, for a next job to fan out over.
///
/// | output | value |
/// | --- | --- |
/// | `matrix` | `{"include": [{"name", "config"}]}`: one entry per touched step that deploys |
/// | `any` | `true` when the matrix has an entry (GitHub refuses a matrix with none) |
/// | `steps` | the names of every touched step, one-off task steps included, as a JSON list |
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AffectedOutputs {
    pub matrix: String,
    pub any: bool,
    pub steps: String,
}

impl AffectedOutputs {
    /// `(name, value)` for each output, in the order they are written.
    pub fn pairs(&self) -> Vec<(&'static str, String)> {
        vec![
            ("matrix", self.matrix.clone()),
            ("any", self.any.to_string()),
            ("steps", self.steps.clone()),
        ]
    }
}

/// A job-summary table of a run: one row per service with its outcome, revisions,
/// deployment, duration and the rollback, then the stop reasons of failed services. Text that
/// ECS, a gate or a container wrote is masked, then shown in code spans (see [`escape`]).
pub fn summary_markdown(run: &RunResult, secrets: &Secrets) -> String {
    let cell = |s: &str| escape::md_cell(&secrets.mask(s));
    let code = |s: &str| escape::md_code(&secrets.mask(s));
    let mut md = format!(
        "### cortado {}\n\n| service | result | task definition | deployment | duration |\n|---|---|---|---|---|\n",
        run.operation.name()
    );
    for s in &run.services {
        let icon = match s.outcome {
            RunOutcome::Succeeded | RunOutcome::NoChange => "✅",
            RunOutcome::DryRun | RunOutcome::NotFollowed => "ℹ️",
            RunOutcome::Paused => "⏸️",
            RunOutcome::FailedRolledBack | RunOutcome::TimedOut { rolled_back: true } => "↩️",
            RunOutcome::Cancelled => "⏹️",
            RunOutcome::Skipped => "⏭️",
            RunOutcome::RollbackFailed => "🔥",
            _ => "❌",
        };
        let td = match (&s.previous_task_definition_arn, &s.task_definition_arn) {
            (Some(p), Some(t)) if p != t => format!("{} → {}", cell(short(p)), cell(short(t))),
            (_, Some(t)) => cell(short(t)),
            (Some(p), None) => cell(short(p)),
            (None, None) => String::new(),
        };
        md.push_str(&format!(
            "| {} | {icon} {}: {} | {td} | {} | {}s |\n",
            cell(&s.service),
            s.outcome.label(),
            cell(&s.detail),
            s.deployment_id.as_deref().map(cell).unwrap_or_default(),
            s.duration.as_secs()
        ));
    }
    for s in &run.services {
        let Some(j) = &s.journey else { continue };
        md.push_str(&format!("\n**{}**\n", code(&s.service)));
        for line in j.lines() {
            md.push_str(&format!("- {}\n", code(&line)));
        }
        for g in j.gates.iter().filter(|g| !g.passed && !g.tail.is_empty()) {
            md.push_str(&format!(
                "\n<details><summary>last lines of the gate at {}</summary>\n\n{}</details>\n",
                code(&g.stage),
                escape::md_fence("", &secrets.mask(&g.tail.join("\n")))
            ));
        }
    }
    for s in run.services.iter().filter(|s| !s.stopped_tasks.is_empty()) {
        md.push_str(&format!(
            "\n**{}**: tasks of the deployment stopped with\n",
            code(&s.service)
        ));
        for c in &s.stopped_tasks {
            md.push_str(&format!("- {} × {}\n", c.count, code(c.reason.as_str())));
        }
    }
    for s in run.services.iter().filter(|s| !s.failures.is_empty()) {
        md.push_str(&format!("\n**{}**: why it failed\n", code(&s.service)));
        for f in &s.failures {
            md.push_str(&format!("\n- {}\n", code(&f.heading())));
            if let Some(d) = &f.diagnosis {
                md.push_str(&format!(
                    "  - diagnosis: {}\n  - fix: {}\n",
                    code(&d.summary),
                    code(&d.fix)
                ));
                if let Some(at) = &d.at {
                    md.push_str(&format!("  - at: {}\n", code(&at.to_string())));
                }
            }
            match (&f.log.unavailable, &f.log.stream) {
                (Some(why), _) => md.push_str(&format!("  - log: {}\n", code(why))),
                (None, Some(stream)) => {
                    let lines: Vec<String> = f.log.lines.iter().map(|l| l.to_string()).collect();
                    md.push_str(&format!(
                        "\n<details><summary>last {} log lines of {}</summary>\n\n{}</details>\n",
                        lines.len(),
                        code(stream),
                        escape::md_fence("", &secrets.mask(&lines.join("\n")))
                    ));
                }
                (None, None) => {}
            }
        }
    }
    secrets.mask(&md)
}

fn short(arn: &str) -> &str {
    arn.rsplit('/').next().unwrap_or(arn)
}

/// Turns the deploy event stream into Actions log output: one `::group::` per service's event
/// log (closed at its verdict; reopened when events of several services interleave, since the
/// runner does not nest groups), plain lines inside, `::error` annotations for failed verdicts,
/// failed rollbacks and the failed tasks of our deployment — one per distinct stop reason, with
/// its count, at the verdict (a crash loop is one annotation, not one per task) — `::warning`
/// for warnings. Secret values are masked in every line (the printer announces them to the
/// runner, on stderr); a line that would run as a workflow command goes inside
/// `::stop-commands::`.
pub struct ActionsSink<W: Write> {
    out: W,
    secrets: Secrets,
    open: Option<String>,
    /// Our deployment id per service, to tell our stopped tasks from the old ones.
    ours: BTreeMap<String, String>,
    /// Per service, the stop reasons of our failed tasks not annotated yet, with counts.
    failed_tasks: BTreeMap<String, Vec<(crate::untrusted::Untrusted, usize)>>,
}

impl<W: Write> ActionsSink<W> {
    pub fn new(out: W, secrets: Secrets) -> Self {
        ActionsSink {
            out,
            secrets,
            open: None,
            ours: BTreeMap::new(),
            failed_tasks: BTreeMap::new(),
        }
    }

    /// One of cortado's own workflow commands.
    fn line(&mut self, text: &str) {
        let _ = writeln!(self.out, "{text}");
    }

    /// Log text (masked): inside `::stop-commands::` when a line of it would run.
    fn text(&mut self, text: &str) {
        let block = escape::actions_stdout(&self.secrets.mask(text));
        let _ = self.out.write_all(block.as_bytes());
    }

    fn open_group(&mut self, service: &str, title: String) {
        if self.open.as_deref() == Some(service) {
            return;
        }
        self.close_group();
        let title = self.secrets.mask(&title);
        self.line(&group(&title));
        self.open = Some(service.to_string());
    }

    fn close_group(&mut self) {
        if self.open.take().is_some() {
            self.line(&endgroup());
        }
    }

    fn annotate(&mut self, a: Annotation) {
        let a = Annotation {
            message: self.secrets.mask(&a.message),
            title: a.title.map(|t| self.secrets.mask(&t)),
            ..a
        };
        self.line(&a.command());
    }

    /// Handles one event.
    pub fn handle(&mut self, e: &Stamped) {
        let text = lines::plain(e);
        let service = service_of(&e.event);
        if let Some(s) = service {
            let title = match &e.event {
                Event::RollbackStarted { .. } | Event::RollbackFinished { .. } => {
                    format!("cortado: {s}: rollback")
                }
                _ => format!("cortado: {s}"),
            };
            self.open_group(s, title);
        }
        self.text(&text);
        match &e.event {
            Event::DeploymentStarted {
                service,
                deployment_id,
                ..
            } => {
                self.ours.insert(service.clone(), deployment_id.clone());
            }
            Event::TaskStopped {
                service,
                started_by,
                reason,
                failed,
                ..
            } => {
                let ours = match (started_by, self.ours.get(service)) {
                    (Some(by), Some(id)) => by == id,
                    _ => true,
                };
                // Only failed tasks are errors; scale-in and replacement stay plain lines.
                if ours && *failed {
                    let seen = self.failed_tasks.entry(service.clone()).or_default();
                    match seen.iter_mut().find(|(r, _)| r == reason) {
                        Some((_, n)) => *n += 1,
                        None => seen.push((reason.clone(), 1)),
                    }
                }
            }
            Event::Verdict {
                service,
                success,
                detail,
            } => {
                self.close_group();
                self.annotate_failed_tasks(service);
                if !success {
                    self.annotate(
                        Annotation::new(Level::Error, detail.clone())
                            .title(format!("{service}: deployment failed")),
                    );
                }
            }
            Event::RollbackFinished {
                service,
                success,
                detail,
            } => {
                self.close_group();
                self.annotate_failed_tasks(service);
                if !success {
                    self.annotate(
                        Annotation::new(Level::Error, detail.clone())
                            .title(format!("{service}: rollback failed")),
                    );
                }
            }
            Event::Warning { message } => {
                self.annotate(Annotation::new(Level::Warning, message.clone()).title("cortado"));
            }
            Event::Explained {
                service,
                failure,
                diagnosis,
                fix,
                at,
            } => {
                let mut message = failure.clone();
                if let Some(d) = diagnosis {
                    message.push_str(&format!(". Diagnosis: {d}"));
                }
                if let Some(f) = fix {
                    message.push_str(&format!(". Fix: {f}"));
                }
                let mut note = Annotation::new(Level::Error, message)
                    .title(format!("{service}: why it failed"));
                if let Some(at) = at {
                    note.file = Some(at.file.clone());
                    note.line = (at.line > 0).then_some(at.line);
                    note.col = (at.col > 0).then_some(at.col);
                }
                self.annotate(note);
            }
            _ => {}
        }
        let _ = self.out.flush();
    }

    /// One `::error` per distinct stop reason of `service`'s failed tasks seen so far, with
    /// how many tasks stopped with it.
    fn annotate_failed_tasks(&mut self, service: &str) {
        for (reason, n) in self.failed_tasks.remove(service).unwrap_or_default() {
            let title = match n {
                1 => format!("{service}: task stopped"),
                n => format!("{service}: {n} tasks stopped"),
            };
            self.annotate(Annotation::new(Level::Error, reason.as_str()).title(title));
        }
    }

    /// Closes a group left open (a run that ended without a verdict) and annotates failed
    /// tasks no verdict has annotated.
    pub fn finish(&mut self) {
        self.close_group();
        let services: Vec<String> = self.failed_tasks.keys().cloned().collect();
        for s in services {
            self.annotate_failed_tasks(&s);
        }
        let _ = self.out.flush();
    }
}

/// The service an event belongs to, when it names one.
fn service_of(e: &Event) -> Option<&str> {
    match e {
        Event::Plan { service, .. }
        | Event::DeploymentStarted { service, .. }
        | Event::Progress { service, .. }
        | Event::ServiceEvent { service, .. }
        | Event::TaskStopped { service, .. }
        | Event::TargetHealth { service, .. }
        | Event::Traffic { service, .. }
        | Event::Stage { service, .. }
        | Event::Hook { service, .. }
        | Event::HookWaiting { service, .. }
        | Event::GateStarted { service, .. }
        | Event::GateOutput { service, .. }
        | Event::GateFinished { service, .. }
        | Event::Verdict { service, .. }
        | Event::RollbackStarted { service, .. }
        | Event::RollbackFinished { service, .. }
        | Event::TaskStarted { service, .. }
        | Event::TaskLogs { service, .. }
        | Event::TaskStatus { service, .. }
        | Event::TaskLog { service, .. }
        | Event::TaskStopRequested { service, .. }
        | Event::TaskEnded { service, .. } => Some(service),
        Event::Registered { .. }
        | Event::RegistrationSkipped { .. }
        | Event::Warning { .. }
        | Event::Note { .. } => None,
        Event::Explained { service, .. } => Some(service),
    }
}

/// A sink for [`crate::deploy::event::Emitter::subscribe`] writing Actions output to `out`
/// (stdout in production).
pub fn actions_sink<W: Write + Send + 'static>(
    out: W,
    secrets: Secrets,
) -> impl FnMut(&Stamped) + Send + 'static {
    let mut sink = ActionsSink::new(out, secrets);
    move |e| sink.handle(e)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Location;

    #[test]
    fn data_escapes_percent_cr_lf_only() {
        assert_eq!(escape_data("100%\r\nok: a,b"), "100%25%0D%0Aok: a,b");
        // `%` first, so an escape already in the text is not decoded by the runner.
        assert_eq!(escape_data("%0A"), "%250A");
    }

    #[test]
    fn properties_also_escape_colon_and_comma() {
        assert_eq!(escape_property("a:b,c%\n"), "a%3Ab%2Cc%25%0A");
    }

    #[test]
    fn commands_carry_escaped_titles_and_values() {
        assert_eq!(group("web: deploy\n"), "::group::web: deploy%0A");
        assert_eq!(endgroup(), "::endgroup::");
        assert_eq!(add_mask("p%ss\nword"), "::add-mask::p%25ss%0Aword");
        let a = Annotation::new(Level::Warning, "slow, very").title("t:1");
        assert_eq!(a.command(), "::warning title=t%3A1::slow, very");
        assert_eq!(
            Annotation::new(Level::Notice, "hi").command(),
            "::notice::hi"
        );
    }

    #[test]
    fn diagnostic_becomes_located_annotation_with_hint() {
        let text = "a: 1\nfamliy: x\n";
        let d = Diagnostic::error("unknown key \"famliy\"")
            .at(Location::from_offset("dir,1/c.yml", text, 5, 6))
            .hint("did you mean \"family\"?");
        assert_eq!(
            annotation(&d).command(),
            "::error file=dir%2C1/c.yml,line=2,col=1,title=cortado%3A error::unknown key \"famliy\"%0Ahint: did you mean \"family\"?"
        );
        let w = Diagnostic::warning("w").at_file(Path::new("x.json"));
        assert_eq!(
            annotation(&w).command(),
            "::warning file=x.json,title=cortado%3A warning::w"
        );
        assert_eq!(
            annotation(&Diagnostic::note("n")).command(),
            "::notice title=cortado%3A note::n"
        );
    }

    #[test]
    fn single_line_output_is_name_equals_value() {
        assert_eq!(output_entry("status", "ok").unwrap(), "status=ok\n");
        assert!(output_entry("bad=name", "x").is_err());
        assert!(output_entry("bad\nname", "x").is_err());
    }

    #[test]
    fn multi_line_output_uses_a_fresh_delimiter() {
        let e = output_entry("diff", "a\nb").unwrap();
        let mut lines = e.lines();
        let head = lines.next().unwrap();
        let delim = head.strip_prefix("diff<<").unwrap();
        assert!(
            delim.starts_with("ghadelimiter_") && delim.len() > 20,
            "{delim}"
        );
        assert_eq!(lines.collect::<Vec<_>>(), vec!["a", "b", delim]);
    }

    #[test]
    fn delimiter_never_occurs_in_the_value() {
        let seed = b"fixed seed";
        let first = seeded_delimiter(seed, "plain");
        // A value holding the would-be delimiter gets another one.
        let value = format!("a\n{first}\nb");
        let second = seeded_delimiter(seed, &value);
        assert_ne!(first, second);
        assert!(!value.contains(&second));
        let value2 = format!("{value}\n{second}");
        let third = seeded_delimiter(seed, &value2);
        assert!(third != first && third != second);
        // Through the real entry point, with the run's delimiter planted in the value.
        let entry = output_entry("diff", "x\ny").unwrap();
        let delim = entry
            .lines()
            .next()
            .unwrap()
            .strip_prefix("diff<<")
            .unwrap();
        let planted = format!("x\n{delim}\ny");
        let entry2 = output_entry("diff", &planted).unwrap();
        let delim2 = entry2
            .lines()
            .next()
            .unwrap()
            .strip_prefix("diff<<")
            .unwrap();
        assert!(!planted.contains(delim2));
        assert!(entry2.ends_with(&format!("\n{delim2}\n")));
        // A delimiter function that returns text of the value is refused.
        let err = output_entry_with("diff", "a\nEOF", |_| "EOF".to_string()).unwrap_err();
        assert!(err.to_string().contains("delimiter"), "{err}");
    }

    #[test]
    fn outputs_and_summary_are_appended_to_files() {
        let dir = std::env::temp_dir().join(format!("cortado-gh-out-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let out = dir.join("output");
        let _ = std::fs::remove_file(&out);
        std::fs::write(&out, "earlier=1\n").unwrap();
        write_outputs(
            &out,
            &[("status", "succeeded".into()), ("diff", "-a\n+b".into())],
        )
        .unwrap();
        let text = std::fs::read_to_string(&out).unwrap();
        assert!(
            text.starts_with("earlier=1\nstatus=succeeded\ndiff<<ghadelimiter_"),
            "{text}"
        );
        assert!(text.contains("\n-a\n+b\nghadelimiter_"), "{text}");
        let sum = dir.join("summary");
        let _ = std::fs::remove_file(&sum);
        append_summary(&sum, "# one").unwrap();
        append_summary(&sum, "two\n").unwrap();
        assert_eq!(std::fs::read_to_string(&sum).unwrap(), "# one\ntwo\n");
        let _ = std::fs::remove_dir_all(&dir);
    }

    fn at(t: f64, event: Event) -> Stamped {
        Stamped { time: t, event }
    }

    fn failing_run() -> Vec<Stamped> {
        vec![
            at(
                100.0,
                Event::Registered {
                    task_definition_arn: "arn:aws:ecs:r:1:task-definition/web:7".into(),
                },
            ),
            at(
                101.0,
                Event::DeploymentStarted {
                    service: "web".into(),
                    deployment_id: "ecs-svc/2".into(),
                    service_deployment_arn: None,
                    task_definition_arn: "arn:aws:ecs:r:1:task-definition/web:7".into(),
                    created: false,
                },
            ),
            at(
                110.0,
                Event::TaskStopped {
                    service: "web".into(),
                    task_arn: "arn:aws:ecs:r:1:task/c/old1".into(),
                    started_by: Some("ecs-svc/1".into()),
                    reason: "Scaling activity initiated by deployment".into(),
                    failed: false,
                },
            ),
            at(
                120.0,
                Event::TaskStopped {
                    service: "web".into(),
                    task_arn: "arn:aws:ecs:r:1:task/c/new1".into(),
                    started_by: Some("ecs-svc/2".into()),
                    reason: "Essential container exited: password hunter2 rejected".into(),
                    failed: true,
                },
            ),
            at(
                121.0,
                Event::Warning {
                    message: "poll failed, retrying".into(),
                },
            ),
            at(
                130.0,
                Event::Verdict {
                    service: "web".into(),
                    success: false,
                    detail: "circuit breaker tripped".into(),
                },
            ),
            at(
                131.0,
                Event::RollbackStarted {
                    service: "web".into(),
                    method: "update-service".into(),
                    to_task_definition: Some("arn:aws:ecs:r:1:task-definition/web:6".into()),
                    source: None,
                },
            ),
            at(
                160.0,
                Event::RollbackFinished {
                    service: "web".into(),
                    success: true,
                    detail: "back on web:6".into(),
                },
            ),
        ]
    }

    #[derive(Clone, Default)]
    struct Buf(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);
    impl Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn sink_groups_service_log_and_annotates_failures() {
        let secrets = Secrets::default();
        secrets.add("hunter2");
        let buf = Buf::default();
        let mut sink = actions_sink(buf.clone(), secrets);
        for e in failing_run() {
            sink(&e);
        }
        let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        let got: Vec<&str> = text.lines().collect();
        let commands: Vec<String> = got
            .iter()
            .map(|l| {
                if l.starts_with("::") {
                    l.to_string()
                } else {
                    // plain lines: drop the clock
                    format!("  {}", &l[9..])
                }
            })
            .collect();
        assert_eq!(
            commands,
            vec![
                "  registered task definition arn:aws:ecs:r:1:task-definition/web:7",
                "::group::cortado: web",
                "  web: started deployment ecs-svc/2 of arn:aws:ecs:r:1:task-definition/web:7",
                "  web: task old1 stopped: Scaling activity initiated by deployment",
                "  web: task new1 stopped: Essential container exited: password *** rejected",
                "  warning: poll failed, retrying",
                "::warning title=cortado::poll failed, retrying",
                "  web: FAILED circuit breaker tripped",
                "::endgroup::",
                "::error title=web%3A task stopped::Essential container exited: password *** rejected",
                "::error title=web%3A deployment failed::circuit breaker tripped",
                "::group::cortado: web: rollback",
                "  web: rolling back (update-service) to arn:aws:ecs:r:1:task-definition/web:6",
                "  web: rollback succeeded: back on web:6",
                "::endgroup::",
            ]
        );
        // The secret appears nowhere (the printer announces it to the runner, on stderr).
        assert_eq!(text.matches("hunter2").count(), 0, "{text}");
    }

    #[test]
    fn foreign_text_in_the_log_runs_no_command() {
        let hostile = "OutOfMemory\n::warning title=spoofed::x\r::add-mask::SUCCESS ##[error]y";
        let buf = Buf::default();
        let mut sink = actions_sink(buf.clone(), Secrets::default());
        let started = at(
            0.0,
            Event::DeploymentStarted {
                service: "web".into(),
                deployment_id: "ecs-svc/2".into(),
                service_deployment_arn: None,
                task_definition_arn: "arn:aws:ecs:r:1:task-definition/web:7".into(),
                created: false,
            },
        );
        sink(&started);
        for event in [
            Event::TaskStopped {
                service: "web".into(),
                task_arn: "arn:aws:ecs:r:1:task/c/new1".into(),
                started_by: Some("ecs-svc/2".into()),
                reason: hostile.into(),
                failed: true,
            },
            Event::ServiceEvent {
                service: "web".into(),
                at: None,
                message: hostile.into(),
            },
            Event::GateOutput {
                service: "web".into(),
                stream: "stdout".into(),
                line: hostile.into(),
            },
            // Failed tasks are annotated at the verdict (one per distinct reason).
            Event::Verdict {
                service: "web".into(),
                success: false,
                detail: "failed fast".into(),
            },
        ] {
            sink(&at(1.0, event));
        }
        let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        let ran = escape::runner_would_run(&text);
        // Only cortado's own commands: the group, its end, the stop's annotation and the
        // verdict's.
        assert_eq!(ran.len(), 4, "{ran:#?}\n{text}");
        assert!(ran[0].starts_with("::group::cortado: web"), "{ran:?}");
        assert_eq!(ran[1], "::endgroup::", "{ran:?}");
        assert!(
            ran[2].starts_with("::error title=web%3A task stopped::OutOfMemory%0A::warning"),
            "{ran:?}"
        );
        assert!(
            ran[3].starts_with("::error title=web%3A deployment failed::failed fast"),
            "{ran:?}"
        );
        assert!(text.contains("::stop-commands::"), "{text}");
    }

    #[test]
    fn one_annotation_per_distinct_failure_with_its_count() {
        // A crash loop stops task after task with the same reason: one ::error with the count,
        // not one per task; a different reason is an annotation of its own.
        let mut out = Vec::new();
        {
            let mut sink = ActionsSink::new(&mut out, Secrets::default());
            sink.handle(&at(
                0.0,
                Event::DeploymentStarted {
                    service: "web".into(),
                    deployment_id: "ecs-svc/2".into(),
                    service_deployment_arn: None,
                    task_definition_arn: "arn:aws:ecs:r:1:task-definition/web:7".into(),
                    created: false,
                },
            ));
            let stop = |task: &str, reason: &str| Event::TaskStopped {
                service: "web".into(),
                task_arn: format!("arn:aws:ecs:r:1:task/c/{task}"),
                started_by: Some("ecs-svc/2".into()),
                reason: reason.into(),
                failed: true,
            };
            for (i, t) in ["a", "b", "c"].iter().enumerate() {
                sink.handle(&at(i as f64, stop(t, "Essential container in task exited")));
            }
            sink.handle(&at(4.0, stop("d", "CannotPullContainerError: nope")));
            sink.handle(&at(
                5.0,
                Event::Verdict {
                    service: "web".into(),
                    success: false,
                    detail: "failed fast".into(),
                },
            ));
            sink.finish();
        }
        let text = String::from_utf8(out).unwrap();
        let errors: Vec<&str> = text.lines().filter(|l| l.starts_with("::error")).collect();
        assert_eq!(
            errors,
            vec![
                "::error title=web%3A 3 tasks stopped::Essential container in task exited",
                "::error title=web%3A task stopped::CannotPullContainerError: nope",
                "::error title=web%3A deployment failed::failed fast",
            ],
            "{text}"
        );
    }

    #[test]
    fn scale_in_of_our_own_tasks_is_a_plain_line_not_an_error() {
        // Seen on a crash-loop deploy of examples/hello: ECS scales in tasks of our deployment.
        let mut out = Vec::new();
        {
            let mut sink = ActionsSink::new(&mut out, Secrets::default());
            sink.handle(&at(
                0.0,
                Event::DeploymentStarted {
                    service: "web".into(),
                    deployment_id: "ecs-svc/2".into(),
                    service_deployment_arn: None,
                    task_definition_arn: "arn:aws:ecs:r:1:task-definition/web:7".into(),
                    created: false,
                },
            ));
            sink.handle(&at(
                1.0,
                Event::TaskStopped {
                    service: "web".into(),
                    task_arn: "arn:aws:ecs:r:1:task/c/new2".into(),
                    started_by: Some("ecs-svc/2".into()),
                    reason: "Scaling activity initiated by (deployment ecs-svc/2)".into(),
                    failed: false,
                },
            ));
        }
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.contains("task new2 stopped: Scaling activity"),
            "{text}"
        );
        assert!(!text.contains("::error"), "{text}");
    }

    #[test]
    fn interleaved_services_reopen_groups_and_late_secrets_are_masked() {
        let secrets = Secrets::default();
        let mut out = Vec::new();
        {
            let mut sink = ActionsSink::new(&mut out, secrets.clone());
            let progress = |s: &str| Event::ServiceEvent {
                service: s.into(),
                at: None,
                message: "tick".into(),
            };
            sink.handle(&at(0.0, progress("a")));
            secrets.add("tick");
            sink.handle(&at(1.0, progress("b")));
            sink.handle(&at(2.0, progress("b")));
            sink.finish();
        }
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("a: ecs: tick"), "{text}");
        assert!(
            text.contains("b: ecs: ***") && !text.contains("b: ecs: tick"),
            "{text}"
        );
        let cmds: Vec<&str> = text.lines().filter(|l| l.starts_with("::")).collect();
        assert_eq!(
            cmds,
            vec![
                "::group::cortado: a",
                "::endgroup::",
                "::group::cortado: b",
                "::endgroup::",
            ]
        );
    }

    fn rolled_back_run() -> RunResult {
        use crate::deploy::result::{RollbackReport, ServiceResult, StopCount};
        let mut r = ServiceResult::new(Operation::Deploy, "c", "web");
        r.outcome = RunOutcome::FailedRolledBack;
        r.detail = "circuit breaker tripped; rolled back: back on web:6".into();
        r.registered = true;
        r.task_definition_arn = Some("arn:aws:ecs:r:1:task-definition/web:7".into());
        r.previous_task_definition_arn = Some("arn:aws:ecs:r:1:task-definition/web:6".into());
        r.deployment_id = Some("ecs-svc/2".into());
        r.duration = std::time::Duration::from_secs(60);
        r.stopped_tasks = vec![StopCount {
            reason: "Essential container in task exited".into(),
            count: 3,
        }];
        r.rollback = Some(RollbackReport {
            method: "StopServiceDeployment ROLLBACK".into(),
            to_task_definition_arn: None,
            source: None,
            done: true,
            detail: "rolled back".into(),
            deployment_id: None,
            seconds: 5.0,
        });
        RunResult {
            operation: Operation::Deploy,
            services: vec![r],
            errors: Vec::new(),
        }
    }

    #[test]
    fn outputs_from_a_rolled_back_run() {
        let o = DeployOutputs::from_result(&rolled_back_run());
        assert_eq!(o.status, "rolled-back");
        assert!(o.rolled_back && o.changed);
        // The service runs the previous revision again.
        assert_eq!(o.revision, Some(6));
        assert_eq!(o.deployment_id.as_deref(), Some("ecs-svc/2"));
        assert_eq!(o.duration_seconds, 60);
        let pairs = o.pairs();
        let names: Vec<&str> = pairs.iter().map(|p| p.0).collect();
        assert_eq!(
            names,
            vec![
                "task-definition-arn",
                "revision",
                "deployment-id",
                "service-deployment-arn",
                "status",
                "rolled-back",
                "duration-seconds",
                "diff",
                "changed",
                "services"
            ]
        );
        let services: serde_json::Value = serde_json::from_str(&o.services).unwrap();
        assert_eq!(services[0]["status"], "rolled-back");
        assert_eq!(services.as_array().map(Vec::len), Some(1));
        let empty = RunResult {
            operation: Operation::Deploy,
            services: vec![],
            errors: Vec::new(),
        };
        assert_eq!(DeployOutputs::from_result(&empty).status, "no-change");
    }

    #[test]
    fn outputs_of_a_timed_out_run_say_so() {
        use crate::deploy::result::ServiceResult;
        let mut r = ServiceResult::new(Operation::Deploy, "c", "web");
        r.outcome = RunOutcome::TimedOut { rolled_back: false };
        r.deployment_id = Some("ecs-svc/2".into());
        let run = RunResult {
            operation: Operation::Deploy,
            services: vec![r],
            errors: Vec::new(),
        };
        assert_eq!(DeployOutputs::from_result(&run).status, "timed-out");
        let mut w = ServiceResult::new(Operation::Wait, "c", "web");
        w.outcome = RunOutcome::Succeeded;
        let run = RunResult {
            operation: Operation::Wait,
            services: vec![w],
            errors: Vec::new(),
        };
        let o = DeployOutputs::from_result(&run);
        assert_eq!(o.status, "succeeded");
        assert!(!o.changed);
    }

    #[test]
    fn summary_table_has_a_row_per_service_and_masks() {
        let secrets = Secrets::default();
        secrets.add("back on");
        let md = summary_markdown(&rolled_back_run(), &secrets);
        assert!(md.contains("| `web` | ↩️ failed, rolled back: `circuit breaker tripped; rolled back: *** web:6` | `web:6` → `web:7` | `ecs-svc/2` | 60s |"), "{md}");
        assert!(
            md.contains("- 3 × `Essential container in task exited`"),
            "{md}"
        );
    }

    #[test]
    fn summary_explains_failures_with_the_log_in_an_unbreakable_fence() {
        use crate::deploy::core::diagnosis::{Cause, Diagnosis, Failure, Log};
        use crate::untrusted::Untrusted;
        let secrets = Secrets::default();
        secrets.add("hunter2");
        let mut run = rolled_back_run();
        run.services[0].failures = vec![Failure {
            tasks: 3,
            task_ids: vec!["t1".into()],
            container: Some("app".into()),
            exit_code: Some(1),
            stop_code: Some("EssentialContainerExited".into()),
            stopped_reason: Untrusted::new("Essential container in task exited"),
            container_reason: None,
            diagnosis: Some(Diagnosis {
                cause: Cause::Crash,
                summary: "container app exited with code 1".into(),
                fix: "read the log".into(),
                at: None,
            }),
            log: Log {
                group: Some("/ecs/app".into()),
                stream: Some("ecs/app/t1".into()),
                lines: vec![
                    Untrusted::new("password hunter2 rejected"),
                    Untrusted::new("```"),
                    Untrusted::new("</details> # not closed"),
                ],
                unavailable: None,
            },
        }];
        let md = summary_markdown(&run, &secrets);
        assert!(md.contains("**`web`**: why it failed"), "{md}");
        assert!(
            md.contains("- `3 tasks failed: container app exit code 1"),
            "{md}"
        );
        assert!(
            md.contains("  - diagnosis: `container app exited with code 1`"),
            "{md}"
        );
        assert!(md.contains("last 3 log lines of `ecs/app/t1`"), "{md}");
        assert!(
            md.contains("password *** rejected") && !md.contains("hunter2"),
            "{md}"
        );
        // The container's backticks cannot close the fence: it is longer than any run inside.
        assert!(md.contains("\n````\npassword"), "{md}");
    }
}
