//! Go's builtin template functions (`and`, `or`, `not`, `len`, comparisons, `print`,
//! `printf`, `println`): their names, for the parser, and their calls, for the executor.
//!
//! Receives evaluated argument values; hands on a value or a [`BErr`] naming the argument at
//! fault.

use std::fmt::Write as _;

use super::printf::sprintf;
use super::{BErr, Value};

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

pub(super) fn call_builtin(b: Builtin, name: &str, vals: &[Value]) -> Result<Value, BErr> {
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
