//! The sandbox: a local ECS/ECR/ELBv2/CodeDeploy/SSM (and minimal CloudWatch Logs, Application
//! Auto Scaling and IAM) emulator over HTTP, with rollout dynamics and fault injection. A product feature (`cortado sandbox serve`, `--sandbox`) and the test bed.
//! Nothing else in cortado imports it: the rest talks to it through the real SDK over HTTP.
//!
//! Receives [`Options`] (port, time compression, state file, [`Seed`], PRNG seed, faults) and
//! [`Prepare`] requests; hands on a running server ([`Sandbox`]) whose endpoint SDK clients use
//! as `AWS_ENDPOINT_URL`. Time is virtual (`start + real_elapsed * speed`) and the simulation is
//! lazy: each request first advances the world to "now" (see [`world`]).
//!
//! ECS Exec and Session Manager sessions get a data channel at `ws://HOST/v1/data-channel/ID`
//! (see [`exec`]).
//!
//! Control endpoints (JSON): `GET /_sandbox/requests` (request log), `GET /_sandbox/state`,
//! `GET|POST /_sandbox/faults` (see [`faults`] for the syntax), `POST /_sandbox/advance`
//! (`{"seconds": 300}` jumps virtual time), `POST /_sandbox/reset` (back to the seeded state).

mod api;
mod autoscaling;
mod cloudformation;
mod codedeploy;
mod ecr;
mod ecs;
mod elbv2;
mod error;
mod exec;
mod express;
mod faults;
mod iam;
mod logs;
mod minishell;
mod query;
mod s3;
mod secretsmanager;
mod server;
mod shared;
mod ssm;
#[cfg(test)]
mod test_server;
mod throttle;
mod util;
pub mod world;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use error::Error;

pub use elbv2::{DEREGISTRATION_DELAY, HealthCheck};
pub use faults::{ApiFaults, ExecFaults, FailRule, Faults, FaultsPatch, ImageFault};
pub use shared::RequestRecord;
use shared::{Inner, Shared};
pub use throttle::{Category, ECS_CATEGORIES, Throttle};
use util::{Clock, Rng, wall_now};
use world::World;

/// How the sandbox runs.
#[derive(Debug, Clone)]
pub struct Options {
    /// Port on 127.0.0.1; 0 picks a free one.
    pub port: u16,
    /// Time compression: 60 makes a 60 s task start take 1 s.
    pub speed: f64,
    /// JSON state loaded at start (when it exists) and saved at shutdown.
    pub state_file: Option<PathBuf>,
    pub seed: Option<Seed>,
    /// Seed of the PRNG (task IDs, IPs, timings, fault draws).
    pub rng_seed: u64,
    /// The region and the account the sandbox stands in for: its ARNs, its ECR registry
    /// (`ACCOUNT.dkr.ecr.REGION.amazonaws.com`) and its SSM parameter ARNs carry them.
    pub region: String,
    pub account: String,
    pub faults: Faults,
    /// `Throttle::Aws`: ECS's documented token buckets per action category, refilled in wall
    /// time (see [`throttle`]); requests over a bucket get ThrottlingException.
    pub throttle: Throttle,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            port: 0,
            speed: 1.0,
            state_file: None,
            seed: None,
            rng_seed: 1,
            region: "us-east-1".into(),
            account: world::ACCOUNT.into(),
            faults: Faults::default(),
            throttle: Throttle::Off,
        }
    }
}

/// What a seed file creates before the first request.
///
/// YAML (JSON works too); every key is optional, unknown keys are errors. Services and task
/// definitions take the members of the AWS requests (`CreateService`, `RegisterTaskDefinition`)
/// in their camelCase spelling; a service's `taskDefinition` may be inline. Seeded services
/// start settled: their tasks are already RUNNING when the server answers.
///
/// ```yaml
/// clusters: [default, prod]
/// images:                       # ECR images that exist (others in this registry fail to pull)
///   - 123456789012.dkr.ecr.us-east-1.amazonaws.com/web:v1
/// targetGroups:
///   - {name: web-blue, port: 80, protocol: HTTP, targetType: ip}
///   - {name: web-green, port: 80}
/// loadBalancers:
///   - name: web-alb
///     listeners:
///       - port: 80
///         protocol: HTTP
///         forward: [{targetGroup: web-blue, weight: 100}]
///         rules:
///           - priority: 10
///             pathPattern: "/*"
///             forward: [{targetGroup: web-blue, weight: 100}, {targetGroup: web-green, weight: 0}]
/// taskDefinitions:
///   - family: worker
///     containerDefinitions: [{name: worker, image: "busybox:1"}]
/// services:
///   - cluster: prod
///     serviceName: web
///     desiredCount: 2
///     launchType: FARGATE
///     networkConfiguration: {awsvpcConfiguration: {subnets: [subnet-1]}}
///     deploymentConfiguration:
///       deploymentCircuitBreaker: {enable: true, rollback: true}
///     taskDefinition:
///       family: web
///       networkMode: awsvpc
///       requiresCompatibilities: [FARGATE]
///       cpu: "256"
///       memory: "512"
///       containerDefinitions:
///         - name: web
///           image: 123456789012.dkr.ecr.us-east-1.amazonaws.com/web:v1
///           portMappings: [{containerPort: 80}]
/// parameters:                   # SSM Parameter Store
///   - {name: /web/db_password, type: SecureString, value: hunter2}
/// secrets:                      # Secrets Manager (`arn` adopts the ARN a valueFrom names)
///   - {name: web/api-key, secretString: s3cr3t}
///   - {name: web/json, secretString: '{"foo":"bar"}', arn: "arn:aws:secretsmanager:us-east-1:123456789012:secret:web/json-AbCdEf"}
/// stacks:                       # CloudFormation stacks (CREATE_COMPLETE) and their outputs
///   - stackName: network
///     outputs:
///       - {outputKey: VpcId, outputValue: vpc-0a1b2c3d, exportName: network-VpcId}
/// objects:                      # S3 objects (`file` is relative to the seed file)
///   - {bucket: my-states, key: network/terraform.tfstate, file: terraform.tfstate}
///   - {bucket: my-states, key: hello.txt, body: hello}
/// faults:                       # same shape as POST /_sandbox/faults
///   api: {throttleRate: 0.1}
///   images: {"nginx:broken": pull-fail}
/// ```
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct Seed {
    pub clusters: Vec<String>,
    pub images: Vec<String>,
    pub target_groups: Vec<SeedTargetGroup>,
    pub load_balancers: Vec<SeedLoadBalancer>,
    pub task_definitions: Vec<Value>,
    pub services: Vec<Value>,
    pub faults: Option<FaultsPatch>,
    /// SSM parameters that exist (`{name, type, value}`; type String, StringList or
    /// SecureString).
    pub parameters: Vec<SeedParameter>,
    /// Secrets Manager secrets that exist.
    pub secrets: Vec<SeedSecret>,
    /// CloudFormation stacks, with their outputs (and the exports those declare).
    pub stacks: Vec<SeedStack>,
    /// S3 objects (their buckets are created too).
    pub objects: Vec<SeedObject>,
}

/// A Secrets Manager secret of a seed file (CreateSecret's members).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SeedSecret {
    pub name: String,
    #[serde(default)]
    pub secret_string: Option<String>,
    /// Base64, as the API carries it.
    #[serde(default)]
    pub secret_binary: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    /// The secret's ARN, when a task definition names it with its suffix
    /// (`...:secret:NAME-AbCdEf`); otherwise the sandbox makes one.
    #[serde(default)]
    pub arn: Option<String>,
}

/// A CloudFormation stack of a seed file.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SeedStack {
    pub stack_name: String,
    #[serde(default)]
    pub outputs: Vec<cloudformation::Output>,
}

/// An S3 object of a seed file: its text in `body`, or the file `file` (relative to the seed
/// file) read when the seed is loaded.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SeedObject {
    pub bucket: String,
    pub key: String,
    #[serde(default)]
    pub body: Option<String>,
    #[serde(default)]
    pub file: Option<PathBuf>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SeedParameter {
    pub name: String,
    #[serde(rename = "type", default = "default_parameter_type")]
    pub kind: String,
    pub value: String,
}

fn default_parameter_type() -> String {
    "String".to_string()
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SeedTargetGroup {
    pub name: String,
    #[serde(default = "default_port")]
    pub port: i32,
    #[serde(default = "default_protocol")]
    pub protocol: String,
    #[serde(default = "default_target_type")]
    pub target_type: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SeedLoadBalancer {
    pub name: String,
    #[serde(default)]
    pub listeners: Vec<SeedListener>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SeedListener {
    #[serde(default = "default_port")]
    pub port: i32,
    #[serde(default = "default_protocol")]
    pub protocol: String,
    #[serde(default)]
    pub forward: Vec<SeedForward>,
    #[serde(default)]
    pub rules: Vec<SeedRule>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SeedRule {
    pub priority: i32,
    #[serde(default = "default_path")]
    pub path_pattern: String,
    pub forward: Vec<SeedForward>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SeedForward {
    /// Target group name or ARN.
    pub target_group: String,
    #[serde(default = "default_weight")]
    pub weight: i32,
}

fn default_port() -> i32 {
    80
}
fn default_protocol() -> String {
    "HTTP".into()
}
fn default_target_type() -> String {
    "ip".into()
}
fn default_path() -> String {
    "/*".into()
}
fn default_weight() -> i32 {
    1
}

impl Seed {
    /// Parse a seed file's text; `path` is for messages, and the folder `objects[].file`
    /// names are relative to (they are read here, into `body`).
    pub fn parse(text: &str, path: &Path) -> Result<Seed, Error> {
        let mut seed = serde_saphyr::from_str::<Seed>(text).map_err(|e| {
            Error::msg(format!("the sandbox seed file is not valid: {e}"))
                    .at_file(path)
                    .with_hint("see `Seed` in the sandbox docs for the format: clusters, images, targetGroups, loadBalancers, taskDefinitions, services, parameters, secrets, stacks, objects, faults")
        })?;
        let dir = path.parent().unwrap_or(Path::new("."));
        for o in &mut seed.objects {
            match (&o.body, o.file.take()) {
                (Some(_), Some(_)) | (None, None) => {
                    return Err(Error::msg(format!(
                        "the sandbox seed file's object s3://{}/{} needs one of `body` and `file`",
                        o.bucket, o.key
                    ))
                    .at_file(path));
                }
                (None, Some(f)) => {
                    let f = dir.join(f);
                    let text = std::fs::read_to_string(&f)
                        .map_err(|e| Error::io(&f, &e, "reading an S3 object of the seed file"))?;
                    o.body = Some(text);
                }
                (Some(_), None) => {}
            }
        }
        Ok(seed)
    }

    pub fn load(path: &Path) -> Result<Seed, Error> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::io(path, &e, "reading the sandbox seed file"))?;
        Seed::parse(&text, path)
    }
}

/// What a cortado config needs to exist before its first deploy.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Prepare {
    pub cluster: String,
    pub service: Option<String>,
    /// Target group names or ARNs.
    pub target_groups: Vec<String>,
    /// Image references to put into the sandbox's ECR.
    pub images: Vec<String>,
    /// The `advancedConfiguration` of the service's load balancers (blue/green, canary and
    /// linear deployments): an alternate target group and the listener rules ECS shifts.
    pub blue_green: Vec<PrepareBlueGreen>,
    /// CloudWatch Logs groups the containers' awslogs driver writes to.
    pub log_groups: Vec<String>,
    /// IAM roles (ARNs or names) the task definition names as its task and execution roles;
    /// each is created trusting `ecs-tasks.amazonaws.com`.
    pub roles: Vec<String>,
    /// A CODE_DEPLOY service: the CodeDeploy application and deployment group that deploy it.
    pub codedeploy: Option<PrepareCodeDeploy>,
    /// SSM parameters (names) the containers' `secrets[].valueFrom` read; each missing one is
    /// created as a SecureString holding [`PREPARED_SECRET`].
    pub parameters: Vec<String>,
    /// Secrets Manager secrets (ARNs, as `valueFrom` names them) the containers read; each
    /// missing one is created holding [`PREPARED_SECRET`], adopting its ARN when it is a full
    /// one (with the six-character suffix).
    pub secrets: Vec<String>,
}

/// The value of a secret `--prepare` creates: a placeholder, never a real secret.
pub const PREPARED_SECRET: &str = "sandbox-placeholder";

/// The CodeDeploy side of a CODE_DEPLOY service: Prepare creates the application (ECS
/// compute platform), a second target group, a production listener (port 80) and a test
/// listener (port 8080) forwarding 100% to `target_group`, and the deployment group with
/// that target group pair and those listeners. The group is created before the service
/// exists (its first deploy creates it): the sandbox resolves the service at CreateDeployment.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PrepareCodeDeploy {
    pub application: String,
    pub group: String,
    /// Name or ARN of the service's target group (`loadBalancers[0].targetGroupArn`).
    pub target_group: String,
    /// Name of the second target group of the pair (default: `<target group>-green`).
    pub alternate_target_group: Option<String>,
    /// `terminationWaitTimeInMinutes` of the original task set (default 0).
    pub termination_wait_minutes: i32,
    /// `deploymentReadyOption` STOP_DEPLOYMENT with this wait time: traffic moves only after a
    /// ContinueDeployment (the deployment is Ready meanwhile). None: CONTINUE_DEPLOYMENT.
    pub ready_wait_minutes: Option<i32>,
}

/// One load balancer's `advancedConfiguration`: Prepare creates the alternate target group, a
/// production listener (port 80) and a test listener (port 8080) on the service's load
/// balancer, and the two rules with the ARNs given, each forwarding 100% to `target_group`
/// and 0% to `alternate_target_group`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PrepareBlueGreen {
    /// Name or ARN of the main target group (`loadBalancers[].targetGroupArn`).
    pub target_group: String,
    /// Name or ARN (`advancedConfiguration.alternateTargetGroupArn`).
    pub alternate_target_group: String,
    /// Listener rule ARN (`advancedConfiguration.productionListenerRule`), on port 80.
    pub production_listener_rule: Option<String>,
    /// Listener rule ARN (`advancedConfiguration.testListenerRule`), on port 8080.
    pub test_listener_rule: Option<String>,
}

/// The name part of a target group ARN (the ARN itself when it is not one).
fn tg_name(arn: &str) -> &str {
    arn.split_once(":targetgroup/")
        .map(|(_, r)| r.split('/').next().unwrap_or(r))
        .unwrap_or(arn)
}

/// Finds a target group by name or ARN, or creates it (adopting an ARN as given); returns its
/// ARN and whether it was created.
fn ensure_target_group(w: &mut World, tg: &str) -> (String, bool) {
    // An ARN from a real account is matched, and created, by its name.
    let name = tg
        .split_once(":targetgroup/")
        .map(|(_, r)| r.split('/').next().unwrap_or(r))
        .unwrap_or(tg);
    match w
        .elbv2
        .find_target_group(tg)
        .or_else(|| w.elbv2.find_target_group(name))
    {
        Some(a) => (a, false),
        None if tg.contains(":targetgroup/") => {
            (w.elbv2.adopt_target_group(tg, 80, "HTTP", "ip"), true)
        }
        None => (w.elbv2.create_target_group(name, 80, "HTTP", "ip"), true),
    }
}

impl Prepare {
    /// Create whatever is missing; returns a line per thing created.
    pub fn apply(&self, sandbox: &Sandbox) -> Result<Vec<String>, Error> {
        let mut inner = sandbox.shared.lock();
        inner.sync();
        let mut created = Vec::new();
        let w = &mut inner.world;
        if !w.clusters.contains_key(&self.cluster) {
            w.ensure_cluster(&self.cluster);
            created.push(format!("cluster {}", self.cluster));
        }
        let now = w.now;
        for image in &self.images {
            let image = &faults::without_faults(image);
            if w.ecr.resolve(image) == Some(false) && put_ecr_image(w, image, now) {
                created.push(format!("ECR image {image}"));
            }
        }
        for group in &self.log_groups {
            if w.logs.ensure_group(group, now) {
                created.push(format!("log group {group}"));
            }
        }
        for role in &self.roles {
            if w.iam.ensure_ecs_tasks_role(role, &w.account, now) {
                created.push(format!("IAM role {}", iam::role_name(role)));
            }
        }
        for name in &self.parameters {
            if !w.ssm.contains(name)
                && w.ssm
                    .put(name, "SecureString", PREPARED_SECRET, now)
                    .is_ok()
            {
                created.push(format!(
                    "SSM parameter {name} (SecureString, value \"{PREPARED_SECRET}\")"
                ));
            }
        }
        for arn in &self.secrets {
            if w.secrets.exists(arn) {
                continue;
            }
            // `arn:...:secret:NAME-AbCdEf` adopts that ARN; a partial ARN (no suffix) names
            // the secret, and one is made.
            let named = arn.split_once(":secret:").map_or(arn.as_str(), |(_, n)| n);
            let suffixed = named.len() > 7 && named.as_bytes()[named.len() - 7] == b'-';
            let name = if suffixed {
                &named[..named.len() - 7]
            } else {
                named
            };
            let new = secretsmanager::NewSecret {
                name,
                string: Some(PREPARED_SECRET),
                binary: None,
                description: Some("created by --prepare"),
                arn: suffixed.then_some(arn.as_str()),
            };
            let at = (w.region.clone(), w.account.clone());
            if w.secrets
                .create(&new, (&at.0, &at.1), now, &mut w.rng)
                .is_ok()
            {
                created.push(format!(
                    "Secrets Manager secret {name} (value \"{PREPARED_SECRET}\")"
                ));
            }
        }
        let mut tgs = Vec::new();
        for tg in &self.target_groups {
            let (arn, new) = ensure_target_group(w, tg);
            if new {
                created.push(format!("target group {}", tg_name(&arn)));
            }
            tgs.push(arn);
        }
        let lb_name = format!(
            "sandbox-{}",
            self.service.as_deref().unwrap_or(&self.cluster)
        );
        if !tgs.is_empty() && w.elbv2.find_load_balancer(&lb_name).is_none() {
            let lb = w.elbv2.create_load_balancer(&lb_name);
            let fwd: Vec<(String, i32)> = tgs
                .iter()
                .enumerate()
                .map(|(i, t)| (t.clone(), if i == 0 { 100 } else { 0 }))
                .collect();
            for port in [80, 8080] {
                w.elbv2
                    .create_listener(&lb, port, "HTTP", &fwd)
                    .map_err(|e| Error::msg(format!("sandbox prepare: listener: {}", e.message)))?;
            }
            created.push(format!(
                "load balancer {lb_name} (listeners 80 and 8080 forwarding to {})",
                self.target_groups.join(", ")
            ));
        }
        for bg in &self.blue_green {
            let (main, _) = ensure_target_group(w, &bg.target_group);
            let (alt, new) = ensure_target_group(w, &bg.alternate_target_group);
            if new {
                created.push(format!("target group {}", tg_name(&alt)));
            }
            let fwd = vec![(main.clone(), 100), (alt.clone(), 0)];
            let lb = w.elbv2.create_load_balancer(&lb_name);
            for (rule, port, what) in [
                (&bg.production_listener_rule, 80, "production"),
                (&bg.test_listener_rule, 8080, "test"),
            ] {
                let Some(rule) = rule else { continue };
                if w.elbv2.forward_weights(rule).is_some() {
                    continue;
                }
                let listener = match w.elbv2.listener_on(&lb, port) {
                    Some(l) => l,
                    None => w
                        .elbv2
                        .create_listener(&lb, port, "HTTP", &fwd)
                        .map_err(|e| {
                            Error::msg(format!("sandbox prepare: listener: {}", e.message))
                        })?,
                };
                // The rule's ARN names its listener; give the listener that ARN, as on AWS.
                let listener = listener_of_rule(rule)
                    .and_then(|named| w.elbv2.adopt_listener_arn(&lb, port, &named))
                    .unwrap_or(listener);
                w.elbv2
                    .adopt_rule(&listener, rule, "/*", &fwd)
                    .map_err(|e| {
                        Error::msg(format!("sandbox prepare: listener rule: {}", e.message))
                    })?;
                created.push(format!(
                    "{what} listener rule {rule} (port {port}: {} 100%, {} 0%)",
                    tg_name(&main),
                    tg_name(&alt)
                ));
            }
        }
        if let Some(cd) = &self.codedeploy {
            let (main, new) = ensure_target_group(w, &cd.target_group);
            if new {
                created.push(format!("target group {}", tg_name(&main)));
            }
            let alt_name = cd
                .alternate_target_group
                .clone()
                .unwrap_or_else(|| format!("{}-green", tg_name(&main)));
            let (alt, new) = ensure_target_group(w, &alt_name);
            if new {
                created.push(format!("target group {}", tg_name(&alt)));
            }
            let fwd = vec![(main.clone(), 100), (alt.clone(), 0)];
            let lb = match w.elbv2.find_load_balancer(&lb_name) {
                Some(lb) => lb,
                None => w.elbv2.create_load_balancer(&lb_name),
            };
            let mut listeners = Vec::new();
            for port in [80, 8080] {
                let listener = match w.elbv2.listener_on(&lb, port) {
                    Some(l) => l,
                    None => w
                        .elbv2
                        .create_listener(&lb, port, "HTTP", &fwd)
                        .map_err(|e| {
                            Error::msg(format!("sandbox prepare: listener: {}", e.message))
                        })?,
                };
                w.elbv2
                    .set_forward_weights(&listener, &fwd)
                    .map_err(|e| Error::msg(format!("sandbox prepare: listener: {}", e.message)))?;
                listeners.push(listener);
            }
            let service = self.service.clone().unwrap_or_default();
            created.extend(w.prepare_codedeploy(
                &cd.application,
                &cd.group,
                (&self.cluster, &service),
                (tg_name(&main), tg_name(&alt)),
                (&listeners[0], &listeners[1]),
                (cd.termination_wait_minutes, cd.ready_wait_minutes),
            ));
        }
        Ok(created)
    }
}

/// A running sandbox. Dropping it stops the server (without saving state: use
/// [`Sandbox::shutdown`] for that).
pub struct Sandbox {
    endpoint: String,
    shared: Arc<Shared>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
    state_file: Option<PathBuf>,
}

/// In-process access to a running sandbox, for tests and the CLI.
#[derive(Clone)]
pub struct Control {
    shared: Arc<Shared>,
}

impl Control {
    /// Replace all faults.
    pub fn set_faults(&self, faults: Faults) {
        let mut inner = self.shared.lock();
        inner.sync();
        server::set_faults(&mut inner, faults);
    }

    /// Merge a partial fault update (what `POST /_sandbox/faults` does).
    pub fn update_faults(&self, patch: FaultsPatch) {
        let mut inner = self.shared.lock();
        inner.sync();
        inner.world.faults.apply(patch);
        inner.world.check_alarms();
    }

    pub fn faults(&self) -> Faults {
        self.shared.lock().world.faults.clone()
    }

    /// The request log so far.
    pub fn requests(&self) -> Vec<RequestRecord> {
        self.shared.lock().log.clone()
    }

    /// A JSON snapshot of the world (as `GET /_sandbox/state`).
    pub fn world(&self) -> Value {
        let mut inner = self.shared.lock();
        inner.sync();
        state_json(&inner)
    }

    /// Jump virtual time forward.
    pub fn advance(&self, seconds: f64) {
        let mut inner = self.shared.lock();
        inner.clock.skip(seconds);
        inner.sync();
    }

    /// Current virtual time (epoch seconds).
    pub fn now(&self) -> f64 {
        self.shared.lock().clock.now()
    }

    /// Run `f` on the world after advancing it (benchmarks, white-box checks).
    pub fn with_world<R>(&self, f: impl FnOnce(&mut World) -> R) -> R {
        let mut inner = self.shared.lock();
        inner.sync();
        f(&mut inner.world)
    }
}

impl Sandbox {
    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        self.endpoint.clone()
    }

    pub fn control(&self) -> Control {
        Control {
            shared: self.shared.clone(),
        }
    }

    /// Stop the server and save the state file when one is set.
    pub async fn shutdown(mut self) -> Result<(), Error> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
        if let Some(path) = self.state_file.clone() {
            let mut inner = self.shared.lock();
            inner.sync();
            save_state(&inner.world, &path)?;
        }
        Ok(())
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// The JSON of `GET /_sandbox/state`.
fn state_json(inner: &Inner) -> Value {
    let w = &inner.world;
    let services: Vec<Value> = w
        .services
        .keys()
        .map(|k| w.describe_service(k, true))
        .collect();
    let tasks: Vec<Value> = w
        .tasks
        .values()
        .map(|t| w.describe_task(t, false))
        .collect();
    let sds: Vec<Value> = w.sds.values().map(|sd| w.describe_sd(sd)).collect();
    let taskdefs: Vec<Value> = w.taskdefs.values().flatten().cloned().collect();
    json!({
        "now": w.now,
        "speed": inner.clock.speed(),
        "throttle": if inner.throttle.is_some() { "aws" } else { "off" },
        "region": w.region,
        "clusters": w.clusters.values().map(|c| &c.arn).collect::<Vec<_>>(),
        "taskDefinitions": taskdefs,
        "services": services,
        "serviceDeployments": sds,
        "tasks": tasks,
        "faults": w.faults,
        "pendingEvents": w.queue.len(),
        "eventsProcessed": w.events_processed,
    })
}

fn save_state(world: &World, path: &Path) -> Result<(), Error> {
    let text = serde_json::to_string(world)
        .map_err(|e| Error::internal(format!("cannot serialize the sandbox state: {e}")))?;
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).map_err(|e| Error::io(&tmp, &e, "writing the sandbox state"))?;
    std::fs::rename(&tmp, path).map_err(|e| Error::io(path, &e, "writing the sandbox state"))
}

fn load_state(path: &Path) -> Result<Option<World>, Error> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io(path, &e, "reading the sandbox state")),
    };
    serde_json::from_str(&text).map(Some).map_err(|e| {
        Error::msg(format!("the sandbox state file is not valid: {e}"))
            .at_file(path)
            .with_hint("delete it to start from an empty (or seeded) sandbox")
    })
}

/// Apply a seed: the world is created 10 virtual minutes in the past so seeded services settle.
fn apply_seed(world: &mut World, seed: &Seed, now: f64) -> Result<(), Error> {
    let fail = |what: &str, e: api::ApiError| {
        Error::msg(format!("sandbox seed: {what}: {}: {}", e.code, e.message))
    };
    world.now = world.now.min(now - 600.0);
    for c in &seed.clusters {
        world.ensure_cluster(c);
    }
    if let Some(f) = &seed.faults {
        world.faults.apply(f.clone());
    }
    let now0 = world.now;
    for p in &seed.parameters {
        world
            .ssm
            .put(&p.name, &p.kind, &p.value, now0)
            .map_err(|e| fail(&format!("parameter {}", p.name), e))?;
    }
    seed_lookups(world, seed, now0)?;
    for img in &seed.images {
        if !put_ecr_image(world, img, now0) {
            return Err(Error::msg(format!(
                "sandbox seed: image {img} is not in the sandbox's ECR registry ({}/REPO:TAG)",
                world.ecr.registry_host()
            )));
        }
    }
    for tg in &seed.target_groups {
        world
            .elbv2
            .create_target_group(&tg.name, tg.port, &tg.protocol, &tg.target_type);
    }
    // "LB:PORT" names a listener, "LB:PORT:PRIORITY" one of its rules (for advancedConfiguration).
    let mut refs: std::collections::BTreeMap<String, String> = Default::default();
    for lb in &seed.load_balancers {
        let lb_arn = match world.elbv2.find_load_balancer(&lb.name) {
            Some(a) => a,
            None => world.elbv2.create_load_balancer(&lb.name),
        };
        for l in &lb.listeners {
            let fwd = seed_forward(world, &l.forward)?;
            let larn = world
                .elbv2
                .create_listener(&lb_arn, l.port, &l.protocol, &fwd)
                .map_err(|e| fail(&format!("listener {}:{}", lb.name, l.port), e))?;
            refs.insert(format!("{}:{}", lb.name, l.port), larn.clone());
            for r in &l.rules {
                let fwd = seed_forward(world, &r.forward)?;
                let rarn = world
                    .elbv2
                    .create_rule(&larn, r.priority, &r.path_pattern, &fwd)
                    .map_err(|e| fail(&format!("rule {}:{}:{}", lb.name, l.port, r.priority), e))?;
                refs.insert(format!("{}:{}:{}", lb.name, l.port, r.priority), rarn);
            }
        }
    }
    for td in &seed.task_definitions {
        world
            .ecs("RegisterTaskDefinition", td)
            .map_err(|e| fail("task definition", e))?;
    }
    for svc in &seed.services {
        let mut body = svc.clone();
        let name = body
            .get("serviceName")
            .and_then(Value::as_str)
            .unwrap_or("?")
            .to_string();
        let cluster = body
            .get("cluster")
            .and_then(Value::as_str)
            .unwrap_or("default")
            .to_string();
        world.ensure_cluster(&cluster);
        if let Some(td) = body
            .get("taskDefinition")
            .filter(|v| v.is_object())
            .cloned()
        {
            let out = world
                .ecs("RegisterTaskDefinition", &td)
                .map_err(|e| fail(&format!("service {name}: task definition"), e))?;
            body["taskDefinition"] = out
                .pointer("/taskDefinition/taskDefinitionArn")
                .cloned()
                .unwrap_or(Value::Null);
        }
        if let Some(lbs) = body.get_mut("loadBalancers").and_then(Value::as_array_mut) {
            for lb in lbs {
                resolve_seed_refs(world, lb, &refs);
            }
        }
        world
            .ecs("CreateService", &body)
            .map_err(|e| fail(&format!("service {name}"), e))?;
    }
    world.advance(now);
    Ok(())
}

/// What template lookups read: Secrets Manager secrets, CloudFormation stacks, S3 objects.
fn seed_lookups(world: &mut World, seed: &Seed, now: f64) -> Result<(), Error> {
    let fail = |what: String, e: api::ApiError| {
        Error::msg(format!("sandbox seed: {what}: {}: {}", e.code, e.message))
    };
    for s in &seed.secrets {
        let new = secretsmanager::NewSecret {
            name: &s.name,
            string: s.secret_string.as_deref(),
            binary: s.secret_binary.as_deref(),
            description: s.description.as_deref(),
            arn: s.arn.as_deref(),
        };
        let at = (world.region.as_str(), world.account.as_str());
        world
            .secrets
            .create(&new, at, now, &mut world.rng)
            .map_err(|e| fail(format!("secret {}", s.name), e))?;
    }
    for st in &seed.stacks {
        let id = format!(
            "arn:aws:cloudformation:{}:{}:stack/{}/{}-{}-{}-{}-{}",
            world.region,
            world.account,
            st.stack_name,
            world.rng.hex(8),
            world.rng.hex(4),
            world.rng.hex(4),
            world.rng.hex(4),
            world.rng.hex(12)
        );
        world
            .cloudformation
            .seed(&st.stack_name, &st.outputs, id, now)
            .map_err(|e| fail(format!("stack {}", st.stack_name), e))?;
    }
    for o in &seed.objects {
        if !s3::valid_bucket_name(&o.bucket) {
            return Err(Error::msg(format!(
                "sandbox seed: object s3://{}/{}: {} is not a valid S3 bucket name",
                o.bucket, o.key, o.bucket
            )));
        }
        let body = o.body.clone().unwrap_or_default().into_bytes();
        world.s3.put(&o.bucket, &o.key, body, now);
    }
    Ok(())
}

fn seed_forward(world: &World, fwd: &[SeedForward]) -> Result<Vec<(String, i32)>, Error> {
    fwd.iter()
        .map(|f| {
            world
                .elbv2
                .find_target_group(&f.target_group)
                .map(|arn| (arn, f.weight))
                .ok_or_else(|| {
                    Error::msg(format!(
                        "sandbox seed: forward names unknown target group {}",
                        f.target_group
                    ))
                    .with_hint("declare it under targetGroups first")
                })
        })
        .collect()
}

/// In a seeded service's load balancer entry, turn target group names and "LB:PORT[:PRIORITY]"
/// references into ARNs.
fn resolve_seed_refs(
    world: &World,
    lb: &mut Value,
    refs: &std::collections::BTreeMap<String, String>,
) {
    if let Some(tg) = lb.get("targetGroupArn").and_then(Value::as_str)
        && let Some(arn) = world.elbv2.find_target_group(tg)
    {
        lb["targetGroupArn"] = json!(arn);
    }
    if let Some(adv) = lb
        .get_mut("advancedConfiguration")
        .and_then(Value::as_object_mut)
    {
        if let Some(alt) = adv.get("alternateTargetGroupArn").and_then(Value::as_str)
            && let Some(arn) = world.elbv2.find_target_group(alt)
        {
            adv.insert("alternateTargetGroupArn".into(), json!(arn));
        }
        for k in ["productionListenerRule", "testListenerRule"] {
            if let Some(arn) = adv.get(k).and_then(Value::as_str).and_then(|r| refs.get(r)) {
                adv.insert(k.into(), json!(arn));
            }
        }
    }
}

/// Put `ACCOUNT.dkr.ecr.REGION.amazonaws.com/repo:tag` into the sandbox's ECR; false when the
/// reference names another registry.
fn put_ecr_image(world: &mut World, image: &str, now: f64) -> bool {
    let host = world.ecr.registry_host();
    let Some(rest) = image.strip_prefix(&format!("{host}/")) else {
        return false;
    };
    let (repo, tag) = match rest.rsplit_once(':') {
        Some((r, t)) if !r.is_empty() && !t.is_empty() => (r, t),
        _ => (rest, "latest"),
    };
    world.ecr.put_image(repo, tag, now);
    true
}

/// Start the server on the current tokio runtime.
pub async fn start(opts: Options) -> Result<Sandbox, Error> {
    let wall = wall_now();
    let loaded = match &opts.state_file {
        Some(p) => load_state(p)?,
        None => None,
    };
    let (world, base) = match loaded {
        Some(w) => {
            let base = w.now.max(wall);
            (w, base)
        }
        None => {
            let mut w = World::new(&opts.region, opts.rng_seed, wall).in_account(&opts.account);
            if let Some(seed) = &opts.seed {
                apply_seed(&mut w, seed, wall)?;
            }
            (w, wall)
        }
    };
    let mut world = world;
    if opts.faults != Faults::default() {
        world.faults = opts.faults.clone();
    }
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", opts.port))
        .await
        .map_err(|e| {
            Error::msg(format!(
                "the sandbox cannot listen on 127.0.0.1:{}: {e}",
                opts.port
            ))
            .with_hint("pick another port with --port, or 0 for a free one")
        })?;
    let addr = listener
        .local_addr()
        .map_err(|e| Error::msg(format!("the sandbox has no local address: {e}")))?;
    let inner = Inner {
        initial: world.clone(),
        world,
        clock: Clock::new(base, opts.speed),
        log: Vec::new(),
        seq: 0,
        api_rng: Rng::new(opts.rng_seed ^ 0x5EED_FA17),
        throttle: (opts.throttle == Throttle::Aws).then(throttle::Buckets::default),
        wall_origin: std::time::Instant::now(),
        exec: exec::Sessions::new(format!("ws://{addr}")),
    };
    let shared = Arc::new(Shared {
        inner: Mutex::new(inner),
    });
    let router = axum::Router::new()
        .route(
            "/v1/data-channel/{id}",
            axum::routing::get(exec::data_channel),
        )
        .fallback(server::handle)
        .with_state(shared.clone());
    let (tx, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, router)
            .with_graceful_shutdown(async {
                let _ = rx.await;
            })
            .await;
    });
    Ok(Sandbox {
        endpoint: format!("http://{addr}"),
        shared,
        stop: Some(tx),
        task: Some(task),
        state_file: opts.state_file,
    })
}

/// Run in the foreground until SIGINT/SIGTERM, then save the state file when set.
pub async fn serve(opts: Options, prepare: Vec<Prepare>) -> Result<(), Error> {
    let region = opts.region.clone();
    let sandbox = start(opts).await?;
    for p in &prepare {
        for line in p.apply(&sandbox)? {
            eprintln!("sandbox: created {line}");
        }
    }
    serve_started(sandbox, &region).await
}

/// [`serve`] for a sandbox already started (and prepared): says where it listens, runs until
/// SIGINT/SIGTERM, then saves the state file when set.
pub async fn serve_started(sandbox: Sandbox, region: &str) -> Result<(), Error> {
    let ep = sandbox.endpoint();
    eprintln!("cortado sandbox listening on {ep}");
    eprintln!(
        "hint: export AWS_ENDPOINT_URL={ep} AWS_REGION={region} AWS_ACCESS_KEY_ID=sandbox AWS_SECRET_ACCESS_KEY=sandbox"
    );
    wait_for_signal().await;
    eprintln!("sandbox: shutting down");
    sandbox.shutdown().await
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// The listener ARN a listener rule ARN belongs to
/// (`...:listener-rule/app/LB/ID/LISTENER/RULE` -> `...:listener/app/LB/ID/LISTENER`).
fn listener_of_rule(rule_arn: &str) -> Option<String> {
    let (head, path) = rule_arn.split_once(":listener-rule/")?;
    let (listener, _rule) = path.rsplit_once('/')?;
    (path.split('/').count() == 5).then(|| format!("{head}:listener/{listener}"))
}
