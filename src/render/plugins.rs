//! Template plugins (`plugins:` in the config): secret and value sources for templates.
//!
//! Receives a [`RenderContext`] and the loaded [`Config`]; hands on a context whose functions
//! also hold each configured plugin's functions under its `func_prefix`. Supported:
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
//! The template engine is synchronous; each lookup runs the SDK call on a short-lived thread
//! with its own current-thread runtime (this works inside or outside a tokio runtime). Values
//! are cached per (region, name) for the process.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use super::RenderContext;
use super::template::{Func, FuncError, Funcs, Value};
use crate::aws::AwsSettings;
use crate::config::Config;
use crate::error::{Diagnostic, Error, Result, did_you_mean};

/// Looks a parameter up by name: its value and type, or why not (the error's kind is kept:
/// a missing parameter is bad input, a denied or failed call an AWS error).
pub type Fetch =
    Arc<dyn Fn(&str) -> std::result::Result<(String, String), FuncError> + Send + Sync>;

/// Plugins cortado does not implement yet, with the template functions ecspresso gives them.
const UNSUPPORTED: &[(&str, &[&str])] = &[
    ("tfstate", &["tfstate", "tfstatef"]),
    ("cloudformation", &["cfn_output", "cfn_export"]),
    ("secretsmanager", &["secretsmanager_arn"]),
];

/// `ctx` with the functions of every plugin `config` names.
pub fn with_plugins(ctx: &RenderContext, config: &Config) -> Result<RenderContext> {
    if config.plugins.is_empty() {
        return Ok(ctx.clone());
    }
    let fetch = sdk_fetch(config.region.clone());
    with_plugins_using(ctx, config, fetch)
}

/// [`with_plugins`] with the SSM lookup given (tests use fakes).
pub fn with_plugins_using(
    ctx: &RenderContext,
    config: &Config,
    fetch: Fetch,
) -> Result<RenderContext> {
    let mut out = ctx.clone();
    let mut errors = Vec::new();
    for (i, plugin) in config.plugins.iter().enumerate() {
        let mut funcs = Funcs::new();
        match plugin.name.as_str() {
            "ssm" => funcs.insert("ssm", ssm_func(fetch.clone(), ctx.secrets.clone())),
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

/// The `ssm` function over `fetch`, registering SecureString values with `secrets`.
fn ssm_func(fetch: Fetch, secrets: super::Secrets) -> Func {
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
        let (value, kind) = fetch(name)?;
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

/// Process-wide cache of lookups: "region\0name" -> (value, type).
fn cache() -> &'static Mutex<HashMap<String, (String, String)>> {
    static CACHE: OnceLock<Mutex<HashMap<String, (String, String)>>> = OnceLock::new();
    CACHE.get_or_init(Default::default)
}

/// Lookups through the SDK (region from the config, else the environment; endpoint from
/// AWS_ENDPOINT_URL, which the SDK reads).
fn sdk_fetch(region: Option<String>) -> Fetch {
    Arc::new(move |name: &str| {
        let key = format!("{}\0{name}", region.as_deref().unwrap_or(""));
        if let Some(hit) = cache().lock().ok().and_then(|c| c.get(&key).cloned()) {
            return Ok(hit);
        }
        let region = region.clone();
        let owned = name.to_string();
        let joined = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| Error::internal(format!("cannot start a runtime for SSM: {e}")))?;
            rt.block_on(async {
                let clients = crate::aws::connect(&AwsSettings {
                    region,
                    endpoint_url: None,
                    static_credentials: false,
                    max_attempts: 3,
                })
                .await?;
                clients.get_parameter(&owned, true).await
            })
        })
        .join();
        let result = match joined {
            Ok(r) => r,
            Err(_) => Err(Error::internal("the SSM lookup thread panicked")),
        };
        match result {
            Ok(found) => {
                if let Ok(mut c) = cache().lock() {
                    c.insert(key, found.clone());
                }
                Ok(found)
            }
            Err(e) => Err(FuncError::from_error(&e)),
        }
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

    fn fake() -> (Fetch, Arc<Mutex<Vec<String>>>) {
        let calls = Arc::new(Mutex::new(Vec::new()));
        let c = calls.clone();
        let fetch: Fetch = Arc::new(move |name: &str| {
            c.lock().unwrap().push(name.to_string());
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
        (fetch, calls)
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
        let (fetch, _) = fake();
        let ctx = with_plugins_using(&base, &cfg, fetch).unwrap();
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
        let (fetch, _) = fake();
        let ctx = with_plugins_using(&base, &cfg, fetch).unwrap();
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
        let (fetch, _) = fake();
        let ctx = with_plugins_using(&RenderContext::new(BTreeMap::new()), &cfg, fetch).unwrap();
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
        let (fetch, calls) = fake();
        let ctx = with_plugins_using(&base, &cfg, fetch).unwrap();
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
        let (fetch, _) = fake();
        let Err(err) = with_plugins_using(&RenderContext::new(BTreeMap::new()), &cfg, fetch) else {
            panic!("an unknown plugin was accepted");
        };
        let text = err.to_string();
        assert!(text.contains("unknown plugin \"ssn\""), "{text}");
        assert!(text.contains("did you mean `ssm`"), "{text}");
        assert_eq!(err.exit_code(), crate::error::ExitCode::BadInput);
    }
}
