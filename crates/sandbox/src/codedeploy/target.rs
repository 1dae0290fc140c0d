//! The ECS target of a CodeDeploy deployment (`GetDeploymentTarget`): lifecycle events and
//! the blue and green task sets with their traffic, read from the service deployment.

use serde_json::{Value, json};

use super::CdDeployment;
use crate::util::ts;
use crate::world::World;

/// CodeDeploy lifecycle events of an ECS deployment and the blue/green steps (first, last)
/// each one spans (AllowTraffic is the shift and its step bake; AfterAllowTraffic runs the
/// POST_PRODUCTION_TRAFFIC_SHIFT hooks; the termination wait is the bake after it).
const EVENTS: [(&str, usize, usize); 8] = [
    ("BeforeInstall", 1, 1),
    ("Install", 2, 2),
    ("AfterInstall", 3, 3),
    ("AllowTestTraffic", 4, 4),
    ("AfterAllowTestTraffic", 5, 5),
    ("BeforeAllowTraffic", 6, 6),
    ("AllowTraffic", 7, 8),
    ("AfterAllowTraffic", 9, 9),
];

impl World {
    pub(super) fn ecs_target(&self, d: &CdDeployment) -> Value {
        let status = self.cd_status(d);
        let sd = self.sds.get(&d.sd_arn);
        let step = sd
            .and_then(|sd| sd.bg.as_ref())
            .map(|b| b.step)
            .unwrap_or(0);
        let weight = sd
            .and_then(|sd| sd.bg.as_ref())
            .map(|b| b.weight)
            .unwrap_or(0);
        let events: Vec<Value> = EVENTS
            .iter()
            .map(|(name, first, last)| {
                let st = match status {
                    "Succeeded" => "Succeeded",
                    _ if step > *last => "Succeeded",
                    "InProgress" | "Ready" if step >= *first => "InProgress",
                    "InProgress" | "Ready" => "Pending",
                    _ if step >= *first => "Failed",
                    _ => "Skipped",
                };
                json!({"lifecycleEventName": name, "status": st})
            })
            .collect();
        let mut sets = Vec::new();
        if let Some(s) = self.services.get(&d.service_key) {
            let green_id = if d.green_id.is_empty() {
                sd.map(|sd| sd.deployment_id.clone()).unwrap_or_default()
            } else {
                d.green_id.clone()
            };
            for dep in &s.deployments {
                let is_green = dep.id == green_id;
                let (mut running, mut pending) = (0, 0);
                for t in self
                    .svc_tasks(&d.service_key)
                    .filter(|t| t.deployment.as_deref() == Some(dep.id.as_str()))
                {
                    match t.last_status.as_str() {
                        "RUNNING" => running += 1,
                        "PROVISIONING" | "PENDING" => pending += 1,
                        _ => {}
                    }
                }
                let traffic = match (is_green, status) {
                    (true, "Succeeded") => 100,
                    (true, "InProgress" | "Ready") => weight,
                    (true, _) => 0,
                    (false, "Succeeded") => 0,
                    (false, "InProgress" | "Ready") => 100 - weight,
                    (false, _) => 100,
                };
                let tg_name = dep
                    .bindings
                    .first()
                    .and_then(|b| {
                        b.tg.split_once(":targetgroup/")
                            .map(|(_, r)| r.split('/').next().unwrap_or(r).to_string())
                    })
                    .unwrap_or_default();
                sets.push(json!({"identifer": dep.id, "desiredCount": dep.desired, "pendingCount": pending, "runningCount": running,
                    "status": dep.status, "trafficWeight": traffic as f64, "targetGroup": {"name": tg_name},
                    "taskSetLabel": if is_green { "Green" } else { "Blue" }}));
            }
        }
        let target_arn = self
            .services
            .get(&d.service_key)
            .map(|s| s.arn.clone())
            .unwrap_or_default();
        json!({"deploymentId": d.id, "targetId": d.service_key.replace('/', ":"), "targetArn": target_arn,
            "lastUpdatedAt": ts(self.now), "lifecycleEvents": events, "status": status, "taskSetsInfo": sets})
    }
}
