//! The markers cortado's command wrappers print, and finding them in a session's output.
//!
//! ECS Exec sessions carry no exit status (the agent's pty sessions only close the channel,
//! amazon-ssm-agent `agent/session/shell/shell.go` `executeCommandsWithPty`), so `exec run`
//! runs `sh -c 'COMMAND; printf MARK $?'` and reads the status from the mark. A mark is an
//! OSC escape sequence, `ESC ] cortado;KIND;NONCE[;VALUE] BEL`, which terminals ignore; the
//! nonce is random per session, so output of the command cannot forge one. `cp` uses marks to
//! say when the container is ready for data and where a file's bytes start.
//!
//! Receives output in arbitrary pieces; hands on the output without the marks, and the marks.

/// What a mark says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Mark {
    /// The command's exit status.
    Exit(i32),
    /// `cp`: the container waits for data.
    Ready,
    /// `cp`: a file's bytes start.
    Begin,
}

const PREFIX: &[u8] = b"\x1b]cortado;";
/// Longest mark body looked for before giving up on a sequence.
const MAX_MARK: usize = 160;

/// Finds this session's marks in output.
pub(super) struct Scanner {
    nonce: String,
    held: Vec<u8>,
}

impl Scanner {
    pub(super) fn new(nonce: &str) -> Scanner {
        Scanner {
            nonce: nonce.to_string(),
            held: Vec::new(),
        }
    }

    /// The output to show (marks removed; a possible mark cut at the end is held back) and
    /// the marks found.
    pub(super) fn push(&mut self, bytes: &[u8]) -> (Vec<u8>, Vec<Mark>) {
        let mut buf = std::mem::take(&mut self.held);
        buf.extend_from_slice(bytes);
        let (mut out, mut marks) = (Vec::with_capacity(buf.len()), Vec::new());
        let mut i = 0;
        while i < buf.len() {
            let Some(j) = buf[i..].iter().position(|&b| b == 0x1b).map(|p| p + i) else {
                out.extend_from_slice(&buf[i..]);
                break;
            };
            out.extend_from_slice(&buf[i..j]);
            let rest = &buf[j..];
            if rest.len() < PREFIX.len() {
                if PREFIX.starts_with(rest) {
                    self.held = rest.to_vec();
                    break;
                }
                out.push(0x1b);
                i = j + 1;
                continue;
            }
            if !rest.starts_with(PREFIX) {
                out.push(0x1b);
                i = j + 1;
                continue;
            }
            match rest.iter().take(MAX_MARK).position(|&b| b == 0x07) {
                Some(k) => {
                    match self.parse(&rest[PREFIX.len()..k]) {
                        Some(m) => marks.push(m),
                        None => out.extend_from_slice(&rest[..=k]),
                    }
                    i = j + k + 1;
                }
                None if rest.len() < MAX_MARK => {
                    self.held = rest.to_vec();
                    break;
                }
                None => {
                    out.push(0x1b);
                    i = j + 1;
                }
            }
        }
        (out, marks)
    }

    /// What was held back, once the output has ended.
    pub(super) fn finish(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.held)
    }

    fn parse(&self, body: &[u8]) -> Option<Mark> {
        let text = std::str::from_utf8(body).ok()?;
        let mut parts = text.split(';');
        let (kind, nonce) = (parts.next()?, parts.next()?);
        if nonce != self.nonce {
            return None;
        }
        match kind {
            "exit" => parts.next()?.trim().parse().ok().map(Mark::Exit),
            "ready" => Some(Mark::Ready),
            "begin" => Some(Mark::Begin),
            _ => None,
        }
    }
}

/// `s` as one POSIX shell word (single quotes; `'` as `'\''`).
pub(super) fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// The shell statement that prints a mark (`value`, e.g. `$?`, goes after the nonce).
pub(super) fn print_mark(kind: &str, nonce: &str, value: Option<&str>) -> String {
    match value {
        Some(v) => format!("printf \"\\033]cortado;{kind};{nonce};%s\\007\" {v}"),
        None => format!("printf \"\\033]cortado;{kind};{nonce}\\007\""),
    }
}

/// `script` as the one program ECS Exec runs: `sh -c 'SCRIPT'`.
pub(super) fn sh_c(script: &str) -> String {
    format!("sh -c {}", sh_quote(script))
}

/// `command` run by a wrapper that prints its exit status as a mark.
pub(super) fn wrap(command: &str, nonce: &str) -> String {
    sh_c(&format!(
        "{command}; {}",
        print_mark("exit", nonce, Some("$?"))
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn marks_are_removed_and_read() {
        let mut s = Scanner::new("n1");
        let (out, marks) = s.push(b"hi\r\n\x1b]cortado;exit;n1;3\x07");
        assert_eq!(out, b"hi\r\n");
        assert_eq!(marks, vec![Mark::Exit(3)]);
        // Another nonce (forged by the command's output) passes through as output.
        let (out, marks) = s.push(b"\x1b]cortado;exit;zz;0\x07x");
        assert_eq!(out, b"\x1b]cortado;exit;zz;0\x07x");
        assert!(marks.is_empty());
        // Other escape sequences are untouched.
        let (out, _) = s.push(b"\x1b[31mred\x1b[0m");
        assert_eq!(out, b"\x1b[31mred\x1b[0m");
    }

    #[test]
    fn the_wrapper_quotes_the_command() {
        assert_eq!(sh_quote("it's"), "'it'\\''s'");
        assert_eq!(
            wrap("echo 'a b'", "n"),
            "sh -c 'echo '\\''a b'\\''; printf \"\\033]cortado;exit;n;%s\\007\" $?'"
        );
    }

    proptest! {
        /// However the output is cut into pieces, the same output and marks come out.
        #[test]
        fn any_split_gives_the_same_result(
            before in proptest::collection::vec(any::<u8>(), 0..200),
            after in proptest::collection::vec(any::<u8>(), 0..50),
            code in 0i32..256,
            cuts in proptest::collection::vec(0usize..400, 0..8),
        ) {
            let mut whole = before.clone();
            whole.extend_from_slice(format!("\x1b]cortado;exit;abc;{code}\x07").as_bytes());
            whole.extend_from_slice(&after);
            let mut one = Scanner::new("abc");
            let (mut want, want_marks) = one.push(&whole);
            want.extend(one.finish());
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c % (whole.len() + 1)).collect();
            cuts.sort();
            let mut s = Scanner::new("abc");
            let (mut got, mut got_marks, mut at) = (Vec::new(), Vec::new(), 0);
            for c in cuts.into_iter().chain([whole.len()]) {
                let (o, m) = s.push(&whole[at..c]);
                got.extend(o);
                got_marks.extend(m);
                at = c;
            }
            got.extend(s.finish());
            prop_assert_eq!(&got, &want);
            prop_assert_eq!(&got_marks, &want_marks);
            prop_assert!(got_marks.contains(&Mark::Exit(code)));
        }
    }
}
