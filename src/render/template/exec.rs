//! The executor: a parsed tree -> rendered [`Output`].
//!
//! Receives the tree from the parser, the source text and the registered functions; runs
//! actions, conditions, variables, the Go builtins and the registered functions, and hands on
//! the rendered text with its output->source segments. A failing call becomes a
//! [`TemplateError`] at the call in the source.

use std::fmt::Write as _;

use super::parser::{Arg, ArgKind, Cmd, Cond, Node, Pipe};
use super::printf::sprintf;
use super::{Funcs, Output, Res, Scope, TemplateError, Value};

/// Runs `nodes` (parsed from `src`) with `funcs`.
pub(super) fn execute(src: &str, nodes: &[Node], funcs: &Funcs) -> Res<Output> {
    let mut ex = Exec {
        src,
        funcs,
        vars: Scope::new(),
        dots: Vec::new(),
        out: Output {
            text: String::with_capacity(src.len() + src.len() / 4),
            segments: Vec::new(),
        },
        failed: Vec::new(),
    };
    let result = ex.exec_list(nodes);
    let mut failed = ex.failed.into_iter().chain(result.err());
    match failed.next() {
        None => Ok(ex.out),
        Some(mut first) => {
            first.also.extend(failed);
            Err(first)
        }
    }
}

// ---------------------------------------------------------------------------------------
// Builtins

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Builtin {
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

pub(super) const BUILTINS: [(&str, Builtin); 13] = [
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
    pub(super) fn from_name(name: &str) -> Option<Builtin> {
        BUILTINS.iter().find(|(n, _)| *n == name).map(|(_, b)| *b)
    }
}

/// A builtin's error: the message and which argument (by index) it is about.
pub(super) type BErr = (String, Option<usize>);

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
    vars: Scope<Value>,
    dots: Vec<Value>,
    out: Output,
    /// Errors of printing actions the run went past (see `Template::execute`).
    failed: Vec<TemplateError>,
}

impl<'t> Exec<'t> {
    fn exec_list(&mut self, nodes: &'t [Node]) -> Res<()> {
        for n in nodes {
            match n {
                Node::Text { start, end } => {
                    let text = self.src.get(*start..*end).unwrap_or("");
                    self.out.push(text, *start, true);
                }
                Node::Action { pipe, start, end } => match self.eval_pipe(pipe) {
                    Ok(v) if pipe.decl.is_none() => self.emit(v, *start, *end)?,
                    Ok(_) => {}
                    // Nothing depends on a printing action's value: note it, print nothing, go on.
                    Err(e) if e.function && pipe.decl.is_none() => self.failed.push(e),
                    Err(e) => return Err(e),
                },
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
                self.vars.push(&d.name, v.clone());
            } else if let Some(slot) = self.vars.get_mut(&d.name) {
                *slot = v.clone();
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
            ArgKind::Var(name) => Ok(self.vars.get(name).cloned().unwrap_or(Value::Nil)),
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
            return f(&vals).map_err(|fe| {
                let mut e = TemplateError::new(name_message(name, fe.message), start, end);
                e.hint = fe.hint;
                e.function = fe.kind == crate::error::ErrorKind::BadInput;
                e.kind = fe.kind;
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
