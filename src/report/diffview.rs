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
    let (a, b) = (to_pretty(before), to_pretty(after));
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
