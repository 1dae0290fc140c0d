//! `cortado render [config|taskdef|servicedef]...`: the rendered JSON of what it names.
//!
//! One target prints that document; several (default: all) print one JSON object keyed by
//! target name. Several configs print one such result each, in order.
//!
//! `taskdef` and `servicedef` print what would be sent to AWS (the RegisterTaskDefinition and
//! CreateService input), read by the same [`model`] functions `deploy` and `register` use: a
//! describe-task-definition wrapper is unwrapped (its `tags` beside the wrapper become the
//! input's `tags`), read-only fields of describe output are dropped (a note on stderr says
//! which), unknown keys are errors, and keys come out sorted. `config` prints the config as
//! rendered.

use serde_json::{Map, Value};

use crate::error::{Diagnostic, Error, ExitCode, Result};
use crate::model;
use crate::report::Printer;
use crate::settings::Settings;

/// `cortado render`: what to print.
#[derive(Debug, clap::Args)]
pub struct RenderArgs {
    /// What to render (default: all).
    #[arg(value_enum)]
    pub targets: Vec<RenderTarget>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum RenderTarget {
    Config,
    #[value(alias = "task-definition")]
    Taskdef,
    #[value(alias = "service-definition")]
    Servicedef,
    /// An Express Mode service's definition (`express_definition:`).
    Expressdef,
}

pub fn run(settings: &Settings, printer: &mut Printer, args: &RenderArgs) -> Result<ExitCode> {
    let targets = &args.targets[..];
    let ctx = settings.render_context()?;
    printer.set_secrets(ctx.secrets.clone());
    let lookups = super::session::lookups(settings);
    let configs = settings.load_configs(&ctx, printer, &lookups)?;
    let targets: Vec<RenderTarget> = if targets.is_empty() {
        vec![
            RenderTarget::Config,
            RenderTarget::Taskdef,
            RenderTarget::Servicedef,
            RenderTarget::Expressdef,
        ]
    } else {
        targets.to_vec()
    };
    for (cfg, ctx) in &configs {
        let mut out = Map::new();
        for t in &targets {
            let (name, value) = match t {
                RenderTarget::Config => ("config", Some(cfg.document.value.clone())),
                RenderTarget::Taskdef => (
                    "taskdef",
                    match &cfg.task_definition {
                        Some(p) => {
                            let doc = cfg.load_definition(ctx, "task_definition", p)?;
                            let loaded = model::task_definition(&doc);
                            Some(api_input(printer, loaded.json, loaded.diagnostics)?)
                        }
                        None => None,
                    },
                ),
                RenderTarget::Servicedef => (
                    "servicedef",
                    match &cfg.service_definition {
                        Some(p) => {
                            let doc = cfg.load_definition(ctx, "service_definition", p)?;
                            let loaded = model::service_definition(&doc);
                            Some(api_input(printer, loaded.json, loaded.diagnostics)?)
                        }
                        None => None,
                    },
                ),
                RenderTarget::Expressdef => (
                    "expressdef",
                    match &cfg.express_definition {
                        Some(p) => {
                            let doc = cfg.load_definition(ctx, "express_definition", p)?;
                            let loaded = model::express_definition(&doc);
                            let mut v = api_input(printer, loaded.json, loaded.diagnostics)?;
                            // What CreateExpressGatewayService is sent: the config's names.
                            v["serviceName"] =
                                Value::String(cfg.service.clone().unwrap_or_default());
                            v["cluster"] = Value::String(cfg.cluster.clone());
                            Some(v)
                        }
                        None => None,
                    },
                ),
            };
            match value {
                Some(v) => {
                    out.insert(name.to_string(), v);
                }
                None if targets.len() == 1 => {
                    return Err(crate::error::Error::bad_input(format!(
                        "{} names no {}",
                        cfg.path.display(),
                        match name {
                            "taskdef" => "task_definition",
                            "expressdef" => "express_definition",
                            _ => "service_definition",
                        }
                    ))
                    .with_hint("add the key to the config file"));
                }
                None => {}
            }
        }
        if targets.len() == 1 {
            if let Some((_, v)) = out.into_iter().next() {
                printer.out_json(&v);
            }
        } else {
            printer.out_json(&Value::Object(out));
        }
    }
    Ok(ExitCode::Success)
}

/// The API input of a decoded definition: its warnings and notes go to stderr; any error
/// fails the render (deploy would refuse the file too).
fn api_input(printer: &Printer, json: Value, diagnostics: Vec<Diagnostic>) -> Result<Value> {
    if diagnostics.iter().any(Diagnostic::is_error) {
        return Err(Error::findings(diagnostics));
    }
    for d in &diagnostics {
        printer.diagnostic(d);
    }
    Ok(json)
}
