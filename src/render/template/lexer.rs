//! The lexer: template source text -> tokens.
//!
//! Receives the source text; hands on [`Token`]s (kind plus byte span) one at a time to the
//! parser, switching between text and action mode at `{{` / `}}`, applying trim markers and
//! decoding string literals. Errors are [`TemplateError`]s located in the source.

use super::{Res, TemplateError};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kw {
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
    pub(super) fn from_name(s: &str) -> Option<Kw> {
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

    pub(super) fn name(self) -> &'static str {
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
pub(super) enum Tok {
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
pub(super) struct Token {
    pub(super) tok: Tok,
    pub(super) start: usize,
    pub(super) end: usize,
    /// Whitespace came right before the token.
    pub(super) space: bool,
}

impl Token {
    pub(super) fn text<'s>(&self, src: &'s str) -> &'s str {
        src.get(self.start..self.end).unwrap_or("")
    }
}

fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

fn is_ident_char(c: char) -> bool {
    c == '_' || c.is_alphanumeric()
}

pub(super) struct Lexer<'a> {
    pub(super) src: &'a str,
    pub(super) pos: usize,
    pub(super) in_action: bool,
    /// The previous action ended with ` -}}`: skip leading whitespace of the next text.
    pub(super) trim_next: bool,
    pub(super) action_start: usize,
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

    pub(super) fn next(&mut self) -> Res<Token> {
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
    pub(super) fn unclosed(&self) -> Option<TemplateError> {
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
            c if c == '_' || c.is_alphabetic() => Ok(self.lex_word(start, space)),
            c => Err(self
                .unclosed()
                .unwrap_or_else(|| self.unexpected_char(start, c))),
        }
    }

    /// A word: true, false, nil, a keyword or a function name.
    fn lex_word(&mut self, start: usize, space: bool) -> Token {
        let end = self.ident_end(start);
        self.pos = end;
        let word = &self.src[start..end];
        let tok = match word {
            "true" => Tok::Bool(true),
            "false" => Tok::Bool(false),
            "nil" => Tok::Nil,
            w => Kw::from_name(w).map_or_else(|| Tok::Ident(w.to_string()), Tok::Kw),
        };
        self.tok(tok, start, end, space)
    }

    /// A character no token starts with, with a hint for the likely mistakes.
    fn unexpected_char(&self, start: usize, c: char) -> TemplateError {
        let e = TemplateError::new(
            format!("unexpected character {c:?} in action"),
            start,
            start + c.len_utf8(),
        );
        if c == '-' && self.rest_at(start).starts_with("-}}") {
            e.hint("a trim marker needs a space before it: ` -}}`")
        } else if c == ':' {
            e.hint("declare a variable with `$name := value`")
        } else {
            e.hint("an action holds function calls, values, $variables, | and ( )")
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
        let (i, float, prefixed) = self.scan_number(start);
        let nb = self.byte(i);
        if nb.is_ascii_alphanumeric() || nb == b'_' || nb == b'.' {
            return Err(self.bad_number(start, i));
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
            self.int_value(&text, start, i, prefixed)?
        };
        self.pos = i;
        Ok(self.tok(tok, start, i, space))
    }

    /// Where the number starting at `start` ends, whether it is a float, and whether it has
    /// a radix prefix (0x, 0o, 0b).
    fn scan_number(&self, start: usize) -> (usize, bool, bool) {
        let mut i = start;
        if matches!(self.byte(i), b'+' | b'-') {
            i += 1;
        }
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
        (i, float, prefixed)
    }

    /// The integer `text` (the number at `src[start..i]` without its underscores) stands for.
    fn int_value(&self, text: &str, start: usize, i: usize, prefixed: bool) -> Res<Tok> {
        let body = if matches!(self.byte(start), b'+' | b'-') {
            start + 1
        } else {
            start
        };
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
            return Err(self.bad_number(start, i));
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
            return Err(self.bad_number(start, i));
        };
        let n = if neg { -n } else { n };
        match i64::try_from(n) {
            Ok(n) => Ok(Tok::Int(n)),
            Err(_) => Err(TemplateError::new(
                format!(
                    "number {} is out of range for an integer",
                    &self.src[start..i]
                ),
                start,
                i,
            )),
        }
    }

    /// A "bad number syntax" error for the number at `start`, through the end of the word
    /// that holds it (from `end` on).
    fn bad_number(&self, start: usize, end: usize) -> TemplateError {
        let mut end = end;
        while self.byte(end).is_ascii_alphanumeric() || matches!(self.byte(end), b'_' | b'.') {
            end += 1;
        }
        TemplateError::new(
            format!(
                "bad number syntax: {:?}",
                self.src.get(start..end).unwrap_or("")
            ),
            start,
            end,
        )
        .hint("numbers look like 42, -7, 0x1F, 1.5 or 1e3")
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
