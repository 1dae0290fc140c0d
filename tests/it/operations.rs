//! Every AWS operation cortado can call is answered by the sandbox.
//!
//! The list is not kept by hand: it is read from the product's source at test time. The SDK
//! clients are the fields of `Clients` in `src/aws/mod.rs` (`pub(crate) NAME: aws_sdk_X::Client`);
//! an operation is a call `.NAME.operation()` whose chain ends in `.send()` or
//! `.into_paginator()` anywhere in `src/` outside unit tests. Each operation found is then sent
//! to an in-process sandbox over HTTP in its service's wire protocol, with a minimal valid input
//! from [`INPUTS`], and its answer must be the one AWS documents for that input: a success, or
//! the named error where the input cannot succeed. An operation found in the code without an
//! entry in [`INPUTS`] fails the test (add one), and so does any answer saying the sandbox does
//! not implement the operation (UnknownOperation, NotImplemented).

use std::collections::BTreeMap;
use std::path::Path;

use cortado_sandbox::{Prepare, PrepareCodeDeploy, Seed};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// How an SDK crate's requests look on the wire.
enum Wire {
    /// awsJson1.1: `POST /`, `X-Amz-Target: PREFIX.Operation`.
    Json(&'static str),
    /// awsQuery: a form with `Action` and this `Version`.
    Query(&'static str),
    /// S3's REST protocol.
    Rest,
}

/// The wire protocol of each SDK crate `src/aws/mod.rs` links (from the crates' generated
/// serializers). A client whose crate is missing here fails the test.
fn wire(sdk_crate: &str) -> Option<Wire> {
    Some(match sdk_crate {
        "aws_sdk_ecs" => Wire::Json("AmazonEC2ContainerServiceV20141113"),
        "aws_sdk_ecr" => Wire::Json("AmazonEC2ContainerRegistry_V20150921"),
        "aws_sdk_codedeploy" => Wire::Json("CodeDeploy_20141006"),
        "aws_sdk_ssm" => Wire::Json("AmazonSSM"),
        "aws_sdk_cloudwatchlogs" => Wire::Json("Logs_20140328"),
        "aws_sdk_applicationautoscaling" => Wire::Json("AnyScaleFrontendService"),
        "aws_sdk_secretsmanager" => Wire::Json("secretsmanager"),
        "aws_sdk_elasticloadbalancingv2" => Wire::Query("2015-12-01"),
        "aws_sdk_iam" => Wire::Query("2010-05-08"),
        "aws_sdk_cloudformation" => Wire::Query("2010-05-15"),
        "aws_sdk_s3" => Wire::Rest,
        _ => return None,
    })
}

/// A minimal valid input for each operation (PascalCase name), in the order they are sent.
/// JSON protocols take a JSON body; awsQuery a form (`K=V&...`); S3 `METHOD /path`. `{name}`
/// is replaced by a value captured from an earlier answer. `expect` is `None` for a success,
/// else the error code AWS documents for that input.
struct Input {
    op: &'static str,
    body: &'static str,
    /// (name, JSON pointer or XML element) to capture from the answer.
    capture: &'static [(&'static str, &'static str)],
    expect: Option<&'static str>,
}

const fn ok(op: &'static str, body: &'static str) -> Input {
    Input {
        op,
        body,
        capture: &[],
        expect: None,
    }
}

const fn keep(
    op: &'static str,
    body: &'static str,
    capture: &'static [(&'static str, &'static str)],
) -> Input {
    Input {
        op,
        body,
        capture,
        expect: None,
    }
}

const fn fails(op: &'static str, body: &'static str, code: &'static str) -> Input {
    Input {
        op,
        body,
        capture: &[],
        expect: Some(code),
    }
}

const INPUTS: &[Input] = &[
    // ECS
    ok("DescribeClusters", r#"{"clusters": ["ops"]}"#),
    ok(
        "DescribeServices",
        r#"{"cluster": "ops", "services": ["web"]}"#,
    ),
    ok("DescribeTaskDefinition", r#"{"taskDefinition": "web"}"#),
    ok("ListTaskDefinitions", r#"{"familyPrefix": "web"}"#),
    ok(
        "RegisterTaskDefinition",
        r#"{"family": "web", "networkMode": "awsvpc", "requiresCompatibilities": ["FARGATE"], "cpu": "256", "memory": "512",
            "containerDefinitions": [{"name": "web", "image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/web:v1", "portMappings": [{"containerPort": 80}]}]}"#,
    ),
    keep(
        "ListTasks",
        r#"{"cluster": "ops", "serviceName": "web"}"#,
        &[("task", "/taskArns/0")],
    ),
    ok(
        "DescribeTasks",
        r#"{"cluster": "ops", "tasks": ["{task}"]}"#,
    ),
    // The service was created without enableExecuteCommand: ECS refuses exec into its task.
    fails(
        "ExecuteCommand",
        r#"{"cluster": "ops", "task": "{task}", "container": "web", "command": "sh", "interactive": true}"#,
        "InvalidParameterException",
    ),
    keep(
        "RunTask",
        concat!(
            r#"{"cluster": "ops", "taskDefinition": "web:1", "launchType": "FARGATE", "#,
            r#""networkConfiguration": {"awsvpcConfiguration": {"subnets": ["subnet-1"]}}}"#
        ),
        &[("run", "/tasks/0/taskArn")],
    ),
    ok(
        "StopTask",
        r#"{"cluster": "ops", "task": "{run}", "reason": "ops test"}"#,
    ),
    ok(
        "CreateService",
        concat!(
            r#"{"cluster": "ops", "serviceName": "web2", "taskDefinition": "web:1", "desiredCount": 1, "launchType": "FARGATE", "#,
            r#""networkConfiguration": {"awsvpcConfiguration": {"subnets": ["subnet-1"]}}}"#
        ),
    ),
    ok(
        "UpdateService",
        r#"{"cluster": "ops", "service": "web", "taskDefinition": "web:2"}"#,
    ),
    keep(
        "ListServiceDeployments",
        r#"{"cluster": "ops", "service": "web"}"#,
        &[("sd", "/serviceDeployments/0/serviceDeploymentArn")],
    ),
    keep(
        "DescribeServiceDeployments",
        r#"{"serviceDeploymentArns": ["{sd}"]}"#,
        &[("rev", "/serviceDeployments/0/targetServiceRevision/arn")],
    ),
    ok(
        "DescribeServiceRevisions",
        r#"{"serviceRevisionArns": ["{rev}"]}"#,
    ),
    // No hook of this id waits: ECS refuses the answer.
    fails(
        "ContinueServiceDeployment",
        r#"{"serviceDeploymentArn": "{sd}", "hookId": "no-such-hook", "action": "CONTINUE"}"#,
        "InvalidParameterException",
    ),
    ok(
        "StopServiceDeployment",
        r#"{"serviceDeploymentArn": "{sd}", "stopType": "ROLLBACK"}"#,
    ),
    ok("DeregisterTaskDefinition", r#"{"taskDefinition": "web:2"}"#),
    // `deregister --delete`: web:2 is INACTIVE now.
    ok("DeleteTaskDefinitions", r#"{"taskDefinitions": ["web:2"]}"#),
    // `cortado delete --terminate`: web runs tasks, so ECS needs `force`.
    ok(
        "DeleteService",
        r#"{"cluster": "ops", "service": "web2", "force": true}"#,
    ),
    keep(
        "CreateExpressGatewayService",
        r#"{"cluster": "ops", "serviceName": "api", "executionRoleArn": "arn:aws:iam::123456789012:role/exec",
            "infrastructureRoleArn": "arn:aws:iam::123456789012:role/infra",
            "primaryContainer": {"image": "nginx:1", "containerPort": 8080}}"#,
        &[("express", "/service/serviceArn")],
    ),
    ok(
        "DescribeExpressGatewayService",
        r#"{"serviceArn": "{express}"}"#,
    ),
    ok(
        "UpdateExpressGatewayService",
        r#"{"serviceArn": "{express}", "primaryContainer": {"image": "nginx:2", "containerPort": 8080}}"#,
    ),
    // ECR
    ok(
        "BatchGetImage",
        r#"{"repositoryName": "web", "imageIds": [{"imageTag": "v1"}]}"#,
    ),
    // `cortado sandbox push`: a repository that exists already is ECR's
    // RepositoryAlreadyExistsException, which push takes as "there".
    fails(
        "CreateRepository",
        r#"{"repositoryName": "web"}"#,
        "RepositoryAlreadyExistsException",
    ),
    ok(
        "PutImage",
        r#"{"repositoryName": "web", "imageTag": "v9", "imageManifest": "{\"schemaVersion\": 2, \"mediaType\": \"application/vnd.docker.distribution.manifest.v2+json\"}"}"#,
    ),
    // ELBv2
    keep(
        "DescribeLoadBalancers",
        "Names.member.1=web-alb",
        &[("lb", "LoadBalancerArn")],
    ),
    keep(
        "DescribeListeners",
        "LoadBalancerArn={lb}",
        &[("listener", "ListenerArn")],
    ),
    ok("DescribeRules", "ListenerArn={listener}"),
    keep(
        "DescribeTargetGroups",
        "Names.member.1=web-tg",
        &[("tg", "TargetGroupArn")],
    ),
    ok("DescribeTargetHealth", "TargetGroupArn={tg}"),
    // CodeDeploy: discovery, then a deployment of the CODE_DEPLOY service `cd`.
    ok("ListApplications", "{}"),
    ok("ListDeploymentGroups", r#"{"applicationName": "app"}"#),
    ok(
        "BatchGetDeploymentGroups",
        r#"{"applicationName": "app", "deploymentGroupNames": ["dg"]}"#,
    ),
    ok(
        "GetDeploymentGroup",
        r#"{"applicationName": "app", "deploymentGroupName": "dg"}"#,
    ),
    keep(
        "CreateDeployment",
        r#"{"applicationName": "app", "deploymentGroupName": "dg", "revision": {"revisionType": "AppSpecContent", "appSpecContent": {"content":
            "{\"version\": 0.0, \"Resources\": [{\"TargetService\": {\"Type\": \"AWS::ECS::Service\", \"Properties\": {\"TaskDefinition\": \"web:1\", \"LoadBalancerInfo\": {\"ContainerName\": \"web\", \"ContainerPort\": 80}}}}]}"}}}"#,
        &[("deployment", "/deploymentId")],
    ),
    ok("GetDeployment", r#"{"deploymentId": "{deployment}"}"#),
    ok(
        "ListDeployments",
        r#"{"applicationName": "app", "deploymentGroupName": "dg"}"#,
    ),
    keep(
        "ListDeploymentTargets",
        r#"{"deploymentId": "{deployment}"}"#,
        &[("target", "/targetIds/0")],
    ),
    ok(
        "GetDeploymentTarget",
        r#"{"deploymentId": "{deployment}", "targetId": "{target}"}"#,
    ),
    ok(
        "StopDeployment",
        r#"{"deploymentId": "{deployment}", "autoRollbackEnabled": true}"#,
    ),
    // SSM, CloudWatch Logs, Application Auto Scaling, IAM
    ok(
        "GetParameter",
        r#"{"Name": "/ops/foo", "WithDecryption": true}"#,
    ),
    ok("DescribeLogGroups", r#"{"logGroupNamePrefix": "/ecs/web"}"#),
    fails(
        "GetLogEvents",
        r#"{"logGroupName": "/ecs/web", "logStreamName": "web/web/none", "startFromHead": true}"#,
        "ResourceNotFoundException",
    ),
    ok(
        "RegisterScalableTarget",
        r#"{"ServiceNamespace": "ecs", "ResourceId": "service/ops/web", "ScalableDimension": "ecs:service:DesiredCount", "MinCapacity": 1, "MaxCapacity": 2}"#,
    ),
    ok(
        "DescribeScalableTargets",
        r#"{"ServiceNamespace": "ecs", "ResourceIds": ["service/ops/web"]}"#,
    ),
    ok("GetRole", "RoleName=web-execution"),
    ok(
        "SimulatePrincipalPolicy",
        "PolicySourceArn=arn:aws:iam::123456789012:role/web-execution&ActionNames.member.1=ssmmessages%3AOpenDataChannel",
    ),
    // Session Manager: no such target or session.
    fails(
        "StartSession",
        r#"{"Target": "ecs:ops_0000_0000-1", "DocumentName": "AWS-StartPortForwardingSession", "Parameters": {"portNumber": ["80"]}}"#,
        "TargetNotConnected",
    ),
    fails(
        "ResumeSession",
        r#"{"SessionId": "sandbox-none"}"#,
        "DoesNotExistException",
    ),
    ok("TerminateSession", r#"{"SessionId": "sandbox-none"}"#),
    // Template lookups: CloudFormation, Secrets Manager, S3
    ok("DescribeStacks", "StackName=network"),
    ok("ListExports", ""),
    ok("DescribeSecret", r#"{"SecretId": "ops/baz"}"#),
    ok("GetObject", "GET /ops-states/net/terraform.tfstate"),
];

/// The world the inputs run against (the sandbox's seed format).
const SEED: &str = r#"
clusters: [ops]
images: ["123456789012.dkr.ecr.us-east-1.amazonaws.com/web:v1"]
targetGroups:
  - {name: web-tg}
  - {name: cd-tg}
loadBalancers:
  - name: web-alb
    listeners:
      - port: 80
        forward: [{targetGroup: web-tg, weight: 100}]
        rules:
          - {priority: 10, forward: [{targetGroup: web-tg, weight: 100}]}
services:
  - cluster: ops
    serviceName: web
    desiredCount: 1
    launchType: FARGATE
    networkConfiguration: {awsvpcConfiguration: {subnets: [subnet-1]}}
    loadBalancers: [{targetGroupArn: web-tg, containerName: web, containerPort: 80}]
    taskDefinition:
      family: web
      networkMode: awsvpc
      requiresCompatibilities: [FARGATE]
      cpu: "256"
      memory: "512"
      containerDefinitions:
        - name: web
          image: 123456789012.dkr.ecr.us-east-1.amazonaws.com/web:v1
          portMappings: [{containerPort: 80}]
  - cluster: ops
    serviceName: cd
    desiredCount: 1
    launchType: FARGATE
    deploymentController: {type: CODE_DEPLOY}
    networkConfiguration: {awsvpcConfiguration: {subnets: [subnet-1]}}
    loadBalancers: [{targetGroupArn: cd-tg, containerName: web, containerPort: 80}]
    taskDefinition: web:1
parameters:
  - {name: /ops/foo, type: SecureString, value: foo}
secrets:
  - {name: ops/baz, secretString: baz}
stacks:
  - stackName: network
    outputs: [{outputKey: VpcId, outputValue: vpc-1, exportName: network-VpcId}]
objects:
  - {bucket: ops-states, key: net/terraform.tfstate, body: '{"version": 4, "outputs": {}}'}
"#;

/// Methods of an SDK client that are not API operations.
const NOT_OPERATIONS: [&str; 4] = ["config", "clone", "as_ref", "to_owned"];

/// Strips unit tests (`#[cfg(test)]` and everything after it) from a source file.
fn product_code(text: &str) -> &str {
    text.find("#[cfg(test)]").map_or(text, |i| &text[..i])
}

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let p = entry.path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|e| e == "rs")
            && p.file_name().is_some_and(|n| n != "tests.rs")
        {
            out.push(p);
        }
    }
}

/// `snake_case` -> `PascalCase`.
fn pascal(snake: &str) -> String {
    snake
        .split('_')
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                .unwrap_or_default()
        })
        .collect()
}

/// The SDK clients of `Clients`: field name -> SDK crate.
fn client_fields(root: &Path) -> BTreeMap<String, String> {
    let text = std::fs::read_to_string(root.join("src/aws/mod.rs")).unwrap();
    let start = text.find("pub struct Clients {").expect("struct Clients");
    let body = &text[start..start + text[start..].find("\n}").unwrap()];
    body.lines()
        .filter_map(|l| {
            let l = l.trim().strip_prefix("pub(crate) ")?;
            let (name, ty) = l.split_once(':')?;
            let krate = ty.trim().strip_suffix("::Client,")?;
            Some((name.trim().to_string(), krate.to_string()))
        })
        .collect()
}

/// Every (SDK crate, Operation) the product's code sends, with a place that sends it.
fn operations_in_code(root: &Path) -> BTreeMap<(String, String), String> {
    let fields = client_fields(root);
    assert!(
        fields.len() >= 10,
        "the Clients struct was not read: {fields:?}"
    );
    let mut files = Vec::new();
    rust_files(&root.join("src"), &mut files);
    let mut found = BTreeMap::new();
    for f in files {
        let full = std::fs::read_to_string(&f).unwrap();
        let text = product_code(&full);
        for (field, krate) in &fields {
            let needle = format!(".{field}");
            let mut from = 0;
            while let Some(i) = text[from..].find(&needle) {
                let at = from + i + needle.len();
                from = at;
                // `.field` then whitespace, `.`, an identifier and `()`.
                let rest = text[at..].trim_start();
                let Some(rest) = rest.strip_prefix('.') else {
                    continue;
                };
                let rest = rest.trim_start();
                let ident: String = rest
                    .chars()
                    .take_while(|c| c.is_ascii_lowercase() || *c == '_' || c.is_ascii_digit())
                    .collect();
                if ident.is_empty() || !rest[ident.len()..].starts_with("()") {
                    continue;
                }
                // An operation's builder is sent (`.send()`, `.into_paginator()`) in the same
                // function, perhaps after being kept in a variable; `config()` and the like
                // are the client's own methods, not operations.
                let tail = &rest[ident.len()..];
                let next_fn = [" fn ", "\nfn "]
                    .iter()
                    .filter_map(|k| tail.find(k))
                    .min()
                    .unwrap_or(tail.len());
                let scope = &tail[..next_fn];
                let sent = scope.contains(".send()") || scope.contains(".into_paginator()");
                if sent && !NOT_OPERATIONS.contains(&ident.as_str()) {
                    let line = text[..at].lines().count();
                    let rel = f.strip_prefix(root).unwrap_or(&f).display().to_string();
                    found
                        .entry((krate.clone(), pascal(&ident)))
                        .or_insert(format!("{rel}:{line}"));
                }
            }
        }
    }
    found
}

/// One HTTP/1.1 exchange with the sandbox: (status, body).
async fn http(endpoint: &str, head: &str, headers: &[(&str, String)], body: &str) -> (u16, String) {
    let addr = endpoint.trim_start_matches("http://");
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut req = format!("{head} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    s.write_all(req.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).await.unwrap();
    let text = String::from_utf8_lossy(&raw).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

/// The error code of an answer in any of the three protocols.
fn error_code(body: &str) -> Option<String> {
    if let Ok(v) = serde_json::from_str::<Value>(body) {
        return v["__type"]
            .as_str()
            .map(|t| t.rsplit('#').next().unwrap_or(t).to_string());
    }
    xml_element(body, "Code")
}

fn xml_element(body: &str, tag: &str) -> Option<String> {
    let open = format!("<{tag}>");
    let start = body.find(&open)? + open.len();
    let end = body[start..].find(&format!("</{tag}>"))? + start;
    Some(body[start..end].to_string())
}

fn fill(template: &str, captured: &BTreeMap<String, String>) -> String {
    let mut out = template.to_string();
    for (k, v) in captured {
        out = out.replace(&format!("{{{k}}}"), v);
    }
    out
}

/// Sends one operation in its crate's protocol.
async fn send(endpoint: &str, wire: &Wire, input: &Input, body: &str) -> (u16, String) {
    match wire {
        Wire::Json(prefix) => {
            let headers = [
                ("X-Amz-Target", format!("{prefix}.{}", input.op)),
                ("Content-Type", "application/x-amz-json-1.1".to_string()),
            ];
            http(endpoint, "POST /", &headers, body).await
        }
        Wire::Query(version) => {
            let mut form = format!("Action={}&Version={version}", input.op);
            for pair in body.split('&').filter(|p| !p.is_empty()) {
                let (k, v) = pair.split_once('=').unwrap();
                form.push_str(&format!(
                    "&{k}={}",
                    v.replace(':', "%3A").replace('/', "%2F")
                ));
            }
            let headers = [(
                "Content-Type",
                "application/x-www-form-urlencoded".to_string(),
            )];
            http(endpoint, "POST /", &headers, &form).await
        }
        Wire::Rest => http(endpoint, body, &[], "").await,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sandbox_answers_every_operation_cortado_calls() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let ops = operations_in_code(root);
    // The scan itself must see the calls it is about (a sanity check on the scanner).
    for known in ["DescribeServices", "BatchGetDeploymentGroups", "GetObject"] {
        assert!(
            ops.keys().any(|(_, op)| op == known),
            "the scan missed {known}: {ops:?}"
        );
    }
    let seed = Seed::parse(SEED, Path::new("operations-seed.yml")).unwrap();
    let sb = cortado_sandbox::start(cortado_sandbox::Options {
        seed: Some(seed),
        speed: 50.0,
        ..Default::default()
    })
    .await
    .unwrap();
    Prepare {
        cluster: "ops".into(),
        service: Some("cd".into()),
        roles: vec!["arn:aws:iam::123456789012:role/web-execution".into()],
        log_groups: vec!["/ecs/web".into()],
        codedeploy: Some(PrepareCodeDeploy {
            application: "app".into(),
            group: "dg".into(),
            target_group: "cd-tg".into(),
            ..Default::default()
        }),
        ..Default::default()
    }
    .apply(&sb)
    .unwrap();

    let mut problems = Vec::new();
    let without_input: Vec<String> = ops
        .iter()
        .filter(|((_, op), _)| !INPUTS.iter().any(|i| i.op == op))
        .map(|((k, op), at)| format!("{k} {op} (called at {at})"))
        .collect();
    if !without_input.is_empty() {
        problems.push(format!(
            "operations called by the code with no minimal input in tests/operations.rs INPUTS: {without_input:?}"
        ));
    }
    let mut captured = BTreeMap::new();
    let mut table = Vec::new();
    for input in INPUTS {
        let Some(((krate, _), at)) = ops.iter().find(|((_, op), _)| op == input.op) else {
            // An input for an operation the code no longer calls: still sent, so that the
            // captures later inputs need are there.
            table.push(format!("{:<32} (not called by the code)", input.op));
            continue;
        };
        let Some(wire) = wire(krate) else {
            problems.push(format!("no wire protocol known for {krate} ({})", input.op));
            continue;
        };
        let body = fill(input.body, &captured);
        let (status, answer) = send(&sb.endpoint(), &wire, input, &body).await;
        let code = (status >= 300).then(|| error_code(&answer)).flatten();
        table.push(format!(
            "{:<32} {status} {:<40} {at}",
            input.op,
            code.as_deref().unwrap_or("")
        ));
        let unimplemented = answer.contains("does not implement")
            || code.as_deref().is_some_and(|c| {
                matches!(
                    c,
                    "UnknownOperationException"
                        | "UnknownOperation"
                        | "InvalidAction"
                        | "NotImplemented"
                )
            });
        if unimplemented {
            problems.push(format!(
                "{} ({krate}, called at {at}): the sandbox does not implement it: {status} {answer}",
                input.op
            ));
        } else if code.as_deref() != input.expect || (input.expect.is_none() && status != 200) {
            problems.push(format!(
                "{} ({krate}): expected {}, got {status} {answer}",
                input.op,
                input.expect.unwrap_or("200")
            ));
        }
        for (name, at) in input.capture {
            let value = if at.starts_with('/') {
                serde_json::from_str::<Value>(&answer)
                    .ok()
                    .and_then(|v| v.pointer(at).and_then(Value::as_str).map(str::to_string))
            } else {
                xml_element(&answer, at)
            };
            match value {
                Some(v) => {
                    captured.insert(name.to_string(), v);
                }
                None => problems.push(format!("{}: no {at} in the answer: {answer}", input.op)),
            }
        }
    }
    eprintln!(
        "{} operations called by cortado, each answered:\n{}",
        ops.len(),
        table.join("\n")
    );
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
