//! Text that cortado does not control: ECS service events and stop reasons, container log
//! lines, gate output, image tags, anything a branch name or a container can reach.
//!
//! [`Untrusted`] marks such a string where it enters cortado (the observer, the event
//! structs, the log reader). It never escapes itself for a channel — each sink in `report`
//! does that once for its channel (workflow commands, Markdown, JSON) — but its `Display`
//! form is always one line with no control characters: line breaks, carriage returns,
//! escape sequences and bidirectional overrides are shown as `\n`, `\r`, `\u{1b}`, ...
//! (the escapes of Rust's `escape_debug`), so text composed from it cannot start a new line,
//! move a terminal's cursor or reorder what a reader sees. Its JSON form is the text as it
//! came (JSON escapes it by construction); [`Untrusted::as_str`] is the raw text, for code
//! that inspects it.

use std::fmt;

use serde::{Serialize, Serializer};

/// A string from outside cortado's control. See the module documentation.
#[derive(Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Untrusted(String);

impl Untrusted {
    pub fn new(text: impl Into<String>) -> Self {
        Untrusted(text.into())
    }

    /// Text from bytes that may not be UTF-8 (a process's output): invalid sequences become
    /// U+FFFD, as a reader of the log would see them.
    pub fn from_bytes(bytes: &[u8]) -> Self {
        Untrusted(String::from_utf8_lossy(bytes).into_owned())
    }

    /// The raw text, exactly as it came.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

/// Whether `c` is shown escaped in the one-line form: control characters (C0, DEL, C1), line
/// and paragraph separators, and the bidirectional controls. A tab stays a tab.
pub(crate) fn is_unsafe_char(c: char) -> bool {
    (c.is_control() && c != '\t')
        || matches!(
            c,
            '\u{2028}' | '\u{2029}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{200e}' | '\u{200f}' | '\u{061c}'
        )
}

/// `text` on one line: every [`is_unsafe_char`] as its `escape_debug` escape (`\n`, `\r`,
/// `\u{1b}`, ...), everything else as it is.
pub(crate) fn one_line(text: &str) -> String {
    if !text.chars().any(is_unsafe_char) {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if is_unsafe_char(c) {
            out.extend(c.escape_debug());
        } else {
            out.push(c);
        }
    }
    out
}

impl fmt::Display for Untrusted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&one_line(&self.0))
    }
}

impl fmt::Debug for Untrusted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Untrusted({:?})", self.0)
    }
}

impl Serialize for Untrusted {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl From<String> for Untrusted {
    fn from(s: String) -> Self {
        Untrusted(s)
    }
}

impl From<&str> for Untrusted {
    fn from(s: &str) -> Self {
        Untrusted(s.to_string())
    }
}

impl From<&String> for Untrusted {
    fn from(s: &String) -> Self {
        Untrusted(s.clone())
    }
}

impl PartialEq<str> for Untrusted {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<String> for Untrusted {
    fn eq(&self, other: &String) -> bool {
        self.0 == *other
    }
}

impl PartialEq<&str> for Untrusted {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_is_one_line_without_control_characters() {
        let t = Untrusted::new("OOM\n::warning::x\r::add-mask::y\u{1b}[2J\u{202e}abc\ttab");
        let shown = t.to_string();
        assert_eq!(
            shown,
            "OOM\\n::warning::x\\r::add-mask::y\\u{1b}[2J\\u{202e}abc\ttab"
        );
        assert!(!shown.contains('\n') && !shown.contains('\r') && !shown.contains('\u{1b}'));
        // JSON keeps the text as it came.
        assert_eq!(
            serde_json::to_string(&t).unwrap(),
            "\"OOM\\n::warning::x\\r::add-mask::y\\u001b[2J\u{202e}abc\\ttab\""
        );
        assert_eq!(t.as_str().lines().count(), 2);
    }

    #[test]
    fn bytes_that_are_not_utf8_become_replacement_characters() {
        let t = Untrusted::from_bytes(b"ok \xff\xfe end");
        assert_eq!(t.as_str(), "ok \u{fffd}\u{fffd} end");
        assert_eq!(Untrusted::from("plain").to_string(), "plain");
        let a = Untrusted::from("a");
        assert!(a == "a" && a.as_str() == "a");
    }
}
