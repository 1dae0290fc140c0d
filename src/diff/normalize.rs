//! Canonical forms of definitions, so that "differs" means "ECS would run something else".
//!
//! Receives camelCase JSON: a task definition in the RegisterTaskDefinition input shape
//! (local from `model::task_definition_to_json`, live from `aws::json::task_definition_json`)
//! or a service (local CreateService input; live DescribeServices output, raw or projected by
//! `aws::json::service_definition_json`). Hands on JSON where a value ECS fills in by
//! itself equals the value left out (the defaults in ecs-facts "Defaults that make a naive
//! diff lie"), lists whose order ECS does not keep are sorted, empty values are gone and keys
//! are sorted. Dropping a value equal to its default on both sides cannot hide a change:
//! leaving it out means that very value.

use serde_json::{Map, Value};

/// Members of a live service that are not part of what a file declares: identity, state,
/// counts and history.
const SERVICE_OUT_OF_COMPARISON: &[&str] = &[
    "cluster",
    "clusterArn",
    "serviceName",
    "serviceArn",
    "taskDefinition",
    "clientToken",
    "status",
    "runningCount",
    "pendingCount",
    "deployments",
    "events",
    "createdAt",
    "createdBy",
    "taskSets",
    "platformFamily",
    "currentServiceDeployment",
    "currentServiceRevisions",
    "resourceManagementType",
    "roleArn",
];

/// Members ECS keeps on the PRIMARY deployment rather than on the service.
const DEPLOYMENT_CARRIED: &[&str] = &[
    "serviceConnectConfiguration",
    "volumeConfigurations",
    "vpcLatticeConfigurations",
];

/// Container members whose default is `false`.
const CONTAINER_FALSE_DEFAULTS: &[&str] = &[
    "disableNetworking",
    "privileged",
    "readonlyRootFilesystem",
    "interactive",
    "pseudoTerminal",
];

/// The task definition (RegisterTaskDefinition input JSON) in canonical form.
pub fn task_definition_for_compare(v: &Value) -> Value {
    let mut v = v.clone();
    if let Value::Object(m) = &mut v {
        let network_mode = m
            .get("networkMode")
            .and_then(Value::as_str)
            .map(str::to_ascii_lowercase);
        if let Some(cpu) = m.get_mut("cpu") {
            canonical_size(cpu, "vcpu");
        }
        if let Some(memory) = m.get_mut("memory") {
            canonical_size(memory, "gb");
        }
        remove_if(m, "enableFaultInjection", &Value::Bool(false));
        sort_strings(m.get_mut("requiresCompatibilities"));
        sort_by_keys(m.get_mut("tags"), &["key"]);
        sort_by_keys(m.get_mut("volumes"), &["name"]);
        sort_by_keys(m.get_mut("placementConstraints"), &["type", "expression"]);
        if let Some(Value::Array(containers)) = m.get_mut("containerDefinitions") {
            for c in containers.iter_mut() {
                if let Value::Object(c) = c {
                    container(c, network_mode.as_deref());
                }
            }
        }
    }
    prune(&mut v);
    sort_keys(&mut v);
    v
}

fn container(c: &mut Map<String, Value>, network_mode: Option<&str>) {
    remove_if(c, "cpu", &Value::from(0));
    remove_if(c, "essential", &Value::Bool(true));
    for k in CONTAINER_FALSE_DEFAULTS {
        remove_if(c, k, &Value::Bool(false));
    }
    if let Some(Value::Array(ports)) = c.get_mut("portMappings") {
        for p in ports.iter_mut() {
            let Value::Object(p) = p else { continue };
            remove_if(p, "protocol", &Value::from("tcp"));
            let container_port = p.get("containerPort").cloned();
            match (network_mode, container_port) {
                // awsvpc and host: the host port is the container port.
                (Some("awsvpc" | "host"), Some(cp)) => remove_if(p, "hostPort", &cp),
                // bridge: 0 (or nothing) asks for a dynamic host port.
                _ => remove_if(p, "hostPort", &Value::from(0)),
            }
        }
    }
    sort_by_keys(c.get_mut("environment"), &["name"]);
    sort_by_keys(c.get_mut("secrets"), &["name"]);
    sort_by_keys(c.get_mut("ulimits"), &["name"]);
    sort_by_keys(c.get_mut("systemControls"), &["namespace"]);
    sort_by_keys(c.get_mut("dependsOn"), &["containerName"]);
    sort_by_keys(c.get_mut("extraHosts"), &["hostname", "ipAddress"]);
    for list in ["mountPoints", "volumesFrom"] {
        if let Some(Value::Array(items)) = c.get_mut(list) {
            for i in items.iter_mut() {
                if let Value::Object(i) = i {
                    remove_if(i, "readOnly", &Value::Bool(false));
                }
            }
        }
    }
    sort_by_keys(c.get_mut("mountPoints"), &["containerPath", "sourceVolume"]);
    sort_by_keys(c.get_mut("volumesFrom"), &["sourceContainer"]);
    if let Some(Value::Object(h)) = c.get_mut("healthCheck") {
        remove_if(h, "interval", &Value::from(30));
        remove_if(h, "timeout", &Value::from(5));
        remove_if(h, "retries", &Value::from(3));
        remove_if(h, "startPeriod", &Value::from(0));
    }
    if let Some(Value::Object(lp)) = c.get_mut("linuxParameters") {
        remove_if(lp, "initProcessEnabled", &Value::Bool(false));
        if let Some(Value::Object(caps)) = lp.get_mut("capabilities") {
            sort_strings(caps.get_mut("add"));
            sort_strings(caps.get_mut("drop"));
        }
    }
}

/// Local (CreateService input JSON) and live (DescribeServices service JSON) in canonical
/// form, comparable member by member. `desiredCount` is compared only when the local file
/// sets it (otherwise autoscaling owns it); tags whose key is in `ignore_tags` (or starts
/// with `aws:`, which only AWS writes) are left out.
pub fn service_for_compare(local: &Value, live: &Value, ignore_tags: &[String]) -> (Value, Value) {
    let mut local = local.clone();
    let mut live = live.clone();
    let local_map = local.as_object().cloned().unwrap_or_default();
    if let Value::Object(r) = &mut live {
        from_primary_deployment(r);
        live_role(r, local_map.get("role"));
    }
    for side in [&mut local, &mut live] {
        if let Value::Object(m) = side {
            for k in SERVICE_OUT_OF_COMPARISON {
                m.remove(*k);
            }
            if !local_map.contains_key("desiredCount") {
                m.remove("desiredCount");
            }
            service(m, ignore_tags);
        }
        prune(side);
        sort_keys(side);
    }
    (local, live)
}

/// Raw DescribeServices output keeps some members only on the PRIMARY deployment.
fn from_primary_deployment(r: &mut Map<String, Value>) {
    let primary = r
        .get("deployments")
        .and_then(Value::as_array)
        .and_then(|ds| {
            ds.iter()
                .find(|d| d.get("status").and_then(Value::as_str) == Some("PRIMARY"))
        })
        .cloned();
    if let Some(Value::Object(d)) = primary {
        for k in DEPLOYMENT_CARRIED {
            if let (false, Some(v)) = (r.contains_key(*k), d.get(*k)) {
                r.insert((*k).to_string(), v.clone());
            }
        }
    }
}

/// The live role as the file would say it: absent when the file does not name one (ECS
/// then uses its service-linked role), the file's short name when the ARN ends with it.
fn live_role(r: &mut Map<String, Value>, local_role: Option<&Value>) {
    let arn = r.remove("roleArn");
    let live = r.remove("role").or(arn);
    let Some(local_role) = local_role else {
        return;
    };
    let Some(live) = live else { return };
    let same = match (local_role.as_str(), live.as_str()) {
        (Some(l), Some(a)) => l == a || a.ends_with(&format!("/{l}")),
        _ => false,
    };
    r.insert("role".into(), if same { local_role.clone() } else { live });
}

fn service(m: &mut Map<String, Value>, ignore_tags: &[String]) {
    let daemon = m.get("schedulingStrategy").and_then(Value::as_str) == Some("DAEMON");
    remove_if(m, "platformVersion", &Value::from("LATEST"));
    remove_if(m, "schedulingStrategy", &Value::from("REPLICA"));
    remove_if(m, "propagateTags", &Value::from("NONE"));
    remove_if(m, "enableECSManagedTags", &Value::Bool(false));
    remove_if(m, "enableExecuteCommand", &Value::Bool(false));
    remove_if(m, "healthCheckGracePeriodSeconds", &Value::from(0));
    if let Some(Value::Object(dc)) = m.get_mut("deploymentController") {
        remove_if(dc, "type", &Value::from("ECS"));
    }
    if let Some(Value::Object(d)) = m.get_mut("deploymentConfiguration") {
        let (max, min) = if daemon { (100, 0) } else { (200, 100) };
        remove_if(d, "maximumPercent", &Value::from(max));
        remove_if(d, "minimumHealthyPercent", &Value::from(min));
        let rolling = d
            .get("strategy")
            .and_then(Value::as_str)
            .is_none_or(|s| s == "ROLLING");
        if rolling {
            remove_if(d, "bakeTimeInMinutes", &Value::from(0));
        }
        remove_if(d, "strategy", &Value::from("ROLLING"));
        for k in ["deploymentCircuitBreaker", "alarms"] {
            if let Some(Value::Object(b)) = d.get_mut(k) {
                remove_if(b, "enable", &Value::Bool(false));
                remove_if(b, "rollback", &Value::Bool(false));
            }
        }
        if let Some(Value::Object(a)) = d.get_mut("alarms") {
            sort_strings(a.get_mut("alarmNames"));
        }
    }
    if let Some(Value::Object(n)) = m.get_mut("networkConfiguration")
        && let Some(Value::Object(a)) = n.get_mut("awsvpcConfiguration")
    {
        remove_if(a, "assignPublicIp", &Value::from("DISABLED"));
        sort_strings(a.get_mut("subnets"));
        sort_strings(a.get_mut("securityGroups"));
    }
    if let Some(Value::Array(items)) = m.get_mut("capacityProviderStrategy") {
        for i in items.iter_mut() {
            if let Value::Object(i) = i {
                remove_if(i, "base", &Value::from(0));
            }
        }
    }
    sort_by_keys(
        m.get_mut("loadBalancers"),
        &[
            "targetGroupArn",
            "loadBalancerName",
            "containerName",
            "containerPort",
        ],
    );
    sort_by_keys(m.get_mut("serviceRegistries"), &["registryArn"]);
    sort_by_keys(m.get_mut("placementConstraints"), &["type", "expression"]);
    if let Some(Value::Array(tags)) = m.get_mut("tags") {
        tags.retain(|t| {
            let key = t.get("key").and_then(Value::as_str).unwrap_or("");
            !key.starts_with("aws:") && !ignore_tags.iter().any(|i| i == key)
        });
    }
    sort_by_keys(m.get_mut("tags"), &["key"]);
}

/// "0.25 vCPU" -> "256", "1 GB" -> "1024", " 512 " -> "512"; anything else is left as is.
fn canonical_size(v: &mut Value, unit: &str) {
    let Value::String(s) = v else { return };
    let lower = s.trim().to_ascii_lowercase();
    let (number, factor) = match lower.strip_suffix(unit) {
        Some(n) => (n.trim(), 1024.0),
        None => (lower.as_str(), 1.0),
    };
    if let Ok(x) = number.parse::<f64>() {
        let units = x * factor;
        if units.is_finite() && units >= 0.0 && units.fract() == 0.0 && units < 1e15 {
            *v = Value::String(format!("{}", units as u64));
        }
    }
}

fn remove_if(m: &mut Map<String, Value>, key: &str, default: &Value) {
    if m.get(key).is_some_and(|v| same_value(v, default)) {
        m.remove(key);
    }
}

/// Equal, counting 200 and 200.0 as the same number.
fn same_value(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        _ => a == b,
    }
}

fn sort_strings(v: Option<&mut Value>) {
    if let Some(Value::Array(items)) = v {
        items.sort_by_key(|v| v.to_string());
    }
}

/// Sorts a list of objects by the values of `keys` (stable: ties keep their order).
fn sort_by_keys(v: Option<&mut Value>, keys: &[&str]) {
    if let Some(Value::Array(items)) = v {
        items.sort_by(|a, b| {
            for k in keys {
                let ka = a.get(*k).map(sort_key).unwrap_or_default();
                let kb = b.get(*k).map(sort_key).unwrap_or_default();
                match ka.cmp(&kb) {
                    std::cmp::Ordering::Equal => continue,
                    o => return o,
                }
            }
            std::cmp::Ordering::Equal
        });
    }
}

fn sort_key(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        // Numbers sort by value: pad them.
        Value::Number(n) => format!("{:>20}", n.to_string()),
        other => other.to_string(),
    }
}

/// Drops nulls, empty lists and empty objects, innermost first.
fn prune(v: &mut Value) {
    match v {
        Value::Object(m) => {
            for child in m.values_mut() {
                prune(child);
            }
            m.retain(|_, c| !is_empty(c));
        }
        Value::Array(items) => {
            for child in items.iter_mut() {
                prune(child);
            }
        }
        _ => {}
    }
}

fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Array(a) => a.is_empty(),
        Value::Object(m) => m.is_empty(),
        _ => false,
    }
}

fn sort_keys(v: &mut Value) {
    match v {
        Value::Object(m) => {
            m.sort_keys();
            m.values_mut().for_each(sort_keys);
        }
        Value::Array(items) => items.iter_mut().for_each(sort_keys),
        _ => {}
    }
}
