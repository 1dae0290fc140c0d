//! AWS CloudFormation emulation, as far as template lookups need it: stacks with outputs, and
//! the exports those outputs declare (`cfn_output`, `cfn_export`).
//!
//! Receives awsQuery operations (form-encoded `Action=...&Version=2010-05-15`):
//! `DescribeStacks` and `ListExports`, plus seeding calls ([`CloudFormation::seed`]). Hands
//! back the XML result, or an [`ApiError`] with CloudFormation's code (`ValidationError`, as
//! AWS answers a stack that does not exist). Stacks are seeded as they would stand after a
//! successful create (`CREATE_COMPLETE`); no template is ever evaluated, so there is no
//! CreateStack, no resources, events or drift.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::api::ApiError;
use crate::query::{XmlWriter, xml_response_ns};

/// The `Version` of CloudFormation's query API; it tells its requests from ELBv2's and IAM's.
pub const CFN_VERSION: &str = "2010-05-15";
const NAMESPACE: &str = "http://cloudformation.amazonaws.com/doc/2010-05-15/";
/// Exports ListExports answers a page (the sandbox's choice; AWS documents none).
const EXPORTS_PAGE: usize = 100;

/// One output of a stack (DescribeStacks' `Output`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Output {
    pub output_key: String,
    pub output_value: String,
    #[serde(default)]
    pub description: Option<String>,
    /// The export name; the output is then listed by ListExports.
    #[serde(default)]
    pub export_name: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Stack {
    id: String,
    created: f64,
    outputs: Vec<Output>,
}

/// The stacks of one sandbox, by name.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct CloudFormation {
    stacks: BTreeMap<String, Stack>,
}

fn validation(message: impl Into<String>) -> ApiError {
    ApiError::client("ValidationError", message)
}

fn iso_time(seconds: f64) -> String {
    aws_smithy_types::DateTime::from_secs_f64(seconds)
        .fmt(aws_smithy_types::date_time::Format::DateTime)
        .unwrap_or_else(|_| "1970-01-01T00:00:00Z".to_string())
}

impl CloudFormation {
    /// Creates a stack in CREATE_COMPLETE with these outputs. An export name may be used by
    /// one output of one stack only, as CloudFormation requires.
    pub fn seed(
        &mut self,
        name: &str,
        outputs: &[Output],
        id: String,
        now: f64,
    ) -> Result<(), ApiError> {
        if name.is_empty() || self.stacks.contains_key(name) {
            return Err(validation(format!("Stack [{name}] already exists")));
        }
        for o in outputs {
            if let Some(e) = &o.export_name
                && (self.exports().iter().any(|(n, ..)| n == e)
                    || outputs
                        .iter()
                        .filter(|p| p.export_name.as_ref() == Some(e))
                        .count()
                        > 1)
            {
                return Err(validation(format!(
                    "Export with name {e} is already exported by another stack or output"
                )));
            }
        }
        self.stacks.insert(
            name.to_string(),
            Stack {
                id,
                created: now,
                outputs: outputs.to_vec(),
            },
        );
        Ok(())
    }

    /// Every export: (name, value, exporting stack id), by name.
    fn exports(&self) -> Vec<(String, String, String)> {
        let mut out: Vec<(String, String, String)> = self
            .stacks
            .values()
            .flat_map(|s| {
                s.outputs.iter().filter_map(|o| {
                    Some((o.export_name.clone()?, o.output_value.clone(), s.id.clone()))
                })
            })
            .collect();
        out.sort();
        out
    }

    /// The stack a `StackName` names: its name or its stack id.
    fn find(&self, name_or_id: &str) -> Option<(&String, &Stack)> {
        self.stacks
            .get_key_value(name_or_id)
            .or_else(|| self.stacks.iter().find(|(_, s)| s.id == name_or_id))
    }

    /// Handles one CloudFormation action; answers the whole XML document.
    pub fn handle(
        &self,
        action: &str,
        params: &BTreeMap<String, String>,
        request_id: &str,
    ) -> Result<String, ApiError> {
        let mut w = XmlWriter::new();
        match action {
            "DescribeStacks" => {
                let stacks: Vec<(&String, &Stack)> =
                    match params.get("StackName") {
                        Some(n) if !n.is_empty() => vec![self.find(n).ok_or_else(|| {
                            validation(format!("Stack with id {n} does not exist"))
                        })?],
                        _ => self.stacks.iter().collect(),
                    };
                w.list("Stacks", stacks, |w, (name, s)| write_stack(w, name, s));
            }
            "ListExports" => {
                let exports = self.exports();
                let start = match params.get("NextToken") {
                    Some(t) => t
                        .parse::<usize>()
                        .ok()
                        .filter(|n| *n <= exports.len())
                        .ok_or_else(|| validation("Invalid NextToken"))?,
                    None => 0,
                };
                let page = exports.iter().skip(start).take(EXPORTS_PAGE);
                w.list("Exports", page, |w, (name, value, stack)| {
                    w.text("ExportingStackId", stack)
                        .text("Name", name)
                        .text("Value", value);
                });
                if start + EXPORTS_PAGE < exports.len() {
                    w.text("NextToken", &(start + EXPORTS_PAGE).to_string());
                }
            }
            other => {
                return Err(ApiError::client(
                    "UnknownOperationException",
                    format!("The sandbox does not implement CloudFormation {other}."),
                ));
            }
        }
        Ok(xml_response_ns(NAMESPACE, action, &w.finish(), request_id))
    }
}

fn write_stack(w: &mut XmlWriter, name: &str, s: &Stack) {
    w.text("StackId", &s.id)
        .text("StackName", name)
        .text("CreationTime", &iso_time(s.created))
        .text("StackStatus", "CREATE_COMPLETE")
        .value("DisableRollback", false)
        .list("Outputs", &s.outputs, |w, o| {
            w.text("OutputKey", &o.output_key)
                .text("OutputValue", &o.output_value)
                .opt_text("Description", o.description.as_deref())
                .opt_text("ExportName", o.export_name.as_deref());
        });
}

/// CloudFormation's `<ErrorResponse>` document.
pub fn xml_error(error: &ApiError, request_id: &str) -> String {
    crate::query::xml_error(error, request_id).replacen(crate::query::ELBV2_NAMESPACE, NAMESPACE, 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn out(key: &str, value: &str, export: Option<&str>) -> Output {
        Output {
            output_key: key.into(),
            output_value: value.into(),
            description: None,
            export_name: export.map(Into::into),
        }
    }

    #[test]
    fn stacks_outputs_and_exports() {
        let mut cfn = CloudFormation::default();
        cfn.seed(
            "net",
            &[out("VpcId", "vpc-1", Some("net-vpc")), out("Az", "a", None)],
            "arn:aws:cloudformation:us-east-1:1:stack/net/x".into(),
            0.0,
        )
        .unwrap();
        assert!(
            cfn.seed(
                "other",
                &[out("V", "2", Some("net-vpc"))],
                "id2".into(),
                0.0
            )
            .is_err(),
            "an export name is unique"
        );
        let p = BTreeMap::from([("StackName".to_string(), "net".to_string())]);
        let xml = cfn.handle("DescribeStacks", &p, "rid").unwrap();
        assert!(xml.starts_with("<DescribeStacksResponse xmlns=\"http://cloudformation.amazonaws.com/doc/2010-05-15/\"><DescribeStacksResult><Stacks><member>"), "{xml}");
        assert!(xml.contains("<OutputKey>VpcId</OutputKey><OutputValue>vpc-1</OutputValue><ExportName>net-vpc</ExportName>"), "{xml}");
        let missing = BTreeMap::from([("StackName".to_string(), "nope".to_string())]);
        let err = cfn.handle("DescribeStacks", &missing, "rid").unwrap_err();
        assert_eq!((err.status, err.code.as_str()), (400, "ValidationError"));
        assert_eq!(err.message, "Stack with id nope does not exist");
        let xml = cfn.handle("ListExports", &BTreeMap::new(), "rid").unwrap();
        assert!(xml.contains("<Exports><member><ExportingStackId>arn:aws:cloudformation:us-east-1:1:stack/net/x</ExportingStackId><Name>net-vpc</Name><Value>vpc-1</Value></member></Exports>"), "{xml}");
        assert!(!xml.contains("NextToken"));
    }
}
