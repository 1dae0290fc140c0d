//! The ELBv2 model through the real SDK client over HTTP ([`crate::test_server`]).

use aws_sdk_elasticloadbalancingv2::Client;
use aws_sdk_elasticloadbalancingv2::config::retry::RetryConfig;
use aws_sdk_elasticloadbalancingv2::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_elasticloadbalancingv2::error::ProvideErrorMetadata;
use aws_sdk_elasticloadbalancingv2::types::{
    Action as SdkAction, ActionTypeEnum, ForwardActionConfig, TargetDescription, TargetGroupTuple,
    TargetHealthReasonEnum, TargetHealthStateEnum,
};

use crate::ecr::Ecr;
use crate::elbv2::*;
use crate::test_server;

fn client(url: &str) -> Client {
    let conf = aws_sdk_elasticloadbalancingv2::config::Builder::new()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(url)
        .credentials_provider(Credentials::new("a", "b", None, None, "t"))
        .retry_config(RetryConfig::disabled())
        .build();
    Client::from_conf(conf)
}

fn forward(weights: &[(&str, i32)]) -> SdkAction {
    let mut config = ForwardActionConfig::builder();
    for (arn, weight) in weights {
        config = config.target_groups(
            TargetGroupTuple::builder()
                .target_group_arn(*arn)
                .weight(*weight)
                .build(),
        );
    }
    SdkAction::builder()
        .r#type(ActionTypeEnum::Forward)
        .forward_config(config.build())
        .build()
}

#[tokio::test]
async fn the_sdk_reads_and_writes_through_the_emulator() {
    let mut elb = Elbv2::new("us-east-1", "123456789012");
    let lb = elb.create_load_balancer("web");
    let blue = elb.create_target_group("blue", 8080, "HTTP", "ip");
    let green = elb.create_target_group("green", 8080, "HTTP", "ip");
    let listener = elb
        .create_listener(&lb, 80, "HTTP", &[(blue.clone(), 100), (green.clone(), 0)])
        .unwrap();
    let rule = elb
        .create_rule(&listener, 10, "/api/*", &[(blue.clone(), 1)])
        .unwrap();
    elb.register_target(&blue, "10.0.0.1", 8080, 0.0, Some(0.0));
    elb.register_target(&blue, "10.0.0.2", 8080, 0.0, None);
    let state = test_server::sandbox(elb, Ecr::default());
    let url = test_server::start(state.clone()).await;
    let client = client(&url);

    // DescribeTargetGroups, by name and unknown.
    let out = client
        .describe_target_groups()
        .names("blue")
        .send()
        .await
        .unwrap();
    let tg = &out.target_groups()[0];
    assert_eq!(tg.target_group_arn(), Some(blue.as_str()));
    assert_eq!(tg.target_group_name(), Some("blue"));
    assert_eq!(tg.port(), Some(8080));
    assert_eq!(tg.health_check_interval_seconds(), Some(30));
    assert_eq!(tg.healthy_threshold_count(), Some(5));
    assert_eq!(tg.load_balancer_arns(), std::slice::from_ref(&lb));
    assert_eq!(tg.matcher().and_then(|m| m.http_code()), Some("200"));
    let err = client
        .describe_target_groups()
        .names("missing")
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(err.is_target_group_not_found_exception(), "{err:?}");
    assert!(err.message().unwrap_or_default().contains("missing"));

    // DescribeTargetHealth at t=150: one healthy, one unhealthy.
    state.lock().unwrap().now = 150.0;
    let health = client
        .describe_target_health()
        .target_group_arn(&blue)
        .send()
        .await
        .unwrap();
    let rows = health.target_health_descriptions();
    assert_eq!(rows.len(), 2);
    let first = &rows[0];
    assert_eq!(first.target().and_then(|t| t.id()), Some("10.0.0.1"));
    assert_eq!(first.target().and_then(|t| t.port()), Some(8080));
    assert_eq!(first.health_check_port(), Some("8080"));
    assert_eq!(
        first.target_health().and_then(|h| h.state()),
        Some(&TargetHealthStateEnum::Healthy)
    );
    let second = rows[1].target_health().unwrap();
    assert_eq!(second.state(), Some(&TargetHealthStateEnum::Unhealthy));
    assert_eq!(
        second.reason(),
        Some(&TargetHealthReasonEnum::FailedHealthChecks)
    );
    assert_eq!(second.description(), Some("Health checks failed"));

    // RegisterTargets through the SDK: initial, with its reason.
    client
        .register_targets()
        .target_group_arn(&blue)
        .targets(TargetDescription::builder().id("10.0.0.3").build())
        .send()
        .await
        .unwrap();
    let health = client
        .describe_target_health()
        .target_group_arn(&blue)
        .targets(TargetDescription::builder().id("10.0.0.3").build())
        .send()
        .await
        .unwrap();
    let row = health.target_health_descriptions()[0]
        .target_health()
        .unwrap();
    assert_eq!(row.state(), Some(&TargetHealthStateEnum::Initial));
    assert_eq!(
        row.reason(),
        Some(&TargetHealthReasonEnum::RegistrationInProgress)
    );

    // DescribeRules: the path rule, then the default rule.
    let rules = client
        .describe_rules()
        .listener_arn(&listener)
        .send()
        .await
        .unwrap();
    let rules = rules.rules();
    assert_eq!(rules.len(), 2);
    assert_eq!(rules[0].rule_arn(), Some(rule.as_str()));
    assert_eq!(rules[0].priority(), Some("10"));
    assert_eq!(rules[0].is_default(), Some(false));
    let condition = &rules[0].conditions()[0];
    assert_eq!(condition.field(), Some("path-pattern"));
    assert_eq!(
        condition.path_pattern_config().map(|c| c.values()),
        Some(&["/api/*".to_string()][..])
    );
    assert_eq!(rules[1].priority(), Some("default"));
    assert_eq!(rules[1].is_default(), Some(true));
    let default_weights: Vec<(String, Option<i32>)> = rules[1].actions()[0]
        .forward_config()
        .unwrap()
        .target_groups()
        .iter()
        .map(|t| (t.target_group_arn().unwrap().to_string(), t.weight()))
        .collect();
    assert_eq!(
        default_weights,
        vec![(blue.clone(), Some(100)), (green.clone(), Some(0))]
    );

    // ModifyRule: new weights, echoed back and stored.
    let modified = client
        .modify_rule()
        .rule_arn(&rule)
        .actions(forward(&[(&blue, 20), (&green, 80)]))
        .send()
        .await
        .unwrap();
    let tuples = modified.rules()[0].actions()[0]
        .forward_config()
        .unwrap()
        .target_groups();
    assert_eq!(tuples[1].target_group_arn(), Some(green.as_str()));
    assert_eq!(tuples[1].weight(), Some(80));
    assert_eq!(
        state.lock().unwrap().elbv2.forward_weights(&rule),
        Some(vec![(blue.clone(), 20), (green.clone(), 80)])
    );
    let err = client
        .modify_rule()
        .rule_arn(&rule)
        .actions(forward(&[(&blue, 1000)]))
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert_eq!(err.code(), Some("ValidationError"));
    let err = client
        .modify_rule()
        .rule_arn(format!("{rule}0"))
        .actions(forward(&[(&blue, 1)]))
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(err.is_rule_not_found_exception(), "{err:?}");

    // ModifyListener, DescribeListeners, DescribeLoadBalancers, attributes.
    client
        .modify_listener()
        .listener_arn(&listener)
        .default_actions(forward(&[(&green, 1)]))
        .send()
        .await
        .unwrap();
    let listeners = client
        .describe_listeners()
        .load_balancer_arn(&lb)
        .send()
        .await
        .unwrap();
    let action = &listeners.listeners()[0].default_actions()[0];
    assert_eq!(action.target_group_arn(), Some(green.as_str()));
    let lbs = client.describe_load_balancers().send().await.unwrap();
    let described = &lbs.load_balancers()[0];
    assert_eq!(described.load_balancer_name(), Some("web"));
    assert!(described.created_time().is_some());
    assert_eq!(
        described.state().and_then(|s| s.code()).map(|c| c.as_str()),
        Some("active")
    );
    let attrs = client
        .describe_target_group_attributes()
        .target_group_arn(&blue)
        .send()
        .await
        .unwrap();
    assert!(
        attrs
            .attributes()
            .iter()
            .any(|a| { a.key() == Some(DEREGISTRATION_DELAY) && a.value() == Some("300") })
    );
    let err = client
        .describe_listeners()
        .listener_arns("arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/x/1/2")
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(err.is_listener_not_found_exception(), "{err:?}");
}
