//! Per-request limits that protect the host: a deadline for the whole request, and
//! JSON answers for requests no route matched.

use std::time::Duration;

use axum::extract::Request;
use axum::http::Method;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::ApiError;
use crate::state::AppState;

/// Answers 503 `timeout` when a handler runs past `server.request_timeout_secs`.
pub async fn within_deadline(state: &AppState, req: Request, next: Next) -> Response {
    // Uploads are bounded by files.max_upload_bytes and stream for as long as the
    // client sends; cutting them at the request deadline would fail large files.
    let path = req.uri().path();
    // Backups and restores run to the end in the background anyway; the client waits.
    // Module routes have their own timeouts (a route may declare a long poll), applied
    // by the dispatcher.
    let long_running = path == "/api/files/content" && req.method() == Method::PUT
        || path == "/api/files/upload"
        || req.method() == Method::POST && path.starts_with("/api/backups")
        || path.starts_with("/api/module/");
    if long_running {
        return next.run(req).await;
    }
    let limit = Duration::from_secs(state.config.server.request_timeout_secs.max(1));
    match tokio::time::timeout(limit, next.run(req)).await {
        Ok(response) => response,
        Err(_) => ApiError::Timeout(format!("the request took longer than {} s and was abandoned", limit.as_secs()))
            .into_response(),
    }
}

pub async fn not_found(method: Method, uri: axum::http::Uri) -> ApiError {
    ApiError::NotFound(format!("no route for {method} {}; see /api/openapi.json", uri.path()))
}

pub async fn method_not_allowed(method: Method, uri: axum::http::Uri) -> ApiError {
    ApiError::MethodNotAllowed(format!("{method} is not allowed on {}; see /api/openapi.json", uri.path()))
}

/// Rewrites error responses that did not come from [`ApiError`] (axum's own rejections
/// for a bad path or query parameter) into the JSON error shape, so clients parse one
/// format only. A module's own answers are its protocol's and pass unchanged. Called by
/// the API's edge middleware (`api/edge.rs`).
pub async fn as_json_error(response: Response) -> Response {
    if response.extensions().get::<super::modules::ModuleAnswer>().is_some() {
        return response;
    }
    let status = response.status();
    let is_json = response
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let (parts, body) = response.into_parts();
    let text = match axum::body::to_bytes(body, 4096).await {
        Ok(bytes) => String::from_utf8_lossy(&bytes).trim().to_string(),
        Err(_) => String::new(),
    };
    let message = if text.is_empty() { status.canonical_reason().unwrap_or("error").to_string() } else { text };
    let code = status.canonical_reason().unwrap_or("error").to_lowercase().replace(' ', "_");
    let body = super::ErrorBody { error: super::ErrorDetail { code, message } };
    let mut rebuilt = (status, axum::Json(body)).into_response();
    for (name, value) in parts.headers.iter() {
        if name != axum::http::header::CONTENT_TYPE && name != axum::http::header::CONTENT_LENGTH {
            rebuilt.headers_mut().insert(name.clone(), value.clone());
        }
    }
    rebuilt
}
