//! Output to people and machines. Everything cortado prints goes through a [`Printer`]:
//! results and JSON on stdout, diagnostics and progress on stderr.
//!
//! The printer is the sink of the process's own streams. Secret values are hidden before
//! anything is written (JSON values member by member, then every text through the masking
//! net); inside GitHub Actions every secret form is announced with `::add-mask::` before the
//! first line, and each stream gets its channel's escaping ([`escape`]): stdout text that
//! would run as a workflow command is wrapped in `::stop-commands::`, such lines on stderr are
//! made inert, and JSON never holds a `##[`.

pub(crate) mod diffview;
pub(crate) mod escape;
pub mod github;
pub(crate) mod lines;
pub(crate) mod live;
pub(crate) mod result;
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
    /// Inside GitHub Actions: the runner reads both streams for workflow commands.
    actions: bool,
    /// `--verbose`: each AWS request is named on stderr as it is made.
    verbose: u8,
}

impl Printer {
    /// `no_color` (the flag) and `NO_COLOR` turn colour off; it is on only on a terminal.
    pub fn new(format: Format, no_color: bool) -> Self {
        let no_color_env = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        Printer {
            format,
            color: !no_color && !no_color_env && std::io::stderr().is_terminal(),
            secrets: Secrets::default(),
            actions: github::is_actions(),
            verbose: 0,
        }
    }

    /// `--verbose` (repeated: more).
    pub fn set_verbose(&mut self, level: u8) {
        self.verbose = level;
    }

    /// How verbose the run is (0: not).
    pub fn verbose(&self) -> u8 {
        self.verbose
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

    /// Inside Actions, tells the runner to mask every secret form not announced yet. On
    /// stderr, which the runner reads as it reads stdout: stdout is often kept in a file
    /// (`diff --format markdown > plan.md`, `render > taskdef.json`), and a mask line carries
    /// the secret itself.
    pub fn announce(&self) {
        if !self.actions {
            return;
        }
        let text = github::add_masks(&self.secrets.unannounced());
        if !text.is_empty() {
            let _ = std::io::stderr().lock().write_all(text.as_bytes());
        }
    }

    /// `text` (masked) as the stdout channel takes it.
    fn for_stdout(&self, text: &str) -> String {
        let masked = self.secrets.mask(text);
        let text = match self.format {
            Format::Json => escape::json_guard(&masked),
            Format::Text => masked,
        };
        if self.actions {
            escape::actions_stdout(&text)
        } else if text.ends_with('\n') {
            text
        } else {
            text + "\n"
        }
    }

    /// A result on stdout.
    pub fn out(&self, text: &str) {
        self.announce();
        let text = self.for_stdout(text);
        let mut stdout = std::io::stdout().lock();
        let _ = stdout.write_all(text.as_bytes());
        let _ = stdout.flush();
    }

    /// A JSON result on stdout (pretty, 2-space indent), secrets masked member by member.
    pub fn out_json(&self, value: &Value) {
        let mut v = value.clone();
        self.secrets.mask_value(&mut v);
        self.out(&crate::render::to_pretty(&v));
    }

    /// One JSON line on stdout (events, the result line), secrets masked member by member.
    pub fn out_json_line(&self, value: &Value) {
        let mut v = value.clone();
        self.secrets.mask_value(&mut v);
        self.out(&serde_json::to_string(&v).unwrap_or_default());
    }

    /// `d` with secrets masked in everything it shows.
    fn masked(&self, d: &Diagnostic) -> Diagnostic {
        let mut d = d.clone();
        d.message = self.secrets.mask(&d.message);
        d.hint = d.hint.map(|h| self.secrets.mask(&h));
        if let Some(loc) = &mut d.location {
            loc.line_text = loc.line_text.take().map(|t| self.secrets.mask(&t));
        }
        d
    }

    /// A diagnostic on stderr; inside GitHub Actions (text output) also an annotation on
    /// stdout, at the file and line it names.
    pub fn diagnostic(&self, d: &Diagnostic) {
        self.announce();
        let d = self.masked(d);
        if self.format == Format::Text && self.actions {
            let command = github::annotation(&d).command();
            let mut stdout = std::io::stdout().lock();
            let _ = writeln!(stdout, "{command}");
        }
        let text = self.secrets.mask(&d.to_string());
        let text = if self.actions {
            escape::actions_stderr(&text)
        } else if self.color {
            let (word, code) = match d.severity {
                Severity::Error => ("error", "1;31"),
                Severity::Warning => ("warning", "1;33"),
                Severity::Note => ("note", "1;36"),
            };
            text.replacen(word, &format!("\x1b[{code}m{word}\x1b[0m"), 1) + "\n"
        } else {
            text + "\n"
        };
        let mut stderr = std::io::stderr().lock();
        let _ = writeln!(stderr, "{text}");
    }

    /// A workflow-command annotation on stdout (inside Actions with text output; nothing
    /// elsewhere), its message and title masked.
    pub fn annotate(&self, a: &github::Annotation) {
        if !self.actions || self.format != Format::Text {
            return;
        }
        self.announce();
        let a = github::Annotation {
            message: self.secrets.mask(&a.message),
            title: a.title.as_ref().map(|t| self.secrets.mask(t)),
            ..a.clone()
        };
        let mut stdout = std::io::stdout().lock();
        let _ = writeln!(stdout, "{}", a.command());
    }

    /// A line of progress or information on stderr.
    pub fn info(&self, text: &str) {
        self.announce();
        let masked = self.secrets.mask(text);
        let text = if self.actions {
            escape::actions_stderr(&masked)
        } else {
            masked + "\n"
        };
        let mut stderr = std::io::stderr().lock();
        let _ = stderr.write_all(text.as_bytes());
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
