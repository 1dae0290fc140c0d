//! Tasks through the API: RunTask (one-off tasks, placed and started by the world),
//! StopTask, ListTasks, DescribeTasks, and a task as DescribeTasks shows it (containers,
//! attachments, the ExecuteCommandAgent).

use serde_json::{Value, json};

use super::{not_found_service, paginate, short, simple_hash, tags_of, with_next};
use crate::api::ApiError;
use crate::util::{Get, invalid, ts};
use crate::world::{Container, Task, World};

/// How long (virtual seconds after RUNNING) a one-off task's command runs when no fault of
/// its image says otherwise; then it exits 0.
pub const ONE_OFF_RUN: f64 = 5.0;

impl World {
    pub(super) fn list_tasks(&mut self, body: &Value) -> Result<Value, ApiError> {
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

    pub(super) fn describe_tasks(&mut self, body: &Value) -> Result<Value, ApiError> {
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
        let attach_id = format!(
            "{}-{}",
            &t.id[..8.min(t.id.len())],
            "0000-4000-8000-sandbox00000"
        );
        let containers: Vec<Value> = t
            .containers
            .iter()
            .map(|c| self.describe_container(t, c, &attach_id))
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
            "attachments": [self.task_attachment(t, &attach_id)],
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
        optional_task_members(&mut v, t, with_tags);
        v
    }

    /// A container of a task as DescribeTasks shows it.
    fn describe_container(&self, t: &Task, c: &Container, attach_id: &str) -> Value {
        let mut v = json!({
            "containerArn": self.arn(&format!("container/{}/{}/{}", t.cluster, t.id, c.name)),
            "taskArn": t.arn, "name": c.name, "image": c.image, "lastStatus": c.last_status,
            "networkBindings": [],
            "networkInterfaces": [{"attachmentId": attach_id, "privateIpv4Address": t.ip}],
            "cpu": "0",
        });
        if !c.runtime_id.is_empty() {
            v["runtimeId"] = json!(c.runtime_id);
            // The registry's digest of the image when it is the sandbox's ECR's; else one
            // derived from the reference (an image of another registry).
            let digest = c
                .digest
                .clone()
                .unwrap_or_else(|| format!("sha256:{}", simple_hash(&c.image)));
            v["imageDigest"] = json!(digest);
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
    }

    /// The task's elastic network interface attachment.
    fn task_attachment(&self, t: &Task, attach_id: &str) -> Value {
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
        let attach_status = match t.last_status.as_str() {
            "PROVISIONING" => "PRECREATED",
            "DEPROVISIONING" => "DETACHING",
            "STOPPED" => "DELETED",
            _ => "ATTACHED",
        };
        json!({
            "id": attach_id, "type": "ElasticNetworkInterface", "status": attach_status,
            "details": [
                {"name": "subnetId", "value": subnet},
                {"name": "networkInterfaceId", "value": t.eni},
                {"name": "macAddress", "value": "0e:00:00:00:00:01"},
                {"name": "privateDnsName", "value": format!("ip-{}.ec2.internal", t.ip.replace('.', "-"))},
                {"name": "privateIPv4Address", "value": t.ip},
            ]
        })
    }

    /// RunTask, idempotent by `clientToken` as ECS documents it: up to 64 ASCII characters
    /// 33-126, scoped to the cluster; a retry with the same token and the same parameters gets
    /// the first answer and starts nothing, with other parameters a ConflictException.
    pub(super) fn run_task(&mut self, body: &Value) -> Result<Value, ApiError> {
        let cluster = self.cluster_name(body)?;
        let Some(token) = body.str_opt("clientToken")? else {
            return self.run_task_once(body);
        };
        if token.is_empty() || token.len() > 64 || !token.bytes().all(|b| (33..=126).contains(&b)) {
            return Err(invalid(
                "clientToken must be 1 to 64 ASCII characters in the range 33-126.",
            ));
        }
        let mut request = body.clone();
        if let Some(m) = request.as_object_mut() {
            m.remove("clientToken");
        }
        let key = format!("{cluster}/{token}");
        if let Some((first, answer)) = self.run_tokens.get(&key) {
            if *first == request {
                return Ok(answer.clone());
            }
            return Err(ApiError::client(
                "ConflictException",
                "The request uses the same client token as a previous, but non-identical request. Do not reuse a client token with different requests, unless the requests are identical.",
            ));
        }
        let answer = self.run_task_once(body)?;
        self.run_tokens.insert(key, (request, answer.clone()));
        Ok(answer)
    }

    fn run_task_once(&mut self, body: &Value) -> Result<Value, ApiError> {
        let cluster = self.cluster_name(body)?;
        let td_id = body.str_req("taskDefinition")?;
        let td = self.resolve_taskdef(&td_id)?;
        let count = body.int_opt("count")?.unwrap_or(1);
        if !(1..=10).contains(&count) {
            return Err(invalid("count must be between 1 and 10."));
        }
        let capacity_provider = capacity_provider_of(body)?;
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
        self.check_overrides(&td, &overrides)?;
        self.check_volume_configurations(&td, body.get("volumeConfigurations"))?;
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
        let mut tags = tags_of(body);
        match body.str_opt("propagateTags")?.as_deref() {
            None | Some("NONE") => {}
            // RunTask documents it: SERVICE is an error when running a task.
            Some("SERVICE") => {
                return Err(invalid(
                    "The specified propagateTags value SERVICE is not supported when running a task.",
                ));
            }
            Some("TASK_DEFINITION") => {
                let own: Vec<String> = tags
                    .iter()
                    .filter_map(|t| t.get("key").and_then(Value::as_str).map(str::to_string))
                    .collect();
                let from_td = self.tags.get(&td).cloned().unwrap_or_default();
                tags.extend(from_td.into_iter().filter(|t| {
                    t.get("key")
                        .and_then(Value::as_str)
                        .is_none_or(|k| !own.iter().any(|o| o == k))
                }));
            }
            Some(other) => {
                return Err(invalid(format!(
                    "propagateTags must be TASK_DEFINITION, SERVICE or NONE, got {other}."
                )));
            }
        }
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
            let exec = body
                .get("enableExecuteCommand")
                .and_then(Value::as_bool)
                .unwrap_or(false);
            if let Some(t) = self.tasks.get_mut(&id) {
                one_off(t, &overrides, &capacity_provider, exec);
            }
            if let Some(t) = self.tasks.get(&id) {
                out.push(self.describe_task(t, false));
            }
        }
        Ok(json!({"tasks": out, "failures": []}))
    }

    /// RunTask's `volumeConfigurations` (AWS's RunTask reference): each names a volume of the
    /// task definition that is `configuredAtLaunch`, and its `managedEBSVolume` has a `roleArn`.
    fn check_volume_configurations(
        &self,
        td: &str,
        volumes: Option<&Value>,
    ) -> Result<(), ApiError> {
        let Some(volumes) = volumes.and_then(Value::as_array) else {
            return Ok(());
        };
        let at_launch: Vec<String> = self
            .find_taskdef(td)
            .and_then(|t| t.get("volumes"))
            .and_then(Value::as_array)
            .map(|vs| {
                vs.iter()
                    .filter(|v| v.get("configuredAtLaunch").and_then(Value::as_bool) == Some(true))
                    .filter_map(|v| v.get("name").and_then(Value::as_str).map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        for v in volumes {
            let name = v.get("name").and_then(Value::as_str).unwrap_or_default();
            if !at_launch.iter().any(|n| n == name) {
                return Err(invalid(format!(
                    "The volume {name} in volumeConfigurations is not a volume of the task definition that is configured at launch."
                )));
            }
            let role = v
                .get("managedEBSVolume")
                .and_then(|m| m.get("roleArn"))
                .and_then(Value::as_str);
            if role.is_none_or(str::is_empty) {
                return Err(invalid(format!(
                    "managedEBSVolume of volume {name} requires a roleArn."
                )));
            }
        }
        Ok(())
    }

    /// RunTask's `containerOverrides` must each name a container of the task definition.
    fn check_overrides(&self, td: &str, overrides: &Value) -> Result<(), ApiError> {
        let container_names: Vec<String> = self
            .find_taskdef(td)
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
        Ok(())
    }

    pub(super) fn stop_task_op(&mut self, body: &Value) -> Result<Value, ApiError> {
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

/// The members of a described task that depend on its launch type and its history, and its
/// tags when asked for.
fn optional_task_members(v: &mut Value, t: &Task, with_tags: bool) {
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
}

/// RunTask's capacity provider: placement by weight is not modelled, so the first provider
/// with a base, else the heaviest one, takes the task.
fn capacity_provider_of(body: &Value) -> Result<Option<String>, ApiError> {
    let strategy = body
        .get("capacityProviderStrategy")
        .and_then(Value::as_array)
        .filter(|a| !a.is_empty());
    Ok(match strategy {
        Some(items) => {
            if body.str_opt("launchType")?.is_some() {
                return Err(invalid(
                    "Specifying both a launch type and capacity provider strategy is not supported. Remove one and try again.",
                ));
            }
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
    })
}

/// A one-off task runs its command to completion, as a migration does: its essential
/// container exits 0 ONE_OFF_RUN seconds after RUNNING, unless a fault of its image says
/// otherwise (exit-, crash-, pull-fail). It carries RunTask's overrides (commands included),
/// capacity provider and `enableExecuteCommand`.
fn one_off(t: &mut Task, overrides: &Value, capacity_provider: &Option<String>, exec: bool) {
    if t.plan.crash.is_none() && t.plan.pull_fail.is_none() {
        t.plan.crash = Some((ONE_OFF_RUN, 0));
    }
    t.overrides = overrides.clone();
    t.capacity_provider = capacity_provider.clone();
    t.exec_enabled = exec;
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
