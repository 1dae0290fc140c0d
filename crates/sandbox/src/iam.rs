//! IAM emulation, as far as `cortado verify` and `cortado exec` need it: roles, their trust
//! policies and their inline policies.
//!
//! Receives awsQuery operations (form-encoded `Action=...&Version=2010-05-08`): `GetRole`,
//! `CreateRole`, `PutRolePolicy`, `SimulatePrincipalPolicy`, plus seeding calls
//! ([`Iam::ensure_ecs_tasks_role`]). Hands back the XML result, or an [`ApiError`] with IAM's
//! error code (`NoSuchEntity`, `EntityAlreadyExists`, `MalformedPolicyDocument`). As the real
//! API does, the trust policy comes back URL-encoded. `SimulatePrincipalPolicy` evaluates the
//! role's inline policies only (Allow/Deny statements, `Action` and `NotAction` with `*`
//! wildcards, no conditions, resources taken as `*`): `allowed`, `explicitDeny` or
//! `implicitDeny` per action. Managed policies, permission boundaries and instance profiles
//! are not modelled. Roles the sandbox creates for a config (`--prepare`) get an inline policy
//! allowing ECS Exec's `ssmmessages` actions ([`EXEC_ACTIONS`]); roles created through
//! `CreateRole` start with none, as on AWS.

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
    /// Inline policies: name -> JSON text.
    #[serde(default)]
    pub policies: BTreeMap<String, String>,
}

/// The actions a task role needs for ECS Exec ("Using ECS Exec", IAM permissions).
pub const EXEC_ACTIONS: [&str; 4] = [
    "ssmmessages:CreateControlChannel",
    "ssmmessages:CreateDataChannel",
    "ssmmessages:OpenControlChannel",
    "ssmmessages:OpenDataChannel",
];

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

pub(crate) fn iso_time(seconds: f64) -> String {
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
        let exec = json!({"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": EXEC_ACTIONS, "Resource": "*"}]});
        if let Some(r) = self.roles.get_mut(name) {
            r.policies
                .insert("cortado-sandbox-exec".into(), exec.to_string());
        }
        true
    }

    /// How a role's inline policies decide `action`: `allowed`, `explicitDeny` or
    /// `implicitDeny`; None when there is no such role.
    pub fn decide(&self, arn_or_name: &str, action: &str) -> Option<&'static str> {
        let role = self.roles.get(role_name(arn_or_name))?;
        let mut allowed = false;
        for text in role.policies.values() {
            let Ok(doc) = serde_json::from_str::<serde_json::Value>(text) else {
                continue;
            };
            let statements = match doc.get("Statement") {
                Some(serde_json::Value::Array(a)) => a.clone(),
                Some(s) => vec![s.clone()],
                None => Vec::new(),
            };
            for st in statements {
                let names = |k: &str| -> Option<Vec<String>> {
                    match st.get(k)? {
                        serde_json::Value::String(s) => Some(vec![s.clone()]),
                        serde_json::Value::Array(a) => Some(
                            a.iter()
                                .filter_map(|v| v.as_str())
                                .map(str::to_string)
                                .collect(),
                        ),
                        _ => None,
                    }
                };
                let hit = match (names("Action"), names("NotAction")) {
                    (Some(a), _) => a.iter().any(|p| wildcard(p, action)),
                    (None, Some(n)) => !n.iter().any(|p| wildcard(p, action)),
                    _ => false,
                };
                match st.get("Effect").and_then(|e| e.as_str()) {
                    Some("Deny") if hit => return Some("explicitDeny"),
                    Some("Allow") if hit => allowed = true,
                    _ => {}
                }
            }
        }
        Some(if allowed { "allowed" } else { "implicitDeny" })
    }

    fn insert(&mut self, name: &str, path: &str, trust: String, account: &str, now: f64) -> &Role {
        let id = format!("AROA{:017X}", self.roles.len() as u64 + 1);
        let role = Role {
            path: path.to_string(),
            id,
            arn: format!("arn:aws:iam::{account}:role{path}{name}"),
            created: now,
            trust,
            policies: BTreeMap::new(),
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
            "PutRolePolicy" => {
                let name = required(params, "RoleName")?;
                let policy = required(params, "PolicyName")?;
                let doc = required(params, "PolicyDocument")?;
                if serde_json::from_str::<serde_json::Value>(doc).is_err() {
                    return Err(ApiError::client(
                        "MalformedPolicyDocument",
                        "This policy contains invalid Json",
                    ));
                }
                let role = self.roles.get_mut(name).ok_or_else(|| no_such_role(name))?;
                role.policies.insert(policy.to_string(), doc.to_string());
            }
            "SimulatePrincipalPolicy" => self.simulate(params, &mut w)?,
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

impl Iam {
    fn simulate(
        &self,
        params: &BTreeMap<String, String>,
        w: &mut XmlWriter,
    ) -> Result<(), ApiError> {
        let source = required(params, "PolicySourceArn")?;
        let actions: Vec<&String> = (1..)
            .map_while(|i| params.get(&format!("ActionNames.member.{i}")))
            .collect();
        if actions.is_empty() {
            return Err(ApiError::client(
                "ValidationError",
                "1 validation error detected: Value null at 'actionNames' failed to satisfy constraint: Member must not be null",
            ));
        }
        if !source.contains(":role/") {
            return Err(ApiError::client(
                "InvalidInput",
                format!("The sandbox simulates roles only, not {source}."),
            ));
        }
        w.text("IsTruncated", "false").open("EvaluationResults");
        for a in actions {
            let decision = self
                .decide(source, a)
                .ok_or_else(|| no_such_role(role_name(source)))?;
            w.open("member")
                .text("EvalActionName", a)
                .text("EvalResourceName", "*")
                .text("EvalDecision", decision)
                .open("MatchedStatements")
                .close("MatchedStatements")
                .open("MissingContextValues")
                .close("MissingContextValues")
                .close("member");
        }
        w.close("EvaluationResults");
        Ok(())
    }
}

/// IAM's action wildcards: `*` any run of characters, `?` one; case-insensitive.
fn wildcard(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.to_ascii_lowercase().chars().collect();
    let t: Vec<char> = text.to_ascii_lowercase().chars().collect();
    let (mut pi, mut ti, mut star, mut mark) = (0, 0, None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
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
    fn simulation_reads_inline_policies() {
        let mut iam = Iam::default();
        iam.ensure_ecs_tasks_role("prepared", "1", 0.0);
        let create = BTreeMap::from([
            ("RoleName".to_string(), "bare".to_string()),
            ("AssumeRolePolicyDocument".to_string(), ecs_tasks_trust()),
        ]);
        iam.handle("CreateRole", &create, "1", 0.0, "r").unwrap();
        assert_eq!(iam.decide("prepared", EXEC_ACTIONS[1]), Some("allowed"));
        assert_eq!(iam.decide("bare", EXEC_ACTIONS[1]), Some("implicitDeny"));
        assert_eq!(iam.decide("nope", EXEC_ACTIONS[1]), None);
        let put = |doc: &str| {
            BTreeMap::from([
                ("RoleName".to_string(), "bare".to_string()),
                ("PolicyName".to_string(), "p".to_string()),
                ("PolicyDocument".to_string(), doc.to_string()),
            ])
        };
        let allow = r#"{"Statement":[{"Effect":"Allow","Action":"ssmmessages:*","Resource":"*"},
            {"Effect":"Deny","Action":"ssmmessages:Open?ataChannel","Resource":"*"}]}"#;
        iam.handle("PutRolePolicy", &put(allow), "1", 0.0, "r")
            .unwrap();
        assert_eq!(
            iam.decide("bare", "ssmmessages:CreateDataChannel"),
            Some("allowed")
        );
        assert_eq!(
            iam.decide("bare", "ssmmessages:OpenDataChannel"),
            Some("explicitDeny")
        );
        let mut sim = BTreeMap::from([(
            "PolicySourceArn".to_string(),
            "arn:aws:iam::1:role/bare".to_string(),
        )]);
        sim.insert("ActionNames.member.1".into(), EXEC_ACTIONS[3].into());
        sim.insert("ActionNames.member.2".into(), "s3:GetObject".into());
        let xml = iam
            .handle("SimulatePrincipalPolicy", &sim, "1", 0.0, "r")
            .unwrap();
        assert!(
            xml.contains("<EvalDecision>explicitDeny</EvalDecision>"),
            "{xml}"
        );
        assert!(
            xml.contains("<EvalDecision>implicitDeny</EvalDecision>"),
            "{xml}"
        );
        assert!(wildcard("*", "x") && wildcard("ssm*:Open*", "ssmmessages:OpenDataChannel"));
        assert!(!wildcard("ssm:*", "ssmmessages:OpenDataChannel"));
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
