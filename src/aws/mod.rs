//! The AWS API: the only module that talks to aws-sdk-*.
//!
//! Receives [`AwsSettings`] (region, endpoint override, credentials mode, retry bound) and
//! builds one shared SDK configuration with clients for ECS, ELBv2, ECR, CodeDeploy, SSM,
//! CloudWatch Logs, Application Auto Scaling, IAM and, for template lookups, CloudFormation, Secrets Manager and S3
//! ([`connect`]). Hands on [`Clients`] with thin, typed operations (see [`ecs`] and [`elb`]):
//! each maps SDK failures to a [`crate::error::Error`] with a hint, batches where the API
//! caps the count (10 services, 20 service deployments, 100 tasks a call) and follows pages.
//! [`json`] turns live SDK values into the camelCase JSON the diff compares.

pub(crate) mod autoscaling;
mod batch;
pub mod codedeploy;
pub mod ecr;
pub(crate) mod ecs;
pub(crate) mod elb;
mod error;
pub(crate) mod exec;
pub(crate) mod express;
pub(crate) mod iam;
pub mod json;
mod logs;
mod lookup;
pub(crate) mod pace;
mod ssm;
#[cfg(test)]
mod tests;
pub(crate) mod verify;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_config::BehaviorVersion;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_sdk_ecs::config::interceptors::BeforeSerializationInterceptorContextRef;
use aws_sdk_ecs::config::{ConfigBag, Credentials, Intercept, Region, RuntimeComponents};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::orchestrator::Metadata;

use crate::error::{Diagnostic, Error, Result};

pub use ecs::{OneOffTask, ServiceDeploymentStop, ServiceUpdate, TaskFilter};
pub use logs::{LogPage, LogTail};

/// SDK types other modules use in signatures (so they need not name the SDK crates).
pub mod types {
    pub use aws_sdk_ecs::operation::create_service::CreateServiceInput;
    pub use aws_sdk_ecs::operation::register_task_definition::RegisterTaskDefinitionInput;
    pub use aws_sdk_ecs::operation::run_task::RunTaskInput;
    pub use aws_sdk_ecs::operation::update_service::UpdateServiceInput;
    pub use aws_sdk_ecs::types as ecs;
    pub use aws_sdk_elasticloadbalancingv2::types as elbv2;
    pub use aws_smithy_types::DateTime;
}

/// How to reach AWS; built once from flags, config and environment.
#[derive(Debug, Clone)]
pub struct AwsSettings {
    /// `--region` or the config file's `region`; `None` falls back to the SDK's chain
    /// (AWS_REGION, AWS_DEFAULT_REGION, the profile).
    pub region: Option<String>,
    /// `--sandbox` or an explicit endpoint. The SDK also honours AWS_ENDPOINT_URL.
    pub endpoint_url: Option<String>,
    /// Use fixed dummy credentials (sandbox, emulators) instead of the default chain, so
    /// nothing probes the instance metadata endpoint.
    pub static_credentials: bool,
    /// Attempts per API call, first one included (standard retry mode).
    pub max_attempts: u32,
    /// `--assume-role-arn`: every call made with the credentials of this role, assumed once
    /// (STS AssumeRole) with the credentials found otherwise.
    pub assume_role_arn: Option<String>,
}

impl Default for AwsSettings {
    fn default() -> Self {
        AwsSettings {
            region: None,
            endpoint_url: None,
            static_credentials: false,
            max_attempts: 5,
            assume_role_arn: None,
        }
    }
}

/// Connect timeout for every call.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Time limit of one attempt of an API call once it is sent (retries get their own): the HTTP
/// read timeout, which starts after the run's pacer let the request go ([`pace`]), so a
/// request waiting for its token is not timed out.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(30);

/// The API clients, sharing one SDK configuration.
#[derive(Debug, Clone)]
pub struct Clients {
    pub(crate) ecs: aws_sdk_ecs::Client,
    pub(crate) elbv2: aws_sdk_elasticloadbalancingv2::Client,
    pub(crate) ecr: aws_sdk_ecr::Client,
    pub(crate) codedeploy: aws_sdk_codedeploy::Client,
    pub(crate) ssm: aws_sdk_ssm::Client,
    /// Template lookups: `cfn_output` / `cfn_export`.
    pub(crate) cloudformation: aws_sdk_cloudformation::Client,
    /// Template lookups: `secretsmanager_arn`.
    pub(crate) secretsmanager: aws_sdk_secretsmanager::Client,
    /// Template lookups: `tfstate` states at `s3://` URLs.
    pub(crate) s3: aws_sdk_s3::Client,
    /// `cortado run`: the task's awslogs lines.
    pub(crate) logs: aws_sdk_cloudwatchlogs::Client,
    /// `deploy --suspend-auto-scaling` / `--resume-auto-scaling`.
    pub(crate) autoscaling: aws_sdk_applicationautoscaling::Client,
    /// `cortado verify`: task and execution roles.
    pub(crate) iam: aws_sdk_iam::Client,
    region: String,
    endpoint_url: Option<String>,
    calls: CallLog,
    pacer: pace::Pacer,
    /// Single-service lookups waiting to share a DescribeServices call ([`batch`]).
    lookups: Arc<batch::Queue>,
}

impl Clients {
    /// The region every client talks to.
    pub fn region(&self) -> &str {
        &self.region
    }

    /// The endpoint override, when there is one.
    pub fn endpoint_url(&self) -> Option<&str> {
        self.endpoint_url.as_deref()
    }

    /// Every API operation called so far through these clients, as `Service.Operation`
    /// (e.g. `ECS.DescribeServices`), one entry per call (retries of a call are not counted).
    /// Tests assert request counts with it.
    /// Tells `trace` of each call from now on, as it is made (its operation).
    pub fn trace(&self, trace: impl Fn(&str) + Send + Sync + 'static) {
        if let Ok(mut t) = self.calls.1.lock() {
            *t = Some(Arc::new(trace));
        }
    }

    pub fn calls(&self) -> Vec<String> {
        self.calls.0.lock().map(|v| v.clone()).unwrap_or_default()
    }

    /// Requests the run's pacer held back, and the seconds they waited in all.
    pub fn paced(&self) -> (u64, f64) {
        self.pacer.waited()
    }

    /// How many calls were made in all.
    pub fn total_calls(&self) -> usize {
        self.calls.0.lock().map(|v| v.len()).unwrap_or_default()
    }

    /// How many calls of `operation` (e.g. `DescribeServices`) were made.
    pub fn call_count(&self, operation: &str) -> usize {
        self.calls()
            .iter()
            .filter(|c| c.rsplit('.').next() == Some(operation))
            .count()
    }
}

/// A count of API calls made inside [`counted`] scopes (a watch's polls, say), apart from the
/// run's total: a watch charges its budget with its own calls only, not with those the rest
/// of the run makes meanwhile (decisions, one-off tasks, other commands' work).
#[derive(Debug, Clone, Default)]
pub struct CallCounter(Arc<AtomicUsize>);

impl CallCounter {
    /// Calls counted so far.
    pub fn get(&self) -> usize {
        self.0.load(Ordering::Relaxed)
    }
}

tokio::task_local! {
    /// The counter of the [`counted`] scope being polled, if any.
    static SCOPE: CallCounter;
}

/// Runs `f`, counting in `counter` each API call `f` itself makes. Calls other futures make
/// meanwhile (other tasks, or the other branches of a `join!` in the same task) are not
/// counted: the scope is in effect only while `f` is polled.
pub async fn counted<F: std::future::Future>(counter: &CallCounter, f: F) -> F::Output {
    SCOPE.scope(counter.clone(), f).await
}

/// Records the operation of every call (an SDK interceptor; runs once per call, before
/// serialization: the operation's metadata is not in the config bag any earlier), and counts
/// it in the [`counted`] scope it was made in.
#[derive(Clone, Default)]
struct CallLog(Arc<Mutex<Vec<String>>>, Trace);

/// What `--verbose` is told of each call (its operation), when anything is.
type Trace = Arc<Mutex<Option<Arc<dyn Fn(&str) + Send + Sync>>>>;

impl std::fmt::Debug for CallLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("CallLog").field(&self.0).finish()
    }
}

impl Intercept for CallLog {
    fn name(&self) -> &'static str {
        "cortado-call-log"
    }

    fn read_before_serialization(
        &self,
        _context: &BeforeSerializationInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> std::result::Result<(), BoxError> {
        if let Some(m) = cfg.load::<Metadata>()
            && let Ok(mut calls) = self.0.lock()
        {
            let call = format!("{}.{}", m.service(), m.name());
            if let Some(trace) = self.1.lock().ok().and_then(|t| t.clone()) {
                trace(&call);
            }
            calls.push(call);
        }
        let _ = SCOPE.try_with(|c| c.0.fetch_add(1, Ordering::Relaxed));
        Ok(())
    }
}

/// Builds the shared SDK configuration and the clients.
///
/// The region comes from `settings` first, then from the SDK's chain; with neither, this
/// fails and says how to set one (a guessed region would deploy to the wrong place).
pub async fn connect(settings: &AwsSettings) -> Result<Clients> {
    connect_with(settings, None).await
}

/// `conf` with the credentials of `role`, assumed now (STS AssumeRole, through the same
/// endpoint, region and retry settings) so that a role that cannot be assumed is one clear
/// error before any other call; the SDK refreshes them before they expire.
async fn assume_role(conf: aws_config::SdkConfig, role: &str) -> Result<aws_config::SdkConfig> {
    use aws_credential_types::provider::ProvideCredentials;
    let provider = aws_config::sts::AssumeRoleProvider::builder(role)
        .session_name(format!("cortado-{}", std::process::id()))
        .configure(&conf)
        .build()
        .await;
    if let Err(e) = provider.provide_credentials().await {
        let why = std::error::Error::source(&e).map_or_else(|| e.to_string(), |s| s.to_string());
        return Err(Error::aws(format!(
            "cannot assume the role {role} (--assume-role-arn): {why}"
        ))
        .with_hint(
            "check the role's ARN and that its trust policy lets the current credentials assume it",
        ));
    }
    Ok(conf
        .into_builder()
        .credentials_provider(
            aws_credential_types::provider::SharedCredentialsProvider::new(provider),
        )
        .build())
}

/// [`connect`] with a credentials provider of the caller's (tests use failing ones).
pub(crate) async fn connect_with(
    settings: &AwsSettings,
    credentials: Option<aws_sdk_ecs::config::SharedCredentialsProvider>,
) -> Result<Clients> {
    let pacer = pace::Pacer::default();
    let conf = load_config(settings, credentials, &pacer).await?;
    let region = match conf.region().map(|r| r.as_ref().trim().to_string()) {
        Some(r) if !r.is_empty() => r,
        _ => return Err(no_region("no AWS region is set")),
    };
    let calls = CallLog::default();
    // Every client shares the configuration and counts its calls in `calls`.
    macro_rules! client {
        ($sdk:ident $(, $option:ident($value:expr))*) => {
            $sdk::Client::from_conf(
                $sdk::config::Builder::from(&conf)
                    $(.$option($value))*
                    .interceptor(calls.clone())
                    .build(),
            )
        };
    }
    Ok(Clients {
        ecs: client!(aws_sdk_ecs),
        elbv2: client!(aws_sdk_elasticloadbalancingv2),
        ecr: client!(aws_sdk_ecr),
        codedeploy: client!(aws_sdk_codedeploy),
        ssm: client!(aws_sdk_ssm),
        cloudformation: client!(aws_sdk_cloudformation),
        secretsmanager: client!(aws_sdk_secretsmanager),
        // An endpoint override (emulators) serves buckets by path, not by host name.
        s3: client!(
            aws_sdk_s3,
            force_path_style(settings.endpoint_url.is_some())
        ),
        logs: client!(aws_sdk_cloudwatchlogs),
        autoscaling: client!(aws_sdk_applicationautoscaling),
        iam: client!(aws_sdk_iam),
        region,
        endpoint_url: settings.endpoint_url.clone(),
        calls,
        pacer,
        lookups: Arc::default(),
    })
}

/// The SDK configuration every client shares: retries, timeouts, the run's pacer in front
/// of the HTTP client, region, endpoint override and credentials.
async fn load_config(
    settings: &AwsSettings,
    credentials: Option<aws_sdk_ecs::config::SharedCredentialsProvider>,
    pacer: &pace::Pacer,
) -> Result<aws_config::SdkConfig> {
    // Standard retry mode. The SDK's adaptive mode (a client-side rate limiter that slows down
    // after throttling answers) was measured: without the pacer, 200 services drew 71 throttled
    // answers instead of 234; with the pacer the run draws none either way, and under 50%
    // random throttling (the fault matrix) adaptive made a deploy 4x slower (75 s median
    // instead of 18 s). The pacer keeps the run's own requests within the buckets; standard
    // retries absorb what other callers of the account cause without that slowdown.
    // Measurement knobs (benches/monorepo_scale.rs): CORTADO_API_PACING=off sends without the
    // run's pacer; CORTADO_RETRY_MODE=adaptive uses the adaptive mode.
    let pacing = std::env::var("CORTADO_API_PACING").map_or(true, |v| v != "off");
    let adaptive = std::env::var("CORTADO_RETRY_MODE").is_ok_and(|v| v == "adaptive");
    let retry = if adaptive {
        RetryConfig::adaptive()
    } else {
        RetryConfig::standard()
    }
    .with_max_attempts(settings.max_attempts.max(1))
    .with_max_backoff(Duration::from_secs(5));
    let timeouts = TimeoutConfig::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .read_timeout(ATTEMPT_TIMEOUT)
        .build();
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .retry_config(retry)
        .timeout_config(timeouts);
    if pacing {
        loader = loader.http_client(pace::PacedClient::new(default_http_client(), pacer.clone()));
    }
    if let Some(region) = settings.region.as_deref().map(str::trim) {
        if region.is_empty() {
            return Err(no_region("the region given is empty"));
        }
        loader = loader.region(Region::new(region.to_string()));
    }
    if let Some(url) = &settings.endpoint_url {
        loader = loader.endpoint_url(url.clone());
    }
    if settings.static_credentials {
        loader = loader.credentials_provider(Credentials::new(
            "cortado-static-key",
            "cortado-static-secret",
            None,
            None,
            "cortado-static",
        ));
    }
    if let Some(provider) = credentials {
        loader = loader.credentials_provider(provider);
    }
    let conf = loader.load().await;
    match &settings.assume_role_arn {
        Some(role) => assume_role(conf, role).await,
        None => Ok(conf),
    }
}

/// The HTTP client the SDK would pick by itself (hyper 1, rustls with aws-lc, proxy settings
/// from the environment), built here so that the pacer can stand in front of it.
fn default_http_client() -> aws_sdk_ecs::config::SharedHttpClient {
    use aws_smithy_http_client::proxy::ProxyConfig;
    use aws_smithy_http_client::{Builder, ConnectorBuilder, tls};
    Builder::new().build_with_connector_fn(|settings, components| {
        let mut b = ConnectorBuilder::default().tls_provider(tls::Provider::Rustls(
            tls::rustls_provider::CryptoMode::AwsLc,
        ));
        b.set_connector_settings(settings.cloned());
        if let Some(c) = components {
            b.set_sleep_impl(c.sleep_impl());
        }
        b.set_proxy_config(Some(ProxyConfig::from_env()));
        b.build()
    })
}

fn no_region(what: &str) -> Error {
    Error::input(Diagnostic::error(format!("{what}: cortado will not guess where to deploy")).hint(
        "set `region:` in the config file, pass --region, or set AWS_REGION (or a region in your AWS profile)",
    ))
}
