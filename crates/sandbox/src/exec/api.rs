//! ECS `ExecuteCommand` and SSM `StartSession`, `ResumeSession`, `TerminateSession`: the
//! checks ECS and SSM make before a session exists, and the session they create.
//!
//! Receives the operation's JSON body with the server's state under its lock; hands on the
//! AWS-shaped answer (the session's id, stream URL and token) or an [`ApiError`].

use cortado_ssm_session::payload::{SessionTypeRequest, session_type};
use cortado_ssm_session::{AgentOptions, Command};
use serde_json::{Value, json};

use super::sessions::App;
use crate::api::ApiError;
use crate::iam::EXEC_ACTIONS;
use crate::shared::Inner;
use crate::world::{Task, World};

/// The agent version the sandbox's agent declares.
const AGENT_VERSION: &str = "3.3.0.0";

/// ECS's message when exec is off or its agent is not running (InvalidParameterException).
const NOT_ENABLED: &str = "The execute command failed because execute command was not enabled when the task was run or the execute command agent isn't running. Wait and try the command again or run a new task with execute command enabled and try again.";

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::client("InvalidParameterException", message)
}

fn short(s: &str) -> &str {
    s.rsplit('/').next().unwrap_or(s)
}

/// A running task of `cluster` and the container a session targets, checked as ECS checks
/// ExecuteCommand. Errors carry ECS's error codes.
fn exec_target<'a>(
    world: &'a World,
    cluster: &str,
    task: &str,
    container: Option<&str>,
) -> Result<(&'a Task, String), ApiError> {
    if world
        .clusters
        .get(cluster)
        .is_none_or(|c| c.status != "ACTIVE")
    {
        return Err(ApiError::client(
            "ClusterNotFoundException",
            "Cluster not found.",
        ));
    }
    let t = world
        .tasks
        .get(short(task))
        .filter(|t| t.cluster == cluster)
        .ok_or_else(|| invalid(format!("The specified task {task} was not found.")))?;
    let name = match container {
        Some(c) => t
            .containers
            .iter()
            .find(|x| x.name == c)
            .map(|x| x.name.clone())
            .ok_or_else(|| invalid(format!("The container {c} does not exist in the task.")))?,
        None if t.containers.len() == 1 => t.containers[0].name.clone(),
        None => {
            return Err(invalid(
                "A container name must be specified when the task has more than one container.",
            ));
        }
    };
    let agent_running = world
        .exec_agent(t)
        .is_some_and(|a| a["lastStatus"] == "RUNNING");
    if t.last_status != "RUNNING" || !agent_running {
        return Err(invalid(NOT_ENABLED));
    }
    // Without the ssmmessages permissions the agent never reaches Session Manager.
    let td = world.find_taskdef(&t.task_def_arn);
    let role = td
        .and_then(|d| d.get("taskRoleArn"))
        .and_then(Value::as_str)
        .unwrap_or("");
    let permitted = !role.is_empty()
        && EXEC_ACTIONS
            .iter()
            .all(|a| world.iam.decide(role, a) == Some("allowed"));
    if !permitted {
        return Err(ApiError::client(
            "TargetNotConnectedException",
            "The execute command failed due to an internal error. Try again later.",
        ));
    }
    Ok((t, name))
}

/// The plain `environment` of a container of the task's definition (never its secrets).
fn container_env(world: &World, t: &Task, container: &str) -> Vec<(String, String)> {
    world
        .find_taskdef(&t.task_def_arn)
        .and_then(|d| d.get("containerDefinitions"))
        .and_then(Value::as_array)
        .and_then(|cs| cs.iter().find(|c| c["name"] == container))
        .and_then(|c| c.get("environment"))
        .and_then(Value::as_array)
        .map(|env| {
            env.iter()
                .filter_map(|e| {
                    Some((
                        e.get("name")?.as_str()?.to_string(),
                        e.get("value")?.as_str()?.to_string(),
                    ))
                })
                .collect()
        })
        .unwrap_or_default()
}

fn kms_key(world: &World, cluster: &str) -> Option<String> {
    world
        .clusters
        .get(cluster)?
        .configuration
        .pointer("/executeCommandConfiguration/kmsKeyId")?
        .as_str()
        .map(str::to_string)
}

/// ECS `ExecuteCommand`.
pub fn execute_command(inner: &mut Inner, body: &Value) -> Result<Value, ApiError> {
    let s = |k: &str| body.get(k).and_then(Value::as_str);
    let cluster = short(s("cluster").unwrap_or("default")).to_string();
    let command = s("command").ok_or_else(|| invalid("command is required."))?;
    let task_id = s("task").ok_or_else(|| invalid("task is required."))?;
    if body.get("interactive").and_then(Value::as_bool) != Some(true) {
        return Err(invalid("Interactive is the only mode supported currently."));
    }
    let world = &inner.world;
    let (t, container) = exec_target(world, &cluster, task_id, s("container"))?;
    let c = t.containers.iter().find(|c| c.name == container);
    let runtime = c.map(|c| c.runtime_id.clone()).unwrap_or_default();
    let container_arn = world.arn(&format!("container/{cluster}/{}/{container}", t.id));
    let (task_arn, env) = (t.arn.clone(), container_env(world, t, &container));
    let hostname = format!("ip-{}.ec2.internal", t.ip.replace('.', "-"));
    let agent = AgentOptions {
        agent_version: AGENT_VERSION.into(),
        session_id: String::new(),
        target_id: format!("ecs:{cluster}_{}_{runtime}", t.id),
        session: SessionTypeRequest {
            session_type: session_type::INTERACTIVE_COMMANDS.into(),
            properties: json!({"commands": command}),
        },
        kms_key_id: kms_key(world, &cluster),
    };
    let cluster_arn = world.arn(&format!("cluster/{cluster}"));
    let t = t.clone();
    let fs = inner.exec.fs_of(&t, &container);
    let id = format!("ecs-execute-command-{}", cortado_ssm_session::random_hex(9));
    let app = App::Shell {
        command: command.to_string(),
        env,
        hostname,
        fs,
    };
    let mut agent = agent;
    agent.session_id = id.clone();
    let session = inner.exec.create(id, agent, app);
    Ok(json!({
        "clusterArn": cluster_arn, "containerArn": container_arn, "containerName": container,
        "interactive": true, "session": session, "taskArn": task_arn,
    }))
}

/// SSM's session operations; None for other SSM operations.
pub fn ssm(inner: &mut Inner, op: &str, body: &Value) -> Option<Result<Value, ApiError>> {
    match op {
        "StartSession" => Some(start_session(inner, body)),
        "ResumeSession" | "TerminateSession" => {
            let id = body.get("SessionId").and_then(Value::as_str).unwrap_or("");
            let base = inner.exec.url(id);
            let Some(e) = inner.exec.entries.get_mut(id).filter(|e| !e.ended) else {
                return Some(if op == "TerminateSession" {
                    Ok(json!({"SessionId": id}))
                } else {
                    Err(ApiError::client(
                        "DoesNotExistException",
                        format!("Session {id} does not exist or has ended."),
                    ))
                });
            };
            if op == "TerminateSession" {
                e.ended = true;
                if let Some(h) = &e.handle {
                    h.try_command(Command::CloseWhenDrained(String::new()));
                }
                return Some(Ok(json!({"SessionId": id})));
            }
            e.token = cortado_ssm_session::random_hex(32);
            Some(Ok(
                json!({"SessionId": id, "TokenValue": e.token, "StreamUrl": base}),
            ))
        }
        _ => None,
    }
}

fn param(body: &Value, name: &str) -> Option<String> {
    let v = body.get("Parameters")?.get(name)?;
    v.as_array()
        .and_then(|a| a.first())
        .and_then(Value::as_str)
        .or_else(|| v.as_str())
        .map(str::to_string)
}

fn start_session(inner: &mut Inner, body: &Value) -> Result<Value, ApiError> {
    let target = body.get("Target").and_then(Value::as_str).unwrap_or("");
    let not_connected =
        || ApiError::client("TargetNotConnected", format!("{target} is not connected."));
    let rest = target.strip_prefix("ecs:").ok_or_else(not_connected)?;
    let mut parts = rest.rsplitn(3, '_');
    let (runtime, task, cluster) = match (parts.next(), parts.next(), parts.next()) {
        (Some(r), Some(t), Some(c)) => (r, t, c),
        _ => return Err(not_connected()),
    };
    let world = &inner.world;
    let t = world
        .tasks
        .get(task)
        .filter(|t| t.cluster == cluster)
        .ok_or_else(not_connected)?;
    let container = t
        .containers
        .iter()
        .find(|c| c.runtime_id == runtime)
        .map(|c| c.name.clone())
        .ok_or_else(not_connected)?;
    exec_target(world, cluster, task, Some(&container)).map_err(|_| not_connected())?;
    let document = body.get("DocumentName").and_then(Value::as_str);
    let bad = |m: String| ApiError::client("InvalidParameters", m);
    let (properties, app, kind) = match document {
        Some(
            d @ ("AWS-StartPortForwardingSession" | "AWS-StartPortForwardingSessionToRemoteHost"),
        ) => {
            let port = param(body, "portNumber")
                .ok_or_else(|| bad(format!("{d} requires the parameter portNumber.")))?;
            let host = if d.ends_with("ToRemoteHost") {
                param(body, "host")
                    .ok_or_else(|| bad(format!("{d} requires the parameter host.")))?
            } else {
                "localhost".into()
            };
            let port_n: u16 = port
                .parse()
                .map_err(|_| bad(format!("portNumber {port:?} is not a port number.")))?;
            let mut props = json!({"portNumber": port, "type": "LocalPortForwarding"});
            if let Some(l) = param(body, "localPortNumber") {
                props["localPortNumber"] = json!(l);
            }
            if d.ends_with("ToRemoteHost") {
                props["host"] = json!(host);
            }
            (props, App::Port { host, port: port_n }, session_type::PORT)
        }
        None | Some("SSM-SessionManagerRunShell") => (
            Value::Null,
            shell_app(inner, task, &container, "sh"),
            session_type::STANDARD_STREAM,
        ),
        Some(d) => {
            return Err(ApiError::client(
                "InvalidDocument",
                format!(
                    "Document {d} is not supported by the sandbox (port forwarding and the shell are)."
                ),
            ));
        }
    };
    let id = format!("sandbox-{}", cortado_ssm_session::random_hex(9));
    let agent = AgentOptions {
        agent_version: AGENT_VERSION.into(),
        session_id: id.clone(),
        target_id: target.to_string(),
        session: SessionTypeRequest {
            session_type: kind.into(),
            properties,
        },
        kms_key_id: kms_key(&inner.world, cluster),
    };
    let s = inner.exec.create(id, agent, app);
    Ok(
        json!({"SessionId": s["sessionId"], "StreamUrl": s["streamUrl"], "TokenValue": s["tokenValue"]}),
    )
}

fn shell_app(inner: &mut Inner, task: &str, container: &str, command: &str) -> App {
    let t = inner.world.tasks.get(task).cloned();
    match t {
        Some(t) => App::Shell {
            command: command.into(),
            env: container_env(&inner.world, &t, container),
            hostname: format!("ip-{}.ec2.internal", t.ip.replace('.', "-")),
            fs: inner.exec.fs_of(&t, container),
        },
        None => App::Port {
            host: "invalid".into(),
            port: 0,
        },
    }
}
