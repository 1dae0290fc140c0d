//! Systems Manager Parameter Store reads, for the `ssm` template function.
//!
//! Receives a parameter name; hands on its value and type. A missing parameter is the
//! user's input error (it names the parameter and the region); other failures map like every
//! other call (see [`super::error`]).

use aws_sdk_ssm::operation::get_parameter::GetParameterError;

use super::Clients;
use super::error::Call;
use crate::error::{Diagnostic, Error, Result};

impl Clients {
    /// The value and type (`String`, `StringList`, `SecureString`) of a parameter;
    /// SecureStrings are decrypted when `with_decryption` is set.
    pub async fn get_parameter(
        &self,
        name: &str,
        with_decryption: bool,
    ) -> Result<(String, String)> {
        let call = Call::ssm("GetParameter", format!("SSM parameter {name}"));
        let out = self
            .ssm
            .get_parameter()
            .name(name)
            .with_decryption(with_decryption)
            .send()
            .await
            .map_err(|e| {
                if matches!(e.as_service_error(), Some(GetParameterError::ParameterNotFound(_))) {
                    Error::input(
                        Diagnostic::error(format!(
                            "SSM parameter {name} does not exist in region {}",
                            self.region()
                        ))
                        .hint("check the name (parameter names are case-sensitive and include the leading /) and the region (`region:` in the config, AWS_REGION)"),
                    )
                } else {
                    self.fail(&call, e)
                }
            })?;
        let p = out
            .parameter
            .ok_or_else(|| Error::aws(format!("GetParameter answered no parameter for {name}")))?;
        Ok((
            p.value.unwrap_or_default(),
            p.r#type.map(|t| t.as_str().to_string()).unwrap_or_default(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use crate::aws::AwsSettings;
    use crate::error::ErrorKind;

    #[tokio::test]
    async fn reads_a_parameter_and_names_a_missing_one() {
        let seed = cortado_sandbox::Seed::parse(
            "parameters:\n  - {name: /app/pw, type: SecureString, value: hunter2}\n",
            std::path::Path::new("seed.yml"),
        )
        .unwrap();
        let sb = cortado_sandbox::start(cortado_sandbox::Options {
            seed: Some(seed),
            ..cortado_sandbox::Options::default()
        })
        .await
        .unwrap();
        let clients = crate::aws::connect(&AwsSettings {
            region: Some("us-east-1".into()),
            endpoint_url: Some(sb.endpoint()),
            static_credentials: true,
            max_attempts: 1,
            assume_role_arn: None,
        })
        .await
        .unwrap();
        clients
            .ssm
            .put_parameter()
            .name("/app/hosts")
            .value("a,b")
            .r#type(aws_sdk_ssm::types::ParameterType::StringList)
            .send()
            .await
            .unwrap();
        let seeded = clients.get_parameter("/app/pw", true).await.unwrap();
        assert_eq!(seeded, ("hunter2".to_string(), "SecureString".to_string()));
        let (cipher, _) = clients.get_parameter("/app/pw", false).await.unwrap();
        assert_ne!(cipher, "hunter2");
        let got = clients.get_parameter("/app/hosts", true).await.unwrap();
        assert_eq!(got, ("a,b".to_string(), "StringList".to_string()));
        let err = clients
            .get_parameter("/app/missing", true)
            .await
            .unwrap_err();
        assert_eq!(err.kind, ErrorKind::BadInput);
        let text = err.to_string();
        assert!(
            text.contains("/app/missing") && text.contains("us-east-1"),
            "{text}"
        );
        assert_eq!(clients.call_count("GetParameter"), 4);
        let log = sb.control().requests();
        assert!(
            log.iter()
                .any(|r| r.service == "ssm" && r.operation == "PutParameter" && r.mutating),
            "{log:?}"
        );
    }
}
