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

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::api::ApiError;
use crate::query::{
    XmlWriter, is_present, member_prefixes, members, optional_i32, required, xml_response,
};

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
    description: Option<&'static str>,
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

/// The index of the first check (counted from 1 after registration) at or after `at`.
fn first_check_at_or_after(registered_at: f64, interval: f64, at: f64) -> f64 {
    ((at - registered_at) / interval).ceil().max(1.0)
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

    /// Looks up a target group by name or ARN.
    pub fn find_target_group(&self, name_or_arn: &str) -> Option<String> {
        self.target_groups
            .iter()
            .find(|tg| tg.arn == name_or_arn || tg.name == name_or_arn)
            .map(|tg| tg.arn.clone())
    }

    /// Looks up a load balancer by name or ARN.
    /// The DNS name of a load balancer.
    pub fn dns_name(&self, lb_arn: &str) -> Option<String> {
        self.load_balancers
            .iter()
            .find(|lb| lb.arn == lb_arn)
            .map(|lb| lb.dns_name.clone())
    }

    pub fn find_load_balancer(&self, name_or_arn: &str) -> Option<String> {
        self.load_balancers
            .iter()
            .find(|lb| lb.arn == name_or_arn || lb.name == name_or_arn)
            .map(|lb| lb.arn.clone())
    }

    // ----- seeding -----

    /// Creates an application load balancer, or returns the one with that name.
    pub fn create_load_balancer(&mut self, name: &str) -> String {
        if let Some(arn) = self.find_load_balancer(name) {
            return arn;
        }
        let id = self.next_id("loadbalancer", name);
        let arn = self.arn(&format!("loadbalancer/app/{name}/{id}"));
        let dns_number = u64::from_str_radix(&id[..10], 16).unwrap_or(0) % 10_000_000_000;
        let dns_name = format!("{name}-{dns_number}.{}.elb.amazonaws.com", self.region());
        let vpc_id = format!("vpc-{}", &hex16(&[self.account(), "vpc"])[..8]);
        self.load_balancers.push(LoadBalancer {
            arn: arn.clone(),
            name: name.to_string(),
            dns_name,
            created_at: self.last_now,
            kind: "application".to_string(),
            scheme: "internet-facing".to_string(),
            vpc_id,
        });
        arn
    }

    /// Creates a target group with default health-check settings, or returns the one with that
    /// name.
    pub fn create_target_group(
        &mut self,
        name: &str,
        port: i32,
        protocol: &str,
        target_type: &str,
    ) -> String {
        if let Some(arn) = self.find_target_group(name) {
            return arn;
        }
        self.insert_target_group(name, port, protocol, target_type, HealthCheck::default())
    }

    /// Like [`Elbv2::create_target_group`] with explicit health-check settings (validated as AWS
    /// does). An existing group of that name gets the new settings.
    pub fn create_target_group_with(
        &mut self,
        name: &str,
        port: i32,
        protocol: &str,
        target_type: &str,
        health: HealthCheck,
    ) -> Result<String, ApiError> {
        validate_name("Target group", name)?;
        health.validate()?;
        if let Some(arn) = self.find_target_group(name) {
            if let Some(tg) = self.tg_mut(&arn) {
                tg.health = health;
            }
            return Ok(arn);
        }
        Ok(self.insert_target_group(name, port, protocol, target_type, health))
    }

    /// Creates a target group that keeps a given ARN (a config written for a real account
    /// names its target groups by ARN; the sandbox adopts them so every call with that ARN
    /// works). Idempotent; an existing group of that ARN or name is returned as is.
    pub fn adopt_target_group(
        &mut self,
        arn: &str,
        port: i32,
        protocol: &str,
        target_type: &str,
    ) -> String {
        let name = arn
            .split_once(":targetgroup/")
            .map(|(_, r)| r.split('/').next().unwrap_or(r))
            .unwrap_or(arn)
            .to_string();
        if let Some(existing) = self
            .find_target_group(arn)
            .or_else(|| self.find_target_group(&name))
        {
            return existing;
        }
        self.insert_target_group_as(
            Some(arn),
            &name,
            port,
            protocol,
            target_type,
            HealthCheck::default(),
        )
    }

    fn insert_target_group(
        &mut self,
        name: &str,
        port: i32,
        protocol: &str,
        target_type: &str,
        health: HealthCheck,
    ) -> String {
        self.insert_target_group_as(None, name, port, protocol, target_type, health)
    }

    fn insert_target_group_as(
        &mut self,
        given_arn: Option<&str>,
        name: &str,
        port: i32,
        protocol: &str,
        target_type: &str,
        health: HealthCheck,
    ) -> String {
        let id = self.next_id("targetgroup", name);
        let arn = match given_arn {
            Some(a) => a.to_string(),
            None => self.arn(&format!("targetgroup/{name}/{id}")),
        };
        let vpc_id = format!("vpc-{}", &hex16(&[self.account(), "vpc"])[..8]);
        let mut attributes = BTreeMap::new();
        for (key, value) in [
            (DEREGISTRATION_DELAY, "300"),
            ("stickiness.enabled", "false"),
            ("stickiness.type", "lb_cookie"),
            ("stickiness.lb_cookie.duration_seconds", "86400"),
            ("slow_start.duration_seconds", "0"),
            ("load_balancing.algorithm.type", "round_robin"),
            (
                "load_balancing.cross_zone.enabled",
                "use_load_balancer_configuration",
            ),
        ] {
            attributes.insert(key.to_string(), value.to_string());
        }
        self.target_groups.push(TargetGroup {
            arn: arn.clone(),
            name: name.to_string(),
            protocol: protocol.to_string(),
            port,
            target_type: target_type.to_string(),
            vpc_id,
            health,
            attributes,
            targets: Vec::new(),
        });
        arn
    }

    /// Replaces a target group's health-check settings.
    pub fn set_health_check(&mut self, tg_arn: &str, health: HealthCheck) -> Result<(), ApiError> {
        health.validate()?;
        let tg = self.tg_mut(tg_arn).ok_or_else(|| tg_not_found(tg_arn))?;
        tg.health = health;
        Ok(())
    }

    /// Sets one target group attribute (validated as `ModifyTargetGroupAttributes` does).
    pub fn set_target_group_attribute(
        &mut self,
        tg_arn: &str,
        key: &str,
        value: &str,
    ) -> Result<(), ApiError> {
        validate_attribute(key, value)?;
        let tg = self.tg_mut(tg_arn).ok_or_else(|| tg_not_found(tg_arn))?;
        tg.attributes.insert(key.to_string(), value.to_string());
        Ok(())
    }

    /// Creates a listener forwarding to weighted target groups; on a port that already has a
    /// listener, replaces its default action and returns its ARN.
    pub fn create_listener(
        &mut self,
        lb_arn: &str,
        port: i32,
        protocol: &str,
        default_forward: &[(String, i32)],
    ) -> Result<String, ApiError> {
        self.validate_forward(default_forward)?;
        let actions = vec![Action::forward(default_forward)];
        if let Some(existing) = self
            .listeners
            .iter_mut()
            .find(|l| l.lb_arn == lb_arn && l.port == port)
        {
            existing.default_actions = actions;
            existing.protocol = protocol.to_string();
            return Ok(existing.arn.clone());
        }
        self.insert_listener(lb_arn, port, protocol, actions)
    }

    fn insert_listener(
        &mut self,
        lb_arn: &str,
        port: i32,
        protocol: &str,
        default_actions: Vec<Action>,
    ) -> Result<String, ApiError> {
        let lb = self.lb(lb_arn).ok_or_else(|| lb_not_found(lb_arn))?;
        validate_port(port)?;
        let lb_tail = lb_tail(&lb.arn);
        let lb_name = lb.name.clone();
        let id = self.next_id("listener", &format!("{lb_name}:{port}"));
        let arn = self.arn(&format!("listener/app/{lb_tail}/{id}"));
        let rule_id = self.next_id("listener-rule", &format!("{lb_name}:{port}:default"));
        let default_rule_arn = self.arn(&format!("listener-rule/app/{lb_tail}/{id}/{rule_id}"));
        self.listeners.push(Listener {
            arn: arn.clone(),
            lb_arn: lb_arn.to_string(),
            port,
            protocol: protocol.to_string(),
            default_actions,
            default_rule_arn,
        });
        Ok(arn)
    }

    /// Creates a path-pattern rule forwarding to weighted target groups; at a priority already
    /// taken on that listener, replaces that rule's condition and actions.
    pub fn create_rule(
        &mut self,
        listener_arn: &str,
        priority: i32,
        path_pattern: &str,
        forward: &[(String, i32)],
    ) -> Result<String, ApiError> {
        self.validate_forward(forward)?;
        let conditions = vec![Condition {
            field: "path-pattern".to_string(),
            values: vec![path_pattern.to_string()],
        }];
        let actions = vec![Action::forward(forward)];
        if let Some(rule) = self
            .rules
            .iter_mut()
            .find(|r| r.listener_arn == listener_arn && r.priority == priority)
        {
            rule.conditions = conditions;
            rule.actions = actions;
            return Ok(rule.arn.clone());
        }
        self.insert_rule(listener_arn, priority, conditions, actions)
    }

    /// Gives the listener on `port` of a load balancer the ARN `arn` (a listener rule ARN
    /// written for a real account names its listener: `listener-rule/app/LB/ID/LISTENER/RULE`),
    /// so that the rule's listener can be found by that ARN as on AWS. Returns the listener's
    /// ARN: `arn` when a listener already has it, else the renamed one (or None when there is
    /// no listener on that port).
    pub fn adopt_listener_arn(&mut self, lb_arn: &str, port: i32, arn: &str) -> Option<String> {
        if self.listeners.iter().any(|l| l.arn == arn) {
            return Some(arn.to_string());
        }
        let l = self
            .listeners
            .iter_mut()
            .find(|l| l.lb_arn == lb_arn && l.port == port)?;
        let old = std::mem::replace(&mut l.arn, arn.to_string());
        for r in self.rules.iter_mut().filter(|r| r.listener_arn == old) {
            r.listener_arn = arn.to_string();
        }
        Some(arn.to_string())
    }

    /// The listener on `port` of a load balancer.
    pub fn listener_on(&self, lb_arn: &str, port: i32) -> Option<String> {
        self.listeners
            .iter()
            .find(|l| l.lb_arn == lb_arn && l.port == port)
            .map(|l| l.arn.clone())
    }

    /// Creates a path-pattern rule that keeps a given ARN (a service definition written for a
    /// real account names its listener rules by ARN; the sandbox adopts them as it adopts
    /// target groups), at the listener's next free priority. Idempotent: an existing rule (or
    /// listener default rule) of that ARN is returned as is.
    pub fn adopt_rule(
        &mut self,
        listener_arn: &str,
        arn: &str,
        path_pattern: &str,
        forward: &[(String, i32)],
    ) -> Result<String, ApiError> {
        if self.actions_of(arn).is_some() {
            return Ok(arn.to_string());
        }
        self.validate_forward(forward)?;
        if self.listener(listener_arn).is_none() {
            return Err(listener_not_found(listener_arn));
        }
        let priority = self
            .rules
            .iter()
            .filter(|r| r.listener_arn == listener_arn)
            .map(|r| r.priority)
            .max()
            .unwrap_or(0)
            + 1;
        self.rules.push(Rule {
            arn: arn.to_string(),
            listener_arn: listener_arn.to_string(),
            priority,
            conditions: vec![Condition {
                field: "path-pattern".to_string(),
                values: vec![path_pattern.to_string()],
            }],
            actions: vec![Action::forward(forward)],
        });
        Ok(arn.to_string())
    }

    fn insert_rule(
        &mut self,
        listener_arn: &str,
        priority: i32,
        conditions: Vec<Condition>,
        actions: Vec<Action>,
    ) -> Result<String, ApiError> {
        let listener = self
            .listener(listener_arn)
            .ok_or_else(|| listener_not_found(listener_arn))?;
        if !(1..=50_000).contains(&priority) {
            return Err(validation(format!(
                "Rule priority must be between 1 and 50000, got {priority}"
            )));
        }
        let tail = listener_tail(&listener.arn);
        let id = self.next_id("listener-rule", &format!("{listener_arn}:{priority}"));
        let arn = self.arn(&format!("listener-rule/app/{tail}/{id}"));
        self.rules.push(Rule {
            arn: arn.clone(),
            listener_arn: listener_arn.to_string(),
            priority,
            conditions,
            actions,
        });
        Ok(arn)
    }

    // ----- targets, for the rollout simulation -----

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
    fn prune(&mut self, now: f64) {
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

    /// A target group's health-check settings.
    pub fn health_check(&self, tg_arn: &str) -> Option<HealthCheck> {
        self.tg(tg_arn).map(|tg| tg.health.clone())
    }

    /// A target group's deregistration delay in seconds.
    pub fn deregistration_delay(&self, tg_arn: &str) -> Option<f64> {
        self.tg(tg_arn).map(TargetGroup::deregistration_delay)
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
    ) -> (TargetState, Option<&'static str>, Option<&'static str>) {
        if target.drain_until.is_some() {
            return (
                TargetState::Draining,
                Some("Target.DeregistrationInProgress"),
                Some("Target deregistration is in progress"),
            );
        }
        if !self.tg_in_use(&tg.arn) {
            return (
                TargetState::Unused,
                Some("Target.NotInUse"),
                Some("Target group is not configured to receive traffic from the load balancer"),
            );
        }
        if !tg.health.enabled {
            return (
                TargetState::Unavailable,
                Some("Target.HealthCheckDisabled"),
                Some("Health checks are disabled"),
            );
        }
        match check_outcome(&tg.health, target, now) {
            TargetState::Healthy => (TargetState::Healthy, None, None),
            TargetState::Unhealthy => (
                TargetState::Unhealthy,
                Some("Target.FailedHealthChecks"),
                Some("Health checks failed"),
            ),
            _ => (
                TargetState::Initial,
                Some("Elb.RegistrationInProgress"),
                Some("Target registration is in progress"),
            ),
        }
    }

    // ----- forward weights -----

    /// Forward action weights of a listener's default action or of a rule (by listener ARN,
    /// rule ARN, or the ARN of a listener's default rule).
    pub fn forward_weights(&self, listener_or_rule_arn: &str) -> Option<Vec<(String, i32)>> {
        let actions = self.actions_of(listener_or_rule_arn)?;
        actions
            .iter()
            .find(|a| a.kind == "forward")
            .map(|a| a.forward.clone())
    }

    fn actions_of(&self, arn: &str) -> Option<&Vec<Action>> {
        if let Some(l) = self
            .listeners
            .iter()
            .find(|l| l.arn == arn || l.default_rule_arn == arn)
        {
            return Some(&l.default_actions);
        }
        self.rules.iter().find(|r| r.arn == arn).map(|r| &r.actions)
    }

    fn actions_of_mut(&mut self, arn: &str) -> Result<&mut Vec<Action>, ApiError> {
        if let Some(index) = self
            .listeners
            .iter()
            .position(|l| l.arn == arn || l.default_rule_arn == arn)
        {
            return Ok(&mut self.listeners[index].default_actions);
        }
        match self.rules.iter().position(|r| r.arn == arn) {
            Some(index) => Ok(&mut self.rules[index].actions),
            None if arn.contains(":listener-rule/") => Err(rule_not_found(arn)),
            None => Err(listener_not_found(arn)),
        }
    }

    /// Replaces the forward action's weights (validated: weights 0..=999, target groups exist).
    pub fn set_forward_weights(
        &mut self,
        listener_or_rule_arn: &str,
        weights: &[(String, i32)],
    ) -> Result<(), ApiError> {
        self.validate_forward(weights)?;
        let actions = self.actions_of_mut(listener_or_rule_arn)?;
        match actions.iter_mut().find(|a| a.kind == "forward") {
            Some(action) => action.forward = weights.to_vec(),
            None => *actions = vec![Action::forward(weights)],
        }
        Ok(())
    }

    fn validate_forward(&self, weights: &[(String, i32)]) -> Result<(), ApiError> {
        if weights.is_empty() {
            return Err(validation(
                "A forward action needs at least one target group",
            ));
        }
        if weights.len() > MAX_FORWARD_TARGET_GROUPS {
            return Err(validation(format!(
                "A forward action can have at most {MAX_FORWARD_TARGET_GROUPS} target groups, got {}",
                weights.len()
            )));
        }
        for (index, (arn, weight)) in weights.iter().enumerate() {
            if !(0..=MAX_WEIGHT).contains(weight) {
                return Err(validation(format!(
                    "Target group weight must be between 0 and {MAX_WEIGHT}, got {weight} for '{arn}'"
                )));
            }
            if self.tg(arn).is_none() {
                return Err(tg_not_found(arn));
            }
            if weights[..index].iter().any(|(other, _)| other == arn) {
                return Err(validation(format!(
                    "Target group '{arn}' appears more than once in the forward action"
                )));
            }
        }
        Ok(())
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

    fn api_describe_load_balancers(
        &self,
        params: &BTreeMap<String, String>,
    ) -> Result<String, ApiError> {
        let arns = members(params, "LoadBalancerArns");
        let names = members(params, "Names");
        if !arns.is_empty() && !names.is_empty() {
            return Err(validation(
                "Load balancer names and load balancer ARNs cannot be specified at the same time",
            ));
        }
        let mut selected: Vec<&LoadBalancer> = Vec::new();
        for arn in &arns {
            selected.push(self.lb(arn).ok_or_else(|| lb_not_found(arn))?);
        }
        for name in &names {
            selected.push(
                self.load_balancers
                    .iter()
                    .find(|lb| &lb.name == name)
                    .ok_or_else(|| lb_not_found(name))?,
            );
        }
        if arns.is_empty() && names.is_empty() {
            selected = self.load_balancers.iter().collect();
        }
        let mut w = XmlWriter::new();
        w.list("LoadBalancers", selected, |w, lb| self.write_lb(w, lb));
        Ok(w.finish())
    }

    fn write_lb(&self, w: &mut XmlWriter, lb: &LoadBalancer) {
        w.text("LoadBalancerArn", &lb.arn)
            .text("DNSName", &lb.dns_name)
            .text("CanonicalHostedZoneId", "Z35SXDOTRQ7X7K")
            .text("CreatedTime", &iso_time(lb.created_at))
            .text("LoadBalancerName", &lb.name)
            .text("Scheme", &lb.scheme)
            .text("VpcId", &lb.vpc_id);
        w.open("State").text("Code", "active").close("State");
        w.text("Type", &lb.kind);
        let zones = ["a", "b"];
        w.list("AvailabilityZones", zones, |w, z| {
            w.text("ZoneName", &format!("{}{z}", self.region())).text(
                "SubnetId",
                &format!("subnet-{}", &hex16(&[&lb.arn, z])[..8]),
            );
        });
        w.string_list(
            "SecurityGroups",
            [format!("sg-{}", &hex16(&[&lb.arn, "sg"])[..8])],
        );
        w.text("IpAddressType", "ipv4");
    }

    fn api_describe_target_groups(
        &self,
        params: &BTreeMap<String, String>,
    ) -> Result<String, ApiError> {
        let arns = members(params, "TargetGroupArns");
        let names = members(params, "Names");
        let lb_arn = params.get("LoadBalancerArn").filter(|v| !v.is_empty());
        let given = [!arns.is_empty(), !names.is_empty(), lb_arn.is_some()];
        if given.iter().filter(|g| **g).count() > 1 {
            return Err(validation(
                "Specify only one of LoadBalancerArn, TargetGroupArns or Names",
            ));
        }
        let mut selected: Vec<&TargetGroup> = Vec::new();
        for arn in &arns {
            selected.push(self.tg(arn).ok_or_else(|| tg_not_found(arn))?);
        }
        for name in &names {
            selected.push(
                self.target_groups
                    .iter()
                    .find(|tg| &tg.name == name)
                    .ok_or_else(|| tg_not_found(name))?,
            );
        }
        if let Some(lb_arn) = lb_arn {
            if self.lb(lb_arn).is_none() {
                return Err(lb_not_found(lb_arn));
            }
            selected = self
                .target_groups
                .iter()
                .filter(|tg| self.lbs_of_tg(&tg.arn).iter().any(|l| l == lb_arn))
                .collect();
        } else if arns.is_empty() && names.is_empty() {
            selected = self.target_groups.iter().collect();
        }
        let mut w = XmlWriter::new();
        w.list("TargetGroups", selected, |w, tg| self.write_tg(w, tg));
        Ok(w.finish())
    }

    fn write_tg(&self, w: &mut XmlWriter, tg: &TargetGroup) {
        w.text("TargetGroupArn", &tg.arn)
            .text("TargetGroupName", &tg.name)
            .text("Protocol", &tg.protocol)
            .value("Port", tg.port)
            .text("VpcId", &tg.vpc_id)
            .text("HealthCheckProtocol", &tg.health.protocol)
            .text("HealthCheckPort", &tg.health.port)
            .value("HealthCheckEnabled", tg.health.enabled)
            .value("HealthCheckIntervalSeconds", tg.health.interval_seconds)
            .value("HealthCheckTimeoutSeconds", tg.health.timeout_seconds)
            .value("HealthyThresholdCount", tg.health.healthy_threshold)
            .value("UnhealthyThresholdCount", tg.health.unhealthy_threshold)
            .text("HealthCheckPath", &tg.health.path);
        w.open("Matcher")
            .text("HttpCode", &tg.health.matcher)
            .close("Matcher");
        w.string_list("LoadBalancerArns", self.lbs_of_tg(&tg.arn))
            .text("TargetType", &tg.target_type)
            .text("ProtocolVersion", "HTTP1")
            .text("IpAddressType", "ipv4");
    }

    fn api_describe_target_health(
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
                        description: Some("Target is not registered to the target group"),
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
                .opt_text("Description", row.description)
                .close("TargetHealth");
        });
        Ok(w.finish())
    }

    fn api_describe_listeners(
        &self,
        params: &BTreeMap<String, String>,
    ) -> Result<String, ApiError> {
        let arns = members(params, "ListenerArns");
        let lb_arn = params.get("LoadBalancerArn").filter(|v| !v.is_empty());
        let selected: Vec<&Listener> = match (lb_arn, arns.is_empty()) {
            (Some(_), false) => {
                return Err(validation(
                    "Listener ARNs and a load balancer ARN cannot be specified at the same time",
                ));
            }
            (None, true) => {
                return Err(validation(
                    "You must specify either listener ARNs or a load balancer ARN",
                ));
            }
            (Some(lb_arn), true) => {
                if self.lb(lb_arn).is_none() {
                    return Err(lb_not_found(lb_arn));
                }
                self.listeners
                    .iter()
                    .filter(|l| &l.lb_arn == lb_arn)
                    .collect()
            }
            (None, false) => arns
                .iter()
                .map(|arn| self.listener(arn).ok_or_else(|| listener_not_found(arn)))
                .collect::<Result<_, _>>()?,
        };
        let mut w = XmlWriter::new();
        w.list("Listeners", selected, write_listener);
        Ok(w.finish())
    }

    fn api_describe_rules(&self, params: &BTreeMap<String, String>) -> Result<String, ApiError> {
        let arns = members(params, "RuleArns");
        let listener_arn = params.get("ListenerArn").filter(|v| !v.is_empty());
        // (rule arn, priority, conditions, actions, is default)
        let mut rows: Vec<RuleRow> = Vec::new();
        match (listener_arn, arns.is_empty()) {
            (Some(_), false) => {
                return Err(validation(
                    "Rule ARNs and a listener ARN cannot be specified at the same time",
                ));
            }
            (None, true) => {
                return Err(validation("You must specify either listener or rule ARNs"));
            }
            (Some(listener_arn), true) => {
                let listener = self
                    .listener(listener_arn)
                    .ok_or_else(|| listener_not_found(listener_arn))?;
                let mut rules: Vec<&Rule> = self
                    .rules
                    .iter()
                    .filter(|r| &r.listener_arn == listener_arn)
                    .collect();
                rules.sort_by_key(|r| r.priority);
                for r in rules {
                    rows.push(rule_row(r));
                }
                rows.push(default_rule_row(listener));
            }
            (None, false) => {
                for arn in &arns {
                    if let Some(rule) = self.rules.iter().find(|r| &r.arn == arn) {
                        rows.push(rule_row(rule));
                    } else if let Some(listener) =
                        self.listeners.iter().find(|l| &l.default_rule_arn == arn)
                    {
                        rows.push(default_rule_row(listener));
                    } else {
                        return Err(rule_not_found(arn));
                    }
                }
            }
        }
        let mut w = XmlWriter::new();
        w.list("Rules", rows, write_rule);
        Ok(w.finish())
    }

    fn api_modify_rule(&mut self, params: &BTreeMap<String, String>) -> Result<String, ApiError> {
        let arn = required(params, "RuleArn")?.to_string();
        let is_default = self.listeners.iter().any(|l| l.default_rule_arn == arn);
        if !is_default && !self.rules.iter().any(|r| r.arn == arn) {
            return Err(rule_not_found(&arn));
        }
        let actions = if is_present(params, "Actions") {
            Some(self.parse_actions(params, "Actions")?)
        } else {
            None
        };
        let conditions = if is_present(params, "Conditions") {
            Some(parse_conditions(params, "Conditions")?)
        } else {
            None
        };
        if !is_default && conditions.as_ref().is_some_and(Vec::is_empty) {
            return Err(validation("A rule needs at least one condition"));
        }
        if is_default && conditions.as_ref().is_some_and(|c| !c.is_empty()) {
            return Err(ApiError::client(
                "OperationNotPermitted",
                "The default rule of a listener cannot have conditions",
            ));
        }
        let row = if let Some(listener) = self
            .listeners
            .iter_mut()
            .find(|l| l.default_rule_arn == arn)
        {
            if let Some(actions) = actions {
                listener.default_actions = actions;
            }
            default_rule_row(listener)
        } else {
            let rule = self
                .rules
                .iter_mut()
                .find(|r| r.arn == arn)
                .ok_or_else(|| rule_not_found(&arn))?;
            if let Some(actions) = actions {
                rule.actions = actions;
            }
            if let Some(conditions) = conditions {
                rule.conditions = conditions;
            }
            rule_row(rule)
        };
        let mut w = XmlWriter::new();
        w.list("Rules", [row], write_rule);
        Ok(w.finish())
    }

    fn api_modify_listener(
        &mut self,
        params: &BTreeMap<String, String>,
    ) -> Result<String, ApiError> {
        let arn = required(params, "ListenerArn")?.to_string();
        if self.listener(&arn).is_none() {
            return Err(listener_not_found(&arn));
        }
        let actions = if is_present(params, "DefaultActions") {
            Some(self.parse_actions(params, "DefaultActions")?)
        } else {
            None
        };
        let port = optional_i32(params, "Port")?;
        if let Some(port) = port {
            validate_port(port)?;
            let lb = self.listener(&arn).map(|l| l.lb_arn.clone());
            if self
                .listeners
                .iter()
                .any(|l| l.arn != arn && Some(&l.lb_arn) == lb.as_ref() && l.port == port)
            {
                return Err(ApiError::client(
                    "DuplicateListener",
                    format!("A listener already exists on port {port} of this load balancer"),
                ));
            }
        }
        let protocol = params.get("Protocol").filter(|p| !p.is_empty()).cloned();
        let listener = self
            .listeners
            .iter_mut()
            .find(|l| l.arn == arn)
            .ok_or_else(|| listener_not_found(&arn))?;
        if let Some(actions) = actions {
            listener.default_actions = actions;
        }
        if let Some(port) = port {
            listener.port = port;
        }
        if let Some(protocol) = protocol {
            listener.protocol = protocol;
        }
        let mut w = XmlWriter::new();
        w.list("Listeners", [&*listener], write_listener);
        Ok(w.finish())
    }

    fn api_modify_target_group(
        &mut self,
        params: &BTreeMap<String, String>,
    ) -> Result<String, ApiError> {
        let arn = required(params, "TargetGroupArn")?.to_string();
        let current = self.tg(&arn).ok_or_else(|| tg_not_found(&arn))?;
        let health = health_from_params(params, current.health.clone())?;
        self.set_health_check(&arn, health)?;
        let tg = self.tg(&arn).ok_or_else(|| tg_not_found(&arn))?;
        let mut w = XmlWriter::new();
        w.list("TargetGroups", [tg], |w, tg| self.write_tg(w, tg));
        Ok(w.finish())
    }

    fn api_describe_tg_attributes(
        &self,
        params: &BTreeMap<String, String>,
    ) -> Result<String, ApiError> {
        let arn = required(params, "TargetGroupArn")?;
        let tg = self.tg(arn).ok_or_else(|| tg_not_found(arn))?;
        Ok(write_attributes(&tg.attributes))
    }

    fn api_modify_tg_attributes(
        &mut self,
        params: &BTreeMap<String, String>,
    ) -> Result<String, ApiError> {
        let arn = required(params, "TargetGroupArn")?.to_string();
        if self.tg(&arn).is_none() {
            return Err(tg_not_found(&arn));
        }
        let mut changes = Vec::new();
        for item in member_prefixes(params, "Attributes") {
            let key = required(params, &format!("{item}.Key"))?;
            let value = params
                .get(&format!("{item}.Value"))
                .map(String::as_str)
                .unwrap_or("");
            validate_attribute(key, value)?;
            changes.push((key.to_string(), value.to_string()));
        }
        if changes.is_empty() {
            return Err(validation("At least one attribute must be specified"));
        }
        let tg = self.tg_mut(&arn).ok_or_else(|| tg_not_found(&arn))?;
        tg.attributes.extend(changes);
        Ok(write_attributes(&tg.attributes))
    }

    fn api_create_load_balancer(
        &mut self,
        params: &BTreeMap<String, String>,
    ) -> Result<String, ApiError> {
        let name = required(params, "Name")?;
        validate_name("Load balancer", name)?;
        if let Some(kind) = params.get("Type").filter(|t| !t.is_empty())
            && kind != "application"
        {
            return Err(validation(format!(
                "Load balancer type '{kind}' is not supported by the sandbox; use 'application'"
            )));
        }
        let arn = self.create_load_balancer(name);
        if let Some(scheme) = params.get("Scheme").filter(|s| !s.is_empty())
            && let Some(lb) = self.load_balancers.iter_mut().find(|lb| lb.arn == arn)
        {
            lb.scheme = scheme.clone();
        }
        let lb = self.lb(&arn).ok_or_else(|| lb_not_found(&arn))?;
        let mut w = XmlWriter::new();
        w.list("LoadBalancers", [lb], |w, lb| self.write_lb(w, lb));
        Ok(w.finish())
    }

    fn api_create_target_group(
        &mut self,
        params: &BTreeMap<String, String>,
    ) -> Result<String, ApiError> {
        let name = required(params, "Name")?;
        validate_name("Target group", name)?;
        let target_type = params
            .get("TargetType")
            .filter(|t| !t.is_empty())
            .map(String::as_str)
            .unwrap_or("instance");
        let protocol = params
            .get("Protocol")
            .filter(|t| !t.is_empty())
            .map(String::as_str)
            .unwrap_or("HTTP");
        let port = match optional_i32(params, "Port")? {
            Some(port) => {
                validate_port(port)?;
                port
            }
            None if target_type == "lambda" => 0,
            None => return Err(validation("A port must be specified")),
        };
        let health = health_from_params(params, HealthCheck::default())?;
        health.validate()?;
        if let Some(existing) = self.target_groups.iter().find(|tg| tg.name == name)
            && (existing.port != port
                || existing.protocol != protocol
                || existing.health != health
                || existing.target_type != target_type)
        {
            return Err(ApiError::client(
                "DuplicateTargetGroupName",
                format!(
                    "A target group with the name '{name}' already exists with different settings"
                ),
            ));
        }
        let arn = match self.find_target_group(name) {
            Some(arn) => arn,
            None => self.insert_target_group(name, port, protocol, target_type, health),
        };
        let tg = self.tg(&arn).ok_or_else(|| tg_not_found(&arn))?;
        let mut w = XmlWriter::new();
        w.list("TargetGroups", [tg], |w, tg| self.write_tg(w, tg));
        Ok(w.finish())
    }

    fn api_create_listener(
        &mut self,
        params: &BTreeMap<String, String>,
    ) -> Result<String, ApiError> {
        let lb_arn = required(params, "LoadBalancerArn")?.to_string();
        if self.lb(&lb_arn).is_none() {
            return Err(lb_not_found(&lb_arn));
        }
        let port = optional_i32(params, "Port")?.unwrap_or(80);
        let protocol = params
            .get("Protocol")
            .filter(|p| !p.is_empty())
            .cloned()
            .unwrap_or_else(|| "HTTP".to_string());
        let actions = self.parse_actions(params, "DefaultActions")?;
        if self
            .listeners
            .iter()
            .any(|l| l.lb_arn == lb_arn && l.port == port)
        {
            return Err(ApiError::client(
                "DuplicateListener",
                format!("A listener already exists on port {port} of '{lb_arn}'"),
            ));
        }
        let arn = self.insert_listener(&lb_arn, port, &protocol, actions)?;
        let listener = self
            .listener(&arn)
            .ok_or_else(|| listener_not_found(&arn))?;
        let mut w = XmlWriter::new();
        w.list("Listeners", [listener], write_listener);
        Ok(w.finish())
    }

    fn api_create_rule(&mut self, params: &BTreeMap<String, String>) -> Result<String, ApiError> {
        let listener_arn = required(params, "ListenerArn")?.to_string();
        if self.listener(&listener_arn).is_none() {
            return Err(listener_not_found(&listener_arn));
        }
        let priority = optional_i32(params, "Priority")?
            .ok_or_else(|| validation("A rule priority must be specified"))?;
        let conditions = parse_conditions(params, "Conditions")?;
        if conditions.is_empty() {
            return Err(validation("A rule needs at least one condition"));
        }
        let actions = self.parse_actions(params, "Actions")?;
        if self
            .rules
            .iter()
            .any(|r| r.listener_arn == listener_arn && r.priority == priority)
        {
            return Err(ApiError::client(
                "PriorityInUse",
                format!("Priority '{priority}' is currently in use"),
            ));
        }
        let arn = self.insert_rule(&listener_arn, priority, conditions, actions)?;
        let rule = self
            .rules
            .iter()
            .find(|r| r.arn == arn)
            .ok_or_else(|| rule_not_found(&arn))?;
        let mut w = XmlWriter::new();
        w.list("Rules", [rule_row(rule)], write_rule);
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

    fn api_register_targets(
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

    fn api_deregister_targets(
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

    /// Reads a list of actions (`{prefix}.member.N.Type` ...), validating forward configs.
    fn parse_actions(
        &self,
        params: &BTreeMap<String, String>,
        prefix: &str,
    ) -> Result<Vec<Action>, ApiError> {
        let mut actions = Vec::new();
        for item in member_prefixes(params, prefix) {
            let kind = required(params, &format!("{item}.Type"))?;
            let order = optional_i32(params, &format!("{item}.Order"))?;
            match kind {
                "forward" => {
                    let mut weights = Vec::new();
                    let tuples_prefix = format!("{item}.ForwardConfig.TargetGroups");
                    for tuple in member_prefixes(params, &tuples_prefix) {
                        let arn = required(params, &format!("{tuple}.TargetGroupArn"))?;
                        let weight = optional_i32(params, &format!("{tuple}.Weight"))?.unwrap_or(1);
                        weights.push((arn.to_string(), weight));
                    }
                    let single = params
                        .get(&format!("{item}.TargetGroupArn"))
                        .filter(|v| !v.is_empty());
                    match single {
                        Some(arn) if weights.is_empty() => weights.push((arn.clone(), 1)),
                        Some(arn) if !(weights.len() == 1 && &weights[0].0 == arn) => {
                            return Err(validation(
                                "You cannot specify both a target group ARN and a forward config with different target groups",
                            ));
                        }
                        _ => {}
                    }
                    self.validate_forward(&weights)?;
                    actions.push(Action {
                        kind: kind.to_string(),
                        order,
                        forward: weights,
                        fixed: None,
                    });
                }
                "fixed-response" => {
                    let config = format!("{item}.FixedResponseConfig");
                    let status_code = required(params, &format!("{config}.StatusCode"))?;
                    if !(status_code.len() == 3
                        && status_code.chars().all(|c| c.is_ascii_digit())
                        && matches!(status_code.as_bytes()[0], b'2'..=b'5'))
                    {
                        return Err(validation(format!(
                            "Fixed response status code '{status_code}' must be 2XX, 4XX or 5XX"
                        )));
                    }
                    actions.push(Action {
                        kind: kind.to_string(),
                        order,
                        forward: Vec::new(),
                        fixed: Some(FixedResponse {
                            status_code: status_code.to_string(),
                            content_type: params.get(&format!("{config}.ContentType")).cloned(),
                            message_body: params.get(&format!("{config}.MessageBody")).cloned(),
                        }),
                    });
                }
                other => {
                    return Err(validation(format!(
                        "Action type '{other}' is not supported by the cortado sandbox; use 'forward' or 'fixed-response'"
                    )));
                }
            }
        }
        if actions.is_empty() {
            return Err(validation(format!(
                "At least one action must be specified in '{prefix}'"
            )));
        }
        Ok(actions)
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

/// The `NAME/LBID/LISTENERID` tail of a listener ARN.
fn listener_tail(arn: &str) -> String {
    arn.split_once(":listener/app/")
        .map(|(_, tail)| tail.to_string())
        .unwrap_or_default()
}

fn validate_attribute(key: &str, value: &str) -> Result<(), ApiError> {
    let int_in = |low: i64, high: i64| -> Result<(), ApiError> {
        match value.parse::<i64>() {
            Ok(v) if (low..=high).contains(&v) => Ok(()),
            _ => Err(validation(format!(
                "Target group attribute '{key}' must be an integer between {low} and {high}, got '{value}'"
            ))),
        }
    };
    match key {
        DEREGISTRATION_DELAY => int_in(0, 3600),
        "slow_start.duration_seconds" => int_in(0, 900),
        "stickiness.lb_cookie.duration_seconds" => int_in(1, 604_800),
        "stickiness.enabled" => match value {
            "true" | "false" => Ok(()),
            _ => Err(validation(format!(
                "Target group attribute '{key}' must be 'true' or 'false', got '{value}'"
            ))),
        },
        "stickiness.type"
        | "load_balancing.algorithm.type"
        | "load_balancing.cross_zone.enabled"
        | "stickiness.app_cookie.cookie_name"
        | "stickiness.app_cookie.duration_seconds"
        | "load_balancing.algorithm.anomaly_mitigation" => Ok(()),
        _ => Err(validation(format!(
            "Target group attribute key '{key}' is not recognized"
        ))),
    }
}

fn health_from_params(
    params: &BTreeMap<String, String>,
    mut health: HealthCheck,
) -> Result<HealthCheck, ApiError> {
    if let Some(v) = optional_i32(params, "HealthCheckIntervalSeconds")? {
        health.interval_seconds = v;
    }
    if let Some(v) = optional_i32(params, "HealthCheckTimeoutSeconds")? {
        health.timeout_seconds = v;
    }
    if let Some(v) = optional_i32(params, "HealthyThresholdCount")? {
        health.healthy_threshold = v;
    }
    if let Some(v) = optional_i32(params, "UnhealthyThresholdCount")? {
        health.unhealthy_threshold = v;
    }
    let text = |key: &str| params.get(key).filter(|v| !v.is_empty()).cloned();
    if let Some(v) = text("HealthCheckPath") {
        health.path = v;
    }
    if let Some(v) = text("HealthCheckPort") {
        health.port = v;
    }
    if let Some(v) = text("HealthCheckProtocol") {
        health.protocol = v;
    }
    if let Some(v) = text("Matcher.HttpCode") {
        health.matcher = v;
    }
    if let Some(v) = text("HealthCheckEnabled") {
        health.enabled = match v.as_str() {
            "true" => true,
            "false" => false,
            other => {
                return Err(validation(format!(
                    "HealthCheckEnabled must be 'true' or 'false', got '{other}'"
                )));
            }
        };
    }
    Ok(health)
}

/// Reads rule conditions: `Field` with `Values` or a `PathPatternConfig` / `HostHeaderConfig`.
fn parse_conditions(
    params: &BTreeMap<String, String>,
    prefix: &str,
) -> Result<Vec<Condition>, ApiError> {
    let mut conditions = Vec::new();
    for item in member_prefixes(params, prefix) {
        let field = required(params, &format!("{item}.Field"))?;
        let config = match field {
            "path-pattern" => "PathPatternConfig",
            "host-header" => "HostHeaderConfig",
            other => {
                return Err(validation(format!(
                    "Condition field '{other}' is not supported by the cortado sandbox; use 'path-pattern' or 'host-header'"
                )));
            }
        };
        let mut values = members(params, &format!("{item}.Values"));
        values.extend(members(params, &format!("{item}.{config}.Values")));
        if values.is_empty() {
            return Err(validation(format!(
                "Condition '{field}' needs at least one value"
            )));
        }
        conditions.push(Condition {
            field: field.to_string(),
            values,
        });
    }
    Ok(conditions)
}

fn rule_row(rule: &Rule) -> RuleRow {
    RuleRow {
        arn: rule.arn.clone(),
        priority: rule.priority.to_string(),
        conditions: rule.conditions.clone(),
        actions: rule.actions.clone(),
        is_default: false,
    }
}

fn default_rule_row(listener: &Listener) -> RuleRow {
    RuleRow {
        arn: listener.default_rule_arn.clone(),
        priority: "default".to_string(),
        conditions: Vec::new(),
        actions: listener.default_actions.clone(),
        is_default: true,
    }
}

fn write_rule(w: &mut XmlWriter, row: RuleRow) {
    let RuleRow {
        arn,
        priority,
        conditions,
        actions,
        is_default,
    } = row;
    w.text("RuleArn", &arn).text("Priority", &priority);
    w.list("Conditions", conditions, |w, c| {
        w.text("Field", &c.field).string_list("Values", &c.values);
        let config = if c.field == "host-header" {
            "HostHeaderConfig"
        } else {
            "PathPatternConfig"
        };
        w.open(config)
            .string_list("Values", &c.values)
            .close(config);
    });
    write_actions(w, "Actions", &actions);
    w.value("IsDefault", is_default);
}

fn write_listener(w: &mut XmlWriter, listener: &Listener) {
    w.text("ListenerArn", &listener.arn)
        .text("LoadBalancerArn", &listener.lb_arn)
        .value("Port", listener.port)
        .text("Protocol", &listener.protocol);
    write_actions(w, "DefaultActions", &listener.default_actions);
}

fn write_actions(w: &mut XmlWriter, tag: &str, actions: &[Action]) {
    w.list(tag, actions.iter().enumerate(), |w, (index, action)| {
        w.text("Type", &action.kind);
        if action.kind == "forward"
            && let [(arn, _)] = action.forward.as_slice()
        {
            w.text("TargetGroupArn", arn);
        }
        let order = action
            .order
            .unwrap_or_else(|| i32::try_from(index + 1).unwrap_or(i32::MAX));
        w.value("Order", order);
        if let Some(fixed) = &action.fixed {
            w.open("FixedResponseConfig")
                .opt_text("MessageBody", fixed.message_body.as_deref())
                .text("StatusCode", &fixed.status_code)
                .opt_text("ContentType", fixed.content_type.as_deref())
                .close("FixedResponseConfig");
        }
        if action.kind == "forward" {
            w.open("ForwardConfig");
            w.list("TargetGroups", &action.forward, |w, (arn, weight)| {
                w.text("TargetGroupArn", arn).value("Weight", weight);
            });
            w.open("TargetGroupStickinessConfig")
                .value("Enabled", false)
                .close("TargetGroupStickinessConfig");
            w.close("ForwardConfig");
        }
    });
}

fn write_attributes(attributes: &BTreeMap<String, String>) -> String {
    let mut w = XmlWriter::new();
    w.list("Attributes", attributes, |w, (key, value)| {
        w.text("Key", key).text("Value", value);
    });
    w.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::query::parse_form;

    /// A load balancer with a listener forwarding 100/0 to blue/green and a `/api/*` rule.
    fn seeded() -> (Elbv2, String, String, String, String) {
        let mut elb = Elbv2::new("us-east-1", "123456789012");
        let lb = elb.create_load_balancer("web");
        let blue = elb.create_target_group("blue", 8080, "HTTP", "ip");
        let green = elb.create_target_group("green", 8080, "HTTP", "ip");
        let listener = elb
            .create_listener(&lb, 80, "HTTP", &[(blue.clone(), 100), (green.clone(), 0)])
            .unwrap();
        let rule = elb
            .create_rule(&listener, 10, "/api/*", &[(blue.clone(), 1)])
            .unwrap();
        (elb, blue, green, listener, rule)
    }

    fn call(elb: &mut Elbv2, body: &str, now: f64) -> Result<String, ApiError> {
        let params = parse_form(body);
        let action = params.get("Action").cloned().unwrap_or_default();
        elb.handle(&action, &params, now, "req-1")
    }

    #[test]
    fn arns_are_deterministic_and_seeding_is_idempotent() {
        let (mut a, blue, _, listener, rule) = seeded();
        let (b, blue_b, _, listener_b, rule_b) = seeded();
        assert_eq!(blue, blue_b);
        assert_eq!(listener, listener_b);
        assert_eq!(rule, rule_b);
        assert!(
            blue.starts_with(
                "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/blue/"
            )
        );
        assert_eq!(blue.rsplit('/').next().unwrap().len(), 16);
        assert!(listener.contains(":listener/app/web/"));
        assert!(rule.contains(":listener-rule/app/web/"));
        assert_eq!(a.create_target_group("blue", 8080, "HTTP", "ip"), blue);
        let lb = a.find_load_balancer("web").unwrap();
        assert_eq!(a.create_load_balancer("web"), lb);
        assert_eq!(a.target_groups.len(), b.target_groups.len());
        assert_eq!(a.find_target_group("blue"), Some(blue.clone()));
        assert_eq!(a.find_target_group(&blue), Some(blue));
        assert_eq!(a.find_target_group("nope"), None);
    }

    #[test]
    fn describe_target_groups_by_name_arn_and_load_balancer() {
        let (mut elb, blue, green, _, _) = seeded();
        let xml = call(
            &mut elb,
            "Action=DescribeTargetGroups&Version=2015-12-01&Names.member.1=green",
            0.0,
        )
        .unwrap();
        assert!(xml.starts_with("<DescribeTargetGroupsResponse xmlns=\"http://elasticloadbalancing.amazonaws.com/doc/2015-12-01/\"><DescribeTargetGroupsResult><TargetGroups><member>"));
        assert!(xml.contains(&format!("<TargetGroupArn>{green}</TargetGroupArn>")));
        assert!(!xml.contains(&format!("<TargetGroupArn>{blue}</TargetGroupArn>")));
        assert!(xml.contains("<HealthCheckIntervalSeconds>30</HealthCheckIntervalSeconds>"));
        assert!(xml.contains("<HealthyThresholdCount>5</HealthyThresholdCount>"));
        assert!(xml.contains("<TargetType>ip</TargetType>"));
        assert!(xml.ends_with(
            "<RequestId>req-1</RequestId></ResponseMetadata></DescribeTargetGroupsResponse>"
        ));

        let by_arn = call(
            &mut elb,
            &format!("Action=DescribeTargetGroups&TargetGroupArns.member.1={blue}"),
            0.0,
        )
        .unwrap();
        assert_eq!(by_arn.matches("<TargetGroupName>").count(), 1);
        assert!(by_arn.contains("<TargetGroupName>blue</TargetGroupName>"));

        let lb = elb.find_load_balancer("web").unwrap();
        let orphan = elb.create_target_group("orphan", 80, "HTTP", "ip");
        let by_lb = call(
            &mut elb,
            &format!("Action=DescribeTargetGroups&LoadBalancerArn={lb}"),
            0.0,
        )
        .unwrap();
        assert_eq!(by_lb.matches("<TargetGroupName>").count(), 2);
        assert!(!by_lb.contains(&orphan));
        assert!(by_lb.contains(&format!(
            "<LoadBalancerArns><member>{lb}</member></LoadBalancerArns>"
        )));

        let err = call(
            &mut elb,
            "Action=DescribeTargetGroups&Names.member.1=green&Names.member.2=missing",
            0.0,
        )
        .unwrap_err();
        assert_eq!(err.code, "TargetGroupNotFound");
        assert!(err.message.contains("missing"));
        let err = call(
            &mut elb,
            "Action=DescribeTargetGroups&LoadBalancerArn=arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/x/0",
            0.0,
        )
        .unwrap_err();
        assert_eq!(err.code, "LoadBalancerNotFound");
    }

    #[test]
    fn healthy_after_interval_times_healthy_threshold() {
        let (mut elb, blue, _, _, _) = seeded();
        elb.register_target(&blue, "10.0.0.1", 8080, 100.0, Some(100.0));
        assert_eq!(
            elb.target_state(&blue, "10.0.0.1", 100.0),
            Some(TargetState::Initial)
        );
        assert_eq!(
            elb.target_state(&blue, "10.0.0.1", 249.9),
            Some(TargetState::Initial)
        );
        assert_eq!(
            elb.target_state(&blue, "10.0.0.1", 250.0),
            Some(TargetState::Healthy)
        );
        assert_eq!(elb.next_change_time(&blue, "10.0.0.1", 100.0), Some(130.0));
        assert_eq!(elb.target_state(&blue, "10.0.0.9", 250.0), None);
        assert_eq!(elb.target_state("arn:nope", "10.0.0.1", 250.0), None);
    }

    #[test]
    fn never_healthy_becomes_unhealthy_after_unhealthy_threshold() {
        let (mut elb, blue, _, _, _) = seeded();
        elb.register_target(&blue, "10.0.0.2", 8080, 0.0, None);
        assert_eq!(
            elb.target_state(&blue, "10.0.0.2", 59.0),
            Some(TargetState::Initial)
        );
        assert_eq!(
            elb.target_state(&blue, "10.0.0.2", 60.0),
            Some(TargetState::Unhealthy)
        );
        assert_eq!(
            elb.target_state(&blue, "10.0.0.2", 6000.0),
            Some(TargetState::Unhealthy)
        );
        let xml = call(
            &mut elb,
            &format!("Action=DescribeTargetHealth&TargetGroupArn={blue}"),
            61.0,
        )
        .unwrap();
        assert!(xml.contains("<Target><Id>10.0.0.2</Id><Port>8080</Port></Target><HealthCheckPort>8080</HealthCheckPort><TargetHealth><State>unhealthy</State><Reason>Target.FailedHealthChecks</Reason>"));
    }

    #[test]
    fn slow_app_is_unhealthy_then_healthy_and_a_crash_makes_it_unhealthy() {
        let (mut elb, blue, _, _, _) = seeded();
        // Checks at 30, 60, ...; the app answers from 100 (first passing check at 120).
        elb.register_target(&blue, "10.0.0.3", 8080, 0.0, Some(100.0));
        assert_eq!(
            elb.target_state(&blue, "10.0.0.3", 30.0),
            Some(TargetState::Initial)
        );
        assert_eq!(
            elb.target_state(&blue, "10.0.0.3", 60.0),
            Some(TargetState::Unhealthy)
        );
        assert_eq!(
            elb.target_state(&blue, "10.0.0.3", 239.0),
            Some(TargetState::Unhealthy)
        );
        assert_eq!(
            elb.target_state(&blue, "10.0.0.3", 240.0),
            Some(TargetState::Healthy)
        );
        // A quick start: one failed check is not conclusive.
        elb.register_target(&blue, "10.0.0.4", 8080, 0.0, Some(45.0));
        assert_eq!(
            elb.target_state(&blue, "10.0.0.4", 60.0),
            Some(TargetState::Initial)
        );
        assert_eq!(
            elb.target_state(&blue, "10.0.0.4", 180.0),
            Some(TargetState::Healthy)
        );
        // The app crashes at 310: two failing checks (330, 360) later it is unhealthy.
        assert!(elb.set_app_health(&blue, "10.0.0.4", Some(45.0), Some(310.0)));
        assert_eq!(
            elb.target_state(&blue, "10.0.0.4", 330.0),
            Some(TargetState::Healthy)
        );
        assert_eq!(
            elb.target_state(&blue, "10.0.0.4", 360.0),
            Some(TargetState::Unhealthy)
        );
        assert!(!elb.set_app_health(&blue, "10.9.9.9", None, None));
    }

    #[test]
    fn health_check_settings_are_configurable() {
        let mut elb = Elbv2::new("us-east-1", "123456789012");
        let lb = elb.create_load_balancer("fast");
        let health = HealthCheck {
            interval_seconds: 10,
            timeout_seconds: 5,
            healthy_threshold: 2,
            unhealthy_threshold: 3,
            ..HealthCheck::default()
        };
        let tg = elb
            .create_target_group_with("quick", 80, "HTTP", "ip", health.clone())
            .unwrap();
        elb.create_listener(&lb, 80, "HTTP", &[(tg.clone(), 1)])
            .unwrap();
        elb.register_target(&tg, "10.0.1.1", 80, 0.0, Some(0.0));
        elb.register_target(&tg, "10.0.1.2", 80, 0.0, None);
        assert_eq!(
            elb.target_state(&tg, "10.0.1.1", 19.0),
            Some(TargetState::Initial)
        );
        assert_eq!(
            elb.target_state(&tg, "10.0.1.1", 20.0),
            Some(TargetState::Healthy)
        );
        assert_eq!(
            elb.target_state(&tg, "10.0.1.2", 29.0),
            Some(TargetState::Initial)
        );
        assert_eq!(
            elb.target_state(&tg, "10.0.1.2", 30.0),
            Some(TargetState::Unhealthy)
        );
        let bad = HealthCheck {
            timeout_seconds: 10,
            ..health
        };
        assert_eq!(
            elb.set_health_check(&tg, bad).unwrap_err().code,
            "ValidationError"
        );
        assert_eq!(elb.health_check(&tg).map(|h| h.interval_seconds), Some(10));

        // Through the API.
        let xml = call(
            &mut elb,
            "Action=CreateTargetGroup&Name=api-tg&Protocol=HTTP&Port=8080&TargetType=ip&HealthCheckIntervalSeconds=15&HealthyThresholdCount=3&UnhealthyThresholdCount=4&HealthCheckPath=%2Fhealth",
            0.0,
        )
        .unwrap();
        assert!(xml.contains("<HealthCheckIntervalSeconds>15</HealthCheckIntervalSeconds>"));
        assert!(xml.contains("<HealthyThresholdCount>3</HealthyThresholdCount>"));
        assert!(xml.contains("<UnhealthyThresholdCount>4</UnhealthyThresholdCount>"));
        assert!(xml.contains("<HealthCheckPath>/health</HealthCheckPath>"));
        let err = call(
            &mut elb,
            "Action=CreateTargetGroup&Name=api-tg&Protocol=HTTP&Port=9090&TargetType=ip",
            0.0,
        )
        .unwrap_err();
        assert_eq!(err.code, "DuplicateTargetGroupName");
        let err = call(
            &mut elb,
            "Action=CreateTargetGroup&Name=x&Port=80&HealthCheckIntervalSeconds=1",
            0.0,
        )
        .unwrap_err();
        assert_eq!(err.code, "ValidationError");
        let err = call(&mut elb, "Action=CreateTargetGroup&Name=-bad-&Port=80", 0.0).unwrap_err();
        assert_eq!(err.code, "ValidationError");
    }

    #[test]
    fn draining_lasts_the_deregistration_delay_then_the_target_is_gone() {
        let (mut elb, blue, green, _, _) = seeded();
        elb.register_target(&blue, "10.0.0.5", 8080, 0.0, Some(0.0));
        elb.deregister_target(&blue, "10.0.0.5", 500.0);
        assert_eq!(
            elb.target_state(&blue, "10.0.0.5", 500.0),
            Some(TargetState::Draining)
        );
        assert_eq!(
            elb.target_state(&blue, "10.0.0.5", 799.0),
            Some(TargetState::Draining)
        );
        assert_eq!(elb.next_change_time(&blue, "10.0.0.5", 600.0), Some(800.0));
        assert_eq!(elb.deregistration_delay(&blue), Some(300.0));
        assert_eq!(
            elb.targets(&blue, 600.0),
            vec![("10.0.0.5".to_string(), 8080, TargetState::Draining)]
        );
        assert_eq!(elb.target_state(&blue, "10.0.0.5", 800.0), None);
        assert!(elb.targets(&blue, 800.0).is_empty());
        let xml = call(
            &mut elb,
            &format!("Action=DescribeTargetHealth&TargetGroupArn={blue}"),
            700.0,
        );
        let xml = xml.unwrap();
        assert!(
            xml.contains("<State>draining</State><Reason>Target.DeregistrationInProgress</Reason>")
        );
        let gone = call(
            &mut elb,
            &format!("Action=DescribeTargetHealth&TargetGroupArn={blue}"),
            801.0,
        )
        .unwrap();
        assert!(gone.contains("<TargetHealthDescriptions></TargetHealthDescriptions>"));

        // A shorter delay through ModifyTargetGroupAttributes.
        let xml = call(
            &mut elb,
            &format!("Action=ModifyTargetGroupAttributes&TargetGroupArn={green}&Attributes.member.1.Key=deregistration_delay.timeout_seconds&Attributes.member.1.Value=30"),
            0.0,
        )
        .unwrap();
        assert!(xml.contains(
            "<member><Key>deregistration_delay.timeout_seconds</Key><Value>30</Value></member>"
        ));
        elb.register_target(&green, "10.0.0.6", 8080, 900.0, Some(900.0));
        elb.deregister_target(&green, "10.0.0.6", 1000.0);
        assert_eq!(
            elb.target_state(&green, "10.0.0.6", 1029.0),
            Some(TargetState::Draining)
        );
        assert_eq!(elb.target_state(&green, "10.0.0.6", 1030.0), None);
        let err = call(
            &mut elb,
            &format!("Action=ModifyTargetGroupAttributes&TargetGroupArn={green}&Attributes.member.1.Key=deregistration_delay.timeout_seconds&Attributes.member.1.Value=4000"),
            0.0,
        )
        .unwrap_err();
        assert_eq!(err.code, "ValidationError");
        let attrs = call(
            &mut elb,
            &format!("Action=DescribeTargetGroupAttributes&TargetGroupArn={green}"),
            0.0,
        )
        .unwrap();
        assert!(attrs.contains("<Key>deregistration_delay.timeout_seconds</Key><Value>30</Value>"));
    }

    #[test]
    fn targets_of_an_unattached_group_are_unused() {
        let (mut elb, _, _, _, _) = seeded();
        let orphan = elb.create_target_group("orphan", 80, "HTTP", "ip");
        elb.register_target(&orphan, "10.0.2.1", 80, 0.0, Some(0.0));
        assert_eq!(
            elb.target_state(&orphan, "10.0.2.1", 1000.0),
            Some(TargetState::Unused)
        );
        // Deregistration from an unused group is immediate.
        elb.deregister_target(&orphan, "10.0.2.1", 1000.0);
        assert_eq!(elb.target_state(&orphan, "10.0.2.1", 1000.0), None);
    }

    #[test]
    fn describe_target_health_for_named_targets_and_api_registration() {
        let (mut elb, blue, _, _, _) = seeded();
        call(
            &mut elb,
            &format!("Action=RegisterTargets&TargetGroupArn={blue}&Targets.member.1.Id=10.0.3.1&Targets.member.1.Port=8080&Targets.member.2.Id=10.0.3.2"),
            0.0,
        )
        .unwrap();
        let xml = call(
            &mut elb,
            &format!("Action=DescribeTargetHealth&TargetGroupArn={blue}&Targets.member.1.Id=10.0.3.2&Targets.member.2.Id=10.0.3.3&Targets.member.2.Port=8080"),
            10.0,
        )
        .unwrap();
        assert!(xml.contains("<Id>10.0.3.2</Id><Port>8080</Port></Target><HealthCheckPort>8080</HealthCheckPort><TargetHealth><State>initial</State><Reason>Elb.RegistrationInProgress</Reason>"));
        assert!(xml.contains("<Id>10.0.3.3</Id><Port>8080</Port></Target><HealthCheckPort>8080</HealthCheckPort><TargetHealth><State>unused</State><Reason>Target.NotRegistered</Reason>"));
        assert!(!xml.contains("10.0.3.1"));
        let healthy = call(
            &mut elb,
            &format!("Action=DescribeTargetHealth&TargetGroupArn={blue}"),
            150.0,
        )
        .unwrap();
        assert_eq!(healthy.matches("<State>healthy</State>").count(), 2);
        assert!(!healthy.contains("<Reason>"));

        call(
            &mut elb,
            &format!("Action=DeregisterTargets&TargetGroupArn={blue}&Targets.member.1.Id=10.0.3.1"),
            200.0,
        )
        .unwrap();
        assert_eq!(
            elb.target_state(&blue, "10.0.3.1", 201.0),
            Some(TargetState::Draining)
        );
        let err = call(
            &mut elb,
            &format!("Action=DeregisterTargets&TargetGroupArn={blue}&Targets.member.1.Id=10.0.3.9"),
            200.0,
        )
        .unwrap_err();
        assert_eq!(err.code, "InvalidTarget");
        let err = call(
            &mut elb,
            &format!("Action=RegisterTargets&TargetGroupArn={blue}&Targets.member.1.Id=not-an-ip"),
            200.0,
        )
        .unwrap_err();
        assert_eq!(err.code, "InvalidTarget");
        let err = call(&mut elb, "Action=DescribeTargetHealth", 0.0).unwrap_err();
        assert_eq!(err.code, "ValidationError");
        assert!(err.message.contains("TargetGroupArn"));
    }

    #[test]
    fn describe_rules_lists_priorities_then_the_default_rule() {
        let (mut elb, blue, green, listener, rule) = seeded();
        let xml = call(
            &mut elb,
            &format!("Action=DescribeRules&ListenerArn={listener}"),
            0.0,
        )
        .unwrap();
        let first = xml
            .find(&format!("<RuleArn>{rule}</RuleArn><Priority>10</Priority>"))
            .unwrap();
        let default = xml.find("<Priority>default</Priority>").unwrap();
        assert!(first < default);
        assert!(xml.contains("<Conditions><member><Field>path-pattern</Field><Values><member>/api/*</member></Values><PathPatternConfig><Values><member>/api/*</member></Values></PathPatternConfig></member></Conditions>"));
        assert!(xml.contains("<IsDefault>true</IsDefault>"));
        assert!(xml.contains("<IsDefault>false</IsDefault>"));
        assert!(xml.contains(&format!("<ForwardConfig><TargetGroups><member><TargetGroupArn>{blue}</TargetGroupArn><Weight>100</Weight></member><member><TargetGroupArn>{green}</TargetGroupArn><Weight>0</Weight></member></TargetGroups>")));
        // A single-group forward also names the group at the action level.
        assert!(xml.contains(&format!(
            "<Type>forward</Type><TargetGroupArn>{blue}</TargetGroupArn><Order>1</Order>"
        )));

        let err = call(&mut elb, "Action=DescribeRules", 0.0).unwrap_err();
        assert_eq!(err.code, "ValidationError");
        let err = call(
            &mut elb,
            &format!("Action=DescribeRules&ListenerArn={listener}x"),
            0.0,
        )
        .unwrap_err();
        assert_eq!(err.code, "ListenerNotFound");
        let err = call(
            &mut elb,
            &format!("Action=DescribeRules&RuleArns.member.1={rule}x"),
            0.0,
        )
        .unwrap_err();
        assert_eq!(err.code, "RuleNotFound");
    }

    #[test]
    fn modify_rule_replaces_weights_and_validates() {
        let (mut elb, blue, green, listener, rule) = seeded();
        let body = |arn: &str, w1: i32, w2: &str| {
            format!(
                "Action=ModifyRule&RuleArn={arn}&Actions.member.1.Type=forward\
                 &Actions.member.1.ForwardConfig.TargetGroups.member.1.TargetGroupArn={blue}\
                 &Actions.member.1.ForwardConfig.TargetGroups.member.1.Weight={w1}\
                 &Actions.member.1.ForwardConfig.TargetGroups.member.2.TargetGroupArn={green}\
                 &Actions.member.1.ForwardConfig.TargetGroups.member.2.Weight={w2}"
            )
        };
        let xml = call(&mut elb, &body(&rule, 90, "10"), 0.0).unwrap();
        assert!(xml.contains(&format!("<Rules><member><RuleArn>{rule}</RuleArn>")));
        assert!(xml.contains("<Weight>90</Weight>"));
        assert_eq!(
            elb.forward_weights(&rule),
            Some(vec![(blue.clone(), 90), (green.clone(), 10)])
        );
        // The rule's condition is kept when Conditions are not sent.
        assert!(xml.contains("/api/*"));

        let err = call(&mut elb, &body(&rule, 1000, "0"), 0.0).unwrap_err();
        assert_eq!(err.code, "ValidationError");
        assert!(err.message.contains("999"));
        let err = call(&mut elb, &body(&rule, -1, "0"), 0.0).unwrap_err();
        assert_eq!(err.code, "ValidationError");
        let err = call(&mut elb, &body(&rule, 1, "x"), 0.0).unwrap_err();
        assert_eq!(err.code, "ValidationError");
        assert_eq!(
            elb.forward_weights(&rule),
            Some(vec![(blue.clone(), 90), (green.clone(), 10)])
        );
        let no_conditions = format!("{}&Conditions=", body(&rule, 1, "1"));
        assert_eq!(
            call(&mut elb, &no_conditions, 0.0).unwrap_err().code,
            "ValidationError"
        );
        let err = call(&mut elb, &body(&format!("{rule}0"), 1, "1"), 0.0).unwrap_err();
        assert_eq!(err.code, "RuleNotFound");
        let unknown_tg = format!(
            "Action=ModifyRule&RuleArn={rule}&Actions.member.1.Type=forward&Actions.member.1.TargetGroupArn={blue}x"
        );
        assert_eq!(
            call(&mut elb, &unknown_tg, 0.0).unwrap_err().code,
            "TargetGroupNotFound"
        );

        // The default rule's actions are the listener's default actions.
        let default_rule = elb.listener(&listener).unwrap().default_rule_arn.clone();
        call(&mut elb, &body(&default_rule, 0, "100"), 0.0).unwrap();
        assert_eq!(
            elb.forward_weights(&listener),
            Some(vec![(blue.clone(), 0), (green.clone(), 100)])
        );
        assert_eq!(
            elb.forward_weights(&default_rule),
            elb.forward_weights(&listener)
        );
        let with_condition = format!(
            "{}&Conditions.member.1.Field=path-pattern&Conditions.member.1.Values.member.1=/x",
            body(&default_rule, 1, "1")
        );
        assert_eq!(
            call(&mut elb, &with_condition, 0.0).unwrap_err().code,
            "OperationNotPermitted"
        );
    }

    #[test]
    fn set_forward_weights_and_modify_listener() {
        let (mut elb, blue, green, listener, rule) = seeded();
        elb.set_forward_weights(&listener, &[(blue.clone(), 50), (green.clone(), 50)])
            .unwrap();
        assert_eq!(
            elb.forward_weights(&listener),
            Some(vec![(blue.clone(), 50), (green.clone(), 50)])
        );
        assert_eq!(
            elb.set_forward_weights(&rule, &[(blue.clone(), 1000)])
                .unwrap_err()
                .code,
            "ValidationError"
        );
        assert_eq!(
            elb.set_forward_weights(&format!("{rule}1"), &[(blue.clone(), 1)])
                .unwrap_err()
                .code,
            "RuleNotFound"
        );
        assert_eq!(
            elb.set_forward_weights(&format!("{listener}1"), &[(blue.clone(), 1)])
                .unwrap_err()
                .code,
            "ListenerNotFound"
        );
        assert_eq!(
            elb.set_forward_weights(&listener, &[(blue.clone(), 1), (blue.clone(), 2)])
                .unwrap_err()
                .code,
            "ValidationError"
        );
        assert_eq!(elb.forward_weights("arn:nothing"), None);

        let xml = call(
            &mut elb,
            &format!("Action=ModifyListener&ListenerArn={listener}&DefaultActions.member.1.Type=forward&DefaultActions.member.1.TargetGroupArn={green}"),
            0.0,
        )
        .unwrap();
        assert!(xml.starts_with("<ModifyListenerResponse"));
        assert!(xml.contains(&format!(
            "<DefaultActions><member><Type>forward</Type><TargetGroupArn>{green}</TargetGroupArn>"
        )));
        assert_eq!(
            elb.forward_weights(&listener),
            Some(vec![(green.clone(), 1)])
        );
        let fixed = call(
            &mut elb,
            &format!("Action=ModifyListener&ListenerArn={listener}&DefaultActions.member.1.Type=fixed-response&DefaultActions.member.1.FixedResponseConfig.StatusCode=503&DefaultActions.member.1.FixedResponseConfig.MessageBody=down+%26+out"),
            0.0,
        )
        .unwrap();
        assert!(fixed.contains("<FixedResponseConfig><MessageBody>down &amp; out</MessageBody><StatusCode>503</StatusCode></FixedResponseConfig>"));
        assert_eq!(elb.forward_weights(&listener), None);
        let err = call(
            &mut elb,
            &format!(
                "Action=ModifyListener&ListenerArn={listener}&DefaultActions.member.1.Type=redirect"
            ),
            0.0,
        )
        .unwrap_err();
        assert_eq!(err.code, "ValidationError");
        let err = call(&mut elb, "Action=ModifyListener&ListenerArn=arn:x", 0.0).unwrap_err();
        assert_eq!(err.code, "ListenerNotFound");
    }

    #[test]
    fn create_everything_through_the_api() {
        let mut elb = Elbv2::new("eu-west-1", "111122223333");
        let xml = call(
            &mut elb,
            "Action=CreateLoadBalancer&Name=shop&Type=application",
            1.7e9,
        )
        .unwrap();
        assert!(xml.contains("<LoadBalancerArn>arn:aws:elasticloadbalancing:eu-west-1:111122223333:loadbalancer/app/shop/"));
        assert!(xml.contains("<CreatedTime>2023-11-14T22:13:20Z</CreatedTime>"));
        assert!(xml.contains("<State><Code>active</Code></State>"));
        let lb = elb.find_load_balancer("shop").unwrap();
        call(
            &mut elb,
            "Action=CreateTargetGroup&Name=shop-a&Port=80&TargetType=ip",
            0.0,
        )
        .unwrap();
        let tg = elb.find_target_group("shop-a").unwrap();
        let xml = call(
            &mut elb,
            &format!("Action=CreateListener&LoadBalancerArn={lb}&Port=443&Protocol=HTTPS&DefaultActions.member.1.Type=forward&DefaultActions.member.1.TargetGroupArn={tg}"),
            0.0,
        )
        .unwrap();
        assert!(xml.contains("<Port>443</Port><Protocol>HTTPS</Protocol>"));
        let listener = elb.listeners[0].arn.clone();
        let err = call(
            &mut elb,
            &format!("Action=CreateListener&LoadBalancerArn={lb}&Port=443&DefaultActions.member.1.Type=forward&DefaultActions.member.1.TargetGroupArn={tg}"),
            0.0,
        )
        .unwrap_err();
        assert_eq!(err.code, "DuplicateListener");
        let rule_body = format!(
            "Action=CreateRule&ListenerArn={listener}&Priority=5&Conditions.member.1.Field=host-header&Conditions.member.1.HostHeaderConfig.Values.member.1=shop.example.com&Actions.member.1.Type=forward&Actions.member.1.ForwardConfig.TargetGroups.member.1.TargetGroupArn={tg}&Actions.member.1.ForwardConfig.TargetGroups.member.1.Weight=3"
        );
        let xml = call(&mut elb, &rule_body, 0.0).unwrap();
        assert!(xml.contains("<HostHeaderConfig><Values><member>shop.example.com</member></Values></HostHeaderConfig>"));
        assert!(xml.contains("<Priority>5</Priority>"));
        assert_eq!(
            call(&mut elb, &rule_body, 0.0).unwrap_err().code,
            "PriorityInUse"
        );
        let listeners = call(
            &mut elb,
            &format!("Action=DescribeListeners&LoadBalancerArn={lb}"),
            0.0,
        )
        .unwrap();
        assert_eq!(listeners.matches("<ListenerArn>").count(), 1);
        let lbs = call(
            &mut elb,
            "Action=DescribeLoadBalancers&Names.member.1=shop",
            0.0,
        )
        .unwrap();
        assert!(lbs.contains("<LoadBalancerName>shop</LoadBalancerName>"));
        let err = call(
            &mut elb,
            "Action=DescribeLoadBalancers&Names.member.1=nope",
            0.0,
        )
        .unwrap_err();
        assert_eq!(err.code, "LoadBalancerNotFound");
        let err = call(
            &mut elb,
            "Action=DescribeListeners&ListenerArns.member.1=arn:x",
            0.0,
        )
        .unwrap_err();
        assert_eq!(err.code, "ListenerNotFound");
        let err = call(&mut elb, "Action=DeleteEverything", 0.0).unwrap_err();
        assert_eq!(err.code, "InvalidAction");
        let err = elb
            .create_rule("arn:none", 1, "/", &[(tg.clone(), 1)])
            .unwrap_err();
        assert_eq!(err.code, "ListenerNotFound");
        let err = elb
            .create_listener("arn:none", 80, "HTTP", &[(tg, 1)])
            .unwrap_err();
        assert_eq!(err.code, "LoadBalancerNotFound");
    }

    #[test]
    fn state_survives_a_serde_round_trip() {
        let (mut elb, blue, _, listener, _) = seeded();
        elb.register_target(&blue, "10.0.0.1", 8080, 0.0, Some(0.0));
        let json = serde_json::to_string(&elb).unwrap();
        let back: Elbv2 = serde_json::from_str(&json).unwrap();
        assert_eq!(
            back.target_state(&blue, "10.0.0.1", 150.0),
            Some(TargetState::Healthy)
        );
        assert_eq!(
            back.forward_weights(&listener),
            elb.forward_weights(&listener)
        );
    }

    #[test]
    fn hostile_numbers_do_not_panic() {
        let (mut elb, blue, _, _, _) = seeded();
        let lb = elb.find_load_balancer("web").unwrap();
        elb.register_target(&blue, "10.0.0.1", 8080, f64::NAN, Some(f64::INFINITY));
        let _ = elb.target_state(&blue, "10.0.0.1", f64::MAX);
        let _ = elb.next_change_time(&blue, "10.0.0.1", f64::NEG_INFINITY);
        let err = call(
            &mut elb,
            &format!("Action=CreateListener&LoadBalancerArn={lb}&Port=99999999999"),
            0.0,
        )
        .unwrap_err();
        assert_eq!(err.code, "ValidationError");
        let _ = call(
            &mut elb,
            "Action=DescribeTargetGroups&Names.member.99999999999=x",
            0.0,
        );
    }
}

/// The real Rust SDK against [`Elbv2::handle`], over HTTP.
#[cfg(test)]
mod sdk_tests {
    use aws_sdk_elasticloadbalancingv2::Client;
    use aws_sdk_elasticloadbalancingv2::config::retry::RetryConfig;
    use aws_sdk_elasticloadbalancingv2::config::{BehaviorVersion, Credentials, Region};
    use aws_sdk_elasticloadbalancingv2::error::ProvideErrorMetadata;
    use aws_sdk_elasticloadbalancingv2::types::{
        Action as SdkAction, ActionTypeEnum, ForwardActionConfig, TargetDescription,
        TargetGroupTuple, TargetHealthReasonEnum, TargetHealthStateEnum,
    };

    use super::*;
    use crate::ecr::Ecr;
    use crate::test_server;

    fn client(url: &str) -> Client {
        let conf = aws_sdk_elasticloadbalancingv2::config::Builder::new()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .endpoint_url(url)
            .credentials_provider(Credentials::new("a", "b", None, None, "t"))
            .retry_config(RetryConfig::disabled())
            .build();
        Client::from_conf(conf)
    }

    fn forward(weights: &[(&str, i32)]) -> SdkAction {
        let mut config = ForwardActionConfig::builder();
        for (arn, weight) in weights {
            config = config.target_groups(
                TargetGroupTuple::builder()
                    .target_group_arn(*arn)
                    .weight(*weight)
                    .build(),
            );
        }
        SdkAction::builder()
            .r#type(ActionTypeEnum::Forward)
            .forward_config(config.build())
            .build()
    }

    #[tokio::test]
    async fn the_sdk_reads_and_writes_through_the_emulator() {
        let mut elb = Elbv2::new("us-east-1", "123456789012");
        let lb = elb.create_load_balancer("web");
        let blue = elb.create_target_group("blue", 8080, "HTTP", "ip");
        let green = elb.create_target_group("green", 8080, "HTTP", "ip");
        let listener = elb
            .create_listener(&lb, 80, "HTTP", &[(blue.clone(), 100), (green.clone(), 0)])
            .unwrap();
        let rule = elb
            .create_rule(&listener, 10, "/api/*", &[(blue.clone(), 1)])
            .unwrap();
        elb.register_target(&blue, "10.0.0.1", 8080, 0.0, Some(0.0));
        elb.register_target(&blue, "10.0.0.2", 8080, 0.0, None);
        let state = test_server::sandbox(elb, Ecr::default());
        let url = test_server::start(state.clone()).await;
        let client = client(&url);

        // DescribeTargetGroups, by name and unknown.
        let out = client
            .describe_target_groups()
            .names("blue")
            .send()
            .await
            .unwrap();
        let tg = &out.target_groups()[0];
        assert_eq!(tg.target_group_arn(), Some(blue.as_str()));
        assert_eq!(tg.target_group_name(), Some("blue"));
        assert_eq!(tg.port(), Some(8080));
        assert_eq!(tg.health_check_interval_seconds(), Some(30));
        assert_eq!(tg.healthy_threshold_count(), Some(5));
        assert_eq!(tg.load_balancer_arns(), std::slice::from_ref(&lb));
        assert_eq!(tg.matcher().and_then(|m| m.http_code()), Some("200"));
        let err = client
            .describe_target_groups()
            .names("missing")
            .send()
            .await
            .unwrap_err()
            .into_service_error();
        assert!(err.is_target_group_not_found_exception(), "{err:?}");
        assert!(err.message().unwrap_or_default().contains("missing"));

        // DescribeTargetHealth at t=150: one healthy, one unhealthy.
        state.lock().unwrap().now = 150.0;
        let health = client
            .describe_target_health()
            .target_group_arn(&blue)
            .send()
            .await
            .unwrap();
        let rows = health.target_health_descriptions();
        assert_eq!(rows.len(), 2);
        let first = &rows[0];
        assert_eq!(first.target().and_then(|t| t.id()), Some("10.0.0.1"));
        assert_eq!(first.target().and_then(|t| t.port()), Some(8080));
        assert_eq!(first.health_check_port(), Some("8080"));
        assert_eq!(
            first.target_health().and_then(|h| h.state()),
            Some(&TargetHealthStateEnum::Healthy)
        );
        let second = rows[1].target_health().unwrap();
        assert_eq!(second.state(), Some(&TargetHealthStateEnum::Unhealthy));
        assert_eq!(
            second.reason(),
            Some(&TargetHealthReasonEnum::FailedHealthChecks)
        );
        assert_eq!(second.description(), Some("Health checks failed"));

        // RegisterTargets through the SDK: initial, with its reason.
        client
            .register_targets()
            .target_group_arn(&blue)
            .targets(TargetDescription::builder().id("10.0.0.3").build())
            .send()
            .await
            .unwrap();
        let health = client
            .describe_target_health()
            .target_group_arn(&blue)
            .targets(TargetDescription::builder().id("10.0.0.3").build())
            .send()
            .await
            .unwrap();
        let row = health.target_health_descriptions()[0]
            .target_health()
            .unwrap();
        assert_eq!(row.state(), Some(&TargetHealthStateEnum::Initial));
        assert_eq!(
            row.reason(),
            Some(&TargetHealthReasonEnum::RegistrationInProgress)
        );

        // DescribeRules: the path rule, then the default rule.
        let rules = client
            .describe_rules()
            .listener_arn(&listener)
            .send()
            .await
            .unwrap();
        let rules = rules.rules();
        assert_eq!(rules.len(), 2);
        assert_eq!(rules[0].rule_arn(), Some(rule.as_str()));
        assert_eq!(rules[0].priority(), Some("10"));
        assert_eq!(rules[0].is_default(), Some(false));
        let condition = &rules[0].conditions()[0];
        assert_eq!(condition.field(), Some("path-pattern"));
        assert_eq!(
            condition.path_pattern_config().map(|c| c.values()),
            Some(&["/api/*".to_string()][..])
        );
        assert_eq!(rules[1].priority(), Some("default"));
        assert_eq!(rules[1].is_default(), Some(true));
        let default_weights: Vec<(String, Option<i32>)> = rules[1].actions()[0]
            .forward_config()
            .unwrap()
            .target_groups()
            .iter()
            .map(|t| (t.target_group_arn().unwrap().to_string(), t.weight()))
            .collect();
        assert_eq!(
            default_weights,
            vec![(blue.clone(), Some(100)), (green.clone(), Some(0))]
        );

        // ModifyRule: new weights, echoed back and stored.
        let modified = client
            .modify_rule()
            .rule_arn(&rule)
            .actions(forward(&[(&blue, 20), (&green, 80)]))
            .send()
            .await
            .unwrap();
        let tuples = modified.rules()[0].actions()[0]
            .forward_config()
            .unwrap()
            .target_groups();
        assert_eq!(tuples[1].target_group_arn(), Some(green.as_str()));
        assert_eq!(tuples[1].weight(), Some(80));
        assert_eq!(
            state.lock().unwrap().elbv2.forward_weights(&rule),
            Some(vec![(blue.clone(), 20), (green.clone(), 80)])
        );
        let err = client
            .modify_rule()
            .rule_arn(&rule)
            .actions(forward(&[(&blue, 1000)]))
            .send()
            .await
            .unwrap_err()
            .into_service_error();
        assert_eq!(err.code(), Some("ValidationError"));
        let err = client
            .modify_rule()
            .rule_arn(format!("{rule}0"))
            .actions(forward(&[(&blue, 1)]))
            .send()
            .await
            .unwrap_err()
            .into_service_error();
        assert!(err.is_rule_not_found_exception(), "{err:?}");

        // ModifyListener, DescribeListeners, DescribeLoadBalancers, attributes.
        client
            .modify_listener()
            .listener_arn(&listener)
            .default_actions(forward(&[(&green, 1)]))
            .send()
            .await
            .unwrap();
        let listeners = client
            .describe_listeners()
            .load_balancer_arn(&lb)
            .send()
            .await
            .unwrap();
        let action = &listeners.listeners()[0].default_actions()[0];
        assert_eq!(action.target_group_arn(), Some(green.as_str()));
        let lbs = client.describe_load_balancers().send().await.unwrap();
        let described = &lbs.load_balancers()[0];
        assert_eq!(described.load_balancer_name(), Some("web"));
        assert!(described.created_time().is_some());
        assert_eq!(
            described.state().and_then(|s| s.code()).map(|c| c.as_str()),
            Some("active")
        );
        let attrs = client
            .describe_target_group_attributes()
            .target_group_arn(&blue)
            .send()
            .await
            .unwrap();
        assert!(
            attrs
                .attributes()
                .iter()
                .any(|a| { a.key() == Some(DEREGISTRATION_DELAY) && a.value() == Some("300") })
        );
        let err = client
            .describe_listeners()
            .listener_arns("arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/x/1/2")
            .send()
            .await
            .unwrap_err()
            .into_service_error();
        assert!(err.is_listener_not_found_exception(), "{err:?}");
    }
}
