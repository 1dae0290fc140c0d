//! The HTTP front: one listener, routing by protocol, API faults, the request log and the
//! `/_sandbox/` control endpoints.
//!
//! Receives raw HTTP requests; tells the service from `X-Amz-Target` (JSON protocols) or from
//! the form's `Version` (awsQuery: ELBv2, IAM); hands on (operation, body) to the world under
//! one lock, after advancing it to the current virtual time, and turns the answer into AWS's
//! wire shape.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes, HttpBody};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::api::ApiError;
use super::faults::{Faults, FaultsPatch};
use super::shared::{Inner, RequestRecord, Shared};
use super::util::{Rng, wall_now};

/// Entries the request log keeps; older ones are dropped in batches.
const MAX_LOG: usize = 100_000;

fn is_mutating(op: &str) -> bool {
    // AssumeRole hands out credentials and changes no resource.
    const READS: [&str; 7] = [
        "Describe",
        "List",
        "Get",
        "BatchGet",
        "Head",
        "Simulate",
        "AssumeRole",
    ];
    !READS.iter().any(|p| op.starts_with(p))
}

fn request_id(rng: &mut Rng) -> String {
    format!(
        "{}-{}-{}-{}-{}",
        rng.hex(8),
        rng.hex(4),
        rng.hex(4),
        rng.hex(4),
        rng.hex(12)
    )
}

fn json_response(
    status: u16,
    body: &Value,
    request_id: &str,
    error_code: Option<&str>,
) -> Response {
    let mut resp = Response::new(Body::from(body.to_string()));
    *resp.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-amz-json-1.1"),
    );
    if let Ok(v) = HeaderValue::from_str(request_id) {
        h.insert("x-amzn-requestid", v);
    }
    if let Some(code) = error_code.and_then(|c| HeaderValue::from_str(c).ok()) {
        h.insert("x-amzn-errortype", code);
    }
    resp
}

fn json_error(err: &ApiError, request_id: &str) -> Response {
    json_response(
        err.status,
        &json!({"__type": err.code, "message": err.message}),
        request_id,
        Some(&err.code),
    )
}

fn xml_response(status: u16, body: String, request_id: &str) -> Response {
    let mut resp = Response::new(Body::from(body));
    *resp.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/xml"));
    if let Ok(v) = HeaderValue::from_str(request_id) {
        h.insert("x-amzn-requestid", v);
    }
    resp
}

fn xml_error_body(err: &ApiError, request_id: &str) -> String {
    let esc = |s: &str| {
        s.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
    };
    format!(
        "<ErrorResponse xmlns=\"http://elasticloadbalancing.amazonaws.com/doc/2015-12-01/\"><Error><Type>{}</Type><Code>{}</Code><Message>{}</Message></Error><RequestId>{}</RequestId></ErrorResponse>",
        if err.is_sender_fault() {
            "Sender"
        } else {
            "Receiver"
        },
        esc(&err.code),
        esc(&err.message),
        request_id
    )
}

/// An S3 answer as an HTTP response (with S3's request id header).
fn rest_response(answer: super::s3::Answer) -> Response {
    let mut resp = Response::new(Body::from(answer.body));
    *resp.status_mut() =
        StatusCode::from_u16(answer.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let h = resp.headers_mut();
    for (name, value) in answer.headers {
        if let Ok(v) = HeaderValue::from_str(&value) {
            h.insert(name, v);
        }
    }
    if let Some(code) = answer
        .error
        .as_deref()
        .and_then(|c| HeaderValue::from_str(c).ok())
    {
        h.insert("x-amz-error-code", code);
    }
    resp
}

/// A response body that fails at once: hyper then drops the connection without an answer.
struct Dropped;

impl HttpBody for Dropped {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, std::io::Error>>> {
        Poll::Ready(Some(Err(std::io::Error::new(
            std::io::ErrorKind::ConnectionAborted,
            "sandbox fault: dropped connection",
        ))))
    }
}

fn dropped() -> Response {
    let mut resp = Response::new(Body::new(Dropped));
    resp.headers_mut()
        .insert(header::CONTENT_LENGTH, HeaderValue::from_static("4096"));
    resp
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Proto {
    Json,
    Query,
    /// S3's REST protocol: the operation is in the method and path.
    Rest,
}

/// Identify service and operation.
fn route(headers: &HeaderMap, body: &[u8]) -> (String, String, Proto) {
    if let Some(target) = headers.get("x-amz-target").and_then(|v| v.to_str().ok()) {
        let (prefix, op) = target.split_once('.').unwrap_or((target, ""));
        let service = match prefix {
            "AmazonEC2ContainerServiceV20141113" => "ecs",
            "AmazonEC2ContainerRegistry_V20150921" => "ecr",
            "CodeDeploy_20141006" => "codedeploy",
            "AmazonSSM" => "ssm",
            "Logs_20140328" => "logs",
            "AnyScaleFrontendService" => "application-autoscaling",
            "secretsmanager" => "secretsmanager",
            _ => "unknown",
        };
        return (service.to_string(), op.to_string(), Proto::Json);
    }
    // awsQuery services (ELBv2, IAM, CloudFormation, STS) are told apart by their API version.
    let text = String::from_utf8_lossy(body);
    let mut action = None;
    let mut service = "elbv2";
    for pair in text.split('&') {
        if let Some(a) = pair.strip_prefix("Action=") {
            action = Some(a.to_string());
        } else if let Some(v) = pair.strip_prefix("Version=") {
            if v == super::iam::IAM_VERSION {
                service = "iam";
            } else if v == super::cloudformation::CFN_VERSION {
                service = "cloudformation";
            } else if v == super::sts::STS_VERSION {
                service = "sts";
            }
        }
    }
    match action {
        Some(a) => (service.into(), a, Proto::Query),
        None => ("unknown".into(), String::new(), Proto::Json),
    }
}

enum Decision {
    Pass,
    Fail(ApiError),
    Drop,
}

fn decide_fault(inner: &mut Inner, service: &str, op: &str) -> (Decision, u64) {
    let wall = inner.wall_origin.elapsed().as_secs_f64();
    let faults = &mut inner.world.faults;
    if let Some(rule) = faults
        .fail_next
        .iter_mut()
        .find(|r| r.count > 0 && r.operation == op)
    {
        rule.count -= 1;
        let status = rule.status.unwrap_or(if rule.code == "ServerException" {
            500
        } else {
            400
        });
        let message = rule
            .message
            .clone()
            .unwrap_or_else(|| "Injected fault.".into());
        let err = ApiError {
            status,
            code: rule.code.clone(),
            message,
        };
        faults.fail_next.retain(|r| r.count > 0);
        return (Decision::Fail(err), 0);
    }
    // The bucket model before the random faults: a request over its bucket is refused as ECS
    // refuses it, and takes no token.
    if let Some(buckets) = &mut inner.throttle
        && !buckets.admit(service, op, wall)
    {
        return (
            Decision::Fail(ApiError::client("ThrottlingException", "Rate exceeded")),
            0,
        );
    }
    let faults = &mut inner.world.faults;
    let api = faults.api.clone();
    if !api.operations.is_empty() && !api.operations.iter().any(|o| o == op) {
        return (Decision::Pass, 0);
    }
    let rng = &mut inner.api_rng;
    let decision = if rng.chance(api.drop_rate) {
        Decision::Drop
    } else if rng.chance(api.throttle_rate) {
        // Each service names throttling and internal errors its own way.
        match service {
            "elbv2" | "iam" | "cloudformation" | "sts" => {
                Decision::Fail(ApiError::client("Throttling", "Rate exceeded"))
            }
            // S3 asks callers to slow down with a 503.
            "s3" => Decision::Fail(ApiError {
                status: 503,
                code: "SlowDown".into(),
                message: "Please reduce your request rate.".into(),
            }),
            _ => Decision::Fail(ApiError::client("ThrottlingException", "Rate exceeded")),
        }
    } else if rng.chance(api.error_rate) {
        let code = match service {
            "ecs" | "ecr" => "ServerException",
            "s3" => "InternalError",
            _ => "InternalFailure",
        };
        Decision::Fail(ApiError::server(
            code,
            "We encountered an internal error. Please try again.",
        ))
    } else {
        Decision::Pass
    };
    (decision, api.latency_ms)
}

/// Whether a `Host` header names this machine's loopback interface (`localhost`, a name under
/// `.localhost`, `127.0.0.0/8`, `[::1]`), with or without a port.
fn loopback_host(host: &str) -> bool {
    let host = host.trim();
    let name = match host.strip_prefix('[') {
        // [::1]:4566
        Some(rest) => rest.split(']').next().unwrap_or(""),
        None => match host.rsplit_once(':') {
            Some((n, port)) if port.chars().all(|c| c.is_ascii_digit()) => n,
            _ => host,
        },
    };
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    name == "localhost"
        || name.ends_with(".localhost")
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Refuses what no local tool sends and a web page can: a request with an `Origin` header (a
/// browser's cross-site request or form post), a `Host` that is not the loopback interface
/// (DNS rebinding: a page whose name resolves to 127.0.0.1), and on `/_sandbox/` a POST whose
/// body is not declared JSON (a form post). The AWS SDKs, the AWS CLI and boto3 send no
/// `Origin` and name 127.0.0.1 as `Host`.
fn refuse_foreign(method: &Method, path: &str, headers: &HeaderMap) -> Option<Response> {
    let refuse = |status: StatusCode, why: &str| {
        Some(control_json(
            status,
            json!({"error": format!("the cortado sandbox refused this request: {why}")}),
        ))
    };
    if headers.contains_key(header::ORIGIN) {
        return refuse(
            StatusCode::FORBIDDEN,
            "it carries an Origin header (a web page's request); the sandbox answers local tools only",
        );
    }
    if let Some(host) = headers.get(header::HOST) {
        let ok = host.to_str().is_ok_and(loopback_host);
        if !ok {
            return refuse(
                StatusCode::FORBIDDEN,
                "its Host is not the loopback interface; use http://127.0.0.1:PORT",
            );
        }
    }
    if path.starts_with("/_sandbox/") && method == Method::POST {
        let json = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json"));
        if !json {
            return refuse(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "control requests must send Content-Type: application/json",
            );
        }
    }
    None
}

pub async fn handle(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().to_string();
    if let Some(refused) = refuse_foreign(&method, &path, &headers) {
        return refused;
    }
    if let Some(rest) = path.strip_prefix("/_sandbox/") {
        return control(&shared, &method, rest, &body);
    }
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    // S3 (REST): any request but a POST, addressed path-style (a path other than `/`) or
    // virtual-hosted (`BUCKET.localhost`).
    let virtual_hosted = host.is_some_and(|h| {
        h.rsplit_once(':')
            .map_or(h, |(n, _)| n)
            .ends_with(".localhost")
    });
    let rest =
        (method != Method::POST && (path != "/" || virtual_hosted)).then(|| super::s3::Request {
            method: method.as_str(),
            host,
            path: &path,
            query: uri.query(),
            content_type: header("content-type"),
            aws_chunked: header("content-encoding").is_some_and(|e| e.contains("aws-chunked"))
                || header("x-amz-content-sha256").is_some_and(|h| h.starts_with("STREAMING-")),
            body: &body,
        });
    if rest.is_none() && method != Method::POST {
        return (
            StatusCode::OK,
            "cortado sandbox: POST AWS API requests here; see /_sandbox/state\n",
        )
            .into_response();
    }
    let (service, op, proto) = match &rest {
        Some(r) => ("s3".to_string(), super::s3::operation(r), Proto::Rest),
        None => route(&headers, &body),
    };
    let access_key = header(header::AUTHORIZATION.as_str()).and_then(access_key_of);
    let (decision, latency, rid) = {
        let mut inner = shared.lock();
        let rid = request_id(&mut inner.api_rng);
        let (d, l) = decide_fault(&mut inner, &service, &op);
        (d, l, rid)
    };
    if latency > 0 {
        tokio::time::sleep(Duration::from_millis(latency)).await;
    }
    let mut inner = shared.lock();
    inner.sync();
    let (resp, status, error) = match decision {
        Decision::Drop => (dropped(), 0, Some("DroppedConnection".to_string())),
        Decision::Fail(err) => fault_response(err, proto, &op, &rid),
        Decision::Pass => match &rest {
            Some(r) => {
                let w = &mut inner.world;
                let answer = w.s3.handle(r, &w.region, w.now, &rid);
                let (status, error) = (answer.status, answer.error.clone());
                (rest_response(answer), status, error)
            }
            None => {
                // A request signed with credentials AssumeRole made for another account's role
                // acts as that account: the ARNs it makes carry its id.
                let home = inner.world.account.clone();
                if let Some(account) = access_key
                    .and_then(|k| inner.world.caller_accounts.get(k))
                    .cloned()
                {
                    inner.world.account = account;
                }
                let answer = dispatch(&mut inner, &service, &op, proto, &body, &rid);
                inner.world.account = home;
                answer
            }
        },
    };
    record(&mut inner, service, op, status, error);
    resp
}

/// An injected fault, answered in the request's protocol: (response, status, error code).
fn fault_response(
    err: ApiError,
    proto: Proto,
    op: &str,
    rid: &str,
) -> (Response, u16, Option<String>) {
    let r = match proto {
        Proto::Json => json_error(&err, rid),
        Proto::Query => xml_response(err.status, xml_error_body(&err, rid), rid),
        Proto::Rest => rest_response(super::s3::Answer {
            status: err.status,
            headers: vec![("content-type", "application/xml".into())],
            body: super::s3::error_body(&err.code, &err.message, "", rid),
            operation: op.to_string(),
            error: Some(err.code.clone()),
        }),
    };
    (r, err.status, Some(err.code))
}

/// Adds a request to the request log (the oldest tenth goes when it is full).
fn record(inner: &mut Inner, service: String, op: String, status: u16, error: Option<String>) {
    inner.seq += 1;
    let seq = inner.seq;
    if inner.log.len() >= MAX_LOG {
        inner.log.drain(..MAX_LOG / 10);
    }
    let record = RequestRecord {
        seq,
        virtual_time: (inner.world.now * 1000.0).round() / 1000.0,
        wall_time: wall_now(),
        service,
        mutating: is_mutating(&op),
        operation: op,
        status,
        error,
    };
    inner.log.push(record);
}

/// The access key of a SigV4 `Authorization` header (`... Credential=KEY/date/...`).
fn access_key_of(authorization: &str) -> Option<&str> {
    let (_, rest) = authorization.split_once("Credential=")?;
    rest.split('/').next().filter(|k| !k.is_empty())
}

fn dispatch(
    inner: &mut Inner,
    service: &str,
    op: &str,
    proto: Proto,
    body: &[u8],
    rid: &str,
) -> (Response, u16, Option<String>) {
    let unknown = |what: &str| {
        ApiError::client(
            "UnknownOperationException",
            format!("The sandbox does not implement {what}."),
        )
    };
    if proto == Proto::Query {
        let params = super::query::parse_form(&String::from_utf8_lossy(body));
        let now = inner.world.now;
        if service == "cloudformation" {
            return match inner.world.cloudformation.handle(op, &params, rid) {
                Ok(xml) => (xml_response(200, xml, rid), 200, None),
                Err(e) => (
                    xml_response(e.status, super::cloudformation::xml_error(&e, rid), rid),
                    e.status,
                    Some(e.code),
                ),
            };
        }
        if service == "sts" {
            return match super::sts::handle(op, &params, now, rid) {
                Ok(a) => {
                    inner.world.caller_accounts.insert(a.access_key, a.account);
                    (xml_response(200, a.xml, rid), 200, None)
                }
                Err(e) => (
                    xml_response(e.status, super::sts::xml_error(&e, rid), rid),
                    e.status,
                    Some(e.code),
                ),
            };
        }
        if service == "iam" {
            let w = &mut inner.world;
            return match w.iam.handle(op, &params, &w.account, now, rid) {
                Ok(xml) => (xml_response(200, xml, rid), 200, None),
                Err(e) => (
                    xml_response(e.status, super::iam::xml_error(&e, rid), rid),
                    e.status,
                    Some(e.code),
                ),
            };
        }
        return match inner.world.elbv2.handle(op, &params, now, rid) {
            Ok(xml) => (xml_response(200, xml, rid), 200, None),
            Err(e) => (
                xml_response(e.status, super::query::xml_error(&e, rid), rid),
                e.status,
                Some(e.code),
            ),
        };
    }
    let parsed: Result<Value, ApiError> = if body.is_empty() {
        Ok(json!({}))
    } else {
        serde_json::from_slice(body).map_err(|e| {
            ApiError::client(
                "SerializationException",
                format!("Malformed JSON body: {e}"),
            )
        })
    };
    let result = parsed.and_then(|b| match service {
        "ecs" if op == "ExecuteCommand" => super::exec::execute_command(inner, &b),
        "ssm" if let Some(r) = super::exec::ssm(inner, op, &b) => r,
        "ecs" => inner.world.ecs(op, &b),
        "ecr" => {
            let now = inner.world.now;
            inner.world.ecr.handle(op, &b, now)
        }
        "codedeploy" => inner.world.codedeploy(op, &b),
        "application-autoscaling" => inner.world.autoscaling(op, &b),
        "ssm" => {
            let w = &mut inner.world;
            w.ssm.handle(op, &b, &w.region, &w.account, w.now)
        }
        "logs" => {
            let w = &mut inner.world;
            w.logs.handle(op, &b, &w.region, &w.account, w.now)
        }
        "secretsmanager" => {
            let w = &mut inner.world;
            let at = (w.region.as_str(), w.account.as_str());
            w.secrets.handle(op, &b, at, w.now, &mut w.rng)
        }
        _ => Err(unknown("this X-Amz-Target")),
    });
    match result {
        Ok(v) => (json_response(200, &v, rid, None), 200, None),
        Err(e) => (json_error(&e, rid), e.status, Some(e.code)),
    }
}

fn control_json(status: StatusCode, v: Value) -> Response {
    let mut resp = Response::new(Body::from(v.to_string()));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

fn control(shared: &Shared, method: &Method, rest: &str, body: &[u8]) -> Response {
    let bad = |msg: String| control_json(StatusCode::BAD_REQUEST, json!({"error": msg}));
    let mut inner = shared.lock();
    inner.sync();
    match (method.as_str(), rest.trim_end_matches('/')) {
        ("GET", "requests") => control_json(StatusCode::OK, json!({"requests": inner.log})),
        ("GET", "state") => control_json(StatusCode::OK, super::state_json(&inner)),
        ("GET", "faults") => control_json(StatusCode::OK, json!(inner.world.faults)),
        ("POST", "faults") => {
            let patch: FaultsPatch = match serde_json::from_slice(if body.is_empty() {
                b"{}"
            } else {
                body
            }) {
                Ok(p) => p,
                Err(e) => {
                    return bad(format!(
                        "faults body is not valid: {e}. Example: {{\"api\": {{\"throttleRate\": 0.5}}, \"images\": {{\"web:v2\": \"crash-20s\"}}}}"
                    ));
                }
            };
            inner.world.faults.apply(patch);
            inner.world.check_alarms();
            control_json(StatusCode::OK, json!(inner.world.faults))
        }
        ("POST", "advance") => {
            let secs = serde_json::from_slice::<Value>(body)
                .ok()
                .and_then(|v| v.get("seconds").and_then(Value::as_f64))
                .unwrap_or(0.0);
            inner.clock.skip(secs);
            inner.sync();
            control_json(StatusCode::OK, json!({"now": inner.world.now}))
        }
        ("POST", "reset") => {
            let now = inner.world.now;
            inner.world = inner.initial.clone();
            inner.world.now = inner.world.now.max(now);
            inner.log.clear();
            control_json(StatusCode::OK, json!({"reset": true}))
        }
        _ => control_json(
            StatusCode::NOT_FOUND,
            json!({"error": format!("no control endpoint {} /_sandbox/{rest}", method.as_str()),
                   "endpoints": ["GET /_sandbox/requests", "GET /_sandbox/state", "GET|POST /_sandbox/faults", "POST /_sandbox/advance", "POST /_sandbox/reset"]}),
        ),
    }
}

/// Set faults in-process (what `POST /_sandbox/faults` does).
pub fn set_faults(inner: &mut Inner, faults: Faults) {
    inner.world.faults = faults;
    inner.world.check_alarms();
}
