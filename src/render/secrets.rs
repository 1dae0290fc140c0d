//! The values that came from secret sources, and the one place that hides them.
//!
//! Rendering registers every value a secret source answered (an SSM SecureString, a
//! Terraform output or attribute marked sensitive, ...) with the run's [`Secrets`]. Outputs
//! hide them in two layers:
//!
//! - in structured values, before anything is serialised: [`Secrets::mask_value`] masks every
//!   string (and key) of a JSON value, and `diff::redact` hides the values at the places
//!   where a rendered document holds a secret on both sides of a diff;
//! - in text, as a second net: [`Secrets::mask`] replaces every form a secret can take in
//!   printed text — as it is, JSON-escaped, Debug-escaped, Go-quoted, as a one-line
//!   [`crate::untrusted`] rendering, JSON-escaped once more, and each line of a multi-line
//!   secret — with `***`.
//!
//! Inside GitHub Actions, [`Secrets::unannounced`] hands out each form once so that the
//! printer can tell the runner to mask it (`::add-mask::`) before anything else is written.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, MutexGuard};

use serde_json::{Map, Value};

use crate::untrusted::one_line;

/// What a hidden value is replaced with.
pub(crate) const MASK: &str = "***";

/// Lines of a multi-line secret shorter than this are not masked on their own (a `}` or an
/// empty line of a JSON secret would otherwise mask every brace of the output).
const MIN_LINE_CHARS: usize = 4;

/// Values that came from secret sources. Cheap to clone; every clone shares the same set.
/// Its `Debug` form shows how many values it holds, never the values.
#[derive(Clone, Default)]
pub struct Secrets(Arc<Mutex<Inner>>);

#[derive(Default)]
struct Inner {
    values: BTreeSet<String>,
    /// Every text form of every value, longest first (rebuilt when a value is added).
    forms: Vec<String>,
    /// Forms already announced to the Actions runner.
    announced: BTreeSet<String>,
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Secrets({} values)", self.lock().values.len())
    }
}

impl PartialEq for Secrets {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0) || self.values() == other.values()
    }
}

impl Secrets {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers a secret value (empty values are ignored).
    pub fn add(&self, value: impl Into<String>) {
        let v = value.into();
        if v.is_empty() {
            return;
        }
        let mut inner = self.lock();
        if inner.values.insert(v) {
            let mut forms: BTreeSet<String> = BTreeSet::new();
            for v in &inner.values {
                forms.extend(forms_of(v));
            }
            let mut forms: Vec<String> = forms.into_iter().collect();
            forms.sort_by_key(|f| std::cmp::Reverse(f.len()));
            inner.forms = forms;
        }
    }

    /// The secret values, sorted.
    pub fn values(&self) -> Vec<String> {
        self.lock().values.iter().cloned().collect()
    }

    pub fn is_empty(&self) -> bool {
        self.lock().values.is_empty()
    }

    /// Replaces every form of every secret in `text` with `***`.
    pub fn mask(&self, text: &str) -> String {
        let inner = self.lock();
        let mut out: Option<String> = None;
        for f in &inner.forms {
            let cur = out.as_deref().unwrap_or(text);
            if cur.contains(f.as_str()) {
                out = Some(cur.replace(f.as_str(), MASK));
            }
        }
        out.unwrap_or_else(|| text.to_string())
    }

    /// Whether `text` holds a secret value, or a line of a multi-line one, as it is.
    pub fn found_in(&self, text: &str) -> bool {
        let inner = self.lock();
        inner
            .values
            .iter()
            .any(|v| text.contains(v.as_str()) || secret_lines(v).any(|l| text.contains(l)))
    }

    /// Masks every string and every key of `value`, in place.
    pub fn mask_value(&self, value: &mut Value) {
        if self.is_empty() {
            return;
        }
        match value {
            Value::String(s) => {
                let masked = self.mask(s);
                if masked != *s {
                    *s = masked;
                }
            }
            Value::Array(items) => items.iter_mut().for_each(|v| self.mask_value(v)),
            Value::Object(map) => {
                let old = std::mem::take(map);
                let mut new = Map::new();
                for (k, mut v) in old {
                    self.mask_value(&mut v);
                    new.insert(self.mask(&k), v);
                }
                *map = new;
            }
            _ => {}
        }
    }

    /// The forms not yet handed out by an earlier call, marked as handed out: what the
    /// Actions runner should be told to mask (`::add-mask::`), each once per run.
    pub fn unannounced(&self) -> Vec<String> {
        let mut inner = self.lock();
        let fresh: Vec<String> = inner
            .forms
            .iter()
            .filter(|f| !inner.announced.contains(f.as_str()))
            .cloned()
            .collect();
        inner.announced.extend(fresh.iter().cloned());
        fresh
    }
}

/// The lines of a multi-line secret worth masking on their own (trimmed, long enough).
fn secret_lines(v: &str) -> impl Iterator<Item = &str> {
    let multi = v.contains(['\n', '\r']);
    v.split(['\n', '\r'])
        .map(str::trim)
        .filter(move |l| multi && l.chars().count() >= MIN_LINE_CHARS)
}

/// The text between the quotes of a quoted form.
fn inner_of(quoted: &str) -> String {
    quoted
        .strip_prefix('"')
        .and_then(|s| s.strip_suffix('"'))
        .unwrap_or(quoted)
        .to_string()
}

fn json_escaped(s: &str) -> String {
    inner_of(&serde_json::to_string(s).unwrap_or_default())
}

/// Every form `v` (and each line of it, when it has several) can take in printed text.
fn forms_of(v: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut push_forms = |s: &str| {
        let json = json_escaped(s);
        let debug = inner_of(&format!("{s:?}"));
        let go = inner_of(&crate::render::template::go_quote(s));
        let line = one_line(s);
        out.push(json_escaped(&debug));
        out.push(json_escaped(&json));
        out.push(json_escaped(&line));
        out.push(json_escaped(&go));
        out.extend([s.to_string(), json, debug, go, line]);
    };
    push_forms(v);
    for l in secret_lines(v) {
        push_forms(l);
    }
    out.retain(|f| !f.is_empty());
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_escaped_form_is_masked() {
        let s = Secrets::default();
        let pw = "pa\"ss\\word42";
        s.add(pw);
        let raw = format!("cpu {pw} bad");
        let json = serde_json::to_string(&raw).unwrap();
        let debug = format!("cpu {pw:?} is not a size");
        let json_of_debug = serde_json::to_string(&debug).unwrap();
        for text in [&raw, &json, &debug, &json_of_debug] {
            let m = s.mask(text);
            assert!(!m.contains("word42"), "{text} -> {m}");
            assert!(m.contains(MASK), "{m}");
        }
        assert_eq!(s.mask(&raw), "cpu *** bad");
    }

    #[test]
    fn each_line_of_a_multi_line_secret_is_masked() {
        let s = Secrets::default();
        s.add("-----BEGIN KEY-----\nMIIBsecretline\n-----END KEY-----");
        let text = "diff:\n+ MIIBsecretline\n";
        assert_eq!(s.mask(text), "diff:\n+ ***\n");
        // One-line renderings of it too.
        let shown = one_line("-----BEGIN KEY-----\nMIIBsecretline\n-----END KEY-----");
        assert_eq!(s.mask(&format!("x {shown} y")), "x *** y");
        assert!(s.found_in("a MIIBsecretline b"));
        assert!(!s.found_in("nothing here"));
    }

    #[test]
    fn values_are_masked_in_strings_and_keys_and_debug_shows_no_value() {
        let s = Secrets::default();
        s.add("hunter2");
        let mut v = json!({"a": ["x hunter2 y", 1], "hunter2": {"k": "hunter2"}});
        s.mask_value(&mut v);
        assert_eq!(v, json!({"a": ["x *** y", 1], "***": {"k": "***"}}));
        assert_eq!(format!("{s:?}"), "Secrets(1 values)");
        let forms = s.unannounced();
        assert!(forms.contains(&"hunter2".to_string()), "{forms:?}");
        assert!(s.unannounced().is_empty(), "each form is announced once");
        s.add("second");
        assert_eq!(s.unannounced(), vec!["second".to_string()]);
    }
}
