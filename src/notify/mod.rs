//! Notifications: who hears about a deploy (GitHub Deployments, a Slack incoming webhook, a
//! Datadog event, a generic JSON webhook).
//!
//! Receives the `notify:` section of a config (for its service's deploys) or of a release file
//! (for the whole run), the run's start (the services about to be deployed) and its
//! [`RunResult`] (the one source of truth for how each service ended). Hands on HTTP requests
//! to the targets and, for each that failed, one warning. A notification never changes a
//! deploy's outcome or exit code: every request is bounded (3 s, at most 2 retries on a
//! refused connection or a 5xx), the targets are told in parallel and each phase (start, end)
//! is bounded as a whole (8 s).
//!
//! The values of a target (URLs, API keys, header values) are secrets: [`Notify::secrets`]
//! lists them so the run's [`crate::render::Secrets`] masks them in every sink, and no
//! warning names them (a warning names the target: `slack`, `webhook`, ...).

pub(crate) mod payload;
mod send;

use serde_json::{Map, Value};

use crate::config::schema::{
    DatadogKey, GithubDeploymentsKey, NotifyKey, Section, SlackKey, WebhookKey,
};
use crate::error::Diagnostic;
use crate::render::{Document, spans::escape_token};

pub(crate) use send::{Notifier, ends_of, for_run};

/// The Datadog site when `site:` is not given.
pub(crate) const DEFAULT_DATADOG_SITE: &str = "datadoghq.com";

/// The targets of one `notify:` section.
#[derive(Clone, Default, PartialEq)]
pub struct Notify {
    pub(crate) targets: Vec<Target>,
}

/// Never shows a value: they are secrets.
impl std::fmt::Debug for Notify {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.targets.iter().map(Target::name).collect();
        write!(f, "Notify({names:?})")
    }
}

/// One target and its settings.
#[derive(Clone, PartialEq)]
pub(crate) enum Target {
    GithubDeployments {
        environment: String,
        environment_url: Option<String>,
    },
    Slack {
        webhook_url: String,
    },
    Datadog {
        api_key: String,
        /// The events endpoint (from `site:` unless `url:` is given).
        url: String,
        env: Option<String>,
        tags: Vec<String>,
    },
    Webhook {
        url: String,
        headers: Vec<(String, String)>,
    },
}

impl Target {
    /// The target's name in the config (what a warning says instead of its URL).
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Target::GithubDeployments { .. } => NotifyKey::GithubDeployments.key(),
            Target::Slack { .. } => NotifyKey::Slack.key(),
            Target::Datadog { .. } => NotifyKey::Datadog.key(),
            Target::Webhook { .. } => NotifyKey::Webhook.key(),
        }
    }
}

impl Notify {
    /// The values to mask everywhere: webhook URLs, API keys, header values.
    pub(crate) fn secrets(&self) -> Vec<String> {
        let mut out = Vec::new();
        for t in &self.targets {
            match t {
                Target::GithubDeployments { .. } => {}
                Target::Slack { webhook_url } => out.push(webhook_url.clone()),
                Target::Datadog { api_key, url, .. } => {
                    out.push(api_key.clone());
                    // A custom endpoint may carry a key in its query; the default one is public.
                    if !url.starts_with("https://api.") {
                        out.push(url.clone());
                    }
                }
                Target::Webhook { url, headers } => {
                    out.push(url.clone());
                    out.extend(headers.iter().map(|(_, v)| v.clone()));
                }
            }
        }
        out
    }
}

/// Reads a `notify:` mapping at JSON pointer `at` of `doc`, pushing located errors (unknown
/// keys with a "did you mean", missing or mistyped values). `None` when it is absent or null.
pub(crate) fn parse(
    doc: &Document,
    at: &str,
    value: Option<&Value>,
    errors: &mut Vec<Diagnostic>,
) -> Option<Notify> {
    let value = value.filter(|v| !v.is_null())?;
    let mut r = Reader { doc, errors };
    let obj = r.mapping(
        at,
        value,
        "a mapping of targets (github_deployments, slack, ...)",
    )?;
    NotifyKey::SECTION.check(doc, at, obj, r.errors);
    let mut targets = Vec::new();
    for (key, v) in obj {
        let Some(kind) = NotifyKey::parse(key) else {
            continue;
        };
        let p = format!("{at}/{}", escape_token(key));
        if v.is_null() {
            continue;
        }
        let Some(m) = r.mapping(&p, v, "a mapping") else {
            continue;
        };
        let t = match kind {
            NotifyKey::GithubDeployments => r.github(&p, m),
            NotifyKey::Slack => r.slack(&p, m),
            NotifyKey::Datadog => r.datadog(&p, m),
            NotifyKey::Webhook => r.webhook(&p, m),
        };
        targets.extend(t);
    }
    Some(Notify { targets })
}

struct Reader<'a, 'e> {
    doc: &'a Document,
    errors: &'e mut Vec<Diagnostic>,
}

impl<'a> Reader<'a, '_> {
    fn error(&mut self, pointer: &str, message: String, hint: &str) {
        self.errors.push(
            Diagnostic::error(message)
                .at(self.doc.locate(pointer))
                .hint(hint),
        );
    }

    fn dotted(pointer: &str) -> String {
        pointer.trim_start_matches('/').replace('/', ".")
    }

    fn mapping<'v>(
        &mut self,
        pointer: &str,
        v: &'v Value,
        what: &str,
    ) -> Option<&'v Map<String, Value>> {
        match v.as_object() {
            Some(m) => Some(m),
            None => {
                let d = Self::dotted(pointer);
                self.error(
                    pointer,
                    format!("`{d}` must be {what}"),
                    "see the notifications guide (docs/guides/notifications.md)",
                );
                None
            }
        }
    }

    /// A string value; never quotes the value in an error (it may be a secret).
    fn string(
        &mut self,
        pointer: &str,
        m: &Map<String, Value>,
        key: &str,
        required: bool,
    ) -> Option<String> {
        let p = format!("{pointer}/{}", escape_token(key));
        match m.get(key) {
            None | Some(Value::Null) => {
                if required {
                    self.error(
                        pointer,
                        format!("`{}` needs `{key}`", Self::dotted(pointer)),
                        "see the notifications guide (docs/guides/notifications.md)",
                    );
                }
                None
            }
            Some(Value::String(s)) if s.trim().is_empty() && required => {
                self.error(
                    &p,
                    format!("`{}` is empty", Self::dotted(&p)),
                    "the value comes from the environment? check that the variable is set \
                     (must_env refuses an unset one; env gives an empty string)",
                );
                None
            }
            Some(Value::String(s)) => Some(s.trim().to_string()),
            Some(_) => {
                self.error(
                    &p,
                    format!("`{}` must be a string", Self::dotted(&p)),
                    "quote the value",
                );
                None
            }
        }
    }

    /// A URL: http(s), without naming it in an error.
    fn url(
        &mut self,
        pointer: &str,
        m: &Map<String, Value>,
        key: &str,
        required: bool,
    ) -> Option<String> {
        let u = self.string(pointer, m, key, required)?;
        if u.starts_with("https://") || u.starts_with("http://") {
            Some(u)
        } else {
            let p = format!("{pointer}/{}", escape_token(key));
            self.error(
                &p,
                format!("`{}` is not an http(s) URL", Self::dotted(&p)),
                "write the full URL, starting with https://",
            );
            None
        }
    }

    fn check(&mut self, section: &Section, pointer: &str, m: &Map<String, Value>) {
        section.check(self.doc, pointer, m, self.errors);
    }

    fn github(&mut self, p: &str, m: &Map<String, Value>) -> Option<Target> {
        self.check(&GithubDeploymentsKey::SECTION, p, m);
        let environment = self.string(p, m, GithubDeploymentsKey::Environment.key(), true)?;
        let environment_url = self.url(p, m, GithubDeploymentsKey::EnvironmentUrl.key(), false);
        Some(Target::GithubDeployments {
            environment,
            environment_url,
        })
    }

    fn slack(&mut self, p: &str, m: &Map<String, Value>) -> Option<Target> {
        self.check(&SlackKey::SECTION, p, m);
        let webhook_url = self.url(p, m, SlackKey::WebhookUrl.key(), true)?;
        Some(Target::Slack { webhook_url })
    }

    fn datadog(&mut self, p: &str, m: &Map<String, Value>) -> Option<Target> {
        self.check(&DatadogKey::SECTION, p, m);
        let api_key = self.string(p, m, DatadogKey::ApiKey.key(), true);
        let site = self.string(p, m, DatadogKey::Site.key(), false);
        let url = self.url(p, m, DatadogKey::Url.key(), false);
        let env = self.string(p, m, DatadogKey::Env.key(), false);
        let mut tags = Vec::new();
        let tp = format!("{p}/{}", DatadogKey::Tags.key());
        match m.get(DatadogKey::Tags.key()) {
            None | Some(Value::Null) => {}
            Some(Value::Array(items)) => {
                for (i, t) in items.iter().enumerate() {
                    match t.as_str() {
                        Some(s) => tags.push(s.to_string()),
                        None => self.error(
                            &format!("{tp}/{i}"),
                            format!("`{}[{i}]` must be a string", Self::dotted(&tp)),
                            "write tags as key:value strings",
                        ),
                    }
                }
            }
            Some(_) => self.error(
                &tp,
                format!("`{}` must be a list of strings", Self::dotted(&tp)),
                "write tags: [team:payments]",
            ),
        }
        let site = site.unwrap_or_else(|| DEFAULT_DATADOG_SITE.to_string());
        let site_ok = !site.is_empty()
            && site
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-');
        if !site_ok {
            self.error(
                &format!("{p}/site"),
                format!("`{}.site` is not a Datadog site", Self::dotted(p)),
                "write the site's domain, e.g. datadoghq.com, datadoghq.eu or us5.datadoghq.com",
            );
            return None;
        }
        let url = url.unwrap_or_else(|| format!("https://api.{site}/api/v1/events"));
        Some(Target::Datadog {
            api_key: api_key?,
            url,
            env,
            tags,
        })
    }

    fn webhook(&mut self, p: &str, m: &Map<String, Value>) -> Option<Target> {
        self.check(&WebhookKey::SECTION, p, m);
        let url = self.url(p, m, WebhookKey::Url.key(), true);
        let mut headers = Vec::new();
        let hp = format!("{p}/{}", WebhookKey::Headers.key());
        match m.get(WebhookKey::Headers.key()) {
            None | Some(Value::Null) => {}
            Some(Value::Object(h)) => {
                for (k, v) in h {
                    let kp = format!("{hp}/{}", escape_token(k));
                    let name_ok = !k.is_empty()
                        && k.bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b"-_".contains(&b));
                    let value = match v {
                        Value::String(s) => Some(s.clone()),
                        Value::Number(n) => Some(n.to_string()),
                        _ => None,
                    };
                    match value {
                        Some(val) if name_ok && !val.contains(['\r', '\n']) => {
                            headers.push((k.clone(), val));
                        }
                        _ => self.error(
                            &kp,
                            format!(
                                "header {k:?} of `{}` is not a valid header",
                                Self::dotted(p)
                            ),
                            "a header is NAME: value, the name letters, digits and dashes, the \
                             value a string on one line",
                        ),
                    }
                }
            }
            Some(_) => self.error(
                &hp,
                format!("`{}` must be a mapping of NAME: value", Self::dotted(&hp)),
                "write headers: {Authorization: ...}",
            ),
        }
        Some(Target::Webhook { url: url?, headers })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(text: &str) -> Document {
        let ctx = crate::render::RenderContext::new(Default::default());
        crate::render::load_str(&ctx, std::path::Path::new("cortado.yml"), text.to_string())
            .unwrap()
    }

    #[test]
    fn every_target_is_read_and_its_values_are_secrets() {
        let d = doc(
            "notify:\n  github_deployments: {environment: production, environment_url: https://app.example.com}\n  slack: {webhook_url: https://hooks.slack.com/services/T/B/xyz}\n  datadog: {api_key: dd-key-123, site: datadoghq.eu, env: prod, tags: [team:web]}\n  webhook: {url: http://127.0.0.1:9/hook, headers: {Authorization: Bearer abc}}\n",
        );
        let mut errors = Vec::new();
        let n = parse(&d, "/notify", d.value.get("notify"), &mut errors).unwrap();
        assert!(errors.is_empty(), "{errors:?}");
        let names: Vec<&str> = n.targets.iter().map(Target::name).collect();
        assert_eq!(names, ["github_deployments", "slack", "datadog", "webhook"]);
        assert!(
            matches!(&n.targets[2], Target::Datadog { url, .. } if url == "https://api.datadoghq.eu/api/v1/events")
        );
        let secrets = n.secrets();
        for s in [
            "https://hooks.slack.com/services/T/B/xyz",
            "dd-key-123",
            "http://127.0.0.1:9/hook",
            "Bearer abc",
        ] {
            assert!(secrets.contains(&s.to_string()), "{s}");
        }
        assert!(!format!("{n:?}").contains("xyz"));
    }

    #[test]
    fn mistakes_are_located_and_never_quote_the_values() {
        let d = doc(
            "notify:\n  slack: {webhok_url: https://hooks.slack.com/services/T/B/xyz}\n  datadog: {api_key: k, site: 'bad site'}\n  webhook: {url: ftp-secret-thing}\n  teams: {}\n",
        );
        let mut errors = Vec::new();
        let n = parse(&d, "/notify", d.value.get("notify"), &mut errors).unwrap();
        assert!(n.targets.is_empty());
        let seen: Vec<(String, usize, Option<String>)> = errors
            .iter()
            .map(|e| {
                (
                    e.message.clone(),
                    e.location.as_ref().map_or(0, |l| l.line),
                    e.hint.clone(),
                )
            })
            .collect();
        let has = |m: &str, line: usize| seen.iter().any(|(s, l, _)| s.contains(m) && *l == line);
        assert!(
            has("unknown key \"webhok_url\" in `notify.slack`", 2),
            "{seen:?}"
        );
        assert!(
            seen.iter()
                .any(|(_, _, h)| h.as_deref() == Some("did you mean \"webhook_url\"?")),
            "{seen:?}"
        );
        assert!(has("`notify.slack` needs `webhook_url`", 2), "{seen:?}");
        assert!(
            has("`notify.datadog.site` is not a Datadog site", 3),
            "{seen:?}"
        );
        assert!(
            has("`notify.webhook.url` is not an http(s) URL", 4),
            "{seen:?}"
        );
        assert!(has("unknown notification target \"teams\"", 5), "{seen:?}");
        for (m, _, h) in &seen {
            assert!(!m.contains("xyz") && !m.contains("ftp-secret"), "{m}");
            assert!(!h.clone().unwrap_or_default().contains("ftp-secret"));
        }
    }
}
