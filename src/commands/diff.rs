//! `cortado diff`: the normalized diff of the rendered definitions against what runs, as
//! text, Markdown or JSON; `--comment` keeps the sticky pull-request comment. Exit 0 whether
//! or not something differs, as ecspresso's `diff`; with `--exit-code`, 2 when something does.

use serde_json::json;

use super::session;
use crate::deploy::controller::seam::DeployFlags;
use crate::deploy::engine::Engine;
use crate::error::{ExitCode, Result};
use crate::plan::ServicePlan;
use crate::report::Printer;
use crate::settings::Settings;

#[derive(Debug, clap::Args)]
pub struct DiffArgs {
    /// Output format (default: a unified diff, coloured on a terminal).
    #[arg(long, value_enum, default_value_t = DiffFormat::Text)]
    pub format: DiffFormat,
    /// Create or update the sticky comment on the pull request (GITHUB_EVENT_PATH,
    /// GITHUB_REPOSITORY, GITHUB_TOKEN, GITHUB_API_URL).
    #[arg(long)]
    pub comment: bool,
    /// Exit 2 when something differs (default: 0 either way, as ecspresso's `diff`).
    #[arg(long)]
    pub exit_code: bool,
    /// Compare the task definition only, not the service's attributes.
    #[arg(long, conflicts_with = "with_service")]
    pub without_service: bool,
    /// Compare the service's attributes too (the default; ecspresso's flag).
    #[arg(long)]
    pub with_service: bool,
    /// Show each difference with `COMMAND LIVE_FILE RENDERED_FILE` (secrets hidden) instead;
    /// ECSPRESSO_DIFF_COMMAND sets it too.
    #[arg(long, value_name = "COMMAND", env = "CORTADO_DIFF_COMMAND")]
    pub external: Option<String>,
    /// Show the definitions as Jsonnet instead of JSON (text output and --external files).
    #[arg(long)]
    pub jsonnet: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DiffFormat {
    Text,
    Markdown,
    Json,
}

/// `cortado diff`: exit 0, or 2 with changes when `--exit-code` asks.
pub async fn run(settings: &Settings, printer: &mut Printer, args: &DiffArgs) -> Result<ExitCode> {
    let (locals, s) = session::open(settings, printer).await?;
    let emitter = crate::deploy::event::Emitter::new();
    let engine = Engine::new(&s.clients, &emitter, session::cancel_on_signals());
    let mut plans = Vec::new();
    for local in &locals {
        let mut plan = if local.service_opt().is_none() {
            crate::deploy::controller::ecs::task_only_plan(&s.clients, local).await?
        } else {
            engine.plan(local, &DeployFlags::default()).await?.plan
        };
        if args.without_service {
            plan.service_before = None;
            plan.service_after = None;
        }
        plans.push(plan);
    }
    let external = args
        .external
        .clone()
        .or_else(|| std::env::var("ECSPRESSO_DIFF_COMMAND").ok())
        .filter(|c| !c.trim().is_empty());
    if let Some(command) = external {
        for p in &plans {
            external_diff(printer, &command, p, args.jsonnet)?;
        }
        return Ok(exit(plans.iter().any(|p| p.changed()), args));
    }
    let changed = plans.iter().any(|p| p.changed());
    match args.format {
        DiffFormat::Text => {
            for p in &plans {
                if args.jsonnet {
                    // Jsonnet escapes strings its own way: hide secrets in the values first.
                    let mut p = p.clone();
                    for v in [
                        p.task_before.as_mut(),
                        Some(&mut p.task_after),
                        p.service_before.as_mut(),
                        p.service_after.as_mut(),
                    ]
                    .into_iter()
                    .flatten()
                    {
                        printer.secrets().mask_value(v);
                    }
                    printer.out(&p.text_as(printer.color(), true));
                } else {
                    printer.out(&p.text(printer.color()));
                }
            }
        }
        DiffFormat::Markdown => {
            printer.out(&ServicePlan::release_markdown(&plans).join("\n\n"));
        }
        DiffFormat::Json => printer.out_json(&json!({
            "changed": changed,
            "services": plans.iter().map(|p| p.json()).collect::<Vec<_>>(),
        })),
    }
    if args.comment {
        let api = crate::github::GitHubApi::from_env(None)?;
        let sections: Vec<String> = ServicePlan::release_markdown(&plans)
            .iter()
            .map(|s| printer.secrets().mask(s))
            .collect();
        let body = crate::github::comment_body("diff", "cortado: deploy plan", &sections);
        let action = crate::github::upsert_comment(&api, "diff", &body).await?;
        printer.info(&format!("pull request comment: {action:?}"));
    }
    if crate::report::github::is_actions() {
        // Step outputs are not masked by the runner's log masking: mask them here.
        let diff: String = plans
            .iter()
            .map(|p| printer.secrets().mask(&p.diff_text(false)))
            .collect();
        crate::report::github::write_outputs_from_env(&[
            ("changed", changed.to_string()),
            ("diff", diff),
        ])?;
    }
    Ok(exit(changed, args))
}

fn exit(changed: bool, args: &DiffArgs) -> ExitCode {
    if changed && args.exit_code {
        ExitCode::Changes
    } else {
        ExitCode::Success
    }
}

/// `--external COMMAND`: the command run on two files per definition (live, rendered), its
/// output passed on. Its exit status is its own business (diff tools exit 1 on a difference).
fn external_diff(
    printer: &Printer,
    command: &str,
    plan: &ServicePlan,
    jsonnet: bool,
) -> Result<()> {
    let pairs = [
        (
            "taskdef",
            plan.task_before.clone(),
            Some(plan.task_after.clone()),
        ),
        (
            "servicedef",
            plan.service_before.clone(),
            plan.service_after.clone(),
        ),
    ];
    let dir = tempfile_dir()?;
    for (what, before, after) in pairs {
        let Some(after) = after else { continue };
        let show = |v: &serde_json::Value| {
            let mut v = v.clone();
            printer.secrets().mask_value(&mut v);
            if jsonnet {
                crate::report::diffview::to_jsonnet(&v)
            } else {
                crate::render::to_pretty(&v)
            }
        };
        let ext = if jsonnet { "jsonnet" } else { "json" };
        let live = dir.join(format!("{}-{what}.live.{ext}", plan.service));
        let rendered = dir.join(format!("{}-{what}.rendered.{ext}", plan.service));
        let before = before.as_ref().map(show).unwrap_or_default();
        for (path, text) in [(&live, before), (&rendered, show(&after))] {
            std::fs::write(path, text).map_err(|e| crate::error::Error::io(path, &e, "write"))?;
        }
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("{command} \"$1\" \"$2\""))
            .arg("cortado-diff")
            .arg(&live)
            .arg(&rendered)
            .stdin(std::process::Stdio::null())
            .output()
            .map_err(|e| {
                crate::error::Error::bad_input(format!("--external {command:?} cannot run: {e}"))
            })?;
        printer.out(&String::from_utf8_lossy(&out.stdout));
        let err = String::from_utf8_lossy(&out.stderr);
        if !err.trim().is_empty() {
            printer.info(err.trim_end());
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

/// A fresh private folder for the external diff's files.
fn tempfile_dir() -> Result<std::path::PathBuf> {
    let dir = std::env::temp_dir().join(format!(
        "cortado-diff-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default()
    ));
    let mut b = std::fs::DirBuilder::new();
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut b, 0o700);
    b.create(&dir)
        .map_err(|e| crate::error::Error::io(&dir, &e, "create"))?;
    Ok(dir)
}
