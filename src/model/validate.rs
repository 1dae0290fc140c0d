//! ECS rules checked before any AWS call.
//!
//! Receives the loaded task definition and (optionally) service definition with their
//! documents. Hands on located diagnostics, each with a hint saying what to do. The rules are
//! those ECS itself enforces at RegisterTaskDefinition / CreateService time (or that make a
//! deployment fail later), so a mistake shows up with its file:line:col before anything is
//! registered.

use std::collections::BTreeMap;

use aws_sdk_ecs::operation::create_service::CreateServiceInput;
use aws_sdk_ecs::operation::register_task_definition::RegisterTaskDefinitionInput;
use aws_sdk_ecs::types::{Compatibility, LaunchType, NetworkMode};

use super::{Loaded, fargate};
use crate::error::{Diagnostic, Location, did_you_mean};
use crate::render::Document;

/// A loaded definition and its document: enough to point at a JSON pointer of it.
struct Src<'a, T> {
    loaded: &'a Loaded<T>,
    doc: &'a Document,
}

impl<T> Src<'_, T> {
    fn at(&self, pointer: &str) -> Location {
        self.doc.locate(&self.loaded.doc_pointer(pointer))
    }

    fn key(&self, pointer: &str) -> Location {
        self.doc.locate_key(&self.loaded.doc_pointer(pointer))
    }
}

/// Checks the task definition and, when given, the service definition against it.
pub fn validate(
    task: (&Loaded<RegisterTaskDefinitionInput>, &Document),
    service: Option<(&Loaded<CreateServiceInput>, &Document)>,
) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    let t = Src {
        loaded: task.0,
        doc: task.1,
    };
    let Some(td) = &t.loaded.input else {
        return out;
    };
    let svc = service.and_then(|(loaded, doc)| {
        loaded
            .input
            .as_ref()
            .map(|input| (input, Src { loaded, doc }))
    });

    family(&t, td, &mut out);
    containers(&t, td, &mut out);
    enums(&t, td, svc.as_ref().map(|(s, src)| (*s, src)), &mut out);

    let on_fargate_task = td
        .requires_compatibilities()
        .contains(&Compatibility::Fargate);
    let fargate_service = svc.as_ref().and_then(|(s, src)| fargate_launch(s, src));
    if let Some((what, location)) = &fargate_service
        && !on_fargate_task
    {
        out.push(
            Diagnostic::error(format!(
                "the service runs on Fargate ({what}) but the task definition's requiresCompatibilities lacks FARGATE"
            ))
            .at(location.clone())
            .hint(format!(
                "add \"requiresCompatibilities\": [\"FARGATE\"] to the task definition ({})",
                t.doc.path.display()
            )),
        );
    }
    if on_fargate_task || fargate_service.is_some() {
        fargate_rules(&t, td, &mut out);
    }
    let awsvpc = td.network_mode() == Some(&NetworkMode::Awsvpc);
    if awsvpc {
        host_ports(&t, td, &mut out);
    }
    memory_sum(&t, td, &mut out);
    if let Some((s, src)) = &svc {
        load_balancers(&t, td, s, src, &mut out);
        if awsvpc {
            subnets(s, src, &mut out);
        }
    }
    out
}

fn family(
    t: &Src<'_, RegisterTaskDefinitionInput>,
    td: &RegisterTaskDefinitionInput,
    out: &mut Vec<Diagnostic>,
) {
    let family = td.family().unwrap_or("");
    if family.is_empty() {
        out.push(
            Diagnostic::error("the task definition has no family")
                .at(t.at(""))
                .hint("add \"family\": \"<name>\" (letters, digits, hyphens and underscores); revisions are registered under it"),
        );
        return;
    }
    let valid_chars = family
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if !valid_chars || family.chars().count() > 255 {
        let why = if valid_chars {
            format!("is {} characters long", family.chars().count())
        } else {
            "contains characters other than letters, digits, hyphens and underscores".to_string()
        };
        out.push(
            Diagnostic::error(format!("family \"{family}\" {why}"))
                .at(t.at("/family"))
                .hint("use up to 255 letters (A-Z, a-z), digits, hyphens and underscores"),
        );
    }
}

fn containers(
    t: &Src<'_, RegisterTaskDefinitionInput>,
    td: &RegisterTaskDefinitionInput,
    out: &mut Vec<Diagnostic>,
) {
    let defs = td.container_definitions();
    if defs.is_empty() {
        out.push(
            Diagnostic::error("the task definition has no containers")
                .at(t.at("/containerDefinitions"))
                .hint("add \"containerDefinitions\": [{\"name\": ..., \"image\": ..., \"essential\": true}]"),
        );
        return;
    }
    let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
    for (i, c) in defs.iter().enumerate() {
        let p = format!("/containerDefinitions/{i}");
        match c.name().filter(|n| !n.is_empty()) {
            None => out.push(
                Diagnostic::error(format!("container {i} has no name"))
                    .at(t.at(&p))
                    .hint("add \"name\": \"<name>\"; the service's load balancer and logs refer to containers by name"),
            ),
            Some(name) => {
                if let Some(first) = seen.insert(name, i) {
                    out.push(
                        Diagnostic::error(format!("container name \"{name}\" is used twice"))
                            .at(t.at(&format!("{p}/name")))
                            .hint(format!(
                                "container names must be unique in a task definition; container {first} has it too"
                            )),
                    );
                    seen.insert(name, first);
                }
            }
        }
        if c.image().is_none_or(str::is_empty) {
            let who = c.name().map_or_else(
                || format!("container {i}"),
                |n| format!("container \"{n}\""),
            );
            out.push(
                Diagnostic::error(format!("{who} has no image"))
                    .at(t.at(&p))
                    .hint("add \"image\": \"<repository>:<tag>\" (or @sha256:<digest>)"),
            );
        }
    }
    // ECS treats a container without "essential" as essential.
    if defs.iter().all(|c| c.essential() == Some(false)) {
        out.push(
            Diagnostic::error("no container is essential")
                .at(t.at("/containerDefinitions"))
                .hint("set \"essential\": true on the main container (a task needs at least one essential container)"),
        );
    }
}

/// Enum values the SDK does not know (a typo would otherwise reach the API).
fn enums(
    t: &Src<'_, RegisterTaskDefinitionInput>,
    td: &RegisterTaskDefinitionInput,
    svc: Option<(&CreateServiceInput, &Src<'_, CreateServiceInput>)>,
    out: &mut Vec<Diagnostic>,
) {
    let mut check = |value: &str, known: &[&str], what: &str, location: Location| {
        if !known.contains(&value) {
            let hint = match did_you_mean(value, known.iter().copied()) {
                Some(m) => format!("did you mean \"{m}\"?"),
                None => format!("use one of: {}", known.join(", ")),
            };
            out.push(
                Diagnostic::error(format!("unknown {what} \"{value}\""))
                    .at(location)
                    .hint(hint),
            );
        }
    };
    if let Some(m) = td.network_mode() {
        check(
            m.as_str(),
            NetworkMode::values(),
            "networkMode",
            t.at("/networkMode"),
        );
    }
    for (i, c) in td.requires_compatibilities().iter().enumerate() {
        check(
            c.as_str(),
            Compatibility::values(),
            "compatibility",
            t.at(&format!("/requiresCompatibilities/{i}")),
        );
    }
    if let Some((s, src)) = svc
        && let Some(l) = s.launch_type()
    {
        check(
            l.as_str(),
            LaunchType::values(),
            "launchType",
            src.at("/launchType"),
        );
    }
}

/// How the service launches on Fargate, if it does: a description and where it says so.
fn fargate_launch(
    s: &CreateServiceInput,
    src: &Src<'_, CreateServiceInput>,
) -> Option<(String, Location)> {
    if s.launch_type() == Some(&LaunchType::Fargate) {
        return Some(("launchType FARGATE".into(), src.at("/launchType")));
    }
    s.capacity_provider_strategy()
        .iter()
        .enumerate()
        .find(|(_, item)| matches!(item.capacity_provider(), "FARGATE" | "FARGATE_SPOT"))
        .map(|(i, item)| {
            (
                format!("capacity provider {}", item.capacity_provider()),
                src.at(&format!("/capacityProviderStrategy/{i}/capacityProvider")),
            )
        })
}

fn fargate_rules(
    t: &Src<'_, RegisterTaskDefinitionInput>,
    td: &RegisterTaskDefinitionInput,
    out: &mut Vec<Diagnostic>,
) {
    match td.network_mode() {
        Some(NetworkMode::Awsvpc) => {}
        Some(other) => out.push(
            Diagnostic::error(format!(
                "Fargate tasks need networkMode awsvpc, not {}",
                other.as_str()
            ))
            .at(t.at("/networkMode"))
            .hint("set \"networkMode\": \"awsvpc\""),
        ),
        None => out.push(
            Diagnostic::error(
                "Fargate tasks need networkMode awsvpc; the task definition sets none",
            )
            .at(t.at(""))
            .hint("add \"networkMode\": \"awsvpc\""),
        ),
    }
    let cpu_sizes = fargate::CPU_SIZES.map(|c| c.to_string()).join(", ");
    let cpu = match td.cpu() {
        None => {
            out.push(
                Diagnostic::error(
                    "Fargate tasks need a task-level cpu; the task definition sets none",
                )
                .at(t.at(""))
                .hint(format!(
                    "add \"cpu\": \"256\" (one of {cpu_sizes} CPU units, or e.g. \"0.5 vCPU\")"
                )),
            );
            None
        }
        Some(text) => match fargate::parse_cpu(text) {
            Some(c) if fargate::CPU_SIZES.contains(&c) => Some(c),
            _ => {
                out.push(
                    Diagnostic::error(format!("cpu \"{text}\" is not a Fargate CPU size"))
                        .at(t.at("/cpu"))
                        .hint(format!(
                            "use one of {cpu_sizes} (CPU units; 1024 = \"1 vCPU\")"
                        )),
                );
                None
            }
        },
    };
    let memory = match td.memory() {
        None => {
            out.push(
                Diagnostic::error(
                    "Fargate tasks need a task-level memory; the task definition sets none",
                )
                .at(t.at(""))
                .hint(match cpu {
                    Some(c) => format!(
                        "add \"memory\" with one of {} MiB for cpu {c}",
                        fargate::describe_sizes(&fargate::memory_sizes(c))
                    ),
                    None => "add \"memory\": \"512\" (MiB, or e.g. \"1 GB\")".to_string(),
                }),
            );
            None
        }
        Some(text) => {
            let parsed = fargate::parse_memory(text);
            if parsed.is_none() {
                out.push(
                    Diagnostic::error(format!("memory \"{text}\" is not a size ECS understands"))
                        .at(t.at("/memory"))
                        .hint("write MiB (\"2048\") or GB (\"2 GB\")"),
                );
            }
            parsed.map(|m| (m, text))
        }
    };
    if let (Some(c), Some((m, text))) = (cpu, memory) {
        let sizes = fargate::memory_sizes(c);
        if !sizes.contains(&m) {
            out.push(
                Diagnostic::error(format!(
                    "memory \"{text}\" ({m} MiB) is not valid with cpu {c} on Fargate"
                ))
                .at(t.at("/memory"))
                .hint(format!(
                    "with cpu {c}, use memory {} MiB, or change cpu",
                    fargate::describe_sizes(&sizes)
                )),
            );
        }
    }
}

fn host_ports(
    t: &Src<'_, RegisterTaskDefinitionInput>,
    td: &RegisterTaskDefinitionInput,
    out: &mut Vec<Diagnostic>,
) {
    for (i, c) in td.container_definitions().iter().enumerate() {
        for (j, pm) in c.port_mappings().iter().enumerate() {
            if let (Some(host), Some(container)) = (pm.host_port(), pm.container_port())
                && host != container
            {
                out.push(
                    Diagnostic::error(format!(
                        "hostPort {host} differs from containerPort {container} under awsvpc"
                    ))
                    .at(t.at(&format!("/containerDefinitions/{i}/portMappings/{j}/hostPort")))
                    .hint(format!(
                        "with networkMode awsvpc the host port is the container port: set hostPort to {container} or remove it"
                    )),
                );
            }
        }
    }
}

fn memory_sum(
    t: &Src<'_, RegisterTaskDefinitionInput>,
    td: &RegisterTaskDefinitionInput,
    out: &mut Vec<Diagnostic>,
) {
    let Some(task_memory) = td.memory().and_then(fargate::parse_memory) else {
        return;
    };
    let limits: Vec<(String, i64)> = td
        .container_definitions()
        .iter()
        .filter_map(|c| Some((c.name().unwrap_or("?").to_string(), i64::from(c.memory()?))))
        .collect();
    let sum: i64 = limits.iter().map(|(_, m)| m).sum();
    if sum > i64::from(task_memory) {
        let parts = limits
            .iter()
            .map(|(n, m)| format!("{n} {m}"))
            .collect::<Vec<_>>()
            .join(" + ");
        out.push(
            Diagnostic::error(format!(
                "the containers' memory limits add up to {sum} MiB, more than the task's {task_memory} MiB"
            ))
            .at(t.at("/memory"))
            .hint(format!(
                "raise the task memory or lower the container limits ({parts}); memoryReservation sets a soft limit instead"
            )),
        );
    }
}

fn load_balancers(
    t: &Src<'_, RegisterTaskDefinitionInput>,
    td: &RegisterTaskDefinitionInput,
    s: &CreateServiceInput,
    src: &Src<'_, CreateServiceInput>,
    out: &mut Vec<Diagnostic>,
) {
    let names: Vec<&str> = td
        .container_definitions()
        .iter()
        .filter_map(|c| c.name())
        .collect();
    for (i, lb) in s.load_balancers().iter().enumerate() {
        let Some(name) = lb.container_name() else {
            continue;
        };
        let p = format!("/loadBalancers/{i}");
        let Some(container) = td
            .container_definitions()
            .iter()
            .find(|c| c.name() == Some(name))
        else {
            let hint = match did_you_mean(name, names.iter().copied()) {
                Some(m) => format!("did you mean \"{m}\"?"),
                None => format!(
                    "the task definition ({}) has containers: {}",
                    t.doc.path.display(),
                    names.join(", ")
                ),
            };
            out.push(
                Diagnostic::error(format!(
                    "load balancer {i} names container \"{name}\", which the task definition does not have"
                ))
                .at(src.at(&format!("{p}/containerName")))
                .hint(hint),
            );
            continue;
        };
        let Some(port) = lb.container_port() else {
            continue;
        };
        let ports: Vec<i32> = container
            .port_mappings()
            .iter()
            .filter_map(|pm| pm.container_port())
            .collect();
        if !ports.contains(&port) {
            let hint = if ports.is_empty() {
                format!(
                    "add \"portMappings\": [{{\"containerPort\": {port}}}] to container \"{name}\""
                )
            } else {
                format!(
                    "container \"{name}\" maps port(s) {}; use one of them or add a portMapping for {port}",
                    ports
                        .iter()
                        .map(i32::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            };
            out.push(
                Diagnostic::error(format!(
                    "load balancer {i} sends traffic to port {port} of container \"{name}\", which has no portMapping for it"
                ))
                .at(src.at(&format!("{p}/containerPort")))
                .hint(hint),
            );
        }
    }
}

fn subnets(s: &CreateServiceInput, src: &Src<'_, CreateServiceInput>, out: &mut Vec<Diagnostic>) {
    let has_subnets = s
        .network_configuration()
        .and_then(|n| n.awsvpc_configuration())
        .is_some_and(|a| !a.subnets().is_empty());
    if !has_subnets {
        out.push(
            Diagnostic::error("the task uses networkMode awsvpc but the service names no subnets")
                .at(src.key("/networkConfiguration/awsvpcConfiguration/subnets"))
                .hint("add \"networkConfiguration\": {\"awsvpcConfiguration\": {\"subnets\": [\"subnet-...\"], \"securityGroups\": [\"sg-...\"]}}"),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::tests::{FULL_SERVICE, FULL_TASK, doc_named, pos};
    use crate::model::{service_definition, task_definition};

    const TASK: &str = r#"{
  "family": "web",
  "containerDefinitions": [{"name": "app", "image": "nginx:1"}]
}"#;

    const FARGATE_TASK: &str = r#"{
  "family": "web",
  "requiresCompatibilities": ["FARGATE"],
  "networkMode": "awsvpc",
  "cpu": "256",
  "memory": "512",
  "containerDefinitions": [
    {"name": "app", "image": "nginx:1", "portMappings": [{"containerPort": 80}]}
  ]
}"#;

    const SERVICE: &str = r#"{
  "launchType": "FARGATE",
  "loadBalancers": [{"targetGroupArn": "arn:tg", "containerName": "app", "containerPort": 80}],
  "networkConfiguration": {"awsvpcConfiguration": {"subnets": ["subnet-1"]}}
}"#;

    /// Validates; the fixtures themselves must decode cleanly.
    fn run(task: &str, service: Option<&str>) -> Vec<Diagnostic> {
        let td = doc_named("task.json", task);
        let t = task_definition(&td);
        assert!(t.diagnostics.is_empty(), "{:#?}", t.diagnostics);
        let sd = service.map(|s| doc_named("service.json", s));
        let s = sd.as_ref().map(|d| (service_definition(d), d));
        if let Some((l, _)) = &s {
            assert!(l.diagnostics.is_empty(), "{:#?}", l.diagnostics);
        }
        validate((&t, &td), s.as_ref().map(|(l, d)| (l, *d)))
    }

    /// Exactly one finding, containing `message`, located at `needle` in `file`'s `text`.
    fn one(
        found: &[Diagnostic],
        message: &str,
        file: &str,
        text: &str,
        needle: &str,
    ) -> Diagnostic {
        assert_eq!(found.len(), 1, "{found:#?}");
        let d = &found[0];
        assert!(d.is_error());
        assert!(d.message.contains(message), "{}", d.message);
        assert!(d.hint.is_some());
        let l = d.location.as_ref().unwrap();
        assert_eq!(l.path.to_str(), Some(file));
        assert_eq!((l.line, l.col), pos(text, needle), "{d}");
        d.clone()
    }

    #[test]
    fn valid_definitions_are_quiet() {
        assert!(run(TASK, None).is_empty());
        assert!(run(FARGATE_TASK, None).is_empty());
        assert!(run(FARGATE_TASK, Some(SERVICE)).is_empty());
        assert!(run(FULL_TASK, Some(FULL_SERVICE)).is_empty());
    }

    #[test]
    fn family_missing_or_invalid() {
        let t = r#"{"containerDefinitions": [{"name": "a", "image": "x"}]}"#;
        one(&run(t, None), "has no family", "task.json", t, "{");
        let t = TASK.replace("\"web\"", "\"web app!\"");
        one(
            &run(&t, None),
            "contains characters other than",
            "task.json",
            &t,
            "\"web app!\"",
        );
        let long = "a".repeat(256);
        let t = TASK.replace("\"web\"", &format!("\"{long}\""));
        one(
            &run(&t, None),
            "is 256 characters long",
            "task.json",
            &t,
            &format!("\"{long}\""),
        );
        let t = TASK.replace("\"web\"", &format!("\"{}\"", "a_B-9".repeat(51)));
        assert!(run(&t, None).is_empty());
    }

    #[test]
    fn no_containers() {
        let t = "{\"family\": \"web\", \"containerDefinitions\": []}";
        one(&run(t, None), "has no containers", "task.json", t, "[]");
    }

    #[test]
    fn container_without_name_or_image() {
        let t = r#"{"family": "web", "containerDefinitions": [{"name": "a", "image": "x"}, {"image": "y"}]}"#;
        one(
            &run(t, None),
            "container 1 has no name",
            "task.json",
            t,
            "{\"image\": \"y\"}",
        );
        let t = r#"{"family": "web", "containerDefinitions": [{"name": "a"}]}"#;
        one(
            &run(t, None),
            "container \"a\" has no image",
            "task.json",
            t,
            "{\"name\"",
        );
    }

    #[test]
    fn duplicate_container_names() {
        let t = r#"{"family": "web", "containerDefinitions": [
  {"name": "app", "image": "x"},
  {"name": "app", "image": "y"}
]}"#;
        let d = one(
            &run(t, None),
            "\"app\" is used twice",
            "task.json",
            t,
            "\"app\", \"image\": \"y\"",
        );
        assert!(d.hint.unwrap().contains("container 0"));
    }

    #[test]
    fn at_least_one_essential_container() {
        let t = r#"{"family": "web", "containerDefinitions": [
  {"name": "a", "image": "x", "essential": false},
  {"name": "b", "image": "y", "essential": false}
]}"#;
        one(
            &run(t, None),
            "no container is essential",
            "task.json",
            t,
            "[",
        );
        // Omitted means essential.
        let t = r#"{"family": "web", "containerDefinitions": [
  {"name": "a", "image": "x", "essential": false},
  {"name": "b", "image": "y"}
]}"#;
        assert!(run(t, None).is_empty());
    }

    #[test]
    fn unknown_enum_values() {
        let t = FARGATE_TASK.replace("\"awsvpc\"", "\"awsvcp\"");
        let found = run(&t, None);
        let d = found
            .iter()
            .find(|d| d.message.contains("unknown networkMode"))
            .unwrap();
        assert_eq!(d.hint.as_deref(), Some("did you mean \"awsvpc\"?"));
        let t = FARGATE_TASK.replace("[\"FARGATE\"]", "[\"FARGTE\"]");
        let d = one(
            &run(&t, None),
            "unknown compatibility \"FARGTE\"",
            "task.json",
            &t,
            "\"FARGTE\"",
        );
        assert_eq!(d.hint.as_deref(), Some("did you mean \"FARGATE\"?"));
        let s = SERVICE.replace("\"FARGATE\"", "\"FARGAT\"");
        one(
            &run(FARGATE_TASK, Some(&s)),
            "unknown launchType",
            "service.json",
            &s,
            "\"FARGAT\"",
        );
    }

    #[test]
    fn fargate_service_needs_fargate_compatibility() {
        let t = FARGATE_TASK.replace("\"requiresCompatibilities\": [\"FARGATE\"],", "");
        let d = one(
            &run(&t, Some(SERVICE)),
            "lacks FARGATE",
            "service.json",
            SERVICE,
            "\"FARGATE\"",
        );
        assert!(d.hint.unwrap().contains("task.json"));
        let s = SERVICE.replace(
            "\"launchType\": \"FARGATE\"",
            "\"capacityProviderStrategy\": [{\"capacityProvider\": \"FARGATE_SPOT\", \"weight\": 1}]",
        );
        one(
            &run(&t, Some(&s)),
            "capacity provider FARGATE_SPOT",
            "service.json",
            &s,
            "\"FARGATE_SPOT\"",
        );
        // EC2 services do not need it.
        let s = SERVICE.replace("\"FARGATE\"", "\"EC2\"");
        assert!(run(&t, Some(&s)).is_empty());
    }

    #[test]
    fn fargate_needs_awsvpc() {
        let t = FARGATE_TASK.replace("\"awsvpc\"", "\"bridge\"");
        one(
            &run(&t, None),
            "need networkMode awsvpc, not bridge",
            "task.json",
            &t,
            "\"bridge\"",
        );
        let t = FARGATE_TASK.replace("\"networkMode\": \"awsvpc\",", "");
        one(
            &run(&t, None),
            "the task definition sets none",
            "task.json",
            &t,
            "{",
        );
        // The service alone can make it Fargate.
        let t = TASK.replace("\"family\": \"web\",", "\"family\": \"web\", \"networkMode\": \"bridge\", \"cpu\": \"256\", \"memory\": \"512\",");
        let found = run(
            &t,
            Some(&SERVICE.replace(
                "\"containerName\": \"app\", \"containerPort\": 80",
                "\"containerName\": \"app\"",
            )),
        );
        assert!(
            found.iter().any(|d| d.message.contains("not bridge")),
            "{found:#?}"
        );
    }

    #[test]
    fn fargate_needs_cpu_and_memory() {
        let t = FARGATE_TASK.replace("\"cpu\": \"256\",", "");
        one(
            &run(&t, None),
            "need a task-level cpu",
            "task.json",
            &t,
            "{",
        );
        let t = FARGATE_TASK.replace("\"memory\": \"512\",", "");
        let d = one(
            &run(&t, None),
            "need a task-level memory",
            "task.json",
            &t,
            "{",
        );
        assert!(d.hint.unwrap().contains("512, 1024, 2048 MiB for cpu 256"));
    }

    #[test]
    fn fargate_cpu_memory_pairs() {
        let t = FARGATE_TASK.replace("\"256\"", "\"300\"");
        let d = one(
            &run(&t, None),
            "cpu \"300\" is not a Fargate CPU size",
            "task.json",
            &t,
            "\"300\"",
        );
        assert!(
            d.hint
                .unwrap()
                .contains("256, 512, 1024, 2048, 4096, 8192, 16384")
        );
        let t = FARGATE_TASK.replace("\"256\"", "\"1 vCPU\"");
        let d = one(
            &run(&t, None),
            "memory \"512\" (512 MiB) is not valid with cpu 1024",
            "task.json",
            &t,
            "\"512\"",
        );
        assert_eq!(
            d.hint.as_deref(),
            Some(
                "with cpu 1024, use memory 2048, 3072, ... 8192 (every 1024 MiB) MiB, or change cpu"
            )
        );
        let t = FARGATE_TASK.replace("\"512\"", "\"lots\"");
        one(
            &run(&t, None),
            "not a size ECS understands",
            "task.json",
            &t,
            "\"lots\"",
        );
        for (cpu, memory) in [
            ("0.25 vCPU", "1 GB"),
            ("512", "4GB"),
            ("16 vCPU", "120 GB"),
            ("8192", "61440"),
        ] {
            let t = FARGATE_TASK
                .replace("\"cpu\": \"256\"", &format!("\"cpu\": \"{cpu}\""))
                .replace("\"memory\": \"512\"", &format!("\"memory\": \"{memory}\""));
            assert!(run(&t, None).is_empty(), "{cpu} {memory}");
        }
    }

    #[test]
    fn host_port_must_equal_container_port_under_awsvpc() {
        let t = FARGATE_TASK.replace(
            "{\"containerPort\": 80}",
            "{\"containerPort\": 80, \"hostPort\": 8080}",
        );
        one(
            &run(&t, None),
            "hostPort 8080 differs from containerPort 80",
            "task.json",
            &t,
            "8080",
        );
        let t = FARGATE_TASK.replace(
            "{\"containerPort\": 80}",
            "{\"containerPort\": 80, \"hostPort\": 80}",
        );
        assert!(run(&t, None).is_empty());
        let t = TASK.replace("\"image\": \"nginx:1\"", "\"image\": \"nginx:1\", \"portMappings\": [{\"containerPort\": 80, \"hostPort\": 8080}]");
        assert!(run(&t, None).is_empty(), "bridge mode maps ports freely");
    }

    #[test]
    fn load_balancer_container_must_exist() {
        let s = SERVICE.replace("\"containerName\": \"app\"", "\"containerName\": \"ap\"");
        let d = one(
            &run(FARGATE_TASK, Some(&s)),
            "names container \"ap\"",
            "service.json",
            &s,
            "\"ap\"",
        );
        assert_eq!(d.hint.as_deref(), Some("did you mean \"app\"?"));
        let s = SERVICE.replace(
            "\"containerName\": \"app\"",
            "\"containerName\": \"worker\"",
        );
        let d = one(
            &run(FARGATE_TASK, Some(&s)),
            "names container \"worker\"",
            "service.json",
            &s,
            "\"worker\"",
        );
        assert!(d.hint.unwrap().contains("has containers: app"));
    }

    #[test]
    fn load_balancer_port_must_be_mapped() {
        let s = SERVICE.replace("\"containerPort\": 80", "\"containerPort\": 8080");
        let d = one(
            &run(FARGATE_TASK, Some(&s)),
            "port 8080 of container \"app\"",
            "service.json",
            &s,
            "8080",
        );
        assert!(d.hint.unwrap().contains("maps port(s) 80"));
        let t = FARGATE_TASK.replace(", \"portMappings\": [{\"containerPort\": 80}]", "");
        let d = one(
            &run(&t, Some(SERVICE)),
            "has no portMapping",
            "service.json",
            SERVICE,
            "80}",
        );
        assert!(d.hint.unwrap().contains("add \"portMappings\""));
    }

    #[test]
    fn awsvpc_service_needs_subnets() {
        let s = SERVICE.replace(
            "\"subnets\": [\"subnet-1\"]",
            "\"securityGroups\": [\"sg-1\"]",
        );
        one(
            &run(FARGATE_TASK, Some(&s)),
            "names no subnets",
            "service.json",
            &s,
            "\"awsvpcConfiguration\"",
        );
        let s = SERVICE.replace(",\n  \"networkConfiguration\": {\"awsvpcConfiguration\": {\"subnets\": [\"subnet-1\"]}}", "");
        let found = run(FARGATE_TASK, Some(&s));
        assert_eq!(found.len(), 1, "{found:#?}");
        let s = SERVICE.replace("\"subnet-1\"", "");
        assert_eq!(run(FARGATE_TASK, Some(&s)).len(), 1);
        // Not awsvpc: no subnets needed.
        let s = r#"{"launchType": "EC2"}"#;
        assert!(run(TASK, Some(s)).is_empty());
    }

    #[test]
    fn container_memory_must_fit_in_task_memory() {
        let t = r#"{"family": "web", "memory": "1 GB", "containerDefinitions": [
  {"name": "a", "image": "x", "memory": 768},
  {"name": "b", "image": "y", "memory": 512, "memoryReservation": 128}
]}"#;
        let d = one(
            &run(t, None),
            "add up to 1280 MiB, more than the task's 1024 MiB",
            "task.json",
            t,
            "\"1 GB\"",
        );
        assert!(d.hint.unwrap().contains("a 768 + b 512"));
        let t = t.replace("768", "512");
        assert!(run(&t, None).is_empty());
    }
}
