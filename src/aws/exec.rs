//! The API calls of `cortado exec`: ECS `ExecuteCommand`, SSM `StartSession` (port
//! forwarding), `ResumeSession` and `TerminateSession`, the cluster's ECS Exec configuration
//! (`DescribeClusters`), and the task role's ECS Exec permissions (IAM
//! `SimulatePrincipalPolicy`, as AWS's amazon-ecs-exec-checker checks them).
//!
//! Receives a cluster, a task, a container, a command or the port-forwarding parameters;
//! hands on a [`SessionStart`] (session id, stream URL, token) for the data channel, which
//! `cortado-ssm-session` speaks.

use aws_sdk_ecs::types::ClusterField;

use super::Clients;
use super::error::Call;
use crate::error::Result;

/// The actions a task role needs for ECS Exec (AWS's "Using ECS Exec": IAM permissions).
pub(crate) const EXEC_ACTIONS: [&str; 4] = [
    "ssmmessages:CreateControlChannel",
    "ssmmessages:CreateDataChannel",
    "ssmmessages:OpenControlChannel",
    "ssmmessages:OpenDataChannel",
];

/// A session to connect to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionStart {
    pub session_id: String,
    pub stream_url: String,
    /// A credential: never printed.
    pub token: String,
}

/// What IAM's simulation says of the task role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RoleCheck {
    /// Every action is allowed.
    Allowed,
    /// These actions are not allowed (with IAM's decision: implicitDeny, explicitDeny).
    Denied(Vec<(String, String)>),
    /// The simulation could not be run (no permission to simulate, or an error): why.
    Unknown(String),
}

impl Clients {
    /// ECS ExecuteCommand, interactive (the only mode ECS supports).
    pub async fn execute_command(
        &self,
        cluster: &str,
        task_arn: &str,
        container: &str,
        command: &str,
    ) -> Result<SessionStart> {
        let call = Call::ecs(
            "ExecuteCommand",
            format!("container \"{container}\" of task {task_arn}"),
        )
        .in_cluster(cluster);
        let out = self
            .ecs
            .execute_command()
            .cluster(cluster)
            .task(task_arn)
            .container(container)
            .command(command)
            .interactive(true)
            .send()
            .await
            .map_err(|e| self.fail(&call, e))?;
        let s = out.session;
        let part = |f: fn(&aws_sdk_ecs::types::Session) -> Option<&str>| {
            s.as_ref().and_then(f).unwrap_or_default().to_string()
        };
        Ok(SessionStart {
            session_id: part(|s| s.session_id()),
            stream_url: part(|s| s.stream_url()),
            token: part(|s| s.token_value()),
        })
    }

    /// SSM StartSession with a document and its parameters.
    pub async fn start_session(
        &self,
        target: &str,
        document: &str,
        parameters: &[(&str, String)],
    ) -> Result<SessionStart> {
        let call = Call::ssm("StartSession", format!("{document} on {target}"));
        let mut req = self
            .ssm
            .start_session()
            .target(target)
            .document_name(document)
            .reason("cortado exec");
        for (k, v) in parameters {
            req = req.parameters(*k, vec![v.clone()]);
        }
        let out = req.send().await.map_err(|e| self.fail(&call, e))?;
        Ok(SessionStart {
            session_id: out.session_id.unwrap_or_default(),
            stream_url: out.stream_url.unwrap_or_default(),
            token: out.token_value.unwrap_or_default(),
        })
    }

    /// A new token for a session whose connection dropped; `None` when it has ended.
    pub async fn resume_session(&self, session_id: &str) -> Result<Option<String>> {
        let call = Call::ssm("ResumeSession", format!("session {session_id}"));
        match self
            .ssm
            .resume_session()
            .session_id(session_id)
            .send()
            .await
        {
            Ok(out) => Ok(out.token_value.filter(|t| !t.is_empty())),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_does_not_exist_exception()) =>
            {
                Ok(None)
            }
            Err(e) => Err(self.fail(&call, e)),
        }
    }

    /// Ends a session (best effort: the caller is leaving anyway).
    pub async fn terminate_session(&self, session_id: &str) -> Result<()> {
        let call = Call::ssm("TerminateSession", format!("session {session_id}"));
        self.ssm
            .terminate_session()
            .session_id(session_id)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| self.fail(&call, e))
    }

    /// The KMS key the cluster's ECS Exec configuration encrypts sessions with, if any.
    pub async fn exec_kms_key(&self, cluster: &str) -> Result<Option<String>> {
        let call =
            Call::ecs("DescribeClusters", format!("cluster \"{cluster}\"")).in_cluster(cluster);
        let out = self
            .ecs
            .describe_clusters()
            .clusters(cluster)
            .include(ClusterField::Configurations)
            .send()
            .await
            .map_err(|e| self.fail(&call, e))?;
        Ok(out
            .clusters()
            .first()
            .and_then(|c| c.configuration())
            .and_then(|c| c.execute_command_configuration())
            .and_then(|c| c.kms_key_id())
            .filter(|k| !k.is_empty())
            .map(str::to_string))
    }

    /// Whether `role_arn` may use ECS Exec, by IAM's policy simulator.
    pub async fn check_exec_role(&self, role_arn: &str) -> RoleCheck {
        let out = self
            .iam
            .simulate_principal_policy()
            .policy_source_arn(role_arn)
            .set_action_names(Some(EXEC_ACTIONS.iter().map(|a| a.to_string()).collect()))
            .send()
            .await;
        let out = match out {
            Ok(o) => o,
            Err(e) => {
                let call = Call::of("iam", "SimulatePrincipalPolicy", format!("role {role_arn}"));
                let err = self.fail(&call, e);
                let why = err
                    .diagnostics
                    .first()
                    .map(|d| d.message.clone())
                    .unwrap_or_default();
                return RoleCheck::Unknown(why);
            }
        };
        let denied: Vec<(String, String)> = out
            .evaluation_results()
            .iter()
            .filter(|r| r.eval_decision().as_str() != "allowed")
            .map(|r| {
                (
                    r.eval_action_name().to_string(),
                    r.eval_decision().as_str().to_string(),
                )
            })
            .collect();
        if denied.is_empty() {
            RoleCheck::Allowed
        } else {
            RoleCheck::Denied(denied)
        }
    }
}
