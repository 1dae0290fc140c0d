//! The syntax tree and the parser: tokens -> [`Node`]s.
//!
//! Receives the source text and the registered functions; pulls tokens from the [`Lexer`],
//! checks names up front (unknown functions with a "did you mean", undefined variables,
//! unsupported keywords and data access) and hands on the tree the executor runs.

use std::collections::VecDeque;

use super::builtins::{BUILTINS, Builtin};
use super::lexer::{Kw, Lexer, Tok, Token};
use super::{Funcs, Res, Scope, TemplateError, Value};
use crate::error::did_you_mean;

/// How deeply blocks and parentheses may nest.
const MAX_DEPTH: usize = 100;

/// Parses `src` into its nodes.
pub(super) fn parse(src: &str, funcs: &Funcs) -> Res<Vec<Node>> {
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
        vars: Scope::new(),
        depth: 0,
        dot_depth: 0,
        lex_failed: false,
    };
    p.parse_template().map_err(|e| {
        // A parse error inside an action that never closes is best reported as that.
        if !p.lex_failed && p.lx.in_action {
            p.lx.unclosed().unwrap_or(e)
        } else {
            e
        }
    })
}

// ---------------------------------------------------------------------------------------
// Syntax tree

#[derive(Debug, Clone)]
pub(super) enum Node {
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
pub(super) struct Cond {
    pub(super) branches: Vec<Branch>,
    pub(super) otherwise: Vec<Node>,
}

#[derive(Debug, Clone)]
pub(super) struct Branch {
    pub(super) with: bool,
    pub(super) pipe: Pipe,
    pub(super) body: Vec<Node>,
}

#[derive(Debug, Clone)]
pub(super) struct Decl {
    pub(super) name: String,
    pub(super) declare: bool,
}

#[derive(Debug, Clone)]
pub(super) struct Pipe {
    pub(super) decl: Option<Decl>,
    pub(super) cmds: Vec<Cmd>,
}

#[derive(Debug, Clone)]
pub(super) struct Cmd {
    pub(super) args: Vec<Arg>,
    pub(super) start: usize,
    pub(super) end: usize,
}

#[derive(Debug, Clone)]
pub(super) struct Arg {
    pub(super) kind: ArgKind,
    pub(super) start: usize,
    pub(super) end: usize,
}

#[derive(Debug, Clone)]
pub(super) enum ArgKind {
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
    vars: Scope<()>,
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
        let decl = self.parse_decl(decl_ok)?;
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
        self.check_commands(&cmds)?;
        if let Some(d) = &decl
            && d.declare
        {
            self.vars.push(&d.name, ());
        }
        Ok((Pipe { decl, cmds }, end))
    }

    /// A `$x :=` or `$x =` at the start of a pipeline, consumed when there is one.
    fn parse_decl(&mut self, decl_ok: bool) -> Res<Option<Decl>> {
        let first = self.peek()?.clone();
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
                if !declare && self.vars.get(name).is_none() {
                    return Err(undefined_var(name, &first));
                }
                self.next()?;
                self.next()?;
                return Ok(Some(Decl {
                    name: name.clone(),
                    declare,
                }));
            }
        }
        Ok(None)
    }

    /// Only functions take arguments or piped values.
    fn check_commands(&self, cmds: &[Cmd]) -> Res<()> {
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
        Ok(())
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
            if t.tok == Tok::LParen {
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
            let kind = self.operand(&t)?;
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

    /// What one token (not `(`) of a command stands for: a function, a literal, a variable
    /// or `.`; anything else here is an error.
    fn operand(&self, t: &Token) -> Res<ArgKind> {
        Ok(match t.tok.clone() {
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
                if self.vars.get(&name).is_none() {
                    return Err(undefined_var(&name, t));
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
                return Err(unsupported(kw, t));
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
