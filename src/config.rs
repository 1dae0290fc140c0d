//! Config files: find, render, check and resolve `cortado.yml` / `ecspresso.yml`.
//!
//! Receives a path (or finds the default in the current folder) and the render context; the
//! config file is itself a template (ecspresso allows `{{ must_env }}` in it) in YAML, JSON or
//! Jsonnet. Hands on a [`Config`] with ecspresso's keys, paths resolved against the config
//! file's folder, and warnings for keys it does not know. cortado's own settings live under
//! `rollout:`, reserved for the deploy engine.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Map, Value};

use crate::error::{Diagnostic, Error, Result};
use crate::render::{self, Document, RenderContext};
pub use crate::required_version::ECSPRESSO_COMPAT;

pub mod schema;

use schema::{ConfigKey, IgnoreKey, PluginKey};

/// Default config file names, in the order they are looked for.
pub const DEFAULT_NAMES: &[&str] = &[
    "cortado.yml",
    "cortado.yaml",
    "cortado.json",
    "cortado.jsonnet",
    "ecspresso.yml",
    "ecspresso.yaml",
    "ecspresso.json",
    "ecspresso.jsonnet",
];

/// A plugin entry (`plugins:`): its functions are added to templates under `func_prefix`.
#[derive(Debug, Clone, PartialEq)]
pub struct Plugin {
    pub name: String,
    pub config: Value,
    pub func_prefix: String,
}

/// A loaded config file.
#[derive(Debug, Clone)]
pub struct Config {
    pub path: PathBuf,
    pub region: Option<String>,
    pub cluster: String,
    pub service: Option<String>,
    pub service_definition: Option<PathBuf>,
    pub task_definition: Option<PathBuf>,
    /// An ECS Express Mode service's definition (CreateExpressGatewayService input).
    pub express_definition: Option<PathBuf>,
    pub timeout: Option<Duration>,
    pub plugins: Vec<Plugin>,
    pub codedeploy: Option<Value>,
    pub appspec: Option<Value>,
    pub required_version: Option<String>,
    /// Tag keys written by other tools, ignored when comparing (`ignore: {tags: [...]}`).
    pub ignore_tags: Vec<String>,
    /// cortado's own section, for the deploy engine.
    pub rollout: Map<String, Value>,
    /// cortado's own `notify:`: who hears about this service's deploys. Its values are
    /// registered with the render context's secrets when the config is loaded.
    pub notify: Option<crate::notify::Notify>,
    /// The rendered config, for `cortado render config` and for locating findings.
    pub document: Document,
    /// Warnings found while loading (unknown keys).
    pub warnings: Vec<Diagnostic>,
}

impl Config {
    /// Renders a definition file this config names at `key` (`task_definition` or
    /// `service_definition`). Findings without a place of their own (the file is missing or
    /// unreadable) are located at that key of the config, so the user sees which line named it.
    pub fn load_definition(&self, ctx: &RenderContext, key: &str, path: &Path) -> Result<Document> {
        render::load(ctx, path).map_err(|mut e| {
            let at = self
                .document
                .locate(&format!("/{}", render::spans::escape_token(key)));
            let dir = self.path.parent().filter(|d| !d.as_os_str().is_empty());
            for d in e.diagnostics.iter_mut().filter(|d| d.location.is_none()) {
                d.message = format!("{key}: {}", d.message);
                d.location = Some(at.clone());
                if d.hint.as_deref() == Some("check the path") {
                    d.hint = Some(format!(
                        "check the path; relative paths in a config file are resolved against the folder of that file ({})",
                        dir.unwrap_or(Path::new(".")).display()
                    ));
                }
            }
            e
        })
    }
}

/// Finds the default config file in `dir`.
pub fn find_default(dir: &Path) -> Result<PathBuf> {
    DEFAULT_NAMES
        .iter()
        .map(|n| dir.join(n))
        .find(|p| p.is_file())
        .ok_or_else(|| {
            Error::bad_input(format!(
                "no config file: none of cortado.yml or ecspresso.yml (.yaml, .json, .jsonnet) in {}",
                if dir.as_os_str().is_empty() { Path::new(".") } else { dir }.display()
            ))
            .with_hint("pass one with --config PATH (or CORTADO_CONFIG), or create cortado.yml")
        })
}

/// What a plugin function renders to in a config's first pass (see
/// [`crate::render::plugins::load_with_plugins`]).
pub(crate) const PENDING: &str = "cortado-pending-plugin-value";

/// The first pass of a config that calls plugin functions: its path, `plugins:` and (unless a
/// plugin function makes it) `region:`, enough to set the plugins up.
pub(crate) fn first_pass(document: Document, path: &Path) -> Result<Config> {
    let mut r = Reader {
        doc: &document,
        errors: Vec::new(),
    };
    if let Some(plugins) = r.get(ConfigKey::Plugins)
        && plugins.to_string().contains(PENDING)
    {
        return Err(Error::input(
            Diagnostic::error("`plugins` calls a plugin function, but it is what defines them")
                .at(document.locate("/plugins"))
                .hint(
                    "write the plugins' settings with literal values, {{ env }} or {{ must_env }}",
                ),
        ));
    }
    let region = r.string(ConfigKey::Region).filter(|s| !s.contains(PENDING));
    let plugins = r.plugins();
    if !r.errors.is_empty() {
        return Err(Error::findings(r.errors));
    }
    Ok(Config {
        path: path.to_path_buf(),
        region,
        cluster: String::new(),
        service: None,
        service_definition: None,
        task_definition: None,
        express_definition: None,
        timeout: None,
        plugins,
        codedeploy: None,
        appspec: None,
        required_version: None,
        ignore_tags: Vec::new(),
        rollout: Map::new(),
        notify: None,
        document,
        warnings: Vec::new(),
    })
}

/// Loads, renders and checks a config file (its templates see `ctx`'s functions only).
pub fn load(ctx: &RenderContext, path: &Path) -> Result<Config> {
    from_document(ctx, render::load(ctx, path)?, path)
}

/// Checks a rendered config file.
pub(crate) fn from_document(
    ctx: &RenderContext,
    document: Document,
    path: &Path,
) -> Result<Config> {
    let dir = path.parent().unwrap_or(Path::new("")).to_path_buf();
    let mut r = Reader {
        doc: &document,
        errors: Vec::new(),
    };
    let mut warnings = Vec::new();
    let Some(obj) = document.value.as_object() else {
        return Err(Error::input(
            Diagnostic::error(format!(
                "the config must be a mapping of keys (region, cluster, service, ...), found {}",
                kind(&document.value)
            ))
            .at(document.locate(""))
            .hint("see the README's config reference for an example"),
        ));
    };
    check_keys(&document, obj, &mut warnings);
    let resolve = |p: String| -> Option<PathBuf> {
        if p.is_empty() {
            return None;
        }
        let p = PathBuf::from(p);
        Some(if p.is_absolute() { p } else { dir.join(p) })
    };
    let region = r.string(ConfigKey::Region);
    let cluster = r
        .string(ConfigKey::Cluster)
        .unwrap_or_else(|| "default".to_string());
    let service = r.string(ConfigKey::Service);
    let service_definition = r.string(ConfigKey::ServiceDefinition).and_then(resolve);
    let task_definition = r.string(ConfigKey::TaskDefinition).and_then(resolve);
    let express_definition = r.string(ConfigKey::ExpressDefinition).and_then(resolve);
    let timeout = r.duration(ConfigKey::Timeout);
    let plugins = r.plugins();
    let codedeploy = obj
        .get(ConfigKey::Codedeploy.key())
        .filter(|v| !v.is_null())
        .cloned();
    let appspec = obj
        .get(ConfigKey::Appspec.key())
        .filter(|v| !v.is_null())
        .cloned();
    let required_version = r.string(ConfigKey::RequiredVersion);
    let ignore_tags = r.ignore_tags();
    let rollout = match obj.get(ConfigKey::Rollout.key()) {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(m)) => m.clone(),
        Some(other) => {
            r.type_error("/rollout", "a mapping", other);
            Map::new()
        }
    };
    let notify = crate::notify::parse(
        &document,
        "/notify",
        obj.get(ConfigKey::Notify.key()),
        &mut r.errors,
    );
    for secret in notify.iter().flat_map(|n| n.secrets()) {
        ctx.secrets.add(secret);
    }
    if let Some(req) = &required_version
        && let Err(d) = check_required_version(req, ECSPRESSO_COMPAT)
    {
        r.errors.push(d.at(document.locate("/required_version")));
    }
    if !r.errors.is_empty() {
        warnings.extend(r.errors);
        return Err(Error::findings(warnings));
    }
    Ok(Config {
        path: path.to_path_buf(),
        region,
        cluster,
        service,
        service_definition,
        task_definition,
        express_definition,
        timeout,
        plugins,
        codedeploy,
        appspec,
        required_version,
        ignore_tags,
        rollout,
        notify,
        document,
        warnings,
    })
}

/// The keys of the config's sections that are not read (warnings: configs written for newer
/// ecspresso versions still load): the top level, each plugin entry, `ignore:`.
fn check_keys(document: &Document, obj: &Map<String, Value>, warnings: &mut Vec<Diagnostic>) {
    ConfigKey::SECTION.check(document, "", obj, warnings);
    if let Some(Value::Array(plugins)) = obj.get(ConfigKey::Plugins.key()) {
        for (i, p) in plugins.iter().enumerate() {
            if let Some(p) = p.as_object() {
                PluginKey::SECTION.check(document, &format!("/plugins/{i}"), p, warnings);
            }
        }
    }
    if let Some(Value::Object(ignore)) = obj.get(ConfigKey::Ignore.key()) {
        IgnoreKey::SECTION.check(document, "/ignore", ignore, warnings);
    }
}

/// Reads typed values out of the config document, collecting located errors.
struct Reader<'a> {
    doc: &'a Document,
    errors: Vec<Diagnostic>,
}

impl Reader<'_> {
    /// A key of the config's top level (only keys the section declares can be read).
    fn get(&self, key: ConfigKey) -> Option<&Value> {
        self.doc.value.get(key.key()).filter(|v| !v.is_null())
    }

    fn type_error(&mut self, pointer: &str, expected: &str, found: &Value) {
        self.errors.push(
            Diagnostic::error(format!(
                "`{}` must be {expected}, found {}",
                pointer.trim_start_matches('/').replace('/', "."),
                kind(found)
            ))
            .at(self.doc.locate(pointer))
            .hint(format!(
                "write `{}` as {expected}",
                pointer.trim_start_matches('/')
            )),
        );
    }

    fn string(&mut self, key: ConfigKey) -> Option<String> {
        match self.get(key)? {
            Value::String(s) => Some(s.clone()),
            other => {
                let other = other.clone();
                self.type_error(&format!("/{key}"), "a string", &other);
                None
            }
        }
    }

    fn duration(&mut self, key: ConfigKey) -> Option<Duration> {
        let pointer = format!("/{key}");
        match self.get(key)?.clone() {
            // ecspresso v1 wrote timeouts as seconds.
            Value::Number(n) => match n.as_u64() {
                Some(secs) => Some(Duration::from_secs(secs)),
                None => {
                    self.type_error(
                        &pointer,
                        "a duration such as 10m or 1h30m",
                        &Value::Number(n),
                    );
                    None
                }
            },
            Value::String(s) => match parse_duration(&s) {
                Ok(d) => Some(d),
                Err(e) => {
                    self.errors.push(
                        Diagnostic::error(format!("invalid {key} {s:?}: {e}"))
                            .at(self.doc.locate(&pointer))
                            .hint("use a Go-style duration: 90s, 10m, 1h30m, 10m0s"),
                    );
                    None
                }
            },
            other => {
                self.type_error(&pointer, "a duration such as 10m or 1h30m", &other);
                None
            }
        }
    }

    fn plugins(&mut self) -> Vec<Plugin> {
        let Some(v) = self.get(ConfigKey::Plugins).cloned() else {
            return Vec::new();
        };
        let Value::Array(items) = v else {
            self.type_error("/plugins", "a list of {name, config, func_prefix}", &v);
            return Vec::new();
        };
        let mut out = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let at = format!("/plugins/{i}");
            let name = item.get("name").and_then(Value::as_str);
            let Some(name) = name.filter(|n| !n.is_empty()) else {
                self.errors.push(
                    Diagnostic::error(format!("plugins[{i}] has no name"))
                        .at(self.doc.locate(&at))
                        .hint("give each plugin a name: tfstate, ssm, secretsmanager, cloudformation or external"),
                );
                continue;
            };
            let func_prefix = match item.get("func_prefix") {
                None | Some(Value::Null) => String::new(),
                Some(Value::String(s)) => s.clone(),
                Some(other) => {
                    let other = other.clone();
                    self.type_error(&format!("{at}/func_prefix"), "a string", &other);
                    String::new()
                }
            };
            out.push(Plugin {
                name: name.to_string(),
                config: item.get("config").cloned().unwrap_or(Value::Null),
                func_prefix,
            });
        }
        out
    }

    fn ignore_tags(&mut self) -> Vec<String> {
        let Some(ignore) = self.get(ConfigKey::Ignore).cloned() else {
            return Vec::new();
        };
        match ignore.get("tags") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(tags)) => {
                let mut out = Vec::new();
                for (i, t) in tags.iter().enumerate() {
                    match t {
                        Value::String(s) => out.push(s.clone()),
                        other => self.type_error(&format!("/ignore/tags/{i}"), "a string", other),
                    }
                }
                out
            }
            Some(other) => {
                let other = other.clone();
                self.type_error("/ignore/tags", "a list of tag keys", &other);
                Vec::new()
            }
        }
    }
}

/// A JSON value's kind, for messages.
pub fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

/// Parses a Go-style duration: a sequence of decimal numbers with units ns, us (µs), ms, s, m,
/// h, e.g. `300ms`, `1.5h`, `1h30m`, `10m0s`. A bare `0` is zero.
///
/// ```
/// use std::time::Duration;
/// use cortado::config::parse_duration;
///
/// assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
/// assert_eq!(parse_duration("10m0s"), Ok(Duration::from_secs(600)));
/// assert!(parse_duration("10").unwrap_err().contains("missing unit"));
/// ```
pub fn parse_duration(s: &str) -> std::result::Result<Duration, String> {
    let s = s.trim();
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    if s.is_empty() {
        return Err("empty duration".into());
    }
    if s.starts_with('-') {
        return Err("a timeout cannot be negative".into());
    }
    let mut total = 0f64;
    let mut rest = s.strip_prefix('+').unwrap_or(s);
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if num_len == 0 {
            return Err(format!("expected a number at {rest:?}"));
        }
        let n: f64 = rest[..num_len]
            .parse()
            .map_err(|_| format!("bad number {:?}", &rest[..num_len]))?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        let secs = match unit {
            "ns" => 1e-9,
            "us" | "µs" | "μs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            "" => return Err(format!("missing unit after {n} (use s, m or h)")),
            other => return Err(format!("unknown unit {other:?} (use ms, s, m or h)")),
        };
        total += n * secs;
        rest = &rest[unit_len..];
    }
    if !total.is_finite() || total > 1e12 {
        return Err("duration too large".into());
    }
    Ok(Duration::from_secs_f64(total))
}

/// Checks `required_version` the way ecspresso does (hashicorp/go-version constraints) against
/// `version`, the ecspresso version cortado stands in for ([`ECSPRESSO_COMPAT`] when a config
/// is loaded). An empty constraint asks for nothing, as in ecspresso.
pub fn check_required_version(req: &str, version: &str) -> std::result::Result<(), Diagnostic> {
    if req.trim().is_empty() {
        return Ok(());
    }
    let ok = crate::required_version::matches(req, version).map_err(|e| {
        Diagnostic::error(format!("invalid required_version {req:?}: {e}")).hint(
            "write a constraint as ecspresso reads it (hashicorp/go-version): \">= 2.0.0, < 3\", \"~> 2.8\"",
        )
    })?;
    if ok {
        return Ok(());
    }
    let mut hint = format!(
        "required_version constrains the ecspresso version; cortado reads ecspresso {version}'s config format, which this constraint excludes. Use a constraint {version} satisfies (ecspresso's README recommends \">= 2.0.0, < 3\")"
    );
    let own = env!("CARGO_PKG_VERSION");
    if crate::required_version::matches(req, own) == Ok(true) {
        hint.push_str(&format!(
            " -- it matches cortado's own version {own}, but cortado no longer reads it as one"
        ));
    }
    Err(Diagnostic::error(format!(
        "this config requires ecspresso {req}; cortado implements ecspresso {version}'s config"
    ))
    .hint(hint))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_go_style() {
        let d = |s| parse_duration(s).unwrap().as_secs_f64();
        assert_eq!(d("10m"), 600.0);
        assert_eq!(d("1h30m"), 5400.0);
        assert_eq!(d("10m0s"), 600.0);
        assert_eq!(d("1.5h"), 5400.0);
        assert_eq!(d("300ms"), 0.3);
        assert_eq!(d("0"), 0.0);
        assert!(parse_duration("10").unwrap_err().contains("missing unit"));
        assert!(parse_duration("10x").unwrap_err().contains("unknown unit"));
        assert!(parse_duration("-5m").is_err());
        assert!(parse_duration("").is_err());
        assert!(parse_duration("m").is_err());
    }

    #[test]
    fn required_version_is_an_ecspresso_constraint() {
        // ecspresso's README recommendation, and other forms its users write.
        for req in [">= 2.0.0, < 3", "~> 2.8", ">= v2.0", "", "  "] {
            assert!(
                check_required_version(req, ECSPRESSO_COMPAT).is_ok(),
                "{req}"
            );
        }
        let e = check_required_version(">= 3", ECSPRESSO_COMPAT).unwrap_err();
        assert!(
            e.message
                .contains("requires ecspresso >= 3; cortado implements ecspresso 2.8.7"),
            "{}",
            e.message
        );
        // A constraint written for cortado's own version says so.
        let e = check_required_version("~> 0.1", ECSPRESSO_COMPAT).unwrap_err();
        assert!(
            e.hint
                .as_deref()
                .unwrap_or_default()
                .contains("cortado's own version"),
            "{:?}",
            e.hint
        );
        let e = check_required_version("soon", ECSPRESSO_COMPAT).unwrap_err();
        assert!(
            e.message.contains("invalid required_version"),
            "{}",
            e.message
        );
    }
}
