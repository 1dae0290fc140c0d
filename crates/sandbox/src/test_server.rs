//! A tiny HTTP harness for unit tests: routes awsQuery bodies to [`Elbv2::handle`] and
//! `X-Amz-Target` JSON requests to [`Ecr::handle`], so the real SDK clients can be pointed at
//! it. The product's server (with its own routing) is [`crate::server`].

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::ecr::Ecr;
use crate::elbv2::Elbv2;
use crate::query::{parse_form, xml_error};

pub(crate) struct Sandbox {
    pub elbv2: Elbv2,
    pub ecr: Ecr,
    /// Virtual time handed to every request.
    pub now: f64,
    pub requests: u64,
}

pub(crate) type Shared = Arc<Mutex<Sandbox>>;

pub(crate) fn sandbox(elbv2: Elbv2, ecr: Ecr) -> Shared {
    Arc::new(Mutex::new(Sandbox {
        elbv2,
        ecr,
        now: 0.0,
        requests: 0,
    }))
}

/// Serves on 127.0.0.1 at a free port; returns the endpoint URL.
pub(crate) async fn start(state: Shared) -> String {
    let app = Router::new().fallback(route).with_state(state);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    format!("http://{addr}")
}

async fn route(State(state): State<Shared>, headers: HeaderMap, body: String) -> Response {
    let mut sandbox = state.lock().unwrap();
    sandbox.requests += 1;
    let request_id = format!("req-{:08}", sandbox.requests);
    let now = sandbox.now;
    let target = headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    if let Some(target) = target {
        let operation = target.rsplit('.').next().unwrap_or("").to_string();
        let json: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
        let (status, out) = match sandbox.ecr.handle(&operation, &json, now) {
            Ok(value) => (200, value),
            Err(e) => (
                e.status,
                serde_json::json!({"__type": e.code, "message": e.message}),
            ),
        };
        return (
            StatusCode::from_u16(status).unwrap(),
            [
                (
                    header::CONTENT_TYPE,
                    "application/x-amz-json-1.1".to_string(),
                ),
                (
                    header::HeaderName::from_static("x-amzn-requestid"),
                    request_id,
                ),
            ],
            out.to_string(),
        )
            .into_response();
    }
    let params = parse_form(&body);
    let action = params.get("Action").cloned().unwrap_or_default();
    let (status, xml) = match sandbox.elbv2.handle(&action, &params, now, &request_id) {
        Ok(xml) => (200, xml),
        Err(e) => (e.status, xml_error(&e, &request_id)),
    };
    (
        StatusCode::from_u16(status).unwrap(),
        [
            (header::CONTENT_TYPE, "text/xml".to_string()),
            (
                header::HeaderName::from_static("x-amzn-requestid"),
                request_id,
            ),
        ],
        xml,
    )
        .into_response()
}
