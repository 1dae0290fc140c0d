//! Settings: the command line (and its `CORTADO_*` environment variables) turned once into
//! plain values the core receives. Flag > environment > config file > default.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::config::{self, Config};
use crate::error::{Diagnostic, Error, Result};
use crate::release::Release;
use crate::render::RenderContext;
use crate::report::{Format, Printer};

/// The time compression of a sandbox unless told otherwise (`--sandbox-speed`, `serve --speed`).
pub(crate) const DEFAULT_SANDBOX_SPEED: f64 = 60.0;

/// Request throttling of a sandbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ThrottleMode {
    /// No bucket model (the random `throttleRate` fault still applies).
    Off,
    /// ECS's documented token buckets ("Request throttling for the Amazon ECS API").
    Aws,
}

/// Global settings of a run.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Config files given; empty means "find the default in the current folder".
    pub configs: Vec<PathBuf>,
    pub envfiles: Vec<PathBuf>,
    pub ext_str: Vec<(String, String)>,
    pub ext_code: Vec<(String, String)>,
    pub region: Option<String>,
    pub timeout: Option<Duration>,
    pub format: Format,
    /// `--output tsv` (ecspresso's): tab-separated rows from the commands that list
    /// (`tasks`, `revisions`); text from the others.
    pub tsv: bool,
    /// `--assume-role-arn`: the role every AWS call of the run is made as.
    pub assume_role_arn: Option<String>,
    pub no_color: bool,
    pub verbose: u8,
    /// Run against an embedded sandbox at this speed.
    pub sandbox: Option<f64>,
    /// `--release FILE`, read and checked.
    pub release_file: Option<Release>,
    /// The embedded sandbox enforces ECS's documented request buckets.
    pub sandbox_throttle: bool,
}

/// Where a global flag's value came from: `--NAME`, or its `CORTADO_NAME` environment variable
/// when the command line does not name the flag.
pub(crate) fn flag_source(name: &str, value: &str) -> String {
    let var = format!("CORTADO_{}", name.to_uppercase().replace('-', "_"));
    let flag = format!("--{name}");
    let on_command_line = std::env::args().any(|a| a == flag || a.starts_with(&format!("{flag}=")));
    if !on_command_line
        && std::env::var(&var).is_ok_and(|v| v == value || v.split(',').any(|p| p == value))
    {
        format!("{var} (the environment variable for {flag})")
    } else {
        flag
    }
}

/// Checks a file named on the command line (or in the flag's environment variable) before
/// anything reads it: when it cannot be read, the error names the flag and the path as given,
/// and says it is read from the current folder (paths written in a config file are read from
/// the config's folder instead). `what` says what the file is ("envfile", "config").
pub(crate) fn flag_file(flag: &str, what: &str, path: &Path) -> Result<()> {
    let problem = match std::fs::metadata(path) {
        Ok(m) if m.is_dir() => Some("it is a folder, not a file".to_string()),
        Ok(_) => std::fs::File::open(path).err().map(|e| e.to_string()),
        Err(e) => Some(e.to_string()),
    };
    let Some(problem) = problem else {
        return Ok(());
    };
    let source = flag_source(flag, &path.to_string_lossy());
    let hint = match std::env::current_dir() {
        Ok(dir) if path.is_relative() => format!(
            "check the path: a path given on the command line (or in its environment variable) is read from the current folder ({}), not from the config file's",
            dir.display()
        ),
        _ => "check the path".to_string(),
    };
    Err(Error::input(
        Diagnostic::error(format!(
            "cannot read {what} {} given by {source}: {problem}",
            path.display()
        ))
        .hint(hint),
    ))
}

impl Settings {
    /// The render context: environment plus envfiles, ext vars, standard functions. A
    /// release file's envfiles and ext vars come first; the command line's win over them.
    pub fn render_context(&self) -> Result<RenderContext> {
        let r = self.release_file.as_ref();
        let envfiles: Vec<PathBuf> = r
            .map_or(&[][..], |r| &r.envfiles[..])
            .iter()
            .chain(&self.envfiles)
            .cloned()
            .collect();
        for f in &self.envfiles {
            flag_file("envfile", "envfile", f)?;
        }
        let mut ctx = RenderContext::from_env(&envfiles)?;
        for secret in r
            .and_then(|r| r.notify.as_ref())
            .iter()
            .flat_map(|n| n.secrets())
        {
            ctx.secrets.add(secret);
        }
        let ext = |from_file: Option<&Vec<(String, String)>>, flags: &[(String, String)]| {
            let mut out: Vec<(String, String)> = from_file.cloned().unwrap_or_default();
            for (k, v) in flags {
                out.retain(|(ok, _)| ok != k);
                out.push((k.clone(), v.clone()));
            }
            out
        };
        ctx.ext_str = ext(r.map(|r| &r.ext_str), &self.ext_str);
        ctx.ext_code = ext(r.map(|r| &r.ext_code), &self.ext_code);
        Ok(ctx)
    }

    /// Settings with nothing given (every option at its default): a base to fill in.
    pub(crate) fn bare() -> Settings {
        Settings {
            configs: Vec::new(),
            envfiles: Vec::new(),
            ext_str: Vec::new(),
            ext_code: Vec::new(),
            region: None,
            timeout: None,
            format: Format::Text,
            tsv: false,
            assume_role_arn: None,
            no_color: false,
            verbose: 0,
            sandbox: None,
            release_file: None,
            sandbox_throttle: false,
        }
    }

    /// The release of this run: the release file's, or one step per config.
    pub fn release(&self) -> Result<Release> {
        match &self.release_file {
            Some(r) => Ok(r.clone()),
            None => Ok(Release::of_configs(&self.config_paths()?)),
        }
    }

    /// The config files of this run: the release file's, those given, or the default one.
    pub fn config_paths(&self) -> Result<Vec<PathBuf>> {
        if let Some(r) = &self.release_file {
            return Ok(r.config_paths());
        }
        if self.configs.is_empty() {
            return Ok(vec![config::find_default(std::path::Path::new(""))?]);
        }
        // Patterns (`services/*/cortado.yml`) are expanded here, sorted; a config named twice
        // (by two patterns, or a pattern and a path) is loaded once.
        let mut out: Vec<PathBuf> = Vec::new();
        for c in &self.configs {
            let text = c.to_string_lossy();
            let found = crate::pathglob::expand(&text).map_err(|e| {
                Error::input(Diagnostic::error(format!(
                    "cannot expand the config pattern {text:?}: {e}"
                )))
            })?;
            if found.is_empty() {
                return Err(Error::input(
                    Diagnostic::error(format!("no config file matches {text:?}")).hint(
                        "`*` and `?` match within one folder and `**` any folders; quote the pattern so that cortado expands it, not the shell",
                    ),
                ));
            }
            if !crate::pathglob::is_pattern(&text) {
                flag_file("config", "config", c)?;
            }
            for f in found {
                if !out.contains(&f) {
                    out.push(f);
                }
            }
        }
        Ok(out)
    }

    /// Loads every config with its plugins (see [`crate::render::plugins::load_with_plugins`]), printing their
    /// warnings.
    pub fn load_configs(
        &self,
        ctx: &RenderContext,
        printer: &Printer,
        lookups: &crate::render::plugins::Lookups,
    ) -> Result<Vec<(Config, RenderContext)>> {
        let mut out = Vec::new();
        for path in self.config_paths()? {
            let (cfg, ctx) = crate::render::plugins::load_with_plugins(ctx, &path, lookups)?;
            for w in &cfg.warnings {
                printer.diagnostic(w);
            }
            out.push((cfg, ctx));
        }
        Ok(out)
    }
}

pub(crate) fn key_values(flag: &str, items: &[String]) -> Result<Vec<(String, String)>> {
    items
        .iter()
        .map(|kv| match kv.split_once('=') {
            Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
            _ => Err(Error::input(
                Diagnostic::error(format!(
                    "{} {kv:?} is not KEY=VALUE",
                    flag_source(flag.trim_start_matches('-'), kv)
                ))
                .hint(format!("write {flag} NAME=VALUE")),
            )),
        })
        .collect()
}
