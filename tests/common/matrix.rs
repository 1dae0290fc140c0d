//! The matrix driver shared by the fault matrix (`tests/fault_matrix.rs`) and the incident
//! matrix (`tests/incident_matrix.rs`): every case runs on every seed, each run in a sandbox of
//! its own, a bounded number at once; a run is right when its status, its exit code and the end
//! state read through the SDK are what the case requires. Prints one Markdown table row per
//! case (runs, right verdicts, right exit codes, right end states, median wall time and API
//! calls of the measured command), then a `test result:` line in libtest's format, so `cargo
//! test` counts the runs. Exits 1 if any run was wrong, listing each with its seed.
//!
//! Knobs: `--seeds N` / `CORTADO_MATRIX_SEEDS` (default 3), `--seed N` (that one seed only),
//! `--jobs N` / `CORTADO_MATRIX_JOBS` (runs at once, default 4), free words filter case names
//! by substring; `CORTADO_MATRIX_VERBOSE=1` prints the harness's panics.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{Run, Scenario, revision_of};

/// The end state a case must leave.
#[derive(Clone, Copy)]
pub enum Serving {
    /// This revision serves alone and healthy (and the case's own check passed).
    Alone(u32),
    /// Left in flux on purpose; the case's own check decides.
    Flux,
}

/// What one run produced.
pub struct Observed {
    pub code: i32,
    pub status: String,
    pub serving: Option<u32>,
    /// The case's own check of the end state, or why it failed.
    pub flux_ok: Result<(), String>,
    pub took: Duration,
    pub calls: usize,
    pub note: String,
}

pub type RunFuture = Pin<Box<dyn Future<Output = Observed> + Send>>;

/// One row of a matrix.
pub struct Case {
    pub name: &'static str,
    pub code: i32,
    pub status: &'static str,
    pub serving: Serving,
    pub run: fn(u64) -> RunFuture,
}

/// Runs a prepared command to its end, bounded by 3 minutes (a hang is a wrong run).
pub async fn bounded(mut cmd: tokio::process::Command) -> Run {
    let t0 = Instant::now();
    match tokio::time::timeout(Duration::from_secs(180), cmd.output()).await {
        Ok(Ok(out)) => Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            took: t0.elapsed(),
        },
        Ok(Err(e)) => Run {
            code: -1,
            stdout: String::new(),
            stderr: format!("could not run cortado: {e}"),
            took: t0.elapsed(),
        },
        Err(_) => Run {
            code: -1,
            stdout: String::new(),
            stderr: "cortado did not end within 180 s".into(),
            took: t0.elapsed(),
        },
    }
}

/// A run whose setup failed: wrong on every count, with the reason.
pub fn broken(why: &str, run: &Run) -> Observed {
    Observed {
        code: -1,
        status: String::new(),
        serving: None,
        flux_ok: Err(why.to_string()),
        took: run.took,
        calls: 0,
        note: format!("{why}: exit {} {}", run.code, first_lines(&run.stderr)),
    }
}

pub fn first_lines(s: &str) -> String {
    s.lines().take(3).collect::<Vec<_>>().join(" | ")
}

/// Reads the end state of `service`: the revision serving alone and healthy, if any.
pub async fn observe_service(
    s: &Scenario,
    service: &str,
    run: &Run,
    calls: usize,
    flux_ok: Result<(), String>,
) -> Observed {
    let result = run
        .events_of("result")
        .first()
        .and_then(|r| r["services"].get(0).cloned())
        .unwrap_or_default();
    let status = result["status"].as_str().unwrap_or_default().to_string();
    let note = if run.code == 0 {
        String::new()
    } else {
        format!(
            "{} / {}",
            result["detail"].as_str().unwrap_or_default(),
            first_lines(&run.stderr)
        )
    };
    Observed {
        code: run.code,
        status,
        serving: serving_alone(s, service).await,
        flux_ok,
        took: run.took,
        calls,
        note,
    }
}

/// [`observe_service`] of the scenarios' service (`web`).
pub async fn observe(
    s: &Scenario,
    run: &Run,
    calls: usize,
    flux_ok: Result<(), String>,
) -> Observed {
    observe_service(s, super::SERVICE, run, calls, flux_ok).await
}

/// The revision that serves alone: PRIMARY with every desired task running, no task in any
/// other deployment, and exactly that many healthy targets over all target groups.
pub async fn serving_alone(s: &Scenario, service: &str) -> Option<u32> {
    let out = s
        .ecs
        .describe_services()
        .cluster(super::CLUSTER)
        .services(service)
        .send()
        .await
        .ok()?;
    let svc = out.services().first()?;
    let ds = svc.deployments();
    let primary = ds.iter().find(|d| d.status() == Some("PRIMARY"))?;
    if primary.running_count() != primary.desired_count()
        || ds
            .iter()
            .filter(|d| d.status() != Some("PRIMARY"))
            .any(|d| d.running_count() > 0)
    {
        return None;
    }
    let elb = aws_sdk_elasticloadbalancingv2::Client::new(&s.sdk());
    let groups = elb.describe_target_groups().send().await.ok()?;
    let mut healthy = 0;
    for tg in groups.target_groups() {
        let health = elb
            .describe_target_health()
            .target_group_arn(tg.target_group_arn()?)
            .send()
            .await
            .ok()?;
        healthy += health
            .target_health_descriptions()
            .iter()
            .filter(|t| {
                t.target_health()
                    .and_then(|h| h.state())
                    .is_some_and(|st| st.as_str() == "healthy")
            })
            .count() as i32;
    }
    (healthy == primary.desired_count())
        .then(|| revision_of(primary.task_definition().unwrap_or_default()))
}

struct Args {
    seeds: Vec<u64>,
    jobs: usize,
    filters: Vec<String>,
}

fn args() -> Args {
    let env_num = |k: &str| std::env::var(k).ok().and_then(|v| v.parse::<u64>().ok());
    let mut seeds = env_num("CORTADO_MATRIX_SEEDS").unwrap_or(3);
    let mut one = None;
    let mut jobs = env_num("CORTADO_MATRIX_JOBS").unwrap_or(4) as usize;
    let mut filters = Vec::new();
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--seeds" => seeds = it.next().and_then(|v| v.parse().ok()).unwrap_or(seeds),
            "--seed" => one = it.next().and_then(|v| v.parse().ok()),
            "--jobs" => jobs = it.next().and_then(|v| v.parse().ok()).unwrap_or(jobs),
            // libtest's flags that cargo may pass on (--nocapture, --quiet...) mean nothing here.
            flag if flag.starts_with('-') => {}
            word => filters.push(word.to_lowercase()),
        }
    }
    Args {
        seeds: match one {
            Some(s) => vec![s],
            None => (1..=seeds.max(1)).collect(),
        },
        jobs: jobs.max(1),
        filters,
    }
}

#[derive(Default)]
struct Row {
    runs: usize,
    verdicts: usize,
    codes: usize,
    serving: usize,
    took: Vec<Duration>,
    calls: Vec<usize>,
    wrong: Vec<String>,
}

fn median<T: Copy + Ord>(v: &mut [T]) -> Option<T> {
    v.sort();
    (!v.is_empty()).then(|| v[v.len() / 2])
}

/// Why a run's task failed, from its join error (a panic in the harness counts as wrong).
fn panic_text(e: tokio::task::JoinError) -> String {
    match e.try_into_panic() {
        Ok(p) => p
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default(),
        Err(e) => e.to_string(),
    }
}

/// Runs `cases` on the seeds the arguments ask for and prints the table (`title` on stderr).
pub async fn run(title: &str, cases: Vec<Case>) {
    let args = args();
    let cases: Vec<Case> = cases
        .into_iter()
        .filter(|c| {
            args.filters.is_empty()
                || args
                    .filters
                    .iter()
                    .any(|f| c.name.to_lowercase().contains(f))
        })
        .collect();
    let t0 = Instant::now();
    eprintln!(
        "{title}: {} scenarios x {} seeds, {} at once",
        cases.len(),
        args.seeds.len(),
        args.jobs
    );
    let gate = Arc::new(tokio::sync::Semaphore::new(args.jobs));
    let mut handles = Vec::new();
    for (i, case) in cases.iter().enumerate() {
        for &seed in &args.seeds {
            let gate = gate.clone();
            let run = case.run;
            handles.push((
                i,
                seed,
                tokio::spawn(async move {
                    let _permit = gate.acquire_owned().await;
                    run(seed).await
                }),
            ));
        }
    }
    let mut rows: Vec<Row> = cases.iter().map(|_| Row::default()).collect();
    for (i, seed, handle) in handles {
        let case = &cases[i];
        let row = &mut rows[i];
        row.runs += 1;
        let o = match handle.await {
            Ok(o) => o,
            Err(e) => {
                let why = panic_text(e);
                if std::env::var_os("CORTADO_MATRIX_VERBOSE").is_some() {
                    eprintln!("--- {} seed {seed}\n{why}", case.name);
                }
                row.wrong.push(format!(
                    "seed {seed}: the harness failed: {}",
                    first_lines(&why)
                ));
                continue;
            }
        };
        let verdict = o.status == case.status;
        let code = o.code == case.code;
        let serving = match case.serving {
            Serving::Alone(rev) => o.serving == Some(rev) && o.flux_ok.is_ok(),
            Serving::Flux => o.flux_ok.is_ok(),
        };
        row.verdicts += usize::from(verdict);
        row.codes += usize::from(code);
        row.serving += usize::from(serving);
        row.took.push(o.took);
        row.calls.push(o.calls);
        if !(verdict && code && serving) {
            row.wrong.push(format!(
                "seed {seed}: exit {} status {:?} serving {:?} {} — {}",
                o.code,
                o.status,
                o.serving,
                o.flux_ok.err().unwrap_or_default(),
                o.note
            ));
        }
        eprint!(".");
    }
    eprintln!();
    print_table(&cases, &mut rows, &args, t0);
}

fn print_table(cases: &[Case], rows: &mut [Row], args: &Args, t0: Instant) {
    println!(
        "| scenario | expected | runs | right verdict | right exit code | right end state | median s | median API calls |"
    );
    println!("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |");
    let (mut total, mut right) = (0, 0);
    for (case, row) in cases.iter().zip(rows.iter_mut()) {
        let expect = match case.serving {
            Serving::Alone(rev) => format!("{} (exit {}), r{rev} serving", case.status, case.code),
            Serving::Flux => format!("{} (exit {})", case.status, case.code),
        };
        let took = median(&mut row.took).map_or(0.0, |d| d.as_secs_f64());
        let calls = median(&mut row.calls).unwrap_or(0);
        println!(
            "| {} | {} | {} | {} | {} | {} | {:.1} | {} |",
            case.name, expect, row.runs, row.verdicts, row.codes, row.serving, took, calls
        );
        total += row.runs;
        right += row.runs - row.wrong.len();
    }
    let wrong: Vec<String> = cases
        .iter()
        .zip(rows.iter())
        .flat_map(|(c, r)| r.wrong.iter().map(move |w| format!("{}: {w}", c.name)))
        .collect();
    println!();
    for w in &wrong {
        println!("WRONG {w}");
    }
    println!(
        "{right}/{total} runs right in {:.0} s ({} seeds per scenario)",
        t0.elapsed().as_secs_f64(),
        args.seeds.len()
    );
    println!(
        "test result: {}. {right} passed; {} failed; 0 ignored; 0 measured; 0 filtered out",
        if wrong.is_empty() { "ok" } else { "FAILED" },
        total - right
    );
    if !wrong.is_empty() {
        std::process::exit(1);
    }
}
