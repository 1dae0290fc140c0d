//! The scenario harness shared by the integration tests (`tests/it/`) and the fault and
//! incident matrices (`tests/fault_matrix.rs`, `tests/incident_matrix.rs`): the real
//! `cortado` binary against an in-process sandbox, the SDK to look at what it left behind,
//! and the small helpers several tests need (the binary, its environment, an ECS client, a
//! fake HTTP API).
//!
//! Assertion helpers panic (the tests want that); the matrices run each scenario in a task of
//! their own and count a panic as a wrong run.

#![allow(dead_code)]

pub mod matrix;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use aws_sdk_ecs::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_ecs::types::Service;
#[allow(unused_imports)]
pub use cortado_sandbox::{
    self as sandbox, ApiFaults, FailRule, FaultsPatch, Prepare, PrepareCodeDeploy, RequestRecord,
    Sandbox,
};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};

pub const REPO: &str = "123456789012.dkr.ecr.us-east-1.amazonaws.com/web";
pub const TARGET_GROUP: &str =
    "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/web/0123456789abcdef";
pub const CLUSTER: &str = "scenarios";
pub const SERVICE: &str = "web";
/// The execution role the fixtures' task definitions name (the sandbox creates it trusting
/// ecs-tasks.amazonaws.com, as `--prepare` does).
pub const EXECUTION_ROLE: &str = "arn:aws:iam::123456789012:role/web-execution";
/// Virtual seconds per real second for most scenarios: a rolling deploy takes ~1 s of ECS
/// time per 200, so the real-time poll cadence (1 s) dominates.
pub const FAST: f64 = 200.0;

/// The cortado binary the tests run: `CORTADO_BIN`, else the one cargo built for them.
pub fn cortado_bin() -> std::ffi::OsString {
    std::env::var_os("CORTADO_BIN").unwrap_or_else(|| env!("CARGO_BIN_EXE_cortado").into())
}

/// The environment of a cortado run against the sandbox at `endpoint` (after `env_clear()`):
/// test credentials, the region, and no instance metadata lookups.
pub fn sandbox_env(endpoint: &str) -> [(&'static str, String); 5] {
    [
        ("AWS_ENDPOINT_URL", endpoint.to_string()),
        ("AWS_ACCESS_KEY_ID", "AKIDTEST".into()),
        ("AWS_SECRET_ACCESS_KEY", "secret".into()),
        ("AWS_REGION", "us-east-1".into()),
        ("AWS_EC2_METADATA_DISABLED", "true".into()),
    ]
}

/// An ECS client of the sandbox at `endpoint`, with the test credentials.
pub fn ecs_client(endpoint: &str) -> aws_sdk_ecs::Client {
    aws_sdk_ecs::Client::from_conf(
        aws_sdk_ecs::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .credentials_provider(Credentials::new("AKIDTEST", "secret", None, None, "t"))
            .endpoint_url(endpoint)
            .build(),
    )
}

/// Serves `app` on 127.0.0.1 at a free port (a fake API of a test); returns its base URL.
pub async fn serve_http(app: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    format!("http://{addr}")
}

/// A container's (or an override's) environment as (name, value) pairs.
pub fn env_pairs(env: &[aws_sdk_ecs::types::KeyValuePair]) -> Vec<(String, String)> {
    env.iter()
        .map(|e| {
            (
                e.name().unwrap_or_default().to_string(),
                e.value().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/deploy")
        .join(name)
}

/// One scenario's world: a sandbox, a config folder, and an SDK client to look at the result.
pub struct Scenario {
    pub sb: Sandbox,
    pub config: PathBuf,
    pub ecs: aws_sdk_ecs::Client,
    /// Extra environment of every cortado run (e.g. STRATEGY for `web-bg`).
    pub env: Vec<(String, String)>,
}

/// What one run of the binary left behind.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    pub took: Duration,
}

impl Run {
    /// Every JSON line of stdout (events and the final result).
    pub fn events(&self) -> Vec<Value> {
        self.stdout
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .collect()
    }

    pub fn events_of(&self, kind: &str) -> Vec<Value> {
        self.events()
            .into_iter()
            .filter(|e| e["event"] == kind)
            .collect()
    }

    /// The service entry of the final `result` event.
    pub fn result(&self) -> Value {
        self.events_of("result")
            .first()
            .and_then(|r| r["services"].get(0).cloned())
            .unwrap_or_else(|| panic!("no result event in the output\n{}", self.dump()))
    }

    pub fn dump(&self) -> String {
        format!(
            "exit {} after {:?}\n--- stdout\n{}\n--- stderr\n{}",
            self.code, self.took, self.stdout, self.stderr
        )
    }

    #[track_caller]
    pub fn expect_code(&self, code: i32) -> &Self {
        if std::env::var_os("SCENARIO_DUMP").is_some() {
            eprintln!("{}", self.dump());
        }
        assert_eq!(self.code, code, "unexpected exit code\n{}", self.dump());
        self
    }
}

impl Scenario {
    /// A sandbox at `speed` with the cluster, target group and ECR images `web:<tag>` for
    /// each tag in `images`.
    pub async fn new(config: &str, speed: f64, images: &[&str]) -> Scenario {
        Scenario::with_seed(config, speed, images, 7).await
    }

    /// [`Scenario::new`] with another seed for the sandbox's PRNG (timings, fault draws).
    pub async fn with_seed(config: &str, speed: f64, images: &[&str], seed: u64) -> Scenario {
        let sb = sandbox::start(sandbox::Options {
            speed,
            rng_seed: seed,
            ..sandbox::Options::default()
        })
        .await
        .unwrap();
        Prepare {
            cluster: CLUSTER.into(),
            service: Some(SERVICE.into()),
            target_groups: vec![TARGET_GROUP.into()],
            images: images.iter().map(|t| format!("{REPO}:{t}")).collect(),
            blue_green: Vec::new(),
            roles: vec![EXECUTION_ROLE.into()],
            ..Default::default()
        }
        .apply(&sb)
        .unwrap();
        let ecs = ecs_client(&sb.endpoint());
        Scenario {
            sb,
            config: fixture(config).join("cortado.yml"),
            ecs,
            env: Vec::new(),
        }
    }

    /// The `web-bg` fixture under `strategy` (BLUE_GREEN, CANARY or LINEAR): the sandbox also
    /// has the alternate target group and the production (:80) and test (:8080) listener
    /// rules the service definition names.
    pub async fn blue_green(strategy: &str, speed: f64, images: &[&str]) -> Scenario {
        Scenario::blue_green_seeded(strategy, speed, images, 7).await
    }

    /// [`Scenario::blue_green`] with another seed for the sandbox's PRNG.
    pub async fn blue_green_seeded(
        strategy: &str,
        speed: f64,
        images: &[&str],
        seed: u64,
    ) -> Scenario {
        let mut s = Scenario::with_seed("web-bg", speed, &[], seed).await;
        let svc: Value = serde_json::from_str(
            &std::fs::read_to_string(fixture("web-bg").join("ecs-service-def.json"))
                .unwrap()
                .lines()
                .filter(|l| !l.contains("{{"))
                .collect::<Vec<_>>()
                .join("\n"),
        )
        .unwrap();
        let adv = &svc["loadBalancers"][0]["advancedConfiguration"];
        Prepare {
            cluster: CLUSTER.into(),
            service: Some(SERVICE.into()),
            target_groups: vec![TARGET_GROUP.into()],
            images: images.iter().map(|t| format!("{REPO}:{t}")).collect(),
            blue_green: vec![sandbox::PrepareBlueGreen {
                target_group: TARGET_GROUP.into(),
                alternate_target_group: adv["alternateTargetGroupArn"].as_str().unwrap().into(),
                production_listener_rule: adv["productionListenerRule"].as_str().map(Into::into),
                test_listener_rule: adv["testListenerRule"].as_str().map(Into::into),
            }],
            ..Default::default()
        }
        .apply(&s.sb)
        .unwrap();
        s.env.push(("STRATEGY".into(), strategy.into()));
        s
    }

    /// The `web-cd` fixture (an ecspresso config with `codedeploy:` and `appspec:`): a
    /// CODE_DEPLOY service whose CodeDeploy application `web-app` and deployment group
    /// `web-dg` exist, with a second target group and listeners :80 and :8080.
    pub async fn codedeploy(
        speed: f64,
        images: &[&str],
        termination_wait_minutes: i32,
    ) -> Scenario {
        Scenario::codedeploy_with(speed, images, termination_wait_minutes, None).await
    }

    /// [`Scenario::codedeploy`] whose group waits for ContinueDeployment before moving
    /// traffic (`deploymentReadyOption` STOP_DEPLOYMENT) when `ready_wait_minutes` is set.
    pub async fn codedeploy_with(
        speed: f64,
        images: &[&str],
        termination_wait_minutes: i32,
        ready_wait_minutes: Option<i32>,
    ) -> Scenario {
        Scenario::codedeploy_seeded(
            speed,
            images,
            7,
            termination_wait_minutes,
            ready_wait_minutes,
        )
        .await
    }

    /// [`Scenario::codedeploy_with`] with another seed for the sandbox's PRNG.
    pub async fn codedeploy_seeded(
        speed: f64,
        images: &[&str],
        seed: u64,
        termination_wait_minutes: i32,
        ready_wait_minutes: Option<i32>,
    ) -> Scenario {
        let mut s = Scenario::with_seed("web-cd", speed, images, seed).await;
        Prepare {
            cluster: CLUSTER.into(),
            service: Some(SERVICE.into()),
            codedeploy: Some(PrepareCodeDeploy {
                application: "web-app".into(),
                group: "web-dg".into(),
                target_group: TARGET_GROUP.into(),
                alternate_target_group: None,
                termination_wait_minutes,
                ready_wait_minutes,
            }),
            ..Default::default()
        }
        .apply(&s.sb)
        .unwrap();
        s.config = fixture("web-cd").join("ecspresso.yml");
        s
    }

    /// Another actor forces a new deployment of the service (UpdateService through the SDK).
    pub async fn other_actor_deploys(
        &self,
    ) -> Result<
        aws_sdk_ecs::operation::update_service::UpdateServiceOutput,
        aws_sdk_ecs::error::SdkError<aws_sdk_ecs::operation::update_service::UpdateServiceError>,
    > {
        self.ecs
            .update_service()
            .cluster(CLUSTER)
            .service(SERVICE)
            .force_new_deployment(true)
            .send()
            .await
    }

    /// Puts (or overwrites) the SecureString parameter `name` in the sandbox's SSM.
    pub async fn put_secure_parameter(&self, name: &str, value: &str) {
        aws_sdk_ssm::Client::new(&self.sdk())
            .put_parameter()
            .name(name)
            .value(value)
            .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
            .overwrite(true)
            .send()
            .await
            .unwrap();
    }

    /// A CodeDeploy client on this scenario's sandbox.
    pub fn codedeploy_client(&self) -> aws_sdk_codedeploy::Client {
        aws_sdk_codedeploy::Client::new(&self.sdk())
    }

    pub fn command(&self, tag: &str, args: &[&str]) -> tokio::process::Command {
        self.command_with(&self.config, tag, args)
    }

    pub fn command_with(&self, config: &Path, tag: &str, args: &[&str]) -> tokio::process::Command {
        // CORTADO_BIN runs another build (e.g. a copy, while cargo rebuilds this one).
        let mut cmd = tokio::process::Command::new(cortado_bin());
        cmd.env_clear()
            .arg("--config")
            .arg(config)
            .args(["--output", "json"])
            .args(args)
            .envs(sandbox_env(&self.sb.endpoint()))
            .env("TAG", tag)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        if let Some(path) = std::env::var_os("PATH") {
            cmd.env("PATH", path);
        }
        cmd
    }

    /// Runs `cortado <args>` with `TAG=tag` to its end (bounded: 60 s).
    pub async fn cortado(&self, tag: &str, args: &[&str]) -> Run {
        finish(self.command(tag, args)).await
    }

    pub async fn deploy(&self, tag: &str, extra: &[&str]) -> Run {
        let mut args = vec!["deploy"];
        args.extend_from_slice(extra);
        self.cortado(tag, &args).await
    }

    /// The SDK configuration of this scenario's sandbox: `aws_sdk_ssm::Client::new(&s.sdk())`
    /// and the like, for a look at what cortado left behind.
    pub fn sdk(&self) -> aws_config::SdkConfig {
        aws_config::SdkConfig::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .credentials_provider(
                aws_credential_types::provider::SharedCredentialsProvider::new(Credentials::new(
                    "AKIDTEST", "secret", None, None, "t",
                )),
            )
            .endpoint_url(self.sb.endpoint())
            .build()
    }

    /// Every rollback call cortado could make is refused from now on (AccessDenied on the
    /// next 3 StopServiceDeployment and UpdateService calls).
    pub fn refuse_rollbacks(&self) {
        let deny = |op: &str| FailRule {
            operation: op.into(),
            code: "AccessDeniedException".into(),
            status: Some(400),
            message: Some("not authorized to perform this operation".into()),
            count: 3,
        };
        self.sb.control().update_faults(FaultsPatch {
            fail_next: Some(vec![deny("StopServiceDeployment"), deny("UpdateService")]),
            ..FaultsPatch::default()
        });
    }

    /// The service as DescribeServices shows it.
    pub async fn service(&self) -> Service {
        let out = self
            .ecs
            .describe_services()
            .cluster(CLUSTER)
            .services(SERVICE)
            .send()
            .await
            .unwrap();
        out.services().first().cloned().expect("the service exists")
    }

    /// Asserts the service settled: one deployment, on `revision`, `running` tasks.
    #[track_caller]
    /// The deployments of a service in one line each: status, revision, running/desired,
    /// rollout state.
    pub fn shape(svc: &Service) -> Vec<String> {
        svc.deployments()
            .iter()
            .map(|d| {
                format!(
                    "{} {} {}/{} {:?}",
                    d.status().unwrap_or_default(),
                    revision_of(d.task_definition().unwrap_or_default()),
                    d.running_count(),
                    d.desired_count(),
                    d.rollout_state()
                )
            })
            .collect()
    }

    pub fn assert_settled(svc: &Service, revision: u32, running: i32) {
        let ds = svc.deployments();
        let shape = Self::shape(svc);
        assert_eq!(
            revision_of(svc.task_definition().unwrap_or_default()),
            revision,
            "service revision; deployments: {shape:?}"
        );
        assert_eq!(ds.len(), 1, "one deployment left: {shape:?}");
        assert_eq!(svc.running_count(), running, "running tasks: {shape:?}");
    }

    /// After a rollback cortado exits once the earlier revision serves alone: `revision` is
    /// PRIMARY with `running` tasks, every other deployment has stopped its tasks (ECS may
    /// still list it while targets drain). Then, with the sandbox's clock moved on, ECS
    /// finishes on its own: one deployment left.
    pub async fn assert_rolled_back_to(&self, revision: u32, running: i32) {
        let svc = self.service().await;
        let ds = svc.deployments();
        let shape = Self::shape(&svc);
        assert_eq!(
            revision_of(svc.task_definition().unwrap_or_default()),
            revision,
            "service revision; deployments: {shape:?}"
        );
        let primary = ds
            .iter()
            .find(|d| d.status() == Some("PRIMARY"))
            .unwrap_or_else(|| panic!("no PRIMARY: {shape:?}"));
        assert_eq!(primary.running_count(), running, "{shape:?}");
        assert!(
            ds.iter()
                .filter(|d| d.status() != Some("PRIMARY"))
                .all(|d| d.running_count() == 0 || d.desired_count() == 0),
            "the failed deployment still runs tasks: {shape:?}"
        );
        self.sb.control().advance(900.0);
        let mut settled = self.service().await;
        for _ in 0..50 {
            if settled.deployments().len() == 1 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
            settled = self.service().await;
        }
        Self::assert_settled(&settled, revision, running);
    }

    /// The request log's newest sequence number (0 when empty).
    pub fn mark(&self) -> u64 {
        self.sb
            .control()
            .requests()
            .last()
            .map(|r| r.seq)
            .unwrap_or(0)
    }

    pub fn requests_after(&self, mark: u64) -> Vec<RequestRecord> {
        self.sb
            .control()
            .requests()
            .into_iter()
            .filter(|r| r.seq > mark)
            .collect()
    }

    /// Jumps virtual time forward (+200 s per real second) until the handle is aborted: a
    /// slow sandbox gets through the uninteresting part of a scenario quickly.
    pub fn accelerate(&self) -> tokio::task::JoinHandle<()> {
        let control = self.sb.control();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(20)).await;
                control.advance(4.0);
            }
        })
    }

    /// Deploys v1 (creates the service) then v2: the service settles on revision 2.
    pub async fn on_v2(&self) {
        self.deploy("v1", &[]).await.expect_code(0);
        self.deploy("v2", &[]).await.expect_code(0);
        Self::assert_settled(&self.service().await, 2, 2);
    }

    /// Starts `cortado` in the background and returns once it has started its deployment.
    pub async fn start_background(&self, tag: &str, args: &[&str]) -> Background {
        let t0 = Instant::now();
        let mut child = self.command(tag, args).spawn().unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let mut seen = String::new();
        let started = tokio::time::timeout(Duration::from_secs(20), async {
            while let Some(line) = lines.next_line().await.unwrap() {
                seen.push_str(&line);
                seen.push('\n');
                if line.contains("\"event\":\"deployment_started\"") {
                    return true;
                }
            }
            false
        })
        .await;
        assert_eq!(started, Ok(true), "the deployment did not start:\n{seen}");
        Background {
            child,
            lines,
            seen,
            t0,
        }
    }
}

/// A cortado process running in the background.
pub struct Background {
    pub child: tokio::process::Child,
    pub lines: tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
    pub seen: String,
    /// When the process was spawned: `Run::took` covers the whole run.
    t0: Instant,
}

impl Background {
    /// Reads its output until an event of `kind` (bounded by `within`).
    pub async fn wait_for(&mut self, kind: &str, within: Duration) {
        let needle = format!("\"event\":\"{kind}\"");
        let found = tokio::time::timeout(within, async {
            while let Ok(Some(line)) = self.lines.next_line().await {
                self.seen.push_str(&line);
                self.seen.push('\n');
                if line.contains(&needle) {
                    return true;
                }
            }
            false
        })
        .await;
        assert_eq!(found, Ok(true), "no {kind} event:\n{}", self.seen);
    }

    /// Reads the rest of its output and waits for it to end (bounded by `within`).
    pub async fn finish(mut self, within: Duration) -> Run {
        let mut stderr = self.child.stderr.take().unwrap();
        let read = async {
            while let Ok(Some(line)) = self.lines.next_line().await {
                self.seen.push_str(&line);
                self.seen.push('\n');
            }
            let mut err = String::new();
            let _ = tokio::io::AsyncReadExt::read_to_string(&mut stderr, &mut err).await;
            let status = self.child.wait().await.unwrap();
            (status, err)
        };
        let (status, stderr) = tokio::time::timeout(within, read)
            .await
            .unwrap_or_else(|_| panic!("cortado did not end within {within:?}:\n{}", self.seen));
        Run {
            code: status.code().unwrap_or(-1),
            stdout: self.seen,
            stderr,
            took: self.t0.elapsed(),
        }
    }
}

pub async fn finish(mut cmd: tokio::process::Command) -> Run {
    let t0 = Instant::now();
    let out = tokio::time::timeout(Duration::from_secs(60), cmd.output())
        .await
        .expect("cortado ends within 60 s")
        .unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        took: t0.elapsed(),
    }
}

/// The revision number of a task definition ARN (`...:task-definition/web:3` -> 3).
pub fn revision_of(arn: &str) -> u32 {
    arn.rsplit(':')
        .next()
        .and_then(|r| r.parse().ok())
        .unwrap_or(0)
}

pub fn mutating(reqs: &[RequestRecord]) -> Vec<String> {
    reqs.iter()
        .filter(|r| r.mutating)
        .map(|r| r.operation.clone())
        .collect()
}

/// The production share of the new revision in each `traffic` event, in order.
pub fn production_steps(run: &Run) -> Vec<i64> {
    let mut steps: Vec<i64> = run
        .events_of("traffic")
        .iter()
        .filter_map(|e| e["production_green"].as_i64())
        .collect();
    steps.dedup();
    steps
}

/// The lifecycle stages of the `stage` events, in order.
pub fn stages(run: &Run) -> Vec<String> {
    run.events_of("stage")
        .iter()
        .filter_map(|e| e["stage"].as_str().map(str::to_string))
        .collect()
}

/// The actions of the ContinueServiceDeployment calls after `mark`, from the request log.
pub fn continue_calls(s: &Scenario, mark: u64) -> usize {
    s.requests_after(mark)
        .iter()
        .filter(|r| r.operation == "ContinueServiceDeployment")
        .count()
}
