//! The one error type of the HTTP edge. Every failure becomes `{"error": {"code", "message",
//! ...}}` with the right status; internal details are logged once here and never sent.

use axum::Json;
use axum::http::header::{RETRY_AFTER, WWW_AUTHENTICATE};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::{Value, json};
use tfr_core::query::QueryError;
use tfr_core::token::Scope;
use tfr_core::{EventId, ValidationError};
use tfr_store::StoreError;
use utoipa::ToSchema;

/// An item of an array that failed validation.
#[derive(Debug, Serialize, ToSchema)]
pub struct ItemError {
    pub index: usize,
    pub field: String,
    pub message: String,
}

/// The error body, as documented in the OpenAPI document.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

/// What went wrong: a stable `code` for programs and a `message` for people. Other members
/// (`field`, `position`, `parameter`, `items`...) depend on the code.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    pub code: String,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    InvalidEvent(ValidationError),
    #[error("{} of {total} events are invalid; nothing was stored", items.len())]
    InvalidBatch { items: Vec<ItemError>, total: usize },
    #[error("invalid query {0}")]
    InvalidQuery(QueryError),
    #[error("{parameter}: {message}")]
    InvalidParameter { parameter: String, message: String },
    #[error("{0}")]
    InvalidBody(String),
    #[error("{0}")]
    NotFound(String),
    #[error("idempotency key '{key}' was already used for event {existing} with different content")]
    IdempotencyConflict { key: String, existing: EventId },
    #[error("{} of {total} events reuse an idempotency key with different content; nothing was stored", conflicts.len())]
    BatchConflict {
        conflicts: Vec<(usize, String, EventId)>,
        total: usize,
    },
    #[error("the request body is larger than the limit of {limit} bytes")]
    PayloadTooLarge { limit: usize },
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("{message}")]
    Unauthorized {
        message: String,
        /// A token was sent but cannot be used (unknown, revoked, expired): `WWW-Authenticate`
        /// then says `error="invalid_token"`.
        invalid_token: bool,
    },
    #[error("{message}")]
    Forbidden { message: String, needed: Scope },
    #[error("too many requests for this token; retry in {retry_after} s")]
    RateLimited { retry_after: u64 },
    #[error("the request body did not arrive within {0} seconds")]
    BodyTimeout(u64),
    #[error("the request took longer than {0} seconds")]
    Timeout(u64),
    #[error("{0}")]
    Unavailable(String),
    #[error("internal error")]
    Internal(String),
}

impl ApiError {
    pub fn parameter(parameter: &str, message: impl Into<String>) -> Self {
        Self::InvalidParameter {
            parameter: parameter.to_owned(),
            message: message.into(),
        }
    }

    fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            Self::InvalidEvent(_) | Self::InvalidBatch { .. } => {
                (StatusCode::BAD_REQUEST, "invalid_event")
            }
            Self::InvalidQuery(_) => (StatusCode::BAD_REQUEST, "invalid_query"),
            Self::InvalidParameter { .. } => (StatusCode::BAD_REQUEST, "invalid_parameter"),
            Self::InvalidBody(_) => (StatusCode::BAD_REQUEST, "invalid_body"),
            Self::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            Self::IdempotencyConflict { .. } | Self::BatchConflict { .. } => {
                (StatusCode::CONFLICT, "idempotency_conflict")
            }
            Self::PayloadTooLarge { .. } => (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
            Self::UnsupportedMediaType(_) => {
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type")
            }
            Self::Unauthorized { .. } => (StatusCode::UNAUTHORIZED, "unauthorized"),
            Self::Forbidden { .. } => (StatusCode::FORBIDDEN, "forbidden"),
            Self::RateLimited { .. } => (StatusCode::TOO_MANY_REQUESTS, "rate_limited"),
            Self::BodyTimeout(_) => (StatusCode::REQUEST_TIMEOUT, "request_timeout"),
            Self::Timeout(_) => (StatusCode::SERVICE_UNAVAILABLE, "timeout"),
            Self::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            Self::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }

    /// The `error` object of the response body.
    pub fn body(&self) -> Value {
        let (_, code) = self.status_and_code();
        let mut error = json!({"code": code, "message": self.to_string()});
        match self {
            Self::InvalidEvent(invalid) => {
                error["field"] = json!(invalid.field);
                error["message"] = json!(invalid.message);
            }
            Self::InvalidBatch { items, .. } => error["items"] = json!(items),
            Self::InvalidQuery(query) => error["position"] = json!(query.position),
            Self::InvalidParameter { parameter, .. } => error["parameter"] = json!(parameter),
            Self::IdempotencyConflict { key, existing } => {
                error["field"] = json!("idempotency_key");
                error["idempotency_key"] = json!(key);
                error["existing_id"] = json!(existing);
            }
            Self::BatchConflict { conflicts, .. } => {
                error["items"] = conflicts
                    .iter()
                    .map(|(index, key, existing)| {
                        json!({"index": index, "field": "idempotency_key",
                               "idempotency_key": key, "existing_id": existing})
                    })
                    .collect();
            }
            Self::PayloadTooLarge { limit } => error["limit"] = json!(limit),
            Self::Forbidden { needed, .. } => error["required_scope"] = json!(needed),
            Self::RateLimited { retry_after } => error["retry_after"] = json!(retry_after),
            _ => {}
        }
        error
    }
}

/// What a client is told when the store is down: the detail (database text) is only logged.
pub const STORE_UNAVAILABLE: &str = "the store is unavailable; retry shortly";

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Invalid(invalid) => ApiError::InvalidEvent(invalid),
            StoreError::Unavailable(detail) => {
                tracing::warn!(%detail, "store unavailable");
                ApiError::Unavailable(STORE_UNAVAILABLE.to_owned())
            }
            StoreError::Internal(message) => ApiError::Internal(message),
        }
    }
}

impl From<QueryError> for ApiError {
    fn from(error: QueryError) -> Self {
        ApiError::InvalidQuery(error)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, _) = self.status_and_code();
        if let ApiError::Internal(detail) = &self {
            tracing::error!(%detail, "internal error");
        }
        let mut response = (status, Json(json!({"error": self.body()}))).into_response();
        let headers = response.headers_mut();
        match &self {
            _ if status == StatusCode::SERVICE_UNAVAILABLE => {
                headers.insert(RETRY_AFTER, HeaderValue::from_static("1"));
            }
            Self::RateLimited { retry_after } => {
                headers.insert(RETRY_AFTER, HeaderValue::from(*retry_after));
            }
            Self::Unauthorized { invalid_token, .. } => {
                headers.insert(
                    WWW_AUTHENTICATE,
                    HeaderValue::from_static(if *invalid_token {
                        r#"Bearer realm="tfr", error="invalid_token""#
                    } else {
                        r#"Bearer realm="tfr""#
                    }),
                );
            }
            Self::Forbidden { needed, .. } => {
                let value =
                    format!(r#"Bearer realm="tfr", error="insufficient_scope", scope="{needed}""#);
                if let Ok(value) = HeaderValue::from_str(&value) {
                    headers.insert(WWW_AUTHENTICATE, value);
                }
            }
            _ => {}
        }
        response
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
