//! REST errors: every failure answers `{"error": {"code", "message"}}` with
//! a fitting HTTP status.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde_json::json;
use sightline_store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("missing or wrong bearer token")]
    Unauthorized,
    #[error("the admin API is disabled: set SIGHTLINE_ADMIN_TOKEN to enable it")]
    AdminDisabled,
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("storage unavailable: {0}")]
    Store(String),
    #[error("{0}")]
    TooLarge(String),
    #[error("{0}")]
    RateLimited(String),
    #[error("{0}")]
    Unsupported(String),
    #[error("{0}")]
    Upstream(String),
    #[error("another instance of the cluster could not be reached: {0}")]
    Cluster(String),
    #[error("internal error: {0}")]
    Internal(&'static str),
}

impl ApiError {
    fn code(&self) -> &'static str {
        match self {
            ApiError::BadRequest(_) => "BAD_REQUEST",
            ApiError::Unauthorized => "UNAUTHORIZED",
            ApiError::AdminDisabled => "ADMIN_DISABLED",
            ApiError::Forbidden(_) => "FORBIDDEN",
            ApiError::NotFound(_) => "NOT_FOUND",
            ApiError::Conflict(_) => "CONFLICT",
            ApiError::Store(_) => "STORE_UNAVAILABLE",
            ApiError::TooLarge(_) => "PAYLOAD_TOO_LARGE",
            ApiError::RateLimited(_) => "RATE_LIMITED",
            ApiError::Unsupported(_) => "UNSUPPORTED_MEDIA_TYPE",
            ApiError::Upstream(_) => "UPSTREAM_FAILED",
            ApiError::Cluster(_) => "CLUSTER_UNAVAILABLE",
            ApiError::Internal(_) => "INTERNAL",
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict { what } => ApiError::Conflict(format!("{what} already exists")),
            StoreError::NotFound { what } => ApiError::NotFound(format!("{what} not found")),
            other => ApiError::Store(other.to_string()),
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::AdminDisabled => StatusCode::FORBIDDEN,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::Store(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::RateLimited(_) => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Unsupported(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Upstream(_) => StatusCode::BAD_GATEWAY,
            ApiError::Cluster(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let mut answer = HttpResponse::build(self.status_code());
        if matches!(self, ApiError::RateLimited(_)) {
            answer.insert_header((actix_web::http::header::RETRY_AFTER, "1"));
        }
        answer.json(json!({"error": {"code": self.code(), "message": self.to_string()}}))
    }
}

/// Turns actix's JSON body errors into the same error shape.
pub fn json_error(
    err: actix_web::error::JsonPayloadError,
    _: &actix_web::HttpRequest,
) -> actix_web::Error {
    use actix_web::error::JsonPayloadError;
    match err {
        JsonPayloadError::Overflow { .. } | JsonPayloadError::OverflowKnownLength { .. } => {
            ApiError::TooLarge(format!("request body is too large: {err}"))
        }
        _ => ApiError::BadRequest(format!(
            "request body is not valid JSON for this call: {err}"
        )),
    }
    .into()
}
