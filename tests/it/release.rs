//! Releases: many services in one run, in order, under a failure policy. The real binary
//! against an in-process sandbox; the end state is read through the SDK and the request log.

use std::path::PathBuf;

use crate::common::{
    Prepare, Run, Sandbox, cortado_bin, ecs_client, finish, mutating, revision_of, sandbox,
    sandbox_env,
};
use serde_json::Value;

const CLUSTER: &str = "mono";
const REPO: &str = "123456789012.dkr.ecr.us-east-1.amazonaws.com/svc";
const SPEED: f64 = 100.0;

/// A monorepo of `n` services (`s01`..) without load balancers, 2 tasks each, written to a
/// folder of its own; each service's image tag comes from `TAG_sNN`.
struct Mono {
    sb: Sandbox,
    dir: PathBuf,
    n: usize,
    ecs: aws_sdk_ecs::Client,
}

fn name(i: usize) -> String {
    format!("s{:02}", i + 1)
}

impl Mono {
    async fn new(label: &str, n: usize) -> Mono {
        let sb = sandbox::start(sandbox::Options {
            speed: SPEED,
            rng_seed: 11,
            ..sandbox::Options::default()
        })
        .await
        .unwrap();
        Prepare {
            cluster: CLUSTER.into(),
            images: [
                "v1",
                "v2",
                "v2--pull-fail",
                "v1--exit-0-after-2s",
                "v1--exit-3-after-1s",
                "v1--slow-start-600s",
            ]
            .iter()
            .map(|t| format!("{REPO}:{t}"))
            .collect(),
            ..Default::default()
        }
        .apply(&sb)
        .unwrap();
        let dir =
            std::env::temp_dir().join(format!("cortado-release-{label}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        for i in 0..n {
            let d = dir.join("services").join(name(i));
            std::fs::create_dir_all(&d).unwrap();
            std::fs::write(
                d.join("cortado.yml"),
                format!(
                    "region: us-east-1\ncluster: {CLUSTER}\nservice: {}\nservice_definition: svc.json\ntask_definition: td.json\ntimeout: 2m\n",
                    name(i)
                ),
            )
            .unwrap();
            std::fs::write(
                d.join("svc.json"),
                r#"{"launchType": "FARGATE", "desiredCount": 2,
  "deploymentConfiguration": {"minimumHealthyPercent": 100, "maximumPercent": 200,
    "deploymentCircuitBreaker": {"enable": true, "rollback": true}},
  "networkConfiguration": {"awsvpcConfiguration": {"subnets": ["subnet-1"], "securityGroups": ["sg-1"]}}}
"#,
            )
            .unwrap();
            std::fs::write(
                d.join("td.json"),
                format!(
                    r#"{{"family": "{n}", "cpu": "256", "memory": "512", "networkMode": "awsvpc",
  "requiresCompatibilities": ["FARGATE"],
  "containerDefinitions": [{{"name": "app", "essential": true,
    "image": "{REPO}:{{{{ must_env `TAG_{n}` }}}}"}}]}}
"#,
                    n = name(i)
                ),
            )
            .unwrap();
        }
        let ecs = ecs_client(&sb.endpoint());
        Mono { sb, dir, n, ecs }
    }

    /// `cortado <args>` with every service on `tag` except those in `except`.
    async fn cortado(&self, tag: &str, except: &[(usize, &str)], args: &[&str]) -> Run {
        let mut cmd = tokio::process::Command::new(cortado_bin());
        cmd.env_clear()
            .current_dir(&self.dir)
            .args(["--output", "json"])
            .args(args)
            .envs(sandbox_env(&self.sb.endpoint()))
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true);
        for i in 0..self.n {
            let t = except
                .iter()
                .find(|(j, _)| *j == i)
                .map_or(tag, |(_, t)| *t);
            cmd.env(format!("TAG_{}", name(i)), t);
        }
        finish(cmd).await
    }

    /// All services created on v1, settled.
    async fn on_v1(&self) {
        let r = self
            .cortado(
                "v1",
                &[],
                &["deploy", "-c", "services/*/cortado.yml", "--parallel", "12"],
            )
            .await;
        r.expect_code(0);
    }

    /// Revision the service's PRIMARY deployment runs, once it has settled on one deployment.
    async fn revision(&self, i: usize) -> u32 {
        let svc = self
            .ecs
            .describe_services()
            .cluster(CLUSTER)
            .services(name(i))
            .send()
            .await
            .unwrap()
            .services()[0]
            .clone();
        revision_of(svc.task_definition().unwrap_or_default())
    }

    /// The PRIMARY deployment id of each service (empty when it does not exist): a service
    /// a run did not touch keeps its id.
    async fn primaries(&self) -> Vec<String> {
        let mut out = Vec::new();
        for i in 0..self.n {
            let d = self
                .ecs
                .describe_services()
                .cluster(CLUSTER)
                .services(name(i))
                .send()
                .await
                .unwrap();
            out.push(
                d.services()
                    .first()
                    .and_then(|s| {
                        s.deployments()
                            .iter()
                            .find(|d| d.status() == Some("PRIMARY"))
                    })
                    .and_then(|d| d.id())
                    .unwrap_or_default()
                    .to_string(),
            );
        }
        out
    }

    fn write(&self, file: &str, text: &str) -> PathBuf {
        let p = self.dir.join(file);
        std::fs::write(&p, text).unwrap();
        p
    }
}

impl Drop for Mono {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The run's `result` line.
fn result(run: &Run) -> Value {
    run.events_of("result")
        .first()
        .cloned()
        .unwrap_or_else(|| panic!("no result line:\n{}", run.dump()))
}

fn result_services(run: &Run) -> Vec<Value> {
    result(run)["services"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn status_of(run: &Run, service: &str) -> String {
    result_services(run)
        .iter()
        .find(|s| s["service"] == service)
        .map(|s| s["status"].as_str().unwrap_or_default().to_string())
        .unwrap_or_else(|| panic!("no result for {service}:\n{}", run.dump()))
}

/// The time of the first event of `run` that `pred` picks.
fn event_time(run: &Run, pred: &dyn Fn(&Value) -> bool) -> f64 {
    run.events()
        .iter()
        .find(|e| pred(e))
        .and_then(|e| e["time"].as_f64())
        .unwrap_or_else(|| panic!("event not found:\n{}", run.dump()))
}

fn mark(sb: &Sandbox) -> u64 {
    sb.control().requests().last().map_or(0, |r| r.seq)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_of_twelve_fails_and_only_it_rolls_back() {
    let m = Mono::new("default", 12).await;
    m.on_v1().await;
    let r = m
        .cortado(
            "v2",
            &[(4, "v2--pull-fail")],
            &["deploy", "-c", "services/*/cortado.yml", "--parallel", "12"],
        )
        .await;
    r.expect_code(3);
    assert_eq!(status_of(&r, "s05"), "rolled-back");
    assert_eq!(result(&r)["status"], "rolled-back");
    for i in (0..12).filter(|i| *i != 4) {
        assert_eq!(status_of(&r, &name(i)), "succeeded", "{}", name(i));
        assert_eq!(m.revision(i).await, 2, "{}", name(i));
    }
    assert_eq!(m.revision(4).await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollback_all_returns_every_changed_service() {
    let m = Mono::new("all", 12).await;
    m.on_v1().await;
    let r = m
        .cortado(
            "v2",
            &[(4, "v2--pull-fail")],
            &[
                "deploy",
                "-c",
                "services/*/cortado.yml",
                "--parallel",
                "12",
                "--on-failure",
                "rollback-all",
            ],
        )
        .await;
    r.expect_code(3);
    for i in 0..12 {
        assert_eq!(
            status_of(&r, &name(i)),
            "rolled-back",
            "{}:\n{}",
            name(i),
            r.dump()
        );
        assert_eq!(m.revision(i).await, 1, "{}", name(i));
    }
    let detail = result_services(&r)[0]["detail"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(detail.contains("s05 failed"), "{detail}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_starts_nothing_after_a_failure() {
    let m = Mono::new("stop", 12).await;
    m.on_v1().await;
    let before = m.primaries().await;
    let r = m
        .cortado(
            "v2",
            &[(1, "v2--pull-fail")],
            &[
                "deploy",
                "-c",
                "services/*/cortado.yml",
                "--parallel",
                "4",
                "--on-failure",
                "stop",
            ],
        )
        .await;
    r.expect_code(3);
    // Up to 4 in flight; once s02 failed nothing new started. A service that started was
    // deployed (s02's failed deployment rolled back by ECS, whose rollback makes the earlier
    // deployment PRIMARY again); every one that did not is untouched.
    let after = m.primaries().await;
    let mut skipped = Vec::new();
    for i in 0..12 {
        let status = status_of(&r, &name(i));
        if status == "skipped" {
            assert_eq!(before[i], after[i], "{}:\n{}", name(i), r.dump());
            assert_eq!(m.revision(i).await, 1);
            skipped.push(i);
        } else if i != 1 {
            assert_eq!(status, "succeeded", "{}", name(i));
            assert_ne!(before[i], after[i], "{}:\n{}", name(i), r.dump());
        }
    }
    assert_eq!(status_of(&r, "s02"), "rolled-back");
    assert!(skipped.len() >= 4, "{skipped:?}\n{}", r.dump());
    let skipped = &result_services(&r)[skipped[0]];
    assert!(
        skipped["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("s02 failed"),
        "{skipped}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_config_among_twelve_stops_everything_before_any_write() {
    let m = Mono::new("bad", 12).await;
    let bad = m.dir.join("services/s07/td.json");
    let text = std::fs::read_to_string(&bad)
        .unwrap()
        .replace("\"256\"", "\"lots\"");
    std::fs::write(&bad, text).unwrap();
    let bad2 = m.dir.join("services/s11/cortado.yml");
    let text = std::fs::read_to_string(&bad2)
        .unwrap()
        .replace("timeout: 2m", "timeout: soon");
    std::fs::write(&bad2, text).unwrap();
    let before = mark(&m.sb);
    let r = m
        .cortado("v1", &[], &["deploy", "-c", "services/*/cortado.yml"])
        .await;
    r.expect_code(1);
    let reqs: Vec<_> =
        m.sb.control()
            .requests()
            .into_iter()
            .filter(|q| q.seq > before)
            .collect();
    assert_eq!(mutating(&reqs), Vec::<String>::new());
    // Every finding of every config is listed.
    assert!(
        r.stderr.contains("s07") && r.stderr.contains("td.json"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains("s11") && r.stderr.contains("cortado.yml"),
        "{}",
        r.stderr
    );
}

/// A release file: a one-off task first, then a chain; a step waits for what it names.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn release_file_order_is_honoured_and_a_failed_task_skips_its_dependents() {
    let m = Mono::new("order", 4).await;
    let release = |migrate_tag: &str| {
        format!(
            "steps:\n\
             - name: migrate\n  config: services/s01/cortado.yml\n  run: {{command: [./migrate]}}\n\
             - config: services/s02/cortado.yml\n  after: [migrate]\n\
             - config: services/s03/cortado.yml\n  after: [s02]\n\
             - config: services/s04/cortado.yml\n\
             # migrate's image: {migrate_tag}\n"
        )
    };
    let file = m.write("release.yml", &release("ok"));
    let path = file.to_string_lossy().to_string();
    let r = m
        .cortado(
            "v1",
            &[(0, "v1--exit-0-after-2s")],
            &["deploy", "--release", &path],
        )
        .await;
    r.expect_code(0);
    let time_of = |pred: &dyn Fn(&Value) -> bool| event_time(&r, pred);
    let task_done = time_of(&|e| e["event"] == "task_status" && e["last_status"] == "STOPPED");
    let s02_started = time_of(&|e| e["event"] == "deployment_started" && e["service"] == "s02");
    let s02_verdict = time_of(&|e| e["event"] == "verdict" && e["service"] == "s02");
    let s03_started = time_of(&|e| e["event"] == "deployment_started" && e["service"] == "s03");
    let s04_started = time_of(&|e| e["event"] == "deployment_started" && e["service"] == "s04");
    assert!(task_done <= s02_started, "{task_done} {s02_started}");
    assert!(s02_verdict <= s03_started, "{s02_verdict} {s03_started}");
    // s04 waits for nothing: it starts with the first wave, before s02.
    assert!(s04_started <= s02_started, "{s04_started} {s02_started}");
    assert_eq!(status_of(&r, "migrate"), "succeeded");

    // The migration fails (exit 3): s02 and s03 never start, s04 (independent) deploys.
    let before = m.primaries().await;
    let r = m
        .cortado(
            "v2",
            &[(0, "v1--exit-3-after-1s")],
            &["deploy", "--release", &path],
        )
        .await;
    r.expect_code(4);
    assert_eq!(status_of(&r, "migrate"), "failed");
    assert_eq!(status_of(&r, "s02"), "skipped");
    assert_eq!(status_of(&r, "s03"), "skipped");
    assert_eq!(status_of(&r, "s04"), "succeeded");
    let after = m.primaries().await;
    assert_eq!(
        (
            before[1] == after[1],
            before[2] == after[2],
            before[3] == after[3]
        ),
        (true, true, false)
    );
}

/// The README's monorepo example, as a user runs it: one command on the embedded sandbox.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_monorepo_example_deploys_in_order_on_the_embedded_sandbox() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut cmd = tokio::process::Command::new(cortado_bin());
    cmd.env_clear()
        .current_dir(root)
        .args([
            "deploy",
            "--sandbox",
            "--sandbox-speed",
            "200",
            "--output",
            "json",
        ])
        .args(["--release", "examples/monorepo/cortado-release.yml"])
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    let r = finish(cmd).await;
    r.expect_code(0);
    let services = result_services(&r);
    let names: Vec<&str> = services
        .iter()
        .filter_map(|s| s["service"].as_str())
        .collect();
    assert_eq!(
        names,
        [
            "migrate", "api", "web", "admin", "images", "mail", "reports"
        ]
    );
    assert!(
        services.iter().all(|s| s["status"] == "succeeded"),
        "{}",
        r.dump()
    );
    let time_of = |pred: &dyn Fn(&Value) -> bool| event_time(&r, pred);
    let started =
        |s: &'static str| move |e: &Value| e["event"] == "deployment_started" && e["service"] == s;
    let migrated = time_of(&|e| e["event"] == "task_status" && e["last_status"] == "STOPPED");
    let api_verdict = time_of(&|e| e["event"] == "verdict" && e["service"] == "api");
    assert!(migrated <= time_of(&started("api")));
    assert!(api_verdict <= time_of(&started("web")));
    assert!(api_verdict <= time_of(&started("admin")));
    // The workers wait for nothing: they start beside the migration, before the api.
    assert!(time_of(&started("mail")) <= time_of(&started("api")));
}

/// The release is a pool, not waves: a step starts as soon as what it waits for succeeded,
/// while an unrelated slow step started beside it is still rolling out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dependent_starts_without_waiting_for_an_unrelated_slow_step() {
    let m = Mono::new("pool", 3).await;
    let file = m.write(
        "release.yml",
        "steps:\n- config: services/s01/cortado.yml\n- config: services/s02/cortado.yml\n- config: services/s03/cortado.yml\n  after: [s02]\n",
    );
    let path = file.to_string_lossy().to_string();
    // s01 takes 10 more minutes of ECS time to start its tasks (6 s here).
    let r = m
        .cortado(
            "v1",
            &[(0, "v1--slow-start-600s")],
            &["deploy", "--release", &path, "--parallel", "2"],
        )
        .await;
    r.expect_code(0);
    let time_of = |pred: &dyn Fn(&Value) -> bool| event_time(&r, pred);
    let s01_verdict = time_of(&|e| e["event"] == "verdict" && e["service"] == "s01");
    let s02_verdict = time_of(&|e| e["event"] == "verdict" && e["service"] == "s02");
    let s03_started = time_of(&|e| e["event"] == "deployment_started" && e["service"] == "s03");
    assert!(s02_verdict <= s03_started, "{s02_verdict} {s03_started}");
    assert!(
        s03_started < s01_verdict,
        "s03 waited for s01: {s03_started} {s01_verdict}"
    );
}
