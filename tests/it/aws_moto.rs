//! The `aws` module against moto, an AWS emulator cortado did not write: request shapes are
//! accepted, answers parse, and a rendered definition registered and described back
//! compares equal after normalization.
//!
//! Each test starts its own `moto_server -p <free port>` (killed on drop). Without
//! `moto_server` on PATH the tests print a notice and pass (`pip install 'moto[server]'`).
//! moto drops deploymentConfiguration and answers HTTP 500 to service-deployment operations,
//! so those are tested against the in-process server in src/aws/tests.rs.

use std::collections::BTreeMap;
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use cortado::aws::types::ecs::TaskDefinitionStatus;
use cortado::aws::{AwsSettings, Clients, ServiceUpdate, connect};
use cortado::diff::{changes, service_for_compare, task_definition_for_compare};
use cortado::error::ErrorKind;
use cortado::render::{RenderContext, load_str};
use serde_json::Value;

struct Moto {
    child: Child,
    url: String,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts moto on a free port, or `None` (with a notice) when it is not installed.
fn moto() -> Option<Moto> {
    // Tests run in parallel: two may be handed the same free port, and the loser's moto
    // exits. Retry on another port when ours is not the one answering.
    for _ in 0..5 {
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let child = match Command::new("moto_server")
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
        {
            Ok(c) => c,
            Err(e) => {
                eprintln!(
                    "NOTICE: moto_server not runnable ({e}); skipping. Install it with `pip install 'moto[server]'`."
                );
                return None;
            }
        };
        let mut moto = Moto {
            child,
            url: format!("http://127.0.0.1:{port}"),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut up = false;
        while Instant::now() < deadline {
            if moto.child.try_wait().ok().flatten().is_some() {
                break;
            }
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                // Still ours a moment later (not another test's server on the same port)?
                std::thread::sleep(Duration::from_millis(300));
                up = moto.child.try_wait().ok().flatten().is_none();
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        if up {
            return Some(moto);
        }
    }
    panic!("moto_server did not start on any of 5 ports");
}

/// Calls moto's EC2 query API (cortado has no EC2 client) and returns the XML answer.
fn ec2(moto: &Moto, params: &[(&str, &str)]) -> String {
    use std::io::{Read, Write};
    let mut body = String::from("Version=2016-11-15");
    for (k, v) in params {
        body.push_str(&format!("&{k}={}", v.replace('/', "%2F")));
    }
    let host = moto.url.trim_start_matches("http://");
    let request = format!(
        "POST / HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/x-www-form-urlencoded\r\n\
         Authorization: AWS4-HMAC-SHA256 Credential=k/20260101/us-east-1/ec2/aws4_request, SignedHeaders=host, Signature=0\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let mut stream = TcpStream::connect(host).unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    answer
}

/// The text of the first `<tag>...</tag>` in `xml`.
fn xml_value(xml: &str, tag: &str) -> String {
    let open = format!("<{tag}>");
    let start = xml
        .find(&open)
        .unwrap_or_else(|| panic!("no {tag} in {xml}"))
        + open.len();
    let end = xml[start..].find('<').unwrap() + start;
    xml[start..end].to_string()
}

/// A VPC with two subnets and a security group; returns (subnets, security group).
fn network(moto: &Moto) -> (Vec<String>, String) {
    let vpc = xml_value(
        &ec2(
            moto,
            &[("Action", "CreateVpc"), ("CidrBlock", "10.0.0.0/16")],
        ),
        "vpcId",
    );
    let subnets = ["10.0.1.0/24", "10.0.2.0/24"]
        .iter()
        .map(|cidr| {
            xml_value(
                &ec2(
                    moto,
                    &[
                        ("Action", "CreateSubnet"),
                        ("VpcId", &vpc),
                        ("CidrBlock", cidr),
                    ],
                ),
                "subnetId",
            )
        })
        .collect();
    let sg = xml_value(
        &ec2(
            moto,
            &[
                ("Action", "CreateSecurityGroup"),
                ("GroupName", "web"),
                ("GroupDescription", "web"),
                ("VpcId", &vpc),
            ],
        ),
        "groupId",
    );
    (subnets, sg)
}

/// The service definition fixture with moto's subnet and security group ids.
fn service_definition(moto: &Moto) -> (cortado::aws::types::CreateServiceInput, Value) {
    let (subnets, sg) = network(moto);
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/aws/ecs-service-def.json");
    let text = std::fs::read_to_string(&path)
        .unwrap()
        .replace("subnet-0a", &subnets[0])
        .replace("subnet-0b", &subnets[1])
        .replace("sg-0a", &sg);
    let doc = load_str(&RenderContext::new(BTreeMap::new()), &path, text).unwrap();
    let (def, _) = cortado::model::service_definition(&doc)
        .into_result()
        .unwrap();
    let json = cortado::model::service_definition_to_json(&def).unwrap();
    (def, json)
}

async fn clients(moto: &Moto) -> Clients {
    connect(&AwsSettings {
        region: Some("us-east-1".into()),
        endpoint_url: Some(moto.url.clone()),
        static_credentials: true,
        max_attempts: 1,
        assume_role_arn: None,
    })
    .await
    .unwrap()
}

/// A cluster, made with the SDK directly (cortado never creates clusters).
async fn create_cluster(moto: &Moto, name: &str) {
    let conf = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .endpoint_url(&moto.url)
        .credentials_provider(aws_sdk_ecs::config::Credentials::new(
            "k", "s", None, None, "test",
        ))
        .load()
        .await;
    aws_sdk_ecs::Client::new(&conf)
        .create_cluster()
        .cluster_name(name)
        .send()
        .await
        .unwrap();
}

fn fixture(name: &str) -> cortado::render::Document {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/aws")
        .join(name);
    let text = std::fs::read_to_string(&path).unwrap();
    // Rendered as `cortado render` would (the template pass is a no-op on this file).
    load_str(&RenderContext::new(BTreeMap::new()), &path, text).unwrap()
}

fn local_task_definition() -> (cortado::aws::types::RegisterTaskDefinitionInput, Value) {
    let loaded = cortado::model::task_definition(&fixture("ecs-task-def.json"));
    let (input, _) = loaded.into_result().unwrap();
    let json = cortado::model::task_definition_to_json(&input).unwrap();
    (input, json)
}

/// Keys (as pointers) present in `a` but not in `b`, list items paired by position.
fn missing_keys(a: &Value, b: &Value, path: &str, out: &mut Vec<String>) {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            for (k, v) in x {
                let p = format!("{path}/{k}");
                match y.get(k) {
                    Some(w) => missing_keys(v, w, &p, out),
                    None => out.push(p),
                }
            }
        }
        (Value::Array(x), Value::Array(y)) => {
            for (i, (v, w)) in x.iter().zip(y).enumerate() {
                missing_keys(v, w, &format!("{path}/{i}"), out);
            }
        }
        _ => {}
    }
}

#[tokio::test]
async fn a_rendered_task_definition_survives_register_and_describe() {
    let Some(moto) = moto() else { return };
    let c = clients(&moto).await;
    let (input, local) = local_task_definition();
    let registered = c.register_task_definition(input).await.unwrap();
    assert_eq!(registered.family(), Some("cortado-web"));
    assert_eq!(registered.revision(), 1);
    let arn = registered.task_definition_arn().unwrap().to_string();

    let (described, tags) = c.describe_task_definition(&arn).await.unwrap();
    assert_eq!(tags.len(), 2, "tags come back with include TAGS");
    let live = cortado::aws::json::task_definition_json(&described, &tags).unwrap();

    // Every member of the local definition arrives (after normalization both ways, since
    // the file's "0.5 vCPU" comes back as "512").
    let (l, r) = (
        task_definition_for_compare(&local),
        task_definition_for_compare(&live),
    );
    let mut missing = Vec::new();
    missing_keys(&l, &r, "", &mut missing);
    assert_eq!(missing, Vec::<String>::new(), "members lost by moto");
    assert_eq!(changes(&r, &l), vec![], "local {l:#}\nlive {r:#}");
    assert!(!cortado::diff::task_definition_needs_new_revision(
        &local, &live
    ));

    // And a new image tag would need a new revision.
    let mut newer = local.clone();
    newer["containerDefinitions"][0]["image"] = "repo/web:next".into();
    assert!(cortado::diff::task_definition_needs_new_revision(
        &newer, &live
    ));
    assert_eq!(c.call_count("RegisterTaskDefinition"), 1);
    assert_eq!(c.call_count("DescribeTaskDefinition"), 1);
}

#[tokio::test]
async fn list_and_deregister_task_definitions_by_family() {
    let Some(moto) = moto() else { return };
    let c = clients(&moto).await;
    let (input, _) = local_task_definition();
    let mut arns = Vec::new();
    for _ in 0..3 {
        let td = c.register_task_definition(input.clone()).await.unwrap();
        arns.push(td.task_definition_arn().unwrap().to_string());
    }
    let mut other = input.clone();
    other.family = Some("cortado-web-worker".into());
    c.register_task_definition(other).await.unwrap();

    let active = c
        .list_task_definitions("cortado-web", TaskDefinitionStatus::Active)
        .await
        .unwrap();
    assert_eq!(active, arns, "only the family, oldest first");
    let gone = c.deregister_task_definition(&arns[0]).await.unwrap();
    assert_eq!(gone.status().map(|s| s.as_str()), Some("INACTIVE"));
    let active = c
        .list_task_definitions("cortado-web", TaskDefinitionStatus::Active)
        .await
        .unwrap();
    assert_eq!(active, arns[1..].to_vec());
    let inactive = c
        .list_task_definitions("cortado-web", TaskDefinitionStatus::Inactive)
        .await
        .unwrap();
    assert_eq!(inactive, vec![arns[0].clone()]);
}

#[tokio::test]
async fn create_describe_and_update_a_service() {
    let Some(moto) = moto() else { return };
    create_cluster(&moto, "prod").await;
    let c = clients(&moto).await;
    let (input, _) = local_task_definition();
    let td1 = c.register_task_definition(input.clone()).await.unwrap();
    let td1 = td1.task_definition_arn().unwrap().to_string();
    let td2 = c.register_task_definition(input).await.unwrap();
    let td2 = td2.task_definition_arn().unwrap().to_string();

    let (def, local) = service_definition(&moto);
    assert!(c.describe_service("prod", "web").await.unwrap().is_none());
    let created = c
        .create_service("prod", "web", &td1, def.clone())
        .await
        .unwrap();
    assert_eq!(created.service_name(), Some("web"));
    assert_eq!(created.task_definition(), Some(td1.as_str()));
    assert_eq!(created.desired_count(), 2);

    let live = c.describe_service("prod", "web").await.unwrap().unwrap();
    assert_eq!(live.status(), Some("ACTIVE"));
    let live_json = cortado::aws::json::service_definition_json(&live).unwrap();
    let (l, r) = service_for_compare(&local, &live_json, &[]);
    // moto 5.2 keeps neither deploymentConfiguration nor enableExecuteCommand (real ECS
    // does; the request carries them, see src/aws/tests.rs): the only differences allowed.
    const MOTO_DROPS: &[&str] = &["/deploymentConfiguration", "/enableExecuteCommand"];
    let diffs: Vec<String> = changes(&r, &l).into_iter().map(|c| c.path).collect();
    assert!(
        diffs
            .iter()
            .all(|p| MOTO_DROPS.iter().any(|d| p.starts_with(d))),
        "{diffs:?}\nlocal {l:#}\nlive {r:#}"
    );

    let calls_before = c.call_count("UpdateService");
    let updated = c
        .update_service(&ServiceUpdate {
            cluster: "prod".into(),
            service: "web".into(),
            task_definition: Some(td2.clone()),
            desired_count: Some(3),
            force_new_deployment: false,
            definition: Some(def),
        })
        .await
        .unwrap();
    assert_eq!(c.call_count("UpdateService"), calls_before + 1);
    assert_eq!(updated.task_definition(), Some(td2.as_str()));
    assert_eq!(updated.desired_count(), 3);
    let again = c.describe_service("prod", "web").await.unwrap().unwrap();
    assert_eq!(again.task_definition(), Some(td2.as_str()));
}

#[tokio::test]
async fn describe_services_batches_eleven_names_into_two_calls() {
    let Some(moto) = moto() else { return };
    create_cluster(&moto, "prod").await;
    let c = clients(&moto).await;
    let (input, _) = local_task_definition();
    let td = c.register_task_definition(input).await.unwrap();
    let td = td.task_definition_arn().unwrap().to_string();
    let (def, _) = service_definition(&moto);
    for name in ["s0", "s10"] {
        c.create_service("prod", name, &td, def.clone())
            .await
            .unwrap();
    }
    let names: Vec<String> = (0..11).map(|i| format!("s{i}")).collect();
    let found = c.describe_services("prod", &names).await.unwrap();
    assert_eq!(c.call_count("DescribeServices"), 2);
    let present: Vec<bool> = found.iter().map(Option::is_some).collect();
    let mut expected = vec![false; 11];
    expected[0] = true;
    expected[10] = true;
    assert_eq!(present, expected);
    assert_eq!(found[10].as_ref().unwrap().service_name(), Some("s10"));
}

#[tokio::test]
async fn missing_cluster_service_and_task_definition_are_errors_with_hints() {
    let Some(moto) = moto() else { return };
    let c = clients(&moto).await;
    let e = c.describe_service("nope", "web").await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Aws);
    assert!(
        e.to_string()
            .contains("cluster \"nope\" does not exist in region us-east-1"),
        "{e}"
    );

    create_cluster(&moto, "prod").await;
    let e = c
        .update_service(&ServiceUpdate {
            cluster: "prod".into(),
            service: "ghost".into(),
            desired_count: Some(1),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Aws, "{e}");
    assert!(e.to_string().contains("ServiceNotFoundException"), "{e}");

    let e = c.describe_task_definition("ghost:1").await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::BadInput, "{e}");
    assert!(
        e.to_string()
            .contains("check that task definition \"ghost:1\" exists in region us-east-1"),
        "{e}"
    );
}

/// Creates what the lookup plugins read, with boto3 (moto's own dependency): a stack with two
/// outputs (one exported), a secret, a Terraform state object in S3 and a SecureString.
fn seed_lookups(moto: &Moto) {
    let state =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tfstate/terraform.tfstate");
    let script = r#"
import sys, boto3
url, state = sys.argv[1], sys.argv[2]
kw = dict(endpoint_url=url, region_name="us-east-1",
          aws_access_key_id="k", aws_secret_access_key="s")
template = """{
  "Resources": {"Topic": {"Type": "AWS::SNS::Topic", "Properties": {"TopicName": "web-net"}}},
  "Outputs": {
    "DbHost": {"Value": "db.internal"},
    "SecurityGroupId": {"Value": "sg-cfn", "Export": {"Name": "web-net-SecurityGroupId"}}
  }
}"""
boto3.client("cloudformation", **kw).create_stack(StackName="web-net", TemplateBody=template)
boto3.client("secretsmanager", **kw).create_secret(Name="web/db", SecretString="pw-not-read")
s3 = boto3.client("s3", **kw)
s3.create_bucket(Bucket="cortado-states")
with open(state, "rb") as f:
    s3.put_object(Bucket="cortado-states", Key="web/terraform.tfstate", Body=f.read())
boto3.client("ssm", **kw).put_parameter(Name="/web/token", Value="tok-3141", Type="SecureString")
"#;
    let out = Command::new("python3")
        .args(["-c", script, &moto.url])
        .arg(&state)
        .output()
        .expect("run python3");
    assert!(
        out.status.success(),
        "seeding moto failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn lookup_reads_stack_outputs_exports_secret_arns_and_s3_states() {
    let Some(moto) = moto() else { return };
    seed_lookups(&moto);
    let c = clients(&moto).await;
    let outputs = c.stack_outputs("web-net").await.unwrap();
    assert!(
        outputs.contains(&("DbHost".to_string(), "db.internal".to_string())),
        "{outputs:?}"
    );
    let exports = c.exports().await.unwrap();
    assert!(
        exports.contains(&("web-net-SecurityGroupId".to_string(), "sg-cfn".to_string())),
        "{exports:?}"
    );
    let arn = c.secret_arn("web/db").await.unwrap();
    assert!(
        arn.starts_with("arn:aws:secretsmanager:us-east-1:") && arn.contains(":secret:web/db"),
        "{arn}"
    );
    let text = c
        .object_text("cortado-states", "web/terraform.tfstate")
        .await
        .unwrap();
    assert!(text.contains("\"version\": 4"), "{text}");
    // What does not exist is the user's input (exit 1), named with the region.
    for (err, want) in [
        (
            c.stack_outputs("nope").await.unwrap_err(),
            "CloudFormation stack nope does not exist in region us-east-1",
        ),
        (
            c.secret_arn("nope").await.unwrap_err(),
            "Secrets Manager secret nope does not exist in region us-east-1",
        ),
        (
            c.object_text("cortado-states", "nope.tfstate")
                .await
                .unwrap_err(),
            "S3 object s3://cortado-states/nope.tfstate does not exist",
        ),
        (
            c.object_text("no-such-bucket", "k").await.unwrap_err(),
            "S3 bucket no-such-bucket does not exist",
        ),
    ] {
        assert_eq!(err.kind, ErrorKind::BadInput, "{err}");
        assert!(err.to_string().contains(want), "{err}");
    }
}

/// `cortado render` of an ecspresso config using every lookup plugin, against moto.
#[test]
fn render_with_every_lookup_plugin_through_the_binary() {
    let Some(moto) = moto() else { return };
    seed_lookups(&moto);
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let run = |endpoint: &str, extra: &[&str]| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_cortado"));
        cmd.current_dir(root)
            .args([
                "render",
                "taskdef",
                "servicedef",
                "-c",
                "tests/fixtures/plugins/ecspresso.yml",
            ])
            .args(extra)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("AWS_ENDPOINT_URL", endpoint)
            .env("AWS_ACCESS_KEY_ID", "k")
            .env("AWS_SECRET_ACCESS_KEY", "s")
            .env("AWS_EC2_METADATA_DISABLED", "true");
        cmd.output().unwrap()
    };
    let out = run(&moto.url, &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let v: Value = serde_json::from_slice(&out.stdout).expect("render prints JSON");
    let td = &v["taskdef"];
    assert_eq!(td["taskRoleArn"], "arn:aws:iam::123456789012:role/web-task");
    assert_eq!(
        td["executionRoleArn"],
        "arn:aws:iam::123456789012:role/web-task"
    );
    let env = &td["containerDefinitions"][0]["environment"];
    assert_eq!(env[0]["value"], "db.internal");
    // The SecureString is masked in the output.
    assert_eq!(env[1]["value"], "***");
    assert!(!String::from_utf8_lossy(&out.stdout).contains("tok-3141"));
    let secret = td["containerDefinitions"][0]["secrets"][0]["valueFrom"]
        .as_str()
        .unwrap();
    assert!(secret.contains(":secret:web/db"), "{secret}");
    let vpc = &v["servicedef"]["networkConfiguration"]["awsvpcConfiguration"];
    assert_eq!(
        vpc["subnets"],
        serde_json::json!(["subnet-000", "subnet-111"])
    );
    assert_eq!(
        vpc["securityGroups"],
        serde_json::json!(["sg-web", "sg-cfn"])
    );

    // A stack that moto does not have: exit 1 at the template call, naming the stack.
    let bad = root.join("tests/fixtures/plugins/ecs-task-def.json");
    let text = std::fs::read_to_string(&bad).unwrap();
    let dir = std::env::temp_dir().join(format!("cortado-moto-plugins-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("tf")).unwrap();
    for f in [
        "ecspresso.yml",
        "ecs-service-def.json",
        "tf/terraform.tfstate",
    ] {
        std::fs::copy(root.join("tests/fixtures/plugins").join(f), dir.join(f)).unwrap();
    }
    std::fs::write(
        dir.join("ecs-task-def.json"),
        text.replace("`web-net`", "`web-nett`"),
    )
    .unwrap();
    let cfg = dir.join("ecspresso.yml");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_cortado"));
    let out = cmd
        .args(["render", "taskdef", "-c"])
        .arg(&cfg)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("AWS_ENDPOINT_URL", &moto.url)
        .env("AWS_ACCESS_KEY_ID", "k")
        .env("AWS_SECRET_ACCESS_KEY", "s")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("CloudFormation stack web-nett does not exist in region us-east-1"),
        "{stderr}"
    );
    assert!(stderr.contains("ecs-task-def.json:15:42"), "{stderr}");
    let _ = std::fs::remove_dir_all(&dir);

    // With --sandbox nothing reaches moto (or AWS): a clear refusal instead.
    let out = run(&moto.url, &["--sandbox"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("under --sandbox"), "{stderr}");
}

/// `cortado sandbox push`'s ECR calls (CreateRepository, PutImage) as moto, an ECR we did not
/// write, takes them: the image is then there under its tag, and pushing it again is said to
/// be a no-op.
#[tokio::test]
async fn sandbox_push_request_shapes_are_what_ecr_takes() {
    let Some(moto) = moto() else { return };
    let image = "123456789012.dkr.ecr.us-east-1.amazonaws.com/team/web:v9";
    let push = || {
        Command::new(env!("CARGO_BIN_EXE_cortado"))
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("AWS_ACCESS_KEY_ID", "k")
            .env("AWS_SECRET_ACCESS_KEY", "s")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .args(["sandbox", "push", "--endpoint", &moto.url, image])
            .output()
            .unwrap()
    };
    let out = push();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains(&format!("pushed {image} (sha256:")),
        "{stdout}"
    );
    let c = clients(&moto).await;
    let ecr = cortado::aws::ecr::EcrImage::parse(image).unwrap();
    let (media, manifest) = c.image_manifest(&ecr).await.unwrap().expect("pushed");
    assert!(media.contains("manifest.v2"), "{media}");
    assert!(manifest.contains("\"schemaVersion\":2"), "{manifest}");
    let again = push();
    assert!(again.status.success());
    assert!(String::from_utf8_lossy(&again.stdout).contains("already in the sandbox"));
}

/// `cortado run`'s log reads against moto's CloudWatch Logs: a stream that does not exist
/// yet is no lines (not an error), new lines come in order after the forward token, and the
/// token moto hands back with nothing new reads nothing again.
#[tokio::test]
async fn get_log_events_follows_the_forward_token() {
    let Some(moto) = moto() else { return };
    let c = clients(&moto).await;
    let none = c
        .get_log_events("/ecs/job", "run/app/t1", None)
        .await
        .unwrap();
    assert!(none.lines.is_empty() && none.next.is_none(), "{none:?}");
    let conf = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .endpoint_url(&moto.url)
        .credentials_provider(aws_sdk_ecs::config::Credentials::new(
            "k", "s", None, None, "test",
        ))
        .load()
        .await;
    let logs = aws_sdk_cloudwatchlogs::Client::new(&conf);
    logs.create_log_group()
        .log_group_name("/ecs/job")
        .send()
        .await
        .unwrap();
    logs.create_log_stream()
        .log_group_name("/ecs/job")
        .log_stream_name("run/app/t1")
        .send()
        .await
        .unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let put = |msgs: &[&str], base: i64| {
        let mut req = logs
            .put_log_events()
            .log_group_name("/ecs/job")
            .log_stream_name("run/app/t1");
        for (i, m) in msgs.iter().enumerate() {
            req = req.log_events(
                aws_sdk_cloudwatchlogs::types::InputLogEvent::builder()
                    .timestamp(base + i as i64)
                    .message(*m)
                    .build()
                    .unwrap(),
            );
        }
        req.send()
    };
    put(&["one", "two"], now).await.unwrap();
    let first = c
        .get_log_events("/ecs/job", "run/app/t1", None)
        .await
        .unwrap();
    let msgs: Vec<&str> = first.lines.iter().map(|(_, m)| m.as_str()).collect();
    assert_eq!(msgs, ["one", "two"]);
    let token = first.next.clone().expect("a forward token");
    let again = c
        .get_log_events("/ecs/job", "run/app/t1", Some(&token))
        .await
        .unwrap();
    assert!(again.lines.is_empty(), "{again:?}");
    put(&["three"], now + 10).await.unwrap();
    let next = c
        .get_log_events("/ecs/job", "run/app/t1", again.next.as_deref())
        .await
        .unwrap();
    let msgs: Vec<&str> = next.lines.iter().map(|(_, m)| m.as_str()).collect();
    assert_eq!(msgs, ["three"]);
}

/// `deploy --suspend-auto-scaling` / `--resume-auto-scaling`'s two calls against moto's
/// Application Auto Scaling: a registered target is read back, suspended (all three
/// activities) and resumed with its capacities kept; a service without one reads as `None`.
/// (moto checks that the ECS service exists, as AWS does; unlike AWS it also registers a new
/// target without MinCapacity/MaxCapacity.)
#[tokio::test]
async fn auto_scaling_target_suspended_and_resumed() {
    let Some(moto) = moto() else { return };
    create_cluster(&moto, "prod").await;
    let c = clients(&moto).await;
    let (input, _) = local_task_definition();
    let td = c.register_task_definition(input).await.unwrap();
    let td = td.task_definition_arn().unwrap().to_string();
    let (def, _) = service_definition(&moto);
    c.create_service("prod", "web", &td, def).await.unwrap();
    assert_eq!(c.scalable_target("prod", "web").await.unwrap(), None);

    let conf = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .endpoint_url(&moto.url)
        .credentials_provider(aws_sdk_ecs::config::Credentials::new(
            "k", "s", None, None, "test",
        ))
        .load()
        .await;
    use aws_sdk_applicationautoscaling::types::{ScalableDimension, ServiceNamespace};
    aws_sdk_applicationautoscaling::Client::new(&conf)
        .register_scalable_target()
        .service_namespace(ServiceNamespace::Ecs)
        .scalable_dimension(ScalableDimension::EcsServiceDesiredCount)
        .resource_id("service/prod/web")
        .min_capacity(2)
        .max_capacity(6)
        .send()
        .await
        .unwrap();
    let t = c.scalable_target("prod", "web").await.unwrap().unwrap();
    assert_eq!((t.min, t.max), (2, 6));
    assert!(t.none_suspended(), "{t:?}");
    c.set_auto_scaling_suspended("prod", "web", true)
        .await
        .unwrap();
    let t = c.scalable_target("prod", "web").await.unwrap().unwrap();
    assert!(t.all_suspended(), "{t:?}");
    assert_eq!((t.min, t.max), (2, 6), "capacities kept");
    c.set_auto_scaling_suspended("prod", "web", false)
        .await
        .unwrap();
    let t = c.scalable_target("prod", "web").await.unwrap().unwrap();
    assert!(t.none_suspended(), "{t:?}");
    assert_eq!(c.call_count("RegisterScalableTarget"), 2);
    assert_eq!(c.scalable_target("prod", "other").await.unwrap(), None);
}

/// What `cortado verify` and `cortado init` read, made in moto with boto3: a VPC, a cluster,
/// an ECR image `web:v1`, a role trusting ECS tasks and one trusting EC2, a log group, a
/// SecureString, a Secrets Manager secret and an `ip` target group. Returns the ids moto made
/// (`tg`, `subnet`, `sg`, `secret`).
fn seed_prerequisites(moto: &Moto) -> Value {
    let script = r#"
import sys, json, boto3
kw = dict(endpoint_url=sys.argv[1], region_name="us-east-1",
          aws_access_key_id="k", aws_secret_access_key="s")
ec2 = boto3.client("ec2", **kw)
vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24")["Subnet"]["SubnetId"]
sg = ec2.create_security_group(GroupName="web", Description="web", VpcId=vpc)["GroupId"]
boto3.client("ecs", **kw).create_cluster(clusterName="moto")
ecr = boto3.client("ecr", **kw)
ecr.create_repository(repositoryName="web")
manifest = {"schemaVersion": 2,
            "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
            "config": {"mediaType": "application/vnd.docker.container.image.v1+json",
                       "size": 7023, "digest": "sha256:" + "b" * 64},
            "layers": []}
ecr.put_image(repositoryName="web", imageManifest=json.dumps(manifest), imageTag="v1")
iam = boto3.client("iam", **kw)
def trust(service):
    return json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
        "Principal": {"Service": service}, "Action": "sts:AssumeRole"}]})
iam.create_role(RoleName="web-exec", AssumeRolePolicyDocument=trust("ecs-tasks.amazonaws.com"))
iam.create_role(RoleName="web-task-ec2", AssumeRolePolicyDocument=trust("ec2.amazonaws.com"))
boto3.client("logs", **kw).create_log_group(logGroupName="/ecs/web")
boto3.client("ssm", **kw).put_parameter(Name="/web/db", Value="pw-moto-ssm", Type="SecureString")
secret = boto3.client("secretsmanager", **kw).create_secret(
    Name="web/api", SecretString="pw-moto-sm")["ARN"]
tg = boto3.client("elbv2", **kw).create_target_group(
    Name="web", Protocol="HTTP", Port=80, VpcId=vpc, TargetType="ip")["TargetGroups"][0]["TargetGroupArn"]
print(json.dumps({"tg": tg, "subnet": subnet, "sg": sg, "secret": secret}))
"#;
    let out = Command::new("python3")
        .args(["-c", script, &moto.url])
        .output()
        .expect("run python3");
    assert!(
        out.status.success(),
        "seeding moto failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("the seed script prints JSON")
}

/// Runs the binary against moto (`TAG` set for the templates) and returns its output.
fn cortado_on_moto(moto: &Moto, tag: &str, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_cortado"))
        .args(args)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("AWS_ENDPOINT_URL", &moto.url)
        .env("AWS_ACCESS_KEY_ID", "k")
        .env("AWS_SECRET_ACCESS_KEY", "s")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("TAG", tag)
        .output()
        .unwrap()
}

/// `cortado verify` through the binary against moto: every kind of check reads moto's answer
/// (cluster, ECR image, log group, SSM parameter, Secrets Manager secret, IAM roles and their
/// trust, target group). A missing image, a missing parameter, a role trusting EC2 and a role
/// that does not exist are NG with their reasons (exit 1); no secret value is printed.
#[test]
fn verify_through_the_binary() {
    let Some(moto) = moto() else { return };
    let ids = seed_prerequisites(&moto);
    let dir = std::env::temp_dir().join(format!("cortado-moto-verify-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("cortado.yml"),
        "region: us-east-1\ncluster: moto\nservice: web\nservice_definition: ecs-service-def.json\ntask_definition: ecs-task-def.json\n",
    )
    .unwrap();
    let task = |task_role: &str| {
        serde_json::json!({
            "family": "web", "cpu": "256", "memory": "512", "networkMode": "awsvpc",
            "requiresCompatibilities": ["FARGATE"],
            "executionRoleArn": "arn:aws:iam::123456789012:role/web-exec",
            "taskRoleArn": format!("arn:aws:iam::123456789012:role/{task_role}"),
            "containerDefinitions": [{
                "name": "web",
                "image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/web:{{ must_env `TAG` }}",
                "essential": true,
                "portMappings": [{"containerPort": 80, "protocol": "tcp"}],
                "logConfiguration": {"logDriver": "awslogs", "options": {
                    "awslogs-group": "/ecs/web", "awslogs-region": "us-east-1",
                    "awslogs-stream-prefix": "web"}},
                "secrets": [
                    {"name": "DB_PASSWORD", "valueFrom": "/web/db"},
                    {"name": "API_KEY", "valueFrom": ids["secret"]},
                    {"name": "OLD_KEY", "valueFrom": "arn:aws:ssm:us-east-1:123456789012:parameter/web/gone"}
                ]
            }]
        })
        .to_string()
    };
    std::fs::write(
        dir.join("ecs-service-def.json"),
        serde_json::json!({
            "launchType": "FARGATE", "desiredCount": 1,
            "loadBalancers": [{"targetGroupArn": ids["tg"], "containerName": "web", "containerPort": 80}],
            "networkConfiguration": {"awsvpcConfiguration": {"subnets": [ids["subnet"]], "securityGroups": [ids["sg"]]}}
        })
        .to_string(),
    )
    .unwrap();
    let config = dir.join("cortado.yml");
    let config = config.to_str().unwrap();
    let verify = |tag: &str,
                  task_role: &str|
     -> (Option<i32>, Vec<(String, String, String)>, String) {
        std::fs::write(dir.join("ecs-task-def.json"), task(task_role)).unwrap();
        let out = cortado_on_moto(&moto, tag, &["verify", "--output", "json", "-c", config]);
        let stdout = String::from_utf8_lossy(&out.stdout).to_string();
        let v: Value = serde_json::from_str(&stdout)
            .unwrap_or_else(|e| panic!("{e}: {stdout}\n{}", String::from_utf8_lossy(&out.stderr)));
        let checks = v["services"][0]["checks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                let s = |k: &str| c[k].as_str().unwrap_or_default().to_string();
                (s("status"), s("what"), s("detail"))
            })
            .collect();
        (out.status.code(), checks, stdout)
    };
    let (code, checks, stdout) = verify("v1", "web-task-ec2");
    assert_eq!(code, Some(1), "{stdout}");
    for secret in ["pw-moto-ssm", "pw-moto-sm"] {
        assert!(!stdout.contains(secret), "a secret value leaked: {stdout}");
    }
    let status = |prefix: &str| -> (String, String) {
        checks
            .iter()
            .find(|(_, what, _)| what.starts_with(prefix))
            .map(|(s, _, d)| (s.clone(), d.clone()))
            .unwrap_or_else(|| panic!("no check {prefix}: {stdout}"))
    };
    for ok in [
        "cluster moto",
        "image of web",
        "log group of web",
        "secret DB_PASSWORD",
        "secret API_KEY",
        "execution role",
        "targetgroup/web/",
    ] {
        assert_eq!(status(ok).0, "OK", "{ok}: {stdout}");
    }
    let (st, detail) = status("secret OLD_KEY");
    assert_eq!(st, "NG", "{stdout}");
    assert!(detail.contains("/web/gone does not exist"), "{detail}");
    let (st, detail) = status("task role");
    assert_eq!(st, "NG", "{stdout}");
    assert!(
        detail.contains("does not let ecs-tasks.amazonaws.com assume it")
            && detail.contains("Service ec2.amazonaws.com"),
        "{detail}"
    );
    let (code, checks, stdout) = verify("v9", "web-task-missing");
    assert_eq!(code, Some(1), "{stdout}");
    let find = |prefix: &str| {
        checks
            .iter()
            .find(|(_, what, _)| what.starts_with(prefix))
            .cloned()
            .unwrap_or_else(|| panic!("no check {prefix}: {stdout}"))
    };
    let (st, _, detail) = find("task role");
    assert_eq!(st, "NG");
    assert!(
        detail.contains("IAM has no role named web-task-missing"),
        "{detail}"
    );
    let (st, _, detail) = find("image of web");
    assert_eq!(st, "NG");
    assert!(detail.contains("has no v9"), "{detail}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// `cortado init` from a service made in moto with boto3 (not by cortado), then `cortado diff`
/// on the files it wrote: nothing differs (exit 0), and another image tag does (`--exit-code`: 2).
/// What this cannot show: moto keeps no deploymentConfiguration, so the files have none where
/// a real service would carry ECS's defaults (init drops those as defaults anyway).
#[test]
fn init_then_diff_shows_nothing() {
    let Some(moto) = moto() else { return };
    let ids = seed_prerequisites(&moto);
    let script = r#"
import sys, boto3
kw = dict(endpoint_url=sys.argv[1], region_name="us-east-1",
          aws_access_key_id="k", aws_secret_access_key="s")
ecs = boto3.client("ecs", **kw)
td = ecs.register_task_definition(
    family="web", cpu="256", memory="512", networkMode="awsvpc",
    requiresCompatibilities=["FARGATE"],
    executionRoleArn="arn:aws:iam::123456789012:role/web-exec",
    containerDefinitions=[{
        "name": "web", "image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/web:v1",
        "essential": True, "portMappings": [{"containerPort": 80, "protocol": "tcp"}],
        "environment": [{"name": "B", "value": "2"}, {"name": "A", "value": "1"}]}],
)["taskDefinition"]["taskDefinitionArn"]
ecs.create_service(
    cluster="moto", serviceName="web", taskDefinition=td, desiredCount=2, launchType="FARGATE",
    networkConfiguration={"awsvpcConfiguration": {"subnets": [sys.argv[2]],
        "securityGroups": [sys.argv[3]], "assignPublicIp": "DISABLED"}},
    loadBalancers=[{"targetGroupArn": sys.argv[4], "containerName": "web", "containerPort": 80}])
"#;
    let out = Command::new("python3")
        .args(["-c", script, &moto.url])
        .args([&ids["subnet"], &ids["sg"], &ids["tg"]].map(|v| v.as_str().unwrap()))
        .output()
        .expect("run python3");
    assert!(
        out.status.success(),
        "creating the service failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dir = std::env::temp_dir().join(format!("cortado-moto-init-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let dir_arg = dir.to_str().unwrap();
    let init = cortado_on_moto(
        &moto,
        "v1",
        &[
            "init",
            "--cluster",
            "moto",
            "--service",
            "web",
            "--dir",
            dir_arg,
            "--image-tag-env",
            "TAG",
        ],
    );
    assert!(
        init.status.success(),
        "{}",
        String::from_utf8_lossy(&init.stderr)
    );
    let task = std::fs::read_to_string(dir.join("ecs-task-def.json")).unwrap();
    assert!(task.contains("web:{{ must_env `TAG` }}"), "{task}");
    assert!(!task.contains("taskDefinitionArn"), "{task}");
    let config = dir.join("cortado.yml");
    let config = config.to_str().unwrap();
    let diff = cortado_on_moto(&moto, "v1", &["diff", "-c", config]);
    assert_eq!(
        diff.status.code(),
        Some(0),
        "{}\n{}",
        String::from_utf8_lossy(&diff.stdout),
        String::from_utf8_lossy(&diff.stderr)
    );
    let changed = cortado_on_moto(&moto, "v2", &["diff", "--exit-code", "-c", config]);
    assert_eq!(
        changed.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&changed.stdout)
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// CodeDeploy request shapes against moto (which implements applications, groups,
/// CreateDeployment, GetDeployment and the listings; not BatchGetDeploymentGroups,
/// deployment targets or StopDeployment, which the sandbox scenarios cover).
#[tokio::test]
async fn codedeploy_group_lookup_create_and_get_deployment() {
    let Some(moto) = moto() else { return };
    let conf = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .endpoint_url(&moto.url)
        .credentials_provider(aws_sdk_ecs::config::Credentials::new(
            "k", "s", None, None, "test",
        ))
        .load()
        .await;
    let cd = aws_sdk_codedeploy::Client::new(&conf);
    use aws_sdk_codedeploy::types::{
        BlueGreenDeploymentConfiguration, BlueInstanceTerminationOption, ComputePlatform,
        EcsService, InstanceAction, LoadBalancerInfo, TargetGroupInfo, TargetGroupPairInfo,
        TrafficRoute,
    };
    cd.create_application()
        .application_name("web-app")
        .compute_platform(ComputePlatform::Ecs)
        .send()
        .await
        .unwrap();
    cd.create_deployment_group()
        .application_name("web-app")
        .deployment_group_name("web-dg")
        .service_role_arn("arn:aws:iam::123456789012:role/ecsCodeDeployRole")
        .ecs_services(
            EcsService::builder()
                .cluster_name("prod")
                .service_name("web")
                .build(),
        )
        .blue_green_deployment_configuration(
            BlueGreenDeploymentConfiguration::builder()
                .terminate_blue_instances_on_deployment_success(
                    BlueInstanceTerminationOption::builder()
                        .action(InstanceAction::Terminate)
                        .termination_wait_time_in_minutes(5)
                        .build(),
                )
                .build(),
        )
        .load_balancer_info(
            LoadBalancerInfo::builder()
                .target_group_pair_info_list(
                    TargetGroupPairInfo::builder()
                        .target_groups(TargetGroupInfo::builder().name("web-blue").build())
                        .target_groups(TargetGroupInfo::builder().name("web-green").build())
                        .prod_traffic_route(
                            TrafficRoute::builder().listener_arns("arn:l80").build(),
                        )
                        .build(),
                )
                .build(),
        )
        .send()
        .await
        .unwrap();
    let c = clients(&moto).await;
    assert_eq!(c.codedeploy_applications().await.unwrap(), vec!["web-app"]);
    let g = c.codedeploy_group("web-app", "web-dg").await.unwrap();
    assert_eq!(g.services, vec![("prod".to_string(), "web".to_string())]);
    assert_eq!(g.target_groups, vec!["web-blue", "web-green"]);
    assert_eq!(g.termination_wait_minutes, Some(5));
    let svc = serde_json::json!({
        "loadBalancers": [{"targetGroupArn": "tg", "containerName": "web", "containerPort": 80}],
        "networkConfiguration": {"awsvpcConfiguration": {"subnets": ["subnet-1"]}},
    });
    let hooks = vec![("AfterAllowTestTraffic".to_string(), "smoke".to_string())];
    let spec = cortado::deploy::codedeploy::appspec(
        &svc,
        "arn:aws:ecs:us-east-1:123456789012:task-definition/web:2",
        &hooks,
    )
    .unwrap();
    let text = cortado::deploy::codedeploy::appspec_yaml(&spec).unwrap();
    let events: Vec<String> = cortado::deploy::codedeploy::ROLLBACK_EVENTS
        .iter()
        .map(|e| e.to_string())
        .collect();
    let id = c
        .create_codedeploy_deployment(&cortado::aws::codedeploy::NewDeployment {
            application: "web-app",
            group: "web-dg",
            appspec: &text,
            description: Some("cortado test"),
            rollback_events: &events,
        })
        .await
        .unwrap();
    assert!(!id.is_empty());
    let d = c.codedeploy_deployment(&id).await.unwrap();
    assert_eq!(d.id, id);
    assert!(!d.status.is_empty(), "{d:?}");
    // The AppSpec moto stored is the one sent, and it names the revision.
    assert_eq!(d.appspec.as_deref(), Some(text.as_str()));
    assert_eq!(
        cortado::deploy::codedeploy::appspec_task_definition(&text).as_deref(),
        Some("arn:aws:ecs:us-east-1:123456789012:task-definition/web:2")
    );
    let listed = c
        .codedeploy_deployments("web-app", "web-dg", &[d.status.as_str()])
        .await
        .unwrap();
    assert_eq!(listed, vec![id]);
    // A group that does not exist is an error, not an empty answer.
    assert!(c.codedeploy_group("web-app", "nope").await.is_err());
}
