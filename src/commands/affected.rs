//! `cortado affected`: the steps of the release (or the configs given) that a git change
//! touches ([`crate::affected`]), as text, JSON and, under GitHub Actions, a job matrix in
//! `$GITHUB_OUTPUT`. Reads files and runs git; no AWS call.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::affected::{self, Affected, Diff};
use crate::error::{ExitCode, Result};
use crate::release::{Action, Release};
use crate::report::{Format, Printer, table};
use crate::settings::Settings;

#[derive(Debug, clap::Args, Default)]
pub struct AffectedArgs {
    /// Compare from this ref (its merge base with the head): a branch, tag or commit.
    #[arg(long, value_name = "REF")]
    pub base: String,
    /// Compare to this ref (default: the working tree, uncommitted and untracked files too).
    #[arg(long, value_name = "REF")]
    pub head: Option<String>,
}

/// The folder git runs in: the release file's, else the first config's.
fn anchor(release: &Release) -> PathBuf {
    let first = release
        .path
        .as_deref()
        .or_else(|| release.steps.first().map(|s| s.config.as_path()));
    match first.and_then(Path::parent) {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// What `base..head` touches among the run's steps (the release's, or one per config).
pub(crate) fn detect(
    settings: &Settings,
    base: &str,
    head: Option<&str>,
) -> Result<(Release, Diff, Affected)> {
    let release = settings.release()?;
    let ctx = settings.render_context()?;
    let started = std::time::Instant::now();
    let diff = Diff::between(&anchor(&release), base, head)?;
    let envfiles: Vec<PathBuf> = release
        .envfiles
        .iter()
        .chain(&settings.envfiles)
        .cloned()
        .collect();
    let mut found = affected::affected(&release, &ctx, &envfiles, &diff);
    found.elapsed = started.elapsed();
    Ok((release, diff, found))
}

/// The matrix a next job fans out over: one entry per touched step that deploys.
fn matrix(release: &Release, found: &Affected) -> Value {
    let include: Vec<Value> = found
        .hits
        .iter()
        .map(|h| &release.steps[h.step])
        .filter(|s| s.action == Action::Deploy)
        .map(|s| json!({"name": s.name, "config": s.config.display().to_string()}))
        .collect();
    json!({ "include": include })
}

pub fn run(settings: &Settings, printer: &mut Printer, args: &AffectedArgs) -> Result<ExitCode> {
    let (release, diff, found) = detect(settings, &args.base, args.head.as_deref())?;
    for w in &found.warnings {
        printer.diagnostic(w);
    }
    let matrix = matrix(&release, &found);
    let touched = found.steps();
    match printer.format {
        Format::Json => printer.out_json(&json!({
            "base": args.base,
            "merge_base": diff.from,
            "head": args.head,
            "changed": diff.changed,
            "affected": found.hits.iter().map(|h| {
                let s = &release.steps[h.step];
                json!({
                    "name": s.name,
                    "config": s.config.display().to_string(),
                    "action": affected::action_name(&s.action),
                    "because": h.because,
                })
            }).collect::<Vec<_>>(),
            "unaffected": release.steps.iter().enumerate()
                .filter(|(i, _)| !touched.contains(i))
                .map(|(_, s)| s.name.clone())
                .collect::<Vec<_>>(),
            "untouched": found.untouched,
            "matrix": matrix,
            "elapsed_ms": found.elapsed.as_secs_f64() * 1000.0,
        })),
        Format::Text if !found.hits.is_empty() => {
            let rows: Vec<[String; 4]> = found
                .hits
                .iter()
                .map(|h| {
                    let s = &release.steps[h.step];
                    let first = &h.because[0];
                    let more = match h.because.len() {
                        1 => String::new(),
                        n => format!(" (+{} more)", n - 1),
                    };
                    [
                        s.name.clone(),
                        affected::action_name(&s.action).to_string(),
                        s.config.display().to_string(),
                        format!("{}: {}{more}", first.path, first.why),
                    ]
                })
                .collect();
            printer.out(&table(["STEP", "ACTION", "CONFIG", "BECAUSE"], &rows));
        }
        Format::Text => {}
    }
    printer.info(&format!(
        "{} of {} step{} affected by {} changed file{} since {} ({:.1} ms, no AWS call)",
        touched.len(),
        release.steps.len(),
        if release.steps.len() == 1 { "" } else { "s" },
        diff.changed.len(),
        if diff.changed.len() == 1 { "" } else { "s" },
        short(&diff.from),
        found.elapsed.as_secs_f64() * 1000.0,
    ));
    // `any` says whether the matrix has a job: GitHub refuses a matrix with no entry, so the
    // fan-out job needs `if: needs.affected.outputs.any == 'true'`.
    let any = matrix["include"].as_array().is_some_and(|a| !a.is_empty());
    let names: Vec<&str> = touched
        .iter()
        .map(|i| release.steps[*i].name.as_str())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let outputs = crate::report::github::AffectedOutputs {
        matrix: serde_json::to_string(&matrix).unwrap_or_default(),
        any,
        steps: serde_json::to_string(&names).unwrap_or_default(),
    };
    crate::report::github::write_outputs_from_env(&outputs.pairs())?;
    Ok(ExitCode::Success)
}

fn short(sha: &str) -> &str {
    sha.get(..12).unwrap_or(sha)
}
