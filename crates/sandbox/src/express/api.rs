//! The Express Mode operations on the world: each builds (or updates, describes, deletes)
//! the task definition, load balancer, target groups, listener rule and canary service of an
//! Express service out of the world's ECS and ELBv2 models.

use serde_json::{Map, Value, json};

use super::{
    CONTAINER, DEFAULT_CPU, DEFAULT_HEALTH_CHECK_PATH, DEFAULT_MEMORY, DEFAULT_PORT,
    ExpressService, not_found,
};
use crate::api::ApiError;
use crate::util::{Get, invalid, ts};
use crate::world::{World, service_key};

impl World {
    /// Dispatch one Express Mode operation (ECS's JSON protocol, like the other ECS calls).
    pub fn express_op(&mut self, op: &str, body: &Value) -> Result<Value, ApiError> {
        match op {
            "CreateExpressGatewayService" => self.create_express(body),
            "UpdateExpressGatewayService" => self.update_express(body),
            "DescribeExpressGatewayService" => {
                let key = self.express_key(body)?;
                Ok(json!({"service": self.describe_express(&key)}))
            }
            "DeleteExpressGatewayService" => {
                let key = self.express_key(body)?;
                let (cluster, name) = {
                    let s = self.services.get(&key).ok_or_else(not_found)?;
                    (s.cluster.clone(), s.name.clone())
                };
                self.ecs(
                    "DeleteService",
                    &json!({"cluster": cluster, "service": name, "force": true}),
                )?;
                Ok(json!({"service": self.describe_express(&key)}))
            }
            _ => Err(ApiError::client(
                "UnknownOperationException",
                format!("unknown operation {op}"),
            )),
        }
    }

    /// The service an Express call names by `serviceArn`.
    fn express_key(&self, body: &Value) -> Result<String, ApiError> {
        let arn = body.str_req("serviceArn")?;
        self.express
            .iter()
            .find(|(_, e)| {
                self.services
                    .get(&e.service_key)
                    .is_some_and(|s| s.arn == arn || s.name == arn)
            })
            .map(|(k, _)| k.clone())
            .ok_or_else(not_found)
    }

    /// The configuration a request asks for, over `base` (an update keeps what it leaves out).
    fn express_configuration(base: Option<&Value>, body: &Value) -> Result<Value, ApiError> {
        let mut c = base.cloned().unwrap_or_else(|| json!({}));
        for k in [
            "executionRoleArn",
            "taskRoleArn",
            "cpu",
            "memory",
            "healthCheckPath",
            "networkConfiguration",
            "primaryContainer",
            "scalingTarget",
        ] {
            if let Some(v) = body.get(k).filter(|v| !v.is_null()) {
                c[k] = v.clone();
            }
        }
        if c.get("executionRoleArn").and_then(Value::as_str).is_none() {
            return Err(invalid("executionRoleArn must be specified."));
        }
        let Some(image) = c.pointer("/primaryContainer/image").and_then(Value::as_str) else {
            return Err(invalid("primaryContainer.image must be specified."));
        };
        if image.is_empty() {
            return Err(invalid("primaryContainer.image must not be empty."));
        }
        for (k, d) in [
            ("cpu", DEFAULT_CPU),
            ("memory", DEFAULT_MEMORY),
            ("healthCheckPath", DEFAULT_HEALTH_CHECK_PATH),
        ] {
            if c.get(k).and_then(Value::as_str).is_none() {
                c[k] = json!(d);
            }
        }
        if c.pointer("/primaryContainer/containerPort").is_none() {
            c["primaryContainer"]["containerPort"] = json!(DEFAULT_PORT);
        }
        Ok(c)
    }

    /// Registers the task definition ECS derives from a configuration.
    fn express_task_definition(
        &mut self,
        name: &str,
        cluster: &str,
        c: &Value,
    ) -> Result<String, ApiError> {
        let pc = &c["primaryContainer"];
        let logs = pc.get("awsLogsConfiguration").cloned().unwrap_or_else(
            || json!({"logGroup": format!("/aws/ecs/{cluster}/{name}"), "logStreamPrefix": "ecs"}),
        );
        let group = logs["logGroup"].as_str().unwrap_or_default().to_string();
        let now = self.now;
        self.logs.ensure_group(&group, now);
        let mut container = json!({
            "name": CONTAINER,
            "image": pc["image"],
            "essential": true,
            "portMappings": [{"containerPort": pc["containerPort"], "protocol": "tcp"}],
            "logConfiguration": {"logDriver": "awslogs", "options": {
                "awslogs-group": group,
                "awslogs-region": self.region,
                "awslogs-stream-prefix": logs["logStreamPrefix"],
            }},
        });
        for k in ["command", "environment", "secrets", "repositoryCredentials"] {
            if let Some(v) = pc.get(k).filter(|v| !v.is_null()) {
                container[k] = v.clone();
            }
        }
        let mut td = json!({
            "family": name,
            "networkMode": "awsvpc",
            "requiresCompatibilities": ["FARGATE"],
            "cpu": c["cpu"],
            "memory": c["memory"],
            "executionRoleArn": c["executionRoleArn"],
            "containerDefinitions": [container],
        });
        if let Some(r) = c.get("taskRoleArn").filter(|v| !v.is_null()) {
            td["taskRoleArn"] = r.clone();
        }
        let out = self.ecs("RegisterTaskDefinition", &td)?;
        Ok(out
            .pointer("/taskDefinition/taskDefinitionArn")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string())
    }

    fn express_network(c: &Value) -> Value {
        let subnets = c
            .pointer("/networkConfiguration/subnets")
            .cloned()
            .unwrap_or_else(|| json!(["subnet-default"]));
        let mut vpc = json!({"subnets": subnets, "assignPublicIp": "ENABLED"});
        if let Some(sg) = c.pointer("/networkConfiguration/securityGroups") {
            vpc["securityGroups"] = sg.clone();
        }
        json!({"awsvpcConfiguration": vpc})
    }

    fn create_express(&mut self, body: &Value) -> Result<Value, ApiError> {
        let cluster = body.str_opt("cluster")?.unwrap_or_else(|| "default".into());
        let cluster = cluster.rsplit('/').next().unwrap_or(&cluster).to_string();
        let name = body.str_req("serviceName")?;
        let role = body.str_req("infrastructureRoleArn")?;
        if self
            .services
            .get(&service_key(&cluster, &name))
            .is_some_and(|s| s.status != "INACTIVE")
        {
            return Err(invalid("Creation of service was not idempotent."));
        }
        let c = Self::express_configuration(None, body)?;
        if !self.clusters.contains_key(&cluster) {
            return Err(ApiError::client(
                "ClusterNotFoundException",
                "Cluster not found.",
            ));
        }
        let td = self.express_task_definition(&name, &cluster, &c)?;
        // The load balancer, its target groups and the production listener rule.
        let tgs: Vec<String> = (1..=2)
            .map(|i| {
                let tg = format!("ecs-express-{name}-{i}");
                crate::prepare::ensure_target_group(self, &tg).0
            })
            .collect();
        let lb = self
            .elbv2
            .create_load_balancer(&format!("ecs-express-{name}"));
        let fwd = vec![(tgs[0].clone(), 100), (tgs[1].clone(), 0)];
        let listener = self.elbv2.create_listener(&lb, 80, "HTTP", &fwd)?;
        let rule = self.elbv2.create_rule(&listener, 1, "/*", &fwd)?;
        let endpoint = self
            .elbv2
            .dns_name(&lb)
            .unwrap_or_else(|| format!("{name}.ecs.{}.on.aws", self.region));
        let scaling = c.get("scalingTarget");
        let desired = scaling
            .and_then(|s| s.get("minTaskCount"))
            .and_then(Value::as_i64)
            .unwrap_or(1);
        let mut svc = json!({
            "cluster": cluster,
            "serviceName": name,
            "taskDefinition": td,
            "desiredCount": desired,
            "launchType": "FARGATE",
            "networkConfiguration": Self::express_network(&c),
            "loadBalancers": [{
                "targetGroupArn": tgs[0],
                "containerName": CONTAINER,
                "containerPort": c["primaryContainer"]["containerPort"],
                "advancedConfiguration": {
                    "alternateTargetGroupArn": tgs[1],
                    "productionListenerRule": rule,
                    "roleArn": role,
                },
            }],
            "healthCheckGracePeriodSeconds": 30,
            "deploymentConfiguration": {
                "strategy": "CANARY",
                "canaryConfiguration": {"canaryPercent": 5.0, "canaryBakeTimeInMinutes": 3},
                "bakeTimeInMinutes": 3,
                "deploymentCircuitBreaker": {"enable": true, "rollback": true},
                "maximumPercent": 200,
                "minimumHealthyPercent": 100,
            },
        });
        if let Some(t) = body.get("tags").filter(|v| !v.is_null()) {
            svc["tags"] = t.clone();
        }
        self.ecs("CreateService", &svc)?;
        let key = service_key(&cluster, &name);
        if let Some(s) = self.services.get_mut(&key) {
            s.extra
                .insert("resourceManagementType".into(), json!("ECS"));
        }
        let now = self.now;
        let mut config = c;
        config["taskDefinitionArn"] = json!(td);
        config["createdAt"] = ts(now);
        self.express.insert(
            key.clone(),
            ExpressService {
                service_key: key.clone(),
                infrastructure_role_arn: role,
                created_at: now,
                updated_at: now,
                configurations: vec![config],
                rule_arn: rule,
                target_groups: tgs,
                endpoint,
            },
        );
        Ok(json!({"service": self.describe_express(&key)}))
    }

    fn update_express(&mut self, body: &Value) -> Result<Value, ApiError> {
        let key = self.express_key(body)?;
        let (cluster, name, current_td, status) = {
            let s = self.services.get(&key).ok_or_else(not_found)?;
            (
                s.cluster.clone(),
                s.name.clone(),
                s.task_def.clone(),
                s.status.clone(),
            )
        };
        if status != "ACTIVE" {
            return Err(ApiError::client(
                "ServiceNotActiveException",
                "Service was not ACTIVE.",
            ));
        }
        let base = self.express.get(&key).and_then(|e| {
            e.configurations
                .iter()
                .rev()
                .find(|c| c["taskDefinitionArn"] == json!(current_td))
                .or(e.configurations.last())
                .cloned()
        });
        let mut c = Self::express_configuration(base.as_ref(), body)?;
        if let Some(obj) = c.as_object_mut() {
            obj.remove("taskDefinitionArn");
            obj.remove("createdAt");
        }
        let td = self.express_task_definition(&name, &cluster, &c)?;
        let mut update = json!({
            "cluster": cluster,
            "service": name,
            "taskDefinition": td,
            "networkConfiguration": Self::express_network(&c),
        });
        if let Some(n) = c
            .pointer("/scalingTarget/minTaskCount")
            .and_then(Value::as_i64)
        {
            update["desiredCount"] = json!(n);
        }
        self.ecs("UpdateService", &update)?;
        let now = self.now;
        c["taskDefinitionArn"] = json!(td);
        c["createdAt"] = ts(now);
        let target = c.clone();
        if let Some(e) = self.express.get_mut(&key) {
            e.configurations.push(c);
            e.updated_at = now;
        }
        let s = self.describe_express(&key);
        let mut out = Map::new();
        for k in [
            "serviceArn",
            "cluster",
            "serviceName",
            "status",
            "createdAt",
            "updatedAt",
        ] {
            if let Some(v) = s.get(k) {
                out.insert(k.into(), v.clone());
            }
        }
        out.insert(
            "targetConfiguration".into(),
            self.configuration_view(&key, &target),
        );
        Ok(json!({"service": out}))
    }

    /// A stored configuration in the API's `ExpressGatewayServiceConfiguration` shape.
    fn configuration_view(&self, key: &str, c: &Value) -> Value {
        let mut v = c.clone();
        let td = c["taskDefinitionArn"].as_str().unwrap_or_default();
        let revision = self
            .services
            .get(key)
            .and_then(|s| s.deployments.iter().find(|d| d.task_def == td))
            .map(|d| d.revision.clone());
        if let Some(r) = revision {
            v["serviceRevisionArn"] = json!(r);
        }
        if let Some(e) = self.express.get(key) {
            v["ingressPaths"] = json!([{"accessType": "PUBLIC", "endpoint": e.endpoint}]);
        }
        v
    }

    fn describe_express(&self, key: &str) -> Value {
        let (Some(e), Some(s)) = (self.express.get(key), self.services.get(key)) else {
            return Value::Null;
        };
        // Active: the configurations whose revision has a deployment with tasks wanted or
        // running (during a deployment both the source and the target), newest first.
        let active: Vec<Value> = e
            .configurations
            .iter()
            .rev()
            .filter(|c| {
                let td = c["taskDefinitionArn"].as_str().unwrap_or_default();
                td == s.task_def
                    || s.deployments
                        .iter()
                        .any(|d| d.task_def == td && d.status != "INACTIVE")
            })
            .map(|c| self.configuration_view(key, c))
            .collect();
        let code = match s.status.as_str() {
            "ACTIVE" => "ACTIVE",
            "DRAINING" => "DRAINING",
            _ => "INACTIVE",
        };
        let mut v = json!({
            "cluster": self.arn(&format!("cluster/{}", s.cluster)),
            "serviceName": s.name,
            "serviceArn": s.arn,
            "infrastructureRoleArn": e.infrastructure_role_arn,
            "status": {"statusCode": code},
            "activeConfigurations": active,
            "tags": self.tags.get(&s.arn).cloned().unwrap_or_default(),
            "createdAt": ts(e.created_at),
            "updatedAt": ts(e.updated_at),
        });
        if let Some(sd) = &s.current_sd {
            v["currentDeployment"] = json!(sd);
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn world() -> World {
        let mut w = World::new("us-east-1", 7, 0.0);
        w.ensure_cluster("demo");
        w
    }

    fn create_body() -> Value {
        json!({
            "cluster": "demo", "serviceName": "api",
            "executionRoleArn": "arn:aws:iam::123456789012:role/exec",
            "infrastructureRoleArn": "arn:aws:iam::123456789012:role/infra",
            "primaryContainer": {"image": "nginx:1", "containerPort": 8080},
            "scalingTarget": {"minTaskCount": 2, "maxTaskCount": 4},
        })
    }

    #[test]
    fn create_builds_a_canary_service_behind_its_own_load_balancer() {
        let mut w = world();
        let out = w
            .express_op("CreateExpressGatewayService", &create_body())
            .unwrap();
        let svc = &out["service"];
        assert_eq!(svc["status"]["statusCode"], "ACTIVE");
        let cfg = &svc["activeConfigurations"][0];
        assert_eq!(cfg["cpu"], "1024");
        assert_eq!(cfg["memory"], "2048");
        assert_eq!(cfg["healthCheckPath"], "/");
        assert_eq!(cfg["primaryContainer"]["containerPort"], 8080);
        let described = w.describe_service(&service_key("demo", "api"), false);
        assert_eq!(described["resourceManagementType"], "ECS");
        assert_eq!(described["deploymentConfiguration"]["strategy"], "CANARY");
        assert_eq!(described["desiredCount"], 2);
        assert_eq!(described["taskDefinition"], cfg["taskDefinitionArn"]);
        let again = w.express_op("CreateExpressGatewayService", &create_body());
        assert!(again.is_err());
    }

    #[test]
    fn update_registers_a_revision_and_keeps_what_it_leaves_out() {
        let mut w = world();
        let out = w
            .express_op("CreateExpressGatewayService", &create_body())
            .unwrap();
        let arn = out["service"]["serviceArn"].as_str().unwrap().to_string();
        let up = w
            .express_op(
                "UpdateExpressGatewayService",
                &json!({"serviceArn": arn, "primaryContainer": {"image": "nginx:2", "containerPort": 8080}}),
            )
            .unwrap();
        let target = &up["service"]["targetConfiguration"];
        assert_eq!(target["primaryContainer"]["image"], "nginx:2");
        assert!(
            target["taskDefinitionArn"]
                .as_str()
                .unwrap()
                .ends_with("api:2")
        );
        // scalingTarget was not in the update: kept.
        assert_eq!(target["scalingTarget"]["minTaskCount"], 2);
        let d = w
            .express_op("DescribeExpressGatewayService", &json!({"serviceArn": arn}))
            .unwrap();
        assert!(d["service"]["currentDeployment"].is_string());
        let missing = w.express_op(
            "DescribeExpressGatewayService",
            &json!({"serviceArn": "arn:aws:ecs:us-east-1:123456789012:service/demo/nope"}),
        );
        assert_eq!(missing.unwrap_err().code, "ServiceNotFoundException");
        let bad = w.express_op(
            "CreateExpressGatewayService",
            &json!({"cluster": "demo", "serviceName": "x", "infrastructureRoleArn": "r", "executionRoleArn": "e", "primaryContainer": {}}),
        );
        assert!(bad.is_err());
    }
}
