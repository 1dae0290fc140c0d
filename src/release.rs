//! A release: the services of one run, their order and what a failure means for the others.
//!
//! Two ways in, one shape out ([`Release`]): a release file (`--release cortado-release.yml`)
//! naming steps with `after:` edges, one-off task steps and shared envfiles / ext vars; or the
//! configs given with `-c` (patterns expanded), each a step of its own with no order.
//!
//! The scheduler is pure ([`Schedule`]): given what has started and ended so far, it says
//! which steps start now (as many as keep at most `--parallel` in flight, in file order, only
//! those whose `after:` steps all succeeded) and which will never start, and why. The engine
//! asks it again each time a step ends.
//!
//! Release file (paths relative to the file; every key but `steps` optional):
//!
//! ```yaml
//! envfiles: [release.env]
//! ext_str: {ENV: production}
//! ext_code: {replicas: "2"}
//! parallel: 8
//! on_failure: rollback-failed   # or rollback-all, stop
//! steps:
//!   - name: migrate
//!     config: services/api/cortado.yml
//!     run: {command: [./migrate, up]}
//!   - name: api
//!     config: services/api/cortado.yml
//!     after: [migrate]
//!   - name: workers
//!     config: services/workers/*/cortado.yml
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use crate::config::schema::{EnvironmentKey, ReleaseKey, RunKey, StepKey};
use crate::error::{Diagnostic, Error, Result};
use crate::render::{self, Document, RenderContext};

/// `--parallel` when neither the flag nor the release file says: enough for a monorepo's
/// usual release at once, few enough that a systemic fault (a bad base image) is caught
/// before it reaches every service.
pub(crate) const DEFAULT_PARALLEL: usize = 16;

/// What a failed step means for the rest of the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum OnFailure {
    /// The failed service rolls back (as its config says); services that do not depend on
    /// it go on.
    #[default]
    RollbackFailed,
    /// All or nothing: no new step starts, and every service the run changed returns to the
    /// revision it ran before, those that succeeded included.
    RollbackAll,
    /// No new step starts; what already ran stays.
    Stop,
}

impl OnFailure {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "rollback-failed" => Some(OnFailure::RollbackFailed),
            "rollback-all" => Some(OnFailure::RollbackAll),
            "stop" => Some(OnFailure::Stop),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            OnFailure::RollbackFailed => "rollback-failed",
            OnFailure::RollbackAll => "rollback-all",
            OnFailure::Stop => "stop",
        }
    }
}

/// What a step does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Deploy the config's service.
    Deploy,
    /// Run a one-off task from the config's task definition (registered when it changed) and
    /// wait for it: exit code 0 is success.
    Run(RunStep),
}

/// A one-off task step (`run:`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunStep {
    pub command: Option<Vec<String>>,
    pub container: Option<String>,
    pub env: Vec<(String, String)>,
}

/// One step of a release: one config, deployed or run.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    /// The name `after:` refers to. Steps from one pattern share their step's name when it
    /// has one; else each is named by its config's folder.
    pub name: String,
    pub config: PathBuf,
    pub action: Action,
    /// Indexes of the steps this one waits for.
    pub after: Vec<usize>,
    /// `paths:`: patterns of the service's own sources, joined to the release file's folder
    /// (what `cortado affected` counts as the step's beside the files its config reads).
    pub paths: Vec<String>,
}

/// One environment of a release file: where and as whom the run deploys, and what its configs
/// render with (`--environment NAME`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Environment {
    pub region: Option<String>,
    pub assume_role_arn: Option<String>,
    pub envfiles: Vec<PathBuf>,
    pub ext_str: Vec<(String, String)>,
    pub ext_code: Vec<(String, String)>,
}

/// The steps of a run and its settings from the release file.
#[derive(Debug, Clone, Default)]
pub struct Release {
    /// The release file, when there is one.
    pub path: Option<PathBuf>,
    pub envfiles: Vec<PathBuf>,
    pub ext_str: Vec<(String, String)>,
    pub ext_code: Vec<(String, String)>,
    pub parallel: Option<usize>,
    pub on_failure: Option<OnFailure>,
    pub steps: Vec<Step>,
    /// `environments:` by name.
    pub environments: BTreeMap<String, Environment>,
    /// The environment chosen with `--environment`, already merged into the settings above.
    pub environment: Option<String>,
    /// `notify:`: who hears about the whole run (its values are secrets).
    pub notify: Option<crate::notify::Notify>,
}

impl Release {
    /// A release of plain configs: each deployed, in the order given, none waiting for another.
    pub fn of_configs(configs: &[PathBuf]) -> Release {
        Release {
            steps: configs
                .iter()
                .map(|c| Step {
                    name: c.display().to_string(),
                    config: c.clone(),
                    action: Action::Deploy,
                    after: Vec::new(),
                    paths: Vec::new(),
                })
                .collect(),
            ..Release::default()
        }
    }

    /// The configs whose services the release deploys (not those only run as one-off tasks),
    /// each once, in step order: what `diff` and `cost` look at.
    pub fn deployed_configs(&self) -> Vec<PathBuf> {
        let mut out: Vec<PathBuf> = Vec::new();
        for s in self.steps.iter().filter(|s| s.action == Action::Deploy) {
            if !out.contains(&s.config) {
                out.push(s.config.clone());
            }
        }
        out
    }

    /// The release with only the steps in `keep`, in their order. A kept step waits for the
    /// kept steps it waited for, directly or through steps left out (`api` after `migrate`
    /// still waits for it when `shared` between them is left out).
    pub fn only(&self, keep: &BTreeSet<usize>) -> Release {
        let new_index: BTreeMap<usize, usize> =
            keep.iter().enumerate().map(|(n, old)| (*old, n)).collect();
        let steps = keep
            .iter()
            .filter_map(|&i| {
                let mut after = BTreeSet::new();
                let mut seen = BTreeSet::new();
                let mut todo: Vec<usize> = self.steps.get(i)?.after.clone();
                while let Some(j) = todo.pop() {
                    if !seen.insert(j) {
                        continue;
                    }
                    match new_index.get(&j) {
                        Some(n) => {
                            after.insert(*n);
                        }
                        None => todo.extend(self.steps.get(j).map_or(&[][..], |s| &s.after[..])),
                    }
                }
                let mut step = self.steps[i].clone();
                step.after = after.into_iter().collect();
                Some(step)
            })
            .collect();
        Release {
            steps,
            ..self.clone()
        }
    }

    /// Only the steps of `configs` (paths or expanded patterns), in the release's order, each
    /// waiting for the kept steps it waited for. A config that is no step's is refused.
    pub(crate) fn of_configs_given(&self, configs: &[PathBuf]) -> Result<Release> {
        let abs = |p: &Path| crate::pathglob::absolute(p);
        let ours: Vec<PathBuf> = self.steps.iter().map(|s| abs(&s.config)).collect();
        let mut keep = BTreeSet::new();
        let mut missing = Vec::new();
        for c in configs {
            let c_abs = abs(c);
            let before = keep.len();
            keep.extend(
                ours.iter()
                    .enumerate()
                    .filter(|(_, o)| **o == c_abs)
                    .map(|(i, _)| i),
            );
            if keep.len() == before && !ours.contains(&c_abs) {
                missing.push(c.display().to_string());
            }
        }
        if !missing.is_empty() {
            let file = self
                .path
                .as_deref()
                .map_or_else(|| "the release".to_string(), |p| p.display().to_string());
            return Err(Error::input(
                Diagnostic::error(format!(
                    "--config names {} which no step of {file} deploys or runs",
                    missing.join(", ")
                ))
                .hint("with --release, --config chooses among the release's steps; paths are read from the current folder"),
            ));
        }
        Ok(self.only(&keep))
    }

    /// Chooses environment `name`: its envfiles come after the release's, its ext vars over
    /// the release's. Returns it for what the run's settings take from it (region, role).
    pub(crate) fn choose_environment(&mut self, name: &str) -> Result<Environment> {
        let Some(env) = self.environments.get(name).cloned() else {
            let file = self.path.as_deref().map_or_else(
                || "the release file".to_string(),
                |p| p.display().to_string(),
            );
            let hint = match crate::error::did_you_mean(
                name,
                self.environments.keys().map(String::as_str),
            ) {
                Some(s) => format!("did you mean {s:?}?"),
                None if self.environments.is_empty() => {
                    "add it under `environments:` in the release file".to_string()
                }
                None => format!(
                    "environments: {}",
                    self.environments
                        .keys()
                        .cloned()
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            };
            return Err(Error::input(
                Diagnostic::error(format!("{file} has no environment {name:?}")).hint(hint),
            ));
        };
        self.envfiles.extend(env.envfiles.iter().cloned());
        for (from, into) in [
            (&env.ext_str, &mut self.ext_str),
            (&env.ext_code, &mut self.ext_code),
        ] {
            for (k, v) in from {
                into.retain(|(ok, _)| ok != k);
                into.push((k.clone(), v.clone()));
            }
        }
        self.environment = Some(name.to_string());
        Ok(env)
    }

    /// Every config the release reads, each once, in step order.
    pub fn config_paths(&self) -> Vec<PathBuf> {
        let mut out: Vec<PathBuf> = Vec::new();
        for s in &self.steps {
            if !out.contains(&s.config) {
                out.push(s.config.clone());
            }
        }
        out
    }
}

/// Reads a release file. Every finding is collected and located (file:line); patterns are
/// expanded relative to the file; names, `after:` references and cycles are checked.
pub(crate) fn load(path: &Path) -> Result<Release> {
    // The release file itself is rendered with the process environment only: its own
    // envfiles are for the configs.
    if !path.is_file() {
        return Err(Error::input(
            Diagnostic::error(format!("release file {} does not exist", path.display())).hint(
                "--release takes a release file (see the README's \"Releases\"); -c takes configs",
            ),
        ));
    }
    let ctx = RenderContext::from_env(&[])?;
    let doc = render::load(&ctx, path)?;
    parse(&doc)
}

fn err(doc: &Document, pointer: &str, message: impl Into<String>) -> Diagnostic {
    Diagnostic::error(message).at(doc.locate(pointer))
}

/// A step as written, before names are resolved.
struct Written {
    name: Option<String>,
    pointer: String,
    configs: Vec<PathBuf>,
    after: Vec<(String, String)>,
    action: Action,
    paths: Vec<String>,
}

/// Parses a loaded release document (see the module docs for the shape).
pub(crate) fn parse(doc: &Document) -> Result<Release> {
    let dir = doc.path.parent().unwrap_or(Path::new("")).to_path_buf();
    let mut errors: Vec<Diagnostic> = Vec::new();
    let mut out = Release {
        path: Some(doc.path.clone()),
        ..Release::default()
    };
    let Some(obj) = doc.value.as_object() else {
        return Err(Error::input(
            err(doc, "", "a release file is a mapping with `steps:`")
                .hint("see the README's \"Releases\" section for an example"),
        ));
    };
    // A config given where a release file is expected: one clear error, not one per key.
    if !obj.contains_key("steps")
        && [
            "task_definition",
            "service",
            "cluster",
            "express_definition",
        ]
        .iter()
        .any(|k| obj.contains_key(*k))
    {
        return Err(Error::input(
            err(
                doc,
                "",
                "this is a service config, not a release file (it has no `steps:`)",
            )
            .hint(format!(
                "deploy a config with -c {}; a release file lists configs under `steps:`",
                doc.path.display()
            )),
        ));
    }
    ReleaseKey::SECTION.check(doc, "", obj, &mut errors);
    read_settings(doc, &dir, obj, &mut out, &mut errors);
    let written = match obj.get("steps").map(|v| (v, v.as_array())) {
        None => {
            errors.push(err(doc, "", "the release file has no `steps:`"));
            Vec::new()
        }
        Some((_, Some(items))) if !items.is_empty() => items
            .iter()
            .enumerate()
            .filter_map(|(i, s)| step(doc, &dir, i, s, &mut errors))
            .collect(),
        Some(_) => {
            errors.push(err(doc, "/steps", "`steps` is a non-empty list"));
            Vec::new()
        }
    };
    if errors.is_empty() {
        out.steps = resolve(doc, written, &mut errors);
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(Error::findings(errors))
    }
}

/// The release file's settings beside its steps: envfiles, Jsonnet variables, parallelism
/// and the failure policy.
fn read_settings(
    doc: &Document,
    dir: &Path,
    obj: &Map<String, Value>,
    out: &mut Release,
    errors: &mut Vec<Diagnostic>,
) {
    envfiles(doc, dir, "", obj, &mut out.envfiles, errors);
    if let Some(v) = obj.get("environments") {
        match v.as_object() {
            Some(m) => {
                for (name, e) in m {
                    let at = format!("/environments/{}", render::spans::escape_token(name));
                    if !valid_name(name) {
                        errors.push(
                            err(doc, &at, format!("environment name {name:?} is not a word"))
                                .hint("letters, digits, '-', '_' and '.'"),
                        );
                    }
                    if let Some(env) = environment(doc, dir, &at, e, errors) {
                        out.environments.insert(name.clone(), env);
                    }
                }
            }
            None => errors.push(
                err(
                    doc,
                    "/environments",
                    "`environments` is a mapping of NAME: settings",
                )
                .hint("environments: {staging: {region: eu-west-1}}"),
            ),
        }
    }
    ext_vars(doc, "", obj, &mut out.ext_str, &mut out.ext_code, errors);
    if let Some(v) = obj.get("parallel") {
        match v.as_u64().filter(|n| *n >= 1) {
            Some(n) => out.parallel = Some(usize::try_from(n).unwrap_or(usize::MAX)),
            None => errors.push(err(doc, "/parallel", "`parallel` is a whole number >= 1")),
        }
    }
    out.notify = crate::notify::parse(doc, "/notify", obj.get("notify"), errors);
    if let Some(v) = obj.get("on_failure") {
        match v.as_str().and_then(OnFailure::parse) {
            Some(p) => out.on_failure = Some(p),
            None => errors.push(
                err(doc, "/on_failure", format!("unknown on_failure {v}"))
                    .hint("one of rollback-failed, rollback-all, stop"),
            ),
        }
    }
}

/// `envfiles:` of the mapping at pointer `at`: paths relative to the release file.
fn envfiles(
    doc: &Document,
    dir: &Path,
    at: &str,
    obj: &Map<String, Value>,
    into: &mut Vec<PathBuf>,
    errors: &mut Vec<Diagnostic>,
) {
    let Some(v) = obj.get("envfiles") else { return };
    match v.as_array() {
        Some(items) => {
            for (i, f) in items.iter().enumerate() {
                match f.as_str().filter(|s| !s.is_empty()) {
                    Some(s) => into.push(dir.join(s)),
                    None => errors.push(err(
                        doc,
                        &format!("{at}/envfiles/{i}"),
                        "an envfile is a path (a string)",
                    )),
                }
            }
        }
        None => errors.push(err(
            doc,
            &format!("{at}/envfiles"),
            "`envfiles` is a list of paths",
        )),
    }
}

/// `ext_str:` and `ext_code:` of the mapping at pointer `at`.
fn ext_vars(
    doc: &Document,
    at: &str,
    obj: &Map<String, Value>,
    ext_str: &mut Vec<(String, String)>,
    ext_code: &mut Vec<(String, String)>,
    errors: &mut Vec<Diagnostic>,
) {
    for (key, into) in [("ext_str", ext_str), ("ext_code", ext_code)] {
        let Some(v) = obj.get(key) else { continue };
        match v.as_object() {
            Some(m) => {
                for (k, v) in m {
                    match scalar(v) {
                        Some(s) => into.push((k.clone(), s)),
                        None => errors.push(err(
                            doc,
                            &format!("{at}/{key}/{}", render::spans::escape_token(k)),
                            format!("`{key}` values are strings"),
                        )),
                    }
                }
            }
            None => errors.push(err(
                doc,
                &format!("{at}/{key}"),
                format!("`{key}` is a mapping of NAME: value"),
            )),
        }
    }
}

/// One environment (`environments.NAME`), checked.
fn environment(
    doc: &Document,
    dir: &Path,
    at: &str,
    v: &Value,
    errors: &mut Vec<Diagnostic>,
) -> Option<Environment> {
    let Some(obj) = v.as_object() else {
        errors.push(
            err(doc, at, "an environment is a mapping").hint(
                "{region: eu-west-1, assume_role_arn: arn:aws:iam::111122223333:role/deploy}",
            ),
        );
        return None;
    };
    let before = errors.len();
    EnvironmentKey::SECTION.check(doc, at, obj, errors);
    let mut env = Environment::default();
    let text = |key: &str, errors: &mut Vec<Diagnostic>| match obj.get(key) {
        None => None,
        Some(Value::String(s)) if !s.trim().is_empty() => Some(s.trim().to_string()),
        Some(_) => {
            errors.push(err(
                doc,
                &format!("{at}/{key}"),
                format!("`{key}` is a non-empty string"),
            ));
            None
        }
    };
    env.region = text(EnvironmentKey::Region.key(), errors);
    env.assume_role_arn = text(EnvironmentKey::AssumeRoleArn.key(), errors);
    if let Some(arn) = &env.assume_role_arn
        && !is_role_arn(arn)
    {
        errors.push(
            err(
                doc,
                &format!("{at}/assume_role_arn"),
                format!("{arn:?} is not an IAM role ARN"),
            )
            .hint("arn:aws:iam::ACCOUNT:role/NAME (ACCOUNT: 12 digits)"),
        );
    }
    envfiles(doc, dir, at, obj, &mut env.envfiles, errors);
    ext_vars(doc, at, obj, &mut env.ext_str, &mut env.ext_code, errors);
    (errors.len() == before).then_some(env)
}

/// `arn:PARTITION:iam::ACCOUNT:role/NAME`, ACCOUNT 12 digits.
fn is_role_arn(arn: &str) -> bool {
    let mut parts = arn.splitn(6, ':');
    let (Some("arn"), Some(partition), Some("iam"), Some(""), Some(account), Some(resource)) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return false;
    };
    !partition.is_empty()
        && account.len() == 12
        && account.chars().all(|c| c.is_ascii_digit())
        && resource
            .strip_prefix("role/")
            .is_some_and(|n| !n.is_empty())
}

fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn step(
    doc: &Document,
    dir: &Path,
    i: usize,
    v: &Value,
    errors: &mut Vec<Diagnostic>,
) -> Option<Written> {
    let at = format!("/steps/{i}");
    let Some(obj) = v.as_object() else {
        errors.push(err(doc, &at, "a step is a mapping with `config:`"));
        return None;
    };
    let before = errors.len();
    StepKey::SECTION.check(doc, &at, obj, errors);
    let name = match obj.get("name") {
        None => None,
        Some(Value::String(s)) if valid_name(s) => Some(s.clone()),
        Some(_) => {
            errors.push(
                err(doc, &format!("{at}/name"), "a step name is a word")
                    .hint("letters, digits, '-', '_' and '.'"),
            );
            None
        }
    };
    let configs = step_configs(doc, dir, &at, obj, errors);
    let after = step_after(doc, &at, obj, errors);
    let paths = step_paths(doc, dir, &at, obj, errors);
    let action = match obj.get("run") {
        None => Action::Deploy,
        Some(r) => Action::Run(run_step(doc, &format!("{at}/run"), r, errors)),
    };
    if let Action::Run(_) = action
        && configs.len() > 1
    {
        errors.push(err(
            doc,
            &format!("{at}/config"),
            "a `run:` step takes one config, not a pattern",
        ));
    }
    (errors.len() == before).then_some(Written {
        name,
        pointer: at,
        configs,
        after,
        action,
        paths,
    })
}

/// A step's `paths:`: patterns of the service's own sources, relative to the release file.
fn step_paths(
    doc: &Document,
    dir: &Path,
    at: &str,
    obj: &Map<String, Value>,
    errors: &mut Vec<Diagnostic>,
) -> Vec<String> {
    let items: Vec<(String, &Value)> = match obj.get("paths") {
        None => return Vec::new(),
        Some(v @ Value::String(_)) => vec![(format!("{at}/paths"), v)],
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(j, v)| (format!("{at}/paths/{j}"), v))
            .collect(),
        Some(_) => {
            errors.push(
                err(
                    doc,
                    &format!("{at}/paths"),
                    "`paths` is a list of path patterns",
                )
                .hint("paths: [src/api/**]"),
            );
            return Vec::new();
        }
    };
    let mut out = Vec::new();
    for (pointer, v) in items {
        match v.as_str().map(str::trim).filter(|s| !s.is_empty()) {
            Some(p) if Path::new(p).is_absolute() => errors.push(
                err(doc, &pointer, format!("{p:?} is absolute"))
                    .hint("`paths` are relative to the release file"),
            ),
            Some(p) => out.push(dir.join(p).to_string_lossy().into_owned()),
            None => errors.push(err(doc, &pointer, "a path pattern is a non-empty string")),
        }
    }
    out
}

/// A step's `config:`: the config files its path or pattern names (relative to the release
/// file).
fn step_configs(
    doc: &Document,
    dir: &Path,
    at: &str,
    obj: &Map<String, Value>,
    errors: &mut Vec<Diagnostic>,
) -> Vec<PathBuf> {
    match obj.get("config").and_then(Value::as_str) {
        Some(c) if !c.is_empty() => {
            let pattern = dir.join(c);
            match crate::pathglob::expand(&pattern.to_string_lossy()) {
                Ok(found) if found.is_empty() => {
                    errors.push(
                        err(
                            doc,
                            &format!("{at}/config"),
                            format!("no config file matches {c:?}"),
                        )
                        .hint("paths and patterns are relative to the release file"),
                    );
                    Vec::new()
                }
                Ok(found) => {
                    if let [one] = found.as_slice()
                        && !one.exists()
                    {
                        errors.push(
                            err(
                                doc,
                                &format!("{at}/config"),
                                format!("config file {c:?} does not exist"),
                            )
                            .hint("paths are relative to the release file"),
                        );
                    }
                    found
                }
                Err(e) => {
                    errors.push(err(
                        doc,
                        &format!("{at}/config"),
                        format!("cannot expand {c:?}: {e}"),
                    ));
                    Vec::new()
                }
            }
        }
        _ => {
            errors.push(err(doc, at, "a step needs `config:` (a path or a pattern)"));
            Vec::new()
        }
    }
}

/// A step's `after:`: the step names it waits for, each with where it was written.
fn step_after(
    doc: &Document,
    at: &str,
    obj: &Map<String, Value>,
    errors: &mut Vec<Diagnostic>,
) -> Vec<(String, String)> {
    let mut after = Vec::new();
    match obj.get("after") {
        None => {}
        Some(Value::Array(items)) => {
            for (j, a) in items.iter().enumerate() {
                match a {
                    Value::String(s) => after.push((s.to_string(), format!("{at}/after/{j}"))),
                    Value::Bool(_) | Value::Number(_) => errors.push(
                        err(
                            doc,
                            &format!("{at}/after/{j}"),
                            format!("`after` lists step names; this one reads as {a}"),
                        )
                        .hint("quote it (YAML reads y, yes, on and numbers as other types)"),
                    ),
                    _ => errors.push(err(
                        doc,
                        &format!("{at}/after/{j}"),
                        "`after` lists step names",
                    )),
                }
            }
        }
        Some(Value::String(s)) => after.push((s.clone(), format!("{at}/after"))),
        Some(_) => errors.push(err(doc, &format!("{at}/after"), "`after` lists step names")),
    }
    after
}

fn run_step(doc: &Document, at: &str, v: &Value, errors: &mut Vec<Diagnostic>) -> RunStep {
    let mut out = RunStep::default();
    let obj = match v {
        Value::Object(o) => o,
        // `run: {}` and `run: true` both mean the task definition's own command.
        Value::Bool(true) => return out,
        _ => {
            errors.push(
                err(doc, at, "`run` is a mapping (command, container, env)")
                    .hint("run: {command: [./migrate, up]}"),
            );
            return out;
        }
    };
    RunKey::SECTION.check(doc, at, obj, errors);
    match obj.get("command") {
        None => {}
        Some(Value::Array(words)) if !words.is_empty() => {
            let w: Vec<String> = words.iter().filter_map(scalar).collect();
            if w.len() == words.len() {
                out.command = Some(w);
            } else {
                errors.push(err(
                    doc,
                    &format!("{at}/command"),
                    "command words are strings",
                ));
            }
        }
        Some(Value::String(s)) => match shlex::split(s) {
            Some(w) if !w.is_empty() => out.command = Some(w),
            _ => errors.push(
                err(
                    doc,
                    &format!("{at}/command"),
                    format!("command {s:?} cannot be split into words"),
                )
                .hint("write it as a list: [sh, -c, \"./migrate up\"]"),
            ),
        },
        Some(_) => errors.push(err(
            doc,
            &format!("{at}/command"),
            "`command` is a list of words (or one string split like a shell)",
        )),
    }
    match obj.get("container") {
        None => {}
        Some(Value::String(s)) if !s.is_empty() => out.container = Some(s.clone()),
        Some(_) => errors.push(err(
            doc,
            &format!("{at}/container"),
            "`container` is a name",
        )),
    }
    match obj.get("env") {
        None => {}
        Some(Value::Object(m)) => {
            for (k, v) in m {
                match scalar(v) {
                    Some(s) => out.env.push((k.clone(), s)),
                    None => errors.push(err(
                        doc,
                        &format!("{at}/env/{}", render::spans::escape_token(k)),
                        "`env` values are strings",
                    )),
                }
            }
        }
        Some(_) => errors.push(err(
            doc,
            &format!("{at}/env"),
            "`env` is a mapping NAME: value",
        )),
    }
    out
}

fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// The name of an unnamed step's config: its folder (`services/api/cortado.yml` -> `api`), else
/// the file's stem.
fn folder_name(config: &Path) -> String {
    config
        .parent()
        .and_then(Path::file_name)
        .or_else(|| config.file_stem())
        .map_or_else(
            || config.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        )
}

/// Names resolved, `after:` turned into step indexes, cycles refused.
fn resolve(doc: &Document, written: Vec<Written>, errors: &mut Vec<Diagnostic>) -> Vec<Step> {
    let mut steps: Vec<Step> = Vec::new();
    // Per step: where it was written (for errors) and the written step it came from.
    let mut origin: Vec<usize> = Vec::new();
    let mut by_name: BTreeMap<String, (usize, Vec<usize>)> = BTreeMap::new();
    for (w, ws) in written.iter().enumerate() {
        for c in &ws.configs {
            let name = ws.name.clone().unwrap_or_else(|| folder_name(c));
            let entry = by_name.entry(name.clone()).or_insert((w, Vec::new()));
            if entry.0 != w {
                errors.push(
                    err(
                        doc,
                        &ws.pointer,
                        format!(
                            "two steps are named {name:?} (steps {} and {})",
                            entry.0 + 1,
                            w + 1
                        ),
                    )
                    .hint("give one of them a `name:`"),
                );
                continue;
            }
            entry.1.push(steps.len());
            steps.push(Step {
                name,
                config: c.clone(),
                action: ws.action.clone(),
                after: Vec::new(),
                paths: ws.paths.clone(),
            });
            origin.push(w);
        }
    }
    check_deployed_once(doc, &steps, &written, &origin, errors);
    for i in 0..steps.len() {
        let ws = &written[origin[i]];
        let mut after = BTreeSet::new();
        for (name, pointer) in &ws.after {
            match by_name.get(name) {
                Some((w, _)) if *w == origin[i] => errors.push(err(
                    doc,
                    pointer,
                    format!("step {name:?} cannot wait for itself"),
                )),
                Some((_, members)) => after.extend(members.iter().copied()),
                None => {
                    let mut d = err(
                        doc,
                        pointer,
                        format!("`after` names {name:?}, which is no step of this release"),
                    );
                    d.hint = Some(
                        match crate::error::did_you_mean(name, by_name.keys().map(String::as_str)) {
                            Some(s) => format!("did you mean {s:?}?"),
                            None => format!(
                                "steps: {}",
                                by_name.keys().cloned().collect::<Vec<_>>().join(", ")
                            ),
                        },
                    );
                    errors.push(d);
                }
            }
        }
        steps[i].after = after.into_iter().collect();
    }
    if errors.is_empty()
        && let Some(cycle) = find_cycle(&steps)
    {
        let names: Vec<&str> = cycle.iter().map(|i| steps[*i].name.as_str()).collect();
        errors.push(
            err(
                doc,
                &written[origin[cycle[0]]].pointer,
                format!(
                    "the steps wait for each other in a circle: {}",
                    names.join(" -> ")
                ),
            )
            .hint("remove one of these `after:` entries"),
        );
    }
    steps
}

/// A config deployed by two steps would be deployed twice in one run: refused.
fn check_deployed_once(
    doc: &Document,
    steps: &[Step],
    written: &[Written],
    origin: &[usize],
    errors: &mut Vec<Diagnostic>,
) {
    let mut deployed: BTreeMap<&Path, usize> = BTreeMap::new();
    for (i, s) in steps.iter().enumerate() {
        if s.action == Action::Deploy
            && let Some(first) = deployed.insert(&s.config, i)
        {
            errors.push(err(
                doc,
                &written[origin[i]].pointer,
                format!(
                    "{} is deployed by two steps ({:?} and {:?})",
                    s.config.display(),
                    steps[first].name,
                    s.name
                ),
            ));
        }
    }
}

/// A cycle of `after:` edges, as step indexes from its first step back to it, if any.
fn find_cycle(steps: &[Step]) -> Option<Vec<usize>> {
    // 0 unvisited, 1 on the current path, 2 done.
    fn visit(
        i: usize,
        steps: &[Step],
        mark: &mut [u8],
        path: &mut Vec<usize>,
    ) -> Option<Vec<usize>> {
        mark[i] = 1;
        path.push(i);
        for &j in &steps[i].after {
            if mark[j] == 1 {
                let from = path.iter().position(|p| *p == j).unwrap_or(0);
                let mut cycle = path[from..].to_vec();
                cycle.push(j);
                return Some(cycle);
            }
            if mark[j] == 0
                && let Some(c) = visit(j, steps, mark, path)
            {
                return Some(c);
            }
        }
        path.pop();
        mark[i] = 2;
        None
    }
    let mut mark = vec![0u8; steps.len()];
    for i in 0..steps.len() {
        if mark[i] == 0
            && let Some(c) = visit(i, steps, &mut mark, &mut Vec::new())
        {
            return Some(c);
        }
    }
    None
}

/// How a step ended, as far as the schedule cares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Ended {
    Succeeded,
    Failed,
    /// Never started; the reason is for the report.
    Skipped(String),
}

/// What the scheduler says next.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Wave {
    /// Steps to start now (indexes, in file order).
    pub start: Vec<usize>,
    /// Steps that will never start, with why.
    pub skip: Vec<(usize, String)>,
}

/// The pure scheduler of a release: which steps start next, given how the others ended.
#[derive(Debug, Clone)]
pub(crate) struct Schedule<'a> {
    steps: &'a [Step],
    /// What a step is called in messages (its service's name, for a deploy step).
    names: Vec<String>,
    parallel: usize,
    policy: OnFailure,
    ended: Vec<Option<Ended>>,
    /// Steps handed out by [`Schedule::next_wave`] (in flight until [`Schedule::ended`]).
    started: Vec<bool>,
}

impl<'a> Schedule<'a> {
    /// `names`: what each step is called in messages (the step's name when it has none).
    pub(crate) fn new(
        steps: &'a [Step],
        names: Vec<String>,
        parallel: usize,
        policy: OnFailure,
    ) -> Self {
        let names = (0..steps.len())
            .map(|i| {
                names
                    .get(i)
                    .cloned()
                    .unwrap_or_else(|| steps[i].name.clone())
            })
            .collect();
        Schedule {
            steps,
            names,
            parallel: parallel.max(1),
            policy,
            ended: vec![None; steps.len()],
            started: vec![false; steps.len()],
        }
    }

    /// Steps started and not ended yet.
    pub(crate) fn in_flight(&self) -> usize {
        (0..self.steps.len())
            .filter(|&i| self.started[i] && self.ended[i].is_none())
            .count()
    }

    /// Records how a started step ended.
    pub(crate) fn ended(&mut self, step: usize, how: Ended) {
        self.ended[step] = Some(how);
    }

    /// What to do now: skips first (dependents of a failed or skipped step; every step not
    /// started once a step failed under `stop` or `rollback-all`), then the ready steps, as many
    /// as keep at most `parallel` in flight; those count as started. Empty while the steps in
    /// flight hold every slot or what is left waits for them; empty with nothing in flight
    /// means the release is over.
    pub(crate) fn next_wave(&mut self) -> Wave {
        let mut wave = Wave::default();
        let first_failure = self
            .ended
            .iter()
            .position(|e| e == &Some(Ended::Failed))
            .map(|i| self.names[i].clone());
        loop {
            let mut skipped_any = false;
            for i in 0..self.steps.len() {
                if self.ended[i].is_some() || self.started[i] {
                    continue;
                }
                let why = if let (Some(failed), OnFailure::Stop | OnFailure::RollbackAll) =
                    (&first_failure, self.policy)
                {
                    Some(format!(
                        "not started: {failed} failed and the release stops (--on-failure {})",
                        self.policy.name()
                    ))
                } else {
                    self.steps[i]
                        .after
                        .iter()
                        .find_map(|&d| match &self.ended[d] {
                            Some(Ended::Failed) => {
                                Some(format!("not started: {} failed", self.names[d]))
                            }
                            Some(Ended::Skipped(_)) => {
                                Some(format!("not started: {} did not run", self.names[d]))
                            }
                            _ => None,
                        })
                };
                if let Some(why) = why {
                    self.ended[i] = Some(Ended::Skipped(why.clone()));
                    wave.skip.push((i, why));
                    skipped_any = true;
                }
            }
            if !skipped_any {
                break;
            }
        }
        let free = self.parallel.saturating_sub(self.in_flight());
        for i in 0..self.steps.len() {
            if wave.start.len() == free {
                break;
            }
            let ready = self.ended[i].is_none()
                && !self.started[i]
                && self.steps[i]
                    .after
                    .iter()
                    .all(|&d| self.ended[d] == Some(Ended::Succeeded));
            if ready {
                self.started[i] = true;
                wave.start.push(i);
            }
        }
        wave
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(name: &str, after: &[usize]) -> Step {
        Step {
            name: name.into(),
            config: PathBuf::from(format!("{name}/cortado.yml")),
            action: Action::Deploy,
            after: after.to_vec(),
            paths: Vec::new(),
        }
    }

    fn doc(dir: &Path, text: &str) -> Result<Release> {
        let path = dir.join("cortado-release.yml");
        std::fs::write(&path, text).unwrap();
        load(&path)
    }

    fn tree(names: &[&str]) -> tempdir::Dir {
        let d = tempdir::Dir::new();
        for n in names {
            std::fs::create_dir_all(d.0.join(n)).unwrap();
            std::fs::write(d.0.join(n).join("cortado.yml"), "service: x\n").unwrap();
        }
        d
    }

    mod tempdir {
        pub(super) struct Dir(pub std::path::PathBuf);
        impl Dir {
            pub(super) fn new() -> Self {
                static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
                let p = std::env::temp_dir().join(format!(
                    "cortado-release-{}-{}",
                    std::process::id(),
                    N.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
                ));
                let _ = std::fs::remove_dir_all(&p);
                std::fs::create_dir_all(&p).unwrap();
                Dir(p)
            }
        }
        impl Drop for Dir {
            fn drop(&mut self) {
                let _ = std::fs::remove_dir_all(&self.0);
            }
        }
    }

    #[test]
    fn notify_is_read_and_a_misspelt_target_key_is_a_located_error() {
        let d = tree(&["web"]);
        let ok = doc(
            &d.0,
            "steps:\n  - config: web/cortado.yml\nnotify:\n  webhook: {url: https://example.com/h}\n",
        )
        .unwrap();
        let n = ok.notify.expect("notify");
        assert_eq!(n.secrets(), ["https://example.com/h"]);
        let err = doc(
            &d.0,
            "steps:\n  - config: web/cortado.yml\nnotify:\n  webhook: {ulr: https://example.com/h}\n",
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("unknown key \"ulr\" in `notify.webhook`"),
            "{err}"
        );
        assert!(err.contains(":4:"), "located at its line: {err}");
        assert!(err.contains("known keys: url, headers"), "{err}");
    }

    #[test]
    fn waves_follow_after_and_the_parallel_bound() {
        // migrate -> api -> web; w1, w2, w3 free.
        let steps = vec![
            step("migrate", &[]),
            step("api", &[0]),
            step("web", &[1]),
            step("w1", &[]),
            step("w2", &[]),
            step("w3", &[]),
        ];
        let mut s = Schedule::new(&steps, Vec::new(), 3, OnFailure::RollbackFailed);
        let w = s.next_wave();
        assert_eq!(w.start, vec![0, 3, 4]);
        for i in w.start {
            s.ended(i, Ended::Succeeded);
        }
        assert_eq!(s.next_wave().start, vec![1, 5]);
        s.ended(1, Ended::Succeeded);
        s.ended(5, Ended::Succeeded);
        assert_eq!(s.next_wave().start, vec![2]);
        s.ended(2, Ended::Succeeded);
        assert_eq!(s.next_wave(), Wave::default());
    }

    #[test]
    fn a_freed_slot_is_taken_at_once_by_what_is_ready() {
        // a (slow), b -> c: c starts when b ends, while a still runs.
        let steps = vec![
            step("a", &[]),
            step("b", &[]),
            step("c", &[1]),
            step("d", &[]),
        ];
        let mut s = Schedule::new(&steps, Vec::new(), 2, OnFailure::RollbackFailed);
        assert_eq!(s.next_wave().start, vec![0, 1]);
        // Both slots are held: nothing more.
        assert_eq!(s.next_wave(), Wave::default());
        assert_eq!(s.in_flight(), 2);
        s.ended(1, Ended::Succeeded);
        assert_eq!(s.next_wave().start, vec![2]);
        s.ended(0, Ended::Succeeded);
        assert_eq!(s.next_wave().start, vec![3]);
    }

    #[test]
    fn dependents_of_a_failure_are_skipped_transitively_and_others_go_on() {
        let steps = vec![
            step("migrate", &[]),
            step("api", &[0]),
            step("web", &[1]),
            step("w1", &[]),
        ];
        let mut s = Schedule::new(&steps, Vec::new(), 1, OnFailure::RollbackFailed);
        assert_eq!(s.next_wave().start, vec![0]);
        s.ended(0, Ended::Failed);
        let w = s.next_wave();
        assert_eq!(w.start, vec![3]);
        assert_eq!(
            w.skip,
            vec![
                (1, "not started: migrate failed".to_string()),
                (2, "not started: api did not run".to_string())
            ]
        );
    }

    #[test]
    fn stop_and_rollback_all_start_nothing_after_a_failure() {
        for policy in [OnFailure::Stop, OnFailure::RollbackAll] {
            let steps = vec![step("a", &[]), step("b", &[]), step("c", &[])];
            let mut s = Schedule::new(&steps, Vec::new(), 1, policy);
            assert_eq!(s.next_wave().start, vec![0]);
            s.ended(0, Ended::Failed);
            let w = s.next_wave();
            assert!(w.start.is_empty());
            assert_eq!(w.skip.len(), 2, "{policy:?}");
            assert!(w.skip[0].1.contains(policy.name()), "{:?}", w.skip);
        }
    }

    #[test]
    fn a_release_file_resolves_patterns_names_and_after() {
        let d = tree(&["api", "web", "workers/a", "workers/b"]);
        let r = doc(
            &d.0,
            "envfiles: [release.env]\next_str: {ENV: prod}\nparallel: 4\non_failure: stop\nsteps:\n\
             - name: migrate\n  config: api/cortado.yml\n  run: {command: [./migrate, up]}\n\
             - config: api/cortado.yml\n  after: [migrate]\n\
             - config: web/cortado.yml\n  after: [api]\n\
             - name: workers\n  config: workers/*/cortado.yml\n\
             - config: web/cortado.yml\n  name: web-again\n  run: true\n  after: [workers]\n",
        )
        .unwrap();
        let names: Vec<&str> = r.steps.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(
            names,
            ["migrate", "api", "web", "workers", "workers", "web-again"]
        );
        assert_eq!(r.steps[1].after, vec![0]);
        assert_eq!(r.steps[2].after, vec![1]);
        assert_eq!(r.steps[5].after, vec![3, 4]);
        assert_eq!(
            r.steps[0].action,
            Action::Run(RunStep {
                command: Some(vec!["./migrate".into(), "up".into()]),
                ..RunStep::default()
            })
        );
        assert_eq!(r.envfiles, vec![d.0.join("release.env")]);
        assert_eq!(r.ext_str, vec![("ENV".into(), "prod".into())]);
        assert_eq!((r.parallel, r.on_failure), (Some(4), Some(OnFailure::Stop)));
        // api's and web's configs are read once although two steps use each; the migration's
        // config (api's) is also deployed, web-again's is only run.
        assert_eq!(r.config_paths().len(), 4);
        assert_eq!(r.deployed_configs().len(), 4);
    }

    #[test]
    fn paths_are_joined_to_the_release_folder_and_checked() {
        let d = tree(&["api", "web"]);
        let r = doc(
            &d.0,
            "steps:\n- config: api/cortado.yml\n  paths: [src/api/**, lib/*.go]\n\
             - config: web/cortado.yml\n  paths: src/web/**\n",
        )
        .unwrap();
        let dir = d.0.to_string_lossy().into_owned();
        assert_eq!(
            r.steps[0].paths,
            [format!("{dir}/src/api/**"), format!("{dir}/lib/*.go")]
        );
        assert_eq!(r.steps[1].paths, [format!("{dir}/src/web/**")]);
        let e = doc(
            &d.0,
            "steps:\n- config: api/cortado.yml\n  paths: [\"\", /abs/**]\n\
             - config: web/cortado.yml\n  paths: {a: b}\n",
        )
        .unwrap_err();
        let lines: Vec<usize> = e
            .diagnostics
            .iter()
            .map(|d| d.location.as_ref().map_or(0, |l| l.line))
            .collect();
        assert_eq!(lines, [3, 3, 5], "{:?}", e.diagnostics);
    }

    #[test]
    fn environments_are_read_checked_and_merged_over_the_release() {
        let d = tree(&["api"]);
        let mut r = doc(
            &d.0,
            "envfiles: [release.env]\next_str: {ENV: none, KEEP: k}\n\
             environments:\n  staging: {region: eu-west-1, envfiles: [staging.env], \
             ext_str: {ENV: staging}, ext_code: {n: '2'}}\n  \
             production: {assume_role_arn: 'arn:aws:iam::111122223333:role/deploy'}\n\
             steps:\n- config: api/cortado.yml\n",
        )
        .unwrap();
        assert_eq!(r.environments.len(), 2);
        let env = r.choose_environment("staging").unwrap();
        assert_eq!(env.region.as_deref(), Some("eu-west-1"));
        assert_eq!(env.assume_role_arn, None);
        // The environment's envfiles after the release's (later files win); its ext vars
        // over the release's.
        assert_eq!(
            r.envfiles,
            [d.0.join("release.env"), d.0.join("staging.env")]
        );
        assert_eq!(
            r.ext_str,
            [
                ("KEEP".into(), "k".into()),
                ("ENV".into(), "staging".into())
            ]
        );
        assert_eq!(r.ext_code, [("n".into(), "2".into())]);
        assert_eq!(r.environment.as_deref(), Some("staging"));
        let e = r.clone().choose_environment("prodution").unwrap_err();
        assert!(
            e.diagnostics[0]
                .message
                .ends_with("has no environment \"prodution\"")
        );
        assert_eq!(
            e.diagnostics[0].hint.as_deref(),
            Some("did you mean \"production\"?")
        );

        let e = doc(
            &d.0,
            "environments:\n  a: {regoin: x}\n  b: {assume_role_arn: 'arn:aws:iam::1:role/x'}\n  \
             c d: {}\n  e: [x]\n  f: {envfiles: x, region: ''}\nsteps:\n- config: api/cortado.yml\n",
        )
        .unwrap_err();
        let found: Vec<(usize, &str)> = e
            .diagnostics
            .iter()
            .map(|d| {
                (
                    d.location.as_ref().map_or(0, |l| l.line),
                    d.message.as_str(),
                )
            })
            .collect();
        let lines: Vec<usize> = found.iter().map(|(l, _)| *l).collect();
        assert_eq!(lines, [2, 3, 4, 5, 6, 6], "{found:?}");
        assert!(found[0].1.contains("unknown key \"regoin\""), "{found:?}");
        assert!(found[1].1.contains("is not an IAM role ARN"), "{found:?}");
        assert!(found[2].1.contains("is not a word"), "{found:?}");
        assert_eq!(
            e.diagnostics[0].hint.as_deref(),
            Some("did you mean \"region\"?")
        );
    }

    #[test]
    fn configs_given_choose_the_steps_of_a_release() {
        let d = tree(&["api", "web", "workers/a", "workers/b"]);
        let r = doc(
            &d.0,
            "steps:\n- name: migrate\n  config: api/cortado.yml\n  run: true\n\
             - config: api/cortado.yml\n  after: [migrate]\n\
             - config: web/cortado.yml\n  after: [api]\n\
             - name: workers\n  config: workers/*/cortado.yml\n",
        )
        .unwrap();
        let names = |r: &Release| -> Vec<String> {
            r.steps
                .iter()
                .map(|s| format!("{}:{}", s.name, s.after.len()))
                .collect()
        };
        // api's config is two steps (the migration and the deploy); web waits for api.
        let kept = r
            .of_configs_given(&[d.0.join("web/cortado.yml"), d.0.join("api/./cortado.yml")])
            .unwrap();
        assert_eq!(names(&kept), ["migrate:0", "api:1", "web:1"]);
        let kept = r
            .of_configs_given(&[d.0.join("workers/b/cortado.yml")])
            .unwrap();
        assert_eq!(kept.steps.len(), 1);
        assert!(kept.steps[0].config.ends_with("workers/b/cortado.yml"));
        let e = r.of_configs_given(&[d.0.join("nope.yml")]).unwrap_err();
        assert!(
            e.diagnostics[0]
                .message
                .contains("nope.yml which no step of"),
            "{:?}",
            e.diagnostics
        );
    }

    #[test]
    fn only_keeps_order_and_waits_through_left_out_steps() {
        // migrate <- api <- web; workers alone; keep migrate, web, workers.
        let r = Release {
            steps: vec![
                step("migrate", &[]),
                step("api", &[0]),
                step("web", &[1]),
                step("workers", &[]),
            ],
            ..Release::default()
        };
        let kept = r.only(&BTreeSet::from([0, 2, 3]));
        let names: Vec<&str> = kept.steps.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["migrate", "web", "workers"]);
        assert_eq!(kept.steps[1].after, vec![0], "web still waits for migrate");
        assert!(kept.steps[0].after.is_empty() && kept.steps[2].after.is_empty());
        assert!(r.only(&BTreeSet::new()).steps.is_empty());
    }

    #[test]
    fn release_file_errors_are_located_and_all_listed() {
        let d = tree(&["api", "web"]);
        let e = doc(
            &d.0,
            "steps:\n- config: api/cortado.yml\n  after: [wbe]\n- config: web/cortado.yml\n  aftr: [api]\n- config: nope/cortado.yml\n",
        )
        .unwrap_err();
        let msgs: Vec<String> = e
            .diagnostics
            .iter()
            .map(|d| {
                format!(
                    "{}:{}",
                    d.location.as_ref().map_or(0, |l| l.line),
                    d.message
                )
            })
            .collect();
        // The unknown key and the missing file are reported together (the `after` names are
        // checked once every step parses).
        assert!(
            msgs.iter()
                .any(|m| m.starts_with("5:") && m.contains("\"aftr\"")),
            "{msgs:?}"
        );
        assert!(
            msgs.iter()
                .any(|m| m.starts_with("6:") && m.contains("nope/cortado.yml")),
            "{msgs:?}"
        );
        let e = doc(
            &d.0,
            "steps:\n- config: api/cortado.yml\n  after: [wep]\n- config: web/cortado.yml\n",
        )
        .unwrap_err();
        let d0 = &e.diagnostics[0];
        assert_eq!(d0.location.as_ref().map(|l| l.line), Some(3));
        assert!(d0.message.contains("\"wep\""));
        assert_eq!(d0.hint.as_deref(), Some("did you mean \"web\"?"));
    }

    #[test]
    fn an_unknown_key_of_any_section_gets_a_suggestion() {
        let d = tree(&["api"]);
        let e = doc(
            &d.0,
            "paralel: 2\nsteps:\n- config: api/cortado.yml\n  aftr: []\n  run: {comand: [a]}\n",
        )
        .unwrap_err();
        let hints: Vec<(String, Option<String>)> = e
            .diagnostics
            .iter()
            .map(|d| (d.message.clone(), d.hint.clone()))
            .collect();
        for (key, meant) in [
            ("paralel", "parallel"),
            ("aftr", "after"),
            ("comand", "command"),
        ] {
            assert!(
                hints
                    .iter()
                    .any(|(m, h)| m == &format!("unknown key {key:?}")
                        && h.as_deref() == Some(format!("did you mean {meant:?}?").as_str())),
                "{hints:?}"
            );
        }
    }

    #[test]
    fn cycles_and_double_deploys_are_refused() {
        let d = tree(&["a", "b"]);
        let e = doc(
            &d.0,
            "steps:\n- config: a/cortado.yml\n  after: [b]\n- config: b/cortado.yml\n  after: [a]\n",
        )
        .unwrap_err();
        assert!(
            e.diagnostics[0].message.contains("a -> b -> a"),
            "{:?}",
            e.diagnostics
        );
        let e = doc(
            &d.0,
            "steps:\n- config: a/cortado.yml\n- name: again\n  config: a/cortado.yml\n",
        )
        .unwrap_err();
        assert!(e.diagnostics[0].message.contains("deployed by two steps"));
        let e = doc(
            &d.0,
            "region: us-east-1\nservice: web\ntask_definition: td.json\n",
        )
        .unwrap_err();
        assert_eq!(e.diagnostics.len(), 1);
        assert!(e.diagnostics[0].message.contains("not a release file"));
        let e = doc(&d.0, "steps: []\n").unwrap_err();
        assert!(e.diagnostics[0].message.contains("non-empty"));
        let e = doc(
            &d.0,
            "steps:\n- config: a/cortado.yml\n  run: {command: 3}\n",
        )
        .unwrap_err();
        assert!(e.diagnostics[0].message.contains("command"));
    }
}
