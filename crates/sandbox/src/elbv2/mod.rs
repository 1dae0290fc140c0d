//! Elastic Load Balancing v2 (ALB) emulation: a pure, deterministic state machine.
//!
//! Receives awsQuery actions (already parsed into a key/value map by [`crate::query`])
//! with the virtual time `now`, plus direct calls from seeding and from the ECS rollout
//! simulation (register/deregister targets, read and set forward weights). Hands back the XML
//! body of the success response, or an [`ApiError`] with AWS's error code.
//!
//! Target health is derived lazily from the registration time, the target group's health-check
//! settings and the virtual time from which the application answers its health checks: checks
//! run every `interval` seconds after registration; `healthy` after `healthy_threshold`
//! consecutive passes, `unhealthy` after `unhealthy_threshold` consecutive failures, `initial`
//! before either; `draining` for the deregistration delay after deregistration, then gone.
//! Nothing here does I/O, reads a clock or draws random numbers.
//!
//! The state, the lookups and the dispatch are here; one module per resource:
//! [`load_balancers`], [`target_groups`], [`listeners`] (listeners, rules and their forward
//! weights), [`health`] (targets and their health).

mod health;
mod listeners;
mod load_balancers;
mod target_groups;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::api::ApiError;
use crate::query::xml_response;

/// The sandbox's default region and account.
const DEFAULT_REGION: &str = "us-east-1";
const DEFAULT_ACCOUNT: &str = "123456789012";
/// The target group attribute holding the deregistration delay, and its default.
pub const DEREGISTRATION_DELAY: &str = "deregistration_delay.timeout_seconds";
const DEFAULT_DEREGISTRATION_DELAY: f64 = 300.0;
const MAX_WEIGHT: i32 = 999;
const MAX_FORWARD_TARGET_GROUPS: usize = 5;

/// A target's health state, as `DescribeTargetHealth` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum TargetState {
    Initial,
    Healthy,
    Unhealthy,
    Unused,
    Draining,
    Unavailable,
}

impl TargetState {
    /// The wire value (`initial`, `healthy`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            TargetState::Initial => "initial",
            TargetState::Healthy => "healthy",
            TargetState::Unhealthy => "unhealthy",
            TargetState::Unused => "unused",
            TargetState::Draining => "draining",
            TargetState::Unavailable => "unavailable",
        }
    }
}

/// Health-check settings of a target group (AWS's defaults for an ALB target group).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthCheck {
    pub enabled: bool,
    pub protocol: String,
    /// `traffic-port` or a port number.
    pub port: String,
    pub path: String,
    pub interval_seconds: i32,
    pub timeout_seconds: i32,
    pub healthy_threshold: i32,
    pub unhealthy_threshold: i32,
    pub matcher: String,
}

impl Default for HealthCheck {
    fn default() -> Self {
        HealthCheck {
            enabled: true,
            protocol: "HTTP".to_string(),
            port: "traffic-port".to_string(),
            path: "/".to_string(),
            interval_seconds: 30,
            timeout_seconds: 5,
            healthy_threshold: 5,
            unhealthy_threshold: 2,
            matcher: "200".to_string(),
        }
    }
}

impl HealthCheck {
    /// Checks the ranges AWS enforces.
    fn validate(&self) -> Result<(), ApiError> {
        let ranged = [
            ("HealthCheckIntervalSeconds", self.interval_seconds, 5, 300),
            ("HealthCheckTimeoutSeconds", self.timeout_seconds, 2, 120),
            ("HealthyThresholdCount", self.healthy_threshold, 2, 10),
            ("UnhealthyThresholdCount", self.unhealthy_threshold, 2, 10),
        ];
        for (name, value, low, high) in ranged {
            if !(low..=high).contains(&value) {
                return Err(validation(format!(
                    "{name} must be between {low} and {high}, got {value}"
                )));
            }
        }
        if self.timeout_seconds >= self.interval_seconds {
            return Err(validation(format!(
                "Health check timeout ({} s) must be smaller than the interval ({} s)",
                self.timeout_seconds, self.interval_seconds
            )));
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct LoadBalancer {
    arn: String,
    name: String,
    dns_name: String,
    created_at: f64,
    kind: String,
    scheme: String,
    vpc_id: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Target {
    id: String,
    port: i32,
    registered_at: f64,
    /// From when the application passes health checks (None: never).
    app_healthy_from: Option<f64>,
    /// From when it fails them again (a crash after start; None: never).
    app_unhealthy_from: Option<f64>,
    /// Set by deregistration: the target disappears at this time.
    drain_until: Option<f64>,
    /// The HTTP code the application answers health checks with while it fails them (None:
    /// it does not answer well-formed HTTP: `Target.FailedHealthChecks`).
    #[serde(default)]
    answer: Option<u16>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct TargetGroup {
    arn: String,
    name: String,
    protocol: String,
    port: i32,
    target_type: String,
    vpc_id: String,
    health: HealthCheck,
    attributes: BTreeMap<String, String>,
    targets: Vec<Target>,
}

impl TargetGroup {
    fn deregistration_delay(&self) -> f64 {
        self.attributes
            .get(DEREGISTRATION_DELAY)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(DEFAULT_DEREGISTRATION_DELAY)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct FixedResponse {
    status_code: String,
    content_type: Option<String>,
    message_body: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Action {
    kind: String,
    order: Option<i32>,
    /// For `forward`: (target group ARN, weight).
    forward: Vec<(String, i32)>,
    fixed: Option<FixedResponse>,
}

impl Action {
    fn forward(weights: &[(String, i32)]) -> Self {
        Action {
            kind: "forward".to_string(),
            order: Some(1),
            forward: weights.to_vec(),
            fixed: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Condition {
    field: String,
    values: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Listener {
    arn: String,
    lb_arn: String,
    port: i32,
    protocol: String,
    default_actions: Vec<Action>,
    /// The ARN of the listener's default rule (DescribeRules lists it with priority `default`).
    default_rule_arn: String,
}

/// One row of DescribeRules: a rule, or a listener's default rule.
struct RuleRow {
    arn: String,
    priority: String,
    conditions: Vec<Condition>,
    actions: Vec<Action>,
    is_default: bool,
}

/// One row of DescribeTargetHealth.
struct HealthRow {
    id: String,
    port: i32,
    state: TargetState,
    reason: Option<&'static str>,
    description: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Rule {
    arn: String,
    listener_arn: String,
    priority: i32,
    conditions: Vec<Condition>,
    actions: Vec<Action>,
}

/// The ELBv2 state of one sandbox: load balancers, target groups with their targets and
/// attributes, listeners and rules.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct Elbv2 {
    region: String,
    account: String,
    /// Counter feeding deterministic resource ids.
    seq: u64,
    /// The latest virtual time seen, used as the creation time of seeded resources.
    last_now: f64,
    load_balancers: Vec<LoadBalancer>,
    target_groups: Vec<TargetGroup>,
    listeners: Vec<Listener>,
    rules: Vec<Rule>,
}

fn validation(message: impl Into<String>) -> ApiError {
    ApiError::client("ValidationError", message)
}

fn tg_not_found(what: &str) -> ApiError {
    ApiError::client(
        "TargetGroupNotFound",
        format!("Target group '{what}' not found"),
    )
}

fn lb_not_found(what: &str) -> ApiError {
    ApiError::client(
        "LoadBalancerNotFound",
        format!("Load balancer '{what}' not found"),
    )
}

fn listener_not_found(what: &str) -> ApiError {
    ApiError::client("ListenerNotFound", format!("Listener '{what}' not found"))
}

fn rule_not_found(what: &str) -> ApiError {
    ApiError::client("RuleNotFound", format!("Rule '{what}' not found"))
}

/// A 64-bit FNV-1a hash, rendered as 16 hex digits: stable across runs and platforms.
fn hex16(parts: &[&str]) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for byte in part.bytes().chain(std::iter::once(0u8)) {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    format!("{hash:016x}")
}

/// Formats virtual seconds since the epoch as an ISO-8601 UTC timestamp.
fn iso_time(seconds: f64) -> String {
    aws_smithy_types::DateTime::from_secs_f64(seconds)
        .fmt(aws_smithy_types::date_time::Format::DateTime)
        .unwrap_or_else(|_| "1970-01-01T00:00:00Z".to_string())
}

/// Load balancer and target group names: 1-32 alphanumerics or hyphens, no hyphen at either end.
fn validate_name(kind: &str, name: &str) -> Result<(), ApiError> {
    let ok = !name.is_empty()
        && name.len() <= 32
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        && !name.starts_with('-')
        && !name.ends_with('-');
    if ok {
        Ok(())
    } else {
        Err(validation(format!(
            "{kind} name '{name}' is invalid: use 1 to 32 letters, digits or hyphens, not starting or ending with a hyphen"
        )))
    }
}

impl Elbv2 {
    pub fn new(region: &str, account: &str) -> Self {
        Elbv2 {
            region: region.to_string(),
            account: account.to_string(),
            ..Elbv2::default()
        }
    }

    fn region(&self) -> &str {
        if self.region.is_empty() {
            DEFAULT_REGION
        } else {
            &self.region
        }
    }

    fn account(&self) -> &str {
        if self.account.is_empty() {
            DEFAULT_ACCOUNT
        } else {
            &self.account
        }
    }

    fn arn(&self, resource: &str) -> String {
        format!(
            "arn:aws:elasticloadbalancing:{}:{}:{resource}",
            self.region(),
            self.account()
        )
    }

    fn next_id(&mut self, kind: &str, name: &str) -> String {
        self.seq += 1;
        hex16(&[kind, name, &self.seq.to_string()])
    }

    fn observe(&mut self, now: f64) {
        if now.is_finite() && now > self.last_now {
            self.last_now = now;
        }
    }

    // ----- lookups -----

    fn lb(&self, arn: &str) -> Option<&LoadBalancer> {
        self.load_balancers.iter().find(|lb| lb.arn == arn)
    }

    fn tg(&self, arn: &str) -> Option<&TargetGroup> {
        self.target_groups.iter().find(|tg| tg.arn == arn)
    }

    fn tg_mut(&mut self, arn: &str) -> Option<&mut TargetGroup> {
        self.target_groups.iter_mut().find(|tg| tg.arn == arn)
    }

    fn listener(&self, arn: &str) -> Option<&Listener> {
        self.listeners.iter().find(|l| l.arn == arn)
    }

    fn all_actions(&self) -> impl Iterator<Item = (&str, &Action)> {
        let listener_actions = self.listeners.iter().flat_map(|l| {
            l.default_actions
                .iter()
                .map(move |a| (l.lb_arn.as_str(), a))
        });
        let rule_actions = self.rules.iter().flat_map(move |r| {
            let lb = self
                .listener(&r.listener_arn)
                .map(|l| l.lb_arn.as_str())
                .unwrap_or("");
            r.actions.iter().map(move |a| (lb, a))
        });
        listener_actions.chain(rule_actions)
    }

    /// The load balancers whose listeners or rules forward to a target group.
    fn lbs_of_tg(&self, tg_arn: &str) -> Vec<String> {
        let mut lbs: Vec<String> = Vec::new();
        for (lb, action) in self.all_actions() {
            if action.forward.iter().any(|(arn, _)| arn == tg_arn)
                && !lb.is_empty()
                && !lbs.iter().any(|l| l == lb)
            {
                lbs.push(lb.to_string());
            }
        }
        lbs
    }

    fn tg_in_use(&self, tg_arn: &str) -> bool {
        self.all_actions()
            .any(|(_, a)| a.forward.iter().any(|(arn, _)| arn == tg_arn))
    }

    // ----- the API -----

    /// Dispatches one awsQuery action. Ok = the full XML body of a success response.
    pub fn handle(
        &mut self,
        action: &str,
        params: &BTreeMap<String, String>,
        now: f64,
        request_id: &str,
    ) -> Result<String, ApiError> {
        self.observe(now);
        self.prune(now);
        let inner = match action {
            "DescribeLoadBalancers" => self.api_describe_load_balancers(params)?,
            "DescribeTargetGroups" => self.api_describe_target_groups(params)?,
            "DescribeTargetHealth" => self.api_describe_target_health(params, now)?,
            "DescribeListeners" => self.api_describe_listeners(params)?,
            "DescribeRules" => self.api_describe_rules(params)?,
            "DescribeTargetGroupAttributes" => self.api_describe_tg_attributes(params)?,
            "ModifyRule" => self.api_modify_rule(params)?,
            "ModifyListener" => self.api_modify_listener(params)?,
            "ModifyTargetGroup" => self.api_modify_target_group(params)?,
            "ModifyTargetGroupAttributes" => self.api_modify_tg_attributes(params)?,
            "CreateLoadBalancer" => self.api_create_load_balancer(params)?,
            "CreateTargetGroup" => self.api_create_target_group(params)?,
            "CreateListener" => self.api_create_listener(params)?,
            "CreateRule" => self.api_create_rule(params)?,
            "RegisterTargets" => self.api_register_targets(params, now)?,
            "DeregisterTargets" => self.api_deregister_targets(params, now)?,
            _ => {
                return Err(ApiError::client(
                    "InvalidAction",
                    format!(
                        "The action '{action}' is not supported by the cortado sandbox's ELBv2 emulation"
                    ),
                ));
            }
        };
        Ok(xml_response(action, &inner, request_id))
    }
}

fn validate_port(port: i32) -> Result<(), ApiError> {
    if (1..=65_535).contains(&port) {
        Ok(())
    } else {
        Err(validation(format!(
            "Port must be between 1 and 65535, got {port}"
        )))
    }
}

/// The `app/NAME/ID` tail of a load balancer ARN.
fn lb_tail(arn: &str) -> String {
    arn.split_once(":loadbalancer/app/")
        .map(|(_, tail)| tail.to_string())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests;
