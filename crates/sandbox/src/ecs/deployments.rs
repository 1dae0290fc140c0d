//! Service deployments and revisions: what a new deployment of a service is made of (its
//! revision, its load balancer bindings, its strategy), List/Describe/Stop/Continue
//! ServiceDeployments and DescribeServiceRevisions.

use serde_json::{Value, json};

use super::{not_found_service, paginate, simple_hash, with_next};
use crate::api::ApiError;
use crate::util::{Get, invalid, ts};
use crate::world::{Binding, Deployment, Revision, ServiceDeployment, World, cb_threshold};

impl World {
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
                // ECS resolves the tag once, for the revision; an image of the sandbox's ECR
                // gets the digest its tag names now, another registry's a derived one.
                let text = image.as_str().unwrap_or("");
                let digest = self
                    .ecr
                    .digest_of(&crate::faults::without_faults(text))
                    .flatten()
                    .unwrap_or_else(|| format!("sha256:{}", simple_hash(text)));
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
        self.stop_superseded(superseded);
        let sd = ServiceDeployment {
            service_arn,
            cluster_arn: self.arn(&format!("cluster/{cluster}")),
            target_revision: revision,
            source_revisions: sources,
            deployment_id: id.clone(),
            ..new_service_deployment(&sd_arn, key, now, cfg, threshold)
        };
        self.sds.insert(sd_arn, sd);
        id
    }

    /// The service deployments a new one supersedes stop, as ECS stops them.
    fn stop_superseded(&mut self, superseded: Vec<String>) {
        let now = self.now;
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
    pub(super) fn canonical_tg(&self, arn: &str) -> Option<String> {
        self.elbv2.find_target_group(arn).or_else(|| {
            let name = arn
                .split_once(":targetgroup/")
                .map(|(_, r)| r.split('/').next().unwrap_or(r))?;
            self.elbv2.find_target_group(name)
        })
    }

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

    pub(super) fn list_service_deployments(&mut self, body: &Value) -> Result<Value, ApiError> {
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

    pub(super) fn describe_service_deployments(&mut self, body: &Value) -> Result<Value, ApiError> {
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

    pub(super) fn stop_service_deployment(&mut self, body: &Value) -> Result<Value, ApiError> {
        let arn = body.str_req("serviceDeploymentArn")?;
        let stop_type = body
            .str_opt("stopType")?
            .unwrap_or_else(|| "ROLLBACK".into());
        if stop_type != "ROLLBACK" && stop_type != "ABORT" {
            return Err(invalid("stopType must be ROLLBACK or ABORT."));
        }
        let sd = self.stoppable_sd(&arn)?;
        let key = sd.service_key.clone();
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
            self.roll_back_by_request(&key, &arn, &sd)?;
        } else {
            self.abort_by_request(&key, &arn);
        }
        Ok(json!({"serviceDeploymentArn": arn}))
    }

    /// The service deployment StopServiceDeployment names: it exists, is in progress (or
    /// pending) and is its service's current one.
    fn stoppable_sd(&self, arn: &str) -> Result<ServiceDeployment, ApiError> {
        let sd = self.sds.get(arn).cloned().ok_or_else(|| {
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
        Ok(sd)
    }

    /// StopServiceDeployment ROLLBACK of a rolling deployment: back to the last COMPLETED
    /// deployment, else onto the service's stable revision.
    fn roll_back_by_request(
        &mut self,
        key: &str,
        arn: &str,
        sd: &ServiceDeployment,
    ) -> Result<(), ApiError> {
        let now = self.now;
        let stable = self
            .services
            .get(key)
            .and_then(|s| s.stable_revision.clone());
        let prev = self.completed_deployment(key);
        let stable = stable.filter(|r| *r != sd.target_revision);
        if prev.is_none() && stable.is_none() {
            return Err(ApiError::client(
                "ConflictException",
                "There is no successful service revision to roll back to.",
            ));
        }
        if let Some(d) = self
            .services
            .get_mut(key)
            .and_then(|s| s.deployments.first_mut())
        {
            d.rollout_state = "FAILED".into();
            d.rollout_reason =
                Some("Service deployment rolled back by a StopServiceDeployment request.".into());
            d.updated_at = now;
        }
        if let Some(x) = self.sds.get_mut(arn) {
            x.status = "ROLLBACK_REQUESTED".into();
        }
        let reason = "Service deployment rolled back because of a StopServiceDeployment request.";
        match (prev, stable) {
            // As the circuit breaker does: the source revision's deployment (same id) goes
            // from COMPLETED back to IN_PROGRESS.
            (Some(prev), _) => self.roll_back_to_deployment(key, &prev, reason),
            // The source revision's deployment has already left `deployments[]` (ECS keeps
            // finished ones only briefly): a new deployment of the source revision, the
            // sandbox's shape before it rolled back as ECS does. Not confirmed in AWS docs.
            (None, Some(rev)) => self.start_rollback(key, &rev, reason),
            (None, None) => {}
        }
        Ok(())
    }

    /// StopServiceDeployment ABORT: the deployment stops where it is (no more launches).
    fn abort_by_request(&mut self, key: &str, arn: &str) {
        let now = self.now;
        let name = self
            .services
            .get(key)
            .map(|s| s.name.clone())
            .unwrap_or_default();
        if let Some(d) = self
            .services
            .get_mut(key)
            .and_then(|s| s.deployments.first_mut())
        {
            d.rollout_state = "FAILED".into();
            d.rollout_reason =
                Some("Service deployment stopped by a StopServiceDeployment request.".into());
            d.launching = false;
            d.updated_at = now;
            let id = d.id.clone();
            self.new_event(
                key,
                format!("(service {name}) (deployment {id}) deployment stopped."),
            );
        }
        if let Some(x) = self.sds.get_mut(arn) {
            x.status = "STOPPED".into();
            x.status_reason =
                Some("Service deployment stopped by a StopServiceDeployment request.".into());
            x.stopped_at = Some(now);
            x.updated_at = now;
            x.lifecycle_stage = None;
        }
        self.reconcile(key);
    }

    pub(super) fn continue_service_deployment(&mut self, body: &Value) -> Result<Value, ApiError> {
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

    pub(super) fn describe_service_revisions(&mut self, body: &Value) -> Result<Value, ApiError> {
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
}

fn s_has_blue(w: &World, key: &str) -> bool {
    w.services.get(key).is_some_and(|s| s.deployments.len() > 1)
}

/// A new service deployment IN_PROGRESS with `cfg` (its circuit breaker and alarms
/// MONITORING when enabled); ARNs, revisions and the deployment are left for the caller.
fn new_service_deployment(
    sd_arn: &str,
    key: &str,
    now: f64,
    cfg: Value,
    threshold: i64,
) -> ServiceDeployment {
    let enabled = |p: &str| cfg.pointer(p).and_then(Value::as_bool).unwrap_or(false);
    let cb_enabled = enabled("/deploymentCircuitBreaker/enable");
    let alarms_enabled = enabled("/alarms/enable");
    ServiceDeployment {
        arn: sd_arn.to_string(),
        service_key: key.to_string(),
        service_arn: String::new(),
        cluster_arn: String::new(),
        created_at: now,
        started_at: Some(now),
        finished_at: None,
        stopped_at: None,
        updated_at: now,
        target_revision: String::new(),
        source_revisions: Vec::new(),
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
        deployment_id: String::new(),
        bg: None,
    }
}
