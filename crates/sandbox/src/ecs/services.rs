//! ECS services: CreateService, UpdateService, DeleteService, DescribeServices,
//! ListServices, with the checks ECS makes on their inputs (deployment configuration,
//! lifecycle hooks, load balancers, network) and the service as DescribeServices shows it.

use serde_json::{Map, Value, json};

use super::{not_active, not_found_service, paginate, short, tags_of, with_next};
use crate::api::ApiError;
use crate::util::{Get, client, invalid, ts};
use crate::world::{Service, World, service_key};

/// Tasks per service the sandbox accepts (ECS's default quota).
const MAX_DESIRED: i64 = 5000;

impl World {
    pub(super) fn find_service(&self, cluster: &str, id: &str) -> Option<String> {
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
        validate_early_success(cfg, &strategy, min)?;
        if let Some(b) = cfg.int_opt("bakeTimeInMinutes")?
            && !(0..=1440).contains(&b)
        {
            return Err(invalid("bakeTimeInMinutes must be between 0 and 1440."));
        }
        validate_shift_steps(cfg)?;
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

    pub(super) fn check_service_inputs(
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

    /// CreateService's cluster, service name and key: a valid name, no ACTIVE or DRAINING
    /// service of that name in the cluster.
    fn new_service_key(&self, body: &Value) -> Result<(String, String, String), ApiError> {
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
        Ok((cluster, name, key))
    }

    pub(super) fn create_service(&mut self, body: &Value) -> Result<Value, ApiError> {
        let (cluster, name, key) = self.new_service_key(body)?;
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
        let (launch_type, placed_on) = launch_type_of(body)?;
        let network = body
            .get("networkConfiguration")
            .cloned()
            .unwrap_or(Value::Null);
        let lbs = body.get("loadBalancers").cloned().unwrap_or(json!([]));
        if !td.is_empty() {
            self.check_service_inputs(&td, &placed_on, &network, &lbs)?;
        }
        let cfg = Self::validate_deployment_configuration(
            body.get("deploymentConfiguration").unwrap_or(&Value::Null),
        )?;
        let platform_version = body
            .str_opt("platformVersion")?
            .or_else(|| (launch_type == "FARGATE").then(|| "LATEST".to_string()));
        let mut extra = Map::new();
        echo_members(&mut extra, body, CREATE_ECHOED);
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
        self.traffic_on_primary(&key);
        self.reconcile(&key);
        self.check_alarms();
        Ok(json!({"service": self.describe_service(&key, false)}))
    }

    /// Production and test traffic start on the primary target group.
    fn traffic_on_primary(&mut self, key: &str) {
        let bindings = self
            .services
            .get(key)
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
    }

    pub(super) fn update_service(&mut self, body: &Value) -> Result<Value, ApiError> {
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
        let network = replaced(
            &cur.network,
            body.get("networkConfiguration").cloned(),
            &mut new_deploy,
        );
        let lbs = replaced(
            &cur.load_balancers,
            body.get("loadBalancers").cloned(),
            &mut new_deploy,
        );
        let platform_version = replaced(
            &cur.platform_version,
            body.str_opt("platformVersion")?.map(Some),
            &mut new_deploy,
        );
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
        // Members whose change starts a new deployment.
        new_deploy |= [
            "capacityProviderStrategy",
            "serviceRegistries",
            "volumeConfigurations",
            "serviceConnectConfiguration",
        ]
        .iter()
        .any(|k| body.get(*k).is_some_and(|v| cur.extra.get(*k) != Some(v)));
        let grace = body.int_opt("healthCheckGracePeriodSeconds")?;
        let Some(s) = self.services.get_mut(&key) else {
            return Err(not_found_service());
        };
        echo_members(&mut s.extra, body, UPDATE_ECHOED);
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

    pub(super) fn delete_service(&mut self, body: &Value) -> Result<Value, ApiError> {
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

    pub(super) fn describe_services(&mut self, body: &Value) -> Result<Value, ApiError> {
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

    pub(super) fn list_services(&mut self, body: &Value) -> Result<Value, ApiError> {
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

    pub(super) fn counts(&self, key: &str, dep: Option<&str>) -> (i64, i64) {
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
                // ECS reports a service's volume configurations only inside its deployments
                // (Deployment.volumeConfigurations; Service has no such member). The sandbox
                // keeps the service's latest ones and shows them on the PRIMARY deployment.
                if d.status == "PRIMARY"
                    && let Some(vc) = s.extra.get("volumeConfigurations")
                {
                    v["volumeConfigurations"] = vc.clone();
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

/// earlySuccessCriteria (AWS API reference, DeploymentEarlySuccessCriteria): rolling
/// deployments only; when enabled, healthyPercent (0-100, not below minimumHealthyPercent)
/// and sourceServiceRevisionCleanup are required.
fn validate_early_success(cfg: &Value, strategy: &str, min: i64) -> Result<(), ApiError> {
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
    Ok(())
}

/// CanaryConfiguration / LinearConfiguration (aws-sdk-ecs 1.157): percentages are multiples
/// of 0.1 from 0.1 (canary) or 3.0 (linear) to 100.0; bake times 0 to 1440.
fn validate_shift_steps(cfg: &Value) -> Result<(), ApiError> {
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
    Ok(())
}

/// The members CreateService keeps and DescribeServices echoes as given.
const CREATE_ECHOED: &[&str] = &[
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
];

/// The members UpdateService may change among those (not `role`).
const UPDATE_ECHOED: &[&str] = &[
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
];

fn echo_members(extra: &mut Map<String, Value>, body: &Value, keys: &[&str]) {
    for k in keys {
        if let Some(v) = body.get(*k) {
            extra.insert((*k).into(), v.clone());
        }
    }
}

/// CreateService's launch type (EC2 by default, none with a capacity provider strategy), and
/// where its tasks are placed: a strategy of FARGATE providers places tasks on Fargate, so
/// the task definition must be Fargate-compatible as for launchType FARGATE.
fn launch_type_of(body: &Value) -> Result<(String, String), ApiError> {
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
    let placed_on = match providers.first() {
        Some(p) if p.starts_with("FARGATE") => "FARGATE".to_string(),
        _ => launch_type.clone(),
    };
    Ok((launch_type, placed_on))
}

/// `new` when the request gives it (a change from `cur` sets `changed`), else `cur`.
fn replaced<T: PartialEq + Clone>(cur: &T, new: Option<T>, changed: &mut bool) -> T {
    match new {
        Some(n) => {
            if n != *cur {
                *changed = true;
            }
            n
        }
        None => cur.clone(),
    }
}
