//! IAM emulation, as far as `cortado verify` needs it: roles and their trust policies.
//!
//! Receives awsQuery operations (form-encoded `Action=...&Version=2010-05-08`): `GetRole` and
//! `CreateRole`, plus seeding calls ([`Iam::ensure_ecs_tasks_role`]). Hands back the XML
//! result, or an [`ApiError`] with IAM's error code (`NoSuchEntity`, `EntityAlreadyExists`,
//! `MalformedPolicyDocument`). As the real API does, the trust policy comes back URL-encoded.
//! Nothing else of IAM (policies, permissions, instance profiles) is modelled.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::api::ApiError;
use crate::query::{XmlWriter, required};

/// The `Version` of IAM's query API; it tells IAM requests from ELBv2's.
pub const IAM_VERSION: &str = "2010-05-08";
const NAMESPACE: &str = "https://iam.amazonaws.com/doc/2010-05-08/";

/// One role.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Role {
    pub path: String,
    pub id: String,
    pub arn: String,
    pub created: f64,
    /// The trust policy as JSON text (decoded).
    pub trust: String,
}

/// The roles of one sandbox (IAM is global: one set whatever the region).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Iam {
    roles: BTreeMap<String, Role>,
}

/// A trust policy letting ECS tasks assume the role.
pub fn ecs_tasks_trust() -> String {
    json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Principal": {"Service": "ecs-tasks.amazonaws.com"},
            "Action": "sts:AssumeRole"
        }]
    })
    .to_string()
}

/// The role name of a role ARN (`arn:aws:iam::123:role/path/name` -> `name`), or the text itself
/// when it is a bare name.
pub fn role_name(arn_or_name: &str) -> &str {
    match arn_or_name.split_once(":role/") {
        Some((_, rest)) => rest.rsplit('/').next().unwrap_or(rest),
        None => arn_or_name,
    }
}

/// Percent-encodes everything but RFC 3986's unreserved characters (how IAM returns policies).
fn url_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 2);
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn iso_time(seconds: f64) -> String {
    aws_smithy_types::DateTime::from_secs_f64(seconds)
        .fmt(aws_smithy_types::date_time::Format::DateTime)
        .unwrap_or_else(|_| "1970-01-01T00:00:00Z".to_string())
}

fn no_such_role(name: &str) -> ApiError {
    ApiError {
        status: 404,
        code: "NoSuchEntity".into(),
        message: format!("The role with name {name} cannot be found."),
    }
}

impl Iam {
    /// Creates a role trusting `ecs-tasks.amazonaws.com` unless one of that name exists;
    /// returns whether it was created.
    pub fn ensure_ecs_tasks_role(&mut self, arn_or_name: &str, account: &str, now: f64) -> bool {
        let name = role_name(arn_or_name);
        if name.is_empty() || self.roles.contains_key(name) {
            return false;
        }
        self.insert(name, "/", ecs_tasks_trust(), account, now);
        true
    }

    fn insert(&mut self, name: &str, path: &str, trust: String, account: &str, now: f64) -> &Role {
        let id = format!("AROA{:017X}", self.roles.len() as u64 + 1);
        let role = Role {
            path: path.to_string(),
            id,
            arn: format!("arn:aws:iam::{account}:role{path}{name}"),
            created: now,
            trust,
        };
        self.roles.entry(name.to_string()).or_insert(role)
    }

    fn write_role(w: &mut XmlWriter, name: &str, r: &Role) {
        w.open("Role")
            .text("Path", &r.path)
            .text("RoleName", name)
            .text("RoleId", &r.id)
            .text("Arn", &r.arn)
            .text("CreateDate", &iso_time(r.created))
            .text("AssumeRolePolicyDocument", &url_encode(&r.trust))
            .value("MaxSessionDuration", 3600)
            .close("Role");
    }

    /// Handles one IAM action; answers the whole XML document.
    pub fn handle(
        &mut self,
        action: &str,
        params: &BTreeMap<String, String>,
        account: &str,
        now: f64,
        request_id: &str,
    ) -> Result<String, ApiError> {
        let mut w = XmlWriter::new();
        match action {
            "GetRole" => {
                let name = required(params, "RoleName")?;
                let role = self.roles.get(name).ok_or_else(|| no_such_role(name))?;
                Self::write_role(&mut w, name, role);
            }
            "CreateRole" => {
                let name = required(params, "RoleName")?;
                let trust = required(params, "AssumeRolePolicyDocument")?;
                if serde_json::from_str::<serde_json::Value>(trust).is_err() {
                    return Err(ApiError::client(
                        "MalformedPolicyDocument",
                        "This policy contains invalid Json",
                    ));
                }
                if self.roles.contains_key(name) {
                    return Err(ApiError {
                        status: 409,
                        code: "EntityAlreadyExists".into(),
                        message: format!("Role with name {name} already exists."),
                    });
                }
                let path = params.get("Path").map_or("/", String::as_str);
                if !path.starts_with('/') || !path.ends_with('/') {
                    return Err(ApiError::client(
                        "ValidationError",
                        "The specified value for path is invalid. It must begin and end with / and contain only alphanumeric characters and/or / characters.",
                    ));
                }
                let role = self
                    .insert(name, path, trust.to_string(), account, now)
                    .clone();
                Self::write_role(&mut w, name, &role);
            }
            other => {
                return Err(ApiError::client(
                    "UnknownOperationException",
                    format!("The sandbox does not implement IAM {other}."),
                ));
            }
        }
        Ok(crate::query::xml_response_ns(
            NAMESPACE,
            action,
            &w.finish(),
            request_id,
        ))
    }
}

/// IAM's `<ErrorResponse>` document.
pub fn xml_error(error: &ApiError, request_id: &str) -> String {
    crate::query::xml_error(error, request_id).replacen(
        "http://elasticloadbalancing.amazonaws.com/doc/2015-12-01/",
        NAMESPACE,
        1,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_names_come_from_arns_with_or_without_a_path() {
        assert_eq!(
            role_name("arn:aws:iam::123456789012:role/app/web-task"),
            "web-task"
        );
        assert_eq!(role_name("arn:aws:iam::123456789012:role/exec"), "exec");
        assert_eq!(role_name("exec"), "exec");
    }

    #[test]
    fn trust_policies_come_back_url_encoded() {
        let mut iam = Iam::default();
        assert!(iam.ensure_ecs_tasks_role("arn:aws:iam::1:role/exec", "1", 0.0));
        assert!(!iam.ensure_ecs_tasks_role("exec", "1", 0.0));
        let params = BTreeMap::from([("RoleName".to_string(), "exec".to_string())]);
        let xml = iam.handle("GetRole", &params, "1", 0.0, "rid").unwrap();
        assert!(
            xml.contains("%22Service%22%3A%22ecs-tasks.amazonaws.com%22"),
            "{xml}"
        );
        assert!(xml.contains("<Arn>arn:aws:iam::1:role/exec</Arn>"), "{xml}");
        let missing = BTreeMap::from([("RoleName".to_string(), "nope".to_string())]);
        let err = iam
            .handle("GetRole", &missing, "1", 0.0, "rid")
            .unwrap_err();
        assert_eq!((err.status, err.code.as_str()), (404, "NoSuchEntity"));
    }
}
