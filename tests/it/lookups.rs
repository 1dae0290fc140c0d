//! Template lookups answered by the sandbox: `cortado sandbox serve --seed --prepare` renders
//! the configs against the sandbox it has just started, and a deploy against that sandbox reads
//! the same values. The fixture (`tests/fixtures/lookups`) uses every lookup ecspresso's own CI
//! suite uses — `ssm`, `secretsmanager_arn`, `tfstate` from an `s3://` state, `must_env`, `env`,
//! an envfile, a Jsonnet ext var — and `cfn_output` / `cfn_export`.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};

use crate::common::{cortado_bin, ecs_client, env_pairs};

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/lookups")
}

fn cortado() -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(cortado_bin());
    cmd.env_clear()
        .current_dir(fixture())
        .env("AWS_ACCESS_KEY_ID", "AKIDTEST")
        .env("AWS_SECRET_ACCESS_KEY", "secret")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("IMAGE_TAG", "v1")
        .args([
            "--config",
            "ecspresso.yml",
            "--envfile",
            "envfile",
            "--ext-str",
            "CONTROLLER=ECS",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    if let Some(path) = std::env::var_os("PATH") {
        cmd.env("PATH", path);
    }
    cmd
}

/// Starts `cortado sandbox serve --seed seed.yml --prepare ecspresso.yml` and returns it with
/// its endpoint once it listens, or panics with what it said.
async fn serve() -> (tokio::process::Child, String) {
    let mut child = cortado()
        .args([
            "sandbox",
            "serve",
            "--port",
            "0",
            "--speed",
            "100",
            "--seed",
            "seed.yml",
            "--prepare",
            "ecspresso.yml",
        ])
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut seen = String::new();
    let found = tokio::time::timeout(Duration::from_secs(30), async {
        while let Ok(Some(line)) = lines.next_line().await {
            seen.push_str(&line);
            seen.push('\n');
            if let Some(ep) = line.strip_prefix("cortado sandbox listening on ") {
                return Some(ep.trim().to_string());
            }
        }
        None
    })
    .await
    .ok()
    .flatten();
    let Some(endpoint) = found else {
        let status = child.try_wait().ok().flatten();
        panic!("sandbox serve did not start (exit {status:?}):\n{seen}");
    };
    // Keep draining stderr so the server never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    assert!(
        seen.contains(
            "created ECR image 123456789012.dkr.ecr.us-east-1.amazonaws.com/lookups-web:v1"
        ),
        "--prepare created what the rendered config names:\n{seen}"
    );
    (child, endpoint)
}

async fn run(endpoint: &str, args: &[&str]) -> (i32, String, String) {
    let out = tokio::time::timeout(
        Duration::from_secs(60),
        cortado()
            .env("AWS_ENDPOINT_URL", endpoint)
            .args(["--output", "json"])
            .args(args)
            .output(),
    )
    .await
    .expect("cortado ends within 60 s")
    .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prepare_and_deploy_read_every_lookup_from_the_sandbox() {
    let (mut server, endpoint) = serve().await;
    let (code, out, err) = run(&endpoint, &["verify"]).await;
    assert_eq!(code, 0, "verify\n{out}\n{err}");
    let (code, out, err) = run(&endpoint, &["deploy"]).await;
    assert_eq!(code, 0, "deploy\n{out}\n{err}");

    let ecs = ecs_client(&endpoint);
    let svc = ecs
        .describe_services()
        .cluster("lookups")
        .services("lookups-web")
        .send()
        .await
        .unwrap();
    let svc = &svc.services()[0];
    let subnets = svc
        .network_configuration()
        .and_then(|n| n.awsvpc_configuration())
        .map(|a| a.subnets().to_vec())
        .unwrap_or_default();
    assert_eq!(
        subnets,
        ["subnet-0cafe001"],
        "cfn_output in the service definition"
    );
    let td = ecs
        .describe_task_definition()
        .task_definition(svc.task_definition().unwrap())
        .send()
        .await
        .unwrap();
    let c = &td.task_definition().unwrap().container_definitions()[0];
    assert_eq!(
        c.image(),
        Some("123456789012.dkr.ecr.us-east-1.amazonaws.com/lookups-web:v1")
    );
    let env = env_pairs(c.environment());
    let arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:lookups/api-key-Lk9pQ2";
    let want = [
        ("FROM_SSM", "hello-from-ssm"),
        ("SECRET_ARN", arn),
        ("FROM_TFSTATE", "vpc-0fee1e55"),
        ("FROM_CFN_OUTPUT", "subnet-0cafe001"),
        ("FROM_CFN_EXPORT", "subnet-0cafe001"),
        ("FROM_EXT_STR", "ECS"),
        ("FROM_ENV_DEFAULT", "fallback"),
    ];
    for (name, value) in want {
        assert!(
            env.iter().any(|(n, v)| n == name && v == value),
            "{name}={value} missing from {env:?}"
        );
    }
    let secrets: Vec<&str> = c.secrets().iter().map(|s| s.value_from()).collect();
    assert_eq!(secrets, ["/lookups/greeting", arn]);
    // The secret's value was never read, so it cannot have reached any output.
    assert!(!out.contains("s3cr3t-api-key") && !err.contains("s3cr3t-api-key"));
    server.start_kill().unwrap();
    let _ = server.wait().await;
}
