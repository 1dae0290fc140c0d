//! Target groups: created, adopted (an ARN named by a seed or `--prepare`) or made through
//! CreateTargetGroup; their health check settings and attributes (the deregistration delay);
//! DescribeTargetGroups, ModifyTargetGroup, Describe/ModifyTargetGroupAttributes.

use std::collections::BTreeMap;

use super::*;
use crate::api::ApiError;
use crate::query::{XmlWriter, member_prefixes, members, optional_i32, required};

impl Elbv2 {
    /// Looks up a target group by name or ARN.
    pub fn find_target_group(&self, name_or_arn: &str) -> Option<String> {
        self.target_groups
            .iter()
            .find(|tg| tg.arn == name_or_arn || tg.name == name_or_arn)
            .map(|tg| tg.arn.clone())
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

    /// A target group's health-check settings.
    pub fn health_check(&self, tg_arn: &str) -> Option<HealthCheck> {
        self.tg(tg_arn).map(|tg| tg.health.clone())
    }

    /// A target group's deregistration delay in seconds.
    pub fn deregistration_delay(&self, tg_arn: &str) -> Option<f64> {
        self.tg(tg_arn).map(TargetGroup::deregistration_delay)
    }

    pub(super) fn api_describe_target_groups(
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

    pub(super) fn api_modify_target_group(
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

    pub(super) fn api_describe_tg_attributes(
        &self,
        params: &BTreeMap<String, String>,
    ) -> Result<String, ApiError> {
        let arn = required(params, "TargetGroupArn")?;
        let tg = self.tg(arn).ok_or_else(|| tg_not_found(arn))?;
        Ok(write_attributes(&tg.attributes))
    }

    pub(super) fn api_modify_tg_attributes(
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

    pub(super) fn api_create_target_group(
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

fn write_attributes(attributes: &BTreeMap<String, String>) -> String {
    let mut w = XmlWriter::new();
    w.list("Attributes", attributes, |w, (key, value)| {
        w.text("Key", key).text("Value", value);
    });
    w.finish()
}
