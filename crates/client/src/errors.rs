//! OpenAI-shaped errors: `{"error":{"message","type","code"}}` with the matching status.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use cocoon_proto::ErrorCode;
use serde_json::json;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub kind: &'static str,
    pub code: &'static str,
    pub message: String,
    /// The network error code this corresponds to (for metrics: outcome and `code` label).
    pub error_code: ErrorCode,
    /// Seconds for `Retry-After` (503s default to 1).
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn bad_request(message: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            kind: "invalid_request_error",
            code: "invalid_request",
            message: message.into(),
            error_code: ErrorCode::BadRequest,
            retry_after: None,
        }
    }

    pub fn no_proxy() -> Self {
        ApiError {
            status: StatusCode::SERVICE_UNAVAILABLE,
            kind: "service_unavailable",
            code: "no_proxy",
            message: "no proxy is connected yet; retry shortly".into(),
            error_code: ErrorCode::NoCapacity,
            retry_after: None,
        }
    }

    /// 429 with `Retry-After: retry_after_secs`.
    pub fn rate_limited(message: String, retry_after_secs: u64) -> Self {
        ApiError {
            status: StatusCode::TOO_MANY_REQUESTS,
            kind: "rate_limit_error",
            code: "rate_limit_exceeded",
            message,
            error_code: ErrorCode::Overloaded,
            retry_after: None,
        }
        .with_retry_after(retry_after_secs)
    }

    fn with_retry_after(mut self, secs: u64) -> Self {
        self.retry_after = Some(secs);
        self
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::NOT_FOUND,
            kind: "invalid_request_error",
            code: "not_found",
            message: message.into(),
            error_code: ErrorCode::BadRequest,
            retry_after: None,
        }
    }

    /// Maps an error from the network to what the app sees.
    pub fn from_network(code: i32, message: String) -> Self {
        let error_code = ErrorCode::try_from(code).unwrap_or(ErrorCode::Unspecified);
        let (status, kind, code) = match error_code {
            ErrorCode::BadRequest => (
                StatusCode::BAD_REQUEST,
                "invalid_request_error",
                "invalid_request",
            ),
            ErrorCode::UnknownModel => (
                StatusCode::NOT_FOUND,
                "invalid_request_error",
                "model_not_found",
            ),
            ErrorCode::NoCapacity => (
                StatusCode::SERVICE_UNAVAILABLE,
                "service_unavailable",
                "no_capacity",
            ),
            ErrorCode::Overloaded => (
                StatusCode::SERVICE_UNAVAILABLE,
                "service_unavailable",
                "overloaded",
            ),
            ErrorCode::TooExpensive => (
                StatusCode::SERVICE_UNAVAILABLE,
                "service_unavailable",
                "too_expensive",
            ),
            ErrorCode::Deadline => (StatusCode::GATEWAY_TIMEOUT, "timeout", "deadline_exceeded"),
            ErrorCode::InsufficientFunds => (
                StatusCode::PAYMENT_REQUIRED,
                "insufficient_quota",
                "insufficient_funds",
            ),
            ErrorCode::Upstream
            | ErrorCode::Protocol
            | ErrorCode::Unauthorized
            | ErrorCode::Cancelled => (StatusCode::BAD_GATEWAY, "upstream_error", "upstream_error"),
            ErrorCode::Internal | ErrorCode::Unspecified => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "server_error",
                "internal_error",
            ),
        };
        ApiError {
            status,
            kind,
            code,
            message: cocoon_proto::bounded_text(&message).to_string(),
            error_code,
            retry_after: None,
        }
    }

    pub fn body(&self) -> serde_json::Value {
        json!({"error": {"message": self.message, "type": self.kind, "code": self.code}})
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let retry = match (self.retry_after, self.status) {
            (Some(s), _) => Some(s),
            (None, StatusCode::SERVICE_UNAVAILABLE) => Some(1),
            _ => None,
        };
        let mut response = (self.status, axum::Json(self.body())).into_response();
        if let Some(secs) = retry {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}
