//! Elastic Load Balancing v2 reads: target health, listeners and rules.
//!
//! Receives ARNs (from the service's load balancers); hands on SDK values. Listings follow
//! their `NextMarker` pages up to a bound.

use aws_sdk_elasticloadbalancingv2::types::{Listener, Rule, TargetHealthDescription};

use super::Clients;
use super::error::Call;
use crate::error::Result;

/// Pages followed at most by one listing (400 listeners or rules at the default page size).
const MAX_PAGES: usize = 100;

impl Clients {
    /// The health of every target registered in a target group.
    pub async fn describe_target_health(
        &self,
        target_group_arn: &str,
    ) -> Result<Vec<TargetHealthDescription>> {
        let call = Call::elb(
            "DescribeTargetHealth",
            format!("target group {target_group_arn}"),
        );
        let out = self
            .elbv2
            .describe_target_health()
            .target_group_arn(target_group_arn)
            .send()
            .await
            .map_err(|e| self.fail(&call, e))?;
        Ok(out.target_health_descriptions.unwrap_or_default())
    }

    /// The ARN of the target group with this name, `None` when there is none.
    pub async fn target_group_arn_by_name(&self, name: &str) -> Result<Option<String>> {
        let call = Call::elb("DescribeTargetGroups", format!("target group {name}"));
        match self.elbv2.describe_target_groups().names(name).send().await {
            Ok(out) => Ok(out
                .target_groups()
                .first()
                .and_then(|t| t.target_group_arn())
                .map(str::to_string)),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_target_group_not_found_exception()) =>
            {
                Ok(None)
            }
            Err(e) => Err(self.fail(&call, e)),
        }
    }

    /// The listeners of a load balancer, all pages.
    pub async fn describe_listeners(&self, load_balancer_arn: &str) -> Result<Vec<Listener>> {
        let call = Call::elb(
            "DescribeListeners",
            format!("load balancer {load_balancer_arn}"),
        );
        let mut out = Vec::new();
        let mut marker: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let page = self
                .elbv2
                .describe_listeners()
                .load_balancer_arn(load_balancer_arn)
                .set_marker(marker.take())
                .send()
                .await
                .map_err(|e| self.fail(&call, e))?;
            out.extend(page.listeners.unwrap_or_default());
            match page.next_marker {
                Some(m) if !m.is_empty() => marker = Some(m),
                _ => break,
            }
        }
        Ok(out)
    }

    /// The rules of a listener, all pages.
    pub async fn describe_rules(&self, listener_arn: &str) -> Result<Vec<Rule>> {
        let call = Call::elb("DescribeRules", format!("listener {listener_arn}"));
        let mut out = Vec::new();
        let mut marker: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let page = self
                .elbv2
                .describe_rules()
                .listener_arn(listener_arn)
                .set_marker(marker.take())
                .send()
                .await
                .map_err(|e| self.fail(&call, e))?;
            out.extend(page.rules.unwrap_or_default());
            match page.next_marker {
                Some(m) if !m.is_empty() => marker = Some(m),
                _ => break,
            }
        }
        Ok(out)
    }
}

impl Clients {
    /// Listener rules by ARN (one call; ELBv2 takes up to 20 here in practice).
    pub async fn describe_rules_by_arn(&self, rule_arns: &[String]) -> Result<Vec<Rule>> {
        let call = Call::elb("DescribeRules", format!("rules {}", rule_arns.join(", ")));
        let out = self
            .elbv2
            .describe_rules()
            .set_rule_arns(Some(rule_arns.to_vec()))
            .send()
            .await
            .map_err(|e| self.fail(&call, e))?;
        Ok(out.rules.unwrap_or_default())
    }

    /// The address of a listener: (protocol, DNS name of its load balancer, port).
    pub async fn listener_address(
        &self,
        listener_arn: &str,
    ) -> Result<Option<(String, String, i32)>> {
        let call = Call::elb("DescribeListeners", format!("listener {listener_arn}"));
        let out = self
            .elbv2
            .describe_listeners()
            .listener_arns(listener_arn)
            .send()
            .await
            .map_err(|e| self.fail(&call, e))?;
        let Some(l) = out.listeners.unwrap_or_default().into_iter().next() else {
            return Ok(None);
        };
        let Some(lb) = l.load_balancer_arn() else {
            return Ok(None);
        };
        let call = Call::elb("DescribeLoadBalancers", format!("load balancer {lb}"));
        let lbs = self
            .elbv2
            .describe_load_balancers()
            .load_balancer_arns(lb)
            .send()
            .await
            .map_err(|e| self.fail(&call, e))?;
        let dns = lbs
            .load_balancers()
            .first()
            .and_then(|b| b.dns_name())
            .unwrap_or_default()
            .to_string();
        let protocol = l
            .protocol()
            .map(|p| p.as_str().to_ascii_lowercase())
            .unwrap_or_else(|| "http".into());
        Ok(Some((protocol, dns, l.port().unwrap_or(80))))
    }
}

/// A target group's health check, as the explanation of an ELB health failure shows it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HealthCheckSetting {
    pub protocol: Option<String>,
    pub path: Option<String>,
    /// `traffic-port` or a number.
    pub port: Option<String>,
    /// The HTTP codes that count as healthy (`200`, `200-399`).
    pub matcher: Option<String>,
}

impl Clients {
    /// The health check of the target group `arn`; `None` when there is no such group.
    pub async fn target_group_health_check(&self, arn: &str) -> Result<Option<HealthCheckSetting>> {
        let call = Call::elb("DescribeTargetGroups", format!("target group {arn}"));
        match self
            .elbv2
            .describe_target_groups()
            .target_group_arns(arn)
            .send()
            .await
        {
            Ok(out) => Ok(out.target_groups().first().map(|t| HealthCheckSetting {
                protocol: t.health_check_protocol().map(|p| p.as_str().to_string()),
                path: t.health_check_path().map(str::to_string),
                port: t.health_check_port().map(str::to_string),
                matcher: t
                    .matcher()
                    .and_then(|m| m.http_code().or(m.grpc_code()))
                    .map(str::to_string),
            })),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_target_group_not_found_exception()) =>
            {
                Ok(None)
            }
            Err(e) => Err(self.fail(&call, e)),
        }
    }
}
