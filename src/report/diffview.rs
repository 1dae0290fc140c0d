//! How a difference between two JSON documents is shown: a unified diff of their pretty
//! printing, coloured on a terminal, fenced as `diff` in Markdown.
//!
//! Receives values already normalized by `diff` (defaults filled, lists sorted), so that what
//! shows here is what would really change. Secret values are masked by the printer.

use serde_json::Value;
use similar::{ChangeTag, TextDiff};

use crate::render::to_pretty;

/// A unified diff of `before` and `after` with `context` lines; empty when equal.
pub(crate) fn unified(
    label_before: &str,
    label_after: &str,
    before: &Value,
    after: &Value,
    color: bool,
) -> String {
    unified_as(label_before, label_after, before, after, color, false)
}

/// [`unified`], of the documents printed as JSON or, with `jsonnet`, as Jsonnet
/// ([`to_jsonnet`]: ecspresso's `diff --jsonnet`).
pub(crate) fn unified_as(
    label_before: &str,
    label_after: &str,
    before: &Value,
    after: &Value,
    color: bool,
    jsonnet: bool,
) -> String {
    let print = |v: &Value| {
        if jsonnet { to_jsonnet(v) } else { to_pretty(v) }
    };
    let (a, b) = (print(before), print(after));
    if a == b {
        return String::new();
    }
    let diff = TextDiff::from_lines(&a, &b);
    let mut out = String::new();
    let paint = |code: &str, s: &str| {
        if color {
            format!("\x1b[{code}m{s}\x1b[0m")
        } else {
            s.to_string()
        }
    };
    out.push_str(&paint(
        "1",
        &format!("--- {label_before}\n+++ {label_after}\n"),
    ));
    for group in diff.grouped_ops(3) {
        let (first, last) = (&group[0], &group[group.len() - 1]);
        let old = first.old_range().start..last.old_range().end;
        let new = first.new_range().start..last.new_range().end;
        out.push_str(&paint(
            "36",
            &format!(
                "@@ -{},{} +{},{} @@\n",
                old.start + 1,
                old.len(),
                new.start + 1,
                new.len()
            ),
        ));
        for op in &group {
            for change in diff.iter_changes(op) {
                let line = change.value();
                let text = match change.tag() {
                    ChangeTag::Delete => paint("31", &format!("-{line}")),
                    ChangeTag::Insert => paint("32", &format!("+{line}")),
                    ChangeTag::Equal => format!(" {line}"),
                };
                out.push_str(&text);
                if !line.ends_with('\n') {
                    out.push('\n');
                }
            }
        }
    }
    out
}

/// A JSON value as Jsonnet, the way `jsonnetfmt` lays a JSON document out: two-space indents,
/// keys without quotes where Jsonnet allows it, single-quoted strings, a comma after every
/// element of a list or object that spans lines. `null` (an absent document) is empty.
pub(crate) fn to_jsonnet(v: &Value) -> String {
    if v.is_null() {
        return String::new();
    }
    let mut out = String::new();
    write_jsonnet(v, 0, &mut out);
    out.push('\n');
    out
}

fn write_jsonnet(v: &Value, depth: usize, out: &mut String) {
    let pad = |d: usize| "  ".repeat(d);
    match v {
        Value::Object(m) if m.is_empty() => out.push_str("{}"),
        Value::Array(a) if a.is_empty() => out.push_str("[]"),
        Value::Object(m) => {
            out.push_str("{\n");
            for (k, item) in m {
                out.push_str(&pad(depth + 1));
                out.push_str(&jsonnet_key(k));
                out.push_str(": ");
                write_jsonnet(item, depth + 1, out);
                out.push_str(",\n");
            }
            out.push_str(&pad(depth));
            out.push('}');
        }
        Value::Array(a) => {
            out.push_str("[\n");
            for item in a {
                out.push_str(&pad(depth + 1));
                write_jsonnet(item, depth + 1, out);
                out.push_str(",\n");
            }
            out.push_str(&pad(depth));
            out.push(']');
        }
        Value::String(s) => out.push_str(&jsonnet_string(s)),
        other => out.push_str(&other.to_string()),
    }
}

/// A field name: bare when it is an identifier and not a Jsonnet keyword, else quoted.
fn jsonnet_key(k: &str) -> String {
    const KEYWORDS: &[&str] = &[
        "assert",
        "else",
        "error",
        "false",
        "for",
        "function",
        "if",
        "import",
        "importstr",
        "importbin",
        "in",
        "local",
        "null",
        "tailstrict",
        "then",
        "self",
        "super",
        "true",
    ];
    let mut chars = k.chars();
    let ident = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    if ident && !KEYWORDS.contains(&k) {
        k.to_string()
    } else {
        jsonnet_string(k)
    }
}

/// A single-quoted Jsonnet string.
fn jsonnet_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('\'');
    for c in s.chars() {
        match c {
            '\'' => out.push_str("\\'"),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                out.push_str(&format!("\\u{:04x}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

/// The unified diff in a Markdown `diff` fence, or None when equal.
pub(crate) fn markdown(
    label_before: &str,
    label_after: &str,
    before: &Value,
    after: &Value,
) -> Option<String> {
    let text = unified(label_before, label_after, before, after, false);
    if text.is_empty() {
        return None;
    }
    // A fence longer than any backtick run inside keeps the block closed.
    let longest = text.split(|c| c != '`').map(str::len).max().unwrap_or(0);
    let fence = "`".repeat(longest.max(2) + 1);
    Some(format!("{fence}diff\n{text}{fence}\n"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn equal_values_give_no_diff() {
        let v = json!({"family": "web", "cpu": "256"});
        assert_eq!(unified("live", "local", &v, &v, false), "");
        assert_eq!(markdown("live", "local", &v, &v), None);
    }

    #[test]
    fn changed_line_shows_as_minus_plus_with_context() {
        let a = json!({"family": "web", "cpu": "256", "memory": "512"});
        let b = json!({"family": "web", "cpu": "512", "memory": "512"});
        let d = unified("live", "local", &a, &b, false);
        assert!(
            d.starts_with("--- live\n+++ local\n@@ -1,5 +1,5 @@\n"),
            "{d}"
        );
        assert!(
            d.contains("\n-  \"cpu\": \"256\",\n+  \"cpu\": \"512\",\n"),
            "{d}"
        );
        assert!(d.contains("\n   \"family\": \"web\",\n"), "{d}");
        let colored = unified("live", "local", &a, &b, true);
        assert!(
            colored.contains("\x1b[31m-  \"cpu\": \"256\","),
            "{colored}"
        );
        let md = markdown("live", "local", &a, &b).unwrap();
        assert!(md.starts_with("```diff\n--- live"), "{md}");
        assert!(md.ends_with("```\n"), "{md}");
    }

    #[test]
    fn markdown_fence_outgrows_backticks_in_values() {
        let a = json!({"cmd": "echo ```"});
        let b = json!({"cmd": "echo ````"});
        let md = markdown("a", "b", &a, &b).unwrap();
        assert!(md.starts_with("`````diff\n"), "{md}");
    }
}
