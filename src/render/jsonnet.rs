//! Jsonnet evaluation with the pure-Rust jrsonnet evaluator.
//!
//! Receives a `.jsonnet` file and the render context; hands on the JSON text it evaluates to.
//! `std.extVar` sees `--ext-str` and `--ext-code`; `std.native('env')(name, default)` and
//! `std.native('must_env')(name)` read the same variables as templates do (environment plus
//! envfiles); the configured plugins' functions are natives too (`std.native('tfstate')`,
//! `cfn_output`, `ssm_list`..., see [`super::plugins`]); imports resolve relative to the
//! importing file. The evaluator's state is not
//! `Send`: call this from synchronous code only.

use std::cell::Cell;
use std::collections::BTreeMap;
use std::path::Path;
use std::rc::Rc;

use jrsonnet_evaluator::function::builtin;
use jrsonnet_evaluator::manifest::JsonFormat;
use jrsonnet_evaluator::trace::PathResolver;
use jrsonnet_evaluator::{FileImportResolver, IStr, State, Val};
use jrsonnet_gcmodule::Acyclic;

use super::template::{Func, Value};
use super::{NativeParams, RenderContext};
use crate::error::{Diagnostic, Error, ErrorKind, Location, Result};

/// The variables visible to the native functions. Acyclic: holds no Jsonnet values.
#[derive(Acyclic, Clone)]
struct Vars(Rc<BTreeMap<String, String>>);

#[builtin(fields(vars: Vars))]
fn native_env(this: &native_env, name: String, default: Option<String>) -> Val {
    match this.vars.0.get(&name).filter(|v| !v.is_empty()) {
        Some(v) => Val::string(v.as_str()),
        None => Val::string(default.unwrap_or_default().as_str()),
    }
}

#[builtin(fields(vars: Vars))]
fn native_must_env(this: &native_must_env, name: String) -> jrsonnet_evaluator::Result<Val> {
    match this.vars.0.get(&name) {
        Some(v) => Ok(Val::string(v.as_str())),
        None => Err(jrsonnet_evaluator::error::ErrorKind::RuntimeError(
            format!("must_env: environment variable {name} is not set").into(),
        )
        .into()),
    }
}

/// A plugin function called from Jsonnet, and where the class of its last failure is kept
/// (an AWS error behind it stays one: exit 7, not 1).
#[derive(Acyclic, Clone)]
struct PluginCall {
    name: String,
    func: Func,
    failed: Rc<Cell<Option<ErrorKind>>>,
}

impl PluginCall {
    fn call(&self, args: &[Value]) -> jrsonnet_evaluator::Result<Val> {
        match (self.func)(args) {
            Ok(v) => Ok(Val::string(super::funcs::to_text(&v).as_str())),
            Err(e) => {
                self.failed.set(Some(e.kind));
                let mut msg = format!("{}: {}", self.name, e.message);
                if let Some(h) = &e.hint {
                    msg.push_str(&format!(" (hint: {h})"));
                }
                Err(jrsonnet_evaluator::error::ErrorKind::RuntimeError(msg.into()).into())
            }
        }
    }
}

#[builtin(fields(f: PluginCall))]
fn native_plugin_one(this: &native_plugin_one, a: String) -> jrsonnet_evaluator::Result<Val> {
    this.f.call(&[Value::Str(a)])
}

#[builtin(fields(f: PluginCall))]
fn native_plugin_two(
    this: &native_plugin_two,
    a: String,
    b: String,
) -> jrsonnet_evaluator::Result<Val> {
    this.f.call(&[Value::Str(a), Value::Str(b)])
}

#[builtin(fields(f: PluginCall))]
fn native_plugin_index(
    this: &native_plugin_index,
    name: String,
    index: f64,
) -> jrsonnet_evaluator::Result<Val> {
    if index.fract() != 0.0 || !index.is_finite() {
        return Err(jrsonnet_evaluator::error::ErrorKind::RuntimeError(
            format!(
                "{}: the index must be a whole number, got {index}",
                this.f.name
            )
            .into(),
        )
        .into());
    }
    this.f.call(&[Value::Str(name), Value::Int(index as i64)])
}

/// Evaluates the Jsonnet file at `path` (whose text is `source`) to pretty JSON text.
pub fn evaluate(ctx: &RenderContext, path: &Path, source: &str) -> Result<String> {
    let vars: Rc<BTreeMap<String, String>> = Rc::new((*ctx.vars).clone());
    let init = jrsonnet_stdlib::ContextInitializer::new(PathResolver::new_cwd_fallback());
    for (k, v) in &ctx.ext_str {
        init.add_ext_str(IStr::from(k.as_str()), IStr::from(v.as_str()));
    }
    for (k, code) in &ctx.ext_code {
        init.add_ext_code(k, code)
            .map_err(|e| Error::msg(format!("--ext-code {k}: {e}")))?;
    }
    init.add_native(
        "env",
        native_env {
            vars: Vars(vars.clone()),
        },
    );
    init.add_native("must_env", native_must_env { vars: Vars(vars) });
    let failed: Rc<Cell<Option<ErrorKind>>> = Rc::default();
    for n in &ctx.natives {
        let f = PluginCall {
            name: n.name.clone(),
            func: n.func.clone(),
            failed: failed.clone(),
        };
        match n.params {
            NativeParams::One => init.add_native(n.name.as_str(), native_plugin_one { f }),
            NativeParams::Two => init.add_native(n.name.as_str(), native_plugin_two { f }),
            NativeParams::NameAndIndex => {
                init.add_native(n.name.as_str(), native_plugin_index { f })
            }
        }
    }
    let mut builder = State::builder();
    builder
        .import_resolver(FileImportResolver::default())
        .context_initializer(init);
    let state = builder.build();
    let _guard = state.try_enter();
    let abs = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    // A failure inside a plugin function keeps the function's class (AWS error: exit 7).
    let fail = |e: &jrsonnet_evaluator::Error| {
        let mut err = jsonnet_error(path, source, e, &ctx.ext_code);
        if let Some(kind) = failed.get() {
            err.kind = kind;
        }
        err
    };
    let val = state.import(abs.as_path()).map_err(|e| fail(&e))?;
    val.manifest(JsonFormat::cli(2)).map_err(|e| fail(&e))
}

/// The file named by a "can't resolve X from Y" message.
fn unresolved_import(message: &str) -> Option<&str> {
    let rest = message.split("can't resolve ").nth(1)?;
    Some(rest.split(" from ").next()?.trim())
}

/// Turns an evaluator error into a diagnostic at the innermost location it names.
fn jsonnet_error(
    path: &Path,
    source: &str,
    e: &jrsonnet_evaluator::Error,
    ext_code: &[(String, String)],
) -> Error {
    use jrsonnet_evaluator::error::ErrorKind;
    let (message, span) = match e.error() {
        ErrorKind::ImportSyntaxError { error, .. } => (
            format!("Jsonnet syntax error: {}", error.message),
            Some(error.location.clone()),
        ),
        other => {
            let span = e.trace().0.iter().find_map(|el| el.location.clone());
            (format!("Jsonnet error: {other}"), span)
        }
    };
    let message = message.trim_end().to_string();
    // An error inside an --ext-code value: name the flag and the column, not the file.
    if let Some(span) = &span
        && span.0.source_path().path().is_none()
        && let Some((name, code)) = ext_code.iter().find(|(_, c)| c.as_str() == span.0.code())
    {
        let [start] = span.0.map_source_locations(&[span.1]);
        return Error::input(
            Diagnostic::error(format!(
                "--ext-code {name}={code}: {message} (column {})",
                start.column
            ))
            .hint("fix the Jsonnet code given to --ext-code (or CORTADO_EXT_CODE)"),
        );
    }
    let location = match span {
        Some(span) => {
            let file = span
                .0
                .source_path()
                .path()
                .map(Path::to_path_buf)
                .unwrap_or_else(|| path.to_path_buf());
            let [start] = span.0.map_source_locations(&[span.1]);
            let code = span.0.code();
            let same = file.canonicalize().ok() == path.canonicalize().ok();
            let shown = if same { path.to_path_buf() } else { file };
            let text: &str = if same { source } else { code };
            let len = (span.2.saturating_sub(span.1) as usize).max(1);
            Location::from_offset(shown, text, start.offset, len)
        }
        // Import failures carry no span: point at the import of the missing file instead.
        None => unresolved_import(&message)
            .and_then(|name| {
                ["'", "\""]
                    .iter()
                    .find_map(|q| source.find(&format!("{q}{name}{q}")))
                    .map(|off| Location::from_offset(path, source, off, name.len() + 2))
            })
            .unwrap_or_else(|| Location::file(path)),
    };
    let hint = if unresolved_import(&message).is_some() {
        "imports are resolved relative to the importing file: check the file name and folder"
    } else if message.contains("must_env") || message.contains("extVar") {
        "set the variable in the environment or an --envfile, or pass --ext-str/--ext-code"
    } else {
        "fix the Jsonnet at the marker; `cortado render` shows the evaluated result"
    };
    Error::input(Diagnostic::error(message).at(location).hint(hint))
}
