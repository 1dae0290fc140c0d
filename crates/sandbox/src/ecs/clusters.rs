//! ECS clusters: CreateCluster, DescribeClusters, and the clusters other operations name.

use serde_json::{Value, json};

use super::{not_found_cluster, short, tags_of};
use crate::api::ApiError;
use crate::util::{Get, invalid};
use crate::world::{Cluster, World};

impl World {
    pub fn ensure_cluster(&mut self, name: &str) -> String {
        let arn = self.arn(&format!("cluster/{name}"));
        self.clusters
            .entry(name.to_string())
            .or_insert_with(|| Cluster {
                name: name.to_string(),
                arn: arn.clone(),
                status: "ACTIVE".into(),
                settings: json!([{"name": "containerInsights", "value": "disabled"}]),
                tags: Vec::new(),
                configuration: Value::Null,
            });
        arn
    }

    pub(super) fn cluster_name(&self, body: &Value) -> Result<String, ApiError> {
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

    pub(super) fn create_cluster(&mut self, body: &Value) -> Result<Value, ApiError> {
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

    pub(super) fn describe_clusters(&mut self, body: &Value) -> Result<Value, ApiError> {
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
}
