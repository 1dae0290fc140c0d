//! The executor: a parsed tree -> rendered [`Output`].
//!
//! Receives the tree from the parser, the source text and the registered functions; runs
//! actions, conditions, variables, the Go builtins and the registered functions, and hands on
//! the rendered text with its output->source segments. A failing call becomes a
//! [`TemplateError`] at the call in the source.

use super::builtins::{Builtin, call_builtin};
use super::parser::{Arg, ArgKind, Cmd, Cond, Node, Pipe};
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
