//! Reads for `cortado verify`: does what a deploy needs exist? Each answers `None` for
//! "does not exist" and an error only when AWS could not be asked.

use super::Clients;
use super::error::Call;
use crate::error::Result;

/// Where a container's `secrets[].valueFrom` reads from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SecretSource {
    /// An SSM parameter, by name (`/app/db` from the name or from its ARN).
    Ssm(String),
    /// A Secrets Manager secret, by ARN without the JSON key and version suffix.
    SecretsManager(String),
}

impl SecretSource {
    /// Reads a `valueFrom`: a Secrets Manager ARN
    /// (`arn:aws:secretsmanager:REGION:ACCOUNT:secret:NAME[:json-key:version-stage:version-id]`),
    /// an SSM parameter ARN (`arn:aws:ssm:REGION:ACCOUNT:parameter/NAME`) or a parameter name.
    pub(crate) fn of(from: &str) -> SecretSource {
        if from.starts_with("arn:") && from.split(':').nth(2) == Some("secretsmanager") {
            let id: String = from.split(':').take(7).collect::<Vec<_>>().join(":");
            return SecretSource::SecretsManager(id);
        }
        let name = match from.split_once(":parameter") {
            Some((_, rest)) if from.starts_with("arn:") => {
                if rest.starts_with("//") {
                    rest[1..].to_string()
                } else {
                    rest.to_string()
                }
            }
            _ => from.to_string(),
        };
        SecretSource::Ssm(if from.starts_with("arn:") && !name.starts_with('/') {
            format!("/{name}")
        } else {
            name
        })
    }
}

/// A target group as far as a deploy cares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetGroupFacts {
    pub name: String,
    pub target_type: String,
    pub port: Option<i32>,
    pub protocol: String,
}

impl Clients {
    /// The status of a cluster (`ACTIVE`, `INACTIVE`, ...), `None` when ECS has none.
    pub async fn cluster_status(&self, cluster: &str) -> Result<Option<String>> {
        let call = Call::ecs("DescribeClusters", format!("cluster \"{cluster}\""));
        let out = self
            .ecs
            .describe_clusters()
            .clusters(cluster)
            .send()
            .await
            .map_err(|e| self.fail(&call, e))?;
        Ok(out
            .clusters()
            .first()
            .map(|c| c.status().unwrap_or_default().to_string()))
    }

    /// A target group by ARN, `None` when it does not exist.
    pub async fn target_group(&self, arn: &str) -> Result<Option<TargetGroupFacts>> {
        let call = Call::elb("DescribeTargetGroups", format!("target group {arn}"));
        let out = self
            .elbv2
            .describe_target_groups()
            .target_group_arns(arn)
            .send()
            .await;
        let out = match out {
            Ok(o) => o,
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_target_group_not_found_exception()) =>
            {
                return Ok(None);
            }
            Err(e) => return Err(self.fail(&call, e)),
        };
        Ok(out.target_groups().first().map(|tg| TargetGroupFacts {
            name: tg.target_group_name().unwrap_or_default().to_string(),
            target_type: tg
                .target_type()
                .map(|t| t.as_str().to_string())
                .unwrap_or_default(),
            port: tg.port(),
            protocol: tg
                .protocol()
                .map(|p| p.as_str().to_string())
                .unwrap_or_default(),
        }))
    }

    /// Whether a CloudWatch Logs group of exactly this name exists.
    pub async fn log_group_exists(&self, name: &str) -> Result<bool> {
        let call = Call::logs("DescribeLogGroups", format!("log group {name}"));
        let out = self
            .logs
            .describe_log_groups()
            .log_group_name_prefix(name)
            .send()
            .await
            .map_err(|e| self.fail(&call, e))?;
        Ok(out
            .log_groups()
            .iter()
            .any(|g| g.log_group_name() == Some(name)))
    }
}
