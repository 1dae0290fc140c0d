//! AWS Systems Manager Parameter Store emulation: named parameters, as a pure state machine.
//!
//! Receives awsJson1.1 operations (`GetParameter`, `GetParameters`, `PutParameter`; the name
//! comes from `X-Amz-Target: AmazonSSM.<Op>`) with the parsed JSON body and the virtual time,
//! plus seeding calls ([`Ssm::put`]). Hands back the JSON response body, or an [`ApiError`]
//! with SSM's error code. SecureString values are kept in clear (nothing is encrypted) and
//! are only returned as they are when the request asks for decryption.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::api::ApiError;

/// The parameter types SSM knows.
pub const TYPES: [&str; 3] = ["String", "StringList", "SecureString"];

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Parameter {
    #[serde(rename = "type")]
    kind: String,
    value: String,
    version: i64,
    modified: f64,
}

/// The Parameter Store of one sandbox.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Ssm {
    parameters: BTreeMap<String, Parameter>,
}

fn validation(message: impl Into<String>) -> ApiError {
    ApiError::client("ValidationException", message)
}

fn str_member<'a>(body: &'a Value, key: &str) -> Option<&'a str> {
    body.get(key).and_then(Value::as_str)
}

impl Ssm {
    /// Whether a parameter of that name exists.
    pub fn contains(&self, name: &str) -> bool {
        self.parameters.contains_key(name)
    }

    /// Creates or replaces a parameter (seeding, and `PutParameter` with `Overwrite`).
    pub fn put(&mut self, name: &str, kind: &str, value: &str, now: f64) -> Result<i64, ApiError> {
        if name.is_empty() {
            return Err(validation("Parameter name must not be empty."));
        }
        if !TYPES.contains(&kind) {
            return Err(validation(format!(
                "1 validation error detected: Value '{kind}' at 'type' failed to satisfy constraint: Member must satisfy enum value set: [SecureString, StringList, String]"
            )));
        }
        if value.is_empty() {
            return Err(validation("Parameter value must not be empty."));
        }
        let version = self.parameters.get(name).map_or(0, |p| p.version) + 1;
        self.parameters.insert(
            name.to_string(),
            Parameter {
                kind: kind.to_string(),
                value: value.to_string(),
                version,
                modified: now,
            },
        );
        Ok(version)
    }

    /// Handles one SSM operation.
    pub fn handle(
        &mut self,
        operation: &str,
        body: &Value,
        region: &str,
        account: &str,
        now: f64,
    ) -> Result<Value, ApiError> {
        match operation {
            "GetParameter" => {
                let name = str_member(body, "Name")
                    .ok_or_else(|| validation("GetParameter needs Name."))?;
                let decrypt = body
                    .get("WithDecryption")
                    .and_then(Value::as_bool)
                    .unwrap_or(false);
                let p = self.parameters.get(name).ok_or_else(|| {
                    ApiError::client("ParameterNotFound", format!("Parameter {name} not found."))
                })?;
                Ok(json!({"Parameter": describe(name, p, decrypt, region, account)}))
            }
            "GetParameters" => {
                let names = body
                    .get("Names")
                    .and_then(Value::as_array)
                    .ok_or_else(|| validation("GetParameters needs Names."))?;
                if names.is_empty() || names.len() > 10 {
                    return Err(validation(
                        "Names must hold between 1 and 10 parameter names.",
                    ));
                }
                let decrypt = body
                    .get("WithDecryption")
                    .and_then(Value::as_bool)
                    .unwrap_or(false);
                let mut found = Vec::new();
                let mut invalid = Vec::new();
                for n in names {
                    let Some(name) = n.as_str() else {
                        return Err(validation("Names must be strings."));
                    };
                    match self.parameters.get(name) {
                        Some(p) => found.push(describe(name, p, decrypt, region, account)),
                        None => invalid.push(name.to_string()),
                    }
                }
                Ok(json!({"Parameters": found, "InvalidParameters": invalid}))
            }
            "PutParameter" => {
                let name = str_member(body, "Name")
                    .ok_or_else(|| validation("PutParameter needs Name."))?;
                let value = str_member(body, "Value")
                    .ok_or_else(|| validation("PutParameter needs Value."))?;
                let overwrite = body
                    .get("Overwrite")
                    .and_then(Value::as_bool)
                    .unwrap_or(false);
                let existing = self.parameters.get(name).map(|p| p.kind.clone());
                if existing.is_some() && !overwrite {
                    return Err(ApiError::client(
                        "ParameterAlreadyExists",
                        "The parameter already exists. To overwrite this value, set the overwrite option in the request to true.",
                    ));
                }
                let kind = match (str_member(body, "Type"), existing) {
                    (Some(t), _) => t.to_string(),
                    (None, Some(t)) => t,
                    (None, None) => {
                        return Err(validation("A new parameter needs a Type."));
                    }
                };
                let version = self.put(name, &kind, value, now)?;
                Ok(json!({"Version": version, "Tier": "Standard"}))
            }
            other => Err(ApiError::client(
                "UnknownOperationException",
                format!("The sandbox does not implement SSM {other}."),
            )),
        }
    }
}

fn describe(name: &str, p: &Parameter, decrypt: bool, region: &str, account: &str) -> Value {
    let value = if p.kind == "SecureString" && !decrypt {
        // AWS returns the ciphertext; any opaque text stands in for it.
        format!("AQICAHsandbox-encrypted-v{}", p.version)
    } else {
        p.value.clone()
    };
    let path = name.strip_prefix('/').unwrap_or(name);
    json!({
        "Name": name,
        "Type": p.kind,
        "Value": value,
        "Version": p.version,
        "LastModifiedDate": p.modified,
        "ARN": format!("arn:aws:ssm:{region}:{account}:parameter/{path}"),
        "DataType": "text",
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(ssm: &mut Ssm, op: &str, body: Value) -> Result<Value, ApiError> {
        ssm.handle(op, &body, "us-east-1", "123456789012", 100.0)
    }

    #[test]
    fn put_then_get_with_and_without_decryption() {
        let mut ssm = Ssm::default();
        let out = call(
            &mut ssm,
            "PutParameter",
            json!({"Name": "/a/b", "Value": "pw", "Type": "SecureString"}),
        )
        .unwrap();
        assert_eq!(out["Version"], 1);
        let clear = call(
            &mut ssm,
            "GetParameter",
            json!({"Name": "/a/b", "WithDecryption": true}),
        )
        .unwrap();
        assert_eq!(clear["Parameter"]["Value"], "pw");
        assert_eq!(clear["Parameter"]["Type"], "SecureString");
        assert_eq!(
            clear["Parameter"]["ARN"],
            "arn:aws:ssm:us-east-1:123456789012:parameter/a/b"
        );
        let hidden = call(&mut ssm, "GetParameter", json!({"Name": "/a/b"})).unwrap();
        assert_ne!(hidden["Parameter"]["Value"], "pw");
    }

    #[test]
    fn missing_parameter_and_overwrite_rules() {
        let mut ssm = Ssm::default();
        let err = call(&mut ssm, "GetParameter", json!({"Name": "/nope"})).unwrap_err();
        assert_eq!((err.status, err.code.as_str()), (400, "ParameterNotFound"));
        call(
            &mut ssm,
            "PutParameter",
            json!({"Name": "x", "Value": "1", "Type": "String"}),
        )
        .unwrap();
        let err = call(
            &mut ssm,
            "PutParameter",
            json!({"Name": "x", "Value": "2", "Type": "String"}),
        )
        .unwrap_err();
        assert_eq!(err.code, "ParameterAlreadyExists");
        let out = call(
            &mut ssm,
            "PutParameter",
            json!({"Name": "x", "Value": "2", "Overwrite": true}),
        )
        .unwrap();
        assert_eq!(out["Version"], 2);
        let err = call(
            &mut ssm,
            "PutParameter",
            json!({"Name": "y", "Value": "2", "Type": "Number"}),
        )
        .unwrap_err();
        assert_eq!(err.code, "ValidationException");
        let many = call(&mut ssm, "GetParameters", json!({"Names": ["x", "zz"]})).unwrap();
        assert_eq!(many["Parameters"][0]["Value"], "2");
        assert_eq!(many["InvalidParameters"], json!(["zz"]));
    }
}
