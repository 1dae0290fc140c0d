//! Errors in AWS's wire shape, shared by every emulated service.
//!
//! JSON protocols (ECS, ECR, CodeDeploy) answer `{"__type": code, "message": ...}`; the query
//! protocol (ELBv2) answers an `<ErrorResponse>` document. The code is what SDKs match on
//! (`is_service_not_found_exception()` and the like), so it must be AWS's exact name.

/// An API error as AWS would return it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// HTTP status: 400 for client faults, 500/503 for server faults.
    pub status: u16,
    /// AWS's error code, e.g. `ServiceNotFoundException`, `TargetGroupNotFound`.
    pub code: String,
    pub message: String,
}

impl ApiError {
    /// A client fault (HTTP 400).
    pub fn client(code: &str, message: impl Into<String>) -> Self {
        ApiError {
            status: 400,
            code: code.to_string(),
            message: message.into(),
        }
    }

    /// A server fault (HTTP 500).
    pub fn server(code: &str, message: impl Into<String>) -> Self {
        ApiError {
            status: 500,
            code: code.to_string(),
            message: message.into(),
        }
    }

    /// Whether the fault is the caller's (ELBv2 reports it as `<Type>Sender</Type>`).
    pub fn is_sender_fault(&self) -> bool {
        self.status < 500
    }
}
