//! `--seed FILE`: what a seed file creates before the first request (clusters, images,
//! target groups, load balancers, task definitions, services that start settled,
//! parameters, secrets, stacks, S3 objects), parsed and applied to a new world.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::{Value, json};

use crate::world::World;
use crate::{Error, FaultsPatch, api, cloudformation, s3, secretsmanager};

/// What a seed file creates before the first request.
///
/// YAML (JSON works too); every key is optional, unknown keys are errors. Services and task
/// definitions take the members of the AWS requests (`CreateService`, `RegisterTaskDefinition`)
/// in their camelCase spelling; a service's `taskDefinition` may be inline. Seeded services
/// start settled: their tasks are already RUNNING when the server answers.
///
/// ```yaml
/// clusters: [default, prod]
/// images:                       # ECR images that exist (others in this registry fail to pull)
///   - 123456789012.dkr.ecr.us-east-1.amazonaws.com/web:v1
/// targetGroups:
///   - {name: web-blue, port: 80, protocol: HTTP, targetType: ip}
///   - {name: web-green, port: 80}
/// loadBalancers:
///   - name: web-alb
///     listeners:
///       - port: 80
///         protocol: HTTP
///         forward: [{targetGroup: web-blue, weight: 100}]
///         rules:
///           - priority: 10
///             pathPattern: "/*"
///             forward: [{targetGroup: web-blue, weight: 100}, {targetGroup: web-green, weight: 0}]
/// taskDefinitions:
///   - family: worker
///     containerDefinitions: [{name: worker, image: "busybox:1"}]
/// services:
///   - cluster: prod
///     serviceName: web
///     desiredCount: 2
///     launchType: FARGATE
///     networkConfiguration: {awsvpcConfiguration: {subnets: [subnet-1]}}
///     deploymentConfiguration:
///       deploymentCircuitBreaker: {enable: true, rollback: true}
///     taskDefinition:
///       family: web
///       networkMode: awsvpc
///       requiresCompatibilities: [FARGATE]
///       cpu: "256"
///       memory: "512"
///       containerDefinitions:
///         - name: web
///           image: 123456789012.dkr.ecr.us-east-1.amazonaws.com/web:v1
///           portMappings: [{containerPort: 80}]
/// parameters:                   # SSM Parameter Store
///   - {name: /web/db_password, type: SecureString, value: hunter2}
/// secrets:                      # Secrets Manager (`arn` adopts the ARN a valueFrom names)
///   - {name: web/api-key, secretString: s3cr3t}
///   - {name: web/json, secretString: '{"foo":"bar"}', arn: "arn:aws:secretsmanager:us-east-1:123456789012:secret:web/json-AbCdEf"}
/// stacks:                       # CloudFormation stacks (CREATE_COMPLETE) and their outputs
///   - stackName: network
///     outputs:
///       - {outputKey: VpcId, outputValue: vpc-0a1b2c3d, exportName: network-VpcId}
/// objects:                      # S3 objects (`file` is relative to the seed file)
///   - {bucket: my-states, key: network/terraform.tfstate, file: terraform.tfstate}
///   - {bucket: my-states, key: hello.txt, body: hello}
/// faults:                       # same shape as POST /_sandbox/faults
///   api: {throttleRate: 0.1}
///   images: {"nginx:broken": pull-fail}
/// ```
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct Seed {
    pub clusters: Vec<String>,
    pub images: Vec<String>,
    pub target_groups: Vec<SeedTargetGroup>,
    pub load_balancers: Vec<SeedLoadBalancer>,
    pub task_definitions: Vec<Value>,
    pub services: Vec<Value>,
    pub faults: Option<FaultsPatch>,
    /// SSM parameters that exist (`{name, type, value}`; type String, StringList or
    /// SecureString).
    pub parameters: Vec<SeedParameter>,
    /// Secrets Manager secrets that exist.
    pub secrets: Vec<SeedSecret>,
    /// CloudFormation stacks, with their outputs (and the exports those declare).
    pub stacks: Vec<SeedStack>,
    /// S3 objects (their buckets are created too).
    pub objects: Vec<SeedObject>,
}

/// A Secrets Manager secret of a seed file (CreateSecret's members).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SeedSecret {
    pub name: String,
    #[serde(default)]
    pub secret_string: Option<String>,
    /// Base64, as the API carries it.
    #[serde(default)]
    pub secret_binary: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    /// The secret's ARN, when a task definition names it with its suffix
    /// (`...:secret:NAME-AbCdEf`); otherwise the sandbox makes one.
    #[serde(default)]
    pub arn: Option<String>,
}

/// A CloudFormation stack of a seed file.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SeedStack {
    pub stack_name: String,
    #[serde(default)]
    pub outputs: Vec<cloudformation::Output>,
}

/// An S3 object of a seed file: its text in `body`, or the file `file` (relative to the seed
/// file) read when the seed is loaded.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SeedObject {
    pub bucket: String,
    pub key: String,
    #[serde(default)]
    pub body: Option<String>,
    #[serde(default)]
    pub file: Option<PathBuf>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SeedParameter {
    pub name: String,
    #[serde(rename = "type", default = "default_parameter_type")]
    pub kind: String,
    pub value: String,
}

fn default_parameter_type() -> String {
    "String".to_string()
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SeedTargetGroup {
    pub name: String,
    #[serde(default = "default_port")]
    pub port: i32,
    #[serde(default = "default_protocol")]
    pub protocol: String,
    #[serde(default = "default_target_type")]
    pub target_type: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SeedLoadBalancer {
    pub name: String,
    #[serde(default)]
    pub listeners: Vec<SeedListener>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SeedListener {
    #[serde(default = "default_port")]
    pub port: i32,
    #[serde(default = "default_protocol")]
    pub protocol: String,
    #[serde(default)]
    pub forward: Vec<SeedForward>,
    #[serde(default)]
    pub rules: Vec<SeedRule>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SeedRule {
    pub priority: i32,
    #[serde(default = "default_path")]
    pub path_pattern: String,
    pub forward: Vec<SeedForward>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SeedForward {
    /// Target group name or ARN.
    pub target_group: String,
    #[serde(default = "default_weight")]
    pub weight: i32,
}

fn default_port() -> i32 {
    80
}

fn default_protocol() -> String {
    "HTTP".into()
}

fn default_target_type() -> String {
    "ip".into()
}

fn default_path() -> String {
    "/*".into()
}

fn default_weight() -> i32 {
    1
}

impl Seed {
    /// Parse a seed file's text; `path` is for messages, and the folder `objects[].file`
    /// names are relative to (they are read here, into `body`).
    pub fn parse(text: &str, path: &Path) -> Result<Seed, Error> {
        let mut seed = serde_saphyr::from_str::<Seed>(text).map_err(|e| {
            Error::msg(format!("the sandbox seed file is not valid: {e}"))
                    .at_file(path)
                    .with_hint("see `Seed` in the sandbox docs for the format: clusters, images, targetGroups, loadBalancers, taskDefinitions, services, parameters, secrets, stacks, objects, faults")
        })?;
        let dir = path.parent().unwrap_or(Path::new("."));
        for o in &mut seed.objects {
            match (&o.body, o.file.take()) {
                (Some(_), Some(_)) | (None, None) => {
                    return Err(Error::msg(format!(
                        "the sandbox seed file's object s3://{}/{} needs one of `body` and `file`",
                        o.bucket, o.key
                    ))
                    .at_file(path));
                }
                (None, Some(f)) => {
                    let f = dir.join(f);
                    let text = std::fs::read_to_string(&f)
                        .map_err(|e| Error::io(&f, &e, "reading an S3 object of the seed file"))?;
                    o.body = Some(text);
                }
                (Some(_), None) => {}
            }
        }
        Ok(seed)
    }

    pub fn load(path: &Path) -> Result<Seed, Error> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::io(path, &e, "reading the sandbox seed file"))?;
        Seed::parse(&text, path)
    }
}

/// Apply a seed: the world is created 10 virtual minutes in the past so seeded services settle.
pub(crate) fn apply_seed(world: &mut World, seed: &Seed, now: f64) -> Result<(), Error> {
    let fail = |what: &str, e: api::ApiError| {
        Error::msg(format!("sandbox seed: {what}: {}: {}", e.code, e.message))
    };
    world.now = world.now.min(now - 600.0);
    for c in &seed.clusters {
        world.ensure_cluster(c);
    }
    if let Some(f) = &seed.faults {
        world.faults.apply(f.clone());
    }
    let now0 = world.now;
    for p in &seed.parameters {
        world
            .ssm
            .put(&p.name, &p.kind, &p.value, now0)
            .map_err(|e| fail(&format!("parameter {}", p.name), e))?;
    }
    seed_lookups(world, seed, now0)?;
    for img in &seed.images {
        if !put_ecr_image(world, img, now0) {
            return Err(Error::msg(format!(
                "sandbox seed: image {img} is not in the sandbox's ECR registry ({}/REPO:TAG)",
                world.ecr.registry_host()
            )));
        }
    }
    for tg in &seed.target_groups {
        world
            .elbv2
            .create_target_group(&tg.name, tg.port, &tg.protocol, &tg.target_type);
    }
    // "LB:PORT" names a listener, "LB:PORT:PRIORITY" one of its rules (for advancedConfiguration).
    let mut refs: std::collections::BTreeMap<String, String> = Default::default();
    for lb in &seed.load_balancers {
        let lb_arn = match world.elbv2.find_load_balancer(&lb.name) {
            Some(a) => a,
            None => world.elbv2.create_load_balancer(&lb.name),
        };
        for l in &lb.listeners {
            let fwd = seed_forward(world, &l.forward)?;
            let larn = world
                .elbv2
                .create_listener(&lb_arn, l.port, &l.protocol, &fwd)
                .map_err(|e| fail(&format!("listener {}:{}", lb.name, l.port), e))?;
            refs.insert(format!("{}:{}", lb.name, l.port), larn.clone());
            for r in &l.rules {
                let fwd = seed_forward(world, &r.forward)?;
                let rarn = world
                    .elbv2
                    .create_rule(&larn, r.priority, &r.path_pattern, &fwd)
                    .map_err(|e| fail(&format!("rule {}:{}:{}", lb.name, l.port, r.priority), e))?;
                refs.insert(format!("{}:{}:{}", lb.name, l.port, r.priority), rarn);
            }
        }
    }
    for td in &seed.task_definitions {
        world
            .ecs("RegisterTaskDefinition", td)
            .map_err(|e| fail("task definition", e))?;
    }
    for svc in &seed.services {
        let mut body = svc.clone();
        let name = body
            .get("serviceName")
            .and_then(Value::as_str)
            .unwrap_or("?")
            .to_string();
        let cluster = body
            .get("cluster")
            .and_then(Value::as_str)
            .unwrap_or("default")
            .to_string();
        world.ensure_cluster(&cluster);
        if let Some(td) = body
            .get("taskDefinition")
            .filter(|v| v.is_object())
            .cloned()
        {
            let out = world
                .ecs("RegisterTaskDefinition", &td)
                .map_err(|e| fail(&format!("service {name}: task definition"), e))?;
            body["taskDefinition"] = out
                .pointer("/taskDefinition/taskDefinitionArn")
                .cloned()
                .unwrap_or(Value::Null);
        }
        if let Some(lbs) = body.get_mut("loadBalancers").and_then(Value::as_array_mut) {
            for lb in lbs {
                resolve_seed_refs(world, lb, &refs);
            }
        }
        world
            .ecs("CreateService", &body)
            .map_err(|e| fail(&format!("service {name}"), e))?;
    }
    world.advance(now);
    Ok(())
}

/// What template lookups read: Secrets Manager secrets, CloudFormation stacks, S3 objects.
fn seed_lookups(world: &mut World, seed: &Seed, now: f64) -> Result<(), Error> {
    let fail = |what: String, e: api::ApiError| {
        Error::msg(format!("sandbox seed: {what}: {}: {}", e.code, e.message))
    };
    for s in &seed.secrets {
        let new = secretsmanager::NewSecret {
            name: &s.name,
            string: s.secret_string.as_deref(),
            binary: s.secret_binary.as_deref(),
            description: s.description.as_deref(),
            arn: s.arn.as_deref(),
        };
        let at = (world.region.as_str(), world.account.as_str());
        world
            .secrets
            .create(&new, at, now, &mut world.rng)
            .map_err(|e| fail(format!("secret {}", s.name), e))?;
    }
    for st in &seed.stacks {
        let id = format!(
            "arn:aws:cloudformation:{}:{}:stack/{}/{}-{}-{}-{}-{}",
            world.region,
            world.account,
            st.stack_name,
            world.rng.hex(8),
            world.rng.hex(4),
            world.rng.hex(4),
            world.rng.hex(4),
            world.rng.hex(12)
        );
        world
            .cloudformation
            .seed(&st.stack_name, &st.outputs, id, now)
            .map_err(|e| fail(format!("stack {}", st.stack_name), e))?;
    }
    for o in &seed.objects {
        if !s3::valid_bucket_name(&o.bucket) {
            return Err(Error::msg(format!(
                "sandbox seed: object s3://{}/{}: {} is not a valid S3 bucket name",
                o.bucket, o.key, o.bucket
            )));
        }
        let body = o.body.clone().unwrap_or_default().into_bytes();
        world.s3.put(&o.bucket, &o.key, body, now);
    }
    Ok(())
}

fn seed_forward(world: &World, fwd: &[SeedForward]) -> Result<Vec<(String, i32)>, Error> {
    fwd.iter()
        .map(|f| {
            world
                .elbv2
                .find_target_group(&f.target_group)
                .map(|arn| (arn, f.weight))
                .ok_or_else(|| {
                    Error::msg(format!(
                        "sandbox seed: forward names unknown target group {}",
                        f.target_group
                    ))
                    .with_hint("declare it under targetGroups first")
                })
        })
        .collect()
}

/// In a seeded service's load balancer entry, turn target group names and "LB:PORT[:PRIORITY]"
/// references into ARNs.
fn resolve_seed_refs(
    world: &World,
    lb: &mut Value,
    refs: &std::collections::BTreeMap<String, String>,
) {
    if let Some(tg) = lb.get("targetGroupArn").and_then(Value::as_str)
        && let Some(arn) = world.elbv2.find_target_group(tg)
    {
        lb["targetGroupArn"] = json!(arn);
    }
    if let Some(adv) = lb
        .get_mut("advancedConfiguration")
        .and_then(Value::as_object_mut)
    {
        if let Some(alt) = adv.get("alternateTargetGroupArn").and_then(Value::as_str)
            && let Some(arn) = world.elbv2.find_target_group(alt)
        {
            adv.insert("alternateTargetGroupArn".into(), json!(arn));
        }
        for k in ["productionListenerRule", "testListenerRule"] {
            if let Some(arn) = adv.get(k).and_then(Value::as_str).and_then(|r| refs.get(r)) {
                adv.insert(k.into(), json!(arn));
            }
        }
    }
}

/// Put `ACCOUNT.dkr.ecr.REGION.amazonaws.com/repo:tag` into the sandbox's ECR; false when the
/// reference names another registry.
pub(crate) fn put_ecr_image(world: &mut World, image: &str, now: f64) -> bool {
    let host = world.ecr.registry_host();
    let Some(rest) = image.strip_prefix(&format!("{host}/")) else {
        return false;
    };
    let (repo, tag) = match rest.rsplit_once(':') {
        Some((r, t)) if !r.is_empty() && !t.is_empty() => (r, t),
        _ => (rest, "latest"),
    };
    world.ecr.put_image(repo, tag, now);
    true
}
