//! The ELBv2 model's unit tests: seeding, health over time, draining, rules and weights,
//! the API's answers.

use super::*;
use crate::query::parse_form;

/// The real Rust SDK against [`Elbv2::handle`], over HTTP.
mod sdk;

/// A load balancer with a listener forwarding 100/0 to blue/green and a `/api/*` rule.
fn seeded() -> (Elbv2, String, String, String, String) {
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
    (elb, blue, green, listener, rule)
}

fn call(elb: &mut Elbv2, body: &str, now: f64) -> Result<String, ApiError> {
    let params = parse_form(body);
    let action = params.get("Action").cloned().unwrap_or_default();
    elb.handle(&action, &params, now, "req-1")
}

#[test]
fn arns_are_deterministic_and_seeding_is_idempotent() {
    let (mut a, blue, _, listener, rule) = seeded();
    let (b, blue_b, _, listener_b, rule_b) = seeded();
    assert_eq!(blue, blue_b);
    assert_eq!(listener, listener_b);
    assert_eq!(rule, rule_b);
    assert!(
        blue.starts_with("arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/blue/")
    );
    assert_eq!(blue.rsplit('/').next().unwrap().len(), 16);
    assert!(listener.contains(":listener/app/web/"));
    assert!(rule.contains(":listener-rule/app/web/"));
    assert_eq!(a.create_target_group("blue", 8080, "HTTP", "ip"), blue);
    let lb = a.find_load_balancer("web").unwrap();
    assert_eq!(a.create_load_balancer("web"), lb);
    assert_eq!(a.target_groups.len(), b.target_groups.len());
    assert_eq!(a.find_target_group("blue"), Some(blue.clone()));
    assert_eq!(a.find_target_group(&blue), Some(blue));
    assert_eq!(a.find_target_group("nope"), None);
}

#[test]
fn describe_target_groups_by_name_arn_and_load_balancer() {
    let (mut elb, blue, green, _, _) = seeded();
    let xml = call(
        &mut elb,
        "Action=DescribeTargetGroups&Version=2015-12-01&Names.member.1=green",
        0.0,
    )
    .unwrap();
    assert!(xml.starts_with("<DescribeTargetGroupsResponse xmlns=\"http://elasticloadbalancing.amazonaws.com/doc/2015-12-01/\"><DescribeTargetGroupsResult><TargetGroups><member>"));
    assert!(xml.contains(&format!("<TargetGroupArn>{green}</TargetGroupArn>")));
    assert!(!xml.contains(&format!("<TargetGroupArn>{blue}</TargetGroupArn>")));
    assert!(xml.contains("<HealthCheckIntervalSeconds>30</HealthCheckIntervalSeconds>"));
    assert!(xml.contains("<HealthyThresholdCount>5</HealthyThresholdCount>"));
    assert!(xml.contains("<TargetType>ip</TargetType>"));
    assert!(xml.ends_with(
        "<RequestId>req-1</RequestId></ResponseMetadata></DescribeTargetGroupsResponse>"
    ));

    let by_arn = call(
        &mut elb,
        &format!("Action=DescribeTargetGroups&TargetGroupArns.member.1={blue}"),
        0.0,
    )
    .unwrap();
    assert_eq!(by_arn.matches("<TargetGroupName>").count(), 1);
    assert!(by_arn.contains("<TargetGroupName>blue</TargetGroupName>"));

    let lb = elb.find_load_balancer("web").unwrap();
    let orphan = elb.create_target_group("orphan", 80, "HTTP", "ip");
    let by_lb = call(
        &mut elb,
        &format!("Action=DescribeTargetGroups&LoadBalancerArn={lb}"),
        0.0,
    )
    .unwrap();
    assert_eq!(by_lb.matches("<TargetGroupName>").count(), 2);
    assert!(!by_lb.contains(&orphan));
    assert!(by_lb.contains(&format!(
        "<LoadBalancerArns><member>{lb}</member></LoadBalancerArns>"
    )));

    let err = call(
        &mut elb,
        "Action=DescribeTargetGroups&Names.member.1=green&Names.member.2=missing",
        0.0,
    )
    .unwrap_err();
    assert_eq!(err.code, "TargetGroupNotFound");
    assert!(err.message.contains("missing"));
    let err = call(
        &mut elb,
        "Action=DescribeTargetGroups&LoadBalancerArn=arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/x/0",
        0.0,
    )
    .unwrap_err();
    assert_eq!(err.code, "LoadBalancerNotFound");
}

#[test]
fn healthy_after_interval_times_healthy_threshold() {
    let (mut elb, blue, _, _, _) = seeded();
    elb.register_target(&blue, "10.0.0.1", 8080, 100.0, Some(100.0));
    assert_eq!(
        elb.target_state(&blue, "10.0.0.1", 100.0),
        Some(TargetState::Initial)
    );
    assert_eq!(
        elb.target_state(&blue, "10.0.0.1", 249.9),
        Some(TargetState::Initial)
    );
    assert_eq!(
        elb.target_state(&blue, "10.0.0.1", 250.0),
        Some(TargetState::Healthy)
    );
    assert_eq!(elb.next_change_time(&blue, "10.0.0.1", 100.0), Some(130.0));
    assert_eq!(elb.target_state(&blue, "10.0.0.9", 250.0), None);
    assert_eq!(elb.target_state("arn:nope", "10.0.0.1", 250.0), None);
}

#[test]
fn never_healthy_becomes_unhealthy_after_unhealthy_threshold() {
    let (mut elb, blue, _, _, _) = seeded();
    elb.register_target(&blue, "10.0.0.2", 8080, 0.0, None);
    assert_eq!(
        elb.target_state(&blue, "10.0.0.2", 59.0),
        Some(TargetState::Initial)
    );
    assert_eq!(
        elb.target_state(&blue, "10.0.0.2", 60.0),
        Some(TargetState::Unhealthy)
    );
    assert_eq!(
        elb.target_state(&blue, "10.0.0.2", 6000.0),
        Some(TargetState::Unhealthy)
    );
    let xml = call(
        &mut elb,
        &format!("Action=DescribeTargetHealth&TargetGroupArn={blue}"),
        61.0,
    )
    .unwrap();
    assert!(xml.contains("<Target><Id>10.0.0.2</Id><Port>8080</Port></Target><HealthCheckPort>8080</HealthCheckPort><TargetHealth><State>unhealthy</State><Reason>Target.FailedHealthChecks</Reason>"));
}

#[test]
fn slow_app_is_unhealthy_then_healthy_and_a_crash_makes_it_unhealthy() {
    let (mut elb, blue, _, _, _) = seeded();
    // Checks at 30, 60, ...; the app answers from 100 (first passing check at 120).
    elb.register_target(&blue, "10.0.0.3", 8080, 0.0, Some(100.0));
    assert_eq!(
        elb.target_state(&blue, "10.0.0.3", 30.0),
        Some(TargetState::Initial)
    );
    assert_eq!(
        elb.target_state(&blue, "10.0.0.3", 60.0),
        Some(TargetState::Unhealthy)
    );
    assert_eq!(
        elb.target_state(&blue, "10.0.0.3", 239.0),
        Some(TargetState::Unhealthy)
    );
    assert_eq!(
        elb.target_state(&blue, "10.0.0.3", 240.0),
        Some(TargetState::Healthy)
    );
    // A quick start: one failed check is not conclusive.
    elb.register_target(&blue, "10.0.0.4", 8080, 0.0, Some(45.0));
    assert_eq!(
        elb.target_state(&blue, "10.0.0.4", 60.0),
        Some(TargetState::Initial)
    );
    assert_eq!(
        elb.target_state(&blue, "10.0.0.4", 180.0),
        Some(TargetState::Healthy)
    );
    // The app crashes at 310: two failing checks (330, 360) later it is unhealthy.
    assert!(elb.set_app_health(&blue, "10.0.0.4", Some(45.0), Some(310.0)));
    assert_eq!(
        elb.target_state(&blue, "10.0.0.4", 330.0),
        Some(TargetState::Healthy)
    );
    assert_eq!(
        elb.target_state(&blue, "10.0.0.4", 360.0),
        Some(TargetState::Unhealthy)
    );
    assert!(!elb.set_app_health(&blue, "10.9.9.9", None, None));
}

#[test]
fn health_check_settings_are_configurable() {
    let mut elb = Elbv2::new("us-east-1", "123456789012");
    let lb = elb.create_load_balancer("fast");
    let health = HealthCheck {
        interval_seconds: 10,
        timeout_seconds: 5,
        healthy_threshold: 2,
        unhealthy_threshold: 3,
        ..HealthCheck::default()
    };
    let tg = elb
        .create_target_group_with("quick", 80, "HTTP", "ip", health.clone())
        .unwrap();
    elb.create_listener(&lb, 80, "HTTP", &[(tg.clone(), 1)])
        .unwrap();
    elb.register_target(&tg, "10.0.1.1", 80, 0.0, Some(0.0));
    elb.register_target(&tg, "10.0.1.2", 80, 0.0, None);
    assert_eq!(
        elb.target_state(&tg, "10.0.1.1", 19.0),
        Some(TargetState::Initial)
    );
    assert_eq!(
        elb.target_state(&tg, "10.0.1.1", 20.0),
        Some(TargetState::Healthy)
    );
    assert_eq!(
        elb.target_state(&tg, "10.0.1.2", 29.0),
        Some(TargetState::Initial)
    );
    assert_eq!(
        elb.target_state(&tg, "10.0.1.2", 30.0),
        Some(TargetState::Unhealthy)
    );
    let bad = HealthCheck {
        timeout_seconds: 10,
        ..health
    };
    assert_eq!(
        elb.set_health_check(&tg, bad).unwrap_err().code,
        "ValidationError"
    );
    assert_eq!(elb.health_check(&tg).map(|h| h.interval_seconds), Some(10));

    // Through the API.
    let xml = call(
        &mut elb,
        "Action=CreateTargetGroup&Name=api-tg&Protocol=HTTP&Port=8080&TargetType=ip&HealthCheckIntervalSeconds=15&HealthyThresholdCount=3&UnhealthyThresholdCount=4&HealthCheckPath=%2Fhealth",
        0.0,
    )
    .unwrap();
    assert!(xml.contains("<HealthCheckIntervalSeconds>15</HealthCheckIntervalSeconds>"));
    assert!(xml.contains("<HealthyThresholdCount>3</HealthyThresholdCount>"));
    assert!(xml.contains("<UnhealthyThresholdCount>4</UnhealthyThresholdCount>"));
    assert!(xml.contains("<HealthCheckPath>/health</HealthCheckPath>"));
    let err = call(
        &mut elb,
        "Action=CreateTargetGroup&Name=api-tg&Protocol=HTTP&Port=9090&TargetType=ip",
        0.0,
    )
    .unwrap_err();
    assert_eq!(err.code, "DuplicateTargetGroupName");
    let err = call(
        &mut elb,
        "Action=CreateTargetGroup&Name=x&Port=80&HealthCheckIntervalSeconds=1",
        0.0,
    )
    .unwrap_err();
    assert_eq!(err.code, "ValidationError");
    let err = call(&mut elb, "Action=CreateTargetGroup&Name=-bad-&Port=80", 0.0).unwrap_err();
    assert_eq!(err.code, "ValidationError");
}

#[test]
fn draining_lasts_the_deregistration_delay_then_the_target_is_gone() {
    let (mut elb, blue, green, _, _) = seeded();
    elb.register_target(&blue, "10.0.0.5", 8080, 0.0, Some(0.0));
    elb.deregister_target(&blue, "10.0.0.5", 500.0);
    assert_eq!(
        elb.target_state(&blue, "10.0.0.5", 500.0),
        Some(TargetState::Draining)
    );
    assert_eq!(
        elb.target_state(&blue, "10.0.0.5", 799.0),
        Some(TargetState::Draining)
    );
    assert_eq!(elb.next_change_time(&blue, "10.0.0.5", 600.0), Some(800.0));
    assert_eq!(elb.deregistration_delay(&blue), Some(300.0));
    assert_eq!(
        elb.targets(&blue, 600.0),
        vec![("10.0.0.5".to_string(), 8080, TargetState::Draining)]
    );
    assert_eq!(elb.target_state(&blue, "10.0.0.5", 800.0), None);
    assert!(elb.targets(&blue, 800.0).is_empty());
    let xml = call(
        &mut elb,
        &format!("Action=DescribeTargetHealth&TargetGroupArn={blue}"),
        700.0,
    );
    let xml = xml.unwrap();
    assert!(
        xml.contains("<State>draining</State><Reason>Target.DeregistrationInProgress</Reason>")
    );
    let gone = call(
        &mut elb,
        &format!("Action=DescribeTargetHealth&TargetGroupArn={blue}"),
        801.0,
    )
    .unwrap();
    assert!(gone.contains("<TargetHealthDescriptions></TargetHealthDescriptions>"));

    // A shorter delay through ModifyTargetGroupAttributes.
    let xml = call(
        &mut elb,
        &format!("Action=ModifyTargetGroupAttributes&TargetGroupArn={green}&Attributes.member.1.Key=deregistration_delay.timeout_seconds&Attributes.member.1.Value=30"),
        0.0,
    )
    .unwrap();
    assert!(xml.contains(
        "<member><Key>deregistration_delay.timeout_seconds</Key><Value>30</Value></member>"
    ));
    elb.register_target(&green, "10.0.0.6", 8080, 900.0, Some(900.0));
    elb.deregister_target(&green, "10.0.0.6", 1000.0);
    assert_eq!(
        elb.target_state(&green, "10.0.0.6", 1029.0),
        Some(TargetState::Draining)
    );
    assert_eq!(elb.target_state(&green, "10.0.0.6", 1030.0), None);
    let err = call(
        &mut elb,
        &format!("Action=ModifyTargetGroupAttributes&TargetGroupArn={green}&Attributes.member.1.Key=deregistration_delay.timeout_seconds&Attributes.member.1.Value=4000"),
        0.0,
    )
    .unwrap_err();
    assert_eq!(err.code, "ValidationError");
    let attrs = call(
        &mut elb,
        &format!("Action=DescribeTargetGroupAttributes&TargetGroupArn={green}"),
        0.0,
    )
    .unwrap();
    assert!(attrs.contains("<Key>deregistration_delay.timeout_seconds</Key><Value>30</Value>"));
}

#[test]
fn targets_of_an_unattached_group_are_unused() {
    let (mut elb, _, _, _, _) = seeded();
    let orphan = elb.create_target_group("orphan", 80, "HTTP", "ip");
    elb.register_target(&orphan, "10.0.2.1", 80, 0.0, Some(0.0));
    assert_eq!(
        elb.target_state(&orphan, "10.0.2.1", 1000.0),
        Some(TargetState::Unused)
    );
    // Deregistration from an unused group is immediate.
    elb.deregister_target(&orphan, "10.0.2.1", 1000.0);
    assert_eq!(elb.target_state(&orphan, "10.0.2.1", 1000.0), None);
}

#[test]
fn describe_target_health_for_named_targets_and_api_registration() {
    let (mut elb, blue, _, _, _) = seeded();
    call(
        &mut elb,
        &format!("Action=RegisterTargets&TargetGroupArn={blue}&Targets.member.1.Id=10.0.3.1&Targets.member.1.Port=8080&Targets.member.2.Id=10.0.3.2"),
        0.0,
    )
    .unwrap();
    let xml = call(
        &mut elb,
        &format!("Action=DescribeTargetHealth&TargetGroupArn={blue}&Targets.member.1.Id=10.0.3.2&Targets.member.2.Id=10.0.3.3&Targets.member.2.Port=8080"),
        10.0,
    )
    .unwrap();
    assert!(xml.contains("<Id>10.0.3.2</Id><Port>8080</Port></Target><HealthCheckPort>8080</HealthCheckPort><TargetHealth><State>initial</State><Reason>Elb.RegistrationInProgress</Reason>"));
    assert!(xml.contains("<Id>10.0.3.3</Id><Port>8080</Port></Target><HealthCheckPort>8080</HealthCheckPort><TargetHealth><State>unused</State><Reason>Target.NotRegistered</Reason>"));
    assert!(!xml.contains("10.0.3.1"));
    let healthy = call(
        &mut elb,
        &format!("Action=DescribeTargetHealth&TargetGroupArn={blue}"),
        150.0,
    )
    .unwrap();
    assert_eq!(healthy.matches("<State>healthy</State>").count(), 2);
    assert!(!healthy.contains("<Reason>"));

    call(
        &mut elb,
        &format!("Action=DeregisterTargets&TargetGroupArn={blue}&Targets.member.1.Id=10.0.3.1"),
        200.0,
    )
    .unwrap();
    assert_eq!(
        elb.target_state(&blue, "10.0.3.1", 201.0),
        Some(TargetState::Draining)
    );
    let err = call(
        &mut elb,
        &format!("Action=DeregisterTargets&TargetGroupArn={blue}&Targets.member.1.Id=10.0.3.9"),
        200.0,
    )
    .unwrap_err();
    assert_eq!(err.code, "InvalidTarget");
    let err = call(
        &mut elb,
        &format!("Action=RegisterTargets&TargetGroupArn={blue}&Targets.member.1.Id=not-an-ip"),
        200.0,
    )
    .unwrap_err();
    assert_eq!(err.code, "InvalidTarget");
    let err = call(&mut elb, "Action=DescribeTargetHealth", 0.0).unwrap_err();
    assert_eq!(err.code, "ValidationError");
    assert!(err.message.contains("TargetGroupArn"));
}

#[test]
fn describe_rules_lists_priorities_then_the_default_rule() {
    let (mut elb, blue, green, listener, rule) = seeded();
    let xml = call(
        &mut elb,
        &format!("Action=DescribeRules&ListenerArn={listener}"),
        0.0,
    )
    .unwrap();
    let first = xml
        .find(&format!("<RuleArn>{rule}</RuleArn><Priority>10</Priority>"))
        .unwrap();
    let default = xml.find("<Priority>default</Priority>").unwrap();
    assert!(first < default);
    assert!(xml.contains("<Conditions><member><Field>path-pattern</Field><Values><member>/api/*</member></Values><PathPatternConfig><Values><member>/api/*</member></Values></PathPatternConfig></member></Conditions>"));
    assert!(xml.contains("<IsDefault>true</IsDefault>"));
    assert!(xml.contains("<IsDefault>false</IsDefault>"));
    assert!(xml.contains(&format!("<ForwardConfig><TargetGroups><member><TargetGroupArn>{blue}</TargetGroupArn><Weight>100</Weight></member><member><TargetGroupArn>{green}</TargetGroupArn><Weight>0</Weight></member></TargetGroups>")));
    // A single-group forward also names the group at the action level.
    assert!(xml.contains(&format!(
        "<Type>forward</Type><TargetGroupArn>{blue}</TargetGroupArn><Order>1</Order>"
    )));

    let err = call(&mut elb, "Action=DescribeRules", 0.0).unwrap_err();
    assert_eq!(err.code, "ValidationError");
    let err = call(
        &mut elb,
        &format!("Action=DescribeRules&ListenerArn={listener}x"),
        0.0,
    )
    .unwrap_err();
    assert_eq!(err.code, "ListenerNotFound");
    let err = call(
        &mut elb,
        &format!("Action=DescribeRules&RuleArns.member.1={rule}x"),
        0.0,
    )
    .unwrap_err();
    assert_eq!(err.code, "RuleNotFound");
}

#[test]
fn modify_rule_replaces_weights_and_validates() {
    let (mut elb, blue, green, listener, rule) = seeded();
    let body = |arn: &str, w1: i32, w2: &str| {
        format!(
            "Action=ModifyRule&RuleArn={arn}&Actions.member.1.Type=forward\
             &Actions.member.1.ForwardConfig.TargetGroups.member.1.TargetGroupArn={blue}\
             &Actions.member.1.ForwardConfig.TargetGroups.member.1.Weight={w1}\
             &Actions.member.1.ForwardConfig.TargetGroups.member.2.TargetGroupArn={green}\
             &Actions.member.1.ForwardConfig.TargetGroups.member.2.Weight={w2}"
        )
    };
    let xml = call(&mut elb, &body(&rule, 90, "10"), 0.0).unwrap();
    assert!(xml.contains(&format!("<Rules><member><RuleArn>{rule}</RuleArn>")));
    assert!(xml.contains("<Weight>90</Weight>"));
    assert_eq!(
        elb.forward_weights(&rule),
        Some(vec![(blue.clone(), 90), (green.clone(), 10)])
    );
    // The rule's condition is kept when Conditions are not sent.
    assert!(xml.contains("/api/*"));

    let err = call(&mut elb, &body(&rule, 1000, "0"), 0.0).unwrap_err();
    assert_eq!(err.code, "ValidationError");
    assert!(err.message.contains("999"));
    let err = call(&mut elb, &body(&rule, -1, "0"), 0.0).unwrap_err();
    assert_eq!(err.code, "ValidationError");
    let err = call(&mut elb, &body(&rule, 1, "x"), 0.0).unwrap_err();
    assert_eq!(err.code, "ValidationError");
    assert_eq!(
        elb.forward_weights(&rule),
        Some(vec![(blue.clone(), 90), (green.clone(), 10)])
    );
    let no_conditions = format!("{}&Conditions=", body(&rule, 1, "1"));
    assert_eq!(
        call(&mut elb, &no_conditions, 0.0).unwrap_err().code,
        "ValidationError"
    );
    let err = call(&mut elb, &body(&format!("{rule}0"), 1, "1"), 0.0).unwrap_err();
    assert_eq!(err.code, "RuleNotFound");
    let unknown_tg = format!(
        "Action=ModifyRule&RuleArn={rule}&Actions.member.1.Type=forward&Actions.member.1.TargetGroupArn={blue}x"
    );
    assert_eq!(
        call(&mut elb, &unknown_tg, 0.0).unwrap_err().code,
        "TargetGroupNotFound"
    );

    // The default rule's actions are the listener's default actions.
    let default_rule = elb.listener(&listener).unwrap().default_rule_arn.clone();
    call(&mut elb, &body(&default_rule, 0, "100"), 0.0).unwrap();
    assert_eq!(
        elb.forward_weights(&listener),
        Some(vec![(blue.clone(), 0), (green.clone(), 100)])
    );
    assert_eq!(
        elb.forward_weights(&default_rule),
        elb.forward_weights(&listener)
    );
    let with_condition = format!(
        "{}&Conditions.member.1.Field=path-pattern&Conditions.member.1.Values.member.1=/x",
        body(&default_rule, 1, "1")
    );
    assert_eq!(
        call(&mut elb, &with_condition, 0.0).unwrap_err().code,
        "OperationNotPermitted"
    );
}

#[test]
fn set_forward_weights_and_modify_listener() {
    let (mut elb, blue, green, listener, rule) = seeded();
    elb.set_forward_weights(&listener, &[(blue.clone(), 50), (green.clone(), 50)])
        .unwrap();
    assert_eq!(
        elb.forward_weights(&listener),
        Some(vec![(blue.clone(), 50), (green.clone(), 50)])
    );
    assert_eq!(
        elb.set_forward_weights(&rule, &[(blue.clone(), 1000)])
            .unwrap_err()
            .code,
        "ValidationError"
    );
    assert_eq!(
        elb.set_forward_weights(&format!("{rule}1"), &[(blue.clone(), 1)])
            .unwrap_err()
            .code,
        "RuleNotFound"
    );
    assert_eq!(
        elb.set_forward_weights(&format!("{listener}1"), &[(blue.clone(), 1)])
            .unwrap_err()
            .code,
        "ListenerNotFound"
    );
    assert_eq!(
        elb.set_forward_weights(&listener, &[(blue.clone(), 1), (blue.clone(), 2)])
            .unwrap_err()
            .code,
        "ValidationError"
    );
    assert_eq!(elb.forward_weights("arn:nothing"), None);

    let xml = call(
        &mut elb,
        &format!("Action=ModifyListener&ListenerArn={listener}&DefaultActions.member.1.Type=forward&DefaultActions.member.1.TargetGroupArn={green}"),
        0.0,
    )
    .unwrap();
    assert!(xml.starts_with("<ModifyListenerResponse"));
    assert!(xml.contains(&format!(
        "<DefaultActions><member><Type>forward</Type><TargetGroupArn>{green}</TargetGroupArn>"
    )));
    assert_eq!(
        elb.forward_weights(&listener),
        Some(vec![(green.clone(), 1)])
    );
    let fixed = call(
        &mut elb,
        &format!("Action=ModifyListener&ListenerArn={listener}&DefaultActions.member.1.Type=fixed-response&DefaultActions.member.1.FixedResponseConfig.StatusCode=503&DefaultActions.member.1.FixedResponseConfig.MessageBody=down+%26+out"),
        0.0,
    )
    .unwrap();
    assert!(fixed.contains("<FixedResponseConfig><MessageBody>down &amp; out</MessageBody><StatusCode>503</StatusCode></FixedResponseConfig>"));
    assert_eq!(elb.forward_weights(&listener), None);
    let err = call(
        &mut elb,
        &format!(
            "Action=ModifyListener&ListenerArn={listener}&DefaultActions.member.1.Type=redirect"
        ),
        0.0,
    )
    .unwrap_err();
    assert_eq!(err.code, "ValidationError");
    let err = call(&mut elb, "Action=ModifyListener&ListenerArn=arn:x", 0.0).unwrap_err();
    assert_eq!(err.code, "ListenerNotFound");
}

#[test]
fn create_everything_through_the_api() {
    let mut elb = Elbv2::new("eu-west-1", "111122223333");
    let xml = call(
        &mut elb,
        "Action=CreateLoadBalancer&Name=shop&Type=application",
        1.7e9,
    )
    .unwrap();
    assert!(xml.contains("<LoadBalancerArn>arn:aws:elasticloadbalancing:eu-west-1:111122223333:loadbalancer/app/shop/"));
    assert!(xml.contains("<CreatedTime>2023-11-14T22:13:20Z</CreatedTime>"));
    assert!(xml.contains("<State><Code>active</Code></State>"));
    let lb = elb.find_load_balancer("shop").unwrap();
    call(
        &mut elb,
        "Action=CreateTargetGroup&Name=shop-a&Port=80&TargetType=ip",
        0.0,
    )
    .unwrap();
    let tg = elb.find_target_group("shop-a").unwrap();
    let xml = call(
        &mut elb,
        &format!("Action=CreateListener&LoadBalancerArn={lb}&Port=443&Protocol=HTTPS&DefaultActions.member.1.Type=forward&DefaultActions.member.1.TargetGroupArn={tg}"),
        0.0,
    )
    .unwrap();
    assert!(xml.contains("<Port>443</Port><Protocol>HTTPS</Protocol>"));
    let listener = elb.listeners[0].arn.clone();
    let err = call(
        &mut elb,
        &format!("Action=CreateListener&LoadBalancerArn={lb}&Port=443&DefaultActions.member.1.Type=forward&DefaultActions.member.1.TargetGroupArn={tg}"),
        0.0,
    )
    .unwrap_err();
    assert_eq!(err.code, "DuplicateListener");
    let rule_body = format!(
        "Action=CreateRule&ListenerArn={listener}&Priority=5&Conditions.member.1.Field=host-header&Conditions.member.1.HostHeaderConfig.Values.member.1=shop.example.com&Actions.member.1.Type=forward&Actions.member.1.ForwardConfig.TargetGroups.member.1.TargetGroupArn={tg}&Actions.member.1.ForwardConfig.TargetGroups.member.1.Weight=3"
    );
    let xml = call(&mut elb, &rule_body, 0.0).unwrap();
    assert!(xml.contains(
        "<HostHeaderConfig><Values><member>shop.example.com</member></Values></HostHeaderConfig>"
    ));
    assert!(xml.contains("<Priority>5</Priority>"));
    assert_eq!(
        call(&mut elb, &rule_body, 0.0).unwrap_err().code,
        "PriorityInUse"
    );
    let listeners = call(
        &mut elb,
        &format!("Action=DescribeListeners&LoadBalancerArn={lb}"),
        0.0,
    )
    .unwrap();
    assert_eq!(listeners.matches("<ListenerArn>").count(), 1);
    let lbs = call(
        &mut elb,
        "Action=DescribeLoadBalancers&Names.member.1=shop",
        0.0,
    )
    .unwrap();
    assert!(lbs.contains("<LoadBalancerName>shop</LoadBalancerName>"));
    let err = call(
        &mut elb,
        "Action=DescribeLoadBalancers&Names.member.1=nope",
        0.0,
    )
    .unwrap_err();
    assert_eq!(err.code, "LoadBalancerNotFound");
    let err = call(
        &mut elb,
        "Action=DescribeListeners&ListenerArns.member.1=arn:x",
        0.0,
    )
    .unwrap_err();
    assert_eq!(err.code, "ListenerNotFound");
    let err = call(&mut elb, "Action=DeleteEverything", 0.0).unwrap_err();
    assert_eq!(err.code, "InvalidAction");
    let err = elb
        .create_rule("arn:none", 1, "/", &[(tg.clone(), 1)])
        .unwrap_err();
    assert_eq!(err.code, "ListenerNotFound");
    let err = elb
        .create_listener("arn:none", 80, "HTTP", &[(tg, 1)])
        .unwrap_err();
    assert_eq!(err.code, "LoadBalancerNotFound");
}

#[test]
fn state_survives_a_serde_round_trip() {
    let (mut elb, blue, _, listener, _) = seeded();
    elb.register_target(&blue, "10.0.0.1", 8080, 0.0, Some(0.0));
    let json = serde_json::to_string(&elb).unwrap();
    let back: Elbv2 = serde_json::from_str(&json).unwrap();
    assert_eq!(
        back.target_state(&blue, "10.0.0.1", 150.0),
        Some(TargetState::Healthy)
    );
    assert_eq!(
        back.forward_weights(&listener),
        elb.forward_weights(&listener)
    );
}

#[test]
fn hostile_numbers_do_not_panic() {
    let (mut elb, blue, _, _, _) = seeded();
    let lb = elb.find_load_balancer("web").unwrap();
    elb.register_target(&blue, "10.0.0.1", 8080, f64::NAN, Some(f64::INFINITY));
    let _ = elb.target_state(&blue, "10.0.0.1", f64::MAX);
    let _ = elb.next_change_time(&blue, "10.0.0.1", f64::NEG_INFINITY);
    let err = call(
        &mut elb,
        &format!("Action=CreateListener&LoadBalancerArn={lb}&Port=99999999999"),
        0.0,
    )
    .unwrap_err();
    assert_eq!(err.code, "ValidationError");
    let _ = call(
        &mut elb,
        "Action=DescribeTargetGroups&Names.member.99999999999=x",
        0.0,
    );
}
