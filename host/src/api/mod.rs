//! The HTTP edge: `router(state)` builds the one router served on TCP and on the unix
//! socket. Handlers are thin: they call the registry, store and auth services and map
//! results to JSON; they hold no state of their own. One file per resource.
//!
//! The dashboard's pages (`ui.rs`, `/ui/`) are served by the same router.
//!
//! Layers, outermost first: the edge middleware (`edge.rs`: request metrics, JSON
//! errors, audit of mutating calls, auth gate for `/api` and `/metrics`, request
//! deadline, in that order), tracing, body limit.

mod alarms;
mod app_models;
mod apps;
mod audit;
mod audit_trail;
mod backups;
mod control;
mod docker;
mod edge;
mod error;
mod events;
mod files;
mod guard;
mod health;
mod history;
mod json;
mod limits;
mod models;
mod module_listener_requests;
pub mod module_listeners;
mod module_mount;
mod module_request;
mod modules;
mod openapi;
mod session;
mod tasks;
#[cfg(test)]
mod tests;
mod ui;

pub use app_models::{DeleteResponse, ModelWriteOutcome, PutModelRequest, PutModelResponse};
pub use apps::{AppDetail, AppSummary};
pub use control::{BulkOutcome, LogLines};
pub use error::{ApiError, ErrorBody, ErrorDetail};
pub use guard::{PUBLIC_API_PATHS, Principal, Transport, bearer_token};
pub use health::Health;
pub use json::ApiJson;
pub use module_mount::admin_service;
pub use openapi::ApiDoc;
pub use session::{LoginResponse, WhoAmI};

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::middleware::from_fn_with_state;
use tower_http::trace::TraceLayer;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_swagger_ui::SwaggerUi;

use crate::state::AppState;

/// The OpenAPI document and the routes it describes, before layers.
pub fn api_routes() -> (Router<AppState>, utoipa::openapi::OpenApi) {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(health::routes())
        .merge(session::routes())
        .merge(apps::routes())
        .merge(history::routes())
        .merge(control::routes())
        .merge(models::routes())
        .merge(app_models::routes())
        .merge(audit::routes())
        .merge(events::routes())
        .merge(modules::routes())
        .merge(files::routes())
        .merge(docker::routes())
        .merge(alarms::routes())
        .merge(backups::routes())
        .merge(tasks::routes())
        .split_for_parts()
}

/// The complete application: API routes, OpenAPI JSON, Swagger UI, fallbacks, layers.
pub fn router(state: AppState) -> Router {
    let (routes, doc) = api_routes();
    // Served by our own handler so the routes of the modules loaded right now are in it.
    // Kept as compact JSON text, read back per request: as a `serde_json::Value` the
    // document held 0.66 MB of the idle host's heap, its text is a fifth of that.
    let base_doc: Arc<[u8]> = serde_json::to_vec(&doc).unwrap_or_default().into();
    let body_limit = state.config.server.body_limit_bytes;
    crate::metrics::mount(routes, &state)
        // Any method: the module's own route table decides (405 for the others).
        .route("/api/module/{name}/{*rest}", axum::routing::any(modules::dispatch))
        .route("/api/openapi.json", axum::routing::get(move |state| openapi::document(state, Arc::clone(&base_doc))))
        .merge(ui::routes())
        .merge(SwaggerUi::new("/swagger").config(utoipa_swagger_ui::Config::from("/api/openapi.json")))
        .fallback(limits::not_found)
        .method_not_allowed_fallback(limits::method_not_allowed)
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(TraceLayer::new_for_http())
        .layer(from_fn_with_state(state.clone(), edge::edge))
        .with_state(state)
}
