//! Task definitions: RegisterTaskDefinition (checked by [`super::taskdef`], stored as ECS
//! describes it), Describe, List, ListFamilies, Deregister, and how other operations resolve
//! `family`, `family:revision` or an ARN.

use std::collections::BTreeSet;

use serde_json::{Map, Value, json};

use super::{paginate, tags_of, taskdef, with_next};
use crate::api::ApiError;
use crate::util::{Get, client, invalid, ts};
use crate::world::World;

impl World {
    pub(super) fn register_task_definition(&mut self, body: &Value) -> Result<Value, ApiError> {
        let family = body.str_req("family")?;
        if family.len() > 255
            || !family
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(client(
                "Family contains invalid characters; up to 255 letters (uppercase and lowercase), numbers, hyphens, and underscores are allowed.",
            ));
        }
        let containers = match body.get("containerDefinitions") {
            Some(Value::Array(a)) if !a.is_empty() => a.clone(),
            _ => return Err(client("Container list cannot be empty.")),
        };
        let network_mode = body
            .str_opt("networkMode")?
            .unwrap_or_else(|| "bridge".into());
        if !["bridge", "host", "awsvpc", "none"].contains(&network_mode.as_str()) {
            return Err(client(format!("Invalid networkMode '{network_mode}'.")));
        }
        let requires = body.str_list("requiresCompatibilities")?;
        let sizes = taskdef::sizes(body)?;
        taskdef::namespace_modes(body)?;
        if requires.iter().any(|r| r == "FARGATE") {
            taskdef::fargate(body, &network_mode, sizes)?;
        }
        taskdef::container_memory(body, sizes.memory)?;
        let containers = container_definitions(containers, &network_mode)?;
        let revs = self.taskdefs.entry(family.clone()).or_default();
        let revision = revs.len() + 1;
        let arn = format!(
            "arn:aws:ecs:{}:{}:task-definition/{family}:{revision}",
            self.region, self.account
        );
        let mut td = Map::new();
        td.insert("taskDefinitionArn".into(), json!(arn));
        td.insert("containerDefinitions".into(), Value::Array(containers));
        td.insert("family".into(), json!(family));
        for k in ["taskRoleArn", "executionRoleArn"] {
            if let Some(v) = body.get(k) {
                td.insert(k.into(), v.clone());
            }
        }
        td.insert("networkMode".into(), json!(network_mode));
        td.insert("revision".into(), json!(revision));
        described_task_level(&mut td, body, &network_mode, sizes, &requires);
        td.insert("registeredAt".into(), ts(self.now));
        td.insert(
            "registeredBy".into(),
            json!(format!("arn:aws:iam::{}:root", self.account)),
        );
        let td = Value::Object(td);
        revs.push(td.clone());
        let tags = tags_of(body);
        if !tags.is_empty() {
            self.tags.insert(arn, tags.clone());
        }
        let mut out = json!({"taskDefinition": td});
        if !tags.is_empty() {
            out["tags"] = json!(tags);
        }
        Ok(out)
    }

    /// Resolve `family`, `family:rev` or an ARN to the task definition ARN.
    pub fn resolve_taskdef(&self, id: &str) -> Result<String, ApiError> {
        let missing = || client("Unable to describe task definition.");
        let rest = id
            .rsplit_once(":task-definition/")
            .map(|(_, r)| r)
            .unwrap_or(id);
        match rest.rsplit_once(':') {
            Some((family, rev)) => {
                let rev: usize = rev.parse().map_err(|_| missing())?;
                let td = self
                    .taskdefs
                    .get(family)
                    .and_then(|v| v.get(rev.wrapping_sub(1)))
                    .ok_or_else(missing)?;
                Ok(td
                    .get("taskDefinitionArn")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string())
            }
            None => {
                let revs = self.taskdefs.get(rest).ok_or_else(missing)?;
                revs.iter()
                    .rev()
                    .find(|td| td.get("status").and_then(Value::as_str) == Some("ACTIVE"))
                    .and_then(|td| td.get("taskDefinitionArn").and_then(Value::as_str))
                    .map(str::to_string)
                    .ok_or_else(missing)
            }
        }
    }

    pub(super) fn describe_task_definition(&mut self, body: &Value) -> Result<Value, ApiError> {
        let id = body.str_req("taskDefinition")?;
        let arn = self.resolve_taskdef(&id)?;
        let td = self
            .find_taskdef(&arn)
            .cloned()
            .ok_or_else(|| client("Unable to describe task definition."))?;
        let mut out = json!({"taskDefinition": td});
        if body.str_list("include")?.iter().any(|i| i == "TAGS") {
            out["tags"] = json!(self.tags.get(&arn).cloned().unwrap_or_default());
        }
        Ok(out)
    }

    pub(super) fn list_task_definitions(&mut self, body: &Value) -> Result<Value, ApiError> {
        let prefix = body.str_opt("familyPrefix")?;
        let status = body.str_opt("status")?.unwrap_or_else(|| "ACTIVE".into());
        let sort = body.str_opt("sort")?.unwrap_or_else(|| "ASC".into());
        if sort != "ASC" && sort != "DESC" {
            return Err(invalid("sort must be ASC or DESC."));
        }
        let mut arns: Vec<String> = Vec::new();
        for (family, revs) in &self.taskdefs {
            // familyPrefix matches the whole family name, as on AWS.
            if prefix.as_ref().is_some_and(|p| p != family) {
                continue;
            }
            for td in revs {
                if td.get("status").and_then(Value::as_str) == Some(status.as_str()) {
                    arns.push(
                        td.get("taskDefinitionArn")
                            .and_then(Value::as_str)
                            .unwrap_or_default()
                            .to_string(),
                    );
                }
            }
        }
        if sort == "DESC" {
            arns.reverse();
        }
        let (page, next) = paginate(arns, body, 100)?;
        Ok(with_next(json!({"taskDefinitionArns": page}), next))
    }

    pub(super) fn list_task_definition_families(
        &mut self,
        body: &Value,
    ) -> Result<Value, ApiError> {
        let prefix = body.str_opt("familyPrefix")?.unwrap_or_default();
        let status = body.str_opt("status")?.unwrap_or_else(|| "ACTIVE".into());
        let fams: Vec<String> = self
            .taskdefs
            .iter()
            .filter(|(f, _)| f.starts_with(&prefix))
            .filter(|(_, revs)| {
                let active = revs
                    .iter()
                    .any(|t| t.get("status").and_then(Value::as_str) == Some("ACTIVE"));
                match status.as_str() {
                    "ACTIVE" => active,
                    "INACTIVE" => !active,
                    _ => true,
                }
            })
            .map(|(f, _)| f.clone())
            .collect();
        let (page, next) = paginate(fams, body, 100)?;
        Ok(with_next(json!({"families": page}), next))
    }

    pub(super) fn deregister_task_definition(&mut self, body: &Value) -> Result<Value, ApiError> {
        let id = body.str_req("taskDefinition")?;
        let rest = id
            .rsplit_once(":task-definition/")
            .map(|(_, r)| r)
            .unwrap_or(&id);
        if !rest.contains(':') {
            return Err(client(
                "The specified task definition identifier is invalid. Specify a valid revision.",
            ));
        }
        let arn = self.resolve_taskdef(&id)?;
        let now = self.now;
        let (family, rev) = arn
            .rsplit_once(":task-definition/")
            .map(|(_, r)| r)
            .and_then(|r| r.rsplit_once(':'))
            .unwrap_or_default();
        let rev: usize = rev.parse().unwrap_or(0);
        let td = self
            .taskdefs
            .get_mut(family)
            .and_then(|v| v.get_mut(rev.wrapping_sub(1)))
            .ok_or_else(|| client("Unable to describe task definition."))?;
        td["status"] = json!("INACTIVE");
        td["deregisteredAt"] = ts(now);
        Ok(json!({"taskDefinition": td.clone()}))
    }

    /// DeleteTaskDefinitions: 1 to 10 revisions; each INACTIVE one becomes
    /// DELETE_IN_PROGRESS, any other is a failure of its own (ECS deletes deregistered
    /// revisions only). The sandbox never removes one for good.
    pub(super) fn delete_task_definitions(&mut self, body: &Value) -> Result<Value, ApiError> {
        let ids = body.str_list("taskDefinitions")?;
        if ids.is_empty() || ids.len() > 10 {
            return Err(client(
                "taskDefinitions must hold 1 to 10 task definitions.",
            ));
        }
        let (mut done, mut failures) = (Vec::new(), Vec::new());
        for id in ids {
            let Ok(arn) = self.resolve_taskdef(&id) else {
                failures.push(json!({"arn": id, "reason": "TASK_DEFINITION_NOT_FOUND"}));
                continue;
            };
            let (family, rev) = arn
                .rsplit_once(":task-definition/")
                .map(|(_, r)| r)
                .and_then(|r| r.rsplit_once(':'))
                .unwrap_or_default();
            let rev: usize = rev.parse().unwrap_or(0);
            let Some(td) = self
                .taskdefs
                .get_mut(family)
                .and_then(|v| v.get_mut(rev.wrapping_sub(1)))
            else {
                failures.push(json!({"arn": arn, "reason": "TASK_DEFINITION_NOT_FOUND"}));
                continue;
            };
            match td["status"].as_str() {
                Some("INACTIVE") | Some("DELETE_IN_PROGRESS") => {
                    td["status"] = json!("DELETE_IN_PROGRESS");
                    done.push(td.clone());
                }
                _ => failures.push(json!({
                    "arn": arn,
                    "reason": "The specified task definition is still in ACTIVE status. Please deregister the target and try again.",
                })),
            }
        }
        Ok(json!({"taskDefinitions": done, "failures": failures}))
    }
}

/// The container-instance attributes a task definition needs (`requiresAttributes`, read
/// only), for the features this sandbox tells apart. Names as ECS returns them (the ECS
/// agent's capability names, as DescribeTaskDefinition shows them); Docker Remote API
/// versions as the ContainerDefinition reference states them (`logConfiguration` needs 1.18,
/// its options 1.19). An ECR image or awslogs logs with an execution role add their
/// `execution-role-*` capability. Sorted, no duplicates.
fn requires_attributes(td: &Map<String, Value>) -> Vec<Value> {
    let mut names = BTreeSet::new();
    let execution_role = td.contains_key("executionRoleArn");
    if td.contains_key("taskRoleArn") {
        names.insert("com.amazonaws.ecs.capability.task-iam-role");
    }
    if td.get("networkMode").and_then(Value::as_str) == Some("awsvpc") {
        names.insert("ecs.capability.task-eni");
    }
    let containers = td
        .get("containerDefinitions")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    for c in containers {
        let image = c.get("image").and_then(Value::as_str).unwrap_or_default();
        if image.contains(".dkr.ecr.") && image.contains(".amazonaws.com") {
            names.insert("com.amazonaws.ecs.capability.ecr-auth");
            if execution_role {
                names.insert("ecs.capability.execution-role-ecr-pull");
            }
        }
        if let Some(log) = c.get("logConfiguration") {
            names.insert("com.amazonaws.ecs.capability.docker-remote-api.1.18");
            names.insert("com.amazonaws.ecs.capability.docker-remote-api.1.19");
            if log.get("logDriver").and_then(Value::as_str) == Some("awslogs") {
                names.insert("com.amazonaws.ecs.capability.logging-driver.awslogs");
                if execution_role {
                    names.insert("ecs.capability.execution-role-awslogs");
                }
            }
        }
        if c.get("healthCheck").is_some() {
            names.insert("ecs.capability.container-health-check");
        }
        for s in c
            .get("secrets")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default()
        {
            let from = s
                .get("valueFrom")
                .and_then(Value::as_str)
                .unwrap_or_default();
            if from.starts_with("arn:aws:secretsmanager:") {
                names.insert("ecs.capability.secrets.asm.environment-variables");
            } else {
                names.insert("ecs.capability.secrets.ssm.environment-variables");
            }
        }
    }
    names.into_iter().map(|n| json!({"name": n})).collect()
}

/// The container definitions as ECS stores them: names and images checked, names unique,
/// at least one essential container, and the defaults ECS fills in (cpu 0, essential,
/// port mappings' protocol and, in awsvpc mode, host port, empty lists).
fn container_definitions(
    containers: Vec<Value>,
    network_mode: &str,
) -> Result<Vec<Value>, ApiError> {
    let mut names = BTreeSet::new();
    let mut out_containers = Vec::new();
    let mut any_essential = false;
    for c in containers {
        let Value::Object(mut c) = c else {
            return Err(client("Each container definition must be an object."));
        };
        let cv = Value::Object(c.clone());
        let name = cv.str_opt("name")?.unwrap_or_default();
        if name.is_empty() {
            return Err(client("Container.name should not be null or empty."));
        }
        if cv.str_opt("image")?.is_none_or(|i| i.is_empty()) {
            return Err(client("Container.image should not be null or empty."));
        }
        if !names.insert(name.clone()) {
            return Err(client(format!("Duplicate container name found: {name}.")));
        }
        c.entry("cpu").or_insert(json!(0));
        let essential = c
            .entry("essential")
            .or_insert(json!(true))
            .as_bool()
            .unwrap_or(true);
        any_essential |= essential;
        if let Some(Value::Array(pms)) = c.get_mut("portMappings") {
            for pm in pms.iter_mut() {
                if let Some(pm) = pm.as_object_mut() {
                    let port = pm.get("containerPort").cloned();
                    if network_mode == "awsvpc"
                        && let Some(p) = port
                    {
                        pm.entry("hostPort").or_insert(p);
                    }
                    pm.entry("protocol").or_insert(json!("tcp"));
                }
            }
        } else {
            c.insert("portMappings".into(), json!([]));
        }
        for k in [
            "environment",
            "mountPoints",
            "volumesFrom",
            "systemControls",
        ] {
            c.entry(k).or_insert(json!([]));
        }
        out_containers.push(Value::Object(c));
    }
    if !any_essential {
        return Err(client(
            "Task definition must have at least one essential container.",
        ));
    }
    Ok(out_containers)
}

/// The task-level members of a described task definition after `revision`: volumes,
/// status, placement constraints, compatibilities, the members echoed as given,
/// requiresAttributes, requiresCompatibilities and the sizes ("0.25 vCPU" -> "256",
/// "1 GB" -> "1024", as ECS stores them).
fn described_task_level(
    td: &mut Map<String, Value>,
    body: &Value,
    network_mode: &str,
    sizes: taskdef::Sizes,
    requires: &[String],
) {
    td.insert(
        "volumes".into(),
        body.get("volumes").cloned().unwrap_or(json!([])),
    );
    td.insert("status".into(), json!("ACTIVE"));
    td.insert(
        "placementConstraints".into(),
        body.get("placementConstraints")
            .cloned()
            .unwrap_or(json!([])),
    );
    let mut compat = vec!["EC2"];
    if network_mode == "awsvpc" && taskdef::fargate(body, network_mode, sizes).is_ok() {
        compat.push("FARGATE");
    }
    td.insert("compatibilities".into(), json!(compat));
    for k in [
        "runtimePlatform",
        "pidMode",
        "ipcMode",
        "proxyConfiguration",
        "inferenceAccelerators",
        "ephemeralStorage",
        "enableFaultInjection",
    ] {
        if let Some(v) = body.get(k) {
            td.insert(k.into(), v.clone());
        }
    }
    let required = requires_attributes(td);
    if !required.is_empty() {
        td.insert("requiresAttributes".into(), json!(required));
    }
    if !requires.is_empty() {
        td.insert("requiresCompatibilities".into(), json!(requires));
    }
    if let Some(c) = sizes.cpu {
        td.insert("cpu".into(), json!(c.to_string()));
    }
    if let Some(m) = sizes.memory {
        td.insert("memory".into(), json!(m.to_string()));
    }
}
