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

/// A plugin function of any number of string parameters (an `external` plugin's `num_args`).
#[derive(Acyclic)]
struct PluginStrings(PluginCall);

impl jrsonnet_evaluator::function::builtin::NativeCallbackHandler for PluginStrings {
    fn call(&self, args: &[Val]) -> jrsonnet_evaluator::Result<Val> {
        let mut strings = Vec::with_capacity(args.len());
        for (i, a) in args.iter().enumerate() {
            match a.as_str() {
                Some(s) => strings.push(Value::Str(s.to_string())),
                None => {
                    return Err(jrsonnet_evaluator::error::ErrorKind::RuntimeError(
                        format!("{}: argument {} must be a string", self.0.name, i + 1).into(),
                    )
                    .into());
                }
            }
        }
        self.0.call(&strings)
    }
}

/// How deeply brackets may nest, and how many prefix operators may follow each other, in a
/// Jsonnet file. The evaluator's parser recurses once per level; past these limits the file is
/// refused with a located error instead of exhausting the stack (found by tests/fuzz.rs:
/// 300 nested `[` overflowed the main thread's 8 MiB stack in a debug build).
const MAX_NESTING: usize = 500;

/// How many expressions that nest without brackets (`local ...;` and `assert ...;` chains,
/// `if`, `function`, `error`) may be open at once, counting those of every enclosing bracket.
/// 30,000 chained `local`s overflowed even the evaluation thread's stack in a debug build.
const MAX_CHAIN: usize = 5000;

/// The stack of the thread that evaluates Jsonnet. Address space only: pages are committed as
/// the evaluator uses them. With it, 3,000 nested arrays, `local` or `if` chains evaluate in a
/// debug build; the evaluator's own frame limit reports deeper recursion as a Jsonnet error.
const STACK_BYTES: usize = 512 << 20;

/// Evaluates the Jsonnet file at `path` (whose text is `source`) to pretty JSON text.
///
/// Runs on a thread of its own with a large stack (see [`STACK_BYTES`]), after checking that
/// the source does not nest deeper than [`MAX_NESTING`], holding at most
/// [`super::memory::JSONNET_MAX_BYTES`] (see [`super::memory`]).
pub(crate) fn evaluate(ctx: &RenderContext, path: &Path, source: &str) -> Result<String> {
    check_nesting(path, source)?;
    for (name, code) in &ctx.ext_code {
        check_nesting(Path::new(&format!("--ext-code {name}")), code)?;
    }
    let bounded = || {
        let _bound = super::memory::limit(
            super::memory::JSONNET_MAX_BYTES,
            &path.display().to_string(),
        );
        evaluate_here(ctx, path, source)
    };
    std::thread::scope(|scope| {
        let spawned = std::thread::Builder::new()
            .name("jsonnet".into())
            .stack_size(STACK_BYTES)
            .spawn_scoped(scope, bounded);
        match spawned {
            Ok(handle) => handle
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
            // No thread (address space or thread limits): evaluate on this one.
            Err(_) => bounded(),
        }
    })
}

/// Refuses Jsonnet whose brackets nest deeper than [`MAX_NESTING`], that chains more than
/// [`MAX_NESTING`] prefix operators (`- - - 1`), or that may nest more than [`MAX_CHAIN`]
/// expressions without brackets. Strings, text blocks and comments are skipped. The count is
/// an upper bound of the real nesting (sibling fields each holding an `if` count too).
fn check_nesting(path: &Path, source: &str) -> Result<()> {
    let b = source.as_bytes();
    // Chain counts of the open brackets (the file itself first), and their sum.
    let mut frames = vec![0usize];
    let mut chained = 0usize;
    let mut prefix_run = 0usize;
    let mut i = 0;
    let too_deep = |at: usize, what: &str, limit: usize| {
        Error::input(
            Diagnostic::error(format!("the Jsonnet {what} (more than {limit})"))
                .at(Location::from_offset(path, source, at, 1))
                .hint("simplify the nesting: cortado refuses deeper Jsonnet rather than risk exhausting the stack"),
        )
    };
    while i < b.len() {
        let c = b[i];
        match c {
            b' ' | b'\t' | b'\r' | b'\n' => {
                i += 1;
                continue;
            }
            b'-' | b'+' | b'!' | b'~' => {
                prefix_run += 1;
                if prefix_run > MAX_NESTING {
                    return Err(too_deep(i, "chains too many prefix operators", MAX_NESTING));
                }
                i += 1;
                continue;
            }
            _ => prefix_run = 0,
        }
        if let Some(next) = skip_literal(b, i) {
            i = next;
            continue;
        }
        let chain = |frames: &mut Vec<usize>, chained: &mut usize, at: usize| {
            if let Some(top) = frames.last_mut() {
                *top += 1;
            }
            *chained += 1;
            if *chained > MAX_CHAIN {
                return Err(too_deep(
                    at,
                    "nests too many expressions (local, assert, if, function, error)",
                    MAX_CHAIN,
                ));
            }
            Ok(())
        };
        match c {
            b'(' | b'[' | b'{' => {
                frames.push(0);
                if frames.len() - 1 > MAX_NESTING {
                    return Err(too_deep(i, "nests brackets too deeply", MAX_NESTING));
                }
                i += 1;
            }
            b')' | b']' | b'}' => {
                if frames.len() > 1 {
                    chained -= frames.pop().unwrap_or(0);
                }
                i += 1;
            }
            b';' => {
                chain(&mut frames, &mut chained, i)?;
                i += 1;
            }
            c if c == b'_' || c.is_ascii_alphabetic() => {
                let start = i;
                while i < b.len() && (b[i] == b'_' || b[i].is_ascii_alphanumeric()) {
                    i += 1;
                }
                if matches!(&b[start..i], b"if" | b"function" | b"error" | b"assert") {
                    chain(&mut frames, &mut chained, start)?;
                }
            }
            _ => i += 1,
        }
    }
    Ok(())
}

/// Where the comment, string or text block starting at `i` ends; None when none starts there.
fn skip_literal(b: &[u8], mut i: usize) -> Option<usize> {
    Some(match b[i] {
        b'#' => line_end(b, i),
        b'/' if b.get(i + 1) == Some(&b'/') => line_end(b, i),
        b'/' if b.get(i + 1) == Some(&b'*') => find(b, i + 2, b"*/").map_or(b.len(), |e| e + 2),
        b'|' if b[i..].starts_with(b"|||") => find(b, i + 3, b"|||").map_or(b.len(), |e| e + 3),
        b'@' if matches!(b.get(i + 1), Some(b'\'' | b'"')) => {
            // Verbatim string: the quote doubled is an escaped quote.
            let q = b[i + 1];
            i += 2;
            while i < b.len() {
                if b[i] == q {
                    if b.get(i + 1) == Some(&q) {
                        i += 2;
                        continue;
                    }
                    break;
                }
                i += 1;
            }
            i + 1
        }
        c @ (b'\'' | b'"') => {
            i += 1;
            while i < b.len() && b[i] != c {
                i += if b[i] == b'\\' { 2 } else { 1 };
            }
            i + 1
        }
        _ => return None,
    })
}

fn line_end(b: &[u8], from: usize) -> usize {
    b[from..]
        .iter()
        .position(|&c| c == b'\n')
        .map_or(b.len(), |e| from + e)
}

fn find(b: &[u8], from: usize, needle: &[u8]) -> Option<usize> {
    b.get(from..)?
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|e| from + e)
}

fn evaluate_here(ctx: &RenderContext, path: &Path, source: &str) -> Result<String> {
    let vars: Rc<BTreeMap<String, String>> = Rc::new((*ctx.vars).clone());
    let init = jrsonnet_stdlib::ContextInitializer::new(PathResolver::new_cwd_fallback());
    for (k, v) in &ctx.ext_str {
        init.add_ext_str(IStr::from(k.as_str()), IStr::from(v.as_str()));
    }
    for (k, code) in &ctx.ext_code {
        init.add_ext_code(k, code)
            .map_err(|e| Error::bad_input(format!("--ext-code {k}: {e}")))?;
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
            NativeParams::Strings(count) => {
                let params = (0..count).map(|i| format!("arg{i}")).collect();
                // The evaluator's interface for natives of a count known only at run time.
                #[allow(deprecated)]
                let native = jrsonnet_evaluator::function::builtin::NativeCallback::new(
                    params,
                    PluginStrings(f),
                );
                init.add_native(n.name.as_str(), native)
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
