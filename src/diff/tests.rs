//! Each default ECS fills in compares equal to leaving it out; real changes are found.

use serde_json::{Value, json};

use super::*;

fn td_equal(local: Value, live: Value) {
    let (l, r) = (
        task_definition_for_compare(&local),
        task_definition_for_compare(&live),
    );
    assert_eq!(changes(&r, &l), vec![], "local {l:#}\nlive {r:#}");
    assert!(!task_definition_needs_new_revision(&local, &live));
}

fn td_changes(local: Value, live: Value) -> Vec<Change> {
    let c = changes(
        &task_definition_for_compare(&live),
        &task_definition_for_compare(&local),
    );
    assert_eq!(
        task_definition_needs_new_revision(&local, &live),
        !c.is_empty()
    );
    c
}

/// A Fargate task definition as a file would say it.
fn local_td() -> Value {
    json!({
        "family": "web",
        "networkMode": "awsvpc",
        "requiresCompatibilities": ["FARGATE"],
        "cpu": "256",
        "memory": "512",
        "executionRoleArn": "arn:aws:iam::1:role/exec",
        "containerDefinitions": [{
            "name": "app",
            "image": "repo/app:1.0",
            "portMappings": [{"containerPort": 8080}],
            "environment": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
            "secrets": [{"name": "S1", "valueFrom": "arn:s1"}, {"name": "S2", "valueFrom": "arn:s2"}]
        }],
        "tags": [{"key": "team", "value": "x"}, {"key": "app", "value": "web"}]
    })
}

fn with(mut v: Value, pointer: &str, new: Value) -> Value {
    let (parent, key) = pointer.rsplit_once('/').unwrap();
    let target = v.pointer_mut(parent).unwrap();
    match target {
        Value::Object(m) => {
            m.insert(key.to_string(), new);
        }
        Value::Array(a) => a[key.parse::<usize>().unwrap()] = new,
        _ => panic!("not a container at {parent}"),
    }
    v
}

// ------------------------------------------------------------ task definition defaults

#[test]
fn container_cpu_zero_is_no_cpu() {
    td_equal(
        local_td(),
        with(local_td(), "/containerDefinitions/0/cpu", json!(0)),
    );
}

#[test]
fn host_port_equal_to_container_port_under_awsvpc() {
    td_equal(
        local_td(),
        with(
            local_td(),
            "/containerDefinitions/0/portMappings/0",
            json!({"containerPort": 8080, "hostPort": 8080}),
        ),
    );
}

#[test]
fn a_different_host_port_under_awsvpc_is_a_change() {
    let c = td_changes(
        local_td(),
        with(
            local_td(),
            "/containerDefinitions/0/portMappings/0",
            json!({"containerPort": 8080, "hostPort": 9090}),
        ),
    );
    assert_eq!(c.len(), 1);
    assert_eq!(c[0].path, "/containerDefinitions/0/portMappings/0/hostPort");
}

#[test]
fn host_port_zero_under_bridge_is_dynamic() {
    let local = with(local_td(), "/networkMode", json!("bridge"));
    let live = with(
        local.clone(),
        "/containerDefinitions/0/portMappings/0",
        json!({"containerPort": 8080, "hostPort": 0}),
    );
    td_equal(local, live);
}

#[test]
fn protocol_tcp_is_the_default() {
    td_equal(
        local_td(),
        with(
            local_td(),
            "/containerDefinitions/0/portMappings/0",
            json!({"containerPort": 8080, "protocol": "tcp"}),
        ),
    );
    let c = td_changes(
        local_td(),
        with(
            local_td(),
            "/containerDefinitions/0/portMappings/0",
            json!({"containerPort": 8080, "protocol": "udp"}),
        ),
    );
    assert_eq!(c.len(), 1, "{c:?}");
}

#[test]
fn task_cpu_and_memory_units() {
    let local = with(
        with(local_td(), "/cpu", json!("0.25 vCPU")),
        "/memory",
        json!("1 GB"),
    );
    let live = with(
        with(local_td(), "/cpu", json!("256")),
        "/memory",
        json!("1024"),
    );
    td_equal(local.clone(), live);
    let bigger = with(local_td(), "/cpu", json!("1vcpu"));
    let c = td_changes(bigger, with(local_td(), "/cpu", json!("256")));
    assert_eq!(
        c,
        vec![Change {
            path: "/cpu".into(),
            before: Some(json!("256")),
            after: Some(json!("1024"))
        }]
    );
    // "0.5 GB" is 512 MiB.
    td_equal(
        with(local_td(), "/memory", json!("0.5 GB")),
        with(local_td(), "/memory", json!("512")),
    );
}

#[test]
fn essential_true_is_the_default() {
    td_equal(
        local_td(),
        with(local_td(), "/containerDefinitions/0/essential", json!(true)),
    );
    let c = td_changes(
        with(
            local_td(),
            "/containerDefinitions/0/essential",
            json!(false),
        ),
        local_td(),
    );
    assert_eq!(c.len(), 1);
}

#[test]
fn empty_lists_maps_and_nulls_are_nothing() {
    let mut live = local_td();
    let c = live.pointer_mut("/containerDefinitions/0").unwrap();
    c["mountPoints"] = json!([]);
    c["volumesFrom"] = json!([]);
    c["dockerLabels"] = json!({});
    c["command"] = Value::Null;
    live["volumes"] = json!([]);
    live["placementConstraints"] = json!([]);
    td_equal(local_td(), live);
}

#[test]
fn order_of_environment_secrets_tags_and_compatibilities_does_not_count() {
    let mut live = local_td();
    let c = live.pointer_mut("/containerDefinitions/0").unwrap();
    c["environment"] = json!([{"name": "B", "value": "2"}, {"name": "A", "value": "1"}]);
    c["secrets"] =
        json!([{"name": "S2", "valueFrom": "arn:s2"}, {"name": "S1", "valueFrom": "arn:s1"}]);
    live["tags"] = json!([{"key": "app", "value": "web"}, {"key": "team", "value": "x"}]);
    let local = with(
        local_td(),
        "/requiresCompatibilities",
        json!(["FARGATE", "EC2"]),
    );
    let live = with(live, "/requiresCompatibilities", json!(["EC2", "FARGATE"]));
    td_equal(local, live);
}

#[test]
fn ulimits_and_mount_points_compare_sorted() {
    let mut local = local_td();
    let c = local.pointer_mut("/containerDefinitions/0").unwrap();
    c["ulimits"] = json!([{"name": "nofile", "softLimit": 1, "hardLimit": 2},
                          {"name": "core", "softLimit": 0, "hardLimit": 0}]);
    c["mountPoints"] = json!([{"sourceVolume": "b", "containerPath": "/b"},
                              {"sourceVolume": "a", "containerPath": "/a", "readOnly": false}]);
    let mut live = local.clone();
    let c = live.pointer_mut("/containerDefinitions/0").unwrap();
    c["ulimits"] = json!([{"name": "core", "softLimit": 0, "hardLimit": 0},
                          {"name": "nofile", "softLimit": 1, "hardLimit": 2}]);
    c["mountPoints"] = json!([{"sourceVolume": "a", "containerPath": "/a"},
                              {"sourceVolume": "b", "containerPath": "/b", "readOnly": false}]);
    td_equal(local, live);
}

#[test]
fn health_check_defaults_and_false_flags() {
    let local = with(
        local_td(),
        "/containerDefinitions/0/healthCheck",
        json!({"command": ["CMD", "true"]}),
    );
    let mut live = with(
        local_td(),
        "/containerDefinitions/0/healthCheck",
        json!({"command": ["CMD", "true"], "interval": 30, "timeout": 5, "retries": 3}),
    );
    live["containerDefinitions"][0]["privileged"] = json!(false);
    live["enableFaultInjection"] = json!(false);
    td_equal(local.clone(), live);
    let slower = with(
        local_td(),
        "/containerDefinitions/0/healthCheck",
        json!({"command": ["CMD", "true"], "interval": 60}),
    );
    assert_eq!(td_changes(slower, local).len(), 1);
}

// ------------------------------------------------------------ real task definition changes

#[test]
fn an_image_tag_change_is_detected() {
    let c = td_changes(
        with(
            local_td(),
            "/containerDefinitions/0/image",
            json!("repo/app:1.1"),
        ),
        local_td(),
    );
    assert_eq!(
        c,
        vec![Change {
            path: "/containerDefinitions/0/image".into(),
            before: Some(json!("repo/app:1.0")),
            after: Some(json!("repo/app:1.1")),
        }]
    );
}

#[test]
fn a_container_cpu_change_is_detected() {
    let c = td_changes(
        with(local_td(), "/containerDefinitions/0/cpu", json!(128)),
        with(local_td(), "/containerDefinitions/0/cpu", json!(0)),
    );
    assert_eq!(c.len(), 1);
    assert_eq!(c[0].path, "/containerDefinitions/0/cpu");
    assert_eq!(c[0].before, None, "0 is no cpu");
}

#[test]
fn an_env_value_change_is_one_change_at_its_name() {
    let local = with(
        local_td(),
        "/containerDefinitions/0/environment/1",
        json!({"name": "B", "value": "3"}),
    );
    let c = td_changes(local, local_td());
    assert_eq!(
        c,
        vec![Change {
            path: "/containerDefinitions/0/environment/1/value".into(),
            before: Some(json!("2")),
            after: Some(json!("3")),
        }]
    );
}

#[test]
fn an_added_secret_is_one_addition() {
    let mut local = local_td();
    local["containerDefinitions"][0]["secrets"] = json!([
        {"name": "S0", "valueFrom": "arn:s0"},
        {"name": "S1", "valueFrom": "arn:s1"},
        {"name": "S2", "valueFrom": "arn:s2"}
    ]);
    let c = td_changes(local, local_td());
    assert_eq!(
        c,
        vec![Change {
            path: "/containerDefinitions/0/secrets/0".into(),
            before: None,
            after: Some(json!({"name": "S0", "valueFrom": "arn:s0"})),
        }]
    );
}

#[test]
fn a_removed_env_var_is_one_removal() {
    let mut local = local_td();
    local["containerDefinitions"][0]["environment"] = json!([{"name": "B", "value": "2"}]);
    let c = td_changes(local, local_td());
    assert_eq!(c.len(), 1, "{c:?}");
    assert_eq!(c[0].after, None);
    assert_eq!(c[0].before, Some(json!({"name": "A", "value": "1"})));
}

#[test]
fn the_model_output_of_a_file_equals_its_live_form() {
    // What `model` hands on for a file (cpu 0 filled in by the SDK type) against what
    // DescribeTaskDefinition returns for it.
    let input = crate::model::codec::decode(
        &local_td(),
        crate::aws::types::RegisterTaskDefinitionInput::deserialize,
    )
    .value
    .unwrap();
    let local = crate::model::task_definition_to_json(&input).unwrap();
    assert_eq!(local["containerDefinitions"][0]["cpu"], 0, "{local}");
    let mut live = local_td();
    let c = &mut live["containerDefinitions"][0];
    c["essential"] = json!(true);
    c["cpu"] = json!(0);
    c["portMappings"] = json!([{"containerPort": 8080, "hostPort": 8080, "protocol": "tcp"}]);
    c["mountPoints"] = json!([]);
    c["volumesFrom"] = json!([]);
    live["volumes"] = json!([]);
    live["placementConstraints"] = json!([]);
    td_equal(local, live);
}

// ------------------------------------------------------------ service

fn local_service() -> Value {
    json!({
        "launchType": "FARGATE",
        "networkConfiguration": {"awsvpcConfiguration": {
            "subnets": ["subnet-b", "subnet-a"], "securityGroups": ["sg-2", "sg-1"]
        }},
        "loadBalancers": [{"targetGroupArn": "arn:tg", "containerName": "app", "containerPort": 8080}],
        "tags": [{"key": "team", "value": "x"}]
    })
}

/// What DescribeServices returns for `local_service()` created with no desired count.
fn live_service() -> Value {
    json!({
        "serviceName": "web",
        "serviceArn": "arn:aws:ecs:us-east-1:1:service/prod/web",
        "clusterArn": "arn:aws:ecs:us-east-1:1:cluster/prod",
        "taskDefinition": "arn:aws:ecs:us-east-1:1:task-definition/web:3",
        "status": "ACTIVE",
        "desiredCount": 4, "runningCount": 4, "pendingCount": 0,
        "launchType": "FARGATE",
        "platformVersion": "LATEST",
        "platformFamily": "Linux",
        "schedulingStrategy": "REPLICA",
        "deploymentController": {"type": "ECS"},
        "deploymentConfiguration": {
            "maximumPercent": 200, "minimumHealthyPercent": 100,
            "deploymentCircuitBreaker": {"enable": false, "rollback": false},
            "strategy": "ROLLING", "bakeTimeInMinutes": 0
        },
        "networkConfiguration": {"awsvpcConfiguration": {
            "subnets": ["subnet-a", "subnet-b"], "securityGroups": ["sg-1", "sg-2"],
            "assignPublicIp": "DISABLED"
        }},
        "loadBalancers": [{"targetGroupArn": "arn:tg", "containerName": "app", "containerPort": 8080}],
        "roleArn": "arn:aws:iam::1:role/aws-service-role/ecs.amazonaws.com/AWSServiceRoleForECS",
        "enableECSManagedTags": false,
        "enableExecuteCommand": false,
        "propagateTags": "NONE",
        "healthCheckGracePeriodSeconds": 0,
        "tags": [{"key": "team", "value": "x"}, {"key": "aws:cloudformation:stack-name", "value": "s"}],
        "deployments": [{"id": "ecs-svc/1", "status": "PRIMARY"}],
        "events": [{"id": "e", "message": "steady"}],
        "createdAt": 1700000000
    })
}

fn svc_changes(local: &Value, live: &Value, ignore: &[&str]) -> Vec<Change> {
    let ignore: Vec<String> = ignore.iter().map(|s| s.to_string()).collect();
    let (l, r) = service_for_compare(local, live, &ignore);
    changes(&r, &l)
}

#[test]
fn a_live_service_with_every_default_equals_the_file() {
    assert_eq!(svc_changes(&local_service(), &live_service(), &[]), vec![]);
}

#[test]
fn each_service_default_alone_equals_its_absence() {
    let base = svc_changes(&local_service(), &live_service(), &[]);
    assert!(base.is_empty());
    // Setting the default explicitly in the file changes nothing either.
    let explicit = [
        ("/platformVersion", json!("LATEST")),
        ("/schedulingStrategy", json!("REPLICA")),
        (
            "/deploymentConfiguration",
            json!({"maximumPercent": 200, "minimumHealthyPercent": 100,
                   "deploymentCircuitBreaker": {"enable": false, "rollback": false},
                   "strategy": "ROLLING", "bakeTimeInMinutes": 0}),
        ),
        ("/enableExecuteCommand", json!(false)),
        ("/propagateTags", json!("NONE")),
        ("/deploymentController", json!({"type": "ECS"})),
    ];
    for (pointer, value) in explicit {
        let local = with(local_service(), pointer, value);
        let l = with(local.clone(), "/desiredCount", json!(1));
        let mut r = live_service();
        r["desiredCount"] = json!(1);
        assert_eq!(svc_changes(&l, &r, &[]), vec![], "{pointer}");
    }
    let public = with(
        local_service(),
        "/networkConfiguration/awsvpcConfiguration/assignPublicIp",
        json!("DISABLED"),
    );
    assert_eq!(svc_changes(&public, &live_service(), &[]), vec![]);
}

#[test]
fn daemon_defaults_are_100_and_0() {
    let local = json!({"schedulingStrategy": "DAEMON"});
    let live = json!({"schedulingStrategy": "DAEMON",
        "deploymentConfiguration": {"maximumPercent": 100, "minimumHealthyPercent": 0}});
    assert_eq!(svc_changes(&local, &live, &[]), vec![]);
    // 200/100 is not the daemon default.
    let live = json!({"schedulingStrategy": "DAEMON",
        "deploymentConfiguration": {"maximumPercent": 200, "minimumHealthyPercent": 100}});
    let c = svc_changes(&local, &live, &[]);
    assert_eq!(c.len(), 1, "{c:?}");
    assert_eq!(c[0].path, "/deploymentConfiguration");
    assert_eq!(
        c[0].before,
        Some(json!({"maximumPercent": 200, "minimumHealthyPercent": 100}))
    );
}

#[test]
fn desired_count_counts_only_when_the_file_sets_it() {
    let mut live = live_service();
    live["desiredCount"] = json!(9);
    assert_eq!(svc_changes(&local_service(), &live, &[]), vec![]);
    let local = with(local_service(), "/desiredCount", json!(2));
    let c = svc_changes(&local, &live, &[]);
    assert_eq!(
        c,
        vec![Change {
            path: "/desiredCount".into(),
            before: Some(json!(9)),
            after: Some(json!(2))
        }]
    );
}

#[test]
fn ignored_tag_keys_are_left_out() {
    let mut live = live_service();
    live["tags"] = json!([{"key": "team", "value": "x"}, {"key": "owner-tool", "value": "tf"}]);
    assert_eq!(svc_changes(&local_service(), &live, &[]).len(), 1);
    assert_eq!(
        svc_changes(&local_service(), &live, &["owner-tool"]),
        vec![]
    );
    // Ignoring one key does not hide a change of another.
    live["tags"] = json!([{"key": "team", "value": "y"}]);
    let c = svc_changes(&local_service(), &live, &["owner-tool"]);
    assert_eq!(c.len(), 1);
    assert_eq!(c[0].path, "/tags/0/value");
}

#[test]
fn subnet_and_security_group_order_does_not_count_but_membership_does() {
    let mut live = live_service();
    live["networkConfiguration"]["awsvpcConfiguration"]["subnets"] =
        json!(["subnet-a", "subnet-c"]);
    let c = svc_changes(&local_service(), &live, &[]);
    assert_eq!(c.len(), 1, "{c:?}");
    assert_eq!(
        c[0].path,
        "/networkConfiguration/awsvpcConfiguration/subnets/1"
    );
}

#[test]
fn a_real_service_change_is_detected() {
    let local = with(
        local_service(),
        "/deploymentConfiguration",
        json!({"deploymentCircuitBreaker": {"enable": true, "rollback": true}}),
    );
    let c = svc_changes(&local, &live_service(), &[]);
    let paths: Vec<&str> = c.iter().map(|c| c.path.as_str()).collect();
    assert_eq!(paths, vec!["/deploymentConfiguration"], "{c:?}");
    assert_eq!(
        c[0].after,
        Some(json!({"deploymentCircuitBreaker": {"enable": true, "rollback": true}}))
    );
}

#[test]
fn a_role_name_matches_its_arn() {
    let local = with(local_service(), "/role", json!("ecsServiceRole"));
    let mut live = live_service();
    live["roleArn"] = json!("arn:aws:iam::1:role/ecsServiceRole");
    assert_eq!(svc_changes(&local, &live, &[]), vec![]);
    live["roleArn"] = json!("arn:aws:iam::1:role/other");
    assert_eq!(svc_changes(&local, &live, &[]).len(), 1);
}

#[test]
fn service_connect_on_the_primary_deployment_is_compared() {
    let local = with(
        local_service(),
        "/serviceConnectConfiguration",
        json!({"enabled": true, "namespace": "ns"}),
    );
    let mut live = live_service();
    live["deployments"] = json!([
        {"status": "ACTIVE", "serviceConnectConfiguration": {"enabled": false}},
        {"status": "PRIMARY", "serviceConnectConfiguration": {"enabled": true, "namespace": "ns"}}
    ]);
    assert_eq!(svc_changes(&local, &live, &[]), vec![]);
}

// ------------------------------------------------------------ changes()

#[test]
fn changes_paths_are_escaped_pointers_in_stable_order() {
    let before = json!({"a/b": 1, "c": [1, 2], "d": {"x": true}});
    let after = json!({"a/b": 2, "c": [1], "d": {"x": true}, "e~": null});
    let c = changes(&before, &after);
    let paths: Vec<&str> = c.iter().map(|c| c.path.as_str()).collect();
    assert_eq!(paths, vec!["/a~1b", "/c/1", "/e~0"]);
    assert_eq!(c[1].after, None);
    assert_eq!(c[2].before, None);
}

#[test]
fn numbers_compare_by_value() {
    assert!(changes(&json!({"n": 200}), &json!({"n": 200.0})).is_empty());
    assert_eq!(changes(&json!({"n": 200}), &json!({"n": "200"})).len(), 1);
}
