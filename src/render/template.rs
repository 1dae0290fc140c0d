//! Go `text/template` subset, as ecspresso users write it. (Interface placeholder: the engine
//! is being written on the `template` branch and replaces this file.)

use std::collections::BTreeMap;
use std::sync::Arc;

/// A value inside a template: what literals, functions and pipelines produce.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Nil,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
}

/// A template function. Errors are plain messages; the engine adds the location.
pub type Func = Arc<dyn Fn(&[Value]) -> Result<Value, String> + Send + Sync>;

/// The functions a template may call, by name.
#[derive(Clone, Default)]
pub struct Funcs {
    map: BTreeMap<String, Func>,
}

impl Funcs {
    pub fn new() -> Self {
        Funcs::default()
    }

    pub fn insert(&mut self, name: impl Into<String>, f: Func) {
        self.map.insert(name.into(), f);
    }

    pub fn get(&self, name: &str) -> Option<&Func> {
        self.map.get(name)
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.map.keys().map(String::as_str)
    }
}

/// A template error, located by byte offset in the template source.
#[derive(Debug, Clone, PartialEq)]
pub struct TemplateError {
    pub message: String,
    pub offset: usize,
    pub len: usize,
    pub hint: Option<String>,
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
}

/// Parses and executes `src` with `funcs`.
pub fn render(src: &str, funcs: &Funcs) -> Result<Output, TemplateError> {
    let _ = funcs;
    if let Some(offset) = src.find("{{") {
        return Err(TemplateError {
            message: "template actions are not supported yet".into(),
            offset,
            len: 2,
            hint: None,
        });
    }
    Ok(Output {
        text: src.to_string(),
        segments: vec![(0, 0, true)],
    })
}
