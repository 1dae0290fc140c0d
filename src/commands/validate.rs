//! `cortado validate`: render everything and check it; list every finding.

use serde_json::json;

use crate::error::{Error, ExitCode, Result};
use crate::report::{Format, Printer, diagnostic_json};
use crate::settings::Settings;

pub fn run(settings: &Settings, printer: &mut Printer) -> Result<ExitCode> {
    let ctx = settings.render_context()?;
    printer.set_secrets(ctx.secrets.clone());
    // The same loading path as every other command: what deploy would reject, this rejects.
    let lookups = super::session::lookups(settings);
    let loaded = crate::deploy::local::load_all(&ctx, &settings.config_paths()?, &lookups);
    let checked: Vec<String> = loaded
        .checked
        .iter()
        .map(|p| p.display().to_string())
        .collect();
    let kind = loaded.kind;
    let findings = loaded.findings;
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
        let mut e = Error::bad_input(summary)
            .with_hint("fix the errors above and run `cortado validate` again");
        // An AWS failure inside a lookup keeps its class (exit 7), not "bad input".
        if let Some(k) = kind {
            e.kind = k;
        }
        return Err(e);
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
