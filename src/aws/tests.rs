//! Tests of the AWS layer against an in-process HTTP server that records requests and
//! answers with canned bodies, and a schema-driven generator of SDK values with EVERY member
//! set (so a member a write operation forgets to pass fails a test, including members a
//! future SDK adds).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use aws_sdk_ecs::operation::create_service::CreateServiceInput;
use aws_sdk_ecs::operation::register_task_definition::RegisterTaskDefinitionInput;
use aws_sdk_ecs::operation::update_service::UpdateServiceInput;
use aws_smithy_schema::Schema;
use aws_smithy_schema::serde::{SerdeError, ShapeDeserializer};
use aws_smithy_types::{BigDecimal, BigInteger, Blob, DateTime, Document};
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::*;
use crate::error::ErrorKind;
use crate::model::codec;

// ---------------------------------------------------------------- every-member generator

/// A [`ShapeDeserializer`] that invents a value for every member the SDK asks for: each
/// structure gets all its members, each list one element, each map one entry.
struct Filler {
    counter: i32,
    depth: usize,
}

impl Filler {
    fn next(&mut self) -> i32 {
        self.counter += 1;
        self.counter
    }
}

/// An SDK value with every member set, from its generated `deserialize`.
fn filled<T>(read: fn(&mut dyn ShapeDeserializer) -> Result<T, SerdeError>) -> T {
    let mut f = Filler {
        counter: 0,
        depth: 0,
    };
    read(&mut f).expect("the generator builds every shape")
}

impl ShapeDeserializer for Filler {
    fn read_struct(
        &mut self,
        schema: &Schema<'_>,
        state: &mut dyn FnMut(&Schema<'_>, &mut dyn ShapeDeserializer) -> Result<(), SerdeError>,
    ) -> Result<(), SerdeError> {
        // No ECS input shape nests this deep; the bound only guards against recursion.
        if self.depth > 12 {
            return Ok(());
        }
        self.depth += 1;
        let members: Vec<&Schema<'_>> = schema.members().to_vec();
        let members = if schema.is_union() {
            members.into_iter().take(1).collect()
        } else {
            members
        };
        for m in members {
            state(m, self)?;
        }
        self.depth -= 1;
        Ok(())
    }

    fn read_list(
        &mut self,
        _schema: &Schema<'_>,
        state: &mut dyn FnMut(&mut dyn ShapeDeserializer) -> Result<(), SerdeError>,
    ) -> Result<(), SerdeError> {
        state(self)
    }

    fn read_map(
        &mut self,
        _schema: &Schema<'_>,
        state: &mut dyn FnMut(String, &mut dyn ShapeDeserializer) -> Result<(), SerdeError>,
    ) -> Result<(), SerdeError> {
        let k = format!("key{}", self.next());
        state(k, self)
    }

    fn read_boolean(&mut self, _: &Schema<'_>) -> Result<bool, SerdeError> {
        Ok(true)
    }
    fn read_byte(&mut self, _: &Schema<'_>) -> Result<i8, SerdeError> {
        Ok((self.next() % 100) as i8)
    }
    fn read_short(&mut self, _: &Schema<'_>) -> Result<i16, SerdeError> {
        Ok(self.next() as i16)
    }
    fn read_integer(&mut self, _: &Schema<'_>) -> Result<i32, SerdeError> {
        Ok(self.next())
    }
    fn read_long(&mut self, _: &Schema<'_>) -> Result<i64, SerdeError> {
        Ok(self.next().into())
    }
    fn read_float(&mut self, _: &Schema<'_>) -> Result<f32, SerdeError> {
        Ok(self.next() as f32)
    }
    fn read_double(&mut self, _: &Schema<'_>) -> Result<f64, SerdeError> {
        Ok(self.next().into())
    }
    fn read_big_integer(&mut self, _: &Schema<'_>) -> Result<BigInteger, SerdeError> {
        Err(SerdeError::custom("no big integers in ECS inputs"))
    }
    fn read_big_decimal(&mut self, _: &Schema<'_>) -> Result<BigDecimal, SerdeError> {
        Err(SerdeError::custom("no big decimals in ECS inputs"))
    }
    fn read_string(&mut self, schema: &Schema<'_>) -> Result<String, SerdeError> {
        Ok(format!(
            "{}-{}",
            schema.member_name().unwrap_or("s"),
            self.next()
        ))
    }
    fn read_blob(&mut self, _: &Schema<'_>) -> Result<Blob, SerdeError> {
        Ok(Blob::new(format!("blob{}", self.next())))
    }
    fn read_timestamp(&mut self, _: &Schema<'_>) -> Result<DateTime, SerdeError> {
        Ok(DateTime::from_secs(1_700_000_000 + i64::from(self.next())))
    }
    fn read_document(&mut self, _: &Schema<'_>) -> Result<Document, SerdeError> {
        Ok(Document::String(format!("doc{}", self.next())))
    }
    fn is_null(&self) -> bool {
        false
    }
    fn container_size(&self) -> Option<usize> {
        Some(1)
    }
}

/// Every member of `schema` is a key of `json` (the generator's sanity check).
fn assert_every_member(json: &Value, schema: &Schema<'_>) {
    for m in schema.members() {
        let name = m.member_name().unwrap_or("");
        assert!(json.get(name).is_some(), "member {name} not generated");
    }
}

// ---------------------------------------------------------------- capturing server

/// HTTP status and body.
type Reply = (u16, String);

#[derive(Clone, Default)]
struct Capture {
    /// (operation, request body) in arrival order.
    requests: Arc<Mutex<Vec<(String, Value)>>>,
    /// operation -> replies (HTTP status, body) in order; the last one repeats.
    replies: Arc<Mutex<HashMap<String, Vec<Reply>>>>,
}

impl Capture {
    /// Queues a reply to `operation`.
    fn reply(&self, operation: &str, status: u16, body: Value) {
        self.replies
            .lock()
            .unwrap()
            .entry(operation.to_string())
            .or_default()
            .push((status, body.to_string()));
    }

    fn next_reply(&self, operation: &str) -> (u16, String) {
        let mut replies = self.replies.lock().unwrap();
        match replies.get_mut(operation) {
            Some(q) if q.len() > 1 => q.remove(0),
            Some(q) if !q.is_empty() => q[0].clone(),
            _ => (200, "{}".to_string()),
        }
    }

    fn bodies(&self, operation: &str) -> Vec<Value> {
        self.requests
            .lock()
            .unwrap()
            .iter()
            .filter(|(op, _)| op == operation)
            .map(|(_, b)| b.clone())
            .collect()
    }
}

async fn handle(State(cap): State<Capture>, headers: HeaderMap, body: Bytes) -> Response {
    let target = headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let op = target.rsplit('.').next().unwrap_or("").to_string();
    let parsed: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    cap.requests.lock().unwrap().push((op.clone(), parsed));
    let (status, body) = cap.next_reply(&op);
    (
        StatusCode::from_u16(status).unwrap(),
        [("content-type", "application/x-amz-json-1.1")],
        body,
    )
        .into_response()
}

async fn serve(cap: Capture) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = Router::new().fallback(handle).with_state(cap);
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}")
}

async fn clients(cap: &Capture) -> Clients {
    let url = serve(cap.clone()).await;
    connect(&AwsSettings {
        region: Some("eu-west-3".into()),
        endpoint_url: Some(url),
        static_credentials: true,
        max_attempts: 1,
        assume_role_arn: None,
    })
    .await
    .unwrap()
}

fn decode<T>(v: &Value, read: fn(&mut dyn ShapeDeserializer) -> Result<T, SerdeError>) -> T {
    let d = codec::decode(v, read);
    assert!(d.findings.is_empty(), "{:?}", d.findings);
    d.value.unwrap()
}

// ---------------------------------------------------------------- every member arrives

#[tokio::test]
async fn register_sends_every_member_of_the_input() {
    let input = filled(RegisterTaskDefinitionInput::deserialize);
    assert_every_member(
        &codec::encode(&input).unwrap(),
        RegisterTaskDefinitionInput::SCHEMA,
    );
    let cap = Capture::default();
    cap.reply(
        "RegisterTaskDefinition",
        200,
        json!({"taskDefinition": {"family": "f", "revision": 3}}),
    );
    let c = clients(&cap).await;
    let td = c.register_task_definition(input.clone()).await.unwrap();
    assert_eq!(td.revision(), 3);
    let bodies = cap.bodies("RegisterTaskDefinition");
    assert_eq!(bodies.len(), 1);
    let sent = decode(&bodies[0], RegisterTaskDefinitionInput::deserialize);
    assert_eq!(sent, input);
}

#[tokio::test]
async fn create_service_sends_every_member_of_the_input() {
    let input = filled(CreateServiceInput::deserialize);
    assert_every_member(&codec::encode(&input).unwrap(), CreateServiceInput::SCHEMA);
    let cap = Capture::default();
    cap.reply(
        "CreateService",
        200,
        json!({"service": {"serviceName": "web"}}),
    );
    let c = clients(&cap).await;
    let s = c
        .create_service("prod", "web", "web:4", input.clone())
        .await
        .unwrap();
    assert_eq!(s.service_name(), Some("web"));
    let sent = decode(
        &cap.bodies("CreateService")[0],
        CreateServiceInput::deserialize,
    );
    let mut expected = input;
    expected.cluster = Some("prod".into());
    expected.service_name = Some("web".into());
    expected.task_definition = Some("web:4".into());
    assert_eq!(sent, expected);
}

#[tokio::test]
async fn update_service_sends_every_member_of_the_input() {
    let input = filled(UpdateServiceInput::deserialize);
    assert_every_member(&codec::encode(&input).unwrap(), UpdateServiceInput::SCHEMA);
    let cap = Capture::default();
    cap.reply(
        "UpdateService",
        200,
        json!({"service": {"serviceName": "web"}}),
    );
    let c = clients(&cap).await;
    c.update_service_input(input.clone()).await.unwrap();
    let bodies = cap.bodies("UpdateService");
    assert_eq!(bodies.len(), 1, "one UpdateService call");
    assert_eq!(decode(&bodies[0], UpdateServiceInput::deserialize), input);
}

#[tokio::test]
async fn an_update_from_a_full_definition_keeps_every_shared_member() {
    let def = filled(CreateServiceInput::deserialize);
    let update = ServiceUpdate {
        cluster: "prod".into(),
        service: "web".into(),
        task_definition: Some("web:5".into()),
        desired_count: Some(3),
        force_new_deployment: false,
        definition: Some(def.clone()),
    };
    let (input, skipped) = update.to_input().unwrap();
    let def_json = codec::encode(&def).unwrap();
    let input_json = codec::encode(&input).unwrap();
    for m in UpdateServiceInput::SCHEMA.members() {
        let name = m.member_name().unwrap();
        match name {
            "cluster" => assert_eq!(input_json[name], "prod"),
            "service" => assert_eq!(input_json[name], "web"),
            "taskDefinition" => assert_eq!(input_json[name], "web:5"),
            "desiredCount" => assert_eq!(input_json[name], 3),
            "forceNewDeployment" => assert!(input_json.get(name).is_none()),
            _ if def_json.get(name).is_some() => {
                assert_eq!(input_json[name], def_json[name], "{name}")
            }
            _ => {}
        }
    }
    // Everything the definition has that UpdateService cannot take is named.
    for (k, _) in def_json.as_object().unwrap() {
        let shared = UpdateServiceInput::SCHEMA.member_schema(k).is_some();
        let identity = matches!(
            k.as_str(),
            "cluster" | "serviceName" | "taskDefinition" | "desiredCount" | "clientToken"
        );
        assert_eq!(skipped.contains(k), !shared && !identity, "{k}");
    }
    assert!(skipped.contains(&"launchType".to_string()));
}

// ---------------------------------------------------------------- batching and counting

#[tokio::test]
async fn describe_services_batches_ten_names_a_call_and_keeps_order() {
    let cap = Capture::default();
    cap.reply(
        "DescribeServices",
        200,
        json!({"services": [
            {"serviceName": "s3", "status": "ACTIVE"},
            {"serviceName": "s10", "status": "INACTIVE"}
        ], "failures": [{"arn": "s1", "reason": "MISSING"}]}),
    );
    let c = clients(&cap).await;
    let names: Vec<String> = (0..11).map(|i| format!("s{i}")).collect();
    let found = c.describe_services("prod", &names).await.unwrap();
    let bodies = cap.bodies("DescribeServices");
    assert_eq!(bodies.len(), 2);
    assert_eq!(bodies[0]["services"].as_array().unwrap().len(), 10);
    assert_eq!(bodies[1]["services"], json!(["s10"]));
    assert_eq!(bodies[0]["include"], json!(["TAGS"]));
    assert_eq!(c.call_count("DescribeServices"), 2);
    assert_eq!(found.len(), 11);
    assert!(found[3].is_some());
    assert!(found[10].is_none(), "INACTIVE counts as gone");
    assert!(found[1].is_none());
}

#[tokio::test]
async fn describe_tasks_batches_a_hundred_and_deployments_twenty() {
    let cap = Capture::default();
    let c = clients(&cap).await;
    let arns: Vec<String> = (0..201).map(|i| format!("t{i}")).collect();
    c.describe_tasks("prod", &arns).await.unwrap();
    let sizes: Vec<usize> = cap
        .bodies("DescribeTasks")
        .iter()
        .map(|b| b["tasks"].as_array().unwrap().len())
        .collect();
    assert_eq!(sizes, vec![100, 100, 1]);
    c.describe_service_deployments(&arns[..41]).await.unwrap();
    let sizes: Vec<usize> = cap
        .bodies("DescribeServiceDeployments")
        .iter()
        .map(|b| b["serviceDeploymentArns"].as_array().unwrap().len())
        .collect();
    assert_eq!(sizes, vec![20, 20, 1]);
}

#[tokio::test]
async fn list_service_deployments_follows_pages() {
    let cap = Capture::default();
    let c = clients(&cap).await;
    cap.reply(
        "ListServiceDeployments",
        200,
        json!({"serviceDeployments": [{"serviceDeploymentArn": "a"}], "nextToken": "t"}),
    );
    cap.reply(
        "ListServiceDeployments",
        200,
        json!({"serviceDeployments": [{"serviceDeploymentArn": "b"}]}),
    );
    let got = c
        .list_service_deployments("prod", "web", Some(DateTime::from_secs(5)))
        .await
        .unwrap();
    let bodies = cap.bodies("ListServiceDeployments");
    assert_eq!(bodies.len(), 2, "{bodies:?}");
    assert_eq!(bodies[0]["createdAt"]["after"], 5);
    assert!(bodies[0].get("nextToken").is_none());
    assert_eq!(bodies[1]["nextToken"], "t");
    let arns: Vec<_> = got.iter().map(|d| d.service_deployment_arn()).collect();
    assert_eq!(arns, vec![Some("a"), Some("b")]);
}

#[tokio::test]
async fn list_task_definitions_follows_pages_and_keeps_the_family_only() {
    let cap = Capture::default();
    let c = clients(&cap).await;
    cap.reply(
        "ListTaskDefinitions",
        200,
        json!({"taskDefinitionArns": [
            "arn:aws:ecs:eu-west-3:1:task-definition/web:1",
            "arn:aws:ecs:eu-west-3:1:task-definition/web-worker:1"
        ], "nextToken": "p2"}),
    );
    cap.reply(
        "ListTaskDefinitions",
        200,
        json!({"taskDefinitionArns": ["arn:aws:ecs:eu-west-3:1:task-definition/web:2"]}),
    );
    let arns = c
        .list_task_definitions("web", aws_sdk_ecs::types::TaskDefinitionStatus::Active)
        .await
        .unwrap();
    assert_eq!(
        arns,
        vec![
            "arn:aws:ecs:eu-west-3:1:task-definition/web:1",
            "arn:aws:ecs:eu-west-3:1:task-definition/web:2"
        ]
    );
    let bodies = cap.bodies("ListTaskDefinitions");
    assert_eq!(bodies.len(), 2);
    assert_eq!(bodies[0]["familyPrefix"], "web");
    assert_eq!(bodies[0]["status"], "ACTIVE");
    assert_eq!(bodies[1]["nextToken"], "p2");
}

#[tokio::test]
async fn stop_service_deployment_sends_the_stop_type() {
    let cap = Capture::default();
    let c = clients(&cap).await;
    c.stop_service_deployment("arn:d", ServiceDeploymentStop::Rollback)
        .await
        .unwrap();
    c.stop_service_deployment("arn:d", ServiceDeploymentStop::Abort)
        .await
        .unwrap();
    let types: Vec<Value> = cap
        .bodies("StopServiceDeployment")
        .iter()
        .map(|b| b["stopType"].clone())
        .collect();
    assert_eq!(types, vec![json!("ROLLBACK"), json!("ABORT")]);
}

// ---------------------------------------------------------------- error mapping

#[tokio::test]
async fn cluster_not_found_names_the_cluster_and_region() {
    let cap = Capture::default();
    cap.reply(
        "DescribeServices",
        400,
        json!({"__type": "ClusterNotFoundException", "message": "Cluster not found."}),
    );
    let c = clients(&cap).await;
    let e = c.describe_service("prod-x", "web").await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Aws);
    let text = e.to_string();
    assert!(text.contains("ClusterNotFoundException"), "{text}");
    assert!(
        text.contains("cluster \"prod-x\" does not exist in region eu-west-3"),
        "{text}"
    );
}

#[tokio::test]
async fn access_denied_names_the_action() {
    let cap = Capture::default();
    cap.reply(
        "UpdateService",
        400,
        json!({"__type": "AccessDeniedException", "message": "not allowed"}),
    );
    let c = clients(&cap).await;
    let e = c
        .update_service(&ServiceUpdate {
            cluster: "prod".into(),
            service: "web".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Aws);
    assert!(e.to_string().contains("allow ecs:UpdateService"), "{e}");
}

#[tokio::test]
async fn a_refused_task_definition_is_bad_input() {
    let cap = Capture::default();
    cap.reply(
        "RegisterTaskDefinition",
        400,
        json!({"__type": "ClientException", "message": "Invalid cpu"}),
    );
    let c = clients(&cap).await;
    let input = RegisterTaskDefinitionInput::builder()
        .family("web")
        .build()
        .unwrap();
    let e = c.register_task_definition(input).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::BadInput);
    assert!(e.to_string().contains("Invalid cpu"), "{e}");
}

#[tokio::test]
async fn expired_credentials_say_so() {
    let cap = Capture::default();
    cap.reply(
        "DescribeTaskDefinition",
        400,
        json!({"__type": "ExpiredTokenException", "message": "The security token included in the request is expired"}),
    );
    let c = clients(&cap).await;
    let e = c.describe_task_definition("web").await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Aws);
    assert!(e.to_string().contains("credentials have expired"), "{e}");
}

#[derive(Debug)]
struct NoCredentials;

impl aws_sdk_ecs::config::ProvideCredentials for NoCredentials {
    fn provide_credentials<'a>(
        &'a self,
    ) -> aws_credential_types::provider::future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        aws_credential_types::provider::future::ProvideCredentials::ready(Err(
            aws_credential_types::provider::error::CredentialsError::not_loaded(
                "no profile, no environment keys",
            ),
        ))
    }
}

#[tokio::test]
async fn missing_credentials_say_how_to_set_them() {
    let cap = Capture::default();
    let url = serve(cap.clone()).await;
    let c = connect_with(
        &AwsSettings {
            region: Some("us-east-1".into()),
            endpoint_url: Some(url),
            static_credentials: false,
            max_attempts: 1,
            assume_role_arn: None,
        },
        Some(aws_sdk_ecs::config::SharedCredentialsProvider::new(
            NoCredentials,
        )),
    )
    .await
    .unwrap();
    let e = c.describe_service("prod", "web").await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Aws);
    let text = e.to_string();
    assert!(text.contains("no usable AWS credentials"), "{text}");
    assert!(text.contains("AWS_PROFILE"), "{text}");
    assert!(
        cap.bodies("DescribeServices").is_empty(),
        "nothing was sent"
    );
}

#[tokio::test]
async fn an_unreachable_endpoint_is_named() {
    // A port nobody listens on: bind, read the port, close.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let c = connect(&AwsSettings {
        region: Some("us-east-1".into()),
        endpoint_url: Some(format!("http://127.0.0.1:{port}")),
        static_credentials: true,
        max_attempts: 1,
        assume_role_arn: None,
    })
    .await
    .unwrap();
    let e = c.describe_service("prod", "web").await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Aws);
    assert!(e.to_string().contains(&format!("127.0.0.1:{port}")), "{e}");
}

#[tokio::test]
async fn an_empty_region_is_refused() {
    let e = connect(&AwsSettings {
        region: Some("  ".into()),
        static_credentials: true,
        ..Default::default()
    })
    .await
    .unwrap_err();
    assert_eq!(e.kind, ErrorKind::BadInput);
    assert!(e.to_string().contains("--region"), "{e}");
}

// ---------------------------------------------------------------- call scopes

#[tokio::test]
async fn a_watch_counts_only_the_calls_its_own_polls_make() {
    // A release follows services in one watch while other steps decide, apply and run
    // one-off tasks through the same clients. The watch's budget must be charged with its
    // own polls only: charged with the run's total, a service joining after a long migration
    // waited out calls it never made.
    use crate::deploy::core::verdict::Ours;
    use crate::deploy::observe::ClusterObservers;
    use crate::deploy::watch::Observer;
    let cap = Capture::default();
    cap.reply(
        "DescribeServices",
        200,
        json!({"services": [{"serviceName": "api", "status": "ACTIVE", "deployments": []}]}),
    );
    let c = clients(&cap).await;
    // Calls made before the service joins (decisions, a one-off task's polling).
    for _ in 0..5 {
        c.describe_services("shop", &["web".to_string()])
            .await
            .unwrap();
    }
    let mut observer = ClusterObservers::new(&c, &[("api".to_string(), "shop".to_string())]);
    let ours = Ours {
        deployment_id: "ecs-svc/1".into(),
        service_deployment_arn: None,
        task_definition_arn: "api:1".into(),
    };
    let services = vec![("api".to_string(), ours)];
    // A poll, with another step's call interleaved in the same task.
    let web = ["web".to_string()];
    let (polled, other) = tokio::join!(
        observer.observe(&services),
        c.describe_services("shop", &web)
    );
    polled.unwrap();
    other.unwrap();
    assert_eq!(c.total_calls(), 7, "{:?}", c.calls());
    assert_eq!(observer.calls(), 1, "the poll's own DescribeServices only");
}
