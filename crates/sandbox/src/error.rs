//! The sandbox's own error: a message, an optional file it is about, an optional hint, and
//! whether it is the caller's input or the sandbox itself at fault. cortado turns it into its
//! own `Error` (see `impl From<cortado_sandbox::Error>` in cortado's `src/error.rs`).

use std::fmt;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq)]
pub struct Error {
    pub message: String,
    /// The file the message is about (a seed or state file), when there is one.
    pub file: Option<PathBuf>,
    /// What to do about it.
    pub hint: Option<String>,
    /// True when the sandbox itself failed (not its input).
    pub internal: bool,
}

impl Error {
    /// Bad input (a seed, a state file, a port) with a plain message.
    pub fn msg(message: impl Into<String>) -> Self {
        Error {
            message: message.into(),
            file: None,
            hint: None,
            internal: false,
        }
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Error {
            internal: true,
            ..Error::msg(message)
        }
    }

    /// An I/O error on a named file.
    pub fn io(path: &Path, err: &std::io::Error, doing: &str) -> Self {
        let hint = match err.kind() {
            std::io::ErrorKind::NotFound => "check the path",
            std::io::ErrorKind::PermissionDenied => "check the file's permissions",
            _ => "check that the file is readable",
        };
        Error::msg(format!("cannot {doing} {}: {err}", path.display())).with_hint(hint)
    }

    pub fn at_file(mut self, path: &Path) -> Self {
        self.file = Some(path.to_path_buf());
        self
    }

    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        if let Some(p) = &self.file {
            write!(f, " ({})", p.display())?;
        }
        if let Some(h) = &self.hint {
            write!(f, "\nhint: {h}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Error {}
