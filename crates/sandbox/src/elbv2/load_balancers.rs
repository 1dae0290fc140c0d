//! Load balancers: created by seeding or CreateLoadBalancer, found by name or ARN,
//! described (DescribeLoadBalancers).

use std::collections::BTreeMap;

use super::*;
use crate::api::ApiError;
use crate::query::{XmlWriter, members, required};

impl Elbv2 {
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

    pub(super) fn api_describe_load_balancers(
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

    pub(super) fn api_create_load_balancer(
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
}
