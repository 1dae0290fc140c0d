//! Template plugins (`plugins:` in the config): value and secret sources for templates.
//!
//! Receives a [`RenderContext`], the loaded [`Config`] and the run's [`Lookups`]; hands on a
//! context whose functions also hold each configured plugin's functions under its
//! `func_prefix` (a plugin may be listed several times, e.g. two tfstate files with two
//! prefixes). The plugins, with ecspresso's names:
//!
//! - `ssm`: `{{ ssm "/path/name" }}` is the parameter's value (SecureStrings decrypted);
//!   `{{ ssm "/path/name" 1 }}` is the element at that 0-based index of a StringList. A
//!   SecureString value is registered with the context's [`super::Secrets`] before it is
//!   returned, so every output masks it.
//! - `tfstate` (`config: {path: FILE}` or `{url: s3://BUCKET/KEY}`, and `optional: true` for a state
//!   that may be absent: it is then empty and only lookups in it fail; a relative path is relative
//!   to the config file's folder): `{{ tfstate "ADDRESS" }}` is the value at a Terraform
//!   address (see [`super::tfstate`]); `{{ tfstatef "FORMAT" ARGS... }}` formats the address
//!   first, as `printf` does. The state is read once per run; values of outputs and attributes
//!   Terraform marks sensitive are registered as secrets.
//! - `cloudformation`: `{{ cfn_output "STACK" "KEY" }}` (DescribeStacks) and
//!   `{{ cfn_export "NAME" }}` (ListExports, every page).
//! - `secretsmanager`: `{{ secretsmanager_arn "NAME" }}` (DescribeSecret) is the secret's ARN
//!   (not its value).
//! - `external`: a function named by its `config: {name, command, ...}` that runs a command
//!   (see [`super::external`]).
//!
//! `ssm` and `secretsmanager` are there for every config ([`DEFAULT_PLUGINS`]), listed or
//! not, as in ecspresso; plugin names are case-insensitive; two plugins defining the same
//! function name (no `func_prefix` to tell them apart) are an input error.
//!
//! Jsonnet files reach the same functions as ecspresso's natives: `std.native('tfstate')`,
//! `cfn_output`, `cfn_export`, `secretsmanager_arn`, `ssm` and `ssm_list(name, index)` (with
//! the plugin's `func_prefix`; no `tfstatef`: format with `%` or `std.format`).
//!
//! An unknown plugin name, or a tfstate plugin without a usable `path`/`url`, is an input
//! error at config load, located at the config's key.
//!
//! # One mechanism
//!
//! Every AWS read a function needs is a [`Query`] answered by the run's [`Lookups`]:
//!
//! ```text
//! let lookups = Lookups::new(aws_settings);          // once per run, no I/O yet
//! let ctx = with_plugins(&ctx, &config, &lookups)?;  // per config
//! ```
//!
//! - [`Lookups::new`] takes the run's [`AwsSettings`] — the ones its `Clients` are made from
//!   (endpoint, static credentials, attempts). The region of a lookup is the settings' region
//!   (`--region`) when set, else the config's `region:`, else the SDK's chain (AWS_REGION...).
//! - The SDK clients are made lazily, on the first lookup, once per region for the life of the
//!   `Lookups` (not per query); a failure to connect is remembered and reported again.
//! - Answers are cached per `Lookups` by (region, query): a parameter, stack, secret or state
//!   used in several files of a run is read once. Parsed Terraform states are cached too.
//! - [`Lookups::with_fetch`] replaces AWS with a function (tests, fakes); the caches still
//!   apply. [`Lookups::sandboxed`] is the embedded `--sandbox`'s: that sandbox starts empty
//!   (after the configs are rendered), so every AWS query fails with an error that says so
//!   (and nothing reaches real AWS); local tfstate files still work. `sandbox serve
//!   --prepare` renders with [`Lookups::new`] pointed at the seeded sandbox itself.
//! - Errors keep their class ([`FuncError`]): something missing (parameter, stack, output,
//!   export, secret, state file, address) is bad input (exit 1), a denied or failed call an
//!   AWS error (exit 7); the template engine locates both at the call (file:line:col).
//!
//! The template engine is synchronous. The SDK calls run on one thread per `Lookups` with its
//! own current-thread runtime, started on the first lookup and ended when the `Lookups` is
//! dropped; the caller waits for the answer (inside a multi-thread tokio runtime through
//! `block_in_place`, so the runtime's other tasks keep running). This works inside or outside
//! a tokio runtime, of either flavour.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, mpsc};

use super::template::{Func, FuncError, Funcs, Value};
use super::tfstate::State;
use super::{Native, NativeParams, RenderContext};
use crate::aws::{AwsSettings, Clients};
use crate::config::{self, Config};
use crate::error::{Diagnostic, Error, Location, Result, did_you_mean};

/// One AWS read behind a plugin function.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Query {
    /// An SSM parameter, decrypted (`ssm`): answers [`Answer::Parameter`].
    Parameter(String),
    /// The outputs of a CloudFormation stack (`cfn_output`): [`Answer::Pairs`].
    StackOutputs(String),
    /// Every CloudFormation export of the region (`cfn_export`): [`Answer::Pairs`].
    Exports,
    /// The ARN of a Secrets Manager secret (`secretsmanager_arn`): [`Answer::Text`].
    SecretArn(String),
    /// The text of an S3 object (`tfstate` with an `s3://` URL): [`Answer::Text`].
    Object { bucket: String, key: String },
}

impl Query {
    /// The plugin whose functions ask this.
    pub fn plugin(&self) -> &'static str {
        match self {
            Query::Parameter(_) => "ssm",
            Query::StackOutputs(_) | Query::Exports => "cloudformation",
            Query::SecretArn(_) => "secretsmanager",
            Query::Object { .. } => "tfstate",
        }
    }

    /// The AWS service that answers it.
    pub fn service(&self) -> &'static str {
        match self {
            Query::Parameter(_) => "SSM Parameter Store",
            Query::StackOutputs(_) | Query::Exports => "CloudFormation",
            Query::SecretArn(_) => "Secrets Manager",
            Query::Object { .. } => "S3",
        }
    }

    /// What it reads, for messages.
    fn subject(&self) -> String {
        match self {
            Query::Parameter(n) => format!("SSM parameter {n}"),
            Query::StackOutputs(s) => format!("the outputs of CloudFormation stack {s}"),
            Query::Exports => "the CloudFormation exports".to_string(),
            Query::SecretArn(n) => format!("Secrets Manager secret {n}"),
            Query::Object { bucket, key } => format!("s3://{bucket}/{key}"),
        }
    }
}

/// The answer to a [`Query`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// A parameter's value and type (`String`, `StringList`, `SecureString`).
    Parameter {
        value: String,
        kind: String,
    },
    /// Named values in AWS's order: stack outputs (key, value), exports (name, value).
    Pairs(Vec<(String, String)>),
    Text(String),
}

/// Answers a query in a region (`None`: the SDK's default), or says why not.
pub type Fetch =
    Arc<dyn Fn(Option<&str>, &Query) -> std::result::Result<Answer, FuncError> + Send + Sync>;

/// The lookup backend of one run: where plugin functions read their values. Cheap to clone
/// (clones share the clients and the caches).
#[derive(Clone)]
pub struct Lookups {
    inner: Arc<Inner>,
}

struct Inner {
    /// The run's `--region`; wins over a config's `region:`.
    region: Option<String>,
    source: Source,
    /// (region, query) -> answer, successes only.
    cache: Mutex<HashMap<(Option<String>, Query), Answer>>,
    /// Parsed Terraform states by where they came from (successes only).
    states: Mutex<HashMap<String, Arc<State>>>,
}

enum Source {
    Aws {
        settings: AwsSettings,
        /// Started on the first lookup (or the reason it could not start).
        worker: OnceLock<Result<Worker>>,
        /// How many SDK client sets were made (tests check "once per run").
        clients_made: Arc<AtomicUsize>,
    },
    Fetch(Fetch),
    /// The embedded `--sandbox`: no AWS query is answered.
    Sandbox,
}

/// A query for the lookup thread.
struct Job {
    region: Option<String>,
    query: Query,
    reply: mpsc::Sender<Result<Answer>>,
}

/// The lookup thread: its queue. Dropping it ends the thread.
struct Worker {
    jobs: mpsc::Sender<Job>,
}

impl Lookups {
    /// Lookups through AWS with the run's settings. Nothing connects until the first lookup.
    pub fn new(settings: AwsSettings) -> Lookups {
        Lookups::with_source(
            settings.region.clone(),
            Source::Aws {
                settings,
                worker: OnceLock::new(),
                clients_made: Arc::new(AtomicUsize::new(0)),
            },
        )
    }

    /// Lookups answered by `fetch` instead of AWS (tests, fakes); `region` plays `--region`.
    pub fn with_fetch(region: Option<String>, fetch: Fetch) -> Lookups {
        Lookups::with_source(region, Source::Fetch(fetch))
    }

    /// The lookups of a run against the embedded sandbox: every AWS query fails, saying the
    /// sandbox does not provide it, and nothing reaches AWS.
    pub fn sandboxed(region: Option<String>) -> Lookups {
        Lookups::with_source(region, Source::Sandbox)
    }

    fn with_source(region: Option<String>, source: Source) -> Lookups {
        Lookups {
            inner: Arc::new(Inner {
                region,
                source,
                cache: Mutex::default(),
                states: Mutex::default(),
            }),
        }
    }

    /// The region lookups for `config` use: the run's, else the config's, else `None` (the
    /// SDK's chain).
    pub fn region_for(&self, config: &Config) -> Option<String> {
        self.inner.region.clone().or_else(|| config.region.clone())
    }

    /// The answer to `query` in `region`; cached for the life of these lookups.
    pub fn ask(
        &self,
        region: Option<&str>,
        query: &Query,
    ) -> std::result::Result<Answer, FuncError> {
        let key = (region.map(str::to_string), query.clone());
        if let Some(hit) = lock(&self.inner.cache).get(&key) {
            return Ok(hit.clone());
        }
        let found = match &self.inner.source {
            Source::Fetch(fetch) => fetch(region, query)?,
            Source::Sandbox => return Err(sandbox_refusal(query)),
            Source::Aws {
                settings,
                worker,
                clients_made,
            } => {
                let worker = worker.get_or_init(|| Worker::start(settings, clients_made.clone()));
                worker
                    .as_ref()
                    .map_err(FuncError::from_error)?
                    .ask(region, query)
                    .map_err(|e| FuncError::from_error(&e))?
            }
        };
        lock(&self.inner.cache).insert(key, found.clone());
        Ok(found)
    }

    /// The value and type (`String`, `StringList`, `SecureString`) of an SSM parameter,
    /// decrypted; cached for the life of these lookups.
    pub fn ssm_parameter(
        &self,
        region: Option<&str>,
        name: &str,
    ) -> std::result::Result<(String, String), FuncError> {
        match self.ask(region, &Query::Parameter(name.to_string()))? {
            Answer::Parameter { value, kind } => Ok((value, kind)),
            other => Err(unexpected(&Query::Parameter(name.to_string()), &other)),
        }
    }

    /// The Terraform state at `source`, read and parsed once for the life of these lookups.
    fn tfstate(
        &self,
        region: Option<&str>,
        source: &TfSource,
    ) -> std::result::Result<Arc<State>, FuncError> {
        let key = format!("{}\u{0}{}", region.unwrap_or(""), source.show());
        if let Some(hit) = lock(&self.inner.states).get(&key) {
            return Ok(hit.clone());
        }
        let text = match source {
            TfSource::File(path) => read_state_file(path)?,
            TfSource::S3 { bucket, key } => {
                let q = Query::Object {
                    bucket: bucket.clone(),
                    key: key.clone(),
                };
                match self.ask(region, &q)? {
                    Answer::Text(t) => t,
                    other => return Err(unexpected(&q, &other)),
                }
            }
            TfSource::Http(h) => {
                if matches!(self.inner.source, Source::Sandbox) && !h.is_local() {
                    return Err(FuncError::input(format!(
                        "plugin tfstate: cannot read {} under --sandbox: a sandbox run reads nothing outside this machine",
                        h.show()
                    ))
                    .hint("serve a copy of the state locally (http://localhost/...) or point the plugin at a file (`config: {path: terraform.tfstate}`)"));
                }
                h.read()?
            }
        };
        let state = Arc::new(State::parse(&text, &source.show())?);
        lock(&self.inner.states).insert(key, state.clone());
        Ok(state)
    }

    /// How many SDK client sets these lookups have made so far.
    pub fn clients_made(&self) -> usize {
        match &self.inner.source {
            Source::Aws { clients_made, .. } => clients_made.load(Ordering::Relaxed),
            Source::Fetch(_) | Source::Sandbox => 0,
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn unexpected(query: &Query, answer: &Answer) -> FuncError {
    FuncError {
        message: format!(
            "internal error: {} was answered with {answer:?}",
            query.subject()
        ),
        hint: Some("please report this bug".into()),
        kind: crate::error::ErrorKind::Internal,
    }
}

/// Why the embedded sandbox answers no plugin query.
fn sandbox_refusal(query: &Query) -> FuncError {
    let plugin = query.plugin();
    // The embedded sandbox starts when the configs are loaded, empty; `sandbox serve --seed`
    // holds parameters, secrets, stacks and S3 objects, and its `--prepare` reads them.
    let why = "the embedded sandbox (--sandbox) starts empty, so it has nothing to read, and a sandbox run never reads real AWS";
    let hint = match query {
        Query::Object { .. } => {
            "rehearse with `cortado sandbox serve --seed FILE` (an `objects:` list) and AWS_ENDPOINT_URL pointing at it, or point the tfstate plugin at a local copy of the state (`config: {path: terraform.tfstate}`)"
        }
        _ => {
            "rehearse with `cortado sandbox serve --seed FILE` (its `parameters:`, `secrets:` and `stacks:` lists) and AWS_ENDPOINT_URL pointing at it, or pass the value in an environment variable ({{ must_env `NAME` }})"
        }
    };
    FuncError::input(format!(
        "plugin {plugin}: cannot read {} ({}) under --sandbox: {why}",
        query.subject(),
        query.service()
    ))
    .hint(hint)
}

impl Worker {
    /// Starts the lookup thread: a current-thread runtime and one client set per region,
    /// made on the first job for that region.
    fn start(settings: &AwsSettings, clients_made: Arc<AtomicUsize>) -> Result<Worker> {
        let (jobs, queue) = mpsc::channel::<Job>();
        let settings = settings.clone();
        let spawned = std::thread::Builder::new()
            .name("cortado-lookups".into())
            .spawn(move || {
                let rt = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        for job in queue {
                            let _ = job.reply.send(Err(Error::internal(format!(
                                "cannot start a runtime for plugin lookups: {e}"
                            ))));
                        }
                        return;
                    }
                };
                let mut clients: HashMap<Option<String>, Result<Clients>> = HashMap::new();
                for job in queue {
                    let result = rt.block_on(async {
                        if !clients.contains_key(&job.region) {
                            let made = crate::aws::connect(&AwsSettings {
                                region: job.region.clone(),
                                ..settings.clone()
                            })
                            .await;
                            clients_made.fetch_add(1, Ordering::Relaxed);
                            clients.insert(job.region.clone(), made);
                        }
                        match &clients[&job.region] {
                            Ok(c) => answer(c, &job.query).await,
                            Err(e) => Err(e.clone()),
                        }
                    });
                    let _ = job.reply.send(result);
                }
            });
        match spawned {
            Ok(_) => Ok(Worker { jobs }),
            Err(e) => Err(Error::internal(format!(
                "cannot start the plugin lookup thread: {e}"
            ))),
        }
    }

    /// Sends a query and waits for its answer.
    fn ask(&self, region: Option<&str>, query: &Query) -> Result<Answer> {
        let (reply, answer) = mpsc::channel();
        let job = Job {
            region: region.map(str::to_string),
            query: query.clone(),
            reply,
        };
        let gone = || Error::internal("the plugin lookup thread is not running");
        self.jobs.send(job).map_err(|_| gone())?;
        let wait = || answer.recv().map_err(|_| gone());
        match tokio::runtime::Handle::try_current() {
            Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
                tokio::task::block_in_place(wait)?
            }
            _ => wait()?,
        }
    }
}

/// Answers one query with the SDK clients.
async fn answer(c: &Clients, query: &Query) -> Result<Answer> {
    Ok(match query {
        Query::Parameter(name) => {
            let (value, kind) = c.get_parameter(name, true).await?;
            Answer::Parameter { value, kind }
        }
        Query::StackOutputs(stack) => Answer::Pairs(c.stack_outputs(stack).await?),
        Query::Exports => Answer::Pairs(c.exports().await?),
        Query::SecretArn(name) => Answer::Text(c.secret_arn(name).await?),
        Query::Object { bucket, key } => Answer::Text(c.object_text(bucket, key).await?),
    })
}

/// The plugins cortado knows, with the template functions each adds.
pub const PLUGINS: &[(&str, &[&str])] = &[
    ("ssm", &["ssm"]),
    ("tfstate", &["tfstate", "tfstatef"]),
    ("cloudformation", &["cfn_output", "cfn_export"]),
    ("secretsmanager", &["secretsmanager_arn"]),
    // Its one function is named by its `config: {name: ...}`.
    ("external", &[]),
];

/// Where a tfstate plugin reads its state.
#[derive(Debug, Clone, PartialEq, Eq)]
enum TfSource {
    File(PathBuf),
    S3 {
        bucket: String,
        key: String,
    },
    /// `https://...` (or `http://` to this machine) and `remote://` (Terraform Cloud).
    Http(super::remote_state::HttpSource),
}

impl TfSource {
    fn show(&self) -> String {
        match self {
            TfSource::File(p) => p.display().to_string(),
            TfSource::S3 { bucket, key } => format!("s3://{bucket}/{key}"),
            TfSource::Http(h) => h.show(),
        }
    }

    /// The source a tfstate plugin's `config` names (`path`, or `url` with s3:// or file://),
    /// or the finding that says what is wrong with it.
    fn from_config(
        config: &Config,
        i: usize,
        plugin_config: &serde_json::Value,
    ) -> std::result::Result<TfSource, Diagnostic> {
        let at = |key: &str| config.document.locate(&format!("/plugins/{i}{key}"));
        let dir = config.path.parent().unwrap_or(Path::new("."));
        let usage = "give the state as `config: {path: terraform.tfstate}` (relative to this config file) or `config: {url: s3://BUCKET/KEY}`";
        let get = |k: &str| plugin_config.get(k);
        match (get("path"), get("url")) {
            (Some(_), Some(_)) => Err(Diagnostic::error(
                "the tfstate plugin has both `path` and `url`",
            )
            .at(at("/config"))
            .hint("keep one of them")),
            (Some(serde_json::Value::String(p)), None) if !p.trim().is_empty() => {
                Ok(TfSource::File(dir.join(p)))
            }
            (None, Some(serde_json::Value::String(u))) if !u.trim().is_empty() => {
                let u = u.trim();
                if let Some(rest) = u.strip_prefix("s3://") {
                    match rest.split_once('/') {
                        Some((bucket, key)) if !bucket.is_empty() && !key.is_empty() => {
                            Ok(TfSource::S3 {
                                bucket: bucket.to_string(),
                                key: key.to_string(),
                            })
                        }
                        _ => Err(Diagnostic::error(format!(
                            "tfstate url {u:?} names no bucket and key"
                        ))
                        .at(at("/config/url"))
                        .hint("write it as s3://BUCKET/path/to/terraform.tfstate")),
                    }
                } else if let Some(path) = u.strip_prefix("file://") {
                    Ok(TfSource::File(dir.join(path)))
                } else if let Some(parsed) = super::remote_state::HttpSource::parse(u) {
                    parsed.map(TfSource::Http).map_err(|m| {
                        Diagnostic::error(m).at(at("/config/url")).hint(
                            "write https://HOST/PATH (http:// only to localhost) or remote://HOST/ORGANIZATION/WORKSPACE",
                        )
                    })
                } else {
                    let scheme = u.split_once("://").map_or(u, |(s, _)| s);
                    Err(Diagnostic::error(format!(
                        "tfstate url scheme {scheme:?} is not supported by cortado"
                    ))
                    .at(at("/config/url"))
                    .hint("cortado reads states from s3://BUCKET/KEY, https://HOST/PATH, remote://HOST/ORGANIZATION/WORKSPACE, file://PATH or `path:`; copy the state to one of them (e.g. `terraform state pull > terraform.tfstate`)"))
                }
            }
            (Some(_), None) => Err(Diagnostic::error(
                "the tfstate plugin's `path` must be a non-empty string",
            )
            .at(at("/config/path"))
            .hint(usage)),
            (None, Some(_)) => Err(Diagnostic::error(
                "the tfstate plugin's `url` must be a non-empty string",
            )
            .at(at("/config/url"))
            .hint(usage)),
            (None, None) => Err(Diagnostic::error(
                "the tfstate plugin names no state: `path` or `url` is missing",
            )
            .at(at(""))
            .hint(usage)),
        }
    }
}

fn read_state_file(path: &Path) -> std::result::Result<String, FuncError> {
    match std::fs::metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(FuncError::input(format!(
                "tfstate: state file {} does not exist",
                path.display()
            ))
            .hint("check the plugin's `path` (relative to the config file's folder); `terraform state pull > terraform.tfstate` writes a remote state to a file"));
        }
        Ok(m) if m.is_dir() => {
            return Err(FuncError::input(format!(
                "tfstate: {} is a folder, not a state file",
                path.display()
            ))
            .hint("point `path` at the terraform.tfstate file"));
        }
        _ => {}
    }
    // Through a bound, whatever the path is (a device or a FIFO has no size to check first).
    let too_large = || {
        FuncError::input(format!(
            "tfstate: {} holds more than {} MiB, the most cortado reads of a state",
            path.display(),
            super::tfstate::MAX_STATE_BYTES >> 20
        ))
        .hint("check the plugin's `path`")
    };
    let bytes = crate::error::read_bounded(path, super::tfstate::MAX_STATE_BYTES)
        .map_err(|e| {
            FuncError::input(format!("tfstate: cannot read {}: {e}", path.display()))
                .hint("check the file's permissions")
        })?
        .ok_or_else(too_large)?;
    String::from_utf8(bytes).map_err(|_| {
        FuncError::input(format!(
            "tfstate: {} is not UTF-8 text, so not a Terraform state",
            path.display()
        ))
        .hint("point the plugin's `path` at the terraform.tfstate file")
    })
}

/// The plugins every config has even when `plugins:` does not name them, as in ecspresso: their
/// functions only call AWS when a template uses them.
pub const DEFAULT_PLUGINS: &[&str] = &["ssm", "secretsmanager"];

/// Loads a config whose fields may call the functions of the plugins it declares (ecspresso
/// v3: `cluster: "{{ tfstate `aws_ecs_cluster.main.name` }}"`), and hands on the config with
/// the render context its definitions use (`ctx` plus its plugins' functions, reading through
/// `lookups`).
///
/// The config is rendered once with every name that is neither a known function nor a builtin
/// answering a placeholder. When no such name was called, that render is the config. Otherwise
/// its `plugins:` (which cannot use plugin functions itself: it says what they are) and
/// `region:` set up the plugins, and the file is rendered again with them, strictly: a name
/// no plugin defines is then the usual located error. A `region:` that calls a plugin function
/// leaves the plugins' own lookups to `--region` or the environment.
pub(crate) fn load_with_plugins(
    ctx: &RenderContext,
    path: &Path,
    lookups: &Lookups,
) -> Result<(Config, RenderContext)> {
    use std::sync::atomic::{AtomicBool, Ordering};
    let called = std::sync::Arc::new(AtomicBool::new(false));
    let seen = called.clone();
    let mut first_ctx = ctx.clone();
    first_ctx.funcs = ctx.funcs.with_fallback(std::sync::Arc::new(move |_args| {
        seen.store(true, Ordering::Relaxed);
        Ok(super::template::Value::Str(config::PENDING.to_string()))
    }));
    let document = super::load(&first_ctx, path)?;
    if !called.load(Ordering::Relaxed) {
        let config = config::from_document(ctx, document, path)?;
        let ctx = with_plugins(ctx, &config, lookups)?;
        return Ok((config, ctx));
    }
    let first = config::first_pass(document, path)?;
    let full = with_plugins(ctx, &first, lookups)?;
    let config = config::load(&full, path)?;
    Ok((config, full))
}

/// `ctx` with the functions of every plugin `config` names (plus [`DEFAULT_PLUGINS`]), reading
/// through `lookups`.
pub fn with_plugins(
    ctx: &RenderContext,
    config: &Config,
    lookups: &Lookups,
) -> Result<RenderContext> {
    let mut out = ctx.clone();
    let mut errors = Vec::new();
    let reader = Reader {
        lookups: lookups.clone(),
        region: lookups.region_for(config),
        secrets: ctx.secrets.clone(),
        vars: ctx.vars.clone(),
    };
    // (index in `plugins:`, name, func_prefix, config); the defaults come last.
    let mut plugins: Vec<(Option<usize>, String, &str, &serde_json::Value)> = config
        .plugins
        .iter()
        .enumerate()
        .map(|(i, p)| {
            (
                Some(i),
                p.name.to_ascii_lowercase(),
                p.func_prefix.as_str(),
                &p.config,
            )
        })
        .collect();
    for name in DEFAULT_PLUGINS {
        plugins.push((None, name.to_string(), "", &serde_json::Value::Null));
    }
    // Function name -> the `plugins:` entry that defined it.
    let mut defined: HashMap<String, Option<usize>> = HashMap::new();
    for (i, name, prefix, plugin_config) in plugins {
        let at = |key: &str| match i {
            Some(i) => config.document.locate(&format!("/plugins/{i}{key}")),
            None => config.document.locate(""),
        };
        let (funcs, natives) = match plugin_funcs(&name, &reader, config, i, plugin_config) {
            Ok(Some(made)) => made,
            Ok(None) => {
                errors.push(unknown_plugin(&name).at(at("/name")));
                continue;
            }
            Err(d) => {
                errors.push(d);
                continue;
            }
        };
        let funcs = funcs.with_prefix(prefix);
        if clashes(&funcs, &defined, i, &name, &at("/name"), &mut errors) {
            continue;
        }
        for f in funcs.names() {
            defined.insert(f.to_string(), i);
        }
        for (native, params, func) in natives {
            if let Some(f) = funcs.get(&format!("{prefix}{func}")) {
                out.natives.push(Native {
                    name: format!("{prefix}{native}"),
                    params,
                    func: f.clone(),
                });
            }
        }
        out.funcs.extend(funcs);
    }
    if !errors.is_empty() {
        return Err(Error::findings(errors));
    }
    Ok(out)
}

/// The finding for a plugin name cortado does not know.
fn unknown_plugin(name: &str) -> Diagnostic {
    let known = PLUGINS.iter().map(|(n, _)| *n);
    let list =
        "cortado knows the plugins ssm, tfstate, cloudformation, secretsmanager and external";
    let hint = match did_you_mean(name, known) {
        Some(s) => format!("did you mean `{s}`? {list}"),
        None => list.to_string(),
    };
    Diagnostic::error(format!("unknown plugin \"{name}\"")).hint(hint)
}

/// Whether a function of plugin `name` (`plugins[i]`, or a default plugin when `i` is `None`)
/// is already `defined`; two configured plugins defining one name is a finding (at `at`). A
/// default plugin never overrides a configured one.
fn clashes(
    funcs: &Funcs,
    defined: &HashMap<String, Option<usize>>,
    i: Option<usize>,
    name: &str,
    at: &Location,
    errors: &mut Vec<Diagnostic>,
) -> bool {
    let mut clash = false;
    for f in funcs.names() {
        match (defined.get(f), i) {
            (Some(_), None) => clash = true,
            (Some(first), Some(_)) => {
                clash = true;
                let first = first.map_or(String::new(), |n| format!(" (plugins[{n}])"));
                errors.push(
                    Diagnostic::error(format!(
                        "template function {f} is defined by two plugins{first}"
                    ))
                    .at(at.clone())
                    .hint(format!(
                        "give this {name} plugin a `func_prefix` (e.g. `func_prefix: second_`) and call its functions with it"
                    )),
                );
            }
            (None, _) => {}
        }
    }
    clash
}

/// A plugin's Jsonnet natives: (Jsonnet name, parameters, the template function it calls),
/// both names without the plugin's `func_prefix`.
type NativeList = Vec<(String, NativeParams, String)>;

/// A plugin's template functions (unprefixed) and its Jsonnet natives; `None` for a plugin
/// cortado does not know.
fn plugin_funcs(
    name: &str,
    reader: &Reader,
    config: &Config,
    i: Option<usize>,
    plugin_config: &serde_json::Value,
) -> std::result::Result<Option<(Funcs, NativeList)>, Diagnostic> {
    let mut funcs = Funcs::new();
    let reader = reader.clone();
    let natives: Vec<(&str, NativeParams, &str)> = match name {
        "ssm" => {
            funcs.insert("ssm", ssm_func(reader));
            vec![
                ("ssm", NativeParams::One, "ssm"),
                ("ssm_list", NativeParams::NameAndIndex, "ssm"),
            ]
        }
        "cloudformation" => {
            funcs.insert("cfn_output", cfn_output_func(reader.clone()));
            funcs.insert("cfn_export", cfn_export_func(reader));
            vec![
                ("cfn_output", NativeParams::Two, "cfn_output"),
                ("cfn_export", NativeParams::One, "cfn_export"),
            ]
        }
        "secretsmanager" => {
            funcs.insert("secretsmanager_arn", secret_arn_func(reader));
            vec![(
                "secretsmanager_arn",
                NativeParams::One,
                "secretsmanager_arn",
            )]
        }
        "tfstate" => {
            let source = Arc::new(TfSource::from_config(
                config,
                i.unwrap_or(0),
                plugin_config,
            )?);
            let optional = tfstate_optional(config, i.unwrap_or(0), plugin_config)?;
            funcs.insert(
                "tfstate",
                tfstate_func(reader.clone(), source.clone(), optional, false),
            );
            funcs.insert("tfstatef", tfstate_func(reader, source, optional, true));
            vec![("tfstate", NativeParams::One, "tfstate")]
        }
        "external" => {
            let i = i.unwrap_or(0);
            let at = |key: &str| config.document.locate(&format!("/plugins/{i}{key}"));
            let spec = super::external::Spec::from_config(plugin_config, &at)?;
            let name = spec.name.clone();
            let params = NativeParams::Strings(spec.num_args);
            funcs.insert(
                name.clone(),
                super::external::func(spec, reader.vars.clone()),
            );
            return Ok(Some((funcs, vec![(name.clone(), params, name)])));
        }
        _ => return Ok(None),
    };
    let natives = natives
        .into_iter()
        .map(|(n, p, f)| (n.to_string(), p, f.to_string()))
        .collect();
    Ok(Some((funcs, natives)))
}

/// What every plugin function reads through: the run's lookups, the config's region, and the
/// secrets every output masks.
#[derive(Clone)]
struct Reader {
    lookups: Lookups,
    region: Option<String>,
    secrets: super::Secrets,
    /// The variables templates see: the environment of `external` commands.
    vars: Arc<std::collections::BTreeMap<String, String>>,
}

impl Reader {
    fn ask(&self, query: &Query) -> std::result::Result<Answer, FuncError> {
        self.lookups.ask(self.region.as_deref(), query)
    }

    fn region_name(&self) -> &str {
        self.region.as_deref().unwrap_or("the default region")
    }
}

/// The string arguments of a call, or the usage error.
fn strings<'a>(
    func: &str,
    args: &'a [Value],
    want: usize,
    usage: &str,
) -> std::result::Result<Vec<&'a str>, FuncError> {
    let all: Option<Vec<&str>> = args
        .iter()
        .map(|a| match a {
            Value::Str(s) => Some(s.as_str()),
            _ => None,
        })
        .collect();
    match all {
        Some(v) if v.len() == want => Ok(v),
        _ => Err(FuncError::input(format!(
            "{func} takes {want} string argument(s), got {} ({})",
            args.len(),
            args.iter().map(Value::kind).collect::<Vec<_>>().join(", ")
        ))
        .hint(format!("call it as {usage}"))),
    }
}

/// The `ssm` function, registering SecureString values as secrets.
fn ssm_func(reader: Reader) -> Func {
    Arc::new(move |args: &[Value]| {
        let usage = "call it as {{ ssm `/path/name` }} or, for an element of a StringList, {{ ssm `/path/name` 0 }}";
        let (name, index) = match args {
            [Value::Str(n)] => (n.as_str(), None),
            [Value::Str(n), Value::Int(i)] => (n.as_str(), Some(*i)),
            _ => {
                return Err(FuncError::input(format!(
                    "ssm takes a parameter name and an optional index, got {} argument(s) ({})",
                    args.len(),
                    args.iter().map(Value::kind).collect::<Vec<_>>().join(", ")
                ))
                .hint(usage));
            }
        };
        let (value, kind) = reader
            .lookups
            .ssm_parameter(reader.region.as_deref(), name)?;
        if kind == "SecureString" {
            reader.secrets.add(value.clone());
        }
        let Some(i) = index else {
            return Ok(Value::Str(value));
        };
        if kind != "StringList" {
            return Err(FuncError::input(format!(
                "ssm: parameter {name} is a {kind}, so it takes no index"
            ))
            .hint("drop the index, or make the parameter a StringList"));
        }
        let items: Vec<&str> = value.split(',').collect();
        usize::try_from(i)
            .ok()
            .and_then(|i| items.get(i))
            .map(|s| Value::Str(s.to_string()))
            .ok_or_else(|| {
                FuncError::input(format!(
                    "ssm: index {i} is out of range for StringList parameter {name} ({} element(s))",
                    items.len()
                ))
                .hint("indexes start at 0")
            })
    })
}

/// The value named `name` among `pairs`, or an error with a did-you-mean.
fn pick(
    pairs: &[(String, String)],
    name: &str,
    missing: String,
    what: &str,
) -> std::result::Result<Value, FuncError> {
    if let Some((_, v)) = pairs.iter().find(|(k, _)| k == name) {
        return Ok(Value::Str(v.clone()));
    }
    let names: Vec<&str> = pairs.iter().map(|(k, _)| k.as_str()).collect();
    let hint = match did_you_mean(name, names.iter().copied()) {
        Some(m) => format!("did you mean {m:?}?"),
        None if names.is_empty() => format!("there are no {what}"),
        None => {
            let shown: Vec<&str> = names.iter().copied().take(10).collect();
            let more = names.len().saturating_sub(shown.len());
            let mut h = format!("{what}: {}", shown.join(", "));
            if more > 0 {
                h.push_str(&format!(" (and {more} more)"));
            }
            h
        }
    };
    Err(FuncError::input(missing).hint(hint))
}

/// `cfn_output STACK KEY`: an output value of a CloudFormation stack.
fn cfn_output_func(reader: Reader) -> Func {
    Arc::new(move |args: &[Value]| {
        let a = strings(
            "cfn_output",
            args,
            2,
            "{{ cfn_output `STACK` `OUTPUT_KEY` }}",
        )?;
        let (stack, key) = (a[0], a[1]);
        let q = Query::StackOutputs(stack.to_string());
        match reader.ask(&q)? {
            Answer::Pairs(outputs) => pick(
                &outputs,
                key,
                format!(
                    "cfn_output: CloudFormation stack {stack} has no output {key:?} (region {})",
                    reader.region_name()
                ),
                "the stack's outputs",
            ),
            other => Err(unexpected(&q, &other)),
        }
    })
}

/// `cfn_export NAME`: the value of a CloudFormation export.
fn cfn_export_func(reader: Reader) -> Func {
    Arc::new(move |args: &[Value]| {
        let a = strings("cfn_export", args, 1, "{{ cfn_export `EXPORT_NAME` }}")?;
        match reader.ask(&Query::Exports)? {
            Answer::Pairs(exports) => pick(
                &exports,
                a[0],
                format!(
                    "cfn_export: no CloudFormation export is named {:?} in region {}",
                    a[0],
                    reader.region_name()
                ),
                "exports in the region",
            ),
            other => Err(unexpected(&Query::Exports, &other)),
        }
    })
}

/// `secretsmanager_arn NAME`: a secret's ARN (not its value).
fn secret_arn_func(reader: Reader) -> Func {
    Arc::new(move |args: &[Value]| {
        let a = strings(
            "secretsmanager_arn",
            args,
            1,
            "{{ secretsmanager_arn `SECRET_NAME` }}",
        )?;
        let q = Query::SecretArn(a[0].to_string());
        match reader.ask(&q)? {
            Answer::Text(arn) => Ok(Value::Str(arn)),
            other => Err(unexpected(&q, &other)),
        }
    })
}

/// A tfstate plugin's `optional:` (ecspresso's meaning: a state that cannot be read is an empty
/// state, so only a lookup in it fails, as "not found"); a value that is not a boolean is an
/// input error at config load.
fn tfstate_optional(
    config: &Config,
    i: usize,
    plugin_config: &serde_json::Value,
) -> std::result::Result<bool, Diagnostic> {
    match plugin_config.get("optional") {
        None | Some(serde_json::Value::Null) => Ok(false),
        Some(serde_json::Value::Bool(b)) => Ok(*b),
        Some(other) => Err(Diagnostic::error(format!(
            "the tfstate plugin's `optional` must be true or false, found {other}"
        ))
        .at(config
            .document
            .locate(&format!("/plugins/{i}/config/optional")))
        .hint("write `optional: true` (a missing state is then an empty one) or leave it out")),
    }
}

/// `tfstate ADDRESS`, or with `formatted`, `tfstatef FORMAT ARGS...`. With `optional`, a
/// state that cannot be read answers every address with "not found" (and why).
fn tfstate_func(reader: Reader, source: Arc<TfSource>, optional: bool, formatted: bool) -> Func {
    Arc::new(move |args: &[Value]| {
        let address = if formatted {
            match args.first() {
                Some(Value::Str(_)) => super::template::sprintf(args).map_err(|m| {
                    FuncError::input(format!("tfstatef: {m}"))
                        .hint("call it as {{ tfstatef `aws_subnet.private['%s'].id` `KEY` }}")
                })?,
                _ => {
                    return Err(FuncError::input(
                        "tfstatef takes a format string and its arguments",
                    )
                    .hint("call it as {{ tfstatef `aws_subnet.private['%s'].id` `KEY` }}"));
                }
            }
        } else {
            strings("tfstate", args, 1, "{{ tfstate `TYPE.NAME.ATTRIBUTE` }}")?[0].to_string()
        };
        let state = match reader.lookups.tfstate(reader.region.as_deref(), &source) {
            Ok(state) => state,
            Err(e) if optional => {
                return Err(FuncError::input(format!(
                    "tfstate: {address} is not found: the optional state {} could not be read, so it is empty ({})",
                    source.show(),
                    e.message
                ))
                .hint("create the state first (terraform apply), or stop using this address while the state is absent"));
            }
            Err(e) => return Err(e),
        };
        let (value, sensitive) = state.lookup(&address)?;
        if sensitive {
            reader.secrets.add(value.clone());
        }
        Ok(Value::Str(value))
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::path::Path;
    use std::time::{Duration, Instant};

    use super::*;
    use crate::render::load_str;

    fn config(yaml: &str) -> Config {
        // One folder per call: tests run in parallel and must not share files.
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("cortado-plugins-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("cortado.yml");
        std::fs::write(&path, yaml).unwrap();
        crate::config::load(&RenderContext::new(BTreeMap::new()), &path).unwrap()
    }

    /// Fake lookups (no `--region`) and the (region, name) of every fetch they make.
    fn fake() -> (Lookups, Calls) {
        fake_in(None)
    }

    type Calls = Arc<Mutex<Vec<(Option<String>, String)>>>;

    fn fake_in(run_region: Option<&str>) -> (Lookups, Calls) {
        let calls = Arc::new(Mutex::new(Vec::new()));
        let c = calls.clone();
        let fetch: Fetch = Arc::new(move |region: Option<&str>, query: &Query| {
            let name = match query {
                Query::Parameter(n) => n.clone(),
                Query::StackOutputs(s) => format!("stack:{s}"),
                Query::Exports => "exports".to_string(),
                Query::SecretArn(n) => format!("secret:{n}"),
                Query::Object { bucket, key } => format!("s3://{bucket}/{key}"),
            };
            c.lock()
                .unwrap()
                .push((region.map(str::to_string), name.clone()));
            let param = |value: &str, kind: &str| {
                Ok(Answer::Parameter {
                    value: value.into(),
                    kind: kind.into(),
                })
            };
            let pairs = |p: &[(&str, &str)]| {
                Ok(Answer::Pairs(
                    p.iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect(),
                ))
            };
            match name.as_str() {
                "/db/password" => param("pa55-word", "SecureString"),
                "/hosts" => param("a.example,b.example,c.example", "StringList"),
                "/plain" => param("hello", "String"),
                "/denied" => Err(FuncError::aws(
                    "SSM GetParameter on SSM parameter /denied failed: AccessDeniedException",
                )
                .hint("grant ssm:GetParameter on the parameter")),
                "stack:net" => pairs(&[("SubnetAz1", "subnet-a"), ("SubnetAz2", "subnet-b")]),
                "exports" => pairs(&[("net-SecurityGroupId", "sg-123")]),
                "secret:app/db" => Ok(Answer::Text(
                    "arn:aws:secretsmanager:us-east-1:123456789012:secret:app/db-AbCdEf".into(),
                )),
                "s3://states/web.tfstate" => Ok(Answer::Text(
                    include_str!("../../tests/fixtures/tfstate/terraform.tfstate").into(),
                )),
                other => Err(FuncError::input(format!("{other} does not exist"))),
            }
        });
        (
            Lookups::with_fetch(run_region.map(str::to_string), fetch),
            calls,
        )
    }

    fn render(ctx: &RenderContext, text: &str) -> std::result::Result<String, String> {
        load_str(ctx, Path::new("t.json"), text.to_string())
            .map(|d| d.value.to_string())
            .map_err(|e| e.to_string())
    }

    #[test]
    fn ssm_registered_under_prefix_and_masks_secure_strings() {
        let cfg = config("cluster: c\nplugins:\n  - name: ssm\n    func_prefix: p_\n");
        let base = RenderContext::new(BTreeMap::new());
        let (lookups, _) = fake();
        let ctx = with_plugins(&base, &cfg, &lookups).unwrap();
        assert!(ctx.funcs.contains("p_ssm"));
        // ssm is also there unprefixed, as a default plugin (as in ecspresso).
        assert!(ctx.funcs.contains("ssm"));
        assert!(!base.funcs.contains("p_ssm"));
        let out = render(
            &ctx,
            r#"{"a": "{{ p_ssm `/db/password` }}", "b": "{{ p_ssm `/plain` }}"}"#,
        )
        .unwrap();
        assert_eq!(out, r#"{"a":"pa55-word","b":"hello"}"#);
        // The context shares its secrets with the base one: printers set up before see it.
        assert_eq!(base.secrets.values(), vec!["pa55-word".to_string()]);
        assert_eq!(base.secrets.mask(&out), r#"{"a":"***","b":"hello"}"#);
    }

    #[test]
    fn string_list_index() {
        let cfg = config("cluster: c\nplugins: [{name: ssm}]\n");
        let base = RenderContext::new(BTreeMap::new());
        let (lookups, _) = fake();
        let ctx = with_plugins(&base, &cfg, &lookups).unwrap();
        assert_eq!(
            render(&ctx, r#"["{{ ssm `/hosts` 1 }}", "{{ ssm `/hosts` }}"]"#).unwrap(),
            r#"["b.example","a.example,b.example,c.example"]"#
        );
        let err = render(&ctx, r#"["{{ ssm `/hosts` 3 }}"]"#).unwrap_err();
        assert!(err.contains("index 3 is out of range"), "{err}");
        let err = render(&ctx, r#"["{{ ssm `/plain` 0 }}"]"#).unwrap_err();
        assert!(err.contains("takes no index"), "{err}");
        let err = render(&ctx, r#"["{{ ssm `/missing` }}"]"#).unwrap_err();
        assert!(err.contains("/missing does not exist"), "{err}");
        assert!(base.secrets.values().is_empty());
    }

    #[test]
    fn aws_errors_behind_a_lookup_exit_7_at_the_call() {
        let cfg = config("cluster: c\nplugins: [{name: ssm}]\n");
        let (lookups, _) = fake();
        let ctx = with_plugins(&RenderContext::new(BTreeMap::new()), &cfg, &lookups).unwrap();
        let text = "{\n  \"a\": \"{{ ssm `/denied` }}\"\n}\n";
        let err = load_str(&ctx, Path::new("t.json"), text.to_string()).unwrap_err();
        assert_eq!(err.exit_code(), crate::error::ExitCode::Aws, "{err}");
        let d = &err.diagnostics[0];
        assert!(
            d.message.contains("/denied") && d.message.contains("AccessDenied"),
            "{d}"
        );
        assert_eq!(
            d.hint.as_deref(),
            Some("grant ssm:GetParameter on the parameter")
        );
        let loc = d.location.as_ref().unwrap();
        assert_eq!(
            (loc.path.as_path(), loc.line, loc.col),
            (Path::new("t.json"), 2, 12)
        );
        // A missing parameter is the user's input: exit 1, same place.
        let text = "{\n  \"a\": \"{{ ssm `/missing` }}\"\n}\n";
        let err = load_str(&ctx, Path::new("t.json"), text.to_string()).unwrap_err();
        assert_eq!(err.exit_code(), crate::error::ExitCode::BadInput, "{err}");
        let loc = err.diagnostics[0].location.as_ref().unwrap();
        assert_eq!((loc.line, loc.col), (2, 12));
    }

    /// A config folder holding the fixture state, and a config of `plugins` in it.
    fn config_with_state(plugins: &str) -> Config {
        let cfg = config(&format!("cluster: c\nplugins:\n{plugins}"));
        let dir = cfg.path.parent().unwrap();
        std::fs::create_dir_all(dir.join("tf")).unwrap();
        std::fs::copy(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tfstate/terraform.tfstate"),
            dir.join("tf/terraform.tfstate"),
        )
        .unwrap();
        cfg
    }

    #[test]
    fn tfstate_from_a_file_relative_to_the_config_read_once() {
        let cfg = config_with_state(
            "  - name: tfstate\n    config: {path: tf/terraform.tfstate}\n  - name: tfstate\n    func_prefix: s3_\n    config: {url: s3://states/web.tfstate}\n",
        );
        let base = RenderContext::new(BTreeMap::new());
        let (lookups, calls) = fake();
        let ctx = with_plugins(&base, &cfg, &lookups).unwrap();
        let text = r#"["{{ tfstate `aws_iam_role.task.arn` }}", "{{ tfstatef `aws_security_group.app['%s'].id` `web` }}", "{{ tfstatef `aws_subnet.private[%d].id` 1 }}", "{{ s3_tfstate `output.vpc_id` }}", "{{ s3_tfstate `output.db_password` }}"]"#;
        assert_eq!(
            render(&ctx, text).unwrap(),
            r#"["arn:aws:iam::123456789012:role/web-task","sg-web","subnet-111","vpc-0a1b2c3d","hunter2"]"#
        );
        render(&ctx, text).unwrap();
        // The local file needs no AWS; the S3 state is fetched once for both renders.
        assert_eq!(
            *calls.lock().unwrap(),
            vec![(None, "s3://states/web.tfstate".to_string())]
        );
        // A sensitive output is a secret.
        assert_eq!(base.secrets.values(), vec!["hunter2".to_string()]);
        // A missing address: located at the call, exit 1, with a suggestion.
        let text = "{\n  \"a\": \"{{ tfstate `aws_iam_role.tsak.arn` }}\"\n}\n";
        let err = load_str(&ctx, Path::new("t.json"), text.to_string()).unwrap_err();
        assert_eq!(err.exit_code(), crate::error::ExitCode::BadInput, "{err}");
        let d = &err.diagnostics[0];
        assert!(
            d.message.contains("aws_iam_role.tsak is not in the state"),
            "{d}"
        );
        assert_eq!(d.hint.as_deref(), Some("did you mean aws_iam_role.task?"));
        let loc = d.location.as_ref().unwrap();
        assert_eq!((loc.line, loc.col), (2, 12));
    }

    #[test]
    fn jsonnet_reaches_plugin_functions_as_natives() {
        let cfg = config_with_state(
            "  - name: tfstate\n    func_prefix: tf_\n    config: {path: tf/terraform.tfstate}\n  - name: ssm\n  - name: cloudformation\n  - name: secretsmanager\n",
        );
        let base = RenderContext::new(BTreeMap::new());
        let (lookups, _) = fake();
        let ctx = with_plugins(&base, &cfg, &lookups).unwrap();
        let dir = cfg.path.parent().unwrap();
        let file = dir.join("td.jsonnet");
        std::fs::write(
            &file,
            "local tfstate = std.native('tf_tfstate');\n{\n  role: tfstate('aws_iam_role.task.arn'),\n  sg: tfstate('aws_security_group.app[\"%s\"].id' % 'worker'),\n  pw: std.native('ssm')('/db/password'),\n  host: std.native('ssm_list')('/hosts', 2),\n  subnet: std.native('cfn_output')('net', 'SubnetAz2'),\n  sg2: std.native('cfn_export')('net-SecurityGroupId'),\n  arn: std.native('secretsmanager_arn')('app/db'),\n}\n",
        )
        .unwrap();
        let doc = crate::render::load(&ctx, &file).unwrap();
        assert_eq!(
            doc.value,
            serde_json::json!({
                "role": "arn:aws:iam::123456789012:role/web-task",
                "sg": "sg-worker",
                "pw": "pa55-word",
                "host": "c.example",
                "subnet": "subnet-b",
                "sg2": "sg-123",
                "arn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:app/db-AbCdEf",
            })
        );
        assert_eq!(base.secrets.values(), vec!["pa55-word".to_string()]);
        // A missing address: an input error at the Jsonnet call, with the suggestion.
        std::fs::write(
            &file,
            "{\n  a: std.native('tf_tfstate')('aws_iam_role.tsak.arn'),\n}\n",
        )
        .unwrap();
        let err = crate::render::load(&ctx, &file).unwrap_err();
        assert_eq!(err.exit_code(), crate::error::ExitCode::BadInput, "{err}");
        let text = err.to_string();
        assert!(text.contains("did you mean aws_iam_role.task?"), "{text}");
        assert!(text.contains("td.jsonnet:2:"), "{text}");
        // An AWS error behind a native stays an AWS error (exit 7).
        std::fs::write(&file, "{ a: std.native('ssm')('/denied') }\n").unwrap();
        let err = crate::render::load(&ctx, &file).unwrap_err();
        assert_eq!(err.exit_code(), crate::error::ExitCode::Aws, "{err}");
        assert!(err.to_string().contains("AccessDenied"), "{err}");
    }

    #[test]
    fn tfstate_config_errors_are_located_at_config_load() {
        for (plugins, want) in [
            ("  - name: tfstate\n", "names no state"),
            (
                "  - name: tfstate\n    config: {path: a, url: s3://b/k}\n",
                "both `path` and `url`",
            ),
            (
                "  - name: tfstate\n    config: {url: gs://b/k}\n",
                "scheme \"gs\" is not supported",
            ),
            (
                "  - name: tfstate\n    config: {url: s3://bucket}\n",
                "names no bucket and key",
            ),
            (
                "  - name: tfstate\n    config: {path: 5}\n",
                "non-empty string",
            ),
        ] {
            let cfg = config(&format!("cluster: c\nplugins:\n{plugins}"));
            let (lookups, _) = fake();
            let Err(err) = with_plugins(&RenderContext::new(BTreeMap::new()), &cfg, &lookups)
            else {
                panic!("{plugins}: accepted");
            };
            assert!(err.to_string().contains(want), "{plugins}: {err}");
            assert_eq!(err.exit_code(), crate::error::ExitCode::BadInput);
            let loc = err.diagnostics[0].location.as_ref().unwrap();
            assert!(loc.line >= 2, "{plugins}: {err}");
        }
        // States beyond the 10 MiB limit of definitions are read; bytes that are not UTF-8
        // are an error naming the file.
        let cfg =
            config("cluster: c\nplugins:\n  - name: tfstate\n    config: {path: big.tfstate}\n");
        let dir = cfg.path.parent().unwrap();
        let big = format!(
            r#"{{"version": 4, "resources": [{{"mode": "managed", "type": "t", "name": "n", "instances": [{{"attributes": {{"id": "x", "pad": "{}"}}}}]}}]}}"#,
            "a".repeat(12 << 20)
        );
        std::fs::write(dir.join("big.tfstate"), big).unwrap();
        let (lookups, _) = fake();
        let ctx = with_plugins(&RenderContext::new(BTreeMap::new()), &cfg, &lookups).unwrap();
        assert_eq!(
            render(&ctx, r#"["{{ tfstate `t.n.id` }}"]"#).unwrap(),
            r#"["x"]"#
        );
        std::fs::write(dir.join("big.tfstate"), b"{\xff}").unwrap();
        let (lookups, _) = fake();
        let ctx = with_plugins(&RenderContext::new(BTreeMap::new()), &cfg, &lookups).unwrap();
        let err = render(&ctx, r#"["{{ tfstate `t.n.id` }}"]"#).unwrap_err();
        assert!(err.contains("is not UTF-8 text"), "{err}");
        // A path that does not exist fails at the call, naming the file.
        let cfg =
            config("cluster: c\nplugins:\n  - name: tfstate\n    config: {path: nope.tfstate}\n");
        let (lookups, _) = fake();
        let ctx = with_plugins(&RenderContext::new(BTreeMap::new()), &cfg, &lookups).unwrap();
        let err = render(&ctx, r#"["{{ tfstate `a.b.c` }}"]"#).unwrap_err();
        assert!(err.contains("nope.tfstate does not exist"), "{err}");
    }

    #[test]
    fn an_optional_tfstate_that_is_missing_is_empty_and_only_its_lookups_fail() {
        let cfg = config_with_state(
            "  - name: tfstate\n    config: {path: gone.tfstate, optional: true}\n  - name: tfstate\n    func_prefix: here_\n    config: {path: tf/terraform.tfstate, optional: true}\n  - name: tfstate\n    func_prefix: s3_\n    config: {url: s3://states/absent.tfstate, optional: true}\n",
        );
        let (lookups, _) = fake();
        let ctx = with_plugins(&RenderContext::new(BTreeMap::new()), &cfg, &lookups).unwrap();
        // A file without a lookup in the missing state renders; a present optional state reads.
        assert_eq!(
            render(&ctx, r#"["{{ here_tfstate `data.aws_vpc.main.id` }}"]"#).unwrap(),
            r#"["vpc-0a1b2c3d"]"#
        );
        for call in [
            "tfstate `aws_vpc.main.id`",
            "s3_tfstatef `aws_subnet.a[%d].id` 1",
        ] {
            let text = format!("{{\n  \"a\": \"{{{{ {call} }}}}\"\n}}\n");
            let err = load_str(&ctx, Path::new("t.json"), text).unwrap_err();
            assert_eq!(err.exit_code(), crate::error::ExitCode::BadInput, "{err}");
            let d = &err.diagnostics[0];
            assert!(
                d.message.contains("is not found: the optional state"),
                "{d}"
            );
            assert!(d.message.contains("could not be read"), "{d}");
            let loc = d.location.as_ref().unwrap();
            assert_eq!((loc.line, loc.col), (2, 12), "{d}");
        }
        // Without `optional`, the same missing file is the read error it always was.
        let cfg =
            config("cluster: c\nplugins:\n  - name: tfstate\n    config: {path: gone.tfstate}\n");
        let ctx = with_plugins(&RenderContext::new(BTreeMap::new()), &cfg, &lookups).unwrap();
        let err = render(&ctx, r#"["{{ tfstate `aws_vpc.main.id` }}"]"#).unwrap_err();
        assert!(err.contains("gone.tfstate does not exist"), "{err}");
        // `optional` is a boolean, checked at config load.
        let cfg = config(
            "cluster: c\nplugins:\n  - name: tfstate\n    config: {path: a.tfstate, optional: 'yes'}\n",
        );
        let Err(err) = with_plugins(&RenderContext::new(BTreeMap::new()), &cfg, &lookups) else {
            panic!("optional: 'yes' was accepted");
        };
        assert!(
            err.to_string().contains("`optional` must be true or false"),
            "{err}"
        );
        assert!(err.to_string().contains("cortado.yml:4:"), "{err}");
    }

    /// A folder holding `script` as `tool.sh`, and a context with the plugins of `plugins`
    /// (where `TOOL` stands for the script's path) over PATH and TOOL_DIR only (what the
    /// command sees).
    fn external_ctx(plugins: &str, script: &str) -> (RenderContext, PathBuf) {
        let dir = config("cluster: c\n").path.parent().unwrap().to_path_buf();
        let tool = dir.join("tool.sh");
        std::fs::write(&tool, script).unwrap();
        let path = dir.join("ext.yml");
        let plugins = plugins.replace("TOOL", &format!("{:?}", tool.display().to_string()));
        std::fs::write(&path, format!("cluster: c\nplugins:\n{plugins}")).unwrap();
        let cfg = crate::config::load(&RenderContext::new(BTreeMap::new()), &path).unwrap();
        let mut vars = BTreeMap::new();
        vars.insert(
            "PATH".to_string(),
            std::env::var("PATH").unwrap_or_default(),
        );
        vars.insert("TOOL_DIR".to_string(), dir.display().to_string());
        let (lookups, _) = fake();
        let ctx = with_plugins(&RenderContext::new(vars), &cfg, &lookups).unwrap();
        (ctx, dir)
    }

    #[test]
    fn the_external_plugin_runs_its_command_per_call() {
        let script = r#"case "$1" in
  fail) echo "no such thing: $2" >&2; exit 3 ;;
  slow) sleep 5 ;;
  text) printf 'not json' ;;
  num) echo 42 ;;
  *) printf '{"Now": "%s", "dir": "%s"}\n' "$1" "$TOOL_DIR" ;;
esac
"#;
        let (ctx, dir) = external_ctx(
            "  - name: external\n    config:\n      name: stamp\n      command: [sh, TOOL]\n      num_args: 1\n      timeout: 1s\n  - name: external\n    func_prefix: x_\n    config: {name: raw, command: [sh, -c, 'printf \"%s|%s\" \"$1\" \"$2\"', sh], parser: string, num_args: 2}\n",
            script,
        );
        // No shell between: arguments arrive as they are; `parser: string` keeps the text.
        assert!(ctx.funcs.contains("stamp") && ctx.funcs.contains("x_raw"));
        assert_eq!(
            render(
                &ctx,
                r#"["{{ x_raw `a b` `$HOME` }}", "{{ x_raw `x` `y` | len }}"]"#
            )
            .unwrap(),
            r#"["a b|$HOME","3"]"#
        );
        // JSON output: objects come out as compact JSON, numbers as numbers.
        let dir_text = dir.display().to_string();
        assert_eq!(
            render(
                &ctx,
                r#"["{{ stamp `today` | json_escape }}", "{{ stamp `num` }}"]"#
            )
            .unwrap(),
            serde_json::json!([
                serde_json::json!({"Now": "today", "dir": dir_text}).to_string(),
                "42"
            ])
            .to_string()
        );
        // Failures are input errors at the call, with the command's standard error.
        for (arg, want) in [
            (
                "fail` `widget",
                "failed (exit status: 3); its standard error ends: no such thing: widget",
            ),
            ("text", "is not JSON"),
            ("slow", "did not finish within its timeout of 1s"),
        ] {
            let text = format!("{{\n  \"a\": \"{{{{ stamp `{arg}` }}}}\"\n}}\n");
            let started = Instant::now();
            let err = load_str(&ctx, Path::new("t.json"), text).unwrap_err();
            assert!(
                started.elapsed() < Duration::from_secs(4),
                "{arg}: took {:?}",
                started.elapsed()
            );
            assert_eq!(err.exit_code(), crate::error::ExitCode::BadInput, "{err}");
            let d = &err.diagnostics[0];
            assert!(d.message.contains(want), "{arg}: {d}");
            let loc = d.location.as_ref().unwrap();
            assert_eq!((loc.line, loc.col), (2, 12), "{d}");
        }
        // Jsonnet: a native of num_args strings.
        let file = dir.join("x.jsonnet");
        std::fs::write(
            &file,
            "local stamp = std.native('stamp');\n{ now: std.parseJson(stamp('jsonnet')).Now }\n",
        )
        .unwrap();
        assert_eq!(
            crate::render::load(&ctx, &file).unwrap().value,
            serde_json::json!({"now": "jsonnet"})
        );
        // A command that cannot start: located, saying which.
        let (ctx, _) = external_ctx(
            "  - name: external\n    config: {name: nope, command: [/no/such/program]}\n",
            "",
        );
        let err = render(&ctx, r#"["{{ nope }}"]"#).unwrap_err();
        assert!(err.contains("cannot start /no/such/program"), "{err}");
    }

    #[test]
    fn the_external_plugin_speaks_json_rpc_to_one_process() {
        // Answers `params[0]-id`, an error for "bad", nothing for "slow"; counts its starts.
        let script = r#"echo start >> "$TOOL_DIR/starts"
while IFS= read -r line; do
  id=$(printf '%s' "$line" | sed 's/.*"id":\([0-9]*\).*/\1/')
  p=$(printf '%s' "$line" | sed 's/.*"params":\["\([^"]*\)".*/\1/')
  case "$p" in
    bad) printf '{"jsonrpc":"2.0","error":{"code":-32000,"message":"no %s"},"id":%s}\n' "$p" "$id" ;;
    slow) echo "too slow for $p" >&2; sleep 3 ;;
    liar) printf '{"jsonrpc":"2.0","result":"x","id":999}\n' ;;
    *) printf '{"jsonrpc":"2.0","result":"%s-%s","id":%s}\n' "$p" "$id" "$id" ;;
  esac
done
"#;
        let (ctx, dir) = external_ctx(
            "  - name: external\n    config: {name: lookup, command: [sh, TOOL], num_args: 1, mode: jsonrpc, timeout: 1}\n",
            script,
        );
        let starts = || {
            std::fs::read_to_string(dir.join("starts"))
                .unwrap_or_default()
                .lines()
                .count()
        };
        assert_eq!(
            render(&ctx, r#"["{{ lookup `a` }}", "{{ lookup `b` }}"]"#).unwrap(),
            r#"["a-1","b-2"]"#
        );
        let err = render(&ctx, r#"["{{ lookup `bad` }}"]"#).unwrap_err();
        assert!(
            err.contains("answered with an error: no bad (code -32000)"),
            "{err}"
        );
        // An error response keeps the process; one start so far.
        assert_eq!(
            render(&ctx, r#"["{{ lookup `c` }}"]"#).unwrap(),
            r#"["c-4"]"#
        );
        assert_eq!(starts(), 1);
        // A timeout ends the process; the next call starts a new one (ids start again).
        let err = render(&ctx, r#"["{{ lookup `slow` }}"]"#).unwrap_err();
        assert!(
            err.contains("no response within its timeout of 1s"),
            "{err}"
        );
        assert!(
            err.contains("its standard error ends: too slow for slow"),
            "{err}"
        );
        assert_eq!(
            render(&ctx, r#"["{{ lookup `d` }}"]"#).unwrap(),
            r#"["d-1"]"#
        );
        assert_eq!(starts(), 2);
        // A response with another id is refused, and the process replaced.
        let err = render(&ctx, r#"["{{ lookup `liar` }}"]"#).unwrap_err();
        assert!(
            err.contains("its response has id 999, the request 2"),
            "{err}"
        );
        assert_eq!(
            render(&ctx, r#"["{{ lookup `e` }}"]"#).unwrap(),
            r#"["e-1"]"#
        );
        assert_eq!(starts(), 3);
    }

    #[test]
    fn cloudformation_and_secretsmanager_functions() {
        let cfg = config(
            "cluster: c\nregion: us-east-1\nplugins:\n  - name: cloudformation\n  - name: secretsmanager\n    func_prefix: sm_\n",
        );
        let base = RenderContext::new(BTreeMap::new());
        let (lookups, calls) = fake();
        let ctx = with_plugins(&base, &cfg, &lookups).unwrap();
        let text = r#"["{{ cfn_output `net` `SubnetAz1` }}", "{{ cfn_output `net` `SubnetAz2` }}", "{{ cfn_export `net-SecurityGroupId` }}", "{{ sm_secretsmanager_arn `app/db` }}"]"#;
        assert_eq!(
            render(&ctx, text).unwrap(),
            r#"["subnet-a","subnet-b","sg-123","arn:aws:secretsmanager:us-east-1:123456789012:secret:app/db-AbCdEf"]"#
        );
        // One DescribeStacks for two outputs of a stack.
        let us = Some("us-east-1".to_string());
        assert_eq!(
            *calls.lock().unwrap(),
            vec![
                (us.clone(), "stack:net".to_string()),
                (us.clone(), "exports".to_string()),
                (us, "secret:app/db".to_string()),
            ]
        );
        let err = render(&ctx, r#"["{{ cfn_output `net` `SubnetAz3` }}"]"#).unwrap_err();
        assert!(err.contains("has no output \"SubnetAz3\""), "{err}");
        assert!(err.contains("did you mean \"SubnetAz1\"?"), "{err}");
        let err = render(&ctx, r#"["{{ cfn_export `net-SecurityGroupID` }}"]"#).unwrap_err();
        assert!(
            err.contains("did you mean \"net-SecurityGroupId\"?"),
            "{err}"
        );
        let err = render(&ctx, r#"["{{ cfn_output `net` }}"]"#).unwrap_err();
        assert!(
            err.contains("cfn_output takes 2 string argument(s)"),
            "{err}"
        );
        let err = render(&ctx, r#"["{{ sm_secretsmanager_arn `nope` }}"]"#).unwrap_err();
        assert!(err.contains("secret:nope does not exist"), "{err}");
        // ARNs are not secrets.
        assert!(base.secrets.values().is_empty());
    }

    #[test]
    fn the_embedded_sandbox_refuses_aws_lookups_but_reads_local_states() {
        let cfg = config_with_state(
            "  - name: ssm\n  - name: cloudformation\n  - name: secretsmanager\n  - name: tfstate\n    config: {path: tf/terraform.tfstate}\n  - name: tfstate\n    func_prefix: s3_\n    config: {url: s3://b/k.tfstate}\n",
        );
        let lookups = Lookups::sandboxed(Some("us-east-1".into()));
        let ctx = with_plugins(&RenderContext::new(BTreeMap::new()), &cfg, &lookups).unwrap();
        assert_eq!(
            render(&ctx, r#"["{{ tfstate `data.aws_vpc.main.id` }}"]"#).unwrap(),
            r#"["vpc-0a1b2c3d"]"#
        );
        for (call, plugin, service) in [
            ("ssm `/a`", "ssm", "SSM Parameter Store"),
            ("cfn_output `s` `k`", "cloudformation", "CloudFormation"),
            ("cfn_export `e`", "cloudformation", "CloudFormation"),
            (
                "secretsmanager_arn `x`",
                "secretsmanager",
                "Secrets Manager",
            ),
            ("s3_tfstate `a.b.c`", "tfstate", "S3"),
        ] {
            let err =
                load_str(&ctx, Path::new("t.json"), format!("[\"{{{{ {call} }}}}\"]")).unwrap_err();
            let text = err.to_string();
            assert!(text.contains(&format!("plugin {plugin}:")), "{text}");
            assert!(
                text.contains(&format!("({service}) under --sandbox")),
                "{text}"
            );
            assert!(text.contains("t.json:1:"), "{text}");
            assert_eq!(err.exit_code(), crate::error::ExitCode::BadInput);
        }
        assert_eq!(lookups.clients_made(), 0);
        // A state over https from another host is not read under --sandbox either (nothing
        // is sent: the refusal comes before any connection).
        let cfg = config_with_state(
            "  - name: tfstate
    config: {url: 'https://ci:pw@states.example.com/web.tfstate'}
",
        );
        let ctx = with_plugins(&RenderContext::new(BTreeMap::new()), &cfg, &lookups).unwrap();
        let err = load_str(
            &ctx,
            Path::new("t.json"),
            "[\"{{ tfstate `a.b.c` }}\"]".into(),
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("cannot read https://states.example.com/web.tfstate under --sandbox"),
            "{err}"
        );
        assert!(!err.contains("pw@"), "{err}");
    }

    #[test]
    fn ssm_and_secretsmanager_are_there_without_plugins_as_in_ecspresso() {
        let cfg = config("cluster: c\n");
        let (lookups, calls) = fake();
        let ctx = with_plugins(&RenderContext::new(BTreeMap::new()), &cfg, &lookups).unwrap();
        assert!(!ctx.funcs.contains("tfstate") && !ctx.funcs.contains("cfn_output"));
        // Nothing is read until a template calls them.
        assert!(calls.lock().unwrap().is_empty());
        assert_eq!(
            render(
                &ctx,
                r#"["{{ ssm `/plain` }}", "{{ secretsmanager_arn `app/db` }}"]"#
            )
            .unwrap(),
            r#"["hello","arn:aws:secretsmanager:us-east-1:123456789012:secret:app/db-AbCdEf"]"#
        );
        // Plugin names are case-insensitive, as in ecspresso.
        let cfg = config("cluster: c\nplugins: [{name: CloudFormation}]\n");
        let ctx = with_plugins(&RenderContext::new(BTreeMap::new()), &cfg, &lookups).unwrap();
        assert!(ctx.funcs.contains("cfn_output"));
    }

    #[test]
    fn two_plugins_defining_one_function_need_a_prefix() {
        let cfg = config(
            "cluster: c\nplugins:\n  - name: tfstate\n    config: {path: a.tfstate}\n  - name: tfstate\n    config: {path: b.tfstate}\n",
        );
        let (lookups, _) = fake();
        let Err(err) = with_plugins(&RenderContext::new(BTreeMap::new()), &cfg, &lookups) else {
            panic!("two unprefixed tfstate plugins were accepted");
        };
        let text = err.to_string();
        assert!(
            text.contains("template function tfstate is defined by two plugins (plugins[0])"),
            "{text}"
        );
        assert!(text.contains("func_prefix"), "{text}");
        assert!(text.contains("cortado.yml:5:"), "{text}");
    }

    #[test]
    fn unknown_plugin_is_an_input_error_with_a_suggestion() {
        let cfg = config("cluster: c\nplugins:\n  - name: ssn\n");
        let (lookups, _) = fake();
        let Err(err) = with_plugins(&RenderContext::new(BTreeMap::new()), &cfg, &lookups) else {
            panic!("an unknown plugin was accepted");
        };
        let text = err.to_string();
        assert!(text.contains("unknown plugin \"ssn\""), "{text}");
        assert!(text.contains("did you mean `ssm`"), "{text}");
        assert_eq!(err.exit_code(), crate::error::ExitCode::BadInput);
    }

    #[test]
    fn run_region_wins_over_the_config_region_and_lookups_are_cached() {
        let text = r#"["{{ ssm `/plain` }}", "{{ ssm `/plain` }}", "{{ ssm `/hosts` 0 }}"]"#;
        let with_region = config("cluster: c\nregion: eu-west-1\nplugins: [{name: ssm}]\n");
        let base = RenderContext::new(BTreeMap::new());
        // No --region: the config's region.
        let (lookups, calls) = fake();
        let ctx = with_plugins(&base, &with_region, &lookups).unwrap();
        assert_eq!(
            render(&ctx, text).unwrap(),
            r#"["hello","hello","a.example"]"#
        );
        // A second file of the same run: no new fetch at all.
        render(&ctx, text).unwrap();
        let eu = Some("eu-west-1".to_string());
        assert_eq!(
            *calls.lock().unwrap(),
            vec![(eu.clone(), "/plain".into()), (eu, "/hosts".into())]
        );
        // --region wins over the config's.
        let (lookups, calls) = fake_in(Some("ap-south-1"));
        let ctx = with_plugins(&base, &with_region, &lookups).unwrap();
        render(&ctx, r#"["{{ ssm `/plain` }}"]"#).unwrap();
        assert_eq!(
            *calls.lock().unwrap(),
            vec![(Some("ap-south-1".to_string()), "/plain".into())]
        );
        // Neither: the SDK's chain decides (None).
        let (lookups, calls) = fake();
        let ctx = with_plugins(
            &base,
            &config("cluster: c\nplugins: [{name: ssm}]\n"),
            &lookups,
        )
        .unwrap();
        render(&ctx, r#"["{{ ssm `/plain` }}"]"#).unwrap();
        assert_eq!(*calls.lock().unwrap(), vec![(None, "/plain".into())]);
    }

    /// A sandbox with two parameters, a secret, a stack and a Terraform state in S3, and
    /// lookups pointed at it as a run would be.
    async fn sandbox_lookups() -> (cortado_sandbox::Sandbox, Lookups) {
        let seed = cortado_sandbox::Seed::parse(
            concat!(
                "parameters:\n  - {name: /app/pw, type: SecureString, value: hunter2}\n  - {name: /app/user, type: String, value: app}\n",
                "secrets:\n  - {name: app/db, secretString: pw, arn: 'arn:aws:secretsmanager:us-east-1:123456789012:secret:app/db-AbCdEf'}\n",
                "stacks:\n  - {stackName: net, outputs: [{outputKey: VpcId, outputValue: vpc-1, exportName: net-vpc}]}\n",
                "objects:\n  - {bucket: states, key: k.tfstate, body: '{\"version\": 4, \"outputs\": {\"foo\": {\"value\": \"FOO\", \"type\": \"string\"}}, \"resources\": []}'}\n",
            ),
            Path::new("seed.yml"),
        )
        .unwrap();
        let sb = cortado_sandbox::start(cortado_sandbox::Options {
            seed: Some(seed),
            ..cortado_sandbox::Options::default()
        })
        .await
        .unwrap();
        let lookups = Lookups::new(AwsSettings {
            region: Some("us-east-1".into()),
            endpoint_url: Some(sb.endpoint()),
            static_credentials: true,
            max_attempts: 1,
            assume_role_arn: None,
        });
        (sb, lookups)
    }

    fn get_parameter_calls(sb: &cortado_sandbox::Sandbox) -> usize {
        sb.control()
            .requests()
            .iter()
            .filter(|r| r.service == "ssm" && r.operation == "GetParameter")
            .count()
    }

    const TWO_FILES: [&str; 2] = [
        r#"{"pw": "{{ ssm `/app/pw` }}", "user": "{{ ssm `/app/user` }}"}"#,
        r#"{"pw": "{{ ssm `/app/pw` }}"}"#,
    ];

    /// As in `cortado deploy`: called from inside the multi-thread runtime.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn lookups_reach_the_run_endpoint_with_one_client_inside_the_runtime() {
        let (sb, lookups) = sandbox_lookups().await;
        assert_eq!(
            lookups.clients_made(),
            0,
            "nothing connects before a lookup"
        );
        let cfg = config("cluster: c\nplugins: [{name: ssm}]\n");
        let base = RenderContext::new(BTreeMap::new());
        let ctx = with_plugins(&base, &cfg, &lookups).unwrap();
        assert_eq!(
            render(&ctx, TWO_FILES[0]).unwrap(),
            r#"{"pw":"hunter2","user":"app"}"#
        );
        assert_eq!(render(&ctx, TWO_FILES[1]).unwrap(), r#"{"pw":"hunter2"}"#);
        assert_eq!(lookups.clients_made(), 1);
        assert_eq!(get_parameter_calls(&sb), 2, "/app/pw is read once");
        assert_eq!(base.secrets.values(), vec!["hunter2".to_string()]);
        // A missing parameter in the run's sandbox: the user's input, located.
        let err = load_str(
            &ctx,
            Path::new("t.json"),
            r#"["{{ ssm `/app/nope` }}"]"#.into(),
        )
        .unwrap_err();
        assert_eq!(err.exit_code(), crate::error::ExitCode::BadInput, "{err}");
        assert!(
            err.to_string().contains("/app/nope does not exist"),
            "{err}"
        );
        assert_eq!(lookups.clients_made(), 1);
    }

    /// `cortado sandbox serve` behind AWS_ENDPOINT_URL answers CloudFormation, Secrets Manager
    /// and S3 lookups from its seed; what it does not hold is the user's input error (exit 1),
    /// located at the call.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_standalone_sandbox_answers_cloudformation_secrets_and_s3_lookups() {
        let (sb, lookups) = sandbox_lookups().await;
        let cfg = config(
            "cluster: c\nplugins:\n  - name: cloudformation\n  - name: secretsmanager\n  - name: tfstate\n    config: {url: s3://states/k.tfstate}\n",
        );
        let ctx = with_plugins(&RenderContext::new(BTreeMap::new()), &cfg, &lookups).unwrap();
        let arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:app/db-AbCdEf";
        assert_eq!(
            render(
                &ctx,
                r#"["{{ cfn_output `net` `VpcId` }}", "{{ cfn_export `net-vpc` }}", "{{ secretsmanager_arn `app/db` }}", "{{ tfstate `output.foo` }}"]"#
            )
            .unwrap(),
            format!(r#"["vpc-1","vpc-1","{arn}","FOO"]"#)
        );
        for (call, want) in [
            (
                "cfn_output `nope` `k`",
                "CloudFormation stack nope does not exist",
            ),
            ("cfn_export `nope`", "nope"),
            ("secretsmanager_arn `nope`", "secret nope does not exist"),
        ] {
            let err =
                load_str(&ctx, Path::new("t.json"), format!("[\"{{{{ {call} }}}}\"]")).unwrap_err();
            assert_eq!(
                err.exit_code(),
                crate::error::ExitCode::BadInput,
                "{call}: {err}"
            );
            let text = err.to_string();
            assert!(text.contains(want), "{call}: {text}");
            assert!(text.contains("t.json:1:6"), "{call}: {text}");
        }
        assert_eq!(lookups.clients_made(), 1);
        let served: Vec<String> = sb
            .control()
            .requests()
            .iter()
            .map(|r| format!("{} {} {}", r.service, r.operation, r.status))
            .collect();
        for want in [
            "cloudformation DescribeStacks 200",
            "cloudformation ListExports 200",
            "secretsmanager DescribeSecret 200",
            "s3 GetObject 200",
        ] {
            assert!(served.iter().any(|s| s == want), "{want}: {served:?}");
        }
    }

    /// As in `cortado render` and `validate`: called with no runtime around.
    #[test]
    fn lookups_work_outside_a_runtime() {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let (sb, lookups) = rt.block_on(sandbox_lookups());
        let cfg = config("cluster: c\nplugins: [{name: ssm}]\n");
        let ctx = with_plugins(&RenderContext::new(BTreeMap::new()), &cfg, &lookups).unwrap();
        for text in TWO_FILES {
            render(&ctx, text).unwrap();
        }
        assert_eq!(lookups.clients_made(), 1);
        assert_eq!(get_parameter_calls(&sb), 2);
        drop(lookups);
        drop(sb);
    }

    /// A connection that cannot be made (an empty region) is an error at the call, made once.
    #[test]
    fn a_failed_connection_is_reported_at_each_call_and_tried_once() {
        let lookups = Lookups::new(AwsSettings {
            region: Some(" ".into()),
            endpoint_url: Some("http://127.0.0.1:9".into()),
            static_credentials: true,
            max_attempts: 1,
            assume_role_arn: None,
        });
        let cfg = config("cluster: c\nplugins: [{name: ssm}]\n");
        let ctx = with_plugins(&RenderContext::new(BTreeMap::new()), &cfg, &lookups).unwrap();
        for name in ["/a", "/b"] {
            let text = format!("[\"{{{{ ssm `{name}` }}}}\"]");
            let err = load_str(&ctx, Path::new("t.json"), text).unwrap_err();
            assert!(err.to_string().contains("region"), "{err}");
            assert!(err.to_string().contains("t.json:1:6"), "{err}");
        }
        assert_eq!(lookups.clients_made(), 1);
    }
}
