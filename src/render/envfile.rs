//! Envfiles: `KEY=VALUE` lines loaded before rendering (ecspresso's `--envfile`).
//!
//! Accepted: blank lines, `# comments`, an optional `export ` prefix, unquoted values (a ` #`
//! starts a trailing comment), single-quoted values (taken literally) and double-quoted values
//! (with `\n`, `\t`, `\"`, `\\` escapes). Anything else is an error naming file:line:col.

use std::path::Path;

use crate::error::{Diagnostic, Error, Location, Result};

/// Parses an envfile's text into its variables, in file order.
pub fn parse(path: &Path, text: &str) -> Result<Vec<(String, String)>> {
    let mut vars = Vec::new();
    let mut offset = 0;
    for raw in text.split_inclusive('\n') {
        let line_start = offset;
        offset += raw.len();
        let line = raw.trim_end_matches(['\n', '\r']);
        let trimmed = line.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let lead = line.len() - trimmed.len();
        let body = trimmed
            .strip_prefix("export ")
            .map_or(trimmed, str::trim_start);
        let body_start = line_start + lead + (trimmed.len() - body.len());
        let err = |at: usize, len: usize, msg: String, hint: &str| {
            Error::input(
                Diagnostic::error(msg)
                    .at(Location::from_offset(path, text, at, len))
                    .hint(hint.to_string()),
            )
        };
        let Some(eq) = body.find('=') else {
            return Err(err(
                body_start,
                body.len(),
                "envfile line is not KEY=VALUE".into(),
                "write KEY=VALUE, or start the line with # to make it a comment",
            ));
        };
        let key = body[..eq].trim_end();
        let valid_key = !key.is_empty()
            && !key.starts_with(|c: char| c.is_ascii_digit())
            && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid_key {
            return Err(err(
                body_start,
                key.len().max(1),
                format!("invalid variable name {key:?} in envfile"),
                "names use letters, digits and underscores, and do not start with a digit",
            ));
        }
        let rest = &body[eq + 1..];
        let value_start = body_start + eq + 1;
        let value = parse_value(rest).map_err(|(at, msg)| {
            err(
                value_start + at,
                1,
                msg,
                "close the quote on the same line; escape inner double quotes as \\\"",
            )
        })?;
        vars.push((key.to_string(), value));
    }
    Ok(vars)
}

/// Parses the value part; errors carry the offset inside `rest`.
fn parse_value(rest: &str) -> std::result::Result<String, (usize, String)> {
    let lead = rest.len() - rest.trim_start().len();
    let v = rest.trim_start();
    let unclosed = |q: char| (lead, format!("unterminated {q}-quoted value"));
    let after = |tail: &str, at: usize| -> std::result::Result<(), (usize, String)> {
        let t = tail.trim();
        if t.is_empty() || t.starts_with('#') {
            Ok(())
        } else {
            Err((at, format!("unexpected text {t:?} after the quoted value")))
        }
    };
    if let Some(inner) = v.strip_prefix('\'') {
        let end = inner.find('\'').ok_or_else(|| unclosed('\''))?;
        after(&inner[end + 1..], lead + end + 2)?;
        return Ok(inner[..end].to_string());
    }
    if let Some(inner) = v.strip_prefix('"') {
        let mut out = String::new();
        let mut chars = inner.char_indices();
        while let Some((i, c)) = chars.next() {
            match c {
                '"' => {
                    after(&inner[i + 1..], lead + i + 2)?;
                    return Ok(out);
                }
                '\\' => match chars.next() {
                    Some((_, 'n')) => out.push('\n'),
                    Some((_, 't')) => out.push('\t'),
                    Some((_, 'r')) => out.push('\r'),
                    Some((_, c)) => out.push(c),
                    None => return Err(unclosed('"')),
                },
                c => out.push(c),
            }
        }
        return Err(unclosed('"'));
    }
    let v = match v.find(" #") {
        Some(i) => &v[..i],
        None => v,
    };
    Ok(v.trim_end().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_usual_forms() {
        let text = "# c\n\nA=1\nexport B = two words # note\nC='it''s'\nD=\"x\\ny \\\"q\\\"\"\nE=\nF=a#b\n";
        let v = parse(Path::new("e.env"), text);
        assert!(v.is_err(), "C has text after its closing quote");
        let text = "# c\n\nA=1\nexport B = two words # note\nC='lit $X'\nD=\"x\\ny \\\"q\\\"\"\nE=\nF=a#b\n";
        let v = parse(Path::new("e.env"), text).unwrap();
        let get = |k: &str| v.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        assert_eq!(get("A"), Some("1"));
        assert_eq!(get("B"), Some("two words"));
        assert_eq!(get("C"), Some("lit $X"));
        assert_eq!(get("D"), Some("x\ny \"q\""));
        assert_eq!(get("E"), Some(""));
        assert_eq!(get("F"), Some("a#b"));
    }

    #[test]
    fn errors_name_line_and_column() {
        let e = parse(Path::new("e.env"), "A=1\n  oops\n").unwrap_err();
        let loc = e.diagnostics[0].location.clone().unwrap();
        assert_eq!((loc.line, loc.col), (2, 3));
        let e = parse(Path::new("e.env"), "A=\"open\n").unwrap_err();
        assert!(e.to_string().contains("unterminated"), "{e}");
        let e = parse(Path::new("e.env"), "1A=x\n").unwrap_err();
        assert!(e.to_string().contains("invalid variable name"), "{e}");
    }
}
