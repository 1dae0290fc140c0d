//! Benchmark program for monorepo scale: one `cortado deploy` run over 1, 50 and 200 services
//! against an in-process sandbox that enforces ECS's documented request buckets
//! (`Throttle::Aws`). It prints figures against the goals of the monorepo issue; it never
//! asserts timings.
//!
//! Run (a debug build avoids a long release build; the output names the binary used):
//!
//! ```text
//! cargo bench --profile dev --bench monorepo_scale
//! ```
//!
//! Knobs (environment): `CORTADO_BIN` (the cortado binary, instead of the one next to the
//! bench), `CORTADO_BENCH_SPEED` (sandbox time compression, default 10, the same for every
//! size), `CORTADO_BENCH_SIZES` (default `1,50,200`), `CORTADO_BENCH_FORCE=1` (deploy with
//! `--force-new-deployment` and an unchanged task definition: no RegisterTaskDefinition, so
//! the run shows the engine without ECS's registration bucket), and for measuring the pacing
//! itself, passed on to cortado: `CORTADO_API_PACING=off` (no client-side pacer) and
//! `CORTADO_RETRY_MODE=adaptive` (the SDK's adaptive retry instead of standard).
//!
//! Setting: every size gets a fresh sandbox (so each run starts with full buckets, as an
//! account nobody else uses), seeded with `n` settled Fargate services in cluster `bench`
//! (desired 4, no load balancer, minimumHealthyPercent 100 / maximumPercent 200, circuit
//! breaker with rollback), each with a config of its own under `svc-NNN/cortado.yml`. The run
//! deploys image `v2` to all of them at once: `cortado -c 'DIR/*/cortado.yml' deploy`, plus
//! `--parallel n` when the binary has that flag (so every service is in flight together).
//!
//! Figures per size:
//! - wall time of the cortado process and its ratio to one service alone (goal <= 1.2x at 200);
//!   beside it, the least time ECS's buckets allow for the run's writes (RegisterTaskDefinition
//!   20 then 1 a second, UpdateService 50 then 5 a second): no client can be faster;
//! - API calls per service-minute: requests in the sandbox's log during the run, divided by
//!   services x wall minutes (goal <= 6 at 50, <= 3 at 200), and calls by operation;
//! - ThrottlingExceptions surfaced to the user: cortado's JSON lines (warnings, errors, the
//!   result) and stderr lines that mention throttling or "Rate exceeded" (goal 0); and
//!   ThrottlingExceptions the sandbox answered (informational: the SDK retries them);
//! - peak RSS of the cortado process: VmHWM from /proc/PID/status, read every 20 ms while it
//!   runs (goal <= 60 MB);
//! - outcomes: how many services the result calls succeeded (all should).

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod common;

use common::{Res, Running, env_f64, locate_binary, or_exit, runtime, sandbox_env, tail, wall};
use cortado_sandbox::{self as sandbox, Options, Sandbox, Seed, Throttle};
use serde_json::{Value, json};

const CLUSTER: &str = "bench";
const REGISTRY: &str = "123456789012.dkr.ecr.us-east-1.amazonaws.com";
const REPO: &str = "bench";
const DESIRED: u32 = 4;
const POLL: Duration = Duration::from_millis(20);

fn main() {
    let speed = env_f64("CORTADO_BENCH_SPEED", 10.0);
    let force = std::env::var("CORTADO_BENCH_FORCE").is_ok_and(|v| v == "1");
    let sizes: Vec<usize> = std::env::var("CORTADO_BENCH_SIZES")
        .unwrap_or_else(|_| "1,50,200".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .filter(|n| *n > 0)
        .collect();
    let bin = or_exit(locate_binary());
    let rt = or_exit(runtime());
    let parallel = has_parallel_flag(&bin);
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    eprintln!(
        "monorepo_scale bench: binary {} ({}), speed x{speed}, sizes {sizes:?}, {cores} cores",
        bin.display(),
        profile_of(&bin)
    );
    let started = Instant::now();
    let mut rows: Vec<(usize, Res<Run>)> = Vec::new();
    for &n in &sizes {
        eprintln!("  {n} service(s)...");
        let r = run_size(&rt, &bin, n, speed, force, parallel);
        if let Err(e) = &r {
            eprintln!("  {n}: {e}");
        }
        rows.push((n, r));
    }
    print_report(
        &rows,
        &bin,
        speed,
        force,
        parallel,
        cores,
        started.elapsed(),
    );
}

/// The build profile a binary's path suggests (`target/debug/cortado`, `target/release/...`).
fn profile_of(bin: &Path) -> &'static str {
    let dir = bin
        .parent()
        .and_then(Path::file_name)
        .and_then(|n| n.to_str())
        .unwrap_or("");
    match dir {
        "release" => "release profile",
        "debug" => "debug profile",
        _ => "profile unknown",
    }
}

/// Whether `cortado deploy --help` offers `--parallel` (a bound on services in flight).
fn has_parallel_flag(bin: &Path) -> bool {
    Command::new(bin)
        .args(["deploy", "--help"])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).contains("--parallel"))
        .unwrap_or(false)
}

/// What one cortado run did.
struct Run {
    wall_secs: f64,
    exit: Option<i32>,
    peak_rss_kb: Option<u64>,
    /// Requests in the sandbox's log during the run, by operation.
    ops: BTreeMap<String, usize>,
    /// ThrottlingException answers by operation.
    throttled: BTreeMap<String, usize>,
    /// Lines of cortado's output (JSON lines and stderr) that mention throttling.
    surfaced: Vec<String>,
    /// Outcome label -> services.
    outcomes: BTreeMap<String, usize>,
}

impl Run {
    fn calls(&self) -> usize {
        self.ops.values().sum()
    }
}

fn service_name(i: usize) -> String {
    format!("svc-{i:03}")
}

fn task_definition(name: &str, tag: &str) -> Value {
    json!({
        "family": name,
        "cpu": "256",
        "memory": "512",
        "networkMode": "awsvpc",
        "requiresCompatibilities": ["FARGATE"],
        "executionRoleArn": "arn:aws:iam::123456789012:role/bench-execution",
        "containerDefinitions": [{
            "name": "app",
            "image": format!("{REGISTRY}/{REPO}:{tag}"),
            "essential": true
        }]
    })
}

fn service_definition() -> Value {
    json!({
        "launchType": "FARGATE",
        "desiredCount": DESIRED,
        "deploymentConfiguration": {
            "minimumHealthyPercent": 100,
            "maximumPercent": 200,
            "deploymentCircuitBreaker": {"enable": true, "rollback": true}
        },
        "networkConfiguration": {
            "awsvpcConfiguration": {
                "subnets": ["subnet-0a1b2c3d"],
                "securityGroups": ["sg-0a1b2c3d"],
                "assignPublicIp": "DISABLED"
            }
        }
    })
}

/// Writes `n` configs under `dir` and returns the seed of the matching settled services.
fn write_configs(dir: &Path, n: usize) -> Res<Seed> {
    let mut services = Vec::new();
    for i in 0..n {
        let name = service_name(i);
        let sdir = dir.join(&name);
        std::fs::create_dir_all(&sdir)
            .map_err(|e| format!("cannot create {}: {e}", sdir.display()))?;
        // The image tag is a template: `IMAGE_TAG` picks the image at deploy time.
        let task = task_definition(&name, "{{ env `IMAGE_TAG` `v1` }}");
        let files = [
            (
                "cortado.yml",
                format!(
                    "region: us-east-1\ncluster: {CLUSTER}\nservice: {name}\nservice_definition: service.json\ntask_definition: task.json\ntimeout: 60m\n"
                ),
            ),
            (
                "task.json",
                serde_json::to_string_pretty(&task).unwrap_or_default(),
            ),
            (
                "service.json",
                serde_json::to_string_pretty(&service_definition()).unwrap_or_default(),
            ),
        ];
        for (file, text) in files {
            let p = sdir.join(file);
            std::fs::write(&p, text).map_err(|e| format!("cannot write {}: {e}", p.display()))?;
        }
        let mut svc = service_definition();
        svc["cluster"] = json!(CLUSTER);
        svc["serviceName"] = json!(name);
        svc["taskDefinition"] = task_definition(&name, "v1");
        services.push(svc);
    }
    let seed = json!({
        "clusters": [CLUSTER],
        "images": [format!("{REGISTRY}/{REPO}:v1"), format!("{REGISTRY}/{REPO}:v2")],
        "services": services,
    });
    Seed::parse(&seed.to_string(), &dir.join("seed.json"))
        .map_err(|e| format!("the bench's seed is not valid: {e}"))
}

fn run_size(
    rt: &tokio::runtime::Runtime,
    bin: &Path,
    n: usize,
    speed: f64,
    force: bool,
    parallel: bool,
) -> Res<Run> {
    let dir =
        std::env::temp_dir().join(format!("cortado-bench-monorepo-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let seed = write_configs(&dir, n)?;
    let sb: Sandbox = rt
        .block_on(sandbox::start(Options {
            speed,
            seed: Some(seed),
            throttle: Throttle::Aws,
            ..Options::default()
        }))
        .map_err(|e| format!("cannot start the sandbox: {e}"))?;
    let ctl = sb.control();
    let mut cmd = Command::new(bin);
    cmd.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .envs(sandbox_env(&sb.endpoint()))
        .env("IMAGE_TAG", if force { "v1" } else { "v2" })
        .envs(
            ["CORTADO_API_PACING", "CORTADO_RETRY_MODE"]
                .iter()
                .filter_map(|k| std::env::var(k).ok().map(|v| (*k, v))),
        )
        .args(["--output", "json", "-c"])
        .arg(format!("{}/*/cortado.yml", dir.display()))
        .arg("deploy");
    if parallel {
        cmd.arg("--parallel").arg(n.to_string());
    }
    if force {
        cmd.arg("--force-new-deployment");
    }
    let start = wall();
    let t0 = Instant::now();
    let mut run =
        Running::spawn(&mut cmd).map_err(|e| format!("cannot run {}: {e}", bin.display()))?;
    let pid = run.child.id();
    let limit = Duration::from_secs(3600);
    let mut peak: Option<u64> = None;
    let exit = loop {
        if let Some(kb) = vm_hwm_kb(pid) {
            peak = Some(peak.map_or(kb, |p| p.max(kb)));
        }
        match run.child.try_wait() {
            Ok(Some(status)) => break status.code(),
            Ok(None) => {}
            Err(e) => return Err(format!("cannot wait for cortado: {e}")),
        }
        if t0.elapsed() >= limit {
            run.kill();
            return Err(format!(
                "cortado did not finish within {} s",
                limit.as_secs()
            ));
        }
        std::thread::sleep(POLL);
    };
    let wall_secs = t0.elapsed().as_secs_f64();
    let end = wall();
    let (lines, err) = run.finish();
    let mentions = |s: &str| {
        let l = s.to_ascii_lowercase();
        l.contains("throttl") || l.contains("rate exceeded")
    };
    let mut surfaced: Vec<String> = lines.iter().filter(|l| mentions(l)).cloned().collect();
    surfaced.extend(err.lines().filter(|l| mentions(l)).map(str::to_string));
    let mut outcomes = BTreeMap::new();
    let mut saw_result = false;
    for line in &lines {
        let Ok(v) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        if v.get("event").and_then(Value::as_str) != Some("result") {
            continue;
        }
        saw_result = true;
        for s in v
            .get("services")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let o = s.get("outcome").and_then(Value::as_str).unwrap_or("?");
            *outcomes.entry(o.to_string()).or_default() += 1;
        }
    }
    if !saw_result {
        return Err(format!(
            "cortado exited ({exit:?}) without a result line. Last stderr:\n{}",
            tail(&err, 10)
        ));
    }
    let mut ops = BTreeMap::new();
    let mut throttled = BTreeMap::new();
    for r in ctl.requests() {
        if r.wall_time < start || r.wall_time > end + 0.5 {
            continue;
        }
        *ops.entry(r.operation.clone()).or_default() += 1;
        if r.error.as_deref() == Some("ThrottlingException") {
            *throttled.entry(r.operation).or_default() += 1;
        }
    }
    drop(sb);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(Run {
        wall_secs,
        exit,
        peak_rss_kb: peak,
        ops,
        throttled,
        surfaced,
        outcomes,
    })
}

/// The high-water mark of a process's resident set (`VmHWM` in /proc/PID/status), in kB.
fn vm_hwm_kb(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
}

/// The least wall time ECS's buckets allow for `n` services' writes: registrations (20 at
/// once, then 1 a second) and service updates (50, then 5 a second), the slower of the two.
fn bucket_floor(n: usize, force: bool) -> f64 {
    let after = |cap: f64, rate: f64| ((n as f64 - cap).max(0.0)) / rate;
    let updates = after(50.0, 5.0);
    if force {
        updates
    } else {
        after(20.0, 1.0).max(updates)
    }
}

fn print_report(
    rows: &[(usize, Res<Run>)],
    bin: &Path,
    speed: f64,
    force: bool,
    parallel: bool,
    cores: usize,
    total: Duration,
) {
    println!();
    println!(
        "cortado monorepo scale — {cores} cores, sandbox speed x{speed}, ECS request buckets on (wall-clock), total bench time {:.0} s",
        total.as_secs_f64()
    );
    println!("binary: {} ({})", bin.display(), profile_of(bin));
    println!(
        "client: pacing {}, retry mode {}",
        std::env::var("CORTADO_API_PACING").unwrap_or_else(|_| "on".into()),
        std::env::var("CORTADO_RETRY_MODE").unwrap_or_else(|_| "standard".into())
    );
    println!(
        "setting: {DESIRED} tasks a service, no load balancer, rolling 100/200, breaker+rollback; one run per size, {}; {}",
        if parallel {
            "--parallel = services (all in flight)"
        } else {
            "no --parallel flag in this binary"
        },
        if force {
            "--force-new-deployment, task definitions unchanged"
        } else {
            "image v1 -> v2 (a new revision each)"
        }
    );
    let single = rows
        .iter()
        .find(|(n, _)| *n == 1)
        .and_then(|(_, r)| r.as_ref().ok())
        .map(|r| r.wall_secs);
    println!();
    println!(
        "{:>8}  {:>8}  {:>9}  {:>10}  {:>8}  {:>15}  {:>9}  {:>9}  {:>9}  outcomes",
        "services",
        "wall s",
        "ratio",
        "floor s",
        "calls",
        "calls/svc-min",
        "surfaced",
        "answered",
        "peak MB"
    );
    for (n, r) in rows {
        match r {
            Err(e) => println!("{n:>8}  error: {e}"),
            Ok(r) => {
                let minutes = r.wall_secs / 60.0;
                let per = r.calls() as f64 / (*n as f64 * minutes);
                let ratio = single.map_or("-".to_string(), |s| format!("{:.2}x", r.wall_secs / s));
                let outcomes = r
                    .outcomes
                    .iter()
                    .map(|(o, c)| format!("{c} {o}"))
                    .collect::<Vec<_>>()
                    .join(", ");
                println!(
                    "{n:>8}  {:>8.1}  {ratio:>9}  {:>10.0}  {:>8}  {per:>15.1}  {:>9}  {:>9}  {:>9}  {outcomes} (exit {})",
                    r.wall_secs,
                    bucket_floor(*n, force),
                    r.calls(),
                    r.surfaced.len(),
                    r.throttled.values().sum::<usize>(),
                    r.peak_rss_kb
                        .map_or("-".to_string(), |kb| format!("{:.1}", kb as f64 / 1024.0)),
                    r.exit.map_or("signal".to_string(), |c| c.to_string()),
                );
            }
        }
    }
    println!();
    println!(
        "goals: ratio <= 1.2x at 200; calls/svc-min <= 6 at 50, <= 3 at 200; surfaced 0; peak <= 60 MB"
    );
    println!(
        "floor: the least wall time ECS's documented buckets allow for the run's writes (RegisterTaskDefinition 20 then 1/s, UpdateService 50 then 5/s)"
    );
    println!(
        "surfaced: cortado output lines mentioning throttling; answered: ThrottlingExceptions the sandbox sent (the SDK retries them)"
    );
    for (n, r) in rows {
        let Ok(r) = r else { continue };
        let ops = r
            .ops
            .iter()
            .map(|(o, c)| format!("{o} {c}"))
            .collect::<Vec<_>>()
            .join(", ");
        println!();
        println!("{n} service(s), calls by operation: {ops}");
        if !r.throttled.is_empty() {
            println!("  throttled by the sandbox: {:?}", r.throttled);
        }
        for l in r.surfaced.iter().take(3) {
            println!("  surfaced: {}", l.chars().take(200).collect::<String>());
        }
    }
}
