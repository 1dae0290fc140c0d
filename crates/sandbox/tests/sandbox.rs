//! Black-box tests of the sandbox: the real aws-sdk-ecs client over HTTP against
//! `cortado_sandbox::start`, with compressed time.

use std::time::{Duration, Instant};

use aws_sdk_ecs::Client;
use aws_sdk_ecs::config::retry::RetryConfig;
use aws_sdk_ecs::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_ecs::error::ProvideErrorMetadata;
use aws_sdk_ecs::types::{
    AwsVpcConfiguration, ContainerDefinition, DeploymentCircuitBreaker, DeploymentConfiguration,
    DesiredStatus, LaunchType, NetworkConfiguration, PortMapping, Service,
    StopServiceDeploymentStopType,
};
use cortado_sandbox::{self as sandbox, ApiFaults, Faults, Options, Sandbox};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const SPEED: f64 = 400.0;

async fn start(speed: f64) -> Sandbox {
    sandbox::start(Options {
        speed,
        rng_seed: 42,
        ..Options::default()
    })
    .await
    .unwrap()
}

fn client(sb: &Sandbox, retries: bool) -> Client {
    let mut b = aws_sdk_ecs::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new(
            "AKIDSANDBOX",
            "sandbox-secret",
            None,
            None,
            "test",
        ))
        .endpoint_url(sb.endpoint());
    if !retries {
        b = b.retry_config(RetryConfig::disabled());
    }
    Client::from_conf(b.build())
}

async fn register(c: &Client, image: &str) -> String {
    let out = c
        .register_task_definition()
        .family("web")
        .network_mode(aws_sdk_ecs::types::NetworkMode::Awsvpc)
        .requires_compatibilities(aws_sdk_ecs::types::Compatibility::Fargate)
        .cpu("256")
        .memory("512")
        .container_definitions(
            ContainerDefinition::builder()
                .name("web")
                .image(image)
                .port_mappings(PortMapping::builder().container_port(80).build())
                .build(),
        )
        .send()
        .await
        .unwrap();
    out.task_definition()
        .unwrap()
        .task_definition_arn()
        .unwrap()
        .to_string()
}

/// `register` with a container health check (every 5 s, 2 retries, no start period).
async fn register_with_health_check(c: &Client, image: &str) -> String {
    let out = c
        .register_task_definition()
        .family("web")
        .network_mode(aws_sdk_ecs::types::NetworkMode::Awsvpc)
        .requires_compatibilities(aws_sdk_ecs::types::Compatibility::Fargate)
        .cpu("256")
        .memory("512")
        .container_definitions(
            ContainerDefinition::builder()
                .name("web")
                .image(image)
                .port_mappings(PortMapping::builder().container_port(80).build())
                .health_check(
                    aws_sdk_ecs::types::HealthCheck::builder()
                        .command("CMD-SHELL")
                        .command("curl -f http://localhost/ || exit 1")
                        .interval(5)
                        .retries(2)
                        .start_period(0)
                        .build()
                        .unwrap(),
                )
                .build(),
        )
        .send()
        .await
        .unwrap();
    out.task_definition()
        .unwrap()
        .task_definition_arn()
        .unwrap()
        .to_string()
}

fn network() -> NetworkConfiguration {
    NetworkConfiguration::builder()
        .awsvpc_configuration(
            AwsVpcConfiguration::builder()
                .subnets("subnet-1")
                .build()
                .unwrap(),
        )
        .build()
}

/// Cluster `c1`, service `web` with 2 tasks of `web:v1`, settled. Returns the v1 ARN.
async fn settled_service(c: &Client, rollback: bool) -> String {
    c.create_cluster().cluster_name("c1").send().await.unwrap();
    let td = register(c, "web:v1").await;
    c.create_service()
        .cluster("c1")
        .service_name("web")
        .task_definition(&td)
        .desired_count(2)
        .launch_type(LaunchType::Fargate)
        .network_configuration(network())
        .deployment_configuration(
            DeploymentConfiguration::builder()
                .deployment_circuit_breaker(
                    DeploymentCircuitBreaker::builder()
                        .enable(true)
                        .rollback(rollback)
                        .build(),
                )
                .build(),
        )
        .send()
        .await
        .unwrap();
    wait(c, "initial deployment", |s| {
        s.deployments().len() == 1
            && s.deployments()[0].rollout_state().map(|r| r.as_str()) == Some("COMPLETED")
            && s.running_count() == 2
    })
    .await;
    td
}

async fn describe(c: &Client) -> Service {
    c.describe_services()
        .cluster("c1")
        .services("web")
        .send()
        .await
        .unwrap()
        .services()[0]
        .clone()
}

async fn wait(c: &Client, what: &str, cond: impl Fn(&Service) -> bool) -> Service {
    let start = Instant::now();
    loop {
        let s = describe(c).await;
        if cond(&s) {
            return s;
        }
        if start.elapsed() > Duration::from_secs(15) {
            panic!("timed out waiting for {what}: {s:#?}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn update(c: &Client, td: &str) -> (String, String) {
    let out = c
        .update_service()
        .cluster("c1")
        .service("web")
        .task_definition(td)
        .send()
        .await
        .unwrap();
    let s = out.service().unwrap();
    let primary = s
        .deployments()
        .iter()
        .find(|d| d.status() == Some("PRIMARY"))
        .unwrap();
    (
        primary.id().unwrap().to_string(),
        s.current_service_deployment().unwrap().to_string(),
    )
}

async fn sd_status(c: &Client, arn: &str) -> aws_sdk_ecs::types::ServiceDeployment {
    c.describe_service_deployments()
        .service_deployment_arns(arn)
        .send()
        .await
        .unwrap()
        .service_deployments()[0]
        .clone()
}

async fn wait_sd(c: &Client, arn: &str, status: &str) -> aws_sdk_ecs::types::ServiceDeployment {
    let start = Instant::now();
    loop {
        let sd = sd_status(c, arn).await;
        if sd.status().map(|s| s.as_str()) == Some(status) {
            return sd;
        }
        if start.elapsed() > Duration::from_secs(15) {
            panic!("timed out waiting for service deployment {status}: {sd:#?}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn stopped_tasks(c: &Client, started_by: &str) -> Vec<aws_sdk_ecs::types::Task> {
    let arns = c
        .list_tasks()
        .cluster("c1")
        .service_name("web")
        .desired_status(DesiredStatus::Stopped)
        .started_by(started_by)
        .send()
        .await
        .unwrap()
        .task_arns()
        .to_vec();
    if arns.is_empty() {
        return Vec::new();
    }
    c.describe_tasks()
        .cluster("c1")
        .set_tasks(Some(arns))
        .send()
        .await
        .unwrap()
        .tasks()
        .to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rolling_deploy_completes() {
    let sb = start(SPEED).await;
    let c = client(&sb, true);
    let v1 = settled_service(&c, true).await;
    let old_id = describe(&c).await.deployments()[0]
        .id()
        .unwrap()
        .to_string();
    let v2 = register(&c, "web:v2").await;
    assert!(v2.ends_with("task-definition/web:2"), "{v2}");
    let (ours, sd_arn) = update(&c, &v2).await;
    assert_ne!(ours, old_id);
    let mid = describe(&c).await;
    assert_eq!(
        mid.deployments().len(),
        2,
        "old deployment stays ACTIVE during the rollout"
    );
    let s = wait(&c, "rollout", |s| {
        s.deployments().len() == 1
            && s.deployments()[0].rollout_state().map(|r| r.as_str()) == Some("COMPLETED")
    })
    .await;
    let d = &s.deployments()[0];
    assert_eq!(d.id(), Some(ours.as_str()));
    assert_eq!(d.task_definition(), Some(v2.as_str()));
    assert_eq!(
        (d.running_count(), d.desired_count(), d.failed_tasks()),
        (2, 2, 0)
    );
    assert_eq!(s.task_definition(), Some(v2.as_str()));
    let messages: Vec<&str> = s.events().iter().filter_map(|e| e.message()).collect();
    assert!(
        messages[0].contains("has reached a steady state"),
        "{messages:?}"
    );
    assert!(
        messages
            .iter()
            .any(|m| m.contains(&format!("(deployment {ours}) deployment completed."))),
        "{messages:?}"
    );
    assert!(
        messages
            .iter()
            .any(|m| m.starts_with("(service web) has started 2 tasks: (task ")),
        "{messages:?}"
    );
    assert!(
        messages
            .iter()
            .any(|m| m.starts_with("(service web) has stopped 1 running tasks")),
        "{messages:?}"
    );
    let sd = wait_sd(&c, &sd_arn, "SUCCESSFUL").await;
    assert!(sd.finished_at().is_some());
    let listed = c
        .list_service_deployments()
        .cluster("c1")
        .service("web")
        .send()
        .await
        .unwrap();
    assert_eq!(
        listed.service_deployments().len(),
        2,
        "CreateService and UpdateService each made one"
    );
    assert_eq!(
        listed.service_deployments()[0].service_deployment_arn(),
        Some(sd_arn.as_str()),
        "newest first"
    );
    assert_eq!(sd.source_service_revisions().len(), 1);
    assert_eq!(
        sd.target_service_revision().unwrap().running_task_count(),
        2
    );
    // Old tasks were stopped by the scheduler, new ones carry our deployment id.
    let old = stopped_tasks(&c, &old_id).await;
    assert_eq!(old.len(), 2);
    for t in &old {
        assert_eq!(t.task_definition_arn(), Some(v1.as_str()));
        assert_eq!(
            t.stop_code().map(|c| c.as_str()),
            Some("ServiceSchedulerInitiated")
        );
        assert!(
            t.stopped_reason()
                .unwrap()
                .contains("Scaling activity initiated by")
        );
        assert_eq!(t.last_status(), Some("STOPPED"));
    }
    let running = c
        .list_tasks()
        .cluster("c1")
        .service_name("web")
        .send()
        .await
        .unwrap();
    let tasks = c
        .describe_tasks()
        .cluster("c1")
        .set_tasks(Some(running.task_arns().to_vec()))
        .send()
        .await
        .unwrap();
    assert_eq!(tasks.tasks().len(), 2);
    for t in tasks.tasks() {
        assert_eq!(t.started_by(), Some(ours.as_str()));
        assert_eq!(t.group(), Some("service:web"));
        assert_eq!(t.last_status(), Some("RUNNING"));
        let ip = t.attachments()[0]
            .details()
            .iter()
            .find(|d| d.name() == Some("privateIPv4Address"))
            .unwrap();
        assert!(ip.value().unwrap().starts_with("10.0."));
    }
}

/// ARNs of the service's tasks whose desired status is RUNNING, sorted.
async fn running_task_arns(c: &Client) -> Vec<String> {
    let mut arns = c
        .list_tasks()
        .cluster("c1")
        .service_name("web")
        .send()
        .await
        .unwrap()
        .task_arns()
        .to_vec();
    arns.sort();
    arns
}

/// Every task (any status) started by `started_by` (a deployment id).
async fn tasks_started_by(c: &Client, started_by: &str) -> usize {
    let mut n = 0;
    for status in [DesiredStatus::Running, DesiredStatus::Stopped] {
        n += c
            .list_tasks()
            .cluster("c1")
            .service_name("web")
            .desired_status(status)
            .started_by(started_by)
            .send()
            .await
            .unwrap()
            .task_arns()
            .len();
    }
    n
}

/// Virtual time of the newest event whose message is `message`.
fn event_time(s: &Service, message: &str) -> f64 {
    s.events()
        .iter()
        .find(|e| e.message() == Some(message))
        .and_then(|e| e.created_at())
        .map(|t| t.as_secs_f64())
        .unwrap_or_else(|| panic!("no event {message:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn circuit_breaker_rolls_back_to_old_revision() {
    let sb = start(SPEED).await;
    let c = client(&sb, true);
    let v1 = settled_service(&c, true).await;
    let prev = describe(&c).await.deployments()[0]
        .id()
        .unwrap()
        .to_string();
    let v2 = register(&c, "web:v2--crash-2s").await;
    let (ours, sd_arn) = update(&c, &v2).await;
    let target = sd_status(&c, &sd_arn)
        .await
        .target_service_revision()
        .unwrap()
        .arn()
        .unwrap()
        .to_string();
    let sd = wait_sd(&c, &sd_arn, "ROLLBACK_SUCCESSFUL").await;
    let s = wait(&c, "the failed deployment to leave", |s| {
        s.deployments().len() == 1
    })
    .await;
    // The false-success trap: the service is stable again, on the OLD revision, and the PRIMARY
    // deployment is the earlier one (same id), COMPLETED again.
    assert_eq!(s.task_definition(), Some(v1.as_str()));
    assert_eq!(s.deployments()[0].id(), Some(prev.as_str()));
    assert_eq!(s.deployments()[0].status(), Some("PRIMARY"));
    assert_eq!(
        s.deployments()[0].rollout_state().map(|r| r.as_str()),
        Some("COMPLETED")
    );
    assert_eq!(s.deployments()[0].task_definition(), Some(v1.as_str()));
    assert_eq!(s.running_count(), 2);
    let cb = sd.deployment_circuit_breaker().unwrap();
    assert_eq!(cb.status().map(|x| x.as_str()), Some("TRIGGERED"));
    assert_eq!(cb.threshold(), 3);
    assert!(cb.failure_count() >= 3, "{cb:?}");
    let rb = sd.rollback().unwrap();
    assert!(rb.reason().unwrap().contains("circuit breaker"));
    assert!(rb.started_at().is_some());
    assert_eq!(
        rb.service_revision_arn(),
        sd.source_service_revisions()[0].arn()
    );
    // The target stays the failed revision; the rollback names the earlier one.
    assert_eq!(
        sd.target_service_revision().unwrap().arn(),
        Some(target.as_str())
    );
    assert_ne!(rb.service_revision_arn(), Some(target.as_str()));
    assert_eq!(s.current_service_deployment(), Some(sd_arn.as_str()));
    let messages: Vec<&str> = s.events().iter().filter_map(|e| e.message()).collect();
    assert!(
        messages.iter().any(|m| *m
            == format!(
                "(service web) (deployment {ours}) deployment failed: tasks failed to start."
            )),
        "{messages:?}"
    );
    assert!(
        messages.iter().any(|m| *m
            == format!("(service web) (deployment {ours}) rolling back to deployment {prev}.")),
        "{messages:?}"
    );
    assert!(
        messages
            .iter()
            .any(|m| *m == format!("(service web) (deployment {prev}) deployment completed.")),
        "{messages:?}"
    );
    let failed = stopped_tasks(&c, &ours).await;
    assert!(failed.len() >= 3);
    let crashed = failed
        .iter()
        .find(|t| t.stop_code().map(|c| c.as_str()) == Some("EssentialContainerExited"))
        .unwrap();
    assert_eq!(
        crashed.stopped_reason(),
        Some("Essential container in task exited")
    );
    assert_eq!(crashed.containers()[0].exit_code(), Some(1));
}

/// While the rollback runs, the earlier deployment is PRIMARY / IN_PROGRESS again and the
/// failed one ACTIVE / FAILED, and the service deployment is ROLLBACK_IN_PROGRESS; then the old
/// revision is alone and COMPLETED. At speed 60 the time from the breaker trip to that is
/// measured in virtual seconds from the events.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollback_reactivates_the_completed_deployment_at_speed_60() {
    let sb = start(60.0).await;
    let c = client(&sb, true);
    settled_service(&c, true).await;
    let prev = describe(&c).await.deployments()[0]
        .id()
        .unwrap()
        .to_string();
    let old_tasks = running_task_arns(&c).await;
    assert_eq!(old_tasks.len(), 2);
    // v2 runs but never passes its container health check, so it never counts as healthy and
    // minimumHealthyPercent 100 keeps both v1 tasks running through the failed deployment.
    let v2 = register_with_health_check(&c, "web:v2--unhealthy").await;
    let (ours, sd_arn) = update(&c, &v2).await;
    // Poll the service deployment; look at the service once the rollback is under way.
    let started = Instant::now();
    let mut seen: Vec<String> = Vec::new();
    let mut during: Option<Service> = None;
    loop {
        let st = sd_status(&c, &sd_arn)
            .await
            .status()
            .map(|s| s.as_str().to_string())
            .unwrap_or_default();
        if seen.last() != Some(&st) {
            seen.push(st.clone());
        }
        if st == "ROLLBACK_IN_PROGRESS" && during.is_none() {
            during = Some(describe(&c).await);
        }
        if st == "ROLLBACK_SUCCESSFUL" {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(20), "{seen:?}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(
        seen,
        ["IN_PROGRESS", "ROLLBACK_IN_PROGRESS", "ROLLBACK_SUCCESSFUL"]
    );
    let during = during.unwrap();
    let p = &during.deployments()[0];
    assert_eq!(p.id(), Some(prev.as_str()), "{during:#?}");
    assert_eq!(p.status(), Some("PRIMARY"));
    assert_eq!(p.rollout_state().map(|r| r.as_str()), Some("IN_PROGRESS"));
    assert_eq!(p.desired_count(), 2);
    let f = during
        .deployments()
        .iter()
        .find(|d| d.id() == Some(ours.as_str()))
        .expect("the failed deployment is listed while its last task stops");
    assert_eq!(f.status(), Some("ACTIVE"));
    assert_eq!(f.rollout_state().map(|r| r.as_str()), Some("FAILED"));
    let s = wait(&c, "the old revision alone", |s| s.deployments().len() == 1).await;
    assert_eq!(s.deployments()[0].id(), Some(prev.as_str()));
    let tripped = event_time(
        &s,
        &format!("(service web) (deployment {ours}) rolling back to deployment {prev}."),
    );
    let completed = event_time(
        &s,
        &format!("(service web) (deployment {prev}) deployment completed."),
    );
    let took = completed - tripped;
    eprintln!("breaker trip -> old revision alone and COMPLETED: {took:.1} virtual s");
    // Nothing to launch or to wait for: only the last failed task's stop (4-10 s), not a
    // provisioning plus start cycle of new tasks.
    assert!((0.0..12.0).contains(&took), "{took}");
    // The rollback started no task: the two v1 tasks that kept running are the service again.
    assert_eq!(tasks_started_by(&c, &prev).await, 2);
    assert_eq!(running_task_arns(&c).await, old_tasks);
    let failed = stopped_tasks(&c, &ours).await;
    assert!(failed.len() >= 3, "{failed:?}");
}

/// With minimumHealthyPercent 0 the new deployment stopped the old tasks: the rollback starts
/// the missing ones in the earlier deployment (same id), not in a new one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollback_launches_only_the_missing_tasks() {
    let sb = start(SPEED).await;
    let c = client(&sb, true);
    let v1 = settled_service(&c, true).await;
    c.update_service()
        .cluster("c1")
        .service("web")
        .deployment_configuration(
            DeploymentConfiguration::builder()
                .minimum_healthy_percent(0)
                .maximum_percent(100)
                .deployment_circuit_breaker(
                    DeploymentCircuitBreaker::builder()
                        .enable(true)
                        .rollback(true)
                        .build(),
                )
                .build(),
        )
        .send()
        .await
        .unwrap();
    let s = wait(&c, "settled", |s| {
        s.deployments().len() == 1
            && s.deployments()[0].rollout_state().map(|r| r.as_str()) == Some("COMPLETED")
            && s.running_count() == 2
    })
    .await;
    let prev = s.deployments()[0].id().unwrap().to_string();
    let before = tasks_started_by(&c, &prev).await;
    let v2 = register(&c, "web:v2--crash-2s").await;
    let (ours, sd_arn) = update(&c, &v2).await;
    wait_sd(&c, &sd_arn, "ROLLBACK_SUCCESSFUL").await;
    let s = wait(&c, "the old revision alone", |s| {
        s.deployments().len() == 1 && s.running_count() == 2
    })
    .await;
    assert_eq!(s.deployments()[0].id(), Some(prev.as_str()));
    assert_eq!(s.task_definition(), Some(v1.as_str()));
    assert_ne!(prev, ours);
    // The old tasks were stopped to make room; two new ones started under the same id.
    assert_eq!(tasks_started_by(&c, &prev).await, before + 2);
    let messages: Vec<&str> = s.events().iter().filter_map(|e| e.message()).collect();
    assert!(
        messages.iter().any(|m| *m
            == format!("(service web) (deployment {ours}) rolling back to deployment {prev}.")),
        "{messages:?}"
    );
}

/// Every task (any status) started by `started_by`, described.
async fn all_tasks_started_by(c: &Client, started_by: &str) -> Vec<aws_sdk_ecs::types::Task> {
    let mut arns = Vec::new();
    for status in [DesiredStatus::Running, DesiredStatus::Stopped] {
        arns.extend(
            c.list_tasks()
                .cluster("c1")
                .service_name("web")
                .desired_status(status)
                .started_by(started_by)
                .send()
                .await
                .unwrap()
                .task_arns()
                .to_vec(),
        );
    }
    c.describe_tasks()
        .cluster("c1")
        .set_tasks(Some(arns))
        .send()
        .await
        .unwrap()
        .tasks()
        .to_vec()
}

/// Service `web` of 4 tasks (minimumHealthyPercent 50, maximumPercent 100) with
/// earlySuccessCriteria {healthyPercent 50, cleanup}; deploys v2 and returns, in virtual
/// seconds: when the deployment completed, when the last v1 task stopped, and how many v2 tasks
/// had started (RUNNING) by the completion.
async fn early_success_run(cleanup: &str) -> (f64, f64, usize) {
    let sb = start(SPEED).await;
    let c = client(&sb, true);
    c.create_cluster().cluster_name("c1").send().await.unwrap();
    let v1 = register(&c, "web:v1").await;
    let cfg = DeploymentConfiguration::builder()
        .minimum_healthy_percent(50)
        .maximum_percent(100)
        .early_success_criteria(
            aws_sdk_ecs::types::DeploymentEarlySuccessCriteria::builder()
                .enable(true)
                .healthy_percent(50)
                .source_service_revision_cleanup(cleanup.into())
                .build(),
        )
        .build();
    c.create_service()
        .cluster("c1")
        .service_name("web")
        .task_definition(&v1)
        .desired_count(4)
        .launch_type(LaunchType::Fargate)
        .network_configuration(network())
        .deployment_configuration(cfg)
        .send()
        .await
        .unwrap();
    let s = wait(&c, "v1 settled", |s| {
        s.deployments().len() == 1 && s.running_count() == 4
    })
    .await;
    let prev = s.deployments()[0].id().unwrap().to_string();
    // v2 takes 60 s longer to start. The scheduler stops two v1 tasks to make room for two v2
    // tasks; once those are healthy it stops the last two v1 tasks and starts the last two v2
    // tasks, which run about 70 s later.
    let v2 = register(&c, "web:v2--slow-start-60s").await;
    let (ours, sd_arn) = update(&c, &v2).await;
    wait_sd(&c, &sd_arn, "SUCCESSFUL").await;
    let s = wait(&c, "v2 alone at 4", |s| {
        s.deployments().len() == 1 && s.running_count() == 4
    })
    .await;
    assert_eq!(s.deployments()[0].id(), Some(ours.as_str()));
    let completed = event_time(
        &s,
        &format!("(service web) (deployment {ours}) deployment completed."),
    );
    // The steady state comes only with v2 alone at the desired count.
    let steady = event_time(&s, "(service web) has reached a steady state.");
    assert!(steady >= completed);
    let last_old_stop = all_tasks_started_by(&c, &prev)
        .await
        .iter()
        .map(|t| t.stopped_at().unwrap().as_secs_f64())
        .fold(0.0, f64::max);
    let new_started_by_then = all_tasks_started_by(&c, &ours)
        .await
        .iter()
        .filter(|t| t.started_at().is_some_and(|x| x.as_secs_f64() <= completed))
        .count();
    (completed, last_old_stop, new_started_by_then)
}

/// BLOCKING: the deployment completes once half the desired count is healthy on v2 and the v1
/// tasks are gone, before v2 reaches the desired count.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn early_success_blocking_completes_after_old_tasks_are_gone() {
    let (completed, last_old_stop, new_started) = early_success_run("BLOCKING").await;
    assert!(completed >= last_old_stop, "{completed} {last_old_stop}");
    assert_eq!(new_started, 2);
}

/// DEFERRED: the deployment completes once half the desired count is healthy on v2; the v1
/// tasks are stopped afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn early_success_deferred_completes_before_old_tasks_are_gone() {
    let (completed, last_old_stop, new_started) = early_success_run("DEFERRED").await;
    assert!(completed < last_old_stop, "{completed} {last_old_stop}");
    assert_eq!(new_started, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn early_success_criteria_is_validated() {
    let sb = start(SPEED).await;
    let c = client(&sb, false);
    c.create_cluster().cluster_name("c1").send().await.unwrap();
    let v1 = register(&c, "web:v1").await;
    let create = |cfg: DeploymentConfiguration| {
        c.create_service()
            .cluster("c1")
            .service_name("web")
            .task_definition(&v1)
            .desired_count(1)
            .launch_type(LaunchType::Fargate)
            .network_configuration(network())
            .deployment_configuration(cfg)
            .send()
    };
    let esc = |hp: Option<i32>, cleanup: Option<&str>| {
        aws_sdk_ecs::types::DeploymentEarlySuccessCriteria::builder()
            .enable(true)
            .set_healthy_percent(hp)
            .set_source_service_revision_cleanup(cleanup.map(Into::into))
            .build()
    };
    for cfg in [
        // healthyPercent below minimumHealthyPercent
        DeploymentConfiguration::builder()
            .minimum_healthy_percent(100)
            .early_success_criteria(esc(Some(50), Some("BLOCKING")))
            .build(),
        // no cleanup mode
        DeploymentConfiguration::builder()
            .minimum_healthy_percent(50)
            .early_success_criteria(esc(Some(50), None))
            .build(),
        // not a rolling deployment
        DeploymentConfiguration::builder()
            .minimum_healthy_percent(50)
            .strategy(aws_sdk_ecs::types::DeploymentStrategy::BlueGreen)
            .early_success_criteria(esc(Some(50), Some("DEFERRED")))
            .build(),
    ] {
        let err = create(cfg).await.unwrap_err();
        assert_eq!(err.code(), Some("InvalidParameterException"), "{err:?}");
    }
    create(
        DeploymentConfiguration::builder()
            .minimum_healthy_percent(50)
            .early_success_criteria(esc(Some(50), Some("DEFERRED")))
            .build(),
    )
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pull_failure_without_rollback_leaves_old_tasks() {
    let sb = start(SPEED).await;
    let c = client(&sb, true);
    let v1 = settled_service(&c, false).await;
    let v3 = register(&c, "web:v3--pull-fail").await;
    let (ours, sd_arn) = update(&c, &v3).await;
    let s = wait(&c, "circuit breaker", |s| {
        s.deployments().iter().any(|d| {
            d.id() == Some(ours.as_str()) && d.rollout_state().map(|r| r.as_str()) == Some("FAILED")
        })
    })
    .await;
    let d = s
        .deployments()
        .iter()
        .find(|d| d.id() == Some(ours.as_str()))
        .unwrap();
    assert_eq!(
        d.rollout_state_reason(),
        Some("ECS deployment circuit breaker: tasks failed to start.")
    );
    assert!(d.failed_tasks() >= 3);
    let sd = sd_status(&c, &sd_arn).await;
    assert_eq!(sd.status().map(|x| x.as_str()), Some("STOPPED"));
    let failed = stopped_tasks(&c, &ours).await;
    assert!(failed.len() >= 3);
    for t in &failed {
        assert_eq!(t.stop_code().map(|c| c.as_str()), Some("TaskFailedToStart"));
        assert!(
            t.stopped_reason()
                .unwrap()
                .starts_with("CannotPullContainerError"),
            "{t:?}"
        );
        assert!(
            t.containers()[0]
                .reason()
                .unwrap()
                .starts_with("CannotPullContainerError")
        );
    }
    // The old revision keeps serving.
    let running = c
        .list_tasks()
        .cluster("c1")
        .service_name("web")
        .send()
        .await
        .unwrap();
    let tasks = c
        .describe_tasks()
        .cluster("c1")
        .set_tasks(Some(running.task_arns().to_vec()))
        .send()
        .await
        .unwrap();
    assert_eq!(
        tasks
            .tasks()
            .iter()
            .filter(|t| t.task_definition_arn() == Some(v1.as_str()))
            .count(),
        2
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_service_deployment_rollback() {
    let sb = start(SPEED).await;
    let c = client(&sb, true);
    let v1 = settled_service(&c, false).await;
    let prev = describe(&c).await.deployments()[0]
        .id()
        .unwrap()
        .to_string();
    let v2 = register(&c, "web:v2--slow-start-1h").await;
    let (ours, sd_arn) = update(&c, &v2).await;
    assert_eq!(
        sd_status(&c, &sd_arn).await.status().map(|x| x.as_str()),
        Some("IN_PROGRESS")
    );
    c.stop_service_deployment()
        .service_deployment_arn(&sd_arn)
        .stop_type(StopServiceDeploymentStopType::Rollback)
        .send()
        .await
        .unwrap();
    let sd = wait_sd(&c, &sd_arn, "ROLLBACK_SUCCESSFUL").await;
    assert!(sd.rollback().is_some());
    let s = describe(&c).await;
    assert_eq!(s.task_definition(), Some(v1.as_str()));
    assert_eq!(s.running_count(), 2);
    // Back to the source revision's deployment, same id, as the circuit breaker does.
    assert_eq!(s.deployments()[0].id(), Some(prev.as_str()));
    assert!(
        s.events().iter().any(|e| e.message()
            == Some(
                format!("(service web) (deployment {ours}) rolling back to deployment {prev}.")
                    .as_str()
            )),
        "{:?}",
        s.events()
    );
    // A finished deployment cannot be stopped again.
    let err = c
        .stop_service_deployment()
        .service_deployment_arn(&sd_arn)
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some("ConflictException"));
    // Scaling to zero is not a deployment: the same deployment stays PRIMARY and settles.
    let before = describe(&c).await.deployments()[0]
        .id()
        .unwrap()
        .to_string();
    c.update_service()
        .cluster("c1")
        .service("web")
        .desired_count(0)
        .send()
        .await
        .unwrap();
    let s = wait(&c, "scaled to zero", |s| {
        s.running_count() == 0
            && s.pending_count() == 0
            && s.events()[0]
                .message()
                .unwrap_or("")
                .contains("steady state")
    })
    .await;
    assert_eq!(s.deployments().len(), 1);
    assert_eq!(s.deployments()[0].id(), Some(before.as_str()));
    assert_eq!(
        c.list_service_deployments()
            .cluster("c1")
            .service("web")
            .send()
            .await
            .unwrap()
            .service_deployments()
            .len(),
        2
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_faults_and_validation_have_aws_shapes() {
    let sb = start(SPEED).await;
    let c = client(&sb, false);
    c.create_cluster().cluster_name("c1").send().await.unwrap();
    // 11 services: rejected like AWS; unknown names are failures, not errors.
    let names: Vec<String> = (0..11).map(|i| format!("s{i}")).collect();
    let err = c
        .describe_services()
        .cluster("c1")
        .set_services(Some(names.clone()))
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some("InvalidParameterException"));
    let out = c
        .describe_services()
        .cluster("c1")
        .set_services(Some(names[..10].to_vec()))
        .send()
        .await
        .unwrap();
    assert_eq!(out.failures().len(), 10);
    assert_eq!(out.failures()[0].reason(), Some("MISSING"));
    let err = c
        .describe_services()
        .cluster("nope")
        .services("x")
        .send()
        .await
        .unwrap_err();
    assert!(
        err.as_service_error()
            .unwrap()
            .is_cluster_not_found_exception()
    );
    let err = c
        .update_service()
        .cluster("c1")
        .service("ghost")
        .desired_count(1)
        .send()
        .await
        .unwrap_err();
    assert!(
        err.as_service_error()
            .unwrap()
            .is_service_not_found_exception()
    );

    sb.control().set_faults(Faults {
        api: ApiFaults {
            throttle_rate: 1.0,
            ..Default::default()
        },
        ..Default::default()
    });
    let err = c.list_clusters().send().await.unwrap_err();
    assert_eq!(err.code(), Some("ThrottlingException"));
    assert_eq!(err.message(), Some("Rate exceeded"));
    sb.control().set_faults(Faults {
        api: ApiFaults {
            error_rate: 1.0,
            ..Default::default()
        },
        ..Default::default()
    });
    let err = c.list_clusters().send().await.unwrap_err();
    assert!(err.as_service_error().unwrap().is_server_exception());
    sb.control().set_faults(Faults {
        api: ApiFaults {
            drop_rate: 1.0,
            operations: vec!["ListClusters".into()],
            ..Default::default()
        },
        ..Default::default()
    });
    let err = c.list_clusters().send().await.unwrap_err();
    assert!(
        err.as_service_error().is_none(),
        "a dropped connection is not a service error: {err:?}"
    );
    c.describe_clusters().clusters("c1").send().await.unwrap();
    sb.control().set_faults(Faults::default());
    c.list_clusters().send().await.unwrap();

    // Scripted failure of the next call, then latency.
    let (status, _) = raw(&sb, "POST", "/_sandbox/faults", None,
        r#"{"failNext": [{"operation": "CreateCluster", "code": "ServerException", "count": 1}], "api": {"latencyMs": 150}}"#).await;
    assert_eq!(status, 200);
    let t0 = Instant::now();
    let err = c
        .create_cluster()
        .cluster_name("c2")
        .send()
        .await
        .unwrap_err();
    assert!(err.as_service_error().unwrap().is_server_exception());
    assert!(
        t0.elapsed() < Duration::from_millis(150),
        "scripted failures answer at once"
    );
    let t0 = Instant::now();
    c.create_cluster().cluster_name("c2").send().await.unwrap();
    assert!(
        t0.elapsed() >= Duration::from_millis(150),
        "latency fault applies"
    );
    sb.control().set_faults(Faults::default());
    let before = sb.control().now();
    let (status, body) = raw(
        &sb,
        "POST",
        "/_sandbox/advance",
        None,
        r#"{"seconds": 3600}"#,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(sb.control().now() - before >= 3600.0);

    // Unknown operation: a JSON error, not an HTML 500.
    let (status, body) = raw(
        &sb,
        "POST",
        "/",
        Some("AmazonEC2ContainerServiceV20141113.Frobnicate"),
        "{}",
    )
    .await;
    assert_eq!(status, 400);
    assert!(
        body.contains("\"__type\":\"UnknownOperationException\""),
        "{body}"
    );

    // The request log saw it all.
    let log = sb.control().requests();
    let ops: Vec<(&str, bool, u16)> = log
        .iter()
        .map(|r| (r.operation.as_str(), r.mutating, r.status))
        .collect();
    assert_eq!(ops[0], ("CreateCluster", true, 200));
    assert!(ops.contains(&("DescribeServices", false, 400)));
    assert!(ops.contains(&("ListClusters", false, 500)));
    assert!(ops.contains(&("ListClusters", false, 0)));
    assert!(log.windows(2).all(|w| w[0].seq < w[1].seq));
    let (status, body) = raw(&sb, "GET", "/_sandbox/requests", None, "").await;
    assert_eq!(status, 200);
    assert!(body.contains("\"operation\":\"UpdateService\""), "{body}");
}

/// A minimal HTTP/1.1 client for the control endpoints.
async fn raw(
    sb: &Sandbox,
    method: &str,
    path: &str,
    target: Option<&str>,
    body: &str,
) -> (u16, String) {
    let addr = sb.endpoint().trim_start_matches("http://").to_string();
    let mut s = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let target = match target {
        Some(t) => format!("X-Amz-Target: {t}\r\nContent-Type: application/x-amz-json-1.1\r\n"),
        // Control requests declare their JSON body, as the sandbox asks.
        None if path.starts_with("/_sandbox/") => "Content-Type: application/json\r\n".into(),
        None => String::new(),
    };
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\n{target}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    let status = out
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = out
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

/// A request with the given header lines (each ending in CRLF) and no others but
/// Content-Length and Connection.
async fn raw_headers(sb: &Sandbox, method: &str, path: &str, headers: &str, body: &str) -> u16 {
    let addr = sb.endpoint().trim_start_matches("http://").to_string();
    let mut s = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let req = format!(
        "{method} {path} HTTP/1.1\r\n{headers}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    out.split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

/// A web page can send requests to 127.0.0.1 (a form post, a fetch without CORS) and, by DNS
/// rebinding, read answers under its own name. The sandbox refuses every request with an
/// Origin header or a Host that is not the loopback interface, and control POSTs whose body is
/// not declared JSON; local tools (no Origin, Host 127.0.0.1 or localhost) still get through.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn web_pages_cannot_reach_the_sandbox() {
    let sb = start(SPEED).await;
    let addr = sb.endpoint().trim_start_matches("http://").to_string();
    let port = addr.rsplit(':').next().unwrap().to_string();
    let host = format!("Host: {addr}\r\n");
    let json = "Content-Type: application/json\r\n";
    let faults = r#"{"api": {"errorRate": 1.0}}"#;
    // A page's fetch or form post carries an Origin.
    let origin = format!("{host}Origin: http://evil.example\r\n{json}");
    assert_eq!(
        raw_headers(&sb, "POST", "/_sandbox/faults", &origin, faults).await,
        403
    );
    // A form post cannot declare JSON.
    let form = format!("{host}Content-Type: text/plain\r\n");
    assert_eq!(
        raw_headers(&sb, "POST", "/_sandbox/faults", &form, faults).await,
        415
    );
    assert_eq!(
        raw_headers(&sb, "POST", "/_sandbox/reset", &host, "").await,
        415
    );
    assert_eq!(
        sb.control().faults().api.error_rate,
        0.0,
        "no fault was set"
    );
    // Creating an IAM role by a cross-site form post.
    let create_role =
        "Action=CreateRole&Version=2010-05-08&RoleName=pwned&AssumeRolePolicyDocument=%7B%7D";
    let form_post =
        format!("{host}Origin: null\r\nContent-Type: application/x-www-form-urlencoded\r\n");
    assert_eq!(
        raw_headers(&sb, "POST", "/", &form_post, create_role).await,
        403
    );
    // DNS rebinding: the page's own name in Host.
    for evil in [
        format!("rebind.example:{port}"),
        "127.0.0.1.evil.example".into(),
        "10.0.0.1".into(),
    ] {
        let h = format!("Host: {evil}\r\n");
        assert_eq!(
            raw_headers(&sb, "GET", "/_sandbox/state", &h, "").await,
            403,
            "{evil}"
        );
    }
    // Local tools.
    for ok in [
        addr.clone(),
        format!("localhost:{port}"),
        format!("[::1]:{port}"),
    ] {
        let h = format!("Host: {ok}\r\n");
        assert_eq!(
            raw_headers(&sb, "GET", "/_sandbox/state", &h, "").await,
            200,
            "{ok}"
        );
    }
    let ok = format!("{host}{json}");
    assert_eq!(
        raw_headers(&sb, "POST", "/_sandbox/faults", &ok, faults).await,
        200
    );
    assert_eq!(sb.control().faults().api.error_rate, 1.0);
    assert!(
        sb.control()
            .requests()
            .iter()
            .all(|r| r.operation != "CreateRole"),
        "the role request reached no API"
    );
    assert!(!sb.control().world().to_string().contains("pwned"));
    sb.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_state_file_and_control_endpoints() {
    let dir = std::env::temp_dir().join(format!("cortado-sandbox-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let state = dir.join("state.json");
    let _ = std::fs::remove_file(&state);
    let seed = sandbox::Seed::parse(
        r#"
clusters: [c1]
services:
  - cluster: c1
    serviceName: web
    desiredCount: 3
    launchType: FARGATE
    networkConfiguration: {awsvpcConfiguration: {subnets: [subnet-1]}}
    taskDefinition:
      family: web
      networkMode: awsvpc
      requiresCompatibilities: [FARGATE]
      cpu: 0.25 vCPU
      memory: 1 GB
      containerDefinitions:
        - {name: web, image: "web:v1", portMappings: [{containerPort: 80}]}
faults:
  images: {"web:v9": pull-fail}
"#,
        std::path::Path::new("seed.yml"),
    )
    .unwrap();
    let sb = sandbox::start(Options {
        speed: SPEED,
        seed: Some(seed),
        state_file: Some(state.clone()),
        ..Options::default()
    })
    .await
    .unwrap();
    let c = client(&sb, true);
    let s = describe(&c).await;
    assert_eq!(s.running_count(), 3, "seeded services start settled");
    let td = c
        .describe_task_definition()
        .task_definition("web")
        .send()
        .await
        .unwrap();
    assert_eq!(td.task_definition().unwrap().cpu(), Some("256"));
    assert_eq!(td.task_definition().unwrap().memory(), Some("1024"));
    assert_eq!(
        sb.control()
            .faults()
            .images
            .get("web:v9")
            .map(String::as_str),
        Some("pull-fail")
    );
    let (status, body) = raw(
        &sb,
        "POST",
        "/_sandbox/faults",
        None,
        r#"{"alarms": {"a1": "ALARM"}}"#,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        sb.control().faults().alarms.get("a1").map(String::as_str),
        Some("ALARM")
    );
    let (status, _) = raw(&sb, "POST", "/_sandbox/faults", None, "{not json").await;
    assert_eq!(status, 400);
    let (status, body) = raw(&sb, "GET", "/_sandbox/state", None, "").await;
    assert_eq!(status, 200);
    assert!(body.contains("\"serviceName\":\"web\""));
    sb.shutdown().await.unwrap();
    assert!(state.exists());

    // Restart from the state file: the service is still there.
    let sb = sandbox::start(Options {
        speed: SPEED,
        state_file: Some(state.clone()),
        ..Options::default()
    })
    .await
    .unwrap();
    let c = client(&sb, true);
    let s = describe(&c).await;
    assert_eq!(s.desired_count(), 3);
    assert_eq!(s.running_count(), 3);
    let (status, _) = raw(&sb, "POST", "/_sandbox/reset", None, "").await;
    assert_eq!(status, 200);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn boto3_can_drive_the_sandbox() {
    let ok = std::process::Command::new("python3")
        .args(["-c", "import boto3"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !ok {
        eprintln!("notice: boto3 is not installed; skipping the boto3 test");
        return;
    }
    let sb = start(SPEED).await;
    let script = r#"
import boto3
ecs = boto3.client("ecs")
ecs.create_cluster(clusterName="py")
td = ecs.register_task_definition(family="py", containerDefinitions=[{"name": "app", "image": "app:1", "memory": 128}])
arn = td["taskDefinition"]["taskDefinitionArn"]
svc = ecs.create_service(cluster="py", serviceName="api", taskDefinition=arn, desiredCount=1)
assert svc["service"]["deployments"][0]["status"] == "PRIMARY"
out = ecs.describe_services(cluster="py", services=["api", "ghost"])
assert out["services"][0]["taskDefinition"] == arn, out
assert out["failures"][0]["reason"] == "MISSING", out
try:
    ecs.describe_services(cluster="py", services=[str(i) for i in range(11)])
    raise SystemExit("expected InvalidParameterException")
except ecs.exceptions.InvalidParameterException:
    pass
print("boto3 ok", out["services"][0]["serviceName"])
"#;
    let ep = sb.endpoint();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new("python3")
            .args(["-c", script])
            .env("AWS_ENDPOINT_URL", ep)
            .env("AWS_ACCESS_KEY_ID", "sandbox")
            .env("AWS_SECRET_ACCESS_KEY", "sandbox")
            .env("AWS_DEFAULT_REGION", "us-east-1")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "boto3 script failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("boto3 ok api"));
}

/// S3 over the wire as SDKs send it to a custom endpoint: virtual-hosted
/// (`Host: BUCKET.localhost:PORT`) and path-style requests reach the same object, an
/// `aws-chunked` upload (a checksum trailer) is stored decoded, and the request log names the
/// operations.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_objects_by_virtual_host_and_path_with_chunked_uploads() {
    let sb = start(SPEED).await;
    let addr = sb.endpoint().trim_start_matches("http://").to_string();
    let port = addr.rsplit(':').next().unwrap().to_string();
    let send = |head: String, host: String, extra: &'static str, body: &'static str| {
        let addr = addr.clone();
        async move {
            let mut s = tokio::net::TcpStream::connect(&addr).await.unwrap();
            let req = format!(
                "{head} HTTP/1.1\r\nHost: {host}\r\n{extra}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            s.write_all(req.as_bytes()).await.unwrap();
            let mut out = String::new();
            s.read_to_string(&mut out).await.unwrap();
            let status: u16 = out
                .split(' ')
                .nth(1)
                .and_then(|c| c.parse().ok())
                .unwrap_or(0);
            (
                status,
                out.split_once("\r\n\r\n")
                    .map(|(_, b)| b.to_string())
                    .unwrap_or_default(),
            )
        }
    };
    let vhost = format!("states.localhost:{port}");
    assert_eq!(send("PUT /".into(), vhost.clone(), "", "").await.0, 200);
    let chunked = "Content-Encoding: aws-chunked\r\nx-amz-content-sha256: STREAMING-UNSIGNED-PAYLOAD-TRAILER\r\nx-amz-trailer: x-amz-checksum-crc32\r\n";
    let body = "e\r\n{\"version\": 4}\r\n0\r\nx-amz-checksum-crc32:AAAAAA==\r\n\r\n";
    let put = send(
        "PUT /net/terraform.tfstate?x-id=PutObject".into(),
        vhost.clone(),
        chunked,
        body,
    )
    .await;
    assert_eq!(put.0, 200, "{put:?}");
    for (head, host) in [
        ("GET /net/terraform.tfstate?x-id=GetObject", vhost.clone()),
        (
            "GET /states/net/terraform.tfstate?x-id=GetObject",
            addr.clone(),
        ),
    ] {
        let got = send(head.into(), host, "", "").await;
        assert_eq!(got, (200, "{\"version\": 4}".to_string()), "{head}");
    }
    let missing = send("GET /states/nope".into(), addr.clone(), "", "").await;
    assert_eq!(missing.0, 404);
    assert!(
        missing.1.contains("<Code>NoSuchKey</Code>"),
        "{}",
        missing.1
    );
    let ops: Vec<(String, String, bool)> = sb
        .control()
        .requests()
        .into_iter()
        .map(|r| (r.service, r.operation, r.mutating))
        .collect();
    let s3 = |op: &str, m: bool| ("s3".to_string(), op.to_string(), m);
    assert_eq!(
        ops,
        [
            s3("CreateBucket", true),
            s3("PutObject", true),
            s3("GetObject", false),
            s3("GetObject", false),
            s3("GetObject", false)
        ]
    );
}

/// Secrets Manager, CloudFormation and S3 as boto3 (an SDK we did not write) reads and writes
/// them: its parsers accept the sandbox's shapes and map its errors to the modelled exceptions.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn boto3_reads_and_writes_secrets_stacks_and_objects() {
    let ok = std::process::Command::new("python3")
        .args(["-c", "import boto3"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !ok {
        eprintln!("notice: boto3 is not installed; skipping the boto3 test");
        return;
    }
    let seed = cortado_sandbox::Seed::parse(
        "stacks:\n  - stackName: net\n    outputs: [{outputKey: VpcId, outputValue: vpc-1, exportName: net-vpc}]\n",
        std::path::Path::new("seed.yml"),
    )
    .unwrap();
    let sb = cortado_sandbox::start(cortado_sandbox::Options {
        seed: Some(seed),
        ..Default::default()
    })
    .await
    .unwrap();
    let script = r#"
import boto3
sm = boto3.client("secretsmanager")
arn = sm.create_secret(Name="app/db", SecretString="pw")["ARN"]
assert arn.startswith("arn:aws:secretsmanager:us-east-1:123456789012:secret:app/db-"), arn
assert sm.describe_secret(SecretId=arn)["Name"] == "app/db"
assert sm.get_secret_value(SecretId="app/db")["SecretString"] == "pw"
assert [s["Name"] for s in sm.list_secrets()["SecretList"]] == ["app/db"]
try:
    sm.describe_secret(SecretId="nope")
    raise SystemExit("expected ResourceNotFoundException")
except sm.exceptions.ResourceNotFoundException:
    pass
try:
    sm.create_secret(Name="app/db", SecretString="x")
    raise SystemExit("expected ResourceExistsException")
except sm.exceptions.ResourceExistsException:
    pass
cfn = boto3.client("cloudformation")
out = cfn.describe_stacks(StackName="net")["Stacks"][0]
assert out["StackStatus"] == "CREATE_COMPLETE", out
assert out["Outputs"] == [{"OutputKey": "VpcId", "OutputValue": "vpc-1", "ExportName": "net-vpc"}], out
assert [(e["Name"], e["Value"]) for e in cfn.list_exports()["Exports"]] == [("net-vpc", "vpc-1")]
try:
    cfn.describe_stacks(StackName="nope")
    raise SystemExit("expected ValidationError")
except cfn.exceptions.ClientError as e:
    assert e.response["Error"]["Code"] == "ValidationError", e.response
s3 = boto3.client("s3")
s3.create_bucket(Bucket="states")
s3.put_object(Bucket="states", Key="net/terraform.tfstate", Body=b'{"version": 4}')
assert s3.get_object(Bucket="states", Key="net/terraform.tfstate")["Body"].read() == b'{"version": 4}'
assert s3.head_object(Bucket="states", Key="net/terraform.tfstate")["ContentLength"] == 14
try:
    s3.get_object(Bucket="states", Key="nope")
    raise SystemExit("expected NoSuchKey")
except s3.exceptions.NoSuchKey:
    pass
try:
    s3.get_object(Bucket="nobucket", Key="k")
    raise SystemExit("expected NoSuchBucket")
except s3.exceptions.NoSuchBucket:
    pass
print("boto3 lookups ok")
"#;
    let ep = sb.endpoint();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new("python3")
            .args(["-c", script])
            .env("AWS_ENDPOINT_URL", ep)
            .env("AWS_ACCESS_KEY_ID", "sandbox")
            .env("AWS_SECRET_ACCESS_KEY", "sandbox")
            .env("AWS_DEFAULT_REGION", "us-east-1")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "boto3 script failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("boto3 lookups ok"));
}

// ------------------------------------------------------------ ELB-backed strategies

mod lb {
    use super::*;
    use aws_sdk_ecs::types::{
        AdvancedConfiguration, CanaryConfiguration, DeploymentLifecycleHook,
        DeploymentLifecycleHookStage, DeploymentLifecycleHookTargetType,
        DeploymentLifecycleHookTimeoutConfiguration, DeploymentStrategy, LinearConfiguration,
        LoadBalancer,
    };
    use aws_sdk_elasticloadbalancingv2 as elb;
    use elb::types::{
        Action, ActionTypeEnum, ForwardActionConfig, ProtocolEnum, RuleCondition,
        TargetGroupAttribute, TargetGroupTuple, TargetTypeEnum,
    };

    pub struct Alb {
        pub e: elb::Client,
        pub blue: String,
        pub green: String,
        pub prod_rule: String,
        pub test_rule: String,
        pub listeners: Vec<String>,
    }

    fn forward(pairs: &[(&str, i32)]) -> Action {
        let mut cfg = ForwardActionConfig::builder();
        for (arn, w) in pairs {
            cfg = cfg.target_groups(
                TargetGroupTuple::builder()
                    .target_group_arn(*arn)
                    .weight(*w)
                    .build(),
            );
        }
        Action::builder()
            .r#type(ActionTypeEnum::Forward)
            .forward_config(cfg.build())
            .build()
    }

    pub async fn alb(sb: &Sandbox) -> Alb {
        let conf = elb::Config::builder()
            .behavior_version(elb::config::BehaviorVersion::latest())
            .region(elb::config::Region::new("us-east-1"))
            .credentials_provider(elb::config::Credentials::new(
                "AKIDSANDBOX",
                "sandbox-secret",
                None,
                None,
                "test",
            ))
            .endpoint_url(sb.endpoint())
            .build();
        let e = elb::Client::from_conf(conf);
        let mut tgs = Vec::new();
        for name in ["blue", "green"] {
            let out = e
                .create_target_group()
                .name(name)
                .protocol(ProtocolEnum::Http)
                .port(80)
                .vpc_id("vpc-1")
                .target_type(TargetTypeEnum::Ip)
                .health_check_interval_seconds(5)
                .health_check_timeout_seconds(2)
                .healthy_threshold_count(2)
                .send()
                .await
                .unwrap();
            let arn = out.target_groups()[0]
                .target_group_arn()
                .unwrap()
                .to_string();
            e.modify_target_group_attributes()
                .target_group_arn(&arn)
                .attributes(
                    TargetGroupAttribute::builder()
                        .key("deregistration_delay.timeout_seconds")
                        .value("5")
                        .build(),
                )
                .send()
                .await
                .unwrap();
            tgs.push(arn);
        }
        let lb = e
            .create_load_balancer()
            .name("alb")
            .subnets("subnet-1")
            .subnets("subnet-2")
            .send()
            .await
            .unwrap();
        let lb_arn = lb.load_balancers()[0]
            .load_balancer_arn()
            .unwrap()
            .to_string();
        let mut rules = Vec::new();
        let mut listeners = Vec::new();
        for port in [80, 8080] {
            let l = e
                .create_listener()
                .load_balancer_arn(&lb_arn)
                .port(port)
                .protocol(ProtocolEnum::Http)
                .default_actions(forward(&[(&tgs[0], 1)]))
                .send()
                .await
                .unwrap();
            let larn = l.listeners()[0].listener_arn().unwrap().to_string();
            listeners.push(larn.clone());
            let r = e
                .create_rule()
                .listener_arn(&larn)
                .priority(1)
                .conditions(
                    RuleCondition::builder()
                        .field("path-pattern")
                        .values("/*")
                        .build(),
                )
                .actions(forward(&[(&tgs[0], 100), (&tgs[1], 0)]))
                .send()
                .await
                .unwrap();
            rules.push(r.rules()[0].rule_arn().unwrap().to_string());
        }
        Alb {
            e,
            blue: tgs[0].clone(),
            green: tgs[1].clone(),
            prod_rule: rules[0].clone(),
            test_rule: rules[1].clone(),
            listeners,
        }
    }

    /// Weight of `tg` in a listener's default forward action.
    pub async fn listener_weight(a: &Alb, listener: &str, tg: &str) -> i32 {
        let out =
            a.e.describe_listeners()
                .listener_arns(listener)
                .send()
                .await
                .unwrap();
        let tgs = out.listeners()[0].default_actions()[0]
            .forward_config()
            .unwrap()
            .target_groups()
            .to_vec();
        tgs.iter()
            .find(|t| t.target_group_arn() == Some(tg))
            .and_then(|t| t.weight())
            .unwrap_or(0)
    }

    /// Weight of `tg` in a rule's forward action.
    pub async fn weight(a: &Alb, rule: &str, tg: &str) -> i32 {
        let out = a.e.describe_rules().rule_arns(rule).send().await.unwrap();
        let tgs = out.rules()[0].actions()[0]
            .forward_config()
            .unwrap()
            .target_groups()
            .to_vec();
        tgs.iter()
            .find(|t| t.target_group_arn() == Some(tg))
            .and_then(|t| t.weight())
            .unwrap_or(0)
    }

    pub async fn service(c: &Client, a: &Alb, cfg: DeploymentConfiguration) -> String {
        c.create_cluster().cluster_name("c1").send().await.unwrap();
        let td = register(c, "web:v1").await;
        c.create_service()
            .cluster("c1")
            .service_name("web")
            .task_definition(&td)
            .desired_count(2)
            .launch_type(LaunchType::Fargate)
            .network_configuration(network())
            .load_balancers(
                LoadBalancer::builder()
                    .target_group_arn(&a.blue)
                    .container_name("web")
                    .container_port(80)
                    .advanced_configuration(
                        AdvancedConfiguration::builder()
                            .alternate_target_group_arn(&a.green)
                            .production_listener_rule(&a.prod_rule)
                            .test_listener_rule(&a.test_rule)
                            .role_arn("arn:aws:iam::123456789012:role/ecs-bg")
                            .build(),
                    )
                    .build(),
            )
            .deployment_configuration(cfg)
            .send()
            .await
            .unwrap();
        wait(c, "initial deployment", |s| {
            s.deployments().len() == 1
                && s.deployments()[0].rollout_state().map(|r| r.as_str()) == Some("COMPLETED")
                && s.running_count() == 2
        })
        .await;
        td
    }

    fn pause_hook() -> DeploymentLifecycleHook {
        DeploymentLifecycleHook::builder()
            .target_type(DeploymentLifecycleHookTargetType::Pause)
            .lifecycle_stages(DeploymentLifecycleHookStage::PostTestTrafficShift)
            .timeout_configuration(
                DeploymentLifecycleHookTimeoutConfiguration::builder()
                    .timeout_in_minutes(600)
                    .action(aws_sdk_ecs::types::DeploymentLifecycleHookAction::Rollback)
                    .build(),
            )
            .build()
    }

    async fn awaiting_hook(c: &Client, sd_arn: &str) -> String {
        let start = Instant::now();
        loop {
            let sd = sd_status(c, sd_arn).await;
            if let Some(h) = sd
                .lifecycle_hook_details()
                .iter()
                .find(|h| h.status().map(|s| s.as_str()) == Some("AWAITING_ACTION"))
            {
                assert_eq!(
                    sd.lifecycle_stage().map(|s| s.as_str()),
                    Some("POST_TEST_TRAFFIC_SHIFT")
                );
                return h.hook_id().unwrap().to_string();
            }
            assert!(
                start.elapsed() < Duration::from_secs(15),
                "no hook awaiting action: {sd:#?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// A service definition written for a real account (target groups and listener rules named
    /// by ARN, as `cortado deploy --sandbox` hands them to `Prepare`): Prepare creates the
    /// alternate group and the rules, CreateService accepts them, and a blue/green deployment
    /// with a PAUSE hook after the test traffic shift moves the rule weights stage by stage.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn blue_green_after_prepare_shifts_rule_weights_in_order() {
        const ACCT: &str = "arn:aws:elasticloadbalancing:us-east-1:123456789012";
        let main_tg = format!("{ACCT}:targetgroup/hello/0123456789abcdef");
        let alt_tg = format!("{ACCT}:targetgroup/hello-green/fedcba9876543210");
        let prod_rule = format!(
            "{ACCT}:listener-rule/app/hello/50dc6c495c0c9188/f2f7dc8efc522ab2/9683b2d02a6cabee"
        );
        let test_rule = format!(
            "{ACCT}:listener-rule/app/hello/50dc6c495c0c9188/0467ef3c8400ae65/8ee6ab2f1f9a6c2d"
        );
        let sb = start(200.0).await;
        let prep = sandbox::Prepare {
            cluster: "c1".into(),
            service: Some("web".into()),
            target_groups: vec![main_tg.clone()],
            images: Vec::new(),
            blue_green: vec![sandbox::PrepareBlueGreen {
                target_group: main_tg.clone(),
                alternate_target_group: alt_tg.clone(),
                production_listener_rule: Some(prod_rule.clone()),
                test_listener_rule: Some(test_rule.clone()),
            }],
            ..Default::default()
        };
        let created = prep.apply(&sb).unwrap();
        assert!(
            created.iter().any(|l| l == "target group hello-green"),
            "{created:?}"
        );
        assert!(
            created
                .iter()
                .any(|l| l.starts_with(&format!("production listener rule {prod_rule}"))),
            "{created:?}"
        );
        // Idempotent: a second prepare creates nothing.
        assert_eq!(prep.apply(&sb).unwrap(), Vec::<String>::new());
        let conf = elb::Config::builder()
            .behavior_version(elb::config::BehaviorVersion::latest())
            .region(elb::config::Region::new("us-east-1"))
            .credentials_provider(elb::config::Credentials::new(
                "AKIDSANDBOX",
                "sandbox-secret",
                None,
                None,
                "test",
            ))
            .endpoint_url(sb.endpoint())
            .build();
        let e = elb::Client::from_conf(conf);
        // Each rule's ARN names its listener, as on AWS: that listener exists, on the port the
        // sandbox put the rule on, and its load balancer has a DNS name (a gate's test URL).
        for (rule, port) in [(&prod_rule, 80), (&test_rule, 8080)] {
            let listener = rule
                .replace(":listener-rule/", ":listener/")
                .rsplit_once('/')
                .unwrap()
                .0
                .to_string();
            let out = e
                .describe_listeners()
                .listener_arns(&listener)
                .send()
                .await
                .unwrap();
            let l = &out.listeners()[0];
            assert_eq!(l.port(), Some(port), "{l:?}");
            let lbs = e
                .describe_load_balancers()
                .load_balancer_arns(l.load_balancer_arn().unwrap())
                .send()
                .await
                .unwrap();
            assert!(lbs.load_balancers()[0].dns_name().is_some());
        }
        // green share of production and test traffic, from DescribeRules.
        let green_weights = || async {
            let out = e
                .describe_rules()
                .rule_arns(&prod_rule)
                .rule_arns(&test_rule)
                .send()
                .await
                .unwrap();
            let share = |arn: &str| {
                let r = out
                    .rules()
                    .iter()
                    .find(|r| r.rule_arn() == Some(arn))
                    .unwrap();
                let tgs = r.actions()[0].forward_config().unwrap().target_groups();
                let w = |tg: &str| {
                    tgs.iter()
                        .find(|t| t.target_group_arn() == Some(tg))
                        .and_then(|t| t.weight())
                        .unwrap()
                };
                assert_eq!(w(&main_tg) + w(&alt_tg), 100, "{r:?}");
                w(&alt_tg)
            };
            (share(&prod_rule), share(&test_rule))
        };
        assert_eq!(green_weights().await, (0, 0));
        // The production rule sits on port 80, the test rule on 8080.
        let lbs = e
            .describe_load_balancers()
            .names("sandbox-web")
            .send()
            .await
            .unwrap();
        let lb_arn = lbs.load_balancers()[0]
            .load_balancer_arn()
            .unwrap()
            .to_string();
        let listeners = e
            .describe_listeners()
            .load_balancer_arn(&lb_arn)
            .send()
            .await
            .unwrap();
        for (port, rule) in [(80, &prod_rule), (8080, &test_rule)] {
            let l = listeners
                .listeners()
                .iter()
                .find(|l| l.port() == Some(port))
                .unwrap();
            let rules = e
                .describe_rules()
                .listener_arn(l.listener_arn().unwrap())
                .send()
                .await
                .unwrap();
            assert!(
                rules
                    .rules()
                    .iter()
                    .any(|r| r.rule_arn() == Some(rule.as_str())),
                "{rules:?}"
            );
        }

        let c = client(&sb, true);
        let td = register(&c, "web:v1").await;
        c.create_service()
            .cluster("c1")
            .service_name("web")
            .task_definition(&td)
            .desired_count(2)
            .launch_type(LaunchType::Fargate)
            .network_configuration(network())
            .load_balancers(
                LoadBalancer::builder()
                    .target_group_arn(&main_tg)
                    .container_name("web")
                    .container_port(80)
                    .advanced_configuration(
                        AdvancedConfiguration::builder()
                            .alternate_target_group_arn(&alt_tg)
                            .production_listener_rule(&prod_rule)
                            .test_listener_rule(&test_rule)
                            .role_arn("arn:aws:iam::123456789012:role/ecs-bg")
                            .build(),
                    )
                    .build(),
            )
            .deployment_configuration(
                DeploymentConfiguration::builder()
                    .strategy(DeploymentStrategy::BlueGreen)
                    .lifecycle_hooks(pause_hook())
                    .build(),
            )
            .send()
            .await
            .unwrap();
        wait(&c, "initial deployment", |s| {
            s.deployments().len() == 1
                && s.deployments()[0].rollout_state().map(|r| r.as_str()) == Some("COMPLETED")
                && s.running_count() == 2
        })
        .await;
        let v2 = register(&c, "web:v2").await;
        let (_ours, sd_arn) = update(&c, &v2).await;
        // (lifecycle stage, green share of production, green share of test), on each change.
        let mut seen: Vec<(String, i32, i32)> = Vec::new();
        let mut continued = false;
        let started = Instant::now();
        loop {
            // Weights read before and after the stage: a sample counts only when they agree
            // (weights only grow, so the stage was seen while they held).
            let before = green_weights().await;
            let sd = sd_status(&c, &sd_arn).await;
            let (prod, test) = green_weights().await;
            if before != (prod, test) {
                continue;
            }
            let status = sd.status().unwrap().as_str().to_string();
            let stage = sd
                .lifecycle_stage()
                .map(|s| s.as_str().to_string())
                .unwrap_or_else(|| status.clone());
            if seen.last() != Some(&(stage.clone(), prod, test)) {
                seen.push((stage.clone(), prod, test));
            }
            if !continued
                && let Some(h) = sd
                    .lifecycle_hook_details()
                    .iter()
                    .find(|h| h.status().map(|s| s.as_str()) == Some("AWAITING_ACTION"))
            {
                assert_eq!(stage, "POST_TEST_TRAFFIC_SHIFT");
                assert_eq!(h.target_type().map(|t| t.as_str()), Some("PAUSE"));
                // Both revisions run: blue healthy in the main group, green in the alternate.
                for tg in [&main_tg, &alt_tg] {
                    let th = e
                        .describe_target_health()
                        .target_group_arn(tg)
                        .send()
                        .await
                        .unwrap();
                    let states: Vec<&str> = th
                        .target_health_descriptions()
                        .iter()
                        .filter_map(|t| t.target_health()?.state().map(|s| s.as_str()))
                        .collect();
                    assert_eq!(states, ["healthy", "healthy"], "{tg}");
                }
                c.continue_service_deployment()
                    .service_deployment_arn(&sd_arn)
                    .hook_id(h.hook_id().unwrap())
                    .action(aws_sdk_ecs::types::DeploymentLifecycleHookAction::Continue)
                    .send()
                    .await
                    .unwrap();
                continued = true;
            }
            if status == "SUCCESSFUL" {
                break;
            }
            assert!(started.elapsed() < Duration::from_secs(20), "{seen:?}");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert!(continued, "{seen:?}");
        eprintln!("stages and green weights (production, test): {seen:?}");
        // Stages come in ECS's order.
        let order = [
            "RECONCILE_SERVICE",
            "PRE_SCALE_UP",
            "SCALE_UP",
            "POST_SCALE_UP",
            "TEST_TRAFFIC_SHIFT",
            "POST_TEST_TRAFFIC_SHIFT",
            "PRODUCTION_TRAFFIC_SHIFT",
            "POST_PRODUCTION_TRAFFIC_SHIFT",
            "BAKE_TIME",
            "CLEAN_UP",
            "SUCCESSFUL",
        ];
        let pos: Vec<usize> = seen
            .iter()
            .map(|(st, _, _)| order.iter().position(|o| o == st).expect(st))
            .collect();
        assert!(pos.windows(2).all(|w| w[0] <= w[1]), "{seen:?}");
        // No traffic on green before the test shift; test traffic first, production after the
        // hook was continued; all of it at the end.
        assert_eq!((seen[0].1, seen[0].2), (0, 0), "{seen:?}");
        assert!(
            seen.contains(&("POST_TEST_TRAFFIC_SHIFT".into(), 0, 100)),
            "{seen:?}"
        );
        for (st, prod, test) in &seen {
            let p = order.iter().position(|o| o == st).unwrap();
            if p < 4 {
                assert_eq!((*prod, *test), (0, 0), "{seen:?}");
            }
            if p <= 5 {
                assert_eq!(*prod, 0, "{seen:?}");
            }
            if p >= 7 {
                assert_eq!(*prod, 100, "{seen:?}");
            }
        }
        assert_eq!(
            seen.last().map(|x| (x.1, x.2)),
            Some((100, 100)),
            "{seen:?}"
        );
        let s = wait(&c, "blue cleaned up", |s| {
            s.running_count() == 2 && s.deployments().len() == 1
        })
        .await;
        assert_eq!(s.task_definition(), Some(v2.as_str()));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn blue_green_with_pause_hook_continued_then_rolled_back() {
        let sb = start(600.0).await;
        let c = client(&sb, true);
        let a = alb(&sb).await;
        let cfg = DeploymentConfiguration::builder()
            .strategy(DeploymentStrategy::BlueGreen)
            .bake_time_in_minutes(1)
            .lifecycle_hooks(pause_hook())
            .build();
        let v1 = service(&c, &a, cfg).await;
        assert_eq!(weight(&a, &a.prod_rule, &a.blue).await, 100);
        // Blue tasks are registered and healthy in the blue target group.
        let th =
            a.e.describe_target_health()
                .target_group_arn(&a.blue)
                .send()
                .await
                .unwrap();
        assert_eq!(th.target_health_descriptions().len(), 2);

        let v2 = register(&c, "web:v2").await;
        let (_ours, sd_arn) = update(&c, &v2).await;
        let hook = awaiting_hook(&c, &sd_arn).await;
        // Test traffic is on green, production still on blue, both revisions run.
        assert_eq!(weight(&a, &a.test_rule, &a.green).await, 100);
        assert_eq!(weight(&a, &a.prod_rule, &a.blue).await, 100);
        assert_eq!(describe(&c).await.running_count(), 4);
        let err = c
            .continue_service_deployment()
            .service_deployment_arn(&sd_arn)
            .hook_id("nope")
            .send()
            .await
            .unwrap_err();
        assert_eq!(err.code(), Some("InvalidParameterException"));
        c.continue_service_deployment()
            .service_deployment_arn(&sd_arn)
            .hook_id(&hook)
            .action(aws_sdk_ecs::types::DeploymentLifecycleHookAction::Continue)
            .send()
            .await
            .unwrap();
        wait_sd(&c, &sd_arn, "SUCCESSFUL").await;
        assert_eq!(weight(&a, &a.prod_rule, &a.green).await, 100);
        assert_eq!(weight(&a, &a.prod_rule, &a.blue).await, 0);
        let s = wait(&c, "blue cleaned up", |s| s.running_count() == 2).await;
        assert_eq!(s.task_definition(), Some(v2.as_str()));
        let th =
            a.e.describe_target_health()
                .target_group_arn(&a.green)
                .send()
                .await
                .unwrap();
        assert!(
            th.target_health_descriptions().iter().all(|t| t
                .target_health()
                .unwrap()
                .state()
                .unwrap()
                .as_str()
                == "healthy")
        );
        assert_ne!(v1, v2);

        // Next deployment goes to the blue group; the operator rolls it back at the hook.
        let v3 = register(&c, "web:v3").await;
        let v2_deployment = describe(&c).await.deployments()[0]
            .id()
            .unwrap()
            .to_string();
        let (ours3, sd3) = update(&c, &v3).await;
        let hook = awaiting_hook(&c, &sd3).await;
        assert_eq!(weight(&a, &a.test_rule, &a.blue).await, 100);
        c.continue_service_deployment()
            .service_deployment_arn(&sd3)
            .hook_id(&hook)
            .action(aws_sdk_ecs::types::DeploymentLifecycleHookAction::Rollback)
            .send()
            .await
            .unwrap();
        let sd = wait_sd(&c, &sd3, "ROLLBACK_SUCCESSFUL").await;
        assert!(sd.rollback().is_some());
        assert_eq!(weight(&a, &a.prod_rule, &a.green).await, 100);
        assert_eq!(weight(&a, &a.test_rule, &a.green).await, 100);
        let s = wait(&c, "green serving v2", |s| {
            s.running_count() == 2 && s.deployments().len() == 1
        })
        .await;
        assert_eq!(s.task_definition(), Some(v2.as_str()));
        // The v2 deployment (same id) is PRIMARY and COMPLETED again; the event names both.
        assert_eq!(s.deployments()[0].id(), Some(v2_deployment.as_str()));
        assert_eq!(
            s.deployments()[0].rollout_state().map(|r| r.as_str()),
            Some("COMPLETED")
        );
        let rolling_back = format!(
            "(service web) (deployment {ours3}) rolling back to deployment {v2_deployment}."
        );
        assert!(
            s.events()
                .iter()
                .any(|e| e.message() == Some(rolling_back.as_str())),
            "{:?}",
            s.events()
        );
    }

    async fn observe_weights(c: &Client, a: &Alb, sd_arn: &str, tg: &str) -> Vec<i32> {
        let mut seen: Vec<i32> = Vec::new();
        let start = Instant::now();
        loop {
            let w = weight(a, &a.prod_rule, tg).await;
            if seen.last() != Some(&w) {
                seen.push(w);
            }
            let sd = sd_status(c, sd_arn).await;
            if sd.status().map(|s| s.as_str()) == Some("SUCCESSFUL") {
                return seen;
            }
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "deployment did not finish: {seen:?} {sd:#?}"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn canary_and_linear_weight_sequences() {
        let sb = start(300.0).await;
        let c = client(&sb, true);
        let a = alb(&sb).await;
        let cfg = DeploymentConfiguration::builder()
            .strategy(DeploymentStrategy::Canary)
            .canary_configuration(
                CanaryConfiguration::builder()
                    .canary_percent(20.0)
                    .canary_bake_time_in_minutes(2)
                    .build(),
            )
            .build();
        service(&c, &a, cfg).await;
        let v2 = register(&c, "web:v2").await;
        let (_id, sd) = update(&c, &v2).await;
        let seen = observe_weights(&c, &a, &sd, &a.green).await;
        assert_eq!(
            seen,
            vec![0, 20, 100],
            "canary: production weight of the new target group"
        );

        c.update_service()
            .cluster("c1")
            .service("web")
            .deployment_configuration(
                DeploymentConfiguration::builder()
                    .strategy(DeploymentStrategy::Linear)
                    .linear_configuration(
                        LinearConfiguration::builder()
                            .step_percent(25.0)
                            .step_bake_time_in_minutes(2)
                            .build(),
                    )
                    .build(),
            )
            .send()
            .await
            .unwrap();
        let v3 = register(&c, "web:v3").await;
        let (_id, sd) = update(&c, &v3).await;
        let seen = observe_weights(&c, &a, &sd, &a.blue).await;
        assert_eq!(
            seen,
            vec![0, 25, 50, 75, 100],
            "linear: production weight of the new target group"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn codedeploy_blue_green_on_a_code_deploy_service() {
        use aws_sdk_codedeploy as cd;
        let sb = start(600.0).await;
        let c = client(&sb, true);
        let a = alb(&sb).await;
        let conf = cd::Config::builder()
            .behavior_version(cd::config::BehaviorVersion::latest())
            .region(cd::config::Region::new("us-east-1"))
            .credentials_provider(cd::config::Credentials::new(
                "AKIDSANDBOX",
                "sandbox-secret",
                None,
                None,
                "test",
            ))
            .endpoint_url(sb.endpoint())
            .build();
        let d = cd::Client::from_conf(conf);
        c.create_cluster().cluster_name("c1").send().await.unwrap();
        let v1 = register(&c, "web:v1").await;
        c.create_service()
            .cluster("c1")
            .service_name("web")
            .task_definition(&v1)
            .desired_count(2)
            .launch_type(LaunchType::Fargate)
            .network_configuration(network())
            .deployment_controller(
                aws_sdk_ecs::types::DeploymentController::builder()
                    .r#type(aws_sdk_ecs::types::DeploymentControllerType::CodeDeploy)
                    .build()
                    .unwrap(),
            )
            .load_balancers(
                LoadBalancer::builder()
                    .target_group_arn(&a.blue)
                    .container_name("web")
                    .container_port(80)
                    .build(),
            )
            .send()
            .await
            .unwrap();
        wait(&c, "initial tasks", |s| s.running_count() == 2).await;
        d.create_application()
            .application_name("app")
            .compute_platform(cd::types::ComputePlatform::Ecs)
            .send()
            .await
            .unwrap();
        let pair = cd::types::TargetGroupPairInfo::builder()
            .target_groups(cd::types::TargetGroupInfo::builder().name("blue").build())
            .target_groups(cd::types::TargetGroupInfo::builder().name("green").build())
            .prod_traffic_route(
                cd::types::TrafficRoute::builder()
                    .listener_arns(&a.listeners[0])
                    .build(),
            )
            .test_traffic_route(
                cd::types::TrafficRoute::builder()
                    .listener_arns(&a.listeners[1])
                    .build(),
            )
            .build();
        d.create_deployment_group()
            .application_name("app")
            .deployment_group_name("dg")
            .service_role_arn("arn:aws:iam::123456789012:role/cd")
            .deployment_config_name("CodeDeployDefault.ECSLinear10PercentEvery1Minutes")
            .ecs_services(
                cd::types::EcsService::builder()
                    .cluster_name("c1")
                    .service_name("web")
                    .build(),
            )
            .load_balancer_info(
                cd::types::LoadBalancerInfo::builder()
                    .target_group_pair_info_list(pair)
                    .build(),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(
            d.list_applications().send().await.unwrap().applications(),
            ["app".to_string()]
        );
        let g = d
            .get_deployment_group()
            .application_name("app")
            .deployment_group_name("dg")
            .send()
            .await
            .unwrap();
        assert_eq!(
            g.deployment_group_info().unwrap().deployment_config_name(),
            Some("CodeDeployDefault.ECSLinear10PercentEvery1Minutes")
        );
        // ECS refuses a task definition change on a CODE_DEPLOY service.
        let v2 = register(&c, "web:v2").await;
        let err = c
            .update_service()
            .cluster("c1")
            .service("web")
            .task_definition(&v2)
            .send()
            .await
            .unwrap_err();
        assert_eq!(err.code(), Some("InvalidParameterException"));
        let appspec = format!(
            r#"{{"version": 0.0, "Resources": [{{"TargetService": {{"Type": "AWS::ECS::Service", "Properties": {{"TaskDefinition": "{v2}", "LoadBalancerInfo": {{"ContainerName": "web", "ContainerPort": 80}}}}}}}}]}}"#
        );
        let out = d
            .create_deployment()
            .application_name("app")
            .deployment_group_name("dg")
            .revision(
                cd::types::RevisionLocation::builder()
                    .revision_type(cd::types::RevisionLocationType::AppSpecContent)
                    .app_spec_content(
                        cd::types::AppSpecContent::builder()
                            .content(appspec)
                            .build(),
                    )
                    .build(),
            )
            .send()
            .await
            .unwrap();
        let id = out.deployment_id().unwrap().to_string();
        let start = Instant::now();
        let mut weights: Vec<i64> = Vec::new();
        loop {
            let t = d
                .get_deployment_target()
                .deployment_id(&id)
                .target_id("c1:web")
                .send()
                .await
                .unwrap();
            let ecs = t.deployment_target().unwrap().ecs_target().unwrap().clone();
            if let Some(green) = ecs
                .task_sets_info()
                .iter()
                .find(|s| s.task_set_label() == Some(&cd::types::TargetLabel::Green))
            {
                let w = green.traffic_weight() as i64;
                if weights.last() != Some(&w) {
                    weights.push(w);
                }
            }
            let info = d.get_deployment().deployment_id(&id).send().await.unwrap();
            if info.deployment_info().unwrap().status()
                == Some(&cd::types::DeploymentStatus::Succeeded)
            {
                assert!(
                    ecs.lifecycle_events()
                        .iter()
                        .all(|e| e.status() == Some(&cd::types::LifecycleEventStatus::Succeeded))
                );
                break;
            }
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "CodeDeploy deployment stuck: {info:#?}"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert_eq!(weights.first(), Some(&0));
        assert!(
            weights.contains(&10) && weights.contains(&50),
            "linear 10% steps: {weights:?}"
        );
        assert_eq!(listener_weight(&a, &a.listeners[0], &a.green).await, 100);
        let s = wait(&c, "blue gone", |s| {
            s.running_count() == 2 && s.deployments().len() == 1
        })
        .await;
        assert_eq!(s.task_definition(), Some(v2.as_str()));
        let ids = d
            .list_deployments()
            .application_name("app")
            .deployment_group_name("dg")
            .send()
            .await
            .unwrap();
        assert_eq!(ids.deployments(), std::slice::from_ref(&id));
        let err = d
            .stop_deployment()
            .deployment_id(&id)
            .send()
            .await
            .unwrap_err();
        assert_eq!(err.code(), Some("DeploymentAlreadyCompletedException"));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn lambda_hook_failure_rolls_blue_green_back() {
        let sb = start(600.0).await;
        let c = client(&sb, true);
        let a = alb(&sb).await;
        let hook = DeploymentLifecycleHook::builder()
            .target_type(DeploymentLifecycleHookTargetType::AwsLambda)
            .hook_target_arn("arn:aws:lambda:us-east-1:123456789012:function:smoke")
            .role_arn("arn:aws:iam::123456789012:role/hook")
            .lifecycle_stages(DeploymentLifecycleHookStage::PostScaleUp)
            .build();
        let cfg = DeploymentConfiguration::builder()
            .strategy(DeploymentStrategy::BlueGreen)
            .lifecycle_hooks(hook)
            .build();
        let v1 = service(&c, &a, cfg).await;
        let v2 = register(&c, "web:v2--hook-fail").await;
        let (_ours, sd_arn) = update(&c, &v2).await;
        let sd = wait_sd(&c, &sd_arn, "ROLLBACK_SUCCESSFUL").await;
        let h = &sd.lifecycle_hook_details()[0];
        assert_eq!(h.status().map(|s| s.as_str()), Some("FAILED"));
        assert_eq!(
            h.target_arn(),
            Some("arn:aws:lambda:us-east-1:123456789012:function:smoke")
        );
        assert_eq!(
            weight(&a, &a.prod_rule, &a.blue).await,
            100,
            "production traffic never left blue"
        );
        let s = wait(&c, "green gone", |s| {
            s.running_count() == 2 && s.deployments().len() == 1
        })
        .await;
        assert_eq!(s.task_definition(), Some(v1.as_str()));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn rolling_behind_elb_fails_on_elb_health_and_missing_ecr_image() {
        let sb = start(600.0).await;
        let c = client(&sb, true);
        let a = alb(&sb).await;
        let cfg = DeploymentConfiguration::builder()
            .deployment_circuit_breaker(
                DeploymentCircuitBreaker::builder()
                    .enable(true)
                    .rollback(true)
                    .build(),
            )
            .build();
        let v1 = service(&c, &a, cfg).await;
        let v2 = register(&c, "web:v2--elb-unhealthy").await;
        let (ours, sd_arn) = update(&c, &v2).await;
        wait_sd(&c, &sd_arn, "ROLLBACK_SUCCESSFUL").await;
        let failed = stopped_tasks(&c, &ours).await;
        assert!(failed.len() >= 3);
        assert!(
            failed
                .iter()
                .any(|t| t.stopped_reason().unwrap_or("").starts_with(
                    "Task failed ELB health checks in (target-group arn:aws:elasticloadbalancing:"
                )),
            "{failed:#?}"
        );
        let s = describe(&c).await;
        assert_eq!(s.task_definition(), Some(v1.as_str()));
        assert!(s.events().iter().any(|e| {
            e.message()
                .unwrap_or("")
                .contains("is unhealthy in (target-group")
        }));

        // An image of the sandbox's ECR registry that was never pushed cannot be pulled.
        let v3 = register(
            &c,
            "123456789012.dkr.ecr.us-east-1.amazonaws.com/web:missing",
        )
        .await;
        let (ours, sd_arn) = update(&c, &v3).await;
        wait_sd(&c, &sd_arn, "ROLLBACK_SUCCESSFUL").await;
        let failed = stopped_tasks(&c, &ours).await;
        // Tasks still pending when the rollback began are stopped by the scheduler instead.
        let pull: Vec<_> = failed
            .iter()
            .filter(|t| t.stop_code().map(|c| c.as_str()) == Some("TaskFailedToStart"))
            .collect();
        assert!(pull.len() >= 3, "{failed:#?}");
        assert!(
            pull.iter().all(|t| t
                .stopped_reason()
                .unwrap_or("")
                .starts_with("CannotPullContainerError")),
            "{failed:#?}"
        );
    }

    /// One task of service `web` in cluster c1, whatever its state.
    async fn only_task(c: &Client, desired: DesiredStatus) -> aws_sdk_ecs::types::Task {
        let arns = c
            .list_tasks()
            .cluster("c1")
            .service_name("web")
            .desired_status(desired)
            .send()
            .await
            .unwrap()
            .task_arns()
            .to_vec();
        assert_eq!(arns.len(), 1, "{arns:?}");
        c.describe_tasks()
            .cluster("c1")
            .set_tasks(Some(arns))
            .send()
            .await
            .unwrap()
            .tasks()[0]
            .clone()
    }

    fn secs(t: Option<&aws_sdk_ecs::primitives::DateTime>) -> f64 {
        t.map(|d| d.as_secs_f64()).unwrap_or(f64::NAN)
    }

    /// "Amazon ECS task lifecycle": DEACTIVATING is the load-balancer deregistration. A task
    /// whose essential container exited has no connection left to drain: it stops within
    /// seconds, `executionStoppedAt` is the crash, and its target still shows `draining` for the
    /// deregistration delay ("Deregistration delay"). A task the scheduler stops while its
    /// container runs stays DEACTIVATING for the delay, then STOPPING, DEPROVISIONING, STOPPED.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn stopping_tasks_follow_the_documented_lifecycle() {
        let sb = start(1.0).await;
        let ctl = sb.control();
        let c = client(&sb, true);
        let a = alb(&sb).await;
        a.e.modify_target_group_attributes()
            .target_group_arn(&a.blue)
            .attributes(
                TargetGroupAttribute::builder()
                    .key("deregistration_delay.timeout_seconds")
                    .value("300")
                    .build(),
            )
            .send()
            .await
            .unwrap();
        c.create_cluster().cluster_name("c1").send().await.unwrap();
        let td = register(&c, "web:v1--crash-60s").await;
        c.create_service()
            .cluster("c1")
            .service_name("web")
            .task_definition(&td)
            .desired_count(1)
            .launch_type(LaunchType::Fargate)
            .network_configuration(network())
            .load_balancers(
                LoadBalancer::builder()
                    .target_group_arn(&a.blue)
                    .container_name("web")
                    .container_port(80)
                    .build(),
            )
            .send()
            .await
            .unwrap();
        // Provisioning and pulling take at most 36 s; the container crashes 60 s after start.
        ctl.advance(40.0);
        let t = only_task(&c, DesiredStatus::Running).await;
        assert_eq!(t.last_status(), Some("RUNNING"));
        let started = secs(t.started_at());
        ctl.advance(started + 61.0 - ctl.now());
        let t = only_task(&c, DesiredStatus::Stopped).await;
        let crashed = secs(t.stopping_at());
        assert!((crashed - (started + 60.0)).abs() < 1.5, "{t:#?}");
        ctl.advance(10.0);
        let t = only_task(&c, DesiredStatus::Stopped).await;
        assert_eq!(t.last_status(), Some("STOPPED"), "{t:#?}");
        assert_eq!(
            t.stop_code().map(|c| c.as_str()),
            Some("EssentialContainerExited")
        );
        assert!(
            (secs(t.execution_stopped_at()) - crashed).abs() < 0.01,
            "{t:#?}"
        );
        assert!(secs(t.stopped_at()) - crashed < 10.0, "{t:#?}");
        // The crashed task's target drains for the whole deregistration delay.
        let states = health_states(&a, &a.blue).await;
        assert!(states.contains(&"draining".to_string()), "{states:?}");
        ctl.advance(200.0);
        let states = health_states(&a, &a.blue).await;
        assert!(states.contains(&"draining".to_string()), "{states:?}");

        // A healthy task stopped by the scheduler drains first.
        let v2 = register(&c, "web:v2").await;
        c.update_service()
            .cluster("c1")
            .service("web")
            .task_definition(&v2)
            .send()
            .await
            .unwrap();
        ctl.advance(400.0);
        let t = only_task(&c, DesiredStatus::Running).await;
        assert_eq!(t.last_status(), Some("RUNNING"));
        c.update_service()
            .cluster("c1")
            .service("web")
            .desired_count(0)
            .send()
            .await
            .unwrap();
        let arn = t.task_arn().unwrap().to_string();
        let task = |c: Client| {
            let arn = arn.clone();
            async move {
                c.describe_tasks()
                    .cluster("c1")
                    .tasks(arn)
                    .send()
                    .await
                    .unwrap()
                    .tasks()[0]
                    .clone()
            }
        };
        let mut seen = Vec::new();
        for _ in 0..40 {
            ctl.advance(10.0);
            let t = task(c.clone()).await;
            let st = t.last_status().unwrap_or_default().to_string();
            if seen.last() != Some(&st) {
                seen.push(st);
            }
            if t.last_status() == Some("STOPPED") {
                let stopping = secs(t.stopping_at());
                let exec = secs(t.execution_stopped_at());
                assert!(exec >= stopping + 300.0, "{t:#?}");
                assert!(secs(t.stopped_at()) >= exec, "{t:#?}");
                break;
            }
        }
        assert_eq!(
            seen.first().map(String::as_str),
            Some("DEACTIVATING"),
            "{seen:?}"
        );
        assert_eq!(seen.last().map(String::as_str), Some("STOPPED"), "{seen:?}");
        let deactivating = seen.iter().filter(|s| *s == "DEACTIVATING").count();
        assert_eq!(deactivating, 1, "{seen:?}");
    }

    /// DescribeTasks reports the task definition's CPU architecture; task definitions carry
    /// the `requiresAttributes` ECS derives from the features they use.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn arm64_attribute_and_requires_attributes() {
        let sb = start(1.0).await;
        let ctl = sb.control();
        let c = client(&sb, true);
        c.create_cluster().cluster_name("c1").send().await.unwrap();
        let td = c
            .register_task_definition()
            .family("web")
            .network_mode(aws_sdk_ecs::types::NetworkMode::Awsvpc)
            .requires_compatibilities(aws_sdk_ecs::types::Compatibility::Fargate)
            .cpu("256")
            .memory("512")
            .execution_role_arn("arn:aws:iam::123456789012:role/exec")
            .runtime_platform(
                aws_sdk_ecs::types::RuntimePlatform::builder()
                    .cpu_architecture(aws_sdk_ecs::types::CpuArchitecture::Arm64)
                    .operating_system_family(aws_sdk_ecs::types::OsFamily::Linux)
                    .build(),
            )
            .container_definitions(
                ContainerDefinition::builder()
                    .name("web")
                    .image("123456789012.dkr.ecr.us-east-1.amazonaws.com/web:v1")
                    .log_configuration(
                        aws_sdk_ecs::types::LogConfiguration::builder()
                            .log_driver(aws_sdk_ecs::types::LogDriver::Awslogs)
                            .options("awslogs-group", "/ecs/web")
                            .build()
                            .unwrap(),
                    )
                    .build(),
            )
            .send()
            .await
            .unwrap();
        let td = td.task_definition().unwrap();
        let mut names: Vec<&str> = td.requires_attributes().iter().map(|a| a.name()).collect();
        names.sort();
        assert_eq!(
            names,
            [
                "com.amazonaws.ecs.capability.docker-remote-api.1.18",
                "com.amazonaws.ecs.capability.docker-remote-api.1.19",
                "com.amazonaws.ecs.capability.ecr-auth",
                "com.amazonaws.ecs.capability.logging-driver.awslogs",
                "ecs.capability.execution-role-awslogs",
                "ecs.capability.execution-role-ecr-pull",
                "ecs.capability.task-eni",
            ]
        );
        let arn = td.task_definition_arn().unwrap().to_string();
        let described = c
            .describe_task_definition()
            .task_definition(&arn)
            .send()
            .await
            .unwrap();
        assert_eq!(
            described
                .task_definition()
                .unwrap()
                .requires_attributes()
                .len(),
            names.len()
        );
        let out = c
            .run_task()
            .cluster("c1")
            .task_definition(&arn)
            .launch_type(LaunchType::Fargate)
            .network_configuration(network())
            .send()
            .await
            .unwrap();
        let _ = ctl;
        let attrs = out.tasks()[0].attributes();
        let arch = attrs
            .iter()
            .find(|a| a.name() == "ecs.cpu-architecture")
            .and_then(|a| a.value());
        assert_eq!(arch, Some("arm64"), "{attrs:?}");
    }

    /// A blue/green service behind the test ALB with its first deployment done, and the
    /// environment another client needs to reach the sandbox: (variables, target group, rule).
    async fn service_for_other_clients(sb: &Sandbox) -> Vec<(&'static str, String)> {
        let c = client(sb, true);
        let a = alb(sb).await;
        let cfg = DeploymentConfiguration::builder()
            .strategy(DeploymentStrategy::BlueGreen)
            .bake_time_in_minutes(0)
            .build();
        service(&c, &a, cfg).await;
        vec![
            ("AWS_ENDPOINT_URL", sb.endpoint()),
            ("AWS_ACCESS_KEY_ID", "sandbox".into()),
            ("AWS_SECRET_ACCESS_KEY", "sandbox".into()),
            ("AWS_DEFAULT_REGION", "us-east-1".into()),
            ("AWS_REGION", "us-east-1".into()),
            ("AWS_EC2_METADATA_DISABLED", "true".into()),
            ("AWS_CONFIG_FILE", "/dev/null".into()),
            ("AWS_SHARED_CREDENTIALS_FILE", "/dev/null".into()),
            ("TG", a.blue.clone()),
            ("RULE", a.prod_rule.clone()),
        ]
    }

    /// Runs `program args` with `env` off the async runtime; panics with its output on failure.
    async fn run_client(
        program: &str,
        args: Vec<String>,
        env: Vec<(&'static str, String)>,
    ) -> String {
        let program = program.to_string();
        let out = tokio::task::spawn_blocking(move || {
            std::process::Command::new(&program)
                .args(&args)
                .envs(env)
                .output()
                .unwrap()
        })
        .await
        .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).to_string();
        assert!(
            out.status.success(),
            "client failed: {stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        stdout
    }

    /// The AWS CLI (botocore's parsers and waiters) reads what the sandbox answers.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn aws_cli_can_drive_the_sandbox() {
        let ok = std::process::Command::new("aws")
            .arg("--version")
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false);
        if !ok {
            eprintln!("notice: the AWS CLI (`aws`) is not installed; skipping the AWS CLI test");
            return;
        }
        let sb = start(SPEED).await;
        let env = service_for_other_clients(&sb).await;
        let script = r#"
set -euo pipefail
aws ecs wait services-stable --cluster c1 --services web
status=$(aws ecs describe-services --cluster c1 --services web --query 'services[0].deployments[0].rolloutState' --output text)
test "$status" = COMPLETED || { echo "rolloutState $status"; exit 1; }
sd=$(aws ecs list-service-deployments --cluster c1 --service web --query 'serviceDeployments[0].serviceDeploymentArn' --output text)
aws ecs describe-service-deployments --service-deployment-arns "$sd" --query 'serviceDeployments[0].[status,deploymentConfiguration.strategy]' --output text
aws ecs describe-task-definition --task-definition web --include TAGS --query 'taskDefinition.requiresAttributes[].name' --output text
task=$(aws ecs list-tasks --cluster c1 --service-name web --query 'taskArns[0]' --output text)
aws ecs describe-tasks --cluster c1 --tasks "$task" --query 'tasks[0].[lastStatus,createdAt]' --output text
aws elbv2 describe-target-health --target-group-arn "$TG" --query 'TargetHealthDescriptions[].TargetHealth.State' --output text
aws elbv2 describe-rules --rule-arns "$RULE" --query 'Rules[0].Actions[0].ForwardConfig.TargetGroups[].Weight' --output text
rev=$(aws ecs describe-services --cluster c1 --services web --query 'services[0].currentServiceDeployment' --output text)
aws ecs describe-service-deployments --service-deployment-arns "$rev" --query 'serviceDeployments[0].targetServiceRevision.arn' --output text > /dev/null
aws ecs describe-clusters --clusters c1 --query 'clusters[0].runningTasksCount' --output text
aws ecs list-services --cluster c1 --output text > /dev/null
aws ecs list-task-definitions --family-prefix web --output text > /dev/null
aws elbv2 describe-target-groups --target-group-arns "$TG" --query 'TargetGroups[0].HealthCheckIntervalSeconds' --output text
aws elbv2 describe-target-group-attributes --target-group-arn "$TG" --output text > /dev/null
aws elbv2 describe-load-balancers --output text > /dev/null
lb=$(aws elbv2 describe-load-balancers --query 'LoadBalancers[0].LoadBalancerArn' --output text)
aws elbv2 describe-listeners --load-balancer-arn "$lb" --query 'Listeners[].Port' --output text
echo "cli ok"
"#;
        let out = run_client("bash", vec!["-c".into(), script.into()], env).await;
        assert!(out.contains("cli ok"), "{out}");
        assert!(out.contains("SUCCESSFUL\tBLUE_GREEN"), "{out}");
        assert!(out.contains("healthy\thealthy"), "{out}");
        assert!(out.contains("ecs.capability.task-eni"), "{out}");
    }

    /// The JavaScript SDK v3 (its own deserializers) reads what the sandbox answers. Its
    /// modules come from `CORTADO_NODE_MODULES` (a `node_modules` folder; `.ci/run` installs
    /// one) or node's own resolution.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn javascript_sdk_can_drive_the_sandbox() {
        let node_path = std::env::var("CORTADO_NODE_MODULES").unwrap_or_default();
        let ok = std::process::Command::new("node")
            .args([
                "-e",
                "require('@aws-sdk/client-ecs'); require('@aws-sdk/client-elastic-load-balancing-v2')",
            ])
            .env("NODE_PATH", &node_path)
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false);
        if !ok {
            eprintln!(
                "notice: node with @aws-sdk/client-ecs and @aws-sdk/client-elastic-load-balancing-v2 \
                 is not available (set CORTADO_NODE_MODULES to a node_modules folder); skipping \
                 the JavaScript SDK test"
            );
            return;
        }
        let sb = start(SPEED).await;
        let mut env = service_for_other_clients(&sb).await;
        env.push(("NODE_PATH", node_path));
        let script = r#"
const ecs = require('@aws-sdk/client-ecs');
const elb = require('@aws-sdk/client-elastic-load-balancing-v2');
const cfg = {
  endpoint: process.env.AWS_ENDPOINT_URL, region: 'us-east-1', maxAttempts: 1,
  credentials: { accessKeyId: 'sandbox', secretAccessKey: 'sandbox' },
};
const c = new ecs.ECSClient(cfg);
const e = new elb.ElasticLoadBalancingV2Client(cfg);
const check = (ok, what) => { if (!ok) throw new Error('unexpected: ' + what); };
(async () => {
  const s = (await c.send(new ecs.DescribeServicesCommand({ cluster: 'c1', services: ['web'] }))).services[0];
  check(s.serviceName === 'web' && s.deployments[0].rolloutState === 'COMPLETED', JSON.stringify(s));
  check(s.createdAt instanceof Date, 'createdAt');
  const td = (await c.send(new ecs.DescribeTaskDefinitionCommand({ taskDefinition: s.taskDefinition }))).taskDefinition;
  check(td.registeredAt instanceof Date && td.requiresAttributes.length > 0, JSON.stringify(td));
  const arns = (await c.send(new ecs.ListTasksCommand({ cluster: 'c1', serviceName: 'web' }))).taskArns;
  const tasks = (await c.send(new ecs.DescribeTasksCommand({ cluster: 'c1', tasks: arns }))).tasks;
  check(tasks.length === 2 && tasks.every(t => t.lastStatus === 'RUNNING' && t.startedAt instanceof Date), JSON.stringify(tasks));
  const list = await c.send(new ecs.ListServiceDeploymentsCommand({ cluster: 'c1', service: 'web' }));
  const sdArn = list.serviceDeployments[0].serviceDeploymentArn;
  const sd = (await c.send(new ecs.DescribeServiceDeploymentsCommand({ serviceDeploymentArns: [sdArn] }))).serviceDeployments[0];
  check(sd.status === 'SUCCESSFUL' && sd.finishedAt instanceof Date, JSON.stringify(sd));
  const th = await e.send(new elb.DescribeTargetHealthCommand({ TargetGroupArn: process.env.TG }));
  check(th.TargetHealthDescriptions.length === 2 &&
        th.TargetHealthDescriptions.every(d => d.TargetHealth.State === 'healthy' && d.Target.Port === 80), JSON.stringify(th));
  const rules = await e.send(new elb.DescribeRulesCommand({ RuleArns: [process.env.RULE] }));
  const fwd = rules.Rules[0].Actions[0].ForwardConfig.TargetGroups;
  check(fwd.length === 2 && fwd.reduce((n, t) => n + t.Weight, 0) === 100, JSON.stringify(rules));
  check(rules.Rules[0].Conditions[0].Values[0] === '/*', JSON.stringify(rules.Rules[0].Conditions));
  // Errors reach the caller as the SDK's typed exceptions (JSON and query/XML protocols).
  const fails = async (p, type) => {
    try { await p; } catch (err) { check(err instanceof type, err.name + ': ' + err.message); return; }
    throw new Error('expected ' + type.name);
  };
  await fails(c.send(new ecs.DescribeServicesCommand({ cluster: 'ghost', services: ['web'] })), ecs.ClusterNotFoundException);
  await fails(c.send(new ecs.DescribeServicesCommand({ cluster: 'c1', services: Array.from({ length: 11 }, (_, i) => 's' + i) })), ecs.InvalidParameterException);
  await fails(e.send(new elb.DescribeTargetHealthCommand({ TargetGroupArn: process.env.TG + 'x' })), elb.TargetGroupNotFoundException);
  console.log('js ok', s.serviceName, sd.status);
})().catch(err => { console.error(err); process.exit(1); });
"#;
        let out = run_client("node", vec!["-e".into(), script.into()], env).await;
        assert!(out.contains("js ok web SUCCESSFUL"), "{out}");
    }

    // ------------------------------------------------ blue/green, canary, linear fidelity

    /// Green share (percent) of production and test traffic, from DescribeRules.
    async fn green_shares(a: &Alb, green: &str) -> (i32, i32) {
        let out =
            a.e.describe_rules()
                .rule_arns(&a.prod_rule)
                .rule_arns(&a.test_rule)
                .send()
                .await
                .unwrap();
        let share = |arn: &str| {
            let r = out
                .rules()
                .iter()
                .find(|r| r.rule_arn() == Some(arn))
                .unwrap();
            let action = &r.actions()[0];
            assert_eq!(action.r#type(), Some(&ActionTypeEnum::Forward), "{r:?}");
            let tgs = action.forward_config().unwrap().target_groups();
            assert_eq!(tgs.len(), 2, "{r:?}");
            let total: i32 = tgs.iter().filter_map(|t| t.weight()).sum();
            assert_eq!(total, 100, "{r:?}");
            tgs.iter()
                .find(|t| t.target_group_arn() == Some(green))
                .and_then(|t| t.weight())
                .unwrap()
        };
        (share(&a.prod_rule), share(&a.test_rule))
    }

    /// Target health states of a target group, sorted.
    async fn health_states(a: &Alb, tg: &str) -> Vec<String> {
        let th =
            a.e.describe_target_health()
                .target_group_arn(tg)
                .send()
                .await
                .unwrap();
        let mut s: Vec<String> = th
            .target_health_descriptions()
            .iter()
            .filter_map(|t| t.target_health()?.state().map(|s| s.as_str().to_string()))
            .collect();
        s.sort();
        s
    }

    fn pause_at(stages: &[DeploymentLifecycleHookStage]) -> DeploymentLifecycleHook {
        let mut h = DeploymentLifecycleHook::builder()
            .target_type(DeploymentLifecycleHookTargetType::Pause);
        for s in stages {
            h = h.lifecycle_stages(s.clone());
        }
        h.timeout_configuration(
            DeploymentLifecycleHookTimeoutConfiguration::builder()
                .timeout_in_minutes(600)
                .build(),
        )
        .build()
    }

    fn lambda_at(stage: DeploymentLifecycleHookStage) -> DeploymentLifecycleHook {
        DeploymentLifecycleHook::builder()
            .target_type(DeploymentLifecycleHookTargetType::AwsLambda)
            .hook_target_arn("arn:aws:lambda:us-east-1:123456789012:function:check")
            .role_arn("arn:aws:iam::123456789012:role/hook")
            .lifecycle_stages(stage)
            .build()
    }

    /// One stop at a PAUSE hook: the deployment's stage, the green share of production and
    /// test traffic, and the target health of the blue and green groups.
    #[derive(Debug, Clone, PartialEq)]
    struct Stop {
        stage: String,
        prod: i32,
        test: i32,
        blue: Vec<String>,
        green: Vec<String>,
    }

    /// Wait until a PAUSE hook awaits action (returns it and the stage) or the service
    /// deployment reaches `until`.
    async fn next_pause(
        c: &Client,
        sd_arn: &str,
        until: &str,
    ) -> Option<(aws_sdk_ecs::types::DeploymentLifecycleHookDetail, String)> {
        let start = Instant::now();
        loop {
            let sd = sd_status(c, sd_arn).await;
            if let Some(stage) = sd.lifecycle_stage() {
                assert!(
                    aws_sdk_ecs::types::ServiceDeploymentLifecycleStage::values()
                        .contains(&stage.as_str()),
                    "lifecycleStage {stage:?} is not in the SDK's enum"
                );
            }
            if let Some(h) = sd
                .lifecycle_hook_details()
                .iter()
                .find(|h| h.status().map(|s| s.as_str()) == Some("AWAITING_ACTION"))
            {
                let stage = sd.lifecycle_stage().unwrap().as_str().to_string();
                return Some((h.clone(), stage));
            }
            if sd.status().map(|s| s.as_str()) == Some(until) {
                return None;
            }
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "neither a hook awaiting action nor {until}: {sd:#?}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Deploy v2 with PAUSE hooks at every stage a PAUSE hook may sit at and a Lambda hook at
    /// PRODUCTION_TRAFFIC_SHIFT; at each pause, record a [`Stop`] and continue. Returns the
    /// stops, the service deployment at the end, and the Alb.
    async fn deploy_through_pauses(
        strategy: DeploymentStrategy,
        canary: Option<f64>,
        linear: Option<f64>,
    ) -> (
        Vec<Stop>,
        aws_sdk_ecs::types::ServiceDeployment,
        Alb,
        Client,
        Sandbox,
    ) {
        use DeploymentLifecycleHookStage as S;
        let sb = start(600.0).await;
        let c = client(&sb, true);
        let a = alb(&sb).await;
        let mut cfg = DeploymentConfiguration::builder()
            .strategy(strategy)
            .bake_time_in_minutes(1)
            .lifecycle_hooks(pause_at(&[
                // Not reached: "only happens when you start a new service deployment with more
                // than 1 service revision in an ACTIVE state", and v1 is the only one.
                S::ReconcileService,
                S::PreScaleUp,
                S::PostScaleUp,
                S::PostTestTrafficShift,
                S::PreProductionTrafficShift,
                S::PostProductionTrafficShift,
            ]))
            .lifecycle_hooks(lambda_at(S::ProductionTrafficShift));
        if let Some(p) = canary {
            cfg = cfg.canary_configuration(
                CanaryConfiguration::builder()
                    .canary_percent(p)
                    .canary_bake_time_in_minutes(1)
                    .build(),
            );
        }
        if let Some(p) = linear {
            cfg = cfg.linear_configuration(
                LinearConfiguration::builder()
                    .step_percent(p)
                    .step_bake_time_in_minutes(1)
                    .build(),
            );
        }
        service(&c, &a, cfg.build()).await;
        let v2 = register(&c, "web:v2").await;
        let (_ours, sd_arn) = update(&c, &v2).await;
        let mut stops = Vec::new();
        let mut ids = Vec::new();
        while let Some((h, stage)) = next_pause(&c, &sd_arn, "SUCCESSFUL").await {
            let id = h.hook_id().unwrap().to_string();
            assert!(id.starts_with("ecs-pause-"), "{id}");
            assert!(!ids.contains(&id), "hook id {id} used twice");
            assert_eq!(h.target_type().map(|t| t.as_str()), Some("PAUSE"));
            assert_eq!(h.target_arn(), None);
            assert_eq!(h.timeout_action().map(|t| t.as_str()), Some("ROLLBACK"));
            ids.push(id.clone());
            let (prod, test) = green_shares(&a, &a.green).await;
            stops.push(Stop {
                stage,
                prod,
                test,
                blue: health_states(&a, &a.blue).await,
                green: health_states(&a, &a.green).await,
            });
            c.continue_service_deployment()
                .service_deployment_arn(&sd_arn)
                .hook_id(&id)
                .send()
                .await
                .unwrap();
        }
        let sd = sd_status(&c, &sd_arn).await;
        (stops, sd, a, c, sb)
    }

    fn stop(stage: &str, prod: i32, test: i32, green_running: bool) -> Stop {
        let two = vec!["healthy".to_string(), "healthy".to_string()];
        Stop {
            stage: stage.into(),
            prod,
            test,
            blue: two.clone(),
            green: if green_running { two } else { Vec::new() },
        }
    }

    /// The stops of a blue/green-like deployment: `shifts` are the production shares of green
    /// before each production traffic shift step.
    fn expected_stops(shifts: &[i32]) -> Vec<Stop> {
        let mut v = vec![
            stop("PRE_SCALE_UP", 0, 0, false),
            stop("POST_SCALE_UP", 0, 0, true),
            stop("POST_TEST_TRAFFIC_SHIFT", 0, 100, true),
        ];
        for p in shifts {
            v.push(stop("PRODUCTION_TRAFFIC_SHIFT", *p, 100, true));
        }
        v.push(stop("POST_PRODUCTION_TRAFFIC_SHIFT", 100, 100, true));
        v
    }

    /// Lambda hook runs (one per invocation) in a service deployment.
    fn lambda_runs(sd: &aws_sdk_ecs::types::ServiceDeployment) -> Vec<String> {
        sd.lifecycle_hook_details()
            .iter()
            .filter(|h| h.target_type().map(|t| t.as_str()) == Some("AWS_LAMBDA"))
            .map(|h| {
                assert_eq!(h.status().map(|s| s.as_str()), Some("SUCCEEDED"), "{h:?}");
                assert_eq!(
                    h.target_arn(),
                    Some("arn:aws:lambda:us-east-1:123456789012:function:check")
                );
                h.hook_id().unwrap().to_string()
            })
            .collect()
    }

    async fn blue_gone(c: &Client, a: &Alb) {
        wait(c, "blue cleaned up", |s| {
            s.running_count() == 2 && s.deployments().len() == 1
        })
        .await;
        let start = Instant::now();
        while !health_states(a, &a.blue).await.is_empty() {
            assert!(
                start.elapsed() < Duration::from_secs(15),
                "blue targets left"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(health_states(a, &a.green).await, ["healthy", "healthy"]);
    }

    /// Rule weights and target health at each stage of a blue/green deployment: test traffic
    /// moves to green at TEST_TRAFFIC_SHIFT, production all at once.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn blue_green_rule_weights_and_target_health_per_stage() {
        let (stops, sd, a, c, _sb) =
            deploy_through_pauses(DeploymentStrategy::BlueGreen, None, None).await;
        assert_eq!(stops, expected_stops(&[0]));
        assert_eq!(sd.status().map(|s| s.as_str()), Some("SUCCESSFUL"));
        assert_eq!(lambda_runs(&sd).len(), 1);
        assert_eq!(green_shares(&a, &a.green).await, (100, 100));
        blue_gone(&c, &a).await;
    }

    /// Canary: PRE_PRODUCTION_TRAFFIC_SHIFT hooks run before each of the two production
    /// traffic shift steps (canaryPercent, then 100), PRODUCTION_TRAFFIC_SHIFT hooks at each.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn canary_runs_traffic_shift_hooks_at_every_step() {
        let (stops, sd, a, c, _sb) =
            deploy_through_pauses(DeploymentStrategy::Canary, Some(20.0), None).await;
        assert_eq!(stops, expected_stops(&[0, 20]));
        assert_eq!(sd.status().map(|s| s.as_str()), Some("SUCCESSFUL"));
        let runs = lambda_runs(&sd);
        assert_eq!(runs.len(), 2, "one Lambda invocation per step: {sd:#?}");
        assert_ne!(runs[0], runs[1]);
        assert_eq!(green_shares(&a, &a.green).await, (100, 100));
        blue_gone(&c, &a).await;
    }

    /// Linear 25%: a PAUSE hook at PRE_PRODUCTION_TRAFFIC_SHIFT awaits action once per step
    /// (4 times, at 0, 25, 50 and 75% of production traffic on green), each with a new hookId.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn linear_pause_hook_awaits_before_every_step() {
        let (stops, sd, a, c, _sb) =
            deploy_through_pauses(DeploymentStrategy::Linear, None, Some(25.0)).await;
        assert_eq!(stops, expected_stops(&[0, 25, 50, 75]));
        assert_eq!(sd.status().map(|s| s.as_str()), Some("SUCCESSFUL"));
        let runs = lambda_runs(&sd);
        assert_eq!(runs.len(), 4, "one Lambda invocation per step: {sd:#?}");
        assert_eq!(
            sd.lifecycle_hook_details()
                .iter()
                .filter(|h| h.target_type().map(|t| t.as_str()) == Some("PAUSE"))
                .count(),
            4 + 4,
            "PRE_SCALE_UP, POST_SCALE_UP, POST_TEST_TRAFFIC_SHIFT, 4 x PRE_PRODUCTION_TRAFFIC_SHIFT, POST_PRODUCTION_TRAFFIC_SHIFT"
        );
        assert_eq!(green_shares(&a, &a.green).await, (100, 100));
        blue_gone(&c, &a).await;
    }

    /// A PAUSE hook configured without timeoutConfiguration expires after 1440 minutes (the
    /// model's default) and then rolls back (default action ROLLBACK).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn hook_timeout_defaults_to_24_hours_then_rolls_back() {
        let sb = start(600.0).await;
        let c = client(&sb, true);
        let a = alb(&sb).await;
        let hook = DeploymentLifecycleHook::builder()
            .target_type(DeploymentLifecycleHookTargetType::Pause)
            .lifecycle_stages(DeploymentLifecycleHookStage::PostTestTrafficShift)
            .build();
        let cfg = DeploymentConfiguration::builder()
            .strategy(DeploymentStrategy::BlueGreen)
            .lifecycle_hooks(hook)
            .build();
        let v1 = service(&c, &a, cfg).await;
        let v2 = register(&c, "web:v2").await;
        let (_ours, sd_arn) = update(&c, &v2).await;
        let (h, stage) = next_pause(&c, &sd_arn, "SUCCESSFUL").await.unwrap();
        assert_eq!(stage, "POST_TEST_TRAFFIC_SHIFT");
        assert_eq!(h.timeout_action().map(|t| t.as_str()), Some("ROLLBACK"));
        let now = sb.control().now();
        let left = h.expires_at().unwrap().as_secs_f64() - now;
        assert!(
            (86_400.0 - 600.0..=86_400.0).contains(&left),
            "the hook expires in {left} s, not 24 h"
        );
        sb.control().advance(23.0 * 3600.0);
        let sd = sd_status(&c, &sd_arn).await;
        assert_eq!(sd.status().map(|s| s.as_str()), Some("IN_PROGRESS"));
        assert_eq!(
            sd.lifecycle_hook_details()[0].status().map(|s| s.as_str()),
            Some("AWAITING_ACTION")
        );
        sb.control().advance(3600.0);
        let sd = wait_sd(&c, &sd_arn, "ROLLBACK_SUCCESSFUL").await;
        assert_eq!(
            sd.lifecycle_hook_details()[0].status().map(|s| s.as_str()),
            Some("TIMED_OUT")
        );
        assert_eq!(green_shares(&a, &a.green).await, (0, 0));
        let s = wait(&c, "blue serving alone", |s| {
            s.running_count() == 2 && s.deployments().len() == 1
        })
        .await;
        assert_eq!(s.task_definition(), Some(v1.as_str()));
    }

    /// Statuses of a service deployment until it reaches `last`, each once, in order.
    async fn sd_statuses_until(c: &Client, sd_arn: &str, last: &str) -> Vec<String> {
        let mut seen: Vec<String> = Vec::new();
        let start = Instant::now();
        loop {
            let st = sd_status(c, sd_arn)
                .await
                .status()
                .unwrap()
                .as_str()
                .to_string();
            if seen.last() != Some(&st) {
                seen.push(st.clone());
            }
            if st == last {
                return seen;
            }
            assert!(start.elapsed() < Duration::from_secs(15), "{seen:?}");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Run a canary/linear deployment to its second PRE_PRODUCTION_TRAFFIC_SHIFT pause (some
    /// production traffic on green), then roll it back with `rollback`.
    async fn roll_back_mid_shift(linear: bool, via_stop: bool) {
        let sb = start(100.0).await;
        let c = client(&sb, true);
        let a = alb(&sb).await;
        let mut cfg = DeploymentConfiguration::builder().lifecycle_hooks(pause_at(&[
            DeploymentLifecycleHookStage::PreProductionTrafficShift,
        ]));
        cfg = if linear {
            cfg.strategy(DeploymentStrategy::Linear)
                .linear_configuration(
                    LinearConfiguration::builder()
                        .step_percent(50.0)
                        .step_bake_time_in_minutes(0)
                        .build(),
                )
        } else {
            cfg.strategy(DeploymentStrategy::Canary)
                .canary_configuration(
                    CanaryConfiguration::builder()
                        .canary_percent(10.0)
                        .canary_bake_time_in_minutes(0)
                        .build(),
                )
        };
        let v1 = service(&c, &a, cfg.build()).await;
        let blue_deployment = describe(&c).await.deployments()[0]
            .id()
            .unwrap()
            .to_string();
        let v2 = register(&c, "web:v2").await;
        let (ours, sd_arn) = update(&c, &v2).await;
        let (h, _) = next_pause(&c, &sd_arn, "SUCCESSFUL").await.unwrap();
        c.continue_service_deployment()
            .service_deployment_arn(&sd_arn)
            .hook_id(h.hook_id().unwrap())
            .send()
            .await
            .unwrap();
        let (h2, _) = next_pause(&c, &sd_arn, "SUCCESSFUL").await.unwrap();
        assert_ne!(h.hook_id(), h2.hook_id());
        let expected = if linear { 50 } else { 10 };
        assert_eq!(green_shares(&a, &a.green).await, (expected, 100));
        if via_stop {
            c.stop_service_deployment()
                .service_deployment_arn(&sd_arn)
                .stop_type(StopServiceDeploymentStopType::Rollback)
                .send()
                .await
                .unwrap();
        } else {
            c.continue_service_deployment()
                .service_deployment_arn(&sd_arn)
                .hook_id(h2.hook_id().unwrap())
                .action(aws_sdk_ecs::types::DeploymentLifecycleHookAction::Rollback)
                .send()
                .await
                .unwrap();
        }
        // Production and test traffic are back on blue at once.
        assert_eq!(green_shares(&a, &a.green).await, (0, 0));
        let statuses = sd_statuses_until(&c, &sd_arn, "ROLLBACK_SUCCESSFUL").await;
        assert_eq!(
            statuses,
            ["ROLLBACK_IN_PROGRESS", "ROLLBACK_SUCCESSFUL"],
            "service deployment statuses after the rollback request"
        );
        let sd = sd_status(&c, &sd_arn).await;
        assert!(sd.rollback().is_some(), "{sd:#?}");
        assert_eq!(green_shares(&a, &a.green).await, (0, 0));
        let s = wait(&c, "green stopped", |s| {
            s.running_count() == 2 && s.deployments().len() == 1
        })
        .await;
        assert_eq!(s.task_definition(), Some(v1.as_str()));
        assert_eq!(s.deployments()[0].id(), Some(blue_deployment.as_str()));
        let green = stopped_tasks(&c, &ours).await;
        assert_eq!(green.len(), 2, "{green:#?}");
        let live = c
            .list_tasks()
            .cluster("c1")
            .service_name("web")
            .started_by(&ours)
            .send()
            .await
            .unwrap();
        assert!(live.task_arns().is_empty(), "{live:?}");
        let start = Instant::now();
        while !health_states(&a, &a.green).await.is_empty() {
            assert!(
                start.elapsed() < Duration::from_secs(15),
                "green targets left"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(health_states(&a, &a.blue).await, ["healthy", "healthy"]);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn stop_service_deployment_rolls_a_canary_back_mid_shift() {
        roll_back_mid_shift(false, true).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn continue_with_rollback_rolls_a_linear_deployment_back_mid_shift() {
        roll_back_mid_shift(true, false).await;
    }

    /// ContinueServiceDeployment's errors: an unknown ARN, a missing hookId (required in the
    /// model), a hook that is not awaiting action, a finished deployment.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn continue_service_deployment_errors() {
        let sb = start(600.0).await;
        let c = client(&sb, false);
        let a = alb(&sb).await;
        let cfg = DeploymentConfiguration::builder()
            .strategy(DeploymentStrategy::BlueGreen)
            .lifecycle_hooks(pause_at(&[DeploymentLifecycleHookStage::PostScaleUp]))
            .build();
        service(&c, &a, cfg).await;
        let v2 = register(&c, "web:v2").await;
        let (_ours, sd_arn) = update(&c, &v2).await;
        let err = c
            .continue_service_deployment()
            .service_deployment_arn(format!("{sd_arn}x"))
            .hook_id("ecs-pause-x")
            .send()
            .await
            .unwrap_err();
        assert_eq!(err.code(), Some("ServiceDeploymentNotFoundException"));
        let (h, _) = next_pause(&c, &sd_arn, "SUCCESSFUL").await.unwrap();
        let body = format!(r#"{{"serviceDeploymentArn": "{sd_arn}"}}"#);
        let (status, out) = raw(
            &sb,
            "POST",
            "/",
            Some("AmazonEC2ContainerServiceV20141113.ContinueServiceDeployment"),
            &body,
        )
        .await;
        assert_eq!(status, 400, "{out}");
        assert!(out.contains("InvalidParameterException"), "{out}");
        assert!(out.contains("hookId"), "{out}");
        let id = h.hook_id().unwrap();
        let out = c
            .continue_service_deployment()
            .service_deployment_arn(&sd_arn)
            .hook_id(id)
            .send()
            .await
            .unwrap();
        assert_eq!(out.service_deployment_arn(), Some(sd_arn.as_str()));
        // The same hook a second time: no longer awaiting action.
        let err = c
            .continue_service_deployment()
            .service_deployment_arn(&sd_arn)
            .hook_id(id)
            .send()
            .await
            .unwrap_err();
        assert_eq!(err.code(), Some("InvalidParameterException"));
        wait_sd(&c, &sd_arn, "SUCCESSFUL").await;
        let err = c
            .continue_service_deployment()
            .service_deployment_arn(&sd_arn)
            .hook_id(id)
            .action(aws_sdk_ecs::types::DeploymentLifecycleHookAction::Rollback)
            .send()
            .await
            .unwrap_err();
        assert_eq!(err.code(), Some("InvalidParameterException"));
    }

    /// Lifecycle hooks and canary/linear settings are checked as the model documents them.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn lifecycle_hook_and_shift_settings_are_validated() {
        let sb = start(600.0).await;
        let c = client(&sb, false);
        let a = alb(&sb).await;
        service(&c, &a, DeploymentConfiguration::builder().build()).await;
        let bad = [
            DeploymentConfiguration::builder()
                .strategy(DeploymentStrategy::Linear)
                .lifecycle_hooks(
                    DeploymentLifecycleHook::builder()
                        .target_type(DeploymentLifecycleHookTargetType::Pause)
                        .lifecycle_stages(DeploymentLifecycleHookStage::ProductionTrafficShift)
                        .build(),
                )
                .build(),
            DeploymentConfiguration::builder()
                .strategy(DeploymentStrategy::BlueGreen)
                .lifecycle_hooks(
                    DeploymentLifecycleHook::builder()
                        .target_type(DeploymentLifecycleHookTargetType::Pause)
                        .lifecycle_stages(DeploymentLifecycleHookStage::TestTrafficShift)
                        .build(),
                )
                .build(),
            DeploymentConfiguration::builder()
                .strategy(DeploymentStrategy::BlueGreen)
                .lifecycle_hooks(
                    DeploymentLifecycleHook::builder()
                        .lifecycle_stages(DeploymentLifecycleHookStage::PostScaleUp)
                        .build(),
                )
                .build(),
            DeploymentConfiguration::builder()
                .strategy(DeploymentStrategy::Linear)
                .linear_configuration(LinearConfiguration::builder().step_percent(2.0).build())
                .build(),
            DeploymentConfiguration::builder()
                .strategy(DeploymentStrategy::Canary)
                .canary_configuration(CanaryConfiguration::builder().canary_percent(5.05).build())
                .build(),
        ];
        for cfg in bad {
            let err = c
                .update_service()
                .cluster("c1")
                .service("web")
                .deployment_configuration(cfg.clone())
                .send()
                .await
                .unwrap_err();
            assert_eq!(err.code(), Some("InvalidParameterException"), "{cfg:?}");
        }
        c.update_service()
            .cluster("c1")
            .service("web")
            .deployment_configuration(
                DeploymentConfiguration::builder()
                    .strategy(DeploymentStrategy::Linear)
                    .linear_configuration(LinearConfiguration::builder().step_percent(3.0).build())
                    .lifecycle_hooks(pause_at(&[
                        DeploymentLifecycleHookStage::PreProductionTrafficShift,
                    ]))
                    .build(),
            )
            .send()
            .await
            .unwrap();
    }

    /// Green tasks that never pass their ELB health checks: the deployment never leaves
    /// SCALE_UP, so no traffic (test or production) reaches green. "Both methods [circuit
    /// breaker, CloudWatch alarms] only support rolling update deployment and blue/green
    /// deployment types" (Amazon ECS deployment failure detection): with the circuit breaker
    /// on, it trips and rolls back onto blue; without it, ECS keeps trying.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn blue_green_with_unhealthy_green_trips_the_circuit_breaker() {
        let sb = start(600.0).await;
        let c = client(&sb, true);
        let a = alb(&sb).await;
        let cfg = DeploymentConfiguration::builder()
            .strategy(DeploymentStrategy::BlueGreen)
            .deployment_circuit_breaker(
                DeploymentCircuitBreaker::builder()
                    .enable(true)
                    .rollback(true)
                    .build(),
            )
            .build();
        let v1 = service(&c, &a, cfg).await;
        let blue_deployment = describe(&c).await.deployments()[0]
            .id()
            .unwrap()
            .to_string();
        let v2 = register(&c, "web:v2--elb-unhealthy").await;
        let (ours, sd_arn) = update(&c, &v2).await;
        let start = Instant::now();
        loop {
            assert_eq!(green_shares(&a, &a.green).await, (0, 0));
            let sd = sd_status(&c, &sd_arn).await;
            let st = sd.status().unwrap().as_str();
            if st == "IN_PROGRESS" {
                let stage = sd.lifecycle_stage().map(|s| s.as_str());
                assert!(
                    matches!(
                        stage,
                        Some("RECONCILE_SERVICE" | "PRE_SCALE_UP" | "SCALE_UP")
                    ),
                    "{stage:?}"
                );
            } else if st == "ROLLBACK_SUCCESSFUL" {
                let cb = sd.deployment_circuit_breaker().unwrap();
                assert_eq!(cb.status().map(|s| s.as_str()), Some("TRIGGERED"));
                assert!(cb.failure_count() >= 3, "{cb:?}");
                break;
            } else {
                assert_eq!(st, "ROLLBACK_IN_PROGRESS");
            }
            assert!(start.elapsed() < Duration::from_secs(15), "{sd:#?}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let s = wait(&c, "green gone", |s| {
            s.running_count() == 2 && s.deployments().len() == 1
        })
        .await;
        assert_eq!(s.task_definition(), Some(v1.as_str()));
        assert_eq!(s.deployments()[0].id(), Some(blue_deployment.as_str()));
        let failed = stopped_tasks(&c, &ours).await;
        assert!(
            failed.iter().any(|t| t
                .stopped_reason()
                .unwrap_or("")
                .starts_with("Task failed ELB health checks")),
            "{failed:#?}"
        );
        assert_eq!(green_shares(&a, &a.green).await, (0, 0));
        assert_eq!(health_states(&a, &a.blue).await, ["healthy", "healthy"]);

        // Without the circuit breaker the deployment stays in SCALE_UP, blue serving.
        let out = c
            .update_service()
            .cluster("c1")
            .service("web")
            .task_definition(&v2)
            .deployment_configuration(
                DeploymentConfiguration::builder()
                    .strategy(DeploymentStrategy::BlueGreen)
                    .deployment_circuit_breaker(
                        DeploymentCircuitBreaker::builder()
                            .enable(false)
                            .rollback(false)
                            .build(),
                    )
                    .build(),
            )
            .send()
            .await
            .unwrap();
        let s = out.service().unwrap();
        let sd_arn = s.current_service_deployment().unwrap().to_string();
        let ours = s.deployments()[0].id().unwrap().to_string();
        sb.control().advance(1800.0);
        let sd = sd_status(&c, &sd_arn).await;
        assert_eq!(sd.status().map(|s| s.as_str()), Some("IN_PROGRESS"));
        assert_eq!(sd.lifecycle_stage().map(|s| s.as_str()), Some("SCALE_UP"));
        assert_eq!(green_shares(&a, &a.green).await, (0, 0));
        assert!(stopped_tasks(&c, &ours).await.len() >= 3);
        assert_eq!(health_states(&a, &a.blue).await, ["healthy", "healthy"]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alarm_in_alarm_state_rolls_back() {
    use aws_sdk_ecs::types::DeploymentAlarms;
    let sb = start(SPEED).await;
    let c = client(&sb, true);
    let v1 = settled_service(&c, false).await;
    c.update_service()
        .cluster("c1")
        .service("web")
        .deployment_configuration(
            DeploymentConfiguration::builder()
                .alarms(
                    DeploymentAlarms::builder()
                        .alarm_names("web-5xx")
                        .enable(true)
                        .rollback(true)
                        .build()
                        .unwrap(),
                )
                .build(),
        )
        .send()
        .await
        .unwrap();
    let v2 = register(&c, "web:v2--slow-start-10m").await;
    let (ours, sd_arn) = update(&c, &v2).await;
    assert_eq!(
        sd_status(&c, &sd_arn)
            .await
            .alarms()
            .unwrap()
            .status()
            .map(|s| s.as_str()),
        Some("MONITORING")
    );
    let (status, _) = raw(
        &sb,
        "POST",
        "/_sandbox/faults",
        None,
        r#"{"alarms": {"web-5xx": "ALARM"}}"#,
    )
    .await;
    assert_eq!(status, 200);
    let sd = wait_sd(&c, &sd_arn, "ROLLBACK_SUCCESSFUL").await;
    let alarms = sd.alarms().unwrap();
    assert_eq!(alarms.status().map(|s| s.as_str()), Some("TRIGGERED"));
    assert_eq!(alarms.triggered_alarm_names(), ["web-5xx".to_string()]);
    let s = describe(&c).await;
    assert_eq!(s.task_definition(), Some(v1.as_str()));
    assert!(s.events().iter().any(|e| e.message()
        == Some(
            &format!("(service web) (deployment {ours}) deployment failed: alarm detected.")[..]
        )));
}

/// Figures, not assertions on time: `cargo test --test sandbox bench -- --ignored --nocapture`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn bench_200_services_x_4_tasks() {
    use serde_json::json;
    let mut w = cortado_sandbox::world::World::new("us-east-1", 7, 1_700_000_000.0);
    w.ecs("CreateCluster", &json!({"clusterName": "bench"}))
        .unwrap();
    let td = |img: &str| json!({"family": "b", "containerDefinitions": [{"name": "app", "image": img, "healthCheck": {"command": ["CMD", "true"], "interval": 10}}]});
    w.ecs("RegisterTaskDefinition", &td("app:1")).unwrap();
    w.ecs("RegisterTaskDefinition", &td("app:2")).unwrap();
    let t0 = Instant::now();
    for i in 0..200 {
        w.ecs("CreateService", &json!({"cluster": "bench", "serviceName": format!("s{i}"), "taskDefinition": "b:1", "desiredCount": 4})).unwrap();
    }
    println!("create 200 services: {:?}", t0.elapsed());
    let run = |w: &mut cortado_sandbox::world::World, label: &str| {
        let (mut adv, mut total, mut max, mut events) =
            (0u32, Duration::ZERO, Duration::ZERO, 0usize);
        let mut t = w.now;
        loop {
            t += 1.0;
            let s = Instant::now();
            events += w.advance(t);
            let d = s.elapsed();
            adv += 1;
            total += d;
            max = max.max(d);
            let done = w
                .services
                .values()
                .all(|s| s.deployments.len() == 1 && s.deployments[0].rollout_state == "COMPLETED");
            if done || adv > 3600 {
                break;
            }
        }
        println!(
            "{label}: {adv} advances of 1 virtual s, {events} events, mean {:?}/advance, max {:?}, {:.1} µs/event",
            total / adv,
            max,
            total.as_secs_f64() * 1e6 / events.max(1) as f64
        );
        assert!(adv <= 3600, "{label} did not settle");
    };
    run(&mut w, "initial rollout (800 tasks)");
    for i in 0..200 {
        w.ecs(
            "UpdateService",
            &json!({"cluster": "bench", "service": format!("s{i}"), "taskDefinition": "b:2"}),
        )
        .unwrap();
    }
    run(&mut w, "rolling deploy of all 200 services");
    let s = Instant::now();
    for _ in 0..1000 {
        let t = w.now + 0.001;
        w.advance(t);
    }
    println!("idle advance (no due events): {:?}", s.elapsed() / 1000);

    // Idle CPU of a running server: process CPU time over 2 s of wall time with no requests.
    let sb = start(1.0).await;
    let _ = sb.endpoint();
    let cpu = || -> f64 {
        let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
        let f: Vec<&str> = stat.rsplit(") ").next().unwrap_or("").split(' ').collect();
        (f.get(11).and_then(|x| x.parse::<f64>().ok()).unwrap_or(0.0)
            + f.get(12).and_then(|x| x.parse::<f64>().ok()).unwrap_or(0.0))
            / 100.0
    };
    let c0 = cpu();
    tokio::time::sleep(Duration::from_secs(2)).await;
    println!("idle server: {:.3} s CPU over 2 s wall", cpu() - c0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn same_seed_same_ids_and_prepare_creates_what_is_missing() {
    let mut ids = Vec::new();
    for _ in 0..2 {
        let sb = start(1.0).await;
        let c = client(&sb, true);
        c.create_cluster().cluster_name("c1").send().await.unwrap();
        let td = register(&c, "web:v1").await;
        let out = c
            .create_service()
            .cluster("c1")
            .service_name("web")
            .task_definition(&td)
            .desired_count(1)
            .launch_type(LaunchType::Fargate)
            .network_configuration(network())
            .send()
            .await
            .unwrap();
        let s = out.service().unwrap();
        ids.push((
            s.deployments()[0].id().unwrap().to_string(),
            s.current_service_deployment().unwrap().to_string(),
        ));
    }
    assert_eq!(
        ids[0], ids[1],
        "a run is reproducible for a seed and request sequence"
    );

    let sb = start(SPEED).await;
    let image = "123456789012.dkr.ecr.us-east-1.amazonaws.com/web:v1";
    let prep = sandbox::Prepare {
        cluster: "prod".into(),
        service: Some("web".into()),
        target_groups: vec!["arn:aws:elasticloadbalancing:us-east-1:999999999999:targetgroup/web-blue/0123456789abcdef".into(), "web-green".into()],
        images: vec![image.into()],
        blue_green: Vec::new(),
        ..Default::default()
    };
    let created = prep.apply(&sb).unwrap();
    assert_eq!(created.len(), 5, "{created:?}");
    assert!(
        prep.apply(&sb).unwrap().is_empty(),
        "a second prepare creates nothing"
    );
    let c = client(&sb, true);
    let out = c.describe_clusters().clusters("prod").send().await.unwrap();
    assert_eq!(out.clusters().len(), 1);
    let known = sb.control().with_world(|w| {
        (
            w.elbv2.find_target_group("web-blue").is_some(),
            w.ecr.resolve(image),
        )
    });
    assert_eq!(known, (true, Some(true)));
}

/// `--prepare` creates the SSM parameters and Secrets Manager secrets a task definition's
/// `secrets[].valueFrom` name, a secret adopting the full ARN it is named by (JSON key and
/// version suffix dropped by the caller) and a partial ARN naming the secret.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prepare_creates_the_parameters_and_secrets_a_task_reads() {
    let sb = start(SPEED).await;
    let full = "arn:aws:secretsmanager:us-east-1:123456789012:secret:web/db-AbCdEf";
    let partial = "arn:aws:secretsmanager:us-east-1:123456789012:secret:web/api";
    let prep = sandbox::Prepare {
        cluster: "prod".into(),
        parameters: vec!["/web/token".into()],
        secrets: vec![full.into(), partial.into()],
        ..Default::default()
    };
    let created = prep.apply(&sb).unwrap();
    let secrets: Vec<_> = created
        .iter()
        .filter(|c| c.contains("Secrets Manager"))
        .collect();
    assert_eq!(secrets.len(), 2, "{created:?}");
    assert!(
        prep.apply(&sb).unwrap().is_empty(),
        "a second prepare creates nothing"
    );
    let found = sb.control().with_world(|w| {
        (
            w.secrets.exists(full),
            w.secrets.exists("web/db"),
            w.secrets.exists("web/api"),
            w.ssm.contains("/web/token"),
        )
    });
    assert_eq!(found, (true, true, true, true));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_with_load_balancer_references() {
    let seed = sandbox::Seed::parse(
        r#"
clusters: [c1]
images: ["123456789012.dkr.ecr.us-east-1.amazonaws.com/web:v1"]
targetGroups:
  - {name: web-blue, port: 80}
  - {name: web-green, port: 80}
loadBalancers:
  - name: alb
    listeners:
      - port: 80
        forward: [{targetGroup: web-blue, weight: 1}]
        rules:
          - {priority: 10, pathPattern: "/*", forward: [{targetGroup: web-blue, weight: 100}, {targetGroup: web-green, weight: 0}]}
services:
  - cluster: c1
    serviceName: web
    desiredCount: 2
    launchType: FARGATE
    networkConfiguration: {awsvpcConfiguration: {subnets: [subnet-1]}}
    deploymentConfiguration: {strategy: BLUE_GREEN}
    loadBalancers:
      - targetGroupArn: web-blue
        containerName: web
        containerPort: 80
        advancedConfiguration: {alternateTargetGroupArn: web-green, productionListenerRule: "alb:80:10", testListenerRule: "alb:80", roleArn: "arn:aws:iam::123456789012:role/x"}
    taskDefinition:
      family: web
      networkMode: awsvpc
      requiresCompatibilities: [FARGATE]
      cpu: "256"
      memory: "512"
      containerDefinitions:
        - {name: web, image: "123456789012.dkr.ecr.us-east-1.amazonaws.com/web:v1", portMappings: [{containerPort: 80}]}
"#,
        std::path::Path::new("seed.yml"),
    )
    .unwrap();
    let sb = sandbox::start(Options {
        speed: SPEED,
        seed: Some(seed),
        ..Options::default()
    })
    .await
    .unwrap();
    let c = client(&sb, true);
    let s = wait(&c, "seeded tasks healthy", |s| {
        s.running_count() == 2
            && s.deployments()[0].rollout_state().map(|r| r.as_str()) == Some("COMPLETED")
    })
    .await;
    let lb = &s.load_balancers()[0];
    assert!(
        lb.target_group_arn().unwrap().starts_with(
            "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/web-blue/"
        )
    );
    let adv = lb.advanced_configuration().unwrap();
    let prod = adv.production_listener_rule().unwrap();
    assert!(
        prod.starts_with("arn:aws:elasticloadbalancing:") && prod.contains(":listener-rule/"),
        "{prod}"
    );
    assert!(adv.test_listener_rule().unwrap().contains(":listener/"));
    // A seed that names an unknown target group is refused with a clear message.
    let bad = sandbox::Seed::parse(
        "loadBalancers: [{name: x, listeners: [{forward: [{targetGroup: nope}]}]}]",
        std::path::Path::new("bad.yml"),
    )
    .unwrap();
    let err = sandbox::start(Options {
        seed: Some(bad),
        ..Options::default()
    })
    .await
    .err()
    .unwrap();
    assert!(
        format!("{err:?}").contains("unknown target group nope"),
        "{err:?}"
    );
    assert!(sandbox::Seed::parse("servicez: []", std::path::Path::new("typo.yml")).is_err());
}

/// A standalone task (RunTask) walks ECS's lifecycle to STOPPED with its essential container's
/// exit code from `exit-N-after-Ds`; its overrides and capacity provider are recorded; its
/// awslogs lines are served by GetLogEvents (the same forward token when nothing is new); and
/// StopTask stops another with UserInitiated.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn standalone_task_exits_with_its_code_and_serves_its_logs() {
    use aws_sdk_ecs::types::{
        CapacityProviderStrategyItem, ContainerOverride, KeyValuePair, LogConfiguration, LogDriver,
        TaskOverride,
    };
    let sb = start(1.0).await;
    let ctl = sb.control();
    let c = client(&sb, false);
    c.create_cluster().cluster_name("c1").send().await.unwrap();
    let register = |tag: &str| {
        c.register_task_definition()
            .family("job")
            .network_mode(aws_sdk_ecs::types::NetworkMode::Awsvpc)
            .requires_compatibilities(aws_sdk_ecs::types::Compatibility::Fargate)
            .cpu("256")
            .memory("512")
            .container_definitions(
                ContainerDefinition::builder()
                    .name("app")
                    .image(format!("nginx:{tag}"))
                    .command("./migrate")
                    .log_configuration(
                        LogConfiguration::builder()
                            .log_driver(LogDriver::Awslogs)
                            .options("awslogs-group", "/ecs/job")
                            .options("awslogs-stream-prefix", "one")
                            .build()
                            .unwrap(),
                    )
                    .build(),
            )
            .send()
    };
    let td = register("1--exit-3-after-5s").await.unwrap();
    let arn = td.task_definition().unwrap().task_definition_arn().unwrap();
    // A launch type and a capacity provider strategy together are refused, as by ECS.
    let both = c
        .run_task()
        .cluster("c1")
        .task_definition(arn)
        .launch_type(LaunchType::Fargate)
        .capacity_provider_strategy(
            CapacityProviderStrategyItem::builder()
                .capacity_provider("FARGATE")
                .build()
                .unwrap(),
        )
        .network_configuration(network())
        .send()
        .await
        .unwrap_err();
    assert_eq!(both.code(), Some("InvalidParameterException"));
    let out = c
        .run_task()
        .cluster("c1")
        .task_definition(arn)
        .capacity_provider_strategy(
            CapacityProviderStrategyItem::builder()
                .capacity_provider("FARGATE_SPOT")
                .weight(1)
                .build()
                .unwrap(),
        )
        .network_configuration(network())
        .started_by("cortado-run")
        .overrides(
            TaskOverride::builder()
                .container_overrides(
                    ContainerOverride::builder()
                        .name("app")
                        .command("sh")
                        .command("-c")
                        .command("echo hi")
                        .environment(KeyValuePair::builder().name("A").value("1").build())
                        .build(),
                )
                .build(),
        )
        .send()
        .await
        .unwrap();
    let task = &out.tasks()[0];
    assert_eq!(task.last_status(), Some("PROVISIONING"));
    assert_eq!(task.capacity_provider_name(), Some("FARGATE_SPOT"));
    assert_eq!(task.launch_type(), Some(&LaunchType::Fargate));
    let o = &task.overrides().unwrap().container_overrides()[0];
    assert_eq!(o.command(), ["sh", "-c", "echo hi"]);
    assert_eq!(o.environment()[0].name(), Some("A"));
    let task_arn = task.task_arn().unwrap().to_string();
    let id = task_arn.rsplit('/').next().unwrap().to_string();
    let logs_body = |token: Option<&str>| {
        let mut b = serde_json::json!({"logGroupName": "/ecs/job", "logStreamName": format!("one/app/{id}"), "startFromHead": true});
        if let Some(t) = token {
            b["nextToken"] = serde_json::json!(t);
        }
        b.to_string()
    };
    // Before the container starts there is no stream.
    let (status, body) = raw(
        &sb,
        "POST",
        "/",
        Some("Logs_20140328.GetLogEvents"),
        &logs_body(None),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("ResourceNotFoundException"), "{body}");
    let mut seen = Vec::new();
    let mut stopped = None;
    for _ in 0..200 {
        ctl.advance(1.0);
        let t = c
            .describe_tasks()
            .cluster("c1")
            .tasks(&task_arn)
            .send()
            .await
            .unwrap()
            .tasks()[0]
            .clone();
        let st = t.last_status().unwrap_or_default().to_string();
        if seen.last() != Some(&st) {
            seen.push(st.clone());
        }
        if st == "STOPPED" {
            stopped = Some(t);
            break;
        }
    }
    // STOPPING lasts no time when the essential container already exited.
    seen.retain(|s| s != "STOPPING");
    assert_eq!(
        seen,
        [
            "PROVISIONING",
            "PENDING",
            "RUNNING",
            "DEPROVISIONING",
            "STOPPED"
        ]
    );
    let t = stopped.unwrap();
    assert_eq!(t.containers()[0].exit_code(), Some(3));
    assert_eq!(
        t.stop_code().map(|c| c.as_str()),
        Some("EssentialContainerExited")
    );
    assert_eq!(
        t.stopped_reason(),
        Some("Essential container in task exited")
    );
    let (status, body) = raw(
        &sb,
        "POST",
        "/",
        Some("Logs_20140328.GetLogEvents"),
        &logs_body(None),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    let lines: Vec<&str> = v["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["message"].as_str().unwrap())
        .collect();
    assert_eq!(
        lines,
        [
            "starting nginx:1--exit-3-after-5s",
            "command: sh -c echo hi",
            "exiting with code 3"
        ]
    );
    let fwd = v["nextForwardToken"].as_str().unwrap().to_string();
    let (_, body) = raw(
        &sb,
        "POST",
        "/",
        Some("Logs_20140328.GetLogEvents"),
        &logs_body(Some(&fwd)),
    )
    .await;
    let again: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(again["events"], serde_json::json!([]));
    assert_eq!(again["nextForwardToken"], serde_json::json!(fwd));
    let reqs = ctl.requests();
    let logs: Vec<_> = reqs.iter().filter(|r| r.service == "logs").collect();
    assert!(
        !logs.is_empty()
            && logs
                .iter()
                .all(|r| r.operation == "GetLogEvents" && !r.mutating)
    );

    // StopTask on a task that runs on (for an hour): UserInitiated, its container stopped.
    let td2 = register("1--exit-0-after-1h").await.unwrap();
    let out = c
        .run_task()
        .cluster("c1")
        .task_definition(
            td2.task_definition()
                .unwrap()
                .task_definition_arn()
                .unwrap(),
        )
        .launch_type(LaunchType::Fargate)
        .network_configuration(network())
        .send()
        .await
        .unwrap();
    let other = out.tasks()[0].task_arn().unwrap().to_string();
    ctl.advance(60.0);
    c.stop_task()
        .cluster("c1")
        .task(&other)
        .reason("cortado run: timed out")
        .send()
        .await
        .unwrap();
    ctl.advance(60.0);
    let t = c
        .describe_tasks()
        .cluster("c1")
        .tasks(&other)
        .send()
        .await
        .unwrap()
        .tasks()[0]
        .clone();
    assert_eq!(t.last_status(), Some("STOPPED"));
    assert_eq!(t.stop_code().map(|c| c.as_str()), Some("UserInitiated"));
    assert_eq!(t.stopped_reason(), Some("cortado run: timed out"));
}

/// `Throttle::Aws`: ECS's "Cluster read actions" bucket (50, 20 a second) admits 50 calls at
/// once and answers the rest ThrottlingException as ECS does (400, "Rate exceeded"), logged as
/// such; another category is unaffected; without the option nothing is refused.
#[tokio::test]
async fn aws_throttling_buckets_refuse_what_exceeds_the_burst() {
    let sb = sandbox::start(Options {
        speed: SPEED,
        throttle: sandbox::Throttle::Aws,
        ..Options::default()
    })
    .await
    .unwrap();
    let c = client(&sb, false);
    let mut ok = 0;
    let mut throttled = 0;
    // The bucket refills while the loop runs (in wall time), so no exact count is assumed:
    // call until the first refusal.
    for _ in 0..200 {
        match c.list_clusters().send().await {
            Ok(_) => ok += 1,
            Err(e) => {
                assert_eq!(e.code(), Some("ThrottlingException"));
                assert_eq!(e.message(), Some("Rate exceeded"));
                let raw = e.raw_response().unwrap();
                assert_eq!(raw.status().as_u16(), 400);
                throttled += 1;
                break;
            }
        }
    }
    assert_eq!(throttled, 1, "200 ListClusters were never throttled");
    assert!(ok >= 50, "the bucket holds 50 tokens, {ok} passed");
    // Service reads have a bucket of their own (no cluster exists: answered, not throttled).
    let other = c.list_services().send().await.unwrap_err();
    assert_eq!(other.code(), Some("ClusterNotFoundException"));
    let log = sb.control().requests();
    let refused: Vec<_> = log
        .iter()
        .filter(|r| r.error.as_deref() == Some("ThrottlingException"))
        .collect();
    assert_eq!(refused.len(), 1);
    assert_eq!(refused[0].operation, "ListClusters");
    assert_eq!(refused[0].status, 400);

    let plain = start(SPEED).await;
    let c = client(&plain, false);
    for _ in 0..200 {
        c.list_clusters().send().await.unwrap();
    }
}
