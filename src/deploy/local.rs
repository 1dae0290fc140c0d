//! The local half of a deploy: render, decode and validate a config's definitions, and read
//! its `rollout:` settings. Nothing here talks to AWS, so a run can refuse bad input before
//! its first mutating call.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::{Value, json};

use super::controller::choose;
pub(crate) use super::controller::seam::Local;
use super::core::rollback::WaitRollback;
use super::core::spec::{
    DEFAULT_GATE_TIMEOUT, Gate, OnCancel, PAUSE_STAGES, Rollout, ServiceRollout,
};
use super::core::state::LifecycleStage;
use crate::aws::types::RegisterTaskDefinitionInput;
use crate::config::schema::{FastFailKey, GateKey, RolloutKey};
use crate::config::{Config, parse_duration};
use crate::error::{Diagnostic, Error, ErrorKind, Result};
use crate::model;
use crate::render::RenderContext;
use crate::render::plugins::Lookups;

/// What loading a run's configs found: the configs that loaded, and every finding (errors,
/// warnings, notes) of all of them, in the order of the configs.
#[derive(Debug, Default)]
pub(crate) struct Loaded {
    pub locals: Vec<Local>,
    pub findings: Vec<Diagnostic>,
    /// The config files looked at.
    pub checked: Vec<PathBuf>,
    /// The kind of failure when it was not bad input (an AWS error inside a lookup).
    pub kind: Option<ErrorKind>,
}

impl Loaded {
    pub(crate) fn errors(&self) -> usize {
        self.findings.iter().filter(|d| d.is_error()).count()
    }

    /// The loaded configs, or every finding as one error when any finding is an error.
    pub(crate) fn into_locals(self) -> Result<Vec<Local>> {
        if self.errors() > 0 {
            let mut e = Error::findings(self.findings);
            if let Some(k) = self.kind {
                e.kind = k;
            }
            return Err(e);
        }
        Ok(self.locals)
    }
}

/// The one config-loading path of every command: load each config (a template itself), add
/// its plugins' functions, render and decode its definitions, validate them, read
/// `rollout:`. Never stops at the first problem: `validate` reports exactly what `deploy`
/// would reject, for every config at once.
pub(crate) fn load_all(ctx: &RenderContext, paths: &[PathBuf], lookups: &Lookups) -> Loaded {
    let mut out = Loaded::default();
    for path in paths {
        out.checked.push(path.clone());
        let loaded = crate::render::plugins::load_with_plugins(ctx, path, lookups)
            .and_then(|(cfg, ctx)| load(&ctx, cfg));
        match loaded {
            Ok(l) => {
                out.findings.extend(l.warnings.iter().cloned());
                out.locals.push(l);
            }
            Err(e) => {
                if e.kind != ErrorKind::BadInput {
                    out.kind.get_or_insert(e.kind);
                }
                out.findings.extend(e.diagnostics);
            }
        }
    }
    out
}

/// Renders and validates `config`'s definitions. Every finding is collected (both
/// definitions are rendered even when one fails); any error fails the whole config.
pub(crate) fn load(ctx: &RenderContext, config: Config) -> Result<Local> {
    let mut findings: Vec<Diagnostic> = config.warnings.clone();
    if let Some(path) = config.express_definition.clone() {
        return load_express(ctx, config, &path, findings);
    }
    let Some(task_path) = config.task_definition.clone() else {
        findings.push(
            Diagnostic::error("the config names no task_definition")
                .at(config.document.locate(""))
                .hint("add `task_definition: ecs-task-def.json` (relative to the config file)"),
        );
        return Err(Error::findings(findings));
    };
    let task_doc = config.load_definition(ctx, "task_definition", &task_path);
    let service_doc = config
        .service_definition
        .as_ref()
        .map(|p| config.load_definition(ctx, "service_definition", p));
    let mut rendered = true;
    for e in std::iter::once(task_doc.as_ref().err())
        .chain(service_doc.iter().map(|r| r.as_ref().err()))
        .flatten()
    {
        rendered = false;
        findings.extend(e.diagnostics.iter().cloned());
    }
    if !rendered {
        // Keep the kind of the first failure (an AWS error in a lookup stays an AWS error).
        let kind = task_doc
            .as_ref()
            .err()
            .or(service_doc.as_ref().and_then(|r| r.as_ref().err()))
            .map(|e| e.kind);
        let mut err = Error::findings(findings);
        if let Some(k) = kind {
            err.kind = k;
        }
        return Err(err);
    }
    let (Ok(task_doc), service_doc) = (task_doc, service_doc.transpose().ok().flatten()) else {
        return Err(Error::internal("rendered definitions went missing"));
    };
    let task = model::task_definition(&task_doc);
    let service = service_doc.as_ref().map(model::service_definition);
    findings.extend(task.diagnostics.iter().cloned());
    if let Some(s) = &service {
        findings.extend(s.diagnostics.iter().cloned());
    }
    findings.extend(model::validate(
        (&task, &task_doc),
        service.as_ref().zip(service_doc.as_ref()),
    ));
    let mut rollout = read_rollout(&config, &mut findings);
    if let Some(doc) = &service_doc {
        rollout.service = ServiceRollout::of(&doc.value);
    }
    check_gates(&config, &rollout, service_doc.is_some(), &mut findings);
    findings.extend(super::controller::codedeploy::appspec::check_config(
        &config,
        service_doc.as_ref().map(|d| &d.value),
    ));
    if findings.iter().any(Diagnostic::is_error) {
        return Err(Error::findings(findings));
    }
    let Some(task_input) = task.input.clone() else {
        return Err(Error::findings(findings));
    };
    let task_json = model::task_definition_to_json(&task_input)?;
    let (service_input, service_json) = match &service {
        Some(s) => match &s.input {
            Some(input) => (
                Some(input.clone()),
                Some(model::service_definition_to_json(input)?),
            ),
            None => (None, None),
        },
        None => (None, None),
    };
    let controller = choose(
        false,
        service_json
            .as_ref()
            .and_then(|s| s.pointer("/deploymentController/type"))
            .and_then(Value::as_str),
    );
    Ok(Local {
        config,
        task: task_input,
        task_json,
        service: service_input,
        service_json,
        express: None,
        rollout,
        controller,
        warnings: findings,
        secrets: ctx.secrets.clone(),
        task_doc: Some(std::sync::Arc::new(task_doc)),
        service_doc: service_doc.map(std::sync::Arc::new),
    })
}

/// The container name ECS gives the one container of an Express Mode service's task
/// definition as the sandbox models it (AWS does not document it; see the README).
pub(crate) const EXPRESS_CONTAINER: &str = "Main";

/// An Express Mode config: its `express_definition` rendered and checked against the
/// CreateExpressGatewayService input shape. ECS registers the task definition and owns the
/// service attributes, so `task_definition` and `service_definition` are ignored (with a
/// warning) when given too.
fn load_express(
    ctx: &RenderContext,
    config: Config,
    path: &std::path::Path,
    mut findings: Vec<Diagnostic>,
) -> Result<Local> {
    for key in ["task_definition", "service_definition"] {
        let given = match key {
            "task_definition" => config.task_definition.is_some(),
            _ => config.service_definition.is_some(),
        };
        if given {
            findings.push(
                Diagnostic::warning(format!(
                    "{key} is ignored: an Express Mode service (express_definition) has its task definition and service made by ECS"
                ))
                .at(config.document.locate_key(&format!("/{key}")))
                .hint(format!("remove `{key}:`, or remove `express_definition:` to deploy a standard service")),
            );
        }
    }
    let doc = match config.load_definition(ctx, "express_definition", path) {
        Ok(d) => d,
        Err(e) => {
            let kind = e.kind;
            findings.extend(e.diagnostics);
            let mut err = Error::findings(findings);
            err.kind = kind;
            return Err(err);
        }
    };
    let ex = model::express_definition(&doc);
    findings.extend(ex.diagnostics.iter().cloned());
    let mut json = ex.json.clone();
    if let Value::Object(m) = &mut json {
        for key in ["serviceName", "cluster"] {
            if m.remove(key).is_some() {
                findings.push(
                    Diagnostic::note(format!(
                        "{key} in the express definition is replaced by the config's"
                    ))
                    .at(doc.locate_key(&format!("/{key}"))),
                );
            }
        }
    }
    for (pointer, what) in [
        ("/primaryContainer/image", "primaryContainer.image"),
        ("/executionRoleArn", "executionRoleArn"),
        ("/infrastructureRoleArn", "infrastructureRoleArn"),
    ] {
        if json
            .pointer(pointer)
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
        {
            findings.push(
                Diagnostic::error(format!("the express definition needs {what}"))
                    .at(doc.locate(""))
                    .hint("CreateExpressGatewayService requires primaryContainer.image, executionRoleArn and infrastructureRoleArn"),
            );
        }
    }
    let rollout = read_rollout(&config, &mut findings);
    if findings.iter().any(Diagnostic::is_error) {
        return Err(Error::findings(findings));
    }
    let service = config.service.clone().unwrap_or_default();
    let task_json = express_task_json(&service, &config.cluster, &json);
    let decoded = model::codec::decode(&task_json, RegisterTaskDefinitionInput::deserialize);
    let Some(task) = decoded.value else {
        return Err(Error::internal(
            "the task definition derived from the express definition does not decode",
        ));
    };
    Ok(Local {
        config,
        task,
        task_json,
        service: None,
        service_json: None,
        express: Some(json),
        rollout,
        controller: choose(true, None),
        warnings: findings,
        secrets: ctx.secrets.clone(),
        task_doc: None,
        service_doc: None,
    })
}

/// The task definition ECS derives from an Express Mode service's configuration (the
/// defaults ECS fills in: 1 vCPU, 2 GB, port 80; logs to `/aws/ecs/CLUSTER/SERVICE`), as
/// RegisterTaskDefinition JSON: what verify checks (image, roles, log group, secrets) and
/// cost prices. The sandbox registers the same shape.
pub(crate) fn express_task_json(service: &str, cluster: &str, ex: &Value) -> Value {
    let pc = &ex["primaryContainer"];
    let port = pc.get("containerPort").cloned().unwrap_or(json!(80));
    let (group, prefix) = match pc.get("awsLogsConfiguration") {
        Some(l) => (l["logGroup"].clone(), l["logStreamPrefix"].clone()),
        None => (json!(format!("/aws/ecs/{cluster}/{service}")), json!("ecs")),
    };
    let mut container = json!({
        "name": EXPRESS_CONTAINER,
        "image": pc["image"],
        "essential": true,
        "portMappings": [{"containerPort": port, "protocol": "tcp"}],
        "logConfiguration": {"logDriver": "awslogs", "options": {
            "awslogs-group": group,
            "awslogs-stream-prefix": prefix,
        }},
    });
    for k in ["command", "environment", "secrets", "repositoryCredentials"] {
        if let Some(v) = pc.get(k).filter(|v| !v.is_null()) {
            container[k] = v.clone();
        }
    }
    let mut td = json!({
        "family": service,
        "networkMode": "awsvpc",
        "requiresCompatibilities": ["FARGATE"],
        "cpu": ex.get("cpu").cloned().unwrap_or(json!("1024")),
        "memory": ex.get("memory").cloned().unwrap_or(json!("2048")),
        "executionRoleArn": ex["executionRoleArn"],
        "containerDefinitions": [container],
    });
    if let Some(r) = ex.get("taskRoleArn").filter(|v| !v.is_null()) {
        td["taskRoleArn"] = r.clone();
    }
    td
}

/// Reads `rollout:`; problems become located findings.
fn read_rollout(config: &Config, findings: &mut Vec<Diagnostic>) -> Rollout {
    let mut r = Rollout::default();
    let doc = &config.document;
    let bad = |at: &str, what: &str, findings: &mut Vec<Diagnostic>| {
        findings.push(
            Diagnostic::error(format!(
                "`{}` must be {what}",
                at.trim_start_matches('/').replace('/', ".")
            ))
            .at(doc.locate(at))
            .hint(format!("write it as {what}")),
        );
    };
    for (key, value) in &config.rollout {
        let at = format!("/rollout/{key}");
        let Some(known) = RolloutKey::parse(key) else {
            RolloutKey::SECTION.unknown_key(doc, "/rollout", key, findings);
            continue;
        };
        match known {
            RolloutKey::Rollback => match value.as_bool() {
                Some(b) => r.rollback = b,
                None => bad(&at, "true or false", findings),
            },
            RolloutKey::OnCancel => match value.as_str() {
                Some("rollback") => r.on_cancel = OnCancel::Rollback,
                Some("leave") => r.on_cancel = OnCancel::Leave,
                _ => bad(&at, "\"rollback\" or \"leave\"", findings),
            },
            RolloutKey::WaitRollback => match value.as_str() {
                Some("serving") => r.wait_rollback = WaitRollback::Serving,
                Some("complete") => r.wait_rollback = WaitRollback::Complete,
                _ => bad(&at, "\"serving\" or \"complete\"", findings),
            },
            RolloutKey::FastFail => match value {
                Value::Bool(b) => r.fast_fail.enabled = *b,
                Value::Object(m) => {
                    for (k, v) in m {
                        let Some(known) = FastFailKey::parse(k) else {
                            FastFailKey::SECTION.unknown_key(doc, &at, k, findings);
                            continue;
                        };
                        let at = format!("{at}/{k}");
                        match known {
                            FastFailKey::Enabled => match v.as_bool() {
                                Some(b) => r.fast_fail.enabled = b,
                                None => bad(&at, "true or false", findings),
                            },
                            FastFailKey::SameReasonStops => match v.as_u64().filter(|n| *n >= 1) {
                                Some(n) => r.fast_fail.same_reason_stops = n as usize,
                                None => bad(&at, "a whole number of at least 1", findings),
                            },
                            FastFailKey::UnhealthyTargetFor => match v.as_str().map(parse_duration)
                            {
                                Some(Ok(d)) => r.fast_fail.unhealthy_target_for = d,
                                _ => bad(&at, "a duration such as 5m (0 turns it off)", findings),
                            },
                        }
                    }
                }
                _ => bad(&at, "true, false or a mapping", findings),
            },
            RolloutKey::Verify => match value {
                Value::Array(gates) => {
                    for (i, g) in gates.iter().enumerate() {
                        if let Some(gate) = read_gate(config, g, &format!("{at}/{i}"), findings) {
                            r.verify.push(gate);
                        }
                    }
                }
                _ => bad(
                    &at,
                    "a list of gates such as [{stage: POST_TEST_TRAFFIC_SHIFT, run: ./smoke.sh}]",
                    findings,
                ),
            },
        }
    }
    r
}

/// Why a gate's program cannot run, when it cannot: a path (with a slash) must be an
/// executable file, relative to `dir`; a bare name must be found on PATH.
fn gate_program_problem(program: &str, dir: &std::path::Path) -> Option<String> {
    use std::os::unix::fs::PermissionsExt;
    let executable = |p: &std::path::Path| {
        std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if program.contains('/') {
        let path: PathBuf = dir
            .join(program)
            .components()
            .filter(|c| !matches!(c, std::path::Component::CurDir))
            .collect();
        return match std::fs::metadata(&path) {
            Err(_) => Some(format!("does not exist ({})", path.display())),
            Ok(m) if !m.is_file() => Some(format!("is not a file ({})", path.display())),
            Ok(_) if !executable(&path) => Some(format!(
                "is not executable ({}); run `chmod +x` on it",
                path.display()
            )),
            Ok(_) => None,
        };
    }
    let on_path = std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|d| executable(&d.join(program))));
    (!on_path).then(|| "is not a program on PATH".to_string())
}

/// Every gate needs a PAUSE hook at its stage in the service definition (a gate of ours
/// answers that hook), on a service whose strategy has lifecycle stages.
fn check_gates(
    config: &Config,
    rollout: &Rollout,
    has_service: bool,
    findings: &mut Vec<Diagnostic>,
) {
    if rollout.verify.is_empty() {
        return;
    }
    let doc = &config.document;
    if !has_service {
        findings.push(
            Diagnostic::error("`rollout.verify` needs a service definition with PAUSE hooks")
                .at(doc.locate("/rollout/verify"))
                .hint("add `service_definition: ecs-service-def.json` to the config"),
        );
        return;
    };
    let spec = &rollout.service;
    if !spec.strategy.shifts_traffic() {
        let strategy = spec.strategy.name();
        findings.push(
            Diagnostic::error(format!(
                "`rollout.verify` gates answer lifecycle hooks, which a {strategy} deployment \
                 does not have"
            ))
            .at(doc.locate("/rollout/verify"))
            .hint(
                "set deploymentConfiguration.strategy to BLUE_GREEN, CANARY or LINEAR in the \
                 service definition, or remove `rollout.verify`",
            ),
        );
        return;
    }
    for (i, gate) in rollout.verify.iter().enumerate() {
        if !spec.pauses_at(&gate.stage) {
            let add = serde_json::json!({
                "targetType": "PAUSE",
                "lifecycleStages": [gate.stage.as_str()],
                "timeoutConfiguration": {
                    "timeoutInMinutes": gate.timeout.as_secs().div_ceil(60) + 5,
                    "action": "ROLLBACK"
                }
            });
            findings.push(
                Diagnostic::error(format!(
                    "gate at {} has no PAUSE hook to answer: the service definition has no \
                     PAUSE hook at that stage",
                    gate.stage
                ))
                .at(doc.locate(&format!("/rollout/verify/{i}/stage")))
                .hint(format!(
                    "add to deploymentConfiguration.lifecycleHooks in the service definition: {add}"
                )),
            );
        }
    }
}

/// Reads one `rollout.verify[]` entry; None (with findings) when it is unusable.
fn read_gate(config: &Config, g: &Value, at: &str, findings: &mut Vec<Diagnostic>) -> Option<Gate> {
    let doc = &config.document;
    let err =
        |at: &str, msg: String, hint: String| Diagnostic::error(msg).at(doc.locate(at)).hint(hint);
    let Some(m) = g.as_object() else {
        findings.push(err(
            at,
            "a verify gate must be a mapping".into(),
            "write it as {stage: POST_TEST_TRAFFIC_SHIFT, run: ./smoke.sh, timeout: 2m}".into(),
        ));
        return None;
    };
    let ok = GateKey::SECTION.check(doc, at, m, findings);
    let stage = gate_stage(m, at, &err, findings);
    let argv = gate_command(m, at, &err, findings);
    let timeout = gate_timeout(m, at, &err, findings);
    let dir = match config.path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let dir = std::path::absolute(&dir).unwrap_or(dir);
    // A gate that cannot start would roll back a good deployment: refuse it now instead.
    let argv = argv.filter(|argv| match gate_program_problem(&argv[0], &dir) {
        None => true,
        Some(problem) => {
            findings.push(err(
                &format!("{at}/run"),
                format!("verify gate command {:?} {problem}", argv[0]),
                "gates run in the config file's directory: write a path relative to it \
                 (./smoke.sh), an absolute path, or a program on PATH"
                    .into(),
            ));
            false
        }
    });
    match (ok, stage, argv, timeout) {
        (true, Some(stage), Some(argv), Some(timeout)) => Some(Gate {
            stage,
            argv,
            timeout,
            dir,
        }),
        _ => None,
    }
}

/// Builds a located finding: where, what, and what to do.
type Finding<'a> = dyn Fn(&str, String, String) -> Diagnostic + 'a;

/// A gate's `stage`: a lifecycle stage a PAUSE hook can wait at.
fn gate_stage(
    m: &serde_json::Map<String, Value>,
    at: &str,
    err: &Finding,
    findings: &mut Vec<Diagnostic>,
) -> Option<LifecycleStage> {
    let stages = PAUSE_STAGES
        .iter()
        .map(LifecycleStage::as_str)
        .collect::<Vec<_>>()
        .join(", ");
    match m.get(GateKey::Stage.key()).and_then(Value::as_str) {
        Some(s) => {
            let stage = LifecycleStage::parse(s);
            if PAUSE_STAGES.contains(&stage) {
                Some(stage)
            } else {
                let why = match stage {
                    LifecycleStage::TestTrafficShift | LifecycleStage::ProductionTrafficShift => {
                        format!("{s} is a traffic shift: ECS allows no PAUSE hook there")
                    }
                    _ => format!("{s} is not a lifecycle stage a PAUSE hook can wait at"),
                };
                findings.push(err(
                    &format!("{at}/stage"),
                    format!("verify gate stage: {why}"),
                    format!("use one of {stages}"),
                ));
                None
            }
        }
        None => {
            findings.push(err(
                at,
                "a verify gate needs a `stage`".into(),
                format!("add `stage: POST_TEST_TRAFFIC_SHIFT` (one of {stages})"),
            ));
            None
        }
    }
}

/// A gate's `run`: its command as words (a string split as a shell would, or a list).
fn gate_command(
    m: &serde_json::Map<String, Value>,
    at: &str,
    err: &Finding,
    findings: &mut Vec<Diagnostic>,
) -> Option<Vec<String>> {
    match m.get(GateKey::Run.key()) {
        Some(Value::String(s)) => match shlex::split(s) {
            Some(v) if !v.is_empty() => Some(v),
            _ => {
                findings.push(err(
                    &format!("{at}/run"),
                    format!("verify gate command {s:?} cannot be split into words"),
                    "close every quote, or give the command as a list: [./smoke.sh, --fast]".into(),
                ));
                None
            }
        },
        Some(Value::Array(a)) if !a.is_empty() && a.iter().all(Value::is_string) => Some(
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect(),
        ),
        Some(_) => {
            findings.push(err(
                &format!("{at}/run"),
                "`run` must be a command: a string or a list of strings".into(),
                "e.g. `run: ./smoke.sh` or `run: [sh, -c, \"curl -fsS $CORTADO_TEST_URL\"]`".into(),
            ));
            None
        }
        None => {
            findings.push(err(
                at,
                "a verify gate needs a `run` command".into(),
                "add `run: ./smoke.sh` (runs in the config's directory, no shell)".into(),
            ));
            None
        }
    }
}

/// A gate's `timeout` (a duration, default [`DEFAULT_GATE_TIMEOUT`]).
fn gate_timeout(
    m: &serde_json::Map<String, Value>,
    at: &str,
    err: &Finding,
    findings: &mut Vec<Diagnostic>,
) -> Option<Duration> {
    match m.get(GateKey::Timeout.key()) {
        None => Some(DEFAULT_GATE_TIMEOUT),
        Some(v) => match v.as_str().map(parse_duration) {
            Some(Ok(d)) if !d.is_zero() => Some(d),
            _ => {
                findings.push(err(
                    &format!("{at}/timeout"),
                    "a verify gate's `timeout` must be a duration such as 2m".into(),
                    "write it as 90s, 2m or 1h".into(),
                ));
                None
            }
        },
    }
}

/// The deadline of a run: flag, else config, else 10 minutes.
pub(crate) fn timeout(flag: Option<Duration>, config: &Config) -> Duration {
    flag.or(config.timeout).unwrap_or(Duration::from_secs(600))
}
