//! What RegisterTaskDefinition refuses, beyond the shape: task sizes in the documented forms,
//! the values of `ipcMode` and `pidMode`, Fargate's task sizes, and the parameters Fargate does
//! not support.
//!
//! Receives the request body; hands on the task-level cpu (CPU units) and memory (MiB) it
//! asks for, or the ClientException ECS answers. Sources: the RegisterTaskDefinition API
//! reference (cpu: CPU units or vCPUs; memory: MiB or GB; ipcMode host | task | none; pidMode
//! host | task, only task on Fargate) and the Developer Guide's "Amazon ECS task definition
//! differences for Fargate". Where ECS's own text is on record it is used ("Tasks using the
//! Fargate launch type do not support ipcMode.", "No Fargate configuration exists for given
//! values: ...", "... is not a valid value for pidMode. The value must be one of [task,host]");
//! the other messages are this sandbox's wording.

use serde_json::Value;

use crate::api::ApiError;
use crate::util::client;

/// Task sizes in CPU units and MiB, as parsed from the request.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Sizes {
    pub cpu: Option<u32>,
    pub memory: Option<u32>,
}

/// A number, or a number followed by `unit` (any case, an optional space) times 1024.
fn units(v: &Value, unit: &str) -> Option<u32> {
    let text = match v {
        Value::String(s) => s.trim().to_ascii_lowercase(),
        Value::Number(n) => return n.as_u64().and_then(|n| u32::try_from(n).ok()),
        _ => return None,
    };
    if let Some(n) = text.strip_suffix(unit) {
        let f: f64 = n.trim_end().parse().ok()?;
        let v = f * 1024.0;
        return (f.is_finite() && v >= 0.0 && v.fract() == 0.0 && v <= f64::from(u32::MAX))
            .then_some(v as u32);
    }
    text.parse().ok()
}

/// Task-level cpu and memory in the documented forms.
pub fn sizes(body: &Value) -> Result<Sizes, ApiError> {
    let mut out = Sizes::default();
    if let Some(v) = body.get("cpu").filter(|v| !v.is_null()) {
        out.cpu = Some(units(v, "vcpu").ok_or_else(|| {
            client(format!(
                "Invalid 'cpu' setting for task: {v}. Use CPU units (1024) or vCPUs (1 vCPU)."
            ))
        })?);
    }
    if let Some(v) = body.get("memory").filter(|v| !v.is_null()) {
        out.memory = Some(units(v, "gb").ok_or_else(|| {
            client(format!(
                "Invalid 'memory' setting for task: {v}. Use MiB (1024) or GB (1 GB)."
            ))
        })?);
    }
    Ok(out)
}

/// `ipcMode` and `pidMode`, when given, hold one of the API's values (an empty string too is
/// refused).
pub fn namespace_modes(body: &Value) -> Result<(), ApiError> {
    for (key, allowed) in [("ipcMode", "[host,task,none]"), ("pidMode", "[task,host]")] {
        if let Some(v) = body.get(key).filter(|v| !v.is_null()) {
            let s = v.as_str().unwrap_or_default();
            if !allowed.trim_matches(['[', ']']).split(',').any(|a| a == s) {
                return Err(client(format!(
                    "{s} is not a valid value for {key}. The value must be one of {allowed}"
                )));
            }
        }
    }
    Ok(())
}

/// The memory sizes (MiB) Fargate offers with `cpu` units.
fn fargate_memory(cpu: u32) -> Vec<u32> {
    let (from, to, step) = match cpu {
        256 => return vec![512, 1024, 2048],
        512 => (1024, 4096, 1024),
        1024 => (2048, 8192, 1024),
        2048 => (4096, 16384, 1024),
        4096 => (8192, 30720, 1024),
        8192 => (16384, 61440, 4096),
        16384 => (32768, 122880, 8192),
        _ => return Vec::new(),
    };
    (from..=to).step_by(step).collect()
}

/// Whether a member's value does something (`false`, `[]`, `{}` and `null` do not).
fn set(v: Option<&Value>) -> bool {
    match v {
        None | Some(Value::Null | Value::Bool(false)) => false,
        Some(Value::Array(a)) => !a.is_empty(),
        Some(Value::Object(o)) => !o.is_empty(),
        Some(_) => true,
    }
}

/// Container members Fargate does not support.
const FARGATE_CONTAINER: [&str; 12] = [
    "/disableNetworking",
    "/dnsSearchDomains",
    "/dnsServers",
    "/dockerSecurityOptions",
    "/extraHosts",
    "/links",
    "/privileged",
    "/linuxParameters/maxSwap",
    "/linuxParameters/swappiness",
    "/linuxParameters/devices",
    "/linuxParameters/sharedMemorySize",
    "/linuxParameters/tmpfs",
];

/// The first parameter of the task definition Fargate does not support, named as ECS's
/// messages name it.
pub fn fargate_unsupported(body: &Value) -> Option<String> {
    if set(body.get("ipcMode")) {
        return Some("ipcMode".into());
    }
    if let Some(mode) = body.get("pidMode").and_then(Value::as_str)
        && mode != "task"
    {
        return Some(format!(
            "pidMode '{mode}'. The supported value for pidMode is 'task'"
        ));
    }
    if set(body.get("placementConstraints")) {
        return Some("placementConstraints".into());
    }
    let volumes = body.get("volumes").and_then(Value::as_array);
    if volumes
        .into_iter()
        .flatten()
        .any(|v| set(v.get("dockerVolumeConfiguration")))
    {
        return Some("dockerVolumeConfiguration".into());
    }
    let containers = body.get("containerDefinitions").and_then(Value::as_array);
    for c in containers.into_iter().flatten() {
        let name = c.get("name").and_then(Value::as_str).unwrap_or_default();
        if let Some(m) = FARGATE_CONTAINER.iter().find(|m| set(c.pointer(m))) {
            return Some(format!(
                "{} (container {name})",
                m.trim_start_matches('/').replace('/', ".")
            ));
        }
        let caps = c
            .pointer("/linuxParameters/capabilities/add")
            .and_then(Value::as_array);
        if let Some(cap) = caps
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .find(|c| *c != "CAP_SYS_PTRACE")
        {
            return Some(format!("adding the capability {cap} (container {name})"));
        }
        let gpu = c
            .get("resourceRequirements")
            .and_then(Value::as_array)
            .is_some_and(|rs| rs.iter().any(|r| r.get("type") == Some(&"GPU".into())));
        if gpu {
            return Some(format!("GPU resource requirements (container {name})"));
        }
    }
    None
}

/// What RegisterTaskDefinition refuses of a task definition that requires FARGATE.
pub fn fargate(body: &Value, network_mode: &str, sizes: Sizes) -> Result<(), ApiError> {
    if network_mode != "awsvpc" {
        return Err(client("Fargate only supports network mode 'awsvpc'."));
    }
    let Some(cpu) = sizes.cpu else {
        return Err(client(
            "Fargate requires that 'cpu' be defined at the task level.",
        ));
    };
    let Some(memory) = sizes.memory else {
        return Err(client(
            "Fargate requires that 'memory' be defined at the task level.",
        ));
    };
    if !fargate_memory(cpu).contains(&memory) {
        return Err(client(format!(
            "No Fargate configuration exists for given values: {cpu} CPU, {memory} memory. See the Amazon ECS documentation for the valid values."
        )));
    }
    if let Some(what) = fargate_unsupported(body) {
        return Err(client(format!(
            "Tasks using the Fargate launch type do not support {what}."
        )));
    }
    Ok(())
}

/// A container's memory limit above the task's: "The 'memory' setting for container 'web' is
/// greater than for the task."
pub fn container_memory(body: &Value, task_memory: Option<u32>) -> Result<(), ApiError> {
    let Some(task) = task_memory else {
        return Ok(());
    };
    let containers = body.get("containerDefinitions").and_then(Value::as_array);
    for c in containers.into_iter().flatten() {
        if c.get("memory")
            .and_then(Value::as_u64)
            .is_some_and(|m| m > u64::from(task))
        {
            let name = c.get("name").and_then(Value::as_str).unwrap_or_default();
            return Err(client(format!(
                "The 'memory' setting for container '{name}' is greater than for the task."
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn sizes_in_the_documented_forms() {
        let s = |cpu: Value, memory: Value| sizes(&json!({"cpu": cpu, "memory": memory}));
        assert_eq!(
            s(json!("0.25 vCPU"), json!("1 GB")).unwrap(),
            Sizes {
                cpu: Some(256),
                memory: Some(1024)
            }
        );
        assert_eq!(s(json!("1vcpu"), json!("2GB")).unwrap().memory, Some(2048));
        assert!(s(json!("256"), json!("4096MB")).is_err());
        assert!(s(json!("256"), json!("2 GiB")).is_err());
        assert!(s(json!("lots"), json!("512")).is_err());
    }

    #[test]
    fn fargate_rules() {
        let ok = Sizes {
            cpu: Some(256),
            memory: Some(512),
        };
        assert!(fargate(&json!({}), "awsvpc", ok).is_ok());
        let e = fargate(
            &json!({}),
            "awsvpc",
            Sizes {
                cpu: Some(256),
                memory: Some(4096),
            },
        )
        .unwrap_err();
        assert!(e.message.starts_with(
            "No Fargate configuration exists for given values: 256 CPU, 4096 memory."
        ));
        let e = fargate(&json!({"ipcMode": "host"}), "awsvpc", ok).unwrap_err();
        assert_eq!(
            e.message,
            "Tasks using the Fargate launch type do not support ipcMode."
        );
        let e = fargate(&json!({"pidMode": "host"}), "awsvpc", ok).unwrap_err();
        assert_eq!(
            e.message,
            "Tasks using the Fargate launch type do not support pidMode 'host'. The supported value for pidMode is 'task'."
        );
        assert!(
            fargate(
                &json!({"pidMode": "task", "containerDefinitions": [{"links": []}]}),
                "awsvpc",
                ok
            )
            .is_ok()
        );
        assert!(
            fargate(
                &json!({"containerDefinitions": [{"name": "a", "links": ["b"]}]}),
                "awsvpc",
                ok
            )
            .is_err()
        );
    }

    #[test]
    fn namespace_mode_values() {
        assert!(namespace_modes(&json!({"ipcMode": "none", "pidMode": "task"})).is_ok());
        let e = namespace_modes(&json!({"pidMode": ""})).unwrap_err();
        assert_eq!(
            e.message,
            " is not a valid value for pidMode. The value must be one of [task,host]"
        );
        assert_eq!(e.code, "ClientException");
    }
}
