//! Go `text/template` subset, as ecspresso users write it in definitions and configs.
//!
//! Receives template source text and the registered functions ([`Funcs`]). [`parse`] lexes
//! and parses it into a reusable [`Template`] (checking function and variable names up
//! front); [`Template::execute`] runs it. Hands on an [`Output`]: the rendered text plus
//! segments that map every output byte back to the source, so later JSON/YAML errors point at
//! the template file. Every failure is a [`TemplateError`] located by byte offset and length
//! in the source. [`render`] does both steps in one call.
//!
//! Supported syntax (Go semantics unless noted):
//! - text and actions `{{ ... }}`; trim markers `{{- ` and ` -}}` remove the adjacent
//!   whitespace (spaces, tabs, CR, LF) of the neighbouring text; a `}}` in plain text is text.
//! - comments `{{/* ... */}}`, also with trim markers; whitespace between the delimiters and
//!   the comment markers is accepted (Go rejects it).
//! - literals: `"double quoted"` with Go escapes (`\a \b \f \n \r \t \v \\ \" \xHH \ooo
//!   \uHHHH \UHHHHHHHH`), `` `raw` `` strings (may span lines; CRs are dropped), character
//!   constants `'a'` (an int), integers (decimal, `0x`, `0o`, `0b`, leading-0 octal,
//!   underscores, sign), floats (`1.5`, `.5`, `1e3`), `true`, `false`, `nil`.
//! - commands `fn arg1 arg2` (arguments separated by spaces), pipelines `a | fn b` (the piped
//!   value becomes the last argument), parenthesised pipelines `(fn a)`.
//! - variables: `$x := pipeline`, `$x = pipeline`, `$x`. A variable's scope ends at the
//!   `end` of the enclosing block. An undefined variable is a parse error.
//! - control: `if` / `else if` / `else with` / `else` / `end`, `with` / `else` / `end`.
//!   Inside a `with` body `.` is the value of the `with` pipeline; anywhere else `.`, `$` and
//!   `.Field` are errors (there is no template data).
//! - builtins: `and or not len eq ne lt le gt ge print printf println`. `and`/`or`
//!   short-circuit and return an argument. `eq` accepts several right-hand values. Numbers
//!   of int and float kinds compare by value (Go rejects mixing them).
//! - `printf` verbs: `%v %s %q %d %f %F %e %E %g %G %t %x %X %o %b %c %%`, flags `- + # 0`
//!   and space, width and precision as digits. A verb applied to the wrong kind of value, a
//!   missing argument or an extra argument is an error (Go prints `%!d(...)` instead).
//!
//! Not supported, each with a clear error: `range`, `define`, `template`, `block`, `break`,
//! `continue`, field and data access. An action whose value is `nil` is an error ("template
//! action produced no value") rather than Go's `<no value>`.
//!
//! The engine is split by stage: `lexer.rs` (text -> tokens), `parser.rs` (tokens -> tree,
//! with name checks), `exec.rs` (tree -> [`Output`], builtins included) and `printf.rs` (Go's
//! `fmt`).
//! This file holds the public API: [`Value`], [`Func`]/[`Funcs`], [`TemplateError`],
//! [`Output`] with its output->source offset map, and the entry points.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use crate::error::{Error, ErrorKind};

mod builtins;
mod exec;
mod lexer;
mod parser;
mod printf;
#[cfg(test)]
mod tests;

pub use printf::format_float_v;

/// Go's `fmt.Sprintf` over template values, as the `printf` builtin formats (the format string
/// first); for functions that take a format, such as `tfstatef`.
pub fn sprintf(args: &[Value]) -> Result<String, String> {
    printf::sprintf(args).map_err(|(message, _)| message)
}
pub(crate) use printf::go_quote;

/// A value inside a template: what literals, functions and pipelines produce.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Nil,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
}

impl Value {
    /// Go truthiness: `nil`, `false`, `0`, `0.0` and `""` are false.
    pub fn is_true(&self) -> bool {
        match self {
            Value::Nil => false,
            Value::Bool(b) => *b,
            Value::Int(i) => *i != 0,
            Value::Float(f) => *f != 0.0,
            Value::Str(s) => !s.is_empty(),
        }
    }

    /// The Go name of the value's type, for messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Value::Nil => "nil",
            Value::Bool(_) => "bool",
            Value::Int(_) => "int",
            Value::Float(_) => "float64",
            Value::Str(_) => "string",
        }
    }

    /// The value as Go's `%#v` would show it, for messages.
    fn describe(&self) -> String {
        match self {
            Value::Str(s) => format!("string {}", go_quote(s)),
            Value::Nil => "nil".to_string(),
            other => format!("{} {other}", other.kind()),
        }
    }
}

impl fmt::Display for Value {
    /// Go's `%v`: strings as-is, floats in the shortest `%g` form, `nil` as `<nil>`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Nil => f.write_str("<nil>"),
            Value::Bool(b) => write!(f, "{b}"),
            Value::Int(i) => write!(f, "{i}"),
            Value::Float(x) => f.write_str(&format_float_v(*x)),
            Value::Str(s) => f.write_str(s),
        }
    }
}

/// A template function. The engine adds the location (the call in the template source) and
/// the function's name to a [`FuncError`]; the error's kind decides the exit code.
pub type Func = Arc<dyn Fn(&[Value]) -> Result<Value, FuncError> + Send + Sync>;

/// Why a template function failed: what went wrong, what to do, and the class of the failure
/// (bad input, an AWS error, ...), which becomes the class of the render error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FuncError {
    pub message: String,
    pub hint: Option<String>,
    pub kind: ErrorKind,
}

impl FuncError {
    /// The user's input is wrong (arguments, a missing variable or parameter): exit code 1.
    pub fn input(message: impl Into<String>) -> Self {
        FuncError {
            message: message.into(),
            hint: None,
            kind: ErrorKind::BadInput,
        }
    }

    /// An AWS call behind the function failed (permissions, throttling, network): exit code 7.
    pub fn aws(message: impl Into<String>) -> Self {
        FuncError {
            kind: ErrorKind::Aws,
            ..FuncError::input(message)
        }
    }

    /// A cortado error as a function error: the first diagnostic's message and hint, and the
    /// error's kind.
    pub fn from_error(e: &Error) -> Self {
        let (message, hint) = match e.diagnostics.first() {
            Some(d) => (d.message.clone(), d.hint.clone()),
            None => (e.to_string(), None),
        };
        FuncError {
            message,
            hint,
            kind: e.kind,
        }
    }

    /// The same error with `hint` telling the user what to do.
    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
}

impl fmt::Display for FuncError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        if let Some(h) = &self.hint {
            write!(f, " (hint: {h})")?;
        }
        Ok(())
    }
}

impl std::error::Error for FuncError {}

/// The functions a template may call, by name.
#[derive(Clone, Default)]
pub struct Funcs {
    map: BTreeMap<String, Func>,
    /// Called for any name that is neither registered nor a builtin (see [`Funcs::with_fallback`]).
    fallback: Option<Func>,
}

impl Funcs {
    pub fn new() -> Self {
        Funcs::default()
    }

    pub fn insert(&mut self, name: impl Into<String>, f: Func) {
        self.map.insert(name.into(), f);
    }

    /// The function `name` calls: a registered one, else (unless `name` is a builtin) the
    /// fallback.
    pub fn get(&self, name: &str) -> Option<&Func> {
        self.map.get(name).or_else(|| {
            self.fallback
                .as_ref()
                .filter(|_| builtins::Builtin::from_name(name).is_none())
        })
    }

    pub fn contains(&self, name: &str) -> bool {
        self.map.contains_key(name) || self.fallback.is_some()
    }

    /// The same functions, with `f` answering every other name (a config's first pass, whose
    /// plugin functions are not known yet).
    pub fn with_fallback(&self, f: Func) -> Funcs {
        Funcs {
            map: self.map.clone(),
            fallback: Some(f),
        }
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.map.keys().map(String::as_str)
    }

    /// The same functions with `prefix` put before each name (ecspresso's `func_prefix`).
    pub fn with_prefix(&self, prefix: &str) -> Funcs {
        Funcs {
            map: self
                .map
                .iter()
                .map(|(k, v)| (format!("{prefix}{k}"), v.clone()))
                .collect(),
            fallback: self.fallback.clone(),
        }
    }

    /// Adds every function of `other`; on a name clash `other` wins.
    pub fn extend(&mut self, other: Funcs) {
        self.map.extend(other.map);
    }
}

/// A template error, located by byte offset in the template source.
#[derive(Debug, Clone, PartialEq)]
pub struct TemplateError {
    pub message: String,
    pub offset: usize,
    pub len: usize,
    pub hint: Option<String>,
    /// The class of the failure: [`ErrorKind::BadInput`] for every syntax error and most
    /// function errors; a function may report another (an AWS error behind `ssm`).
    pub kind: ErrorKind,
    /// The errors found after this one in the same run (see [`Template::execute`]).
    pub also: Vec<TemplateError>,
    /// A registered function failed with bad input: the run can go on past its action.
    function: bool,
}

impl TemplateError {
    fn new(message: impl Into<String>, offset: usize, end: usize) -> Self {
        TemplateError {
            message: message.into(),
            offset,
            len: end.saturating_sub(offset).max(1),
            hint: None,
            kind: ErrorKind::BadInput,
            also: Vec::new(),
            function: false,
        }
    }

    /// This error and the ones found after it, in source order.
    pub fn all(&self) -> impl Iterator<Item = &TemplateError> {
        std::iter::once(self).chain(self.also.iter())
    }

    fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
}

impl fmt::Display for TemplateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (at byte {})", self.message, self.offset)
    }
}

impl std::error::Error for TemplateError {}

type Res<T> = Result<T, TemplateError>;

/// A builtin's error: the message and which argument (by index) it is about.
type BErr = (String, Option<usize>);

/// Variables in scope, for the parser (names) and the executor (values): a stack that block
/// ends truncate, with an index by name so that a lookup does not scan the stack. (A scan made
/// a template declaring 40,000 variables take 16 s in a debug build: quadratic. Found by a
/// probe for slow inputs written with tests/fuzz.rs.)
#[derive(Debug)]
struct Scope<V> {
    order: Vec<String>,
    by_name: std::collections::HashMap<String, Vec<V>>,
}

impl<V> Scope<V> {
    fn new() -> Self {
        Scope {
            order: Vec::new(),
            by_name: std::collections::HashMap::new(),
        }
    }

    /// How many variables are declared (a mark for [`Scope::truncate`]).
    fn len(&self) -> usize {
        self.order.len()
    }

    fn push(&mut self, name: &str, value: V) {
        self.order.push(name.to_string());
        self.by_name
            .entry(name.to_string())
            .or_default()
            .push(value);
    }

    /// Forgets the variables declared after `mark`.
    fn truncate(&mut self, mark: usize) {
        while self.order.len() > mark {
            let Some(name) = self.order.pop() else { break };
            if let Some(values) = self.by_name.get_mut(&name) {
                values.pop();
                if values.is_empty() {
                    self.by_name.remove(&name);
                }
            }
        }
    }

    /// The innermost variable called `name`.
    fn get(&self, name: &str) -> Option<&V> {
        self.by_name.get(name)?.last()
    }

    fn get_mut(&mut self, name: &str) -> Option<&mut V> {
        self.by_name.get_mut(name)?.last_mut()
    }
}

/// The rendered text and, for each output segment, where it came from in the source.
#[derive(Debug, Clone, Default)]
pub struct Output {
    pub text: String,
    /// (output offset, source offset, copied literally) at the start of each segment, sorted.
    pub segments: Vec<(usize, usize, bool)>,
}

impl Output {
    /// The source offset a byte of the output came from.
    pub fn source_offset(&self, out: usize) -> usize {
        let i = self.segments.partition_point(|s| s.0 <= out);
        if i == 0 {
            return out;
        }
        let (o, s, literal) = self.segments[i - 1];
        if literal { s + (out - o) } else { s }
    }

    fn push(&mut self, text: &str, source: usize, literal: bool) {
        if !text.is_empty() {
            self.segments.push((self.text.len(), source, literal));
            self.text.push_str(text);
        }
    }
}

/// Parses and executes `src` with `funcs`.
pub fn render(src: &str, funcs: &Funcs) -> Result<Output, TemplateError> {
    parse(src, funcs)?.execute(funcs)
}

/// Parses `src`, checking that every function it calls is in `funcs` or a builtin.
pub fn parse(src: &str, funcs: &Funcs) -> Result<Template, TemplateError> {
    let nodes = parser::parse(src, funcs)?;
    Ok(Template {
        src: src.to_string(),
        nodes,
    })
}

/// A parsed template, ready to execute any number of times.
#[derive(Debug, Clone)]
pub struct Template {
    src: String,
    nodes: Vec<parser::Node>,
}

impl Template {
    /// The source text the template was parsed from.
    pub fn source(&self) -> &str {
        &self.src
    }

    /// Runs the template. `funcs` should be the set it was parsed with. A registered function
    /// that fails with bad input (a missing variable, a tfstate address or a parameter that
    /// does not exist) does not stop the run when its action only prints: the run goes on, so
    /// that the error returned carries every such mistake in the file (in `also`).
    pub fn execute(&self, funcs: &Funcs) -> Result<Output, TemplateError> {
        exec::execute(&self.src, &self.nodes, funcs)
    }
}
