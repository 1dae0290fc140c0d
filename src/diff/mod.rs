//! What differs between a rendered definition and what runs.
//!
//! Receives JSON values (local from `model`, live from `aws::json`). [`normalize`] turns both
//! into canonical forms where ECS's own defaults, list orders and empty values no longer
//! count; [`changes`] lists the structural differences as JSON pointers with the values
//! before and after. Renderers (unified diff, Markdown, PR comment) build on the `Change`s.

pub(crate) mod normalize;
pub(crate) mod redact;
#[cfg(test)]
mod tests;

use serde_json::{Map, Value};

pub use normalize::{service_for_compare, task_definition_for_compare};

use crate::render::spans::escape_token;

/// One difference: the value at `path` (a JSON pointer) was `before` and becomes `after`;
/// `None` means absent on that side.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    pub path: String,
    pub before: Option<Value>,
    pub after: Option<Value>,
}

/// Whether the local task definition differs from the live one once both are normalized,
/// i.e. whether a deploy must register a new revision.
pub fn task_definition_needs_new_revision(local: &Value, live: &Value) -> bool {
    !changes(
        &task_definition_for_compare(live),
        &task_definition_for_compare(local),
    )
    .is_empty()
}

/// The differences from `before` to `after`, in a stable order: object members in key
/// order (before's keys, then keys only `after` has), list items by position. Lists of
/// objects that all carry a unique `name` (or `key`) are paired by it, so adding one
/// environment variable is one change, not a shift of every later item; their paths use
/// the position on the side that has the item (`after` when both do).
pub fn changes(before: &Value, after: &Value) -> Vec<Change> {
    let mut out = Vec::new();
    walk("", before, after, &mut out);
    out
}

fn walk(path: &str, before: &Value, after: &Value, out: &mut Vec<Change>) {
    match (before, after) {
        (Value::Object(a), Value::Object(b)) => objects(path, a, b, out),
        (Value::Array(a), Value::Array(b)) => match identity(a, b) {
            Some(key) => keyed_lists(path, a, b, key, out),
            None => lists(path, a, b, out),
        },
        _ if same(before, after) => {}
        _ => out.push(Change {
            path: path.to_string(),
            before: Some(before.clone()),
            after: Some(after.clone()),
        }),
    }
}

/// Numbers compare by value (200 and 200.0 are the same).
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x == y || x.as_f64() == y.as_f64(),
        _ => a == b,
    }
}

fn child(path: &str, token: &str) -> String {
    format!("{path}/{}", escape_token(token))
}

fn objects(path: &str, a: &Map<String, Value>, b: &Map<String, Value>, out: &mut Vec<Change>) {
    for (k, va) in a {
        let p = child(path, k);
        match b.get(k) {
            Some(vb) => walk(&p, va, vb, out),
            None => out.push(Change {
                path: p,
                before: Some(va.clone()),
                after: None,
            }),
        }
    }
    for (k, vb) in b {
        if !a.contains_key(k) {
            out.push(Change {
                path: child(path, k),
                before: None,
                after: Some(vb.clone()),
            });
        }
    }
}

fn lists(path: &str, a: &[Value], b: &[Value], out: &mut Vec<Change>) {
    for i in 0..a.len().max(b.len()) {
        let p = format!("{path}/{i}");
        match (a.get(i), b.get(i)) {
            (Some(x), Some(y)) => walk(&p, x, y, out),
            (Some(x), None) => out.push(Change {
                path: p,
                before: Some(x.clone()),
                after: None,
            }),
            (None, Some(y)) => out.push(Change {
                path: p,
                before: None,
                after: Some(y.clone()),
            }),
            (None, None) => {}
        }
    }
}

/// The member that identifies the items of both lists, when every item has a distinct
/// string value for it.
fn identity(a: &[Value], b: &[Value]) -> Option<&'static str> {
    ["name", "key"].into_iter().find(|key| {
        let ids = |items: &[Value]| -> Option<Vec<String>> {
            let ids: Option<Vec<String>> = items
                .iter()
                .map(|i| i.get(*key).and_then(Value::as_str).map(str::to_string))
                .collect();
            let ids = ids?;
            let mut sorted = ids.clone();
            sorted.sort();
            sorted.dedup();
            (sorted.len() == ids.len()).then_some(ids)
        };
        !a.is_empty() && !b.is_empty() && ids(a).is_some() && ids(b).is_some()
    })
}

fn keyed_lists(path: &str, a: &[Value], b: &[Value], key: &str, out: &mut Vec<Change>) {
    let id = |v: &Value| v.get(key).and_then(Value::as_str).map(str::to_string);
    for (j, y) in b.iter().enumerate() {
        let p = format!("{path}/{j}");
        match a.iter().find(|x| id(x) == id(y)) {
            Some(x) => walk(&p, x, y, out),
            None => out.push(Change {
                path: p,
                before: None,
                after: Some(y.clone()),
            }),
        }
    }
    for (i, x) in a.iter().enumerate() {
        if !b.iter().any(|y| id(x) == id(y)) {
            out.push(Change {
                path: format!("{path}/{i}"),
                before: Some(x.clone()),
                after: None,
            });
        }
    }
}
