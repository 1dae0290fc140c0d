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

use std::collections::{BTreeMap, VecDeque};
use std::fmt::{self, Write as _};
use std::sync::Arc;

use crate::error::did_you_mean;

/// How deeply blocks and parentheses may nest.
const MAX_DEPTH: usize = 100;
/// The largest printf width or precision accepted.
const MAX_WIDTH: usize = 1024;

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

/// A template function. Errors are plain messages; the engine adds the location. A message
/// may carry a hint after [`HINT_MARKER`] (see [`func_error`]).
pub type Func = Arc<dyn Fn(&[Value]) -> Result<Value, String> + Send + Sync>;

/// Separates a function's error message from its hint.
pub const HINT_MARKER: &str = "\nhint: ";

/// A function error message with a hint for the user, for [`Func`]s to return.
pub fn func_error(message: impl Into<String>, hint: &str) -> String {
    let mut m = message.into();
    m.push_str(HINT_MARKER);
    m.push_str(hint);
    m
}

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

    pub fn contains(&self, name: &str) -> bool {
        self.map.contains_key(name)
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
}

impl TemplateError {
    fn new(message: impl Into<String>, offset: usize, end: usize) -> Self {
        TemplateError {
            message: message.into(),
            offset,
            len: end.saturating_sub(offset).max(1),
            hint: None,
        }
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
    let mut p = Parser {
        lx: Lexer {
            src,
            pos: 0,
            in_action: false,
            trim_next: false,
            action_start: 0,
        },
        buf: VecDeque::new(),
        funcs,
        vars: Vec::new(),
        depth: 0,
        dot_depth: 0,
        lex_failed: false,
    };
    let nodes = p.parse_template().map_err(|e| {
        // A parse error inside an action that never closes is best reported as that.
        if !p.lex_failed && p.lx.in_action {
            p.lx.unclosed().unwrap_or(e)
        } else {
            e
        }
    })?;
    Ok(Template {
        src: src.to_string(),
        nodes,
    })
}

/// A parsed template, ready to execute any number of times.
#[derive(Debug, Clone)]
pub struct Template {
    src: String,
    nodes: Vec<Node>,
}

impl Template {
    /// The source text the template was parsed from.
    pub fn source(&self) -> &str {
        &self.src
    }

    /// Runs the template. `funcs` should be the set it was parsed with.
    pub fn execute(&self, funcs: &Funcs) -> Result<Output, TemplateError> {
        let mut ex = Exec {
            src: &self.src,
            funcs,
            vars: Vec::new(),
            dots: Vec::new(),
            out: Output {
                text: String::with_capacity(self.src.len() + self.src.len() / 4),
                segments: Vec::new(),
            },
        };
        ex.exec_list(&self.nodes)?;
        Ok(ex.out)
    }
}

// ---------------------------------------------------------------------------------------
// Lexer

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kw {
    If,
    Else,
    End,
    With,
    Range,
    Define,
    Template,
    Block,
    Break,
    Continue,
}

impl Kw {
    fn from_name(s: &str) -> Option<Kw> {
        Some(match s {
            "if" => Kw::If,
            "else" => Kw::Else,
            "end" => Kw::End,
            "with" => Kw::With,
            "range" => Kw::Range,
            "define" => Kw::Define,
            "template" => Kw::Template,
            "block" => Kw::Block,
            "break" => Kw::Break,
            "continue" => Kw::Continue,
            _ => return None,
        })
    }

    fn name(self) -> &'static str {
        match self {
            Kw::If => "if",
            Kw::Else => "else",
            Kw::End => "end",
            Kw::With => "with",
            Kw::Range => "range",
            Kw::Define => "define",
            Kw::Template => "template",
            Kw::Block => "block",
            Kw::Break => "break",
            Kw::Continue => "continue",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    /// Literal text (already trimmed).
    Text,
    /// `{{` or `{{- `.
    Open,
    /// `}}` or ` -}}`.
    Close,
    /// A whole `{{/* ... */}}` action.
    Comment,
    Ident(String),
    Kw(Kw),
    /// `$name` including the `$`; `$` alone is the data.
    Var(String),
    /// `.Name` (without the dot).
    Field(String),
    Dot,
    Str(String),
    Int(i64),
    Float(f64),
    Bool(bool),
    Nil,
    LParen,
    RParen,
    Pipe,
    Declare,
    Assign,
    Comma,
    Eof,
}

#[derive(Debug, Clone)]
struct Token {
    tok: Tok,
    start: usize,
    end: usize,
    /// Whitespace came right before the token.
    space: bool,
}

impl Token {
    fn text<'s>(&self, src: &'s str) -> &'s str {
        src.get(self.start..self.end).unwrap_or("")
    }
}

fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

fn is_ident_char(c: char) -> bool {
    c == '_' || c.is_alphanumeric()
}

struct Lexer<'a> {
    src: &'a str,
    pos: usize,
    in_action: bool,
    /// The previous action ended with ` -}}`: skip leading whitespace of the next text.
    trim_next: bool,
    action_start: usize,
}

impl<'a> Lexer<'a> {
    fn byte(&self, i: usize) -> u8 {
        self.src.as_bytes().get(i).copied().unwrap_or(0)
    }

    fn rest_at(&self, i: usize) -> &'a str {
        self.src.get(i..).unwrap_or("")
    }

    fn tok(&self, tok: Tok, start: usize, end: usize, space: bool) -> Token {
        Token {
            tok,
            start,
            end,
            space,
        }
    }

    /// `{{` at `o` starts with a left trim marker.
    fn left_trim(&self, o: usize) -> bool {
        self.byte(o + 2) == b'-' && is_space(self.byte(o + 3))
    }

    fn next(&mut self) -> Res<Token> {
        if self.in_action {
            return self.lex_action();
        }
        let b = self.src.as_bytes();
        if self.trim_next {
            while self.pos < b.len() && is_space(b[self.pos]) {
                self.pos += 1;
            }
            self.trim_next = false;
        }
        if self.pos >= b.len() {
            return Ok(self.tok(Tok::Eof, b.len(), b.len(), false));
        }
        let start = self.pos;
        let open = self.rest_at(start).find("{{").map(|i| start + i);
        let end = open.unwrap_or(b.len());
        if end > start {
            let mut text_end = end;
            if open.is_some() && self.left_trim(end) {
                while text_end > start && is_space(b[text_end - 1]) {
                    text_end -= 1;
                }
            }
            self.pos = end;
            if text_end > start {
                return Ok(self.tok(Tok::Text, start, text_end, false));
            }
        }
        self.lex_open()
    }

    /// At `{{`: a comment (returned whole) or the start of an action.
    fn lex_open(&mut self) -> Res<Token> {
        let start = self.pos;
        self.action_start = start;
        let mut p = start + 2;
        if self.left_trim(start) {
            p += 2;
        }
        let mut q = p;
        while is_space(self.byte(q)) {
            q += 1;
        }
        if self.rest_at(q).starts_with("/*") {
            let body = q + 2;
            let Some(e) = self.rest_at(body).find("*/") else {
                return Err(TemplateError::new("unclosed comment", start, q + 2)
                    .hint("end the comment with */}}"));
            };
            let after = body + e + 2;
            let mut r = after;
            while is_space(self.byte(r)) {
                r += 1;
            }
            let rest = self.rest_at(r);
            let end = if r > after && rest.starts_with("-}}") {
                self.trim_next = true;
                r + 3
            } else if rest.starts_with("}}") {
                r + 2
            } else {
                return Err(TemplateError::new(
                    "comment ends before the closing delimiter",
                    after - 2,
                    after,
                )
                .hint("put }} right after */: a comment must be the whole action"));
            };
            self.pos = end;
            return Ok(self.tok(Tok::Comment, start, end, false));
        }
        self.pos = p;
        self.in_action = true;
        Ok(self.tok(Tok::Open, start, p, false))
    }

    /// The error for an action that has no `}}` before the next `{{` or the end of input.
    fn unclosed(&self) -> Option<TemplateError> {
        let from = self.action_start + 2;
        let rest = self.rest_at(from);
        let close = rest.find("}}");
        let open = rest.find("{{");
        let unclosed = match (close, open) {
            (None, _) => true,
            (Some(c), Some(o)) => o < c,
            (Some(_), None) => false,
        };
        if !unclosed {
            return None;
        }
        let line_end = self
            .rest_at(self.action_start)
            .find('\n')
            .map_or(self.src.len(), |i| self.action_start + i);
        Some(
            TemplateError::new(
                "unclosed action: this `{{` has no matching `}}`",
                self.action_start,
                line_end,
            )
            .hint("close the action with }}; if it looks closed, check for an unbalanced quote inside it"),
        )
    }

    fn lex_action(&mut self) -> Res<Token> {
        let b = self.src.as_bytes();
        let mut space = false;
        while self.pos < b.len() && is_space(b[self.pos]) {
            if self.rest_at(self.pos + 1).starts_with("-}}") {
                let start = self.pos;
                self.pos += 4;
                self.in_action = false;
                self.trim_next = true;
                return Ok(self.tok(Tok::Close, start, self.pos, true));
            }
            self.pos += 1;
            space = true;
        }
        let start = self.pos;
        let rest = self.rest_at(start);
        let Some(c) = rest.chars().next() else {
            return Err(self.unclosed().unwrap_or_else(|| {
                TemplateError::new("unexpected end of input in action", start, start)
            }));
        };
        if rest.starts_with("}}") {
            self.pos += 2;
            self.in_action = false;
            return Ok(self.tok(Tok::Close, start, self.pos, space));
        }
        if rest.starts_with("{{") {
            return Err(self.unclosed().unwrap_or_else(|| {
                TemplateError::new("unexpected {{ inside an action", start, start + 2)
            }));
        }
        let next = self.byte(start + 1);
        let single = |lx: &mut Self, tok: Tok| {
            lx.pos = start + 1;
            Ok(lx.tok(tok, start, start + 1, space))
        };
        match c {
            '"' => self.lex_quoted(start, space),
            '`' => self.lex_raw(start, space),
            '\'' => self.lex_char(start, space),
            '$' => {
                let end = self.ident_end(start + 1);
                self.pos = end;
                let name = self.src[start..end].to_string();
                Ok(self.tok(Tok::Var(name), start, end, space))
            }
            '.' if next.is_ascii_digit() => self.lex_number(start, space),
            '.' => {
                let end = self.ident_end(start + 1);
                self.pos = end;
                let tok = if end == start + 1 {
                    Tok::Dot
                } else {
                    Tok::Field(self.src[start + 1..end].to_string())
                };
                Ok(self.tok(tok, start, end, space))
            }
            '0'..='9' => self.lex_number(start, space),
            '+' | '-'
                if next.is_ascii_digit()
                    || (next == b'.' && self.byte(start + 2).is_ascii_digit()) =>
            {
                self.lex_number(start, space)
            }
            '(' => single(self, Tok::LParen),
            ')' => single(self, Tok::RParen),
            '|' => single(self, Tok::Pipe),
            ',' => single(self, Tok::Comma),
            '=' => single(self, Tok::Assign),
            ':' if next == b'=' => {
                self.pos = start + 2;
                Ok(self.tok(Tok::Declare, start, start + 2, space))
            }
            c if c == '_' || c.is_alphabetic() => {
                let end = self.ident_end(start);
                self.pos = end;
                let word = &self.src[start..end];
                let tok = match word {
                    "true" => Tok::Bool(true),
                    "false" => Tok::Bool(false),
                    "nil" => Tok::Nil,
                    w => Kw::from_name(w).map_or_else(|| Tok::Ident(w.to_string()), Tok::Kw),
                };
                Ok(self.tok(tok, start, end, space))
            }
            c => {
                if let Some(e) = self.unclosed() {
                    return Err(e);
                }
                let mut e = TemplateError::new(
                    format!("unexpected character {c:?} in action"),
                    start,
                    start + c.len_utf8(),
                );
                e = if c == '-' && self.rest_at(start).starts_with("-}}") {
                    e.hint("a trim marker needs a space before it: ` -}}`")
                } else if c == ':' {
                    e.hint("declare a variable with `$name := value`")
                } else {
                    e.hint("an action holds function calls, values, $variables, | and ( )")
                };
                Err(e)
            }
        }
    }

    fn ident_end(&self, from: usize) -> usize {
        let rest = self.rest_at(from);
        from + rest
            .char_indices()
            .find(|&(_, c)| !is_ident_char(c))
            .map_or(rest.len(), |(i, _)| i)
    }

    fn lex_quoted(&mut self, start: usize, space: bool) -> Res<Token> {
        let b = self.src.as_bytes();
        let mut i = start + 1;
        loop {
            match b.get(i) {
                None | Some(b'\n') => return Err(self.unterminated(start, i)),
                Some(b'\\') if matches!(b.get(i + 1), None | Some(b'\n')) => {
                    return Err(self.unterminated(start, i + 1));
                }
                Some(b'\\') => i += 2,
                Some(b'"') => break,
                Some(_) => i += 1,
            }
        }
        let s = unescape(self.src, start + 1, i, '"')?;
        self.pos = i + 1;
        Ok(self.tok(Tok::Str(s), start, i + 1, space))
    }

    /// An unterminated quoted string; in an action that never closes, that is the better
    /// report (a JSON quote typed where `}}` was meant).
    fn unterminated(&self, start: usize, end: usize) -> TemplateError {
        self.unclosed().unwrap_or_else(|| {
            TemplateError::new("unterminated quoted string", start, end).hint(
                "close the string with \" on the same line, or use a `raw string` to span lines",
            )
        })
    }

    fn lex_raw(&mut self, start: usize, space: bool) -> Res<Token> {
        let Some(len) = self.rest_at(start + 1).find('`') else {
            let line_end = self
                .rest_at(start)
                .find('\n')
                .map_or(self.src.len(), |i| start + i);
            return Err(
                TemplateError::new("unterminated raw string", start, line_end)
                    .hint("close the raw string with a backtick (`)"),
            );
        };
        let end = start + 1 + len;
        let s = self.src[start + 1..end].replace('\r', "");
        self.pos = end + 1;
        Ok(self.tok(Tok::Str(s), start, end + 1, space))
    }

    fn lex_char(&mut self, start: usize, space: bool) -> Res<Token> {
        let b = self.src.as_bytes();
        let mut i = start + 1;
        loop {
            match b.get(i) {
                None | Some(b'\n') => {
                    return Err(
                        TemplateError::new("unterminated character constant", start, i)
                            .hint("close it with ', or use \"...\" for a string"),
                    );
                }
                Some(b'\\') if matches!(b.get(i + 1), None | Some(b'\n')) => {
                    return Err(TemplateError::new(
                        "unterminated character constant",
                        start,
                        i + 1,
                    ));
                }
                Some(b'\\') => i += 2,
                Some(b'\'') => break,
                Some(_) => i += 1,
            }
        }
        let s = unescape(self.src, start + 1, i, '\'')?;
        let mut chars = s.chars();
        let (Some(c), None) = (chars.next(), chars.next()) else {
            return Err(TemplateError::new(
                "a character constant must hold exactly one character",
                start,
                i + 1,
            )
            .hint("use \"...\" or `...` for a string"));
        };
        self.pos = i + 1;
        Ok(self.tok(Tok::Int(i64::from(u32::from(c))), start, i + 1, space))
    }

    fn lex_number(&mut self, start: usize, space: bool) -> Res<Token> {
        let mut i = start;
        if matches!(self.byte(i), b'+' | b'-') {
            i += 1;
        }
        let body = i;
        let mut float = false;
        let prefixed =
            self.byte(i) == b'0' && matches!(self.byte(i + 1) | 0x20, b'x' | b'o' | b'b');
        if prefixed {
            i += 2;
            while self.byte(i).is_ascii_alphanumeric() || self.byte(i) == b'_' {
                i += 1;
            }
        } else {
            let digits = |lx: &Self, mut i: usize| {
                while lx.byte(i).is_ascii_digit() || lx.byte(i) == b'_' {
                    i += 1;
                }
                i
            };
            i = digits(self, i);
            if self.byte(i) == b'.' {
                float = true;
                i = digits(self, i + 1);
            }
            if matches!(self.byte(i), b'e' | b'E') {
                let mut j = i + 1;
                if matches!(self.byte(j), b'+' | b'-') {
                    j += 1;
                }
                if self.byte(j).is_ascii_digit() {
                    float = true;
                    i = digits(self, j);
                }
            }
        }
        let bad = |lx: &Self, end: usize| {
            let mut end = end;
            while lx.byte(end).is_ascii_alphanumeric() || matches!(lx.byte(end), b'_' | b'.') {
                end += 1;
            }
            TemplateError::new(
                format!(
                    "bad number syntax: {:?}",
                    lx.src.get(start..end).unwrap_or("")
                ),
                start,
                end,
            )
            .hint("numbers look like 42, -7, 0x1F, 1.5 or 1e3")
        };
        let nb = self.byte(i);
        if nb.is_ascii_alphanumeric() || nb == b'_' || nb == b'.' {
            return Err(bad(self, i));
        }
        let text: String = self.src[start..i].chars().filter(|&c| c != '_').collect();
        let tok = if float {
            match text.parse::<f64>() {
                Ok(f) if f.is_finite() => Tok::Float(f),
                _ => {
                    return Err(TemplateError::new(
                        format!("number {} is out of range", &self.src[start..i]),
                        start,
                        i,
                    ));
                }
            }
        } else {
            let neg = text.starts_with('-');
            let digits = text.trim_start_matches(['+', '-']);
            let (radix, digits) = if prefixed {
                let radix = match self.byte(body + 1) | 0x20 {
                    b'x' => 16,
                    b'o' => 8,
                    _ => 2,
                };
                (radix, digits.get(2..).unwrap_or(""))
            } else if digits.len() > 1 && digits.starts_with('0') {
                (8, &digits[1..])
            } else {
                (10, digits)
            };
            if digits.is_empty() {
                return Err(bad(self, i));
            }
            let Ok(n) = i128::from_str_radix(digits, radix) else {
                if digits.chars().all(|c| c.is_digit(radix)) {
                    return Err(TemplateError::new(
                        format!(
                            "number {} is out of range for an integer",
                            &self.src[start..i]
                        ),
                        start,
                        i,
                    ));
                }
                return Err(bad(self, i));
            };
            let n = if neg { -n } else { n };
            match i64::try_from(n) {
                Ok(n) => Tok::Int(n),
                Err(_) => {
                    return Err(TemplateError::new(
                        format!(
                            "number {} is out of range for an integer",
                            &self.src[start..i]
                        ),
                        start,
                        i,
                    ));
                }
            }
        };
        self.pos = i;
        Ok(self.tok(tok, start, i, space))
    }
}

/// Decodes the Go escapes of the string literal body `src[from..to]`.
fn unescape(src: &str, from: usize, to: usize, quote: char) -> Res<String> {
    let body = src.get(from..to).unwrap_or("");
    if !body.contains('\\') {
        return Ok(body.to_string());
    }
    let mut out: Vec<u8> = Vec::with_capacity(body.len());
    let mut it = body.char_indices().peekable();
    let invalid = |at: usize, len: usize| {
        TemplateError::new(
            format!(
                "invalid escape sequence {} in string",
                body.get(at..(at + len).min(body.len())).unwrap_or("\\")
            ),
            from + at,
            from + (at + len).min(body.len()),
        )
        .hint("valid escapes are \\n \\t \\\" \\\\ \\xHH \\uHHHH; or use a `raw string`")
    };
    while let Some((i, c)) = it.next() {
        if c != '\\' {
            let mut buf = [0u8; 4];
            out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            continue;
        }
        let Some((_, e)) = it.next() else {
            return Err(invalid(i, 1));
        };
        let simple = match e {
            'a' => Some(7u8),
            'b' => Some(8),
            'f' => Some(0x0c),
            'n' => Some(b'\n'),
            'r' => Some(b'\r'),
            't' => Some(b'\t'),
            'v' => Some(0x0b),
            '\\' => Some(b'\\'),
            '"' if quote == '"' => Some(b'"'),
            '\'' if quote == '\'' => Some(b'\''),
            _ => None,
        };
        if let Some(byte) = simple {
            out.push(byte);
            continue;
        }
        let (count, radix) = match e {
            'x' => (2, 16),
            'u' => (4, 16),
            'U' => (8, 16),
            '0'..='7' => (2, 8),
            _ => return Err(invalid(i, 1 + e.len_utf8())),
        };
        let mut digits = String::new();
        if radix == 8 {
            digits.push(e);
        }
        for _ in 0..count {
            match it.peek() {
                Some(&(_, d)) if d.is_digit(radix) => {
                    digits.push(d);
                    it.next();
                }
                _ => return Err(invalid(i, 2 + digits.len())),
            }
        }
        let len = if radix == 8 { 4 } else { 2 + count };
        let Ok(n) = u32::from_str_radix(&digits, radix) else {
            return Err(invalid(i, len));
        };
        match e {
            'x' | '0'..='7' => match u8::try_from(n) {
                Ok(byte) => out.push(byte),
                Err(_) => return Err(invalid(i, len)),
            },
            _ => match char::from_u32(n) {
                Some(ch) => {
                    let mut buf = [0u8; 4];
                    out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
                }
                None => return Err(invalid(i, len)),
            },
        }
    }
    String::from_utf8(out).map_err(|_| {
        TemplateError::new("string literal is not valid UTF-8", from - 1, to + 1)
            .hint("\\x and octal escapes must form valid UTF-8; use \\u for characters")
    })
}

// ---------------------------------------------------------------------------------------
// Syntax tree

#[derive(Debug, Clone)]
enum Node {
    Text {
        start: usize,
        end: usize,
    },
    /// An action printing its pipeline (unless the pipeline declares or assigns).
    Action {
        pipe: Pipe,
        start: usize,
        end: usize,
    },
    Cond(Box<Cond>),
}

/// `if`/`with` with its `else if`/`else with` branches and `else`.
#[derive(Debug, Clone)]
struct Cond {
    branches: Vec<Branch>,
    otherwise: Vec<Node>,
}

#[derive(Debug, Clone)]
struct Branch {
    with: bool,
    pipe: Pipe,
    body: Vec<Node>,
}

#[derive(Debug, Clone)]
struct Decl {
    name: String,
    declare: bool,
}

#[derive(Debug, Clone)]
struct Pipe {
    decl: Option<Decl>,
    cmds: Vec<Cmd>,
}

#[derive(Debug, Clone)]
struct Cmd {
    args: Vec<Arg>,
    start: usize,
    end: usize,
}

#[derive(Debug, Clone)]
struct Arg {
    kind: ArgKind,
    start: usize,
    end: usize,
}

#[derive(Debug, Clone)]
enum ArgKind {
    Func(String),
    Lit(Value),
    Var(String),
    Dot,
    Paren(Box<Pipe>),
}

// ---------------------------------------------------------------------------------------
// Parser

enum Stop {
    Eof,
    End {
        start: usize,
        end: usize,
    },
    /// `{{ else` seen; the rest of the action is not consumed yet.
    Else {
        start: usize,
        end: usize,
    },
}

struct Parser<'a> {
    lx: Lexer<'a>,
    buf: VecDeque<Token>,
    funcs: &'a Funcs,
    /// Variables in scope.
    vars: Vec<String>,
    depth: usize,
    /// How many `with` bodies enclose the current position (`.` is defined inside one).
    dot_depth: usize,
    lex_failed: bool,
}

const NO_DATA_HINT: &str = "ecspresso templates have no data; read values with {{ must_env `NAME` }} or {{ env `NAME` `default` }}";

impl<'a> Parser<'a> {
    fn fill(&mut self, n: usize) -> Res<()> {
        while self.buf.len() < n {
            match self.lx.next() {
                Ok(t) => self.buf.push_back(t),
                Err(e) => {
                    self.lex_failed = true;
                    return Err(e);
                }
            }
        }
        Ok(())
    }

    fn peek(&mut self) -> Res<&Token> {
        self.fill(1)?;
        self.buf
            .front()
            .ok_or_else(|| TemplateError::new("internal error: no token", 0, 0))
    }

    fn peek2(&mut self) -> Res<&Token> {
        self.fill(2)?;
        self.buf
            .get(1)
            .ok_or_else(|| TemplateError::new("internal error: no token", 0, 0))
    }

    fn next(&mut self) -> Res<Token> {
        self.fill(1)?;
        self.buf
            .pop_front()
            .ok_or_else(|| TemplateError::new("internal error: no token", 0, 0))
    }

    fn src(&self) -> &'a str {
        self.lx.src
    }

    fn enter(&mut self, at: &Token) -> Res<()> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(TemplateError::new(
                format!("the template nests too deeply (more than {MAX_DEPTH} levels)"),
                at.start,
                at.end,
            )
            .hint("simplify the nesting of if/with blocks and parentheses"));
        }
        Ok(())
    }

    fn parse_template(&mut self) -> Res<Vec<Node>> {
        let (nodes, stop) = self.parse_list()?;
        match stop {
            Stop::Eof => Ok(nodes),
            Stop::End { start, end } => Err(TemplateError::new(
                "unexpected {{end}}: no open {{if}} or {{with}} to close",
                start,
                end,
            )
            .hint("remove it, or add the missing {{ if ... }} before it")),
            Stop::Else { start, end } => Err(TemplateError::new(
                "unexpected {{else}}: no open {{if}} or {{with}}",
                start,
                end,
            )
            .hint("remove it, or add the missing {{ if ... }} before it")),
        }
    }

    /// Text and actions up to the end of input, an `{{end}}` or an `{{else`.
    fn parse_list(&mut self) -> Res<(Vec<Node>, Stop)> {
        let mut nodes = Vec::new();
        loop {
            let t = self.next()?;
            match t.tok {
                Tok::Eof => return Ok((nodes, Stop::Eof)),
                Tok::Text => nodes.push(Node::Text {
                    start: t.start,
                    end: t.end,
                }),
                Tok::Comment => {}
                Tok::Open => {
                    let open = t.start;
                    let k = self.peek()?.clone();
                    match k.tok {
                        Tok::Kw(Kw::End) => {
                            self.next()?;
                            let end = self.expect_close("end")?;
                            return Ok((nodes, Stop::End { start: open, end }));
                        }
                        Tok::Kw(Kw::Else) => {
                            self.next()?;
                            return Ok((
                                nodes,
                                Stop::Else {
                                    start: open,
                                    end: k.end,
                                },
                            ));
                        }
                        Tok::Kw(kw @ (Kw::If | Kw::With)) => {
                            self.next()?;
                            nodes.push(self.parse_control(open, kw, &k)?);
                        }
                        Tok::Kw(kw) => return Err(unsupported(kw, &k)),
                        _ => {
                            let (pipe, end) = self.parse_pipeline("command", true, None)?;
                            nodes.push(Node::Action {
                                pipe,
                                start: open,
                                end,
                            });
                        }
                    }
                }
                _ => {
                    return Err(TemplateError::new(
                        "internal error: unexpected token outside an action",
                        t.start,
                        t.end,
                    ));
                }
            }
        }
    }

    /// After `{{ end` or `{{ else`: the `}}`. Returns its end.
    fn expect_close(&mut self, what: &str) -> Res<usize> {
        let t = self.next()?;
        match t.tok {
            Tok::Close => Ok(t.end),
            _ => Err(TemplateError::new(
                format!("unexpected {:?} after {what}", t.text(self.src())),
                t.start,
                t.end,
            )
            .hint(format!("write {{{{ {what} }}}} alone in its action"))),
        }
    }

    fn parse_control(&mut self, open: usize, kw: Kw, kw_tok: &Token) -> Res<Node> {
        self.enter(kw_tok)?;
        let var_mark = self.vars.len();
        let mut with = kw == Kw::With;
        let (mut pipe, header_end) = self.parse_pipeline(kw.name(), true, None)?;
        let missing_end = |src: &str| {
            TemplateError::new(
                format!("missing {{{{end}}}} for this {{{{{}}}}}", kw.name()),
                open,
                header_end,
            )
            .hint(format!(
                "close the block with {{{{ end }}}}; as written, everything from `{}` to the end of the file is inside it",
                src.get(open..header_end).unwrap_or("")
            ))
        };
        let mut branches = Vec::new();
        let otherwise;
        loop {
            let (body, stop) = self.parse_body(with)?;
            branches.push(Branch { with, pipe, body });
            match stop {
                Stop::End { .. } => {
                    otherwise = Vec::new();
                    break;
                }
                Stop::Eof => return Err(missing_end(self.src())),
                Stop::Else { .. } => {
                    let n = self.peek()?.clone();
                    if let Tok::Kw(k @ (Kw::If | Kw::With)) = n.tok {
                        self.next()?;
                        with = k == Kw::With;
                        pipe = self.parse_pipeline(k.name(), true, None)?.0;
                        continue;
                    }
                    self.expect_close("else")?;
                    let (body, stop) = self.parse_body(false)?;
                    match stop {
                        Stop::End { .. } => {
                            otherwise = body;
                            break;
                        }
                        Stop::Eof => return Err(missing_end(self.src())),
                        Stop::Else { start, end } => {
                            return Err(TemplateError::new(
                                "unexpected {{else}} after {{else}}",
                                start,
                                end,
                            )
                            .hint("a block has at most one plain {{ else }}; use {{ else if ... }} before it"));
                        }
                    }
                }
            }
        }
        self.vars.truncate(var_mark);
        self.depth -= 1;
        Ok(Node::Cond(Box::new(Cond {
            branches,
            otherwise,
        })))
    }

    fn parse_body(&mut self, with: bool) -> Res<(Vec<Node>, Stop)> {
        let mark = self.vars.len();
        if with {
            self.dot_depth += 1;
        }
        let r = self.parse_list()?;
        if with {
            self.dot_depth -= 1;
        }
        self.vars.truncate(mark);
        Ok(r)
    }

    /// A pipeline up to and including `}}` (when `paren` is None) or `)` (when it holds the
    /// offset of the opening parenthesis). Returns the pipeline and the terminator's end.
    fn parse_pipeline(
        &mut self,
        context: &str,
        decl_ok: bool,
        paren: Option<usize>,
    ) -> Res<(Pipe, usize)> {
        let first = self.peek()?.clone();
        let mut decl = None;
        if let Tok::Var(name) = &first.tok {
            let op = self.peek2()?.clone();
            if matches!(op.tok, Tok::Declare | Tok::Assign) {
                let declare = op.tok == Tok::Declare;
                if !decl_ok {
                    return Err(TemplateError::new(
                        "variable declarations are not allowed inside parentheses",
                        first.start,
                        op.end,
                    )
                    .hint("declare the variable in its own action: {{ $x := ... }}"));
                }
                if name == "$" {
                    return Err(TemplateError::new(
                        "cannot assign to $ (the template data)",
                        first.start,
                        first.end,
                    )
                    .hint("use a named variable such as $x"));
                }
                if !declare && !self.vars.iter().any(|v| v == name) {
                    return Err(undefined_var(name, &first));
                }
                self.next()?;
                self.next()?;
                decl = Some(Decl {
                    name: name.clone(),
                    declare,
                });
            }
        }
        let mut cmds: Vec<Cmd> = Vec::new();
        let end;
        loop {
            let cmd = self.parse_command()?;
            let t = self.next()?;
            match cmd {
                Some(cmd) => cmds.push(cmd),
                None if cmds.is_empty() && t.tok != Tok::Pipe => {
                    let what = if context == "command" {
                        "missing value in action".to_string()
                    } else {
                        format!("missing value for {context}")
                    };
                    return Err(TemplateError::new(what, t.start, t.end).hint(
                        "an action needs a function call or a value, e.g. {{ env `NAME` `default` }}",
                    ));
                }
                None => {
                    return Err(TemplateError::new("missing command around |", t.start, t.end)
                        .hint("put a function call on each side of |, e.g. {{ env `A` | json_escape }}"));
                }
            }
            match (&t.tok, paren) {
                (Tok::Pipe, _) => {}
                (Tok::Close, None) | (Tok::RParen, Some(_)) => {
                    end = t.end;
                    break;
                }
                (Tok::Close, Some(open)) => {
                    return Err(TemplateError::new(
                        "unclosed parenthesis: expected ) before }}",
                        open,
                        open + 1,
                    )
                    .hint("add the missing )"));
                }
                (Tok::RParen, None) => {
                    return Err(TemplateError::new("unexpected ) in action", t.start, t.end)
                        .hint("remove it, or add the matching ("));
                }
                _ => {
                    return Err(TemplateError::new(
                        format!("unexpected {:?} in {context}", t.text(self.src())),
                        t.start,
                        t.end,
                    ));
                }
            }
        }
        // Only functions take arguments or piped values.
        for (i, cmd) in cmds.iter().enumerate() {
            let head = &cmd.args[0];
            if matches!(head.kind, ArgKind::Func(_)) {
                continue;
            }
            let shown = self.src().get(head.start..head.end).unwrap_or("");
            if matches!(head.kind, ArgKind::Lit(Value::Nil)) && cmd.args.len() == 1 && i == 0 {
                return Err(
                    TemplateError::new("nil is not a command", head.start, head.end)
                        .hint("nil can only be passed to a function"),
                );
            }
            if i > 0 {
                return Err(TemplateError::new(
                    format!("cannot pipe into {shown:?}: it is not a function"),
                    head.start,
                    head.end,
                )
                .hint("the right side of | must be a function call, e.g. | json_escape"));
            }
            if cmd.args.len() > 1 {
                return Err(TemplateError::new(
                    format!("{shown:?} is not a function and cannot take arguments"),
                    head.start,
                    cmd.args[1].end,
                )
                .hint("start the command with a function name, or pass values along with |"));
            }
        }
        if let Some(d) = &decl
            && d.declare
        {
            self.vars.push(d.name.clone());
        }
        Ok((Pipe { decl, cmds }, end))
    }

    /// The operands of one command, up to (not including) `|`, `}}` or `)`.
    fn parse_command(&mut self) -> Res<Option<Cmd>> {
        let mut args: Vec<Arg> = Vec::new();
        loop {
            let t = self.peek()?.clone();
            if matches!(t.tok, Tok::Pipe | Tok::Close | Tok::RParen) {
                break;
            }
            if let Tok::Field(name) = &t.tok {
                return Err(TemplateError::new(
                    format!("field access .{name} is not supported"),
                    t.start,
                    t.end,
                )
                .hint(NO_DATA_HINT));
            }
            if !args.is_empty() && !t.space {
                return Err(TemplateError::new(
                    format!("missing space before {:?}", t.text(self.src())),
                    t.start,
                    t.end,
                )
                .hint("separate arguments with spaces"));
            }
            self.next()?;
            let kind = match t.tok.clone() {
                Tok::Ident(name) => {
                    if !self.funcs.contains(&name) && Builtin::from_name(&name).is_none() {
                        return Err(self.unknown_function(&name, t.start, t.end));
                    }
                    ArgKind::Func(name)
                }
                Tok::Str(s) => ArgKind::Lit(Value::Str(s)),
                Tok::Int(i) => ArgKind::Lit(Value::Int(i)),
                Tok::Float(f) => ArgKind::Lit(Value::Float(f)),
                Tok::Bool(b) => ArgKind::Lit(Value::Bool(b)),
                Tok::Nil => ArgKind::Lit(Value::Nil),
                Tok::Var(name) => {
                    if name == "$" {
                        return Err(TemplateError::new(
                            "$ (the template data) is not available",
                            t.start,
                            t.end,
                        )
                        .hint(NO_DATA_HINT));
                    }
                    if !self.vars.contains(&name) {
                        return Err(undefined_var(&name, &t));
                    }
                    ArgKind::Var(name)
                }
                Tok::Dot => {
                    if self.dot_depth == 0 {
                        return Err(TemplateError::new(
                            "`.` (the template data) is not available here",
                            t.start,
                            t.end,
                        )
                        .hint(format!(
                            "{NO_DATA_HINT}; `.` is only defined inside {{{{ with ... }}}}"
                        )));
                    }
                    ArgKind::Dot
                }
                Tok::LParen => {
                    self.enter(&t)?;
                    let (pipe, end) =
                        self.parse_pipeline("parenthesized pipeline", false, Some(t.start))?;
                    self.depth -= 1;
                    args.push(Arg {
                        kind: ArgKind::Paren(Box::new(pipe)),
                        start: t.start,
                        end,
                    });
                    continue;
                }
                Tok::Kw(kw) => {
                    if matches!(kw, Kw::If | Kw::With | Kw::Else | Kw::End) {
                        return Err(TemplateError::new(
                            format!("unexpected {:?} inside a command", kw.name()),
                            t.start,
                            t.end,
                        )
                        .hint(format!(
                            "{} must come first in its own action: {{{{ {} ... }}}}",
                            kw.name(),
                            kw.name()
                        )));
                    }
                    return Err(unsupported(kw, &t));
                }
                Tok::Comma => {
                    return Err(
                        TemplateError::new("unexpected \",\" in action", t.start, t.end)
                            .hint("arguments are separated by spaces, not commas"),
                    );
                }
                Tok::Declare | Tok::Assign => {
                    return Err(TemplateError::new(
                        format!(
                            "unexpected {:?}: only a $variable can be assigned",
                            t.text(self.src())
                        ),
                        t.start,
                        t.end,
                    )
                    .hint("write {{ $name := value }}"));
                }
                _ => {
                    return Err(TemplateError::new(
                        format!("unexpected {:?} in action", t.text(self.src())),
                        t.start,
                        t.end,
                    ));
                }
            };
            args.push(Arg {
                kind,
                start: t.start,
                end: t.end,
            });
        }
        Ok(match (args.first(), args.last()) {
            (Some(f), Some(l)) => {
                let (start, end) = (f.start, l.end);
                Some(Cmd { args, start, end })
            }
            _ => None,
        })
    }

    fn unknown_function(&self, name: &str, start: usize, end: usize) -> TemplateError {
        let e = TemplateError::new(format!("function {name:?} not defined"), start, end);
        let all = self.funcs.names().chain(BUILTINS.iter().map(|(n, _)| *n));
        if let Some(m) = did_you_mean(name, all) {
            return e.hint(format!("did you mean {m:?}?"));
        }
        let mut mine: Vec<&str> = self.funcs.names().collect();
        let more = mine.len() > 12;
        mine.truncate(12);
        e.hint(format!(
            "available functions: {}{}, and the Go builtins ({})",
            mine.join(", "),
            if more { ", ..." } else { "" },
            BUILTINS
                .iter()
                .map(|(n, _)| *n)
                .collect::<Vec<_>>()
                .join(" ")
        ))
    }
}

fn undefined_var(name: &str, t: &Token) -> TemplateError {
    TemplateError::new(format!("undefined variable {name:?}"), t.start, t.end)
        .hint(format!("declare it first with {{{{ {name} := ... }}}}"))
}

fn unsupported(kw: Kw, t: &Token) -> TemplateError {
    let (what, hint) = match kw {
        Kw::Range => (
            "\"range\" is not supported",
            "cortado renders a definition once with no data to loop over; write the items out, or use a Jsonnet definition for loops",
        ),
        Kw::Define | Kw::Template | Kw::Block => (
            "named templates (define, template, block) are not supported",
            "each file is rendered on its own; for shared pieces use a Jsonnet definition",
        ),
        Kw::Break | Kw::Continue => (
            "break and continue are not supported",
            "they only make sense inside range, which cortado does not support",
        ),
        Kw::If | Kw::With | Kw::Else | Kw::End => (
            "unexpected keyword",
            "if, with, else and end must start an action",
        ),
    };
    let msg = if matches!(
        kw,
        Kw::Break | Kw::Continue | Kw::If | Kw::With | Kw::Else | Kw::End
    ) {
        format!("{what} ({:?})", kw.name())
    } else if matches!(kw, Kw::Define | Kw::Template | Kw::Block) {
        format!("{:?}: {what}", kw.name())
    } else {
        what.to_string()
    };
    TemplateError::new(msg, t.start, t.end).hint(hint)
}

// ---------------------------------------------------------------------------------------
// Builtins

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Builtin {
    And,
    Or,
    Not,
    Len,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Print,
    Printf,
    Println,
}

const BUILTINS: [(&str, Builtin); 13] = [
    ("and", Builtin::And),
    ("or", Builtin::Or),
    ("not", Builtin::Not),
    ("len", Builtin::Len),
    ("eq", Builtin::Eq),
    ("ne", Builtin::Ne),
    ("lt", Builtin::Lt),
    ("le", Builtin::Le),
    ("gt", Builtin::Gt),
    ("ge", Builtin::Ge),
    ("print", Builtin::Print),
    ("printf", Builtin::Printf),
    ("println", Builtin::Println),
];

impl Builtin {
    fn from_name(name: &str) -> Option<Builtin> {
        BUILTINS.iter().find(|(n, _)| *n == name).map(|(_, b)| *b)
    }
}

/// A builtin's error: the message and which argument (by index) it is about.
type BErr = (String, Option<usize>);

fn arity(name: &str, vals: &[Value], want: usize) -> Result<(), BErr> {
    if vals.len() == want {
        return Ok(());
    }
    Err((
        format!(
            "wrong number of arguments for {name}: want {want}, got {}",
            vals.len()
        ),
        vals.get(want).map(|_| want),
    ))
}

fn compare_eq(a: &Value, b: &Value) -> Result<bool, String> {
    Ok(match (a, b) {
        (Value::Nil, Value::Nil) => true,
        (Value::Nil, _) | (_, Value::Nil) => false,
        (Value::Bool(x), Value::Bool(y)) => x == y,
        (Value::Int(x), Value::Int(y)) => x == y,
        (Value::Float(x), Value::Float(y)) => x == y,
        (Value::Int(x), Value::Float(y)) | (Value::Float(y), Value::Int(x)) => (*x as f64) == *y,
        (Value::Str(x), Value::Str(y)) => x == y,
        _ => {
            return Err(format!(
                "incompatible types for comparison: {} and {}",
                a.kind(),
                b.kind()
            ));
        }
    })
}

fn compare_lt(a: &Value, b: &Value) -> Result<bool, String> {
    Ok(match (a, b) {
        (Value::Int(x), Value::Int(y)) => x < y,
        (Value::Float(x), Value::Float(y)) => x < y,
        (Value::Int(x), Value::Float(y)) => (*x as f64) < *y,
        (Value::Float(x), Value::Int(y)) => *x < (*y as f64),
        (Value::Str(x), Value::Str(y)) => x < y,
        (Value::Nil | Value::Bool(_), _) | (_, Value::Nil | Value::Bool(_)) => {
            let bad = if matches!(a, Value::Nil | Value::Bool(_)) {
                a
            } else {
                b
            };
            return Err(format!("invalid type for comparison: {}", bad.kind()));
        }
        _ => {
            return Err(format!(
                "incompatible types for comparison: {} and {}",
                a.kind(),
                b.kind()
            ));
        }
    })
}

/// Go's `fmt.Sprint`: spaces between operands when neither side is a string.
fn sprint(vals: &[Value]) -> String {
    let mut out = String::new();
    for (i, v) in vals.iter().enumerate() {
        if i > 0 && !matches!(v, Value::Str(_)) && !matches!(vals[i - 1], Value::Str(_)) {
            out.push(' ');
        }
        let _ = write!(out, "{v}");
    }
    out
}

fn call_builtin(b: Builtin, name: &str, vals: &[Value]) -> Result<Value, BErr> {
    let cmp_index = |e: String, i: usize| (e, Some(i));
    match b {
        // and/or are evaluated lazily by the executor.
        Builtin::And | Builtin::Or => Ok(vals.last().cloned().unwrap_or(Value::Nil)),
        Builtin::Not => {
            arity(name, vals, 1)?;
            Ok(Value::Bool(!vals[0].is_true()))
        }
        Builtin::Len => {
            arity(name, vals, 1)?;
            match &vals[0] {
                Value::Str(s) => Ok(Value::Int(i64::try_from(s.len()).unwrap_or(i64::MAX))),
                other => Err((format!("len of {} is not defined", other.kind()), Some(0))),
            }
        }
        Builtin::Eq => {
            if vals.len() < 2 {
                return Err((
                    format!("eq needs at least 2 arguments, got {}", vals.len()),
                    None,
                ));
            }
            for (i, v) in vals.iter().enumerate().skip(1) {
                if compare_eq(&vals[0], v).map_err(|e| cmp_index(e, i))? {
                    return Ok(Value::Bool(true));
                }
            }
            Ok(Value::Bool(false))
        }
        Builtin::Ne | Builtin::Lt | Builtin::Le | Builtin::Gt | Builtin::Ge => {
            arity(name, vals, 2)?;
            let (x, y) = (&vals[0], &vals[1]);
            let r = match b {
                Builtin::Ne => !compare_eq(x, y).map_err(|e| cmp_index(e, 1))?,
                Builtin::Lt => compare_lt(x, y).map_err(|e| cmp_index(e, 1))?,
                Builtin::Ge => !compare_lt(x, y).map_err(|e| cmp_index(e, 1))?,
                Builtin::Le | Builtin::Gt => {
                    let lt = compare_lt(x, y).map_err(|e| cmp_index(e, 1))?;
                    let le = lt || compare_eq(x, y).map_err(|e| cmp_index(e, 1))?;
                    if b == Builtin::Le { le } else { !le }
                }
                _ => false,
            };
            Ok(Value::Bool(r))
        }
        Builtin::Print => Ok(Value::Str(sprint(vals))),
        Builtin::Println => {
            let mut s = vals
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(" ");
            s.push('\n');
            Ok(Value::Str(s))
        }
        Builtin::Printf => sprintf(vals).map(Value::Str),
    }
}

// ---------------------------------------------------------------------------------------
// printf

#[derive(Debug, Default, Clone, Copy)]
struct Spec {
    minus: bool,
    plus: bool,
    sharp: bool,
    space: bool,
    zero: bool,
    width: Option<usize>,
    prec: Option<usize>,
}

const VERBS: &str = "%v %s %q %d %f %e %g %t %x %X %o %b %c %%";

fn sprintf(vals: &[Value]) -> Result<String, BErr> {
    let Some(Value::Str(format)) = vals.first() else {
        return Err((
            "printf needs a format string as its first argument".to_string(),
            vals.first().map(|_| 0),
        ));
    };
    let mut out = String::with_capacity(format.len() + 16);
    let mut chars = format.chars().peekable();
    let mut next = 1;
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let mut spec = Spec::default();
        while let Some(&f) = chars.peek() {
            match f {
                '-' => spec.minus = true,
                '+' => spec.plus = true,
                '#' => spec.sharp = true,
                ' ' => spec.space = true,
                '0' => spec.zero = true,
                _ => break,
            }
            chars.next();
        }
        let number = |chars: &mut std::iter::Peekable<std::str::Chars<'_>>| {
            let mut n: Option<usize> = None;
            while let Some(d) = chars.peek().and_then(|c| c.to_digit(10)) {
                n = Some(n.unwrap_or(0).saturating_mul(10).saturating_add(d as usize));
                chars.next();
            }
            n
        };
        spec.width = number(&mut chars);
        if chars.peek() == Some(&'.') {
            chars.next();
            spec.prec = Some(number(&mut chars).unwrap_or(0));
        }
        if spec.width.unwrap_or(0) > MAX_WIDTH || spec.prec.unwrap_or(0) > MAX_WIDTH {
            return Err((
                format!("printf: width or precision larger than {MAX_WIDTH}"),
                Some(0),
            ));
        }
        let Some(verb) = chars.next() else {
            return Err(("printf: the format ends with a lone %".to_string(), Some(0)));
        };
        if verb == '%' {
            out.push('%');
            continue;
        }
        if matches!(verb, '*' | '[') {
            return Err((
                format!(
                    "printf: {verb} in a format (width from an argument or an argument index) is not supported"
                ),
                Some(0),
            ));
        }
        let Some(arg) = vals.get(next) else {
            return Err((format!("printf: missing argument for %{verb}"), Some(0)));
        };
        out.push_str(&format_verb(verb, spec, arg).map_err(|m| (m, Some(next)))?);
        next += 1;
    }
    if next < vals.len() {
        return Err((
            format!(
                "printf: too many arguments: the format uses {}, got {}",
                next - 1,
                vals.len() - 1
            ),
            Some(next),
        ));
    }
    Ok(out)
}

fn pad(spec: Spec, sign: &str, body: &str, zero_ok: bool) -> String {
    let len = sign.chars().count() + body.chars().count();
    let width = spec.width.unwrap_or(0);
    if width <= len {
        return format!("{sign}{body}");
    }
    let fill = width - len;
    if spec.minus {
        format!("{sign}{body}{}", " ".repeat(fill))
    } else if spec.zero && zero_ok {
        format!("{sign}{}{body}", "0".repeat(fill))
    } else {
        format!("{}{sign}{body}", " ".repeat(fill))
    }
}

fn sign_of(spec: Spec, negative: bool) -> &'static str {
    if negative {
        "-"
    } else if spec.plus {
        "+"
    } else if spec.space {
        " "
    } else {
        ""
    }
}

fn truncate(s: &str, prec: Option<usize>) -> &str {
    match prec.and_then(|p| s.char_indices().nth(p)) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

fn format_verb(verb: char, spec: Spec, arg: &Value) -> Result<String, String> {
    let float = |upper: bool, body: String, f: f64| {
        let body = if upper { body.to_uppercase() } else { body };
        if f.is_finite() {
            pad(spec, sign_of(spec, f.is_sign_negative()), &body, true)
        } else {
            pad(spec, "", &body, false)
        }
    };
    Ok(match (verb, arg) {
        ('v', Value::Str(s)) if spec.sharp => pad(spec, "", &go_quote(s), false),
        ('v' | 's', Value::Str(s)) => pad(spec, "", truncate(s, spec.prec), false),
        ('q', Value::Str(s)) => pad(spec, "", &go_quote(truncate(s, spec.prec)), false),
        ('v', Value::Nil) => pad(spec, "", "<nil>", false),
        ('v' | 't', Value::Bool(b)) => pad(spec, "", if *b { "true" } else { "false" }, false),
        ('v' | 'd', Value::Int(i)) => {
            let mut digits = i.unsigned_abs().to_string();
            if let Some(p) = spec.prec
                && digits.len() < p
            {
                digits = format!("{}{digits}", "0".repeat(p - digits.len()));
            }
            pad(spec, sign_of(spec, *i < 0), &digits, spec.prec.is_none())
        }
        ('x' | 'X' | 'o' | 'b', Value::Int(i)) => {
            let u = i.unsigned_abs();
            let (digits, prefix) = match verb {
                'x' => (format!("{u:x}"), "0x"),
                'X' => (format!("{u:X}"), "0X"),
                'o' => (format!("{u:o}"), "0"),
                _ => (format!("{u:b}"), "0b"),
            };
            let sign = sign_of(spec, *i < 0);
            let sign = if spec.sharp {
                format!("{sign}{prefix}")
            } else {
                sign.to_string()
            };
            pad(spec, &sign, &digits, true)
        }
        ('x' | 'X', Value::Str(s)) => {
            let mut h = String::with_capacity(s.len() * 2);
            for b in s.bytes() {
                let _ = if verb == 'x' {
                    write!(h, "{b:02x}")
                } else {
                    write!(h, "{b:02X}")
                };
            }
            pad(spec, "", &h, false)
        }
        ('c', Value::Int(i)) => {
            let c = u32::try_from(*i)
                .ok()
                .and_then(char::from_u32)
                .unwrap_or('\u{fffd}');
            pad(spec, "", &c.to_string(), false)
        }
        ('q', Value::Int(i)) => {
            let c = u32::try_from(*i)
                .ok()
                .and_then(char::from_u32)
                .unwrap_or('\u{fffd}');
            pad(spec, "", &quote_rune(c), false)
        }
        ('v' | 'g' | 'G', Value::Float(f)) => float(verb == 'G', float_g(*f, spec.prec), *f),
        ('e' | 'E', Value::Float(f)) => float(verb == 'E', float_e(*f, spec.prec.unwrap_or(6)), *f),
        ('f' | 'F', Value::Float(f)) => {
            let body = if f.is_finite() {
                format!("{:.*}", spec.prec.unwrap_or(6), f.abs())
            } else {
                non_finite(*f)
            };
            float(false, body, *f)
        }
        (v, a) if "vsqdfFeEgGtxXobc".contains(v) => {
            let needs = match v {
                's' | 'q' => "a string",
                'd' | 'o' | 'b' | 'c' => "an integer",
                'f' | 'F' | 'e' | 'E' | 'g' | 'G' => "a float",
                't' => "a bool",
                _ => "an integer or a string",
            };
            return Err(format!(
                "printf: %{v} needs {needs}, got {}; %v prints any value",
                a.describe()
            ));
        }
        (v, _) => {
            return Err(format!(
                "printf: unknown verb %{v}; supported verbs are {VERBS}"
            ));
        }
    })
}

fn non_finite(f: f64) -> String {
    if f.is_nan() {
        "NaN".to_string()
    } else if f > 0.0 {
        "+Inf".to_string()
    } else {
        "-Inf".to_string()
    }
}

/// Splits Rust's `{:e}` form of a non-negative float into its digits and decimal exponent.
fn split_exp(s: &str) -> (String, i32) {
    let (m, e) = s.split_once('e').unwrap_or((s, "0"));
    (
        m.chars().filter(char::is_ascii_digit).collect(),
        e.parse().unwrap_or(0),
    )
}

fn exp_suffix(exp: i32) -> String {
    let sign = if exp < 0 { '-' } else { '+' };
    format!("e{sign}{:02}", exp.unsigned_abs())
}

/// Go's `%e` with `prec` digits after the point, without the sign.
fn float_e(f: f64, prec: usize) -> String {
    if !f.is_finite() {
        return non_finite(f);
    }
    let s = format!("{:.*e}", prec, f.abs());
    let (m, e) = s.split_once('e').unwrap_or((&s, "0"));
    format!("{m}{}", exp_suffix(e.parse().unwrap_or(0)))
}

/// Go's `%g` (shortest when `prec` is None), without the sign.
fn float_g(f: f64, prec: Option<usize>) -> String {
    if !f.is_finite() {
        return non_finite(f);
    }
    let a = f.abs();
    let (digits, exp, eprec) = match prec {
        None => {
            let (d, e) = split_exp(&format!("{a:e}"));
            (d, e, 6)
        }
        Some(p) => {
            let p = p.max(1);
            let (mut d, e) = split_exp(&format!("{:.*e}", p - 1, a));
            while d.len() > 1 && d.ends_with('0') {
                d.pop();
            }
            let nd = i32::try_from(d.len()).unwrap_or(i32::MAX);
            let mut eprec = i32::try_from(p).unwrap_or(i32::MAX);
            if eprec > nd && nd > e {
                eprec = nd;
            }
            (d, e, eprec)
        }
    };
    if exp < -4 || exp >= eprec {
        let mut m = digits[..1].to_string();
        if digits.len() > 1 {
            m.push('.');
            m.push_str(&digits[1..]);
        }
        return format!("{m}{}", exp_suffix(exp));
    }
    let dp = exp + 1;
    let nd = digits.len();
    if dp <= 0 {
        format!("0.{}{digits}", "0".repeat(dp.unsigned_abs() as usize))
    } else {
        let dp = dp as usize;
        if dp >= nd {
            format!("{digits}{}", "0".repeat(dp - nd))
        } else {
            format!("{}.{}", &digits[..dp], &digits[dp..])
        }
    }
}

/// A float as Go's `%v` prints it.
pub fn format_float_v(f: f64) -> String {
    let body = float_g(f, None);
    if f.is_finite() && f.is_sign_negative() {
        format!("-{body}")
    } else {
        body
    }
}

/// Go's `strconv.Quote`.
fn go_quote(s: &str) -> String {
    let mut o = String::with_capacity(s.len() + 2);
    o.push('"');
    for c in s.chars() {
        push_escaped(&mut o, c, '"');
    }
    o.push('"');
    o
}

fn quote_rune(c: char) -> String {
    let mut o = String::from("'");
    push_escaped(&mut o, c, '\'');
    o.push('\'');
    o
}

fn push_escaped(o: &mut String, c: char, quote: char) {
    match c {
        '\\' => o.push_str("\\\\"),
        '\x07' => o.push_str("\\a"),
        '\x08' => o.push_str("\\b"),
        '\x0c' => o.push_str("\\f"),
        '\n' => o.push_str("\\n"),
        '\r' => o.push_str("\\r"),
        '\t' => o.push_str("\\t"),
        '\x0b' => o.push_str("\\v"),
        c if c == quote => {
            o.push('\\');
            o.push(c);
        }
        c if (c as u32) < 0x20 || c == '\x7f' => {
            let _ = write!(o, "\\x{:02x}", c as u32);
        }
        c if c.is_control() => {
            let _ = if (c as u32) <= 0xffff {
                write!(o, "\\u{:04x}", c as u32)
            } else {
                write!(o, "\\U{:08x}", c as u32)
            };
        }
        c => o.push(c),
    }
}

// ---------------------------------------------------------------------------------------
// Executor

/// `msg` prefixed with the function's name, unless it already starts with it.
fn name_message(name: &str, msg: String) -> String {
    match msg.strip_prefix(name) {
        Some(rest) if rest.starts_with([' ', ':']) => msg,
        _ => format!("{name}: {msg}"),
    }
}

struct Exec<'t> {
    src: &'t str,
    funcs: &'t Funcs,
    vars: Vec<(&'t str, Value)>,
    dots: Vec<Value>,
    out: Output,
}

impl<'t> Exec<'t> {
    fn exec_list(&mut self, nodes: &'t [Node]) -> Res<()> {
        for n in nodes {
            match n {
                Node::Text { start, end } => {
                    let text = self.src.get(*start..*end).unwrap_or("");
                    self.out.push(text, *start, true);
                }
                Node::Action { pipe, start, end } => {
                    let v = self.eval_pipe(pipe)?;
                    if pipe.decl.is_none() {
                        self.emit(v, *start, *end)?;
                    }
                }
                Node::Cond(c) => {
                    let mark = self.vars.len();
                    let r = self.exec_cond(c);
                    self.vars.truncate(mark);
                    r?;
                }
            }
        }
        Ok(())
    }

    fn exec_cond(&mut self, c: &'t Cond) -> Res<()> {
        for b in &c.branches {
            let v = self.eval_pipe(&b.pipe)?;
            if v.is_true() {
                if b.with {
                    self.dots.push(v);
                }
                let mark = self.vars.len();
                let r = self.exec_list(&b.body);
                self.vars.truncate(mark);
                if b.with {
                    self.dots.pop();
                }
                return r;
            }
        }
        let mark = self.vars.len();
        let r = self.exec_list(&c.otherwise);
        self.vars.truncate(mark);
        r
    }

    fn emit(&mut self, v: Value, start: usize, end: usize) -> Res<()> {
        match v {
            Value::Nil => Err(TemplateError::new(
                "template action produced no value",
                start,
                end,
            )
            .hint("the pipeline ended in nil; pass it to a function that handles nil, or make the function return a value")),
            Value::Str(s) => {
                self.out.push(&s, start, false);
                Ok(())
            }
            other => {
                self.out.push(&other.to_string(), start, false);
                Ok(())
            }
        }
    }

    fn eval_pipe(&mut self, pipe: &'t Pipe) -> Res<Value> {
        let mut v: Option<Value> = None;
        for cmd in &pipe.cmds {
            v = Some(self.eval_cmd(cmd, v.take())?);
        }
        let v = v.unwrap_or(Value::Nil);
        if let Some(d) = &pipe.decl {
            if d.declare {
                self.vars.push((&d.name, v.clone()));
            } else if let Some(slot) = self.vars.iter_mut().rev().find(|(n, _)| *n == d.name) {
                slot.1 = v.clone();
            }
        }
        Ok(v)
    }

    fn eval_cmd(&mut self, cmd: &'t Cmd, piped: Option<Value>) -> Res<Value> {
        let head = &cmd.args[0];
        match &head.kind {
            ArgKind::Func(name) => self.call(name, &cmd.args[1..], piped, cmd.start, cmd.end),
            _ => self.eval_arg(head),
        }
    }

    fn eval_arg(&mut self, a: &'t Arg) -> Res<Value> {
        match &a.kind {
            ArgKind::Lit(v) => Ok(v.clone()),
            ArgKind::Var(name) => Ok(self
                .vars
                .iter()
                .rev()
                .find(|(n, _)| n == name)
                .map_or(Value::Nil, |(_, v)| v.clone())),
            ArgKind::Dot => Ok(self.dots.last().cloned().unwrap_or(Value::Nil)),
            ArgKind::Paren(p) => self.eval_pipe(p),
            ArgKind::Func(name) => self.call(name, &[], None, a.start, a.end),
        }
    }

    fn call(
        &mut self,
        name: &str,
        args: &'t [Arg],
        piped: Option<Value>,
        start: usize,
        end: usize,
    ) -> Res<Value> {
        if let Some(f) = self.funcs.get(name) {
            let mut vals = Vec::with_capacity(args.len() + 1);
            for a in args {
                vals.push(self.eval_arg(a)?);
            }
            vals.extend(piped);
            return f(&vals).map_err(|m| {
                let (msg, hint) = match m.split_once(HINT_MARKER) {
                    Some((msg, hint)) => (msg.to_string(), Some(hint.to_string())),
                    None => (m, None),
                };
                let msg = name_message(name, msg);
                let mut e = TemplateError::new(msg, start, end);
                e.hint = hint;
                e
            });
        }
        let Some(b) = Builtin::from_name(name) else {
            return Err(TemplateError::new(
                format!("function {name:?} not defined"),
                start,
                end,
            ));
        };
        if matches!(b, Builtin::And | Builtin::Or) {
            if args.is_empty() && piped.is_none() {
                return Err(TemplateError::new(
                    format!("{name} needs at least 1 argument"),
                    start,
                    end,
                ));
            }
            let mut last = Value::Nil;
            for a in args {
                last = self.eval_arg(a)?;
                if last.is_true() == (b == Builtin::Or) {
                    return Ok(last);
                }
            }
            return Ok(piped.unwrap_or(last));
        }
        let mut vals = Vec::with_capacity(args.len() + 1);
        for a in args {
            vals.push(self.eval_arg(a)?);
        }
        vals.extend(piped);
        call_builtin(b, name, &vals).map_err(|(msg, at)| {
            let msg = name_message(name, msg);
            match at.and_then(|i| args.get(i)) {
                Some(a) => TemplateError::new(msg, a.start, a.end),
                None => TemplateError::new(msg, start, end),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Location;
    use crate::render::funcs::standard;

    fn funcs() -> Funcs {
        let vars: BTreeMap<String, String> = [
            ("IMAGE", "nginx:1.27"),
            ("APP", "we\"b"),
            ("EMPTY", ""),
            ("CPU", "512"),
        ]
        .into_iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
        let mut f = standard(Arc::new(vars));
        f.insert(
            "cat",
            Arc::new(|args: &[Value]| {
                Ok(Value::Str(args.iter().map(ToString::to_string).collect()))
            }),
        );
        f.insert("nothing", Arc::new(|_: &[Value]| Ok(Value::Nil)));
        f.insert(
            "count",
            Arc::new(|args: &[Value]| Ok(Value::Int(args.len() as i64))),
        );
        f
    }

    fn ok(src: &str) -> String {
        match render(src, &funcs()) {
            Ok(o) => o.text,
            Err(e) => panic!("{src:?} failed: {e:?}"),
        }
    }

    fn err(src: &str) -> TemplateError {
        match render(src, &funcs()) {
            Ok(o) => panic!("{src:?} rendered {:?}, expected an error", o.text),
            Err(e) => e,
        }
    }

    /// The source text an error underlines.
    fn marked<'s>(src: &'s str, e: &TemplateError) -> &'s str {
        &src[e.offset..e.offset + e.len]
    }

    fn line_col(src: &str, e: &TemplateError) -> (usize, usize) {
        let l = Location::from_offset("t", src, e.offset, e.len);
        (l.line, l.col)
    }

    #[test]
    fn plain_text_is_copied_with_one_literal_segment() {
        let src = "{\"a\": {\"b\": [1, 2]}}\n";
        let out = render(src, &funcs()).unwrap();
        assert_eq!(out.text, src);
        assert_eq!(out.segments, vec![(0, 0, true)]);
        assert_eq!(render("", &funcs()).unwrap().text, "");
    }

    #[test]
    fn closing_braces_in_text_are_literal() {
        assert_eq!(
            ok("{\"x\":{\"y\":\"{{ must_env `IMAGE` }}\"}}"),
            "{\"x\":{\"y\":\"nginx:1.27\"}}"
        );
    }

    #[test]
    fn env_and_must_env() {
        assert_eq!(ok("{{ must_env `IMAGE` }}"), "nginx:1.27");
        assert_eq!(ok("{{ env `CPU` `256` }}"), "512");
        assert_eq!(ok("{{ env `NOPE` `256` }}"), "256");
        assert_eq!(ok("{{ env \"EMPTY\" \"d\" }}"), "d");
        assert_eq!(ok("[{{must_env \"EMPTY\"}}]"), "[]");
    }

    #[test]
    fn pipeline_into_json_escape() {
        assert_eq!(ok("{{ env \"APP\" \"web\" | json_escape }}"), "we\\\"b");
    }

    #[test]
    fn piped_value_is_the_last_argument() {
        assert_eq!(ok("{{ \"c\" | cat \"a\" \"b\" }}"), "abc");
        assert_eq!(ok("{{ cat 1 | cat 2 | cat 3 }}"), "321");
        assert_eq!(ok("{{ count | count 7 7 }}"), "3");
    }

    #[test]
    fn parenthesised_arguments() {
        assert_eq!(
            ok("{{ cat (env `NOPE` `d`) \"!\" (cat (count 1 2)) }}"),
            "d!2"
        );
        assert_eq!(ok("{{ (env `CPU`) }}"), "512");
    }

    #[test]
    fn functions_without_arguments_can_be_arguments() {
        assert_eq!(ok("{{ cat count }}"), "0");
    }

    #[test]
    fn trim_markers_remove_adjacent_whitespace_and_newlines() {
        assert_eq!(ok("a  \n\t{{- `b` -}} \n\n c"), "abc");
        assert_eq!(ok("a \n{{- `b` }} c"), "ab c");
        assert_eq!(ok("a {{ `b` -}}\n  c"), "a bc");
        // No space after the dash: a negative number, no trimming.
        assert_eq!(ok("a {{-3}} b"), "a -3 b");
        assert_eq!(ok("a {{ 3 }} b"), "a 3 b");
    }

    #[test]
    fn comments_with_and_without_trim() {
        assert_eq!(ok("a{{/* note */}}b"), "ab");
        assert_eq!(ok("a \n {{- /* multi\nline */ -}} \n b"), "ab");
        assert_eq!(ok("a {{ /* spaced */ }} b"), "a  b");
    }

    #[test]
    fn comment_errors() {
        let src = "x {{/* never closed }}";
        let e = err(src);
        assert!(e.message.contains("unclosed comment"), "{e:?}");
        assert_eq!(e.offset, 2);
        let src = "{{/* c */ `x` }}";
        let e = err(src);
        assert!(
            e.message
                .contains("comment ends before the closing delimiter"),
            "{e:?}"
        );
        assert_eq!(marked(src, &e), "*/");
    }

    #[test]
    fn string_escapes_and_raw_strings() {
        assert_eq!(
            ok(r#"{{ "a\tb\n\u00e9\x41\101\\\"" }}"#),
            "a\tb\né AA\\\"".replace(' ', "")
        );
        assert_eq!(ok("{{ `raw\\n\n\"x\"` }}"), "raw\\n\n\"x\"");
        assert_eq!(ok("{{ \"\\U0001F600\" }}"), "\u{1F600}");
    }

    #[test]
    fn invalid_escape_points_at_the_escape() {
        let src = "{{ \"ab\\qc\" }}";
        let e = err(src);
        assert!(e.message.contains("invalid escape sequence \\q"), "{e:?}");
        assert_eq!(marked(src, &e), "\\q");
        let e = err("{{ \"\\xZZ\" }}");
        assert!(e.message.contains("invalid escape"), "{e:?}");
        let e = err("{{ \"\\xff\" }}");
        assert!(e.message.contains("not valid UTF-8"), "{e:?}");
    }

    #[test]
    fn numbers_and_constants() {
        assert_eq!(
            ok(
                "{{ 42 }} {{ -7 }} {{ +3 }} {{ 0x1F }} {{ 0o17 }} {{ 017 }} {{ 0b101 }} {{ 1_000 }}"
            ),
            "42 -7 3 31 15 15 5 1000"
        );
        assert_eq!(
            ok("{{ 1.5 }} {{ .5 }} {{ 1e3 }} {{ 2.0 }} {{ -0.25 }}"),
            "1.5 0.5 1000 2 -0.25"
        );
        assert_eq!(
            ok("{{ true }} {{ false }} {{ 'a' }} {{ '\\n' }}"),
            "true false 97 10"
        );
    }

    #[test]
    fn bad_numbers_are_errors() {
        let src = "{{ cat 12abc }}";
        let e = err(src);
        assert!(e.message.contains("bad number syntax"), "{e:?}");
        assert_eq!(marked(src, &e), "12abc");
        let e = err("{{ 99999999999999999999 }}");
        assert!(e.message.contains("out of range"), "{e:?}");
        let e = err("{{ 08 }}");
        assert!(e.message.contains("bad number"), "{e:?}");
        let e = err("{{ 'ab' }}");
        assert!(e.message.contains("exactly one character"), "{e:?}");
    }

    #[test]
    fn floats_print_like_go() {
        let cases = [
            (1e6, "1e+06"),
            (123456.0, "123456"),
            (1234567.0, "1.234567e+06"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (1e21, "1e+21"),
            (-2.5, "-2.5"),
            (0.0, "0"),
            (f64::INFINITY, "+Inf"),
        ];
        for (f, want) in cases {
            assert_eq!(Value::Float(f).to_string(), want, "{f}");
        }
    }

    #[test]
    fn variables_declare_assign_and_scope() {
        assert_eq!(ok("{{ $x := env `CPU` }}[{{ $x }}]"), "[512]");
        assert_eq!(
            ok("{{ $x := 1 }}{{ if true }}{{ $x = 2 }}{{ end }}{{ $x }}"),
            "2"
        );
        assert_eq!(
            ok("{{ if $v := env `NOPE` `` }}{{ $v }}{{ else }}none{{ end }}"),
            "none"
        );
        // Shadowing inside a block ends with the block.
        assert_eq!(
            ok("{{ $x := 1 }}{{ if true }}{{ $x := 5 }}{{ $x }}{{ end }}{{ $x }}"),
            "51"
        );
    }

    #[test]
    fn undefined_variables_are_parse_errors() {
        let src = "{{ $x := 1 }}\n{{ $y }}";
        let e = err(src);
        assert_eq!(e.message, "undefined variable \"$y\"");
        assert_eq!(marked(src, &e), "$y");
        assert_eq!(line_col(src, &e), (2, 4));
        let src = "{{ if true }}{{ $z := 1 }}{{ end }}{{ $z }}";
        let e = err(src);
        assert!(e.message.contains("\"$z\""), "{e:?}");
        assert_eq!(e.offset, src.rfind("$z").unwrap());
        let e = err("{{ $w = 3 }}");
        assert!(e.message.contains("undefined variable"), "{e:?}");
        assert!(e.hint.unwrap().contains("$w :="));
    }

    #[test]
    fn if_else_if_else() {
        let t = |v: &str| {
            ok(&format!(
                "{{{{ if {v} }}}}a{{{{ else if eq 1 1 }}}}b{{{{ else }}}}c{{{{ end }}}}"
            ))
        };
        for truthy in ["true", "1", "1.5", "`x`", "(env `CPU`)"] {
            assert_eq!(t(truthy), "a", "{truthy}");
        }
        for falsy in ["false", "0", "0.0", "``", "(nothing)", "(env `EMPTY` ``)"] {
            assert_eq!(t(falsy), "b", "{falsy}");
        }
        assert_eq!(
            ok("{{ if false }}a{{ else if false }}b{{ else }}c{{ end }}"),
            "c"
        );
        assert_eq!(ok("{{ if false }}a{{ end }}z"), "z");
    }

    #[test]
    fn with_binds_dot() {
        assert_eq!(
            ok("{{ with env `CPU` `` }}cpu={{ . }}{{ else }}none{{ end }}"),
            "cpu=512"
        );
        assert_eq!(
            ok("{{ with env `NOPE` `` }}{{ . }}{{ else }}none{{ end }}"),
            "none"
        );
        assert_eq!(
            ok("{{ with `` }}a{{ else with must_env `IMAGE` }}{{ . | json_escape }}{{ end }}"),
            "nginx:1.27"
        );
        assert_eq!(
            ok("{{ with 1 }}{{ with 2 }}{{ . }}{{ end }}{{ . }}{{ end }}"),
            "21"
        );
    }

    #[test]
    fn data_access_is_rejected_with_a_hint() {
        let src = "\"image\": \"{{ .Image }}\"";
        let e = err(src);
        assert!(
            e.message.contains("field access .Image is not supported"),
            "{e:?}"
        );
        assert_eq!(marked(src, &e), ".Image");
        assert!(e.hint.unwrap().contains("must_env"));
        let e = err("{{ . }}");
        assert!(
            e.message
                .contains("`.` (the template data) is not available"),
            "{e:?}"
        );
        let e = err("{{ with 1 }}{{ else }}{{ . }}{{ end }}");
        assert!(e.message.contains("not available"), "{e:?}");
        let e = err("{{ $ }}");
        assert!(e.message.contains("$ (the template data)"), "{e:?}");
        let src = "{{ $x := 1 }}{{ $x.Name }}";
        let e = err(src);
        assert_eq!(marked(src, &e), ".Name");
    }

    #[test]
    fn unsupported_keywords() {
        for (src, want) in [
            ("{{ range $i := 1 }}{{ end }}", "\"range\" is not supported"),
            ("{{ define \"x\" }}{{ end }}", "\"define\": named templates"),
            ("{{ template \"x\" }}", "\"template\": named templates"),
            ("{{ block \"x\" 1 }}{{ end }}", "\"block\": named templates"),
            ("{{ break }}", "break and continue are not supported"),
            ("{{ continue }}", "break and continue"),
        ] {
            let e = err(src);
            assert!(e.message.contains(want), "{src}: {e:?}");
            assert_eq!(e.offset, 3, "{src}");
            assert!(e.hint.is_some());
        }
    }

    #[test]
    fn and_or_short_circuit_and_return_values() {
        assert_eq!(ok("{{ or (env `NOPE` ``) `fallback` }}"), "fallback");
        assert_eq!(ok("{{ and 1 `x` }}"), "x");
        assert_eq!(ok("{{ and 0 (must_env `UNSET`) }}"), "0");
        assert_eq!(ok("{{ or `y` (must_env `UNSET`) }}"), "y");
        assert_eq!(ok("{{ `p` | and 1 }}"), "p");
        assert!(err("{{ and }}").message.contains("at least 1 argument"));
    }

    #[test]
    fn not_and_len() {
        assert_eq!(
            ok("{{ not `` }} {{ not 1 }} {{ len `héllo` }}"),
            "true false 6"
        );
        let src = "{{ len 5 }}";
        let e = err(src);
        assert!(e.message.contains("len of int"), "{e:?}");
        assert_eq!(marked(src, &e), "5");
        assert!(
            err("{{ not 1 2 }}")
                .message
                .contains("wrong number of arguments for not")
        );
    }

    #[test]
    fn comparisons() {
        assert_eq!(
            ok("{{ eq 1 1 }} {{ eq `a` `b` `a` }} {{ ne 1 2 }} {{ eq 1 1.0 }}"),
            "true true true true"
        );
        assert_eq!(
            ok("{{ lt 1 2 }} {{ le 2 2 }} {{ gt 1.5 1 }} {{ ge `a` `b` }}"),
            "true true true false"
        );
        assert_eq!(ok("{{ eq nil nil }} {{ eq (nothing) 1 }}"), "true false");
        assert_eq!(ok("{{ if eq (env `CPU`) `512` }}big{{ end }}"), "big");
        let src = "{{ eq 1 `1` }}";
        let e = err(src);
        assert!(
            e.message
                .contains("incompatible types for comparison: int and string"),
            "{e:?}"
        );
        assert_eq!(marked(src, &e), "`1`");
        assert!(
            err("{{ lt true false }}")
                .message
                .contains("invalid type for comparison: bool")
        );
        assert!(err("{{ eq 1 }}").message.contains("at least 2"));
    }

    #[test]
    fn print_and_println_spacing() {
        assert_eq!(ok("{{ print 1 2 `a` 3 `b` `c` }}"), "1 2a3bc");
        assert_eq!(ok("{{ println `a` 1 }}"), "a 1\n");
        assert_eq!(ok("{{ print nil 1.5 true }}"), "<nil> 1.5 true");
    }

    #[test]
    fn printf_verbs() {
        assert_eq!(ok("{{ printf `%s-%d-%v-%%` `a` 42 true }}"), "a-42-true-%");
        assert_eq!(ok("{{ printf `%q` `a\"b` }}"), "\"a\\\"b\"");
        assert_eq!(
            ok("{{ printf `%f|%.2f|%8.3f|%e|%g` 1.5 3.14159 2.5 1234.5 0.000012 }}"),
            "1.500000|3.14|   2.500|1.234500e+03|1.2e-05"
        );
        assert_eq!(
            ok(
                "{{ printf `%05d|%-4s|%4s|%+d|%x|%X|%#x|%o|%b|%c|%.3d` 42 `ab` `ab` 5 255 255 255 8 5 65 7 }}"
            ),
            "00042|ab  |  ab|+5|ff|FF|0xff|10|101|A|007"
        );
        assert_eq!(
            ok("{{ printf `%v %v %.3g %t` 1e6 nil 3.14159 false }}"),
            "1e+06 <nil> 3.14 false"
        );
        assert_eq!(ok("{{ `x` | printf `[%s]` }}"), "[x]");
        assert_eq!(ok("{{ printf `%.2s|%x` `hello` `hi` }}"), "he|6869");
    }

    #[test]
    fn printf_errors_point_at_the_argument() {
        let src = "{{ printf `%d` `abc` }}";
        let e = err(src);
        assert!(
            e.message
                .contains("%d needs an integer, got string \"abc\""),
            "{e:?}"
        );
        assert_eq!(marked(src, &e), "`abc`");
        let src = "{{ printf `%s %s` `a` }}";
        let e = err(src);
        assert!(e.message.contains("missing argument for %s"), "{e:?}");
        assert_eq!(marked(src, &e), "`%s %s`");
        let src = "{{ printf `%s` `a` 2 }}";
        let e = err(src);
        assert!(e.message.contains("too many arguments"), "{e:?}");
        assert_eq!(marked(src, &e), "2");
        let e = err("{{ printf `%z` 1 }}");
        assert!(e.message.contains("unknown verb %z"), "{e:?}");
        assert!(err("{{ printf 1 }}").message.contains("format string"));
        assert!(err("{{ printf `%` }}").message.contains("lone %"));
        assert!(
            err("{{ printf `%99999d` 1 }}")
                .message
                .contains("larger than")
        );
    }

    #[test]
    fn unknown_function_suggests_a_name() {
        let src = "{\n  \"image\": \"{{ must_emv `IMAGE` }}\"\n}";
        let e = err(src);
        assert_eq!(e.message, "function \"must_emv\" not defined");
        assert_eq!(marked(src, &e), "must_emv");
        assert_eq!(line_col(src, &e), (2, 16));
        assert_eq!(e.hint.as_deref(), Some("did you mean \"must_env\"?"));
        let e = err("{{ zzzzzzzz 1 }}");
        let hint = e.hint.unwrap();
        assert!(
            hint.contains("available functions: cat, count, env"),
            "{hint}"
        );
        assert!(hint.contains("printf"), "{hint}");
    }

    #[test]
    fn unknown_function_is_found_in_untaken_branches_too() {
        let e = err("{{ if false }}{{ tfstate `x` }}{{ end }}");
        assert!(e.message.contains("\"tfstate\" not defined"), "{e:?}");
    }

    #[test]
    fn function_error_carries_hint_and_location() {
        let src = "{\n  \"image\": \"{{ must_env `IMAGE_TAG` }}\"\n}";
        let e = err(src);
        assert_eq!(
            e.message,
            "must_env: environment variable IMAGE_TAG is not set"
        );
        assert_eq!(marked(src, &e), "must_env `IMAGE_TAG`");
        assert_eq!(line_col(src, &e), (2, 16));
        assert!(
            e.hint
                .unwrap()
                .contains("set IMAGE_TAG in the environment or in an --envfile")
        );
        // An error message that already names the function is not prefixed twice.
        let e = err("{{ env 1 }}");
        assert_eq!(e.message, "env takes strings, got a number");
        let mut f = funcs();
        f.insert("e", Arc::new(|_: &[Value]| Err("error text".to_string())));
        let e = render("{{ e }}", &f).unwrap_err();
        assert_eq!(e.message, "e: error text");
        assert_eq!(e.hint, None);
    }

    #[test]
    fn unclosed_action_at_end_of_input() {
        let src = "{\n  \"image\": \"{{ must_env \"X\"";
        let e = err(src);
        assert!(e.message.starts_with("unclosed action"), "{e:?}");
        assert_eq!(e.offset, src.find("{{").unwrap());
        assert_eq!(line_col(src, &e), (2, 13));
    }

    #[test]
    fn unclosed_action_before_the_next_action() {
        let src = "{\n  \"image\": \"{{ must_env `IMAGE`\",\n  \"cpu\": \"{{ env `CPU` }}\"\n}";
        let e = err(src);
        assert!(e.message.starts_with("unclosed action"), "{e:?}");
        assert_eq!(line_col(src, &e), (2, 13));
        assert_eq!(marked(src, &e), "{{ must_env `IMAGE`\",");
        let src = "{{ if true\n}}x{{ end }}{{ 1";
        let e = err(src);
        assert!(e.message.starts_with("unclosed action"), "{e:?}");
        assert_eq!(e.offset, src.rfind("{{").unwrap());
    }

    #[test]
    fn unterminated_strings() {
        let src = "{{ must_env \"IMAGE }}\n";
        let e = err(src);
        assert_eq!(e.message, "unterminated quoted string");
        assert_eq!(e.offset, src.find('"').unwrap());
        let src = "{{ must_env `IMAGE }}";
        let e = err(src);
        assert_eq!(e.message, "unterminated raw string");
        assert_eq!(e.offset, src.find('`').unwrap());
    }

    #[test]
    fn missing_values_and_stray_parentheses() {
        let e = err("a {{ }} b");
        assert_eq!(e.message, "missing value in action");
        assert_eq!(e.offset, 5);
        let e = err("{{ if }}x{{ end }}");
        assert_eq!(e.message, "missing value for if");
        let src = "{{ cat (env `A` }}";
        let e = err(src);
        assert!(e.message.contains("unclosed parenthesis"), "{e:?}");
        assert_eq!(e.offset, src.find('(').unwrap());
        let src = "{{ cat 1) }}";
        let e = err(src);
        assert!(e.message.contains("unexpected )"), "{e:?}");
        assert_eq!(marked(src, &e), ")");
        let e = err("{{ cat 1 | }}");
        assert!(e.message.contains("missing command"), "{e:?}");
    }

    #[test]
    fn end_and_else_without_if() {
        let src = "a\n{{ end }}";
        let e = err(src);
        assert!(e.message.contains("unexpected {{end}}"), "{e:?}");
        assert_eq!(marked(src, &e), "{{ end }}");
        let e = err("{{ else }}");
        assert!(e.message.contains("unexpected {{else}}"), "{e:?}");
        let e = err("{{ if 1 }}{{ end 5 }}");
        assert!(e.message.contains("after end"), "{e:?}");
    }

    #[test]
    fn missing_end_points_at_the_block() {
        let src = "{\n  {{ if eq (env `A` ``) `x` }}\n  \"a\": 1\n}\n";
        let e = err(src);
        assert_eq!(e.message, "missing {{end}} for this {{if}}");
        assert_eq!(line_col(src, &e), (2, 3));
        assert_eq!(marked(src, &e), "{{ if eq (env `A` ``) `x` }}");
        let e = err("{{ with 1 }}{{ else }}");
        assert_eq!(e.message, "missing {{end}} for this {{with}}");
    }

    #[test]
    fn second_else_is_an_error() {
        let src = "{{ if 1 }}a{{ else }}b{{ else }}c{{ end }}";
        let e = err(src);
        assert!(e.message.contains("{{else}} after {{else}}"), "{e:?}");
        assert_eq!(e.offset, src.rfind("{{ else").unwrap());
    }

    #[test]
    fn nil_output_is_an_error_but_nil_arguments_are_fine() {
        let src = "x {{ nothing }}";
        let e = err(src);
        assert_eq!(e.message, "template action produced no value");
        assert_eq!(marked(src, &e), "{{ nothing }}");
        assert_eq!(ok("{{ cat nil }}{{ count nil (nothing) }}"), "<nil>2");
        let e = err("{{ nil }}");
        assert_eq!(e.message, "nil is not a command");
    }

    #[test]
    fn only_functions_take_arguments() {
        let src = "{{ `a` `b` }}";
        let e = err(src);
        assert!(
            e.message
                .contains("is not a function and cannot take arguments"),
            "{e:?}"
        );
        let src = "{{ `a` | 3 }}";
        let e = err(src);
        assert!(e.message.contains("cannot pipe into \"3\""), "{e:?}");
        assert_eq!(marked(src, &e), "3");
    }

    #[test]
    fn syntax_errors_inside_actions() {
        let src = "{{ cat `a``b` }}";
        let e = err(src);
        assert!(e.message.contains("missing space"), "{e:?}");
        assert_eq!(marked(src, &e), "`b`");
        let e = err("{{ cat 1, 2 }}");
        assert!(e.message.contains("\",\""), "{e:?}");
        let e = err("{{ x := 1 }}");
        assert!(e.message.contains("not defined"), "{e:?}");
        let e = err("{{ cat := 1 }}");
        assert!(e.message.contains("only a $variable"), "{e:?}");
        let src = "{{ env `A`-}}";
        let e = err(src);
        assert!(
            e.hint
                .as_deref()
                .unwrap_or("")
                .contains("trim marker needs a space"),
            "{e:?}"
        );
        let e = err("{{ cat if }}");
        assert!(e.message.contains("\"if\" inside a command"), "{e:?}");
        let e = err("{{ cat ( $x := 1 ) }}");
        assert!(
            e.message.contains("not allowed inside parentheses"),
            "{e:?}"
        );
        let e = err("{{ cat # }}");
        assert!(e.message.contains("unexpected character '#'"), "{e:?}");
    }

    #[test]
    fn deep_nesting_is_refused_without_overflow() {
        let deep_parens = format!(
            "{{{{ cat {}1{} }}}}",
            "(cat ".repeat(5000),
            ")".repeat(5000)
        );
        let e = err(&deep_parens);
        assert!(e.message.contains("nests too deeply"), "{e:?}");
        let deep_ifs = format!("{}x{}", "{{ if 1 }}".repeat(5000), "{{ end }}".repeat(5000));
        let e = err(&deep_ifs);
        assert!(e.message.contains("nests too deeply"), "{e:?}");
        let fine = format!("{}x{}", "{{ if 1 }}".repeat(50), "{{ end }}".repeat(50));
        assert_eq!(ok(&fine), "x");
        // Long else-if chains are flat, not nested.
        let chain = format!(
            "{{{{ if 0 }}}}{}y{{{{ end }}}}",
            "{{ else if 0 }}".repeat(3000)
        );
        assert_eq!(ok(&chain), "");
    }

    #[test]
    fn segments_map_output_back_to_the_source() {
        let src = "{\"image\": \"{{ must_env `IMAGE` }}\", \"cpu\": {{ env `CPU` }}, \"x\": 1}";
        let out = render(src, &funcs()).unwrap();
        assert_eq!(
            out.text,
            "{\"image\": \"nginx:1.27\", \"cpu\": 512, \"x\": 1}"
        );
        // A byte after an action of a different length maps to the same text in the source.
        let o = out.text.find("\"x\"").unwrap();
        let s = out.source_offset(o);
        assert_eq!(&src[s..s + 3], "\"x\"");
        let o = out.text.find("\"cpu\"").unwrap();
        assert_eq!(&src[out.source_offset(o)..][..5], "\"cpu\"");
        // Every byte of an action's output maps to the action.
        let a = src.find("{{ must_env").unwrap();
        let o = out.text.find("nginx").unwrap();
        for i in o..o + "nginx:1.27".len() {
            assert_eq!(out.source_offset(i), a);
        }
        // Literal bytes map byte for byte.
        for i in 0..o {
            assert_eq!(out.text.as_bytes()[i], src.as_bytes()[out.source_offset(i)]);
        }
    }

    #[test]
    fn segments_survive_trims_and_branches() {
        let src = "{{ if false }}skipped{{ else }}\n  {{- `é` -}}  \n  tail{{ end }}";
        let out = render(src, &funcs()).unwrap();
        assert_eq!(out.text, "étail");
        let s = out.source_offset(out.text.find("tail").unwrap());
        assert_eq!(&src[s..s + 4], "tail");
        assert_eq!(out.source_offset(0), src.find("{{- `é`").unwrap());
        let sorted = out.segments.windows(2).all(|w| w[0].0 < w[1].0);
        assert!(sorted, "{:?}", out.segments);
    }

    #[test]
    fn error_offsets_are_bytes_after_multibyte_text() {
        let src = "héllo wörld {{ must_emv `X` }}";
        let e = err(src);
        assert_eq!(marked(src, &e), "must_emv");
        assert_eq!(line_col(src, &e), (1, 16));
    }

    #[test]
    fn parsed_template_is_reusable_and_prefixes_work() {
        let mut plugin = Funcs::new();
        plugin.insert(
            "tfstate",
            Arc::new(|a: &[Value]| Ok(Value::Str(format!("arn:{}", a[0])))),
        );
        let mut f = funcs();
        f.extend(plugin.with_prefix("tf_"));
        assert!(f.contains("tf_tfstate") && !f.contains("tfstate"));
        let t = parse("{{ tf_tfstate `aws_iam_role.task.arn` }}", &f).unwrap();
        assert_eq!(t.execute(&f).unwrap().text, "arn:aws_iam_role.task.arn");
        assert_eq!(t.execute(&f).unwrap().text, "arn:aws_iam_role.task.arn");
        assert!(t.execute(&funcs()).is_err());
        assert!(t.source().contains("tf_tfstate"));
    }

    #[test]
    fn user_functions_take_precedence_over_builtins() {
        let mut f = funcs();
        f.insert("len", Arc::new(|_: &[Value]| Ok(Value::Str("mine".into()))));
        assert_eq!(render("{{ len `abc` }}", &f).unwrap().text, "mine");
    }

    /// A tiny deterministic PRNG (xorshift64*).
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
        }
    }

    #[test]
    fn random_inputs_never_panic() {
        const PIECES: [&str; 40] = [
            "{{",
            "}}",
            "{{- ",
            " -}}",
            "/*",
            "*/",
            " ",
            "\n",
            "\"",
            "`",
            "'",
            "\\",
            "$x",
            ":=",
            "=",
            "|",
            "(",
            ")",
            "if ",
            "else ",
            "end",
            "with ",
            "range",
            ".",
            ".F",
            "env ",
            "must_env ",
            "printf ",
            "`%d`",
            "1",
            "-",
            "0x",
            "1e",
            "é",
            "nil",
            "eq ",
            "and ",
            "{",
            "}",
            ",",
        ];
        let f = funcs();
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        let mut rendered = 0;
        for _ in 0..4000 {
            let n = (rng.next() % 24) as usize;
            let mut src = String::new();
            for _ in 0..n {
                let r = rng.next();
                if r.is_multiple_of(4) {
                    src.push(char::from(b' ' + (r >> 8) as u8 % 95));
                } else {
                    src.push_str(PIECES[(r >> 8) as usize % PIECES.len()]);
                }
            }
            match render(&src, &f) {
                Ok(out) => {
                    rendered += 1;
                    for i in 0..out.text.len() {
                        assert!(out.source_offset(i) < src.len().max(1), "{src:?}");
                    }
                }
                Err(e) => {
                    assert!(
                        e.offset + e.len <= src.len().max(1) || e.len == 1,
                        "{src:?} {e:?}"
                    );
                    assert!(e.offset <= src.len(), "{src:?} {e:?}");
                    assert!(!e.message.is_empty());
                }
            }
        }
        assert!(rendered > 100, "only {rendered} inputs rendered");
    }

    #[test]
    #[ignore = "timing: run with --release -- --ignored"]
    fn render_speed() {
        let mut src = String::from("{\n");
        for i in 0..200 {
            src.push_str(&format!(
                "  \"k{i}\": \"{{{{ env `CPU` `256` | json_escape }}}}\", \"pad{i}\": \"{}\",\n",
                "x".repeat(60)
            ));
        }
        src.push_str("  \"end\": 1\n}\n");
        assert!(src.len() > 20_000);
        let f = funcs();
        let n = 200;
        let t0 = std::time::Instant::now();
        for _ in 0..n {
            std::hint::black_box(render(&src, &f).unwrap());
        }
        let per = t0.elapsed() / n;
        eprintln!("{} bytes, 200 actions: {per:?} per render", src.len());
        assert!(per < std::time::Duration::from_millis(1));
    }
}
