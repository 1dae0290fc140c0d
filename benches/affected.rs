//! Benchmark program for `cortado affected`: how long finding the touched steps takes on
//! examples/monorepo (7 steps) and on a generated monorepo of 200 services sharing Jsonnet
//! imports, each inside a git repository with one commit on top of `base`. It prints figures;
//! it never asserts timings.
//!
//! ```text
//! cargo bench --profile dev --bench affected
//! ```
//!
//! Knobs: `CORTADO_BIN` (the cortado binary, instead of the one built beside the bench),
//! `CORTADO_BENCH_RUNS` (runs per case, default 15).
//!
//! Figures per case: the whole process (spawn to exit: argument parsing, the release file,
//! git diff, every config loaded, imports scanned, output) as median and max, and the
//! detection alone as cortado reports it (`elapsed_ms`: git included, process start and
//! output excluded).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), &target).unwrap();
        }
    }
}

fn git(dir: &Path, args: &[&str]) {
    let out = Command::new("git")
        .current_dir(dir)
        .args([
            "-c",
            "user.name=bench",
            "-c",
            "user.email=bench@example.com",
            "-c",
            "commit.gpgsign=false",
        ])
        .args(args)
        .output()
        .expect("run git");
    assert!(out.status.success(), "git {args:?}: {out:?}");
}

fn commit_all(dir: &Path, message: &str) {
    git(dir, &["add", "-A"]);
    git(dir, &["commit", "-q", "-m", message]);
}

/// examples/monorepo, committed, then the shared worker import edited and committed.
fn example(root: &Path) -> PathBuf {
    let dir = root.join("example");
    copy_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/monorepo"),
        &dir,
    );
    git(&dir, &["init", "-q", "-b", "main"]);
    commit_all(&dir, "base");
    git(&dir, &["tag", "base"]);
    let lib = dir.join("services/workers/worker.libsonnet");
    let text = std::fs::read_to_string(&lib).unwrap();
    std::fs::write(&lib, format!("{text}// tuned\n")).unwrap();
    commit_all(&dir, "edit");
    dir
}

/// `n` services, each a YAML config, a JSON service definition and a Jsonnet task definition
/// importing one of ten team libraries, which import one common library; one team library
/// edited on top of `base`.
fn generated(root: &Path, n: usize) -> PathBuf {
    let dir = root.join(format!("gen{n}"));
    std::fs::create_dir_all(dir.join("lib")).unwrap();
    std::fs::write(
        dir.join("lib/common.libsonnet"),
        "{ cpu: '256', memory: '512', networkMode: 'awsvpc' }\n",
    )
    .unwrap();
    for t in 0..10 {
        std::fs::write(
            dir.join(format!("lib/team{t}.libsonnet")),
            format!(
                "local common = import 'common.libsonnet';\n\
                 function(name) common + {{ family: name, containerDefinitions: [{{ name: name, \
                 image: 'repo/{t}:{{{{ env `TAG` `v1` }}}}', essential: true }}] }}\n"
            ),
        )
        .unwrap();
    }
    let mut steps = String::from("steps:\n");
    for i in 0..n {
        let s = format!("svc-{i:03}");
        let d = dir.join("services").join(&s);
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(
            d.join("cortado.yml"),
            format!(
                "region: us-east-1\ncluster: bench\nservice: {s}\n\
                 service_definition: ecs-service-def.json\ntask_definition: ecs-task-def.jsonnet\n"
            ),
        )
        .unwrap();
        std::fs::write(d.join("ecs-service-def.json"), "{\"desiredCount\": 2}\n").unwrap();
        std::fs::write(
            d.join("ecs-task-def.jsonnet"),
            format!("(import '../../lib/team{}.libsonnet')('{s}')\n", i % 10),
        )
        .unwrap();
        steps.push_str(&format!(
            "  - config: services/{s}/cortado.yml\n    paths: [src/{s}/**]\n"
        ));
    }
    std::fs::write(dir.join("cortado-release.yml"), steps).unwrap();
    git(&dir, &["init", "-q", "-b", "main"]);
    commit_all(&dir, "base");
    git(&dir, &["tag", "base"]);
    std::fs::write(
        dir.join("lib/team3.libsonnet"),
        "function(name) { family: name, containerDefinitions: [] }\n",
    )
    .unwrap();
    commit_all(&dir, "edit");
    dir
}

fn bin() -> PathBuf {
    std::env::var_os("CORTADO_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_cortado")))
}

fn measure(label: &str, dir: &Path, runs: usize) {
    let mut wall = Vec::new();
    let mut inner = Vec::new();
    let mut touched = 0;
    let mut steps = 0;
    for _ in 0..runs {
        let started = Instant::now();
        let out = Command::new(bin())
            .current_dir(dir)
            .args([
                "affected",
                "--release",
                "cortado-release.yml",
                "--base",
                "base",
                "--head",
                "HEAD",
                "--output",
                "json",
            ])
            .env_remove("GITHUB_OUTPUT")
            .output()
            .expect("run cortado");
        wall.push(started.elapsed().as_secs_f64() * 1000.0);
        assert!(out.status.success(), "{out:?}");
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        inner.push(v["elapsed_ms"].as_f64().unwrap_or(f64::NAN));
        touched = v["affected"].as_array().map_or(0, Vec::len);
        steps = touched + v["unaffected"].as_array().map_or(0, Vec::len);
    }
    let stats = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        (v[v.len() / 2], v[v.len() - 1])
    };
    let (wm, wx) = stats(&mut wall);
    let (im, ix) = stats(&mut inner);
    println!(
        "{label:<34} {touched:>3} of {steps:>3} steps touched | process median {wm:>6.1} ms (max \
         {wx:>6.1}) | detection median {im:>6.1} ms (max {ix:>6.1})"
    );
}

fn main() {
    let runs: usize = std::env::var("CORTADO_BENCH_RUNS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(15);
    let root = std::env::temp_dir().join(format!("cortado-bench-affected-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    println!(
        "cortado affected, {runs} runs per case, binary {}",
        bin().display()
    );
    let ex = example(&root);
    measure("examples/monorepo (shared import)", &ex, runs);
    let generated = generated(&root, 200);
    measure("200 services, 10 team imports", &generated, runs);
    let _ = std::fs::remove_dir_all(&root);
}
