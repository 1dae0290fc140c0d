//! `cortado run` against the sandbox: the real binary, a one-off task that exits with the
//! code its image tag asks for (`exit-N-after-Ds`), its CloudWatch Logs streamed, and the
//! request log to prove what was (and was not) called.

#[allow(unused_imports)] // the harness re-exports what other scenario files use
use std::time::Duration;

use crate::common::*;
use serde_json::Value;

/// Virtual seconds per real second: a task starts in ~20-35 virtual seconds, so ~1 s here.
const SPEED: f64 = 30.0;

async fn scenario() -> Scenario {
    Scenario::new("run", SPEED, &["v1"]).await
}

fn statuses(run: &Run) -> Vec<String> {
    run.events_of("task_status")
        .iter()
        .filter_map(|e| e["last_status"].as_str().map(str::to_string))
        .collect()
}

fn log_lines(run: &Run) -> Vec<String> {
    run.events_of("log")
        .iter()
        .filter_map(|e| e["message"].as_str().map(str::to_string))
        .collect()
}

fn result(run: &Run) -> Value {
    run.events_of("result")
        .pop()
        .unwrap_or_else(|| panic!("no result line\n{}", run.dump()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_exit_0_registers_the_config_task_and_streams_its_logs() {
    let s = scenario().await;
    let mark = s.mark();
    let run = s.cortado("v1--exit-0-after-60s", &["run"]).await;
    run.expect_code(0);
    // The service does not exist: the config's task definition, registered once, placed
    // like the service definition file says.
    let calls = mutating(&s.requests_after(mark));
    assert_eq!(
        calls,
        ["RegisterTaskDefinition", "RunTask"],
        "{}",
        run.dump()
    );
    let st = statuses(&run);
    assert_eq!(
        st.first().map(String::as_str),
        Some("PROVISIONING"),
        "{st:?}"
    );
    assert_eq!(st.last().map(String::as_str), Some("STOPPED"), "{st:?}");
    let order = [
        "PROVISIONING",
        "PENDING",
        "RUNNING",
        "DEPROVISIONING",
        "STOPPED",
    ];
    let mut idx: Vec<usize> = st
        .iter()
        .filter_map(|x| order.iter().position(|o| o == x))
        .collect();
    let sorted = {
        let mut v = idx.clone();
        v.sort();
        v
    };
    assert_eq!(idx, sorted, "statuses in ECS's order: {st:?}");
    idx.dedup();
    assert!(st.contains(&"RUNNING".to_string()), "{st:?}");
    assert_eq!(
        log_lines(&run),
        [
            "starting 123456789012.dkr.ecr.us-east-1.amazonaws.com/web:v1--exit-0-after-60s",
            "command: ./migrate up",
            "exiting with code 0",
        ],
        "{}",
        run.dump()
    );
    let r = result(&run);
    assert_eq!(r["outcome"], "exited");
    assert_eq!(r["exit_code"], 0);
    assert_eq!(r["stop_code"], "EssentialContainerExited");
    assert_eq!(r["stopped_reason"], "Essential container in task exited");
    // A second run reuses the identical revision: no new registration.
    let mark = s.mark();
    s.cortado("v1--exit-0-after-60s", &["run"])
        .await
        .expect_code(0);
    assert_eq!(mutating(&s.requests_after(mark)), ["RunTask"]);
    // GetLogEvents is a read in the request log.
    assert!(
        s.requests_after(0)
            .iter()
            .any(|r| r.operation == "GetLogEvents" && r.service == "logs" && !r.mutating)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_exit_3_passes_the_code_on_with_command_and_env_overrides() {
    let s = scenario().await;
    let run = s
        .cortado(
            "v1--exit-3-after-5s",
            &[
                "run",
                "--command",
                "sh -c \"echo 'migrating now'\"",
                "--env",
                "MODE=up",
                "--overrides",
                r#"{"containerOverrides":[{"name":"app","environment":[{"name":"KEEP","value":"1"}]}]}"#,
            ],
        )
        .await;
    run.expect_code(3);
    assert_eq!(
        log_lines(&run),
        [
            "starting 123456789012.dkr.ecr.us-east-1.amazonaws.com/web:v1--exit-3-after-5s",
            "command: sh -c echo 'migrating now'",
            "exiting with code 3",
        ],
        "{}",
        run.dump()
    );
    let r = result(&run);
    assert_eq!(r["outcome"], "exited");
    assert_eq!(r["container_exit_code"], 3);
    // The overrides are on the task as ECS records them.
    let arn = r["task_arn"].as_str().unwrap().to_string();
    let out = s
        .ecs
        .describe_tasks()
        .cluster(CLUSTER)
        .tasks(arn)
        .send()
        .await
        .unwrap();
    let task = &out.tasks()[0];
    assert_eq!(task.last_status(), Some("STOPPED"));
    assert_eq!(task.containers()[0].exit_code(), Some(3));
    assert_eq!(task.started_by(), Some("cortado-run"));
    let o = &task.overrides().unwrap().container_overrides()[0];
    assert_eq!(o.name(), Some("app"));
    assert_eq!(o.command(), ["sh", "-c", "echo 'migrating now'"]);
    let env = env_pairs(o.environment());
    assert_eq!(
        env,
        [("KEEP".into(), "1".into()), ("MODE".into(), "up".into())]
    );
}

/// A plain one-off task, a migration with no fault in its tag, runs to completion on the
/// sandbox (its command runs 5 virtual seconds, then exits 0), as it would on ECS: before,
/// sandbox containers only exited with an `exit-` fault and this waited for its deadline.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_a_plain_migration_completes_with_exit_0() {
    let s = scenario().await;
    let run = s
        .cortado(
            "v1",
            &[
                "run",
                "--command",
                "sh -c \"echo migrating\"",
                "--timeout",
                "60s",
            ],
        )
        .await;
    run.expect_code(0);
    assert_eq!(
        log_lines(&run),
        [
            "starting 123456789012.dkr.ecr.us-east-1.amazonaws.com/web:v1",
            "command: sh -c echo migrating",
            "exiting with code 0",
        ],
        "{}",
        run.dump()
    );
    let r = result(&run);
    assert_eq!(r["outcome"], "exited");
    assert_eq!(r["container_exit_code"], 0);
    assert_eq!(r["stop_code"], "EssentialContainerExited");
}

/// The image of the essential container of a task the sandbox ran.
async fn task_image(s: &Scenario, task_arn: &str) -> String {
    let out = s
        .ecs
        .describe_tasks()
        .cluster(CLUSTER)
        .tasks(task_arn)
        .send()
        .await
        .unwrap();
    out.tasks()[0].containers()[0]
        .image()
        .unwrap_or_default()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_registers_the_configs_task_definition_by_default() {
    let s = scenario().await;
    // The service runs revision 1 (tasks that exit 0 after an hour).
    s.deploy("v1--exit-0-after-1h", &[]).await.expect_code(0);
    let mark = s.mark();
    // A new image in the config (IMAGE_TAG=$SHA in CI) is what the one-off task runs, as with
    // ecspresso: the migration of the code about to be deployed, not of the running one.
    let run = s
        .cortado("v1--exit-9-after-1s", &["run", "--no-wait"])
        .await;
    run.expect_code(0);
    assert_eq!(
        mutating(&s.requests_after(mark)),
        ["RegisterTaskDefinition", "RunTask"],
        "{}",
        run.dump()
    );
    let r = result(&run);
    assert_eq!(r["outcome"], "started");
    assert_eq!(revision_of(r["task_definition_arn"].as_str().unwrap()), 2);
    let task_arn = r["task_arn"].as_str().unwrap();
    assert!(
        task_arn.starts_with("arn:aws:ecs:us-east-1:123456789012:task/scenarios/"),
        "{task_arn}"
    );
    // --no-wait does not follow the task.
    assert!(
        !s.requests_after(mark)
            .iter()
            .any(|r| r.operation == "DescribeTasks" || r.operation == "GetLogEvents")
    );
    assert_eq!(
        task_image(&s, task_arn).await,
        format!("{REPO}:v1--exit-9-after-1s")
    );
    // The same definition again: the family's newest revision is identical, nothing registered.
    let mark = s.mark();
    let again = s
        .cortado("v1--exit-9-after-1s", &["run", "--no-wait"])
        .await;
    again.expect_code(0);
    assert_eq!(mutating(&s.requests_after(mark)), ["RunTask"]);
    assert_eq!(
        revision_of(result(&again)["task_definition_arn"].as_str().unwrap()),
        2
    );
    // The service itself was not touched.
    assert_eq!(revision_of(s.service().await.task_definition().unwrap()), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_skip_latest_and_revision_pick_a_revision_without_registering() {
    let s = scenario().await;
    s.deploy("v1--exit-0-after-1h", &[]).await.expect_code(0);
    // Revision 2 (another image) is registered but not deployed.
    s.cortado("v1--exit-0-after-2h", &["register"])
        .await
        .expect_code(0);
    let cases: &[(&[&str], u32, bool)] = &[
        // The service's live revision only behind an explicit flag.
        (&["--skip-task-definition"], 1, false),
        (&["--latest-task-definition"], 2, false),
        (&["--revision", "1"], 1, false),
        // Two picks: --revision wins with a warning, as in ecspresso.
        (&["--revision", "1", "--latest-task-definition"], 1, true),
    ];
    for (flags, revision, warned) in cases {
        let mark = s.mark();
        let mut args = vec!["run", "--no-wait"];
        args.extend_from_slice(flags);
        // The config's image differs from both revisions: nothing may be registered.
        let run = s.cortado("v1--exit-9-after-1s", &args).await;
        run.expect_code(0);
        assert_eq!(mutating(&s.requests_after(mark)), ["RunTask"], "{flags:?}");
        let arn = result(&run)["task_definition_arn"]
            .as_str()
            .unwrap()
            .to_string();
        assert_eq!(revision_of(&arn), *revision, "{flags:?}\n{}", run.dump());
        assert_eq!(
            run.stderr.contains("wins, as in ecspresso"),
            *warned,
            "{flags:?}\n{}",
            run.dump()
        );
    }
    // --task-def with a pick, and revision 0, are refused before any call.
    let mark = s.mark();
    for bad in [
        &["run", "--task-def", "x.json", "--skip-task-definition"][..],
        &["run", "--revision", "0"][..],
    ] {
        let run = s.cortado("v1", bad).await;
        assert_eq!(run.code, 1, "{bad:?}\n{}", run.dump());
    }
    assert!(s.requests_after(mark).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_skip_task_definition_without_a_service_is_bad_input() {
    let s = scenario().await;
    let mark = s.mark();
    let run = s.cortado("v1", &["run", "--skip-task-definition"]).await;
    run.expect_code(1);
    assert!(
        run.stderr.contains("does not exist") && run.stderr.contains("--skip-task-definition"),
        "{}",
        run.dump()
    );
    assert!(mutating(&s.requests_after(mark)).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_no_wait_text_prints_the_task_arn() {
    let s = scenario().await;
    let mut cmd = s.command("v1--exit-0-after-5s", &["run", "--no-wait"]);
    cmd.args(["--output", "text"]);
    let run = finish(cmd).await;
    run.expect_code(0);
    let out = run.stdout.trim();
    assert!(
        out.starts_with("arn:aws:ecs:us-east-1:123456789012:task/scenarios/")
            && !out.contains('\n'),
        "{}",
        run.dump()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_timeout_stops_the_task_and_exits_6() {
    let s = scenario().await;
    let mark = s.mark();
    let run = s
        .cortado("v1--exit-0-after-1h", &["run", "--timeout", "3s"])
        .await;
    run.expect_code(6);
    let calls = mutating(&s.requests_after(mark));
    assert_eq!(
        calls,
        ["RegisterTaskDefinition", "RunTask", "StopTask"],
        "{}",
        run.dump()
    );
    assert_eq!(result(&run)["outcome"], "timed_out");
    assert!(run.took < Duration::from_secs(20), "{}", run.dump());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_pull_failure_exits_3_with_the_reason() {
    let s = scenario().await;
    let run = s.cortado("v1--pull-fail", &["run"]).await;
    run.expect_code(3);
    let r = result(&run);
    assert_eq!(r["outcome"], "failed_to_start");
    assert_eq!(r["stop_code"], "TaskFailedToStart");
    assert!(
        r["stopped_reason"]
            .as_str()
            .unwrap()
            .contains("CannotPullContainerError"),
        "{}",
        run.dump()
    );
    assert!(log_lines(&run).is_empty(), "nothing ran: {}", run.dump());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_without_awslogs_says_logs_are_not_available() {
    let s = scenario().await;
    let mut cmd = s.command(
        "v1--exit-0-after-2s",
        &["run", "--task-def", "nologs-task-def.json"],
    );
    cmd.current_dir(fixture("run"));
    let run = finish(cmd).await;
    run.expect_code(0);
    let logs = run.events_of("logs");
    assert!(
        logs[0]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("logs are not available"),
        "{}",
        run.dump()
    );
    assert!(
        result(&run)["task_definition_arn"]
            .as_str()
            .unwrap()
            .contains("task-definition/web-nologs:1")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_bad_input_exits_1_with_no_mutating_call() {
    let s = scenario().await;
    let bad: &[&[&str]] = &[
        &["run", "--env", "NOEQUALS"],
        &["run", "--env", "=1"],
        &["run", "--overrides", "{not json"],
        &["run", "--overrides", "[]"],
        &["run", "--overrides", r#"{"containerOverride":[]}"#],
        &[
            "run",
            "--overrides",
            r#"{"containerOverrides":[{"name":"app","comand":["x"]}]}"#,
        ],
        &["run", "--command", "sh -c \"unclosed"],
        &["run", "--container", "nope"],
        &["run", "--task-def", "missing.json"],
    ];
    let mark = s.mark();
    for args in bad {
        let run = s.cortado("v1", args).await;
        assert_eq!(run.code, 1, "{args:?}\n{}", run.dump());
        assert!(!run.stderr.contains("panicked"), "{}", run.dump());
    }
    assert!(
        mutating(&s.requests_after(mark)).is_empty(),
        "{:?}",
        mutating(&s.requests_after(mark))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_masks_a_secret_in_the_containers_log_lines() {
    const SECRET: &str = "s3cr3t-Run-77";
    let s = scenario().await;
    s.put_secure_parameter("/web/db_password", SECRET).await;
    for output in ["json", "text"] {
        let mut cmd = s.command(
            "v1--exit-0-after-5s",
            &["run", "--task-def", "secret-task-def.json"],
        );
        cmd.args(["--output", output]).current_dir(fixture("run"));
        let run = finish(cmd).await;
        run.expect_code(0);
        // The sandbox logged the command with the password; cortado printed the line masked.
        assert!(
            run.stdout.contains("command: ./migrate --password"),
            "{}",
            run.dump()
        );
        assert!(
            !run.stdout.contains(SECRET) && !run.stderr.contains(SECRET),
            "the secret reached the output:\n{}",
            run.dump()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_sigterm_stops_the_task_and_exits_130() {
    use tokio::io::{AsyncBufReadExt, BufReader};
    let s = scenario().await;
    let mark = s.mark();
    let mut child = s.command("v1--exit-0-after-1h", &["run"]).spawn().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut seen = String::new();
    let started = tokio::time::timeout(Duration::from_secs(20), async {
        while let Ok(Some(line)) = lines.next_line().await {
            seen.push_str(&line);
            seen.push('\n');
            if line.contains("\"event\":\"task_started\"") {
                return true;
            }
        }
        false
    })
    .await;
    assert_eq!(started, Ok(true), "{seen}");
    let pid = child.id().unwrap();
    let kill = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let status = tokio::time::timeout(Duration::from_secs(15), async {
        while let Ok(Some(line)) = lines.next_line().await {
            seen.push_str(&line);
            seen.push('\n');
        }
        child.wait().await.unwrap()
    })
    .await
    .expect("cortado ends after SIGTERM");
    assert_eq!(status.code(), Some(130), "{seen}");
    assert!(seen.contains("\"outcome\":\"cancelled\""), "{seen}");
    assert_eq!(
        mutating(&s.requests_after(mark)),
        ["RegisterTaskDefinition", "RunTask", "StopTask"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_in_github_actions_annotates_a_failed_task() {
    let s = scenario().await;
    for (tag, code, annotated) in [
        ("v1--exit-4-after-2s", 4, true),
        ("v1--exit-0-after-2s", 0, false),
    ] {
        let mut cmd = s.command(tag, &["run"]);
        cmd.args(["--output", "text"]).env("GITHUB_ACTIONS", "true");
        let run = finish(cmd).await;
        run.expect_code(code);
        assert_eq!(
            run.stdout.contains("::error title=cortado run::"),
            annotated,
            "{}",
            run.dump()
        );
        assert!(run.stdout.contains("exiting with code"), "{}", run.dump());
    }
}

/// `--count N` (ecspresso's): one RunTask for N tasks, each followed to its end (a result
/// line each), the first non-zero exit code passed on; out of 1..=10 it is refused before
/// any call.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_count_follows_every_task_and_passes_the_first_failure_on() {
    let s = scenario().await;
    let mark = s.mark();
    let run = s
        .cortado("v1--exit-0-after-5s", &["run", "--count", "3"])
        .await;
    run.expect_code(0);
    assert_eq!(
        mutating(&s.requests_after(mark)),
        ["RegisterTaskDefinition", "RunTask"],
        "{}",
        run.dump()
    );
    let ends = run.events_of("result");
    assert_eq!(ends.len(), 3, "{}", run.dump());
    let mut arns: Vec<&str> = ends.iter().filter_map(|e| e["task_arn"].as_str()).collect();
    arns.sort();
    arns.dedup();
    assert_eq!(arns.len(), 3, "three different tasks: {}", run.dump());
    assert!(
        ends.iter()
            .all(|e| e["outcome"] == "exited" && e["exit_code"] == 0)
    );
    let failed = s
        .cortado("v1--exit-4-after-5s", &["run", "--count", "2"])
        .await;
    failed.expect_code(4);
    assert_eq!(failed.events_of("result").len(), 2, "{}", failed.dump());
    let mark = s.mark();
    for n in ["0", "11"] {
        s.cortado("v1", &["run", "--count", n]).await.expect_code(1);
    }
    assert!(mutating(&s.requests_after(mark)).is_empty());
}

/// `--no-ebs-delete-on-termination`: the service definition's `volumeConfigurations` go to
/// RunTask as the task's, with `terminationPolicy.deleteOnTermination` false (true without the
/// flag), as the dry run shows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_passes_the_services_ebs_volumes_and_keeps_them_when_asked() {
    let s = scenario().await;
    let dir = std::env::temp_dir().join(format!("cortado-run-ebs-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    for f in ["cortado.yml", "ecs-task-def.json"] {
        std::fs::copy(fixture("run").join(f), dir.join(f)).unwrap();
    }
    let mut service: Value = serde_json::from_str(
        &std::fs::read_to_string(fixture("run").join("ecs-service-def.json")).unwrap(),
    )
    .unwrap();
    service["volumeConfigurations"] = serde_json::json!([{
        "name": "scratch",
        "managedEBSVolume": {
            "roleArn": "arn:aws:iam::123456789012:role/ecsInfrastructureRole",
            "sizeInGiB": 20,
            "volumeType": "gp3",
        }
    }]);
    std::fs::write(dir.join("ecs-service-def.json"), service.to_string()).unwrap();
    let config = dir.join("cortado.yml");
    let mark = s.mark();
    for (flags, keep) in [
        (&["run", "--dry-run"][..], true),
        (
            &["run", "--dry-run", "--no-ebs-delete-on-termination"][..],
            false,
        ),
    ] {
        let run = finish(s.command_with(&config, "v1", flags)).await;
        run.expect_code(0);
        let detail = result(&run)["detail"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        assert!(detail.contains("\"name\":\"scratch\""), "{}", run.dump());
        assert!(
            detail.contains(&format!("\"deleteOnTermination\":{keep}")),
            "{}",
            run.dump()
        );
    }
    assert!(mutating(&s.requests_after(mark)).is_empty());
    // RunTask as ECS documents it: the volume must be one the task definition configures at
    // launch (here it is not: refused), then it is (started).
    let args = ["run", "--no-wait", "--no-ebs-delete-on-termination"];
    let refused = finish(s.command_with(&config, "v1", &args)).await;
    refused.expect_code(1);
    assert!(
        refused.stderr.contains("configured at launch"),
        "{}",
        refused.dump()
    );
    let task_def = dir.join("ecs-task-def.json");
    let mut td: Value = serde_json::from_str(&std::fs::read_to_string(&task_def).unwrap()).unwrap();
    td["volumes"] = serde_json::json!([{"name": "scratch", "configuredAtLaunch": true}]);
    std::fs::write(&task_def, td.to_string()).unwrap();
    finish(s.command_with(&config, "v1", &args))
        .await
        .expect_code(0);
    let _ = std::fs::remove_dir_all(&dir);
}
