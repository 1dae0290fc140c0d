//! Template plugins (`plugins:` in the config): secret and value sources for templates.
//!
//! Receives a [`RenderContext`], the loaded [`Config`] and the run's [`Lookups`]; hands on a
//! context whose functions also hold each configured plugin's functions under its
//! `func_prefix`. Supported:
//!
//! - `ssm`: `{{ ssm "/path/name" }}` is the parameter's value (SecureStrings decrypted);
//!   `{{ ssm "/path/name" 1 }}` is the element at that 0-based index of a StringList. A
//!   SecureString value is registered with the context's [`super::Secrets`] before it is
//!   returned, so every output masks it.
//!
//! Plugins cortado knows but does not implement yet (`tfstate`, `cloudformation`,
//! `secretsmanager`) register their functions as ones that fail when called: a config that
//! names them but does not use them still works. An unknown plugin name is an input error.
//!
//! # API
//!
//! ```text
//! let lookups = Lookups::new(aws_settings);          // once per run, no I/O yet
//! let ctx = with_plugins(&ctx, &config, &lookups)?;  // per config
//! ```
//!
//! - [`Lookups::new`] takes the run's [`AwsSettings`] — the ones its `Clients` are made from
//!   (endpoint, static credentials, attempts). The region of a lookup is the settings' region
//!   (`--region`) when set, else the config's `region:`, else the SDK's chain (AWS_REGION...).
//! - The SDK client is made lazily, on the first lookup, once per region for the life of the
//!   `Lookups` (not per parameter); a failure to connect is remembered and reported again.
//! - Results are cached per `Lookups` by (region, name): a parameter used in several files of a
//!   run is read once.
//! - [`Lookups::with_fetch`] replaces AWS with a function (tests, fakes); the cache still
//!   applies.
//! - Errors keep their class ([`FuncError`]): a missing parameter is bad input (exit 1), a
//!   denied or failed call an AWS error (exit 7); the template engine locates both at the call.
//!
//! The template engine is synchronous. The SDK calls run on one thread per `Lookups` with its
//! own current-thread runtime, started on the first lookup and ended when the `Lookups` is
//! dropped; the caller waits for the answer (inside a multi-thread tokio runtime through
//! `block_in_place`, so the runtime's other tasks keep running). This works inside or outside
//! a tokio runtime, of either flavour.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, mpsc};

use super::RenderContext;
use super::template::{Func, FuncError, Funcs, Value};
use crate::aws::{AwsSettings, Clients};
use crate::config::Config;
use crate::error::{Diagnostic, Error, Result, did_you_mean};

/// Looks a parameter up by region (`None`: the SDK's default) and name: its value and type,
/// or why not.
pub type Fetch = Arc<
    dyn Fn(Option<&str>, &str) -> std::result::Result<(String, String), FuncError> + Send + Sync,
>;

/// The lookup backend of one run: where plugin functions read their values. Cheap to clone
/// (clones share the client and the cache).
#[derive(Clone)]
pub struct Lookups {
    inner: Arc<Inner>,
}

struct Inner {
    /// The run's `--region`; wins over a config's `region:`.
    region: Option<String>,
    source: Source,
    /// (region, name) -> (value, type), successes only.
    cache: Mutex<Cache>,
}

/// (region, name) -> (value, type).
type Cache = HashMap<(Option<String>, String), (String, String)>;

enum Source {
    Aws {
        settings: AwsSettings,
        /// Started on the first lookup (or the reason it could not start).
        worker: OnceLock<Result<Worker>>,
        /// How many SDK clients were made (tests check "once per run").
        clients_made: Arc<AtomicUsize>,
    },
    Fetch(Fetch),
}

/// A parameter read for the lookup thread.
struct Job {
    region: Option<String>,
    name: String,
    reply: mpsc::Sender<Result<(String, String)>>,
}

/// The lookup thread: its queue. Dropping it ends the thread.
struct Worker {
    jobs: mpsc::Sender<Job>,
}

impl Lookups {
    /// Lookups through AWS with the run's settings. Nothing connects until the first lookup.
    pub fn new(settings: AwsSettings) -> Lookups {
        Lookups {
            inner: Arc::new(Inner {
                region: settings.region.clone(),
                source: Source::Aws {
                    settings,
                    worker: OnceLock::new(),
                    clients_made: Arc::new(AtomicUsize::new(0)),
                },
                cache: Mutex::default(),
            }),
        }
    }

    /// Lookups answered by `fetch` instead of AWS (tests, fakes); `region` plays `--region`.
    pub fn with_fetch(region: Option<String>, fetch: Fetch) -> Lookups {
        Lookups {
            inner: Arc::new(Inner {
                region,
                source: Source::Fetch(fetch),
                cache: Mutex::default(),
            }),
        }
    }

    /// The region lookups for `config` use: the run's, else the config's, else `None` (the
    /// SDK's chain).
    pub fn region_for(&self, config: &Config) -> Option<String> {
        self.inner.region.clone().or_else(|| config.region.clone())
    }

    /// The value and type (`String`, `StringList`, `SecureString`) of an SSM parameter,
    /// decrypted; cached for the life of these lookups.
    pub fn ssm_parameter(
        &self,
        region: Option<&str>,
        name: &str,
    ) -> std::result::Result<(String, String), FuncError> {
        let key = (region.map(str::to_string), name.to_string());
        if let Some(hit) = self.cache().get(&key) {
            return Ok(hit.clone());
        }
        let found = match &self.inner.source {
            Source::Fetch(fetch) => fetch(region, name)?,
            Source::Aws {
                settings,
                worker,
                clients_made,
            } => {
                let worker = worker.get_or_init(|| Worker::start(settings, clients_made.clone()));
                worker
                    .as_ref()
                    .map_err(FuncError::from_error)?
                    .get_parameter(region, name)
                    .map_err(|e| FuncError::from_error(&e))?
            }
        };
        self.cache().insert(key, found.clone());
        Ok(found)
    }

    /// How many SDK clients these lookups have made so far.
    pub fn clients_made(&self) -> usize {
        match &self.inner.source {
            Source::Aws { clients_made, .. } => clients_made.load(Ordering::Relaxed),
            Source::Fetch(_) => 0,
        }
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, Cache> {
        self.inner.cache.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Worker {
    /// Starts the lookup thread: a current-thread runtime and one client per region, made on
    /// the first job for that region.
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
                            Ok(c) => c.get_parameter(&job.name, true).await,
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

    /// Sends a job and waits for its answer.
    fn get_parameter(&self, region: Option<&str>, name: &str) -> Result<(String, String)> {
        let (reply, answer) = mpsc::channel();
        let job = Job {
            region: region.map(str::to_string),
            name: name.to_string(),
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

/// Plugins cortado does not implement yet, with the template functions ecspresso gives them.
const UNSUPPORTED: &[(&str, &[&str])] = &[
    ("tfstate", &["tfstate", "tfstatef"]),
    ("cloudformation", &["cfn_output", "cfn_export"]),
    ("secretsmanager", &["secretsmanager_arn"]),
];

/// `ctx` with the functions of every plugin `config` names, reading through `lookups`.
pub fn with_plugins(
    ctx: &RenderContext,
    config: &Config,
    lookups: &Lookups,
) -> Result<RenderContext> {
    if config.plugins.is_empty() {
        return Ok(ctx.clone());
    }
    let mut out = ctx.clone();
    let mut errors = Vec::new();
    let region = lookups.region_for(config);
    for (i, plugin) in config.plugins.iter().enumerate() {
        let mut funcs = Funcs::new();
        match plugin.name.as_str() {
            "ssm" => funcs.insert(
                "ssm",
                ssm_func(lookups.clone(), region.clone(), ctx.secrets.clone()),
            ),
            name => match UNSUPPORTED.iter().find(|(n, _)| *n == name) {
                Some((n, names)) => {
                    for f in *names {
                        funcs.insert(*f, unsupported_func(n, f));
                    }
                }
                None => {
                    let known = std::iter::once("ssm").chain(UNSUPPORTED.iter().map(|(n, _)| *n));
                    let hint = match did_you_mean(name, known) {
                        Some(s) => format!("did you mean `{s}`? cortado knows the plugins ssm (supported), tfstate, cloudformation and secretsmanager"),
                        None => "cortado knows the plugins ssm (supported), tfstate, cloudformation and secretsmanager".to_string(),
                    };
                    errors.push(
                        Diagnostic::error(format!("unknown plugin \"{name}\""))
                            .at(config.document.locate(&format!("/plugins/{i}/name")))
                            .hint(hint),
                    );
                    continue;
                }
            },
        }
        out.funcs.extend(funcs.with_prefix(&plugin.func_prefix));
    }
    if !errors.is_empty() {
        return Err(Error::findings(errors));
    }
    Ok(out)
}

fn unsupported_func(plugin: &str, func: &str) -> Func {
    let msg = format!("{func}: plugin {plugin} is not supported by cortado yet");
    Arc::new(move |_args: &[Value]| {
        Err(FuncError::input(msg.clone()).hint(
            "render the value another way (an environment variable with {{ must_env `NAME` }}, or the ssm plugin), or use ecspresso for this config",
        ))
    })
}

/// The `ssm` function reading through `lookups` in `region`, registering SecureString values
/// with `secrets`.
fn ssm_func(lookups: Lookups, region: Option<String>, secrets: super::Secrets) -> Func {
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
        let (value, kind) = lookups.ssm_parameter(region.as_deref(), name)?;
        if kind == "SecureString" {
            secrets.add(value.clone());
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

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::path::Path;

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
        let fetch: Fetch = Arc::new(move |region: Option<&str>, name: &str| {
            c.lock()
                .unwrap()
                .push((region.map(str::to_string), name.to_string()));
            match name {
                "/db/password" => Ok(("pa55-word".into(), "SecureString".into())),
                "/hosts" => Ok(("a.example,b.example,c.example".into(), "StringList".into())),
                "/plain" => Ok(("hello".into(), "String".into())),
                "/denied" => Err(FuncError::aws(
                    "SSM GetParameter on SSM parameter /denied failed: AccessDeniedException",
                )
                .hint("grant ssm:GetParameter on the parameter")),
                other => Err(FuncError::input(format!(
                    "SSM parameter {other} does not exist"
                ))),
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
        assert!(!ctx.funcs.contains("ssm"));
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

    #[test]
    fn unsupported_plugin_fails_only_when_called() {
        let cfg = config("cluster: c\nplugins:\n  - name: tfstate\n    config: {url: s3://b/k}\n");
        let base = RenderContext::new(BTreeMap::new());
        let (lookups, calls) = fake();
        let ctx = with_plugins(&base, &cfg, &lookups).unwrap();
        assert_eq!(render(&ctx, r#"{"a": 1}"#).unwrap(), r#"{"a":1}"#);
        let err = render(&ctx, r#"{"a": "{{ tfstate `aws_x.y.id` }}"}"#).unwrap_err();
        assert!(
            err.contains("plugin tfstate is not supported by cortado yet"),
            "{err}"
        );
        assert!(calls.lock().unwrap().is_empty());
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

    /// A sandbox with two parameters, and lookups pointed at it as a run would be.
    async fn sandbox_lookups() -> (cortado_sandbox::Sandbox, Lookups) {
        let seed = cortado_sandbox::Seed::parse(
            "parameters:\n  - {name: /app/pw, type: SecureString, value: hunter2}\n  - {name: /app/user, type: String, value: app}\n",
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
