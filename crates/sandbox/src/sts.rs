//! STS emulation, as far as `--assume-role-arn` needs it: `AssumeRole` (awsQuery,
//! `Version=2011-06-15`). The input is checked as STS documents it (a role ARN of 20 to 2048
//! characters, a session name of 2 to 64 of `[\w+=,.@-]`, `DurationSeconds` from 900 to
//! 43200); the answer carries temporary credentials (ASIA access key, secret, session token,
//! expiration) and the assumed-role user. The sandbox has no principals: any well-formed role
//! ARN is assumed, whatever its trust policy would say (a difference the README lists). The
//! access key it answers belongs to the role's account: the server remembers it, and what a
//! request signed with it creates carries that account id in its ARNs.

use std::collections::BTreeMap;

use crate::api::ApiError;
use crate::query::{XmlWriter, optional_i32, required, xml_response_ns};

/// The `Version` of STS's query API; it tells STS requests from the other awsQuery services.
pub const STS_VERSION: &str = "2011-06-15";
const NAMESPACE: &str = "https://sts.amazonaws.com/doc/2011-06-15/";

fn validation(message: impl Into<String>) -> ApiError {
    ApiError::client("ValidationError", message)
}

/// What AssumeRole answered: the XML document, and the access key it made with the account
/// of the role it belongs to.
#[derive(Debug, Clone)]
pub struct Assumed {
    pub xml: String,
    pub access_key: String,
    pub account: String,
}

/// Answers one STS action: the XML document, or STS's error.
pub fn handle(
    action: &str,
    params: &BTreeMap<String, String>,
    now: f64,
    request_id: &str,
) -> Result<Assumed, ApiError> {
    if action != "AssumeRole" {
        return Err(ApiError::client(
            "UnknownOperationException",
            format!("The sandbox does not implement STS operation {action}."),
        ));
    }
    let role = required(params, "RoleArn")?;
    let session = required(params, "RoleSessionName")?;
    if !(20..=2048).contains(&role.len()) {
        return Err(validation(
            "1 validation error detected: Value at 'roleArn' failed to satisfy constraint: Member must have length between 20 and 2048",
        ));
    }
    let Some((account, name)) = role
        .strip_prefix("arn:aws:iam::")
        .and_then(|r| r.split_once(":role/"))
        .filter(|(acct, name)| {
            acct.len() == 12 && acct.bytes().all(|b| b.is_ascii_digit()) && !name.is_empty()
        })
        .map(|(acct, name)| (acct, name.rsplit('/').next().unwrap_or(name)))
    else {
        return Err(validation(format!("{role} is not a valid role ARN")));
    };
    let session_ok = (2..=64).contains(&session.len())
        && session
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_+=,.@-".contains(c));
    if !session_ok {
        return Err(validation(
            "1 validation error detected: Value at 'roleSessionName' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\w+=,.@-]*",
        ));
    }
    let duration = optional_i32(params, "DurationSeconds")?.unwrap_or(3600);
    if !(900..=43200).contains(&duration) {
        return Err(validation(
            "1 validation error detected: Value at 'durationSeconds' failed to satisfy constraint: Member must have value between 900 and 43200",
        ));
    }
    let id = request_id.replace('-', "").to_uppercase();
    let key: String = format!("ASIA{id}").chars().take(20).collect();
    let mut w = XmlWriter::new();
    w.open("Credentials")
        .text("AccessKeyId", &key)
        .text("SecretAccessKey", &format!("sandbox-secret-{id}"))
        .text("SessionToken", &format!("sandbox-session-{id}"))
        .text(
            "Expiration",
            &crate::iam::iso_time(now + f64::from(duration)),
        )
        .close("Credentials")
        .open("AssumedRoleUser")
        .text(
            "Arn",
            &format!("arn:aws:sts::{account}:assumed-role/{name}/{session}"),
        )
        .text(
            "AssumedRoleId",
            &format!(
                "AROA{}:{session}",
                &key[4..].chars().take(17).collect::<String>()
            ),
        )
        .close("AssumedRoleUser");
    Ok(Assumed {
        xml: xml_response_ns(NAMESPACE, "AssumeRole", &w.finish(), request_id),
        access_key: key,
        account: account.to_string(),
    })
}

/// STS's `<ErrorResponse>` document.
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

    fn params(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn assume_role_answers_credentials_and_checks_its_input() {
        let ok = params(&[
            ("RoleArn", "arn:aws:iam::123456789012:role/deploy"),
            ("RoleSessionName", "cortado"),
        ]);
        let a = handle("AssumeRole", &ok, 0.0, "abc-def").unwrap();
        let xml = &a.xml;
        assert!(xml.contains("<AccessKeyId>ASIA"), "{xml}");
        assert!(xml.contains("<SessionToken>"), "{xml}");
        assert!(
            xml.contains("arn:aws:sts::123456789012:assumed-role/deploy/cortado"),
            "{xml}"
        );
        assert!(xml.contains(&format!("<AccessKeyId>{}<", a.access_key)));
        assert_eq!(a.account, "123456789012");
        // Another account's role: its credentials and its user belong to that account.
        let other = params(&[
            ("RoleArn", "arn:aws:iam::222222222222:role/x"),
            ("RoleSessionName", "cortado"),
        ]);
        let b = handle("AssumeRole", &other, 0.0, "abc-deg").unwrap();
        assert_eq!(b.account, "222222222222");
        assert!(
            b.xml
                .contains("arn:aws:sts::222222222222:assumed-role/x/cortado")
        );
        for bad in [
            params(&[("RoleArn", "deploy"), ("RoleSessionName", "cortado")]),
            params(&[
                ("RoleArn", "arn:aws:iam::123456789012:role/deploy"),
                ("RoleSessionName", "has space"),
            ]),
            params(&[
                ("RoleArn", "arn:aws:iam::123456789012:role/deploy"),
                ("RoleSessionName", "cortado"),
                ("DurationSeconds", "60"),
            ]),
        ] {
            let e = handle("AssumeRole", &bad, 0.0, "r").unwrap_err();
            assert_eq!(e.code, "ValidationError");
        }
        assert!(handle("AssumeRole", &params(&[]), 0.0, "r").is_err());
    }
}
