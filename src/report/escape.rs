//! One escaping per output channel. Sinks call these; callers never escape.
//!
//! - GitHub Actions log (stdout and stderr of a step): the runner splits what a step prints
//!   into lines at `\n`, `\r\n` and a lone `\r`, and runs a line as a workflow command when,
//!   after leading whitespace, it starts with `::` (`::warning::x`), or when it holds `##[`
//!   anywhere (the older `##[warning]x` form). [`actions_stdout`] prints text as lines split
//!   the same way and, when any line would run, wraps the text in
//!   `::stop-commands::<token>` ... `::<token>::` with a fresh random token that occurs nowhere
//!   in it (while stopped, the runner runs no command but the one named by the token).
//!   [`actions_stderr`] cannot do that — the runner reads stdout and stderr concurrently, so a
//!   window opened on stderr could swallow cortado's own commands on stdout — and makes such a
//!   line inert instead: its leading `::` becomes `%3A:` and every `##[` becomes `##%5B`.
//! - Markdown (job summary, PR comment): text that cortado does not write itself goes in a
//!   code span ([`md_code`]) or a fenced block ([`md_fence`]) whose backtick run is longer
//!   than any inside, so no HTML renders, no link or image is made, no one is mentioned;
//!   [`md_cell`] does the same for a table cell.
//! - Mermaid (charts in Markdown): [`mermaid_label`] keeps letters, digits and a few plain
//!   punctuation characters.
//! - JSON: escaping is by construction; [`json_guard`] also turns `##[` into `##\u005b`, which
//!   decodes to the same text but is no workflow command when the JSON lands in a log.

use crate::untrusted::one_line;

/// Characters the runner trims before looking for `::` (every Unicode white space, plus the
/// invisible format characters a reader would not see).
fn trimmed(line: &str) -> &str {
    line.trim_start_matches(|c: char| {
        c.is_whitespace() || matches!(c, '\u{200b}'..='\u{200d}' | '\u{2060}' | '\u{feff}')
    })
}

/// Whether the runner would try to run `line` as a workflow command.
pub(crate) fn runs_as_command(line: &str) -> bool {
    trimmed(line).starts_with("::") || line.contains("##[")
}

/// The lines of `text` as the runner splits them (`\r\n`, `\n` and a lone `\r` all end a line).
pub(crate) fn runner_lines(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find(['\r', '\n']) {
        out.push(&rest[..i]);
        let skip = if rest[i..].starts_with("\r\n") { 2 } else { 1 };
        rest = &rest[i + skip..];
    }
    if !rest.is_empty() {
        out.push(rest);
    }
    out
}

/// A workflow command's name and data as the runner parses a line: `::name props::data`
/// (after leading white space) or `##[name props]data` anywhere in the line.
#[cfg(test)]
fn parse_command(line: &str) -> Option<(String, String)> {
    let t = trimmed(line);
    if let Some(rest) = t.strip_prefix("::")
        && let Some(end) = rest.find("::")
    {
        let info = &rest[..end];
        let name = info.split(' ').next().unwrap_or("");
        return Some((name.to_string(), rest[end + 2..].to_string()));
    }
    let at = line.find("##[")?;
    let rest = &line[at + 3..];
    let end = rest.find(']')?;
    let name = rest[..end].split(' ').next().unwrap_or("");
    Some((name.to_string(), rest[end + 1..].to_string()))
}

/// The lines of `out` (a step's output) that the runner would run as workflow commands, as
/// its command manager does: while `::stop-commands::TOKEN` is in force, nothing runs until a
/// command named TOKEN resumes. For tests of every channel.
#[cfg(test)]
pub(crate) fn runner_would_run(out: &str) -> Vec<String> {
    let mut stopped: Option<String> = None;
    let mut ran = Vec::new();
    for l in runner_lines(out) {
        let Some((name, data)) = parse_command(l) else {
            continue;
        };
        match &stopped {
            Some(tok) => {
                if name.eq_ignore_ascii_case(tok) {
                    stopped = None;
                }
            }
            None if name.eq_ignore_ascii_case("stop-commands") => stopped = Some(data),
            None => ran.push(l.to_string()),
        }
    }
    ran
}

/// A token for `::stop-commands::`: 32 hex digits of the system's randomness (a hash of the
/// time, the process and a per-process hasher when it cannot be read), never found in `text`.
pub(crate) fn stop_token(text: &str) -> String {
    use std::hash::{BuildHasher, Hasher};
    loop {
        let mut bytes = [0u8; 16];
        let random = std::fs::File::open("/dev/urandom")
            .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut bytes))
            .is_ok();
        if !random {
            for (i, chunk) in bytes.chunks_mut(8).enumerate() {
                let mut h = std::collections::hash_map::RandomState::new().build_hasher();
                h.write_u128(
                    std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map(|d| d.as_nanos())
                        .unwrap_or_default(),
                );
                h.write_u32(std::process::id());
                h.write_usize(i);
                chunk.copy_from_slice(&h.finish().to_le_bytes());
            }
        }
        let token: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        if !text.to_ascii_lowercase().contains(&token) {
            return token;
        }
    }
}

/// `text` for a step's stdout: its lines (split as the runner splits them) with a newline
/// after each; inside `::stop-commands::` when any of them would run as a command.
pub(crate) fn actions_stdout(text: &str) -> String {
    let lines = runner_lines(text);
    let mut body = String::with_capacity(text.len() + 1);
    for l in &lines {
        body.push_str(l);
        body.push('\n');
    }
    if !lines.iter().any(|l| runs_as_command(l)) {
        return if body.is_empty() { "\n".into() } else { body };
    }
    let token = stop_token(text);
    format!("::stop-commands::{token}\n{body}::{token}::\n")
}

/// `text` for a step's stderr: its lines (split as the runner splits them), each line that
/// would run as a command made inert, a newline after each.
pub(crate) fn actions_stderr(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 1);
    for l in runner_lines(text) {
        if runs_as_command(l) {
            let lead = l.len() - trimmed(l).len();
            let (head, tail) = l.split_at(lead);
            out.push_str(head);
            let tail = match tail.strip_prefix(':') {
                Some(rest) if tail.starts_with("::") => format!("%3A{rest}"),
                _ => tail.to_string(),
            };
            out.push_str(&tail.replace("##[", "##%5B"));
        } else {
            out.push_str(l);
        }
        out.push('\n');
    }
    out
}

/// JSON text with every `##[` written as `##\u005b` (the same text once decoded). `#` only
/// occurs inside JSON strings, so this never touches the structure.
pub(crate) fn json_guard(json: &str) -> String {
    if json.contains("##[") {
        json.replace("##[", "##\\u005b")
    } else {
        json.to_string()
    }
}

/// The most characters of foreign text shown in one code span or one line of a fenced block:
/// a summary or comment has room for many such texts, not for one of a megabyte.
pub(crate) const MD_MAX_TEXT: usize = 2000;

/// `text` cut to `max` characters, saying how many were left out.
fn clip(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        None => text.to_string(),
        Some((at, _)) => {
            let rest = text[at..].chars().count();
            format!("{}… ({rest} more characters)", &text[..at])
        }
    }
}

/// The longest run of backticks in `text`.
fn longest_backticks(text: &str) -> usize {
    text.split(|c| c != '`').map(str::len).max().unwrap_or(0)
}

/// `text` as a Markdown code span, on one line: rendered literally (no HTML, links or
/// mentions). Empty text gives an empty string.
pub(crate) fn md_code(text: &str) -> String {
    let line = clip(&one_line(text), MD_MAX_TEXT);
    if line.is_empty() {
        return String::new();
    }
    let ticks = "`".repeat(longest_backticks(&line) + 1);
    // A space on both sides keeps a backtick at either end apart from the delimiters.
    let pad = if line.starts_with('`') || line.ends_with('`') {
        " "
    } else {
        ""
    };
    format!("{ticks}{pad}{line}{pad}{ticks}")
}

/// `text` as a code span fit for a Markdown table cell (`|` escaped, as GFM asks even inside
/// code spans).
pub(crate) fn md_cell(text: &str) -> String {
    md_code(text).replace('|', "\\|")
}

/// `text` as a fenced code block (with `lang` after the opening fence) whose fence is longer
/// than any backtick run inside, so the block cannot be closed from within.
pub(crate) fn md_fence(lang: &str, text: &str) -> String {
    let mut body = String::with_capacity(text.len().min(1 << 20) + 1);
    for line in text.split('\n') {
        body.push_str(&clip(&line.replace('\r', ""), MD_MAX_TEXT));
        body.push('\n');
    }
    let fence = "`".repeat(longest_backticks(&body).max(2) + 1);
    format!("{fence}{lang}\n{body}{fence}\n")
}

/// The backtick fence open at the end of `md` (its length), if any.
fn open_fence(md: &str) -> Option<usize> {
    let mut open: Option<usize> = None;
    for line in md.lines() {
        let ticks = line.chars().take_while(|c| *c == '`').count();
        match open {
            Some(n) if ticks >= n && line[ticks..].trim().is_empty() => open = None,
            None if ticks >= 3 => open = Some(ticks),
            _ => {}
        }
    }
    open
}

/// `md` cut to at most `max` characters when longer: an open fenced block is closed, then
/// `note` says so.
pub(crate) fn md_truncate(md: &str, max: usize, note: &str) -> String {
    if md.chars().count() <= max {
        return md.to_string();
    }
    let mut keep = max.saturating_sub(note.chars().count() + 1);
    loop {
        let mut cut: String = md.chars().take(keep).collect();
        if let Some(n) = open_fence(&cut) {
            cut.push('\n');
            cut.push_str(&"`".repeat(n));
        }
        cut.push_str(note);
        let len = cut.chars().count();
        if len <= max || keep == 0 {
            return cut;
        }
        keep = keep.saturating_sub(len - max);
    }
}

/// Text Mermaid takes as a title, section or task name: letters, digits, spaces and
/// `-_./()+,%=@`; anything else becomes a space; at most 80 characters.
pub(crate) fn mermaid_label(s: &str) -> String {
    let mut out: String = s
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || " -_./()+,%=@".contains(c) {
                c
            } else {
                ' '
            }
        })
        .take(80)
        .collect();
    out.truncate(out.trim_end().len());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    use super::runner_would_run as executed;

    const HOSTILE: &str = "OutOfMemory\n::warning title=spoofed::x\r::add-mask::SUCCESS\r\n  ::error::y\n x ##[warning]z\n\u{a0}::notice::w";

    #[test]
    fn stdout_wraps_text_that_would_run_and_leaves_plain_text_alone() {
        assert_eq!(actions_stdout("plain\nlines"), "plain\nlines\n");
        let out = actions_stdout(HOSTILE);
        assert!(executed(&out).is_empty(), "{out}");
        assert!(out.starts_with("::stop-commands::"), "{out}");
        // The lone CR became a line break, as the runner reads it.
        assert!(out.contains("\n::add-mask::SUCCESS\n"), "{out}");
        // Without the wrapping the same lines would run.
        assert_eq!(executed(HOSTILE).len(), 5);
    }

    #[test]
    fn a_planted_token_cannot_end_the_window() {
        let planted = "::stop-commands::abc\n::abc::\n::warning::x";
        let out = actions_stdout(planted);
        assert!(executed(&out).is_empty(), "{out}");
        let token = out
            .lines()
            .next()
            .unwrap()
            .strip_prefix("::stop-commands::")
            .unwrap();
        assert_eq!(token.len(), 32);
        assert_ne!(stop_token(""), stop_token(""), "fresh each time");
    }

    #[test]
    fn stderr_makes_each_line_inert() {
        let out = actions_stderr(HOSTILE);
        assert!(executed(&out).is_empty(), "{out}");
        assert!(out.contains("\n%3A:warning title=spoofed::x\n"), "{out}");
        assert!(out.contains("\n  %3A:error::y\n"), "{out}");
        assert!(out.contains(" x ##%5Bwarning]z\n"), "{out}");
        assert_eq!(actions_stderr("ok"), "ok\n");
    }

    #[test]
    fn json_guard_keeps_the_value() {
        let v = serde_json::json!({"m": "a ##[warning]b"});
        let text = json_guard(&v.to_string());
        assert!(!text.contains("##["), "{text}");
        assert_eq!(serde_json::from_str::<serde_json::Value>(&text).unwrap(), v);
    }

    #[test]
    fn markdown_code_spans_and_fences_hold_anything() {
        assert_eq!(md_code("a <img src=x> @you"), "`a <img src=x> @you`");
        assert_eq!(md_code("x ``` y"), "````x ``` y````");
        assert_eq!(md_code("`edge`"), "`` `edge` ``");
        assert_eq!(md_code("two\nlines"), "`two\\nlines`");
        assert_eq!(md_cell("a|b"), "`a\\|b`");
        assert_eq!(md_fence("", "x ```` y"), "`````\nx ```` y\n`````\n");
        // Foreign text is clipped: a megabyte does not fill a summary.
        let long = md_code(&"y".repeat(1 << 20));
        assert!(long.len() < MD_MAX_TEXT + 100, "{}", long.len());
        assert!(
            long.ends_with("… (1046576 more characters)`"),
            "{}",
            &long[long.len() - 40..]
        );
        // Cutting Markdown closes the fence it cuts into.
        let md = format!("head\n````diff\n{}", "+ x\n".repeat(1000));
        let cut = md_truncate(&md, 200, "\n\ncut");
        assert!(cut.chars().count() <= 200, "{}", cut.chars().count());
        assert!(cut.ends_with("\n````\n\ncut"), "{cut}");
        assert_eq!(open_fence(&cut), None);
        assert_eq!(mermaid_label("web: <b>#1</b>\n::x"), "web   b  1 /b    x");
    }
}
