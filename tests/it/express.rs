//! ECS Express Mode services (`express_definition:`): created, updated through the canary ECS
//! runs for them, left alone when nothing changed, rolled back when the new tasks fail. The
//! real binary against an in-process sandbox; the end state read through the SDK.

use crate::common;

use crate::common::{FAST, Scenario, revision_of};

const SERVICE: &str = "express-web";

async fn express(s: &Scenario) -> aws_sdk_ecs::types::EcsExpressGatewayService {
    let svc = s
        .ecs
        .describe_services()
        .cluster("scenarios")
        .services(SERVICE)
        .send()
        .await
        .unwrap()
        .services()[0]
        .clone();
    assert_eq!(
        svc.resource_management_type().map(|t| t.as_str()),
        Some("ECS"),
        "an Express Mode service is managed by ECS"
    );
    s.ecs
        .describe_express_gateway_service()
        .service_arn(svc.service_arn().unwrap())
        .send()
        .await
        .unwrap()
        .service
        .unwrap()
}

async fn serving_revision(s: &Scenario) -> (u32, usize) {
    let svc = s
        .ecs
        .describe_services()
        .cluster("scenarios")
        .services(SERVICE)
        .send()
        .await
        .unwrap()
        .services()[0]
        .clone();
    (
        revision_of(svc.task_definition().unwrap_or_default()),
        svc.deployments().len(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn express_service_is_created_updated_by_canary_and_rolled_back() {
    let s = Scenario::new("express", FAST, &["v1", "v2", "v3--crash-20s"]).await;

    // Create: CreateExpressGatewayService, followed to a verdict.
    let r = s.deploy("v1", &[]);
    let r = r.await;
    r.expect_code(0);
    assert_eq!(r.result()["status"], "succeeded", "{}", r.dump());
    let ex = express(&s).await;
    let cfg = &ex.active_configurations()[0];
    assert!(cfg.primary_container().unwrap().image().ends_with("web:v1"));
    assert_eq!(cfg.cpu(), Some("512"));
    assert_eq!(
        cfg.scaling_target().and_then(|t| t.min_task_count()),
        Some(2)
    );

    // Nothing changed: no write, exit 0; diff agrees.
    let mark = s.mark();
    let r = s.deploy("v1", &[]).await;
    r.expect_code(0);
    assert_eq!(r.result()["status"], "no-change", "{}", r.dump());
    assert!(common::mutating(&s.requests_after(mark)).is_empty());
    s.cortado("v1", &["diff"]).await.expect_code(0);
    let d = s.cortado("v2", &["diff", "--exit-code"]).await;
    d.expect_code(2);

    // Update: one UpdateExpressGatewayService, then ECS's canary (5%, then 100%).
    let mark = s.mark();
    let r = s.deploy("v2", &[]).await;
    r.expect_code(0);
    let writes = common::mutating(&s.requests_after(mark));
    assert_eq!(writes, ["UpdateExpressGatewayService"], "{}", r.dump());
    let steps = common::production_steps(&r);
    // The 5% step lasts 3 minutes of ECS time (about a second here) and is seen; the 100%
    // step may pass between two polls at this speed: the serving revision says it happened.
    assert!(steps.contains(&5), "{steps:?}\n{}", r.dump());
    assert_eq!(serving_revision(&s).await.0, 2);

    // init from the live Express Mode service, then diff: nothing to change.
    let dir = std::env::temp_dir().join(format!("cortado-express-init-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let dir_s = dir.to_string_lossy().to_string();
    let r = s
        .cortado(
            "v2",
            &[
                "init",
                "--cluster",
                "scenarios",
                "--service",
                SERVICE,
                "--dir",
                &dir_s,
            ],
        )
        .await;
    r.expect_code(0);
    let written = std::fs::read_to_string(dir.join("cortado.yml")).unwrap();
    assert!(
        written.contains("express_definition: express-def.json"),
        "{written}"
    );
    let d = s
        .command_with(&dir.join("cortado.yml"), "v2", &["diff"])
        .output()
        .await
        .unwrap();
    assert_eq!(
        d.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&d.stdout)
    );
    let _ = std::fs::remove_dir_all(&dir);

    // A crashing image: ECS's circuit breaker rolls the canary back; cortado says so (exit 3)
    // and the service serves revision 2 again.
    let r = s.deploy("v3--crash-20s", &[]).await;
    r.expect_code(3);
    assert_eq!(r.result()["status"], "rolled-back", "{}", r.dump());
    assert_eq!(serving_revision(&s).await.0, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn express_definition_errors_are_located_and_task_flags_refused() {
    let s = Scenario::new("express", FAST, &["v1"]).await;
    let dir = std::env::temp_dir().join(format!("cortado-express-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("cortado.yml"),
        "region: us-east-1\ncluster: scenarios\nservice: express-web\nexpress_definition: ex.json\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("ex.json"),
        "{\n  \"executionRoleArn\": \"arn:aws:iam::123456789012:role/e\",\n  \"primaryContainer\": {\"image\": \"web:v1\", \"containerPrt\": 80},\n  \"cpu\": 512\n}\n",
    )
    .unwrap();
    let mark = s.mark();
    let r = s
        .command_with(&dir.join("cortado.yml"), "v1", &["deploy"])
        .output()
        .await
        .unwrap();
    let err = String::from_utf8_lossy(&r.stderr).to_string();
    assert_eq!(r.status.code(), Some(1), "{err}");
    // The unknown key (with its suggestion), the wrong type and the missing role, at file:line.
    assert!(
        err.contains("containerPrt") && err.contains("containerPort"),
        "{err}"
    );
    assert!(err.contains("ex.json:4"), "{err}");
    assert!(err.contains("infrastructureRoleArn"), "{err}");
    assert!(common::mutating(&s.requests_after(mark)).is_empty());

    let r = s.deploy("v1", &["--revision", "3"]).await;
    r.expect_code(1);
    assert!(r.stderr.contains("Express Mode"), "{}", r.stderr);
    assert!(common::mutating(&s.requests_after(mark)).is_empty());
    let _ = std::fs::remove_dir_all(&dir);
}
