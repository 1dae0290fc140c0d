//! Delivery metrics from ECS's own record of a service's deployments (`cortado history`).
//!
//! Receives [`Record`]s (one per service deployment, as ListServiceDeployments lists them)
//! and a time window; hands on [`Metrics`] per service and for all of them, and renders them
//! as a terminal table, Markdown with a Mermaid chart, or JSON. No I/O here.
//!
//! Definitions (the README's "History" section says the same):
//! - a deployment **succeeded** when ECS says SUCCESSFUL; it **failed** when it was rolled
//!   back or its rollback failed (ROLLBACK_*); STOPPED ones (another deployment replaced them,
//!   or someone stopped them) and those still in flight count in the total but in neither;
//! - **change failure rate**: failed / (succeeded + failed);
//! - **time to restore**: from the end of a failed deployment (the first of a run of failures)
//!   to the end of the next successful one;
//! - **duration**: from start (else creation) to finish, of succeeded and failed deployments;
//!   median and p90 by nearest rank.

use serde_json::{Value, json};

/// One service deployment. Times are epoch seconds.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    pub arn: String,
    pub created: f64,
    pub started: Option<f64>,
    pub finished: Option<f64>,
    /// ECS's status: SUCCESSFUL, ROLLBACK_SUCCESSFUL, STOPPED, IN_PROGRESS...
    pub status: String,
    pub reason: Option<String>,
    /// The task definition it deployed (`family:revision`), when known.
    pub revision: Option<String>,
}

/// What a deployment counts as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    Succeeded,
    Failed,
    Stopped,
    InFlight,
}

impl Class {
    pub fn of(status: &str) -> Class {
        match status {
            "SUCCESSFUL" => Class::Succeeded,
            s if s.starts_with("ROLLBACK_") => Class::Failed,
            "STOPPED" => Class::Stopped,
            _ => Class::InFlight,
        }
    }

    pub fn word(self) -> &'static str {
        match self {
            Class::Succeeded => "succeeded",
            Class::Failed => "failed",
            Class::Stopped => "stopped",
            Class::InFlight => "in flight",
        }
    }
}

/// The window the metrics cover.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Window {
    pub from: f64,
    pub to: f64,
}

const DAY: f64 = 86_400.0;
const WEEK: f64 = 7.0 * DAY;

impl Window {
    fn days(&self) -> f64 {
        ((self.to - self.from) / DAY).max(1.0 / 24.0)
    }

    /// Week buckets from `from`: the last one may be shorter.
    fn weeks(&self) -> usize {
        (((self.to - self.from) / WEEK).ceil() as usize).max(1)
    }
}

/// Delivery metrics of one service, or of several together.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Metrics {
    pub deployments: usize,
    pub succeeded: usize,
    pub failed: usize,
    pub stopped: usize,
    pub in_flight: usize,
    pub per_day: f64,
    /// failed / (succeeded + failed); `None` when neither happened.
    pub change_failure_rate: Option<f64>,
    /// Each restore's duration in seconds.
    pub restores: Vec<f64>,
    /// Failures not followed by a success within the window.
    pub unrestored: usize,
    /// Durations of succeeded and failed deployments, seconds.
    pub durations: Vec<f64>,
    /// Per week from the window's start: (deployments, failed).
    pub weeks: Vec<(usize, usize)>,
}

impl Metrics {
    /// The metrics of one service's records (any order) in `window`; records created before
    /// it are left out (later ones count in the last week: clocks differ by a little).
    pub fn of(records: &[Record], window: Window) -> Metrics {
        let mut rs: Vec<&Record> = records
            .iter()
            .filter(|r| r.created >= window.from)
            .collect();
        rs.sort_by(|a, b| a.created.total_cmp(&b.created));
        let mut m = Metrics {
            weeks: vec![(0, 0); window.weeks()],
            ..Metrics::default()
        };
        let mut open_failure: Option<f64> = None;
        for r in &rs {
            let class = Class::of(&r.status);
            m.deployments += 1;
            let week = (((r.created - window.from) / WEEK) as usize).min(m.weeks.len() - 1);
            m.weeks[week].0 += 1;
            match class {
                Class::Succeeded => m.succeeded += 1,
                Class::Failed => {
                    m.failed += 1;
                    m.weeks[week].1 += 1;
                }
                Class::Stopped => m.stopped += 1,
                Class::InFlight => m.in_flight += 1,
            }
            if let (Class::Succeeded | Class::Failed, Some(end)) = (class, r.finished) {
                m.durations
                    .push((end - r.started.unwrap_or(r.created)).max(0.0));
            }
            match class {
                Class::Failed if open_failure.is_none() => {
                    open_failure = Some(r.finished.unwrap_or(r.created));
                }
                Class::Succeeded => {
                    if let (Some(failed_at), Some(end)) = (open_failure, r.finished) {
                        m.restores.push((end - failed_at).max(0.0));
                        open_failure = None;
                    }
                }
                _ => {}
            }
        }
        m.unrestored = usize::from(open_failure.is_some());
        m.per_day = m.deployments as f64 / window.days();
        m.change_failure_rate = rate(m.failed, m.succeeded + m.failed);
        m
    }

    /// Several services' metrics as one (the run's total).
    pub fn sum<'a>(all: impl IntoIterator<Item = &'a Metrics>, window: Window) -> Metrics {
        let mut t = Metrics {
            weeks: vec![(0, 0); window.weeks()],
            ..Metrics::default()
        };
        for m in all {
            t.deployments += m.deployments;
            t.succeeded += m.succeeded;
            t.failed += m.failed;
            t.stopped += m.stopped;
            t.in_flight += m.in_flight;
            t.restores.extend(&m.restores);
            t.unrestored += m.unrestored;
            t.durations.extend(&m.durations);
            for (w, (d, f)) in t.weeks.iter_mut().zip(&m.weeks) {
                w.0 += d;
                w.1 += f;
            }
        }
        t.per_day = t.deployments as f64 / window.days();
        t.change_failure_rate = rate(t.failed, t.succeeded + t.failed);
        t
    }

    pub fn median_restore(&self) -> Option<f64> {
        percentile(&self.restores, 0.5)
    }

    pub fn median_duration(&self) -> Option<f64> {
        percentile(&self.durations, 0.5)
    }

    pub fn p90_duration(&self) -> Option<f64> {
        percentile(&self.durations, 0.9)
    }

    pub fn to_json(&self) -> Value {
        json!({
            "deployments": self.deployments,
            "succeeded": self.succeeded,
            "failed": self.failed,
            "stopped": self.stopped,
            "in_flight": self.in_flight,
            "per_day": round2(self.per_day),
            "per_week": round2(self.per_day * 7.0),
            "change_failure_rate": self.change_failure_rate.map(round2),
            "time_to_restore_secs": {
                "median": self.median_restore().map(round2),
                "restores": self.restores.len(),
                "unrestored": self.unrestored,
            },
            "duration_secs": {
                "median": self.median_duration().map(round2),
                "p90": self.p90_duration().map(round2),
            },
            "weeks": self.weeks.iter().map(|(d, f)| json!({"deployments": d, "failed": f})).collect::<Vec<_>>(),
        })
    }
}

fn rate(part: usize, whole: usize) -> Option<f64> {
    (whole > 0).then(|| part as f64 / whole as f64)
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// Nearest-rank percentile (`q` in 0..=1) of unsorted values; `None` for none.
pub fn percentile(values: &[f64], q: f64) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let rank = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len());
    Some(v[rank - 1])
}

/// `3m05s`, `1h02m`, `2d04h`; `-` for none.
pub fn span(secs: Option<f64>) -> String {
    let Some(s) = secs else {
        return "-".into();
    };
    let s = s.round() as u64;
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m{:02}s", s / 60, s % 60),
        3600..86400 => format!("{}h{:02}m", s / 3600, s % 3600 / 60),
        _ => format!("{}d{:02}h", s / 86400, s % 86400 / 3600),
    }
}

fn percent(r: Option<f64>) -> String {
    r.map_or_else(|| "-".into(), |r| format!("{:.1}%", r * 100.0))
}

/// A UTC date `YYYY-MM-DD` (and `HH:MM` when `time`) of epoch seconds.
pub fn date(secs: f64, time: bool) -> String {
    let days = (secs / DAY).floor() as i64;
    let rem = secs - days as f64 * DAY;
    // Howard Hinnant's civil-from-days algorithm.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    if time {
        let h = (rem / 3600.0) as u32;
        let min = (rem % 3600.0 / 60.0) as u32;
        format!("{y:04}-{m:02}-{d:02} {h:02}:{min:02}")
    } else {
        format!("{y:04}-{m:02}-{d:02}")
    }
}

/// One service's history: its records (newest first) and metrics.
#[derive(Debug, Clone)]
pub struct ServiceHistory {
    pub service: String,
    pub cluster: String,
    pub records: Vec<Record>,
    pub metrics: Metrics,
}

/// The whole report: every service, the total, and the window.
#[derive(Debug, Clone)]
pub struct Report {
    pub window: Window,
    pub services: Vec<ServiceHistory>,
    pub total: Metrics,
    /// How many of the newest deployments to list per service.
    pub last: usize,
}

impl Report {
    pub fn new(window: Window, mut services: Vec<ServiceHistory>, last: usize) -> Report {
        for s in &mut services {
            s.records.sort_by(|a, b| b.created.total_cmp(&a.created));
        }
        let total = Metrics::sum(services.iter().map(|s| &s.metrics), window);
        Report {
            window,
            services,
            total,
            last,
        }
    }

    fn row(name: &str, m: &Metrics) -> [String; 7] {
        [
            name.to_string(),
            m.deployments.to_string(),
            format!("{:.1}", m.per_day * 7.0),
            m.failed.to_string(),
            percent(m.change_failure_rate),
            span(m.median_restore()),
            format!("{} / {}", span(m.median_duration()), span(m.p90_duration())),
        ]
    }

    const HEADERS: [&'static str; 7] = [
        "service",
        "deploys",
        "per week",
        "failed",
        "change failure rate",
        "time to restore (median)",
        "duration (median / p90)",
    ];

    fn rows(&self) -> Vec<[String; 7]> {
        let mut rows: Vec<[String; 7]> = self
            .services
            .iter()
            .map(|s| Self::row(&format!("{} ({})", s.service, s.cluster), &s.metrics))
            .collect();
        if self.services.len() > 1 {
            rows.push(Self::row("total", &self.total));
        }
        rows
    }

    fn heading(&self) -> String {
        format!(
            "Deployments {} to {} ({:.0} days), from ECS's service deployments",
            date(self.window.from, false),
            date(self.window.to, false),
            self.window.days()
        )
    }

    /// A table for a terminal, then each service's newest deployments.
    pub fn text(&self) -> String {
        let rows = self.rows();
        let mut out = format!("{}\n\n", self.heading());
        out.push_str(&crate::report::table(Self::HEADERS, &rows));
        for s in &self.services {
            if s.metrics.unrestored > 0 {
                out.push_str(&format!(
                    "\n{}: the last failure is not followed by a successful deployment yet\n",
                    s.service
                ));
            }
            if s.records.is_empty() || self.last == 0 {
                continue;
            }
            out.push_str(&format!("\nlast deployments of {}:\n", s.service));
            for r in s.records.iter().take(self.last) {
                out.push_str(&format!(
                    "  {}  {:<9}  {:<24}  {:>7}  {}\n",
                    date(r.created, true),
                    Class::of(&r.status).word(),
                    r.revision.as_deref().unwrap_or("?"),
                    span(r.finished.map(|f| f - r.started.unwrap_or(r.created))),
                    r.status
                ));
            }
        }
        out
    }

    /// Markdown for a job summary or an issue: the table and a Mermaid chart of deployments
    /// per week, failed ones as a line.
    pub fn markdown(&self) -> String {
        let mut out = format!("### {}\n\n", self.heading());
        out.push_str(&format!("| {} |\n", Self::HEADERS.join(" | ")));
        out.push_str("| --- | ---: | ---: | ---: | ---: | ---: | ---: |\n");
        for r in self.rows() {
            out.push_str(&format!("| {} |\n", r.join(" | ")));
        }
        out.push('\n');
        out.push_str(&self.mermaid());
        out
    }

    /// A Mermaid `xychart-beta`: bars are deployments per week, the line the failed ones.
    pub fn mermaid(&self) -> String {
        let weeks = &self.total.weeks;
        let labels: Vec<String> = (0..weeks.len())
            .map(|i| {
                let start = self.window.from + i as f64 * WEEK;
                format!("\"{}\"", &date(start, false)[5..])
            })
            .collect();
        let top = weeks.iter().map(|(d, _)| *d).max().unwrap_or(0).max(1);
        let bars: Vec<String> = weeks.iter().map(|(d, _)| d.to_string()).collect();
        let fails: Vec<String> = weeks.iter().map(|(_, f)| f.to_string()).collect();
        format!(
            "```mermaid\nxychart-beta\n    title \"Deployments per week (line: failed)\"\n    x-axis [{}]\n    y-axis \"deployments\" 0 --> {}\n    bar [{}]\n    line [{}]\n```\n",
            labels.join(", "),
            top,
            bars.join(", "),
            fails.join(", ")
        )
    }

    pub fn json(&self) -> Value {
        json!({
            "from": date(self.window.from, true),
            "to": date(self.window.to, true),
            "services": self.services.iter().map(|s| json!({
                "service": s.service,
                "cluster": s.cluster,
                "metrics": s.metrics.to_json(),
                "last": s.records.iter().take(self.last).map(|r| json!({
                    "service_deployment_arn": r.arn,
                    "status": r.status,
                    "outcome": Class::of(&r.status).word(),
                    "revision": r.revision,
                    "created": date(r.created, true),
                    "duration_secs": r.finished.map(|f| round2(f - r.started.unwrap_or(r.created))),
                    "reason": r.reason,
                })).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
            "total": self.total.to_json(),
            "markdown": self.markdown(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: f64 = 1_790_000_000.0; // a Monday would not matter: weeks count from `from`

    fn rec(created_h: f64, status: &str, minutes: f64) -> Record {
        let created = T0 + created_h * 3600.0;
        Record {
            arn: format!("sd-{created_h}"),
            created,
            started: Some(created + 10.0),
            finished: (!matches!(status, "IN_PROGRESS" | "PENDING"))
                .then_some(created + 10.0 + minutes * 60.0),
            status: status.into(),
            reason: None,
            revision: Some("web:1".into()),
        }
    }

    fn window(days: f64) -> Window {
        Window {
            from: T0,
            to: T0 + days * DAY,
        }
    }

    #[test]
    fn counts_rates_restores_and_durations_by_hand() {
        // Hours since T0: 1 ok (3 min), 5 failed (4 min), 6 failed (2 min), 30 ok (5 min),
        // 50 stopped, 200 ok (6 min), 250 in progress.
        let rs = vec![
            rec(30.0, "SUCCESSFUL", 5.0),
            rec(1.0, "SUCCESSFUL", 3.0),
            rec(5.0, "ROLLBACK_SUCCESSFUL", 4.0),
            rec(6.0, "ROLLBACK_FAILED", 2.0),
            rec(50.0, "STOPPED", 1.0),
            rec(200.0, "SUCCESSFUL", 6.0),
            rec(250.0, "IN_PROGRESS", 0.0),
        ];
        let m = Metrics::of(&rs, window(14.0));
        assert_eq!(m.deployments, 7);
        assert_eq!(
            (m.succeeded, m.failed, m.stopped, m.in_flight),
            (3, 2, 1, 1)
        );
        assert_eq!(m.change_failure_rate, Some(2.0 / 5.0));
        assert!(
            (m.per_day - 0.5).abs() < 1e-9,
            "7 in 14 days: {}",
            m.per_day
        );
        // Restore: from the end of the first failure (h5 + 10 s + 4 min) to the end of the
        // next success (h30 + 10 s + 5 min) = 25 h + 1 min.
        assert_eq!(m.restores, vec![25.0 * 3600.0 + 60.0]);
        assert_eq!(m.unrestored, 0);
        // Durations of finished successes and failures: 3, 4, 2, 5, 6 min.
        assert_eq!(m.median_duration(), Some(4.0 * 60.0));
        assert_eq!(m.p90_duration(), Some(6.0 * 60.0));
        // Week 1 (h0..h168): 5 deployments, 2 failed; week 2: 2, none failed.
        assert_eq!(m.weeks, vec![(5, 2), (2, 0)]);
    }

    #[test]
    fn a_failure_without_a_later_success_is_unrestored_and_old_records_are_left_out() {
        let rs = vec![
            rec(-30.0, "SUCCESSFUL", 1.0),
            rec(2.0, "SUCCESSFUL", 1.0),
            rec(3.0, "ROLLBACK_SUCCESSFUL", 1.0),
        ];
        let m = Metrics::of(&rs, window(7.0));
        assert_eq!(
            m.deployments, 2,
            "the record before the window is not counted"
        );
        assert!(m.restores.is_empty());
        assert_eq!(m.unrestored, 1);
        assert_eq!(m.change_failure_rate, Some(0.5));
    }

    #[test]
    fn totals_add_services_and_keep_every_restore() {
        let w = window(7.0);
        let a = Metrics::of(
            &[
                rec(1.0, "ROLLBACK_SUCCESSFUL", 1.0),
                rec(2.0, "SUCCESSFUL", 1.0),
            ],
            w,
        );
        let b = Metrics::of(&[rec(1.0, "SUCCESSFUL", 2.0)], w);
        let t = Metrics::sum([&a, &b], w);
        assert_eq!((t.deployments, t.succeeded, t.failed), (3, 2, 1));
        assert_eq!(t.restores.len(), 1);
        assert_eq!(t.change_failure_rate, Some(1.0 / 3.0));
        assert_eq!(t.weeks, vec![(3, 1)]);
    }

    #[test]
    fn percentiles_by_nearest_rank() {
        let v: Vec<f64> = (1..=10).map(f64::from).collect();
        assert_eq!(percentile(&v, 0.5), Some(5.0));
        assert_eq!(percentile(&v, 0.9), Some(9.0));
        assert_eq!(percentile(&[7.0], 0.9), Some(7.0));
        assert_eq!(percentile(&[], 0.5), None);
    }

    #[test]
    fn dates_and_spans() {
        assert_eq!(date(0.0, true), "1970-01-01 00:00");
        assert_eq!(date(951_782_400.0, false), "2000-02-29");
        assert_eq!(date(1_795_917_600.0, true), "2026-11-29 02:00");
        assert_eq!(span(Some(59.4)), "59s");
        assert_eq!(span(Some(185.0)), "3m05s");
        assert_eq!(span(Some(3.0 * 3600.0 + 120.0)), "3h02m");
        assert_eq!(span(Some(2.0 * DAY + 4.0 * 3600.0)), "2d04h");
        assert_eq!(span(None), "-");
    }

    #[test]
    fn the_chart_has_one_bar_and_one_point_per_week() {
        let w = window(14.0);
        let s = ServiceHistory {
            service: "web".into(),
            cluster: "c".into(),
            records: vec![
                rec(1.0, "SUCCESSFUL", 1.0),
                rec(200.0, "ROLLBACK_FAILED", 1.0),
            ],
            metrics: Metrics::of(
                &[
                    rec(1.0, "SUCCESSFUL", 1.0),
                    rec(200.0, "ROLLBACK_FAILED", 1.0),
                ],
                w,
            ),
        };
        let r = Report::new(w, vec![s], 5);
        let chart = r.mermaid();
        assert!(chart.contains("bar [1, 1]"), "{chart}");
        assert!(chart.contains("line [0, 1]"), "{chart}");
        assert!(chart.contains("x-axis [\"09-21\", \"09-28\"]"), "{chart}");
        let text = r.text();
        assert!(
            text.contains("not followed by a successful deployment"),
            "{text}"
        );
        assert!(text.contains("50.0%"), "{text}");
    }
}
