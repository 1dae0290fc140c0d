//! IAM reads for `cortado verify`: a role's existence and its trust policy.
//!
//! Receives a role ARN (or a bare role name, which ECS also accepts); hands on the role's ARN
//! and its trust policy as JSON, or `None` when IAM has no such role. IAM returns the policy
//! URL-encoded (RFC 3986), so it is decoded here before it is parsed.

use aws_sdk_iam::operation::get_role::GetRoleError;
use serde_json::Value;

use super::Clients;
use super::error::Call;
use crate::error::Result;

/// A role as verify cares.
#[derive(Debug, Clone, PartialEq)]
pub struct RoleFacts {
    pub arn: String,
    /// The trust (assume-role) policy; `None` when IAM gave none or it is not JSON.
    pub trust: Option<Value>,
}

/// The role name of a role ARN (`arn:aws:iam::123:role/path/name` -> `name`); a bare name
/// as it is.
pub(crate) fn role_name(arn_or_name: &str) -> &str {
    match arn_or_name.split_once(":role/") {
        Some((_, rest)) => rest.rsplit('/').next().unwrap_or(rest),
        None => arn_or_name,
    }
}

/// Decodes `%XX` escapes (and nothing else: IAM's policies use no `+` for spaces). Invalid
/// escapes are kept as they are; invalid UTF-8 is replaced.
pub(crate) fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2]))
        {
            out.push(h * 16 + l);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

/// Whether a trust policy lets `service` (e.g. `ecs-tasks.amazonaws.com`) assume the role:
/// an `Allow` statement whose action includes `sts:AssumeRole` (or `sts:*`, `*`) and whose
/// `Principal.Service` names it (a string or a list).
pub(crate) fn trusts_service(policy: &Value, service: &str) -> bool {
    let statements = match policy.get("Statement") {
        Some(Value::Array(a)) => a.clone(),
        Some(s @ Value::Object(_)) => vec![s.clone()],
        _ => Vec::new(),
    };
    let strings = |v: Option<&Value>| -> Vec<String> {
        match v {
            Some(Value::String(s)) => vec![s.clone()],
            Some(Value::Array(a)) => a
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect(),
            _ => Vec::new(),
        }
    };
    statements.iter().any(|s| {
        s.get("Effect").and_then(Value::as_str) == Some("Allow")
            && strings(s.get("Action"))
                .iter()
                .any(|a| a.eq_ignore_ascii_case("sts:AssumeRole") || a == "sts:*" || a == "*")
            && strings(s.pointer("/Principal/Service"))
                .iter()
                .any(|p| p == service)
    })
}

/// The services a trust policy names as principals (for the message when ours is missing).
pub(crate) fn trusted_principals(policy: &Value) -> Vec<String> {
    let mut out = Vec::new();
    let statements = match policy.get("Statement") {
        Some(Value::Array(a)) => a.clone(),
        Some(s @ Value::Object(_)) => vec![s.clone()],
        _ => Vec::new(),
    };
    for s in &statements {
        if let Some(Value::Object(p)) = s.get("Principal") {
            for (kind, v) in p {
                match v {
                    Value::String(x) => out.push(format!("{kind} {x}")),
                    Value::Array(a) => out.extend(
                        a.iter()
                            .filter_map(Value::as_str)
                            .map(|x| format!("{kind} {x}")),
                    ),
                    _ => {}
                }
            }
        } else if let Some(Value::String(p)) = s.get("Principal") {
            out.push(p.clone());
        }
    }
    out
}

impl Clients {
    /// A role by ARN or name, `None` when IAM has no such role.
    pub async fn role(&self, arn_or_name: &str) -> Result<Option<RoleFacts>> {
        let name = role_name(arn_or_name);
        let call = Call::of("iam", "GetRole", format!("role {name}"));
        let out = self.iam.get_role().role_name(name).send().await;
        let out = match out {
            Ok(o) => o,
            Err(e)
                if matches!(
                    e.as_service_error(),
                    Some(GetRoleError::NoSuchEntityException(_))
                ) =>
            {
                return Ok(None);
            }
            Err(e) => return Err(self.fail(&call, e)),
        };
        let Some(role) = out.role() else {
            return Ok(None);
        };
        let trust = role
            .assume_role_policy_document()
            .and_then(|d| serde_json::from_str(&percent_decode(d)).ok());
        Ok(Some(RoleFacts {
            arn: role.arn().to_string(),
            trust,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn policies_are_decoded_from_iam_url_encoding() {
        let encoded = "%7B%22Version%22%3A%222012-10-17%22%2C%22Statement%22%3A%5B%7B%22Effect%22%3A%22Allow%22%2C%22Principal%22%3A%7B%22Service%22%3A%22ecs-tasks.amazonaws.com%22%7D%2C%22Action%22%3A%22sts%3AAssumeRole%22%7D%5D%7D";
        let v: Value = serde_json::from_str(&percent_decode(encoded)).unwrap();
        assert!(trusts_service(&v, "ecs-tasks.amazonaws.com"));
        assert!(!trusts_service(&v, "lambda.amazonaws.com"));
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("a%2"), "a%2");
        assert_eq!(percent_decode("%zz%41"), "%zzA");
    }

    #[test]
    fn trust_needs_allow_assume_role_and_the_service() {
        let p = |effect: &str, action: Value, service: Value| json!({"Statement": [{"Effect": effect, "Action": action, "Principal": {"Service": service}}]});
        let svc = "ecs-tasks.amazonaws.com";
        assert!(trusts_service(
            &p("Allow", json!(["sts:AssumeRole"]), json!([svc, "x"])),
            svc
        ));
        assert!(!trusts_service(
            &p("Deny", json!("sts:AssumeRole"), json!(svc)),
            svc
        ));
        assert!(!trusts_service(
            &p("Allow", json!("sts:TagSession"), json!(svc)),
            svc
        ));
        assert!(!trusts_service(
            &p("Allow", json!("sts:AssumeRole"), json!("ec2.amazonaws.com")),
            svc
        ));
        assert_eq!(
            trusted_principals(&p(
                "Allow",
                json!("sts:AssumeRole"),
                json!("ec2.amazonaws.com")
            )),
            vec!["Service ec2.amazonaws.com".to_string()]
        );
        assert_eq!(role_name("arn:aws:iam::1:role/a/b/exec"), "exec");
    }
}
