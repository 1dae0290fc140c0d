//! Benchmark program for the deploy engine: runs the real `cortado` binary against an
//! in-process sandbox and prints figures against the goals of the deploy-engine issue. It
//! never asserts timings; it prints them.
//!
//! Run (the bench needs the release binary next to it):
//!
//! ```text
//! cargo build --release && cargo bench --bench deploy_engine
//! ```
//!
//! Knobs (environment): `CORTADO_BENCH_SPEED` (sandbox time compression, default 30),
//! `CORTADO_BENCH_N` (deploys for the latency figure, default 20), `CORTADO_BENCH_REALTIME=1`
//! (add one deploy at speed 1, about 2 minutes, for an uncompressed API-budget figure),
//! `CORTADO_BIN` (path of the cortado binary, instead of the one next to the bench),
//! `CORTADO_BENCH_BROKEN_REPS` (runs per shape and mode in phase 3, default 3),
//! `CORTADO_BENCH_BG_REPS` (blue/green deploys in phase 4, default 3), `CORTADO_BENCH_BG_SPEED`
//! (the sandbox speed of phase 4, default 60), `CORTADO_BENCH_BG_TRACE=1` (print each measured
//! blue/green run as a timeline of calls, events and probe sightings on stderr),
//! `CORTADO_BENCH_ONLY=single,batch,broken,bluegreen,realtime` (run only those phases).
//!
//! Setting: cluster `bench`, Fargate services behind an ALB target group (health check every
//! 10 s, 2 passes to healthy, deregistration delay 30 s), grace period 30 s, circuit breaker
//! with rollback on. Sandbox task timings are its defaults (provisioning 6-12 s, pull and
//! start 12-24 s, stop 4-10 s), all in ECS time, compressed by the speed.
//!
//! Figures:
//!
//! 1. **Verdict latency**: wall time from the moment the sandbox marks our deployment
//!    COMPLETED (or FAILED) to the `time` of cortado's `verdict` event. The bench polls the
//!    sandbox state in-process every 10 ms, so the figure has about 10 ms resolution.
//!    Goal: p50 <= 1 s, p99 <= 2 s.
//! 2. **DescribeServices per service-minute**: DescribeServices calls in the sandbox's request
//!    log from the deploy's UpdateService to cortado's exit, divided by the wall minutes of
//!    that window times the services deployed. cortado polls on a wall-clock cadence, so wall
//!    minutes are the right unit; but a compressed sandbox makes quiet phases short, so the
//!    figure at speed > 1 leans to the fast cadence (the speed-1 run says what AWS would see).
//!    Measured for one service per run and for 12 services in one run (`-c` repeated; the
//!    run deploys them one after another, so the per-window figure is the one to read). Also
//!    printed: calls per operation, and the gaps between DescribeServices calls (the
//!    watcher's cadence). Goal: <= 30.
//! 3. **Broken image to old revision serving**: wall time from cortado's `deployment_started`
//!    for an image whose container crashes 10 s after start, to the previous task definition
//!    serving alone (its PRIMARY deployment's tasks all running and ELB-healthy, every other
//!    task stopped or draining), and from there to cortado's exit (goal: at most 10 s). Once with
//!    fast-fail on (default), once with `rollout: {fast_fail: false}` (only the ECS circuit
//!    breaker), three times each, for a small service (desired 2, maximumPercent 200: breaker
//!    threshold 3) and a larger one rolling 2 tasks at a time (desired 10, maximumPercent 120:
//!    breaker threshold 5). Also shown in ECS time (wall x speed), with when the verdict came
//!    relative to the 3rd failed task (its stop start, when stoppedReason is set and the ECS
//!    breaker counts it, and its lastStatus STOPPED).
//! 4. **Blue/green through a verification gate**: the scenario tests' `web-bg` fixture
//!    (BLUE_GREEN, desired 2, 2-minute bake, a PAUSE hook at POST_TEST_TRAFFIC_SHIFT answered
//!    by the gate `./gate.sh`), at speed 60 so that stages and the gate last long enough to
//!    be seen. Each run has a sandbox of its own: v1 creates the service, then the v2 deploy
//!    is measured while the bench asks the sandbox DescribeServiceDeployments every 20 ms
//!    (in-process, so its calls stay out of the request log): (1) our PAUSE hook first seen
//!    AWAITING_ACTION -> cortado's `gate_started`; (2) the gate's exit (`gate_started` plus
//!    its `duration_secs`; `gate_finished` is emitted only once the answer returned) ->
//!    ContinueServiceDeployment in the request log; (3) our service deployment first seen
//!    SUCCESSFUL -> cortado's `verdict`; plus the whole deploy's time, cortado's calls by
//!    operation and the gaps between its DescribeServiceDeployments calls. (1) and (3) are
//!    also split at cortado's first DescribeServiceDeployments answered after the event (by
//!    the sandbox's virtual time): waiting for a poll, then acting on it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

mod common;

use common::{Res, Running, env_f64, locate_binary, or_exit, runtime, sandbox_env, tail, wall};
use cortado_sandbox::{self as sandbox, Control, Options, Prepare, PrepareBlueGreen, Sandbox};
use cortado_sandbox::{DEREGISTRATION_DELAY, HealthCheck};
use serde_json::{Value, json};

const CLUSTER: &str = "bench";
const REGISTRY: &str = "123456789012.dkr.ecr.us-east-1.amazonaws.com";
const REPO: &str = "bench";
const BROKEN_TAG: &str = "v3--crash-10s";
const POLL: Duration = Duration::from_millis(10);
/// The blue/green phase runs the scenario tests' `web-bg` fixture as it is (its gate
/// `./gate.sh` passes unless TAG says otherwise), with the names it uses.
const BG_FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/deploy/web-bg");
const BG_CLUSTER: &str = "scenarios";
const BG_SERVICE: &str = "web";
const BG_REPO: &str = "123456789012.dkr.ecr.us-east-1.amazonaws.com/web";
/// How often the blue/green phase asks the sandbox DescribeServiceDeployments.
const BG_PROBE: Duration = Duration::from_millis(20);

fn main() {
    let speed = env_f64("CORTADO_BENCH_SPEED", 30.0);
    let n = env_f64("CORTADO_BENCH_N", 20.0).max(1.0) as usize;
    let realtime = std::env::var("CORTADO_BENCH_REALTIME").is_ok_and(|v| v == "1");
    let only = std::env::var("CORTADO_BENCH_ONLY").unwrap_or_default();
    let wanted = |phase: &str| only.is_empty() || only.split(',').any(|p| p.trim() == phase);
    let bin = or_exit(locate_binary());
    let rt = or_exit(runtime());
    let dir = std::env::temp_dir().join(format!("cortado-bench-deploy-{}", std::process::id()));
    if let Err(e) = std::fs::create_dir_all(&dir) {
        eprintln!("error: cannot create {}: {e}", dir.display());
        std::process::exit(2);
    }
    let bench = Bench {
        bin,
        dir: dir.clone(),
        rt,
    };
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    eprintln!(
        "deploy_engine bench: binary {}, speed x{speed}, N={n}, {cores} cores; this takes a few minutes",
        bench.bin.display()
    );
    let started = Instant::now();
    let single = if wanted("single") {
        bench.phase_single(speed, n)
    } else {
        skipped()
    };
    let batch = if wanted("batch") {
        bench.phase_batch(speed, 12)
    } else {
        skipped()
    };
    let broken = if wanted("broken") {
        bench.phase_broken(
            speed,
            env_f64("CORTADO_BENCH_BROKEN_REPS", 3.0).max(1.0) as usize,
        )
    } else {
        skipped()
    };
    let bg_speed = env_f64("CORTADO_BENCH_BG_SPEED", 60.0);
    let bluegreen = if wanted("bluegreen") {
        bench.phase_bluegreen(
            bg_speed,
            env_f64("CORTADO_BENCH_BG_REPS", 3.0).max(1.0) as usize,
        )
    } else {
        skipped()
    };
    let real =
        (realtime || (!only.is_empty() && wanted("realtime"))).then(|| bench.phase_single(1.0, 1));
    let total = started.elapsed();

    println!();
    println!(
        "cortado deploy engine — {cores} cores, sandbox speed x{speed}, N={n}, total bench time {:.0} s",
        total.as_secs_f64()
    );
    println!("binary: {}", bench.bin.display());
    println!(
        "setting: Fargate service behind an ALB target group (check every 10 s, 2 to healthy, deregistration 30 s), grace 30 s, breaker+rollback on"
    );
    println!();
    print_single(&single, speed, "single service, desired 2");
    print_batch(&batch, speed);
    print_broken(&broken, speed);
    print_bluegreen(&bluegreen, bg_speed);
    if let Some(r) = &real {
        println!();
        print_single(r, 1.0, "REALTIME (speed 1), single service, desired 2");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

fn skipped<T>() -> Res<T> {
    Err("skipped (CORTADO_BENCH_ONLY)".to_string())
}

struct Bench {
    bin: PathBuf,
    dir: PathBuf,
    rt: tokio::runtime::Runtime,
}

/// A sandbox for one phase.
struct Env {
    sb: Sandbox,
    ctl: Control,
    speed: f64,
}

/// How a service under test is shaped.
#[derive(Clone, Copy)]
struct Shape {
    desired: u32,
    max_percent: u32,
}

const SMALL: Shape = Shape {
    desired: 2,
    max_percent: 200,
};
const LARGE: Shape = Shape {
    desired: 10,
    max_percent: 120,
};

/// What one cortado run did.
struct Run {
    /// Wall time cortado was started and exited.
    start: f64,
    end: f64,
    /// Sandbox speed.
    speed: f64,
    exit: Option<i32>,
    events: Vec<Value>,
    /// Deployment id -> (rolloutState, wall time first seen not IN_PROGRESS).
    finals: BTreeMap<String, (String, f64)>,
    /// Service key -> times the service settled: (wall, task definition, deployment id).
    settled: BTreeMap<String, Vec<(f64, String, String)>>,
    /// Deployment id -> wall times its failed tasks began stopping, and reached STOPPED.
    failed_stops: BTreeMap<String, (Vec<f64>, Vec<f64>)>,
    /// Service key -> times a revision began to serve alone (see `Seen::serving`).
    serving: BTreeMap<String, Vec<(f64, String, String)>>,
    /// Request log entries of the run: (wall, virtual, operation).
    requests: Vec<(f64, f64, String)>,
}

impl Run {
    fn events_of<'a>(&'a self, kind: &'a str) -> impl Iterator<Item = &'a Value> + 'a {
        self.events
            .iter()
            .filter(move |e| e.get("event").and_then(Value::as_str) == Some(kind))
    }

    fn event_for<'a>(&'a self, kind: &'a str, service: &str) -> Option<&'a Value> {
        self.events_of(kind)
            .find(|e| e.get("service").and_then(Value::as_str) == Some(service))
    }

    fn result_outcomes(&self) -> String {
        self.events_of("result")
            .flat_map(|r| {
                r.get("services")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default()
            })
            .map(|s| {
                format!(
                    "{}: {}",
                    s.get("service").and_then(Value::as_str).unwrap_or("?"),
                    s.get("outcome").and_then(Value::as_str).unwrap_or("?")
                )
            })
            .collect::<Vec<_>>()
            .join(", ")
    }
}

fn time_of(e: &Value) -> Option<f64> {
    e.get("time").and_then(Value::as_f64)
}

fn str_of<'a>(e: &'a Value, k: &str) -> Option<&'a str> {
    e.get(k).and_then(Value::as_str)
}

impl Bench {
    fn start_env(&self, speed: f64) -> Res<Env> {
        self.start_env_seeded(speed, Options::default().rng_seed)
    }

    /// A sandbox whose PRNG (task timings, IDs) starts from `seed`.
    fn start_env_seeded(&self, speed: f64, seed: u64) -> Res<Env> {
        let sb = self
            .rt
            .block_on(sandbox::start(Options {
                speed,
                rng_seed: seed,
                ..Options::default()
            }))
            .map_err(|e| format!("cannot start the sandbox: {e}"))?;
        let ctl = sb.control();
        Ok(Env { sb, ctl, speed })
    }

    /// Writes config, task and service definitions for `name`, and creates what they need in
    /// the sandbox (cluster, tuned target group, images). Returns the config path.
    fn add_service(&self, env: &Env, name: &str, shape: Shape, fast_fail: bool) -> Res<PathBuf> {
        let tg_arn = format!(
            "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/{name}/0123456789abcdef"
        );
        let task = format!(
            r#"{{
  "family": "{name}",
  "cpu": "256",
  "memory": "512",
  "networkMode": "awsvpc",
  "requiresCompatibilities": ["FARGATE"],
  "executionRoleArn": "arn:aws:iam::123456789012:role/bench-execution",
  "containerDefinitions": [
    {{
      "name": "web",
      "image": "{REGISTRY}/{REPO}:{{{{ env `IMAGE_TAG` `v1` }}}}",
      "essential": true,
      "portMappings": [{{ "containerPort": 8080, "protocol": "tcp" }}]
    }}
  ]
}}
"#
        );
        let service = format!(
            r#"{{
  "launchType": "FARGATE",
  "desiredCount": {desired},
  "deploymentConfiguration": {{
    "minimumHealthyPercent": 100,
    "maximumPercent": {max},
    "deploymentCircuitBreaker": {{ "enable": true, "rollback": true }}
  }},
  "networkConfiguration": {{
    "awsvpcConfiguration": {{ "subnets": ["subnet-0a1b2c3d"], "securityGroups": ["sg-0a1b2c3d"], "assignPublicIp": "DISABLED" }}
  }},
  "loadBalancers": [{{ "targetGroupArn": "{tg_arn}", "containerName": "web", "containerPort": 8080 }}],
  "healthCheckGracePeriodSeconds": 30
}}
"#,
            desired = shape.desired,
            max = shape.max_percent,
        );
        let rollout = if fast_fail {
            String::new()
        } else {
            "rollout: {fast_fail: false}\n".to_string()
        };
        let config = format!(
            "region: us-east-1\ncluster: {CLUSTER}\nservice: {name}\nservice_definition: {name}-service.json\ntask_definition: {name}-task.json\ntimeout: 30m\n{rollout}"
        );
        let write = |file: String, text: &str| -> Res<PathBuf> {
            let p = self.dir.join(file);
            std::fs::write(&p, text).map_err(|e| format!("cannot write {}: {e}", p.display()))?;
            Ok(p)
        };
        write(format!("{name}-task.json"), &task)?;
        write(format!("{name}-service.json"), &service)?;
        let cfg = write(format!("{name}.yml"), &config)?;
        let prepare = Prepare {
            cluster: CLUSTER.into(),
            service: Some(name.into()),
            target_groups: vec![tg_arn.clone()],
            images: ["v1", "v2", BROKEN_TAG]
                .iter()
                .map(|t| format!("{REGISTRY}/{REPO}:{t}"))
                .collect(),
            blue_green: Vec::new(),
            ..Default::default()
        };
        prepare
            .apply(&env.sb)
            .map_err(|e| format!("cannot prepare the sandbox for {name}: {e}"))?;
        env.ctl.with_world(|w| -> Res<()> {
            let arn = w
                .elbv2
                .find_target_group(name)
                .ok_or_else(|| format!("target group {name} was not created"))?;
            let health = HealthCheck {
                interval_seconds: 10,
                healthy_threshold: 2,
                ..HealthCheck::default()
            };
            w.elbv2
                .set_health_check(&arn, health)
                .map_err(|e| format!("health check of {name}: {}", e.message))?;
            w.elbv2
                .set_target_group_attribute(&arn, DEREGISTRATION_DELAY, "30")
                .map_err(|e| format!("deregistration delay of {name}: {}", e.message))
        })?;
        Ok(cfg)
    }

    /// `cortado --output json` talking to `env`'s sandbox, with a clean environment.
    fn command(&self, env: &Env) -> Command {
        let mut cmd = Command::new(&self.bin);
        cmd.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .envs(sandbox_env(&env.sb.endpoint()))
            .arg("--output")
            .arg("json");
        cmd
    }

    /// Runs `cortado deploy` with `configs` and image tag `tag`, polling the sandbox every
    /// 10 ms. `skip` jumps that many ECS seconds per poll (only to speed up warm-up runs).
    fn deploy(
        &self,
        env: &Env,
        configs: &[PathBuf],
        tag: &str,
        limit: Duration,
        skip: f64,
    ) -> Res<Run> {
        let keys: Vec<String> = configs
            .iter()
            .filter_map(|c| c.file_stem().and_then(|s| s.to_str()))
            .map(|s| format!("{CLUSTER}/{s}"))
            .collect();
        let mut cmd = self.command(env);
        cmd.env("IMAGE_TAG", tag);
        for c in configs {
            cmd.arg("-c").arg(c);
        }
        cmd.arg("deploy");
        self.follow(env, cmd, &keys, tag, limit, skip, &mut |_| {})
    }

    /// Runs `cmd` (a cortado command with `--output json`) to its end, polling the sandbox
    /// every 10 ms for the services `keys` (`cluster/service`); `look` is called on every poll
    /// too, for a phase's own probes. `tag` names the run in errors.
    #[allow(clippy::too_many_arguments)]
    fn follow(
        &self,
        env: &Env,
        mut cmd: Command,
        keys: &[String],
        tag: &str,
        limit: Duration,
        skip: f64,
        look: &mut dyn FnMut(&Control),
    ) -> Res<Run> {
        let start = wall();
        let mut run = Running::spawn(&mut cmd)
            .map_err(|e| format!("cannot run {}: {e}", self.bin.display()))?;
        let mut events = Vec::new();
        let mut finals: BTreeMap<String, (String, f64)> = BTreeMap::new();
        let mut settled: BTreeMap<String, Vec<(f64, String, String)>> = BTreeMap::new();
        let mut seen = Seen::default();
        let deadline = Instant::now() + limit;
        let exit = loop {
            if skip > 0.0 {
                env.ctl.advance(skip);
            }
            probe(&env.ctl, keys, &mut finals, &mut settled, &mut seen);
            look(&env.ctl);
            while let Ok(line) = run.lines.try_recv() {
                if let Ok(v) = serde_json::from_str::<Value>(&line) {
                    events.push(v);
                }
            }
            match run.child.try_wait() {
                Ok(Some(status)) => break status.code(),
                Ok(None) => {}
                Err(e) => return Err(format!("cannot wait for cortado: {e}")),
            }
            if Instant::now() >= deadline {
                let err = run.kill();
                return Err(format!(
                    "cortado did not finish within {} s (tag {tag}); killed it. Last stderr:\n{}",
                    limit.as_secs(),
                    tail(&err, 10)
                ));
            }
            std::thread::sleep(POLL);
        };
        let end = wall();
        let (rest, err) = run.finish();
        events.extend(
            rest.iter()
                .filter_map(|line| serde_json::from_str::<Value>(line).ok()),
        );
        if !events.iter().any(|e| str_of(e, "event") == Some("result")) {
            return Err(format!(
                "cortado exited ({exit:?}) without a result line (tag {tag}). Last stderr:\n{}",
                tail(&err, 10)
            ));
        }
        let requests = env
            .ctl
            .requests()
            .into_iter()
            .filter(|r| r.wall_time >= start && r.wall_time <= end + 0.5)
            .map(|r| (r.wall_time, r.virtual_time, r.operation))
            .collect();
        Ok(Run {
            start,
            end,
            speed: env.speed,
            exit,
            events,
            finals,
            settled,
            failed_stops: seen.by_deployment,
            serving: seen.serving,
            requests,
        })
    }

    /// Figures 1 and 2 for one service deployed `n` times (alternating v2 and v1).
    fn phase_single(&self, speed: f64, n: usize) -> Res<Single> {
        let env = self.start_env(speed)?;
        let name = "web";
        let cfg = self.add_service(&env, name, SMALL, true)?;
        // Warm-up: create the service; at speed 1 skip ECS time so it does not take minutes.
        let skip = if speed < 10.0 { 2.0 } else { 0.0 };
        let create = self.deploy(
            &env,
            std::slice::from_ref(&cfg),
            "v1",
            limit(speed, 1),
            skip,
        )?;
        expect_success(&create, "creating the service")?;
        let mut out = Single::default();
        for i in 0..n {
            let tag = if i % 2 == 0 { "v2" } else { "v1" };
            let run = self.deploy(&env, std::slice::from_ref(&cfg), tag, limit(speed, 1), 0.0)?;
            expect_success(&run, &format!("deploy {} ({tag})", i + 1))?;
            let m = measure_service(&run, name)?;
            out.latencies.extend(m.latency);
            out.budgets.push(m.budget);
            add_ops(&mut out.ops, &m.ops);
            out.gaps.extend(m.gaps);
        }
        Ok(out)
    }

    /// Figure 2 (and 1) for `count` services in one cortado run.
    fn phase_batch(&self, speed: f64, count: usize) -> Res<Batch> {
        let env = self.start_env(speed)?;
        let mut cfgs = Vec::new();
        let mut names = Vec::new();
        for i in 1..=count {
            let name = format!("svc-{i:02}");
            cfgs.push(self.add_service(&env, &name, SMALL, true)?);
            names.push(name);
        }
        let create = self.deploy(&env, &cfgs, "v1", limit(speed, count), 0.0)?;
        expect_success(&create, "creating the batch services")?;
        let run = self.deploy(&env, &cfgs, "v2", limit(speed, count), 0.0)?;
        expect_success(&run, "the batch deploy")?;
        let mut out = Batch {
            services: count,
            ..Batch::default()
        };
        let first_update = run
            .requests
            .iter()
            .find(|r| r.2 == "UpdateService")
            .map(|r| r.0)
            .ok_or("the batch run made no UpdateService call")?;
        out.window_secs = run.end - first_update;
        out.describe_services = run
            .requests
            .iter()
            .filter(|r| r.2 == "DescribeServices" && r.0 >= first_update)
            .count();
        out.all_calls = run.requests.iter().filter(|r| r.0 >= first_update).count();
        for name in &names {
            let m = measure_service(&run, name)?;
            out.latencies.extend(m.latency);
            out.per_service.push(m.budget);
            add_ops(&mut out.ops, &m.ops);
            out.gaps.extend(m.gaps);
        }
        Ok(out)
    }

    /// Figure 3: broken image, fast-fail on vs off, `reps` times per shape.
    fn phase_broken(&self, speed: f64, reps: usize) -> Res<Vec<BrokenRow>> {
        let env = self.start_env(speed)?;
        let mut rows = Vec::new();
        for (label, shape) in [
            ("desired 2, max 200% (breaker at 3)", SMALL),
            ("desired 10, max 120% (breaker at 5)", LARGE),
        ] {
            let mut row = BrokenRow {
                label,
                ..BrokenRow::default()
            };
            for r in 1..=reps {
                for fast_fail in [true, false] {
                    let name = format!(
                        "ff-{}-{}-{r}",
                        shape.desired,
                        if fast_fail { "on" } else { "off" }
                    );
                    let cfg = self.add_service(&env, &name, shape, fast_fail)?;
                    let create =
                        self.deploy(&env, std::slice::from_ref(&cfg), "v1", limit(speed, 2), 0.0)?;
                    expect_success(&create, &format!("creating {name}"))?;
                    let old_td = create
                        .event_for("deployment_started", &name)
                        .and_then(|e| str_of(e, "task_definition_arn"))
                        .ok_or_else(|| format!("{name}: no deployment_started when creating"))?
                        .to_string();
                    let run = self.deploy(
                        &env,
                        std::slice::from_ref(&cfg),
                        BROKEN_TAG,
                        limit(speed, 4),
                        0.0,
                    )?;
                    let b = measure_broken(&run, &name, &old_td)?;
                    if fast_fail {
                        row.on.push(b);
                    } else {
                        row.off.push(b);
                    }
                }
            }
            rows.push(row);
        }
        Ok(rows)
    }
}

impl Bench {
    /// Figure 4: `reps` blue/green deploys through a verification gate, each in a sandbox of
    /// its own (seeded differently): create the service with v1 (ECS creates it without
    /// blue/green), then deploy v2, measured.
    fn phase_bluegreen(&self, speed: f64, reps: usize) -> Res<Vec<BlueGreen>> {
        let trace = std::env::var("CORTADO_BENCH_BG_TRACE").is_ok_and(|v| v == "1");
        let mut out = Vec::new();
        for rep in 1..=reps {
            let env = self.start_env_seeded(speed, 100 + rep as u64)?;
            let cfg = prepare_bluegreen(&env)?;
            let keys = [format!("{BG_CLUSTER}/{BG_SERVICE}")];
            let create = self.follow(
                &env,
                self.bluegreen_command(&env, &cfg, "v1"),
                &keys,
                "v1",
                limit(speed, 2),
                0.0,
                &mut |_| {},
            )?;
            expect_success(
                &create,
                &format!("blue/green run {rep}: creating the service"),
            )?;
            let mut seen = SdSeen {
                key: keys[0].clone(),
                since: env.ctl.now(),
                ..SdSeen::default()
            };
            let run = self.follow(
                &env,
                self.bluegreen_command(&env, &cfg, "v2"),
                &keys,
                "v2",
                limit(speed, 2),
                0.0,
                &mut |ctl| seen.look(ctl),
            )?;
            expect_success(&run, &format!("blue/green run {rep}: deploying v2"))?;
            if trace {
                eprintln!("-- blue/green run {rep}: timeline (s after cortado's start)");
                trace_bluegreen(&run, &seen);
            }
            out.push(measure_bluegreen(&run, &seen)?);
        }
        Ok(out)
    }

    /// `cortado -c web-bg/cortado.yml deploy` with TAG=`tag` (the image tag, and what the
    /// gate reads) and STRATEGY=BLUE_GREEN (the service definition's template).
    fn bluegreen_command(&self, env: &Env, cfg: &Path, tag: &str) -> Command {
        let mut cmd = self.command(env);
        cmd.env("TAG", tag)
            .env("STRATEGY", "BLUE_GREEN")
            .arg("-c")
            .arg(cfg)
            .arg("deploy");
        cmd
    }
}

/// Creates in `env`'s sandbox what the `web-bg` fixture needs (cluster, both target groups,
/// the production and test listener rules its service definition names, images v1 and v2),
/// as the scenario tests do. Returns the config path.
fn prepare_bluegreen(env: &Env) -> Res<PathBuf> {
    let dir = Path::new(BG_FIXTURE);
    let path = dir.join("ecs-service-def.json");
    let text = std::fs::read_to_string(&path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    // The service definition is JSON once its template lines are left out.
    let plain: Vec<&str> = text.lines().filter(|l| !l.contains("{{")).collect();
    let svc: Value =
        serde_json::from_str(&plain.join("\n")).map_err(|e| format!("{}: {e}", path.display()))?;
    let lb = &svc["loadBalancers"][0];
    let adv = &lb["advancedConfiguration"];
    let field = |v: &Value, k: &str| -> Res<String> {
        v[k].as_str()
            .map(str::to_string)
            .ok_or_else(|| format!("{}: no {k} in loadBalancers[0]", path.display()))
    };
    let target_group = field(lb, "targetGroupArn")?;
    Prepare {
        cluster: BG_CLUSTER.into(),
        service: Some(BG_SERVICE.into()),
        target_groups: vec![target_group.clone()],
        images: ["v1", "v2"]
            .iter()
            .map(|t| format!("{BG_REPO}:{t}"))
            .collect(),
        blue_green: vec![PrepareBlueGreen {
            target_group,
            alternate_target_group: field(adv, "alternateTargetGroupArn")?,
            production_listener_rule: Some(field(adv, "productionListenerRule")?),
            test_listener_rule: Some(field(adv, "testListenerRule")?),
        }],
        ..Default::default()
    }
    .apply(&env.sb)
    .map_err(|e| format!("cannot prepare the sandbox for the blue/green service: {e}"))?;
    Ok(dir.join("cortado.yml"))
}

/// A bound on one cortado run: generous for `units` deploys at this speed.
fn limit(speed: f64, units: usize) -> Duration {
    let per = (600.0 / speed).max(20.0);
    Duration::from_secs_f64(per * units as f64 + 30.0)
}

fn expect_success(run: &Run, what: &str) -> Res<()> {
    if run.exit == Some(0) {
        Ok(())
    } else {
        Err(format!(
            "{what}: cortado exited with {:?} ({})",
            run.exit,
            run.result_outcomes()
        ))
    }
}

/// Failed tasks seen STOPPED so far.
#[derive(Default)]
struct Seen {
    stopping: std::collections::BTreeSet<String>,
    stopped: std::collections::BTreeSet<String>,
    /// Deployment id -> wall times its failed tasks were first seen stopping (desiredStatus
    /// STOPPED, stoppedReason set) and first seen STOPPED.
    by_deployment: BTreeMap<String, (Vec<f64>, Vec<f64>)>,
    /// Service key -> times a revision began to serve alone: its PRIMARY deployment's tasks
    /// all running (and ELB-healthy where registered), every other task stopped or stopping
    /// (draining). (wall, task definition, deployment id).
    serving: BTreeMap<String, Vec<(f64, String, String)>>,
    /// Service keys serving alone at the last look.
    serving_now: std::collections::BTreeSet<String>,
}

/// One look at the sandbox: the first time each deployment left IN_PROGRESS, each time a
/// service settled (one deployment, PRIMARY, COMPLETED), and failed tasks reaching STOPPED
/// (when DescribeTasks would first show them stopped).
fn probe(
    ctl: &Control,
    keys: &[String],
    finals: &mut BTreeMap<String, (String, f64)>,
    settled: &mut BTreeMap<String, Vec<(f64, String, String)>>,
    seen: &mut Seen,
) {
    ctl.with_world(|w| {
        let now = wall();
        for key in keys {
            for t in w.svc_tasks(key) {
                if !t.failed || t.desired_status != "STOPPED" {
                    continue;
                }
                let Some(d) = &t.deployment else { continue };
                if seen.stopping.insert(t.id.clone()) {
                    seen.by_deployment.entry(d.clone()).or_default().0.push(now);
                }
                if t.last_status == "STOPPED" && seen.stopped.insert(t.id.clone()) {
                    seen.by_deployment.entry(d.clone()).or_default().1.push(now);
                }
            }
            let Some(s) = w.services.get(key) else {
                continue;
            };
            if let Some(p) = s.deployments.iter().find(|d| d.status == "PRIMARY") {
                let mut serving = 0;
                let mut others = 0;
                for t in w.svc_tasks(key) {
                    let live = t.desired_status == "RUNNING" && t.last_status != "STOPPED";
                    if t.deployment.as_deref() == Some(p.id.as_str()) {
                        if live
                            && t.last_status == "RUNNING"
                            && (t.targets.is_empty() || t.elb_healthy)
                        {
                            serving += 1;
                        }
                    } else if live {
                        others += 1;
                    }
                }
                // Each time serving alone begins (an ECS rollback brings back the same
                // deployment id, so the id alone does not tell a new start).
                if p.desired > 0 && serving >= p.desired && others == 0 {
                    if seen.serving_now.insert(key.clone()) {
                        seen.serving.entry(key.clone()).or_default().push((
                            now,
                            p.task_def.clone(),
                            p.id.clone(),
                        ));
                    }
                } else {
                    seen.serving_now.remove(key);
                }
            }
            for d in &s.deployments {
                if d.rollout_state != "IN_PROGRESS" && !finals.contains_key(&d.id) {
                    finals.insert(d.id.clone(), (d.rollout_state.clone(), now));
                }
            }
            if let [d] = s.deployments.as_slice()
                && d.status == "PRIMARY"
                && d.rollout_state == "COMPLETED"
            {
                let list = settled.entry(key.clone()).or_default();
                if list.last().is_none_or(|l| l.2 != d.id) {
                    list.push((now, d.task_def.clone(), d.id.clone()));
                }
            }
        }
    });
}

/// API budget of one service's deploy window.
#[derive(Debug, Clone, Copy, Default)]
struct Budget {
    describe_services: usize,
    all_calls: usize,
    wall_secs: f64,
    ecs_secs: f64,
}

impl Budget {
    fn per_minute(&self) -> f64 {
        self.describe_services as f64 / (self.wall_secs / 60.0).max(1e-9)
    }
}

struct Measured {
    latency: Option<f64>,
    budget: Budget,
    /// Calls per operation in the window.
    ops: BTreeMap<String, usize>,
    /// Seconds between consecutive DescribeServices calls in the window (the poll cadence).
    gaps: Vec<f64>,
}

/// Verdict latency and API budget of `service` in `run`: the window runs from the service's
/// UpdateService (the one just before its `deployment_started`) to its verdict's end of
/// follow-up (the next service's UpdateService, or cortado's exit).
fn measure_service(run: &Run, service: &str) -> Res<Measured> {
    let started = run
        .event_for("deployment_started", service)
        .ok_or_else(|| format!("{service}: cortado emitted no deployment_started"))?;
    let dep = str_of(started, "deployment_id")
        .ok_or_else(|| format!("{service}: deployment_started has no deployment_id"))?;
    let t_started = time_of(started).unwrap_or(run.start);
    let verdict = run
        .event_for("verdict", service)
        .ok_or_else(|| format!("{service}: cortado emitted no verdict"))?;
    let t_verdict = time_of(verdict).unwrap_or(run.end);
    let latency = run.finals.get(dep).map(|(_, at)| t_verdict - at);
    // The UpdateService that started this deploy: the last one at or before deployment_started.
    let begin = run
        .requests
        .iter()
        .filter(|r| r.2 == "UpdateService" && r.0 <= t_started + 0.05)
        .map(|r| (r.0, r.1))
        .next_back()
        .unwrap_or((t_started, 0.0));
    // The end: our verdict, or the end of our rollback when there was one (the next service
    // of the run starts after that).
    let end_wall = run
        .event_for("rollback_finished", service)
        .and_then(time_of)
        .unwrap_or(t_verdict)
        .max(t_verdict);
    let end = (end_wall, begin.1 + (end_wall - begin.0) * run.speed);
    let in_window = |r: &&(f64, f64, String)| r.0 >= begin.0 && r.0 <= end.0;
    let describe_services = run
        .requests
        .iter()
        .filter(in_window)
        .filter(|r| r.2 == "DescribeServices")
        .count();
    let all_calls = run.requests.iter().filter(in_window).count();
    let mut ops = BTreeMap::new();
    for r in run.requests.iter().filter(in_window) {
        *ops.entry(r.2.clone()).or_insert(0) += 1;
    }
    let ds_times: Vec<f64> = run
        .requests
        .iter()
        .filter(in_window)
        .filter(|r| r.2 == "DescribeServices")
        .map(|r| r.0)
        .collect();
    let gaps = ds_times.windows(2).map(|w| w[1] - w[0]).collect();
    Ok(Measured {
        latency,
        ops,
        gaps,
        budget: Budget {
            describe_services,
            all_calls,
            wall_secs: end.0 - begin.0,
            ecs_secs: if begin.1 > 0.0 { end.1 - begin.1 } else { 0.0 },
        },
    })
}

/// One broken-image deploy.
#[derive(Debug, Clone, Default)]
struct Broken {
    /// Wall seconds from deployment_started to the old revision serving alone, COMPLETED.
    to_old: Option<f64>,
    /// Wall seconds from deployment_started to the old revision serving alone (its tasks
    /// running and healthy, the failed ones stopped or draining).
    to_serving: Option<f64>,
    /// Wall seconds from deployment_started to cortado's verdict.
    to_verdict: Option<f64>,
    /// Wall seconds from deployment_started to cortado's exit.
    to_exit: f64,
    /// Wall seconds from the 3rd failed task of ours beginning to stop (stoppedReason set) to
    /// cortado's verdict, and from it reaching STOPPED to the verdict.
    after_third_stopping: Option<f64>,
    after_third_stop: Option<f64>,
    /// Who decided: cortado's verdict detail, shortened.
    decided_by: String,
    outcome: String,
}

fn measure_broken(run: &Run, service: &str, old_td: &str) -> Res<Broken> {
    let started = run
        .event_for("deployment_started", service)
        .ok_or_else(|| format!("{service}: no deployment_started for the broken image"))?;
    let t0 = time_of(started).unwrap_or(run.start);
    let dep = str_of(started, "deployment_id").unwrap_or_default();
    let key = format!("{CLUSTER}/{service}");
    let to_old = run.settled.get(&key).and_then(|list| {
        list.iter()
            .find(|(at, td, id)| *at >= t0 && td == old_td && id != dep)
            .map(|(at, _, _)| at - t0)
    });
    let to_serving = run.serving.get(&key).and_then(|list| {
        list.iter()
            .find(|(at, td, _)| *at >= t0 && td == old_td)
            .map(|(at, _, _)| at - t0)
    });
    let verdict = run.event_for("verdict", service);
    let detail = verdict.and_then(|v| str_of(v, "detail")).unwrap_or("");
    let decided_by = if detail.starts_with("failed fast") {
        "fast-fail".to_string()
    } else if detail.contains("circuit breaker") {
        "breaker".to_string()
    } else {
        detail.chars().take(40).collect()
    };
    let stops = run.failed_stops.get(dep);
    let third = |v: &Vec<f64>| sorted(v).get(2).copied();
    let t_verdict = verdict.and_then(time_of);
    Ok(Broken {
        after_third_stopping: stops
            .and_then(|s| third(&s.0))
            .zip(t_verdict)
            .map(|(s, v)| v - s),
        after_third_stop: stops
            .and_then(|s| third(&s.1))
            .zip(t_verdict)
            .map(|(s, v)| v - s),
        to_old,
        to_serving,
        to_verdict: verdict.and_then(time_of).map(|t| t - t0),
        to_exit: run.end - t0,
        decided_by,
        outcome: run.result_outcomes(),
    })
}

fn add_ops(into: &mut BTreeMap<String, usize>, from: &BTreeMap<String, usize>) {
    for (k, v) in from {
        *into.entry(k.clone()).or_insert(0) += v;
    }
}

/// `Op n/min, ...`, most frequent first.
fn ops_line(ops: &BTreeMap<String, usize>, minutes: f64) -> String {
    let mut v: Vec<(&String, &usize)> = ops.iter().collect();
    v.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    v.iter()
        .map(|(k, n)| format!("{k} {:.1}", **n as f64 / minutes.max(1e-9)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Poll gaps rounded to the half second: `1.0 s x40, 4.0 s x3`.
fn gaps_line(gaps: &[f64]) -> String {
    let mut counts: BTreeMap<i64, usize> = BTreeMap::new();
    for g in gaps {
        *counts.entry((g * 2.0).round() as i64).or_insert(0) += 1;
    }
    counts
        .iter()
        .map(|(k, n)| format!("{:.1} s x{n}", *k as f64 / 2.0))
        .collect::<Vec<_>>()
        .join(", ")
}

#[derive(Default)]
struct Single {
    gaps: Vec<f64>,
    latencies: Vec<f64>,
    budgets: Vec<Budget>,
    ops: BTreeMap<String, usize>,
}

#[derive(Default)]
struct Batch {
    gaps: Vec<f64>,
    services: usize,
    ops: BTreeMap<String, usize>,
    latencies: Vec<f64>,
    per_service: Vec<Budget>,
    describe_services: usize,
    all_calls: usize,
    window_secs: f64,
}

#[derive(Default)]
struct BrokenRow {
    label: &'static str,
    on: Vec<Broken>,
    off: Vec<Broken>,
}

/// Nearest-rank percentile of sorted data.
fn pct(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

fn sorted(v: &[f64]) -> Vec<f64> {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    s
}

fn latency_line(lat: &[f64]) -> String {
    let s = sorted(lat);
    format!(
        "n={:<3} p50 {:.2} s  p90 {:.2} s  p99 {:.2} s  max {:.2} s",
        s.len(),
        pct(&s, 0.5),
        pct(&s, 0.9),
        pct(&s, 0.99),
        s.last().copied().unwrap_or(f64::NAN)
    )
}

fn mean(v: impl Iterator<Item = f64>) -> f64 {
    let (sum, n) = v.fold((0.0, 0usize), |(s, n), x| (s + x, n + 1));
    if n == 0 { f64::NAN } else { sum / n as f64 }
}

fn print_single(r: &Res<Single>, speed: f64, label: &str) {
    println!("== {label}");
    match r {
        Err(e) => println!("   FAILED: {e}"),
        Ok(s) => {
            println!(
                "1. verdict latency (sandbox COMPLETED -> cortado verdict): {}   [goal p50 <= 1 s, p99 <= 2 s]",
                latency_line(&s.latencies)
            );
            let per: Vec<f64> = s.budgets.iter().map(Budget::per_minute).collect();
            let ps = sorted(&per);
            let ds: usize = s.budgets.iter().map(|b| b.describe_services).sum();
            let all: usize = s.budgets.iter().map(|b| b.all_calls).sum();
            let secs: f64 = s.budgets.iter().map(|b| b.wall_secs).sum();
            println!(
                "2. DescribeServices per service-minute: {:.1} overall ({} calls in {:.1} wall min; per deploy min {:.1} / median {:.1} / max {:.1})   [goal <= 30]",
                ds as f64 / (secs / 60.0).max(1e-9),
                ds,
                secs / 60.0,
                pct(&ps, 0.0),
                pct(&ps, 0.5),
                ps.last().copied().unwrap_or(f64::NAN)
            );
            println!(
                "   all API calls per service-minute {:.1}; deploy window mean {:.1} s wall = {:.0} s ECS time (speed x{speed})",
                all as f64 / (secs / 60.0).max(1e-9),
                mean(s.budgets.iter().map(|b| b.wall_secs)),
                mean(s.budgets.iter().map(|b| b.ecs_secs)),
            );
            println!(
                "   calls per service-minute by operation: {}",
                ops_line(&s.ops, secs / 60.0)
            );
            println!(
                "   poll gaps (between DescribeServices): {}",
                gaps_line(&s.gaps)
            );
        }
    }
}

fn print_batch(r: &Res<Batch>, speed: f64) {
    println!();
    match r {
        Err(e) => println!("== 12 services in one run\n   FAILED: {e}"),
        Ok(b) => {
            println!(
                "== {} services in one cortado run (-c x{})",
                b.services, b.services
            );
            println!(
                "1. verdict latency: {}   [goal p50 <= 1 s, p99 <= 2 s]",
                latency_line(&b.latencies)
            );
            println!(
                "2. DescribeServices per service-minute over the run: {:.1} ({} calls, {} services, {:.1} wall s = {:.0} s ECS time)   [goal <= 30]",
                b.describe_services as f64 / (b.window_secs / 60.0 * b.services as f64).max(1e-9),
                b.describe_services,
                b.services,
                b.window_secs,
                b.window_secs * speed,
            );
            let per: Vec<f64> = b.per_service.iter().map(Budget::per_minute).collect();
            let ps = sorted(&per);
            println!(
                "   per service, inside its own deploy window: median {:.1} / max {:.1} per minute; windows {:.1}-{:.1} s wall (services are deployed one after another)",
                pct(&ps, 0.5),
                ps.last().copied().unwrap_or(f64::NAN),
                b.per_service
                    .iter()
                    .map(|x| x.wall_secs)
                    .fold(f64::INFINITY, f64::min),
                b.per_service
                    .iter()
                    .map(|x| x.wall_secs)
                    .fold(0.0, f64::max),
            );
            println!(
                "   all API calls per service-minute {:.1}; by operation: {}",
                b.all_calls as f64 / (b.window_secs / 60.0 * b.services as f64).max(1e-9),
                ops_line(&b.ops, b.window_secs / 60.0 * b.services as f64)
            );
            println!(
                "   poll gaps (between DescribeServices): {}",
                gaps_line(&b.gaps)
            );
        }
    }
}

fn print_broken(r: &Res<Vec<BrokenRow>>, speed: f64) {
    println!();
    println!(
        "== 3. broken image ({BROKEN_TAG}) -> old revision serving alone (from deployment_started; wall s, ECS s = wall x{speed})"
    );
    let rows = match r {
        Err(e) => {
            println!("   FAILED: {e}");
            return;
        }
        Ok(rows) => rows,
    };
    let fmt = |v: &[Broken]| -> String {
        v.iter()
            .map(|b| match b.to_serving {
                Some(t) => format!("{t:.1}"),
                None => "never".into(),
            })
            .collect::<Vec<_>>()
            .join("/")
    };
    let med = |v: &[Broken]| -> f64 {
        let s = sorted(&v.iter().filter_map(|b| b.to_serving).collect::<Vec<_>>());
        pct(&s, 0.5)
    };
    for row in rows {
        let on = med(&row.on);
        let off = med(&row.off);
        println!("   {}", row.label);
        println!(
            "     fast-fail on : median {on:>5.1} s ({:>4.0} ECS s)  runs {}  verdict at {}  decided by {}",
            on * speed,
            fmt(&row.on),
            verdicts(&row.on),
            deciders(&row.on),
        );
        println!(
            "     fast-fail off: median {off:>5.1} s ({:>4.0} ECS s)  runs {}  verdict at {}  decided by {}",
            off * speed,
            fmt(&row.off),
            verdicts(&row.off),
            deciders(&row.off),
        );
        println!("     ratio on/off : {:.2}", on / off);
        println!(
            "     verdict minus the 3rd failed task's stop start (stoppedReason set): on {}  off {}",
            series(&row.on, |b| b.after_third_stopping),
            series(&row.off, |b| b.after_third_stopping)
        );
        println!(
            "     verdict minus the 3rd failed task's lastStatus STOPPED:            on {}  off {}",
            series(&row.on, |b| b.after_third_stop),
            series(&row.off, |b| b.after_third_stop)
        );
        println!(
            "     verdict -> old revision alone, COMPLETED, before cortado exits:     on {}  off {}",
            series(&row.on, rollback_secs),
            series(&row.off, rollback_secs)
        );
        println!(
            "     old revision serving alone -> cortado exits (goal <= 10 s):      on {}  off {}",
            series(&row.on, |b| b.to_serving.map(|s| b.to_exit - s)),
            series(&row.off, |b| b.to_serving.map(|s| b.to_exit - s))
        );
        println!(
            "     deployment_started -> old revision serving alone:                on {}  off {}",
            series(&row.on, |b| b.to_serving),
            series(&row.off, |b| b.to_serving)
        );
        for b in row.on.iter().chain(&row.off) {
            if b.to_serving.is_none() {
                println!(
                    "     note: the old revision never served alone while cortado ran (exit after {:.1} s): {}",
                    b.to_exit, b.outcome
                );
            }
        }
    }
}

fn verdicts(v: &[Broken]) -> String {
    v.iter()
        .map(|b| b.to_verdict.map_or("-".into(), |t| format!("{t:.1}")))
        .collect::<Vec<_>>()
        .join("/")
}

fn rollback_secs(b: &Broken) -> Option<f64> {
    b.to_old.zip(b.to_verdict).map(|(o, v)| o - v)
}

fn series(v: &[Broken], f: impl Fn(&Broken) -> Option<f64>) -> String {
    v.iter()
        .map(|b| f(b).map_or("-".into(), |t| format!("{t:.1}")))
        .collect::<Vec<_>>()
        .join("/")
}

fn deciders(v: &[Broken]) -> String {
    let mut seen: Vec<String> = Vec::new();
    for b in v {
        if !seen.contains(&b.decided_by) {
            seen.push(b.decided_by.clone());
        }
    }
    seen.join(", ")
}

/// One sighting by the blue/green probe: the wall time of the look, the sandbox's virtual time
/// then, and the virtual time the thing happened (from the service deployment's own fields,
/// when it has them).
#[derive(Debug, Clone, Copy)]
struct Sighting {
    wall: f64,
    now: f64,
    at: Option<f64>,
}

impl Sighting {
    /// When it happened, in wall time: the virtual time it happened mapped back from the look.
    fn happened(&self, speed: f64) -> f64 {
        self.at
            .map_or(self.wall, |at| self.wall - (self.now - at).max(0.0) / speed)
    }
}

/// What the bench's own DescribeServiceDeployments saw of our service deployment (the newest of
/// the service, created after the run began), asked in-process every [`BG_PROBE`]: through the
/// sandbox's ECS dispatcher under its lock, like cortado's calls, but not in the request log,
/// so the log keeps cortado's calls only.
#[derive(Default)]
struct SdSeen {
    /// `cluster/service`.
    key: String,
    /// Virtual time before the run: service deployments created earlier are not ours.
    since: f64,
    last_look: f64,
    looks: usize,
    /// First look with a PAUSE hook AWAITING_ACTION (`at`: expiresAt minus its timeout), its
    /// stage and hook id.
    awaiting: Option<(Sighting, String, String)>,
    /// First look with status SUCCESSFUL (`at`: finishedAt).
    successful: Option<Sighting>,
    /// First wall time of each lifecycle stage, in the order seen.
    stages: Vec<(String, f64)>,
    /// Last status seen, for the report when SUCCESSFUL never came.
    status: String,
}

impl SdSeen {
    fn look(&mut self, ctl: &Control) {
        if wall() - self.last_look < BG_PROBE.as_secs_f64() {
            return;
        }
        let (key, since) = (self.key.clone(), self.since);
        let (now_wall, now, sd) = ctl.with_world(|w| {
            let now_wall = wall();
            let ours = w
                .sds
                .values()
                .filter(|sd| sd.service_key == key && sd.created_at >= since)
                .max_by(|a, b| a.created_at.total_cmp(&b.created_at))
                .map(|sd| sd.arn.clone());
            let described = ours.and_then(|arn| {
                w.ecs(
                    "DescribeServiceDeployments",
                    &json!({ "serviceDeploymentArns": [arn] }),
                )
                .ok()
            });
            (now_wall, w.now, described)
        });
        self.last_look = now_wall;
        self.looks += 1;
        let Some(sd) = sd.as_ref().and_then(|v| v.pointer("/serviceDeployments/0")) else {
            return;
        };
        let status = str_of(sd, "status").unwrap_or_default();
        self.status = status.to_string();
        let stage = str_of(sd, "lifecycleStage").unwrap_or_default();
        if !stage.is_empty() && !self.stages.iter().any(|(s, _)| s == stage) {
            self.stages.push((stage.to_string(), now_wall));
        }
        if self.awaiting.is_none()
            && let Some(hook) = sd
                .get("lifecycleHookDetails")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .find(|h| {
                    str_of(h, "targetType") == Some("PAUSE")
                        && str_of(h, "status") == Some("AWAITING_ACTION")
                })
        {
            // The hook's start: its expiresAt minus the timeout of the PAUSE hook configured
            // at this stage.
            let timeout = sd
                .pointer("/deploymentConfiguration/lifecycleHooks")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .find(|c| {
                    str_of(c, "targetType") == Some("PAUSE")
                        && c.get("lifecycleStages")
                            .and_then(Value::as_array)
                            .is_some_and(|a| a.iter().any(|s| s.as_str() == Some(stage)))
                })
                .and_then(|c| c.pointer("/timeoutConfiguration/timeoutInMinutes"))
                .and_then(Value::as_f64);
            let at = hook
                .get("expiresAt")
                .and_then(Value::as_f64)
                .zip(timeout)
                .map(|(exp, min)| exp - min * 60.0);
            self.awaiting = Some((
                Sighting {
                    wall: now_wall,
                    now,
                    at,
                },
                stage.to_string(),
                str_of(hook, "hookId").unwrap_or_default().to_string(),
            ));
        }
        if self.successful.is_none() && status == "SUCCESSFUL" {
            self.successful = Some(Sighting {
                wall: now_wall,
                now,
                at: sd.get("finishedAt").and_then(Value::as_f64),
            });
        }
    }
}

/// One measured blue/green deploy (wall seconds).
#[derive(Debug, Clone, Default)]
struct BlueGreen {
    /// Figure 1: the probe first sees our PAUSE hook AWAITING_ACTION -> cortado's `gate_started`.
    hook_to_gate: Option<f64>,
    /// ... split: the hook's start -> cortado's first DescribeServiceDeployments answered after
    /// it (by virtual time: the poll that could see it), and that call -> `gate_started`.
    hook_to_poll: Option<f64>,
    poll_to_gate: Option<f64>,
    /// The probe's lag behind the hook's start (resolution check; about BG_PROBE at most).
    hook_probe_lag: Option<f64>,
    /// The gate's own run time (`gate_finished.duration_secs`).
    gate_secs: Option<f64>,
    /// Figure 2: the gate's exit (`gate_started` + its duration) -> ContinueServiceDeployment
    /// in the request log (answered).
    exit_to_continue: Option<f64>,
    /// `gate_finished` -> ContinueServiceDeployment, signed: cortado emits `gate_finished`
    /// once the answer has returned, so this is negative.
    finished_to_continue: Option<f64>,
    /// Calls cortado made between the gate's exit and the ContinueServiceDeployment.
    calls_before_continue: Vec<String>,
    /// Figure 3: the probe first sees our service deployment SUCCESSFUL -> cortado's `verdict`.
    successful_to_verdict: Option<f64>,
    /// ... split as for the hook, from finishedAt.
    successful_to_poll: Option<f64>,
    poll_to_verdict: Option<f64>,
    successful_probe_lag: Option<f64>,
    /// ContinueServiceDeployment -> the probe first sees SUCCESSFUL (ECS's part: production
    /// shift, bake, clean-up).
    continue_to_successful: Option<f64>,
    /// cortado's start -> exit, and `deployment_started` -> `verdict`.
    total: f64,
    started_to_verdict: Option<f64>,
    /// Lifecycle stages as the probe first saw them, seconds after `deployment_started`.
    stages: Vec<(String, f64)>,
    /// cortado's calls over the whole run, by operation, and the run's wall minutes.
    ops: BTreeMap<String, usize>,
    minutes: f64,
    /// Gaps between cortado's DescribeServiceDeployments calls (its poll cadence).
    gaps: Vec<f64>,
    probe_looks: usize,
    /// The probe's last sight of our service deployment: status, stages.
    last_seen: String,
}

fn measure_bluegreen(run: &Run, seen: &SdSeen) -> Res<BlueGreen> {
    let svc = BG_SERVICE;
    let started = run
        .event_for("deployment_started", svc)
        .ok_or("blue/green: cortado emitted no deployment_started")?;
    let t0 = time_of(started).unwrap_or(run.start);
    let gate_started = run.event_for("gate_started", svc).and_then(time_of);
    let finished = run.event_for("gate_finished", svc);
    let gate_secs = finished.and_then(|e| e.get("duration_secs").and_then(Value::as_f64));
    let gate_exit = gate_started.zip(gate_secs).map(|(s, d)| s + d);
    let verdict = run.event_for("verdict", svc).and_then(time_of);
    let cont = run
        .requests
        .iter()
        .find(|r| r.2 == "ContinueServiceDeployment")
        .map(|r| r.0);
    // cortado's first DescribeServiceDeployments answered at or after virtual time `v` (the
    // log keeps virtual time to the millisecond).
    let poll_after = |v: f64| {
        run.requests
            .iter()
            .find(|r| r.2 == "DescribeServiceDeployments" && r.1 >= v - 0.0005)
            .map(|r| r.0)
    };
    let sub = |a: Option<f64>, b: Option<f64>| a.zip(b).map(|(a, b)| a - b);
    let hook = seen.awaiting.as_ref().map(|(s, _, _)| *s);
    let hook_poll = hook.and_then(|h| h.at).and_then(poll_after);
    let done = seen.successful;
    let done_poll = done.and_then(|d| d.at).and_then(poll_after);
    let calls_before_continue = match (gate_exit, cont) {
        (Some(x), Some(c)) => run
            .requests
            .iter()
            .filter(|r| r.0 > x && r.0 < c)
            .map(|r| r.2.clone())
            .collect(),
        _ => Vec::new(),
    };
    let mut ops = BTreeMap::new();
    for r in &run.requests {
        *ops.entry(r.2.clone()).or_insert(0) += 1;
    }
    let dsd: Vec<f64> = run
        .requests
        .iter()
        .filter(|r| r.2 == "DescribeServiceDeployments")
        .map(|r| r.0)
        .collect();
    Ok(BlueGreen {
        hook_to_gate: sub(gate_started, hook.map(|h| h.wall)),
        hook_to_poll: sub(hook_poll, hook.map(|h| h.happened(run.speed))),
        poll_to_gate: sub(gate_started, hook_poll),
        hook_probe_lag: hook.map(|h| h.wall - h.happened(run.speed)),
        gate_secs,
        exit_to_continue: sub(cont, gate_exit),
        finished_to_continue: sub(cont, finished.and_then(time_of)),
        calls_before_continue,
        successful_to_verdict: sub(verdict, done.map(|d| d.wall)),
        successful_to_poll: sub(done_poll, done.map(|d| d.happened(run.speed))),
        poll_to_verdict: sub(verdict, done_poll),
        successful_probe_lag: done.map(|d| d.wall - d.happened(run.speed)),
        continue_to_successful: sub(done.map(|d| d.wall), cont),
        total: run.end - run.start,
        started_to_verdict: verdict.map(|v| v - t0),
        stages: seen
            .stages
            .iter()
            .map(|(s, t)| (s.clone(), t - t0))
            .collect(),
        ops,
        minutes: (run.end - run.start) / 60.0,
        gaps: dsd.windows(2).map(|w| w[1] - w[0]).collect(),
        probe_looks: seen.looks,
        last_seen: format!(
            "{} after {}",
            if seen.status.is_empty() {
                "nothing"
            } else {
                &seen.status
            },
            seen.stages
                .iter()
                .map(|(s, _)| s.as_str())
                .collect::<Vec<_>>()
                .join(" > ")
        ),
    })
}

/// Prints one measured run as a timeline on stderr: cortado's calls (with the sandbox's
/// virtual time), its events (gate output aside) and what the probe saw.
fn trace_bluegreen(run: &Run, seen: &SdSeen) {
    let t0 = run.start;
    let mut lines: Vec<(f64, String)> = run
        .requests
        .iter()
        .map(|r| (r.0 - t0, format!("call  {} (virtual {:.2})", r.2, r.1)))
        .collect();
    for e in &run.events {
        let kind = str_of(e, "event").unwrap_or_default();
        if let Some(t) = time_of(e)
            && kind != "gate_output"
        {
            let text: String = e.to_string().chars().take(140).collect();
            lines.push((t - t0, format!("event {text}")));
        }
    }
    for (stage, t) in &seen.stages {
        lines.push((t - t0, format!("probe stage {stage}")));
    }
    if let Some((s, stage, _)) = &seen.awaiting {
        lines.push((
            s.wall - t0,
            format!("probe PAUSE hook AWAITING_ACTION at {stage}"),
        ));
    }
    if let Some(s) = &seen.successful {
        lines.push((s.wall - t0, "probe SUCCESSFUL".to_string()));
    }
    lines.sort_by(|a, b| a.0.total_cmp(&b.0));
    for (t, line) in lines {
        eprintln!("{t:8.3} {line}");
    }
}

/// `p50 X s  max Y s  (runs a/b/c)` of the runs that have the figure.
fn p50_max(runs: &[BlueGreen], f: impl Fn(&BlueGreen) -> Option<f64>) -> String {
    let all: Vec<Option<f64>> = runs.iter().map(&f).collect();
    let s = sorted(&all.iter().flatten().copied().collect::<Vec<_>>());
    let each = all
        .iter()
        .map(|v| v.map_or("-".into(), |t| format!("{t:.2}")))
        .collect::<Vec<_>>()
        .join("/");
    format!(
        "p50 {:.2} s  max {:.2} s  (runs {each})",
        pct(&s, 0.5),
        s.last().copied().unwrap_or(f64::NAN)
    )
}

/// [`p50_max`] in milliseconds, for figures far below a second.
fn p50_max_ms(runs: &[BlueGreen], f: impl Fn(&BlueGreen) -> Option<f64>) -> String {
    let all: Vec<Option<f64>> = runs.iter().map(|b| f(b).map(|s| s * 1000.0)).collect();
    let s = sorted(&all.iter().flatten().copied().collect::<Vec<_>>());
    let each = all
        .iter()
        .map(|v| v.map_or("-".into(), |t| format!("{t:.1}")))
        .collect::<Vec<_>>()
        .join("/");
    format!(
        "p50 {:.1} ms  max {:.1} ms  (runs {each})",
        pct(&s, 0.5),
        s.last().copied().unwrap_or(f64::NAN)
    )
}

fn print_bluegreen(r: &Res<Vec<BlueGreen>>, speed: f64) {
    println!();
    println!(
        "== 4. blue/green with a verification gate at POST_TEST_TRAFFIC_SHIFT (tests/fixtures/deploy/web-bg: BLUE_GREEN, desired 2, 2-minute bake; sandbox speed x{speed}; each run creates the service with v1, then deploys v2, measured)"
    );
    let runs = match r {
        Err(e) => {
            println!("   FAILED: {e}");
            return;
        }
        Ok(runs) => runs,
    };
    println!("   n={} runs, wall seconds", runs.len());
    println!(
        "1. hook AWAITING_ACTION (probe, every {} ms) -> gate_started:  {}",
        BG_PROBE.as_millis(),
        p50_max(runs, |b| b.hook_to_gate)
    );
    println!(
        "   hook's start -> cortado's next DescribeServiceDeployments: {}",
        p50_max(runs, |b| b.hook_to_poll)
    );
    println!(
        "   that call's answer -> gate_started:                         {}",
        p50_max(runs, |b| b.poll_to_gate)
    );
    println!(
        "2. gate exit (gate_started + duration_secs) -> ContinueServiceDeployment: {}",
        p50_max_ms(runs, |b| b.exit_to_continue)
    );
    println!(
        "   gate_finished -> ContinueServiceDeployment (signed; gate_finished follows the answer): {}",
        p50_max_ms(runs, |b| b.finished_to_continue)
    );
    for (i, b) in runs.iter().enumerate() {
        println!(
            "   run {}: calls between gate exit and ContinueServiceDeployment: {}",
            i + 1,
            if b.calls_before_continue.is_empty() {
                "none".to_string()
            } else {
                b.calls_before_continue.join(", ")
            }
        );
    }
    println!(
        "   the gate's own run time:                                     {}",
        p50_max_ms(runs, |b| b.gate_secs)
    );
    println!(
        "3. service deployment SUCCESSFUL (probe) -> verdict:          {}",
        p50_max(runs, |b| b.successful_to_verdict)
    );
    println!(
        "   finishedAt -> cortado's next DescribeServiceDeployments:     {}",
        p50_max(runs, |b| b.successful_to_poll)
    );
    println!(
        "   that call's answer -> verdict:                              {}",
        p50_max(runs, |b| b.poll_to_verdict)
    );
    println!(
        "   (ContinueServiceDeployment -> SUCCESSFUL, ECS's part:       {})",
        p50_max(runs, |b| b.continue_to_successful)
    );
    println!(
        "total: cortado start -> exit {}; deployment_started -> verdict {}",
        p50_max(runs, |b| Some(b.total)),
        p50_max(runs, |b| b.started_to_verdict)
    );
    let mut order: Vec<String> = Vec::new();
    for b in runs {
        for (s, _) in &b.stages {
            if !order.contains(s) {
                order.push(s.clone());
            }
        }
    }
    let stages = order
        .iter()
        .map(|s| {
            let at: Vec<f64> = runs
                .iter()
                .filter_map(|b| b.stages.iter().find(|(x, _)| x == s).map(|(_, t)| *t))
                .collect();
            format!("{s} {:.2}", pct(&sorted(&at), 0.5))
        })
        .collect::<Vec<_>>()
        .join(", ");
    println!("   stages first seen by the probe (s after deployment_started, p50): {stages}");
    let mut ops = BTreeMap::new();
    for b in runs {
        add_ops(&mut ops, &b.ops);
    }
    let minutes: f64 = runs.iter().map(|b| b.minutes).sum();
    println!(
        "   API calls per deploy (mean over the whole run) by operation: {}",
        ops_line(&ops, runs.len() as f64)
    );
    println!(
        "   the same per service-minute (wall; {:.1} s a run at x{speed}): {}",
        minutes * 60.0 / runs.len().max(1) as f64,
        ops_line(&ops, minutes)
    );
    let gaps: Vec<f64> = runs.iter().flat_map(|b| b.gaps.iter().copied()).collect();
    println!(
        "   gaps between cortado's DescribeServiceDeployments: {}",
        gaps_line(&gaps)
    );
    println!(
        "   probe lag behind the event (resolution): hook {}; SUCCESSFUL {}; {} looks a run",
        p50_max(runs, |b| b.hook_probe_lag),
        p50_max(runs, |b| b.successful_probe_lag),
        runs.iter().map(|b| b.probe_looks).max().unwrap_or(0)
    );
    for (i, b) in runs.iter().enumerate() {
        if b.hook_to_gate.is_none() || b.successful_to_verdict.is_none() {
            println!(
                "   note: run {}: a figure is missing (no hook seen, no gate, or no SUCCESSFUL); the probe saw {}",
                i + 1,
                b.last_seen
            );
        }
    }
}
