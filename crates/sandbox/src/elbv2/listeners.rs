//! Listeners and rules: created by seeding or the API, adopted by ARN, their actions
//! (forward with weights, fixed responses) and conditions; Describe/Create/Modify Listener
//! and Rule; the forward weights the rollout simulation reads and sets.

use std::collections::BTreeMap;

use super::*;
use crate::api::ApiError;
use crate::query::{XmlWriter, is_present, member_prefixes, members, optional_i32, required};

impl Elbv2 {
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

    pub(super) fn api_describe_listeners(
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

    pub(super) fn api_describe_rules(
        &self,
        params: &BTreeMap<String, String>,
    ) -> Result<String, ApiError> {
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

    pub(super) fn api_modify_rule(
        &mut self,
        params: &BTreeMap<String, String>,
    ) -> Result<String, ApiError> {
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

    pub(super) fn api_modify_listener(
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

    pub(super) fn api_create_listener(
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

    pub(super) fn api_create_rule(
        &mut self,
        params: &BTreeMap<String, String>,
    ) -> Result<String, ApiError> {
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

/// The `NAME/LBID/LISTENERID` tail of a listener ARN.
fn listener_tail(arn: &str) -> String {
    arn.split_once(":listener/app/")
        .map(|(_, tail)| tail.to_string())
        .unwrap_or_default()
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
