//! The rollout timeline of a run: phases on a time axis and task counts over time, per
//! service, as Mermaid charts (job summary, PR comment) and as JSON series.
//!
//! Receives the run's event stream (a [`Recorder`] subscribed to the [`Emitter`] keeps every
//! stamped event); hands on [`ServiceTimeline`]s: phases (plan, register, rollout, each
//! blue/green stage, each gate, rollback) with start and end, the task counts of the new and
//! the old revision at each change, and the production traffic share of the new revision
//! when it shifts. Times are seconds from the run's start.

use std::sync::{Arc, Mutex};

use serde_json::{Value, json};

use crate::deploy::event::{Emitter, Event, Stamped};

/// Keeps every event of a run, with the time the run started.
#[derive(Clone)]
pub struct Recorder {
    start: f64,
    events: Arc<Mutex<Vec<Stamped>>>,
}

impl Recorder {
    /// Subscribes to `emitter`; `start` is the run's start (epoch seconds).
    pub fn subscribe(emitter: &Emitter, start: f64) -> Recorder {
        let r = Recorder {
            start,
            events: Arc::default(),
        };
        let events = r.events.clone();
        emitter.subscribe(move |e| {
            // Only what the timeline is built from: not service events, gate output lines or
            // target health, which a long run has many of.
            let kept = matches!(
                e.event,
                Event::Plan { .. }
                    | Event::Registered { .. }
                    | Event::RegistrationSkipped { .. }
                    | Event::DeploymentStarted { .. }
                    | Event::Stage { .. }
                    | Event::GateStarted { .. }
                    | Event::GateFinished { .. }
                    | Event::Verdict { .. }
                    | Event::RollbackStarted { .. }
                    | Event::RollbackFinished { .. }
                    | Event::Progress { .. }
                    | Event::Traffic { .. }
                    | Event::TaskStarted { .. }
                    | Event::TaskEnded { .. }
            );
            if kept {
                events
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push(e.clone());
            }
        });
        r
    }

    /// The timelines of the services seen so far, ending at `end` (epoch seconds).
    pub fn timelines(&self, end: f64) -> Vec<ServiceTimeline> {
        let events = self.events.lock().unwrap_or_else(|p| p.into_inner());
        build(&events, self.start, end)
    }
}

/// One phase: a name, its kind (for the chart's colours) and its span.
#[derive(Debug, Clone, PartialEq)]
pub struct Phase {
    pub name: String,
    pub kind: PhaseKind,
    pub start: f64,
    pub end: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PhaseKind {
    Done,
    Active,
    Failed,
}

/// One service's timeline.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ServiceTimeline {
    pub service: String,
    pub phases: Vec<Phase>,
    /// (time, tasks running on the new revision, tasks running on the old ones).
    pub counts: Vec<(f64, i32, i32)>,
    /// (time, production traffic share of the new revision, percent).
    pub traffic: Vec<(f64, i32)>,
    pub end: f64,
}

/// Builds the timelines from stamped events. Events without a service (registration) belong
/// to the service of the last `plan` event: a run plans and applies one service at a time.
pub fn build(events: &[Stamped], start: f64, end: f64) -> Vec<ServiceTimeline> {
    let mut b = Builder::default();
    for e in events {
        b.take((e.time - start).max(0.0), &e.event);
    }
    let end = (end - start).max(0.0);
    for s in &mut b.out {
        s.end = end;
        for p in &mut s.phases {
            if p.end.is_nan() {
                p.end = end;
            }
        }
    }
    b.out
}

/// The timelines under construction, and per service our deployment's id.
#[derive(Default)]
struct Builder {
    out: Vec<ServiceTimeline>,
    ours: Vec<Option<String>>,
    /// The service of the last `plan` event.
    current: Option<usize>,
}

impl Builder {
    /// The index of `service`'s timeline, started when it has none yet.
    fn index_of(&mut self, service: &str) -> usize {
        if let Some(i) = self.out.iter().position(|t| t.service == service) {
            return i;
        }
        self.out.push(ServiceTimeline {
            service: service.to_string(),
            ..ServiceTimeline::default()
        });
        self.ours.push(None);
        self.out.len() - 1
    }

    /// Opens the phase `name` of `service` at `t`.
    fn open(&mut self, service: &str, name: &str, t: f64) {
        let i = self.index_of(service);
        self.out[i]
            .phases
            .push(phase(name, PhaseKind::Active, t, f64::NAN));
    }

    /// Ends `service`'s first open phase called `name` at `t`, done or failed.
    fn end(&mut self, service: &str, name: &str, t: f64, ok: bool) {
        let i = self.index_of(service);
        let p = self.out[i]
            .phases
            .iter_mut()
            .find(|p| p.name == name && p.end.is_nan());
        settle(p, t, ok);
    }

    /// Takes one event at `t` (seconds since the run's start).
    fn take(&mut self, t: f64, event: &Event) {
        match event {
            Event::Plan { service, .. } => {
                let i = self.index_of(service);
                self.current = Some(i);
                // From the run's start (or the previous service's apply) to the plan.
                let from = self
                    .out
                    .iter()
                    .flat_map(|s| s.phases.iter().filter(|p| p.name == "register"))
                    .map(|p| p.end)
                    .fold(0.0, f64::max);
                self.out[i]
                    .phases
                    .push(phase("render and plan", PhaseKind::Done, from, t));
            }
            Event::Registered { .. } | Event::RegistrationSkipped { .. } => {
                if let Some(i) = self.current {
                    let from = self.out[i].phases.last().map_or(t, |p| p.end);
                    self.out[i]
                        .phases
                        .push(phase("register", PhaseKind::Done, from, t));
                }
            }
            Event::DeploymentStarted {
                service,
                deployment_id,
                ..
            } => {
                let i = self.index_of(service);
                self.ours[i] = Some(deployment_id.clone());
                self.open(service, "rollout", t);
            }
            Event::Stage { service, stage, .. } => {
                let i = self.index_of(service);
                close(&mut self.out[i], "stage ", t);
                self.open(service, &format!("stage {stage}"), t);
            }
            Event::GateStarted { service, stage, .. } => {
                self.open(service, &format!("gate at {stage}"), t);
            }
            Event::GateFinished {
                service, passed, ..
            } => {
                let i = self.index_of(service);
                let p = self.out[i]
                    .phases
                    .iter_mut()
                    .rev()
                    .find(|p| p.name.starts_with("gate ") && p.end.is_nan());
                settle(p, t, *passed);
            }
            Event::Verdict {
                service, success, ..
            } => {
                let i = self.index_of(service);
                close(&mut self.out[i], "stage ", t);
                self.end(service, "rollout", t, *success);
            }
            Event::RollbackStarted { service, .. } => {
                let i = self.index_of(service);
                close(&mut self.out[i], "stage ", t);
                self.open(service, "rollback", t);
            }
            Event::RollbackFinished {
                service, success, ..
            } => self.end(service, "rollback", t, *success),
            Event::TaskStarted { service, .. } => self.open(service, "one-off task", t),
            Event::TaskEnded {
                service, exit_code, ..
            } => self.end(service, "one-off task", t, *exit_code == 0),
            _ => self.sample(t, event),
        }
    }

    /// Takes a task count or traffic sample.
    fn sample(&mut self, t: f64, event: &Event) {
        match event {
            Event::Progress {
                service,
                deployment_id,
                running,
                other_running,
                ..
            } => {
                let i = self.index_of(service);
                // The PRIMARY deployment's counts: ours, or (after a rollback) the old one.
                let mine = self.ours[i].as_deref() == Some(deployment_id.as_str());
                let (new, old) = if mine {
                    (*running, *other_running)
                } else {
                    (*other_running, *running)
                };
                self.out[i].counts.push((t, new, old));
            }
            Event::Traffic {
                service,
                production_green: Some(share),
                ..
            } => {
                let i = self.index_of(service);
                if self.out[i].traffic.last().map(|x| x.1) != Some(*share) {
                    self.out[i].traffic.push((t, *share));
                }
            }
            _ => {}
        }
    }
}

/// Ends a phase at `t`, done or failed.
fn settle(p: Option<&mut Phase>, t: f64, ok: bool) {
    if let Some(p) = p {
        p.end = t;
        p.kind = if ok {
            PhaseKind::Done
        } else {
            PhaseKind::Failed
        };
    }
}

fn phase(name: &str, kind: PhaseKind, start: f64, end: f64) -> Phase {
    Phase {
        name: name.to_string(),
        kind,
        start,
        end,
    }
}

/// Ends the open phases whose name starts with `prefix` at `t`.
fn close(s: &mut ServiceTimeline, prefix: &str, t: f64) {
    for p in s
        .phases
        .iter_mut()
        .filter(|p| p.name.starts_with(prefix) && p.end.is_nan())
    {
        p.end = t;
        if p.kind == PhaseKind::Active {
            p.kind = PhaseKind::Done;
        }
    }
}

/// How many samples the count and traffic charts take over a service's timeline.
const SAMPLES: usize = 24;

impl ServiceTimeline {
    /// A Mermaid Gantt chart of the phases (milliseconds from the run's start, shown as
    /// minutes:seconds).
    pub fn gantt(&self) -> String {
        let mut out = format!(
            "gantt\n    title {} rollout timeline\n    dateFormat x\n    axisFormat %M:%S\n    section {}\n",
            label(&self.service),
            label(&self.service)
        );
        for p in &self.phases {
            let tag = match p.kind {
                PhaseKind::Done => "done, ",
                PhaseKind::Active => "active, ",
                PhaseKind::Failed => "crit, ",
            };
            let (from, to) = (ms(p.start), ms(p.end).max(ms(p.start) + 1));
            out.push_str(&format!("    {} :{tag}{from}, {to}\n", label(&p.name)));
        }
        out
    }

    /// Tasks running on the new and the old revision (and the new revision's production
    /// traffic share when it shifted) over time, sampled evenly: a Mermaid `xychart-beta`.
    /// `None` when no counts were seen.
    pub fn counts_chart(&self) -> Option<String> {
        if self.counts.is_empty() {
            return None;
        }
        let span = self.end.max(1.0);
        let at = |k: usize| span * k as f64 / (SAMPLES - 1) as f64;
        let step = |k: usize| {
            self.counts
                .iter()
                .rev()
                .find(|c| c.0 <= at(k))
                .map_or((0, 0), |c| (c.1, c.2))
        };
        let new: Vec<String> = (0..SAMPLES).map(|k| step(k).0.to_string()).collect();
        let old: Vec<String> = (0..SAMPLES).map(|k| step(k).1.to_string()).collect();
        let top = self
            .counts
            .iter()
            .map(|c| c.1.max(c.2))
            .max()
            .unwrap_or(1)
            .max(1);
        let mut out = format!(
            "xychart-beta\n    title \"{}: tasks running (bars: new revision, line: old)\"\n    x-axis \"seconds\" 0 --> {}\n    y-axis \"tasks\" 0 --> {top}\n    bar [{}]\n    line [{}]\n",
            label(&self.service),
            span.ceil() as u64,
            new.join(", "),
            old.join(", ")
        );
        if !self.traffic.is_empty() {
            let share = |k: usize| {
                self.traffic
                    .iter()
                    .rev()
                    .find(|x| x.0 <= at(k))
                    .map_or(0, |x| x.1)
            };
            let shares: Vec<String> = (0..SAMPLES).map(|k| share(k).to_string()).collect();
            out.push_str(&format!(
                "%% production traffic on the new revision, percent\n    line [{}]\n",
                shares
                    .iter()
                    .map(|s| {
                        // Scaled to the task axis so one chart holds both.
                        let pct: f64 = s.parse().unwrap_or(0.0);
                        format!("{:.2}", pct / 100.0 * top as f64)
                    })
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        Some(out)
    }

    pub fn json(&self) -> Value {
        let r = |x: f64| (x * 1000.0).round() / 1000.0;
        json!({
            "service": self.service,
            "end_secs": r(self.end),
            "phases": self.phases.iter().map(|p| json!({
                "name": p.name,
                "state": match p.kind { PhaseKind::Done => "done", PhaseKind::Active => "active", PhaseKind::Failed => "failed" },
                "start_secs": r(p.start),
                "end_secs": r(p.end),
            })).collect::<Vec<_>>(),
            "counts": self.counts.iter().map(|(t, n, o)| json!({"at_secs": r(*t), "new_running": n, "old_running": o})).collect::<Vec<_>>(),
            "traffic": self.traffic.iter().map(|(t, s)| json!({"at_secs": r(*t), "production_new_percent": s})).collect::<Vec<_>>(),
        })
    }
}

/// The Markdown block of a run's timelines: each service's charts, collapsed in `<details>`
/// when there are more than `open` services.
pub fn markdown(timelines: &[ServiceTimeline], open: usize) -> String {
    let mut body = String::new();
    for t in timelines.iter().filter(|t| !t.phases.is_empty()) {
        body.push_str(&format!("```mermaid\n{}```\n\n", t.gantt()));
        if let Some(c) = t.counts_chart() {
            body.push_str(&format!("```mermaid\n{c}```\n\n"));
        }
    }
    if body.is_empty() {
        return String::new();
    }
    if timelines.len() > open {
        format!(
            "<details><summary>Rollout timeline ({} services)</summary>\n\n{body}</details>\n",
            timelines.len()
        )
    } else {
        format!("#### Rollout timeline\n\n{body}")
    }
}

fn ms(secs: f64) -> u64 {
    (secs.max(0.0) * 1000.0).round() as u64
}

/// Text Mermaid takes as a task or section name (the Mermaid sink's escaping).
fn label(s: &str) -> String {
    crate::report::escape::mermaid_label(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(t: f64, event: Event) -> Stamped {
        Stamped {
            time: 1000.0 + t,
            event,
        }
    }

    fn progress(t: f64, id: &str, running: i32, other: i32) -> Stamped {
        at(
            t,
            Event::Progress {
                service: "web".into(),
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
    }

    /// A failed rolling deploy: plan at 0.5 s, registered at 0.7 s, started at 0.8 s, counts
    /// move, verdict at 20 s, rollback until 30 s, after which the old deployment is PRIMARY.
    fn failed_run() -> Vec<Stamped> {
        vec![
            at(
                0.5,
                Event::Plan {
                    service: "web".into(),
                    cluster: "c".into(),
                    register: true,
                    create_service: false,
                    summary: String::new(),
                },
            ),
            at(
                0.7,
                Event::Registered {
                    task_definition_arn: "web:2".into(),
                },
            ),
            at(
                0.8,
                Event::DeploymentStarted {
                    service: "web".into(),
                    deployment_id: "new".into(),
                    service_deployment_arn: None,
                    task_definition_arn: "web:2".into(),
                    created: false,
                },
            ),
            progress(1.0, "new", 0, 2),
            progress(10.0, "new", 1, 2),
            at(
                20.0,
                Event::Verdict {
                    service: "web".into(),
                    success: false,
                    detail: "crash".into(),
                },
            ),
            at(
                20.0,
                Event::RollbackStarted {
                    service: "web".into(),
                    method: "StopServiceDeployment ROLLBACK".into(),
                    to_task_definition: None,
                    source: None,
                },
            ),
            progress(25.0, "old", 2, 0),
            at(
                30.0,
                Event::RollbackFinished {
                    service: "web".into(),
                    success: true,
                    detail: String::new(),
                },
            ),
        ]
    }

    /// A release's migration step is on the timeline as a phase of its own, failed when the
    /// task exited non-zero.
    #[test]
    fn a_release_one_off_task_is_a_phase() {
        let events = vec![
            at(
                1.0,
                Event::TaskStarted {
                    service: "migrate".into(),
                    task_arn: "arn:aws:ecs:us-east-1:1:task/c/abc".into(),
                    task_definition_arn: "arn:aws:ecs:us-east-1:1:task-definition/api:2".into(),
                    container: "app".into(),
                },
            ),
            at(
                9.0,
                Event::TaskEnded {
                    service: "migrate".into(),
                    task_arn: "arn:aws:ecs:us-east-1:1:task/c/abc".into(),
                    outcome: "exited".into(),
                    exit_code: 3,
                    detail: "task abc stopped: container app exited with code 3".into(),
                },
            ),
        ];
        let t = build(&events, 1000.0, 1012.0);
        assert_eq!(t.len(), 1);
        assert_eq!(t[0].service, "migrate");
        let p = &t[0].phases[0];
        assert_eq!(
            (p.name.as_str(), p.kind, p.start, p.end),
            ("one-off task", PhaseKind::Failed, 1.0, 9.0)
        );
    }

    #[test]
    fn phases_and_counts_of_a_failed_deploy() {
        let t = build(&failed_run(), 1000.0, 1031.0);
        assert_eq!(t.len(), 1);
        let ms3 = |x: f64| (x * 1000.0).round() / 1000.0;
        let names: Vec<(&str, PhaseKind, f64, f64)> = t[0]
            .phases
            .iter()
            .map(|p| (p.name.as_str(), p.kind, ms3(p.start), ms3(p.end)))
            .collect();
        assert_eq!(
            names,
            vec![
                ("render and plan", PhaseKind::Done, 0.0, 0.5),
                ("register", PhaseKind::Done, 0.5, 0.7),
                ("rollout", PhaseKind::Failed, 0.8, 20.0),
                ("rollback", PhaseKind::Done, 20.0, 30.0),
            ]
        );
        // After the rollback the PRIMARY is the old deployment: its running count is "old".
        assert_eq!(t[0].counts, vec![(1.0, 0, 2), (10.0, 1, 2), (25.0, 0, 2)]);
        let gantt = t[0].gantt();
        assert!(gantt.contains("rollout :crit, 800, 20000"), "{gantt}");
        assert!(gantt.contains("register :done, 500, 700"), "{gantt}");
        let chart = t[0].counts_chart().unwrap();
        assert!(chart.contains("x-axis \"seconds\" 0 --> 31"), "{chart}");
        let bars = chart
            .lines()
            .find(|l| l.trim_start().starts_with("bar ["))
            .unwrap();
        assert_eq!(bars.matches(',').count(), SAMPLES - 1, "{bars}");
    }

    #[test]
    fn many_services_collapse() {
        let one = build(&failed_run(), 1000.0, 1031.0);
        assert!(markdown(&one, 3).starts_with("#### Rollout timeline"));
        let four: Vec<ServiceTimeline> = (0..4).map(|_| one[0].clone()).collect();
        assert!(markdown(&four, 3).starts_with("<details>"));
        assert_eq!(markdown(&[], 3), "");
    }
}
