//! The HTTP side of metrics: the `GET /metrics` route (gated by `api/guard.rs` like
//! `/api`, unless `metrics.public`), and the timer of every request by route
//! pattern. Knows routes only as axum's `MatchedPath`, never raw
//! paths, so callers cannot mint series.

use std::borrow::Cow;
use std::time::Instant;

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{Method, StatusCode, header};
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

/// One request being timed, by method, route pattern and status, up to its response
/// head. Started first and finished last by the API's edge middleware (`api/edge.rs`):
/// the figures include the gate, the deadline and the error rewriting, as the client
/// sees them. Holds the route as axum's shared `MatchedPath` (no copy per request).
#[derive(Debug)]
pub struct RequestTimer {
    method: Method,
    route: TimedRoute,
    start: Instant,
}

/// The route label of a timed request.
#[derive(Debug)]
enum TimedRoute {
    Matched(MatchedPath),
    /// Served outside axum's router (`api/module_mount.rs`): its pattern, as axum
    /// would have matched it.
    Fixed(&'static str),
    Unmatched,
}

impl RequestTimer {
    /// `None` when metrics are off.
    pub fn start(state: &AppState, req: &Request) -> Option<Self> {
        state.metrics.enabled().then(|| Self {
            method: req.method().clone(),
            route: req.extensions().get::<MatchedPath>().cloned().map_or(TimedRoute::Unmatched, TimedRoute::Matched),
            start: Instant::now(),
        })
    }

    /// For a request served outside axum's router, on the route `pattern`.
    pub fn start_on(state: &AppState, method: &Method, pattern: &'static str) -> Option<Self> {
        state.metrics.enabled().then(|| Self {
            method: method.clone(),
            route: TimedRoute::Fixed(pattern),
            start: Instant::now(),
        })
    }

    pub fn finish(self, state: &AppState, status: StatusCode) {
        let route = match &self.route {
            TimedRoute::Matched(path) => Cow::Owned(path.as_str().to_string()),
            TimedRoute::Fixed(pattern) => Cow::Borrowed(*pattern),
            TimedRoute::Unmatched => Cow::Borrowed("unmatched"),
        };
        state.metrics.observe_http(&self.method, route, status.as_u16(), self.start.elapsed());
    }
}

/// The method as a label: the standard ones by name, anything else `other` (a client
/// may send any token as a method).
pub(super) fn method_label(method: &Method) -> &'static str {
    const STANDARD: [&str; 9] = ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "CONNECT", "TRACE"];
    STANDARD.into_iter().find(|m| *m == method.as_str()).unwrap_or("other")
}
