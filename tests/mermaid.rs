//! The Mermaid charts cortado prints (`history --markdown`) go through the real Mermaid
//! parser: npm's `mermaid` package in a jsdom window, run by node (`tests/mermaid-check.mjs`).
//! The packages come from the `node_modules` folder `CORTADO_NODE_MODULES` names (`.ci/run`
//! installs them); without them the test says so and passes nothing off as checked.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use cortado::history::{Metrics, Record, Report, ServiceHistory, Window};

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

#[test]
fn history_charts_parse_with_the_real_mermaid_parser() {
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
    ];
    let (ok, lines) = parse_all(&modules, &diagrams);
    assert!(ok, "{lines:#?}\n{}", diagrams.join("\n---\n"));
    assert_eq!(lines, vec!["ok xychart"; diagrams.len()]);
    // The checker can fail: the same chart with its bar list cut short is refused.
    let mut broken = diagrams[0].clone();
    broken = broken.replacen("bar [", "bar [,", 1);
    let (ok, lines) = parse_all(&modules, &[broken]);
    assert!(!ok && lines[0].starts_with("error:"), "{lines:?}");
}
