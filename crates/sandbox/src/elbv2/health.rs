//! Targets and their health: registration (by the rollout simulation or RegisterTargets),
//! health derived lazily from the check settings and the time the application answers,
//! draining after deregistration; DescribeTargetHealth.

use std::collections::BTreeMap;

use super::*;
use crate::api::ApiError;
use crate::query::{XmlWriter, member_prefixes, optional_i32, required};

/// The index of the first check (counted from 1 after registration) at or after `at`.
fn first_check_at_or_after(registered_at: f64, interval: f64, at: f64) -> f64 {
    ((at - registered_at) / interval).ceil().max(1.0)
}

impl Elbv2 {
    /// Registers a task's IP. `app_healthy_from`: virtual time from which the app answers health
    /// checks (None: never). An unknown target group is ignored. Registering a target that is
    /// already registered (and not draining) only updates when its app is healthy; a draining
    /// one starts over.
    pub fn register_target(
        &mut self,
        tg_arn: &str,
        id: &str,
        port: i32,
        now: f64,
        app_healthy_from: Option<f64>,
    ) {
        self.observe(now);
        self.prune(now);
        let Some(tg) = self.tg_mut(tg_arn) else {
            return;
        };
        if let Some(existing) = tg
            .targets
            .iter_mut()
            .find(|t| t.id == id && t.port == port && t.drain_until.is_none())
        {
            existing.app_healthy_from = app_healthy_from;
            return;
        }
        tg.targets.retain(|t| !(t.id == id && t.port == port));
        tg.targets.push(Target {
            id: id.to_string(),
            port,
            registered_at: now,
            app_healthy_from,
            app_unhealthy_from: None,
            drain_until: None,
            answer: None,
        });
    }

    /// Changes what a registered target's application does: healthy from `healthy_from`, failing
    /// again from `unhealthy_from` (e.g. a crash). Returns false when no such target exists.
    pub fn set_app_health(
        &mut self,
        tg_arn: &str,
        id: &str,
        healthy_from: Option<f64>,
        unhealthy_from: Option<f64>,
    ) -> bool {
        let Some(tg) = self.tg_mut(tg_arn) else {
            return false;
        };
        let mut found = false;
        for target in tg
            .targets
            .iter_mut()
            .filter(|t| t.id == id && t.drain_until.is_none())
        {
            target.app_healthy_from = healthy_from;
            target.app_unhealthy_from = unhealthy_from;
            found = true;
        }
        found
    }

    /// The HTTP code a registered target's application answers failing health checks with
    /// (`Target.ResponseCodeMismatch`). Returns false when no such target exists.
    pub fn set_app_answer(&mut self, tg_arn: &str, id: &str, code: u16) -> bool {
        let Some(tg) = self.tg_mut(tg_arn) else {
            return false;
        };
        let mut found = false;
        for target in tg
            .targets
            .iter_mut()
            .filter(|t| t.id == id && t.drain_until.is_none())
        {
            target.answer = Some(code);
            found = true;
        }
        found
    }

    /// Starts draining every registration of `id`; the target disappears after the group's
    /// deregistration delay (at once if the group receives no traffic).
    pub fn deregister_target(&mut self, tg_arn: &str, id: &str, now: f64) {
        self.observe(now);
        let in_use = self.tg_in_use(tg_arn);
        let Some(tg) = self.tg_mut(tg_arn) else {
            return;
        };
        let delay = if in_use {
            tg.deregistration_delay()
        } else {
            0.0
        };
        for target in tg.targets.iter_mut().filter(|t| t.id == id) {
            if target.drain_until.is_none() {
                target.drain_until = Some(now + delay);
            }
        }
        self.prune(now);
    }

    /// Drops targets whose draining is over.
    pub(super) fn prune(&mut self, now: f64) {
        for tg in &mut self.target_groups {
            tg.targets
                .retain(|t| t.drain_until.is_none_or(|until| now < until));
        }
    }

    /// The target's state at `now` (None: unknown target group or target, or drained away).
    pub fn target_state(&self, tg_arn: &str, id: &str, now: f64) -> Option<TargetState> {
        let tg = self.tg(tg_arn)?;
        let target = tg
            .targets
            .iter()
            .rev()
            .find(|t| t.id == id && t.drain_until.is_none_or(|until| now < until))?;
        Some(self.health_of(tg, target, now).0)
    }

    /// The registered (or still draining) targets of a group at `now`: id, port and state.
    pub fn targets(&self, tg_arn: &str, now: f64) -> Vec<(String, i32, TargetState)> {
        let Some(tg) = self.tg(tg_arn) else {
            return Vec::new();
        };
        tg.targets
            .iter()
            .filter(|t| t.drain_until.is_none_or(|until| now < until))
            .map(|t| (t.id.clone(), t.port, self.health_of(tg, t, now).0))
            .collect()
    }

    /// When the target's state may next change after `now`: its next health check or the end
    /// of its draining. Lets a simulation sleep exactly until something can happen.
    pub fn next_change_time(&self, tg_arn: &str, id: &str, now: f64) -> Option<f64> {
        let tg = self.tg(tg_arn)?;
        let target = tg
            .targets
            .iter()
            .rev()
            .find(|t| t.id == id && t.drain_until.is_none_or(|until| now < until))?;
        if let Some(until) = target.drain_until {
            return Some(until);
        }
        let interval = f64::from(tg.health.interval_seconds.max(1));
        let done = ((now - target.registered_at) / interval).floor().max(0.0);
        Some(target.registered_at + (done + 1.0) * interval)
    }

    fn health_row(&self, tg: &TargetGroup, target: &Target, now: f64) -> HealthRow {
        let (state, reason, description) = self.health_of(tg, target, now);
        HealthRow {
            id: target.id.clone(),
            port: target.port,
            state,
            reason,
            description,
        }
    }

    /// State, reason and description of a target at `now`.
    fn health_of(
        &self,
        tg: &TargetGroup,
        target: &Target,
        now: f64,
    ) -> (TargetState, Option<&'static str>, Option<String>) {
        if target.drain_until.is_some() {
            return (
                TargetState::Draining,
                Some("Target.DeregistrationInProgress"),
                Some("Target deregistration is in progress".into()),
            );
        }
        if !self.tg_in_use(&tg.arn) {
            return (
                TargetState::Unused,
                Some("Target.NotInUse"),
                Some(
                    "Target group is not configured to receive traffic from the load balancer"
                        .into(),
                ),
            );
        }
        if !tg.health.enabled {
            return (
                TargetState::Unavailable,
                Some("Target.HealthCheckDisabled"),
                Some("Health checks are disabled".into()),
            );
        }
        match check_outcome(&tg.health, target, now) {
            TargetState::Healthy => (TargetState::Healthy, None, None),
            TargetState::Unhealthy => match target.answer {
                // ELB's words for a code outside the matcher (DescribeTargetHealth).
                Some(code) => (
                    TargetState::Unhealthy,
                    Some("Target.ResponseCodeMismatch"),
                    Some(format!("Health checks failed with these codes: [{code}]")),
                ),
                None => (
                    TargetState::Unhealthy,
                    Some("Target.FailedHealthChecks"),
                    Some("Health checks failed".into()),
                ),
            },
            _ => (
                TargetState::Initial,
                Some("Elb.RegistrationInProgress"),
                Some("Target registration is in progress".into()),
            ),
        }
    }

    pub(super) fn api_describe_target_health(
        &self,
        params: &BTreeMap<String, String>,
        now: f64,
    ) -> Result<String, ApiError> {
        let tg_arn = required(params, "TargetGroupArn")?;
        let tg = self.tg(tg_arn).ok_or_else(|| tg_not_found(tg_arn))?;
        let mut rows: Vec<HealthRow> = Vec::new();
        let asked = member_prefixes(params, "Targets");
        let live = |t: &&Target| t.drain_until.is_none_or(|until| now < until);
        if asked.is_empty() {
            for target in tg.targets.iter().filter(live) {
                rows.push(self.health_row(tg, target, now));
            }
        } else {
            for item in asked {
                let id = required(params, &format!("{item}.Id"))?;
                let port = optional_i32(params, &format!("{item}.Port"))?;
                let found = tg
                    .targets
                    .iter()
                    .filter(live)
                    .filter(|t| t.id == id && port.is_none_or(|p| p == t.port))
                    .collect::<Vec<_>>();
                if found.is_empty() {
                    rows.push(HealthRow {
                        id: id.to_string(),
                        port: port.unwrap_or(tg.port),
                        state: TargetState::Unused,
                        reason: Some("Target.NotRegistered"),
                        description: Some("Target is not registered to the target group".into()),
                    });
                }
                for target in found {
                    rows.push(self.health_row(tg, target, now));
                }
            }
        }
        let mut w = XmlWriter::new();
        w.list("TargetHealthDescriptions", rows, |w, row| {
            w.open("Target")
                .text("Id", &row.id)
                .value("Port", row.port)
                .close("Target");
            let hc_port = if tg.health.port == "traffic-port" {
                row.port.to_string()
            } else {
                tg.health.port.clone()
            };
            w.text("HealthCheckPort", &hc_port);
            w.open("TargetHealth")
                .text("State", row.state.as_str())
                .opt_text("Reason", row.reason)
                .opt_text("Description", row.description.as_deref())
                .close("TargetHealth");
        });
        Ok(w.finish())
    }

    fn parse_targets(
        &self,
        params: &BTreeMap<String, String>,
        tg: &TargetGroup,
    ) -> Result<Vec<(String, Option<i32>)>, ApiError> {
        let items = member_prefixes(params, "Targets");
        if items.is_empty() {
            return Err(validation("At least one target must be specified"));
        }
        let mut targets = Vec::new();
        for item in items {
            let id = required(params, &format!("{item}.Id"))?;
            let port = optional_i32(params, &format!("{item}.Port"))?;
            if let Some(port) = port {
                validate_port(port)?;
            }
            if tg.target_type == "ip" && id.parse::<std::net::IpAddr>().is_err() {
                return Err(ApiError::client(
                    "InvalidTarget",
                    format!(
                        "'{id}' is not a valid IP address for target group '{}'",
                        tg.name
                    ),
                ));
            }
            targets.push((id.to_string(), port));
        }
        Ok(targets)
    }

    pub(super) fn api_register_targets(
        &mut self,
        params: &BTreeMap<String, String>,
        now: f64,
    ) -> Result<String, ApiError> {
        let arn = required(params, "TargetGroupArn")?.to_string();
        let tg = self.tg(&arn).ok_or_else(|| tg_not_found(&arn))?;
        let default_port = tg.port;
        let targets = self.parse_targets(params, tg)?;
        for (id, port) in targets {
            self.register_target(&arn, &id, port.unwrap_or(default_port), now, Some(now));
        }
        Ok(String::new())
    }

    pub(super) fn api_deregister_targets(
        &mut self,
        params: &BTreeMap<String, String>,
        now: f64,
    ) -> Result<String, ApiError> {
        let arn = required(params, "TargetGroupArn")?.to_string();
        let tg = self.tg(&arn).ok_or_else(|| tg_not_found(&arn))?;
        let targets = self.parse_targets(params, tg)?;
        for (id, port) in &targets {
            let registered = tg.targets.iter().any(|t| {
                &t.id == id && port.is_none_or(|p| p == t.port) && t.drain_until.is_none()
            });
            if !registered {
                return Err(ApiError::client(
                    "InvalidTarget",
                    format!("Target '{id}' is not registered to target group '{arn}'"),
                ));
            }
        }
        for (id, _) in targets {
            self.deregister_target(&arn, &id, now);
        }
        Ok(String::new())
    }
}

/// Outcome of the health checks run on a target up to `now` (Initial, Healthy or Unhealthy).
///
/// Check `k` (k = 1, 2, ...) runs at `registered_at + k * interval` and passes when the app is
/// healthy at that time. The app's health over time is: failing, then passing from
/// `app_healthy_from`, then failing again from `app_unhealthy_from`; so the checks form at most
/// three runs (fail, pass, fail). A run of `healthy_threshold` passes makes the target healthy;
/// a run of `unhealthy_threshold` failures makes it unhealthy; shorter runs change nothing.
fn check_outcome(health: &HealthCheck, target: &Target, now: f64) -> TargetState {
    let interval = f64::from(health.interval_seconds.max(1));
    let healthy_needed = f64::from(health.healthy_threshold.max(1));
    let unhealthy_needed = f64::from(health.unhealthy_threshold.max(1));
    let r = target.registered_at;
    let done = if now > r {
        ((now - r) / interval).floor()
    } else {
        0.0
    };
    if done < 1.0 {
        return TargetState::Initial;
    }
    // First passing check and first failing-again check (f64::INFINITY: never).
    let pass_from = target
        .app_healthy_from
        .map(|a| first_check_at_or_after(r, interval, a))
        .unwrap_or(f64::INFINITY);
    let fail_from = target
        .app_unhealthy_from
        .map(|u| first_check_at_or_after(r, interval, u))
        .unwrap_or(f64::INFINITY)
        .max(pass_from);
    // Runs clipped to the checks done so far.
    let fails_before = (pass_from - 1.0).min(done);
    let passes = (fail_from.min(done + 1.0) - pass_from).max(0.0);
    let fails_after = (done + 1.0 - fail_from).max(0.0);

    if passes <= 0.0 {
        // Only failures so far: one single run.
        return if done >= unhealthy_needed {
            TargetState::Unhealthy
        } else {
            TargetState::Initial
        };
    }
    let mut state = TargetState::Initial;
    if fails_before >= unhealthy_needed {
        state = TargetState::Unhealthy;
    }
    if passes >= healthy_needed {
        state = TargetState::Healthy;
    }
    if fails_after >= unhealthy_needed {
        state = TargetState::Unhealthy;
    }
    state
}
