//! `cortado promote --from staging --to production`: production gets the digest staging's
//! tasks run, rendered with production's settings, even after the tag moved in ECR.

use std::path::PathBuf;
use std::process::Stdio;

use crate::common::*;

const STAGING_ROLE: &str = "arn:aws:iam::123456789012:role/staging-deployer";
const PRODUCTION_ROLE: &str = "arn:aws:iam::210987654321:role/production-deployer";

/// A release over the `web` fixture's definitions: staging deploys service `web`, production
/// `web-prod` (each environment's envfile names the service), each as its own role.
fn release(label: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("cortado-promote-{label}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let web = fixture("web");
    std::fs::write(
        dir.join("cortado.yml"),
        format!(
            "region: us-east-1\ncluster: scenarios\nservice: '{{{{ must_env `SERVICE` }}}}'\n\
             task_definition: {}\nservice_definition: {}\ntimeout: 2m\n",
            web.join("ecs-task-def.json").display(),
            web.join("ecs-service-def.json").display()
        ),
    )
    .unwrap();
    std::fs::write(dir.join("staging.env"), "SERVICE=web\n").unwrap();
    std::fs::write(dir.join("production.env"), "SERVICE=web-prod\n").unwrap();
    let file = dir.join("cortado-release.yml");
    std::fs::write(
        &file,
        format!(
            "environments:\n  staging:\n    assume_role_arn: {STAGING_ROLE}\n    \
             envfiles: [staging.env]\n  production:\n    assume_role_arn: {PRODUCTION_ROLE}\n    \
             envfiles: [production.env]\nsteps:\n  - config: cortado.yml\n"
        ),
    )
    .unwrap();
    file
}

async fn cortado(s: &Scenario, args: &[&str]) -> Run {
    let mut cmd = tokio::process::Command::new(cortado_bin());
    cmd.env_clear()
        .args(args)
        .envs(sandbox_env(&s.sb.endpoint()))
        .env("TAG", "v1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    if let Some(path) = std::env::var_os("PATH") {
        cmd.env("PATH", path);
    }
    finish(cmd).await
}

/// `cortado promote --release FILE --from staging --to production EXTRA...`.
async fn promote(s: &Scenario, file: &str, extra: &[&str]) -> Run {
    let mut args = vec![
        "promote",
        "--release",
        file,
        "--from",
        "staging",
        "--to",
        "production",
    ];
    args.extend_from_slice(extra);
    cortado(s, &args).await
}

/// The images of the task definition `service` runs, and the digests its running tasks report.
async fn running(s: &Scenario, service: &str) -> (Vec<String>, Vec<String>) {
    let svc = s
        .ecs
        .describe_services()
        .cluster(CLUSTER)
        .services(service)
        .send()
        .await
        .unwrap();
    let td = svc.services()[0].task_definition().unwrap().to_string();
    let def = s
        .ecs
        .describe_task_definition()
        .task_definition(&td)
        .send()
        .await
        .unwrap();
    let images = def
        .task_definition()
        .unwrap()
        .container_definitions()
        .iter()
        .filter_map(|c| c.image().map(str::to_string))
        .collect();
    let arns = s
        .ecs
        .list_tasks()
        .cluster(CLUSTER)
        .service_name(service)
        .send()
        .await
        .unwrap()
        .task_arns()
        .to_vec();
    if arns.is_empty() {
        return (images, Vec::new());
    }
    let tasks = s
        .ecs
        .describe_tasks()
        .cluster(CLUSTER)
        .set_tasks(Some(arns))
        .send()
        .await
        .unwrap();
    let digests = tasks
        .tasks()
        .iter()
        .filter(|t| t.task_definition_arn() == Some(td.as_str()))
        .flat_map(|t| t.containers())
        .filter_map(|c| c.image_digest().map(str::to_string))
        .collect();
    (images, digests)
}

/// ECR's digest of `web:TAG` now.
async fn digest_of_tag(s: &Scenario, tag: &str) -> String {
    let out = aws_sdk_ecr::Client::new(&s.sdk())
        .describe_images()
        .repository_name("web")
        .image_ids(
            aws_sdk_ecr::types::ImageIdentifier::builder()
                .image_tag(tag)
                .build(),
        )
        .send()
        .await
        .unwrap();
    out.image_details()[0].image_digest().unwrap().to_string()
}

fn ops(s: &Scenario, mark: u64) -> Vec<String> {
    s.requests_after(mark)
        .iter()
        .map(|r| r.operation.clone())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_moved_tag_cannot_sneak_into_production() {
    let s = Scenario::new("web", FAST, &["v1"]).await;
    let file = release("moved");
    let file = file.to_str().unwrap();
    cortado(
        &s,
        &["deploy", "--release", file, "--environment", "staging"],
    )
    .await
    .expect_code(0);
    let staged = digest_of_tag(&s, "v1").await;
    let (_, staging_digests) = running(&s, "web").await;
    assert!(
        !staging_digests.is_empty() && staging_digests.iter().all(|d| *d == staged),
        "staging's tasks report ECR's digest of v1: {staging_digests:?} vs {staged}"
    );

    // Someone pushes another image under v1.
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "size": 7,
                   "digest": "sha256:0000000000000000000000000000000000000000000000000000000000000007"},
        "layers": []
    });
    aws_sdk_ecr::Client::new(&s.sdk())
        .put_image()
        .repository_name("web")
        .image_tag("v1")
        .image_manifest(manifest.to_string())
        .send()
        .await
        .unwrap();
    let moved = digest_of_tag(&s, "v1").await;
    assert_ne!(moved, staged, "the tag moved");
    // A task staging's scheduler starts now still runs the digest its deployment resolved.
    let first = s
        .ecs
        .list_tasks()
        .cluster(CLUSTER)
        .service_name("web")
        .send()
        .await
        .unwrap()
        .task_arns()[0]
        .clone();
    s.ecs
        .stop_task()
        .cluster(CLUSTER)
        .task(&first)
        .send()
        .await
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let (_, d) = running(&s, "web").await;
        if d.len() == 2 {
            assert!(d.iter().all(|x| *x == staged), "{d:?}");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no replacement: {d:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }

    // The dry run shows the plan and changes nothing.
    let mark = s.mark();
    let dry = promote(&s, file, &["--dry-run"]).await;
    dry.expect_code(0);
    assert!(
        dry.stdout.contains(&format!("web@{staged}")),
        "{}",
        dry.dump()
    );
    assert!(
        !s.requests_after(mark)
            .iter()
            .any(|r| r.mutating && r.operation != "AssumeRole"),
        "{:?}",
        ops(&s, mark)
    );

    let mark = s.mark();
    let r = promote(&s, file, &[]).await;
    r.expect_code(0);
    // The plan came first; each side connected as its own role; the digests came from tasks.
    assert!(r.stdout.contains(&format!("web@{staged}")), "{}", r.dump());
    assert!(
        !r.stderr.contains("no task of") && !r.stderr.contains("has not settled"),
        "{}",
        r.dump()
    );
    assert!(
        r.stderr.contains(&format!(
            "staging: service \"web\" container \"web\" runs {staged} (2 running task(s) of web:1)"
        )),
        "{}",
        r.dump()
    );
    let seen = ops(&s, mark);
    // Staging's role before staging is read, production's after it and before production's
    // first write.
    let at = |op: &str| seen.iter().position(|o| o == op).unwrap_or(usize::MAX);
    assert_eq!(seen.first().map(String::as_str), Some("AssumeRole"));
    let read = at("DescribeTasks");
    let again = seen
        .iter()
        .skip(read)
        .position(|o| o == "AssumeRole")
        .map(|p| p + read);
    assert!(
        again.is_some_and(|a| a < at("RegisterTaskDefinition")),
        "{seen:?}"
    );
    // Staging is only read.
    let (staging_images, _) = running(&s, "web").await;
    assert_eq!(staging_images, vec![format!("{REPO}:v1")]);
    // Production names the digest staging runs, and its tasks run it; not the moved tag's.
    let (images, digests) = running(&s, "web-prod").await;
    assert_eq!(images, vec![format!("{REPO}@{staged}")], "{}", r.dump());
    assert!(
        !digests.is_empty() && digests.iter().all(|d| *d == staged),
        "{digests:?}"
    );
    assert!(!digests.contains(&moved));
    // Each environment's role is of its own account: the sandbox made production's service,
    // task definition and tasks under production's account id, staging's under its own.
    let arn_of = |service: &'static str| {
        let ecs = s.ecs.clone();
        async move {
            let out = ecs
                .describe_services()
                .cluster(CLUSTER)
                .services(service)
                .send()
                .await
                .unwrap();
            let svc = &out.services()[0];
            (
                svc.service_arn().unwrap().to_string(),
                svc.task_definition().unwrap().to_string(),
            )
        }
    };
    let (prod_arn, prod_td) = arn_of("web-prod").await;
    assert!(
        prod_arn.starts_with("arn:aws:ecs:us-east-1:210987654321:service/"),
        "{prod_arn}"
    );
    assert!(
        prod_td.contains(":210987654321:task-definition/"),
        "{prod_td}"
    );
    let tasks = s
        .ecs
        .list_tasks()
        .cluster(CLUSTER)
        .service_name("web-prod")
        .send()
        .await
        .unwrap();
    assert!(
        !tasks.task_arns().is_empty()
            && tasks
                .task_arns()
                .iter()
                .all(|t| t.contains(":210987654321:task/")),
        "{:?}",
        tasks.task_arns()
    );
    let (staging_arn, _) = arn_of("web").await;
    assert!(
        staging_arn.contains(":123456789012:service/"),
        "{staging_arn}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn promote_refuses_bad_input_before_any_call() {
    let s = Scenario::new("web", FAST, &["v1"]).await;
    let file = release("refuse");
    let file = file.to_str().unwrap();
    let mark = s.mark();
    let cases: [(&[&str], &str); 4] = [
        (
            &["promote", "--from", "staging", "--to", "production"],
            "promote needs --release",
        ),
        (
            &[
                "promote",
                "--release",
                file,
                "--from",
                "staging",
                "--to",
                "staging",
            ],
            "--from and --to name the same environment",
        ),
        (
            &[
                "promote",
                "--release",
                file,
                "--from",
                "staging",
                "--to",
                "prod",
            ],
            "has no environment \"prod\"",
        ),
        (
            &[
                "promote",
                "--release",
                file,
                "--environment",
                "staging",
                "--from",
                "staging",
                "--to",
                "production",
            ],
            "not --environment",
        ),
    ];
    for (args, says) in cases {
        let r = cortado(&s, args).await;
        r.expect_code(1);
        assert!(r.stderr.contains(says), "{args:?}: {}", r.dump());
    }
    // Staging runs nothing yet: nothing to promote, and production is left alone.
    let r = promote(&s, file, &[]).await;
    assert_ne!(r.code, 0, "{}", r.dump());
    let wrote: Vec<String> = s
        .requests_after(mark)
        .into_iter()
        .filter(|r| r.mutating && r.operation != "AssumeRole")
        .map(|r| r.operation)
        .collect();
    assert!(wrote.is_empty(), "{wrote:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_no_staging_task_running_the_tag_is_resolved_by_ecr_and_said_so() {
    let s = Scenario::new("web", FAST, &["v1"]).await;
    let file = release("fallback");
    let file = file.to_str().unwrap();
    cortado(
        &s,
        &["deploy", "--release", file, "--environment", "staging"],
    )
    .await
    .expect_code(0);
    s.ecs
        .update_service()
        .cluster(CLUSTER)
        .service("web")
        .desired_count(0)
        .send()
        .await
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let (_, d) = running(&s, "web").await;
        if d.is_empty() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "tasks still run: {d:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let now = digest_of_tag(&s, "v1").await;
    let r = promote(&s, file, &[]).await;
    r.expect_code(0);
    assert!(
        r.stderr
            .contains("no task of staging's service \"web\" runs")
            && r.stderr.contains(&now),
        "{}",
        r.dump()
    );
    let (images, _) = running(&s, "web-prod").await;
    assert_eq!(images, vec![format!("{REPO}@{now}")]);
}

/// Production's definitions read a SecureString that staging's do not: promote's output (the
/// plan, the run, text and JSON) never shows it, and ECS gets it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secret_only_production_renders_reaches_ecs_but_no_output() {
    const SECRET: &str = "pr0m0te-Secret-77";
    let s = Scenario::new("web", FAST, &["v1"]).await;
    s.put_secure_parameter("/web/db_password", SECRET).await;
    let file = release("secret");
    let dir = file.parent().unwrap();
    let config = std::fs::read_to_string(dir.join("cortado.yml")).unwrap();
    let config = config.replace(
        &format!(
            "task_definition: {}",
            fixture("web").join("ecs-task-def.json").display()
        ),
        "task_definition: '{{ must_env `TASKDEF` }}'\nplugins:\n  - name: ssm",
    );
    std::fs::write(dir.join("cortado.yml"), config).unwrap();
    std::fs::write(
        dir.join("staging.env"),
        format!(
            "SERVICE=web\nTASKDEF={}\n",
            fixture("web").join("ecs-task-def.json").display()
        ),
    )
    .unwrap();
    std::fs::write(
        dir.join("production.env"),
        format!(
            "SERVICE=web-prod\nTASKDEF={}\n",
            fixture("web-secret").join("ecs-task-def.json").display()
        ),
    )
    .unwrap();
    let file = file.to_str().unwrap();
    cortado(
        &s,
        &["deploy", "--release", file, "--environment", "staging"],
    )
    .await
    .expect_code(0);
    let dry = promote(&s, file, &["--dry-run"]).await;
    dry.expect_code(0);
    assert!(dry.stdout.contains("DB_PASSWORD"), "{}", dry.dump());
    // -c chooses the release's steps to promote, as for deploy.
    let config = dir.join("cortado.yml");
    let only = cortado(
        &s,
        &[
            "promote",
            "--release",
            file,
            "-c",
            config.to_str().unwrap(),
            "--from",
            "staging",
            "--to",
            "production",
            "--dry-run",
        ],
    )
    .await;
    only.expect_code(0);
    assert!(only.stdout.contains("web-prod"), "{}", only.dump());
    let r = promote(&s, file, &["--output", "json"]).await;
    r.expect_code(0);
    for run in [&dry, &r] {
        assert!(
            !run.stdout.contains(SECRET) && !run.stderr.contains(SECRET),
            "{}",
            run.dump()
        );
    }
    let td = s
        .ecs
        .describe_task_definition()
        .task_definition("web:2")
        .send()
        .await
        .unwrap();
    let env = td.task_definition().unwrap().container_definitions()[0]
        .environment()
        .to_vec();
    assert!(
        env_pairs(&env).contains(&("DB_PASSWORD".to_string(), SECRET.to_string())),
        "{env:?}"
    );
}
