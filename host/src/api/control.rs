//! `/api/apps/...` actions: start, stop, restart, kill (one service, or all), the log
//! (tail, or follow as server-sent events), and the TTL heartbeat a service sends.

use std::convert::Infallible;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::Stream;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::ApiError;
use super::apps::find;
use crate::state::AppState;
use crate::supervisor::{ControlResult, ServiceStatus};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// This resource's routes, for `api_routes`.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(start))
        .routes(routes!(stop))
        .routes(routes!(restart))
        .routes(routes!(kill))
        .routes(routes!(heartbeat))
        .routes(routes!(logs))
        .routes(routes!(start_all))
        .routes(routes!(stop_all))
}

/// The outcome for one service of start-all / stop-all.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct BulkOutcome {
    pub name: String,
    pub ok: bool,
    /// The state afterwards, or empty when it failed.
    pub state: String,
    pub error: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LogQuery {
    /// Lines from the end (default 100, max 10000).
    pub tail: Option<usize>,
    /// Keep the connection open and stream new lines as server-sent events.
    pub follow: Option<bool>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct LogLines {
    pub name: String,
    pub file: String,
    pub lines: Vec<String>,
}

macro_rules! action {
    ($fn_name:ident, $method:ident, $path:literal, $what:literal) => {
        #[utoipa::path(post, path = $path, tag = "control",
            params(("name" = String, Path, description = "Service name")),
            responses(
                (status = 200, description = $what, body = ServiceStatus),
                (status = 404, body = super::ErrorBody),
                (status = 409, description = "Refused: port conflict, dependency failed, nothing to run", body = super::ErrorBody),
                (status = 502, description = "A manage script or the process failed", body = super::ErrorBody),
                (status = 401, body = super::ErrorBody),
            ))]
        pub async fn $fn_name(State(state): State<AppState>, Path(name): Path<String>) -> Result<Json<ServiceStatus>, ApiError> {
            find(&state, &name)?;
            Ok(Json(state.supervisor.$method(&name).await?))
        }
    };
}

action!(start, start, "/api/apps/{name}/start", "Started (dependencies first); already running is fine");
action!(
    stop,
    stop,
    "/api/apps/{name}/stop",
    "Stopped, with its dependants and stop_chain; stays stopped across host restarts"
);
action!(restart, restart, "/api/apps/{name}/restart", "Restarted (restart.sh for script services)");
action!(kill, kill, "/api/apps/{name}/kill", "Killed: force_kill script, or SIGKILL to its process group");

fn bulk(results: Vec<(String, ControlResult)>) -> Json<Vec<BulkOutcome>> {
    Json(
        results
            .into_iter()
            .map(|(name, r)| match r {
                Ok(s) => BulkOutcome { name, ok: true, state: s.state.as_str().into(), error: None },
                Err(e) => BulkOutcome { name, ok: false, state: String::new(), error: Some(e.to_string()) },
            })
            .collect(),
    )
}

#[utoipa::path(post, path = "/api/apps/start-all", tag = "control",
    responses((status = 200, description = "Every service started, in dependency waves", body = [BulkOutcome]), (status = 401, body = super::ErrorBody)))]
pub async fn start_all(State(state): State<AppState>) -> Json<Vec<BulkOutcome>> {
    bulk(state.supervisor.start_all().await)
}

#[utoipa::path(post, path = "/api/apps/stop-all", tag = "control",
    responses((status = 200, description = "Every service stopped, dependants first", body = [BulkOutcome]), (status = 401, body = super::ErrorBody)))]
pub async fn stop_all(State(state): State<AppState>) -> Json<Vec<BulkOutcome>> {
    bulk(state.supervisor.stop_all().await)
}

#[utoipa::path(post, path = "/api/apps/{name}/heartbeat", tag = "control",
    params(("name" = String, Path, description = "Service name")),
    responses((status = 204, description = "Recorded (for health.kind = ttl)"), (status = 404, body = super::ErrorBody), (status = 401, body = super::ErrorBody)))]
pub async fn heartbeat(State(state): State<AppState>, Path(name): Path<String>) -> Result<StatusCode, ApiError> {
    find(&state, &name)?;
    state.supervisor.heartbeat(&name).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/api/apps/{name}/logs", tag = "control",
    params(("name" = String, Path, description = "Service name"), LogQuery),
    responses(
        (status = 200, description = "The last lines (JSON), or with follow=true a text/event-stream of lines", body = LogLines),
        (status = 404, body = super::ErrorBody), (status = 401, body = super::ErrorBody)))]
pub async fn logs(
    State(state): State<AppState>,
    Path(name): Path<String>,
    Query(q): Query<LogQuery>,
) -> Result<Response, ApiError> {
    find(&state, &name)?;
    let log = state.supervisor.log(&name);
    let tail = q.tail.unwrap_or(100).min(10_000);
    // The size before the tail is read: following starts there, so no line is lost
    // between the two (one may be shown twice, never missed).
    let offset = log.size();
    let lines = {
        let log = log.clone();
        tokio::task::spawn_blocking(move || log.tail(tail)).await.map_err(|e| ApiError::Internal(e.to_string()))?
    }
    .map_err(|e| ApiError::Internal(format!("reading {}: {e}", log.path().display())))?;
    if !q.follow.unwrap_or(false) {
        return Ok(Json(LogLines { name, file: log.path().display().to_string(), lines }).into_response());
    }
    Ok(Sse::new(follow_stream(&state, lines, log, offset)).keep_alive(KeepAlive::default()).into_response())
}

/// The tail first, then every appended line. The follower runs on the host's task
/// tracker and ends when the client goes away (its channel closes) or the host shuts
/// down (the stream ends, so graceful shutdown is not held up by followers).
fn follow_stream(
    state: &AppState,
    tail: Vec<String>,
    log: crate::supervisor::logs::ServiceLog,
    offset: u64,
) -> impl Stream<Item = Result<SseEvent, Infallible>> + use<> {
    let (tx, rx) = tokio::sync::mpsc::channel::<String>(256);
    state.tasks.spawn(log.follow(offset, tx));
    let initial = futures::stream::iter(tail.into_iter().map(|l| Ok(SseEvent::default().data(l))));
    let live =
        futures::stream::unfold(
            rx,
            |mut rx| async move { rx.recv().await.map(|l| (Ok(SseEvent::default().data(l)), rx)) },
        );
    let shutdown = state.shutdown.clone().cancelled_owned();
    futures::StreamExt::take_until(futures::StreamExt::chain(initial, live), shutdown)
}
