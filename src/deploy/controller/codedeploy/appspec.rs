//! CodeDeploy's settings in a config and the AppSpec built from them: the `codedeploy:`
//! section (application and deployment group names, as ecspresso reads them) and `appspec:`
//! (the Lambda hooks of the lifecycle events), checked before any call; the AppSpec of a
//! deployment (task definition, the load balancer's container and port, platform version,
//! network configuration, capacity provider strategy, hooks) and its YAML text.

use serde_json::{Map, Value, json};

use crate::config::Config;
use crate::config::schema::{AppSpecKey, CodeDeployKey};
use crate::error::{Diagnostic, Error, Result};

/// The AppSpec hooks of an ECS deployment, in the order CodeDeploy runs them.
pub(crate) const HOOK_EVENTS: [&str; 5] = [
    "BeforeInstall",
    "AfterInstall",
    "AfterAllowTestTraffic",
    "BeforeAllowTraffic",
    "AfterAllowTraffic",
];

/// `autoRollbackConfiguration.events` of every deployment cortado creates (ecspresso's
/// `--rollback-events` set).
pub const ROLLBACK_EVENTS: [&str; 3] = [
    "DEPLOYMENT_FAILURE",
    "DEPLOYMENT_STOP_ON_ALARM",
    "DEPLOYMENT_STOP_ON_REQUEST",
];

/// Whether the config's service definition names the CODE_DEPLOY controller.
pub(crate) fn configured_controller(service_json: Option<&Value>) -> bool {
    service_json
        .and_then(|s| s.pointer("/deploymentController/type"))
        .and_then(Value::as_str)
        == Some("CODE_DEPLOY")
}

/// The config's `codedeploy:` section: (application_name, deployment_group_name), each
/// optional (what is missing is discovered).
pub(crate) fn configured_names(config: &Config) -> Result<(Option<String>, Option<String>)> {
    let Some(v) = &config.codedeploy else {
        return Ok((None, None));
    };
    let bad = |what: &str| {
        Error::input(
            Diagnostic::error(format!("codedeploy: {what}"))
                .at(config.document.locate("/codedeploy"))
                .hint("write `codedeploy: {application_name: APP, deployment_group_name: GROUP}`"),
        )
    };
    let Some(map) = v.as_object() else {
        return Err(bad("must be a mapping"));
    };
    let get = |key: &str| -> Result<Option<String>> {
        match map.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(bad(&format!("{key} must be a string"))),
        }
    };
    Ok((
        get(CodeDeployKey::ApplicationName.key())?,
        get(CodeDeployKey::DeploymentGroupName.key())?,
    ))
}

/// The config's `appspec:` hooks as (lifecycle event, Lambda function), in the config's
/// order. Accepts ecspresso's shape (`Hooks: [{BeforeInstall: fn}, ...]`, or `hooks`).
pub(crate) fn configured_hooks(config: &Config) -> Result<Vec<(String, String)>> {
    let Some(spec) = &config.appspec else {
        return Ok(Vec::new());
    };
    let bad = |what: String| {
        Error::input(
            Diagnostic::error(format!("appspec: {what}"))
                .at(config.document.locate("/appspec"))
                .hint(format!(
                    "write `appspec: {{Hooks: [{{BeforeInstall: FUNCTION}}, ...]}}`; the events are {}",
                    HOOK_EVENTS.join(", ")
                )),
        )
    };
    let Some(map) = spec.as_object() else {
        return Err(bad("must be a mapping".into()));
    };
    let hooks = match map
        .get(AppSpecKey::Hooks.key())
        .or_else(|| map.get(AppSpecKey::HooksLower.key()))
    {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(a)) => a,
        Some(_) => return Err(bad("Hooks must be a list".into())),
    };
    let mut out = Vec::new();
    for h in hooks {
        let Some(entry) = h.as_object() else {
            return Err(bad("each hook must be a mapping `EVENT: FUNCTION`".into()));
        };
        for (event, f) in entry {
            if !HOOK_EVENTS.contains(&event.as_str()) {
                return Err(bad(format!(
                    "{event} is not a lifecycle event of an ECS deployment"
                )));
            }
            let Some(f) = f.as_str().filter(|f| !f.trim().is_empty()) else {
                return Err(bad(format!("{event} needs a Lambda function name or ARN")));
            };
            out.push((event.clone(), f.to_string()));
        }
    }
    Ok(out)
}

/// What `validate` (and every command, through the one loading path) checks of the
/// CodeDeploy settings before any call: the `codedeploy:` and `appspec:` sections, and that
/// a CODE_DEPLOY service definition names the container and port the AppSpec routes to.
pub(crate) fn check_config(config: &Config, service: Option<&Value>) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    let doc = &config.document;
    // Unknown keys of the two sections: warnings, as elsewhere in a config.
    for (section, at, value) in [
        (&CodeDeployKey::SECTION, "/codedeploy", &config.codedeploy),
        (&AppSpecKey::SECTION, "/appspec", &config.appspec),
    ] {
        if let Some(Value::Object(map)) = value {
            section.check(doc, at, map, &mut out);
        }
    }
    for e in [
        configured_names(config).err(),
        configured_hooks(config).err(),
    ]
    .into_iter()
    .flatten()
    {
        out.extend(e.diagnostics);
    }
    let code_deploy = service
        .and_then(|s| s.pointer("/deploymentController/type"))
        .and_then(Value::as_str)
        == Some("CODE_DEPLOY");
    if let Some(svc) = service.filter(|_| code_deploy)
        && let Err(e) = appspec(svc, "", &[])
    {
        out.extend(
            e.diagnostics
                .into_iter()
                .map(|d| d.at(config.document.locate("/service_definition"))),
        );
    }
    out
}

/// The AppSpec of a deployment of `task_definition_arn`, from the service definition
/// (camelCase JSON: the config's, else the live one's) and the hooks.
pub fn appspec(
    service: &Value,
    task_definition_arn: &str,
    hooks: &[(String, String)],
) -> Result<Value> {
    let lb = service.pointer("/loadBalancers/0");
    let container = lb
        .and_then(|l| l.get("containerName"))
        .and_then(Value::as_str);
    let port = lb
        .and_then(|l| l.get("containerPort"))
        .and_then(Value::as_i64);
    let (Some(container), Some(port)) = (container, port) else {
        return Err(Error::bad_input(
            "a CodeDeploy deployment needs the service's load balancer container: \
             loadBalancers[0].containerName and containerPort are missing",
        )
        .with_hint(
            "name them in the service definition, as ECS requires for CODE_DEPLOY services",
        ));
    };
    let mut props = Map::new();
    props.insert("TaskDefinition".into(), json!(task_definition_arn));
    props.insert(
        "LoadBalancerInfo".into(),
        json!({"ContainerName": container, "ContainerPort": port}),
    );
    if let Some(pv) = service.get("platformVersion").and_then(Value::as_str) {
        props.insert("PlatformVersion".into(), json!(pv));
    }
    if let Some(vpc) = service.pointer("/networkConfiguration/awsvpcConfiguration") {
        let mut a = Map::new();
        for (from, to) in [
            ("subnets", "Subnets"),
            ("securityGroups", "SecurityGroups"),
            ("assignPublicIp", "AssignPublicIp"),
        ] {
            if let Some(v) = vpc.get(from).filter(|v| !v.is_null()) {
                a.insert(to.into(), v.clone());
            }
        }
        props.insert(
            "NetworkConfiguration".into(),
            json!({"AwsvpcConfiguration": a}),
        );
    }
    if let Some(cps) = service
        .get("capacityProviderStrategy")
        .and_then(Value::as_array)
        .filter(|a| !a.is_empty())
    {
        let items: Vec<Value> = cps
            .iter()
            .map(|c| {
                let mut m = Map::new();
                for (from, to) in [
                    ("base", "Base"),
                    ("capacityProvider", "CapacityProvider"),
                    ("weight", "Weight"),
                ] {
                    if let Some(v) = c.get(from).filter(|v| !v.is_null()) {
                        m.insert(to.into(), v.clone());
                    }
                }
                Value::Object(m)
            })
            .collect();
        props.insert("CapacityProviderStrategy".into(), Value::Array(items));
    }
    let mut spec = json!({
        "version": 0.0,
        "Resources": [{"TargetService": {"Type": "AWS::ECS::Service", "Properties": props}}],
    });
    if !hooks.is_empty() {
        spec["Hooks"] = Value::Array(hooks.iter().map(|(e, f)| json!({ e: f })).collect());
    }
    Ok(spec)
}

/// The AppSpec as the YAML text CreateDeployment sends (and `cortado appspec` prints).
pub fn appspec_yaml(spec: &Value) -> Result<String> {
    serde_saphyr::to_string(spec)
        .map_err(|e| Error::internal(format!("cannot write the AppSpec as YAML: {e}")))
}

/// The task definition an AppSpec (YAML or JSON) deploys.
pub fn appspec_task_definition(text: &str) -> Option<String> {
    let v: Value = serde_saphyr::from_str(text).ok()?;
    v.pointer("/Resources/0/TargetService/Properties/TaskDefinition")
        .and_then(Value::as_str)
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appspec_from_a_service_definition() {
        let svc = json!({
            "loadBalancers": [{"targetGroupArn": "tg", "containerName": "web", "containerPort": 8080}],
            "platformVersion": "1.4.0",
            "networkConfiguration": {"awsvpcConfiguration": {"subnets": ["s-1"], "securityGroups": ["sg-1"], "assignPublicIp": "DISABLED"}},
            "capacityProviderStrategy": [{"capacityProvider": "FARGATE_SPOT", "weight": 2, "base": 1}],
        });
        let hooks = vec![("AfterAllowTestTraffic".to_string(), "smoke".to_string())];
        let spec = appspec(&svc, "arn:td:3", &hooks).unwrap();
        let p = &spec["Resources"][0]["TargetService"]["Properties"];
        assert_eq!(p["TaskDefinition"], "arn:td:3");
        assert_eq!(p["LoadBalancerInfo"]["ContainerName"], "web");
        assert_eq!(p["LoadBalancerInfo"]["ContainerPort"], 8080);
        assert_eq!(p["PlatformVersion"], "1.4.0");
        assert_eq!(
            p["NetworkConfiguration"]["AwsvpcConfiguration"]["Subnets"][0],
            "s-1"
        );
        assert_eq!(
            p["CapacityProviderStrategy"][0]["CapacityProvider"],
            "FARGATE_SPOT"
        );
        assert_eq!(spec["Hooks"][0]["AfterAllowTestTraffic"], "smoke");
        // The YAML reads back as the same document.
        let text = appspec_yaml(&spec).unwrap();
        let back: Value = serde_saphyr::from_str(&text).unwrap();
        assert_eq!(back, spec);
        assert_eq!(appspec_task_definition(&text).as_deref(), Some("arn:td:3"));
        // No container to route to: a clear error.
        assert!(appspec(&json!({}), "arn", &[]).is_err());
    }
}
