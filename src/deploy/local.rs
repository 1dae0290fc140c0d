//! The local half of a deploy: render, decode and validate a config's definitions, and read
//! its `rollout:` settings. Nothing here talks to AWS, so a run can refuse bad input before
//! its first mutating call.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value;

use super::rollback::WaitRollback;
use super::verdict::FastFail;
use crate::aws::types::{CreateServiceInput, RegisterTaskDefinitionInput};
use crate::config::{Config, parse_duration};
use crate::error::{Diagnostic, Error, ErrorKind, Result, did_you_mean};
use crate::model;
use crate::render::plugins::Lookups;
use crate::render::{self, RenderContext};

/// What to do when the run is cancelled (SIGINT/SIGTERM) during a rollout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnCancel {
    /// Roll the deployment back (default).
    Rollback,
    /// Leave the deployment running on its own.
    Leave,
}

/// cortado's own settings from the config's `rollout:` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rollout {
    /// Roll back on our own when the deployment fails (default true).
    pub rollback: bool,
    pub on_cancel: OnCancel,
    pub fast_fail: FastFail,
    /// When a followed rollback counts as done.
    pub wait_rollback: WaitRollback,
}

impl Default for Rollout {
    fn default() -> Self {
        Rollout {
            rollback: true,
            on_cancel: OnCancel::Rollback,
            fast_fail: FastFail::default(),
            wait_rollback: WaitRollback::default(),
        }
    }
}

const ROLLOUT_KEYS: &[&str] = &["rollback", "on_cancel", "fast_fail", "wait_rollback"];
const FAST_FAIL_KEYS: &[&str] = &["enabled", "same_reason_stops", "unhealthy_target_for"];

/// A config whose definitions rendered and validated.
#[derive(Debug, Clone)]
pub struct Local {
    pub config: Config,
    pub task: RegisterTaskDefinitionInput,
    /// The task definition as camelCase JSON (for comparison with the live one).
    pub task_json: Value,
    pub service: Option<CreateServiceInput>,
    pub service_json: Option<Value>,
    pub rollout: Rollout,
    /// Warnings and notes worth showing (errors stop the run instead).
    pub warnings: Vec<Diagnostic>,
}

impl Local {
    pub fn service_name(&self) -> Result<&str> {
        self.config
            .service
            .as_deref()
            .filter(|s| !s.is_empty())
            .ok_or_else(|| {
                Error::input(
                    Diagnostic::error("the config names no service")
                        .at(self.config.document.locate(""))
                        .hint("add `service: NAME` to the config file"),
                )
            })
    }
}

/// What loading a run's configs found: the configs that loaded, and every finding (errors,
/// warnings, notes) of all of them, in the order of the configs.
#[derive(Debug, Default)]
pub struct Loaded {
    pub locals: Vec<Local>,
    pub findings: Vec<Diagnostic>,
    /// The config files looked at.
    pub checked: Vec<PathBuf>,
    /// The kind of failure when it was not bad input (an AWS error inside a lookup).
    pub kind: Option<ErrorKind>,
}

impl Loaded {
    pub fn errors(&self) -> usize {
        self.findings.iter().filter(|d| d.is_error()).count()
    }

    /// The loaded configs, or every finding as one error when any finding is an error.
    pub fn into_locals(self) -> Result<Vec<Local>> {
        if self.errors() > 0 {
            let mut e = Error::findings(self.findings);
            if let Some(k) = self.kind {
                e.kind = k;
            }
            return Err(e);
        }
        Ok(self.locals)
    }
}

/// The one config-loading path of every command: load each config (a template itself), add
/// its plugins' functions, render and decode its definitions, validate them, read
/// `rollout:`. Never stops at the first problem: `validate` reports exactly what `deploy`
/// would reject, for every config at once.
pub fn load_all(ctx: &RenderContext, paths: &[PathBuf], lookups: &Lookups) -> Loaded {
    let mut out = Loaded::default();
    for path in paths {
        out.checked.push(path.clone());
        let loaded = crate::config::load(ctx, path).and_then(|cfg| {
            let ctx = crate::render::plugins::with_plugins(ctx, &cfg, lookups)?;
            load(&ctx, cfg)
        });
        match loaded {
            Ok(l) => {
                out.findings.extend(l.warnings.iter().cloned());
                out.locals.push(l);
            }
            Err(e) => {
                if e.kind != ErrorKind::BadInput {
                    out.kind.get_or_insert(e.kind);
                }
                out.findings.extend(e.diagnostics);
            }
        }
    }
    out
}

/// Renders and validates `config`'s definitions. Every finding is collected (both
/// definitions are rendered even when one fails); any error fails the whole config.
pub fn load(ctx: &RenderContext, config: Config) -> Result<Local> {
    let mut findings: Vec<Diagnostic> = config.warnings.clone();
    let Some(task_path) = config.task_definition.clone() else {
        findings.push(
            Diagnostic::error("the config names no task_definition")
                .at(config.document.locate(""))
                .hint("add `task_definition: ecs-task-def.json` (relative to the config file)"),
        );
        return Err(Error::findings(findings));
    };
    let task_doc = render::load(ctx, &task_path);
    let service_doc = config
        .service_definition
        .as_ref()
        .map(|p| render::load(ctx, p));
    let mut rendered = true;
    for e in std::iter::once(task_doc.as_ref().err())
        .chain(service_doc.iter().map(|r| r.as_ref().err()))
        .flatten()
    {
        rendered = false;
        findings.extend(e.diagnostics.iter().cloned());
    }
    if !rendered {
        // Keep the kind of the first failure (an AWS error in a lookup stays an AWS error).
        let kind = task_doc
            .as_ref()
            .err()
            .or(service_doc.as_ref().and_then(|r| r.as_ref().err()))
            .map(|e| e.kind);
        let mut err = Error::findings(findings);
        if let Some(k) = kind {
            err.kind = k;
        }
        return Err(err);
    }
    let (Ok(task_doc), service_doc) = (task_doc, service_doc.transpose().ok().flatten()) else {
        return Err(Error::internal("rendered definitions went missing"));
    };
    let task = model::task_definition(&task_doc);
    let service = service_doc.as_ref().map(model::service_definition);
    findings.extend(task.diagnostics.iter().cloned());
    if let Some(s) = &service {
        findings.extend(s.diagnostics.iter().cloned());
    }
    findings.extend(model::validate(
        (&task, &task_doc),
        service.as_ref().zip(service_doc.as_ref()),
    ));
    let rollout = read_rollout(&config, &mut findings);
    if findings.iter().any(Diagnostic::is_error) {
        return Err(Error::findings(findings));
    }
    let Some(task_input) = task.input.clone() else {
        return Err(Error::findings(findings));
    };
    let task_json = model::task_definition_to_json(&task_input)?;
    let (service_input, service_json) = match &service {
        Some(s) => match &s.input {
            Some(input) => (
                Some(input.clone()),
                Some(model::service_definition_to_json(input)?),
            ),
            None => (None, None),
        },
        None => (None, None),
    };
    Ok(Local {
        config,
        task: task_input,
        task_json,
        service: service_input,
        service_json,
        rollout,
        warnings: findings,
    })
}

/// Reads `rollout:`; problems become located findings.
fn read_rollout(config: &Config, findings: &mut Vec<Diagnostic>) -> Rollout {
    let mut r = Rollout::default();
    let doc = &config.document;
    let unknown = |key: &str, known: &[&str], at: &str, findings: &mut Vec<Diagnostic>| {
        let mut d = Diagnostic::warning(format!(
            "unknown key {key:?} in rollout settings is ignored"
        ))
        .at(doc.locate_key(at));
        d.hint = Some(match did_you_mean(key, known.iter().copied()) {
            Some(s) => format!("did you mean {s:?}?"),
            None => format!("known keys: {}", known.join(", ")),
        });
        findings.push(d);
    };
    let bad = |at: &str, what: &str, findings: &mut Vec<Diagnostic>| {
        findings.push(
            Diagnostic::error(format!(
                "`{}` must be {what}",
                at.trim_start_matches('/').replace('/', ".")
            ))
            .at(doc.locate(at))
            .hint(format!("write it as {what}")),
        );
    };
    for (key, value) in &config.rollout {
        let at = format!("/rollout/{key}");
        match key.as_str() {
            "rollback" => match value.as_bool() {
                Some(b) => r.rollback = b,
                None => bad(&at, "true or false", findings),
            },
            "on_cancel" => match value.as_str() {
                Some("rollback") => r.on_cancel = OnCancel::Rollback,
                Some("leave") => r.on_cancel = OnCancel::Leave,
                _ => bad(&at, "\"rollback\" or \"leave\"", findings),
            },
            "wait_rollback" => match value.as_str() {
                Some("serving") => r.wait_rollback = WaitRollback::Serving,
                Some("complete") => r.wait_rollback = WaitRollback::Complete,
                _ => bad(&at, "\"serving\" or \"complete\"", findings),
            },
            "fast_fail" => match value {
                Value::Bool(b) => r.fast_fail.enabled = *b,
                Value::Object(m) => {
                    for (k, v) in m {
                        let at = format!("{at}/{k}");
                        match k.as_str() {
                            "enabled" => match v.as_bool() {
                                Some(b) => r.fast_fail.enabled = b,
                                None => bad(&at, "true or false", findings),
                            },
                            "same_reason_stops" => match v.as_u64().filter(|n| *n >= 1) {
                                Some(n) => r.fast_fail.same_reason_stops = n as usize,
                                None => bad(&at, "a whole number of at least 1", findings),
                            },
                            "unhealthy_target_for" => match v.as_str().map(parse_duration) {
                                Some(Ok(d)) => r.fast_fail.unhealthy_target_for = d,
                                _ => bad(&at, "a duration such as 5m (0 turns it off)", findings),
                            },
                            other => unknown(other, FAST_FAIL_KEYS, &at, findings),
                        }
                    }
                }
                _ => bad(&at, "true, false or a mapping", findings),
            },
            other => unknown(other, ROLLOUT_KEYS, &at, findings),
        }
    }
    r
}

/// The deadline of a run: flag, else config, else 10 minutes.
pub fn timeout(flag: Option<Duration>, config: &Config) -> Duration {
    flag.or(config.timeout).unwrap_or(Duration::from_secs(600))
}
