//! CodeDeploy blue/green scenarios: the real binary against the in-process sandbox, on a
//! CODE_DEPLOY service configured the ecspresso way (`codedeploy:` and `appspec:` sections,
//! read unchanged). Each states the fault, the verdict, the exit code and what the service
//! looks like afterwards.

// The shared harness re-exports more than these scenarios use.
#[allow(unused_imports)]
use crate::common::*;
use std::time::Duration;

/// Exit codes (README, "Exit codes").
const OK: i32 = 0;
const FAILED_ROLLED_BACK: i32 = 3;
const TIMED_OUT: i32 = 6;
const CANCELLED: i32 = 130;

fn calls(s: &Scenario, mark: u64, op: &str) -> usize {
    s.requests_after(mark)
        .iter()
        .filter(|r| r.operation == op)
        .count()
}

/// The status of a CodeDeploy deployment, as GetDeployment says.
async fn cd_status(s: &Scenario, id: &str) -> (String, Option<String>) {
    let d = s
        .codedeploy_client()
        .get_deployment()
        .deployment_id(id)
        .send()
        .await
        .unwrap();
    let info = d.deployment_info().unwrap();
    (
        info.status()
            .map(|s| s.as_str().to_string())
            .unwrap_or_default(),
        info.rollback_info()
            .and_then(|r| r.rollback_deployment_id())
            .map(str::to_string),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cd01_codedeploy_blue_green_succeeds_with_the_ecspresso_config() {
    let s = Scenario::codedeploy(FAST, &["v1", "v2"], 0).await;
    // The first deploy creates the service (ECS requires CreateService for that).
    s.deploy("v1", &[]).await.expect_code(OK);
    let mark = s.mark();
    let run = s.deploy("v2", &[]).await;
    run.expect_code(OK);
    let result = run.result();
    let id = result["deployment_id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(id.starts_with("d-"), "a CodeDeploy deployment id: {id}");
    // One CreateDeployment, no UpdateService (ECS refuses a new revision on CODE_DEPLOY).
    assert_eq!(calls(&s, mark, "CreateDeployment"), 1, "{}", run.dump());
    assert_eq!(calls(&s, mark, "UpdateService"), 0);
    assert_eq!(calls(&s, mark, "StopDeployment"), 0);
    // Lifecycle events were reported as stages (how many a poll catches depends on the
    // sandbox's speed), and traffic ended on the new revision.
    assert!(!stages(&run).is_empty(), "{}", run.dump());
    assert_eq!(production_steps(&run).last(), Some(&100), "{}", run.dump());
    // The replacement's target group health was read and reported.
    assert!(
        run.events_of("target_health")
            .iter()
            .any(|e| e["healthy"].as_u64() == Some(2)),
        "{}",
        run.dump()
    );
    // CodeDeploy ran every lifecycle event, the AppSpec hook's included.
    let target = s
        .codedeploy_client()
        .get_deployment_target()
        .deployment_id(&id)
        .target_id(format!("{CLUSTER}:{SERVICE}"))
        .send()
        .await
        .unwrap();
    let events: Vec<(String, String)> = target
        .deployment_target()
        .and_then(|t| t.ecs_target())
        .map(|t| {
            t.lifecycle_events()
                .iter()
                .map(|e| {
                    (
                        e.lifecycle_event_name().unwrap_or_default().to_string(),
                        e.status()
                            .map(|s| s.as_str().to_string())
                            .unwrap_or_default(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(events.len(), 8, "{events:?}");
    assert!(events.iter().all(|e| e.1 == "Succeeded"), "{events:?}");
    // The AppSpec CodeDeploy received names the new revision, the container and the hook.
    let d = s
        .codedeploy_client()
        .get_deployment()
        .deployment_id(&id)
        .send()
        .await
        .unwrap();
    let spec = d
        .deployment_info()
        .and_then(|i| i.revision())
        .and_then(|r| r.app_spec_content())
        .and_then(|c| c.content())
        .unwrap_or_default()
        .to_string();
    assert!(spec.contains("task-definition/web:2"), "{spec}");
    assert!(spec.contains("ContainerName: web"), "{spec}");
    assert!(spec.contains("web-smoke-test"), "{spec}");
    let events: Vec<String> = d
        .deployment_info()
        .and_then(|i| i.auto_rollback_configuration())
        .map(|a| a.events().iter().map(|e| e.as_str().to_string()).collect())
        .unwrap_or_default();
    assert_eq!(
        events,
        [
            "DEPLOYMENT_FAILURE",
            "DEPLOYMENT_STOP_ON_ALARM",
            "DEPLOYMENT_STOP_ON_REQUEST"
        ]
    );
    // Nothing left to do: the same revision again starts no deployment.
    let again = s.deploy("v2", &[]).await;
    again.expect_code(OK);
    assert_eq!(again.result()["outcome"], "no change", "{}", again.dump());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cd02_crash_looping_replacement_is_stopped_and_rolled_back_exit_3() {
    let s = Scenario::codedeploy(FAST, &["v1", "v2--crash-20s"], 0).await;
    s.deploy("v1", &[]).await.expect_code(OK);
    let mark = s.mark();
    let run = s.deploy("v2--crash-20s", &[]).await;
    run.expect_code(FAILED_ROLLED_BACK);
    let result = run.result();
    assert_eq!(result["outcome"], "failed, rolled back", "{}", run.dump());
    let detail = result["detail"].as_str().unwrap_or_default();
    assert!(
        detail.contains("Essential container in task exited"),
        "{detail}"
    );
    assert_eq!(calls(&s, mark, "StopDeployment"), 1, "{}", run.dump());
    let id = result["deployment_id"].as_str().unwrap().to_string();
    let (status, rollback) = cd_status(&s, &id).await;
    assert_eq!(status, "Stopped");
    let rollback = rollback.expect("a rollback deployment");
    assert_eq!(cd_status(&s, &rollback).await.0, "Succeeded");
    assert_eq!(revision_of(s.service().await.task_definition().unwrap()), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cd03_failing_appspec_hook_is_rolled_back_by_codedeploy_exit_3() {
    let s = Scenario::codedeploy(FAST, &["v1", "v2--hook-fail"], 0).await;
    s.deploy("v1", &[]).await.expect_code(OK);
    let mark = s.mark();
    let run = s.deploy("v2--hook-fail", &[]).await;
    run.expect_code(FAILED_ROLLED_BACK);
    let detail = run.result()["detail"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(detail.contains("rolled back by CodeDeploy"), "{detail}");
    assert!(detail.contains("AfterAllowTestTraffic"), "{detail}");
    // CodeDeploy rolled back on its own: cortado followed, it did not stop anything.
    assert_eq!(calls(&s, mark, "StopDeployment"), 0, "{}", run.dump());
    // Production traffic never moved to the failing revision.
    assert!(!production_steps(&run).contains(&100), "{}", run.dump());
    assert_eq!(revision_of(s.service().await.task_definition().unwrap()), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cd04_timeout_stops_the_deployment_with_rollback_exit_6() {
    // The replacement takes 10 virtual minutes to start; the run gives it 3 s (x20 = 60 s).
    let s = Scenario::codedeploy(20.0, &["v1", "v2--slow-start-600s"], 0).await;
    let fast = s.accelerate();
    s.deploy("v1", &[]).await.expect_code(OK);
    fast.abort();
    let mark = s.mark();
    let run = s.deploy("v2--slow-start-600s", &["--timeout", "3s"]).await;
    run.expect_code(TIMED_OUT);
    assert_eq!(
        run.result()["outcome"],
        "timed out, rolled back",
        "{}",
        run.dump()
    );
    assert_eq!(calls(&s, mark, "StopDeployment"), 1, "{}", run.dump());
    let id = run.result()["deployment_id"].as_str().unwrap().to_string();
    let (status, rollback) = cd_status(&s, &id).await;
    assert_eq!(status, "Stopped");
    assert!(rollback.is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cd05_sigterm_mid_deploy_stops_with_rollback_exit_130() {
    let s = Scenario::codedeploy(20.0, &["v1", "v2--slow-start-600s"], 0).await;
    let fast = s.accelerate();
    s.deploy("v1", &[]).await.expect_code(OK);
    fast.abort();
    let mark = s.mark();
    let bg = s.start_background("v2--slow-start-600s", &["deploy"]).await;
    let pid = bg.child.id().expect("running");
    // SIGTERM, as a CI runner cancelling the job sends it.
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let run = bg.finish(Duration::from_secs(30)).await;
    run.expect_code(CANCELLED);
    assert_eq!(calls(&s, mark, "StopDeployment"), 1, "{}", run.dump());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cd06_manual_rollback_deploys_the_previous_revision_through_codedeploy() {
    let s = Scenario::codedeploy(FAST, &["v1", "v2"], 0).await;
    s.deploy("v1", &[]).await.expect_code(OK);
    // Until CodeDeploy terminated the original task set: no deployment is left in flight.
    s.deploy("v2", &["--wait-until", "terminated"])
        .await
        .expect_code(OK);
    assert_eq!(revision_of(s.service().await.task_definition().unwrap()), 2);
    // A dry run says where it would go and changes nothing.
    let mark = s.mark();
    let dry = s.cortado("v2", &["rollback", "--dry-run"]).await;
    dry.expect_code(OK);
    assert_eq!(dry.result()["outcome"], "dry run", "{}", dry.dump());
    assert!(
        dry.result()["detail"]
            .as_str()
            .is_some_and(|d| d.contains("would deploy web:1 through CodeDeploy")),
        "{}",
        dry.dump()
    );
    assert!(mutating(&s.requests_after(mark)).is_empty());
    let mark = s.mark();
    let run = s.cortado("v2", &["rollback"]).await;
    run.expect_code(OK);
    let result = run.result();
    assert_eq!(result["outcome"], "succeeded", "{}", run.dump());
    assert!(
        result["task_definition_arn"]
            .as_str()
            .is_some_and(|t| t.ends_with("web:1")),
        "{}",
        run.dump()
    );
    assert_eq!(calls(&s, mark, "CreateDeployment"), 1);
    assert_eq!(calls(&s, mark, "StopDeployment"), 0);
    assert_eq!(calls(&s, mark, "UpdateService"), 0);
    assert_eq!(revision_of(s.service().await.task_definition().unwrap()), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cd07_manual_rollback_mid_deploy_stops_it_and_the_deploy_exits_3() {
    let s = Scenario::codedeploy(20.0, &["v1", "v2--slow-start-600s"], 0).await;
    let fast = s.accelerate();
    s.deploy("v1", &[]).await.expect_code(OK);
    fast.abort();
    let bg = s.start_background("v2--slow-start-600s", &["deploy"]).await;
    let mark = s.mark();
    let rb = s.cortado("v2--slow-start-600s", &["rollback"]).await;
    rb.expect_code(OK);
    assert_eq!(calls(&s, mark, "StopDeployment"), 1, "{}", rb.dump());
    assert_eq!(calls(&s, mark, "CreateDeployment"), 0);
    // The deploy that was following sees its deployment rolled back: a failure.
    let run = bg.finish(Duration::from_secs(30)).await;
    run.expect_code(FAILED_ROLLED_BACK);
    let detail = run.result()["detail"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(detail.contains("StopDeployment"), "{detail}");
    assert_eq!(revision_of(s.service().await.task_definition().unwrap()), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cd08_termination_wait_returns_on_traffic_or_waits_for_terminated() {
    // The group keeps the original task set 10 virtual hours after traffic moved (50 real
    // minutes at this speed: nothing ends it by itself during the test).
    let s = Scenario::codedeploy(FAST, &["v1", "v2", "v3"], 600).await;
    s.deploy("v1", &[]).await.expect_code(OK);
    let run = s.deploy("v2", &[]).await;
    run.expect_code(OK);
    let result = run.result();
    let detail = result["detail"].as_str().unwrap_or_default();
    assert!(
        detail.contains("terminates the original task set 600 min later"),
        "{detail}"
    );
    // CodeDeploy is still waiting to terminate the original: cortado said so and returned.
    let id = result["deployment_id"].as_str().unwrap().to_string();
    assert_eq!(cd_status(&s, &id).await.0, "InProgress");
    // Let CodeDeploy finish, then deploy v3 and wait for the termination too.
    s.sb.control().advance(601.0 * 60.0);
    let mut status = cd_status(&s, &id).await.0;
    for _ in 0..50 {
        if status == "Succeeded" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        status = cd_status(&s, &id).await.0;
    }
    assert_eq!(status, "Succeeded");
    let control = s.sb.control();
    let fast = tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_millis(50)).await;
            control.advance(300.0);
        }
    });
    let run = s.deploy("v3", &["--wait-until", "terminated"]).await;
    fast.abort();
    run.expect_code(OK);
    let id = run.result()["deployment_id"].as_str().unwrap().to_string();
    assert_eq!(cd_status(&s, &id).await.0, "Succeeded", "{}", run.dump());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cd09_appspec_and_diff_name_the_group_and_make_no_write() {
    let s = Scenario::codedeploy(FAST, &["v1", "v2"], 0).await;
    s.deploy("v1", &[]).await.expect_code(OK);
    let mark = s.mark();
    let run = s
        .cortado("v2", &["appspec", "--task-definition", "current"])
        .await;
    run.expect_code(OK);
    let out: serde_json::Value =
        serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("{e}\n{}", run.dump()));
    let spec = out["appspec"].clone();
    let props = &spec["Resources"][0]["TargetService"]["Properties"];
    assert!(
        props["TaskDefinition"]
            .as_str()
            .is_some_and(|t| t.ends_with("task-definition/web:1")),
        "{spec}"
    );
    assert_eq!(props["LoadBalancerInfo"]["ContainerPort"], 80);
    assert_eq!(
        props["NetworkConfiguration"]["AwsvpcConfiguration"]["Subnets"][0],
        "subnet-0a1b2c3d"
    );
    assert_eq!(
        spec["Hooks"][0]["AfterAllowTestTraffic"],
        "arn:aws:lambda:us-east-1:123456789012:function:web-smoke-test"
    );
    let diff = s
        .cortado("v2", &["diff", "--exit-code", "--format", "json"])
        .await;
    diff.expect_code(2);
    assert!(
        diff.stdout
            .contains("CodeDeploy blue/green via application web-app / group web-dg"),
        "{}",
        diff.dump()
    );
    assert_eq!(mutating(&s.requests_after(mark)), Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cd10_the_codedeploy_example_deploys_through_codedeploy() {
    // What `cortado sandbox serve --prepare examples/codedeploy/ecspresso.yml` creates.
    let mut s = Scenario::codedeploy(FAST, &[], 0).await;
    Prepare {
        cluster: "demo".into(),
        service: Some("hello-cd".into()),
        images: vec!["123456789012.dkr.ecr.us-east-1.amazonaws.com/hello:v1".into()],
        codedeploy: Some(PrepareCodeDeploy {
            application: "AppECS-demo-hello-cd".into(),
            group: "DgpECS-demo-hello-cd".into(),
            target_group: "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/hello-cd-blue/0123456789abcdef".into(),
            alternate_target_group: None,
            termination_wait_minutes: 0,
            ready_wait_minutes: None,
        }),
        ..Default::default()
    }
    .apply(&s.sb)
    .unwrap();
    s.config =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/codedeploy/ecspresso.yml");
    s.deploy("", &[]).await.expect_code(OK);
    s.env.push(("GREETING".into(), "hello, green".into()));
    let mark = s.mark();
    let run = s.deploy("", &[]).await;
    run.expect_code(OK);
    assert_eq!(calls(&s, mark, "CreateDeployment"), 1, "{}", run.dump());
    assert!(
        run.result()["task_definition_arn"]
            .as_str()
            .is_some_and(|t| t.ends_with("hello-cd:2")),
        "{}",
        run.dump()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cd11_a_ready_deployment_waits_for_continue_deployment() {
    // The group moves traffic only after a ContinueDeployment (up to 60 virtual minutes).
    let s = Scenario::codedeploy_with(FAST, &["v1", "v2"], 0, Some(60)).await;
    s.deploy("v1", &[]).await.expect_code(OK);
    let mut bg = s.start_background("v2", &["deploy"]).await;
    let id = bg
        .seen
        .lines()
        .find(|l| l.contains("\"event\":\"deployment_started\""))
        .and_then(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .and_then(|v| v["deployment_id"].as_str().map(str::to_string))
        .expect("the deployment id");
    // Bounded by polls, not by time: CodeDeploy reaches Ready and stays there.
    let mut status = String::new();
    for _ in 0..200 {
        status = cd_status(&s, &id).await.0;
        if status == "Ready" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(status, "Ready");
    // cortado follows a Ready deployment: it has not ended (traffic has not moved).
    assert!(bg.child.try_wait().unwrap().is_none(), "{}", bg.seen);
    s.codedeploy_client()
        .continue_deployment()
        .deployment_id(&id)
        .send()
        .await
        .unwrap();
    let run = bg.finish(Duration::from_secs(30)).await;
    run.expect_code(OK);
    assert_eq!(production_steps(&run).last(), Some(&100), "{}", run.dump());
    // A ContinueDeployment on a deployment that is not Ready is refused.
    assert!(
        s.codedeploy_client()
            .continue_deployment()
            .deployment_id(&id)
            .send()
            .await
            .is_err()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cd12_bad_codedeploy_settings_are_rejected_before_any_call() {
    let s = Scenario::codedeploy(FAST, &["v1"], 0).await;
    let dir = std::env::temp_dir().join(format!("cortado-cd12-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for f in ["ecs-service-def.json", "ecs-task-def.json"] {
        std::fs::copy(fixture("web-cd").join(f), dir.join(f)).unwrap();
    }
    let good = std::fs::read_to_string(fixture("web-cd").join("ecspresso.yml")).unwrap();
    let cases = [
        ("BeforeInstal:", "BeforeInstal is not a lifecycle event"),
        (
            "codedeploy:\n  application_name: [1]",
            "application_name must be a string",
        ),
    ];
    for (i, (edit, want)) in cases.iter().enumerate() {
        let text = match i {
            0 => good.replace("AfterAllowTestTraffic:", edit),
            _ => good.replace("codedeploy:\n  application_name: web-app", edit),
        };
        let config = dir.join(format!("c{i}.yml"));
        std::fs::write(&config, text).unwrap();
        let mark = s.mark();
        let run = finish(s.command_with(&config, "v1", &["deploy"])).await;
        run.expect_code(1);
        assert!(
            run.stderr.contains(want) || run.stdout.contains(want),
            "{}",
            run.dump()
        );
        assert!(
            s.requests_after(mark).is_empty(),
            "{:?}",
            s.requests_after(mark)
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cd13_replacement_failing_elb_health_checks_is_rolled_back_exit_3() {
    let s = Scenario::codedeploy(FAST, &["v1", "v2--elb-unhealthy"], 0).await;
    s.deploy("v1", &[]).await.expect_code(OK);
    let run = s.deploy("v2--elb-unhealthy", &[]).await;
    run.expect_code(FAILED_ROLLED_BACK);
    let detail = run.result()["detail"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(detail.contains("ELB health checks"), "{detail}");
    assert!(!production_steps(&run).contains(&100), "{}", run.dump());
    assert_eq!(revision_of(s.service().await.task_definition().unwrap()), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cd14_wait_follows_the_codedeploy_deployment_in_flight() {
    let s = Scenario::codedeploy(FAST, &["v1", "v2"], 0).await;
    s.deploy("v1", &[]).await.expect_code(OK);
    // Nothing in flight: wait says so and succeeds.
    let idle = s.cortado("v1", &["wait"]).await;
    idle.expect_code(OK);
    assert!(
        idle.result()["detail"]
            .as_str()
            .is_some_and(|d| d.contains("no CodeDeploy deployment in flight")),
        "{}",
        idle.dump()
    );
    let started = s.deploy("v2", &["--no-wait"]).await;
    started.expect_code(OK);
    let id = started.result()["deployment_id"]
        .as_str()
        .unwrap()
        .to_string();
    let mark = s.mark();
    let run = s.cortado("v2", &["wait"]).await;
    run.expect_code(OK);
    // It followed that deployment (or found it finished), and changed nothing.
    let followed = run.result()["deployment_id"].as_str().map(str::to_string);
    assert!(
        followed.as_deref() == Some(id.as_str())
            || run.result()["detail"]
                .as_str()
                .is_some_and(|d| d.contains("no CodeDeploy deployment in flight")),
        "{}",
        run.dump()
    );
    assert_eq!(mutating(&s.requests_after(mark)), Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cd15_without_a_codedeploy_section_the_group_of_the_service_is_found() {
    let mut s = Scenario::codedeploy(FAST, &["v1", "v2"], 0).await;
    // Another application, listed first, whose group deploys another service of the cluster:
    // discovery must pass it by.
    Prepare {
        cluster: CLUSTER.into(),
        service: Some("other".into()),
        codedeploy: Some(PrepareCodeDeploy {
            application: "a-other-app".into(),
            group: "other-dg".into(),
            target_group: "other-tg".into(),
            ..Default::default()
        }),
        ..Default::default()
    }
    .apply(&s.sb)
    .unwrap();
    s.config = fixture("web-cd").join("ecspresso-discover.yml");
    s.deploy("v1", &[]).await.expect_code(OK);
    let mark = s.mark();
    let run = s.deploy("v2", &[]).await;
    run.expect_code(OK);
    for op in [
        "ListApplications",
        "ListDeploymentGroups",
        "BatchGetDeploymentGroups",
    ] {
        assert!(calls(&s, mark, op) >= 1, "{op} not called\n{}", run.dump());
    }
    assert_eq!(calls(&s, mark, "CreateDeployment"), 1, "{}", run.dump());
    let id = run.result()["deployment_id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let d = s
        .codedeploy_client()
        .get_deployment()
        .deployment_id(&id)
        .send()
        .await
        .unwrap();
    let info = d.deployment_info().unwrap();
    assert_eq!(info.application_name(), Some("web-app"));
    assert_eq!(info.deployment_group_name(), Some("web-dg"));
    assert_eq!(revision_of(s.service().await.task_definition().unwrap()), 2);
}

/// `rollback` of a CodeDeploy service whose records name no earlier revision that served (the
/// service was created on revision 2): the family's ACTIVE revision before the running one,
/// ecspresso's rule, deployed through CodeDeploy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cd16_rollback_without_a_record_takes_the_familys_previous_revision() {
    let s = Scenario::codedeploy(FAST, &["v1", "v2"], 0).await;
    s.cortado("v1", &["register"]).await.expect_code(OK);
    s.deploy("v2", &["--wait-until", "terminated"])
        .await
        .expect_code(OK);
    assert_eq!(revision_of(s.service().await.task_definition().unwrap()), 2);
    let run = s.cortado("v2", &["rollback"]).await;
    run.expect_code(OK);
    assert!(
        run.result()["detail"]
            .as_str()
            .is_some_and(|d| d.contains("ecspresso's rule")),
        "{}",
        run.dump()
    );
    assert_eq!(revision_of(s.service().await.task_definition().unwrap()), 1);
}

/// `appspec --update-service` (ecspresso's default): the AppSpec's network configuration comes
/// from the config's service definition; `--no-update-service` takes the live service's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cd09b_appspec_update_service_reads_the_file_no_update_service_the_live_service() {
    let s = Scenario::codedeploy(FAST, &["v1"], 0).await;
    s.deploy("v1", &[]).await.expect_code(OK);
    let src = s.config.parent().unwrap().to_path_buf();
    let dir = std::env::temp_dir().join(format!("cortado-appspec-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    for e in std::fs::read_dir(&src).unwrap().flatten() {
        if e.path().is_file() {
            std::fs::copy(e.path(), dir.join(e.file_name())).unwrap();
        }
    }
    let service = dir.join("ecs-service-def.json");
    let text = std::fs::read_to_string(&service).unwrap();
    assert!(text.contains("subnet-0a1b2c3d"));
    std::fs::write(&service, text.replace("subnet-0a1b2c3d", "subnet-0f0f0f0f")).unwrap();
    let config = dir.join(s.config.file_name().unwrap());
    let subnet = |run: &Run| {
        let out: serde_json::Value =
            serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("{e}\n{}", run.dump()));
        out["appspec"]["Resources"][0]["TargetService"]["Properties"]["NetworkConfiguration"]
            ["AwsvpcConfiguration"]["Subnets"][0]
            .clone()
    };
    for flags in [&["appspec"][..], &["appspec", "--update-service"][..]] {
        let run = finish(s.command_with(&config, "v1", flags)).await;
        run.expect_code(OK);
        assert_eq!(subnet(&run), "subnet-0f0f0f0f", "{}", run.dump());
    }
    let live = finish(s.command_with(&config, "v1", &["appspec", "--no-update-service"])).await;
    live.expect_code(OK);
    assert_eq!(subnet(&live), "subnet-0a1b2c3d", "{}", live.dump());
    let _ = std::fs::remove_dir_all(&dir);
}
