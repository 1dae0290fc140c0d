//! `--environment NAME`: a release file's environment chooses the region, the role every call
//! is made as, and the envfiles and ext vars the same configs render with.

use std::path::PathBuf;
use std::process::Stdio;

use crate::common::*;

/// A release file over the `web` fixture with two environments, in a folder of its own.
fn release(s: &Scenario, label: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "cortado-environments-{label}-{}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("staging.env"), "TAG=v1\n").unwrap();
    std::fs::write(dir.join("production.env"), "TAG=v2\n").unwrap();
    let file = dir.join("cortado-release.yml");
    std::fs::write(
        &file,
        format!(
            "environments:\n  staging: {{envfiles: [staging.env]}}\n  production:\n    \
             region: us-east-1\n    assume_role_arn: arn:aws:iam::210987654321:role/deployer\n    \
             envfiles: [production.env]\nsteps:\n  - config: {}\n",
            s.config.display()
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
        // The process's TAG loses to an environment's envfile (envfiles win).
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

fn ops(s: &Scenario, mark: u64) -> Vec<String> {
    s.requests_after(mark)
        .iter()
        .map(|r| r.operation.clone())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_environment_chooses_the_role_and_the_envfiles() {
    let s = Scenario::new("web", 60.0, &["v1", "v2"]).await;
    s.deploy("v1", &[]).await.expect_code(0);
    let file = release(&s, "role");
    let file = file.to_str().unwrap();

    // staging: v1 from its envfile, what runs; no role assumed.
    let mark = s.mark();
    let r = cortado(&s, &["diff", "--release", file, "--environment", "staging"]).await;
    r.expect_code(0);
    assert!(!r.stdout.contains(":v2"), "{}", r.dump());
    assert!(!ops(&s, mark).iter().any(|o| o == "AssumeRole"));

    // production: its role is assumed before anything else, its envfile gives v2.
    let mark = s.mark();
    let r = cortado(
        &s,
        &["diff", "--release", file, "--environment", "production"],
    )
    .await;
    r.expect_code(0);
    assert!(r.stdout.contains("web:v2"), "{}", r.dump());
    let seen = ops(&s, mark);
    assert_eq!(
        seen.first().map(String::as_str),
        Some("AssumeRole"),
        "{seen:?}"
    );

    // The flag wins over the environment's role.
    let mark = s.mark();
    let r = cortado(
        &s,
        &[
            "diff",
            "--release",
            file,
            "--environment",
            "staging",
            "--assume-role-arn",
            "arn:aws:iam::123456789012:role/other",
        ],
    )
    .await;
    r.expect_code(0);
    assert_eq!(
        ops(&s, mark).first().map(String::as_str),
        Some("AssumeRole")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_environment_or_none_to_choose_from_is_refused_before_any_call() {
    let s = Scenario::new("web", 60.0, &["v1"]).await;
    let file = release(&s, "unknown");
    let file = file.to_str().unwrap();
    let mark = s.mark();
    let r = cortado(
        &s,
        &["diff", "--release", file, "--environment", "prodution"],
    )
    .await;
    r.expect_code(1);
    assert!(
        r.stderr.contains("has no environment \"prodution\"")
            && r.stderr.contains("did you mean \"production\"?"),
        "{}",
        r.dump()
    );
    let config = s.config.to_str().unwrap();
    let r = cortado(&s, &["diff", "-c", config, "--environment", "staging"]).await;
    r.expect_code(1);
    assert!(
        r.stderr.contains(
            "--environment needs --release: environments are declared in the release file"
        ),
        "{}",
        r.dump()
    );
    assert!(ops(&s, mark).is_empty(), "{:?}", ops(&s, mark));
}

/// The sandbox's accounts: credentials AssumeRole made for a role of account 222222222222 act
/// as that account (the ARNs the sandbox makes for them carry its id); the test credentials
/// act as the sandbox's own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_role_of_another_account_makes_arns_of_that_account() {
    let s = Scenario::new("web", 60.0, &[]).await;
    // A full configuration (time source, sleep) with the test credentials, for STS.
    let base = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .endpoint_url(s.sb.endpoint())
        .credentials_provider(aws_credential_types::Credentials::new(
            "AKIDTEST", "secret", None, None, "t",
        ))
        .load()
        .await;
    let provider = aws_config::sts::AssumeRoleProvider::builder("arn:aws:iam::222222222222:role/x")
        .session_name("accounts")
        .configure(&base)
        .build()
        .await;
    let other = aws_sdk_ecs::Client::from_conf(
        aws_sdk_ecs::Config::from(&base)
            .to_builder()
            .credentials_provider(provider)
            .build(),
    );
    let made = other
        .create_cluster()
        .cluster_name("elsewhere")
        .send()
        .await
        .unwrap();
    let arn = made.cluster().unwrap().cluster_arn().unwrap();
    assert_eq!(arn, "arn:aws:ecs:us-east-1:222222222222:cluster/elsewhere");
    let home = s
        .ecs
        .create_cluster()
        .cluster_name("here")
        .send()
        .await
        .unwrap();
    assert_eq!(
        home.cluster().unwrap().cluster_arn().unwrap(),
        "arn:aws:ecs:us-east-1:123456789012:cluster/here"
    );
}
