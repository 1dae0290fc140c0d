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
use aws_sdk_ecs::types::{
    Compatibility, DeploymentControllerType, DeploymentLifecycleHookAction,
    DeploymentLifecycleHookStage, DeploymentLifecycleHookTargetType, DeploymentStrategy,
    LaunchType, NetworkMode,
};

use super::{Loaded, fargate};
use crate::deploy::core::spec::{CANARY_DEFAULTS, LINEAR_DEFAULTS};
use crate::deploy::core::state::Strategy;
use crate::error::{Diagnostic, Location, did_you_mean};
use crate::render::Document;

mod unsupported;

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
    let size = sizes(&t, td, &mut out);

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
        fargate_rules(&t, td, size, &mut out);
        unsupported::on_fargate(&t, &mut out);
    }
    let awsvpc = td.network_mode() == Some(&NetworkMode::Awsvpc);
    if awsvpc {
        host_ports(&t, td, &mut out);
    }
    memory_sum(&t, td, &mut out);
    if let Some((s, src)) = &svc {
        launch_type_or_strategy(s, src, &mut out);
        load_balancers(&t, td, s, src, &mut out);
        deployment(s, src, &mut out);
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
        // ECS rejects a container memory limit or reservation below 6 MiB.
        for (key, value) in [
            ("memory", c.memory()),
            ("memoryReservation", c.memory_reservation()),
        ] {
            if let Some(m) = value.filter(|m| *m < 6) {
                let who = c.name().map_or_else(
                    || format!("container {i}"),
                    |n| format!("container \"{n}\""),
                );
                out.push(
                    Diagnostic::error(format!(
                        "{who}: {key} {m} MiB is below ECS's minimum of 6 MiB"
                    ))
                    .at(t.at(&format!("{p}/{key}")))
                    .hint(format!("set \"{key}\" in MiB, at least 6, or leave it out")),
                );
            }
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

/// Enum values the SDK does not know (a typo, or an empty string, would otherwise reach the
/// API, which refuses it: `"" is not a valid value for pidMode`).
fn enums(
    t: &Src<'_, RegisterTaskDefinitionInput>,
    td: &RegisterTaskDefinitionInput,
    svc: Option<(&CreateServiceInput, &Src<'_, CreateServiceInput>)>,
    out: &mut Vec<Diagnostic>,
) {
    let mut check = |value: &str, known: &[&str], what: &str, location: Location| {
        if known.contains(&value) {
            return;
        }
        let one_of = known.join(", ");
        let d = if value.is_empty() {
            Diagnostic::error(format!(
                "{what} is an empty string, which ECS refuses (\"\" is not a valid value for {what})"
            ))
            .hint(format!("remove the key to leave it unset, or use one of: {one_of}"))
        } else {
            Diagnostic::error(format!("unknown {what} \"{value}\"")).hint(
                match did_you_mean(value, known.iter().copied()) {
                    Some(m) => format!("did you mean \"{m}\"?"),
                    None => format!("use one of: {one_of}"),
                },
            )
        };
        out.push(d.at(location));
    };
    task_enums(t, td, &mut check);
    let Some((s, src)) = svc else {
        return;
    };
    service_enums(s, src, &mut check);
}

/// A check of one enum value: the value, the values the API knows, its name, where it is.
type EnumCheck<'a> = dyn FnMut(&str, &[&str], &str, Location) + 'a;

fn task_enums(
    t: &Src<'_, RegisterTaskDefinitionInput>,
    td: &RegisterTaskDefinitionInput,
    check: &mut EnumCheck<'_>,
) {
    use aws_sdk_ecs::types::{
        ApplicationProtocol, ContainerCondition, CpuArchitecture, IpcMode, LogDriver, OsFamily,
        PidMode, TransportProtocol,
    };
    if let Some(m) = td.network_mode() {
        check(
            m.as_str(),
            NetworkMode::values(),
            "networkMode",
            t.at("/networkMode"),
        );
    }
    if let Some(m) = td.ipc_mode() {
        check(m.as_str(), IpcMode::values(), "ipcMode", t.at("/ipcMode"));
    }
    if let Some(m) = td.pid_mode() {
        check(m.as_str(), PidMode::values(), "pidMode", t.at("/pidMode"));
    }
    for (i, c) in td.requires_compatibilities().iter().enumerate() {
        let at = t.at(&format!("/requiresCompatibilities/{i}"));
        check(c.as_str(), Compatibility::values(), "compatibility", at);
    }
    if let Some(rp) = td.runtime_platform() {
        if let Some(a) = rp.cpu_architecture() {
            let at = t.at("/runtimePlatform/cpuArchitecture");
            check(a.as_str(), CpuArchitecture::values(), "cpuArchitecture", at);
        }
        if let Some(f) = rp.operating_system_family() {
            let at = t.at("/runtimePlatform/operatingSystemFamily");
            check(f.as_str(), OsFamily::values(), "operatingSystemFamily", at);
        }
    }
    for (i, c) in td.container_definitions().iter().enumerate() {
        let p = format!("/containerDefinitions/{i}");
        for (j, pm) in c.port_mappings().iter().enumerate() {
            if let Some(proto) = pm.protocol() {
                let at = t.at(&format!("{p}/portMappings/{j}/protocol"));
                check(proto.as_str(), TransportProtocol::values(), "protocol", at);
            }
            if let Some(proto) = pm.app_protocol() {
                let at = t.at(&format!("{p}/portMappings/{j}/appProtocol"));
                check(
                    proto.as_str(),
                    ApplicationProtocol::values(),
                    "appProtocol",
                    at,
                );
            }
        }
        if let Some(driver) = c.log_configuration().map(|l| l.log_driver()) {
            let at = t.at(&format!("{p}/logConfiguration/logDriver"));
            check(driver.as_str(), LogDriver::values(), "logDriver", at);
        }
        for (j, d) in c.depends_on().iter().enumerate() {
            let at = t.at(&format!("{p}/dependsOn/{j}/condition"));
            check(
                d.condition().as_str(),
                ContainerCondition::values(),
                "dependsOn condition",
                at,
            );
        }
    }
}

fn service_enums(
    s: &CreateServiceInput,
    src: &Src<'_, CreateServiceInput>,
    check: &mut EnumCheck<'_>,
) {
    use aws_sdk_ecs::types::{AssignPublicIp, PropagateTags, SchedulingStrategy};
    if let Some(l) = s.launch_type() {
        check(
            l.as_str(),
            LaunchType::values(),
            "launchType",
            src.at("/launchType"),
        );
    }
    if let Some(st) = s.scheduling_strategy() {
        let at = src.at("/schedulingStrategy");
        check(
            st.as_str(),
            SchedulingStrategy::values(),
            "schedulingStrategy",
            at,
        );
    }
    if let Some(p) = s.propagate_tags() {
        check(
            p.as_str(),
            PropagateTags::values(),
            "propagateTags",
            src.at("/propagateTags"),
        );
    }
    if let Some(a) = s
        .network_configuration()
        .and_then(|n| n.awsvpc_configuration())
        .and_then(|a| a.assign_public_ip())
    {
        let at = src.at("/networkConfiguration/awsvpcConfiguration/assignPublicIp");
        check(a.as_str(), AssignPublicIp::values(), "assignPublicIp", at);
    }
    if let Some(c) = s.deployment_controller() {
        let at = src.at("/deploymentController/type");
        check(
            c.r#type().as_str(),
            DeploymentControllerType::values(),
            "deploymentController type",
            at,
        );
    }
    let Some(dc) = s.deployment_configuration() else {
        return;
    };
    if let Some(strategy) = dc.strategy() {
        let at = src.at("/deploymentConfiguration/strategy");
        check(
            strategy.as_str(),
            DeploymentStrategy::values(),
            "deployment strategy",
            at,
        );
    }
    for (i, hook) in dc.lifecycle_hooks().iter().enumerate() {
        let p = format!("/deploymentConfiguration/lifecycleHooks/{i}");
        if let Some(t) = hook.target_type() {
            let at = src.at(&format!("{p}/targetType"));
            check(
                t.as_str(),
                DeploymentLifecycleHookTargetType::values(),
                "lifecycle hook targetType",
                at,
            );
        }
        for (j, stage) in hook.lifecycle_stages().iter().enumerate() {
            let at = src.at(&format!("{p}/lifecycleStages/{j}"));
            check(
                stage.as_str(),
                DeploymentLifecycleHookStage::values(),
                "lifecycle stage",
                at,
            );
        }
        if let Some(a) = hook.timeout_configuration().and_then(|t| t.action()) {
            let at = src.at(&format!("{p}/timeoutConfiguration/action"));
            check(
                a.as_str(),
                DeploymentLifecycleHookAction::values(),
                "lifecycle hook timeout action",
                at,
            );
        }
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

/// Task-level cpu and memory in the forms the RegisterTaskDefinition reference documents: CPU
/// units ("1024") or vCPUs ("1 vCPU", "1 vcpu"); MiB ("1024") or GB ("1GB", "1 GB"). Any
/// other text ("4096MB", "2 GiB") ECS refuses, on every launch type. Hands on the parsed
/// values (CPU units, MiB) of those that are valid.
fn sizes(
    t: &Src<'_, RegisterTaskDefinitionInput>,
    td: &RegisterTaskDefinitionInput,
    out: &mut Vec<Diagnostic>,
) -> (Option<u32>, Option<u32>) {
    let cpu = td.cpu().and_then(|text| {
        let parsed = fargate::parse_cpu(text);
        if parsed.is_none() {
            out.push(
                Diagnostic::error(format!("cpu \"{text}\" is not a CPU size ECS understands"))
                    .at(t.at("/cpu"))
                    .hint("write CPU units (\"256\", \"1024\") or vCPUs (\"0.25 vCPU\", \"1 vCPU\"), as the RegisterTaskDefinition reference documents"),
            );
        }
        parsed
    });
    let memory = td.memory().and_then(|text| {
        let parsed = fargate::parse_memory(text);
        if parsed.is_none() {
            out.push(
                Diagnostic::error(format!("memory \"{text}\" is not a size ECS understands"))
                    .at(t.at("/memory"))
                    .hint("write MiB as a plain number (\"2048\") or GB (\"2GB\", \"2 GB\"), as the RegisterTaskDefinition reference documents; ECS reads no MB or MiB suffix"),
            );
        }
        parsed
    });
    (cpu, memory)
}

/// Whether the document has `pointer` at all (a value of the wrong type was reported by the
/// decoder and left out of the SDK value: it is there, only wrong).
fn written(t: &Src<'_, RegisterTaskDefinitionInput>, pointer: &str) -> bool {
    t.doc
        .value
        .pointer(&t.loaded.doc_pointer(pointer))
        .is_some_and(|v| !v.is_null())
}

/// Fargate's network mode and task sizes, from [`sizes`]' parsed cpu and memory.
fn fargate_rules(
    t: &Src<'_, RegisterTaskDefinitionInput>,
    td: &RegisterTaskDefinitionInput,
    (cpu, memory): (Option<u32>, Option<u32>),
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
    if !written(t, "/cpu") {
        out.push(
            Diagnostic::error("Fargate tasks need a task-level cpu; the task definition sets none")
                .at(t.at(""))
                .hint(format!(
                    "add \"cpu\": \"256\" (one of {cpu_sizes} CPU units, or e.g. \"0.5 vCPU\")"
                )),
        );
    }
    let cpu = cpu.filter(|c| {
        let ok = fargate::CPU_SIZES.contains(c);
        if !ok {
            out.push(
                Diagnostic::error(format!(
                    "cpu \"{}\" is not a Fargate CPU size",
                    td.cpu().unwrap_or_default()
                ))
                .at(t.at("/cpu"))
                .hint(format!(
                    "use one of {cpu_sizes} (CPU units; 1024 = \"1 vCPU\")"
                )),
            );
        }
        ok
    });
    if !written(t, "/memory") {
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
    }
    if let (Some(c), Some(m)) = (cpu, memory) {
        let sizes = fargate::memory_sizes(c);
        if !sizes.contains(&m) {
            out.push(
                Diagnostic::error(format!(
                    "memory \"{}\" ({m} MiB) is not valid with cpu {c} on Fargate",
                    td.memory().unwrap_or_default()
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

/// CreateService (and RunTask) take a launch type or a capacity provider strategy, not both:
/// "Specifying both a launch type and capacity provider strategy is not supported".
fn launch_type_or_strategy(
    s: &CreateServiceInput,
    src: &Src<'_, CreateServiceInput>,
    out: &mut Vec<Diagnostic>,
) {
    if let Some(launch) = s.launch_type()
        && !s.capacity_provider_strategy().is_empty()
    {
        out.push(
            Diagnostic::error(format!(
                "the service sets both launchType {} and a capacityProviderStrategy, which ECS refuses",
                launch.as_str()
            ))
            .at(src.key("/capacityProviderStrategy"))
            .hint("keep one: remove launchType to place tasks by the capacity provider strategy (FARGATE / FARGATE_SPOT), or remove capacityProviderStrategy (AWS: CreateService, \"launchType\" and \"capacityProviderStrategy\")"),
        );
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

/// Bake times lie in 0..=1440 minutes (24 hours). The ECS API reference gives that range for
/// canaryBakeTimeInMinutes and stepBakeTimeInMinutes; for bakeTimeInMinutes it states none,
/// and 0..=1440 is what the Terraform AWS provider enforces.
const MAX_BAKE_MINUTES: i32 = 1440;

/// The shape a load balancer's `advancedConfiguration` takes, for hints.
const ADVANCED_SHAPE: &str = "\"advancedConfiguration\": {\"alternateTargetGroupArn\": \"arn:aws:elasticloadbalancing:<region>:<account>:targetgroup/<green>/<id>\", \"productionListenerRule\": \"arn:aws:elasticloadbalancing:<region>:<account>:listener-rule/app/<lb>/<id>/<id>/<id>\", \"testListenerRule\": \"<optional: the test listener rule's ARN>\", \"roleArn\": \"arn:aws:iam::<account>:role/<ecs-infrastructure-role>\"}";

/// ECS's own BLUE_GREEN, CANARY and LINEAR deployments: what they need (the ECS deployment
/// controller, an alternate target group and listener rule per load balancer), their lifecycle
/// hooks, and the ranges of bake times and traffic percentages.
fn deployment(
    s: &CreateServiceInput,
    src: &Src<'_, CreateServiceInput>,
    out: &mut Vec<Diagnostic>,
) {
    let Some(dc) = s.deployment_configuration() else {
        return;
    };
    let strategy = Strategy::from(dc.strategy().map(|s| s.as_str()));
    let name = strategy.name();
    if strategy.shifts_traffic() {
        ecs_controller(s, src, name, out);
        advanced_configuration(s, src, name, out);
    }
    minutes_in_range(
        src,
        "/deploymentConfiguration/bakeTimeInMinutes",
        dc.bake_time_in_minutes(),
        out,
    );
    traffic_shift(dc, src, &strategy, out);
    lifecycle_hooks(dc, src, out);
}

fn ecs_controller(
    s: &CreateServiceInput,
    src: &Src<'_, CreateServiceInput>,
    strategy: &str,
    out: &mut Vec<Diagnostic>,
) {
    let Some(controller) = s.deployment_controller().map(|c| c.r#type()) else {
        return;
    };
    if matches!(
        controller,
        DeploymentControllerType::CodeDeploy | DeploymentControllerType::External
    ) {
        out.push(
            Diagnostic::error(format!(
                "strategy {strategy} is a deployment ECS runs itself, but the deploymentController is {}",
                controller.as_str()
            ))
            .at(src.at("/deploymentController/type"))
            .hint(format!(
                "ECS runs BLUE_GREEN, CANARY and LINEAR deployments only with \"deploymentController\": {{\"type\": \"ECS\"}}; set that, or drop \"strategy\" to keep {}",
                controller.as_str()
            )),
        );
    }
}

fn advanced_configuration(
    s: &CreateServiceInput,
    src: &Src<'_, CreateServiceInput>,
    strategy: &str,
    out: &mut Vec<Diagnostic>,
) {
    fn given(v: Option<&str>) -> Option<&str> {
        v.filter(|v| !v.is_empty())
    }
    for (i, lb) in s.load_balancers().iter().enumerate() {
        let p = format!("/loadBalancers/{i}");
        let Some(adv) = lb.advanced_configuration() else {
            out.push(
                Diagnostic::error(format!(
                    "load balancer {i} has no advancedConfiguration, which a {strategy} deployment needs to shift traffic"
                ))
                .at(src.at(&p))
                .hint(format!("add {ADVANCED_SHAPE}")),
            );
            continue;
        };
        let ap = format!("{p}/advancedConfiguration");
        let alternate = given(adv.alternate_target_group_arn());
        let missing: Vec<&str> = [
            ("alternateTargetGroupArn", alternate.is_none()),
            (
                "productionListenerRule",
                given(adv.production_listener_rule()).is_none(),
            ),
        ]
        .into_iter()
        .filter_map(|(k, m)| m.then_some(k))
        .collect();
        if !missing.is_empty() {
            out.push(
                Diagnostic::error(format!(
                    "the advancedConfiguration of load balancer {i} lacks {}",
                    missing.join(" and ")
                ))
                .at(src.at(&ap))
                .hint(format!(
                    "a {strategy} deployment registers the new tasks in the alternate target group and moves the production listener rule to it; give both, as in {ADVANCED_SHAPE}"
                )),
            );
        }
        if let Some(alt) = alternate
            && lb.target_group_arn() == Some(alt)
        {
            out.push(
                Diagnostic::error(format!(
                    "load balancer {i}'s alternateTargetGroupArn is its targetGroupArn"
                ))
                .at(src.at(&format!("{ap}/alternateTargetGroupArn")))
                .hint("the old tasks stay in targetGroupArn while the new ones fill the alternate target group: create a second target group with the same settings and name it here"),
            );
        }
        if given(adv.role_arn()).is_none() {
            out.push(
                Diagnostic::warning(format!(
                    "the advancedConfiguration of load balancer {i} has no roleArn"
                ))
                .at(src.at(&ap))
                .hint("add \"roleArn\": \"arn:aws:iam::<account>:role/<name>\", the role ECS assumes to change the listener rules (AWS's managed policy AmazonECSInfrastructureRolePolicyForLoadBalancers grants what it needs)"),
            );
        }
    }
}

/// `canaryConfiguration` and `linearConfiguration`: ranges, the one the strategy ignores, and
/// ECS's defaults when the strategy's own is missing.
fn traffic_shift(
    dc: &aws_sdk_ecs::types::DeploymentConfiguration,
    src: &Src<'_, CreateServiceInput>,
    strategy: &Strategy,
    out: &mut Vec<Diagnostic>,
) {
    let name = strategy.name();
    let base = "/deploymentConfiguration";
    if let Some(c) = dc.canary_configuration() {
        let p = format!("{base}/canaryConfiguration");
        percent_in_range(
            src,
            &format!("{p}/canaryPercent"),
            c.canary_percent(),
            0.1,
            out,
        );
        minutes_in_range(
            src,
            &format!("{p}/canaryBakeTimeInMinutes"),
            c.canary_bake_time_in_minutes(),
            out,
        );
        if *strategy != Strategy::Canary {
            out.push(ignored("canaryConfiguration", "CANARY", name, src.key(&p)));
        }
    } else if *strategy == Strategy::Canary {
        let (percent, minutes) = CANARY_DEFAULTS;
        out.push(
            Diagnostic::note(format!(
                "strategy CANARY without canaryConfiguration: ECS shifts {percent}% of production traffic, waits {minutes} minutes, then shifts the rest"
            ))
            .at(src.at(&format!("{base}/strategy")))
            .hint(format!(
                "to choose your own, add \"canaryConfiguration\": {{\"canaryPercent\": {percent}, \"canaryBakeTimeInMinutes\": {minutes}}}"
            )),
        );
    }
    if let Some(l) = dc.linear_configuration() {
        let p = format!("{base}/linearConfiguration");
        percent_in_range(src, &format!("{p}/stepPercent"), l.step_percent(), 3.0, out);
        minutes_in_range(
            src,
            &format!("{p}/stepBakeTimeInMinutes"),
            l.step_bake_time_in_minutes(),
            out,
        );
        if *strategy != Strategy::Linear {
            out.push(ignored("linearConfiguration", "LINEAR", name, src.key(&p)));
        }
    } else if *strategy == Strategy::Linear {
        let (percent, minutes) = LINEAR_DEFAULTS;
        out.push(
            Diagnostic::note(format!(
                "strategy LINEAR without linearConfiguration: ECS shifts {percent}% of production traffic every {minutes} minutes"
            ))
            .at(src.at(&format!("{base}/strategy")))
            .hint(format!(
                "to choose your own, add \"linearConfiguration\": {{\"stepPercent\": {percent}, \"stepBakeTimeInMinutes\": {minutes}}}"
            )),
        );
    }
}

fn ignored(key: &str, wants: &str, strategy: &str, at: Location) -> Diagnostic {
    Diagnostic::warning(format!(
        "{key} is ignored: only {wants} deployments use it, and the strategy is {strategy}"
    ))
    .at(at)
    .hint(format!(
        "remove {key}, or set \"strategy\": \"{wants}\" in deploymentConfiguration"
    ))
}

fn lifecycle_hooks(
    dc: &aws_sdk_ecs::types::DeploymentConfiguration,
    src: &Src<'_, CreateServiceInput>,
    out: &mut Vec<Diagnostic>,
) {
    use DeploymentLifecycleHookStage as Stage;
    for (i, hook) in dc.lifecycle_hooks().iter().enumerate() {
        let p = format!("/deploymentConfiguration/lifecycleHooks/{i}");
        let target = hook.target_type();
        let pause = target == Some(&DeploymentLifecycleHookTargetType::Pause);
        let lambda = matches!(
            target,
            None | Some(DeploymentLifecycleHookTargetType::AwsLambda)
        );
        let arn = hook.hook_target_arn().filter(|a| !a.is_empty());
        if lambda && arn.is_none() {
            let how = if target.is_none() {
                "targetType AWS_LAMBDA, the default"
            } else {
                "targetType AWS_LAMBDA"
            };
            out.push(
                Diagnostic::error(format!(
                    "lifecycle hook {i} calls a Lambda function ({how}) but has no hookTargetArn"
                ))
                .at(src.at(&p))
                .hint("add \"hookTargetArn\": \"arn:aws:lambda:<region>:<account>:function:<name>\", or set \"targetType\": \"PAUSE\" to hold the deployment until a rollout.verify gate (or ContinueServiceDeployment) answers"),
            );
        }
        if pause && arn.is_some() {
            out.push(
                Diagnostic::warning(format!(
                    "lifecycle hook {i} is a PAUSE hook: its hookTargetArn is not used"
                ))
                .at(src.at(&format!("{p}/hookTargetArn")))
                .hint("remove hookTargetArn, or set \"targetType\": \"AWS_LAMBDA\" to call that function"),
            );
        }
        if hook.lifecycle_stages().is_empty() {
            out.push(
                Diagnostic::error(format!("lifecycle hook {i} names no lifecycleStages"))
                    .at(src.at(&format!("{p}/lifecycleStages")))
                    .hint("add the stages it runs at, e.g. \"lifecycleStages\": [\"POST_TEST_TRAFFIC_SHIFT\"]"),
            );
        }
        if !pause {
            continue;
        }
        for (j, stage) in hook.lifecycle_stages().iter().enumerate() {
            let instead = match stage {
                Stage::TestTrafficShift => "POST_TEST_TRAFFIC_SHIFT",
                Stage::ProductionTrafficShift => {
                    "PRE_PRODUCTION_TRAFFIC_SHIFT or POST_PRODUCTION_TRAFFIC_SHIFT"
                }
                _ => continue,
            };
            out.push(
                Diagnostic::error(format!(
                    "a PAUSE hook cannot wait at {}: ECS allows only AWS_LAMBDA hooks while traffic shifts",
                    stage.as_str()
                ))
                .at(src.at(&format!("{p}/lifecycleStages/{j}")))
                .hint(format!(
                    "pause at {instead} instead (PAUSE hooks may use every stage but TEST_TRAFFIC_SHIFT and PRODUCTION_TRAFFIC_SHIFT)"
                )),
            );
        }
    }
}

/// An error unless a bake time is 0..=1440 minutes.
fn minutes_in_range(
    src: &Src<'_, CreateServiceInput>,
    pointer: &str,
    value: Option<i32>,
    out: &mut Vec<Diagnostic>,
) {
    let Some(v) = value.filter(|v| !(0..=MAX_BAKE_MINUTES).contains(v)) else {
        return;
    };
    let key = pointer.rsplit('/').next().unwrap_or(pointer);
    out.push(
        Diagnostic::error(format!(
            "{key} {v} is out of range: ECS accepts 0 to {MAX_BAKE_MINUTES} minutes"
        ))
        .at(src.at(pointer))
        .hint(format!(
            "use a whole number of minutes from 0 to {MAX_BAKE_MINUTES} (24 hours)"
        )),
    );
}

/// An error unless a traffic percentage is a multiple of 0.1 from `min` to 100.
fn percent_in_range(
    src: &Src<'_, CreateServiceInput>,
    pointer: &str,
    value: Option<f64>,
    min: f64,
    out: &mut Vec<Diagnostic>,
) {
    let Some(v) = value else {
        return;
    };
    let key = pointer.rsplit('/').next().unwrap_or(pointer);
    let tenths = v * 10.0;
    let why = if !(min..=100.0).contains(&v) {
        "is out of range"
    } else if (tenths - tenths.round()).abs() > 1e-6 {
        "is not a multiple of 0.1"
    } else {
        return;
    };
    out.push(
        Diagnostic::error(format!("{key} {v} {why}"))
            .at(src.at(pointer))
            .hint(format!("use a multiple of 0.1 from {min:.1} to 100")),
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Severity;
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

    /// RegisterTaskDefinition reference, `memory` and `cpu`: MiB or GB, CPU units or vCPUs;
    /// "4096MB" is neither, on any launch type.
    #[test]
    fn sizes_in_the_documented_forms_only() {
        let t = FARGATE_TASK
            .replace("\"512\"", "\"4096MB\"")
            .replace("\"256\"", "\"1024\"");
        one(
            &run(&t, None),
            "memory \"4096MB\" is not a size ECS understands",
            "task.json",
            &t,
            "\"4096MB\"",
        );
        let t = TASK.replace(
            "\"family\": \"web\",",
            "\"family\": \"web\", \"memory\": \"2 GiB\",",
        );
        one(
            &run(&t, None),
            "memory \"2 GiB\" is not a size",
            "task.json",
            &t,
            "\"2 GiB\"",
        );
        let t = TASK.replace(
            "\"family\": \"web\",",
            "\"family\": \"web\", \"cpu\": \"2 cores\",",
        );
        one(
            &run(&t, None),
            "cpu \"2 cores\" is not a CPU size",
            "task.json",
            &t,
            "\"2 cores\"",
        );
    }

    /// A number where ECS wants a string is one error (the decoder's), not also "sets none".
    #[test]
    fn cpu_as_a_number_is_one_error() {
        let text = FARGATE_TASK.replace("\"cpu\": \"256\"", "\"cpu\": 512");
        let td = doc_named("task.json", &text);
        let t = task_definition(&td);
        assert_eq!(t.diagnostics.len(), 1, "{:#?}", t.diagnostics);
        assert!(t.diagnostics[0].message.contains("wrong type for cpu"));
        let found = validate((&t, &td), None);
        assert!(found.is_empty(), "{found:#?}");
    }

    /// "Amazon ECS task definition differences for Fargate": ipcMode is not valid; the
    /// RegisterTaskDefinition reference: on Fargate pidMode can only be "task".
    #[test]
    fn fargate_refuses_ipc_mode_and_host_pid_mode() {
        let with = |extra: &str| {
            FARGATE_TASK.replace(
                "\"family\": \"web\",",
                &format!("\"family\": \"web\", {extra}"),
            )
        };
        let t = with("\"ipcMode\": \"host\",");
        one(
            &run(&t, None),
            "Fargate tasks do not support ipcMode",
            "task.json",
            &t,
            "\"host\"",
        );
        let t = with("\"pidMode\": \"host\",");
        one(
            &run(&t, None),
            "Fargate tasks do not support pidMode \"host\"",
            "task.json",
            &t,
            "\"host\"",
        );
        assert!(run(&with("\"pidMode\": \"task\","), None).is_empty());
        // On EC2 both are fine.
        let ec2 = TASK.replace(
            "\"family\": \"web\",",
            "\"family\": \"web\", \"ipcMode\": \"host\", \"pidMode\": \"host\",",
        );
        assert!(run(&ec2, None).is_empty());
    }

    /// An empty string in an enum member reaches the API as "" and is refused there.
    #[test]
    fn empty_enum_strings_are_errors() {
        let t = TASK.replace(
            "\"family\": \"web\",",
            "\"family\": \"web\", \"ipcMode\": \"\",",
        );
        let d = one(
            &run(&t, None),
            "ipcMode is an empty string, which ECS refuses",
            "task.json",
            &t,
            "\"\"",
        );
        assert!(d.hint.unwrap().contains("host, none, task"));
        let t = TASK.replace("\"image\": \"nginx:1\"", "\"image\": \"nginx:1\", \"portMappings\": [{\"containerPort\": 80, \"protocol\": \"\"}]");
        one(
            &run(&t, None),
            "protocol is an empty string",
            "task.json",
            &t,
            "\"\"",
        );
        let s = SERVICE.replace(
            "\"launchType\": \"FARGATE\",",
            "\"launchType\": \"FARGATE\", \"propagateTags\": \"\",",
        );
        one(
            &run(FARGATE_TASK, Some(&s)),
            "propagateTags is an empty string",
            "service.json",
            &s,
            "\"\"",
        );
    }

    /// "Amazon ECS task definition differences for Fargate": container parameters Fargate
    /// does not support; empty lists and `false` (describe output) are fine.
    #[test]
    fn fargate_refuses_what_it_does_not_support() {
        let container = |extra: &str| {
            FARGATE_TASK.replace(
                "\"image\": \"nginx:1\",",
                &format!("\"image\": \"nginx:1\", {extra}"),
            )
        };
        for (extra, what, at) in [
            (
                "\"links\": [\"db\"],",
                "links (container \"app\")",
                "[\"db\"]",
            ),
            ("\"privileged\": true,", "privileged", "true"),
            (
                "\"dnsServers\": [\"10.0.0.2\"],",
                "dnsServers",
                "[\"10.0.0.2\"]",
            ),
            (
                "\"linuxParameters\": {\"sharedMemorySize\": 64},",
                "linuxParameters.sharedMemorySize",
                "64",
            ),
            (
                "\"linuxParameters\": {\"capabilities\": {\"add\": [\"CAP_SYS_PTRACE\", \"NET_ADMIN\"]}},",
                "adding the capability NET_ADMIN",
                "\"NET_ADMIN\"",
            ),
            (
                "\"resourceRequirements\": [{\"type\": \"GPU\", \"value\": \"1\"}],",
                "GPUs",
                "{\"type\": \"GPU\"",
            ),
        ] {
            let t = container(extra);
            let d = one(&run(&t, None), what, "task.json", &t, at);
            assert!(
                d.hint.unwrap().contains("differences for Fargate"),
                "{extra}"
            );
        }
        let quiet = container(
            "\"links\": [], \"privileged\": false, \"dnsServers\": [], \"linuxParameters\": {\"capabilities\": {\"add\": [\"CAP_SYS_PTRACE\"]}},",
        );
        assert!(run(&quiet, None).is_empty());
    }

    /// CreateService reference: a launch type or a capacity provider strategy, not both.
    #[test]
    fn launch_type_and_capacity_provider_strategy_exclude_each_other() {
        let s = SERVICE.replace(
            "\"launchType\": \"FARGATE\",",
            "\"launchType\": \"FARGATE\",\n  \"capacityProviderStrategy\": [{\"capacityProvider\": \"FARGATE_SPOT\", \"weight\": 1}],",
        );
        one(
            &run(FARGATE_TASK, Some(&s)),
            "both launchType FARGATE and a capacityProviderStrategy",
            "service.json",
            &s,
            "\"capacityProviderStrategy\"",
        );
        let s = SERVICE.replace(
            "\"launchType\": \"FARGATE\",",
            "\"capacityProviderStrategy\": [{\"capacityProvider\": \"FARGATE_SPOT\", \"weight\": 1}],",
        );
        assert!(run(FARGATE_TASK, Some(&s)).is_empty());
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

    /// A blue/green service with everything ECS asks for: quiet.
    const BG_SERVICE: &str = r#"{
  "launchType": "FARGATE",
  "loadBalancers": [
    {
      "targetGroupArn": "arn:tg/blue",
      "containerName": "app",
      "containerPort": 80,
      "advancedConfiguration": {
        "alternateTargetGroupArn": "arn:tg/green",
        "productionListenerRule": "arn:rule/prod",
        "testListenerRule": "arn:rule/test",
        "roleArn": "arn:role/ecs-lb"
      }
    }
  ],
  "networkConfiguration": {"awsvpcConfiguration": {"subnets": ["subnet-1"]}},
  "deploymentController": {"type": "ECS"},
  "deploymentConfiguration": {
    "strategy": "BLUE_GREEN",
    "bakeTimeInMinutes": 2,
    "lifecycleHooks": [
      {
        "targetType": "PAUSE",
        "lifecycleStages": ["POST_TEST_TRAFFIC_SHIFT"],
        "timeoutConfiguration": {"timeoutInMinutes": 30, "action": "ROLLBACK"}
      },
      {
        "targetType": "AWS_LAMBDA",
        "hookTargetArn": "arn:lambda:smoke",
        "roleArn": "arn:role/hooks",
        "lifecycleStages": ["TEST_TRAFFIC_SHIFT", "PRODUCTION_TRAFFIC_SHIFT"]
      }
    ]
  }
}"#;

    /// BG_SERVICE with `strategy` replaced and `extra` members added to deploymentConfiguration.
    fn bg(strategy: &str, extra: &str) -> String {
        BG_SERVICE.replace(
            "\"strategy\": \"BLUE_GREEN\",",
            &format!("\"strategy\": \"{strategy}\",{extra}"),
        )
    }

    /// The one finding whose message contains `message`: its severity and place checked.
    fn finding<'a>(
        found: &'a [Diagnostic],
        message: &str,
        severity: Severity,
        text: &str,
        needle: &str,
    ) -> &'a Diagnostic {
        let hits: Vec<&Diagnostic> = found
            .iter()
            .filter(|d| d.message.contains(message))
            .collect();
        assert_eq!(hits.len(), 1, "{message}: {found:#?}");
        let d = hits[0];
        assert_eq!(d.severity, severity, "{d}");
        assert!(d.hint.is_some(), "{d}");
        let l = d.location.as_ref().unwrap();
        assert_eq!(l.path.to_str(), Some("service.json"));
        assert_eq!((l.line, l.col), pos(text, needle), "{d}");
        d
    }

    #[test]
    fn ecs_native_strategies_with_what_they_need_are_quiet() {
        assert!(run(FARGATE_TASK, Some(BG_SERVICE)).is_empty());
        let s = bg(
            "CANARY",
            "\n    \"canaryConfiguration\": {\"canaryPercent\": 12.5, \"canaryBakeTimeInMinutes\": 0},",
        );
        assert!(run(FARGATE_TASK, Some(&s)).is_empty(), "{s}");
        let s = bg(
            "LINEAR",
            "\n    \"linearConfiguration\": {\"stepPercent\": 3, \"stepBakeTimeInMinutes\": 1440},",
        );
        assert!(run(FARGATE_TASK, Some(&s)).is_empty(), "{s}");
        // Lifecycle hooks with PAUSE and Lambda targets, the timeout action spelled out.
        let s = BG_SERVICE.replace("\"bakeTimeInMinutes\": 2", "\"bakeTimeInMinutes\": 1440");
        assert!(run(FARGATE_TASK, Some(&s)).is_empty());
    }

    #[test]
    fn ecs_native_strategies_need_advanced_configuration_on_every_load_balancer() {
        let bare = BG_SERVICE.replace(
            r#",
      "advancedConfiguration": {
        "alternateTargetGroupArn": "arn:tg/green",
        "productionListenerRule": "arn:rule/prod",
        "testListenerRule": "arn:rule/test",
        "roleArn": "arn:role/ecs-lb"
      }"#,
            "",
        );
        for (strategy, config) in [
            ("BLUE_GREEN", ""),
            (
                "CANARY",
                ", \"canaryConfiguration\": {\"canaryPercent\": 10}",
            ),
            ("LINEAR", ", \"linearConfiguration\": {\"stepPercent\": 10}"),
        ] {
            let s = bare.replace("\"BLUE_GREEN\",", &format!("\"{strategy}\"{config},"));
            let d = one(
                &run(FARGATE_TASK, Some(&s)),
                &format!(
                    "load balancer 0 has no advancedConfiguration, which a {strategy} deployment needs"
                ),
                "service.json",
                &s,
                "{\n      \"targetGroupArn\"",
            );
            let hint = d.hint.unwrap();
            assert!(
                hint.contains("\"advancedConfiguration\": {\"alternateTargetGroupArn\""),
                "{hint}"
            );
            assert!(hint.contains("\"roleArn\""), "{hint}");
        }
        // A rolling deployment does without.
        assert!(run(FARGATE_TASK, Some(&bare.replace("BLUE_GREEN", "ROLLING"))).is_empty());
    }

    #[test]
    fn advanced_configuration_needs_alternate_target_group_and_production_rule() {
        let s = BG_SERVICE
            .replace(
                "\"alternateTargetGroupArn\": \"arn:tg/green\",\n        ",
                "",
            )
            .replace(
                "\"productionListenerRule\": \"arn:rule/prod\",\n        ",
                "",
            );
        one(
            &run(FARGATE_TASK, Some(&s)),
            "advancedConfiguration of load balancer 0 lacks alternateTargetGroupArn and productionListenerRule",
            "service.json",
            &s,
            "{\n        \"testListenerRule\"",
        );
        let s = BG_SERVICE.replace("\"arn:rule/prod\"", "\"\"");
        let found = run(FARGATE_TASK, Some(&s));
        let d = one(
            &found,
            "lacks productionListenerRule",
            "service.json",
            &s,
            "{\n        \"alternateTargetGroupArn\"",
        );
        assert!(!d.message.contains("alternateTargetGroupArn"), "{d}");
    }

    #[test]
    fn alternate_target_group_must_differ_from_the_target_group() {
        let s = BG_SERVICE.replace("\"arn:tg/green\"", "\"arn:tg/blue\"");
        one(
            &run(FARGATE_TASK, Some(&s)),
            "alternateTargetGroupArn is its targetGroupArn",
            "service.json",
            &s,
            "\"arn:tg/blue\",\n        \"productionListenerRule\"",
        );
    }

    #[test]
    fn advanced_configuration_without_role_is_a_warning() {
        let s = BG_SERVICE.replace(",\n        \"roleArn\": \"arn:role/ecs-lb\"", "");
        let found = run(FARGATE_TASK, Some(&s));
        assert_eq!(found.len(), 1, "{found:#?}");
        let d = finding(
            &found,
            "has no roleArn",
            Severity::Warning,
            &s,
            "{\n        \"alternateTargetGroupArn\"",
        );
        assert!(
            d.hint
                .as_ref()
                .unwrap()
                .contains("AmazonECSInfrastructureRolePolicyForLoadBalancers")
        );
    }

    #[test]
    fn ecs_native_strategies_need_the_ecs_controller() {
        for controller in ["CODE_DEPLOY", "EXTERNAL"] {
            let s = BG_SERVICE.replace(
                "{\"type\": \"ECS\"}",
                &format!("{{\"type\": \"{controller}\"}}"),
            );
            let d = one(
                &run(FARGATE_TASK, Some(&s)),
                &format!(
                    "strategy BLUE_GREEN is a deployment ECS runs itself, but the deploymentController is {controller}"
                ),
                "service.json",
                &s,
                &format!("\"{controller}\""),
            );
            assert!(d.hint.unwrap().contains("{\"type\": \"ECS\"}"));
        }
        // CodeDeploy with no ECS strategy: nothing to say here.
        let s = BG_SERVICE
            .replace("{\"type\": \"ECS\"}", "{\"type\": \"CODE_DEPLOY\"}")
            .replace("\"strategy\": \"BLUE_GREEN\",", "");
        assert!(run(FARGATE_TASK, Some(&s)).is_empty());
    }

    #[test]
    fn pause_hooks_cannot_wait_during_a_traffic_shift() {
        let s = BG_SERVICE.replace(
            "\"lifecycleStages\": [\"POST_TEST_TRAFFIC_SHIFT\"]",
            "\"lifecycleStages\": [\"PRE_SCALE_UP\", \"TEST_TRAFFIC_SHIFT\"]",
        );
        let d = one(
            &run(FARGATE_TASK, Some(&s)),
            "a PAUSE hook cannot wait at TEST_TRAFFIC_SHIFT",
            "service.json",
            &s,
            "\"TEST_TRAFFIC_SHIFT\"]",
        );
        assert!(
            d.hint
                .unwrap()
                .starts_with("pause at POST_TEST_TRAFFIC_SHIFT instead")
        );
        let s = BG_SERVICE.replace(
            "\"POST_TEST_TRAFFIC_SHIFT\"",
            "\"PRODUCTION_TRAFFIC_SHIFT\"",
        );
        let d = one(
            &run(FARGATE_TASK, Some(&s)),
            "a PAUSE hook cannot wait at PRODUCTION_TRAFFIC_SHIFT",
            "service.json",
            &s,
            "\"PRODUCTION_TRAFFIC_SHIFT\"",
        );
        assert!(d.hint.unwrap().contains("PRE_PRODUCTION_TRAFFIC_SHIFT"));
        // The Lambda hook of BG_SERVICE sits at both shifts without complaint (see the quiet test).
    }

    #[test]
    fn lambda_hooks_need_a_target() {
        let s = BG_SERVICE.replace("\"hookTargetArn\": \"arn:lambda:smoke\",\n        ", "");
        one(
            &run(FARGATE_TASK, Some(&s)),
            "lifecycle hook 1 calls a Lambda function (targetType AWS_LAMBDA) but has no hookTargetArn",
            "service.json",
            &s,
            "{\n        \"targetType\": \"AWS_LAMBDA\"",
        );
        // AWS_LAMBDA is the default target type.
        let s = s.replace("\"targetType\": \"AWS_LAMBDA\",\n        ", "");
        let d = one(
            &run(FARGATE_TASK, Some(&s)),
            "(targetType AWS_LAMBDA, the default) but has no hookTargetArn",
            "service.json",
            &s,
            "{\n        \"roleArn\": \"arn:role/hooks\"",
        );
        assert!(d.hint.unwrap().contains("\"targetType\": \"PAUSE\""));
    }

    #[test]
    fn pause_hook_target_arn_is_unused() {
        let s = BG_SERVICE.replace(
            "\"targetType\": \"PAUSE\",",
            "\"targetType\": \"PAUSE\", \"hookTargetArn\": \"arn:lambda:nope\",",
        );
        let found = run(FARGATE_TASK, Some(&s));
        assert_eq!(found.len(), 1, "{found:#?}");
        finding(
            &found,
            "is a PAUSE hook: its hookTargetArn is not used",
            Severity::Warning,
            &s,
            "\"arn:lambda:nope\"",
        );
    }

    #[test]
    fn hooks_need_lifecycle_stages() {
        let s = BG_SERVICE.replace("[\"POST_TEST_TRAFFIC_SHIFT\"]", "[]");
        one(
            &run(FARGATE_TASK, Some(&s)),
            "lifecycle hook 0 names no lifecycleStages",
            "service.json",
            &s,
            "[]",
        );
        let s = BG_SERVICE.replace(
            "\"lifecycleStages\": [\"POST_TEST_TRAFFIC_SHIFT\"],\n        ",
            "",
        );
        one(
            &run(FARGATE_TASK, Some(&s)),
            "lifecycle hook 0 names no lifecycleStages",
            "service.json",
            &s,
            "{\n        \"targetType\": \"PAUSE\"",
        );
    }

    #[test]
    fn unknown_deployment_enum_values() {
        let cases = [
            (
                "\"POST_TEST_TRAFFIC_SHIFT\"",
                "\"POST_TEST_TRAFIC_SHIFT\"",
                "unknown lifecycle stage",
                "POST_TEST_TRAFFIC_SHIFT",
            ),
            (
                "\"BLUE_GREEN\"",
                "\"BLUE_GREN\"",
                "unknown deployment strategy",
                "BLUE_GREEN",
            ),
            (
                "\"PAUSE\"",
                "\"PAUZE\"",
                "unknown lifecycle hook targetType",
                "PAUSE",
            ),
            (
                "\"ROLLBACK\"",
                "\"ROLBACK\"",
                "unknown lifecycle hook timeout action",
                "ROLLBACK",
            ),
            (
                "{\"type\": \"ECS\"}",
                "{\"type\": \"ECSS\"}",
                "unknown deploymentController type",
                "ECS",
            ),
        ];
        for (from, to, message, meant) in cases {
            let s = BG_SERVICE.replace(from, to);
            let found = run(FARGATE_TASK, Some(&s));
            let needle = if to.starts_with('{') { "\"ECSS\"" } else { to };
            let d = finding(&found, message, Severity::Error, &s, needle);
            assert_eq!(
                d.hint.as_deref(),
                Some(format!("did you mean \"{meant}\"?").as_str()),
                "{d}"
            );
        }
    }

    #[test]
    fn canary_and_linear_percentages_in_range() {
        for (value, why) in [
            ("0", "out of range"),
            ("150", "out of range"),
            ("12.34", "not a multiple of 0.1"),
        ] {
            let s = bg(
                "CANARY",
                &format!("\n    \"canaryConfiguration\": {{\"canaryPercent\": {value}}},"),
            );
            let d = one(
                &run(FARGATE_TASK, Some(&s)),
                &format!("canaryPercent {value} is {why}"),
                "service.json",
                &s,
                &format!("{value}}}"),
            );
            assert_eq!(
                d.hint.as_deref(),
                Some("use a multiple of 0.1 from 0.1 to 100")
            );
        }
        let s = bg(
            "LINEAR",
            "\n    \"linearConfiguration\": {\"stepPercent\": 2.5},",
        );
        let d = one(
            &run(FARGATE_TASK, Some(&s)),
            "stepPercent 2.5 is out of range",
            "service.json",
            &s,
            "2.5",
        );
        assert_eq!(
            d.hint.as_deref(),
            Some("use a multiple of 0.1 from 3.0 to 100")
        );
        let s = bg(
            "LINEAR",
            "\n    \"linearConfiguration\": {\"stepPercent\": 33.3, \"stepBakeTimeInMinutes\": -1},",
        );
        one(
            &run(FARGATE_TASK, Some(&s)),
            "stepBakeTimeInMinutes -1 is out of range",
            "service.json",
            &s,
            "-1}",
        );
        let s = bg(
            "CANARY",
            "\n    \"canaryConfiguration\": {\"canaryBakeTimeInMinutes\": 2000},",
        );
        one(
            &run(FARGATE_TASK, Some(&s)),
            "canaryBakeTimeInMinutes 2000 is out of range: ECS accepts 0 to 1440 minutes",
            "service.json",
            &s,
            "2000",
        );
    }

    #[test]
    fn the_other_strategys_configuration_is_ignored_with_a_warning() {
        let s = bg(
            "LINEAR",
            "\n    \"canaryConfiguration\": {\"canaryPercent\": 10},\n    \"linearConfiguration\": {\"stepPercent\": 10},",
        );
        let found = run(FARGATE_TASK, Some(&s));
        assert_eq!(found.len(), 1, "{found:#?}");
        let d = finding(
            &found,
            "canaryConfiguration is ignored: only CANARY deployments use it, and the strategy is LINEAR",
            Severity::Warning,
            &s,
            "\"canaryConfiguration\"",
        );
        assert!(
            d.hint
                .as_ref()
                .unwrap()
                .contains("\"strategy\": \"CANARY\"")
        );
        let s = bg(
            "CANARY",
            "\n    \"canaryConfiguration\": {\"canaryPercent\": 10},\n    \"linearConfiguration\": {\"stepPercent\": 10},",
        );
        let found = run(FARGATE_TASK, Some(&s));
        assert_eq!(found.len(), 1, "{found:#?}");
        finding(
            &found,
            "linearConfiguration is ignored",
            Severity::Warning,
            &s,
            "\"linearConfiguration\"",
        );
        // Rolling (the default strategy) ignores it too.
        let s = SERVICE.replace(
            "\"launchType\": \"FARGATE\",",
            "\"launchType\": \"FARGATE\",\n  \"deploymentConfiguration\": {\"linearConfiguration\": {\"stepPercent\": 10}},",
        );
        let found = run(FARGATE_TASK, Some(&s));
        finding(
            &found,
            "the strategy is ROLLING",
            Severity::Warning,
            &s,
            "\"linearConfiguration\"",
        );
    }

    #[test]
    fn canary_or_linear_without_configuration_notes_ecs_defaults() {
        let s = BG_SERVICE.replace("\"BLUE_GREEN\"", "\"CANARY\"");
        let found = run(FARGATE_TASK, Some(&s));
        assert_eq!(found.len(), 1, "{found:#?}");
        finding(
            &found,
            "strategy CANARY without canaryConfiguration: ECS shifts 5% of production traffic, waits 10 minutes, then shifts the rest",
            Severity::Note,
            &s,
            "\"CANARY\"",
        );
        let s = BG_SERVICE.replace("\"BLUE_GREEN\"", "\"LINEAR\"");
        let found = run(FARGATE_TASK, Some(&s));
        assert_eq!(found.len(), 1, "{found:#?}");
        finding(
            &found,
            "strategy LINEAR without linearConfiguration: ECS shifts 10% of production traffic every 6 minutes",
            Severity::Note,
            &s,
            "\"LINEAR\"",
        );
    }

    #[test]
    fn bake_time_in_range() {
        for bad in ["1441", "-1"] {
            let s = BG_SERVICE.replace(
                "\"bakeTimeInMinutes\": 2",
                &format!("\"bakeTimeInMinutes\": {bad}"),
            );
            one(
                &run(FARGATE_TASK, Some(&s)),
                &format!("bakeTimeInMinutes {bad} is out of range"),
                "service.json",
                &s,
                &format!("{bad},\n    \"lifecycleHooks\""),
            );
        }
        let s = BG_SERVICE.replace("\"bakeTimeInMinutes\": 2", "\"bakeTimeInMinutes\": 0");
        assert!(run(FARGATE_TASK, Some(&s)).is_empty());
    }
}
