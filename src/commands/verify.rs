//! `cortado verify`: what would make a deploy fail, checked before it is tried — read-only.
//!
//! Per config: the cluster exists and is ACTIVE; each container image is in ECR (tag or
//! digest) and, for an image index, has the task's architecture; the awslogs log groups exist
//! (or `awslogs-create-group` is set); each `secrets[].valueFrom` SSM parameter or Secrets
//! Manager secret exists; each target group exists, has target type `ip` and the container
//! it names has the port; the task and execution roles exist (IAM GetRole) and their trust
//! policy lets `ecs-tasks.amazonaws.com` assume them. Images of other registries, and reads
//! that could not be made (access denied, say), are reported SKIP with the reason: never OK
//! without a check.
//!
//! With `--cache` (the default, as in ecspresso) a resource several configs (or containers)
//! name — the same image, role, log group, secret or target group — is read once per run and
//! its finding reused; `--no-cache` reads it for each.

use serde_json::{Value, json};

use super::session;
use crate::aws::Clients;
use crate::aws::ecr::{EcrImage, index_architectures};
use crate::aws::verify::SecretSource;
use crate::deploy::local::Local;
use crate::error::{ErrorKind, ExitCode, Result};
use crate::report::{Format, Printer};
use crate::settings::Settings;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Ok,
    Ng,
    Skip,
}

impl Status {
    fn word(self) -> &'static str {
        match self {
            Status::Ok => "OK",
            Status::Ng => "NG",
            Status::Skip => "SKIP",
        }
    }
}

/// One finding.
#[derive(Debug, Clone, PartialEq)]
pub struct Check {
    pub status: Status,
    pub what: String,
    pub detail: String,
}

fn check(status: Status, what: impl Into<String>, detail: impl Into<String>) -> Check {
    Check {
        status,
        what: what.into(),
        detail: detail.into(),
    }
}

/// Flags of `cortado verify`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct VerifyArgs {
    /// Check each resource once per run, however many configs name it (the default).
    #[arg(long, conflicts_with = "no_cache")]
    pub cache: bool,
    /// Check a resource again for every config and container that names it.
    #[arg(long)]
    pub no_cache: bool,
}

/// The findings of one run by resource (`--cache`), or nothing kept (`--no-cache`).
#[derive(Default)]
pub struct CheckCache {
    kept: Option<std::sync::Mutex<std::collections::HashMap<String, Check>>>,
}

impl CheckCache {
    pub fn new(enabled: bool) -> CheckCache {
        CheckCache {
            kept: enabled.then(std::sync::Mutex::default),
        }
    }

    /// The finding for `key`: the one kept, else `check`'s (kept when caching).
    async fn get(&self, key: String, check: impl std::future::Future<Output = Check>) -> Check {
        let Some(kept) = &self.kept else {
            return check.await;
        };
        if let Some(hit) = kept.lock().unwrap_or_else(|e| e.into_inner()).get(&key) {
            return hit.clone();
        }
        let found = check.await;
        kept.lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key, found.clone());
        found
    }
}

/// `cortado verify`: the tree (or JSON); exit 1 when anything is NG.
pub async fn run(
    settings: &Settings,
    printer: &mut Printer,
    args: &VerifyArgs,
) -> Result<ExitCode> {
    let (locals, s) = session::open_all(settings, printer).await?;
    let cache = CheckCache::new(!args.no_cache);
    let mut all = Vec::new();
    for local in &locals {
        all.push((local, checks(&s.clients, local, &cache).await?));
    }
    report(printer, &all);
    let ng = all
        .iter()
        .flat_map(|(_, c)| c)
        .filter(|c| c.status == Status::Ng)
        .count();
    Ok(if ng > 0 {
        ExitCode::BadInput
    } else {
        ExitCode::Success
    })
}

/// Prints the findings of every config: a tree on a terminal, one JSON object otherwise.
pub fn report(printer: &Printer, all: &[(&Local, Vec<Check>)]) {
    match printer.format {
        Format::Json => printer.out_json(&json!({
            "services": all.iter().map(|(l, cs)| json!({
                "service": l.config.service,
                "cluster": l.config.cluster,
                "checks": cs.iter().map(|c| json!({"status": c.status.word(), "what": c.what, "detail": c.detail})).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
            "ng": all.iter().flat_map(|(_, c)| c).filter(|c| c.status == Status::Ng).count(),
        })),
        Format::Text => {
            let mut out = String::new();
            for (l, cs) in all {
                out.push_str(&format!(
                    "{} (cluster {})\n",
                    l.config.service.as_deref().unwrap_or("(no service)"),
                    l.config.cluster
                ));
                for c in cs {
                    out.push_str(&format!("  {:<4}  {}: {}\n", c.status.word(), c.what, c.detail));
                }
            }
            printer.out(out.trim_end());
        }
    }
}

/// Every check of one config; an error when AWS cannot be asked at all (the cluster read
/// fails for another reason than "missing").
pub async fn checks(clients: &Clients, local: &Local, cache: &CheckCache) -> Result<Vec<Check>> {
    let mut out = Vec::new();
    let cluster = &local.config.cluster;
    // The first read also tells whether AWS can be asked at all: without credentials or a
    // network every check would be SKIP, and a verify that checked nothing must not pass.
    out.push(match clients.cluster_status(cluster).await? {
        Some(st) if st == "ACTIVE" => check(Status::Ok, format!("cluster {cluster}"), "ACTIVE"),
        Some(st) => check(Status::Ng, format!("cluster {cluster}"), format!("is {st}")),
        None => check(
            Status::Ng,
            format!("cluster {cluster}"),
            format!("does not exist in {}", clients.region()),
        ),
    });
    let task = &local.task_json;
    let arm = task
        .pointer("/runtimePlatform/cpuArchitecture")
        .and_then(Value::as_str)
        == Some("ARM64");
    let containers = task
        .get("containerDefinitions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for c in &containers {
        let name = c.get("name").and_then(Value::as_str).unwrap_or("?");
        if let Some(image) = c.get("image").and_then(Value::as_str) {
            let key = format!("image\u{0}{name}\u{0}{image}\u{0}{arm}");
            out.push(cache.get(key, image_check(clients, name, image, arm)).await);
        }
        if let Some(lc) = c.get("logConfiguration")
            && lc.get("logDriver").and_then(Value::as_str) == Some("awslogs")
        {
            let key = format!("log\u{0}{name}\u{0}{lc}");
            out.push(cache.get(key, log_check(clients, name, lc)).await);
        }
        for secret in c
            .get("secrets")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
        {
            let (Some(key), Some(from)) = (
                secret.get("name").and_then(Value::as_str),
                secret.get("valueFrom").and_then(Value::as_str),
            ) else {
                continue;
            };
            let id = format!("secret\u{0}{name}\u{0}{key}\u{0}{from}");
            out.push(cache.get(id, secret_check(clients, name, key, from)).await);
        }
    }
    for (key, what) in [
        ("taskRoleArn", "task role"),
        ("executionRoleArn", "execution role"),
    ] {
        if let Some(role) = task.get(key).and_then(Value::as_str) {
            let key = format!("role\u{0}{what}\u{0}{role}");
            out.push(cache.get(key, role_check(clients, what, role)).await);
        }
    }
    let lbs = local
        .service_json
        .as_ref()
        .and_then(|s| s.get("loadBalancers"))
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for lb in &lbs {
        let container = lb
            .get("containerName")
            .and_then(Value::as_str)
            .unwrap_or("?");
        let port = lb.get("containerPort").and_then(Value::as_i64);
        let groups = [
            lb.get("targetGroupArn").and_then(Value::as_str),
            lb.pointer("/advancedConfiguration/alternateTargetGroupArn")
                .and_then(Value::as_str),
        ];
        for arn in groups.into_iter().flatten() {
            let key = format!(
                "tg\u{0}{arn}\u{0}{container}\u{0}{port:?}\u{0}{}",
                Value::Array(containers.clone())
            );
            out.push(
                cache
                    .get(
                        key,
                        target_group_check(clients, arn, container, port, &containers),
                    )
                    .await,
            );
        }
    }
    Ok(out)
}

/// The principal ECS tasks assume their task and execution roles as.
const ECS_TASKS: &str = "ecs-tasks.amazonaws.com";

/// A task or execution role exists (IAM GetRole) and its trust policy lets ECS tasks assume it.
async fn role_check(clients: &Clients, what: &str, role: &str) -> Check {
    let label = format!("{what} {role}");
    let name = crate::aws::iam::role_name(role);
    match clients.role(role).await {
        Ok(Some(r)) => match &r.trust {
            Some(policy) if crate::aws::iam::trusts_service(policy, ECS_TASKS) => {
                check(Status::Ok, label, format!("exists and trusts {ECS_TASKS}"))
            }
            Some(policy) => {
                let named = crate::aws::iam::trusted_principals(policy);
                check(
                    Status::Ng,
                    label,
                    format!(
                        "its trust policy does not let {ECS_TASKS} assume it (it names {}); ECS cannot start tasks with it. Add a statement: Effect Allow, Principal {{\"Service\": \"{ECS_TASKS}\"}}, Action sts:AssumeRole",
                        if named.is_empty() {
                            "no service principal".to_string()
                        } else {
                            named.join(", ")
                        }
                    ),
                )
            }
            None => check(
                Status::Ng,
                label,
                format!(
                    "IAM returned no readable trust policy; ECS needs one trusting {ECS_TASKS}"
                ),
            ),
        },
        Ok(None) => check(
            Status::Ng,
            label,
            format!(
                "IAM has no role named {name}: create it (trusting {ECS_TASKS}) or fix the ARN in the task definition"
            ),
        ),
        Err(e) => skip_on(label, &e),
    }
}

/// A read that failed for another reason than "missing": SKIP with why.
fn skip_on(what: String, e: &crate::error::Error) -> Check {
    let why = e
        .diagnostics
        .first()
        .map_or(String::new(), |d| d.message.clone());
    if e.kind == ErrorKind::BadInput {
        check(Status::Ng, what, why)
    } else {
        check(Status::Skip, what, format!("could not check: {why}"))
    }
}

async fn image_check(clients: &Clients, container: &str, image: &str, arm: bool) -> Check {
    let what = format!("image of {container}: {image}");
    let Some(ecr) = EcrImage::parse(image) else {
        return check(
            Status::Skip,
            what,
            "not in ECR: other registries are not checked",
        );
    };
    if ecr.region != clients.region() {
        return check(
            Status::Skip,
            what,
            format!(
                "in ECR of {}, not checked from {}",
                ecr.region,
                clients.region()
            ),
        );
    }
    let want = if arm { "arm64" } else { "amd64" };
    match clients.image_manifest(&ecr).await {
        Ok(None) => check(
            Status::Ng,
            what,
            format!("ECR repository {} has no {}", ecr.repository, ecr.reference),
        ),
        Ok(Some((media, manifest))) => match index_architectures(&media, &manifest) {
            Some(archs) if archs.iter().any(|a| a == want) => {
                check(Status::Ok, what, format!("in ECR, an index with {want}"))
            }
            Some(archs) => check(
                Status::Ng,
                what,
                format!(
                    "the image index has {} but the task runs on {want}",
                    archs.join(", ")
                ),
            ),
            None => check(
                Status::Ok,
                what,
                "in ECR (one manifest: its architecture is not checked)",
            ),
        },
        Err(e) => skip_on(what, &e),
    }
}

async fn log_check(clients: &Clients, container: &str, lc: &Value) -> Check {
    let opt = |k: &str| lc.pointer(&format!("/options/{k}")).and_then(Value::as_str);
    let Some(group) = opt("awslogs-group") else {
        return check(
            Status::Ng,
            format!("logs of {container}"),
            "awslogs without awslogs-group",
        );
    };
    let what = format!("log group of {container}: {group}");
    if opt("awslogs-create-group") == Some("true") {
        return check(Status::Ok, what, "ECS creates it (awslogs-create-group)");
    }
    if let Some(region) = opt("awslogs-region")
        && region != clients.region()
    {
        return check(
            Status::Skip,
            what,
            format!("in {region}, not checked from {}", clients.region()),
        );
    }
    match clients.log_group_exists(group).await {
        Ok(true) => check(Status::Ok, what, "exists"),
        Ok(false) => check(
            Status::Ng,
            what,
            "does not exist: create it, or set awslogs-create-group \"true\" (the execution role then needs logs:CreateLogGroup)",
        ),
        Err(e) => skip_on(what, &e),
    }
}

async fn secret_check(clients: &Clients, container: &str, key: &str, from: &str) -> Check {
    let what = format!("secret {key} of {container}: {from}");
    match SecretSource::of(from) {
        SecretSource::SecretsManager(id) => match clients.secret_arn(&id).await {
            Ok(_) => check(Status::Ok, what, "the Secrets Manager secret exists"),
            Err(e) => skip_on(what, &e),
        },
        SecretSource::Ssm(name) => match clients.get_parameter(&name, false).await {
            Ok(_) => check(Status::Ok, what, "the SSM parameter exists"),
            Err(e) => skip_on(what, &e),
        },
    }
}

async fn target_group_check(
    clients: &Clients,
    arn: &str,
    container: &str,
    port: Option<i64>,
    containers: &[Value],
) -> Check {
    let short = arn.rsplit(':').next().unwrap_or(arn);
    let what = format!(
        "{short} for {container}:{}",
        port.map_or("?".into(), |p| p.to_string())
    );
    let has_port = containers.iter().any(|c| {
        c.get("name").and_then(Value::as_str) == Some(container)
            && c.get("portMappings")
                .and_then(Value::as_array)
                .is_some_and(|ps| {
                    ps.iter()
                        .any(|p| p.get("containerPort").and_then(Value::as_i64) == port)
                })
    });
    match clients.target_group(arn).await {
        Ok(None) => check(Status::Ng, what, "the target group does not exist"),
        Ok(Some(tg)) if tg.target_type != "ip" => check(
            Status::Ng,
            what,
            format!(
                "target type is {}; Fargate tasks (awsvpc) register by IP: it must be ip",
                tg.target_type
            ),
        ),
        Ok(Some(_)) if !has_port => check(
            Status::Ng,
            what,
            format!(
                "container {container} maps no containerPort {}",
                port.map_or("?".into(), |p| p.to_string())
            ),
        ),
        Ok(Some(tg)) => check(
            Status::Ok,
            what,
            format!(
                "target type ip, {}:{} (ECS registers the container port)",
                tg.protocol,
                tg.port.map_or("-".into(), |p| p.to_string())
            ),
        ),
        Err(e) => skip_on(what, &e),
    }
}
