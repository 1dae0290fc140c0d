//! AWS Secrets Manager emulation, as far as template lookups (`secretsmanager_arn`), ECS
//! `secrets[].valueFrom` checks and a rehearsal's seeding need: named secrets with one
//! current value.
//!
//! Receives awsJson1.1 operations (`X-Amz-Target: secretsmanager.<Op>`): `CreateSecret`,
//! `DescribeSecret`, `GetSecretValue`, `ListSecrets`, plus seeding calls ([`Secrets::seed`]).
//! Hands back the JSON response body, or an [`ApiError`] with Secrets Manager's error code
//! (`ResourceNotFoundException`, `ResourceExistsException`, `InvalidParameterException`,
//! `InvalidRequestException`). A secret's ARN ends in `-` and six random characters, as on AWS;
//! a `SecretId` is a name, that ARN, or the ARN without its suffix. Each secret has one version,
//! staged `AWSCURRENT`; nothing is encrypted, rotated, replicated or scheduled for deletion.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::api::ApiError;
use crate::util::{Rng, ts};

/// ListSecrets answers at most this many entries a page (AWS's `MaxResults` bound).
const MAX_PAGE: usize = 100;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Secret {
    arn: String,
    description: Option<String>,
    /// `SecretString`, or `SecretBinary` as the base64 text the wire carries.
    string: Option<String>,
    binary: Option<String>,
    version: String,
    created: f64,
    tags: Vec<Value>,
}

/// The secrets of one sandbox, by name.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Secrets {
    secrets: BTreeMap<String, Secret>,
}

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::client("InvalidParameterException", message)
}

fn not_found() -> ApiError {
    ApiError::client(
        "ResourceNotFoundException",
        "Secrets Manager can't find the specified secret.",
    )
}

fn str_member<'a>(body: &'a Value, key: &str) -> Result<Option<&'a str>, ApiError> {
    match body.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(ApiError::client(
            "SerializationException",
            format!("{key} must be a string."),
        )),
    }
}

/// Six characters of `[A-Za-z0-9]`: the suffix AWS adds to a secret's name in its ARN.
fn suffix(rng: &mut Rng) -> String {
    const ALPHABET: &[u8; 62] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    (0..6)
        .map(|_| char::from(ALPHABET[(rng.next_u64() % 62) as usize]))
        .collect()
}

fn uuid(rng: &mut Rng) -> String {
    format!(
        "{}-{}-{}-{}-{}",
        rng.hex(8),
        rng.hex(4),
        rng.hex(4),
        rng.hex(4),
        rng.hex(12)
    )
}

/// What a new secret holds.
pub struct NewSecret<'a> {
    pub name: &'a str,
    pub string: Option<&'a str>,
    pub binary: Option<&'a str>,
    pub description: Option<&'a str>,
    /// An ARN to adopt (a seed naming the secret as a task definition's `valueFrom` does);
    /// otherwise one is made in `region` and `account`.
    pub arn: Option<&'a str>,
}

impl Secrets {
    /// Creates a secret (CreateSecret, and seeding); returns its ARN and version id.
    pub fn create(
        &mut self,
        s: &NewSecret<'_>,
        (region, account): (&str, &str),
        now: f64,
        rng: &mut Rng,
    ) -> Result<(String, String), ApiError> {
        if s.name.is_empty() || s.name.len() > 512 {
            return Err(invalid("Name must be 1 to 512 characters long."));
        }
        if s.string.is_some() && s.binary.is_some() {
            return Err(ApiError::client(
                "InvalidRequestException",
                "You can't specify both a binary secret value and a string secret value in the same secret.",
            ));
        }
        if self.secrets.contains_key(s.name) {
            return Err(ApiError::client(
                "ResourceExistsException",
                format!(
                    "The operation failed because the secret {} already exists.",
                    s.name
                ),
            ));
        }
        let arn = match s.arn {
            Some(a) => {
                let named = a.split_once(":secret:").map(|(_, n)| n);
                match named.and_then(|n| n.strip_prefix(s.name)) {
                    Some(rest) if rest.len() == 7 && rest.starts_with('-') => a.to_string(),
                    _ => {
                        return Err(invalid(format!(
                            "the ARN {a} does not name secret {} (arn:aws:secretsmanager:REGION:ACCOUNT:secret:{}-XXXXXX)",
                            s.name, s.name
                        )));
                    }
                }
            }
            None => format!(
                "arn:aws:secretsmanager:{region}:{account}:secret:{}-{}",
                s.name,
                suffix(rng)
            ),
        };
        let version = uuid(rng);
        self.secrets.insert(
            s.name.to_string(),
            Secret {
                arn: arn.clone(),
                description: s.description.map(str::to_string),
                string: s.string.map(str::to_string),
                binary: s.binary.map(str::to_string),
                version: version.clone(),
                created: now,
                tags: Vec::new(),
            },
        );
        Ok((arn, version))
    }

    /// Whether a secret of that name or ARN (full or partial) exists.
    pub fn exists(&self, id: &str) -> bool {
        self.find(id).is_ok()
    }

    /// The secret a `SecretId` names: its name, its ARN, or its ARN without the suffix.
    fn find(&self, id: &str) -> Result<(&String, &Secret), ApiError> {
        if let Some(found) = self.secrets.get_key_value(id) {
            return Ok(found);
        }
        if id.starts_with("arn:") {
            if let Some(found) = self.secrets.iter().find(|(_, s)| s.arn == id) {
                return Ok(found);
            }
            let partial = id.split_once(":secret:").map(|(_, n)| n);
            if let Some(found) = partial.and_then(|n| self.secrets.get_key_value(n)) {
                return Ok(found);
            }
        }
        Err(not_found())
    }

    /// Handles one Secrets Manager operation.
    pub fn handle(
        &mut self,
        operation: &str,
        body: &Value,
        (region, account): (&str, &str),
        now: f64,
        rng: &mut Rng,
    ) -> Result<Value, ApiError> {
        if !body.is_object() {
            return Err(ApiError::client(
                "SerializationException",
                "The request body must be a JSON object.",
            ));
        }
        match operation {
            "CreateSecret" => {
                let name =
                    str_member(body, "Name")?.ok_or_else(|| invalid("CreateSecret needs Name."))?;
                let new = NewSecret {
                    name,
                    string: str_member(body, "SecretString")?,
                    binary: str_member(body, "SecretBinary")?,
                    description: str_member(body, "Description")?,
                    arn: None,
                };
                let (arn, version) = self.create(&new, (region, account), now, rng)?;
                if let Some(tags) = body.get("Tags").and_then(Value::as_array)
                    && let Some(s) = self.secrets.get_mut(name)
                {
                    s.tags = tags.clone();
                }
                let has_value = new.string.is_some() || new.binary.is_some();
                let mut out = json!({"ARN": arn, "Name": name});
                if has_value {
                    out["VersionId"] = json!(version);
                }
                Ok(out)
            }
            "DescribeSecret" => {
                let id = secret_id(body)?;
                let (name, s) = self.find(id)?;
                Ok(describe(name, s, false))
            }
            "GetSecretValue" => {
                let id = secret_id(body)?;
                let (name, s) = self.find(id)?;
                let asked_stage = str_member(body, "VersionStage")?;
                let asked_version = str_member(body, "VersionId")?;
                let wrong = asked_stage.is_some_and(|st| st != "AWSCURRENT")
                    || asked_version.is_some_and(|v| v != s.version);
                if wrong || (s.string.is_none() && s.binary.is_none()) {
                    return Err(ApiError::client(
                        "ResourceNotFoundException",
                        format!(
                            "Secrets Manager can't find the specified secret value for staging label: {}",
                            asked_stage.unwrap_or("AWSCURRENT")
                        ),
                    ));
                }
                let mut out = json!({"ARN": s.arn, "Name": name, "VersionId": s.version,
                    "VersionStages": ["AWSCURRENT"], "CreatedDate": ts(s.created)});
                match (&s.string, &s.binary) {
                    (Some(text), _) => out["SecretString"] = json!(text),
                    (None, Some(b)) => out["SecretBinary"] = json!(b),
                    (None, None) => {}
                }
                Ok(out)
            }
            "ListSecrets" => self.list(body),
            other => Err(ApiError::client(
                "UnknownOperationException",
                format!("The sandbox does not implement Secrets Manager {other}."),
            )),
        }
    }

    /// ListSecrets: by name, ascending (or `SortOrder: desc`), filtered (see [`passes`]), in
    /// pages of `MaxResults` (1..=100) with `NextToken`.
    fn list(&self, body: &Value) -> Result<Value, ApiError> {
        let max = match body.get("MaxResults").and_then(Value::as_u64) {
            Some(n) if (1..=MAX_PAGE as u64).contains(&n) => n as usize,
            Some(_) => return Err(invalid("MaxResults must be between 1 and 100.")),
            None => MAX_PAGE,
        };
        let mut names: Vec<&String> = self
            .secrets
            .iter()
            .filter(|(n, s)| passes(body, n, s))
            .map(|(n, _)| n)
            .collect();
        if str_member(body, "SortOrder")? == Some("desc") {
            names.reverse();
        }
        let start = match str_member(body, "NextToken")? {
            Some(t) => t
                .parse::<usize>()
                .map_err(|_| invalid("The NextToken is not valid."))?,
            None => 0,
        };
        let page: Vec<Value> = names
            .iter()
            .skip(start)
            .take(max)
            .map(|n| describe(n, &self.secrets[*n], true))
            .collect();
        let mut out = json!({ "SecretList": page });
        if start + max < names.len() {
            out["NextToken"] = json!((start + max).to_string());
        }
        Ok(out)
    }
}

/// Whether a secret passes a ListSecrets request's filters: every filter (AND) has a value
/// (OR) that prefixes what its key names, or that does not when the value starts with `!`.
/// `primary-region` and `owning-service` match nothing: the sandbox has neither replicas
/// nor secrets owned by other services.
fn passes(body: &Value, name: &str, s: &Secret) -> bool {
    let tags = |k: &str| -> Vec<String> {
        s.tags
            .iter()
            .filter_map(|t| t.get(k).and_then(Value::as_str).map(str::to_string))
            .collect()
    };
    let fields = |key: &str| -> Vec<String> {
        let description = s.description.clone().into_iter().collect::<Vec<_>>();
        match key {
            "name" => vec![name.to_string()],
            "description" => description,
            "tag-key" => tags("Key"),
            "tag-value" => tags("Value"),
            "all" => [
                vec![name.to_string()],
                description,
                tags("Key"),
                tags("Value"),
            ]
            .concat(),
            _ => Vec::new(),
        }
    };
    body.get("Filters")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .all(|f| {
            let have = fields(f.get("Key").and_then(Value::as_str).unwrap_or_default());
            f.get("Values")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .any(|v| match v.strip_prefix('!') {
                    Some(neg) => !have.iter().any(|h| h.starts_with(neg)),
                    None => have.iter().any(|h| h.starts_with(v)),
                })
        })
}

fn secret_id(body: &Value) -> Result<&str, ApiError> {
    match str_member(body, "SecretId")? {
        Some(id) if !id.is_empty() => Ok(id),
        _ => Err(invalid("SecretId is required.")),
    }
}

/// A secret as DescribeSecret shows it (`VersionIdsToStages`), or as a ListSecrets entry
/// (`SecretVersionsToStages`).
fn describe(name: &str, s: &Secret, listed: bool) -> Value {
    let mut out = json!({
        "ARN": s.arn,
        "Name": name,
        "CreatedDate": ts(s.created),
        "LastChangedDate": ts(s.created),
    });
    if !s.tags.is_empty() {
        out["Tags"] = json!(s.tags);
    }
    if let Some(d) = &s.description {
        out["Description"] = json!(d);
    }
    if s.string.is_some() || s.binary.is_some() {
        let key = if listed {
            "SecretVersionsToStages"
        } else {
            "VersionIdsToStages"
        };
        out[key] = json!({ s.version.clone(): ["AWSCURRENT"] });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const AT: (&str, &str) = ("us-east-1", "123456789012");

    fn call(sm: &mut Secrets, op: &str, body: Value) -> Result<Value, ApiError> {
        sm.handle(op, &body, AT, 100.0, &mut Rng::new(3))
    }

    #[test]
    fn create_describe_get_by_name_arn_and_partial_arn() {
        let mut sm = Secrets::default();
        let out = call(
            &mut sm,
            "CreateSecret",
            json!({"Name": "app/db", "SecretString": "pw"}),
        )
        .unwrap();
        let arn = out["ARN"].as_str().unwrap().to_string();
        let (head, sfx) = arn.rsplit_once('-').unwrap();
        assert_eq!(
            head,
            "arn:aws:secretsmanager:us-east-1:123456789012:secret:app/db"
        );
        assert!(
            sfx.len() == 6 && sfx.chars().all(|c| c.is_ascii_alphanumeric()),
            "{arn}"
        );
        for id in ["app/db", arn.as_str(), head] {
            let d = call(&mut sm, "DescribeSecret", json!({ "SecretId": id })).unwrap();
            assert_eq!(d["ARN"], arn.as_str(), "{id}");
            let v = call(&mut sm, "GetSecretValue", json!({ "SecretId": id })).unwrap();
            assert_eq!(v["SecretString"], "pw");
            assert_eq!(v["VersionStages"], json!(["AWSCURRENT"]));
        }
        // Another suffix is another secret.
        let err = call(
            &mut sm,
            "DescribeSecret",
            json!({"SecretId": format!("{head}-ZZZZZZ")}),
        )
        .unwrap_err();
        assert_eq!(err.code, "ResourceNotFoundException");
        let err = call(&mut sm, "CreateSecret", json!({"Name": "app/db"})).unwrap_err();
        assert_eq!(err.code, "ResourceExistsException");
        let err = call(
            &mut sm,
            "GetSecretValue",
            json!({"SecretId": "app/db", "VersionStage": "AWSPREVIOUS"}),
        )
        .unwrap_err();
        assert_eq!(err.code, "ResourceNotFoundException");
    }

    #[test]
    fn adopted_arns_must_name_the_secret() {
        let mut sm = Secrets::default();
        let arn = "arn:aws:secretsmanager:ap-northeast-1:111122223333:secret:t/baz-06XQOH";
        let new = |arn| NewSecret {
            name: "t/baz",
            string: Some("v"),
            binary: None,
            description: None,
            arn: Some(arn),
        };
        assert!(
            sm.create(&new("arn:x:secret:other-123456"), AT, 0.0, &mut Rng::new(1))
                .is_err()
        );
        assert_eq!(
            sm.create(&new(arn), AT, 0.0, &mut Rng::new(1)).unwrap().0,
            arn
        );
        let d = call(&mut sm, "DescribeSecret", json!({ "SecretId": arn })).unwrap();
        assert_eq!(d["Name"], "t/baz");
    }

    #[test]
    fn list_pages_sorts_and_filters_by_name_prefix() {
        let mut sm = Secrets::default();
        for n in ["a/1", "a/2", "b/1"] {
            call(
                &mut sm,
                "CreateSecret",
                json!({"Name": n, "SecretString": "x"}),
            )
            .unwrap();
        }
        let page = call(&mut sm, "ListSecrets", json!({"MaxResults": 2})).unwrap();
        let names = |v: &Value| -> Vec<String> {
            v["SecretList"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| s["Name"].as_str().unwrap().to_string())
                .collect()
        };
        assert_eq!(names(&page), ["a/1", "a/2"]);
        let next = call(
            &mut sm,
            "ListSecrets",
            json!({"MaxResults": 2, "NextToken": page["NextToken"]}),
        )
        .unwrap();
        assert_eq!(names(&next), ["b/1"]);
        assert!(next.get("NextToken").is_none());
        let f = call(
            &mut sm,
            "ListSecrets",
            json!({"Filters": [{"Key": "name", "Values": ["a/"]}], "SortOrder": "desc"}),
        )
        .unwrap();
        assert_eq!(names(&f), ["a/2", "a/1"]);
        assert!(call(&mut sm, "ListSecrets", json!({"MaxResults": 0})).is_err());
    }
}
