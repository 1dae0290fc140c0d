//! ECS API operations: request validation, state changes on the [`World`], AWS-shaped JSON out.
//!
//! Receives an operation name (from `X-Amz-Target`) and its JSON body, already past API faults;
//! hands on the response body or an [`ApiError`] with ECS's exact error code. Member names follow
//! the aws-sdk-ecs 1.157 model; timestamps are epoch seconds.

use std::collections::BTreeSet;

use serde_json::{Map, Value, json};

use super::api::ApiError;
use super::taskdef;
use super::util::{Get, client, invalid, ts};
use super::world::{
    Binding, Deployment, Revision, Service, ServiceDeployment, Task, World, cb_threshold,
    service_key,
};

/// Tasks per service the sandbox accepts (ECS's default quota).
const MAX_DESIRED: i64 = 5000;

/// How long (virtual seconds after RUNNING) a one-off task's command runs when no fault of
/// its image says otherwise; then it exits 0.
pub const ONE_OFF_RUN: f64 = 5.0;

fn not_found_cluster() -> ApiError {
    ApiError::client("ClusterNotFoundException", "Cluster not found.")
}

fn not_found_service() -> ApiError {
    ApiError::client("ServiceNotFoundException", "Service not found.")
}

fn not_active() -> ApiError {
    ApiError::client("ServiceNotActiveException", "Service was not ACTIVE.")
}

/// Last path segment of an ARN-or-name.
fn short(s: &str) -> &str {
    s.rsplit('/').next().unwrap_or(s)
}

fn tags_of(v: &Value) -> Vec<Value> {
    v.get("tags")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

fn paginate(
    items: Vec<String>,
    body: &Value,
    max_cap: i64,
) -> Result<(Vec<String>, Option<String>), ApiError> {
    let max = body.int_opt("maxResults")?.unwrap_or(max_cap);
    if !(1..=max_cap).contains(&max) {
        return Err(invalid(format!(
            "maxResults must be between 1 and {max_cap}."
        )));
    }
    let start = match body.str_opt("nextToken")? {
        Some(t) => t
            .parse::<usize>()
            .map_err(|_| invalid("Invalid nextToken."))?,
        None => 0,
    };
    let end = start.saturating_add(max as usize).min(items.len());
    let page = items
        .get(start.min(items.len())..end)
        .map(<[String]>::to_vec)
        .unwrap_or_default();
    let next = (end < items.len()).then(|| end.to_string());
    Ok((page, next))
}

fn with_next(mut v: Value, next: Option<String>) -> Value {
    if let (Some(n), Some(obj)) = (next, v.as_object_mut()) {
        obj.insert("nextToken".into(), Value::String(n));
    }
    v
}

impl World {
    /// Dispatch one ECS operation.
    pub fn ecs(&mut self, op: &str, body: &Value) -> Result<Value, ApiError> {
        if !body.is_object() {
            return Err(ApiError::client(
                "SerializationException",
                "The request body must be a JSON object.",
            ));
        }
        match op {
            "CreateCluster" => self.create_cluster(body),
            "DescribeClusters" => self.describe_clusters(body),
            "ListClusters" => {
                let arns = self.clusters.values().map(|c| c.arn.clone()).collect();
                let (page, next) = paginate(arns, body, 100)?;
                Ok(with_next(json!({"clusterArns": page}), next))
            }
            "RegisterTaskDefinition" => self.register_task_definition(body),
            "DescribeTaskDefinition" => self.describe_task_definition(body),
            "ListTaskDefinitions" => self.list_task_definitions(body),
            "ListTaskDefinitionFamilies" => self.list_task_definition_families(body),
            "DeregisterTaskDefinition" => self.deregister_task_definition(body),
            "CreateService" => self.create_service(body),
            "UpdateService" => self.update_service(body),
            "DeleteService" => self.delete_service(body),
            "DescribeServices" => self.describe_services(body),
            "ListServices" => self.list_services(body),
            "ListTasks" => self.list_tasks(body),
            "DescribeTasks" => self.describe_tasks(body),
            "RunTask" => self.run_task(body),
            "StopTask" => self.stop_task_op(body),
            "ListServiceDeployments" => self.list_service_deployments(body),
            "DescribeServiceDeployments" => self.describe_service_deployments(body),
            "StopServiceDeployment" => self.stop_service_deployment(body),
            "ContinueServiceDeployment" => self.continue_service_deployment(body),
            "DescribeServiceRevisions" => self.describe_service_revisions(body),
            "CreateExpressGatewayService"
            | "UpdateExpressGatewayService"
            | "DescribeExpressGatewayService"
            | "DeleteExpressGatewayService" => self.express_op(op, body),
            "TagResource" => self.tag_resource(body),
            "UntagResource" => self.untag_resource(body),
            "ListTagsForResource" => {
                let arn = body.str_req("resourceArn")?;
                self.check_resource(&arn)?;
                Ok(json!({"tags": self.tags.get(&arn).cloned().unwrap_or_default()}))
            }
            _ => Err(ApiError::client(
                "UnknownOperationException",
                format!("The sandbox does not implement ECS operation {op}."),
            )),
        }
    }

    // ------------------------------------------------------------- clusters

    pub fn ensure_cluster(&mut self, name: &str) -> String {
        let arn = self.arn(&format!("cluster/{name}"));
        self.clusters
            .entry(name.to_string())
            .or_insert_with(|| super::world::Cluster {
                name: name.to_string(),
                arn: arn.clone(),
                status: "ACTIVE".into(),
                settings: json!([{"name": "containerInsights", "value": "disabled"}]),
                tags: Vec::new(),
                configuration: Value::Null,
            });
        arn
    }

    fn cluster_name(&self, body: &Value) -> Result<String, ApiError> {
        let raw = body.str_opt("cluster")?.unwrap_or_else(|| "default".into());
        let name = short(&raw).to_string();
        match self.clusters.get(&name) {
            Some(c) if c.status == "ACTIVE" => Ok(name),
            _ => Err(not_found_cluster()),
        }
    }

    fn describe_cluster(&self, name: &str) -> Value {
        let Some(c) = self.clusters.get(name) else {
            return Value::Null;
        };
        let (mut running, mut pending, mut services) = (0, 0, 0);
        for t in self.tasks.values().filter(|t| t.cluster == name) {
            match t.last_status.as_str() {
                "RUNNING" => running += 1,
                "PROVISIONING" | "PENDING" => pending += 1,
                _ => {}
            }
        }
        for s in self
            .services
            .values()
            .filter(|s| s.cluster == name && s.status == "ACTIVE")
        {
            let _ = s;
            services += 1;
        }
        let mut v = json!({
            "clusterArn": c.arn, "clusterName": c.name, "status": c.status,
            "registeredContainerInstancesCount": 0, "runningTasksCount": running,
            "pendingTasksCount": pending, "activeServicesCount": services,
            "statistics": [], "tags": c.tags, "settings": c.settings,
            "capacityProviders": ["FARGATE", "FARGATE_SPOT"], "defaultCapacityProviderStrategy": []
        });
        if c.configuration.is_object() {
            v["configuration"] = c.configuration.clone();
        }
        v
    }

    fn create_cluster(&mut self, body: &Value) -> Result<Value, ApiError> {
        let name = body
            .str_opt("clusterName")?
            .unwrap_or_else(|| "default".into());
        if name.is_empty()
            || name.len() > 255
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(invalid(
                "Cluster name must be 1-255 letters, numbers, hyphens and underscores.",
            ));
        }
        let arn = self.ensure_cluster(&name);
        let tags = tags_of(body);
        let configuration = body.get("configuration").cloned().unwrap_or(Value::Null);
        if let Some(c) = self.clusters.get_mut(&name) {
            c.status = "ACTIVE".into();
            if !tags.is_empty() {
                c.tags = tags.clone();
            }
            if configuration.is_object() {
                c.configuration = configuration;
            }
        }
        if !tags.is_empty() {
            self.tags.insert(arn, tags);
        }
        Ok(json!({"cluster": self.describe_cluster(&name)}))
    }

    fn describe_clusters(&mut self, body: &Value) -> Result<Value, ApiError> {
        let mut names = body.str_list("clusters")?;
        if names.is_empty() {
            names.push("default".into());
        }
        if names.len() > 100 {
            return Err(invalid("clusters can have at most 100 items."));
        }
        let mut clusters = Vec::new();
        let mut failures = Vec::new();
        for n in names {
            let name = short(&n).to_string();
            if self.clusters.contains_key(&name) {
                clusters.push(self.describe_cluster(&name));
            } else {
                failures.push(
                    json!({"arn": self.arn(&format!("cluster/{name}")), "reason": "MISSING"}),
                );
            }
        }
        Ok(json!({"clusters": clusters, "failures": failures}))
    }

    // ----------------------------------------------------- task definitions

    fn register_task_definition(&mut self, body: &Value) -> Result<Value, ApiError> {
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
        // "0.25 vCPU" -> "256", "1 GB" -> "1024", as ECS stores them.
        let cpu = sizes.cpu.map(|c| c.to_string());
        let memory = sizes.memory.map(|m| m.to_string());
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
        let revs = self.taskdefs.entry(family.clone()).or_default();
        let revision = revs.len() + 1;
        let arn = format!(
            "arn:aws:ecs:{}:{}:task-definition/{family}:{revision}",
            self.region, self.account
        );
        let mut td = Map::new();
        td.insert("taskDefinitionArn".into(), json!(arn));
        td.insert("containerDefinitions".into(), Value::Array(out_containers));
        td.insert("family".into(), json!(family));
        for k in ["taskRoleArn", "executionRoleArn"] {
            if let Some(v) = body.get(k) {
                td.insert(k.into(), v.clone());
            }
        }
        td.insert("networkMode".into(), json!(network_mode));
        td.insert("revision".into(), json!(revision));
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
        if network_mode == "awsvpc" && taskdef::fargate(body, &network_mode, sizes).is_ok() {
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
        let required = requires_attributes(&td);
        if !required.is_empty() {
            td.insert("requiresAttributes".into(), json!(required));
        }
        if !requires.is_empty() {
            td.insert("requiresCompatibilities".into(), json!(requires));
        }
        if let Some(c) = cpu {
            td.insert("cpu".into(), json!(c));
        }
        if let Some(m) = memory {
            td.insert("memory".into(), json!(m));
        }
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

    fn describe_task_definition(&mut self, body: &Value) -> Result<Value, ApiError> {
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

    fn list_task_definitions(&mut self, body: &Value) -> Result<Value, ApiError> {
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

    fn list_task_definition_families(&mut self, body: &Value) -> Result<Value, ApiError> {
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

    fn deregister_task_definition(&mut self, body: &Value) -> Result<Value, ApiError> {
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

    // -------------------------------------------------------------- services

    fn find_service(&self, cluster: &str, id: &str) -> Option<String> {
        let key = service_key(cluster, short(id));
        self.services.contains_key(&key).then_some(key)
    }

    fn active_service(&self, body: &Value) -> Result<String, ApiError> {
        let cluster = self.cluster_name(body)?;
        let id = body.str_req("service")?;
        let key = self
            .find_service(&cluster, &id)
            .ok_or_else(not_found_service)?;
        match self.services.get(&key) {
            Some(s) if s.status == "ACTIVE" => Ok(key),
            _ => Err(not_active()),
        }
    }

    fn validate_deployment_configuration(cfg: &Value) -> Result<Value, ApiError> {
        let mut out = match cfg {
            Value::Object(m) => m.clone(),
            Value::Null => Map::new(),
            _ => return Err(invalid("deploymentConfiguration must be an object.")),
        };
        let max = cfg.int_opt("maximumPercent")?.unwrap_or(200);
        let min = cfg.int_opt("minimumHealthyPercent")?.unwrap_or(100);
        if !(0..=100).contains(&min) {
            return Err(invalid("minimumHealthyPercent must be between 0 and 100."));
        }
        if max < 1 || max < min {
            return Err(invalid(
                "maximumPercent must be at least 1 and not below minimumHealthyPercent.",
            ));
        }
        out.insert("maximumPercent".into(), json!(max));
        out.insert("minimumHealthyPercent".into(), json!(min));
        out.entry("deploymentCircuitBreaker")
            .or_insert(json!({"enable": false, "rollback": false}));
        let strategy = cfg.str_opt("strategy")?.unwrap_or_else(|| "ROLLING".into());
        if !["ROLLING", "BLUE_GREEN", "LINEAR", "CANARY"].contains(&strategy.as_str()) {
            return Err(invalid(format!(
                "Invalid strategy '{strategy}': expected ROLLING, BLUE_GREEN, LINEAR or CANARY."
            )));
        }
        out.insert("strategy".into(), json!(strategy));
        // earlySuccessCriteria (AWS API reference, DeploymentEarlySuccessCriteria): rolling
        // deployments only; when enabled, healthyPercent (0-100, not below
        // minimumHealthyPercent) and sourceServiceRevisionCleanup are required.
        if let Some(esc) = cfg.get("earlySuccessCriteria").filter(|v| !v.is_null()) {
            let enabled = esc.get("enable").and_then(Value::as_bool).ok_or_else(|| {
                invalid("earlySuccessCriteria.enable is required and must be a boolean.")
            })?;
            if enabled {
                if strategy != "ROLLING" {
                    return Err(invalid(
                        "earlySuccessCriteria can only be used with the ROLLING deployment strategy.",
                    ));
                }
                let hp = esc.get("healthyPercent").and_then(Value::as_i64);
                if !hp.is_some_and(|h| (0..=100).contains(&h) && h >= min) {
                    return Err(invalid(
                        "earlySuccessCriteria.healthyPercent is required when enable is true, and must be between 0 and 100 and not below minimumHealthyPercent.",
                    ));
                }
                let cleanup = esc
                    .get("sourceServiceRevisionCleanup")
                    .and_then(Value::as_str);
                if !cleanup.is_some_and(|c| c == "BLOCKING" || c == "DEFERRED") {
                    return Err(invalid(
                        "earlySuccessCriteria.sourceServiceRevisionCleanup is required when enable is true, and must be BLOCKING or DEFERRED.",
                    ));
                }
            }
        }
        if let Some(b) = cfg.int_opt("bakeTimeInMinutes")?
            && !(0..=1440).contains(&b)
        {
            return Err(invalid("bakeTimeInMinutes must be between 0 and 1440."));
        }
        // CanaryConfiguration / LinearConfiguration (aws-sdk-ecs 1.157): percentages are
        // multiples of 0.1 from 0.1 (canary) or 3.0 (linear) to 100.0; bake times 0 to 1440.
        for (path, what, lo) in [
            (
                "/canaryConfiguration/canaryPercent",
                "canaryConfiguration.canaryPercent",
                0.1,
            ),
            (
                "/linearConfiguration/stepPercent",
                "linearConfiguration.stepPercent",
                3.0,
            ),
        ] {
            if let Some(v) = cfg.pointer(path)
                && !v.as_f64().is_some_and(|p| {
                    (lo..=100.0).contains(&p) && ((p * 10.0).round() - p * 10.0).abs() < 1e-6
                })
            {
                return Err(invalid(format!(
                    "{what} must be a multiple of 0.1 from {lo:.1} to 100.0."
                )));
            }
        }
        for (path, what) in [
            (
                "/canaryConfiguration/canaryBakeTimeInMinutes",
                "canaryConfiguration.canaryBakeTimeInMinutes",
            ),
            (
                "/linearConfiguration/stepBakeTimeInMinutes",
                "linearConfiguration.stepBakeTimeInMinutes",
            ),
        ] {
            if let Some(v) = cfg.pointer(path)
                && !v.as_i64().is_some_and(|m| (0..=1440).contains(&m))
            {
                return Err(invalid(format!("{what} must be between 0 and 1440.")));
            }
        }
        if let Some(hooks) = cfg.get("lifecycleHooks").filter(|v| !v.is_null()) {
            let hooks = hooks
                .as_array()
                .ok_or_else(|| invalid("lifecycleHooks must be a list."))?;
            for (i, h) in hooks.iter().enumerate() {
                validate_lifecycle_hook(i, h)?;
            }
        }
        Ok(Value::Object(out))
    }

    fn check_service_inputs(
        &self,
        td_arn: &str,
        launch_type: &str,
        network: &Value,
        lbs: &Value,
    ) -> Result<(), ApiError> {
        let td = self
            .find_taskdef(td_arn)
            .ok_or_else(|| client("Unable to describe task definition."))?;
        let mode = td
            .get("networkMode")
            .and_then(Value::as_str)
            .unwrap_or("bridge");
        if mode == "awsvpc" {
            let subnets = network
                .pointer("/awsvpcConfiguration/subnets")
                .and_then(Value::as_array);
            if subnets.is_none_or(|s| s.is_empty()) {
                return Err(invalid(
                    "Network Configuration must be provided when networkMode 'awsvpc' is specified.",
                ));
            }
        }
        if launch_type == "FARGATE" {
            let compat = td.get("compatibilities").and_then(Value::as_array);
            if !compat.is_some_and(|c| c.iter().any(|x| x == "FARGATE")) {
                return Err(invalid(
                    "Task definition does not support launch_type FARGATE.",
                ));
            }
        }
        for lb in lbs.as_array().into_iter().flatten() {
            for key in ["targetGroupArn", "advancedConfiguration"] {
                let arn = match key {
                    "targetGroupArn" => lb.get(key).and_then(Value::as_str),
                    _ => lb
                        .pointer("/advancedConfiguration/alternateTargetGroupArn")
                        .and_then(Value::as_str),
                };
                if let Some(arn) = arn
                    && self.canonical_tg(arn).is_none()
                {
                    return Err(invalid(format!(
                        "Unable to find target group {arn}. Create it first (ELBv2 CreateTargetGroup, or the sandbox seed)."
                    )));
                }
            }
            for key in ["productionListenerRule", "testListenerRule"] {
                if let Some(arn) = lb
                    .get("advancedConfiguration")
                    .and_then(|a| a.get(key))
                    .and_then(Value::as_str)
                    && self.elbv2.forward_weights(arn).is_none()
                {
                    return Err(invalid(format!(
                        "The listener rule {arn} ({key}) does not exist or has no forward action."
                    )));
                }
            }
            let cname = lb
                .get("containerName")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let cport = lb.get("containerPort").and_then(Value::as_i64).unwrap_or(0);
            let container = td
                .get("containerDefinitions")
                .and_then(Value::as_array)
                .and_then(|cs| {
                    cs.iter()
                        .find(|c| c.get("name").and_then(Value::as_str) == Some(cname))
                });
            let Some(container) = container else {
                return Err(invalid(format!(
                    "The container {cname} does not exist in the task definition."
                )));
            };
            let has_port = container
                .get("portMappings")
                .and_then(Value::as_array)
                .is_some_and(|pms| {
                    pms.iter()
                        .any(|p| p.get("containerPort").and_then(Value::as_i64) == Some(cport))
                });
            if !has_port {
                return Err(invalid(format!(
                    "The container {cname} does not have a container port {cport} in the task definition."
                )));
            }
        }
        Ok(())
    }

    fn new_revision(&mut self, key: &str) -> String {
        let digits = self.rng.digits(19);
        let Some(s) = self.services.get(key) else {
            return String::new();
        };
        let arn = self.arn(&format!(
            "service-revision/{}/{}/{digits}",
            s.cluster, s.name
        ));
        let images = self
            .find_taskdef(&s.task_def)
            .and_then(|td| {
                td.get("containerDefinitions")
                    .and_then(Value::as_array)
                    .cloned()
            })
            .unwrap_or_default()
            .iter()
            .map(|c| {
                let image = c.get("image").cloned().unwrap_or(Value::Null);
                let digest = format!("sha256:{}", simple_hash(image.as_str().unwrap_or("")));
                json!({"containerName": c.get("name"), "imageDigest": digest, "image": image})
            })
            .collect();
        let clusters_arn = self.arn(&format!("cluster/{}", s.cluster));
        let rev = Revision {
            arn: arn.clone(),
            service_arn: s.arn.clone(),
            cluster_arn: clusters_arn,
            task_def: s.task_def.clone(),
            launch_type: s.launch_type.clone(),
            platform_version: s.platform_version.clone(),
            network: s.network.clone(),
            load_balancers: s.load_balancers.clone(),
            images,
            created_at: self.now,
        };
        self.revisions.insert(arn.clone(), rev);
        arn
    }

    /// Start a new deployment of the service's current settings (one per Create/UpdateService).
    pub(crate) fn new_deployment(&mut self, key: &str) -> String {
        let now = self.now;
        let revision = self.new_revision(key);
        let id = format!("ecs-svc/{}", self.rng.digits(19));
        let sd_id = self.rng.hex(22);
        let sd_arn = {
            let Some(s) = self.services.get(key) else {
                return id;
            };
            self.arn(&format!(
                "service-deployment/{}/{}/{sd_id}",
                s.cluster, s.name
            ))
        };
        let (strategy, bindings) = self.plan_bindings(key);
        let Some(s) = self.services.get_mut(key) else {
            return id;
        };
        let mut sources = Vec::new();
        let mut superseded = Vec::new();
        for d in s.deployments.iter_mut() {
            d.status = "ACTIVE".into();
            d.launching = false;
            if !sources.contains(&d.revision) {
                sources.push(d.revision.clone());
            }
            superseded.push(d.sd.clone());
        }
        let cfg = s.deployment_configuration.clone();
        let cb_enabled = cfg
            .pointer("/deploymentCircuitBreaker/enable")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let alarms_enabled = cfg
            .pointer("/alarms/enable")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let threshold = cb_threshold(cfg.get("deploymentCircuitBreaker"), s.desired);
        s.deployments.insert(
            0,
            Deployment {
                id: id.clone(),
                status: "PRIMARY".into(),
                task_def: s.task_def.clone(),
                revision: revision.clone(),
                sd: sd_arn.clone(),
                desired: s.desired,
                failed_tasks: 0,
                created_at: now,
                updated_at: now,
                rollout_state: "IN_PROGRESS".into(),
                rollout_reason: Some(format!("ECS deployment {id} in progress.")),
                launch_type: s.launch_type.clone(),
                platform_version: s.platform_version.clone(),
                network: s.network.clone(),
                launching: true,
                strategy,
                bindings,
            },
        );
        s.current_sd = Some(sd_arn.clone());
        s.steady = false;
        s.next_launch_at = now;
        s.consecutive_failures = 0;
        let (service_arn, cluster) = (s.arn.clone(), s.cluster.clone());
        for arn in superseded {
            if let Some(sd) = self.sds.get_mut(&arn)
                && [
                    "PENDING",
                    "IN_PROGRESS",
                    "ROLLBACK_IN_PROGRESS",
                    "ROLLBACK_REQUESTED",
                ]
                .contains(&sd.status.as_str())
            {
                sd.status = "STOPPED".into();
                sd.status_reason =
                    Some("Stopped because a newer service deployment started.".into());
                sd.stopped_at = Some(now);
                sd.updated_at = now;
                sd.lifecycle_stage = None;
            }
        }
        let alarm_names = cfg
            .pointer("/alarms/alarmNames")
            .cloned()
            .unwrap_or(json!([]));
        let _ = alarm_names;
        let sd = ServiceDeployment {
            arn: sd_arn.clone(),
            service_key: key.to_string(),
            service_arn,
            cluster_arn: self.arn(&format!("cluster/{cluster}")),
            created_at: now,
            started_at: Some(now),
            finished_at: None,
            stopped_at: None,
            updated_at: now,
            target_revision: revision,
            source_revisions: sources,
            status: "IN_PROGRESS".into(),
            status_reason: None,
            lifecycle_stage: Some("RECONCILE_SERVICE".into()),
            hooks: Vec::new(),
            config: cfg,
            rollback: None,
            cb_status: if cb_enabled { "MONITORING" } else { "DISABLED" }.into(),
            cb_threshold: threshold,
            cb_failures: 0,
            alarms_status: if alarms_enabled {
                "MONITORING"
            } else {
                "DISABLED"
            }
            .into(),
            triggered_alarms: Vec::new(),
            deployment_id: id.clone(),
            bg: None,
        };
        self.sds.insert(sd_arn, sd);
        id
    }

    /// The strategy and target groups of a new deployment: blue/green-like strategies put the
    /// new tasks in the target group that is not serving; the first deployment always rolls.
    fn plan_bindings(&self, key: &str) -> (String, Vec<Binding>) {
        let Some(s) = self.services.get(key) else {
            return ("ROLLING".into(), Vec::new());
        };
        let prev = s.deployments.first();
        let configured = s
            .deployment_configuration
            .get("strategy")
            .and_then(Value::as_str)
            .unwrap_or("ROLLING");
        let strategy = if prev.is_some() {
            configured
        } else {
            "ROLLING"
        }
        .to_string();
        let mut out = Vec::new();
        for (i, lb) in s
            .load_balancers
            .as_array()
            .into_iter()
            .flatten()
            .enumerate()
        {
            let Some(tg) = lb
                .get("targetGroupArn")
                .and_then(Value::as_str)
                .and_then(|t| self.canonical_tg(t))
            else {
                continue;
            };
            let tg = tg.as_str();
            let adv = lb.get("advancedConfiguration");
            let field = |k: &str| {
                adv.and_then(|a| a.get(k))
                    .and_then(Value::as_str)
                    .map(str::to_string)
            };
            let alt = field("alternateTargetGroupArn").and_then(|a| self.canonical_tg(&a));
            let serving = prev
                .and_then(|p| p.bindings.get(i))
                .map(|b| b.tg.clone())
                .filter(|b| b == tg || Some(b) == alt.as_ref())
                .unwrap_or_else(|| tg.to_string());
            let (new_tg, other) = match &alt {
                Some(alt) if strategy != "ROLLING" => {
                    let next = if serving == tg {
                        alt.clone()
                    } else {
                        tg.to_string()
                    };
                    (next, Some(serving.clone()))
                }
                Some(alt) => (
                    serving.clone(),
                    Some(if serving == tg {
                        alt.clone()
                    } else {
                        tg.to_string()
                    }),
                ),
                None => (serving.clone(), None),
            };
            out.push(Binding {
                tg: new_tg,
                other,
                container: lb
                    .get("containerName")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string(),
                port: lb.get("containerPort").and_then(Value::as_i64).unwrap_or(0),
                prod_rule: field("productionListenerRule"),
                test_rule: field("testListenerRule"),
            });
        }
        (strategy, out)
    }

    /// The sandbox's ARN of a target group given by ARN (of any account) or name.
    fn canonical_tg(&self, arn: &str) -> Option<String> {
        self.elbv2.find_target_group(arn).or_else(|| {
            let name = arn
                .split_once(":targetgroup/")
                .map(|(_, r)| r.split('/').next().unwrap_or(r))?;
            self.elbv2.find_target_group(name)
        })
    }

    fn create_service(&mut self, body: &Value) -> Result<Value, ApiError> {
        let cluster = self.cluster_name(body)?;
        let name = body.str_req("serviceName")?;
        if name.len() > 255
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(invalid(
                "Service name must be 1-255 letters, numbers, hyphens and underscores.",
            ));
        }
        let key = service_key(&cluster, &name);
        if self
            .services
            .get(&key)
            .is_some_and(|s| s.status != "INACTIVE")
        {
            return Err(invalid("Creation of service was not idempotent."));
        }
        let controller = body
            .get("deploymentController")
            .cloned()
            .unwrap_or(json!({"type": "ECS"}));
        let ctype = controller
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or("ECS")
            .to_string();
        let td_id = body.str_opt("taskDefinition")?;
        let td = match (&td_id, ctype.as_str()) {
            (Some(id), _) => self.resolve_taskdef(id)?,
            (None, "EXTERNAL") => String::new(),
            (None, _) => return Err(invalid("TaskDefinition must be specified.")),
        };
        let scheduling = body
            .str_opt("schedulingStrategy")?
            .unwrap_or_else(|| "REPLICA".into());
        let desired = body
            .int_opt("desiredCount")?
            .unwrap_or(if scheduling == "DAEMON" { 1 } else { 0 });
        if !(0..=MAX_DESIRED).contains(&desired) {
            return Err(invalid("desiredCount must be between 0 and 5000."));
        }
        let providers: Vec<&str> = body
            .get("capacityProviderStrategy")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|i| i.get("capacityProvider").and_then(Value::as_str))
            .collect();
        if !providers.is_empty() && body.str_opt("launchType")?.is_some() {
            return Err(invalid(
                "Specifying both a launch type and capacity provider strategy is not supported. Remove one and try again.",
            ));
        }
        let launch_type = body.str_opt("launchType")?.unwrap_or_else(|| {
            if body.get("capacityProviderStrategy").is_some() {
                String::new()
            } else {
                "EC2".into()
            }
        });
        // A strategy of FARGATE providers places tasks on Fargate: the task definition must
        // be Fargate-compatible as for launchType FARGATE.
        let placed_on = match providers.first() {
            Some(p) if p.starts_with("FARGATE") => "FARGATE",
            _ => launch_type.as_str(),
        };
        let network = body
            .get("networkConfiguration")
            .cloned()
            .unwrap_or(Value::Null);
        let lbs = body.get("loadBalancers").cloned().unwrap_or(json!([]));
        if !td.is_empty() {
            self.check_service_inputs(&td, placed_on, &network, &lbs)?;
        }
        let cfg = Self::validate_deployment_configuration(
            body.get("deploymentConfiguration").unwrap_or(&Value::Null),
        )?;
        let platform_version = body
            .str_opt("platformVersion")?
            .or_else(|| (launch_type == "FARGATE").then(|| "LATEST".to_string()));
        let mut extra = Map::new();
        for k in [
            "capacityProviderStrategy",
            "placementConstraints",
            "placementStrategy",
            "serviceRegistries",
            "propagateTags",
            "enableECSManagedTags",
            "enableExecuteCommand",
            "role",
            "serviceConnectConfiguration",
            "volumeConfigurations",
            "availabilityZoneRebalancing",
        ] {
            if let Some(v) = body.get(k) {
                extra.insert(k.into(), v.clone());
            }
        }
        let arn = self.arn(&format!("service/{cluster}/{name}"));
        let svc = Service {
            key: key.clone(),
            name: name.clone(),
            arn: arn.clone(),
            cluster: cluster.clone(),
            status: "ACTIVE".into(),
            desired,
            task_def: td,
            launch_type,
            platform_version,
            deployment_configuration: cfg,
            network,
            load_balancers: lbs,
            grace: body.int_opt("healthCheckGracePeriodSeconds")?.unwrap_or(0),
            scheduling,
            controller,
            created_at: self.now,
            events: Default::default(),
            deployments: Vec::new(),
            current_sd: None,
            stable_revision: None,
            extra,
            next_launch_at: self.now,
            consecutive_failures: 0,
            steady: false,
            reconcile_at: None,
            rollback_sd: None,
            task_ids: Vec::new(),
        };
        // Tasks of an earlier incarnation with this name are forgotten by the scheduler.
        self.services.insert(key.clone(), svc);
        let tags = tags_of(body);
        if !tags.is_empty() {
            self.tags.insert(arn, tags);
        }
        if ctype != "EXTERNAL" {
            self.new_deployment(&key);
        }
        // Production and test traffic start on the primary target group.
        let bindings = self
            .services
            .get(&key)
            .and_then(|s| s.deployments.first())
            .map(|d| d.bindings.clone())
            .unwrap_or_default();
        for b in bindings {
            let mut weights = vec![(b.tg.clone(), 100)];
            if let Some(o) = &b.other {
                weights.push((o.clone(), 0));
            }
            for rule in [&b.prod_rule, &b.test_rule].into_iter().flatten() {
                let _ = self.elbv2.set_forward_weights(rule, &weights);
            }
        }
        self.reconcile(&key);
        self.check_alarms();
        Ok(json!({"service": self.describe_service(&key, false)}))
    }

    fn update_service(&mut self, body: &Value) -> Result<Value, ApiError> {
        let key = self.active_service(body)?;
        let Some(cur) = self.services.get(&key).cloned() else {
            return Err(not_found_service());
        };
        let ctype = cur
            .controller
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or("ECS")
            .to_string();
        let mut new_deploy = body.bool_opt("forceNewDeployment")?.unwrap_or(false);
        let mut td = cur.task_def.clone();
        if let Some(id) = body.str_opt("taskDefinition")? {
            let arn = self.resolve_taskdef(&id)?;
            if arn != cur.task_def {
                if ctype == "CODE_DEPLOY" {
                    return Err(invalid(
                        "Unable to update task definition on services with a CODE_DEPLOY deployment controller. Use AWS CodeDeploy to trigger a new deployment.",
                    ));
                }
                new_deploy = true;
            }
            td = arn;
        }
        let desired = match body.int_opt("desiredCount")? {
            Some(d) if !(0..=MAX_DESIRED).contains(&d) => {
                return Err(invalid("desiredCount must be between 0 and 5000."));
            }
            Some(d) => d,
            None => cur.desired,
        };
        let mut network = cur.network.clone();
        if let Some(n) = body.get("networkConfiguration") {
            if *n != network {
                new_deploy = true;
            }
            network = n.clone();
        }
        let mut lbs = cur.load_balancers.clone();
        if let Some(l) = body.get("loadBalancers") {
            if *l != lbs {
                new_deploy = true;
            }
            lbs = l.clone();
        }
        let mut platform_version = cur.platform_version.clone();
        if let Some(p) = body.str_opt("platformVersion")? {
            if Some(&p) != platform_version.as_ref() {
                new_deploy = true;
            }
            platform_version = Some(p);
        }
        let mut cfg = cur.deployment_configuration.clone();
        if let Some(c) = body.get("deploymentConfiguration") {
            let mut merged = cfg.as_object().cloned().unwrap_or_default();
            for (k, v) in c.as_object().cloned().unwrap_or_default() {
                merged.insert(k, v);
            }
            cfg = Self::validate_deployment_configuration(&Value::Object(merged))?;
        }
        if td != cur.task_def
            || body.get("networkConfiguration").is_some()
            || body.get("loadBalancers").is_some()
        {
            self.check_service_inputs(&td, &cur.launch_type, &network, &lbs)?;
        }
        for k in [
            "capacityProviderStrategy",
            "serviceRegistries",
            "volumeConfigurations",
            "serviceConnectConfiguration",
        ] {
            if let Some(v) = body.get(k)
                && cur.extra.get(k) != Some(v)
            {
                new_deploy = true;
            }
        }
        let grace = body.int_opt("healthCheckGracePeriodSeconds")?;
        let Some(s) = self.services.get_mut(&key) else {
            return Err(not_found_service());
        };
        for k in [
            "capacityProviderStrategy",
            "placementConstraints",
            "placementStrategy",
            "serviceRegistries",
            "propagateTags",
            "enableECSManagedTags",
            "enableExecuteCommand",
            "serviceConnectConfiguration",
            "volumeConfigurations",
            "availabilityZoneRebalancing",
        ] {
            if let Some(v) = body.get(k) {
                s.extra.insert(k.into(), v.clone());
            }
        }
        if let Some(g) = grace {
            s.grace = g;
        }
        if desired != s.desired {
            s.steady = false;
        }
        s.desired = desired;
        s.task_def = td;
        s.network = network;
        s.load_balancers = lbs;
        s.platform_version = platform_version;
        s.deployment_configuration = cfg;
        if let Some(p) = s.deployments.first_mut() {
            p.desired = desired;
        }
        if new_deploy && ctype == "ECS" {
            self.new_deployment(&key);
        }
        self.reconcile(&key);
        self.check_alarms();
        Ok(json!({"service": self.describe_service(&key, false)}))
    }

    fn delete_service(&mut self, body: &Value) -> Result<Value, ApiError> {
        let cluster = self.cluster_name(body)?;
        let id = body.str_req("service")?;
        let key = self
            .find_service(&cluster, &id)
            .ok_or_else(not_found_service)?;
        let force = body.bool_opt("force")?.unwrap_or(false);
        let Some(s) = self.services.get_mut(&key) else {
            return Err(not_found_service());
        };
        if s.status != "ACTIVE" {
            return Err(not_active());
        }
        if s.desired > 0 && !force {
            return Err(invalid(
                "The service cannot be stopped while it is scaled above 0.",
            ));
        }
        s.status = "DRAINING".into();
        s.desired = 0;
        self.reconcile(&key);
        Ok(json!({"service": self.describe_service(&key, false)}))
    }

    fn describe_services(&mut self, body: &Value) -> Result<Value, ApiError> {
        let cluster = self.cluster_name(body)?;
        let names = body.str_list("services")?;
        if names.is_empty() {
            return Err(invalid("Services cannot be empty."));
        }
        if names.len() > 10 {
            return Err(invalid(
                "Invalid parameter: services can have at most 10 items.",
            ));
        }
        let tags = body.str_list("include")?.iter().any(|i| i == "TAGS");
        let mut services = Vec::new();
        let mut failures = Vec::new();
        for n in names {
            match self.find_service(&cluster, &n) {
                Some(key) => services.push(self.describe_service(&key, tags)),
                None => failures.push(json!({
                    "arn": if n.starts_with("arn:") { n.clone() } else { self.arn(&format!("service/{cluster}/{n}")) },
                    "reason": "MISSING"
                })),
            }
        }
        Ok(json!({"services": services, "failures": failures}))
    }

    fn list_services(&mut self, body: &Value) -> Result<Value, ApiError> {
        let cluster = self.cluster_name(body)?;
        let launch = body.str_opt("launchType")?;
        let sched = body.str_opt("schedulingStrategy")?;
        let arns: Vec<String> = self
            .services
            .values()
            .filter(|s| s.cluster == cluster && s.status != "INACTIVE")
            .filter(|s| launch.as_ref().is_none_or(|l| *l == s.launch_type))
            .filter(|s| sched.as_ref().is_none_or(|l| *l == s.scheduling))
            .map(|s| s.arn.clone())
            .collect();
        let (page, next) = paginate(arns, body, 100)?;
        Ok(with_next(json!({"serviceArns": page}), next))
    }

    fn counts(&self, key: &str, dep: Option<&str>) -> (i64, i64) {
        let (mut running, mut pending) = (0, 0);
        for t in self.svc_tasks(key) {
            if dep.is_some() && t.deployment.as_deref() != dep {
                continue;
            }
            match t.last_status.as_str() {
                "RUNNING" => running += 1,
                "PROVISIONING" | "PENDING" | "ACTIVATING" => pending += 1,
                _ => {}
            }
        }
        (running, pending)
    }

    pub fn describe_service(&self, key: &str, with_tags: bool) -> Value {
        let Some(s) = self.services.get(key) else {
            return Value::Null;
        };
        let (running, pending) = self.counts(key, None);
        let deployments: Vec<Value> = s
            .deployments
            .iter()
            .map(|d| {
                let (r, p) = self.counts(key, Some(&d.id));
                let mut v = json!({
                    "id": d.id, "status": d.status, "taskDefinition": d.task_def,
                    "desiredCount": d.desired, "pendingCount": p, "runningCount": r,
                    "failedTasks": d.failed_tasks, "createdAt": ts(d.created_at), "updatedAt": ts(d.updated_at),
                    "rolloutState": d.rollout_state,
                });
                if !d.launch_type.is_empty() {
                    v["launchType"] = json!(d.launch_type);
                }
                if let Some(pv) = &d.platform_version {
                    v["platformVersion"] = json!(pv);
                    v["platformFamily"] = json!("Linux");
                }
                if !d.network.is_null() {
                    v["networkConfiguration"] = d.network.clone();
                }
                if let Some(r) = &d.rollout_reason {
                    v["rolloutStateReason"] = json!(r);
                }
                v
            })
            .collect();
        let revs: Vec<Value> = s
            .deployments
            .iter()
            .map(|d| {
                let (r, p) = self.counts(key, Some(&d.id));
                json!({"arn": d.revision, "requestedTaskCount": d.desired, "runningTaskCount": r, "pendingTaskCount": p})
            })
            .collect();
        let mut v = json!({
            "serviceArn": s.arn, "serviceName": s.name,
            "clusterArn": self.arn(&format!("cluster/{}", s.cluster)),
            "loadBalancers": s.load_balancers,
            "serviceRegistries": s.extra.get("serviceRegistries").cloned().unwrap_or(json!([])),
            "status": s.status, "desiredCount": s.desired, "runningCount": running, "pendingCount": pending,
            "taskDefinition": s.task_def, "deploymentConfiguration": s.deployment_configuration,
            "deployments": deployments, "events": s.events, "createdAt": ts(s.created_at),
            "placementConstraints": s.extra.get("placementConstraints").cloned().unwrap_or(json!([])),
            "placementStrategy": s.extra.get("placementStrategy").cloned().unwrap_or(json!([])),
            "schedulingStrategy": s.scheduling, "deploymentController": s.controller,
            "createdBy": format!("arn:aws:iam::{}:root", self.account),
            "enableECSManagedTags": s.extra.get("enableECSManagedTags").cloned().unwrap_or(json!(false)),
            "propagateTags": s.extra.get("propagateTags").cloned().unwrap_or(json!("NONE")),
            "enableExecuteCommand": s.extra.get("enableExecuteCommand").cloned().unwrap_or(json!(false)),
            "currentServiceRevisions": revs,
        });
        if !s.launch_type.is_empty() {
            v["launchType"] = json!(s.launch_type);
        }
        if let Some(pv) = &s.platform_version {
            v["platformVersion"] = json!(pv);
            v["platformFamily"] = json!("Linux");
        }
        if !s.network.is_null() {
            v["networkConfiguration"] = s.network.clone();
        }
        if s.grace > 0 || s.load_balancers.as_array().is_some_and(|a| !a.is_empty()) {
            v["healthCheckGracePeriodSeconds"] = json!(s.grace);
        }
        if let Some(sd) = &s.current_sd {
            v["currentServiceDeployment"] = json!(sd);
        }
        for k in [
            "capacityProviderStrategy",
            "role",
            "availabilityZoneRebalancing",
            "resourceManagementType",
        ] {
            if let Some(x) = s.extra.get(k) {
                v[if k == "role" { "roleArn" } else { k }] = x.clone();
            }
        }
        if with_tags {
            v["tags"] = json!(self.tags.get(&s.arn).cloned().unwrap_or_default());
        }
        v
    }

    // ----------------------------------------------------------------- tasks

    fn list_tasks(&mut self, body: &Value) -> Result<Value, ApiError> {
        let cluster = self.cluster_name(body)?;
        let service = match body.str_opt("serviceName")? {
            Some(n) => Some(
                self.find_service(&cluster, &n)
                    .ok_or_else(not_found_service)?,
            ),
            None => None,
        };
        let desired = body
            .str_opt("desiredStatus")?
            .unwrap_or_else(|| "RUNNING".into());
        if !["RUNNING", "PENDING", "STOPPED"].contains(&desired.as_str()) {
            return Err(invalid(
                "desiredStatus must be RUNNING, PENDING or STOPPED.",
            ));
        }
        let started_by = body.str_opt("startedBy")?;
        let family = body.str_opt("family")?;
        let mut tasks: Vec<&Task> = self
            .tasks
            .values()
            .filter(|t| t.cluster == cluster)
            .filter(|t| {
                service
                    .as_ref()
                    .is_none_or(|k| t.service.as_ref() == Some(k))
            })
            .filter(|t| match desired.as_str() {
                "STOPPED" => t.desired_status == "STOPPED",
                "PENDING" => t.live() && t.last_status != "RUNNING",
                _ => t.live(),
            })
            .filter(|t| {
                started_by
                    .as_ref()
                    .is_none_or(|b| t.started_by.as_ref() == Some(b))
            })
            .filter(|t| {
                family
                    .as_ref()
                    .is_none_or(|f| t.task_def_arn.contains(&format!("task-definition/{f}:")))
            })
            .collect();
        tasks.sort_by(|a, b| a.created_at.total_cmp(&b.created_at).then(a.id.cmp(&b.id)));
        let arns = tasks.iter().map(|t| t.arn.clone()).collect();
        let (page, next) = paginate(arns, body, 100)?;
        Ok(with_next(json!({"taskArns": page}), next))
    }

    fn describe_tasks(&mut self, body: &Value) -> Result<Value, ApiError> {
        let cluster = self.cluster_name(body)?;
        let ids = body.str_list("tasks")?;
        if ids.is_empty() {
            return Err(invalid("Tasks cannot be empty."));
        }
        if ids.len() > 100 {
            return Err(invalid(
                "Invalid parameter: tasks can have at most 100 items.",
            ));
        }
        let tags = body.str_list("include")?.iter().any(|i| i == "TAGS");
        let mut tasks = Vec::new();
        let mut failures = Vec::new();
        for id in ids {
            match self.tasks.get(short(&id)).filter(|t| t.cluster == cluster) {
                Some(t) => tasks.push(self.describe_task(t, tags)),
                None => failures.push(json!({
                    "arn": if id.starts_with("arn:") { id.clone() } else { self.arn(&format!("task/{cluster}/{id}")) },
                    "reason": "MISSING"
                })),
            }
        }
        Ok(json!({"tasks": tasks, "failures": failures}))
    }

    /// The ExecuteCommandAgent of a task's containers (`managedAgents`), when exec is on:
    /// PENDING until the task runs, RUNNING while it does (or what the `exec.agent` fault
    /// says), STOPPED once it stops.
    pub fn exec_agent(&self, t: &Task) -> Option<Value> {
        if !t.exec_enabled {
            return None;
        }
        let status = match t.last_status.as_str() {
            "RUNNING" => self
                .faults
                .exec
                .agent
                .clone()
                .unwrap_or_else(|| "RUNNING".into()),
            "PROVISIONING" | "PENDING" | "ACTIVATING" => "PENDING".into(),
            _ => "STOPPED".into(),
        };
        let mut a = json!({"name": "ExecuteCommandAgent", "lastStatus": status});
        if let Some(at) = t.started_at.filter(|_| status == "RUNNING") {
            a["lastStartedAt"] = json!(ts(at));
        }
        Some(a)
    }

    pub fn describe_task(&self, t: &Task, with_tags: bool) -> Value {
        let subnet = t
            .service
            .as_ref()
            .and_then(|k| self.services.get(k))
            .and_then(|s| {
                s.network
                    .pointer("/awsvpcConfiguration/subnets/0")
                    .and_then(Value::as_str)
                    .map(str::to_string)
            })
            .unwrap_or_else(|| "subnet-0sandbox".into());
        let attach_id = format!(
            "{}-{}",
            &t.id[..8.min(t.id.len())],
            "0000-4000-8000-sandbox00000"
        );
        let attach_status = match t.last_status.as_str() {
            "PROVISIONING" => "PRECREATED",
            "DEPROVISIONING" => "DETACHING",
            "STOPPED" => "DELETED",
            _ => "ATTACHED",
        };
        let containers: Vec<Value> = t
            .containers
            .iter()
            .map(|c| {
                let mut v = json!({
                    "containerArn": self.arn(&format!("container/{}/{}/{}", t.cluster, t.id, c.name)),
                    "taskArn": t.arn, "name": c.name, "image": c.image, "lastStatus": c.last_status,
                    "networkBindings": [],
                    "networkInterfaces": [{"attachmentId": attach_id, "privateIpv4Address": t.ip}],
                    "cpu": "0",
                });
                if !c.runtime_id.is_empty() {
                    v["runtimeId"] = json!(c.runtime_id);
                    v["imageDigest"] = json!(format!("sha256:{}", simple_hash(&c.image)));
                }
                if let Some(code) = c.exit_code {
                    v["exitCode"] = json!(code);
                }
                if let Some(r) = &c.reason {
                    v["reason"] = json!(r);
                }
                if let Some(h) = &c.health {
                    v["healthStatus"] = json!(h);
                }
                if let Some(agent) = self.exec_agent(t) {
                    v["managedAgents"] = json!([agent]);
                }
                v
            })
            .collect();
        let version = match t.last_status.as_str() {
            "PROVISIONING" => 1,
            "PENDING" => 2,
            "RUNNING" => 3 + i64::from(t.health != "UNKNOWN"),
            "DEACTIVATING" | "STOPPING" => 5,
            "DEPROVISIONING" => 6,
            _ => 7,
        };
        let mut v = json!({
            "attachments": [{
                "id": attach_id, "type": "ElasticNetworkInterface", "status": attach_status,
                "details": [
                    {"name": "subnetId", "value": subnet},
                    {"name": "networkInterfaceId", "value": t.eni},
                    {"name": "macAddress", "value": "0e:00:00:00:00:01"},
                    {"name": "privateDnsName", "value": format!("ip-{}.ec2.internal", t.ip.replace('.', "-"))},
                    {"name": "privateIPv4Address", "value": t.ip},
                ]
            }],
            "attributes": [{"name": "ecs.cpu-architecture", "value": cpu_architecture(self.find_taskdef(&t.task_def_arn))}],
            "availabilityZone": t.az,
            "clusterArn": self.arn(&format!("cluster/{}", t.cluster)),
            "connectivity": if t.last_status == "PROVISIONING" { "DISCONNECTED" } else { "CONNECTED" },
            "containers": containers,
            "createdAt": ts(t.created_at),
            "desiredStatus": t.desired_status,
            "enableExecuteCommand": t.exec_enabled,
            "group": t.group,
            "healthStatus": t.health,
            "lastStatus": t.last_status,
            "overrides": overrides_of(t),
            "taskArn": t.arn,
            "taskDefinitionArn": t.task_def_arn,
            "version": version,
            "ephemeralStorage": {"sizeInGiB": 20},
        });
        if !t.launch_type.is_empty() {
            v["launchType"] = json!(t.launch_type);
        }
        if t.launch_type == "FARGATE" {
            v["platformVersion"] = json!("1.4.0");
            v["platformFamily"] = json!("Linux");
        }
        if let Some(c) = &t.cpu {
            v["cpu"] = json!(c);
        }
        if let Some(m) = &t.memory {
            v["memory"] = json!(m);
        }
        let opt = [
            ("pullStartedAt", t.pull_started_at),
            ("pullStoppedAt", t.pull_stopped_at),
            ("startedAt", t.started_at),
            ("connectivityAt", t.pull_started_at),
            ("stoppingAt", t.stopping_at),
            ("stoppedAt", t.stopped_at),
            (
                "executionStoppedAt",
                t.execution_stopped_at.or(t.stopped_at),
            ),
        ];
        for (k, val) in opt {
            if let Some(x) = val {
                v[k] = ts(x);
            }
        }
        if let Some(b) = &t.started_by {
            v["startedBy"] = json!(b);
        }
        if let Some(cp) = &t.capacity_provider {
            v["capacityProviderName"] = json!(cp);
        }
        if let Some(c) = &t.stop_code {
            v["stopCode"] = json!(c);
        }
        if let Some(r) = &t.stopped_reason {
            v["stoppedReason"] = json!(r);
        }
        if with_tags {
            v["tags"] = json!(t.tags);
        }
        v
    }

    fn run_task(&mut self, body: &Value) -> Result<Value, ApiError> {
        let cluster = self.cluster_name(body)?;
        let td_id = body.str_req("taskDefinition")?;
        let td = self.resolve_taskdef(&td_id)?;
        let count = body.int_opt("count")?.unwrap_or(1);
        if !(1..=10).contains(&count) {
            return Err(invalid("count must be between 1 and 10."));
        }
        let strategy = body
            .get("capacityProviderStrategy")
            .and_then(Value::as_array)
            .filter(|a| !a.is_empty());
        let capacity_provider = match strategy {
            Some(items) => {
                if body.str_opt("launchType")?.is_some() {
                    return Err(invalid(
                        "Specifying both a launch type and capacity provider strategy is not supported. Remove one and try again.",
                    ));
                }
                // Placement by weight is not modelled: the first provider with a base, else
                // the heaviest one, takes the task.
                let chosen = items
                    .iter()
                    .find(|i| i.get("base").and_then(Value::as_i64).unwrap_or(0) > 0)
                    .or_else(|| {
                        items
                            .iter()
                            .max_by_key(|i| i.get("weight").and_then(Value::as_i64).unwrap_or(0))
                    })
                    .and_then(|v| v.get("capacityProvider"))
                    .and_then(Value::as_str);
                match chosen {
                    Some(c) => Some(c.to_string()),
                    None => {
                        return Err(invalid(
                            "capacityProviderStrategy items need a capacityProvider.",
                        ));
                    }
                }
            }
            None => None,
        };
        let launch_type = match &capacity_provider {
            Some(cp) if cp.starts_with("FARGATE") => "FARGATE".to_string(),
            Some(_) => "EC2".to_string(),
            None => body.str_opt("launchType")?.unwrap_or_else(|| "EC2".into()),
        };
        let network = body
            .get("networkConfiguration")
            .cloned()
            .unwrap_or(Value::Null);
        self.check_service_inputs(&td, &launch_type, &network, &json!([]))?;
        let overrides = body.get("overrides").cloned().unwrap_or(Value::Null);
        let container_names: Vec<String> = self
            .find_taskdef(&td)
            .and_then(|t| t.get("containerDefinitions"))
            .and_then(Value::as_array)
            .map(|cs| {
                cs.iter()
                    .filter_map(|c| c.get("name").and_then(Value::as_str).map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        for o in overrides
            .get("containerOverrides")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            match o.get("name").and_then(Value::as_str) {
                Some(n) if container_names.iter().any(|c| c == n) => {}
                Some(n) => {
                    return Err(invalid(format!(
                        "Override for container named {n} is not a container in the TaskDefinition."
                    )));
                }
                None => return Err(invalid("Container overrides must name a container.")),
            }
        }
        let family = td
            .rsplit_once(":task-definition/")
            .map(|(_, r)| r)
            .and_then(|r| r.rsplit_once(':'))
            .map(|(f, _)| f.to_string())
            .unwrap_or_default();
        let group = body
            .str_opt("group")?
            .unwrap_or_else(|| format!("family:{family}"));
        let started_by = body.str_opt("startedBy")?;
        let tags = tags_of(body);
        let mut out = Vec::new();
        for _ in 0..count {
            let id = self.start_task(
                &cluster,
                None,
                &group,
                started_by.clone(),
                None,
                &td,
                &launch_type,
                tags.clone(),
            );
            if let Some(t) = self.tasks.get_mut(&id) {
                // A one-off task runs its command to completion, as a migration does: its
                // essential container exits 0 ONE_OFF_RUN seconds after RUNNING, unless a
                // fault of its image says otherwise (exit-, crash-, pull-fail).
                if t.plan.crash.is_none() && t.plan.pull_fail.is_none() {
                    t.plan.crash = Some((ONE_OFF_RUN, 0));
                }
                t.overrides = overrides.clone();
                t.capacity_provider = capacity_provider.clone();
                t.exec_enabled = body
                    .get("enableExecuteCommand")
                    .and_then(Value::as_bool)
                    .unwrap_or(false);
                for o in overrides
                    .get("containerOverrides")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    let name = o.get("name").and_then(Value::as_str);
                    let command = o.get("command").and_then(Value::as_array);
                    if let (Some(name), Some(command)) = (name, command)
                        && let Some(c) = t.containers.iter_mut().find(|c| c.name == name)
                    {
                        c.command = command
                            .iter()
                            .filter_map(|x| x.as_str().map(str::to_string))
                            .collect();
                    }
                }
            }
            if let Some(t) = self.tasks.get(&id) {
                out.push(self.describe_task(t, false));
            }
        }
        Ok(json!({"tasks": out, "failures": []}))
    }

    fn stop_task_op(&mut self, body: &Value) -> Result<Value, ApiError> {
        let cluster = self.cluster_name(body)?;
        let id = body.str_req("task")?;
        let id = short(&id).to_string();
        if self.tasks.get(&id).is_none_or(|t| t.cluster != cluster) {
            return Err(invalid("The referenced task was not found."));
        }
        let reason = body
            .str_opt("reason")?
            .unwrap_or_else(|| "Task stopped by user".into());
        self.stop_task(&id, "UserInitiated", &reason, false);
        if let Some(key) = self.tasks.get(&id).and_then(|t| t.service.clone()) {
            self.reconcile(&key);
        }
        let t = self
            .tasks
            .get(&id)
            .map(|t| self.describe_task(t, false))
            .unwrap_or(Value::Null);
        Ok(json!({"task": t}))
    }

    // --------------------------------------------------- service deployments

    fn revision_summary(&self, sd: &ServiceDeployment, rev: &str) -> Value {
        let mut requested = 0;
        let (mut running, mut pending) = (0, 0);
        if let Some(s) = self.services.get(&sd.service_key) {
            for d in s.deployments.iter().filter(|d| d.revision == rev) {
                requested += d.desired;
                let (r, p) = self.counts(&sd.service_key, Some(&d.id));
                running += r;
                pending += p;
            }
        }
        json!({"arn": rev, "requestedTaskCount": requested, "runningTaskCount": running, "pendingTaskCount": pending})
    }

    pub fn describe_sd(&self, sd: &ServiceDeployment) -> Value {
        let failures = self
            .services
            .get(&sd.service_key)
            .and_then(|s| {
                s.deployments
                    .iter()
                    .find(|d| d.sd == sd.arn && d.revision == sd.target_revision)
            })
            .map(|d| d.failed_tasks)
            .unwrap_or(sd.cb_failures);
        let mut v = json!({
            "serviceDeploymentArn": sd.arn, "serviceArn": sd.service_arn, "clusterArn": sd.cluster_arn,
            "createdAt": ts(sd.created_at), "updatedAt": ts(sd.updated_at),
            "sourceServiceRevisions": sd.source_revisions.iter().map(|r| self.revision_summary(sd, r)).collect::<Vec<_>>(),
            "targetServiceRevision": self.revision_summary(sd, &sd.target_revision),
            "status": sd.status,
            "deploymentConfiguration": sd.config,
            "deploymentCircuitBreaker": {"status": sd.cb_status, "failureCount": failures, "threshold": sd.cb_threshold},
        });
        if sd.alarms_status != "DISABLED" {
            v["alarms"] = json!({
                "status": sd.alarms_status,
                "alarmNames": sd.config.pointer("/alarms/alarmNames").cloned().unwrap_or(json!([])),
                "triggeredAlarmNames": sd.triggered_alarms,
            });
        } else {
            v["alarms"] = json!({"status": "DISABLED"});
        }
        for (k, t) in [
            ("startedAt", sd.started_at),
            ("finishedAt", sd.finished_at),
            ("stoppedAt", sd.stopped_at),
        ] {
            if let Some(t) = t {
                v[k] = ts(t);
            }
        }
        if let Some(r) = &sd.status_reason {
            v["statusReason"] = json!(r);
        }
        if let Some(l) = &sd.lifecycle_stage {
            v["lifecycleStage"] = json!(l);
        }
        if !sd.hooks.is_empty() {
            let hooks: Vec<Value> = sd
                .hooks
                .iter()
                .map(|h| {
                    let mut v = json!({"hookId": h.hook_id, "targetType": h.target_type, "status": h.status,
                        "expiresAt": ts(h.expires_at), "timeoutAction": h.timeout_action});
                    if let Some(a) = &h.target_arn {
                        v["targetArn"] = json!(a);
                    }
                    v
                })
                .collect();
            v["lifecycleHookDetails"] = json!(hooks);
        }
        if let Some(r) = &sd.rollback {
            v["rollback"] = r.clone();
        }
        v
    }

    fn list_service_deployments(&mut self, body: &Value) -> Result<Value, ApiError> {
        let cluster = self.cluster_name(body)?;
        let id = body.str_req("service")?;
        let key = self
            .find_service(&cluster, &id)
            .ok_or_else(not_found_service)?;
        let statuses = body.str_list("status")?;
        let after = body.pointer("/createdAt/after").and_then(Value::as_f64);
        let before = body.pointer("/createdAt/before").and_then(Value::as_f64);
        let mut sds: Vec<&ServiceDeployment> = self
            .sds
            .values()
            .filter(|sd| sd.service_key == key)
            .filter(|sd| statuses.is_empty() || statuses.contains(&sd.status))
            .filter(|sd| {
                after.is_none_or(|a| sd.created_at >= a)
                    && before.is_none_or(|b| sd.created_at <= b)
            })
            .collect();
        sds.sort_by(|a, b| b.created_at.total_cmp(&a.created_at));
        let arns: Vec<String> = sds.iter().map(|s| s.arn.clone()).collect();
        let (page, next) = paginate(arns, body, 100)?;
        let briefs: Vec<Value> = page
            .iter()
            .filter_map(|a| self.sds.get(a))
            .map(|sd| {
                let mut v = json!({
                    "serviceDeploymentArn": sd.arn, "serviceArn": sd.service_arn, "clusterArn": sd.cluster_arn,
                    "createdAt": ts(sd.created_at), "targetServiceRevisionArn": sd.target_revision, "status": sd.status,
                });
                if let Some(t) = sd.started_at {
                    v["startedAt"] = ts(t);
                }
                if let Some(t) = sd.finished_at {
                    v["finishedAt"] = ts(t);
                }
                if let Some(r) = &sd.status_reason {
                    v["statusReason"] = json!(r);
                }
                v
            })
            .collect();
        Ok(with_next(json!({"serviceDeployments": briefs}), next))
    }

    fn describe_service_deployments(&mut self, body: &Value) -> Result<Value, ApiError> {
        let arns = body.str_list("serviceDeploymentArns")?;
        if arns.is_empty() {
            return Err(invalid("serviceDeploymentArns cannot be empty."));
        }
        if arns.len() > 20 {
            return Err(invalid(
                "Invalid parameter: serviceDeploymentArns can have at most 20 items.",
            ));
        }
        let mut out = Vec::new();
        let mut failures = Vec::new();
        for a in arns {
            match self.sds.get(&a) {
                Some(sd) => out.push(self.describe_sd(sd)),
                None => failures.push(json!({"arn": a, "reason": "MISSING"})),
            }
        }
        Ok(json!({"serviceDeployments": out, "failures": failures}))
    }

    fn stop_service_deployment(&mut self, body: &Value) -> Result<Value, ApiError> {
        let arn = body.str_req("serviceDeploymentArn")?;
        let stop_type = body
            .str_opt("stopType")?
            .unwrap_or_else(|| "ROLLBACK".into());
        if stop_type != "ROLLBACK" && stop_type != "ABORT" {
            return Err(invalid("stopType must be ROLLBACK or ABORT."));
        }
        let sd = self.sds.get(&arn).cloned().ok_or_else(|| {
            ApiError::client(
                "ServiceDeploymentNotFoundException",
                "The service deployment does not exist.",
            )
        })?;
        if sd.status != "IN_PROGRESS" && sd.status != "PENDING" {
            return Err(ApiError::client(
                "ConflictException",
                format!(
                    "The service deployment is {} and cannot be stopped.",
                    sd.status
                ),
            ));
        }
        let key = sd.service_key.clone();
        let is_primary = self
            .services
            .get(&key)
            .and_then(|s| s.deployments.first())
            .is_some_and(|d| d.sd == arn);
        if !is_primary {
            return Err(ApiError::client(
                "ConflictException",
                "The service deployment is no longer the current one.",
            ));
        }
        let now = self.now;
        let bg = self
            .services
            .get(&key)
            .and_then(|s| s.deployments.first())
            .is_some_and(|d| {
                d.strategy != "ROLLING" && !d.strategy.is_empty() && s_has_blue(self, &key)
            });
        if stop_type == "ROLLBACK" && bg {
            self.rollback_bg(
                &key,
                "rollback requested",
                "Service deployment rolled back because of a StopServiceDeployment request.",
            );
        } else if stop_type == "ROLLBACK" {
            let stable = self
                .services
                .get(&key)
                .and_then(|s| s.stable_revision.clone());
            let prev = self.completed_deployment(&key);
            let stable = stable.filter(|r| *r != sd.target_revision);
            if prev.is_none() && stable.is_none() {
                return Err(ApiError::client(
                    "ConflictException",
                    "There is no successful service revision to roll back to.",
                ));
            }
            if let Some(d) = self
                .services
                .get_mut(&key)
                .and_then(|s| s.deployments.first_mut())
            {
                d.rollout_state = "FAILED".into();
                d.rollout_reason = Some(
                    "Service deployment rolled back by a StopServiceDeployment request.".into(),
                );
                d.updated_at = now;
            }
            if let Some(x) = self.sds.get_mut(&arn) {
                x.status = "ROLLBACK_REQUESTED".into();
            }
            let reason =
                "Service deployment rolled back because of a StopServiceDeployment request.";
            match (prev, stable) {
                // As the circuit breaker does: the source revision's deployment (same id) goes
                // from COMPLETED back to IN_PROGRESS.
                (Some(prev), _) => self.roll_back_to_deployment(&key, &prev, reason),
                // The source revision's deployment has already left `deployments[]` (ECS keeps
                // finished ones only briefly): a new deployment of the source revision, the
                // sandbox's shape before it rolled back as ECS does. Not confirmed in AWS docs.
                (None, Some(rev)) => self.start_rollback(&key, &rev, reason),
                (None, None) => {}
            }
        } else {
            let name = self
                .services
                .get(&key)
                .map(|s| s.name.clone())
                .unwrap_or_default();
            if let Some(d) = self
                .services
                .get_mut(&key)
                .and_then(|s| s.deployments.first_mut())
            {
                d.rollout_state = "FAILED".into();
                d.rollout_reason =
                    Some("Service deployment stopped by a StopServiceDeployment request.".into());
                d.launching = false;
                d.updated_at = now;
                let id = d.id.clone();
                self.new_event(
                    &key,
                    format!("(service {name}) (deployment {id}) deployment stopped."),
                );
            }
            if let Some(x) = self.sds.get_mut(&arn) {
                x.status = "STOPPED".into();
                x.status_reason =
                    Some("Service deployment stopped by a StopServiceDeployment request.".into());
                x.stopped_at = Some(now);
                x.updated_at = now;
                x.lifecycle_stage = None;
            }
            self.reconcile(&key);
        }
        Ok(json!({"serviceDeploymentArn": arn}))
    }

    fn continue_service_deployment(&mut self, body: &Value) -> Result<Value, ApiError> {
        let arn = body.str_req("serviceDeploymentArn")?;
        let action = body.str_opt("action")?.unwrap_or_else(|| "CONTINUE".into());
        if action != "CONTINUE" && action != "ROLLBACK" {
            return Err(invalid("action must be CONTINUE or ROLLBACK."));
        }
        // hookId is a required member of ContinueServiceDeploymentRequest (aws-sdk-ecs 1.157).
        let hook_id = body.str_req("hookId")?;
        self.continue_hook(&arn, &hook_id, &action)?;
        Ok(json!({"serviceDeploymentArn": arn}))
    }

    fn describe_service_revisions(&mut self, body: &Value) -> Result<Value, ApiError> {
        let arns = body.str_list("serviceRevisionArns")?;
        if arns.is_empty() || arns.len() > 20 {
            return Err(invalid(
                "serviceRevisionArns must have between 1 and 20 items.",
            ));
        }
        let mut out = Vec::new();
        let mut failures = Vec::new();
        for a in arns {
            match self.revisions.get(&a) {
                Some(r) => {
                    let mut v = json!({
                        "serviceRevisionArn": r.arn, "serviceArn": r.service_arn, "clusterArn": r.cluster_arn,
                        "taskDefinition": r.task_def, "loadBalancers": r.load_balancers,
                        "containerImages": r.images, "createdAt": ts(r.created_at), "guardDutyEnabled": false,
                    });
                    if !r.launch_type.is_empty() {
                        v["launchType"] = json!(r.launch_type);
                    }
                    if let Some(p) = &r.platform_version {
                        v["platformVersion"] = json!(p);
                        v["platformFamily"] = json!("Linux");
                    }
                    if !r.network.is_null() {
                        v["networkConfiguration"] = r.network.clone();
                    }
                    out.push(v);
                }
                None => failures.push(json!({"arn": a, "reason": "MISSING"})),
            }
        }
        Ok(json!({"serviceRevisions": out, "failures": failures}))
    }

    // ------------------------------------------------------------------ tags

    fn check_resource(&self, arn: &str) -> Result<(), ApiError> {
        let known = self.clusters.values().any(|c| c.arn == arn)
            || self.services.values().any(|s| s.arn == arn)
            || self.tasks.values().any(|t| t.arn == arn)
            || self.find_taskdef(arn).is_some()
            || self.tags.contains_key(arn);
        if known {
            Ok(())
        } else {
            Err(invalid("The specified resource could not be found."))
        }
    }

    fn tag_resource(&mut self, body: &Value) -> Result<Value, ApiError> {
        let arn = body.str_req("resourceArn")?;
        self.check_resource(&arn)?;
        let new = tags_of(body);
        let list = self.tags.entry(arn).or_default();
        for t in new {
            let key = t.get("key").cloned();
            list.retain(|x| x.get("key") != key.as_ref());
            list.push(t);
        }
        Ok(json!({}))
    }

    fn untag_resource(&mut self, body: &Value) -> Result<Value, ApiError> {
        let arn = body.str_req("resourceArn")?;
        self.check_resource(&arn)?;
        let keys = body.str_list("tagKeys")?;
        if let Some(list) = self.tags.get_mut(&arn) {
            list.retain(|x| {
                !x.get("key")
                    .and_then(Value::as_str)
                    .is_some_and(|k| keys.iter().any(|y| y == k))
            });
        }
        Ok(json!({}))
    }
}

/// One `deploymentConfiguration.lifecycleHooks[]` entry, as DeploymentLifecycleHook documents
/// it (aws-sdk-ecs 1.157): targetType AWS_LAMBDA (the default) or PAUSE; lifecycleStages
/// required; hookTargetArn required for AWS_LAMBDA; "PAUSE hooks cannot be configured at
/// TEST_TRAFFIC_SHIFT or PRODUCTION_TRAFFIC_SHIFT stages"; timeout action CONTINUE or ROLLBACK.
/// The task attribute `ecs.cpu-architecture` ("Amazon ECS container instance attributes":
/// `x86_64` or `arm64`) for the task definition's `runtimePlatform.cpuArchitecture`.
fn cpu_architecture(td: Option<&Value>) -> &'static str {
    match td
        .and_then(|td| td.pointer("/runtimePlatform/cpuArchitecture"))
        .and_then(Value::as_str)
    {
        Some("ARM64") => "arm64",
        _ => "x86_64",
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

fn validate_lifecycle_hook(i: usize, h: &Value) -> Result<(), ApiError> {
    const STAGES: [&str; 8] = [
        "RECONCILE_SERVICE",
        "PRE_SCALE_UP",
        "POST_SCALE_UP",
        "TEST_TRAFFIC_SHIFT",
        "POST_TEST_TRAFFIC_SHIFT",
        "PRE_PRODUCTION_TRAFFIC_SHIFT",
        "PRODUCTION_TRAFFIC_SHIFT",
        "POST_PRODUCTION_TRAFFIC_SHIFT",
    ];
    let at = format!("lifecycleHooks[{i}]");
    if !h.is_object() {
        return Err(invalid(format!("{at} must be an object.")));
    }
    let target = h
        .str_opt("targetType")?
        .unwrap_or_else(|| "AWS_LAMBDA".into());
    if target != "AWS_LAMBDA" && target != "PAUSE" {
        return Err(invalid(format!(
            "{at}.targetType must be AWS_LAMBDA or PAUSE, got '{target}'."
        )));
    }
    let stages = h.str_list("lifecycleStages")?;
    if stages.is_empty() {
        return Err(invalid(format!("{at}.lifecycleStages is required.")));
    }
    for st in &stages {
        if !STAGES.contains(&st.as_str()) {
            return Err(invalid(format!(
                "{at}.lifecycleStages: '{st}' is not a lifecycle hook stage (expected one of {}).",
                STAGES.join(", ")
            )));
        }
        if target == "PAUSE" && (st == "TEST_TRAFFIC_SHIFT" || st == "PRODUCTION_TRAFFIC_SHIFT") {
            return Err(invalid(format!(
                "{at}: PAUSE hooks cannot be configured at the {st} stage."
            )));
        }
    }
    if target == "AWS_LAMBDA" && h.str_opt("hookTargetArn")?.is_none_or(|a| a.is_empty()) {
        return Err(invalid(format!(
            "{at}.hookTargetArn is required for an AWS_LAMBDA lifecycle hook."
        )));
    }
    if let Some(a) = h
        .pointer("/timeoutConfiguration/action")
        .filter(|v| !v.is_null())
        && a != "CONTINUE"
        && a != "ROLLBACK"
    {
        return Err(invalid(format!(
            "{at}.timeoutConfiguration.action must be CONTINUE or ROLLBACK."
        )));
    }
    Ok(())
}

fn s_has_blue(w: &World, key: &str) -> bool {
    w.services.get(key).is_some_and(|s| s.deployments.len() > 1)
}

/// A stable fake digest for an image reference (FNV-1a, widened).
pub fn simple_hash(s: &str) -> String {
    let mut out = String::new();
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for round in 0..4u8 {
        for b in s.bytes().chain([round]) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        out.push_str(&format!("{h:016x}"));
    }
    out
}

/// A task's `overrides` as DescribeTasks shows them: one `containerOverrides` entry per
/// container (its name, plus what RunTask overrode), and the task-level overrides given.
fn overrides_of(t: &Task) -> Value {
    let given = t
        .overrides
        .get("containerOverrides")
        .and_then(Value::as_array);
    let containers: Vec<Value> = t
        .containers
        .iter()
        .map(|c| {
            given
                .and_then(|g| {
                    g.iter()
                        .find(|o| o.get("name").and_then(Value::as_str) == Some(c.name.as_str()))
                })
                .cloned()
                .unwrap_or_else(|| json!({"name": c.name}))
        })
        .collect();
    let mut v = match &t.overrides {
        Value::Object(m) => Value::Object(m.clone()),
        _ => json!({}),
    };
    v["containerOverrides"] = json!(containers);
    if v.get("inferenceAcceleratorOverrides").is_none() {
        v["inferenceAcceleratorOverrides"] = json!([]);
    }
    v
}
