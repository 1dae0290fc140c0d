//! `cortado validate`: render everything and check it; list every finding.

use serde_json::json;

use crate::error::{Diagnostic, Error, ErrorKind, ExitCode, Result};
use crate::render;
use crate::report::{Format, Printer, diagnostic_json};
use crate::settings::Settings;

pub fn run(settings: &Settings, printer: &mut Printer) -> Result<ExitCode> {
    let ctx = settings.render_context()?;
    printer.set_secrets(ctx.secrets.clone());
    let mut findings: Vec<Diagnostic> = Vec::new();
    // BadInput unless rendering hit another class of error (an AWS error behind `ssm`).
    let mut kind = ErrorKind::BadInput;
    let mut checked = Vec::new();
    let lookups = super::session::lookups(settings);
    for path in settings.config_paths()? {
        let cfg = match crate::config::load(&ctx, &path) {
            Ok(cfg) => cfg,
            Err(e) => {
                findings.extend(e.diagnostics);
                continue;
            }
        };
        findings.extend(cfg.warnings.iter().cloned());
        let ctx = match render::plugins::with_plugins(&ctx, &cfg, &lookups) {
            Ok(c) => c,
            Err(e) => {
                findings.extend(e.diagnostics);
                continue;
            }
        };
        let mut load = |p: &Option<std::path::PathBuf>| -> Option<render::Document> {
            let p = p.as_ref()?;
            match render::load(&ctx, p) {
                Ok(doc) => Some(doc),
                Err(e) => {
                    if e.kind != ErrorKind::BadInput {
                        kind = e.kind;
                    }
                    findings.extend(e.diagnostics);
                    None
                }
            }
        };
        let task = load(&cfg.task_definition);
        let service = load(&cfg.service_definition);
        if cfg.task_definition.is_none() {
            findings.push(
                Diagnostic::error("the config names no task_definition")
                    .at(cfg.document.locate(""))
                    .hint("add `task_definition: ecs-task-def.json` (path relative to the config file)"),
            );
        }
        findings.extend(crate::model::check(task.as_ref(), service.as_ref()));
        checked.push(cfg.path.display().to_string());
    }
    let errors = findings.iter().filter(|d| d.is_error()).count();
    let warnings = findings.len() - errors;
    match printer.format {
        Format::Json => printer.out_json(&json!({
            "valid": errors == 0,
            "configs": checked,
            "errors": errors,
            "warnings": warnings,
            "findings": findings.iter().map(diagnostic_json).collect::<Vec<_>>(),
        })),
        Format::Text => {
            for d in &findings {
                printer.diagnostic(d);
            }
        }
    }
    if errors > 0 {
        let summary = format!(
            "validation failed: {errors} error{}, {warnings} warning{}",
            if errors == 1 { "" } else { "s" },
            if warnings == 1 { "" } else { "s" }
        );
        // Findings are already printed; the error only carries the exit class and a summary.
        return Err(Error::new(kind, Diagnostic::error(summary))
            .with_hint("fix the errors above and run `cortado validate` again"));
    }
    if printer.format == Format::Text {
        printer.out(&format!(
            "valid: {} ({warnings} warning{})",
            checked.join(", "),
            if warnings == 1 { "" } else { "s" }
        ));
    }
    Ok(ExitCode::Success)
}
