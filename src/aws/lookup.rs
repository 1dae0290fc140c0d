//! Reads behind the template lookups other than `ssm`: CloudFormation stack outputs and
//! exports, Secrets Manager secret ARNs, S3 objects (Terraform states).
//!
//! Receives what to read; hands on the values. Something that does not exist (stack, secret,
//! bucket, object) is the user's input error naming it and the region; other failures map like
//! every other call (see [`super::error`]).

use aws_sdk_ecs::error::ProvideErrorMetadata;

use super::Clients;
use super::error::Call;
use crate::error::{Diagnostic, Error, Result};

use crate::render::tfstate::MAX_STATE_BYTES;

impl Clients {
    /// The outputs (key, value) of a CloudFormation stack, in the order AWS lists them.
    pub async fn stack_outputs(&self, stack: &str) -> Result<Vec<(String, String)>> {
        let call = Call::of(
            "cloudformation",
            "DescribeStacks",
            format!("CloudFormation stack {stack}"),
        );
        let out = self
            .cloudformation
            .describe_stacks()
            .stack_name(stack)
            .send()
            .await
            .map_err(|e| {
                // CloudFormation answers a missing stack with ValidationError (HTTP 400).
                if e.as_service_error().and_then(|s| s.code()) == Some("ValidationError") {
                    self.missing(
                        format!("CloudFormation stack {stack} does not exist"),
                        "check the stack name (case-sensitive) and the region (`region:` in the config, AWS_REGION)",
                    )
                } else {
                    self.fail(&call, e)
                }
            })?;
        let Some(found) = out.stacks().first() else {
            return Err(self.missing(
                format!("CloudFormation stack {stack} does not exist"),
                "check the stack name and the region",
            ));
        };
        Ok(found
            .outputs()
            .iter()
            .filter_map(|o| {
                Some((
                    o.output_key()?.to_string(),
                    o.output_value().unwrap_or_default().to_string(),
                ))
            })
            .collect())
    }

    /// Every CloudFormation export (name, value) of the region, all pages.
    pub async fn exports(&self) -> Result<Vec<(String, String)>> {
        let call = Call::of("cloudformation", "ListExports", "CloudFormation exports");
        let mut out = Vec::new();
        let mut pages = self.cloudformation.list_exports().into_paginator().send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| self.fail(&call, e))?;
            out.extend(page.exports().iter().filter_map(|e| {
                Some((
                    e.name()?.to_string(),
                    e.value().unwrap_or_default().to_string(),
                ))
            }));
        }
        Ok(out)
    }

    /// The ARN of a Secrets Manager secret, by name (or ARN).
    pub async fn secret_arn(&self, name: &str) -> Result<String> {
        let call = Call::of(
            "secretsmanager",
            "DescribeSecret",
            format!("Secrets Manager secret {name}"),
        );
        let out = self
            .secretsmanager
            .describe_secret()
            .secret_id(name)
            .send()
            .await
            .map_err(|e| {
                if e.as_service_error()
                    .is_some_and(|s| s.is_resource_not_found_exception())
                {
                    self.missing(
                        format!("Secrets Manager secret {name} does not exist"),
                        "check the secret name (case-sensitive) and the region (`region:` in the config, AWS_REGION)",
                    )
                } else {
                    self.fail(&call, e)
                }
            })?;
        out.arn
            .filter(|a| !a.is_empty())
            .ok_or_else(|| Error::aws(format!("DescribeSecret answered no ARN for {name}")))
    }

    /// The text of an S3 object (a Terraform state). A bucket in another region than the
    /// run's is followed there once (S3 names the bucket's region in its redirect).
    pub async fn object_text(&self, bucket: &str, key: &str) -> Result<String> {
        let url = format!("s3://{bucket}/{key}");
        let call = Call::of("s3", "GetObject", format!("S3 object {url}"));
        let mut sent = self.s3.get_object().bucket(bucket).key(key).send().await;
        if let Err(e) = &sent
            && let Some(region) = e
                .raw_response()
                .and_then(|r| r.headers().get("x-amz-bucket-region"))
                .filter(|r| !r.is_empty() && *r != self.region())
        {
            let there = aws_sdk_s3::Client::from_conf(
                self.s3
                    .config()
                    .to_builder()
                    .region(aws_sdk_s3::config::Region::new(region.to_string()))
                    .build(),
            );
            sent = there.get_object().bucket(bucket).key(key).send().await;
        }
        let out = sent.map_err(|e| {
            let code = e.as_service_error().and_then(|s| s.code());
            if e.as_service_error().is_some_and(|s| s.is_no_such_key()) {
                self.missing(
                    format!("S3 object {url} does not exist"),
                    "check the key (the state's path in the bucket) and the bucket",
                )
            } else if code == Some("NoSuchBucket") {
                self.missing(
                    format!("S3 bucket {bucket} does not exist"),
                    "check the bucket name in the plugin's `url`",
                )
            } else {
                self.fail(&call, e)
            }
        })?;
        let too_large = || {
            Error::input(
                Diagnostic::error(format!(
                    "S3 object {url} is larger than {} MiB: not a Terraform state cortado reads",
                    MAX_STATE_BYTES >> 20
                ))
                .hint("point the plugin's `url` at the terraform.tfstate object"),
            )
        };
        if out
            .content_length()
            .is_some_and(|n| u64::try_from(n).unwrap_or(0) > MAX_STATE_BYTES)
        {
            return Err(too_large());
        }
        // Read through the bound too: a body without a length (or with a wrong one) stops at
        // the limit.
        let mut body = out.body;
        let mut bytes: Vec<u8> = Vec::new();
        loop {
            let chunk = body.try_next().await.map_err(|e| {
                Error::new(
                    crate::error::ErrorKind::Aws,
                    Diagnostic::error(format!(
                        "GetObject failed for S3 object {url}: reading the body: {e}"
                    ))
                    .hint("try again; check the network"),
                )
            })?;
            let Some(chunk) = chunk else { break };
            bytes.extend_from_slice(&chunk);
            if bytes.len() as u64 > MAX_STATE_BYTES {
                return Err(too_large());
            }
        }
        String::from_utf8(bytes).map_err(|_| {
            Error::input(
                Diagnostic::error(format!("S3 object {url} is not UTF-8 text"))
                    .hint("point the plugin's `url` at the terraform.tfstate object"),
            )
        })
    }

    /// The user's input names something that does not exist here: exit 1, with the region.
    fn missing(&self, what: String, hint: &str) -> Error {
        Error::input(Diagnostic::error(format!("{what} in region {}", self.region())).hint(hint))
    }
}
