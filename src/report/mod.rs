//! Output to people and machines. Everything cortado prints goes through a [`Printer`]:
//! results and JSON on stdout, diagnostics and progress on stderr, secret values masked.

pub mod diffview;
pub mod github;
pub mod lines;
pub mod live;
pub mod result;
pub mod timeline;

use std::io::{IsTerminal, Write};

use serde_json::{Value, json};

use crate::error::{Diagnostic, Severity};
use crate::render::Secrets;

/// How results are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Text,
    Json,
}

/// The one printer of a run.
#[derive(Debug, Clone)]
pub struct Printer {
    pub format: Format,
    color: bool,
    secrets: Secrets,
}

impl Printer {
    /// `no_color` (the flag) and `NO_COLOR` turn colour off; it is on only on a terminal.
    pub fn new(format: Format, no_color: bool) -> Self {
        let no_color_env = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        Printer {
            format,
            color: !no_color && !no_color_env && std::io::stderr().is_terminal(),
            secrets: Secrets::default(),
        }
    }

    /// Masks these secrets in everything printed from now on.
    pub fn set_secrets(&mut self, secrets: Secrets) {
        self.secrets = secrets;
    }

    /// The secrets this printer masks.
    pub fn secrets(&self) -> Secrets {
        self.secrets.clone()
    }

    /// Whether colour is on (stderr is a terminal and nobody turned it off).
    pub fn color(&self) -> bool {
        self.color
    }

    /// A result on stdout.
    pub fn out(&self, text: &str) {
        let mut stdout = std::io::stdout().lock();
        let _ = stdout.write_all(self.secrets.mask(text).as_bytes());
        if !text.ends_with('\n') {
            let _ = stdout.write_all(b"\n");
        }
        let _ = stdout.flush();
    }

    /// A JSON result on stdout (pretty, 2-space indent).
    pub fn out_json(&self, value: &Value) {
        self.out(&crate::render::to_pretty(value));
    }

    /// A diagnostic on stderr; inside GitHub Actions (text output) also an annotation on
    /// stdout, at the file and line it names.
    pub fn diagnostic(&self, d: &Diagnostic) {
        if self.format == Format::Text && github::is_actions() {
            let command = github::annotation(d).command();
            let mut stdout = std::io::stdout().lock();
            let _ = writeln!(stdout, "{}", self.secrets.mask(&command));
        }
        let text = self.secrets.mask(&d.to_string());
        let text = if self.color {
            let (word, code) = match d.severity {
                Severity::Error => ("error", "1;31"),
                Severity::Warning => ("warning", "1;33"),
                Severity::Note => ("note", "1;36"),
            };
            text.replacen(word, &format!("\x1b[{code}m{word}\x1b[0m"), 1)
        } else {
            text
        };
        let mut stderr = std::io::stderr().lock();
        let _ = writeln!(stderr, "{text}\n");
    }

    /// A line of progress or information on stderr.
    pub fn info(&self, text: &str) {
        let mut stderr = std::io::stderr().lock();
        let _ = writeln!(stderr, "{}", self.secrets.mask(text));
    }
}

/// A diagnostic as JSON, for `--output json`.
pub fn diagnostic_json(d: &Diagnostic) -> Value {
    let loc = d.location.as_ref();
    json!({
        "severity": d.severity.to_string(),
        "message": d.message,
        "file": loc.map(|l| l.path.display().to_string()),
        "line": loc.map(|l| l.line).filter(|l| *l > 0),
        "column": loc.map(|l| l.col).filter(|c| *c > 0),
        "hint": d.hint,
    })
}

/// A plain-text table: each column padded to its widest cell (in characters), columns two
/// spaces apart, the header first; every line ends with a newline, without trailing blanks.
pub fn table<const N: usize>(headers: [&str; N], rows: &[[String; N]]) -> String {
    let widths: Vec<usize> = (0..N)
        .map(|i| {
            rows.iter()
                .map(|r| r[i].chars().count())
                .chain([headers[i].chars().count()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |cells: &mut dyn Iterator<Item = &str>| {
        let mut l = cells
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect::<Vec<_>>()
            .join("  ");
        l.truncate(l.trim_end().len());
        l.push('\n');
        l
    };
    let mut out = line(&mut headers.iter().copied());
    for r in rows {
        out.push_str(&line(&mut r.iter().map(String::as_str)));
    }
    out
}
