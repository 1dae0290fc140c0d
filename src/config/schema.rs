//! The sections of a config file and of a release file, as types: each section is an enum of
//! its keys, declared once with what each key means, where the section sits and how a key it
//! does not know is reported.
//!
//! Readers match on the enum (`RolloutKey::parse(key)`), so a key added here and not read is
//! a compile error where the section is read; the unknown-key check ([`Section::check`], a
//! located finding with a "did you mean") and the documentation ([`sections`], for the docs
//! generator) come from the same declaration. There is no other list of keys.

use serde_json::{Map, Value};

use crate::error::{Diagnostic, did_you_mean};
use crate::render::{Document, spans::escape_token};

/// How a section treats a key it does not know.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unknown {
    /// A warning: the key is ignored (config files, so that configs written for newer
    /// ecspresso versions still load).
    Warn,
    /// An error: the file is refused.
    Refuse,
}

/// One section: where it sits, what its keys mean, how an unknown key is reported.
#[derive(Debug)]
pub struct Section {
    /// The file it belongs to: `config` or `release`.
    pub file: &'static str,
    /// Where it sits in that file: `""` for the top level, `rollout`, `rollout.verify[]`.
    pub path: &'static str,
    /// What the section is for (its doc comment's lines, joined).
    doc: &'static str,
    keys: &'static [(&'static str, &'static str)],
    /// The message of an unknown key, `{key}` standing for the key (quoted).
    message: &'static str,
    pub unknown: Unknown,
}

impl Section {
    /// What the section is for.
    pub fn doc(&self) -> &'static str {
        self.doc.trim()
    }

    /// Every key of the section with what it means, in the order they are documented.
    pub fn keys(&self) -> &'static [(&'static str, &'static str)] {
        self.keys
    }

    /// Whether the section takes `key`.
    pub fn knows(&self, key: &str) -> bool {
        self.keys.iter().any(|(k, _)| *k == key)
    }

    /// Reports each key of `obj` (the mapping at JSON pointer `at` of `doc`) that the section
    /// does not take. Returns whether every key was known.
    pub fn check(
        &self,
        doc: &Document,
        at: &str,
        obj: &Map<String, Value>,
        findings: &mut Vec<Diagnostic>,
    ) -> bool {
        let mut all_known = true;
        for key in obj.keys().filter(|k| !self.knows(k)) {
            all_known = false;
            self.unknown_key(doc, at, key, findings);
        }
        all_known
    }

    /// Reports `key` of the mapping at JSON pointer `at` as a key the section does not take:
    /// located at the key, with a "did you mean" or the known keys.
    pub fn unknown_key(&self, doc: &Document, at: &str, key: &str, findings: &mut Vec<Diagnostic>) {
        let message = self.message.replace("{key}", &format!("{key:?}"));
        let d = match self.unknown {
            Unknown::Warn => Diagnostic::warning(message),
            Unknown::Refuse => Diagnostic::error(message),
        };
        let names = self.keys.iter().map(|(k, _)| *k);
        let hint = match did_you_mean(key, names.clone()) {
            Some(s) => format!("did you mean {s:?}?"),
            None => format!("known keys: {}", names.collect::<Vec<_>>().join(", ")),
        };
        findings.push(
            d.at(doc.locate_key(&format!("{at}/{}", escape_token(key))))
                .hint(hint),
        );
    }
}

/// Declares a section: an enum of its keys (each with its key text and what it means) and its
/// [`Section`].
macro_rules! section {
    (
        $(#[doc = $doc:literal])*
        $vis:vis enum $name:ident in $file:literal at $path:literal,
            $unknown:ident $message:literal {
            $( $variant:ident = $key:literal : $what:literal, )*
        }
    ) => {
        $(#[doc = $doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        $vis enum $name {
            $( #[doc = $what] $variant, )*
        }

        impl $name {
            /// The section's keys, how it reports others, and where it sits.
            pub const SECTION: Section = Section {
                file: $file,
                path: $path,
                doc: concat!($($doc),*),
                keys: &[$(($key, $what)),*],
                message: $message,
                unknown: Unknown::$unknown,
            };

            /// The key as written in the file.
            pub fn key(self) -> &'static str {
                match self {
                    $( $name::$variant => $key, )*
                }
            }

            /// The key `key` names, when the section takes it.
            pub fn parse(key: &str) -> Option<Self> {
                match key {
                    $( $key => Some($name::$variant), )*
                    _ => None,
                }
            }
        }

        /// The key as written in the file.
        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.key())
            }
        }
    };
}

section! {
    /// The top level of a config file: ecspresso's keys, then cortado's own `rollout`.
    pub enum ConfigKey in "config" at "", Warn "unknown config key {key} is ignored" {
        Region = "region": "AWS region (the --region flag wins; never guessed).",
        Cluster = "cluster": "Cluster name (default: \"default\").",
        Service = "service": "Service name. Without it (one-off tasks), only run, register, render, validate, verify, revisions, deregister, tasks and diff work.",
        ServiceDefinition = "service_definition":
            "Path of the service definition (CreateService input), relative to the config.",
        TaskDefinition = "task_definition":
            "Path of the task definition (RegisterTaskDefinition input, or \
             describe-task-definition output), relative to the config.",
        ExpressDefinition = "express_definition":
            "Path of an ECS Express Mode service's definition \
             (CreateExpressGatewayService input), instead of the two above.",
        Timeout = "timeout":
            "How long a deploy is followed: a duration such as 90s, 10m, 1h30m (a bare number \
             is seconds); --timeout wins; default 10m.",
        Plugins = "plugins": "Template function providers: a list of {name, config, func_prefix}.",
        Codedeploy = "codedeploy":
            "CodeDeploy settings (application_name, deployment_group_name), as ecspresso reads \
             them.",
        Appspec = "appspec": "The hooks of the AppSpec a CodeDeploy deployment sends.",
        RequiredVersion = "required_version":
            "The ecspresso versions the config is for (hashicorp/go-version constraints).",
        Ignore = "ignore": "What comparisons ignore: {tags: [tag keys written by other tools]}.",
        FilterCommand = "filter_command": "Accepted for compatibility with ecspresso; unused.",
        Rollout = "rollout":
            "cortado's own deploy settings: rollback, on_cancel, fast_fail, wait_rollback, \
             verify.",
        Notify = "notify":
            "cortado's own: who hears about this service's deploys (github_deployments, slack, \
             datadog, webhook); see the notifications guide.",
    }
}

section! {
    /// One `plugins:` entry.
    pub enum PluginKey in "config" at "plugins[]", Warn "unknown key {key} in a plugin is ignored" {
        Name = "name": "The plugin: tfstate, ssm, secretsmanager, cloudformation or external.",
        Config = "config": "The plugin's own settings (tfstate: path or url, optional; external: name, command, num_args, parser, timeout, mode).",
        FuncPrefix = "func_prefix": "A prefix for the names of the plugin's template functions.",
    }
}

section! {
    /// `ignore:`: what comparisons with the live service ignore.
    pub enum IgnoreKey in "config" at "ignore", Warn "unknown key {key} in `ignore` is ignored" {
        Tags = "tags": "Tag keys written by other tools, ignored when comparing.",
    }
}

section! {
    /// `codedeploy:`: the application and deployment group of a CODE_DEPLOY service (what is
    /// left out is discovered).
    pub enum CodeDeployKey in "config" at "codedeploy",
        Warn "unknown key {key} in `codedeploy` is ignored" {
        ApplicationName = "application_name": "The CodeDeploy application.",
        DeploymentGroupName = "deployment_group_name": "The deployment group.",
    }
}

section! {
    /// `appspec:`: the Lambda hooks of the AppSpec of a CodeDeploy deployment, in ecspresso's
    /// shape.
    pub enum AppSpecKey in "config" at "appspec", Warn "unknown key {key} in `appspec` is ignored" {
        Hooks = "Hooks":
            "The hooks: a list of {EVENT: FUNCTION}, EVENT one of BeforeInstall, AfterInstall, \
             AfterAllowTestTraffic, BeforeAllowTraffic, AfterAllowTraffic.",
        HooksLower = "hooks": "Another spelling of `Hooks`.",
        Version = "version":
            "Accepted for compatibility with ecspresso; cortado writes the AppSpec's version.",
        Resources = "Resources":
            "Accepted for compatibility with ecspresso; cortado builds the AppSpec's resources \
             from the service definition.",
    }
}

section! {
    /// `rollout:`: cortado's own deploy settings.
    pub enum RolloutKey in "config" at "rollout",
        Warn "unknown key {key} in rollout settings is ignored" {
        Rollback = "rollback": "Roll back on our own when the deployment fails (default true).",
        OnCancel = "on_cancel":
            "On SIGINT/SIGTERM: \"rollback\" (default) or \"leave\" the deployment running.",
        FastFail = "fast_fail":
            "Fail before ECS gives up on conclusive signals: true, false, or a mapping \
             (enabled, same_reason_stops, unhealthy_target_for).",
        WaitRollback = "wait_rollback":
            "What a rollback waits for: \"serving\" (default: the old revision serves) or \
             \"complete\" (ECS also finished draining).",
        Verify = "verify":
            "Gates of blue/green, canary and linear deployments: a list of {stage, run, \
             timeout}.",
    }
}

section! {
    /// `rollout.fast_fail:` as a mapping.
    pub enum FastFailKey in "config" at "rollout.fast_fail",
        Warn "unknown key {key} in rollout settings is ignored" {
        Enabled = "enabled": "Whether the fast-fail rules apply (default true).",
        SameReasonStops = "same_reason_stops":
            "Fail after this many of our tasks stopped with the same non-transient reason \
             (default 2).",
        UnhealthyTargetFor = "unhealthy_target_for":
            "Fail when one of our targets has been unhealthy this long (default 5m; 0 turns it \
             off).",
    }
}

section! {
    /// One `rollout.verify[]` gate: a command run at a lifecycle stage, whose exit status
    /// answers the PAUSE hook there.
    pub enum GateKey in "config" at "rollout.verify[]", Refuse "unknown key {key} in a verify gate" {
        Stage = "stage": "The lifecycle stage a PAUSE hook waits at (e.g. POST_TEST_TRAFFIC_SHIFT).",
        Run = "run":
            "The command: a string split into words, or a list; run in the config's folder, \
             never through a shell.",
        Timeout = "timeout": "How long the gate may run (default 10m); past it the gate fails.",
    }
}

section! {
    /// `notify:` (in a config, for its service's deploys; in a release file, for the whole
    /// run): the targets told when a deploy starts and ends. A target that cannot be reached
    /// is a warning, never a failed deploy.
    pub enum NotifyKey in "config" at "notify", Refuse "unknown notification target {key}" {
        GithubDeployments = "github_deployments":
            "A GitHub deployment per service: {environment, environment_url}.",
        Slack = "slack": "A Slack incoming webhook: {webhook_url}.",
        Datadog = "datadog": "A Datadog event: {api_key, site, url, env, tags}.",
        Webhook = "webhook":
            "A JSON POST of the versioned payload (docs/reference/webhook.md): {url, headers}.",
    }
}

section! {
    /// `notify.github_deployments:`: GitHub's Deployments API, with the workflow's token
    /// (GITHUB_TOKEN, `deployments: write`), repository and commit (GITHUB_SHA).
    pub enum GithubDeploymentsKey in "config" at "notify.github_deployments",
        Refuse "unknown key {key} in `notify.github_deployments`" {
        Environment = "environment":
            "The environment's name (e.g. production); `{service}` stands for the service's \
             name (production/{service} in a repository of many services).",
        EnvironmentUrl = "environment_url": "The URL the environment serves, shown by GitHub.",
    }
}

section! {
    /// `notify.slack:`: a Slack incoming webhook.
    pub enum SlackKey in "config" at "notify.slack", Refuse "unknown key {key} in `notify.slack`" {
        WebhookUrl = "webhook_url":
            "The webhook's URL (a secret: write {{ must_env `SLACK_WEBHOOK_URL` }}).",
    }
}

section! {
    /// `notify.datadog:`: an event of Datadog's Events API (v1).
    pub enum DatadogKey in "config" at "notify.datadog", Refuse "unknown key {key} in `notify.datadog`" {
        ApiKey = "api_key": "The API key (a secret: write {{ must_env `DD_API_KEY` }}).",
        Site = "site": "The Datadog site (default datadoghq.com; e.g. datadoghq.eu, us5.datadoghq.com).",
        Url = "url": "The events endpoint instead of https://api.SITE/api/v1/events (a proxy, tests).",
        Env = "env": "The `env:` tag of the events (default: none).",
        Tags = "tags": "More tags for the events: a list of key:value strings.",
    }
}

section! {
    /// `notify.webhook:`: a JSON POST of cortado's versioned payload.
    pub enum WebhookKey in "config" at "notify.webhook", Refuse "unknown key {key} in `notify.webhook`" {
        Url = "url": "Where to POST (a secret: write {{ must_env `DEPLOY_WEBHOOK_URL` }}).",
        Headers = "headers":
            "Headers sent with it: {NAME: value} (values are secrets, e.g. an Authorization).",
    }
}

section! {
    /// The top level of a release file.
    pub enum ReleaseKey in "release" at "", Refuse "unknown key {key}" {
        Envfiles = "envfiles": "Envfiles loaded for every config, before --envfile.",
        ExtStr = "ext_str": "Jsonnet ext-str variables for every config; --ext-str wins.",
        ExtCode = "ext_code": "Jsonnet ext-code variables for every config; --ext-code wins.",
        Parallel = "parallel": "The default for --parallel (else 16).",
        OnFailure = "on_failure":
            "The default for --on-failure: rollback-failed, rollback-all or stop.",
        Steps = "steps": "The steps: a non-empty list of {name, config, after, run, paths}.",
        Environments = "environments":
            "Named places to deploy the same steps to, chosen with --environment NAME: \
             {NAME: {region, assume_role_arn, envfiles, ext_str, ext_code}}.",
        Notify = "notify":
            "Who hears about the whole run (release_started, release_finished): the keys of a \
             config's `notify`.",
    }
}

section! {
    /// One environment of a release file (`environments.NAME`): where and as whom its run
    /// deploys, and the values its configs render with.
    pub enum EnvironmentKey in "release" at "environments.NAME", Refuse "unknown key {key} in an environment" {
        Region = "region": "The AWS region (the --region flag wins; a config's `region` gives way).",
        AssumeRoleArn = "assume_role_arn":
            "The IAM role every AWS call of the run is made as (the --assume-role-arn flag wins).",
        Envfiles = "envfiles":
            "Envfiles loaded after the release's (theirs win), before --envfile; relative to the \
             release file.",
        ExtStr = "ext_str": "Jsonnet ext-str variables over the release's; --ext-str wins.",
        ExtCode = "ext_code": "Jsonnet ext-code variables over the release's; --ext-code wins.",
    }
}

section! {
    /// One step of a release file.
    pub enum StepKey in "release" at "steps[]", Refuse "unknown key {key}" {
        Name = "name": "The step's name (default: the folder of its config).",
        Config = "config":
            "A config path or a pattern (one step per match), relative to the release file.",
        After = "after": "The steps this one waits for: a name or a list of names.",
        Run = "run":
            "Makes the step a one-off task from its config: {command, container, env} (or \
             true).",
        Paths = "paths":
            "The service's own sources: path patterns (`*`, `?`, `**`) relative to the release \
             file; `cortado affected` counts a change there as touching the step.",
    }
}

section! {
    /// `run:` of a release step.
    pub enum RunKey in "release" at "steps[].run", Refuse "unknown key {key}" {
        Command = "command":
            "The command: a list of words, or a string split into words (default: the task \
             definition's).",
        Container = "container": "The container it runs in (default: the first essential one).",
        Env = "env": "Environment variables added to the container: {NAME: value}.",
    }
}

/// Every section of a config file and of a release file, for the docs generator: each
/// [`Section::keys`] lists `(key, what it means)`.
pub fn sections() -> &'static [&'static Section] {
    &[
        &ConfigKey::SECTION,
        &PluginKey::SECTION,
        &IgnoreKey::SECTION,
        &CodeDeployKey::SECTION,
        &AppSpecKey::SECTION,
        &RolloutKey::SECTION,
        &FastFailKey::SECTION,
        &GateKey::SECTION,
        &NotifyKey::SECTION,
        &GithubDeploymentsKey::SECTION,
        &SlackKey::SECTION,
        &DatadogKey::SECTION,
        &WebhookKey::SECTION,
        &ReleaseKey::SECTION,
        &EnvironmentKey::SECTION,
        &StepKey::SECTION,
        &RunKey::SECTION,
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_parses_to_itself_and_is_documented() {
        for s in sections() {
            assert!(!s.doc().is_empty(), "{} {}", s.file, s.path);
            for (key, what) in s.keys() {
                assert!(s.knows(key));
                assert!(!what.trim().is_empty(), "{key} has no description");
            }
        }
        assert_eq!(RolloutKey::parse("fast_fail"), Some(RolloutKey::FastFail));
        assert_eq!(RolloutKey::FastFail.key(), "fast_fail");
        assert_eq!(RolloutKey::parse("fast-fail"), None);
    }

    /// Loads `text` as a config file of its own folder.
    fn load(name: &str, text: &str) -> crate::config::Config {
        let dir =
            std::env::temp_dir().join(format!("cortado-schema-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("cortado.yml");
        std::fs::write(&path, text).unwrap();
        let ctx = crate::render::RenderContext::from_env(&[]).unwrap();
        crate::config::load(&ctx, &path).unwrap()
    }

    #[test]
    fn every_config_key_is_read_without_a_warning() {
        let text = "region: eu-west-1\ncluster: c\nservice: s\nservice_definition: s.json\n\
                    task_definition: t.json\nexpress_definition: e.json\ntimeout: 10m\n\
                    plugins: []\ncodedeploy: {}\nappspec: {}\nrequired_version: '>= 2'\n\
                    ignore: {tags: []}\nfilter_command: ''\nrollout: {}\nnotify: {}\n";
        let config = load("all", text);
        assert!(config.warnings.is_empty(), "{:?}", config.warnings);
        let written: Vec<&str> = text.lines().filter_map(|l| l.split(':').next()).collect();
        let keys: Vec<&str> = ConfigKey::SECTION.keys().iter().map(|(k, _)| *k).collect();
        assert_eq!(written, keys, "the test writes every key of the section");
    }

    #[test]
    fn unknown_keys_inside_sections_are_located_warnings_with_a_suggestion() {
        let config = load(
            "sections",
            "service: s\nplugins:\n  - name: ssm\n    func_prefx: a_\nignore: {tagz: [x]}\n\
             codedeploy: {aplication_name: app}\nappspec: {Hoks: []}\n",
        );
        let mut found = config.warnings.clone();
        found.extend(crate::deploy::controller::codedeploy::appspec::check_config(&config, None));
        let seen: Vec<(String, usize, Option<String>)> = found
            .iter()
            .map(|d| {
                assert!(!d.is_error(), "{}", d.message);
                (
                    d.message.clone(),
                    d.location.as_ref().map_or(0, |l| l.line),
                    d.hint.clone(),
                )
            })
            .collect();
        for (message, line, meant) in [
            (
                "unknown key \"func_prefx\" in a plugin is ignored",
                4,
                "func_prefix",
            ),
            ("unknown key \"tagz\" in `ignore` is ignored", 5, "tags"),
            (
                "unknown key \"aplication_name\" in `codedeploy` is ignored",
                6,
                "application_name",
            ),
            ("unknown key \"Hoks\" in `appspec` is ignored", 7, "Hooks"),
        ] {
            let hint = format!("did you mean {meant:?}?");
            assert!(
                seen.iter()
                    .any(|(m, l, h)| m == message && *l == line && h.as_deref() == Some(&hint)),
                "{message} at line {line}: {seen:?}"
            );
        }
    }
}
