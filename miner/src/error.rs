//! Every refusal the server can give, turned into an HTTP answer in one place.

use std::time::Duration;

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bench_tasks::wire::ErrorBody;

/// An error answer: status, stable reason code, one-sentence message, optional `Retry-After`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// The stable `snake_case` reason code.
    pub reason: &'static str,
    /// What went wrong and what to do.
    pub message: String,
    /// Suggested wait before retrying (sent as `Retry-After`, in whole seconds, at least 1).
    pub retry_after: Option<Duration>,
}

impl ApiError {
    /// An error with no `Retry-After`.
    pub fn new(status: StatusCode, reason: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            reason,
            message: message.into(),
            retry_after: None,
        }
    }

    /// 400: the body is not the JSON this route takes.
    pub fn malformed(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "malformed_json", message)
    }

    /// 413: the body exceeds `limit` bytes.
    pub fn body_too_large(limit: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            format!("request body exceeds this miner's limit of {limit} bytes; send a smaller request"),
        )
    }

    /// 429 with `Retry-After`.
    pub fn too_many(reason: &'static str, message: impl Into<String>, retry_after: Duration) -> Self {
        Self {
            retry_after: Some(retry_after),
            ..Self::new(StatusCode::TOO_MANY_REQUESTS, reason, message)
        }
    }

    /// 500: a bug or a device failure; the message names it without internal detail.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", message)
    }

    /// The JSON body.
    pub fn body(&self) -> ErrorBody {
        ErrorBody {
            error: self.message.clone(),
            reason: self.reason.to_owned(),
        }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({}): {}", self.status.as_u16(), self.reason, self.message)
    }
}

impl std::error::Error for ApiError {}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, Json(self.body())).into_response();
        if let Some(wait) = self.retry_after {
            let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs.max(1)));
        }
        // Lets the auth layer count the outcome without parsing the body.
        response.extensions_mut().insert(Outcome(self.reason));
        response
    }
}

/// The outcome code of an answer, stored in its extensions for metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outcome(pub &'static str);
