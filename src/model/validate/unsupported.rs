//! What a Fargate task definition cannot use, as AWS's page "Amazon ECS task definition
//! differences for Fargate" lists it, plus the pidMode rule of the RegisterTaskDefinition
//! reference ("On Fargate for Linux containers, the only valid value is task").
//!
//! Receives the task definition as the SDK value in JSON (the pointers of the decoded value);
//! hands on one located finding per member set. "Set" means present with a value that does
//! something: `false`, `[]`, `{}` and `null` are left alone (describe output carries empty
//! lists, and ECS accepts them).

use serde_json::Value;

use super::Src;
use crate::error::Diagnostic;
use aws_sdk_ecs::operation::register_task_definition::RegisterTaskDefinitionInput;

/// The AWS page every finding names.
const PAGE: &str = "AWS: \"Amazon ECS task definition differences for Fargate\"";

/// Container members Fargate does not support (JSON pointers inside a container definition).
const CONTAINER: [&str; 12] = [
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

/// The one Linux capability a Fargate container may add.
const ALLOWED_CAPABILITY: &str = "CAP_SYS_PTRACE";

/// Whether a member's value does something.
fn set(v: Option<&Value>) -> bool {
    match v {
        None | Some(Value::Null | Value::Bool(false)) => false,
        Some(Value::Array(a)) => !a.is_empty(),
        Some(Value::Object(o)) => !o.is_empty(),
        Some(_) => true,
    }
}

fn finding(
    t: &Src<'_, RegisterTaskDefinitionInput>,
    pointer: &str,
    what: String,
    fix: &str,
) -> Diagnostic {
    Diagnostic::error(format!("Fargate tasks do not support {what}"))
        .at(t.at(pointer))
        .hint(format!("{fix} ({PAGE})"))
}

/// Every Fargate-unsupported member the task definition sets.
pub(super) fn on_fargate(t: &Src<'_, RegisterTaskDefinitionInput>, out: &mut Vec<Diagnostic>) {
    let json = &t.loaded.json;
    if set(json.get("ipcMode")) {
        out.push(finding(
            t,
            "/ipcMode",
            "ipcMode".into(),
            "remove ipcMode: Fargate tasks do not share IPC resources with the host or each other",
        ));
    }
    if let Some(mode) = json.get("pidMode").and_then(Value::as_str)
        && mode != "task"
    {
        out.push(finding(
            t,
            "/pidMode",
            format!("pidMode \"{mode}\""),
            "on Fargate the only valid pidMode is \"task\" (platform version 1.4.0 or later); use it or remove pidMode",
        ));
    }
    if set(json.get("placementConstraints")) {
        out.push(finding(
            t,
            "/placementConstraints",
            "task placementConstraints".into(),
            "remove placementConstraints: Fargate places tasks itself",
        ));
    }
    for (i, v) in json
        .get("volumes")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        if set(v.get("dockerVolumeConfiguration")) {
            out.push(finding(
                t,
                &format!("/volumes/{i}/dockerVolumeConfiguration"),
                "Docker volumes (dockerVolumeConfiguration)".into(),
                "use a bind mount (a volume with a name only) or an EFS volume",
            ));
        }
    }
    let containers = json.get("containerDefinitions").and_then(Value::as_array);
    for (i, c) in containers.into_iter().flatten().enumerate() {
        container(t, i, c, out);
    }
}

fn container(
    t: &Src<'_, RegisterTaskDefinitionInput>,
    i: usize,
    c: &Value,
    out: &mut Vec<Diagnostic>,
) {
    let who = c.get("name").and_then(Value::as_str).map_or_else(
        || format!("container {i}"),
        |n| format!("container \"{n}\""),
    );
    let base = format!("/containerDefinitions/{i}");
    for member in CONTAINER {
        if set(c.pointer(member)) {
            let name = member.trim_start_matches('/').replace('/', ".");
            out.push(finding(
                t,
                &format!("{base}{member}"),
                format!("{name} ({who})"),
                &format!("remove {name}"),
            ));
        }
    }
    let added = c
        .pointer("/linuxParameters/capabilities/add")
        .and_then(Value::as_array);
    for (j, cap) in added.into_iter().flatten().enumerate() {
        if let Some(cap) = cap.as_str()
            && cap != ALLOWED_CAPABILITY
        {
            out.push(finding(
                t,
                &format!("{base}/linuxParameters/capabilities/add/{j}"),
                format!("adding the capability {cap} ({who})"),
                &format!("{ALLOWED_CAPABILITY} is the only capability a Fargate container can add"),
            ));
        }
    }
    let requirements = c.get("resourceRequirements").and_then(Value::as_array);
    for (j, r) in requirements.into_iter().flatten().enumerate() {
        if r.get("type").and_then(Value::as_str) == Some("GPU") {
            out.push(finding(
                t,
                &format!("{base}/resourceRequirements/{j}"),
                format!("GPUs ({who})"),
                "run GPU tasks on EC2 (or ECS Managed Instances) capacity",
            ));
        }
    }
}
