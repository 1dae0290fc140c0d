//! ecspresso's commands and flags that cortado carries (issue 23): each run against a sandbox,
//! with what it must change, and what it must not (dry runs make no mutating call).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};

use serde_json::Value;

use crate::common::*;

/// `cortado ARGS` for the scenario with text output (the scenario's own command asks for
/// JSON), and `--config CONFIG`.
fn text(s: &Scenario, config: &Path, tag: &str, args: &[&str]) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(cortado_bin());
    cmd.env_clear()
        .arg("--config")
        .arg(config)
        .args(args)
        .envs(sandbox_env(&s.sb.endpoint()))
        .env("TAG", tag)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    if let Some(path) = std::env::var_os("PATH") {
        cmd.env("PATH", path);
    }
    cmd
}

fn ops(s: &Scenario, mark: u64) -> Vec<String> {
    s.requests_after(mark)
        .iter()
        .map(|r| r.operation.clone())
        .collect()
}

/// A copy of the `web` fixture in a folder of its own, for a test that changes its files.
fn web_copy(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("cortado-parity-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    for f in ["cortado.yml", "ecs-service-def.json", "ecs-task-def.json"] {
        std::fs::copy(fixture("web").join(f), dir.join(f)).unwrap();
    }
    dir
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn register_and_scale_dry_runs_call_nothing_that_writes() {
    let s = Scenario::new("web", FAST, &["v1"]).await;
    s.deploy("v1", &[]).await.expect_code(0);
    let mark = s.mark();
    let reg = s.cortado("v2", &["register", "--dry-run"]).await;
    reg.expect_code(0);
    let v: Value = serde_json::from_str(&reg.stdout).expect("register --dry-run prints JSON");
    assert_eq!(v["dry_run"], true);
    assert!(
        v["task_definition"]["containerDefinitions"][0]["image"]
            .as_str()
            .unwrap_or_default()
            .ends_with("web:v2"),
        "{v:#}"
    );
    let scale = s
        .cortado("v1", &["scale", "--tasks", "5", "--dry-run"])
        .await;
    scale.expect_code(0);
    assert_eq!(scale.result()["outcome"], "dry run", "{}", scale.dump());
    assert!(
        mutating(&s.requests_after(mark)).is_empty(),
        "{:?}",
        ops(&s, mark)
    );
    assert_eq!(s.service().await.desired_count(), 2);
}

/// `refresh`: a new deployment of the revision the service runs, with its attributes and
/// desired count as they are (even when the file says otherwise).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_starts_a_new_deployment_of_what_runs() {
    let s = Scenario::new("web", FAST, &["v1", "v2"]).await;
    s.deploy("v1", &[]).await.expect_code(0);
    s.cortado("v1", &["scale", "--tasks", "1"])
        .await
        .expect_code(0);
    let before = s.service().await;
    let mark = s.mark();
    // A file whose attributes differ from the service's: refresh keeps the service's, and its
    // plan shows no attribute change.
    let dir = web_copy("refresh");
    let path = dir.join("ecs-service-def.json");
    let def = std::fs::read_to_string(&path).unwrap().replace(
        "\"healthCheckGracePeriodSeconds\": 30",
        "\"healthCheckGracePeriodSeconds\": 90",
    );
    std::fs::write(&path, def).unwrap();
    let dry =
        finish(s.command_with(&dir.join("cortado.yml"), "v2", &["refresh", "--dry-run"])).await;
    dry.expect_code(0);
    let plan = &dry.result()["plan"];
    assert_eq!(plan["changes"]["service"], "", "{}", dry.dump());
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        mutating(&s.requests_after(mark)).is_empty(),
        "{:?}",
        ops(&s, mark)
    );
    // TAG=v2 renders another image: refresh ignores the files and keeps revision 1.
    let run = s.cortado("v2", &["refresh"]).await;
    run.expect_code(0);
    assert_eq!(mutating(&s.requests_after(mark)), ["UpdateService"]);
    let after = s.service().await;
    Scenario::assert_settled(&after, 1, 1);
    assert_ne!(
        before.deployments()[0].id(),
        after.deployments()[0].id(),
        "a new deployment"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revisions_prints_the_current_or_latest_definition() {
    let s = Scenario::new("web", FAST, &["v1", "v2"]).await;
    s.deploy("v1", &[]).await.expect_code(0);
    s.cortado("v2", &["register"]).await.expect_code(0);
    for (which, image) in [("current", "web:v1"), ("latest", "web:v2"), ("1", "web:v1")] {
        let run = s
            .cortado("v1", &["revisions", &format!("--revision={which}")])
            .await;
        run.expect_code(0);
        let v: Value = serde_json::from_str(&run.stdout).unwrap();
        assert!(
            v["containerDefinitions"][0]["image"]
                .as_str()
                .unwrap_or_default()
                .ends_with(image),
            "{which}: {v:#}"
        );
    }
    let bad = s
        .cortado("v1", &["revisions", "--revision", "newest"])
        .await;
    bad.expect_code(1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tasks_tsv_find_and_stop_by_id() {
    let s = Scenario::new("web", FAST, &["v1"]).await;
    s.deploy("v1", &[]).await.expect_code(0);
    let tsv = finish(text(&s, &s.config, "v1", &["tasks", "--output", "tsv"])).await;
    tsv.expect_code(0);
    let rows: Vec<Vec<&str>> = tsv
        .stdout
        .lines()
        .map(|l| l.split('\t').collect())
        .collect();
    assert_eq!(rows[0][..2], ["ID", "TaskDefinition"], "{}", tsv.dump());
    assert_eq!(rows.len(), 3, "a header and two tasks\n{}", tsv.dump());
    assert!(
        rows[1..]
            .iter()
            .all(|r| r.len() == 8 && r[1] == "web:1" && r[3] == "RUNNING")
    );
    // Two tasks: --find needs to be told which.
    let which = s.cortado("v1", &["tasks", "--find"]).await;
    which.expect_code(1);
    assert!(which.stderr.contains("--id"), "{}", which.dump());
    let id = rows[1][0];
    let found = s.cortado("v1", &["tasks", "--find", "--id", id]).await;
    found.expect_code(0);
    let v: Value = serde_json::from_str(&found.stdout).unwrap();
    assert!(
        v["taskArn"].as_str().unwrap_or_default().ends_with(id),
        "{v:#}"
    );
    let mark = s.mark();
    s.cortado("v1", &["tasks", "--stop", "--force", "--id", id])
        .await
        .expect_code(0);
    assert_eq!(mutating(&s.requests_after(mark)), ["StopTask"]);
}

/// `run`: --dry-run calls nothing that writes; --client-token makes a retry start nothing
/// new; --overrides-file is rendered; --wait-until running leaves the task running; --tags
/// and --propagate-tags reach the task.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_dry_run_client_token_overrides_file_and_wait_until_running() {
    // The sandbox runs `...--exit-0-after-1h` images for an hour of its time.
    let long = "v1--exit-0-after-1h";
    let s = Scenario::new("web", FAST, &["v1", long]).await;
    s.deploy("v1", &[]).await.expect_code(0);
    let mark = s.mark();
    let dry = s
        .cortado(
            "v1",
            &["run", "--dry-run", "--overrides", r#"{"cpu":"512"}"#],
        )
        .await;
    dry.expect_code(0);
    assert!(
        mutating(&s.requests_after(mark)).is_empty(),
        "{:?}",
        ops(&s, mark)
    );
    let token = ["run", "--no-wait", "--client-token", "retry-1"];
    let first = s.cortado("v1", &token).await;
    first.expect_code(0);
    let again = s.cortado("v1", &token).await;
    again.expect_code(0);
    assert_eq!(
        first.events_of("result")[0]["task_arn"],
        again.events_of("result")[0]["task_arn"],
        "the same token starts nothing new\n{}\n{}",
        first.dump(),
        again.dump()
    );
    let dir = web_copy("overrides");
    std::fs::write(
        dir.join("overrides.json"),
        r#"{"containerOverrides":[{"name":"web","command":["sleep","{{ must_env `SECONDS` }}"]}]}"#,
    )
    .unwrap();
    let mut cmd = s.command_with(
        &dir.join("cortado.yml"),
        long,
        &[
            "run",
            "--overrides-file",
            &dir.join("overrides.json").to_string_lossy(),
            "--wait-until",
            "running",
            "--tags",
            "team=payments,purpose=migration",
            "--propagate-tags",
            "TASK_DEFINITION",
        ],
    );
    cmd.env("SECONDS", "100000");
    let running = finish(cmd).await;
    running.expect_code(0);
    let result = &running.events_of("result")[0];
    assert_eq!(result["outcome"], "running", "{}", running.dump());
    let arn = result["task_arn"].as_str().unwrap().to_string();
    let task = s
        .ecs
        .describe_tasks()
        .cluster(CLUSTER)
        .tasks(&arn)
        .include(aws_sdk_ecs::types::TaskField::Tags)
        .send()
        .await
        .unwrap()
        .tasks()[0]
        .clone();
    assert_eq!(task.last_status(), Some("RUNNING"));
    let command = task.overrides().unwrap().container_overrides()[0].command();
    assert_eq!(command, ["sleep", "100000"]);
    let tags: Vec<_> = task.tags().iter().filter_map(|t| t.key()).collect();
    assert!(
        tags.contains(&"team") && tags.contains(&"purpose"),
        "{tags:?}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// `delete`: a dry run and a refusal without --force call nothing that writes; --force
/// --terminate deletes a service that runs tasks.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_dry_run_then_force_terminate() {
    let s = Scenario::new("web", FAST, &["v1"]).await;
    s.deploy("v1", &[]).await.expect_code(0);
    let mark = s.mark();
    s.cortado("v1", &["delete", "--dry-run"])
        .await
        .expect_code(0);
    let refused = s.cortado("v1", &["delete"]).await;
    refused.expect_code(1);
    assert!(refused.stderr.contains("--force"), "{}", refused.dump());
    assert!(
        mutating(&s.requests_after(mark)).is_empty(),
        "{:?}",
        ops(&s, mark)
    );
    let without_terminate = s.cortado("v1", &["delete", "--force"]).await;
    assert_ne!(
        without_terminate.code, 0,
        "ECS refuses a service scaled above 0"
    );
    s.cortado("v1", &["delete", "--force", "--terminate"])
        .await
        .expect_code(0);
    let svc = s.service().await;
    assert_ne!(svc.status(), Some("ACTIVE"), "{svc:?}");
}

/// `rollback` of a service ECS's record knows only one revision of: the family's ACTIVE
/// revision before it (ecspresso's rule); --dry-run first changes nothing;
/// --deregister-task-definition retires the revision rolled back from.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollback_falls_back_to_the_familys_previous_revision() {
    let s = Scenario::new("web", FAST, &["v1", "v2"]).await;
    s.cortado("v1", &["register"]).await.expect_code(0);
    s.deploy("v2", &[]).await.expect_code(0);
    Scenario::assert_settled(&s.service().await, 2, 2);
    let mark = s.mark();
    let dry = s
        .cortado(
            "v2",
            &["rollback", "--deregister-task-definition", "--dry-run"],
        )
        .await;
    dry.expect_code(0);
    assert!(
        mutating(&s.requests_after(mark)).is_empty(),
        "{:?}",
        ops(&s, mark)
    );
    assert!(
        dry.result()["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("web:1"),
        "{}",
        dry.dump()
    );
    s.cortado("v2", &["rollback", "--deregister-task-definition"])
        .await
        .expect_code(0);
    s.assert_rolled_back_to(1, 2).await;
    let td = s
        .ecs
        .describe_task_definition()
        .task_definition("web:2")
        .send()
        .await
        .unwrap();
    assert_eq!(
        td.task_definition()
            .and_then(|t| t.status())
            .map(|x| x.as_str()),
        Some("INACTIVE")
    );
}

/// `--assume-role-arn`: every call after STS AssumeRole; a malformed role is one clear AWS
/// error before any other call.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn assume_role_arn_assumes_the_role_first() {
    let s = Scenario::new("web", FAST, &["v1"]).await;
    s.deploy("v1", &[]).await.expect_code(0);
    let mark = s.mark();
    let role = "arn:aws:iam::123456789012:role/deployer";
    s.cortado("v1", &["diff", "--assume-role-arn", role])
        .await
        .expect_code(0);
    let seen = ops(&s, mark);
    assert_eq!(
        seen.first().map(String::as_str),
        Some("AssumeRole"),
        "{seen:?}"
    );
    let mark = s.mark();
    let bad = s
        .cortado(
            "v1",
            &["diff", "--assume-role-arn", "not-a-role-arn-at-all"],
        )
        .await;
    bad.expect_code(7);
    assert!(
        bad.stderr.contains("cannot assume the role"),
        "{}",
        bad.dump()
    );
    assert_eq!(
        ops(&s, mark),
        ["AssumeRole"],
        "nothing after the failed AssumeRole"
    );
}

/// A service with EBS volume configurations: ECS reports them inside its deployments only, and
/// `diff` after a deploy shows no change.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn diff_sees_volume_configurations_of_the_deployment() {
    let s = Scenario::new("web", FAST, &["v1"]).await;
    let dir = web_copy("ebs");
    let edit = |file: &str, f: &dyn Fn(&mut Value)| {
        let path = dir.join(file);
        let mut v: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        f(&mut v);
        std::fs::write(&path, serde_json::to_string_pretty(&v).unwrap()).unwrap();
    };
    edit("ecs-task-def.json", &|v| {
        v["volumes"] = serde_json::json!([{"name": "ebs", "configuredAtLaunch": true}]);
    });
    edit("ecs-service-def.json", &|v| {
        v["volumeConfigurations"] = serde_json::json!([{"name": "ebs", "managedEBSVolume": {
            "roleArn": "arn:aws:iam::123456789012:role/ecsInfrastructureRole",
            "sizeInGiB": 10, "volumeType": "gp3", "filesystemType": "ext4"}}]);
    });
    let config = dir.join("cortado.yml");
    finish(s.command_with(&config, "v1", &["deploy"]))
        .await
        .expect_code(0);
    let diff = finish(s.command_with(&config, "v1", &["diff", "--exit-code"])).await;
    diff.expect_code(0);
    let _ = std::fs::remove_dir_all(&dir);
}

/// ecspresso's `ECSPRESSO_*` variables are read beside cortado's; `CORTADO_*` wins.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ecspresso_environment_variables_are_accepted() {
    let config = fixture("web").join("cortado.yml");
    let render = |vars: &[(&str, &str)]| {
        let mut cmd = tokio::process::Command::new(cortado_bin());
        cmd.env_clear()
            .args(["render", "config"])
            .env("TAG", "v1")
            .envs(vars.iter().copied())
            .current_dir(std::env::temp_dir())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        finish(cmd)
    };
    let path = config.to_string_lossy().to_string();
    let theirs = render(&[("ECSPRESSO_CONFIG", &path)]).await;
    theirs.expect_code(0);
    assert!(
        theirs.stdout.contains("\"service\": \"web\""),
        "{}",
        theirs.dump()
    );
    let both = render(&[
        ("ECSPRESSO_CONFIG", &path),
        ("CORTADO_CONFIG", "/nonexistent/cortado.yml"),
    ])
    .await;
    both.expect_code(1);
    assert!(
        both.stderr.contains("/nonexistent/cortado.yml"),
        "{}",
        both.dump()
    );
}

/// `scale` and `deploy --auto-scaling-min/--auto-scaling-max`: the service's scalable target
/// gets the capacities (a dry run only says so); min above max is bad input, before any call.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_scaling_min_max_set_the_scalable_target() {
    use aws_sdk_applicationautoscaling::types::{ScalableDimension, ServiceNamespace};
    let s = Scenario::new("web", FAST, &["v1"]).await;
    s.deploy("v1", &[]).await.expect_code(0);
    let aas = aws_sdk_applicationautoscaling::Client::new(&s.sdk());
    let resource = format!("service/{CLUSTER}/{SERVICE}");
    aas.register_scalable_target()
        .service_namespace(ServiceNamespace::Ecs)
        .scalable_dimension(ScalableDimension::EcsServiceDesiredCount)
        .resource_id(&resource)
        .min_capacity(1)
        .max_capacity(4)
        .send()
        .await
        .unwrap();
    let capacities = || async {
        let out = aas
            .describe_scalable_targets()
            .service_namespace(ServiceNamespace::Ecs)
            .resource_ids(&resource)
            .send()
            .await
            .unwrap();
        let t = &out.scalable_targets()[0];
        (t.min_capacity(), t.max_capacity())
    };
    let mark = s.mark();
    let bad = s
        .cortado(
            "v1",
            &[
                "scale",
                "--tasks",
                "2",
                "--auto-scaling-min",
                "5",
                "--auto-scaling-max",
                "3",
            ],
        )
        .await;
    bad.expect_code(1);
    let dry = [
        "scale",
        "--tasks",
        "3",
        "--auto-scaling-max",
        "8",
        "--dry-run",
    ];
    s.cortado("v1", &dry).await.expect_code(0);
    assert!(
        mutating(&s.requests_after(mark)).is_empty(),
        "{:?}",
        ops(&s, mark)
    );
    s.cortado(
        "v1",
        &[
            "scale",
            "--tasks",
            "3",
            "--auto-scaling-min",
            "2",
            "--auto-scaling-max",
            "8",
        ],
    )
    .await
    .expect_code(0);
    assert_eq!(capacities().await, (2, 8));
    s.deploy("v1", &["--auto-scaling-max", "6"])
        .await
        .expect_code(0);
    assert_eq!(capacities().await, (2, 6));
}

/// `diff --external CMD` (and ECSPRESSO_DIFF_COMMAND) runs the command on the live and the
/// rendered file of each definition; `--without-service` compares the task definition only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn diff_external_command_and_without_service() {
    let s = Scenario::new("web", FAST, &["v1", "v2"]).await;
    s.deploy("v1", &[]).await.expect_code(0);
    let ext = finish(text(
        &s,
        &s.config,
        "v2",
        &["diff", "--external", "diff -u"],
    ))
    .await;
    ext.expect_code(0);
    assert!(
        ext.stdout
            .contains("-      \"image\": \"123456789012.dkr.ecr.us-east-1.amazonaws.com/web:v1\""),
        "{}",
        ext.dump()
    );
    assert!(ext.stdout.contains(".rendered.json"), "{}", ext.dump());
    let mut cmd = text(&s, &s.config, "v2", &["diff"]);
    cmd.env("ECSPRESSO_DIFF_COMMAND", "echo compared");
    let theirs = finish(cmd).await;
    theirs.expect_code(0);
    assert!(theirs.stdout.contains("compared "), "{}", theirs.dump());
    // The file says 3 tasks, the service runs 2 (scaled): a service difference only.
    let dir = web_copy("without-service");
    let path = dir.join("ecs-service-def.json");
    let def = std::fs::read_to_string(&path)
        .unwrap()
        .replace("\"desiredCount\": 2", "\"desiredCount\": 3");
    std::fs::write(&path, def).unwrap();
    let config = dir.join("cortado.yml");
    let with = finish(s.command_with(&config, "v1", &["diff", "--exit-code"])).await;
    with.expect_code(2);
    let without =
        finish(s.command_with(&config, "v1", &["diff", "--exit-code", "--without-service"])).await;
    without.expect_code(0);
    let _ = std::fs::remove_dir_all(&dir);
}

/// ecspresso's spellings: `render task-definition`, `deregister --keeps N --dry-run --force`,
/// `init --force-overwrite --task-definition-path --service-definition-path`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ecspresso_spellings_of_render_deregister_and_init() {
    let s = Scenario::new("web", FAST, &["v1", "v2"]).await;
    s.deploy("v1", &[]).await.expect_code(0);
    for tag in ["v2", "v1"] {
        s.cortado(tag, &["register"]).await.expect_code(0);
    }
    let td = s.cortado("v1", &["render", "task-definition"]).await;
    td.expect_code(0);
    assert!(td.stdout.contains("\"family\": \"web\""), "{}", td.dump());
    let mark = s.mark();
    let dry = finish(text(
        &s,
        &s.config,
        "v1",
        &["deregister", "--keeps", "1", "--dry-run", "--force"],
    ))
    .await;
    dry.expect_code(0);
    assert!(
        dry.stdout.contains("would deregister") && dry.stdout.contains("web:2"),
        "{}",
        dry.dump()
    );
    assert!(
        !dry.stdout.contains("web:1\n"),
        "the running revision stays\n{}",
        dry.dump()
    );
    assert!(
        mutating(&s.requests_after(mark)).is_empty(),
        "{:?}",
        ops(&s, mark)
    );
    let dir = std::env::temp_dir().join(format!("cortado-parity-init-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("td.json"), "{}").unwrap();
    let d = dir.to_string_lossy().to_string();
    let init = [
        "init",
        "--cluster",
        CLUSTER,
        "--service",
        SERVICE,
        "--dir",
        &d,
        "--task-definition-path",
        "td.json",
        "--service-definition-path",
        "sd.json",
        "--force-overwrite",
    ];
    s.cortado("v1", &init).await.expect_code(0);
    let yml = std::fs::read_to_string(dir.join("cortado.yml")).unwrap();
    assert!(
        yml.contains("task_definition: td.json") && yml.contains("service_definition: sd.json"),
        "{yml}"
    );
    assert!(
        std::fs::read_to_string(dir.join("td.json"))
            .unwrap()
            .contains("containerDefinitions")
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// `tasks logs` prints the CloudWatch Logs of the service's running tasks, each line with its
/// task and container; `tasks find` is `--find`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tasks_logs_and_subcommands() {
    let s = Scenario::new("web", FAST, &["v1"]).await;
    let dir = web_copy("logs");
    let path = dir.join("ecs-task-def.json");
    let mut td: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    td["containerDefinitions"][0]["logConfiguration"] = serde_json::json!({
        "logDriver": "awslogs",
        "options": {"awslogs-group": "/ecs/web", "awslogs-region": "us-east-1", "awslogs-stream-prefix": "web"}
    });
    std::fs::write(&path, serde_json::to_string_pretty(&td).unwrap()).unwrap();
    let config = dir.join("cortado.yml");
    finish(s.command_with(&config, "v1", &["deploy", "--tasks", "1"]))
        .await
        .expect_code(0);
    let logs = finish(text(&s, &config, "v1", &["tasks", "logs"])).await;
    logs.expect_code(0);
    let line = logs.stdout.lines().next().unwrap_or_default().to_string();
    assert!(
        line.contains(" web | ") && line.contains("web:v1"),
        "{}",
        logs.dump()
    );
    let found = finish(s.command_with(&config, "v1", &["tasks", "find"])).await;
    found.expect_code(0);
    let v: Value = serde_json::from_str(&found.stdout).unwrap();
    assert!(v["taskArn"].is_string(), "{v:#}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// `rollback --with-previous-task-definition`: the family's ACTIVE revision before the
/// running one (ecspresso's legacy rule), where ECS's record would name another.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollback_with_previous_task_definition_follows_the_family() {
    let s = Scenario::new("web", FAST, &["v1", "v2"]).await;
    s.on_v2().await;
    s.cortado("v2", &["rollback"]).await.expect_code(0);
    s.deploy("v2", &[]).await.expect_code(0);
    Scenario::assert_settled(&s.service().await, 3, 2);
    // ECS's record says revision 1 served before 3; the family's previous revision is 2.
    s.cortado("v2", &["rollback", "--with-previous-task-definition"])
        .await
        .expect_code(0);
    s.assert_rolled_back_to(2, 2).await;
}

/// ecspresso v3: a config's own fields may call its plugins' functions (`cluster` and
/// `service` from a Terraform state here); the `plugins:` section itself may not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn top_level_config_fields_call_the_configs_plugins() {
    let s = Scenario::new("web", FAST, &["v1"]).await;
    let dir = web_copy("top-level-plugins");
    std::fs::write(
        dir.join("ecs.tfstate"),
        r#"{"version": 4, "outputs": {"cluster": {"value": "scenarios", "type": "string"}, "service": {"value": "web", "type": "string"}}, "resources": []}"#,
    )
    .unwrap();
    let config = dir.join("cortado.yml");
    std::fs::write(
        &config,
        "region: us-east-1\ncluster: \"{{ ecs_tfstate `output.cluster` }}\"\nservice: '{{ ecs_tfstate `output.service` }}'\nservice_definition: ecs-service-def.json\ntask_definition: ecs-task-def.json\ntimeout: 2m\nplugins:\n  - name: tfstate\n    func_prefix: ecs_\n    config: {path: ecs.tfstate}\n",
    )
    .unwrap();
    let rendered = finish(s.command_with(&config, "v1", &["render", "config"])).await;
    rendered.expect_code(0);
    assert!(
        rendered.stdout.contains("\"cluster\": \"scenarios\""),
        "{}",
        rendered.dump()
    );
    let deployed = finish(s.command_with(&config, "v1", &["deploy"])).await;
    deployed.expect_code(0);
    assert_eq!(deployed.result()["service"], "web", "{}", deployed.dump());
    assert_eq!(
        deployed.result()["cluster"],
        "scenarios",
        "{}",
        deployed.dump()
    );
    // A name no plugin defines is still the located error it always was.
    let typo = std::fs::read_to_string(&config).unwrap().replace(
        "ecs_tfstate `output.service`",
        "ecs_tfstat `output.service`",
    );
    std::fs::write(&config, typo).unwrap();
    let bad = finish(s.command_with(&config, "v1", &["validate"])).await;
    bad.expect_code(1);
    assert!(
        bad.stdout
            .contains("\"function \\\"ecs_tfstat\\\" not defined\""),
        "{}",
        bad.dump()
    );
    assert!(bad.stdout.contains("\"line\": 3"), "{}", bad.dump());
    // The plugins section cannot use what it defines.
    std::fs::write(
        &config,
        "cluster: \"{{ ecs_tfstate `output.cluster` }}\"\ntask_definition: ecs-task-def.json\nplugins:\n  - name: tfstate\n    func_prefix: ecs_\n    config: {path: \"{{ ecs_tfstate `output.cluster` }}\"}\n",
    )
    .unwrap();
    let circular = finish(s.command_with(&config, "v1", &["validate"])).await;
    circular.expect_code(1);
    assert!(
        circular
            .dump()
            .contains("`plugins` calls a plugin function"),
        "{}",
        circular.dump()
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// `scale --suspend-auto-scaling` alone changes the scalable target's state only (no
/// UpdateService), as ecspresso documents; `--resume-auto-scaling --tasks N --no-wait` resumes
/// it, sets the count and does not follow; both flags suspend for the scale and resume after.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scale_suspends_and_resumes_auto_scaling_and_no_wait_does_not_follow() {
    use aws_sdk_applicationautoscaling::types::{ScalableDimension, ServiceNamespace};
    let s = Scenario::new("web", FAST, &["v1"]).await;
    s.deploy("v1", &[]).await.expect_code(0);
    let aas = aws_sdk_applicationautoscaling::Client::new(&s.sdk());
    let resource = format!("service/{CLUSTER}/{SERVICE}");
    aas.register_scalable_target()
        .service_namespace(ServiceNamespace::Ecs)
        .scalable_dimension(ScalableDimension::EcsServiceDesiredCount)
        .resource_id(&resource)
        .min_capacity(1)
        .max_capacity(4)
        .send()
        .await
        .unwrap();
    let suspended = || async {
        let out = aas
            .describe_scalable_targets()
            .service_namespace(ServiceNamespace::Ecs)
            .resource_ids(&resource)
            .send()
            .await
            .unwrap();
        let st = out.scalable_targets()[0]
            .suspended_state()
            .cloned()
            .unwrap_or_else(|| {
                aws_sdk_applicationautoscaling::types::SuspendedState::builder().build()
            });
        [
            st.dynamic_scaling_in_suspended().unwrap_or(false),
            st.dynamic_scaling_out_suspended().unwrap_or(false),
            st.scheduled_scaling_suspended().unwrap_or(false),
        ]
    };
    let desired = || async { s.service().await.desired_count() };
    s.cortado("v1", &["scale"]).await.expect_code(1);
    let mark = s.mark();
    s.cortado("v1", &["scale", "--suspend-auto-scaling"])
        .await
        .expect_code(0);
    assert_eq!(suspended().await, [true; 3]);
    assert!(
        !ops(&s, mark).contains(&"UpdateService".to_string()),
        "{:?}",
        ops(&s, mark)
    );
    let mark = s.mark();
    let run = s
        .cortado(
            "v1",
            &[
                "scale",
                "--resume-auto-scaling",
                "--tasks",
                "3",
                "--no-wait",
            ],
        )
        .await;
    run.expect_code(0);
    let seen = ops(&s, mark);
    assert_eq!(suspended().await, [false; 3]);
    assert!(
        run.result()["detail"]
            .as_str()
            .unwrap()
            .contains("--no-wait"),
        "{}",
        run.dump()
    );
    assert_eq!(desired().await, 3);
    assert_eq!(
        seen.iter().filter(|o| *o == "UpdateService").count(),
        1,
        "{seen:?}"
    );
    // Not followed: no poll of the service after the update.
    let after = seen.iter().position(|o| o == "UpdateService").unwrap();
    assert!(
        !seen[after..].iter().any(|o| o == "DescribeServices"),
        "{seen:?}"
    );
    // Both flags: suspended during the scale, resumed after it succeeded.
    let mark = s.mark();
    s.cortado(
        "v1",
        &[
            "scale",
            "--suspend-auto-scaling",
            "--resume-auto-scaling",
            "--tasks",
            "2",
        ],
    )
    .await
    .expect_code(0);
    assert_eq!(suspended().await, [false; 3]);
    let writes: Vec<String> = ops(&s, mark)
        .into_iter()
        .filter(|o| o == "RegisterScalableTarget" || o == "UpdateService")
        .collect();
    assert_eq!(
        writes,
        [
            "RegisterScalableTarget",
            "UpdateService",
            "RegisterScalableTarget"
        ],
    );
    assert_eq!(desired().await, 2);
    // Both flags with --no-wait cannot resume after success: refused before any call.
    let mark = s.mark();
    s.cortado(
        "v1",
        &[
            "scale",
            "--suspend-auto-scaling",
            "--resume-auto-scaling",
            "--tasks",
            "2",
            "--no-wait",
        ],
    )
    .await
    .expect_code(1);
    assert!(mutating(&s.requests_after(mark)).is_empty());
}

/// ecspresso pre-v3's `--wait-until paused` on `deploy`, `continue` and `wait`, and
/// `continue --no-wait`, on a blue/green service with two PAUSE hooks and no gate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_until_paused_and_continue_no_wait() {
    let mut s = Scenario::blue_green("BLUE_GREEN", FAST, &["v1", "v2"]).await;
    let dir = std::env::temp_dir().join(format!("cortado-parity-paused-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(
        fixture("web-bg").join("ecs-task-def.json"),
        dir.join("ecs-task-def.json"),
    )
    .unwrap();
    let service = std::fs::read_to_string(fixture("web-bg").join("ecs-service-def.json"))
        .unwrap()
        .replace(
            "\"lifecycleStages\": [\"POST_TEST_TRAFFIC_SHIFT\"]",
            "\"lifecycleStages\": [\"POST_TEST_TRAFFIC_SHIFT\", \"POST_PRODUCTION_TRAFFIC_SHIFT\"]",
        );
    assert!(service.contains("POST_PRODUCTION_TRAFFIC_SHIFT"));
    std::fs::write(dir.join("ecs-service-def.json"), service).unwrap();
    let config = std::fs::read_to_string(fixture("web-bg").join("cortado.yml")).unwrap();
    let without_gate = config.split("rollout:").next().unwrap().to_string();
    std::fs::write(dir.join("cortado.yml"), without_gate).unwrap();
    s.config = dir.join("cortado.yml");
    // Creating the service passes no hook.
    s.deploy("v1", &[]).await.expect_code(0);

    let paused = s.deploy("v2", &["--wait-until", "paused"]).await;
    paused.expect_code(0);
    let r = paused.result();
    assert_eq!(r["status"], "paused", "{}", paused.dump());
    assert_eq!(
        r["journey"]["paused_at"]["stage"],
        "POST_TEST_TRAFFIC_SHIFT"
    );
    // Continue to the next pause: not the hook it just answered.
    let next = s
        .cortado("v2", &["continue", "--wait-until", "paused"])
        .await;
    next.expect_code(0);
    let r = next.result();
    assert_eq!(r["status"], "paused", "{}", next.dump());
    assert!(
        next.dump().contains("POST_PRODUCTION_TRAFFIC_SHIFT"),
        "{}",
        next.dump()
    );
    // `wait --wait-until paused` finds it waiting there and says so at once.
    let waiting = s.cortado("v2", &["wait", "--wait-until", "paused"]).await;
    waiting.expect_code(0);
    assert_eq!(waiting.result()["status"], "paused", "{}", waiting.dump());
    // `continue --no-wait` answers and leaves.
    let mark = s.mark();
    let left = s.cortado("v2", &["continue", "--no-wait"]).await;
    left.expect_code(0);
    assert!(
        left.result()["detail"]
            .as_str()
            .unwrap()
            .contains("--no-wait"),
        "{}",
        left.dump()
    );
    assert_eq!(continue_calls(&s, mark), 1);
    s.cortado("v2", &["wait"]).await.expect_code(0);
    Scenario::assert_settled(&s.service().await, 2, 2);
    let _ = std::fs::remove_dir_all(&dir);
}

/// `diff --jsonnet` (ecspresso's): the same unified diff with the definitions printed as
/// Jsonnet (bare keys, single-quoted strings); `--external` gets `.jsonnet` files.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn diff_jsonnet_prints_the_definitions_as_jsonnet() {
    let s = Scenario::new("web", FAST, &["v1", "v2"]).await;
    s.deploy("v1", &[]).await.expect_code(0);
    let out = finish(text(&s, &s.config, "v2", &["diff", "--jsonnet"])).await;
    out.expect_code(0);
    assert!(
        out.stdout
            .contains("-      image: '123456789012.dkr.ecr.us-east-1.amazonaws.com/web:v1',"),
        "{}",
        out.dump()
    );
    assert!(
        out.stdout
            .contains("+      image: '123456789012.dkr.ecr.us-east-1.amazonaws.com/web:v2',"),
        "{}",
        out.dump()
    );
    assert!(!out.stdout.contains("\"image\""), "{}", out.dump());
    let ext = finish(text(
        &s,
        &s.config,
        "v2",
        &["diff", "--jsonnet", "--external", "echo"],
    ))
    .await;
    ext.expect_code(0);
    assert!(ext.stdout.contains(".rendered.jsonnet"), "{}", ext.dump());
}

/// `init --task-definition NAME:REV` (ecspresso's, instead of `--service`): the task
/// definition and a config that names it and no service; `--service` with it is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn init_from_a_task_definition_alone() {
    let s = Scenario::new("web", FAST, &["v1"]).await;
    s.deploy("v1", &[]).await.expect_code(0);
    let dir = std::env::temp_dir().join(format!("cortado-parity-init-td-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let dir_s = dir.display().to_string();
    let args = [
        "init",
        "--cluster",
        CLUSTER,
        "--task-definition",
        "web:1",
        "--dir",
        &dir_s,
        "--image-tag-env",
        "TAG",
    ];
    s.cortado("v1", &args).await.expect_code(0);
    let yml = std::fs::read_to_string(dir.join("cortado.yml")).unwrap();
    assert!(yml.contains("task_definition: ecs-task-def.json"), "{yml}");
    assert!(!yml.contains("service"), "{yml}");
    assert!(!dir.join("ecs-service-def.json").exists());
    let td = std::fs::read_to_string(dir.join("ecs-task-def.json")).unwrap();
    assert!(td.contains("\"family\": \"web\""), "{td}");
    assert!(td.contains("{{ must_env `TAG` }}"), "{td}");
    // The config it wrote loads and renders.
    let rendered =
        finish(s.command_with(&dir.join("cortado.yml"), "v1", &["render", "taskdef"])).await;
    rendered.expect_code(0);
    assert!(rendered.stdout.contains("web:v1"), "{}", rendered.dump());
    let both = [
        "init",
        "--cluster",
        CLUSTER,
        "--service",
        SERVICE,
        "--task-definition",
        "web:1",
        "--dir",
        &dir_s,
        "--force",
    ];
    s.cortado("v1", &both).await.expect_code(1);
    let _ = std::fs::remove_dir_all(&dir);
}

/// `verify --cache` (ecspresso's, on by default): a resource two configs name is read once;
/// `--no-cache` reads it for each config.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_cache_reads_a_shared_resource_once() {
    let s = Scenario::new("web", FAST, &["v1"]).await;
    s.deploy("v1", &[]).await.expect_code(0);
    let other = web_copy("verify-cache");
    let count = |mark: u64, op: &str| {
        s.requests_after(mark)
            .iter()
            .filter(|r| r.operation == op)
            .count()
    };
    let configs = |extra: &[&'static str]| {
        // Both configs before the command (a global option given after it replaces them).
        let mut a: Vec<String> = vec![
            "-c".into(),
            other.join("cortado.yml").display().to_string(),
            "verify".into(),
        ];
        a.extend(extra.iter().map(|s| s.to_string()));
        a
    };
    let mut reads = Vec::new();
    for extra in [&[][..], &["--cache"][..], &["--no-cache"][..]] {
        let mark = s.mark();
        let args = configs(extra);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let run = s.cortado("v1", &args).await;
        let roles = count(mark, "GetRole");
        let images = count(mark, "BatchGetImage") + count(mark, "DescribeImages");
        assert!(roles > 0, "{}", run.dump());
        reads.push((roles, images));
    }
    assert_eq!(reads[0], reads[1], "--cache is the default");
    assert_eq!(reads[2].0, 2 * reads[0].0, "{reads:?}");
    assert_eq!(reads[2].1, 2 * reads[0].1, "{reads:?}");
    let _ = std::fs::remove_dir_all(&other);
}

/// A config without `service:` (what `init --task-definition` writes; ecspresso users keep
/// them for batch jobs): validate, render, diff (the task definition against the family's
/// newest revision), register, revisions, run (placed as the service definition says) and
/// deregister (never a revision a task of the family still runs) work; the commands that
/// need a service refuse with one error naming `service:`, before any call that writes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_config_without_service_runs_one_off_tasks() {
    let task_id = |arn: &str| arn.rsplit('/').next().unwrap_or_default().to_string();
    let long = "v1--exit-0-after-1h";
    let s = Scenario::new("web", FAST, &["v1", "v2", long]).await;
    let dir = web_copy("nosvc");
    let yml = std::fs::read_to_string(dir.join("cortado.yml")).unwrap();
    let without: String = yml
        .lines()
        .filter(|l| !l.starts_with("service:"))
        .map(|l| format!("{l}\n"))
        .collect();
    assert!(without.contains("service_definition:") && !without.contains("\nservice:"));
    let config = dir.join("cortado.yml");
    std::fs::write(&config, &without).unwrap();
    let at = |tag: &str, args: &[&str]| finish(s.command_with(&config, tag, args));

    at("v1", &["validate"]).await.expect_code(0);
    let rendered = at("v1", &["render", "taskdef"]).await;
    rendered.expect_code(0);
    assert!(rendered.stdout.contains("web:v1"), "{}", rendered.dump());

    // Nothing registered yet: diff says a new revision, and changes nothing.
    let mark = s.mark();
    let diff = at("v1", &["diff", "--format", "json", "--exit-code"]).await;
    diff.expect_code(2);
    let v: Value = serde_json::from_str(&diff.stdout).expect("diff prints JSON");
    assert_eq!(v["services"][0]["new_revision"], true, "{v:#}");
    assert_eq!(v["services"][0]["create_service"], false, "{v:#}");
    assert!(
        mutating(&s.requests_after(mark)).is_empty(),
        "{:?}",
        ops(&s, mark)
    );
    at("v1", &["register"]).await.expect_code(0);
    let same = at("v1", &["diff", "--format", "json", "--exit-code"]).await;
    same.expect_code(0);
    let revs = at("v1", &["revisions", "--revision", "latest"]).await;
    revs.expect_code(0);
    let td: Value = serde_json::from_str(&revs.stdout).expect("revisions --revision prints JSON");
    assert_eq!(td["revision"], 1, "{td:#}");

    // run: registers the changed definition (web:2) and places the task as the service
    // definition says (Fargate, awsvpc), with no service to read.
    let mark = s.mark();
    let started = at(long, &["run", "--no-wait"]).await;
    started.expect_code(0);
    assert!(
        !ops(&s, mark).iter().any(|o| o == "DescribeServices"),
        "{:?}",
        ops(&s, mark)
    );
    let arn = started.events_of("result")[0]["task_arn"]
        .as_str()
        .unwrap()
        .to_string();
    let task = s
        .ecs
        .describe_tasks()
        .cluster(CLUSTER)
        .tasks(&arn)
        .send()
        .await
        .unwrap()
        .tasks()[0]
        .clone();
    assert_eq!(revision_of(task.task_definition_arn().unwrap()), 2);
    assert_eq!(
        task.launch_type(),
        Some(&aws_sdk_ecs::types::LaunchType::Fargate)
    );
    let done = at("v2", &["run"]).await;
    done.expect_code(0);
    assert_eq!(
        done.events_of("result")[0]["outcome"],
        "exited",
        "{}",
        done.dump()
    );

    // tasks: the family's tasks (the one still running), as ecspresso lists them.
    let tasks = at("v1", &["tasks"]).await;
    tasks.expect_code(0);
    assert!(tasks.stdout.contains(&task_id(&arn)), "{}", tasks.dump());
    let found = at("v1", &["tasks", "--find", "--id", &task_id(&arn)]).await;
    found.expect_code(0);
    let logs = at("v1", &["tasks", "logs"]).await;
    logs.expect_code(0);
    assert!(
        logs.stderr
            .contains(&format!("{} web: no logs to read", task_id(&arn))),
        "{}",
        logs.dump()
    );

    // deregister: web:2 runs a task, so it stays; web:1 goes.
    let mark = s.mark();
    let kept = at(long, &["deregister", "--revision", "2"]).await;
    assert_ne!(kept.code, 0, "{}", kept.dump());
    assert!(kept.stderr.contains("in use"), "{}", kept.dump());
    assert!(
        mutating(&s.requests_after(mark)).is_empty(),
        "{:?}",
        ops(&s, mark)
    );
    at("v1", &["deregister", "--revision", "1"])
        .await
        .expect_code(0);
    let listed = at("v1", &["revisions"]).await;
    listed.expect_code(0);
    assert!(!listed.stdout.contains("web:1\""), "{}", listed.dump());

    // The commands that need a service refuse, naming the key, and write nothing.
    let mark = s.mark();
    for cmd in [
        &["deploy"][..],
        &["status"],
        &["scale", "--tasks", "1"],
        &["rollback"],
        &["wait"],
        &["refresh"],
        &["delete", "--force"],
    ] {
        let r = at("v1", cmd).await;
        r.expect_code(1);
        assert!(
            r.stderr.contains("no `service:` key") && r.stderr.contains("cortado.yml:1"),
            "{cmd:?}\n{}",
            r.dump()
        );
    }
    assert!(
        mutating(&s.requests_after(mark)).is_empty(),
        "{:?}",
        ops(&s, mark)
    );

    // awsvpc with no service definition at all: nothing to place the task with.
    let bare: String = without
        .lines()
        .filter(|l| !l.starts_with("service_definition:"))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(&config, bare).unwrap();
    let mark = s.mark();
    let unplaced = at("v1", &["run"]).await;
    unplaced.expect_code(1);
    assert!(
        unplaced.stderr.contains("`service_definition:`") && unplaced.stderr.contains("awsvpc"),
        "{}",
        unplaced.dump()
    );
    assert!(
        mutating(&s.requests_after(mark)).is_empty(),
        "{:?}",
        ops(&s, mark)
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// A stand-in for a state server and Terraform Cloud's API on 127.0.0.1: `/states/web.tfstate`
/// wants `Bearer tok-123` (TFE_TOKEN) or `Basic ci:pw`; the API names the state version's
/// download URL, which redirects to the state. Every request is kept as `PATH AUTHORIZATION`.
async fn fake_state_server(seen: Arc<Mutex<Vec<String>>>) -> String {
    use axum::extract::State;
    use axum::http::{HeaderMap, StatusCode, Uri};
    type Seen = Arc<Mutex<Vec<String>>>;
    async fn route(
        State(seen): State<Seen>,
        uri: Uri,
        headers: HeaderMap,
    ) -> (StatusCode, [(&'static str, String); 1], String) {
        let auth = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let host = headers
            .get("host")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        seen.lock().unwrap().push(format!("{} {auth}", uri.path()));
        let state = include_str!("../fixtures/tfstate/terraform.tfstate");
        let json = [("content-type", "application/json".to_string())];
        // "ci:pw" in Base64.
        let authorized = auth == "Bearer tok-123" || auth == "Basic Y2k6cHc=";
        match uri.path() {
            "/states/web.tfstate" if authorized => (StatusCode::OK, json, state.into()),
            "/states/web.tfstate" => (StatusCode::UNAUTHORIZED, json, "{}".into()),
            "/api/v2/organizations/acme/workspaces/web-prod" if authorized => (
                StatusCode::OK,
                json,
                r#"{"data":{"id":"ws-42","type":"workspaces"}}"#.into(),
            ),
            "/api/v2/workspaces/ws-42/current-state-version" if authorized => (
                StatusCode::OK,
                json,
                format!(
                    r#"{{"data":{{"id":"sv-7","attributes":{{"hosted-state-download-url":"http://{host}/archivist/sv-7"}}}}}}"#
                ),
            ),
            "/archivist/sv-7" => (
                StatusCode::FOUND,
                [("location", "/states/web.tfstate".to_string())],
                String::new(),
            ),
            _ => (StatusCode::NOT_FOUND, json, "{}".into()),
        }
    }
    serve_http(axum::Router::new().fallback(route).with_state(seen)).await
}

/// The tfstate plugin reads a state over HTTP (TFE_TOKEN as a Bearer token, or the url's
/// user:password as Basic) and from Terraform Cloud's API (`remote://HOST/ORG/WORKSPACE`),
/// as ecspresso's tfstate-lookup does; failures are located and never show a credential;
/// plain http to another host is refused when the config loads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tfstate_over_http_and_terraform_cloud() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let base = fake_state_server(seen.clone()).await;
    let host = base.trim_start_matches("http://").to_string();
    let dir = web_copy("tfstate-http");
    let td = std::fs::read_to_string(dir.join("ecs-task-def.json")).unwrap();
    let td = td.replace(
        r#""family": "web","#,
        r#""family": "web", "taskRoleArn": "{{ tfstate `aws_iam_role.task.arn` }}","#,
    );
    assert!(td.contains("tfstate"), "{td}");
    std::fs::write(dir.join("ecs-task-def.json"), td).unwrap();
    let config = dir.join("cortado.yml");
    let original = std::fs::read_to_string(&config).unwrap();
    let render = |url: &str, env: &[(&str, &str)]| {
        std::fs::write(
            &config,
            format!("{original}plugins:\n  - name: tfstate\n    config:\n      url: {url}\n"),
        )
        .unwrap();
        let mut cmd = tokio::process::Command::new(cortado_bin());
        cmd.env_clear()
            .arg("--config")
            .arg(&config)
            .args(["render", "taskdef"])
            .env("TAG", "v1")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        finish(cmd)
    };
    let role = "arn:aws:iam::123456789012:role/web-task";

    let bearer = render(
        &format!("{base}/states/web.tfstate"),
        &[("TFE_TOKEN", "tok-123")],
    )
    .await;
    bearer.expect_code(0);
    assert!(bearer.stdout.contains(role), "{}", bearer.dump());

    let basic = render(&format!("http://ci:pw@{host}/states/web.tfstate"), &[]).await;
    basic.expect_code(0);
    assert!(basic.stdout.contains(role), "{}", basic.dump());

    let remote = render(
        &format!("remote://{host}/acme/web-prod"),
        &[("TFE_TOKEN", "tok-123")],
    )
    .await;
    remote.expect_code(0);
    assert!(remote.stdout.contains(role), "{}", remote.dump());
    let log = seen.lock().unwrap().clone();
    let tail: Vec<&String> = log.iter().rev().take(4).rev().collect();
    assert_eq!(
        tail,
        [
            "/api/v2/organizations/acme/workspaces/web-prod Bearer tok-123",
            "/api/v2/workspaces/ws-42/current-state-version Bearer tok-123",
            "/archivist/sv-7 Bearer tok-123",
            "/states/web.tfstate Bearer tok-123",
        ],
        "{log:#?}"
    );

    // Refused: the status and the url, located at the template's call; no credential shown.
    let refused = render(
        &format!("http://ci:wrong-pw@{host}/states/web.tfstate"),
        &[],
    )
    .await;
    refused.expect_code(1);
    assert!(
        refused.stderr.contains("401") && refused.stderr.contains("ecs-task-def.json:"),
        "{}",
        refused.dump()
    );
    assert!(!refused.stderr.contains("wrong-pw"), "{}", refused.dump());
    let no_token = render(&format!("remote://{host}/acme/web-prod"), &[]).await;
    no_token.expect_code(1);
    assert!(no_token.stderr.contains("TFE_TOKEN"), "{}", no_token.dump());

    // Plain http to another host: refused when the config loads, at the url.
    let plain = render("http://states.example.com/web.tfstate", &[]).await;
    plain.expect_code(1);
    assert!(
        plain.stderr.contains("plain http") && plain.stderr.contains("cortado.yml:"),
        "{}",
        plain.dump()
    );
    let _ = std::fs::remove_dir_all(&dir);
}
