//! The standard template functions, with ecspresso's semantics:
//!
//! - `env "A" ["B" ...] "default"`: the first named variable that is set and non-empty, else
//!   the last argument itself (so a single argument is both the name and the default).
//! - `must_env "A"`: the variable's value; an error when it is unset (a set, empty value is
//!   accepted).
//! - `json_escape`: the argument escaped for a JSON string, without the surrounding quotes.
//!
//! Plugin functions (`ssm`, `tfstate`, ...) are added to the same registry under their
//! `func_prefix`.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::template::{FuncError, Funcs, Value};

/// The text form of a value, as Go's `fmt.Sprint` would print it.
pub fn to_text(v: &Value) -> String {
    match v {
        Value::Nil => "<no value>".to_string(),
        Value::Str(s) => s.clone(),
        other => other.to_string(),
    }
}

fn string_args(name: &str, args: &[Value]) -> Result<Vec<String>, FuncError> {
    args.iter()
        .map(|a| match a {
            Value::Str(s) => Ok(s.clone()),
            other => Err(FuncError::input(format!(
                "{name} takes strings, got {}",
                match other {
                    Value::Nil => "nil",
                    Value::Bool(_) => "a bool",
                    Value::Int(_) | Value::Float(_) => "a number",
                    Value::Str(_) => "a string",
                }
            ))),
        })
        .collect()
}

/// `env`, `must_env` and `json_escape` over `vars`.
pub fn standard(vars: Arc<BTreeMap<String, String>>) -> Funcs {
    let mut funcs = Funcs::new();
    let v = vars.clone();
    funcs.insert(
        "env",
        Arc::new(move |args: &[Value]| {
            let names = string_args("env", args)?;
            if names.is_empty() {
                return Err(FuncError::input(
                    "env needs a variable name, e.g. {{ env `NAME` `default` }}",
                ));
            }
            let mut last = String::new();
            for n in &names {
                if let Some(val) = v.get(n).filter(|s| !s.is_empty()) {
                    return Ok(Value::Str(val.clone()));
                }
                last = n.clone();
            }
            Ok(Value::Str(last))
        }),
    );
    let v = vars;
    funcs.insert(
        "must_env",
        Arc::new(move |args: &[Value]| {
            let names = string_args("must_env", args)?;
            let [name] = names.as_slice() else {
                return Err(FuncError::input(format!(
                    "must_env takes one variable name, got {}",
                    names.len()
                )));
            };
            v.get(name)
                .map(|s| Value::Str(s.clone()))
                .ok_or_else(|| {
                    FuncError::input(format!("environment variable {name} is not set")).hint(
                        format!("set {name} in the environment or in an --envfile, or use {{{{ env `{name}` `default` }}}}"),
                    )
                })
        }),
    );
    funcs.insert(
        "json_escape",
        Arc::new(|args: &[Value]| {
            let [arg] = args else {
                return Err(FuncError::input(format!(
                    "json_escape takes one argument, got {}",
                    args.len()
                )));
            };
            let quoted = serde_json::to_string(&to_text(arg))
                .map_err(|e| FuncError::input(format!("json_escape: {e}")))?;
            Ok(Value::Str(quoted[1..quoted.len() - 1].to_string()))
        }),
    );
    funcs
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(f: &Funcs, name: &str, args: &[&str]) -> Result<Value, FuncError> {
        let args: Vec<Value> = args.iter().map(|s| Value::Str(s.to_string())).collect();
        (f.get(name).unwrap())(&args)
    }

    #[test]
    fn ecspresso_semantics() {
        let vars: BTreeMap<String, String> = [("SET", "v"), ("EMPTY", "")]
            .into_iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect();
        let f = standard(Arc::new(vars));
        let s = |v: Value| to_text(&v);
        assert_eq!(s(call(&f, "env", &["SET", "d"]).unwrap()), "v");
        assert_eq!(s(call(&f, "env", &["EMPTY", "d"]).unwrap()), "d");
        assert_eq!(s(call(&f, "env", &["NOPE", "SET", "d"]).unwrap()), "v");
        assert_eq!(s(call(&f, "env", &["NOPE"]).unwrap()), "NOPE");
        assert_eq!(s(call(&f, "must_env", &["EMPTY"]).unwrap()), "");
        let e = call(&f, "must_env", &["NOPE"]).unwrap_err();
        assert_eq!(e.message, "environment variable NOPE is not set");
        assert!(
            e.hint
                .as_deref()
                .unwrap()
                .starts_with("set NOPE in the environment"),
            "{e}"
        );
        assert_eq!(e.kind, crate::error::ErrorKind::BadInput);
        assert_eq!(s(Value::Float(1e6)), "1e+06");
        assert_eq!(
            s(call(&f, "json_escape", &["a\"b\n"]).unwrap()),
            "a\\\"b\\n"
        );
    }
}
