//! The live view on a terminal: one line per service that updates in place (counts, target
//! health, what we wait for, elapsed time), with ECS events, stopped tasks and verdicts
//! printed above it once each. Used only when stderr is a terminal; elsewhere the plain
//! timestamped lines of [`super::lines`] are the log.

use std::collections::BTreeMap;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::lines;
use crate::deploy::event::{Event, Stamped};
use crate::render::Secrets;

/// A sink drawing the live view on stderr.
pub(crate) struct LiveView {
    multi: MultiProgress,
    bars: BTreeMap<String, ProgressBar>,
    /// Per service: (counts text, targets text).
    status: BTreeMap<String, (String, String)>,
    secrets: Secrets,
}

impl LiveView {
    pub(crate) fn new(secrets: Secrets) -> Self {
        LiveView {
            multi: MultiProgress::with_draw_target(ProgressDrawTarget::stderr()),
            bars: BTreeMap::new(),
            status: BTreeMap::new(),
            secrets,
        }
    }

    fn bar(&mut self, service: &str) -> ProgressBar {
        if let Some(b) = self.bars.get(service) {
            return b.clone();
        }
        let style =
            ProgressStyle::with_template("{spinner:.cyan} {prefix:.bold} {wide_msg} [{elapsed}]")
                .unwrap_or_else(|_| ProgressStyle::default_spinner());
        let bar = self.multi.add(ProgressBar::new_spinner());
        bar.set_style(style);
        bar.set_prefix(service.to_string());
        bar.enable_steady_tick(Duration::from_millis(120));
        self.bars.insert(service.to_string(), bar.clone());
        bar
    }

    fn refresh(&mut self, service: &str) {
        let (counts, targets) = self.status.get(service).cloned().unwrap_or_default();
        let msg = [counts, targets]
            .into_iter()
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
            .join(" · ");
        let msg = self.secrets.mask(&msg);
        self.bar(service).set_message(msg);
    }

    fn above(&self, e: &Stamped) {
        let _ = self.multi.println(self.secrets.mask(&lines::plain(e)));
    }

    /// Handles one event.
    pub(crate) fn handle(&mut self, e: &Stamped) {
        match &e.event {
            Event::DeploymentStarted { service, .. } => {
                self.above(e);
                self.status
                    .insert(service.clone(), ("starting".into(), String::new()));
                self.refresh(service);
            }
            Event::Progress {
                service,
                desired,
                running,
                pending,
                failed,
                waiting_for,
                ..
            } => {
                let entry = self.status.entry(service.clone()).or_default();
                entry.0 = format!(
                    "{running}/{desired} running, {pending} pending, {failed} failed — {waiting_for}"
                );
                self.refresh(service);
            }
            Event::TargetHealth {
                service,
                healthy,
                unhealthy,
                other,
            } => {
                let entry = self.status.entry(service.clone()).or_default();
                entry.1 =
                    format!("targets {healthy} healthy, {unhealthy} unhealthy, {other} other");
                self.refresh(service);
            }
            Event::Verdict {
                service,
                success,
                detail,
            } => {
                let bar = self.bar(service);
                let mark = if *success { "✔" } else { "✘" };
                bar.finish_with_message(self.secrets.mask(&format!("{mark} {detail}")));
                self.above(e);
            }
            _ => self.above(e),
        }
    }

    /// Stops every spinner (at the end of the run).
    pub(crate) fn finish(&mut self) {
        for bar in self.bars.values() {
            if !bar.is_finished() {
                bar.abandon();
            }
        }
    }
}

impl Drop for LiveView {
    fn drop(&mut self) {
        self.finish();
    }
}
