//! Rendering: input files -> JSON values.
//!
//! Receives a file path and a [`RenderContext`] (variables from the environment and envfiles,
//! Jsonnet ext vars, template functions). Hands on a [`Document`]: the JSON value, the rendered
//! text, and enough position data to point findings about the value back at file:line:col of
//! the source. Jsonnet files are evaluated first and the template pass runs on the JSON they
//! produce (as ecspresso does), so `{{ }}` inside Jsonnet strings works.

pub mod envfile;
pub(crate) mod external;
pub mod funcs;
pub(crate) mod jsonnet;
pub(crate) mod memory;
pub mod plugins;
pub(crate) mod remote_state;
pub(crate) mod secrets;
pub mod spans;
pub mod template;
pub(crate) mod tfstate;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::Value;

use crate::error::{Diagnostic, Error, Location, Result};
pub use secrets::Secrets;
use spans::Spans;
use template::Funcs;

/// Everything a render needs besides the file itself.
#[derive(Clone)]
pub struct RenderContext {
    /// The process environment overlaid with the envfiles (envfile values win).
    pub vars: Arc<BTreeMap<String, String>>,
    /// `--ext-str KEY=VALUE`, for Jsonnet's `std.extVar`.
    pub ext_str: Vec<(String, String)>,
    /// `--ext-code KEY=CODE`, for Jsonnet's `std.extVar`.
    pub ext_code: Vec<(String, String)>,
    pub funcs: Funcs,
    /// Plugin functions Jsonnet files call through `std.native(NAME)`, as in ecspresso.
    pub natives: Vec<Native>,
    pub secrets: Secrets,
}

/// A plugin function exposed to Jsonnet as `std.native(name)`.
#[derive(Clone)]
pub struct Native {
    /// The name with the plugin's `func_prefix`.
    pub name: String,
    pub params: NativeParams,
    pub func: template::Func,
}

/// The parameters of a [`Native`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NativeParams {
    /// One string: `tfstate(address)`, `ssm(name)`, `cfn_export(name)`...
    One,
    /// Two strings: `cfn_output(stack, key)`.
    Two,
    /// A string and a number: `ssm_list(name, index)`.
    NameAndIndex,
    /// This many strings (an `external` plugin's `num_args`).
    Strings(usize),
}

impl RenderContext {
    /// A context over the given variables with the standard template functions.
    pub fn new(vars: BTreeMap<String, String>) -> Self {
        let vars = Arc::new(vars);
        RenderContext {
            funcs: funcs::standard(vars.clone()),
            vars,
            ext_str: Vec::new(),
            ext_code: Vec::new(),
            natives: Vec::new(),
            secrets: Secrets::default(),
        }
    }

    /// A context over the process environment overlaid with `envfiles` (later files win).
    pub fn from_env(envfiles: &[PathBuf]) -> Result<Self> {
        let mut vars: BTreeMap<String, String> = std::env::vars_os()
            .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
            .collect();
        for path in envfiles {
            let text = Error::read_text(path, "read envfile")?;
            vars.extend(envfile::parse(path, &text)?);
        }
        Ok(RenderContext::new(vars))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    Yaml,
    Jsonnet,
}

impl Format {
    /// The format a path's extension names; JSON when there is none we know.
    pub fn of(path: &Path) -> Format {
        match path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            Some("yml" | "yaml") => Format::Yaml,
            Some("jsonnet" | "libsonnet") => Format::Jsonnet,
            _ => Format::Json,
        }
    }
}

/// A rendered input file.
#[derive(Debug, Clone)]
pub struct Document {
    pub path: PathBuf,
    pub format: Format,
    /// The file as written.
    pub source: String,
    /// The text the value was parsed from (after Jsonnet and templates).
    pub rendered: String,
    pub value: Value,
    template: template::Output,
    spans: Spans,
    /// Line starts of `source`, computed the first time a finding is located.
    lines: std::sync::OnceLock<Vec<usize>>,
}

impl Document {
    /// Where the value at `pointer` (a JSON pointer) was written: file:line:col in the source
    /// when it can be traced back, else the nearest enclosing value, else the file.
    pub fn locate(&self, pointer: &str) -> Location {
        self.locate_span(pointer, false)
    }

    /// Like [`Document::locate`] but pointing at the member's key rather than its value.
    pub fn locate_key(&self, pointer: &str) -> Location {
        self.locate_span(pointer, true)
    }

    fn locate_span(&self, pointer: &str, key: bool) -> Location {
        if self.format == Format::Jsonnet {
            return Location::file(&self.path);
        }
        let Some(span) = self.spans.nearest(pointer) else {
            return Location::file(&self.path);
        };
        let (out, len) = match (key, span.key) {
            (true, Some(k)) => (k, span.key_len),
            _ => (
                span.value,
                scalar_len(&self.rendered[span.value.min(self.rendered.len())..]),
            ),
        };
        self.locate_rendered(out, len)
    }

    /// The source location of byte `out` of the rendered text.
    fn locate_rendered(&self, out: usize, len: usize) -> Location {
        if self.format == Format::Jsonnet {
            return Location::file(&self.path);
        }
        let src = self.template.source_offset(out);
        let lines = self
            .lines
            .get_or_init(|| Location::line_starts(&self.source));
        Location::from_offset_in(&self.path, &self.source, Some(lines), src, len)
    }

    /// Serialises the value as cortado prints JSON: 2-space indent, keys in file order.
    pub fn to_pretty(&self) -> String {
        to_pretty(&self.value)
    }
}

/// 2-space indented JSON with a trailing newline.
pub fn to_pretty(value: &Value) -> String {
    let mut s = serde_json::to_string_pretty(value).unwrap_or_default();
    s.push('\n');
    s
}

/// Reads and renders a file.
pub fn load(ctx: &RenderContext, path: &Path) -> Result<Document> {
    let source = Error::read_text(path, "read")?;
    load_str(ctx, path, source)
}

/// Renders `source` as if read from `path` (the path decides the format and anchors imports).
pub fn load_str(ctx: &RenderContext, path: &Path, source: String) -> Result<Document> {
    let format = Format::of(path);
    let (input, is_generated) = match format {
        Format::Jsonnet => (jsonnet::evaluate(ctx, path, &source)?, true),
        _ => (source.clone(), false),
    };
    let template = template::render(&input, &ctx.funcs).map_err(|first| {
        let diagnostics = first
            .all()
            .map(|e| {
                let mut d = Diagnostic::error(e.message.clone());
                d.hint = e.hint.clone();
                if is_generated {
                    d.message = format!("{} (in the JSON produced by the Jsonnet file)", d.message);
                    d.at(Location::file(path))
                } else {
                    d.at(Location::from_offset(path, &source, e.offset, e.len))
                }
            })
            .collect();
        // An AWS error behind a plugin function stays one, wherever it comes in the file.
        let kind = first
            .all()
            .map(|e| e.kind)
            .find(|k| *k != crate::error::ErrorKind::BadInput)
            .unwrap_or(first.kind);
        Error { kind, diagnostics }
    })?;
    let mut doc = Document {
        path: path.to_path_buf(),
        format,
        source,
        rendered: template.text.clone(),
        value: Value::Null,
        template,
        spans: Spans::default(),
        lines: std::sync::OnceLock::new(),
    };
    match format {
        Format::Json | Format::Jsonnet => {
            doc.value = serde_json::from_str(&doc.rendered).map_err(|e| json_error(&doc, &e))?;
            doc.spans = Spans::scan(&doc.rendered);
        }
        Format::Yaml => {
            doc.value = parse_yaml(&doc)?;
            doc.spans = Spans::scan_yaml(&doc.rendered);
        }
    }
    Ok(doc)
}

fn json_error(doc: &Document, e: &serde_json::Error) -> Error {
    let what = match e.classify() {
        serde_json::error::Category::Eof => "unexpected end of JSON",
        _ => "invalid JSON",
    };
    let offset = line_col_offset(&doc.rendered, e.line(), e.column().saturating_sub(1));
    let msg = format!("{what}: {}", strip_position(&e.to_string()));
    let hint = if doc.rendered != doc.source && doc.format != Format::Jsonnet {
        "the file is JSON after template rendering; check for a missing comma or quote, or a template that produced unquoted text (run `cortado render` to see the rendered text)"
    } else {
        "check for a missing comma, bracket or quote near the marker"
    };
    Error::input(
        Diagnostic::error(msg)
            .at(doc.locate_rendered(offset, 1))
            .hint(hint),
    )
}

fn parse_yaml(doc: &Document) -> Result<Value> {
    serde_saphyr::from_str::<Value>(&doc.rendered).map_err(|e| {
        let loc = match e.location() {
            Some(l) if l.line() > 0 => {
                let off = line_col_offset(
                    &doc.rendered,
                    l.line() as usize,
                    (l.column() as usize).saturating_sub(1),
                );
                doc.locate_rendered(off, 1)
            }
            _ => Location::file(&doc.path),
        };
        let text = yaml_message(&e.without_snippet().to_string());
        Error::input(
            Diagnostic::error(format!("invalid YAML: {text}"))
                .at(loc)
                .hint("check indentation and quoting near the marker"),
        )
    })
}

/// The length of the scalar token at the start of `s` (a quoted string, or up to the end of the
/// line or a JSON delimiter); 1 for collections.
fn scalar_len(s: &str) -> usize {
    let line = s.lines().next().unwrap_or("");
    if let Some(q) = line.chars().next().filter(|c| *c == '"' || *c == '\'') {
        let mut escaped = false;
        for (i, c) in line.char_indices().skip(1) {
            match c {
                '\\' if q == '"' && !escaped => escaped = true,
                c if c == q && !escaped => return i + 1,
                _ => escaped = false,
            }
        }
        return line.len().max(1);
    }
    if line.starts_with(['{', '[']) {
        return 1;
    }
    let end = line.find([',', '}', ']', '#']).unwrap_or(line.len());
    line[..end].trim_end().len().max(1)
}

/// The byte offset of a 1-based line and 0-based character column.
pub fn line_col_offset(text: &str, line: usize, col: usize) -> usize {
    let mut off = 0;
    for (i, l) in text.split_inclusive('\n').enumerate() {
        if i + 1 == line {
            return off + l.char_indices().nth(col).map_or(l.len(), |(b, _)| b);
        }
        off += l.len();
    }
    text.len()
}

/// serde-saphyr's message without its "error: line L column C: " prefix.
fn yaml_message(msg: &str) -> String {
    let m = msg.trim().strip_prefix("error: ").unwrap_or(msg.trim());
    let stripped = m.strip_prefix("line ").and_then(|rest| {
        let (_, after) = rest.split_once(" column ")?;
        let (_, text) = after.split_once(": ")?;
        Some(text)
    });
    strip_position(stripped.unwrap_or(m))
}

/// Drops a trailing " at line L column C" that parsers append: the location is shown apart.
fn strip_position(msg: &str) -> String {
    match msg.rfind(" at line ") {
        Some(i) => msg[..i].to_string(),
        None => msg.to_string(),
    }
}
