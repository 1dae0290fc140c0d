//! Errors and diagnostics.
//!
//! Every failure cortado reports is an [`Error`]: a class (which decides the exit code) and one
//! or more [`Diagnostic`]s. A diagnostic says what went wrong, where (file:line:col with the
//! offending line and a marker, when the problem is in an input file) and what to do about it.

use std::fmt;
use std::path::{Path, PathBuf};

/// Exit codes are part of the interface; the README documents them. Keep them stable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitCode {
    Success = 0,
    /// Bad input: config, templates, definitions, flags. Also `validate` with findings.
    BadInput = 1,
    /// `diff` only: there are changes.
    Changes = 2,
    /// The deployment failed and the service is back on the previous revision.
    FailedRolledBack = 3,
    /// The deployment failed and was not rolled back (rollback disabled or not possible).
    FailedNotRolledBack = 4,
    /// The deployment failed and the rollback failed too: the worst outcome.
    RollbackFailed = 5,
    /// The deadline passed before a verdict.
    TimedOut = 6,
    /// An AWS API error that is not about the deployment itself (credentials, permissions,
    /// missing cluster, exhausted retries).
    Aws = 7,
    /// Internal error: a bug in cortado.
    Internal = 70,
    /// Cancelled by SIGINT/SIGTERM.
    Cancelled = 130,
}

/// What went wrong, in the class of an error; it maps to an exit code. How a deployment
/// ended (failed, rolled back, timed out, cancelled) is not an error but an outcome
/// (`deploy::core::outcome`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The input is wrong: config, templates, definitions, flags.
    BadInput,
    /// AWS refused or failed a call, or answered something cortado cannot use.
    Aws,
    /// An AWS call that may well succeed if tried again later: throttled, or a server error
    /// (5xx), after the SDK's own retries. (An endpoint that cannot be reached is not: trying
    /// again for minutes would only hide a wrong endpoint or network.) Exit 7
    /// like [`ErrorKind::Aws`]; read-only phases wait and try again while the deadline allows.
    AwsTransient,
    /// The request does not fit what the service (or another actor) made of it: nothing to
    /// continue, no earlier revision to return to, a service that is not the kind the config
    /// says. Exit 1, like bad input: the input asks for something the state does not allow.
    Conflict,
    /// A bug in cortado.
    Internal,
}

impl ErrorKind {
    pub fn exit_code(self) -> ExitCode {
        match self {
            ErrorKind::BadInput | ErrorKind::Conflict => ExitCode::BadInput,
            ErrorKind::Aws | ErrorKind::AwsTransient => ExitCode::Aws,
            ErrorKind::Internal => ExitCode::Internal,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Error,
    Warning,
    Note,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Note => "note",
        })
    }
}

/// A place in an input file. Lines and columns are 1-based; columns count characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    pub path: PathBuf,
    pub line: usize,
    pub col: usize,
    /// The text of the line, for the snippet (without its newline).
    pub line_text: Option<String>,
    /// How many characters the marker underlines (at least 1).
    pub len: usize,
}

impl Location {
    /// A location naming only a file.
    pub fn file(path: impl Into<PathBuf>) -> Self {
        Location {
            path: path.into(),
            line: 0,
            col: 0,
            line_text: None,
            len: 0,
        }
    }

    /// The location of byte `offset` in `text` (clamped to the text), underlining `len` bytes.
    pub fn from_offset(path: impl Into<PathBuf>, text: &str, offset: usize, len: usize) -> Self {
        Location::from_offset_in(path, text, None, offset, len)
    }

    /// The byte offsets where the lines of `text` start, for [`Location::from_offset_in`].
    pub fn line_starts(text: &str) -> Vec<usize> {
        std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect()
    }

    /// [`Location::from_offset`] with the line starts of `text` computed once by the caller
    /// ([`Location::line_starts`]), so that locating many findings in one large file does not
    /// count its lines again each time (which made it quadratic).
    pub fn from_offset_in(
        path: impl Into<PathBuf>,
        text: &str,
        line_starts: Option<&[usize]>,
        offset: usize,
        len: usize,
    ) -> Self {
        let mut offset = offset.min(text.len());
        while !text.is_char_boundary(offset) {
            offset -= 1;
        }
        let (line, line_start) = match line_starts {
            Some(starts) if !starts.is_empty() => {
                let line = starts.partition_point(|&s| s <= offset).max(1);
                (line, starts[line - 1].min(offset))
            }
            _ => (
                text[..offset].matches('\n').count() + 1,
                text[..offset].rfind('\n').map_or(0, |i| i + 1),
            ),
        };
        let line_end = text[offset..].find('\n').map_or(text.len(), |i| offset + i);
        let col = text[line_start..offset].chars().count() + 1;
        let line_text = text[line_start..line_end]
            .trim_end_matches('\r')
            .to_string();
        let end = (offset + len.max(1)).min(line_end);
        let marked = text
            .get(offset..end)
            .map_or(1, |s| s.chars().count().max(1));
        Location {
            path: path.into(),
            line,
            col,
            line_text: Some(line_text),
            len: marked,
        }
    }

    /// The location of a 1-based line and column in `text`.
    pub fn from_line_col(path: impl Into<PathBuf>, text: &str, line: usize, col: usize) -> Self {
        let line_text = text
            .lines()
            .nth(line.saturating_sub(1))
            .map(|l| l.trim_end_matches('\r').to_string());
        Location {
            path: path.into(),
            line,
            col,
            line_text,
            len: 1,
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.path.display())?;
        if self.line > 0 {
            write!(f, ":{}", self.line)?;
            if self.col > 0 {
                write!(f, ":{}", self.col)?;
            }
        }
        Ok(())
    }
}

/// One finding: what, where, and what to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub severity: Severity,
    pub message: String,
    pub location: Option<Location>,
    pub hint: Option<String>,
}

impl Diagnostic {
    pub fn error(message: impl Into<String>) -> Self {
        Diagnostic {
            severity: Severity::Error,
            message: message.into(),
            location: None,
            hint: None,
        }
    }

    pub fn warning(message: impl Into<String>) -> Self {
        Diagnostic {
            severity: Severity::Warning,
            ..Diagnostic::error(message)
        }
    }

    pub fn note(message: impl Into<String>) -> Self {
        Diagnostic {
            severity: Severity::Note,
            ..Diagnostic::error(message)
        }
    }

    pub fn at(mut self, location: Location) -> Self {
        self.location = Some(location);
        self
    }

    pub fn at_file(self, path: &Path) -> Self {
        self.at(Location::file(path))
    }

    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

impl fmt::Display for Diagnostic {
    /// Renders like a compiler message:
    ///
    /// ```text
    /// error: unknown key "famliy" in the task definition
    ///   --> ecs-task-def.json:2:3
    ///    |
    ///  2 |   "famliy": "hello",
    ///    |   ^^^^^^^^
    ///    = hint: did you mean "family"?
    /// ```
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.severity, self.message)?;
        let gutter = self
            .location
            .as_ref()
            .filter(|l| l.line > 0)
            .map_or(1, |l| l.line.to_string().len());
        let pad = " ".repeat(gutter);
        if let Some(loc) = &self.location {
            write!(f, "\n{pad}--> {loc}")?;
            if let (Some(text), true) = (&loc.line_text, loc.line > 0) {
                // Tabs would misplace the marker: show them as single spaces.
                let shown: String = text
                    .chars()
                    .map(|c| if c == '\t' { ' ' } else { c })
                    .collect();
                let col = loc.col.max(1);
                write!(f, "\n{pad} |\n{} | {shown}", loc.line)?;
                write!(
                    f,
                    "\n{pad} | {}{}",
                    " ".repeat(col - 1),
                    "^".repeat(loc.len.max(1))
                )?;
            }
        }
        if let Some(hint) = &self.hint {
            write!(f, "\n{pad} = hint: {hint}")?;
        }
        Ok(())
    }
}

/// An error: its class and what to tell the user.
#[derive(Debug, Clone)]
pub struct Error {
    pub kind: ErrorKind,
    pub diagnostics: Vec<Diagnostic>,
}

/// The largest config, definition or envfile cortado reads.
pub const MAX_INPUT_BYTES: u64 = 10 << 20;

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The bytes of the file at `path` when it holds at most `max` of them, else None. Never
/// reads more than `max + 1` bytes, whatever the file is (a regular file, a device, a FIFO).
pub fn read_bounded(path: &Path, max: u64) -> std::io::Result<Option<Vec<u8>>> {
    use std::io::Read;
    let file = std::fs::File::open(path)?;
    let mut bytes = Vec::new();
    file.take(max.saturating_add(1)).read_to_end(&mut bytes)?;
    Ok((bytes.len() as u64 <= max).then_some(bytes))
}

impl Error {
    pub fn new(kind: ErrorKind, diagnostic: Diagnostic) -> Self {
        Error {
            kind,
            diagnostics: vec![diagnostic],
        }
    }

    /// Bad input with a single diagnostic.
    pub fn input(diagnostic: Diagnostic) -> Self {
        Error::new(ErrorKind::BadInput, diagnostic)
    }

    /// Bad input with a plain message.
    pub fn bad_input(message: impl Into<String>) -> Self {
        Error::input(Diagnostic::error(message))
    }

    /// A request the service's state does not allow ([`ErrorKind::Conflict`]).
    pub fn conflict(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::Conflict, Diagnostic::error(message))
    }

    /// An answer from AWS that cortado cannot use.
    pub fn aws(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::Aws, Diagnostic::error(message))
    }

    /// Bad input with several findings.
    pub fn findings(diagnostics: Vec<Diagnostic>) -> Self {
        Error {
            kind: ErrorKind::BadInput,
            diagnostics,
        }
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::Internal, Diagnostic::error(message))
    }

    /// An I/O error on a named file.
    pub fn io(path: &Path, err: &std::io::Error, doing: &str) -> Self {
        let hint = match err.kind() {
            std::io::ErrorKind::NotFound => "check the path",
            std::io::ErrorKind::PermissionDenied => "check the file's permissions",
            _ => "check that the file is readable",
        };
        Error::input(
            Diagnostic::error(format!("cannot {doing} {}: {err}", path.display())).hint(hint),
        )
    }

    /// Reads a text file: I/O errors as [`Error::io`]; bytes that are not UTF-8 reported at
    /// the line and column of the first bad byte.
    pub fn read_text(path: &Path, doing: &str) -> Result<String> {
        // Read through a bound whatever the path is: a device such as /dev/zero, a FIFO or
        // a symlink to one has no size to check first.
        let Some(bytes) =
            read_bounded(path, MAX_INPUT_BYTES).map_err(|e| Error::io(path, &e, doing))?
        else {
            let size = std::fs::metadata(path)
                .ok()
                .filter(|m| m.is_file())
                .map(|m| format!("is {:.1} MiB", m.len() as f64 / (1 << 20) as f64))
                .unwrap_or_else(|| format!("holds more than {} MiB", MAX_INPUT_BYTES >> 20));
            return Err(Error::input(
                Diagnostic::error(format!(
                    "{} {size}; cortado reads input files of up to {} MiB",
                    path.display(),
                    MAX_INPUT_BYTES >> 20
                ))
                .at_file(path)
                .hint("check the path (ECS accepts task definitions of up to 64 KiB)"),
            ));
        };
        String::from_utf8(bytes).map_err(|e| {
            let at = e.utf8_error().valid_up_to();
            let bytes = e.into_bytes();
            let good = String::from_utf8_lossy(&bytes[..at]);
            let line = good.matches('\n').count() + 1;
            let col = good[good.rfind('\n').map_or(0, |i| i + 1)..]
                .chars()
                .count()
                + 1;
            let lossy = String::from_utf8_lossy(&bytes).into_owned();
            Error::input(
                Diagnostic::error(format!(
                    "{} is not UTF-8 text: invalid byte 0x{:02x} at line {line}, column {col}",
                    path.display(),
                    bytes[at]
                ))
                .at(Location::from_line_col(path, &lossy, line, col))
                .hint("save the file as UTF-8"),
            )
        })
    }

    pub fn exit_code(&self) -> ExitCode {
        self.kind.exit_code()
    }

    /// Adds a hint to the first diagnostic, when it has none.
    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        if let Some(d) = self.diagnostics.first_mut()
            && d.hint.is_none()
        {
            d.hint = Some(hint.into());
        }
        self
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.diagnostics.iter().enumerate() {
            if i > 0 {
                f.write_str("\n\n")?;
            }
            write!(f, "{d}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Error {}

/// The closest candidate to `name` by edit distance, when it is close enough to be a typo.
pub fn did_you_mean<'a>(
    name: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let lower = name.to_ascii_lowercase();
    let mut best: Option<(usize, &str)> = None;
    for c in candidates {
        let d = edit_distance(&lower, &c.to_ascii_lowercase());
        if best.is_none_or(|(bd, _)| d < bd) {
            best = Some((d, c));
        }
    }
    let (d, c) = best?;
    let limit = (name.chars().count() / 3).clamp(1, 4);
    (d <= limit).then_some(c)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for i in 1..=a.len() {
        cur[0] = i;
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            cur[j] = (prev[j] + 1).min(cur[j - 1] + 1).min(prev[j - 1] + cost);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

/// The sandbox crate's errors: bad input (a seed or state file, a port) unless the sandbox
/// itself failed.
impl From<cortado_sandbox::Error> for Error {
    fn from(e: cortado_sandbox::Error) -> Self {
        let mut d = Diagnostic::error(e.message);
        if let Some(p) = &e.file {
            d = d.at_file(p);
        }
        if let Some(h) = e.hint {
            d = d.hint(h);
        }
        if e.internal {
            Error::new(ErrorKind::Internal, d)
        } else {
            Error::input(d)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_without_a_size_are_read_through_the_bound() {
        // /dev/zero never ends and has no size: the read stops past the limit.
        let t0 = std::time::Instant::now();
        let e = Error::read_text(Path::new("/dev/zero"), "read envfile").unwrap_err();
        let text = e.to_string();
        assert!(text.contains("holds more than 10 MiB"), "{text}");
        assert!(t0.elapsed() < std::time::Duration::from_secs(30));
        // A symlink to it too.
        let dir = std::env::temp_dir().join(format!("cortado-bounded-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let link = dir.join("task.json");
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink("/dev/zero", &link).unwrap();
        assert!(Error::read_text(&link, "read").is_err());
        assert_eq!(read_bounded(&link, 5).unwrap(), None);
        std::fs::write(dir.join("small"), "abc").unwrap();
        assert_eq!(
            read_bounded(&dir.join("small"), 3).unwrap(),
            Some(b"abc".to_vec())
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn each_kind_says_what_happened_and_keeps_its_exit_class() {
        assert_eq!(Error::bad_input("x").exit_code(), ExitCode::BadInput);
        let conflict = Error::conflict("nothing to continue");
        assert_eq!(conflict.kind, ErrorKind::Conflict);
        assert_eq!(conflict.exit_code(), ExitCode::BadInput);
        assert_eq!(Error::aws("odd answer").exit_code(), ExitCode::Aws);
        assert_eq!(Error::internal("bug").exit_code(), ExitCode::Internal);
    }

    #[test]
    fn location_from_offset_counts_lines_and_chars() {
        let text = "{\n  \"famliy\": \"x\"\n}\n";
        let off = text.find("\"famliy\"").unwrap();
        let loc = Location::from_offset("t.json", text, off, 8);
        assert_eq!((loc.line, loc.col, loc.len), (2, 3, 8));
        assert_eq!(loc.line_text.as_deref(), Some("  \"famliy\": \"x\""));
    }

    #[test]
    fn location_past_end_is_clamped() {
        let loc = Location::from_offset("t", "ab", 99, 3);
        assert_eq!((loc.line, loc.col), (1, 3));
    }

    #[test]
    fn diagnostic_renders_snippet_and_hint() {
        let text = "a: 1\nfamliy: x\n";
        let d = Diagnostic::error("unknown key \"famliy\"")
            .at(Location::from_offset("c.yml", text, 5, 6))
            .hint("did you mean \"family\"?");
        let s = d.to_string();
        assert!(s.contains("--> c.yml:2:1"), "{s}");
        assert!(s.contains("2 | famliy: x"), "{s}");
        assert!(s.contains("  | ^^^^^^"), "{s}");
        assert!(s.ends_with("= hint: did you mean \"family\"?"), "{s}");
    }

    #[test]
    fn did_you_mean_finds_typos_only() {
        let names = ["family", "containerDefinitions", "cpu"];
        assert_eq!(did_you_mean("famliy", names), Some("family"));
        assert_eq!(
            did_you_mean("containerDefintions", names),
            Some("containerDefinitions")
        );
        assert_eq!(did_you_mean("zzzzzzzz", names), None);
    }
}
