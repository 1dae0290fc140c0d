//! How long a service that joins a running release watch waits for its verdict, against the
//! same service deployed alone: `api` of `examples/monorepo`, on the embedded sandbox (speed
//! ×60, the default), from its `deployment_started` event to its `verdict`.
//!
//! In the release, `api` starts after the `migrate` one-off task and beside the three workers
//! (whose rollouts are already in the run's one watch), then `web` and `admin` start after it.
//! Alone, it is `cortado deploy -c examples/monorepo/services/api/cortado.yml`. A service that
//! joins a watch must be polled as one followed alone would be, so the two figures should
//! match (before the fix of issue 20: 18.9 s in the release, 3.1 s alone).
//!
//! ```text
//! cargo bench --profile dev --bench release_join          # a debug build will do
//! CORTADO_BIN=path/to/cortado CORTADO_BENCH_REPS=5 cargo bench --bench release_join
//! ```
//!
//! Prints each run's figure and the median of each, in seconds, plus web and admin (the
//! services that join after api) in the release.

mod common;

use std::path::Path;
use std::process::Command;

use common::{Res, locate_binary};
use serde_json::Value;

fn main() {
    if let Err(e) = run() {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

fn run() -> Res<()> {
    let bin = locate_binary()?;
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let example = root.join("examples/monorepo");
    let reps: usize = std::env::var("CORTADO_BENCH_REPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let release_env = envfile(&example.join("release.env"))?;
    let mut in_release: Vec<f64> = Vec::new();
    let mut alone: Vec<f64> = Vec::new();
    let mut joiners: Vec<(String, f64)> = Vec::new();
    for rep in 1..=reps {
        let release = deploy(
            &bin,
            &[
                "--release",
                &example.join("cortado-release.yml").to_string_lossy(),
            ],
            &[],
        )?;
        let api = verdict_after_start(&release, "api")?;
        for s in ["web", "admin"] {
            joiners.push((s.to_string(), verdict_after_start(&release, s)?));
        }
        let single = deploy(
            &bin,
            &[
                "-c",
                &example.join("services/api/cortado.yml").to_string_lossy(),
            ],
            &release_env,
        )?;
        let one = verdict_after_start(&single, "api")?;
        println!("run {rep}: api in the release {api:.2} s, alone {one:.2} s");
        in_release.push(api);
        alone.push(one);
    }
    println!(
        "api, deployment_started -> verdict (median of {reps}): in the release {:.2} s, alone {:.2} s",
        median(&mut in_release),
        median(&mut alone)
    );
    for s in ["web", "admin"] {
        let mut v: Vec<f64> = joiners
            .iter()
            .filter(|(n, _)| n == s)
            .map(|(_, t)| *t)
            .collect();
        println!("{s} in the release (median): {:.2} s", median(&mut v));
    }
    Ok(())
}

/// `cortado deploy --sandbox --output json <args>` with `env`; its JSON lines.
fn deploy(bin: &Path, args: &[&str], env: &[(String, String)]) -> Res<Vec<Value>> {
    let out = Command::new(bin)
        .args(["deploy", "--sandbox", "--output", "json"])
        .args(args)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .output()
        .map_err(|e| format!("cannot run {}: {e}", bin.display()))?;
    if !out.status.success() {
        return Err(format!(
            "cortado deploy {} exited {:?}: {}",
            args.join(" "),
            out.status.code(),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect())
}

/// Seconds from `service`'s `deployment_started` event to its `verdict`.
fn verdict_after_start(events: &[Value], service: &str) -> Res<f64> {
    let at = |kind: &str| {
        events
            .iter()
            .find(|e| e["event"] == kind && e["service"] == service)
            .and_then(|e| e["time"].as_f64())
            .ok_or_else(|| format!("no {kind} event for {service}"))
    };
    Ok(at("verdict")? - at("deployment_started")?)
}

/// `KEY=VALUE` lines (comments and blank lines skipped).
fn envfile(path: &Path) -> Res<Vec<(String, String)>> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    Ok(text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect())
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}
