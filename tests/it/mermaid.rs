//! The Mermaid charts cortado prints (`history --markdown`) go through the real Mermaid
//! parser: npm's `mermaid` package in a jsdom window, run by node (`tests/mermaid-check.mjs`).
//! The packages come from the `node_modules` folder `CORTADO_NODE_MODULES` names (`.ci/run`
//! installs them); without them the test says so and passes nothing off as checked.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use cortado::deploy::event::{Event, Stamped};
use cortado::history::{Metrics, Record, Report, ServiceHistory, Window};
use cortado::report::timeline;

const DAY: f64 = 86_400.0;

/// Runs the checker over `diagrams`; one "ok <type>" or "error: ..." line per diagram.
fn parse_all(modules: &str, diagrams: &[String]) -> (bool, Vec<String>) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/mermaid-check.mjs");
    let mut child = Command::new("node")
        .arg(script)
        .env("CORTADO_NODE_MODULES", modules)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("node runs");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(diagrams.join("\n%%--\n").as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let lines = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    assert!(
        out.stderr.is_empty() || out.status.code().is_some(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), lines)
}

/// The chart of a report over `days` with deployments at these (day, status) points.
fn chart(days: f64, points: &[(f64, &str)]) -> String {
    let from = 1_790_000_000.0;
    let window = Window {
        from,
        to: from + days * DAY,
    };
    let records: Vec<Record> = points
        .iter()
        .map(|(d, st)| Record {
            arn: format!("sd-{d}"),
            created: from + d * DAY,
            started: Some(from + d * DAY),
            finished: Some(from + d * DAY + 300.0),
            status: st.to_string(),
            reason: None,
            revision: Some("web:1".into()),
        })
        .collect();
    let metrics = Metrics::of(&records, window);
    let report = Report::new(
        window,
        vec![ServiceHistory {
            service: "web".into(),
            cluster: "prod".into(),
            records,
            metrics,
        }],
        5,
    );
    let md = report.mermaid();
    md.trim()
        .strip_prefix("```mermaid\n")
        .and_then(|m| m.strip_suffix("```"))
        .unwrap_or_else(|| panic!("a fenced mermaid block: {md}"))
        .to_string()
}

/// The charts of a blue/green run with a failing gate and a rollback, through the timeline's
/// public API.
fn timeline_charts() -> Vec<String> {
    let ev = |t: f64, event: Event| Stamped { time: t, event };
    let svc = || "web-api".to_string();
    let progress = |t: f64, id: &str, running: i32, other: i32| {
        ev(
            t,
            Event::Progress {
                service: svc(),
                deployment_id: id.into(),
                desired: 2,
                running,
                pending: 0,
                failed: 0,
                other_running: other,
                rollout_state: None,
                waiting_for: String::new(),
                elapsed_secs: 0,
            },
        )
    };
    let events = vec![
        ev(
            0.4,
            Event::Plan {
                service: svc(),
                cluster: "prod".into(),
                register: true,
                create_service: false,
                summary: String::new(),
            },
        ),
        ev(
            0.6,
            Event::Registered {
                task_definition_arn: "web-api:7".into(),
            },
        ),
        ev(
            0.7,
            Event::DeploymentStarted {
                service: svc(),
                deployment_id: "d1".into(),
                service_deployment_arn: None,
                task_definition_arn: "web-api:7".into(),
                created: false,
            },
        ),
        progress(1.0, "d1", 0, 2),
        ev(
            2.0,
            Event::Stage {
                service: svc(),
                stage: "SCALE_UP".into(),
                elapsed_secs: 1,
            },
        ),
        progress(9.0, "d1", 2, 2),
        ev(
            10.0,
            Event::Stage {
                service: svc(),
                stage: "POST_TEST_TRAFFIC_SHIFT".into(),
                elapsed_secs: 9,
            },
        ),
        ev(
            10.0,
            Event::Traffic {
                service: svc(),
                production_green: Some(0),
                test_green: Some(100),
                production: vec![],
                test: vec![],
            },
        ),
        ev(
            10.5,
            Event::GateStarted {
                service: svc(),
                stage: "POST_TEST_TRAFFIC_SHIFT".into(),
                command: vec!["./smoke.sh".into()],
            },
        ),
        ev(
            14.0,
            Event::GateFinished {
                service: svc(),
                stage: "POST_TEST_TRAFFIC_SHIFT".into(),
                passed: false,
                exit_code: Some(1),
                detail: "exit 1".into(),
                duration_secs: 3.5,
                action: "ROLLBACK".into(),
            },
        ),
        ev(
            15.0,
            Event::Verdict {
                service: svc(),
                success: false,
                detail: "gate".into(),
            },
        ),
        ev(
            15.0,
            Event::RollbackStarted {
                service: svc(),
                method: "ContinueServiceDeployment ROLLBACK".into(),
                to_task_definition: None,
                source: None,
            },
        ),
        progress(20.0, "d0", 2, 0),
        ev(
            21.0,
            Event::RollbackFinished {
                service: svc(),
                success: true,
                detail: String::new(),
            },
        ),
    ];
    let t = timeline::build(&events, 0.0, 22.0);
    let mut charts = vec![t[0].gantt()];
    charts.extend(t[0].counts_chart());
    // A run still in flight (phases left open) and one with nothing but a plan.
    let open = timeline::build(&events[..6], 0.0, 9.5);
    charts.push(open[0].gantt());
    charts.extend(open[0].counts_chart());
    charts.push(timeline::build(&events[..1], 0.0, 0.5)[0].gantt());
    charts
}

#[test]
fn history_and_timeline_charts_parse_with_the_real_mermaid_parser() {
    let Some(modules) = std::env::var("CORTADO_NODE_MODULES")
        .ok()
        .filter(|m| Path::new(m).join("mermaid").is_dir() && Path::new(m).join("jsdom").is_dir())
    else {
        eprintln!(
            "mermaid and jsdom are not available (set CORTADO_NODE_MODULES to a node_modules \
             folder holding them; .ci/run does): skipping the Mermaid parser check"
        );
        return;
    };
    let diagrams = vec![
        chart(
            30.0,
            &[
                (1.0, "SUCCESSFUL"),
                (2.0, "ROLLBACK_SUCCESSFUL"),
                (20.0, "SUCCESSFUL"),
            ],
        ),
        chart(1.0, &[]),
        chart(0.5, &[(0.1, "STOPPED")]),
        chart(365.0, &[(100.0, "ROLLBACK_FAILED"), (364.0, "IN_PROGRESS")]),
    ]
    .into_iter()
    .chain(timeline_charts())
    .collect::<Vec<_>>();
    let (ok, lines) = parse_all(&modules, &diagrams);
    assert!(ok, "{lines:#?}\n{}", diagrams.join("\n---\n"));
    let kinds: Vec<&str> = lines.iter().map(String::as_str).collect();
    assert_eq!(kinds.len(), diagrams.len(), "{lines:?}");
    assert!(
        kinds.iter().all(|k| *k == "ok xychart" || *k == "ok gantt"),
        "{lines:?}"
    );
    assert_eq!(
        kinds.iter().filter(|k| **k == "ok gantt").count(),
        3,
        "{lines:?}"
    );
    // The checker can fail: the same chart with its bar list cut short is refused.
    let mut broken = diagrams[0].clone();
    broken = broken.replacen("bar [", "bar [,", 1);
    let (ok, lines) = parse_all(&modules, &[broken]);
    assert!(!ok && lines[0].starts_with("error:"), "{lines:?}");
}

/// The ```` ```mermaid ```` blocks of README.md and docs/, with where each starts.
fn docs_diagrams() -> Vec<(String, String)> {
    fn walk(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
        for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|x| x == "md") {
                out.push(p);
            }
        }
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut pages = vec![root.join("README.md")];
    walk(&root.join("docs"), &mut pages);
    let mut out = Vec::new();
    for page in pages {
        let text = std::fs::read_to_string(&page).unwrap_or_default();
        let mut open: Option<(usize, Vec<&str>)> = None;
        for (i, line) in text.lines().enumerate() {
            match open.as_mut() {
                None if line.trim() == "```mermaid" => open = Some((i + 1, Vec::new())),
                Some((at, body)) if line.trim() == "```" => {
                    let name = format!("{}:{at}", page.strip_prefix(root).unwrap().display());
                    out.push((name, body.join("\n")));
                    open = None;
                }
                Some((_, body)) => body.push(line),
                None => {}
            }
        }
    }
    out
}

#[test]
fn the_docs_diagrams_parse_with_the_real_mermaid_parser() {
    let found = docs_diagrams();
    assert!(found.len() >= 3, "{found:?}");
    let Some(modules) = std::env::var("CORTADO_NODE_MODULES")
        .ok()
        .filter(|m| Path::new(m).join("mermaid").is_dir() && Path::new(m).join("jsdom").is_dir())
    else {
        eprintln!("mermaid and jsdom are not available: skipping the docs' diagrams");
        return;
    };
    let diagrams: Vec<String> = found.iter().map(|(_, d)| d.clone()).collect();
    let (ok, lines) = parse_all(&modules, &diagrams);
    let failed: Vec<String> = found
        .iter()
        .zip(&lines)
        .filter(|(_, l)| !l.starts_with("ok "))
        .map(|((name, _), l)| format!("{name}: {l}"))
        .collect();
    assert!(
        ok && failed.is_empty() && lines.len() == found.len(),
        "{failed:#?} {lines:?}"
    );
}
