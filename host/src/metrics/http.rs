//! The HTTP side of metrics: the `GET /metrics` route (gated by `api/guard.rs` like
//! `/api`, unless `metrics.public`), and the layer that times every request by route
//! pattern. Knows routes only as axum's `MatchedPath`, never raw
//! paths, so callers cannot mint series.

use std::time::Instant;

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::state::AppState;

/// The path Prometheus scrapes.
pub const PATH: &str = "/metrics";

/// Adds `GET /metrics` (when `metrics.enabled`); the auth gate (`api/guard.rs`) covers
/// it unless `metrics.public`.
pub fn mount(routes: Router<AppState>, state: &AppState) -> Router<AppState> {
    if !state.metrics.enabled() {
        return routes;
    }
    routes.route(PATH, axum::routing::get(scrape))
}

async fn scrape(State(state): State<AppState>) -> Response {
    let body = state.metrics.render(&state).await;
    ([(header::CONTENT_TYPE, super::CONTENT_TYPE)], body).into_response()
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
