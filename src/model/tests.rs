//! Tests of the codec side of the model layer: decode, round trip, unknown keys, wrong types.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::{Value, json};

use super::*;
use crate::error::Severity;
use crate::render::{RenderContext, load_str};

pub(super) fn doc_named(name: &str, text: &str) -> Document {
    load_str(
        &RenderContext::new(BTreeMap::new()),
        Path::new(name),
        text.to_string(),
    )
    .unwrap()
}

pub(super) fn doc(text: &str) -> Document {
    doc_named("t.json", text)
}

/// 1-based line and column of the first occurrence of `needle` in `text`.
pub(super) fn pos(text: &str, needle: &str) -> (usize, usize) {
    let off = text
        .find(needle)
        .unwrap_or_else(|| panic!("{needle} not in text"));
    let line = text[..off].matches('\n').count() + 1;
    let line_start = text[..off].rfind('\n').map_or(0, |i| i + 1);
    (line, text[line_start..off].chars().count() + 1)
}

fn errors(d: &[Diagnostic]) -> Vec<&Diagnostic> {
    d.iter().filter(|d| d.is_error()).collect()
}

fn line_col(d: &Diagnostic) -> (usize, usize) {
    let l = d.location.as_ref().expect("located");
    (l.line, l.col)
}

pub(super) const FULL_TASK: &str = r#"{
  "family": "web-api",
  "taskRoleArn": "arn:aws:iam::123456789012:role/web-api-task",
  "executionRoleArn": "arn:aws:iam::123456789012:role/ecsTaskExecutionRole",
  "networkMode": "awsvpc",
  "requiresCompatibilities": ["FARGATE"],
  "cpu": "1024",
  "memory": "2048",
  "runtimePlatform": {"cpuArchitecture": "ARM64", "operatingSystemFamily": "LINUX"},
  "ephemeralStorage": {"sizeInGiB": 30},
  "containerDefinitions": [
    {
      "name": "app",
      "image": "123456789012.dkr.ecr.eu-west-1.amazonaws.com/web-api:1.4.2",
      "essential": true,
      "cpu": 768,
      "memory": 1536,
      "memoryReservation": 1024,
      "portMappings": [{"containerPort": 8080, "hostPort": 8080, "protocol": "tcp", "name": "http", "appProtocol": "http"}],
      "environment": [{"name": "RUST_LOG", "value": "info"}, {"name": "PORT", "value": "8080"}],
      "secrets": [
        {"name": "DATABASE_URL", "valueFrom": "arn:aws:ssm:eu-west-1:123456789012:parameter/web-api/db-url"},
        {"name": "API_KEY", "valueFrom": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:web-api-key-AbCdEf"}
      ],
      "healthCheck": {"command": ["CMD-SHELL", "curl -f http://localhost:8080/health || exit 1"], "interval": 15, "timeout": 5, "retries": 3, "startPeriod": 20},
      "logConfiguration": {
        "logDriver": "awslogs",
        "options": {"awslogs-group": "/ecs/web-api", "awslogs-region": "eu-west-1", "awslogs-stream-prefix": "app"}
      },
      "dependsOn": [{"containerName": "log-router", "condition": "START"}],
      "dockerLabels": {"team": "payments", "service": "web-api"},
      "ulimits": [{"name": "nofile", "softLimit": 65536, "hardLimit": 65536}],
      "readonlyRootFilesystem": false,
      "stopTimeout": 30
    },
    {
      "name": "log-router",
      "image": "public.ecr.aws/aws-observability/aws-for-fluent-bit:stable",
      "essential": false,
      "cpu": 128,
      "memory": 256,
      "firelensConfiguration": {"type": "fluentbit", "options": {"enable-ecs-log-metadata": "true"}},
      "logConfiguration": {
        "logDriver": "awslogs",
        "options": {"awslogs-group": "/ecs/web-api-firelens", "awslogs-region": "eu-west-1", "awslogs-stream-prefix": "firelens"}
      }
    }
  ],
  "volumes": [{"name": "scratch"}],
  "tags": [{"key": "env", "value": "prod"}, {"key": "team", "value": "payments"}]
}
"#;

pub(super) const FULL_SERVICE: &str = r#"{
  "launchType": "FARGATE",
  "platformVersion": "LATEST",
  "desiredCount": 3,
  "schedulingStrategy": "REPLICA",
  "loadBalancers": [
    {"targetGroupArn": "arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/web-api/0123456789abcdef", "containerName": "app", "containerPort": 8080}
  ],
  "networkConfiguration": {
    "awsvpcConfiguration": {
      "subnets": ["subnet-0aaa1111", "subnet-0bbb2222"],
      "securityGroups": ["sg-0ccc3333"],
      "assignPublicIp": "DISABLED"
    }
  },
  "deploymentConfiguration": {
    "maximumPercent": 200,
    "minimumHealthyPercent": 100,
    "deploymentCircuitBreaker": {"enable": true, "rollback": true},
    "strategy": "ROLLING",
    "bakeTimeInMinutes": 5,
    "alarms": {"alarmNames": ["web-api-5xx"], "enable": true, "rollback": true}
  },
  "deploymentController": {"type": "ECS"},
  "healthCheckGracePeriodSeconds": 60,
  "enableExecuteCommand": true,
  "enableECSManagedTags": true,
  "propagateTags": "SERVICE",
  "tags": [{"key": "env", "value": "prod"}]
}
"#;

#[test]
fn full_task_definition_round_trips_losslessly() {
    let d = doc(FULL_TASK);
    let loaded = task_definition(&d);
    assert!(loaded.diagnostics.is_empty(), "{:#?}", loaded.diagnostics);
    assert_eq!(loaded.json, d.value);
    let input = loaded.input.as_ref().unwrap();
    assert_eq!(input.family(), Some("web-api"));
    assert_eq!(input.container_definitions().len(), 2);
    assert_eq!(input.container_definitions()[0].cpu(), 768);
    assert_eq!(
        input.container_definitions()[0].secrets()[1].value_from(),
        "arn:aws:secretsmanager:eu-west-1:123456789012:secret:web-api-key-AbCdEf"
    );
    // And again from the SDK value alone.
    assert_eq!(task_definition_to_json(input).unwrap(), d.value);
}

#[test]
fn full_service_definition_round_trips_losslessly() {
    let d = doc(FULL_SERVICE);
    let loaded = service_definition(&d);
    assert!(loaded.diagnostics.is_empty(), "{:#?}", loaded.diagnostics);
    assert_eq!(loaded.json, d.value);
    let input = loaded.input.as_ref().unwrap();
    assert_eq!(input.desired_count(), Some(3));
    assert_eq!(
        input
            .deployment_configuration()
            .and_then(|c| c.deployment_circuit_breaker())
            .map(|b| b.rollback()),
        Some(true)
    );
    assert_eq!(service_definition_to_json(input).unwrap(), d.value);
}

#[test]
fn json_output_is_sorted_and_stable() {
    let d = doc(FULL_TASK);
    let input = task_definition(&d).input.unwrap();
    let a = serde_json::to_string(&task_definition_to_json(&input).unwrap()).unwrap();
    for _ in 0..5 {
        let b = serde_json::to_string(&task_definition_to_json(&input).unwrap()).unwrap();
        assert_eq!(a, b);
    }
    let json = task_definition_to_json(&input).unwrap();
    let keys: Vec<&String> = json.as_object().unwrap().keys().collect();
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(keys, sorted);
    let labels: Vec<&String> = json["containerDefinitions"][0]["dockerLabels"]
        .as_object()
        .unwrap()
        .keys()
        .collect();
    assert_eq!(labels, ["service", "team"]);
}

#[test]
fn unknown_top_level_key_is_located_with_did_you_mean() {
    let text = "{\n  \"famliy\": \"web\",\n  \"containerDefinitions\": [{\"name\": \"a\", \"image\": \"x\"}]\n}\n";
    let loaded = task_definition(&doc(text));
    let errs = errors(&loaded.diagnostics);
    assert_eq!(errs.len(), 1, "{errs:#?}");
    assert_eq!(
        errs[0].message,
        "unknown key \"famliy\" in the task definition"
    );
    assert_eq!(line_col(errs[0]), (2, 3));
    assert_eq!(errs[0].hint.as_deref(), Some("did you mean \"family\"?"));
    let shown = errs[0].to_string();
    assert!(shown.contains("--> t.json:2:3"), "{shown}");
    assert!(shown.contains("^^^^^^^^"), "{shown}");
}

#[test]
fn nested_unknown_key_in_second_container_is_located() {
    let text = r#"{
  "family": "web",
  "containerDefinitions": [
    {"name": "a", "image": "x"},
    {
      "name": "b",
      "image": "y",
      "portMapings": [{"containerPort": 80}]
    }
  ]
}"#;
    let loaded = task_definition(&doc(text));
    let errs = errors(&loaded.diagnostics);
    assert_eq!(errs.len(), 1, "{errs:#?}");
    assert_eq!(
        errs[0].message,
        "unknown key \"portMapings\" in containerDefinitions[1]"
    );
    assert_eq!(line_col(errs[0]), pos(text, "\"portMapings\""));
    assert_eq!(
        errs[0].hint.as_deref(),
        Some("did you mean \"portMappings\"?")
    );
    // The rest of the container is kept.
    let input = loaded.input.unwrap();
    assert_eq!(input.container_definitions()[1].image(), Some("y"));
}

#[test]
fn unknown_key_deep_inside_a_map_valued_struct() {
    let text = r#"{"family": "f", "containerDefinitions": [{"name": "a", "image": "x",
  "logConfiguration": {"logDriver": "awslogs", "option": {"a": "b"}}}]}"#;
    let loaded = task_definition(&doc(text));
    let errs = errors(&loaded.diagnostics);
    assert_eq!(errs.len(), 1, "{errs:#?}");
    assert!(
        errs[0]
            .message
            .contains("containerDefinitions[0].logConfiguration")
    );
    assert_eq!(errs[0].hint.as_deref(), Some("did you mean \"options\"?"));
    assert_eq!(line_col(errs[0]), pos(text, "\"option\""));
}

#[test]
fn unknown_key_without_close_match_lists_known_keys() {
    let text = r#"{"family": "f", "containerDefinitions": [], "zzzzzzzzzz": 1}"#;
    let loaded = task_definition(&doc(text));
    let errs = errors(&loaded.diagnostics);
    assert_eq!(errs.len(), 1);
    let hint = errs[0].hint.as_deref().unwrap();
    assert!(
        hint.contains("Known keys here:") && hint.contains("containerDefinitions"),
        "{hint}"
    );
}

#[test]
fn container_cpu_as_string_is_a_located_type_error() {
    let text = r#"{
  "family": "web",
  "containerDefinitions": [
    {"name": "a", "image": "x", "cpu": "256", "memory": 512}
  ]
}"#;
    let loaded = task_definition(&doc(text));
    let errs = errors(&loaded.diagnostics);
    assert_eq!(errs.len(), 1, "{errs:#?}");
    assert_eq!(
        errs[0].message,
        "wrong type for containerDefinitions[0].cpu: expected an integer, found the string \"256\""
    );
    assert_eq!(line_col(errs[0]), pos(text, "\"256\""));
    let hint = errs[0].hint.as_deref().unwrap();
    assert!(hint.starts_with("write 256 without quotes"), "{hint}");
    assert!(hint.contains("task-level"), "{hint}");
    // Decoding went on: the other members are there, the bad one is left out.
    let input = loaded.input.unwrap();
    let c = &input.container_definitions()[0];
    assert_eq!((c.memory(), c.cpu()), (Some(512), 0));
    assert_eq!(input.family(), Some("web"));
}

#[test]
fn task_cpu_as_number_asks_for_quotes() {
    let text = "{\"family\": \"web\", \"cpu\": 256, \"containerDefinitions\": []}";
    let loaded = task_definition(&doc(text));
    let errs = errors(&loaded.diagnostics);
    assert_eq!(errs.len(), 1, "{errs:#?}");
    assert!(
        errs[0]
            .message
            .contains("expected a string, found the number 256")
    );
    assert!(
        errs[0]
            .hint
            .as_deref()
            .unwrap()
            .contains("task-level cpu and memory are strings")
    );
    assert_eq!(line_col(errs[0]), pos(text, "256"));
}

#[test]
fn several_wrong_types_are_all_reported_in_one_pass() {
    let text = r#"{
  "family": "web",
  "containerDefinitions": [
    {"name": "a", "image": "x", "essential": "true",
     "portMappings": [{"containerPort": "80"}, {"containerPort": 81}],
     "command": ["a", 1],
     "dockerLabels": {"k": 2},
     "environment": {"name": "A", "value": "b"}}
  ],
  "volumes": "scratch",
  "memory": "512"
}"#;
    let loaded = task_definition(&doc(text));
    let errs = errors(&loaded.diagnostics);
    let msgs: Vec<&str> = errs.iter().map(|d| d.message.as_str()).collect();
    assert_eq!(errs.len(), 6, "{msgs:#?}");
    assert!(
        msgs[0].contains("containerDefinitions[0].essential"),
        "{msgs:#?}"
    );
    assert_eq!(errs[0].hint.as_deref(), Some("write true without quotes"));
    assert!(
        msgs.iter()
            .any(|m| m.contains("portMappings[0].containerPort"))
    );
    assert!(msgs.iter().any(|m| m.contains("command[1]")));
    assert!(msgs.iter().any(|m| m.contains("dockerLabels.k")));
    assert!(
        msgs.iter()
            .any(|m| m.contains("containerDefinitions[0].environment: expected a list"))
    );
    assert!(msgs.iter().any(|m| m.contains("wrong type for volumes")));
    let input = loaded.input.unwrap();
    let c = &input.container_definitions()[0];
    assert_eq!(c.port_mappings()[1].container_port(), Some(81));
    assert_eq!(c.command(), ["a"]);
    assert_eq!(input.memory(), Some("512"));
}

#[test]
fn out_of_range_integer_is_a_type_error() {
    let text = r#"{"family": "f", "containerDefinitions": [{"name": "a", "image": "x", "memory": 99999999999}]}"#;
    let loaded = task_definition(&doc(text));
    let errs = errors(&loaded.diagnostics);
    assert_eq!(errs.len(), 1, "{errs:#?}");
    assert!(
        errs[0]
            .message
            .contains("an integer from -2147483648 to 2147483647")
    );
    assert!(loaded.input.is_some());
}

#[test]
fn integral_floats_are_accepted_as_integers() {
    let text = r#"{"family": "f", "containerDefinitions": [{"name": "a", "image": "x", "memory": 512.0}]}"#;
    let loaded = task_definition(&doc(text));
    assert!(loaded.diagnostics.is_empty(), "{:#?}", loaded.diagnostics);
    assert_eq!(
        loaded.input.unwrap().container_definitions()[0].memory(),
        Some(512)
    );
}

#[test]
fn root_that_is_not_an_object_is_an_error() {
    let loaded = task_definition(&doc("[1, 2]"));
    assert!(loaded.input.is_none());
    assert_eq!(loaded.diagnostics.len(), 1);
    assert!(
        loaded.diagnostics[0]
            .message
            .contains("must be a JSON object, not a list")
    );
    assert!(loaded.into_result().is_err());
}

#[test]
fn describe_output_is_unwrapped_and_read_only_fields_noted() {
    let text = r#"{
  "taskDefinition": {
    "taskDefinitionArn": "arn:aws:ecs:eu-west-1:123456789012:task-definition/web:7",
    "family": "web",
    "revision": 7,
    "status": "ACTIVE",
    "containerDefinitions": [{"name": "a", "image": "x", "imag": "y"}],
    "requiresAttributes": [{"name": "com.amazonaws.ecs.capability.ecr-auth"}],
    "compatibilities": ["EC2", "FARGATE"],
    "registeredAt": "2026-01-02T03:04:05.000Z",
    "registeredBy": "arn:aws:iam::123456789012:user/me"
  },
  "tags": [{"key": "env", "value": "prod"}],
  "tagz": []
}"#;
    let loaded = task_definition(&doc(text));
    let notes: Vec<&Diagnostic> = loaded
        .diagnostics
        .iter()
        .filter(|d| d.severity == Severity::Note)
        .collect();
    assert_eq!(notes.len(), 1);
    assert_eq!(
        notes[0].message,
        "ignored read-only fields from describe-task-definition output: taskDefinitionArn, revision, status, requiresAttributes, compatibilities, registeredAt, registeredBy"
    );
    assert_eq!(line_col(notes[0]), pos(text, "\"taskDefinitionArn\""));
    let errs = errors(&loaded.diagnostics);
    assert_eq!(errs.len(), 2, "{errs:#?}");
    // In file order; the nested one located inside the wrapper.
    assert_eq!(line_col(errs[0]), pos(text, "\"imag\""));
    assert_eq!(line_col(errs[1]), pos(text, "\"tagz\""));
    assert_eq!(errs[1].hint.as_deref(), Some("did you mean \"tags\"?"));
    // Container cpu is a plain integer in the SDK: it comes out as ECS's default, 0.
    assert_eq!(
        loaded.json,
        json!({
            "family": "web",
            "containerDefinitions": [{"name": "a", "image": "x", "cpu": 0}],
            "tags": [{"key": "env", "value": "prod"}]
        })
    );
    assert_eq!(loaded.doc_pointer("/tags/0"), "/tags/0");
    assert_eq!(loaded.doc_pointer("/family"), "/taskDefinition/family");
}

#[test]
fn wrapped_tags_beside_and_inside_conflict() {
    let text = r#"{"taskDefinition": {"family": "f", "containerDefinitions": [], "tags": []}, "tags": []}"#;
    let loaded = task_definition(&doc(text));
    let errs = errors(&loaded.diagnostics);
    assert_eq!(errs.len(), 1);
    assert!(errs[0].message.contains("both inside and beside"));
}

#[test]
fn wrong_type_inside_wrapper_is_located_in_the_wrapper() {
    let text = "{\"taskDefinition\": {\"family\": 5, \"containerDefinitions\": []}}";
    let loaded = task_definition(&doc(text));
    let errs = errors(&loaded.diagnostics);
    assert_eq!(errs.len(), 1);
    assert_eq!(line_col(errs[0]), pos(text, "5"));
}

#[test]
fn service_describe_output_fields_are_stripped_with_a_note() {
    let text = r#"{
  "serviceArn": "arn:aws:ecs:eu-west-1:123456789012:service/prod/web",
  "serviceName": "web",
  "clusterArn": "arn:aws:ecs:eu-west-1:123456789012:cluster/prod",
  "status": "ACTIVE",
  "desiredCount": 2,
  "runningCount": 2,
  "pendingCount": 0,
  "launchType": "FARGATE",
  "deployments": [{"id": "ecs-svc/1", "status": "PRIMARY"}],
  "events": [{"id": "e1", "message": "has reached a steady state."}],
  "createdAt": 1767323045.5,
  "createdBy": "arn:aws:iam::123456789012:role/deployer",
  "roleArn": "arn:aws:iam::123456789012:role/aws-service-role/ecs.amazonaws.com/AWSServiceRoleForECS",
  "propagateTags": "NONE",
  "desiredCuont": 1
}"#;
    let loaded = service_definition(&doc(text));
    let notes: Vec<&Diagnostic> = loaded
        .diagnostics
        .iter()
        .filter(|d| d.severity == Severity::Note)
        .collect();
    assert_eq!(notes.len(), 1);
    assert_eq!(
        notes[0].message,
        "ignored read-only fields from describe-services output: serviceArn, clusterArn, status, runningCount, pendingCount, deployments, events, createdAt, createdBy, roleArn"
    );
    let errs = errors(&loaded.diagnostics);
    assert_eq!(errs.len(), 1, "{errs:#?}");
    assert_eq!(
        errs[0].hint.as_deref(),
        Some("did you mean \"desiredCount\"?")
    );
    assert_eq!(
        loaded.json,
        json!({"serviceName": "web", "desiredCount": 2, "launchType": "FARGATE", "propagateTags": "NONE"})
    );
}

#[test]
fn missing_required_members_are_not_invented_in_json() {
    let loaded = service_definition(&doc("{\"desiredCount\": 1}"));
    assert_eq!(loaded.json, json!({"desiredCount": 1}));
    let loaded = task_definition(&doc("{}"));
    assert_eq!(loaded.json, json!({}));
    assert!(loaded.input.is_some());
}

#[test]
fn into_result_separates_errors_from_notes() {
    let ok = task_definition(&doc(FULL_TASK)).into_result();
    assert!(ok.is_ok());
    let bad = task_definition(&doc("{\"famliy\": \"x\"}")).into_result();
    let err = bad.err().unwrap();
    assert_eq!(err.diagnostics.len(), 1);
}

#[test]
fn round_trip_check_reports_keys_the_codec_lost() {
    let input = json!({"a": {"b": 1, "c": null}, "l": [{"x": 1}]});
    let output = json!({"a": {}, "l": [{}]});
    let lost = codec::lost_in_round_trip(&input, &output, &[]);
    assert_eq!(
        lost,
        vec![
            codec::Finding::Dropped {
                pointer: "/a/b".into()
            },
            codec::Finding::Dropped {
                pointer: "/l/0/x".into()
            },
        ]
    );
    let covered = vec![codec::Finding::UnknownKey {
        pointer: "/a".into(),
        key: "b".into(),
        known: vec![],
    }];
    assert_eq!(
        codec::lost_in_round_trip(&input, &output, &covered).len(),
        1
    );
}

#[test]
fn yaml_definitions_decode_too() {
    let text = "family: web\ncontainerDefinitions:\n  - name: a\n    image: x\n    cpu: 256\n";
    let loaded = task_definition(&doc_named("t.yml", text));
    assert!(loaded.diagnostics.is_empty(), "{:#?}", loaded.diagnostics);
    assert_eq!(loaded.input.unwrap().container_definitions()[0].cpu(), 256);
}

#[test]
fn deep_nesting_does_not_panic() {
    let mut v = json!(1);
    for _ in 0..120 {
        v = json!({ "x": v });
    }
    let text = serde_json::to_string(
        &json!({"family": "f", "containerDefinitions": [], "proxyConfiguration": v}),
    )
    .unwrap();
    let loaded = task_definition(&doc(&text));
    assert!(loaded.has_errors());
}

#[test]
fn values_of_every_kind_where_an_object_is_expected() {
    for bad in ["null", "1", "\"s\"", "true", "[]"] {
        let text = format!("{{\"family\": \"f\", \"containerDefinitions\": [{bad}]}}");
        let loaded = task_definition(&doc(&text));
        if bad == "null" {
            // A null list element is rejected too (the API has no sparse lists here).
            assert!(loaded.has_errors(), "{bad}");
        } else {
            let errs = errors(&loaded.diagnostics);
            assert_eq!(errs.len(), 1, "{bad}: {errs:#?}");
            assert!(errs[0].message.contains("expected an object"), "{bad}");
        }
        let _: Value = loaded.json;
    }
}
