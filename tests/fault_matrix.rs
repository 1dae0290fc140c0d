//! The fault matrix: every fault scenario, run many times on different sandbox seeds, and a
//! table of how often cortado got it right.
//!
//! Each run is the real `cortado` binary against a sandbox of its own (seeded PRNG: task
//! timings, IDs, API fault draws): `v1` creates the service, then `v2` carrying the fault is
//! deployed and judged on three counts, each against what the scenario must produce:
//!
//! - **verdict**: the `status` of the run's result (`succeeded`, `rolled-back`, `timed-out`,
//!   `cancelled`, `failed`, `rollback-failed`);
//! - **exit code**: the documented code for that verdict;
//! - **serving**: right after cortado exits, read through the SDK (never through cortado's
//!   words), the expected revision is PRIMARY with all its desired tasks running, no other
//!   deployment runs a task, and the load balancer counts exactly that many healthy targets.
//!   Scenarios that leave a service in flux on purpose (another actor's deployment, a
//!   rollback that AWS refused) check instead that cortado did not claim otherwise.
//!
//! Printed (by the driver it shares with the incident matrix, `tests/common/matrix.rs`): one
//! Markdown table row per scenario (runs, right verdicts, right exit codes, right end states,
//! median wall time and API calls of the measured deploy), then a `test result:` line in
//! libtest's format, so `cargo test` counts the runs. Exits 1 if any run was wrong, listing
//! each wrong run with its seed (rerun one with `-- --seed N NAME`).
//!
//! ```text
//! cargo test --locked --test fault_matrix                       # 3 seeds (CI)
//! CORTADO_MATRIX_SEEDS=20 cargo test --locked --test fault_matrix  # the README's table
//! cargo test --locked --test fault_matrix -- --seeds 20 --jobs 6 throttl   # some scenarios
//! ```
//!
//! Knobs: `--seeds N` / `CORTADO_MATRIX_SEEDS` (default 3), `--seed N` (that one seed only),
//! `--jobs N` / `CORTADO_MATRIX_JOBS` (runs at once, default 4), free words filter scenario
//! names by substring. The cortado binary is the one cargo built for this test.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::matrix::{self, Case, Observed, Serving, bounded, broken, observe};
use common::*;

fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "no fault (baseline)",
            code: 0,
            status: "succeeded",
            serving: Serving::Alone(2),
            run: |seed| Box::pin(simple(seed, "v2", &[], Api::None)),
        },
        Case {
            name: "crash loop",
            code: 3,
            status: "rolled-back",
            serving: Serving::Alone(1),
            run: |seed| Box::pin(simple(seed, "v2--crash-20s", &[], Api::None)),
        },
        Case {
            name: "image pull failure",
            code: 3,
            status: "rolled-back",
            serving: Serving::Alone(1),
            run: |seed| Box::pin(simple(seed, "v2--pull-fail", &[], Api::None)),
        },
        Case {
            name: "image missing from ECR",
            code: 3,
            status: "rolled-back",
            serving: Serving::Alone(1),
            run: |seed| Box::pin(simple(seed, "v2-never-pushed", &[], Api::None)),
        },
        Case {
            name: "container health check fails",
            code: 3,
            status: "rolled-back",
            serving: Serving::Alone(1),
            run: |seed| Box::pin(simple(seed, "v2--unhealthy", &[], Api::None)),
        },
        Case {
            name: "ELB health check fails",
            code: 3,
            status: "rolled-back",
            serving: Serving::Alone(1),
            run: |seed| Box::pin(simple(seed, "v2--elb-unhealthy", &[], Api::None)),
        },
        Case {
            name: "slow start past the grace period (healthy)",
            code: 0,
            status: "succeeded",
            serving: Serving::Alone(2),
            run: |seed| Box::pin(simple(seed, "v2--slow-start-120s", &[], Api::None)),
        },
        Case {
            name: "timeout (--timeout 3s)",
            code: 6,
            status: "timed-out",
            serving: Serving::Alone(1),
            run: |seed| {
                Box::pin(simple(
                    seed,
                    "v2--slow-start-1h",
                    &["--timeout", "3s"],
                    Api::None,
                ))
            },
        },
        Case {
            name: "concurrent external deploy",
            code: 4,
            status: "failed",
            serving: Serving::Flux,
            run: |seed| Box::pin(superseded(seed)),
        },
        Case {
            name: "scaled to zero during the deploy",
            code: 0,
            status: "succeeded",
            serving: Serving::Alone(2),
            run: |seed| Box::pin(scaled_to_zero(seed)),
        },
        Case {
            name: "50% throttling",
            code: 0,
            status: "succeeded",
            serving: Serving::Alone(2),
            run: |seed| Box::pin(simple(seed, "v2", &[], Api::Throttle(0.5))),
        },
        Case {
            name: "10% server errors (5xx)",
            code: 0,
            status: "succeeded",
            serving: Serving::Alone(2),
            run: |seed| Box::pin(simple(seed, "v2", &[], Api::Errors(0.1))),
        },
        Case {
            name: "10% dropped connections",
            code: 0,
            status: "succeeded",
            serving: Serving::Alone(2),
            run: |seed| Box::pin(simple(seed, "v2", &[], Api::Drop(0.1))),
        },
        Case {
            name: "2 s latency on every call",
            code: 0,
            status: "succeeded",
            serving: Serving::Alone(2),
            run: |seed| Box::pin(simple(seed, "v2", &[], Api::Latency(2000))),
        },
        Case {
            name: "SIGINT mid-deploy",
            code: 130,
            status: "cancelled",
            serving: Serving::Alone(1),
            run: |seed| Box::pin(signalled(seed, "INT")),
        },
        Case {
            name: "SIGTERM mid-deploy",
            code: 130,
            status: "cancelled",
            serving: Serving::Alone(1),
            run: |seed| Box::pin(signalled(seed, "TERM")),
        },
        Case {
            name: "rollback that itself fails",
            code: 5,
            status: "rollback-failed",
            serving: Serving::Flux,
            run: |seed| Box::pin(rollback_refused(seed)),
        },
        Case {
            name: "alarm rollback",
            code: 3,
            status: "rolled-back",
            serving: Serving::Alone(1),
            run: |seed| Box::pin(alarm(seed)),
        },
        Case {
            name: "blue/green, gate passes (baseline)",
            code: 0,
            status: "succeeded",
            serving: Serving::Alone(2),
            run: |seed| Box::pin(blue_green(seed, "v2")),
        },
        Case {
            name: "blue/green gate failure",
            code: 3,
            status: "rolled-back",
            serving: Serving::Alone(1),
            run: |seed| Box::pin(blue_green(seed, "v2-gatefail")),
        },
        Case {
            name: "blue/green, broken green",
            code: 3,
            status: "rolled-back",
            serving: Serving::Alone(1),
            run: |seed| Box::pin(blue_green(seed, "v2--crash-20s")),
        },
    ]
}

// ------------------------------------------------------------------------------ scenarios

/// API faults switched on for the measured deploy only.
#[derive(Clone, Copy)]
enum Api {
    None,
    Throttle(f64),
    Errors(f64),
    Drop(f64),
    Latency(u64),
}

impl Api {
    fn patch(self) -> Option<FaultsPatch> {
        let api = match self {
            Api::None => return None,
            Api::Throttle(r) => ApiFaults {
                throttle_rate: r,
                ..ApiFaults::default()
            },
            Api::Errors(r) => ApiFaults {
                error_rate: r,
                ..ApiFaults::default()
            },
            Api::Drop(r) => ApiFaults {
                drop_rate: r,
                ..ApiFaults::default()
            },
            Api::Latency(ms) => ApiFaults {
                latency_ms: ms,
                ..ApiFaults::default()
            },
        };
        Some(FaultsPatch {
            api: Some(api),
            ..FaultsPatch::default()
        })
    }
}

/// The images every rolling scenario's ECR holds (a `v2-never-pushed` tag is missing).
const IMAGES: &[&str] = &[
    "v1",
    "v2",
    "v2--crash-20s",
    "v2--pull-fail",
    "v2--unhealthy",
    "v2--elb-unhealthy",
    "v2--slow-start-120s",
    "v2--slow-start-1h",
];

/// A guarded rolling service on revision 1 (deployed before the measurement).
async fn guarded(seed: u64) -> Result<Scenario, Observed> {
    let s = Scenario::with_seed("web-guarded", FAST, IMAGES, seed).await;
    let first = bounded(s.command("v1", &["deploy"])).await;
    if first.code != 0 {
        return Err(broken("the v1 deploy failed", &first));
    }
    Ok(s)
}

/// Deploys `tag` with `args`, under `api` faults.
async fn simple(seed: u64, tag: &str, args: &[&str], api: Api) -> Observed {
    let s = match guarded(seed).await {
        Ok(s) => s,
        Err(o) => return o,
    };
    if let Some(patch) = api.patch() {
        s.sb.control().update_faults(patch);
    }
    let mark = s.mark();
    let mut argv = args.to_vec();
    argv.push("deploy");
    let run = bounded(s.command(tag, &argv)).await;
    let calls = s.requests_after(mark).len();
    s.sb.control().update_faults(FaultsPatch {
        clear: true,
        ..FaultsPatch::default()
    });
    observe(&s, &run, calls, Ok(())).await
}

/// Another actor forces a new deployment while cortado follows a slow one: cortado must
/// report it superseded (exit 4) and leave the other deployment alone (no write after it).
async fn superseded(seed: u64) -> Observed {
    let s = match guarded(seed).await {
        Ok(s) => s,
        Err(o) => return o,
    };
    let mark = s.mark();
    let bg = s.start_background("v2--slow-start-1h", &["deploy"]).await;
    let theirs = s.other_actor_deploys().await;
    let after = s.mark();
    let run = bg.finish(Duration::from_secs(120)).await;
    let calls = s.requests_after(mark).len();
    let check = match theirs {
        Err(e) => Err(format!("the other actor's UpdateService failed: {e}")),
        Ok(_) => {
            let writes = mutating(&s.requests_after(after));
            if writes.is_empty() {
                Ok(())
            } else {
                Err(format!(
                    "cortado wrote after the other deployment: {writes:?}"
                ))
            }
        }
    };
    observe(&s, &run, calls, check).await
}

/// Someone sets the desired count to 0 while our deployment runs: ECS completes the
/// deployment with no task, cortado's verdict is success and the revision is ours.
async fn scaled_to_zero(seed: u64) -> Observed {
    let s = match guarded(seed).await {
        Ok(s) => s,
        Err(o) => return o,
    };
    let mark = s.mark();
    let bg = s.start_background("v2--slow-start-120s", &["deploy"]).await;
    let scaled = s
        .ecs
        .update_service()
        .cluster(CLUSTER)
        .service(SERVICE)
        .desired_count(0)
        .send()
        .await;
    let run = bg.finish(Duration::from_secs(120)).await;
    let calls = s.requests_after(mark).len();
    let mut o = observe(&s, &run, calls, Ok(())).await;
    if let Err(e) = scaled {
        o.flux_ok = Err(format!("the scale-in call failed: {e}"));
    }
    o
}

/// SIGINT or SIGTERM half a second into a slow deploy: cancelled (exit 130), rolled back.
async fn signalled(seed: u64, signal: &str) -> Observed {
    let s = match guarded(seed).await {
        Ok(s) => s,
        Err(o) => return o,
    };
    let mark = s.mark();
    let bg = s.start_background("v2--slow-start-1h", &["deploy"]).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    if let Some(pid) = bg.child.id() {
        let _ = std::process::Command::new("kill")
            .args([&format!("-{signal}"), &pid.to_string()])
            .status();
    }
    let run = bg.finish(Duration::from_secs(60)).await;
    let calls = s.requests_after(mark).len();
    observe(&s, &run, calls, Ok(())).await
}

/// No circuit breaker, a crash loop, and every rollback call refused: exit 5, and the
/// result must say the rollback failed (never that the service is fine).
async fn rollback_refused(seed: u64) -> Observed {
    let s = Scenario::with_seed("web-nocb", FAST, &["v1", "v2--crash-20s"], seed).await;
    let first = bounded(s.command("v1", &["deploy"])).await;
    if first.code != 0 {
        return broken("the v1 deploy failed", &first);
    }
    let mark = s.mark();
    let bg = s.start_background("v2--crash-20s", &["deploy"]).await;
    s.refuse_rollbacks();
    let run = bg.finish(Duration::from_secs(120)).await;
    let calls = s.requests_after(mark).len();
    let detail = run
        .events_of("result")
        .first()
        .and_then(|r| r["services"][0]["detail"].as_str().map(str::to_string))
        .unwrap_or_default();
    let check = if detail.contains("ROLLBACK FAILED") {
        Ok(())
    } else {
        Err(format!(
            "the result does not say ROLLBACK FAILED: {detail:?}"
        ))
    };
    observe(&s, &run, calls, check).await
}

/// The deployment's CloudWatch alarm fires while it runs: ECS rolls back, exit 3.
async fn alarm(seed: u64) -> Observed {
    let s = match guarded(seed).await {
        Ok(s) => s,
        Err(o) => return o,
    };
    let mark = s.mark();
    let bg = s.start_background("v2--slow-start-1h", &["deploy"]).await;
    s.sb.control().update_faults(FaultsPatch {
        alarms: BTreeMap::from([("web-5xx".to_string(), "ALARM".to_string())]),
        ..FaultsPatch::default()
    });
    let run = bg.finish(Duration::from_secs(120)).await;
    let calls = s.requests_after(mark).len();
    observe(&s, &run, calls, Ok(())).await
}

/// The `web-bg` fixture (BLUE_GREEN, a gate at POST_TEST_TRAFFIC_SHIFT) deploying `tag`.
async fn blue_green(seed: u64, tag: &str) -> Observed {
    let s = Scenario::blue_green_seeded("BLUE_GREEN", FAST, &["v1", tag], seed).await;
    let first = bounded(s.command("v1", &["deploy"])).await;
    if first.code != 0 {
        return broken("the v1 deploy failed", &first);
    }
    let mark = s.mark();
    let run = bounded(s.command(tag, &["deploy"])).await;
    let calls = s.requests_after(mark).len();
    observe(&s, &run, calls, Ok(())).await
}

// ---------------------------------------------------------------------------------- driver

#[tokio::main(flavor = "multi_thread", worker_threads = 4)]
async fn main() {
    matrix::run("fault matrix", cases()).await;
}
