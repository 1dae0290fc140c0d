//! Go's `fmt` formatting for the `printf` builtin and for values.
//!
//! Receives the `printf` arguments (format string first) as [`Value`]s; hands on the
//! formatted text, or a message naming the argument at fault (a [`BErr`]) that the executor
//! locates. Also Go's `%v` for floats and `strconv.Quote`, used by [`Value`]'s display.

use std::fmt::Write as _;

use super::{BErr, Value};

/// The largest printf width or precision accepted.
const MAX_WIDTH: usize = 1024;

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

pub(super) fn sprintf(vals: &[Value]) -> Result<String, BErr> {
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
pub(crate) fn go_quote(s: &str) -> String {
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
