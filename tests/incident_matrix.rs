//! The incident matrix: the commands a person types during an incident — `rollback`,
//! `scale`, `wait`, `continue` — after the histories that lead to them in practice, each run
//! on many sandbox seeds, and a table of how often cortado got it right.
//!
//! Each run is the real `cortado` binary against a sandbox of its own: a history is played
//! (deploys that succeed, fail and are rolled back by cortado or by ECS's circuit breaker,
//! deploys left in flight, revisions registered by `register` and `run --task-def` that never
//! served, same-revision redeploys, a target revision broken since, another actor's
//! deployment; rolling, blue/green, CodeDeploy and Express Mode services), then the incident
//! command is measured and judged on three counts: the `status` of its result, its exit code,
//! and the end state read through the SDK (the expected revision PRIMARY, serving alone and
//! healthy, plus each case's own check: a task count, no write by cortado).
//!
//! ```text
//! cargo test --locked --test incident_matrix                          # 3 seeds (CI)
//! CORTADO_MATRIX_SEEDS=20 cargo test --locked --test incident_matrix  # the README's table
//! cargo test --locked --test incident_matrix -- --seed 4 scale        # one seed, some cases
//! ```
//!
//! The driver (knobs, table, `test result:` line) is shared with the fault matrix:
//! `tests/common/matrix.rs`.

mod common;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use aws_sdk_ecs::types::ServiceDeploymentStatus;
use common::matrix::{self, Case, Observed, Serving, bounded, broken, observe, observe_service};
use common::*;

fn cases() -> Vec<Case> {
    let case = |name, code, status, serving, run| Case {
        name,
        code,
        status,
        serving,
        run,
    };
    use Serving::{Alone, Flux};
    vec![
        case(
            "rollback after a good deploy",
            0,
            "succeeded",
            Alone(1),
            |s| Box::pin(rollback_after_good(s)),
        ),
        case(
            "rollback after a failed deploy cortado rolled back",
            0,
            "succeeded",
            Alone(1),
            |s| Box::pin(rollback_after_rolled_back(s)),
        ),
        case(
            "rollback after a failed deploy and its fix",
            0,
            "succeeded",
            Alone(1),
            |s| Box::pin(rollback_after_fix(s)),
        ),
        case(
            "rollback after ECS's breaker rolled a deploy back",
            0,
            "succeeded",
            Alone(1),
            |s| Box::pin(rollback_after_breaker(s)),
        ),
        case(
            "rollback past one-off and unused registered revisions",
            0,
            "succeeded",
            Alone(1),
            |s| Box::pin(rollback_past_registered(s)),
        ),
        case(
            "rollback of a deploy in flight",
            0,
            "succeeded",
            Alone(2),
            |s| Box::pin(rollback_in_flight(s)),
        ),
        case(
            "rollback onto a revision broken since",
            5,
            "rollback-failed",
            Alone(2),
            |s| Box::pin(rollback_onto_broken(s)),
        ),
        case(
            "rollback after a same-revision redeploy",
            0,
            "succeeded",
            Alone(1),
            |s| Box::pin(rollback_after_same_revision(s)),
        ),
        case(
            "rollback of another actor's deployment in flight",
            0,
            "succeeded",
            Alone(2),
            |s| Box::pin(rollback_of_another_actor(s)),
        ),
        case(
            "blue/green same-revision redeploy, gate fails",
            3,
            "rolled-back",
            Alone(2),
            |s| Box::pin(blue_green_same_revision_gate_fails(s)),
        ),
        case(
            "rollback of a blue/green deploy at its PAUSE hook",
            0,
            "succeeded",
            Alone(1),
            |s| Box::pin(paused(s, Paused::Rollback)),
        ),
        case("continue at a PAUSE hook", 0, "succeeded", Alone(2), |s| {
            Box::pin(paused(s, Paused::Continue))
        }),
        case(
            "continue --rollback at a PAUSE hook",
            0,
            "succeeded",
            Alone(1),
            |s| Box::pin(paused(s, Paused::ContinueRollback)),
        ),
        case("continue with nothing waiting", 1, "error", Alone(2), |s| {
            Box::pin(paused(s, Paused::Nothing))
        }),
        case(
            "scale after a failed deploy cortado rolled back",
            0,
            "succeeded",
            Alone(1),
            |s| Box::pin(scale_after_rolled_back(s)),
        ),
        case(
            "scale after ECS's breaker rolled a deploy back",
            0,
            "succeeded",
            Alone(1),
            |s| Box::pin(scale_after_breaker(s)),
        ),
        case(
            "scale during a deploy in flight",
            0,
            "succeeded",
            Alone(2),
            |s| Box::pin(scale_in_flight(s)),
        ),
        case(
            "wait on a deploy in flight",
            0,
            "succeeded",
            Alone(2),
            |s| Box::pin(wait_in_flight(s)),
        ),
        case(
            "wait after ECS's breaker rolled a deploy back",
            3,
            "rolled-back",
            Alone(1),
            |s| Box::pin(wait_after_breaker(s)),
        ),
        case("wait while another actor deploys", 4, "failed", Flux, |s| {
            Box::pin(wait_superseded(s))
        }),
        case(
            "CodeDeploy: rollback after two deploys",
            0,
            "succeeded",
            Alone(1),
            |s| Box::pin(codedeploy_rollback(s)),
        ),
        case(
            "CodeDeploy: wait on a deployment in flight",
            0,
            "succeeded",
            Alone(2),
            |s| Box::pin(codedeploy_wait(s)),
        ),
        case(
            "Express: rollback of a canary in flight",
            0,
            "succeeded",
            Alone(1),
            |s| Box::pin(express_rollback(s)),
        ),
    ]
}

// ------------------------------------------------------------------------------- histories

/// The images the rolling histories use (`-never-pushed` tags are missing from ECR).
const IMAGES: &[&str] = &[
    "v1",
    "v2",
    "v3",
    "v4",
    "v5",
    "v2--crash-20s",
    "v3--crash-20s",
    "v2--slow-start-120s",
    "v2--slow-start-1h",
    "v3--slow-start-1h",
];

/// `cortado <args>` with `TAG=tag`; Err (a wrong run) unless it exits `want`.
async fn step(s: &Scenario, tag: &str, args: &[&str], want: i32) -> Result<Run, Observed> {
    let run = bounded(s.command(tag, args)).await;
    if run.code == want {
        Ok(run)
    } else {
        Err(broken(
            &format!("history step `{}` with TAG={tag}", args.join(" ")),
            &run,
        ))
    }
}

/// The guarded rolling service (`web-guarded`: circuit breaker with rollback, a container
/// health check, an alarm) deployed with each tag in turn, each exiting 0.
async fn guarded(seed: u64, tags: &[&str]) -> Result<Scenario, Observed> {
    let s = Scenario::with_seed("web-guarded", FAST, IMAGES, seed).await;
    for tag in tags {
        step(&s, tag, &["deploy"], 0).await?;
    }
    Ok(s)
}

/// Runs the measured command and reads the end state; `check` is the case's own check.
async fn measure(s: &Scenario, tag: &str, args: &[&str]) -> (Run, usize) {
    let mark = s.mark();
    let run = bounded(s.command(tag, args)).await;
    let calls = s.requests_after(mark).len();
    (run, calls)
}

/// Waits (bounded) until ECS's record says the service's current service deployment is
/// `status`, and every non-PRIMARY deployment has stopped its tasks.
async fn until_current_is(s: &Scenario, service: &str, status: ServiceDeploymentStatus) -> bool {
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(60) {
        let out = s
            .ecs
            .describe_services()
            .cluster(CLUSTER)
            .services(service)
            .send()
            .await;
        if let Some(svc) = out.ok().and_then(|o| o.services().first().cloned()) {
            let quiet = svc
                .deployments()
                .iter()
                .filter(|d| d.status() != Some("PRIMARY"))
                .all(|d| d.running_count() == 0);
            if let Some(arn) = svc.current_service_deployment()
                && let Ok(sd) = s
                    .ecs
                    .describe_service_deployments()
                    .service_deployment_arns(arn)
                    .send()
                    .await
                && sd.service_deployments().first().and_then(|d| d.status()) == Some(&status)
                && quiet
            {
                return true;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

/// A deploy of a crashing image with `--no-wait`, then ECS's breaker rolls it back.
async fn rolled_back_by_breaker(s: &Scenario, tag: &str) -> Result<(), Observed> {
    let run = step(s, tag, &["deploy", "--no-wait"], 0).await?;
    if until_current_is(s, SERVICE, ServiceDeploymentStatus::RollbackSuccessful).await {
        Ok(())
    } else {
        Err(broken("ECS's breaker did not roll the deploy back", &run))
    }
}

/// The service runs exactly `n` tasks (desired and running), read through the SDK.
async fn runs_tasks(s: &Scenario, n: i32) -> Result<(), String> {
    let svc = s.service().await;
    if svc.desired_count() == n && svc.running_count() == n {
        Ok(())
    } else {
        Err(format!(
            "desired {} running {}, not {n}",
            svc.desired_count(),
            svc.running_count()
        ))
    }
}

// ------------------------------------------------------------------------------- rollback

async fn rollback_after_good(seed: u64) -> Observed {
    let s = match guarded(seed, &["v1", "v2"]).await {
        Ok(s) => s,
        Err(o) => return o,
    };
    let (run, calls) = measure(&s, "v2", &["rollback"]).await;
    observe(&s, &run, calls, Ok(())).await
}

async fn rollback_after_rolled_back(seed: u64) -> Observed {
    let s = match guarded(seed, &["v1", "v2"]).await {
        Ok(s) => s,
        Err(o) => return o,
    };
    if let Err(o) = step(&s, "v3--crash-20s", &["deploy"], 3).await {
        return o;
    }
    let (run, calls) = measure(&s, "v2", &["rollback"]).await;
    observe(&s, &run, calls, Ok(())).await
}

/// The issue's history: revision 2 failed (rolled back), revision 3 fixed it. Revision 2
/// never served: the rollback returns to 1.
async fn rollback_after_fix(seed: u64) -> Observed {
    let s = match guarded(seed, &["v1"]).await {
        Ok(s) => s,
        Err(o) => return o,
    };
    if let Err(o) = step(&s, "v2--crash-20s", &["deploy"], 3).await {
        return o;
    }
    if let Err(o) = step(&s, "v3", &["deploy"], 0).await {
        return o;
    }
    let (run, calls) = measure(&s, "v3", &["rollback"]).await;
    observe(&s, &run, calls, Ok(())).await
}

/// Revision 3 was deployed with `--no-wait` and ECS's breaker rolled it back to 2 (its
/// deployment drained): a rollback returns to what ran before 2.
async fn rollback_after_breaker(seed: u64) -> Observed {
    let s = match guarded(seed, &["v1", "v2"]).await {
        Ok(s) => s,
        Err(o) => return o,
    };
    if let Err(o) = rolled_back_by_breaker(&s, "v3--crash-20s").await {
        return o;
    }
    let (run, calls) = measure(&s, "v2", &["rollback"]).await;
    observe(&s, &run, calls, Ok(())).await
}

/// Revisions 2 (`run --task-def`) and 3 (`register`) never served; 4 is deployed. The
/// rollback returns to 1.
async fn rollback_past_registered(seed: u64) -> Observed {
    let s = match guarded(seed, &["v1"]).await {
        Ok(s) => s,
        Err(o) => return o,
    };
    let task_def = fixture("web-guarded").join("ecs-task-def.json");
    let task_def = task_def.to_string_lossy();
    let history: [(&str, Vec<&str>); 3] = [
        ("v4", vec!["run", "--task-def", &task_def, "--no-wait"]),
        ("v5", vec!["register"]),
        ("v2", vec!["deploy"]),
    ];
    for (tag, args) in &history {
        if let Err(o) = step(&s, tag, args, 0).await {
            return o;
        }
    }
    let (run, calls) = measure(&s, "v2", &["rollback"]).await;
    observe(&s, &run, calls, Ok(())).await
}

async fn rollback_in_flight(seed: u64) -> Observed {
    let s = match guarded(seed, &["v1", "v2"]).await {
        Ok(s) => s,
        Err(o) => return o,
    };
    if let Err(o) = step(&s, "v3--slow-start-1h", &["deploy", "--no-wait"], 0).await {
        return o;
    }
    let (run, calls) = measure(&s, "v3--slow-start-1h", &["rollback"]).await;
    observe(&s, &run, calls, Ok(())).await
}

/// Revision 1 served, then its image broke (it crashes now). Rolling back to it fails; ECS's
/// breaker returns to 2 within seconds, and cortado must say so at once: rollback failed
/// (exit 5), revision 2 serving — not wait for a switch that never comes.
async fn rollback_onto_broken(seed: u64) -> Observed {
    let s = match guarded(seed, &["v1", "v2"]).await {
        Ok(s) => s,
        Err(o) => return o,
    };
    s.sb.control().update_faults(FaultsPatch {
        images: [(format!("{REPO}:v1"), "crash-20s".to_string())].into(),
        ..FaultsPatch::default()
    });
    let (run, calls) = measure(&s, "v2", &["rollback"]).await;
    let detail = run.result_detail();
    let check = if detail.contains("ROLLBACK FAILED") && detail.contains("web:2 serves") {
        Ok(())
    } else {
        Err(format!("the result does not say what serves: {detail:?}"))
    };
    observe(&s, &run, calls, check).await
}

async fn rollback_after_same_revision(seed: u64) -> Observed {
    let s = match guarded(seed, &["v1", "v2"]).await {
        Ok(s) => s,
        Err(o) => return o,
    };
    if let Err(o) = step(&s, "v2", &["deploy", "--force-new-deployment"], 0).await {
        return o;
    }
    let (run, calls) = measure(&s, "v2", &["rollback"]).await;
    observe(&s, &run, calls, Ok(())).await
}

/// Another actor updates the service to a slow revision (3, registered by `register`); the
/// rollback stops that deployment and ECS returns to 2.
async fn rollback_of_another_actor(seed: u64) -> Observed {
    let s = match guarded(seed, &["v1", "v2"]).await {
        Ok(s) => s,
        Err(o) => return o,
    };
    if let Err(o) = step(&s, "v3--slow-start-1h", &["register"], 0).await {
        return o;
    }
    let theirs = s
        .ecs
        .update_service()
        .cluster(CLUSTER)
        .service(SERVICE)
        .task_definition("web:3")
        .send()
        .await;
    if let Err(e) = theirs {
        return broken(
            &format!("the other actor's UpdateService failed: {e}"),
            &Run::empty(),
        );
    }
    let (run, calls) = measure(&s, "v2", &["rollback"]).await;
    observe(&s, &run, calls, Ok(())).await
}

// ------------------------------------------------------------------------------ blue/green

/// The `web-bg` fixture (BLUE_GREEN) on `seed`, with its gate, or (`gate` false) from a copy
/// of the fixture without it, so that `deploy --until test-traffic` stops at the hook.
async fn blue_green(
    seed: u64,
    gate: bool,
    tags: &[&str],
) -> Result<(Scenario, Option<PathBuf>), Observed> {
    let mut s = Scenario::blue_green_seeded("BLUE_GREEN", FAST, &["v1", "v2"], seed).await;
    let mut dir = None;
    if !gate {
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let d = std::env::temp_dir().join(format!(
            "cortado-incident-{}-{seed}-{n}",
            std::process::id()
        ));
        let _ = std::fs::create_dir_all(&d);
        for f in ["ecs-service-def.json", "ecs-task-def.json"] {
            let _ = std::fs::copy(fixture("web-bg").join(f), d.join(f));
        }
        let config =
            std::fs::read_to_string(fixture("web-bg").join("cortado.yml")).unwrap_or_default();
        let without_gate = config
            .split("rollout:")
            .next()
            .unwrap_or_default()
            .to_string();
        let _ = std::fs::write(d.join("cortado.yml"), without_gate);
        s.config = d.join("cortado.yml");
        dir = Some(d);
    }
    for tag in tags {
        step(&s, tag, &["deploy"], 0).await?;
    }
    Ok((s, dir))
}

/// A blue/green redeploy of the running revision (`--skip-task-definition
/// --force-new-deployment`) whose gate fails: ROLLBACK at the hook, and old and new are the
/// same revision. cortado must see ECS return to the earlier deployment and exit 3 promptly.
async fn blue_green_same_revision_gate_fails(seed: u64) -> Observed {
    let (s, _) = match blue_green(seed, true, &["v1", "v2"]).await {
        Ok(s) => s,
        Err(o) => return o,
    };
    let (run, calls) = measure(
        &s,
        "v2-gatefail",
        &["deploy", "--skip-task-definition", "--force-new-deployment"],
    )
    .await;
    let check = if run.took < Duration::from_secs(60) {
        Ok(())
    } else {
        Err(format!("the verdict took {:?}", run.took))
    };
    observe(&s, &run, calls, check).await
}

#[derive(Clone, Copy)]
enum Paused {
    Rollback,
    Continue,
    ContinueRollback,
    /// `continue` after the deployment finished: nothing waits.
    Nothing,
}

/// v1, then v2 paused at its PAUSE hook (`deploy --until test-traffic`), then the command.
async fn paused(seed: u64, how: Paused) -> Observed {
    let (s, dir) = match blue_green(seed, false, &["v1"]).await {
        Ok(s) => s,
        Err(o) => return o,
    };
    let until = ["deploy", "--until", "test-traffic"];
    if let Err(o) = step(&s, "v2", &until, 0).await {
        return o;
    }
    if let Paused::Nothing = how
        && let Err(o) = step(&s, "v2", &["continue"], 0).await
    {
        return o;
    }
    let args: &[&str] = match how {
        Paused::Rollback => &["rollback"],
        Paused::Continue | Paused::Nothing => &["continue"],
        Paused::ContinueRollback => &["continue", "--rollback"],
    };
    let mark = s.mark();
    let (run, calls) = measure(&s, "v2", args).await;
    let mut o = observe(&s, &run, calls, Ok(())).await;
    if let Paused::Nothing = how {
        // An error, not a result: no write, and it says why.
        o.status = if run.events_of("result").is_empty() {
            "error".into()
        } else {
            o.status
        };
        let writes = mutating(&s.requests_after(mark));
        if !writes.is_empty() || !run.stderr.contains("waits on no PAUSE hook") {
            o.flux_ok = Err(format!("writes {writes:?}; stderr {}", run.stderr));
        }
    }
    if let Some(d) = dir {
        let _ = std::fs::remove_dir_all(d);
    }
    o
}

// ---------------------------------------------------------------------------------- scale

/// After a deploy cortado rolled back, `scale --tasks 3` is judged by what it changed: the
/// service runs 3 tasks of revision 1. The rolled-back deployment's record must not decide.
async fn scale_after_rolled_back(seed: u64) -> Observed {
    let s = match guarded(seed, &["v1"]).await {
        Ok(s) => s,
        Err(o) => return o,
    };
    if let Err(o) = step(&s, "v2--crash-20s", &["deploy"], 3).await {
        return o;
    }
    let (run, calls) = measure(&s, "v1", &["scale", "--tasks", "3"]).await;
    let check = runs_tasks(&s, 3).await;
    observe(&s, &run, calls, check).await
}

async fn scale_after_breaker(seed: u64) -> Observed {
    let s = match guarded(seed, &["v1"]).await {
        Ok(s) => s,
        Err(o) => return o,
    };
    if let Err(o) = rolled_back_by_breaker(&s, "v2--crash-20s").await {
        return o;
    }
    let (run, calls) = measure(&s, "v1", &["scale", "--tasks", "3"]).await;
    let check = runs_tasks(&s, 3).await;
    observe(&s, &run, calls, check).await
}

async fn scale_in_flight(seed: u64) -> Observed {
    let s = match guarded(seed, &["v1"]).await {
        Ok(s) => s,
        Err(o) => return o,
    };
    if let Err(o) = step(&s, "v2--slow-start-120s", &["deploy", "--no-wait"], 0).await {
        return o;
    }
    let (run, calls) = measure(&s, "v1", &["scale", "--tasks", "3"]).await;
    let check = runs_tasks(&s, 3).await;
    observe(&s, &run, calls, check).await
}

// ----------------------------------------------------------------------------------- wait

async fn wait_in_flight(seed: u64) -> Observed {
    let s = match guarded(seed, &["v1"]).await {
        Ok(s) => s,
        Err(o) => return o,
    };
    if let Err(o) = step(&s, "v2--slow-start-120s", &["deploy", "--no-wait"], 0).await {
        return o;
    }
    let (run, calls) = measure(&s, "v1", &["wait"]).await;
    observe(&s, &run, calls, Ok(())).await
}

async fn wait_after_breaker(seed: u64) -> Observed {
    let s = match guarded(seed, &["v1"]).await {
        Ok(s) => s,
        Err(o) => return o,
    };
    if let Err(o) = rolled_back_by_breaker(&s, "v2--crash-20s").await {
        return o;
    }
    let (run, calls) = measure(&s, "v1", &["wait"]).await;
    observe(&s, &run, calls, Ok(())).await
}

/// `wait` follows a slow deployment; another actor forces a new one meanwhile. The one it
/// followed was superseded (exit 4), and `wait` writes nothing.
async fn wait_superseded(seed: u64) -> Observed {
    let s = match guarded(seed, &["v1"]).await {
        Ok(s) => s,
        Err(o) => return o,
    };
    if let Err(o) = step(&s, "v2--slow-start-1h", &["deploy", "--no-wait"], 0).await {
        return o;
    }
    let mark = s.mark();
    let mut bg = s.command("v1", &["wait"]).spawn().expect("cortado starts");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let theirs = s.other_actor_deploys().await;
    let t0 = Instant::now();
    let status = tokio::time::timeout(Duration::from_secs(120), bg.wait()).await;
    let mut stdout = String::new();
    let mut stderr = String::new();
    if let Some(mut out) = bg.stdout.take() {
        let _ = tokio::io::AsyncReadExt::read_to_string(&mut out, &mut stdout).await;
    }
    if let Some(mut err) = bg.stderr.take() {
        let _ = tokio::io::AsyncReadExt::read_to_string(&mut err, &mut stderr).await;
    }
    let run = Run {
        code: status
            .ok()
            .and_then(|s| s.ok())
            .and_then(|s| s.code())
            .unwrap_or(-1),
        stdout,
        stderr,
        took: t0.elapsed(),
    };
    let calls = s.requests_after(mark).len();
    let writes: Vec<String> = s
        .requests_after(mark)
        .iter()
        .filter(|r| r.mutating && r.operation != "UpdateService")
        .map(|r| r.operation.clone())
        .collect();
    let check = match theirs {
        Err(e) => Err(format!("the other actor's UpdateService failed: {e}")),
        Ok(_) if !writes.is_empty() => Err(format!("cortado wrote: {writes:?}")),
        Ok(_) => Ok(()),
    };
    observe(&s, &run, calls, check).await
}

// ----------------------------------------------------------------------------- CodeDeploy

/// The `web-cd` fixture (a CODE_DEPLOY service, its application and group) on `seed`.
async fn codedeploy(seed: u64) -> Scenario {
    Scenario::codedeploy_seeded(FAST, &["v1", "v2", "v2--slow-start-120s"], seed, 0, None).await
}

async fn codedeploy_rollback(seed: u64) -> Observed {
    let s = codedeploy(seed).await;
    if let Err(o) = step(&s, "v1", &["deploy"], 0).await {
        return o;
    }
    if let Err(o) = step(&s, "v2", &["deploy", "--wait-until", "terminated"], 0).await {
        return o;
    }
    let (run, calls) = measure(&s, "v2", &["rollback"]).await;
    observe(&s, &run, calls, Ok(())).await
}

async fn codedeploy_wait(seed: u64) -> Observed {
    let s = codedeploy(seed).await;
    if let Err(o) = step(&s, "v1", &["deploy"], 0).await {
        return o;
    }
    if let Err(o) = step(&s, "v2--slow-start-120s", &["deploy", "--no-wait"], 0).await {
        return o;
    }
    let (run, calls) = measure(&s, "v1", &["wait"]).await;
    observe(&s, &run, calls, Ok(())).await
}

// -------------------------------------------------------------------------------- Express

const EXPRESS: &str = "express-web";

async fn express_rollback(seed: u64) -> Observed {
    let s = Scenario::with_seed("express", FAST, &["v1", "v2"], seed).await;
    if let Err(o) = step(&s, "v1", &["deploy"], 0).await {
        return o;
    }
    if let Err(o) = step(&s, "v2", &["deploy", "--no-wait"], 0).await {
        return o;
    }
    let (run, calls) = measure(&s, "v2", &["rollback"]).await;
    observe_service(&s, EXPRESS, &run, calls, Ok(())).await
}

trait Detail {
    fn result_detail(&self) -> String;
    fn empty() -> Run;
}

impl Detail for Run {
    fn result_detail(&self) -> String {
        self.events_of("result")
            .first()
            .and_then(|r| r["services"][0]["detail"].as_str().map(str::to_string))
            .unwrap_or_default()
    }

    fn empty() -> Run {
        Run {
            code: -1,
            stdout: String::new(),
            stderr: String::new(),
            took: Duration::ZERO,
        }
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 4)]
async fn main() {
    matrix::run("incident matrix", cases()).await;
}
