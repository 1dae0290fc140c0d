//! Redaction by place: the two sides of a diff with every secret hidden, the live side too.
//!
//! Receives the run's [`Secrets`] and the two documents of a diff (live before, rendered
//! after, either may be absent as `null`). A *place* is the path of a scalar that holds a
//! secret value (or a line of a multi-line one) on either side; items of lists whose objects
//! carry a unique `name` (or `key`) are addressed by it, as [`super::changes`] pairs them, so
//! `DB_PASSWORD`'s value is the same place on both sides whatever else the list holds.
//!
//! At each place the rendered value shows its secrets as `***` and the live value is hidden
//! too — also when it differs (a rotated secret's old value is usually still valid, and a
//! removed one was a secret all the same): it keeps only what it shares with the rendered
//! value around the secret (`postgres://app:***@db`), else it is `***` whole. Equal values stay
//! equal and different values stay different (the rendered one then reads `*** (changed)`),
//! so the diff still says what changes without saying what it was. Then every string of both
//! sides goes through [`Secrets::mask_value`], the text net.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::render::secrets::{MASK, Secrets};

/// One step of a place.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Step {
    Key(String),
    Index(usize),
    /// The item of a list whose `key` member is `id`.
    Named {
        key: &'static str,
        id: String,
    },
}

/// Hides every secret of `before` and `after` in place (see the module documentation).
pub(crate) fn redact(secrets: &Secrets, before: &mut Value, after: &mut Value) {
    if secrets.is_empty() {
        return;
    }
    let mut places = BTreeSet::new();
    collect(secrets, after, &mut Vec::new(), &mut places);
    collect(secrets, before, &mut Vec::new(), &mut places);
    for place in &places {
        let a = get(after, place).cloned();
        let b = get(before, place).cloned();
        let (na, nb) = hide(secrets, a.as_ref(), b.as_ref());
        if let (Some(slot), Some(v)) = (get_mut(after, place), na) {
            *slot = v;
        }
        if let (Some(slot), Some(v)) = (get_mut(before, place), nb) {
            *slot = v;
        }
    }
    secrets.mask_value(after);
    secrets.mask_value(before);
}

/// [`redact`] over the optional sides a plan keeps.
pub(crate) fn redact_options(
    secrets: &Secrets,
    before: &mut Option<Value>,
    after: &mut Option<Value>,
) {
    let mut b = before.take().unwrap_or(Value::Null);
    let mut a = after.take().unwrap_or(Value::Null);
    redact(secrets, &mut b, &mut a);
    *before = (!b.is_null()).then_some(b);
    *after = (!a.is_null()).then_some(a);
}

/// A scalar as text (strings as they are, numbers and booleans as JSON writes them).
fn scalar_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(_) | Value::Bool(_) => Some(v.to_string()),
        _ => None,
    }
}

/// The member that names the items of `items`: `name` or `key`, when every item has a
/// distinct string value for it.
fn identity(items: &[Value]) -> Option<&'static str> {
    ["name", "key"].into_iter().find(|key| {
        let ids: Option<Vec<&str>> = items
            .iter()
            .map(|i| i.get(*key).and_then(Value::as_str))
            .collect();
        ids.is_some_and(|ids| {
            let unique: BTreeSet<&str> = ids.iter().copied().collect();
            !ids.is_empty() && unique.len() == ids.len()
        })
    })
}

fn collect(secrets: &Secrets, v: &Value, path: &mut Vec<Step>, out: &mut BTreeSet<Vec<Step>>) {
    match v {
        Value::Object(m) => {
            for (k, c) in m {
                path.push(Step::Key(k.clone()));
                collect(secrets, c, path, out);
                path.pop();
            }
        }
        Value::Array(items) => {
            let key = identity(items);
            for (i, c) in items.iter().enumerate() {
                let id = key.and_then(|k| c.get(k).and_then(Value::as_str));
                path.push(match (key, id) {
                    (Some(key), Some(id)) => Step::Named {
                        key,
                        id: id.to_string(),
                    },
                    _ => Step::Index(i),
                });
                collect(secrets, c, path, out);
                path.pop();
            }
        }
        _ => {
            if scalar_text(v).is_some_and(|t| secrets.found_in(&t)) {
                out.insert(path.clone());
            }
        }
    }
}

fn index_of(items: &[Value], step: &Step) -> Option<usize> {
    match step {
        Step::Index(i) => (*i < items.len()).then_some(*i),
        Step::Named { key, id } => items
            .iter()
            .position(|c| c.get(*key).and_then(Value::as_str) == Some(id.as_str())),
        Step::Key(_) => None,
    }
}

fn get<'a>(v: &'a Value, place: &[Step]) -> Option<&'a Value> {
    let mut cur = v;
    for step in place {
        cur = match (cur, step) {
            (Value::Object(m), Step::Key(k)) => m.get(k)?,
            (Value::Array(items), s) => &items[index_of(items, s)?],
            _ => return None,
        };
    }
    Some(cur)
}

fn get_mut<'a>(v: &'a mut Value, place: &[Step]) -> Option<&'a mut Value> {
    let mut cur = v;
    for step in place {
        cur = match (cur, step) {
            (Value::Object(m), Step::Key(k)) => m.get_mut(k)?,
            (Value::Array(items), s) => {
                let i = index_of(items, s)?;
                &mut items[i]
            }
            _ => return None,
        };
    }
    Some(cur)
}

/// The shown values of one place: `after` (rendered) and `before` (live).
fn hide(
    secrets: &Secrets,
    after: Option<&Value>,
    before: Option<&Value>,
) -> (Option<Value>, Option<Value>) {
    let after_text = after.and_then(scalar_text);
    let after_secret = after_text.as_deref().is_some_and(|t| secrets.found_in(t));
    let shown_after = after.map(|a| match (&after_text, after_secret) {
        (Some(t), true) => Value::String(secrets.mask(t)),
        (None, _) => Value::String(MASK.into()),
        (Some(_), false) => a.clone(),
    });
    let shown_before = before.map(|b| {
        if Some(b) == after {
            return shown_after.clone().unwrap_or(Value::Null);
        }
        match (scalar_text(b), &after_text) {
            (Some(bt), Some(at)) if after_secret => Value::String(same_shape(secrets, &bt, at)),
            (Some(bt), _) if secrets.found_in(&bt) => Value::String(secrets.mask(&bt)),
            (Some(_), _) if after_secret => Value::String(MASK.into()),
            (Some(_), _) => b.clone(),
            (None, _) => Value::String(MASK.into()),
        }
    });
    match (shown_after, shown_before) {
        (Some(Value::String(mut a)), Some(b)) if Some(&Value::String(a.clone())) == Some(&b) => {
            if after != before {
                a.push_str(" (changed)");
            }
            (Some(Value::String(a)), Some(b))
        }
        other => other,
    }
}

/// The live text `before` hidden like the rendered `after` around its secrets: when `before`
/// starts and ends with what `after` has before its first and after its last secret (and holds
/// the literal text between them in order), those parts with `***` between; else `***`.
fn same_shape(secrets: &Secrets, before: &str, after: &str) -> String {
    let masked = secrets.mask(after);
    let parts: Vec<&str> = masked.split(MASK).collect();
    let (Some(first), Some(last)) = (parts.first(), parts.last()) else {
        return MASK.into();
    };
    if parts.len() < 2 || before.len() < first.len() + last.len() {
        return MASK.into();
    }
    if !before.starts_with(first) || !before.ends_with(last) {
        return MASK.into();
    }
    let mut rest = &before[first.len()..before.len() - last.len()];
    for mid in &parts[1..parts.len() - 1] {
        match rest.find(mid) {
            Some(i) => rest = &rest[i + mid.len()..],
            None => return MASK.into(),
        }
    }
    secrets.mask(&parts.join(MASK))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn secrets(values: &[&str]) -> Secrets {
        let s = Secrets::default();
        for v in values {
            s.add(*v);
        }
        s
    }

    fn td(env: Value) -> Value {
        json!({"family": "web", "containerDefinitions": [{"name": "web", "image": "web:1", "environment": env}]})
    }

    #[test]
    fn a_rotated_secret_hides_its_old_value_on_the_live_side() {
        let s = secrets(&["n3wSecret!"]);
        let mut live =
            td(json!([{"name": "A", "value": "1"}, {"name": "PW", "value": "hunter2secret"}]));
        let mut local =
            td(json!([{"name": "PW", "value": "n3wSecret!"}, {"name": "B", "value": "2"}]));
        redact(&s, &mut live, &mut local);
        let text = format!("{live}{local}");
        assert!(
            !text.contains("hunter2secret") && !text.contains("n3wSecret"),
            "{text}"
        );
        let env = |v: &Value, i: usize| v["containerDefinitions"][0]["environment"][i].clone();
        assert_eq!(env(&live, 1), json!({"name": "PW", "value": "***"}));
        // Still a change: the rendered side says so.
        assert_eq!(
            env(&local, 0),
            json!({"name": "PW", "value": "*** (changed)"})
        );
        // Other values are untouched.
        assert_eq!(env(&live, 0), json!({"name": "A", "value": "1"}));
        assert_eq!(env(&local, 1), json!({"name": "B", "value": "2"}));
    }

    #[test]
    fn an_unchanged_secret_shows_the_same_on_both_sides() {
        let s = secrets(&["same-secret"]);
        let mut live = td(json!([{"name": "PW", "value": "same-secret"}]));
        let mut local = live.clone();
        redact(&s, &mut live, &mut local);
        assert_eq!(live, local);
        assert_eq!(
            local["containerDefinitions"][0]["environment"][0]["value"],
            "***"
        );
    }

    #[test]
    fn the_shared_text_around_a_secret_stays_visible() {
        let s = secrets(&["newpw"]);
        let mut live = td(json!([{"name": "URL", "value": "postgres://app:oldpw@db:5432/x"}]));
        let mut local = td(json!([{"name": "URL", "value": "postgres://app:newpw@db:5432/x"}]));
        redact(&s, &mut live, &mut local);
        let v = |d: &Value| d["containerDefinitions"][0]["environment"][0]["value"].clone();
        assert_eq!(v(&live), "postgres://app:***@db:5432/x");
        assert_eq!(v(&local), "postgres://app:***@db:5432/x (changed)");
        // A live value of another shape is hidden whole.
        let mut live = td(json!([{"name": "URL", "value": "mysql://root:oldpw@db"}]));
        let mut local = td(json!([{"name": "URL", "value": "postgres://app:newpw@db:5432/x"}]));
        redact(&s, &mut live, &mut local);
        assert_eq!(v(&live), "***");
    }

    #[test]
    fn a_secret_removed_from_the_file_is_hidden_on_the_live_side() {
        let s = secrets(&["still-valid-pw"]);
        let mut live = td(json!([{"name": "PW", "value": "still-valid-pw"}]));
        let mut local = td(json!([]));
        redact(&s, &mut live, &mut local);
        assert_eq!(
            live["containerDefinitions"][0]["environment"][0]["value"],
            "***"
        );
        // A whole live-only document is masked too.
        let mut live = json!({"x": "pre still-valid-pw post"});
        let mut none = Value::Null;
        redact(&s, &mut live, &mut none);
        assert_eq!(live, json!({"x": "pre *** post"}));
    }
}
