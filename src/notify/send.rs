//! Posting notifications: each target of each `notify:` section is a job; at the start and at
//! the end of the run every job sends its message, all jobs in parallel, each request bounded
//! (3 s, at most 2 retries on a refused connection or a 5xx), the whole phase bounded (8 s).
//! A failure is a warning naming the target, never its URL or key.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;

use super::payload::{self, End, Event, Message, Origin, Subject};
use super::{Notify, Target};
use crate::error::Diagnostic;
use crate::github::DEFAULT_API_URL;
use crate::github::http::{Client, SendFailure};
use crate::render::Secrets;
use crate::untrusted::Untrusted;

/// How long one request may take, connection included.
pub(crate) const REQUEST_TIMEOUT: Duration = Duration::from_secs(3);
/// Retries after a refused connection or a 5xx answer.
const RETRIES: u32 = 2;
/// How long one phase (the start's notifications, the end's) may take as a whole.
pub(crate) const PHASE_TIMEOUT: Duration = Duration::from_secs(8);

/// Whom a `notify:` section speaks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Scope {
    /// A release file's: every service of the run, `release_*` events.
    Release,
    /// A config's: its own service, `deploy_*` events.
    Service { cluster: String, service: String },
}

/// What GitHub's Deployments API needs from the workflow's environment.
#[derive(Clone)]
struct GitHub {
    base: String,
    repository: String,
    sha: String,
    token: String,
}

struct Job {
    target: Target,
    scope: Scope,
    /// A request of this job timed out: it is not tried again in this run.
    dead: AtomicBool,
    /// GitHub deployments created at the start, by (cluster, service).
    deployments: Mutex<BTreeMap<(String, String), u64>>,
}

/// The notifications of one run.
pub(crate) struct Notifier {
    jobs: Vec<Arc<Job>>,
    client: Option<Client>,
    github: Result<GitHub, String>,
    origin: Origin,
    /// The services of the run as they were at the start (family, image tag).
    subjects: Vec<Subject>,
    secrets: Secrets,
}

impl Notifier {
    /// The jobs of a run: the release file's section (when there is one) and each service's.
    /// `subjects` are the services about to be deployed; `var` reads the environment.
    pub(crate) fn new(
        release: Option<&Notify>,
        services: Vec<(Scope, &Notify)>,
        subjects: Vec<Subject>,
        var: impl Fn(&str) -> Option<String>,
        secrets: Secrets,
    ) -> Notifier {
        let mut jobs = Vec::new();
        let sections = release
            .map(|n| (Scope::Release, n))
            .into_iter()
            .chain(services);
        for (scope, n) in sections {
            for t in &n.targets {
                jobs.push(Arc::new(Job {
                    target: t.clone(),
                    scope: scope.clone(),
                    dead: AtomicBool::new(false),
                    deployments: Mutex::new(BTreeMap::new()),
                }));
            }
        }
        let get = |k: &str| var(k).filter(|v| !v.trim().is_empty());
        let repository = get("GITHUB_REPOSITORY");
        let run_url = match (get("GITHUB_SERVER_URL"), &repository, get("GITHUB_RUN_ID")) {
            (Some(server), Some(repo), Some(id)) => Some(format!(
                "{}/{repo}/actions/runs/{id}",
                server.trim_end_matches('/')
            )),
            _ => None,
        };
        // The token is a secret of this run only when a target sends it.
        let sends_token = jobs
            .iter()
            .any(|j| matches!(j.target, Target::GithubDeployments { .. }));
        if let Some(t) = get("GITHUB_TOKEN").filter(|_| sends_token) {
            secrets.add(t);
        }
        let github = (|| {
            let missing = |v: &str| format!("{v} is not set (run inside GitHub Actions)");
            Ok(GitHub {
                token: get("GITHUB_TOKEN").ok_or_else(|| {
                    "GITHUB_TOKEN is not set (the cortado action sets it; a step of your own: \
                     `env: GITHUB_TOKEN: ${{ github.token }}`)"
                        .to_string()
                })?,
                repository: repository
                    .clone()
                    .ok_or_else(|| missing("GITHUB_REPOSITORY"))?,
                sha: get("GITHUB_SHA").ok_or_else(|| missing("GITHUB_SHA"))?,
                base: get("GITHUB_API_URL")
                    .unwrap_or_else(|| DEFAULT_API_URL.to_string())
                    .trim_end_matches('/')
                    .to_string(),
            })
        })();
        let client = if jobs.is_empty() {
            None
        } else {
            Client::new(true).or_else(|_| Client::new(false)).ok()
        };
        Notifier {
            jobs,
            client,
            github,
            origin: Origin {
                run_url,
                repository,
                sha: get("GITHUB_SHA"),
            },
            subjects,
            secrets,
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.jobs.is_empty()
    }

    /// Tells every target the run started. Returns the warnings of those that failed.
    pub(crate) async fn started(&self) -> Vec<Diagnostic> {
        let subjects = self.subjects.clone();
        self.phase(subjects, None, true).await
    }

    /// Tells every target how the run ended: `ends` by (cluster, service), from the run's
    /// results; a service without one stopped with `error` (its text) and `exit_code`.
    pub(crate) async fn finished(
        &self,
        ends: &BTreeMap<(String, String), (Option<String>, End)>,
        error: &str,
        exit_code: u8,
    ) -> Vec<Diagnostic> {
        let subjects: Vec<Subject> = self
            .subjects
            .iter()
            .map(|s| {
                let key = (s.cluster.clone(), s.service.clone());
                let mut s = s.clone();
                match ends.get(&key) {
                    Some((revision, end)) => {
                        if revision.is_some() {
                            s.revision = revision.clone();
                        }
                        s.end = Some(end.clone());
                    }
                    None => s.end = Some(End::error(error, exit_code)),
                }
                s
            })
            .collect();
        self.phase(subjects, Some(exit_code), false).await
    }

    async fn phase(
        &self,
        subjects: Vec<Subject>,
        exit: Option<u8>,
        start: bool,
    ) -> Vec<Diagnostic> {
        let Some(client) = &self.client else {
            return Vec::new();
        };
        let mut set = tokio::task::JoinSet::new();
        let mut names = BTreeMap::new();
        for job in &self.jobs {
            if job.dead.load(Ordering::Relaxed) {
                continue;
            }
            let mine: Vec<Subject> = match &job.scope {
                Scope::Release => subjects.clone(),
                Scope::Service { cluster, service } => subjects
                    .iter()
                    .filter(|s| &s.cluster == cluster && &s.service == service)
                    .cloned()
                    .collect(),
            };
            if mine.is_empty() {
                continue;
            }
            let event = match (&job.scope, start) {
                (Scope::Release, true) => Event::ReleaseStarted,
                (Scope::Release, false) => Event::ReleaseFinished,
                (Scope::Service { .. }, true) => Event::DeployStarted,
                (Scope::Service { .. }, false) => Event::DeployFinished,
            };
            let message = Message {
                event,
                subjects: mine,
                origin: self.origin.clone(),
                exit_code: exit,
            };
            let ctx = Ctx {
                client: client.clone(),
                github: self.github.clone(),
                secrets: self.secrets.clone(),
                job: job.clone(),
            };
            let id = set.spawn(async move { ctx.send(message).await }).id();
            names.insert(id, job.target.name());
        }
        let mut warnings = Vec::new();
        let deadline = tokio::time::Instant::now() + PHASE_TIMEOUT;
        loop {
            match tokio::time::timeout_at(deadline, set.join_next_with_id()).await {
                Ok(None) => break,
                Ok(Some(Ok((id, ws)))) => {
                    names.remove(&id);
                    warnings.extend(ws);
                }
                Ok(Some(Err(e))) => {
                    let name = names.remove(&e.id()).unwrap_or("a target");
                    warnings.push(warning(name, "the notification stopped unexpectedly"));
                }
                Err(_) => {
                    set.abort_all();
                    for name in names.values() {
                        warnings.push(warning(
                            name,
                            &format!(
                                "no answer within {}s for the whole phase; left behind",
                                PHASE_TIMEOUT.as_secs()
                            ),
                        ));
                    }
                    break;
                }
            }
        }
        warnings
    }
}

fn warning(target: &str, why: &str) -> Diagnostic {
    Diagnostic::warning(format!(
        "notification to `{target}` failed: {why}; the deploy's outcome is unchanged"
    ))
    .hint(format!(
        "check `notify.{target}` (its URL, key or token) and that the runner can reach it; \
         --no-notify (CORTADO_NO_NOTIFY=1) turns notifications off"
    ))
}

/// What one job needs inside its task.
struct Ctx {
    client: Client,
    github: Result<GitHub, String>,
    secrets: Secrets,
    job: Arc<Job>,
}

/// Why a request got no good answer, in words that name no URL.
enum Failed {
    /// No answer in time: the target is not tried again in this run.
    Timeout,
    Other(String),
}

impl Ctx {
    fn name(&self) -> &'static str {
        self.job.target.name()
    }

    async fn send(&self, mut message: Message) -> Vec<Diagnostic> {
        // Nothing a secret source gave reaches a target either.
        for s in &mut message.subjects {
            if let Some(e) = &mut s.end {
                e.detail = self.secrets.mask(&e.detail);
                for (reason, _) in &mut e.stopped_reasons {
                    *reason = self.secrets.mask(reason);
                }
                for d in &mut e.diagnoses {
                    d.failure = self.secrets.mask(&d.failure);
                    d.summary = self.secrets.mask(&d.summary);
                    d.fix = self.secrets.mask(&d.fix);
                }
            }
        }
        let result = match &self.job.target {
            Target::Slack { webhook_url } => self
                .post(webhook_url, &[], &payload::slack(&message))
                .await
                .map(drop),
            Target::Webhook { url, headers } => self
                .post(url, headers, &payload::webhook(&message))
                .await
                .map(drop),
            Target::Datadog {
                api_key,
                url,
                env,
                tags,
            } => {
                let headers = [("DD-API-KEY".to_string(), api_key.clone())];
                let mut r = Ok(());
                for ev in payload::datadog(&message, env.as_deref(), tags) {
                    r = self.post(url, &headers, &ev).await.map(drop);
                    if r.is_err() {
                        break;
                    }
                }
                r
            }
            Target::GithubDeployments {
                environment,
                environment_url,
            } => {
                return self
                    .github(&message, environment, environment_url.as_deref())
                    .await;
            }
        };
        match result {
            Ok(()) => Vec::new(),
            Err(f) => vec![self.failed(f)],
        }
    }

    fn failed(&self, f: Failed) -> Diagnostic {
        match f {
            Failed::Timeout => {
                self.job.dead.store(true, Ordering::Relaxed);
                warning(
                    self.name(),
                    &format!(
                        "no answer within {}s (not tried again in this run)",
                        REQUEST_TIMEOUT.as_secs()
                    ),
                )
            }
            Failed::Other(why) => warning(self.name(), &self.secrets.mask(&why)),
        }
    }

    /// POSTs `body`; retries a refused connection or a 5xx twice. Returns the answer's JSON.
    async fn post(
        &self,
        url: &str,
        headers: &[(String, String)],
        body: &Value,
    ) -> Result<Value, Failed> {
        let mut attempt = 0;
        loop {
            let r = self
                .client
                .send_json("POST", url, headers, body, REQUEST_TIMEOUT)
                .await;
            let retry = match &r {
                Err(SendFailure::Connection) => true,
                Ok((status, _)) => *status >= 500,
                _ => false,
            };
            if retry && attempt < RETRIES {
                attempt += 1;
                tokio::time::sleep(Duration::from_millis(250 << attempt)).await;
                continue;
            }
            return match r {
                Ok((status, bytes)) if (200..300).contains(&status) => {
                    Ok(serde_json::from_slice(&bytes).unwrap_or(Value::Null))
                }
                Ok((status, bytes)) => {
                    let text: String = String::from_utf8_lossy(&bytes).chars().take(200).collect();
                    let said = if text.trim().is_empty() {
                        String::new()
                    } else {
                        format!(": {}", Untrusted::new(text.trim()))
                    };
                    Err(Failed::Other(format!("it answered HTTP {status}{said}")))
                }
                Err(SendFailure::Timeout) => Err(Failed::Timeout),
                Err(SendFailure::Connection) => Err(Failed::Other(format!(
                    "no connection ({} attempts)",
                    RETRIES + 1
                ))),
                Err(SendFailure::Request) => Err(Failed::Other(
                    "the request could not be built (a header value or the URL is not valid)"
                        .into(),
                )),
            };
        }
    }

    /// A deployment per service at the start (and its `in_progress` status); its final status
    /// at the end.
    async fn github(
        &self,
        message: &Message,
        environment: &str,
        environment_url: Option<&str>,
    ) -> Vec<Diagnostic> {
        let gh = match &self.github {
            Ok(g) => g,
            Err(why) => {
                return if message.event.is_start() {
                    vec![warning(self.name(), &format!("skipped: {why}"))]
                } else {
                    Vec::new()
                };
            }
        };
        let headers = [
            ("Authorization".to_string(), format!("Bearer {}", gh.token)),
            (
                "Accept".to_string(),
                "application/vnd.github+json".to_string(),
            ),
            ("X-GitHub-Api-Version".to_string(), "2022-11-28".to_string()),
        ];
        let base = format!("{}/repos/{}/deployments", gh.base, gh.repository);
        let mut warnings = Vec::new();
        for s in &message.subjects {
            let key = (s.cluster.clone(), s.service.clone());
            let (id, state) = if message.event.is_start() {
                let body = payload::github_deployment(environment, &gh.sha, s);
                match self.post(&base, &headers, &body).await {
                    Ok(v) => match v.get("id").and_then(Value::as_u64) {
                        Some(id) => {
                            self.lock().insert(key, id);
                            (id, "in_progress")
                        }
                        None => {
                            warnings.push(warning(
                                self.name(),
                                "GitHub created no deployment (its answer has no id)",
                            ));
                            continue;
                        }
                    },
                    Err(f) => {
                        warnings.push(self.failed(f));
                        break;
                    }
                }
            } else {
                let id = self.lock().get(&key).copied();
                let state = s.end.as_ref().and_then(payload::github_state);
                match (id, state) {
                    (Some(id), Some(state)) => (id, state),
                    _ => continue,
                }
            };
            let body = payload::github_status(state, s, environment_url, &message.origin);
            if let Err(f) = self
                .post(&format!("{base}/{id}/statuses"), &headers, &body)
                .await
            {
                warnings.push(self.failed(f));
                break;
            }
        }
        warnings
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<(String, String), u64>> {
        self.job
            .deployments
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }
}

/// The notifier of a deploy run: the release file's `notify:` (when the run has a release
/// file) and each deployed service's own, about the services the run deploys (the release's
/// deploy steps; one-off task steps are not deploys).
pub(crate) fn for_run(
    release: &crate::deploy::engine::ReleaseRun<'_>,
    release_notify: Option<&Notify>,
    secrets: Secrets,
) -> Notifier {
    use crate::release::Action;
    let mut subjects = Vec::new();
    let mut services = Vec::new();
    for step in release.steps.iter().filter(|s| s.action == Action::Deploy) {
        let Some(local) = release.locals.iter().find(|l| l.config.path == step.config) else {
            continue;
        };
        let Some(service) = local.config.service.clone() else {
            continue;
        };
        let cluster = local.config.cluster.clone();
        if subjects
            .iter()
            .any(|s: &Subject| s.cluster == cluster && s.service == service)
        {
            continue;
        }
        let image_tag = local
            .task
            .container_definitions()
            .first()
            .and_then(|c| c.image())
            .and_then(image_tag);
        subjects.push(Subject {
            service: service.clone(),
            cluster: cluster.clone(),
            revision: local.task.family().map(str::to_string),
            image_tag,
            end: None,
        });
        if let Some(n) = &local.config.notify {
            services.push((Scope::Service { cluster, service }, n));
        }
    }
    Notifier::new(
        release_notify,
        services,
        subjects,
        |k| std::env::var(k).ok(),
        secrets,
    )
}

/// The tag (or digest) of an image reference: `repo:tag` -> `tag`, `repo@sha256:..` -> the
/// digest; none for a bare name.
fn image_tag(image: &str) -> Option<String> {
    if let Some((_, digest)) = image.split_once('@') {
        return Some(digest.to_string());
    }
    let last = image.rsplit('/').next().unwrap_or(image);
    last.split_once(':').map(|(_, t)| t.to_string())
}

/// How each service of `run` ended, by (cluster, service): the revision it rolled out and its
/// [`End`].
pub(crate) fn ends_of(
    run: &crate::deploy::result::RunResult,
) -> BTreeMap<(String, String), (Option<String>, End)> {
    run.services
        .iter()
        .map(|r| {
            let back = r
                .rollback
                .as_ref()
                .filter(|b| b.done)
                .and_then(|_| r.serving_task_definition_arn().map(str::to_string));
            (
                (r.cluster.clone(), r.service.clone()),
                (r.task_definition_arn.clone(), {
                    let mut end = End::of(r.outcome, &r.detail, back);
                    end.stopped_reasons = r
                        .stopped_tasks
                        .iter()
                        .map(|s| (s.reason.as_str().to_string(), s.count))
                        .collect();
                    end.diagnoses = r
                        .failures
                        .iter()
                        .filter_map(|f| {
                            let d = f.diagnosis.as_ref()?;
                            Some(payload::Diagnosed {
                                cause: serde_json::to_value(d.cause)
                                    .ok()
                                    .and_then(|v| v.as_str().map(str::to_string))
                                    .unwrap_or_default(),
                                failure: f.heading(),
                                summary: d.summary.clone(),
                                fix: d.fix.clone(),
                            })
                        })
                        .collect();
                    end
                }),
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_tags() {
        assert_eq!(
            image_tag("1.dkr.ecr.us-east-1.amazonaws.com/web:v3").as_deref(),
            Some("v3")
        );
        assert_eq!(image_tag("localhost:5000/web").as_deref(), None);
        assert_eq!(image_tag("web@sha256:abc").as_deref(), Some("sha256:abc"));
    }

    #[test]
    fn the_run_url_comes_from_the_runner_and_the_github_context_needs_its_variables() {
        let vars = |k: &str| {
            match k {
                "GITHUB_SERVER_URL" => Some("https://github.com/"),
                "GITHUB_REPOSITORY" => Some("o/r"),
                "GITHUB_RUN_ID" => Some("42"),
                "GITHUB_TOKEN" => Some("ghs_x"),
                _ => None,
            }
            .map(str::to_string)
        };
        let secrets = Secrets::default();
        let n = Notifier::new(None, Vec::new(), Vec::new(), vars, secrets.clone());
        assert_eq!(
            n.origin.run_url.as_deref(),
            Some("https://github.com/o/r/actions/runs/42")
        );
        assert!(
            n.github
                .as_ref()
                .err()
                .is_some_and(|e| e.contains("GITHUB_SHA"))
        );
        assert!(n.is_empty());
    }
}
