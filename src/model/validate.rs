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
