//! The one error type at the HTTP edge. Every failure leaves the host as
//! `{"error":{"code","message"}}` with a real status code; internal details go to the
//! log, not to the client.

use std::time::Duration;

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use crate::alarms::AlarmError;
use crate::auth::AuthError;
use crate::backup::BackupError;
use crate::modules::ModuleError;
use crate::store::StoreError;
use crate::supervisor::ControlError;
use crate::tasks::TaskError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    MethodNotAllowed(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    BadGateway(String),
    #[error("{0}")]
    GatewayTimeout(String),
    #[error("{0}")]
    PayloadTooLarge(String),
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("{message}")]
    TooManyRequests { message: String, retry_after: Duration },
    #[error("{0}")]
    Timeout(String),
    /// A dependency the request needs (the Docker engine) does not answer.
    #[error("{0}")]
    Unavailable(String),
    #[error("{0}")]
    Internal(String),
}

/// The JSON body of every error response.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable machine-readable code, e.g. `not_found`, `unauthorized`.
    pub code: String,
    /// What went wrong and, where possible, how to fix it.
    pub message: String,
}

impl ApiError {
    fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            Self::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad_request"),
            Self::Unauthorized(_) => (StatusCode::UNAUTHORIZED, "unauthorized"),
            Self::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            Self::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            Self::MethodNotAllowed(_) => (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
            Self::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
            Self::BadGateway(_) => (StatusCode::BAD_GATEWAY, "failed"),
            Self::GatewayTimeout(_) => (StatusCode::GATEWAY_TIMEOUT, "timeout"),
            Self::PayloadTooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
            Self::UnsupportedMediaType(_) => (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type"),
            Self::TooManyRequests { .. } => (StatusCode::TOO_MANY_REQUESTS, "too_many_requests"),
            Self::Timeout(_) => (StatusCode::SERVICE_UNAVAILABLE, "timeout"),
            Self::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            Self::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        let message = match &self {
            Self::Internal(detail) => {
                tracing::error!("internal error: {detail}");
                "internal error; the host log has the details".to_string()
            }
            other => other.to_string(),
        };
        let body = ErrorBody { error: ErrorDetail { code: code.into(), message } };
        let mut response = (status, Json(body)).into_response();
        match &self {
            Self::Unauthorized(_) => {
                response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            Self::TooManyRequests { retry_after, .. } => {
                // Rounded up: retrying exactly when told must not hit the lockout again.
                let secs = retry_after.as_millis().div_ceil(1000).max(1).to_string();
                if let Ok(v) = HeaderValue::from_str(&secs) {
                    response.headers_mut().insert(header::RETRY_AFTER, v);
                }
            }
            _ => {}
        }
        response
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            // A database that does not answer is not a bug of ours: 503, with the why.
            StoreError::Unavailable { .. } => Self::Unavailable(e.to_string()),
            _ => Self::Internal(e.to_string()),
        }
    }
}

impl From<ControlError> for ApiError {
    fn from(e: ControlError) -> Self {
        match e {
            ControlError::NotFound(_) => Self::NotFound(e.to_string()),
            ControlError::Unmanaged(_)
            | ControlError::OperatorStopped(_)
            | ControlError::Port(_)
            | ControlError::Dependency { .. }
            | ControlError::Order(_) => Self::Conflict(e.to_string()),
            ControlError::Failed(_) => Self::BadGateway(e.to_string()),
            ControlError::ShuttingDown => Self::Timeout(e.to_string()),
        }
    }
}

impl From<AlarmError> for ApiError {
    fn from(e: AlarmError) -> Self {
        match e {
            AlarmError::NotFound(_) => Self::NotFound(e.to_string()),
            AlarmError::BadState(_) => Self::BadRequest(e.to_string()),
            AlarmError::Store(s) => s.into(),
        }
    }
}

impl From<BackupError> for ApiError {
    fn from(e: BackupError) -> Self {
        match e {
            BackupError::BadId(_) | BackupError::Refused { .. } => Self::BadRequest(e.to_string()),
            BackupError::NotFound(_) => Self::NotFound(e.to_string()),
            BackupError::Busy | BackupError::Conflict(_) => Self::Conflict(e.to_string()),
            BackupError::Io { .. } | BackupError::Store(_) | BackupError::Worker(_) => Self::Internal(e.to_string()),
        }
    }
}

impl From<TaskError> for ApiError {
    fn from(e: TaskError) -> Self {
        match e {
            TaskError::NotFound(_) => Self::NotFound(e.to_string()),
            TaskError::AlreadyRunning { .. } => Self::Conflict(e.to_string()),
            TaskError::Store(s) => s.into(),
        }
    }
}

impl From<ModuleError> for ApiError {
    fn from(e: ModuleError) -> Self {
        match e {
            ModuleError::NotFound(_) => Self::NotFound(e.to_string()),
            ModuleError::Store(s) => s.into(),
        }
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::BadCredentials | AuthError::InvalidToken => Self::Unauthorized(e.to_string()),
            AuthError::LockedOut(wait) => Self::TooManyRequests { message: e.to_string(), retry_after: wait },
            AuthError::Busy => Self::TooManyRequests { message: e.to_string(), retry_after: Duration::from_secs(1) },
            AuthError::Store(s) => s.into(),
        }
    }
}
