//! The HTTP side of metrics: the `GET /metrics` route with its own token gate (the
//! `/api` gate lets paths outside `/api` through), and the layer that times every
//! request by route pattern. Knows routes only as axum's `MatchedPath`, never raw
//! paths, so callers cannot mint series.

use std::time::Instant;

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{Method, header};
use axum::middleware::{Next, from_fn_with_state};
use axum::response::{IntoResponse, Response};

use crate::api::{ApiError, Transport};
use crate::state::AppState;

/// The path Prometheus scrapes.
pub const PATH: &str = "/metrics";

/// Adds `GET /metrics` (when `metrics.enabled`) behind [`gate`].
pub fn mount(routes: Router<AppState>, state: &AppState) -> Router<AppState> {
    if !state.metrics.enabled() {
        return routes;
    }
    routes.route(PATH, axum::routing::get(scrape).route_layer(from_fn_with_state(state.clone(), gate)))
}

async fn scrape(State(state): State<AppState>) -> Response {
    let body = state.metrics.render(&state).await;
    ([(header::CONTENT_TYPE, super::CONTENT_TYPE)], body).into_response()
}

/// The same rule as the `/api` gate: trusted over the unix socket, a valid bearer token
/// over TCP, unless `metrics.public`. A request without a transport marker counts as
/// TCP (fail closed). Labels carry names of services, modules and routes, never
/// tokens, paths or bodies; still nothing an anonymous caller should enumerate.
async fn gate(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let via = req.extensions().get::<Transport>().copied().unwrap_or(Transport::Tcp);
    if via == Transport::UnixSocket || state.metrics.public() {
        return next.run(req).await;
    }
    let Some(token) = crate::api::bearer_token(&req) else {
        return ApiError::Unauthorized(
            "/metrics needs Authorization: Bearer <token> (or metrics.public = true); get one from POST /api/auth/login"
                .into(),
        )
        .into_response();
    };
    match state.auth.authenticate(&token).await {
        Ok(_) => next.run(req).await,
        Err(e) => ApiError::from(e).into_response(),
    }
}

/// Times every request to its response head and counts it by method, route pattern
/// and status. Outermost layer: the figures include the gate, the deadline and the
/// error rewriting, as the client sees them.
pub async fn track_requests(State(state): State<AppState>, req: Request, next: Next) -> Response {
    if !state.metrics.enabled() {
        return next.run(req).await;
    }
    let route = req.extensions().get::<MatchedPath>().map_or_else(|| "unmatched".to_string(), |p| p.as_str().into());
    let method = req.method().clone();
    let start = Instant::now();
    let response = next.run(req).await;
    state.metrics.observe_http(&method, &route, response.status().as_u16(), start.elapsed());
    response
}

/// The method as a label: the standard ones by name, anything else `other` (a client
/// may send any token as a method).
pub(super) fn method_label(method: &Method) -> &'static str {
    const STANDARD: [&str; 9] = ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "CONNECT", "TRACE"];
    STANDARD.into_iter().find(|m| *m == method.as_str()).unwrap_or("other")
}
