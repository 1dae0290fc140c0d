//! SDK failures as cortado errors.
//!
//! Receives an `SdkError` of any operation and what the call was about ([`Call`]); hands on
//! an [`Error`] of class `Aws` (or `BadInput` when AWS refused the user's input) whose hint
//! names the usual cause. Errors are told apart by their kind and by the error code the SDK
//! parsed (`ProvideErrorMetadata::code`), never by message text; the message is only shown.

use std::error::Error as StdError;

use aws_credential_types::provider::error::CredentialsError;
use aws_sdk_ecs::error::{ProvideErrorMetadata, SdkError};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;

use super::Clients;
use crate::error::{Diagnostic, Error, ErrorKind};

/// What a call was about, for the message and the hint.
#[derive(Debug, Clone)]
pub(crate) struct Call {
    /// IAM service prefix: "ecs", "elasticloadbalancing".
    pub service: &'static str,
    /// API operation: "DescribeServices".
    pub operation: &'static str,
    /// What it acted on, for the message: `service "web" in cluster "prod"`.
    pub subject: String,
    /// The cluster, when the call names one (for ClusterNotFound).
    pub cluster: Option<String>,
}

impl Call {
    pub(crate) fn ecs(operation: &'static str, subject: impl Into<String>) -> Self {
        Call {
            service: "ecs",
            operation,
            subject: subject.into(),
            cluster: None,
        }
    }

    pub(crate) fn elb(operation: &'static str, subject: impl Into<String>) -> Self {
        Call {
            service: "elasticloadbalancing",
            operation,
            subject: subject.into(),
            cluster: None,
        }
    }

    pub(crate) fn ssm(operation: &'static str, subject: impl Into<String>) -> Self {
        Call {
            service: "ssm",
            operation,
            subject: subject.into(),
            cluster: None,
        }
    }

    pub(crate) fn logs(operation: &'static str, subject: impl Into<String>) -> Self {
        Call::of("logs", operation, subject)
    }

    /// A call of another service (`service` is its IAM prefix: "cloudformation", "s3").
    pub(crate) fn of(
        service: &'static str,
        operation: &'static str,
        subject: impl Into<String>,
    ) -> Self {
        Call {
            service,
            operation,
            subject: subject.into(),
            cluster: None,
        }
    }

    pub(crate) fn in_cluster(mut self, cluster: &str) -> Self {
        self.cluster = Some(cluster.to_string());
        self
    }

    fn action(&self) -> String {
        format!("{}:{}", self.service, self.operation)
    }
}

/// Error codes that mean the credentials are missing, wrong or expired.
const EXPIRED: &[&str] = &["ExpiredTokenException", "ExpiredToken", "RequestExpired"];
const BAD_CREDENTIALS: &[&str] = &[
    "UnrecognizedClientException",
    "InvalidClientTokenId",
    "InvalidSignatureException",
    "SignatureDoesNotMatch",
    "MissingAuthenticationToken",
    "IncompleteSignature",
];
const ACCESS_DENIED: &[&str] = &[
    "AccessDeniedException",
    "AccessDenied",
    "UnauthorizedOperation",
];
const THROTTLED: &[&str] = &[
    "ThrottlingException",
    "Throttling",
    "TooManyRequestsException",
    "RequestLimitExceeded",
];
/// The request was refused for what it says: the user's input.
const INVALID_INPUT: &[&str] = &[
    "InvalidParameterException",
    "ClientException",
    "ValidationError",
    "ValidationException",
];

const CREDENTIALS_HINT: &str = "set credentials for the SDK's default chain: AWS_PROFILE (after `aws sso login`), AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, or in GitHub Actions the OIDC role (aws-actions/configure-aws-credentials)";

impl Clients {
    /// Maps a failed call to an error that says what failed, where, and what to do.
    pub(crate) fn fail<E>(&self, call: &Call, err: SdkError<E, HttpResponse>) -> Error
    where
        E: ProvideErrorMetadata + StdError + Send + Sync + 'static,
    {
        let region = self.region();
        let target = match self.endpoint_url() {
            Some(url) => format!("{url} (region {region})"),
            None => format!("region {region}"),
        };
        let head = format!("{} failed for {}", call.operation, call.subject);
        match &err {
            SdkError::ServiceError(e) => {
                let status = e.raw().status().as_u16();
                let e = e.err();
                let code = e.code().unwrap_or("");
                // What the service said is its text, not ours: on one line, control
                // characters shown as escapes.
                let message =
                    crate::untrusted::Untrusted::from(e.message().unwrap_or("").trim()).to_string();
                let message = message.as_str();
                let said = if message.is_empty() {
                    format!(
                        "{head}: {}",
                        if code.is_empty() {
                            "unknown error"
                        } else {
                            code
                        }
                    )
                } else if code.is_empty() {
                    format!("{head}: {message}")
                } else {
                    format!("{head}: {code}: {message}")
                };
                service_error(call, code, status, said, region)
            }
            SdkError::DispatchFailure(d) => {
                if source_chain(&err).any(|s| s.is::<CredentialsError>()) {
                    let why = source_chain(&err)
                        .find_map(|s| s.downcast_ref::<CredentialsError>())
                        .map(|c| chain_text(c))
                        .unwrap_or_default();
                    aws(
                        format!("{head}: no usable AWS credentials ({why})"),
                        CREDENTIALS_HINT,
                    )
                } else if d.is_timeout() {
                    aws(
                        format!("{head}: connecting to {target} timed out"),
                        "check the network, proxy settings (HTTPS_PROXY) and the endpoint; the call was retried",
                    )
                } else if d.is_io() {
                    aws(
                        format!("{head}: cannot reach {target}: {}", chain_text(&err)),
                        "check the network and the endpoint (AWS_ENDPOINT_URL, --sandbox: is the sandbox running?)",
                    )
                } else {
                    aws(
                        format!(
                            "{head}: the request could not be sent: {}",
                            chain_text(&err)
                        ),
                        "check the credentials and the endpoint; run with RUST_LOG=aws_smithy_runtime=debug for details",
                    )
                }
            }
            SdkError::TimeoutError(_) => aws(
                format!("{head}: no answer from {target} in time"),
                "AWS may be slow or unreachable; try again, or check the network",
            ),
            SdkError::ResponseError(r) => aws(
                format!(
                    "{head}: unexpected answer from {target} (HTTP {}): {}",
                    r.raw().status().as_u16(),
                    chain_text(&err)
                ),
                "is the endpoint an AWS API? Emulators answer operations they do not implement like this",
            ),
            SdkError::ConstructionFailure(_) => Error::internal(format!(
                "{head}: the request could not be built: {}",
                chain_text(&err)
            )),
            _ => aws(format!("{head}: {}", chain_text(&err)), "try again"),
        }
    }
}

fn service_error(call: &Call, code: &str, status: u16, said: String, region: &str) -> Error {
    let action = call.action();
    if EXPIRED.contains(&code) {
        aws(
            said,
            "the AWS credentials have expired: refresh them (`aws sso login`, or re-run the credentials step of the workflow)",
        )
    } else if BAD_CREDENTIALS.contains(&code) {
        aws(
            said,
            format!("the AWS credentials are not valid in {region}: {CREDENTIALS_HINT}"),
        )
    } else if ACCESS_DENIED.contains(&code) {
        aws(
            said,
            format!(
                "the identity in use may not call {action}: allow {action} in its IAM policy (on this resource)"
            ),
        )
    } else if code == "ClusterNotFoundException" {
        let cluster = call.cluster.as_deref().unwrap_or("(unnamed)");
        aws(
            said,
            format!(
                "cluster \"{cluster}\" does not exist in region {region}: check `cluster:` in the config and the region (--region, AWS_REGION)"
            ),
        )
    } else if code == "ServiceNotFoundException" || code == "ServiceNotActiveException" {
        aws(
            said,
            format!(
                "check `service:` in the config, the cluster and the region ({region}); `cortado deploy` creates a missing service when the service definition is given"
            ),
        )
    } else if THROTTLED.contains(&code) {
        transient(
            said,
            "AWS throttled the calls and the retries ran out: try again later, or raise the retry attempts",
        )
    } else if INVALID_INPUT.contains(&code) {
        Error::input(Diagnostic::error(said).hint(format!(
            "ECS refused the input of {action}: fix the definition named in the message; `cortado validate` checks most rules locally"
        )))
    } else if status >= 500 {
        transient(
            said,
            "AWS answered with a server error after the retries; if it persists, check the AWS Health Dashboard",
        )
    } else {
        aws(
            said,
            "see the AWS error above; if it persists, check the AWS Health Dashboard",
        )
    }
}

fn aws(message: String, hint: impl Into<String>) -> Error {
    Error::new(ErrorKind::Aws, Diagnostic::error(message).hint(hint))
}

/// An error that may pass if the same call is made again later ([`ErrorKind::AwsTransient`]).
fn transient(message: String, hint: impl Into<String>) -> Error {
    Error::new(
        ErrorKind::AwsTransient,
        Diagnostic::error(message).hint(hint),
    )
}

fn source_chain<'a>(
    err: &'a (dyn StdError + 'static),
) -> impl Iterator<Item = &'a (dyn StdError + 'static)> {
    std::iter::successors(Some(err), |e: &&'a (dyn StdError + 'static)| (*e).source())
}

/// The messages of an error and its sources, joined, without repeats.
fn chain_text(err: &(dyn StdError + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    for e in source_chain(err) {
        let s = e.to_string();
        if !s.is_empty() && !parts.iter().any(|p| p.contains(&s)) {
            parts.push(s);
        }
    }
    parts.join(": ")
}
